"""The unregularized twin (``analysis.profile.twin``): the same model trained
for the same budget with and without its regularizers, so a reader sees what
the penalty costs or buys. Drawn from the JSON::

    {"steps": int, "budget": {"steps": int, "reason": str},
     "runs": {"penalized": {"step": [...], "data_loss": [...], "val_loss": [...],
                            "val_accuracy": [...] or null, "kernel_norm": [...]},
              "unregularized": {same keys}},
     "verdict": {"label": str, "message": str},
     "fix_trials": [{"changes": [...], "run": {same keys}}, ...]}

One chart, two panels on a shared step axis: the data loss (log) and the
validation accuracy (or, where a run has none, the validation loss); each
run one colour and one dash pattern in both panels. The fixes RL023
measured (``fix_trials``) are drawn beside the pair, dotted.
"""

from __future__ import annotations

import math
from typing import Any

from reglint.reporters.html import charts as c
from reglint.reporters.html.markup import as_object, esc, gx, number, pctx

RUNS = (("penalized", "penalized (as saved)", c.VERMILLION, ""),
        ("unregularized", "unregularized twin", c.BLUE, "8 4"))
TRIAL_COLOURS = (c.GREEN, c.PURPLE, c.ORANGE)
WIDTH, X0, X1 = 900, 92, 660
PANEL_H = 170


def series(run: Any, key: str) -> list[tuple[float, float]]:
    """(step, value) pairs of ``run[key]`` where both are finite numbers."""
    if not isinstance(run, dict) or not isinstance(run.get(key), list) or not isinstance(run.get("step"), list):
        return []
    out = []
    for step, value in zip(run["step"], run[key], strict=False):  # a ragged run draws its common prefix
        s, v = number(step), number(value)
        if s is not None and v is not None and math.isfinite(s) and math.isfinite(v):
            out.append((s, v))
    return out


def twin_section(index: int, twin: dict) -> str:
    runs, specs = _with_trials(as_object(twin.get("runs")), twin.get("fix_trials"))
    out = [f"<h4 id=\"file-{index}-twin\">Unregularized twin</h4>\n"]
    verdict = as_object(twin.get("verdict"))
    if verdict:
        out.append(f"<p class=\"verdict\" data-label=\"{esc(verdict.get('label') or '')}\"><strong>"
                   f"{esc(verdict.get('label') or '?')}</strong>: {esc(verdict.get('message') or '')}</p>\n")
    budget = as_object(twin.get("budget"))
    steps = budget.get("steps", twin.get("steps"))
    out.append(f"<p class=\"muted\">Both runs start from the same weights and take {esc(gx(steps))} steps each"
               + (f" ({esc(budget['reason'])})" if budget.get("reason") else "") + ".</p>\n")
    out.append(_figure(index, runs, specs))
    out.append(_table(runs, specs))
    return "".join(out)


def _with_trials(runs: dict, trials: Any) -> tuple[dict, tuple]:
    """The pair's runs and the measured fixes' (``fix_1``...), with a
    (name, label, colour, dash) for each."""
    runs, specs = dict(runs), list(RUNS)
    for i, item in enumerate(trials if isinstance(trials, list) else []):
        trial = as_object(item)
        if not isinstance(trial.get("run"), dict):
            continue
        name = f"fix_{i + 1}"
        runs[name] = trial["run"]
        specs.append((name, f"fix {i + 1}: {_changes_label(trial.get('changes'))}",
                      TRIAL_COLOURS[i % len(TRIAL_COLOURS)], "2 4"))
    return runs, tuple(specs)


def _changes_label(changes: Any) -> str:
    """``kernel lambda 0.3 -> 0.00833`` for the first change (and ``...``)."""
    shown = []
    for item in changes if isinstance(changes, list) else []:
        change = as_object(item)
        what = ("weight_decay" if change.get("parameter") == "weight_decay"
                else f"{change.get('target') or ''} {change.get('parameter') or ''}".strip())
        text = f"{what} {gx(change.get('current'))} \u2192 {gx(change.get('suggested'))}"
        if text not in shown:
            shown.append(text)
    return (shown[0] + (" \u2026" if len(shown) > 1 else "")) if shown else "changed penalties"


def _second_metric(runs: dict) -> tuple[str, str]:
    """Validation accuracy when every run has it, else validation loss."""
    present = [r for r in runs.values() if isinstance(r, dict)]
    if present and all(series(r, "val_accuracy") for r in present):
        return "val_accuracy", "validation accuracy"
    return "val_loss", "validation loss (log)"


def _figure(index: int, runs: dict, specs: tuple = RUNS) -> str:
    metric, metric_label = _second_metric(runs)
    panels = (("data_loss", "data loss (log)", True), (metric, metric_label, metric != "val_accuracy"))
    points = [p for key, _, _ in panels for name, *_ in specs for p in series(runs.get(name), key)]
    if not points:
        return "<p class=\"muted\">No finite values to draw.</p>\n"
    prefix = f"f{index}-twin"
    steps = [s for s, _ in points]
    xs = c.LinearScale(min(steps), max(steps), X0, X1)
    out, top = [], 34.0
    for key, label, log in panels:
        out.append(_panel(runs, key, label, log, xs, top, specs))
        top += PANEL_H + 62
    height = top - 10
    legend = c.Legend(X1 + 14, 44)
    for _name, text, colour, dash in specs:
        legend.line(colour, dash, [text])
    title = esc(_title(runs, metric, specs))
    return (f"<figure class=\"chart-wrap\"><svg class=\"chart twin\" viewBox=\"0 0 {WIDTH} {height:.0f}\" "
            f"width=\"{WIDTH}\" role=\"img\" aria-labelledby=\"{prefix}-title\" data-metric=\"{metric}\" "
            f"xmlns=\"http://www.w3.org/2000/svg\"><title id=\"{prefix}-title\">{title}</title>"
            + "".join(out) + legend.svg() + "</svg>"
            f"<figcaption>The penalized model (vermillion, solid) and its unregularized twin (blue, dashed) over "
            f"the same steps{_trials_caption(specs)}: training data loss on top, {esc(metric_label)} below."
            f"</figcaption></figure>\n")


def _trials_caption(specs: tuple) -> str:
    trials = len(specs) - len(RUNS)
    if not trials:
        return ""
    return f", and the penalized model again with {'the fix' if trials == 1 else 'each fix'} RL023 measured (dotted)"


def _panel(runs: dict, key: str, label: str, log: bool, xs: c.LinearScale, top: float,
           specs: tuple = RUNS) -> str:
    values = [v for name, *_ in specs for _, v in series(runs.get(name), key)]
    out = [c.text(X0, top - 10, esc(label), size=13, weight="700")]
    if log:
        ys: Any = c.LogScale(*c.decade_range(values), top + PANEL_H, top)
        out.append(c.log_y_axis(ys, X0, X1, label, top, PANEL_H))
    else:
        lo, hi = min(values, default=0.0), max(values, default=1.0)
        ys = c.LinearScale(min(0.0, lo), max(1.0, hi), top + PANEL_H, top)
        out.append(c.linear_y_axis(ys, X0, X1, label, top, PANEL_H, fmt=_percent))
    for name, _, colour, dash in specs:
        pts = [(xs(s), ys(v)) for s, v in series(runs.get(name), key) if not log or v > 0]
        dashes = f" stroke-dasharray=\"{dash}\"" if dash else ""
        out.append(f"<path class=\"curve twin-{name}\" data-run=\"{name}\" data-series=\"{key}\" "
                   f"d=\"{c.path_of(pts)}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2.4\"{dashes}/>")
    for v in xs.ticks(6):
        if xs.lo <= v <= xs.hi:
            out.append(c.text(xs(v), top + PANEL_H + 16, esc(gx(v)), size=11, anchor="middle", fill=c.GREY))
    out.append(c.text((X0 + X1) / 2, top + PANEL_H + 34, "optimizer step", anchor="middle"))
    return f"<g class=\"panel\" data-series=\"{key}\">" + "".join(out) + "</g>"


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def _title(runs: dict, metric: str, specs: tuple = RUNS) -> str:
    parts = []
    for name, text, *_ in specs:
        loss, second = series(runs.get(name), "data_loss"), series(runs.get(name), metric)
        if loss:
            parts.append(f"{text}: data loss {gx(loss[0][1])} to {gx(loss[-1][1])}"
                         + (f", {metric} {gx(second[-1][1])} at the end" if second else ""))
    return "; ".join(parts) or "no values"


def _table(runs: dict, specs: tuple = RUNS) -> str:
    body = []
    for name, text, *_ in specs:
        run = runs.get(name)
        if not isinstance(run, dict):
            continue
        cells = [f"<th scope=\"row\">{esc(text)}</th>"]
        for key, both in (("data_loss", True), ("val_loss", False), ("val_accuracy", False), ("kernel_norm", True)):
            values = series(run, key)
            if not values:
                cells.append("<td class=\"num\"></td>")
            elif both:
                cells.append(f"<td class=\"num\">{esc(gx(values[0][1]))} &rarr; {esc(gx(values[-1][1]))}</td>")
            else:
                fmt = pctx if key == "val_accuracy" else gx
                cells.append(f"<td class=\"num\">{esc(fmt(values[-1][1]))}</td>")
        body.append(f"<tr data-run=\"{name}\">" + "".join(cells) + "</tr>")
    if not body:
        return ""
    return ("<div class=\"scroll\"><table class=\"twin\"><thead><tr><th scope=\"col\">run</th>"
            "<th scope=\"col\" class=\"num\">data loss (first &rarr; last)</th>"
            "<th scope=\"col\" class=\"num\">val loss (last)</th><th scope=\"col\" class=\"num\">val accuracy (last)"
            "</th><th scope=\"col\" class=\"num\">kernel norm (first &rarr; last)</th></tr></thead><tbody>"
            + "".join(body) + "</tbody></table></div>\n")
