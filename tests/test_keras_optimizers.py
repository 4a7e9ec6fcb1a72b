"""Keras 3 optimizers whose settings change over training or across the
model (review 24: D3 rising learning-rate schedules, D4 MultiOptimizer,
D5 Muon), on files Keras wrote (fixtures/make_keras_optimizer_fixtures.py)
and against what Keras computed of each (fixtures/keras_optimizers/manifest.json)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reglint.engine.analysis import TrainingContext
from reglint.engine.finding import Severity
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.model import Role
from reglint.readers import read_model

from helpers import FIXTURES, run_reglint
from mutate import rewrite_keras_zip

HERE = FIXTURES / "keras_optimizers"
MANIFEST = json.loads((HERE / "manifest.json").read_text())["files"]
SCHEDULES = sorted(name for name in MANIFEST if name.startswith("sched_"))
MULTI = sorted(name for name in MANIFEST if name.startswith("multi_"))
MUON = sorted(name for name in MANIFEST if name.startswith("muon_"))


def report(name):
    found = lint_file(str(HERE / name), Settings(context=TrainingContext()))
    assert found.error is None, found.error
    return found


def by_code(found, code):
    return [f for f in found.findings if f.code == code]


def keras_paths(model, name):
    """location -> the variable's path as Keras named it when it loaded the
    file (the manifest's keys): ``layer/variable``; a legacy HDF5 file
    stores the path it was saved with in the dataset's name."""
    if name.endswith(".h5"):
        return {v.location: v.location.split("/", 3)[-1] for _, v in model.variables()}
    return {v.location: f"{layer.path}/{v.name}" for layer, v in model.variables()}


# ---------------------------------------------------------------------------
# D3: a schedule's peak is its largest value, not its first
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", [n for n in SCHEDULES if not MANIFEST[n]["grows"]])
def test_a_schedules_peak_is_the_largest_rate_keras_computes(name):
    truth = MANIFEST[name]
    lr = read_model(HERE / name).optimizer.learning_rate
    assert lr.initial == pytest.approx(truth["keras_initial"], rel=1e-6, abs=1e-9)
    assert lr.peak == pytest.approx(truth["keras_max"], rel=1e-6)


@pytest.mark.parametrize("name", [n for n in SCHEDULES if MANIFEST[n]["grows"]])
def test_a_schedule_growing_without_bound_has_no_peak_and_says_so(name):
    truth = MANIFEST[name]
    model = read_model(HERE / name)
    lr = model.optimizer.learning_rate
    assert truth["keras_max"] == "inf" or truth["keras_max"] > 10 * truth["keras_initial"]
    assert lr.peak is None and lr.initial == pytest.approx(truth["keras_initial"], rel=1e-6)
    notes = [n for n in model.notes if lr.schedule in n]
    assert len(notes) == 1 and "grows without bound" in notes[0] and "a lower bound" in notes[0], model.notes


def test_a_rising_schedule_draws_the_rl003_error_its_peak_rate_does():
    """SGD(PolynomialDecay(0.01 -> 0.3), weight_decay=0.5) decays each
    weight by 0.15 per step once the rate reaches 0.3, as SGD(0.3) does
    from the first step (Keras' own zero-gradient steps)."""
    keras_rise = MANIFEST["rise_poly_sgd_wd.keras"]["decay_per_step"]
    keras_const = MANIFEST["const_sgd_wd.keras"]["decay_per_step"]
    assert keras_rise["0"]["d1/kernel"] < keras_rise["1000"]["d1/kernel"] == keras_const["0"]["d1/kernel"]
    for name in ("rise_poly_sgd_wd.keras", "const_sgd_wd.keras"):
        (rl003,) = by_code(report(name), "RL003")
        assert rl003.severity is Severity.ERROR, name
        assert rl003.values["decoupled_shrink"] == pytest.approx(keras_rise["1000"]["d1/kernel"], rel=1e-5)


def test_a_custom_schedule_is_saved_not_missing_and_the_report_says_what_goes_unjudged():
    """Review 54, 3: SGD with a registered custom LearningRateSchedule
    (config ``peak`` 3.0, no ``initial_learning_rate``) was shown as "lr ?
    (not saved: give --lr)" and the rules that need the rate were skipped
    without a word; given the rate, the same file draws an RL024 error."""
    path = FIXTURES / "keras" / "custom_lr_schedule.keras"
    lr = read_model(path).optimizer.learning_rate
    assert lr.schedule == "WarmupHold" and lr.initial is None and lr.config["peak"] == 3.0
    shown = run_reglint(path)
    assert "lr ? (WarmupHold: not computed, give --lr)" in shown.stdout and "not saved" not in shown.stdout
    assert "note: learning-rate schedule WarmupHold is a class reglint cannot compute" in shown.stdout
    notes = json.loads(run_reglint(path, "-f", "json").stdout)["files"][0]["model"]["notes"]
    assert sum("WarmupHold" in n for n in notes) == 1
    given = lint_file(str(path), Settings(context=TrainingContext(learning_rate=3.0)))
    assert not any("WarmupHold" in n for n in given.model.notes)
    assert [f.severity for f in given.findings if f.code == "RL024"] == [Severity.ERROR]


# ---------------------------------------------------------------------------
# D4: MultiOptimizer
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", MULTI)
def test_multi_optimizer_groups_are_keras_assignment_and_decay(name):
    truth = MANIFEST[name]
    model = read_model(HERE / name)
    opt, paths = model.optimizer, keras_paths(model, name)
    assert opt.class_name == "MultiOptimizer" and [g.hyperparameters["class_name"] for g in opt.param_groups] \
        == ["AdamW", "SGD"]
    for group in opt.param_groups:
        members = {paths[loc] for loc in group.variables}
        assert members == {p for p, cls in truth["assignment"]["loaded"].items()
                           if cls == group.hyperparameters["class_name"]}, group
        for path in members:
            assert (group.learning_rate or 0) * (group.weight_decay or 0) == pytest.approx(
                truth["decay_per_step"][path], abs=2e-7)
    # the same variables in the same (sorted-name) order, named as built and as loaded
    built, loaded = (sorted(truth["assignment"][k].items()) for k in ("built", "loaded"))
    differs = [cls for _, cls in built] != [cls for _, cls in loaded]
    assert {g.mapping for g in opt.param_groups} == ({"uncertain"} if differs else {"exact"})


def test_multi_optimizer_settings_are_read_not_reported_unsaved():
    done = run_reglint(HERE / "multi_functional.keras")
    assert "not saved" not in done.stdout and "optimizer: MultiOptimizer lr 0.01, weight_decay 6" in done.stdout
    model = read_model(HERE / "multi_functional.keras")
    assert model.optimizer.family == "adaptive"  # its settings are group 0's, AdamW's
    assert any("group 0 AdamW for 'd1/.*'" in n and "group 1 SGD by default" in n for n in model.notes)


def test_rules_see_the_adamw_groups_decay_on_its_variables_only():
    truth = MANIFEST["multi_functional.keras"]["decay_per_step"]
    found = report("multi_functional.keras")
    (rl003,) = by_code(found, "RL003")
    assert rl003.severity is Severity.ERROR and rl003.values["decoupled_shrink"] == pytest.approx(truth["d1/kernel"])
    (rl006,) = by_code(found, "RL006")
    assert rl006.values["layers"] == ["d1"]
    assert len(by_code(found, "RL007")) == 1
    (rl008,) = by_code(found, "RL008")
    assert rl008.severity is Severity.WARNING and rl008.message.endswith("decays 16 values of 1 bias: d1/bias")


def test_a_sequential_names_its_variables_otherwise_when_built_in_python():
    """``"d1/.*"`` matches ``d1/kernel`` of the model Keras loads from the
    ``.keras`` file, not ``sequential/d1/kernel`` of the model as built:
    the groups follow the load, and a note names what would move."""
    built = MANIFEST["multi_sequential.keras"]["assignment"]["built"]
    model = read_model(HERE / "multi_sequential.keras")
    moved = [n for n in model.notes if "would change group" in n]
    groups = [g.hyperparameters["class_name"] for g in model.optimizer.param_groups]
    changed = [f"{path} to group {groups.index(cls)}" for path, cls in built.items() if "d1/" in path]
    assert len(moved) == 1 and len(changed) == 2 and all(text in moved[0] for text in changed), moved
    found = report("multi_sequential.keras")
    assert by_code(found, "RL006") and by_code(found, "RL007")
    assert [f.severity for f in by_code(found, "RL008")] == [Severity.INFO]
    # the HDF5 file keeps the built names: Keras trains every variable with SGD, nothing decays
    assert not {"RL003", "RL006", "RL007", "RL008"} & {f.code for f in report("multi_sequential.h5").findings}


def test_rl007_judges_each_kernel_by_the_sub_optimizer_keras_gives_it():
    """RL007 took the lead group's family for every kernel: an L2 kernel
    Keras trains with SGD was told to drop its regularizer 'under AdamW',
    and under an SGD lead an AdamW group's L2 kernel went unflagged (and
    RL003 counted its L2 as an SGD shrink)."""
    both = MANIFEST["multi_l2_both.keras"]["assignment"]["loaded"]
    assert both["out/kernel"] == "SGD" and both["d1/kernel"] == "AdamW"  # what Keras does with the file
    (rl007,) = by_code(report("multi_l2_both.keras"), "RL007")
    assert rl007.values["layers"] == ["d1"]
    assert [c.layer for c in rl007.fix.changes] == ["d1"]

    lead = MANIFEST["multi_sgd_lead.keras"]
    assert lead["assignment"]["loaded"]["d1/kernel"] == "AdamW" and lead["decay_per_step"]["d1/kernel"] == 0.0
    found = report("multi_sgd_lead.keras")
    assert read_model(HERE / "multi_sgd_lead.keras").optimizer.family == "sgd"  # SGD decays: it leads
    (rl007,) = by_code(found, "RL007")
    assert rl007.values["layers"] == ["d1"] and rl007.values["learning_rate"] == pytest.approx(1e-3)
    assert "AdamW (in MultiOptimizer)" in rl007.message
    # d1's L2 is Adam's: no SGD shrink or stability finding counts it
    for finding in found.findings:
        if finding.code in ("RL002", "RL003", "RL004", "RL009", "RL024"):
            assert "d1" not in finding.message and finding.layer != "d1", finding.message


def test_rl007_speaks_for_each_adaptive_group_with_its_own_settings():
    """Review 27, D6/D7: RL007 pooled an Adam group with an AdamW group and
    told the Adam-trained kernel that 'AdamW already applies decoupled
    weight_decay' (it drops its only regularization); under an SGD lead an
    AdamW group's chain of drifting kernels was a warning where the same
    model under AdamW alone is an error."""
    truth = MANIFEST["mixed_adam_adamw.keras"]["assignment"]["loaded"]
    assert (truth["d1/kernel"], truth["out/kernel"]) == ("Adam", "AdamW")
    found = {f.layer: f for f in by_code(report("mixed_adam_adamw.keras"), "RL007")}
    assert set(found) == {"d1", "out"}
    assert "under Adam (in MultiOptimizer)" in found["d1"].message
    assert found["d1"].remedy == "use decoupled decay (AdamW) and drop the kernel regularizers"
    assert found["out"].remedy == "drop the kernel regularizers: AdamW (in MultiOptimizer) already applies " \
                                  "decoupled weight_decay 0.1"

    chain = MANIFEST["mixed_adamw_chain_sgd_lead.keras"]["assignment"]["loaded"]
    assert {chain[f"{name}/kernel"] for name in ("a1", "a2", "out")} == {"AdamW"} and chain["d0/kernel"] == "SGD"
    assert read_model(HERE / "mixed_adamw_chain_sgd_lead.keras").optimizer.family == "sgd"
    (rl007,) = by_code(report("mixed_adamw_chain_sgd_lead.keras"), "RL007")
    assert rl007.severity is Severity.ERROR and rl007.values["drifting_chain"] == ["a1", "a2", "out"]
    assert rl007.values["learning_rate"] == pytest.approx(1e-3)


def test_rl002_judges_an_sgd_group_that_does_not_lead():
    """Review 27, D4: the AdamW group leads (it decays), so the SGD group's
    L2(5) at lr 1 went unjudged; under SGD alone it diverges (RL002)."""
    truth = MANIFEST["mixed_sgd_unstable_adamw_lead.keras"]["assignment"]["loaded"]
    assert truth["out/kernel"] == "SGD" and truth["d1/kernel"] == "AdamW"
    assert read_model(HERE / "mixed_sgd_unstable_adamw_lead.keras").optimizer.family == "adaptive"
    (rl002,) = by_code(report("mixed_sgd_unstable_adamw_lead.keras"), "RL002")
    assert (rl002.layer, rl002.severity) == ("out", Severity.ERROR)
    assert rl002.values["stability_fraction"] == pytest.approx(2 * 1.0 * 5.0 / 3.8)


def test_chains_in_an_sgd_group_that_does_not_lead_are_judged():
    """Review 27, D4: RL024 read only the lead's (AdamW's) tensors; three
    L2(0.5) kernels in series under the SGD group shrink as under SGD alone."""
    truth = MANIFEST["mixed_sgd_chain_adamw_lead.keras"]["assignment"]["loaded"]
    assert {truth[f"s{i}/kernel"] for i in (1, 2, 3)} == {"SGD"} and truth["out/kernel"] == "AdamW"
    found = report("mixed_sgd_chain_adamw_lead.keras")
    (rl024,) = by_code(found, "RL024")
    assert rl024.severity is Severity.ERROR and rl024.values["chain"] == ["s1", "s2", "s3"]
    assert rl024.values["learning_rate"] == pytest.approx(0.1) and rl024.values["momentum"] == pytest.approx(0.9)
    # the curves explain and the HTML read come from the same per-group pass
    assert any(c.code == "RL024" for c in found.curves)
    # explain gives each tensor its own group's shrink, the one RL024 judged (it gave the AdamW lead's)
    done = subprocess.run([sys.executable, "-m", "reglint", "explain", str(HERE / "mixed_sgd_chain_adamw_lead.keras"),
                           "-f", "json"], capture_output=True, text=True, timeout=120)
    tensors = {t["layer"]: t for t in json.loads(done.stdout)["tensors"]}
    for name in ("s1", "s2", "s3"):
        assert tensors[name]["optimizer_family"] == "sgd"
        assert tensors[name]["shrink_per_step"] == pytest.approx(rl024.values["shrink_per_step"])
        assert tensors[name]["largest_safe_lambda_bound_by"] == ["RL024"]


# ---------------------------------------------------------------------------
# D5: Muon
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", MUON)
def test_muon_groups_are_keras_adamw_choice_and_decay(name):
    truth = MANIFEST[name]
    model = read_model(HERE / name)
    muon, adamw = model.optimizer.param_groups
    paths = keras_paths(model, name)
    assert {paths[loc] for loc in adamw.variables} == {p for p, adam in truth["adamw"].items() if adam}
    assert {paths[loc] for loc in muon.variables} == {p for p, adam in truth["adamw"].items() if not adam}
    assert muon.mapping == adamw.mapping == "exact"
    for group in (muon, adamw):
        for loc in group.variables:
            assert (group.learning_rate or 0) * (group.weight_decay or 0) == pytest.approx(
                truth["decay_per_step"][paths[loc]], abs=2e-7)


def test_rl008_on_muon_names_adam_weight_decay_and_the_values_it_decays():
    truth = MANIFEST["muon_awd_0.01.keras"]
    model = read_model(HERE / "muon_awd_0.01.keras")
    paths = keras_paths(model, "muon_awd_0.01.keras")
    offsets = {Role.BIAS, Role.GAMMA, Role.BETA, Role.EMBEDDINGS}
    decayed = sum(v.size for _, v in model.variables() if v.role in offsets and truth["adamw"][paths[v.location]]
                  and truth["decay_per_step"][paths[v.location]] > 0)
    (rl008,) = by_code(report("muon_awd_0.01.keras"), "RL008")
    assert rl008.message.startswith("adam_weight_decay 0.01 (param group 1") and "weight_decay 0.1" not in \
        rl008.message
    assert rl008.values["values_decayed"] == decayed == 203
    assert "adam_weight_decay=None" in rl008.remedy


def test_muon_without_adam_weight_decay_decays_no_bias():
    truth = MANIFEST["muon_awd_none.keras"]["decay_per_step"]
    assert {p: rate for p, rate in truth.items() if rate} == {"d1/kernel": pytest.approx(0.002, rel=1e-4)}
    assert not by_code(report("muon_awd_none.keras"), "RL008")


def test_muon_exclude_layers_that_are_no_regular_expressions_are_named(tmp_path):
    """Keras re.search-es each entry for every 2-D variable it does not
    send to AdamW first: 'd1(' raised re.error in keras.models.load_model
    of this very edit (Keras 3.15.1, muon.py _should_use_adamw)."""
    def bad_pattern(cfg):
        cfg["compile_config"]["optimizer"]["config"]["exclude_layers"] = ["d1(", "head"]

    edited = rewrite_keras_zip(HERE / "muon_awd_0.01.keras", tmp_path / "muon_bad.keras", config=bad_pattern)
    notes = [n for n in read_model(edited).notes if "not regular expressions" in n]
    assert notes == ["Muon: exclude_layers 'd1(' are not regular expressions: Keras raises re.error on them when it "
                     "builds the optimizer (in load_model where the file holds the optimizer's variables, else at "
                     "the first training step)"]
    assert not [n for n in read_model(HERE / "muon_awd_0.01.keras").notes if "not regular expressions" in n]


def test_the_terminal_report_says_a_growing_schedule_has_no_finite_peak(capsys):
    from reglint.cli.app import main

    main(["check", str(HERE / "sched_exponential_growing.keras"), "--no-cache", "--color", "never"])
    out = capsys.readouterr().out
    assert "lr 0.01 (ExponentialDecay, no finite peak)" in out and "peak ?" not in out


def test_profile_reads_the_leading_sub_optimizer(tmp_path):
    """Review 28, D4: profile read a MultiOptimizer's top-level config, which
    holds no learning rate or weight_decay ('MultiOptimizer lr ?'): a
    decay-only model was 'nothing-removed' while RL003 erred on its decay."""
    pytest.importorskip("keras")
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 10)).astype("float32")
    np.savez(tmp_path / "data.npz", x=x, y=(2 * x[:, :3]).astype("float32"))
    done = subprocess.run([sys.executable, "-m", "reglint", "profile", str(HERE / "multi_functional.keras"), "--data",
                           str(tmp_path / "data.npz"), "--steps", "10", "--device", "cpu", "-f", "json"],
                          capture_output=True, text=True, timeout=600)
    profile = json.loads(done.stdout)["files"][0]["model"]["analysis"]["profile"]
    assert profile["optimizer"]["class"] == "AdamW (in MultiOptimizer)"
    assert profile["optimizer"]["weight_decay"] == 6.0 and profile["optimizer"]["learning_rate"] == pytest.approx(0.01)
    assert "optimizer weight_decay 6" in profile["twin"]["removed"]


def test_rl007_drift_under_rmsprop_momentum_is_keras_own():
    """Review 30, D6: RL007 said a penalized weight drifts 'at about lr
    0.001 per step' under RMSprop(momentum=0.9); Keras' own RMSprop moves it
    ~0.009 per step (the manifest): heavy-ball momentum adds the normalised
    steps up to lr/(1-momentum)."""
    measured = MANIFEST["rmsprop_momentum_l2.keras"]["drift_per_step"]
    (rl007,) = by_code(report("rmsprop_momentum_l2.keras"), "RL007")
    assert rl007.values["drift_per_step"] == pytest.approx(measured, rel=0.2)
    assert rl007.values["learning_rate"] == pytest.approx(1e-3)
    assert "about 0.01 (lr/(1-momentum) at momentum 0.9) per step" in rl007.message


def test_an_optimizer_lost_from_the_config_but_kept_in_the_weights_is_noted():
    """Review 30, D8: saved as .h5 then as .keras, Keras 3.15 drops the
    optimizer from compile_config and keeps its state; load_model compiles
    RMSprop and resumes at the saved step. Linted as 'no optimizer', silently."""
    truth = MANIFEST["resaved_after_h5.keras"]["loaded"]
    assert truth == {"class": "RMSprop", "iterations": 5}
    found = report("resaved_after_h5.keras")
    assert found.model.optimizer is None
    (note,) = [n for n in found.model.notes if "names no optimizer" in n]
    assert f"({truth['iterations']} steps taken)" in note and "'rmsprop'" in note


@pytest.mark.parametrize(("name", "floor"), [("floor_rmsprop.keras", "sqrt(epsilon)"),
                                             ("floor_adagrad.keras", "sqrt(epsilon + initial_accumulator_value)"),
                                             ("floor_adadelta.keras", "Adadelta's sqrt(E[dx^2] + eps)")])
def test_a_penalty_gradient_under_keras_floor_is_a_plain_l2(name, floor):
    """Review 32, D4/D5: Keras' RMSprop and Adagrad divide by
    sqrt(v + epsilon) (Adagrad's accumulator starts at 0.1): a penalty
    gradient under that floor is not normalised. RL007 said 0.002 per step
    (eps taken as torch's) and 'lr 0.05 at its first step'; Keras shrinks
    the kernel by the manifest's value."""
    (rl007,) = by_code(report(name), "RL007")
    assert floor in rl007.message
    shown = float(rl007.message.rsplit("by about ", 1)[1].split(" ")[0])
    assert shown == pytest.approx(MANIFEST[name]["shrink_per_step"], rel=0.05)


def test_keras_adam_reaches_its_eps_floor_only_after_the_warm_up():
    """Review 33, D9: Keras' Adam adds epsilon to sqrt(v) before the bias
    correction, so a penalty gradient under it is stepped at
    lr*g*sqrt(1-beta_2^t)/eps: the plain-L2 rate RL007 quotes is reached
    only after ~1/(1-beta_2) steps. The shares are those Keras' own Adam
    shrank the kernel at (manifest), not the formula's."""
    truth = MANIFEST["floor_adam.keras"]
    (rl007,) = by_code(report("floor_adam.keras"), "RL007")
    shown = float(rl007.message.rsplit("by about ", 1)[1].split(" ")[0])
    assert shown == pytest.approx(truth["shrink_per_step"], rel=0.05)
    warmup = rl007.message.split("on average ", 1)[1]
    first, thousand = float(warmup.split(" of it")[0]), float(warmup.split(", ")[1].split(" over")[0])
    assert first == pytest.approx(truth["warmup_share_100"], rel=0.05)
    assert thousand == pytest.approx(truth["warmup_share_1000"], rel=0.05)


def test_an_optimizer_whose_floor_has_no_warm_up_says_none():
    """Keras' RMSprop has no bias correction: no warm-up in its floor."""
    (rl007,) = by_code(report("floor_rmsprop.keras"), "RL007")
    assert "bias correction" not in rl007.message


def test_a_multioptimizer_group_is_judged_at_its_own_epsilon():
    """Review 33: the floor came from the top-level epsilon (the lead AdamW's
    1e-7), so a group Adam with epsilon 1e-3 was said to drift 'at about lr
    per step', 5x faster than Keras' own group optimizer moves the kernel."""
    truth = MANIFEST["group_adam_floor.keras"]
    assert (truth["sub_optimizer"], truth["sub_epsilon"], truth["lead_epsilon"]) == ("Adam", 1e-3, 1e-7)
    (rl007,) = by_code(report("group_adam_floor.keras"), "RL007")
    assert "is below 0.001" in rl007.message
    shown = float(rl007.message.rsplit("by about ", 1)[1].split(" ")[0])
    assert shown == pytest.approx(truth["shrink_per_step"], rel=0.05)


def test_a_weaker_layer_inside_a_chain_is_named_with_its_shrink():
    """Review 32, D11: RL024 named its chain 's1, s3', which reads as s1
    feeding s3; in Keras' graph s1 feeds s2, which feeds s3 with an L2 that
    shrinks it 2*0.03*1e-3/0.1 = 6e-4 per step."""
    assert MANIFEST["chain_weak_middle.keras"]["feeds"] == {"s1": "s2", "s2": "s3"}
    (rl024,) = by_code(report("chain_weak_middle.keras"), "RL024")
    assert rl024.values["chain"] == ["s1", "s3"]
    assert "(s1, s3; s2, in series with them, shrinks only 6.00e-4 per step)" in rl024.message


@pytest.mark.parametrize("name", ["mixed_float16_sgd.h5", "mixed_float16_rmsprop.h5"])
def test_a_mixed_precision_h5_counts_the_inner_optimizers_steps(name):
    """Review 34, D2: under mixed_float16 the .h5 holds the
    LossScaleOptimizer's counter (never advanced) beside the inner
    optimizer's; the first in sorted order was read: 0 steps where Keras
    took 2."""
    truth = MANIFEST[name]
    assert "loss_scale_optimizer/iteration" in truth["counters_in_file"]
    assert report(name).model.optimizer.iterations == truth["iterations"] == 2


CLIPPED = ["clipnorm_sgd.keras", "clipvalue_sgd.keras"]


@pytest.mark.parametrize("name", CLIPPED)
def test_a_clipped_sgd_is_not_said_to_diverge(name):
    """Review 34, D1: RL002 erred 'the penalty alone diverges' (f = 1.3 and
    2.5) where Keras clips the penalty's gradient: its own SGD never grew
    the kernel past its saved norm in 200 steps. The unclipped twin
    overflowed, and keeps its error."""
    truth, twin = MANIFEST[name], MANIFEST["unclipped_sgd.keras"]
    assert truth["finite"] and truth["norm_max"] <= truth["norm_saved"] * 1.0001
    assert not twin["finite"]
    clipped = by_code(report(name), "RL002")
    assert clipped and all(f.severity is Severity.WARNING and "instead of diverging" in f.message for f in clipped)
    assert {f.severity for f in by_code(report("unclipped_sgd.keras"), "RL002")} == {Severity.ERROR}


@pytest.mark.parametrize("name", ["clipvalue_sgd.keras", "global_clipnorm_sgd.keras"])
def test_rl024_gives_the_shrink_the_clip_allows(name):
    """Review 34, D1: under global_clipnorm 1 RL024 said 0.2 per step where
    Keras' SGD shrank the kernel 1.6%; under clipvalue 0.01, 5 per step
    where it shrank 3.1%. The clipped shrink is within 10% of Keras'
    (manifest ``shrink_first_steps``, the first 10 steps' mean), and
    explain shows the same number."""
    truth = MANIFEST[name]["shrink_first_steps"]
    found = report(name)
    (rl024,) = by_code(found, "RL024")
    shown = float(rl024.message.split("kernels shrink about ", 1)[1].split(" ")[0])
    assert shown == pytest.approx(truth, rel=0.1)
    from reglint.cli.explain import explain_tensor

    rows = [explain_tensor(found, p) for p in found.analysis.penalties]
    assert min(row["clipped"]["shrink_per_step"] for row in rows) == pytest.approx(shown, rel=0.01)


def test_a_decay_error_beside_a_kernel_l2_over_the_aim_still_has_a_fix():
    """Review 35, D2: weight_decay 0.5 at lr 0.3 (Keras measured 0.15 per
    step, manifest) beside d1's L2(0.01) (2*0.3*0.01 = 0.006 per step, over
    the 0.005 aim) left no safe weight_decay, and the error carried no
    remedy and no fix. The fix drops the decay and brings the L2 to the aim."""
    assert MANIFEST["const_sgd_wd.keras"]["decay_per_step"]["0"]["d1/kernel"] == pytest.approx(0.15, rel=1e-3)
    (rl003,) = by_code(report("const_sgd_wd.keras"), "RL003")
    assert rl003.remedy and rl003.remedy.startswith("drop weight_decay")
    changes = {c.parameter: c for c in rl003.fix.changes}
    assert changes["weight_decay"].suggested == 0.0
    assert 2 * 0.3 * changes["lambda"].suggested == pytest.approx(0.005)


def test_an_unstable_sgd_under_mixed_precision_says_training_stalls():
    """Review 34, D6: under mixed_float16 Keras' compile wraps the optimizer
    in a LossScaleOptimizer (the .keras file saves the SGD it was given):
    the overflowing steps are skipped (Keras applied 5 of 80), the loss
    turns NaN and the weights stay finite. RL002 said only 'diverges'."""
    truth = MANIFEST["mixed_float16_unstable.keras"]
    assert truth["optimizer"] == "LossScaleOptimizer" and truth["loss_final_is_nan"] and truth["weights_finite"]
    assert truth["steps_applied"] < truth["batches"] / 4
    found = report("mixed_float16_unstable.keras")
    assert found.model.optimizer.class_name == "SGD"
    rl002 = by_code(found, "RL002")
    assert rl002 and all(f.severity is Severity.ERROR and "training stalls" in f.message for f in rl002)


def test_a_loose_clip_leaves_the_instability_an_error_with_the_growth_keras_shows():
    """Review 36, D2: RL002 called any clip a bound; clipnorm 100 let Keras'
    SGD grow the kernel 24x past its saved norm on the penalty alone. The
    error stays, with the growth the simulation gives (within 15%)."""
    truth = MANIFEST["clipnorm_loose_sgd.keras"]
    growth = truth["norm_max"] / truth["norm_saved"]
    (d1,) = [f for f in by_code(report("clipnorm_loose_sgd.keras"), "RL002") if f.layer == "d1"]
    assert d1.severity is Severity.ERROR
    shown = float(d1.message.split("grown to about ", 1)[1].split("x")[0])
    assert shown == pytest.approx(growth, rel=0.15)


@pytest.mark.parametrize("name", ["global_clipnorm_mixed_sgd.keras", "global_clipnorm_mixed_momentum_sgd.keras"])
def test_a_global_clip_releases_every_tensor_at_the_step_keras_does(name):
    """Review 36, D3/D4: the steps before the linear rate were worked out per
    tensor (d0 ~1,054, d1 ~263, out ~105) where a global clip releases all
    of them together (Keras: step 227; 54 under momentum 0.9, where the
    steady-state pace also overstated the first steps)."""
    truth = MANIFEST[name]["release_step"]
    (rl024,) = by_code(report(name), "RL024")
    shown = float(rl024.message.split("for ~", 1)[1].split(" step")[0].replace(",", ""))
    assert shown == pytest.approx(truth, abs=2)


def test_a_file_past_adams_warm_up_is_not_told_about_it():
    """Review 36, D8: the warm-up sentence ignored the steps the file had
    taken: after 3,000 steps Keras' Adam shrank the kernel at 0.97 of the
    rate over the next 100 (manifest), where RL007 said '0.21 of it over
    the first 100 steps'."""
    truth = MANIFEST["floor_adam_resumed.keras"]
    assert truth["next_100_share"] > 0.95
    found = report("floor_adam_resumed.keras")
    assert found.model.optimizer.iterations == truth["iterations"]
    (rl007,) = by_code(found, "RL007")
    assert "is below 0.001" in rl007.message and "bias correction" not in rl007.message


@pytest.mark.parametrize("name", ["ftrl_l2.keras", "ftrl_l1.keras"])
def test_ftrls_own_penalties_are_reported(name):
    """Review 40, 3: Ftrl's ``l1/l2_regularization_strength`` act in its own
    update and showed nowhere (optimizer line, JSON, explain said 'nothing to
    explain'). They are in the JSON's ``own_penalties``, the optimizer line,
    and explain, whose L2 effect at the start is Keras' own one-step ratio
    (manifest ``one_step_ratio``) within the squared gradients' 5%."""
    import json as json_module

    truth = MANIFEST[name]
    done = run_reglint("check", str(HERE / name), "--format", "json")
    optimizer = json_module.loads(done.stdout)["files"][0]["model"]["optimizer"]
    assert optimizer["own_penalties"] == truth["settings"]
    text = run_reglint(str(HERE / name)).stdout
    key, value = next(iter(truth["settings"].items()))
    assert f"{key} {value:g}" in text
    def explain(*args):  # explain keeps no cache: no --no-cache
        return subprocess.run([sys.executable, "-m", "reglint", "explain", str(HERE / name), *args],
                              capture_output=True, text=True, timeout=120).stdout

    explained = json_module.loads(explain("--format", "json"))
    own = explained["optimizer_own_penalties"]
    assert own["strengths"] == truth["settings"]
    if "one_step_ratio" in truth:
        assert own["l2_scale_at_start"] == pytest.approx(truth["one_step_ratio"], rel=0.05)
    plain = explain()
    assert "nothing to explain" not in plain and "own penalties" in plain


def test_the_optimizer_line_and_the_json_say_ema_and_clipping():
    """Review 71, 6: ``use_ema`` (``fit`` leaves the weights' moving
    average in the model) and ``global_clipnorm`` were read (the clipping
    rules use it) and shown nowhere: "optimizer: AdamW lr 0.001"."""
    truth = MANIFEST["ema_adamw.keras"]["settings"]
    optimizer = json.loads(run_reglint("check", str(HERE / "ema_adamw.keras"), "--format", "json").stdout
                           )["files"][0]["model"]["optimizer"]
    assert optimizer["ema_momentum"] == truth["ema_momentum"]
    assert optimizer["clipping"] == {"kind": "global_clipnorm", "value": truth["global_clipnorm"]}
    line = next(x for x in run_reglint(str(HERE / "ema_adamw.keras")).stdout.splitlines() if "optimizer:" in x)
    assert "global_clipnorm 1, EMA of the weights 0.95 (use_ema)" in line
    plain = json.loads(run_reglint("check", str(HERE / "clipnorm_sgd.keras"), "--format", "json").stdout)
    assert plain["files"][0]["model"]["optimizer"]["ema_momentum"] is None


def test_a_layer_outside_a_rules_chain_is_not_bounded_by_it():
    """Review 72, 2: the output's L1 lies outside RL024's chain (d1, d2),
    yet explain bounded it by RL024 (the model-wide multiplier times its
    own lambda): raising it moves no shrink RL024 judges. The chain's own
    kernels keep RL024's bound."""
    done = subprocess.run([sys.executable, "-m", "reglint", "explain", str(HERE / "chain_and_l1_head_sgd.keras"),
                           "--format", "json"], capture_output=True, text=True, timeout=120)
    rows = {(t["layer"], t["variable"]): t for t in json.loads(done.stdout)["tensors"]}
    assert rows[("out", "kernel")]["largest_safe_lambda_bound_by"] == ["RL001"]
    assert rows[("d1", "kernel")]["largest_safe_lambda_bound_by"] == ["RL024"]
    sweep = json.loads(run_reglint("check", str(HERE / "chain_and_l1_head_sgd.keras"), "--format", "json").stdout
                       )["files"][0]["model"]["analysis"]["sweep"]
    assert {c["code"]: c["layers"] for c in sweep["curves"]}["RL024"] == ["d1", "d2"]
    assert sweep["bound_by"] == ["RL024"]  # the model-wide multiplier: every lambda together
