"""Layers that hold other layers without being models, on files Keras 3
wrote (fixtures/make_keras_container_fixtures.py; manifest.json holds what
Keras reported of each file it loaded back):

- ``keras.layers.Pipeline`` chains its ``layers`` as a Sequential does and
  saves them under its own ``layers/``: the Dense inside is a built-in layer
  with its regularizer, not a custom class's opaque tensors.
- ``TimeDistributed(Dense(12, softmax))`` as a sequence tagger's head is a
  12-way softmax: the loss scale is ln 12, not the width of the layer
  feeding it.
"""

from __future__ import annotations

import json
import math

import pytest

from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.estimate.penalty import tensor_penalty
from reglint.readers import read_model

from helpers import FIXTURES

HERE = FIXTURES / "keras_containers"
MANIFEST = json.loads((HERE / "manifest.json").read_text())["files"]
PIPELINES = sorted(name for name in MANIFEST if name.startswith("pipeline"))


def test_both_formats_of_the_pipeline_are_covered():
    assert PIPELINES == ["pipeline.h5", "pipeline.keras"]


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_counts_equal_keras(name):
    entry = MANIFEST[name]
    model = read_model(HERE / name)
    assert (model.total_params, model.trainable_params) == (entry["count_params"], entry["trainable_params"])
    sizes = sorted(v.size for layer in model.layers for v in layer.variables if v.trainable)
    assert sizes == sorted(entry["trainable_variables"].values())


@pytest.mark.parametrize("name", PIPELINES)
def test_a_pipelines_layers_are_read_as_the_built_in_layers_they_are(name):
    report = lint_file(str(HERE / name), Settings())
    assert report.error is None
    layer = report.model.layer("pipe/pd")
    assert layer.class_name == "Dense" and not layer.custom
    assert [(target, reg.l2) for target, reg in layer.regularizers()] == [("kernel", pytest.approx(0.1))]
    said = " ".join(report.model.notes)
    assert "not a built-in Keras layer" not in said and "custom layer" not in said
    assert not [f for f in report.findings if f.code in ("RL014", "RL019")]


@pytest.mark.parametrize("name", PIPELINES)
def test_a_pipelines_penalty_at_the_saved_weights_is_keras(name):
    model = read_model(HERE / name)
    penalty = sum(tensor_penalty(layer, var).penalty_saved for layer in model.layers
                  for var in layer.regularized_variables())
    assert MANIFEST[name]["weight_penalty"] > 0.1
    assert penalty == pytest.approx(MANIFEST[name]["weight_penalty"], rel=1e-5)


def test_a_time_distributed_head_is_its_wrapped_layers_width_and_activation():
    keras_output = MANIFEST["td_tagger.keras"]["output"]
    report = lint_file(str(HERE / "td_tagger.keras"), Settings())
    [output] = report.model.outputs
    assert (output.units, output.activation) == (keras_output["units"], keras_output["activation"]) == (12, "softmax")
    assert report.model.layer("lstm").units == 32  # the width the head was read as before
    assert report.analysis.loss_scale.value == pytest.approx(math.log(12))
