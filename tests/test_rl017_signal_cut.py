"""RL017's signal cut on a file Keras trained: two BatchNorms whose gamma+beta
L2(10) drove both scales under 1e-3 (fixtures/make_keras_fixtures.py,
``bn_scale_zeroed.keras``; the manifest records that Keras' own loaded model
predicts one class). The variants rewrite saved tensors of that file and keep
everything else Keras wrote (``model.weights.h5`` stores the Sequential's
BatchNorms as ``batch_normalization`` and ``batch_normalization_1``, gamma
first)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reglint.engine.finding import Severity
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings

from helpers import KERAS_FIXTURES
from mutate import rewrite_keras_zip

FILE = KERAS_FIXTURES / "bn_scale_zeroed.keras"
FIRST, LAST = "layers/batch_normalization/vars/0", "layers/batch_normalization_1/vars/0"


def rl017(path):
    report = lint_file(str(path), Settings())
    assert report.error is None, report.error
    return [f for f in report.findings if f.code == "RL017"]


def with_gamma(tmp_path, name, **values):
    """The fixture with the named gammas set to a constant."""
    def edit(h5):
        for key, value in values.items():
            data = h5[{"first": FIRST, "last": LAST}[key]]
            data[...] = np.full(data.shape, value, dtype=data.dtype)
    return rewrite_keras_zip(FILE, tmp_path / name, weights=edit)


@pytest.fixture(scope="module")
def keras_says() -> dict:
    entries = json.loads((KERAS_FIXTURES / "manifest.json").read_text())
    entries = entries["files"] if isinstance(entries, dict) else entries
    return next(e for e in entries if e["file"] == "bn_scale_zeroed.keras")


def test_keras_own_model_predicts_one_class(keras_says):
    assert keras_says["distinct_predictions"] == 1
    assert keras_says["train_accuracy"] == pytest.approx(keras_says["majority_share"])
    assert max(keras_says["gamma_max_abs"].values()) < 1e-3


def test_the_last_normalization_at_zero_scale_is_an_error_naming_it(keras_says):
    [finding] = rl017(FILE)
    assert finding.severity is Severity.ERROR and finding.target == "gamma"
    assert set(finding.values["dead_scales"]) == {"bn_1"}  # the last normalization on the only path
    assert finding.values["dead_scales"]["bn_1"] == pytest.approx(keras_says["gamma_max_abs"]["bn_1"], rel=1e-6)
    assert "after 160 steps" in finding.message


def test_only_the_last_normalization_decides_a_live_one_keeps_the_rule_quiet(tmp_path):
    """A cautious miss: a later live normalization may rescale what an
    earlier dead one lets through, or not (this edited file still predicts
    one class in Keras, review 10); the rule reports only a dead last one."""
    assert rl017(with_gamma(tmp_path, "last_live.keras", last=1.0)) == []


def test_a_dead_last_scale_cuts_whatever_comes_before(tmp_path):
    [finding] = rl017(with_gamma(tmp_path, "first_live.keras", first=1.0))
    assert set(finding.values["dead_scales"]) == {"bn_1"}


def test_a_scale_just_over_the_level_is_not_a_cut(tmp_path):
    assert rl017(with_gamma(tmp_path, "small_but_alive.keras", first=2e-3, last=2e-3)) == []


def test_an_untrained_file_is_not_judged(tmp_path):
    def untrained(h5):
        h5["optimizer/vars/0"][...] = 0  # iterations
    assert rl017(rewrite_keras_zip(FILE, tmp_path / "untrained.keras", weights=untrained)) == []
