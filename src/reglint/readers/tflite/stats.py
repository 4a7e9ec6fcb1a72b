"""Weight statistics of TFLite buffers, a chunk at a time: float32,
float16, float64 and bfloat16 values as stored; integer values (int8,
uint8, int16, int32 biases, int4 packed two a byte) dequantized as
``(q - zero_point) * scale``, per tensor or per channel along
``quantized_dimension``."""

from __future__ import annotations

import math

import numpy as np

from reglint.errors import ModelReadError
from reglint.model import WeightStats
from reglint.readers.tensor_stats import StatsAccumulator, bfloat16_to_float32
from reglint.readers.tflite.schema import INT4, TENSOR_TYPES, BufferRef, TensorInfo

BFLOAT16 = 18
FLOATS = (0, 1, 10, BFLOAT16)  # float32, float16, float64, bfloat16


def stored_nbytes(tensor: TensorInfo) -> int | None:
    """Bytes the tensor's values take; None for types with no numpy storage."""
    if tensor.type == INT4:
        return (tensor.size + 1) // 2
    storage = TENSOR_TYPES.get(tensor.type, ("", None))[1]
    return None if storage is None else tensor.size * np.dtype(storage).itemsize


def check_extent(tensor: TensorInfo, ref: BufferRef) -> None:
    """A parameter's buffer holds exactly what its shape needs."""
    if tensor.sparse:
        return  # a sparse tensor's buffer holds its non-zero values only
    need = stored_nbytes(tensor)
    if need is not None and need != ref.size:
        raise ModelReadError(f"tensor {tensor.name!r} holds {ref.size} bytes, its shape {list(tensor.shape)} "
                             f"needs {need}: truncated or corrupt")


def tensor_stats(buf, ref: BufferRef, tensor: TensorInfo, chunk_bytes: int) -> WeightStats | None:
    if tensor.sparse or stored_nbytes(tensor) is None:
        return None
    if tensor.type in FLOATS:
        return _float_stats(buf, ref, tensor, chunk_bytes)
    if tensor.quant is None:
        return None  # an integer tensor without a scale: no float values to describe
    return _dequantized_stats(buf, ref, tensor, chunk_bytes)


def _float_stats(buf, ref: BufferRef, tensor: TensorInfo, chunk_bytes: int) -> WeightStats:
    dtype = np.dtype(TENSOR_TYPES[tensor.type][1]).newbyteorder("<")
    flat = np.frombuffer(buf, dtype=dtype, count=tensor.size, offset=ref.start)
    acc = StatsAccumulator()
    step = max(1, chunk_bytes // dtype.itemsize)
    for start in range(0, flat.size, step):
        block = flat[start:start + step]
        with np.errstate(over="ignore", invalid="ignore"):
            acc.add(bfloat16_to_float32(block) if tensor.type == BFLOAT16 else block)
    return acc.result()


def _dequantized_stats(buf, ref: BufferRef, tensor: TensorInfo, chunk_bytes: int) -> WeightStats:
    quant = tensor.quant
    assert quant is not None
    shape = tensor.shape or (1,)
    scale, zero = quant.scale, quant.zero_point.astype(np.float64)
    axis = quant.axis
    if scale.size > 1 or zero.size > 1:
        if not 0 <= axis < len(shape) or scale.size != shape[axis] or zero.size not in (1, scale.size):
            raise ModelReadError(f"tensor {tensor.name!r} has {scale.size} scales and {zero.size} zero points "
                                 f"for dimension {axis} of {list(tensor.shape)}: corrupt quantization")
    else:
        axis = -1
    total = math.prod(shape)
    stride = math.prod(shape[axis + 1:]) if axis >= 0 else 1
    dim = shape[axis] if axis >= 0 else 1
    # flat chunks of chunk_bytes (a float64 value, a channel index and a
    # temporary per element): a [1, N] row or a depthwise [1, h, w, C]
    # kernel is chunked like any other tensor
    step = max(1, chunk_bytes // 24)
    acc = StatsAccumulator()
    for first in range(0, total, step):
        last = min(total, first + step)
        values = _elements(buf, ref, tensor, first, last).astype(np.float64)
        if axis < 0:
            acc.add((values - zero.reshape(())) * scale.reshape(()))
            continue
        channel = (np.arange(first, last, dtype=np.int64) // stride) % dim
        z = zero[channel] if zero.size > 1 else zero.reshape(())
        acc.add((values - z) * scale[channel])
    return acc.result()


def _elements(buf, ref: BufferRef, tensor: TensorInfo, start: int, stop: int) -> np.ndarray:
    """Stored integer elements ``start:stop`` (int4 unpacked, low nibble first)."""
    if tensor.type == INT4:
        first = start // 2
        raw = np.frombuffer(buf, dtype=np.uint8, count=(stop + 1) // 2 - first, offset=ref.start + first)
        values = np.empty(raw.size * 2, dtype=np.int16)
        values[0::2], values[1::2] = raw & 0x0F, raw >> 4
        values[values >= 8] -= 16
        return values[start - first * 2:][:stop - start]
    dtype = np.dtype(TENSOR_TYPES[tensor.type][1]).newbyteorder("<")
    return np.frombuffer(buf, dtype=dtype, count=stop - start, offset=ref.start + start * dtype.itemsize)
