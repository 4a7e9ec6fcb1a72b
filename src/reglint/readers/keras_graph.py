"""Carry input shapes through a saved Keras model config to every layer.

A layer's variables depend on the shape it was first called with. Keras 3
records it (``build_config``, and the shape of every tensor in a functional
graph); Keras 1 and 2 record only the model's input shapes
(``batch_input_shape`` on an InputLayer or on a Sequential model's first
layer), so the shapes are propagated here, layer by layer, in Sequential
order or along the functional graph's ``inbound_nodes``, nested models
included. Paths are the ones ``keras_config.walk_model_config`` gives.

>>> cfg = {"class_name": "Sequential", "config": {"layers": [
...     {"class_name": "Dense", "config": {"name": "d1", "units": 8, "batch_input_shape": [None, 4]}},
...     {"class_name": "Dense", "config": {"name": "d2", "units": 3}}]}}
>>> input_shapes(cfg)["d2"]
[(None, 8)]
"""

from __future__ import annotations

import contextlib
from typing import Any

from reglint.readers.keras_config import _layer_name, container_layers, is_container, ref_int, tensor_refs
from reglint.readers.keras_layers import MHA_LIKE
from reglint.readers.keras_objects import bare_class_name, class_name_of, is_tensor_ref
from reglint.readers.keras_outputs import input_layer_shape, output_shapes, tf_op_lambda_shapes
from reglint.readers.keras_shapes import Shape

MAX_DEPTH = 32


class ShapeMap(dict):
    """Leaf path -> input shapes of its first call; ``opaque`` maps the
    layers whose output shape the config does not give (a Lambda without
    ``output_shape``, a custom class) to their class."""

    def __init__(self) -> None:
        super().__init__()
        self.opaque: dict[str, str] = {}
        # leaf path -> the output shapes of its first call (None: unknown)
        self.outputs: dict[str, list[Shape | None] | None] = {}
        # leaf path -> (input shapes, first output shape) of each run in one forward pass, in the order the
        # walk meets them: a nested model's calls outermost, then the layer's own (``engine.calls``' order)
        self.calls: dict[str, list[tuple[tuple[Shape | None, ...], Shape | None]]] = {}


def input_shapes(root: Any) -> ShapeMap:
    """Leaf path -> the input shapes of its first call (None: unknown)."""
    walker = _Walker()
    if isinstance(root, dict):
        with contextlib.suppress(RecursionError):
            walker.model(root)
    return walker.inputs


def _shape(value: Any) -> Shape | None:
    if isinstance(value, (list, tuple)) and all(v is None or (isinstance(v, int) and not isinstance(v, bool))
                                                for v in value):
        return tuple(value)
    return None


def built_inputs(entry: dict, class_name: str) -> list[Shape | None] | None:
    """The input shapes Keras 3 recorded in the layer's ``build_config``."""
    build = entry.get("build_config")
    if not isinstance(build, dict):
        return None
    if isinstance(build.get("shapes_dict"), dict):
        shapes = build["shapes_dict"]
        if class_name in MHA_LIKE:
            order = ("query_shape", "value_shape", "key_shape")
            return [_shape(shapes.get(k)) for k in order]
        return [_shape(v) for v in shapes.values()]
    value = build.get("input_shape")
    if _shape(value) is not None:
        return [_shape(value)]
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return [_shape(v) for v in value]
    if isinstance(value, dict):
        return [_shape(v) for v in value.values()]
    return None


class _Walker:
    def __init__(self) -> None:
        self.inputs = ShapeMap()
        self.depth = 0

    def model(self, root: dict) -> None:
        cls = bare_class_name(class_name_of(root) or "")
        cfg = root.get("config")
        if is_container(cls, cfg):
            self.container(cls, cfg, "", None)
        elif isinstance(cfg, dict):
            name = cfg.get("name", cls)
            self.inputs[str(name)] = built_inputs(root, cls) or [input_layer_shape(cfg)]

    def container(self, cls: str, cfg: Any, prefix: str, incoming: list[Shape | None] | None) -> list[Shape | None]:
        if self.depth > MAX_DEPTH:
            return []
        self.depth += 1
        try:
            if isinstance(cfg, dict) and "input_layers" in cfg and cls != "Sequential":
                return self.functional(cls, cfg, prefix, incoming)
            return self.sequential(cls, cfg, prefix, incoming)
        finally:
            self.depth -= 1

    def layer(self, entry: dict, prefix: str, inputs: list[Shape | None],
              precise: list[Shape | None] | None = None) -> list[Shape | None] | None:
        """Record a leaf's inputs (first call only) and return its outputs;
        ``precise``: this call's input shapes where what feeds it pins down
        dimensions its own record leaves open (a nested model's input of
        ``(None, None, 16)`` called on 10 steps), for ``ShapeMap.calls``."""
        cls = bare_class_name(class_name_of(entry) or "?")
        cfg = entry.get("config") if isinstance(entry.get("config"), (dict, list)) else {}
        path = prefix + _layer_name(entry, cfg, cls)
        if is_container(cls, cfg):
            return self.container(cls, cfg, path + "/", precise or inputs)
        built = built_inputs(entry, cls)
        first = path not in self.inputs
        if first:
            if built and any(s is not None for s in built):
                # tf_keras builds MultiHeadAttention from the query alone: its
                # build_config holds one shape where the graph feeds two or
                # three (review 37, 1: a key/value of another width miscounted)
                built = built + list(inputs[len(built):]) if len(built) < len(inputs) else built
                self.inputs[path] = built
            else:
                self.inputs[path] = inputs
        used = self.inputs[path] if first else inputs
        if cls == "TFOpLambda":  # its operands sit in the node, not the config
            outs = tf_op_lambda_shapes(cfg if isinstance(cfg, dict) else {}, entry.get("inbound_nodes"), used)
        else:
            outs = output_shapes(cls, cfg if isinstance(cfg, dict) else {}, used)
        if outs is None and used and used[0] is not None:
            self.inputs.opaque.setdefault(path, cls)
        if first:
            self.inputs.outputs[path] = outs
        run, run_outs = used, outs
        # a call fed fewer tensors than the layer was built with (a MultiHeadAttention's key: the value's)
        fed = list(precise or []) + list((used or [])[len(precise or []):])
        if precise and len(fed) == len(used or []) and all(
                _refines(p, u) for p, u in zip(fed, used or [], strict=True)) and fed != list(used or []):
            run = fed
            run_outs = output_shapes(cls, cfg if isinstance(cfg, dict) else {}, run) if cls != "TFOpLambda" else outs
        self.inputs.calls.setdefault(path, []).append((tuple(run or ()), run_outs[0] if run_outs else None))
        # what follows reads this call's shapes (review 63, 1: every layer after a nested model's first was
        # counted at one step)
        return run_outs if run_outs is not None else outs

    # -- Sequential ------------------------------------------------------

    def sequential(self, cls: str, cfg: Any, prefix: str, incoming: list[Shape | None] | None) -> list[Shape | None]:
        entries = container_layers(cls, cfg)
        shape = incoming[0] if incoming else None
        if shape is None and isinstance(cfg, dict):
            shape = _shape(cfg.get("build_input_shape"))
        for entry in entries:
            cls_ = bare_class_name(class_name_of(entry) or "?")
            cfg_: dict = entry["config"] if isinstance(entry.get("config"), dict) else {}
            if cls_ == "InputLayer":
                shape = shape or input_layer_shape(cfg_)
                continue
            if shape is None:
                shape = input_layer_shape(cfg_)  # Keras 1/2: the first layer's batch_input_shape
            outs = self.layer(entry, prefix, [shape], [shape])  # this call's shape, where it is more precise
            shape = outs[0] if outs else None
        return [shape]

    # -- functional ------------------------------------------------------

    def functional(self, cls: str, cfg: dict, prefix: str, incoming: list[Shape | None] | None) -> list[Shape | None]:
        entries = container_layers(cls, cfg)
        classes = {id(e): bare_class_name(class_name_of(e) or "?") for e in entries}
        by_name = {_layer_name(e, e.get("config") or {}, classes[id(e)]): e for e in entries}
        tensors: dict[tuple, Shape | None] = {}
        for index, ref in enumerate(tensor_refs(cfg.get("input_layers"))):
            entry = by_name.get(ref[0])
            given = incoming[index] if incoming and index < len(incoming) else None
            own = input_layer_shape(entry.get("config") or {}) if isinstance(entry, dict) else None
            tensors[ref] = given if given is not None else own
        offsets = _node_offsets(entries, by_name, cfg, classes)
        pending = [name for name, e in by_name.items() if classes[id(e)] != "InputLayer"]
        calls_done: dict[str, int] = {}
        while pending:
            waiting = []
            for name in pending:
                entry, nodes = by_name[name], _nodes(by_name[name])
                k = calls_done.get(name, 0)
                while k < len(nodes):
                    shapes = _resolve(nodes[k], tensors, classes[id(entry)])
                    if shapes is None:
                        break  # a layer's calls happen in order: wait for this one's inputs
                    precise = _resolve(nodes[k], tensors, classes[id(entry)], refine=True)
                    for j, out in enumerate(self.layer(entry, prefix, shapes, precise) or []):
                        tensors[(name, k + offsets.get(name, 0), j)] = out
                    k += 1
                calls_done[name] = k
                if k < len(nodes):
                    waiting.append(name)
            if len(waiting) == len(pending):
                break
            pending = waiting
        for name, entry in by_name.items():
            if classes[id(entry)] != "InputLayer" and not calls_done.get(name):
                self.layer(entry, prefix, [None])  # never reached from the inputs: what Keras 3 recorded, if anything
        return [tensors.get(ref) for ref in tensor_refs(cfg.get("output_layers"))]


def _node_offsets(entries: list[dict], by_name: dict[str, dict], cfg: dict, classes: dict[int, str]) -> dict[str, int]:
    """tf-keras numbers a nested model's calls from 1 (its node 0 is the
    model's own, left out of the config: ``_should_skip_first_node``), Keras
    2.2 from 0. A reference past the end of a model's recorded calls shows
    which."""
    containers = {name for name, e in by_name.items() if is_container(classes[id(e)], e.get("config"))}
    if not containers:
        return {}
    highest: dict[str, int] = {}
    refs = [ref for e in entries for node in _nodes(e) for _, ref in _node_tensors(node, "MultiHeadAttention") if ref]
    refs += tensor_refs(cfg.get("output_layers"))
    for name, node, _ in refs:
        highest[name] = max(highest.get(name, 0), node)
    return {name: 1 for name in containers if highest.get(name, -1) >= len(_nodes(by_name[name])) > 0}


def _nodes(entry: dict) -> list:
    nodes = entry.get("inbound_nodes")
    return nodes if isinstance(nodes, list) else []


def _resolve(node: Any, tensors: dict, cls: str, refine: bool = False) -> list[Shape | None] | None:
    """The input shapes of one call; None while an input is not yet known.
    ``refine``: where the tensor fed pins down a dimension the recorded
    shape leaves open (inside a nested model, the shape of the call's
    input), the tensor's."""
    items = _node_tensors(node, cls)
    if not items:
        return None
    shapes: list[Shape | None] = []
    for shape, ref in items:
        fed = tensors.get(ref) if refine and ref is not None else None
        if shape is not None and fed is not None and _refines(fed, shape):
            shapes.append(fed)
        elif shape is not None:
            shapes.append(shape)
        elif ref is not None and ref in tensors:
            shapes.append(tensors[ref])
        elif ref is not None:
            return None
        else:
            shapes.append(None)
    return shapes


def _refines(precise: Shape | None, recorded: Shape | None) -> bool:
    """Whether ``precise`` is ``recorded`` with some open dimensions known."""
    if precise is None or recorded is None:
        return precise is None and recorded is None
    return len(precise) == len(recorded) and all(r is None or p == r for p, r in zip(precise, recorded, strict=True))


def _node_tensors(node: Any, cls: str) -> list[tuple[Shape | None, tuple | None]]:
    """(recorded shape, (layer, node, tensor) reference) per input of a call,
    in the order Keras flattens the call (a dict by sorted key)."""
    if isinstance(node, dict) and not ("args" in node or "kwargs" in node):
        # tf-keras: a model called with a dict, {key: [name, node, tensor, kwargs]}
        node = [node[key] for key in sorted(node, key=str)]
    if isinstance(node, dict):  # Keras 3
        args = list(_flat_tensors(node.get("args")))
        kwargs: dict = node["kwargs"] if isinstance(node.get("kwargs"), dict) else {}
        if cls in MHA_LIKE:
            for key in ("query", "value", "key")[len(args):]:
                if key in kwargs:
                    args += list(_flat_tensors(kwargs[key]))
        return args
    out: list[tuple[Shape | None, tuple | None]] = []
    if is_tensor_ref(node):  # tf.keras TFOpLambda: each call is one flat [name, node, tensor, kwargs]
        node = [node]
    if isinstance(node, list):  # Keras 1/2: [[name, node, tensor, kwargs], ...]
        for item in node:
            if is_tensor_ref(item):
                out.append((None, (item[0], ref_int(item[1]), ref_int(item[2]))))
                item_kwargs: dict = item[3] if len(item) > 3 and isinstance(item[3], dict) else {}
                # MultiHeadAttention's value/key, a TF op's second tensor operand (``y``)
                keys = ("value", "key") if cls in MHA_LIKE else tuple(item_kwargs) if cls == "TFOpLambda" else ()
                for key in keys:
                    ref = item_kwargs.get(key)
                    if is_tensor_ref(ref):
                        out.append((None, (ref[0], ref_int(ref[1]), ref_int(ref[2]))))
    return out


def _flat_tensors(obj: Any, depth: int = 0):
    if depth > 8:
        return
    if isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__":
        cfg: dict = obj["config"] if isinstance(obj.get("config"), dict) else {}
        history = cfg.get("keras_history")
        ref = None
        if isinstance(history, list) and len(history) >= 3 and isinstance(history[0], str):
            ref = (history[0], ref_int(history[1]), ref_int(history[2]))
        yield _shape(cfg.get("shape")), ref
    elif isinstance(obj, dict):  # a model called with a dict: Keras feeds it in sorted key order
        for key in sorted(obj, key=str):
            yield from _flat_tensors(obj[key], depth + 1)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _flat_tensors(item, depth + 1)
