"""The graph, all scopes at once: nodes, initializers, producers and
consumers of the main graph, its subgraphs and training-info graphs."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reglint.errors import UnsafeInputError
from reglint.readers.onnx.tensors import EXTERNAL

MAX_GRAPH_DEPTH = 64
MAX_WALK = 10_000  # steps of any forward/backward walk through the graph

PREVIEW = "ai.onnx.preview.training"
MS = "com.microsoft"
# Ops a weight passes through unchanged in meaning on its way to its consumer.
VALUE_PASS = {"Identity", "Cast", "CastLike", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
              "DequantizeLinear"}
ORT_OPTIMIZERS = {"AdamWOptimizer", "SGDOptimizerV2"}


@dataclass(eq=False)
class Node:
    """One node of the graph (a subgraph's too). What every walk reads of
    it is read from the protobuf once, here: a protobuf field access costs
    about a microsecond, and a million-node graph is read tens of millions
    of times (functools.cached_property took a lock per read on 3.11).
    Read-only by convention."""

    proto: Any
    scope: str
    index: int
    op: str = field(init=False)
    domain: str = field(init=False)
    name: str = field(init=False)
    inputs: list[str] = field(init=False)
    outputs: list[str] = field(init=False)
    # Nodes of a gradient graph (onnxruntime's ``*Grad`` ops and the nodes
    # it names ``<forward>_Grad/...``, ONNX's Gradient op).
    is_gradient: bool = field(init=False)
    is_training_op: bool = field(init=False)

    def __post_init__(self) -> None:
        proto = self.proto
        self.op = proto.op_type
        self.domain = "" if proto.domain in ("", "ai.onnx") else proto.domain
        self.name = proto.name
        self.inputs = list(proto.input)
        self.outputs = [o for o in proto.output if o]
        self.is_gradient = (self.op.endswith("Grad") or "_Grad" in self.name or self.op == "Gradient"
                            or self.op.startswith("InPlaceAccumulator"))
        self.is_training_op = self.domain == PREVIEW or (self.domain == MS and self.op in ORT_OPTIMIZERS)

    def attrs(self) -> dict[str, Any]:
        return {a.name: _attr_value(a) for a in self.proto.attribute}

    def attr(self, name: str, default: Any = None) -> Any:
        for a in self.proto.attribute:
            if a.name == name:
                return _attr_value(a)
        return default


def _attr_value(attr) -> Any:
    """Scalars and short lists only; tensors and graphs are left out."""
    kind = attr.type
    if kind == 1:
        return float(attr.f)
    if kind == 2:
        return int(attr.i)
    if kind == 3:
        return attr.s.decode("utf-8", "replace")
    if kind == 6:
        return [float(v) for v in attr.floats[:64]]
    if kind == 7:
        return [int(v) for v in attr.ints[:64]]
    if kind == 8:
        return [s.decode("utf-8", "replace") for s in attr.strings[:64]]
    return None


class GraphIndex:
    """Every node, initializer and value name of the model, subgraphs and
    training-info graphs included, with producer and consumer maps."""

    def __init__(self, proto):
        self.nodes: list[Node] = []
        self.tensors: list[tuple[str, Any]] = []  # (scope, TensorProto)
        self.sparse: list[tuple[str, Any]] = []  # (scope, SparseTensorProto)
        # (scope, TensorProto) of Constant nodes' ``value`` tensors, named after
        # the node's output: weights some exporters keep in the graph's nodes
        self.constant_nodes: list[tuple[str, Any]] = []
        self.duplicates: set[int] = set()  # initializers a later one of the same name (and graph) replaces
        self.consumers: dict[str, list[tuple[Node, int]]] = {}
        self.producer: dict[str, Node] = {}
        self.outputs: set[str] = set()  # graph outputs of every graph
        self.main_outputs = list(proto.graph.output)
        self.inputs = {i.name: i for i in proto.graph.input}
        self.constants: dict[str, Any] = {}  # small in-proto tensors and Constant outputs
        self.named: dict[str, Any] = {}  # every initializer and Constant node tensor, by name
        self.branch_outputs: dict[int, list[str]] = {}  # If/Loop/Scan node -> its subgraphs' outputs
        self._sources: dict[str, str] = {}  # source() memo
        self.source_steps = 0  # producer look-ups source() made (linear in the graph's size)
        self._walk(proto.graph, "", 0)
        for k, info in enumerate(proto.training_info):
            if info.HasField("initialization"):
                self._walk(info.initialization, f"training_info[{k}].initialization", 1)
            if info.HasField("algorithm"):
                self._walk(info.algorithm, f"training_info[{k}].algorithm", 1)

    def _walk(self, graph, scope: str, depth: int) -> None:
        if depth > MAX_GRAPH_DEPTH:
            raise UnsafeInputError(f"subgraphs nested more than {MAX_GRAPH_DEPTH} levels deep")
        last: dict[str, Any] = {}
        for tensor in graph.initializer:
            self.tensors.append((scope, tensor))
            if tensor.name in last:  # the last of a name is the one read (as onnxruntime does)
                self.duplicates.add(id(last[tensor.name]))
                self.named[tensor.name] = tensor
                self.constants.pop(tensor.name, None)
            last[tensor.name] = tensor
            self.named.setdefault(tensor.name, tensor)
            self._remember_constant(tensor.name, tensor)
        for sparse in graph.sparse_initializer:
            self.sparse.append((scope, sparse))
        self.outputs.update(o.name for o in graph.output)
        for proto in graph.node:
            node = Node(proto, scope, len(self.nodes))
            self.nodes.append(node)
            for i, name in enumerate(node.inputs):
                if name:
                    self.consumers.setdefault(name, []).append((node, i))
            for name in node.outputs:
                self.producer[name] = node
            if node.op == "Constant" and node.domain == "":
                self._remember_constant_node(node)
            self._walk_subgraphs(node, depth)

    def _walk_subgraphs(self, node: Node, depth: int) -> None:
        for attr in node.proto.attribute:
            prefix = f"{node.scope}/{node.name or node.op}.{attr.name}".lstrip("/")
            graphs = [attr.g] if attr.type == 5 else list(attr.graphs) if attr.type == 10 else []
            for k, graph in enumerate(graphs):
                self._walk(graph, prefix if attr.type == 5 else f"{prefix}[{k}]", depth + 1)
                self.branch_outputs.setdefault(node.index, []).extend(o.name for o in graph.output)

    def _remember_constant(self, name: str, tensor) -> None:
        if tensor.data_location != EXTERNAL and math.prod(tensor.dims) <= 16:
            self.constants.setdefault(name, tensor)

    def _remember_constant_node(self, node: Node) -> None:
        from onnx import numpy_helper

        for attr in node.proto.attribute:
            if attr.name == "value" and attr.type == 4:
                self._remember_constant(node.outputs[0] if node.outputs else "", attr.t)
                if node.outputs:
                    self.named.setdefault(node.outputs[0], attr.t)
                    if attr.t.name != node.outputs[0]:
                        attr.t.name = node.outputs[0]  # messages name the tensor the graph reads
                    self.constant_nodes.append((node.scope, attr.t))
            elif attr.name in ("value_float", "value_int") and node.outputs:
                value = attr.f if attr.name == "value_float" else attr.i
                self.constants[node.outputs[0]] = numpy_helper.from_array(np.array(value, np.float64))

    def shadowed(self, tensor) -> bool:
        """An initializer a later one of the same name in its graph replaces
        (onnxruntime: "the model will use the latest encountered initializer")."""
        return id(tensor) in self.duplicates

    def scalar(self, name: str) -> float | None:
        """The value of a one-element constant, or None."""
        from onnx import numpy_helper

        tensor = self.constants.get(name)
        if tensor is None:
            return None
        try:
            array = numpy_helper.to_array(tensor)
        except Exception:
            return None
        if array.size != 1 or array.dtype.kind not in "fiub":
            return None
        return float(array.reshape(-1)[0])

    def full_constant(self, name: str) -> Any:
        """The TensorProto of an initializer or Constant node of any size, or None."""
        return self.named.get(name)

    def source(self, name: str) -> str:
        """Follow a tensor back through value-preserving ops (Cast, Identity
        ...). Memoised: every name of a chain is resolved by one walk, so
        resolving all of a graph's names is linear in its size. A chain that
        loops back on itself has no source: its names resolve to themselves."""
        known = self._sources.get(name)
        if known is not None:
            return known
        path: list[str] = []
        on_path: set[str] = set()
        current, found = name, None
        while True:
            found = self._sources.get(current)
            if found is not None:
                break
            if current in on_path:  # a loop (invalid ONNX): no source
                for looped in path:
                    self._sources[looped] = looped
                return name
            self.source_steps += 1
            node = self.producer.get(current)
            if node is None or node.op not in VALUE_PASS or not node.proto.input:
                found = current
                break
            path.append(current)
            on_path.add(current)
            current = node.proto.input[0]
        for step in path:
            self._sources[step] = found
        self._sources[current] = found
        return found

    def dense_tensors(self) -> Iterator[tuple[str, Any]]:
        """(scope, TensorProto) of every initializer, sparse ones' values and
        Constant nodes' tensors included."""
        yield from self.tensors
        yield from self.constant_nodes
        for scope, sparse in self.sparse:
            yield scope, sparse.values

    def gradient_names(self) -> set[str]:
        """Names P with a gradient value ``P_grad`` (or ``P_grad.<suffix>``)."""
        names = set(self.producer) | set(self.inputs) | self.outputs
        return {n.split("_grad")[0] for n in names if "_grad" in n}
