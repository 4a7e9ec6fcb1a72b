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
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


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
