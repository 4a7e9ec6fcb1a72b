"""# fast-rotational-equilibrium (RL021)

## What it does
For kernels that feed a normalization layer (BatchNormalization,
LayerNormalization, GroupNormalization; through ReLU, pooling, dropout or
reshapes), computes the angle by which decay makes them turn every step
once their norm has settled, from the learning rate, the momentum, the
coupled L2 and the optimizer's ``weight_decay``; and how many steps it
takes to settle. Errs when that angle is large enough that the kernels'
direction is noise. Where an optimizer's param groups differ (PyTorch,
a Keras ``MultiOptimizer``), each group's kernels are judged with its own
learning rate, momentum and decay.

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
- ``angle-error`` (default 0.3): equilibrium angular update, in radians per step, at which RL021 is an error.
- ``angle-warning`` (default 0.09): angle at which it is a warning.
- ``lag-warning`` (default 0.1): turn over BatchNorm's moving-statistics window at which it warns, constant lr.
- ``lag-warning-decayed`` (default 0.3): the same under a learning-rate schedule, at its peak.

## Formula
``R`` = per-step shrink of the norm: ``2*eta*l2/(1-m)`` for Keras' coupled
L2 under SGD with momentum ``m`` (slow mode), plus ``eta*wd`` for decoupled
``weight_decay``. Random-walk balance (updates orthogonal to ``w``, the
momentum's cross terms included): ``theta = sqrt(2*R*(1-m)/(1+m))`` per
step, with ``m`` = beta_1 under Adam-family optimizers (Kosson et al.'s
``sqrt(2*eta*lambda/(1+m))`` for SGD with PyTorch's ``lambda = 2*l2``, and
``sqrt(2*eta*wd*(1-b1)/(1+b1))`` for AdamW); ``|w|^2`` relaxes to it in
``1/(2r)`` steps, ``r`` the actual per-step contraction (for a coupled L2
under heavy-ball momentum at most ``1 - sqrt(m)``, 0.051 at m = 0.9, where
the slow-mode ``R`` overstates it). The angle was checked against a
simulated scale-invariant random walk within 2%, up to ``eta*h = 0.4``
(``tests/test_dynamics.py``). A coupled L2 under an
Adam-family optimizer is normalised by the unknown data-gradient size (the
simulated angle grows as ``(lambda/s)^(1/3)``), so only the optimizer's
``weight_decay`` enters the angle there: the rule then errs on the low side.

## Fix
Aim: half the warning angle (0.045 rad per step by default), or, where
the kernels feed a BatchNormalization whose moving statistics would still
lag at that angle, half the lag level over its window (0.05 rad over 100
steps: 0.005 rad per step at Keras' momentum 0.99), so that the fix clears
both warnings (review 49: the angle's aim alone left the lag warning).
``theta^2`` is proportional to both decays, so the coupled L2 of the
kernels concerned and the optimizer's ``weight_decay`` are both multiplied
by ``(aim/theta)^2``; the finding's ``fix.changes`` lists them.

## Thresholds and calibration
From the calibration grids (``python bench/calibrate.py report``;
bench/CALIBRATION.md): 112 runs of BatchNorm networks (Dense-BatchNorm
blocks and residual CNNs) with L2 or weight decay on kernels that feed
BatchNorm, under SGD momentum, AdamW and RMSprop. Below 0.05 rad per step
most runs are healthy (22 of 31 on the fit split; the wrecked ones there are
AdamW ``weight_decay`` 10-30 runs RL003 judges, and one fragile lr-0.1
residual group). From 0.09 up no run was healthy (26 runs: 15 degraded, 9
collapsed, 2 diverged), hence the warning at **0.09**, in the gap between
the largest healthy angle (0.081) and 0.097. Every run from 0.31 up
collapsed or diverged (5 of 5; the largest angle short of a wreck on both
splits was 0.26, where 2 of 4 residual runs collapsed and 2 degraded): error
at **0.3**. Between the two the damage depends on the data (wine stayed
healthy or degraded where digits collapsed), which ``reglint profile
--data`` measures.

## Moving statistics (a warning)
A BatchNormalization's moving mean and variance, which ``evaluate`` and
``predict`` use, average over ``W = 1/(1 - momentum)`` steps (100 at Keras'
default 0.99). Over that window a kernel at equilibrium turns about
``phi = theta*sqrt(W)`` rad (a random walk): where ``phi`` is large the
statistics describe weights the model no longer has, and a model that
trained well scores near chance. RL021 warns at ``phi >= 0.1`` under a
constant learning rate (``lag-warning``) and at ``phi >= 0.3`` at a
schedule's peak (``lag-warning-decayed``: a rate that decays at the end
lets the statistics catch up). Evidence (``bench/bn_rotation_lag.py``,
bench/CALIBRATION.md "BatchNorm's moving statistics"): a residual CNN under
SGD(0.1, momentum 0.9), L2 0 to 0.1 on its kernels, BatchNorm momentum 0.99
and 0.9, constant lr and cosine decay, two seeds (56 runs). Under a
constant lr no run at ``phi <= 0.05`` lost over 5% of its validation
margin, the two at 0.08 lost 16% and 47%, and every one of the 16 from
0.15 lost 26-98%; recomputing the statistics on the training data, the
weights unchanged, brought the L2 1e-3 and 1e-2 runs back to 0.86-0.96.
Under cosine decay none lost over 3% up to 0.15, those at 0.25 lost -1% to
24%, and every one of the 8 from 0.46 lost 17-100%. Held out, on the
modern calibration grid, it marks 44 of 394 runs: 18 harmed, 26 healthy
(9.2% of its healthy runs; 9 of 11 harmed on digits, 0 of 11 on wine): the
data decide how much a lag costs, so a warning, never an error;
``reglint profile --data`` scores the held-back slice with the moving
statistics, so it measures this.

## References
- van Laarhoven, "L2 Regularization versus Batch and Weight Normalization", 2017.
- Zhang, Wang, Xu & Grosse, "Three Mechanisms of Weight Decay Regularization", ICLR 2019.
- Wan, Zhu, Zhang & Sun, "Spherical Motion Dynamics", NeurIPS 2021.
- Kosson, Messmer & Jaggi, "Rotational Equilibrium", ICML 2024.
"""

from __future__ import annotations

from reglint.engine.finding import Change, Fix, Severity
from reglint.engine.fmt import g
from reglint.engine.rule import Option, Rule
from reglint.engine.sweep import Curve


class FastRotationalEquilibrium(Rule):
    code = "RL021"
    name = "fast-rotational-equilibrium"
    severity = Severity.ERROR
    summary = "Decay turns scale-invariant kernels by a large angle every step: their direction becomes noise."
    predicts_outcome = True
    per_optimizer_group = True  # each param group's kernels at its own learning rate and decay
    options = {
        "angle-error": Option(0.3, "equilibrium angular update (rad per step) at which RL021 is an error"),
        "angle-warning": Option(0.09, "equilibrium angular update (rad per step) at which RL021 is a warning"),
        "lag-warning": Option(0.1, "turn (rad) of BatchNorm-fed kernels over the moving statistics' window, "
                                   "theta*sqrt(1/(1-momentum)), at which RL021 warns under a constant learning rate"),
        "lag-warning-decayed": Option(0.3, "the same under a learning-rate schedule, judged at its peak"),
    }

    def sweep(self, model, analysis):
        """``theta^2 = 2*r*(1-m)/(1+m)`` is affine in the decays that make up
        ``r`` (the square of the angle: its levels squared). Under SGD the
        knob is the kernels' L2 (the largest one binds, as in ``check``);
        where only the optimizer's weight_decay acts, it is the knob."""
        dyn = analysis.dynamics
        kernels = analysis.invariant_kernels()
        if not kernels or not dyn.lr:
            return []
        c = 2.0 * (1.0 - dyn.averaging) / (1.0 + dyn.averaging)
        l2_max = max(l2 for _, _, l2 in kernels)
        warning, error = self.thresholds["angle-warning"] ** 2, self.thresholds["angle-error"] ** 2
        label = "theta^2 = 2*r*(1-m)/(1+m), the equilibrium angle squared (r: the per-step shrink)"
        if dyn.family == "sgd" and l2_max:
            slope = c * (dyn.coupled_shrink(l2_max) - (dyn.coupled_shrink(0.0) or 0.0))
            offset = c * (dyn.total_shrink(l2_max) or 0.0) - slope
            knob, lambdas = "lambda", (l2_max,)
        elif dyn.decoupled_shrink:
            slope = c * dyn.decoupled_shrink
            offset = c * (dyn.coupled_shrink(0.0) or 0.0) if dyn.family == "sgd" else 0.0
            knob, lambdas = "weight_decay", (dyn.weight_decay,)
        else:
            return []
        today = slope + offset
        fires = today >= warning
        # the fix scales every decay by (aim/theta)^2 (see fix): theta^2 lands at aim^2, or lower
        # where BatchNorm's moving statistics need it (check's scale, the same number)
        fix = (0.5 * self.thresholds["angle-warning"]) ** 2 / today if fires else None
        if fix is not None:
            angles = [(a, layer, var, l2) for layer, var, l2 in kernels if (a := dyn.equilibrium_angle(l2))]
            lag = self.statistics_lag(model, analysis, angles) if angles else None
            if lag is not None:
                fix = min(fix, lag.values["decay_scale_factor"])
        layers = tuple(dict.fromkeys(layer.path for layer, _, _ in kernels)) if knob == "lambda" else ()
        # its fix lowers the optimizer's weight_decay too where one is set: a finding about the optimizer
        about = () if dyn.weight_decay else None
        return [Curve(self.code, "angle_squared", label, knob, slope=slope, offset=offset, warning=warning,
                      error=error, fix=fix, lambdas=lambdas, layers=layers, about=about)]

    def check(self, model, analysis):
        dyn = analysis.dynamics
        angles = [(dyn.equilibrium_angle(l2), layer, var, l2) for layer, var, l2 in analysis.invariant_kernels()]
        angles = [a for a in angles if a[0]]
        if not angles:
            return
        theta, layer, var, l2 = max(angles, key=lambda a: a[0])
        lag = self.statistics_lag(model, analysis, angles)
        if theta < self.thresholds["angle-warning"]:
            if lag is not None:
                yield lag
            return
        severity = Severity.ERROR if theta >= self.thresholds["angle-error"] else Severity.WARNING
        fast = sorted({a[1].path for a in angles if a[0] >= self.thresholds["angle-warning"]})
        settle = dyn.equilibrium_steps(l2)
        total = analysis.context.total_steps()
        when = f" of the run's {g(total)}" if total else ""
        aim = 0.5 * self.thresholds["angle-warning"]
        scale = (aim / theta) ** 2  # theta^2 is proportional to both decays
        members = [a for a in angles if a[0] >= self.thresholds["angle-warning"]]
        if lag is not None and lag.values["decay_scale_factor"] < scale:
            # BatchNorm's moving statistics need a slower turn than the angle's aim: a fix at the
            # angle's aim alone left the lag warning (review 49, 2), so the fix meets both
            scale = lag.values["decay_scale_factor"]
            aim = theta * scale ** 0.5
            lagging = set(lag.values["layers"])
            members += [a for a in angles if a[1].path in lagging and a not in members]
        fix = self.fix(members, dyn.weight_decay, scale, aim, group=analysis.group_name())
        yield self.finding(
            f"{len(fast)} scale-invariant kernel(s) ({', '.join(fast[:3])}{'...' if len(fast) > 3 else ''})"
            f"{analysis.group_text()} feed a "
            f"normalization layer and shrink {g(dyn.contraction(l2))} per step: their norm settles within about "
            f"{g(settle, 2)} steps{when}, after which each step turns them ~{g(theta, 2)} rad whatever the data",
            layer=layer.path, target=var.name, severity=severity, fix=fix,
            remedy=f"{fix.describe()} for ~{g(aim, 2)} rad per step, or exclude these kernels from decay",
            values={"angular_update": theta, "equilibrium_steps": settle, "shrink_per_step": dyn.contraction(l2),
                    "slow_mode_shrink": dyn.total_shrink(l2),
                    "total_steps": total, "layers": fast, "lambda": l2 or None,
                    "weight_decay": dyn.weight_decay or None, "decay_scale_factor": scale,
                    "param_group": (analysis.judged_groups() or [None])[0]})

    def statistics_lag(self, model, analysis, angles):
        """The warning for kernels whose BatchNorm's moving statistics cannot
        follow them: each turns ``theta`` rad per step at equilibrium and the
        statistics average over ``W = 1/(1 - momentum)`` steps, over which it
        turns about ``phi = theta*sqrt(W)``; evaluation (``evaluate``,
        ``predict``) then normalizes with statistics of other weights (review
        42, 1). None under the level for the schedule."""
        schedule = model.optimizer.learning_rate.schedule if model.optimizer and model.optimizer.learning_rate \
            else None
        level = self.thresholds["lag-warning-decayed" if schedule else "lag-warning"]
        lagging = []
        for theta, layer, var, l2 in angles:
            momentum = _statistics_momentum(analysis, layer)
            if momentum is not None:
                phi = theta * (1.0 / (1.0 - momentum)) ** 0.5
                if phi >= level:
                    lagging.append((phi, momentum, theta, layer, var, l2))
        if not lagging:
            return None
        phi, momentum, theta, layer, var, l2 = max(lagging, key=lambda a: a[0])
        aim = 0.5 * level
        scale = (aim / phi) ** 2  # phi^2, like theta^2, is proportional to the decays
        fix = self.fix([(a[2], a[3], a[4], a[5]) for a in lagging], analysis.dynamics.weight_decay, scale,
                       aim * (1.0 - momentum) ** 0.5, group=analysis.group_name())
        paths = sorted({a[3].path for a in lagging})
        rate = f"the {schedule} schedule's peak learning rate" if schedule else "a constant learning rate"
        return self.finding(
            f"{len(paths)} kernel(s) feeding BatchNormalization ({', '.join(paths[:3])}"
            f"{'...' if len(paths) > 3 else ''}){analysis.group_text()} turn ~{g(theta, 2)} rad per step at "
            f"{rate} once their norm settles; the moving statistics average over {g(1 / (1 - momentum))} steps "
            f"(momentum {g(momentum)}), over which the kernels turn ~{g(phi, 2)} rad: evaluate() and predict() "
            f"normalize with statistics of weights the model no longer has, and can score near chance although "
            f"training went well",
            layer=layer.path, target=var.name, severity=Severity.WARNING, fix=fix,
            remedy=(f"{fix.describe()}; or recompute the BatchNorm statistics on training data before evaluating, "
                    f"a lower BatchNorm momentum, or a learning rate that decays at the end"),
            values={"angular_update": theta, "statistics_turn": phi, "bn_momentum": momentum,
                    "statistics_window": 1 / (1 - momentum), "schedule": schedule, "layers": paths,
                    "lambda": l2 or None, "decay_scale_factor": scale,
                    "param_group": (analysis.judged_groups() or [None])[0]})

    @staticmethod
    def fix(angles, weight_decay: float, scale: float, aim: float, group: str | None = None) -> Fix:
        """``group``: ``param group N`` where the optimizer's groups differ
        (the weight_decay to change is that group's)."""
        changes = {(layer.path, var.name): Change("lambda", l2, l2 * scale, layer=layer.path,
                                                         target=var.name.split("/")[-1])
                   for _, layer, var, l2 in angles if l2}
        if weight_decay:
            changes[("", "weight_decay")] = Change("weight_decay", weight_decay, weight_decay * scale, layer=group)
        return Fix(f"an equilibrium angle of {g(aim, 2)} rad per step", tuple(changes.values()))


# Layers a kernel's output passes through unchanged in kind on its way to a
# BatchNormalization (the batch statistics then see the same rotation).
_PASS = {"Activation", "ReLU", "LeakyReLU", "ELU", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
         "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
         "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Reshape", "Flatten"}


def _statistics_momentum(analysis, layer) -> float | None:
    """The momentum of the trainable BatchNormalization ``layer`` feeds
    (directly or through an activation, dropout, pooling or reshape), where
    its moving statistics are updated in training (not a frozen one); the
    slowest where it feeds several."""
    found = []
    for nxt in analysis.consumers(layer):
        ahead = [nxt] + (analysis.consumers(nxt) if nxt.class_name in _PASS else [])
        for norm in ahead:
            momentum = norm.config.get("momentum") if isinstance(norm.config, dict) else None
            if (norm.class_name in ("BatchNormalization", "SyncBatchNormalization") and norm.trainable
                    and isinstance(momentum, (int, float)) and 0 <= momentum < 1):
                found.append(float(momentum))
    return max(found) if found else None
