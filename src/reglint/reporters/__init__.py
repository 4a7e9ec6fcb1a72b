"""Reporters: turn a ``RunReport`` into text for a terminal, a file or a CI
system. Machine formats are written as plain text, never through rich (which
would wrap and colour them)."""

from __future__ import annotations

import json
from typing import Callable, TextIO

from reglint.engine.report import RunReport

MACHINE_FORMATS = ("json", "json-lines", "sarif", "github", "gitlab", "junit", "pylint", "concise", "html")
FORMATS = ("full",) + MACHINE_FORMATS


def render_json(report: RunReport, out: TextIO, **_: object) -> None:
    json.dump(report.to_dict(), out, indent=2, allow_nan=False)
    out.write("\n")


def renderer(fmt: str) -> Callable[..., None]:
    """The function writing ``fmt``; imported lazily so a run pays only for
    the format it uses."""
    if fmt == "json":
        return render_json
    if fmt == "json-lines":
        from reglint.reporters.machine import render_json_lines

        return render_json_lines
    if fmt == "concise":
        from reglint.reporters.machine import render_concise

        return render_concise
    if fmt == "pylint":
        from reglint.reporters.machine import render_pylint

        return render_pylint
    if fmt == "sarif":
        from reglint.reporters.sarif import render_sarif

        return render_sarif
    if fmt == "github":
        from reglint.reporters.github import render_github

        return render_github
    if fmt == "gitlab":
        from reglint.reporters.machine import render_gitlab

        return render_gitlab
    if fmt == "junit":
        from reglint.reporters.junit import render_junit

        return render_junit
    if fmt == "html":
        from reglint.reporters.html import render_html

        return render_html
    raise ValueError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")
