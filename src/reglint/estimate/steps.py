"""The steps of a sequence a recurrent state carries, which move together:
their correlation falls by the state's retention a step, so a local average
over a window of them keeps more of their moment than independent steps
would (``activity``: RL010's estimates after a pooling over an LSTM's or a
GRU's steps)."""

from __future__ import annotations

from dataclasses import dataclass

from reglint.estimate.recurrent import correlation_gain
from reglint.model import Layer


@dataclass(frozen=True)
class Lag:
    """How the steps of a sequence a recurrent state carries move together:
    their correlation falls by ``retention`` a step
    (``recurrent.step_retention``), over the part of the moment that is not
    ``base``, the share the same at every step (the inputs' mean, an
    activation's)."""

    retention: float
    base: float


def one_lag(sources: list[str], lags: dict[str, Lag]) -> Lag | None:
    """The lag of what a layer reads: its one source's (a merge of several
    is left to the shares)."""
    return lags.get(sources[0]) if len(sources) == 1 else None


# Layers that act on each step alone (a Dense on a sequence acts per step): their
# output's steps move together as their input's do.
PER_STEP = {"Dense", "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Dropout", "SpatialDropout1D",
             "GaussianNoise", "GaussianDropout", "AlphaDropout", "LayerNormalization", "BatchNormalization",
             "RMSNormalization", "Masking", "ActivityRegularization", "TimeDistributed"}


STEP_WINDOWS = {"AveragePooling1D", "AvgPool1D"}  # a local average over a sequence's steps


def window_over_steps(layer: Layer, m_in: float, share: float, lag: Lag,
                       positions: float) -> tuple[float, float, Lag | None]:
    """A local average over ``w`` neighbouring steps of a sequence a state
    carries keeps ``base + (1 - base) g_w/w`` of its moment
    (``correlation_gain``), not the share a whole-sequence average sees
    (review 70: AveragePooling1D(4) after an LSTM over 40 steps at 0.44x
    Keras' penalty). The share of the output an average over all its
    ``M`` windows keeps is what the input's whole average keeps,
    ``share + (1 - share)/N`` of ``m_in``, over the output's moment.
    Neighbouring windows correlate ``a(1 - a^w)^2 / ((1 - a)^2 w g_w)``
    (the steps' cross terms over a window's own; review 73, 5: taken as
    ``a^w``, a second pooling after the first was 0.66x Keras, against
    0.84x for the one pooling both make), ``a^s`` for windows ``s`` apart
    that overlap or leave gaps.

    >>> pool = Layer("p", "p", "AveragePooling1D", config={"pool_size": [4]}, input_shape=(None, 40, 64),
    ...              output_shape=(None, 10, 64))
    >>> moment, own, lag = window_over_steps(pool, 1.0, 0.1, Lag(0.5, 0.0), 4)
    >>> round(moment, 3), round(lag.retention, 3)  # g_4 = 2.06 of 4, not 0.1 + 0.9/4; windows correlate 0.21
    (0.516, 0.213)
    >>> round(moment * (own + (1 - own) / 10), 4) == round(0.1 + 0.9 / 40, 4)  # the whole average is kept
    True
    """
    base = lag.base
    kept = base + (1.0 - base) * correlation_gain(lag.retention, positions) / positions
    moment = m_in * kept
    steps, windows = _length(layer.input_shape), _length(layer.output_shape)
    if moment <= 0 or steps is None or windows is None or windows < 2:
        return moment, share, None
    whole = (share + (1.0 - share) / steps) / kept
    own = min(1.0, max(0.0, (whole - 1.0 / windows) / (1.0 - 1.0 / windows)))
    stride = layer.config.get("strides")
    stride = stride[0] if isinstance(stride, (list, tuple)) and stride else stride
    step = stride if isinstance(stride, int) and stride > 0 else max(1, round(positions))
    return moment, own, Lag(_window_retention(lag.retention, positions, step), base * m_in / moment)


def _window_retention(a: float, width: float, step: int) -> float:
    """The correlation of neighbouring windows' averages over steps whose
    correlation falls by ``a`` a step (``window_over_steps``)."""
    if step != width or a >= 1.0:  # overlapping or gapped windows, or a padded edge's fewer steps
        return a ** step
    w = int(width)
    return a * (1.0 - a ** w) ** 2 / ((1.0 - a) ** 2 * w * correlation_gain(a, w))


def _length(shape) -> int | None:
    """A sequence's steps (``(batch, steps, features)``), where recorded."""
    if shape and len(shape) == 3 and isinstance(shape[1], int) and shape[1] > 0:
        return shape[1]
    return None
