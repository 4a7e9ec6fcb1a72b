"""TensorFlow SavedModel folders, read without TensorFlow.

A tf.keras SavedModel holds ``keras_metadata.pb`` (a small protobuf whose
nodes carry each Keras object's JSON metadata; the root's is the model
config with its ``training_config``) and ``variables/variables.index``, an
SSTable mapping checkpoint keys such as
``layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`` to
``BundleEntryProto`` records (dtype, shape, shard, offset, size) in
``variables.data-*``. Both formats are simple enough to parse here, which
keeps the static path free of TensorFlow and of anything that could run a
graph. The key's object path (``layer_with_weights-0``) is matched to the
metadata node at the same path, which names the layer.

A SavedModel without ``keras_metadata.pb`` (``tf.saved_model.save``, Keras 3
``model.export``) still has its variables: reglint counts them and says that
no regularizers or optimizer can be read.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reglint.errors import ModelReadError, UnsafeInputError
from reglint.model import UNRECORDED_CLASS, Layer, Model, Variable
from reglint.readers.keras_build import (
    FoundTensor,
    attach_graph,
    attach_training_config,
    build_layer,
    owner_for_components,
)
from reglint.readers.keras_config import walk_model_config
from reglint.readers.keras_layers import role_from_weight_name
from reglint.readers.limits import ReadOptions
from reglint.readers.protobuf_wire import fields, varint
from reglint.readers.safe_io import load_json
from reglint.readers.sniff import check_link_stays_inside
from reglint.readers.tensor_stats import array_stats

# tensorflow/core/framework/types.proto
# TensorFlow's DataType enum; bfloat16 (numpy has none) is read as its uint16 bits.
_DTYPES: dict[int, type[np.generic]] = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16,
                                        6: np.int8, 9: np.int64, 10: np.bool_, 17: np.uint16, 19: np.float16,
                                        22: np.uint32, 23: np.uint64}
_BFLOAT16 = 14
_MAX_INDEX_BYTES = 256 * 1024 * 1024


def read_savedmodel(path: Path, options: ReadOptions) -> Model:
    root = path if path.is_dir() else path.parent
    for name in ("keras_metadata.pb", "saved_model.pb", "variables/variables.index"):
        candidate = root / name
        if candidate.is_symlink():
            check_link_stays_inside(candidate)
    index_path = root / "variables" / "variables.index"
    entries = read_bundle_index(index_path) if index_path.is_file() else {}
    _check_shards(entries, data_prefix(root))
    metadata_path = root / "keras_metadata.pb"
    model = Model(path=str(root), format="savedmodel", framework="tf.keras")
    if not metadata_path.is_file():
        return _variables_only(model, root, entries, options)
    nodes = read_keras_metadata(metadata_path, options)
    root_meta = _untuple(nodes.get("root"))
    if not isinstance(root_meta, dict) or "config" not in root_meta:
        raise ModelReadError("keras_metadata.pb has no root model config")
    keras_version = root_meta.get("keras_version")
    model.framework_version = keras_version if isinstance(keras_version, str) else None
    tree = walk_model_config(root_meta, max_layers=options.max_layers)
    model.name = tree.name
    # A subclassed model's config has no layer list: the root is its one (custom) layer.
    root_leaf = tree.leaves[0] if len(tree.leaves) == 1 and not tree.leaves[0].weights_path else None
    assignments = _assign(entries, nodes, tree.leaves, root, options, root_leaf)
    for node in tree.leaves:
        model.layers.append(build_layer(node, assignments.get(node.path, []), options, model))
    from reglint.readers.keras_check import SAVEDMODEL, check_against_config

    check_against_config(model, tree, root_meta, SAVEDMODEL)
    attach_training_config(model, root_meta.get("training_config"), tree)
    if model.optimizer is not None:
        model.optimizer.iterations = iterations(entries, data_prefix(root))
    attach_graph(model, tree)
    return model


def _untuple(obj, depth: int = 0):
    """tf-keras' SavedModel metadata writes tuples as
    ``{"class_name": "__tuple__", "items": [...]}``; configs elsewhere hold lists."""
    if depth > 400:
        return obj
    if isinstance(obj, dict):
        if obj.get("class_name") == "__tuple__" and isinstance(obj.get("items"), list):
            return [_untuple(v, depth + 1) for v in obj["items"]]
        return {k: _untuple(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_untuple(v, depth + 1) for v in obj]
    return obj


def read_keras_metadata(path: Path, options: ReadOptions) -> dict[str, object]:
    """node_path -> parsed JSON metadata, from ``SavedMetadata.nodes``
    (SavedObject: node_id=2, node_path=3, identifier=4, metadata=5)."""
    data = path.read_bytes()
    if len(data) > options.max_json_bytes:
        raise UnsafeInputError("keras_metadata.pb is over the size limit")
    nodes: dict[str, object] = {}
    for number, wire, value in fields(data):
        if number != 1 or wire != 2:
            continue
        node_path, meta = None, None
        for sub_number, sub_wire, sub_value in fields(value):
            if sub_number == 3 and sub_wire == 2:
                node_path = sub_value.decode("utf-8", errors="replace")
            elif sub_number == 5 and sub_wire == 2:
                meta = sub_value
        if node_path is not None and meta:
            try:
                nodes[node_path] = load_json(meta, what="keras_metadata node", max_bytes=options.max_json_bytes,
                                             max_depth=options.max_json_depth)
            except ModelReadError:
                if node_path == "root":
                    raise
    return nodes


# ---------------------------------------------------------------------------
# tensor bundle index (an SSTable, tensorflow/core/util/tensor_bundle)


@dataclass
class BundleEntry:
    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int


def read_bundle_index(path: Path) -> dict[str, BundleEntry]:
    data = path.read_bytes()
    if len(data) > _MAX_INDEX_BYTES:
        raise UnsafeInputError(f"{path.name} is over the size limit")
    if len(data) < 48 or data[-8:] != bytes.fromhex("57fb808b247547db"):
        raise ModelReadError(f"{path.name} is not a TensorFlow checkpoint index (truncated or another file)")
    footer = data[-48:]
    _, i = varint(footer, 0)  # metaindex offset
    _, i = varint(footer, i)  # metaindex size
    index_offset, i = varint(footer, i)
    index_size, _ = varint(footer, i)
    entries: dict[str, BundleEntry] = {}
    for _, handle in _block_items(data, index_offset, index_size):
        offset, j = varint(handle, 0)
        size, _ = varint(handle, j)
        for key, value in _block_items(data, offset, size):
            if key:
                entries[key.decode("utf-8", errors="replace")] = _bundle_entry(value)
    return entries


def _block_items(data: bytes, offset: int, size: int):
    if offset + size + 5 > len(data):
        raise ModelReadError("checkpoint index block out of range: truncated file")
    if data[offset + size] != 0:
        raise ModelReadError("compressed checkpoint index blocks are not supported")
    block = data[offset:offset + size]
    if len(block) < 4:
        return
    restarts = struct.unpack("<I", block[-4:])[0]
    end = len(block) - 4 - 4 * restarts
    i, key = 0, b""
    while 0 <= i < end:
        shared, i = varint(block, i)
        unshared, i = varint(block, i)
        length, i = varint(block, i)
        key = key[:shared] + block[i:i + unshared]
        i += unshared
        yield key, block[i:i + length]
        i += length


def _bundle_entry(value: bytes) -> BundleEntry:
    dtype, shape, shard, offset, size = 0, [], 0, 0, 0
    for number, wire, field in fields(value):
        if number == 1 and wire == 0:
            dtype = field
        elif number == 2 and wire == 2:
            for dim_number, dim_wire, dim in fields(field):
                if dim_number == 2 and dim_wire == 2:
                    dim_size = 0
                    for n, w, v in fields(dim):
                        if n == 1 and w == 0:
                            dim_size = v
                    shape.append(dim_size)
        elif number == 3 and wire == 0:
            shard = field
        elif number == 4 and wire == 0:
            offset = field
        elif number == 5 and wire == 0:
            size = field
    return BundleEntry(dtype, tuple(shape), shard, offset, size)


# ---------------------------------------------------------------------------
# variables -> layers

_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def _model_variable_keys(entries: dict[str, BundleEntry]) -> list[str]:
    """Checkpoint keys of model variables: no optimizer slots or state, no
    metrics, no save counter."""
    keys = []
    for key in entries:
        if not key.endswith(_VALUE_SUFFIX) or ".OPTIMIZER_SLOT" in key:
            continue
        if key.startswith(("optimizer/", "keras_api/", "save_counter", "_CHECKPOINTABLE")):
            continue
        keys.append(key)
    return keys


def _assign(entries, nodes, leaves, root: Path, options: ReadOptions,
            root_leaf=None) -> dict[str, list[FoundTensor]]:
    by_name = {node.name: node for node in leaves}
    names = {path: meta.get("name") for path, meta in nodes.items() if isinstance(meta, dict)}
    owners: _GraphOwners | None = None
    out: dict[str, list[FoundTensor]] = {}
    # numbered keys in number order: ``variables/10`` after ``variables/5``
    # (in text order a layer's tensors crossing 9 -> 10 came out rotated and
    # matched the wrong variables: review 44, 2)
    for key in sorted(_model_variable_keys(entries), key=_natural):
        parts = key[: -len(_VALUE_SUFFIX)].split("/")
        leaf, rest = None, parts
        for cut in range(len(parts) - 1, 0, -1):
            name = names.get("root." + ".".join(parts[:cut]))
            if name in by_name:
                leaf, rest = by_name[name], parts[cut:]
                break
        if leaf is None:
            # A checkpoint saves each variable once, under the first path
            # that reaches it: a nested model's weights are often keyed
            # through its ``variables`` list (``variables/0``), not through
            # the layer. The object graph says which layer holds them.
            owners = owners or _GraphOwners(root, nodes, names, by_name, root_leaf)
            leaf, rest = owners.find(parts)
        if leaf is None:
            continue
        out.setdefault(leaf.path, []).append(_found(entries[key], key, leaf, rest, root, options))
    return out


class _GraphOwners:
    """The leaf layer holding a checkpoint key's variable, found in
    ``saved_model.pb``'s object graph: up from the variable's node to the
    nearest node that the Keras metadata names as a leaf layer."""

    MAX_DEPTH = 5  # layer -> cell -> cells -> 0 -> kernel (an RNN over a list of cells)

    def __init__(self, root: Path, nodes: dict[str, object], names: dict[str, object], by_name: dict,
                 root_leaf=None) -> None:
        from reglint.readers.savedmodel_graph import read_object_graph

        graph = read_object_graph(root / "saved_model.pb")
        self.children = graph[0] if graph else []
        self.parents: dict[int, list[tuple[int, str]]] = {}
        for parent, refs in enumerate(self.children):
            for child, local in refs:
                self.parents.setdefault(child, []).append((parent, local))
        self.leaf_at: dict[int, object] = {0: root_leaf} if root_leaf is not None and self.children else {}
        for meta_path in nodes:
            name = names.get(meta_path)
            node = self._walk(meta_path.split(".")[1:]) if meta_path.startswith("root.") else None
            if node is not None and name in by_name:
                self.leaf_at.setdefault(node, by_name[name])

    def _walk(self, path: list[str]) -> int | None:
        node = 0
        for part in path:
            if node >= len(self.children):
                return None
            nxt = next((child for child, local in self.children[node] if local == part), None)
            if nxt is None:
                return None
            node = nxt
        return node

    def find(self, object_path: list[str]):
        start = self._walk(object_path)
        if start is None:
            return None, object_path
        frontier: list[tuple[int, list[str]]] = [(start, [])]
        # each node once, by its most named path (``forward_layer`` is
        # reached through its ``variables`` list and through ``cell``)
        best: dict[int, tuple[int, int]] = {start: _path_rank([])}
        found: list[tuple[object, list[str]]] = []
        owners: set[int] = set()
        for _ in range(self.MAX_DEPTH):
            hits, nxt = [], []
            for node, rest in frontier:
                for parent, local in self.parents.get(node, []):
                    path = [local, *rest]
                    if parent in self.leaf_at:
                        hits.append((self.leaf_at[parent], path))
                    elif parent not in best or _path_rank(path) < best[parent]:
                        best[parent] = _path_rank(path)
                        nxt.append((parent, path))
            # The nearest leaf layer owns it; the walk goes on for a named
            # path to that same layer: a Bidirectional's or a stacked RNN's
            # layer reaches its kernels through ``variables/3`` one level
            # up and through ``backward_layer/cell/kernel`` three levels up
            # (review 44, 1).
            owners = owners or {id(leaf) for leaf, _ in hits}
            found += [hit for hit in hits if id(hit[0]) in owners]
            frontier = nxt
        if not found:
            return None, object_path
        # Through attributes (``dense/kernel``) rather than lists (``variables/0``): names give roles.
        return min(found, key=lambda hit: _path_rank(hit[1]))


class _Tensor:
    """What build_layer needs of a stored tensor: shape, dtype, attrs, and
    chunked statistics over a memory map of the shard."""

    def __init__(self, entry: BundleEntry, key: str, root: Path, options: ReadOptions, prefix: Path | None = None):
        """``prefix``: the bundle's path less ``.index`` (a SavedModel's
        ``variables/variables``, a training checkpoint's ``cp.ckpt``)."""
        self.prefix = prefix if prefix is not None else data_prefix(root)
        self.shape = entry.shape
        self.entry = entry
        self.name = key
        self.attrs: dict[str, str] = {}
        bfloat16 = entry.dtype == _BFLOAT16
        self.dtype = np.dtype(np.uint16) if bfloat16 else np.dtype(_DTYPES.get(entry.dtype, np.uint8))
        self.attrs = {"dtype": "bfloat16"} if bfloat16 else {}
        self.options = options

    def compute_stats(self):
        return shard_stats(self)


def _found(entry: BundleEntry, key: str, leaf, rest: list[str], root: Path, options: ReadOptions) -> FoundTensor:
    owner_class, owner_cfg, prefix = owner_for_components(leaf.class_name, leaf.config, rest)
    short, role = role_from_weight_name("/".join(rest), leaf.name)
    tensor = _Tensor(entry, key, root, options)
    return FoundTensor(dataset=tensor, location=key, owner_class=owner_class, owner_config=owner_cfg,
                       name=short, role=role, prefix=prefix)


def shard_stats(tensor: _Tensor):
    """Statistics of a float tensor read from its shard through a memory map."""
    entry = tensor.entry
    if tensor.dtype.kind != "f" and tensor.attrs.get("dtype") != "bfloat16":
        return None
    shard = shard_path(tensor.prefix, entry.shard)
    if not shard.is_file():
        return None
    count = int(np.prod(entry.shape)) if entry.shape else 1
    if entry.offset + count * tensor.dtype.itemsize > shard.stat().st_size:
        raise ModelReadError(f"{tensor.name}: data past the end of {shard.name}: truncated checkpoint")
    values: np.ndarray = np.memmap(shard, dtype=tensor.dtype, mode="r", offset=entry.offset, shape=(count,))
    if tensor.attrs.get("dtype") == "bfloat16":
        from reglint.readers.tensor_stats import bfloat16_to_float32

        values = bfloat16_to_float32(np.asarray(values))
    return array_stats(values, max(1, tensor.options.chunk_bytes // max(1, tensor.dtype.itemsize)))


def _check_shards(entries: dict[str, BundleEntry], prefix: Path) -> None:
    """Refuse a bundle whose index points into a ``.data-*`` shard that is
    not there (a folder copied without ``variables.data-*``): TensorFlow
    cannot load it, and a report without its weights would look complete
    (review 44, 3)."""
    if not any(entry.size for entry in entries.values()):
        return
    if not any(prefix.parent.glob(f"{glob_escape(prefix.name)}.data-*-of-*")):
        raise ModelReadError(f"{prefix.parent.name}/{prefix.name}.index has no {prefix.name}.data-* shard beside "
                             f"it: the weights were not saved or not copied")
    missing = sorted({shard_path(prefix, entry.shard).name for entry in entries.values()
                      if entry.size and not shard_path(prefix, entry.shard).is_file()})
    if missing:
        raise ModelReadError(f"{prefix.parent.name}/{missing[0]} is missing"
                             f"{f' (and {len(missing) - 1} more shards)' if len(missing) > 1 else ''}: "
                             f"the weights were not saved or not copied")


def data_prefix(root: Path) -> Path:
    """A SavedModel's tensor bundle: ``variables/variables.index`` and its shards."""
    return root / "variables" / "variables"


def shard_path(prefix: Path, shard: int) -> Path:
    """``<prefix>.data-<shard>-of-<count>``."""
    return prefix.parent / f"{prefix.name}.data-{shard:05d}-of-{_shard_count(prefix):05d}"


def _shard_count(prefix: Path) -> int:
    for item in prefix.parent.glob(f"{glob_escape(prefix.name)}.data-*-of-*"):
        match = re.search(r"-of-(\d{5})$", item.name)
        if match:
            return int(match.group(1))
    return 1


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def iterations(entries: dict[str, BundleEntry], prefix: Path) -> int | None:
    """The optimizer's step count, where the bundle holds it."""
    for key, entry in entries.items():
        if key.split("/")[:2] in (["optimizer", "iter"], ["optimizer", "_iterations"], ["optimizer", "iterations"]) \
                and key.endswith(_VALUE_SUFFIX) and entry.dtype == 9:
            shard = shard_path(prefix, entry.shard)
            try:
                with shard.open("rb") as handle:
                    handle.seek(entry.offset)
                    return int(np.frombuffer(handle.read(8), dtype="<i8")[0])
            except (OSError, IndexError, ValueError):
                return None
    return None


def _variables_only(model: Model, root: Path, entries: dict[str, BundleEntry], options: ReadOptions) -> Model:
    """No Keras metadata (``tf.saved_model.save``, Keras 3 ``model.export()``):
    the checkpoint's variables, each once (the object graph names them and
    says which are trainable), grouped by the layer path in their names."""
    from reglint.readers.savedmodel_graph import listed_trainability, read_object_graph, variable_at

    if not entries:
        raise ModelReadError("SavedModel without keras_metadata.pb or variables: nothing to lint "
                             "(save the Keras model as .keras and lint that)")
    model.notes.append("SavedModel without keras_metadata.pb: parameters counted from the checkpoint; "
                       "regularizers and optimizer are not recorded (lint the .keras file for those)")
    graph = read_object_graph(root / "saved_model.pb")
    listed = listed_trainability(*graph) if graph else None
    layers: dict[str, Layer] = {}
    seen: set[int] = set()
    names: dict[str, int] = {}
    keys = sorted(_model_variable_keys(entries), key=_view_order)
    # Without the model's own list (a tf.Module's attributes), names are
    # no identity: every unnamed tf.Variable is "Variable".
    has_own_list = any(key.startswith("variables/") for key in keys)
    for key in keys:
        parts = key[: -len(_VALUE_SUFFIX)].split("/")
        saved = variable_at(*graph, parts) if graph else None
        if saved is not None and saved.name:
            own_list = parts[0] == "variables"  # the model's own list, walked first (_view_order)
            if saved.node in seen or (has_own_list and not own_list and saved.name in names):
                # the same variable reached again: through another list
                # (Keras 3's export also tracks _all_variables, the
                # backend's objects for the same values: other nodes)
                continue
            seen.add(saved.node)
            # Keras 3 names a variable in its top-level layer's scope: a
            # custom block's BatchNorm and LayerNorm gammas are both
            # ``res_block/gamma``. Two variables of the model's list, one
            # name: numbered.
            count = names.get(saved.name, 0)
            names[saved.name] = count + 1
            parts = saved.name.split("/")
            if count:
                parts[-1] = f"{parts[-1]}_{count}"
        if any(part.startswith("seed_generator") for part in parts):
            continue  # Keras 3's RNG state (Dropout, LSTM): no model weight, not in count_params()
        layer_path = "/".join(parts[:-1]) or parts[0]
        layer = layers.setdefault(layer_path, Layer(name=parts[-2] if len(parts) > 1 else parts[0],
                                                    path=layer_path, class_name=UNRECORDED_CLASS))
        short, role = role_from_weight_name(parts[-1])
        entry = entries[key]
        trainable = saved.trainable if saved is not None else not role.is_statistic
        if saved is not None and listed:
            trainable = listed.get(saved.node, trainable)  # the export's lists: Keras' split
        var = Variable(name=short, role=role, shape=entry.shape, trainable=trainable, location=key)
        if options.weight_stats:
            var.stats = shard_stats(_Tensor(entry, key, root, options))
        layer.variables.append(var)
    model.layers = list(layers.values())
    return model


def _path_rank(path: list[str]) -> tuple[int, int]:
    """Fewer list indices first, then more names: ``cell/kernel`` before
    ``variables/3``, ``cell/cells/0/kernel`` before ``keras_api/variables/0``."""
    return sum(p.isdigit() for p in path), -sum(not p.isdigit() and p != "keras_api" for p in path)


def _natural(key: str) -> list:
    """A key's parts, numbers compared as numbers."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in key.split("/")]


def _view_order(key: str) -> tuple[int, list]:
    """Keys through ``variables`` first (the model's own list), numbered
    entries in number order, so layers come out in model order."""
    parts = key.split("/")
    rank = 0 if parts[0] == "variables" else 1
    return rank, [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]
