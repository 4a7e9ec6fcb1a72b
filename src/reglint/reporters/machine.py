"""Plain machine formats (json-lines, concise, pylint, gitlab) and the
helpers every CI format shares: repo-relative paths, stable fingerprints and
the ``RL900`` pseudo-finding for unreadable files.

Paths are relative to the working directory with ``/`` (absolute for a
file outside it), whatever configuration governs the file. Fingerprints hash rule + path + layer + target,
never a value, so they survive a retrain.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator
from typing import Any, TextIO

from reglint.engine.finding import Finding, Severity
from reglint.engine.identity import display_path, fingerprint, fingerprint_path, repo_path
from reglint.engine.report import FileReport, RunReport
from reglint.reporters.text import clean, summary_line


def _docs_url() -> str | None:
    """The documentation location pyproject.toml declares (``[project.urls]
    Documentation``, read from the installed package's metadata); None when
    it declares none: reports then leave the links out rather than point at
    an invented address."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        entries = metadata("reglint").get_all("Project-URL") or []
    except PackageNotFoundError:
        return None
    for entry in entries:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "documentation" and url.strip():
            return url.strip().rstrip("/")
    return None


DOCS_URL = _docs_url()
UNREADABLE_CODE = "RL900"
UNREADABLE_NAME = "unreadable-model"
UNREADABLE_SUMMARY = "The file could not be read as a model, so none of its regularization was checked."
UNREADABLE_DOC = f"""# {UNREADABLE_NAME} ({UNREADABLE_CODE})

## What it does
{UNREADABLE_SUMMARY} The CI formats (sarif, github, gitlab, junit, pylint,
concise, json-lines) report such a file under this code, with the read
error as its message; the terminal prints the error as one line.

## Why it is bad
A model no reader can open passes no check: a truncated download, a Git LFS
pointer where the weights should be, a hostile archive or a format reglint
does not read.

## Use instead
Fix or re-save the file (the message names what failed), or keep it out of
the linted paths (``exclude`` in the configuration).

## Options
None. It is not a rule: ``select`` and ``ignore`` do not reach it, and a
read error always exits 2.
"""


# ---------------------------------------------------------------------------
# shared helpers


# A Hugging Face folder is reported at the first of these it holds.
HF_ARTIFACTS = ("model.safetensors", "pytorch_model.bin", "diffusion_pytorch_model.safetensors",
                "diffusion_pytorch_model.bin", "optimizer.pt", "optimizer.bin", "trainer_state.json", "config.json")


def artifact_path(path: str) -> str:
    """A file CI systems can attach a result to: a SavedModel folder is
    reported at its ``saved_model.pb`` (GitHub cannot fingerprint folders),
    a Hugging Face folder at its weights (else optimizer, trainer state);
    relative to the repository root (``repo_path``)."""
    rel = repo_path(path)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            for name in HF_ARTIFACTS:
                if os.path.isfile(os.path.join(path, name)):
                    return f"{rel.rstrip('/')}/{name}"
        return f"{rel.rstrip('/')}/saved_model.pb"
    return rel


def unreadable_finding(file_report: FileReport) -> Finding:
    """The pseudo-finding that stands for a file no reader could open."""
    return Finding(code=UNREADABLE_CODE, name=UNREADABLE_NAME, severity=Severity.ERROR,
                   message=str(file_report.error))


def results(report: RunReport) -> Iterator[tuple[FileReport, Finding]]:
    """Every (file, finding) a machine format shows: the findings, and one
    RL900 per unreadable file, in report order."""
    for file_report in report.files:
        if file_report.error:
            yield file_report, unreadable_finding(file_report)
        for finding in file_report.findings:
            yield file_report, finding


def sorted_by_severity(items: list[tuple[FileReport, Finding]]) -> list[tuple[FileReport, Finding]]:
    """Worst first; stable within a severity (report order)."""
    return sorted(items, key=lambda item: -item[1].severity.rank)


def rule_url(code: str) -> str | None:
    """The rule's documentation page; None without a documentation location."""
    return f"{DOCS_URL}/rules/{code}" if DOCS_URL else None


def jsonable(value: Any) -> Any:
    """Values made safe for strict JSON (NaN/inf become strings) and for
    terminals (strings cleaned), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {clean(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return clean(value)  # strings (layer names among them) and anything else


def headline(finding: Finding) -> str:
    """``RL001 [dense_1] message``: code, layer and message on one line."""
    where = f" [{clean(finding.layer)}]" if finding.layer else ""
    return f"{finding.code}{where} {clean(finding.message)}"


# ---------------------------------------------------------------------------
# formats


def render_json_lines(report: RunReport, out: TextIO, settings: Any = None, **_: object) -> None:
    """One JSON object per finding (and per unreadable file), one per line."""
    for file_report, finding in results(report):
        rel = display_path(file_report.path)
        record = {
            "code": finding.code,
            "name": finding.name,
            "severity": finding.severity.value,
            "message": clean(finding.message),
            "filename": rel,
            "layer": clean(finding.layer) if finding.layer else None,
            "target": clean(finding.target) if finding.target else None,
            "remedy": clean(finding.remedy) if finding.remedy else None,
            "fix": jsonable(finding.fix.to_dict()) if finding.fix is not None else None,
            "values": jsonable(finding.values),
            "url": rule_url(finding.code),
            "fingerprint": fingerprint(finding.code, fingerprint_path(file_report.path), finding.layer, finding.target),
        }
        out.write(json.dumps(record, allow_nan=False, ensure_ascii=False) + "\n")


def render_concise(report: RunReport, out: TextIO, settings: Any = None, **_: object) -> None:
    """ruff's concise shape: ``models/a.keras: RL001 [dense_1] message``, then
    the full report's count by severity (or ruff's ``All checks passed!``)."""
    count = 0
    for file_report, finding in results(report):
        out.write(f"{clean(display_path(file_report.path))}: {headline(finding)}\n")
        count += 1
    out.write(summary_line(report) + "\n" if count else "All checks passed!\n")


def render_pylint(report: RunReport, out: TextIO, settings: Any = None, **_: object) -> None:
    """pylint's parseable shape, line 1 (a model has no lines)."""
    for file_report, finding in results(report):
        where = f" [{clean(finding.layer)}]" if finding.layer else ""
        out.write(f"{clean(display_path(file_report.path))}:1: [{finding.code}]{where} "
                  f"{clean(finding.message)}\n")


GITLAB_SEVERITY = {"error": "critical", "warning": "minor", "info": "info"}


def render_gitlab(report: RunReport, out: TextIO, settings: Any = None, **_: object) -> None:
    """GitLab Code Quality JSON: one issue per finding, unique fingerprints."""
    issues, seen = [], set()
    for file_report, finding in results(report):
        print_ = fingerprint(finding.code, fingerprint_path(file_report.path), finding.layer, finding.target)
        digest, n = print_, 1
        while digest in seen:  # GitLab drops duplicates: number repeats
            n += 1
            digest = hashlib.sha256(f"{print_}:{n}".encode()).hexdigest()
        seen.add(digest)
        issues.append({
            "check_name": finding.code,
            "description": headline(finding),
            "severity": GITLAB_SEVERITY[finding.severity.value],
            "fingerprint": digest,
            "location": {"path": artifact_path(file_report.path),
                         "positions": {"begin": {"line": 1, "column": 1}}},
        })
    json.dump(issues, out, indent=2, ensure_ascii=False, allow_nan=False)
    out.write("\n")
