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




def constant_share(fn: Callable[[np.ndarray], np.ndarray], variance: float, share: float) -> float:
    """The share of ``E[f(z)^2]`` that is each unit's mean ``E[f(z)]``, the
    same at every position, step and sample, for ``z = c + n``: ``c`` a
    unit's constant drive, ``N(0, share * variance)`` over the units, ``n``
    the rest, ``N(0, (1 - share) * variance)``, drawn afresh everywhere. A
    nonlinearity makes a mean of zero-mean inputs: a ReLU's is ``1/pi`` of
    its output's second moment, which an average over positions keeps
    (``activity``: a Dense after GlobalAveragePooling) and a recurrent state
    adds up; a linear map keeps the share it reads.

    >>> relu, linear = ACTIVATIONS["relu"], ACTIVATIONS["linear"]
    >>> round(constant_share(relu, 1.0, 0.0), 2), round(1 / math.pi, 2), round(constant_share(relu, 2.0, 1.0), 6)
    (0.32, 0.32, 1.0)
    >>> round(constant_share(linear, 3.0, 0.25), 6), round(constant_share(ACTIVATIONS["tanh"], 1.0, 0.0), 6)
    (0.25, 0.0)
    """
    share = min(max(share, 0.0), 1.0)
    nodes, weights = gauss_hermite()
    z = math.sqrt(share * variance) * nodes[:, None] + math.sqrt((1.0 - share) * variance) * nodes[None, :]
    out = fn(z)
    mean = out @ weights  # each unit's mean over the fresh part, for its drive c
    total = float(weights @ (out * out) @ weights)
    return float(weights @ (mean * mean)) / total if total > 0 else share
