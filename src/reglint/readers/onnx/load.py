"""Loading a ModelProto (never its external data), the onnx.checker
stand-in, and external data confined to the model's folder."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from reglint.errors import ModelReadError, UnsafeInputError, one_line
from reglint.readers.onnx.tensors import EXTERNAL, FileRange

GIB = 1024 ** 3
PROTOBUF_LIMIT = 2 * GIB  # protobuf cannot hold more; larger files are not ModelProtos
CHECKER_LIMIT = 512 * 1024 * 1024  # onnx.checker copies the model: skip it above this


def load_proto(path: Path):
    import onnx

    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise ModelReadError(f"cannot open: {exc.strerror or exc}") from None
    if size > PROTOBUF_LIMIT:
        raise ModelReadError("not a valid ONNX protobuf: larger than protobuf's 2 GiB limit")
    if head[4:8] == b"ORTM":
        raise ModelReadError("ORT-format (FlatBuffers) model: lint the .onnx file it was converted from")
    if head[4:8] == b"ODTC":
        raise ModelReadError("onnxruntime-training checkpoint, not a model: lint training_model.onnx beside it")
    try:
        # format="protobuf": never let the file name pick a text or JSON parser.
        proto = onnx.load(str(path), format="protobuf", load_external_data=False)
    except Exception as exc:  # DecodeError, RuntimeWarning, RecursionError ...
        raise ModelReadError(one_line(f"not a valid ONNX protobuf: {exc or type(exc).__name__}")) from None
    if not proto.HasField("graph"):
        raise ModelReadError("not a valid ONNX protobuf: it holds no graph")
    return proto


def inside_folder(path: Path, folder: Path) -> bool:
    try:
        return path.resolve(strict=False).is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # symlink loops
        return False


def safe_location(location: str, folder: Path, what: str) -> Path:
    """The file a relative ``location`` names inside ``folder``; refuses
    absolute paths, drive letters, ``..`` and links that leave the folder."""
    posix = PurePosixPath(location.replace("\\", "/"))
    if (not location or "\x00" in location or posix.is_absolute() or PureWindowsPath(location).drive
            or ".." in posix.parts):
        raise UnsafeInputError(f"{what}: location {location!r} is outside the model's folder: refused")
    candidate = folder / posix
    if not inside_folder(candidate, folder):
        raise UnsafeInputError(f"{what}: location {location!r} resolves outside the model's folder: refused")
    try:
        exists, regular = candidate.exists(), candidate.is_file()
    except OSError as exc:  # a name too long, a permission error
        raise ModelReadError(f"{what}: external data {location!r} cannot be opened ({exc.strerror})") from None
    if not exists:
        raise ModelReadError(f"{what}: external data file {location!r} is missing")
    if not regular:
        raise ModelReadError(f"{what}: external data {location!r} is not a regular file")
    return candidate


def external_range(tensor, folder: Path, nbytes: int | None) -> FileRange:
    """Where an external tensor's bytes are, checked against the file size."""
    what = f"tensor {tensor.name!r}"
    info = {entry.key: entry.value for entry in tensor.external_data}
    path = safe_location(info.get("location", ""), folder, what)
    try:
        offset = int(info.get("offset", "0") or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError:
        raise ModelReadError(f"{what}: external data offset/length are not integers") from None
    if offset < 0 or (length is not None and length < 0):
        raise ModelReadError(f"{what}: negative external data offset or length")
    needed = nbytes if nbytes is not None else (length or 0)
    if length is not None and nbytes is not None and length < nbytes:
        raise ModelReadError(f"{what}: external data holds {length} bytes, its shape needs {nbytes}")
    if offset + needed > path.stat().st_size:
        raise ModelReadError(f"{what}: external data runs past the end of {path.name!r}: truncated file")
    return FileRange(path, offset, needed)


def check_external_locations(tensors: Iterable[tuple[str, Any]], folder: Path) -> None:
    """Every external tensor, parameter or not, must stay in the folder."""
    for _, tensor in tensors:
        if tensor.data_location == EXTERNAL:
            info = {entry.key: entry.value for entry in tensor.external_data}
            safe_location(info.get("location", ""), folder, f"tensor {tensor.name!r}")


# onnxruntime's own ops that it registers in the default ONNX domain
# (onnxruntime/core/graph/contrib_ops/onnx_function_util / contrib_defs.cc:
# ``ONNX_CONTRIB_OPERATOR_SCHEMA`` with domain ""), which onnx.checker has no
# schema for.
ORT_OPS_IN_DEFAULT_DOMAIN = {"SimplifiedLayerNormalization"}
UNREGISTERED = re.compile(r"No Op registered for (?P<op>\w+) with domain_version")


def run_checker(path: Path, proto, tensors: Iterable[tuple[str, Any]]) -> str | None:
    """``onnx.checker``'s objection as a note, or None when it has none."""
    import onnx

    size = path.stat().st_size
    if size > CHECKER_LIMIT:
        return "onnx.checker skipped: the file is over 512 MiB"
    external = any(t.data_location == EXTERNAL for _, t in tensors)
    try:
        # With external data the checker needs the path to find the data
        # files (locations were checked before); otherwise the proto is enough.
        onnx.checker.check_model(str(path) if external else checker_stub(proto))
    except Exception as exc:
        first = one_line(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, 200)
        unknown = UNREGISTERED.search(first)
        if unknown and unknown["op"] in ORT_OPS_IN_DEFAULT_DOMAIN:
            return (f"onnx.checker does not know {unknown['op']}, an op onnxruntime registers in the default ONNX "
                    "domain (its transformer optimizer and onnxruntime-genai write it there); read anyway")
        return f"onnx.checker rejects the model ({first}); read anyway"
    return None


# Initializers above this many bytes reach onnx.checker as a one-element stand-in.
CHECKER_STUB_BYTES = 1024


def checker_stub(proto):
    """What ``onnx.checker`` needs of an embedded-weights model: everything
    but the bulk of large initializers, each cut to one zero of the same
    rank and type. ``check_model(proto)`` serialises the model and parses it
    again in C++: ~0.3 s and +100 MB for ResNet50, a third of the run, to
    re-read bytes the reader has already checked (``proto_array`` compares
    every initializer's bytes with its shape). Graph, node, opset and name
    errors are still the checker's to find."""
    import onnx

    element = [_one_element(init) for init in proto.graph.initializer]
    if not any(element):
        return proto
    stub = onnx.ModelProto()
    for field in proto.DESCRIPTOR.fields:
        if field.name != "graph":
            _copy_field(proto, stub, field)
    for field in proto.graph.DESCRIPTOR.fields:
        if field.name != "initializer":
            _copy_field(proto.graph, stub.graph, field)
    for init, one in zip(proto.graph.initializer, element, strict=True):
        if one is None:  # small, typed fields or odd: the checker sees it whole
            stub.graph.initializer.add().CopyFrom(init)
            continue
        small = stub.graph.initializer.add()
        for field in init.DESCRIPTOR.fields:
            if field.name not in ("dims", "raw_data"):
                _copy_field(init, small, field)
        small.dims.extend([1] * len(init.dims))
        small.raw_data = one
    return stub


def _one_element(init) -> bytes | None:
    """One zero element for a large ``raw_data`` initializer's stand-in, or
    None to pass it whole. Sizes come from the shape and type: reading
    ``raw_data`` would copy the bytes out of the protobuf."""
    import onnx

    if not init.HasField("raw_data") or init.data_location == EXTERNAL or any(d < 0 for d in init.dims):
        return None
    try:
        itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
    except Exception:
        return None  # strings, unknown types
    if itemsize == 0 or math.prod(init.dims) * itemsize <= CHECKER_STUB_BYTES:
        return None
    return bytes(itemsize)


def _copy_field(source, target, field) -> None:
    """One field of a protobuf message, copied only when set (proto2)."""
    repeated = getattr(field, "is_repeated", None)  # protobuf >= 6; ``label`` before
    if repeated if repeated is not None else field.label == field.LABEL_REPEATED:
        getattr(target, field.name).extend(getattr(source, field.name))
    elif not source.HasField(field.name):
        return
    elif field.message_type is not None:
        getattr(target, field.name).CopyFrom(getattr(source, field.name))
    else:
        setattr(target, field.name, getattr(source, field.name))
