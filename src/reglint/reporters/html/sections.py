"""The text sections of one file: the model summary, the cards of headline
numbers and the findings table (with each finding's ``fix``), all read from
the file's entry in the JSON report."""

from __future__ import annotations

import math

from reglint.engine.fmt import g, steps_taken
from reglint.reporters.html.layers import LayerRow, left_out_text
from reglint.reporters.html.markup import (
    change_text,
    esc,
    gx,
    num_attr,
    num_text,
    number,
    pctx,
    sev_label,
    zone,
)
from reglint.reporters.html.sweep_chart import groups_of, safe_value

MAX_CHANGES = 8  # a fix's changes shown before the rest fold into "N more"
FRAMEWORK = {"onnx": "ONNX", "tflite": "TFLite", "tf.keras": "tf.keras", "pytorch": "PyTorch"}


# ---------------------------------------------------------------------------
# model summary


def model_summary(model: dict, rows: list[LayerRow]) -> str:
    analysis = model.get("analysis") or {}
    out: list[tuple[str, str]] = []
    framework = FRAMEWORK.get(model.get("framework") or "", "Keras")
    version = model.get("framework_version")
    out.append(("format", f"{esc(model.get('format'))} ({esc(framework)}" +
                (f" {esc(version)})" if version else ")")))
    params = model.get("params") or {}
    out.append(("parameters", f"{esc(gx(params.get('total')))} total: {esc(gx(params.get('trainable')))} trainable, "
                              f"{esc(gx(params.get('non_trainable')))} non-trainable"))
    out.append(("optimizer", _optimizer(model.get("optimizer"), analysis.get("optimizer_family"))))
    losses = model.get("loss") or []
    if losses:
        out.append(("loss", ", ".join(
            esc(x.get("name") or "custom") + (f" &times; {esc(gx(x.get('weight')))}" if x.get("weight") != 1.0 else "")
            + (f" on {esc(x.get('output'))}" if x.get("output") else "") for x in losses)))
    if analysis:
        scale = analysis.get("loss_scale") or {}
        out.append(("data-loss scale", f"{esc(gx(scale.get('value')))} <span class=\"muted\">"
                                       f"({esc(scale.get('explanation'))}; from {esc(scale.get('source'))})</span>"))
        penalty = penalty_totals(analysis, rows)
        if penalty:
            out.append(("penalty at init", penalty))
        if analysis.get("total_steps"):
            out.append(("training length", f"{esc(gx(analysis['total_steps']))} steps"))
    for note in (model.get("notes") or [])[:8]:
        out.append(("note", esc(note)))
    return ("<h3>Model</h3>\n<dl class=\"summary\">\n" +
            "".join(f"<dt>{k}</dt><dd>{v}</dd>\n" for k, v in out) + "</dl>\n")


def _optimizer(opt: dict | None, family: str | None) -> str:
    if not opt:
        return "none saved (not compiled; set --optimizer and --learning-rate)"
    lr = opt.get("learning_rate") or {}
    text = esc(opt.get("class")) + " "
    text += ("lr ? (not saved: give --lr)" if not lr.get("schedule") else
             f"lr ? ({esc(lr['schedule'])}: not computed, give --lr)") if lr.get("initial") is None else (
        f"lr {esc(gx(lr['initial']))}" + (f" ({esc(lr['schedule'])}, peak {esc(gx(lr.get('peak')))})"
                                          if lr.get("schedule") else ""))
    extras = []
    if number(opt.get("momentum")):
        extras.append(f"momentum {esc(gx(opt['momentum']))}" + (" nesterov" if opt.get("nesterov") else ""))
    if number(opt.get("weight_decay")):
        extras.append(f"weight_decay {esc(gx(opt['weight_decay']))}")
    if number(opt.get("coupled_l2")):
        extras.append(f"coupled L2 {esc(gx(opt['coupled_l2']))}")
    iterations, given = number(opt.get("iterations")), number(opt.get("gradient_accumulation_steps"))
    if iterations and math.isfinite(iterations):
        k = int(given) if given is not None and math.isfinite(given) else None
        extras.append(esc(steps_taken(int(iterations), k)))
    if extras:
        text += ", " + ", ".join(extras)
    return text + (f" <span class=\"muted\">(from {esc(opt.get('source'))}"
                   + (f"; family {esc(family)}" if family else "") + ")</span>")


def penalty_totals(analysis: dict, rows: list[LayerRow]) -> str:
    """The whole penalty and the part the ratio (and RL001) counts; when
    they differ, what the difference is made of."""
    total, counted = number(analysis.get("penalty_init_all")), number(analysis.get("penalty_init"))
    scale = number((analysis.get("loss_scale") or {}).get("value"))
    if total is None or not rows or not any(r.penalty_init is not None or r.penalty_saved is not None for r in rows):
        return ""
    text = f"{esc(g(total))}" + (f" = {esc(pctx(total / scale))} of the data-loss scale" if scale else "")
    left_out: dict[str, float] = {}
    for r in rows:
        for k, v in r.left_out.items():
            left_out[k] = left_out.get(k, 0.0) + v
    if counted is not None and (left_out or counted != total):
        # the rule that judges the ratio, as its curve names it
        judge = next((x.code for gr in groups_of(analysis) for x in gr.curves if x.feature == "penalty_ratio"), None)
        who = f"{esc(judge)} (\u03c1)" if judge else "\u03c1"
        text += (f"; {who} counts {esc(g(counted))}" + (f" ({esc(pctx(counted / scale))})" if scale else "")
                 + (f", leaving out {esc(left_out_text(left_out))}" if left_out else ""))
    return text


# ---------------------------------------------------------------------------
# cards


def cards(analysis: dict, findings: list[dict]) -> str:
    """Headline numbers: the penalty ratio, the totals, and each rule's
    quantity today with the band it falls in."""
    if not analysis:
        return ""
    groups = groups_of(analysis)
    curves = [x for gr in groups for x in gr.curves]
    rho = analysis.get("penalty_ratio")
    rho_curve = next((x for x in curves if x.feature == "penalty_ratio"), None)
    level = zone(rho, rho_curve.warning, rho_curve.error) if rho_curve else None
    if rho_curve is None:
        note = "no counted penalty" if number(rho) == 0 else "no rule's curve for it in this run"
    elif level:
        note = sev_label(level, f"{rho_curve.code} {level}")
    else:
        note = f"below {esc(rho_curve.code)}'s warning level {esc(g(rho_curve.warning))}" \
            if rho_curve.warning is not None else ""
    rho_text = num_text(rho, lambda v: f"{gx(v, 3)} ({pctx(v)})" if number(v) else "0")
    items = [("penalty / data loss (\u03c1)", rho_text, note, bool(level))]
    counted, total = analysis.get("penalty_init"), analysis.get("penalty_init_all")
    items.append(("penalty at init", num_text(counted),
                  "counted in \u03c1" + (f" (of {esc(gx(total))} in total)" if number(total) != number(counted)
                                         else ""), False))
    scale = analysis.get("loss_scale") or {}
    items.append(("data-loss scale", num_text(scale.get("value")), esc(scale.get("source") or ""), False))
    if analysis.get("lambda_ref") is not None:  # none without a regularized kernel (a checkpoint's decay alone)
        items.append(("lambda_ref", num_text(analysis.get("lambda_ref")), "L2 factor with penalty = data loss",
                      False))
    for curve in curves:
        if curve is rho_curve:
            continue
        lvl = zone(curve.today, curve.warning, curve.error)
        note = sev_label(lvl, f"{curve.code} {lvl}") if lvl else \
            f"{esc(curve.code)} warns at {esc(g(curve.warning))}" if curve.warning is not None else esc(curve.code)
        items.append((esc(curve.feature.replace("_", " ")), esc(g(curve.today, 3)), note, bool(lvl)))
    for group in groups:
        if group.safe is None:
            continue
        label = f"largest safe {group.symbol}" if group.absolute else f"safe {group.knob} multiplier"
        state = "today inside" if group.safe >= 1 else "today outside"
        why = f"under {', '.join(group.bound_by)}'s warning; {state}" if group.bound_by else state
        items.append((esc(label), esc(safe_value(group)), esc(why), False))
    return ("<div class=\"cards\">" + "".join(
        f"<div class=\"card{' alert' if alert else ''}\"><div class=\"label\">{label}</div>"
        f"<div class=\"value\">{value}</div><div class=\"note\">{note}</div></div>"
        for label, value, note, alert in items) + "</div>\n")


# ---------------------------------------------------------------------------
# findings


def findings_table(index: int, findings: list[dict]) -> str:
    title = f"<h3 id=\"file-{index}-findings\">Findings ({len(findings)})</h3>\n"
    if not findings:
        return title + "<p class=\"ok\">No findings.</p>\n"
    rows = []
    for f in findings:
        sev = str(f.get("severity"))
        measured = " <span class=\"tag\">measured</span>" if f.get("measured") else ""
        layer, target = f.get("layer"), f.get("target")
        rows.append(
            f"<tr class=\"finding sev-row-{esc(sev)}\" data-code=\"{esc(f.get('code'))}\" data-severity=\"{esc(sev)}\" "
            f"data-layer=\"{esc(layer or '')}\">"
            f"<td>{sev_label(sev)}</td><td><code>{esc(f.get('code'))}</code></td>"
            f"<td>{esc(f.get('name'))}{measured}</td>"
            f"<td>{esc(layer) if layer else '<span class=muted>model</span>'}"
            f"{('<br><span class=muted>' + esc(target) + '</span>') if target else ''}</td>"
            f"<td class=\"msg\">{esc(f.get('message'))}</td>"
            f"<td class=\"fix\">{esc(f.get('remedy') or '')}{fix_block(f.get('fix'))}</td></tr>")
    return (title + f"<div class=\"scroll\"><table class=\"findings\" aria-labelledby=\"file-{index}-findings\">\n"
            "<thead><tr><th scope=\"col\">severity</th><th scope=\"col\">code</th><th scope=\"col\">rule</th>"
            "<th scope=\"col\">layer</th><th scope=\"col\">message</th><th scope=\"col\">fix</th></tr></thead>\n"
            "<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>\n")


def fix_block(fix: object) -> str:
    """A finding's ``fix`` object: its aim and one line per change, each
    carrying the JSON's numbers in ``data-*`` attributes."""
    if not isinstance(fix, dict):
        return ""
    changes = [ch for ch in fix.get("changes") or [] if isinstance(ch, dict)]
    items = [_change(ch) for ch in changes]
    shown = "".join(items[:MAX_CHANGES])
    rest = items[MAX_CHANGES:]
    more = (f"<details class=\"more\"><summary>{len(rest)} more</summary><ul class=\"changes\">{''.join(rest)}"
            "</ul></details>") if rest else ""
    return (f"<div class=\"fixdata\" data-changes=\"{len(changes)}\"><div class=\"aim\">aim: {esc(fix.get('aim'))}"
            f"</div>" + (f"<ul class=\"changes\">{shown}</ul>" if shown else "") + more + "</div>")


def _change(ch: dict) -> str:
    text = change_text(ch)
    head, sep, new = text.rpartition(" -> ")
    body = f"{esc(head)} -&gt; <span class=\"new\">{esc(new)}</span>" if sep else esc(text)
    return (f"<li class=\"change\" data-layer=\"{esc(ch.get('layer') or '')}\" "
            f"data-target=\"{esc(ch.get('target') or '')}\" "
            f"data-parameter=\"{esc(ch.get('parameter') or '')}\" data-current=\"{num_attr(ch.get('current'))}\" "
            f"data-suggested=\"{num_attr(ch.get('suggested'))}\">{body}</li>")
