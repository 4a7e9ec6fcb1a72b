"""Plain values and functions shared by the test modules (fixtures live in
``conftest.py``; no test module imports another test module or conftest).

>>> (KERAS_FIXTURES / "manifest.json").is_file() and SARIF_SCHEMA.is_file()
True
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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


def readme_block(marker: str, language: str = "yaml") -> str:
    """The README's one fenced ``language`` block that contains ``marker``:
    tests run the README's snippets as written."""
    blocks = re.findall(rf"```{language}\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"{len(found)} README {language} blocks contain {marker!r}"
    return found[0]


def pre_commit() -> str:
    """The pre-commit executable (this environment's first); skips without it."""
    import pytest

    found = shutil.which("pre-commit", path=str(Path(sys.executable).parent)) or shutil.which("pre-commit")
    if not found:
        pytest.skip("pre-commit is not installed (pip install pre-commit)")
    return found


GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_CONFIG_SYSTEM": os.devnull}


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=check,
                          env={**os.environ, **GIT_ENV})


def snapshot_checkout(dest: Path) -> Path:
    """The working tree (tracked and untracked, not ignored files) as a
    one-commit repository: pre-commit installs hooks from commits, and the
    checkout may hold uncommitted work."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and not name.startswith(("fixtures/", "tests/data/")):
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "snapshot")
    return dest


def check_regularizer(layer, key, reg) -> None:
    """``layer`` (a reglint Layer) carries the regularizer ``reg`` that Keras'
    ``get_config()`` reported under ``key`` (``kernel_regularizer``...)."""
    from reglint.model import Role

    if key == "activity_regularizer":
        found = layer.activity_regularizer
    else:
        target = key[: -len("_regularizer")]
        candidates = [v.regularizer for v in layer.variables if v.regularizer is not None and (
            v.name.split("/")[-1] == target or v.role.value == target
            or (target == "depthwise" and v.role in (Role.DEPTHWISE_KERNEL, Role.KERNEL))
            or (target == "pointwise" and v.role is Role.POINTWISE_KERNEL)
            or (target == "recurrent" and v.role is Role.RECURRENT_KERNEL))]
        found = candidates[0] if candidates else None
        if found is None and not any(v.role.value == target or v.name.split("/")[-1] == target
                                     for v in layer.variables):
            return  # e.g. bias_regularizer with use_bias=False: no variable to regularize
    assert found is not None, f"{layer.path}: {key} not read"
    cfg = reg.get("config", {}) if isinstance(reg, dict) else {}
    if isinstance(reg, dict) and reg.get("registered_name") and ">" in str(reg.get("registered_name")):
        assert found.kind == "custom" and found.class_name == reg["registered_name"]
        return
    for factor in ("l1", "l2"):
        if factor in cfg:
            assert math.isclose(getattr(found, factor), cfg[factor], rel_tol=1e-6), (layer.path, key, factor)
    if isinstance(reg, dict) and reg.get("class_name") == "OrthogonalRegularizer":
        assert found.kind == "orthogonal"
        assert math.isclose(found.factor, cfg.get("factor", 0.01), rel_tol=1e-6)


def version_entries(pattern: str) -> list[dict]:
    """The entries of every ``fixtures/versions/<pattern>/manifest.json``
    (one zoo per writer release), each with its file's ``path``."""
    out = []
    for manifest in sorted((FIXTURES / "versions").glob(f"{pattern}/manifest.json")):
        for entry in json.loads(manifest.read_text())["files"]:
            out.append({**entry, "path": manifest.parent / entry["file"]})
    return out

def assert_one_line_refusal(done, *needles):
    """A ``reglint`` run refused the input: exit code 2, one ``reglint: ``
    line on stderr naming each of ``needles``, no traceback."""
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("reglint: ") and "Traceback" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def run_reglint(*args, timeout: int = 120) -> subprocess.CompletedProcess:
    """``python -m reglint ARGS --no-cache`` in a child, its output captured."""
    return subprocess.run([sys.executable, "-m", "reglint", *map(str, args), "--no-cache"], capture_output=True,
                          text=True, timeout=timeout)


class Hung(AssertionError):
    """Raised inside a ``hang_guard`` block that ran past its limit."""


@contextmanager
def hang_guard(seconds: float) -> Iterator[None]:
    """Fail the block if it has not finished after ``seconds``: a guard
    against the hangs hostile files caused (minutes of a quadratic walk,
    a read of 2**60 elements), set far above a working run so that a loaded
    CI machine never trips it. Not a speed measurement: those are
    benchmarks under bench/ (ratios, not times). POSIX only (SIGALRM); the
    main thread only, where pytest runs tests.

    >>> with hang_guard(5):
    ...     sum(range(10))
    45
    """

    def expired(signum, frame):
        raise Hung(f"still running after {seconds} s: a hang, not a slow machine")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
