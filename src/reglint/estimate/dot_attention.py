"""Keras' weightless attention layers, ``Attention`` (Luong: dot or concat
scores) and ``AdditiveAttention`` (Bahdanau), at initialisation: each query
position averages the value tokens with softmax weights ``a_j`` over its
scores, so its output's moment is the values' ``E[sum a_j^2]`` of theirs
(``activity.softmax_square_sum``) where the tokens are independent, all of
it for a mean they share (``activity``: RL010's estimates after one).

Review 69 and this module's fixtures: an ``Attention`` over an
``Embedding``'s small vectors scores every token alike and averages ``T``
of them; taken as passing its values' moment on, a Dense after it was 9.4x
and 33x Keras' penalty at 10 and 40 tokens.

The scores' variance over the keys, for inputs of second moment ``m_q`` and
``m_k`` per element over ``d`` features (Keras 3's
``layers/attention/attention.py``, ``additive_attention.py``):

- ``dot``: ``q.k`` (times ``scale``, 1 at initialisation): ``d*m_q*m_k``;
- ``concat``: ``sum_d tanh(q_d + k_d)`` (times ``concat_score_weight``, 1):
  ``d*E[tanh(z)^2]``, ``z`` of variance ``m_q + m_k``;
- additive: ``sum_d scale_d*tanh(q_d + k_d)``, ``scale`` drawn by its
  initializer where ``use_scale`` (Glorot: ``E[scale^2] = 1/d``), 1 without.
"""

from __future__ import annotations

import math

from reglint.estimate.gaussian import ACTIVATIONS, gauss_hermite
from reglint.estimate.init_scale import element_moments
from reglint.model import Layer

WEIGHTLESS_ATTENTION = frozenset({"Attention", "AdditiveAttention"})


def score_variance(layer: Layer, query: float, key: float) -> float | None:
    """The variance of the scores a query gives the keys (module
    docstring), for query and key inputs of second moments ``query`` and
    ``key`` per element; None for another layer, a score mode Keras does
    not have or an unknown width.

    >>> att = Layer("a", "a", "Attention", config={"score_mode": "dot"}, input_shape=(None, 10, 32))
    >>> score_variance(att, 1e-3, 1e-3)  # an Embedding's vectors: every token scored alike
    3.2e-05
    """
    width = _width(layer)
    if layer.class_name not in WEIGHTLESS_ATTENTION or width is None:
        return None
    mode = layer.config.get("score_mode", "dot") if layer.class_name == "Attention" else "additive"
    if mode == "dot":
        return width * query * key
    squashed = _tanh_square(query + key)
    if mode == "concat":
        return width * squashed
    if mode != "additive":
        return None
    scale = 1.0
    if layer.config.get("use_scale", True):
        drawn = next((element_moments(v) for v in layer.variables if v.name.split("/")[-1] == "scale"), None)
        scale = drawn[0] if drawn is not None else 1.0 / width  # Keras' Glorot draw over (d,): 1/d
    return width * scale * squashed


def own_score(layer: Layer, query: float) -> float:
    """How much more a query scores its own token where it is its own key
    (``Attention([x, x])``, dot scores): ``q.q = d*m_q``, against
    ``N(0, d*m_q^2)`` for the others; 0 for other scores (a ``tanh`` of
    ``2q`` sums to zero on average).

    >>> att = Layer("a", "a", "Attention", config={}, input_shape=(None, 40, 32))
    >>> round(own_score(att, 0.67), 2)  # a Dense's outputs: the token weighs its own value about 1
    21.44
    """
    width = _width(layer)
    mode = layer.config.get("score_mode", "dot") if layer.class_name == "Attention" else "additive"
    return width * query if mode == "dot" and width is not None else 0.0


def self_square_sum(tokens: int, variance: float, own: float, spread) -> float:
    """``E[sum a_j^2]`` where one of ``tokens`` scores ``own`` above the
    others' ``N(0, variance)``: its weight ``e^own / (e^own + (T-1)
    e^(v/2))``, the rest spread over the others as ``spread(T-1, v)``
    gives (``activity.softmax_square_sum``).

    >>> round(self_square_sum(40, 14.4, 21.4, lambda t, v: min(1.0, (1 + v) / t)), 3)
    1.0
    >>> round(self_square_sum(10, 3e-5, 0.03, lambda t, v: min(1.0, (1 + v) / t)), 3)
    0.1
    """
    if tokens < 2:
        return 1.0
    others = (tokens - 1) * math.exp(min(variance / 2.0, 700.0))
    mine = 1.0 / (1.0 + others * math.exp(-min(own, 700.0)))
    return mine * mine + (1.0 - mine) ** 2 * spread(tokens - 1, variance)


def _tanh_square(variance: float) -> float:
    """``E[tanh(z)^2]`` for ``z ~ N(0, variance)``."""
    nodes, weights = gauss_hermite()
    values = ACTIVATIONS["tanh"](math.sqrt(max(variance, 0.0)) * nodes)
    return float(weights @ (values * values))


def _width(layer: Layer) -> int | None:
    """The features a score sums over: the query's last dimension."""
    shape: list | tuple | None = layer.input_shape
    if shape and isinstance(shape[0], (list, tuple)):  # a list of inputs: the query's
        shape = shape[0]
    last = shape[-1] if shape else None
    return last if isinstance(last, int) and last > 0 else None
