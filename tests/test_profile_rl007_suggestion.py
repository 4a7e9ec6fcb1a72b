"""RL007's measured fix suggests a weight_decay a user can apply.

Under Adam a coupled L2 acts like a decoupled ``weight_decay`` of about
``2*l2/s`` (``s`` the data-gradient RMS profile measures). On
``fixtures/layer_sweep/k3_adam_strong_l2.keras`` (two Dense kernels with
L2(0.3) under ``Adam(1e-3)``) that equal strength is tens: a per-step shrink
``lr*wd`` several times RL003's warning level, which collapsed this model to
chance when applied as ``AdamW`` (review 38, 10). The suggestion keeps to
RL003's own safe level, so the fix does not become RL003's finding.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from reglint.cli.app import main
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.rules.rl003_weight_decay_too_strong import WeightDecayTooStrong

from helpers import FIXTURES

MODEL = FIXTURES / "layer_sweep" / "k3_adam_strong_l2.keras"
TRUTH = json.loads((FIXTURES / "layer_sweep" / "manifest.json").read_text())["files"][MODEL.name]


@pytest.mark.slow
def test_equal_strength_past_rl003s_safe_level_is_capped_there(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 20)).astype("float32")
    data, out = tmp_path / "data.npz", tmp_path / "report.json"
    np.savez(data, x=x, y=x[:, :3].argmax(1))
    code = main(["profile", str(MODEL), "--data", str(data), "--steps", "5", "-f", "json", "-o", str(out)])
    assert code == 1
    findings = json.loads(out.read_text())["files"][0]["findings"]
    measured = next(f for f in findings if f["code"] == "RL007" and f["measured"])
    values = measured["values"]
    lr = TRUTH["learning_rate"]
    report = lint_file(str(MODEL), Settings())
    rl003 = WeightDecayTooStrong({})
    quiet = rl003.quiet_weight_decay(report.model, report.analysis, lr)
    # the equal strength is past the warning level; the suggestion is the most RL003 leaves quiet
    assert rl003.level(lr * values["typical_weight_decay"], "decay-step-warning") is not None
    assert quiet < values["typical_weight_decay"]
    assert values["suggested_weight_decay"] == pytest.approx(quiet)
    assert rl003.level(lr * quiet, "decay-step-warning") is None
    changes = {c["parameter"]: c["suggested"] for c in measured["fix"]["changes"]}
    assert changes["weight_decay"] == pytest.approx(quiet)
    assert "than RL003 leaves quiet" in (measured.get("remedy") or "")
    # review 68, 4: what the capped decay leaves is said over the training's length only (5 steps: D < 1)
    assert "of the training" not in measured["remedy"] and "exp(-" not in measured["remedy"]
