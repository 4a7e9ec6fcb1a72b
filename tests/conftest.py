"""Shared paths for the test suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
KERAS_FIXTURES = FIXTURES / "keras"
CORPUS = ROOT.parent / "shared" / "corpus" / "keras-dl4j"


def keras_manifest() -> list[dict]:
    return json.loads((KERAS_FIXTURES / "manifest.json").read_text())["files"]


@pytest.fixture(scope="session")
def manifest() -> dict[str, dict]:
    return {entry["file"]: entry for entry in keras_manifest()}
