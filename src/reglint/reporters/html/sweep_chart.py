"""The sweep chart: what a different lambda (or weight decay) would do,
drawn from ``analysis.sweep`` of the JSON report.

Each rule that judges a quantity depending on the lambdas hands a curve
(``reglint.engine.sweep.Curve``): ``value(m) = slope*m + offset`` for a
multiplier ``m`` of today's values, its own warning and error levels, the
largest ``m`` under the warning (``limit``) and where its fix lands
(``fix``). The runner adds the largest multiplier under every lambda curve
(``safe_multiplier``) and the rules that bound it (``bound_by``). This module
only draws those numbers: one panel per curve, with the rule's zones, the
safe range, today's point and the fix; curves on the same knob share the
multiplier axis. No threshold or formula lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reglint.engine.fmt import g, g_down
from reglint.reporters.html import charts as c
from reglint.reporters.html.markup import as_object, esc, num_attr, number, positive

DECADES = 3  # the sweep covers at least 10^-3 .. 10^3 times today's values
POINTS = 121
WIDTH = 900
X0, X1 = 92, 660
PANEL_H = 190
KNOB_SYMBOL = {"lambda": "\u03bb"}


@dataclass
class Curve:
    """One curve of ``analysis.sweep.curves``, read once from the JSON."""

    code: str
    feature: str
    label: str
    knob: str
    slope: float
    offset: float
    today: float
    warning: float | None
    error: float | None
    limit: float | None
    fix: float | None
    lambdas: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: Any) -> Curve | None:
        if not isinstance(d, dict):
            return None
        slope, offset = number(d.get("slope")), number(d.get("offset"))
        if slope is None or offset is None:
            return None
        today = number(d.get("today"))
        return cls(code=str(d.get("code") or "?"), feature=str(d.get("feature") or "value"),
                   label=str(d.get("label") or ""), knob=str(d.get("knob") or "lambda"), slope=slope,
                   offset=offset, today=today if today is not None else slope + offset,
                   warning=number(d.get("warning")), error=number(d.get("error")), limit=number(d.get("limit")),
                   fix=number(d.get("fix")),
                   lambdas=[v for v in (number(x) for x in d.get("lambdas") or []) if v is not None],
                   notes=[str(n) for n in d.get("notes") or []])

    def at(self, m: float) -> float:
        """The curve as the JSON defines it: ``slope * m + offset``."""
        return self.slope * m + self.offset


@dataclass
class Group:
    """The curves on one knob: one shared multiplier axis, one safe range."""

    knob: str
    curves: list[Curve]
    safe: float | None  # the largest multiplier under every curve's warning level
    bound_by: list[str]

    @property
    def absolute(self) -> float | None:
        """Today's value when every curve scales one single factor: the axis
        can then show absolute values."""
        values = {v for curve in self.curves for v in curve.lambdas}
        return values.pop() if len(values) == 1 else None

    @property
    def symbol(self) -> str:
        return KNOB_SYMBOL.get(self.knob, self.knob)


def groups_of(analysis: dict) -> list[Group]:
    """The sweep's curves by knob, lambda first. The lambda group's safe
    range is the runner's ``safe_multiplier``; another knob's is the smallest
    ``limit`` its curves give."""
    sweep = as_object(analysis.get("sweep"))
    curves = [x for x in (Curve.from_dict(d) for d in sweep.get("curves") or []) if x is not None]
    knobs = sorted({x.knob for x in curves}, key=lambda k: (k != "lambda", k))
    out = []
    for knob in knobs:
        members = [x for x in curves if x.knob == knob]
        if knob == "lambda":
            safe = number(sweep.get("safe_multiplier"))
            bound_by = [str(b) for b in sweep.get("bound_by") or []]
        else:
            limits = [(x.limit, x.code) for x in members if x.limit is not None]
            safe = min((lim for lim, _ in limits), default=None)
            bound_by = sorted({code for lim, code in limits if safe is not None and lim <= safe})
        out.append(Group(knob, members, safe, bound_by))
    return out


def safe_value(group: Group) -> str:
    """The safe bound: absolute (``0.0232``) when there is one factor today,
    else a multiplier (``×0.12``); ``none`` when no multiplier is safe."""
    if group.safe is None:
        return ""
    if group.safe <= 0:
        return "none"
    # rounded down, as explain shows it: typed back, a bound must stay inside (review 39, 2)
    return g_down(group.absolute * group.safe, 3) if group.absolute else f"\u00d7{g_down(group.safe, 2)}"


def safe_text(group: Group) -> str:
    """``λ ≤ 0.0232`` or ``× ≤ 0.12`` or ``none``."""
    if group.safe is None or group.safe <= 0:
        return safe_value(group)
    if group.absolute:
        return f"{group.symbol} \u2264 {safe_value(group)}"
    return f"\u00d7 \u2264 {g_down(group.safe, 2)}"


# ---------------------------------------------------------------------------
# the figure


def figure_sweep(index: int, analysis: dict) -> str:
    groups = groups_of(analysis)
    knobs = " or ".join(gr.knob for gr in groups) or "lambda"
    title = f"<h3 id=\"file-{index}-sweep\">What a different {esc(knobs)} would do</h3>\n"
    if not groups:
        return title + ("<p class=\"muted\">Nothing to sweep: no rule found a quantity that depends on this "
                        "model's lambdas or weight decay (see <code>analysis.sweep</code>).</p>\n")
    prefix = f"f{index}"
    body, y = [], 36.0
    legend = c.Legend(X1 + 14, y + 30)
    styles: dict[int, tuple[str, str]] = {}  # id(curve) -> its colour and dash
    for group in groups:
        xs = c.LogScale(*_x_range(group), X0, X1)
        ms = xs.samples(POINTS)
        for i, curve in enumerate(group.curves):
            styles[id(curve)] = c.series_style(len(styles))
            y += 24 if i else 0  # room between a panel's axis labels and the next title
            body.append(_panel(prefix, len(styles), curve, group, xs, ms, y, styles[id(curve)]))
            y += 26 + PANEL_H + (34 if group.absolute else 22)
        body.append(c.text((X0 + X1) / 2, y + 14, esc(_x_title(group)), anchor="middle", cls="x-title"))
        y += 44
    _legend(legend, prefix, groups, styles)
    height = max(y, legend.y) + 6
    svg = (f"<svg class=\"chart sweep\" viewBox=\"0 0 {WIDTH} {height:.0f}\" width=\"{WIDTH}\" role=\"img\" "
           f"aria-labelledby=\"{prefix}-sweep-title {prefix}-sweep-desc\" "
           f"data-safe-multiplier=\"{num_attr((analysis.get('sweep') or {}).get('safe_multiplier'))}\" "
           f"xmlns=\"http://www.w3.org/2000/svg\">"
           f"<title id=\"{prefix}-sweep-title\">Each rule's quantity against a common multiplier of today's "
           f"{esc(knobs)} (log-log)</title>"
           f"<desc id=\"{prefix}-sweep-desc\">{esc(_desc(groups))}</desc>"
           + c.patterns(prefix) + "".join(body) + legend.svg() + "</svg>")
    return (title + "<figure class=\"chart-wrap\">" + svg +
            f"<figcaption>{_caption(groups)}</figcaption></figure>\n")


def _x_range(group: Group) -> tuple[float, float]:
    """At least 10^-3..10^3, widened to show every fix and the safe bound."""
    marks = [10.0 ** -DECADES, 10.0 ** DECADES, group.safe] + [x.fix for x in group.curves]
    return c.decade_range([positive(v) for v in marks], max_span=14)


def _x_title(group: Group) -> str:
    today = group.absolute
    if group.knob == "lambda":
        if today:
            return f"\u03bb, all lambdas scaled together (today \u03bb = {g(today)})"
        values = sorted({v for x in group.curves for v in x.lambdas})
        listed = ", ".join(g(v) for v in values[:4]) + (", ..." if len(values) > 4 else "")
        return f"multiple of today's lambdas ({listed})" if values else "multiple of today's lambdas"
    return f"{group.knob}, scaled (today {g(today)})" if today else f"multiple of today's {group.knob}"


def _panel(prefix: str, n: int, curve: Curve, group: Group, xs: c.LogScale, ms: list[float], y: float,
           style: tuple[str, str]) -> str:
    colour, dash = style
    top = y + 26
    out = [c.text(X0, top - 10, esc(c.shorten(f"{curve.code}  {curve.label or curve.feature}", 86)),
                  size=13, weight="700")]
    values = [curve.at(xs.vlo), curve.at(xs.vhi), curve.warning, curve.error, curve.today]
    if curve.fix is not None and curve.fix > 0:
        values.append(curve.at(curve.fix))
    if positive(curve.at(xs.vlo)) is None and positive(curve.at(xs.vhi)) is None:
        out.append(f"<rect x=\"{X0}\" y=\"{top}\" width=\"{X1 - X0}\" height=\"{PANEL_H}\" fill=\"#f6f6f6\" "
                   f"stroke=\"{c.INK}\"/>")
        out.append(c.text(X0 + 16, top + 34, esc(f"Nothing to plot: {curve.feature} is {g(curve.today)} "
                                                 f"at every multiplier shown.")))
        return (f"<g class=\"panel\" data-code=\"{esc(curve.code)}\" data-knob=\"{esc(curve.knob)}\" "
                f"data-kind=\"none\">" + "".join(out) + "</g>")
    ylo, yhi = c.decade_range(positive(v) for v in values)
    ys = c.LogScale(ylo, yhi, top + PANEL_H, top)
    clip = f"{prefix}-clip{n}"
    out.append(
        f"<g class=\"panel panel-{esc(curve.knob)}\" data-code=\"{esc(curve.code)}\" "
        f"data-feature=\"{esc(curve.feature)}\" data-knob=\"{esc(curve.knob)}\" data-x0=\"{X0}\" data-x1=\"{X1}\" "
        f"data-mmin=\"{num_attr(xs.vlo)}\" data-mmax=\"{num_attr(xs.vhi)}\" data-y0=\"{num_attr(top + PANEL_H)}\" "
        f"data-y1=\"{num_attr(top)}\" data-ymin=\"{num_attr(ylo)}\" data-ymax=\"{num_attr(yhi)}\">")
    out.append(f"<clipPath id=\"{clip}\"><rect x=\"{X0}\" y=\"{top}\" width=\"{X1 - X0}\" height=\"{PANEL_H}\"/>"
               "</clipPath>")
    out.append(c.zones(prefix, X0, X1, ys, [
        (curve.error, None, "error", f"{curve.code} error: {curve.feature} \u2265 {g(curve.error)}"),
        (curve.warning, curve.error, "warning", f"{curve.code} warning: {curve.feature} \u2265 {g(curve.warning)}")]))
    out.append(_safe_band(group, xs, ys, curve.warning, top))
    out.append(c.log_y_axis(ys, X0, X1, curve.feature, top, PANEL_H))
    path = c.polyline(xs, ys, ms, curve.at)
    dashes = f" stroke-dasharray=\"{dash}\"" if dash else ""
    out.append(f"<path class=\"curve curve-{esc(curve.code)}\" data-code=\"{esc(curve.code)}\" d=\"{path}\" "
               f"fill=\"none\" stroke=\"{colour}\" stroke-width=\"2.6\"{dashes} clip-path=\"url(#{clip})\"/>")
    out.append(_today(xs, ys, curve, colour, top))
    out.append(_fix_marker(xs, ys, curve, group))
    out.append("</g>")
    out.append(c.multiplier_axis(xs, top, PANEL_H, group.absolute))
    return "".join(out)


def _safe_band(group: Group, xs: c.LogScale, ys: c.LogScale, warning: float | None, top: float) -> str:
    """Multipliers up to the group's safe bound, values under this curve's
    warning level."""
    if group.safe is None or group.safe <= xs.vlo:
        return ""
    xr = xs.clamp(group.safe)
    bottom = top + PANEL_H
    y_top = ys.clamp(warning) if warning is not None else top
    if bottom - y_top < 2:
        return ""
    label = "safe" if xr - X0 < 70 else "safe range"
    return (f"<g class=\"safe\" data-multiplier=\"{num_attr(group.safe)}\" data-x=\"{xr:.1f}\">"
            f"<rect x=\"{X0}\" y=\"{y_top:.1f}\" width=\"{xr - X0:.1f}\" height=\"{bottom - y_top:.1f}\" "
            f"fill=\"{c.GREEN}\" fill-opacity=\"0.16\"/>"
            f"<path d=\"M{X0},{y_top:.1f} H{xr:.1f} V{bottom:.1f}\" fill=\"none\" stroke=\"{c.GREEN}\" "
            f"stroke-width=\"1.8\" stroke-dasharray=\"4 3\"/>"
            + (c.text(X0 + 6, y_top + 14, label, size=11, weight="700", fill=c.DARK_GREEN) if xr - X0 > 34 else "")
            + "</g>")


def _today(xs: c.LogScale, ys: c.LogScale, curve: Curve, colour: str, top: float) -> str:
    x = xs(1.0)
    out = [f"<g class=\"today\" data-value=\"{num_attr(curve.today)}\">", c.vline(x, top, PANEL_H)]
    if curve.today > 0 and ys.contains(curve.today):
        y = ys(curve.today)
        out.append(c.dot(x, y, colour))
        label = f"today {curve.feature} = {g(curve.today)}"
        # the curves rise to the right: above-left of the point is clear of them
        out.append(c.label_box(x - 9, y - 10 if y - 24 > top else y + 22, label, size=12, weight="700",
                               anchor="end"))
    out.append("</g>")
    return "".join(out)


def _fix_marker(xs: c.LogScale, ys: c.LogScale, curve: Curve, group: Group) -> str:
    """Where the rule's fix lands: its multiplier and the curve's value there."""
    if curve.fix is None or curve.fix <= 0 or not xs.contains(curve.fix):
        return ""
    value = curve.at(curve.fix)
    if value <= 0 or not ys.contains(value):
        return ""
    x, y = xs(curve.fix), ys(value)
    label = f"{curve.code} fix: \u00d7{g(curve.fix, 2)}" + \
        (f" = {g(group.absolute * curve.fix)}" if group.absolute else "")
    return (f"<g class=\"marker-fix\" data-code=\"{esc(curve.code)}\" data-m=\"{num_attr(curve.fix)}\" "
            f"data-value=\"{num_attr(value)}\" data-x=\"{x:.1f}\" data-y=\"{y:.1f}\">"
            + c.triangle(x, y) + c.label_box(x + 10, y + 18, label, fill=c.DARK_GREEN) + "</g>")


def _legend(legend: c.Legend, prefix: str, groups: list[Group], styles: dict[int, tuple[str, str]]) -> None:
    for group in groups:
        for curve in group.curves:
            colour, dash = styles[id(curve)]
            legend.line(colour, dash, [f"{curve.code} {curve.feature}"])
    legend.item(f"<line x1=\"@M\" y1=\"@T\" x2=\"@M\" y2=\"@B\" stroke=\"{c.INK}\" stroke-width=\"1.4\" "
                "stroke-dasharray=\"3 2\"/>", ["today (\u00d71)"])
    legend.item(f"<rect x=\"@X\" y=\"@T\" width=\"22\" height=\"14\" fill=\"url(#{prefix}-hatch)\" "
                f"stroke=\"{c.VERMILLION}\" stroke-width=\"0.6\"/>", ["error zone (hatched)"])
    legend.item(f"<rect x=\"@X\" y=\"@T\" width=\"22\" height=\"14\" fill=\"url(#{prefix}-dots)\" "
                f"stroke=\"{c.ORANGE}\" stroke-width=\"0.6\"/>", ["warning zone (dotted)"])
    safe = [gr for gr in groups if gr.safe is not None]
    if safe:
        lines = ["safe range (green)"]
        for gr in safe:
            lines.append(safe_text(gr))
            if gr.bound_by:
                lines.append(f"(bound by {', '.join(gr.bound_by)})")
        legend.item(f"<rect x=\"@X\" y=\"@T\" width=\"22\" height=\"14\" fill=\"{c.GREEN}\" fill-opacity=\"0.18\" "
                    f"stroke=\"{c.GREEN}\" stroke-dasharray=\"2 2\"/>", lines)
    if any(x.fix is not None and x.fix > 0 for gr in groups for x in gr.curves):
        legend.item(f"<path d=\"M@M,@T l7,12 l-14,0 Z\" fill=\"{c.GREEN}\" stroke=\"{c.INK}\" "
                    "stroke-width=\"0.8\"/>", ["where a rule's fix lands"])


# ---------------------------------------------------------------------------
# words


def _at(group: Group, m: float) -> str:
    """A multiplier, with the absolute value when there is a single one."""
    return f"\u00d7{g(m, 2)}" + (f" ({group.symbol} = {g(group.absolute * m)})" if group.absolute else "")


def _curve_sentence(curve: Curve, group: Group) -> str:
    levels = []
    if curve.warning is not None:
        levels.append(f"warns at {g(curve.warning)}")
    if curve.error is not None:
        levels.append(f"errs at {g(curve.error)}")
    parts = [f"<b>{esc(curve.code)}</b> {esc(curve.label or curve.feature)}. Today {esc(curve.feature)} = "
             f"{esc(g(curve.today))}" + (f"; the rule {esc(' and '.join(levels))}" if levels else "")]
    if curve.limit is not None:
        parts.append("no multiplier stays under its warning level" if curve.limit <= 0 else
                     f"under its warning level up to {esc(_at(group, curve.limit))}")
    if curve.fix is not None:
        parts.append(f"its fix lands at {esc(_at(group, curve.fix))}, {esc(curve.feature)} = "
                     f"{esc(g(curve.at(curve.fix)))}" if curve.fix > 0 else
                     "its fix removes what this curve scales (\u00d70)")
    notes = "".join(f" {esc(n)}" for n in curve.notes)
    return "; ".join(parts) + "." + notes


def _safe_sentence(group: Group) -> str:
    if group.safe is None:
        return ""
    symbol = esc(group.symbol)
    why = f" (bound by {esc(', '.join(group.bound_by))})" if group.bound_by else ""
    if group.safe <= 0:
        return (f"<b>Safe range</b>: no multiple of today's {symbol} stays under every warning level{why}.")
    state = f"today's {symbol} is inside it" if group.safe >= 1 else \
        f"today's {symbol} is {esc(g(1 / group.safe, 2))}\u00d7 too large"
    return f"<b>Safe range</b> (green): {esc(safe_text(group))}{why}; {state}."


def _caption(groups: list[Group]) -> str:
    items = []
    if all(gr.knob != "lambda" for gr in groups):
        items.append("No rule's quantity depends on a regularizer's lambda in this model.")
    for group in groups:
        items += [_curve_sentence(x, group) for x in group.curves]
        if _safe_sentence(group):
            items.append(_safe_sentence(group))
    items.append("Each curve is the rule's own: value = slope \u00d7 multiplier + offset, with the rule's "
                 "levels as the zones (<code>analysis.sweep</code> in the JSON).")
    return "<ul class=\"caption\">" + "".join(f"<li>{x}</li>" for x in items) + "</ul>"


def _desc(groups: list[Group]) -> str:
    parts = []
    for group in groups:
        for curve in group.curves:
            parts.append(f"{curve.code} {curve.feature} today {g(curve.today)}"
                         + (f", fix at {g(curve.fix, 2)} times today's {group.knob}" if curve.fix else "") + ".")
        if group.safe is not None:  # the figure's own words and rounding (review 72, 3: 64 beside x <= 63)
            parts.append(f"Safe range for {group.knob}: " + (f"up to {safe_value(group)}." if group.absolute else
                                                               f"up to {g_down(group.safe, 2)} times today's."))
    return " ".join(parts)
