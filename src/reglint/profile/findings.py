"""Measured findings: every selected rule judges what ``reglint profile``
measured (``Rule.check_measured``), with its own thresholds and remedy.

This module owns no threshold and no formula: it only runs the rules on the
measurement and marks what they return as measured. The rules that have a
measured counterpart document it under their own code (RL001, RL002,
RL003, RL007, RL010, RL017).
"""

from __future__ import annotations

from reglint.engine.finding import Finding
from reglint.engine.report import FileReport
from reglint.engine.rule import all_rules


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
