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
    assert model.trainable_params == MANIFEST[name]["params"]


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
