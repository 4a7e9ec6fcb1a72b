"""Baselines: accept today's findings so that only new ones fail CI.

The file (default ``.reglint-baseline.json``) holds two sections, as
detekt's does:

* ``findings``: written by ``--create-baseline``; each keyed by a
  fingerprint, the sha256 of rule + path + layer + target.
  Never a value: lambdas and weights change on every retrain, and a
  baseline that broke on each one would be useless. ``observed`` records
  the numbers for the reader only.
* ``manually-suppressed``: curated by hand (rule, path glob, layer glob,
  reason, optional expiry date); kept as is when the baseline is rewritten.

Paths in the file (and the hand-curated globs) are relative to the
baseline file's folder, with ``/``: a baseline committed at the repository
root matches from any working directory and whatever configuration governs
each model. The file says so (``"paths": "relative-to-baseline"``). A file
written before that (no ``paths`` key) stored paths relative to the
configuration's folder, else the working directory, which depended on the
command line; its entries still match where they name one file without
doubt: relative to the baseline's folder or to the working directory, and
only when those two readings do not name two different existing files.

Filtering moves matching findings to ``FileReport.suppressed``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from reglint import __version__
from reglint.engine.finding import Finding
from reglint.engine.identity import display_path, fingerprint, relative_to
from reglint.engine.report import RunReport
from reglint.errors import ConfigError, warn

BASELINE_VERSION = 1
MANUAL = "manually-suppressed"
PATHS_KEY, PATHS_RELATIVE_TO_BASELINE = "paths", "relative-to-baseline"


def baseline_fingerprint(finding: Finding, rel_path: str) -> str:
    return "sha256:" + fingerprint(finding.code, rel_path, finding.layer, finding.target)


def write_baseline(path: str | Path, report: RunReport) -> None:
    """Write every finding of ``report`` (call it before filtering),
    preserving the hand-curated section of an existing file."""
    path = Path(path)
    manual = load_baseline(path)[MANUAL] if path.exists() else []
    entries: list[dict[str, Any]] = []
    for file_report in report.files:
        rel = baseline_path(file_report.path, path)
        entries.extend(_entry(finding, rel) for finding in file_report.findings)
    entries.sort(key=lambda e: (e["path"], e["rule"], e["layer"] or "", e["parameter"] or ""))
    document = {
        "version": BASELINE_VERSION,
        "tool": {"name": "reglint", "version": __version__},
        PATHS_KEY: PATHS_RELATIVE_TO_BASELINE,
        "generated": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "findings": _unique(entries),
        MANUAL: manual,
    }
    text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    path.write_text(text, encoding="utf-8")


def filter_by_baseline(path: str | Path, report: RunReport, today: _dt.date | None = None) -> int:
    """Move findings the baseline accepts to ``suppressed``; returns how many."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"baseline file {path} not found (create it with --create-baseline)")
    data = load_baseline(path)
    known = {entry["fingerprint"] for entry in data["findings"]}
    manual = _active(data[MANUAL], path, today or _dt.date.today())
    legacy = data.get(PATHS_KEY) != PATHS_RELATIVE_TO_BASELINE
    moved = 0
    for file_report in report.files:
        names = _names(file_report.path, path, legacy)
        kept = []
        for finding in file_report.findings:
            if any(baseline_fingerprint(finding, rel) in known or _manually(finding, rel, manual) for rel in names):
                file_report.suppressed.append(finding)
                moved += 1
            else:
                kept.append(finding)
        file_report.findings = kept
    return moved


def baseline_path(model_path: str, baseline: str | Path) -> str:
    """``model_path`` as the baseline stores it: relative to the baseline
    file's folder with ``/`` (``../`` where it lies beside that folder;
    absolute on another drive)."""
    folder = os.path.dirname(os.path.abspath(baseline))
    inside = relative_to(model_path, folder)
    if inside is not None:
        return inside
    try:
        return Path(os.path.relpath(os.path.abspath(model_path), folder)).as_posix()
    except ValueError:  # another drive (Windows)
        return Path(os.path.abspath(model_path)).as_posix()


def _names(model_path: str, baseline: Path, legacy: bool) -> list[str]:
    """The paths an entry may name ``model_path`` by. A legacy baseline's
    path may also be relative to the working directory; that reading counts
    only when the same text, read relative to the baseline's folder, is not
    another existing file (else the entry is ambiguous and matches neither)."""
    names = [baseline_path(model_path, baseline)]
    if not legacy:
        return names
    folder, here = os.path.dirname(os.path.abspath(baseline)), os.path.abspath(model_path)
    bases = (folder, os.getcwd())
    for name in {baseline_path(model_path, baseline), display_path(model_path)}:
        readings = {os.path.normpath(os.path.join(base, name)) for base in bases}
        if any(os.path.exists(other) for other in readings - {here}):
            names = [n for n in names if n != name]
        elif name not in names:
            names.append(name)
    return names


# ---------------------------------------------------------------------------
# reading and validation


def load_baseline(path: Path) -> dict[str, Any]:
    """The parsed, validated file; ConfigError naming what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read baseline {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"malformed baseline {path}: not JSON ({exc})") from None
    problem = _problem(data)
    if problem:
        raise ConfigError(f"malformed baseline {path}: {problem}")
    data.setdefault(MANUAL, [])
    for entry in data["findings"]:
        if "fingerprint" not in entry:  # hand-added entries may omit it
            entry["fingerprint"] = "sha256:" + fingerprint(entry["rule"], entry["path"], entry.get("layer"),
                                                           entry.get("parameter"))
    return data


def _problem(data: Any) -> str | None:
    if not isinstance(data, dict):
        return "expected a JSON object"
    if data.get("version") != BASELINE_VERSION:
        return f"unsupported version {data.get('version')!r} (expected {BASELINE_VERSION})"
    findings = data.get("findings")
    if not isinstance(findings, list):
        return "'findings' must be a list"
    for i, entry in enumerate(findings):
        problem = _entry_problem(entry, ("rule", "path"), ("fingerprint", "layer", "parameter"))
        if problem:
            return f"findings[{i}]: {problem}"
    manual = data.get(MANUAL, [])
    if not isinstance(manual, list):
        return f"'{MANUAL}' must be a list"
    for i, entry in enumerate(manual):
        problem = _entry_problem(entry, ("rule", "path"), ("layer", "reason", "expires"))
        if problem:
            return f"{MANUAL}[{i}]: {problem}"
        if entry.get("expires") is not None and _date(entry["expires"]) is None:
            return f"{MANUAL}[{i}]: 'expires' must be a date like 2026-12-31"
    return None


def _entry_problem(entry: Any, required: tuple[str, ...], optional: tuple[str, ...]) -> str | None:
    if not isinstance(entry, dict):
        return "expected an object"
    for key in required:
        if not isinstance(entry.get(key), str):
            return f"'{key}' must be a string"
    for key in optional:
        if entry.get(key) is not None and not isinstance(entry[key], str):
            return f"'{key}' must be a string"
    return None


def _date(text: str) -> _dt.date | None:
    try:
        return _dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------
# matching


def _active(manual: list[dict[str, Any]], path: Path, today: _dt.date) -> list[dict[str, Any]]:
    """Hand-curated entries still in force; one warning per expired one."""
    active = []
    for entry in manual:
        expires = _date(entry["expires"]) if entry.get("expires") else None
        if expires is not None and expires < today:
            warn(f"{path}: the suppression of {entry['rule']} for {entry['path']} expired on "
                 f"{expires.isoformat()} and no longer applies")
            continue
        active.append(entry)
    return active


def _manually(finding: Finding, rel: str, manual: list[dict[str, Any]]) -> bool:
    """Rule (code or prefix), path glob and layer glob all match."""
    for entry in manual:
        if not finding.code.startswith(entry["rule"].upper()) and entry["rule"].upper() != "ALL":
            continue
        if not fnmatch(rel, entry["path"]):
            continue
        pattern = entry.get("layer") or "*"
        if fnmatch(finding.layer or "", pattern):
            return True
    return False


def _entry(finding: Finding, rel: str) -> dict[str, Any]:
    return {
        "fingerprint": baseline_fingerprint(finding, rel),
        "rule": finding.code,
        "path": rel,
        "layer": finding.layer,
        "parameter": finding.target,
        "observed": _observed(finding.values),
    }


def _observed(values: dict[str, Any]) -> dict[str, Any]:
    """Scalar values, rounded: for the reader, never for matching."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float):
            out[key] = float(f"{value:.4g}") if math.isfinite(value) else str(value)
        else:
            out[key] = value
    return out


def _unique(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for entry in entries:
        if entry["fingerprint"] not in seen:
            seen.add(entry["fingerprint"])
            out.append(entry)
    return out
