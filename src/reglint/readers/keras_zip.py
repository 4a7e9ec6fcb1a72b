"""Keras 3 (and tf.keras 2.13+) ``.keras`` archives, and the folders
``model.save(folder, zipped=False)`` writes instead.

The archive holds ``config.json`` (the model, its layers, the compile
config), ``metadata.json`` (``keras_version``) and ``model.weights.h5``.
Members are read by name with size limits; nothing is extracted. The
weights file is opened in place: Keras stores members uncompressed, so
h5py reads through a window onto the archive, a chunk at a time. A folder
holds the same three files, read the same way (links must stay inside it).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

from reglint.errors import ModelReadError, UnsafeInputError, one_line
from reglint.model import Model
from reglint.model.versions import major_minor
from reglint.readers.file_window import FileWindow
from reglint.readers.h5_index import DATASET, GROUP, H5Index
from reglint.readers.keras_build import (
    FoundTensor,
    attach_graph,
    attach_training_config,
    build_layer,
    owner_for_attr_path,
)
from reglint.readers.keras_check import (
    KERAS_ZIP,
    build_from_config,
    check_against_config,
    extra_layer_problem,
    no_weights_problem,
)
from reglint.readers.keras_config import (
    Keras2ZipLayout,
    LayerNode,
    ModelConfig,
    built_mixed_float16,
    thaw_for_writer,
    walk_model_config,
    writer_load_note,
)
from reglint.readers.keras_placement import note_activity_placement, note_mixed_precision_activity
from reglint.readers.keras_slots import reconcile_trainable, stored_slot_shapes
from reglint.readers.limits import ReadOptions
from reglint.readers.safe_io import h5_get, load_json
from reglint.readers.sniff import KERAS_HUB_TASK, check_link_stays_inside
from reglint.readers.tensor_stats import raw_image

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS_H5 = "model.weights.h5"
# Read-ahead for HDF5 metadata read through the archive (object headers sit beside their data).
METADATA_BUFFER = 64 << 10


def read_keras_zip(path: Path, options: ReadOptions) -> Model:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ModelReadError(f"not a readable zip archive ({exc})") from None
    except OSError as exc:
        raise ModelReadError(f"cannot open archive: {exc.strerror or exc}") from None
    with archive:
        listed = archive.namelist()
        names = set(listed)
        if len(names) < len(listed):
            # zipfile reads the last of two same-named members, unzip shows the
            # first: which config is linted would depend on the tool (review 45, 7)
            twice = _first_repeated(listed)
            raise UnsafeInputError(f"archive member {one_line(twice, 80)!r} appears twice: refused")
        if CONFIG not in names:
            raise ModelReadError("zip archive without config.json: not a .keras model")
        return _read_keras_v3(path, names, _ZipMembers(archive, options), options)


def _first_repeated(names: list[str]) -> str:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return ""


def read_keras_folder(path: Path, options: ReadOptions) -> Model:
    """``model.save(folder, zipped=False)``: the archive's members as files."""
    try:
        names = {entry.name for entry in os.scandir(path) if entry.is_file()}
    except OSError as exc:
        raise ModelReadError(f"cannot list the folder: {exc.strerror or exc}") from None
    if CONFIG not in names:
        raise ModelReadError("folder without config.json: not a Keras model")
    members = _FolderMembers(path, options)
    model = _read_keras_v3(path, names, members, options)
    if all(name in names for name in KERAS_HUB_TASK) and WEIGHTS_H5 in names:
        _add_keras_hub_task(model, members, options)
    return model


def _check_recorded_count(model: Model, recorded: Any) -> None:
    """KerasHub's ``metadata.json`` records the backbone's
    ``count_params()`` when it saved: a count read otherwise is named."""
    if isinstance(recorded, int) and not isinstance(recorded, bool) and recorded != model.total_params:
        model.notes.append(f"{METADATA} records {recorded:,} parameters (KerasHub's count_params() at save); "
                           f"the files hold {model.total_params:,}")


def _add_keras_hub_task(model: Model, members: _FolderMembers, options: ReadOptions) -> None:
    """A KerasHub preset saved from a task (``task.save_to_preset``): the
    backbone is ``config.json`` and ``model.weights.h5``; ``task.json`` holds
    the task's config (the backbone's nested in it) and ``task.weights.h5``
    the variables the task adds (a classifier's head) and the optimizer's
    slots. One model: the backbone's layers and the task's as one custom
    layer. The preset keeps no compile settings."""
    config_file, weights_file = KERAS_HUB_TASK
    task = load_json(members.read(config_file, options.max_json_bytes), what=config_file,
                     max_bytes=options.max_json_bytes, max_depth=options.max_json_depth)
    task = task if isinstance(task, dict) else {}
    raw_cfg = task.get("config")
    cfg: dict[str, Any] = raw_cfg if isinstance(raw_cfg, dict) else {}
    class_name = str(task.get("class_name") or "Task")[:200]
    name = str(cfg.get("name") or class_name)[:200]
    node = LayerNode(name=name, class_name=class_name, config={k: v for k, v in cfg.items() if k != "backbone"},
                     path=name, trainable=cfg.get("trainable") is not False, weights_path="layers")
    backbone = model.total_params
    with members.weights(weights_file) as h5:
        index = H5Index(h5)
        found: list[FoundTensor] = []
        if index.kind("layers") == GROUP:
            _collect(index, "layers", node, [], found, depth=0)
        layer = build_layer(node, found, options, model)
        slots = stored_slot_shapes(index)
    model.layers.append(layer)
    model.notes.append(f"KerasHub preset of a {class_name}: the backbone from {CONFIG} and {WEIGHTS_H5} "
                       f"({backbone:,} parameters), the task's own {layer.params:,} from {weights_file} (layer "
                       f"{name}); the preset keeps no compile settings"
                       + (", so its optimizer slots are not read" if slots else ""))


def _read_keras_v3(path: Path, names: set[str], members: Any, options: ReadOptions) -> Model:
    config = load_json(members.read(CONFIG, options.max_json_bytes), what=CONFIG,
                       max_bytes=options.max_json_bytes, max_depth=options.max_json_depth)
    metadata: dict[str, Any] = {}
    if METADATA in names:
        meta = load_json(members.read(METADATA, options.max_json_bytes), what=METADATA,
                         max_bytes=options.max_json_bytes, max_depth=options.max_json_depth)
        metadata = meta if isinstance(meta, dict) else {}
    version = metadata.get("keras_version")
    model = Model(path=str(path), format="keras_v3", framework="keras",
                  framework_version=str(version) if version is not None else None,
                  metadata={"date_saved": metadata.get("date_saved")})
    model.backend = metadata.get("backend") if isinstance(metadata.get("backend"), str) else None
    if isinstance(version, str) and version.startswith("2."):
        model.framework = "tf.keras"
    if WEIGHTS_H5 in names:
        with members.weights() as h5:
            _read_weights(h5, model, config, options)
    else:
        tree = walk_model_config(config, max_layers=options.max_layers)
        _thaw(model, tree)
        _build_without_weights(model, tree, config, names)
        model.metadata["tree"] = tree
    tree = model.metadata.pop("tree")
    note_activity_placement(model, tree, keras3=model.framework != "tf.keras")
    note_mixed_precision_activity(model, built_mixed_float16(config))
    model.name = tree.name
    attach_training_config(model, config.get("compile_config") if isinstance(config, dict) else None, tree, config)
    if model.optimizer is not None and "optimizer_iterations" in model.metadata:
        model.optimizer.iterations = model.metadata["optimizer_iterations"]
    elif "optimizer_iterations" in model.metadata and isinstance(config, dict) and config.get("compile_config"):
        # Keras 3.15 leaves the optimizer out of compile_config when a model saved as .h5 is saved again as
        # .keras; load_model then compiles its default and loads the saved state into it (review 30, D8)
        model.notes.append(
            f"the compile_config names no optimizer, but model.weights.h5 holds an optimizer's state "
            f"({model.metadata['optimizer_iterations']:,} steps taken): Keras' load_model compiles its default "
            "'rmsprop' and loads that state into it; the optimizer that trained the model is not recorded, so "
            "no per-step rule judges it (give --optimizer and --lr)")
    reconcile_trainable(model, model.metadata.pop("slot_shapes", []))
    _check_recorded_count(model, metadata.get("parameter_count"))
    attach_graph(model, tree)
    return model


class _ZipMembers:
    """The members of a ``.keras`` archive, read with size limits."""

    def __init__(self, archive: zipfile.ZipFile, options: ReadOptions):
        self.archive, self.options = archive, options

    def read(self, name: str, limit: int) -> bytes:
        return _read_member(self.archive, name, limit, self.options)

    @contextlib.contextmanager
    def weights(self):
        import h5py

        info = self.archive.getinfo(WEIGHTS_H5)
        _check_member(info, self.options.max_member_bytes, self.options)
        handle = _open_member(self.archive, info)
        try:
            try:
                h5 = h5py.File(_buffered(handle), "r")
            except Exception as exc:
                raise ModelReadError(
                    f"{WEIGHTS_H5} inside the archive is not readable HDF5 ({type(exc).__name__})") from None
            with h5, _direct_reads(h5, handle):
                yield h5
        finally:
            handle.close()


class _FolderMembers:
    """The same files in a folder (``zipped=False``), read with the same limits."""

    def __init__(self, root: Path, options: ReadOptions):
        self.root, self.options = root, options

    def _file(self, name: str, limit: int) -> Path:
        path = self.root / name
        if path.is_symlink():
            check_link_stays_inside(path)
        if path.stat().st_size > limit:
            raise UnsafeInputError(f"{name} is {path.stat().st_size} bytes, over the limit")
        return path

    def read(self, name: str, limit: int) -> bytes:
        try:
            return self._file(name, limit).read_bytes()
        except OSError as exc:
            raise ModelReadError(f"cannot read {name}: {exc.strerror or exc}") from None

    @contextlib.contextmanager
    def weights(self, name: str = WEIGHTS_H5):
        import h5py

        path = self._file(name, self.options.max_member_bytes)
        try:
            h5 = h5py.File(path, "r")
        except Exception as exc:
            raise ModelReadError(f"{name} is not readable HDF5 ({type(exc).__name__})") from None
        with h5:
            yield h5


def _read_member(archive: zipfile.ZipFile, name: str, limit: int, options: ReadOptions) -> bytes:
    info = archive.getinfo(name)
    _check_member(info, limit, options)
    try:
        with archive.open(info) as handle:
            data = handle.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:  # bad CRC, truncated, bad deflate
        raise ModelReadError(f"{name} inside the archive is corrupt ({one_line(str(exc), 120)})") from None
    if len(data) > limit:
        raise UnsafeInputError(f"{name} inflates past its size limit")
    return data


def _check_member(info: zipfile.ZipInfo, limit: int, options: ReadOptions) -> None:
    if info.file_size > limit:
        raise UnsafeInputError(f"{info.filename} claims {info.file_size} bytes, over the limit")
    if info.compress_size and info.file_size / max(1, info.compress_size) > options.max_compression_ratio:
        raise UnsafeInputError(
            f"{info.filename} has a compression ratio over {options.max_compression_ratio}: zip bomb")


def _read_weights(h5, model: Model, config: Any, options: ReadOptions) -> None:
    index = H5Index(h5)
    # tf.keras 2.12-2.14 saved sub-layers under _layer_checkpoint_dependencies;
    # 2.15 and later writers use layers/.
    by_name = index.kind("_layer_checkpoint_dependencies") is not None and index.kind("layers") is None
    layout = Keras2ZipLayout(counts_duplicates=_numbers_duplicates(model.framework_version),
                             holds_tensors=lambda path: _holds_tensors(index, path)) if by_name else None
    tree = walk_model_config(config, max_layers=options.max_layers, keras2_keras_zip=layout)
    _thaw(model, tree)
    model.metadata["tree"] = tree
    for node in tree.leaves:
        tensors = _tensors_for(index, node)
        model.layers.append(build_layer(node, tensors, options, model))
    check_against_config(model, tree, config, KERAS_ZIP)
    if not by_name:
        _unclaimed_groups(index, tree, model)
    _read_iterations(h5, model)
    model.metadata["slot_shapes"] = stored_slot_shapes(index)


def _numbers_duplicates(version: str | None) -> bool:
    """tf.keras 2.12 and 2.13's saving_lib numbered a layer's second entry in
    _layer_checkpoint_dependencies; 2.14 skips entries already saved
    (keras/src/saving/saving_lib.py, _save_container_state)."""
    return major_minor(version) in ((2, 12), (2, 13))


def _holds_tensors(index: H5Index, path: str, depth: int = 0) -> bool:
    """Whether the group at ``path`` holds a tensor at any depth: a layer
    whose ``weights`` tf.keras found non-empty."""
    if depth > 16:
        return False
    return any(kind == DATASET or (kind == GROUP and _holds_tensors(index, f"{path}/{name}", depth + 1))
               for name, kind in index.children(path))


def _thaw(model: Model, tree: ModelConfig) -> None:
    """What the writing release does with the file when it loads it."""
    for note in (thaw_for_writer(tree, model.framework_version), writer_load_note(tree, model.framework_version)):
        if note:
            model.notes.append(note)


def _buffered(handle):
    """h5py reads HDF5 metadata through the file object, a seek and a few
    hundred bytes at a time: 1,910 reads for ResNet50. A C buffer in front of
    the window serves neighbouring ones without calling back into Python
    (362 reads; the read ~5% faster, paired over 12 runs)."""
    if isinstance(handle, FileWindow):
        return io.BufferedReader(handle, buffer_size=METADATA_BUFFER)
    return handle


def _direct_reads(h5, handle):
    """Let tensor_stats read contiguous datasets straight from the archive
    when the member is stored (a window onto it), not deflated."""
    if isinstance(handle, FileWindow):
        return raw_image(h5, *handle.raw_range())
    return contextlib.nullcontext()


def _build_without_weights(model: Model, tree: ModelConfig, config: Any, names: set[str]) -> None:
    """No ``model.weights.h5``: the layers as the config builds them. Keras
    loads sharded (``model.weights.json``) or ``.npz`` weights, which reglint
    does not read; an archive with no weights at all it refuses."""
    count = build_from_config(model, tree, config)
    other = sorted(n for n in names if n.endswith((".weights.json", ".npz")) or (".weights" in n and n != WEIGHTS_H5))
    if other:
        model.notes.append(f"weights stored as {other[0]} (sharded or .npz), which reglint does not read: "
                           "parameters counted from the config, no saved-weight statistics")
        return
    no_weights_problem(model, count, f"the archive holds no {WEIGHTS_H5}")


def _unclaimed_groups(index: H5Index, tree: ModelConfig, model: Model) -> None:
    """Tensors under ``layers/`` that no layer of the config owns: Keras 3
    loads the file and ignores them, so a warning, not an error."""
    if any(not node.weights_path for node in tree.leaves):
        return  # a subclassed model saved whole: its own tensors are everything under the root
    leaves = {node.weights_path.strip("/") for node in tree.leaves}
    containers = {node.weights_path.strip("/") for node in tree.containers}
    stack = ["layers"] + [f"{c}/layers" for c in containers]
    seen: set[str] = set()
    while stack:
        path = stack.pop()
        if path in seen or index.kind(path) != GROUP:
            continue
        seen.add(path)
        for name, kind in index.children(path):
            child = f"{path}/{name}"
            if kind != GROUP or child in leaves or child in containers:
                continue
            tensors, elements = _datasets_under(index, child)
            if tensors:
                model.problems.append(extra_layer_problem(child, tensors, elements, KERAS_ZIP, blocks=False))


def _datasets_under(index: H5Index, path: str, depth: int = 0) -> tuple[int, int]:
    if depth > 16:
        return 0, 0
    tensors = elements = 0
    for name, kind in index.children(path):
        if kind == DATASET:
            shape = index.tensor(f"{path}/{name}").shape or ()
            tensors += 1
            elements += int(math.prod(shape))
        elif kind == GROUP:
            more = _datasets_under(index, f"{path}/{name}", depth + 1)
            tensors, elements = tensors + more[0], elements + more[1]
    return tensors, elements


def _tensors_for(index: H5Index, node: LayerNode) -> list[FoundTensor]:
    """Every tensor stored under the layer's save path, in Keras' walk order:
    the layer's own ``vars`` first, then its sub-objects by attribute name
    (private names last)."""
    found: list[FoundTensor] = []
    if not node.weights_path:
        # A bare layer (or a subclassed model) saved as the model: its own
        # variables sit at the root, beside the optimizer's.
        _collect(index, "", node, [], found, depth=0, skip=("optimizer", "metrics", "compile_metrics"))
        return found
    if index.kind(node.weights_path) == GROUP:
        _collect(index, node.weights_path.strip("/"), node, [], found, depth=0)
    return found


def _collect(index: H5Index, path: str, node: LayerNode, attrs: list[str], found: list[FoundTensor],
             depth: int, skip: tuple[str, ...] = ()) -> None:
    if depth > 16:
        return
    children = dict(index.children(path))
    if children.get("vars") == GROUP:
        vars_path = f"{path}/vars" if path else "vars"
        owner_class, owner_cfg, prefix = owner_for_attr_path(node.class_name, node.config, attrs)
        names = [name for name, kind in index.children(vars_path) if kind == DATASET]
        names.sort(key=lambda name: int(name) if name.isdigit() else 1 << 30)
        for name in names:
            ds = index.tensor(f"{vars_path}/{name}")
            found.append(FoundTensor(dataset=ds, location=ds.name, owner_class=owner_class,
                                     owner_config=owner_cfg, prefix=prefix, group="/".join(attrs)))
    for name in sorted(children, key=lambda n: f"~{n}" if n.startswith("_") else n):
        if name == "vars" or name in skip or name.startswith("seed_generator") or children[name] != GROUP:
            continue
        _collect(index, f"{path}/{name}" if path else name, node, [*attrs, name], found, depth + 1)


def _read_iterations(h5, model: Model) -> None:
    """The optimizer's step count (its variable 0). Under a mixed-precision
    policy Keras wraps the optimizer in a LossScaleOptimizer whose own
    counter stays 0 while the inner optimizer's counts the steps: the larger
    of the two."""
    counts = []
    for where in ("optimizer/vars", "optimizer/inner_optimizer/vars"):
        group = h5_get(h5, where)
        ds = h5_get(group, "0") if group is not None else None
        try:
            if ds is not None and ds.shape == ():
                counts.append(int(ds[()]))
        except Exception:
            pass
    if counts:
        model.metadata["optimizer_iterations"] = max(counts)


def _open_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo):
    """A seekable handle on a member: a window onto the archive for stored
    members (no copy), else zipfile's own (decompressing) handle."""
    if info.compress_type == zipfile.ZIP_STORED and isinstance(archive.filename, str):
        with open(archive.filename, "rb") as raw:
            raw.seek(info.header_offset)
            header = raw.read(30)
        if len(header) == 30 and header[:4] == b"PK\x03\x04":
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            start = info.header_offset + 30 + name_len + extra_len
            return FileWindow(archive.filename, start, info.file_size)
    return archive.open(info)
