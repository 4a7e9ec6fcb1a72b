"""TensorFlow training checkpoints, read without TensorFlow.

``model.save_weights("cp.ckpt")`` in tf.keras (its TF format, also what
``ModelCheckpoint(save_weights_only=True)`` writes without an ``.h5``
suffix) and ``tf.train.Checkpoint(model=..., optimizer=...)`` with its
``CheckpointManager`` (``ckpt-3``) write a tensor bundle: ``<prefix>.index``
(an SSTable of ``BundleEntryProto`` records, the SavedModel reader's
``read_bundle_index``) beside ``<prefix>.data-00000-of-00001``, and a
``checkpoint`` text file naming the latest. The keys are object paths:
``layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`` (under ``model/``
for a ``tf.train.Checkpoint`` attribute), ``optimizer/_learning_rate``,
``optimizer/_iterations``, and the optimizer's slots (``optimizer/_variables/N``
since Keras 2.11; ``.../.OPTIMIZER_SLOT/optimizer/m`` before).

What a checkpoint holds: the variables (counted per layer path, statistics
from the shards, moving statistics non-trainable), the learning rate's
current value and the step count. What it does not: the architecture, the
regularizers (Python code) and the optimizer's class and ``weight_decay``
(Python floats); the class is guessed from the slots each weight has, and
a note says what to lint instead.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from reglint.errors import ModelReadError
from reglint.model import UNRECORDED_CLASS, Layer, LearningRate, Model, Optimizer, Variable
from reglint.readers.keras_layers import role_from_weight_name
from reglint.readers.limits import ReadOptions
from reglint.readers.protobuf_wire import fields, varint
from reglint.readers.savedmodel import (
    _VALUE_SUFFIX,
    BundleEntry,
    _model_variable_keys,
    _Tensor,
    _view_order,
    iterations,
    read_bundle_index,
    shard_path,
    shard_stats,
)
from reglint.readers.sniff import tf_checkpoint_prefix

OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"
# Where Keras 3's optimizer lists the model's trainable variables; TensorFlow
# saves them there, the first path its walk meets.
TRAINABLE_LIST = "optimizer/_trainable_variables/"
# Attributes that are not the model (a Keras 3 model tracks its optimizer too).
NOT_MODEL = frozenset({"optimizer", "_optimizer", "save_counter"})
MAX_NODES = 1_000_000

# Slots per weight -> what the optimizer was (Keras' optimizers: Adam, AdamW,
# Nadam, Adamax keep two; SGD with momentum, RMSprop, Adagrad one; SGD none).
SLOT_CLASSES = {0: "SGD", 1: "SGD (momentum) or RMSprop or Adagrad", 2: "Adam or AdamW or Nadam"}
# A tf.keras (legacy) optimizer's slots, together, name it: an optimizer keeps
# all its slots (a centered RMSprop with momentum: rms, momentum and mg),
# so the set is read as a whole (review 44, 4).
LEGACY_SLOT_SETS = {
    frozenset({"momentum"}): "SGD (momentum)",
    frozenset({"m", "v"}): "Adam or Nadam or Adamax",
    frozenset({"m", "v", "vhat"}): "Adam (amsgrad)",
    frozenset({"rms"}): "RMSprop",
    frozenset({"rms", "momentum"}): "RMSprop (momentum)",
    frozenset({"rms", "mg"}): "RMSprop (centered)",
    frozenset({"rms", "momentum", "mg"}): "RMSprop (centered, momentum)",
    frozenset({"accumulator"}): "Adagrad",
    frozenset({"accumulator", "linear"}): "Ftrl",
    frozenset({"accum_grad", "accum_var"}): "Adadelta",
}
NOTE = ("a TensorFlow checkpoint holds the variables, the learning rate and the step count, not the architecture, "
        "the regularizers or the optimizer's class and weight_decay: lint the .keras file or the SavedModel for those")


def holds_model_variables(index: Path) -> bool:
    """Whether a training checkpoint's index names a model's variables (a
    layer's, nested under an attribute; or Keras 3's trainable list), as
    ``read_tf_checkpoint`` asks: a ``tf.train.Checkpoint`` of bare variables
    or a step counter holds none. Read from the index alone (review 36, D7:
    pre-commit passes every checkpoint, and one holding no model must not
    fail the hook)."""
    try:
        entries = read_bundle_index(index)
    except Exception:  # unreadable, over a limit, hostile: the reader says why, in one line
        return True
    return any(k.startswith(TRAINABLE_LIST) for k in entries) or any(
        "/" in k[: -len(_VALUE_SUFFIX)] for k in _model_variable_keys(entries))


def read_tf_checkpoint(path: Path, options: ReadOptions) -> Model:
    prefix = tf_checkpoint_prefix(path)
    if prefix is None:
        raise ModelReadError("a .index file without its .data-* shards: not a readable TensorFlow checkpoint")
    entries = read_bundle_index(Path(f"{prefix}.index"))
    paths = model_paths(entries, prefix, options)
    unnamed = [k for k in entries if k.startswith(TRAINABLE_LIST) and k.endswith(_VALUE_SUFFIX) and k not in paths]
    if unnamed:  # Keras 3's trainable weights with no object graph to name them: counted under the list's name
        paths.update({k: k[len("optimizer/"): -len(_VALUE_SUFFIX)] for k in unnamed})
        model_notes = [f"{len(unnamed)} trainable variables saved under the optimizer's list without an object "
                       "graph naming them (Keras 3): counted as one layer, unnamed"]
    else:
        model_notes = []
    keys = [k for k in sorted(set(_model_variable_keys(entries)) | set(paths), key=_view_order)
            if "/" in paths.get(k, k[: -len(_VALUE_SUFFIX)])]
    if not keys:
        raise ModelReadError("a TensorFlow checkpoint without model variables")
    model = Model(path=str(path), format="tf_checkpoint", framework="tf.keras")
    named = {key: paths.get(key, key[: -len(_VALUE_SUFFIX)]) for key in keys}
    owner = _common_owner(list(named.values()))
    layers: dict[str, Layer] = {}
    for key in sorted(keys, key=lambda k: _view_order(named[k])):
        parts = named[key][len(owner):].split("/")
        layer_path = "/".join(parts[:-1])
        layer = layers.setdefault(layer_path, Layer(name=parts[-2], path=layer_path, class_name=UNRECORDED_CLASS))
        short, role = role_from_weight_name(parts[-1].lstrip("_"))  # Keras 3 tracks Dense's kernel as _kernel
        var = Variable(name=short, role=role, shape=entries[key].shape, trainable=not role.is_statistic,
                       location=named[key])
        if options.weight_stats:
            var.stats = shard_stats(_Tensor(entries[key], key, prefix.parent, options, prefix=prefix))
        layer.variables.append(var)
    model.layers = list(layers.values())
    model.optimizer = _optimizer(entries, prefix, sum(v.trainable for _, v in model.variables()), model.notes)
    model.notes.extend([*model_notes, NOTE])
    return model


def model_paths(entries: dict[str, BundleEntry], prefix: Path, options: ReadOptions) -> dict[str, str]:
    """checkpoint key -> the variable's path from the root through the
    model, from the checkpoint's object graph. A variable is saved once,
    under the first path TensorFlow's walk meets: Keras 3's trainable
    weights under ``optimizer/_trainable_variables/N``; their names are their
    paths through the other attributes (``model/_functional/_operations/0/kernel``)."""
    entry = entries.get(OBJECT_GRAPH)
    data = _string_scalar(entry, prefix, options) if entry is not None else None
    if not data:
        return {}
    nodes = [_node(value) for number, wire, value in fields(data) if number == 1 and wire == 2]
    if not nodes:
        return {}
    out: dict[str, str] = {}
    seen = {0}
    queue = [(child, name) for child, name in nodes[0][0] if name not in NOT_MODEL]
    while queue:
        node, path = queue.pop(0)
        if node in seen or not 0 <= node < len(nodes) or len(seen) > MAX_NODES:
            continue
        seen.add(node)
        children, keys = nodes[node]
        for key in keys:
            out.setdefault(key, path)
        queue.extend((child, f"{path}/{name}") for child, name in children if name not in NOT_MODEL)
    return out


def _node(data: bytes) -> tuple[list[tuple[int, str]], list[str]]:
    """A TrackableObject: its children (node id, local name) and the
    checkpoint keys of its VARIABLE_VALUE attributes."""
    children, keys = [], []
    for number, wire, value in fields(data):
        if number == 1 and wire == 2:  # ObjectReference: node_id = 1, local_name = 2
            ref = {n: v for n, _, v in fields(value)}
            node, name = ref.get(1, 0), ref.get(2, b"")
            if isinstance(node, int) and isinstance(name, bytes):
                children.append((node, name.decode("utf-8", "replace")))
        elif number == 2 and wire == 2:  # SerializedTensor: name = 1, checkpoint_key = 3
            tensor = {n: v for n, _, v in fields(value)}
            key = tensor.get(3)
            if tensor.get(1) == b"VARIABLE_VALUE" and isinstance(key, bytes):
                keys.append(key.decode("utf-8", "replace"))
    return children, keys


def _string_scalar(entry: BundleEntry, prefix: Path, options: ReadOptions) -> bytes | None:
    """A scalar string tensor's bytes: tensor_bundle writes its length as a
    varint, a 4-byte checksum of the lengths, then the bytes."""
    if entry.dtype != 7 or entry.shape or not 0 < entry.size <= options.max_pickle_bytes:
        return None
    try:
        with shard_path(prefix, entry.shard).open("rb") as handle:
            handle.seek(entry.offset)
            raw = handle.read(entry.size)
        length, at = varint(raw, 0)
    except (OSError, ModelReadError):
        return None
    data = raw[at + 4: at + 4 + length]
    return data if len(data) == length else None


def _common_owner(paths: list[str]) -> str:
    """``model/`` (and Keras 3's ``_functional/``) when every variable is
    under one attribute of a ``tf.train.Checkpoint``; layers are named
    without it."""
    owner = ""
    while True:
        first = {p[len(owner):].split("/", 1)[0] for p in paths}
        head = next(iter(first))
        if len(first) != 1 or head.startswith("layer") or all(p[len(owner):].count("/") < 2 for p in paths):
            return owner
        owner += f"{head}/"


def _optimizer(entries: dict[str, BundleEntry], prefix: Path, trainable: int, notes: list[str]) -> Optimizer | None:
    rate = next((k for k in entries if k.split("/")[:2] in (["optimizer", "_learning_rate"],
                                                           ["optimizer", "learning_rate"])), None)
    steps = iterations(entries, prefix)
    if rate is None and steps is None:
        return None
    value = _scalar(entries[rate], prefix) if rate is not None else None
    legacy = Counter(m.group(1) for k in entries if (m := re.search(r"\.OPTIMIZER_SLOT/optimizer/(\w+)/", k)))
    modern = sum(1 for k, e in entries.items() if k.startswith("optimizer/_variables/") and e.shape)
    if legacy:
        guess = LEGACY_SLOT_SETS.get(frozenset(legacy), f"slots {', '.join(sorted(legacy))}")
    else:
        guess = SLOT_CLASSES.get(round(modern / trainable) if trainable else 0, "unknown")
    notes.append(f"optimizer class not saved: {guess}, from the slot variables it keeps per weight")
    return Optimizer(class_name=f"unknown ({guess})", learning_rate=LearningRate(initial=value) if value else None,
                     iterations=steps)


def _scalar(entry: BundleEntry, prefix: Path) -> float | None:
    if entry.shape or entry.dtype not in (1, 2):  # float32, float64
        return None
    shard = shard_path(prefix, entry.shard)
    size = 4 if entry.dtype == 1 else 8
    try:
        with shard.open("rb") as handle:
            handle.seek(entry.offset)
            raw = handle.read(size)
    except OSError:
        return None
    if len(raw) != size:
        return None
    value = float(np.frombuffer(raw, dtype="<f4" if size == 4 else "<f8")[0])
    return value if np.isfinite(value) else None
