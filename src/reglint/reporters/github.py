"""GitHub Actions workflow commands (``::error file=…,line=1,title=…::…``)
and, when ``GITHUB_STEP_SUMMARY`` is set, a Markdown job summary.

GitHub shows at most 10 annotations per level per step, so findings are
sorted worst first, capped at 10 per level, and a final notice says how many
were left out (it is one of the 10 notices: with 10 or more notices to
show, the tenth gives way to it). Escaping follows ``@actions/core``: messages escape ``%``,
CR and LF; property values also ``:`` and ``,``.
"""

from __future__ import annotations

import html
import os
from typing import Any, TextIO

from reglint.engine.finding import Finding
from reglint.engine.report import FileReport, RunReport
from reglint.reporters.machine import artifact_path, display_path, headline, results, sorted_by_severity
from reglint.reporters.text import clean, plural, strip_controls

PER_LEVEL_LIMIT = 10
COMMAND = {"error": "error", "warning": "warning", "info": "notice"}
SUMMARY_ROWS = 500  # keeps the summary far below GitHub's 1 MiB per step


def escape_data(text: str) -> str:
    """@actions/core ``escapeData`` (message part)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """@actions/core ``escapeProperty`` (``key=value`` part)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(file_report: FileReport, finding: Finding, settings: Any = None) -> str:
    """One workflow command for one finding."""
    command = COMMAND[finding.severity.value]
    path = strip_controls(artifact_path(file_report.path))  # as the message names it (review 45, 5)
    props = f"file={escape_property(path)},line=1,title={escape_property(f'reglint ({finding.code})')}"
    message = f"{clean(display_path(file_report.path))}: {headline(finding)}"
    if finding.remedy:  # multi-line detail, as ruff does: %0A in the message
        message += "\nfix: " + clean(finding.remedy)
    if finding.fix is not None and finding.fix.changes:
        message += "\n" + clean(finding.fix.line())
    return f"::{command} {props}::{escape_data(message)}"


def render_github(report: RunReport, out: TextIO, settings: Any = None, **_: object) -> None:
    """Annotations on ``out``; the job summary appended to $GITHUB_STEP_SUMMARY."""
    items = sorted_by_severity(list(results(report)))
    counts = _per_command(items)
    over = sum(max(0, n - PER_LEVEL_LIMIT) for n in counts.values())
    # The count of what was left out is itself a notice: it takes the last
    # of the 10 notice slots when notices would fill them (never an 11th).
    room = dict.fromkeys(COMMAND.values(), PER_LEVEL_LIMIT)
    if over and counts.get("notice", 0) >= PER_LEVEL_LIMIT:
        room["notice"] -= 1
    hidden = 0
    for file_report, finding in items:
        command = COMMAND[finding.severity.value]
        if room[command] == 0:
            hidden += 1
            continue
        room[command] -= 1
        out.write(annotation(file_report, finding, settings) + "\n")
    if hidden:
        out.write(f"::notice::{plural(hidden, 'more finding')} not annotated (GitHub shows "
                  f"{PER_LEVEL_LIMIT} per level per step); see the job summary or the SARIF report\n")
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        _append_summary(summary_file, report, items, settings)


def _per_command(items: list[tuple[FileReport, Finding]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, finding in items:
        command = COMMAND[finding.severity.value]
        counts[command] = counts.get(command, 0) + 1
    return counts


# ---------------------------------------------------------------------------
# job summary


def step_summary(report: RunReport, items: list[tuple[FileReport, Finding]], settings: Any = None) -> str:
    """A GitHub-flavoured Markdown table: one row per finding, grouped by model."""
    lines = ["## reglint", ""]
    if not items:
        lines.append(f"No findings in {plural(len(report.files), 'model')}. :white_check_mark:")
        return "\n".join(lines) + "\n"
    counts = {level: sum(1 for _, f in items if f.severity.value == level) for level in COMMAND}
    lines.append(f"{plural(len(items), 'finding')} in {plural(len(report.files), 'model')}: "
                 + ", ".join(f"{n} {level}" for level, n in counts.items() if n) + ".")
    lines += ["", "| Model | Severity | Rule | Layer | Message |", "| --- | --- | --- | --- | --- |"]
    by_model = sorted(items, key=lambda item: (display_path(item[0].path), -item[1].severity.rank))
    for file_report, finding in by_model[:SUMMARY_ROWS]:
        lines.append("| " + " | ".join((
            _code_span(display_path(file_report.path)),
            finding.severity.value,
            f"{finding.code} {_cell(finding.name)}",
            _code_span(finding.layer) if finding.layer else "",
            _cell(finding.message),
        )) + " |")
    if len(by_model) > SUMMARY_ROWS:
        lines.append(f"\n{len(by_model) - SUMMARY_ROWS} more findings are not listed.")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Table-cell safe: no HTML, no pipes breaking the row."""
    return html.escape(clean(text), quote=False).replace("|", "\\|")


def _code_span(text: str) -> str:
    # A backtick inside a name would end the code span early.
    return "`" + clean(text).replace("`", "'").replace("|", "\\|") + "`"


def _append_summary(path: str, report: RunReport, items, settings: Any) -> None:
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(step_summary(report, items, settings))
    except OSError as exc:  # a summary is a nicety: never fail the run on it
        from reglint.errors import warn

        warn(f"cannot write the job summary: {exc.strerror or exc}")
