"""GPTQ, AWQ, compressed-tensors and block-FP8 checkpoints (the integer- and
float8-packed formats most quantized LLMs on the Hub are published in),
held to each library's own dequantization on real files written by
``fixtures/make_packed_quantized_fixtures.py``.

Before ``readers/packed_quantized.py`` reglint counted 12,622 to 14,912 of
these tiny Llamas' 86,336 parameters: the packed int32 codes were dropped
as integers, float8 weights as not floats, and the scales were counted as
the layers' weights."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reglint.model import Role
from reglint.readers import read_model
from reglint.readers.packed_quantized import _stream_rows
from reglint.readers.small_floats import E2M1, FLOAT8

ROOT = Path(__file__).resolve().parents[1]
PACKED = ROOT / "fixtures" / "torch_packed"
MANIFEST = {e["file"]: e for e in json.loads((PACKED / "manifest.json").read_text())["files"]}
NAMES = sorted(MANIFEST)
CONSTANTS = ("qzeros", "scales", "g_idx", "weight_scale", "weight_zero_point", "weight_shape", "weight_g_idx",
             "weight_global_scale", "weight_scale_inv", "input_scale")
# Each reference is the library's dequantization computed in float32
# (fixtures/make_packed_quantized_fixtures.py); reglint sums float32 values
# in float64: what remains is float32 rounding.
REL = 1e-5
LIBRARY = {"gptq": "GPTQ", "awq": "AWQ", "ct": "compressed-tensors", "fp8": "FP8 block scaling"}


def variables(model):
    return {v.location: v for _, v in model.variables()}


@pytest.mark.parametrize("name", NAMES)
def test_counts_are_the_float_models(name):
    """Every quantized Linear counts as its float [out, in] weight: the
    model's count is torch's before quantization, and no scale, zero point,
    group index or shape is a parameter."""
    entry = MANIFEST[name]
    model = read_model(PACKED / name)
    assert model.total_params == model.trainable_params == entry["float_parameters"]
    found = variables(model)
    assert not [loc for loc in found if loc.rpartition(".")[2] in CONSTANTS]
    quantized = list(entry["quantized"])
    assert sum(found[loc].size for loc in quantized) == entry["quantized_parameters"]


@pytest.mark.parametrize("name", NAMES)
def test_statistics_are_the_librarys_dequantized_values(name):
    """Sum of squares, of |w| and max |w| of each weight equal those of the
    library's own dequantization (auto_gptq's forward, AutoAWQ's
    dequantize_gemm, compressed-tensors' decompress_model, transformers'
    Fp8Dequantize), computed in float32. A wrong zero offset, nibble order,
    group index or edge block moves these by percents."""
    found = variables(read_model(PACKED / name))
    for location, want in MANIFEST[name]["quantized"].items():
        got = found[location]
        # float32, or bfloat16 where the values are float8 codes times E8M0
        # powers of two (MXFP8, ue8m0 scales): exact in bfloat16
        assert want["dtype"] == "float32" or name in ("ct_mxfp8", "fp8_block32_ue8m0"), location
        rel = REL
        assert list(got.shape) == want["shape"] and got.role is Role.KERNEL, location
        assert got.stats.sum_sq == pytest.approx(want["sum_sq"], rel=rel), location
        assert got.stats.sum_abs == pytest.approx(want["sum_abs"], rel=rel), location
        assert got.stats.max_abs == pytest.approx(want["max_abs"], rel=4 * rel), location


@pytest.mark.parametrize("name", NAMES)
def test_the_note_names_the_library_and_no_error_is_raised(name):
    model = read_model(PACKED / name)
    notes = [n for n in model.notes if "stored quantized by" in n]
    assert len(notes) == 1 and LIBRARY[name.split("_")[0]] in notes[0]
    assert f"{len(MANIFEST[name]['quantized'])} weights" in notes[0]
    done = subprocess.run([sys.executable, "-m", "reglint", "check", str(PACKED / name), "--format", "json",
                           "--no-cache"], capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)["files"][0]
    assert report["error"] is None and report["model"]["params"]["total"] == MANIFEST[name]["float_parameters"]


def test_the_fixtures_hold_what_they_are_for():
    """The cases above, kept by the fixtures: every GPTQ width (2, 3, 4, 8),
    act-order with an asymmetric zero point, one group a row, a module
    whose tensors a sharded save split over two files, AWQ, and every
    compressed-tensors format with weights."""
    assert {MANIFEST[n]["quantization_config"].get("bits") for n in NAMES if n.startswith("gptq")} == {2, 3, 4, 8}
    act_order = MANIFEST["gptq_int4_act_order"]["quantization_config"]
    assert act_order["desc_act"] and not act_order["sym"]
    assert MANIFEST["gptq_int2_per_channel"]["quantization_config"]["group_size"] == -1
    assert MANIFEST["gptq_int4_sharded"]["straddles_shards"] and MANIFEST["gptq_int4_sharded_bin"]["straddles_shards"]
    assert any(name.endswith(".bin") for name in MANIFEST["gptq_int4_sharded_bin"]["files"])
    formats = {MANIFEST[n]["quantization_config"].get("format") for n in NAMES if n.startswith("ct_")}
    assert formats == {"pack-quantized", "int-quantized", "float-quantized", "nvfp4-pack-quantized",
                       "mxfp4-pack-quantized", "mxfp8-quantized"}
    padded = MANIFEST["ct_fp8_block_padded"]["quantized"]["model.layers.0.mlp.down_proj.weight"]["shape"]
    assert padded == [72, 100]  # neither side a multiple of the 32-block
    assert MANIFEST["fp8_block32"]["quantization_config"]["weight_block_size"] == [32, 32]
    assert MANIFEST["fp8_block32_ue8m0"]["quantization_config"]["scale_fmt"] == "ue8m0"


def test_gptq_v2_zero_points_are_not_offset(tmp_path):
    """GPTQModel's ``checkpoint_format: gptq_v2`` stores each zero point
    itself, v1 stores ``zero - 1``: the same file read as v2 gives values a
    scale away."""
    folder = tmp_path / "v2"
    shutil.copytree(PACKED / "gptq_int4", folder)
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"]["checkpoint_format"] = "gptq_v2"
    (folder / "config.json").write_text(json.dumps(config))
    location = "model.layers.0.self_attn.q_proj.weight"
    v1 = variables(read_model(PACKED / "gptq_int4"))[location].stats.sum_sq
    v2 = variables(read_model(folder))[location].stats.sum_sq
    assert v1 == pytest.approx(MANIFEST["gptq_int4"]["quantized"][location]["sum_sq"], rel=2e-4)
    assert abs(v2 - v1) > 0.02 * v1


def test_a_bare_safetensors_file_is_read_without_its_config(tmp_path):
    """Without ``config.json`` (a lone ``model.safetensors``) GPTQ and AWQ
    are told apart by their tensors' shapes."""
    for name in ("gptq_int3", "awq_gemm_int4", "ct_w4a16_asym"):
        path = tmp_path / f"{name}.safetensors"
        shutil.copy(PACKED / name / "model.safetensors", path)
        model = read_model(path)
        assert model.total_params == MANIFEST[name]["float_parameters"], name
        location = "model.layers.1.mlp.down_proj.weight"
        want = MANIFEST[name]["quantized"][location]["sum_sq"]
        assert variables(model)[location].stats.sum_sq == pytest.approx(want, rel=2e-4), name


def test_a_bit_stream_holds_code_j_at_bit_bits_times_j():
    """``_stream_rows`` against a stream written bit by bit from that
    definition, for every width 1 to 8 and a row length (70) no word
    divides. The libraries' own packers are held to it through the
    fixtures (GPTQ 2, 3, 4, 8 bits; compressed-tensors 4 bits)."""
    rng = np.random.default_rng(0)
    for bits in range(1, 9):
        codes = rng.integers(0, 1 << bits, size=(3, 70))
        stream = np.zeros((3, -(-70 * bits // 32) * 32), dtype=np.uint8)
        for j in range(bits):
            stream[:, j:70 * bits:bits] = (codes >> j) & 1
        raw = np.packbits(stream, axis=1, bitorder="little")
        assert np.array_equal(_stream_rows(raw, bits, 70), codes), bits


def test_the_float_tables_are_ocp_and_torchs():
    assert float(FLOAT8["float8_e4m3fn"][0x7E]) == 448.0 and np.isnan(FLOAT8["float8_e4m3fn"][0x7F])
    assert float(FLOAT8["float8_e5m2"][0x7B]) == 57344.0 and np.isinf(FLOAT8["float8_e5m2"][0x7C])
    assert float(FLOAT8["float8_e4m3fn"][0x01]) == 2.0 ** -9  # the smallest subnormal
    assert list(E2M1[8:]) == [-v for v in E2M1[:8]]


def test_a_plain_float8_weight_is_a_parameter(tmp_path):
    """A float8 tensor without a scale (a model cast to float8) is a float
    parameter with the statistics of its values (before: not counted)."""
    codes = np.array([[0x38, 0xB8], [0x40, 0x00]], dtype=np.uint8)  # 1.0, -1.0, 2.0, 0.0 in E4M3
    header = json.dumps({"fc.weight": {"dtype": "F8_E4M3", "shape": [2, 2], "data_offsets": [0, 4]}}).encode()
    header += b" " * (-len(header) % 8)
    path = tmp_path / "f8.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + codes.tobytes())
    model = read_model(path)
    weight = variables(model)["fc.weight"]
    assert model.total_params == 4 and weight.stats.sum_sq == pytest.approx(6.0)
    assert weight.stats.max_abs == pytest.approx(2.0)


# ---------------------------------------------------------------------------
# layouts no CPU writer here produces, built from their documented definitions
# ---------------------------------------------------------------------------
def write_safetensors(path: Path, tensors: dict[str, tuple[str, tuple[int, ...], bytes]],
                      config: dict | None = None) -> Path:
    """A safetensors file from (dtype, shape, raw bytes) per name; with
    ``config``, a Hugging Face folder holding it and a config.json."""
    header, offset, data = {}, 0, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset, data = offset + len(raw), data + raw
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    if config is not None:
        path.mkdir()
        (path / "config.json").write_text(json.dumps({"architectures": ["Tiny"], "quantization_config": config}))
        path = path / "model.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path.parent if config is not None else path


def e4m3_codes(values: np.ndarray) -> np.ndarray:
    """The E4M3 code nearest each value (by the table)."""
    table = np.nan_to_num(FLOAT8["float8_e4m3fn"], nan=np.inf)
    return np.abs(values[..., None] - table).argmin(axis=-1).astype(np.uint8)


def test_a_padded_block_grid_without_a_config(tmp_path):
    """DeepSeek-V3's ``kv_a_proj_with_mqa`` is 576 rows under 128-blocks:
    ``weight_scale_inv`` has ceil(576 / 128) = 5 rows of cells, each 128
    rows (the last 64), not 116 (DeepSeek's ``weight_dequant`` indexes
    ``r // 128``). Without a config the block is the power of two that
    gives the grid."""
    rng = np.random.default_rng(1)
    rows, cols, block = 576, 200, 128
    codes = e4m3_codes(rng.normal(0, 60, (rows, cols)))
    scale = rng.uniform(0.5, 1.5, (5, 2)).astype(np.float32) * 1e-3
    path = write_safetensors(tmp_path / "fp8.safetensors", {
        "proj.weight": ("F8_E4M3", (rows, cols), codes.tobytes()),
        "proj.weight_scale_inv": ("F32", (5, 2), scale.tobytes())})
    full = FLOAT8["float8_e4m3fn"][codes].astype(np.float64) * \
        scale.repeat(block, 0).repeat(block, 1)[:rows, :cols]
    weight = variables(read_model(path))["proj.weight"]
    assert weight.size == rows * cols
    assert weight.stats.sum_sq == pytest.approx(float((full ** 2).sum()), rel=1e-6)


def test_modelopt_nvfp4(tmp_path):
    """NVIDIA ModelOpt's NVFP4 export (vLLM's ``ModelOptNvFp4LinearMethod``):
    ``weight`` uint8 [out, in / 2] (E2M1, low nibble first), ``weight_scale``
    float8 [out, in / 16], ``weight_scale_2`` a float32 scalar:
    ``value = e2m1 * scale * scale_2``. Before: half the count, integer
    codes for values, ``weight_scale_2`` a parameter."""
    rng = np.random.default_rng(2)
    out, inputs = 32, 64
    nibbles = rng.integers(0, 16, (out, inputs)).astype(np.uint8)
    packed = nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)
    scale = e4m3_codes(rng.uniform(1, 8, (out, inputs // 16)))
    folder = write_safetensors(tmp_path / "modelopt", {
        "fc.weight": ("U8", packed.shape, packed.tobytes()),
        "fc.weight_scale": ("F8_E4M3", scale.shape, scale.tobytes()),
        "fc.weight_scale_2": ("F32", (), np.float32(0.01).tobytes()),
        "fc.input_scale": ("F32", (), np.float32(0.5).tobytes())}, {"quant_method": "modelopt"})
    model = read_model(folder)
    full = E2M1[nibbles].astype(np.float64) * np.repeat(FLOAT8["float8_e4m3fn"][scale], 16, axis=1) * 0.01
    weight = variables(model)["fc.weight"]
    assert model.total_params == out * inputs and list(weight.shape) == [out, inputs]
    assert weight.stats.sum_sq == pytest.approx(float((full ** 2).sum()), rel=1e-6)
    assert any("NVIDIA ModelOpt" in note for note in model.notes)


def test_transformers_packed_fp4_beside_an_inverse_scale(tmp_path):
    """transformers' ``Fp8Dequantize`` reads an int8 ``weight`` beside a
    ``weight_scale_inv`` as two E2M1 codes a byte (low nibble first): the
    float weight is twice as wide as the stored one."""
    rng = np.random.default_rng(3)
    nibbles = rng.integers(0, 16, (64, 64)).astype(np.uint8)
    packed = (nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)).view(np.int8)
    scale = np.full((2, 2), 0.25, dtype=np.float32)
    folder = write_safetensors(tmp_path / "fp4", {
        "fc.weight": ("I8", packed.shape, packed.tobytes()),
        "fc.weight_scale_inv": ("F32", scale.shape, scale.tobytes())},
        {"quant_method": "fp8", "weight_block_size": [32, 32]})
    weight = variables(read_model(folder))["fc.weight"]
    assert list(weight.shape) == [64, 64]
    assert weight.stats.sum_sq == pytest.approx(float(((E2M1[nibbles] * 0.25) ** 2).sum()), rel=1e-6)


def test_malformed_layers_cost_their_statistics_not_the_file(tmp_path):
    """Zero-size constants, a g_idx of the wrong length, int16 codes: the
    file reads, the other layers keep their statistics."""
    good = np.ones((4, 4), dtype=np.float32)
    path = write_safetensors(tmp_path / "bad.safetensors", {
        "ok.weight": ("F32", (4, 4), good.tobytes()),
        "empty.qweight": ("I32", (4, 0), b""),
        "empty.qzeros": ("I32", (1, 0), b""),
        "empty.scales": ("F16", (1, 0), b""),
        "wide.weight": ("I16", (4, 4), np.arange(16, dtype=np.int16).tobytes()),
        "wide.weight_scale": ("F32", (4, 1), np.full(4, 0.5, np.float32).tobytes()),
        "gidx.weight_packed": ("I32", (4, 4), np.zeros(16, np.int32).tobytes()),  # 4-bit: 32 inputs
        "gidx.weight_shape": ("I64", (2,), np.array([4, 32], np.int64).tobytes()),
        "gidx.weight_scale": ("F32", (4, 2), np.ones(8, np.float32).tobytes()),
        "gidx.weight_g_idx": ("I32", (7,), np.zeros(7, np.int32).tobytes())})
    found = variables(read_model(path))
    assert found["ok.weight"].stats.sum_sq == pytest.approx(16.0)
    assert found["wide.weight"].stats.sum_sq == pytest.approx(float(((np.arange(16) * 0.5) ** 2).sum()))
    assert found["gidx.weight"].size == 128 and found["gidx.weight"].stats is None


def test_a_zero_global_scale_says_nothing_on_stderr(tmp_path):
    import warnings

    folder = write_safetensors(tmp_path / "nvfp4", {
        "fc.weight_packed": ("U8", (16, 8), bytes(range(128))),
        "fc.weight_scale": ("F8_E4M3", (16, 1), bytes([0x38] * 16)),
        "fc.weight_global_scale": ("F32", (1,), np.float32(0).tobytes())}, {"quant_method": "compressed-tensors"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weight = variables(read_model(folder))["fc.weight"]
    assert weight.size == 256


def test_a_bitsandbytes_weight_is_not_dequantized_twice(tmp_path):
    """An LLM.int8 layer (``weight`` int8 beside ``SCB``) is bitsandbytes'
    (``value = code * SCB[row] / 127``) even with a ``weight_scale`` beside
    it: the second pass leaves weights the first replaced."""
    codes = np.arange(-8, 8, dtype=np.int8).reshape(4, 4)
    scb = np.array([127.0, 254.0, 127.0, 63.5], dtype=np.float32)
    path = write_safetensors(tmp_path / "bnb.safetensors", {
        "fc.weight": ("I8", (4, 4), codes.tobytes()),
        "fc.SCB": ("F32", (4,), scb.tobytes()),
        "fc.weight_scale": ("F32", (4, 1), np.full(4, 100.0, np.float32).tobytes())})
    model = read_model(path)
    want = (codes.astype(np.float64) * (scb[:, None] / 127.0)) ** 2
    assert variables(model)["fc.weight"].stats.sum_sq == pytest.approx(float(want.sum()))
    assert [n for n in model.notes if "stored quantized by bitsandbytes (int8)" in n]
