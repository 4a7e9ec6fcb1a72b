"""Resolved settings for one run: rule selection, severities, thresholds,
ignores and the training context. Built from [tool.reglint] (or
reglint.toml) and the command line, the command line winning."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

from reglint.engine.analysis import TrainingContext
from reglint.engine.finding import Severity

# The output formats a run can write (``--format`` / ``output-format``); the
# reporters register one renderer each.
OUTPUT_FORMATS = ("full", "json", "json-lines", "sarif", "github", "gitlab", "junit", "pylint", "concise", "html")


@dataclass
class Override:
    """A mypy-style override: for files matching ``files`` and layers
    matching ``layers`` (globs), drop the codes in ``ignore``."""

    files: list[str] = field(default_factory=lambda: ["*"])
    layers: list[str] = field(default_factory=lambda: ["*"])
    ignore: list[str] = field(default_factory=list)
    reason: str | None = None
    expires: _dt.date | None = None


@dataclass
class Settings:
    select: list[str] = field(default_factory=lambda: ["RL"])
    extend_select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    severity: dict[str, Severity] = field(default_factory=dict)  # code -> severity
    thresholds: dict[str, float] = field(default_factory=dict)  # option name -> value
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    overrides: list[Override] = field(default_factory=list)
    fail_on: Severity | None = Severity.ERROR  # None: never fail on findings
    context: TrainingContext = field(default_factory=TrainingContext)
    exclude: list[str] = field(default_factory=list)
    extend_exclude: list[str] = field(default_factory=list)
    respect_gitignore: bool = True
    force_exclude: bool = False
    trust_model: bool = False
    root: str | None = None  # folder of the config file, for relative globs
    config_file: str | None = None
    output_format: str | None = None  # from the config; the command line wins
    baseline: str | None = None
    sarif_flavor: str | None = None  # github (default) or strict
