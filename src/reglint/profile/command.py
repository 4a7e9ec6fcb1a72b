"""``reglint profile PATH``: the CLI glue.

Order matters: everything that can be refused without TensorFlow or
PyTorch (options, the backend, a missing or unreadable file, a SavedModel
folder, a model that would run code from the file, a bad ``--data`` file) is
refused first, in one line with exit code 2, before the slow import. Then
the model is loaded with Keras on the chosen backend, measured (``measure``), turned into findings
(``findings``) and rendered (``render``). Exit codes as ``check``: 0 clean,
1 findings at or above ``--fail-on`` (default error), 2 errors.
"""

from __future__ import annotations

import json
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reglint.engine.finding import Severity
from reglint.engine.report import FileReport, RunReport
from reglint.errors import ReglintError
from reglint.model import Model
from reglint.profile import ProfileError
from reglint.profile.result import Start
from reglint.profile.twin import Horizon
from reglint.readers.keras_objects import KERAS_BUILTIN_FUNCTIONS, plain_function_name

DEVICES = ("auto", "cpu", "gpu")
# A config.json larger than this is not read for the safety scan (the
# static reader has its own limits; this only bounds the second look).
MAX_CONFIG_BYTES = 64 * 1024 * 1024


def run_profile(path: Path, data: Path | None = None, x_key: str = "x", y_key: str = "y",
                steps: int | None = None, batch_size: int = 32, device: str = "auto", trust_model: bool = False,
                output_format: str = "full", output_file: Path | None = None, fail_on: str | None = None,
                seed: int = 0, time_budget: float = 60.0, backend: str = "auto", epochs: int | None = None,
                init: str = "auto", imports: list[str] | None = None, samples: int | None = None) -> int:
    """Profile one model; returns the exit code. ``steps`` None: the twin's
    budget decides (``twin.choose_budget``) within ``time_budget`` seconds,
    unless ``epochs`` (the user's training length over ``samples``
    examples, default the rows of ``data``) sets it; ``backend`` is auto, tensorflow or torch
    (``framework.resolve_backend``); ``init`` is where both runs start
    (``load.choose_start``: auto, saved or fresh); ``imports`` are modules or
    ``.py`` files imported before loading (``--import``, trusted only)."""
    from reglint.errors import err

    try:
        return _profile(Path(path), data, x_key, y_key, steps, batch_size, device, trust_model, output_format,
                        output_file, fail_on, seed, time_budget, backend, epochs, init, imports or [], samples)
    except ReglintError as exc:
        err(str(exc))
        return 2
    except MemoryError:
        err(f"{path}: out of memory while profiling; try a smaller --batch-size or --device cpu")
        return 2


# Layers that read integers as ids, not values.
INTEGER_INPUT_LAYERS = {"Embedding", "IntegerLookup", "StringLookup", "CategoryEncoding", "Hashing",
                        "TextVectorization", "HashedCrossing"}


def _integer_values(report, keys: list[str]) -> list[bool]:
    """Per array of ``--data``'s inputs, whether integers in it are values
    (pixels) rather than token ids: ids where the model input of that name
    (or the only one) feeds a layer that reads ids within three layers;
    where the arrays cannot be matched to inputs, ids if any layer reads
    them (review 59, 6: pixels beside token ids were taken for ids)."""
    model, analysis = report.model, report.analysis
    inputs = {layer.name: layer for layer in model.layers
              if layer.class_name == "InputLayer" and layer.path == layer.name}
    anywhere = any(layer.class_name in INTEGER_INPUT_LAYERS for layer in model.layers)

    def reads_ids(start) -> bool:
        frontier = [start]
        for _ in range(3):
            frontier = [nxt for layer in frontier for nxt in analysis.consumers(layer)]
            if any(nxt.class_name in INTEGER_INPUT_LAYERS for nxt in frontier):
                return True
        return False

    only = next(iter(inputs.values())) if len(inputs) == 1 else None
    values = []
    for key in keys:
        layer = inputs.get(key) or only
        values.append(not (reads_ids(layer) if layer is not None and analysis is not None else anywhere))
    return values


def _with_training_length(path: Path, report, settings, epochs: int | None, examples: int):
    """The static report again with ``--epochs`` over ``examples`` as the
    training's length (``_set_training_length``)."""
    return _relinted(path, report, settings) if _set_training_length(settings, epochs, examples) else report


def _with_input_scale(path: Path, report, settings, npz):
    """The static report again with the inputs' moments measured on
    ``--data`` (``_set_input_scale``)."""
    return _relinted(path, report, settings) if _set_input_scale(report, settings, npz) else report


def _set_training_length(settings, epochs: int | None, examples: int) -> bool:
    """Give the static rules ``--epochs`` over ``examples`` as the training's
    length, where no config gave one: the rules that use it (RL003's
    integrated decay, RL007's measured suggestion) judge the run profile
    trains (review 69, 1: they saw none). Whether it set it."""
    ctx = settings.context
    if epochs is None or ctx.epochs is not None or ctx.steps is not None:
        return False
    ctx.epochs, ctx.samples = epochs, examples  # the length profile trains: its Horizon.from_epochs
    return True


def _set_input_scale(report, settings, npz) -> bool:
    """Give the static rules the inputs' mean square and mean measured on
    ``--data`` where an activity penalty's estimate depends on them and the
    user gave no mean square (RL010's "static estimate" beside the measured
    one assumes standardised inputs otherwise: review 53, 4, 9x on [0, 1]).
    Whether it set them."""
    if settings.context.input_var is not None or not any(
            layer.activity_regularizer for layer in report.model.layers):
        return False
    moments = npz.input_moments(_integer_values(report, npz.x_keys))
    if moments is None:
        return False
    settings.context.input_mean, settings.context.input_var = moments
    return True


def _relinted(path: Path, report, settings):
    """The static report under the settings' new context (``report`` where
    that read fails)."""
    from reglint.engine.runner import lint_file

    again = lint_file(str(path), settings)
    return again if again.error is None and again.model is not None else report


def _profile(path: Path, data: Path | None, x_key: str, y_key: str, steps: int | None, batch_size: int,
             device: str, trust_model: bool, output_format: str, output_file: Path | None, fail_on: str | None,
             seed: int, time_budget: float, backend: str, epochs: int | None = None, init: str = "auto",
             imports: list[str] | None = None, samples: int | None = None) -> int:
    from reglint.config.loader import load_settings
    from reglint.engine.runner import lint_file
    from reglint.profile.framework import resolve_backend
    from reglint.reporters import check_targets, parse_outputs

    settings = load_settings([str(path)])
    if fail_on is not None:
        settings.fail_on = None if fail_on == "none" else Severity.parse(fail_on)
    settings.context.batch_size = batch_size
    trust = trust_model or settings.trust_model
    outputs = parse_outputs(output_format, output_file)
    # A report path that cannot be written fails now, not after the training.
    check_targets(outputs, [str(path)], data=str(data) if data is not None else None)
    if str(device).lower() not in DEVICES:
        raise ProfileError(f"--device must be one of {', '.join(DEVICES)}, not {device!r}")
    if (steps is not None and steps < 1) or batch_size < 1:
        raise ProfileError("--steps and --batch-size must be at least 1")
    if not time_budget > 0:
        raise ProfileError("--time-budget must be a positive number of seconds")
    if epochs is not None and (steps is not None or data is None or epochs < 1):
        raise ProfileError("--epochs needs --data (its examples make an epoch), at least 1, and no --steps"
                           if steps is None else "give --steps or --epochs, not both")
    if samples is not None and (epochs is None or samples < 1):
        # review 57, 6: --data with its held-out part counted 684 steps for a 540-step training
        raise ProfileError("--samples sizes --epochs' epochs (your training's examples): give --epochs with it, "
                           "and at least 1")
    if imports and not trust:
        raise ProfileError("--import runs that module's code: pass --trust-model with it if you trust it")
    refuse_savedmodel(path)
    refuse_non_keras(path)  # what the file is, before what this install lacks (review 39, 7)
    backend_name = resolve_backend(backend)

    report = lint_file(str(path), settings)
    if report.error or report.model is None:
        raise ProfileError(f"{path}: {report.error or 'no model read'}")
    from reglint.profile.load import choose_start

    start = choose_start(init, report.model)  # before any data is read: a bad --init is a usage error
    refuse_unusable_loss_weights(report.model, path)
    refuse_untrainable(report.model, path)
    reasons = refusal_reasons(report.model, path)
    if reasons and not trust:
        more = f" and {len(reasons) - 3} more" if len(reasons) > 3 else ""
        raise ProfileError(f"{path}: refusing to run code from the model file ({'; '.join(reasons[:3])}{more}); "
                           f"pass --trust-model if you trust it")
    npz = None
    if data is not None:
        from reglint.profile.data import load_npz

        npz = load_npz(data, x_key, y_key)
        npz.epoch_samples = samples
        lengthened = _set_training_length(settings, epochs, samples or npz.examples)
        if _set_input_scale(report, settings, npz) or lengthened:  # one read of the file for both
            report = _relinted(path, report, settings)
    horizon: int | Horizon | None = steps
    if epochs is not None and npz is not None:
        horizon = Horizon.from_epochs(epochs, samples or npz.examples, batch_size)
    elif steps is None and npz is not None and _steps_taken(report.model):
        # A trained file says how long its training was: judge there, as
        # --epochs would (the default budget may run past a stall window).
        horizon = Horizon.from_file(_steps_taken(report.model), batch_size)
    elif steps is None and npz is not None and (end := _schedule_end(report.model)) is not None:
        # A schedule that ends (CosineDecay's decay_steps) was sized to the
        # training: judge where it ends, not past it.
        horizon = Horizon.from_schedule(*end)

    from reglint.engine.selection import filter_findings, selected_rules

    selected = {cls.code for cls in selected_rules(settings)}
    result = _measure(path, report, npz, steps=horizon, batch_size=batch_size, device=device, trust=trust, seed=seed,
                      time_budget=time_budget, backend_name=backend_name, start=start, imports=imports or [],
                      next_trial=_next_trial(settings) if "RL023" in selected else None)
    from reglint.reporters.text import lambda_note

    skipped = lambda_note(report.model, ran=True)
    if skipped:
        result.notes.append(skipped)

    from reglint.profile.findings import attach_twin_verdict, measured_findings, weigh_fixes_by_trials, yield_to_twin

    attach_twin_verdict(result, report, settings.thresholds)
    measured = measured_findings(result, report, settings.thresholds, selected)
    kept, suppressed = filter_findings(measured, str(path), settings)
    findings = weigh_fixes_by_trials(result, yield_to_twin(result, report.findings + kept), settings.thresholds)
    report.findings = sorted(findings,
                             key=lambda f: (-f.severity.rank, f.code, not f.measured, f.layer or ""))
    report.suppressed = report.suppressed + suppressed
    run_report = RunReport(files=[report])

    from reglint.profile.render import write_outputs

    write_outputs(run_report, result, outputs, settings)  # a file it cannot write: ReglintError naming it
    return run_report.exit_code(settings.fail_on)


def _next_trial(settings):
    """RL023's choice of the next fix to measure (its ``next_trial``),
    under the run's thresholds."""
    from reglint.engine.rule import get_rule

    rule = get_rule("RL023")
    if rule is None:
        return None
    judging: Any = rule(settings.thresholds)  # RL023: next_trial is its own
    return judging.next_trial


def _measure(path: Path, report: FileReport, npz, *, steps: int | Horizon | None, batch_size: int, device: str,
             trust: bool, seed: int, time_budget: float, backend_name: str, start: Start | None = None,
             imports: list[str] | None = None, next_trial=None):
    """Import Keras on ``backend_name``, load (re-initialised for a fresh
    ``start``), build the batches and measure; ``time_budget`` counts from
    the start of loading (the import is not counted)."""
    from reglint.profile import measure
    from reglint.profile.data import batches_from_npz, split_held_out, synthetic_batches
    from reglint.profile.framework import load_backend

    backend = load_backend(backend_name)
    keras = backend.keras
    handle, device_name, device_kind = backend.select_device(device)
    measure.import_modules(imports or [])  # the classes they register, before Keras looks them up
    started = time.perf_counter()
    with backend.device_scope(handle):
        # Before loading: a Dropout's (any random layer's) seed generator
        # draws its seed from Python's random when load_model builds it, and
        # the file does not store it; seeded after, two runs would differ.
        backend.set_seed(seed)
        model, compile_problem = measure.load_model(keras, path, trust, hint=_writer_hint(report.model, path))
        if start is not None and start.fresh:
            measure.reinitialize(keras, model, seed, trust_model=trust)
        # A model saved compiled whose compile settings Keras could not
        # restore still has the optimizer the file records.
        static_optimizer = report.model.optimizer if report.model is not None else None
        compiled = measure.compiled_optimizer(keras, model)
        optimizer = measure.rebuild_optimizer(keras, static_optimizer) if compiled is None else None
        optimizer_note = None
        differ = measure.disagreement(compiled, static_optimizer)
        if differ:  # Keras compiled defaults where it could not read the file's settings
            rebuilt = measure.rebuild_optimizer(keras, static_optimizer)
            if rebuilt is not None:
                model.optimizer = rebuilt
                optimizer_note = (f"Keras compiled another optimizer than the file records ({'; '.join(differ)}): "
                                  f"profile trains with the file's")
            else:
                optimizer_note = (f"Keras compiled another optimizer than the file records ({'; '.join(differ)}) "
                                  f"and the file's could not be rebuilt: profile trains with Keras'")
        decay = getattr(static_optimizer, "lr_decay", None)
        if decay:  # review 38, 11: Keras 3 optimizers have no such setting
            legacy = (f"the file's legacy decay {decay:g} (lr/(1 + decay*t), tf.keras 2's learning-rate decay) is "
                      f"not applied: Keras 3's optimizers have no such setting, so both runs keep the initial rate")
            optimizer_note = f"{optimizer_note}; {legacy}" if optimizer_note else legacy
    load_seconds = time.perf_counter() - started
    if npz is not None and len(npz.xs) == 1 and npz.xs[0].ndim >= 2:
        # a subclassed model whose file records no build shape is fed --data's rows
        model._reglint_data_shape = tuple(int(d) for d in npz.xs[0].shape[1:])
    try:
        loss = measure.resolve_loss(keras, model, report.model, reason=compile_problem)
        inputs, targets = measure.model_specs(model, loss)
        held = None
        every = batches_from_npz(npz, inputs, targets, batch_size, seed) if npz is not None else \
            synthetic_batches(inputs, targets, batch_size, seed)
        every.input_keys = measure.input_keys(model)
        batches, held = split_held_out(every) if npz is not None else (every, None)
        with progress_bar() as progress, keras_warnings_quiet():
            return measure.run_profile_measurement(
                backend, model, batches, loss, steps=steps, device=handle, device_name=device_name,
                device_kind=device_kind, load_seconds=load_seconds, analysis=report.analysis,
                optimizer=optimizer, held=held, time_budget=time_budget, started=started, progress=progress,
                start_at=start, optimizer_note=optimizer_note, next_trial=next_trial)
    except ReglintError:
        raise
    except Exception as exc:  # TensorFlow and PyTorch errors: one line, never a traceback
        hint = "; try a smaller --batch-size or --device cpu" if _out_of_memory(exc) else ""
        raise ProfileError(f"{path}: profiling failed ({type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:300]}){hint}") from None
    finally:
        del model
        backend.clear_session()


@contextmanager
def keras_warnings_quiet() -> Iterator[None]:
    """Keras' UserWarning while the profile runs that a functional model
    is fed one tensor where its config lists one input ("The structure of
    `inputs` doesn't match"): advice to the model's author, noise in a
    report; REGLINT_DEBUG=1 keeps it."""
    import os
    import warnings

    with warnings.catch_warnings():
        if not os.environ.get("REGLINT_DEBUG"):
            # that one message only: Keras' other UserWarnings are about the
            # model itself (a from_logits=True loss reading a softmax output)
            warnings.filterwarnings("ignore", message=r"The structure of `inputs` doesn't match",
                                    category=UserWarning, module=r"keras(\.|$)")
        yield


def _writer_hint(model: Model | None, path: Path) -> str:
    """What to do with a file Keras 3 may not load: one written by tf.keras
    2 (its .keras files name classes Keras 3 does not know; its .h5 files
    mostly load)."""
    version = (model.framework_version or "") if model is not None else ""
    if model is None or not (model.framework == "tf.keras" or version.startswith(("1.", "2."))):
        return ""
    fix = ": save it from tf.keras as .h5, model.save('model.h5'), which Keras 3 reads better" \
        if model.format != "keras_h5" else ""
    return f" written by Keras {version} (profile loads with Keras 3{fix})"


def _steps_taken(model: Model | None) -> int:
    """The optimizer steps the file records (0: untrained or not recorded)."""
    opt = model.optimizer if model is not None else None
    return int(opt.iterations or 0) if opt is not None else 0


def _schedule_end(model: Model | None) -> tuple[int, str] | None:
    """Where the file's learning-rate schedule ends, and its name (None:
    a constant rate, or a schedule without an end)."""
    opt = model.optimizer if model is not None else None
    lr = opt.learning_rate if opt is not None else None
    length = lr.length() if lr is not None and lr.schedule else None
    return (length, str(lr.schedule)) if length and lr is not None else None


def _out_of_memory(exc: BaseException) -> bool:
    """TensorFlow's ResourceExhaustedError, PyTorch's OutOfMemoryError."""
    name = type(exc).__name__
    return "ResourceExhausted" in name or "OutOfMemory" in name or "out of memory" in str(exc)[:200]


@contextmanager
def progress_bar() -> Iterator[Any]:
    """A rich progress bar on stderr, per step of both runs, only when
    stderr is a terminal; its total is known once the budget is."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("profiling"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("steps", total=None, info="")

        def update(step: int, total: int, values: dict[str, float]) -> None:
            bar.update(task, completed=step, total=total,
                       info=f"data loss {values['data_loss']:.4g}  penalty {values['penalty']:.4g}")

        yield update


# ---------------------------------------------------------------------------
# refusals before any Keras code runs


def refuse_savedmodel(path: Path) -> None:
    """Keras 3 loads only .keras and .h5 for training: say so in one line."""
    folder = path if path.is_dir() else path.parent
    if not ((path.is_dir() and (path / "saved_model.pb").is_file()) or
            path.name in ("saved_model.pb", "keras_metadata.pb")):
        return
    if (folder / "keras_metadata.pb").is_file():
        raise ProfileError(f"{path}: a tf.keras 2 SavedModel (keras_metadata.pb); Keras 3 cannot load it for "
                           f"training: load it with tf_keras and save it as .h5, or re-save it as .keras")
    raise ProfileError(f"{path}: a SavedModel folder is an inference graph Keras 3 cannot train; profile the "
                       f".keras or .h5 file it was exported from")


def refuse_unusable_loss_weights(model: Model, path: Path) -> None:
    """Loss weights Keras' ``fit`` fails on or turns the loss NaN with (RL026:
    metrics passed by position to Keras 3's compile, weights Keras 3 cannot
    pair with the losses, NaN) and a dict of losses naming no output
    (RL027): one line, before TensorFlow is imported,
    instead of Keras' error from the first step."""
    from reglint.model import ProblemKind

    for problem in model.problems_of(ProblemKind.INVALID_LOSS_WEIGHT):
        raise ProfileError(f"{path}: {problem.message} (RL026; `reglint check` says how to fix it)")
    for problem in model.problems_of(ProblemKind.UNKNOWN_LOSS_OUTPUT):
        raise ProfileError(f"{path}: {problem.message} (RL027; `reglint check` says how to fix it)")


def refuse_untrainable(model: Model, path: Path) -> None:
    """Files the profile cannot train, in one line before TensorFlow loads:
    a weights-only file (no architecture: Keras' "No model config found")
    and a stateful RNN (it runs only on batches of its fixed size with its
    state carried from one to the next; Keras' error was cut mid-sentence)."""
    if model.format == "keras_weights":
        raise ProfileError(f"{path}: a weights-only file has no architecture to train; profile the model saved "
                           f"whole (model.save('model.keras'))")
    stateful = [layer.path for layer in model.layers if layer.config.get("stateful") is True]
    if stateful:
        raise ProfileError(f"{path}: {stateful[0]} is a stateful RNN (it takes batches of one fixed size and carries "
                           f"its state between them), which profile does not train; profile the model rebuilt with "
                           f"stateful=False")


def refuse_non_keras(path: Path) -> None:
    """An ONNX (or any non-Keras) file: one line naming what it is, before
    TensorFlow is imported, instead of Keras' own error cut mid-word."""
    from reglint.readers.sniff import Format, sniff

    try:
        found = sniff(path)
    except ReglintError:
        return  # unreadable: the static reader says why, in its own words
    if found in (Format.KERAS_ZIP, Format.HDF5, Format.SAVEDMODEL):
        return
    kind = "onnx" if found is Format.ONNX else found.value
    raise ProfileError(f"profile reads Keras models (.keras, .h5); {path} is {kind}")


def refusal_reasons(model: Model, path: Path) -> list[str]:
    """What in the file would run code on load: ``Lambda`` layers (their
    function is Python bytecode) and classes outside Keras (``module`` not
    ``keras``/``keras.*``, registered custom names, custom layers,
    regularizers or initializers the static reader found)."""
    reasons: list[str] = []
    raw = raw_config(path)
    objects = list(_objects(raw)) if raw is not None else []
    for obj in objects:
        if obj.get("class_name") == "Lambda":
            cfg = obj.get("config")
            reasons.append(f"Lambda layer {(cfg.get('name') if isinstance(cfg, dict) else None) or '?'}")
    if raw is None:
        reasons += [f"Lambda layer {layer.path}" for layer in model.layers if layer.class_name == "Lambda"]
    if any("module" in obj for obj in objects):
        for obj in objects:
            custom = _custom_object(obj)
            if custom:
                reasons.append(f"custom {custom}")
    else:  # legacy configs without `module`: trust the static reader's judgement
        for layer in model.layers:
            if layer.custom:
                reasons.append(f"custom layer {layer.class_name} ({layer.path})")
            for var in layer.variables:
                if var.regularizer is not None and var.regularizer.kind == "custom":
                    reasons.append(f"custom regularizer {var.regularizer.class_name} ({layer.path}/{var.name})")
                if var.initializer is not None and var.initializer.name.startswith("custom:"):
                    reasons.append(f"custom initializer {var.initializer.name[7:]} ({layer.path}/{var.name})")
            reg = layer.activity_regularizer
            if reg is not None and reg.kind == "custom":
                reasons.append(f"custom activity regularizer {reg.class_name} ({layer.path})")
    seen, out = set(), []
    for reason in reasons:
        if reason not in seen:
            seen.add(reason)
            out.append(reason)
    return out


def raw_config(path: Path) -> dict[str, Any] | None:
    """The model config as saved (``config.json`` of a .keras zip,
    ``model_config`` of an HDF5 file), or None."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                info = archive.getinfo("config.json")
                if info.file_size > MAX_CONFIG_BYTES:
                    return None
                return json.loads(archive.read(info))
        import h5py

        with h5py.File(path, "r") as handle:
            text = handle.attrs.get("model_config")
            if text is None:
                return None
            if isinstance(text, bytes):
                text = text.decode("utf-8", errors="replace")
            return json.loads(text)
    except Exception:  # the static reader already vouched for the file; this is a second look
        return None


def _objects(node: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every serialized object ({"class_name": ...}) in a config."""
    if depth > 200:
        return
    if isinstance(node, dict):
        if "class_name" in node:
            yield node
        for value in node.values():
            yield from _objects(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value, depth + 1)


def _keras_module(module: str) -> bool:
    """Keras' own classes; tf.keras writes ``tf_keras.src...`` into .keras files."""
    return any(module == root or module.startswith(root + ".") for root in ("keras", "tf_keras"))


def _custom_object(obj: dict[str, Any]) -> str | None:
    """A name for an object Keras would have to find outside itself, else None."""
    if "module" not in obj and "registered_name" not in obj:
        return None
    module, registered = obj.get("module"), obj.get("registered_name")
    if isinstance(module, str) and _keras_module(module):
        return None
    function = plain_function_name(obj)
    if function is not None:
        # Keras finds a plain builtin function by its name (a Keras loss,
        # metric or activation): nothing outside Keras runs
        if module in (None, "builtins") and function in KERAS_BUILTIN_FUNCTIONS:
            return None
        name = registered if registered and registered != "function" else function
        return f"function {name}" + (f" (module {module})" if module and module != "builtins" else "")
    if registered:
        return f"class {registered}"
    return f"class {module}.{obj.get('class_name')}" if module else f"class {obj.get('class_name')}"
