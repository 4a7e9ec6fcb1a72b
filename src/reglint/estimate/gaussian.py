"""Gaussian expectations of activations: the quadrature and the
activation functions the activity estimates integrate (``activity``,
``recurrent``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def gauss_hermite() -> tuple[np.ndarray, np.ndarray]:
    """64-point Gauss-Hermite nodes and weights for E[f(z)], z ~ N(0, 1);
    made on first use (numpy.polynomial costs ~5 ms to import)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(64)
    return nodes, weights / math.sqrt(2 * math.pi)

ACTIVATIONS: dict[str | None, Callable[[np.ndarray], np.ndarray]] = {
    None: lambda z: z,
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "relu6": lambda z: np.clip(z, 0, 6),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.2 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "selu": lambda z: 1.0507 * np.where(z > 0, z, 1.67326 * np.expm1(np.minimum(z, 0))),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "softplus": lambda z: np.logaddexp(0, z),
    "swish": lambda z: z / (1 + np.exp(-z)),
    "silu": lambda z: z / (1 + np.exp(-z)),
    "gelu": lambda z: 0.5 * z * (1 + np.tanh(0.7978845608 * (z + 0.044715 * z ** 3))),
}


