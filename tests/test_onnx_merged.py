"""An untrained BERT exported by torch.onnx's TorchScript exporter, which
merges initializers of equal value (fixtures/make_onnx_merged_fixtures.py):
reglint counts what the file holds and its note gives the values the merge
removed, so that the two add up to PyTorch's count."""

from __future__ import annotations

import json
import re

import pytest

from reglint.readers import read_model

from helpers import FIXTURES

FOLDER = FIXTURES / "onnx_merged"


def test_merged_initializers_are_named_with_the_values_they_stood_for():
    expected = json.loads((FOLDER / "manifest.json").read_text())["bert_untrained.onnx"]
    model = read_model(FOLDER / "bert_untrained.onnx")
    counted = sum(v.size for _, v in model.variables())
    assert counted == expected["initializer_values"]
    [note] = [n for n in model.notes if "repeated value" in n]
    more = int(re.search(r"\(([\d,]+) values more\)", note).group(1).replace(",", ""))
    assert more == expected["merged_values"] > 0
    assert counted + more == expected["count_params"]  # what torch counted


def test_no_merge_note_where_each_module_reads_its_own_tensor():
    """The exporter fixtures draw every parameter at random (no two equal):
    no initializer is merged, and a training graph's copy of a node
    (``/train/fc1/Gemm`` reading ``fc1.bias``, all zeros) is its own module."""
    for path in [*sorted((FIXTURES / "onnx_exporters" / "torchscript_opset17").glob("*.onnx")),
                 FIXTURES / "onnx" / "train_momentum.onnx", FIXTURES / "onnx" / "train_penalties_mixed.onnx"]:
        assert not [n for n in read_model(path).notes if "repeated value" in n], path


@pytest.mark.parametrize("name", ["llama_static.onnx", "llama_static_fp16.onnx"])
def test_folded_mask_and_rotary_caches_are_not_parameters(name):
    """The dynamo exporter's file of a tiny Llama at a fixed sequence length
    holds the causal mask ([1, 1, 8, 8] of 0 and -3.4e38) and the rotary
    cos/sin caches ([1, 1, 8, 16]) as initializers. Counted as weights they
    added 320 values and a sum of squares of 3e78; without them, the file's
    weights plus the merged RMSNorm ones equal torch's count. In float16 the
    mask fills with -65504 (found as a fill, ``MASK_FILL_FLOAT16``, and as a
    table of j - i alike: its doctest holds the fill level)."""
    expected = json.loads((FOLDER / "manifest.json").read_text())[name]
    model = read_model(FOLDER / name)
    assert next(n for n in model.notes if "attention mask, position bias or rotary" in n).startswith(
        f"{len(expected['folded_tables'])} initializer(s)")
    assert all(len(v.shape) <= 2 for _, v in model.variables())
    assert max(v.stats.max_abs for _, v in model.variables()) <= 1.0  # untrained weights and unit norms
    counted = sum(v.size for _, v in model.variables())
    [note] = [n for n in model.notes if "repeated value" in n]
    more = int(re.search(r"\(([\d,]+) values more\)", note).group(1).replace(",", ""))
    assert counted + more == expected["count_params"]


def test_a_normalization_without_a_scale_gets_none():
    """LayerNorm(elementwise_affine=False) (OLMo, DiT's adaLN blocks): the
    dynamo exporter makes the ones ONNX's LayerNormalization needs as a
    scale, under a name of its own (``val_N``), read by both norms. They are
    not parameters: torch counts 467, the file's weights are 467 (with the
    ones, 483)."""
    expected = json.loads((FOLDER / "manifest.json").read_text())["norm_free.onnx"]
    model = read_model(FOLDER / "norm_free.onnx")
    assert sum(v.size for _, v in model.variables()) == expected["count_params"]
    assert any("normalizations without a scale or offset of their own" in n for n in model.notes)
    assert not [n for n in model.notes if "repeated value" in n]  # not a merge either


def test_a_folded_position_bias_is_not_a_weight():
    """A T5-style relative position bias, looked up from a learned table and
    added to Q @ K^T: exported at a fixed length, the lookup is a constant
    [1, 2, 6, 6] and the table is gone. The constant is not a weight (it
    counted 72 values before); what the file holds is torch's count less the
    folded table."""
    expected = json.loads((FOLDER / "manifest.json").read_text())["position_bias.onnx"]
    model = read_model(FOLDER / "position_bias.onnx")
    assert sum(v.size for _, v in model.variables()) == expected["count_params"] - expected["table"]
    assert all(len(v.shape) <= 2 for _, v in model.variables())
    assert any(n.startswith("1 initializer(s) are an attention mask, position bias") for n in model.notes)


def _with_initializer(path, name, values, target):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    [init] = [i for i in model.graph.initializer if i.name == name]
    init.CopyFrom(numpy_helper.from_array(values.astype(numpy_helper.to_array(init).dtype), name))
    onnx.save(model, target)
    return target


def test_a_learned_bias_on_the_scores_stays_a_parameter(tmp_path):
    """The same [1, 2, 6, 6] constant added to Q @ K^T, but with values no
    function of the positions gives (a learned [H, L, L] attention bias, as
    Synthesizer's, not T5's bucketed lookup nor ALiBi's slope * (j - i)).
    Before: dropped as a folded position bias, 72 trained values uncounted."""
    import numpy as np

    expected = json.loads((FOLDER / "manifest.json").read_text())["position_bias.onnx"]
    learned = np.random.default_rng(0).normal(0, 0.02, (1, 2, 6, 6))
    target = _with_initializer(FOLDER / "position_bias.onnx", "unsqueeze_2", learned, tmp_path / "learned.onnx")
    model = read_model(target)
    assert sum(v.size for _, v in model.variables()) == expected["count_params"] - expected["table"] + 72
    assert not any("attention mask, position bias" in n for n in model.notes)


def test_a_bias_by_distance_or_by_key_position_is_still_folded(tmp_path):
    """ALiBi's slope * (j - i) per head, and BLOOM's slope * j broadcast
    over the rows: functions of the positions, not weights."""
    import numpy as np

    pos = np.arange(6)
    slopes = np.array([0.5, 0.25])[:, None, None]
    for values in (slopes * (pos[None, :] - pos[:, None])[None], slopes * np.broadcast_to(pos, (6, 6))[None]):
        target = _with_initializer(FOLDER / "position_bias.onnx", "unsqueeze_2", values[None],
                                   tmp_path / "alibi.onnx")
        model = read_model(target)
        assert any(n.startswith("1 initializer(s) are an attention mask, position bias") for n in model.notes)


@pytest.mark.parametrize("name", ["encoder_copies_torchscript.onnx", "encoder_copies_dynamo.onnx"])
def test_an_untrained_encoders_copied_layers_are_added_back_in_the_notes(name):
    """Review 41, 4: ``nn.TransformerEncoder`` deep-copies its layer, so an
    untrained one's layers hold equal weights, which both exporters store
    once (4,448 parameters in torch, 2,176 stored). The notes added back
    the repeated ones and zeros only (and the TorchScript file's Identity
    aliases a second time). Now they add the copies' weights once each:
    the TorchScript file adds up to torch's count; the dynamo file is short
    by the two out-projection biases (zeros) it drops from its Gemms."""
    expected = json.loads((FOLDER / "manifest.json").read_text())[name]
    model = read_model(FOLDER / name)
    counted = sum(v.size for _, v in model.variables())
    assert counted == expected["float_initializer_values"] - (1 if "dynamo" in name else 0)
    more = sum(int(m.group(1).replace(",", "")) for note in model.notes
               for m in [re.search(r"([\d,]+) values more", note)] if m)
    dropped = 2 * 16 if "dynamo" in name else 0  # out_proj.bias of each layer, absent from the file
    assert counted + more + dropped == expected["count_params"]


@pytest.mark.parametrize("name", ["tied_blocks_torchscript.onnx", "tied_blocks_dynamo.onnx"])
def test_a_weight_shared_by_design_is_not_added_back_as_a_copy(name):
    """Review 43, 2: three trained blocks share one weight by design; each
    block keeps its other weights. Torch counts the shared weight once, as
    the file stores it: no note adds values for it."""
    expected = json.loads((FOLDER / "manifest.json").read_text())[name]
    model = read_model(FOLDER / name)
    counted = sum(v.size for _, v in model.variables())
    assert counted == expected["count_params"]
    assert not [note for note in model.notes if "values more" in note]
