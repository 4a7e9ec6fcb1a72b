"""Lint many files (minimal: sequential)."""

from __future__ import annotations

from reglint.config.settings import Settings
from reglint.engine.report import FileReport
from reglint.engine.runner import lint_file


def lint_many(files: list[str], settings: Settings, *, jobs: int = 1, use_cache: bool = True,
              progress: bool = True) -> list[FileReport]:
    return [lint_file(path, settings) for path in files]
