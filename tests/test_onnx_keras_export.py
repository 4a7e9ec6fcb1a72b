"""ONNX files Keras 3 exports itself (``model.export(path, format="onnx")``
under the torch backend; fixtures/make_keras_onnx_export_fixtures.py).

Such a file names nothing after the model: ``onnx::Conv_131`` feeds node
``/Conv``, its bias ``onnx::Add_134`` an ``Add`` after a Transpose and a
Cast, and an LSTM or GRU runs unrolled as MatMuls. reglint must count
Keras' parameters and keep each bias with its kernel.
"""

from __future__ import annotations

import json

import pytest

from reglint.engine.finding import Severity
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.model import Role
from reglint.readers import read_model

from helpers import FIXTURES

ROOT = FIXTURES / "onnx_keras_export"
ENTRIES = json.loads((ROOT / "manifest.json").read_text())["files"]


def test_the_zoo_is_there():
    assert {e["model"] for e in ENTRIES} == {"mlp", "convolutions", "recurrent", "embedding"}
    assert all(e["how"].startswith("model.export") for e in ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["model"])
def test_counts_equal_keras(entry):
    model = read_model(ROOT / entry["file"])
    assert model.problems == []
    assert model.total_params == model.trainable_params == entry["count_params"]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["model"])
def test_every_bias_stays_with_its_kernel(entry):
    """No layer holds a bias alone: the nameless bias joins the layer of the
    MatMul or Conv whose output it is added to (looking through the
    Transpose and Cast the export puts between them)."""
    layers = read_model(ROOT / entry["file"]).layers
    for layer in layers:
        roles = {v.role for v in layer.variables}
        assert roles != {Role.BIAS}, layer.name
        kernels = [v for v in layer.variables if v.role.is_kernel_like and v.role is not Role.EMBEDDINGS]
        for bias in (v for v in layer.variables if v.role is Role.BIAS):
            # its own kernel's outputs: a MatMul's last axis, a Conv's first
            kernel = kernels[-1]
            features = kernel.shape[0] if layer.class_name == "Conv" else kernel.shape[-1]
            assert bias.size == features, (layer.name, bias.shape, kernel.shape)
    biases = sum(1 for layer in layers for v in layer.variables if v.role is Role.BIAS)
    assert biases >= 2


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["model"])
def test_lint_healthy_model_without_errors(entry):
    report = lint_file(str(ROOT / entry["file"]), Settings())
    assert report.error is None
    assert [f.code for f in report.findings if f.severity is Severity.ERROR] == []
