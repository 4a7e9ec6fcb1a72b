"""What the optimizer does with a lambda: per-step shrink, stability,
timescale.

Formulas (``shared/reference/regularization-theory.md`` section 4, each
checked by running Keras there):

- Coupled L2 under SGD with heavy-ball momentum b: the penalty alone is the
  linear system w <- w - eta*2*lambda*w (+ momentum), stable iff
  ``2*eta*lambda < S`` with ``S = 2(1+b)`` (Nesterov: ``2(1+b)/(1+2b)``);
  verified 3.7 converges / 3.9 diverges at b=0.9. The share of that budget
  the penalty uses is ``f = 2*eta*lambda / S``.
- Its slow-mode shrink per step is ``r = 2*eta*lambda / (1-b)``.
- Decoupled ``weight_decay`` (Keras 3 every optimizer, tf.keras >= 2.11,
  PyTorch AdamW): ``w <- w - eta*wd*w`` before the gradient step, so
  ``r = eta*wd``; past ``eta*wd >= 1`` each step zeroes or flips the weights.
- L1 under SGD moves every weight by ``a = eta*lambda1/(1-b)`` toward zero
  each step; weights jitter in a band of +-a instead of reaching zero.
- Under Adam-family optimizers a coupled penalty gradient is normalised like
  any gradient: a weight with no data gradient moves by about eta per step
  whatever lambda is.
- Timescale ``tau = 1/r`` steps; integrated decay ``D = r*T`` over T steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from reglint.model import Optimizer


@dataclass
class Dynamics:
    """The optimizer's view of the penalties, independent of any layer."""

    family: str  # sgd, adaptive, other, unknown
    lr: float | None  # peak learning rate (stability is decided at the peak)
    lr_initial: float | None
    momentum: float
    nesterov: bool
    weight_decay: float  # decoupled, 0 when none
    coupled_l2: float  # coupled L2 folded into the gradient by the optimizer, Keras convention

    @property
    def stability_limit(self) -> float:
        """S: the largest eta*curvature the momentum method survives."""
        b = self.momentum
        if self.nesterov:
            return 2.0 * (1.0 + b) / (1.0 + 2.0 * b)
        return 2.0 * (1.0 + b)

    def l2_stability_fraction(self, l2: float) -> float | None:
        """f = 2*eta*lambda / S for a coupled L2 of factor ``l2`` (SGD only)."""
        if self.family != "sgd" or self.lr is None:
            return None
        return 2.0 * self.lr * (l2 + self.coupled_l2) / self.stability_limit

    def coupled_shrink(self, l2: float) -> float | None:
        """Per-step fractional shrink of an unsupported weight under coupled L2."""
        if self.lr is None:
            return None
        if self.family == "sgd":
            return 2.0 * self.lr * (l2 + self.coupled_l2) / max(1e-12, 1.0 - self.momentum)
        return None  # adaptive: depends on the data gradient's RMS

    @property
    def decoupled_shrink(self) -> float | None:
        if self.lr is None or not self.weight_decay:
            return None
        return self.lr * self.weight_decay

    def l1_step(self, l1: float) -> float | None:
        """Distance every weight moves toward zero each step under L1 (SGD)."""
        if self.family != "sgd" or self.lr is None:
            return None
        return self.lr * l1 / max(1e-12, 1.0 - self.momentum)

    def total_shrink(self, l2: float) -> float | None:
        """Coupled and decoupled shrinks add (verified additive in Keras)."""
        parts = [p for p in (self.coupled_shrink(l2) if l2 else None, self.decoupled_shrink) if p]
        return sum(parts) if parts else None


def dynamics_of(optimizer: Optimizer | None) -> Dynamics:
    if optimizer is None:
        return Dynamics("unknown", None, None, 0.0, False, 0.0, 0.0)
    lr = optimizer.learning_rate
    peak = lr.peak if lr and lr.peak is not None else (lr.initial if lr else None)
    return Dynamics(
        family=optimizer.family,
        lr=peak,
        lr_initial=lr.initial if lr else None,
        momentum=min(max(optimizer.momentum or 0.0, 0.0), 0.999999),
        nesterov=optimizer.nesterov,
        weight_decay=optimizer.weight_decay or 0.0,
        coupled_l2=optimizer.coupled_l2 or 0.0,
    )
