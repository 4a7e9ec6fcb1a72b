"""An OrthogonalRegularizer's penalty at the saved weights, as Keras
computes it (review 30, D9: P@saved was empty, ``penalty_saved`` null).
Keras' values: ``fixtures/orthogonal/manifest.json``."""

from __future__ import annotations

import json

import pytest

from reglint.engine.analysis import Analysis
from reglint.readers import read_model

from helpers import FIXTURES

HERE = FIXTURES / "orthogonal"
KERAS = json.loads((HERE / "manifest.json").read_text())["files"]["orthogonal.keras"]["penalty_saved"]


@pytest.mark.parametrize("layer", sorted(KERAS))
def test_the_saved_penalty_is_keras(layer):
    penalties = {p.layer.path: p for p in Analysis(read_model(HERE / "orthogonal.keras")).penalties}
    assert penalties[layer].penalty_saved == pytest.approx(KERAS[layer], rel=1e-5)
