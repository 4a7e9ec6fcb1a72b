"""OrthogonalRegularizer's penalty at a fresh initialisation from Keras'
Orthogonal initializer (review 40, 4): orthonormal rows have no overlap to
penalise, where the estimate took random vectors' |cos| (an LSTM's
recurrent kernel: 0.04 against Keras' 4e-9). Keras' penalties, the mean of
20 fresh draws, are in fixtures/orthogonal/manifest.json."""

from __future__ import annotations

import json

import pytest

from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings

from helpers import FIXTURES

HERE = FIXTURES / "orthogonal"
TRUTH = json.loads((HERE / "manifest.json").read_text())["files"]["orthogonal_init.keras"]["penalty_init"]


@pytest.mark.parametrize("layer", sorted(TRUTH))
def test_the_penalty_at_init_is_keras(layer):
    report = lint_file(str(HERE / "orthogonal_init.keras"), Settings())
    [penalty] = [p for p in report.analysis.penalties if p.layer.path == layer]
    assert penalty.penalty_init == pytest.approx(TRUTH[layer], rel=0.15, abs=1e-6)
