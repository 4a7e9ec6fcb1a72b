"""# inconsistent-lambdas (RL011)

## What it does
Compares the L2 (and separately L1) factors on the kernels of one model and
reports when the largest is more than ``lambda-spread`` times the smallest.

## Why is this bad?
Usually it is a copy-paste slip (1e-2 where 1e-4 was meant) or a layer
added later with a different default (Keras' ``"l2"`` string means 0.01).
Per-weight, the gradient ``2*lambda*w`` does not depend on the layer's size,
so there is rarely a reason for two kernels of one model to differ by
orders of magnitude; the finding names both layers so the intent can be
checked.

## Example
Three Dense layers with ``L2(1e-5)``, ``L2(1e-2)`` and ``L2(1e-4)``.

## Use instead
One lambda for all kernels, or a documented reason (an ignore with a
reason in ``[tool.reglint]``).

## Fix
Aim: one factor for every kernel: the fix brings the largest kernel factor
down to the smallest (keep the difference only if it is deliberate).

## Options
- ``lambda-spread`` (default 100): ratio of largest to smallest factor that triggers the finding.

## Formula
``max(lambda) / min(lambda)`` over active kernel regularizers of one kind.

## Thresholds and calibration
Two orders of magnitude: informational, not calibrated against outcomes.

## References
- Keras ``keras/src/regularizers/__init__.py`` (string shortcuts default to 0.01).
"""

from __future__ import annotations

from reglint.engine.finding import Change, Fix, Severity
from reglint.engine.fmt import g
from reglint.engine.rule import Option, Rule


class InconsistentLambdas(Rule):
    code = "RL011"
    name = "inconsistent-lambdas"
    severity = Severity.INFO
    summary = "Kernel lambdas of one model differ by orders of magnitude."
    options = {"lambda-spread": Option(100.0, "largest / smallest kernel lambda that triggers RL011")}

    def check(self, model, analysis):
        for kind in ("l2", "l1"):
            pairs = [(getattr(p, kind), p) for p in analysis.penalties
                     if p.active and p.variable.role.is_kernel_like and getattr(p, kind) > 0]
            if len(pairs) < 2:
                continue
            low = min(pairs, key=lambda item: item[0])
            high = max(pairs, key=lambda item: item[0])
            spread = high[0] / low[0]
            if spread < self.thresholds["lambda-spread"]:
                continue
            yield self.finding(
                f"kernel {kind.upper()} factors range from {g(low[0])} ({low[1].layer.path}) to {g(high[0])} "
                f"({high[1].layer.path}), a {g(spread, 2)}x spread",
                layer=high[1].layer.path, target=f"kernel.{kind}",
                remedy="use one factor for all kernels unless the difference is deliberate",
                fix=Fix("one factor for every kernel",
                        (Change(kind, high[0], low[0], layer=high[1].layer.path, target=high[1].variable.name),)),
                values={"spread": spread, "min_lambda": low[0], "max_lambda": high[0],
                        "min_layer": low[1].layer.path})
