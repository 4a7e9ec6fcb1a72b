"""Measured findings: every selected rule judges what ``reglint profile``
measured (``Rule.check_measured``), with its own thresholds and remedy.

This module owns no threshold and no formula: it only runs the rules on the
measurement and marks what they return as measured. The rules that have a
measured counterpart document it under their own code (RL001, RL002,
RL003, RL007, RL010, RL017, and RL023 for the unregularized twin).
"""

from __future__ import annotations

from reglint.engine.finding import Finding
from reglint.engine.report import FileReport
from reglint.engine.rule import all_rules, get_rule


def measured_findings(result, report: FileReport, thresholds: dict[str, float],
                      selected: set[str]) -> list[Finding]:
    out: list[Finding] = []
    for code, cls in all_rules().items():
        if code not in selected:
            continue
        for finding in cls(thresholds).check_measured(result, report):
            finding.measured = True
            out.append(finding)
    return out


def attach_twin_verdict(result, report: FileReport, thresholds: dict[str, float]) -> None:
    """The twin's verdict in the JSON (``analysis.profile.twin.verdict``)
    is RL023's judgment, under the run's thresholds, whether or not RL023
    is selected: selection decides findings, not what was measured."""
    twin = getattr(result, "twin", None)
    rule = get_rule("RL023")
    if twin is None or rule is None:
        return
    judge = getattr(rule(thresholds), "judge", None)
    judgment = judge(result) if judge is not None else None
    if judgment is not None:
        twin.verdict = {"label": judgment.label, "message": judgment.message}
