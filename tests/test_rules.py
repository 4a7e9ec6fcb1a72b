"""Each rule fires on a real model that has the problem and stays quiet on a
healthy one. Fixtures: fixtures/keras/scenario_*.keras (written by Keras)
and mutations of real files (tests/mutate.py)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from reglint.engine.analysis import Analysis, TrainingContext
from reglint.engine.finding import Severity
from reglint.engine.fmt import g
from reglint.engine.rule import all_rules, get_rule
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.readers import read_model

from helpers import FIXTURES, KERAS_FIXTURES
from mutate import add_extra_tensor, layer_configs, poison_first_kernel, rewrite_keras_zip, set_first_regularizer

HEALTHY = ["scenario_healthy_sgd.keras", "scenario_healthy.keras"]


def findings(name_or_path, code=None, context=None, **settings):
    path = name_or_path if not isinstance(name_or_path, str) else KERAS_FIXTURES / name_or_path
    report = lint_file(str(path), Settings(context=context or TrainingContext(), **settings))
    assert report.error is None, report.error
    return [f for f in report.findings if code is None or f.code == code]


def codes(name, **kw):
    return {f.code for f in findings(name, **kw)}


@pytest.mark.parametrize("healthy", HEALTHY)
def test_healthy_models_have_no_errors(healthy):
    assert not [f for f in findings(healthy) if f.severity is Severity.ERROR]


def test_sgd_healthy_model_is_clean():
    assert findings("scenario_healthy_sgd.keras") == []


# -- RL001 -------------------------------------------------------------------


def test_rl001_penalty_dominates_with_numbers_and_safe_lambda():
    [f] = findings("scenario_penalty_dominates.keras", "RL001")
    assert f.severity is Severity.ERROR
    assert f.values["penalty_ratio"] > 1
    assert math.isclose(f.values["data_loss_scale"], math.log(10), rel_tol=1e-9)
    assert f.values["penalty_ratio"] > 18  # L2(0.2): ~43x, past every calibration run's collapse point
    # The safe lambda brings the penalty down to the data loss (break-even).
    rho_after = f.values["penalty_ratio"] * f.values["lambda_scale_factor"]
    assert math.isclose(rho_after, 1.0, rel_tol=1e-6)
    assert "safe" not in f.message and "scale every lambda" in f.remedy


def test_rl001_quiet_on_healthy():
    assert findings("scenario_healthy_sgd.keras", "RL001") == []


def test_rl001_threshold_is_configurable():
    assert findings("scenario_penalty_dominates.keras", "RL001", thresholds={"penalty-ratio-error": 1e9,
                                                                            "penalty-ratio-warning": 1e9}) == []


def test_rl001_loss_scale_override_changes_the_ratio():
    [base] = findings("scenario_penalty_dominates.keras", "RL001")
    [scaled] = findings("scenario_penalty_dominates.keras", "RL001", context=TrainingContext(loss_scale=10.0))
    assert math.isclose(base.values["penalty_ratio"] * base.values["data_loss_scale"] / 10.0,
                        scaled.values["penalty_ratio"], rel_tol=1e-9)


# -- RL002 / RL003 / RL004 ---------------------------------------------------------


def test_rl002_sgd_unstable():
    found = findings("scenario_sgd_unstable.keras", "RL002")
    assert found and all(f.severity is Severity.ERROR for f in found)
    assert math.isclose(found[0].values["stability_fraction"], 2 * 0.5 * 5.0 / 3.8, rel_tol=1e-6)
    assert findings("scenario_healthy_sgd.keras", "RL002") == []


def test_rl024_shrink_over_one_flips_instead_of_halving():
    """At a per-step shrink of 50 the update overshoots zero: the message says
    so instead of 'halving every 0.014 steps' (as RL003 does from 1)."""
    [f] = findings("scenario_sgd_unstable.keras", "RL024")
    assert f.values["shrink_per_step"] == pytest.approx(2 * 0.5 * 5.0 / (1 - 0.9))
    assert "overshoots zero and flips the weights" in f.message and "halving" not in f.message
    assert f.values["halving_steps"] is None


def test_rl024_says_when_its_chain_is_the_longest_of_several_paths():
    """Review 57, 5: on a residual TCN RL024 said "10 layers in series",
    the longest path, though every block's skip gives a shorter one; a
    plain chain keeps its words. RL008 no longer says an offset "carries
    no capacity" (before a ReLU it is the threshold)."""
    [residual] = findings("residual_mlp_l2_sgd.keras", "RL024")
    assert "6 layers in series along the longest path" in residual.message
    assert "skip connections give shorter paths" in residual.message
    [plain] = findings("scenario_sgd_unstable.keras", "RL024")
    assert "along the longest path" not in plain.message and "skips" not in plain.message
    # review 59, 4: a skip that forks above the chain's first layer (from the input) is one
    [forked] = findings("residual_from_input_l2_sgd.keras", "RL024")
    assert "along the longest path" in forked.message and "skip connections" in forked.message
    # review 58, 7: an Add that merges a second input is no skip
    [merged] = findings("merge_independent_input_l2_sgd.keras", "RL024")
    assert "8 layers in series with no normalization" in merged.message and "skips" not in merged.message
    offsets = [f for f in findings("batchnorm.keras", "RL008") if f.target in ("beta", "bias")]
    assert offsets and all("carries no capacity" not in f.message and "threshold" in f.message for f in offsets)


def test_rl003_weight_decay_too_fast():
    [f] = findings("scenario_wd_too_fast.keras", "RL003")
    assert f.severity is Severity.ERROR
    assert math.isclose(f.values["shrink_per_step"], 0.01 * 50, rel_tol=1e-6)
    assert f.values["safe_weight_decay"] < 50
    assert findings("scenario_healthy.keras", "RL003") == []


def test_rl003_timescale_shorter_than_an_epoch_needs_context():
    # AdamW(1e-3, wd=0.01): 1e-5 per step. With 10M samples at batch 32 an
    # epoch is 312,500 steps, longer than the 100,000-step timescale.
    assert findings("scenario_decayed_twice.keras", "RL003") == []
    ctx = TrainingContext(samples=10_000_000, batch_size=32)
    [f] = findings("scenario_decayed_twice.keras", "RL003", context=ctx)
    assert f.severity is Severity.WARNING and f.values["timescale_epochs"] < 1


def test_rl003_adamw_bound_below_init_scale_is_an_error_even_with_a_small_step():
    # scenario_activity.keras: Adam 1e-3, kernels 64x512 and 512x10 (glorot).
    # AdamW wd=30 shrinks only 0.03 per step, but caps weights near 1/30,
    # below the kernels' init RMS (~0.06): wd * rms ~ 1.8.
    ctx = TrainingContext(optimizer="AdamW", learning_rate=1e-3, weight_decay=30.0, samples=1000,
                          batch_size=32, epochs=20)
    [f] = findings("scenario_activity.keras", "RL003", context=ctx)
    assert f.severity is Severity.ERROR and f.values["shrink_per_step"] < 0.05
    assert f.values["equilibrium_ratio"] >= 1.7 and "1/wd" in f.message
    # its remedy keeps both the bound (half of 1.7) and the per-step shrink (half the warning) safe
    safe = f.values["safe_weight_decay"]
    assert safe * f.values["equilibrium_ratio"] / 30.0 <= 0.85 + 1e-9 and safe * 1e-3 <= 0.005 + 1e-12
    # wd = 3: q ~ 0.18, shrink 0.003: quiet
    ctx.weight_decay = 3.0
    assert findings("scenario_activity.keras", "RL003", context=ctx) == []
    # a run too short to reach the bound (eta*wd*T < 1) is not an error
    short = TrainingContext(optimizer="AdamW", learning_rate=1e-3, weight_decay=30.0, steps=20)
    assert all(f.severity is not Severity.ERROR for f in findings("scenario_activity.keras", "RL003", context=short))


def test_rl003_says_the_runs_integrated_decay_and_what_its_fix_leaves():
    """Review 67, 3 and 2: the integrated decay ``D = r*T`` of a run whose
    length is given was in the JSON only, and the fix ("weight_decay <=
    1.67") read as safe where over a 300-step run it still left D = 1.5
    (AdamW at lr 0.003: 61% of a TCN's margin lost, a U-Net at chance)."""
    ctx = TrainingContext(optimizer="AdamW", learning_rate=3e-3, weight_decay=5.0, steps=300)
    [f] = findings("scenario_activity.keras", "RL003", context=ctx)
    assert f.values["decay_integral"] == pytest.approx(4.5)
    assert ("over the 300 steps of the training, D = 4.5, and at the halving above an unsupported weight ends at "
            "0.011 of itself") in f.message
    safe = f.values["safe_weight_decay"]
    assert safe == pytest.approx(0.005 / 3e-3)
    assert f"(over the 300 steps still D = {g(safe * 3e-3 * 300, 2)}: reglint profile --data" in f.remedy
    # without a length no D is claimed; a fix that leaves D under 1 says nothing more
    [bare] = findings("scenario_activity.keras", "RL003", context=TrainingContext(
        optimizer="AdamW", learning_rate=3e-3, weight_decay=5.0))
    assert "D =" not in bare.message and "still D" not in bare.remedy
    [short] = findings("scenario_activity.keras", "RL003", context=TrainingContext(
        optimizer="AdamW", learning_rate=3e-3, weight_decay=5.0, steps=100))
    assert "D = 1.5" in short.message and "still D" not in short.remedy


def test_rl003_says_no_integrated_decay_where_a_step_flips_the_weights_and_takes_a_schedules_peak():
    """Review 68, 5-6: "zeroes or flips the weights every step" then "ends
    at 3.7e-196 of itself" (a weight multiplied by 1 - 1.5 each step is
    not exp(-D) of itself), "ends at 0" where exp(-D) underflowed, and a
    cosine schedule's D taken at its peak without a word."""
    flip = TrainingContext(optimizer="AdamW", learning_rate=0.5, weight_decay=3.0, steps=300)
    [f] = findings("scenario_activity.keras", "RL003", context=flip)
    assert "zeroes or flips the weights every step" in f.message and "D =" not in f.message
    long = TrainingContext(optimizer="AdamW", learning_rate=0.3, weight_decay=0.5, steps=3000)
    [f] = findings("scenario_activity.keras", "RL003", context=long)
    # 0.85^3000, not exp(-450)
    assert "D = 450, and at the halving above an unsupported weight ends at exp(-488) of itself" in f.message
    # review 69, 2: what is left is the halving the message states, T/H times (SGD momentum, 80 steps)
    [f] = findings(FIXTURES / "keras_optimizers" / "const_sgd_wd.keras", "RL003", context=TrainingContext(steps=80))
    halving = float(re.search(r"halves an unsupported weight every ([0-9.]+) steps", f.message).group(1))
    left = float(re.search(r"ends at ([0-9.e+-]+) of itself", f.message).group(1))
    assert left == pytest.approx(0.5 ** (80 / halving), rel=0.1)
    cosine = FIXTURES / "keras_optimizers" / "sched_cosine_alpha.keras"
    [f] = findings(cosine, "RL003", context=TrainingContext(weight_decay=0.05, steps=300))
    assert ("at most (at the peak learning rate of its CosineDecay), and at the halving above an unsupported weight "
            "ends at no less than") in f.message


def test_rl025_names_every_kernel_the_table_feeds_first():
    """Review 67, 6: a Wide&Deep model's table feeds the output Dense
    directly and a deep tower's first Dense; the words named the first path
    only, while the fix changed both."""
    [f] = findings("scenario_embedding_wide_deep.keras", "RL025")
    assert "the kernels it feeds first (deep_1; head on other paths)" in f.message
    assert {c.layer for c in f.fix.changes} >= {"deep_1", "head"}
    [single] = findings("scenario_embedding_chain_sgd.keras", "RL025")
    assert "on other paths" not in single.message


def test_rl004_l1_jitter():
    found = findings("scenario_l1_jitter.keras", "RL004")
    assert found and found[0].values["l1_step_ratio"] >= 0.1
    assert math.isclose(found[0].values["l1_step"], 0.5 * 0.05, rel_tol=1e-6)
    assert findings("scenario_healthy_sgd.keras", "RL004") == []


# -- RL005 ---------------------------------------------------------------------


def test_rl005_weight_decay_inert_over_the_run():
    ctx = TrainingContext(steps=100)
    [f] = findings("scenario_decayed_twice.keras", "RL005", context=ctx)
    assert math.isclose(f.values["decay_integral"], 1e-3 * 0.01 * 100, rel_tol=1e-6)


def test_rl005_weak_penalty_under_sgd(tmp_path):
    # The healthy SGD model with its lambdas divided by 1e6.
    def weaken(cfg):
        from mutate import layer_configs

        for layer in layer_configs(cfg):
            reg = layer.get("kernel_regularizer")
            if isinstance(reg, dict):
                reg["config"]["l2"] = reg["config"]["l2"] * 1e-6

    path = rewrite_keras_zip(KERAS_FIXTURES / "scenario_healthy_sgd.keras", tmp_path / "weak.keras", config=weaken)
    found = findings(path, "RL005")
    assert found and all(f.values["penalty_share"] < 1e-4 for f in found)
    assert findings("scenario_healthy_sgd.keras", "RL005") == []


# -- RL006 - RL011 -------------------------------------------------------------------


def test_rl005_names_a_zero_regularizer_as_it_was_written():
    """Review 54: an L2(0.0) was told "L2 with l1 = l2 = 0" and pointed at
    Keras 3's 'l1l2' string; that hint is for an L1L2 with both factors 0."""
    by_target = {f.target: f for f in findings("zero_factor_regularizers.keras", "RL005")}
    assert by_target["kernel"].message == "kernel: L2(0) adds nothing"
    assert by_target["kernel"].remedy == "remove it, or set the factor you meant"
    assert by_target["bias"].message == "bias: L1L2 with l1 = l2 = 0 adds nothing"
    assert "the Keras 3 string 'l1l2' is L1L2(0, 0)" in by_target["bias"].remedy


def test_rl006_decayed_twice():
    found = findings("scenario_decayed_twice.keras", "RL006")
    assert found and found[0].values["weight_decay"] == 0.01
    assert findings("scenario_healthy.keras", "RL006") == []


def test_rl007_coupled_under_adam():
    [f] = findings("scenario_adam_coupled_l2.keras", "RL007")
    assert f.values["optimizer"] == "Adam"
    assert findings("scenario_healthy_sgd.keras", "RL007") == []


def test_rl008_norm_bias_embedding_regularized():
    targets = {f.target for f in findings("scenario_norm_regularized.keras", "RL008")}
    assert {"gamma", "beta", "bias"} <= targets
    assert {f.target for f in findings("scenario_embedding_regularized.keras", "RL008")} == {"embeddings"}
    assert findings("scenario_healthy_sgd.keras", "RL008") == []


def test_rl009_l2_before_batchnorm():
    [f] = findings("scenario_l2_before_bn.keras", "RL009")
    assert f.layer and f.target == "kernel"
    assert findings("scenario_healthy_sgd.keras", "RL009") == []


def test_rl009_kernels_feeding_bn_are_left_out_of_rl001():
    report = lint_file(str(KERAS_FIXTURES / "scenario_l2_before_bn.keras"), Settings())
    invariant = [p for p in report.analysis.penalties if p.scale_invariant]
    assert invariant
    assert report.analysis.total_penalty_init() < report.analysis.total_penalty_init(include_invariant=True)


def test_kernels_joined_by_concatenate_into_batchnorm_are_scale_invariant():
    """Review 51: a DenseNet block (conv -> Concatenate -> BN) under SGD
    with L2 0.1 collapsed with no finding at all: the Concatenate stopped
    the walk, so no kernel counted as scale-invariant. BatchNorm normalises
    each channel on its own, so each joined input keeps its invariance; a
    LayerNorm after the join mixes them, and its kernels stay counted."""
    bn = lint_file(str(KERAS_FIXTURES / "densenet_concat_bn.keras"), Settings())
    invariant = {p.layer.path for p in bn.analysis.penalties if p.scale_invariant}
    convs = {layer.path for layer in bn.analysis.model.layers if layer.class_name == "Conv2D"}
    assert len(convs) == 3 and invariant == convs
    assert {f.layer for f in bn.findings if f.code == "RL009"} == convs
    [angle] = [f for f in bn.findings if f.code == "RL021"]
    assert set(angle.values["layers"]) == convs and angle.values["angular_update"] > 0.09
    ln = lint_file(str(KERAS_FIXTURES / "densenet_concat_ln.keras"), Settings())
    stem = next(layer.path for layer in ln.analysis.model.layers if layer.class_name == "Conv2D")
    assert stem not in {p.layer.path for p in ln.analysis.penalties if p.scale_invariant}


def test_squared_error_behind_a_sigmoid_lowers_the_pull_gate_by_twice_the_target_variance():
    """Review 53: a digits autoencoder (sigmoid reconstruction, MSE) with L2
    0.1 under Adam stayed at R^2 0 in 3 of 3 seeds with an RL001 warning
    (44x, a pull of 0.2 under the cross-entropy gate 0.4). Behind a sigmoid
    or softmax MSE's gradient on a logit is 2*(p - y)*p*(1 - p): the gate
    scales by 2*v, v the target variance per unit (0.25 at a sigmoid's
    bound; bench/bounded_mse_probe.py: such models collapsed from L2 0.01-0.1
    under Adam and RMSprop)."""
    [rl001] = findings("mse_autoencoder_sigmoid_l2_adam.keras", "RL001")
    assert rl001.severity is Severity.ERROR and rl001.values["pull_per_weight"] == pytest.approx(0.2)
    # --target-var moves the data-loss scale, not the gate: p*(1 - p) is the variance of 0/1 targets only
    # (review 55: a sigmoid regressor on targets of variance 0.0105 trained at an L2 the gate at 2*0.0105 erred on)
    scaled = findings("mse_autoencoder_sigmoid_l2_adam.keras", "RL001", context=TrainingContext(target_var=0.0105))
    assert [f.severity for f in scaled] == [Severity.ERROR] and "is under" not in scaled[0].message
    small = findings("mse_mlp_l2_adam.keras", "RL001", context=TrainingContext(target_var=0.0105))
    assert small and "0.5x the gate" not in small[0].message
    # RL007's chain level is not lowered behind a sigmoid (review 55: a 64-1 breast classifier at L2 0.1 trained)
    [rl007] = findings("mse_autoencoder_sigmoid_l2_adam.keras", "RL007")
    assert rl007.severity is Severity.WARNING
    # under SGD the gate stays (the per-step shrink decides as well)
    sgd = findings("mse_autoencoder_sigmoid_l2_adam.keras", "RL001", context=TrainingContext(optimizer="SGD"))
    assert [f.severity for f in sgd] == [Severity.WARNING] and "is under 0.4" in sgd[0].message


def test_squared_error_under_an_adaptive_optimizer_doubles_the_pull_gates():
    """Review 51: a diabetes MLP with L2 0.3 under Adam (25x the data loss,
    pull 0.6) trained healthy, with RL001 and RL007 errors. MSE's gradient
    2*(p - y) is twice cross-entropy's, and Adam weighs the two gradients
    against each other: under an adaptive optimizer the gates double for
    MSE (0.8). bench/regression_probe.py: at L2 0.3 12 of 12 runs stayed off
    chance under Adam and RMSprop, from L2 1 24 of 24 collapsed; under SGD
    momentum 4 of 6 collapsed at 0.3, and the gate stays."""
    adam = findings("mse_mlp_l2_adam.keras")
    assert {(f.code, f.severity) for f in adam if f.code in ("RL001", "RL007")} == {
        ("RL001", Severity.WARNING), ("RL007", Severity.WARNING)}
    [rl001] = [f for f in adam if f.code == "RL001"]
    assert "is under 0.8 (2x the gate" in rl001.message
    # targets of variance 1.21: the gradient is 2.2x cross-entropy's, and the message says so (rho 20.7)
    wide = findings("mse_mlp_l2_adam.keras", "RL001", context=TrainingContext(target_var=1.21))
    assert "is under 0.88 (2.2x the gate" in wide[0].message
    sgd = findings("mse_mlp_l2_sgd.keras", "RL001")
    assert [f.severity for f in sgd] == [Severity.ERROR]
    # review 52: behind a sigmoid MSE's gradient is smaller than cross-entropy's, and targets of variance
    # 0.01 on a linear output give a gradient 0.2x as large (that gate is never lowered under the grids' 0.4)
    assert {f.code for f in findings("mse_mlp_sigmoid_l2_adam.keras") if f.severity is Severity.ERROR} >= {
        "RL001", "RL007"}
    small = findings("mse_mlp_l2_adam.keras", context=TrainingContext(target_var=0.01))
    assert {f.code for f in small if f.severity is Severity.ERROR} >= {"RL001", "RL007"}
    # a cross-entropy classifier keeps its error
    assert Severity.ERROR in {f.severity for f in findings("scenario_penalty_dominates.keras", "RL001")}


def test_rl011_inconsistent_lambdas():
    [f] = findings("scenario_inconsistent.keras", "RL011")
    assert math.isclose(f.values["spread"], 1e-2 / 1e-5, rel_tol=1e-6)
    assert findings("scenario_healthy.keras", "RL011") == []


# -- RL012 / RL013 / RL019: mutated real files ---------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), -0.01, "abc", None, float("inf")])
def test_rl012_invalid_lambda(tmp_path, value):
    path = rewrite_keras_zip(KERAS_FIXTURES / "scenario_healthy_sgd.keras", tmp_path / "bad.keras",
                             config=lambda cfg: set_first_regularizer(cfg, value))
    found = findings(path, "RL012")
    assert len(found) == 1 and found[0].severity is Severity.ERROR
    assert findings("scenario_healthy_sgd.keras", "RL012") == []


def test_rl013_nonfinite_weights(tmp_path):
    path = rewrite_keras_zip(KERAS_FIXTURES / "scenario_healthy_sgd.keras", tmp_path / "nan.keras",
                             weights=poison_first_kernel)
    [f] = findings(path, "RL013")
    assert f.values["nonfinite"] == 1
    assert findings("scenario_healthy_sgd.keras", "RL013") == []


def test_rl019_config_weights_mismatch(tmp_path):
    path = rewrite_keras_zip(KERAS_FIXTURES / "scenario_healthy_sgd.keras", tmp_path / "extra.keras",
                             weights=lambda h5: add_extra_tensor(h5, "layers/dense"))
    found = findings(path, "RL019")
    assert found and "3 tensors" in found[0].message
    assert findings("scenario_healthy_sgd.keras", "RL019") == []


# -- RL014 - RL017 -----------------------------------------------------------------------


def test_rl014_custom_regularizer_and_mapping():
    assert len(findings("scenario_custom_regularizer.keras", "RL014")) == 3
    ctx = TrainingContext(custom_regularizers={"acme>ScaledL2": {"kind": "l2", "factor": "l2", "scale": 2.0}})
    report = lint_file(str(KERAS_FIXTURES / "scenario_custom_regularizer.keras"), Settings(context=ctx))
    assert not [f for f in report.findings if f.code == "RL014"]
    assert all(math.isclose(p.l2, 0.002) for p in report.analysis.penalties)


def test_rl015_orthogonal_on_conv():
    [f] = findings("scenario_orthogonal_conv.keras", "RL015")
    assert f.values["rank"] == 4
    assert findings("orthogonal_dense.keras", "RL015") == []


def test_rl016_regularizer_on_frozen_layer():
    [f] = findings("scenario_frozen_regularized.keras", "RL016")
    assert f.layer == "frozen" and f.values["penalty_saved"] > 0
    assert findings("scenario_healthy.keras", "RL016") == []


def test_rl017_collapsed_after_training():
    [f] = findings("scenario_collapsed.keras", "RL017")
    assert f.values["max_kappa"] < 0.01 and f.values["iterations"] > 0
    assert findings("scenario_healthy_sgd.keras", "RL017") == []


# -- registry and docs -------------------------------------------------------------------


def test_every_rule_documents_itself_in_ruff_sections():
    for code, rule in all_rules().items():
        doc = rule.documentation()
        assert doc.startswith(f"# {rule.name} ({code})"), code
        for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead",
                        "## Options", "## Formula", "## Thresholds and calibration", "## References"):
            assert section in doc, (code, section)
        for option in rule.options:
            assert f"``{option}``" in doc, (code, option)


def test_get_rule_by_code_or_name():
    assert get_rule("rl001").code == "RL001"
    assert get_rule("penalty-dominates-loss").code == "RL001"
    assert get_rule("nope") is None


def test_rl010_activity_penalty_matches_keras():
    # Keras 3.15.1 measured 57.13 per sample (sum(model.losses) after calls on
    # 20,000 standard-normal inputs) for this file's L2(1.0) activity penalty.
    [f] = findings("scenario_activity.keras", "RL010")
    assert f.severity is Severity.ERROR
    assert math.isclose(f.values["penalty_per_sample"], 57.13, rel_tol=0.05)
    assert f.values["batch_factor"] == 1  # Keras 3.15 divides by the batch size
    assert findings("scenario_healthy.keras", "RL010") == []


def test_rl005_weak_l2_under_sgd_fixture():
    found = findings("scenario_too_weak.keras", "RL005")
    assert len(found) == 3 and all(f.values["penalty_share"] < 1e-6 for f in found)


def test_rl005_leaves_invalid_factors_to_rl012():
    found = findings(FIXTURES / "rules" / "tfk_negative_l2.h5")
    assert {f.code for f in found} >= {"RL012"}
    assert not [f for f in found if f.code == "RL005"]


def test_rl004_leaves_zero_initialised_offsets_to_rl008():
    """An L1 bias after one SGD step has moved ~1e-3 from its zero start:
    its mean |w| is no scale for the L1 kick (RL004 flagged it, an error at
    smaller steps), while RL008 still names the bias penalty."""
    report = lint_file(str(KERAS_FIXTURES / "l1_bias_one_step.keras"), Settings())
    codes = [f.code for f in report.findings]
    assert "RL004" not in codes
    assert codes.count("RL008") == 1


def test_rl017_names_ftrl_own_l1_as_the_cause():
    """Ftrl's l1_regularization_strength 0.01 zeroed a net whose layers'
    L2(1e-3) is 1% of the data loss: RL017 blamed the layers' lambda."""
    report = lint_file(str(KERAS_FIXTURES / "ftrl_l1_one_step.keras"), Settings())
    (rl017,) = [f for f in report.findings if f.code == "RL017"]
    assert rl017.values["optimizer_l1"] == pytest.approx(0.01)
    assert "Ftrl's own l1_regularization_strength 0.01" in rl017.message
    assert "l1_regularization_strength" in (rl017.remedy or "") and "smaller lambda" not in (rl017.remedy or "")
    assert "RL001" not in [f.code for f in report.findings]  # the layers' penalty is not the problem


def test_rl017_does_not_judge_a_one_weight_kernel():
    """A single weight drawn 0.08 sd from zero and trained one step is a
    draw, not a collapse (RL017 called it an error): kernels under 8 weights
    are not judged."""
    report = lint_file(str(KERAS_FIXTURES / "one_weight_kernel_small_draw.keras"), Settings())
    assert "RL017" not in [f.code for f in report.findings]
    kernel = report.model.layers[0].variables[0]
    assert kernel.stats.sum_sq / 0.05 ** 2 < 0.01  # the saved kernel is below RL017's 1% of its expected square


def test_rl005_fix_on_a_short_run_stays_within_rl003():
    """weight_decay 0.01 at lr 1e-3 over 7 steps decays nothing (RL005);
    D = 1 would need weight_decay 143, a shrink of 0.143 per step that RL003
    flags. The fix stops at RL003's safe shrink and says the run is too
    short; applied, neither rule fires at error level."""
    short = TrainingContext(steps=7)
    [f] = findings("scenario_decayed_twice.keras", "RL005", context=short)
    [change] = f.fix.changes
    assert change.suggested == pytest.approx(5.0)  # 0.005 per step / lr 1e-3
    assert "too short" in f.remedy
    applied = findings("scenario_decayed_twice.keras", context=TrainingContext(steps=7, weight_decay=change.suggested))
    assert not [x for x in applied if x.code == "RL003"]
    # a long run still gets D = 1
    [long] = findings("scenario_decayed_twice.keras", "RL005", context=TrainingContext(steps=500))
    assert long.fix.changes[0].suggested == pytest.approx(1.0 / (1e-3 * 500))


@pytest.mark.parametrize(("key", "value", "says"), [("learning_rate", float("inf"), "learning_rate is inf"),
                                              ("learning_rate", -0.1, "learning_rate is -0.1"),
                                              ("momentum", 2.0, "momentum is 2.0: a heavy-ball momentum above 1")])
def test_invalid_optimizer_settings_are_rl012s_alone(tmp_path, key, value, says):
    """A saved optimizer with lr inf, a negative lr or momentum 2 (Keras' SGD
    refuses momentum outside [0, 1]): RL012 says so, and no rule computes a
    shrink or a stability bound from the value."""
    from mutate import rewrite_keras_zip

    def edit(cfg):
        cfg["compile_config"]["optimizer"]["config"][key] = value

    path = rewrite_keras_zip(KERAS_FIXTURES / "dense_l2.keras", tmp_path / "bad_opt.keras", config=edit)
    found = findings(path)
    errors = [f for f in found if f.severity is Severity.ERROR]
    assert [f.code for f in errors] == ["RL012"] and says in errors[0].message, [(f.code, f.message) for f in found]


def test_rl025_small_table_feeding_penalized_kernels_is_an_error():
    """Keras' default table (uniform +-0.05, RMS 0.05/sqrt(3)) with L2 0.1,
    feeding two penalized Dense layers in series: an error, and the fix drops
    the table's L2 and sets each kernel's to half the warning level, 0.015,
    or under SGD lower, to where the kernels' own shrink is half its warning
    level (0.0075 * 0.1 / 0.06 = 0.0125), so that the fix leaves neither
    judgement firing (review 47, D3: 0.015 at lr 0.1 was a warning again)."""
    [f] = findings("scenario_embedding_chain_sgd.keras", "RL025")
    assert f.severity is Severity.ERROR
    assert f.values["table_rms"] == pytest.approx(0.05 / math.sqrt(3))
    assert f.values["fed_layers"] == ["dense", "dense_1"] and f.values["strength"] == pytest.approx(0.1)
    changes = {(c.layer, c.parameter): c.suggested for c in f.fix.changes}
    assert changes == {("embedding", "regularizer"): None, ("dense", "lambda"): 0.0125, ("dense_1", "lambda"): 0.0125}
    [adam] = findings("scenario_embedding_chain_adam.keras", "RL025")  # no SGD shrink: half the warning level
    assert {c.suggested for c in adam.fix.changes if c.parameter == "lambda"} == {0.015}


def test_rl025_levels_follow_the_weaker_lambda_and_the_options():
    """The error needs both lambdas at 0.1: raising the error level to 0.2
    leaves a warning (0.1 >= 0.03), raising the warning above 0.1 leaves none."""
    quiet = {"table-kernels-shrink-error": 1.0, "table-kernels-shrink-warning": 1.0,  # the SGD shrinks' branches
             "table-and-kernels-shrink-error": 1.0}
    [f] = findings("scenario_embedding_chain_sgd.keras", "RL025", thresholds={"embedding-chain-error": 0.2, **quiet})
    assert f.severity is Severity.WARNING and not f.values["kernels_alone"]
    assert findings("scenario_embedding_chain_sgd.keras", "RL025",
                    thresholds={"embedding-chain-error": 0.5, "embedding-chain-warning": 0.2, **quiet}) == []


def test_rl025_kernels_alone_after_a_small_table_under_sgd():
    """Review 46 / bench/emb_probe.py: with the table unpenalized, the
    kernels' L2(0.1) alone under SGD(0.03, momentum 0.9) (a shrink of 0.06
    per step) collapsed every family the probe trained (flattened, bag of
    tokens, LSTM, Conv1D; 12 of 12), and RL025 needed the table's L2 to
    fire. The fix sets each kernel's L2 to a shrink of 0.0075 per step:
    0.0075 * (1 - 0.9) / (2 * 0.03) = 0.0125."""
    [f] = findings("scenario_embedding_kernels_sgd.keras", "RL025")
    assert f.severity is Severity.ERROR and f.values["kernels_alone"] and f.values["table_l2"] == 0.0
    assert f.values["kernel_shrink_per_step"] == pytest.approx(0.06)
    assert "carries no penalty" in f.message and "shrinks them 0.06 per step" in f.message
    changes = {(c.layer, c.parameter): c.suggested for c in f.fix.changes}
    assert changes == pytest.approx({("dense", "lambda"): 0.0125, ("dense_1", "lambda"): 0.0125})
    [w] = findings("scenario_embedding_kernels_sgd.keras", "RL025", thresholds={"table-kernels-shrink-error": 0.1})
    assert w.severity is Severity.WARNING


def test_rl025_a_free_layer_between_table_and_kernels_breaks_the_chain(tmp_path):
    """An unpenalized trainable layer after the table can grow to re-scale
    its signal: every chain the calibration trained had a penalized kernel
    right after the table. The tagger (table -> unpenalized LSTM ->
    penalized classifier, SGD 0.1 momentum 0.9) is not one; nor is the SGD
    chain with its first Dense's L2 removed (it erred on the classifier
    alone through the free Dense)."""
    assert findings(FIXTURES / "keras_containers" / "td_tagger.keras", "RL025") == []

    def free_first_dense(cfg):
        for layer in layer_configs(cfg):
            if layer.get("name") == "dense":
                layer["kernel_regularizer"] = None

    path = rewrite_keras_zip(KERAS_FIXTURES / "scenario_embedding_chain_sgd.keras", tmp_path / "free.keras",
                             config=free_first_dense)
    assert findings(path, "RL025") == []
    assert findings("scenario_embedding_chain_sgd.keras", "RL025")  # the same chain with dense penalized


def _without_regularizer(tmp_path, fixture, layer_name, key="kernel_regularizer"):
    def edit(cfg):
        for layer in layer_configs(cfg):
            if layer.get("name") == layer_name:
                layer[key] = None

    return rewrite_keras_zip(KERAS_FIXTURES / fixture, tmp_path / f"no_{layer_name}_{key}.keras", config=edit)


def test_rl025_judges_the_kernels_the_table_feeds_first(tmp_path):
    """The kernels whose inputs are the table's small signal decide.
    Review 47: an unpenalized classifier after them trained on digits
    (0.89-0.91) where review 48's (on a task read from one token) collapsed:
    mixed evidence, so a path that passes an unpenalized layer after the
    first kernels is a warning, never an error. An unpenalized *first*
    layer (or an LSTM whose input kernel is free) can grow to re-scale the
    signal: no finding (review 47: 0.95-0.98)."""
    [w] = findings(_without_regularizer(tmp_path, "scenario_embedding_kernels_sgd.keras", "dense_1"), "RL025")
    assert w.severity is Severity.WARNING and w.values["complete_chain"] is False
    assert findings(_without_regularizer(tmp_path, "scenario_embedding_kernels_sgd.keras", "dense"), "RL025") == []
    assert findings(_without_regularizer(tmp_path, "scenario_embedding_lstm_sgd.keras", "lstm"), "RL025") == []


def test_rl025_follows_the_tables_call_of_a_shared_layer():
    """Review 48, D3: the walk went by layers, so a Dense shared by the
    table's branch (-> out1) and a numeric input (-> out2) joined them, and
    the chain was named (S, out2), a path the table's signal never takes,
    with out2's L2 lowered by the fix. The walk follows calls (Keras'
    inbound nodes): S's first call feeds out1 only."""
    [f] = findings("embedding_shared_dense_branches.keras", "RL025")
    assert f.severity is Severity.ERROR and "every kernel on to the output (S, out1)" in f.message
    assert "out2" not in f.message
    lowered = {(c.layer, c.target) for c in f.fix.changes if c.parameter == "lambda"}
    assert lowered == {("S", "kernel")}  # out1's 0.01 is under the aim; out2 is not on the table's path


def test_rl025_a_shared_layer_is_an_output_only_on_the_call_the_model_returns():
    """Review 55: every call of a shared layer counted as a model output, so
    the table's chain through H's first call (into an unpenalized head)
    "reached the output" at H and was an error; the model returns H's
    second call (output_layers ['H', 1, 0])."""
    from reglint.readers import read_model

    path = KERAS_FIXTURES / "embedding_shared_output_call.keras"
    assert [(o.layer, o.ref.node if o.ref else None) for o in read_model(path).outputs] == [("F_free", 0), ("H", 1)]
    [f] = findings("embedding_shared_output_call.keras", "RL025")
    assert f.severity is Severity.WARNING and "only unpenalized layers follow them" in f.message


@pytest.mark.parametrize(("name", "tower"), [("embedding_nested_tower_output_call.keras", "tower"),
                                         ("embedding_sequential_tower_output_call.keras", "stower")])
def test_rl025_a_nested_model_called_twice_is_an_output_only_on_the_call_returned(name, tower):
    """Review 56, 2: the shared layer sat inside a tower model the model
    calls twice (the siamese layout), so the layer ran once per call but
    was recorded once; the walk joined the calls and the table's chain,
    through the tower's first call into an unpenalized head, "reached the
    output" at the tower's second call: an error. The call graph copies the
    tower per call; Keras 3 numbers a Functional's calls in output lists
    from 1 and a Sequential's from 0."""
    from reglint.readers import read_model

    model = read_model(KERAS_FIXTURES / name)
    calls = Analysis(model).calls
    assert calls is not None and calls.keys[f"{tower}/H"] == [f"{tower}/H#call0", f"{tower}/H#call1"]
    assert [n.path for n in calls.outbound["D1"]] == [f"{tower}/H#call0"]
    assert [n.path for n in calls.outbound["x"]] == [f"{tower}/H#call1"]
    assert [n.path for n in calls.outbound[f"{tower}/H#call0"]] == ["F_free"]
    assert calls.outputs == [["F_free"], [f"{tower}/H#call1"]]
    [f] = findings(name, "RL025")
    assert f.severity is Severity.WARNING and "only unpenalized layers follow them" in f.message


def test_rl025_a_keras_3_json_architecture_numbers_a_sequentials_calls_from_0(tmp_path):
    """Review 58, 6: model.to_json() records Keras "3" without a minor, so
    the Sequential tower's numbering was unknown and its returned call
    ['stower', 1, 0] was every call again (an error). The .keras file's
    config.json is what to_json() writes."""
    import zipfile

    with zipfile.ZipFile(KERAS_FIXTURES / "embedding_sequential_tower_output_call.keras") as archive:
        (tmp_path / "arch.json").write_bytes(archive.read("config.json"))
    model = read_model(tmp_path / "arch.json")
    assert model.framework_version == "3" and [c.outputs_count_from for c in model.containers] == [0]
    [f] = findings(tmp_path / "arch.json", "RL025")
    assert f.severity is Severity.WARNING


def test_rl025_a_weak_last_kernel_does_not_hide_the_chain(tmp_path):
    """Review 48, D2: table and first Dense at L2 1, the classifier lowered
    to 0.01, under Adam: judged by its weakest link (0.01) the chain went
    quiet, yet such a model collapsed as the fully penalized one does. The
    first kernels decide; the classifier's small L2 still completes the
    chain (an error)."""
    def weak_head(cfg):
        for layer in layer_configs(cfg):
            if layer.get("name") == "dense_1":
                layer["kernel_regularizer"]["config"]["l2"] = 0.01

    path = rewrite_keras_zip(KERAS_FIXTURES / "scenario_embedding_chain_adam.keras", tmp_path / "weak_head.keras",
                             config=weak_head)
    [f] = findings(path, "RL025")
    assert f.severity is Severity.ERROR and f.values["complete_chain"] and f.values["kernel_l2"] == 1.0


def test_rl025_fix_covers_every_tensor_of_the_chain():
    """Review 47, D3: one tensor per layer was kept, so the LSTM's
    recurrent kernel stayed at 0.1 after the fix and the fixed model erred
    again. A recurrent layer's L2 is removed, not lowered: the probe's LSTM
    chains collapsed under SGD momentum at L2 0.01, under the aim, and
    review 47's LSTM at the aim (0.0125) collapsed too."""
    [f] = findings("scenario_embedding_lstm_sgd.keras", "RL025")
    assert f.severity is Severity.ERROR and f.values["fed_layers"] == ["lstm", "dense"]
    changes = {(c.layer, c.target): (c.current, c.suggested) for c in f.fix.changes}
    assert changes == {("lstm", "kernel"): (0.1, None), ("lstm", "recurrent_kernel"): (0.1, None),
                       ("dense", "kernel"): (0.1, 0.0125)}
    assert "a recurrent layer's removed" in f.fix.aim


def test_rl025_an_lstm_with_its_input_kernel_penalized_is_a_link():
    """``LSTM(kernel_regularizer=L2(0.1))``, the recurrent kernel free: the
    layer weighed its weakest kernel tensor (0) and RL025 said nothing,
    yet such chains collapsed 9 of 9 under SGD momentum. The recurrent
    kernel multiplies the state, not the table's signal: the input kernel
    is the link, and the fix removes the LSTM's L2 (a recurrent layer's)."""
    [f] = findings("scenario_embedding_lstm_input_l2_sgd.keras", "RL025")
    assert f.severity is Severity.ERROR and f.values["kernel_shrink_per_step"] == pytest.approx(0.06)
    assert f.values["fed_layers"][0] == "lstm"
    assert ("regularizer", "lstm", "kernel") in {(c.parameter, c.layer, c.target) for c in f.fix.changes}


def test_rl025_tables_sharing_a_path_are_one_finding():
    """Review 47, D5: a token and a position table feeding the same kernels
    gave two errors with the same fix; one finding names both."""
    [f] = findings("scenario_embedding_two_tables_sgd.keras", "RL025")
    assert f.values["tables"] == ["tok", "pos"] and "tables of tok and pos start" in f.message


def test_rl025_weight_decay_in_the_shrink_is_named_and_fixed():
    """Review 47, D2: 0.03 of the 0.036 per step came from weight_decay 1,
    which decays the table too (0.03 per step), yet the message named only
    the L2 and the fix removed it. The message names the decay, the table's
    own shrink is in the values, and the fix lowers the decay to half the
    aim (0.0075 / 2 / 0.03 = 0.125), the L2 taking the other half
    (0.00375 * 0.1 / 0.06 = 0.00625). A warning: the two shrinking together
    at 0.03 collapsed the probe's runs and not review 52's flattened ones;
    with the pair's level at 0.025 it is an error naming the table's decay."""
    [f] = findings("scenario_embedding_kernels_sgd_wd.keras", "RL025")
    assert f.severity is Severity.WARNING and f.values["cause"] == "kernels" and "weight_decay 1)" in f.message
    assert f.values["kernel_shrink_per_step"] == pytest.approx(0.036)
    assert f.values["table_shrink_per_step"] == pytest.approx(0.03)
    [e] = findings("scenario_embedding_kernels_sgd_wd.keras", "RL025",
                   thresholds={"table-and-kernels-shrink-error": 0.025})
    assert e.severity is Severity.ERROR and e.values["cause"] == "together"
    assert "shrinks it 0.03 per step (the weight decay, unless the table was excluded" in e.message
    changes = {(c.parameter, c.layer): c.suggested for c in f.fix.changes}
    assert changes == {("weight_decay", None): 0.125, ("lambda", "dense"): 0.00625, ("lambda", "dense_1"): 0.00625}
    assert "exclude the table from weight_decay" in f.remedy


def test_rl025_table_and_kernels_shrinking_together_under_sgd():
    """L2(0.05) on the table and the kernels under SGD(0.03, momentum 0.9):
    each shrinks 0.03 per step. The probe's runs where both shrank 0.03 per
    step collapsed 24 of 24, review 52's flattened models 0 of 6: a warning
    at the default level (0.06, where every run of both failed); at 0.025
    the pair is the error, its message naming the table's own shrink."""
    [w] = findings("scenario_embedding_chain_sgd_l2_005.keras", "RL025")
    assert w.severity is Severity.WARNING and w.values["together_shrink_per_step"] == pytest.approx(0.03)
    [f] = findings("scenario_embedding_chain_sgd_l2_005.keras", "RL025",
                   thresholds={"table-and-kernels-shrink-error": 0.025})
    assert f.severity is Severity.ERROR and f.values["cause"] == "together"
    assert "shrinks it 0.03 per step (its L2(0.05))" in f.message and "weight decay" not in f.message
    changes = {(c.parameter, c.layer): c.suggested for c in f.fix.changes}
    assert changes == {("regularizer", "embedding"): None, ("lambda", "dense"): 0.0125, ("lambda", "dense_1"): 0.0125}
    # the same chain under Adam has no static shrink: the L2's verdict alone
    assert findings("scenario_embedding_chain_adam.keras", "RL025")[0].values["together_shrink_per_step"] is None


def test_rl025_weight_decay_alone_pulls_the_chain_under_sgd():
    """No regularizer anywhere, SGD(0.03, momentum 0.9, weight_decay=1):
    the decay shrinks the table and every kernel 0.03 per step, which
    collapsed all 12 probe runs that decayed the table (RL025 read only
    regularizers and said nothing). Under SGD a kernel decayed by the
    optimizer is as pulled as one with an L2 (a warning from the kernels'
    0.015 per step); the fix lowers the decay."""
    [f] = findings("scenario_embedding_sgd_wd_only.keras", "RL025")
    assert f.severity is Severity.WARNING and f.values["cause"] == "kernels"
    assert "carry no L2 but decay with the weight decay" in f.message
    assert [(c.parameter, c.current, c.suggested) for c in f.fix.changes] == [("weight_decay", 1.0, 0.125)]
    [e] = findings("scenario_embedding_sgd_wd_only.keras", "RL025",
                   thresholds={"table-and-kernels-shrink-error": 0.025})
    assert e.values["cause"] == "together" and "(dense, the weight decay alone) 0.03 per step" in e.message
    # both shrink levels above the 0.03 per step: no finding
    assert findings("scenario_embedding_sgd_wd_only.keras", "RL025",
                    thresholds={"table-and-kernels-shrink-error": 0.04, "table-kernels-shrink-warning": 0.04}) == []


@pytest.mark.parametrize("name", ["scenario_embedding_chain_sgd_l2_005.keras", "scenario_embedding_sgd_wd_only.keras",
                                  "scenario_embedding_kernels_sgd_wd.keras"])
def test_rl025_fix_of_the_shrinks_together_clears_it(name, tmp_path):
    """Each change of the fix applied to the file's config (a regularizer
    removed or its factor set, the optimizer's weight_decay lowered): the
    rebuilt file draws no RL025 at all."""
    from mutate import layer_configs, rewrite_keras_zip

    [f] = findings(name, "RL025")
    changes = f.fix.changes

    def apply(cfg):
        for change in changes:
            if change.parameter == "weight_decay":
                cfg["compile_config"]["optimizer"]["config"]["weight_decay"] = change.suggested
                continue
            for layer in layer_configs(cfg):
                key = f"{change.target}_regularizer" if change.target != "embeddings" else "embeddings_regularizer"
                if layer.get("name") == change.layer and isinstance(layer.get(key), dict):
                    if change.suggested is None:
                        layer[key] = None
                    else:
                        layer[key]["config"]["l2"] = change.suggested

    fixed = rewrite_keras_zip(FIXTURES / "keras" / name, tmp_path / name, config=apply)
    assert findings(fixed, "RL025") == []


def test_rl025_kernels_alone_under_adam_is_not_judged():
    """Adam normalises the L2's gradient (no static shrink): the flattened
    model trained at L2 0.1 on every data set of the probe."""
    assert findings("scenario_embedding_kernels_adam.keras", "RL025") == []


def test_rl025_table_at_unit_scale_is_not_small():
    """The same chain from an N(0, 1) table (RMS 1): no finding; with the gate
    raised above 1 it fires (the gate is what keeps it quiet)."""
    assert findings("scenario_embedding_chain_unit.keras", "RL025") == []
    [f] = findings("scenario_embedding_chain_unit.keras", "RL025", thresholds={"small-table-rms": 2.0})
    assert f.values["table_rms"] == pytest.approx(1.0)


def test_rl025_needs_penalized_kernels_after_the_table():
    """A penalized table feeding an unpenalized head (the table's L2 alone
    left every flattened model healthy on the probe): RL008's warning only."""
    assert findings("scenario_embedding_regularized.keras", "RL025") == []
    assert codes("scenario_embedding_regularized.keras") == {"RL008"}


def test_rl025_table_behind_a_normalization_is_not_a_chain():
    """LayerNorm between the table and the penalized kernels re-scales the
    signal: the kernels still form RL024's chain, the table is not in it."""
    assert findings("scenario_embedding_chain_norm.keras", "RL025") == []
    assert findings("scenario_embedding_chain_norm.keras", "RL024")


def _embedding_chain_variant(tmp_path, name, *, initializer=None, table_values=None):
    """scenario_embedding_chain_sgd.keras with the table's initializer or
    its stored values replaced."""
    def config(cfg):
        if initializer is not None:
            for layer in layer_configs(cfg):
                if "embeddings_initializer" in layer:
                    layer["embeddings_initializer"] = initializer

    def weights(h5):
        if table_values is not None:
            h5["layers/embedding/vars/0"][...] = table_values

    return rewrite_keras_zip(KERAS_FIXTURES / "scenario_embedding_chain_sgd.keras", tmp_path / name,
                             config=config, weights=weights)


def test_rl025_zero_initialised_table_is_small_and_does_not_divide_by_zero(tmp_path):
    """A table initialised to zeros (position or segment tables often are)
    starts at RMS 0: an error like any small table, with no 'Nx below'."""
    zeros = {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None}
    path = _embedding_chain_variant(tmp_path, "zeros.keras", initializer=zeros,
                                    table_values=np.zeros((64, 8), dtype="float32"))
    [f] = findings(path, "RL025")
    assert f.severity is Severity.ERROR and f.values["table_rms"] == 0.0
    assert "starts at RMS 0, far below the unit scale" in f.message


def test_rl025_pretrained_table_stored_large_is_not_small(tmp_path):
    """Pre-trained vectors loaded into a table keep its initializer in the
    config: the stored values (RMS 0.6) say the table is not small."""
    rng = np.random.default_rng(0)
    path = _embedding_chain_variant(tmp_path, "pretrained.keras",
                                    table_values=rng.normal(0.0, 0.6, size=(64, 8)).astype("float32"))
    assert findings(path, "RL025") == []
    [f] = findings(path, "RL025", thresholds={"small-table-rms": 1.0})
    assert f.values["table_rms"] == pytest.approx(0.6, rel=0.15)


def test_chains_cross_nested_model_boundaries():
    """The flat model's chain split over a functional encoder and a
    Sequential head: the layer graph links the encoder's output to the
    head's first layer, so RL025 and RL024 see the same chain as flat."""
    [f] = findings("scenario_embedding_chain_nested.keras", "RL025")
    assert f.severity is Severity.ERROR and f.values["fed_layers"] == ["head/dense", "head/dense_1"]
    [chain] = findings("scenario_embedding_chain_nested.keras", "RL024")
    assert chain.values["chain"] == ["encoder/embedding", "head/dense", "head/dense_1"]
    [flat] = findings("scenario_embedding_chain_sgd.keras", "RL024")
    assert flat.values["chain"] == ["embedding", "dense", "dense_1"]


def test_nested_models_are_linked_in_order_and_only_where_unambiguous():
    """Three nested Functionals, and a Sequential whose first layer is a
    Sequential: the whole chain, as flat. A sub-model with two inputs is fed
    in order (dx reaches only the Identity, not s1: no chain). A residual
    block written as a sub-model (its input goes straight into the Add):
    both gammas absorbed by the free Dense after it, as flat."""
    [deep] = findings("nested_chain_three_deep.keras", "RL024")
    assert [p.rsplit("/", 1)[-1] for p in deep.values["chain"]] == ["d0", "d1", "d2", "d3", "d4", "out"]
    [seq] = findings("nested_seq_first_is_seq.keras", "RL024")
    assert [p.rsplit("/", 1)[-1] for p in seq.values["chain"]] == ["d1", "d2", "d3", "d4", "out"]
    assert findings("nested_multi_input.keras", "RL024") == []
    gammas = findings("nested_residual_block.keras", "RL008")
    assert len(gammas) == 2 and all(f.values["absorbed"] and not f.values["counted"] for f in gammas)


def test_nested_tf_keras_layers_with_slash_names_are_read_and_linked():
    """tf.keras applications name layers 'Conv/BatchNorm'; used as a nested
    base, their weight names ('blk/d1/kernel:0') span several components:
    every tensor is found (no RL019) and the chain crosses the nested model
    (the container is the path less the layer's own name, not its last part)."""
    report = lint_file(str(KERAS_FIXTURES / "tfk_slash_names_nested.h5"), Settings())
    assert not [f for f in report.findings if f.code == "RL019"]
    [chain] = [f for f in report.findings if f.code == "RL024"]
    assert chain.values["chain"] == ["blk/d0", "sub/blk/d1", "sub/blk/d2", "d3", "out"]


# -- RL026 unusable-loss-weights ------------------------------------------------------------------------------


def test_rl026_metrics_passed_by_position_land_in_loss_weights():
    """compile(opt, loss, ["accuracy"]) in Keras 3 saves loss_weights=["accuracy"]; fit fails on it."""
    [f] = findings("loss_weights_by_position.keras", "RL026")
    assert f.severity is Severity.ERROR and "'accuracy'" in f.message and "by position" in f.message
    assert [c.to_dict() for c in f.fix.changes] == [{"layer": None, "target": "compile", "parameter": "loss_weights",
                                                     "current": None, "suggested": None}]


def test_rl026_a_negative_weight_is_ascended_by_keras():
    """Keras' own training of the file (the manifest) raised the negatively weighted output's loss."""
    import json

    manifest = {e["file"]: e for e in json.loads((FIXTURES / "rules" / "manifest.json").read_text())["files"]}
    keras_says = manifest["k3_loss_weights_negative.keras"]
    assert keras_says["losses_after_20_steps"]["aux_loss"] > 1.5 * keras_says["losses_before"]["aux_loss"]
    [f] = findings(FIXTURES / "rules" / "k3_loss_weights_negative.keras", "RL026")
    assert "aux -0.5" in f.message
    assert [(c.layer, c.current, c.suggested) for c in f.fix.changes] == [("aux", -0.5, 0.5)]


def test_rl026_quiet_on_an_auxiliary_head_switched_off():
    assert findings(FIXTURES / "rules" / "k3_loss_weights_aux_zero.keras", "RL026") == []


def test_rl026_all_zero_weights_say_what_trains_instead(tmp_path):
    [f] = findings("loss_weights_zero.keras", "RL026")
    assert "the penalties alone train it" in f.message
    # the same file without its regularizer: nothing trains it at all
    bare = rewrite_keras_zip(KERAS_FIXTURES / "loss_weights_zero.keras", tmp_path / "bare.keras",
                             config=lambda cfg: [layer.pop("kernel_regularizer", None)
                                                 for layer in layer_configs(cfg)] and None)
    [f] = findings(bare, "RL026")
    assert "nothing trains it" in f.message


@pytest.mark.parametrize(("weights", "bad"), [(["accuracy", 1.0], "'accuracy'"), ({"dense_1": "NaN"}, "'NaN'")])
def test_rl026_reads_every_unusable_weight(tmp_path, weights, bad):
    def rewrite(cfg):
        cfg["compile_config"]["loss_weights"] = weights

    path = rewrite_keras_zip(KERAS_FIXTURES / "loss_weights_by_position.keras", tmp_path / "w.keras", config=rewrite)
    [f] = findings(path, "RL026")
    assert bad in f.message


def test_profile_refuses_unusable_loss_weights_in_one_line(capsys):
    from reglint.cli.app import main

    assert main(["profile", str(KERAS_FIXTURES / "loss_weights_by_position.keras"), "--steps", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loss_weights hold 'accuracy'" in err[0] and "RL026" in err[0]


def rl026_manifest(file):
    import json

    return {e["file"]: e for e in json.loads((FIXTURES / "rules" / "manifest.json").read_text())["files"]}[file]


def test_rl026_a_none_entry_is_keras_default_weight_one():
    """Keras 3 (and tf-keras) train a None loss weight as 1: no finding, and profile does not refuse it."""
    keras_says = rl026_manifest("k3_loss_weights_none_entry.keras")
    assert keras_says["fit"] == "trains"
    total = keras_says["evaluate"]
    assert total["loss"] > total["main_loss"] + total["aux_loss"]  # both heads at weight 1 (+ the L2)
    path = FIXTURES / "rules" / "k3_loss_weights_none_entry.keras"
    assert findings(path, "RL026") == []
    assert [loss.weight for loss in read_model(path).losses] == [1, 1]


def test_rl026_a_scalar_weight_applies_to_every_output():
    """loss_weights=0.0 (a scalar) weights the one output 0: Keras' loss is the L2 penalty alone."""
    keras_says = rl026_manifest("k3_loss_weights_scalar_zero.keras")
    assert keras_says["evaluate"]["loss"] < 0.05
    [f] = findings(FIXTURES / "rules" / "k3_loss_weights_scalar_zero.keras", "RL026")
    assert "every loss weight is 0 (main)" in f.message and "the penalties alone train it" in f.message


def test_rl026_keras3_one_loss_with_a_list_of_weights_fails_to_fit():
    """Keras 2's loss='mse', loss_weights=[1, 0.5] on two outputs: Keras 3's fit raises; tf-keras trains it."""
    assert "must match the number of losses" in rl026_manifest("k3_loss_weights_one_loss_two_weights.keras")["fit"]
    [f] = findings(FIXTURES / "rules" / "k3_loss_weights_one_loss_two_weights.keras", "RL026")
    assert "2 weights for 1 loss" in f.message and "Keras 3" in f.message
    assert rl026_manifest("tfk_loss_weights_one_loss_two_weights.h5")["fit"] == "trains"
    assert findings(FIXTURES / "rules" / "tfk_loss_weights_one_loss_two_weights.h5", "RL026") == []


def test_rl026_keras3_pairs_a_dict_of_weights_with_a_loss_list_by_sorted_key():
    """compile(loss=[l, l], loss_weights={"main": 1, "aux": -0.5}): Keras 3 gives main -0.5 (its own loss says so)."""
    total = rl026_manifest("k3_loss_weights_dict_by_sorted_key.keras")["evaluate"]
    penalty = total["loss"] - (-0.5 * total["main_loss"] + total["aux_loss"])
    assert 0 < penalty < 0.05  # main at -0.5, aux at 1, plus the small L2
    [f] = findings(FIXTURES / "rules" / "k3_loss_weights_dict_by_sorted_key.keras", "RL026")
    assert "main -0.5" in f.message


def test_rl026_a_nan_weight_makes_the_loss_nan_rather_than_failing(tmp_path):
    def rewrite(cfg):
        cfg["compile_config"]["loss_weights"] = [float("nan")]

    path = rewrite_keras_zip(KERAS_FIXTURES / "loss_weights_by_position.keras", tmp_path / "w.keras", config=rewrite)
    [f] = findings(path, "RL026")
    assert "nan" in f.message and "NaN" in f.message and "fails" not in f.message


def test_a_frozen_tensor_adds_no_share_no_gradient_and_no_shrink(tmp_path):
    """Review 30, D7: the table's share column counted frozen penalties (it
    summed to twice the stated total) and explain gave a frozen kernel a
    gradient and a per-step shrink, then said Keras adds no penalty."""
    import json
    import subprocess
    import sys

    path = str(FIXTURES / "keras" / "scenario_frozen_regularized.keras")
    shown = subprocess.run([sys.executable, "-m", "reglint", "check", path, "--no-cache"], capture_output=True,
                           text=True, timeout=120).stdout
    (row,) = [line for line in shown.splitlines() if line.startswith("frozen (frozen)")]
    assert row.rstrip().endswith("- (frozen)") and "penalty (at init): 0 = 0%" in shown
    explained = subprocess.run([sys.executable, "-m", "reglint", "explain", path, "-f", "json"], capture_output=True,
                               text=True, timeout=120).stdout
    (tensor,) = json.loads(explained)["tensors"]
    assert tensor["active"] is False
    assert (tensor["share_of_data_loss"], tensor["gradient_per_weight"], tensor["shrink_per_step"]) == (0.0, None, None)
    page = tmp_path / "report.html"
    subprocess.run([sys.executable, "-m", "reglint", "check", path, "--no-cache", "-f", "html", "-o", str(page)],
                   capture_output=True, text=True, timeout=120)
    assert "- (frozen)</td>" in page.read_text()
