"""The layer sweep's mismatches (review 37): files written by Keras 3 and
tf_keras, with each writer's own counts and ``sum(model.losses)`` at the
saved weights in ``fixtures/layer_sweep/manifest.json``
(``make_layer_sweep_fixtures.py``):

- tf_keras' MultiHeadAttention on a value wider than its query: its
  ``build_config`` records the query's shape alone, and the key/value
  projections were built at the query's width (100 parameters of 120, every
  saved penalty lost);
- tf_keras' TimeDistributed around a frozen layer: the inner layer's weights
  were counted trainable;
- bfloat16 weights stored as untagged 2-byte opaque values (Keras 3's legacy
  ``.h5``, tf_keras): their saved penalty was left blank.
"""

from __future__ import annotations

import json

import pytest

from reglint.engine.analysis import TrainingContext
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings

from helpers import FIXTURES

HERE = FIXTURES / "layer_sweep"
MANIFEST = json.loads((HERE / "manifest.json").read_text())["files"]


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_counts_and_the_saved_penalty_are_the_writers(name):
    truth = MANIFEST[name]
    found = lint_file(str(HERE / name), Settings(context=TrainingContext()))
    assert found.error is None, found.error
    model = found.model
    trainable = sum(v.size for layer, v in model.variables() if layer.trainable and v.trainable)
    assert (trainable, model.total_params - trainable) == (truth["trainable"], truth["non_trainable"])
    saved = [p.penalty_saved for p in found.analysis.penalties if p.active]
    assert None not in saved
    assert sum(saved) == pytest.approx(truth["weight_penalty"], rel=0.01, abs=1e-9)
