"""A stored tensor as the PyTorch-side readers pass it around: name, shape,
dtype and how to read its statistics (torch archives, safetensors files,
Hugging Face folders, bitsandbytes' quantized weights)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reglint.model import WeightStats
from reglint.readers.torch_pickle import FLOAT_DTYPES

# What quantized checkpoints' constants may be stored as (scales, absmax),
# and each stored dtype's bytes a value (read as raw bytes where numpy has
# no such type: bfloat16).
FLOAT_CONSTANTS = ("float32", "float16", "float64")
ITEMSIZE = {"uint8": 1, "int8": 1, "bool": 1, "float16": 2, "bfloat16": 2, "int16": 2, "uint16": 2, "float32": 4,
            "int32": 4, "uint32": 4, "float64": 8, "int64": 8, "uint64": 8}

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
