"""# sgd-l2-unstable (RL002)

## What it does
For models trained with SGD (with or without momentum, Nesterov or not),
checks whether a coupled L2 penalty alone uses up the optimizer's stability
budget: ``f = 2*eta*lambda / S`` with ``S = 2(1+b)`` for heavy-ball momentum
b (``2(1+b)/(1+2b)`` for Nesterov). The learning rate is the schedule's peak.

## Why is this bad?
An L2 penalty is a quadratic with curvature ``2*lambda``. Gradient descent on
it is stable only while ``eta * curvature < S``. At ``f >= 1`` the penalty
alone makes every weight oscillate with growing amplitude and training
diverges whatever the data says; well before that the penalty leaves the
data loss only ``1 - f`` of the step-size budget, and past
``2*eta*lambda > 1`` (plain SGD) weights flip sign every step.

## Example
``SGD(learning_rate=0.5, momentum=0.9)`` with ``L2(5.0)``: ``2*0.5*5 = 5``
against ``S = 3.8``, so ``f = 1.3``: diverges.

## Use instead
``lambda < f_target * S / (2*eta)`` (reglint prints it), a smaller learning
rate, or decoupled ``weight_decay`` (whose per-step shrink ``eta*wd`` does
not pass through momentum).

## Options
- ``sgd-stability-error`` (default 1.0): fraction of the budget at which RL002 is an error.
- ``sgd-stability-warning`` (default 0.5): fraction at which it is a warning.

## Fix
Aim: the penalty's curvature at half the warning level of the budget
(``f = sgd-stability-warning / 2``): each flagged tensor's L2 becomes
``f * S / (2*eta)`` minus any coupled L2 the optimizer adds.

## Formula
Characteristic polynomial of heavy-ball momentum on curvature h:
``z^2 - (1 + b - eta*h) z + b = 0``, stable iff ``0 < eta*h < 2(1+b)``;
Nesterov: ``eta*h < 2(1+b)/(1+2b)``. Coupled L2 from the optimizer itself
(PyTorch-style ``weight_decay`` in an ONNX graph) adds to lambda.
The analysis is linear: with gradient clipping (Keras' ``clipnorm``,
``clipvalue``, ``global_clipnorm``) the step stops growing with ``w`` once
the gradient reaches the clip, so the weights swing about zero in a bounded
band and do not diverge; the finding is then at most a warning
(``reglint.estimate.clipping``: Keras' clipnorm 1 at ``f = 1.3`` never grew
the kernel past its saved norm in 200 steps, the unclipped twin overflowed;
fixtures/keras_optimizers/clipnorm_sgd.keras). A clip loose enough to let
the weights grow past twice their saved norm first (clipnorm 100 there:
37x in Keras) leaves the error, with the growth the simulation gives.
Under mixed precision
Keras' LossScaleOptimizer skips the steps whose gradient overflows, so the
weights stay finite while the loss turns NaN and training stalls (review
34: 5 of 80 steps applied, loss scale 8.7e-19); still an error.

## Thresholds and calibration
``f = 1`` is the exact linear-stability boundary, verified by running Keras
(b=0.9: ``eta*h`` = 3.7 converged, 3.9 diverged; Nesterov 1.30 converged,
1.40 diverged, runs with Keras 3.15). The warning level is set from the
calibration grid (bench/CALIBRATION.md).

## References
- Polyak 1964; Goh, "Why Momentum Really Works", Distill 2017 (stability region).
- Keras ``keras/src/optimizers/sgd.py`` (heavy-ball and Nesterov updates).
"""

from __future__ import annotations

from reglint.engine.finding import Change, Fix, Severity
from reglint.engine.fmt import g, pct
from reglint.engine.measured import static_finding, static_said
from reglint.engine.rule import Option, Rule
from reglint.engine.sweep import Curve
from reglint.estimate.clipping import clip_of, penalty_motions


def stability_limit(momentum: float, nesterov: bool) -> float:
    """S, the largest eta*curvature heavy-ball (or Nesterov) momentum survives."""
    return 2.0 * (1.0 + momentum) / (1.0 + 2.0 * momentum) if nesterov else 2.0 * (1.0 + momentum)


class SgdL2Unstable(Rule):
    code = "RL002"
    name = "sgd-l2-unstable"
    severity = Severity.ERROR
    summary = "Under SGD the L2 curvature 2*lambda uses up the step-size stability budget."
    predicts_outcome = True
    per_optimizer_group = True  # each MultiOptimizer SGD group with its own learning rate and momentum
    options = {
        "sgd-stability-error": Option(1.0, "share of the SGD stability budget at which RL002 is an error"),
        "sgd-stability-warning": Option(0.5, "share of the SGD stability budget at which RL002 is a warning"),
    }

    def safe_l2(self, lr: float, limit: float, coupled: float = 0.0) -> float:
        """The L2 factor whose curvature uses half the warning share of the budget."""
        return max(0.0, 0.5 * self.thresholds["sgd-stability-warning"] * limit / (2 * lr) - coupled)

    def fix(self, items: list[tuple[str, str, float]], lr: float, limit: float, coupled: float = 0.0) -> Fix:
        """``items``: (layer, tensor, current L2)."""
        safe = self.safe_l2(lr, limit, coupled)
        aim = f"the L2 curvature at {pct(0.5 * self.thresholds['sgd-stability-warning'])} of the stability budget"
        return Fix(aim, tuple(Change("lambda", l2, safe, layer=layer, target=tensor) for layer, tensor, l2 in items))

    def sweep(self, model, analysis):
        dyn = analysis.dynamics
        l2s = [p.l2 for p in analysis.lead_penalties if p.active and p.l2]
        layers = tuple(dict.fromkeys(p.layer.path for p in analysis.lead_penalties if p.active and p.l2))
        if dyn.family != "sgd" or dyn.lr is None or not l2s:
            return []
        l2_max, limit = max(l2s), dyn.stability_limit
        slope, offset = 2 * dyn.lr * l2_max / limit, 2 * dyn.lr * dyn.coupled_l2 / limit
        fires = self.level(slope + offset, "sgd-stability-warning", "sgd-stability-error") is not None
        fix = self.safe_l2(dyn.lr, limit, dyn.coupled_l2) / l2_max if fires else None
        return [Curve(self.code, "stability_fraction",
                      "f = 2*lr*lambda/S for the largest L2 (share of the SGD stability budget)", "lambda",
                      slope=slope, offset=offset, warning=self.thresholds["sgd-stability-warning"],
                      error=self.thresholds["sgd-stability-error"], fix=fix, lambdas=(l2_max,), layers=layers)]

    def check(self, model, analysis):
        dyn = analysis.dynamics
        if dyn.family != "sgd" or dyn.lr is None:
            return
        clip = clip_of(model.optimizer)
        for p in analysis.lead_penalties:
            if not p.active or not (p.l2 or dyn.coupled_l2):
                continue
            f = dyn.l2_stability_fraction(p.l2)
            severity = self.level(f, "sgd-stability-warning", "sgd-stability-error")
            if severity is None:
                continue
            limit = dyn.stability_limit
            safe = self.safe_l2(dyn.lr, limit, dyn.coupled_l2)
            method = "Nesterov" if dyn.nesterov else ("momentum " + g(dyn.momentum) if dyn.momentum else "plain SGD")
            outcome = "diverges" if f >= 1 else f"leaves the data loss {pct(1 - f)} of the budget"
            if f >= 1 and clip is None and (model.optimizer.config or {}).get("loss_scale_optimizer"):
                # mixed precision: the LossScaleOptimizer skips every step whose gradient overflows
                outcome += (" (under mixed precision's LossScaleOptimizer the overflowing steps are skipped and the "
                            "loss scale falls: the loss turns NaN and training stalls)")
            if clip is not None:  # the step stops growing with w once the gradient reaches the clip
                motion = penalty_motions(analysis, clip, binding=False).get(id(p.variable))
                severity, outcome = _clipped(clip, motion, f, severity, outcome)
            yield self.finding(
                f"{p.variable.name}: 2 x lr {g(dyn.lr)} x L2 {g(p.l2 + dyn.coupled_l2)} = "
                f"{g(2 * dyn.lr * (p.l2 + dyn.coupled_l2))} against the {method} stability limit {g(limit)} "
                f"(f = {g(f, 2)}): the penalty alone {outcome}",
                layer=p.layer.path, target=p.variable.name, severity=severity,
                remedy=f"use L2 <= {g(safe)} at this learning rate, or a smaller learning rate",
                fix=self.fix([(p.layer.path, p.variable.name, p.l2)], dyn.lr, limit, dyn.coupled_l2),
                values={"stability_fraction": f, "lambda": p.l2, "learning_rate": dyn.lr,
                        "momentum": dyn.momentum, "stability_limit": limit, "safe_lambda": safe,
                        "params": p.n},
            )

    def check_measured(self, result, report):
        """A short run that diverged with ``f >= warning`` for some coupled L2:
        the penalty's curvature is the cause."""
        opt = result.optimizer
        if not opt or opt.get("family") != "sgd" or not opt.get("stepped"):
            return
        lr = opt.get("learning_rate_peak") or opt.get("learning_rate")
        if not lr:
            return
        momentum, nesterov = float(opt.get("momentum") or 0.0), bool(opt.get("nesterov"))
        limit = stability_limit(momentum, nesterov)
        outcome = result.outcome
        diverged = outcome.label == "diverged"
        for row in result.variables:
            l2 = (row.regularizer or {}).get("l2") or 0.0
            if not l2:
                continue
            f = 2.0 * lr * l2 / limit
            found = static_finding(report, self.code, layer=row.layer, target=row.variable)
            static = found.severity if found else None
            values = {"stability_fraction": f, "lambda": l2, "learning_rate": lr, "momentum": momentum,
                      "stability_limit": limit, "outcome": outcome.label, "diverged_at": outcome.diverged_at,
                      "data_loss_initial": outcome.data_loss_initial, "data_loss_final": outcome.data_loss_final,
                      "steps": len(result.trajectory)}
            product = (f"2 x lr {g(lr)} x L2 {g(l2)} = {g(2 * lr * l2)} against the stability limit {g(limit)} "
                       f"(f = {g(f, 2)})")
            if diverged and self.level(f, "sgd-stability-warning") is not None:
                safe = self.safe_l2(lr, limit)
                yield self.finding(
                    f"measured: the run diverged ({outcome.reason}); {product}: the penalty's curvature is the "
                    f"cause; {static_said(static, Severity.ERROR)}",
                    severity=Severity.ERROR, layer=row.layer, target=row.variable, measured=True,
                    remedy=f"use L2 <= {g(safe)} at this learning rate, or a smaller learning rate",
                    fix=self.fix([(row.layer, row.variable, l2)], lr, limit),
                    values={**values, "safe_lambda": safe})
            elif not diverged and static is Severity.ERROR:
                yield self.finding(
                    f"measured: no divergence in {len(result.trajectory)} steps {result.start.phrase} "
                    f"({outcome.label}: {outcome.reason}) although {product}: the static error (listed beside "
                    f"this) is not reproduced over this short run; a longer one, or other batches, may still "
                    f"diverge",
                    severity=Severity.INFO, layer=row.layer, target=row.variable, values=values, measured=True)


# how far past its saved norm a clipped tensor may swing and still count as
# held by the clip: Keras' clipnorm 1 kept the fixture's kernel under its
# saved norm (1.0x), clipnorm 100 let it reach 37x (review 36, D2)
BOUNDED_GROWTH = 2.0


def _clipped(clip, motion, f: float, severity, outcome: str):
    """(severity, outcome) under gradient clipping, from the simulated
    penalty-alone run (``estimate.clipping.penalty_motions``): a clip that
    holds the weights within ``BOUNDED_GROWTH`` of their saved norm makes the
    finding a warning; a looser one only caps how far they grow."""
    if motion is None:
        return severity, outcome
    if motion.growth <= BOUNDED_GROWTH:
        return Severity.WARNING, (("would diverge in the linear analysis, but " if f >= 1 else f"{outcome}; ")
                                  + f"{clip.text} caps each step's gradient, so the weights stay in a bounded band "
                                    f"about zero instead of {'diverging' if f >= 1 else 'growing'} "
                                    f"(estimate.clipping)")
    return severity, (f"{outcome}: {clip.text} binds only once the weights have grown to about "
                      f"{g(motion.growth, 2)}x their saved norm (estimate.clipping)")
