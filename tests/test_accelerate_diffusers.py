"""accelerate ``save_state`` folders and diffusers model folders and
pipelines, read as models without torch.

Every expected number comes from fixtures/accelerate/manifest.json and
fixtures/diffusers/manifest.json, written by fixtures/make_accelerate_fixtures.py
and fixtures/make_diffusers_fixtures.py from torch's and diffusers' own objects
(torch 2.13, accelerate 1.15, diffusers 0.42, transformers 5.24).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reglint.engine.discover import discover
from reglint.engine.settings import Settings
from reglint.errors import ModelReadError, UnsafeInputError
from reglint.readers import read_model

ROOT = Path(__file__).resolve().parents[1]
ACCELERATE = ROOT / "fixtures" / "accelerate"
DIFFUSERS = ROOT / "fixtures" / "diffusers"
HOSTILE = ROOT / "fixtures" / "torch" / "os_system.pt"  # its pickle calls os.system("touch ...")
PWNED = Path("/tmp/reglint_torch_pwned")
ACC = {e["file"]: e for e in json.loads((ACCELERATE / "manifest.json").read_text())["files"]}
DIFF = {e["file"]: e for e in json.loads((DIFFUSERS / "manifest.json").read_text())["files"]}
# (folder, model number): the first model is the folder, the others model_N.safetensors
ACC_MODELS = [(name, i) for name, entry in ACC.items() for i in range(len(entry["models"]))]


def run(*args):
    return subprocess.run([sys.executable, "-m", "reglint", *args], capture_output=True, text=True, timeout=120)


def lint_json(*paths) -> tuple[int, list[dict], str]:
    done = run("check", *map(str, paths), "--format", "json", "--no-cache")
    return done.returncode, json.loads(done.stdout)["files"] if done.stdout else [], done.stderr


def accelerate_model(name: str, index: int):
    path = ACCELERATE / name
    return read_model(path if index == 0 else path / f"model_{index}.safetensors")


def parameters(model) -> dict:
    return {v.location: v for _, v in model.variables() if not v.role.is_statistic}


# ---------------------------------------------------------------------------
# accelerate save_state
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "index"), ACC_MODELS)
def test_accelerate_counts_are_torchs(name, index):
    want = ACC[name]["models"][index]
    model = accelerate_model(name, index)
    assert model.format == "accelerate_state"
    params = parameters(model)
    assert set(params) == set(want["parameter_names"])
    assert sum(v.size for v in params.values()) == model.total_params == want["parameters"]


@pytest.mark.parametrize(("name", "index"), ACC_MODELS)
def test_accelerate_groups_land_on_their_tensors(name, index):
    """Each param group's weight_decay and lr on the tensors torch put in it
    (optimizer.bin numbers them; the names come from the weights file)."""
    want = ACC[name]["models"][index]["optimizer"]
    opt = accelerate_model(name, index).optimizer
    assert opt.class_name == want["class"] and opt.iterations == want["steps"]
    assert len(opt.param_groups) == len(want["groups"])
    for got, expected in zip(opt.param_groups, want["groups"], strict=True):
        assert got.mapping == "exact"
        if isinstance(expected["params"], int):  # LoRA: the file renames peft's parameters
            assert got.variables == sorted(got.variables) and len(got.variables) == expected["params"]
            continue
        assert sorted(got.variables) == sorted(expected["params"])
        assert got.learning_rate == max(expected["lr"], expected["initial_lr"] or 0)  # the schedule's base
        assert got.hyperparameters["weight_decay"] == expected["weight_decay"]
        if want["class"] == "SGD":  # torch's coupled wd*w in the gradient: Keras' L2(wd/2)
            assert got.coupled_l2 == pytest.approx(expected["weight_decay"] / 2) and got.weight_decay is None
            assert got.momentum == expected["momentum"]
        else:
            assert (got.weight_decay or 0.0) == expected["weight_decay"] and got.coupled_l2 is None
        for tensor in expected["params"]:
            assert opt.decays(tensor) is (expected["weight_decay"] > 0), tensor


def test_accelerate_mapping_is_told_and_the_schedule_named():
    safetensors, torch_bin = read_model(ACCELERATE / "mlp_safetensors"), read_model(ACCELERATE / "mlp_bin")
    assert any("by the shapes of its optimizer state alone" in n for n in safetensors.notes)
    assert any("in their saved (module) order" in n for n in torch_bin.notes)
    for model in (safetensors, torch_bin):
        assert model.optimizer.learning_rate.schedule == ACC["mlp_safetensors"]["scheduler"]
        assert model.optimizer.learning_rate.config["saved_lr"] < model.optimizer.learning_rate.peak
    # one scheduler for two optimizers: which one it drives is unknown, so it is not named
    assert read_model(ACCELERATE / "gan_two_models").optimizer.learning_rate.schedule == "lr_scheduler"


def test_accelerate_folder_is_one_model_per_prepared_model():
    """Before: model.safetensors without its optimizer, optimizer.bin with
    no parameter names, and scheduler.bin an unreadable file (exit 2)."""
    code, files, stderr = lint_json(ACCELERATE / "mlp_safetensors", ACCELERATE / "mlp_bin")
    assert code in (0, 1) and stderr == ""
    assert [os.path.relpath(f["path"], ACCELERATE) for f in files] == ["mlp_bin", "mlp_safetensors"]
    code, files, stderr = lint_json(ACCELERATE / "gan_two_models")
    assert code in (0, 1) and stderr == ""
    assert [os.path.relpath(f["path"], ACCELERATE) for f in files] == [
        "gan_two_models", os.path.join("gan_two_models", "model_1.safetensors")]
    assert [f["model"]["optimizer"]["class"] for f in files] == ["AdamW", "SGD"]
    # the discriminator's SGD decays its biases: a finding that could not be made before
    assert "RL008" in {x["code"] for x in files[1]["findings"]}


def test_weights_a_save_hook_put_in_a_subfolder():
    """diffusers' training scripts save the UNet to unet/ from a save hook
    and pop it from save_state: the folder is that model with optimizer.bin
    (before: optimizer.bin without parameter names, unet/ without its
    optimizer, scheduler.bin unreadable, exit 2); the EMA copy is a model of
    its own."""
    folder = ACCELERATE / "diffusers_hook"
    model = read_model(folder)
    assert (model.format, model.name) == ("accelerate_state", "UNet2DModel")
    assert model.optimizer.learning_rate.schedule == ACC["diffusers_hook"]["scheduler"]
    assert any(n.startswith("weights read from unet/") for n in model.notes)
    found, _, _ = discover([str(folder)], Settings())
    assert found == [str(folder), str(folder / "unet_ema")]
    named, _, _ = discover([str(folder / "unet" / "diffusion_pytorch_model.safetensors")], Settings())
    assert named == [str(folder)]


def test_lora_layers_a_save_hook_saved():
    """diffusers' LoRA scripts save pytorch_lora_weights.safetensors from a
    save hook: the folder is those layers with the optimizer that trained
    them (before: the layers without their decay, the optimizer unnamed)."""
    folder = ACCELERATE / "diffusers_lora_hook"
    model = read_model(folder)
    want = ACC["diffusers_lora_hook"]["models"][0]
    assert model.trainable_params == want["parameters"] and model.optimizer.weight_decay == 0.01
    assert all(model.optimizer.decays(name) for name in want["parameter_names"])
    assert any("the LoRA layers the training script's save hook saved" in n for n in model.notes)
    found, _, _ = discover([str(folder)], Settings())
    assert found == [str(folder)]


def test_several_hook_subfolders_leave_the_optimizer_unnamed(tmp_path):
    folder = copy_folder(tmp_path, "diffusers_hook")
    shutil.copytree(folder / "unet", folder / "controlnet")
    model = read_model(folder)
    assert model.total_params == 0 and all(g.mapping == "unmapped" for g in model.optimizer.param_groups)
    assert any("saved its models in controlnet/, unet/, unet_ema/ (each linted on its own)" in n for n in model.notes)
    found, _, _ = discover([str(folder)], Settings())
    assert found == [str(folder / name) if name else str(folder) for name in ("", "controlnet", "unet", "unet_ema")]


def test_accelerate_files_named_one_by_one_map_to_their_model():
    """What pre-commit passes: each file stands for the model it is read with."""
    folder = ACCELERATE / "gan_two_models"
    for name, model in (("model.safetensors", folder), ("optimizer.bin", folder), ("scheduler.bin", folder),
                        ("optimizer_1.bin", folder / "model_1.safetensors"),
                        ("model_1.safetensors", folder / "model_1.safetensors")):
        named, _, _ = discover([str(folder / name)], Settings())
        assert named == [str(model)], name


def copy_folder(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(ACCELERATE / name, target)
    return target


def test_corrupt_optimizer_costs_the_optimizer_not_the_model(tmp_path):
    folder = copy_folder(tmp_path, "mlp_safetensors")
    data = (folder / "optimizer.bin").read_bytes()
    (folder / "optimizer.bin").write_bytes(data[: len(data) // 2])  # truncated: no zip directory
    model = read_model(folder)
    assert model.total_params == ACC["mlp_safetensors"]["models"][0]["parameters"] and model.optimizer is None
    assert any(n.startswith("optimizer.bin not read (") and "the optimizer is unknown" in n for n in model.notes)
    code, files, stderr = lint_json(folder)
    assert code in (0, 1) and stderr == "" and len(files) == 1
    (folder / "model.safetensors").unlink()  # nothing left to read: one line, exit 2
    (folder / "pytorch_model.bin").write_bytes((ACCELERATE / "mlp_bin" / "pytorch_model.bin").read_bytes()[:100])
    done = run("check", str(folder), "--no-cache")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_optimizer_without_an_optimizer_state_is_a_note(tmp_path):
    folder = copy_folder(tmp_path, "mlp_bin")
    shutil.copy(folder / "scheduler.bin", folder / "optimizer.bin")  # a torch.save of something else
    model = read_model(folder)
    assert model.optimizer is None and any("holds no optimizer state_dict" in n for n in model.notes)


def test_rng_states_are_never_unpickled(tmp_path):
    """random_states_0.pkl pickles numpy's RNG objects: never opened. A
    hostile one changes nothing; a hostile optimizer.bin is refused."""
    folder = copy_folder(tmp_path, "mlp_safetensors")
    shutil.copy(HOSTILE, folder / "random_states_0.pkl")
    PWNED.unlink(missing_ok=True)
    assert read_model(folder).optimizer.class_name == "AdamW"
    shutil.copy(HOSTILE, folder / "optimizer.bin")
    with pytest.raises(UnsafeInputError):
        read_model(folder)
    assert not PWNED.exists()


def test_cache_key_of_a_second_model_follows_its_optimizer(tmp_path):
    from reglint.engine.cache import content_hash

    folder = copy_folder(tmp_path, "gan_two_models")
    before = content_hash(folder / "model_1.safetensors")
    (folder / "optimizer_1.bin").write_bytes((folder / "optimizer.bin").read_bytes())
    assert content_hash(folder / "model_1.safetensors") != before


def test_model_file_without_accelerate_files_is_plain_safetensors(tmp_path):
    shutil.copy(ACCELERATE / "gan_two_models" / "model_1.safetensors", tmp_path / "model_1.safetensors")
    assert read_model(tmp_path / "model_1.safetensors").format == "safetensors"


# ---------------------------------------------------------------------------
# diffusers
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["unet2d", "unet2d_bin", "vae_sharded"])
def test_diffusers_folder_counts_are_diffusers(name):
    want = DIFF[name]
    model = read_model(DIFFUSERS / name)
    assert (model.format, model.name) == ("diffusers", want["class"])
    assert model.framework_version == f"diffusers {want['diffusers_version']}"
    params = parameters(model)
    assert set(params) == set(want["parameter_names"])
    assert sum(v.size for v in params.values()) == model.total_params == want["parameters"]


def test_sharded_diffusers_folder_is_one_model():
    """Before: each of the four shards a model of its own (3,636 + 3,880 + ...)."""
    folder = DIFFUSERS / "vae_sharded"
    assert len(DIFF["vae_sharded"]["shards"]) > 1
    found, _, _ = discover([str(folder)], Settings())
    assert found == [str(folder)]
    named, _, _ = discover([str(folder / DIFF["vae_sharded"]["shards"][1])], Settings())
    assert named == [str(folder)]


@pytest.mark.parametrize("name", ["sd_pipeline", "ddpm_pipeline"])
def test_pipeline_lints_each_component_model_once(name):
    want = DIFF[name]
    code, files, stderr = lint_json(DIFFUSERS / name)
    assert code in (0, 1) and stderr == ""
    assert [os.path.relpath(f["path"], DIFFUSERS / name) for f in files] == sorted(want["components"])
    for report in files:
        component = want["components"][os.path.basename(report["path"])]
        assert report["model"]["params"]["total"] == component["parameters"]
    assert set(want["not_models"]) <= set(want["folders"])  # scheduler/, tokenizer/ exist and hold no model


def test_pipeline_folder_read_directly_says_what_it_is():
    with pytest.raises(ModelReadError, match="diffusers pipeline folder"):
        read_model(DIFFUSERS / "sd_pipeline")


def test_diffusers_variants(tmp_path):
    """save_pretrained(variant="fp16") alone is read; beside the plain
    weights it is noted, not linted as a model of its own."""
    folder = tmp_path / "unet"
    folder.mkdir()
    shutil.copy(DIFFUSERS / "unet2d" / "config.json", folder / "config.json")
    shutil.copy(DIFFUSERS / "unet2d" / "diffusion_pytorch_model.safetensors",
                folder / "diffusion_pytorch_model.fp16.safetensors")
    assert read_model(folder).total_params == DIFF["unet2d"]["parameters"]
    shutil.copy(DIFFUSERS / "unet2d_bin" / "diffusion_pytorch_model.bin", folder / "diffusion_pytorch_model.bin")
    model = read_model(folder)
    assert model.total_params == DIFF["unet2d"]["parameters"]
    assert any("not read" in n and "diffusion_pytorch_model.bin" in n for n in model.notes)
    found, _, _ = discover([str(tmp_path)], Settings())
    assert found == [str(folder)]
