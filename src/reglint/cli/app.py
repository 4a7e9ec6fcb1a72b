"""The ``reglint`` command (Typer).

``reglint PATH`` is ``reglint check PATH``. Exit codes follow ruff: 0 clean,
1 findings at or above ``--fail-on``, 2 usage error or unreadable input (a
one-line message on stderr; the other files are still linted). A reader of
stdout that stops early (``| head``) changes nothing: the exit code is the
run's own, without a message (``reglint.cli.PipeSafe``).
"""

from __future__ import annotations

import math
import os
import sys
import traceback
from enum import Enum
from pathlib import Path

import typer

from reglint import __version__
from reglint.errors import ReglintError, err
from reglint.reporters.console import Color

COMMANDS = ("check", "rules", "rule", "explain", "profile", "version", "clean")
ROOT_OPTIONS = ("--version", "--help", "-h")

EXIT_CODES = ("Exit codes: 0 clean (or every finding below --fail-on); 1 findings at or above --fail-on "
              "(default error); 2 usage, configuration or read error.")

app = typer.Typer(
    name="reglint",
    help="Lint the regularization of saved Keras, ONNX and PyTorch models (.pt/.pth/.ckpt checkpoints, "
         "safetensors, Hugging Face folders) and GGUF files: lambdas and weight decays that dominate the loss, "
         "destabilise training or do nothing.\n\n"
         "[bold]reglint FILE ...[/] is short for [bold]reglint check FILE ...[/]\n\n" + EXIT_CODES,
    epilog="reglint check -h lists the options of a lint run.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    add_completion=False,
)


class FailOn(str, Enum):
    error = "error"
    warning = "warning"
    info = "info"
    none = "none"


class ProfileInit(str, Enum):
    """``reglint profile --init`` (``profile.load.choose_start``)."""

    auto = "auto"
    saved = "saved"
    fresh = "fresh"


# ---------------------------------------------------------------------------
# training-context options: declared once, as TrainingContext's fields


def _context_check(option):
    """The option's value checked against its range (``ContextOption.violation``,
    the config's and reglint.lint()'s check too, so that every way in says
    the same range): finite, > 0 where a formula divides by it, < 1 for
    momentum; an optimizer must be a class the readers know, given back in
    its canonical spelling."""
    def check(value):
        if value is None:
            return value
        if option.kind is str and option.name == "optimizer":
            from reglint.readers.optimizer_names import checked_optimizer_setting

            try:
                return checked_optimizer_setting(value)
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise typer.BadParameter(f"{value!r} is not a finite number")
        if option.violation(value):
            raise typer.BadParameter(f"{value:g} is not {option.range_text()}")
        return value

    return check


def with_context_options(panel: str):
    """Give a command one option per ``TrainingContext`` scalar field
    (``--samples``, ``--learning-rate``/``--lr`` ...) and hand their values
    to it as ``context`` (a dict of the given ones)."""
    import functools
    import inspect
    from typing import get_type_hints

    from reglint.engine.analysis import context_options

    options = context_options()

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            given = {o.name: kwargs.pop(o.name) for o in options if kwargs.get(o.name) is not None}
            for o in options:
                kwargs.pop(o.name, None)
            return func(*args, context=given, **kwargs)

        own = [p for p in inspect.signature(func).parameters.values() if p.name != "context"]
        extra = [inspect.Parameter(o.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=o.kind | None,
                                   default=typer.Option(None, f"--{o.key}", *o.flags,
                                                        help=f"{o.help} Valid: {o.range_text()}." if o.min is not None
                                                        else o.help, rich_help_panel=panel,
                                                        callback=_context_check(o)))
                 for o in options]
        hints = {k: v for k, v in get_type_hints(func).items() if k != "context"}
        # inspect.signature() (and so Typer) reads __signature__; typeshed's _Wrapped does not declare it.
        wrapper.__signature__ = inspect.Signature(own + extra)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {**hints, **{o.name: o.kind | None for o in options}}
        return wrapper

    return decorate


RULE_SELECTION = "Rule selection"
CONTEXT = "Training context (what a model file does not say)"
OUTPUT = "Output"
FILES = "File selection"


def pattern_option(factor: str):
    """``--l2``/``--l1 PATTERN=LAMBDA``: check's and explain's alike."""
    return typer.Option(
        None, f"--{factor}", metavar="PATTERN=LAMBDA",
        help=f"Apply {factor.upper()}(LAMBDA) to the kernels (depthwise and pointwise ones included) of layers "
             f"whose name or path matches the glob PATTERN, replacing what the file says (ONNX files save none). "
             f"Repeatable; a PATTERN reaching no kernel is an error.",
        rich_help_panel=CONTEXT)


# ---------------------------------------------------------------------------
# check


@app.command(epilog=EXIT_CODES)
@with_context_options(CONTEXT)
def check(
    paths: list[Path] = typer.Argument(..., readable=False,  # an unreadable file is reported, the others linted
                                       help="Model files or folders (searched for model files)."),
    output_format: str | None = typer.Option(None, "--format", "--output-format", "-f",
                                             envvar="REGLINT_OUTPUT_FORMAT",
                                             help="full (default), concise, json, json-lines, sarif, github, gitlab, "
                                                  "junit, pylint, html. FORMAT:FILE writes to a file; several "
                                                  "separated by commas.",
                                             rich_help_panel=OUTPUT),
    sarif_flavor: str | None = typer.Option(None, "--sarif-flavor", envvar="REGLINT_SARIF_FLAVOR",
                                            help="github (region startLine 1, the default) or strict.",
                                            rich_help_panel=OUTPUT),
    output_file: Path | None = typer.Option(None, "--output-file", "-o", envvar="REGLINT_OUTPUT_FILE",
                                            readable=False,  # written, never read (check_targets checks it)
                                            help="Write the report that would go to stdout here ('-': "
                                                 "stdout); an error when every format has its own FILE.",
                                            rich_help_panel=OUTPUT),
    fail_on: FailOn | None = typer.Option(None, "--fail-on", envvar="REGLINT_FAIL_ON",
                                          help="Exit 1 on findings at or above this severity (default: error).",
                                          rich_help_panel=OUTPUT),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even with findings (2 still means error).",
                                   rich_help_panel=OUTPUT),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only findings: no per-layer table.",
                               rich_help_panel=OUTPUT),
    silent: bool = typer.Option(False, "--silent", "-s",
                                help="No report on stdout, only the exit code (FORMAT:FILE reports are still "
                                     "written; errors still go to stderr).",
                                rich_help_panel=OUTPUT),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Say on stderr, per file, which config governs it, whether the cache "
                                      "served it, and which findings its ignores suppressed.",
                                 rich_help_panel=OUTPUT),
    show_files: bool = typer.Option(False, "--show-files",
                                    help="List the model files and folders a run would lint, and exit.",
                                    rich_help_panel=OUTPUT),
    show_settings: bool = typer.Option(False, "--show-settings",
                                       help="Print the settings the first file is linted with (its config and "
                                            "the command line), and exit.",
                                       rich_help_panel=OUTPUT),
    statistics: bool = typer.Option(False, "--statistics",
                                    help="Print only the count of findings per rule in place of the "
                                         "stdout report, to stdout or to --output-file (as ruff); FORMAT:FILE "
                                         "reports are still written whole.",
                                    rich_help_panel=OUTPUT),
    color: Color = typer.Option(Color.auto, "--color",
                                help="Colour the terminal report; always wins over NO_COLOR, never drops every style.",
                                rich_help_panel=OUTPUT),
    select: list[str] | None = typer.Option(None, "--select",
                                            help="Rule codes or prefixes to run (replaces the config).",
                                            rich_help_panel=RULE_SELECTION),
    extend_select: list[str] | None = typer.Option(None, "--extend-select",
                                                   help="Rule codes or prefixes to run on top of the selected "
                                                        "ones (the config's select, or --select).",
                                                   rich_help_panel=RULE_SELECTION),
    ignore: list[str] | None = typer.Option(None, "--ignore", help="Rule codes or prefixes to skip.",
                                            rich_help_panel=RULE_SELECTION),
    config: list[str] | None = typer.Option(None, "--config",
                                            help="Use this pyproject.toml or reglint.toml, or override one key: "
                                                 "--config \"lint.ignore=['RL011']\" (repeat it for several).",
                                            rich_help_panel=RULE_SELECTION),
    isolated: bool = typer.Option(False, "--isolated", help="Ignore every configuration file.",
                                  rich_help_panel=RULE_SELECTION),
    baseline: Path | None = typer.Option(None, "--baseline", help="Report only findings not in this baseline file.",
                                         rich_help_panel=RULE_SELECTION),
    create_baseline: bool = typer.Option(False, "--create-baseline",
                                         help="Write today's findings to the --baseline file and exit 0 (2 when "
                                              "a file could not be read: its findings are left out).",
                                         rich_help_panel=RULE_SELECTION),
    l2: list[str] | None = pattern_option("l2"),
    l1: list[str] | None = pattern_option("l1"),
    force_exclude: bool = typer.Option(False, "--force-exclude", help="Apply excludes to files named explicitly.",
                                       rich_help_panel=FILES),
    no_cache: bool = typer.Option(False, "--no-cache", "-n", envvar="REGLINT_NO_CACHE",
                                  help="Read every file again instead of reusing cached results (keyed by the "
                                       "file's content, the settings and reglint's version).",
                                  rich_help_panel=FILES),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", envvar="REGLINT_CACHE_DIR",
                                          help="Where the cache lives (default: .reglint_cache in the project "
                                               "root; `reglint clean` removes it).",
                                          rich_help_panel=FILES),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Lint files in parallel processes.",
                             rich_help_panel=FILES),
    context: dict | None = None,
) -> None:
    """Lint model files: parameters, regularizers and optimizer settings against the data-loss scale.

    [bold]reglint FILE ...[/] is short for [bold]reglint check FILE ...[/]
    """
    from reglint.cli.run import CheckOptions, run_check

    options = CheckOptions(**{k: v for k, v in locals().items() if k in CheckOptions.__dataclass_fields__})
    raise typer.Exit(run_check(options))


# ---------------------------------------------------------------------------
# rules


def one_of(*formats: str):
    """A --format callback: only the command's own formats (the others are check's)."""
    def check(value: str) -> str:
        if value.lower() not in formats:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(formats)}")
        return value.lower()

    return check


@app.command("rules")
def rules_command(
    output_format: str = typer.Option("text", "--format", "-f", help="text (default) or json.",
                                      callback=one_of("text", "json")),
) -> None:
    """List the rules."""
    from reglint.engine.rule import all_rules

    rules = all_rules()
    if output_format == "json":
        import json

        data = [{"code": c, "name": r.name, "severity": r.severity.value, "summary": r.summary,
                 "options": {k: o.default for k, o in r.options.items()}} for c, r in rules.items()]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    for code, rule in rules.items():
        sys.stdout.write(f"{code}  {rule.severity.value:<7}  {rule.name:<40}  {rule.summary}\n")
    from reglint.reporters.machine import UNREADABLE_CODE, UNREADABLE_NAME

    sys.stdout.write(f"({UNREADABLE_CODE}  {'error':<7}  {UNREADABLE_NAME:<40}  what CI formats report for a file "
                     f"that could not be read; not a rule: `reglint rule {UNREADABLE_CODE}`)\n")


@app.command("rule")
def rule_command(code: str = typer.Argument(..., help="A rule code (RL001) or name.")) -> None:
    """Print a rule's documentation."""
    from reglint.engine.rule import get_rule
    from reglint.reporters.machine import UNREADABLE_CODE, UNREADABLE_DOC, UNREADABLE_NAME

    rule = get_rule(code)
    if rule is None and code.strip().lower() in (UNREADABLE_CODE.lower(), UNREADABLE_NAME):
        sys.stdout.write(UNREADABLE_DOC)  # the CI formats' code for a file that could not be read (review 45, 6)
        return
    if rule is None:
        err(f"unknown rule {code!r}; `reglint rules` lists them")
        raise typer.Exit(2)
    sys.stdout.write(rule.documentation() + "\n")


@app.command()
@with_context_options(CONTEXT)
def explain(
    path: Path = typer.Argument(..., help="A model file."),
    layer: str | None = typer.Option(None, "--layer", help="Only this layer (name, path or glob)."),
    output_format: str = typer.Option("full", "--format", "-f", help="full (default) or json.",
                                      callback=one_of("full", "json")),
    l2: list[str] | None = pattern_option("l2"),
    l1: list[str] | None = pattern_option("l1"),
    context: dict | None = None,
) -> None:
    """Show, per layer, how the penalty, its gradient and the per-step shrink depend on the weight count."""
    from reglint.cli.explain import run_explain

    raise typer.Exit(run_explain(path, layer=layer, context=context or {}, output_format=output_format,
                                 patterns={"l2": l2, "l1": l1}))


@app.command()
def profile(
    path: Path = typer.Argument(..., help="A Keras model file (.keras, .h5) or SavedModel folder."),
    data: Path | None = typer.Option(None, "--data", help=".npz with training inputs and targets."),
    x_key: str = typer.Option("x", "--x-key", help="Key of the inputs in --data."),
    y_key: str = typer.Option("y", "--y-key", help="Key of the targets in --data."),
    steps: int | None = typer.Option(None, "--steps", min=1,
                                        help="Steps of each run (penalized and twin), cut to --time-budget; "
                                             "default: from the penalty's timescales. A measuring budget, not "
                                             "your training's length: --epochs gives that, and the rules judge "
                                             "over it."),
    epochs: int | None = typer.Option(None, "--epochs", min=1,
                                      help="Your training's length in epochs over --data: both runs take "
                                           "epochs x ceil(examples/batch) steps (cut to --time-budget) and "
                                           "RL023 judges there."),
    samples: int | None = typer.Option(None, "--samples", min=1,
                                       help="Your training's examples, for --epochs (default: the rows of "
                                            "--data); give it when --data holds more than your training set "
                                            "(its held-out part too)."),
    time_budget: float = typer.Option(60.0, "--time-budget", min=0.001,
                                      help="Seconds for loading and both runs; the steps (--steps, --epochs or "
                                           "the default) are cut to fit. When RL023 finds damage, measuring "
                                           "its fix may take up to three quarters as long again."),
    batch_size: int = typer.Option(32, "--batch-size", min=1,
                                   help="Examples per step of both runs (your training's batch size)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or gpu."),
    backend: str = typer.Option("auto", "--backend",
                                help="Keras backend: auto (KERAS_BACKEND, else TensorFlow, else PyTorch), "
                                     "tensorflow or torch."),
    trust_model: bool = typer.Option(False, "--trust-model",
                                     help="Allow Lambda layers and custom objects to run (Keras safe_mode off)."),
    imports: list[str] = typer.Option([], "--import",
                                      help="A module (dotted name, from the current folder) or .py file to import "
                                           "before loading, so the custom classes it registers are found (Keras' "
                                           "custom_objects); runs its code, so it needs --trust-model. Repeatable."),
    output_format: str = typer.Option("full", "--format", "-f", help="full, json, sarif, github, html ..."),
    output_file: Path | None = typer.Option(None, "--output-file", "-o",
                                            help="Write the report here instead of stdout."),
    fail_on: FailOn | None = typer.Option(None, "--fail-on",
                                          help="Exit 1 on findings at or above this severity (default: error)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the held-out split, the batches' order and the "
                                                "framework's random state (one seed, one measurement)."),
    init: ProfileInit = typer.Option(ProfileInit.auto, "--init",
                                     help="Where both runs start: the file's weights (saved), a new draw of the "
                                          "initializers its config records (fresh), or auto: fresh when the "
                                          "file's optimizer took steps (trained weights), else saved."),
) -> None:
    """Measure the penalty against the data gradient per layer, and train the saved recipe beside an
    unregularized twin to see whether the penalty hurts."""
    from reglint.profile.command import run_profile

    raise typer.Exit(run_profile(path=path, data=data, x_key=x_key, y_key=y_key, steps=steps,
                                 batch_size=batch_size, device=device, trust_model=trust_model,
                                 output_format=output_format, output_file=output_file,
                                 fail_on=fail_on.value if fail_on else None, seed=seed,
                                 time_budget=time_budget, backend=backend, epochs=epochs, init=init.value,
                                 imports=list(imports), samples=samples))


@app.command("clean")
def clean_command() -> None:
    """Remove the cache folder (.reglint_cache, or REGLINT_CACHE_DIR)."""
    from reglint.config.loader import load_settings
    from reglint.engine.cache import clear

    clear(load_settings(["."]))


@app.command("version")
def version_command() -> None:
    """Print the version."""
    sys.stdout.write(f"reglint {__version__}\n")


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        sys.stdout.write(f"reglint {__version__}\n")
        raise typer.Exit(0)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: ``reglint PATH`` means ``reglint check PATH``.

    Click runs outside its standalone mode so that a usage error (unknown
    option, bad value, missing argument) is one line on stderr and exit 2,
    like every other error, instead of Typer's boxed usage screen.
    """
    # Typer >= 0.26 vendors Click (pyproject pins it); its exceptions live here.
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    from reglint import errors

    errors.SILENT = False  # only check -s sets it, for its own run
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] not in COMMANDS and args[0] not in ROOT_OPTIONS:
        args.insert(0, "check")  # `reglint FILE` and `reglint --format json FILE` alike
    try:
        result = app(args=args, prog_name="reglint", standalone_mode=False)
    except NoArgsIsHelpError as exc:  # bare `reglint`: the help, exit 2 (Click's convention)
        exc.show()
        return 2
    except UsageError as exc:
        err(usage_message(exc))
        return 2
    except ClickException as exc:
        err(exc.format_message())
        return 2
    except typer.Abort:
        err("aborted")
        return 2
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except ReglintError as exc:
        err(str(exc))
        return 2
    except KeyboardInterrupt:
        err("interrupted")
        return 2
    except PermissionError as exc:  # a path the user cannot read, met outside a reader (config, output)
        err(f"{exc.filename}: permission denied" if exc.filename else "permission denied")
        return 2
    except Exception as exc:  # an internal error: one line, a hint, exit 2
        if os.environ.get("REGLINT_DEBUG"):  # the maintainers' traceback, on request only
            traceback.print_exc()
        err(f"internal error ({type(exc).__name__}: {exc}); please report it with the model file if you can")
        return 2
    return result if isinstance(result, int) else 0


def usage_message(exc) -> str:
    """Click's message as one lower-case line: ``invalid value for
    '--fail-on': 'bogus' is not one of 'error', ...``. The environment
    variable is named only when it is set (then it may be the culprit)."""
    import re

    text = exc.format_message()
    closest = _closest_options(exc)
    if closest:  # Click lists every near match (--lose-scale: --loss-scale, --no-cache, --select)
        text = f"No such option: {exc.option_name} (did you mean {' or '.join(closest)}?)"
    match = re.search(r" \(env var: '([^']+)'\)", text)
    if match and not os.environ.get(match.group(1)):
        text = text.replace(match.group(0), "")
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def _closest_options(exc) -> list[str]:
    """Of the options Click offers for a misspelt one, those as close as
    the closest (difflib's ratio within 0.1 of the best): a typo's fix,
    not every option that shares a few letters."""
    import difflib

    possibilities = list(getattr(exc, "possibilities", None) or [])
    name = getattr(exc, "option_name", None)
    if not possibilities or not name:
        return []
    ratios = {p: difflib.SequenceMatcher(None, name, p).ratio() for p in possibilities}
    best = max(ratios.values())
    return [p for p in possibilities if ratios[p] >= best - 0.1]


def entry() -> None:
    sys.exit(main())
