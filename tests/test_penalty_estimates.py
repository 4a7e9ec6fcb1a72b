"""Penalties against Keras' own ``sum(model.losses)`` (the manifest's
``weight_penalty``, computed by Keras after loading each file back), and the
closed-form expectation at initialisation against untrained draws."""

from __future__ import annotations

import math

import pytest

from reglint.engine.analysis import Analysis
from reglint.readers import read_model

from helpers import KERAS_FIXTURES, keras_manifest

WITH_PENALTY = [e for e in keras_manifest()
                if e.get("weight_penalty") and e["format"] not in ("weights_only", "savedmodel")
                and "orthogonal" not in e["file"]]


def _saved_penalty(model, include_frozen: bool) -> float:
    analysis = Analysis(model)
    return sum(p.penalty_saved or 0.0 for p in analysis.penalties if p.active or include_frozen)


@pytest.mark.parametrize("entry", WITH_PENALTY, ids=[e["file"] for e in WITH_PENALTY])
def test_penalty_at_saved_weights_equals_keras(entry):
    model = read_model(KERAS_FIXTURES / entry["file"])
    if any(layer.custom for layer in model.layers) or any(
            v.regularizer is not None and v.regularizer.kind == "custom" for _, v in model.variables()):
        pytest.skip("custom classes are not interpreted without a mapping")
    # Keras 3 drops frozen layers' penalties; tf.keras 2 keeps them as a constant.
    include_frozen = entry["writer"] != "keras3"
    assert math.isclose(_saved_penalty(model, include_frozen), entry["weight_penalty"], rel_tol=1e-4)


UNTRAINED = [e for e in WITH_PENALTY if e.get("iterations") in (0, None) and e.get("generator_iterations") in (0, None)
             and e["file"].startswith("scenario_") and e["weight_penalty"] > 1e-6]


@pytest.mark.parametrize("entry", UNTRAINED, ids=[e["file"] for e in UNTRAINED])
def test_expected_penalty_at_init_matches_a_draw(entry):
    """E[P_init] from the initializers' closed forms against the penalty of
    the weights Keras actually drew: relative sampling error ~0.9/sqrt(n)."""
    model = read_model(KERAS_FIXTURES / entry["file"])
    analysis = Analysis(model)
    active = [p for p in analysis.penalties if p.active and p.penalty_init is not None]
    if not active:
        pytest.skip("no closed form for these penalties")
    expected = sum(p.penalty_init for p in active)
    drawn = sum(p.penalty_saved for p in active)
    n = sum(p.n for p in active)
    assert math.isclose(expected, drawn, rel_tol=max(0.02, 3 * 0.9 / math.sqrt(n))), (expected, drawn, n)


def test_seed_layer_numbers_from_the_reference():
    """The seed question: Conv2D(20, (2,3)) on 10 channels, glorot_uniform,
    L2(0.01): E[sum w^2] = 13.33, penalty about 0.133."""
    model = read_model(KERAS_FIXTURES / "conv2d_seed_l2.keras")
    [p] = Analysis(model).penalties
    assert math.isclose(p.sum_sq_init, 2 * 10 * 20 / 30, rel_tol=1e-9)
    assert math.isclose(p.penalty_init, 0.1333, rel_tol=1e-3)


def test_einsum_kernels_drawn_with_the_equations_fans():
    """Keras 3.15 draws EinsumDense kernels (MultiHeadAttention's projections
    included) with fans from the equation's axes: a query kernel (64, 8, 8) has
    fan_in 64 and fan_out 64, so E[sum w^2] = 4096 * 2/128 = 64, not the rank
    rule's 4096 * 2/1024 = 8. Each kernel's expectation against its own draw
    (4,096 weights: relative sampling error ~1.4%)."""
    model = read_model(KERAS_FIXTURES / "einsum_fans.keras")
    assert _entry_version("einsum_fans.keras").startswith("3.15")
    kernels = {f"{p.layer.path}/{p.variable.name}": p for p in Analysis(model).penalties
               if p.layer.class_name in ("MultiHeadAttention", "EinsumDense")}
    assert len(kernels) == 5  # query, key, value, attention_output, the EinsumDense
    for name, p in kernels.items():
        drawn = p.penalty_saved / 1e-3
        assert math.isclose(p.sum_sq_init, drawn, rel_tol=0.07), (name, p.sum_sq_init, drawn)
        assert math.isclose(p.sum_sq_init, 64.0, rel_tol=1e-9), name


def _entry_version(file: str) -> str:
    return next(e for e in keras_manifest() if e["file"] == file)["keras_version"]


def test_lstm_forget_gate_bias_starts_at_one():
    """Keras builds an LSTM's bias (LSTM, Bidirectional(LSTM), ConvLSTM1D)
    with ``units`` ones for the forget gate unless ``unit_forget_bias`` is
    off: with zeros elsewhere the penalty at any fresh initialisation is
    exact, L2(10) * (16 + 2*8 + 4) = 360, the penalty Keras computed on the
    file's untrained weights. Counting the bias as all zeros said 0."""
    model = read_model(KERAS_FIXTURES / "lstm_forget_bias.keras")
    biases = [p for p in Analysis(model).penalties if p.variable.role.name == "BIAS"]
    keras_penalty = next(e for e in keras_manifest() if e["file"] == "lstm_forget_bias.keras")["weight_penalty"]
    assert sum(p.penalty_saved for p in biases) == pytest.approx(keras_penalty, rel=1e-6)
    by_layer: dict[str, float] = {}
    for p in biases:
        assert p.penalty_init == pytest.approx(p.penalty_saved, rel=1e-6), (p.layer.path, p.variable.name)
        top = p.layer.path.split("/")[0]
        by_layer[top] = by_layer.get(top, 0.0) + p.penalty_init
    assert by_layer == pytest.approx({"lstm": 160.0, "bidi": 160.0, "convlstm": 40.0, "plain_lstm": 0.0})
    # what explain names: the ones beside the zeros, where the 160 come from
    labels = {p.layer.path: p.variable.initializer.label for p in biases if p.layer.path in ("lstm", "plain_lstm")}
    assert labels == {"lstm": "zeros, 16 forget-gate ones", "plain_lstm": "zeros"}


def test_keras1_lstm_forget_gate_bias_from_forget_bias_init():
    """Keras 1 stored an LSTM's gates apart (W_f, U_f, b_f) and drew b_f with
    ``forget_bias_init`` ('one'): its expected sum of squares at
    initialisation is the 6 ones the untrained file holds; the other gates'
    biases are zeros."""
    from reglint.estimate.init_scale import expected_sum_sq

    from helpers import CORPUS

    path = CORPUS / "modelimport__keras__weights__lstm_tensorflow_1.h5"
    if not path.is_file():
        pytest.skip("the shared corpus is not beside the checkout")
    [lstm] = [layer for layer in read_model(path).layers if layer.class_name == "LSTM"]
    biases = {v.name: v for v in lstm.variables if v.name.startswith("b_")}
    assert set(biases) == {"b_i", "b_c", "b_f", "b_o"}
    for name, var in biases.items():
        assert var.initializer is not None and var.initializer.name == ("ones" if name == "b_f" else "zeros")
        assert expected_sum_sq(var) == var.stats.sum_sq == (6.0 if name == "b_f" else 0.0)
