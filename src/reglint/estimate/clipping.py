"""Gradient clipping: what it does to a penalty's step.

Keras clips the whole gradient, the penalty's ``2*l2*w`` included, before
the optimizer's step (``BaseOptimizer.apply`` -> ``_clip_gradients``);
decoupled ``weight_decay`` is applied apart and is not clipped. Once the
penalty's gradient is larger than the clip, the step no longer grows with
``w``: the linear analysis (RL002's stability limit, RL024's per-step
shrink ``2*lr*l2/(1-m)``) holds only below it. ``clipnorm c`` caps each
tensor's gradient norm, ``clipvalue v`` each element, ``global_clipnorm c``
the joint norm of all of them (one scale for every tensor, so they are
released together).

Rather than closed forms for each case (momentum builds up over the first
steps; a global clip couples tensors of different L2s; an unstable linear
update grows until the clip binds), ``clipped_motions`` runs Keras' SGD
update on the penalties alone, each tensor a signed scalar along its own
direction (exact for clipnorm and global_clipnorm, where the penalty's
gradient points along ``w``; element magnitudes at a distribution's
quantiles for clipvalue), for ``HORIZON`` steps. RL002, RL024 and explain
read its one answer (``penalty_motions``).

Checked against Keras' own SGD on the penalty alone
(``fixtures/keras_optimizers/*clip*_sgd.keras``, manifest; review 36's
files): clipvalue 0.01 at lr 0.5 shrank the kernel 3.10% per step over the
first 10 steps (simulated 3.10%); global_clipnorm 1 at lr 0.1 and L2 1,
1.57% (1.56%); clipnorm 1 at lr 0.5, momentum 0.9 and L2 5 (``f = 1.3``)
never grew the kernel past its saved norm (simulated 1.0x) where the
unclipped twin overflowed, while clipnorm 100 let it grow 37x (simulated
36x): a loose clip only caps the growth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from reglint.engine.fmt import g

# the order Keras applies them in (_clip_gradients: global first, then per
# tensor, then per value); one is reported, the first set
KINDS = ("global_clipnorm", "clipnorm", "clipvalue")


@dataclass(frozen=True)
class Clip:
    """One clipping setting of the optimizer."""

    kind: str
    value: float

    @property
    def text(self) -> str:
        return f"{self.kind} {g(self.value)}"


def clip_of(optimizer) -> Clip | None:
    """The optimizer's gradient clipping, from its saved config (Keras 3,
    tf.keras); None where none is set."""
    config = getattr(optimizer, "config", None) or {}
    for kind in KINDS:
        value = config.get(kind)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
            return Clip(kind, float(value))
    return None


@dataclass(frozen=True)
class ClippedMotion:
    """How one penalized tensor moves under the clipped penalty alone:
    ``shrink`` the mean relative shrink per step over the first
    ``SHRINK_STEPS`` (negative: it grows), ``release`` the step from which
    the clip no longer binds (None: not within the horizon), ``growth`` its
    largest norm over the horizon as a multiple of the saved one."""

    shrink: float
    release: int | None
    growth: float


SHRINK_STEPS = 10
HORIZON = 2000


def clipped_motions(clip: Clip, tensors: list[tuple[float, float, float, float, float, float]],
                    horizon: int = HORIZON, binding: bool = True) -> list[ClippedMotion] | None:
    """Keras' SGD on the penalties alone, clipped, per tensor: each tensor is
    ``(l2, saved norm, lr, momentum, nesterov (1 or 0), mean |w| / RMS)``. The
    penalty's gradient ``2*l2*w`` points along ``w``, so under ``clipnorm``
    and ``global_clipnorm`` each tensor moves along its own direction, a
    signed scalar (exact: the clip couples the tensors only through the
    joint norm); under ``clipvalue`` each element does, so a tensor is
    ``ELEMENTS`` magnitudes at the quantiles of a uniform (``mean |w| / RMS``
    near sqrt(3)/2, an initializer's) or half-normal distribution with its
    RMS. With ``binding``, None where the clip does not bind at the saved
    weights."""
    if not tensors:
        return None
    per = ELEMENTS if clip.kind == "clipvalue" else 1
    owner = np.repeat(np.arange(len(tensors)), per)
    l2, lr, mom, nest = (np.array([tensors[i][k] for i in owner], dtype=float) for k in (0, 2, 3, 4))
    w = np.concatenate([_magnitudes(t[1], t[5], per) for t in tensors])
    velocity = np.zeros_like(w)
    norm0 = _norms(w, owner, len(tensors))
    if binding and not np.any(_clip_scale(clip, 2.0 * l2 * w) < 1.0):
        return None
    released, peak, early = np.full(len(tensors), -1), norm0.copy(), None
    for step in range(horizon):
        grad = 2.0 * l2 * w
        scale = _clip_scale(clip, grad)
        free = np.minimum.reduceat(scale, np.arange(0, len(w), per)) >= 1.0
        released[(released < 0) & free] = step
        grad = grad * scale
        velocity = mom * velocity - lr * grad
        w = w + np.where(nest > 0, mom * velocity - lr * grad, velocity)
        norms = _norms(w, owner, len(tensors))
        peak = np.maximum(peak, norms)
        if step + 1 == SHRINK_STEPS:
            early = norms
        if not np.all(np.isfinite(w)):
            break
    early = _norms(w, owner, len(tensors)) if early is None else early
    with np.errstate(divide="ignore", invalid="ignore"):
        shrink = 1.0 - (early / norm0) ** (1.0 / SHRINK_STEPS)
    return [ClippedMotion(float(shrink[i]), int(released[i]) if released[i] >= 0 else None,
                          float(peak[i] / norm0[i]) if norm0[i] else 1.0) for i in range(len(tensors))]


ELEMENTS = 64


def _magnitudes(norm: float, abs_to_rms: float, count: int):
    """``count`` element magnitudes whose root-mean-square is ``norm`` (one:
    the norm itself), at the quantiles of a uniform or half-normal law."""
    if count == 1:
        return np.array([norm])
    q = (np.arange(count) + 0.5) / count
    if abs_to_rms > 0.83:  # uniform on [0, a]: mean/RMS = sqrt(3)/2 = 0.866
        values = q
    else:  # half-normal: mean/RMS = sqrt(2/pi) = 0.798
        from statistics import NormalDist

        values = np.array([NormalDist().inv_cdf(0.5 + x / 2) for x in q])
    return values * norm / math.sqrt(float(np.mean(values ** 2)))


def _norms(w, owner, tensors: int):
    """Each tensor's RMS over its elements (its norm where it is one)."""
    return np.sqrt(np.bincount(owner, weights=w ** 2, minlength=tensors) / np.bincount(owner, minlength=tensors))


def _clip_scale(clip: Clip, grad):
    """The factor Keras' clipping multiplies each tensor's gradient by."""
    magnitude = np.abs(grad)
    if clip.kind == "global_clipnorm":
        joint = float(np.sqrt(np.sum(grad ** 2)))
        return np.full_like(grad, min(1.0, clip.value / joint) if joint > 0 else 1.0)
    with np.errstate(divide="ignore"):
        return np.minimum(1.0, np.where(magnitude > 0, clip.value / magnitude, 1.0))


def penalty_motions(analysis, clip: Clip, binding: bool = True) -> dict[int, ClippedMotion]:
    """``clipped_motions`` for every active L2 penalty under SGD with
    readable saved weights, each at its own param group's settings, by
    ``id(variable)``; empty where the clip binds on none. Memoised on the
    analysis: RL002, RL024 and explain read one simulation."""
    cached = getattr(analysis, "_clip_motions", None)
    if cached is not None and cached[0] == (clip, binding):
        return cached[1]
    entries, keys = [], []
    for p in analysis.active_penalties(include_invariant=True):
        stats, dyn = p.variable.stats, analysis.variable_dynamics(p.variable)
        if not p.l2 or stats is None or stats.nonfinite or not stats.count or dyn.family != "sgd" or not dyn.lr:
            continue
        rms = math.sqrt(stats.sum_sq / stats.count)
        size = rms if clip.kind == "clipvalue" else math.sqrt(stats.sum_sq)
        if size > 0:
            entries.append((p.l2 + dyn.coupled_l2, size, dyn.lr, dyn.momentum or 0.0, float(dyn.nesterov),
                            (stats.sum_abs / stats.count) / rms))
            keys.append(id(p.variable))
    motions = clipped_motions(clip, entries, binding=binding) or []
    found = dict(zip(keys, motions, strict=False))
    analysis._clip_motions = ((clip, binding), found)
    return found
