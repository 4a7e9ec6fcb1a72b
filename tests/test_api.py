"""The Python API and the console entry point."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import reglint

from helpers import KERAS_FIXTURES


def test_lint_returns_the_report():
    report = reglint.lint(KERAS_FIXTURES / "scenario_penalty_dominates.keras", KERAS_FIXTURES / "missing.keras")
    ok, missing = sorted(report.files, key=lambda f: f.error is not None)
    assert ok.model.total_params == 118_794
    assert [f.code for f in ok.findings] == ["RL001"]
    assert missing.error == "no such file or folder"
    assert report.exit_code(None) == 2


def test_lint_takes_context():
    quiet = reglint.lint(KERAS_FIXTURES / "scenario_penalty_dominates.keras", loss_scale=1000.0)
    assert quiet.files[0].findings == []


def test_version_is_fast_path_and_exact():
    out = subprocess.run([sys.executable, "-c", "import sys; sys.argv=['reglint','--version']; "
                          "from reglint.cli import main; main(); "
                          "assert 'typer' not in sys.modules and 'numpy' not in sys.modules"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"reglint {reglint.__version__}\n"


def test_lint_does_not_import_tensorflow():
    code = ("import sys, reglint; reglint.lint(sys.argv[1]); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras', 'torch')]; "
            "assert not bad, bad")
    out = subprocess.run([sys.executable, "-c", code, str(KERAS_FIXTURES / "lstm.keras")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(("context", "message"), [
    ({"loss_scale": 0}, "loss_scale must be > 0"),
    ({"momentum": 2.0}, "momentum must be in [0, 1)"),
    ({"momentum": 1.0}, "momentum must be in [0, 1)"),
    ({"target_var": 0.0}, "target_var must be > 0"),
    ({"classes": 1}, "classes must be >= 2"),
])
def test_context_bounds_hold_for_the_api(context, message):
    """The bounds the CLI and config enforce hold for reglint.lint() too:
    a zero loss scale is refused, not divided by."""
    with pytest.raises(ValueError, match=re.escape(message)):
        reglint.lint(str(KERAS_FIXTURES / "loss_weights_zero.keras"), **context)


# ---------------------------------------------------------------------------
# reglint.lint() validates its arguments as the CLI does (third review, item 2)

PD = str(KERAS_FIXTURES / "scenario_penalty_dominates.keras")  # one RL001 error


def codes(**kwargs) -> list[str]:
    return [f.code for f in reglint.lint(PD, **kwargs).files[0].findings]


def test_rule_names_select_and_ignore_as_on_the_command_line():
    assert codes(select=["penalty-dominates-loss"]) == ["RL001"]
    assert codes(ignore=["penalty-dominates-loss"]) == []
    assert codes(select=["RL0"], ignore=["RL001"]) == []


def test_a_plain_string_is_one_value_of_the_flag_not_its_characters():
    assert codes(select="RL006") == []  # 'R' (from the characters) would select every rule: RL001 fires
    assert codes(select="RL006,RL001") == ["RL001"]
    assert codes(select="RL006", extend_select="penalty-dominates-loss") == ["RL001"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"select": ["RL999"]}, "invalid rule code or prefix 'RL999' for 'select'"),
    ({"select": []}, "select is empty: it would run no rule"),
    ({"ignore": ["RLX"]}, "invalid rule code or prefix 'RLX' for 'ignore'"),
    ({"extend_select": ["penalty-dominates"]}, "invalid rule code or prefix 'penalty-dominates' for 'extend_select'"),
    ({"select": ","}, "'select' got no rule code"),
    ({"thresholds": {"penalty_ratio_warning": 0.001}},
     "unknown key 'thresholds.penalty_ratio_warning' in reglint.lint(); "
     "did you mean 'thresholds.penalty-ratio-warning'?"),
    ({"thresholds": {"penalty-ratio-warning": "abc"}},
     "'thresholds.penalty-ratio-warning' in reglint.lint(): expected a number"),
    ({"epochs": 3, "steps": 5}, "epochs and steps both set the training's length"),
    ({"epochs": 3}, "epochs=3 needs samples=N (training examples) to count steps"),
])
def test_bad_selection_thresholds_and_length_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        reglint.lint(PD, **kwargs)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"samples": "many"}, "samples must be an integer, got 'many' (str)"),
    ({"batch_size": 3.5}, "batch_size must be an integer, got 3.5 (float)"),
    ({"learning_rate": "0.1"}, "learning_rate must be a number, got '0.1' (str)"),
    ({"momentum": True}, "momentum must be a number, got True (bool)"),
    ({"sample": 100}, "unknown keyword 'sample'; did you mean 'samples'?"),
    ({"select": [1]}, "select must hold rule codes or names as strings, got 1 (int)"),
    ({"ignore": 5}, "ignore must be a list of rule codes or names, got 5 (int)"),
    ({"thresholds": ["penalty-ratio-warning"]}, "thresholds must be a dict of rule option -> number"),
])
def test_wrong_types_raise_type_error_naming_the_key(kwargs, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        reglint.lint(PD, **kwargs)


@pytest.mark.parametrize("path", [[PD], None, 3, PD.encode()])
def test_paths_must_be_str_or_pathlike(path):
    with pytest.raises(TypeError, match=r"reglint.lint\(\) takes paths as str or os.PathLike arguments"):
        reglint.lint(path)


def test_pathlike_paths_and_numpy_numbers_are_accepted():
    import numpy as np

    report = reglint.lint(KERAS_FIXTURES / "scenario_penalty_dominates.keras", samples=np.int64(60000),
                          learning_rate=np.float32(0.01))
    assert [f.code for f in report.files[0].findings] == ["RL001"]
