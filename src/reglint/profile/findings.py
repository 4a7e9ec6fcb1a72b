"""Measured findings: the static rules' codes, with ``measured=True``,
the measured numbers in ``values`` and a message saying whether the static
estimate was confirmed or overturned.

Each check uses the static rule's own thresholds (the rule's defaults,
overridden by ``[tool.reglint.lint.thresholds]``) on the measured quantity:

- RL001: ``rho_m = sum_w R(w) / L`` with R the weight penalties and L the
  measured data loss on the probe batch (scale-invariant kernels left out,
  as in the static rule, whose ``rho`` divides by ``L_chance``);
- RL010: each layer's activity penalty (per sample, as Keras >= 3.14
  divides by the batch) over L;
- RL002: the run diverged under SGD and ``f = 2*eta*l2 / S >= warning`` for
  some coupled L2 (``S = 2(1+b)``, Nesterov ``2(1+b)/(1+2b)``, eta the
  peak learning rate of the run): the penalty's curvature is the cause;
- RL003: the run diverged or collapsed with ``eta*wd >= warning``;
- RL017: the run collapsed (regularized kernel norms fell while the data
  loss did not), the live version of the saved-weights check;
- RL007: under an Adam-family optimizer, the measured data-gradient RMS
  ``s = |g_data| / sqrt(n)`` gives the decoupled weight decay of equal
  strength, ``wd ~ 2*l2/s`` (theory section 4.4).

A static finding the measurement does not reproduce gets an ``info``
finding saying it was overturned; the static finding itself stays in the
report.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from reglint.engine.finding import Finding, Severity
from reglint.engine.fmt import g, pct
from reglint.engine.report import FileReport
from reglint.engine.rule import all_rules, get_rule
from reglint.profile.measure import ProfileResult


def measured_findings(result: ProfileResult, report: FileReport, thresholds: dict[str, float],
                      selected: set[str]) -> list[Finding]:
    checks = {"RL001": _rl001, "RL002": _rl002, "RL003": _rl003, "RL007": _rl007, "RL010": _rl010,
              "RL017": _rl017}
    # Option names are unique across rules (one [thresholds] table), so
    # every check sees every rule's configured thresholds.
    limits: dict[str, float] = {}
    for cls in all_rules().values():
        limits.update(cls(thresholds).thresholds)
    out: list[Finding] = []
    for code, check in checks.items():
        rule = get_rule(code)
        if code not in selected or rule is None:
            continue
        for finding in check(result, report, limits):
            finding.code, finding.name, finding.measured = code, rule.name, True
            out.append(finding)
    return out


# ---------------------------------------------------------------------------
# helpers


def level(value: float | None, warn: float, error: float) -> Severity | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if value >= error:
        return Severity.ERROR
    if value >= warn:
        return Severity.WARNING
    return None


def verdict(static: Severity | None, measured: Severity | None) -> str:
    """How the measurement relates to the static estimate."""
    if static == measured:
        return "confirmed"
    if static is None:
        return "not predicted by the static estimate"
    if measured is None:
        return f"overturned (static {static.value})"
    if measured.rank > static.rank:
        return f"worse than the static estimate ({static.value})"
    return f"milder than the static estimate ({static.value})"


def static_finding(report: FileReport, code: str, layer: str | None = None,
                   target: str | None = None) -> Finding | None:
    for finding in list(report.findings) + list(report.suppressed):
        if finding.code != code or finding.measured:
            continue
        if layer is not None and finding.layer != layer:
            continue
        if target is not None and finding.target != target:
            continue
        return finding
    return None


def _finding(message: str, severity: Severity, *, layer: str | None = None, target: str | None = None,
             remedy: str | None = None, values: dict[str, Any] | None = None) -> Finding:
    return Finding(code="", name="", severity=severity, message=message, layer=layer, target=target,
                   remedy=remedy, values=values or {}, measured=True)


def _data_note(result: ProfileResult) -> str:
    if result.synthetic:
        return "on synthetic data (scale at initialisation only)"
    return f"on {result.data.get('path')}"


def _limit(momentum: float, nesterov: bool) -> float:
    return 2.0 * (1.0 + momentum) / (1.0 + 2.0 * momentum) if nesterov else 2.0 * (1.0 + momentum)


# ---------------------------------------------------------------------------
# RL001 penalty-dominates-loss


def static_rl001_ratio(report: FileReport) -> float | None:
    """The static rule's rho, recomputed so it exists below the warning level too."""
    analysis = report.analysis
    if analysis is None:
        return None
    penalties = [p for p in analysis.active_penalties() if p.penalty is not None]
    if not penalties:
        return None
    return sum(p.penalty for p in penalties) / analysis.loss_scale.value


def _rl001(result: ProfileResult, report: FileReport, t: dict[str, float]) -> Iterable[Finding]:
    rows = [r for r in result.variables if r.regularizer is not None and r.counted]
    if not rows:
        return
    warn, error = t["penalty-ratio-warning"], t["penalty-ratio-error"]
    rho = result.weight_penalty_ratio()
    srho = static_rl001_ratio(report)
    measured, static = level(rho, warn, error), level(srho, warn, error)
    if measured is None and static is None:
        return
    total = sum(r.penalty for r in rows)
    by_layer: dict[str, float] = {}
    for r in rows:
        by_layer[r.layer] = by_layer.get(r.layer, 0.0) + r.penalty
    top = sorted(by_layer.items(), key=lambda kv: -kv[1])[:3]
    parts = ", ".join(f"{layer} {pct(v / total)}" for layer, v in top) if total else "-"
    static_text = f"static estimate {g(srho, 2)}" if srho is not None else "no static estimate"
    collapse = "; the short run collapsed" if result.outcome.label == "collapsing" else ""
    message = (f"measured penalty/data ratio {g(rho, 2)} ({static_text}): {verdict(static, measured)}; "
               f"weight penalty {g(total)} against a data loss of {g(result.data_loss)} {_data_note(result)}; "
               f"largest parts of the penalty: {parts}{collapse}")
    from reglint.rules.rl001_penalty_dominates_loss import remedy_ratio

    target = remedy_ratio(warn)
    scale = min(1.0, target / rho) if rho and math.isfinite(rho) else None
    remedy = None
    if measured is not None and scale is not None:
        remedy = (f"scale every lambda by {g(scale, 2)} to bring the measured penalty under "
                  f"{pct(target)} of the data loss, or use decoupled weight_decay")
    yield _finding(message, measured or Severity.INFO, target="penalty", remedy=remedy, values={
        "penalty_ratio": rho, "static_penalty_ratio": srho, "penalty": total, "data_loss": result.data_loss,
        "penalty_ratio_all": result.weight_penalty_ratio(include_invariant=True),
        "layer_shares": {layer: v / total for layer, v in by_layer.items()} if total else {},
        "lambda_scale_factor": scale, "synthetic_data": result.synthetic, "outcome": result.outcome.label})


# ---------------------------------------------------------------------------
# RL010 activity-regularizer-scale


def _rl010(result: ProfileResult, report: FileReport, t: dict[str, float]) -> Iterable[Finding]:
    warn, error = t["activity-ratio-warning"], t["activity-ratio-error"]
    for lp in result.layer_penalties:
        if lp.kind != "activity":
            continue
        ratio = _ratio(lp.penalty, result.data_loss)
        found = static_finding(report, "RL010", layer=lp.layer)
        sratio = found.values.get("activity_ratio") if found else None
        static = found.severity if found else None
        measured = level(ratio, warn, error)
        if measured is None and static is None:
            continue
        static_text = f"static estimate {g(sratio, 2)}" if sratio is not None else "no static finding"
        yield _finding(
            f"measured activity penalty {g(lp.penalty)} per sample, {g(ratio, 2)}x the data loss "
            f"{g(result.data_loss)} ({static_text}): {verdict(static, measured)}",
            measured or Severity.INFO, layer=lp.layer, target="activity",
            remedy="scale the activity lambda down or penalise a mean instead of a sum" if measured else None,
            values={"activity_ratio": ratio, "static_activity_ratio": sratio, "penalty_per_sample": lp.penalty,
                    "data_loss": result.data_loss, "synthetic_data": result.synthetic})


def _ratio(a: float, b: float) -> float:
    if b == 0 or not math.isfinite(b):
        return math.inf if a else 0.0
    return a / b


# ---------------------------------------------------------------------------
# RL002 sgd-l2-unstable


def _rl002(result: ProfileResult, report: FileReport, t: dict[str, float]) -> Iterable[Finding]:
    opt = result.optimizer
    if not opt or opt.get("family") != "sgd" or not opt.get("stepped"):
        return
    lr = opt.get("learning_rate_peak") or opt.get("learning_rate")
    if not lr:
        return
    momentum, nesterov = float(opt.get("momentum") or 0.0), bool(opt.get("nesterov"))
    limit = _limit(momentum, nesterov)
    outcome = result.outcome
    diverged = outcome.label == "diverged"
    for row in result.variables:
        l2 = (row.regularizer or {}).get("l2") or 0.0
        if not l2:
            continue
        f = 2.0 * lr * l2 / limit
        found = static_finding(report, "RL002", layer=row.layer, target=row.variable)
        static = found.severity if found else None
        values = {"stability_fraction": f, "lambda": l2, "learning_rate": lr, "momentum": momentum,
                  "stability_limit": limit, "outcome": outcome.label, "diverged_at": outcome.diverged_at,
                  "data_loss_initial": outcome.data_loss_initial, "data_loss_final": outcome.data_loss_final,
                  "steps": len(result.trajectory)}
        product = (f"2 x lr {g(lr)} x L2 {g(l2)} = {g(2 * lr * l2)} against the stability limit {g(limit)} "
                   f"(f = {g(f, 2)})")
        if diverged and f >= t["sgd-stability-warning"]:
            safe = 0.5 * t["sgd-stability-warning"] * limit / (2 * lr)
            yield _finding(
                f"measured: the run diverged ({outcome.reason}); {product}: the penalty's curvature is the cause; "
                f"static estimate {verdict(static, Severity.ERROR)}",
                Severity.ERROR, layer=row.layer, target=row.variable,
                remedy=f"use L2 <= {g(safe)} at this learning rate, or a smaller learning rate",
                values={**values, "safe_lambda": safe})
        elif not diverged and static is Severity.ERROR:
            yield _finding(
                f"measured: no divergence in {len(result.trajectory)} steps ({outcome.label}: {outcome.reason}) "
                f"although {product}: static estimate overturned for this run length",
                Severity.INFO, layer=row.layer, target=row.variable, values=values)


# ---------------------------------------------------------------------------
# RL003 weight-decay-too-strong


def _rl003(result: ProfileResult, report: FileReport, t: dict[str, float]) -> Iterable[Finding]:
    opt = result.optimizer
    if not opt or not opt.get("weight_decay") or not opt.get("stepped"):
        return
    lr = opt.get("learning_rate_peak") or opt.get("learning_rate")
    if not lr:
        return
    wd = opt["weight_decay"]
    r = lr * wd
    outcome = result.outcome
    found = static_finding(report, "RL003")
    static = found.severity if found else None
    steps = len(result.trajectory)
    values = {"shrink_per_step": r, "weight_decay": wd, "learning_rate": lr, "outcome": outcome.label,
              "decay_integral": r * steps, "steps": steps, "kernel_norm_change": outcome.kernel_norm_change}
    harmed = outcome.label in ("diverged", "collapsing")
    if harmed and r >= t["decay-step-warning"]:
        yield _finding(
            f"measured: the run {outcome.label} ({outcome.reason}) with weight_decay {g(wd)} at lr {g(lr)}, "
            f"a shrink of {g(r)} per step (D = {g(r * steps, 2)} over {steps} steps); static estimate "
            f"{verdict(static, Severity.ERROR)}",
            Severity.ERROR, target="optimizer.weight_decay",
            remedy=f"use weight_decay <= {g(t['decay-step-warning'] / 2 / lr)} at this learning rate", values=values)
    elif static is Severity.ERROR and outcome.label == "learning":
        yield _finding(
            f"measured: the run still learned in {steps} steps ({outcome.reason}) with weight_decay {g(wd)} "
            f"(shrink {g(r)} per step): static estimate overturned for this run length",
            Severity.INFO, target="optimizer.weight_decay", values=values)


# ---------------------------------------------------------------------------
# RL017 weights-collapsed


def _rl017(result: ProfileResult, report: FileReport, t: dict[str, float]) -> Iterable[Finding]:
    outcome = result.outcome
    if outcome.label != "collapsing":
        return
    found = static_finding(report, "RL017")
    static = found.severity if found else None
    steps = len(result.trajectory)
    yield _finding(
        f"measured: in {steps} steps the kernels' norm fell {pct(-(outcome.kernel_norm_change or 0))} "
        f"({g(outcome.kernel_norm_initial)} -> {g(outcome.kernel_norm_final)}) while the data loss went "
        f"{g(outcome.data_loss_initial)} -> {g(outcome.data_loss_final)}: the penalty is driving the network "
        f"to its trivial solution; {_cause(result)}; static check {verdict(static, Severity.ERROR)}",
        Severity.ERROR, target="kernel", remedy="use a smaller lambda (see RL001) or decoupled weight_decay",
        values={"kernel_norm_initial": outcome.kernel_norm_initial, "kernel_norm_final": outcome.kernel_norm_final,
                "kernel_norm_change": outcome.kernel_norm_change, "data_loss_initial": outcome.data_loss_initial,
                "data_loss_final": outcome.data_loss_final, "steps": steps,
                "penalty_ratio": result.weight_penalty_ratio(), "synthetic_data": result.synthetic})


def _cause(result: ProfileResult) -> str:
    """The shrink mechanism in words (theory section 4.2)."""
    opt = result.optimizer or {}
    lr = opt.get("learning_rate_peak") or opt.get("learning_rate") or 0.0
    l2s = [(r.regularizer or {}).get("l2") or 0.0 for r in result.variables]
    l2 = max(l2s) if l2s else 0.0
    if opt.get("family") == "sgd" and l2:
        b = float(opt.get("momentum") or 0.0)
        shrink = 2 * lr * l2 / (1 - b)
        return f"coupled L2 under SGD shrinks an unsupported weight by 2*lr*l2/(1-b) = {g(shrink)} per step"
    if opt.get("weight_decay"):
        return f"decoupled weight_decay shrinks every weight by lr*wd = {g(lr * opt['weight_decay'])} per step"
    if opt.get("family") == "adaptive":
        return (f"under {opt.get('class')} the penalty gradient is normalised, moving weights the data does "
                f"not hold up by about lr = {g(lr)} per step")
    return "the penalty gradient outweighs the data gradient"


# ---------------------------------------------------------------------------
# RL007 coupled-penalty-adaptive-optimizer


def _rl007(result: ProfileResult, report: FileReport, t: dict[str, float]) -> Iterable[Finding]:
    found = static_finding(report, "RL007")
    opt = result.optimizer
    if found is None or not opt or opt.get("family") != "adaptive":
        return
    rms, equivalent = {}, {}
    for row in result.variables:
        l2 = (row.regularizer or {}).get("l2") or 0.0
        if not l2 or not row.params:
            continue
        s = row.grad_data_norm / math.sqrt(row.params)
        rms[row.path] = s
        if s > 0:
            equivalent[row.path] = 2.0 * l2 / s
    if not rms:
        return
    typical = sorted(equivalent.values())[len(equivalent) // 2] if equivalent else None
    lr = opt.get("learning_rate") or 0.0
    shrink = lr * typical if typical else None
    remedy = None
    if typical and shrink is not None and shrink < t["decay-step-warning"]:
        remedy = f"use weight_decay ~ {g(typical)} in the optimizer and no kernel regularizer"
    elif typical:
        remedy = (f"that decay would shrink weights by lr*wd = {g(shrink)} per step, itself too strong (RL003): "
                  f"lower the lambda first (RL001)")
    yield _finding(
        f"measured data-gradient RMS per weight {g(min(rms.values()))} to {g(max(rms.values()))} under "
        f"{opt.get('class')}: the coupled L2 acts like a decoupled weight_decay of about 2*l2/s = {g(typical)} "
        f"where the data holds the weights up, and moves the others by about lr per step: confirmed",
        found.severity, target="kernel", remedy=remedy,
        values={"grad_rms": rms, "equivalent_weight_decay": equivalent, "typical_weight_decay": typical,
                "typical_shrink_per_step": shrink})

