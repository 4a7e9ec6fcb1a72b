"""# l1-step-exceeds-weights (RL004)

## What it does
For L1 penalties under SGD, compares the distance the penalty moves every
weight toward zero each step, ``a = eta*l1/(1-b)``, with the typical weight
magnitude of the same tensor (mean |w| at the saved weights, else at
initialisation).

## Why is this bad?
The L1 gradient is ``l1*sign(w)``: constant size, whatever the weight. Plain
(sub)gradient descent never lands on exactly zero; each weight the data
does not hold up ends jittering in a band of +-a around zero. When ``a`` is
a sizeable fraction of the typical weight, every step kicks typical
weights across zero: the layer does not become sparse, it becomes noise
(a run with Keras 3.15: digits MLP with L1(1.0) at lr 0.05 ended at a data
loss of 5.05, worse than chance).

## Example
``SGD(0.5)`` with ``L1(0.05)`` on a 64x32 glorot kernel: ``a = 0.025``
against a mean |w| of 0.13.

## Use instead
A smaller ``l1`` (``l1 <= target*mean|w|*(1-b)/eta``), or a proximal /
truncated-gradient update (Langford et al. 2009; Duchi & Singer 2009) if
real sparsity is the goal.

## Fix
Aim: an L1 step of half the warning ratio times the mean |w| per step:
``lambda1 = (warning/2) * mean|w| * (1-b) / eta`` for each flagged tensor.

## Options
- ``l1-step-error`` (default 1.0): a / mean|w| at which RL004 is an error.
- ``l1-step-warning`` (default 0.1): a / mean|w| at which it is a warning.

## Formula
``a = eta_peak * l1 / (1 - b)``; ratio ``a / mean|w|``. Survival condition
(KKT): a weight stays non-zero only if ``|dL/dw| > l1`` on average.

## Thresholds and calibration
At ratio 1 a typical weight crosses zero every step (exact). The warning
level comes from the calibration grid (bench/CALIBRATION.md).

Biases and BatchNorm/LayerNorm beta are left out: they start at zero, so
their mean |w| at the saved weights says how far training has moved them
(about 1e-9 after one step with L1 under SGD: an error at any lambda, on a
file whose untrained twin had no finding), not a scale the L1 kick can be
compared with; an L1 penalty on them is RL008's finding.

## References
- Tsuruoka, Tsujii & Ananiadou, ACL 2009 (cumulative L1 penalty).
- Langford, Li & Zhang, JMLR 2009 (truncated gradient); Duchi & Singer, JMLR 2009 (FOBOS).
"""

from __future__ import annotations

from reglint.engine.finding import Change, Fix, Severity, lambda_parameter
from reglint.engine.fmt import g
from reglint.engine.rule import Option, Rule
from reglint.estimate.init_scale import expected_sum_abs


class L1StepExceedsWeights(Rule):
    code = "RL004"
    name = "l1-step-exceeds-weights"
    severity = Severity.WARNING
    summary = "Each SGD step moves weights by an L1 kick comparable to their size: they jitter, not sparsify."
    per_optimizer_group = True  # each MultiOptimizer group with its own settings
    predicts_outcome = True
    options = {
        "l1-step-error": Option(1.0, "L1 step / mean |w| at which RL004 is an error"),
        "l1-step-warning": Option(0.1, "L1 step / mean |w| at which RL004 is a warning"),
    }

    def check(self, model, analysis):
        dyn = analysis.dynamics
        for p in analysis.lead_penalties:
            if not p.active or not p.l1 or p.offset:  # biases and beta: see Thresholds
                continue
            step = dyn.l1_step(p.l1)
            mean_abs = _mean_abs(p)
            if step is None or not mean_abs:
                continue
            ratio = step / mean_abs
            if ratio < self.thresholds["l1-step-warning"]:
                continue
            severity = Severity.ERROR if ratio >= self.thresholds["l1-step-error"] else Severity.WARNING
            safe = 0.5 * self.thresholds["l1-step-warning"] * mean_abs * (1 - dyn.momentum) / dyn.lr
            yield self.finding(
                f"{p.variable.name}: L1 {g(p.l1)} at lr {g(dyn.lr)} moves every weight {g(step)} toward zero "
                f"per step, {g(ratio, 2)}x the mean |w| of {g(mean_abs)}: weights jitter around zero "
                f"instead of becoming sparse",
                layer=p.layer.path, target=p.variable.name, severity=severity,
                remedy=f"use L1 <= {g(safe)} at this learning rate, or a proximal L1 update",
                fix=Fix(f"an L1 step of {g(0.5 * self.thresholds['l1-step-warning'], 2)}x the mean |w| per step",
                        (Change(lambda_parameter(p.l1, p.l2, "l1"), p.l1, safe, layer=p.layer.path,
                                target=p.variable.name),)),
                values={"l1_step_ratio": ratio, "l1_step": step, "mean_abs_weight": mean_abs,
                        "lambda": p.l1, "learning_rate": dyn.lr, "safe_lambda": safe, "params": p.n},
            )


def _mean_abs(p) -> float | None:
    stats = p.variable.stats
    if stats is not None and stats.count and stats.mean_abs > 0 and not stats.nonfinite:
        return stats.mean_abs
    expected = expected_sum_abs(p.variable)
    return expected / p.n if expected else None
