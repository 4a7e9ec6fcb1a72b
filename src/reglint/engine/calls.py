"""The call graph: the layer graph with a node per call, so a walk follows
the tensor it starts from, not every tensor a shared layer ever handled.

A layer applied twice is two nodes (Keras' ``inbound_nodes``: a Dense
applied to two inputs records two calls), and so is every layer of a nested
model called twice (a siamese tower): the nested model's graph is copied
once per call, each copy reading what that call was fed and feeding what
read that call's output (review 48, D3: a Dense shared by a table's branch
and a numeric input joined the two, and RL025 judged the table's chain on
the other branch's output; review 56, 2: a tower model called twice, one
call a model output, was an output on both calls).

A node is a leaf layer with its *call path*: the call of each nested model
around it, outermost first, then its own call. Its key is the layer's path
where the layer runs once in a forward pass, else ``path#callK``, ``K`` the
call path read as a mixed-radix number (``Model.calls_of`` nodes in all).

Only links the file pins down are made call by call: a layer whose
references cannot be matched call by call (a call index the file does not
give, a nested model's output it does not name) keeps the layer graph's
links, from every call of each producer to every call of it.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from dataclasses import dataclass

from reglint.model import Container, Layer, Model, TensorRef
from reglint.model.nesting import ARGS, OUTPUTS, NestedGraph, by_call, layer_container, parent_of

# Joins a node's layer path and its call: ``tower/dense#call1``.
CALL = "#call"
# More nodes than this (nested models called in loops of loops) and the
# walks use the layer graph: a walk is linear in the nodes it may visit.
MAX_NODES = 200_000
# Nested models deeper than this are not followed (a malformed config).
MAX_DEPTH = 64

CallPath = tuple[int, ...]
Node = tuple[Layer, CallPath]


@dataclass
class CallGraph:
    """``outbound``: node key -> the nodes it feeds (a node is a copy of its
    layer whose ``path`` is the key, sharing its variables); ``origin``:
    node key -> the layer; ``keys``: layer path -> its node keys;
    ``outputs``: per model output (``Model.outputs``' order), the nodes it
    is, or None where the file does not say which call the model returns."""

    outbound: dict[str, list[Layer]]
    origin: dict[str, Layer]
    keys: dict[str, list[str]]
    outputs: list[list[str] | None]

    def producers(self) -> dict[str, list[str]]:
        """Node key -> the node keys whose outputs it reads."""
        found: dict[str, list[str]] = {}
        for source, targets in self.outbound.items():
            for target in targets:
                found.setdefault(target.path, []).append(source)
        return found

    def order(self, model: Model) -> list[str]:
        """Every node key, each after the nodes it reads (a shared layer called
        on its own output runs after what it fed: ``model.layers`` lists it
        once, at its first call); ties in model order, then call order. Nodes
        on a cycle (a malformed config) come last, in that order."""
        keys = [key for layer in model.layers for key in self.keys.get(layer.path, [layer.path])]
        rank = {key: index for index, key in enumerate(keys)}
        waiting = {key: len({src for src in sources if src in rank})
                   for key, sources in self.producers().items() if key in rank}
        ready = [rank[key] for key in keys if not waiting.get(key)]
        heapq.heapify(ready)
        done: list[str] = []
        while ready:
            key = keys[heapq.heappop(ready)]
            done.append(key)
            for target in {t.path for t in self.outbound.get(key, [])}:
                if target in waiting:
                    waiting[target] -= 1
                    if waiting[target] == 0:
                        heapq.heappush(ready, rank[target])
        placed = set(done)
        return done + [key for key in keys if key not in placed]


def call_graph(model: Model, outbound: dict[str, list[Layer]]) -> CallGraph | None:
    """``outbound`` (the layer graph) split into calls. None where every
    layer runs once (the layer graph is the call graph) or where the calls
    would exceed ``MAX_NODES``."""
    if all(model.calls_of(layer) <= 1 for layer in model.layers):
        return None
    if sum(model.calls_of(layer) for layer in model.layers) > MAX_NODES:
        return None
    return _CallGraphBuilder(model, outbound).build()


class _CallGraphBuilder:
    def __init__(self, model: Model, outbound: dict[str, list[Layer]]):
        self.model = model
        self.layer_graph = outbound
        self.refs = NestedGraph(model, [o.ref for o in model.outputs if o.ref is not None])
        self.containers = self.refs.containers
        self.radices = {layer.path: self._chain_radices(layer) for layer in model.layers}
        self._busy: set[tuple] = set()

    def build(self) -> CallGraph:
        keys = {layer.path: [self.key(layer, path) for path in self.call_paths(layer)] for layer in self.model.layers}
        origin: dict[str, Layer] = {}
        nodes: dict[str, Layer] = {}
        for layer in self.model.layers:
            for key in keys[layer.path]:
                origin[key] = layer
                nodes[key] = layer if key == layer.path else dataclasses.replace(layer, path=key)
        producers: dict[str, set[str]] = {}
        for source, targets in self.layer_graph.items():
            for target in targets:
                producers.setdefault(target.path, set()).add(source)
        out: dict[str, list[Layer]] = {}
        linked: set[tuple[str, str]] = set()  # by key: Layer's dataclass equality compares every field
        for layer in self.model.layers:
            fed = producers.get(layer.path, set())
            edges = self._edges(layer, fed)
            if edges is None:  # every call of every producer to every call of this layer
                edges = [(src, dst) for source in fed for src in keys.get(source, [source]) for dst in keys[layer.path]]
            for src, dst in edges:
                if (src, dst) not in linked:
                    linked.add((src, dst))
                    out.setdefault(src, []).append(nodes[dst])
        return CallGraph(out, origin, keys, [self._output_nodes(o.ref, o.layer) for o in self.model.outputs])

    # -- nodes ----------------------------------------------------------------

    def _chain(self, container: str) -> list[Container]:
        """The nested models around ``container``'s contents, outermost first."""
        chain: list[Container] = []
        while container and container in self.containers and len(chain) < MAX_DEPTH:
            inner = self.containers[container]
            chain.insert(0, inner)
            container = parent_of(inner.path, inner.name)
        return chain

    def _chain_radices(self, layer: Layer) -> tuple[int, ...]:
        return (*tuple(max(1, c.calls) for c in self._chain(layer_container(layer))), max(1, layer.calls))

    def call_paths(self, layer: Layer):
        return itertools.product(*(range(n) for n in self.radices[layer.path]))

    def key(self, layer: Layer, path: CallPath) -> str:
        radices = self.radices[layer.path]
        if math.prod(radices) <= 1:
            return layer.path
        index = 0
        for digit, radix in zip(path, radices, strict=True):
            index = index * radix + digit
        return f"{layer.path}{CALL}{index}"

    def _valid(self, layer: Layer, path: CallPath) -> bool:
        radices = self.radices[layer.path]
        return len(path) == len(radices) and all(0 <= d < r for d, r in zip(path, radices, strict=True))

    # -- edges ----------------------------------------------------------------

    def _edges(self, layer: Layer, fed: set[str]) -> list[tuple[str, str]] | None:
        """(source node, this layer's node) for each tensor ``layer`` reads in
        each call of the nested models around it; None where a reference
        cannot be resolved call by call, or the sources disagree with the
        layer graph's producers."""
        if layer.class_name == "InputLayer" or not fed:
            return [] if not fed else None
        container = layer_container(layer)
        here = self.containers.get(container)
        edges: list[tuple[str, str]] = []
        sources: set[str] = set()
        for outer in itertools.product(*(range(n) for n in self.radices[layer.path][:-1])):
            for own, found in self._reads(layer, container, here, outer):
                if found is None or not self._valid(layer, (*outer, own)):
                    return None
                dst = self.key(layer, (*outer, own))
                for source, path in found:
                    edges.append((self.key(source, path), dst))
                    sources.add(source.path)
        return edges if sources == fed else None

    def _reads(self, layer: Layer, container: str, here: Container | None, outer: CallPath):
        """(own call, the nodes it reads or None) for each tensor ``layer``
        reads in the nested models' calls ``outer``."""
        if layer.inbound_tensors:
            return [(ref.call, self.resolve(container, outer, ref.name, ref.node, ref.tensor, ARGS))
                    for ref in layer.inbound_tensors]
        if layer.inbound:  # names only (a Sequential's chain): one call, the producers' only call
            return [(0, self.resolve(container, outer, name, None, None, ARGS)) for name in layer.inbound]
        if here is not None and here.inputs[:1] == [layer.name]:  # a nested Sequential's first layer
            return [(0, self.inlet(here, 0, outer))]
        return [(0, None)]

    def resolve(self, container: str, outer: CallPath, name: str, node: int | None, tensor: int | None,
                kind: str) -> list[Node] | None:
        """The nodes behind output ``tensor`` of call ``node`` of ``name`` in
        ``container``'s copy ``outer`` (the calls of the nested models
        around it); None where the file does not pin them down."""
        guard = (container, outer, name, node, tensor, kind)
        if guard in self._busy:  # a cycle in a malformed config
            return None
        self._busy.add(guard)
        try:
            return self._resolve(container, outer, name, node, tensor, kind)
        finally:
            self._busy.discard(guard)

    def _resolve(self, container: str, outer: CallPath, name: str, node: int | None, tensor: int | None,
                 kind: str) -> list[Node] | None:
        layer, inner = self.refs.by_key.get((container, name)), self.refs.nested.get((container, name))
        if layer is not None:
            here = self.containers.get(container)
            if layer.class_name == "InputLayer" and here is not None:
                return self.inlet(here, here.inputs.index(name), outer) if name in here.inputs else None
            own = 0 if node is None and layer.calls <= 1 else node
            return [(layer, (*outer, own))] if own is not None and self._valid(layer, (*outer, own)) else None
        if inner is None:
            return None
        call = self.refs.call_of(inner, node, kind)
        if call is None and max(1, inner.calls) == 1:
            call = 0
        if call is None or not 0 <= call < max(1, inner.calls):
            return None
        ref = _output_ref(inner, tensor)
        if ref is None or len(outer) >= MAX_DEPTH:
            return None
        return self.resolve(inner.path, (*outer, call), *ref, OUTPUTS)

    def inlet(self, inner: Container, index: int, outer: CallPath) -> list[Node] | None:
        """What call ``outer[-1]`` of ``inner`` fed its input ``index``: a
        call's tensors match the inputs one for one, in order (one input
        takes all of them)."""
        if not outer:
            return None
        parent, call, around = parent_of(inner.path, inner.name), outer[-1], outer[:-1]
        calls = by_call(inner.inbound_tensors)
        if calls:
            refs = calls.get(call)
            if refs is None or (len(inner.inputs) > 1 and len(refs) != len(inner.inputs)):
                return None
            chosen = refs if len(inner.inputs) <= 1 else [refs[index]]
            return _joined([self.resolve(parent, around, r.name, r.node, r.tensor, ARGS) for r in chosen])
        if inner.inbound and max(1, inner.calls) == 1:
            names = inner.inbound if len(inner.inputs) <= 1 else (
                [inner.inbound[index]] if len(inner.inbound) == len(inner.inputs) else [])
            return _joined([self.resolve(parent, around, name, None, None, ARGS) for name in names]) if names else None
        outer_model = self.containers.get(parent)
        if outer_model is not None and outer_model.inputs[:1] == [inner.name] and index == 0:
            return self.inlet(outer_model, 0, around)  # the first entry of a nested Sequential
        return None

    # -- outputs --------------------------------------------------------------

    def _output_nodes(self, ref: TensorRef | None, layer: str) -> list[str] | None:
        """The nodes an output is, where its reference resolves to calls of
        the layer the reader found behind it; None otherwise."""
        if ref is None:
            return None
        found = self.resolve("", (), ref.name, ref.node, ref.tensor, OUTPUTS)
        keys = [self.key(source, path) for source, path in found or [] if source.path == layer]
        return keys or None


def _output_ref(inner: Container, tensor: int | None) -> tuple[str, int | None, int | None] | None:
    """(name, call, tensor) of output ``tensor`` of ``inner`` as ``inner``
    records it (a model with one output needs no index)."""
    outputs = inner.output_tensors
    if tensor is not None and len(outputs) == len(inner.outputs) and 0 <= tensor < len(outputs):
        ref = outputs[tensor]
        return ref.name, ref.node, ref.tensor
    if len(inner.outputs) == 1:
        only = outputs[0] if len(outputs) == 1 else None
        return inner.outputs[0], only.node if only else None, only.tensor if only else None
    return None


def _joined(parts: list[list[Node] | None]) -> list[Node] | None:
    if any(part is None for part in parts):
        return None
    return [node for part in parts for node in part or []]
