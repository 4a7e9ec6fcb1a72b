"""Parameter element types and where a tensor's bytes live."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reglint.errors import ModelReadError

# ONNX TensorProto data types that hold parameters: code -> (name, storage dtype).
# bfloat16 is stored as uint16 bit patterns and widened chunk by chunk.
FLOAT_TYPES = {1: ("float32", np.float32), 10: ("float16", np.float16),
               11: ("float64", np.float64), 16: ("bfloat16", np.uint16)}
# Integer and 8-bit float types that hold quantized weights (ONNX
# DequantizeLinear's x, onnxruntime's MatMulInteger/ConvInteger B): a
# parameter only where such an op reads it (``quantized.py``). None: no
# numpy type here (packed 4-bit, float8), so no statistics.
QUANT_TYPES: dict[int, tuple[str, type | None]] = {
    2: ("uint8", np.uint8), 3: ("int8", np.int8), 4: ("uint16", np.uint16), 5: ("int16", np.int16),
    6: ("int32", np.int32), 17: ("float8e4m3fn", None), 18: ("float8e4m3fnuz", None), 19: ("float8e5m2", None),
    20: ("float8e5m2fnuz", None), 21: ("uint4", None), 22: ("int4", None)}
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


def storage_nbytes(code: int, count: int) -> int:
    """Bytes ``count`` elements of a parameter type take (4-bit types pack two a byte)."""
    if code in FLOAT_TYPES:
        return count * np.dtype(FLOAT_TYPES[code][1]).itemsize
    storage = QUANT_TYPES[code][1]
    if storage is not None:
        return count * np.dtype(storage).itemsize
    return (count + 1) // 2 if code in (21, 22) else count


def type_name(code: int) -> str:
    """The element type's name for a parameter's ``dtype``."""
    return (FLOAT_TYPES.get(code) or QUANT_TYPES.get(code) or (f"type {code}",))[0]


@dataclass
class FileRange:
    """A run of bytes in a file inside the model's folder."""

    path: Path
    offset: int
    nbytes: int


def checked_shape(dims: Iterable[int], what: str) -> tuple[int, ...]:
    shape = tuple(int(d) for d in dims)
    if any(d < 0 for d in shape):
        raise ModelReadError(f"{what} has a negative dimension {list(shape)}")
    return shape
