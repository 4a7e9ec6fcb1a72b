"""Find model files under the given paths (minimal; extended for .gitignore)."""

from __future__ import annotations

import os
from pathlib import Path

from reglint.config.settings import Settings
from reglint.readers.sniff import MODEL_SUFFIXES


def discover(paths: list[str], settings: Settings) -> tuple[list[str], list[str]]:
    files, missing = [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and not (path / "saved_model.pb").is_file():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                if "saved_model.pb" in names:
                    files.append(root)
                    dirs[:] = []
                    continue
                files.extend(os.path.join(root, n) for n in sorted(names) if n.lower().endswith(MODEL_SUFFIXES))
        elif path.exists() or path.is_symlink():
            files.append(str(path))
        else:
            missing.append(str(path))
    return files, missing
