"""# regularizer-on-frozen-layer (RL016)

## What it does
Lists regularizers on layers (or variables) that are not trainable.

## Why is this bad?
Keras collects weight penalties from trainable weights only
(``Layer._get_regularization_losses``): a frozen layer's regularizer adds
nothing (verified: ``model.losses == []`` after freezing). If the layer is
unfrozen later for fine-tuning, the penalty switches on at that moment,
computed on pretrained weights that may be far larger than an
initialisation, which can be a surprise. tf.keras 2 still adds a frozen
layer's penalty to the reported loss, as a constant with no gradient
(fixtures/keras/tfk_frozen.h5: Keras 2.21 reports 0.0067, Keras 3 reports 0).

## Example
A pretrained encoder with ``kernel_regularizer=L2(1e-3)`` and
``trainable=False``.

## Use instead
Remove it, or keep it deliberately for the fine-tuning phase (add an
ignore with a reason).

## Fix
Aim: no regularizer on weights that do not train: the fix removes it
(keep it only for a planned fine-tuning).

## Options
None.

## Formula
Penalty at the saved weights, reported for when the layer is unfrozen.

## Thresholds and calibration
Structural; informational.

## References
- Keras ``keras/src/layers/layer.py`` (``_get_regularization_losses``).
"""

from __future__ import annotations

from reglint.engine.finding import Change, Fix, Severity
from reglint.engine.fmt import g, lam
from reglint.engine.rule import Rule


class RegularizerOnFrozenLayer(Rule):
    code = "RL016"
    name = "regularizer-on-frozen-layer"
    severity = Severity.INFO
    summary = "A regularizer on a frozen layer adds nothing until the layer is unfrozen."

    def check(self, model, analysis):
        for p in analysis.penalties:
            if p.active or not p.regularizer.is_effective:
                continue
            later = f"; unfrozen, it would add {g(p.penalty_saved)} at the saved weights" \
                if p.penalty_saved is not None else ""
            effect = frozen_penalty_effect(model)
            yield self.finding(
                f"{p.variable.name} has {lam(p.regularizer)} but is not trainable: {effect}{later}",
                layer=p.layer.path, target=p.variable.name,
                remedy="remove it, or keep it deliberately for fine-tuning",
                fix=Fix("no regularizer on weights that do not train",
                        (Change("regularizer", p.l2 or p.l1, None, layer=p.layer.path, target=p.variable.name),)),
                values={"penalty_saved": p.penalty_saved})


def frozen_penalty_effect(model) -> str:
    """What the framework does with a frozen tensor's penalty, as RL016 and
    explain say it: Keras 3 adds none; tf.keras 2 (and Keras 1/2) still add
    it to the reported loss, as a constant with no gradient."""
    keras2 = model.framework == "tf.keras" or (model.framework_version or "").startswith(("1.", "2."))
    return "tf.keras adds it to the reported loss as a constant with no gradient" if keras2 else "Keras adds no penalty"
