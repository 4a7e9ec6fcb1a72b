"""Issue 18: PyTorch checkpoints read without torch and without running the pickle.

Every expected number comes from fixtures/torch/manifest.json, written by
fixtures/make_torch_fixtures.py from torch's own objects (torch 2.13,
Lightning 2.6, transformers 5.24); these tests run without torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickletools
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from reglint.errors import ModelReadError, UnsafeInputError
from reglint.model import Role
from reglint.readers import read_model
from reglint.readers.torch_checkpoint import BUFFER_LEAVES, buffer_leaves
from reglint.readers.torch_optim import Slot, map_groups
from reglint.readers.torch_pickle import load_pickle

from helpers import assert_one_line_refusal

ROOT = Path(__file__).resolve().parents[1]
TORCH = ROOT / "fixtures" / "torch"
MANIFEST = {e["file"]: e for e in json.loads((TORCH / "manifest.json").read_text())["files"]}
REGLINT = [sys.executable, "-m", "reglint"]
WITH_PARAMETERS = sorted(name for name, entry in MANIFEST.items() if entry.get("parameters"))
WITH_OPTIMIZER = sorted(name for name, entry in MANIFEST.items() if entry.get("optimizer"))
PEFT = "peft_trainer/checkpoint-3"


def run(*args, env=None):
    return subprocess.run([*REGLINT, *args], capture_output=True, text=True, timeout=120, env=env)


def check_json(path: Path, *extra) -> tuple[int, dict]:
    done = run("check", str(path), "--format", "json", "--no-cache", *extra)
    return done.returncode, json.loads(done.stdout)


def parameters(model, wrapper: str = ""):
    """Variables that are parameters (torch's model.parameters()), by state_dict
    name, a training wrapper's prefix (``module.``, ``_orig_mod.``) dropped;
    running statistics and saved buffers (DeepSeek's router bias, spectral
    norm's u and v) are not."""
    return {v.location.removeprefix(wrapper): v for layer, v in model.variables()
            if not v.role.is_statistic and not _buffer(layer, v) and not _script_buffer(model, v)}


def _buffer(layer, var) -> bool:
    return var.name in buffer_leaves({v.name: v for v in layer.variables})


def _script_buffer(model, var) -> bool:
    """A buffer a TorchScript class declares (``__buffers__``): not trained, not a parameter."""
    return model.format == "torchscript" and not var.trainable


# ---------------------------------------------------------------------------
# counts, names, statistics
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", WITH_PARAMETERS)
def test_parameter_count_is_torchs(name):
    entry = MANIFEST[name]
    model = read_model(TORCH / name)
    params = parameters(model, entry.get("wrapper", ""))
    assert sum(v.size for v in params.values()) == entry["parameters"]
    # transformers 5 holds a MoE layer's experts fused and saves them one by one: the experts' names differ
    def named(names):
        return {n for n in names if ".experts." not in n}

    assert named(params) == named(entry["parameter_names"])
    statistics = sum(v.size for layer, v in model.variables()
                     if v.role.is_statistic or _buffer(layer, v) or _script_buffer(model, v))
    saved = entry.get("saved_buffers")  # non-persistent buffers (rotary inv_freq) are not in the file
    assert statistics == (entry["float_buffers"] if saved is None else sum(
        n for name, n in saved.items() if name.rsplit(".", 1)[-1] in BUFFER_LEAVES))
    assert model.trainable_params == entry["parameters"]
    assert model.framework == "pytorch"


@pytest.mark.parametrize("name", WITH_PARAMETERS)
def test_weight_statistics_match_torch(name):
    params = parameters(read_model(TORCH / name), MANIFEST[name].get("wrapper", ""))
    want_all = MANIFEST[name]["sum_sq"]
    for location, want in want_all.items():
        if location in params:  # transformers 5 saves fused experts per expert: other names, the same values
            assert params[location].stats.sum_sq == pytest.approx(want, rel=1e-6, abs=1e-12), location
    assert sum(v.stats.sum_sq for v in params.values()) == pytest.approx(sum(want_all.values()), rel=1e-6)


@pytest.mark.parametrize("name", ["parametrized.pt", "parametrized_legacy.pt"])
def test_a_parametrized_parameter_belongs_to_its_module(name):
    """Review 36, 6: ``conv.parametrizations.weight.original0`` (weight
    norm) made a layer of its own, class Module, and spectral norm's u/v
    buffers were counted as frozen parameters, so the optimizer's group
    (every parameter) matched 'uncertain'. The layers are torch's modules
    (manifest ``modules``), weight norm's direction is the kernel and its
    magnitude a gain, the buffers are not trained."""
    model = read_model(TORCH / name)
    layers = {layer.path: layer for layer in model.layers}
    expected = {path: cls.removeprefix("Parametrized").replace("BatchNorm2d", "BatchNorm")
                for path, cls in MANIFEST[name]["modules"].items()}
    assert {path: layers[path].class_name for path in expected} == expected
    assert set(layers) == set(expected)
    roles = {v.location: v.role for _, v in model.variables() if v.trainable}
    legacy = name == "parametrized_legacy.pt"
    direction, magnitude = ("0.weight_v", "0.weight_g") if legacy else (
        "0.parametrizations.weight.original1", "0.parametrizations.weight.original0")
    spectral = "4.weight_orig" if legacy else "4.parametrizations.weight.original"
    assert roles[direction] is Role.KERNEL and roles[magnitude] is Role.GAMMA and roles[spectral] is Role.KERNEL
    assert set(roles) == set(MANIFEST[name]["parameter_names"])


@pytest.mark.parametrize("name", ["root_spectral_norm_legacy.pt", "root_weight_norm.pt", "root_batchnorm.pt",
                                  "root_whole_linear.pt"])
def test_a_module_saved_alone_is_one_layer(name):
    """Review 43, 9: a bare module's state dict keeps its leaves at the
    root; each tensor made a layer of its own (``weight_u`` a trainable
    ``Module``), so a spectral-normed Linear counted 38 trainable values
    where torch counts 28. One layer, torch's class, torch's parameters
    trainable and the buffers not."""
    truth = MANIFEST[name]
    model = read_model(TORCH / name)
    assert [(layer.class_name, layer.trainable_params) for layer in model.layers] == [
        (truth["class"].removeprefix("Parametrized").replace("BatchNorm1d", "BatchNorm"), truth["parameters"])]
    trainable = {v.location for _, v in model.variables() if v.trainable}
    assert trainable == set(truth["parameter_names"])


def test_free_tensors_at_the_root_stay_layers_of_their_own():
    """A ViT's ``cls_token`` and ``pos_embed`` sit at the root beside its
    submodules: they are no one module's weight and bias."""
    truth = MANIFEST["root_free_tensors.pt"]
    model = read_model(TORCH / "root_free_tensors.pt")
    assert [layer.path for layer in model.layers] == ["cls_token", "pos_embed", "head"]
    assert sum(layer.trainable_params for layer in model.layers) == truth["parameters"]


def test_module_classes_told_by_their_tensors():
    """Review 41, 7: a MultiheadAttention with kdim/vdim (q/k/v projections
    of their own) read as Module, a per-channel PReLU named ``act`` as a
    Norm (and RL008 counted its slopes as a norm's gain), an LSTM with
    ``proj_size`` as RNN. The classes are torch's (manifest ``modules``)."""
    truth = MANIFEST["module_classes.pt"]["modules"]
    layers = {layer.path: layer.class_name for layer in read_model(TORCH / "module_classes.pt").layers}
    assert {path: layers[path] for path in truth} == truth


def test_rl008_names_parameters_without_a_wrappers_prefix():
    """Review 41, 7: the table names ``conv1`` where the file says
    ``module.conv1``; RL008 named ``module.conv1.bias``."""
    _, report = check_json(TORCH / "data_parallel.pt")
    [rl008] = [f for f in report["files"][0]["findings"] if f["code"] == "RL008"]
    assert "conv1.bias" in rl008["message"] and "module." not in rl008["message"]


def test_roles_from_module_structure():
    cnn = {v.location: v for _, v in read_model(TORCH / "sgd_momentum_wd.pt").variables()}
    assert cnn["conv1.weight"].role is Role.KERNEL and cnn["conv1.bias"].role is Role.BIAS
    assert cnn["bn1.weight"].role is Role.GAMMA and cnn["bn1.bias"].role is Role.BETA  # a module with running stats
    assert cnn["bn1.running_mean"].role is Role.MOVING_MEAN and not cnn["bn1.running_mean"].trainable
    assert "bn1.num_batches_tracked" not in cnn
    text = read_model(TORCH / "adamw_all_decayed.pth")
    roles = {v.location: v.role for _, v in text.variables()}
    assert roles == {"embed.weight": Role.EMBEDDINGS, "norm.weight": Role.GAMMA, "norm.bias": Role.BETA,
                     "hidden.weight": Role.KERNEL, "hidden.bias": Role.BIAS,
                     "out.weight": Role.KERNEL, "out.bias": Role.BIAS}
    assert [layer.class_name for layer in text.layers] == ["Embedding", "LayerNorm", "Linear", "Linear"]


def test_tied_weights_counted_once():
    model = read_model(TORCH / "tied_state_dict.pth")
    assert "lm_head.weight" not in parameters(model)
    assert any("lm_head.weight = wte.weight" in note for note in model.notes)


# ---------------------------------------------------------------------------
# the optimizer
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", WITH_OPTIMIZER)
def test_every_group_in_the_json(name):
    code, report = check_json(TORCH / name)
    assert code in (0, 1)
    opt = report["files"][0]["model"]["optimizer"]
    want = MANIFEST[name]["optimizer"]
    assert opt["class"] == want["class"]
    assert len(opt["param_groups"]) == len(want["groups"])
    for got, expected in zip(opt["param_groups"], want["groups"], strict=True):
        assert got["hyperparameters"]["weight_decay"] == expected["weight_decay"]
        assert got["hyperparameters"]["lr"] == expected["lr"]
        assert got["mapping"] == "exact"
        if name.startswith("peft_trainer"):  # the adapter file's names, PEFT's wrapper prefix dropped
            saved = MANIFEST[name]["saved_names"]
            assert sorted(got["variables"]) == sorted(saved[n].removeprefix("base_model.model.")
                                                      for n in expected["params"])
        elif name.startswith("hf_trainer"):  # safetensors sorts its keys: membership, not order
            assert sorted(got["variables"]) == sorted(expected["params"])
        else:
            wrapper = MANIFEST[name].get("wrapper", "")
            assert [v.removeprefix(wrapper) for v in got["variables"]] == expected["params"]
        assert got["params"] == len(expected["params"])


@pytest.mark.parametrize("name", ["data_parallel.pt", "compiled.pth"])
def test_a_training_wrappers_prefix_is_not_part_of_the_layer_names(name):
    """A state dict saved from DataParallel/DDP or torch.compile names every
    tensor under ``module.`` or ``_orig_mod.``: the layers are the model's
    own modules, the stored keys stay the locations, a note says why."""
    entry = MANIFEST[name]
    model = read_model(TORCH / name)
    modules = {n.rpartition(".")[0] for n in entry["parameter_names"]}
    assert {layer.path for layer in model.layers} == modules
    assert all(v.location.startswith(entry["wrapper"]) for _, v in model.variables())
    assert any(entry["wrapper"] in n and "layers are named without it" in n for n in model.notes)


def test_buffers_and_position_tables_as_torch_has_them():
    """DeepSeek-V3's router ``e_score_correction_bias`` is a buffer saved in
    the state dict: non-trainable, not a parameter (it counted 2 values more
    than torch); T5's ``relative_attention_bias`` is an nn.Embedding's table,
    not a kernel."""
    deepseek = read_model(TORCH / "hf_deepseek_v3")
    [bias] = [v for _, v in deepseek.variables() if v.name == "e_score_correction_bias"]
    assert not bias.trainable and deepseek.trainable_params == MANIFEST["hf_deepseek_v3"]["parameters"]
    t5 = read_model(TORCH / "hf_t5")
    tables = [(layer.class_name, v.role) for layer in t5.layers for v in layer.variables
              if layer.path.endswith("relative_attention_bias")]
    assert tables and all(t == ("Embedding", Role.EMBEDDINGS) for t in tables)


def test_weight_decay_conventions():
    sgd = read_model(TORCH / "sgd_momentum_wd.pt").optimizer
    assert sgd.family == "sgd" and sgd.momentum == 0.9 and sgd.weight_decay is None
    assert sgd.coupled_l2 == pytest.approx(5e-4 / 2)  # wd*w in the gradient == Keras L2(wd/2)
    adamw = read_model(TORCH / "adamw_no_decay_group.pth").optimizer
    assert adamw.class_name == "AdamW" and adamw.weight_decay == 0.05 and adamw.coupled_l2 is None
    assert [g.decays for g in adamw.param_groups] == [True, False]
    assert sorted(adamw.exclude_from_weight_decay) == sorted(MANIFEST["adamw_no_decay_group.pth"]
                                                             ["optimizer"]["groups"][1]["params"])
    assert adamw.decays("norm.weight") is False and adamw.decays("hidden.weight") is True
    assert adamw.iterations == 3  # Adam's step state
    adam = read_model(TORCH / "adam_coupled_wd.pt").optimizer
    assert adam.class_name == "Adam" and adam.coupled_l2 == pytest.approx(1e-4 / 2) and adam.weight_decay is None


def test_lightning_checkpoint():
    entry = MANIFEST["lightning.ckpt"]
    model = read_model(TORCH / "lightning.ckpt")
    assert model.format == "lightning_checkpoint" and entry["lightning_version"] in model.framework_version
    assert next(iter(parameters(model))).startswith("model.")  # the LightningModule's attribute prefix
    opt = model.optimizer
    assert opt.class_name == "SGD" and opt.nesterov and opt.momentum == 0.9
    assert opt.learning_rate.schedule == "StepLR" and opt.learning_rate.peak == 0.05
    assert opt.iterations == entry["global_step"]  # SGD keeps no step count: Lightning's global_step


def test_trainer_folder():
    entry = MANIFEST["hf_trainer/checkpoint-3"]
    model = read_model(TORCH / "hf_trainer" / "checkpoint-3")
    assert model.format == "hf_trainer" and model.name == "BertForSequenceClassification"
    args = model.metadata["training_args"]
    assert args["weight_decay"] == entry["training_args"]["weight_decay"]
    assert args["learning_rate"] == entry["training_args"]["learning_rate"]
    assert args["optim"] == entry["training_args"]["optim"]
    opt = model.optimizer
    assert opt.class_name == "AdamW" and opt.weight_decay == entry["training_args"]["weight_decay"]
    assert opt.learning_rate.peak == entry["training_args"]["learning_rate"]  # the schedule's base, not the saved 0
    assert opt.iterations == entry["global_step"]


def test_peft_adapter_checkpoint():
    """A LoRA fine-tune's Trainer checkpoint holds the adapters and the
    modules trained in full (adapter_model.safetensors), not the frozen base
    model: counted are exactly the tensors torch trained, with their values,
    the optimizer's two groups mapped onto them, and a note that says what
    the counts cover and the LoRA scale alpha / r. (Before: 0 parameters,
    exit 0, the groups unmapped.)"""
    entry = MANIFEST[PEFT]
    model = read_model(TORCH / PEFT)
    assert model.format == "hf_trainer"
    variables = {v.location: v for _, v in model.variables()}
    saved = {name: entry["saved_names"][name].removeprefix("base_model.model.") for name in entry["trainable_names"]}
    assert set(variables) == set(saved.values())
    assert model.total_params == model.trainable_params == entry["trainable_parameters"] < entry["base_parameters"]
    for name, want in entry["sum_sq"].items():
        assert variables[saved[name]].stats.sum_sq == pytest.approx(want, rel=1e-6, abs=1e-12), name
    lora = [v for v in variables.values() if ".lora_" in v.location]
    assert sum(v.size for v in lora) == entry["lora_parameters"] and all(v.role is Role.KERNEL for v in lora)
    opt = model.optimizer
    assert opt.class_name == entry["optimizer"]["class"] and opt.iterations == entry["global_step"]
    assert [g.decays for g in opt.param_groups] == [g["weight_decay"] > 0 for g in entry["optimizer"]["groups"]]
    adapter = model.metadata["adapter"]
    assert (adapter["peft_type"], adapter["r"], adapter["lora_alpha"]) == ("LORA", entry["lora"]["r"],
                                                                           entry["lora"]["lora_alpha"])
    assert adapter["scaling"] == entry["lora"]["lora_alpha"] / entry["lora"]["r"]
    assert any("LORA adapter" in note and "not the frozen base model" in note for note in model.notes)


def test_peft_save_pretrained_folder(tmp_path):
    """``model.save_pretrained(folder)`` of a PEFT model writes only
    adapter_config.json and adapter_model.safetensors: a folder reglint
    reads as one model (before: the safetensors file alone, under PEFT's
    wrapper names, with no word of the adapter)."""
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (tmp_path / name).write_bytes((TORCH / PEFT / name).read_bytes())
    model = read_model(tmp_path)
    assert model.format == "hf_folder" and model.total_params == MANIFEST[PEFT]["trainable_parameters"]
    assert not any(v.location.startswith("base_model.") for _, v in model.variables())
    assert model.metadata["adapter"]["r"] == MANIFEST[PEFT]["lora"]["r"]


def test_rslora_and_rank_patterns_give_peft_scales():
    """rsLoRA scales by alpha / sqrt(r), and rank_pattern / alpha_pattern
    give some modules their own: the note and the metadata hold every scale
    peft's own modules use (4 and 32/sqrt(2) here)."""
    entry = MANIFEST["peft_rslora_patterns"]
    model = read_model(TORCH / "peft_rslora_patterns")
    assert model.total_params == model.trainable_params == entry["trainable_parameters"]
    adapter = model.metadata["adapter"]
    found = sorted([adapter["scaling"], *adapter.get("scaling_by_pattern", {}).values()])
    assert found == pytest.approx(entry["scales"])
    [note] = [n for n in model.notes if "LORA adapter" in n]
    assert "scaled by 4 (22.6274 for value)" in note


def test_vera_projections_are_counted_but_not_trained():
    """VeRA saves its shared random projections (vera_A, vera_B) beside
    the trained vectors, under base_model. alone; they are buffers: the
    trainable count is torch's."""
    entry = MANIFEST["peft_vera"]
    model = read_model(TORCH / "peft_vera")
    assert model.total_params == entry["saved_values"]
    assert model.trainable_params == entry["trainable_parameters"] < entry["saved_values"]
    assert not any(v.location.startswith("base_model") for _, v in model.variables())


def test_an_adapter_config_beside_a_full_model_says_so(tmp_path):
    """A hub repository with a merged model and the adapter's files: the
    counts are the full model's, and the note says the adapter was not read
    (it used to claim the counts were the adapter's)."""
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((TORCH / "bnb_nf4" / name).read_bytes())
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (tmp_path / name).write_bytes((TORCH / PEFT / name).read_bytes())
    model = read_model(tmp_path)
    assert model.total_params == MANIFEST["bnb_nf4"]["float_parameters"]
    assert any("beside the model's own weights" in note for note in model.notes)
    assert not any("not the frozen base model" in note for note in model.notes)


@pytest.mark.parametrize("config", ['{"peft_type": "LORA", "r": 1' + "0" * 400 + ', "lora_alpha": 8}',
                                    '{"peft_type": "LORA", "r": 1e-300, "lora_alpha": 1e300}',
                                    "[" * 5000, b"\xff\xfe"])
def test_a_bad_adapter_config_costs_the_note_not_the_model(tmp_path, config):
    """adapter_config.json is optional metadata: an integer past float's
    range, a scale that overflows, nesting past the limit or bytes that are
    not UTF-8 leave the adapter readable."""
    (tmp_path / "adapter_model.safetensors").write_bytes((TORCH / PEFT / "adapter_model.safetensors").read_bytes())
    (tmp_path / "adapter_config.json").write_bytes(config if isinstance(config, bytes) else config.encode())
    model = read_model(tmp_path)
    assert model.total_params == MANIFEST[PEFT]["trainable_parameters"]
    assert not any("scaled by inf" in note for note in model.notes)


BITSANDBYTES = sorted(name for name, entry in MANIFEST.items() if name.startswith("bnb_") and "quantized" in entry)
BNB_VIEWS = sorted(name for name in MANIFEST if name.startswith("bnb_views/"))


@pytest.mark.parametrize("name", BNB_VIEWS)
def test_bitsandbytes_tensors_saved_as_views(name):
    """torch.save keeps a view's storage and strides: the 4-bit codes as a
    column of a wider tensor, absmax as a strided view, an int8 weight
    transposed twice, an archive re-zipped with deflate. Each is read in
    its logical order (these once ended in exit 2, or in 337 parameters
    for the deflated archive), with bitsandbytes' own numbers."""
    entry = MANIFEST[name]
    model = read_model(TORCH / name)
    assert model.total_params == entry["float_parameters"]
    weight = {v.location: v for _, v in model.variables()}[entry["weight"]]
    assert weight.stats.sum_sq == pytest.approx(entry["sum_sq"], rel=1e-6)


def test_a_long_int8_row_is_read_in_slabs(tmp_path):
    """LLM.int8 statistics are read a slab of values at a time, the row
    scales with them: a 16M-value row stays far under its float64 size
    (128 MB; the slabs are 16 MiB of values)."""
    import tracemalloc

    from safetensors.numpy import save_file

    width = 1 << 24
    save_file({"l.weight": np.ones((1, width), dtype=np.int8), "l.SCB": np.full(1, 127.0, dtype=np.float32)},
              str(tmp_path / "model.safetensors"))
    tracemalloc.start()
    model = read_model(tmp_path / "model.safetensors")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    weight = {v.location: v for _, v in model.variables()}["l.weight"]
    assert model.total_params == width and weight.stats.sum_sq == pytest.approx(width)
    assert peak < 4 * width  # a float64 copy of the row is 8 bytes a value


@pytest.mark.parametrize("name", BITSANDBYTES)
def test_bitsandbytes_weights_are_the_float_parameters(name):
    """transformers' save_pretrained of a bitsandbytes-quantized model (NF4,
    FP4, NF4 with double quantization, LLM.int8): torch's float count, each
    quantized weight at its float shape with bitsandbytes' own dequantized
    values, no scale or quant state counted. (Before: 8,166 of 76,675
    parameters for NF4, the packed bytes dropped as integers and the
    absmax and quant maps counted as weights.)"""
    entry = MANIFEST[name]
    model = read_model(TORCH / name)
    assert model.total_params == model.trainable_params == entry["float_parameters"]
    variables = {v.location: v for _, v in model.variables()}
    for location, want in entry["quantized"].items():
        got = variables[location]
        assert list(got.shape) == want["shape"] and got.role is Role.KERNEL
        assert got.stats.sum_sq == pytest.approx(want["sum_sq"], rel=1e-6), location
    constants = ("absmax", "quant_map", "quant_state", "SCB", "weight_format")
    assert not [loc for loc in variables if any(c in loc for c in constants)]
    assert sum(1 for note in model.notes if "quantized by bitsandbytes" in note) == 1
    code, found = findings(name)
    assert code == 0 and not [f for f in found if f["severity"] == "error"]


def test_the_bitsandbytes_fixtures_hold_what_they_are_for():
    """The cases the counts above exercise, checked so the fixtures keep
    them: codes stored as bfloat16, weights and their scales in different
    shards (int8 and 4-bit), a torch.save archive."""
    assert {"bnb_nf4_bf16_storage", "bnb_int8_sharded", "bnb_nf4_sharded", "bnb_nf4_bin"} <= set(BITSANDBYTES)
    assert MANIFEST["bnb_int8_sharded"]["straddles_shards"] and MANIFEST["bnb_nf4_sharded"]["straddles_shards"]
    assert MANIFEST["bnb_nf4_bin"]["files"] == ["config.json", "pytorch_model.bin"]


QUANTO = sorted(name for name in MANIFEST if name.startswith("quanto/"))


@pytest.mark.parametrize("name", QUANTO)
def test_quanto_weights_are_the_float_parameters(name):
    """optimum-quanto's qint8 (codes times a row scale) and qint4 (two
    codes a byte across the rows' halves, times a scale less a shift, in
    groups of 128 where the layer is wide enough): torch's float count,
    quanto's own dequantize() for the statistics, no scale, shift or
    activation scale counted (before: 84 of 2,344 parameters)."""
    entry = MANIFEST[name]
    model = read_model(TORCH / name)
    assert model.total_params == entry["float_parameters"]
    variables = {v.location: v for _, v in model.variables()}
    for location, want in entry["quantized_sum_sq"].items():
        assert variables[location].stats.sum_sq == pytest.approx(want, rel=1e-6), location
        assert variables[location].role is Role.KERNEL
    assert not [loc for loc in variables if loc.endswith(("_scale", "_shift", "input_scale", "output_scale"))]
    assert any("optimum-quanto" in note for note in model.notes)


def test_bitsandbytes_file_alone():
    """The same from the safetensors file given by itself."""
    model = read_model(TORCH / "bnb_nf4" / "model.safetensors")
    assert model.format == "safetensors" and model.total_params == MANIFEST["bnb_nf4"]["float_parameters"]


def test_safetensors_file_alone():
    model = read_model(TORCH / "tiny_text.safetensors")
    assert model.format == "safetensors" and model.optimizer is None
    assert any("no optimizer" in note for note in model.notes)


# ---------------------------------------------------------------------------
# the rules on it
# ---------------------------------------------------------------------------
def findings(name, *extra):
    code, report = check_json(TORCH / name, *extra)
    return code, report["files"][0]["findings"]


def test_sgd_weight_decay_one_at_lr_point_one_is_an_error():
    code, found = findings("sgd_wd_too_strong.pt")
    [rl003] = [f for f in found if f["code"] == "RL003"]
    assert rl003["severity"] == "error" and code == 1
    assert rl003["values"]["shrink_per_step"] == pytest.approx(0.1 * 1.0 / (1 - 0.9))


@pytest.mark.parametrize("name", ["sgd_momentum_wd.pt", "adamw_all_decayed.pth", "adamw_no_decay_group.pth",
                                  "adam_coupled_wd.pt", "lightning.ckpt", "hf_trainer/checkpoint-3",
                                  "tied_state_dict.pth", "tiny_text.safetensors", PEFT])
def test_sane_settings_have_no_error(name):
    code, found = findings(name)
    assert code == 0 and not [f for f in found if f["severity"] == "error"]


def test_decay_on_biases_norms_embeddings_where_every_parameter_decays():
    _, found = findings("adamw_all_decayed.pth")
    [rl008] = [f for f in found if f["code"] == "RL008"]
    assert rl008["severity"] == "warning"
    assert rl008["values"]["values_decayed"] == 800 + 32 + 32 + 4  # embedding, LayerNorm, both biases
    for name in ("adamw_no_decay_group.pth", "hf_trainer/checkpoint-3"):
        assert not [f for f in findings(name)[1] if f["code"] == "RL008"], name


def test_adam_coupled_weight_decay_is_normalised_away():
    _, found = findings("adam_coupled_wd.pt")
    [rl007] = [f for f in found if f["code"] == "RL007"]
    assert rl007["target"] == "optimizer.weight_decay" and rl007["values"]["coupled_l2"] == pytest.approx(5e-5)
    assert not [f for f in findings("adamw_all_decayed.pth")[1] if f["code"] == "RL007"]


def test_terminal_report_shows_the_groups():
    out = run("check", str(TORCH / "adamw_no_decay_group.pth"), "--no-cache").stdout
    assert "group 0: 2 tensors" in out and "weight_decay 0.05 (decoupled)" in out
    assert "group 1: 5 tensors" in out and "no weight decay" in out


# ---------------------------------------------------------------------------
# hostile input
# ---------------------------------------------------------------------------
def test_os_system_pickle_is_refused_and_nothing_runs():
    entry = MANIFEST["os_system.pt"]
    marker = Path(entry["marker"])
    marker.unlink(missing_ok=True)
    path = TORCH / "os_system.pt"
    with zipfile.ZipFile(path) as archive:  # the fixture really calls os.system when unpickled
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(archive.read("archive/data.pkl"))]
    assert ("GLOBAL", "os system") in ops and ("REDUCE", None) in ops
    done = run("check", str(path), "--no-cache")
    assert_one_line_refusal(done, "os.system", "refused")
    assert not marker.exists()


def test_legacy_format_is_refused():
    assert_one_line_refusal(run("check", str(TORCH / "legacy_format.pt"), "--no-cache"), "legacy")


def test_a_whole_module_is_read_from_its_records():
    # Refused until records (fixtures/torch_records and tests/test_torch_records.py hold the rest).
    model = read_model(TORCH / "whole_module.pt")
    assert model.trainable_params == 6 and [layer.class_name for layer in model.layers] == ["Linear"]


def rewrite(source: Path, target: Path, change=None, extra=None, compression=zipfile.ZIP_STORED) -> Path:
    """Copy a real archive member by member, changing some on the way."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", compression) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if change is not None:
                data = change(info.filename, data)
            if data is not None:
                zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(zipfile.ZipInfo(name), data)
    return target


def first_offset_beyond_storage(name: str, data: bytes) -> bytes:
    # The first tensor record: BINPERSID then its storage offset (BININT1 0).
    return data.replace(b"QK\x00", b"QK\xff", 1) if name.endswith("data.pkl") else data


def shorter_storage(name: str, data: bytes) -> bytes:
    return data[: len(data) // 2] if name.endswith("/data/0") else data


def zip_bomb(target: Path) -> Path:
    """data.pkl inflating to 80 MiB (over the pickle's 16 MiB limit), ~80 KiB on disk."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("archive/data.pkl", "w", force_zip64=True) as member:
        for _ in range(80):
            member.write(b"\x80\x02" + b" " * ((1 << 20) - 2))
    return target


@pytest.mark.parametrize(("case", "needle"), [
    ("traversal", "points outside the archive"),
    ("absolute", "points outside the archive"),
    ("bomb", "limit"),
    ("storage_short", "out of range"),
    ("offset_past_storage", "out of range"),
    ("torchscript", "TorchScript"),
    ("bare_pickle", "bare Python pickle"),
])
def test_hostile_archives_are_one_line_errors(tmp_path, case, needle):
    base = TORCH / "sgd_momentum_wd.pt"
    target = tmp_path / f"{case}.pt"
    if case == "traversal":
        rewrite(base, target, extra={"../../../tmp/reglint_torch_evil": b"x"})
    elif case == "absolute":
        rewrite(base, target, extra={"/etc/reglint_torch_evil": b"x"})
    elif case == "bomb":
        zip_bomb(target)
    elif case == "storage_short":
        rewrite(base, target, change=shorter_storage)
    elif case == "offset_past_storage":
        rewrite(base, target, change=first_offset_beyond_storage)
    elif case == "torchscript":
        rewrite(base, target, extra={"sgd_momentum_wd/code/__torch__/model.py": b"import os"})
    elif case == "bare_pickle":
        target.write_bytes(b"\x80\x02}q\x00.")
    assert_one_line_refusal(run("check", str(target), "--no-cache"), needle)
    assert not Path("/tmp/reglint_torch_evil").exists()


def test_nan_weights_are_read_from_the_storage(tmp_path):
    def poison(name: str, data: bytes) -> bytes:  # conv1.weight's storage, every value NaN
        return b"\x00\x00\xc0\x7f" * (len(data) // 4) if name.endswith("/data/0") else data

    target = rewrite(TORCH / "sgd_momentum_wd.pt", tmp_path / "nan.pt", change=poison)
    code, found = check_json(target)
    [rl013] = [f for f in found["files"][0]["findings"] if f["code"] == "RL013"]
    assert code == 1 and rl013["layer"] == "conv1" and rl013["values"]["nonfinite"] == 8 * 3 * 3 * 3


def test_compressed_storages_are_counted_without_statistics(tmp_path):
    target = rewrite(TORCH / "sgd_momentum_wd.pt", tmp_path / "deflated.pt", compression=zipfile.ZIP_DEFLATED)
    model = read_model(target)
    assert sum(v.size for v in parameters(model).values()) == MANIFEST["sgd_momentum_wd.pt"]["parameters"]
    assert any("compressed" in note for note in model.notes)


# ---------------------------------------------------------------------------
# the interpreter itself
# ---------------------------------------------------------------------------
def test_interpreter_keeps_its_memo_in_a_dict():
    # LONG_BINPUT 2**31-1: the C unpickler grows its memo array to 16 GiB.
    assert load_pickle(b"\x80\x02K\x07r\xff\xff\xff\x7f.", what="t") == 7


@pytest.mark.parametrize(("data", "error", "needle"), [
    (b"\x80\x02c__builtin__\neval\nX\x01\x00\x00\x001\x85R.", UnsafeInputError, "builtins.eval"),
    (b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x04\x00\x00\x00zlib\x86R.", UnsafeInputError, "codec"),
    (b"\x80\x02c__builtin__\nbytearray\nJ\x00\x00\x00\x7f\x85R.", UnsafeInputError, "bytearray"),
    (b"\x80\x02\x82\x01.", UnsafeInputError, "extension"),
    (b"\x80\x02}X\x01\x00\x00\x00a}b.", ModelReadError, "BUILD"),
    (b"\x80\x02\x85.", ModelReadError, "not a readable pickle"),
])
def test_interpreter_refusals(data, error, needle):
    with pytest.raises(error, match=needle):
        load_pickle(data, what="data.pkl")


def test_training_args_classes_only_where_asked():
    data = (b"\x80\x02ctransformers.training_args\nTrainingArguments\n)\x81"  # NEWOBJ
            b"}X\x0c\x00\x00\x00weight_decayG?\x84z\xe1G\xae\x14{sb.")  # {"weight_decay": 0.01}, BUILD
    args = load_pickle(data, what="training_args.bin", opaque_modules=("transformers.",))
    assert args.fields() == {"weight_decay": 0.01}
    with pytest.raises(UnsafeInputError, match=r"transformers\.training_args\.TrainingArguments"):
        load_pickle(data, what="model.pt")


def test_frozen_parameters_inside_the_groups_are_the_ones_without_state():
    """Review 43, 8: an optimizer built from ``model.parameters()`` holds the
    frozen conv too, but after its steps has no state for it (no gradient
    reached it): those are frozen, and a note says why."""
    truth = MANIFEST["frozen_in_groups.pt"]
    model = read_model(TORCH / "frozen_in_groups.pt")
    assert model.trainable_params == truth["trainable"]
    trainable = {v.location for _, v in model.variables() if v.trainable}
    assert not trainable & set(truth["frozen_names"])
    assert any("never received a gradient" in note for note in model.notes)


def test_a_parametrizations_own_parameters_are_trained():
    """Review 43, 1: a minLoRA-style parametrization's ``lora_A``/``lora_B``
    (``0.parametrizations.weight.0.lora_A``) were read as buffers, the
    frozen base weights as trained, and the optimizer's one group matched
    'exact' to tensors of other shapes."""
    truth = MANIFEST["lora_parametrized.pt"]
    model = read_model(TORCH / "lora_parametrized.pt")
    assert model.trainable_params == truth["trainable"]
    assert [sorted(g.variables) for g in model.optimizer.param_groups] == [sorted(p) for p in truth["group_params"]]
    trainable = {v.location for _, v in model.variables() if v.trainable}
    assert trainable == {n for group in truth["group_params"] for n in group}


@pytest.mark.parametrize("name", ["transfer_head_first.pt", "frozen_conv_head_group.pt",
                                  "whole_module_and_optimizer.pt"])
def test_groups_given_in_another_order_with_frozen_layers(name):
    """Review 41, 1-3 and 43, 5-7: an optimizer given the head's parameters
    before the backbone's, a frozen stem or conv left out. The matching took
    the first same-shaped vectors in module order, froze the wrong ones and
    called it exact. Each group holds torch's parameters (manifest
    ``group_params``); shapes alone do not decide these, so no mapping is
    exact, and only the parameters whose shape no group holds are marked
    frozen (a guess would name wrong layers frozen): the rest of the
    frozen values are counted trainable, and a note says how many. A
    pickled module records which are frozen: there the count is torch's."""
    truth = MANIFEST[name]
    model = read_model(TORCH / name)
    groups = model.optimizer.param_groups
    assert [sorted(g.variables) for g in groups] == [sorted(p) for p in truth["group_params"]]
    if name == "whole_module_and_optimizer.pt":
        assert model.trainable_params == truth["trainable"]
        return
    assert all(g.mapping == "uncertain" for g in groups)
    members = {loc for g in groups for loc in g.variables}
    variables = {v.location: v for _, v in model.variables()}
    held = {variables[loc].shape for loc in members}
    for name_ in truth["frozen_names"]:  # frozen where no group holds the shape, else counted trainable
        assert variables[name_].trainable == (variables[name_].shape in held)
    [note] = [n for n in model.notes if "is not told by the file" in n]
    guessed = int(note.split(" values", 1)[0].replace(",", ""))
    assert model.trainable_params - guessed == truth["trainable"]


def test_group_mapping_says_when_it_is_uncertain():
    slots = [Slot("a.weight", (4, 4)), Slot("a.bias", (4,)), Slot("b.weight", (4, 4)), Slot("b.bias", (4,))]
    groups = [{"weight_decay": 0.1}, {"weight_decay": 0.0}]
    notes: list[str] = []
    shapes = {0: (4, 4), 1: (4, 4), 2: (4,), 3: (4,)}
    members, how = map_groups(slots, [[0, 1], [2, 3]], groups, shapes, ordered=True, notes=notes)
    assert members == [["a.weight", "b.weight"], ["a.bias", "b.bias"]] and how == ["exact", "exact"]
    # Without state tensors any split fits: the likeliest is taken and a note says so.
    members, how = map_groups(slots, [[0, 1], [2, 3]], groups, {}, ordered=True, notes=notes)
    assert members == [["a.weight", "b.weight"], ["a.bias", "b.bias"]] and how == ["uncertain", "uncertain"]
    assert any("several assignments" in note for note in notes)
    # Shapes that fit nothing: unmapped, never guessed.
    members, how = map_groups(slots, [[0, 1], [2, 3]], groups, {0: (9,)}, ordered=True, notes=notes)
    assert how == ["unmapped", "unmapped"] and members == [[], []]


# ---------------------------------------------------------------------------
# integration: discovery, torch never imported
# ---------------------------------------------------------------------------
def test_discovery_takes_the_trainer_folder_once_and_skips_foreign_bin(tmp_path):
    (tmp_path / "weights.bin").write_bytes(os.urandom(256))
    done = run("check", str(tmp_path / "weights.bin"), "--no-cache")
    assert done.returncode == 0 and "no model files" in done.stderr  # not a torch checkpoint: skipped
    from reglint.engine.discover import discover
    from reglint.engine.settings import Settings

    found, _, _ = discover([str(TORCH)], Settings())
    assert str(TORCH / "hf_trainer" / "checkpoint-3") in found
    assert not [f for f in found if "checkpoint-3/" in f]
    named, _, _ = discover([str(TORCH / "hf_trainer" / "checkpoint-3" / "optimizer.pt")], Settings())
    assert named == [str(TORCH / "hf_trainer" / "checkpoint-3")]
    hook = Settings()
    hook.force_exclude = True  # what pre-commit runs: trainer_state.json is not skipped as "other JSON"
    named, _, _ = discover([str(TORCH / "hf_trainer" / "checkpoint-3" / "trainer_state.json")], hook)
    assert named == [str(TORCH / "hf_trainer" / "checkpoint-3")]


def test_check_never_imports_torch(tmp_path):
    # A `torch` package that leaves a mark if anything imports it.
    fake = tmp_path / "site" / "torch"
    fake.mkdir(parents=True)
    mark = tmp_path / "torch_was_imported"
    (fake / "__init__.py").write_text(f"open({str(mark)!r}, 'w').close()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])}
    code = ("import sys, reglint.cli.app as a; a.main(['check', '-q', '--no-cache', *sys.argv[1:]]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow', 'keras')))")
    done = subprocess.run([sys.executable, "-c", code, str(TORCH)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert not mark.exists()


def test_pickle_fuzz_never_escapes_as_a_traceback():
    """Every single-byte change of a real data.pkl ends in data or a one-line error."""
    with zipfile.ZipFile(TORCH / "adamw_no_decay_group.pth") as archive:
        data = archive.read("adamw_no_decay_group/data.pkl")
    for position in range(0, len(data), 7):
        for value in (0x00, 0x7F, 0xFF):
            mutated = data[:position] + bytes([value]) + data[position + 1:]
            with contextlib.suppress(ModelReadError):
                load_pickle(mutated, what="data.pkl")
    assert zlib.crc32(data)  # the loop ran over real bytes


def test_decayed_twice_skips_the_no_decay_group():
    from reglint.engine.analysis import Analysis
    from reglint.engine.rule import get_rule
    from reglint.model import Regularizer

    model = read_model(TORCH / "adamw_no_decay_group.pth")
    for _, var in model.variables():
        if var.location in ("hidden.weight", "embed.weight"):  # group 0 (decays) and group 1 (no decay)
            var.regularizer = Regularizer(kind="l2", l2=1e-3)
    rule = get_rule("RL006")({})
    found = list(rule.check(model, Analysis(model)))
    assert [f.layer for f in found] == ["hidden"]


def test_precommit_files_regex_takes_checkpoints():
    import re

    yaml = pytest.importorskip("yaml")
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    regex = next(h for h in hooks if h["id"] == "reglint")["files"]
    for path in ("a.pt", "m/b.pth", "c.ckpt", "d.safetensors", "run/checkpoint-3/training_args.bin",
                 "run/checkpoint-3/trainer_state.json"):
        assert re.search(regex, path), path
    assert not re.search(regex, "notes.pt.txt")


def test_ci_formats_point_at_a_file_of_the_trainer_folder():
    from reglint.reporters.machine import artifact_path

    folder = TORCH / "hf_trainer" / "checkpoint-3"
    assert artifact_path(str(folder)).endswith("checkpoint-3/model.safetensors")
    done = run("check", str(folder), "--format", "sarif", "--no-cache")
    assert done.returncode in (0, 1), done.stderr
    json.loads(done.stdout)  # valid SARIF JSON for a folder model


@pytest.mark.parametrize("damage", ["deep_json", "huge_shape", "short_absmax", "short_quant_map", "not_json",
                                    "huge_blocksize", "huge_nested_blocksize"])
def test_damaged_bitsandbytes_states_do_not_escape(tmp_path, damage):
    """A quant state that is not bitsandbytes' (deeply nested or non-JSON
    bytes, a shape the packed bytes cannot hold, a block of 2^36 values:
    a 1-KB file once took 4 GB) leaves the weight uncounted as any integer
    tensor; scales of the wrong size leave it without statistics. Never a
    traceback, never an absurd count or allocation."""
    from safetensors.numpy import load_file, save_file

    source = "bnb_nf4_double_quant" if damage == "huge_nested_blocksize" else "bnb_nf4"
    tensors = load_file(str(TORCH / source / "model.safetensors"))
    weight = "bert.encoder.layer.0.attention.self.query.weight"
    state = f"{weight}.quant_state.bitsandbytes__nf4"
    if damage == "deep_json":
        tensors[state] = np.frombuffer(b"[" * 60000, dtype=np.uint8).copy()
    elif damage == "not_json":
        tensors[state] = np.frombuffer(b"\xff\xfe not json", dtype=np.uint8).copy()
    elif damage == "huge_shape":
        tensors[state] = np.frombuffer(json.dumps({"quant_type": "nf4", "blocksize": 64,
                                                   "shape": [10 ** 12, 10 ** 12]}).encode(), dtype=np.uint8).copy()
    elif damage in ("huge_blocksize", "huge_nested_blocksize"):
        state_json = json.loads(bytes(tensors[state]))
        state_json["blocksize" if damage == "huge_blocksize" else "nested_blocksize"] = 1 << 36
        tensors[state] = np.frombuffer(json.dumps(state_json).encode(), dtype=np.uint8).copy()
    elif damage == "short_absmax":
        tensors[f"{weight}.absmax"] = tensors[f"{weight}.absmax"][:3].copy()
    else:
        tensors[f"{weight}.quant_map"] = tensors[f"{weight}.quant_map"][:4].copy()
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path))
    import tracemalloc

    tracemalloc.start()
    model = read_model(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 << 20  # a block of 2^36 expanded once took 4 GB
    full = MANIFEST["bnb_nf4"]["float_parameters"]
    variables = {v.location: v for _, v in model.variables()}
    if damage in ("short_absmax", "short_quant_map", "huge_nested_blocksize"):
        assert model.total_params == full and variables[weight].stats is None
    else:
        assert model.total_params < full and weight not in variables
