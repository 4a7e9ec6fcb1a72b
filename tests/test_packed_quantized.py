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
# Relative tolerance for a reference the library rounded to this dtype
# (half its unit roundoff a value: float16 2^-11, bfloat16 2^-8).
ROUNDING = {"float16": 2e-4, "bfloat16": 2e-3, "float32": 1e-5}
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
    Fp8Dequantize). The libraries round their values to float16 or
    bfloat16 where reglint keeps float32: the tolerance is that rounding's.
    A wrong zero offset, nibble order or group index moves these by
    percents."""
    found = variables(read_model(PACKED / name))
    for location, want in MANIFEST[name]["quantized"].items():
        got = found[location]
        rel = ROUNDING[want["dtype"]]
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
    assert MANIFEST["gptq_int4_sharded"]["straddles_shards"]
    formats = {MANIFEST[n]["quantization_config"].get("format") for n in NAMES if n.startswith("ct_")}
    assert formats == {"pack-quantized", "int-quantized", "float-quantized", "nvfp4-pack-quantized",
                       "mxfp4-pack-quantized"}
    assert MANIFEST["fp8_block32"]["quantization_config"]["weight_block_size"] == [32, 32]


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


def test_bit_streams_match_the_packers():
    """``_stream_rows`` reads code j at bits ``bits*j``: what auto_gptq packs
    for 3 bits (codes straddling words) and compressed-tensors'
    ``pack_to_int32`` for every width."""
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
