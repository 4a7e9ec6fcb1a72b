"""# orthogonal-regularizer-rank (RL015)

## What it does
Finds ``OrthogonalRegularizer`` on tensors that are not matrices (Conv
kernels, biases) and reports its bounded strength on matrices.

## Why is this bad?
Keras' ``OrthogonalRegularizer`` raises ``ValueError: Inputs to
OrthogonalRegularizer must have rank 2`` when the penalty is first
computed. A Conv2D kernel is rank 4: the model builds, runs forward and
saves, and the first ``fit`` step crashes (verified with Keras 3.15).

## Example
``Conv2D(32, 3, kernel_regularizer=OrthogonalRegularizer(0.01))``.

## Use instead
Reshape the kernel in a custom regularizer (``ops.reshape(x, (-1,
x.shape[-1]))``) or regularize Dense kernels only.

## Fix
Aim: no OrthogonalRegularizer on a tensor of rank other than 2: the fix
removes it from the flagged tensor.

## Options
None.

## Formula
Penalty = factor x mean |cosine| between rows (or columns): at most
``factor``; at initialisation about ``factor*sqrt(2/(pi*d))``.

## Thresholds and calibration
Exact (rank check).

## References
- Keras ``keras/src/regularizers/regularizers.py`` (``OrthogonalRegularizer.__call__``).
"""

from __future__ import annotations

from reglint.engine.finding import Change, Fix, Severity
from reglint.engine.rule import Rule


class OrthogonalRegularizerRank(Rule):
    code = "RL015"
    name = "orthogonal-regularizer-rank"
    severity = Severity.ERROR
    summary = "OrthogonalRegularizer on a tensor that is not rank 2 crashes at the first training step."

    def check(self, model, analysis):
        for layer, var in model.variables():
            reg = var.regularizer
            if reg is None or reg.kind != "orthogonal" or len(var.shape) == 2:
                continue
            yield self.finding(
                f"{var.name} has rank {len(var.shape)} {list(var.shape)}: OrthogonalRegularizer raises "
                f"'Inputs to OrthogonalRegularizer must have rank 2' at the first fit step",
                layer=layer.path, target=var.name,
                remedy="apply it to rank-2 (Dense) kernels only, or reshape inside a custom regularizer",
                fix=Fix("no OrthogonalRegularizer on a tensor of rank other than 2",
                        (Change("regularizer", reg.factor, None, layer=layer.path, target=var.name),)),
                values={"rank": len(var.shape)})
