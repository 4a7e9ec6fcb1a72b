"""OpenAI gpt-oss checkpoints: MoE experts stored MXFP4 (E2M1 blocks and
E8M0 scales, ``readers/gptoss_mxfp4.py``), held to transformers' own
``from_pretrained`` of the same folders
(``fixtures/make_gptoss_fixtures.py``).

Before ``gptoss_mxfp4`` reglint counted 40,144 of the tiny model's 187,600
parameters (the uint8 blocks and scales dropped as integers: 79% of it,
nearly all of a real gpt-oss), and the expert biases were roled OTHER."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reglint.model import Role
from reglint.readers import read_model
from reglint.readers.gptoss_mxfp4 import E2M1_PAIRS
from reglint.readers.limits import ReadOptions
from reglint.readers.small_floats import E2M1

ROOT = Path(__file__).resolve().parents[1]
PACKED = ROOT / "fixtures" / "torch_packed"
NAMES = ("gptoss_mxfp4", "gptoss_mxfp4_mixed")
EXPECTED = {name: json.loads((PACKED / name / "expected.json").read_text()) for name in NAMES}
# The reference is transformers' dequantization in float32; reglint sums
# the same float32 values in float64.
REL = 1e-5
GATE_UP = "model.layers.0.mlp.experts.gate_up_proj"


def variables(model):
    return {v.location: v for _, v in model.variables()}


def note_of(model) -> str:
    [note] = [n for n in model.notes if "stored quantized by" in n]
    return note


@pytest.mark.parametrize("name", NAMES)
def test_counts_are_transformers_models(name):
    """Each expert weight counts at the shape GptOssExperts holds it
    ([E, H, 2*I], [E, I, H]): the total is transformers' model's
    ``sum(p.numel())``."""
    want = EXPECTED[name]
    model = read_model(PACKED / name)
    assert model.total_params == model.trainable_params == want["float_parameters"] == 187_600
    found = variables(model)
    for location, facts in want["expected"].items():
        var = found[location]
        assert list(var.shape) == facts["shape"], location
        assert var.role is (Role.BIAS if location.endswith("_bias") else Role.KERNEL), location
    assert {found[loc].dtype for loc in want["quantized"]} == {"mxfp4"}


def test_the_scales_are_not_weights(tmp_path):
    """The scales are constants whatever their dtype: stored as float32
    (no MXFP4 scale dtype: the weights lose their statistics, noted) they
    would be counted as parameters if they were not dropped."""
    folder = copy_fixture(tmp_path, "gptoss_mxfp4")
    tensors = read_safetensors(folder / "model.safetensors")
    scales = [n for n in tensors if n.endswith("_scales")]
    for name in scales:
        _, shape, raw = tensors[name]
        tensors[name] = ("F32", shape, np.exp2(np.frombuffer(raw, np.uint8) - 127.0).astype(np.float32).tobytes())
    write_safetensors(folder / "model.safetensors", tensors)
    model = read_model(folder)
    found = variables(model)
    assert model.total_params == EXPECTED["gptoss_mxfp4"]["float_parameters"]
    assert not [loc for loc in found if loc.endswith(("_scales", "_blocks"))]
    assert found[GATE_UP].stats is None and [n for n in model.notes if "without statistics" in n]


@pytest.mark.parametrize("name", NAMES)
def test_statistics_are_transformers_dequantized_values(name):
    """Sum of squares, of |w| and max |w| of every expert tensor equal
    those of transformers' dequantized parameters (float32). An exponent
    off by one or a scale read for another block moves them by far more
    (the order of the codes inside a block, which shares one scale, and
    the transpose do not: the shapes hold those)."""
    found = variables(read_model(PACKED / name))
    for location, want in EXPECTED[name]["expected"].items():
        stats = found[location].stats
        assert stats is not None and stats.nonfinite == 0, location
        assert stats.count == int(np.prod(want["shape"])), location
        assert stats.sum_sq == pytest.approx(want["sum_sq"], rel=REL), location
        assert stats.sum_abs == pytest.approx(want["sum_abs"], rel=REL), location
        assert stats.max_abs == pytest.approx(want["max_abs"], rel=REL), location


def test_small_slabs_give_the_same_statistics():
    """A slab a few blocks long (scales read beside each slab's blocks)
    gives what one slab does."""
    whole = variables(read_model(PACKED / "gptoss_mxfp4"))[GATE_UP].stats
    slabs = variables(read_model(PACKED / "gptoss_mxfp4", ReadOptions(chunk_bytes=5 * 512)))[GATE_UP].stats
    assert slabs is not None and whole is not None
    assert (slabs.count, slabs.max_abs) == (whole.count, whole.max_abs)
    assert slabs.sum_sq == pytest.approx(whole.sum_sq, rel=1e-12)


def test_a_byte_decodes_to_its_low_nibble_then_its_high():
    """transformers' ``convert_moe_packed_tensors``: ``out[:, 0::2] =
    lut[blk & 0x0F]``, ``out[:, 1::2] = lut[blk >> 4]``. (Statistics cannot
    tell the order: a block's values share one scale.)"""
    codes = np.arange(256, dtype=np.uint8)
    pairs = np.take(E2M1_PAIRS, codes).view(np.float32).reshape(256, 2)
    assert np.array_equal(pairs[:, 0], E2M1[codes & 0x0F]) and np.array_equal(pairs[:, 1], E2M1[codes >> 4])
    assert list(pairs[0x7A]) == [-1.0, 6.0]


def test_the_fixtures_hold_what_they_are_for():
    """Hidden 64 and intermediate 96 differ (a transposed weight would have
    another shape); the mixed folder keeps layer 1's experts bfloat16 and
    splits layer 0's gate_up blocks from their scales over two shards."""
    full, mixed = EXPECTED["gptoss_mxfp4"], EXPECTED["gptoss_mxfp4_mixed"]
    assert full["expected"][GATE_UP]["shape"] == [4, 64, 192]
    assert full["expected"]["model.layers.0.mlp.experts.down_proj"]["shape"] == [4, 96, 64]
    assert len(full["quantized"]) == 4 and mixed["quantized"] == ["model.layers.0.mlp.experts.down_proj", GATE_UP]
    assert "model.layers.1.mlp.experts" in mixed["quantization_config"]["modules_to_not_convert"]
    index = json.loads((PACKED / "gptoss_mxfp4_mixed" / "model.safetensors.index.json").read_text())["weight_map"]
    assert index[f"{GATE_UP}_blocks"] != index[f"{GATE_UP}_scales"]


@pytest.mark.parametrize("name", NAMES)
def test_the_note_names_gptoss_mxfp4_and_the_cli_reads_it(name):
    want = EXPECTED[name]
    note = note_of(read_model(PACKED / name))
    assert "OpenAI gpt-oss MXFP4" in note and f"{len(want['quantized'])} weights" in note
    done = subprocess.run([sys.executable, "-m", "reglint", "check", str(PACKED / name), "--format", "json",
                           "--no-cache"], capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)["files"][0]
    assert report["error"] is None and report["model"]["params"]["total"] == want["float_parameters"]


def test_a_bare_safetensors_file_is_read_without_its_config(tmp_path):
    """The blocks and scales name themselves: no config.json needed."""
    path = tmp_path / "gptoss.safetensors"
    shutil.copy(PACKED / "gptoss_mxfp4" / "model.safetensors", path)
    model = read_model(path)
    assert model.total_params == EXPECTED["gptoss_mxfp4"]["float_parameters"]
    want = EXPECTED["gptoss_mxfp4"]["expected"][GATE_UP]["sum_sq"]
    assert variables(model)[GATE_UP].stats.sum_sq == pytest.approx(want, rel=REL)
    assert "OpenAI gpt-oss MXFP4" in note_of(model)


def test_e8m0_typed_scales_read_as_uint8_ones(tmp_path):
    """torch's ``float8_e8m0fnu`` (safetensors ``F8_E8M0``) holds the same
    exponents as the uint8 scales gpt-oss ships."""
    folder = copy_fixture(tmp_path, "gptoss_mxfp4")
    tensors = read_safetensors(folder / "model.safetensors")
    for name in [n for n in tensors if n.endswith("_scales")]:
        tensors[name] = ("F8_E8M0", *tensors[name][1:])
    write_safetensors(folder / "model.safetensors", tensors)
    got = variables(read_model(folder))[GATE_UP].stats
    assert got.sum_sq == pytest.approx(EXPECTED["gptoss_mxfp4"]["expected"][GATE_UP]["sum_sq"], rel=REL)


def test_blocks_that_do_not_fit_their_scales_are_noted_not_a_traceback(tmp_path):
    """Truncated blocks (one block a row where the scales have two):
    transformers refuses the file. reglint counts the weight at the shape
    its blocks give, without statistics, says which tensor, and the rest
    of the model reads as before; the CLI exits 0 or 1, no traceback."""
    folder = copy_fixture(tmp_path, "gptoss_mxfp4")
    tensors = read_safetensors(folder / "model.safetensors")
    _, shape, raw = tensors[f"{GATE_UP}_blocks"]
    cut = np.frombuffer(raw, np.uint8).reshape(shape)[:, :, :1].copy()
    tensors[f"{GATE_UP}_blocks"] = ("U8", cut.shape, cut.tobytes())
    write_safetensors(folder / "model.safetensors", tensors)
    model = read_model(folder)
    found = variables(model)
    assert list(found[GATE_UP].shape) == [4, 32, 192] and found[GATE_UP].stats is None
    assert model.total_params == EXPECTED["gptoss_mxfp4"]["float_parameters"] - 4 * 32 * 192
    [note] = [n for n in model.notes if "without statistics" in n]
    assert f"{GATE_UP}_blocks [4, 192, 1, 16]" in note and "[4, 192, 2]" in note
    down = "model.layers.0.mlp.experts.down_proj"
    assert found[down].stats.sum_sq == pytest.approx(EXPECTED["gptoss_mxfp4"]["expected"][down]["sum_sq"], rel=REL)
    done = subprocess.run([sys.executable, "-m", "reglint", "check", str(folder), "--no-cache"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr


# ---------------------------------------------------------------------------
# a fixture's safetensors file, rewritten
# ---------------------------------------------------------------------------
def copy_fixture(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(PACKED / name, folder)
    return folder


def read_safetensors(path: Path) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    """(dtype, shape, raw bytes) of each tensor, in file order."""
    data = path.read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    header.pop("__metadata__", None)
    body = data[8 + size:]
    return {name: (e["dtype"], tuple(e["shape"]), body[e["data_offsets"][0]:e["data_offsets"][1]])
            for name, e in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0])}


def write_safetensors(path: Path, tensors: dict[str, tuple[str, tuple[int, ...], bytes]]) -> None:
    header, offset = {}, 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + b"".join(raw for _, _, raw in tensors.values()))


# ---------------------------------------------------------------------------
# review 18: crafted and corrupt files
# ---------------------------------------------------------------------------
def _edited(tmp_path: Path, edit) -> Path:
    folder = copy_fixture(tmp_path, "gptoss_mxfp4")
    tensors = read_safetensors(folder / "model.safetensors")
    edit(tensors)
    write_safetensors(folder / "model.safetensors", tensors)
    return folder


def _u8(tensors, name: str) -> np.ndarray:
    _, shape, raw = tensors[name]
    return np.frombuffer(raw, np.uint8).reshape(shape).copy()


def test_extreme_scales_decode_as_transformers_ldexp(tmp_path):
    """Scales 255, 254 and 0 (a packer never writes 255; a corrupt file
    may): transformers decodes ``ldexp(e2m1, scale - 127)``, so at 255 a
    zero code stays 0 and +-0.5 is +-2^127, finite, the rest inf; at 254
    codes of 2 and more overflow. Before, 255 read as E8M0's NaN: every
    value of that expert non-finite (18,038 of 49,152 for transformers'
    14,957) and its finite 2^127s gone from the sums. Reference:
    ``from_pretrained`` of the edited file (``expected.json``'s
    ``edge_scales``, ``make_gptoss_fixtures.py``)."""
    want = EXPECTED["gptoss_mxfp4"]["edge_scales"]

    def edit(tensors):
        scales = _u8(tensors, f"{GATE_UP}_scales")
        for expert, scale in want["scales"].items():
            scales[int(expert)] = scale
        tensors[f"{GATE_UP}_scales"] = ("U8", scales.shape, scales.tobytes())

    stats = variables(read_model(_edited(tmp_path, edit)))[GATE_UP].stats
    assert stats is not None and stats.count == want["count"]
    assert stats.nonfinite == want["nonfinite"]
    assert stats.max_abs == want["max_abs"]
    assert stats.sum_sq == pytest.approx(want["sum_sq"], rel=REL)
    assert stats.sum_abs == pytest.approx(want["sum_abs"], rel=REL)


def _undecoded_note(model) -> str:
    [note] = [n for n in model.notes if "MXFP4 expert" in n and "stored quantized by" not in n]
    return note


def test_blocks_without_their_scales_are_counted_and_noted(tmp_path):
    """A ``_blocks`` whose ``_scales`` is not in the file (a shard lost, a
    crafted file): before, the blocks were dropped as integers, 49,152
    parameters (26% of the model) gone without a word. Now the weight
    counts at the shape its blocks give, without statistics, noted."""
    folder = _edited(tmp_path, lambda tensors: tensors.pop(f"{GATE_UP}_scales"))
    model = read_model(folder)
    found = variables(model)
    assert model.total_params == EXPECTED["gptoss_mxfp4"]["float_parameters"]
    assert list(found[GATE_UP].shape) == [4, 64, 192] and found[GATE_UP].stats is None
    assert f"{GATE_UP}_blocks [4, 192, 2, 16] without {GATE_UP}_scales" in _undecoded_note(model)


def test_scales_without_their_blocks_are_noted(tmp_path):
    """The weight is not in the file: nothing to count, but said."""
    model = read_model(_edited(tmp_path, lambda tensors: tensors.pop(f"{GATE_UP}_blocks")))
    assert model.total_params == EXPECTED["gptoss_mxfp4"]["float_parameters"] - 4 * 64 * 192
    assert GATE_UP not in variables(model)
    assert f"{GATE_UP}_scales [4, 192, 2] without {GATE_UP}_blocks" in _undecoded_note(model)


def test_int8_blocks_decode_as_their_bytes(tmp_path):
    """transformers' ``blocks.to(torch.uint8)`` keeps an int8 tensor's
    bytes: the same values. Before, int8 blocks were dropped as integers
    (49,152 parameters, no note)."""
    folder = _edited(tmp_path, lambda t: t.__setitem__(f"{GATE_UP}_blocks", ("I8", *t[f"{GATE_UP}_blocks"][1:])))
    model = read_model(folder)
    assert model.total_params == EXPECTED["gptoss_mxfp4"]["float_parameters"]
    want = EXPECTED["gptoss_mxfp4"]["expected"][GATE_UP]
    assert variables(model)[GATE_UP].stats.sum_sq == pytest.approx(want["sum_sq"], rel=REL)


def test_empty_blocks_over_scales_are_noted(tmp_path):
    """Blocks cut to no expert beside the four experts' scales: before,
    skipped as empty and the weight gone without a word."""
    def edit(tensors):
        tensors[f"{GATE_UP}_blocks"] = ("U8", (0, 192, 2, 16), b"")

    model = read_model(_edited(tmp_path, edit))
    assert list(variables(model)[GATE_UP].shape) == [0, 64, 192]
    assert f"{GATE_UP}_blocks [0, 192, 2, 16] over {GATE_UP}_scales [4, 192, 2]" in _undecoded_note(model)


def test_a_float_weight_beside_its_blocks_is_not_hidden(tmp_path):
    """A file holding both ``gate_up_proj`` (bfloat16) and its MXFP4
    blocks: before, the decoded blocks took the float weight's name and
    one of the two silently replaced the other. The stored float weight
    is kept, the blocks are not decoded over it, and the note says so."""
    def edit(tensors):
        tensors[GATE_UP] = ("BF16", (4, 64, 192), np.full(4 * 64 * 192, 0x3F80, "<u2").tobytes())  # all 1.0

    model = read_model(_edited(tmp_path, edit))
    var = variables(model)[GATE_UP]
    assert var.dtype == "bfloat16" and var.stats.sum_sq == 4 * 64 * 192
    assert f"{GATE_UP}_blocks beside a stored {GATE_UP}" in _undecoded_note(model)


def test_quantization_constants_of_fused_experts_are_not_kernels(tmp_path):
    """transformers 5's FP8 fused experts store ``gate_up_proj`` beside
    ``gate_up_proj_scale_inv`` [E, 2I/128, H/128] float32: the stack is a
    kernel, its scale is not (before: both Role.KERNEL)."""
    weight = np.full((4, 256, 128), 0x38, np.uint8)  # float8_e4m3fn 1.0
    scale = np.ones((4, 2, 1), "<f4")
    path = tmp_path / "fp8_experts.safetensors"
    write_safetensors(path, {"model.layers.0.mlp.experts.gate_up_proj": ("F8_E4M3", weight.shape, weight.tobytes()),
                             "model.layers.0.mlp.experts.gate_up_proj_scale_inv": ("F32", scale.shape,
                                                                                   scale.tobytes())})
    layer = read_model(path).layers[0]
    roles = {v.name: v.role for v in layer.variables}
    assert layer.class_name == "Experts"
    assert roles == {"gate_up_proj": Role.KERNEL, "gate_up_proj_scale_inv": Role.OTHER}


@pytest.mark.parametrize("layout", ["3-d", "float32"])
def test_blocks_of_another_layout_beside_scales_are_noted(tmp_path, layout):
    """``gate_up_proj_blocks`` reshaped to [E, R, 32] or stored float32,
    beside its scales: no MX layout, no shape to count it at
    (transformers refuses the file). Before, the integer blocks and the
    scales were dropped without a word; now the note names them."""
    def edit(tensors):
        dtype, shape, raw = tensors[f"{GATE_UP}_blocks"]
        if layout == "3-d":
            tensors[f"{GATE_UP}_blocks"] = (dtype, (shape[0], shape[1], shape[2] * shape[3]), raw)
        else:
            codes = np.frombuffer(raw, np.uint8).astype("<f4")
            tensors[f"{GATE_UP}_blocks"] = ("F32", shape, codes.tobytes())

    model = read_model(_edited(tmp_path, edit))
    assert GATE_UP not in variables(model)
    told = "counted as stored" if layout == "float32" else "not counted"
    assert f"{GATE_UP}_blocks" in _undecoded_note(model) and told in _undecoded_note(model)
    assert (f"{GATE_UP}_blocks" in variables(model)) is (layout == "float32")  # a float tensor counts as one
