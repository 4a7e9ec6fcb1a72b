"""Weight statistics, a chunk at a time."""

from __future__ import annotations

import numpy as np

from reglint.errors import ModelReadError
from reglint.model import WeightStats
from reglint.readers.onnx.tensors import FLOAT_TYPES, _FileRange
from reglint.readers.tensor_stats import StatsAccumulator, bfloat16_to_float32


def _add_block(acc: StatsAccumulator, block: np.ndarray, dtype: int) -> None:
    with np.errstate(over="ignore", invalid="ignore"):  # absurd values: the sums become inf
        acc.add(bfloat16_to_float32(block) if dtype == 16 else block)


def _array_stats(flat: np.ndarray, dtype: int, chunk_bytes: int, count: int) -> WeightStats:
    acc = StatsAccumulator()
    step = max(1, chunk_bytes // max(1, flat.itemsize))
    for start in range(0, flat.size, step):
        _add_block(acc, flat[start:start + step], dtype)
    stats = acc.result()
    stats.count = count  # sparse tensors: the zeros count, adding nothing to the sums
    return stats


def _file_stats(where: _FileRange, dtype: int, chunk_bytes: int, count: int) -> WeightStats:
    """Stream a tensor's bytes from a file: memory is one chunk."""
    storage = np.dtype(FLOAT_TYPES[dtype][1])
    step = max(storage.itemsize, chunk_bytes // storage.itemsize * storage.itemsize)
    acc = StatsAccumulator()
    with where.path.open("rb") as handle:
        handle.seek(where.offset)
        remaining = where.nbytes
        while remaining > 0:
            data = handle.read(min(step, remaining))
            if not data or len(data) % storage.itemsize:
                raise ModelReadError(f"external data in {where.path.name!r} ends early: truncated file")
            _add_block(acc, np.frombuffer(data, dtype=storage), dtype)
            remaining -= len(data)
    stats = acc.result()
    stats.count = count
    return stats


def _proto_array(tensor, dtype: int, count: int) -> np.ndarray:
    """The values held inside the protobuf, viewed without a second copy of
    the raw bytes; typed fields (float_data ...) are converted."""
    storage = np.dtype(FLOAT_TYPES[dtype][1])
    what = f"initializer {tensor.name!r}"
    raw = tensor.raw_data
    if raw:
        if len(raw) != count * storage.itemsize:
            raise ModelReadError(f"{what} holds {len(raw)} bytes, its shape needs {count * storage.itemsize}: "
                                 "truncated or corrupt")
        return np.frombuffer(raw, dtype=storage)
    if dtype == 1:
        values = np.asarray(tensor.float_data, dtype=np.float32)
    elif dtype == 11:
        values = np.asarray(tensor.double_data, dtype=np.float64)
    else:  # float16/bfloat16 bit patterns travel in int32_data
        values = np.asarray(tensor.int32_data, dtype=np.int64).astype(np.uint16)
        if dtype == 10:
            values = values.view(np.float16)
    if values.size != count:
        raise ModelReadError(f"{what} holds {values.size} values, its shape needs {count}: truncated or corrupt")
    return values
