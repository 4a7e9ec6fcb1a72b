"""Keras for ``reglint profile``: safe-mode loading, the data loss and
the model's inputs and outputs, written against Keras' own API (the same
on TensorFlow and PyTorch), plus the host's CPU name and a stderr silencer
for the backends.

Nothing here imports TensorFlow, PyTorch or Keras: ``keras`` comes in as
an argument from ``framework.load_backend``, so ``reglint check`` never
pays for them.
"""

from __future__ import annotations

import copy
import inspect
import os
import platform
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reglint.model import Role
from reglint.profile import ProfileError
from reglint.profile.data import InputSpec, TargetSpec, canonical_loss_name, label_kind
from reglint.profile.result import Start

CONTAINER_CLASSES = ("Sequential", "Functional", "Model")


@contextmanager
def quiet_native_stderr():
    """Send file descriptor 2 to /dev/null for the duration: TensorFlow's
    C++ start-up lines (absl, cudart stubs, cuInit) ignore
    TF_CPP_MIN_LOG_LEVEL and would break the one-line-error promise. Python
    exceptions still propagate; REGLINT_DEBUG=1 keeps the chatter."""
    if os.environ.get("REGLINT_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreter): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextmanager
def quiet_python_logger(name: str):
    """Python logger ``name`` (absl's, which Keras logs through) at ERROR
    for the duration, unless REGLINT_DEBUG is set."""
    import logging

    logger = logging.getLogger(name)
    level = logger.level
    if not os.environ.get("REGLINT_DEBUG"):
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def cpu_description() -> str:
    """The CPU as the report names it."""
    return f"CPU: {_cpu_name()} ({os.cpu_count()} logical cores)"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def import_modules(specs: list[str]) -> None:
    """``--import``: the modules that register a model's custom classes
    (``@keras.saving.register_keras_serializable``), as ``custom_objects``
    would pass them to ``load_model``. A ``.py`` path is run as a module of
    its own; a dotted name is imported with the current folder on the path.
    Only with ``--trust-model``: importing runs the module's code."""
    import importlib
    import importlib.util

    for spec in specs:
        try:
            if spec.endswith(".py"):
                file = Path(spec)
                if not file.is_file():
                    raise ProfileError(f"--import {spec}: no such file")
                name = f"reglint_import_{file.stem}"
                module_spec = importlib.util.spec_from_file_location(name, file)
                if module_spec is None or module_spec.loader is None:
                    raise ProfileError(f"--import {spec}: not a Python module")
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[name] = module
                module_spec.loader.exec_module(module)
            else:
                if os.getcwd() not in sys.path:
                    sys.path.insert(0, os.getcwd())
                importlib.import_module(spec)
        except ProfileError:
            raise
        except (Exception, SystemExit) as exc:  # the user's code: any failure is one line
            raise ProfileError(f"--import {spec} failed: {_one(exc)[:300]}") from None


def load_model(keras, path: Path, trust_model: bool, hint: str = "") -> tuple[Any, str | None]:
    """``keras.saving.load_model`` with ``safe_mode`` unless trusted; any
    failure becomes one line. When only the compile settings fail to
    deserialize (legacy HDF5 files whose loss or metrics Keras 3 no longer
    reads), the model is loaded uncompiled and the reason returned: the
    loss and optimizer the static reader found stand in. ``hint`` ends
    the message of a file Keras cannot load (what wrote it)."""

    def load(compile: bool):
        with warnings.catch_warnings(), quiet_python_logger("absl"):
            # "Skipping variable loading for optimizer": an unbuilt saved
            # optimizer; the profile builds fresh ones anyway. absl's
            # "Compiled the loaded model, but the compiled metrics have yet
            # to be built" (legacy HDF5): metrics the profile never reads.
            warnings.simplefilter("ignore")
            return keras.saving.load_model(str(path), safe_mode=not trust_model, compile=compile)

    try:
        return load(True), None
    except Exception as exc:
        first = _one(exc)
    if "safe_mode" in first:
        raise ProfileError(f"Keras refused to load it in safe mode ({first[:200]}); pass --trust-model "
                           f"to run the model's code if you trust the file")
    try:
        model = load(False)
    except Exception as exc:
        raise ProfileError(f"Keras could not load the model{hint} ({_one(exc)[:300]})") from None
    return model, f"Keras could not restore the compile settings ({first[:160]})"


INITS = ("auto", "saved", "fresh")
# Non-trainable variables a new training starts afresh (BatchNormalization's).
MOVING_STATISTICS = ("moving_mean", "moving_variance")


def choose_start(init: str, static_model) -> Start:
    """``--init``: ``saved`` starts every measurement at the file's weights,
    ``fresh`` at a new draw of its initializers; ``auto`` (the default)
    takes a fresh draw when the file's optimizer records steps (the weights
    are trained: a penalty that already collapsed them leaves neither run
    anything to learn from, and a trained network says little about whether
    the recipe trains), else the saved weights (the untrained file a
    project commits). A trained file with frozen kernels keeps its weights:
    frozen layers hold pretrained features (transfer learning), and the
    trainable layers after them were fitted to those features; ``--init
    fresh`` redraws only the trainable weights (``reinitialize``)."""
    if init not in INITS:
        raise ProfileError(f"--init must be one of {', '.join(INITS)}, not {init!r}")
    opt = getattr(static_model, "optimizer", None)
    taken = getattr(opt, "iterations", None) or 0
    if init == "fresh":
        return Start(True, "--init fresh")
    if init == "saved":
        return Start(False, "--init saved")
    frozen = _frozen_kernels(static_model)
    if taken > 0 and frozen:
        return Start(False, f"the file's optimizer took {taken:,} steps, but {frozen} frozen kernel(s) hold "
                            f"pretrained features; --init fresh redraws the trainable weights only")
    if taken > 0:
        return Start(True, f"the file's optimizer took {taken:,} steps, so its weights are trained; "
                           f"--init saved starts from them")
    return Start(False, "the file's optimizer took no step: its weights are an initialisation")


@contextmanager
def _safe_mode(keras, on: bool) -> Iterator[None]:
    """Keras' deserialization safe mode for the block (what ``load_model``'s
    ``safe_mode`` sets for loading), through the Keras module the backend
    imported (the static path imports none)."""
    with keras.src.saving.serialization_lib.SafeModeScope(on):
        yield


def _frozen_kernels(static_model) -> int:
    """Kernels and embeddings training does not update (frozen layer or variable)."""
    if static_model is None:
        return 0
    return sum(1 for layer, var in static_model.variables()
               if (var.role.is_kernel_like or var.role is Role.EMBEDDINGS)
               and not (layer.trainable and var.trainable))


def reinitialize(keras, model, seed: int, trust_model: bool = False) -> None:
    """Every variable of ``model`` redrawn from the initializers its config
    records: ``keras.models.clone_model`` builds the same architecture with
    new weights (seeded), whose values are copied into the loaded model (its
    compile state kept). Trainable variables are redrawn, and the moving
    statistics of normalization layers that train restart at their initial
    values, as in a new training; every other non-trainable variable keeps
    its saved value (a Normalization layer's adapted mean and variance come
    from the data; a frozen BatchNormalization keeps the statistics of the
    features it was frozen with). Cloning deserializes the layers again, so it runs in the
    safe mode the model was loaded in (off with --trust-model). The draw is
    made on the CPU, so a seed gives the same weights on every device."""
    try:
        # Drawn on the CPU whatever the run's device, the seed's state too:
        # PyTorch's CUDA generator gives other numbers than its CPU one for
        # the same seed (on an H200 the twin of a 20-64-3 MLP started
        # elsewhere and its ratios moved 20%), so --seed would name two draws.
        with _safe_mode(keras, not trust_model), _on_cpu(keras):
            keras.utils.set_random_seed(seed)
            fresh = keras.models.clone_model(model)
    except Exception as exc:
        raise ProfileError(f"cannot draw a fresh initialisation of this model ({_one(exc)[:200]}); "
                           f"pass --init saved to start from the file's weights") from None
    old, new = list(model.weights), list(fresh.weights)
    if len(old) != len(new) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(old, new, strict=False)):
        raise ProfileError("cannot draw a fresh initialisation: the rebuilt model's weights differ from the "
                           "file's; pass --init saved to start from the file's weights")
    restart = _training_statistics(model)
    with _on_cpu(keras):  # the values read where they were drawn; assign copies them to each variable's device
        for variable, drawn in zip(old, new, strict=True):
            if variable.trainable or id(variable) in restart:
                variable.assign(keras.ops.convert_to_numpy(drawn))


def _on_cpu(keras) -> AbstractContextManager[Any]:
    """Keras' device scope for the CPU (a Keras 3 without ``keras.device``:
    wherever the framework puts it)."""
    scope = getattr(keras, "device", None)
    return scope("cpu") if scope is not None else nullcontext()


def _training_statistics(model) -> set[int]:
    """The moving statistics of the normalization layers that train (a
    frozen one's are part of what it was frozen with)."""
    layers = model._flatten_layers(include_self=False) if hasattr(model, "_flatten_layers") else model.layers
    return {id(getattr(layer, name)) for layer in layers if layer.trainable
            for name in MOVING_STATISTICS if getattr(layer, name, None) is not None}


def _one(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def rebuild_optimizer(keras, static_optimizer):
    """The optimizer the static reader found, rebuilt from its saved config
    (for files whose compile settings Keras could not restore); None if
    Keras cannot build it."""
    if static_optimizer is None or not static_optimizer.config:
        return None
    try:
        return deserialize_optimizer(keras, {"class_name": static_optimizer.class_name,
                                             "config": dict(static_optimizer.config)})
    except Exception:
        return None


# the settings compared between the optimizer Keras compiled and the one the
# file records (a schedule's learning rate is compared only when both are numbers)
COMPARED = ("learning_rate", "momentum", "nesterov", "weight_decay", "beta_1", "beta_2", "epsilon", "rho")


def disagreement(compiled, static_optimizer) -> list[str]:
    """The settings where the optimizer Keras compiled differs from the one
    the file records: Keras 3 compiles a tf_keras .h5's optimizer with its
    defaults where it cannot read the saved config (review 38, 1: SGD at lr
    0.01 without momentum for the file's lr 0.05, momentum 0.9; AdamW's
    weight_decay 0.004 for 0.01). Empty where they agree or cannot be told
    apart."""
    if compiled is None or static_optimizer is None or not static_optimizer.config:
        return []
    inner = getattr(compiled, "inner_optimizer", compiled)
    try:
        have = inner.get_config()
    except Exception:
        return []
    saved = static_optimizer.config
    found = []
    for key in COMPARED:
        a, b = have.get(key), saved.get(key)
        if isinstance(a, bool) or isinstance(b, bool):
            if isinstance(a, bool) and isinstance(b, bool) and a != b:
                found.append(f"{key} {b} (compiled: {a})")
            continue
        a = 0.0 if a is None and key == "weight_decay" else a
        b = 0.0 if b is None and key == "weight_decay" else b
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) > 1e-6 * max(abs(a), abs(b)):
            found.append(f"{key} {b:g} (compiled: {a:g})")
    if type(inner).__name__.lower() != str(static_optimizer.class_name).lower() and static_optimizer.class_name:
        found.insert(0, f"class {static_optimizer.class_name} (compiled: {type(inner).__name__})")
    return found


def deserialize_optimizer(keras, config: dict[str, Any]):
    """An optimizer from its serialized config: ``keras.optimizers.deserialize``,
    which hands back the bare class name (a str) for an optimizer missing
    from its name table (Keras 3.15: ``Lamb``); else Keras' general
    deserializer, which follows the config's ``module``; else the class of
    that name in ``keras.optimizers`` (legacy HDF5 configs name no module).
    Failing those, the class called with the settings its constructor takes
    (tf_keras configs). Raises when none gives an optimizer."""
    config = copy.deepcopy(config)
    name = str(config.get("class_name"))  # Keras' deserializers may rewrite the config they are given

    def by_class_name():
        cls: Any = getattr(keras.optimizers, name)
        return cls.from_config(copy.deepcopy(config.get("config", {})))

    def by_known_arguments():
        # tf_keras' configs carry keys Keras 3 refuses (is_legacy_optimizer,
        # jit_compile): the settings its constructor takes (review 38, 1)
        cls: Any = getattr(keras.optimizers, name)
        accepted = inspect.signature(cls.__init__).parameters
        settings = {k: v for k, v in (config.get("config") or {}).items() if k in accepted and k != "self"}
        return cls(**settings)

    error: Exception | None = None
    for attempt in (lambda: keras.optimizers.deserialize(copy.deepcopy(config)),
                    lambda: keras.saving.deserialize_keras_object(copy.deepcopy(config)), by_class_name,
                    by_known_arguments):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                built = attempt()
        except Exception as exc:
            error = exc
            continue
        if isinstance(built, keras.optimizers.Optimizer):
            return built
    raise ValueError(f"{name!r} did not deserialize to an optimizer") from error


# ---------------------------------------------------------------------------
# the model's inputs, outputs and loss


@dataclass
class DataLoss:
    """The data loss L(y, y_pred) and where it came from."""

    fn: Callable[[Any, Any], Any]
    names: list[str | None]  # one per output, canonical where known
    source: str  # compiled, file, default
    note: str | None = None
    from_logits: list[bool | None] = field(default_factory=list)  # per output, where known
    # per output, the name Keras matches its loss, target and prediction by
    # (``output_keys``); empty: one unnamed output
    outputs: list[str] = field(default_factory=list)
    # per output, the class id a sparse loss skips (``ignore_class``), where set
    ignore_class: list[int | None] = field(default_factory=list)
    # per output, whether a loss trains it: Keras leaves out an output whose
    # loss is None (or that a loss dict does not name), and ``fit`` takes no
    # target for it; empty: every output
    trained: list[bool] = field(default_factory=list)
    # per trained output, the weight its loss carries in the total (``loss_weights``); empty where not known
    weights: list[float] = field(default_factory=list)

    def trained_outputs(self) -> list[int]:
        """The positions (in ``model.outputs``' order) of the outputs a loss
        trains: the ones that take a target."""
        return [i for i in range(len(self.names)) if not self.trained or self.trained[i]]

    def trained_names(self) -> list[str | None]:
        return [self.names[i] for i in self.trained_outputs()]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"names": self.names, "source": self.source, "note": self.note}
        if self.trained and not all(self.trained):
            out["untrained_outputs"] = [self.outputs[i] if i < len(self.outputs) else i
                                        for i, t in enumerate(self.trained) if not t]
        return out


def resolve_loss(keras, model, static_model, reason: str | None = None) -> DataLoss:
    """The compiled loss; else the loss the file records; else a documented
    default from the output activation: softmax -> sparse categorical
    cross-entropy, sigmoid -> binary cross-entropy, anything else -> mean
    squared error."""
    outputs = outputs_of(model)
    keys = output_keys(model)
    layer_names = [o[0] for o in outputs]
    compile_loss = getattr(model, "_compile_loss", None)
    if getattr(model, "compiled", False) and compile_loss is not None:
        compiled = getattr(model, "loss", None)
        trained = _compiled_trained(compiled, len(outputs), keys, layer_names)
        return DataLoss(_with_placeholders(compile_loss, trained), _compiled_names(compiled, len(outputs), keys,
                                                                                    layer_names), "compiled",
                        from_logits=_compiled_from_logits(compiled, len(outputs), keys, layer_names), outputs=keys,
                        ignore_class=_compiled_ignore_class(compiled, len(outputs), keys, layer_names),
                        trained=trained, weights=_recorded_weights(outputs, keys, static_model, trained))
    static_losses = list(static_model.losses) if static_model is not None else []
    static_outputs = list(static_model.outputs) if static_model is not None else []
    names: list[str | None] = []
    objs, weights, source = [], [], "file" if static_losses else "default"
    logits: list[bool | None] = []
    named = [_names_of(out_name, keys[index], static_outputs) for index, (out_name, _) in enumerate(outputs)]
    specs = [_file_loss_of(index, named, static_losses) for index in range(len(outputs))]
    # losses that each name their output (a loss dict): an output none of
    # them names has no loss, as in Keras, and is not given a default one
    # (unless none is named: then the names, not the losses, are off)
    keyed = bool(static_losses) and all(entry.output for entry in static_losses) and \
        any(spec is not None for spec in specs)
    trained = [spec is not None or not keyed for spec in specs]
    for index, ((out_name, _), spec) in enumerate(zip(outputs, specs, strict=True)):
        if not trained[index]:
            names.append(None)
            logits.append(None)
            continue
        activation = next((o.activation for o in static_outputs if o.layer == out_name), None)
        if activation is None and index < len(static_outputs):
            activation = static_outputs[index].activation
        name = canonical_loss_name(spec.name) if spec is not None else None
        if name is None:
            source = "default" if not static_losses else source
            name = {"softmax": "sparse_categorical_crossentropy",
                    "sigmoid": "binary_crossentropy"}.get(activation or "", "mean_squared_error")
        from_logits = spec.from_logits if spec is not None and spec.from_logits is not None else \
            activation not in ("softmax", "sigmoid")
        names.append(name)
        logits.append(from_logits)
        weights.append(spec.weight if spec is not None else 1.0)
        objs.append(_loss_object(keras, name, from_logits))
    trained_keys = [key for key, t in zip(keys, trained, strict=True) if t]
    note = ((reason or "the model was saved uncompiled") + ": " +
            ("the loss the file records is used" if source == "file" else
             f"no loss recorded, so reglint's default from the output activation is used "
             f"({', '.join(str(n) for n in names if n)})"))

    def fn(y, y_pred):
        # a dict (of outputs, or of targets) by the outputs' names, as Keras
        # matches them; a list by position, in the order of model.outputs;
        # targets only for the outputs a loss trains
        ys = by_output(y, trained_keys)
        ps = [p for p, t in zip(by_output(y_pred, keys), trained, strict=False) if t]
        total = None
        # several outputs: one loss, weight, target and prediction each (the
        # targets were checked against the outputs when the data was read)
        for obj, weight, yt, yp in zip(objs, weights, ys, ps, strict=False):
            # a loss *function* returns per-example values; Keras' compiled
            # losses reduce with sum_over_batch_size, i.e. a mean
            value = keras.ops.mean(obj(yt, yp)) * weight
            total = value if total is None else total + value
        return total

    return DataLoss(fn, names, source, note, from_logits=logits, outputs=keys, trained=trained, weights=weights)


def _with_placeholders(compile_loss, trained: list[bool]):
    """The compiled loss taking the trained outputs' targets only: Keras'
    own takes a target per output, None where its loss is None (review 63,
    7: ``loss={"cls": None, "reg": "mse"}`` failed with Keras' KeyError, as
    ``fit`` does without the placeholder)."""
    if not trained or all(trained):
        return compile_loss

    def fn(y, y_pred):
        given = iter(y if isinstance(y, (list, tuple)) else [y])
        return compile_loss([next(given, None) if t else None for t in trained], y_pred)

    return fn


def _recorded_weights(outputs: list, keys: list[str], static_model, trained: list[bool]) -> list[float]:
    """Per trained output, the weight of its loss as the file records it
    (``loss_weights``; 1 where none is given); empty unless the file
    records a loss for every trained output."""
    static_losses = list(static_model.losses) if static_model is not None else []
    static_outputs = list(static_model.outputs) if static_model is not None else []
    named = [_names_of(out_name, keys[index], static_outputs) for index, (out_name, _) in enumerate(outputs)]
    specs = [_file_loss_of(index, named, static_losses) for index in range(len(outputs))
             if index >= len(trained) or trained[index]]
    if not specs or any(spec is None for spec in specs):
        return []
    return [float(spec.weight) for spec in specs]


def by_output(values: Any, keys: list[str]) -> list[Any]:
    """Predictions or targets as a list in the order of ``model.outputs``:
    a dict by the outputs' names (``output_keys``; by sorted key, the order
    Keras flattens a dict in, where they are not all there), a list or
    tuple as it is, anything else as the one output's."""
    if isinstance(values, dict):
        return [values[k] for k in keys] if keys and all(k in values for k in keys) else \
            [values[k] for k in sorted(values)]
    return list(values) if isinstance(values, (list, tuple)) else [values]


def _loss_object(keras, name: str, from_logits: bool):
    try:
        return keras.losses.get({"class_name": _class_of(name), "config": {"from_logits": from_logits}}) \
            if "crossentropy" in name else keras.losses.get(name)
    except Exception:
        try:
            return keras.losses.get(name)
        except Exception:
            raise ProfileError(f"unknown loss {name!r} for an uncompiled model") from None


def _class_of(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _by_name(loss: dict, key: str, layer: str | None) -> Any:
    """A loss dict's entry for one output: by the name Keras matches it by
    (its dict key, for a model whose outputs are a dict), else by its layer's
    name (Keras' ``output_names``, for a list of outputs)."""
    return loss[key] if key in loss else loss.get(layer) if layer is not None else None


def _compiled_names(loss: Any, n_outputs: int, output_names: list[str],
                    layer_names: list[str] | None = None) -> list[str | None]:
    def one(obj: Any) -> str | None:
        if obj is None:
            return None
        if isinstance(obj, str):
            return canonical_loss_name(obj)
        # LossFunctionWrapper subclasses (SparseCategoricalCrossentropy ...) wrap a named function
        wrapped = getattr(getattr(obj, "fn", None), "__name__", None)
        if wrapped:
            return canonical_loss_name(wrapped)
        return canonical_loss_name(getattr(obj, "__name__", None) or type(obj).__name__)

    if isinstance(loss, dict):
        layers: list[str | None] = [*layer_names] if layer_names else [None] * len(output_names)
        return [one(_by_name(loss, name, layer)) for name, layer in zip(output_names, layers, strict=False)]
    if isinstance(loss, (list, tuple)):
        return [one(x) for x in loss] + [None] * max(0, n_outputs - len(loss))
    return [one(loss)] * max(1, n_outputs)


def _names_of(out_name: str, key: str, static_outputs: list) -> set[str]:
    """Every name a loss dict may key one output by: its dict key, or the
    name Keras gives it, which is not always its layer's name."""
    return {out_name, key} | {o.name for o in static_outputs if o.name and o.layer.split("/")[-1] == out_name}


def _file_loss_of(index: int, named: list[set[str]], static_losses: list):
    """The loss the file records for output ``index``: the one keyed by its
    name, else by position where the file records one loss per output or
    one for all (never one keyed to another output); None where it records
    none for it."""
    spec = next((entry for entry in static_losses if entry.output in named[index]), None)
    if spec is None and (len(static_losses) == 1 or index < len(static_losses) == len(named)):
        spec = static_losses[min(index, len(static_losses) - 1)]
        others = set().union(*(n for i, n in enumerate(named) if i != index))
        spec = None if spec.output and spec.output in others else spec
    return spec


def _compiled_trained(loss: Any, n_outputs: int, output_names: list[str],
                       layer_names: list[str] | None = None) -> list[bool]:
    """Per output, whether the compiled loss trains it: a loss dict's entry
    for it (missing or None: no loss), a list's entry at its position; one
    loss for every output trains them all."""
    if isinstance(loss, dict):
        layers: list[str | None] = [*layer_names] if layer_names else [None] * len(output_names)
        return [_by_name(loss, name, layer) is not None for name, layer in zip(output_names, layers, strict=False)]
    if isinstance(loss, (list, tuple)) and len(loss) == n_outputs:
        return [entry is not None for entry in loss]
    return [True] * max(1, n_outputs)


def _compiled_from_logits(loss: Any, n_outputs: int, output_names: list[str] | None = None,
                          layer_names: list[str] | None = None) -> list[bool | None]:
    """Whether each compiled loss takes logits: a string loss takes
    probabilities; a loss object says so in ``from_logits``."""
    def one(obj: Any) -> bool | None:
        if obj is None:
            return None
        if isinstance(obj, str):
            return False
        value = getattr(obj, "from_logits", None)
        return bool(value) if value is not None else None

    return _per_output(loss, one, n_outputs, output_names, layer_names)


def _compiled_ignore_class(loss: Any, n_outputs: int, output_names: list[str] | None = None,
                           layer_names: list[str] | None = None) -> list[int | None]:
    """Each compiled sparse loss's ``ignore_class`` (the label it skips,
    -1 for padding: review 38, 5), else None."""
    def one(obj: Any) -> int | None:
        value = getattr(obj, "ignore_class", None) if obj is not None and not isinstance(obj, str) else None
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else None

    return _per_output(loss, one, n_outputs, output_names, layer_names)


def _per_output(loss: Any, one: Callable[[Any], Any], n_outputs: int, output_names: list[str] | None,
                layer_names: list[str] | None) -> list[Any]:
    """``one`` of each output's compiled loss: a dict by output name, a
    list by position, one loss for every output."""
    if isinstance(loss, dict):
        if not output_names:
            return [one(loss[k]) for k in sorted(loss)]
        layers: list[str | None] = [*layer_names] if layer_names else [None] * len(output_names)
        return [one(_by_name(loss, name, layer)) for name, layer in zip(output_names, layers, strict=False)]
    if isinstance(loss, (list, tuple)):
        return [one(x) for x in loss]
    return [one(loss)] * max(1, n_outputs)


def outputs_of(model) -> list[tuple[str, tuple]]:
    outputs = getattr(model, "outputs", None)
    if not outputs:
        return [(f"output_{i}", shape) for i, shape in enumerate(_subclassed_probe(model)[1])]
    out = []
    for tensor in outputs:
        history = getattr(tensor, "_keras_history", None)
        layer = getattr(history, "operation", None) if history is not None else None
        out.append((getattr(layer, "name", None) or str(getattr(tensor, "name", "output")),
                    tuple(tensor.shape[1:])))
    return out


def output_keys(model) -> list[str]:
    """Per output, in the order of ``model.outputs`` (``outputs_of``), the
    name Keras matches its loss, target and prediction by: for a model whose
    outputs are a dict, the output's dict key (Keras flattens the dict by
    sorted key, and a key need not be its layer's name: ``{"label":
    Dense(name="head")}``); else its layer's name (``model.output_names``)."""
    names = [name for name, _ in outputs_of(model)]
    tensors = getattr(model, "outputs", None)
    if not tensors:
        probed = getattr(model, "_reglint_output_keys", None)  # a subclassed model's dict (_subclassed_probe)
        return list(probed) if probed and len(probed) == len(names) else names
    try:
        structure = model.output
    except Exception:  # a model called more than once has no single output structure
        return names
    if isinstance(structure, dict) and len(structure) == len(tensors):
        key_of = {id(tensor): str(key) for key, tensor in structure.items()}
        keys = [key_of.get(id(tensor)) for tensor in tensors]
        return [k for k in keys if k is not None] if None not in keys else sorted(str(k) for k in structure)
    return names


def model_specs(model, loss: DataLoss) -> tuple[list[InputSpec], list[TargetSpec]]:
    """The model's inputs (shape, dtype, Embedding vocabulary) and the labels
    each output's loss expects."""
    inputs = getattr(model, "inputs", None)
    embeddings = [layer for layer in flatten(model) if type(layer).__name__ == "Embedding"]
    if not inputs:
        shape = _subclassed_probe(model)[0]
        vocab = min(int(e.input_dim) for e in embeddings) if embeddings else None
        specs = [InputSpec(name="input_0", shape=shape, dtype="int32" if vocab else "float32", vocabulary=vocab)]
        return specs, _targets(model, loss)
    specs = []
    for index, tensor in enumerate(inputs):
        vocab = None
        for emb in embeddings:
            try:
                if emb.input is tensor:
                    vocab = int(emb.input_dim)
            except Exception:  # a layer called more than once has no single input
                continue
        if vocab is None and embeddings and (len(inputs) == 1 or "int" in str(tensor.dtype)):
            vocab = min(int(e.input_dim) for e in embeddings)
        name = getattr(getattr(getattr(tensor, "_keras_history", None), "operation", None), "name", None)
        specs.append(InputSpec(name=name or f"input_{index}", shape=tuple(tensor.shape[1:]),
                               dtype=str(getattr(tensor.dtype, "name", tensor.dtype)), vocabulary=vocab))
    return specs, _targets(model, loss)


def _targets(model, loss: DataLoss) -> list[TargetSpec]:
    """One per output a loss trains (``DataLoss.trained_outputs``: an output
    whose loss is None takes no target, as in ``fit``), named as Keras
    matches its target (``output_keys``)."""
    outputs = outputs_of(model)
    keys = loss.outputs if len(loss.outputs) == len(outputs) else output_keys(model)
    trained = set(loss.trained_outputs()) if loss.trained else set(range(len(outputs)))
    return [TargetSpec(name=key, shape=shape, kind=label_kind(loss.names[i] if i < len(loss.names) else None),
                       ignore_class=loss.ignore_class[i] if i < len(loss.ignore_class) else None)
            for i, (key, (_, shape)) in enumerate(zip(keys, outputs, strict=True)) if i in trained]


def _subclassed_probe(model) -> tuple[tuple, list[tuple]]:
    """A subclassed model (no functional graph): its one input's shape from
    the build shape Keras 3 saved (``build_config``), else from ``--data``'s
    rows, and its outputs' shapes
    from one call on zeros. Kept on the model: the call is made once."""
    cached = getattr(model, "_reglint_probe", None)
    if cached is not None:
        return cached
    shapes = getattr(model, "_build_shapes_dict", None) or {}
    shape = next(iter(shapes.values())) if len(shapes) == 1 else None
    if not isinstance(shape, (tuple, list)) or len(shape) < 2 or any(d is None for d in shape[1:]):
        data_shape = getattr(model, "_reglint_data_shape", None)  # --data's rows, where given
        shape = (None, *data_shape) if data_shape else None
    if shape is None:
        raise ProfileError("cannot tell the model's input shape (a subclassed model whose file records no "
                           "build shape with one input; --data with one input array gives it)")
    import numpy as np

    embeddings = any(type(layer).__name__ == "Embedding" for layer in flatten(model))
    sample = np.zeros((1, *shape[1:]), "int32" if embeddings else "float32")
    out = model(sample, training=False)
    if isinstance(out, dict):  # Keras flattens a dict by sorted key
        model._reglint_output_keys = [str(k) for k in sorted(out)]
    outs = by_output(out, [])
    probe = (tuple(int(d) for d in shape[1:]), [tuple(int(d) for d in o.shape[1:]) for o in outs])
    model._reglint_probe = probe
    return probe


def input_keys(model) -> list[str] | None:
    """The keys of a model built on a dict of inputs, in the order of
    ``model.inputs`` (Keras flattens a dict by sorted key), else None: such
    a model takes a dict, not a list (KerasHub backbones, dict Functionals)."""
    structure = getattr(model, "input", None) if getattr(model, "inputs", None) else None
    if isinstance(structure, dict) and len(structure) == len(model.inputs):
        return sorted(structure)
    return None


def flatten(model) -> list:
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:
        try:
            return list(flatten(include_self=False, recursive=True))
        except TypeError:
            pass
    out, stack = [], list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop(0)
        out.append(layer)
        stack.extend(getattr(layer, "layers", []) or [])
    return out


def layer_paths(model) -> dict[int, str]:
    """id(layer) -> path the way the static reader writes it: container
    names joined with '/', the top model left out."""
    paths: dict[int, str] = {}

    def walk(container, prefix: str) -> None:
        for layer in getattr(container, "layers", []) or []:
            path = f"{prefix}{layer.name}"
            paths[id(layer)] = path
            if type(layer).__name__ in CONTAINER_CLASSES or (hasattr(layer, "layers") and layer.layers):
                walk(layer, path + "/")

    walk(model, "")
    return paths


