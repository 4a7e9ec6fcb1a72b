"""DeepSpeed checkpoints (fixtures/deepspeed, saved by DeepSpeed 0.19 from two
real data-parallel ranks: fixtures/make_deepspeed_fixtures.py): parameters
from ``param_shapes`` (ZeRO-3's model states hold empty placeholders),
statistics equal to DeepSpeed's own ``zero_to_fp32`` reconstruction, the
optimizer mapped to its parameters by name."""

from __future__ import annotations

import json

import pytest

from reglint.engine.discover import discover
from reglint.engine.settings import Settings
from reglint.readers import read_model
from reglint.readers.sniff import Format, sniff

from helpers import FIXTURES, assert_one_line_refusal, run_reglint

DEEPSPEED = FIXTURES / "deepspeed"
MANIFEST = json.loads((DEEPSPEED / "manifest.json").read_text())["checkpoints"]


def _tag(name: str):
    """The folder a checkpoint is read from: the tag folder of a save_dir,
    the checkpoint folder of a Trainer's."""
    return DEEPSPEED / name if name.startswith("trainer") else DEEPSPEED / name / "global_step2"


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_counts_equal_deepspeeds(name):
    model = read_model(_tag(name))
    saved = MANIFEST[name]
    params = {v.location: v for _, v in model.variables()}
    assert (model.total_params, model.trainable_params) == (saved["params"], saved["trainable"])
    assert set(params) == set(saved["sum_sq"])
    for location, sum_sq in saved["sum_sq"].items():
        if saved.get("statistics", True):
            assert params[location].stats.sum_sq == pytest.approx(sum_sq, rel=1e-5), location
        else:
            assert params[location].stats is None


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_the_optimizer_and_its_groups(name):
    optimizer = read_model(_tag(name)).optimizer
    saved = MANIFEST[name]["optimizer"]
    assert optimizer.class_name == saved["class"]
    assert optimizer.learning_rate.initial == pytest.approx(saved["lr"])
    assert [g.hyperparameters["weight_decay"] for g in optimizer.param_groups] == pytest.approx(saved["groups"])
    assert all(g.mapping == "exact" for g in optimizer.param_groups)
    assert optimizer.iterations == MANIFEST[name]["steps"]


def test_zero3s_groups_are_the_trainers_by_name():
    decayed, plain = read_model(_tag("zero3")).optimizer.param_groups
    assert set(decayed.variables) == {"0.weight", "3.weight"}
    assert set(plain.variables) == {"0.bias", "1.weight", "1.bias", "3.bias"}


def test_deepspeeds_adam_without_adam_w_mode_is_a_coupled_l2():
    """``"type": "Adam"`` is AdamW unless ``adam_w_mode`` is false (zero2 sets it false)."""
    model = read_model(_tag("zero2"))
    assert model.optimizer.coupled_l2 == pytest.approx(0.005) and not model.optimizer.weight_decay


def test_a_missing_ranks_states_cost_the_statistics_and_say_so():
    model = read_model(_tag("zero3_missing_rank"))
    assert any("1 optimizer-state files for 2 data-parallel ranks" in note for note in model.notes)


def test_a_save_dir_is_found_as_its_tag_folder_and_its_files_map_to_it():
    found = discover([str(DEEPSPEED)], Settings()).files
    rel = sorted(path[len(str(DEEPSPEED)) + 1:] for path in found)
    assert rel == ["bf16_stage0/global_step2", "stage0/global_step2", "trainer_zero3/checkpoint-2",
                   "zero2/global_step2", "zero3/global_step2", "zero3_edited_shapes/global_step2",
                   "zero3_frozen/global_step2", "zero3_missing_rank/global_step2"]
    named = DEEPSPEED / "zero3" / "global_step2" / "zero_pp_rank_1_mp_rank_00_optim_states.pt"
    assert discover([str(named)], Settings()).files == [str(DEEPSPEED / "zero3" / "global_step2")]
    inside = DEEPSPEED / "trainer_zero3" / "checkpoint-2" / "global_step2" / "zero_pp_rank_0_mp_rank_00_model_states.pt"
    assert discover([str(inside)], Settings()).files == [str(DEEPSPEED / "trainer_zero3" / "checkpoint-2")]
    assert sniff(_tag("zero3")) is Format.DEEPSPEED


def test_the_cli_lints_a_save_dir():
    done = run_reglint(DEEPSPEED / "zero2", "-f", "concise")
    assert done.returncode == 0, done.stderr
    assert "RL007" in done.stdout and "global_step2" in done.stdout


def test_a_save_dir_read_directly_is_the_tag_its_latest_names():
    """``reglint explain save_dir`` reads the model one path names."""
    assert sniff(DEEPSPEED / "zero3") is Format.DEEPSPEED
    model = read_model(DEEPSPEED / "zero3")
    assert model.total_params == MANIFEST["zero3"]["params"] and model.path.endswith("global_step2")



def test_param_shapes_that_claim_more_than_was_saved_are_refused():
    """zero_to_fp32's own check: the partitions param_shapes implies fill the ranks' fp32 groups."""
    assert_one_line_refusal(run_reglint(DEEPSPEED / "zero3_edited_shapes"), "param_shapes implies",
                            "corrupt or edited checkpoint")


def test_a_states_file_linked_outside_the_folder_is_refused(tmp_path):
    tag = tmp_path / "save" / "global_step2"
    tag.mkdir(parents=True)
    for path in (DEEPSPEED / "zero2" / "global_step2").iterdir():
        (tag / path.name).write_bytes(path.read_bytes())
    outside = tmp_path / "elsewhere.pt"
    (tag / "mp_rank_00_model_states.pt").rename(outside)
    (tag / "mp_rank_00_model_states.pt").symlink_to(outside)
    assert_one_line_refusal(run_reglint(tag), "mp_rank_00_model_states.pt", "symbolic link pointing outside")


def test_a_frozen_layer_under_zero3_is_read_from_every_ranks_fragment():
    model = read_model(_tag("zero3_frozen"))
    frozen = {v.location: v for _, v in model.variables() if not v.trainable}
    assert set(frozen) == {"0.weight", "0.bias"}
    assert frozen["0.weight"].stats.sum_sq == pytest.approx(MANIFEST["zero3_frozen"]["sum_sq"]["0.weight"], rel=1e-6)
