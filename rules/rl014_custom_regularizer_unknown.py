"""# custom-regularizer-unknown (RL014)

## What it does
Reports regularizers whose class reglint cannot interpret (a user's
registered class such as ``acme>ScaledL2``), with their saved config, and
says how to teach reglint to read them.

## Why is this bad?
reglint never imports code named in a model file, so a custom class is
opaque: its penalty is left out of every estimate (RL001, RL002 ...), and
a wrecking lambda inside it would go unnoticed.

## Example
``kernel_regularizer=ScaledL2(strength=0.01)`` from ``package="acme"``.

## Use instead
Map the class in ``[tool.reglint.context.custom-regularizers]``:
``"acme>ScaledL2" = {kind = "l2", factor = "strength"}`` (``kind`` l1, l2 or
l1l2; ``factor``, ``l1`` or ``l2`` name config keys; optional ``scale``,
e.g. 0.5 for a ``tf.nn.l2_loss``-style 1/2). Mapped classes are then
checked like built-ins.

## Options
None.

## Formula
None.

## Thresholds and calibration
Structural.

## References
- Keras ``keras/src/saving/serialization_lib.py`` (registered names ``package>Class``).
"""

from __future__ import annotations

import json

from reglint.engine.finding import Severity
from reglint.engine.rule import Rule


class CustomRegularizerUnknown(Rule):
    code = "RL014"
    name = "custom-regularizer-unknown"
    severity = Severity.WARNING
    summary = "A custom regularizer class reglint cannot interpret without a mapping."

    def check(self, model, analysis):
        for layer in model.layers:
            for target, reg in layer.regularizers():
                if reg.kind != "custom":
                    continue
                config = json.dumps(reg.config, sort_keys=True, default=str)[:200]
                yield self.finding(
                    f"{target}: custom regularizer {reg.class_name} {config} is not counted in any estimate",
                    layer=layer.path, target=target,
                    remedy=f'map it: [tool.reglint.context.custom-regularizers] "{reg.class_name}" = '
                           '{kind = "l2", factor = "<config key>"}',
                    values={"class_name": reg.class_name})
