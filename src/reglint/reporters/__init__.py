"""Reporters: turn a ``RunReport`` into text for a terminal, a file or a CI
system, all through one registry and one ``write_outputs``.

Machine formats are written as plain text, never through rich (which would
wrap and colour them); the ``full`` report is drawn on a rich console, the
terminal's when it goes to stdout, an unwrapped colourless one for a file.
``reglint check`` and ``reglint profile`` both write through here; profile
passes its own ``full`` drawer and the JSON document with its measurement.
"""

from __future__ import annotations

import importlib
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from reglint.engine.report import RunReport
from reglint.engine.settings import OUTPUT_FORMATS
from reglint.reporters.console import Color, make_console

# format -> "module:function", imported only when used: a run pays for the
# format it writes. Every renderer takes (report, out, settings=..., data=...).
REGISTRY = {
    "json": "reglint.reporters:render_json",
    "json-lines": "reglint.reporters.machine:render_json_lines",
    "sarif": "reglint.reporters.sarif:render_sarif",
    "github": "reglint.reporters.github:render_github",
    "gitlab": "reglint.reporters.machine:render_gitlab",
    "junit": "reglint.reporters.junit:render_junit",
    "pylint": "reglint.reporters.machine:render_pylint",
    "concise": "reglint.reporters.machine:render_concise",
    "html": "reglint.reporters.html:render_html",
}
FORMATS = OUTPUT_FORMATS
MACHINE_FORMATS = tuple(f for f in FORMATS if f != "full")
assert set(REGISTRY) == set(MACHINE_FORMATS), "every output format needs a renderer"


def render_json(report: RunReport, out: TextIO, data: dict | None = None, **_: object) -> None:
    json.dump(data if data is not None else report.to_dict(), out, indent=2, allow_nan=False)
    out.write("\n")


def renderer(fmt: str) -> Callable[..., None]:
    """The function writing machine format ``fmt``."""
    try:
        module, _, name = REGISTRY[fmt].partition(":")
    except KeyError:
        raise ValueError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}") from None
    return getattr(importlib.import_module(module), name)


STATISTICS = "statistics"  # the pseudo-format --statistics writes (ruff's per-rule counts)


def parse_outputs(spec: str, output_file: str | Path | None, *,
                  statistics: bool = False) -> list[tuple[str, str | None]]:
    """``github,sarif:reglint.sarif`` -> [("github", None), ("sarif", "reglint.sarif")].

    One rule, as ruff's: at most one format goes to stdout (pylint's
    convention), and ``--output-file`` (``-o``; ``-`` is stdout) is where
    that report goes; with no such format, ``-o`` would be dropped, so it is
    a usage error. ``statistics`` (``--statistics``) replaces that report by
    the per-rule counts, written as ``("statistics", target)`` (JSON where
    the report was json or json-lines); when every format has its own file,
    the counts are one more output, to ``-o`` or stdout. So no report
    replaces or silently drops another."""
    from reglint.errors import ConfigError

    outputs = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        fmt, _, target = part.partition(":")
        fmt = fmt.lower()
        if fmt not in FORMATS:
            raise ConfigError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")
        outputs.append((fmt, None if target in ("", "-") else target))
    if not outputs:
        raise ConfigError("no output format given")
    to_stdout = [o for o in outputs if o[1] is None]
    if len(to_stdout) > 1:
        raise ConfigError("only one output format can go to stdout; give the others a file (FORMAT:FILE)")
    main_file = None if output_file is None or str(output_file) == "-" else str(output_file)
    if main_file is not None and not to_stdout and not statistics:
        raise ConfigError(f"--output-file {main_file} gets no report: every format has its own file "
                          f"({spec}); drop -o or name a format without :FILE")
    if statistics:
        counts = [(STATISTICS + ("-json" if f in ("json", "json-lines") else ""), main_file)
                  for f, _ in to_stdout] or [(STATISTICS, main_file)]
        return [o for o in outputs if o[1] is not None] + counts
    return [(f, t if t is not None else main_file) for f, t in outputs]


def check_targets(outputs: list[tuple[str, str | None]], inputs: list[str],
                  extra: tuple[tuple[str, str], ...] = (), data: str | None = None) -> None:
    """Refuse, before any model is read, a report file that cannot be written
    or must not be: its folder missing or read-only, a folder in its place,
    two reports (or a report and ``extra``, the baseline being created) in
    one file, or one of the ``inputs`` (the models and the paths named on the
    command line; also anything inside a model folder). "One file" is the
    file, not its spelling: a symlink or a hard link to it is the same file
    (compared by device and inode). Raises ConfigError naming the path, so
    that nothing is written when one is wrong."""
    import os

    from reglint.engine.discover import is_model_folder
    from reglint.engine.identity import real_path
    from reglint.errors import ConfigError

    models = {real_path(p) for p in inputs}
    folders = [m for m in models if _model_folder(m, is_model_folder)]  # not a folder searched for models
    model_files = {_file_id(m) for m in models if m.is_file()}
    model_files |= {_file_id(Path(root) / name) for folder in folders
                    for root, _, names in os.walk(folder) for name in names}
    data_file = _file_id(real_path(data)) if data is not None and Path(data).is_file() else None
    seen: dict[Any, str] = {}
    for what, target in [(_label(fmt), t) for fmt, t in outputs if t is not None] + list(extra):
        try:
            _check_target(what, target, models, model_files, folders, data_file, seen)
        except PermissionError:  # inside a folder that cannot be searched
            raise ConfigError(f"cannot write the {what} to {target}: permission denied") from None


def _model_folder(path: Path, is_model_folder: Callable[[Path], bool]) -> bool:
    try:
        return path.is_dir() and is_model_folder(path)
    except OSError:  # a folder that cannot be searched: no report can be written inside it either
        return False


def _check_target(what: str, target: str, models: set[Path], model_files: set[Any], folders: list[Path],
                  data_file: Any, seen: dict[Any, str]) -> None:
    """One report or baseline target of ``check_targets``."""
    import os

    from reglint.engine.identity import real_path
    from reglint.errors import ConfigError

    path = Path(target)
    resolved = real_path(path)
    key = _file_id(resolved) if resolved.is_file() else resolved
    if data_file is not None and key == data_file:
        raise ConfigError(f"refusing to write the {what} to {target}: it is the --data file")
    if key in seen:
        raise ConfigError(f"the {seen[key]} and the {what} both go to {target}: give each its own file")
    seen[key] = what
    if (resolved in models or key in model_files
            or any(folder in resolved.parents for folder in folders)):
        raise ConfigError(f"refusing to write the {what} to {target}: it is a model being linted")
    if resolved.is_dir():
        raise ConfigError(f"cannot write the {what} to {target}: it is a folder")
    folder = resolved.parent
    if not folder.is_dir():
        raise ConfigError(f"cannot write the {what} to {target}: no such folder {path.parent}")
    writable = os.access(resolved, os.W_OK) if resolved.exists() else os.access(folder, os.W_OK | os.X_OK)
    if not writable:
        raise ConfigError(f"cannot write the {what} to {target}: permission denied")


def _file_id(path: Path) -> tuple[int, int] | Path:
    """An existing file's (device, inode): every name of it (hard links
    included) gives the same answer; the path itself when it cannot be read."""
    try:
        st = path.stat()
    except OSError:
        return path
    return (st.st_dev, st.st_ino)


def _label(fmt: str) -> str:
    return "statistics" if fmt.startswith(STATISTICS) else f"{fmt} report"


@dataclass
class OutputOptions:
    color: Color = Color.auto
    show_layers: bool = True  # the per-layer table of the full report (-q drops it)


def write_outputs(report: RunReport, outputs: list[tuple[str, str | None]], settings: Any,
                  options: OutputOptions | None = None, *, full: Callable[..., None] | None = None,
                  data: dict | None = None) -> None:
    """Write every (format, target) of ``outputs`` (target None: stdout).

    ``full`` draws the terminal report (default ``reporters.full.render_full``);
    ``data`` is the JSON document json and html embed when it holds more than
    ``report.to_dict()``. Files are written once every report is rendered
    (``check_targets`` has vetted their paths); a file that still cannot be
    written raises ReglintError naming it."""
    options = options or OutputOptions()
    if full is None:
        from reglint.reporters.full import render_full

        full = render_full
    files: list[tuple[str, str]] = []  # every file rendered before the first is written
    for fmt, target in outputs:
        buffer = io.StringIO()
        if fmt.startswith(STATISTICS):
            write_statistics(report, buffer, as_json=fmt.endswith("-json"))
        elif fmt == "full" and target is None:
            full(report, make_console(options.color), show_layers=options.show_layers)
            continue
        elif fmt == "full":  # to a file: no colour, no wrapping
            full(report, make_console(Color.never, file=buffer), show_layers=options.show_layers)
        else:
            renderer(fmt)(report, buffer, settings=settings, data=data)
        if target is None:
            sys.stdout.write(buffer.getvalue())
        else:
            files.append((target, buffer.getvalue()))
    for target, text in files:
        try:
            Path(target).write_text(text, encoding="utf-8")
        except OSError as exc:
            from reglint.errors import ReglintError

            raise ReglintError(f"cannot write the report to {target}: {exc.strerror or exc}") from None


def write_statistics(report: RunReport, out: TextIO, as_json: bool = False) -> None:
    """ruff's ``--statistics``: ``count<TAB>code<TAB>name`` per rule, most
    frequent first, then the summary line; as JSON, ``[{code, name, count}]``."""
    from reglint.reporters.text import summary_line

    counts: dict[tuple[str, str], int] = {}
    for _, finding in report.findings:
        counts[(finding.code, finding.name)] = counts.get((finding.code, finding.name), 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if as_json:
        out.write(json.dumps([{"code": code, "name": name, "count": count} for (code, name), count in ranked],
                             indent=2) + "\n")
        return
    width = max((len(str(count)) for count in counts.values()), default=1)
    for (code, name), count in ranked:
        out.write(f"{count:>{width}}\t{code}\t{name}\n")
    out.write(summary_line(report) + "\n")
