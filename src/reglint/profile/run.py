"""Optimizer runs for ``reglint profile``: the saved optimizer rebuilt
fresh (as saved, or without its weight decay for the twin), one compiled
training step, and the outcome rule of a run.

Functions take ``keras`` or a ``backend`` (``backend.Backend``) as
arguments: nothing here imports TensorFlow or PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from reglint.engine.twin_metric import DIVERGE_FACTOR
from reglint.model import Optimizer as StaticOptimizer
from reglint.model.description import OWN_PENALTIES
from reglint.profile import ProfileError
from reglint.profile.load import DataLoss, deserialize_optimizer
from reglint.profile.result import KERNEL_NAMES, Outcome, StepRecord, VariableRow

# Outcome thresholds (``classify``).
# Diverged: the data loss at the end exceeds DIVERGE_FACTOR x its initial
# value, far beyond the batch-to-batch noise of a loss measured twice on the same probe batch,
# and cross-entropy at init is already near chance, so tripling it needs
# confidently wrong predictions, i.e. weights that blew up (one owner with
# the twin's judgment: reglint.engine.twin_metric).
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

# ---------------------------------------------------------------------------
# the optimizer


# Optimizer settings that are penalties of their own: Ftrl's L1 and L2
# (FTRL-Proximal) and L2 shrinkage. The twin sets them to 0 with weight_decay.


def compiled_optimizer(keras, model):
    """The model's compiled optimizer, or None: Keras leaves a legacy HDF5
    file's optimizer it cannot rebuild (``Lamb`` saved without its module)
    as the bare name, a str, which no step can use."""
    opt = getattr(model, "optimizer", None)
    return opt if isinstance(opt, keras.optimizers.Optimizer) else None


def optimizer_info(keras, model, fallback=None) -> tuple[Any, dict[str, Any] | None]:
    """(the compiled optimizer, else ``fallback``, else None; its settings
    for the report)."""
    opt = compiled_optimizer(keras, model) or fallback
    if opt is None:
        return None, None
    inner = getattr(opt, "inner_optimizer", opt)  # LossScaleOptimizer
    lead = _lead_sub_optimizer(inner)
    cfg = {}
    with suppress(Exception):
        cfg = lead.get_config()
    lr = current_lr(opt if lead is inner else lead)
    name = type(inner).__name__
    return opt, {
        "class": name if lead is inner else f"{type(lead).__name__} (in {name})",
        "family": StaticOptimizer(class_name=type(lead).__name__).family,
        "learning_rate": lr,
        "learning_rate_schedule": None if isinstance(cfg.get("learning_rate"), (int, float)) else
        type(getattr(inner, "_learning_rate", None)).__name__,
        "momentum": float(cfg.get("momentum") or 0.0),
        "nesterov": bool(cfg.get("nesterov", False)),
        "weight_decay": float(cfg["weight_decay"]) if cfg.get("weight_decay") is not None else None,
        "own_penalties": {k: float(cfg[k]) for k in OWN_PENALTIES if isinstance(cfg.get(k), (int, float)) and cfg[k]},
        "clipnorm": cfg.get("clipnorm"),
        "global_clipnorm": cfg.get("global_clipnorm"),
        "clipvalue": cfg.get("clipvalue"),
        "gradient_accumulation_steps": cfg.get("gradient_accumulation_steps"),
        # use_ema: the moving average fit leaves in the model (review 73, 3: check showed it, profile did not)
        "ema_momentum": float(cfg.get("ema_momentum") or 0.99) if cfg.get("use_ema") is True else None,
        "stepped": False,
    }


def _lead_sub_optimizer(opt):
    """A MultiOptimizer's sub-optimizer whose decay shrinks weights fastest
    (the static reader's lead group: its settings are the ones reported and
    its weight_decay the one the twin removes), else ``opt`` itself."""
    subs = list(getattr(opt, "_inner_optimizers", None) or [])
    if not subs:
        return opt

    def shrink(sub) -> float:
        decay = 0.0
        with suppress(Exception):
            decay = float(sub.get_config().get("weight_decay") or 0.0)
        return (current_lr(sub) or 0.0) * decay

    return max(subs, key=shrink)


def current_lr(opt) -> float | None:
    """The optimizer's learning rate now, to float32's 7 significant digits
    (Keras holds it in a float32 variable: 1e-4 reads 9.99999974e-05, and a
    timescale 1/(lr*wd) of 1e8 steps read 100,000,002; review 71, 4)."""
    try:
        return float(f"{float(opt.learning_rate):.7g}")
    except Exception:
        return None


def fresh_optimizer(keras, opt):
    """A new optimizer with the compiled one's settings and no state."""
    try:
        return deserialize_optimizer(keras, keras.optimizers.serialize(opt))
    except Exception as exc:
        raise ProfileError(f"cannot copy the compiled optimizer {type(opt).__name__} ({exc})") from None


def unregularized_optimizer(keras, opt):
    """A new optimizer with the compiled one's settings, no state and no
    penalty of its own (``weight_decay`` and ``OWN_PENALTIES`` 0 wherever
    the config holds them, a LossScaleOptimizer's inner optimizer
    included): the twin's."""
    try:
        config = with_optimizer_settings(keras.optimizers.serialize(opt),
                                         dict.fromkeys(("weight_decay", *OWN_PENALTIES), 0.0))
        return deserialize_optimizer(keras, config)
    except Exception as exc:
        raise ProfileError(f"cannot build the optimizer {type(opt).__name__} without weight decay ({exc})") from None


def with_optimizer_settings(node: Any, values: dict[str, float]) -> Any:
    """A serialized optimizer with each key of ``values`` set wherever its
    config holds it (a LossScaleOptimizer's inner optimizer included): the
    twin's zeroed penalties, a fix trial's weight decay."""
    if isinstance(node, dict):
        return {k: (values[k] if k in values and v is not None else with_optimizer_settings(v, values))
                for k, v in node.items()}
    if isinstance(node, list):
        return [with_optimizer_settings(v, values) for v in node]
    return node


def tracked_kernels(model, rows: list[VariableRow]) -> list:
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


def norm_of(backend, variables) -> float:
    return backend.global_norm(list(variables))


def make_train_step(backend, model, opt, loss: DataLoss, trainable, tracked, invariant=()) -> Callable[[Any, Any], Any]:
    """One optimizer step of L + P (the backend's: a ``tf.function`` traced
    once on TensorFlow, every batch having the same shape; eager on
    PyTorch), whose output ``backend.fetch`` turns into [L, P, ||tracked||,
    ||all||, angle]: ``angle`` is the mean angle in radians by which the
    ``invariant`` variables (scale-invariant kernels) turned in this step,
    their effective learning rate (0 without them). ``P`` is whatever
    ``model.losses`` holds when the step is traced (TensorFlow) or run
    (PyTorch): the twin removes the penalties around both."""
    opt.build(trainable)  # variables must exist before tracing
    return backend.make_train_step(model, opt, loss, list(trainable), list(tracked), list(invariant))


def train_step(backend, step_fn, opt, batch, step: int) -> StepRecord:
    lr = current_lr(opt)
    data, penalty, kernel_norm, weight_norm, angle = (float(v) for v in backend.fetch(step_fn(*batch)))
    return StepRecord(step=step, data_loss=float(data), penalty=float(penalty), learning_rate=lr,
                      kernel_norm=float(kernel_norm), weight_norm=float(weight_norm), angular_update=float(angle))


def probe_loss(backend, model, loss: DataLoss, x, y) -> float:
    return backend.probe_loss(model, loss, x, y)


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
    moved = (f"rose {data_final / data0 - 1:.0%}" if data_final > data0 and data0 > 0
             else f"fell less than {LEARN_DROP:.0%}")
    out.reason = f"the data loss {moved} ({data0:.4g} -> {data_final:.4g})"
    return out
