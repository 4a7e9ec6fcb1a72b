"""``reglint check --show-files`` and ``--show-settings``: what a run would
lint and with which settings, without reading a model (ruff's flags of the
same names; both print to stdout and exit 0); and ``--verbose``'s account
of each file read, on stderr.

>>> import io
>>> out = io.StringIO()
>>> show_settings_of("models/a.keras", Settings(select=["RL0"], ignore=["RL011"]), out)
>>> print(out.getvalue().splitlines()[0])
Resolved settings for: models/a.keras
>>> 'lint.ignore = ["RL011"]' in out.getvalue()
True
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any, TextIO

from reglint.engine.identity import display_path
from reglint.engine.report import FileReport
from reglint.engine.settings import Settings

# Bookkeeping fields that are not settings a user writes.
NOT_SHOWN = ("root", "config_file")
# Settings fields written under [tool.reglint.lint] (config.loader.LINT_KEYS).
LINT_FIELDS = ("select", "extend_select", "ignore", "severity", "per_file_ignores", "thresholds", "overrides")


def show_files(files: list[str], out: TextIO) -> None:
    """The model files and folders a run would lint, one per line, sorted
    as the report sorts them."""
    for path in sorted(display_path(p) for p in files):
        out.write(path + "\n")


def show_settings_of(path: str, settings: Settings, out: TextIO) -> None:
    """The settings ``path`` is linted with, the command line applied: one
    ``key = value`` line per setting (values as JSON), nested tables as
    dotted keys, as the ``[tool.reglint]`` table spells them."""
    out.write(f"Resolved settings for: {display_path(path)}\n")
    source = display_path(settings.config_file) if settings.config_file else "(none: the defaults)"
    out.write(f"Settings path: {source}\n\n")
    data = dataclasses.asdict(settings)
    for key in NOT_SHOWN:
        data.pop(key, None)
    context = data.pop("context")
    lines = [(_key(name), value) for name, value in data.items() if name not in LINT_FIELDS]
    lines += [("context." + _key(name), value) for name, value in context.items()]
    lines += [("lint." + _key(name), data[name]) for name in LINT_FIELDS]
    for key, value in sorted(lines):
        out.write(f"{key} = {json.dumps(value, default=_plain, ensure_ascii=False)}\n")


def _key(field_name: str) -> str:
    return field_name.replace("_", "-")


def _plain(value: Any) -> Any:
    """JSON for what json cannot write: enums by value, dates in ISO form."""
    if hasattr(value, "value"):
        return value.value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def say_per_file(groups: list[tuple[Settings, list[str]]], reports: list[FileReport]) -> None:
    """--verbose: one stderr line per file read: its config, the cache,
    the findings kept and those its ignores or overrides suppressed."""
    config_of = {path: settings.config_file for settings, group in groups for path in group}
    for r in reports:
        if r.error is not None:  # its error line says why; this says it was read now (review 45, 8)
            if not r.not_a_model:
                sys.stderr.write(f"reglint: verbose: {display_path(r.path)}: read failed (never cached)\n")
            continue
        config = config_of.get(r.path)
        source = f"settings from {display_path(config)}" if config else "default settings"
        kind = r.model.format if r.model is not None else "?"
        suppressed = ", ".join(f"{f.code}" + (f" [{f.layer}]" if f.layer else "") for f in r.suppressed)
        sys.stderr.write(f"reglint: verbose: {display_path(r.path)}: {kind}, {source}, "
                         f"{'from the cache' if r.cached else 'read'}; {len(r.findings)} kept"
                         + (f", suppressed: {suppressed}" if suppressed else "") + "\n")
