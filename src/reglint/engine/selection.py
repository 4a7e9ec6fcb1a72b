"""Which rules run and which findings survive: select / extend-select /
ignore by code or prefix (ruff's semantics), per-file ignores and per-layer
overrides with reasons and expiry dates."""

from __future__ import annotations

import datetime as _dt
import os
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

from reglint.engine.finding import Finding
from reglint.engine.rule import Rule, all_rules
from reglint.engine.settings import Settings


def _matches(code: str, selectors: list[str]) -> int:
    """Length of the longest selector matching ``code`` (0: none); ALL is 1."""
    best = 0
    for raw in selectors:
        sel = raw.strip().upper()
        if sel == "ALL":
            best = max(best, 1)
        elif code.startswith(sel):
            best = max(best, len(sel) + 1)
    return best


def selected_rules(settings: Settings) -> list[type[Rule]]:
    """ruff: the more specific of select and ignore wins."""
    chosen = []
    for code, cls in all_rules().items():
        picked = max(_matches(code, settings.select), _matches(code, settings.extend_select))
        dropped = _matches(code, settings.ignore)
        if picked and picked > dropped:
            chosen.append(cls)
    return chosen


def relative_posix(path: str, root: str | None) -> str:
    """``path`` relative to the config's folder, with ``/``; unchanged when it
    lies outside (both made absolute first, so it works from any cwd)."""
    if root:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
        if not rel.startswith(os.pardir):
            return Path(rel).as_posix()
    return PurePosixPath(path.replace("\\", "/")).as_posix()


def _file_matches(rel: str, pattern: str) -> bool:
    return fnmatch(rel, pattern) or fnmatch(PurePosixPath(rel).name, pattern) or (
        pattern.startswith("**/") and fnmatch(rel, pattern[3:]))


def filter_findings(findings: list[Finding], path: str, settings: Settings,
                    today: _dt.date | None = None) -> tuple[list[Finding], list[Finding]]:
    """(kept, suppressed). Severity overrides apply to what is kept."""
    today = today or _dt.date.today()
    rel = relative_posix(path, settings.root)
    kept, suppressed = [], []
    for finding in findings:
        if _suppressed(finding, rel, settings, today):
            suppressed.append(finding)
            continue
        if finding.code in settings.severity:
            finding.severity = settings.severity[finding.code]
        kept.append(finding)
    return kept, suppressed


def _suppressed(finding: Finding, rel: str, settings: Settings, today: _dt.date) -> bool:
    for pattern, codes in settings.per_file_ignores.items():
        if _file_matches(rel, pattern) and _matches(finding.code, codes):
            return True
    for override in settings.overrides:
        if override.expires is not None and override.expires < today:
            continue  # an expired ignore stops applying
        if not any(_file_matches(rel, pat) for pat in override.files):
            continue
        layer = finding.layer or ""
        if layer and not any(fnmatch(layer, pat) or fnmatch(layer.split("/")[-1], pat) for pat in override.layers):
            continue
        if not layer and override.layers not in (["*"], []):
            continue
        if _matches(finding.code, override.ignore):
            return True
    return False
