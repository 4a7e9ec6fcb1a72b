"""The TFLite reader: map the file, parse its tables once (``schema``),
find the parameters and their roles (``params``), name their layers
(``names``) and read their statistics (``stats``)."""

from __future__ import annotations

import contextlib
import mmap
import re
import struct
from pathlib import Path

from reglint.errors import ModelReadError, ReglintError, UnsafeInputError, one_line
from reglint.model import Layer, Model, Role, Variable
from reglint.readers.limits import ReadOptions
from reglint.readers.tflite.names import layer_parts, tidy_keys
from reglint.readers.tflite.params import (
    ARITHMETIC,
    BIASED_OPS,
    CONV_2D,
    CONV_3D,
    CONV_3D_TRANSPOSE,
    DEPTHWISE_CONV_2D,
    FULLY_CONNECTED,
    MUL,
    OP_NAMES,
    RSQRT,
    TRANSPOSE_CONV,
    WEIGHT_SLOTS,
    Graph,
    Param,
    collect_params,
    kernel_of,
)
from reglint.readers.tflite.schema import FLOAT_TYPES, OperatorInfo, SubgraphInfo, TfliteFile, parse
from reglint.readers.tflite.stats import check_extent, tensor_stats

INFERENCE_NOTE = "inference graph: no regularization or optimizer recorded; pass them with options"
VAR_HANDLE = 142
BATCHNORM = re.compile(r"FusedBatchNorm(V\d)?|batchnorm")


def read_tflite(path: Path, options: ReadOptions) -> Model:
    """Describe the TFLite model at ``path``; raises ModelReadError one-liners."""
    try:
        size = path.stat().st_size
        handle = path.open("rb")
    except OSError as exc:
        raise ModelReadError(f"cannot open: {exc.strerror or exc}") from None
    if size > options.max_member_bytes:
        handle.close()
        raise UnsafeInputError(f"TFLite file of {size} bytes, over the limit of {options.max_member_bytes}")
    buf = None
    try:
        if size < 16:
            raise ModelReadError("not a TensorFlow Lite flatbuffer: the file is too short (truncated)")
        buf = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        return _describe(path, parse(buf, size), buf, options)
    except ReglintError:
        raise
    except OSError as exc:
        raise ModelReadError(one_line(f"cannot read the model: {exc.strerror or exc}")) from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, struct.error, MemoryError) as exc:
        # garbage offsets: the flatbuffers runtime raises from struct, numpy from frombuffer
        raise ModelReadError(one_line(f"malformed TFLite model: {type(exc).__name__}: {exc}")) from None
    finally:
        if buf is not None:
            with contextlib.suppress(BufferError):  # a view still held by a traceback: closed when collected
                buf.close()
        handle.close()


def _describe(path: Path, tfl: TfliteFile, buf, options: ReadOptions) -> Model:
    model = Model(path=str(path), format="tflite", framework="tflite", framework_version=f"schema {tfl.version}")
    model.metadata = {"schema_version": tfl.version, "description": tfl.description[:200] or None,
                      "subgraphs": len(tfl.subgraphs), "metadata": sorted(tfl.metadata)[:50]}
    if tfl.external_buffers:
        model.metadata["buffers_after_flatbuffer"] = tfl.external_buffers
    if not tfl.subgraphs:
        raise ModelReadError("TFLite model without a subgraph")

    def has_data(tensor) -> bool:
        return tfl.buffers[tensor.buffer].size > 0 if tensor.buffer < len(tfl.buffers) else False

    params: list[Param] = []
    constants = 0
    graphs = {}
    for sub in tfl.subgraphs:
        graphs[sub.index] = Graph(sub)
        found, skipped = collect_params(sub, graphs[sub.index], has_data)
        params += found
        constants += skipped
    params, requantized = _requantized_biases(params, graphs)
    shared = _shared_buffers(params)
    for p in params:
        ref = tfl.buffers[p.tensor.buffer]
        check_extent(p.tensor, ref)
    stats = {}
    if options.weight_stats:
        by_tensor: dict[tuple[int, int], object] = {}  # a tensor's copies (one per layer) read once
        for p in params:
            key = (p.subgraph, p.tensor.index)
            if key not in by_tensor:
                by_tensor[key] = tensor_stats(buf, tfl.buffers[p.tensor.buffer], p.tensor, options.chunk_bytes)
            stats[id(p)] = by_tensor[key]
    keys, unnamed, folded = _layer_keys(params, graphs, tfl.subgraphs)
    groups: dict[str, list[Param]] = {}
    for p in params:
        p.layer = keys[id(p)]
        groups.setdefault(p.layer, []).append(p)
    if len(groups) > options.max_layers:
        raise UnsafeInputError(f"{len(groups)} layers, over the limit of {options.max_layers}")
    order = sorted(groups, key=lambda k: min((p.subgraph, p.op.index if p.op else 1 << 60) for p in groups[k]))
    model.layers = [_layer(key, groups[key], stats, graphs) for key in order]
    separable = {key: note for key in order if (note := _zero_depthwise_bias(key, groups[key], stats))}
    traced = {owner for owner, _ in folded.values()} | set(separable)
    _notes(model, params, constants, shared, unnamed, folded, _untraced_zero_biases(order, groups, stats, traced),
           options)
    handles = sum(1 for sub in tfl.subgraphs for op in sub.operators if op.opcode == VAR_HANDLE)
    if handles:
        model.notes.append(f"{handles} VAR_HANDLE ops: weights held in resource variables are not in the file (they "
                           "are assigned when the model first runs); not counted")
    if requantized:
        model.notes.append(f"{requantized} int32 biases are the converter's per-op requantized copies of a bias "
                           "that a layer called several times already has: counted once")
    model.notes[1:1] = _separable_notes(separable)
    return model


# Separable convolutions named one by one in the notes; past this, one note
# counts them (a NASNetMobile has 160, each with its own line before).
MAX_SEPARABLE_NOTES = 3


def _separable_notes(notes: dict[str, str]) -> list[str]:
    """The depthwise-bias notes as they are for a few layers, else one note
    with the layers counted and the first named."""
    if len(notes) <= MAX_SEPARABLE_NOTES:
        return list(notes.values())
    zeros = sum(int(m.group(1)) for note in notes.values() if (m := re.search(r"\((\d+) zeros\)", note)))
    names = ", ".join(list(notes)[:MAX_SEPARABLE_NOTES])
    return [f"{len(notes)} separable convolutions ({names}, ...): the depthwise step's bias ({zeros} zeros in all) "
            f"is the converter's (Keras' SeparableConv2D has one bias, after the pointwise step): counted as the "
            f"file holds them; Keras counts {zeros} fewer"]


def _zero_depthwise_bias(key: str, members: list[Param], stats: dict) -> str:
    """The converter gives a SeparableConv2D's depthwise step a bias of
    zeros (Keras' layer has one bias, after the pointwise step)."""
    if not any(p.op is not None and p.op.opcode == CONV_2D for p in members):
        return ""
    zeros = 0
    for p in members:
        found = stats.get(id(p))
        if p.role is Role.BIAS and p.op is not None and p.op.opcode == DEPTHWISE_CONV_2D and found is not None \
                and found.max_abs == 0 and not found.nonfinite:
            zeros += p.tensor.size
    if not zeros or not any(p.role is Role.DEPTHWISE_KERNEL for p in members):
        return ""
    return (f"{key}: the depthwise step's bias ({zeros} zeros) is the converter's (Keras' SeparableConv2D has one "
            f"bias, after the pointwise step): counted as the file holds them; Keras counts {zeros} fewer")


CONV_OPS = {CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, CONV_3D, CONV_3D_TRANSPOSE}


def _untraced_zero_biases(order: list[str], groups: dict[str, list[Param]], stats: dict, traced: set[str]
                          ) -> list[tuple[str, int]]:
    """(layer, channels) of the convolutions, other than ``traced``, whose
    bias is all zeros and named by the converter alone (``arith.constant``,
    no layer scope).

    An untrained model's BatchNormalization folds at its initial
    statistics (gamma 1, beta 0, mean 0, variance 1) into the convolution
    before it: the folded bias is zero, stored once for every layer of
    that width, and after a Conv2D its name is gone from kernel and bias
    alike (after a DepthwiseConv2D the folded kernel keeps it: ``folded``).
    A Conv2D's own untrained bias (use_bias, zeros) converts to the very
    same constant, and the kernels differ only by the fold's factor
    1 / sqrt(1 + epsilon), which a random kernel hides; so the file says
    how many such biases there are, never which of them was a BatchNorm."""
    out = []
    for key in (key for key in order if key not in traced):
        zeros = [p for p in groups[key] if p.role is Role.BIAS and p.op is not None and p.op.opcode in CONV_OPS
                 and _all_zero(stats.get(id(p))) and layer_parts(p.tensor.name) is None]
        if zeros:
            out.append((key, zeros[0].tensor.size))
    return out


def _all_zero(found) -> bool:
    return found is not None and found.max_abs == 0 and not found.nonfinite


def _requantized_biases(params: list[Param], graphs: dict[int, Graph]) -> tuple[list[Param], int]:
    """A full-integer converter requantizes a shared layer's bias once per
    op (int32 at each op's input x kernel scale): ops reading one kernel
    with different int32 biases of one shape hold one Keras bias. Keep the
    first; return how many copies were dropped."""
    first: dict[tuple[int, int], Param] = {}
    out, dropped = [], 0
    for p in params:
        if p.role is Role.BIAS and p.op is not None and p.tensor.type == 2 and p.quantized:
            kernel = kernel_of(graphs[p.subgraph], p.op)
            if kernel is not None:
                seen = first.setdefault((p.subgraph, kernel), p)
                if seen is not p and seen.tensor.index != p.tensor.index and seen.tensor.shape == p.tensor.shape:
                    seen.uses += p.uses
                    dropped += 1
                    continue
        out.append(p)
    return out, dropped


def _shared_buffers(params: list[Param]) -> int:
    """How many parameter tensors read a buffer another parameter tensor
    reads too (the converter stores identical bytes once, even under
    different quantization): each is its own parameter, counted where it
    is consumed."""
    first: dict[int, tuple[int, int]] = {}
    shared = set()
    for p in params:
        key = (p.subgraph, p.tensor.index)
        if first.setdefault(p.tensor.buffer, key) != key:
            shared.add(key)
    return len(shared)


def _layer_keys(params: list[Param], graphs: dict[int, Graph], subgraphs: list[SubgraphInfo]
                ) -> tuple[dict[int, str], int, dict[str, tuple[str, int | None]]]:
    """Layer key of each parameter (by id), how many layers no name gave,
    and BatchNorm layers folded away -> the layer they were folded into."""
    op_parts: dict[tuple[int, int], list[str] | None] = {}
    for p in sorted(params, key=lambda p: ROLE_ORDER.get(p.role, 9)):
        if p.op is None:
            continue
        key = (p.subgraph, p.op.index)
        if op_parts.get(key) is None and p.role is not Role.BIAS and not _batchnorm_only(p.tensor.name):
            op_parts[key] = layer_parts(p.tensor.name)
    for (s, index), parts in list(op_parts.items()):
        if parts is None:
            outputs = [subgraphs[s].tensors[t].name for t in subgraphs[s].operators[index].outputs if t >= 0]
            op_parts[(s, index)] = next((found for found in map(layer_parts, outputs)
                                         if found and not _batchnorm_only(outputs[0])), None)
    raw: dict[int, list[str]] = {}
    fallback: dict[int, tuple[int, int, str]] = {}
    for p in params:
        op_key = (p.subgraph, p.op.index) if p.op else None
        slot_bias = p.role is Role.BIAS and p.op is not None and p.op.opcode in WEIGHT_SLOTS
        own = None if _batchnorm_only(p.tensor.name) and slot_bias is False and p.op is not None \
            and p.op.opcode in WEIGHT_SLOTS else layer_parts(p.tensor.name)
        parts = op_parts.get(op_key) if op_key and (slot_bias or own is None) else own
        if parts is None and p.role is Role.BIAS and p.op is not None:
            parts = _producer_parts(p, graphs, op_parts)
        if parts is None and op_key is not None:
            parts = op_parts.get(op_key)
        if parts is None:
            op = p.op
            fallback[id(p)] = (p.subgraph, op.index if op else -1, OP_NAMES.get(op.opcode, "CONSTANT") if op
                               else "CONSTANT")
        else:
            raw[id(p)] = parts
    # BatchNorm scopes in fused names of weights another layer owns
    folded_raw: dict[int, list[str]] = {}
    for i, p in enumerate(params):
        for part in p.tensor.name.split(";"):
            if BATCHNORM.search(part) and (id(p) in raw or id(p) in fallback):
                scope = layer_parts(part)
                if scope is not None and scope != raw.get(id(p)):
                    folded_raw[-1 - i] = scope
    tidy = tidy_keys({**raw, **folded_raw})
    keys = {k: v for k, v in tidy.items() if k >= 0 or k in raw}
    names = set(keys.values())
    counters: dict[str, int] = {}
    by_op: dict[tuple[int, int], str] = {}
    for pid, (s, index, op_name) in sorted(fallback.items(), key=lambda item: item[1][:2]):
        if (s, index) not in by_op:
            base = op_name.lower()
            n = counters.get(base, 0)
            while (name := base if n == 0 else f"{base}_{n}") in names:
                n += 1
            counters[base] = n + 1
            names.add(name)
            by_op[(s, index)] = name
        keys[pid] = by_op[(s, index)]
    folded: dict[str, tuple[str, int | None]] = {}
    for k, norm in tidy.items():
        if k < 0:
            p = params[-1 - k]
            owner = keys[id(p)]
            if norm not in names and norm != owner and norm not in folded:
                folded[norm] = owner, _bn_channels(p, [q for q in params if keys[id(q)] == owner], norm)
    return keys, len(by_op), folded


def _batchnorm_only(name: str) -> bool:
    """A fused name whose every part is a BatchNorm's (``bn/batchnorm/mul_1``):
    a weight the BN was folded into, named after the BN alone."""
    return bool(name) and all(BATCHNORM.search(part) for part in name.split(";"))


def _bn_channels(p: Param, members: list[Param], bn: str) -> int | None:
    """The folded BN's channels: the bias's size when the BN came after
    the layer (its offset is in the bias); the kernel's input size when
    a named bias does not mention it (a BN before a Dense)."""
    biases = [q for q in members if q.role is Role.BIAS]
    kernels = [q for q in members if q.role.is_kernel_like and q.tensor.shape]
    short = bn.rsplit(".", 1)[-1]
    if any(short in q.tensor.name for q in biases):
        return biases[0].tensor.size
    named = [q for q in biases if "/" in q.tensor.name]
    if named and kernels and kernels[0].op is not None and kernels[0].op.opcode == FULLY_CONNECTED:
        return kernels[0].tensor.shape[-1]
    if kernels:
        kernel = kernels[0]
        return kernel.tensor.shape[-1] if kernel.role is Role.DEPTHWISE_KERNEL else kernel.tensor.shape[0]
    return biases[0].tensor.size if biases else None


ROLE_ORDER = {Role.KERNEL: 0, Role.DEPTHWISE_KERNEL: 0, Role.EMBEDDINGS: 0, Role.RECURRENT_KERNEL: 1,
              Role.GAMMA: 2, Role.ALPHA: 2, Role.BETA: 3, Role.OTHER: 4, Role.BIAS: 5}


def _producer_parts(p: Param, graphs: dict[int, Graph], op_parts) -> list[str] | None:
    """A bias added to a linear op's output: that op's layer."""
    op = p.op
    if op is None or len(op.inputs) != 2:
        return None
    graph = graphs[p.subgraph]
    other = op.inputs[1] if op.inputs[0] == p.tensor.index else op.inputs[0]
    source = graph.source(other) if other >= 0 else None
    if source is None or source.opcode not in BIASED_OPS:
        return None
    return op_parts.get((p.subgraph, source.index))


def _layer(key: str, members: list[Param], stats: dict, graphs: dict[int, Graph]) -> Layer:
    main = min(members, key=lambda p: (ROLE_ORDER.get(p.role, 9), p.op.index if p.op else 1 << 60))
    op = main.op
    depthwise = any(p.role is Role.DEPTHWISE_KERNEL for p in members)
    variables = []
    for p in sorted(members, key=_op_slot):
        role = p.role
        if depthwise and role is Role.KERNEL and p.op is not None and p.op.opcode == CONV_2D \
                and len(p.tensor.shape) == 4 and p.tensor.shape[1:3] == (1, 1):
            role = Role.POINTWISE_KERNEL  # SeparableConv2D: its depthwise step, then a 1x1 convolution
        shape = _keras_shape(p, role, graphs)
        location = f"tensor {p.tensor.index}: {p.tensor.name}"
        if p.subgraph:
            location = f"subgraph {p.subgraph} {location}"
        if shape != p.tensor.shape:
            location += f" (stored {list(p.tensor.shape)})"
        variables.append(Variable(name=p.slot_name or role.value, role=role, shape=shape,
                                  stats=stats.get(id(p)), dtype=p.tensor.type_name, location=location,
                                  fan_axes=_fan_axes(p, role), fan_shape=_depthwise_fan_shape(p, graphs)))
    class_name = OP_NAMES.get(op.opcode, f"BUILTIN_{op.opcode}") if op else "CONSTANT"
    if op is not None and op.opcode == MUL and main.role is Role.GAMMA:
        graph = graphs[main.subgraph]
        other = [t for t in op.inputs if t != main.tensor.index]
        source = graph.source(other[0]) if other and other[0] >= 0 else None
        class_name = "LayerNormalization" if source is not None and source.opcode == RSQRT else "BatchNormalization"
        if class_name == "BatchNormalization":  # the converter's folded scale and offset, not gamma and beta
            for v in variables:
                v.name = {"gamma": "scale", "beta": "offset"}.get(v.name, v.name)
    config = {"op": class_name if op is None else OP_NAMES.get(op.opcode, f"BUILTIN_{op.opcode}"),
              "subgraph": main.subgraph, "operator": op.index if op else None}
    return Layer(name=key, path=key, class_name=class_name, variables=variables, units=_units(main),
                 calls=max(1, *(p.uses for p in members)), config=config)


def _keras_shape(p: Param, role: Role, graphs: dict[int, Graph]) -> tuple[int, ...]:
    """A normalization's scale or offset (the constant of a MUL or ADD) is
    stored at the shape it broadcasts at, [1, 1, C] over a sequence's
    features, [1, H, W, 1] over an image's height and width; Keras holds
    it at the normalized axes' lengths alone ([C], [H, W]), so parameter
    tables and fans match the Keras file. Dropped: the leading 1s, and a 1
    where the op's output is longer (broadcast); kept: a 1 where the
    output is 1 too, which may be one of Keras' own axes ([T, 1] over two
    axes of a [B, T, 1] input)."""
    shape = p.tensor.shape
    if role not in (Role.GAMMA, Role.BETA) or p.op is None or p.op.opcode not in ARITHMETIC:
        return shape
    first = next((i for i, d in enumerate(shape) if d != 1), max(0, len(shape) - 1))
    output = _output_shape(p, graphs)
    lead = len(output) - len(shape)  # numpy broadcasting: the shapes aligned at their last axes
    return tuple(d for i, d in enumerate(shape[first:], first)
                 if i == first or d != 1 or not 0 <= lead + i < len(output) or output[lead + i] == 1)


def _output_shape(p: Param, graphs: dict[int, Graph]) -> tuple[int, ...]:
    """The shape of the op's first output; () where there is none."""
    sub = graphs[p.subgraph].sub
    outputs = [i for i in (p.op.outputs if p.op is not None else []) if 0 <= i < len(sub.tensors)]
    return tuple(sub.tensors[outputs[0]].shape) if outputs else ()


def _op_slot(p: Param) -> tuple[int, int]:
    """A variable's place: its op's, then its input slot's."""
    return (p.op.index if p.op is not None else 1 << 60), p.slot


def _fan_axes(p: Param, role: Role) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Keras' fans in TFLite's layouts: FULLY_CONNECTED and LSTM gate
    weights are [out, in], CONV_2D [out, h, w, in], TRANSPOSE_CONV
    [out, h, w, in] (DEPTHWISE_CONV_2D: ``_depthwise_fan_shape``)."""
    shape, op = p.tensor.shape, p.op
    if op is None or not role.is_kernel_like:
        return None
    if len(shape) == 2 and op.opcode != 126:  # not BATCH_MATMUL: its operand is [in, out] unless adjoint
        return (1,), (0,)
    if len(shape) == 4 and op.opcode in (CONV_2D, TRANSPOSE_CONV):
        return ((1, 2, 3), (0, 1, 2)) if op.opcode == CONV_2D else ((0, 1, 2), (1, 2, 3))
    return None


def _depthwise_fan_shape(p: Param, graphs: dict[int, Graph]) -> tuple[int, ...] | None:
    """Keras' [h, w, C, M] for a DEPTHWISE_CONV_2D kernel [1, h, w, C*M]:
    Keras' fans are h*w*C in and h*w*M out, which no product of the
    stored axes gives once the depth multiplier M is over 1."""
    shape, op = p.tensor.shape, p.op
    if op is None or op.opcode != DEPTHWISE_CONV_2D or p.role is not Role.DEPTHWISE_KERNEL or len(shape) != 4:
        return None
    multiplier = _depth_multiplier(op, graphs[p.subgraph].sub, shape[3])
    return shape[1], shape[2], shape[3] // multiplier, multiplier


def _depth_multiplier(op: OperatorInfo, sub: SubgraphInfo, channels: int) -> int:
    """The kernel's channels over the input's, as the interpreter computes
    it (builtin_op_data.h: the recorded option is ignored after TensorFlow
    2.0); the recorded depth_multiplier where the input's channels do not
    divide the kernel's; 1 where neither does (a corrupt file)."""
    source = op.inputs[0] if op.inputs else -1
    shape = sub.tensors[source].shape if source >= 0 else ()
    inputs = shape[-1] if len(shape) == 4 else 0
    for multiplier in (channels // inputs if inputs and channels % inputs == 0 else 0, op.depth_multiplier):
        if multiplier > 0 and channels % multiplier == 0:
            return multiplier
    return 1


def _units(p: Param) -> int | None:
    shape, op = p.tensor.shape, p.op
    if op is None or not shape:
        return None
    if p.role is Role.EMBEDDINGS:
        return shape[-1]
    if op.opcode in (FULLY_CONNECTED, CONV_2D) and p.role.is_kernel_like:
        return shape[0]
    if op.opcode == DEPTHWISE_CONV_2D and p.role is Role.DEPTHWISE_KERNEL:
        return shape[-1]
    if p.role in (Role.KERNEL, Role.RECURRENT_KERNEL) and op.opcode in (16, 44, 24, 35) and len(shape) == 2:
        return shape[0]
    return None


def _zero_bias_note(zero_biases: list[tuple[str, int]]) -> str:
    channels = sum(size for _, size in zero_biases)
    listed = ", ".join(key for key, _ in zero_biases[:60])
    more = f", and {len(zero_biases) - 60} more" if len(zero_biases) > 60 else ""
    return (f"{len(zero_biases)} convolution layers read an all-zero bias the converter made (arith.constant, often "
            "one tensor for every layer of a width), with no other trace of its origin: each is a BatchNormalization "
            "folded at its initial statistics (an untrained model's: gamma 1, beta 0, mean 0, variance 1), the "
            "layer's own untrained bias, or a zero bias the converter gave a convolution without one; the file "
            "cannot tell which. Counted as the file holds them (a bias value per channel); if BatchNormalizations, "
            f"Keras holds {4 * channels} values there (gamma, beta and moving statistics of {channels} channels) "
            f"that are not in the file: {listed}{more}")


def _notes(model: Model, params: list[Param], constants: int, shared: int, unnamed: int,
           folded: dict[str, tuple[str, int | None]], zero_biases: list[tuple[str, int]],
           options: ReadOptions) -> None:
    model.notes.append(INFERENCE_NOTE)
    if options.weight_stats is False:
        model.notes.append("weight statistics not read (weight_stats disabled)")
    if folded:
        values = sum(4 * channels for _, channels in folded.values() if channels)
        listed = ", ".join(f"{bn} into {owner}" + (f" ({channels} channels)" if channels else "")
                           for bn, (owner, channels) in list(folded.items())[:60])
        more = f", and {len(folded) - 60} more" if len(folded) > 60 else ""
        model.notes.append(f"{len(folded)} BatchNormalization layers folded by the converter into a neighbouring "
                           f"layer's kernel and bias: their gamma, beta and moving statistics are not in the file "
                           f"({values} values in Keras, with center and scale); counted as the file holds them: "
                           f"{listed}{more}")
    if zero_biases:
        model.notes.append(_zero_bias_note(zero_biases))
    unfolded = [layer.name for layer in model.layers if layer.class_name == "BatchNormalization"]
    if unfolded:
        model.notes.append(f"{len(unfolded)} BatchNormalization layers the converter could not fold ("
                           f"{', '.join(unfolded[:20])}) are stored as a MUL and an ADD: their constants are the "
                           "folded scale gamma / sqrt(var + eps) and offset beta - mean * scale, named scale and "
                           "offset; Keras counts 4 values per channel")
    biasless = sum(1 for layer in model.layers if layer.class_name in ("CONV_2D", "DEPTHWISE_CONV_2D",
                                                                        "FULLY_CONNECTED", "TRANSPOSE_CONV")
                   and not any(v.role is Role.BIAS for v in layer.variables))
    if biasless:
        model.notes.append(f"{biasless} convolution or dense layers have no bias in the file: the layer has none, "
                           "or the converter dropped an all-zero one (an untrained model's); Keras may count one")
    quantized = [p for p in params if p.quantized]
    if quantized:
        types = ", ".join(sorted({p.tensor.type_name for p in quantized}))
        model.notes.append(f"{len(quantized)} weights are stored quantized ({types}): each value counts as the "
                           "float parameter it stands for, with statistics of (q - zero_point) * scale; scales and "
                           "zero points are not parameters")
    halves = [p for p in params if p.dequantize and p.tensor.type in FLOAT_TYPES]
    if halves:
        model.notes.append(f"{len(halves)} weights are stored as {halves[0].tensor.type_name} and widened to float32 "
                           "by DEQUANTIZE ops: counted once, at the float weight's shape")
    sparse = sum(1 for p in params if p.tensor.sparse)
    if sparse:
        model.notes.append(f"{sparse} weights are stored sparse: counted at their dense shape, statistics not read")
    if constants:
        model.notes.append(f"{constants} constant tensors are shapes, indices, scalars or other constants, "
                           "not parameters")
    if shared:
        model.notes.append(f"{shared} weight tensors share their bytes with another (the converter stores identical "
                           "bytes once, even under different quantization): each counted as its own parameter, in "
                           "the layer that reads it")
    copies = [p for p in params if p.copy]
    if copies:
        tensors = len({(p.subgraph, p.tensor.index) for p in params if p.copies > 1})
        extra = sum(p.tensor.size for p in copies)
        model.notes.append(f"the converter stores identical constants once: {tensors} weight tensors (such as the "
                           f"all-zero biases of an untrained model) are read by the ops of {len(copies) + tensors} "
                           f"layers; counted once per layer, as Keras does ({extra} values more than the file "
                           "holds)")
    if unnamed:
        model.notes.append(f"{unnamed} layers have no name in the file (the converter named their weights after "
                           "itself, as arith.constant): named after their op")
    model.notes.append("shapes are TFLite's own layouts: FULLY_CONNECTED weights [out, in], CONV_2D [out, h, w, "
                       "in], DEPTHWISE_CONV_2D [1, h, w, channels x multiplier] (its fans those of Keras' [h, w, "
                       "channels, multiplier]), recurrent weights split by gate; a normalization's scale and "
                       "offset at Keras' shape ([C], not the [1, 1, C] the converter broadcasts)")
