"""RL021's moving-statistics clause (review 42, 1): BatchNorm-fed kernels
under L2 turn ``theta`` rad per step at equilibrium; over the moving
statistics' window ``1/(1-momentum)`` they turn ``phi = theta*sqrt(W)``,
and evaluation normalizes with statistics of other weights. On
``bench/bn_rotation_lag.py``'s grid the recipes of ``fixtures/bn_lag``
lost 52-55% (constant lr, momentum 0.99), 5% (momentum 0.9), 2-3% (cosine
decay) and 69-76% (L2 1e-2 under cosine decay) of their validation margin."""

from __future__ import annotations

import json

import pytest

from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings

from helpers import FIXTURES

HERE = FIXTURES / "bn_lag"
MANIFEST = json.loads((HERE / "manifest.json").read_text())["files"]
WARNED = {"l2_1e-3_constant.keras": True, "l2_1e-3_momentum_0.9.keras": False, "l2_1e-3_cosine.keras": False,
          "l2_1e-2_cosine.keras": True}


def lag(name: str):
    report = lint_file(str(HERE / name), Settings())
    return [f for f in report.findings if f.code == "RL021" and "statistics_turn" in f.values]


@pytest.mark.parametrize("name", sorted(WARNED))
def test_the_statistics_lag_is_judged_by_the_turn_over_their_window(name):
    found = lag(name)
    assert bool(found) == WARNED[name]
    if found:
        truth = MANIFEST[name]
        values = found[0].values
        theta = (4 * truth["learning_rate"] * truth["l2"] / (1 + truth["momentum"])) ** 0.5
        assert values["angular_update"] == pytest.approx(theta, rel=1e-6)
        assert values["statistics_turn"] == pytest.approx(theta * (1 / (1 - truth["bn_momentum"])) ** 0.5)
        assert found[0].severity.value == "warning"
