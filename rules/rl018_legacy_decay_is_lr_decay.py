"""# legacy-decay-is-lr-decay (RL018)

## What it does
Flags a non-zero ``decay`` in a Keras 1/2 or tf.keras legacy optimizer
config.

## Why is this bad?
In those optimizers ``decay`` is *learning-rate* time decay,
``lr_t = lr / (1 + decay*t)`` (``optimizer_v2.py::_decayed_lr``), not weight
decay. Code ported from PyTorch often puts a weight-decay value there,
which silently regularizes nothing and slows the learning rate instead;
Keras 3 dropped the argument.

## Example
``SGD(lr=0.1, momentum=0.9, decay=5e-4)`` meaning PyTorch's ``weight_decay=5e-4``.

## Use instead
A ``LearningRateSchedule`` for learning-rate decay; ``weight_decay=`` (Keras 3,
tf.keras >= 2.11) or kernel L2 for weight decay.

## Fix
Aim: the legacy learning-rate decay removed (``lr_decay -> remove``); if
weight decay was meant, set ``weight_decay`` instead.

## Options
None.

## Formula
``lr_t = lr / (1 + decay*t)``; after T steps the learning rate is divided by ``1 + decay*T``.

## Thresholds and calibration
Structural; informational.

## References
- tf-keras ``tf_keras/optimizers/legacy/optimizer_v2.py`` (``_decayed_lr``).
"""

from __future__ import annotations

from reglint.engine.finding import Change, Fix, Severity
from reglint.engine.fmt import g
from reglint.engine.rule import Rule


class LegacyDecayIsLrDecay(Rule):
    code = "RL018"
    name = "legacy-decay-is-lr-decay"
    severity = Severity.INFO
    summary = "A legacy optimizer `decay` is learning-rate decay, not weight decay."

    def check(self, model, analysis):
        opt = model.optimizer
        if opt is None or not opt.lr_decay:
            return
        steps = analysis.context.total_steps() or analysis.optimizer_steps_taken()
        divisor = 1 + opt.lr_decay * steps if steps else None
        after = f"; after {g(steps)} steps the learning rate is divided by {g(divisor, 6)}" if divisor else ""
        yield self.finding(
            f"{opt.class_name}(decay={g(opt.lr_decay)}) decays the learning rate as lr/(1 + decay*t), "
            f"not the weights{after}",
            target="optimizer.decay",
            remedy="if weight decay was meant, use weight_decay= or a kernel L2 and drop decay",
            fix=Fix("the legacy learning-rate decay removed (move the value to weight_decay if that was meant)",
                    (Change("lr_decay", opt.lr_decay, None, target="optimizer"),)),
            values={"lr_decay": opt.lr_decay, "lr_divisor": divisor})
