"""GGUF files (llama.cpp's format), held to llama.cpp's own tools on real
files written by ``fixtures/make_gguf_fixtures.py``: llama.cpp's converter
(``convert_hf_to_gguf.py``: f32, f16, bf16, q8_0) and quantizer
(``llama-quantize``: Q4_0, Q4_K_M, Q5_K_M, Q6_K, Q2_K, IQ4_XS) from tiny
Llama and Mixtral models built by transformers.

Before ``readers/gguf_reader.py`` reglint said "unrecognised file format"
(exit 2) for every one of them. Counts are torch's
(``sum(p.numel() for p in model.parameters())``); statistics are those of
``gguf.quants.dequantize`` (llama.cpp's Python package) of the stored bytes."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reglint.errors import ModelReadError, ReglintError, UnsafeInputError
from reglint.model import Role
from reglint.readers import ReadOptions, read_model
from reglint.readers import gguf_reader as reader
from reglint.readers.sniff import Format, sniff

from helpers import hang_guard

ROOT = Path(__file__).resolve().parents[1]
GGUF = ROOT / "fixtures" / "gguf"
MANIFEST = {e["file"]: e for e in json.loads((GGUF / "manifest.json").read_text())["files"]}
NAMES = sorted(MANIFEST)
REGLINT = [sys.executable, "-m", "reglint"]


def variables(model):
    return {v.location: v for _, v in model.variables()}


# ---------------------------------------------------------------------------
# the fixtures: counts, statistics, roles
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_counts_are_torchs(name):
    """Every tensor at its float shape (ggml's dims reversed), whatever its
    type: the model's count is torch's, and the file's own (the converter
    permutes q/k rows for RoPE and stores no tied output.weight, neither of
    which changes a count)."""
    entry = MANIFEST[name]
    model = read_model(GGUF / name)
    assert model.trainable_params == entry["torch_parameters"] == entry["file_trainable"]
    assert model.total_params == entry["file_parameters"]
    found = variables(model)
    want = {n: t for n, t in entry["tensors"].items() if t["parameter"]}
    assert set(found) == set(want)
    for location, tensor in want.items():
        assert list(found[location].shape) == tensor["shape"], location
        assert found[location].trainable is tensor["trainable"], location


@pytest.mark.parametrize("name", NAMES)
def test_statistics_are_ggufs_dequantized_values(name):
    """Sum of squares, of |w| and max |w| of each tensor equal those of
    ``gguf.quants.dequantize`` of its stored bytes. Both sides dequantize
    with the same function; the reference sums float64 squares, reglint
    float32 squares in float64 (2^-24 relative a term, at most that on a
    sum of positive terms): 1e-6 relative. A block read at the wrong
    offset or a wrong block size moves these by percents."""
    found = variables(read_model(GGUF / name))
    for location, want in MANIFEST[name]["tensors"].items():
        if not want["parameter"]:
            continue
        stats = found[location].stats
        assert stats is not None and stats.count == int(np.prod(want["shape"])), location
        assert stats.nonfinite == 0, location
        assert stats.sum_sq == pytest.approx(want["sum_sq"], rel=1e-6), location
        assert stats.sum_abs == pytest.approx(want["sum_abs"], rel=1e-6), location
        assert stats.max_abs == pytest.approx(want["max_abs"], rel=1e-7), location


F32 = [n for n in NAMES if n.endswith("_f32.gguf")]


@pytest.mark.parametrize("name", F32)
def test_the_f32_file_holds_torchs_values(name):
    """Independently of gguf-py: the f32 files' trainable tensors
    square-sum to torch's parameters (the converter's RoPE permutation of
    q/k rows, DeepSeek's split of kv_b_proj per head keep sums), to
    float32's rounding."""
    entry = MANIFEST[name]
    model = read_model(GGUF / name)
    stats = [v.stats for _, v in model.variables() if v.trainable]
    assert sum(s.sum_sq for s in stats) == pytest.approx(entry["torch_sum_sq"], rel=1e-6)
    assert sum(s.sum_abs for s in stats) == pytest.approx(entry["torch_sum_abs"], rel=1e-6)


def test_slabs_do_not_change_the_statistics():
    """Blocks read 3 KiB at a time (slab edges inside rows) give the same sums."""
    for name in ("kquant_q4_k_m.gguf", "tiny_q8_0.gguf", "tiny_bf16.gguf"):
        small = variables(read_model(GGUF / name, ReadOptions(chunk_bytes=3 << 10)))
        for location, want in MANIFEST[name]["tensors"].items():
            if want["parameter"]:
                assert small[location].stats.sum_sq == pytest.approx(want["sum_sq"], rel=1e-6), (name, location)


LLAMAS = [n for n in NAMES if MANIFEST[n]["architecture"] == "llama"]


@pytest.mark.parametrize("name", LLAMAS)
def test_roles_follow_ggufs_tensor_names(name):
    """token_embd is an embedding table, every *_norm a gamma, attn_*,
    ffn_* and output kernels (Linear, units = output width; a Mixtral's
    stacked experts [experts, out, in])."""
    model = read_model(GGUF / name)
    layers = {layer.path: layer for layer in model.layers}
    embed = layers["token_embd"]
    assert embed.class_name == "Embedding" and embed.variables[0].role is Role.EMBEDDINGS
    for path, layer in layers.items():
        [var] = layer.variables
        if path.endswith("_norm"):
            assert var.role is Role.GAMMA and layer.class_name == "RMSNorm", path
        elif path != "token_embd":
            assert var.role is Role.KERNEL, path
            if len(var.shape) == 2:
                assert layer.class_name == "Linear" and layer.units == var.shape[0], path
    if name.startswith("moe"):
        experts = [layer for layer in model.layers if layer.path.endswith("_exps")]
        assert len(experts) == 3 and all(e.class_name == "Experts" and len(e.variables[0].shape) == 3
                                          for e in experts)
    tied = MANIFEST[name]["config"]["tie_word_embeddings"]
    assert ("output" in layers) is not tied  # llama.cpp stores a tied output once, as token_embd


def test_t5_relative_position_biases_are_embeddings():
    """T5's relative position bias is an nn.Embedding (buckets x heads)
    that the converter stores as ``enc/dec.blk.0.attn_rel_b``: an embedding
    table in an Embedding layer, as torch's module says (before, a kernel
    of a Linear, with units). Its encoder-decoder names keep their roles:
    ``cross_attn_*`` kernels, ``*_norm`` gammas."""
    model = read_model(GGUF / "t5_f32.gguf")
    layers = {layer.path: layer for layer in model.layers}
    for path in ("enc.blk.0.attn_rel_b", "dec.blk.0.attn_rel_b"):
        [var] = layers[path].variables
        assert var.role is Role.EMBEDDINGS and var.shape == (8, 2) and layers[path].class_name == "Embedding", path
    roles = {v.location: v.role for _, v in model.variables()}
    assert roles["dec.blk.0.cross_attn_q.weight"] is Role.KERNEL and roles["enc.output_norm.weight"] is Role.GAMMA
    assert [loc for loc, role in roles.items() if role is Role.EMBEDDINGS] == [
        "dec.blk.0.attn_rel_b.weight", "enc.blk.0.attn_rel_b.weight", "token_embd.weight"]


def test_deepseeks_router_bias_is_state_not_a_parameter():
    """DeepSeek-V3's ``e_score_correction_bias`` is a buffer in torch (load
    balancing moves it, not the gradient), which the converter stores as
    ``blk.1.exp_probs_b.bias``: reglint keeps it as non-trainable state
    (before, a trainable bias: 2 parameters more than torch's) and says so.
    The MLA's per-head ``attn_k_b``/``attn_v_b``, split from one
    kv_b_proj, are kernels."""
    entry = MANIFEST["deepseek_f32.gguf"]
    model = read_model(GGUF / "deepseek_f32.gguf")
    assert model.trainable_params == entry["torch_parameters"] and model.non_trainable_params == 2
    found = variables(model)
    bias = found["blk.1.exp_probs_b.bias"]
    assert not bias.trainable and bias.role is Role.OTHER
    assert bias.stats.sum_sq == pytest.approx(entry["tensors"]["blk.1.exp_probs_b.bias"]["sum_sq"], rel=1e-6)
    assert any(n.startswith("non-trainable: blk.1.exp_probs_b.bias") for n in model.notes)
    assert found["blk.0.attn_k_b.weight"].role is found["blk.0.attn_v_b.weight"].role is Role.KERNEL
    # per-head projections [heads, out, in], not convolutions (they read "Conv1d" before)
    assert {model.layer(f"blk.{i}.attn_{kv}_b").class_name for i in (0, 1) for kv in "kv"} == {"Linear"}
    assert sum(v.trainable for v in found.values()) == len(found) - 1


def test_the_fixtures_hold_what_they_are_for():
    """The cases above: the converter's outtypes, llama-quantize's common
    mixes (k-quants on 256-wide rows: no fallback types), a tied model with
    rope factors, stacked experts."""
    types = set().union(*(set(e["types"]) for e in MANIFEST.values()))
    assert {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_XS"} <= types
    for name, entry in MANIFEST.items():
        if name.startswith("kquant"):
            assert all(t["type"] in ("F32", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_0", "IQ4_XS")
                       for t in entry["tensors"].values()), name
    kquant = MANIFEST["kquant_q4_k_m.gguf"]
    assert kquant["config"]["tie_word_embeddings"] and not kquant["tensors"]["rope_freqs.weight"]["parameter"]
    assert MANIFEST["moe_f16.gguf"]["tensors"]["blk.0.ffn_up_exps.weight"]["shape"][0] == 2
    assert MANIFEST["t5_f32.gguf"]["architecture"] == "t5"
    assert {"enc.blk.0.attn_rel_b.weight", "dec.blk.0.attn_rel_b.weight"} <= set(MANIFEST["t5_f32.gguf"]["tensors"])
    deepseek = MANIFEST["deepseek_f32.gguf"]
    assert deepseek["architecture"] == "deepseek2" and deepseek["torch_buffers"] == {
        "model.layers.1.mlp.gate.e_score_correction_bias": 2}
    assert not deepseek["tensors"]["blk.1.exp_probs_b.bias"]["trainable"]
    assert deepseek["file_parameters"] == deepseek["torch_parameters"] + 2


@pytest.mark.parametrize("name", NAMES)
def test_notes_and_metadata(name):
    entry = MANIFEST[name]
    model = read_model(GGUF / name)
    assert model.name == entry["name"] and model.format == "gguf" and model.optimizer is None
    assert model.metadata["architecture"] == entry["architecture"]
    assert model.metadata["gguf_version"] == entry["version"] == 3
    assert model.metadata["file_type"] == reader.FILE_TYPES[entry["file_type"]]
    assert any("no optimizer in a GGUF file" in n for n in model.notes)
    quantized = [n for n in model.notes if "stored quantized by llama.cpp" in n]
    if entry["quantized_tensors"]:
        assert len(quantized) == 1 and f"{len(entry['quantized_tensors'])} weights" in quantized[0]
        assert all(t in quantized[0] for t in entry["types"] if t not in ("F32", "F16", "BF16"))
    else:
        assert not quantized
    rope = [n for n in model.notes if "rope_freqs.weight" in n]
    assert bool(rope) == ("rope_freqs.weight" in entry["tensors"])


@pytest.mark.parametrize("name", ["tiny_q8_0.gguf", "kquant_q4_k_m.gguf", "moe_f16.gguf"])
def test_the_cli_lints_a_gguf_file(name):
    done = subprocess.run([*REGLINT, "check", str(GGUF / name), "--format", "json", "--no-cache"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)["files"][0]
    assert report["error"] is None and report["model"]["format"] == "gguf"
    assert report["model"]["params"]["total"] == MANIFEST[name]["torch_parameters"]


def test_without_the_gguf_package_counts_stay(monkeypatch):
    """Without gguf-py the quantized tensors are counted, without
    statistics, and a note says how to get them; floats still have theirs."""
    monkeypatch.setattr(reader, "gguf_quants", lambda: None)
    reader._decoder.cache_clear()
    try:
        model = read_model(GGUF / "kquant_q4_k_m.gguf")
    finally:
        reader._decoder.cache_clear()
    entry = MANIFEST["kquant_q4_k_m.gguf"]
    assert model.total_params == entry["torch_parameters"]
    found = variables(model)
    assert all(found[t].stats is None for t in entry["quantized_tensors"])
    assert found["output_norm.weight"].stats is not None
    assert any("install the gguf package" in n for n in model.notes)


def test_ggml_tables_are_ggufs():
    """Byte sizes come from reglint's table, so counts never depend on
    dequantization: it must be ggml's (gguf-py's GGML_QUANT_SIZES), and
    the file types llama.cpp's."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

    theirs = {int(t): (t.name, *GGML_QUANT_SIZES[t]) for t in GGMLQuantizationType}
    # Q8_1 (a dot-product intermediate, never stored): ggml's block_q8_1 is
    # two halves and 32 int8, 36 bytes (static_assert in ggml-common.h);
    # gguf-py up to 0.19.0 still has the old two floats, 40.
    theirs[9] = ("Q8_1", 32, 36)
    assert {k: v for k, v in reader.GGML_TYPES.items() if k in theirs} == theirs
    files = {int(t): t.name.removeprefix("MOSTLY_") for t in LlamaFileType if t.name != "GUESSED"}
    assert {k: v for k, v in reader.FILE_TYPES.items() if k in files} == {**files, 0: "F32"}


# ---------------------------------------------------------------------------
# files made here: the sniffer, unknown types, hostile headers
# ---------------------------------------------------------------------------
def gstr(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(data)) + data


def kv(key: str, vtype: int, payload: bytes) -> bytes:
    return gstr(key) + struct.pack("<I", vtype) + payload


def tensor_info(name: str, dims, type_id: int, offset: int) -> bytes:
    packed = struct.pack(f"<I{len(dims)}q", len(dims), *dims)
    return gstr(name) + packed + struct.pack("<IQ", type_id, offset)


def gguf_file(kvs=(), tensors=(), data=b"", version=3, n_tensors=None, n_kv=None, alignment=32) -> bytes:
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                                len(kvs) if n_kv is None else n_kv)
    out += b"".join(kvs) + b"".join(tensors)
    return out + b"\0" * (-len(out) % alignment) + data


VALUES = np.arange(-4, 4, dtype=np.float32) / 4
TENSOR = tensor_info("blk.0.attn_q.weight", [4, 2], 0, 0)
GOOD = gguf_file([kv("general.architecture", 8, gstr("llama"))],
                 [tensor_info("blk.0.attn_q.weight", [4, 2], 0, 0)], VALUES.tobytes())


def test_sniffed_by_content_not_suffix(tmp_path):
    """A GGUF file is GGUF whatever its name; a ``.gguf`` that is not one
    says so."""
    for name in ("model.bin", "model", "model.onnx", "weights.safetensors"):
        path = tmp_path / name
        shutil.copy(GGUF / "tiny_q4_0.gguf", path)
        assert sniff(path) is Format.GGUF, name
        assert read_model(path).total_params == MANIFEST["tiny_q4_0.gguf"]["torch_parameters"], name
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"\x08\x01 not a gguf file at all")
    with pytest.raises(ModelReadError, match="not a GGUF file"):
        sniff(fake)


def test_folders_find_gguf_files(tmp_path):
    shutil.copy(GGUF / "tiny_q8_0.gguf", tmp_path / "a.gguf")
    done = subprocess.run([*REGLINT, "check", str(tmp_path), "--format", "json", "--no-cache"],
                          capture_output=True, text=True, timeout=120)
    files = json.loads(done.stdout)["files"]
    assert [Path(f["path"]).name for f in files] == ["a.gguf"] and files[0]["error"] is None


def test_a_file_made_here(tmp_path):
    """The writer above makes what the reader takes (each hostile case
    below changes one thing of it)."""
    path = tmp_path / "m.gguf"
    path.write_bytes(GOOD)
    model = read_model(path)
    [var] = [v for _, v in model.variables()]
    assert var.shape == (2, 4) and var.role is Role.KERNEL and model.metadata["architecture"] == "llama"
    assert var.stats.sum_sq == pytest.approx(float(np.dot(VALUES, VALUES)))


def test_version_2_reads_as_3(tmp_path):
    """GGUF v2 (August-October 2023) has v3's layout."""
    path = tmp_path / "v2.gguf"
    path.write_bytes(gguf_file([], [tensor_info("output.weight", [4, 2], 0, 0)], VALUES.tobytes(), version=2))
    model = read_model(path)
    assert model.total_params == 8 and model.metadata["gguf_version"] == 2


def test_roles_of_other_architectures_names(tmp_path):
    """GGUF's names beyond a Llama's (gguf-py TENSOR_NAMES): BERT's
    token_types and position_embd tables, a LayerNorm's bias (beta), a
    Qwen-style attention bias, Mamba's suffix-less ssm_d, rope factors (no
    parameter), a LoRA adapter's lora_a/lora_b, an integer tensor."""
    names = [("token_types.weight", [4, 2], 0), ("position_embd.weight", [4, 2], 0),
             ("blk.0.attn_output_norm.weight", [4], 0), ("blk.0.attn_output_norm.bias", [4], 0),
             ("blk.0.attn_q.weight", [4, 2], 0), ("blk.0.attn_q.bias", [2], 0), ("blk.0.ssm_d", [4], 0),
             ("rope_factors_long.weight", [2], 0), ("blk.0.ffn_up.weight.lora_a", [4, 2], 0),
             ("blk.0.ffn_up.weight.lora_b", [2, 4], 0), ("blk.0.ids", [4], 26)]
    infos = [tensor_info(name, dims, type_id, 32 * i) for i, (name, dims, type_id) in enumerate(names)]
    path = tmp_path / "names.gguf"
    path.write_bytes(gguf_file([], infos, bytes(32 * len(names))))
    model = read_model(path)
    roles = {v.location: v.role for _, v in model.variables()}
    classes = {layer.path: layer.class_name for layer in model.layers}
    assert roles == {"token_types.weight": Role.EMBEDDINGS, "position_embd.weight": Role.EMBEDDINGS,
                     "blk.0.attn_output_norm.weight": Role.GAMMA, "blk.0.attn_output_norm.bias": Role.BETA,
                     "blk.0.attn_q.weight": Role.KERNEL, "blk.0.attn_q.bias": Role.BIAS, "blk.0.ssm_d": Role.OTHER,
                     "blk.0.ffn_up.weight.lora_a": Role.KERNEL, "blk.0.ffn_up.weight.lora_b": Role.KERNEL}
    assert classes["blk.0.attn_output_norm"] == "LayerNorm" and classes["blk.0.ffn_up"] == "LoRA"
    assert classes["token_types"] == "Embedding" and classes["blk.0.attn_q"] == "Linear"
    assert model.total_params == 8 + 8 + 4 + 4 + 8 + 2 + 4 + 8 + 8
    assert any("rope_factors_long.weight" in n for n in model.notes)
    assert any("1 integer tensors are not parameters: blk.0.ids" in n for n in model.notes)


def split_part(no: int, count: int, tensors, data: bytes) -> bytes:
    kvs = [kv("split.no", 2, struct.pack("<H", no)), kv("split.count", 2, struct.pack("<H", count)),
           kv("split.tensors.count", 5, struct.pack("<i", 2))]
    if no == 0:
        kvs.insert(0, kv("general.architecture", 8, gstr("llama")))
    return gguf_file(kvs, tensors, data)


def test_a_split_model_is_read_as_one_from_all_its_parts(tmp_path):
    """gguf-split's parts (``--no-tensor-first-split``: the first holds
    metadata only) are one model, whichever part is named; a folder walk
    lints it once."""
    (tmp_path / "m-00001-of-00003.gguf").write_bytes(split_part(0, 3, [], b""))
    (tmp_path / "m-00002-of-00003.gguf").write_bytes(split_part(1, 3, [TENSOR], VALUES.tobytes()))
    (tmp_path / "m-00003-of-00003.gguf").write_bytes(
        split_part(2, 3, [tensor_info("blk.0.attn_k.weight", [4, 2], 0, 0)], VALUES.tobytes()))
    for part in ("m-00001-of-00003.gguf", "m-00003-of-00003.gguf"):
        model = read_model(tmp_path / part)
        assert model.total_params == 16, part
        assert any("split into 3 GGUF files: 3 read together" in n for n in model.notes)
        assert model.metadata["architecture"] == "llama"
    done = subprocess.run([*REGLINT, "check", str(tmp_path), "--format", "json", "--no-cache"],
                          capture_output=True, text=True, timeout=60)
    data = json.loads(done.stdout)
    assert [f["path"] for f in data["files"]] == [str(tmp_path / "m-00001-of-00003.gguf")]
    assert data["files"][0]["model"]["params"]["total"] == 16


def test_a_missing_part_is_named(tmp_path):
    (tmp_path / "m-00001-of-00002.gguf").write_bytes(split_part(0, 2, [TENSOR], VALUES.tobytes()))
    model = read_model(tmp_path / "m-00001-of-00002.gguf")
    assert model.total_params == 8
    assert any("missing: m-00002-of-00002.gguf" in n for n in model.notes)


def test_an_unknown_ggml_type_is_refused(tmp_path):
    """llama.cpp refuses a type id it does not know, whose size it cannot
    tell (before: counted from its dimensions, so a 4 MB file could claim
    33.5B parameters)."""
    path = tmp_path / "m.gguf"
    path.write_bytes(gguf_file([], [tensor_info("blk.0.attn_q.weight", [4, 2], 99, 0)], VALUES.tobytes()))
    with pytest.raises(ModelReadError, match="ggml type 99, which reglint does not know"):
        read_model(path)


def test_tensors_sharing_bytes_are_refused_fast(tmp_path):
    """Tensors must lie end to end, each padded to the alignment, as
    llama.cpp's loader requires (before: 2,000 tensors at offset 0 in a
    4.3 MB file took 10 minutes and claimed 32.5B parameters)."""
    path = tmp_path / "overlap.gguf"
    path.write_bytes(gguf_file([], [tensor_info(f"blk.{i}.attn_q.weight", [4, 2], 0, 0) for i in range(2000)],
                               VALUES.tobytes()))
    with pytest.raises(ModelReadError, match="starts at offset 0, where the tensors before it end at 32"):
        read_model(path)
    good = tmp_path / "two.gguf"
    good.write_bytes(gguf_file([], [TENSOR, tensor_info("blk.0.attn_k.weight", [4, 2], 0, 32)],
                               VALUES.tobytes() + bytes(32 - VALUES.nbytes) + VALUES.tobytes()))
    assert read_model(good).total_params == 16


def test_a_vocabulary_only_file_is_no_model(tmp_path):
    path = tmp_path / "vocab.gguf"
    path.write_bytes(gguf_file([kv("general.architecture", 8, gstr("llama"))]))
    with pytest.raises(ModelReadError, match="without tensors"):
        read_model(path)


def test_a_large_vocabulary_is_skipped_fast(tmp_path):
    """200,000 tokenizer strings (a large real vocabulary) are stepped over,
    not kept."""
    tokens = b"".join(gstr(f"tok{i}") for i in range(200_000))
    arrays = [kv("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 200_000) + tokens),
              kv("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, 200_000) + bytes(800_000))]
    path = tmp_path / "vocab.gguf"
    path.write_bytes(gguf_file(arrays, [tensor_info("output.weight", [4, 2], 0, 0)], VALUES.tobytes()))
    with hang_guard(30):
        model = read_model(path)
    assert model.total_params == 8 and "tokenizer.ggml.tokens" not in model.metadata["gguf_metadata"]


HUGE = 1 << 60
HOSTILE = {
    "header_cut": (GOOD[:20], "runs past the end"),
    "string_2e60": (gguf_file([struct.pack("<Q", HUGE) + b"general.name"]), "claims"),
    "key_too_long": (gguf_file([kv("k" * 70_000, 4, b"\0" * 4)]), "at most 65535"),
    "array_2e60": (gguf_file([kv("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, HUGE))]), "claims"),
    "string_array_2e60": (gguf_file([kv("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, HUGE))]), "claims"),
    "nested_arrays": (gguf_file([kv("x", 9, struct.pack("<IQ", 9, 1) * 20 + struct.pack("<IQ", 0, 0))]), "nested"),
    "kv_count_2e60": (gguf_file(n_kv=HUGE), "cannot fit"),
    "tensor_count_2e60": (gguf_file(n_tensors=HUGE), "cannot fit"),
    "kv_count_1e6": (gguf_file([kv("a", 0, b"\0")] * 3, n_kv=1 << 20) + bytes(16 << 20), "key-value pairs"),
    "tensor_count_1e6": (gguf_file(n_tensors=1 << 20) + bytes(32 << 20), "1048576 tensors"),
    "value_type_13": (gguf_file([kv("x", 13, b"\0" * 8)]), "value type 13"),
    "n_dims_9": (gguf_file([], [tensor_info("w.weight", [1] * 9, 0, 0)], bytes(64)), "9 dimensions"),
    "dims_overflow": (gguf_file([], [tensor_info("w.weight", [1 << 40, 1 << 40], 0, 0)], bytes(64)), "overflow"),
    "dims_past_the_end": (gguf_file([], [tensor_info("w.weight", [1 << 20, 1 << 20], 0, 0)], bytes(64)),
                          "past the end"),
    "negative_dim": (gguf_file([], [tensor_info("w.weight", [4, -2], 0, 0)], bytes(64)), "negative"),
    "offset_past_the_end": (gguf_file([], [tensor_info("w.weight", [4, 2], 0, 1 << 50)], bytes(64)),
                            "past the end"),
    "unknown_type_too_large": (gguf_file([], [tensor_info("w.weight", [1 << 30, 1 << 20], 99, 0)], bytes(64)),
                               "does not know"),
    "row_not_whole_blocks": (gguf_file([], [tensor_info("w.weight", [31, 2], 2, 0)], bytes(64)),
                             "not a multiple of its block"),
    "duplicate_tensor": (gguf_file([], [TENSOR, TENSOR], VALUES.tobytes()), "repeats"),
    "duplicate_key": (gguf_file([kv("a", 4, b"\0" * 4), kv("a", 4, b"\0" * 4)]), "repeats"),
    "name_64_bytes": (gguf_file([], [tensor_info("w" * 64, [4, 2], 0, 0)], VALUES.tobytes()), "at most 63"),
    "alignment_3": (gguf_file([kv("general.alignment", 4, struct.pack("<I", 3))], [TENSOR], VALUES.tobytes()),
                    "power of 2"),
    "alignment_string": (gguf_file([kv("general.alignment", 8, gstr("32"))], [TENSOR], VALUES.tobytes()),
                         "not a uint32"),
    "version_1": (gguf_file(version=1), "version 1"),
    "version_9": (gguf_file(version=9), "version 9"),
    "big_endian": (b"GGUF" + struct.pack(">IQQ", 3, 1, 0) + bytes(64), "big-endian"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_headers_fail_fast_with_one_line(tmp_path, case):
    data, message = HOSTILE[case]
    path = tmp_path / f"{case}.gguf"
    path.write_bytes(data)
    with hang_guard(30), pytest.raises(ModelReadError, match=message) as info:  # a 2**60 read would hang
        read_model(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case", ["truncated_half", "string_2e60", "array_2e60", "n_dims_9", "dims_overflow",
                                  "offset_past_the_end"])
def test_the_cli_answers_hostile_files_with_one_line(tmp_path, case):
    """Exit 2, one line on stderr, nothing on stdout, quickly."""
    data = (GGUF / "tiny_f16.gguf").read_bytes()
    path = tmp_path / f"{case}.gguf"
    path.write_bytes(data[:len(data) // 2] if case == "truncated_half" else HOSTILE[case][0])
    done = subprocess.run([*REGLINT, "check", str(path), "--no-cache"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("reglint: error:") and "GGUF" in line, line


def test_the_header_allowance_is_an_option(tmp_path):
    with pytest.raises(UnsafeInputError, match="GGUF header larger than"):
        read_model(GGUF / "tiny_f16.gguf", ReadOptions(max_header_bytes=1024))


FLIPS = (GGUF / "tiny_q8_0.gguf").read_bytes()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255)), min_size=1, max_size=6))
def test_flipped_header_bytes_give_a_model_or_one_line(tmp_path, flips):
    """Whatever the header's bytes, reading gives a model or a one-line
    ``ReglintError``, never another exception."""
    data = bytearray(FLIPS)
    for position, value in flips:
        data[position] = value
    path = tmp_path / "flipped.gguf"
    path.write_bytes(bytes(data))
    try:
        read_model(path)
    except ReglintError as exc:
        assert "\n" not in str(exc)  # noqa: PT017


def test_gemma_norms_are_said_to_be_stored_as_one_plus_w(tmp_path):
    """llama.cpp's converter bakes Gemma's (1 + w) norms into the stored
    scale (conversion/gemma.py): the statistics are the effective scale's,
    and the model says so; a Llama's norms get no such note."""
    norm = tensor_info("blk.0.attn_norm.weight", [8], 0, 0)
    for arch, noted in (("gemma2", True), ("llama", False)):
        path = tmp_path / f"{arch}.gguf"
        path.write_bytes(gguf_file([kv("general.architecture", 8, gstr(arch))], [norm], VALUES.tobytes()))
        notes = read_model(path).notes
        assert any("stores each (1 + w) norm's scale as 1 + w" in n for n in notes) is noted, arch
