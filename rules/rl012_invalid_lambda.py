"""# invalid-lambda (RL012)

## What it does
Reports regularizer factors and optimizer settings that are not usable
numbers: NaN, infinite, negative, or not a number at all (a string, null,
an object) where the config should hold one.

## Why is this bad?
A NaN factor makes the loss NaN on the first step; a negative L2 rewards
large weights and diverges; a string is rejected by Keras at load time, so
the model cannot be trained from this file. Keras' constructors reject
most of these, so they come from hand-edited or generated configs, which
is exactly what a linter should catch before training.

## Example
``{"class_name": "L2", "config": {"l2": -0.01}}``.

## Use instead
A finite, non-negative float.

## Options
None.

## Formula
None.

## Thresholds and calibration
Exact.

## References
- Keras ``keras/src/regularizers/regularizers.py`` (``validate_float_arg``).
"""

from __future__ import annotations

import math

from reglint.engine.finding import Severity
from reglint.engine.fmt import lam
from reglint.engine.rule import Rule
from reglint.model import ProblemKind


class InvalidLambda(Rule):
    code = "RL012"
    name = "invalid-lambda"
    severity = Severity.ERROR
    summary = "A regularizer factor or optimizer setting is NaN, infinite, negative or not a number."

    def check(self, model, analysis):
        for problem in model.problems_of(ProblemKind.INVALID_REGULARIZER):
            yield self.finding(problem.message, layer=problem.layer or None, target="regularizer")
        seen = set()
        for layer in model.layers:
            for target, reg in layer.regularizers():
                bad = _bad_factors(reg)
                if bad and (layer.path, target) not in seen:
                    seen.add((layer.path, target))
                    yield self.finding(
                        f"{target}: {lam(reg)} has {', '.join(bad)}",
                        layer=layer.path, target=target,
                        remedy="use a finite, non-negative factor",
                        values={"l1": reg.l1, "l2": reg.l2})
        yield from self._optimizer(model)

    def _optimizer(self, model):
        opt = model.optimizer
        if opt is None:
            return
        checks = {"weight_decay": opt.weight_decay, "momentum": opt.momentum,
                  "learning_rate": opt.learning_rate.initial if opt.learning_rate else None}
        for name, value in checks.items():
            if value is not None and (not math.isfinite(value) or value < 0):
                yield self.finding(f"optimizer {name} is {value}", target=f"optimizer.{name}",
                                   remedy=f"use a finite, non-negative {name}")
            elif name == "momentum" and value is not None and value > 1:
                # keras/src/optimizers/sgd.py: "`momentum` must be a float between [0, 1]"
                yield self.finding(f"optimizer momentum is {value}: a heavy-ball momentum above 1 amplifies every "
                                   f"step without bound (Keras' SGD refuses it)",
                                   target="optimizer.momentum", remedy="use a momentum in [0, 1), 0.9 typically")
        for problem in model.problems_of(ProblemKind.INVALID_OPTIMIZER):
            setting = (problem.target or "optimizer.value").split(".")[-1]
            yield self.finding(problem.message, target=problem.target,
                               remedy=f"use a finite, non-negative {setting}")


def _bad_factors(reg) -> list[str]:
    out = []
    for name in ("l1", "l2", "factor"):
        value = getattr(reg, name)
        if isinstance(value, float) and math.isnan(value):
            if not reg.invalid:
                out.append(f"{name} = NaN")
        elif isinstance(value, float) and math.isinf(value):
            out.append(f"{name} = {value}")
        elif value < 0:
            out.append(f"negative {name} = {value}")
    return out
