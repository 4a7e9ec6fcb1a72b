"""# l2-scale-invariant-kernel (RL009)

## What it does
Finds L1/L2 penalties on kernels whose output goes straight into a
normalization layer (BatchNormalization, LayerNormalization,
GroupNormalization), possibly through ReLU, dropout, pooling or reshapes,
which keep the function unchanged when the kernel is rescaled; also through
a channel ``Concatenate`` into BatchNormalizations on the same axis
(DenseNet's blocks: BatchNorm normalises each channel on its own, so each
joined input keeps its invariance; a LayerNorm after the join mixes them,
and the kernels before it are not invariant alone). Reports the per-step
shrink and the equilibrium angular update it implies; four or more layers
whose kernels carry the same regularizer are one finding that lists them.

## Why is this bad?
For such a kernel ``f(alpha*w) = f(w)``: the penalty cannot regularize the
function at all. What it does is shrink ``|w|``, which raises the effective
learning rate ``eta/|w|^2`` (van Laarhoven 2017; Zhang et al. 2019). That
can be exactly what the recipe relies on (ResNets), so this is not wrong,
but lambda then acts as a learning-rate knob and should be tuned as one;
these kernels are also left out of RL001's penalty ratio. When the knob is
turned so far that the kernels' direction becomes noise, RL021 errs.

## Example
``Conv2D(64, 3, kernel_regularizer=L2(5e-4), use_bias=False)`` followed by
``BatchNormalization()``.

## Use instead
Keep it if the schedule was tuned with it; otherwise decoupled weight decay,
whose equilibrium angular update ``sqrt(2*eta*wd)`` is easier to reason about.

## Options
None.

## Formula
Per-step norm shrink ``R = 2*eta*l2/(1-m) + eta*wd`` (coupled L2 under SGD
with momentum ``m``, plus decoupled weight decay); equilibrium angular
update per step ``theta = sqrt(2*R*(1-m)/(1+m))`` (``sqrt(4*eta*l2/(1+m))``
for Keras' L2 under SGD: Kosson, Messmer & Jaggi 2024 with PyTorch's
``lambda = 2*l2``); the norm settles in about ``1/(2R)`` steps. The
derivation and its check against a simulation are in RL021.

## Thresholds and calibration
Informational: RL021 judges the angle.

## References
- van Laarhoven, "L2 Regularization versus Batch and Weight Normalization", 2017.
- Zhang, Wang, Xu & Grosse, "Three Mechanisms of Weight Decay Regularization", ICLR 2019.
- Kosson, Messmer & Jaggi, "Rotational Equilibrium", ICML 2024.
"""

from __future__ import annotations

from reglint.engine.finding import Severity
from reglint.engine.fmt import g, lam
from reglint.engine.rule import Rule

# Alike kernels in this many layers or more are one finding listing them (as RL008 groups).
GROUP_AT = 4


class L2ScaleInvariantKernel(Rule):
    code = "RL009"
    name = "l2-scale-invariant-kernel"
    severity = Severity.INFO
    summary = "A penalty on a kernel feeding a normalization layer only changes the effective learning rate."
    per_optimizer_group = True  # each MultiOptimizer group with its own settings

    def check(self, model, analysis):
        dyn = analysis.dynamics
        groups: dict[tuple, list] = {}  # the same tensor with the same regularizer: the same dynamics
        for p in analysis.lead_penalties:
            if p.active and p.scale_invariant and (p.l1 or p.l2):
                groups.setdefault((p.variable.name, lam(p.regularizer)), []).append(p)
        for (name, _), alike in groups.items():
            p = alike[0]
            r = dyn.total_shrink(p.l2)
            theta, settle = dyn.equilibrium_angle(p.l2), dyn.equilibrium_steps(p.l2)
            angular = (f"; its norm settles in ~{g(settle, 2)} steps at an angular update of ~{g(theta, 2)} rad "
                       f"per step" if theta else "")
            values = {"lambda": p.l2 or p.l1, "shrink_per_step": r, "angular_update": theta,
                      "equilibrium_steps": settle}
            # alike kernels in GROUP_AT layers or more: one finding listing them (review 74, 4: ResNet50, 53 notes)
            many = len(alike) >= GROUP_AT
            layers = [q.layer.path for q in alike] if many else [p.layer.path]
            for q in alike if not many else alike[:1]:
                shown = (f"{name} of {len(layers)} layers ({', '.join(layers[:3])} and {len(layers) - 3} more) "
                         f"has" if many else f"{q.variable.name} has")
                yield self.finding(
                    f"{shown} {lam(q.regularizer)} but feeds a normalization layer: rescaling it leaves the "
                    f"function unchanged, so the penalty acts as a learning-rate knob: it raises the effective "
                    f"learning rate{angular} (RL021 judges the angle, and whether BatchNorm's moving statistics "
                    f"can follow it)",
                    layer=None if many else q.layer.path, target=q.variable.name,
                    remedy="tune this lambda as a learning-rate knob, or use decoupled weight_decay",
                    values={**values, "layers": layers} if many else values)
