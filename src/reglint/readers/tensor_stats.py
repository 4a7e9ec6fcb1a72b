"""Statistics of stored tensors, computed a chunk at a time.

Memory is bounded by the chunk size, not by the tensor or the model: an
HDF5 dataset (or a memory-mapped ONNX blob) is read in slices along its first
axis, and the sums are accumulated in float64.
"""

from __future__ import annotations

import numpy as np

from reglint.model import WeightStats

FLOAT_KINDS = ("f",)


class StatsAccumulator:
    def __init__(self) -> None:
        self.count = 0
        self.sum_sq = 0.0
        self.sum_abs = 0.0
        self.max_abs = 0.0
        self.nonfinite = 0

    def add(self, block: np.ndarray) -> None:
        block = np.asarray(block).reshape(-1)
        if block.size == 0:
            return
        values = block.astype(np.float64, copy=False)
        finite = np.isfinite(values)
        bad = int(values.size - np.count_nonzero(finite))
        if bad:
            self.nonfinite += bad
            values = values[finite]
        self.count += int(block.size)
        if values.size:
            absolute = np.abs(values)
            self.sum_abs += float(absolute.sum())
            self.sum_sq += float(np.dot(values, values))
            self.max_abs = max(self.max_abs, float(absolute.max()))

    def result(self) -> WeightStats:
        return WeightStats(count=self.count, sum_sq=self.sum_sq, sum_abs=self.sum_abs,
                           max_abs=self.max_abs, nonfinite=self.nonfinite)


def bfloat16_to_float32(raw: np.ndarray) -> np.ndarray:
    return (raw.astype(np.uint32) << 16).view(np.float32)


def h5_dataset_stats(ds, chunk_bytes: int) -> WeightStats | None:
    """Stats of an HDF5 dataset holding floats; None for other dtypes."""
    is_bf16 = _attr(ds, "dtype") == "bfloat16"
    if ds.dtype.kind not in FLOAT_KINDS and not is_bf16:
        return None
    acc = StatsAccumulator()
    shape = ds.shape
    if shape is None or len(shape) == 0:
        acc.add(_convert(np.asarray(ds[()]), is_bf16))
        return acc.result()
    row_elems = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    row_bytes = max(1, row_elems * ds.dtype.itemsize)
    rows = max(1, chunk_bytes // row_bytes)
    for start in range(0, shape[0], rows):
        acc.add(_convert(ds[start:start + rows], is_bf16))
    return acc.result()


def array_stats(array: np.ndarray, chunk_elems: int) -> WeightStats:
    """Stats of a (possibly memory-mapped) flat array, chunk by chunk."""
    flat = array.reshape(-1)
    acc = StatsAccumulator()
    for start in range(0, flat.size, max(1, chunk_elems)):
        acc.add(flat[start:start + chunk_elems])
    return acc.result()


def _convert(block: np.ndarray, is_bf16: bool) -> np.ndarray:
    return bfloat16_to_float32(block) if is_bf16 else block


def _attr(ds, key: str):
    try:
        value = ds.attrs.get(key)
    except Exception:
        return None
    return value.decode() if isinstance(value, bytes) else value
