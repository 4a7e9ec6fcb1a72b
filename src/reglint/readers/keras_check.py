"""The config's variables against the stored tensors, layer by layer.

Every Keras reader builds its layers from the tensors the file stores; this
module then derives each layer's variables and shapes from the config
(``keras_graph`` for the input shapes, ``keras_shapes`` for what
``build()`` creates) and compares: a layer the weights file lacks, tensors
no layer owns, a shape that does not fit. Each disagreement is a typed
``Problem`` naming the layer and both shapes, ``blocks_load`` where Keras
refuses the file. Where the config fixes every shape and the file
disagrees, the layer's variables become the config's (so the report
counts what the model is, 15 parameters for a Dense(3) on 4 inputs, not
what a damaged file holds); the stored tensors stay counted wherever the
config cannot say (a custom class, an input shape lost after a Lambda).

The config's own count is kept in ``model.metadata["config_params"]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reglint.model import CallShapes, Layer, Model, Problem, ProblemKind
from reglint.readers.keras_build import FoundTensor, build_layer
from reglint.readers.keras_config import LayerNode, ModelConfig, keras3_release, variable_trains
from reglint.readers.keras_graph import input_shapes
from reglint.readers.keras_shapes import CannotInfer, Expected, InvalidConfig, expected_variables
from reglint.readers.keras_topology import check_graph
from reglint.readers.limits import ReadOptions


@dataclass
class LoadRules:
    """Which disagreements make Keras refuse the file, per format."""

    missing_blocks: bool = True  # a layer's variables absent from the file
    extra_blocks: bool = True  # tensors in a layer beyond what it creates
    what: str = "the weights file"
    # .keras files store a LoRA layer's kernel with its factors merged in;
    # Keras re-creates the factors (as zeros) when it loads the file.
    merges_lora: bool = False


KERAS_ZIP = LoadRules(what="model.weights.h5", merges_lora=True)
LEGACY_H5 = LoadRules(what="the HDF5 file")
SAVEDMODEL = LoadRules(missing_blocks=False, extra_blocks=False, what="the checkpoint")


@dataclass
class ConfigCount:
    """Parameters the config implies; ``unknown`` maps the layers whose
    shapes it does not fix to the reason."""

    total: int = 0
    trainable: int = 0
    unknown: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.unknown

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total if self.complete else None,
                "trainable": self.trainable if self.complete else None,
                "non_trainable": self.total - self.trainable if self.complete else None,
                "unknown": dict(self.unknown)}


class ConfigTensor:
    """A variable known only from the config: what ``build_layer`` reads of
    a stored tensor (shape, dtype, attributes), and no values."""

    def __init__(self, shape: tuple[int, ...], name: str, dtype: str = "float32"):
        self.shape = shape
        self.name = name
        self.attrs: dict[str, str] = {}
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            self.dtype = np.dtype("float32")
            self.attrs = {"dtype": dtype}

    def compute_stats(self):
        return None


def expected_for(node: LayerNode, shapes: dict[str, list]) -> list[Expected]:
    """The layer's variables as its config implies; CannotInfer with the reason."""
    if node.is_operation:
        return []
    return expected_variables(node.class_name, node.config, shapes.get(node.path) or [None])


def config_tensors(node: LayerNode, expected: list[Expected]) -> list[FoundTensor]:
    """Stand-ins for stored tensors, from the config (shapes fully known)."""
    dtype = _dtype_name(node.config)
    out = []
    for var in expected:
        tensor = ConfigTensor(tuple(int(d) for d in var.shape), f"{node.path}/{var.name}",
                              "int64" if var.short == "count" and var.role.value == "other" else dtype)
        out.append(FoundTensor(dataset=tensor, location="(from the config)", owner_class=var.owner_class,
                               owner_config=var.owner_config, name=var.short, role=var.role,
                               trainable=var.trainable, prefix=var.prefix))
    return out


def _dtype_name(cfg: dict) -> str:
    dtype = cfg.get("dtype")
    if isinstance(dtype, dict):
        inner = dtype.get("config")
        dtype = inner.get("name") if isinstance(inner, dict) else None
    if isinstance(dtype, str) and dtype.startswith("mixed_"):
        return "float32"  # mixed precision keeps float32 variables
    return dtype if isinstance(dtype, str) and dtype else "float32"


def invalid_config_problem(node: LayerNode, exc: InvalidConfig, counted: str) -> Problem:
    """A size Keras' constructor refuses (RL019): the file does not load,
    whether its weights are stored (.keras) or not (an architecture JSON)."""
    return Problem(ProblemKind.UNREADABLE, node.path, f"{exc}: Keras cannot build this layer, so it refuses to "
                   f"load the file; {counted}", target="config", blocks_load=True)


def build_from_config(model: Model, tree: ModelConfig, root: Any) -> ConfigCount:
    """Layers built from the config alone (an architecture JSON, a ``.keras``
    without its weights file): every variable from ``build()``'s shapes.
    A graph Keras cannot build is refused first (``keras_topology``)."""
    check_graph(root)
    shapes = input_shapes(root)
    count = ConfigCount()
    options = ReadOptions(weight_stats=False)
    for node in tree.leaves:
        try:
            expected = expected_for(node, shapes)
        except InvalidConfig as exc:  # Keras' constructor raises: the model does not load
            count.unknown[node.path] = str(exc)
            model.layers.append(build_layer(node, [], options, model))
            model.problems.append(invalid_config_problem(node, exc, "its parameters are not counted"))
            continue
        except CannotInfer as exc:
            count.unknown[node.path] = str(exc)
            model.layers.append(build_layer(node, [], options, model))
            model.notes.append(f"{node.path} ({node.class_name}): {exc}; its parameters cannot be counted "
                               "from the config")
            continue
        unknown = [v for v in expected if not v.known]
        if unknown:
            count.unknown[node.path] = _unknown_reason(node, unknown, shapes)
            model.layers.append(build_layer(node, [], options, model))
            model.notes.append(f"{node.path}: {count.unknown[node.path]}; its parameters cannot be counted "
                               "from the config")
            continue
        _add(count, node, expected, model)
        model.layers.append(build_layer(node, config_tensors(node, expected), options, model))
    model.metadata["config_params"] = count.as_dict()
    record_output_shapes(model, shapes)
    return count


def record_output_shapes(model: Model, shapes) -> None:
    """Each layer's first output shape, as the shape walk carried it
    (``Layer.output_shape``; the activity penalty's element count), and
    each run's shapes where a layer runs more than once (``Layer.call_shapes``)."""
    for layer in model.layers:
        outs, ins = shapes.outputs.get(layer.path), shapes.get(layer.path)
        if outs and outs[0] is not None:
            layer.output_shape = tuple(outs[0])
        if ins and ins[0] is not None:
            layer.input_shape = tuple(ins[0])
        runs = shapes.calls.get(layer.path, [])
        if len(runs) > 1:
            layer.call_shapes = [CallShapes(inputs, output) for inputs, output in runs]
        elif runs and runs[0][1] is not None and runs[0][0] and runs[0][0][0] is not None:
            # one call, whose shapes its feeders pin down beyond the build record (a tower on Input((None, 16))
            # called on 20 steps; review 63, 1)
            layer.input_shape, layer.output_shape = tuple(runs[0][0][0]), tuple(runs[0][1])


def check_against_config(model: Model, tree: ModelConfig, root: Any, rules: LoadRules) -> ConfigCount:
    """Compare every layer built from stored tensors with its config (a
    graph Keras cannot build is refused first: ``keras_topology``)."""
    check_graph(root)
    shapes = input_shapes(root)
    count = ConfigCount()
    layers = {layer.path: layer for layer in model.layers}
    for node in tree.leaves:
        layer = layers.get(node.path)
        if layer is None:
            continue
        try:
            expected = expected_for(node, shapes)
        except InvalidConfig as exc:  # Keras' constructor raises: the file does not load
            count.unknown[node.path] = str(exc)
            model.problems.append(invalid_config_problem(
                node, exc, f"its {len(layer.variables)} stored tensors are counted as stored"))
            continue
        except CannotInfer as exc:
            count.unknown[node.path] = str(exc)
            if layer.variables:
                hint = ("; regularizers its code sets are not in the file: `reglint profile --trust-model --import "
                        "MODULE` (the module that registers it) measures them") if layer.custom else ""
                model.notes.append(f"{node.path} ({node.class_name}): {exc}; its {len(layer.variables)} stored "
                                   f"tensors ({layer.params:,} parameters) are counted as stored{hint}")
            continue
        dropped = _compare(model, layer, node, expected, rules)
        if all(v.known for v in expected):
            _add(count, node, expected, model)
        else:
            count.unknown[node.path] = _unknown_reason(node, [v for v in expected if not v.known], shapes)
            if layer.variables:
                model.notes.append(f"{node.path}: {count.unknown[node.path]}; its {'other ' if dropped else ''}"
                                   "stored tensors are counted as stored")
    model.metadata["config_params"] = count.as_dict()
    record_output_shapes(model, shapes)
    return count


def _add(count: ConfigCount, node: LayerNode, expected: list[Expected], model: Model) -> None:
    release = keras3_release(model.framework_version, model.framework)
    for var in expected:
        size = var.size or 0  # called only when every shape is known
        count.total += size
        if var.trainable and variable_trains(node, var.owner_config, release):
            count.trainable += size


def _unknown_reason(node: LayerNode, unknown: list[Expected], shapes) -> str:
    names = ", ".join(f"{v.name} {_fmt(v.shape)}" for v in unknown[:3])
    opaque = [f"{path} ({cls})" for path, cls in getattr(shapes, "opaque", {}).items()
              if path.rsplit("/", 1)[0] == node.path.rsplit("/", 1)[0] or "/" not in path]
    after = f"; it follows {', '.join(opaque[:3])}, whose output shape the config does not give" if opaque else ""
    return f"input shape not recorded or not inferable from the layers before it ({names}){after}"


def _fmt(shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


# ---------------------------------------------------------------------------
# comparison


def _compare(model: Model, layer: Layer, node: LayerNode, expected: list[Expected], rules: LoadRules) -> int:
    """Compares; returns how many stored tensors the config refuted and the
    count leaves out (``_drop_contradicted``)."""
    factors = [v for v in expected if v.merged] if rules.merges_lora else []
    dropped = _compare_stored(model, layer, node, [v for v in expected if v not in factors], rules)
    if factors:
        _add_lora_factors(model, layer, node, factors)
    return dropped


def _compare_stored(model: Model, layer: Layer, node: LayerNode, expected: list[Expected],
                    rules: LoadRules) -> int:
    stored = layer.variables
    if not expected and not stored:
        return 0
    problems: list[Problem] = []
    if expected and not stored:
        problems.append(Problem(
            ProblemKind.MISSING_WEIGHTS, node.path,
            f"{rules.what} holds no tensors for this {node.class_name}; the config implies "
            f"{len(expected)} ({_listing(expected)})", target="weights", blocks_load=rules.missing_blocks))
    else:
        pairs, missing, extra = pair_variables(expected, stored)
        for want, have in pairs:
            if not _fits(want.shape, have.shape):
                problems.append(Problem(
                    ProblemKind.WEIGHTS_MISMATCH, node.path,
                    f"{want.name}: stored shape {_fmt(have.shape)} where the config implies {_fmt(want.shape)}",
                    target=want.name, expected=tuple(want.shape), stored=tuple(have.shape), blocks_load=True))
        for want in missing:
            problems.append(Problem(
                ProblemKind.MISSING_WEIGHTS, node.path,
                f"{want.name} {_fmt(want.shape)} is implied by the config but not stored",
                target=want.name, expected=tuple(want.shape), blocks_load=rules.missing_blocks))
        for have in extra:
            problems.append(Problem(
                ProblemKind.EXTRA_WEIGHTS, node.path,
                f"{len(stored)} tensors stored where the config implies {len(expected)}: {_stored_label(have)} "
                f"{_fmt(have.shape)} is not a variable this {node.class_name} creates",
                target=have.name, stored=tuple(have.shape), blocks_load=rules.extra_blocks))
    if not problems:
        return 0
    # A count mismatch found while naming the tensors says the same thing again.
    model.problems[:] = [p for p in model.problems if not (
        p.layer == node.path and p.kind is ProblemKind.WEIGHTS_MISMATCH and p.expected is None)]
    model.problems.extend(problems)
    if all(v.known for v in expected):
        _use_config_variables(model, layer, node, expected)
        return 0
    return _drop_contradicted(model, layer, problems)


def _drop_contradicted(model: Model, layer: Layer, problems: list[Problem]) -> int:
    """Where the config fixes only part of a layer's shapes (an input shape
    lost after a ``Lambda``), a stored tensor that contradicts the part it
    fixes is left out: no count or penalty is computed from a shape the
    architecture refutes (review 54: a 37 KB file declaring a 200000 x
    200000 kernel where the config implies (?, 32) was counted as 40
    billion regularized weights, with an RL001 error and an RL004 step on
    them). RL019 reports the tensor."""
    wrong = {p.target for p in problems if p.kind is ProblemKind.WEIGHTS_MISMATCH and p.target}
    dropped = [v for v in layer.variables if v.name in wrong]
    layer.variables[:] = [v for v in layer.variables if v not in dropped]
    for var in dropped:
        model.notes.append(f"{layer.path}: {var.name} is stored as {_fmt(var.shape)}, which the config refutes: left "
                           f"out of the counts and penalties (RL019)")
    return len(dropped)


def _add_lora_factors(model: Model, layer: Layer, node: LayerNode, factors: list[Expected]) -> None:
    """The LoRA factors a .keras file does not store: Keras creates them when
    it loads the layer (zeros), so they are counted from the config."""
    if not all(v.known for v in factors):
        return
    scratch = Model(path=model.path, format=model.format)
    rebuilt = build_layer(node, config_tensors(node, factors), ReadOptions(weight_stats=False), scratch)
    layer.variables.extend(rebuilt.variables)
    model.notes.append(f"{node.path}: LoRA rank {node.config.get('lora_rank')}: the file stores the kernel with "
                       f"its factors merged in; Keras loads {', '.join(v.name for v in factors)} as zeros and "
                       "freezes the kernel")


def _stored_label(var) -> str:
    """A stored tensor the reader could only name by position: its place in the file."""
    if var.name.split("/")[-1].startswith("var_") and var.location:
        return "stored tensor " + "/".join(var.location.strip("/").split("/")[-2:])
    return var.name


def _listing(expected: list[Expected]) -> str:
    return ", ".join(f"{v.name} {_fmt(v.shape)}" for v in expected[:6]) + (" ..." if len(expected) > 6 else "")


def _fits(want, have) -> bool:
    return len(want) == len(have) and all(w is None or w == h for w, h in zip(want, have, strict=False))


def pair_variables(expected: list[Expected], stored: list) -> tuple[list, list, list]:
    """(expected, stored) pairs, unpaired expected, unpaired stored.

    By name where both sides name them alike; by position where a
    generation names them differently (Keras 1's ``W`` for ``kernel``, a
    Keras 3 DepthwiseConv2D's ``kernel``)."""
    want_names = [v.name for v in expected]
    have_names = [v.name for v in stored]
    if len(set(want_names)) == len(want_names) and len(set(have_names)) == len(have_names):
        shared = set(want_names) & set(have_names)
        if shared and (len(expected) != len(stored) or shared == set(want_names)):
            have_by = {v.name: v for v in stored}
            pairs = [(w, have_by[w.name]) for w in expected if w.name in shared]
            rest_w = [w for w in expected if w.name not in shared]
            rest_h = [h for h in stored if h.name not in shared]
            more, missing, extra = _by_position(rest_w, rest_h)
            return pairs + more, missing, extra
    return _by_position(expected, stored)


def _by_position(expected: list, stored: list) -> tuple[list, list, list]:
    n = min(len(expected), len(stored))
    return list(zip(expected[:n], stored[:n], strict=False)), expected[n:], stored[n:]


def _use_config_variables(model: Model, layer: Layer, node: LayerNode, expected: list[Expected]) -> None:
    """The layer as its config defines it: the file's tensors do not fit."""
    scratch = Model(path=model.path, format=model.format)
    rebuilt = build_layer(node, config_tensors(node, expected), ReadOptions(weight_stats=False), scratch)
    layer.variables = rebuilt.variables
    model.notes.append(f"{node.path}: counted from the config ({layer.params:,} parameters): the stored "
                       "tensors do not fit it")


def no_weights_problem(model: Model, count: ConfigCount, what: str) -> None:
    """A full-model file that stores no weights at all: Keras cannot load
    it. The layers were built from the config; one problem names them."""
    weighted = [layer.path for layer in model.layers if layer.variables]
    listed = ", ".join(weighted[:5]) + (f" and {len(weighted) - 5} more" if len(weighted) > 5 else "")
    total = f"{count.total:,} parameters" if count.complete else "parameters"
    model.problems.append(Problem(
        ProblemKind.MISSING_WEIGHTS, "", f"{what}: Keras cannot load it; the config's {total} "
        f"({listed or 'no layer with variables'}) are not stored", target="weights", blocks_load=bool(weighted)))
    model.notes.append("no weights stored: parameters counted from the config, no saved-weight statistics")


def extra_layer_problem(name: str, tensors: int, elements: int, rules: LoadRules, blocks: bool) -> Problem:
    return Problem(ProblemKind.EXTRA_WEIGHTS, name,
                   f"{rules.what} stores {tensors} tensor{'s' if tensors != 1 else ''} ({elements:,} values) "
                   f"under {name!r}, which no layer "
                   "of the config owns" + ("" if blocks else " (Keras ignores them)"),
                   target="weights", blocks_load=blocks)
