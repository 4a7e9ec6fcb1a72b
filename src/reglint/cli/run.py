"""``reglint check``: discover files, resolve settings, lint, report, exit."""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reglint.engine.finding import Severity
from reglint.engine.identity import display_path
from reglint.engine.report import FileReport, RunReport
from reglint.engine.settings import Settings
from reglint.errors import ConfigError, ReglintError, warn

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
    silent: bool = False
    verbose: bool = False
    show_files: bool = False
    show_settings: bool = False
    statistics: bool = False
    color: Color | None = None
    select: list[str] | None = None
    extend_select: list[str] | None = None
    ignore: list[str] | None = None
    config: list[str] | str | None = None
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
    """Exit 0 clean, 1 findings at or above ``fail-on``, 2 a usage,
    configuration or read error. Every path and option is checked before a
    model is read (a bad report path writes nothing). An unreadable file is
    one line on stderr; the report still covers the files that were read
    (exit 2), and when none could be read nothing is written at all."""
    from reglint import errors
    from reglint.errors import err

    errors.SILENT = opts.silent  # warnings and notes too (ruff's -s); errors still say why exit 2
    try:
        resolver = make_resolver(opts)
        files, missing, searched = discover_all([str(p) for p in opts.paths], resolver)
        groups = group_by_settings(files, resolver)
        settings = report_settings(groups, resolver, opts)
        from reglint.reporters import check_targets, parse_outputs

        outputs = parse_outputs(opts.output_format or settings.output_format or "full", opts.output_file,
                                statistics=opts.statistics)
        if opts.show_files or opts.show_settings:
            return show(opts, files, missing, resolver)
        if opts.silent:  # the stdout report dropped; reports to files are still written
            outputs = [(fmt, target) for fmt, target in outputs if target not in (None, "-")]
        baseline = baseline_to_create(opts, settings)
        check_targets(outputs, [str(p) for p in opts.paths] + files, (("baseline", str(baseline)),) if baseline else ())
    except ReglintError as exc:
        err(str(exc))
        return 2
    if not files and not missing:
        warn("no model files found under the given paths")
    report = RunReport()
    for path in missing:
        report.files.append(FileReport(path=path, error=missing_error(path)))
    linted = lint_groups(groups, files, jobs=opts.jobs, use_cache=not opts.no_cache,
                         progress=not (opts.quiet or opts.silent))
    # A file found by searching a folder that holds no model (a .json that
    # is not a Keras architecture) is skipped, as the docs say; named, it is an error.
    report.files.extend(r for r in linted if not (r.not_a_model and r.path in searched))
    for file_report in report.errors:
        err(f"{display_path(file_report.path)}: {file_report.error}")
    if report.files and len(report.errors) == len(report.files):
        return 2  # nothing was read: the error lines are the whole answer, no report
    if opts.verbose and not opts.silent:
        from reglint.cli.show import say_per_file

        say_per_file(groups, report.files)
    warn_unused_suppressions(groups, report.files)
    try:
        check_patterns(opts, report.files)
        if baseline is not None:
            return create_baseline(report, baseline, settings)
        if opts.baseline is not None:
            from reglint.config.baseline import filter_by_baseline

            filter_by_baseline(opts.baseline, report)
        write_outputs(report, outputs, opts, settings)
    except ReglintError as exc:
        err(str(exc))
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
        if opts.context.get("steps") is not None and opts.context.get("epochs") is not None:
            raise ConfigError("--steps and --epochs both set the training's length: give --steps T, or --epochs E "
                              "with --samples N")
        self.noted: set[str] = set()
        self.regularizers = [pattern_regularizer(item, factor)
                             for factor, items in (("l2", opts.l2), ("l1", opts.l1)) for item in items or []]

    def _replaced(self, key: str, value: Any, flag: str) -> None:
        """Say once which length of training is used when a flag replaces the config's."""
        if value is None or key in self.noted:
            return
        self.noted.add(key)
        warn(f"{flag} replaces the configuration's context.{key} = {value}", kind="note")

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
        # One length of training: a flag replaces the config's other measure
        # of it (a note says so); a config giving both is refused rather than
        # one silently winning.
        if opts.context.get("steps") is not None:
            self._replaced("epochs", ctx.epochs, f"--steps {ctx.steps}")
            ctx.epochs = None
        elif opts.context.get("epochs") is not None:
            self._replaced("steps", ctx.steps, f"--epochs {ctx.epochs}")
            ctx.steps = None
        elif ctx.steps is not None and ctx.epochs is not None:
            raise ConfigError(f"the configuration sets both context.steps ({ctx.steps}) and context.epochs "
                              f"({ctx.epochs}): keep one")
        if ctx.epochs is not None and ctx.samples is None:
            # E epochs are E x ceil(N/B) steps: without N no length is known, and a silent no-op would
            # leave the user believing RL023 judged at their training's end.
            raise ConfigError(f"{'--epochs' if opts.context.get('epochs') is not None else 'context.epochs'} "
                              f"{ctx.epochs} needs --samples N (training examples) to count steps; or give "
                              "--steps T")
        if ctx.input_mean is not None and (ctx.input_var is None or ctx.input_mean ** 2 > ctx.input_var * (1 + 1e-9)):
            # a mean square is at least the mean's square; without it the share of it a mean makes is unknown
            flag = "--input-{}" if opts.context.get("input_mean") is not None else "context.input-{}"
            raise ConfigError(f"{flag.format('mean')} {ctx.input_mean:g} needs {flag.format('var')} M, the inputs' "
                              f"mean square, of at least its square ({ctx.input_mean ** 2:g})" + (
                                  f"; got {ctx.input_var:g}" if ctx.input_var is not None else ""))
        ctx.regularizers = ctx.regularizers + [dict(spec) for spec in self.regularizers]


def pattern_regularizer(item: str, factor: str) -> dict[str, Any]:
    """``--l2 'conv*=1e-4'`` -> ``{"layers": "conv*", "target": "kernel", "l2": 1e-4}``.
    An empty PATTERN (``'=0.1'``: '*' is every layer) and a LAMBDA that is
    not a plain decimal or scientific number >= 0 (Python's float() would
    take ``1_0`` as 10, ``inf``, ``nan``) are usage errors."""
    pattern, sep, value = item.rpartition("=")
    if not sep or not FACTOR.fullmatch(value.strip()) or not math.isfinite(float(value)):
        raise ConfigError(f"--{factor} expects PATTERN=LAMBDA with LAMBDA a number >= 0 such as 1e-4, got {item!r}")
    if not pattern.strip():
        raise ConfigError(f"--{factor} {item!r} has an empty PATTERN: use '*={value}' for every layer")
    return {"layers": pattern, "target": "kernel", factor: float(value)}


# A decimal or scientific number >= 0, as a user types a lambda.
FACTOR = re.compile(r"\+?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def check_patterns(opts: CheckOptions, reports: list[FileReport]) -> None:
    """A ``--l2``/``--l1`` pattern that reaches no kernel in any file read is
    a usage error naming the layers it could have meant: a typo must not
    silently lint the model without the regularizer the user meant."""
    import difflib

    from reglint.engine.analysis import layer_matches, pattern_targets

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
            layers = {layer.path for model in models for layer in model.layers}
            matched = sorted(path for path in layers if layer_matches(spec["layers"], path))
            why = (f"matches layers without a kernel ({', '.join(matched[:5])})" if matched else
                   "matches no layer")
            close = difflib.get_close_matches(spec["layers"], kernels, n=5, cutoff=0.3) or kernels[:8]
            glob = f"{spec['layers']}*"  # PATTERN is a whole-name glob: 'fc' is not a prefix
            hint = (f" (a PATTERN matches whole names: did you mean {glob!r}?)"
                    if any(layer_matches(glob, name) for name in kernels) else "")
            raise ConfigError(f"--{factor} {item!r} {why} in the files linted; layers with kernels: "
                              f"{', '.join(close)}{' ...' if len(kernels) > len(close) else ''}{hint}")


def missing_error(path: str) -> str:
    """Why a path named on the command line was not linted."""
    if path == "-":  # ruff's convention for stdin: a model is a file or a folder, never a stream
        return "reading a model from stdin is not supported: name the file"
    return "no such file or folder"


def show(opts: CheckOptions, files: list[str], missing: list[str], resolver) -> int:
    """--show-files / --show-settings: stdout, no model read; 2 when a
    path named on the command line does not exist."""
    from reglint.cli.show import show_files, show_settings_of
    from reglint.errors import err

    for path in missing:
        err(f"{path}: {missing_error(path)}")
    if opts.show_settings:
        import dataclasses

        first = files[0] if files else (str(opts.paths[0]) if opts.paths else ".")
        settings = resolver.settings_for(first)
        # the flags the report writer and the baseline apply, not CommandLine.apply
        settings = dataclasses.replace(settings, output_format=opts.output_format or settings.output_format,
                                       baseline=str(opts.baseline) if opts.baseline else settings.baseline)
        show_settings_of(first, settings, sys.stdout)
    else:
        show_files(files, sys.stdout)
    return 2 if missing else 0


def warn_unused_suppressions(groups: list[tuple[Settings, list[str]]], reports: list[FileReport]) -> None:
    """One stderr warning per expired override matching a file of this run,
    and per per-file-ignores entry or override that matched files read in
    this run and suppressed nothing in them."""
    from reglint.engine.selection import expired_overrides, unused_suppressions

    by_path = {r.path: r for r in reports}
    for settings, group in groups:
        for line in expired_overrides(settings, group):
            warn(line)
        source = f" in {display_path(settings.config_file)}" if settings.config_file else ""
        for entry in unused_suppressions(settings, [by_path[p] for p in group if p in by_path]):
            warn(f"{entry}{source} suppressed nothing in the files it matched: remove it, or it will hide the next "
                 "finding it matches")


def report_settings(groups: list[tuple[Settings, list[str]]], resolver, opts: CheckOptions) -> Settings:
    """The settings for what concerns the whole run (output format, baseline,
    the folder paths are shown relative to): those of the files' config when
    they share one, else the working directory's (ruff's fallback)."""
    if len(groups) == 1:
        return groups[0][0]
    if not groups:
        return resolver.settings_for(str(opts.paths[0]) if opts.paths else None)
    return resolver.settings_for(None)


def discover_all(paths: list[str], resolver) -> tuple[list[str], list[str], set[str]]:
    """Each path argument searched with the settings that apply to it (its
    excludes, its .gitignore choice); (sorted unique models, missing paths,
    the models found by searching a folder rather than named)."""
    from reglint.engine.discover import discover, unique_paths

    by_settings: dict[int, tuple[Settings, list[str]]] = {}
    for raw in paths:
        settings = resolver.settings_for(raw)
        by_settings.setdefault(id(settings), (settings, []))[1].append(raw)
    found: list[str] = []
    searched: set[str] = set()
    missing: list[str] = []
    for settings, group in by_settings.values():
        files, gone, below = discover(group, settings)
        found.extend(files)
        searched.update(below)
        missing.extend(gone)
    unique = unique_paths(found)
    return unique, [raw for raw in paths if raw in missing], searched & set(unique)


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
    prefixes (``config.loader.parse_selectors``, which reglint.lint() shares)."""
    from reglint.config.loader import parse_selectors

    return parse_selectors(values, option)


def lint_all(files: list[str], settings: Settings, *, jobs: int, use_cache: bool, progress: bool) -> list[FileReport]:
    from reglint.engine.parallel import lint_many

    return lint_many(files, settings, jobs=jobs, use_cache=use_cache, progress=progress)


def baseline_to_create(opts: CheckOptions, settings: Settings) -> Path | None:
    """The baseline file ``--create-baseline`` writes (``--baseline``, else
    the config's ``baseline``), None without ``--create-baseline``."""
    if opts.baseline is None and settings.baseline:
        opts.baseline = Path(settings.baseline)
    if not opts.create_baseline:
        return None
    if opts.baseline is None:
        raise ConfigError("--create-baseline needs --baseline FILE")
    return opts.baseline


def create_baseline(report: RunReport, path: Path, settings: Settings) -> int:
    """Write every finding of the files read to the baseline; exit 0, or 2
    when some files could not be read (their findings are not in it: the
    baseline would hide them once they are readable again)."""
    from reglint.config.baseline import write_baseline

    try:
        write_baseline(path, report)
    except OSError as exc:
        raise ConfigError(f"cannot write the baseline {path}: {exc.strerror or exc}") from None
    count = sum(len(f.findings) for f in report.files)
    unread = len(report.errors)
    sys.stderr.write(f"reglint: wrote {count} finding{'s' if count != 1 else ''} to {path}"
                     + (f"; {unread} unreadable file{'s' if unread != 1 else ''} left out of it\n" if unread else "\n"))
    return 2 if unread else 0


def write_outputs(report: RunReport, outputs, opts: CheckOptions, settings: Settings) -> None:
    """Every requested format, through the reporters' one writer."""
    from reglint.reporters import OutputOptions
    from reglint.reporters import write_outputs as write
    from reglint.reporters.console import Color

    color = opts.color if opts.color is not None else Color.auto
    # --statistics already replaced, in ``outputs``, the report --output-file
    # (or stdout) gets, as ruff does; the FORMAT:FILE reports stay whole.
    write(report, outputs, settings, OutputOptions(color=color, show_layers=not opts.quiet))


