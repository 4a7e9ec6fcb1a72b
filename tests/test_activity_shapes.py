"""RL010's activity penalty against Keras' own (review 30, D2): it counted
``units`` elements where Keras sums over a feature map or a sequence (a
Conv2D's penalty was 1/1000 of Keras'), gave no estimate for an
ActivityRegularization after BatchNormalization or an Embedding, and took
an LSTM's output for ``tanh(z)``. Keras' penalties per sample, on the
saved initial weights, are in ``fixtures/activity_shapes/manifest.json``
(``make_activity_shape_fixtures.py``)."""

from __future__ import annotations

import json

import pytest

from reglint.engine.analysis import TrainingContext
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.readers import read_model

from helpers import FIXTURES

HERE = FIXTURES / "activity_shapes"
MANIFEST = json.loads((HERE / "manifest.json").read_text())["files"]
ESTIMATED = sorted(name for name, entry in MANIFEST.items() if entry["keras_penalty_per_sample"] > 0)


def estimate(name: str) -> float | None:
    settings = Settings(context=TrainingContext())
    settings.thresholds["activity-ratio-warning"] = 1e-12  # every estimate becomes a finding
    report = lint_file(str(HERE / name), settings)
    assert report.error is None, report.error
    found = [f for f in report.findings if f.code == "RL010" and f.layer == MANIFEST[name]["layer"]]
    return found[0].values["penalty_per_sample"] if found else None


@pytest.mark.parametrize("name", ESTIMATED)
def test_the_estimate_is_keras_penalty(name):
    """Within 15%: the file holds one draw of the initializer (the estimate
    is its expectation) and the recurrent moments are mean-field; before,
    the Conv2D was 240x low and the sequence 2.5x."""
    keras = MANIFEST[name]["keras_penalty_per_sample"]
    assert estimate(name) == pytest.approx(keras, rel=0.15)


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_the_output_shape_is_keras(name):
    layer = {layer.path: layer for layer in read_model(HERE / name).layers}[MANIFEST[name]["layer"]]
    assert list(layer.output_shape) == MANIFEST[name]["output_shape"]


def test_keras_3_drops_a_simple_rnn_activity_regularizer_and_so_does_the_reading():
    """Keras 3's SimpleRNN takes ``activity_regularizer`` and does not pass it
    on: no penalty, and the saved config holds none."""
    assert MANIFEST["simple_rnn_seq.keras"]["keras_penalty_per_sample"] == 0
    layer = {layer.path: layer for layer in read_model(HERE / "simple_rnn_seq.keras").layers}["reg"]
    assert layer.activity_regularizer is None and estimate("simple_rnn_seq.keras") is None
