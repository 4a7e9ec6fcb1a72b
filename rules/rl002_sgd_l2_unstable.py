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

## Formula
Characteristic polynomial of heavy-ball momentum on curvature h:
``z^2 - (1 + b - eta*h) z + b = 0``, stable iff ``0 < eta*h < 2(1+b)``;
Nesterov: ``eta*h < 2(1+b)/(1+2b)``. Coupled L2 from the optimizer itself
(PyTorch-style ``weight_decay`` in an ONNX graph) adds to lambda.

## Thresholds and calibration
``f = 1`` is the exact linear-stability boundary, verified by running Keras
(b=0.9: ``eta*h`` = 3.7 converged, 3.9 diverged; Nesterov 1.30 converged,
1.40 diverged; theory section 4.1). The warning level is set from the
calibration grid (bench/CALIBRATION.md).

## References
- Polyak 1964; Goh, "Why Momentum Really Works", Distill 2017 (stability region).
- Keras ``keras/src/optimizers/sgd.py`` (heavy-ball and Nesterov updates).
"""

from __future__ import annotations

from reglint.engine.finding import Severity
from reglint.engine.fmt import g, pct
from reglint.engine.rule import Option, Rule


class SgdL2Unstable(Rule):
    code = "RL002"
    name = "sgd-l2-unstable"
    severity = Severity.ERROR
    summary = "Under SGD the L2 curvature 2*lambda uses up the step-size stability budget."
    options = {
        "sgd-stability-error": Option(1.0, "share of the SGD stability budget at which RL002 is an error"),
        "sgd-stability-warning": Option(0.5, "share of the SGD stability budget at which RL002 is a warning"),
    }

    def check(self, model, analysis):
        dyn = analysis.dynamics
        if dyn.family != "sgd" or dyn.lr is None:
            return
        for p in analysis.penalties:
            if not p.active or not (p.l2 or dyn.coupled_l2):
                continue
            f = dyn.l2_stability_fraction(p.l2)
            if f is None or f < self.thresholds["sgd-stability-warning"]:
                continue
            severity = Severity.ERROR if f >= self.thresholds["sgd-stability-error"] else Severity.WARNING
            limit = dyn.stability_limit
            safe = 0.5 * self.thresholds["sgd-stability-warning"] * limit / (2 * dyn.lr)
            method = "Nesterov" if dyn.nesterov else ("momentum " + g(dyn.momentum) if dyn.momentum else "plain SGD")
            outcome = "diverges" if f >= 1 else f"leaves the data loss {pct(1 - f)} of the budget"
            yield self.finding(
                f"{p.variable.name}: 2 x lr {g(dyn.lr)} x L2 {g(p.l2 + dyn.coupled_l2)} = "
                f"{g(2 * dyn.lr * (p.l2 + dyn.coupled_l2))} against the {method} stability limit {g(limit)} "
                f"(f = {g(f, 2)}): the penalty alone {outcome}",
                layer=p.layer.path, target=p.variable.name, severity=severity,
                remedy=f"use L2 <= {g(safe)} at this learning rate, or a smaller learning rate",
                values={"stability_fraction": f, "lambda": p.l2, "learning_rate": dyn.lr,
                        "momentum": dyn.momentum, "stability_limit": limit, "safe_lambda": safe,
                        "params": p.n},
            )
