"""Walk a saved Keras model config (any generation) into its leaf layers.

Containers (Sequential, Functional, Model) are opened recursively; every other
layer becomes a ``LayerNode`` with a path unique in the model
(``encoder/dense_1``), its effective ``trainable`` flag (a frozen container
freezes everything inside it), and the path Keras 3 saves its variables under
in ``model.weights.h5``. That path is computed the way
``keras/src/saving/saving_lib.py`` computes it: a container's layers are
saved in ``model.layers`` order under ``layers/<snake_case class name>`` made
unique with ``_1``, ``_2`` ... (Sequential leaves its InputLayer out), never
from the layer's configured name.

Keras 1 wrote Sequential configs as a bare list and used ``name`` where later
versions use ``class_name``; both are read here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from reglint.errors import ModelReadError
from reglint.model import TensorRef
from reglint.model.versions import major_minor
from reglint.readers.keras_layers import CHAINED_CONTAINERS, CONTAINERS, MHA_LIKE
from reglint.readers.keras_objects import bare_class_name, class_name_of, is_tensor_ref, to_snake_case


@dataclass
class LayerNode:
    name: str
    class_name: str
    config: dict[str, Any]
    path: str
    trainable: bool
    weights_path: str  # Keras 3 .keras: group path in model.weights.h5
    registered_name: str | None = None
    module: str | None = None
    inbound: list[str] = field(default_factory=list)
    # The same references with the tensor each reads, every call's in order
    # (empty for a Sequential's implicit chain).
    inbound_tensors: list[TensorRef] = field(default_factory=list)
    calls: int = 1
    container: str = ""  # path of the enclosing container ("" at the top)
    # Keras 3's record of the input shape the layer was built with.
    build_config: dict[str, Any] = field(default_factory=dict)
    inbound_nodes: Any = None  # the raw inbound_nodes entry (functional graphs)
    # Name of the top-level layer holding this one (itself at the top): the
    # legacy HDF5 group of its weights. Not ``path.split("/")[0]``: layer
    # names may hold "/" (tf.keras applications name theirs "Conv/BatchNorm").
    top: str = ""

    def __post_init__(self) -> None:
        self.top = self.top or self.name

    @property
    def is_operation(self) -> bool:
        """A Keras 3 operation called on a symbolic tensor (``keras.ops.cast``,
        an ``Embedding(mask_zero=True)``'s ``NotEqual``), saved as a node of
        the graph from module ``keras.src.ops``: it owns no variables."""
        return isinstance(self.module, str) and self.module.startswith(("keras.src.ops.", "keras.ops."))


@dataclass
class ModelConfig:
    class_name: str
    name: str | None
    leaves: list[LayerNode]
    output_layers: list[str]  # names of the layers producing the outputs
    containers: list[LayerNode]  # nested Sequential/Functional entries
    # The outputs as references in the top container, in the order Keras
    # numbers them: a nested model's output is that model with its tensor
    # index (output_layers names the nested model, not the layer inside).
    output_refs: list[TensorRef] = field(default_factory=list)
    # Where the outputs are a dict, each output's key (what a loss dict is
    # keyed by), aligned with output_refs; None elsewhere.
    output_keys: list[str | None] = field(default_factory=list)


def is_container(class_name: str, cfg: Any) -> bool:
    if class_name in CONTAINERS:
        return True
    # Subclassed Functional models keep the functional layout.
    return isinstance(cfg, dict) and isinstance(cfg.get("layers"), list) and "input_layers" in cfg


def container_layers(class_name: str, cfg: Any) -> list[dict[str, Any]]:
    if isinstance(cfg, list):  # Keras 1 Sequential
        return [c for c in cfg if isinstance(c, dict)]
    if isinstance(cfg, dict) and isinstance(cfg.get("layers"), list):
        return [c for c in cfg["layers"] if isinstance(c, dict)]
    if isinstance(cfg, dict) and "layers" in cfg and class_name in ("Sequential", "Functional", "Model"):
        # Keras cannot load it: a model of no layers would be an empty, clean-looking lint.
        raise ModelReadError(f"the {class_name} config's layers is a {type(cfg['layers']).__name__}, not a list "
                             "of layer configs: Keras cannot load this model")
    return []


@dataclass(frozen=True)
class Keras2ZipLayout:
    """Where a tf.keras 2.12-2.14 ``.keras`` file keeps a container's layers:
    ``_layer_checkpoint_dependencies/<snake_case class>[_N]`` (saving_lib
    walks that attribute before ``layers``; 2.15 skips it and writes
    ``layers/``). Named by class, as Keras 3 names ``layers/``, never by the
    layer's name. The attribute is a dict listing each layer that holds
    weights twice ('layer_with_weights-i', then 'layer-j'): 2.12 and 2.13
    number both entries (dense, dropout, dense_2 for a second Dense), 2.14
    skips the one already saved (dense, dropout, dense_1)."""

    counts_duplicates: bool
    holds_tensors: Callable[[str], bool]  # whether the group at a path holds any tensor


def walk_model_config(root: Any, *, max_layers: int = 100_000,
                      keras2_keras_zip: Keras2ZipLayout | None = None) -> ModelConfig:
    """Flatten a model config. ``root`` is the parsed ``config.json`` or
    ``model_config`` attribute."""
    if not isinstance(root, dict):
        raise ModelReadError("model config is not a JSON object")
    class_name = bare_class_name(class_name_of(root) or "")
    cfg = root.get("config")
    if not class_name or cfg is None:
        raise ModelReadError("model config has no class_name/config")
    leaves: list[LayerNode] = []
    containers: list[LayerNode] = []
    if not is_container(class_name, cfg):
        # A bare layer or a subclassed model without a layer list: one node.
        name = cfg.get("name", class_name) if isinstance(cfg, dict) else class_name
        leaves.append(LayerNode(name=str(name), class_name=class_name, config=cfg if isinstance(cfg, dict) else {},
                                path=str(name), trainable=_trainable(cfg), weights_path="",
                                registered_name=root.get("registered_name"), module=root.get("module"),
                                build_config=_table_or_empty(root.get("build_config"))))
    else:
        _walk(class_name, cfg, prefix="", weights_prefix="", trainable=_trainable(cfg), leaves=leaves,
              containers=containers, max_layers=max_layers, by_name=keras2_keras_zip, top="")
    name = cfg.get("name") if isinstance(cfg, dict) else None
    return ModelConfig(class_name=class_name, name=name, leaves=leaves,
                       output_layers=_output_layers(class_name, cfg, leaves), containers=containers,
                       output_refs=_output_refs(class_name, cfg, leaves),
                       output_keys=_output_keys(cfg.get("output_layers") if isinstance(cfg, dict) else None))


def _walk(class_name: str, cfg: Any, *, prefix: str, weights_prefix: str, trainable: bool,
          leaves: list[LayerNode], containers: list[LayerNode], max_layers: int, by_name: Keras2ZipLayout | None,
          top: str) -> None:
    used: dict[str, int] = {}
    previous: str | None = None  # Sequential configs record no graph: chain them
    functional = isinstance(cfg, dict) and "input_layers" in cfg and class_name not in CHAINED_CONTAINERS
    for entry in container_layers(class_name, cfg):
        if functional and _never_called(entry):
            # Keras builds a Functional's layers from the calls its config
            # records (functional_from_config): a layer never called is not
            # in model.layers, so it holds no weights and takes no place in
            # the saved layer numbering.
            continue
        if len(leaves) + len(containers) > max_layers:
            raise ModelReadError(f"more than {max_layers} layers: refusing to read")
        child_class = bare_class_name(class_name_of(entry) or "?")
        child_cfg = entry.get("config", {})
        if not isinstance(child_cfg, (dict, list)):
            child_cfg = {}
        name = _layer_name(entry, child_cfg, child_class)
        if class_name == "Sequential" and child_class == "InputLayer":
            continue  # Sequential.layers leaves the InputLayer out (and so does saving)
        if by_name is not None:
            saved_as = _unique(_keras2_snake_case(child_class), used)
            weights_path = f"{weights_prefix}_layer_checkpoint_dependencies/{saved_as}"
            if by_name.counts_duplicates and by_name.holds_tensors(weights_path):
                _unique(_keras2_snake_case(child_class), used)  # its second entry in the dict
        else:
            saved_as = to_snake_case(_SAVED_CLASS.get(child_class, child_class))
            weights_path = f"{weights_prefix}layers/{_unique(saved_as, used)}"
        path = f"{prefix}{name}"
        child_trainable = trainable and _trainable(child_cfg)
        node = LayerNode(
            name=name, class_name=child_class, config=child_cfg if isinstance(child_cfg, dict) else {},
            path=path, trainable=child_trainable, weights_path=weights_path,
            registered_name=entry.get("registered_name"), module=entry.get("module"),
            inbound_tensors=inbound_refs(entry, masks=False),
            calls=max(1, len(entry.get("inbound_nodes") or []) or 1),
            container=prefix.rstrip("/"),
            build_config=_table_or_empty(entry.get("build_config")),
            inbound_nodes=entry.get("inbound_nodes"), top=top or name,
        )
        node.inbound = _unique_names(node.inbound_tensors)
        if (not node.inbound and previous is not None and class_name in CHAINED_CONTAINERS) or (
            not node.inbound and previous is not None and isinstance(cfg, list)
        ):
            node.inbound = [previous]
        previous = name
        if is_container(child_class, child_cfg):
            containers.append(node)
            _walk(child_class, child_cfg, prefix=path + "/", weights_prefix=weights_path + "/",
                  trainable=child_trainable, leaves=leaves, containers=containers,
                  max_layers=max_layers, by_name=by_name, top=node.top)
        else:
            leaves.append(node)


def _never_called(entry: dict[str, Any]) -> bool:
    """A Functional config's layer entry that records no call: not an input,
    and no inbound node (a hand-edited copy, or a layer created and never
    used). Keras 1 InputLayers and Keras 3 ones alike have no inbound node.

    >>> _never_called({"class_name": "Dense", "config": {}, "inbound_nodes": []})
    True
    >>> _never_called({"class_name": "InputLayer", "config": {}, "inbound_nodes": []})
    False
    """
    if bare_class_name(class_name_of(entry) or "") == "InputLayer":
        return False
    return "inbound_nodes" in entry and not entry["inbound_nodes"]


# Configs carry the class's public (exported) name, saving_lib the Python
# class's own: they differ for one built-in layer.
_SAVED_CLASS = {"GroupQueryAttention": "GroupedQueryAttention"}


def _unique(name: str, used: dict[str, int]) -> str:
    """``saving_lib._get_unique_name``: dense, dense_1, dense_2 ..."""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _keras2_snake_case(name: str) -> str:
    """tf.keras 2's ``generic_utils.to_snake_case``: digits join the word
    before them (ConvLSTM2D -> conv_lst_m2d; Keras 3 writes conv_lstm2d)."""
    name = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name if not name.startswith("_") else "private" + name


def _layer_name(entry: dict, cfg: Any, class_name: str) -> str:
    name = entry.get("name")
    if not isinstance(name, str) and isinstance(cfg, dict):
        name = cfg.get("name")
    if not isinstance(name, str) or not name:
        name = to_snake_case(class_name) or "layer"
    return name


def thaw_for_writer(tree: ModelConfig, version: str | None) -> str | None:
    """Keras 3.0 and 3.1 rebuilt every layer of a file with trainable
    variables whatever its config's ``trainable`` (keras-team/keras#19398,
    fixed in 3.2.0): a file they wrote trains its frozen layers when they
    load it, and their ``model.summary()`` counts them as trainable. Count
    them as the writer trains them; the note (returned, None when nothing
    changed) names the layers and says what later releases do.

    >>> tree = ModelConfig("Sequential", "m", [LayerNode("conv", "Conv2D", {}, "conv", False, "")], [], [])
    >>> thaw_for_writer(tree, "3.2.1") is None, thaw_for_writer(tree, "3.1.1")[:45]
    (True, 'written by Keras 3.1.1, whose load_model igno')
    >>> tree.leaves[0].trainable
    True
    """
    if major_minor(version) not in ((3, 0), (3, 1)):
        return None
    frozen = [node for node in tree.leaves if not node.trainable]
    if not frozen:
        return None
    for node in frozen:
        node.trainable = True
    names = ", ".join(node.path for node in frozen[:5]) + (f" and {len(frozen) - 5} more" if len(frozen) > 5 else "")
    return (f"written by Keras {version}, whose load_model ignores trainable=False (keras-team/keras#19398, fixed in "
            f"3.2.0): the layers the config marks frozen ({names}) train when that release loads the file and are "
            "counted as trainable; Keras 3.2 or later keeps them frozen")


def writer_load_note(tree: ModelConfig, version: str | None) -> str | None:
    """Keras 3.0 to 3.2 cannot load a ``.keras`` file holding a Bidirectional
    layer they wrote themselves (its cells' variables are not found: "Layer
    'gru_cell' expected 3 variables, but received 0"; fixtures/versions,
    every release's ``rnn_rmsprop.keras``); 3.3 and later load it. The file
    is sound: a note, not a problem.

    >>> tree = ModelConfig("Sequential", "m", [LayerNode("bi", "Bidirectional", {}, "bi", True, "")], [], [])
    >>> writer_load_note(tree, "3.3.3") is None, writer_load_note(tree, "3.2.1")[:40]
    (True, 'written by Keras 3.2.1, which cannot loa')
    """
    if major_minor(version) not in ((3, 0), (3, 1), (3, 2)):
        return None
    wrapped = [node.path for node in tree.leaves if node.class_name == "Bidirectional"]
    if not wrapped:
        return None
    return (f"written by Keras {version}, which cannot load its own Bidirectional layers from this file "
            f"({', '.join(wrapped[:3])}: their cells' weights are not found); Keras 3.3 or later loads it")


def keras3_release(version: str | None, framework: str | None) -> tuple[int, int] | None:
    """The Keras 3 release (major, minor) that wrote the file, None for
    tf.keras and Keras 1/2 files or an unknown version (``variable_trains``)."""
    release = major_minor(version)
    return release if release is not None and release[0] == 3 and framework != "tf.keras" else None


def variable_trains(node: LayerNode, owner_config: Any, release: tuple[int, int] | None) -> bool:
    """Whether the release that loads the file trains a variable of ``node``
    whose owning (sub-)layer's config is ``owner_config`` (before roles:
    statistics never train).

    From Keras 3.2 a layer rebuilt with ``trainable=False`` freezes the
    variables it creates itself (``add_weight`` reads the flag) but does not
    hand the flag to the sub-layers it holds. A wrapper's inner layer, an
    RNN's cell and a Bidirectional's two layers keep their own config's flag
    (which ``layer.trainable = False`` set before saving, and a constructor
    argument on the wrapper did not), and MultiHeadAttention's and
    GroupQueryAttention's projections, made in ``build`` with no flag, always
    train (review 11: Keras 3.3 to 3.15.1 train 693 of the 1,143 weights of
    ``fixtures/versions/*/frozen_owners_adam.keras`` after loading). From 3.4
    a nested model's flag is not handed to its layers either (3.2 and 3.3
    freeze them: 12 of 47 trainable in ``frozen_model_constructor_sgd.keras``,
    47 from 3.4). Keras 3.0/3.1 thaw everything (``thaw_for_writer``), and
    tf.keras skips every variable of a frozen layer or model: the node's
    flag for both (``release`` None or before 3.2)."""
    if release is None:  # tf.keras: a frozen wrapper's or inner layer's weights do not train (review 37, 3)
        inner = owner_config is not node.config and isinstance(owner_config, dict)
        return node.trainable and not (inner and owner_config.get("trainable") is False)
    if release < (3, 2):
        return node.trainable
    if node.class_name in MHA_LIKE:
        return True
    if owner_config is not node.config and isinstance(owner_config, dict) and "trainable" in owner_config:
        return owner_config["trainable"] is not False
    return _trainable(node.config) if release >= (3, 4) else node.trainable


def _trainable(cfg: Any) -> bool:
    return not (isinstance(cfg, dict) and cfg.get("trainable") is False)


def _table_or_empty(value: Any) -> dict[str, Any]:
    """A config's JSON object, or {} where the file holds anything else there."""
    return value if isinstance(value, dict) else {}


def inbound_refs(entry: dict, masks: bool = True) -> list[TensorRef]:
    """The tensors feeding this layer, every call's in order, each with the
    call it belongs to, across config generations (the one parser of
    ``inbound_nodes``: a list of calls; tf.keras writes a TF op layer's
    call as one flat [name, node, tensor, kwargs]). ``masks=False`` leaves
    out the tensors passed as a ``mask`` (``mask=``, ``attention_mask=``...):
    a boolean mask gates the data, it carries none (review 68, 1: an
    Embedding(mask_zero=True)'s ``NotEqual`` mask was read as a second data
    input of the pooling after it, and the token ids' scale reached it)."""
    nodes = entry.get("inbound_nodes")
    calls = nodes if isinstance(nodes, list) and not is_tensor_ref(nodes) else [nodes]
    return [replace(ref, call=call) for call, node in enumerate(calls) for ref in _iter_history(node, masks=masks)]


def _is_mask(key: Any) -> bool:
    return isinstance(key, str) and (key == "mask" or key.endswith("_mask"))


def _unique_names(refs: list[TensorRef]) -> list[str]:
    """Names of the layers feeding this one, each once, in order."""
    return list(dict.fromkeys(ref.name for ref in refs))


def _iter_history(obj: Any, depth: int = 0, masks: bool = True) -> Iterator[TensorRef]:
    """Keras 2 nodes are [[name, node, tensor, kwargs], ...]; Keras 3 nodes are
    {"args": [{"class_name": "__keras_tensor__", "config": {"keras_history":
    [name, node, tensor]}}], "kwargs": {...}}. Collect the references in the
    order Keras flattens a call's arguments: a dict (a model called with
    {"b": ..., "a": ...}) in sorted key order, as ``tree.flatten`` and
    ``tf.nest.flatten`` take it, not the file's insertion order. A tensor
    index that is not a number is unknown (None), not 0."""
    if depth > 12:
        return
    if isinstance(obj, dict):
        history = obj.get("keras_history")
        if isinstance(history, list) and history and isinstance(history[0], str):
            yield _tensor_ref(history)
            return
        if not masks and set(obj) == {"args", "kwargs"}:  # a Keras 3 call: its keywords are the call's own
            yield from _iter_history(obj["args"], depth + 1)
            yield from _iter_history(_without_masks(obj["kwargs"]), depth + 1)
            return
        for key in sorted(obj, key=str):
            yield from _iter_history(obj[key], depth + 1, masks)
    elif isinstance(obj, list):
        if is_tensor_ref(obj):
            yield _tensor_ref(obj)
            for extra in obj[3:]:  # a call's kwargs may hold tensors too (a TF op's ``y``, attention's value)
                yield from _iter_history(extra if masks else _without_masks(extra), depth + 1)
            return
        for value in obj:
            yield from _iter_history(value, depth + 1, masks)


def _without_masks(kwargs: Any) -> Any:
    """A call's keyword arguments without its masks: only the call's own
    keywords (``mask=``, ``attention_mask=``), never the keys of a dict a
    model is called with, whose order numbers its inputs."""
    return {k: v for k, v in kwargs.items() if not _is_mask(k)} if isinstance(kwargs, dict) else kwargs


def _tensor_ref(item: list) -> TensorRef:
    """[name, node, tensor, ...] as a ``TensorRef``; a missing or
    non-integer tensor index stays unknown."""
    tensor = item[2] if len(item) > 2 and _is_int(item[2]) else None
    return TensorRef(item[0], ref_int(item[1]) if len(item) > 1 else 0, tensor)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def container_io(node: LayerNode) -> tuple[list[str], list[str]]:
    """(input layer names, output layer names) inside a nested model: a
    Functional's ``input_layers``/``output_layers``; a Sequential's first
    and last layers (its InputLayer left out, as Keras does)."""
    cfg = node.config
    entries = [(bare_class_name(class_name_of(e) or "?"), e) for e in container_layers(node.class_name, cfg)]
    names = [_layer_name(e, e.get("config", {}), cls) for cls, e in entries if cls != "InputLayer"]
    inputs = _ref_names(cfg.get("input_layers")) if "input_layers" in cfg else names[:1]
    outputs = _ref_names(cfg.get("output_layers")) if "output_layers" in cfg else names[-1:]
    return inputs, outputs


def container_output_refs(node: LayerNode) -> list[TensorRef]:
    """A nested Functional's outputs with the tensor each is, in the order a
    consumer's tensor index counts them; empty for a Sequential (its config
    records no output tensors)."""
    cfg = node.config
    return [_tensor_ref(item) for item in _flat_refs(cfg.get("output_layers"))] if "output_layers" in cfg else []


def _ref_names(refs: Any) -> list[str]:
    """Layer names of ``input_layers``/``output_layers``."""
    return [name for name, _, _ in tensor_refs(refs)]


def tensor_refs(value: Any) -> list[tuple[str, int, int]]:
    """``input_layers``/``output_layers`` as (name, node, tensor), in the
    order Keras numbers the model's tensors (see ``_flat_refs``)."""
    return [(item[0], ref_int(item[1]), ref_int(item[2])) for item in _flat_refs(value)]


def _flat_refs(value: Any, depth: int = 0) -> list[list]:
    """The [name, node, tensor] entries of ``input_layers``/``output_layers``
    flattened: [[name, node, tensor], ...], a single flat [name, node,
    tensor] (Keras 3), nested lists, or dicts of them taken in sorted key
    order, as Keras' ``tree.flatten`` and ``tf.nest.flatten`` take them
    (the file keeps the insertion order, a consumer's tensor index counts
    the sorted one). Anything else holds none: Keras cannot load such a
    model, and an empty list keeps the walk going.

    >>> _flat_refs({"z": ["z", 0, 0], "a": [["aa", 0, 0], ["b", 1, 2]]})
    [['aa', 0, 0], ['b', 1, 2], ['z', 0, 0]]
    """
    if depth > 12:
        return []
    if isinstance(value, dict):
        return [ref for key in sorted(value, key=str) for ref in _flat_refs(value[key], depth + 1)]
    if not isinstance(value, list):
        return []
    if value and isinstance(value[0], str):
        return [value] if len(value) >= 3 else []
    return [ref for item in value for ref in _flat_refs(item, depth + 1)]


def ref_int(value: Any) -> int:
    return value if _is_int(value) else 0


def _output_refs(class_name: str, cfg: Any, leaves: list[LayerNode]) -> list[TensorRef]:
    """The model's outputs as references in its top container: a
    Functional's ``output_layers``; a Sequential's last entry (a nested
    model there stands for its output); a bare layer itself."""
    if isinstance(cfg, dict) and "output_layers" in cfg:
        return [_tensor_ref(item) for item in _flat_refs(cfg["output_layers"])]
    if is_container(class_name, cfg):
        entries = [(bare_class_name(class_name_of(e) or "?"), e) for e in container_layers(class_name, cfg)]
        names = [_layer_name(e, e.get("config", {}), cls) for cls, e in entries if cls != "InputLayer"]
        return [TensorRef(names[-1], 0, None)] if names else []
    return [TensorRef(leaves[-1].name, 0, None)] if leaves else []


def _output_keys(value: Any) -> list[str | None]:
    """For outputs written as a dict ({"z_prob": [...], "a_bin": [...]}),
    the key of each flattened output (sorted, as ``_flat_refs`` takes
    them): Keras matches a loss dict to the outputs by these keys.

    >>> _output_keys({"z": ["p", 0, 0], "a": ["q", 0, 0]})
    ['a', 'z']
    >>> _output_keys([["p", 0, 0], ["q", 0, 0]])
    [None, None]
    """
    if isinstance(value, dict):
        return [str(key) for key in sorted(value, key=str) for _ in _flat_refs(value[key], 1)]
    return [None] * len(_flat_refs(value))


def _output_layers(class_name: str, cfg: Any, leaves: list[LayerNode]) -> list[str]:
    if isinstance(cfg, dict) and "output_layers" in cfg:
        # Keras 3 writes a single output as ["name", 0, 0]; Keras 2 a list of them.
        return _ref_names(cfg["output_layers"])
    return [leaves[-1].name] if leaves else []


def built_mixed_float16(model_cfg: Any) -> bool:
    """Whether a saved Keras 3 model was built under the ``mixed_float16``
    policy: its config's dtype policy, or, where a Functional config saves
    none, its layers' (built under the global policy the model had)."""
    cfg = model_cfg.get("config") if isinstance(model_cfg, dict) else None
    if not isinstance(cfg, dict):
        return False
    if cfg.get("dtype") is not None:
        return _policy_name(cfg.get("dtype")) == "mixed_float16"
    layers = [layer.get("config") for layer in cfg.get("layers") or [] if isinstance(layer, dict)]
    policies = [_policy_name(c.get("dtype")) for c in layers if isinstance(c, dict) and c.get("dtype") is not None]
    return bool(policies) and all(name == "mixed_float16" for name in policies if name != "float32") \
        and "mixed_float16" in policies


def _policy_name(dtype: Any) -> str | None:
    """A dtype policy as saved: a string, or a ``DTypePolicy`` object."""
    if isinstance(dtype, dict):
        inner = dtype.get("config")
        return inner.get("name") if isinstance(inner, dict) else None
    return dtype if isinstance(dtype, str) else None
