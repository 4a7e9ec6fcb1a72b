"""Per-layer numbers from the JSON report's ``model.layers``: the layer table
(with the totals and what the counted penalty leaves out) and the bar chart
of each layer's parameters and penalty share."""

from __future__ import annotations

from dataclasses import dataclass, field

from reglint.engine.fmt import g
from reglint.reporters.html import charts as c
from reglint.reporters.html.markup import esc, gx, num_attr, number, pctx, regularizer_text
from reglint.reporters.text import estimates_line

MAX_BAR_LAYERS = 40


@dataclass
class LayerRow:
    path: str
    class_name: str
    trainable_params: int
    non_trainable_params: int
    regularizers: list[str]
    penalty_init: float | None  # every regularized variable of the layer, as the terminal report sums it
    penalty_saved: float | None
    counted: float  # the part analysis.penalty_init counts (flag ``counted`` per variable)
    tags: list[str] = field(default_factory=list)
    # what the counted total leaves out, by reason: {"scale-invariant": 1.2, "absorbed": 0.3}
    left_out: dict[str, float] = field(default_factory=dict)
    added: float | None = None  # the part Keras adds (frozen tensors' penalties are not: RL016)

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params


def layer_rows(model: dict) -> list[LayerRow]:
    rows = []
    for layer in model.get("layers") or []:
        regs = [f"{r.get('target')}: {regularizer_text(r)}" for r in layer.get("regularizers") or []]
        variables = layer.get("variables") or []
        if not variables and not regs:
            continue
        inits = [number(v.get("penalty_init")) for v in variables if v.get("penalty_init") is not None]
        saved = [number(v.get("penalty_saved")) for v in variables if v.get("penalty_saved") is not None]
        counted = 0.0
        added: float | None = None
        left_out: dict[str, float] = {}
        tags: list[str] = []
        for v in variables:
            reference = number(v.get("penalty")) or 0.0
            known = v.get("penalty_init") if v.get("penalty_init") is not None else v.get("penalty_saved")
            if known is not None:
                added = (added or 0.0) + (number(known) or 0.0 if v.get("active") else 0.0)
            if v.get("counted"):
                counted += reference
            elif v.get("active") and reference:
                reason = "absorbed" if v.get("absorbed") else "scale-invariant" if v.get("scale_invariant") else \
                    "offset" if v.get("offset") else "not counted"
                left_out[reason] = left_out.get(reason, 0.0) + reference
        if not layer.get("trainable", True):
            tags.append("frozen")
        if layer.get("custom"):
            tags.append("custom")
        for flag, tag in (("scale_invariant", "scale-invariant"), ("absorbed", "absorbed")):
            if any(v.get(flag) for v in variables):
                tags.append(tag)
        params = layer.get("params") or {}
        rows.append(LayerRow(str(layer.get("path")), str(layer.get("class")), int(params.get("trainable") or 0),
                             int(params.get("non_trainable") or 0), regs,
                             sum(x for x in inits if x is not None) if inits else None,
                             sum(x for x in saved if x is not None) if saved else None, counted, tags, left_out,
                             added))
    return rows


def left_out_text(left_out: dict[str, float]) -> str:
    """``"1.2 on scale-invariant kernels and 0.3 on normalization gamma/beta"``."""
    names = {"scale-invariant": "on scale-invariant kernels (a normalization layer follows)",
             "absorbed": "on normalization gamma/beta (absorbed by the next layer)",
             "offset": "on biases and beta (pulled to zero, where they start)",
             "not counted": "on other tensors"}
    return " and ".join(f"{g(v)} {names.get(k, k)}" for k, v in left_out.items() if v)


# ---------------------------------------------------------------------------
# the table


def layer_table(index: int, rows: list[LayerRow], analysis: dict) -> str:
    scale = number((analysis.get("loss_scale") or {}).get("value"))
    total_counted = sum(r.counted for r in rows)
    body = []
    for r in rows:
        tags = "".join(f" <span class=\"tag\">{esc(t)}</span>" for t in r.tags)
        share_scale = ("- (frozen)" if r.added == 0.0 and "frozen" in r.tags else
                       pctx(r.added / scale) if r.added is not None and scale else "")
        share_rho = pctx(r.counted / total_counted) if total_counted and r.counted else ""
        body.append(
            f"<tr data-layer=\"{esc(r.path)}\" data-params=\"{r.params}\" "
            f"data-penalty-init=\"{num_attr(r.penalty_init)}\" data-penalty-counted=\"{num_attr(r.counted)}\">"
            f"<th scope=\"row\">{esc(r.path)}{tags}</th><td>{esc(r.class_name)}</td>"
            f"<td class=\"num\">{esc(g(r.trainable_params))}</td>"
            f"<td class=\"num\">{esc(g(r.non_trainable_params))}</td>"
            f"<td class=\"regs\">{'<br>'.join(esc(x) for x in r.regularizers) or '<span class=muted>-</span>'}</td>"
            f"<td class=\"num\">{esc(g(r.penalty_init)) if r.penalty_init is not None else ''}</td>"
            f"<td class=\"num\">{esc(g(r.penalty_saved)) if r.penalty_saved is not None else ''}</td>"
            f"<td class=\"num\">{esc(share_scale)}</td><td class=\"num\">{esc(share_rho)}</td></tr>")
    return (f"<h3 id=\"file-{index}-layers\">Layers</h3>\n<div class=\"scroll\">"
            f"<table class=\"layers\" aria-labelledby=\"file-{index}-layers\">\n<thead><tr>"
            "<th scope=\"col\">layer</th><th scope=\"col\">class</th><th scope=\"col\" class=\"num\">trainable</th>"
            "<th scope=\"col\" class=\"num\">non-train.</th><th scope=\"col\">regularizers</th>"
            "<th scope=\"col\" class=\"num\">penalty@init</th><th scope=\"col\" class=\"num\">@saved</th>"
            "<th scope=\"col\" class=\"num\" title=\"penalty at init / data-loss scale\">% of data loss</th>"
            "<th scope=\"col\" class=\"num\" title=\"share of the counted penalty (rho)\">share of penalty</th>"
            "</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>" + _totals(rows, analysis) + "</table></div>\n"
            + _estimates(analysis))


def _estimates(analysis: dict) -> str:
    """The penalties outside the weights' (an activity regularizer's), as the
    terminal prints them under its table (review 71, 3)."""
    found = analysis.get("penalty_estimates")
    line = estimates_line(found, gx, pctx) if isinstance(found, list) and found else None
    return f"<p class=\"estimates\">{esc(line)}</p>\n" if line else ""


def _totals(rows: list[LayerRow], analysis: dict) -> str:
    """The whole penalty and the part the ratio counts, side by side, and
    why they differ."""
    total, counted = number(analysis.get("penalty_init_all")), number(analysis.get("penalty_init"))
    if total is None or not any(r.penalty_init is not None or r.penalty_saved is not None for r in rows):
        return ""
    left_out: dict[str, float] = {}
    for r in rows:
        for k, v in r.left_out.items():
            left_out[k] = left_out.get(k, 0.0) + v
    scale = number((analysis.get("loss_scale") or {}).get("value"))
    why = left_out_text(left_out)
    lines = [("total penalty", total, "every active regularized tensor")]
    if counted is not None and (why or counted != total):
        lines.append(("counted in \u03c1", counted, f"leaves out {why}" if why else ""))
    cells = []
    for label, value, note in lines:
        cells.append(f"<tr data-total=\"{esc(label)}\" data-value=\"{num_attr(value)}\"><th scope=\"row\" "
                     f"colspan=\"5\">{esc(label)}" + (f" <span class=\"why\">({esc(note)})</span>" if note else "")
                     + f"</th><td class=\"num\">{esc(g(value))}</td><td></td>"
                     f"<td class=\"num\">{esc(pctx(value / scale)) if scale else ''}</td><td></td></tr>")
    return "<tfoot>" + "".join(cells) + "</tfoot>"


# ---------------------------------------------------------------------------
# the bar chart


def figure_bars(index: int, rows: list[LayerRow], total_params: int | None) -> str:
    prefix = f"f{index}"
    total_params = total_params or sum(r.params for r in rows) or 1
    total_counted = sum(r.counted for r in rows)
    shown = [r for r in rows if r.params or r.counted]
    if not shown:
        return ""
    hidden = 0
    if len(shown) > MAX_BAR_LAYERS:
        keep = sorted(shown, key=lambda r: -max(r.params / total_params,
                                                (r.counted / total_counted) if total_counted else 0))[:MAX_BAR_LAYERS]
        keep_ids = {id(r) for r in keep}
        hidden = len(shown) - len(keep)
        shown = [r for r in shown if id(r) in keep_ids]

    width, label_w, bar_x0, bar_x1 = 900, 212, 222, 700
    top, row_h, bar_h = 54, 38, 13
    height = top + row_h * len(shown) + 48
    largest = max(max(r.params / total_params, (r.counted / total_counted) if total_counted else 0.0) for r in shown)
    axis_max = next(m for m in (0.04, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0) if largest <= m + 1e-12)

    def x(share: float) -> float:
        return bar_x0 + share / axis_max * (bar_x1 - bar_x0)

    out = [
        f"<svg class=\"chart bars\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" role=\"img\" "
        f"aria-labelledby=\"{prefix}-bars-title {prefix}-bars-desc\" data-layers=\"{len(shown)}\" "
        f"xmlns=\"http://www.w3.org/2000/svg\">",
        f"<title id=\"{prefix}-bars-title\">Parameters and penalty share per layer</title>",
        f"<desc id=\"{prefix}-bars-desc\">" + esc("; ".join(
            f"{r.path}: {g(r.params)} parameters ({pctx(r.params / total_params)}), penalty "
            f"{g(r.counted)} ({pctx(r.counted / total_counted) if total_counted else 'n/a'} of the counted penalty)"
            for r in shown)) + "</desc>",
        c.patterns(prefix),
        f"<rect x=\"{bar_x0}\" y=\"12\" width=\"16\" height=\"12\" fill=\"{c.BLUE}\"/>",
        c.text(bar_x0 + 22, 22, "parameters (share of the model's total)"),
        f"<rect x=\"{bar_x0 + 275}\" y=\"12\" width=\"16\" height=\"12\" fill=\"url(#{prefix}-barhatch)\" "
        f"stroke=\"{c.VERMILLION}\"/>",
        c.text(bar_x0 + 297, 22, "penalty at init (share of the counted penalty)"),
    ]
    for i in range(5):
        share = axis_max * i / 4
        gx = x(share)
        out.append(f"<line x1=\"{gx:.1f}\" y1=\"{top - 8}\" x2=\"{gx:.1f}\" y2=\"{height - 40}\" "
                   f"stroke=\"#d9d9d9\" stroke-width=\"1\"/>")
        out.append(c.text(gx, height - 26, f"{share * 100:.4g}%", size=11, anchor="middle", fill=c.GREY))
    out.append(c.text((bar_x0 + bar_x1) / 2, height - 8, "share of the model total (%)", size=12, anchor="middle"))
    out.append(f"<line x1=\"{bar_x0}\" y1=\"{top - 8}\" x2=\"{bar_x0}\" y2=\"{height - 40}\" stroke=\"{c.INK}\"/>")
    for i, r in enumerate(shown):
        out.append(_bar_row(r, top + i * row_h, bar_h, label_w, bar_x0, x, total_params, total_counted, prefix))
    out.append("</svg>")
    note = f" {hidden} smaller layers are left out of the chart; the table lists them all." if hidden else ""
    return (f"<h3 id=\"file-{index}-bars\">Parameters and penalty by layer</h3>\n<figure class=\"chart-wrap\">"
            + "".join(out) +
            f"<figcaption>Each layer's parameter count (solid blue) and its share of the penalty at "
            f"initialisation counted in \u03c1 (hatched vermillion; frozen, scale-invariant and absorbed "
            f"tensors add none). A layer whose penalty share is far above its parameter share carries a larger "
            f"lambda or larger initial weights than the rest.{esc(note)}</figcaption></figure>\n")


def _bar_row(r: LayerRow, y0: float, bar_h: int, label_w: int, bar_x0: int, x, total_params: int,
             total_counted: float, prefix: str) -> str:
    p_share = r.params / total_params
    c_share = r.counted / total_counted if total_counted else 0.0
    tag = f" ({', '.join(r.tags)})" if r.tags else ""
    out = [f"<g class=\"bar-row\" data-layer=\"{esc(r.path)}\">", f"<title>{esc(r.path + tag)}</title>",
           c.text(label_w, y0 + bar_h + 4, esc(c.shorten(r.path, 27)), anchor="end", weight="600"),
           c.text(label_w, y0 + bar_h + 18, esc(c.shorten(r.class_name + tag, 36)), size=10, anchor="end",
                  fill=c.GREY)]
    wp = max(x(p_share) - bar_x0, 1.0 if r.params else 0.0)
    out.append(f"<rect class=\"bar bar-params\" x=\"{bar_x0}\" y=\"{y0}\" width=\"{wp:.1f}\" height=\"{bar_h}\" "
               f"fill=\"{c.BLUE}\" data-value=\"{r.params}\" data-share=\"{num_attr(p_share)}\"/>")
    out.append(c.text(bar_x0 + wp + 5, y0 + bar_h - 2, esc(f"{g(r.params)} params \u00b7 {pctx(p_share)}"), size=11))
    yb = y0 + bar_h + 3
    wc = max(x(c_share) - bar_x0, 1.0 if r.counted else 0.0)
    out.append(f"<rect class=\"bar bar-penalty\" x=\"{bar_x0}\" y=\"{yb}\" width=\"{wc:.1f}\" "
               f"height=\"{bar_h}\" fill=\"url(#{prefix}-barhatch)\" stroke=\"{c.VERMILLION}\" stroke-width=\"0.8\" "
               f"data-value=\"{num_attr(r.counted)}\" data-share=\"{num_attr(c_share)}\"/>")
    if r.counted:
        ptext = f"penalty {g(r.counted)} \u00b7 {pctx(c_share)}"
    elif r.left_out:
        ptext = f"penalty {g(sum(r.left_out.values()))} not counted ({', '.join(r.left_out)})"
    elif r.penalty_init:
        ptext = "penalty not counted" + (f" ({r.tags[-1]})" if r.tags else "")
    else:
        ptext = "no penalty"
    out.append(c.text(bar_x0 + wc + 5, yb + bar_h - 2, esc(ptext), size=11,
                      fill=c.VERMILLION if r.counted else c.GREY))
    out.append("</g>")
    return "".join(out)
