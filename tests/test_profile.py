"""``reglint profile``: measured gradients, a short run and measured findings.

The models are tiny real Keras models built once per session in a temporary
folder; every profile runs on the CPU in a second or two. Tests that need
TensorFlow are marked ``slow``; the refusals run before TensorFlow is
imported and are fast.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from reglint.cli.app import main
from reglint.profile.data import trivial_loss
from reglint.profile.result import Start
from reglint.profile.run import COLLAPSE_SHRINK, DIVERGE_FACTOR, classify

ROOT = Path(__file__).resolve().parents[1]
REGLINT = Path(sys.executable).with_name("reglint")
KERAS_FIXTURES = ROOT / "fixtures" / "keras"


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Tiny saved models: healthy, SGD-unstable, penalty-dominated, Lambda,
    uncompiled, plus a learnable .npz data set."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    keras = pytest.importorskip("keras")
    folder = tmp_path_factory.mktemp("profile_models")
    keras.utils.set_random_seed(0)

    def mlp(widths, reg, activation="softmax"):
        layers = [keras.Input((widths[0],))]
        layers += [keras.layers.Dense(w, activation="relu", kernel_regularizer=reg) for w in widths[1:-1]]
        layers.append(keras.layers.Dense(widths[-1], activation=activation, kernel_regularizer=reg))
        return keras.Sequential(layers)

    out = {}

    def save(name, model):
        out[name] = folder / f"{name}.keras"
        model.save(out[name])

    healthy = mlp([20, 32, 3], keras.regularizers.L2(1e-4))
    healthy.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    save("healthy", healthy)

    unstable = mlp([20, 32, 3], keras.regularizers.L2(50.0))
    unstable.compile(keras.optimizers.SGD(0.5, momentum=0.9), "sparse_categorical_crossentropy")
    save("unstable", unstable)

    dominated = mlp([20, 128, 128, 3], keras.regularizers.L2(1.0))
    dominated.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    save("dominated", dominated)

    save("uncompiled", mlp([20, 32, 3], keras.regularizers.L2(1e-3)))

    # coupled L2(1) under plain SGD: each step shrinks an unsupported weight by 2*lr*l2 = 2%
    collapsing = mlp([20, 128, 3], keras.regularizers.L2(1.0))
    collapsing.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    save("collapsing", collapsing)

    # L2(0.3) on every kernel under SGD(0.03, momentum 0.9): a coupled shrink
    # of 2*lr*l2/(1-mu) = 18% per step, which flattens the net within tens of
    # steps on any data; its unregularized twin learns the linear labels
    wrecked = mlp([20, 64, 3], keras.regularizers.L2(0.3))
    wrecked.compile(keras.optimizers.SGD(0.03, momentum=0.9), "sparse_categorical_crossentropy")
    save("wrecked", wrecked)

    # L2(10) on BatchNorm gamma only: a penalty far above the data loss that
    # the next layer absorbs (calibration: such runs stayed healthy)
    gamma = keras.Sequential([keras.Input((20,)), keras.layers.Dense(32, use_bias=False),
                              keras.layers.BatchNormalization(gamma_regularizer=keras.regularizers.L2(10.0)),
                              keras.layers.ReLU(), keras.layers.Dense(3, activation="softmax")])
    gamma.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    save("gamma", gamma)

    inputs = keras.Input((20,))
    hidden = keras.layers.Dense(16, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-3))(inputs)
    scaled = keras.layers.Lambda(lambda t: t * 0.5, name="halve")(hidden)
    lam = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(scaled))
    lam.compile("adam", "sparse_categorical_crossentropy")
    save("lambda", lam)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 20)).astype("float32")
    y = (x @ rng.standard_normal((20, 3))).argmax(axis=1)
    out["data"] = folder / "data.npz"
    np.savez(out["data"], inputs=x, labels=y)
    return out


def profile_json(capsys, *args: str) -> tuple[int, dict, str]:
    """Run ``reglint profile ... -f json`` in-process: (exit code, JSON, stderr)."""
    code = main(["profile", *args, "-f", "json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else {}), captured.err


def measured(report: dict, code: str | None = None) -> list[dict]:
    return [f for f in report["files"][0]["findings"] if f["measured"] and (code is None or f["code"] == code)]


def profile_of(report: dict) -> dict:
    return report["files"][0]["model"]["analysis"]["profile"]


# ---------------------------------------------------------------------------
# measured runs (TensorFlow)


@pytest.mark.slow
def test_healthy_model_learns_without_error_findings(models, capsys):
    code, report, err = profile_json(capsys, str(models["healthy"]), "--steps", "15")
    assert code == 0, err
    prof = profile_of(report)
    assert prof["outcome"]["label"] == "learning"
    assert prof["steps"]["taken"] == 15 and len(prof["steps"]["trajectory"]) == 15
    assert not [f for f in report["files"][0]["findings"] if f["severity"] == "error"]
    assert "synthetic data: only the scale at initialisation was measured" in prof["notes"]
    assert prof["device_kind"] in ("cpu", "gpu") and prof["seconds"]["run"] > 0
    assert prof["backend"] == "tensorflow"  # the test process runs Keras on TensorFlow


@pytest.mark.slow
def test_sgd_l2_unstable_diverges_with_measured_rl002(models, capsys):
    code, report, _ = profile_json(capsys, str(models["unstable"]), "--steps", "20")
    assert code == 1
    prof = profile_of(report)
    assert prof["outcome"]["label"] == "diverged"
    rl002 = measured(report, "RL002")
    assert rl002 and all(f["severity"] == "error" for f in rl002)
    assert rl002[0]["values"]["stability_fraction"] > 1
    assert "the static check estimated it too (error)" in rl002[0]["message"]
    # the static finding is kept next to the measured one
    assert any(f["code"] == "RL002" and not f["measured"] for f in report["files"][0]["findings"])


@pytest.mark.slow
def test_dominating_l2_gives_measured_rl001_error(models, capsys):
    code, report, _ = profile_json(capsys, str(models["dominated"]), "--steps", "3")
    assert code == 1
    (rl001,) = measured(report, "RL001")
    assert rl001["severity"] == "error"
    assert rl001["values"]["penalty_ratio"] > 1
    assert "measured penalty/data ratio" in rl001["message"] and "static estimate" in rl001["message"]
    # measured and static agree within the init-scale spread of one draw
    assert 0.5 < rl001["values"]["penalty_ratio"] / rl001["values"]["static_penalty_ratio"] < 2


@pytest.mark.slow
def test_measured_penalty_behind_a_final_layernorm_warns_like_the_static_rule(capsys):
    # L2 0.3 on every kernel of a pre-norm transformer: ~95x the data loss measured, but all except the
    # classifier's share reaches the output through the final LayerNorm; check and profile give one verdict
    model = ROOT / "fixtures" / "scenarios" / "scenario_prenorm_l2_strong.keras"
    code, report, err = profile_json(capsys, str(model), "--steps", "3")
    assert code == 0, err
    (static,) = [f for f in report["files"][0]["findings"] if f["code"] == "RL001" and not f["measured"]]
    (rl001,) = measured(report, "RL001")
    assert rl001["values"]["penalty_ratio"] > 18 > rl001["values"]["penalty_ratio_unnormalized"]
    assert rl001["severity"] == static["severity"] == "warning"
    assert "behind a normalization layer" in rl001["message"]
    rows = {v["layer"]: v for v in profile_of(report)["variables"]}
    assert [layer for layer, v in rows.items() if not v["behind_norm"] and v["regularizer"]] == \
        [report["files"][0]["model"]["layers"][-1]["path"]]


@pytest.mark.slow
def test_ftrl_own_l1_is_removed_in_the_twin_and_named_as_the_cause(tmp_path, capsys):
    # Ftrl(l1_regularization_strength=0.01) zeroed the saved kernels in one step; the twin runs Ftrl without it
    model = KERAS_FIXTURES / "ftrl_l1_one_step.keras"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(320, 8)).astype("float32")
    np.savez(tmp_path / "data.npz", x=x, y=(x @ rng.normal(size=(8, 3))).argmax(1).astype("int32"))
    code, report, err = profile_json(capsys, str(model), "--data", str(tmp_path / "data.npz"), "--steps", "30")
    assert code == 1, err
    prof = profile_of(report)
    assert prof["optimizer"]["own_penalties"] == {"l1_regularization_strength": pytest.approx(0.01)}
    assert "optimizer l1_regularization_strength 0.01" in prof["twin"]["removed"]
    (rl017,) = measured(report, "RL017")
    assert "Ftrl's own l1_regularization_strength 0.01" in rl017["message"]
    assert "l1_regularization_strength" in rl017["remedy"]


@pytest.mark.slow
def test_twin_records_the_layers_that_predict_with_moving_statistics(tmp_path, capsys):
    """The BatchNorm fixture's twin names both BatchNormalization layers and
    their momentum (RL023 reads it to name a stale-statistics collapse); its
    LayerNorm counterpart has none."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 8, 8, 1)).astype("float32")
    np.savez(tmp_path / "data.npz", x=x, y=(x.reshape(160, -1)[:, :10].argmax(1)).astype("int32"))
    found = {}
    for name in ("scenario_bn_statistics_lag.keras", "scenario_ln_no_statistics.keras"):
        code, report, err = profile_json(capsys, str(KERAS_FIXTURES / name), "--data", str(tmp_path / "data.npz"),
                                         "--steps", "12")
        assert code in (0, 1), err
        found[name] = profile_of(report)["twin"]["moving_statistics"]
    assert found["scenario_bn_statistics_lag.keras"] == {"layers": ["batch_normalization", "batch_normalization_1"],
                                                         "momentum": pytest.approx(0.99)}
    assert found["scenario_ln_no_statistics.keras"] is None


@pytest.mark.slow
def test_collapsing_run_gives_measured_rl017(models, capsys):
    code, report, _ = profile_json(capsys, str(models["collapsing"]), "--steps", "20")
    assert code == 1
    outcome = profile_of(report)["outcome"]
    assert outcome["label"] == "collapsing"
    assert outcome["kernel_norm_change"] < -COLLAPSE_SHRINK
    (rl017,) = measured(report, "RL017")
    assert "2*lr*l2/(1-b)" in rl017["message"]
    # the twin has not learned the synthetic batch in 20 steps, but its loss is still falling (1.14 -> 1.08 over
    # the second half): a run cut short, not one settled at the constant predictor, so the signature stands
    assert rl017["severity"] == "error" and "did not learn either" not in rl017["message"]


@pytest.mark.slow
def test_json_holds_measured_per_variable_gradients(models, capsys):
    _, report, _ = profile_json(capsys, str(models["dominated"]), "--steps", "2")
    prof = profile_of(report)
    kernels = {v["layer"]: v for v in prof["variables"]}
    assert len(kernels) == 3
    for row in kernels.values():
        assert row["grad_data_norm"] > 0 and row["grad_penalty_norm"] > 0
        assert math.isclose(row["ratio"], row["grad_penalty_norm"] / row["grad_data_norm"], rel_tol=1e-6)
        # L2: |dP/dw| = 2*l2*|w| exactly, no activity penalty here
        assert math.isclose(row["grad_penalty_norm"], 2 * 1.0 * row["weight_norm"], rel_tol=1e-4)
        assert row["update_ratio"] is not None and row["update_ratio_data"] is not None
    assert math.isclose(sum(v["share"] for v in kernels.values()), 1.0, rel_tol=1e-6)
    assert math.isclose(prof["initial"]["weight_penalty"], sum(v["penalty"] for v in kernels.values()), rel_tol=1e-5)


@pytest.mark.slow
def test_data_npz_is_used(models, capsys):
    code, report, err = profile_json(capsys, str(models["healthy"]), "--data", str(models["data"]),
                                     "--x-key", "inputs", "--y-key", "labels", "--batch-size", "64",
                                     "--steps", "8")
    assert code == 0, err
    prof = profile_of(report)
    assert prof["data"]["source"] == "file" and prof["data"]["samples"] == 256
    assert prof["data"]["batch_size"] == 64
    assert not any("synthetic" in note for note in prof["notes"])
    assert prof["outcome"]["label"] == "learning"


@pytest.mark.slow
def test_uncompiled_model_measures_gradients_without_steps(models, capsys):
    code, report, err = profile_json(capsys, str(models["uncompiled"]))
    assert code in (0, 1), err
    prof = profile_of(report)
    assert prof["optimizer"] is None and prof["steps"]["taken"] == 0
    assert prof["outcome"]["label"] == "not-run"
    assert prof["loss"]["source"] == "default" and prof["loss"]["names"] == ["sparse_categorical_crossentropy"]
    assert any("uncompiled" in note for note in prof["notes"])
    assert all(v["grad_data_norm"] > 0 for v in prof["variables"])


@pytest.mark.slow
def test_lambda_model_runs_with_trust_model(models, capsys):
    code, report, err = profile_json(capsys, str(models["lambda"]), "--trust-model", "--steps", "2")
    assert code in (0, 1), err
    assert profile_of(report)["steps"]["taken"] == 2
    # the Lambda layer has no row in the table: a note says why, and what was measured of it
    assert any(note.startswith("1 Lambda layer (halve) ran as Python code") for note in profile_of(report)["notes"])


def test_check_notes_the_lambda_layer_it_skips(models, capsys):
    assert main(["check", str(models["lambda"]), "--no-cache"]) in (0, 1)
    out = capsys.readouterr().out
    assert "note: 1 Lambda layer (halve) holds Python code reglint neither reads nor runs" in out


@pytest.mark.slow
def test_full_report_prints_table_and_summary(models, capsys):
    code = main(["profile", str(models["unstable"]), "--steps", "20"])
    out = capsys.readouterr().out
    assert code == 1
    for text in ("|g_data|", "|g_pen|", "update/|w|", "device:", "outcome: diverged", "(measured)", "(static)"):
        assert text in out, text


@pytest.mark.slow
def test_gamma_penalty_is_absorbed_not_counted_as_dominating(models, capsys):
    code, report, err = profile_json(capsys, str(models["gamma"]), "--data", str(models["data"]),
                                     "--x-key", "inputs", "--y-key", "labels", "--steps", "5")
    assert code == 0, err
    (row,) = [v for v in profile_of(report)["variables"] if v["variable"] == "gamma"]
    # the penalty is measured (10 * 32 ones = 320, far above the data loss) but not counted
    assert row["absorbed"] and row["penalty"] == pytest.approx(320.0, rel=1e-5)
    assert not [f for f in report["files"][0]["findings"] if f["code"] == "RL001"]
    assert any(f["code"] == "RL008" for f in report["files"][0]["findings"])


@pytest.mark.slow
def test_html_report_embeds_the_measurement(models, tmp_path, capsys):
    page = tmp_path / "profile.html"
    code = main(["profile", str(models["dominated"]), "--steps", "2", "--format", "html",
                 "--output-file", str(page)])
    capsys.readouterr()
    assert code == 1
    html = page.read_text()
    # the embedded JSON carries the measured gradients, the page a profile section
    assert '"grad_penalty_norm"' in html
    assert "Profile (measured)</h3>" in html


# ---------------------------------------------------------------------------
# the unregularized twin (RL023)


TWIN_KEYS = {"step", "data_loss", "val_loss", "val_accuracy", "kernel_norm"}


@pytest.fixture(scope="module")
def wrecked_twin(models, tmp_path_factory) -> dict:
    """One default-budget profile of the wrecked model on the .npz (JSON)."""
    out = tmp_path_factory.mktemp("twin") / "wrecked.json"
    code = main(["profile", str(models["wrecked"]), "--data", str(models["data"]), "--x-key", "inputs",
                 "--y-key", "labels", "-f", "json", "-o", str(out)])
    return {"code": code, "report": json.loads(out.read_text())}


@pytest.mark.slow
def test_l2_that_wrecks_training_gets_rl023_error_with_both_runs(wrecked_twin):
    assert wrecked_twin["code"] == 1
    report = wrecked_twin["report"]
    twin = profile_of(report)["twin"]
    # the JSON shape the HTML report draws
    assert {"steps", "budget", "runs", "verdict"} <= set(twin)
    assert set(twin["budget"]) >= {"steps", "reason"} and {"label", "message"} <= set(twin["verdict"])
    assert twin["verdict"]["learned_as_well"] is False  # the static errors stand
    pen, ref = twin["runs"]["penalized"], twin["runs"]["unregularized"]
    for run in (pen, ref):
        assert set(run) >= TWIN_KEYS
        assert run["step"][0] == 0 and run["step"][-1] == twin["steps"]
        assert all(len(run[k]) == len(run["step"]) for k in TWIN_KEYS)
    # both runs start from the same saved weights on the same first batch
    assert pen["data_loss"][0] == ref["data_loss"][0] and pen["val_loss"][0] == ref["val_loss"][0]
    assert twin["start"]["weights"].startswith("saved")
    # the penalty flattened the kernels; without it they grew and the twin learned
    assert pen["kernel_norm"][-1] < 0.1 * pen["kernel_norm"][0] < ref["kernel_norm"][-1]
    chance = twin["held_out"]["chance"]
    assert ref["val_accuracy"][-1] > chance + 0.3 and pen["val_accuracy"][-1] < chance + 0.05
    assert twin["verdict"]["label"] == "collapsed"
    (rl023,) = measured(report, "RL023")
    assert rl023["severity"] == "error" and rl023["message"].startswith(twin["verdict"]["message"])
    # the fix is what RL001/RL003 compute (the smaller of the two scales, for every kernel), measured
    changes = rl023["fix"]["changes"]
    assert {c["layer"] for c in changes} == {v["layer"] for v in profile_of(report)["variables"]}
    assert all(c["parameter"] == "lambda" and 0 < c["suggested"] < 0.3 * 0.2 for c in changes)
    # the gradient ratios are kept as evidence
    assert rl023["values"]["gradient_ratios"] and rl023["values"]["penalty_ratio"] > 1
    # a fifth of the file held back, never trained on
    assert profile_of(report)["data"]["held_out"] == round(256 * 0.2) == twin["held_out"]["samples"]


@pytest.mark.slow
def test_rl023_measures_its_fix(wrecked_twin):
    """Review 42, 5: RL023's formula fixes, applied to real trainings,
    still wrecked two of them. The profile runs the recipe again with the
    fix (same saved weights, batches and steps as the pair), then one
    decade lower if that still trails the twin, and reports the first value
    that trains within the warning gap as the fix."""
    report = wrecked_twin["report"]
    twin = profile_of(report)["twin"]
    (rl023,) = measured(report, "RL023")
    trials = twin["fix_trials"]
    assert 1 <= len(trials) <= 2 and rl023["values"]["fix_trials"]
    pen = twin["runs"]["penalized"]
    for trial in trials:
        run = trial["run"]
        assert run["step"][0] == 0 and run["step"][-1] == twin["steps"] and run["val_loss"][0] == pen["val_loss"][0]
        assert trial["not_applied"] == []
    # the first trial is the formula's fix: RL001/RL003's scale of the saved 0.3
    first = {c["layer"]: c["suggested"] for c in trials[0]["changes"]}
    assert all(0 < v < 0.3 * 0.2 for v in first.values())
    if len(trials) == 2:  # the second is one decade lower than the first
        second = {c["layer"]: c["suggested"] for c in trials[1]["changes"]}
        assert second == pytest.approx({k: v * 0.1 for k, v in first.items()})
    scored = rl023["values"]["fix_trials"]
    passed = [t for t in scored if t["passed"]]
    assert all(t["passed"] == (t["gap"] < 0.2) for t in scored)
    if passed:  # the reported fix is the first value measured to train
        assert rl023["fix"]["changes"] == passed[0]["changes"] and "measured" in rl023["fix"]["aim"]
    # the message tells each trial's outcome
    assert "measured on the same batches with kernel lambda 0.3 ->" in rl023["message"]
    # a trial that still trails has what it lost; the twin itself ended far better than the saved recipe
    assert scored[0]["gap"] < rl023["values"]["gap"]
    if not scored[0]["passed"]:  # every other finding asking for the first trial's values (or less) says so
        tried = {(c["layer"], c["target"], c["current"]): c["suggested"] for c in trials[0]["changes"]}
        asking = [f for f in report["files"][0]["findings"] if f["code"] != "RL023" and f["fix"] and all(
            c["suggested"] is not None and tried.get((c["layer"], c["target"], c["current"]), math.inf)
            <= c["suggested"] < c["current"] for c in f["fix"]["changes"])]
        assert asking and all("fix_trailed_twin" in f["values"] for f in asking)


@pytest.mark.slow
def test_budget_reason_names_the_decay_timescale(wrecked_twin):
    budget = profile_of(wrecked_twin["report"])["twin"]["budget"]
    # L2 under SGD: (1-mu)*|w|/(lr*|g_pen|) with |g_pen| = 2*l2*|w| is exactly (1-mu)/(2*lr*l2)
    assert budget["timescales"]["sgd_penalty"] == pytest.approx((1 - 0.9) / (2 * 0.03 * 0.3), rel=1e-4)
    assert "(1-mu)*|w|/(lr*|g_pen|)" in budget["reason"] and "timescale" in budget["reason"]
    # 3 timescales (17 steps) is under the minimum that lets both runs learn; the twin ran on
    # until its held-out loss stopped improving
    assert budget["target"] == 100 and "minimum" in budget["reason"]
    assert 100 <= budget["steps"] <= 2000 and "stopped improving" in budget["reason"]


@pytest.mark.slow
def test_healthy_model_has_no_rl023_error_and_steps_override_the_budget(models, capsys):
    code, report, err = profile_json(capsys, str(models["healthy"]), "--data", str(models["data"]),
                                     "--x-key", "inputs", "--y-key", "labels", "--steps", "60")
    assert code == 0, err
    twin = profile_of(report)["twin"]
    assert twin["steps"] == twin["budget"]["steps"] == 60 and twin["runs"]["penalized"]["step"][-1] == 60
    assert twin["budget"]["reason"].startswith("--steps 60")
    assert twin["budget"]["target"] > 60  # what the timescales alone would have run
    assert twin["verdict"]["label"] in ("similar", "better")
    assert not measured(report, "RL023")


@pytest.mark.slow
def test_twin_on_synthetic_data_says_so(models, capsys):
    _, report, _ = profile_json(capsys, str(models["wrecked"]), "--steps", "40")
    twin = profile_of(report)["twin"]
    assert twin["synthetic"] and twin["runs"]["penalized"]["val_loss"] is None
    assert "synthetic data" in twin["verdict"]["message"]
    # a gap measured on random labels is at most a warning
    assert all(f["severity"] != "error" for f in measured(report, "RL023"))


@pytest.mark.slow
def test_full_report_shows_both_runs(models, capsys):
    code = main(["profile", str(models["wrecked"]), "--data", str(models["data"]), "--x-key", "inputs",
                 "--y-key", "labels", "--steps", "30"])
    out = capsys.readouterr().out
    assert code == 1
    for text in ("twin: from the saved weights", "penalized: data loss", "twin: data loss", "held-out loss",
                 "verdict: collapsed", "RL023"):
        assert text in out, text


def _judge(pen_acc: list[float], ref_acc: list[float], chance: float = 0.1, diverged_at: int | None = None,
           pen_loss: list[float] | None = None, moving_statistics: dict | None = None, data: dict | None = None,
           samples: int = 50, finding: bool = False):
    """RL023's verdict on two recorded runs (held-out accuracy; the
    penalized run's training-batch loss ``pen_loss``), no TensorFlow."""
    from types import SimpleNamespace

    from reglint.profile.result import Budget, Twin, TwinRun
    from reglint.rules.rl023_penalty_hurts_training import PenaltyHurtsTraining

    def run(acc, diverged=None, loss=None):
        steps = list(range(0, 10 * len(acc), 10))
        return TwinRun(step=steps, data_loss=list(loss or [1.0] * len(acc)), val_loss=[1.0] * len(acc),
                       val_accuracy=list(acc), kernel_norm=[1.0] * len(acc), diverged_at=diverged)

    twin = Twin(budget=Budget(steps=10 * (len(ref_acc) - 1), reason="test"),
                penalized=run(pen_acc, diverged_at, pen_loss), unregularized=run(ref_acc), removed=["d/kernel L2"],
                held_out={"chance": chance, "samples": samples, "trivial_loss": 2.3}, synthetic=False,
                moving_statistics=moving_statistics)
    result = SimpleNamespace(twin=twin, data=data or {"path": "d.npz", "held_out": 50}, variables=[], optimizer={},
                             outcome=SimpleNamespace(trivial_loss=None, label="learning"), layer_penalties=[],
                             data_loss=1.0, weight_penalty_ratio=lambda include_invariant=False: 0.0,
                             start=Start())
    if finding:  # the finding check_measured makes of the verdict, its remedy included
        return next(iter(PenaltyHurtsTraining().check_measured(result, None)), None)
    return PenaltyHurtsTraining().judge(result)


def _decayed_result(pen_acc: list[float], ref_acc: list[float]):
    """A twin under AdamW(1e-3, weight_decay 10) whose penalized run
    scored ``pen_acc`` on the held-back slice; no TensorFlow."""
    from types import SimpleNamespace

    from reglint.profile.result import Budget, Twin, TwinRun

    def run(acc):
        return TwinRun(step=list(range(0, 10 * len(acc), 10)), data_loss=[1.0] * len(acc),
                       val_loss=[1.0] * len(acc), val_accuracy=list(acc), kernel_norm=[1.0] * len(acc))

    twin = Twin(budget=Budget(steps=10 * (len(ref_acc) - 1), reason="test"), penalized=run(pen_acc),
                unregularized=run(ref_acc), removed=["optimizer weight_decay 10"],
                held_out={"chance": 0.1, "samples": 50, "trivial_loss": 2.3}, synthetic=False)
    return SimpleNamespace(twin=twin, data={"path": "d.npz", "held_out": 50}, variables=[],
                           optimizer={"class": "AdamW", "family": "adam", "learning_rate": 1e-3, "weight_decay": 10.0},
                           outcome=SimpleNamespace(trivial_loss=None, label="learning"), layer_penalties=[],
                           data_loss=1.0, weight_penalty_ratio=lambda include_invariant=False: 0.0, start=Start()), run


def test_rl023_measures_its_fix_then_a_decade_lower_then_stops():
    """``next_trial`` (review 42, 5): the formula's fix first; a trial that
    still trails its twin by the warning gap is followed by the same
    changes a decade lower; two trials at most; the first that trains is
    the reported fix, and when none does the remedy says to go lower."""
    from reglint.profile.result import FixTrial
    from reglint.rules.rl023_penalty_hurts_training import PenaltyHurtsTraining

    learned, collapsed, trails, trains = ([0.1, 0.5, 0.9, 0.9, 0.9], [0.1] * 5, [0.1, 0.2, 0.4, 0.4, 0.4],
                                          [0.1, 0.5, 0.85, 0.85, 0.85])
    rule = PenaltyHurtsTraining()
    result, run = _decayed_result(collapsed, learned)
    first = rule.next_trial(result)
    assert [(c.parameter, c.current) for c in first] == [("weight_decay", 10.0)] and first[0].suggested < 10
    result.twin.trials.append(FixTrial(first, run(trails)))
    second = rule.next_trial(result)
    assert second[0].suggested == pytest.approx(first[0].suggested * 0.1)
    result.twin.trials.append(FixTrial(second, run(trails)))
    assert rule.next_trial(result) is None  # two at most
    (finding,) = rule.check_measured(result, None)
    assert "go below weight_decay 10 ->" in finding.remedy and "62.5% of the twin's margin lost" in finding.message
    assert [t["passed"] for t in finding.values["fix_trials"]] == [False, False]
    # review 50: the fix is what the twin ran, not the first value that failed
    assert [(c.parameter, c.current, c.suggested) for c in finding.fix.changes] == [("weight_decay", 10.0, 0.0)]
    assert finding.remedy.startswith("every value tried still trails the twin: remove the penalty")

    result, run = _decayed_result(collapsed, learned)
    result.twin.trials.append(FixTrial(rule.next_trial(result), run(trains)))
    assert rule.next_trial(result) is None  # it trains: done
    (finding,) = rule.check_measured(result, None)
    assert finding.fix.changes == tuple(result.twin.trials[0].changes) and finding.fix.aim.startswith("measured")
    assert "(measured on your data)" in finding.remedy
    # a verdict without a finding measures nothing
    healthy, _ = _decayed_result(trains, learned)
    assert rule.next_trial(healthy) is None


def test_rl023_verdicts_follow_the_documented_order():
    from reglint.engine.finding import Severity

    learned = [0.1, 0.5, 0.8, 0.9, 0.9, 0.9, 0.9]
    # the twin's margin is 0.8; losing 0.7 of it is the error level, 0.2 the warning
    cases = {
        "collapsed": ([0.1, 0.12, 0.1, 0.1, 0.1, 0.1, 0.12], Severity.ERROR),
        "worse": ([0.1, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3], Severity.ERROR),  # gap 0.75
        "similar": ([0.1, 0.4, 0.7, 0.85, 0.85, 0.85, 0.85], None),  # gap 0.06
        "stalled": ([0.1, 0.1, 0.1, 0.1, 0.85, 0.9, 0.9], Severity.WARNING),  # at chance for 3 records
    }
    for label, (pen, severity) in cases.items():
        judgment = _judge(pen, learned)
        assert (judgment.label, judgment.severity) == (label, severity), (label, judgment.message)
    mild = _judge([0.1, 0.3, 0.6, 0.7, 0.7, 0.7, 0.7], learned)  # gap 0.25
    assert (mild.label, mild.severity) == ("worse", Severity.WARNING)
    assert _judge(learned[:3], learned, diverged_at=25).label == "diverged"
    unlearned = _judge([0.1] * 7, [0.1, 0.12, 0.15, 0.15, 0.15, 0.15, 0.15])
    assert unlearned.label == "twin-did-not-learn" and "learning means at least 0.15 over chance" in unlearned.message


def test_rl023_stall_is_told_in_epochs_of_the_data():
    """A stall from step 10 to 30 (records of 10 steps) on 250 examples in
    --data in batches of 32 (8 steps per epoch, as fit and --epochs count
    them) spans epochs 1.25 to 3.75: the unit a training is planned in.
    Review 50: the count used the 200 examples the twin trained on (four
    fifths), so the window's epochs were not --epochs'."""
    learned = [0.1, 0.5, 0.8, 0.9, 0.9, 0.9, 0.9]
    stalled = [0.1, 0.1, 0.1, 0.1, 0.85, 0.9, 0.9]
    data = {"path": "d.npz", "held_out": 50, "samples": 250, "train_samples": 200, "batch_size": 32}
    judged = _judge(stalled, learned, data=data)
    assert judged.label == "stalled" and judged.values["stalled_at_chance"]
    assert "from step 10 to 30 (epochs 1.2 to 3.8 of --epochs' count, 8 steps each: 250 examples" in judged.message
    assert judged.values["stalled_epochs"] == pytest.approx([10 / 8, 30 / 8])
    assert "epochs" not in _judge(stalled, learned).message.split("(--epochs")[0]  # size unknown: steps only


def test_rl023_a_stretch_far_short_of_the_twin_is_a_stall_too():
    """Review 50: a MobileNet block under AdamW sat at 0.21 (chance 0.13),
    85-91% of its twin's margin lost, through the steps a 540-step training
    stopped in, then caught up by the default's 2,000 steps: ``similar``,
    nothing said. A stretch that lost at least the error level (0.7) of the
    twin's margin is a stall as one at chance is."""
    from reglint.engine.finding import Severity

    learned = [0.1, 0.5, 0.8, 0.9, 0.9, 0.9, 0.9]
    short = [0.1, 0.2, 0.2, 0.2, 0.85, 0.9, 0.9]  # 0.1 over chance against 0.4-0.8: 75-88% lost
    judged = _judge(short, learned)
    assert (judged.label, judged.severity) == ("stalled", Severity.WARNING)
    assert not judged.values["stalled_at_chance"] and "lost at least 70.0% of its twin's margin" in judged.message
    assert "then recovered" in judged.message
    milder = [0.1, 0.4, 0.6, 0.7, 0.85, 0.9, 0.9]  # 25-38% lost: no stall
    assert _judge(milder, learned).label == "similar"


def test_rl023_a_stall_that_never_recovered_says_so():
    """Review 50: a transformer's stall ended 67% of the margin short, and
    the message said 'then recovered'."""
    learned = [0.1, 0.5, 0.8, 0.9, 0.9, 0.9, 0.9]
    judged = _judge([0.1, 0.1, 0.1, 0.1, 0.5, 0.5, 0.5], learned)  # ends 50% short
    assert judged.label == "stalled" and "then recovered" not in judged.message
    assert "and ended 50.0% of the twin's margin short (a warning by itself)" in judged.message


def _collapsing_result(pen_acc: list[float], chance: float = 0.1, synthetic: bool = False,
                       twin_loss: list[float] | None = None, twin_acc: list[float] | None = None):
    """A profiled run whose kernels' norm fell while the data loss did not
    move (``collapsing``), under AdamW with weight_decay 10, its penalized
    twin run scored ``pen_acc`` on the held-back slice; no TensorFlow."""
    from types import SimpleNamespace

    from reglint.profile.result import Budget, Twin, TwinRun

    def run(acc, loss=None):
        return TwinRun(step=list(range(0, 10 * len(acc), 10)), data_loss=loss or [2.3] * len(acc),
                       val_loss=[2.3] * len(acc), val_accuracy=list(acc), kernel_norm=[1.0] * len(acc))

    twin = Twin(budget=Budget(steps=60, reason="test"), penalized=run(pen_acc),
                unregularized=run(twin_acc or [0.1] + [0.95] * 6, twin_loss),
                removed=["weight_decay 10"], held_out={} if synthetic else {"chance": chance, "samples": 50},
                synthetic=synthetic)
    outcome = SimpleNamespace(label="collapsing", reason="kernel norm -95%", kernel_norm_change=-0.95,
                              kernel_norm_initial=1.0, kernel_norm_final=0.05, data_loss_initial=2.3,
                              data_loss_final=2.3, trivial_loss=2.3)
    return SimpleNamespace(twin=twin, outcome=outcome, trajectory=[None] * 60, variables=[], synthetic=synthetic,
                           start=Start(),
                           optimizer={"class": "AdamW", "family": "adaptive", "learning_rate": 1e-3,
                                      "weight_decay": 10.0, "stepped": True},
                           weight_penalty_ratio=lambda include_invariant=False: 0.0)


def test_collapse_signature_yields_to_a_held_out_run_that_learned():
    """RL017 and RL003 read a collapse from the loss and the kernel norms;
    when the same run scored well above chance on the held-back data, that
    measurement outranks them: a warning that says so, not an error."""
    from types import SimpleNamespace

    from reglint.engine.finding import Severity
    from reglint.rules.rl003_weight_decay_too_strong import WeightDecayTooStrong
    from reglint.rules.rl017_weights_collapsed import WeightsCollapsed

    report = SimpleNamespace(findings=[], suppressed=[])
    for rule in (WeightsCollapsed(), WeightDecayTooStrong()):
        (learned,) = rule.check_measured(_collapsing_result([0.1, 0.5, 0.8, 0.85, 0.85, 0.85, 0.85]), report)
        assert learned.severity is Severity.WARNING, rule.code
        assert "held-out accuracy 0.85 (chance 0.1)" in learned.message, learned.message
        (at_chance,) = rule.check_measured(_collapsing_result([0.1, 0.12, 0.1, 0.1, 0.1, 0.12, 0.1]), report)
        assert at_chance.severity is Severity.ERROR, rule.code
        # 0.1 over chance is short of "learned" (0.15 over chance): the error stands
        (weak,) = rule.check_measured(_collapsing_result([0.1, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]), report)
        assert weak.severity is Severity.ERROR, rule.code
        # synthetic data holds no held-back slice: the signature stands where the twin fit the batch
        fit = [2.3, 1.0, 0.5, 0.3, 0.2, 0.2, 0.2]
        (synthetic,) = rule.check_measured(_collapsing_result([0.1] * 7, synthetic=True, twin_loss=fit), report)
        assert synthetic.severity is Severity.ERROR, rule.code


def test_collapse_signature_is_not_blamed_on_the_penalty_when_the_twin_learned_nothing():
    """The kernels shrink while the loss sits at the constant predictor's,
    and the unregularized twin sat there too (random labels a small network
    cannot fit: the synthetic batch's usual case): nothing held the weights,
    so the shrink is not shown to harm a training that learns; a warning."""
    from types import SimpleNamespace

    from reglint.engine.finding import Severity
    from reglint.rules.rl003_weight_decay_too_strong import WeightDecayTooStrong
    from reglint.rules.rl017_weights_collapsed import WeightsCollapsed

    report = SimpleNamespace(findings=[], suppressed=[])
    for rule in (WeightsCollapsed(), WeightDecayTooStrong()):
        (flat,) = rule.check_measured(_collapsing_result([0.1] * 7, synthetic=True), report)
        assert flat.severity is Severity.WARNING, rule.code
        assert "the unregularized twin did not learn either" in flat.message, flat.message
        # on held-back data: a twin flat at chance yields; one still climbing when --steps cut it does not
        (flat_held,) = rule.check_measured(_collapsing_result([0.1] * 7, twin_acc=[0.1] * 7), report)
        assert flat_held.severity is Severity.WARNING, rule.code
        climbing = [0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.22]  # 0.1 over chance at the end, 0.04 gained since mid-run
        (cut_short,) = rule.check_measured(_collapsing_result([0.1] * 7, twin_acc=climbing), report)
        assert cut_short.severity is Severity.ERROR, rule.code
        # review 57, 2: the penalized run climbing with that twin, within the collapse level of it, is not
        # blamed (a cross-attention model 0.022 behind a twin 0.031 over chance got an RL017 error)
        alongside = [0.1, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16]
        (kept_pace,) = rule.check_measured(_collapsing_result(alongside, twin_acc=climbing), report)
        assert kept_pace.severity is Severity.WARNING, rule.code
        assert "still rising, had not learned either" in kept_pace.message, kept_pace.message
        # a twin that blew up says nothing about what the data holds: the signature stands
        blown = [2.3, 5.0, 9.0, 30.0, 30.0, 30.0, 30.0]
        (diverged,) = rule.check_measured(_collapsing_result([0.1] * 7, synthetic=True, twin_loss=blown), report)
        assert diverged.severity is Severity.ERROR, rule.code


def test_rl023_names_stale_batchnorm_statistics_when_the_run_fits_its_batches():
    """A penalized run at chance on the held-back slice that fits its own
    batches (training-batch loss well under the constant predictor's 2.3)
    in a model with BatchNorm: the cause is the moving statistics, and the
    verdict says so; without BatchNorm, or without the fit, it does not."""
    learned = [0.1, 0.5, 0.8, 0.9, 0.9, 0.9, 0.9]
    bn = {"layers": ["batch_normalization"], "momentum": 0.99}
    stalled = [0.1, 0.1, 0.1, 0.1, 0.85, 0.9, 0.9]
    fits, flat = [2.3, 0.3, 0.3, 0.3, 0.2, 0.2, 0.2], [2.3] * 7
    judged = _judge(stalled, learned, pen_loss=fits, moving_statistics=bn)
    assert judged.label == "stalled" and "BatchNorm's moving statistics (momentum 0.99" in judged.message
    assert "about 100 steps" in judged.message
    assert judged.values["stale_moving_statistics"]["training_batch_loss"] == pytest.approx(0.3)
    collapsed = _judge([0.1] * 7, learned, pen_loss=fits, moving_statistics=bn)
    assert collapsed.label == "collapsed" and "moving statistics" in collapsed.message
    assert collapsed.values["stale_moving_statistics"]["training_batch_loss"] == pytest.approx(0.2)
    for pen_loss, stats in ((fits, None), (flat, bn)):
        plain = _judge(stalled, learned, pen_loss=pen_loss, moving_statistics=stats)
        assert plain.label == "stalled" and "moving statistics" not in plain.message
        assert "stale_moving_statistics" not in plain.values


def test_profiles_epochs_are_the_static_rules_training_length():
    """Review 69, 1: ``profile --epochs 40`` trained 320 steps while the
    static findings beside the measurement saw no length (RL003's and
    RL007's integrated decay left unsaid); a config's length is kept."""
    from reglint.engine.runner import lint_file
    from reglint.engine.settings import Settings
    from reglint.profile.command import _with_training_length

    path = ROOT / "fixtures" / "keras" / "scenario_wd_too_fast.keras"
    settings = Settings()
    report = _with_training_length(path, lint_file(str(path), settings), settings, 3, 320)
    [rl003] = [f for f in report.findings if f.code == "RL003"]
    assert "over the 30 steps of the training" in rl003.message  # 3 x ceil(320 / 32)
    given = Settings()
    given.context.steps = 100
    kept = _with_training_length(path, lint_file(str(path), given), given, 3, 320)
    assert given.context.epochs is None and "over the 100 steps of the training" in \
        next(f for f in kept.findings if f.code == "RL003").message


def test_rl023s_remedy_offers_to_re_estimate_stale_batchnorm_statistics():
    """Review 67, 6: a U-Net at chance from stale moving statistics reached
    0.952 (its twin 0.933) once they were re-estimated on training rows;
    the remedy offered only a lower lambda, the statistics in the prose."""
    learned = [0.1, 0.5, 0.8, 0.9, 0.9, 0.9, 0.9]
    fits = [2.3, 0.3, 0.3, 0.3, 0.2, 0.2, 0.2]
    stale = _judge([0.1] * 7, learned, pen_loss=fits, moving_statistics={"layers": ["bn"], "momentum": 0.99},
                   finding=True)
    assert stale is not None and "re-estimate BatchNorm's moving statistics on training data" in stale.remedy
    plain = _judge([0.1] * 7, learned, pen_loss=[2.3] * 7, moving_statistics={"layers": ["bn"], "momentum": 0.99},
                   finding=True)
    assert plain is not None and "re-estimate" not in (plain.remedy or "")


def test_budget_from_timescales_without_tensorflow():
    from reglint.profile.twin import MAX_STEPS, MIN_STEPS, Timescale, choose_budget

    fast = {"weight_decay": Timescale(10.0, "optimizer", "1/(lr*wd)")}
    slow = {"weight_decay": Timescale(1e6, "optimizer", "1/(lr*wd)")}
    mid = {"sgd_penalty": Timescale(200.0, "d/kernel", "(1-mu)*|w|/(lr*|g_pen|)")}
    common = {"steps_override": None, "eval_seconds": 0.0, "remaining": 1e9, "time_budget": 60.0, "invariant": False}
    # target: three timescales within [MIN_STEPS, MAX_STEPS]; steps: the most a run may take
    assert (choose_budget(mid, per_step=1e-3, **common).target, choose_budget(mid, per_step=1e-3, **common).steps) \
        == (600, MAX_STEPS)
    assert choose_budget(fast, per_step=1e-3, **common).target == MIN_STEPS
    assert choose_budget(slow, per_step=1e-3, **common).target == MAX_STEPS
    # 0.1 s per step and 30 s left: two runs of 150 steps fit
    cut = choose_budget(mid, per_step=0.1, **{**common, "remaining": 30.0})
    assert cut.steps == cut.target == 150 and "--time-budget" in cut.reason and cut.early_stop
    forced = choose_budget(mid, per_step=0.1, **{**common, "remaining": 30.0, "steps_override": 999})
    assert forced.steps == 150 and "--steps 999, cut to 150" in forced.reason and not forced.early_stop  # review 38
    # --steps 50 where the timescales alone ask for fewer than the minimum: 50
    # run, and the reason does not claim a raise to the minimum
    assert choose_budget(mid, per_step=1e-3, **common).reason.startswith(
        "3 x the shortest penalty timescale ((1-mu)*|w|/(lr*|g_pen|) = 200 steps (d/kernel)) = 600 steps")
    short = choose_budget(fast, per_step=1e-3, **{**common, "steps_override": 50})
    assert short.steps == 50 and short.reason.startswith("--steps 50 (the timescales alone: 3 x")
    assert "raised to the minimum" not in short.reason


def test_epochs_set_the_horizon_within_the_time_budget():
    """--epochs E over N examples at batch B: both runs take E*ceil(N/B)
    steps and RL023 judges there (no early stop); unlike --steps, the time
    budget still cuts it, and the reason says so."""
    from reglint.profile.twin import Horizon, Timescale, choose_budget

    mid = {"sgd_penalty": Timescale(200.0, "d/kernel", "(1-mu)*|w|/(lr*|g_pen|)")}
    horizon = Horizon.from_epochs(10, 1347, 32)
    assert horizon.steps == 430 and "10 x ceil(1347 examples / batch 32) = 430 steps" in horizon.reason
    common = {"eval_seconds": 0.0, "time_budget": 60.0, "invariant": False, "steps_override": horizon}
    whole = choose_budget(mid, per_step=1e-3, remaining=1e9, **common)
    assert (whole.steps, whole.early_stop) == (430, False) and whole.reason.startswith("--epochs 10")
    cut = choose_budget(mid, per_step=0.1, remaining=30.0, **common)
    assert cut.steps == 150 and "cut to 150" in cut.reason


def test_epochs_refusals_are_one_line(tmp_path):
    model = str(KERAS_FIXTURES / "dense_l2.keras")
    for args, message in (([], "--epochs needs --data"), (["--data", "d.npz", "--steps", "5"], "not both")):
        result = subprocess.run([sys.executable, "-m", "reglint", "profile", model, "--epochs", "2", *args],
                                capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    alone = subprocess.run([sys.executable, "-m", "reglint", "profile", model, "--samples", "100"],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert alone.returncode == 2 and "--samples sizes --epochs' epochs" in alone.stderr


@pytest.mark.slow
def test_samples_size_the_epochs_when_data_holds_more_than_the_training_set(models, capsys):
    """Review 57, 6: --data holding the user's held-out part too made
    --epochs 12 run 684 steps for a 540-step training. --samples gives the
    training's examples: E*ceil(N/B) steps over those, and the epochs the
    verdict names are counted in them."""
    code, report, err = profile_json(capsys, str(models["healthy"]), "--data", str(models["data"]),
                                     "--x-key", "inputs", "--y-key", "labels", "--epochs", "2", "--samples", "96",
                                     "--batch-size", "32")
    assert code in (0, 1), err
    profile = profile_of(report)
    assert profile["twin"]["budget"]["steps"] == 6 and "2 x ceil(96 examples / batch 32) = 6 steps" in \
        profile["twin"]["budget"]["reason"]
    assert profile["data"]["epoch_samples"] == 96


# ---------------------------------------------------------------------------
# refusals: one line, exit 2, before TensorFlow


def test_lambda_model_refused_without_trust_model(models, capsys):
    code = main(["profile", str(models["lambda"])])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Lambda" in err and "--trust-model" in err


def test_custom_regularizer_refused(capsys):
    code = main(["profile", str(KERAS_FIXTURES / "scenario_custom_regularizer.keras")])
    err = capsys.readouterr().err
    assert code == 2 and "acme>ScaledL2" in err and "--trust-model" in err


def test_missing_file_is_one_line_exit_2():
    out = subprocess.run([str(REGLINT), "profile", "/nonexistent/model.keras"], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "no such file" in out.stderr and "Traceback" not in out.stderr


def test_savedmodel_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "saved_model.pb").write_bytes(b"\x08\x01")
    (tmp_path / "keras_metadata.pb").write_bytes(b"")
    assert main(["profile", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tf_keras" in err


def test_bad_device_and_bad_npz_key(models, capsys):
    assert main(["profile", str(models["healthy"]), "--device", "tpu"]) == 2
    assert "--device" in capsys.readouterr().err
    assert main(["profile", str(models["healthy"]), "--data", str(models["data"])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no array named x" in err and "inputs" in err


def test_check_does_not_import_tensorflow():
    path = KERAS_FIXTURES / "scenario_penalty_dominates.keras"
    code = ("import sys; from reglint.cli.app import main; main(['check', '-q', sys.argv[1]]); "
            "assert not any(m.startswith(('tensorflow', 'keras', 'torch')) for m in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


# ---------------------------------------------------------------------------
# the outcome rule


def test_batches_are_reshuffled_every_epoch_like_fit():
    """A fixed order trained every epoch on the same few batches (wine's 106
    examples: the same 3 batches of 32, 10 examples never seen), unlike
    fit(shuffle=True); every epoch now draws its own seeded permutation."""
    from reglint.profile.data import Batches

    x = np.arange(10, dtype="float32").reshape(10, 1)
    batches = Batches([x], [x.ravel().astype("int32")], batch_size=4, seed=3, synthetic=False, source="t.npz")
    assert batches.per_epoch == 2  # the partial batch of 2 is dropped
    epochs = [sorted(np.concatenate([batches.batch(2 * e)[0][:, 0], batches.batch(2 * e + 1)[0][:, 0]]))
              for e in range(6)]
    assert len({tuple(e) for e in epochs}) > 1  # not the same 8 examples every epoch
    assert set(np.concatenate(epochs)) == set(range(10))  # every example trains at some point
    again = Batches([x], [x.ravel().astype("int32")], batch_size=4, seed=3, synthetic=False, source="t.npz")
    assert all((again.batch(t)[0] == batches.batch(t)[0]).all() for t in (0, 5, 3, 11, 0))  # seeded, any order


def test_classify_thresholds():
    assert classify(1.0, 0.5, 10.0, 11.0, None, stepped=True).label == "learning"
    assert classify(1.0, 1.0, 10.0, 10.0, None, stepped=True).label == "stalled"
    # a loss that rose (but not 3x) is said to have risen, not to have "not fallen by 2%"
    rose = classify(6.017, 8.34, 10.0, 10.0, None, stepped=True)
    assert rose.label == "stalled" and rose.reason == "the data loss rose 39% (6.017 -> 8.34)"
    assert classify(1.0, 0.99, 10.0, 10.0, None, stepped=True).reason.startswith("the data loss fell less than 2%")
    shrunk = 10.0 * (1 - COLLAPSE_SHRINK) - 0.1
    assert classify(1.0, 1.0, 10.0, shrunk, None, stepped=True).label == "collapsing"
    # a data loss well below the constant predictor's wins over shrinking kernels
    assert classify(1.0, 0.5, 10.0, shrunk, None, stepped=True, trivial=0.95).label == "learning"
    # ... but falling from an above-chance init to chance is collapse (theory 3.1-3.2)
    assert classify(1.2, 1.05, 10.0, shrunk, None, stepped=True, trivial=1.08).label == "collapsing"
    assert classify(1.2, 1.05, 10.0, 10.0, None, stepped=True, trivial=1.08).label == "learning"
    assert classify(1.0, DIVERGE_FACTOR + 0.1, 10.0, 10.0, None, stepped=True).label == "diverged"
    assert classify(1.0, None, 10.0, math.nan, 4, stepped=True).label == "diverged"
    assert classify(1.0, None, None, None, None, stepped=False).label == "not-run"


def test_rl023_a_fix_trial_passes_only_if_its_lowest_last_record_does():
    """Review 61, 1: a BatchNorm net's trial swung 0.685-0.91 between its
    last records; their mean passed the warning gap, and two of three real
    trainings at that value lost 28-31% of the margin. A trial is judged at
    the lowest of its last three records: here the mean loses 7.5% of the
    twin's margin, the lowest record 35%, and the next decade is tried."""
    from reglint.profile.result import FixTrial
    from reglint.rules.rl023_penalty_hurts_training import PenaltyHurtsTraining

    rule = PenaltyHurtsTraining()
    result, run = _decayed_result([0.1] * 5, [0.1, 0.5, 0.9, 0.9, 0.9])
    first = rule.next_trial(result)
    result.twin.trials.append(FixTrial(first, run([0.1, 0.5, 0.95, 0.62, 0.95])))
    assert rule.trial_gap(result, result.twin.trials[0]) == pytest.approx(0.35)
    assert not rule.trial_passed(result, result.twin.trials[0])
    assert rule.next_trial(result)[0].suggested == pytest.approx(first[0].suggested * 0.1)
    steady, run = _decayed_result([0.1] * 5, [0.1, 0.5, 0.9, 0.9, 0.9])
    steady.twin.trials.append(FixTrial(first, run([0.1, 0.5, 0.85, 0.84, 0.86])))
    assert rule.trial_passed(steady, steady.twin.trials[0]) and rule.next_trial(steady) is None


def test_rl023_a_divergence_beside_a_twin_that_learned_nothing_is_fixed_by_staying_finite():
    """Review 61, 2: SGD with L2 50 on a GRU diverged while its twin stayed
    finite without learning; the trials were judged against the twin's
    margin (none to keep) and the fix said "its unregularized twin
    trained". There a trial that stays finite passes, and the words say
    what the twin did."""
    from reglint.profile.result import FixTrial, TwinRun
    from reglint.rules.rl023_penalty_hurts_training import PenaltyHurtsTraining

    rule = PenaltyHurtsTraining()
    result, run = _decayed_result([0.1] * 5, [0.1, 0.12, 0.12, 0.12, 0.12])
    pen = result.twin.penalized
    result.twin.penalized = TwinRun(step=pen.step, data_loss=pen.data_loss, val_loss=pen.val_loss,
                                    val_accuracy=pen.val_accuracy, kernel_norm=pen.kernel_norm, diverged_at=20)
    assert rule.judge(result).label == "diverged"
    first = rule.next_trial(result)
    blown = TwinRun(step=pen.step, data_loss=pen.data_loss, val_loss=pen.val_loss, val_accuracy=pen.val_accuracy,
                    kernel_norm=pen.kernel_norm, diverged_at=30)
    result.twin.trials.append(FixTrial(first, blown))
    assert not rule.trial_passed(result, result.twin.trials[0])
    result.twin.trials.append(FixTrial(rule.next_trial(result), blown))
    (finding,) = rule.check_measured(result, None)
    assert finding.remedy.startswith("every value tried still diverged") and "did not learn either" in finding.remedy
    assert "its unregularized twin trained" not in finding.remedy
    finite, run = _decayed_result([0.1] * 5, [0.1, 0.12, 0.12, 0.12, 0.12])
    finite.twin.penalized = result.twin.penalized
    finite.twin.trials.append(FixTrial(first, run([0.1, 0.11, 0.12, 0.11, 0.12])))
    assert rule.trial_passed(finite, finite.twin.trials[0]) and rule.next_trial(finite) is None
    (finding,) = rule.check_measured(finite, None)
    assert finding.fix.aim == "measured: the run stayed finite, as the unregularized twin did"
    # review 63, 8: the trial chosen was "could not be compared" in the same message
    assert "stayed finite (held-out accuracy" in finding.message and "could not be compared" not in finding.message


def test_a_regression_collapse_is_no_better_than_the_constant_predictor():
    """Review 61, 5: an MSE autoencoder's collapse "stayed at chance"."""
    from types import SimpleNamespace

    from reglint.engine.twin_metric import TwinMetric
    from reglint.profile.result import TwinRun

    run = TwinRun(step=[0, 10], data_loss=[1.0, 1.0], val_loss=[1.0, 1.0], val_accuracy=None, kernel_norm=[1.0, 1.0])
    twin = SimpleNamespace(penalized=run, held_out={"trivial_loss": 1.0}, synthetic=False)
    assert TwinMetric(twin, SimpleNamespace()).trivial() == "no better than the constant predictor's loss"
    twin.penalized = TwinRun(step=[0, 10], data_loss=[1.0, 1.0], val_loss=[1.0, 1.0], val_accuracy=[0.1, 0.1],
                             kernel_norm=[1.0, 1.0])
    twin.held_out["chance"] = 0.1
    assert TwinMetric(twin, SimpleNamespace()).trivial() == "at chance"


def test_trivial_loss_is_the_constant_predictors():
    assert math.isclose(trivial_loss(np.array([0, 1, 2, 0, 1, 2]), "sparse_categorical_crossentropy"), math.log(3))
    assert math.isclose(trivial_loss(np.eye(4)[[0, 1, 2, 3]], "CategoricalCrossentropy"), math.log(4))
    assert math.isclose(trivial_loss(np.array([[0.0], [1.0]]), "binary_crossentropy"), math.log(2))
    assert math.isclose(trivial_loss(np.array([[1.0], [3.0]]), "mse"), 1.0)
    assert trivial_loss(np.array([1.0]), "cosine_similarity") is None


def test_another_rules_fix_measured_to_trail_the_twin_says_so():
    """Review 50: RL023 trained RL001/RL003's formula value and it trailed
    the twin like the saved recipe, yet the other rule's finding in the same
    report still proposed it with nothing said. A fix whose every change
    asks for no less than a failed trial is told so; one going lower than
    the trial, or changing another setting too, is not."""
    from reglint.engine.finding import Change, Finding, Fix, Severity
    from reglint.profile.findings import weigh_fixes_by_trials
    from reglint.profile.result import FixTrial
    from reglint.rules.rl023_penalty_hurts_training import PenaltyHurtsTraining

    learned, collapsed, trails = [0.1, 0.5, 0.9, 0.9, 0.9], [0.1] * 5, [0.1, 0.2, 0.4, 0.4, 0.4]
    result, run = _decayed_result(collapsed, learned)
    first = PenaltyHurtsTraining().next_trial(result)
    tried = first[0].suggested
    result.twin.trials.append(FixTrial(first, run(trails)))

    def finding(code, suggested, parameter="weight_decay", current=10.0):
        return Finding(code, "n", Severity.ERROR, "m", remedy="lower it",
                       fix=Fix("aim", (Change(parameter, current, suggested, target="optimizer"),)))

    same, milder, lower, other = (finding("RL003", tried), finding("RL010", (tried + 10.0) / 2),
                                  finding("RL021", tried / 100), finding("RL007", 0.01, "learning_rate", 0.1))
    # a fix that also changes what the trial left alone was not measured (RL025: the table removed)
    wider = Finding("RL025", "n", Severity.ERROR, "m", fix=Fix("aim", (
        Change("weight_decay", 10.0, tried, target="optimizer"), Change("regularizer", 0.3, None, "e", "embeddings"))))
    weigh_fixes_by_trials(result, [same, milder, lower, other, wider], {})
    for told in (same, milder):
        assert "still trailed the unregularized twin" in told.message
        assert "62.5% of the twin's margin lost" in told.message
        assert told.values["fix_trailed_twin"]["trial"][0]["suggested"] == pytest.approx(tried, rel=1e-9)
        assert told.remedy.startswith("measured not enough on your data") and "lower it" in told.remedy
    for untold in (lower, other, wider):
        assert untold.message == "m" and "fix_trailed_twin" not in untold.values
    # a trial that trained tells nothing
    result, run = _decayed_result(collapsed, learned)
    result.twin.trials.append(FixTrial(first, run([0.1, 0.5, 0.85, 0.85, 0.85])))
    again = finding("RL003", tried)
    weigh_fixes_by_trials(result, [again], {})
    assert again.message == "m"


def test_a_ratio_at_the_saved_weights_does_not_overturn_damage_the_twin_measured():
    """Review 53: a siamese tower's activity penalty measured 1x the data
    loss at the saved weights, so RL010's measured finding said "overturned
    (static warning)" in the report whose RL023 error showed the penalized
    run at chance and its fix (the activity lambda lowered) training."""
    from types import SimpleNamespace

    from reglint.engine.finding import Finding, Severity
    from reglint.profile.result import LayerPenalty
    from reglint.rules.rl010_activity_regularizer_scale import ActivityRegularizerScale

    static = Finding("RL010", "activity-regularizer-scale", Severity.WARNING, "m", layer="tower",
                     values={"activity_ratio": 9.2})
    report = SimpleNamespace(findings=[static], suppressed=[], model=None)

    def measured(verdict):
        result = SimpleNamespace(layer_penalties=[LayerPenalty("tower", "activity", {"l2": 0.3}, 0.69)],
                                 data_loss=0.69, synthetic=False, twin=SimpleNamespace(verdict=verdict))
        [finding] = ActivityRegularizerScale().check_measured(result, report)
        return finding

    harmed = measured({"label": "collapsed", "severity": "error"})
    assert "overturned (static" not in harmed.message and "RL023 measured the damage itself" in harmed.message
    assert "its verdict against the unregularized twin: collapsed" in harmed.message
    assert "overturned (static warning)" in measured({"label": "similar", "severity": None}).message


def test_on_data_of_one_dominant_class_the_levels_are_shares_of_the_headroom():
    """Review 55: with 91.4% of the examples in one class the twin reached
    0.997 (0.083 over chance, under the 0.15 that "learned" asked) and a
    penalized run sitting at chance got "twin-did-not-learn", no verdict.
    Learned and collapsed are at most half and a quarter of 1 - chance; on
    balanced data nothing changes."""
    from reglint.engine.finding import Severity

    chance, twin = 0.914, [0.914, 0.95, 0.99, 0.997, 0.997, 0.997, 0.997]
    judged = _judge([0.9136] * 7, twin, chance=chance, samples=359)
    assert judged.label == "collapsed" and judged.severity is Severity.ERROR
    # a run 0.03 over chance kept a third of the twin's 0.083: not collapsed (a quarter of 0.086 is 0.0215)
    assert _judge([0.944] * 7, twin, chance=chance, samples=359).label != "collapsed"
    # review 56: a slice of fewer than 10 minority examples (here 4), or of one class, keeps the fixed
    # levels: no verdict, and no division by a margin of 0
    assert _judge([0.9136] * 7, twin, chance=chance, samples=50).label == "twin-did-not-learn"
    assert _judge([1.0] * 7, [1.0] * 7, chance=1.0, samples=300).label == "twin-did-not-learn"
    balanced = _judge([0.1] * 7, [0.1, 0.2, 0.22, 0.24, 0.24, 0.24, 0.24])  # 0.14 over chance 0.1: not learned
    assert balanced.label == "twin-did-not-learn"


def test_chance_is_the_class_prior_of_all_the_data_not_the_slices():
    """Review 50: chance was the held-back slice's majority share (0.13 on
    287 examples of 10 balanced classes, true 0.10). It is what predicting
    the most frequent class of all of --data scores on the slice."""
    from types import SimpleNamespace

    from reglint.profile.data import SPARSE, Batches, split_held_out
    from reglint.profile.twin import Evaluator

    n = 100
    held = np.random.default_rng([0, 1]).permutation(n)[-20:]
    y = np.arange(n) % 8 + 2  # classes 2..9, 10 each, in the training part ...
    y[:40] = 1  # ... and class 1, the most frequent in the file
    y[held] = 0
    y[held[:8]] = 1  # the slice: 12 of class 0, 8 of class 1
    batches = Batches([np.zeros((n, 3), np.float32)], [y], 10, 0, synthetic=False, source="t.npz")
    _, slice_ = split_held_out(batches)
    assert slice_ is not None and sorted(slice_.ys[0].tolist()) == [0] * 12 + [1] * 8
    assert np.bincount(y).argmax() == 1
    backend = SimpleNamespace(make_evaluate=lambda model, loss: None)
    loss = SimpleNamespace(trained_names=lambda: ["sparse_categorical_crossentropy"], weights=[])
    reference = Evaluator(backend, None, loss, slice_, SPARSE, False).reference()
    assert reference["chance"] == pytest.approx(0.4)  # class 1's share of the slice, not class 0's 0.6


def test_device_selection_without_tensorflow():
    """auto takes the GPU when TensorFlow lists one, in IEEE float32 (TF32
    off); gpu without one is an error."""
    from types import SimpleNamespace

    from reglint.profile import ProfileError
    from reglint.profile.backend_tf import select_device

    tf32: list[bool] = []

    def fake_tf(gpus):
        experimental = SimpleNamespace(get_device_details=lambda d: {"device_name": "NVIDIA H100 80GB HBM3"},
                                       enable_tensor_float_32_execution=tf32.append)
        config = SimpleNamespace(list_physical_devices=lambda kind: list(gpus), experimental=experimental)
        return SimpleNamespace(config=config)

    gpu = SimpleNamespace(name="/physical_device:GPU:0")
    assert select_device(fake_tf([gpu]), "auto")[::2] == ("/GPU:0", "gpu")
    assert tf32 == [False]
    assert "H100" in select_device(fake_tf([gpu]), "gpu")[1]
    assert select_device(fake_tf([gpu]), "cpu")[::2] == ("/CPU:0", "cpu")
    assert select_device(fake_tf([]), "auto")[::2] == ("/CPU:0", "cpu")
    with pytest.raises(ProfileError, match="no GPU"):
        select_device(fake_tf([]), "gpu")


def test_rl017_remedy_names_the_decay_that_collapsed_the_run():
    """Under AdamW with weight_decay 10 and no regularizer, RL017's remedy is
    the weight_decay, not 'a smaller lambda or decoupled weight_decay'."""
    from types import SimpleNamespace

    from reglint.rules.rl017_weights_collapsed import WeightsCollapsed

    report = SimpleNamespace(findings=[], suppressed=[])
    (finding,) = WeightsCollapsed().check_measured(_collapsing_result([0.1] * 7), report)
    assert "lower the optimizer's weight_decay (now 10" in finding.remedy
    assert "decoupled" not in finding.remedy
    assert "the static check did not predict it" in finding.message


def test_rl017_names_the_static_rules_that_predicted_the_damage():
    """A collapse that RL025 (or any outcome rule) predicted statically was
    reported as 'the static check did not predict it', because RL017's own
    static form (weights already collapsed in the file) had not fired."""
    from types import SimpleNamespace

    from reglint.engine.finding import Finding, Severity
    from reglint.rules.rl017_weights_collapsed import WeightsCollapsed

    predicted = Finding("RL025", "penalized-embedding-chain", Severity.ERROR, "m")
    info = Finding("RL008", "regularized-bias-norm-embedding", Severity.WARNING, "m")  # predicts no outcome
    report = SimpleNamespace(findings=[info, predicted], suppressed=[])
    (finding,) = WeightsCollapsed().check_measured(_collapsing_result([0.1] * 7), report)
    assert "the static check predicted the damage under other rules (RL025 error)" in finding.message


def test_profile_rows_keep_l1_and_orthogonal_factors():
    """Keras 3 keeps L1's l1 and OrthogonalRegularizer's factor as tensors:
    the profile's rows read them (from the config) as numbers, as it does
    for L2's float."""
    keras = pytest.importorskip("keras")
    from reglint.profile.gradients import regularizer_info

    assert regularizer_info(keras.regularizers.L1(0.01))["l1"] == pytest.approx(0.01, rel=1e-6)
    assert regularizer_info(keras.regularizers.L2(0.02))["l2"] == pytest.approx(0.02)
    both = regularizer_info(keras.regularizers.L1L2(l1=0.1, l2=0.2))
    assert (both["l1"], both["l2"]) == (pytest.approx(0.1), pytest.approx(0.2))
    ortho = regularizer_info(keras.regularizers.OrthogonalRegularizer(0.1, mode="columns"))
    assert ortho["factor"] == pytest.approx(0.1, rel=1e-6) and ortho["mode"] == "columns"


@pytest.mark.slow
def test_too_few_examples_to_hold_back_says_so(models, tmp_path, capsys):
    """7 examples: nothing is held back; the report says both runs are judged
    on their training loss instead of 'a held-back slice of ? examples'."""
    with np.load(models["data"]) as data:
        np.savez(tmp_path / "tiny.npz", inputs=data["inputs"][:7], labels=data["labels"][:7])
    code = main(["profile", str(models["healthy"]), "--data", str(tmp_path / "tiny.npz"), "--x-key", "inputs",
                 "--y-key", "labels", "--steps", "5"])
    out = capsys.readouterr().out
    assert code in (0, 1)
    assert "no held-back slice (too few examples)" in " ".join(out.split()) and "? examples" not in out


@pytest.mark.slow
def test_a_legacy_h5_profile_writes_nothing_on_stderr(tmp_path):
    """Keras' absl line on loading a legacy HDF5 file ("Compiled the loaded
    model, but the compiled metrics have yet to be built") and its
    UserWarning for a one-input model fed a tensor were printed under every
    report; REGLINT_DEBUG=1 keeps them."""
    path = KERAS_FIXTURES / "tfk_dict_outputs_loss_by_key.h5"
    args = [sys.executable, "-m", "reglint", "profile", str(path), "--steps", "2", "-f", "json",
            "-o", str(tmp_path / "r.json")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGLINT_")}
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr[-500:]
    debug = subprocess.run(args, capture_output=True, text=True, env={**env, "REGLINT_DEBUG": "1"}, timeout=300)
    assert "compiled metrics have yet to be built" in debug.stderr and "UserWarning" in debug.stderr


@pytest.mark.slow
def test_an_uncompiled_models_loss_dict_finds_its_outputs_by_key(tmp_path):
    """Where Keras cannot restore the compile settings, the losses the file
    records stand in: a loss dict keyed by the outputs' dict keys (not their
    layers' names) reaches the right output, not the one at its position."""
    import keras

    from reglint.profile.load import outputs_of, resolve_loss
    from reglint.readers import read_model

    x = keras.Input((8,), name="x")
    h = keras.layers.Dense(16, activation="relu", name="h")(x)
    model = keras.Model(x, {"z_prob": keras.layers.Dense(10, activation="softmax", name="zd")(h),
                            "a_bin": keras.layers.Dense(1, activation="sigmoid", name="ad")(h)})
    model.compile("sgd", loss={"z_prob": "sparse_categorical_crossentropy", "a_bin": "mean_absolute_error"})
    path = tmp_path / "dict_outputs.keras"
    model.save(path)
    bare = keras.saving.load_model(path, compile=False)
    loss = resolve_loss(keras, bare, read_model(str(path)), reason="test")
    by_layer = dict(zip([name for name, _ in outputs_of(bare)], loss.names, strict=True))
    assert by_layer == {"zd": "sparse_categorical_crossentropy", "ad": "mean_absolute_error"}


def test_profile_keeps_keras_warnings_about_the_model_itself():
    """Only Keras' advice on how the profile feeds the model is silenced: its
    warning that a loss with from_logits=True reads a softmax output (the
    loss is wrong) still reaches the user."""
    import warnings

    import keras
    import numpy as np

    from reglint.profile.command import keras_warnings_quiet

    probabilities = keras.activations.softmax(keras.ops.convert_to_tensor(np.ones((2, 3), "float32")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with keras_warnings_quiet():
            keras.losses.sparse_categorical_crossentropy(np.array([0, 1]), probabilities, from_logits=True)
    assert any("from_logits=True" in str(w.message) for w in caught), [str(w.message) for w in caught]


@pytest.mark.slow
def test_a_model_built_on_a_dict_of_inputs_takes_a_dict(tmp_path, capsys):
    """Keras 3 refuses a list for a model whose inputs are a dict (KerasHub
    backbones take {"token_ids", "segment_ids", "padding_mask"}); --x-key
    names every input, in any order."""
    import keras

    inputs = {"tokens": keras.Input((6,), name="tokens"), "extra": keras.Input((3,), name="extra")}
    joined = keras.layers.Concatenate()([inputs["tokens"], inputs["extra"]])
    hidden = keras.layers.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01))(joined)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    path = tmp_path / "dict_inputs.keras"
    model.save(path)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", tokens=rng.normal(size=(120, 6)), extra=rng.normal(size=(120, 3)),
             y=rng.integers(0, 3, 120))
    code, report, err = profile_json(capsys, str(path), "--data", str(tmp_path / "d.npz"), "--x-key", "tokens,extra",
                                     "--steps", "6")
    assert code in (0, 1), err
    profile = profile_of(report)
    assert profile["twin"]["steps"] == 6 and profile["data"]["keys"]["x"] == ["extra", "tokens"]


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_an_optimizer_keras_cannot_rebuild_by_name_is_rebuilt_from_its_class(tmp_path, capsys, policy):
    """A legacy .h5 compiled with Lamb: Keras 3.15 cannot restore its compile
    settings ("Could not interpret optimizer identifier: lamb") and
    keras.optimizers.deserialize hands back the bare name 'Lamb', a str; the
    profile rebuilt nothing and failed ("'str' object has no attribute
    'apply_gradients'"). Now the runs step a real Lamb. Under mixed
    precision the file records a LossScaleOptimizer wrapping the Lamb: the
    same path rebuilds the wrapper and its inner optimizer."""
    import keras

    try:
        keras.mixed_precision.set_global_policy(policy)
        model = keras.Sequential([keras.Input((4,)),
                                  keras.layers.Dense(3, kernel_regularizer=keras.regularizers.L2(0.01)),
                                  keras.layers.Dense(2, activation="softmax", dtype="float32")])
        model.compile(keras.optimizers.Lamb(learning_rate=1e-3), "sparse_categorical_crossentropy")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    path = tmp_path / "lamb.h5"
    model.save(path)
    wrapped = json.loads(h5py.File(path, "r").attrs["training_config"])["optimizer_config"]["class_name"]
    assert wrapped == ("LossScaleOptimizer" if policy == "mixed_float16" else "Lamb")
    code, report, err = profile_json(capsys, str(path), "--steps", "3")
    assert code in (0, 1), err
    profile = profile_of(report)
    assert profile["optimizer"]["class"] == "Lamb" and profile["twin"]["steps"] == 3


def test_files_profile_cannot_train_are_refused_in_one_line(tmp_path, capsys):
    """A weights-only file (Keras: "No model config found") and a stateful
    RNN (Keras' batch-size error came cut mid-sentence): one line, exit 2,
    before TensorFlow is imported."""
    from mutate import layer_configs, rewrite_keras_zip

    stateful = rewrite_keras_zip(KERAS_FIXTURES / "lstm.keras", tmp_path / "stateful.keras",
                                 config=lambda cfg: [c.update(stateful=True) for c in layer_configs(cfg)
                                                     if "units" in c and "recurrent_initializer" in c] and None)
    for path, words in ((KERAS_FIXTURES / "k3_mlp.weights.h5", "weights-only file has no architecture"),
                        (stateful, "is a stateful RNN")):
        assert main(["profile", str(path), "--steps", "2"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err


@pytest.mark.slow
def test_a_text_input_needs_text_data(tmp_path, capsys):
    """A model reading strings (StringLookup): synthetic numbers cannot feed
    it (it failed with "data type 'string' not understood"); --data with
    text trains it."""
    import keras

    words = ["good", "bad", "fine", "poor"]
    text = keras.Input((1,), dtype="string")
    ids = keras.layers.StringLookup(vocabulary=words)(text)
    hidden = keras.layers.Flatten()(keras.layers.Embedding(len(words) + 1, 4)(ids))
    model = keras.Model(text, keras.layers.Dense(2, activation="softmax",
                                                 kernel_regularizer=keras.regularizers.L2(0.01))(hidden))
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    path = tmp_path / "text.keras"
    model.save(path)
    assert main(["profile", str(path), "--steps", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "takes text" in err[0], err
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "t.npz", x=rng.choice(words, (60, 1)), y=rng.integers(0, 2, 60))
    code, report, err = profile_json(capsys, str(path), "--data", str(tmp_path / "t.npz"), "--steps", "3")
    assert code in (0, 1), err
    assert profile_of(report)["twin"]["steps"] == 3


@pytest.mark.slow
def test_a_tf_keras_file_keras_3_cannot_load_says_who_wrote_it(capsys):
    """tf.keras 2 writes .keras files Keras 3 cannot deserialize ("Could not
    locate class 'Functional'"): the one line says what wrote it and the
    way out (its .h5)."""
    assert main(["profile", str(KERAS_FIXTURES / "tfk_mlp.keras"), "--steps", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "written by Keras 2." in err[0] and "model.save('model.h5')" in err[0], err


SWEEP = Path(__file__).resolve().parent.parent / "fixtures" / "layer_sweep"
SWEEP_MANIFEST = json.loads((SWEEP / "manifest.json").read_text())["files"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tfk_sgd_momentum.h5", "tfk_adamw.h5", "tfk_adam.keras"])
def test_a_tf_keras_files_optimizer_is_trained_as_tf_keras_compiled_it(name, capsys):
    """Review 38, 1-2: Keras 3 compiles a tf_keras file's optimizer with its
    defaults where it cannot read the saved settings (SGD lr 0.01 without
    momentum for lr 0.05, momentum 0.9; AdamW's weight_decay 0.004 for
    0.01), or drops it ("saved without an optimizer": no step, no twin).
    profile now trains with the optimizer tf_keras compiled (manifest)."""
    pytest.importorskip("keras")
    truth = SWEEP_MANIFEST[name]
    code, report, err = profile_json(capsys, str(SWEEP / name), "--steps", "3")
    assert code in (0, 1), err
    prof = profile_of(report)
    optimizer = prof["optimizer"]
    assert optimizer["class"] == truth["optimizer"] and optimizer["stepped"]
    for key, value in truth["optimizer_settings"].items():
        assert optimizer[key] == pytest.approx(value, rel=1e-6), key
    assert not any("saved without an optimizer" in note for note in prof["notes"])


@pytest.mark.slow
def test_an_explicit_step_count_is_cut_to_the_time_budget(models, capsys):
    """Review 38, 3: --time-budget's help says the steps are cut to fit,
    but --steps was exempt: --steps 100000000 ran past ten minutes. It is
    cut like --epochs, and the budget's reason says so."""
    code, report, err = profile_json(capsys, str(models["healthy"]), "--data", str(models["data"]),
                                     "--x-key", "inputs", "--y-key", "labels", "--steps", "20000",
                                     "--time-budget", "2")
    assert code in (0, 1), err
    twin = profile_of(report)["twin"]
    assert twin["steps"] < 20_000
    assert "--steps 20000, cut to" in twin["budget"]["reason"] and "--time-budget 2 s" in twin["budget"]["reason"]


@pytest.mark.slow
def test_the_optimizer_line_shows_the_schedule_and_the_clip(capsys):
    """Review 38, 9: the terminal's optimizer line said 'Adam lr 0.001' for
    a warm-up to 0.01 under global_clipnorm 1, beside findings quoting 0.01."""
    pytest.importorskip("keras")
    folder = Path(__file__).resolve().parent.parent / "fixtures" / "keras_optimizers"
    main(["profile", str(folder / "sched_poly_rising.keras"), "--steps", "2"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("optimizer:"))
    assert "lr PolynomialDecay from 0.01" in line and "at most in these runs" in line
    main(["profile", str(folder / "clipnorm_sgd.keras"), "--steps", "2"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("optimizer:"))
    assert line.strip() == "optimizer: SGD lr 0.5, momentum 0.9, clipnorm 1"


@pytest.mark.slow
def test_the_first_batch_line_says_what_rl001s_ratio_leaves_out(capsys):
    """Review 38, 8: 'penalty 0.00471 ...; penalty/data 0' on a kernel that
    feeds a BatchNorm, with no word of why the ratio is 0."""
    pytest.importorskip("keras")
    path = Path(__file__).resolve().parent.parent / "fixtures" / "keras" / "scenario_l2_before_bn.keras"
    main(["profile", str(path), "--steps", "2"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("first batch:"))
    assert "penalty/data 0, " in line and "with the kernels feeding a normalization" in line


@pytest.mark.slow
def test_gradient_accumulation_is_one_update_per_k_batches(capsys):
    """Review 38, 7: under gradient_accumulation_steps the first applied
    gradient only accumulates, so every update/|w| read 0; and the penalty's
    timescale (counted in updates) was read as batches."""
    pytest.importorskip("keras")
    path = Path(__file__).resolve().parent.parent / "fixtures" / "versions" / "keras-3.15.1"
    path = path / "ema_accumulate_adam.keras"
    code, report, err = profile_json(capsys, str(path), "--steps", "2")
    assert code in (0, 1), err
    prof = profile_of(report)
    assert prof["optimizer"]["gradient_accumulation_steps"] == 2
    assert all(v["update_ratio"] > 0 for v in prof["variables"])


@pytest.mark.slow
def test_a_legacy_learning_rate_decay_that_is_not_applied_is_said(capsys):
    """Review 38, 11: a tf.keras 2 optimizer's `decay` (lr/(1 + decay*t))
    has no Keras 3 counterpart; profile ran at the initial rate, silently."""
    pytest.importorskip("keras")
    path = Path(__file__).resolve().parent.parent / "fixtures" / "rules" / "tfk_legacy_sgd_decay.h5"
    code, report, err = profile_json(capsys, str(path), "--steps", "2")
    assert code in (0, 1), err
    assert any("legacy decay" in note and "not applied" in note for note in profile_of(report)["notes"])


@pytest.mark.slow
def test_the_twins_removed_list_names_layers_as_the_table_does(capsys):
    """Review 38, 12: the table said body/dense_50, the twin's list
    dense_50/kernel; a nested model's layers keep their container's path in
    both (nested_chain_three_deep: lvl1/lvl2/lvl3/d1 ...)."""
    pytest.importorskip("keras")
    path = Path(__file__).resolve().parent.parent / "fixtures" / "keras" / "nested_chain_three_deep.keras"
    code, report, err = profile_json(capsys, str(path), "--steps", "2")
    assert code in (0, 1), err
    removed = " ".join(profile_of(report)["twin"]["removed"])
    assert "lvl1/lvl2/lvl3/d1/kernel L2" in removed and "lvl1/lvl2/d3/kernel L2" in removed


@pytest.mark.slow
def test_a_fix_trial_builds_the_saved_optimizer_with_the_fix_weight_decay():
    """A trial's optimizer is the saved one with the fix's weight_decay
    (its other settings kept); without a decay change, a fresh copy."""
    keras = pytest.importorskip("keras")
    from reglint.engine.finding import Change
    from reglint.profile.fix_trial import changed_optimizer

    saved = keras.optimizers.AdamW(learning_rate=3e-4, weight_decay=10.0, beta_1=0.8)
    trial = changed_optimizer(keras, saved, [Change("weight_decay", 10.0, 0.1)])
    assert (trial.weight_decay, float(trial.learning_rate), trial.beta_1) == pytest.approx((0.1, 3e-4, 0.8))
    assert changed_optimizer(keras, saved, []).weight_decay == pytest.approx(10.0)


def test_the_twin_does_not_settle_before_it_has_learned():
    """Review 50: a DenseNet block's twin, its held-out loss flat inside
    BatchNorm's moving-statistics bump, early-stopped at step 336 with
    accuracy at chance ("twin-did-not-learn", no verdict), and learned from
    step ~350. The twin's lane now settles only once it has learned on the
    held-back slice (RL023's own criterion); the penalized lane as before."""
    from reglint.profile.result import TwinRun
    from reglint.profile.twin import PATIENCE, _EarlyStop, _learned_on

    learned = _learned_on({"chance": 0.1, "trivial_loss": 2.3})
    run = TwinRun(step=[0], data_loss=[2.3], val_loss=[2.3], val_accuracy=[0.1], kernel_norm=[1.0])
    twin_stop, pen_stop = _EarlyStop(0, True, learned), _EarlyStop(0, True)
    for i in range(1, PATIENCE + 3):  # the held-out loss never improves
        run.step.append(10 * i)
        run.val_loss.append(2.3)
        run.val_accuracy.append(0.2)  # 0.1 over chance: not learned (0.15)
        twin_stop(run), pen_stop(run)
    assert pen_stop.stopped and not twin_stop.stopped
    run.val_accuracy[-1] = 0.3  # one record over the line: the mean of the last three is not
    assert not twin_stop(run)
    run.val_accuracy[-3:] = [0.3, 0.3, 0.3]
    assert twin_stop(run)
    # a regression's slice: learned once the held-out loss is 20% under the constant predictor's
    by_loss = _learned_on({"trivial_loss": 1.0})
    assert not by_loss(TwinRun(step=[0], data_loss=[1.0], val_loss=[0.6, 0.9, 0.9, 0.9], kernel_norm=[1.0]))
    assert by_loss(TwinRun(step=[0], data_loss=[1.0], val_loss=[0.9, 0.75, 0.75, 0.75], kernel_norm=[1.0]))
    assert by_loss(TwinRun(step=[0], data_loss=[1.0], val_loss=[0.0, 0.0, 0.0], kernel_norm=[1.0]))  # a perfect fit
    assert _learned_on({}) is None


def test_the_default_budget_says_when_it_took_every_step_and_how_many_epochs_that_is():
    """Review 50: runs that took all 2,000 steps were told to have 'stopped
    improving at step 2,000', and a ``similar`` verdict never said it
    judged 45 epochs of the user's data (their training ran 12)."""
    from reglint.profile.result import Budget
    from reglint.profile.twin import finish_budget

    full = Budget(steps=2000, reason="timescales")
    finish_budget(full, 2000, True, "held-out loss", per_epoch=45)
    assert "took the full 2,000 steps, about 44 epochs of --data (45 steps each)" in full.reason
    assert "stopped improving" not in full.reason and "--epochs E" in full.reason
    early = Budget(steps=2000, reason="timescales")
    finish_budget(early, 336, True, "held-out loss")
    assert "stopped improving" in early.reason and "epochs" not in early.reason and early.steps == 336


def test_rl023_the_failed_trials_fix_is_everything_the_twin_removed():
    """Review 52: the twin dropped two kernel L2s and an activity L1, the
    trials had lowered only the activity lambda, and the 'twin's settings'
    fix removed only the activity regularizer (the kernel L2s, never
    measured, stayed). The fix is every penalty the twin removed."""
    from types import SimpleNamespace

    from reglint.profile.result import LayerPenalty, VariableRow
    from reglint.rules.rl023_penalty_hurts_training import _removal

    def row(layer, l2):
        return VariableRow(path=f"{layer}/kernel", layer=layer, variable=f"{layer}/kernel", params=10, kernel_like=True,
                           regularizer={"class": "L2", "l2": l2}, penalty=1.0, share=0.5, weight_norm=1.0,
                           grad_data_norm=1.0, grad_penalty_norm=1.0)

    result = SimpleNamespace(variables=[row("dense", 0.01), row("dense_1", 0.01)],
                             layer_penalties=[LayerPenalty("dense", "activity", {"class": "L1", "l1": 0.5}, 2.0)],
                             optimizer={"weight_decay": 0.004})
    fix = _removal(result)
    assert {(c.parameter, c.layer, c.target, c.current, c.suggested) for c in fix.changes} == {
        ("regularizer", "dense", "kernel", 0.01, None), ("regularizer", "dense_1", "kernel", 0.01, None),
        ("regularizer", "dense", "activity", 0.5, None), ("weight_decay", None, "optimizer", 0.004, 0.0)}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["attention_l2.keras", "grouped_query_attention.keras"])
def test_an_attentions_measured_activity_penalty_is_the_layers_not_its_projections(name, capsys):
    """Review 66, 2: Keras 3 puts a MultiHeadAttention's activity penalty on
    its projections; profile reported each under its bare name (query, key,
    value, attention_output), never matched to the layer's static finding,
    and two attention layers could not be told apart. They add up to the
    layer the static reader names."""
    code = main(["profile", str(ROOT / "fixtures" / "activity_shapes" / name), "--steps", "3", "-f", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    penalties = report["files"][0]["model"]["analysis"]["profile"]["layer_penalties"]
    assert [p["layer"] for p in penalties] == ["reg"] and penalties[0]["kind"] == "activity"
