"""# weights-collapsed (RL017)

## What it does
For a model saved after training (the file records optimizer steps taken),
compares each regularized kernel's saved ``sum(w^2)`` with its expected
value at initialisation, ``kappa = sum(w_saved^2) / E[sum(w_init^2)]``, and
reports when every regularized, non-scale-invariant kernel has shrunk far
below where it started.

## Why is this bad?
That is the signature of a penalty that won: the network settled near the
trivial solution (kernels near zero, predictions near chance) instead of
fitting the data. Healthy, weakly regularized non-normalized nets end with
``sum(w^2)`` at 1.2-4.2 times init (theory section 3.2); collapsed ones end
near zero in every layer.

## Example
An MLP trained with ``L2(1.0)`` under SGD whose kernels end at 0.1% of their
initial energy.

## Use instead
Retrain with a smaller lambda (RL001 gives one).

## Options
- ``collapse-ratio`` (default 0.01): kappa below which a kernel counts as collapsed.

## Formula
``kappa_t = sum(w_t^2) / (n_t * Var_init(w_t))`` per kernel.

## Thresholds and calibration
A kernel at 1% of its initial energy has shrunk tenfold in RMS; the
calibration grid's trained models (bench/CALIBRATION.md) show where
collapsed and healthy runs end.

## References
- Theory notes section 3.2 (collapse signature: penalty -> 0, data loss -> L_chance).
"""

from __future__ import annotations

from reglint.engine.finding import Severity
from reglint.engine.fmt import g, plural
from reglint.engine.rule import Option, Rule


class WeightsCollapsed(Rule):
    code = "RL017"
    name = "weights-collapsed"
    severity = Severity.ERROR
    summary = "A trained model's regularized kernels have shrunk to a small fraction of their initial size."
    options = {"collapse-ratio": Option(0.01, "saved / initial sum of squares below which a kernel has collapsed")}

    def check(self, model, analysis):
        if not (model.optimizer and model.optimizer.iterations):
            return
        kernels = [p for p in analysis.active_penalties()
                   if p.variable.role.is_kernel_like and p.sum_sq_init and p.variable.stats
                   and not p.variable.stats.nonfinite]
        if not kernels:
            return
        kappas = {f"{p.layer.path}/{p.variable.name}": p.variable.stats.sum_sq / p.sum_sq_init for p in kernels}
        if max(kappas.values()) >= self.thresholds["collapse-ratio"]:
            return
        worst = max(kappas.values())
        yield self.finding(
            f"after {g(model.optimizer.iterations)} steps every regularized kernel holds at most {g(worst)} of its "
            f"initial sum of squares ({plural(len(kappas), 'kernel')}): the penalty drove the network to its trivial solution",
            target="kernel", remedy="retrain with a smaller lambda (see RL001's safe value)",
            values={"max_kappa": worst, "kappas": kappas, "iterations": model.optimizer.iterations})
