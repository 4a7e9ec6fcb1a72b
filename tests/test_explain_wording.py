"""explain says what it knows of each tensor (review 40, 5-6).

- An ``OrthogonalRegularizer`` penalises the overlaps between normalized
  rows (Keras: ``factor * 0.5 * mean |cos|`` over pairs): explain gave it
  L2's ``2*lambda*w ~ 0`` and, under SGD, the Adam-family drift sentence.
- A tensor whose initializer the file records (a Glorot MultiHeadAttention
  kernel, a zeros bias) was said to have none when its growth with the
  width was not computed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import FIXTURES, KERAS_FIXTURES


def explain(path) -> str:
    done = subprocess.run([sys.executable, "-m", "reglint", "explain", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_orthogonal_regularizer_is_not_explained_as_l2():
    text = explain(FIXTURES / "orthogonal" / "orthogonal.keras")
    assert "OrthogonalRegularizer" in text
    assert "2*lambda*w ~" not in text and "Adam-family" not in text
    assert "mean |cos|" in text and "not a sum over weights" in text


@pytest.mark.parametrize("name", ["einsum_fans.keras", "grouped_query_attention.keras", "dense_l2.keras",
                                  "batchnorm.keras"])
def test_a_recorded_initializer_is_never_said_to_be_missing(name):
    text = explain(KERAS_FIXTURES / name)
    assert "initializer " in text
    assert "(no initializer recorded)" not in text


def test_activity_regularizers_are_explained_with_rl010s_numbers():
    """Review 57, 3: explain said "no regularized tensors: nothing to
    explain" of a model check gives an RL010 error, and "no regularizer" of
    a layer whose only one is an activity regularizer. It prints RL010's
    own estimate (the same words as the finding) and verdict, or why there
    is none."""
    import json

    text = explain(KERAS_FIXTURES / "scenario_activity.keras")
    assert "nothing to explain" not in text
    assert "wide Dense · activity · L2(1)" in text
    assert "over 512 output elements adds about 56.9 per sample on standardised inputs" in text
    assert "RL010 error: scale the activity lambda by 0.061" in text and "2*l2*a per element" in text
    asked = subprocess.run([sys.executable, "-m", "reglint", "explain", str(FIXTURES / "activity_shapes" /
                            "conv_strided_l1.keras"), "--layer", "reg", "-f", "json"], capture_output=True,
                           text=True, timeout=120)
    assert asked.returncode == 0, asked.stderr
    [row] = json.loads(asked.stdout)["activity"]
    assert row["layer"] == "reg" and row["regularizer"] == "L1(0.01)" and "(l1*sign(a) per element)" in row["pull"]
    assert row["per_sample"] > 0 and row["no_estimate"] is None
    mha = explain(FIXTURES / "exactness" / "mha_activity.keras")  # review 57, 4: its four projections, estimated
    assert "mha MultiHeadAttention · activity · L2(0.001)" in mha
    assert "over 160 elements of its projections' outputs adds about" in mha


def test_explain_says_when_rl010_is_off_not_under_its_level(tmp_path):
    """Review 58, 8: with RL010 ignored in the configuration, explain said
    "RL010 does not warn: under its warning level" beside a ratio above it."""
    (tmp_path / "pyproject.toml").write_text('[tool.reglint]\nignore = ["RL010"]\n')
    done = subprocess.run([sys.executable, "-m", "reglint", "explain", str(KERAS_FIXTURES / "scenario_activity.keras")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "RL010 is not selected in this configuration" in done.stdout and "under its warning level" not in done.stdout


def test_input_var_past_its_bound_is_a_usage_error():
    """Review 58, 5: --input-var 1e308 printed an infinite penalty and a fix
    "scale by 0"; like nan, 0 or a negative value it is refused (exit 2)."""
    model = str(KERAS_FIXTURES / "scenario_activity.keras")
    for value in ("1e308", "0", "-1", "nan"):
        done = subprocess.run([sys.executable, "-m", "reglint", "check", model, "--input-var", value],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, (value, done.stderr)
        assert "Traceback" not in done.stderr and "RuntimeWarning" not in done.stderr
