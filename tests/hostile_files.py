"""Write one hostile model file per case: the inputs a linter meets in pull
requests. Each case starts, where it can, from a real file written by Keras
and changes one thing.

``write_hostile_files(folder)`` returns {file name: expected exit codes}.
Run as a script to write them to a folder for manual inspection:
``python tests/hostile_files.py /tmp/hostile``.
"""

from __future__ import annotations

import io
import os
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from helpers import KERAS_FIXTURES  # noqa: E402
from mutate import layer_configs, poison_first_kernel, rewrite_keras_zip, set_first_regularizer  # noqa: E402

BASE_KERAS = KERAS_FIXTURES / "scenario_healthy_sgd.keras"
BASE_H5 = KERAS_FIXTURES / "k3_legacy_mlp.h5"

ERROR = {2}  # unreadable: one-line error, exit 2
LINTED = {0, 1}  # read; findings or not


def write_hostile_files(folder: Path) -> dict[str, set[int]]:
    folder.mkdir(parents=True, exist_ok=True)
    cases: dict[str, set[int]] = {}

    def raw(name: str, data: bytes, expect: set[int]) -> None:
        (folder / name).write_bytes(data)
        cases[name] = expect

    keras_bytes = BASE_KERAS.read_bytes()
    h5_bytes = BASE_H5.read_bytes()
    # Empty, truncated, random, mislabelled.
    raw("empty.keras", b"", ERROR)
    raw("empty.h5", b"", ERROR)
    raw("empty.onnx", b"", ERROR)
    raw("truncated.keras", keras_bytes[: len(keras_bytes) // 2], ERROR)
    raw("truncated_tail.keras", keras_bytes[:-200], ERROR)
    raw("truncated.h5", h5_bytes[: len(h5_bytes) // 3], ERROR)
    raw("random.keras", os.urandom(4096), ERROR)
    raw("random.h5", os.urandom(4096), ERROR)
    raw("random.onnx", os.urandom(4096), ERROR)
    # GGUF (llama.cpp): the magic, then a header claiming what no file holds.
    raw("random.gguf", b"GGUF" + os.urandom(4092), ERROR)
    raw("gguf_string_2e60.gguf", b"GGUF" + (3).to_bytes(4, "little") + (0).to_bytes(8, "little")
        + (1).to_bytes(8, "little") + (1 << 60).to_bytes(8, "little") + b"general.name", ERROR)
    raw("text_named.h5", b"this is not a model\n" * 10, ERROR)
    raw("h5_named.keras", h5_bytes, LINTED)  # sniffed by content: it is a real HDF5 model
    raw("keras_named.h5", keras_bytes, LINTED)
    raw("lfs_pointer.keras", b"version https://git-lfs.github.com/spec/v1\noid sha256:"
        + b"0" * 64 + b"\nsize 123456\n", ERROR)
    # Zip archives that are not models, or try something.
    raw("zip_without_config.keras", _zip({"README.md": b"hello"}), ERROR)
    raw("config_not_json.keras", _zip({"config.json": b"{not json", "metadata.json": b"{}"}), ERROR)
    raw("config_not_utf8.keras", _zip({"config.json": b"\xff\xfe\x00{}"}), ERROR)
    raw("config_deep.keras", _zip({"config.json": b"[" * 100_000 + b"]" * 100_000}), ERROR)
    raw("config_is_list.keras", _zip({"config.json": b"[1, 2, 3]"}), ERROR)
    raw("zip_bomb.keras", _zip_bomb(), ERROR)
    raw("member_traversal.keras", _with_extra_member(keras_bytes, "../../../../tmp/reglint_pwned", b"x"), LINTED)
    # Code a loader would run: reglint must read these as data only.
    rewrite_keras_zip(BASE_KERAS, folder / "lambda_layer.keras", config=_add_lambda_layer)
    cases["lambda_layer.keras"] = LINTED
    rewrite_keras_zip(BASE_KERAS, folder / "module_import.keras", config=_import_os_module)
    cases["module_import.keras"] = LINTED
    # Values.
    for label, value in (("nan", float("nan")), ("negative", -1.0), ("string", "0.01"), ("null", None),
                         ("object", {"a": 1}), ("inf", float("inf")), ("bool", True)):
        name = f"lambda_{label}.keras"
        rewrite_keras_zip(BASE_KERAS, folder / name, config=lambda cfg, v=value: set_first_regularizer(cfg, v))
        cases[name] = {1}
    rewrite_keras_zip(BASE_KERAS, folder / "nan_weights.keras", weights=poison_first_kernel)
    cases["nan_weights.keras"] = {1}
    rewrite_keras_zip(BASE_KERAS, folder / "shape_mismatch.keras", weights=_extra_tensor)
    cases["shape_mismatch.keras"] = LINTED
    (folder / "weights_not_h5.keras").write_bytes(keras_bytes)
    _replace_member(folder / "weights_not_h5.keras", "model.weights.h5", b"garbage")
    cases["weights_not_h5.keras"] = ERROR
    # Names that try to drive the terminal or rich markup.
    rewrite_keras_zip(BASE_KERAS, folder / "escape_names.keras", config=_hostile_names)
    cases["escape_names.keras"] = LINTED
    # HDF5 that points outside itself.
    _h5_with(folder / "external_link.h5", h5_bytes, _add_external_link)
    cases["external_link.h5"] = ERROR
    _h5_with(folder / "virtual_dataset.h5", h5_bytes, _add_virtual_dataset)
    cases["virtual_dataset.h5"] = ERROR
    _h5_with(folder / "external_storage.h5", h5_bytes, _add_external_storage)
    cases["external_storage.h5"] = ERROR
    _h5_with(folder / "model_config_int.h5", h5_bytes, _set_attr("model_config", 42))
    cases["model_config_int.h5"] = ERROR
    _h5_with(folder / "model_config_garbage.h5", h5_bytes, _set_attr("model_config", "{oops"))
    cases["model_config_garbage.h5"] = ERROR
    # Folders and links.
    (folder / "folder.keras").mkdir(exist_ok=True)
    cases["folder.keras"] = {0}  # a folder holding no model: nothing to lint (a warning says so)
    outside = folder.parent / "outside_secret.h5"
    outside.write_bytes(h5_bytes)
    _symlink(outside, folder / "link_outside.h5")
    cases["link_outside.h5"] = ERROR
    _symlink(folder / "no_such_target.h5", folder / "broken_link.h5")
    cases["broken_link.h5"] = ERROR
    return cases


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _zip_bomb() -> bytes:
    """config.json deflating to 256 MiB of spaces: about 250 KiB on disk."""
    buffer = io.BytesIO()
    with (zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive,
          archive.open("config.json", "w", force_zip64=True) as member):
        chunk = b" " * (1 << 20)
        for _ in range(256):
            member.write(chunk)
    return buffer.getvalue()


def _with_extra_member(data: bytes, name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(buffer, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, zin.read(item.filename))
        info = zipfile.ZipInfo(name)
        zout.writestr(info, content)
    return buffer.getvalue()


def _replace_member(path: Path, name: str, content: bytes) -> None:
    with zipfile.ZipFile(path) as zin:
        members = {n: zin.read(n) for n in zin.namelist()}
    members[name] = content
    path.write_bytes(_zip(members))


def _add_lambda_layer(cfg: dict) -> None:
    """A Lambda layer whose function is marshalled bytecode that would run
    os.system if unmarshalled and called."""
    layers = cfg["config"]["layers"]
    layers.append({
        "module": "keras.layers", "class_name": "Lambda", "registered_name": None,
        "config": {"name": "evil_lambda", "trainable": True,
                   "function": {"class_name": "__lambda__", "config": {
                       "code": "4wEAAAAAAAAAAAAAAAEAAAADAAAAQwAAAHMMAAAAdABkAYMBUwApAk7aAmlkKQFaBnN5c3RlbakA",
                       "defaults": None, "closure": None}},
                   "output_shape": None, "arguments": {}}})


def _import_os_module(cfg: dict) -> None:
    layers = cfg["config"]["layers"]
    layers.append({"module": "os", "class_name": "system", "registered_name": "os>system",
                   "config": {"name": "touch /tmp/reglint_pwned"}})


def _hostile_names(cfg: dict) -> None:
    for layer in layer_configs(cfg):
        if layer.get("kernel_regularizer"):
            layer["name"] = "dense\x1b[31m[bold red]EVIL[/]\x1b]8;;http://x\x07\n\rline"
            layer["kernel_regularizer"]["config"]["l2"] = 50.0  # so a finding names it
            return


def _extra_tensor(h5: h5py.File) -> None:
    group = h5["layers/dense/vars"]
    group.create_dataset(str(len(group)), data=np.zeros((3,), dtype="float32"))


def _h5_with(path: Path, data: bytes, change) -> None:
    path.write_bytes(data)
    with h5py.File(path, "r+") as h5:
        change(h5)


def _set_attr(key, value):
    def change(h5: h5py.File) -> None:
        del h5.attrs[key]
        h5.attrs[key] = value

    return change


def _first_layer_group(h5: h5py.File) -> h5py.Group:
    weights = h5["model_weights"]
    for name in weights:
        group = weights[name]
        if isinstance(group, h5py.Group) and len(group.attrs.get("weight_names", [])):
            return group
    raise AssertionError("no weighted layer")


def _add_external_link(h5: h5py.File) -> None:
    group = _first_layer_group(h5)
    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
    del group[names[0]]
    group[names[0]] = h5py.ExternalLink("/etc/hostname", "/")


def _add_virtual_dataset(h5: h5py.File) -> None:
    group = _first_layer_group(h5)
    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
    shape = group[names[0]].shape
    layout = h5py.VirtualLayout(shape=shape, dtype="float32")
    layout[...] = h5py.VirtualSource("/etc/outside.h5", "data", shape=shape)
    del group[names[0]]
    group.create_virtual_dataset(names[0], layout, fillvalue=0)


def _add_external_storage(h5: h5py.File) -> None:
    group = _first_layer_group(h5)
    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
    shape = group[names[0]].shape
    del group[names[0]]
    group.create_dataset(names[0], shape=shape, dtype="float32",
                         external=[("/etc/hostname", 0, h5py.h5f.UNLIMITED)])


def _symlink(target: Path, link: Path) -> None:
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile")
    for name, expect in sorted(write_hostile_files(out).items()):
        print(f"{name}\t{sorted(expect)}")
