"""The docstring examples under src/ and rules/ are collected as tests
(pyproject's --doctest-modules), and collecting them imports no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import ROOT

COLLECT = """
import json, sys, pytest
class Items:
    ids = []
    def pytest_collection_finish(self, session):
        self.ids = [item.nodeid for item in session.items]
plugin = Items()
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "src", "rules"], plugins=[plugin])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras", "torch"))
print(json.dumps({"code": int(code), "ids": plugin.ids, "heavy": heavy}))
"""


def test_doctests_are_collected_without_tensorflow():
    done = subprocess.run([sys.executable, "-c", COLLECT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stdout[-2000:]
    modules = {nodeid.split("::")[0] for nodeid in result["ids"]}
    assert "src/reglint/engine/fmt.py" in modules and len(result["ids"]) >= 10, result["ids"]
    assert result["heavy"] == []
