"""The object graph of a SavedModel (``saved_model.pb``), read without
TensorFlow: which checkpoint keys are the same variable, and each
variable's own name and ``trainable`` flag.

``tf.saved_model.save`` and Keras 3 ``model.export()`` save every object
reachable from the root, and a model's variables are reachable several
ways: Keras 3's export tracks ``variables``, ``trainable_variables``,
``non_trainable_variables`` and ``_all_variables`` (the backend's own
variables), so the checkpoint holds each value twice under different keys
(``variables/3``, ``_all_variables/5``). The ``SavedVariable`` records
(``tensorflow/core/protobuf/saved_object_graph.proto``) carry the
variable's full name (``sequential/conv2d/kernel``) and whether it is
trainable; one name is one variable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reglint.errors import ModelReadError
from reglint.readers.protobuf_wire import fields

MAX_SAVED_MODEL_BYTES = 1 << 30  # protobuf's own limit is 2 GiB


@dataclass
class SavedVariable:
    node: int
    name: str
    trainable: bool


def read_object_graph(path: Path) -> tuple[list[list[tuple[int, str]]], dict[int, SavedVariable]] | None:
    """(children per node, variables by node id); None when the file has
    no object graph (TF1 SavedModels) or cannot be read."""
    try:
        if path.stat().st_size > MAX_SAVED_MODEL_BYTES:
            return None
        data = path.read_bytes()
        return _parse(data)
    except (OSError, ModelReadError, UnicodeDecodeError):
        return None


def _parse(data: bytes):
    for number, wire, meta in fields(data):
        if number != 2 or wire != 2:  # SavedModel.meta_graphs
            continue
        for n, w, graph in fields(meta):
            if n == 7 and w == 2:  # MetaGraphDef.object_graph_def
                return _nodes(graph)
    return None


def _nodes(graph: bytes):
    children: list[list[tuple[int, str]]] = []
    variables: dict[int, SavedVariable] = {}
    for number, wire, node in fields(graph):
        if number != 1 or wire != 2:  # SavedObjectGraph.nodes
            continue
        index = len(children)
        refs: list[tuple[int, str]] = []
        for n, w, value in fields(node):
            if n == 1 and w == 2:  # SavedObject.children: ObjectReference(node_id=1, local_name=2)
                ref = {a: b for a, _, b in fields(value)}
                name = ref.get(2, b"")
                refs.append((int(ref.get(1, 0)), name.decode("utf-8", "replace") if isinstance(name, bytes) else ""))
            elif n == 7 and w == 2:  # SavedObject.variable: SavedVariable(trainable=3, name=6)
                attrs = {a: b for a, _, b in fields(value)}
                name = attrs.get(6, b"")
                variables[index] = SavedVariable(index, name.decode("utf-8", "replace") if isinstance(name, bytes)
                                                 else "", bool(attrs.get(3, 0)))
        children.append(refs)
    return children, variables


def variable_at(children: list[list[tuple[int, str]]], variables: dict[int, SavedVariable],
                object_path: list[str]) -> SavedVariable | None:
    """The variable a checkpoint key's object path (``variables/3``) leads to."""
    node = 0
    for part in object_path:
        nxt = next((child for child, local in children[node] if local == part), None) if node < len(children) else None
        if nxt is None:
            return None
        node = nxt
    return variables.get(node)


def listed_trainability(children: list[list[tuple[int, str]]],
                        variables: dict[int, SavedVariable]) -> dict[int, bool] | None:
    """Variable node -> trainable, from the ``trainable_variables`` and
    ``non_trainable_variables`` lists the root object tracks (Keras 3's
    ``model.export()`` archive): Keras' own split, where each variable's
    ``trainable`` flag is not (Keras 3 freezes a layer without touching its
    ``tf.Variable``s: review 34, D3). None where the root has no such pair."""
    if not children:
        return None
    lists = {name: node for node, name in children[0]}
    if "trainable_variables" not in lists or "non_trainable_variables" not in lists:
        return None
    out: dict[int, bool] = {}
    for name, trainable in (("trainable_variables", True), ("non_trainable_variables", False)):
        node = lists[name]
        for child, _ in children[node] if node < len(children) else []:
            if child in variables:
                out[child] = trainable
    return out
