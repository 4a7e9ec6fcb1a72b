"""Measured findings: every selected rule judges what ``reglint profile``
measured (``Rule.check_measured``), with its own thresholds and remedy.

This module owns no threshold and no formula: it only runs the rules on the
measurement and marks what they return as measured. The rules that have a
measured counterpart document it under their own code (RL001, RL002,
RL003, RL007, RL010, RL017, and RL023 for the unregularized twin).
"""

from __future__ import annotations

from typing import Any

from reglint.engine.finding import Finding, Severity, setting_key
from reglint.engine.fmt import g, pct
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
        twin.verdict = {"label": judgment.label, "message": judgment.message,
                        "severity": judgment.severity.value if judgment.severity is not None else None}
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


def weigh_fixes_by_trials(result, findings: list[Finding], thresholds: dict[str, float]) -> list[Finding]:
    """The findings, each of whose fix RL023 measured to be too little, told
    so: a fix every change of which lowers a setting that a failed trial
    lowered (same layer, tensor, parameter and starting value), no further
    than the trial did, asks for less than a recipe that trailed the
    unregularized twin (each penalty at least as strong as that trial's). A
    fix that also changes a setting the trial left alone, or raises one, was
    not measured and is left as it is. The fix stays its rule's own; the
    message, the remedy and ``values["fix_trailed_twin"]`` say what was
    measured, and RL023's finding gives the value that trained (review 50:
    RL023's trial of RL001's formula value trailed the twin like the saved
    recipe, and RL001's findings in the same report still proposed it)."""
    twin = getattr(result, "twin", None)
    rule_class = get_rule("RL023")
    if twin is None or not twin.trials or rule_class is None:
        return findings
    rule: Any = rule_class(thresholds)  # RL023 judges its own trials
    failed = [(trial, rule.trial_gap(result, trial)) for trial in twin.trials
              if not trial.skipped and not rule.trial_passed(result, trial)]
    for finding in findings:
        if finding.code == "RL023" or finding.fix is None or not finding.fix.changes:
            continue
        covering = [(trial, gap) for trial, gap in failed if _asks_less(finding.fix.changes, trial.changes)]
        if covering:
            _tell_trailed(finding, *covering[-1])  # the last trial that covers it: the lowest values
    return findings


def _asks_less(changes, tried) -> bool:
    """Whether every change lowers a setting ``tried`` lowered, to a value
    no lower than the trial's."""
    lowest = dict(setting_key(change) for change in tried)
    for change in changes:
        key, value = setting_key(change)
        if key is None or value is None or change.current is None or not value < change.current:
            return False
        trial_value = lowest.get(key)
        if trial_value is None or value < trial_value:
            return False
    return True


def _tell_trailed(finding: Finding, trial, gap: float | None) -> None:
    outcome = ("diverged" if gap == float("inf") else
               f"{pct(gap)} of the twin's margin lost" if gap is not None else "trailed the twin")
    tried = dict(setting_key(change) for change in trial.changes)
    asked = [setting_key(change) for change in finding.fix.changes] if finding.fix else []
    values = ", ".join(sorted({g(tried[key]) for key, _ in asked if tried.get(key) is not None}))
    how = "as this fix asks" if all(tried.get(key) == value for key, value in asked) else "further than this fix asks"
    finding.values = {**finding.values, "fix_trailed_twin": {
        "trial": [c.to_dict() for c in trial.changes], "trial_gap": gap}}
    finding.message += (f"; measured: RL023 trained the recipe with these settings lowered to {values}, {how}, "
                        f"and it still trailed the unregularized twin ({outcome})")
    finding.remedy = ("measured not enough on your data: take RL023's measured fix"
                      + (f" (this rule's formula asks: {finding.remedy})" if finding.remedy else ""))
