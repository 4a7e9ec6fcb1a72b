"""Build the model description from a walked Keras config and the tensors the
file stores. Shared by the ``.keras`` and legacy HDF5 readers, which differ
only in how they find a layer's tensors:

- ``.keras``: unnamed ``vars/N`` datasets under the layer's save path and
  the paths of its sub-layers (``cell``, ``forward_layer``, ``query_dense``);
  names and roles come from ``keras_layers.own_slots``.
- legacy HDF5: named datasets (``weight_names``), roles from the names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from reglint.model import Container, Layer, Model, Output, Problem, ProblemKind, Regularizer, Role, Variable
from reglint.model.nesting import OUTPUTS, NestedGraph
from reglint.model.versions import frozen_batch_norm_is_fixed, major_minor
from reglint.readers.keras_config import (
    LayerNode,
    ModelConfig,
    built_mixed_float16,
    container_io,
    container_output_refs,
    keras3_release,
    variable_trains,
)
from reglint.readers.keras_custom import group_slots
from reglint.readers.keras_fans import kernel_fan_axes
from reglint.readers.keras_layers import (
    DEFAULT_INIT,
    MHA_LIKE,
    PROJECTION_NAMES,
    RNN_LAYERS,
    VALUE_KEEPING,
    WEIGHTLESS,
    cell_label,
    child_layers,
    direction_label,
    initializer_keys,
    match_child,
    own_slots,
    quantization_mode,
    quantized_layouts,
    regularizer_keys,
    stacked_cell_owner,
)
from reglint.readers.keras_objects import (
    is_loss_map,
    keras2_unknown_weight_names,
    keras2_unreached_outputs,
    keras2_weights_by_output,
    keras3_unpaired_loss_weights,
    keras3_weights_in_loss_order,
    parse_initializer,
    parse_losses,
    parse_optimizer,
    parse_regularizer,
    unusable_loss_weights,
)
from reglint.readers.keras_param_groups import attach_param_groups
from reglint.readers.keras_wrappers import activity_config, output_config, slot_frozen, without_aliases
from reglint.readers.limits import ReadOptions
from reglint.readers.tensor_stats import h5_dataset_stats, keras_dtype_attr, saved_abs_cosine

# Stored names of variables that are state, not trained: Keras 1/2 batch-norm
# statistics and the preprocessing Normalization layer's adapted values.
NON_TRAINABLE_NAMES = {"moving_mean", "moving_variance", "running_mean", "running_std",
                       "running_var", "mean", "variance", "count"}


@dataclass
class FoundTensor:
    """A stored tensor found for a layer, before naming."""

    dataset: Any  # h5py.Dataset
    location: str
    owner_class: str | None  # class of the (sub-)layer owning it, if resolved
    owner_config: dict[str, Any]
    name: str | None = None  # stored name, where the format has one
    role: Role | None = None
    trainable: bool | None = None
    prefix: str = ""  # sub-layer prefix for the variable name (forward_lstm/)
    group: str = ""  # the owning object's save path inside the layer (forward_layer/cell)
    by_layout: bool = False  # named from the storage layout (keras_custom), not from the file
    alias: bool = False  # a second copy of a variable stored elsewhere in the layer (Slot.alias)


def build_layer(node: LayerNode, tensors: list[FoundTensor], options: ReadOptions,
                model: Model) -> Layer:
    """One description ``Layer`` from a config node and its stored tensors."""
    slots_known = own_slots(node.class_name, node.config) is not None or node.class_name in RNN_LAYERS
    known = slots_known or node.is_operation or bool(child_layers(node.class_name, node.config))
    custom = not known
    # A single-layer wrapper's output is its wrapped layer's: width and activation are that layer's
    output_cfg = output_config(node.class_name, node.config)
    layer = Layer(
        name=node.name,
        path=node.path,
        class_name=node.class_name,
        trainable=node.trainable,
        activity_regularizer=_regularizer(activity_config(node.class_name, node.config), model, node.path, "activity"),
        custom=custom,
        activation=_activation(output_cfg),
        # a custom class's "units" is a constructor argument of unknown
        # meaning (a subclassed model's hidden width): not an output width
        units=None if custom else _units(output_cfg),
        inbound=list(node.inbound),
        inbound_tensors=list(node.inbound_tensors),
        calls=node.calls,
        config=node.config,
    )
    _name_by_position(tensors, model, node)
    tensors = without_aliases(tensors, model, node)
    for found in tensors:
        layer.variables.append(_variable(found, node, options, model, attach=not custom))
    if not layer.trainable and any(v.trainable for v in layer.variables):
        layer.trainable = True  # Keras 3 trains what a frozen layer's sub-layers own (variable_trains)
        holder = (f"this {node.class_name}" if node.config.get("trainable") is False
                  else f"the model holding it ({node.container or 'the model'})")
        model.notes.append(f"{node.path}: the config freezes {holder}, but Keras 3 does not hand that flag to the "
                           "layers inside when it builds them: their weights train (counted as trainable); set "
                           "trainable = False on it after loading to freeze them")
    if node.config.get("lora_rank"):
        _lora_variables(layer, node)
    if quantization_mode(node.config) == "float8" and model.format == "keras_h5":
        model.problems.append(Problem(
            ProblemKind.WEIGHTS_MISMATCH, node.path,
            "a float8-quantized layer in a legacy .h5 file: Keras' HDF5 loader assigns weights by position, and a "
            "float8 layer built from the config orders them otherwise (every release from 3.3 to 3.15 refuses it: "
            "'Shape mismatch ... inputs_scale')", blocks_load=True,
            reason="float8_legacy_h5"))
    if quantization_mode(node.config) in ("int8", "int4", "gptq", "awq"):
        # integer weights and scales: not trained; the bias is, except in
        # Keras 3.1, whose Dense.quantize set bias.trainable = False
        bias_trains = keras3_release(model.framework_version, model.framework) != (3, 1)
        for var in layer.variables:
            var.trainable = var.trainable and var.role is Role.BIAS and bias_trains
    if custom:
        _attach_custom_regularizers(layer, node, model)
        if tensors and found_unnamed(tensors):
            model.notes.append(_unrecorded_trainable_note(layer, tensors))
    return layer


def _unrecorded_trainable_note(layer: Layer, tensors: list[FoundTensor]) -> str:
    state = sum(var.role.is_statistic for var in layer.variables)
    held = [(var, found) for var, found in zip(layer.variables, tensors, strict=False)
            if not var.trainable and not var.role.is_statistic]
    quantized = sum(found.trainable is False for _, found in held)  # integers and scales (keras_custom)
    frozen = len(held) - quantized  # frozen by the config (trainable=False)
    why = [text for n, text in ((state, f"{state} moving statistics (groups of four equal vectors: a "
                                        "BatchNormalization's layout)"),
                                (quantized, f"{quantized} integer tensors and scales of quantized sub-layers"),
                                (frozen, f"{frozen} its config freezes (trainable=False)"))
           if n]
    counted = ("all are counted as trainable" if not why else
               f"all but {state + quantized + frozen} are counted as trainable: not {' and '.join(why)}")
    return (f"{layer.path}: custom layer {layer.class_name}: the file does not record which of its {len(tensors)} "
            f"weights are trainable; {counted}")


def _lora_variables(layer: Layer, node: LayerNode) -> None:
    """A LoRA-enabled layer (``lora_rank`` saved): the base kernel is frozen
    (Keras adds no penalty for it) and the factors train under its
    regularizer. Legacy HDF5 names them ``lora_kernel_a``, which the weight
    name reader shortens to ``kernel_a``: their names and initializers are
    restored here."""
    from reglint.readers.keras_shapes import lora_base

    base = lora_base(node.class_name)
    if base is None:
        return
    for var in layer.variables:
        short = var.name.split("/")[-1]
        if short == base:
            var.trainable = False
        elif short in (f"{base}_a", f"{base}_b", f"lora_{base}_a", f"lora_{base}_b"):
            var.name = var.name[: len(var.name) - len(short)] + "lora_" + short.removeprefix("lora_")
            var.initializer = parse_initializer("zeros" if short.endswith("_b") else "he_uniform")


def _name_by_position(tensors: list[FoundTensor], model: Model, node: LayerNode) -> None:
    """Give unnamed tensors names and roles from their owner's slot list."""
    groups: dict[tuple[str, str | None], list[FoundTensor]] = {}
    for found in tensors:
        if found.role is None:
            groups.setdefault((found.group or found.prefix, found.owner_class), []).append(found)
    for (prefix, owner_class), items in groups.items():
        slots = own_slots(owner_class, items[0].owner_config) if owner_class else None
        if owner_class is None and _name_by_layout(prefix, items):
            continue
        if slots is not None and len(slots) != len(items):  # another release's layout of a quantized layer?
            slots = next((layout for layout in _layouts(owner_class, items[0].owner_config)
                          if len(layout) == len(items)), slots)
        unsaved_zero = _without_kernel_zero(slots, items, items[0].owner_config)
        if unsaved_zero is not None:
            slots = unsaved_zero
            model.problems.append(Problem(
                ProblemKind.WEIGHTS_MISMATCH, node.path,
                f"{owner_class} under {prefix or node.path} stores no kernel_zero: Keras 3.14 and 3.15 save GPTQ and "
                "AWQ layers without it and cannot load the file they wrote", target="kernel_zero", blocks_load=True,
                reason="unsaved_kernel_zero"))
        if slots is not None and len(slots) != len(items):
            model.problems.append(Problem(
                ProblemKind.WEIGHTS_MISMATCH, node.path,
                f"{owner_class} under {prefix or node.path} stores {len(items)} tensors where its config "
                f"implies {len(slots)}", blocks_load=True))
            slots = slots if len(slots) < len(items) else slots[: len(items)]
        for index, found in enumerate(items):
            if slots is not None and index < len(slots):
                found.name, found.role, found.trainable = slots[index].name, slots[index].role, slots[index].trainable
                found.alias = slots[index].alias
            else:
                found.name, found.role = _guess(found, index)


def _name_by_layout(group: str, items: list[FoundTensor]) -> bool:
    """A custom layer's group named from its layout (``keras_custom``):
    True when it was."""
    slots = group_slots(group, [tuple(int(d) for d in (found.dataset.shape or ())) for found in items],
                        [_is_integer(found.dataset) for found in items])
    if slots is None:
        return False
    for found, (name, role, trainable) in zip(items, slots, strict=True):
        found.name, found.role, found.by_layout = name, role, True
        if trainable is False:
            found.trainable = False
    return True


def _is_integer(ds) -> bool:
    kind = getattr(getattr(ds, "dtype", None), "kind", "")
    return kind in ("i", "u")


def _without_kernel_zero(slots, items: list, cfg: dict):
    """The GPTQ/AWQ layout without ``kernel_zero`` when that is what was
    stored (Keras 3.14/3.15's ``save_own_variables`` skips it), else None."""
    if slots is None or len(slots) != len(items) + 1 or quantization_mode(cfg) not in ("gptq", "awq"):
        return None
    trimmed = tuple(slot for slot in slots if slot.name != "kernel_zero")
    return trimmed if len(trimmed) == len(items) else None


def _layouts(owner_class: str | None, cfg: dict) -> list:
    mode = quantization_mode(cfg) if owner_class else None
    if mode is None or owner_class is None:
        return []
    use_bias = cfg.get("use_bias", True) is not False and (owner_class != "EinsumDense" or bool(cfg.get("bias_axes")))
    return quantized_layouts(owner_class, mode, use_bias, cfg.get("tie_weights", True) is not False)


def _guess(found: FoundTensor, index: int) -> tuple[str, Role]:
    """Unknown layers: rank >= 2 looks like a kernel, rank 1 like a bias;
    the report marks such layers as custom."""
    rank = len(found.dataset.shape or ())
    return f"var_{index}", (Role.KERNEL if rank >= 2 else Role.BIAS if rank == 1 else Role.OTHER)


def found_unnamed(tensors: list[FoundTensor]) -> bool:
    return any(t.name is None or t.name.startswith("var_") or t.by_layout for t in tensors)


def _variable(found: FoundTensor, node: LayerNode, options: ReadOptions, model: Model,
              attach: bool = True) -> Variable:
    role = found.role or Role.OTHER
    owner_class = found.owner_class or node.class_name
    if owner_class == "Embedding" and role is Role.KERNEL:
        role = Role.EMBEDDINGS  # Keras 1 named the table W
    cfg = found.owner_config
    release = keras3_release(model.framework_version, model.framework)
    trainable = variable_trains(node, cfg, release) and not role.is_statistic and found.trainable is not False
    frozen_slot = found.trainable is None and slot_frozen(owner_class, cfg, found.name)
    if (found.name or "") in NON_TRAINABLE_NAMES or frozen_slot:
        trainable = False
    shape = tuple(int(d) for d in (found.dataset.shape or ()))
    var = Variable(
        name=f"{found.prefix}{found.name}",
        role=role,
        shape=shape,
        trainable=trainable,
        dtype=_dtype(found.dataset),
        location=found.location,
    )
    if attach:
        reg_cfg = _first(cfg, regularizer_keys(owner_class, role))
        var.regularizer = _regularizer(reg_cfg, model, node.path, var.name)
    init_cfg = _first(cfg, initializer_keys(owner_class, role))
    var.initializer = parse_initializer(init_cfg) if init_cfg is not None else parse_initializer(DEFAULT_INIT.get(role))
    _lstm_forget_bias(var, owner_class, cfg)
    var.fan_axes = kernel_fan_axes(var, owner_class, cfg, model.framework_version)
    if options.weight_stats:
        try:
            own = getattr(found.dataset, "compute_stats", None)  # non-HDF5 tensors (SavedModel shards)
            var.stats = own() if own is not None else h5_dataset_stats(found.dataset, options.chunk_bytes)
        except Exception as exc:  # a corrupt chunk must not sink the whole report
            model.problems.append(Problem(ProblemKind.UNREADABLE, node.path,
                                          f"cannot read {var.name} values: {type(exc).__name__}", target=var.name))
        if var.regularizer is not None and var.regularizer.kind == "orthogonal" and var.stats is not None:
            var.saved_abs_cosine = saved_abs_cosine(found.dataset, var.regularizer.mode or "rows")
    return var


# Recurrent layers whose bias Keras builds with ``unit_forget_bias`` (default
# True): ``bias_initializer`` for the input gate, ones for the forget gate's
# ``units`` (``filters``) elements, ``bias_initializer`` for the rest
# (keras/src/layers/rnn/lstm.py, conv_lstm.py; CuDNNLSTM's 8*units bias in
# Keras 2 likewise has ``units`` ones).
FORGET_BIAS_CLASSES = frozenset({"LSTM", "LSTMCell", "LSTMV1", "UnifiedLSTM", "CuDNNLSTM", "ConvLSTM1D",
                                 "ConvLSTM2D", "ConvLSTM3D", "ConvLSTMCell", "ConvLSTM1DCell", "ConvLSTM2DCell",
                                 "ConvLSTM3DCell", "PeepholeLSTMCell"})


def _lstm_forget_bias(var: Variable, owner_class: str, cfg: dict) -> None:
    """An LSTM's bias starts with ``units`` ones (the forget gate) unless
    ``unit_forget_bias`` is off: the penalty at a fresh initialisation
    counts them (L2(10) on a 32-unit LSTM's bias: 320, not 0). Keras 1
    kept the forget gate's bias apart (``b_f``), drawn by
    ``forget_bias_init`` (``'one'`` by default)."""
    if var.role is not Role.BIAS or owner_class not in FORGET_BIAS_CLASSES:
        return
    if var.name.rsplit("/", 1)[-1].endswith("b_f") and "forget_bias_init" in cfg:
        var.initializer = parse_initializer(cfg["forget_bias_init"])
        return
    if var.initializer is None or cfg.get("unit_forget_bias", True) is False or "forget_bias_init" in cfg:
        return
    units = cfg.get("units", cfg.get("filters"))
    if isinstance(units, int) and not isinstance(units, bool) and 0 < units <= var.size:
        var.initializer.ones = units


def _attach_custom_regularizers(layer: Layer, node: LayerNode, model: Model) -> None:
    """Custom layers: read every ``*_regularizer`` key; attach it to the
    variable of that name if one exists, else to the first kernel- or
    bias-shaped variable, and say so in the notes."""
    for key, value in node.config.items():
        if not key.endswith("_regularizer") or key == "activity_regularizer" or value is None:
            continue
        target = key[: -len("_regularizer")]
        reg = _regularizer(value, model, node.path, target)
        if reg is None:
            continue
        var = next((v for v in layer.variables if v.name.split("/")[-1] == target and v.regularizer is None), None)
        if var is None:
            wanted = Role.BIAS if target in ("bias", "b") else Role.KERNEL
            var = next((v for v in layer.variables if v.role is wanted and v.regularizer is None), None)
        if var is None:
            model.notes.append(f"{layer.path}: {key} could not be matched to a stored variable")
            continue
        var.regularizer = reg
        model.notes.append(f"{layer.path}: custom layer {layer.class_name}; {key} attached to {var.name} "
                           f"{list(var.shape)} by name and shape")


def _regularizer(obj: Any, model: Model, path: str, target: str) -> Regularizer | None:
    reg = parse_regularizer(obj)
    if reg is not None and reg.invalid:
        for problem in reg.invalid:
            model.problems.append(Problem(ProblemKind.INVALID_REGULARIZER, path,
                                          f"{target} regularizer: {problem}", target=target))
    return reg


def _first(cfg: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    return None


def _dtype(ds) -> str:
    """Keras' ``dtype`` attribute (bfloat16 is stored as uint16), else the
    stored dtype."""
    return keras_dtype_attr(ds) or str(ds.dtype)


def _activation(cfg: dict[str, Any]) -> str | None:
    act = cfg.get("activation")
    if isinstance(act, str):
        return act
    if isinstance(act, dict):
        name = act.get("class_name") or act.get("config", {}).get("name")
        return str(name) if name else None
    return None


def _units(cfg: dict[str, Any]) -> int | None:
    for key in ("units", "filters", "output_dim", "nb_filter"):
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


# --------------------------------------------------------------------------
# owners of named tensors (legacy HDF5)


def owner_for_components(class_name: str, cfg: dict[str, Any],
                         components: list[str]) -> tuple[str, dict[str, Any], str]:
    """For a stored name such as ``bidirectional/backward_lstm/lstm_cell/kernel``,
    the (class, config) whose regularizer keys apply, and a name prefix."""
    children = child_layers(class_name, cfg)
    if not children:
        return class_name, cfg, ""
    if class_name == "Bidirectional":
        key = "backward_layer" if _is_backward(children, components) else "forward_layer"
        child_class, child_cfg = children[key]
        sub_class, sub_cfg, _ = owner_for_components(child_class, child_cfg, components)
        return sub_class, sub_cfg, direction_label(key.split("_")[0], child_cfg) + "/"
    if class_name in RNN_LAYERS or class_name == "RNN":
        child_class, child_cfg = children["cell"]
        if child_class == "StackedRNNCells" and (cell := stacked_cell_owner(child_cfg, components)) is not None:
            return cell
        return child_class, child_cfg, ""
    if class_name == "TimeDistributed":
        child_class, child_cfg = children["layer"]
        sub_class, sub_cfg, prefix = owner_for_components(child_class, child_cfg, components)
        return sub_class, sub_cfg, prefix
    if class_name == "SpectralNormalization":
        # sn/dense/kernel (Keras 3), sn/kernel:0 (tf-keras): the wrapped
        # layer's; sn/vector_u: the wrapper's own
        if components and components[-1].split(":")[0] == "vector_u":
            return class_name, cfg, ""
        child_class, child_cfg = children["layer"]
        return owner_for_components(child_class, child_cfg, components)
    if class_name in MHA_LIKE:
        child_class, child_cfg = next(iter(children.values()))
        part = components[-2] if len(components) >= 2 else ""
        return child_class, child_cfg, f"{part}/" if part else ""
    return class_name, cfg, ""


def _is_backward(children: dict[str, tuple[str, dict[str, Any]]], components: list[str]) -> bool:
    """Whether a Bidirectional's stored name is its backward copy's: Keras
    names the copies ``forward_<name>``/``backward_<name>``, but a
    ``backward_layer`` given by the user keeps its own name in Keras 3
    (``bidirectional/gru_1/gru_cell/kernel``)."""
    forward_cfg, backward_cfg = children["forward_layer"][1], children["backward_layer"][1]
    own = backward_cfg.get("name") if backward_cfg is not forward_cfg else None
    names = {direction_label("backward", backward_cfg)} | ({str(own)} if own else set())
    names -= {direction_label("forward", forward_cfg)}
    return any(c.startswith("backward") or c in names for c in components)


def owner_for_attr_path(class_name: str, cfg: dict[str, Any],
                        attrs: list[str]) -> tuple[str | None, dict[str, Any], str]:
    """For a ``.keras`` sub-path such as ``forward_layer/cell``, the owning
    (class, config) and a name prefix; (None, {}, path) when unknown."""
    prefix_parts: list[str] = []
    current_class, current_cfg = class_name, cfg
    for attr in attrs:
        if current_class == "StackedRNNCells" and attr == "cells":
            continue  # the list holding the cells: cell/cells/lstm_cell
        children = child_layers(current_class, current_cfg)
        key = match_child(children, attr)
        if key is None:
            return None, {}, "/".join(attrs) + "/"
        stacked = current_class == "StackedRNNCells"
        current_class, current_cfg = children[key]
        if stacked:
            prefix_parts.append(cell_label(current_cfg, key))
        elif key in ("forward_layer", "backward_layer"):
            # Keras names the copies forward_<name> / backward_<name> at run time.
            prefix_parts.append(direction_label(key.split("_")[0], current_cfg))
        elif key.lstrip("_") in PROJECTION_NAMES:
            prefix_parts.append(PROJECTION_NAMES[key.lstrip("_")])
    prefix = "/".join(prefix_parts) + "/" if prefix_parts else ""
    return current_class, current_cfg, prefix


# --------------------------------------------------------------------------
# model-level settings


def attach_training_config(model: Model, compile_cfg: Any, tree: ModelConfig, model_cfg: Any = None) -> None:
    """Optimizer and losses from a Keras 3 ``compile_config`` or a legacy ``training_config``
    (``optimizer`` vs ``optimizer_config``); ``model_cfg``'s dtype policy: did compile wrap it."""
    if not isinstance(compile_cfg, dict):
        return
    opt_obj = compile_cfg.get("optimizer", compile_cfg.get("optimizer_config"))
    try:
        model.optimizer = parse_optimizer(opt_obj)
        if model.optimizer is not None and built_mixed_float16(model_cfg):  # compile wraps it, saves the inner
            model.optimizer.config["loss_scale_optimizer"] = True
        attach_param_groups(model, tree)  # MultiOptimizer, Muon: which variables each part updates
    except Exception as exc:  # hostile shapes of a config must not crash the report
        model.problems.append(Problem(ProblemKind.UNREADABLE, "", f"unreadable optimizer config: {type(exc).__name__}",
                                      target="optimizer"))
    if model.optimizer is not None:
        for name, raw in model.optimizer.invalid.items():
            model.problems.append(Problem(ProblemKind.INVALID_OPTIMIZER, "", f"optimizer {name} is {raw}, not a number",
                                          target=f"optimizer.{name}", value=raw))
    loss_obj, loss_weights = compile_cfg.get("loss"), compile_cfg.get("loss_weights")
    version = model.framework_version or ""
    keras3 = version.startswith("3")
    # Keras 1/2 (tf.keras, tf-keras) pair the weights with the outputs by
    # the names Keras gives them; None where those are unknown.
    keras2_names = keras2_output_names(tree) if version.startswith(("1.", "2.")) else None
    model.problems.extend(loss_weight_problems(loss_obj, loss_weights, keras3=keras3, keras2_outputs=keras2_names))
    saved_weights = loss_weights
    if keras3:
        loss_weights = keras3_weights_in_loss_order(loss_obj, loss_weights)
    elif keras2_names is not None:
        loss_weights = keras2_weights_by_output(loss_weights, keras2_names)
    try:
        model.losses = parse_losses(loss_obj, loss_weights, keras2_names or tree.output_layers)
    except Exception as exc:
        model.problems.append(Problem(ProblemKind.UNREADABLE, "", f"unreadable loss config: {type(exc).__name__}",
                                      target="loss"))
    if keras2_names is not None:
        model.problems.extend(dropped_loss_problems(model, saved_weights, keras2_names))
    model.problems.extend(loss_name_problems(loss_obj, tree, keras3=keras3, keras2_outputs=keras2_names,
                                              version=version, zip_format=model.format == "keras_v3"))


def keras2_output_names(tree: ModelConfig) -> list[str] | None:
    """The names tf-keras gives the outputs of a Functional or Sequential
    model whose outputs are one tensor or a flat list (what its
    ``map_to_output_names`` keys a dict of weights by, and what a list of
    weights is zipped with); None for outputs written as a dict and for a
    subclassed model (pseudo names ``output_1``...)."""
    refs = [ref.name for ref in tree.output_refs]
    subclassed = len(tree.leaves) == 1 and not tree.containers and tree.leaves[0].class_name == tree.class_name
    if not refs or subclassed or any(key is not None for key in tree.output_keys):
        return None
    return output_names(refs)


def dropped_loss_problems(model: Model, loss_weights: Any, names: list[str]) -> list[Problem]:
    """One ``DROPPED_LOSS`` per output that has a loss but no entry in a
    list of weights shorter than the outputs: tf-keras never computes
    that loss (its weight reads 0 in ``model.losses``)."""
    unreached = keras2_unreached_outputs(loss_weights, names)
    raw = repr(loss_weights)[:200]
    return [Problem(ProblemKind.DROPPED_LOSS, loss.output, f"{loss.output} gets no loss: compile's loss_weights "
                    f"{raw} end before it and tf-keras zips the outputs with them", target="loss_weights", value=raw)
            for loss in model.losses if loss.output in unreached]


def loss_weight_problems(loss_obj: Any, loss_weights: Any, *, keras3: bool,
                         keras2_outputs: list[str] | None = None) -> list[Problem]:
    """Saved ``loss_weights`` Keras cannot train on (RL026): entries that are
    not numbers (``fit`` fails), numbers that are not finite (the loss is
    NaN), in a Keras 3 file, weights ``fit`` cannot pair with the losses,
    and in a tf-keras file (``keras2_outputs``: its output names), a dict
    of weights naming no output (tf-keras' ``fit`` raises). Each message
    says what Keras does; ``target`` says which case."""
    raw = repr(loss_weights)[:200]
    not_numbers, not_finite = unusable_loss_weights(loss_weights)
    if not_numbers:
        return [Problem(ProblemKind.INVALID_LOSS_WEIGHT, "", f"compile's loss_weights hold {', '.join(not_numbers)}, "
                        f"not numbers: Keras' fit fails on them", target="loss_weights", value=raw)]
    problems = []
    if not_finite:
        problems.append(Problem(ProblemKind.INVALID_LOSS_WEIGHT, "",
                                f"compile's loss_weights hold {', '.join(not_finite)}, not finite numbers: the loss "
                                f"is NaN from the first step", target="loss_weights:nonfinite", value=raw))
    unpaired = keras3_unpaired_loss_weights(loss_obj, loss_weights) if keras3 else None
    if unpaired:
        problems.append(Problem(ProblemKind.INVALID_LOSS_WEIGHT, "",
                                f"compile's loss_weights hold {unpaired}: Keras 3's fit fails on them "
                                f"(\"`loss_weights` must match the number of losses\"; Keras 2 applied one loss to "
                                f"every output and read a missing name as 1)", target="loss_weights:pairing",
                                value=raw))
    unknown = keras2_unknown_weight_names(loss_weights, keras2_outputs) if keras2_outputs is not None else []
    if unknown:
        one = len(unknown) == 1
        problems.append(Problem(
            ProblemKind.INVALID_LOSS_WEIGHT, "",
            f"compile's loss_weights name {', '.join(unknown)}, which {'is' if one else 'are'} no output of the "
            f"model (its outputs: {', '.join(keras2_outputs or [])}): tf-keras' fit fails on {'it' if one else 'them'} "
            f"(\"Found unexpected losses or metrics that do not correspond to any Model output\")",
            target="loss_weights:unknown_output", value=raw))
    return problems


def loss_name_problems(loss_obj: Any, tree: ModelConfig, *, keras3: bool,
                       keras2_outputs: list[str] | None, version: str = "",
                       zip_format: bool | None = None) -> list[Problem]:
    """One ``UNKNOWN_LOSS_OUTPUT`` when a dict of losses has keys that name
    no output of the model, in the cases where the file's own Keras raises
    in ``fit`` on them (RL027's table):

    - Keras 3, outputs one tensor or a list: any such key (3.15's
      ``CompileLoss.build``: "Expected keys [...] in loss dict"; earlier 3.x:
      "does not correspond to any model output"). From 3.15 the names are
      the output layers' own, repeats kept (an ``LSTM`` returning its
      states is ``lstm`` three times), the key set must equal theirs (a
      missing key raises too), and in 3.15 a ``Sequential`` (no output
      names) raises ``TypeError`` on any dict; before 3.15 a tf-keras-style
      ``bb_1`` and a missing key are let through, and a ``Sequential``
      counts its last layer as its output.
    - Keras 3, outputs a dict: a key with a loss (not None) that is not one
      of the dict's keys (3.15: ``KeyError`` "can't be found in ... the
      model's output"; before 3.15 the output's layer name is also let
      through). A None loss there is skipped by Keras.
    - tf-keras, outputs one tensor or a flat list: any such key
      (``map_to_output_names``: "Found unexpected losses or metrics").
    - tf-keras, outputs a dict: unknown keys are ignored, so only a dict
      none of whose keys (with a loss) is an output's key is reported: no
      data loss is computed ("No loss found", or the penalties alone are
      trained on). An output's layer name counts as its key in .h5 and
      SavedModel files (tf-keras trains them), not in a .keras file
      (``zip_format``: its fit raises "No loss found"; review 10).

    Subclassed models (no output names in the file) are not judged."""
    if not is_loss_map(loss_obj) or not tree.output_refs:
        return []
    subclassed = len(tree.leaves) == 1 and not tree.containers and tree.leaves[0].class_name == tree.class_name
    if subclassed:
        return []
    found: LossKeys | None
    if keras3:
        written = major_minor(version) or (3, 0)
        found = _keras3_unknown_loss_keys(loss_obj, tree, since_315=written >= (3, 15), exactly_315=written == (3, 15))
    elif keras2_outputs is not None:
        found = LossKeys([str(key) for key in loss_obj if str(key) not in keras2_outputs], list(keras2_outputs),
                         "tf-keras' fit raises (\"Found unexpected losses or metrics that do not correspond to "
                         "any Model output\")")
    elif version.startswith(("1.", "2.")):
        found = _keras2_dict_output_unmatched(loss_obj, tree, by_layer_name=not zip_format)
    else:
        return []
    if found is None:
        return []
    unknown, names, raises = found.unknown, found.names, found.raises
    unkeyed = [name for name in dict.fromkeys(names) if name not in {str(key) for key in loss_obj}]
    if unknown:
        one = len(unknown) == 1
        hint = f"; no loss is keyed by {', '.join(repr(n) for n in unkeyed)}" if unkeyed else ""
        said = (f"compile's loss dict names {', '.join(repr(k) for k in unknown)}, which {'is' if one else 'are'} "
                f"no output of the model (its outputs: {', '.join(dict.fromkeys(names))}): {raises}{hint}")
    elif unkeyed and found.missing_raises:  # Keras 3.15: a missing key raises as well
        said = (f"compile's loss dict has no key for {', '.join(repr(n) for n in unkeyed)} (its outputs: "
                f"{', '.join(dict.fromkeys(names))}): {raises}")
    else:
        return []
    return [Problem(ProblemKind.UNKNOWN_LOSS_OUTPUT, "", said, target="loss",
                    value=repr(sorted(map(str, loss_obj)))[:200])]


@dataclass(frozen=True)
class LossKeys:
    """What a Keras makes of a dict of losses: the keys it rejects, the
    output names it expects, what its fit raises, and whether an output
    left without a key raises too (Keras 3.15)."""

    unknown: list[str]
    names: list[str]
    raises: str
    missing_raises: bool = False


def _keras3_unknown_loss_keys(loss_obj: dict, tree: ModelConfig, *, since_315: bool,
                              exactly_315: bool = False) -> LossKeys:
    """The keys Keras 3's ``fit`` rejects, the output names it expects and
    what it raises (``loss_name_problems``' table); nothing rejected when
    it accepts the dict. Checked on 3.15.1; earlier 3.x are judged by the union of
    the names any of them accepted. The Sequential case is a 3.15 defect,
    reported for files 3.15 wrote only (a later release may mend it)."""
    layers = [ref.name for ref in tree.output_refs]
    keys = [key for key in tree.output_keys if key is not None]
    if exactly_315 and tree.class_name == "Sequential":
        # No output_names: CompileLoss.build compares the dict's keys with None.
        return LossKeys([str(key) for key in loss_obj], layers[-1:],
                        "Keras 3.15's fit raises (TypeError: 'NoneType' object is not iterable) on any dict of "
                        "losses for a Sequential model: pass the loss itself")
    if keys:
        valid = set(keys) if since_315 else set(keys) | set(layers)
        return LossKeys([str(key) for key, loss in loss_obj.items() if str(key) not in valid and loss is not None],
                        keys, "Keras 3's fit raises (\"... can't be found in the model's output\")")
    if since_315:
        unknown = [str(key) for key in loss_obj if str(key) not in set(layers)]
        if not unknown:  # the key set must equal the output names'
            return LossKeys([], layers, "Keras 3.15's fit raises (\"Expected keys [...] in loss dict\"): every "
                                        "output needs a key (None for no loss)", missing_raises=True)
        return LossKeys(unknown, layers, "Keras 3's fit raises (\"Expected keys [...] in loss dict\")")
    valid = set(output_names(layers)) | set(layers)
    return LossKeys([str(key) for key in loss_obj if str(key) not in valid], output_names(layers),
                    "Keras 3's fit raises (\"Expected keys [...] in loss dict\"; before 3.15: \"does not correspond "
                    "to any model output\")")


def _keras2_dict_output_unmatched(loss_obj: dict, tree: ModelConfig, *, by_layer_name: bool = True) -> LossKeys | None:
    """tf-keras with outputs written as a dict: the keys when none of those
    with a loss names an output (by its key, or its layer where
    ``by_layer_name``): tf-keras ignores unknown keys, so no data loss is
    computed at all. None otherwise."""
    keys = [key for key in tree.output_keys if key is not None]
    if not keys:
        return None
    known = set(keys) | ({ref.name for ref in tree.output_refs} if by_layer_name else set())
    with_loss = [str(key) for key, loss in loss_obj.items() if loss is not None]
    if not with_loss or any(key in known for key in with_loss):
        return None
    return LossKeys(with_loss, keys, "tf-keras computes no data loss: its fit raises (\"No loss found\") or, "
                                     "with penalties in the model, trains on the penalties alone")


def attach_graph(model: Model, tree: ModelConfig) -> None:
    """What the layer graph needs beyond each layer's inbound references:
    the nested models (their boundaries, the tensors they read, the order
    of their outputs and how Keras 3 numbers their calls), the outputs,
    and which batch normalizations are frozen into fixed affine maps."""
    mark_fixed_statistics(model)
    keras3 = model.framework != "tf.keras" and (model.framework_version or "").split(".")[0] == "3"  # to_json: "3"
    for node in tree.containers:
        inputs, outputs = container_io(node)
        model.containers.append(Container(
            path=node.path, name=node.name, inbound=list(node.inbound), inputs=inputs, outputs=outputs,
            inbound_tensors=list(node.inbound_tensors), output_tensors=container_output_refs(node),
            calls=max(1, node.calls), outputs_count_from=int(node.class_name != "Sequential") if keras3 else None))
    attach_outputs(model, tree)


# The batch normalizations Keras runs in inference mode when frozen.
_BATCH_NORMS = {"BatchNormalization", "SyncBatchNormalization"}


def mark_fixed_statistics(model: Model) -> None:
    """Flag the frozen batch normalizations Keras runs with their moving
    statistics while training (``Layer.fixed_statistics``; the versions:
    ``model.versions.frozen_batch_norm_is_fixed``)."""
    if not frozen_batch_norm_is_fixed(model.framework, model.framework_version):
        return
    for layer in model.layers:
        if layer.class_name in _BATCH_NORMS and not layer.trainable:
            layer.fixed_statistics = True


def attach_outputs(model: Model, tree: ModelConfig) -> None:
    """Output layers with their width, activation and Keras name (a dict
    output's key, else its layer's), each resolved in the top container, through
    nested models, to the layer that produces it (a nested model's output is the
    layer behind its tensor index; a name is looked up where the output sits,
    not among same-named layers of nested models; a shared layer: the call
    returned); an Activation or Softmax head takes its width from its input."""
    graph = NestedGraph(model, tree.output_refs)
    nested = {node.path: node for node in tree.containers}
    names = output_names([ref.name for ref in tree.output_refs])
    keys = tree.output_keys if len(tree.output_keys) == len(names) else [None] * len(names)
    names = [key if key is not None else name for key, name in zip(keys, names, strict=True)]
    for ref, name in zip(tree.output_refs, names, strict=True):
        found = graph.sources("", ref.name, ref.tensor, ref.node, OUTPUTS)
        if len(found) != 1:
            if ref.name in nested:  # a nested model's output no reference pins down: width unknown
                model.outputs.append(Output(layer=ref.name, name=name))
            continue
        layer = found[0]
        units, activation = layer.units, layer.activation
        if layer.class_name in ("Softmax",):
            activation = "softmax"
        probe: Layer | None = layer
        hops, kept = 0, True
        while units is None and probe is not None and hops < 8:
            # an activation read upstream is the output's only through layers that keep values
            # (a Rescaling(10) after a sigmoid is no longer inside [0, 1]: review 47, D4)
            kept = kept and (probe.class_name in VALUE_KEEPING or probe.class_name == "Activation")
            feeding = graph.feeding(probe)
            probe = feeding[0] if feeding else None
            hops += 1
            if probe is not None:
                units = probe.units
                if activation in (None, "linear") and probe.activation and kept:
                    activation = probe.activation
        model.outputs.append(Output(layer=layer.path, units=units, activation=activation, name=name, ref=ref))


def output_names(layers: list[str]) -> list[str]:
    """The names Keras gives a model's outputs, from the names of the
    top-level layers producing them: repeats made unique as tf-keras makes
    them (``Functional._set_output_names``: bb, bb_1, bb_2); Keras 3 keeps
    repeats, whose first then matches a loss keyed by the name.

    >>> output_names(["bb", "bb", "head", "bb"])
    ['bb', 'bb_1', 'head', 'bb_2']
    """
    taken: set[str] = set()
    counts: dict[str, int] = {}
    names = []
    for layer in layers:
        proposal = layer
        while proposal in taken:
            counts[layer] = counts.get(layer, 1)
            proposal = f"{layer}_{counts[layer]}"
            counts[layer] += 1
        taken.add(proposal)
        names.append(proposal)
    return names


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def is_weightless(class_name: str) -> bool:
    return class_name in WEIGHTLESS
