"""Keras 3 ``model.export()`` SavedModels with frozen layers (review 34,
D3): the object graph's per-variable ``trainable`` flags call a frozen
layer's weights trainable (Keras 3 freezes a layer without touching its
``tf.Variable``s); the archive's ``trainable_variables`` and
``non_trainable_variables`` lists hold Keras' split, which reglint reads.
Keras' counts are in ``fixtures/savedmodel_export/manifest.json``
(``make_savedmodel_export_fixtures.py``)."""

from __future__ import annotations

import json

import pytest

from reglint.readers import read_model

from helpers import FIXTURES

HERE = FIXTURES / "savedmodel_export"
MANIFEST = json.loads((HERE / "manifest.json").read_text())["files"]


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_a_frozen_layer_of_an_export_counts_as_keras_counts_it(name):
    truth = MANIFEST[name]
    assert truth["flags_trainable"] != truth["trainable_params"]  # the flags alone would be wrong
    assert (truth["export_trainable"], truth["export_non_trainable"]) == \
        (truth["trainable_params"], truth["non_trainable_params"])
    model = read_model(HERE / name)
    trainable = sum(v.size for layer, v in model.variables() if layer.trainable and v.trainable)
    assert sum(v.size for _, v in model.variables()) == truth["count_params"]
    assert trainable == truth["trainable_params"]
