"""``reglint check``: discover files, resolve settings, lint, report, exit."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from reglint.config.settings import Settings
from reglint.engine.finding import Severity
from reglint.engine.report import FileReport, RunReport
from reglint.errors import ConfigError, ReglintError, one_line


@dataclass
class CheckOptions:
    paths: list[Path]
    output_format: Optional[str] = None
    sarif_flavor: Optional[str] = None
    cache_dir: Optional[Path] = None
    output_file: Optional[Path] = None
    fail_on: object = None
    exit_zero: bool = False
    quiet: bool = False
    statistics: bool = False
    color: object = None
    select: Optional[list[str]] = None
    extend_select: Optional[list[str]] = None
    ignore: Optional[list[str]] = None
    config: Optional[str] = None
    isolated: bool = False
    baseline: Optional[Path] = None
    create_baseline: bool = False
    samples: Optional[int] = None
    batch_size: Optional[int] = None
    epochs: Optional[int] = None
    steps: Optional[int] = None
    classes: Optional[int] = None
    target_var: Optional[float] = None
    loss_scale: Optional[float] = None
    optimizer: Optional[str] = None
    learning_rate: Optional[float] = None
    momentum: Optional[float] = None
    weight_decay: Optional[float] = None
    l2: Optional[list[str]] = None
    force_exclude: bool = False
    no_cache: bool = False
    jobs: int = 1


def run_check(opts: CheckOptions) -> int:
    from reglint.cli.app import err

    try:
        settings = resolve(opts)
        outputs = parse_outputs(opts.output_format or settings.output_format or "full", opts.output_file)
    except ReglintError as exc:
        err(str(exc))
        return 2
    from reglint.cli.discover import discover

    try:
        files, missing = discover([str(p) for p in opts.paths], settings)
    except ReglintError as exc:
        err(str(exc))
        return 2
    if not files and not missing:
        sys.stderr.write("reglint: warning: no model files found under the given paths\n")
    report = RunReport()
    for path in missing:
        report.files.append(FileReport(path=path, error="no such file or folder"))
    report.files.extend(lint_all(files, settings, jobs=opts.jobs, use_cache=not opts.no_cache,
                                 progress=not opts.quiet))
    try:
        baseline_code = apply_baseline(report, opts, settings)
    except ReglintError as exc:
        err(str(exc))
        return 2
    if baseline_code is not None:
        return baseline_code
    for file_report in report.files:
        if file_report.error:
            err(f"{file_report.path}: {file_report.error}")
    try:
        write_outputs(report, outputs, opts, settings)
    except OSError as exc:
        err(f"cannot write the report: {exc.strerror or exc}")
        return 2
    if opts.statistics:
        write_statistics(report)
    code = report.exit_code(settings.fail_on)
    if opts.exit_zero and code == 1:
        return 0
    return code


# ---------------------------------------------------------------------------


def resolve(opts: CheckOptions) -> Settings:
    from reglint.config.loader import load_settings

    import os

    if opts.cache_dir is not None:
        os.environ["REGLINT_CACHE_DIR"] = str(opts.cache_dir)
    settings = load_settings([str(p) for p in opts.paths], config=opts.config, isolated=opts.isolated)
    if opts.sarif_flavor:
        if opts.sarif_flavor not in ("github", "strict"):
            raise ConfigError(f"--sarif-flavor must be github or strict, not {opts.sarif_flavor!r}")
        settings.sarif_flavor = opts.sarif_flavor
    if opts.select:
        settings.select = _codes(opts.select)
    if opts.extend_select:
        settings.extend_select = settings.extend_select + _codes(opts.extend_select)
    if opts.ignore:
        settings.ignore = settings.ignore + _codes(opts.ignore)
    if opts.fail_on is not None:
        value = getattr(opts.fail_on, "value", opts.fail_on)
        settings.fail_on = None if value == "none" else Severity.parse(value)
    if opts.force_exclude:
        settings.force_exclude = True
    ctx = settings.context
    for name in ("samples", "batch_size", "epochs", "steps", "classes", "target_var", "loss_scale",
                 "optimizer", "learning_rate", "momentum", "weight_decay"):
        value = getattr(opts, name)
        if value is not None:
            setattr(ctx, name, value)
    for item in opts.l2 or []:
        pattern, _, value = item.rpartition("=")
        try:
            ctx.regularizers.append({"layers": pattern or "*", "target": "kernel", "l2": float(value)})
        except ValueError:
            raise ConfigError(f"--l2 expects PATTERN=LAMBDA, got {item!r}") from None
    return settings


def _codes(values: list[str]) -> list[str]:
    out = []
    for value in values:
        out.extend(v.strip().upper() for v in value.split(",") if v.strip())
    return out


def parse_outputs(spec: str, output_file: Optional[Path]) -> list[tuple[str, Optional[str]]]:
    """``github,sarif:reglint.sarif`` -> [("github", None), ("sarif", "reglint.sarif")];
    at most one format goes to stdout (pylint's convention)."""
    from reglint.reporters import FORMATS

    outputs = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        fmt, _, target = part.partition(":")
        fmt = fmt.lower()
        if fmt not in FORMATS:
            raise ConfigError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")
        outputs.append((fmt, target or None))
    if not outputs:
        raise ConfigError("no output format given")
    to_stdout = [o for o in outputs if o[1] is None]
    if len(to_stdout) > 1:
        raise ConfigError("only one output format can go to stdout; give the others a file (FORMAT:FILE)")
    if output_file is not None and to_stdout:
        outputs = [(f, t if t else str(output_file)) for f, t in outputs]
    return outputs


def lint_all(files: list[str], settings: Settings, *, jobs: int, use_cache: bool, progress: bool) -> list[FileReport]:
    from reglint.cli.parallel import lint_many

    return lint_many(files, settings, jobs=jobs, use_cache=use_cache, progress=progress)


def apply_baseline(report: RunReport, opts: CheckOptions, settings: Settings) -> Optional[int]:
    if opts.baseline is None and settings.baseline:
        opts.baseline = Path(settings.baseline)
    if opts.baseline is None:
        if opts.create_baseline:
            from reglint.cli.app import err

            err("--create-baseline needs --baseline FILE")
            return 2
        return None
    from reglint.config.baseline import filter_by_baseline, write_baseline

    if opts.create_baseline:
        try:
            write_baseline(opts.baseline, report, settings)
        except OSError as exc:
            from reglint.cli.app import err

            err(f"cannot write the baseline: {exc.strerror or exc}")
            return 2
        sys.stderr.write(f"reglint: wrote {sum(len(f.findings) for f in report.files)} findings to {opts.baseline}\n")
        return 0
    filter_by_baseline(opts.baseline, report, settings)
    return None


def write_outputs(report: RunReport, outputs, opts: CheckOptions, settings: Settings) -> None:
    import io

    from reglint.reporters import renderer

    for fmt, target in outputs:
        if fmt == "full" and target is None:
            from reglint.cli.app import Color, make_console
            from reglint.reporters.full import render_full

            color = opts.color if opts.color is not None else Color.auto
            render_full(report, make_console(color), show_layers=not opts.quiet)
            continue
        buffer = io.StringIO()
        if fmt == "full":
            from rich.console import Console

            from reglint.reporters.full import render_full

            render_full(report, Console(file=buffer, color_system=None, width=120, highlight=False),
                        show_layers=not opts.quiet)
        else:
            renderer(fmt)(report, buffer, settings=settings)
        text = buffer.getvalue()
        if target is None:
            sys.stdout.write(text)
        else:
            Path(target).write_text(text, encoding="utf-8")


def write_statistics(report: RunReport) -> None:
    counts: dict[tuple[str, str], int] = {}
    for _, finding in report.findings:
        counts[(finding.code, finding.name)] = counts.get((finding.code, finding.name), 0) + 1
    for (code, name), count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        sys.stderr.write(f"{count}\t{code}\t{name}\n")


def one(message: str) -> str:
    return one_line(message)
