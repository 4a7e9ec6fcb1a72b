"""A self-contained HTML report: model summary, findings, a per-layer table,
a bar chart of each layer's parameters and penalty share, and a sweep of the
penalty ratio and per-step shrink against lambda.

One file, no network: the stylesheet is inlined, the charts are SVG written
here, there is no script to run (the only ``<script>`` is an inert
``application/json`` block holding ``RunReport.to_dict()``, the JSON
contract, so a reader or a test can compare numbers). Every name comes from
an untrusted model file and goes through ``esc`` (``clean`` then
``html.escape``).

Sweep formulas (``reglint.estimate.dynamics``): every Keras penalty is
linear in its factor, so scaling all lambdas by ``m`` gives
``rho(m) = sum_t m * P_t / L_chance`` over the tensors RL001 counts; under
SGD with momentum b the slowest mode of an unsupported weight shrinks by
``r = 2*eta*lambda / (1-b)`` per step and uses ``f = 2*eta*lambda / S`` of
the stability budget ``S = 2(1+b)``; decoupled weight decay shrinks by
``eta*wd`` whatever the regularizer's lambda is.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, TextIO

from reglint import __version__
from reglint.engine.fmt import g, lam, pct
from reglint.engine.report import FileReport, RunReport
from reglint.reporters.text import clean

# Okabe & Ito (2008), colour-blind-safe.
BLUE = "#0072B2"
VERMILLION = "#D55E00"
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
PURPLE = "#CC79A7"
INK = "#1a1a1a"
GREY = "#6b6b6b"

SEVERITY_MARK = {"error": "\u2716", "warning": "\u25B2", "info": "\u25CF"}  # cross, triangle, dot
SWEEP_DECADES = 3  # the sweep covers 10^-3 .. 10^3 times today's lambdas
SWEEP_POINTS = 121
MAX_BAR_LAYERS = 40


def esc(value: object) -> str:
    """Untrusted text, safe in element content and quoted attributes."""
    return html.escape(clean(value), quote=True)


def num_attr(value: Any) -> str:
    """A number for a ``data-*`` attribute, exactly as JSON writes it."""
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return json.dumps(value)


def render_html(report: RunReport, out: TextIO, settings: Any = None, data: dict | None = None,
                **_: object) -> None:
    """``data``: the JSON document to embed and to read a ``profile`` from,
    when it is more than ``report.to_dict()`` (``reglint profile`` puts its
    measurement under ``files[i].model.analysis.profile``)."""
    out.write(html_document(report, settings, data))


def html_document(report: RunReport, settings: Any = None, data: dict | None = None) -> str:
    data = report.to_dict() if data is None else data
    files = data["files"]
    thresholds = Thresholds.from_settings(settings)
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        f"<meta name=\"generator\" content=\"reglint {esc(__version__)}\">\n",
        f"<title>{esc(_title(report))}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n",
        _header(report),
        _toc(report, files) if len(report.files) > 1 else "",
        "<main>\n",
    ]
    for index, (file_report, file_dict) in enumerate(zip(report.files, files), start=1):
        parts.append(_file_section(index, file_report, file_dict, thresholds))
    parts.append("</main>\n")
    parts.append(_footer(thresholds))
    parts.append("<script type=\"application/json\" id=\"reglint-data\">")
    parts.append(json_for_script(data))
    parts.append("</script>\n</body>\n</html>\n")
    return "".join(parts)


def json_for_script(data: Any) -> str:
    """JSON that cannot end its ``<script>`` element early: ``<``, ``>``
    and ``&`` as ``\\u`` escapes (``json.loads`` reads back the same)."""
    text = json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# ---------------------------------------------------------------------------
# thresholds, read from the rules


@dataclass
class Thresholds:
    """The rule levels the charts draw, from the rule classes' options with
    the run's ``[tool.reglint.lint.thresholds]`` applied."""

    rho_warning: float | None = None
    rho_error: float | None = None
    f_warning: float | None = None
    f_error: float | None = None
    decay_warning: float | None = None
    decay_error: float | None = None
    no_effect_share: float | None = None
    codes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Any) -> "Thresholds":
        from reglint.engine.rule import get_rule

        user = dict(getattr(settings, "thresholds", None) or {})

        def levels(code: str) -> dict[str, float]:
            rule = get_rule(code)
            return dict(rule(user).thresholds) if rule is not None else {}

        rl001, rl002, rl003, rl005 = levels("RL001"), levels("RL002"), levels("RL003"), levels("RL005")
        return cls(
            rho_warning=rl001.get("penalty-ratio-warning"), rho_error=rl001.get("penalty-ratio-error"),
            f_warning=rl002.get("sgd-stability-warning"), f_error=rl002.get("sgd-stability-error"),
            decay_warning=rl003.get("decay-step-warning"), decay_error=rl003.get("decay-step-error"),
            no_effect_share=rl005.get("no-effect-share"),
        )


# ---------------------------------------------------------------------------
# page frame


def _title(report: RunReport) -> str:
    if len(report.files) == 1:
        return f"reglint report: {report.files[0].path}"
    return f"reglint report: {len(report.files)} files"


def _counts(findings: Iterable[Any]) -> dict[str, int]:
    counts = {"error": 0, "warning": 0, "info": 0}
    for finding in findings:
        counts[finding.severity.value] += 1
    return counts


def _header(report: RunReport) -> str:
    from reglint.reporters.full import summary_line

    counts = _counts(f for _, f in report.findings)
    chips = "".join(
        f"<span class=\"chip sev-{k}\"><span aria-hidden=\"true\">{SEVERITY_MARK[k]}</span> "
        f"{counts[k]} {k}{'s' if counts[k] != 1 else ''}</span>" for k in ("error", "warning", "info"))
    unreadable = len(report.errors)
    if unreadable:
        chips += f"<span class=\"chip sev-error\">{unreadable} unreadable</span>"
    return (f"<header class=\"page\">\n<h1>reglint report</h1>\n"
            f"<p class=\"summary\" data-findings=\"{sum(counts.values())}\" data-errors=\"{counts['error']}\" "
            f"data-warnings=\"{counts['warning']}\" data-infos=\"{counts['info']}\" "
            f"data-unreadable=\"{unreadable}\">{esc(summary_line(report))}</p>\n"
            f"<p class=\"chips\">{chips}</p>\n</header>\n")


def _toc(report: RunReport, files: list[dict]) -> str:
    rows = []
    for index, (rep, fd) in enumerate(zip(report.files, files), start=1):
        if rep.error:
            status = "<span class=\"sev sev-error\">unreadable</span>"
            rho = ""
        else:
            counts = _counts(rep.findings)
            status = ", ".join(_sev_label(k, f"{counts[k]} {k}{'s' if counts[k] != 1 else ''}")
                               for k in ("error", "warning", "info") if counts[k]) or "no findings"
            analysis = (fd.get("model") or {}).get("analysis") or {}
            value = analysis.get("penalty_ratio")
            rho = _num_text(value, pct) if value else ("0" if value == 0 else "")
        rows.append(f"<tr><td><a href=\"#file-{index}\">{esc(rep.path)}</a></td><td>{status}</td>"
                    f"<td class=\"num\">{rho}</td></tr>")
    return ("<nav class=\"toc\" aria-label=\"Files in this report\">\n<h2>Files</h2>\n"
            "<table><thead><tr><th scope=\"col\">file</th><th scope=\"col\">findings</th>"
            "<th scope=\"col\" class=\"num\">penalty / data loss</th></tr></thead>\n<tbody>\n"
            + "\n".join(rows) + "\n</tbody></table>\n</nav>\n")


def _footer(t: Thresholds) -> str:
    def level(v: float | None, as_pct: bool = False) -> str:
        return "?" if v is None else (pct(v) if as_pct else g(v))

    return ("<footer class=\"page\">\n<p>Levels drawn in the charts, from the rules' options: "
            f"RL001 penalty-dominates-loss warns at rho &ge; {level(t.rho_warning)} and errs at "
            f"rho &ge; {level(t.rho_error)}; RL002 sgd-stability warns at f &ge; {level(t.f_warning)} and errs at "
            f"f &ge; {level(t.f_error)}; RL003 weight-decay warns at a per-step shrink &ge; "
            f"{level(t.decay_warning)} and errs at &ge; {level(t.decay_error)}. "
            "Numbers are static estimates at a fresh initialisation unless marked measured. "
            "The JSON report (<code>--format json</code>) is embedded in this file as "
            "<code>script#reglint-data</code>.</p>\n"
            f"<p>Generated by reglint {esc(__version__)}.</p>\n</footer>\n")


def _sev_label(severity: str, text: str | None = None) -> str:
    return (f"<span class=\"sev sev-{esc(severity)}\"><span aria-hidden=\"true\">"
            f"{SEVERITY_MARK.get(severity, '')}</span> {esc(text or severity)}</span>")


def _num_text(value: Any, fmt=g) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else esc(value)
    return esc(fmt(value))


# ---------------------------------------------------------------------------
# one file


def _file_section(index: int, rep: FileReport, fd: dict, t: Thresholds) -> str:
    worst = rep.worst()
    head = (f"<section class=\"file\" id=\"file-{index}\" data-path=\"{esc(rep.path)}\" "
            f"data-worst=\"{worst.value if worst else ''}\"")
    if rep.error or rep.model is None:
        return (head + " data-unreadable=\"true\">\n"
                f"<h2><span class=\"path\">{esc(rep.path)}</span></h2>\n"
                f"<p class=\"unreadable\" role=\"alert\"><strong>Unreadable:</strong> "
                f"{esc(rep.error or 'no model')}</p>\n</section>\n")
    model_dict = fd.get("model") or {}
    ad = model_dict.get("analysis") or {}
    head += (f" data-penalty-ratio=\"{num_attr(ad.get('penalty_ratio'))}\""
             f" data-penalty-init=\"{num_attr(ad.get('penalty_init'))}\""
             f" data-loss-scale=\"{num_attr((ad.get('loss_scale') or {}).get('value'))}\""
             f" data-params-total=\"{num_attr(model_dict.get('params', {}).get('total'))}\">\n")
    parts = [head, f"<h2><span class=\"path\">{esc(rep.path)}</span>{_worst_badge(rep)}</h2>\n"]
    parts.append("<div class=\"overview\">\n<div class=\"model\">" + _model_summary(rep) + "</div>\n"
                 + _cards(rep, ad, t) + "</div>\n")
    parts.append(_findings(index, rep))
    layers = layer_rows(rep)
    parts.append(_layer_table(index, rep, layers))
    if rep.analysis is not None:
        parts.append(_figure_bars(index, rep, layers))
        parts.append(_figure_sweep(index, rep, t))
    profile = _find_profile(rep, fd)
    if profile is not None:
        parts.append(_profile(index, profile, ad))
    parts.append("</section>\n")
    return "".join(parts)


def _worst_badge(rep: FileReport) -> str:
    worst = rep.worst()
    if worst is None:
        return " <span class=\"badge ok\">no findings</span>"
    counts = _counts(rep.findings)
    text = ", ".join(f"{counts[k]} {k}{'s' if counts[k] != 1 else ''}" for k in ("error", "warning", "info")
                     if counts[k])
    return (f" <span class=\"badge sev-{worst.value}\"><span aria-hidden=\"true\">{SEVERITY_MARK[worst.value]}"
            f"</span> {esc(text)}</span>")


def _cards(rep: FileReport, ad: dict, t: Thresholds) -> str:
    if rep.analysis is None:
        return ""
    rho = ad.get("penalty_ratio")
    level = ""
    if isinstance(rho, (int, float)):
        if t.rho_error is not None and rho >= t.rho_error:
            level = "error"
        elif t.rho_warning is not None and rho >= t.rho_warning:
            level = "warning"
    scale = (ad.get("loss_scale") or {}).get("value")
    cards = [
        ("penalty / data loss (rho)", _num_text(rho, lambda v: f"{g(v, 3)} ({pct(v)})"),
         _sev_label(level, f"RL001 {level}") if level else "below the RL001 warning level"),
        ("penalty at init", _num_text(ad.get("penalty_init")), "counted in rho"),
        ("data-loss scale", _num_text(scale), esc((ad.get("loss_scale") or {}).get("source", ""))),
        ("lambda_ref", _num_text(ad.get("lambda_ref")), "L2 factor with penalty = data loss"),
    ]
    dyn = rep.analysis.dynamics
    if dyn.decoupled_shrink:
        cards.append(("decoupled shrink / step", esc(g(dyn.decoupled_shrink)), "lr &times; weight_decay"))
    elif dyn.family == "sgd" and dyn.lr is not None:
        l2s = [p.l2 for p in rep.analysis.penalties if p.active and p.l2]
        if l2s or dyn.coupled_l2:
            f = dyn.l2_stability_fraction(max(l2s, default=0.0))
            cards.append(("SGD stability used (f)", esc(g(f, 2)), "largest L2; diverges at f = 1"))
    sw = Sweep.of(rep.analysis)
    safe_m, why = sw.safe_max(t)
    if safe_m is not None and sw.lambdas:
        lam1 = sw.unique_lambda()
        value = (g(lam1 * safe_m) if lam1 else f"\u00d7{g(safe_m, 2)}") if safe_m > 0 else "none"
        cards.append(("largest safe \u03bb" if lam1 else "safe lambda multiplier", esc(value),
                      esc(" and ".join(why)) + ("; today inside" if safe_m >= 1 else "")))
    return ("<div class=\"cards\">" + "".join(
        f"<div class=\"card{' alert' if i == 0 and level else ''}\"><div class=\"label\">{label}</div>"
        f"<div class=\"value\">{value}</div><div class=\"note\">{note}</div></div>"
        for i, (label, value, note) in enumerate(cards)) + "</div>\n")


def _model_summary(rep: FileReport) -> str:
    model, analysis = rep.model, rep.analysis
    rows: list[tuple[str, str]] = []
    framework = {"onnx": "ONNX", "tf.keras": "tf.keras", "pytorch": "PyTorch"}.get(model.framework, "Keras")
    rows.append(("format", f"{esc(model.format)}" + (f" ({esc(framework)} {esc(model.framework_version)})"
                                                     if model.framework_version else f" ({esc(framework)})")))
    rows.append(("parameters", f"{esc(g(model.total_params))} total: {esc(g(model.trainable_params))} trainable, "
                               f"{esc(g(model.non_trainable_params))} non-trainable"))
    opt = model.optimizer
    if opt is None:
        rows.append(("optimizer", "none saved (not compiled; set --optimizer and --learning-rate)"))
    else:
        lr = opt.learning_rate
        text = esc(opt.class_name) + " "
        text += "lr ?" if lr is None or lr.initial is None else (
            f"lr {esc(g(lr.initial))}" + (f" ({esc(lr.schedule)}, peak {esc(g(lr.peak))})" if lr.schedule else ""))
        extras = []
        if opt.momentum:
            extras.append(f"momentum {esc(g(opt.momentum))}" + (" nesterov" if opt.nesterov else ""))
        if opt.weight_decay:
            extras.append(f"weight_decay {esc(g(opt.weight_decay))}")
        if opt.coupled_l2:
            extras.append(f"coupled L2 {esc(g(opt.coupled_l2))}")
        if opt.iterations:
            extras.append(f"{esc(g(opt.iterations))} steps taken")
        if extras:
            text += ", " + ", ".join(extras)
        text += f" <span class=\"muted\">(from {esc(opt.source.value)}; family {esc(opt.family)})</span>"
        rows.append(("optimizer", text))
    if model.losses:
        rows.append(("loss", ", ".join(
            esc(l.name or "custom") + (f" &times; {esc(g(l.weight))}" if l.weight != 1.0 else "") +
            (f" on {esc(l.output)}" if l.output else "") for l in model.losses)))
    if analysis is not None:
        ls = analysis.loss_scale
        rows.append(("data-loss scale", f"{esc(g(ls.value))} <span class=\"muted\">({esc(ls.explanation)}; "
                                        f"from {esc(ls.source.value)})</span>"))
        total = analysis.total_penalty_init(include_invariant=True)
        if analysis.penalties:
            rows.append(("penalty at init", f"{esc(g(total))} = {esc(pct(total / ls.value))} of the data-loss "
                                            f"scale (incl. scale-invariant kernels)"))
        steps = analysis.context.total_steps()
        if steps:
            rows.append(("training length", f"{esc(g(steps))} steps"))
    for note in model.notes[:8]:
        rows.append(("note", esc(note)))
    return ("<h3>Model</h3>\n<dl class=\"summary\">\n" +
            "".join(f"<dt>{k}</dt><dd>{v}</dd>\n" for k, v in rows) + "</dl>\n")


def _findings(index: int, rep: FileReport) -> str:
    title = f"<h3 id=\"file-{index}-findings\">Findings ({len(rep.findings)})</h3>\n"
    if not rep.findings:
        return title + "<p class=\"ok\">No findings.</p>\n"
    rows = []
    for f in rep.findings:
        sev = f.severity.value
        measured = " <span class=\"tag\">measured</span>" if f.measured else ""
        rows.append(
            f"<tr class=\"finding sev-row-{sev}\" data-code=\"{esc(f.code)}\" data-severity=\"{sev}\" "
            f"data-layer=\"{esc(f.layer or '')}\">"
            f"<td>{_sev_label(sev)}</td><td><code>{esc(f.code)}</code></td><td>{esc(f.name)}{measured}</td>"
            f"<td>{esc(f.layer) if f.layer else '<span class=muted>model</span>'}"
            f"{('<br><span class=muted>' + esc(f.target) + '</span>') if f.target else ''}</td>"
            f"<td class=\"msg\">{esc(f.message)}</td>"
            f"<td class=\"fix\">{esc(f.remedy) if f.remedy else ''}</td></tr>")
    return (title + f"<div class=\"scroll\"><table class=\"findings\" aria-labelledby=\"file-{index}-findings\">\n"
            "<thead><tr><th scope=\"col\">severity</th><th scope=\"col\">code</th><th scope=\"col\">rule</th>"
            "<th scope=\"col\">layer</th><th scope=\"col\">message</th><th scope=\"col\">fix</th></tr></thead>\n"
            "<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>\n")


# ---------------------------------------------------------------------------
# per-layer numbers (the table and the bar chart share them)


@dataclass
class LayerRow:
    path: str
    class_name: str
    trainable_params: int
    non_trainable_params: int
    regularizers: list[str]
    penalty_init: float | None  # every regularized variable of the layer, as the terminal report sums it
    penalty_saved: float | None
    counted: float  # the part RL001 counts: active, not scale-invariant
    tags: list[str]

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params


def layer_rows(rep: FileReport) -> list[LayerRow]:
    model, analysis = rep.model, rep.analysis
    penalties = {(p.layer.path, p.variable.name): p for p in (analysis.penalties if analysis else [])}
    rows = []
    for layer in model.layers:
        regs, init, saved, counted = [], 0.0, 0.0, 0.0
        has_init = has_saved = False
        invariant = False
        for var in layer.variables:
            if var.regularizer is None:
                continue
            regs.append(f"{var.name}: {lam(var.regularizer)}")
            p = penalties.get((layer.path, var.name))
            if p is None:
                continue
            if p.penalty_init is not None:
                init += p.penalty_init
                has_init = True
            if p.penalty_saved is not None:
                saved += p.penalty_saved
                has_saved = True
            if p.active and not p.scale_invariant and p.penalty is not None:
                counted += p.penalty
            invariant = invariant or p.scale_invariant
        if layer.activity_regularizer is not None:
            regs.append(f"activity: {lam(layer.activity_regularizer)}")
        if not layer.variables and not regs:
            continue
        tags = []
        if not layer.trainable:
            tags.append("frozen")
        if layer.custom:
            tags.append("custom")
        if invariant:
            tags.append("scale-invariant")
        rows.append(LayerRow(layer.path, layer.class_name, layer.trainable_params, layer.non_trainable_params,
                             regs, init if has_init else None, saved if has_saved else None, counted, tags))
    return rows


def _layer_table(index: int, rep: FileReport, rows: list[LayerRow]) -> str:
    scale = rep.analysis.loss_scale.value if rep.analysis else None
    total_counted = sum(r.counted for r in rows)
    body = []
    for r in rows:
        tags = "".join(f" <span class=\"tag\">{esc(t)}</span>" for t in r.tags)
        share_scale = pct(r.penalty_init / scale) if r.penalty_init is not None and scale else ""
        share_rho = pct(r.counted / total_counted) if total_counted and r.counted else ""
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
            "<th scope=\"col\" class=\"num\" title=\"share of the penalty RL001 counts\">share of penalty</th>"
            "</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table></div>\n")


# ---------------------------------------------------------------------------
# SVG helpers


def _t(x: float, y: float, text: str, *, size: int = 12, anchor: str = "start", cls: str = "",
       weight: str = "", fill: str = INK, extra: str = "") -> str:
    attrs = f" class=\"{cls}\"" if cls else ""
    if weight:
        attrs += f" font-weight=\"{weight}\""
    return (f"<text x=\"{x:.1f}\" y=\"{y:.1f}\" font-size=\"{size}\" text-anchor=\"{anchor}\" "
            f"fill=\"{fill}\"{attrs}{extra}>{text}</text>")


def _patterns(prefix: str) -> str:
    return (
        "<defs>"
        f"<pattern id=\"{prefix}-hatch\" width=\"7\" height=\"7\" patternUnits=\"userSpaceOnUse\" "
        "patternTransform=\"rotate(45)\"><rect width=\"7\" height=\"7\" fill=\"#fbe3d2\"/>"
        f"<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"7\" stroke=\"{VERMILLION}\" stroke-width=\"2.2\" "
        "stroke-opacity=\"0.55\"/></pattern>"
        f"<pattern id=\"{prefix}-dots\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">"
        "<rect width=\"6\" height=\"6\" fill=\"#fdf3cf\"/>"
        f"<circle cx=\"3\" cy=\"3\" r=\"1.1\" fill=\"{ORANGE}\"/></pattern>"
        f"<pattern id=\"{prefix}-barhatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
        f"patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"{VERMILLION}\"/>"
        "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#ffffff\" stroke-width=\"1.6\" "
        "stroke-opacity=\"0.6\"/></pattern>"
        "</defs>")


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class LogScale:
    def __init__(self, lo: float, hi: float, p0: float, p1: float):
        self.lo, self.hi, self.p0, self.p1 = math.log10(lo), math.log10(hi), p0, p1

    def __call__(self, value: float) -> float:
        v = math.log10(max(value, 1e-300))
        return self.p0 + (v - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)

    def clamp(self, value: float) -> float:
        lo, hi = sorted((self.p0, self.p1))
        return min(max(self(value), lo), hi)

    def decades(self) -> list[int]:
        return list(range(math.ceil(self.lo - 1e-9), math.floor(self.hi + 1e-9) + 1))


def _decade_label(e: int) -> str:
    if -3 <= e <= 3:
        return g(10.0 ** e)
    return f"1e{e}"


def _decade_range(values: Iterable[float], max_span: int = 12) -> tuple[float, float]:
    vals = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    lo = math.floor(math.log10(min(vals)))
    hi = math.ceil(math.log10(max(vals)))
    if hi == lo:
        hi += 1
    if hi - lo > max_span:
        lo = hi - max_span
    return 10.0 ** lo, 10.0 ** hi


# ---------------------------------------------------------------------------
# bar chart: parameters and penalty share per layer


def _figure_bars(index: int, rep: FileReport, rows: list[LayerRow]) -> str:
    prefix = f"f{index}"
    total_params = rep.model.total_params or sum(r.params for r in rows) or 1
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
    x = lambda share: bar_x0 + share / axis_max * (bar_x1 - bar_x0)  # noqa: E731
    out = [
        f"<svg class=\"chart bars\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" role=\"img\" "
        f"aria-labelledby=\"{prefix}-bars-title {prefix}-bars-desc\" data-layers=\"{len(shown)}\" "
        f"xmlns=\"http://www.w3.org/2000/svg\">",
        f"<title id=\"{prefix}-bars-title\">Parameters and penalty share per layer</title>",
        f"<desc id=\"{prefix}-bars-desc\">" + esc("; ".join(
            f"{r.path}: {g(r.params)} parameters ({pct(r.params / total_params)}), penalty "
            f"{g(r.counted)} ({pct(r.counted / total_counted) if total_counted else 'n/a'} of the counted penalty)"
            for r in shown)) + "</desc>",
        _patterns(prefix),
    ]
    # legend
    out.append(f"<rect x=\"{bar_x0}\" y=\"12\" width=\"16\" height=\"12\" fill=\"{BLUE}\"/>")
    out.append(_t(bar_x0 + 22, 22, "parameters (share of the model's total)"))
    out.append(f"<rect x=\"{bar_x0 + 275}\" y=\"12\" width=\"16\" height=\"12\" fill=\"url(#{prefix}-barhatch)\" "
               f"stroke=\"{VERMILLION}\"/>")
    out.append(_t(bar_x0 + 297, 22, "penalty at init (share of the counted penalty)"))
    # grid
    for i in range(5):
        share = axis_max * i / 4
        gx = x(share)
        out.append(f"<line x1=\"{gx:.1f}\" y1=\"{top - 8}\" x2=\"{gx:.1f}\" y2=\"{height - 40}\" "
                   f"stroke=\"#d9d9d9\" stroke-width=\"1\"/>")
        out.append(_t(gx, height - 26, f"{share * 100:.4g}%", size=11, anchor="middle", fill=GREY))
    out.append(_t((bar_x0 + bar_x1) / 2, height - 8, "share of the model total (%)", size=12, anchor="middle"))
    out.append(f"<line x1=\"{bar_x0}\" y1=\"{top - 8}\" x2=\"{bar_x0}\" y2=\"{height - 40}\" stroke=\"{INK}\"/>")
    for i, r in enumerate(shown):
        y0 = top + i * row_h
        p_share = r.params / total_params
        c_share = r.counted / total_counted if total_counted else 0.0
        tag = f" ({', '.join(r.tags)})" if r.tags else ""
        out.append(f"<g class=\"bar-row\" data-layer=\"{esc(r.path)}\">")
        out.append(f"<title>{esc(r.path + tag)}</title>")
        out.append(_t(label_w, y0 + bar_h + 4, esc(_short(r.path, 27)), anchor="end", weight="600"))
        out.append(_t(label_w, y0 + bar_h + 18, esc(_short(r.class_name + tag, 36)), size=10, anchor="end",
                      fill=GREY))
        wp = max(x(p_share) - bar_x0, 1.0 if r.params else 0.0)
        out.append(f"<rect class=\"bar bar-params\" x=\"{bar_x0}\" y=\"{y0}\" width=\"{wp:.1f}\" height=\"{bar_h}\" "
                   f"fill=\"{BLUE}\" data-value=\"{r.params}\" data-share=\"{num_attr(p_share)}\"/>")
        out.append(_t(bar_x0 + wp + 5, y0 + bar_h - 2, esc(f"{g(r.params)} params \u00b7 {pct(p_share)}"),
                      size=11))
        yb = y0 + bar_h + 3
        wc = max(x(c_share) - bar_x0, 1.0 if r.counted else 0.0)
        out.append(f"<rect class=\"bar bar-penalty\" x=\"{bar_x0}\" y=\"{yb}\" width=\"{wc:.1f}\" "
                   f"height=\"{bar_h}\" fill=\"url(#{prefix}-barhatch)\" stroke=\"{VERMILLION}\" stroke-width=\"0.8\" "
                   f"data-value=\"{num_attr(r.counted)}\" data-share=\"{num_attr(c_share)}\"/>")
        if r.counted:
            ptext = f"penalty {g(r.counted)} \u00b7 {pct(c_share)}"
        elif r.penalty_init:
            ptext = "penalty not counted" + (f" ({r.tags[-1]})" if r.tags else "")
        else:
            ptext = "no penalty"
        out.append(_t(bar_x0 + wc + 5, yb + bar_h - 2, esc(ptext), size=11, fill=VERMILLION if r.counted else GREY))
        out.append("</g>")
    out.append("</svg>")
    note = f" {hidden} smaller layers are left out of the chart; the table lists them all." if hidden else ""
    return (f"<h3 id=\"file-{index}-bars\">Parameters and penalty by layer</h3>\n<figure class=\"chart-wrap\">"
            + "".join(out) +
            f"<figcaption>Each layer's parameter count (solid blue) and its share of the penalty at "
            f"initialisation that RL001 counts (hatched vermillion; frozen and scale-invariant kernels add "
            f"none). A layer whose penalty share is far above its parameter share carries a larger lambda or "
            f"larger initial weights than the rest.{esc(note)}</figcaption></figure>\n")


# ---------------------------------------------------------------------------
# lambda sweep


@dataclass
class Sweep:
    """The numbers behind the lambda chart, in multiples ``m`` of today's lambdas."""

    rho_today: float
    loss_scale: float
    penalties: list[Any]  # TensorPenalty, the ones RL001 counts
    lambdas: list[float]  # the distinct factors today
    single_factor: bool  # every counted tensor has one factor (no L1L2 with both): lambdas can be absolute
    family: str
    lr: float | None
    momentum: float
    l2_max: float | None  # the largest coupled L2 factor (worst case for the shrink)
    coupled_l2: float
    stability_limit: float
    decoupled: float | None

    @classmethod
    def of(cls, analysis) -> "Sweep":
        counted = [p for p in analysis.active_penalties() if p.penalty is not None]
        factors = [(p.l1, p.l2, p.regularizer.factor if p.regularizer.kind == "orthogonal" else 0.0)
                   for p in counted]
        lambdas = sorted({v for f in factors for v in f} - {0.0})
        single = all(sum(1 for v in f if v) == 1 for f in factors)
        scale = analysis.loss_scale.value
        dyn = analysis.dynamics
        l2s = [p.l2 for p in analysis.penalties if p.active and p.l2]
        return cls(rho_today=sum(p.penalty for p in counted) / scale, loss_scale=scale, penalties=counted,
                   lambdas=lambdas, single_factor=single, family=dyn.family, lr=dyn.lr, momentum=dyn.momentum,
                   l2_max=max(l2s) if l2s else None, coupled_l2=dyn.coupled_l2,
                   stability_limit=dyn.stability_limit, decoupled=dyn.decoupled_shrink)

    def rho(self, m: float) -> float:
        """Every Keras penalty (L1, L2, orthogonal) is linear in its factor:
        scale each tensor's penalty at init by ``m`` and add them up."""
        return sum(m * p.penalty for p in self.penalties) / self.loss_scale

    @property
    def sgd(self) -> bool:
        return self.family == "sgd" and self.lr is not None and bool(self.l2_max)

    def shrink(self, m: float) -> float:
        """r = 2*eta*lambda / (1-b) for the largest L2 scaled by m."""
        return 2.0 * self.lr * (self.l2_max * m + self.coupled_l2) / max(1e-12, 1.0 - self.momentum)

    def fraction(self, m: float) -> float:
        return 2.0 * self.lr * (self.l2_max * m + self.coupled_l2) / self.stability_limit

    def shrink_at_fraction(self, f: float) -> float:
        return f * self.stability_limit / max(1e-12, 1.0 - self.momentum)

    def m_at_fraction(self, f: float) -> float | None:
        m = (f * self.stability_limit / (2.0 * self.lr) - self.coupled_l2) / self.l2_max
        return m if m > 0 else None

    def safe_max(self, t: Thresholds) -> tuple[float | None, list[str]]:
        """The largest multiplier below the RL001 warning level and, under
        SGD, the RL002 warning level; with the reasons that bound it."""
        bounds = []
        if t.rho_warning is not None and self.rho_today > 0:
            bounds.append((t.rho_warning / self.rho_today, f"rho < {g(t.rho_warning)}"))
        if self.sgd and t.f_warning is not None:
            m = self.m_at_fraction(t.f_warning)
            bounds.append((m if m is not None else 0.0, f"f < {g(t.f_warning)}"))
        if not bounds:
            return None, []
        best = min(b for b, _ in bounds)
        return best, [why for b, why in bounds if b <= best * 1.0000001]

    def unique_lambda(self) -> float | None:
        return self.lambdas[0] if len(self.lambdas) == 1 and self.single_factor else None


def _figure_sweep(index: int, rep: FileReport, t: Thresholds) -> str:
    analysis = rep.analysis
    sw = Sweep.of(analysis)
    title = f"<h3 id=\"file-{index}-sweep\">What a different lambda would do</h3>\n"
    has_rho = sw.rho_today > 0
    if not has_rho and not sw.sgd and not sw.decoupled:
        why = ("no regularized tensor counts towards the penalty ratio (none, frozen, or scale-invariant)"
               if not analysis.penalties else "the counted penalties are zero")
        return title + f"<p class=\"muted\">Nothing to sweep: {esc(why)}.</p>\n"
    prefix = f"f{index}"
    width = 900
    x0, x1 = 92, 660
    xs = LogScale(10.0 ** -SWEEP_DECADES, 10.0 ** SWEEP_DECADES, x0, x1)
    ms = [10.0 ** (-SWEEP_DECADES + 2 * SWEEP_DECADES * i / (SWEEP_POINTS - 1)) for i in range(SWEEP_POINTS)]
    safe_m, safe_why = sw.safe_max(t)
    lam1 = sw.unique_lambda()
    panel_h = 210
    shrink_plot = sw.sgd or bool(sw.decoupled)
    p1_top = 44
    p1_h = panel_h if has_rho else 40
    p2_top = p1_top + p1_h + (74 if has_rho else 40)
    p2_h = panel_h if shrink_plot else 84
    height = p2_top + p2_h + (74 if shrink_plot else 24)
    xtitle_y = height - 14 if shrink_plot else p1_top + p1_h + 48
    if not shrink_plot:  # room for the x-axis title between the panels
        p2_top += 30
        height += 30
    out = [
        f"<svg class=\"chart sweep\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" role=\"img\" "
        f"aria-labelledby=\"{prefix}-sweep-title {prefix}-sweep-desc\" "
        f"data-rho-today=\"{num_attr(sw.rho_today)}\" data-safe-multiplier=\"{num_attr(safe_m)}\" "
        f"xmlns=\"http://www.w3.org/2000/svg\">",
        f"<title id=\"{prefix}-sweep-title\">Penalty ratio and per-step shrink against lambda (log-log)</title>",
        f"<desc id=\"{prefix}-sweep-desc\">{esc(_sweep_desc(sw, t, safe_m))}</desc>",
        _patterns(prefix),
    ]

    # -- safe range: lambdas left of safe_m, values under the warning level
    def safe_band(ys: LogScale, below: float | None) -> str:
        if safe_m is None or safe_m <= ms_lo():
            return ""
        xr = xs.clamp(safe_m)
        bottom = max(ys.p0, ys.p1)
        y_top = ys.clamp(below) if below is not None else min(ys.p0, ys.p1)
        if bottom - y_top < 2:
            return ""
        label = "safe" if xr - x0 < 70 else "safe range"
        return (f"<g class=\"safe\"><rect x=\"{x0}\" y=\"{y_top:.1f}\" width=\"{xr - x0:.1f}\" "
                f"height=\"{bottom - y_top:.1f}\" fill=\"{GREEN}\" fill-opacity=\"0.16\"/>"
                f"<path d=\"M{x0},{y_top:.1f} H{xr:.1f} V{bottom:.1f}\" fill=\"none\" stroke=\"{GREEN}\" "
                f"stroke-width=\"1.8\" stroke-dasharray=\"4 3\"/>"
                + (_t(x0 + 6, y_top + 14, label, size=11, weight="700", fill="#005a46") if xr - x0 > 34 else "")
                + "</g>")

    # -- panel 1: rho
    out.append(_t(x0, p1_top - 12, "Penalty / data loss  \u03c1(\u03bb)", size=13, weight="700"))
    if has_rho:
        levels = [sw.rho(ms[0]), sw.rho(ms[-1])] + [v for v in (t.rho_warning, t.rho_error) if v]
        ylo, yhi = _decade_range(levels)
        ys = LogScale(ylo, yhi, p1_top + panel_h, p1_top)
        out.append(f"<g class=\"panel panel-rho\" data-ymin=\"{num_attr(ylo)}\" data-ymax=\"{num_attr(yhi)}\">")
        out.append(f"<clipPath id=\"{prefix}-clip1\"><rect x=\"{x0}\" y=\"{p1_top}\" width=\"{x1 - x0}\" "
                   f"height=\"{panel_h}\"/></clipPath>")
        out.append(_zones(prefix, x0, x1, ys, [
            (t.rho_error, None, "error", f"RL001 error: \u03c1 \u2265 {g(t.rho_error)}"),
            (t.rho_warning, t.rho_error, "warning", f"RL001 warning: \u03c1 \u2265 {g(t.rho_warning)}")]))
        out.append(safe_band(ys, t.rho_warning))
        out.append(_y_axis(ys, x0, x1, "\u03c1 (penalty / data-loss scale)", p1_top, panel_h))
        path = _polyline(xs, ys, ms, sw.rho)
        out.append(f"<path class=\"curve curve-rho\" d=\"{path}\" fill=\"none\" stroke=\"{BLUE}\" stroke-width=\"2.6\" "
                   f"clip-path=\"url(#{prefix}-clip1)\"/>")
        out.append(_today_marker(xs, ys, sw.rho_today, f"today \u03c1 = {g(sw.rho_today)}", "circle", BLUE,
                                 p1_top, panel_h, x1))
        fix = _fix_multiplier(sw, t)
        if fix and fix > ms_lo():
            fx, fy = xs(fix), ys(sw.rho(fix))
            out.append(f"<path class=\"marker-fix\" d=\"M{fx:.1f},{fy - 7:.1f} L{fx + 7:.1f},{fy + 5:.1f} "
                       f"L{fx - 7:.1f},{fy + 5:.1f} Z\" fill=\"{GREEN}\" stroke=\"{INK}\" stroke-width=\"0.8\"/>")
            out.append(_t(fx + 10, fy + 16, esc(f"RL001 fix: \u00d7{g(fix, 2)}" +
                                                 (f" = {g(lam1 * fix)}" if lam1 else "")), size=11,
                          fill="#005a46", weight="600"))
        out.append("</g>")
        out.append(_x_axis(xs, p1_top, panel_h, lam1))
    else:
        why = ("no weight regularizer in this model" if not analysis.penalties else
               "every regularized tensor is frozen or scale-invariant")
        out.append(_t(x0, p1_top + 16, esc(f"Nothing to plot: {why}."), fill=GREY))

    # -- panel 2: shrink
    out.append(_t(x0, p2_top - 12, "Per-step shrink of an unsupported weight  r(\u03bb)", size=13, weight="700"))
    out.append(_shrink_panel(prefix, sw, t, xs, ms, x0, x1, p2_top, p2_h, safe_band))
    if shrink_plot:
        out.append(_x_axis(xs, p2_top, p2_h, lam1))
    # x-axis title
    if lam1:
        xlabel = f"\u03bb, all lambdas scaled together (today \u03bb = {g(lam1)})"
    elif sw.lambdas:
        xlabel = (f"multiple of today's lambdas ({', '.join(g(v) for v in sw.lambdas[:4])}"
                  f"{', ...' if len(sw.lambdas) > 4 else ''})")
    else:
        xlabel = "multiple of a regularizer's lambda (none today; decoupled decay does not depend on it)"
    out.append(_t((x0 + x1) / 2, xtitle_y, esc(xlabel), anchor="middle"))
    # legend on the right
    out.append(_legend(prefix, x1 + 14, p1_top + 4, sw, t, safe_m, safe_why, lam1))
    out.append("</svg>")
    return (title + "<figure class=\"chart-wrap\">" + "".join(out) +
            f"<figcaption>{_sweep_caption(sw, t, safe_m, safe_why, lam1)}</figcaption></figure>\n")


def _polyline(xs: LogScale, ys: LogScale, ms: list[float], fn) -> str:
    pts = []
    for m in ms:
        v = fn(m)
        if v is None or v <= 0 or not math.isfinite(v):
            continue
        pts.append(f"{xs(m):.1f},{ys(v):.1f}")
    return "M" + " L".join(pts) if pts else ""


def _zones(prefix: str, x0: float, x1: float, ys: LogScale, zones) -> str:
    """Horizontal bands ``[lo, hi)`` with a pattern and a text label."""
    out = []
    top, bottom = min(ys.p0, ys.p1), max(ys.p0, ys.p1)
    for lo, hi, kind, label in zones:
        if lo is None:
            continue
        y_lo = ys.clamp(lo)
        y_hi = ys.clamp(hi) if hi is not None else top
        if y_lo - y_hi < 1:
            continue
        fill = f"url(#{prefix}-hatch)" if kind == "error" else f"url(#{prefix}-dots)"
        stroke = VERMILLION if kind == "error" else ORANGE
        out.append(f"<g class=\"zone zone-{kind}\"><rect x=\"{x0}\" y=\"{y_hi:.1f}\" width=\"{x1 - x0}\" "
                   f"height=\"{y_lo - y_hi:.1f}\" fill=\"{fill}\" fill-opacity=\"0.75\"/>"
                   f"<line x1=\"{x0}\" y1=\"{y_lo:.1f}\" x2=\"{x1}\" y2=\"{y_lo:.1f}\" stroke=\"{stroke}\" "
                   f"stroke-width=\"1.4\" stroke-dasharray=\"6 3\"/>")
        if y_lo - y_hi >= 14:
            # curves rise with lambda: the error band is clear at its left end,
            # the warning band (crossed lower down) at its right end
            tw = len(label) * 6.3 + 8
            lx = x0 + 4 if kind == "error" else x1 - 4 - tw
            out.append(f"<rect x=\"{lx:.0f}\" y=\"{y_hi + 3:.1f}\" width=\"{tw:.0f}\" height=\"15\" "
                       "fill=\"#ffffff\" fill-opacity=\"0.85\" rx=\"2\"/>")
            out.append(_t(lx + 4, y_hi + 14, esc(label), size=11, weight="600",
                          fill="#9a3a00" if kind == "error" else "#7a5a00"))
        out.append("</g>")
    if out:
        return "".join(out)
    return ""


def _y_axis(ys: LogScale, x0: float, x1: float, label: str, top: float, h: float) -> str:
    out = [f"<rect x=\"{x0}\" y=\"{top}\" width=\"{x1 - x0}\" height=\"{h}\" fill=\"none\" stroke=\"{INK}\" "
           "stroke-width=\"1\"/>"]
    decades = ys.decades()
    step = max(1, math.ceil(len(decades) / 8))
    for e in decades:
        y = ys(10.0 ** e)
        out.append(f"<line x1=\"{x0}\" y1=\"{y:.1f}\" x2=\"{x1}\" y2=\"{y:.1f}\" stroke=\"#000\" "
                   "stroke-opacity=\"0.08\"/>")
        if e % step == 0:
            out.append(f"<line x1=\"{x0 - 5}\" y1=\"{y:.1f}\" x2=\"{x0}\" y2=\"{y:.1f}\" stroke=\"{INK}\"/>")
            out.append(_t(x0 - 8, y + 4, esc(_decade_label(e)), size=11, anchor="end", fill=GREY))
    cy = top + h / 2
    out.append(_t(18, cy, esc(label), size=11, anchor="middle", extra=f" transform=\"rotate(-90 18 {cy:.1f})\""))
    return "".join(out)


def _x_axis(xs: LogScale, top: float, h: float, lam1: float | None) -> str:
    out = []
    y = top + h
    for e in xs.decades():
        x = xs(10.0 ** e)
        out.append(f"<line x1=\"{x:.1f}\" y1=\"{top}\" x2=\"{x:.1f}\" y2=\"{y}\" "
                   "stroke=\"#000\" stroke-opacity=\"0.08\"/>")
        out.append(f"<line x1=\"{x:.1f}\" y1=\"{y}\" x2=\"{x:.1f}\" y2=\"{y + 5}\" stroke=\"{INK}\"/>")
        mult = "\u00d7" + (g(10.0 ** e) if -3 <= e <= 3 else f"1e{e}")
        out.append(_t(x, y + 17, esc(mult), size=11, anchor="middle", fill=INK if e == 0 else GREY,
                      weight="700" if e == 0 else ""))
        if lam1:
            out.append(_t(x, y + 30, esc(g(lam1 * 10.0 ** e, 2)), size=10, anchor="middle", fill=GREY))
    return "".join(out)


def _today_marker(xs: LogScale, ys: LogScale, value: float, label: str, shape: str, colour: str,
                  top: float, h: float, x1: float) -> str:
    x, y = xs(1.0), ys(value)
    inside = min(ys.p0, ys.p1) <= y <= max(ys.p0, ys.p1)
    out = [f"<g class=\"today\"><line x1=\"{x:.1f}\" y1=\"{top}\" x2=\"{x:.1f}\" y2=\"{top + h}\" stroke=\"{INK}\" "
           "stroke-width=\"1.4\" stroke-dasharray=\"5 3\"/>"]
    if inside:
        if shape == "circle":
            out.append(f"<circle cx=\"{x:.1f}\" cy=\"{y:.1f}\" r=\"5.5\" fill=\"{colour}\" stroke=\"#fff\" "
                       "stroke-width=\"1.5\"/>")
        else:
            out.append(f"<path d=\"M{x:.1f},{y - 7:.1f} L{x + 7:.1f},{y:.1f} L{x:.1f},{y + 7:.1f} "
                       f"L{x - 7:.1f},{y:.1f} Z\" "
                       f"fill=\"{colour}\" stroke=\"#fff\" stroke-width=\"1.5\"/>")
        tw = len(label) * 6.6 + 10
        # the curves rise to the right: above-left of the point is clear of them
        lx = x - 9 - tw
        ly = y - 10 if y - 24 > top else y + 22
        out.append(f"<rect x=\"{lx:.1f}\" y=\"{ly - 12:.1f}\" width=\"{tw:.0f}\" height=\"16\" fill=\"#fff\" "
                   f"fill-opacity=\"0.9\" rx=\"2\"/>")
        out.append(_t(lx + 5, ly, esc(label), size=12, weight="700"))
    out.append("</g>")
    return "".join(out)


def _shrink_panel(prefix: str, sw: Sweep, t: Thresholds, xs: LogScale, ms: list[float], x0: float, x1: float,
                  top: float, h: float, safe_band) -> str:
    out = []
    if not sw.sgd and not sw.decoupled:
        if sw.lr is None:
            msg = ["The learning rate is unknown (no optimizer saved): set --optimizer and --learning-rate",
                   "to see the per-step shrink."]
        elif sw.family == "adaptive":
            msg = [f"Adam-family optimizer: the coupled penalty gradient is normalised per weight, so a weight",
                   f"with no data gradient moves about lr = {g(sw.lr)} per step whatever \u03bb is;",
                   "no \u03bb-dependent shrink to plot (decoupled weight_decay would be)."]
        elif not sw.l2_max:
            msg = ["No coupled L2 under this optimizer: no per-step shrink to plot."]
        else:
            msg = [f"Optimizer family '{sw.family}': reglint has no per-step shrink model for it."]
        out.append(f"<rect x=\"{x0}\" y=\"{top}\" width=\"{x1 - x0}\" height=\"{h}\" fill=\"#f6f6f6\" "
                   f"stroke=\"{INK}\"/>")
        for i, line in enumerate(msg):
            out.append(_t(x0 + 16, top + 34 + 18 * i, esc(line), fill=INK))
        return f"<g class=\"panel panel-shrink\" data-kind=\"none\">{''.join(out)}</g>"
    values = []
    if sw.sgd:
        values += [sw.shrink(ms[0]), sw.shrink(ms[-1])]
        values += [sw.shrink_at_fraction(f) for f in (t.f_warning, t.f_error) if f]
    if sw.decoupled:
        values.append(sw.decoupled)
        values += [v for v in (t.decay_warning, t.decay_error) if v]
    ylo, yhi = _decade_range(values)
    if not sw.sgd:
        ylo /= 10.0  # room under RL003's warning level
    ys = LogScale(ylo, yhi, top + h, top)
    kind = "sgd" if sw.sgd else "decoupled"
    out.append(f"<g class=\"panel panel-shrink\" data-kind=\"{kind}\" data-ymin=\"{num_attr(ylo)}\" "
               f"data-ymax=\"{num_attr(yhi)}\">")
    out.append(f"<clipPath id=\"{prefix}-clip2\"><rect x=\"{x0}\" y=\"{top}\" width=\"{x1 - x0}\" height=\"{h}\"/>"
               "</clipPath>")
    if sw.sgd:
        zones = [(sw.shrink_at_fraction(t.f_error) if t.f_error else None, None, "error",
                  f"RL002 error: f \u2265 {g(t.f_error)}, diverges"),
                 (sw.shrink_at_fraction(t.f_warning) if t.f_warning else None,
                  sw.shrink_at_fraction(t.f_error) if t.f_error else None, "warning",
                  f"RL002 warning: f \u2265 {g(t.f_warning)} of the stability budget")]
        out.append(_zones(prefix, x0, x1, ys, zones))
    else:  # decoupled decay only: RL003's levels are the zones
        out.append(_zones(prefix, x0, x1, ys, [
            (t.decay_error, None, "error", f"RL003 error: lr\u00b7wd \u2265 {g(t.decay_error)}"),
            (t.decay_warning, t.decay_error, "warning", f"RL003 warning: lr\u00b7wd \u2265 {g(t.decay_warning)}")]))
    if sw.sgd:
        out.append(safe_band(ys, sw.shrink_at_fraction(t.f_warning) if t.f_warning else None))
    out.append(_y_axis(ys, x0, x1, "r: fraction shrunk per step", top, h))
    if sw.decoupled:
        y = ys(sw.decoupled)
        out.append(f"<g class=\"decoupled\"><line x1=\"{x0}\" y1=\"{y:.1f}\" x2=\"{x1}\" y2=\"{y:.1f}\" "
                   f"stroke=\"{PURPLE}\" stroke-width=\"2.4\" stroke-dasharray=\"10 4\"/>")
        label = f"decoupled weight_decay: lr \u00d7 wd = {g(sw.decoupled)} per step (independent of \u03bb)"
        lx = x0 + (x1 - x0) * 0.55 - len(label) * 3.1
        ly = y - 6 if y - 20 > top else y + 16
        out.append(f"<rect x=\"{lx - 4:.0f}\" y=\"{ly - 12:.1f}\" width=\"{len(label) * 6.2 + 8:.0f}\" "
                   "height=\"15\" fill=\"#fff\" fill-opacity=\"0.9\" rx=\"2\"/>")
        out.append(_t(lx, ly, esc(label), size=11, fill="#8a3b6b", weight="700"))
        for lvl, kind_ in ((t.decay_warning, "warning"), (t.decay_error, "error")):
            if sw.sgd and lvl and ylo <= lvl <= yhi:
                yl = ys(lvl)
                out.append(f"<line x1=\"{x1 - 40}\" y1=\"{yl:.1f}\" x2=\"{x1}\" y2=\"{yl:.1f}\" stroke=\"{PURPLE}\" "
                           "stroke-width=\"1.2\"/>")
                out.append(_t(x1 - 44, yl + 4, esc(f"RL003 {kind_} {g(lvl)}"), size=10, anchor="end",
                              fill="#8a3b6b"))
        out.append("</g>")
    if sw.sgd:
        path = _polyline(xs, ys, ms, sw.shrink)
        out.append(f"<path class=\"curve curve-shrink\" d=\"{path}\" fill=\"none\" stroke=\"{ORANGE}\" "
                   f"stroke-width=\"2.6\" clip-path=\"url(#{prefix}-clip2)\"/>")
        # a second, dashed copy in dark ink so the curve does not rely on hue alone
        out.append(f"<path d=\"{path}\" fill=\"none\" stroke=\"{INK}\" stroke-width=\"0.9\" stroke-dasharray=\"1 4\" "
                   f"clip-path=\"url(#{prefix}-clip2)\"/>")
        r0 = sw.shrink(1.0)
        out.append(_today_marker(xs, ys, r0, f"today r = {g(r0)}, f = {g(sw.fraction(1.0), 2)}", "diamond", ORANGE,
                                 top, h, x1))
    elif sw.lambdas:
        x = xs(1.0)
        out.append(f"<line x1=\"{x:.1f}\" y1=\"{top}\" x2=\"{x:.1f}\" y2=\"{top + h}\" stroke=\"{INK}\" "
                   "stroke-width=\"1.4\" stroke-dasharray=\"5 3\"/>")
        if sw.family == "adaptive" and sw.l2_max:
            note = f"Adam-family: the coupled L2 is normalised (moves ~lr = {g(sw.lr)} per step), no fractional shrink"
            out.append(f"<rect x=\"{x0 + 4}\" y=\"{top + h - 22}\" width=\"{len(note) * 6.1 + 10:.0f}\" "
                       "height=\"16\" fill=\"#fff\" fill-opacity=\"0.9\" rx=\"2\"/>")
            out.append(_t(x0 + 9, top + h - 10, esc(note), size=11, fill=INK))
    out.append("</g>")
    return "".join(out)


def _legend(prefix: str, x: float, y: float, sw: Sweep, t: Thresholds, safe_m: float | None, why: list[str],
            lam1: float | None) -> str:
    """Symbols and words: every encoding in the chart has a text label."""
    out = ["<g class=\"legend\">"]
    yy = y

    def item(symbol: str, lines: list[str]) -> None:
        nonlocal yy
        out.append(symbol.replace("@X", f"{x:.1f}").replace("@Y", f"{yy:.1f}")
                   .replace("@R", f"{x + 22:.1f}").replace("@M", f"{x + 11:.1f}")
                   .replace("@T", f"{yy - 7:.1f}").replace("@B", f"{yy + 7:.1f}"))
        for i, line in enumerate(lines):
            out.append(_t(x + 28, yy + 4 + i * 14, esc(line), size=11))
        yy += 14 * len(lines) + 10

    if sw.rho_today > 0:
        item(f"<line x1=\"@X\" y1=\"@Y\" x2=\"@R\" y2=\"@Y\" stroke=\"{BLUE}\" stroke-width=\"2.6\"/>",
             ["\u03c1(\u03bb): penalty ratio"])
    if sw.sgd:
        item(f"<line x1=\"@X\" y1=\"@Y\" x2=\"@R\" y2=\"@Y\" stroke=\"{ORANGE}\" stroke-width=\"2.6\"/>",
             ["r(\u03bb) = 2\u00b7lr\u00b7\u03bb/(1\u2212b)", f"SGD, largest L2 {g(sw.l2_max)}"])
    if sw.decoupled:
        item(f"<line x1=\"@X\" y1=\"@Y\" x2=\"@R\" y2=\"@Y\" stroke=\"{PURPLE}\" stroke-width=\"2.4\" "
             "stroke-dasharray=\"6 3\"/>", ["decoupled decay lr\u00b7wd"])
    if sw.lambdas:
        item(f"<line x1=\"@M\" y1=\"@T\" x2=\"@M\" y2=\"@B\" stroke=\"{INK}\" stroke-width=\"1.4\" "
             "stroke-dasharray=\"3 2\"/>", ["today's \u03bb (\u00d71)"])
    item(f"<rect x=\"@X\" y=\"@T\" width=\"22\" height=\"14\" fill=\"url(#{prefix}-hatch)\" "
         f"stroke=\"{VERMILLION}\" stroke-width=\"0.6\"/>", ["error zone (hatched)"])
    item(f"<rect x=\"@X\" y=\"@T\" width=\"22\" height=\"14\" fill=\"url(#{prefix}-dots)\" "
         f"stroke=\"{ORANGE}\" stroke-width=\"0.6\"/>", ["warning zone (dotted)"])
    if safe_m is not None:
        bound = (f"\u03bb \u2264 {g(lam1 * safe_m, 2)}" if lam1 else f"\u00d7 \u2264 {g(safe_m, 2)}") \
            if safe_m > 0 else "none"
        item(f"<rect x=\"@X\" y=\"@T\" width=\"22\" height=\"14\" fill=\"{GREEN}\" fill-opacity=\"0.18\" "
             f"stroke=\"{GREEN}\" stroke-dasharray=\"2 2\"/>",
             ["safe range (green)", bound] + [f"({w})" for w in why])
    fix = _fix_multiplier(sw, t)
    if fix is not None and fix > ms_lo():
        item(f"<path d=\"M@M,@T l7,12 l-14,0 Z\" fill=\"{GREEN}\" stroke=\"{INK}\" stroke-width=\"0.8\"/>",
             ["RL001's suggested \u03bb"])
    out.append("</g>")
    return "".join(out)


def _fix_multiplier(sw: Sweep, t: Thresholds) -> float | None:
    """RL001's remedy: the factor on every lambda that its finding suggests."""
    from reglint.rules.rl001_penalty_dominates_loss import remedy_ratio

    warn = t.rho_warning
    if not warn or sw.rho_today < warn:
        return None
    return remedy_ratio(warn) / sw.rho_today


def _sweep_desc(sw: Sweep, t: Thresholds, safe_m: float | None) -> str:
    parts = []
    if sw.rho_today > 0:
        parts.append(f"Penalty ratio today {g(sw.rho_today)}; it scales linearly with lambda, from "
                     f"{g(sw.rho(ms_lo()))} at one thousandth of today's lambda to {g(sw.rho(ms_hi()))} at "
                     f"a thousand times.")
    if sw.sgd:
        parts.append(f"Per-step shrink under SGD today {g(sw.shrink(1.0))}, stability fraction "
                     f"{g(sw.fraction(1.0), 2)}.")
    if sw.decoupled:
        parts.append(f"Decoupled weight decay shrinks {g(sw.decoupled)} per step whatever lambda is.")
    if safe_m is not None:
        parts.append(f"Safe range: up to {g(safe_m, 2)} times today's lambda.")
    return " ".join(parts)


def ms_lo() -> float:
    return 10.0 ** -SWEEP_DECADES


def ms_hi() -> float:
    return 10.0 ** SWEEP_DECADES


def _sweep_caption(sw: Sweep, t: Thresholds, safe_m: float | None, why: list[str], lam1: float | None) -> str:
    items = []
    if sw.rho_today > 0:
        items.append(
            f"<b>Top:</b> \u03c1(\u03bb) = \u03a3<sub>t</sub> P<sub>t</sub>(\u03bb) / L<sub>chance</sub> over the "
            f"{len(sw.penalties)} regularized tensor{'s' if len(sw.penalties) != 1 else ''} RL001 counts, with every "
            f"lambda scaled by the same factor (Keras penalties are linear in their factor). Today "
            f"\u03c1 = {esc(g(sw.rho_today))} against a data-loss scale of {esc(g(sw.loss_scale))}; RL001 warns "
            f"at {esc(g(t.rho_warning))} and errs at {esc(g(t.rho_error))}.")
    if sw.sgd:
        items.append(
            f"<b>Bottom:</b> under SGD (lr {esc(g(sw.lr))}, momentum {esc(g(sw.momentum))}) an unsupported weight "
            f"shrinks by r = 2\u00b7lr\u00b7\u03bb/(1\u2212b) per step, drawn for the largest L2 "
            f"({esc(g(sw.l2_max))}); the penalty alone uses f = 2\u00b7lr\u00b7\u03bb/S of the stability "
            f"budget S = {esc(g(sw.stability_limit))}: RL002 warns at f = {esc(g(t.f_warning))} and training "
            f"diverges at f = {esc(g(t.f_error))} (\u03bb = {esc(g(_lam_at_f(sw, t.f_error)))}).")
    elif sw.family == "adaptive" and sw.lr is not None and sw.l2_max:
        items.append(
            "<b>Bottom:</b> under an Adam-family optimizer the coupled penalty gradient 2\u03bbw is normalised "
            "like any gradient, so a weight with no data gradient moves about lr per step whatever \u03bb is; "
            "only decoupled weight_decay gives a \u03bb-free fractional shrink.")
    if sw.decoupled:
        items.append(f"Decoupled weight_decay shrinks every weight by lr\u00b7wd = {esc(g(sw.decoupled))} per step "
                     f"(horizontal line; RL003 warns at {esc(g(t.decay_warning))}, errs at "
                     f"{esc(g(t.decay_error))}).")
    if safe_m is not None:
        where = f"\u03bb \u2264 {esc(g(lam1 * safe_m))}" if lam1 else f"lambdas \u00d7 \u2264 {esc(g(safe_m, 2))}"
        state = "today's lambda is inside it" if safe_m >= 1 else \
            f"today's lambda is {esc(g(1 / safe_m, 2))}\u00d7 too large" if safe_m > 0 else \
            "no lambda is safe at this learning rate"
        items.append(f"<b>Safe range</b> (green): {where} ({esc(' and '.join(why))}); {state}.")
    return "<ul class=\"caption\">" + "".join(f"<li>{x}</li>" for x in items) + "</ul>"


def _lam_at_f(sw: Sweep, f: float | None) -> float | None:
    if f is None:
        return None
    m = sw.m_at_fraction(f)
    return None if m is None else m * sw.l2_max


# ---------------------------------------------------------------------------
# profile (``reglint profile`` may add a ``profile`` key)


def _find_profile(rep: FileReport, fd: dict) -> Any:
    """A measurement, wherever a profile run put it: the file's JSON entry,
    its ``model.analysis``, or an attribute of the ``FileReport``."""
    for candidate in (fd.get("profile"), ((fd.get("model") or {}).get("analysis") or {}).get("profile"),
                      getattr(rep, "profile", None)):
        if candidate is not None:
            return candidate.to_dict() if hasattr(candidate, "to_dict") else candidate
    return None


PROFILE_KEYS = ("device", "device_kind", "seconds", "data", "loss", "optimizer", "initial", "variables",
                "layer_penalties", "steps", "outcome", "notes")


def _profile(index: int, profile: Any, ad: dict) -> str:
    """``reglint profile``'s measurement: summary, per-variable gradients and
    the short run's trajectory; keys it does not know as generic tables."""
    title = f"<h3 id=\"file-{index}-profile\">Profile (measured)</h3>\n"
    if not isinstance(profile, dict):
        return title + f"<pre>{esc(json.dumps(profile, indent=1, default=repr))}</pre>\n"
    out = [title]
    rows: list[tuple[str, str]] = []
    if profile.get("device"):
        rows.append(("device", esc(profile["device"])))
    data = profile.get("data")
    if isinstance(data, dict):
        rows.append(("data", esc(f"{data.get('source', '?')}" + (f" {data['path']}" if data.get("path") else "")
                                 + (f", {g(data['samples'])} samples" if data.get("samples") else "")
                                 + (f", batch {g(data['batch_size'])}" if data.get("batch_size") else ""))))
    steps = profile.get("steps")
    if isinstance(steps, dict):
        rows.append(("steps", esc(f"{g(steps.get('taken'))} of {g(steps.get('requested'))} taken")))
    initial = profile.get("initial")
    if isinstance(initial, dict):
        static = ad.get("penalty_ratio")
        static_text = f" (static estimate {_g(static)})" if static is not None else ""
        rows.append(("at the loaded weights", esc(
            f"data loss {_g(initial.get('data_loss'))}, penalty {_g(initial.get('penalty'))} "
            f"(weights {_g(initial.get('weight_penalty'))}); measured penalty / data loss "
            f"{_g(initial.get('penalty_ratio'))}{static_text}")))
    outcome = profile.get("outcome")
    if isinstance(outcome, dict):
        label = str(outcome.get("label", "?"))
        sev = {"diverged": "error", "collapsing": "error", "stalled": "warning"}.get(label, "info")
        rows.append(("outcome", f"{_sev_label(sev, label)} {esc(outcome.get('reason') or '')}"))
    seconds = profile.get("seconds")
    if isinstance(seconds, dict):
        rows.append(("time", esc(", ".join(f"{k} {_g(v)} s" for k, v in seconds.items()))))
    for note in profile.get("notes") or []:
        rows.append(("note", esc(note)))
    scalars = {k: v for k, v in profile.items() if k not in PROFILE_KEYS and not isinstance(v, (list, dict))}
    rows += [(esc(k), _num_text(v)) for k, v in scalars.items()]
    if rows:
        out.append("<dl class=\"summary\">" + "".join(f"<dt>{k}</dt><dd>{v}</dd>\n" for k, v in rows) + "</dl>\n")
    variables = profile.get("variables")
    if isinstance(variables, list) and variables and all(isinstance(v, dict) for v in variables):
        out.append(_profile_variables(index, variables))
    if isinstance(steps, dict) and isinstance(steps.get("trajectory"), list) and steps["trajectory"]:
        out.append(_figure_trajectory(index, steps["trajectory"], outcome if isinstance(outcome, dict) else {}))
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


def _g(value: Any, digits: int = 3) -> str:
    return g(value, digits) if isinstance(value, (int, float)) and not isinstance(value, bool) else \
        ("?" if value is None else str(value))


def _profile_variables(index: int, variables: list[dict]) -> str:
    body = []
    for v in variables:
        reg = v.get("regularizer")
        reg_text = ", ".join(f"{k} {_g(x)}" if k != "class" else str(x) for k, x in reg.items()) \
            if isinstance(reg, dict) else "activity only"
        ratio = v.get("ratio")
        high = isinstance(ratio, (int, float)) and ratio >= 1
        body.append(
            f"<tr data-layer=\"{esc(v.get('layer', ''))}\" data-ratio=\"{num_attr(ratio)}\">"
            f"<th scope=\"row\">{esc(v.get('layer', ''))}</th><td>{esc(v.get('variable', ''))}</td>"
            f"<td class=\"num\">{esc(_g(v.get('params')))}</td><td class=\"regs\">{esc(reg_text)}</td>"
            f"<td class=\"num\">{esc(_g(v.get('penalty')))}</td>"
            f"<td class=\"num\">{esc(pct(v['share'])) if isinstance(v.get('share'), (int, float)) else ''}</td>"
            f"<td class=\"num\">{esc(_g(v.get('grad_data_norm')))}</td>"
            f"<td class=\"num\">{esc(_g(v.get('grad_penalty_norm')))}</td>"
            f"<td class=\"num\">{_sev_label('warning', _g(ratio, 2)) if high else esc(_g(ratio, 2))}</td>"
            f"<td class=\"num\">{esc(_g(v.get('update_ratio'), 2))}</td></tr>")
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
    points = [(s.get("step"), s.get("data_loss"), s.get("penalty")) for s in trajectory if isinstance(s, dict)]
    points = [(int(st), dl, pe) for st, dl, pe in points if isinstance(st, (int, float))]
    finite = [v for _, dl, pe in points for v in (dl, pe)
              if isinstance(v, (int, float)) and math.isfinite(v) and v > 0]
    trivial = outcome.get("trivial_loss")
    if isinstance(trivial, (int, float)) and math.isfinite(trivial) and trivial > 0:
        finite.append(trivial)
    else:
        trivial = None
    if len(points) < 1 or not finite:
        return ""
    prefix = f"f{index}"
    width, height, x0, x1, top, bottom = 900, 260, 92, 660, 20, 210
    last = max(st for st, _, _ in points)
    first = min(st for st, _, _ in points)
    xs = lambda st: x0 + (st - first) / max(1, last - first) * (x1 - x0)  # noqa: E731
    ylo, yhi = _decade_range(finite)
    ys = LogScale(ylo, yhi, bottom, top)

    def line(idx: int) -> str:
        pts = [f"{xs(p[0]):.1f},{ys(p[idx]):.1f}" for p in points
               if isinstance(p[idx], (int, float)) and math.isfinite(p[idx]) and p[idx] > 0]
        return "M" + " L".join(pts) if pts else ""

    out = [f"<svg class=\"chart trajectory\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" role=\"img\" "
           f"aria-labelledby=\"{prefix}-traj-title\" xmlns=\"http://www.w3.org/2000/svg\">",
           f"<title id=\"{prefix}-traj-title\">Data loss and penalty over {len(points)} profiled steps: data loss "
           f"{esc(_g(points[0][1]))} to {esc(_g(points[-1][1]))}, penalty {esc(_g(points[0][2]))} to "
           f"{esc(_g(points[-1][2]))}</title>",
           _y_axis(ys, x0, x1, "loss (log)", top, bottom - top)]
    for st in sorted({first, last, *range(first, last + 1, max(1, (last - first) // 5 or 1))}):
        out.append(_t(xs(st), bottom + 16, str(st), size=11, anchor="middle", fill=GREY))
    out.append(_t((x0 + x1) / 2, bottom + 36, "optimizer step", anchor="middle"))
    if trivial is not None:
        y = ys(trivial)
        out.append(f"<line x1=\"{x0}\" y1=\"{y:.1f}\" x2=\"{x1}\" y2=\"{y:.1f}\" stroke=\"{GREY}\" "
                   "stroke-width=\"1.4\" stroke-dasharray=\"2 3\"/>")
    out.append(f"<path class=\"curve curve-data-loss\" d=\"{line(1)}\" fill=\"none\" stroke=\"{BLUE}\" "
               "stroke-width=\"2.4\"/>")
    out.append(f"<path class=\"curve curve-penalty\" d=\"{line(2)}\" fill=\"none\" stroke=\"{VERMILLION}\" "
               "stroke-width=\"2.4\" stroke-dasharray=\"7 3\"/>")
    lx, ly = x1 + 14, top + 10
    out.append(f"<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{lx + 22}\" y2=\"{ly}\" stroke=\"{BLUE}\" stroke-width=\"2.4\"/>")
    out.append(_t(lx + 28, ly + 4, "data loss (solid)", size=11))
    out.append(f"<line x1=\"{lx}\" y1=\"{ly + 20}\" x2=\"{lx + 22}\" y2=\"{ly + 20}\" stroke=\"{VERMILLION}\" "
               "stroke-width=\"2.4\" stroke-dasharray=\"7 3\"/>")
    out.append(_t(lx + 28, ly + 24, "penalty (dashed)", size=11))
    if trivial is not None:
        out.append(f"<line x1=\"{lx}\" y1=\"{ly + 40}\" x2=\"{lx + 22}\" y2=\"{ly + 40}\" stroke=\"{GREY}\" "
                   "stroke-width=\"1.4\" stroke-dasharray=\"2 3\"/>")
        out.append(_t(lx + 28, ly + 44, f"constant prediction {_g(trivial)}", size=11))
    out.append("</svg>")
    return (f"<h4>Short training run</h4>\n<figure class=\"chart-wrap\">" + "".join(out) +
            "<figcaption>Batch data loss and total penalty at each profiled step (before the update), on a "
            "log scale; the dotted line is the loss of the best constant prediction on the probe batch.</figcaption>"
            "</figure>\n")


def _cell(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"<td class=\"num\">{_num_text(value)}</td>"
    if isinstance(value, (list, dict)):
        return f"<td>{esc(json.dumps(value, default=repr))}</td>"
    return f"<td>{'' if value is None else esc(value)}</td>"


def _dict_table(caption: str, rows: list[dict]) -> str:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>" for row in rows)
    return ("<div class=\"scroll\"><table class=\"profile\"><caption>" + esc(caption) + "</caption><thead><tr>"
            + "".join(f"<th scope=\"col\">{esc(c)}</th>" for c in columns) + "</tr></thead><tbody>"
            + body + "</tbody></table></div>\n")


# ---------------------------------------------------------------------------

CSS = """
:root { --ink: #1a1a1a; --muted: #5f5f5f; --line: #d9d9d9; --bg: #ffffff; --panel: #f7f7f5;
  --err: #D55E00; --warn: #E69F00; --info: #0072B2; --ok: #009E73; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 1180px; padding: 24px 28px 40px; color: var(--ink); background: var(--bg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 0 0 12px; display: flex; flex-wrap: wrap; gap: 10px; align-items: baseline; }
h3 { font-size: 16px; margin: 26px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h4 { font-size: 14.5px; margin: 18px 0 6px; }
code, .path { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
.path { word-break: break-all; }
header.page { border-bottom: 3px solid var(--ink); padding-bottom: 10px; margin-bottom: 18px; }
.summary { margin: 4px 0; font-size: 16px; }
.chips { margin: 6px 0 0; display: flex; gap: 8px; flex-wrap: wrap; }
.chip, .badge { display: inline-block; border-radius: 999px; padding: 1px 10px; font-size: 13px;
  font-weight: 600; border: 1.5px solid currentColor; }
.badge.ok { color: #006b4f; }
.sev-error { color: #a33f00; } .sev-warning { color: #7a5300; } .sev-info { color: #005a8c; }
.sev { font-weight: 700; white-space: nowrap; }
nav.toc { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 16px;
  margin-bottom: 22px; }
nav.toc h2 { font-size: 17px; margin: 0 0 6px; }
section.file { border: 1px solid var(--line); border-radius: 8px; padding: 18px 22px 22px; margin: 0 0 28px; }
.unreadable { background: #fbe3d2; border-left: 5px solid var(--err); padding: 8px 12px; }
.overview { display: grid; grid-template-columns: minmax(0, 1.55fr) minmax(0, 1fr); gap: 8px 24px;
  align-items: start; }
.cards { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 8px; margin: 26px 0 0; }
@media (max-width: 900px) { .overview { grid-template-columns: 1fr; } .cards { margin-top: 8px; } }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; }
.card.alert { border-left: 5px solid var(--err); }
.card .label { font-size: 12.5px; color: var(--muted); font-weight: 600; }
.card .value { font-size: 19px; font-weight: 700; font-variant-numeric: tabular-nums; }
.card .note { font-size: 12px; color: var(--muted); }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 0; }
dl.summary dt { font-weight: 600; color: var(--muted); }
dl.summary dd { margin: 0; }
.muted { color: var(--muted); }
.ok { color: #006b4f; font-weight: 600; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid var(--line); }
thead th { border-bottom: 2px solid var(--ink); font-size: 13px; white-space: nowrap; }
tbody th { font-weight: 600; overflow-wrap: anywhere; min-width: 9em; }
td.regs { white-space: nowrap; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { overflow-x: auto; }
table.findings td.msg { min-width: 16em; }
table.findings td.fix { color: #00563f; min-width: 11em; }
tr.sev-row-error td:first-child { border-left: 5px solid var(--err); }
tr.sev-row-warning td:first-child { border-left: 5px dashed var(--warn); }
tr.sev-row-info td:first-child { border-left: 5px dotted var(--info); }
.tag { display: inline-block; font-size: 11px; font-weight: 600; padding: 0 6px; border-radius: 4px;
  background: #ececec; color: #333; margin-left: 4px; }
figure.chart-wrap { margin: 8px 0 0; }
svg.chart { display: block; width: 100%; max-width: 1000px; height: auto;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
figcaption { font-size: 13px; color: #333; max-width: 880px; margin-top: 6px; }
ul.caption { margin: 4px 0 0; padding-left: 18px; }
footer.page { margin-top: 20px; font-size: 13px; color: var(--muted); border-top: 1px solid var(--line);
  padding-top: 10px; }
a { color: #0062a0; }
@media (max-width: 700px) { body { padding: 12px; } section.file { padding: 12px; } }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  nav.toc { break-after: page; }
  section.file { border: none; padding: 0; break-before: page; }
  section.file:first-of-type { break-before: auto; }
  figure, tr, .card, svg.chart { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  .scroll { overflow: visible; }
  table { font-size: 9pt; }
  th, td { padding: 3px 5px; }
  table.findings td.msg, table.findings td.fix { min-width: 0; }
  thead th, td.regs, .num { white-space: normal; }
  .overview { grid-template-columns: 1fr; }
  .cards { grid-template-columns: repeat(3, minmax(0, 1fr)); margin-top: 8px; }
  svg.chart { max-width: 100%; }
}
"""
