"""Gradient clipping: what it does to a penalty's step.

Keras clips the whole gradient, the penalty's ``2*l2*w`` included, before
the optimizer's step (``BaseOptimizer.apply`` -> ``_clip_gradients``);
decoupled ``weight_decay`` is applied apart and is not clipped. Once the
penalty's gradient is larger than the clip, the step no longer grows with
``w``: the linear analysis (RL002's stability limit, RL024's per-step
shrink ``2*lr*l2/(1-m)``) holds only below it.

- ``clipnorm c`` (each tensor's gradient to norm ``c``): a tensor of norm
  ``|W|`` above ``c/(2*l2)`` moves ``lr*c/(1-m)`` in norm per step (momentum
  adds the clipped steps up, their direction the same), a relative shrink of
  ``lr*c/((1-m)*|W|)``, and reaches the linear regime after
  ``(|W| - c/(2*l2))*(1-m)/(lr*c)`` steps.
- ``clipvalue v`` (each element to ``[-v, v]``): a weight above ``v/(2*l2)``
  moves ``lr*v/(1-m)`` per step, a relative shrink of ``lr*v/((1-m)*rms)``
  on a typical weight.
- ``global_clipnorm c`` (every gradient scaled so that their joint norm is
  ``c``): with the penalties' joint gradient norm ``G = sqrt(sum (2*l2*|W|)^2)``
  above ``c``, every step is ``c/G`` of the linear one.

An unstable linear update (RL002's ``f >= 1``) therefore grows the weights
only until its gradient reaches the clip: they swing about zero in a bounded
band and do not diverge. Checked with Keras' own SGD on the penalty alone
(``fixtures/keras_optimizers/*clip*_sgd.keras``, manifest): clipnorm 1 at lr
0.5, momentum 0.9 and L2 5 (``f = 1.3``) never grew the kernel past its saved
norm where the unclipped twin overflowed; clipvalue 0.01 at lr 0.5 shrank it
3.1% per step (0.005 per weight on an RMS of 0.15 says 3.3%);
global_clipnorm 1 at lr 0.1 and L2 1 1.6% per step (``c/G`` of 0.2: 1.5%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def clipped_pace(clip: Clip, dyn, l2: float, norm: float, rms: float, joint: float) -> tuple[float, float] | None:
    """(relative shrink per step while clipped, steps until the linear
    regime) for a tensor of saved ``norm`` (RMS ``rms``) under coupled
    ``l2``; ``joint``: every penalized tensor's joint penalty-gradient norm.
    None where the clip does not bind at the saved weights."""
    if not dyn.lr or not l2 or norm <= 0:
        return None
    slow = 1.0 - (dyn.momentum or 0.0)
    if clip.kind == "clipnorm":
        edge = clip.value / (2.0 * l2)
        if norm <= edge:
            return None
        return dyn.lr * clip.value / (slow * norm), (norm - edge) * slow / (dyn.lr * clip.value)
    if clip.kind == "clipvalue":
        edge = clip.value / (2.0 * l2)
        if rms <= edge:
            return None
        return dyn.lr * clip.value / (slow * rms), (rms - edge) * slow / (dyn.lr * clip.value)
    if joint <= clip.value:
        return None
    linear = 2.0 * dyn.lr * l2 / slow
    return linear * clip.value / joint, (joint - clip.value) / (linear * clip.value)


def joint_penalty_gradient(penalties) -> float:
    """``sqrt(sum (2*l2*|W|)^2)`` over the active L2 penalties at the saved
    weights: what ``global_clipnorm`` compares with its limit."""
    total = 0.0
    for p in penalties:
        stats = p.variable.stats
        if p.active and p.l2 and stats is not None and not stats.nonfinite:
            total += (2.0 * p.l2) ** 2 * stats.sum_sq
    return math.sqrt(total)
