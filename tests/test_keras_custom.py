"""Custom layers in Keras 3 files: roles from the storage layout, trainable
flags from the optimizer's slots (fixtures/make_custom_layer_fixtures.py
wrote the files and what Keras counted just before saving)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile

import h5py
import pytest

from reglint.model import Role
from reglint.readers import read_model
from reglint.readers.keras_custom import group_slots
from reglint.readers.keras_slots import slot_families, trainable_shapes

from helpers import FIXTURES, assert_one_line_refusal, hang_guard

CUSTOM = FIXTURES / "keras_custom"
MANIFEST = {k: v for k, v in json.loads((CUSTOM / "manifest.json").read_text()).items() if not k.startswith("_")}


def _layer(model, name):
    return next(layer for layer in model.layers if layer.name == name)


def _var(model, name):
    return next(v for layer in model.layers for v in layer.variables if v.name == name)


@pytest.mark.parametrize("file", sorted(MANIFEST))
def test_counts_equal_what_keras_trained(file):
    model = read_model(CUSTOM / file)
    keras = MANIFEST[file]
    assert (model.total_params, model.trainable_params) == (keras["count_params"], keras["trainable"])


def test_a_batchnorm_inside_a_custom_block_keeps_its_statistics_out_of_training_without_an_optimizer():
    model = read_model(CUSTOM / "resblock_untrained.keras")
    assert model.optimizer is None
    assert _var(model, "bn/moving_mean").role is Role.MOVING_MEAN
    assert not _var(model, "bn/moving_variance").trainable
    assert _var(model, "norm2/gamma").role is Role.GAMMA  # a layer norm's scale: ones at init, not a bias
    assert any("all but 2 are counted as trainable" in note for note in model.notes)


def test_slots_decide_what_trained_where_the_file_does_not_say():
    model = read_model(CUSTOM / "resblock_frozen_bn_adamw.keras")
    custom = [v for v in _layer(model, "res_block").variables if v.shape == (8,)]
    assert sum(v.trainable for v in custom) == 3  # conv bias, the layer norm's gamma and beta; BN frozen
    assert not any(v.trainable for v in custom if v.role.is_statistic)
    note = next(n for n in model.notes if "optimizer's slots" in n)
    assert "AdamW: 2 per trainable variable; 627 trainable values" in note
    assert not any("does not record which" in n for n in model.notes)


def test_lora_factors_merged_at_save_are_counted_from_the_slots():
    model = read_model(CUSTOM / "keras_hub_gemma_lora_adamw.keras")
    layer = _layer(model, "gemma_causal_lm")
    factors = [v for v in layer.variables if "lora_kernel" in v.name]
    assert len(factors) == 8 and all(v.trainable for v in factors)
    assert sum(v.size for v in factors) == 256
    assert not any(v.trainable for v in layer.variables if "lora" not in v.name)
    assert any("rank-2 LoRA factors of 4 kernels" in n for n in model.notes)


def test_keras_hub_embeddings_and_norms_are_named_by_layout():
    model = read_model(CUSTOM / "keras_hub_bert_classifier_adamw.keras")
    roles = {v.name: v.role for v in _layer(model, "bert_text_classifier").variables}
    assert roles["layers/bert_backbone/layers/reversible_embedding/embeddings"] is Role.EMBEDDINGS
    assert roles["layers/bert_backbone/layers/transformer_encoder/_feedforward_layer_norm/beta"] is Role.BETA
    assert roles["layers/bert_backbone/layers/transformer_encoder/_feedforward_output_dense/var_0"] is Role.KERNEL


def test_known_layers_frozen_when_the_optimizer_was_built_get_a_note():
    # Keras 3.0.5 saves no lora_rank: loaded back the kernel trains, while
    # the optimizer's slots show that the LoRA factors trained instead.
    model = read_model(FIXTURES / "versions" / "keras-3.0.5" / "lora_dense_adamw.keras")
    assert any("cover 48 fewer values than are counted as trainable" in n for n in model.notes)


def test_slots_the_file_holds_no_variable_for_are_named_not_counted(tmp_path):
    path = tmp_path / "damaged.keras"
    shutil.copy(CUSTOM / "resblock_sgd_momentum.keras", path)
    with zipfile.ZipFile(path) as archive:
        weights = archive.read("model.weights.h5")
        others = {name: archive.read(name) for name in archive.namelist() if name != "model.weights.h5"}
    (tmp_path / "w.h5").write_bytes(weights)
    with h5py.File(tmp_path / "w.h5", "a") as h5:
        h5["optimizer/vars"].create_dataset("99", data=[0.0] * 8)  # one more (8,) vector trained: a statistic
        h5["optimizer/vars"].create_dataset("100", data=[0.0] * 5)  # and a (5,) one the file does not hold
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in others.items():
            archive.writestr(name, data)
        archive.write(tmp_path / "w.h5", "model.weights.h5")
    model = read_model(path)
    # SGD keeps one slot per variable: a (5,) slot is a trainable variable
    # no stored tensor matches, so it is named and left out of the count.
    assert model.trainable_params == 643 + 8
    assert any("not in the file and are not counted" in n for n in model.notes)


def test_an_indivisible_slot_set_is_not_used(tmp_path):
    path = tmp_path / "damaged.keras"
    with zipfile.ZipFile(CUSTOM / "resblock_adam_amsgrad_accumulate.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    (tmp_path / "w.h5").write_bytes(members.pop("model.weights.h5"))
    with h5py.File(tmp_path / "w.h5", "a") as h5:
        del h5["optimizer/vars/5"]  # one of the four slots of a (3, 3, 8, 8) kernel or a vector
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.write(tmp_path / "w.h5", "model.weights.h5")
    model = read_model(path)
    assert model.trainable_params == 643  # the layout's reading: BN statistics out, the rest trains
    assert any("does not record which" in n for n in model.notes)
    assert not any("optimizer's slots" in n for n in model.notes)


@pytest.mark.parametrize(("name", "config", "families"), [
    ("SGD", {"momentum": 0.0}, 0), ("SGD", {"momentum": 0.9}, 1), ("Adam", {}, 2), ("AdamW", {"amsgrad": True}, 3),
    ("RMSprop", {"momentum": 0.5, "centered": True}, 3), ("Nadam", {"use_ema": True}, 3),
    ("Lion", {"gradient_accumulation_steps": 4}, 2), ("Adafactor", {}, None), ("MyOptimizer", {}, None),
])
def test_slot_families(name, config, families):
    assert slot_families(name, config) == families


def test_trainable_shapes_refuses_an_uneven_set():
    assert trainable_shapes([(), (), (3,), (3,), (3,)], 2) is None


@pytest.mark.parametrize(("group", "shapes", "names"), [
    ("bn", [(4,)] * 4, ["gamma", "beta", "moving_mean", "moving_variance"]),
    ("", [(4,)] * 4, None),  # a custom class's own four vectors: could be anything
    ("layers/transformer/_self_attention_layer_norm", [(4,)] * 2, ["gamma", "beta"]),
    ("pre_ffw_norm", [(4,)], ["gamma"]),
    ("token_embedding", [(10, 4)], ["embeddings"]),
    ("ffw_linear", [(4, 4)], None),
    ("conv1_bn", [(4,), (5,)], None),  # unequal vectors: not a normalization's pair
])
def test_group_slots(group, shapes, names):
    slots = group_slots(group, shapes)
    assert (None if slots is None else [name for name, _role, _trains in slots]) == names


def test_a_keras_hub_task_preset_is_one_model_with_its_head(tmp_path):
    result = subprocess.run([sys.executable, "-m", "reglint", str(CUSTOM / "keras_hub_bert_preset"), "--format",
                             "json", "--no-cache"], capture_output=True, text=True, timeout=120)
    files = json.loads(result.stdout)["files"]
    assert [f["path"].rsplit("/", 1)[-1] for f in files] == ["keras_hub_bert_preset"]  # task.weights.h5 not apart
    layers = {layer["name"]: layer for layer in files[0]["model"]["layers"]}
    assert set(layers) == {"bert_backbone", "bert_text_classifier"}
    assert files[0]["model"]["params"]["total"] == 6819


def test_a_count_other_than_keras_hub_recorded_is_named(tmp_path):
    preset = tmp_path / "preset"
    shutil.copytree(CUSTOM / "keras_hub_bert_preset", preset)
    meta = json.loads((preset / "metadata.json").read_text())
    assert meta["parameter_count"] == 6768  # the backbone's, as KerasHub counted it
    assert not any("records" in n for n in read_model(preset).notes)
    meta["parameter_count"] = 6000
    (preset / "metadata.json").write_text(json.dumps(meta))
    assert any("metadata.json records 6,000 parameters" in n for n in read_model(preset).notes)


def test_a_quantized_sub_layer_trains_its_bias_only():
    model = read_model(CUSTOM / "adapter_int8.keras")
    flags = {v.name: v.trainable for v in _layer(model, "adapter").variables}
    assert flags == {"out_norm/gamma": True, "out_norm/beta": True, "proj/quantized": False, "proj/bias": True,
                     "proj/scale": False}
    assert any("not 2 integer tensors and scales of quantized sub-layers" in n for n in model.notes)


def _reglint(*args):
    return subprocess.run([sys.executable, "-m", "reglint", *map(str, args), "--no-cache"], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(("damage", "needles"), [
    ("task_weights_not_hdf5", ("task.weights.h5 is not readable HDF5",)),
    ("task_json_not_json", ("task.json",)),
    ("task_weights_link_outside", ("task.weights.h5",)),
])
def test_a_damaged_keras_hub_task_is_refused_in_one_line(tmp_path, damage, needles):
    preset = tmp_path / "preset"
    shutil.copytree(CUSTOM / "keras_hub_bert_preset", preset)
    if damage == "task_weights_not_hdf5":
        (preset / "task.weights.h5").write_bytes(b"not hdf5 at all")
    elif damage == "task_json_not_json":
        (preset / "task.json").write_text("{" * 5000)
    else:
        outside = tmp_path / "elsewhere.h5"
        shutil.move(preset / "task.weights.h5", outside)
        (preset / "task.weights.h5").symlink_to(outside)
    assert_one_line_refusal(_reglint(preset), *needles)


def test_a_subclassed_models_units_argument_is_not_its_output_width():
    from reglint.estimate.loss_scale import model_loss_scale

    model = read_model(CUSTOM / "subclassed_model_adam.keras")
    assert _layer(model, "net").units is None  # its config's units=16 is the hidden Dense's; the head has 3
    scale = model_loss_scale(model)
    assert scale.value == 1.0 and "unknown number of classes" in scale.explanation


def test_an_untied_reversible_embedding_quantized_freezes_both_scales():
    # Llama's untied ReversibleEmbedding, int8: table, its scale, reverse
    # table, its scale; the first scale is not a bias.
    model = read_model(CUSTOM / "keras_hub_llama_int8.keras")
    group = "layers/reversible_embedding/"
    found = {v.name[len(group):]: v.trainable for v in _layer(model, "llama_backbone").variables
             if v.name.startswith(group)}
    assert found == {"quantized": False, "scale_1": False, "quantized_2": False, "scale_3": False}


@pytest.mark.parametrize(("integer", "names"), [
    ([True, False, False], ["quantized", "bias", "scale"]),  # Dense, EinsumDense int8
    ([True, False], ["quantized", "scale"]),  # Embedding int8
    ([True, False, True, False], ["quantized", "scale_1", "quantized_2", "scale_3"]),  # untied ReversibleEmbedding
    ([True, False, False, False, True], ["quantized", "bias", "scale_2", "scale_3", "quantized_4"]),  # Dense int4
])
def test_quantized_layouts(integer, names):
    slots = group_slots("proj", [(4, 4) if is_int else (4,) for is_int in integer], integer)
    assert [name for name, _role, _trains in slots] == names
    assert [trains for name, _role, trains in slots if name != "bias"] == [False] * (len(names) - ("bias" in names))


def test_lora_b_factors_shaped_like_the_attention_biases_are_paired_first():
    # GPT-2 at 2 heads, rank 2: the value/query B factors are (2, 8), as
    # are the six attention biases, of which the four of LoRA'd layers train.
    model = read_model(CUSTOM / "keras_hub_gpt2_lora_adamw.keras")
    layer = _layer(model, "gpt2_causal_lm")
    factors = [v for v in layer.variables if "lora_kernel" in v.name]
    assert len(factors) == 8 and sum(v.size for v in factors) == 4 * (16 * 2 * 2 + 2 * 8)
    stored = [v for v in layer.variables if "lora" not in v.name]
    assert sum(v.trainable for v in stored if v.shape == (2, 8)) == 4
    assert any("rank-2 LoRA factors of 4 kernels" in n for n in model.notes)


def test_a_backbone_frozen_by_its_config_is_not_called_quantized(tmp_path):
    """backbone.trainable = False before save_to_preset writes trainable:
    false in config.json (the only change): its weights are frozen by the
    config (Keras loads the preset with 0 of the backbone's trainable), not
    integer tensors and scales."""
    preset = tmp_path / "preset"
    shutil.copytree(CUSTOM / "keras_hub_bert_preset", preset)
    config = json.loads((preset / "config.json").read_text())
    config["config"]["trainable"] = False
    (preset / "config.json").write_text(json.dumps(config))
    model = read_model(preset)
    assert not any(v.trainable for v in _layer(model, "bert_backbone").variables)
    note = next(n for n in model.notes if n.startswith("bert_backbone: custom layer"))
    assert "quantized" not in note and "its config freezes (trainable=False)" in note


def test_lora_pairing_is_not_quadratic_in_a_crafted_files_slots():
    """A custom layer of 20,000 frozen kernels and 20,000 slot shapes (7, r),
    one rank each, none completing a pair: every rank was tried on every
    kernel (4,000 of each: 16M steps, 5 s each for the two passes; a 13 MB
    .keras of 12,000 took minutes; 20,000 would be 400M steps). Ranks are
    now found by intersection, in well under the guard's minute."""
    from collections import Counter

    from reglint.model import Variable
    from reglint.readers import keras_slots

    kernels = [Variable(f"k{i}", Role.KERNEL, (7, 100_000 + i), trainable=False) for i in range(20_000)]
    available = Counter({(7, r): 1 for r in range(1, 20_001)})
    with hang_guard(60):
        assert keras_slots._lora_pairs(available, kernels) is None
        assert keras_slots._lora_first(available, kernels, kernels) is None
    # the pairs a LoRA model's slots hold are still found
    assert keras_slots._lora_pairs(Counter({(7, 2): 1, (2, 100_000): 1}), kernels) == (2, [kernels[0]])


def test_a_dataset_declaring_far_more_than_it_stores_is_not_read(tmp_path):
    """A 4 KB task.weights.h5 whose one variable declares 2**60 floats in
    (1, 1) chunks it never wrote: reading its statistics grew memory until
    the process was killed (16 GB in 43 s under a limit). Now unreadable
    values, named in one problem, at once."""
    preset = tmp_path / "preset"
    shutil.copytree(CUSTOM / "keras_hub_bert_preset", preset)
    (preset / "task.weights.h5").unlink()
    with h5py.File(preset / "task.weights.h5", "w") as f:
        f.create_group("layers/head/vars").create_dataset("0", shape=(2**40, 2**20), dtype="f4", chunks=(1, 1))
    # a fresh wrapper whose one child is reglint, limited to 3 GiB: its
    # peak memory is that child's
    code = ("import resource, subprocess, sys\n"
            "limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
            "done = subprocess.run([sys.executable, '-m', 'reglint', *sys.argv[1:]], preexec_fn=limit, "
            "capture_output=True, text=True)\n"
            "print(done.stdout); print(done.stderr, file=sys.stderr)\n"
            "print('peak_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n")
    # the timeout is a hang guard; the memory peak below is the test
    result = subprocess.run([sys.executable, "-c", code, str(preset), "--no-cache"], capture_output=True,
                            text=True, timeout=120)
    assert "cannot read head/var_0 values: OSError" in result.stdout and "Traceback" not in result.stderr
    peak_kb = int(result.stderr.split("peak_kb")[-1].split()[0])
    assert peak_kb < 1 << 20  # under 1 GiB: the values were never read (the read took the whole 3 GiB)
