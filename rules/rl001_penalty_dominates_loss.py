"""# penalty-dominates-loss (RL001)

## What it does
Adds up the weight penalties the model's regularizers produce at a fresh
initialisation and compares the sum with the typical scale of the data loss
(the loss of a chance-level predictor: ``ln C`` for C-class cross-entropy,
``ln 2`` for binary, the target variance for MSE). Reports the ratio, each
layer's share, and the lambda that would bring the ratio under the warning
threshold.

## Why is this bad?
Keras adds the plain sum of the penalties to the batch-mean data loss
(``L2`` is ``lambda * sum(w**2)``, no 1/2, no division by the number of
weights or examples). The penalty therefore grows with the layer's width
while the data loss does not. Once the penalty at initialisation-scale
weights is as large as the whole data loss, the trivial solution (kernels at
zero, predictions at chance) scores better than any fit whose weights are
of the size training needs; the network collapses to chance, or spends its
training shrinking weights instead of learning (CS231n: "don't let the
regularization overwhelm the data").

This is also the answer to "should lambda shrink as the model grows?": the
per-weight gradient ``2*lambda*w`` does not depend on the weight count, but
the total penalty does (for glorot kernels it grows with the harmonic-mean
width ``2*c_in*c_out/(c_in+c_out)``), against a data loss that does not.
``reglint explain`` shows the decomposition per layer.

## Example
A 784-512-512-10 MLP with ``kernel_regularizer=L2(0.01)`` (Keras' ``"l2"``
shortcut) on every layer: sum(w^2) at init is about 1160, so the penalty is
11.6 against ln 10 = 2.30, five times the data loss: a warning (such runs
mostly ended degraded in calibration). ``L2(0.05)`` makes it 25x: an error.

## Use instead
``L2(1e-3)`` or less for that model (reglint prints the exact value for
yours), or decoupled ``weight_decay`` in the optimizer.

## Options
- ``penalty-ratio-error`` (default 18): ratio at which the finding is an error.
- ``penalty-ratio-warning`` (default 5): ratio at which it is a warning.
- Context: ``--loss-scale``, ``--classes``, ``--target-var`` refine the data-loss scale.

## Formula
``rho = sum_t E[P_t(w_init)] / L_chance`` over trainable, regularized tensors
that can pull the function toward zero: a kernel feeding a normalization
layer can shrink freely without changing the function (RL009 covers it), and
a normalization layer's gamma/beta hand their scale to the layers after them
(RL008 covers those). ``E[sum w^2] = n * Var(w)`` with Keras'
VarianceScaling variances; L1 uses ``E[sum |w|]``. The suggested lambda is
``lambda * min(1, warning/2) / rho``: the penalty at most the data loss.

## Thresholds and calibration
``rho = 1`` is the break-even of the MAP argument (theory section 6), but
training does not collapse there: the data gradient grows as the weights
learn, and how far it can hold the penalty off depends on the data. On the
calibration grid (``python bench/calibrate.py report``, 678 real trainings;
bench/CALIBRATION.md) the highest rho of a healthy run on the fit split
(digits, breast cancer, diabetes) is 15.1; from 15.9 to 18.6 runs
collapsed or lost R^2 (degraded), and from 18.7 every run collapsed. Error
at **18**: no healthy fit run above it; on the held-out datasets (wine, a
20-class synthetic set) it flags wrecked runs with 98% precision and 0.6%
false alarms on healthy ones. Warning at **5**: on
the fit split 90% of runs with rho >= 5.3 ended degraded or worse. Below
18 a collapse is possible on hard data (the 20-class set collapsed from rho
3.9; breast cancer was healthy at 12.3), which no file can tell: run
``reglint profile --data`` to measure it on yours.

## References
- Keras ``keras/src/regularizers/regularizers.py`` (L1, L2 definitions) and
  ``keras/src/trainers/trainer.py::compute_loss`` (penalties summed).
- CS231n, "Neural Networks Part 3": "Don't let the regularization overwhelm the data".
- Bishop, PRML §3.3; MacKay 1992 (the MAP view: lambda = 1/(2 sigma^2 N)).
"""

from __future__ import annotations

from reglint.engine.finding import Severity
from reglint.engine.fmt import g, pct
from reglint.engine.rule import Option, Rule


def remedy_ratio(warning: float) -> float:
    """The penalty ratio RL001's suggested lambda lands at: half the warning
    level, and never above break-even with the data loss."""
    return min(1.0, 0.5 * warning)


class PenaltyDominatesLoss(Rule):
    code = "RL001"
    name = "penalty-dominates-loss"
    severity = Severity.ERROR
    summary = "The weight penalty at initialisation rivals or exceeds the data loss."
    options = {
        "penalty-ratio-error": Option(18.0, "penalty / data-loss scale at which RL001 is an error"),
        "penalty-ratio-warning": Option(5.0, "penalty / data-loss scale at which RL001 is a warning"),
    }

    def check(self, model, analysis):
        penalties = [p for p in analysis.active_penalties() if p.penalty is not None]
        if not penalties:
            return
        loss = analysis.loss_scale
        total = sum(p.penalty for p in penalties)
        rho = total / loss.value
        error_at = self.thresholds["penalty-ratio-error"]
        warn_at = self.thresholds["penalty-ratio-warning"]
        if rho < warn_at:
            return
        severity = Severity.ERROR if rho >= error_at else Severity.WARNING
        target = remedy_ratio(warn_at)
        scale = min(1.0, target / rho)
        by_layer: dict[str, float] = {}
        for p in penalties:
            by_layer[p.layer.path] = by_layer.get(p.layer.path, 0.0) + p.penalty
        top = sorted(by_layer.items(), key=lambda kv: -kv[1])[:3]
        parts = ", ".join(f"{path} {pct(v / total)}" for path, v in top)
        n_weights = sum(p.n for p in penalties)
        lambdas = sorted({p.l2 or p.l1 for p in penalties if (p.l2 or p.l1)})
        safe = ", ".join(g(lmb * scale) for lmb in lambdas[:3])
        where = "at initialisation" if all(p.penalty_init is not None for p in penalties) else "at the saved weights"
        yield self.finding(
            f"the penalty {where} is {g(total)} over {g(n_weights)} regularized weights, "
            f"{g(rho, 2)}x the data-loss scale {g(loss.value)} ({loss.explanation}); largest parts of the penalty: {parts}",
            remedy=f"scale every lambda by {g(scale, 2)} (now {', '.join(g(x) for x in lambdas[:3])} -> {safe}) "
                   f"to keep the penalty under {pct(target)} of the data loss, or use decoupled weight_decay",
            severity=severity,
            target="penalty",
            values={
                "penalty_ratio": rho,
                "penalty_init": total,
                "data_loss_scale": loss.value,
                "regularized_weights": n_weights,
                "lambda_scale_factor": scale,
                "safe_lambdas": [lmb * scale for lmb in lambdas],
                "layer_shares": {path: v / total for path, v in by_layer.items()},
            },
        )
