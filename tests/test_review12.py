"""Review 12's findings on the ONNX reader's TensorFlow names and roles,
each on the graph that showed it (the block-quantized ones are in
test_onnx_blockwise.py, the tf2onnx routes in test_onnx_tf2onnx.py)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from reglint.model import Role  # noqa: E402
from reglint.readers import read_model  # noqa: E402

RNG = np.random.default_rng(0)


def _save(tmp_path, nodes, inits, inputs, outputs, producer: str = "pytorch") -> str:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name=producer)
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    return path


def _array(shape, name, scale=0.2):
    return numpy_helper.from_array(RNG.normal(0, scale, shape).astype(np.float32), name)


def test_a_position_embedding_after_a_reshaped_conv_is_no_bias(tmp_path):
    """A ViT without a class token: Conv -> Reshape -> Transpose ->
    Add(pos_embed [1, 16, 8]). Biases are found through reshapes (tf2onnx's
    Tensordot) only when they hold one value an output feature: this one
    holds 128 for 8 channels."""
    inits = [_array((8, 3, 4, 4), "patch_embed.proj.weight"), _array((8,), "patch_embed.proj.bias"),
             _array((1, 16, 8), "pos_embed", 0.02), numpy_helper.from_array(np.array([1, 8, 16], np.int64), "shape")]
    nodes = [helper.make_node("Conv", ["x", "patch_embed.proj.weight", "patch_embed.proj.bias"], ["c"],
                              strides=[4, 4], kernel_shape=[4, 4], name="/patch_embed/proj/Conv"),
             helper.make_node("Reshape", ["c", "shape"], ["f"], name="/patch_embed/Reshape"),
             helper.make_node("Transpose", ["f"], ["t"], perm=[0, 2, 1], name="/patch_embed/Transpose"),
             helper.make_node("Add", ["t", "pos_embed"], ["y"], name="/Add")]
    path = _save(tmp_path, nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 8])])
    roles = {v.name: v.role for layer in read_model(path).layers for v in layer.variables}
    assert roles["pos_embed"] is Role.OTHER and roles["patch_embed.proj.bias"] is Role.BIAS


def test_a_bias_after_a_reshape_with_one_value_a_feature_is_a_bias(tmp_path):
    """The case the walk through reshapes is for: MatMul -> Reshape ->
    Add(bias [heads, dim]), MultiHeadAttention's per-head bias."""
    inits = [_array((16, 16), "mha/query/kernel"), _array((2, 8), "mha/query/add/ReadVariableOp:0"),
             numpy_helper.from_array(np.array([-1, 5, 2, 8], np.int64), "shape")]
    nodes = [helper.make_node("MatMul", ["x", "mha/query/kernel"], ["h"]),
             helper.make_node("Reshape", ["h", "shape"], ["r"]),
             helper.make_node("Add", ["r", "mha/query/add/ReadVariableOp:0"], ["y"])]
    path = _save(tmp_path, nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 5, 16])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], producer="tf2onnx")
    roles = {v.name: v.role for layer in read_model(path).layers for v in layer.variables}
    assert roles["mha/query/add/ReadVariableOp:0"] is Role.BIAS


def test_a_vector_in_an_einsum_is_no_kernel(tmp_path):
    """Rotary embeddings as older Hugging Face models write them:
    einsum("i,j->ij", arange(n), inv_freq); inv_freq is a buffer."""
    inv_freq = (1.0 / (10000 ** (np.arange(0, 8, 2) / 8))).astype(np.float32)
    inits = [numpy_helper.from_array(inv_freq, "rotary_emb.inv_freq"), _array((8, 4), "proj.weight")]
    nodes = [helper.make_node("Einsum", ["t", "rotary_emb.inv_freq"], ["f"], equation="i,j->ij"),
             helper.make_node("Einsum", ["f", "proj.weight"], ["y"], equation="ij,kj->ik")]
    path = _save(tmp_path, nodes, inits, [helper.make_tensor_value_info("t", TensorProto.FLOAT, ["s"])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    roles = {v.name: v.role for layer in read_model(path).layers for v in layer.variables}
    assert roles == {"rotary_emb.inv_freq": Role.OTHER, "proj.weight": Role.KERNEL}


@pytest.mark.parametrize("producer", ["pytorch", "tf2onnx"])
def test_the_zero_recurrence_bias_note_is_for_converters_only(tmp_path, producer):
    """PyTorch's b_hh is a parameter even when it starts at zero: the note
    that Keras counts fewer is for files tf2onnx (or keras2onnx) wrote."""
    hidden, inputs = 4, 3
    bias = np.concatenate([RNG.normal(0, 0.2, (1, 4 * hidden)), np.zeros((1, 4 * hidden))], axis=1)
    inits = [_array((1, 4 * hidden, inputs), "onnx::LSTM_1"), _array((1, 4 * hidden, hidden), "onnx::LSTM_2"),
             numpy_helper.from_array(bias.astype(np.float32), "onnx::LSTM_3")]
    nodes = [helper.make_node("LSTM", ["x", "onnx::LSTM_1", "onnx::LSTM_2", "onnx::LSTM_3"], ["y"],
                              hidden_size=hidden, name="/lstm/LSTM")]
    path = _save(tmp_path, nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 1, inputs])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], producer=producer)
    noted = any("Keras counts" in note for note in read_model(path).notes)
    assert noted is (producer == "tf2onnx")
