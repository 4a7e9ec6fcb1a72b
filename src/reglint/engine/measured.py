"""Helpers the rules share when they judge what ``reglint profile``
measured (``Rule.check_measured``): how a measured verdict relates to the
static one, and what the measurement stood on.

The judgments themselves stay in the rules; this module only words the
comparison.
"""

from __future__ import annotations

from typing import Any

from reglint.engine.finding import Finding, Severity


def static_finding(report: Any, code: str, layer: str | None = None,
                   target: str | None = None) -> Finding | None:
    """The static finding of ``code`` (kept or suppressed) for that layer/target."""
    for finding in list(getattr(report, "findings", [])) + list(getattr(report, "suppressed", [])):
        if finding.code != code or finding.measured:
            continue
        if layer is not None and finding.layer != layer:
            continue
        if target is not None and finding.target != target:
            continue
        return finding
    return None


def static_predictions(report: Any) -> list[Finding]:
    """The static findings (kept) of rules that predict a training's
    outcome, errors first: what the static check said of the damage a
    measurement then shows, whichever rule said it."""
    from reglint.engine.rule import all_rules

    rules = all_rules()
    found = [f for f in getattr(report, "findings", []) if not f.measured
             and getattr(rules.get(f.code), "predicts_outcome", False)]
    return sorted(found, key=lambda f: -f.severity.rank)


def collapsed_weights(report: Any) -> bool:
    """True when the saved weights have already collapsed (RL017 fired on
    them): a measurement at those weights says nothing about a fresh run."""
    return static_finding(report, "RL017") is not None


def twin_harm(result: Any) -> str | None:
    """RL023's verdict where its twin measured an error's damage (the
    penalized run collapsed, diverged or ended far short of its
    unregularized twin), else None: what a ratio measured at the saved
    weights cannot overturn."""
    twin = getattr(result, "twin", None)
    verdict_ = getattr(twin, "verdict", None) or {}
    return verdict_.get("label") if verdict_.get("severity") == Severity.ERROR.value else None


def verdict(static: Severity | None, measured: Severity | None, report: Any = None,
            harm: str | None = None) -> str:
    """How the measurement relates to the static estimate; ``harm``: RL023's
    verdict where the twin measured the damage itself (``twin_harm``), which
    a milder ratio does not overturn (review 53: an activity penalty 1x the
    data loss at the saved weights was "overturned" in the report whose
    twin stayed at chance because of it).

    >>> verdict(Severity.ERROR, Severity.ERROR)
    'confirmed'
    >>> verdict(Severity.ERROR, None)
    'overturned (static error)'
    >>> verdict(Severity.WARNING, None, harm="collapsed")[:60]
    'under the static warning here, but not overturned: RL023 mea'
    """
    if static == measured:
        return "confirmed"
    if static is None:
        return "not predicted by the static estimate"
    if harm is not None and (measured is None or measured.rank < static.rank):
        return (f"under the static {static.value} here, but not overturned: RL023 measured the damage itself "
                f"(its verdict against the unregularized twin: {harm}), and the ratio at these weights does "
                f"not show what the penalty does as training goes on")
    if measured is None:
        if report is not None and collapsed_weights(report):
            return (f"not reproduced at the saved weights, which have already collapsed (RL017): a measurement "
                    f"there is no evidence against the static {static.value}, which judges weights of "
                    f"initialisation scale")
        return f"overturned (static {static.value})"
    if measured.rank > static.rank:
        return f"worse than the static estimate ({static.value})"
    return f"milder than the static estimate ({static.value})"


def static_said(static: Severity | None, measured: Severity, others: list[Finding] | None = None) -> str:
    """What the static check said of a finding measured at ``measured``, as
    the end of a sentence that begins "the static check ...". ``others``:
    where the rule's own static finding is missing, other rules' static
    findings that predicted the damage (``static_predictions``).

    >>> static_said(Severity.ERROR, Severity.ERROR)
    'the static check estimated it too (error)'
    >>> static_said(None, Severity.ERROR)
    'the static check did not predict it'
    >>> static_said(Severity.WARNING, Severity.ERROR)
    'the static check rated it a warning'
    """
    if static is None and others:
        named = ", ".join(f"{f.code} {f.severity.value}" for f in others[:3])
        return f"the static check predicted the damage under other rules ({named})"
    if static is None:
        return "the static check did not predict it"
    if static == measured:
        return f"the static check estimated it too ({static.value})"
    article = "an" if static.value[0] in "aeiou" else "a"
    return f"the static check rated it {article} {static.value}"


def data_note(result: Any) -> str:
    """Where the measured data loss came from, and at which weights."""
    where = "at the saved weights"
    if getattr(result, "synthetic", False):
        return f"on synthetic data {where} (scale at initialisation only)"
    return f"on {result.data.get('path')} {where}"
