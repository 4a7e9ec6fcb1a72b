"""Variables and output shapes derived from Keras configs (keras_shapes,
keras_outputs, keras_graph). The values are the ones each layer's
``build()``/``compute_output_shape`` gives in Keras 3.15 and tf-keras 2.21
(the zoo fixtures in tests/test_exactness.py check them on files Keras
wrote); Keras 1 layouts are the ones the shared corpus stores."""

from __future__ import annotations

import pytest

from reglint.model import Role
from reglint.readers.keras_graph import input_shapes
from reglint.readers.keras_outputs import output_shapes
from reglint.readers.keras_shapes import CannotInfer, expected_variables


def shapes(class_name, cfg, *inputs):
    return {v.name: v.shape for v in expected_variables(class_name, cfg, list(inputs))}


def test_recurrent_kernels_hold_every_gate():
    assert shapes("LSTM", {"units": 6}, (None, 5, 3)) == {
        "kernel": (3, 24), "recurrent_kernel": (6, 24), "bias": (24,)}
    assert shapes("GRU", {"units": 4, "reset_after": True}, (None, 5, 3))["bias"] == (2, 12)
    assert shapes("GRU", {"units": 4, "reset_after": False}, (None, 5, 3))["bias"] == (12,)
    assert shapes("GRU", {"units": 4}, (None, 5, 3))["bias"] == (12,)  # Keras 2.0-2.2 configs omit it: False
    assert shapes("CuDNNLSTM", {"units": 2}, (None, 5, 3))["bias"] == (16,)
    assert shapes("ConvLSTM2D", {"filters": 3, "kernel_size": [3, 3]}, (None, 5, 6, 6, 2)) == {
        "kernel": (3, 3, 2, 12), "recurrent_kernel": (3, 3, 3, 12), "bias": (12,)}


def test_keras1_recurrent_layers_store_one_tensor_per_gate():
    got = shapes("LSTM", {"output_dim": 6, "consume_less": "cpu", "init": "glorot_uniform"}, (None, 4, 1))
    assert list(got)[:3] == ["W_i", "U_i", "b_i"] and len(got) == 12 and got["U_o"] == (6, 6)
    gpu = shapes("LSTM", {"output_dim": 6, "consume_less": "gpu", "init": "glorot_uniform"}, (None, 4, 1))
    assert gpu == {"W": (1, 24), "U": (6, 24), "b": (24,)}


def test_wrappers_prefix_their_copies():
    lstm = {"class_name": "LSTM", "config": {"name": "lstm_1", "units": 2}}
    got = shapes("Bidirectional", {"layer": lstm}, (None, 5, 3))
    assert got["forward_lstm_1/kernel"] == got["backward_lstm_1/kernel"] == (3, 8)
    dense = {"class_name": "Dense", "config": {"units": 4}}
    assert shapes("TimeDistributed", {"layer": dense}, (None, 5, 3)) == {"kernel": (3, 4), "bias": (4,)}


def test_multi_head_attention_projections():
    got = shapes("MultiHeadAttention", {"num_heads": 2, "key_dim": 3, "value_dim": 5, "output_shape": 9,
                                        "use_gate": True}, (None, 10, 7), (None, 4, 6))
    assert got == {"query/kernel": (7, 2, 3), "query/bias": (2, 3), "key/kernel": (6, 2, 3), "key/bias": (2, 3),
                   "gate/kernel": (7, 2, 5), "gate/bias": (2, 5), "value/kernel": (6, 2, 5),
                   "value/bias": (2, 5), "attention_output/kernel": (2, 5, 9), "attention_output/bias": (9,)}


def test_convolution_families():
    assert shapes("SeparableConv2D", {"filters": 6, "kernel_size": [2, 2], "depth_multiplier": 3},
                  (None, 9, 9, 4)) == {"depthwise_kernel": (2, 2, 4, 3), "pointwise_kernel": (1, 1, 12, 6),
                                       "bias": (6,)}
    assert shapes("DepthwiseConv2D", {"kernel_size": [3, 3], "depth_multiplier": 2}, (None, 8, 8, 5))["bias"] == (10,)
    grouped = {"filters": 4, "kernel_size": [3, 3], "groups": 2}
    assert shapes("Conv2D", grouped, (None, 9, 9, 2))["kernel"] == (3, 3, 1, 4)
    assert shapes("Conv2DTranspose", {"filters": 5, "kernel_size": [3, 3]}, (None, 4, 4, 6))["kernel"] == (3, 3, 5, 6)
    channels_first = {"filters": 4, "kernel_size": [3, 3], "data_format": "channels_first"}
    assert shapes("Conv2D", channels_first, (None, 3, 9, 9))["kernel"] == (3, 3, 3, 4)
    # Keras 1: 1-D convolutions ran as 2-D ones; Theano ordering put filters first.
    assert shapes("Convolution1D", {"nb_filter": 6, "filter_length": 3, "init": "glorot_uniform"},
                  (None, 10, 5))["W"] == (3, 1, 5, 6)
    assert shapes("Convolution2D", {"nb_filter": 5, "nb_row": 3, "nb_col": 3, "dim_ordering": "th",
                                    "init": "glorot_uniform"}, (None, 10, 7, 7))["W"] == (5, 10, 3, 3)


def test_normalization_layers():
    bn = expected_variables("BatchNormalization", {"renorm": True}, [(None, 8)])
    assert [(v.name, v.trainable) for v in bn][:4] == [("gamma", True), ("beta", True), ("moving_mean", False),
                                                        ("moving_variance", False)] and len(bn) == 7
    assert shapes("LayerNormalization", {"axis": [1, 2]}, (None, 4, 6)) == {"gamma": (4, 6), "beta": (4, 6)}
    assert list(shapes("LayerNormalization", {"rms_scaling": True}, (None, 6))) == ["gamma"]
    norm = expected_variables("Normalization", {"axis": -1}, [(None, 8, 8, 3)])
    assert [(v.name, v.shape, v.role, v.trainable) for v in norm] == [
        ("mean", (3,), Role.MOVING_MEAN, False), ("variance", (3,), Role.MOVING_VARIANCE, False),
        ("count", (), Role.OTHER, False)]
    assert expected_variables("Normalization", {"mean": [0.5], "variance": [1.0]}, [(None, 1)]) == []
    assert shapes("PReLU", {"shared_axes": [1, 2]}, (None, 5, 5, 3)) == {"alpha": (1, 1, 3)}


def test_what_the_config_cannot_fix():
    with pytest.raises(CannotInfer, match="not a built-in"):
        expected_variables("ScaledDense", {"units": 3}, [(None, 4)])
    with pytest.raises(CannotInfer, match="quantized"):
        expected_variables("Dense", {"units": 3, "dtype": {"class_name": "QuantizedDTypePolicy",
                                                           "config": {"name": "int8_from_float32"}}}, [(None, 4)])
    unknown = expected_variables("Dense", {"units": 3}, [None])
    assert unknown[0].shape == (None, 3) and not unknown[0].known


def test_lora_freezes_the_kernel_and_adds_two_factors():
    """Dense.enable_lora(2) as build() calls it for a saved lora_rank: the
    kernel frozen, lora_kernel_a (in x rank) and lora_kernel_b (rank x units)
    trainable, after the bias; the factors are what a .keras file merges."""
    lora = expected_variables("Dense", {"units": 3, "lora_rank": 2}, [(None, 4)])
    assert [(v.name, v.shape, v.trainable, v.merged) for v in lora] == [
        ("kernel", (4, 3), False, False), ("bias", (3,), True, False),
        ("lora_kernel_a", (4, 2), True, True), ("lora_kernel_b", (2, 3), True, True)]
    conv = expected_variables("Conv2D", {"filters": 5, "kernel_size": [3, 3], "lora_rank": 1}, [(None, 8, 8, 2)])
    assert {v.name: v.shape for v in conv}["lora_kernel_a"] == (3, 3, 2, 1)
    emb = expected_variables("Embedding", {"input_dim": 10, "output_dim": 4, "lora_rank": 2}, [(None, 5)])
    assert [(v.name, v.shape) for v in emb] == [("embeddings", (10, 4)), ("lora_embeddings_a", (10, 2)),
                                                ("lora_embeddings_b", (2, 4))]


def test_output_shapes():
    conv_t = {"filters": 5, "kernel_size": [3, 3], "strides": [2, 2], "output_padding": [1, 1], "padding": "valid"}
    assert output_shapes("Conv2DTranspose", conv_t, [(None, 3, 3, 6)]) == [(None, 8, 8, 5)]
    causal = {"filters": 8, "kernel_size": [3], "padding": "causal", "dilation_rate": [2]}
    assert output_shapes("Conv1D", causal, [(None, 12, 6)]) == [(None, 12, 8)]
    assert output_shapes("MaxPooling2D", {"pool_size": [2, 2], "padding": "same"}, [(None, 5, 5, 3)]) == [
        (None, 3, 3, 3)]
    assert output_shapes("Reshape", {"target_shape": [-1, 6]}, [(None, 3, 4)]) == [(None, 2, 6)]
    assert output_shapes("Concatenate", {"axis": -1}, [(None, 4), (None, 6)]) == [(None, 10)]
    assert output_shapes("LSTM", {"units": 3, "return_sequences": True, "return_state": True},
                         [(None, 5, 2)]) == [(None, 5, 3), (None, 3), (None, 3)]
    assert output_shapes("Lambda", {"function": "..."}, [(None, 4)]) is None


def test_tf_keras_nested_model_calls_are_numbered_from_one():
    """tf-keras leaves a nested model's own node out of the config, so the
    head refers to ``["inner", 1, 0]`` while ``inner`` records one call."""
    inner = {"class_name": "Functional", "name": "inner", "inbound_nodes": [[["in", 0, 0, {}]]],
             "config": {"name": "inner", "input_layers": [["x", 0, 0]], "output_layers": [["d", 0, 0]],
                        "layers": [{"class_name": "InputLayer", "name": "x",
                                    "config": {"batch_input_shape": [None, 6], "name": "x"}, "inbound_nodes": []},
                                   {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 4},
                                    "inbound_nodes": [[["x", 0, 0, {}]]]}]}}
    root = {"class_name": "Functional", "config": {
        "name": "outer", "input_layers": [["in", 0, 0]], "output_layers": [["head", 0, 0]],
        "layers": [{"class_name": "InputLayer", "name": "in", "config": {"batch_input_shape": [None, 6]},
                    "inbound_nodes": []}, inner,
                   {"class_name": "Dense", "name": "head", "config": {"name": "head", "units": 2},
                    "inbound_nodes": [[["inner", 1, 0, {}]]]}]}}
    assert input_shapes(root)["head"] == [(None, 4)]


# -- hostile or hand-edited configs ---------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import FIXTURES  # noqa: E402

ARCHITECTURES = [FIXTURES / "exactness" / name for name in
                 ("json_cnn_bn_residual.json", "json_mha_block.json", "tfk_json_bilstm_embedding.json",
                  "tfk_zoo.json")]
SHAPE_KEYS = ["units", "filters", "kernel_size", "strides", "padding", "groups", "axis", "num_heads", "key_dim",
              "value_dim", "output_shape", "target_shape", "batch_shape", "batch_input_shape", "equation",
              "bias_axes", "pool_size", "dims", "layer", "cell", "depth_multiplier", "input_dim", "output_dim",
              "cropping", "size", "data_format", "implementation", "shared_axes", "dilation_rate"]
values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(SHAPE_KEYS), children,
                                                                       max_size=3),
    max_leaves=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_shape_value_gives_a_model_or_a_one_line_error(tmp_path, data):
    import json

    from reglint.errors import ReglintError
    from reglint.readers import read_model

    source = data.draw(st.sampled_from(ARCHITECTURES))
    root = json.loads(source.read_text())
    layers = root["config"]["layers"]
    entry = layers[data.draw(st.integers(0, len(layers) - 1))]
    entry.setdefault("config", {})[data.draw(st.sampled_from(SHAPE_KEYS))] = data.draw(values)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(root))
    try:
        model = read_model(path)
    except ReglintError as exc:
        message = str(exc)
        model = None
    if model is None:
        assert "\n" not in message
    else:
        assert model.total_params >= 0
