"""# nonfinite-weights (RL013)

## What it does
Counts NaN and infinite values in every saved weight tensor.

## Why is this bad?
A single NaN weight makes every output and every gradient that touches it
NaN: the model cannot be evaluated or trained further. In a committed model
it usually records a training run that already diverged (often from a
penalty or learning rate that RL002/RL003 would flag).

## Example
A checkpoint saved after the loss became NaN.

## Use instead
Restore an earlier checkpoint and fix the cause (learning rate, penalty,
loss scaling).

## Options
None.

## Formula
None: counted chunk by chunk while reading the weights.

## Thresholds and calibration
Exact (any non-finite value).

## References
- IEEE 754 NaN propagation.
"""

from __future__ import annotations

from reglint.engine.finding import Severity
from reglint.engine.fmt import g
from reglint.engine.rule import Rule


class NonfiniteWeights(Rule):
    code = "RL013"
    name = "nonfinite-weights"
    severity = Severity.ERROR
    summary = "Saved weights contain NaN or infinite values."

    def check(self, model, analysis):
        for layer, var in model.variables():
            stats = var.stats
            if stats is not None and stats.nonfinite:
                yield self.finding(
                    f"{var.name} {list(var.shape)} holds {g(stats.nonfinite)} NaN or infinite values "
                    f"out of {g(stats.count)}",
                    layer=layer.path, target=var.name,
                    remedy="restore a checkpoint from before the divergence and fix its cause",
                    values={"nonfinite": stats.nonfinite, "count": stats.count})
