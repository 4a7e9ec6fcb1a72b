"""ONNX files with onnxruntime's fused transformer ops.

fixtures/onnx_ort_fused/ holds tiny BERT, GPT-2, Llama and Qwen3 models
(transformers, random weights) as onnxruntime deploys them: the TorchScript
export rewritten by ``onnxruntime.transformers.optimizer.optimize_model``
(Attention, MultiHeadAttention, EmbedLayerNormalization,
SkipLayerNormalization, BiasGelu, FastGelu, RotaryEmbedding,
SimplifiedLayerNormalization, SkipSimplifiedLayerNormalization), or built by
onnxruntime-genai's model builder (GroupQueryAttention), each checked
against PyTorch's output in onnxruntime; manifest.json holds PyTorch's
numbers (fixtures/make_ort_fused_fixtures.py). A fused op holds the weights
of several PyTorch modules in its own input slots (Attention's packed
[hidden, 3 * hidden] Q/K/V kernel) and constants that are no parameters
(rotary cos/sin caches): the reader must still give PyTorch's count, and
each weight the role its slot gives it in onnxruntime's contrib op schema.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys

import onnx
import pytest

from reglint.engine.finding import Severity
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.model import Role
from reglint.readers import read_model

from helpers import FIXTURES

ROOT = FIXTURES / "onnx_ort_fused"
MANIFEST = json.loads((ROOT / "manifest.json").read_text())
ENTRIES = MANIFEST["files"]
MS = "com.microsoft"

# Input slots of the fused ops, from onnxruntime's contrib op schemas
# (docs/ContribOperators.md; onnxruntime/core/graph/contrib_ops/bert_defs.cc;
# SimplifiedLayerNormalization and LayerNormalization are onnxruntime ops in
# the ONNX domain): written out here, not read from the reader's tables.
SLOT_ROLES = {
    (MS, "Attention"): {1: Role.KERNEL, 2: Role.BIAS},  # input, weights [D, 3D], bias [3D]
    (MS, "MultiHeadAttention"): {3: Role.BIAS},  # query, key, value, bias [3D]
    (MS, "EmbedLayerNormalization"): {2: Role.EMBEDDINGS, 3: Role.EMBEDDINGS, 4: Role.EMBEDDINGS,
                                      5: Role.GAMMA, 6: Role.BETA},  # word, position, segment tables
    (MS, "SkipLayerNormalization"): {2: Role.GAMMA, 3: Role.BETA, 4: Role.BIAS},  # input, skip, ...
    (MS, "SkipSimplifiedLayerNormalization"): {2: Role.GAMMA, 3: Role.BIAS},
    ("", "SimplifiedLayerNormalization"): {1: Role.GAMMA},
    ("", "LayerNormalization"): {1: Role.GAMMA, 2: Role.BETA},
    (MS, "BiasGelu"): {1: Role.BIAS},
    (MS, "FastGelu"): {1: Role.BIAS},
}
# Slots that hold constants: RotaryEmbedding's cos_cache and sin_cache
# (input, position_ids, cos_cache, sin_cache), GroupQueryAttention's (7, 8).
CONSTANT_SLOTS = {(MS, "RotaryEmbedding"): {2, 3}, (MS, "GroupQueryAttention"): {7, 8}}
ROLE_NAMES = {"embeddings": Role.EMBEDDINGS, "kernel": Role.KERNEL, "bias": Role.BIAS, "gamma": Role.GAMMA,
              "beta": Role.BETA}


def _id(entry: dict) -> str:
    return entry["model"]


def _proto(entry: dict):
    return onnx.load(str(ROOT / entry["file"]), load_external_data=False)


def _ops(proto) -> collections.Counter:
    return collections.Counter(f"{node.domain}:{node.op_type}" for node in proto.graph.node)


def test_the_fixtures_cover_every_fused_op():
    """The files are kept for these ops; each must be fused in one of them."""
    expected = {f"{MS}:{op}" for op in ("Attention", "MultiHeadAttention", "EmbedLayerNormalization",
                                        "SkipLayerNormalization", "BiasGelu", "FastGelu", "RotaryEmbedding",
                                        "GroupQueryAttention", "SkipSimplifiedLayerNormalization")}
    expected |= {":SimplifiedLayerNormalization", ":LayerNormalization"}
    assert expected <= {op for e in ENTRIES for op in e["expect_fused"]}
    assert {f"{domain}:{op}" for domain, op in [*SLOT_ROLES, *CONSTANT_SLOTS]} <= expected


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_the_file_holds_the_fused_ops(entry):
    """The optimizer fired: the manifest's fused ops are in the file, so the
    counts below are not those of an unfused graph."""
    ops = _ops(_proto(entry))
    for op in entry["expect_fused"]:
        assert ops[op] >= 1, (op, ops)
    assert {op: ops[op] for op in entry["fused_ops"]} == entry["fused_ops"]
    assert entry["ort_max_abs_diff"] < 1e-4  # onnxruntime ran the file and matched PyTorch


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_counts_equal_pytorchs(entry):
    model = read_model(ROOT / entry["file"])
    assert model.problems == []
    assert (model.total_params, model.trainable_params, model.non_trainable_params) == (
        entry["count_params"], entry["trainable_params"], 0)


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_roles_equal_pytorchs(entry):
    """Elements per role equal PyTorch's split by module class (embeddings,
    Linear kernels and biases, norm gammas and betas): packing Q/K/V into
    one kernel, moving a bias into SkipLayerNormalization or FastGelu, or an
    RMSNorm into SimplifiedLayerNormalization changes where the weights sit,
    not what they are. No weight is left without a role."""
    model = read_model(ROOT / entry["file"])
    found: collections.Counter = collections.Counter()
    for _, variable in model.variables():
        found[variable.role] += variable.size
    assert dict(found) == {ROLE_NAMES[name]: size for name, size in entry["roles"].items()}


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_each_slot_gives_its_role(entry):
    """Every initializer in a fused op's weight slot is a variable with the
    slot's role; every one in a cache slot is not a variable at all."""
    proto = _proto(entry)
    initializers = {t.name for t in proto.graph.initializer}
    variables = {v.name: v for _, v in read_model(ROOT / entry["file"]).variables()}
    checked = collections.Counter()
    for node in proto.graph.node:
        key = (node.domain, node.op_type)
        for slot, name in enumerate(node.input):
            if name not in initializers:
                continue
            if slot in CONSTANT_SLOTS.get(key, ()):
                assert name not in variables, (node.op_type, slot, name)
                checked["constant"] += 1
            elif slot in SLOT_ROLES.get(key, {}):
                assert variables[name].role is SLOT_ROLES[key][slot], (node.op_type, slot, name)
                checked[node.op_type] += 1
    fused = {op.split(":")[1] for op in entry["expect_fused"]}
    rotary = {"RotaryEmbedding", "GroupQueryAttention"}  # no weights, only the caches
    assert fused - rotary <= set(checked), checked
    if rotary & fused:
        assert checked["constant"] == 2 * sum(1 for node in proto.graph.node if node.op_type in rotary), checked
        assert sorted(entry["constants"]) == ["cos_cache", "sin_cache"]


def test_packed_attention_is_one_kernel_for_three_linear_layers():
    """Attention's weight [hidden, 3 * hidden] is BERT's query, key and value
    Linear kernels side by side: one variable, three modules' elements."""
    entry = next(e for e in ENTRIES if e["model"] == "bert_attention")
    model = read_model(ROOT / entry["file"])
    attention = [layer for layer in model.layers if layer.class_name == "Attention"]
    assert len(attention) == 2
    for layer in attention:
        shapes = {v.role: v.shape for v in layer.variables}
        assert shapes == {Role.KERNEL: (32, 96), Role.BIAS: (96,)}


@pytest.mark.parametrize("name", ["gpt2_tied", "qwen3_genai_tied"])
def test_tied_lm_head_counts_once(name):
    """GPT-2's lm_head is wte (the TorchScript exporter stores a transposed
    copy for the MatMul); Qwen3's genai file stores the tied table once, as
    the [hidden, vocab] lm_head weight the Gather reads transposed."""
    entry = next(e for e in ENTRIES if e["model"] == name)
    [tied] = entry["tied"]
    model = read_model(ROOT / entry["file"])
    tables = [v for _, v in model.variables() if v.role is Role.EMBEDDINGS and v.size == tied["size"]]
    assert len(tables) == 1
    assert sum(v.size for _, v in model.variables() if v.size == tied["size"]) == tied["size"]


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_lint_without_errors(entry):
    report = lint_file(str(ROOT / entry["file"]), Settings())
    assert report.error is None
    assert [f.code for f in report.findings if f.severity is Severity.ERROR] == []


def test_cli_reads_every_file_cleanly():
    """``reglint check --format json`` on all of them: exit 0, no traceback,
    PyTorch's totals in the JSON."""
    files = [str(ROOT / e["file"]) for e in ENTRIES]
    result = subprocess.run([sys.executable, "-m", "reglint", "check", *files, "--format", "json", "--no-cache"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    records = json.loads(result.stdout)["files"]
    assert len(records) == len(ENTRIES)
    for entry in ENTRIES:
        [record] = [r for r in records if r["path"].endswith(entry["file"])]
        assert record["error"] is None
        assert record["model"]["params"] == {"total": entry["count_params"], "trainable": entry["count_params"],
                                             "non_trainable": 0}


def test_the_checker_note_names_onnxruntimes_default_domain_op():
    """onnxruntime registers SimplifiedLayerNormalization in the default
    ONNX domain, where onnx.checker has no schema for it: the note says so
    instead of "rejects the model"."""
    model = read_model(ROOT / "llama_rotary" / "model.onnx")
    notes = [n for n in model.notes if "onnx.checker" in n]
    assert len(notes) == 1 and "SimplifiedLayerNormalization" in notes[0] and "rejects" not in notes[0]
