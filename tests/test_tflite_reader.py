"""TensorFlow Lite files (``.tflite``).

fixtures/tflite/ holds four Keras models (an MLP; a CNN with Conv2D +
BatchNormalization, DepthwiseConv2D, SeparableConv2D and PReLU; an
Embedding + LSTM + Bidirectional(LSTM) text model; a MultiHeadAttention +
LayerNormalization block), each converted by TensorFlow's converter as
float32, float16, dynamic-range int8 and full-integer int8
(fixtures/make_tflite_fixtures.py). The manifest holds Keras' numbers and
every parameter tensor as ``tf.lite.Interpreter`` reads and dequantizes
it: the reader is held to the interpreter, tensor by tensor, and its
counts to Keras' less what conversion folded away.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from reglint.errors import ModelReadError, UnsafeInputError
from reglint.estimate.init_scale import expected_sum_sq
from reglint.model import Role
from reglint.readers import Format, read_model, sniff

from helpers import FIXTURES, ROOT, hang_guard

TFLITE = FIXTURES / "tflite"
MANIFEST = json.loads((TFLITE / "manifest.json").read_text())
ENTRIES = MANIFEST["files"]
# The same CNN and text models through TensorFlow 2.15's converter (tf.keras
# 2.15: no Keras 3 suffixes; the folded bias named after the BatchNorm alone).
LEGACY = json.loads((TFLITE / "tf2.15" / "manifest.json").read_text())["files"]
ALL = ENTRIES + LEGACY
LOCATION = re.compile(r"tensor (\d+): ")


def _id(entry: dict) -> str:
    return entry["file"]


def _by_index(model) -> dict[int, tuple]:
    out = {}
    for layer, var in model.variables():
        out[int(LOCATION.match(var.location).group(1))] = (layer, var)
    return out


def _entry(model: str, variant: str) -> dict:
    return next(e for e in ENTRIES if e["model"] == model and e["variant"] == variant)


def test_every_model_every_variant():
    assert {(e["model"], e["variant"]) for e in ENTRIES} == {
        (m, v) for m in ("mlp", "cnn", "text", "transformer")
        for v in ("float32", "float16", "dynamic_int8", "full_int8")}
    assert {(e["model"], e["variant"], e["tensorflow"]) for e in LEGACY} == {
        (m, v, "2.15.1") for m in ("cnn", "text") for v in ("float32", "full_int8")}
    assert sum(e["bytes"] for e in ALL) < 512 * 1024
    assert {t for e in ENTRIES for t in e["stored_types"]} == {"float32", "float16", "int8", "int32"}
    assert all(sniff(TFLITE / e["file"]) is Format.TFLITE for e in ENTRIES)


@pytest.mark.parametrize("entry", ALL, ids=_id)
def test_parameters_equal_the_interpreters(entry):
    """Every parameter tensor the interpreter finds, and no other: its
    shape, count and the statistics of its dequantized values. A
    normalization's gamma and beta are at Keras' shape: the interpreter's
    less its leading 1s, which the location keeps."""
    model = read_model(TFLITE / entry["file"])
    found = _by_index(model)
    reference = {p["index"]: p for p in entry["interpreter"]}
    assert set(found) == set(reference)
    for index, ref in reference.items():
        _, var = found[index]
        if list(var.shape) != ref["shape"]:
            assert var.role in (Role.GAMMA, Role.BETA) and ref["op"] in ("MUL", "ADD"), ref["name"]
            assert ref["shape"] == [1] * (len(ref["shape"]) - len(var.shape)) + list(var.shape), ref["name"]
            assert var.location.endswith(f"(stored {ref['shape']})"), ref["name"]
        assert var.size == ref["count"], ref["name"]
        assert var.dtype == ref["dtype"], ref["name"]
        stats = var.stats
        assert stats is not None and stats.count == ref["count"] and stats.nonfinite == 0
        assert stats.sum_sq == pytest.approx(ref["sum_sq"], rel=1e-6), ref["name"]
        assert stats.sum_abs == pytest.approx(ref["sum_abs"], rel=1e-6), ref["name"]
        assert stats.max_abs == pytest.approx(ref["max_abs"], rel=1e-6), ref["name"]
    assert model.total_params == entry["expected_params"] == sum(p["count"] for p in entry["interpreter"])
    assert model.format == "tflite" and model.problems == []


@pytest.mark.parametrize("entry", ALL, ids=_id)
def test_counts_are_keras_less_what_conversion_folded(entry):
    """Keras' count, less each BatchNormalization folded into the
    convolution before it, plus the bias folding gave that convolution and
    the zero bias the converter gives a SeparableConv2D's depthwise step."""
    keras = entry["keras"]
    change = sum(f["bias_added"] - f["keras_params"] for f in entry["folded"]) + sum(entry["zero_biases"].values())
    assert read_model(TFLITE / entry["file"]).total_params == keras["count_params"] + change
    if entry["model"] == "cnn":
        assert change == 16 - 64 + 16


def _keras_layer_params(entry: dict) -> dict[str, int]:
    """Keras' layers as the file holds them: folded BatchNorms gone, their
    convolution with the folded bias, converter zero biases added."""
    layers = {name: info["params"] for name, info in entry["keras"]["layers"].items()}
    for fold in entry["folded"]:
        del layers[fold["batchnorm"]]
        layers[fold["into"]] += fold["bias_added"]
    for name, zeros in entry["zero_biases"].items():
        layers[name] += zeros
    return layers


@pytest.mark.parametrize("entry", ALL, ids=_id)
def test_layers_are_named_as_keras_names_them(entry):
    """Keras 3's tracing suffix (``mlp_1/fc1_1/MatMul``) and the model scope
    are dropped; MultiHeadAttention's projections are its sub-layers
    (``mha.query``); the fused LSTM ops' weights carry no name
    (``arith.constant``): named after their op."""
    model = read_model(TFLITE / entry["file"])
    expected = _keras_layer_params(entry)
    found: dict[str, int] = {}
    for layer in model.layers:
        name = layer.name.split(".")[0]
        if name.startswith("unidirectional_sequence_lstm"):
            name = "lstm+bi"
        found[name] = found.get(name, 0) + layer.params
    if entry["model"] == "text":
        expected["lstm+bi"] = expected.pop("lstm") + expected.pop("bi")
        assert any(n.startswith("3 layers have no name in the file") for n in model.notes)
    assert found == expected
    if entry["model"] == "transformer":
        assert [layer.name for layer in model.layers if layer.name.startswith("mha.")] == [
            "mha.key", "mha.query", "mha.value", "mha.attention_output"]


@pytest.mark.parametrize("model_name", ["mlp", "transformer", "text", "cnn"])
def test_float32_statistics_equal_keras(model_name):
    """The float32 file's weights are Keras' (transposed or split by gate,
    the same values): each layer's sum of squares is Keras', except where
    BatchNorm was folded in."""
    entry = _entry(model_name, "float32")
    model = read_model(TFLITE / entry["file"])
    folded = {f["into"] for f in entry["folded"]}
    sums: dict[str, float] = {}
    for layer in model.layers:
        name = layer.name.split(".")[0]
        name = "lstm+bi" if name.startswith("unidirectional_sequence_lstm") else name
        sums[name] = sums.get(name, 0.0) + sum(v.stats.sum_sq for v in layer.variables)
    keras = {name: sum(w["sum_sq"] for w in info["weights"].values())
             for name, info in entry["keras"]["layers"].items()}
    if model_name == "text":
        keras["lstm+bi"] = keras.pop("lstm") + keras.pop("bi")
    checked = 0
    for name, value in keras.items():
        if name in folded or name not in sums:
            continue
        assert sums[name] == pytest.approx(value, rel=1e-6), name
        checked += 1
    assert checked == len(sums) - len(folded)


def _roles(model, name: str) -> list[tuple[str, str]]:
    layer = model.layer(name)
    assert layer is not None, [x.name for x in model.layers]
    return [(v.name, v.role.value) for v in layer.variables]


@pytest.mark.parametrize("variant", ["float32", "float16", "dynamic_int8", "full_int8"])
def test_roles(variant):
    cnn = read_model(TFLITE / "cnn" / f"{variant}.tflite")
    assert _roles(cnn, "conv") == [("kernel", "kernel"), ("bias", "bias")]
    assert _roles(cnn, "dw") == [("depthwise_kernel", "depthwise_kernel"), ("bias", "bias")]
    assert _roles(cnn, "sep") == [("depthwise_kernel", "depthwise_kernel"), ("bias", "bias"),
                                  ("kernel", "pointwise_kernel"), ("bias", "bias")]
    assert _roles(cnn, "prelu") == [("alpha", "alpha")]
    assert _roles(cnn, "head") == [("kernel", "kernel"), ("bias", "bias")]
    assert cnn.layer("head").units == 4 and cnn.layer("conv").units == 16
    block = read_model(TFLITE / "transformer" / f"{variant}.tflite")
    assert _roles(block, "ln") == [("gamma", "gamma"), ("beta", "beta")]
    assert block.layer("ln").class_name == "LayerNormalization"
    assert _roles(block, "mha.query") == [("kernel", "kernel"), ("bias", "bias")]
    assert block.layer("mha.query").variables[1].shape == (2, 8)  # per-head bias, added after a reshape
    text = read_model(TFLITE / "text" / f"{variant}.tflite")
    assert _roles(text, "emb") == [("embeddings", "embeddings")]
    lstm = text.layer("unidirectional_sequence_lstm")
    assert [v.role for v in lstm.variables] == [Role.KERNEL] * 4 + [Role.RECURRENT_KERNEL] * 4 + [Role.BIAS] * 4
    assert [v.name for v in lstm.variables][:2] == ["input_to_input_weights", "input_to_forget_weights"]
    assert lstm.units == 16 and lstm.params == 16 * 4 * (16 + 16 + 1)


def test_kernel_fans_are_keras_fans():
    """FULLY_CONNECTED stores [out, in], CONV_2D [out, h, w, in]: the fans
    are Keras' for its (in, out) and (h, w, in, out) kernels."""
    cnn = read_model(TFLITE / "cnn" / "float32.tflite")
    assert cnn.layer("conv").variables[0].fans() == (3 * 3 * 3, 3 * 3 * 16)
    assert cnn.layer("head").variables[0].fans() == (64, 4)
    mlp = read_model(TFLITE / "mlp" / "float32.tflite")
    assert mlp.layer("fc1").variables[0].fans() == (32, 64)


@pytest.mark.parametrize("entry", [e for e in ALL if e["model"] == "cnn"], ids=_id)
def test_folded_batchnorm_is_said(entry):
    """The converter folds BatchNormalization into the convolution before
    it: the note names both and what Keras counted there."""
    model = read_model(TFLITE / entry["file"])
    (fold,) = entry["folded"]
    assert model.layer(fold["batchnorm"]) is None
    note = next(n for n in model.notes if "BatchNormalization layers folded" in n)
    assert note.startswith("1 BatchNormalization layers folded") and f"({fold['keras_params']} values in Keras" in note
    assert f"{fold['batchnorm']} into {fold['into']} ({fold['keras_params'] // 4} channels)" in note
    conv = entry["keras"]["layers"][fold["into"]]["params"]
    assert model.layer(fold["into"]).params == conv + fold["bias_added"]
    zeros = entry["zero_biases"]["sep"]
    assert any(n.startswith("sep: the depthwise step's bias") and f"Keras counts {zeros} fewer" in n
               for n in model.notes)


@pytest.mark.parametrize("model_name", ["mlp", "cnn", "text", "transformer"])
def test_quantized_weights_count_at_float_shape(model_name):
    """int8 weights (and int32 biases) count as the float parameters they
    stand for, at the float file's shapes; float16 weights behind
    DEQUANTIZE count once."""
    shapes = {}
    for variant in ("float32", "float16", "dynamic_int8", "full_int8"):
        model = read_model(TFLITE / model_name / f"{variant}.tflite")
        shapes[variant] = sorted((layer.name, v.name, v.shape) for layer, v in model.variables())
        dtypes = {v.dtype for _, v in model.variables()}
        if variant == "full_int8":
            assert dtypes == {"int8", "int32"}
            assert any("stored quantized (int32, int8)" in n for n in model.notes)
        if variant == "dynamic_int8":
            assert "int8" in dtypes
        if variant == "float16":
            assert dtypes == {"float16"}
            assert any("stored as float16 and widened to float32 by DEQUANTIZE" in n for n in model.notes)
    assert shapes["float16"] == shapes["dynamic_int8"] == shapes["full_int8"] == shapes["float32"]


def test_per_channel_int8_statistics_are_close_to_float():
    """Dequantized per-channel weights are within a quantization step of
    the float weights they stand for."""
    floats = {(layer.name, v.name): v.stats for layer, v in read_model(TFLITE / "cnn" / "float32.tflite").variables()}
    model = read_model(TFLITE / "cnn" / "full_int8.tflite")
    for layer, var in model.variables():
        if var.dtype == "int8":
            assert var.stats.sum_sq == pytest.approx(floats[(layer.name, var.name)].sum_sq, rel=0.02), layer.name


def test_cli_reads_tflite_without_tensorflow():
    path = TFLITE / "cnn" / "dynamic_int8.tflite"
    code = ("import sys; from reglint.cli.app import main; rc = main(['check', sys.argv[1], '--format', 'json', "
            "'--no-cache']); loaded = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', "
            "'tf_keras', 'tflite')]; assert not loaded, loaded; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                            cwd=ROOT)
    assert result.returncode in (0, 1), result.stderr
    (report,) = json.loads(result.stdout)["files"]
    assert report["error"] is None
    assert report["model"]["format"] == "tflite"
    assert report["model"]["params"]["total"] == _entry("cnn", "dynamic_int8")["expected_params"]


def test_folder_walk_finds_tflite(tmp_path):
    from reglint.readers.sniff import MODEL_SUFFIXES

    assert ".tflite" in MODEL_SUFFIXES
    (tmp_path / "m.tflite").write_bytes((TFLITE / "mlp" / "float32.tflite").read_bytes())
    result = subprocess.run([sys.executable, "-m", "reglint", "check", str(tmp_path), "--format", "json",
                             "--no-cache"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode in (0, 1), result.stderr
    assert [f["model"]["params"]["total"] for f in json.loads(result.stdout)["files"]] == [
        _entry("mlp", "float32")["expected_params"]]


# ---------------------------------------------------------------------------
# Files written here with the flatbuffers builder: buffers after the
# flatbuffer (models over 2 GiB), and hostile files.

FULLY_CONNECTED = 9


def build_tflite(weights: np.ndarray, *, external: bool = False, offset: int | None = None,
                 shape: list[int] | None = None) -> bytes:
    """One FULLY_CONNECTED op reading ``weights`` ([out, in] float32) from
    the buffer's data or, ``external``, from after the flatbuffer at an
    ``offset``/``size`` from the start of the file (how the converter
    writes models over 2 GiB); ``offset`` places it elsewhere."""
    import flatbuffers

    b = flatbuffers.Builder(1024)
    raw = weights.astype("<f4").tobytes()
    placeholder = 0x0123456789ABCDEF

    def vector(values, prepend):
        b.StartVector(4, len(values), 4)
        for v in reversed(values):
            prepend(v)
        return b.EndVector()

    def table(*fields):
        b.StartObject(max((slot for slot, _, _ in fields), default=-1) + 1)
        for slot, kind, value in fields:
            getattr(b, f"Prepend{kind}Slot")(slot, value, 0)
        return b.EndObject()

    if external:
        weight_buffer = table((1, "Uint64", placeholder), (2, "Uint64", len(raw)))
    else:
        data = b.CreateByteVector(raw)
        weight_buffer = table((0, "UOffsetTRelative", data))
    buffers = [table(), weight_buffer]
    out, inp = weights.shape
    tensors = []
    for i, (name, dims) in enumerate([("input", [1, inp]), ("model/dense/MatMul", shape or [out, inp]),
                                      ("output", [1, out])]):
        name_ref, dims_ref = b.CreateString(name), vector(dims, b.PrependInt32)
        tensors.append(table((0, "UOffsetTRelative", dims_ref), (1, "Int8", 0), (2, "Uint32", int(i == 1)),
                             (3, "UOffsetTRelative", name_ref)))
    op_inputs, op_outputs = vector([0, 1, -1], b.PrependInt32), vector([2], b.PrependInt32)
    op = table((0, "Uint32", 0), (1, "UOffsetTRelative", op_inputs), (2, "UOffsetTRelative", op_outputs))
    tensor_list, sub_inputs, sub_outputs = (vector(tensors, b.PrependUOffsetTRelative),
                                            vector([0], b.PrependInt32), vector([2], b.PrependInt32))
    ops = vector([op], b.PrependUOffsetTRelative)
    sub = table((0, "UOffsetTRelative", tensor_list), (1, "UOffsetTRelative", sub_inputs),
                (2, "UOffsetTRelative", sub_outputs), (3, "UOffsetTRelative", ops))
    code = table((0, "Int8", FULLY_CONNECTED), (3, "Int32", FULLY_CONNECTED))
    codes, subs, buffer_list = (vector([code], b.PrependUOffsetTRelative), vector([sub], b.PrependUOffsetTRelative),
                                vector(buffers, b.PrependUOffsetTRelative))
    root = table((0, "Uint32", 3), (1, "UOffsetTRelative", codes), (2, "UOffsetTRelative", subs),
                 (4, "UOffsetTRelative", buffer_list))
    b.Finish(root, file_identifier=b"TFL3")
    head = bytearray(b.Output())
    if not external:
        return bytes(head)
    head += bytes(-len(head) % 16)
    at = bytes(head).index(np.array([placeholder], "<u8").tobytes())
    head[at:at + 8] = np.array([len(head) if offset is None else offset], "<u8").tobytes()
    return bytes(head) + raw


def _tensor_list_length_at(data: bytes) -> int:
    """Where the first subgraph's tensor list keeps its length."""
    from flatbuffers.table import Table

    def field(tab: Table, slot: int) -> int:
        return tab.Pos + tab.Offset(4 + 2 * slot)

    def deref(pos: int) -> int:
        return pos + int(np.frombuffer(data, "<u4", 1, pos)[0])

    root = Table(data, deref(0))
    subgraphs = deref(field(root, 2))
    sub = Table(data, deref(subgraphs + 4))
    return deref(field(sub, 0))


WEIGHTS = np.arange(12, dtype=np.float32).reshape(3, 4) / 10 - 0.5


@pytest.mark.parametrize("external", [False, True])
def test_buffers_in_the_flatbuffer_or_after_it(tmp_path, external):
    """Models over 2 GiB keep their buffers after the flatbuffer, at
    ``offset``/``size``: read there, with the same numbers."""
    path = tmp_path / "m.tflite"
    path.write_bytes(build_tflite(WEIGHTS, external=external))
    model = read_model(path)
    (layer,) = model.layers
    assert layer.name == "dense" and layer.class_name == "FULLY_CONNECTED"
    (var,) = layer.variables
    assert var.shape == (3, 4) and var.role is Role.KERNEL
    assert var.stats.sum_sq == pytest.approx(float((WEIGHTS.astype(np.float64) ** 2).sum()), rel=1e-7)
    assert var.stats.max_abs == pytest.approx(0.6)
    assert (model.metadata.get("buffers_after_flatbuffer") == 1) is external


def _hostile(tmp_path) -> dict[str, bytes]:
    good = build_tflite(WEIGHTS)
    real = (TFLITE / "cnn" / "full_int8.tflite").read_bytes()
    huge = bytearray(good)
    at = _tensor_list_length_at(good)
    huge[at:at + 4] = np.array([1 << 31], "<u4").tobytes()
    wrong = bytearray(real)
    wrong[4:8] = b"TFL4"
    garbage_root = bytearray(real)
    garbage_root[0:4] = np.array([len(real) + 12345], "<u4").tobytes()
    return {
        "truncated": real[:len(real) // 2],
        "wrong_identifier": bytes(wrong),
        "vector_length_2_31": bytes(huge),
        "buffer_offset_past_end": build_tflite(WEIGHTS, external=True, offset=1 << 40),
        "buffer_inside_flatbuffer": build_tflite(WEIGHTS, external=True, offset=8),
        "shape_product_overflows": build_tflite(WEIGHTS, shape=[2**31 - 1, 2**31 - 1, 2**31 - 1, 2**31 - 1]),
        "root_offset_past_end": bytes(garbage_root),
        "tiny": real[:12],
    }


EXPECTED = {
    "truncated": "truncated or corrupt",
    "wrong_identifier": "no TFL3 identifier",
    "vector_length_2_31": "claims 2147483648 entries, more than the file holds",
    "buffer_offset_past_end": "runs past the end of the file",
    "buffer_inside_flatbuffer": "lies inside the flatbuffer",
    "shape_product_overflows": "needs",
    "root_offset_past_end": "outside the flatbuffer",
    "tiny": "too short",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_files_are_one_line_errors(tmp_path, name):
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(_hostile(tmp_path)[name])
    with pytest.raises(ModelReadError, match=re.escape(EXPECTED[name])):
        read_model(path)


def test_hostile_files_exit_2_quickly_with_one_line(tmp_path):
    files = _hostile(tmp_path)
    for name, data in files.items():
        (tmp_path / f"{name}.tflite").write_bytes(data)
    for name in files:
        result = subprocess.run([sys.executable, "-m", "reglint", "check", str(tmp_path / f"{name}.tflite"),
                                 "--no-cache"], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("reglint: error:") and "Traceback" not in result.stderr, name


def test_truncating_anywhere_is_a_read_error(tmp_path):
    """Every cut of a real file either still holds what the reader needs
    (never: the buffers are at the end) or is one ModelReadError."""
    real = (TFLITE / "mlp" / "dynamic_int8.tflite").read_bytes()
    path = tmp_path / "cut.tflite"
    for cut in range(8, len(real), max(1, len(real) // 97)):
        path.write_bytes(real[:cut])
        with pytest.raises(ModelReadError):
            read_model(path)


def test_flipped_bytes_never_escape_as_another_error(tmp_path):
    """Random corruption of a real file: a model or one ModelReadError."""
    real = bytearray((TFLITE / "transformer" / "full_int8.tflite").read_bytes())
    rng = np.random.default_rng(7)
    path = tmp_path / "flipped.tflite"
    for _ in range(150):
        data = bytearray(real)
        for at in rng.integers(8, len(data), size=4):
            data[at] = int(rng.integers(0, 256))
        path.write_bytes(bytes(data))
        with contextlib.suppress(ModelReadError):
            read_model(path)


def test_mislabelled_tflite_suffix(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelReadError, match="no TFL3 identifier"):
        read_model(path)


@pytest.mark.parametrize("axis", [0, 1])
def test_int4_weights_are_unpacked_and_dequantized(axis):
    """int4 values, two a byte (low nibble first), per-channel scales:
    the statistics of (q - zero_point) * scale."""
    from reglint.readers.tflite.schema import INT4, BufferRef, Quantization, TensorInfo
    from reglint.readers.tflite.stats import check_extent, tensor_stats

    rng = np.random.default_rng(3)
    q = rng.integers(-8, 8, size=(5, 3))
    scale = rng.uniform(0.01, 0.1, size=q.shape[axis])
    nibbles = (q.reshape(-1) & 0x0F).astype(np.uint8)
    nibbles = np.append(nibbles, np.uint8(0)) if nibbles.size % 2 else nibbles
    packed = (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8).tobytes()
    data = b"\x00" * 4 + packed
    tensor = TensorInfo(0, "w", q.shape, INT4, 1, Quantization(scale, np.zeros(1, np.int64), axis))
    ref = BufferRef(4, len(packed))
    check_extent(tensor, ref)
    stats = tensor_stats(data, ref, tensor, chunk_bytes=16)  # a few rows a chunk
    shape = [1, 1]
    shape[axis] = scale.size
    want = q * scale.reshape(shape)
    assert stats.count == q.size
    assert stats.sum_sq == pytest.approx(float((want ** 2).sum()), rel=1e-12)
    assert stats.max_abs == pytest.approx(float(np.abs(want).max()), rel=1e-12)


def build_graph(tensors: list[tuple[str, list[int], int]], ops: list[tuple[int, list[int], list[int]]],
                codes: list[int], buffers: list[bytes], *, tensor_table: list[int] | None = None,
                op_table: list[int] | None = None) -> bytes:
    """A one-subgraph file: ``tensors`` (name, shape, buffer), ``ops``
    (opcode index, inputs, outputs); equal index vectors are written once
    (shared), and ``tensor_table``/``op_table`` list which table each entry
    of the tensor/operator vector points at (repeats: one table named many
    times, as a crafted file may)."""
    import flatbuffers

    b = flatbuffers.Builder(1024)
    vectors: dict[tuple[int, ...], int] = {}

    def vector(values, prepend=b.PrependInt32):
        b.StartVector(4, len(values), 4)
        for v in reversed(values):
            prepend(v)
        return b.EndVector()

    def ivec(values):
        if tuple(values) not in vectors:
            vectors[tuple(values)] = vector(values)
        return vectors[tuple(values)]

    def table(*fields):
        b.StartObject(max((slot for slot, _, _ in fields), default=-1) + 1)
        for slot, kind, value in fields:
            getattr(b, f"Prepend{kind}Slot")(slot, value, 0)
        return b.EndObject()

    buffer_tables = [table((0, "UOffsetTRelative", b.CreateByteVector(raw))) if raw else table() for raw in buffers]
    tensor_tables = []
    for name, shape, buffer in tensors:
        name_ref, dims = b.CreateString(name), vector(shape)
        tensor_tables.append(table((0, "UOffsetTRelative", dims), (1, "Int8", 0), (2, "Uint32", buffer),
                                   (3, "UOffsetTRelative", name_ref)))
    op_tables = [table((0, "Uint32", code), (1, "UOffsetTRelative", ivec(inputs)),
                       (2, "UOffsetTRelative", ivec(outputs))) for code, inputs, outputs in ops]
    tensor_list = vector([tensor_tables[i] for i in tensor_table or range(len(tensors))],
                         b.PrependUOffsetTRelative)
    op_list = vector([op_tables[i] for i in op_table or range(len(ops))], b.PrependUOffsetTRelative)
    sub = table((0, "UOffsetTRelative", tensor_list), (3, "UOffsetTRelative", op_list))
    code_tables = [table((0, "Int8", min(code, 127)), (3, "Int32", code)) for code in codes]
    root = table((0, "Uint32", 3), (1, "UOffsetTRelative", vector(code_tables, b.PrependUOffsetTRelative)),
                 (2, "UOffsetTRelative", vector([sub], b.PrependUOffsetTRelative)),
                 (4, "UOffsetTRelative", vector(buffer_tables, b.PrependUOffsetTRelative)))
    b.Finish(root, file_identifier=b"TFL3")
    return bytes(b.Output())


ADD, RESHAPE = 0, 22


def _hostile_graphs() -> dict[str, bytes]:
    """Review 17's small files that cost minutes and gigabytes: (a) one
    tensor table named by 20,000 entries; (b) 2,000 operators sharing one
    table whose inputs name 3,000 tensors; (c) the same with distinct
    operator tables sharing the input vector; (d) 1,500 constants each
    RESHAPEd into one tensor X that 1,500 ADDs read (a quadratic walk)."""
    one = np.ones(2, "<f4").tobytes()
    fan = [(f"t{i}", [2], 0) for i in range(3000)]
    inputs = list(range(3000))
    k = 1500
    walk_tensors = [(f"c{i}", [2], 1) for i in range(k)] + [("x", [2], 0), ("y", [2], 0)]
    walk_ops = [(1, [i], [k]) for i in range(k)] + [(0, [k, k], [k + 1])] * k
    return {
        "tensor_table_repeated": build_graph([("model/dense/MatMul", [3, 4], 1)], [], [FULLY_CONNECTED],
                                             [b"", WEIGHTS.astype("<f4").tobytes()], tensor_table=[0] * 20_000),
        "operator_table_repeated": build_graph(fan, [(0, inputs, [0])], [FULLY_CONNECTED], [b""],
                                               op_table=[0] * 2000),
        "operator_inputs_shared": build_graph(fan, [(0, inputs, [0])] * 2000, [FULLY_CONNECTED], [b""]),
        "quadratic_walk": build_graph(walk_tensors, walk_ops, [ADD, RESHAPE], [b"", one]),
    }


@pytest.mark.parametrize("name", ["tensor_table_repeated", "operator_table_repeated", "operator_inputs_shared",
                                  "quadratic_walk"])
def test_hostile_graphs_refused_in_linear_time(tmp_path, name):
    """Each was minutes or gigabytes before (review 17: 3,000 shared-table
    operators 71 s / 4.3 GB; a 6,000 x 6,000 walk 85 s); now a one-line
    refusal in well under a second of reading, far inside the guard."""
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(_hostile_graphs()[name])
    with hang_guard(45), pytest.raises(UnsafeInputError):
        read_model(path)


def _param_counts(model) -> dict[str, int]:
    return {layer.name: sum(int(np.prod(v.shape)) for v in layer.variables) for layer in model.layers}


def test_tensors_sharing_bytes_are_distinct_parameters(tmp_path):
    """Review 17, finding 1: a bias [12] and another layer's kernel [3, 4]
    share one 48-byte buffer. Before, layer ``dense`` vanished and its
    kernel was merged into ``other``'s bias; now each tensor is its own
    parameter in the layer that reads it."""
    w = WEIGHTS.astype("<f4").tobytes()
    tensors = [("x", [1, 4], 0), ("model/dense/MatMul", [3, 4], 1), ("y", [1, 3], 0), ("x2", [1, 2], 0),
               ("model/other/MatMul", [12, 2], 2), ("model/other/BiasAdd", [12], 1), ("y2", [1, 12], 0)]
    ops = [(0, [0, 1, -1], [2]), (0, [3, 4, 5], [6])]
    path = tmp_path / "m.tflite"
    path.write_bytes(build_graph(tensors, ops, [FULLY_CONNECTED], [b"", w, np.ones(24, "<f4").tobytes()]))
    model = read_model(path)
    assert _param_counts(model) == {"dense": 12, "other": 36}
    assert any("share their bytes" in note for note in model.notes)


def test_one_constant_read_by_several_layers_or_one_shared_layer(tmp_path):
    """One zero bias read by two FULLY_CONNECTED ops with their own kernels
    (the converter's deduplication) belongs to both layers, once each; a
    kernel and bias read by two ops (one Keras layer called twice) is one
    layer with calls=2. Before, the first case gave layer ``a`` calls=2 and
    ``b`` no bias."""
    zeros, k = np.zeros(3, "<f4").tobytes(), WEIGHTS.astype("<f4").tobytes()
    tensors = [("x", [1, 4], 0), ("model/a/MatMul", [3, 4], 1), ("model/b/MatMul", [3, 4], 2),
               ("arith.constant", [3], 3), ("h", [1, 3], 0), ("y", [1, 3], 0), ("z", [1, 3], 0)]
    path = tmp_path / "dedup.tflite"
    path.write_bytes(build_graph(tensors, [(0, [0, 1, 3], [4]), (0, [0, 2, 3], [5])], [FULLY_CONNECTED],
                                 [b"", k, k[::-1], zeros]))
    model = read_model(path)
    assert _param_counts(model) == {"a": 15, "b": 15}
    assert [layer.calls for layer in model.layers] == [1, 1]
    assert any("identical constants once" in note for note in model.notes)
    path = tmp_path / "shared.tflite"
    path.write_bytes(build_graph(tensors, [(0, [0, 1, 3], [4]), (0, [4, 1, 3], [5])], [FULLY_CONNECTED],
                                 [b"", k, k[::-1], zeros]))
    model = read_model(path)
    assert _param_counts(model) == {"a": 15}
    assert model.layers[0].calls == 2


def test_keras3_suffixes_stripped_per_component_and_tf_keras_depthwise_kept():
    """Review 17, findings 3 and 7, with names from MobileNetV3Small files:
    Keras 3.15 traces mixed ``_1``/``_2`` scopes (``conv_1`` is Keras'
    ``conv``, ``conv_1_2`` its ``conv_1``), where nothing was stripped and
    10 layers carried another layer's name; tf.keras (TF 2.15) names a
    layer ``expanded_conv_3/depthwise``, whose ``depthwise`` was eaten as
    an op name."""
    from reglint.readers.tflite.names import layer_parts, tidy_keys

    keras3 = ["MobileNetV3Small_1/conv_1/convolution", "MobileNetV3Small_1/conv_1_2/convolution",
              "MobileNetV3Small_1/expanded_conv_squeeze_excite_conv_1/convolution",
              "MobileNetV3Small_1/expanded_conv_squeeze_excite_conv_1_2/convolution",
              "MobileNetV3Small_1/re_lu_1/Relu;MobileNetV3Small_1/expanded_conv_depthwise_bn_1/batchnorm/mul_1;"
              "MobileNetV3Small_1/expanded_conv_depthwise_1/depthwise"]
    parts = {i: layer_parts(name) for i, name in enumerate(keras3)}
    assert list(tidy_keys(parts).values()) == ["conv", "conv_1", "expanded_conv_squeeze_excite_conv",
                                               "expanded_conv_squeeze_excite_conv_1", "expanded_conv_depthwise"]
    # a tf.keras model_1 whose layers are dense_1, dense_2: stripping would merge them
    assert list(tidy_keys({0: ["model_1", "dense_1"], 1: ["model_1", "dense_2"], 2: ["model_1", "dense"]}
                          ).values()) == ["dense_1", "dense_2", "dense"]
    legacy = ["MobilenetV3small/expanded_conv_3/depthwise/depthwise",
              "MobilenetV3small/expanded_conv_1/depthwise/BatchNorm/FusedBatchNormV3;"
              "MobilenetV3small/expanded_conv_1/depthwise/depthwise",
              "MobilenetV3small/dw/depthwise/ReadVariableOp", "MobilenetV3small/Conv/Conv2D"]
    assert [layer_parts(name) for name in legacy] == [
        ["MobilenetV3small", "expanded_conv_3", "depthwise"], ["MobilenetV3small", "expanded_conv_1", "depthwise"],
        ["MobilenetV3small", "dw"], ["MobilenetV3small", "Conv"]]


def test_batchnorm_notes(tmp_path):
    """Review 17, finding 4: a Dense whose weights carry only a folded BN's
    name (``bn_d/batchnorm/mul_1``) was reported as layer ``bn_d`` with no
    note; an unfoldable BN's MUL/ADD constants were called gamma/beta; a
    dense layer without a bias got no note (finding 12)."""
    w = WEIGHTS.astype("<f4").tobytes()
    tensors = [("x", [1, 4], 0), ("model/bn_d/batchnorm/mul_1", [3, 4], 1), ("model/bn_d/batchnorm/add_1", [3], 2),
               ("h", [1, 3], 0), ("model/bn/batchnorm/mul", [3], 3), ("m", [1, 3], 0),
               ("model/bn/batchnorm/sub", [3], 4), ("y", [1, 3], 0), ("model/out/MatMul", [3, 3], 5), ("z", [1, 3], 0)]
    ops = [(0, [0, 1, 2], [3]), (1, [3, 4], [5]), (2, [5, 6], [7]), (0, [7, 8, -1], [9])]
    three = np.arange(1, 4, dtype="<f4").tobytes()
    path = tmp_path / "bn.tflite"
    path.write_bytes(build_graph(tensors, ops, [FULLY_CONNECTED, MUL, ADD], [b"", w, three, three, three[::-1],
                                                                           np.ones(9, "<f4").tobytes()]))
    model = read_model(path)
    assert [(layer.name, layer.class_name) for layer in model.layers] == [
        ("fully_connected", "FULLY_CONNECTED"), ("bn", "BatchNormalization"), ("out", "FULLY_CONNECTED")]
    assert [v.name for v in model.layer("bn").variables] == ["scale", "offset"]
    notes = "\n".join(model.notes)
    assert "1 BatchNormalization layers folded" in notes and "bn_d into fully_connected (3 channels)" in notes
    assert "(12 values in Keras" in notes
    assert "could not fold (bn)" in notes
    assert "1 convolution or dense layers have no bias" in notes


MUL = 18


@pytest.mark.parametrize(("shape", "axis"), [((1, 4000), 1), ((1, 3, 3, 40), 3), ((6, 50, 2), 1), ((1, 4000), 0)])
def test_wide_int8_rows_are_chunked(shape, axis):
    """Review 17, finding 9: statistics chunked over flat elements, not
    axis 0, so an int8 [1, 50M] row (868 MB peak before, 98 MB now) or a
    depthwise [1, h, w, C] kernel stays within chunk_bytes; per-channel
    scales and zero points along any axis give the direct computation."""
    from reglint.readers.tflite.schema import BufferRef, Quantization, TensorInfo
    from reglint.readers.tflite.stats import tensor_stats

    rng = np.random.default_rng(5)
    q = rng.integers(-128, 128, size=shape).astype(np.int8)
    scale = rng.uniform(0.01, 0.1, size=shape[axis])
    zero = rng.integers(-3, 3, size=shape[axis])
    tensor = TensorInfo(0, "w", shape, 9, 1, Quantization(scale, zero.astype(np.int64), axis))
    stats = tensor_stats(q.tobytes(), BufferRef(0, q.size), tensor, chunk_bytes=24 * 97)
    bshape = [1] * len(shape)
    bshape[axis] = shape[axis]
    want = (q.astype(np.float64) - zero.reshape(bshape)) * scale.reshape(bshape)
    assert stats.count == q.size
    assert stats.sum_sq == pytest.approx(float((want ** 2).sum()), rel=1e-12)
    assert stats.max_abs == pytest.approx(float(np.abs(want).max()), rel=1e-12)


SHARED = json.loads((TFLITE / "shared" / "manifest.json").read_text())["files"]


@pytest.mark.parametrize("entry", SHARED, ids=_id)
def test_untrained_models_where_the_converter_shares_constants(entry):
    """Review 17, findings 1, 3, 10: untrained Keras 3 models (every bias
    zero), so the converter stores identical constants once: a tiny
    MobileNetV3Small-like network (Keras 3's mixed ``_1``/``_1_2`` scopes)
    and a Dense layer called twice. The reference is Keras alone: each
    layer's ``count_params()`` plus the bias a folded BatchNormalization
    gives the convolution before it, less an all-zero Dense bias, which the
    converter drops. Before: mnv3 1,332 of 1,381 values, 21 layers with
    another's name or count, ``conv_1`` called 4 times."""
    model = read_model(TFLITE / entry["file"])
    ours = {layer.name: (layer.params, layer.calls) for layer in model.layers}
    dropped = {name: layer["zero_bias"] if layer["class"] == "Dense" else 0
               for name, layer in entry["layers"].items()}
    want = {name: (layer["keras_params"] + layer["bias_added"] - dropped[name], layer["calls"])
            for name, layer in entry["layers"].items()}
    assert ours == want
    if any(dropped.values()):
        assert any(n.startswith(f"{sum(1 for d in dropped.values() if d)} convolution or dense layers have no bias")
                   for n in model.notes)


def test_untrained_float32_and_full_int8_agree():
    """One model, two variants: the same layers and counts (review 17:
    MobileNetV3Small float32 2,531,192, full int8 2,448,248)."""
    for name in {e["model"] for e in SHARED}:
        counts = [{layer.name: layer.params for layer in read_model(TFLITE / e["file"]).layers}
                  for e in SHARED if e["model"] == name]
        assert len(counts) == 2 and counts[0] == counts[1], name


def test_keras3_rnn_loop_body_names_its_layer():
    """Review 17, finding 8: a Keras 3 LSTM converts to a WHILE loop whose
    weights are named ``lstm_1/while/lstm_cell_1/...``: the layer is
    ``lstm`` (was ``lstm.while.lstm_cell``)."""
    from reglint.readers.tflite.names import layer_parts, tidy_keys

    names = ["functional_5_1/lstm_1/while/lstm_cell_1/MatMul",
             "functional_5_1/lstm_1/while/lstm_cell_1/BiasAdd_1/ReadVariableOp", "functional_5_1/out_1/MatMul"]
    assert list(tidy_keys({i: layer_parts(n) for i, n in enumerate(names)}).values()) == ["lstm", "lstm", "out"]


# ---------------------------------------------------------------------------
# fixtures/tflite/keras_match: the converter's layouts beside Keras' own
# (the .keras file the TFLite file came from; Keras' compute_fans).

KERAS_MATCH = json.loads((TFLITE / "keras_match" / "manifest.json").read_text())["files"]


def _match(name: str) -> dict:
    return next(e for e in KERAS_MATCH if e["model"] == name)


def test_depthwise_fans_are_keras_fans_at_every_depth_multiplier():
    """Keras draws a DepthwiseConv2D kernel at [h, w, C, M] (compute_fans:
    h*w*C in, h*w*M out); TFLite stores it [1, h, w, C*M]. Before, the
    reader counted h*w*C*M in and h*w out, right only for M = 1: dw2
    (54, 9) where Keras has (27, 18), dw3 (162, 9) for (54, 27), sep2's
    depthwise step (324, 9) for (162, 18); a glorot_uniform kernel's
    fresh-init sum of squares (1 / the fans' mean per weight) was 0.47x
    Keras' for dw3 (a mean of 85.5 for 40.5), 0.71x for dw2."""
    entry = _match("depthwise")
    lite, keras = read_model(TFLITE / entry["file"]), read_model(TFLITE / entry["keras_file"])
    pairs = []
    for layer in keras.layers:
        for var in layer.variables:
            if var.role.is_kernel_like:
                mine = next(v for v in lite.layer(layer.name).variables if v.role is var.role)
                pairs.append((layer.name, mine, var))
    assert sorted(theirs.fans() for _, _, theirs in pairs) == sorted(tuple(f) for f in entry["fans"].values())
    for name, mine, theirs in pairs:
        assert mine.fans() == theirs.fans(), name
        drawn = dataclasses.replace(mine, initializer=theirs.initializer)  # Keras' initializer, TFLite's tensor
        assert expected_sum_sq(drawn) == pytest.approx(expected_sum_sq(theirs), rel=1e-12), name
    assert {name for name, mine, _ in pairs if mine.role is Role.DEPTHWISE_KERNEL} == {"dw1", "dw2", "dw3", "sep2"}


def test_depth_multiplier_from_the_file():
    """The converter records DepthwiseConv2DOptions.depth_multiplier (read
    here, bounds-checked), and the interpreter computes it as the kernel's
    channels over the input's: both agree on the real file. A crafted
    kernel whose channels the input's do not divide, without the option,
    keeps multiplier 1 (fans h*w*channels, h*w) instead of raising."""
    from reglint.readers.tflite.schema import parse

    data = (TFLITE / _match("depthwise")["file"]).read_bytes()
    sub = parse(data, len(data)).subgraphs[0]
    depthwise = [op for op in sub.operators if op.opcode == 4]
    assert [op.depth_multiplier for op in depthwise] == [2, 3, 1, 2]
    assert [sub.tensors[op.inputs[1]].shape[3] // sub.tensors[op.inputs[0]].shape[3] for op in depthwise] == [
        2, 3, 1, 2]


@pytest.mark.parametrize(("channels_in", "fans"), [(3, (27, 18)), (4, (54, 9))])
def test_depth_multiplier_from_shapes_alone(tmp_path, channels_in, fans):
    kernel = np.linspace(-1, 1, 54, dtype="<f4")
    tensors = [("x", [1, 4, 4, channels_in], 0), ("model/dw/depthwise", [1, 3, 3, 6], 1), ("y", [1, 2, 2, 6], 0)]
    path = tmp_path / "dw.tflite"
    path.write_bytes(build_graph(tensors, [(0, [0, 1, -1], [2])], [4], [b"", kernel.tobytes()]))
    (var,) = read_model(path).layer("dw").variables
    assert var.role is Role.DEPTHWISE_KERNEL and var.shape == (1, 3, 3, 6) and var.fans() == fans


def _shapes(layer) -> list[tuple[str, tuple[int, ...]]]:
    return [(v.role.value, v.shape) for v in layer.variables]


def test_normalization_constants_at_keras_shapes():
    """The converter stores LayerNormalization's gamma and beta at the
    shape they broadcast at: [1, 1, 1, C] over an image's channels,
    [1, 1, C] over a sequence's features, [1, T, C] over two axes; Keras
    holds [C] and [T, C]. Before, the reader reported the broadcast shapes
    (and fans (1, 8) for ln_image's gamma, Keras' (8, 8)); the stored
    shape stays in the location. The unfoldable BatchNormalization's scale
    and offset are [C] in the file already."""
    lite, keras = _normalizations_as_keras("layernorm", {"ln_image": [1, 1, 1, 8], "ln_seq": [1, 1, 8],
                                                         "ln_pair": [1, 16, 8]})
    assert _shapes(lite.layer("bn_in")) == [("gamma", (3,)), ("beta", (3,))]
    assert [v.shape for v in keras.layer("bn_in").variables] == [(3,)] * 4
    assert not lite.layer("bn_in").variables[0].location.endswith(")")


ZERO_BIAS_NOTE = re.compile(r"(\d+) convolution layers read an all-zero bias the converter made .* the file cannot "
                            r"tell which\. .* Keras holds (\d+) values there \(gamma, beta and moving statistics of "
                            r"(\d+) channels\) that are not in the file: (.*)")


def _zero_bias_note(model) -> tuple[int, int, int, set[str]] | None:
    found = [ZERO_BIAS_NOTE.fullmatch(n) for n in model.notes]
    match = next((m for m in found if m), None)
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3]), set(match[4].split(", "))


def test_untrained_batchnorms_folded_without_a_name_are_counted():
    """An untrained MobileNetV2 (alpha 0.35, 32 x 32): its 52
    BatchNormalizations fold at their initial statistics (gamma 1, beta 0,
    mean 0, variance 1), so every folded bias is zero, stored once per
    width (arith.constant). The 17 after a DepthwiseConv2D leave their name
    on the folded kernel and are in the folded note; the 35 after a Conv2D
    leave only that zero bias. Before, those 35 (17,728 Keras values) went
    unsaid; now a note counts them, with the values and channels Keras'
    BatchNormalizations there hold, and names the layers they follow."""
    entry = _match("mobilenetv2")
    model = read_model(TFLITE / entry["file"])
    bns = entry["batchnorms"]
    folded = next(n for n in model.notes if "BatchNormalization layers folded" in n)
    said = {bn for bn, info in bns.items() if f"{bn} into {info['follows']} ({info['channels']} channels)" in folded}
    assert folded.startswith(f"{len(said)} BatchNormalization layers folded")
    assert {bns[bn]["follows_class"] for bn in said} == {"DepthwiseConv2D"} and len(said) == 17
    silent = [info for bn, info in bns.items() if bn not in said]
    assert _zero_bias_note(model) == (len(silent), sum(info["params"] for info in silent),
                                      sum(info["channels"] for info in silent), {info["follows"] for info in silent})
    assert len(silent) == 35 and len(said) + len(silent) == len(bns) == 52


def test_a_folded_zero_bias_and_a_layers_own_zero_bias_are_one_thing_in_the_file():
    """Why the note says "or": in the untrained mnv3 file the five
    BatchNormalizations folded after a Conv2D and the first squeeze-excite
    Conv2D's own zero bias (use_bias, untrained) are the same thing, an
    all-zero arith.constant, beside kernels named after the convolution
    alone; so the note counts all seven and says the file cannot tell
    which. (The second squeeze-excite convolution's bias took its
    hard_sigmoid's + 3: not zero; the depthwise BNs are in the folded note.)"""
    entry = next(e for e in SHARED if e["model"] == "mnv3" and e["variant"] == "float32")
    count, values, channels, layers = _zero_bias_note(read_model(TFLITE / entry["file"]))
    folds = {name for name, info in entry["layers"].items() if info["folded_bn"] and info["class"] == "Conv2D"}
    own = {name for name, info in entry["layers"].items() if info["class"] == "Conv2D" and info["zero_bias"]
           and not name.endswith("squeeze_excite_conv_1")}
    assert layers == folds | own and len(folds) == 5 and len(own) == 2 and count == 7
    assert channels == sum(entry["layers"][name]["bias_added"] or entry["layers"][name]["zero_bias"]
                           for name in layers)
    assert values == 4 * channels


def test_normalization_constants_drop_only_the_broadcast_ones():
    """A 1 after the first axis is either broadcast (the op's output is
    longer there: drop it) or Keras' own axis of length 1 (the output is 1
    there too: keep it). LayerNormalization over height and width stores
    gamma [1, 4, 4, 1] for Keras' [4, 4]; over a sequence's steps (axis 1)
    [1, 16, 1] for [16]; over two axes whose last is 1, [1, 16, 1] for
    [16, 1]. Before (review 18), the reader kept every 1 after the first
    other axis: [4, 4, 1] and [16, 1] where Keras has [4, 4] and [16]."""
    lite, keras = _normalizations_as_keras("layernorm_axes", {"ln_hw": [1, 4, 4, 1], "ln_steps": [1, 16, 1],
                                                              "ln_steps_one": [1, 16, 1]})
    assert _shapes(keras.layer("ln_hw")) == [("gamma", (4, 4)), ("beta", (4, 4))]
    assert _shapes(keras.layer("ln_steps_one")) == [("gamma", (16, 1)), ("beta", (16, 1))]
    assert lite.total_params == keras.total_params == _match("layernorm_axes")["keras"]["count_params"]


def test_many_separable_convolutions_share_one_note():
    """A NASNetMobile converted to TFLite has 160 SeparableConv2D layers, each
    with a converter-made depthwise bias: one note counts them (it was one
    note per layer, 160 lines); a few keep a note each."""
    from reglint.readers.tflite.reader import _separable_notes

    def note(key: str, zeros: int) -> str:
        return (f"{key}: the depthwise step's bias ({zeros} zeros) is the converter's (Keras' SeparableConv2D has "
                f"one bias, after the pointwise step): counted as the file holds them; Keras counts {zeros} fewer")

    few = {f"sep{i}": note(f"sep{i}", 8) for i in range(3)}
    assert _separable_notes(few) == list(few.values())
    many = {f"sep{i}": note(f"sep{i}", 8 * (i + 1)) for i in range(5)}
    [one] = _separable_notes(many)
    assert one.startswith("5 separable convolutions (sep0, sep1, sep2, ...)") and "Keras counts 120 fewer" in one


def test_a_layer_scale_is_not_an_unfolded_batchnorm():
    """ConvNeXt's LayerScale (x * gamma) added to the block's input is a MUL
    whose ADD adds an activation; a BatchNormalization the converter could
    not fold is a MUL whose ADD adds a constant offset. Only the second is
    named a BatchNormalization (ConvNeXtTiny's 18 layer scales were)."""
    model = read_model(TFLITE / "keras_match" / "layer_scale" / "float32.tflite")
    assert model.layer("layer_scale").class_name == "MUL"
    assert [v.size for v in model.layer("layer_scale").variables] == [4]  # gamma [C], still counted
    assert model.layer("bn").class_name == "BatchNormalization"
    note = next(n for n in model.notes if "could not fold" in n)
    assert note.startswith("1 BatchNormalization layers the converter could not fold (bn)")


def _normalizations_as_keras(model: str, stored: dict[str, list[int]]):
    """The keras_match file and its .keras, read; each named normalization's
    shapes, fans and counts equal, its stored shape kept in the location."""
    entry = _match(model)
    lite, keras = read_model(TFLITE / entry["file"]), read_model(TFLITE / entry["keras_file"])
    for name, shape in stored.items():
        assert _shapes(lite.layer(name)) == _shapes(keras.layer(name)), name
        assert [v.fans() for v in lite.layer(name).variables] == [v.fans() for v in keras.layer(name).variables]
        assert all(v.location.endswith(f"(stored {shape})") for v in lite.layer(name).variables), name
        assert lite.layer(name).params == keras.layer(name).params
    return lite, keras
