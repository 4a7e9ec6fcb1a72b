"""onnxruntime-training checkpoints (FlatBuffers, file identifier "ODTC")."""

from __future__ import annotations

import math
import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reglint.readers.onnx.load import safe_location
from reglint.readers.onnx.tensors import FLOAT_TYPES, FileRange


class CheckpointError(Exception):
    """Not a checkpoint, or one that breaks its own bounds: noted, not fatal."""


class _FlatBuffer:
    """Bounds-checked reads of a FlatBuffers buffer: a hostile offset raises
    instead of reading outside the file."""

    def __init__(self, buf, size: int, limit: int):
        self.buf, self.size, self.limit = buf, size, limit

    def read(self, fmt: str, pos: int):
        if pos < 0 or pos + struct.calcsize(fmt) > self.size:
            raise CheckpointError("offset out of range")
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def field(self, table: int, slot: int) -> int | None:
        vtable = table - self.read("<i", table)
        at = 4 + 2 * slot
        if at + 2 > self.read("<H", vtable):
            return None
        offset = self.read("<H", vtable + at)
        return table + offset if offset else None

    def scalar(self, table: int, slot: int, fmt: str, default):
        pos = self.field(table, slot)
        return default if pos is None else self.read(fmt, pos)

    def ref(self, table: int, slot: int) -> int | None:
        pos = self.field(table, slot)
        return None if pos is None else pos + self.read("<I", pos)

    def vector(self, table: int, slot: int, item: int) -> tuple[int, int]:
        pos = self.ref(table, slot)
        if pos is None:
            return 0, 0
        count = self.read("<I", pos)
        if pos + 4 + count * item > self.size:
            raise CheckpointError("vector runs past the end")
        return pos + 4, count

    def string(self, table: int, slot: int) -> str:
        start, count = self.vector(table, slot, 1)
        return bytes(self.buf[start:start + count]).decode("utf-8", "replace")

    def tables(self, table: int, slot: int) -> list[int]:
        start, count = self.vector(table, slot, 4)
        if count > self.limit:
            raise CheckpointError(f"{count} entries, over the limit")
        return [start + 4 * i + self.read("<I", start + 4 * i) for i in range(count)]


@dataclass
class CkptTensor:
    name: str
    shape: tuple[int, ...]
    dtype: int
    where: FileRange | None  # None: nominal checkpoint (no values)


@dataclass
class Checkpoint:
    path: Path
    trainable: dict[str, CkptTensor] = field(default_factory=dict)
    frozen: dict[str, CkptTensor] = field(default_factory=dict)
    groups: list[tuple[str, int, float]] = field(default_factory=list)  # name, step, initial lr

    def get(self, name: str) -> CkptTensor | None:
        return self.trainable.get(name) or self.frozen.get(name)


def read_checkpoint(path: Path, folder: Path, limit: int) -> Checkpoint:
    """The checkpoint at ``path``: its parameters and optimizer groups;
    CheckpointError when it is not one or breaks its own bounds."""
    size = path.stat().st_size
    if size < 12:
        raise CheckpointError("file too short")
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[4:8] != b"ODTC":
            raise CheckpointError("no ODTC identifier: not an onnxruntime-training checkpoint")
        fb = _FlatBuffer(buf, size, limit)
        root = fb.read("<I", 0)
        ckpt = Checkpoint(path)
        module = fb.ref(root, 1)
        if module is not None:
            external = bool(fb.scalar(module, 3, "<B", 0))
            data_file = safe_location(path.name + ".data", folder, "checkpoint") if external else None
            for slot, target in ((0, ckpt.trainable), (1, ckpt.frozen)):
                for table in fb.tables(module, slot):
                    tensor = _ckpt_tensor(fb, table, path, data_file)
                    target[tensor.name] = tensor
        for table in fb.tables(root, 2):
            ckpt.groups.append((fb.string(table, 0), fb.scalar(table, 1, "<q", 0),
                                fb.scalar(table, 2, "<f", 0.0)))
        return ckpt


def _ckpt_tensor(fb: _FlatBuffer, table: int, path: Path, data_file: Path | None) -> CkptTensor:
    """One tensor entry; its values lie in the checkpoint itself (``path``)
    or in the ``.data`` file beside it."""
    name = fb.string(table, 0)
    start, rank = fb.vector(table, 2, 8)
    if rank > 32:
        raise CheckpointError(f"tensor {name!r} has rank {rank}")
    shape = tuple(fb.read("<q", start + 8 * i) for i in range(rank))
    if any(d < 0 for d in shape):
        raise CheckpointError(f"tensor {name!r} has a negative dimension")
    dtype = fb.scalar(table, 3, "<i", 0)
    raw_start, raw_len = fb.vector(table, 4, 1)
    external_offset = fb.scalar(table, 6, "<q", -1)
    where = None
    if dtype in FLOAT_TYPES:
        nbytes = math.prod(shape) * np.dtype(FLOAT_TYPES[dtype][1]).itemsize
        if raw_len:
            if raw_len != nbytes:
                raise CheckpointError(f"tensor {name!r} holds {raw_len} bytes, its shape needs {nbytes}")
            where = FileRange(path, raw_start, nbytes)
        elif data_file is not None and external_offset >= 0:
            if external_offset + nbytes > data_file.stat().st_size:
                raise CheckpointError(f"tensor {name!r} runs past the end of {data_file.name!r}")
            where = FileRange(data_file, external_offset, nbytes)
    return CkptTensor(name, shape, dtype, where)
