"""The page: frame, table of contents, one section per file, footer, and
the embedded report JSON every part of the page is drawn from."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any, TextIO

from reglint import __version__
from reglint.engine.fmt import g
from reglint.reporters.html.layers import figure_bars, layer_rows, layer_table
from reglint.reporters.html.markup import (
    SEVERITIES,
    SEVERITY_MARK,
    counts_text,
    esc,
    json_for_script,
    num_attr,
    number,
    pctx,
    plural,
    sev_label,
    severity_counts,
    worst,
)
from reglint.reporters.html.profile_section import find_profile, profile_section
from reglint.reporters.html.sections import cards, findings_table, model_summary
from reglint.reporters.html.sweep_chart import figure_sweep, groups_of

SCRIPT_ID = "reglint-report"


@lru_cache(maxsize=1)
def stylesheet() -> str:
    """The page's CSS, shipped as package data beside this module."""
    return resources.files("reglint.reporters.html").joinpath("style.css").read_text(encoding="utf-8")


def render_html(report: Any, out: TextIO, settings: Any = None, data: dict | None = None, **_: object) -> None:
    """Write the page for ``report`` (a ``RunReport``). ``data``: the JSON
    document to draw and embed when it is more than ``report.to_dict()``
    (``reglint profile`` puts its measurement under
    ``files[i].model.analysis.profile``). ``settings`` is accepted like
    every reporter's; the levels drawn come from the rules' curves in the
    JSON, which already apply them."""
    out.write(html_document(report.to_dict() if data is None else data))


def html_document(data: dict) -> str:
    """The page for a JSON report (``RunReport.to_dict()``, possibly with a
    profile): every number, text and chart is drawn from ``data``, which is
    embedded as ``script#reglint-report``."""
    files = [f for f in data.get("files") or [] if isinstance(f, dict)]
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        f"<meta name=\"generator\" content=\"reglint {esc(__version__)}\">\n",
        f"<title>{esc(_title(files))}</title>\n<style>\n{stylesheet()}</style>\n</head>\n<body>\n",
        _header(files),
        _toc(files) if len(files) > 1 else "",
        "<main>\n",
    ]
    parts += [file_section(index, fd) for index, fd in enumerate(files, start=1)]
    parts.append("</main>\n")
    parts.append(_footer(files))
    parts.append(f"<script type=\"application/json\" id=\"{SCRIPT_ID}\">")
    parts.append(json_for_script(data))
    parts.append("</script>\n</body>\n</html>\n")
    return "".join(parts)


# ---------------------------------------------------------------------------
# frame


def _title(files: list[dict]) -> str:
    if len(files) == 1:
        return f"reglint report: {files[0].get('path')}"
    return f"reglint report: {len(files)} files"


def _findings(fd: dict) -> list[dict]:
    return [f for f in fd.get("findings") or [] if isinstance(f, dict)]


def summary_line(files: list[dict]) -> str:
    """The terminal's last line, from the JSON: ``Found 1 finding (1 error)
    in 1 file.``"""
    counts = severity_counts([f for fd in files for f in _findings(fd)])
    total = sum(counts.values())
    parts = counts_text(counts)
    text = f"Found {total} finding{'s' if total != 1 else ''}" + (f" ({parts})" if parts else "")
    text += f" in {len(files)} file{'s' if len(files) != 1 else ''}"
    unreadable = sum(1 for fd in files if fd.get("error"))
    return text + (f"; {unreadable} unreadable" if unreadable else "") + "."


def _header(files: list[dict]) -> str:
    counts = severity_counts([f for fd in files for f in _findings(fd)])
    chips = "".join(
        f"<span class=\"chip sev-{k}\"><span aria-hidden=\"true\">{SEVERITY_MARK[k]}</span> "
        f"{plural(counts[k], k)}</span>" for k in SEVERITIES)
    unreadable = sum(1 for fd in files if fd.get("error"))
    if unreadable:
        chips += f"<span class=\"chip sev-error\">{unreadable} unreadable</span>"
    return (f"<header class=\"page\">\n<h1>reglint report</h1>\n"
            f"<p class=\"summary\" data-findings=\"{sum(counts.values())}\" data-errors=\"{counts['error']}\" "
            f"data-warnings=\"{counts['warning']}\" data-infos=\"{counts['info']}\" "
            f"data-unreadable=\"{unreadable}\">{esc(summary_line(files))}</p>\n"
            f"<p class=\"chips\">{chips}</p>\n</header>\n")


def _toc(files: list[dict]) -> str:
    rows = []
    for index, fd in enumerate(files, start=1):
        if fd.get("error"):
            status, rho = "<span class=\"sev sev-error\">unreadable</span>", ""
        else:
            counts = severity_counts(_findings(fd))
            status = ", ".join(sev_label(k, plural(counts[k], k)) for k in SEVERITIES if counts[k]) or "no findings"
            value = number(((fd.get("model") or {}).get("analysis") or {}).get("penalty_ratio"))
            rho = esc(pctx(value)) if value else ("0" if value == 0 else "")
        rows.append(f"<tr><td><a href=\"#file-{index}\">{esc(fd.get('path'))}</a></td><td>{status}</td>"
                    f"<td class=\"num\">{rho}</td></tr>")
    return ("<nav class=\"toc\" aria-label=\"Files in this report\">\n<h2>Files</h2>\n"
            "<table><thead><tr><th scope=\"col\">file</th><th scope=\"col\">findings</th>"
            "<th scope=\"col\" class=\"num\">penalty / data loss</th></tr></thead>\n<tbody>\n"
            + "\n".join(rows) + "\n</tbody></table>\n</nav>\n")


def _footer(files: list[dict]) -> str:
    """The levels the charts draw, as the rules' curves carry them."""
    levels: set[tuple[str, str]] = set()  # (code, text): a rule's curves of one feature may differ in level (RL024)
    for fd in files:
        for group in groups_of((fd.get("model") or {}).get("analysis") or {}):
            for curve in group.curves:
                words = [f"warns at {curve.feature} \u2265 {g(curve.warning)}" if curve.warning is not None else "",
                         f"errs at \u2265 {g(curve.error)}" if curve.error is not None else ""]
                levels.add((curve.code, " and ".join(w for w in words if w)))
    sentence = ""
    if levels:
        sentence = ("Levels drawn in the charts, from the rules' curves: " +
                    "; ".join(f"{esc(code)} {esc(text)}" for code, text in sorted(levels) if text) + ". ")
    return (f"<footer class=\"page\">\n<p>{sentence}"
            "Numbers are static estimates at a fresh initialisation unless marked measured. "
            "The JSON report (<code>--format json</code>) is embedded in this file as "
            f"<code>script#{SCRIPT_ID}</code>; the page is drawn from it.</p>\n"
            f"<p>Generated by reglint {esc(__version__)}.</p>\n</footer>\n")


# ---------------------------------------------------------------------------
# one file


def file_section(index: int, fd: dict) -> str:
    findings = _findings(fd)
    worst_severity = worst(findings)
    head = (f"<section class=\"file\" id=\"file-{index}\" data-path=\"{esc(fd.get('path'))}\" "
            f"data-worst=\"{worst_severity or ''}\"")
    model = fd.get("model")
    if fd.get("error") or not isinstance(model, dict):
        return (head + " data-unreadable=\"true\">\n"
                f"<h2><span class=\"path\">{esc(fd.get('path'))}</span></h2>\n"
                f"<p class=\"unreadable\" role=\"alert\"><strong>Unreadable:</strong> "
                f"{esc(fd.get('error') or 'no model')}</p>\n</section>\n")
    analysis = model.get("analysis") or {}
    head += (f" data-penalty-ratio=\"{num_attr(analysis.get('penalty_ratio'))}\""
             f" data-penalty-init=\"{num_attr(analysis.get('penalty_init'))}\""
             f" data-penalty-init-all=\"{num_attr(analysis.get('penalty_init_all'))}\""
             f" data-loss-scale=\"{num_attr((analysis.get('loss_scale') or {}).get('value'))}\""
             f" data-params-total=\"{num_attr((model.get('params') or {}).get('total'))}\">\n")
    rows = layer_rows(model)
    parts = [head, f"<h2><span class=\"path\">{esc(fd.get('path'))}</span>{_badge(findings)}</h2>\n",
             "<div class=\"overview\">\n<div class=\"model\">" + model_summary(model, rows) + "</div>\n"
             + cards(analysis, findings) + "</div>\n",
             findings_table(index, findings), layer_table(index, rows, analysis)]
    if analysis:
        parts.append(figure_bars(index, rows, (model.get("params") or {}).get("total")))
        parts.append(figure_sweep(index, analysis))
    profile = find_profile(fd)
    if profile is not None:
        parts.append(profile_section(index, profile, analysis))
    parts.append("</section>\n")
    return "".join(parts)


def _badge(findings: list[dict]) -> str:
    worst_severity = worst(findings)
    if worst_severity is None:
        return " <span class=\"badge ok\">no findings</span>"
    return (f" <span class=\"badge sev-{worst_severity}\"><span aria-hidden=\"true\">"
            f"{SEVERITY_MARK[worst_severity]}</span> {esc(counts_text(severity_counts(findings)))}</span>")
