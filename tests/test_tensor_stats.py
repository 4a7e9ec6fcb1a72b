"""Weight statistics (readers/tensor_stats.py): the fast paths agree with a
plain float64 computation, and non-finite or extreme values are counted, not
lost."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reglint.readers.tensor_stats import F32_SPAN, SPAN, StatsAccumulator


def _reference(values: np.ndarray) -> dict:
    v = values.astype(np.float64).reshape(-1)
    finite = v[np.isfinite(v)]
    return {"count": v.size, "nonfinite": int(v.size - finite.size), "sum_sq": float(np.sum(finite * finite)),
            "sum_abs": float(np.sum(np.abs(finite))), "max_abs": float(np.max(np.abs(finite), initial=0.0))}


def _stats(values: np.ndarray, pieces: int = 1) -> dict:
    acc = StatsAccumulator()
    for part in np.array_split(values.reshape(-1), pieces):
        acc.add(part)
    r = acc.result()
    return {"count": r.count, "nonfinite": r.nonfinite, "sum_sq": r.sum_sq, "sum_abs": r.sum_abs,
            "max_abs": r.max_abs}


def _assert_close(got: dict, want: dict, rel: float) -> None:
    assert got["count"] == want["count"] and got["nonfinite"] == want["nonfinite"]
    assert got["max_abs"] == want["max_abs"]  # exact: |w| and max are exact in any float type
    for key in ("sum_sq", "sum_abs"):
        assert math.isclose(got[key], want[key], rel_tol=rel, abs_tol=1e-300), key


@pytest.mark.parametrize("dtype", ["float32", ">f4", "float16", "float64"])
def test_matches_float64_reference(dtype):
    rng = np.random.default_rng(0)
    values = (rng.standard_normal(3 * F32_SPAN + 17) * 0.05).astype(dtype)
    # float32 squares are rounded to float32 before the float64 sum: at most 2^-24 relative,
    # since every term is positive (about 1e-10 in practice).
    _assert_close(_stats(values, pieces=3), _reference(values), rel=2**-24)


def test_nonfinite_values_counted_and_skipped():
    values = np.linspace(-1, 1, F32_SPAN + SPAN + 5, dtype=np.float32)
    values[[3, F32_SPAN + 2]] = np.nan  # in the first and the second float32 span
    values[10] = np.inf
    got, want = _stats(values), _reference(values)
    assert got["nonfinite"] == 3
    _assert_close(got, want, rel=2**-24)


def test_float32_values_whose_square_overflows_float32():
    # 1e20 is a finite float32 whose square is not: the float64 path takes it.
    values = np.array([1e20, -3e19, 0.5] + [0.01] * 1000, dtype=np.float32)
    got, want = _stats(values), _reference(values)
    assert math.isfinite(got["sum_sq"]) and got["nonfinite"] == 0
    _assert_close(got, want, rel=1e-12)


def test_float64_sum_of_squares_overflow_is_not_a_nonfinite_weight():
    values = np.array([1e200, 1e200, 1.0])
    got = _stats(values)
    assert got["nonfinite"] == 0 and got["count"] == 3
    assert got["sum_sq"] == math.inf and got["max_abs"] == 1e200


def test_empty_and_integer_blocks():
    assert _stats(np.zeros(0, np.float32))["count"] == 0
    got = _stats(np.arange(-3, 4, dtype=np.int32))
    assert (got["count"], got["sum_sq"], got["sum_abs"], got["max_abs"]) == (7, 28.0, 12.0, 3.0)
