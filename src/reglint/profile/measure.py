"""Load the model with Keras and measure: one forward/backward pass, one
trial optimizer step, then a short training run, all on an in-memory copy
(the file is only read).

The only module of reglint that imports TensorFlow and Keras, and only
inside ``import_keras()``: ``reglint check`` never pays for them.

What is measured on the probe batch (the first batch), with Keras' own
definitions (theory sections 1.2-1.4):

- data loss ``L = compiled_loss(y, f(x))``, a mean over the batch;
- penalty ``P = sum(model.losses)``: weight penalties ``R(w)`` summed as
  plain sums (``L2``: ``l2 * sum(w**2)``), activity penalties summed over
  the output and divided by the batch size (Keras >= 3.14), and any
  ``add_loss`` term;
- per regularized variable w: ``|g_data| = ||dL/dw||``,
  ``|g_pen| = ||dP/dw||`` (the weight penalty's own gradient, plus what
  activity penalties downstream send back through w) and their ratio
  ``|g_pen| / |g_data|``; its share ``R(w) / P_weights`` of the weight
  penalties;
- the first update of the compiled optimizer, ``||w_1 - w_0|| / ||w_0||``,
  once with the gradient of ``L + P`` and once with that of ``L`` alone
  (a fresh optimizer each time, so momentum starts at zero as in training;
  decoupled ``weight_decay`` acts in both, being the optimizer's own).

Then ``steps`` optimizer steps of ``L + P`` (a fresh optimizer from the
compiled one's config), recording per step the data loss, the penalty, the
learning rate and the norm of the regularized kernels, and the probe batch's
data loss again at the end. ``classify`` turns that into an outcome.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reglint.model import Optimizer as StaticOptimizer
from reglint.profile import ProfileError
from reglint.profile.data import InputSpec, TargetSpec, canonical_loss_name, label_kind, trivial_loss

# Outcome thresholds (``classify``).
# Diverged: the data loss at the end exceeds DIVERGE_FACTOR x its initial
# value (or anything went non-finite). A factor 3 is far outside the
# batch-to-batch noise of a loss measured twice on the same probe batch,
# and cross-entropy at init is already near chance, so tripling it needs
# confidently wrong predictions, i.e. weights that blew up.
DIVERGE_FACTOR = 3.0
# Learning: the probe's data loss fell by at least LEARN_DROP (2%), beyond
# the run-to-run jitter of dropout and batch statistics on one batch.
LEARN_DROP = 0.02
# Collapsing: the regularized kernels' Frobenius norm fell by more than
# COLLAPSE_SHRINK (20%, i.e. 36% of their energy) during the run while the
# data loss did not learn. A healthy run grows its kernels (trained nets end
# at 1.2-4.2x their initial sum of squares, theory section 3.2) and moves
# them by a few percent in a few dozen steps; a 20% fall means an integrated
# decay D = -ln(0.8) = 0.22 within the run, so the penalty alone would
# take the weights to 1/e in under five times the run's length.
COLLAPSE_SHRINK = 0.20
# ... and the data loss stayed within TRIVIAL_BAND (10%) of what a constant
# prediction scores: a net whose kernels are shrinking that fast can only
# beat the constant predictor by memorising a little (a 32-example batch's
# label entropy alone differs from ln C by a few percent).
TRIVIAL_BAND = 0.10

KERNEL_NAMES = ("kernel", "recurrent_kernel", "depthwise_kernel", "pointwise_kernel")
CONTAINER_CLASSES = ("Sequential", "Functional", "Model")


# ---------------------------------------------------------------------------
# results


@dataclass
class VariableRow:
    """One regularized variable (or one feeding an activity-regularized layer)."""

    path: str  # Keras variable path: inner/d1/kernel
    layer: str  # the layer path as the static report names it
    variable: str
    params: int
    kernel_like: bool
    regularizer: dict[str, Any] | None  # {"class": "L2", "l2": 0.01}; None: activity only
    penalty: float  # R(w), 0 without a weight regularizer
    share: float | None  # R(w) / sum of the weight penalties
    weight_norm: float
    grad_data_norm: float
    grad_penalty_norm: float
    update_ratio: float | None = None  # ||dw|| / ||w|| of the first step of L + P
    update_ratio_data: float | None = None  # ... of L alone
    static_penalty: float | None = None  # the static estimate of R(w) at initialisation
    scale_invariant: bool = False  # feeds a normalization layer (static analysis)
    absorbed: bool = False  # a normalization gamma/beta: RL001 leaves it out (static analysis)
    offset: bool = False  # a bias or beta: RL001 leaves it out (static analysis)

    @property
    def counted(self) -> bool:
        """Counted in RL001's ratio, as the static rule counts it."""
        return not (self.scale_invariant or self.absorbed or self.offset)

    @property
    def ratio(self) -> float:
        """|g_pen| / |g_data| (inf when the data sends no gradient)."""
        if self.grad_data_norm == 0:
            return math.inf if self.grad_penalty_norm else 0.0
        return self.grad_penalty_norm / self.grad_data_norm

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ratio"] = self.ratio
        return out


@dataclass
class LayerPenalty:
    """A penalty added by a layer itself: activity regularizer or ``add_loss``."""

    layer: str
    kind: str  # activity, add_loss
    regularizer: dict[str, Any] | None
    penalty: float  # per sample for activity penalties (Keras divides by the batch)


@dataclass
class StepRecord:
    step: int  # 1-based
    data_loss: float  # on this step's batch, before the update
    penalty: float  # before the update
    learning_rate: float | None
    kernel_norm: float  # after the update
    weight_norm: float  # all trainable weights, after the update


@dataclass
class Outcome:
    label: str  # diverged, collapsing, learning, stalled, not-run
    reason: str
    data_loss_initial: float
    data_loss_final: float | None = None
    kernel_norm_initial: float | None = None
    kernel_norm_final: float | None = None
    kernel_norm_change: float | None = None  # final / initial - 1
    diverged_at: int | None = None  # first non-finite step
    trivial_loss: float | None = None  # best constant prediction's loss on the probe batch


@dataclass
class ProfileResult:
    device: str
    device_kind: str  # cpu, gpu
    load_seconds: float
    run_seconds: float
    data: dict[str, Any]
    loss: dict[str, Any]
    optimizer: dict[str, Any] | None
    data_loss: float  # on the probe batch, at the loaded weights
    penalty: float  # sum(model.losses)
    weight_penalty: float
    layer_penalties: list[LayerPenalty]
    variables: list[VariableRow]
    steps_requested: int
    trajectory: list[StepRecord]
    outcome: Outcome
    notes: list[str] = field(default_factory=list)

    @property
    def synthetic(self) -> bool:
        return self.data.get("source") == "synthetic"

    def weight_penalty_ratio(self, *, include_invariant: bool = False) -> float:
        """rho_measured = sum R(w) / L over the weight penalties (RL001's
        definition: scale-invariant kernels and normalization gamma/beta left
        out unless asked)."""
        total = sum(r.penalty for r in self.variables if include_invariant or r.counted)
        return _div(total, self.data_loss)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "device_kind": self.device_kind,
            "seconds": {"load": self.load_seconds, "run": self.run_seconds},
            "data": self.data,
            "loss": self.loss,
            "optimizer": self.optimizer,
            "initial": {
                "data_loss": self.data_loss,
                "penalty": self.penalty,
                "weight_penalty": self.weight_penalty,
                "other_penalty": self.penalty - self.weight_penalty,
                "penalty_ratio": self.weight_penalty_ratio(),
                "penalty_ratio_all": _div(self.penalty, self.data_loss),
            },
            "variables": [r.to_dict() for r in self.variables],
            "layer_penalties": [asdict(p) for p in self.layer_penalties],
            "steps": {"requested": self.steps_requested, "taken": len(self.trajectory),
                      "trajectory": [asdict(s) for s in self.trajectory]},
            "outcome": asdict(self.outcome),
            "notes": list(self.notes),
        }


def _div(a: float, b: float) -> float:
    if b == 0 or not math.isfinite(b):
        return math.inf if a else 0.0
    return a / b


# ---------------------------------------------------------------------------
# Keras, device, loading


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


def import_keras():
    """(tf, keras) with the TensorFlow backend and TensorFlow's start-up
    chatter silenced. Imported here, never at module level."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with quiet_native_stderr():
            import keras
            import tensorflow as tf
    except ImportError as exc:
        raise ProfileError(f"reglint profile needs TensorFlow and Keras 3 ({exc}); "
                           f"install them with `pip install tensorflow`") from None
    if keras.backend.backend() != "tensorflow":
        raise ProfileError(f"reglint profile runs on Keras' TensorFlow backend; Keras is already using "
                           f"{keras.backend.backend()} (set KERAS_BACKEND=tensorflow)")
    tf.get_logger().setLevel("ERROR")
    return tf, keras


def select_device(tf, device: str) -> tuple[str, str, str]:
    """(TensorFlow device string, readable name, kind) for auto/cpu/gpu."""
    device = (device or "auto").lower()
    if device not in ("auto", "cpu", "gpu"):
        raise ProfileError(f"--device must be auto, cpu or gpu, not {device!r}")
    with quiet_native_stderr():  # CUDA probing logs through C++, past TF_CPP_MIN_LOG_LEVEL
        gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise ProfileError("--device gpu: TensorFlow sees no GPU on this machine (use --device cpu or auto)")
    if gpus and device in ("auto", "gpu"):
        try:
            details = tf.config.experimental.get_device_details(gpus[0])
        except Exception:  # details are cosmetic
            details = {}
        name = details.get("device_name") or gpus[0].name
        return "/GPU:0", f"GPU 0: {name}", "gpu"
    return "/CPU:0", f"CPU: {_cpu_name()} ({os.cpu_count()} logical cores)", "cpu"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_model(keras, path: Path, trust_model: bool) -> tuple[Any, str | None]:
    """``keras.saving.load_model`` with ``safe_mode`` unless trusted; any
    failure becomes one line. When only the compile settings fail to
    deserialize (legacy HDF5 files whose loss or metrics Keras 3 no longer
    reads), the model is loaded uncompiled and the reason returned: the
    loss and optimizer the static reader found stand in."""

    def load(compile: bool):
        with warnings.catch_warnings():
            # "Skipping variable loading for optimizer": an unbuilt saved
            # optimizer; the profile builds fresh ones anyway.
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
        raise ProfileError(f"Keras could not load the model ({_one(exc)[:300]})") from None
    return model, f"Keras could not restore the compile settings ({first[:160]})"


def _one(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def rebuild_optimizer(keras, static_optimizer):
    """The optimizer the static reader found, rebuilt from its saved config
    (for files whose compile settings Keras could not restore); None if
    Keras cannot build it."""
    if static_optimizer is None or not static_optimizer.config:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return keras.optimizers.deserialize({"class_name": static_optimizer.class_name,
                                                 "config": dict(static_optimizer.config)})
    except Exception:
        return None


# ---------------------------------------------------------------------------
# the model's inputs, outputs and loss


@dataclass
class DataLoss:
    """The data loss L(y, y_pred) and where it came from."""

    fn: Callable[[Any, Any], Any]
    names: list[str | None]  # one per output, canonical where known
    source: str  # compiled, file, default
    note: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"names": self.names, "source": self.source, "note": self.note}


def resolve_loss(keras, model, static_model, reason: str | None = None) -> DataLoss:
    """The compiled loss; else the loss the file records; else a documented
    default from the output activation: softmax -> sparse categorical
    cross-entropy, sigmoid -> binary cross-entropy, anything else -> mean
    squared error."""
    outputs = _outputs(model)
    compile_loss = getattr(model, "_compile_loss", None)
    if getattr(model, "compiled", False) and compile_loss is not None:
        names = _compiled_names(getattr(model, "loss", None), len(outputs), [o[0] for o in outputs])
        return DataLoss(lambda y, y_pred: compile_loss(y, y_pred), names, "compiled")
    static_losses = list(static_model.losses) if static_model is not None else []
    static_outputs = list(static_model.outputs) if static_model is not None else []
    names, objs, weights, source = [], [], [], "file" if static_losses else "default"
    for index, (out_name, _) in enumerate(outputs):
        spec = next((l for l in static_losses if l.output == out_name), None)
        if spec is None and index < len(static_losses) and (len(static_losses) == len(outputs) or
                                                            len(static_losses) == 1):
            spec = static_losses[min(index, len(static_losses) - 1)]
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
        weights.append(spec.weight if spec is not None else 1.0)
        objs.append(_loss_object(keras, name, from_logits))
    note = ((reason or "the model was saved uncompiled") + ": " +
            ("the loss the file records is used" if source == "file" else
             f"no loss recorded, so reglint's default from the output activation is used ({', '.join(names)})"))

    def fn(y, y_pred):
        ys = y if isinstance(y, (list, tuple)) else [y]
        ps = y_pred if isinstance(y_pred, (list, tuple)) else [y_pred]
        if isinstance(y_pred, dict):
            ps = list(y_pred.values())
        total = None
        for obj, weight, yt, yp in zip(objs, weights, ys, ps):
            # a loss *function* returns per-example values; Keras' compiled
            # losses reduce with sum_over_batch_size, i.e. a mean
            value = keras.ops.mean(obj(yt, yp)) * weight
            total = value if total is None else total + value
        return total

    return DataLoss(fn, names, source, note)


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


def _compiled_names(loss: Any, n_outputs: int, output_names: list[str]) -> list[str | None]:
    def one(obj: Any) -> str | None:
        if obj is None:
            return None
        if isinstance(obj, str):
            return canonical_loss_name(obj)
        fn = getattr(obj, "fn", None)  # LossFunctionWrapper subclasses: SparseCategoricalCrossentropy ...
        if getattr(fn, "__name__", None):
            return canonical_loss_name(fn.__name__)
        return canonical_loss_name(getattr(obj, "__name__", None) or type(obj).__name__)

    if isinstance(loss, dict):
        return [one(loss.get(name)) for name in output_names]
    if isinstance(loss, (list, tuple)):
        return [one(x) for x in loss] + [None] * max(0, n_outputs - len(loss))
    return [one(loss)] * max(1, n_outputs)


def _outputs(model) -> list[tuple[str, tuple]]:
    outputs = getattr(model, "outputs", None)
    if not outputs:
        raise ProfileError("cannot tell the model's outputs (a subclassed model without a functional graph)")
    out = []
    for tensor in outputs:
        history = getattr(tensor, "_keras_history", None)
        layer = getattr(history, "operation", None) if history is not None else None
        out.append((getattr(layer, "name", None) or str(getattr(tensor, "name", "output")),
                    tuple(tensor.shape[1:])))
    return out


def model_specs(model, loss: DataLoss) -> tuple[list[InputSpec], list[TargetSpec]]:
    """The model's inputs (shape, dtype, Embedding vocabulary) and the labels
    each output's loss expects."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ProfileError("cannot tell the model's input shapes (a subclassed or unbuilt model)")
    embeddings = [layer for layer in _flatten(model) if type(layer).__name__ == "Embedding"]
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
    targets = [TargetSpec(name=name, shape=shape, kind=label_kind(loss.names[i] if i < len(loss.names) else None))
               for i, (name, shape) in enumerate(_outputs(model))]
    return specs, targets


def _flatten(model) -> list:
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


def _layer_paths(model) -> dict[int, str]:
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


# ---------------------------------------------------------------------------
# the optimizer


def optimizer_info(keras, model, fallback=None) -> tuple[Any, dict[str, Any] | None]:
    """(the compiled optimizer, else ``fallback``, else None; its settings
    for the report)."""
    opt = getattr(model, "optimizer", None) or fallback
    if opt is None:
        return None, None
    inner = getattr(opt, "inner_optimizer", opt)  # LossScaleOptimizer
    cfg = {}
    try:
        cfg = inner.get_config()
    except Exception:
        pass
    lr = _current_lr(opt)
    name = type(inner).__name__
    return opt, {
        "class": name,
        "family": StaticOptimizer(class_name=name).family,
        "learning_rate": lr,
        "learning_rate_schedule": None if isinstance(cfg.get("learning_rate"), (int, float)) else
        type(getattr(inner, "_learning_rate", None)).__name__,
        "momentum": float(cfg.get("momentum") or 0.0),
        "nesterov": bool(cfg.get("nesterov", False)),
        "weight_decay": float(cfg["weight_decay"]) if cfg.get("weight_decay") is not None else None,
        "clipnorm": cfg.get("clipnorm"),
        "global_clipnorm": cfg.get("global_clipnorm"),
        "stepped": False,
    }


def _current_lr(opt) -> float | None:
    try:
        return float(opt.learning_rate)
    except Exception:
        return None


def fresh_optimizer(keras, opt):
    """A new optimizer with the compiled one's settings and no state."""
    try:
        return keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    except Exception as exc:
        raise ProfileError(f"cannot copy the compiled optimizer {type(opt).__name__} ({exc})") from None


# ---------------------------------------------------------------------------
# the measurement


def regularizer_info(reg) -> dict[str, Any] | None:
    if reg is None:
        return None
    out: dict[str, Any] = {"class": type(reg).__name__}
    for attr in ("l1", "l2", "factor"):
        value = getattr(reg, attr, None)
        if isinstance(value, (int, float, np.floating)):
            out[attr] = float(value)
    mode = getattr(reg, "mode", None)
    if isinstance(mode, str):
        out["mode"] = mode
    return out


def run_profile_measurement(tf, keras, model, batches, loss: DataLoss, *, steps: int, device: str,
                            device_name: str, device_kind: str, load_seconds: float, analysis=None,
                            optimizer=None,
                            progress: Callable[[int, dict[str, float]], None] | None = None) -> ProfileResult:
    """Everything in the module docstring, on ``device``. ``optimizer``
    stands in for a model loaded without its compiled one."""
    notes: list[str] = []
    opt, opt_info = optimizer_info(keras, model, optimizer)
    if loss.note:
        notes.append(loss.note)
    if opt is not None and getattr(model, "optimizer", None) is None:
        notes.append(f"the optimizer was rebuilt from the {opt_info['class']} settings the file records")
    if opt is None:
        notes.append("the model was saved without an optimizer: gradients were measured, no step was taken")
    start = time.perf_counter()
    with tf.device(device):
        keras.utils.set_random_seed(batches.seed)
        trainable = list(model.trainable_variables)
        if not trainable:
            raise ProfileError("the model has no trainable variables: nothing to measure")
        x0, y0 = batches.batch(0)
        try:
            data0, penalty0, grads_data, grads_pen = _forward_backward(tf, model, loss, x0, y0, trainable)
        except ProfileError:
            raise
        except Exception as exc:
            raise ProfileError(f"the forward/backward pass failed ({type(exc).__name__}: "
                               f"{' '.join(str(exc).split())[:300]})") from None
        rows, weight_penalty = _variable_rows(tf, model, trainable, grads_data, grads_pen, analysis)
        layer_penalties = _layer_penalties(model)
        if opt is not None:
            _first_update(tf, keras, model, opt, trainable, grads_data, grads_pen, rows)
        tracked = _tracked_kernels(model, rows)
        kernel_norm0 = _norm_of(tf, tracked)
        trajectory: list[StepRecord] = []
        diverged_at = None
        data_final = None
        if opt is not None:
            run_opt = fresh_optimizer(keras, opt)
            step_fn = make_train_step(tf, model, run_opt, loss, trainable, tracked)
            for step in range(1, steps + 1):
                record = _train_step(step_fn, run_opt, batches.batch(step - 1), step)
                trajectory.append(record)
                if progress is not None:
                    progress(step, {"data_loss": record.data_loss, "penalty": record.penalty})
                if not all(map(math.isfinite, (record.data_loss, record.penalty, record.weight_norm))):
                    diverged_at = step
                    break
            opt_info["stepped"] = True
            lrs = [r.learning_rate for r in trajectory if r.learning_rate is not None]
            opt_info["learning_rate_peak"] = max(lrs) if lrs else opt_info["learning_rate"]
            if diverged_at is None:
                data_final = _probe_loss(tf, model, loss, x0, y0)
    run_seconds = time.perf_counter() - start
    kernel_final = trajectory[-1].kernel_norm if trajectory else None
    trivial = trivial_loss(y0, loss.names[0]) if len(batches.ys) == 1 and len(loss.names) == 1 else None
    outcome = classify(data0, data_final, kernel_norm0 if tracked else None,
                       kernel_final if tracked else None, diverged_at, stepped=opt is not None, trivial=trivial)
    if batches.synthetic:
        notes.insert(0, "synthetic data: only the scale at initialisation was measured")
    return ProfileResult(
        device=device_name, device_kind=device_kind, load_seconds=load_seconds, run_seconds=run_seconds,
        data=batches.describe(), loss=loss.describe(), optimizer=opt_info, data_loss=data0, penalty=penalty0,
        weight_penalty=weight_penalty, layer_penalties=layer_penalties, variables=rows, steps_requested=steps,
        trajectory=trajectory, outcome=outcome, notes=notes)


def _forward_backward(tf, model, loss: DataLoss, x, y, trainable):
    """(L, P, dL/dw, dP/dw) on one batch in training mode."""
    with tf.GradientTape(persistent=True) as tape:
        y_pred = model(x, training=True)
        data = tf.cast(loss.fn(y, y_pred), tf.float32)
        extra = [tf.cast(t, tf.float32) for t in model.losses]
        penalty = tf.add_n(extra) if extra else tf.constant(0.0)
    grads_data = tape.gradient(data, trainable)
    grads_pen = tape.gradient(penalty, trainable) if extra else [None] * len(trainable)
    del tape
    return float(data), float(penalty), grads_data, grads_pen


def _dense(tf, g, var):
    if g is None:
        return tf.zeros_like(var)
    if isinstance(g, tf.IndexedSlices):  # Embedding gradients
        return tf.convert_to_tensor(g)
    return g


def _norm(tf, value) -> float:
    return float(tf.norm(tf.cast(value, tf.float32)))


def _variable_rows(tf, model, trainable, grads_data, grads_pen, analysis) -> tuple[list[VariableRow], float]:
    """Rows for variables with a weight regularizer, and for the variables
    of activity-regularized layers (their gradient carries that penalty)."""
    layer_of = {}
    paths = _layer_paths(model)
    activity_vars = set()
    for layer in _flatten(model):
        owned = list(getattr(layer, "trainable_weights", []) or [])
        for var in owned:
            layer_of.setdefault(id(var), layer)
        if getattr(layer, "activity_regularizer", None) is not None:
            activity_vars.update(id(v) for v in owned)
    static = _static_index(analysis)
    rows, weight_penalty = [], 0.0
    for var, gd, gp in zip(trainable, grads_data, grads_pen):
        reg = getattr(var, "regularizer", None)
        if reg is None and id(var) not in activity_vars:
            continue
        penalty = float(reg(var)) if reg is not None else 0.0
        weight_penalty += penalty
        path = str(getattr(var, "path", var.name))
        owner = layer_of.get(id(var))
        owner_path = paths.get(id(owner), path.rsplit("/", 1)[0] if "/" in path else path)
        # Wrappers' variables omit the wrapper (Bidirectional's are
        # forward_lstm/lstm_cell/kernel): search under the owner's path.
        match = _match_static(path if path.startswith(owner_path + "/") else f"{owner_path}/{path}", static)
        layer_path = match[0] if match else owner_path
        variable = match[1] if match else path.rsplit("/", 1)[-1]
        rows.append(VariableRow(
            path=path, layer=layer_path, variable=variable, params=int(np.prod(var.shape)) if var.shape else 1,
            kernel_like=path.rsplit("/", 1)[-1] in KERNEL_NAMES, regularizer=regularizer_info(reg),
            penalty=penalty, share=None, weight_norm=_norm(tf, var),
            grad_data_norm=_norm(tf, _dense(tf, gd, var)), grad_penalty_norm=_norm(tf, _dense(tf, gp, var)),
            static_penalty=match[2] if match else None, scale_invariant=bool(match and match[3]),
            absorbed=bool(match and match[4]), offset=bool(match and match[5])))
    for row in rows:
        row.share = row.penalty / weight_penalty if weight_penalty else None
    return rows, weight_penalty


def _static_index(analysis) -> list[tuple[list[str], str, str, float | None, bool, bool, bool]]:
    """(path parts, layer path, variable name, static penalty, scale-invariant,
    absorbed, offset) for every static variable."""
    if analysis is None:
        return []
    penalties = {(p.layer.path, p.variable.name): p for p in analysis.penalties}
    out = []
    for layer, var in analysis.model.variables():
        p = penalties.get((layer.path, var.name))
        out.append((layer.path.split("/") + var.name.split("/"), layer.path, var.name,
                    p.penalty_init if p is not None else None, bool(p and p.scale_invariant),
                    bool(p and p.absorbed), bool(p and p.offset)))
    return out


def _match_static(path: str, index) -> tuple[str, str, float | None, bool, bool, bool] | None:
    """The static variable a Keras variable path names: same last part, and
    every part of the static layer path and variable name found in order
    (``lstm/lstm_cell/kernel`` is the static ``lstm`` + ``kernel``)."""
    parts = path.split("/")
    best, best_score = None, -1
    for sparts, layer_path, var_name, penalty, invariant, absorbed, offset in index:
        if sparts[-1] != parts[-1]:
            continue
        pos, ok = 0, True
        for part in sparts:
            try:
                pos = parts.index(part, pos) + 1
            except ValueError:
                ok = False
                break
        if ok and len(sparts) > best_score:
            best, best_score = (layer_path, var_name, penalty, invariant, absorbed, offset), len(sparts)
    return best


def _layer_penalties(model) -> list[LayerPenalty]:
    """Activity and ``add_loss`` penalties, per layer, from the last call."""
    paths = _layer_paths(model)
    out = []
    for layer in [model] + _flatten(model):
        own = getattr(layer, "_get_own_losses", None)
        if own is None:
            continue
        try:
            values = [float(v) for v in own()]
        except Exception:
            continue
        if not values:
            continue
        reg = getattr(layer, "activity_regularizer", None)
        out.append(LayerPenalty(layer=paths.get(id(layer), layer.name),
                                kind="activity" if reg is not None else "add_loss",
                                regularizer=regularizer_info(reg), penalty=sum(values)))
    return out


def _snapshot(tf, model):
    return [tf.identity(v.value) for v in model.variables]


def _restore(model, saved) -> None:
    for var, value in zip(model.variables, saved):
        var.assign(value)


def _first_update(tf, keras, model, opt, trainable, grads_data, grads_pen, rows) -> None:
    """||w1 - w0|| / ||w0|| for one step of L + P and one of L alone."""
    by_path = {row.path: row for row in rows}
    watched = [(i, var) for i, var in enumerate(trainable) if str(getattr(var, "path", var.name)) in by_path]
    scale = _loss_scale_factor(tf, opt)
    dense_data = [_dense(tf, g, v) for g, v in zip(grads_data, trainable)]
    dense_pen = [_dense(tf, g, v) for g, v in zip(grads_pen, trainable)]
    saved = _snapshot(tf, model)
    for attr, grads in (("update_ratio", [d + p for d, p in zip(dense_data, dense_pen)]),
                        ("update_ratio_data", dense_data)):
        trial = fresh_optimizer(keras, opt)
        before = {i: tf.identity(var.value) for i, var in watched}
        trial.apply_gradients(zip([g * scale for g in grads], trainable))
        for i, var in watched:
            row = by_path[str(getattr(var, "path", var.name))]
            w0 = _norm(tf, before[i])
            setattr(row, attr, _div(_norm(tf, var.value - before[i]), w0))
        _restore(model, saved)


def _loss_scale_factor(tf, opt) -> float:
    """Gradients handed to a LossScaleOptimizer (or an optimizer with
    ``loss_scale_factor``) must be scaled like the loss it would scale."""
    try:
        return float(opt.scale_loss(tf.constant(1.0)))
    except Exception:
        return 1.0


def _tracked_kernels(model, rows: list[VariableRow]) -> list:
    """The variables whose norm tells collapse: regularized kernels; else the
    regularized non-offsets (biases fall to 0, where they start: issue 15);
    else every kernel (weight_decay and activity penalties shrink those)."""
    variables = list(model.trainable_variables)
    by_path = {str(getattr(v, "path", v.name)): v for v in variables}
    for pick in (lambda r: r.regularizer is not None and r.kernel_like and r.counted,
                 lambda r: r.regularizer is not None and not r.offset):
        chosen = [by_path[r.path] for r in rows if pick(r) and r.path in by_path]
        if chosen:
            return chosen
    return [v for v in variables if str(getattr(v, "path", v.name)).rsplit("/", 1)[-1] in KERNEL_NAMES]


def _norm_of(tf, variables) -> float:
    if not variables:
        return 0.0
    return float(tf.linalg.global_norm([tf.cast(v.value, tf.float32) for v in variables]))


def make_train_step(tf, model, opt, loss: DataLoss, trainable, tracked) -> Callable[[Any, Any], tuple]:
    """One optimizer step of L + P as a ``tf.function`` (traced once: every
    batch has the same shape), returning (L, P, ||tracked||, ||all||);
    eager Keras costs ~0.1-0.4 s a step even for a tiny model."""
    opt.build(trainable)  # variables must exist before tracing

    @tf.function(reduce_retracing=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            data = tf.cast(loss.fn(y, y_pred), tf.float32)
            extra = [tf.cast(t, tf.float32) for t in model.losses]
            penalty = tf.add_n(extra) if extra else tf.constant(0.0)
            scaled = opt.scale_loss(data + penalty)
        grads = tape.gradient(scaled, trainable)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, trainable)]
        opt.apply_gradients(zip(grads, trainable))
        kernel_norm = tf.linalg.global_norm([tf.cast(v, tf.float32) for v in tracked]) if tracked else tf.constant(0.0)
        weight_norm = tf.linalg.global_norm([tf.cast(v, tf.float32) for v in trainable])
        return data, penalty, kernel_norm, weight_norm

    return step


def _train_step(step_fn, opt, batch, step: int) -> StepRecord:
    lr = _current_lr(opt)
    data, penalty, kernel_norm, weight_norm = step_fn(*batch)
    return StepRecord(step=step, data_loss=float(data), penalty=float(penalty), learning_rate=lr,
                      kernel_norm=float(kernel_norm), weight_norm=float(weight_norm))


def _probe_loss(tf, model, loss: DataLoss, x, y) -> float:
    y_pred = model(x, training=True)
    return float(tf.cast(loss.fn(y, y_pred), tf.float32))


def classify(data0: float, data_final: float | None, kernel0: float | None, kernel_final: float | None,
             diverged_at: int | None, *, stepped: bool, trivial: float | None = None) -> Outcome:
    """The run's outcome, first match wins:

    - ``diverged``: a non-finite loss or weight at some step, or the probe's
      final data loss > DIVERGE_FACTOR x its initial value L0;
    - ``collapsing``: the tracked kernels' norm fell by more than
      COLLAPSE_SHRINK while the final data loss stayed above
      ``(1 - TRIVIAL_BAND) * min(L0, L_triv)``, L_triv being the loss of the
      best constant prediction on the probe batch (``data.trivial_loss``):
      the collapse signature is the loss heading to L_triv, not below it
      (theory section 3.2), and since cross-entropy at init sits above
      chance (``ln C + s^2/2``, section 3.1) a collapsing net's loss first
      *falls* to L_triv, so "fell below L0" alone would call it learning;
    - ``learning``: the probe's data loss fell by at least LEARN_DROP;
    - ``stalled``: none of these.
    """
    change = None
    if kernel0 and kernel_final is not None and math.isfinite(kernel_final):
        change = kernel_final / kernel0 - 1.0
    out = Outcome(label="not-run", reason="", data_loss_initial=data0, data_loss_final=data_final,
                  kernel_norm_initial=kernel0, kernel_norm_final=kernel_final, kernel_norm_change=change,
                  diverged_at=diverged_at, trivial_loss=trivial)
    if not stepped:
        out.reason = "no optimizer: no step taken"
        return out
    if diverged_at is not None or not math.isfinite(data0):
        out.label = "diverged"
        out.reason = f"loss or weights became non-finite at step {diverged_at or 0}"
        return out
    assert data_final is not None
    if not math.isfinite(data_final) or data_final > DIVERGE_FACTOR * data0:
        out.label = "diverged"
        out.reason = f"the data loss rose from {data0:.4g} to {data_final:.4g} (> {DIVERGE_FACTOR:g}x)"
        return out
    floor = min(data0, trivial) if trivial is not None and math.isfinite(trivial) else data0
    if change is not None and change < -COLLAPSE_SHRINK and data_final >= (1.0 - TRIVIAL_BAND) * floor:
        baseline = f", constant-prediction loss {trivial:.4g}" if trivial is not None else ""
        out.label = "collapsing"
        out.reason = (f"the kernel norm fell {-change:.0%} (> {COLLAPSE_SHRINK:.0%}) while the data "
                      f"loss went {data0:.4g} -> {data_final:.4g}{baseline}")
        return out
    if data_final < (1.0 - LEARN_DROP) * data0:
        out.label = "learning"
        out.reason = f"the data loss fell {data0:.4g} -> {data_final:.4g}"
        return out
    out.label = "stalled"
    out.reason = f"the data loss did not fall by {LEARN_DROP:.0%} ({data0:.4g} -> {data_final:.4g})"
    return out
