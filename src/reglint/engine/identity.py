"""The stable identity of a finding and the paths it is reported under:
repo-relative paths with ``/`` (relative to the config file's folder, else
the working directory) and fingerprints that hash rule + path + layer +
target, never a value, so they survive a retrain. Baselines and every CI
format share them.

>>> fingerprint("RL001", "models/a.keras", None, "penalty") == fingerprint("RL001", "models/a.keras", "", "penalty")
True
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath
from typing import Any


def project_root(settings: Any = None) -> str:
    """The folder paths are reported relative to: the config file's, else the cwd."""
    root = getattr(settings, "root", None)
    return os.path.abspath(root) if root else os.getcwd()


def display_path(path: str, settings: Any = None) -> str:
    """``path`` relative to the project root with ``/``; outside the root,
    the path as given (still with ``/``)."""
    rel = os.path.relpath(os.path.abspath(path), project_root(settings))
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        rel = path
    return PurePosixPath(Path(rel).as_posix()).as_posix()


def identity(code: str, rel_path: str, layer: str | None, target: str | None) -> str:
    """The human-readable key a fingerprint hashes: never a value."""
    return f"{code}:{rel_path}:{layer or ''}:{target or ''}"


def fingerprint(code: str, rel_path: str, layer: str | None, target: str | None) -> str:
    """sha256 hex of rule + repo-relative path + layer + target."""
    key = "\0".join((code, rel_path, layer or "", target or ""))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
