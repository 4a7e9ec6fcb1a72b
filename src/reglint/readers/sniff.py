"""Tell a file's format from its first bytes."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

from reglint.errors import ModelReadError, UnsafeInputError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
LFS_POINTER = b"version https://git-lfs.github.com/spec/"

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".onnx")
# A .json file is a model only when its content says so (``looks_like_keras_json``).
JSON_SUFFIX = ".json"
JSON_PROBE_BYTES = 64 << 10
_UTF8_BOM = b"\xef\xbb\xbf"
_MODEL_CLASS = re.compile(rb'"class_name"\s*:\s*"(Sequential|Functional|Model)"')


class Format(str, Enum):
    KERAS_ZIP = "keras zip"
    HDF5 = "HDF5"
    SAVEDMODEL = "SavedModel folder"
    ONNX = "ONNX"
    KERAS_JSON = "Keras JSON architecture"
    UNKNOWN = "unknown format"


def sniff(path: Path) -> Format:
    """The format of ``path``; raises ModelReadError for what no reader takes."""
    if path.is_symlink():
        if not path.exists():
            raise ModelReadError("broken symbolic link")
        check_link_stays_inside(path)
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return Format.SAVEDMODEL
        raise ModelReadError("a folder without saved_model.pb is not a model")
    if not path.exists():
        raise ModelReadError("no such file")
    if not path.is_file():
        raise ModelReadError("not a regular file")
    try:
        with path.open("rb") as handle:
            head = handle.read(512)
    except OSError as exc:
        raise ModelReadError(f"cannot open: {exc.strerror or exc}") from None
    if not head:
        raise ModelReadError("empty file")
    if head.startswith(LFS_POINTER):
        raise ModelReadError(
            "Git LFS pointer, not the model: fetch it with `git lfs pull` "
            "(in GitHub Actions, actions/checkout with `lfs: true`)"
        )
    if head.startswith(HDF5_MAGIC):
        return Format.HDF5
    if head.startswith(ZIP_MAGIC):
        return Format.KERAS_ZIP
    if path.name == "saved_model.pb" or path.name == "keras_metadata.pb":
        return Format.SAVEDMODEL
    suffix = path.suffix.lower()
    leading_brace = head.lstrip(_UTF8_BOM + b" \t\r\n").startswith(b"{")
    if suffix == JSON_SUFFIX or (suffix not in (*MODEL_SUFFIXES, ".ort") and leading_brace):
        return Format.KERAS_JSON  # the reader refuses JSON that is not a Keras model
    if path.suffix.lower() in (".onnx", ".ort") or _looks_like_onnx(head):
        return Format.ONNX
    if path.suffix.lower() in (".h5", ".hdf5"):
        raise ModelReadError("not an HDF5 file (bad signature): truncated or mislabelled")
    if path.suffix.lower() == ".keras":
        raise ModelReadError("not a zip archive: truncated or mislabelled .keras file")
    raise ModelReadError("unrecognised file format")


def _looks_like_onnx(head: bytes) -> bool:
    # A serialized ModelProto starts with field 1 (ir_version, varint: 0x08)
    # and usually field 2/3 strings; a weak hint used only without a suffix.
    return len(head) > 2 and head[0] == 0x08 and head[1] < 0x20


def looks_like_keras_json(path: Path) -> bool:
    """Whether a JSON file is a Keras model architecture, from its first
    64 KiB (discovery asks this of every ``.json`` file in a tree, so it
    must be cheap): a JSON object naming a model class, or one with Keras'
    ``class_name``, ``config`` and ``keras_version``/``layers`` keys. Keras
    writes ``class_name`` first (Keras 3 after ``module``)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(JSON_PROBE_BYTES)
    except OSError:
        return False
    head = head.lstrip(_UTF8_BOM + b" \t\r\n")
    if not head.startswith(b"{"):
        return False
    if _MODEL_CLASS.search(head):
        return True
    return b'"class_name"' in head and b'"config"' in head and (
        b'"keras_version"' in head or (b'"layers"' in head and b'"inbound_nodes"' in head))


def check_link_stays_inside(path: Path) -> None:
    """A symbolic link is followed only to a target inside the folder that
    holds it: a model file in a pull request must not make the linter read
    ``/etc/shadow`` or a file elsewhere on the CI machine."""
    folder = path.absolute().parent.resolve()
    target = path.resolve()
    if folder != target.parent and folder not in target.parents:
        raise UnsafeInputError("symbolic link pointing outside the model's folder: refused")
