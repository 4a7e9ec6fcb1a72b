"""Plain values and functions shared by the test modules (fixtures live in
``conftest.py``; no test module imports another test module or conftest).

>>> (KERAS_FIXTURES / "manifest.json").is_file() and SARIF_SCHEMA.is_file()
True
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
KERAS_FIXTURES = FIXTURES / "keras"
RULE_FIXTURES = FIXTURES / "rules"
DATA = Path(__file__).resolve().parent / "data"
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
# The OASIS SARIF 2.1.0 schema, vendored (origin and licence: tests/data/README.md).
SARIF_SCHEMA = DATA / "sarif-schema-2.1.0.json"
# The shared corpus is outside the repository: tests that need it skip without it.
CORPUS = ROOT.parent / "shared" / "corpus" / "keras-dl4j"


def keras_manifest() -> list[dict]:
    """The entries of fixtures/keras/manifest.json (what Keras reported)."""
    return json.loads((KERAS_FIXTURES / "manifest.json").read_text())["files"]
