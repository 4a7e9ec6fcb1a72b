"""# loss-names-no-output (RL027)

## What it does
Reports a dict of losses saved with the model (``compile(loss={...})``)
that the file's own Keras cannot pair with the model's outputs, so ``fit``
raises on the first step (or, in tf-keras, computes no data loss): keys that
name no output; in files Keras 3.15 wrote, also an output left without a key
and any dict on a ``Sequential`` model.

## Why is this bad?
Keras matches a dict of losses to the outputs by name, and the names are
easy to get wrong: for a Functional model whose outputs are a tensor or a
list, they are the names of the *layers* producing the outputs, not of the
variables in the user's code nor of the label columns. A model built with
``Dense(4, name="bbox_out")`` and compiled with
``loss={"regression": "huber"}`` saves and loads without a word; ``fit``
fails:

- Keras 3 (outputs a tensor or a list): ``ValueError: Expected keys
  ['class_out', 'bbox_out'] in loss dict, but found loss.keys()=[...]``
  (3.15's ``CompileLoss.build``; earlier 3.x: "key ... does not correspond
  to any model output");
- Keras 3 (outputs a dict): a key with a loss that is not one of the
  dict's keys raises ``KeyError`` ("can't be found in ... the model's
  output"), the output's layer name included; a key whose loss is None is
  skipped;
- Keras 3.15, a ``Sequential`` model: any dict of losses raises
  ``TypeError`` (the model has no output names to compare the keys with;
  reported for files 3.15 wrote, a later release may mend it);
- tf-keras (outputs a tensor or a flat list): ``ValueError: Found unexpected
  losses or metrics that do not correspond to any Model output``. With
  outputs written as a dict tf-keras ignores an unknown key (not reported)
  unless no key names an output: then no data loss is computed, and ``fit``
  raises "No loss found" (or trains on the penalties alone). An output's
  layer name counts as its key in .h5 and SavedModel files, not in a
  .keras file (tf-keras 2.21 trains the first, raises on the second).

A file that cannot train is also a file whose penalties nothing can be
weighed against: reglint's data-loss scale counts the losses by their keys,
and ``reglint profile`` refuses the file in one line.

## Example
```python
inputs = keras.Input((32,))
class_out = keras.layers.Dense(10, activation="softmax", name="class_out")(inputs)
bbox_out = keras.layers.Dense(4, name="bbox_out")(inputs)
model = keras.Model(inputs, [class_out, bbox_out])
model.compile("adam", loss={"classification": "sparse_categorical_crossentropy", "regression": "huber"})
```

## Use instead
```python
model.compile("adam", loss={"class_out": "sparse_categorical_crossentropy", "bbox_out": "huber"})
```
or a list in the outputs' order, or outputs written as a dict
(``keras.Model(inputs, {"classification": class_out, "regression": bbox_out})``)
whose keys the losses then use.

## Options
None.

## Formula
Exact: the keys of the saved loss dict against the outputs the config
records (``output_layers``: the layers' names, and a dict output's keys).
Keras 3 keeps a repeated layer name as it is (an ``LSTM`` returning its
states names three outputs ``lstm``), tf-keras makes repeats unique
(``bb``, ``bb_1``); each is accepted where its Keras accepts it. A
subclassed model records no output names and is not judged. Keras 3.15
also raises when a key is *missing* for an output of a list-output model
(set equality): reported for files it wrote. For files of earlier Keras 3
releases (not checked here) the names any of them accepted are let
through: the uniquified names, a dict output's layer name, a Sequential's
last layer, and a missing key.

## Thresholds and calibration
None: exact. Checked on files Keras 3.15.1 and tf-keras 2.21 wrote, loaded
back and fitted (``fixtures/make_rule_fixtures.py``; their manifest records
each framework's own error or its training): a two-output Keras 3 model
compiled with the output variables' names (``classification``,
``regression``; ``fit`` raises), a Keras 3 dict-output model with a loss
under a key it does not output (raises) and with ``None`` there (trains:
quiet), a one-output tf-keras model with ``{"nope": "mse"}`` (raises) and a
tf-keras dict-output model with an extra key (trains: quiet). Review 10's
files (``tests/test_review10_real_files.py``, written and fitted by the
tests): Keras 3.15 dict outputs keyed by layer names, an LSTM's states keyed
``lstm_1``, ``lstm_2``, a Sequential keyed by its last layer and a missing
key all raise; tf-keras dict outputs with no key naming one raise "No loss
found" (with a kernel penalty they train on it alone).

## References
- Keras ``keras/src/trainers/compile_utils.py`` (``CompileLoss.build``,
  ``_build_nested``).
- tf-keras ``tf_keras/src/engine/compile_utils.py`` (``map_to_output_names``).
- Keras guide "The Functional API", models with multiple inputs and outputs
  (losses keyed by the output layers' names).
"""

from __future__ import annotations

from reglint.engine.finding import Severity
from reglint.engine.rule import Rule
from reglint.model import ProblemKind


class LossNamesNoOutput(Rule):
    code = "RL027"
    name = "loss-names-no-output"
    severity = Severity.ERROR
    summary = "A dict of losses the file's Keras cannot pair with the model's outputs: fit raises on it."

    def check(self, model, analysis):
        for problem in model.problems_of(ProblemKind.UNKNOWN_LOSS_OUTPUT):
            yield self.finding(
                problem.message, target="loss", values={"loss_keys": problem.value},
                remedy="key the losses by the output layers' names (or by the keys of outputs written as a dict), "
                       "or give a list in the outputs' order")
