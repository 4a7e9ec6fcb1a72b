"""Normalized and residual networks (issue 15): famous healthy recipes stay
free of errors, the mechanisms the static rules must catch there are caught,
and the graph walk tells absorbed normalization scales from those that scale
a residual branch. Fixtures: fixtures/scenarios/*.keras, written by Keras
(fixtures/make_scenario_fixtures.py), and fixtures/keras/ files."""

from __future__ import annotations

import json
import math

import pytest

from reglint.config.settings import Settings
from reglint.engine.analysis import TrainingContext
from reglint.engine.finding import Severity
from reglint.engine.runner import lint_file

from conftest import FIXTURES, KERAS_FIXTURES

SCENARIOS = FIXTURES / "scenarios"
RECIPES = ["recipe_resnet_sgd.keras", "recipe_transformer_adamw.keras", "recipe_transformer_adamw_slow.keras",
           "recipe_small_cnn.keras"]


def report_of(path, context=None):
    report = lint_file(str(path), Settings(context=context or TrainingContext()))
    assert report.error is None, report.error
    return report


def manifest() -> dict[str, dict]:
    return {e["file"]: e for e in json.loads((SCENARIOS / "manifest.json").read_text())["files"]}


def errors(report) -> list:
    return [f for f in report.findings if f.severity is Severity.ERROR]


def penalty_flags(report) -> dict[tuple[str, str], tuple[bool, bool, bool]]:
    return {(p.layer.path, p.variable.name): (p.scale_invariant, p.absorbed, p.counted)
            for p in report.analysis.penalties}


# -- healthy recipes ----------------------------------------------------------


@pytest.mark.parametrize("name", RECIPES)
def test_famous_recipes_have_no_errors(name):
    assert errors(report_of(SCENARIOS / name)) == []


@pytest.mark.parametrize("name", RECIPES)
def test_famous_recipes_have_no_errors_over_a_long_run(name):
    # An ImageNet-length run (90 epochs of 1.28 M images at batch 256) does not change that.
    context = TrainingContext(samples=1_281_167, batch_size=256, epochs=90)
    assert errors(report_of(SCENARIOS / name, context)) == []


def test_resnet_recipe_angle_is_the_imagenet_order_of_magnitude():
    [f] = [f for f in report_of(SCENARIOS / "recipe_resnet_sgd.keras").findings if f.code == "RL009"][:1]
    # sqrt(4 * 0.1 * 1e-4 / 1.9): the ImageNet recipe's few thousandths of a radian per step.
    assert f.values["angular_update"] == pytest.approx(math.sqrt(4 * 0.1 * 1e-4 / 1.9))
    assert f.values["equilibrium_steps"] == pytest.approx(1 / (2 * 2 * 0.1 * 1e-4 / 0.1))


# -- the graph walk ---------------------------------------------------------------


def test_residual_gammas_are_absorbed_only_inside_a_branch():
    flags = penalty_flags(report_of(SCENARIOS / "scenario_residual_gamma_l2.keras"))
    model = report_of(SCENARIOS / "scenario_residual_gamma_l2.keras").model
    consumers = {}
    for layer in model.layers:
        for name in layer.inbound:
            consumers.setdefault(name, []).append(layer)
    for (path, var), (_, absorbed, counted) in flags.items():
        if var != "gamma":
            continue
        # the BatchNorm's output (through its ReLU, if any) reaches a residual Add
        after = consumers[path]
        if after[0].class_name == "ReLU":
            after = consumers[after[0].name]
        joins_add = any(layer.class_name == "Add" for layer in after)
        assert absorbed is not joins_add, path
        assert counted is joins_add, path
    absorbed = sum(1 for (_, var), f in flags.items() if var == "gamma" and f[1])
    assert absorbed == 4  # the first BatchNorm of each of the 4 blocks


def test_a_gamma_before_a_free_classifier_is_absorbed_before_a_penalized_one_is_not():
    # layernorm.keras: LayerNorm -> Dense head without a kernel regularizer
    flags = penalty_flags(report_of(KERAS_FIXTURES / "layernorm.keras"))
    assert flags[("layer_normalization", "gamma")][1] is True
    # scenario_norm_regularized.keras: BN -> ReLU -> pooling -> Dense head with L2 on its kernel
    flags = penalty_flags(report_of(KERAS_FIXTURES / "scenario_norm_regularized.keras"))
    assert flags[("bn", "gamma")] == (False, False, True)


def test_bias_penalties_are_not_counted_whatever_their_size():
    report = report_of(SCENARIOS / "scenario_lstm_bias_l2.keras")
    lstm_bias = next(p for p in report.analysis.penalties if p.layer.path == "lstm")
    # Keras' own penalty at the saved weights: 10 x 32 units x forget bias 1.
    assert lstm_bias.penalty_saved == pytest.approx(manifest()["scenario_lstm_bias_l2.keras"]["weight_penalty"])
    assert lstm_bias.offset and not lstm_bias.counted
    assert not [f for f in report.findings if f.code in ("RL001", "RL017")]
    assert errors(report) == []
