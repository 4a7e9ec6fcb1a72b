"""# unusable-loss-weights (RL026)

## What it does
Reports ``loss_weights`` saved with the model that leave no usable data
loss: an entry that is not a finite number, weights the file's own Keras
cannot pair (a Keras 3 file: with its losses; a tf-keras file: with its
outputs), an output a tf-keras list of weights stops before (it gets no
loss at all), a negative weight, or every weight zero. ``None`` is Keras'
default weight 1 (both Keras 3 and tf-keras train it) and a scalar weighs
every output, as Keras does. Which pairing applies follows the writer the
file records (Keras 3, or tf.keras/tf-keras: legacy .h5, tf.keras .keras,
SavedModel).

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
- **Not paired (tf-keras files).** tf-keras pairs the weights with the
  *outputs*, whatever the losses (``LossesContainer.build`` conforms them
  to the outputs: a dict by output name, a list by position, a scalar to
  every output). A dict key that names no output, alone on a one-output
  model or beside the right names, makes ``fit`` raise ("Found unexpected
  losses or metrics that do not correspond to any Model output"; Keras 3
  applies a one-key dict on one output whatever its key). A dict of losses
  in another order than the outputs takes the weight of its output.
- **An output left without a loss (tf-keras files).** tf-keras zips the
  outputs with a list of weights, so a list shorter than the outputs
  drops the outputs past its end: their loss is never computed (not
  weighted 1, as a dict's missing name is), and the layers that feed only
  them get no gradient. ``fit`` runs without a word and the head keeps
  its initial weights. It is reported as an error, not as a way to switch
  a head off: the documented ways are weight 0 or no loss for that output
  (tf-keras documents a list as "a 1:1 mapping to the model's outputs"),
  standalone Keras 1/2 and tf.keras' older training loop
  (``training_utils.prepare_loss_weights``) refused such a list in
  ``compile`` ("it should have one entry per model output"), and Keras 3's
  ``fit`` refuses a list of the wrong length; the head trained by nothing
  is the outcome, whatever was meant. A list longer than the outputs is
  harmless in tf-keras (the extra weights are ignored) and not reported.
  The data-loss scale the other rules compare penalties with counts only
  the outputs that get a loss.
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
(its magnitude), all-zero weights back to 1, every output given its
weight (an output a short list dropped: weight 1).

## Options
None.

## Formula
``loss = sum_i loss_weights[i] * L_i + sum penalties``;
``d loss / d w = sum_i loss_weights[i] * dL_i/dw + d penalties/dw``.
In a tf-keras file the sum runs over ``i < len(loss_weights)`` for a list
of weights: an output past its end contributes nothing (weight 0).

## Thresholds and calibration
Exact: a weight is unusable when it is not a finite number or below 0;
the loss is weighted out when every weight is 0; in a tf-keras file a
dict key is unusable when it names no output, and an output gets no loss
when a list of weights ends before it. Checked on files Keras
wrote (fixtures/keras/loss_weights_by_position.keras: ``fit`` raises;
fixtures/keras/loss_weights_zero.keras; fixtures/rules/
k3_loss_weights_negative.keras, whose manifest records Keras' own training
of the negatively weighted output moving away from its target;
k3_loss_weights_one_loss_two_weights.keras: Keras 3's ``fit`` raises, the
tf-keras twin .h5 trains; k3_loss_weights_dict_by_sorted_key.keras: Keras'
own loss is ``-0.5 main + aux``; k3_loss_weights_none_entry.keras trains).
tf-keras' pairing, checked with tf-keras 2.21 on files it wrote (the
manifest records its evaluate and one epoch of fit on each, loaded back):
tfk_loss_weights_unknown_name.h5 (``{"nope": 0}`` on one output) and
tfk_loss_weights_extra_name.keras (the two outputs' names plus
``"extra"``): ``fit`` raises; tfk_loss_weights_short_list.h5 (``[1.0]``
on two outputs): aux_loss 0 and the aux head's kernel unchanged by an
epoch of fit, the same model with ``[0.0]``: loss 0, nothing moves, with
``[]`` and no penalty: ``fit`` raises "No loss found";
tfk_loss_weights_long_list.h5 (``[1, 2, 3]``): loss = main + 2 aux, it
trains; tfk_loss_weights_dict_loss_list_weights.h5 (losses ``{"aux":
mae, "main": mse}``, ``[1, 0.5]``): loss = main + 0.5 aux. The same
behaviour was seen on a tf-keras SavedModel. The code read: tf-keras 2.21
``tf_keras/src/engine/compile_utils.py`` (``map_to_output_names``,
``LossesContainer.build`` and ``__call__``), the same in
``tensorflow/python/keras/engine/compile_utils.py`` (tf.keras, commit
029955be); an earlier version of that file (the one with ``_build`` and
``create_output_names``; read, not run) mapped a dict onto the outputs
only for several outputs, so a one-key dict on one output was applied
whatever its key: the rule follows the current tf-keras.

## References
- Keras ``keras/src/trainers/trainer.py`` (``compile``'s signature) and
  ``keras/src/trainers/compile_utils.py`` (``CompileLoss``: the weighted
  sum of the outputs' losses).
- tf-keras ``tf_keras/src/engine/compile_utils.py`` (``LossesContainer``,
  ``map_to_output_names``: the weights conformed to the outputs, then
  zipped with them).
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
    summary = ("The saved loss_weights leave no usable data loss: not numbers, unpaired, negative, all zero, "
               "or an output left without a loss.")

    def check(self, model, analysis):
        problems = model.problems_of(ProblemKind.INVALID_LOSS_WEIGHT)
        for problem in problems:
            yield self._unusable(problem)
        dropped = [problem.layer for problem in model.problems_of(ProblemKind.DROPPED_LOSS)]
        if dropped:
            yield self._dropped(model, analysis, dropped)
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
        if all(w == 0 for _, w in weights) and not all(name in dropped for name, _ in weights):
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
        if problem.target == "loss_weights:unknown_output":
            return self.finding(problem.message, target="loss_weights", values=raw,
                                remedy="key the loss weights by the model's output names (or give a list in the "
                                       "outputs' order)",
                                fix=Fix("loss_weights tf-keras pairs with the outputs: keyed by output name",
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

    def _dropped(self, model, analysis, dropped: list[str]):
        """Outputs a tf-keras list of weights stops before: their loss is never computed."""
        raw = next(p.value for p in model.problems_of(ProblemKind.DROPPED_LOSS))
        one = len(dropped) == 1
        message = (f"{', '.join(dropped)} get{'s' if one else ''} no loss: compile's loss_weights {raw} stop "
                   f"before {'it' if one else 'them'}, and tf-keras pairs a list of loss weights with the outputs by "
                   f"position and computes no loss past its end, so the layers that feed only "
                   f"{'that output' if one else 'them'} are trained by nothing")
        if all(loss.output in dropped for loss in model.losses):
            # tf-keras' train step needs a loss tensor: a penalty is one, weight decay is not
            message += "; no output gets a loss: " + (_what_trains(model, analysis) if _penalized(model, analysis)
                                                      else "with no penalty either, tf-keras' fit fails "
                                                           "(\"No loss found\")")
        return self.finding(message, target="loss_weights",
                            values={"loss_weights": raw, "outputs_without_loss": dropped},
                            remedy="one loss weight per output, in the outputs' order (a 0 switches an output off "
                                   "on purpose)",
                            fix=Fix("every output's loss computed: one loss weight per output",
                                    tuple(Change("loss_weight", 0.0, 1.0, layer=name, target="loss")
                                          for name in dropped)))


def _penalized(model, analysis) -> bool:
    """Whether a penalty (a weight or activity regularizer) adds to the loss."""
    return any(p.active and p.regularizer.is_effective for p in analysis.penalties) or \
        any(layer.activity_regularizer is not None for layer in model.layers)


def _what_trains(model, analysis) -> str:
    """What the optimizer follows once the data loss is weighted out."""
    penalized = _penalized(model, analysis)
    decay = model.optimizer is not None and (model.optimizer.weight_decay or 0) > 0
    if penalized or decay:
        parts = [name for name, on in (("the penalties", penalized), ("weight decay", decay)) if on]
        return f"{' and '.join(parts)} alone train it: every penalized weight decays toward zero"
    return "with no penalty either, nothing trains it"
