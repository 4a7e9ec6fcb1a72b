"""Every ``$ reglint ...`` example in the README, run as written, prints
what the README shows (review 26 found one stale by two releases of a
rule's message). Compared line by line with trailing spaces dropped: the
full report pads its table's last column when piped.

An example that names ``model.keras``, absent from the repository, runs in
a scratch folder on a copy of a fixture, under the ``[tool.reglint]`` line
its comment gives (``# [tool.reglint] samples = 60000``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import KERAS_FIXTURES, ROOT

EXAMPLE = re.compile(r"^\$ (reglint .*)$")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)


def readme_examples() -> list[tuple[str, list[str]]]:
    """(command, the lines shown after it) for every example in a fenced block."""
    examples: list[tuple[str, list[str]]] = []
    for block in FENCE.findall((ROOT / "README.md").read_text(encoding="utf-8")):
        current: list[str] | None = None  # the shown lines of this block's last example
        for line in block.splitlines():
            if match := EXAMPLE.match(line):
                current = []
                examples.append((match.group(1), current))
            elif line.startswith("$ "):
                current = None  # another program's example: not checked
            elif current is not None:
                current.append(line)
    return [(command, _trimmed(shown)) for command, shown in examples if command]


def _trimmed(lines: list[str]) -> list[str]:
    lines = [line.rstrip() for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _workspace(command: str, tmp_path: Path) -> Path:
    if "model.keras" not in command.split("#")[0]:
        return ROOT
    shutil.copy(KERAS_FIXTURES / "scenario_penalty_dominates.keras", tmp_path / "model.keras")
    table = re.search(r"#\s*\[tool\.reglint\]\s*(.+)$", command)
    if table:
        (tmp_path / "pyproject.toml").write_text(f"[tool.reglint]\n{table.group(1)}\n", encoding="utf-8")
    return tmp_path


def test_the_readme_has_examples():
    assert len(readme_examples()) >= 8


@pytest.mark.parametrize(("command", "shown"), readme_examples(), ids=lambda x: x if isinstance(x, str) else "")
def test_readme_example_prints_what_the_readme_shows(command, shown, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR", "FORCE_COLOR")}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")  # this venv's reglint
    env["REGLINT_CACHE_DIR"] = str(tmp_path / "cache")
    result = subprocess.run(command, shell=True, cwd=_workspace(command, tmp_path), env=env,
                            capture_output=True, text=True, timeout=300)  # the timeout: a hang guard
    assert _trimmed((result.stdout + result.stderr).splitlines()) == shown
