"""Expected size of a tensor at a fresh initialisation, in closed form.

For Keras' ``VarianceScaling`` family the per-element variance is
``scale / n_mode`` with ``n_mode`` = fan_in, fan_out or their mean
(``keras/src/initializers/random_initializers.py``); ``E[sum w^2] = n * var``
and ``E[sum |w|] = n * kappa * sqrt(var)`` with kappa = sqrt(3)/2 (uniform),
sqrt(2/pi) (normal) or 0.8217 (Keras' variance-corrected truncated normal).
Checked against tensors drawn by Keras 3.15's initializers (seed conv layer:
13.33 predicted, 13.63 drawn; Glorot & Bengio 2010, He et al. 2015).

>>> from reglint.model import Variable, Role, Initializer
>>> seed = Variable("kernel", Role.KERNEL, (2, 3, 10, 20), initializer=Initializer("glorot_uniform"))
>>> round(expected_sum_sq(seed), 2)
13.33
>>> round(expected_sum_abs(seed), 1)
109.5
"""

from __future__ import annotations

import dataclasses
import math

from reglint.model import Variable

KAPPA_UNIFORM = math.sqrt(3.0) / 2.0
KAPPA_NORMAL = math.sqrt(2.0 / math.pi)
# A standard normal truncated at +-2: E|z| = 0.72279, Var = 0.77371; Keras'
# VarianceScaling divides the stddev by 0.87962566 to restore the variance.
TRUNC_E_ABS = 0.72279
TRUNC_VAR = 0.77371
TRUNC_CORRECTION = 0.87962566

_VS = {  # name -> (scale, mode, distribution)
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}


def _num(cfg: dict, key: str, default: float) -> float:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return float(value)


def element_moments(var: Variable) -> tuple[float, float] | None:
    """(E[w^2], E[|w|]) per element at initialisation; None if unknown.
    An initializer's ``ones`` (an LSTM's forget-gate bias) are mixed in:
    a share ``ones/size`` of the elements is exactly 1.

    >>> from reglint.model import Variable, Role, Initializer
    >>> bias = Variable("bias", Role.BIAS, (128,), initializer=Initializer("zeros", ones=32))
    >>> element_moments(bias), expected_sum_sq(bias)
    ((0.25, 0.25), 32.0)
    """
    init = var.initializer
    if init is None:
        return None
    moments = _drawn_moments(var)
    share = min(1.0, init.ones / var.size) if init.ones > 0 and var.size else 0.0
    if moments is None or not share:
        return moments
    return (1.0 - share) * moments[0] + share, (1.0 - share) * moments[1] + share


def _drawn_moments(var: Variable) -> tuple[float, float] | None:
    """(E[w^2], E[|w|]) of what the initializer draws."""
    init = var.initializer
    if init is None:
        return None
    name, cfg = init.name, init.config or {}
    fan_in, fan_out = var.fans()
    if name in _VS or name == "variance_scaling":
        if name == "variance_scaling":
            scale = _num(cfg, "scale", 1.0)
            mode = str(cfg.get("mode", "fan_in"))
            dist = str(cfg.get("distribution", "truncated_normal"))
        else:
            scale, mode, dist = _VS[name]
        n = {"fan_in": fan_in, "fan_out": fan_out}.get(mode, (fan_in + fan_out) / 2.0)
        variance = scale / max(1.0, n)
        sigma = math.sqrt(variance)
        kappa = {"uniform": KAPPA_UNIFORM, "untruncated_normal": KAPPA_NORMAL,
                 "normal": TRUNC_E_ABS / TRUNC_CORRECTION}.get(dist, TRUNC_E_ABS / TRUNC_CORRECTION)
        return variance, kappa * sigma
    if name == "random_normal":
        mean, std = _num(cfg, "mean", 0.0), _num(cfg, "stddev", 0.05)
        return mean * mean + std * std, _folded_normal_mean(mean, std)
    if name == "truncated_normal":
        mean, std = _num(cfg, "mean", 0.0), _num(cfg, "stddev", 0.05)
        return mean * mean + std * std * TRUNC_VAR, abs(mean) + std * TRUNC_E_ABS if mean else std * TRUNC_E_ABS
    if name == "random_uniform":
        low, high = _num(cfg, "minval", -0.05), _num(cfg, "maxval", 0.05)
        second = (low * low + low * high + high * high) / 3.0
        return second, _uniform_abs_mean(low, high)
    if name == "zeros":
        return 0.0, 0.0
    if name == "ones":
        return 1.0, 1.0
    if name == "constant":
        value = _num(cfg, "value", 0.0)
        return value * value, abs(value)
    if name in ("orthogonal", "identity"):
        gain = _num(cfg, "gain", 1.0)
        rows = var.size // var.shape[-1] if var.shape else 1
        cols = var.shape[-1] if var.shape else 1
        total = gain * gain * min(rows, cols)
        per = total / max(1, var.size)
        # Orthogonal entries are close to normal with that variance.
        return per, KAPPA_NORMAL * math.sqrt(per) if name == "orthogonal" else per
    return None


def expected_sum_sq(var: Variable) -> float | None:
    moments = element_moments(var)
    return None if moments is None else moments[0] * var.size


def expected_sum_abs(var: Variable) -> float | None:
    moments = element_moments(var)
    return None if moments is None else moments[1] * var.size


def init_rms(var: Variable) -> float | None:
    moments = element_moments(var)
    return None if moments is None else math.sqrt(moments[0])


def _folded_normal_mean(mean: float, std: float) -> float:
    if std <= 0:
        return abs(mean)
    z = mean / std
    return std * math.sqrt(2 / math.pi) * math.exp(-z * z / 2) + mean * math.erf(z / math.sqrt(2))


def _uniform_abs_mean(low: float, high: float) -> float:
    if high <= low:
        return abs(low)
    if low >= 0 or high <= 0:
        return abs(low + high) / 2.0
    return (low * low + high * high) / (2.0 * (high - low))


def expected_abs_cosine(dim: int) -> float:
    """E|cos| between two random directions in ``dim`` dimensions:
    Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2)), about sqrt(2/(pi d))."""
    if dim <= 1:
        return 1.0
    return math.exp(math.lgamma(dim / 2) - math.lgamma((dim + 1) / 2)) / math.sqrt(math.pi)


def width_doubling(var: Variable, l2: float = 1.0, l1: float = 0.0) -> tuple[float, float] | None:
    """(penalty factor, a typical weight's pull factor) at initialisation
    when the layer's output width (the kernel's last axis) doubles, from the
    same initializer, for the penalty ``l2*sum w^2 + l1*sum |w|`` and the
    pull ``2*l2*|w| + l1``: a count for a fixed-scale draw (2.0, 1.0), a
    width for a variance-scaling one (the seed question's 20 -> 80 Conv2D
    filters of 2x3 over depth 10 under Glorot: sum w^2 from 13.3 to 17.8,
    1.33x, as Keras measured; review 39). An L1 penalty grows as sum |w|
    and its pull ``l1*sign(w)`` does not change (review 54, 4: the L2
    factors were printed for an L1). None where the layout is not a plain
    kernel (explicit fan axes), the initializer is unknown or both factors
    are 0.

    >>> from reglint.model import Variable, Role, Initializer
    >>> conv = Variable("kernel", Role.KERNEL, (2, 3, 10, 20), initializer=Initializer("glorot_uniform"))
    >>> round(width_doubling(conv)[0], 3)
    1.2
    >>> lstm = Variable("kernel", Role.KERNEL, (16, 32), initializer=Initializer("glorot_uniform"))
    >>> [round(f, 2) for f in width_doubling(lstm, l2=0.0, l1=0.01)]
    [1.55, 1.0]
    """
    if not var.shape or var.fan_axes is not None or var.fan_shape is not None or not (l1 or l2):
        return None
    wider = dataclasses.replace(var, shape=(*var.shape[:-1], 2 * var.shape[-1]), stats=None)
    sq, ab, sq_wide, ab_wide = expected_sum_sq(var), expected_sum_abs(var), expected_sum_sq(wider), \
        expected_sum_abs(wider)
    if sq is None or ab is None or sq_wide is None or ab_wide is None:
        return None
    before, after = l2 * sq + l1 * ab, l2 * sq_wide + l1 * ab_wide
    if not before:
        return None
    rms, rms_wide = math.sqrt(sq / var.size), math.sqrt(sq_wide / wider.size)
    return after / before, (2 * l2 * rms_wide + l1) / (2 * l2 * rms + l1)
