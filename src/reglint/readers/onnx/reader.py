"""The ONNX reader: parse the graph once, then do each job in turn
(see the package docstring for what becomes of the graph)."""

from __future__ import annotations

import struct
from pathlib import Path

from reglint.errors import ModelReadError, ReglintError, one_line
from reglint.model import Model, Role
from reglint.readers.limits import ReadOptions
from reglint.readers.onnx.folded import drop_folded_tables
from reglint.readers.onnx.folded_norms import folded_batchnorm_note
from reglint.readers.onnx.graph import GraphIndex
from reglint.readers.onnx.layers import build_layers
from reglint.readers.onnx.load import check_external_locations, load_proto, run_checker
from reglint.readers.onnx.losses import find_losses, find_outputs
from reglint.readers.onnx.merged import identity_alias_note, merged_constants_note, parallel_copies_note
from reglint.readers.onnx.params import Param, assign_trainable, collect_params
from reglint.readers.onnx.penalties import find_penalties
from reglint.readers.onnx.roles import assign_role
from reglint.readers.onnx.stats import read_stats
from reglint.readers.onnx.tensors import EXTERNAL
from reglint.readers.onnx.tied import merge_quantized_copies, merge_transposed_copies
from reglint.readers.onnx.training import TrainingSetup

INFERENCE_NOTE = "inference graph: no regularization or optimizer recorded; pass them with options"


def read_onnx(path: Path, options: ReadOptions) -> Model:
    """Describe the ONNX model at ``path``; raises ModelReadError one-liners."""
    proto = load_proto(path)
    try:
        return _tidy_float32(_describe(path, proto, options))
    except ReglintError:
        raise
    except OSError as exc:  # a data file vanishing or unreadable mid-read
        raise ModelReadError(one_line(f"cannot read the model's data: {exc.strerror or exc}")) from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, struct.error) as exc:
        # A malformed graph (bad dims, inconsistent fields) must end in one line.
        raise ModelReadError(one_line(f"malformed ONNX model: {type(exc).__name__}: {exc}")) from None


def _describe(path: Path, proto, options: ReadOptions) -> Model:
    """The jobs in the order their inputs exist: optimizer state names and
    updated tensors decide which tensors are parameters; roles decide
    trainability, penalties and layers; layers decide losses and outputs."""
    folder = path.absolute().parent
    model = Model(path=str(path), format="onnx", framework="onnx")
    index = GraphIndex(proto)
    _describe_file(model, proto)
    # Every external location is checked before anything opens a data file
    # (onnx.checker included).
    check_external_locations(index.dense_tensors(), folder)
    checker_note = run_checker(path, proto, index.dense_tensors())
    if checker_note is not None:
        model.notes.append(checker_note)
    setup = TrainingSetup(path, proto, index, model.notes, options.max_layers).find()
    model.optimizer = setup.optimizer
    roled = [p for p in collect_params(index, setup.ckpt) if assign_role(p, index, setup.state_names, setup.updated)
             and (not p.constant_node or p.role is not Role.OTHER)]  # a Constant node: a layer's weight only
    params = merge_quantized_copies(merge_transposed_copies(roled, folder), index, folder)
    if len(params) < len(roled):
        model.notes.append(f"{len(roled) - len(params)} initializers are the transpose of another parameter "
                           "(a tied weight the exporter stored twice): counted once")
    assign_trainable(params, index, setup.ckpt, setup.updated, model.notes)
    find_penalties(params, index, setup.loss_targets, model.notes)
    params, folded = drop_folded_tables(params, index, folder)
    model.notes.extend(folded)
    read_stats(params, index, folder, options)  # also checks every external range against its file
    layers, owner = build_layers(params, index, options.max_layers)
    model.layers.extend(layers)
    model.losses.extend(find_losses(index, owner, setup.loss_targets))
    find_outputs(model, index, owner)
    _final_notes(model, proto, index, setup, params, len(roled) - len(params), options)
    return model


def _describe_file(model: Model, proto) -> None:
    opsets = {(o.domain or "ai.onnx"): int(o.version) for o in proto.opset_import}
    default = opsets.get("ai.onnx")
    model.framework_version = f"ir {proto.ir_version}" + (f", opset {default}" if default is not None else "")
    model.name = proto.graph.name or None
    model.metadata = {
        "producer_name": proto.producer_name or None,
        "producer_version": proto.producer_version or None,
        "ir_version": int(proto.ir_version),
        "opsets": opsets,
        "model_version": int(proto.model_version),
        "domain": proto.domain or None,
        "metadata_props": {p.key[:200]: p.value[:200] for p in list(proto.metadata_props)[:50]},
    }
    if proto.producer_name:
        model.metadata["producer"] = f"{proto.producer_name} {proto.producer_version}".strip()


def _final_notes(model: Model, proto, index: GraphIndex, setup: TrainingSetup, params: list[Param], copies: int,
                 options: ReadOptions) -> None:
    training = bool(model.optimizer or model.losses or model.has_regularization or proto.training_info
                    or setup.ckpt is not None or (index.gradient_names() & {p.name for p in params}))
    if not training:
        model.notes.append(INFERENCE_NOTE)
    elif model.optimizer is None:
        model.notes.append("training graph without optimizer settings: pass them with options")
    if options.weight_stats is False:
        model.notes.append("weight statistics not read (weight_stats disabled)")
    from_nodes = sum(1 for p in params if p.constant_node)
    if index.duplicates:
        model.notes.append(f"{len(index.duplicates)} initializers share their name with a later one in the same "
                           "graph: only the last is read, as onnxruntime does")
    read = sum(1 for p in params if p.tensor is not None and not p.constant_node)
    skipped = len(index.tensors) - len(index.duplicates) + len(index.sparse) - read - copies
    if from_nodes:
        model.notes.append(f"{from_nodes} weights are held in Constant nodes, not initializers: counted as "
                           "parameters")
    if skipped:
        model.notes.append(f"{skipped} initializers are constants, integer tensors or optimizer state, "
                           "not parameters")
    if index.sparse:
        model.notes.append("sparse initializers are counted at their dense size")
    for note in (merged_constants_note(params, index), parallel_copies_note(params, index),
                 identity_alias_note(params, index),
                 folded_batchnorm_note(params, index, proto.producer_name)):
        if note is not None:
            model.notes.append(note)
    if proto.producer_name in ("tf2onnx", "keras2onnx"):
        model.notes.extend(_zero_recurrence_biases(params))
    quantized = sorted({p.type_name for p in params if p.quantized})
    if quantized:
        model.notes.append(f"{sum(1 for p in params if p.quantized)} weights are stored quantized "
                           f"({', '.join(quantized)}): each value counts as the float parameter it stands for; "
                           "scales and zero points are not parameters")
        unread = sum(1 for p in params if p.quantized and p.stats is None)
        if unread and options.weight_stats:
            model.notes.append(f"weight statistics of {unread} quantized weights not read: their scale is applied "
                               "after the integer op, their readers dequantize them with different scales, or they are "
                               "stored in a layout not read here (act-order g_idx, widths other than 2, 4 and 8 bits)")


def _tidy_float32(model: Model) -> Model:
    """ONNX stores attributes and constants as float32: show 0.01, not
    0.009999999776, as the Keras readers do (``keras_objects.tidy``)."""
    from reglint.readers.keras_objects import tidy

    opt = model.optimizer
    if opt is not None:
        for name in ("weight_decay", "coupled_l2", "momentum", "beta_1", "beta_2", "epsilon", "lr_decay"):
            value = getattr(opt, name)
            if isinstance(value, float):
                setattr(opt, name, tidy(value))
        lr = opt.learning_rate
        if lr is not None:
            lr.initial = tidy(lr.initial) if isinstance(lr.initial, float) else lr.initial
            lr.peak = tidy(lr.peak) if isinstance(lr.peak, float) else lr.peak
    for _, var in model.variables():
        reg = var.regularizer
        if reg is not None:
            reg.l1, reg.l2, reg.factor = tidy(reg.l1), tidy(reg.l2), tidy(reg.factor)
    return model


def _zero_recurrence_biases(params: list[Param]) -> list[str]:
    """ONNX's LSTM/GRU/RNN bias ``B`` holds two biases a gate, ``[Wb, Rb]``;
    a framework with one (Keras) converts with ``Rb`` all zeros (tf2onnx,
    keras2onnx: the only producers this is said of; PyTorch's ``b_hh`` is
    a parameter even when it starts at zero). Counted, as the ONNX op holds
    them, and said."""
    from onnx import numpy_helper

    notes = []
    for p in params:
        node, tensor = p.node, p.tensor
        if node is None or node.op not in ("LSTM", "GRU", "RNN") or p.role is not Role.BIAS or tensor is None \
                or tensor.data_location == EXTERNAL or len(p.shape) != 2 or p.shape[1] % 2 or p.size > 1 << 20:
            continue
        values = numpy_helper.to_array(tensor)
        half = p.shape[1] // 2
        if values.shape == p.shape and not values[:, half:].any() and values[:, :half].any():
            notes.append(f"{p.layer or p.name}: the recurrence half of {node.op}'s bias (Rb, {values[:, half:].size} "
                         "values) is all zeros, as a converter writes a framework's single bias (Keras through "
                         f"tf2onnx): counted as ONNX holds them; Keras counts {values[:, half:].size} fewer")
    return notes
