"""Weight statistics, a chunk at a time: from the protobuf's own bytes,
from external data files inside the model's folder, or from an
onnxruntime-training checkpoint."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from reglint.errors import ModelReadError
from reglint.model import WeightStats
from reglint.readers.limits import ReadOptions
from reglint.readers.onnx.graph import GraphIndex
from reglint.readers.onnx.load import external_range
from reglint.readers.onnx.params import Param
from reglint.readers.onnx.quantized import quantized_stats
from reglint.readers.onnx.tensors import EXTERNAL, FLOAT_TYPES, FileRange, checked_shape, storage_nbytes
from reglint.readers.tensor_stats import StatsAccumulator, bfloat16_to_float32


def read_stats(params: list[Param], index: GraphIndex, folder: Path, options: ReadOptions) -> None:
    for p in params:
        # Ranges are checked even without statistics: data past the end
        # of its file is a truncated model either way.
        where = external_range_of(p, folder)
        if not options.weight_stats:
            p.stats = None
        elif p.quantized:
            p.stats = quantized_stats(index, p.name, p.tensor, p.dtype, options.chunk_bytes,
                                      where.path if where else None, where.offset if where else 0, folder)
        else:
            p.stats = _param_stats(p, where, options.chunk_bytes)


def external_range_of(p: Param, folder: Path) -> FileRange | None:
    """Where an external initializer's bytes lie (checked against its file); None when inline."""
    if p.tensor is None or p.tensor.data_location != EXTERNAL:
        return None
    values = math.prod(checked_shape(p.tensor.dims, f"initializer {p.name!r}")) if p.tensor.dims else 1
    return external_range(p.tensor, folder, storage_nbytes(p.dtype, values))


def _param_stats(p: Param, where: FileRange | None, chunk: int) -> WeightStats | None:
    # file_stats and array_stats are looked up here at each call:
    # bench/phases.py times them by replacing this module's attributes.
    if p.tensor is not None:
        values = math.prod(p.tensor.dims) if p.tensor.dims else 1
        if where is not None:
            return file_stats(where, p.dtype, chunk, p.size)
        return array_stats(proto_array(p.tensor, p.dtype, values), p.dtype, chunk, p.size)
    if p.ckpt is not None and p.ckpt.where is not None:
        return file_stats(p.ckpt.where, p.ckpt.dtype, chunk, p.size)
    return None


def _add_block(acc: StatsAccumulator, block: np.ndarray, dtype: int) -> None:
    with np.errstate(over="ignore", invalid="ignore"):  # absurd values: the sums become inf
        acc.add(bfloat16_to_float32(block) if dtype == 16 else block)


def array_stats(flat: np.ndarray, dtype: int, chunk_bytes: int, count: int) -> WeightStats:
    acc = StatsAccumulator()
    step = max(1, chunk_bytes // max(1, flat.itemsize))
    for start in range(0, flat.size, step):
        _add_block(acc, flat[start:start + step], dtype)
    stats = acc.result()
    stats.count = count  # sparse tensors: the zeros count, adding nothing to the sums
    return stats


def file_stats(where: FileRange, dtype: int, chunk_bytes: int, count: int) -> WeightStats:
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


def proto_array(tensor, dtype: int, count: int) -> np.ndarray:
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
