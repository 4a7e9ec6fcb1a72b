"""Measured findings: every selected rule judges what ``reglint profile``
measured (``Rule.check_measured``), with its own thresholds and remedy.

This module owns no threshold and no formula: it only runs the rules on the
measurement and marks what they return as measured. The rules that have a
measured counterpart document it under their own code (RL001, RL002,
RL003, RL007, RL010, RL017, and RL023 for the unregularized twin).
"""

from __future__ import annotations

from typing import Any

from reglint.engine.finding import Finding, Severity
from reglint.engine.fmt import g
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
    judging: Any = rule(thresholds)  # RL023: judge and learned_as_well are its own
    judgment = judging.judge(result)
    if judgment is not None:
        twin.verdict = {"label": judgment.label, "message": judgment.message}
        margins = (judgment.values.get("margin_penalized"), judgment.values.get("margin_unregularized"))
        if None not in margins:
            twin.verdict["margins"] = list(margins)
        twin.verdict["learned_as_well"] = judging.learned_as_well(result, judgment)


def yield_to_twin(result, findings: list[Finding]) -> list[Finding]:
    """The findings, where RL023 found the penalized run ending as well as
    its unregularized twin on the user's held-back data
    (``verdict["learned_as_well"]``, RL023's ``learned_as_well``), with every
    error of a rule that predicts a wrecked training
    (``Rule.predicts_outcome``) made a warning that says so: the outcome
    was measured on the user's data, which the recipe-level prediction
    cannot see (RL023's docstring gives the rule and its calibration)."""
    twin = getattr(result, "twin", None)
    if twin is None or not twin.verdict.get("learned_as_well"):
        return findings
    rules = all_rules()
    margins = twin.verdict.get("margins")
    told = f", margins {g(margins[0], 3)} and {g(margins[1], 3)}" if margins else ""
    for finding in findings:
        rule = rules.get(finding.code)
        if finding.severity is not Severity.ERROR or rule is None or not rule.predicts_outcome:
            continue
        finding.severity = Severity.WARNING
        finding.values = {**finding.values, "severity_before_twin": "error", "overturned_by": "RL023"}
        finding.message += (f"; measured: after {g(twin.budget.steps)} steps on the held-back data the penalized "
                            f"run ended as well as its unregularized twin (RL023 {twin.verdict['label']}{told}): "
                            f"on this data the penalty did not wreck training, so a warning")
    return findings
