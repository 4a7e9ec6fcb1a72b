"""Block-quantized ONNX weights (MatMulNBits, GatherBlockQuantized, blocked
DequantizeLinear): counted at the float model's shape, with statistics of
the dequantized values, held to onnxruntime's own kernels.

Each case quantizes a float model with onnxruntime's ``MatMulNBitsQuantizer``
(the layouts it writes) or writes the op by hand (layouts other tools write:
onnxruntime-genai's uint8-packed embedding tables, HQQ's float zero points,
2-bit weights), then runs the file in onnxruntime with inputs that make it
output the dequantized weight itself (an identity matrix for a MatMul, every
row index for a Gather). reglint's count and statistics must be that
output's.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from reglint.model import Role  # noqa: E402
from reglint.readers import read_model  # noqa: E402

MS = "com.microsoft"
RNG = np.random.default_rng(7)


def _opsets(domain_version: int = 21) -> list:
    return [helper.make_opsetid("", domain_version), helper.make_opsetid(MS, 1)]


def _matmul_model(k: int, n: int) -> onnx.ModelProto:
    """``y = x @ W``, W [k, n] a float initializer named ``fc.weight``."""
    weight = RNG.normal(0, 0.2, (k, n)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "fc.weight"], ["y"], name="fc/MatMul")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", n])],
        [numpy_helper.from_array(weight, "fc.weight")])
    return helper.make_model(graph, opset_imports=_opsets())


def _quantized(k: int, n: int, tmp_path, **config) -> str:
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    quantizer = MatMulNBitsQuantizer(_matmul_model(k, n), algo_config=DefaultWeightOnlyQuantConfig(**config))
    quantizer.process()
    path = str(tmp_path / "q.onnx")
    quantizer.model.save_model_to_file(path)
    return path


def _run(path: str, feeds: dict) -> np.ndarray:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0].astype(np.float64)


def _kernel(path: str):
    model = read_model(path)
    assert model.problems == []
    [variable] = [v for layer in model.layers for v in layer.variables if v.role is not Role.BIAS]
    return model, variable


def _assert_stats(stats, dequantized: np.ndarray) -> None:
    assert stats is not None and stats.count == dequantized.size
    assert stats.sum_sq == pytest.approx(float(np.sum(dequantized ** 2)), rel=1e-5)
    assert stats.sum_abs == pytest.approx(float(np.sum(np.abs(dequantized))), rel=1e-5)
    assert stats.max_abs == pytest.approx(float(np.max(np.abs(dequantized))), rel=1e-5)


@pytest.mark.parametrize(("k", "n", "config"), [
    (40, 24, {"block_size": 16}),  # asymmetric 4-bit, K not a multiple of the block: padding
    (64, 8, {"block_size": 32, "is_symmetric": True}),  # no zero points: 8 is implied
    (48, 10, {"block_size": 16, "bits": 8}),
    (40, 24, {"block_size": 16, "bits": 2}),
], ids=["int4-asym-padded", "int4-sym", "int8", "int2"])
def test_matmul_nbits_is_the_dequantized_weight(tmp_path, k, n, config):
    path = _quantized(k, n, tmp_path, **config)
    ops = {node.op_type for node in onnx.load(path).graph.node}
    if "MatMulNBits" not in ops:
        pytest.skip(f"this onnxruntime does not quantize to {config.get('bits', 4)} bits")
    dequantized = _run(path, {"x": np.eye(k, dtype=np.float32)})
    model, kernel = _kernel(path)
    assert (model.total_params, kernel.shape, kernel.role) == (k * n, (k, n), Role.KERNEL)
    _assert_stats(kernel.stats, dequantized)
    assert any(f"stored quantized (uint{config.get('bits', 4)})" in note for note in model.notes)


def test_blocked_dequantize_linear_is_the_dequantized_weight(tmp_path):
    """QDQ format: uint4 weights, DequantizeLinear with block_size (opset 21)."""
    from onnxruntime.quantization import QuantFormat

    path = _quantized(40, 24, tmp_path, block_size=16, quant_format=QuantFormat.QDQ)
    dequantized = _run(path, {"x": np.eye(40, dtype=np.float32)})
    model, kernel = _kernel(path)
    assert (model.total_params, kernel.shape, kernel.dtype) == (960, (40, 24), "uint4")
    _assert_stats(kernel.stats, dequantized)


def _handmade(tmp_path, nodes, initializers, inputs, output_shape, opset: int = 21) -> str:
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
                              initializers)
    path = str(tmp_path / "h.onnx")
    onnx.save(helper.make_model(graph, opset_imports=_opsets(opset)), path)
    return path


@pytest.mark.parametrize("signed", [False, True], ids=["uint4", "int4"])
@pytest.mark.parametrize("axis", [0, 1])
def test_blocked_dequantize_linear_any_axis(tmp_path, signed, axis):
    """A hand-written blocked DequantizeLinear (what ModelOpt and Olive
    write): int4 or uint4 values, zero points of the same type, blocks
    along either axis, a dimension the block does not divide."""
    shape, block = (10, 7), 4
    low, high = (-8, 8) if signed else (0, 16)
    q = RNG.integers(low, high, shape)
    cut = [shape[0], shape[1]]
    cut[axis] = -(-shape[axis] // block)
    scale = RNG.uniform(0.01, 0.1, cut).astype(np.float32)
    zero = RNG.integers(low, high, cut)
    kind = TensorProto.INT4 if signed else TensorProto.UINT4
    inits = [helper.make_tensor("w.weight", kind, shape, q.reshape(-1).tolist()),
             numpy_helper.from_array(scale, "w.scale"),
             helper.make_tensor("w.zero", kind, cut, zero.reshape(-1).tolist())]
    nodes = [helper.make_node("DequantizeLinear", ["w.weight", "w.scale", "w.zero"], ["w"], axis=axis,
                              block_size=block),
             helper.make_node("MatMul", ["x", "w"], ["y"])]
    path = _handmade(tmp_path, nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 10])],
                     ["b", 7])
    dequantized = _run(path, {"x": np.eye(10, dtype=np.float32)})
    spread = [np.repeat(a, block, axis=axis).take(range(shape[axis]), axis=axis) for a in (zero, scale)]
    np.testing.assert_allclose(dequantized, (q - spread[0]) * spread[1], rtol=1e-6)  # the layout as written
    _, kernel = _kernel(path)
    assert kernel.shape == shape
    _assert_stats(kernel.stats, dequantized)


def test_matmul_nbits_float_zero_points(tmp_path):
    """HQQ's layout: zero points unpacked, in the scales' float type."""
    k, n, block = 32, 6, 16
    blocks = k // block
    q = RNG.integers(0, 16, (n, blocks, block)).astype(np.uint8)
    packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
    scales = RNG.uniform(0.01, 0.1, (n, blocks)).astype(np.float32)
    zeros = RNG.uniform(4, 12, (n, blocks)).astype(np.float32)
    inits = [numpy_helper.from_array(packed, "fc.weight_Q4"), numpy_helper.from_array(scales, "fc.scales"),
             numpy_helper.from_array(zeros, "fc.zeros")]
    nodes = [helper.make_node("MatMulNBits", ["x", "fc.weight_Q4", "fc.scales", "fc.zeros"], ["y"], domain=MS,
                              K=k, N=n, bits=4, block_size=block)]
    path = _handmade(tmp_path, nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", k])],
                     ["b", n])
    dequantized = _run(path, {"x": np.eye(k, dtype=np.float32)})
    _, kernel = _kernel(path)
    assert kernel.shape == (k, n)
    _assert_stats(kernel.stats, dequantized)


def _pack_rows(values: np.ndarray) -> np.ndarray:
    """Two 4-bit values a byte along the last axis, low first, each row
    padded to whole bytes (how MatMulNBits and uint8 GatherBlockQuantized
    store codes and zero points)."""
    if values.shape[-1] % 2:
        values = np.concatenate([values, np.zeros((*values.shape[:-1], 1), values.dtype)], axis=-1)
    return (values[..., 0::2] | (values[..., 1::2] << 4)).astype(np.uint8)


@pytest.mark.parametrize("layout", ["uint8-packed", "uint4", "int4", "uint8-8bit"])
@pytest.mark.parametrize(("dim", "with_zeros"), [(32, True), (48, True), (40, True), (32, False)],
                         ids=["2-blocks", "3-blocks", "padded-block", "no-zero-points"])
def test_gather_block_quantized_is_the_dequantized_table(tmp_path, layout, dim, with_zeros):
    """An embedding table for GatherBlockQuantized, in each storage it
    accepts, with an odd number of blocks a row (zero points packed row by
    row, each row padded: Qwen2.5-0.5B's 896 columns are 7 blocks of 128),
    a last block the row does not fill, and without zero points (8 for
    uint8 data, as MatMulNBits; 0 for int4 and uint4); every row gathered
    is the dequantized table."""
    vocab, block = 9, 16
    bits = 8 if layout == "uint8-8bit" else 4
    signed = layout == "int4"
    low, high = (-8, 8) if signed else (0, 1 << bits)
    q = RNG.integers(low, high, (vocab, dim))
    cut = (vocab, -(-dim // block))
    scale = RNG.uniform(0.01, 0.1, cut).astype(np.float32)
    zero = RNG.integers(low, high, cut)
    if layout == "uint8-packed":
        data = numpy_helper.from_array(_pack_rows(q), "embed.weight_Q4")
        zeros = numpy_helper.from_array(_pack_rows(zero), "embed.zeros")
    elif layout == "uint8-8bit":
        data = numpy_helper.from_array(q.astype(np.uint8), "embed.weight_Q8")
        zeros = numpy_helper.from_array(zero.astype(np.uint8), "embed.zeros")
    else:
        kind = TensorProto.INT4 if signed else TensorProto.UINT4
        data = helper.make_tensor("embed.weight_Q4", kind, (vocab, dim), q.reshape(-1).tolist())
        zeros = helper.make_tensor("embed.zeros", kind, cut, zero.reshape(-1).tolist())
    inits = [data, numpy_helper.from_array(scale, "embed.scales")] + ([zeros] if with_zeros else [])
    inputs = [data.name, "ids", "embed.scales"] + (["embed.zeros"] if with_zeros else [])
    nodes = [helper.make_node("GatherBlockQuantized", inputs, ["y"], domain=MS, gather_axis=0, quantize_axis=1,
                              block_size=block, bits=bits)]
    path = _handmade(tmp_path, nodes, inits, [helper.make_tensor_value_info("ids", TensorProto.INT64, [vocab])],
                     [vocab, dim])
    dequantized = _run(path, {"ids": np.arange(vocab, dtype=np.int64)})
    model, table = _kernel(path)
    assert (model.total_params, table.shape, table.role) == (vocab * dim, (vocab, dim), Role.EMBEDDINGS)
    _assert_stats(table.stats, dequantized)


def test_a_block_longer_than_the_axis_is_the_axis(tmp_path):
    """block_size 2^27 over 32 columns is one block a row: read as such, in
    no more memory than the table (it took 6 GB to expand the scales)."""
    vocab, dim = 6, 32
    q = RNG.integers(0, 16, (vocab, dim))
    scale = RNG.uniform(0.01, 0.1, (vocab, 1)).astype(np.float32)
    inits = [numpy_helper.from_array(_pack_rows(q), "embed.weight_Q4"), numpy_helper.from_array(scale, "embed.s")]
    nodes = [helper.make_node("GatherBlockQuantized", ["embed.weight_Q4", "ids", "embed.s"], ["y"], domain=MS,
                              gather_axis=0, quantize_axis=1, block_size=1 << 27, bits=4)]
    path = _handmade(tmp_path, nodes, inits, [helper.make_tensor_value_info("ids", TensorProto.INT64, [vocab])],
                     [vocab, dim])
    _, table = _kernel(path)
    _assert_stats(table.stats, (q - 8) * scale.astype(np.float64))


@pytest.mark.parametrize("op", ["MatMulNBits", "GatherBlockQuantized"])
def test_a_weight_shared_by_two_ops_is_one_parameter(tmp_path, op):
    """ALBERT's layers share one weight; an encoder and a decoder one table.
    The quantizer writes it once, read by two packed ops alike: one
    parameter at its float shape (it was counted as its bytes)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    weight = RNG.normal(0, 0.2, (32, 32)).astype(np.float32)
    if op == "MatMulNBits":
        nodes = [helper.make_node("MatMul", ["x", "shared.weight"], ["h"], name="/l1/MatMul"),
                 helper.make_node("MatMul", ["h", "shared.weight"], ["y"], name="/l2/MatMul")]
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 32])]
        types = ("MatMul",)
    else:
        nodes = [helper.make_node("Gather", ["shared.weight", "ids"], ["a"], name="/enc/Gather"),
                 helper.make_node("Gather", ["shared.weight", "ids"], ["b"], name="/dec/Gather"),
                 helper.make_node("Add", ["a", "b"], ["y"])]
        inputs = [helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"])]
        types = ("Gather",)
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(weight, "shared.weight")])
    quantizer = MatMulNBitsQuantizer(helper.make_model(graph, opset_imports=_opsets()), algo_config=(
        DefaultWeightOnlyQuantConfig(block_size=16, op_types_to_quantize=types)))
    quantizer.process()
    path = str(tmp_path / "shared.onnx")
    quantizer.model.save_model_to_file(path)
    packed = [t for t in onnx.load(path).graph.initializer if t.name.endswith("_Q4")]
    assert len(packed) == 1  # written once
    model, variable = _kernel(path)
    assert (model.total_params, variable.shape, variable.dtype) == (32 * 32, (32, 32), "uint4")
    assert variable.stats is not None and variable.stats.count == 32 * 32


def test_scales_and_zero_points_are_not_parameters(tmp_path):
    path = _quantized(40, 24, tmp_path, block_size=16)
    model = read_model(path)
    assert [(layer.name, [v.name for v in layer.variables]) for layer in model.layers] == [
        ("fc", ["fc.weight_Q4"])]
    assert model.total_params == 40 * 24


@pytest.mark.parametrize("signed", [False, True], ids=["uint4", "int4"])
def test_per_channel_int4_dequantize_linear(tmp_path, signed):
    """int4 without blocks: one scale per output channel (opset 21)."""
    shape = (6, 5)
    low, high = (-8, 8) if signed else (0, 16)
    q = RNG.integers(low, high, shape)
    scale = RNG.uniform(0.01, 0.1, shape[1]).astype(np.float32)
    zero = RNG.integers(low, high, shape[1])
    kind = TensorProto.INT4 if signed else TensorProto.UINT4
    inits = [helper.make_tensor("w.weight", kind, shape, q.reshape(-1).tolist()),
             numpy_helper.from_array(scale, "w.scale"), helper.make_tensor("w.zero", kind, [shape[1]], zero.tolist())]
    nodes = [helper.make_node("DequantizeLinear", ["w.weight", "w.scale", "w.zero"], ["w"], axis=1),
             helper.make_node("MatMul", ["x", "w"], ["y"])]
    path = _handmade(tmp_path, nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 6])],
                     ["b", 5])
    dequantized = _run(path, {"x": np.eye(6, dtype=np.float32)})
    np.testing.assert_allclose(dequantized, (q - zero) * scale, rtol=1e-5, atol=1e-7)  # float32 sums
    _, kernel = _kernel(path)
    _assert_stats(kernel.stats, dequantized)


def _language_model(head: np.ndarray, table: np.ndarray) -> onnx.ModelProto:
    """Gather from a named table, then a MatMul by an exporter-named
    (anonymous) [dim, vocab] head, as TorchScript folds a tied lm_head."""
    graph = helper.make_graph(
        [helper.make_node("Gather", ["embed.weight", "ids"], ["h"], name="/embed/Gather"),
         helper.make_node("MatMul", ["h", "onnx::MatMul_9"], ["y"], name="/lm_head/MatMul")], "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", table.shape[0]])],
        [numpy_helper.from_array(table, "embed.weight"), numpy_helper.from_array(head, "onnx::MatMul_9")])
    return helper.make_model(graph, opset_imports=_opsets())


@pytest.mark.parametrize("head", ["tied", "untied", "tied-then-nudged"])
@pytest.mark.parametrize("symmetric", [False, True], ids=["asym", "sym"])
def test_quantized_head_merges_with_its_table_only_when_tied(tmp_path, head, symmetric):
    """A quantized copy is one parameter with its table only when every
    value lies within a quantization step of the table's: an untied head
    (independent values), or a tied one moved by two steps in one place,
    stays a parameter of its own."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    vocab, dim = 48, 32
    table = RNG.normal(0, 0.2, (vocab, dim)).astype(np.float32)
    weights = {"tied": table.T.copy(), "untied": RNG.normal(0, 0.2, (dim, vocab)).astype(np.float32)}
    nudged = table.T.copy()
    nudged[5, 7] += 2 * (nudged[:16, 7].max() - nudged[:16, 7].min()) / 15  # two steps of its block
    weights["tied-then-nudged"] = nudged
    quantizer = MatMulNBitsQuantizer(_language_model(weights[head], table),
                                     algo_config=DefaultWeightOnlyQuantConfig(block_size=16, is_symmetric=symmetric))
    quantizer.process()
    path = str(tmp_path / "lm.onnx")
    quantizer.model.save_model_to_file(path)
    model = read_model(path)
    assert model.total_params == (1 if head == "tied" else 2) * vocab * dim
    assert any("transpose of another parameter" in note for note in model.notes) is (head == "tied")


@pytest.mark.parametrize("quant_format", ["QOperator", "QDQ"])
def test_external_scales_and_zero_points(tmp_path, quant_format):
    """A large model keeps every tensor over a kilobyte outside the
    protobuf, scales and zero points included: they are read from the
    model's folder (before, their weights had no statistics)."""
    from onnxruntime.quantization import QuantFormat

    settings = {"block_size": 16}
    if quant_format == "QDQ":
        settings["quant_format"] = QuantFormat.QDQ
    inline = _quantized(40, 24, tmp_path, **settings)
    path = str(tmp_path / "external.onnx")
    onnx.save(onnx.load(inline), path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="external.data", size_threshold=0)
    stored = onnx.load(path, load_external_data=False)
    assert all(t.data_location == TensorProto.EXTERNAL for t in stored.graph.initializer)
    dequantized = _run(path, {"x": np.eye(40, dtype=np.float32)})
    _, kernel = _kernel(path)
    _assert_stats(kernel.stats, dequantized)


def test_external_per_channel_scales_of_int8_qdq(tmp_path):
    """The same for onnxruntime's int8 QDQ files: per-channel scales saved
    outside the protobuf give the same statistics as inline ones."""
    from helpers import FIXTURES

    source = FIXTURES / "onnx_exporters" / "int8_qdq_per_channel" / "transformer.onnx"
    path = str(tmp_path / "external.onnx")
    onnx.save(onnx.load(str(source)), path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="external.data", size_threshold=0)
    inline = {v.name: v.stats for layer in read_model(source).layers for v in layer.variables}
    external = {v.name: v.stats for layer in read_model(path).layers for v in layer.variables}
    assert external.keys() == inline.keys() and len(external) >= 8
    for name, stats in inline.items():
        assert stats is not None and external[name] is not None, name
        assert external[name].sum_sq == pytest.approx(stats.sum_sq, rel=1e-12), name


def test_tied_qdq_copy_merges_without_materialising(monkeypatch):
    """A blocked DequantizeLinear copy is stored [dim, vocab], across the
    table's rows: it is compared in its own storage order, the float table
    read transposed, so no side is materialised and a real LLM head (past
    2^24 values, every one of them) merges too. The limit set to nothing
    here proves it."""
    from reglint.readers.onnx import tied

    from helpers import FIXTURES

    monkeypatch.setattr(tied, "MAX_MATERIALISED", 0)
    model = read_model(FIXTURES / "onnx_exporters" / "int4_qdq_blocked" / "tied_embedding.onnx")
    assert model.total_params == 660
    assert any("transpose of another parameter" in note for note in model.notes)


@pytest.mark.parametrize("quant_type", [0, 1], ids=["fp4", "nf4"])
def test_matmul_bnb4_is_the_dequantized_weight(tmp_path, quant_type):
    """bitsandbytes' FP4 and NF4 in ONNX (onnxruntime's MatMulBnb4Quantizer):
    a lookup table's value times its block's absmax, over the weight
    transposed and flattened, the first code in the high nibble; K * N not a
    whole number of blocks."""
    from onnxruntime.quantization.matmul_bnb4_quantizer import MatMulBnb4Quantizer

    quantizer = MatMulBnb4Quantizer(_matmul_model(40, 24), quant_type, 16)
    quantizer.process()
    path = str(tmp_path / "bnb4.onnx")
    quantizer.model.save_model_to_file(path)
    assert {node.op_type for node in onnx.load(path).graph.node} == {"MatMulBnb4"}
    dequantized = _run(path, {"x": np.eye(40, dtype=np.float32)})
    model, kernel = _kernel(path)
    assert (model.total_params, kernel.shape, kernel.dtype) == (960, (40, 24), ("fp4", "nf4")[quant_type])
    _assert_stats(kernel.stats, dequantized)
