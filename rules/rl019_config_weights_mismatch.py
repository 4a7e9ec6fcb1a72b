"""# config-weights-mismatch (RL019)

## What it does
Checks every layer's stored tensors against what its config implies. The
config alone fixes each variable of a built-in Keras layer: its count,
its shape (``Dense(3)`` on 4 inputs: kernel ``(4, 3)``, bias ``(3,)``),
its role. reglint derives them as the layer's ``build()`` does, from the
input shape Keras 3 records (``build_config``, the tensors of a functional
graph) or that reglint carries through the model from the
``batch_input_shape`` of Keras 1/2 files, and reports each disagreement
naming the layer and both shapes:

- a layer the weights file holds nothing for (or a ``.keras`` archive
  with no ``model.weights.h5`` at all);
- a tensor whose shape does not fit the config, or one the layer does
  not create;
- tensors stored under a layer name the config does not have;
- a size the layer's constructor refuses (``units=-3``, ``filters="8"``;
  Keras checks ``units``, ``filters``, ``input_dim``/``output_dim``,
  ``num_heads``/``key_dim`` and ``depth_multiplier`` to be positive
  integers), so the file does not load;
- values or a config part that could not be read.

Where the config fixes every shape, the report counts the layer as the
config defines it (15 parameters for that Dense), not as the damaged file
stores it. Layers whose shapes the config cannot fix (a custom class, an
input shape lost after a ``Lambda``) are said so in a note, and their
stored tensors are counted as stored, except one that contradicts the part
of its shape the config does fix (a kernel stored as (200000, 200000)
where the config implies (?, 32)): it is left out of the counts and the
penalties, and this rule reports it.

Each finding is an error where Keras refuses to load the file, a warning
where it loads it and ignores the difference (a ``.keras`` weights file
holding a group no layer owns: Keras 3 skips it).

A config Keras cannot build into a model at all is not linted, so no rule
reports it: the file is refused as unreadable input (one line, exit code
2, no report), as a config whose ``layers`` is not a list is. That covers
a layer entry that is not a layer config, a call reading a layer the model
does not have, a loop or a node that is never made, an ``input_layers`` or
``output_layers`` name not in the model, and two layers of one name where
Keras refuses them (``reglint/readers/keras_topology.py``). A layer that
exists but whose own config Keras' constructor refuses (``units=-3``) is
this rule's error: the rest of the model is still read.

## Why is this bad?
Keras refuses to load such a file: ``Layer 'dense' expected 2 variables,
but received 0 variables during loading``, ``The shape of the target
variable and the shape of the target value in variable.assign(value) must
match``, ``Expected a model.weights.h5 or model.weights.npz file``, or
(legacy HDF5) ``You are trying to load a weight file containing 3 layers
into a model with 2 layers``. The model in the repository is not the model
anyone can run, and every number computed from its tensors is about
something else.

## Example
A ``model.weights.h5`` replaced by the weights of another model, edited by
hand, or dropped from the archive by a packaging script.

## Use instead
Re-save the model with ``model.save()`` from the code that trained it.
Two files no re-save mends, because the release that wrote them cannot load
them back: a float8-quantized layer in a legacy ``.h5`` (save it as
``.keras``, which stores each variable by name), and a GPTQ or AWQ layer
saved by Keras 3.14/3.15 without its ``kernel_zero`` (quantize the float
model again after loading it).

## Options
None.

## Formula
Per variable, the shape ``build()`` gives for the config and input shape
(``keras/src/layers/**``), compared with the stored shape dimension by
dimension; dimensions the config leaves open are not compared.

## Thresholds and calibration
Exact. On all 671 files of the shared Keras 1.1-2.11 corpus and every
fixture, the config-derived shapes equal the stored ones (no finding);
the exceptions (shapes after a ``Lambda`` without ``output_shape``) are
listed in ``tests/test_corpus.py``. Every case above was written and
refused by Keras 3.15 itself (``fixtures/make_exactness_fixtures.py``);
so was every refused graph (``fixtures/make_keras_refused_fixtures.py``),
and none of the corpus files or fixtures Keras loads is refused.

## References
- Keras ``keras/src/saving/saving_lib.py`` (``_load_state``) and
  ``keras/src/layers/layer.py`` (``load_own_variables``).
- Keras ``keras/src/models/functional.py`` (``functional_from_config``),
  for the graphs refused before any rule runs.
- tf-keras ``tf_keras/src/saving/legacy/hdf5_format.py``
  (``load_weights_from_hdf5_group``).
"""

from __future__ import annotations

from reglint.engine.finding import Severity
from reglint.engine.rule import Rule
from reglint.model import ProblemKind

# The remedy, by the cause a reader recognised (``Problem.reason``): a
# re-save helps a file written by code that has since changed, not a file
# the writing release cannot load back.
REMEDIES = {
    "": "re-save the model with model.save() from the code that trained it",
    # Keras 3.3-3.15: the legacy HDF5 loader assigns weights by position and a
    # float8 layer built from its config creates them in another order
    "float8_legacy_h5": "save it as .keras (model.save('model.keras')), which stores each variable by name",
    # Keras 3.14/3.15's Dense.save_own_variables skips kernel_zero for GPTQ/AWQ
    "unsaved_kernel_zero": "quantize the float model again after loading it (a re-save writes the same file)",
}


class ConfigWeightsMismatch(Rule):
    code = "RL019"
    name = "config-weights-mismatch"
    severity = Severity.ERROR
    summary = "A layer's stored tensors do not match its config."

    def check(self, model, analysis):
        kinds = (ProblemKind.WEIGHTS_MISMATCH, ProblemKind.MISSING_WEIGHTS, ProblemKind.EXTRA_WEIGHTS,
                 ProblemKind.UNREADABLE)
        for problem in model.problems_of(*kinds):
            values = {}
            if problem.expected is not None:
                values["expected_shape"] = list(problem.expected)
            if problem.stored is not None:
                values["stored_shape"] = list(problem.stored)
            config = model.metadata.get("config_params") or {}
            if config.get("total") is not None:
                values["config_params"] = config["total"]
            yield self.finding(problem.message, layer=problem.layer or None, target=problem.target or "weights",
                               remedy=REMEDIES.get(problem.reason or "", REMEDIES[""]),
                               values=values,
                               severity=Severity.ERROR if problem.blocks_load else Severity.WARNING)
