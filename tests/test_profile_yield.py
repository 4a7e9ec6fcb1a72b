"""A recipe-level error yields to the twin's measurement on the user's data.

``reglint check`` predicts from the recipe that an L2 of 10 on a classifier
head wrecks training (RL001: 51x the data loss). On two well-separated
blobs, read through a LayerNorm, the head still separates them under Adam:
``reglint profile --data`` trains the file twice (RL023's twin) and measures
the penalized run learning as well as its unregularized twin, so the
prediction becomes a warning that says so. Without --data (synthetic
inputs) nothing is measured on real data and the error stands.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from reglint.cli.app import main
from reglint.engine.rule import all_rules
from reglint.rules.rl023_penalty_hurts_training import Judgment, PenaltyHurtsTraining


@pytest.fixture(scope="module")
def head_l2(tmp_path_factory) -> tuple[Path, Path]:
    """(a LayerNorm MLP whose head carries L2(10), compiled with Adam; two
    Gaussian blobs in 8 dimensions), written by Keras."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    keras = pytest.importorskip("keras")
    folder = tmp_path_factory.mktemp("yield")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    features = (rng.normal(size=(400, 8)) + 2.0 * (2 * labels[:, None] - 1)).astype("float32")
    data = folder / "blobs.npz"
    np.savez(data, x=features, y=labels)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    hidden = keras.layers.ReLU()(keras.layers.LayerNormalization()(keras.layers.Dense(16)(inputs)))
    outputs = keras.layers.Dense(2, activation="softmax", kernel_regularizer=keras.regularizers.L2(10.0))(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    path = folder / "head_l2.keras"
    model.save(path)
    return path, data


def run(capsys, *args: str) -> tuple[int, dict]:
    code = main([*args, "-f", "json", "--no-cache"] if args[0] == "check" else [*args, "-f", "json"])
    return code, json.loads(capsys.readouterr().out)


def rl001(report: dict) -> list[dict]:
    return [f for f in report["files"][0]["findings"] if f["code"] == "RL001"]


@pytest.mark.slow
def test_the_static_check_predicts_a_wreck(head_l2, capsys):
    code, report = run(capsys, "check", str(head_l2[0]))
    assert code == 1 and [f["severity"] for f in rl001(report)] == ["error"]


@pytest.mark.slow
def test_a_twin_that_learned_as_well_turns_the_prediction_into_a_warning(head_l2, capsys):
    code, report = run(capsys, "profile", str(head_l2[0]), "--data", str(head_l2[1]), "--steps", "200")
    profile = report["files"][0]["model"]["analysis"]["profile"]
    assert profile["twin"]["verdict"]["label"] == "similar" and profile["twin"]["verdict"]["learned_as_well"]
    margins = profile["twin"]["verdict"]["margins"]
    assert len(margins) == 2 and min(margins) > 0.15
    findings = rl001(report)
    assert {f["measured"] for f in findings} == {True, False}  # the static estimate and the measured ratio
    for finding in findings:
        assert finding["severity"] == "warning"
        assert finding["values"]["severity_before_twin"] == "error" and finding["values"]["overturned_by"] == "RL023"
        assert "ended as well as its unregularized twin (RL023 similar" in finding["message"]
    assert all(f["severity"] != "error" for f in report["files"][0]["findings"])
    assert code == 0


@pytest.mark.slow
def test_without_data_the_error_stands(head_l2, capsys):
    code, report = run(capsys, "profile", str(head_l2[0]), "--steps", "20")
    assert code == 1
    static = [f for f in rl001(report) if not f["measured"]]
    assert [f["severity"] for f in static] == ["error"] and "overturned_by" not in static[0]["values"]


def test_only_rules_that_predict_an_outcome_yield():
    """Exact rules (a config Keras cannot train, weights that do not match
    the architecture, an invalid lambda) are facts, not predictions: no
    measurement of the training overturns them."""
    yielding = {code for code, rule in all_rules().items() if rule.predicts_outcome}
    assert yielding == {"RL001", "RL002", "RL003", "RL004", "RL007", "RL010", "RL021", "RL024", "RL025"}


def twin_result(*, synthetic=False, early_stop=True):
    twin = SimpleNamespace(synthetic=synthetic, held_out={} if synthetic else {"samples": 80},
                           budget=SimpleNamespace(early_stop=early_stop))
    return SimpleNamespace(twin=twin)


@pytest.mark.parametrize(("label", "gap", "early_stop", "synthetic", "expected"), [
    ("similar", 0.05, True, False, True),
    ("better", -0.3, True, False, True),
    # a stall that recovered by the end of the user's own training length: that training ends there
    ("stalled", 0.05, False, False, True),
    # ... but not at the default budget, which may run past where the user's training stops
    ("stalled", 0.05, True, False, False),
    ("stalled", 0.3, False, False, False),  # recovered only partly
    ("worse", 0.3, False, False, False),
    ("collapsed", 1.0, False, False, False),
    ("similar", 0.05, True, True, False),  # synthetic data: nothing measured on the user's data
])
def test_which_verdicts_outrank_a_prediction(label, gap, early_stop, synthetic, expected):
    rule = PenaltyHurtsTraining()
    judgment = Judgment(label, "", None, {"gap": gap})
    assert rule.learned_as_well(twin_result(synthetic=synthetic, early_stop=early_stop), judgment) is expected
