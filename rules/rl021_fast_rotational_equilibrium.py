"""# fast-rotational-equilibrium (RL021)

## What it does
For kernels that feed a normalization layer (BatchNormalization,
LayerNormalization, GroupNormalization; through ReLU, pooling, dropout or
reshapes), computes the angle by which decay makes them turn every step
once their norm has settled, from the learning rate, the momentum, the
coupled L2 and the optimizer's ``weight_decay``; and how many steps it
takes to settle. Errs when that angle is large enough that the kernels'
direction is noise.

## Why is this bad?
Such a kernel computes the same function at any scale, so the data
gradient is orthogonal to it and shrinks as ``1/|w|``. Decay shrinks
``|w|``; the updates grow it; the norm settles where the two balance, and
from then on each step turns the kernel by a fixed angle whatever the
data: decay sets the *effective learning rate* (van Laarhoven 2017; Zhang
et al. 2019; Wan et al. 2021; Kosson et al. 2024). ImageNet ResNets turn
about 0.003 rad per step. At a tenth of a radian per step a kernel forgets
its direction within tens of steps, and BatchNorm networks train at chance
or degrade, however small their penalty is next to the data loss (RL001
leaves these kernels out for that reason). RL009 says that such a penalty
is a learning-rate knob; this rule says when the knob is too far up.

## Example
A residual CNN (Conv -> BatchNorm blocks) with ``kernel_regularizer=L2(0.1)``
under ``SGD(0.1, momentum=0.9)``: each kernel's norm shrinks 20% a step
until it settles, after about 2.5 steps, at 0.15 rad per step.

## Use instead
Size the decay for the angle: ``L2(lambda)`` under SGD with momentum ``m``
turns scale-invariant kernels ``sqrt(4*eta*lambda/(1+m))`` rad per step.
``L2(5e-5)`` at lr 0.1 (the ImageNet recipe's weight decay 1e-4 in Keras'
convention) gives 0.003. reglint prints the lambda and weight_decay that
bring the angle under the warning level.

## Options
- ``angle-error`` (default 0.05): equilibrium angular update, in radians per step, at which RL021 is an error.
- ``angle-warning`` (default 0.02): angle at which it is a warning.

## Formula
``R`` = per-step shrink of the norm: ``2*eta*l2/(1-m)`` for Keras' coupled
L2 under SGD with momentum ``m`` (slow mode), plus ``eta*wd`` for decoupled
``weight_decay``. Random-walk balance (updates orthogonal to ``w``, the
momentum's cross terms included): ``theta = sqrt(2*R*(1-m)/(1+m))`` per
step, with ``m`` = beta_1 under Adam-family optimizers (Kosson et al.'s
``sqrt(2*eta*lambda/(1+m))`` for SGD with PyTorch's ``lambda = 2*l2``, and
``sqrt(2*eta*wd*(1-b1)/(1+b1))`` for AdamW); ``|w|^2`` relaxes to it in
``1/(2R)`` steps. Checked against a simulated scale-invariant random walk
within 1% (``tests/test_penalty_estimates.py``). A coupled L2 under an
Adam-family optimizer is normalised by the unknown data-gradient size (the
simulated angle grows as ``(lambda/s)^(1/3)``), so only the optimizer's
``weight_decay`` enters the angle there: the rule then errs on the low side.

## Thresholds and calibration
See bench/CALIBRATION.md, "modern grid".

## References
- van Laarhoven, "L2 Regularization versus Batch and Weight Normalization", 2017.
- Zhang, Wang, Xu & Grosse, "Three Mechanisms of Weight Decay Regularization", ICLR 2019.
- Wan, Zhu, Zhang & Sun, "Spherical Motion Dynamics", NeurIPS 2021.
- Kosson, Messmer & Jaggi, "Rotational Equilibrium", ICML 2024.
"""

from __future__ import annotations

from reglint.engine.finding import Severity
from reglint.engine.fmt import g
from reglint.engine.rule import Option, Rule


class FastRotationalEquilibrium(Rule):
    code = "RL021"
    name = "fast-rotational-equilibrium"
    severity = Severity.ERROR
    summary = "Decay turns scale-invariant kernels by a large angle every step: their direction becomes noise."
    options = {
        "angle-error": Option(0.05, "equilibrium angular update (rad per step) at which RL021 is an error"),
        "angle-warning": Option(0.02, "equilibrium angular update (rad per step) at which RL021 is a warning"),
    }

    def check(self, model, analysis):
        dyn = analysis.dynamics
        angles = [(dyn.equilibrium_angle(l2), layer, var, l2) for layer, var, l2 in analysis.invariant_kernels()]
        angles = [a for a in angles if a[0]]
        if not angles:
            return
        theta, layer, var, l2 = max(angles, key=lambda a: a[0])
        if theta < self.thresholds["angle-warning"]:
            return
        severity = Severity.ERROR if theta >= self.thresholds["angle-error"] else Severity.WARNING
        fast = sorted({a[1].path for a in angles if a[0] >= self.thresholds["angle-warning"]})
        settle = dyn.equilibrium_steps(l2)
        total = analysis.context.total_steps()
        when = f" of the run's {g(total)}" if total else ""
        # theta^2 is proportional to both decays: scale them by (target/theta)^2.
        scale = (0.5 * self.thresholds["angle-warning"] / theta) ** 2
        safe = [f"L2 {g(l2 * scale)}" if l2 else None,
                f"weight_decay {g(dyn.weight_decay * scale)}" if dyn.weight_decay else None]
        yield self.finding(
            f"{len(fast)} scale-invariant kernel(s) ({', '.join(fast[:3])}{'...' if len(fast) > 3 else ''}) feed a "
            f"normalization layer and decay {g(dyn.total_shrink(l2))} per step: their norm settles within about "
            f"{g(settle, 2)} steps{when}, after which each step turns them ~{g(theta, 2)} rad whatever the data",
            layer=layer.path, target=var.name, severity=severity,
            remedy=f"use {' and '.join(s for s in safe if s)} for ~{g(0.5 * self.thresholds['angle-warning'], 2)} "
                   f"rad per step, or exclude these kernels from decay",
            values={"angular_update": theta, "equilibrium_steps": settle, "shrink_per_step": dyn.total_shrink(l2),
                    "total_steps": total, "layers": fast, "lambda": l2 or None,
                    "weight_decay": dyn.weight_decay or None, "decay_scale_factor": scale})
