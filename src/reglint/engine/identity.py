"""The stable identity of a finding and the paths it is reported under:
paths relative to the working directory with ``/`` (as ruff shows them: as
the user sees them from where reglint ran; absolute for a file outside it),
the same for every file whatever configuration governs it and whatever else
is on the command line, and fingerprints that hash rule + path + layer +
target, never a value, so they survive a retrain. Every CI format shares
them; baselines store their own paths (relative to the baseline file's
folder, see ``reglint.config.baseline``).

>>> fingerprint("RL001", "models/a.keras", None, "penalty") == fingerprint("RL001", "models/a.keras", "", "penalty")
True
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path


def project_root() -> str:
    """The folder reported paths are relative to: the working directory
    (GitHub and GitLab resolve paths against the checkout, where CI runs)."""
    return os.getcwd()


def repository_root() -> str:
    """The folder machine formats anchor paths at: the root of the git
    checkout holding the working directory (GitHub code scanning, GitHub
    annotations and GitLab resolve a path against the repository, whatever
    folder the CI step ran in: review 35, D4), else the working directory."""
    cwd = os.getcwd()
    return _repository_root(cwd) or cwd


@functools.lru_cache(maxsize=8)
def _repository_root(cwd: str) -> str | None:
    for folder in (Path(cwd), *Path(cwd).parents):
        if (folder / ".git").exists():  # a folder, or a file in a worktree or submodule
            return str(folder)
    return None


def repo_path(path: str) -> str:
    """``path`` as machine formats name it: relative to
    ``repository_root()`` with ``/``; outside it, absolute."""
    rel = relative_to(path, repository_root())
    return rel if rel is not None else Path(os.path.abspath(path)).as_posix()


def fingerprint_path(path: str) -> str:
    """``path`` as fingerprints hash it: relative to the root of the git
    checkout holding the file itself, so that a fingerprint does not change
    with the folder reglint ran in, inside the checkout or not (review 36,
    D9); ``repo_path`` for a file in no checkout."""
    root = _repository_root(os.path.dirname(os.path.abspath(path)))
    rel = relative_to(path, root) if root is not None else None
    return rel if rel is not None else repo_path(path)


def real_path(path: str | os.PathLike[str]) -> Path:
    """``path`` absolute with every symbolic link resolved, never raising:
    ``Path.resolve()`` raises RuntimeError on a symlink loop (Python 3.11,
    3.12), ``os.path.realpath`` returns the looping part unresolved, so the
    reader that opens it reports "too many levels of symbolic links" as a
    one-line read error."""
    return Path(os.path.realpath(path))


def relative_to(path: str, base: str) -> str | None:
    """``path`` relative to the folder ``base`` with ``/``, None when it
    lies outside ``base``. Symbolic links in either are resolved when the
    plain comparison fails (``/var`` and ``/private/var`` name one folder)."""
    for resolve in (os.path.abspath, os.path.realpath):
        try:
            rel = os.path.relpath(resolve(path), resolve(base))
        except ValueError:  # another drive (Windows)
            continue
        if not (rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel)):
            return Path(rel).as_posix()
    return None


def display_path(path: str) -> str:
    """``path`` as every reporter names it: relative to the working
    directory with ``/``; outside it, absolute (still with ``/``)."""
    rel = relative_to(path, project_root())
    return rel if rel is not None else Path(os.path.abspath(path)).as_posix()


def identity(code: str, rel_path: str, layer: str | None, target: str | None) -> str:
    """The human-readable key a fingerprint hashes: never a value."""
    return f"{code}:{rel_path}:{layer or ''}:{target or ''}"


def fingerprint(code: str, rel_path: str, layer: str | None, target: str | None) -> str:
    """sha256 hex of rule + repo-relative path + layer + target."""
    key = "\0".join((code, rel_path, layer or "", target or ""))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
