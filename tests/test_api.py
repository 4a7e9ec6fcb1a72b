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
