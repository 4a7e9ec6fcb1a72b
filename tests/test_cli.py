"""The command line: exit codes, the JSON contract, rules and explain."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import KERAS_FIXTURES

BAD = str(KERAS_FIXTURES / "scenario_penalty_dominates.keras")
GOOD = str(KERAS_FIXTURES / "scenario_healthy_sgd.keras")
WARN = str(KERAS_FIXTURES / "scenario_decayed_twice.keras")  # warnings only


def reglint(*args):
    return subprocess.run([sys.executable, "-m", "reglint", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("args", "code"), [
    ((GOOD,), 0),
    ((BAD,), 1),
    (("check", BAD), 1),
    ((BAD, "--exit-zero"), 0),
    ((WARN,), 0),
    ((WARN, "--fail-on", "warning"), 1),
    ((BAD, "--fail-on", "none"), 0),
    ((BAD, "--ignore", "RL001"), 0),
    ((BAD, "--select", "RL002"), 0),
    ((GOOD, "no_such_model.keras"), 2),
    ((GOOD, "--format", "nope"), 2),
    ((GOOD, "--fail-on", "sometimes"), 2),
    ((GOOD, "--no-such-option"), 2),
])
def test_exit_codes(args, code):
    result = reglint(*args, "--no-cache")
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr


def test_unreadable_input_is_one_line_and_others_are_still_linted(tmp_path):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    result = reglint(BAD, str(broken), "--format", "json", "--no-cache")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "broken.keras" in result.stderr
    files = {f["path"]: f for f in json.loads(result.stdout)["files"]}
    assert files[str(broken)]["error"] and files[str(broken)]["model"] is None
    assert files[BAD]["error"] is None and files[BAD]["findings"][0]["code"] == "RL001"


def test_json_contract():
    data = json.loads(reglint(BAD, "--format", "json", "--no-cache").stdout)
    assert data["version"] == 1
    [entry] = data["files"]
    assert set(entry) >= {"path", "error", "model", "findings"}
    model = entry["model"]
    assert set(model) >= {"format", "keras_version", "params", "layers", "optimizer", "loss"}
    assert model["params"] == {"total": 118794, "trainable": 118794, "non_trainable": 0}
    layer = model["layers"][0]
    assert set(layer) >= {"name", "class", "path", "params", "regularizers"}
    assert set(layer["params"]) == {"trainable", "non_trainable"}
    assert set(layer["regularizers"][0]) >= {"target", "kind", "l1", "l2", "config"}
    finding = entry["findings"][0]
    assert set(finding) >= {"code", "name", "severity", "layer", "message"}
    assert finding["severity"] in ("error", "warning", "info")


def test_rules_and_rule_commands():
    listing = reglint("rules").stdout
    assert "RL001" in listing and "penalty-dominates-loss" in listing
    data = json.loads(reglint("rules", "--format", "json").stdout)
    assert {r["code"] for r in data} >= {"RL001", "RL002", "RL003"}
    doc = reglint("rule", "RL003").stdout
    assert doc.startswith("# weight-decay-too-strong (RL003)")
    assert reglint("rule", "RL999").returncode == 2


def test_explain_answers_the_seed_question():
    out = reglint("explain", str(KERAS_FIXTURES / "conv2d_seed_l2.keras"), "--format", "json")
    [row] = json.loads(out.stdout)["tensors"]
    assert row["weights"] == 1200 and row["layer_params"] == 1220
    assert abs(row["sum_sq_init"] - 13.333) < 1e-3
    assert abs(row["penalty_init"] - 0.1333) < 1e-3
    # the per-weight gradient depends on lambda and the init scale, not on the count
    assert abs(row["gradient_per_weight"] - 2 * 0.01 * row["init_rms"]) < 1e-12
    text = reglint("explain", str(KERAS_FIXTURES / "conv2d_seed_l2.keras")).stdout
    assert "Does NOT depend on the weight count" in text and "E[sum w^2]" in text


def test_explain_answers_for_the_optimizers_weight_decay_too():
    """A model with no regularizer objects and AdamW(weight_decay=10): the
    decay reaches every weight, so explain shows its per-step shrink and
    timescale and RL003's verdict and fix instead of "nothing to explain"."""
    path = str(KERAS_FIXTURES / "scenario_bn_statistics_lag.keras")
    doc = json.loads(reglint("explain", path, "--format", "json").stdout)
    assert doc["tensors"] == []
    decay = doc["optimizer_decay"]
    assert decay["shrink_per_step"] == pytest.approx(1e-3 * 10) and decay["timescale_steps"] == pytest.approx(100)
    assert [f["code"] for f in decay["findings"]] == ["RL003", "RL008"]  # RL008: it decays gamma and beta too
    assert [(c["code"], c["current"], c["suggested"]) for c in decay["rule_changes"]] == [("RL003", 10.0, 5.0)]
    text = reglint("explain", path).stdout
    assert "optimizer weight_decay 10 at lr 0.001" in text and "timescale 100 steps" in text
    assert "nothing to explain" not in text
    seed = json.loads(reglint("explain", str(KERAS_FIXTURES / "conv2d_seed_l2.keras"), "--format", "json").stdout)
    assert seed["optimizer_decay"] is None


@pytest.mark.parametrize(("exported", "expected"), [(None, "1"), ("4", "4")])
def test_console_script_asks_numpy_for_one_blas_thread(exported, expected):
    """Set before numpy loads (it reads the variable once); the user's own value wins."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if exported:
        env["OPENBLAS_NUM_THREADS"] = exported
    code = ("import os, sys; sys.argv = ['reglint', 'rules']; import reglint.cli as cli; cli.one_blas_thread(); "
            "assert 'numpy' not in sys.modules; print(os.environ['OPENBLAS_NUM_THREADS'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


@pytest.mark.parametrize("model", ["loss_weights_zero.keras", "loss_weights_by_position.keras"])
def test_odd_loss_weights_are_linted_not_crashed(model):
    result = reglint(str(KERAS_FIXTURES / model), "--no-cache", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files"][0]["model"]["analysis"]["loss_scale"]["value"] > 0


def test_a_zero_loss_scale_is_a_usage_error(tmp_path):
    result = reglint(GOOD, "--no-cache", "--loss-scale", "0")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.strip().splitlines() == ["reglint: error: invalid value for '--loss-scale': 0 is not > 0"]
    (tmp_path / "pyproject.toml").write_text("[tool.reglint.context]\nloss-scale = 0\n")
    result = reglint(GOOD, "--no-cache", "--config", str(tmp_path / "pyproject.toml"))
    assert result.returncode == 2 and "expected a number > 0" in result.stderr


# ---------------------------------------------------------------------------
# inputs and outputs (the CLI review of 2026-11-30): what is read, what is
# written, and that a bad path writes nothing


def broken_model(folder) -> str:
    path = folder / "text.keras"
    path.write_text("not a model")
    return str(path)


def test_a_json_that_is_no_model_is_skipped_in_a_folder_but_refused_when_named(tmp_path):
    """A training log quoting its model's class (nested) does not pass the
    sniff; a top-level class_name/config that the reader rejects is skipped
    too when found by searching; named, either is one line and exit 2."""
    import shutil

    from reglint.readers.sniff import looks_like_keras_json

    shutil.copy(GOOD, tmp_path / "model.keras")
    (tmp_path / "training_log.json").write_text('{"model": {"class_name": "Sequential", "config": {}}}')
    (tmp_path / "layer.json").write_text('{"class_name": "Dense", "config": {"units": 3}}')
    assert not looks_like_keras_json(tmp_path / "training_log.json")
    assert looks_like_keras_json(tmp_path / "layer.json")
    assert looks_like_keras_json(KERAS_FIXTURES.parent / "exactness" / "json_mlp.json")
    result = reglint(str(tmp_path), "--format", "json", "--no-cache")
    assert (result.returncode, result.stderr) == (0, "")
    assert [f["path"] for f in json.loads(result.stdout)["files"]] == [str(tmp_path / "model.keras")]
    for name in ("training_log.json", "layer.json"):
        result = reglint(str(tmp_path / name), "--no-cache")
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr.count("\n") == 1 and "not a Keras model architecture" in result.stderr
        # pre-commit names every .json of a commit (with --force-exclude): skipped there too
        result = reglint("--force-exclude", str(tmp_path / name), GOOD, "--no-cache", "-f", "json")
        assert (result.returncode, result.stderr) == (0, "")
        assert [f["path"] for f in json.loads(result.stdout)["files"]] == [GOOD]


def test_create_baseline_reports_read_errors_and_exits_2(tmp_path):
    baseline = tmp_path / "bl.json"
    result = reglint(BAD, broken_model(tmp_path), "--baseline", str(baseline), "--create-baseline", "--no-cache")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("reglint: error: ") and "text.keras" in lines[0]
    assert lines[1] == f"reglint: wrote 1 finding to {baseline}; 1 unreadable file left out of it"
    assert [f["rule"] for f in json.loads(baseline.read_text())["findings"]] == ["RL001"]


@pytest.mark.parametrize("spec", [("-o", "{victim}"), ("-f", "json:{victim}"), ("-f", "concise,sarif:{victim}")])
def test_a_report_never_overwrites_a_model_being_linted(tmp_path, spec):
    import shutil

    victim = tmp_path / "victim.keras"
    shutil.copy(GOOD, victim)
    before = victim.read_bytes()
    option, value = spec
    result = reglint(str(victim), option, value.format(victim=victim), "--no-cache")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and f"to {victim}: it is a model being linted" in result.stderr
    assert victim.read_bytes() == before
    folder = reglint(str(tmp_path), "-o", str(victim), "--no-cache")  # found by searching the folder
    assert folder.returncode == 2 and victim.read_bytes() == before
    beside = reglint(str(tmp_path), "-o", str(tmp_path / "report.txt"), "--no-cache")  # a report beside it is fine
    assert beside.returncode == 0 and (tmp_path / "report.txt").is_file()
    savedmodel = KERAS_FIXTURES / "tfk_savedmodel_mlp"
    inside = reglint(str(savedmodel), "-o", str(savedmodel / "report.txt"), "--no-cache")
    assert inside.returncode == 2 and "it is a model being linted" in inside.stderr


@pytest.mark.parametrize(("outputs", "message"), [
    ("json:{tmp}/ok.json,sarif:/nonexistent/x.sarif", "cannot write the sarif report to /nonexistent/x.sarif: "
                                                      "no such folder /nonexistent"),
    ("json:{tmp}/same.txt,sarif:{tmp}/same.txt", "the json report and the sarif report both go to {tmp}/same.txt"),
    ("json:{tmp}/ok.json,sarif:{tmp}", "cannot write the sarif report to {tmp}: it is a folder"),
])
def test_report_paths_are_checked_before_anything_is_written(tmp_path, outputs, message):
    result = reglint(BAD, "-f", outputs.format(tmp=tmp_path), "--no-cache")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and message.format(tmp=tmp_path) in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_profile_checks_the_report_path_before_loading_anything(tmp_path):
    """The output path is refused before --data is even opened (so long
    before any training)."""
    result = reglint("profile", GOOD, "--data", str(tmp_path / "missing.npz"), "-o", "/nonexistent/x")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("reglint: error: cannot write the full report to /nonexistent/x: "
                             "no such folder /nonexistent\n")


@pytest.mark.parametrize("output", [("-o", "{tmp}/out.txt"), ("-f", "json"), ("-f", "sarif:{tmp}/out.sarif")])
def test_when_nothing_could_be_read_only_the_errors_are_printed(tmp_path, output):
    bad = broken_model(tmp_path)
    option, value = output
    result = reglint(bad, option, value.format(tmp=tmp_path), "--no-cache")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and "text.keras" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text.keras"]
    # some read, some not: the report for those read, and exit 2
    result = reglint(BAD, bad, option, value.format(tmp=tmp_path), "--no-cache")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert len(list(tmp_path.iterdir())) == (1 if option == "-f" and value == "json" else 2)
