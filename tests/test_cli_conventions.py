"""The command line as ruff users expect it (issue 17): unknown selectors and
bad option values are one-line usage errors, the concise summary counts by
severity, ``--statistics`` prints only the table, ``--color`` beats
``NO_COLOR``, ``--help`` explains the short form and the exit codes,
``profile`` refuses what is not Keras before TensorFlow, and the wording
(plurals, percentages, "share") says one thing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import FIXTURES, KERAS_FIXTURES, ROOT

BAD = str(KERAS_FIXTURES / "scenario_penalty_dominates.keras")  # 1 error (RL001)
ADAM = str(KERAS_FIXTURES / "scenario_adam_coupled_l2.keras")
MIXED = [str(KERAS_FIXTURES / name) for name in (  # errors, warnings and infos together
    "scenario_penalty_dominates.keras", "scenario_decayed_twice.keras", "scenario_too_weak.keras",
    "scenario_norm_regularized.keras", "scenario_adam_coupled_l2.keras")]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def reglint(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "reglint", *args], capture_output=True, text=True, timeout=120,
                          env=environ, cwd=ROOT)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The run failed as a usage error: exit 2, nothing on stdout, one line on stderr."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("reglint: error: "), result.stderr
    assert "Traceback" not in result.stderr and "╭" not in result.stderr and "Usage:" not in result.stderr
    return result.stderr.strip()


# ---------------------------------------------------------------------------
# 1. rule selectors


@pytest.mark.parametrize(("option", "value"), [
    ("--select", "RL999"), ("--ignore", "XYZ"), ("--extend-select", "RL9"), ("--select", "RL001,NOPE"),
    ("--ignore", "penalty-dominates-los"),
])
def test_unknown_selector_is_refused(option, value):
    line = one_error_line(reglint(BAD, option, value, "--no-cache"))
    bad = value.split(",")[-1]
    assert f"invalid rule code or prefix '{bad}' for '{option}'" in line


@pytest.mark.parametrize(("args", "code"), [
    (("--select", "RL0"), 1), (("--select", "rl"), 1), (("--select", "ALL"), 1),
    (("--select", "RL001"), 1), (("--select", "penalty-dominates-loss"), 1),
    (("--ignore", "penalty-dominates-loss"), 0), (("--ignore", "RL00"), 0), (("--select", "RL002"), 0),
])
def test_valid_selectors_still_select(args, code):
    result = reglint(BAD, *args, "--no-cache", "-f", "concise")
    assert result.returncode == code, result.stderr
    assert ("RL001" in result.stdout) is (code == 1)


def test_unknown_selector_in_the_config_is_refused(tmp_path):
    (tmp_path / "reglint.toml").write_text("[lint]\nextend-select = ['RL999']\n")
    model = tmp_path / "m.keras"
    model.write_bytes(Path(BAD).read_bytes())
    line = one_error_line(reglint(str(model), "--no-cache"))
    assert "'lint.extend-select' in" in line and "invalid rule code or prefix 'RL999'" in line


# ---------------------------------------------------------------------------
# 2. usage errors: one line, exit 2, for every kind


@pytest.mark.parametrize(("args", "expected"), [
    ((BAD, "--fail-on", "bogus"),
     "reglint: error: invalid value for '--fail-on': 'bogus' is not one of 'error', 'warning', 'info', 'none'."),
    ((BAD, "--color", "sometimes"), "reglint: error: invalid value for '--color': 'sometimes' is not one of"),
    ((BAD, "--samples", "0"), "reglint: error: invalid value for '--samples': 0 is not >= 1"),
    ((BAD, "--no-such-option"), "reglint: error: no such option: --no-such-option"),
    # review 45: Click offered every option sharing a few letters (--loss-scale, --no-cache, --select)
    ((BAD, "--lose-scale", "2"), "reglint: error: no such option: --lose-scale (did you mean --loss-scale?)"),
    (("check",), "reglint: error: missing argument 'paths'"),
    (("rule",), "reglint: error: missing argument 'code'"),
    ((BAD, "--samples"), "reglint: error: option '--samples' requires an argument"),
    # an unset variable in a CI job (--select "$RULES") must not select nothing and pass
    ((BAD, "--select", ""), "reglint: error: '--select' got no rule code (''): give codes or prefixes"),
    ((BAD, "--select", " "), "reglint: error: '--select' got no rule code (' ')"),
    ((BAD, "--select", ","), "reglint: error: '--select' got no rule code (',')"),
    ((BAD, "--ignore", ""), "reglint: error: '--ignore' got no rule code"),
    ((BAD, "--extend-select", ","), "reglint: error: '--extend-select' got no rule code"),
    # review 54, 2: an empty select in a config file ran no rule and passed the model
    ((BAD, "--config", "select = []"), "reglint: error: 'select' in --config: select is empty: it would run no rule"),
])
def test_usage_errors_are_one_line(args, expected):
    assert one_error_line(reglint(*args)).startswith(expected)


def test_the_env_var_is_named_only_when_it_is_set():
    line = one_error_line(reglint(BAD, env={"REGLINT_FAIL_ON": "sometimes"}))
    assert "invalid value for '--fail-on' (env var: 'REGLINT_FAIL_ON'): 'sometimes'" in line


def test_bare_reglint_prints_the_help_and_exits_2():
    result = reglint()
    assert result.returncode == 2 and "Usage:" in result.stdout + result.stderr


# ---------------------------------------------------------------------------
# 3. the concise summary counts by severity, as the full report does


def test_concise_summary_matches_the_full_report():
    concise = reglint(*MIXED, "--no-cache", "-f", "concise").stdout.splitlines()
    full = reglint(*MIXED, "--no-cache").stdout.splitlines()
    findings = [f for entry in json.loads(reglint(*MIXED, "--no-cache", "-f", "json").stdout)["files"]
                for f in entry["findings"]]
    counts = {level: sum(f["severity"] == level for f in findings) for level in ("error", "warning", "info")}
    assert all(counts.values()), counts  # the fixture set really mixes the three
    plural = {"error": "errors", "warning": "warnings", "info": "infos"}
    words = ", ".join(f"{n} {level if n == 1 else plural[level]}" for level, n in counts.items())
    expected = f"Found {len(findings)} findings ({words}) in {len(MIXED)} files."
    assert concise[-1] == expected
    assert full[-1] == expected
    assert len(concise) - 1 == len(findings)


def test_concise_clean_run_says_all_checks_passed():
    result = reglint(str(KERAS_FIXTURES / "scenario_healthy_sgd.keras"), "--no-cache", "-f", "concise")
    assert result.stdout == "All checks passed!\n" and result.returncode == 0


# ---------------------------------------------------------------------------
# 7. --statistics: the table on stdout, nothing else


def test_statistics_prints_only_the_table():
    result = reglint(*MIXED, "--no-cache", "--statistics")
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    table, summary = lines[:-1], lines[-1]
    rows = [line.split("\t") for line in table]
    assert all(len(row) == 3 and re.fullmatch(r"RL\d{3}", row[1]) for row in rows), lines
    counts = [int(row[0]) for row in rows]
    assert counts == sorted(counts, reverse=True)
    assert summary.startswith(f"Found {sum(counts)} findings (")
    assert "penalty-dominates-loss" in result.stdout and "data-loss scale" not in result.stdout


def test_statistics_as_json_and_report_files_still_written(tmp_path):
    sarif = tmp_path / "out.sarif"
    result = reglint(*MIXED, "--no-cache", "--statistics", "-f", f"json,sarif:{sarif}")
    stats = json.loads(result.stdout)
    assert {"code", "name", "count"} == set(stats[0]) and stats[0]["count"] >= stats[-1]["count"]
    assert json.loads(sarif.read_text())["runs"][0]["results"]


def test_statistics_go_to_the_output_file_as_in_ruff(tmp_path):
    stats, sarif = tmp_path / "s.txt", tmp_path / "out.sarif"
    result = reglint(BAD, "--no-cache", "--statistics", "-o", str(stats), "-f", f"concise,sarif:{sarif}")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", "")
    assert stats.read_text() == "1\tRL001\tpenalty-dominates-loss\nFound 1 finding (1 error) in 1 file.\n"
    assert json.loads(sarif.read_text())["runs"][0]["results"]  # FORMAT:FILE stays a whole report


# ---------------------------------------------------------------------------
# 8. colour and help


@pytest.mark.parametrize(("args", "env", "coloured"), [
    (("--color", "always"), {"NO_COLOR": "1"}, True),   # the explicit flag wins (no-color.org)
    (("--color", "always"), {}, True),
    ((), {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),  # NO_COLOR without the flag
    (("--color", "never"), {"FORCE_COLOR": "1"}, False),
    ((), {}, False),  # piped, auto
])
def test_color_flag_and_no_color(args, env, coloured):
    result = reglint(BAD, "--no-cache", *args, env={"TERM": "xterm-256color", **env})
    assert result.returncode == 1
    assert bool(ANSI.search(result.stdout)) is coloured, result.stdout[:300]
    assert ANSI.sub("", result.stdout).count("RL001") == 1


@pytest.mark.parametrize("args", [(BAD, "-f", "concise"), ("-f", "concise", BAD), ("--format=concise", BAD)])
def test_short_form_is_check_whatever_comes_first(args):
    result = reglint(*args, "--no-cache")
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines()[0].startswith("fixtures/keras/scenario_penalty_dominates.keras: RL001 ")


def test_help_explains_the_short_form_and_the_exit_codes():
    for args in (("--help",), ("check", "--help")):
        text = " ".join(reglint(*args, env={"COLUMNS": "200"}).stdout.split())
        assert "reglint FILE ... is short for reglint check FILE ..." in text or args[0] == "check"
        assert "Exit codes: 0 clean" in text and "1 findings at or above --fail-on" in text
        assert "2 usage, configuration or read error" in text
    for command in ("check", "explain", "profile"):
        # Typer drops a "[default: x]" written in help text, leaving "severity ."
        text = " ".join(reglint(command, "--help", env={"COLUMNS": "200"}).stdout.split())
        stray = re.search(r".{0,30}\w \.(\s|$)", text)
        assert stray is None, stray.group(0)
    check_help = " ".join(reglint("check", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "this severity (default: error)." in check_help and "Batch size B (default: 32)." in check_help
    profile_help = " ".join(reglint("profile", "--help", env={"COLUMNS": "200"}).stdout.replace("│", "").split())
    # --steps is how long reglint measures, not the training the rules judge (--epochs is)
    assert "A measuring budget, not your training's length: --epochs gives that" in profile_help


def test_every_option_of_every_command_has_help():
    from typer.main import get_command

    from reglint.cli.app import app

    root = get_command(app)
    missing = [f"{name} {param.opts[0]}" for name, command in root.commands.items() for param in command.params
               if param.param_type_name == "option" and not (param.help or "").strip()]
    missing += [f"reglint {param.opts[0]}" for param in root.params
                if param.param_type_name == "option" and not (param.help or "").strip()]
    assert missing == []
    text = " ".join(reglint("--help", env={"COLUMNS": "200"}).stdout.split())
    assert "Keras, ONNX and PyTorch models" in text


def test_optimizer_option_says_and_does_what_it_keeps():
    """--optimizer over a saved optimizer replaces the class and keeps the file's lr and momentum: the help
    says so, and the report says what came from the user and what from the file."""
    from reglint.engine.analysis import context_options

    [option] = [o for o in context_options() if o.name == "optimizer"]
    assert "replacing a saved one's class: the file's learning rate, momentum and weight decay are kept" in option.help
    assert "Optimizer class (SGD, Adam, AdamW" in reglint("check", "--help", env={"COLUMNS": "200"}).stdout
    path = str(FIXTURES / "torch" / "sgd_wd_too_strong.pt")  # SGD lr 0.1 momentum 0.9 weight_decay 1
    out = reglint(path, "--optimizer", "adam", "--no-cache", env={"COLUMNS": "200"}).stdout
    assert "optimizer: Adam lr 0.1, momentum 0.9, coupled L2 0.5 (class from user, the rest from the file)" in out
    assert ("note: optimizer class SGD (from the file) replaced by Adam (--optimizer); kept from the file: lr 0.1, "
            "momentum 0.9, coupled L2 0.5") in out
    data = json.loads(reglint(path, "--optimizer", "adam", "--lr", "0.01", "-f", "json", "--no-cache").stdout)
    model = data["files"][0]["model"]
    assert model["optimizer"]["class"] == "Adam" and model["optimizer"]["learning_rate"]["initial"] == 0.01
    assert any("kept from the file: momentum 0.9, coupled L2 0.5" in note for note in model["notes"])


def test_weight_decay_alone_on_onnx_says_what_is_assumed():
    out = reglint(str(FIXTURES / "onnx" / "cnn.onnx"), "--weight-decay", "0.1", "--no-cache",
                  env={"COLUMNS": "200"}).stdout
    assert "optimizer: SGD lr ? (not saved: give --lr), weight_decay 0.1 (from user)" in out
    assert "note: no optimizer saved: SGD assumed (give --optimizer); no learning rate (give --lr" in out


def test_readme_statistics_example_is_current():
    """The README's --statistics example, re-run as written."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text[text.index("$ reglint fixtures/keras/scenario_*.keras --statistics\n"):]
    block = block[:block.index("```")]
    import glob

    files = sorted(glob.glob(str(ROOT / "fixtures" / "keras" / "scenario_*.keras")))
    result = reglint(*[os.path.relpath(f, ROOT) for f in files], "--statistics", "--no-cache")
    assert block.splitlines()[1:] == result.stdout.splitlines()


# ---------------------------------------------------------------------------
# 10. profile reads Keras files only, and says so before TensorFlow


def test_profile_refuses_onnx_in_one_line_without_tensorflow():
    model = FIXTURES / "onnx" / "cnn.onnx"
    code = ("import sys; from reglint.cli.app import main; rc = main(['profile', sys.argv[1]]); "
            "loaded = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]; "
            "assert not loaded, loaded; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, timeout=120)
    line = one_error_line(result)
    assert line == f"reglint: error: profile reads Keras models (.keras, .h5); {model} is onnx"


def test_profile_says_what_the_file_is_before_what_the_install_lacks():
    """Review 39, 7: in the core install (no Keras, no TensorFlow, no torch)
    profile on an ONNX file asked to install TensorFlow, where the README
    says it tells the file's kind."""
    model = FIXTURES / "onnx" / "cnn.onnx"
    code = ("import sys; import reglint.profile.framework as f; f.installed = lambda name: False; "
            "from reglint.cli.app import main; sys.exit(main(['profile', sys.argv[1]]))")
    result = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "KERAS_BACKEND": ""})
    assert one_error_line(result) == f"reglint: error: profile reads Keras models (.keras, .h5); {model} is onnx"


# ---------------------------------------------------------------------------
# 11. wording


def test_plurals_and_percentages_in_messages():
    records = [json.loads(line) for line in reglint(*MIXED, "--no-cache", "-f", "json-lines").stdout.splitlines()]
    text = " ".join(r["message"] + " " + (r["remedy"] or "") for r in records)
    assert not re.search(r"\b1 (kernels|layers|findings)\b", text)
    assert not re.search(r"\de[-+]\d+%", text), "a percentage in scientific notation"
    rl007 = next(r["message"] for r in records if r["code"] == "RL007")
    assert re.match(r"\d+ kernels? in \d+ layers? \(", rl007)
    rl001 = next(r["message"] for r in records if r["code"] == "RL001")
    assert "largest shares of the penalty:" in rl001  # "share" in a message says of what


def test_share_means_the_data_loss_in_the_table():
    out = reglint(BAD, "--no-cache").stdout
    header = next(line for line in out.splitlines() if line.startswith("layer"))
    assert header.split()[-1] == "share"
    # dense_1: P@init 51.2 against the data-loss scale ln 10: 2,224%
    assert re.search(r"^dense_1 .* 2,224%$", out, re.MULTILINE)


# ---------------------------------------------------------------------------
# 12. a pipe closed early, a file named twice, one length of training


def run_into_a_closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """``reglint ... | head -1`` without the race: the pipe's read end is
    closed before reglint writes a byte, so every write meets EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "reglint", *args], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=120, cwd=ROOT)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("fmt", ["full", "json", "concise"])
def test_a_closed_pipe_keeps_the_runs_own_exit_code_quietly(fmt):
    clean = str(KERAS_FIXTURES / "dense_l2.keras")  # a warning only: exit 0
    for path, code in ((clean, 0), (BAD, 1)):
        result = run_into_a_closed_pipe(path, "--no-cache", "-f", fmt)
        assert (result.returncode, result.stderr) == (code, "")
    result = run_into_a_closed_pipe("rules")
    assert (result.returncode, result.stderr) == (0, "")


def test_a_file_named_in_several_spellings_is_linted_once():
    relative = os.path.relpath(BAD, ROOT)
    result = reglint(relative, BAD, f"./{relative}", "--no-cache", "-f", "json")
    assert result.returncode == 1, result.stderr
    assert [f["path"] for f in json.loads(result.stdout)["files"]] == [relative]


def test_steps_and_epochs_are_one_length_of_training(tmp_path):
    """Given together on the command line they are a usage error; a flag
    replaces the config's other measure; a config with both is refused."""
    line = one_error_line(reglint(BAD, "--no-cache", "--epochs", "5", "--samples", "1000", "--steps", "7"))
    assert "--steps and --epochs both set the training's length" in line
    one_error_line(reglint("explain", BAD, "--epochs", "5", "--steps", "7"))
    config = tmp_path / "reglint.toml"
    config.write_text("[context]\nsteps = 7\nepochs = 5\nsamples = 640\n")
    line = one_error_line(reglint(BAD, "--no-cache", "--config", str(config)))
    assert "sets both context.steps (7) and context.epochs (5)" in line

    def total_steps(*flags: str) -> int:
        result = reglint(BAD, "--no-cache", "-f", "json", "--config", str(config), *flags)
        return json.loads(result.stdout)["files"][0]["model"]["analysis"]["total_steps"]

    assert total_steps("--steps", "9") == 9
    assert total_steps("--epochs", "2") == 2 * 640 // 32


def test_epochs_need_samples_and_a_replaced_length_is_said(tmp_path):
    """--epochs without --samples counts no steps: a usage error, not a silent no-op. The CLI's length
    replaces the config's other one and a note says so; --config 'context.epochs=3' does as --epochs."""
    line = one_error_line(reglint(BAD, "--no-cache", "--epochs", "2"))
    assert line == "reglint: error: --epochs 2 needs --samples N (training examples) to count steps; or give --steps T"
    config = tmp_path / "reglint.toml"
    config.write_text("[context]\nsteps = 500\nsamples = 640\n")
    result = reglint(BAD, "--no-cache", "-f", "json", "--config", str(config), "--epochs", "2")
    assert json.loads(result.stdout)["files"][0]["model"]["analysis"]["total_steps"] == 2 * 640 // 32
    assert result.stderr == "reglint: note: --epochs 2 replaces the configuration's context.steps = 500\n"
    (tmp_path / "pyproject.toml").write_text("[tool.reglint.context]\nsteps = 500\nsamples = 640\n")
    model = tmp_path / "m.keras"
    model.write_bytes(Path(BAD).read_bytes())
    result = reglint(str(model), "--no-cache", "-f", "json", "--config", "context.epochs=3")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["files"][0]["model"]["analysis"]["total_steps"] == 3 * 640 // 32
