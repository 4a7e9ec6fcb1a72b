"""The few tables of TensorFlow Lite's schema (``tensorflow/compiler/mlir/
lite/schema/schema.fbs``, file identifier ``TFL3``) the reader needs, read
with the ``flatbuffers`` runtime's ``Table`` and every position checked.

Generated accessors (flatc's, or the ``tflite`` package's) trust the
buffer: a garbage offset raises from ``struct`` or reads another field's
bytes, and a vector length of 2^31 is iterated as asked. Here each table's
position, each vector's extent and each string's length is checked against
the flatbuffer's size before anything is read, the counts of subgraphs,
tensors, operators and buffers are capped, and what the reader needs is
copied into plain dataclasses once. Field slots are schema.fbs's field
order (``Model.buffers`` is field 4, ``Buffer.offset`` 1 ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from flatbuffers import number_types as N
from flatbuffers.table import Table

from reglint.errors import ModelReadError, UnsafeInputError

IDENTIFIER = b"TFL3"
FLATBUFFER_LIMIT = 2 << 30  # 32-bit offsets: a flatbuffer is under 2 GiB; larger weights sit after it
MAX_SUBGRAPHS = 10_000
MAX_TENSORS = 2_000_000  # in all subgraphs together
MAX_OPERATORS = 2_000_000
MAX_BUFFERS = 2_000_000
MAX_OPCODES = 10_000
MAX_RANK = 16
MAX_IO = 10_000  # inputs or outputs of one operator (a fused LSTM has 24, a bidirectional one 48)
MAX_NAME = 4096  # bytes of a tensor name kept
# Operator inputs and outputs of the whole file, counted with repeats: a
# converter writes each index once (4 bytes), so a file of n bytes holds
# fewer than n / 4; shared vectors cannot multiply the work past this.
IO_SLACK = 100_000

# TensorType -> (name, numpy storage type or None).
TENSOR_TYPES: dict[int, tuple[str, type | None]] = {
    0: ("float32", np.float32), 1: ("float16", np.float16), 2: ("int32", np.int32), 3: ("uint8", np.uint8),
    4: ("int64", np.int64), 5: ("string", None), 6: ("bool", np.bool_), 7: ("int16", np.int16),
    8: ("complex64", None), 9: ("int8", np.int8), 10: ("float64", np.float64), 11: ("complex128", None),
    12: ("uint64", np.uint64), 13: ("resource", None), 14: ("variant", None), 15: ("uint32", np.uint32),
    16: ("uint16", np.uint16), 17: ("int4", None), 18: ("bfloat16", np.uint16)}
FLOAT_TYPES = {0, 1, 10, 18}
INT4 = 17


@dataclass
class Quantization:
    scale: np.ndarray  # float32, one per tensor or per channel
    zero_point: np.ndarray  # int64
    axis: int


@dataclass
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    type: int
    buffer: int
    quant: Quantization | None = None
    is_variable: bool = False
    sparse: bool = False

    @property
    def type_name(self) -> str:
        return TENSOR_TYPES.get(self.type, (f"type {self.type}",))[0]

    @property
    def size(self) -> int:
        return math.prod(self.shape) if self.shape else 1


@dataclass
class OperatorInfo:
    index: int
    opcode: int  # the builtin code; CUSTOM (32) for custom ops
    custom: str
    inputs: list[int]
    outputs: list[int]
    depth_multiplier: int = 0  # DepthwiseConv2DOptions' (0: none recorded)


@dataclass
class SubgraphInfo:
    index: int
    name: str
    tensors: list[TensorInfo] = field(default_factory=list)
    operators: list[OperatorInfo] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)


@dataclass
class BufferRef:
    """Where a buffer's bytes are in the file (``size`` 0: no data)."""

    start: int
    size: int
    external: bool = False  # after the flatbuffer, at Buffer.offset/size


@dataclass
class TfliteFile:
    version: int
    description: str
    subgraphs: list[SubgraphInfo]
    buffers: list[BufferRef]
    metadata: dict[str, int] = field(default_factory=dict)  # name -> buffer index
    external_buffers: int = 0  # buffers stored after the flatbuffer (offset/size: models over 2 GiB)


class _Reader:
    """Bounds-checked reads of the flatbuffer part of the file."""

    def __init__(self, buf, size: int, file_size: int):
        self.buf, self.size, self.file_size = buf, size, file_size
        self.tensors = self.operators = 0
        self.io_budget = file_size // 4 + IO_SLACK
        self.seen: set[int] = set()  # positions of tensor and operator tables read
        self.high = 0  # the end of the furthest flatbuffer extent read

    def table(self, pos: int) -> Table:
        if not 0 <= pos <= self.size - 4:
            raise ModelReadError(f"table at byte {pos} is outside the flatbuffer: truncated or corrupt")
        tab = Table(self.buf, pos)
        vtable = pos - tab.Get(N.SOffsetTFlags, pos)
        if not 0 <= vtable <= self.size - 4:
            raise ModelReadError(f"table at byte {pos} has its vtable outside the flatbuffer: truncated or corrupt")
        vsize, tsize = tab.Get(N.VOffsetTFlags, vtable), tab.Get(N.VOffsetTFlags, vtable + 2)
        if vsize < 4 or vsize % 2 or vtable + vsize > self.size or pos + tsize > self.size:
            raise ModelReadError(f"table at byte {pos} has a malformed vtable")
        self.high = max(self.high, pos + tsize, vtable + vsize)
        return tab

    def field(self, tab: Table, slot: int, width: int) -> int | None:
        """Absolute position of a scalar or offset field, or None when absent."""
        off = tab.Offset(4 + 2 * slot)
        if not off:
            return None
        pos = tab.Pos + off
        if pos + width > self.size:
            raise ModelReadError("a field runs past the end of the flatbuffer: truncated or corrupt")
        return pos

    def scalar(self, tab: Table, slot: int, flags, default):
        pos = self.field(tab, slot, flags.bytewidth)
        return default if pos is None else tab.Get(flags, pos)

    def ref(self, tab: Table, slot: int) -> int | None:
        pos = self.field(tab, slot, 4)
        return None if pos is None else pos + tab.Get(N.UOffsetTFlags, pos)

    def vector(self, tab: Table, slot: int, itemsize: int, limit: int, what: str) -> tuple[int, int]:
        """(start, count) of a vector field; its length checked against the
        bytes left in the flatbuffer and ``limit`` before anything reads it."""
        pos = self.ref(tab, slot)
        if pos is None:
            return 0, 0
        if pos + 4 > self.size:
            raise ModelReadError(f"{what} lies outside the flatbuffer: truncated or corrupt")
        count = tab.Get(N.UOffsetTFlags, pos)
        if pos + 4 + count * itemsize > self.size:
            raise ModelReadError(f"{what} claims {count} entries, more than the file holds: truncated or corrupt")
        if count > limit:
            raise UnsafeInputError(f"{what} has {count} entries, over the limit of {limit}")
        self.high = max(self.high, pos + 4 + count * itemsize)
        return pos + 4, count

    def array(self, tab: Table, slot: int, dtype: str, limit: int, what: str) -> np.ndarray:
        item = np.dtype(dtype)
        start, count = self.vector(tab, slot, item.itemsize, limit, what)
        if not count:
            return np.zeros(0, dtype=item)
        return np.frombuffer(self.buf, dtype=item, count=count, offset=start)

    def string(self, tab: Table, slot: int, what: str) -> str:
        start, count = self.vector(tab, slot, 1, self.size, what)
        return bytes(self.buf[start:start + min(count, MAX_NAME)]).decode("utf-8", "replace")

    def tables(self, tab: Table, slot: int, limit: int, what: str, unique: bool = False) -> list[Table]:
        """The tables of a vector; ``unique``: each table once in the file
        (a converter writes every tensor and operator table once; a file
        naming one table a million times would cost a million parses)."""
        start, count = self.vector(tab, slot, 4, limit, what)
        if not count:
            return []
        offsets = np.frombuffer(self.buf, dtype="<u4", count=count, offset=start)
        positions = (start + 4 * np.arange(count, dtype=np.int64) + offsets.astype(np.int64)).tolist()
        if unique:
            before = len(self.seen)
            self.seen.update(positions)
            if len(self.seen) - before != count:
                raise UnsafeInputError(f"{what} names one table several times (a converter writes each once): "
                                       "crafted or corrupt")
        return [self.table(pos) for pos in positions]

    def charge_io(self, count: int) -> None:
        self.io_budget -= count
        if self.io_budget < 0:
            raise UnsafeInputError(f"operator inputs and outputs total more than the file's size allows "
                                   f"({self.file_size // 4 + IO_SLACK}): crafted or corrupt")


def parse(buf, file_size: int) -> TfliteFile:
    """The model's subgraphs, tensors, operators and buffer extents."""
    if file_size < 8 or bytes(buf[4:8]) != IDENTIFIER:
        raise ModelReadError("not a TensorFlow Lite flatbuffer (no TFL3 identifier): truncated or mislabelled")
    reader = _Reader(buf, min(file_size, FLATBUFFER_LIMIT), file_size)
    root = reader.table(int(np.frombuffer(buf, dtype="<u4", count=1)[0]))
    version = int(reader.scalar(root, 0, N.Uint32Flags, 0))
    opcodes = [_opcode(reader, t) for t in reader.tables(root, 1, MAX_OPCODES, "the operator code list")]
    subgraphs = [_subgraph(reader, i, t, opcodes)
                 for i, t in enumerate(reader.tables(root, 2, MAX_SUBGRAPHS, "the subgraph list"))]
    description = reader.string(root, 3, "the description")
    buffers = [_buffer(reader, t, i) for i, t in enumerate(reader.tables(root, 4, MAX_BUFFERS, "the buffer list"))]
    metadata = {}
    for meta in reader.tables(root, 6, MAX_OPCODES, "the metadata list"):
        metadata[reader.string(meta, 0, "a metadata name")] = int(reader.scalar(meta, 1, N.Uint32Flags, 0))
    external = sum(1 for b in buffers if b.external)
    for i, b in enumerate(buffers):
        if b.external and b.size and b.start < reader.high:
            raise ModelReadError(f"buffer {i} at byte {b.start} lies inside the flatbuffer (which reaches byte "
                                 f"{reader.high}): corrupt")
    model = TfliteFile(version, description, subgraphs, buffers, metadata, external)
    for sub in subgraphs:
        for tensor in sub.tensors:
            if not 0 <= tensor.buffer < max(1, len(buffers)):
                raise ModelReadError(f"tensor {tensor.name!r} names buffer {tensor.buffer}; the file has "
                                     f"{len(buffers)}")
    return model


def _opcode(reader: _Reader, tab: Table) -> tuple[int, str]:
    deprecated = int(reader.scalar(tab, 0, N.Int8Flags, 0))
    builtin = int(reader.scalar(tab, 3, N.Int32Flags, 0))
    return max(deprecated, builtin), reader.string(tab, 1, "a custom op's name")


def _subgraph(reader: _Reader, index: int, tab: Table, opcodes: list[tuple[int, str]]) -> SubgraphInfo:
    sub = SubgraphInfo(index, reader.string(tab, 4, "a subgraph name"))
    tensors = reader.tables(tab, 0, MAX_TENSORS - reader.tensors, "a subgraph's tensor list", unique=True)
    reader.tensors += len(tensors)
    sub.tensors = [_tensor(reader, i, t) for i, t in enumerate(tensors)]
    count = len(sub.tensors)
    sub.inputs = _indices(reader.array(tab, 1, "<i4", MAX_IO, "a subgraph's inputs"), count, "subgraph input")
    sub.outputs = _indices(reader.array(tab, 2, "<i4", MAX_IO, "a subgraph's outputs"), count, "subgraph output")
    operators = reader.tables(tab, 3, MAX_OPERATORS - reader.operators, "a subgraph's operator list", unique=True)
    reader.operators += len(operators)
    for i, op in enumerate(operators):
        code = int(reader.scalar(op, 0, N.Uint32Flags, 0))
        if code >= len(opcodes):
            raise ModelReadError(f"operator {i} names operator code {code}; the file has {len(opcodes)}")
        builtin, custom = opcodes[code]
        raw_in = reader.array(op, 1, "<i4", MAX_IO, "an operator's inputs")
        raw_out = reader.array(op, 2, "<i4", MAX_IO, "an operator's outputs")
        reader.charge_io(raw_in.size + raw_out.size)
        inputs = _indices(raw_in, count, "operator input")
        outputs = _indices(raw_out, count, "operator output")
        sub.operators.append(OperatorInfo(i, builtin, custom, inputs, outputs, _depth_multiplier(reader, op)))
    return sub


DEPTHWISE_OPTIONS = 2  # BuiltinOptions.DepthwiseConv2DOptions


def _depth_multiplier(reader: _Reader, op: Table) -> int:
    """DepthwiseConv2DOptions.depth_multiplier (field 3) of an operator whose
    builtin_options (field 4) are those (builtin_options_type, field 3)."""
    if int(reader.scalar(op, 3, N.Uint8Flags, 0)) != DEPTHWISE_OPTIONS:
        return 0
    pos = reader.ref(op, 4)
    return 0 if pos is None else int(reader.scalar(reader.table(pos), 3, N.Int32Flags, 0))


def _indices(values: np.ndarray, count: int, what: str) -> list[int]:
    """Tensor indices; -1 marks an omitted optional input."""
    if values.size and (int(values.min()) < -1 or int(values.max()) >= count):
        bad = int(values.min()) if int(values.min()) < -1 else int(values.max())
        raise ModelReadError(f"{what} names tensor {bad}; the subgraph has {count}")
    return values.tolist()


def _tensor(reader: _Reader, index: int, tab: Table) -> TensorInfo:
    name = reader.string(tab, 3, "a tensor name")
    dims = reader.array(tab, 0, "<i4", MAX_RANK, f"tensor {name!r}'s shape")
    if (dims < 0).any():
        raise ModelReadError(f"tensor {name!r} has a negative dimension {dims.tolist()}")
    shape = tuple(int(d) for d in dims)
    tensor = TensorInfo(index, name, shape, int(reader.scalar(tab, 1, N.Int8Flags, 0)),
                        int(reader.scalar(tab, 2, N.Uint32Flags, 0)),
                        is_variable=bool(reader.scalar(tab, 5, N.BoolFlags, False)),
                        sparse=reader.ref(tab, 6) is not None)
    quant = reader.ref(tab, 4)
    if quant is not None:
        tensor.quant = _quantization(reader, reader.table(quant), name, shape)
    return tensor


def _quantization(reader: _Reader, tab: Table, name: str, shape: tuple[int, ...]) -> Quantization | None:
    limit = max((1, *shape))
    scale = reader.array(tab, 2, "<f4", limit, f"tensor {name!r}'s scales")
    zero = reader.array(tab, 3, "<i8", limit, f"tensor {name!r}'s zero points")
    if not scale.size:
        return None  # min/max only (calibration), or a custom scheme: not a dequantization
    axis = int(reader.scalar(tab, 6, N.Int32Flags, 0))
    return Quantization(scale.astype(np.float64), zero.astype(np.int64) if zero.size else np.zeros(1, np.int64),
                        axis)


def _buffer(reader: _Reader, tab: Table, index: int) -> BufferRef:
    start, count = reader.vector(tab, 0, 1, reader.size, f"buffer {index}")
    offset = int(reader.scalar(tab, 1, N.Uint64Flags, 0))
    size = int(reader.scalar(tab, 2, N.Uint64Flags, 0))
    if count:
        return BufferRef(start, count)
    if offset > 1 or size:
        # Models over 2 GiB: the bytes lie after the flatbuffer, at an offset
        # from the start of the file (offset 1 with size 0 marks "none").
        if offset + size > reader.file_size:
            raise ModelReadError(f"buffer {index} runs past the end of the file ({offset} + {size} bytes of "
                                 f"{reader.file_size}): truncated")
        return BufferRef(offset, size, external=True)
    return BufferRef(0, 0)
