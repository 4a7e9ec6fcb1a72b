"""What ``reglint profile`` adds under ``analysis.profile``: the run summary,
the per-variable gradients, the short run's trajectory and, when present,
the comparison with an unregularized twin (``twin_chart``). Keys it does not
know are shown as generic tables, so a newer profile is never hidden."""

from __future__ import annotations

import json
import math
from typing import Any

from reglint.reporters.html import charts as c
from reglint.reporters.html.markup import esc, gx, num_attr, num_text, number, pctx, sev_label
from reglint.reporters.html.twin_chart import twin_section
from reglint.reporters.text import activity_share_text

PROFILE_KEYS = ("device", "device_kind", "backend", "seconds", "weights", "data", "loss", "optimizer", "initial",
                "variables", "layer_penalties", "steps", "outcome", "notes", "twin")
OUTCOME_SEVERITY = {"diverged": "error", "collapsing": "error", "stalled": "warning"}


def find_profile(file_dict: dict) -> Any:
    """The measurement, wherever a profile run put it: the file's entry or
    its ``model.analysis`` (where ``reglint profile`` writes it)."""
    analysis = (file_dict.get("model") or {}).get("analysis") or {}
    for candidate in (file_dict.get("profile"), analysis.get("profile")):
        if candidate is not None:
            return candidate
    return None


def profile_section(index: int, profile: Any, analysis: dict) -> str:
    title = f"<h3 id=\"file-{index}-profile\">Profile (measured)</h3>\n"
    if not isinstance(profile, dict):
        return title + f"<pre>{esc(json.dumps(profile, indent=1, default=repr))}</pre>\n"
    out = [title]
    rows = _summary_rows(profile, analysis)
    if rows:
        out.append("<dl class=\"summary\">" + "".join(f"<dt>{k}</dt><dd>{v}</dd>\n" for k, v in rows) + "</dl>\n")
    variables = profile.get("variables")
    if isinstance(variables, list) and variables and all(isinstance(v, dict) for v in variables):
        out.append(_variables(index, variables))
    steps, outcome = profile.get("steps"), profile.get("outcome")
    if isinstance(steps, dict) and isinstance(steps.get("trajectory"), list) and steps["trajectory"]:
        out.append(_figure_trajectory(index, steps["trajectory"], outcome if isinstance(outcome, dict) else {}))
    if isinstance(profile.get("twin"), dict):
        out.append(twin_section(index, profile["twin"]))
    for key, value in profile.items():
        if key in PROFILE_KEYS and key != "layer_penalties":
            continue
        if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            out.append(_dict_table(key, value))
        elif isinstance(value, dict):
            out.append(_dict_table(key, [value]))
        elif isinstance(value, list) and value:
            out.append(f"<p><b>{esc(key)}</b>: {esc(json.dumps(value, default=repr))}</p>\n")
    if len(out) == 1:
        out.append("<p class=\"muted\">Empty profile.</p>\n")
    return "".join(out)


def _summary_rows(profile: dict, analysis: dict) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if profile.get("device"):
        backend = f" (Keras on {profile['backend']})" if profile.get("backend") else ""
        rows.append(("device", esc(f"{profile['device']}{backend}")))
    if isinstance(profile.get("weights"), str):
        rows.append(("weights", esc(profile["weights"])))
    data = profile.get("data")
    if isinstance(data, dict):
        rows.append(("data", esc(f"{data.get('source', '?')}" + (f" {data['path']}" if data.get("path") else "")
                                 + (f", {gx(data['samples'])} samples" if data.get("samples") else "")
                                 + (f", batch {gx(data['batch_size'])}" if data.get("batch_size") else ""))))
    steps = profile.get("steps")
    if isinstance(steps, dict):
        rows.append(("steps", esc(f"{gx(steps.get('taken'))} of {gx(steps.get('requested'))} taken")))
    initial = profile.get("initial")
    if isinstance(initial, dict):
        static = analysis.get("penalty_ratio")
        static_text = f" (static estimate {gx(static)})" if static is not None else ""
        where = "at the fresh draw" if str(profile.get("weights", "")).startswith("fresh") else "at the loaded weights"
        rows.append((where, esc(
            f"data loss {gx(initial.get('data_loss'))}, penalty {gx(initial.get('penalty'))} "
            f"(weights {gx(initial.get('weight_penalty'))}); measured penalty / data loss "
            f"{gx(initial.get('penalty_ratio'))}{static_text}{_with_activity(initial, analysis)}")))
    outcome = profile.get("outcome")
    if isinstance(outcome, dict):
        label = str(outcome.get("label", "?"))
        rows.append(("outcome", f"{sev_label(OUTCOME_SEVERITY.get(label, 'info'), label)} "
                                f"{esc(outcome.get('reason') or '')}"))
    seconds = profile.get("seconds")
    if isinstance(seconds, dict):
        rows.append(("time", esc(", ".join(f"{k} {gx(v)} s" for k, v in seconds.items()))))
    for note in profile.get("notes") or []:
        rows.append(("note", esc(note)))
    scalars = {k: v for k, v in profile.items() if k not in PROFILE_KEYS and not isinstance(v, (list, dict))}
    rows += [(esc(k), num_text(v)) for k, v in scalars.items()]
    return rows


def _variables(index: int, variables: list[dict]) -> str:
    body = []
    for v in variables:
        reg = v.get("regularizer")
        reg_text = ", ".join(f"{k} {gx(x)}" if k != "class" else str(x) for k, x in reg.items()) \
            if isinstance(reg, dict) else "activity only"
        ratio = v.get("ratio")
        high = (number(ratio) or 0.0) >= 1
        flags = "".join(f" <span class=\"tag\">{t}</span>" for t, key in
                        (("scale-invariant", "scale_invariant"), ("absorbed", "absorbed")) if v.get(key))
        share = number(v.get("share"))
        body.append(
            f"<tr data-layer=\"{esc(v.get('layer', ''))}\" data-ratio=\"{num_attr(ratio)}\">"
            f"<th scope=\"row\">{esc(v.get('layer', ''))}</th><td>{esc(v.get('variable', ''))}{flags}</td>"
            f"<td class=\"num\">{esc(gx(v.get('params')))}</td><td class=\"regs\">{esc(reg_text)}</td>"
            f"<td class=\"num\">{esc(gx(v.get('penalty')))}</td>"
            f"<td class=\"num\">{esc(pctx(share)) if share is not None else ''}</td>"
            f"<td class=\"num\">{esc(gx(v.get('grad_data_norm')))}</td>"
            f"<td class=\"num\">{esc(gx(v.get('grad_penalty_norm')))}</td>"
            f"<td class=\"num\">{sev_label('warning', gx(ratio, 2)) if high else esc(gx(ratio, 2))}</td>"
            f"<td class=\"num\">{esc(gx(v.get('update_ratio'), 2))}</td></tr>")
    return (f"<h4 id=\"file-{index}-profile-vars\">Gradients per regularized variable (first step)</h4>\n"
            f"<div class=\"scroll\"><table class=\"profile-vars\" aria-labelledby=\"file-{index}-profile-vars\">"
            "<thead><tr><th scope=\"col\">layer</th><th scope=\"col\">variable</th>"
            "<th scope=\"col\" class=\"num\">params</th><th scope=\"col\">regularizer</th>"
            "<th scope=\"col\" class=\"num\">penalty</th><th scope=\"col\" class=\"num\">share</th>"
            "<th scope=\"col\" class=\"num\">|g_data|</th><th scope=\"col\" class=\"num\">|g_pen|</th>"
            "<th scope=\"col\" class=\"num\" title=\"|g_pen| / |g_data|\">ratio</th>"
            "<th scope=\"col\" class=\"num\" title=\"|dw| / |w| of the first step\">update</th></tr></thead>"
            "<tbody>" + "".join(body) + "</tbody></table></div>\n")


def _figure_trajectory(index: int, trajectory: list[dict], outcome: dict) -> str:
    """Data loss and penalty over the profile's short run (log y)."""
    read = [(number(s.get("step")), number(s.get("data_loss")), number(s.get("penalty")))
            for s in trajectory if isinstance(s, dict)]
    points = [(int(st), dl, pe) for st, dl, pe in read if st is not None and math.isfinite(st)]
    finite = [v for _, dl, pe in points for v in (dl, pe) if v is not None and math.isfinite(v) and v > 0]
    trivial = number(outcome.get("trivial_loss"))
    if trivial is not None and math.isfinite(trivial) and trivial > 0:
        finite.append(trivial)
    else:
        trivial = None
    if not points or not finite:
        return ""
    prefix = f"f{index}"
    width, height, x0, x1, top, bottom = 900, 260, 92, 660, 20, 210
    first, last = min(p[0] for p in points), max(p[0] for p in points)
    xs = c.LinearScale(first, last if last > first else first + 1, x0, x1)
    ys = c.LogScale(*c.decade_range(finite), bottom, top)

    def line(idx: int) -> str:
        series = ((p[0], p[idx]) for p in points)
        return c.path_of((xs(st), ys(v)) for st, v in series if v is not None and math.isfinite(v) and v > 0)

    out = [f"<svg class=\"chart trajectory\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" role=\"img\" "
           f"aria-labelledby=\"{prefix}-traj-title\" xmlns=\"http://www.w3.org/2000/svg\">",
           f"<title id=\"{prefix}-traj-title\">Data loss and penalty over {len(points)} profiled steps: data loss "
           f"{esc(gx(points[0][1]))} to {esc(gx(points[-1][1]))}, penalty {esc(gx(points[0][2]))} to "
           f"{esc(gx(points[-1][2]))}</title>",
           c.log_y_axis(ys, x0, x1, "loss (log)", top, bottom - top)]
    for st in sorted({first, last, *range(first, last + 1, max(1, (last - first) // 5 or 1))}):
        out.append(c.text(xs(st), bottom + 16, str(st), size=11, anchor="middle", fill=c.GREY))
    out.append(c.text((x0 + x1) / 2, bottom + 36, "optimizer step", anchor="middle"))
    if trivial is not None:
        y = ys(trivial)
        out.append(f"<line x1=\"{x0}\" y1=\"{y:.1f}\" x2=\"{x1}\" y2=\"{y:.1f}\" stroke=\"{c.GREY}\" "
                   "stroke-width=\"1.4\" stroke-dasharray=\"2 3\"/>")
    out.append(f"<path class=\"curve curve-data-loss\" d=\"{line(1)}\" fill=\"none\" stroke=\"{c.BLUE}\" "
               "stroke-width=\"2.4\"/>")
    out.append(f"<path class=\"curve curve-penalty\" d=\"{line(2)}\" fill=\"none\" stroke=\"{c.VERMILLION}\" "
               "stroke-width=\"2.4\" stroke-dasharray=\"7 3\"/>")
    legend = c.Legend(x1 + 14, top + 10)
    legend.line(c.BLUE, "", ["data loss (solid)"], width=2.4)
    legend.line(c.VERMILLION, "7 3", ["penalty (dashed)"], width=2.4)
    if trivial is not None:
        legend.line(c.GREY, "2 3", [f"constant prediction {gx(trivial)}"], width=1.4)
    out.append(legend.svg())
    out.append("</svg>")
    return ("<h4>Short training run</h4>\n<figure class=\"chart-wrap\">" + "".join(out) +
            "<figcaption>Batch data loss and total penalty at each profiled step (before the update), on a "
            "log scale; the dotted line is the loss of the best constant prediction on the probe batch.</figcaption>"
            "</figure>\n")


def _cell(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"<td class=\"num\">{num_text(value)}</td>"
    if isinstance(value, (list, dict)):
        return f"<td>{esc(json.dumps(value, default=repr))}</td>"
    return f"<td>{'' if value is None else esc(value)}</td>"


def _dict_table(caption: str, rows: list[dict]) -> str:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(col)) for col in columns) + "</tr>" for row in rows)
    return ("<div class=\"scroll\"><table class=\"profile\"><caption>" + esc(caption) + "</caption><thead><tr>"
            + "".join(f"<th scope=\"col\">{esc(col)}</th>" for col in columns) + "</tr></thead><tbody>"
            + body + "</tbody></table></div>\n")


def _with_activity(initial: dict, analysis: dict) -> str:
    """The first batch's whole penalty/data where an activity penalty is
    part of it, in the terminal's words (``reporters.text.
    activity_share_text``; review 71, 2: "0" for an activity L2 at 1.57),
    beside the static estimate of the same whole (review 73, 4)."""
    estimated = [number(e.get("ratio")) for e in analysis.get("penalty_estimates") or [] if isinstance(e, dict)]
    static = (number(analysis.get("penalty_ratio")) or 0.0) + sum(r for r in estimated if r is not None) \
        if estimated else None
    return activity_share_text(initial, gx, static)  # the terminal's words
