"""# unusable-loss-weights (RL026)

## What it does
Reports ``loss_weights`` saved with the model that leave no usable data
loss: an entry that is not a finite number, weights a Keras 3 file cannot
pair with its losses, a negative weight, or every weight zero. ``None`` is
Keras' default weight 1 (both Keras 3 and tf-keras train it) and a scalar
weighs every output, as Keras does.

## Why is this bad?
Keras trains on ``sum_i w_i * L_i + penalties``: the loss weights are the
data side of the balance every other rule weighs a lambda against.

- **Not a number.** Keras 3's signature is ``compile(optimizer, loss,
  loss_weights, metrics, ...)``; Keras 2's was ``compile(optimizer, loss,
  metrics, loss_weights, ...)``. Code written for Keras 2 that passes the
  metrics by position, ``model.compile("adam", "mse", ["accuracy"])``,
  saves ``loss_weights=["accuracy"]``. ``compile`` accepts it and ``fit``
  fails on the first step (Keras 3.15: ``ValueError: dtype='string' is not
  a valid dtype for Keras type promotion``); a NaN or infinite weight
  makes the loss NaN.
- **Not paired (Keras 3 files).** Keras 3's ``CompileLoss.build`` needs
  one weight per loss: ``compile(loss="mse", loss_weights=[1, 0.5])`` on two
  outputs (Keras 2 applied the one loss to every output), a list shorter or
  longer than the losses, or a dict of weights missing an output of a dict
  of losses: ``fit`` raises ("`loss_weights` must match the number of
  losses" or a KeyError). tf-keras trains the same calls (a missing name
  weighs 1). A dict of weights with a *list* of losses is paired by
  position in sorted-key order (``{"main": 1, "aux": -0.5}`` gives ``main``
  -0.5): the rule reads it that way.
- **Negative.** The optimizer ascends that output's loss: the prediction
  is pushed away from its target, without bound. A negative weight is not
  a gradient-reversal layer (domain-adversarial training): it reverses
  the gradient of the head itself too, so the head diverges instead of
  learning the domain; put the reversal between the features and the
  head and keep the weight positive.
- **Every weight zero.** No data gradient reaches the model. With a
  penalty or weight decay, the penalty alone trains it: every penalized
  weight decays toward zero (RL001's ratio of penalty to data loss is
  infinite); without one, nothing trains. A zero weight on *some* outputs
  (an auxiliary head switched off) is legitimate and not reported.

## Example
```python
model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy", ["accuracy"])
```

## Use instead
```python
model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
```

## Fix
Aim: a data loss the optimizer descends: a non-numeric ``loss_weights``
removed (pass the metrics by keyword), a negative weight made positive
(its magnitude), all-zero weights back to 1.

## Options
None.

## Formula
``loss = sum_i loss_weights[i] * L_i + sum penalties``;
``d loss / d w = sum_i loss_weights[i] * dL_i/dw + d penalties/dw``.

## Thresholds and calibration
Exact: a weight is unusable when it is not a finite number or below 0;
the loss is weighted out when every weight is 0. Checked on files Keras
wrote (fixtures/keras/loss_weights_by_position.keras: ``fit`` raises;
fixtures/keras/loss_weights_zero.keras; fixtures/rules/
k3_loss_weights_negative.keras, whose manifest records Keras' own training
of the negatively weighted output moving away from its target;
k3_loss_weights_one_loss_two_weights.keras: Keras 3's ``fit`` raises, the
tf-keras twin .h5 trains; k3_loss_weights_dict_by_sorted_key.keras: Keras'
own loss is ``-0.5 main + aux``; k3_loss_weights_none_entry.keras trains).

## References
- Keras ``keras/src/trainers/trainer.py`` (``compile``'s signature) and
  ``keras/src/trainers/compile_utils.py`` (``CompileLoss``: the weighted
  sum of the outputs' losses).
"""

from __future__ import annotations

import math

from reglint.engine.finding import Change, Fix, Severity
from reglint.engine.fmt import g
from reglint.engine.rule import Rule
from reglint.model import ProblemKind


class UnusableLossWeights(Rule):
    code = "RL026"
    name = "unusable-loss-weights"
    severity = Severity.ERROR
    summary = "The saved loss_weights leave no usable data loss: not numbers, unpaired, negative or all zero."

    def check(self, model, analysis):
        problems = model.problems_of(ProblemKind.INVALID_LOSS_WEIGHT)
        for problem in problems:
            yield self._unusable(problem)
        if problems or not model.losses:
            return
        weights = [(loss.output or f"output {i}", loss.weight) for i, loss in enumerate(model.losses)]
        negative = [(name, w) for name, w in weights if math.isfinite(w) and w < 0]
        if negative:
            whose = "those outputs' losses" if len(negative) > 1 else "that output's loss"
            yield self.finding(
                f"negative loss weight{'s' if len(negative) > 1 else ''} "
                f"{', '.join(f'{name} {g(w)}' for name, w in negative)}: the optimizer ascends {whose}, pushing "
                f"the prediction away from its target without bound",
                target="loss_weights", remedy="use the magnitude (a positive weight)",
                values={"loss_weights": dict(weights)},
                fix=Fix("a data loss the optimizer descends: positive loss weights",
                        tuple(Change("loss_weight", w, -w, layer=name, target="loss") for name, w in negative)))
        if all(w == 0 for _, w in weights):
            trains = _what_trains(model, analysis)
            yield self.finding(
                f"every loss weight is 0 ({', '.join(name for name, _ in weights)}): no data gradient reaches "
                f"the model; {trains}",
                target="loss_weights", remedy="set the loss weights back to 1 (or remove loss_weights)",
                values={"loss_weights": dict(weights)},
                fix=Fix("a data loss the optimizer descends: loss weights 1",
                        tuple(Change("loss_weight", 0.0, 1.0, layer=name, target="loss") for name, _ in weights)))

    def _unusable(self, problem):
        """What the reader found Keras cannot train on, with its remedy."""
        raw = {"loss_weights": problem.value}
        if problem.target == "loss_weights:nonfinite":
            return self.finding(problem.message, target="loss_weights", values=raw,
                                remedy="a finite weight (1 unless the outputs need balancing)",
                                fix=Fix("a data loss the optimizer descends: finite loss weights",
                                        (Change("loss_weights", None, None, target="compile"),)))
        if problem.target == "loss_weights:pairing":
            return self.finding(problem.message, target="loss_weights", values=raw,
                                remedy="one loss per output (a list or a dict by output name) with one weight each, "
                                       "or a dict of weights naming every output",
                                fix=Fix("loss_weights Keras 3 pairs with the losses: one per loss",
                                        (Change("loss_weights", None, None, target="compile"),)))
        return self.finding(
            f"{problem.message} (compile(optimizer, loss, loss_weights, metrics) in Keras 3: metrics passed by "
            f"position land in loss_weights)",
            target="loss_weights", remedy="remove loss_weights and pass the metrics by keyword (metrics=[...])",
            values=raw, fix=Fix("a data loss the optimizer descends: no loss_weights",
                                (Change("loss_weights", None, None, target="compile"),)))


def _what_trains(model, analysis) -> str:
    """What the optimizer follows once the data loss is weighted out."""
    penalized = any(p.active and p.regularizer.is_effective for p in analysis.penalties)
    activity = any(layer.activity_regularizer is not None for layer in model.layers)
    decay = model.optimizer is not None and (model.optimizer.weight_decay or 0) > 0
    if penalized or activity or decay:
        parts = [name for name, on in (("the penalties", penalized or activity), ("weight decay", decay)) if on]
        return f"{' and '.join(parts)} alone train it: every penalized weight decays toward zero"
    return "with no penalty either, nothing trains it"
