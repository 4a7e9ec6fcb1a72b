"""Floats numpy has no dtype for, decoded through a table of every code:
float8 (E4M3 and E5M2, with and without infinities: FP8 checkpoints and
their scales), E8M0 (the MX formats' power-of-two scales) and E2M1 (FP4:
NVFP4 and MXFP4 weights, two a byte).

The tables follow the OCP 8-bit floating point specification (v1.0, 2023)
and PyTorch's ``torch.float8_*`` dtypes, which implement it:

>>> float(FLOAT8["float8_e4m3fn"][0x7E]), float(FLOAT8["float8_e5m2"][0x7B])
(448.0, 57344.0)
>>> [float(v) for v in E2M1[:8]]
[0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
"""

from __future__ import annotations

import numpy as np


def _minifloat(exponent_bits: int, mantissa_bits: int, bias: int, *, fn: bool, uz: bool) -> np.ndarray:
    """The value of every byte of a sign/exponent/mantissa format. ``fn``:
    no infinities, only the all-ones code is NaN (E4M3FN); ``uz``: no
    negative zero, 0x80 is the only NaN (the ``fnuz`` variants)."""
    codes = np.arange(256)
    sign = np.where(codes >> 7, -1.0, 1.0)
    exponent = (codes >> mantissa_bits) & ((1 << exponent_bits) - 1)
    mantissa = (codes & ((1 << mantissa_bits) - 1)) / float(1 << mantissa_bits)
    normal = (1.0 + mantissa) * np.exp2(exponent.astype(np.float64) - bias)
    subnormal = mantissa * 2.0 ** (1 - bias)
    values = sign * np.where(exponent == 0, subnormal, normal)
    top = (1 << exponent_bits) - 1
    if uz:
        values[0x80] = np.nan
    elif fn:
        values[(codes & 0x7F) == 0x7F] = np.nan
    else:  # IEEE-like: the top exponent is infinity (mantissa 0) or NaN
        special = exponent == top
        values[special] = np.where(mantissa[special] == 0, sign[special] * np.inf, np.nan)
    return values.astype(np.float32)


FLOAT8 = {
    "float8_e4m3fn": _minifloat(4, 3, 7, fn=True, uz=False),
    "float8_e5m2": _minifloat(5, 2, 15, fn=False, uz=False),
    "float8_e4m3fnuz": _minifloat(4, 3, 8, fn=True, uz=True),
    "float8_e5m2fnuz": _minifloat(5, 2, 16, fn=True, uz=True),
}
# E8M0: a biased power of two, 0xFF is NaN (the MX formats' shared scales).
E8M0 = np.where(np.arange(256) == 255, np.nan, np.exp2(np.arange(256, dtype=np.float64) - 127)).astype(np.float32)
# E2M1 (FP4), a 4-bit code: sign in bit 3.
E2M1 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0],
                dtype=np.float32)
TABLES = {**FLOAT8, "float8_e8m0fnu": E8M0}


def widen(raw: np.ndarray, dtype: str) -> np.ndarray:
    """The float32 values of one-byte codes of ``dtype`` (a ``TABLES`` key)."""
    return TABLES[dtype][np.asarray(raw, dtype=np.uint8)]
