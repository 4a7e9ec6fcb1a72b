"""Normalized and residual networks (issue 15): famous healthy recipes stay
free of errors, the mechanisms the static rules must catch there are caught,
and the graph walk tells absorbed normalization scales from those that scale
a residual branch. Fixtures: fixtures/scenarios/*.keras, written by Keras
(fixtures/make_scenario_fixtures.py), and fixtures/keras/ files."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from conftest import FIXTURES, KERAS_FIXTURES
from reglint.engine.analysis import TrainingContext
from reglint.engine.finding import Severity
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings

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
    assert f.values["equilibrium_steps"] == pytest.approx(1 / (2 * 2 * 0.1 * 1e-4 / 0.1), rel=1e-2)


# -- decay on scale-invariant kernels (RL021) and stacked decay (RL003) ----------------------


def findings_of(name, code, context=None):
    return [f for f in report_of(SCENARIOS / name, context).findings if f.code == code]


def test_strong_l2_on_kernels_feeding_batchnorm_is_an_rl021_error():
    [f] = findings_of("scenario_bn_l2_strong.keras", "RL021")
    assert f.severity is Severity.ERROR
    assert f.values["angular_update"] == pytest.approx(math.sqrt(4 * 0.1 * 0.5 / 1.9))  # 0.32 rad per step
    assert len(f.values["layers"]) == 10  # every conv kernel of the residual network feeds a BatchNorm
    # the fix scales the L2 by (aim / theta)^2; these kernels feed BatchNorm (momentum 0.99), whose moving
    # statistics need a slower turn than half the warning angle: half the lag level over its 100-step window,
    # 0.05 * sqrt(0.01) = 0.005 rad per step (review 49, 2: the angle's aim alone left the lag warning)
    change = f.fix.changes[0]
    assert change.parameter == "lambda" and change.current == pytest.approx(0.5)
    assert 4 * 0.1 * change.suggested / 1.9 == pytest.approx(0.005 ** 2)


def test_rl021s_fix_applied_leaves_no_rl021(tmp_path):
    from mutate import layer_configs, rewrite_keras_zip

    [f] = findings_of("scenario_bn_l2_strong.keras", "RL021")
    suggested = {c.layer: c.suggested for c in f.fix.changes}

    def apply(cfg):
        for layer in layer_configs(cfg):
            reg = layer.get("kernel_regularizer")
            if layer.get("name") in suggested and isinstance(reg, dict):
                reg["config"]["l2"] = suggested[layer["name"]]

    fixed = rewrite_keras_zip(SCENARIOS / "scenario_bn_l2_strong.keras", tmp_path / "fixed.keras", config=apply)
    assert [x for x in report_of(fixed).findings if x.code == "RL021"] == []


def test_rl021_levels_and_options():
    [f] = findings_of("scenario_residual_all_l2.keras", "RL021")  # L2(0.05), lr 0.1: 0.103 rad per step
    assert f.severity is Severity.WARNING
    report = lint_file(str(SCENARIOS / "scenario_residual_all_l2.keras"),
                       Settings(thresholds={"angle-error": 0.1}))
    assert [x.severity for x in report.findings if x.code == "RL021"] == [Severity.ERROR]
    assert findings_of("recipe_resnet_sgd.keras", "RL021") == []  # 0.0046 rad per step


def test_rl003_adds_a_kernels_l2_to_sgd_weight_decay():
    [f] = findings_of("scenario_stacked_l2_sgdw.keras", "RL003")
    assert f.severity is Severity.ERROR  # the decoupled part alone: 0.1 * 0.5 = 0.05 per step
    assert f.values["decoupled_shrink"] == pytest.approx(0.05)
    assert f.values["coupled_shrink"] == pytest.approx(2 * 0.1 * 0.05 / (1 - 0.9))
    assert f.values["shrink_per_step"] == pytest.approx(0.15)
    assert f.values["stacked_layer"] == "dense"  # the classifier: the conv kernels feed BatchNorm (RL021)
    [angle] = findings_of("scenario_stacked_l2_sgdw.keras", "RL021")
    assert angle.values["angular_update"] == pytest.approx(math.sqrt(2 * 0.15 * 0.1 / 1.9))


def test_a_stacked_sum_alone_is_a_warning():
    """L2(0.05) on the classifier under SGD(0.1, momentum 0.9) and weight_decay
    0.1: 0.1 + 0.01 per step together, the decoupled part under RL003's error
    level. Calibration: such sums harmed 28 of 30 runs but wrecked 12."""
    [f] = findings_of("scenario_residual_all_l2.keras", "RL003", TrainingContext(weight_decay=0.1))
    assert f.severity is Severity.WARNING
    assert f.values["shrink_per_step"] == pytest.approx(0.1 + 0.01)


def test_decay_faster_than_batchnorm_statistics_names_the_lag():
    """AdamW(1e-3, weight_decay 10) on a Conv -> BatchNorm CNN: the BN-fed
    kernels lose 2*lr*wd = 0.02 of their output variance per step, faster
    than the moving statistics follow (1 - 0.99): RL003's warning says so.
    The same CNN with LayerNorm (no moving statistics) gets the plain
    warning. Calibration: such BatchNorm CNNs collapsed when training
    stopped inside the lag (bench/bn_lag_probe.py measured the cause)."""
    def rl003(name):
        report = lint_file(str(KERAS_FIXTURES / name), Settings(context=TrainingContext()))
        assert report.error is None, report.error
        [f] = [f for f in report.findings if f.code == "RL003"]
        return f

    lagging = rl003("scenario_bn_statistics_lag.keras")
    assert lagging.severity is Severity.WARNING
    assert lagging.values["moving_statistics_lag"] == {"layers": ["batch_normalization", "batch_normalization_1"],
                                                       "momentum": pytest.approx(0.99)}
    assert "faster than the moving statistics follow (0.01 per step at momentum 0.99; they keep up below a " \
        "shrink of 0.005 per step)" in lagging.message
    plain = rl003("scenario_ln_no_statistics.keras")
    assert plain.severity is Severity.WARNING and "moving_statistics_lag" not in plain.values
    assert "stale statistics" not in plain.message


def chain_findings(path, context=None, **settings):
    report = lint_file(str(path), Settings(context=context or TrainingContext(), **settings))
    assert report.error is None, report.error
    return [f for f in report.findings if f.code == "RL024"]


def test_l2_shrinking_a_chain_of_dense_layers_is_an_rl024_error():
    """L2(0.3) on an MLP's three kernels under SGD(0.03, momentum 0.9): each
    shrinks 2*0.03*0.3/0.1 = 0.18 per step, in series; RL001's ratio at
    initialisation (16x) stays under its error level."""
    [f] = chain_findings(KERAS_FIXTURES / "scenario_chain_shrink.keras")
    assert f.severity is Severity.ERROR
    assert f.values["chain"] == ["dense", "dense_1", "dense_2"]
    assert f.values["shrink_per_step"] == pytest.approx(2 * 0.03 * 0.3 / (1 - 0.9))
    # the fix sets every L2 of the chain at a shrink of half the warning level
    assert {c.layer for c in f.fix.changes} == {"dense", "dense_1", "dense_2"}
    assert all(2 * 0.03 * c.suggested / 0.1 == pytest.approx(0.025) for c in f.fix.changes)
    rl001 = [x for x in lint_file(str(KERAS_FIXTURES / "scenario_chain_shrink.keras"), Settings()).findings
             if x.code == "RL001"]
    assert [x.severity for x in rl001] == [Severity.WARNING]


def test_rl024_levels_follow_the_learning_rate():
    # a tenth of the step size: 0.018 per step, under the warning level
    assert chain_findings(KERAS_FIXTURES / "scenario_chain_shrink.keras", TrainingContext(learning_rate=0.003)) == []
    # 0.06 per step: a warning; a lower error level makes it an error
    [f] = chain_findings(KERAS_FIXTURES / "scenario_chain_shrink.keras", TrainingContext(learning_rate=0.01))
    assert f.severity is Severity.WARNING
    [f] = chain_findings(KERAS_FIXTURES / "scenario_chain_shrink.keras", TrainingContext(learning_rate=0.01),
                         thresholds={"chain-shrink-error": 0.05})
    assert f.severity is Severity.ERROR


def test_rl024_needs_layers_in_series_without_a_normalization():
    # Residual CNN with L2(0.05) under SGD(0.1, momentum 0.9): 0.1 per step on
    # every kernel, but the conv kernels feed BatchNorm (RL021's) and only the
    # classifier is left: a single layer, no chain.
    assert chain_findings(SCENARIOS / "scenario_residual_all_l2.keras",
                          thresholds={"chain-shrink-error": 0.05, "chain-shrink-warning": 0.05}) == []
    # A pre-norm transformer's kernels reach the outputs through the final LayerNorm.
    assert chain_findings(SCENARIOS / "scenario_prenorm_l2_strong.keras") == []
    # Coupled L2 under Adam is normalised away: RL007's, not a shrink rate.
    assert chain_findings(KERAS_FIXTURES / "scenario_adam_coupled_l2.keras") == []
    for name in RECIPES:
        assert chain_findings(SCENARIOS / name) == []


def test_l2_shrinking_a_chain_inside_a_normalized_stream_has_its_own_level():
    """A pre-norm transformer under SGD(0.03, momentum 0.9): every kernel but
    the classifier's reaches the outputs through the final LayerNorm, and the
    MLP's two Dense lie in series inside that stream. L2(1.5) shrinks them
    0.9 per step, over the stream's error level (0.79); L2(0.3), 0.18 per step,
    is a warning there although it is over the error level of a chain that
    reaches an output (0.15)."""
    [f] = chain_findings(KERAS_FIXTURES / "scenario_stream_chain_sgd.keras")
    assert f.severity is Severity.ERROR
    assert f.values["behind_normalization"] is True
    assert f.values["chain"] == ["mlp_in", "mlp_out"]
    assert f.values["shrink_per_step"] == pytest.approx(2 * 0.03 * 1.5 / (1 - 0.9))
    assert "inside a normalized stream" in f.message
    # the fix lists each layer once (the attention has four kernels) and
    # lowers the classifier too (0.9 per step: it would close a chain with
    # anything in series after the stream)
    assert {c.layer for c in f.fix.changes} == {"embed", "attention", "mlp_in", "mlp_out", "head"}
    assert f.fix.describe().count("attention") == 1
    [w] = chain_findings(KERAS_FIXTURES / "scenario_stream_chain_warning.keras")
    assert w.severity is Severity.WARNING and w.values["behind_normalization"] is True
    # the option moves only the stream's level
    [f] = chain_findings(KERAS_FIXTURES / "scenario_stream_chain_sgd.keras", thresholds={"stream-shrink-error": 1.0})
    assert f.severity is Severity.WARNING
    [w] = chain_findings(KERAS_FIXTURES / "scenario_stream_chain_warning.keras",
                         thresholds={"stream-shrink-error": 0.15})
    assert w.severity is Severity.ERROR
    [mlp] = chain_findings(KERAS_FIXTURES / "scenario_chain_shrink.keras", thresholds={"stream-shrink-error": 0.01})
    assert mlp.values["behind_normalization"] is False and mlp.severity is Severity.ERROR
    # the same block under Adam: RL024 judges SGD only
    assert chain_findings(KERAS_FIXTURES / "scenario_stream_chain_sgd.keras",
                          TrainingContext(optimizer="Adam", learning_rate=1e-3)) == []


def test_a_chain_entering_a_normalized_stream_is_judged_at_the_streams_level():
    """'shared' reaches an output without a normalization (an auxiliary
    head) and feeds 'inner', which reaches the outputs only through a
    LayerNorm: the pair is one chain, neither all in front nor all inside."""
    [f] = chain_findings(KERAS_FIXTURES / "scenario_stream_chain_mixed.keras")
    assert f.severity is Severity.ERROR
    assert f.values["chain"] == ["shared", "inner"] and f.values["behind_normalization"] is True
    # at 0.9 per step it is over the stream's level, under it a warning
    [w] = chain_findings(KERAS_FIXTURES / "scenario_stream_chain_mixed.keras", thresholds={"stream-shrink-error": 1.0})
    assert w.severity is Severity.WARNING


def test_rl024_fix_lowers_both_kinds_of_chain_at_once():
    """A penalized two-layer classifier (an error: a chain to the output) on
    a pre-norm block whose MLP is a chain inside the stream (a warning): the
    fix covers both, and applying it leaves no RL024 finding."""
    path = KERAS_FIXTURES / "scenario_stream_and_head_chain.keras"
    [f] = chain_findings(path)
    assert f.severity is Severity.ERROR and f.values["chain"] == ["head_hidden", "head_out"]
    assert f.values["behind_normalization"] is False
    layers = {c.layer for c in f.fix.changes}
    assert layers == {"head_hidden", "head_out", "embed", "attention", "mlp_in", "mlp_out"}
    applied = [{"layers": c.layer, "target": "kernel", "l2": c.suggested} for c in f.fix.changes]
    assert chain_findings(path, TrainingContext(regularizers=applied)) == []


def test_a_layer_that_is_a_model_output_is_not_behind_a_normalization():
    """'features' is itself an output and also feeds a normalized branch:
    its own prediction passes no normalization, so RL001 counts it in front
    and RL024 reads its chain with 'inner' as entering the stream."""
    report = lint_file(str(KERAS_FIXTURES / "output_feeds_norm.keras"), Settings())
    assert report.error is None, report.error
    behind = {p.layer.path: p.behind_norm for p in report.analysis.penalties}
    assert behind == {"features": False, "inner": True, "proj": True}
    [f] = [x for x in report.findings if x.code == "RL024"]
    assert f.values["chain"] == ["features", "inner"] and f.values["behind_normalization"] is True


def rl007_of(path, context=None):
    report = lint_file(str(path), Settings(context=context or TrainingContext()))
    assert report.error is None, report.error
    return [f for f in report.findings if f.code == "RL007"]


def test_coupled_l2_under_adam_on_a_chain_is_an_rl007_error():
    """L2(0.3) on an MLP's three kernels under Adam(1e-3): g* = 2*0.3*sigma is
    above nearly every weight's data gradient; the layers are in series."""
    [f] = rl007_of(KERAS_FIXTURES / "scenario_adam_l2_chain.keras")
    assert f.severity is Severity.ERROR
    assert f.values["drifting_chain"] == ["dense", "dense_1", "dense_2"]
    assert f.values["critical_gradient"] >= 0.035
    # steps to drift to zero at lr per step from the largest init RMS: the
    # 32->10 classifier's glorot_uniform, sqrt(2/(32+10))
    assert f.values["drift_steps"] == pytest.approx(math.sqrt(2 / 42) / 1e-3, rel=1e-3)
    # L2(1e-3): g* ~ 4e-4, a warning only
    [weak] = rl007_of(KERAS_FIXTURES / "scenario_adam_coupled_l2.keras")
    assert weak.severity is Severity.WARNING and weak.values["drifting_chain"] is None


def test_rl007_error_is_judged_on_the_pull_per_unit_of_weight():
    """2*l2 = 0.6 for L2(0.3) whatever the layers' widths (the data gradient per
    weight scales with the weights' size): the level decides, not g*."""
    path = str(KERAS_FIXTURES / "scenario_adam_l2_chain.keras")
    severities = {}
    for level in (0.55, 0.65):
        report = lint_file(path, Settings(thresholds={"drift-pull-error": level}))
        [f] = [x for x in report.findings if x.code == "RL007"]
        severities[level] = f.severity
    assert severities == {0.55: Severity.ERROR, 0.65: Severity.WARNING}


def test_rl007_error_needs_a_run_long_enough_to_drift():
    [f] = rl007_of(KERAS_FIXTURES / "scenario_adam_l2_chain.keras")
    drift = f.values["drift_steps"]
    [g] = rl007_of(KERAS_FIXTURES / "scenario_adam_l2_chain.keras", TrainingContext(steps=int(drift) - 1))
    assert g.severity is Severity.WARNING
    [h] = rl007_of(KERAS_FIXTURES / "scenario_adam_l2_chain.keras", TrainingContext(steps=int(drift) + 1))
    assert h.severity is Severity.ERROR


def test_rl007_error_leaves_kernels_behind_normalization_alone():
    # AdamW with L2 on every kernel of a pre-norm transformer: behind the final LayerNorm.
    for name in ("scenario_prenorm_l2_strong.keras", *RECIPES):
        assert all(f.severity is not Severity.ERROR for f in rl007_of(SCENARIOS / name))


def test_rl024_follows_a_recurrent_layer_into_its_classifier():
    """GRU -> Dense with L2(0.3) and weight_decay 0.3 under SGD(0.03, momentum
    0.9): the kernel, recurrent kernel and classifier each shrink 0.189 per step."""
    [f] = chain_findings(KERAS_FIXTURES / "scenario_gru_chain_sgd.keras")
    assert f.severity is Severity.ERROR and f.values["chain"] == ["gru", "dense"]
    assert f.values["shrink_per_step"] == pytest.approx(2 * 0.03 * 0.3 / 0.1 + 0.03 * 0.3)
    # the fix lands each L2 at 0.025 per step with the decoupled 0.009 counted: (0.025 - 0.009) * 0.1 / 0.06
    assert {(c.layer, c.target) for c in f.fix.changes} == {("gru", "kernel"), ("gru", "recurrent_kernel"),
                                                           ("dense", "kernel")}
    assert all(c.suggested == pytest.approx((0.025 - 0.009) * 0.1 / (2 * 0.03)) for c in f.fix.changes)


def test_rl007_chain_runs_from_an_embedding_through_pooling():
    [f] = rl007_of(KERAS_FIXTURES / "scenario_embedding_chain_adam.keras")
    assert f.severity is Severity.ERROR
    assert f.values["drifting_chain"] == ["embedding", "dense", "dense_1"]


def test_longest_chain_stops_at_a_normalization():
    from reglint.engine.graph import longest_chain
    from reglint.model import Layer

    def layer(name, cls="Dense"):
        return Layer(name=name, path=name, class_name=cls)

    bn, d2, d3 = layer("bn", "BatchNormalization"), layer("d2"), layer("d3")
    outbound = {"d1": [bn], "bn": [d2], "d2": [d3]}
    stop = lambda nxt: nxt.class_name == "BatchNormalization"  # noqa: E731
    assert longest_chain({"d1", "d2", "d3"}, outbound, stop) == ["d2", "d3"]
    assert longest_chain({"d1", "d2"}, outbound, stop) in (["d1"], ["d2"])
    # two heads fed by one layer are not in series
    outbound = {"d1": [d2, d3]}
    assert len(longest_chain({"d2", "d3"}, outbound, lambda nxt: False)) == 1
    # a shared layer that feeds itself is walked once
    assert longest_chain({"d2", "d3"}, {"d2": [d3], "d3": [d2]}, lambda nxt: False) == ["d2", "d3"]


def test_longest_chain_walks_graphs_deeper_than_the_recursion_limit():
    from reglint.engine.graph import longest_chain
    from reglint.model import Layer

    layers = [Layer(name=f"l{i}", path=f"l{i}", class_name="Dense") for i in range(5000)]
    outbound = {a.path: [b] for a, b in itertools.pairwise(layers)}
    chain = longest_chain({layer.path for layer in layers[::2]}, outbound, lambda nxt: False)
    assert len(chain) == 2500 and chain[:2] == ["l0", "l2"]


def test_l2_with_a_strong_adamw_decay_is_an_error():
    found = {f.code: f for f in report_of(SCENARIOS / "scenario_stacked_l2_adamw.keras").findings}
    assert found["RL003"].severity is Severity.ERROR
    assert found["RL003"].values["equilibrium_ratio"] >= 1.7  # no weight above ~1/wd = 0.033
    assert found["RL006"].severity is Severity.WARNING


def test_gamma_l2_on_a_residual_network_is_a_warning_not_an_error():
    report = report_of(SCENARIOS / "scenario_residual_gamma_l2.keras")
    assert errors(report) == []
    # ten alike gammas: one finding naming them all (review 74, 4), its fix removing each
    [rl008] = [f for f in report.findings if f.code == "RL008" and f.target == "gamma"]
    assert len(rl008.values["layers"]) == 10 and "next layer can take over" in rl008.message
    assert rl008.message.startswith("gamma of 10 layers (") and len(rl008.fix.changes) == 10


def test_penalties_behind_a_final_layernorm_warn_but_do_not_err():
    [f] = findings_of("scenario_prenorm_l2_strong.keras", "RL001")
    assert f.severity is Severity.WARNING
    assert f.values["penalty_ratio"] > 18  # above the error level as a whole
    assert f.values["penalty_ratio_unnormalized"] < 5  # the classifier alone: under the warning level
    assert "behind a normalization layer" in f.message
    report = report_of(SCENARIOS / "scenario_prenorm_l2_strong.keras")
    front = [p.layer.path for p in report.analysis.penalties if p.counted and not p.behind_norm]
    assert front == [report.model.layers[-1].path]  # only the classifier reaches the output unnormalized


# -- the graph walk ---------------------------------------------------------------


def consumers_of(model) -> dict[str, list]:
    out: dict[str, list] = {}
    for layer in model.layers:
        for name in layer.inbound:
            out.setdefault(name, []).append(layer)
    return out


def test_a_residual_stream_of_penalized_gammas_is_absorbed_by_a_free_classifier():
    """Every addend of the residual stream carries a penalized gamma, so all of
    them shrinking together scale the stream, which the unpenalized
    classifier takes over: the penalty can be shed without changing the
    function (calibration: no residual gamma+beta run wrecked under AdamW or
    RMSprop; wine healthy at L2(1) under all three optimizers)."""
    report = report_of(SCENARIOS / "scenario_residual_gamma_l2.keras")
    flags = penalty_flags(report)
    assert flags and all(absorbed and not counted for _, absorbed, counted in flags.values())
    assert not [f for f in report.findings if f.code == "RL001"]


def test_a_penalized_classifier_leaves_the_last_stream_unabsorbed():
    report = report_of(SCENARIOS / "scenario_residual_all_l2.keras")
    flags = penalty_flags(report)
    consumers = consumers_of(report.model)
    gammas = {path: f for (path, var), f in flags.items() if var == "gamma"}
    unabsorbed = {path for path, (_, absorbed, _) in gammas.items() if not absorbed}
    # the last stage's stream: its projection BatchNorm and the two blocks' final ones
    assert len(unabsorbed) == 3
    for path in unabsorbed:
        after = consumers[path]
        assert [layer.class_name for layer in after] == ["Add"], path
    # the first BatchNorm of each block feeds a conv that feeds BatchNorm: absorbed;
    # the first stage's stream ends in the second stage's (free, scale-invariant) convs
    assert len(gammas) - len(unabsorbed) == 7
    assert all(counted for path, (_, _, counted) in gammas.items() if path in unabsorbed)


def test_layernorm_before_penalized_attention_is_not_absorbed_before_a_free_mlp_it_is():
    report = report_of(SCENARIOS / "scenario_prenorm_ln_l2.keras")
    consumers = consumers_of(report.model)
    for (path, var), (_, absorbed, _) in penalty_flags(report).items():
        if var != "gamma":
            continue
        reads = {layer.class_name for layer in consumers[path]}
        assert absorbed is (reads == {"Dense"}), (path, reads)


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


@pytest.mark.slow
def test_profile_does_not_call_a_bias_penalty_a_collapse(capsys):
    """Issue 15's one profile false alarm: L2(10) on an LSTM's biases under SGD
    momentum. The biases fall toward zero within a few steps, but the kernels
    (what collapse is measured on) do not, and training learns."""
    from reglint.cli.app import main

    main(["profile", str(SCENARIOS / "scenario_lstm_bias_l2.keras"), "--steps", "30", "-f", "json"])
    report = json.loads(capsys.readouterr().out)
    file = report["files"][0]
    assert file["model"]["analysis"]["profile"]["outcome"]["label"] != "collapsing"
    assert not [f for f in file["findings"] if f["severity"] == "error"]


def test_the_scale_walk_handles_graphs_deeper_than_the_recursion_limit():
    """2,400 layers on one path (a description, not a file: the point is the
    walk's depth). Every gamma hands its scale to the next Dense kernel but
    the last, which reaches the output."""
    from reglint.engine.analysis import Analysis
    from reglint.model import Initializer, Layer, Model, Regularizer, Role, Variable

    layers, previous = [Layer("in", "in", "InputLayer")], "in"
    for i in range(1200):
        kernel = Variable("kernel", Role.KERNEL, (8, 8), initializer=Initializer("glorot_uniform"))
        gamma = Variable("gamma", Role.GAMMA, (8,), initializer=Initializer("ones"),
                         regularizer=Regularizer("l2", l2=0.1))
        layers += [Layer(f"d{i}", f"d{i}", "Dense", variables=[kernel], inbound=[previous]),
                   Layer(f"b{i}", f"b{i}", "BatchNormalization", variables=[gamma], inbound=[f"d{i}"])]
        previous = f"b{i}"
    analysis = Analysis(Model("deep", "keras_v3", layers=layers))
    assert [p.layer.path for p in analysis.penalties if not p.absorbed] == ["b1199"]


def test_alike_kernels_feeding_batchnorm_are_one_note_an_override_on_all_of_them_silences():
    """Review 74, 4: ResNet50 read 53 identical RL009 notes, MobileNetV2 104
    RL008 warnings. Four or more alike tensors are one finding listing their
    layers; a layer override covering every one of them silences it, one
    covering a few does not (as for RL007's and RL024's lists)."""
    from reglint.engine.selection import filter_findings
    from reglint.engine.settings import Override

    [note] = findings_of("scenario_bn_l2_strong.keras", "RL009")
    layers = note.values["layers"]
    assert len(layers) == 10 and note.layer is None and note.message.startswith("kernel of 10 layers (conv2d, ")
    path = str(SCENARIOS / "scenario_bn_l2_strong.keras")

    def kept_with(covered: list[str]) -> list:
        settings = Settings(overrides=[Override(files=["*.keras"], layers=covered, ignore=["RL009"])])
        return filter_findings([note], path, settings)[0]

    assert kept_with(layers) == [] and kept_with(layers[:3]) == [note]
