"""# config-weights-mismatch (RL019)

## What it does
Reports layers whose stored tensors do not match what their config
implies (a Dense layer storing three tensors, a layer whose weights are
missing), as found while reading.

## Why is this bad?
Keras refuses to load such a file (``ValueError: Layer ... expected 2
variables, but received 3``), or loads it with weights in the wrong
places; reglint's per-tensor numbers for that layer are then unreliable.

## Example
A ``model.weights.h5`` edited or written by a different model than its
``config.json``.

## Use instead
Re-save the model with ``model.save()`` from the code that trained it.

## Options
None.

## Formula
None.

## Thresholds and calibration
Exact.

## References
- Keras ``keras/src/saving/saving_lib.py`` (``_load_state``).
"""

from __future__ import annotations

from reglint.engine.finding import Severity
from reglint.engine.rule import Rule
from reglint.model import ProblemKind


class ConfigWeightsMismatch(Rule):
    code = "RL019"
    name = "config-weights-mismatch"
    severity = Severity.WARNING
    summary = "A layer's stored tensors do not match its config."

    def check(self, model, analysis):
        kinds = (ProblemKind.WEIGHTS_MISMATCH, ProblemKind.MISSING_WEIGHTS, ProblemKind.EXTRA_WEIGHTS,
                 ProblemKind.UNREADABLE)
        for problem in model.problems_of(*kinds):
            yield self.finding(problem.message, layer=problem.layer or None, target=problem.target or "weights",
                               remedy="re-save the model with model.save() from the code that trained it")
