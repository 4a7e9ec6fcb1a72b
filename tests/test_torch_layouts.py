"""Checkpoints that keep their models and optimizers under names of their own
(fixtures/torch_layouts, written by torch: fixtures/make_torch_layouts_fixtures.py):
several state dicts as one model, nested dicts of tensors, several
optimizers merged in the order of the models they train."""

from __future__ import annotations

import json

import pytest

from reglint.readers import read_model

from helpers import FIXTURES

LAYOUTS = FIXTURES / "torch_layouts"
MANIFEST = json.loads((LAYOUTS / "manifest.json").read_text())["files"]


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_counts_equal_torchs(name):
    model = read_model(LAYOUTS / name)
    saved = MANIFEST[name]
    statistics = sum(v.size for _, v in model.variables() if v.role.is_statistic)
    assert model.total_params - statistics == saved["params"]
    assert model.trainable_params == saved.get("trainable", saved["params"])


@pytest.mark.parametrize("name", sorted(n for n in MANIFEST if "models" in MANIFEST[n]))
def test_the_entries_counted_are_those_the_optimizers_update(name):
    """MoCo's key encoder, a GAN's running average are copies no optimizer
    updates; ArcFace's margin head and SAC's log_alpha are trained."""
    model = read_model(LAYOUTS / name)
    models = MANIFEST[name]["models"]
    if len(models) == 1:  # one entry: its own names, no prefix
        assert model.metadata["state_dict_key"] == models[0]
    else:
        assert {v.location.split(".")[0] for _, v in model.variables()} == set(models)


@pytest.mark.parametrize("name", sorted(n for n in MANIFEST if "optimizer" in MANIFEST[n]))
def test_the_optimizers_groups_map_to_their_parameters(name):
    optimizer = read_model(LAYOUTS / name).optimizer
    saved = MANIFEST[name]
    assert optimizer.class_name == saved["optimizer"]
    assert [g.hyperparameters["weight_decay"] for g in optimizer.param_groups] == pytest.approx(saved["weight_decay"])
    assert all(g.mapping in ("exact", "uncertain") for g in optimizer.param_groups)


def test_two_state_dicts_are_one_model_under_their_keys():
    model = read_model(LAYOUTS / "encoder_decoder.pt")
    assert {layer.path for layer in model.layers} == {"encoder.0", "encoder.2", "decoder.0", "decoder.2"}
    assert any("another order than the model's" in note for note in model.notes)


def test_two_optimizers_follow_the_models_they_train():
    """optimizer_D is saved before optimizer_G; G's groups still map to G."""
    optimizer = read_model(LAYOUTS / "gan.pt").optimizer
    g_group, d_group = optimizer.param_groups
    assert all(v.startswith("G.") for v in g_group.variables) and g_group.weight_decay == pytest.approx(0.01)
    assert all(v.startswith("D.") for v in d_group.variables) and d_group.weight_decay == pytest.approx(0.02)


def test_optimizers_of_different_classes_are_not_merged():
    model = read_model(LAYOUTS / "gan_mixed.pt")
    assert any("optimizers of different classes" in note for note in model.notes)
    assert {v for g in model.optimizer.param_groups for v in g.variables} == {"D.0.weight", "D.0.bias",
                                                                               "D.2.weight", "D.2.bias"}


def test_an_ema_copy_beside_the_trained_weights_is_not_counted():
    model = read_model(LAYOUTS / "basicsr_net_g.pth")
    assert any("'params_ema'" in note and "not counted" in note for note in model.notes)
    assert all(not v.location.startswith("params_ema") for _, v in model.variables())


def test_megatrons_nested_model_and_wrapped_optimizer():
    model = read_model(LAYOUTS / "megatron" / "iter_0000010" / "mp_rank_00" / "model_optim_rng.pt")
    tables = [v for _, v in model.variables() if v.location.endswith("word_embeddings.weight")]
    assert len(tables) == 1 and tables[0].shape == (64, 16)
    assert not any("_extra_state" in v.location for _, v in model.variables())  # TransformerEngine's fp8 state
    decayed, plain = model.optimizer.param_groups
    assert decayed.weight_decay == pytest.approx(0.1) and not plain.decays


def test_optimizers_in_a_dict_pair_with_their_models_by_name():
    """Generator and discriminator have equal shapes: only the names say
    which optimizer (lr 1e-4, 4e-4) trains which."""
    optimizer = read_model(LAYOUTS / "gan_optimizers_dict.pt").optimizer
    for group in optimizer.param_groups:
        owner = {v.split(".")[0] for v in group.variables}
        assert len(owner) == 1
        assert group.learning_rate == pytest.approx(MANIFEST["gan_optimizers_dict.pt"]["lr"][owner.pop()])


def test_whole_modules_merged_keep_their_buffers_and_frozen_layers():
    model = read_model(LAYOUTS / "whole_modules.pt")
    assert not any(v.location.endswith("noise") for _, v in model.variables())
    assert {v.location for _, v in model.variables() if not v.trainable} == {
        "G.stem.weight", "G.stem.bias", "D.stem.weight", "D.stem.bias"}


def test_a_workspace_keeps_its_model_one_level_down():
    model = read_model(LAYOUTS / "diffusion_policy_latest.ckpt")
    assert model.metadata["state_dict_key"] == "state_dicts.model"
    assert model.optimizer.param_groups[0].mapping == "exact"


def test_a_parameter_two_optimizers_share_leaves_both_mapped():
    """The chatbot tutorial's embedding is in the encoder's and the decoder's
    optimizer: 12 ids for 11 parameters, each optimizer matched on its own."""
    model = read_model(LAYOUTS / "chatbot_tutorial.tar")
    assert all(g.mapping != "unmapped" and g.variables for g in model.optimizer.param_groups)
    assert any("shared by several optimizers" in note for note in model.notes)
