"""SARIF 2.1.0 for GitHub code scanning and other SARIF consumers.

Two flavors. ``github`` (the default) gives every result ``region.startLine:
1``: GitHub needs a line to fingerprint and show a result, although the
SARIF spec wants binary regions for binary artifacts. ``strict`` omits the
region, which SARIF reads as "the whole artifact". Both validate against the
official schema.

Model files have no meaningful lines, so reglint ships its own
``partialFingerprints`` (rule + path + layer + target, never a value) rather
than letting upload-sarif hash line 1 of a binary file. Suppressed and
baselined findings are left out: GitHub ignores ``suppressions`` and would
open alerts for them.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, TextIO

from reglint import __version__
from reglint.engine.finding import Finding, Severity
from reglint.engine.identity import fingerprint, fingerprint_path, identity
from reglint.engine.report import FileReport, RunReport
from reglint.reporters.machine import (
    DOCS_URL,
    UNREADABLE_CODE,
    UNREADABLE_NAME,
    UNREADABLE_SUMMARY,
    artifact_path,
    jsonable,
    results,
    rule_url,
)
from reglint.reporters.text import clean

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
FLAVORS = ("github", "strict")
LEVEL = {"error": "error", "warning": "warning", "info": "note"}
PROBLEM_SEVERITY = {"error": "error", "warning": "warning", "info": "recommendation"}
DESCRIPTION_LIMIT = 1024  # GitHub's cap for short/full descriptions


def render_sarif(report: RunReport, out: TextIO, settings: Any = None, flavor: str | None = None,
                 **_: object) -> None:
    """Write one SARIF log with one run."""
    json.dump(sarif_log(report, settings, flavor), out, indent=2, ensure_ascii=False, allow_nan=False)
    out.write("\n")


def sarif_log(report: RunReport, settings: Any = None, flavor: str | None = None) -> dict[str, Any]:
    """The SARIF document as a dict (for tests and embedding)."""
    flavor = resolve_flavor(settings, flavor)
    items = list(results(report))
    rules = _rules_for(finding for _, finding in items)
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    occurrences: dict[str, int] = {}
    sarif_results = [_result(fr, f, settings, flavor, index, occurrences) for fr, f in items]
    driver: dict[str, Any] = {"name": "reglint", "semanticVersion": __version__, "version": __version__}
    if DOCS_URL:  # optional in SARIF: left out rather than invented
        driver["informationUri"] = DOCS_URL
    run: dict[str, Any] = {
        "tool": {"driver": {**driver, "rules": rules}},
        "automationDetails": {"id": "reglint/"},
        "invocations": [{"executionSuccessful": not report.errors}],
        "results": sarif_results,
    }
    if any(loc.get("physicalLocation", {}).get("artifactLocation", {}).get("uriBaseId") == SRCROOT
           for result in sarif_results for loc in result.get("locations", [])):
        run["originalUriBaseIds"] = {SRCROOT: source_root()}
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


SRCROOT = "%SRCROOT%"


def source_root() -> dict[str, Any]:
    """Where ``%SRCROOT%`` pointed on the machine that ran reglint (SARIF
    2.1.0 §3.14.14: an absolute URI ending in ``/``): the repository root
    the relative paths are relative to (the working directory outside a
    git checkout). GitHub
    code scanning resolves ``%SRCROOT%`` against its checkout instead;
    other viewers use this."""
    from pathlib import Path

    from reglint.engine.identity import repository_root

    return {"uri": Path(repository_root()).as_uri().rstrip("/") + "/",
            "description": {"text": "The root of the repository reglint ran in (the working directory outside "
                                    "one)."}}


def resolve_flavor(settings: Any, flavor: str | None) -> str:
    """Explicit argument, then ``settings.sarif_flavor``, then
    ``REGLINT_SARIF_FLAVOR``, then ``github``."""
    value = flavor or getattr(settings, "sarif_flavor", None) or os.environ.get("REGLINT_SARIF_FLAVOR") or "github"
    value = value.lower()
    if value not in FLAVORS:
        from reglint.errors import ConfigError

        raise ConfigError(f"unknown SARIF flavor {value!r}; choose from {', '.join(FLAVORS)}")
    return value


# ---------------------------------------------------------------------------
# rules


def _rules_for(findings) -> list[dict[str, Any]]:
    """driver.rules: only rules with results (like ruff), in code order."""
    from reglint.engine.rule import all_rules

    registry = all_rules()
    codes = sorted({f.code for f in findings})
    return [_rule_descriptor(code, registry.get(code)) for code in codes]


def _rule_descriptor(code: str, rule: Any) -> dict[str, Any]:
    if rule is None:  # RL900, or a finding whose rule is not registered
        name = UNREADABLE_NAME if code == UNREADABLE_CODE else code.lower()
        summary, doc, default = UNREADABLE_SUMMARY if code == UNREADABLE_CODE else code, "", Severity.ERROR
        tags = ["reglint"]
    else:
        name, summary, doc, default = rule.name, rule.summary, rule.documentation(), rule.severity
        tags = list(getattr(rule, "tags", None) or ["regularization"])
    full = _section(doc, "What it does") or summary
    fix = _section(doc, "Use instead")
    help_text = (fix + "\n\n" if fix else "") + f"Run `reglint rule {code}` for the full explanation."
    return {
        "id": code,
        "name": name,
        "shortDescription": {"text": _limit(summary)},
        "fullDescription": {"text": _limit(full)},
        "help": {"text": help_text, "markdown": doc or help_text},
        **({"helpUri": rule_url(code)} if rule_url(code) else {}),
        "defaultConfiguration": {"level": LEVEL[default.value]},
        "properties": {
            "tags": tags,
            "precision": getattr(rule, "precision", None) or "high",
            "problem.severity": PROBLEM_SEVERITY[default.value],
        },
    }


def _section(doc: str, title: str) -> str:
    r"""The text of ``## title`` in a rule's Markdown, joined into one
    paragraph, its reStructuredText literals (two backticks) as Markdown's
    one, which plain-text viewers show as they are (review 35, D6).

    >>> _section("## Use instead\n``L2(1e-3)`` or\nless\n## Options\n", "Use instead")
    '`L2(1e-3)` or less'
    """
    match = re.search(rf"^##\s+{re.escape(title)}\s*\n(.*?)(?=^##\s|\Z)", doc, re.M | re.S)
    return " ".join(match.group(1).replace("``", "`").split()) if match else ""


def _limit(text: str) -> str:
    text = clean(text)
    return text if len(text) <= DESCRIPTION_LIMIT else text[: DESCRIPTION_LIMIT - 1] + "…"


# ---------------------------------------------------------------------------
# results


def _result(file_report: FileReport, finding: Finding, settings: Any, flavor: str,
            index: dict[str, int], occurrences: dict[str, int]) -> dict[str, Any]:
    rel = fingerprint_path(file_report.path)
    uri = artifact_path(file_report.path)
    digest = fingerprint(finding.code, rel, finding.layer, finding.target)
    # GitHub numbers repeated hashes within a file ("hash:2"); do the same so
    # two findings with one identity stay two alerts.
    occurrences[digest] = occurrences.get(digest, 0) + 1
    physical: dict[str, Any] = {"artifactLocation": artifact_location(uri)}
    if flavor == "github":
        physical["region"] = {"startLine": 1}
    location: dict[str, Any] = {"physicalLocation": physical}
    logical = _logical_location(finding)
    if logical:
        location["logicalLocations"] = [logical]
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "ruleIndex": index[finding.code],
        "level": LEVEL[finding.severity.value],
        "message": {"text": _message(finding, rel)},
        "locations": [location],
        "partialFingerprints": {
            "primaryLocationLineHash": f"{digest[:16]}:{occurrences[digest]}",
            "reglint/v1": clean(identity(finding.code, rel, finding.layer, finding.target)),
        },
    }
    properties = {k: clean(v) for k, v in (("layer", finding.layer), ("target", finding.target)) if v}
    if finding.values:
        properties["values"] = jsonable(finding.values)
    if finding.fix is not None:
        properties["fix"] = jsonable(finding.fix.to_dict())
    if properties:
        result["properties"] = properties
    return result


def artifact_location(path: str) -> dict[str, Any]:
    """SARIF's ``artifactLocation`` for ``artifact_path``'s answer: a URI
    reference percent-encoded per RFC 3986 (SARIF 2.1.0 §3.10: a space,
    ``%``, ``#``, ``?`` and a ``:`` that would read as a scheme all break a
    raw path), relative to the working directory (``%SRCROOT%``, the base
    GitHub code scanning resolves against the checkout), or an absolute
    ``file://`` URI for a file outside it.

    >>> artifact_location("weird dir/a,b:c%d.keras")
    {'uri': 'weird%20dir/a%2Cb%3Ac%25d.keras', 'uriBaseId': '%SRCROOT%'}
    >>> artifact_location("/data/m 1.keras")["uri"]
    'file:///data/m%201.keras'
    """
    from pathlib import Path
    from urllib.parse import quote

    if os.path.isabs(path) or path == ".." or path.startswith("../"):
        return {"uri": Path(os.path.abspath(path)).as_uri()}
    return {"uri": quote(path, safe="/"), "uriBaseId": SRCROOT}


def _message(finding: Finding, rel: str) -> str:
    """Self-contained: GitHub shows binary-file alerts outside the diff, and
    ignores logicalLocations, so the layer and the fix are in the text."""
    where = f"Layer '{clean(finding.layer)}'" if finding.layer else f"Model {clean(rel)}"
    text = f"{where}: {clean(finding.message)}"
    if finding.remedy:
        text += f". Fix: {clean(finding.remedy)}"
    if finding.fix is not None and finding.fix.changes:
        text += f". {clean(finding.fix.line())}"  # with its aim, as every surface prints it (review 73, 6)
    return text


def _logical_location(finding: Finding) -> dict[str, Any] | None:
    if not finding.layer:
        return None
    layer = clean(finding.layer)
    qualified = f"{layer}/{clean(finding.target)}" if finding.target else layer
    return {"name": layer.rsplit("/", 1)[-1], "fullyQualifiedName": qualified, "kind": "member"}
