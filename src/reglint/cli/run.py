"""``reglint check``: discover files, resolve settings, lint, report, exit."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reglint.engine.finding import Severity
from reglint.engine.report import FileReport, RunReport
from reglint.engine.settings import Settings
from reglint.errors import ConfigError, ReglintError

if TYPE_CHECKING:  # rich is imported when a report is written
    from reglint.reporters.console import Color


@dataclass
class CheckOptions:
    paths: list[Path]
    output_format: str | None = None
    sarif_flavor: str | None = None
    cache_dir: Path | None = None
    output_file: Path | None = None
    fail_on: str | None = None  # a severity name, or the CLI's FailOn (a str Enum)
    exit_zero: bool = False
    quiet: bool = False
    statistics: bool = False
    color: Color | None = None
    select: list[str] | None = None
    extend_select: list[str] | None = None
    ignore: list[str] | None = None
    config: str | None = None
    isolated: bool = False
    baseline: Path | None = None
    create_baseline: bool = False
    # Training context given on the command line: TrainingContext field -> value.
    context: dict[str, Any] = field(default_factory=dict)
    l2: list[str] | None = None
    l1: list[str] | None = None
    force_exclude: bool = False
    no_cache: bool = False
    jobs: int = 1


def run_check(opts: CheckOptions) -> int:
    from reglint.errors import err

    try:
        resolver = make_resolver(opts)
        files, missing = discover_all([str(p) for p in opts.paths], resolver)
        groups = group_by_settings(files, resolver)
        settings = report_settings(groups, resolver, opts)
        from reglint.reporters import parse_outputs

        outputs = parse_outputs(opts.output_format or settings.output_format or "full", opts.output_file)
    except ReglintError as exc:
        err(str(exc))
        return 2
    if not files and not missing:
        sys.stderr.write("reglint: warning: no model files found under the given paths\n")
    report = RunReport()
    for path in missing:
        report.files.append(FileReport(path=path, error="no such file or folder"))
    report.files.extend(lint_groups(groups, files, jobs=opts.jobs, use_cache=not opts.no_cache,
                                    progress=not opts.quiet))
    try:
        check_patterns(opts, report.files)
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
    code = exit_code(report, groups, settings)
    if opts.exit_zero and code == 1:
        return 0
    return code


# ---------------------------------------------------------------------------
# settings: one per config file, the command line applied to each


def make_resolver(opts: CheckOptions):
    """Each file's settings come from its closest config (ruff's discovery),
    every one adjusted by the command line."""
    import os

    from reglint.config.loader import ConfigResolver

    if opts.cache_dir is not None:
        os.environ["REGLINT_CACHE_DIR"] = str(opts.cache_dir)
    if opts.sarif_flavor and opts.sarif_flavor not in ("github", "strict"):
        raise ConfigError(f"--sarif-flavor must be github or strict, not {opts.sarif_flavor!r}")
    cli = CommandLine(opts)  # selectors checked once, before any file is read
    return ConfigResolver(config=opts.config, isolated=opts.isolated, adjust=cli.apply)


def resolve(opts: CheckOptions) -> Settings:
    """The settings of the first path (the working directory's when there is
    none), the command line applied: what ``explain`` lints one file with."""
    return make_resolver(opts).settings_for(str(opts.paths[0]) if opts.paths else None)


class CommandLine:
    """What the flags change in a Settings (flags beat every config file)."""

    def __init__(self, opts: CheckOptions):
        self.opts = opts
        self.select = _codes(opts.select, "--select") if opts.select else None
        self.extend_select = _codes(opts.extend_select, "--extend-select") if opts.extend_select else []
        self.ignore = _codes(opts.ignore, "--ignore") if opts.ignore else []
        self.regularizers = [pattern_regularizer(item, factor)
                             for factor, items in (("l2", opts.l2), ("l1", opts.l1)) for item in items or []]

    def apply(self, settings: Settings) -> None:
        opts = self.opts
        if opts.sarif_flavor:
            settings.sarif_flavor = opts.sarif_flavor
        if self.select is not None:
            settings.select = list(self.select)
        settings.extend_select = settings.extend_select + self.extend_select
        settings.ignore = settings.ignore + self.ignore
        if opts.fail_on is not None:
            value = opts.fail_on.value if isinstance(opts.fail_on, Enum) else opts.fail_on
            settings.fail_on = None if value == "none" else Severity.parse(value)
        if opts.force_exclude:
            settings.force_exclude = True
        ctx = settings.context
        for name, value in opts.context.items():
            if value is not None:
                setattr(ctx, name, value)
        ctx.regularizers = ctx.regularizers + [dict(spec) for spec in self.regularizers]


def pattern_regularizer(item: str, factor: str) -> dict[str, Any]:
    """``--l2 'conv*=1e-4'`` -> ``{"layers": "conv*", "target": "kernel", "l2": 1e-4}``;
    a factor that is not a finite number >= 0 is a usage error."""
    import math

    pattern, _, value = item.rpartition("=")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"--{factor} expects PATTERN=LAMBDA, got {item!r}") from None
    if not (math.isfinite(number) and number >= 0):
        raise ConfigError(f"--{factor} {item!r}: LAMBDA must be a finite number >= 0, got {value}")
    return {"layers": pattern or "*", "target": "kernel", factor: number}


def check_patterns(opts: CheckOptions, reports: list[FileReport]) -> None:
    """A ``--l2``/``--l1`` pattern that reaches no kernel in any file read is
    a usage error naming the layers it could have meant: a typo must not
    silently lint the model without the regularizer the user meant."""
    import difflib

    from reglint.engine.analysis import pattern_targets

    models = [r.model for r in reports if r.model is not None]
    if not models:
        return  # nothing was read: the read errors say why
    for factor, items in (("l2", opts.l2), ("l1", opts.l1)):
        for item in items or []:
            spec = pattern_regularizer(item, factor)
            if any(pattern_targets(model, spec) for model in models):
                continue
            kernels = sorted({name for model in models for layer, var in model.variables()
                              if var.role.is_kernel_like for name in (layer.name, layer.path)})
            layers = {layer.path for model in models for layer, _ in model.variables()}
            matched = sorted(path for path in layers if pattern_targets_layer(spec["layers"], path))
            why = (f"matches layers without a kernel ({', '.join(matched[:5])})" if matched else
                   "matches no layer")
            close = difflib.get_close_matches(spec["layers"], kernels, n=5, cutoff=0.3) or kernels[:8]
            glob = f"{spec['layers']}*"  # PATTERN is a whole-name glob: 'fc' is not a prefix
            hint = (f" (a PATTERN matches whole names: did you mean {glob!r}?)"
                    if any(pattern_targets_layer(glob, name) for name in kernels) else "")
            raise ConfigError(f"--{factor} {item!r} {why} in the files linted; layers with kernels: "
                              f"{', '.join(close)}{' ...' if len(kernels) > len(close) else ''}{hint}")


def pattern_targets_layer(pattern: str, path: str) -> bool:
    from fnmatch import fnmatch

    return fnmatch(path, pattern) or fnmatch(path.rsplit("/", 1)[-1], pattern)


def report_settings(groups: list[tuple[Settings, list[str]]], resolver, opts: CheckOptions) -> Settings:
    """The settings for what concerns the whole run (output format, baseline,
    the folder paths are shown relative to): those of the files' config when
    they share one, else the working directory's (ruff's fallback)."""
    if len(groups) == 1:
        return groups[0][0]
    if not groups:
        return resolver.settings_for(str(opts.paths[0]) if opts.paths else None)
    return resolver.settings_for(None)


def discover_all(paths: list[str], resolver) -> tuple[list[str], list[str]]:
    """Each path argument searched with the settings that apply to it (its
    excludes, its .gitignore choice); (sorted unique models, missing paths)."""
    from reglint.engine.discover import discover

    by_settings: dict[int, tuple[Settings, list[str]]] = {}
    for raw in paths:
        settings = resolver.settings_for(raw)
        by_settings.setdefault(id(settings), (settings, []))[1].append(raw)
    found: set[str] = set()
    missing: list[str] = []
    for settings, group in by_settings.values():
        files, gone = discover(group, settings)
        found.update(files)
        missing.extend(gone)
    return sorted(found), [raw for raw in paths if raw in missing]


def group_by_settings(files: list[str], resolver) -> list[tuple[Settings, list[str]]]:
    """Files grouped by the settings their closest config gives them."""
    groups: dict[int, tuple[Settings, list[str]]] = {}
    for path in files:
        settings = resolver.settings_for(path)
        groups.setdefault(id(settings), (settings, []))[1].append(path)
    return list(groups.values())


def lint_groups(groups: list[tuple[Settings, list[str]]], files: list[str], *, jobs: int, use_cache: bool,
                progress: bool) -> list[FileReport]:
    """Every file linted with its own settings; reports in ``files`` order."""
    by_path: dict[str, FileReport] = {}
    for settings, group in groups:
        reports = lint_all(group, settings, jobs=jobs, use_cache=use_cache, progress=progress)
        by_path.update(zip(group, reports, strict=True))  # lint_many keeps the order it was given
    return [by_path[path] for path in files if path in by_path]


def exit_code(report: RunReport, groups: list[tuple[Settings, list[str]]], default: Settings) -> int:
    """0, 1 or 2 as ``RunReport.exit_code``, each file judged by its own
    ``fail-on``."""
    if report.errors:
        return 2
    fail_on = {path: settings.fail_on for settings, group in groups for path in group}
    for file_report, finding in report.findings:
        threshold = fail_on.get(file_report.path, default.fail_on)
        if threshold is not None and finding.severity.rank >= threshold.rank:
            return 1
    return 0


def _codes(values: list[str], option: str) -> list[str]:
    """``--select RL001,RL0 --select penalty-dominates-loss`` -> codes and
    prefixes; an unknown selector is a usage error (ruff: "invalid rule code
    or prefix"), never a silent no-op."""
    from reglint.config.loader import normalize_selector, selector_hint

    out = []
    for value in values:
        for item in (v.strip() for v in value.split(",")):
            if not item:
                continue
            sel = normalize_selector(item)
            if sel is None:
                raise ConfigError(f"invalid rule code or prefix {item!r} for '{option}'{selector_hint(item)}")
            out.append(sel)
    return out


def lint_all(files: list[str], settings: Settings, *, jobs: int, use_cache: bool, progress: bool) -> list[FileReport]:
    from reglint.engine.parallel import lint_many

    return lint_many(files, settings, jobs=jobs, use_cache=use_cache, progress=progress)


def apply_baseline(report: RunReport, opts: CheckOptions, settings: Settings) -> int | None:
    if opts.baseline is None and settings.baseline:
        opts.baseline = Path(settings.baseline)
    if opts.baseline is None:
        if opts.create_baseline:
            from reglint.errors import err

            err("--create-baseline needs --baseline FILE")
            return 2
        return None
    from reglint.config.baseline import filter_by_baseline, write_baseline

    if opts.create_baseline:
        try:
            write_baseline(opts.baseline, report, settings)
        except OSError as exc:
            from reglint.errors import err

            err(f"cannot write the baseline: {exc.strerror or exc}")
            return 2
        sys.stderr.write(f"reglint: wrote {sum(len(f.findings) for f in report.files)} findings to {opts.baseline}\n")
        return 0
    filter_by_baseline(opts.baseline, report, settings)
    return None


def write_outputs(report: RunReport, outputs, opts: CheckOptions, settings: Settings) -> None:
    """Every requested format, through the reporters' one writer."""
    from reglint.reporters import OutputOptions
    from reglint.reporters import write_outputs as write
    from reglint.reporters.console import Color

    color = opts.color if opts.color is not None else Color.auto
    write(report, outputs, settings, OutputOptions(color=color, show_layers=not opts.quiet,
                                                   statistics=opts.statistics))


