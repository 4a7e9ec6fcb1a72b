"""What the optimizer does with a lambda: per-step shrink, stability,
timescale.

Formulas (Polyak 1964 and Goh, "Why Momentum Really Works", Distill 2017 for
the stability region; Loshchilov & Hutter, ICLR 2019 for decoupled decay; each
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
- Scale-invariant tensors (a kernel feeding a normalization layer): the
  data gradient is orthogonal to ``w`` and scales as ``1/|w|``, so the norm
  settles where the decay's shrink ``2*R*|w|^2`` per step balances the
  growth the updates add (van Laarhoven 2017; Wan et al. 2021, "Spherical
  Motion Dynamics"; Kosson et al. 2024, "Rotational Equilibrium"). With
  ``R`` the per-step norm shrink and heavy-ball averaging ``m`` (SGD's
  momentum, Adam's beta_1), the updates' cross terms ``<w, u>`` add
  ``(1+m)/(1-m)`` to the growth, and the expected angle per step is
  ``theta = sqrt(2*R*(1-m)/(1+m))``: ``sqrt(4*eta*l2/(1+m))`` for Keras' L2
  under SGD (``R = 2*eta*l2/(1-m)``; Kosson's ``sqrt(2*eta*lambda/(1+m))``
  with PyTorch's ``lambda = 2*l2``), ``sqrt(2*eta*wd*(1-m)/(1+m))`` for
  decoupled decay under SGD or AdamW (Kosson's AdamW form). ``|w|^2``
  relaxes to it with rate ``2*R``: ``1/(2R)`` steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reglint.model import Optimizer

ADAM_LIKE = ("adam", "adamw", "nadam", "adamax", "lamb", "amsgrad", "radam", "adamwoptimizer")


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
    beta_1: float | None = None  # Adam-family first-moment averaging
    # Adagrad: the squared gradients add up, so a steady pull moves a weight
    # lr/sqrt(t) at step t (2*lr*sqrt(T) in T steps), not lr per step
    accumulating: bool = False
    # the adaptive optimizer's epsilon as saved (a param group's own where it
    # has one): the floor under which a gradient is not normalised (RL007)
    eps: float | None = None

    @property
    def averaging(self) -> float:
        """m: the heavy-ball averaging of the updates (SGD momentum; Adam's
        beta_1, 0.9 when unsaved; RMSprop's momentum)."""
        if self.family == "adaptive" and self.beta_1 is not None:
            return min(max(self.beta_1, 0.0), 0.999999)
        return self.momentum

    @property
    def drift_step(self) -> float | None:
        """How far an adaptive optimizer moves a weight per step when the
        normalised gradient keeps one sign (a penalty's pull with no data
        gradient against it): ``lr`` under Adam-family optimizers, whose
        first moment is an average; ``lr/(1-momentum)`` under RMSprop's
        heavy-ball momentum, which adds the steps up (Keras' RMSprop moved
        such a weight 1.01e-2 per step at lr 1e-3, momentum 0.9; review 30).

        >>> Dynamics("adaptive", 1e-3, 1e-3, 0.9, False, 0.0, 0.0).drift_step
        0.01
        >>> Dynamics("adaptive", 1e-3, 1e-3, 0.0, False, 0.0, 0.0, beta_1=0.9).drift_step
        0.001
        """
        if self.lr is None:
            return None
        if self.beta_1 is None and 0 < self.momentum < 1:
            return round(self.lr / (1.0 - self.momentum), 15)
        return self.lr

    def steps_to_drift(self, distance: float) -> float | None:
        """Steps for a steady normalised pull to move a weight ``distance``:
        ``distance/drift_step``, or ``(distance/(2*lr))^2`` under Adagrad,
        whose steps shrink as ``lr/sqrt(t)`` (torch's Adagrad at lr 0.05 moved
        a weight 0.05, then 0.014 at step 10, 0.0026 at step 100; review 31).

        >>> Dynamics("adaptive", 0.05, 0.05, 0.0, False, 0.0, 0.0, accumulating=True).steps_to_drift(1.0)
        100.0
        """
        step = self.drift_step
        if not step:
            return None
        if self.accumulating:
            return (distance / (2.0 * step)) ** 2
        return distance / step

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
        """Coupled and decoupled shrinks add (verified additive in Keras).
        Under an adaptive optimizer only the decoupled part is static."""
        coupled = self.coupled_shrink(l2) if (l2 or self.coupled_l2) else None
        parts = [p for p in (coupled, self.decoupled_shrink) if p]
        return sum(parts) if parts else None

    def equilibrium_angle(self, l2: float) -> float | None:
        """theta: the angular update per step a scale-invariant tensor settles
        at, in radians (module docstring)."""
        r = self.total_shrink(l2)
        if not r:
            return None
        m = self.averaging
        return math.sqrt(2.0 * r * (1.0 - m) / (1.0 + m))

    def contraction(self, l2: float) -> float | None:
        """The actual per-step shrink of an unsupported weight: for a coupled
        L2 under heavy-ball SGD, ``1 - rho`` with ``rho`` the spectral radius of
        ``z^2 - (d + m - eta*h) z + m*d`` (``h = 2*l2``, ``d = 1 - eta*wd``:
        Keras applies a decoupled weight_decay to the weight before the
        momentum step, ``w <- d*w + v'``), which is the slow mode
        ``eta*h/(1-m) + eta*wd`` while ``eta*h`` is small and
        ``1 - sqrt(m*d)`` once the roots turn complex (0.051 per step at
        m = 0.9 without decay); the decoupled ``eta*wd`` alone otherwise.

        >>> d = Dynamics("sgd", lr=0.3, lr_initial=0.3, momentum=0.9, nesterov=False, weight_decay=0.5,
        ...              coupled_l2=0.0)
        >>> round(d.contraction(0.01), 4)  # 1 - sqrt(0.9 * 0.85); Keras' own SGD measured 0.1265 (review 27)
        0.1254
        """
        if self.lr is None:
            return None
        decoupled = self.decoupled_shrink or 0.0
        if not (self.family == "sgd" and (l2 or self.coupled_l2)):
            return decoupled or None
        rho = _spectral_radius(self.momentum, 2.0 * self.lr * (l2 + self.coupled_l2), 1.0 - decoupled)
        return max(0.0, 1.0 - rho) or None

    def momentum_regime(self, l2: float, slow: float) -> str | None:
        """How the real contraction compares with the slow-mode shrink
        ``slow`` a message states: ``"limited"`` where heavy-ball momentum
        keeps the weights from shrinking as fast as asked (the roots are
        complex: an envelope of ``1 - sqrt(m*d)`` per step), ``"faster"``
        near critical damping, where the two modes together contract faster
        than the slow mode; None where they agree within 10% (always without
        momentum) or every step overshoots zero (``flips_every_step``). The
        10% keeps messages from naming two rates that round alike.

        >>> d = Dynamics("sgd", lr=0.1, lr_initial=0.1, momentum=0.9, nesterov=False, weight_decay=0.0,
        ...              coupled_l2=0.5)
        >>> d.momentum_regime(0.0, 1.0), round(d.contraction(0.0), 4)  # slow mode 0.1*1/(1-0.9) = 1
        ('limited', 0.0513)
        """
        if self.family != "sgd" or not self.momentum or self.flips_every_step(l2):
            return None
        actual = self.contraction(l2)
        if actual is None or not slow:
            return None
        if actual < slow / 1.1:
            return "limited"
        return "faster" if actual > 1.1 * slow else None

    def flips_every_step(self, l2: float) -> bool:
        """Whether an unsupported weight changes sign at every step: the
        decoupled ``eta*wd`` at 1 or more, or a coupled L2 under heavy-ball
        SGD with ``eta*h >= (sqrt(d) + sqrt(m))^2`` (``h = 2*l2``, ``d = 1 -
        eta*wd``), where both roots of ``z^2 - (d + m - eta*h) z + m*d`` are
        real and negative. Between the slow-mode shrink ``eta*h/(1-m) = 1``
        and that bound the roots are complex: the weight oscillates inside an
        envelope that shrinks by ``1 - sqrt(m*d)`` per step and crosses zero
        every few steps, not every step (without momentum the two bounds
        meet at ``eta*h = 1``).

        >>> d = Dynamics("sgd", lr=0.05, lr_initial=0.05, momentum=0.95, nesterov=False, weight_decay=0.0,
        ...              coupled_l2=0.0)
        >>> d.flips_every_step(0.5), round(d.contraction(0.5), 4)  # slow mode 2*0.05*0.5/0.05 = 1
        (False, 0.0253)
        >>> d.flips_every_step(40.0)  # 2*0.05*40 = 4 >= (1 + sqrt(0.95))^2 = 3.90
        True
        """
        decay = 1.0 - (self.decoupled_shrink or 0.0)
        if decay <= 0.0:
            return True
        if self.family != "sgd" or self.lr is None or not (l2 or self.coupled_l2):
            return False
        return 2.0 * self.lr * (l2 + self.coupled_l2) >= (math.sqrt(decay) + math.sqrt(self.momentum)) ** 2

    def equilibrium_steps(self, l2: float) -> float | None:
        """Steps for ``|w|^2`` to relax to its equilibrium (1/e): ``1/(2r)``
        with ``r`` the actual per-step contraction."""
        r = self.contraction(l2)
        return 1.0 / (2.0 * r) if r else None


def dynamics_of(optimizer: Optimizer | None) -> Dynamics:
    if optimizer is None:
        return Dynamics("unknown", None, None, 0.0, False, 0.0, 0.0)
    beta_1 = optimizer.beta_1
    if beta_1 is None and optimizer.class_name.lower() in ADAM_LIKE:
        beta_1 = 0.9  # Keras' default, also when the config leaves it out
    lr = optimizer.learning_rate
    peak = lr.peak if lr and lr.peak is not None else (lr.initial if lr else None)
    damp = undampened_share(optimizer.config, optimizer.momentum)
    return Dynamics(
        family=optimizer.family,
        # a NaN, infinite or negative setting is RL012's finding: no dynamics are estimated from it
        lr=_scaled(_usable(peak), damp),
        lr_initial=_scaled(_usable(lr.initial), damp) if lr else None,
        momentum=min(_usable(optimizer.momentum if (optimizer.momentum or 0.0) <= 1 else None) or 0.0, 0.999999),
        nesterov=optimizer.nesterov,
        weight_decay=_usable(optimizer.weight_decay) or 0.0,
        coupled_l2=_usable(optimizer.coupled_l2) or 0.0,
        beta_1=beta_1,
        accumulating=optimizer.class_name.lower() == "adagrad",
        eps=_usable(optimizer.epsilon),
    )


def undampened_share(settings: dict | None, momentum: float | None) -> float:
    """``1 - dampening`` for ``torch.optim.SGD`` with momentum, else 1: torch
    adds each gradient to the momentum buffer at ``(1 - dampening)`` of its
    size (``buf = m*buf + (1-d)*g``, ``w -= lr*buf``), the same updates as
    heavy-ball SGD at ``lr*(1-d)``, so every SGD shrink and stability limit
    takes that effective learning rate (torch measured 0.00525 per step at
    lr 0.5, momentum 0.9, dampening 0.9, weight_decay 0.01: the slow mode
    ``lr*(1-d)*wd/(1-m)`` of the heavy ball at 0.05; review 31).

    >>> undampened_share({"dampening": 0.9}, 0.9), undampened_share({"dampening": 0.9}, 0.0)
    (0.09999999999999998, 1.0)
    >>> undampened_share({"dampening": 1.0}, 0.9)
    0.0
    """
    value = (settings or {}).get("dampening")
    if not momentum or isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        return 1.0
    return max(0.0, 1.0 - float(value))  # dampening 1: after the first step no gradient enters the buffer


def _scaled(value: float | None, factor: float) -> float | None:
    return value * factor if value is not None else None


def _usable(value: float | None) -> float | None:
    """``value`` when it is a finite number >= 0, else None (unknown)."""
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def _spectral_radius(m: float, a: float, d: float) -> float:
    """The largest |root| of ``z^2 - (d + m - a) z + m*d``: heavy-ball SGD
    on an unsupported weight under coupled L2 (``a = 2*eta*l2``) with the
    weight scaled by ``d`` before each step (Keras' decoupled decay)."""
    b, c = d + m - a, m * d
    disc = b * b - 4.0 * c
    if disc < 0:
        return math.sqrt(c)
    root = math.sqrt(disc)
    return max(abs((b + root) / 2.0), abs((b - root) / 2.0))


def halving_steps(shrink: float) -> float | None:
    """Steps for an unsupported weight to halve when each step multiplies it
    by ``1 - shrink``: ``ln 2 / -ln(1 - shrink)`` (``ln 2 / shrink`` only
    while the shrink is small); None from a shrink of 1, where a step
    overshoots zero instead.

    >>> round(halving_steps(0.5), 3), round(halving_steps(0.01), 1), halving_steps(1.5)
    (1.0, 69.0, None)
    """
    if shrink <= 0 or shrink >= 1:
        return None
    return math.log(2) / -math.log1p(-shrink)


def ftrl_l2_scale_at_start(opt) -> float | None:
    """What Ftrl's own ``l2_regularization_strength`` does to a weight at the
    start: Keras' Ftrl (``keras/src/optimizers/ftrl.py``) sets each weight to
    ``-(z - sign(z)*l1) / ((beta + n**-p)/lr + 2*l2)``, ``n`` the sum of
    squared gradients from ``initial_accumulator_value`` and ``p`` the
    ``learning_rate_power``, so the L2 scales it by
    ``1/(1 + 2*l2*lr/(beta + n**-p))`` against Ftrl without it, most at the
    start (0.0307 on fixtures/keras_optimizers/ftrl_l2.keras; Keras' own
    one-step ratio 0.0321). None without an L2 or the settings.

    >>> from reglint.model import LearningRate, Optimizer
    >>> opt = Optimizer("Ftrl", LearningRate(initial=0.1), config={"l2_regularization_strength": 50.0,
    ...                 "initial_accumulator_value": 0.1, "learning_rate_power": -0.5})
    >>> round(ftrl_l2_scale_at_start(opt), 4)
    0.0307
    """
    l2 = opt.own_penalties().get("l2_regularization_strength")
    rate = opt.learning_rate
    lr = (rate.peak or rate.initial) if rate is not None else None
    n0, power = opt.config.get("initial_accumulator_value"), opt.config.get("learning_rate_power")
    beta = opt.config.get("beta") or 0.0
    if not (l2 and lr and isinstance(n0, (int, float)) and n0 > 0 and isinstance(power, (int, float))):
        return None
    return 1.0 / (1.0 + 2.0 * l2 * lr / (beta + n0 ** -power))
