"""A stored tensor as the PyTorch-side readers pass it around: name, shape,
dtype and how to read its statistics (torch archives, safetensors files,
Hugging Face folders, bitsandbytes' quantized weights)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from reglint.model import WeightStats
from reglint.readers.small_floats import FLOAT8, widen
from reglint.readers.tensor_stats import bfloat16_to_float32
from reglint.readers.torch_pickle import FLOAT_DTYPES

# What quantized checkpoints' constants may be stored as (scales, absmax),
# and each stored dtype's bytes a value (read as raw bytes where numpy has
# no such type: bfloat16).
FLOAT_CONSTANTS = ("float32", "float16", "float64")
ITEMSIZE = {"uint8": 1, "int8": 1, "bool": 1, "float16": 2, "bfloat16": 2, "int16": 2, "uint16": 2, "float32": 4,
            "int32": 4, "uint32": 4, "float64": 8, "int64": 8, "uint64": 8}

# MX scales: a biased power of two (E8M0; uint8 in compressed-tensors).
MX_SCALE_DTYPES = ("uint8", "float8_e8m0fnu")
# The most values a quantization constant (scales, absmax, zero points,
# decoded) may hold: a 405B model's largest layer has a few million scales.
MAX_CONSTANT_VALUES = 1 << 24


@dataclass
class NamedTensor:
    """A stored tensor, whatever the file format: name, shape, dtype, and
    how to get its statistics (read only when asked)."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # torch's name: float32, bfloat16, int64...
    alias: Any  # equal for entries that are one tensor (tied weights); None if unknown
    read_stats: Callable[[], WeightStats | None]
    quantized: bool = False  # integer codes standing for a float parameter (bnb_quantized)
    frozen: bool = False  # stored with the parameters, never trained (PEFT's VeRA projections)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES


def constant_floats(source, tensor: NamedTensor) -> np.ndarray | None:
    """A quantization constant's values as float32 (bfloat16, float8 and E8M0
    read from their bytes; uint8 scales are E8M0 exponents)."""
    size = math.prod(tensor.shape)
    itemsize = 1 if tensor.dtype in FLOAT8 or tensor.dtype in MX_SCALE_DTYPES else ITEMSIZE.get(tensor.dtype, 0)
    if not itemsize or size > MAX_CONSTANT_VALUES:
        return None
    raw = source.stored_bytes(tensor.name, 0, size * itemsize)
    if raw is None or raw.size != size * itemsize:
        return None
    if tensor.dtype == "bfloat16":
        return bfloat16_to_float32(raw.view("<u2"))
    if tensor.dtype in FLOAT8 or tensor.dtype in MX_SCALE_DTYPES:
        return widen(raw, "float8_e8m0fnu" if tensor.dtype == "uint8" else tensor.dtype)
    if tensor.dtype not in ("float32", "float16", "float64"):
        return None
    return raw.view(np.dtype(tensor.dtype).newbyteorder("<")).astype(np.float32)


def constant_ints(source, tensor: NamedTensor) -> np.ndarray | None:
    size = math.prod(tensor.shape)
    if tensor.dtype not in ("int8", "uint8", "int16", "int32", "int64") or size > MAX_CONSTANT_VALUES:
        return None
    itemsize = ITEMSIZE[tensor.dtype]
    raw = source.stored_bytes(tensor.name, 0, size * itemsize)
    if raw is None or raw.size != size * itemsize:
        return None
    return raw.view(np.dtype(tensor.dtype).newbyteorder("<")).astype(np.int64)
