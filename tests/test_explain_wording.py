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
