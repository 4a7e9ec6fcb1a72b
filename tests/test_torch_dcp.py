"""torch.distributed.checkpoint folders (fixtures/torch_dcp, written by torch's
own writer and by accelerate's FSDP save functions from two real ranks:
fixtures/make_torch_dcp_fixtures.py): counts, statistics over every chunk
and the optimizer, against what torch said before saving."""

from __future__ import annotations

import json
import shutil

import pytest

from reglint.engine.discover import discover
from reglint.engine.settings import Settings
from reglint.readers import read_model
from reglint.readers.sniff import Format, sniff

from helpers import FIXTURES, assert_one_line_refusal, run_reglint

DCP = FIXTURES / "torch_dcp"
MANIFEST = {k: v for k, v in json.loads((DCP / "manifest.json").read_text()).items() if k != "versions"}
STATISTICS = ("running_mean", "running_var")



@pytest.mark.parametrize("folder", sorted(MANIFEST))
def test_counts_and_sums_of_squares_equal_torchs(folder):
    model = read_model(DCP / folder)
    torch = MANIFEST[folder]
    params = {v.location: v for _, v in model.variables() if not v.location.endswith(STATISTICS)}
    assert sum(v.size for v in params.values()) == torch["params"]
    assert model.trainable_params == torch["trainable"]
    assert set(params) == set(torch["sum_sq"])
    for name, sum_sq in torch["sum_sq"].items():
        assert params[name].stats is not None, name
        assert params[name].stats.sum_sq == pytest.approx(sum_sq, rel=1e-6), name


@pytest.mark.parametrize("folder", sorted(MANIFEST))
def test_the_optimizer_is_the_one_saved(folder):
    optimizer = read_model(DCP / folder).optimizer
    saved = MANIFEST[folder]["optimizer"]
    assert optimizer.class_name == saved["class"]
    assert optimizer.learning_rate.initial == pytest.approx(saved["lr"])
    assert len(optimizer.param_groups) == saved["groups"]
    # SGD keeps no step count; torchtitan's train_state does
    assert optimizer.iterations == (None if folder == "recipe_app_state" else 2)
    for group, wd in zip(optimizer.param_groups, saved["weight_decay"], strict=True):
        assert group.mapping == "exact"
        assert group.decays == (wd > 0)


def test_two_ranks_chunks_are_read_from_both_files():
    """FSDP2 split every tensor in two: half in __0_0.distcp, half in
    __1_0.distcp; the sum of squares is over both (the manifest's, above)."""
    assert sorted(p.name for p in (DCP / "fsdp2_two_ranks").glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    model = read_model(DCP / "fsdp2_two_ranks")
    assert any("2 files" in note for note in model.notes)


def test_two_param_groups_keyed_by_name_map_exactly():
    optimizer = read_model(DCP / "single").optimizer
    decayed, plain = optimizer.param_groups
    assert set(decayed.variables) == {"0.weight", "4.weight"}
    assert set(plain.variables) == {"0.bias", "1.weight", "1.bias", "4.bias"}
    assert optimizer.weight_decay == pytest.approx(0.05)


def test_torchtitans_flattened_optimizer_is_regrouped():
    optimizer = read_model(DCP / "torchtitan_layout").optimizer
    assert optimizer.momentum == pytest.approx(0.9)
    assert optimizer.coupled_l2 == pytest.approx(0.5e-4)  # SGD's weight_decay 1e-4 as Keras' L2


def test_a_folder_is_one_model_and_its_parts_are_not_linted_apart():
    found = discover([str(DCP)], Settings()).files
    rel = sorted(path[len(str(DCP)) + 1:] for path in found)
    assert rel == sorted([*MANIFEST, "hostile_chunks", "hostile_path", "hostile_truncated"])
    for part in ("pytorch_model_fsdp_0/__0_0.distcp", "optimizer_0/.metadata"):
        mapped = discover([str(DCP / "accelerate_fsdp" / part)], Settings()).files
        assert mapped == [str(DCP / "accelerate_fsdp")]
    assert discover([str(DCP / "lightning_layout" / "meta.pt")], Settings()).files == [str(DCP / "lightning_layout")]


def test_the_sharded_accelerate_folder_is_read_with_its_optimizer():
    model = read_model(DCP / "accelerate_fsdp")
    assert sniff(DCP / "accelerate_fsdp") is Format.HF_FOLDER
    assert sniff(DCP / "single") is Format.TORCH_DCP
    assert model.optimizer is not None and model.optimizer.weight_decay == pytest.approx(0.1)
    assert not any("scheduler" in note and "not read" in note for note in model.notes)


def test_a_metadata_naming_a_file_outside_the_folder_is_refused():
    assert_one_line_refusal(run_reglint(DCP / "hostile_path"), "../outside.distcp", "refused")


def test_a_truncated_data_file_is_a_one_line_error():
    assert_one_line_refusal(run_reglint(DCP / "hostile_truncated"), "__0_0.distcp", "truncated checkpoint")


def test_chunks_that_do_not_make_up_their_tensor_are_refused():
    """A shape its stored chunks do not tile would be counted on the
    metadata's word alone (a crafted one claimed 2**61 per dimension)."""
    assert_one_line_refusal(run_reglint(DCP / "hostile_chunks"), "model.4.weight", "do not make up its shape")


def test_one_file_of_a_folder_alone_says_to_lint_the_folder(tmp_path):
    lone = tmp_path / "__0_0.distcp"
    shutil.copy(DCP / "single" / "__0_0.distcp", lone)
    assert_one_line_refusal(run_reglint(lone), "torch.distributed.checkpoint", "lint the folder")


def test_the_cli_lints_a_dcp_folder():
    done = run_reglint(DCP / "fsdp2_two_ranks", "-f", "concise")
    assert done.returncode == 0, done.stderr
    assert "RL008" in done.stdout  # AdamW's weight decay on the LayerNorm and biases


def test_a_metadata_linked_outside_the_folder_is_refused(tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(DCP / "single", folder)
    outside = tmp_path / "elsewhere.metadata"
    (folder / ".metadata").rename(outside)
    (folder / ".metadata").symlink_to(outside)
    assert_one_line_refusal(run_reglint(folder), ".metadata", "symbolic link pointing outside")
