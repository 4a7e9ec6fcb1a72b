"""ONNX files converted from Keras by tf2onnx.

fixtures/onnx_tf2onnx/ holds six Keras models (TensorFlow 2.15) converted by
``tf2onnx.convert.from_keras`` at opsets 13 and 17 and by its command line
from a SavedModel folder, with Keras' own numbers
in manifest.json (fixtures/make_tf2onnx_fixtures.py). tf2onnx names tensors
by TensorFlow op path (``mlp/fc1/MatMul/ReadVariableOp:0``), folds
transposes into anonymous constants (``const_fold_opt__12``), folds
BatchNorm into the convolution before it, writes LayerNormalization as a
BatchNormalization of the reshaped input closed by a gamma ``Mul`` and a
beta ``Add``, puts reshapes between a MatMul and its bias, and pads an
LSTM's single bias with zeros into ONNX's two. The reader must give Keras'
layers, counts and roles through all of it.
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

ROOT = FIXTURES / "onnx_tf2onnx"
ENTRIES = json.loads((ROOT / "manifest.json").read_text())["files"]


def _id(entry: dict) -> str:
    return entry["file"]


def test_every_model_every_route():
    """from_keras at opsets 13 and 17, the command line on a SavedModel
    (names under StatefulPartitionedCall/, inputs as Func/...), and
    from_function on the layers themselves (no model scope:
    ``fc1/MatMul/ReadVariableOp:0``)."""
    assert {(e["model"], e["file"].split("/")[0]) for e in ENTRIES} == {
        (m, folder) for m in ("mlp", "cnn_bn_residual", "transformer", "recurrent", "embedding", "separable")
        for folder in ("opset13", "opset17", "saved_model_opset17")} | {
        (m, "function_opset17") for m in ("mlp", "recurrent", "embedding", "separable")}
    assert all(e["producer"].startswith("tf2onnx") for e in ENTRIES)
    assert any(e["folded"] for e in ENTRIES) and any(e["zero_recurrence_bias"] for e in ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_counts_equal_keras(entry):
    """Keras' count, less what folding BatchNorm into the convolution took
    out of the file, plus the zeros tf2onnx adds as an LSTM's second bias
    (which a note names)."""
    model = read_model(ROOT / entry["file"])
    assert model.problems == []
    assert model.total_params == entry["expected_params"]
    if not entry["folded"]:
        assert model.total_params == entry["count_params"] + sum(entry["zero_recurrence_bias"].values())
    for layer, zeros in entry["zero_recurrence_bias"].items():
        assert any(note.startswith(f"{layer}: ") and f"Keras counts {zeros} fewer" in note for note in model.notes)


def _expected_layers(entry: dict) -> dict[str, int]:
    layers = {name: info["params"] for name, info in entry["layers"].items()}
    for fold in entry["folded"]:
        del layers[fold["batchnorm"]]
        layers[fold["conv"]] += fold["added"]
    for name, zeros in entry["zero_recurrence_bias"].items():
        layers[name] += zeros
    return layers


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_one_layer_per_keras_layer(entry):
    """Layers are named as Keras names them (the model's own scope dropped);
    MultiHeadAttention's projections are its sub-layers (``attention.query``)."""
    found: dict[str, int] = {}
    for layer in read_model(ROOT / entry["file"]).layers:
        top = layer.name.split(".")[0]
        found[top] = found.get(top, 0) + layer.params
        assert layer.name == top or entry["layers"][top]["class"] == "MultiHeadAttention", layer.name
    assert found == _expected_layers(entry)


ROLES = {"Dense": {Role.KERNEL, Role.BIAS}, "Conv2D": {Role.KERNEL, Role.BIAS},
         "MultiHeadAttention": {Role.KERNEL, Role.BIAS}, "LayerNormalization": {Role.GAMMA, Role.BETA},
         "Embedding": {Role.EMBEDDINGS}, "DepthwiseConv2D": {Role.DEPTHWISE_KERNEL, Role.BIAS},
         "SeparableConv2D": {Role.DEPTHWISE_KERNEL, Role.POINTWISE_KERNEL, Role.BIAS},
         "LSTM": {Role.KERNEL, Role.RECURRENT_KERNEL, Role.BIAS},
         "Bidirectional": {Role.KERNEL, Role.RECURRENT_KERNEL, Role.BIAS}}


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_roles_follow_the_keras_layers(entry):
    """Every weight has its Keras role: a bias added after tf2onnx's reshapes
    is a bias, LayerNorm's gamma and beta are read through the
    BatchNormalization tf2onnx writes it as, a SeparableConv2D's 1x1
    convolution is its pointwise kernel."""
    roles: dict[str, set[Role]] = {}
    for layer in read_model(ROOT / entry["file"]).layers:
        top = layer.name.split(".")[0]
        roles.setdefault(top, set()).update(v.role for v in layer.variables)
        if entry["layers"][top]["class"] == "LayerNormalization":
            assert layer.class_name == "LayerNormalization"  # a normalizer to the graph walk
    for name, found in roles.items():
        expected = ROLES[entry["layers"][name]["class"]]
        assert found == expected or (found == {Role.KERNEL, Role.BIAS} and name in
                                     {f["conv"] for f in entry["folded"]}), (name, found)


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_lint_healthy_model_without_errors(entry):
    report = lint_file(str(ROOT / entry["file"]), Settings())
    assert report.error is None
    assert [f.code for f in report.findings if f.severity is Severity.ERROR] == []
