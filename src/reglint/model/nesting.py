"""Which layers feed a layer, through nested models: the one resolution of
the references a description records (``Layer.inbound_tensors``,
``Container.inbound_tensors`` / ``output_tensors``) to leaf layers. The
layer graph (``engine.graph.outbound_map``), the activity estimate
(``estimate.activity``) and the Keras readers' outputs use it.

A reference to a nested model stands for the output it names (its tensor
index counts the nested model's outputs in order; that output may be a
layer with several outputs, or a model nested deeper); a nested model's
input stands for what feeds it. Where the reference says which call of the
nested model it reads (Keras' node index), an output that is the nested
model's own input stands for what *that* call fed it; without that, for
what any call fed it.

Only unambiguous links are made: a nested model with several outputs read
where the tensor index is unknown (a reader that does not record it, a
malformed config), or a call of a nested model with several inputs whose
tensors do not match them one for one, is not linked through, so no chain
is invented. Resolution is memoised, so deep nesting stays linear.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reglint.model.description import Container, Layer, Model, TensorRef

# Kinds of references to a nested model: the consumers' inbound nodes and
# a container's output list. Keras 3 numbers a nested Functional's calls
# from 0 in the first and from 1 in the second (functional.py:
# serialize_node vs node_reindexing_map); tf-keras and Keras 2 from 1 in both.
ARGS, OUTPUTS = "args", "outputs"


@dataclass(frozen=True)
class Inlet:
    """Input ``index`` of the nested model at ``path``: what feeds it
    depends on the call."""

    path: str
    index: int


Item = Layer | Inlet


class NestedGraph:
    """Resolves references to leaf layers across nested models' boundaries.
    ``outputs``: the model's own output references (top level), which also
    tell how a nested model's calls are numbered there."""

    def __init__(self, model: Model, outputs: Iterable[TensorRef] = ()):
        self.by_key: dict[tuple[str, str], Layer] = {(layer_container(layer), layer.name): layer
                                                     for layer in model.layers}
        self.nested = {(parent_of(c.path, c.name), c.name): c for c in model.containers}
        self.containers = {c.path: c for c in model.containers}
        # (kind, container path, name) -> the node indexes its references there name
        self._nodes_named: dict[tuple[str, str, str], set[int]] = {}
        readers = [(layer_container(layer), layer.inbound_tensors) for layer in model.layers]
        readers += [(parent_of(c.path, c.name), c.inbound_tensors) for c in model.containers]
        outputs_of = [("", list(outputs))] + [(c.path, c.output_tensors) for c in model.containers]
        for kind, refs_in in ((ARGS, readers), (OUTPUTS, outputs_of)):
            for container, refs in refs_in:
                for ref in refs:
                    self._nodes_named.setdefault((kind, container, ref.name), set()).add(ref.node)
        self._memo: dict[tuple, tuple[Item, ...]] = {}
        self._inlets: dict[Inlet, tuple[Layer, ...]] = {}
        self._offsets: dict[tuple[str, str], int | None] = {}
        self._busy: set = set()

    # -- public ---------------------------------------------------------------

    def feeding(self, layer: Layer) -> tuple[Layer, ...]:
        """The leaf layers whose outputs ``layer`` reads."""
        container = layer_container(layer)
        if layer.inbound or layer.inbound_tensors:
            items = [item for name, tensor, node in references(layer.inbound, layer.inbound_tensors)
                     for item in self.local(container, name, tensor, node, ARGS)]
        else:
            inner = self.containers.get(container)
            # a nested Sequential's first layer reads what feeds the Sequential
            items = [Inlet(container, 0)] if inner is not None and inner.inputs[:1] == [layer.name] else []
        return self.outward(items)

    def sources(self, container: str, name: str, tensor: int | None = None, node: int | None = None,
                kind: str = ARGS) -> tuple[Layer, ...]:
        """The leaf layers behind output ``tensor`` (None: unknown) of call
        ``node`` (None: unknown) of ``name`` in ``container``."""
        return self.outward(self.local(container, name, tensor, node, kind))

    def call_of(self, inner: Container, node: int | None, kind: str) -> int | None:
        """Which call of ``inner`` (its position among the calls its
        ``inbound_tensors`` record) Keras' node index ``node`` names in a
        reference of ``kind``; None where that cannot be told."""
        return self._call_index(inner, node, kind)

    def feeders(self, inner: Container) -> tuple[Layer, ...]:
        """What feeds the nested model ``inner``, any input, any call."""
        return _unique(src for index in range(max(1, len(inner.inputs)))
                       for src in self.outward([Inlet(inner.path, index)]))

    # -- resolution -----------------------------------------------------------

    def local(self, container: str, name: str, tensor: int | None, node: int | None,
              kind: str) -> tuple[Item, ...]:
        """What ``name`` in ``container`` stands for, in ``container``'s own
        terms: leaf layers, and inlets of ``container`` where its own input
        passes through (what feeds that is the caller's business)."""
        layer, inner = self.by_key.get((container, name)), self.nested.get((container, name))
        if layer is not None:
            here = self.containers.get(container)
            if layer.class_name == "InputLayer" and here is not None:
                return (Inlet(container, here.inputs.index(name)),) if name in here.inputs else ()
            return (layer,)
        if inner is None:
            return ()
        key = (container, name, tensor, node, kind)
        if key in self._memo:
            return self._memo[key]
        if key in self._busy:  # a cycle in a malformed config
            return ()
        self._busy.add(key)
        call = self._call_index(inner, node, kind)
        found: list[Item] = []
        for item in self._output_items(inner, tensor):
            if isinstance(item, Inlet):  # the nested model's own input, passed through
                found += self._fed(inner, item.index, call)
            else:
                found.append(item)
        self._busy.discard(key)
        self._memo[key] = result = _unique_items(found)
        return result

    def outward(self, items: Iterable[Item]) -> tuple[Layer, ...]:
        """Leaf layers for ``items``, an inlet replaced by what feeds it in
        any call (seen from inside, the call is not known)."""
        return _unique(src for item in items
                       for src in ((item,) if isinstance(item, Layer) else self._inlet_sources(item)))

    def _inlet_sources(self, inlet: Inlet) -> tuple[Layer, ...]:
        if inlet in self._inlets:
            return self._inlets[inlet]
        if inlet in self._busy:
            return ()
        self._busy.add(inlet)
        inner = self.containers.get(inlet.path)
        found = self.outward(self._fed(inner, inlet.index, None)) if inner is not None else ()
        self._busy.discard(inlet)
        self._inlets[inlet] = found
        return found

    def _output_items(self, inner: Container, tensor: int | None) -> tuple[Item, ...]:
        """Output ``tensor`` of ``inner`` in ``inner``'s terms: its
        ``tensor``-th recorded output, itself resolved with the call and
        index it records; a model with one output needs no index."""
        outputs = inner.output_tensors
        if tensor is not None and len(outputs) == len(inner.outputs) and 0 <= tensor < len(outputs):
            ref = outputs[tensor]
            return self.local(inner.path, ref.name, ref.tensor, ref.node, OUTPUTS)
        if len(inner.outputs) == 1:
            only = outputs[0] if len(outputs) == 1 else None
            return self.local(inner.path, inner.outputs[0], only.tensor if only else None,
                              only.node if only else None, OUTPUTS)
        return ()

    def _fed(self, inner: Container, index: int, call: int | None) -> list[Item]:
        """What call ``call`` (None: every call) of ``inner`` feeds its
        input ``index``, in the terms of ``inner``'s parent: a call's
        tensors match the inputs one for one, in order (one input takes
        all of them)."""
        parent = parent_of(inner.path, inner.name)
        calls = by_call(inner.inbound_tensors)
        if calls:
            chosen = [calls[call]] if call in calls else list(calls.values())
            if len(inner.inputs) <= 1:
                refs = [ref for refs in chosen for ref in refs]
            else:
                refs = [refs[index] for refs in chosen if len(refs) == len(inner.inputs)]
            return [item for ref in refs for item in self.local(parent, ref.name, ref.tensor, ref.node, ARGS)]
        if inner.inbound:  # names only (a Sequential's implicit chain, a reader that records no tensors)
            names = inner.inbound if len(inner.inputs) <= 1 else (
                [inner.inbound[index]] if len(inner.inbound) == len(inner.inputs) else [])
            return [item for name in names for item in self.local(parent, name, None, None, ARGS)]
        outer = self.containers.get(parent)
        if outer is not None and outer is not inner and outer.inputs[:1] == [inner.name] and index == 0:
            return [Inlet(parent, 0)]  # the first entry of a nested Sequential: what feeds that Sequential
        return []

    def _call_index(self, inner: Container, node: int | None, kind: str) -> int | None:
        """Which call of ``inner`` Keras' node index ``node`` names, or None
        when that cannot be told. Calls are numbered from 0 or from 1 (a
        Functional's node 0 is its own): a reference past the last call
        shows 1, one to node 0 shows 0; references of the same kind in the
        same container are numbered alike."""
        if node is None:
            return None
        key = (inner.path, kind)
        if key not in self._offsets:
            nodes = self._nodes_named.get((kind, parent_of(inner.path, inner.name), inner.name), set())
            count = max(by_call(inner.inbound_tensors), default=-1) + 1
            self._offsets[key] = 1 if any(n >= count for n in nodes) else 0 if 0 in nodes else (
                inner.outputs_count_from if kind == OUTPUTS else None)
        offset = self._offsets[key]
        return None if offset is None else node - offset


def references(names: list[str], tensors: list[TensorRef]) -> list[tuple[str, int | None, int | None]]:
    """(name, tensor index, node) of every tensor read: the recorded
    references, then any name they leave out with both unknown."""
    found: list[tuple[str, int | None, int | None]] = [(ref.name, ref.tensor, ref.node) for ref in tensors]
    recorded = {ref.name for ref in tensors}
    return found + [(name, None, None) for name in names if name not in recorded]


def by_call(refs: list[TensorRef]) -> dict[int, list[TensorRef]]:
    """References grouped by the call that reads them, calls in order."""
    calls: dict[int, list[TensorRef]] = {}
    for ref in sorted(refs, key=lambda ref: ref.call):  # stable: a call's own order is kept
        calls.setdefault(ref.call, []).append(ref)
    return calls


def _unique(layers: Iterable[Layer]) -> tuple[Layer, ...]:
    seen: dict[str, Layer] = {}
    for layer in layers:
        seen.setdefault(layer.path, layer)
    return tuple(seen.values())


def _unique_items(items: Iterable[Item]) -> tuple[Item, ...]:
    seen: dict[object, Item] = {}
    for item in items:
        seen.setdefault(item.path if isinstance(item, Layer) else item, item)
    return tuple(seen.values())


def layer_container(layer: Layer) -> str:
    """The enclosing container's path: the layer's path less its own name
    (which may hold "/": tf.keras applications name layers "Conv/BatchNorm")."""
    return parent_of(layer.path, layer.name)


def parent_of(path: str, name: str) -> str:
    if path == name:
        return ""
    if path.endswith("/" + name):
        return path[: -len(name) - 1]
    return path.rsplit("/", 1)[0] if "/" in path else ""
