"""The unregularized twin: does the penalty hurt training on this data?

From the starting weights (``result.Start``: the file's, or for a trained
file a fresh draw of its initializers, ``load.reinitialize``), the saved
optimizer runs twice for the same budgeted number of steps, each time
rebuilt fresh from its saved config, on the same batches in the same
order with the same seed (random layers included: their seed state is part
of the restored variables):

- **penalized**: the recipe as saved, every penalty and weight decay in;
- **unregularized**: every weight regularizer (``variable.regularizer``)
  and activity regularizer set to None for the run, and the optimizer's
  ``weight_decay`` (and Ftrl's own L1/L2 strengths) set to 0. ``add_loss``
  terms stay: they belong to the objective, not to regularization.

Every few steps both runs record the training data loss, the data loss
and accuracy on the held-back slice of ``--data`` (``data.split_held_out``),
the norm of the tracked kernels and, for kernels that feed a normalization
layer (scale-invariant), the angle they turn per step: their effective
learning rate. The model is left at its starting weights.

The step budget (``choose_budget``) comes from the penalty's own
timescales, measured at the starting weights:

- SGD (momentum ``mu``): a penalty gradient ``g_pen`` moves ``w`` by
  ``lr*|g_pen|/(1-mu)`` per step at steady momentum, so it can move the
  weights their own size in ``tau = (1-mu)*|w| / (lr*|g_pen|)`` steps;
  for L2, ``|g_pen| = 2*l2*|w|`` and this is the decay timescale
  ``(1-mu)/(2*lr*l2)``; for L1 it is ``rms(w)*(1-mu)/(lr*l1)``;
- adaptive optimizers (Adam, RMSprop ...) move a weight about ``lr`` per
  step, of which the penalty steers the share ``|g_pen|/(|g_pen|+|g_data|)``:
  ``tau = rms(w) * (|g_pen|+|g_data|) / (lr*|g_pen|)``;
- decoupled weight decay: ``tau = 1/(lr*wd)``;
- scale-invariant kernels under a decay of rate ``r = 1/tau`` reach
  rotational equilibrium (their squared norm relaxes at ``2r`` per step)
  in about ``1/(2r)`` steps, at an angular update of about
  ``sqrt(4*lr*l2/(1+mu))`` (SGD, Keras' coupled L2 whose gradient is
  ``2*l2*w``) or ``sqrt(2*lr*wd)``
  (decoupled decay) radians per step (van Laarhoven 2017; Wan et al. 2021;
  Kosson et al. 2024).

The budget's *target* is TIMESCALES x the shortest of them (95% of an
unsupported weight gone, squared norms of invariant kernels six relaxation
times in), at least MIN_STEPS (so both runs learn something to compare)
and at most MAX_STEPS; its *cap* is MAX_STEPS, cut to what
``--time-budget`` seconds allow for two runs at the step time measured on
a few trial steps. Both runs advance in lockstep, a record interval each
in turn; past the target they stop together once each has settled as
Keras' ``EarlyStopping`` would have it (its held-out loss no better by
MIN_DELTA of its start for PATIENCE records) or diverged: the comparison
is made where training has converged with and without the penalty, not
while one of them is still learning. ``--steps`` sets both runs' length
and turns the early stop off.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reglint.engine.fmt import g, pct
from reglint.engine.twin_metric import FINAL_RECORDS, LEARNED_SKILL, learned_over
from reglint.profile.data import BINARY, ONE_HOT, SPARSE, HeldOut, trivial_loss
from reglint.profile.gradients import restore, snapshot
from reglint.profile.load import DataLoss, by_output, flatten, layer_paths
from reglint.profile.result import Budget, StepRecord, Twin, TwinRun, VariableRow
from reglint.profile.run import fresh_optimizer, make_train_step, probe_loss, train_step, unregularized_optimizer

# Budget: TIMESCALES x the shortest penalty timescale, within
# [MIN_STEPS, MAX_STEPS] (see the module docstring).
TIMESCALES = 3.0
MIN_STEPS = 100
MAX_STEPS = 2000
DEFAULT_TIME_BUDGET = 60.0
# Records per run besides step 0, evenly spaced over the most steps a run
# may take; where evaluating POINTS records would take more than half the
# time left (a large model on a CPU), fewer, down to MIN_RECORDS (review 74,
# 1: ResNet50 and a transformer were cut to 1 step of 150, their 2 x 25
# records of 320 held-out examples taking the whole budget).
POINTS = 24
MIN_RECORDS = 6
# Early stop of the twin (as Keras' EarlyStopping): after the target steps,
# once its monitored loss (held-out, else training) has not improved on its
# best by MIN_DELTA of its starting value for PATIENCE records.
PATIENCE = 3
MIN_DELTA = 0.01
# Trial steps timed (after the one that traces) to size the budget.
TIMING_STEPS = 5
# Held-back examples per inference call.
EVAL_CHUNK = 512


@dataclass
class Timescale:
    steps: float
    where: str  # the variable or setting
    formula: str

    def describe(self) -> str:
        return f"{self.formula} = {g(self.steps, 3)} steps ({self.where})"


# ---------------------------------------------------------------------------
# the budget (no TensorFlow)


def penalty_timescales(opt_info: dict[str, Any] | None, rows: list[VariableRow]) -> dict[str, Timescale]:
    """The shortest timescale of each mechanism, in steps (module docstring)."""
    if not opt_info:
        return {}
    lr = timescale_lr(opt_info)
    if not lr or lr <= 0:
        return {}
    mu = float(opt_info.get("momentum") or 0.0)
    out: dict[str, Timescale] = {}
    # the formulas count optimizer updates; the runs count batches, and under
    # gradient accumulation k batches make one update (review 38, 7)
    every = max(1, int(opt_info.get("gradient_accumulation_steps") or 1))

    def keep(name: str, scale: Timescale) -> None:
        if every > 1:
            scale = Timescale(scale.steps * every, scale.where, f"{scale.formula} x {every} batches per update")
        if math.isfinite(scale.steps) and scale.steps > 0 and (name not in out or scale.steps < out[name].steps):
            out[name] = scale

    at = f" at the schedule's peak lr {g(lr)}" if lr != (opt_info.get("learning_rate") or 0.0) else ""
    wd = opt_info.get("weight_decay") or 0.0
    if wd > 0:
        keep("weight_decay", Timescale(1.0 / (lr * wd), "optimizer", "decoupled weight decay 1/(lr*wd)" + at))
    for row in rows:
        if not row.grad_penalty_norm or not row.weight_norm:
            continue
        where = f"{row.layer}/{row.variable}"
        if opt_info.get("family") == "sgd":
            steps = (1.0 - mu) * row.weight_norm / (lr * row.grad_penalty_norm)
            keep("sgd_penalty", Timescale(steps, where, "penalty under SGD (1-mu)*|w|/(lr*|g_pen|)" + at))
        else:
            rms = row.weight_norm / math.sqrt(max(row.params, 1))
            share = row.grad_penalty_norm / (row.grad_penalty_norm + row.grad_data_norm)
            if not share > 0:  # a data gradient that overflowed (inputs of 1e19: review 38, 4): no timescale
                continue
            keep("adaptive_penalty", Timescale(rms / (lr * share), where,
                                               "penalty under an adaptive optimizer rms(w)/(lr*share of |g_pen|)"
                                               + at))
    return out


def timescale_lr(opt_info: dict[str, Any]) -> float:
    """The learning rate the timescales are taken at: a schedule's peak,
    where the file's schedule has one above its start (review 71, 4: a
    warm-up from 1e-4 to 5e-3 gave AdamW's decay 1e8 steps for 2e6, and the
    default budget 50x too long a target), else the rate at the start."""
    peak = opt_info.get("schedule_peak")
    start = opt_info.get("learning_rate") or 0.0
    return peak if isinstance(peak, float) and peak > start else start


def angular_equilibrium(opt_info: dict[str, Any] | None, rows: list[VariableRow]) -> float | None:
    """Predicted radians per step of a scale-invariant kernel at rotational
    equilibrium, ``sqrt(2*lr*lambda/(1+mu))`` with ``lambda`` the decay
    coefficient of the gradient (``w <- w - lr*lambda*w``): ``2*l2`` for
    Keras' coupled L2 under SGD (its gradient is ``2*l2*w``); under
    decoupled decay ``sqrt(2*lr*wd)``; None without either."""
    if not opt_info or not opt_info.get("learning_rate"):
        return None
    lr, mu = timescale_lr(opt_info), float(opt_info.get("momentum") or 0.0)
    wd = opt_info.get("weight_decay") or 0.0
    l2 = max(((r.regularizer or {}).get("l2") or 0.0 for r in rows if r.scale_invariant), default=0.0)
    rates = []
    if l2 and opt_info.get("family") == "sgd":
        rates.append(2 * lr * (2 * l2) / (1 + mu))
    if wd:
        rates.append(2 * lr * wd)
    return math.sqrt(max(rates)) if rates else None


@dataclass
class Horizon:
    """The length the user asked for: ``--steps N`` or ``--epochs E`` (their
    training's length, ``E * ceil(examples / batch)``), each cut to the time
    budget as the help says (review 38, 3: ``--steps 100000000`` ran past
    ten minutes; raise ``--time-budget`` for a longer run); without either,
    the steps a trained file's optimizer records, or where its learning-rate
    schedule ends (cut the same way). ``exact``: never cut (no caller asks
    for it now; kept for a length that must hold whatever the time)."""

    steps: int
    reason: str
    exact: bool

    @classmethod
    def from_steps(cls, steps: int) -> Horizon:
        return cls(steps, f"--steps {steps}", exact=False)

    @classmethod
    def from_file(cls, steps: int, batch_size: int) -> Horizon:
        """The steps the file's optimizer records (``iterations``): the
        length of the training that produced it, cut to the time budget.
        The file does not record that training's batch size: the runs take
        these steps at ``--batch-size``."""
        return cls(steps, f"the file's optimizer took {steps:,} steps, the training's length, run here at "
                          f"--batch-size {batch_size} (the file does not record the training's: pass it; --steps or "
                          f"--epochs to choose another length)", exact=False)

    @classmethod
    def from_schedule(cls, steps: int, schedule: str) -> Horizon:
        """The step where the file's learning-rate schedule ends: a training
        sized to it (``LearningRate.length``), cut to the time budget."""
        return cls(steps, f"the learning-rate schedule {schedule} ends at step {steps:,}, the training's length "
                          f"(--steps or --epochs to choose another)", exact=False)

    @classmethod
    def from_epochs(cls, epochs: int, examples: int, batch_size: int) -> Horizon:
        per_epoch = math.ceil(examples / batch_size)
        return cls(epochs * per_epoch, f"--epochs {epochs}, the training's length: {epochs} x ceil({examples} "
                                       f"examples / batch {batch_size}) = {epochs * per_epoch} steps", exact=False)


def choose_budget(timescales: dict[str, Timescale], *, steps_override: int | Horizon | None,
                  per_step: float | None, eval_seconds: float, remaining: float, time_budget: float,
                  invariant: bool) -> Budget:
    """The plan before the runs: ``target`` (the steps the timescales ask
    for: no early stop before them) and ``steps`` (the most either run may
    take: MAX_STEPS, the time budget's cut, or the user's ``Horizon``: both
    runs then take its steps, cut to the time budget, and RL023 judges
    there)."""
    named = {k: v.steps for k, v in timescales.items()}
    if timescales:
        shortest = min(timescales.values(), key=lambda scale: scale.steps)
        target = math.ceil(TIMESCALES * shortest.steps)
        reason = f"{g(TIMESCALES)} x the shortest penalty timescale ({shortest.describe()}) = {g(target)} steps"
        if invariant:
            named["rotational_equilibrium"] = shortest.steps / 2
            reason += (f"; scale-invariant kernels reach rotational equilibrium in about 1/(2r) = "
                       f"{g(shortest.steps / 2, 3)} steps")
        alone = reason  # what the timescales ask for, before the default budget's bounds
        if target < MIN_STEPS:
            reason += f", raised to the minimum of {g(MIN_STEPS)} so both runs learn"
        elif target > MAX_STEPS:
            reason += f", capped at {g(MAX_STEPS)}: the penalty acts slower than a short run can show"
        target = min(max(target, MIN_STEPS), MAX_STEPS)
    else:
        target = MIN_STEPS
        reason = f"no penalty timescale (nothing to remove, or no learning rate): the minimum of {g(MIN_STEPS)} steps"
        alone = "no penalty timescale (nothing to remove, or no learning rate)"
    horizon = Horizon.from_steps(steps_override) if isinstance(steps_override, int) else steps_override
    records = records_for(remaining, eval_seconds)
    affordable = max(int((remaining - 2 * (records + 1) * eval_seconds) / (2 * per_step)), 1) if per_step else None
    ms = g((per_step or 0.0) * 1000, 3)  # per step, for the reasons below
    if horizon is not None:
        steps, told, asked = horizon.steps, horizon.reason, None
        if not horizon.exact and affordable is not None and affordable < steps:
            steps, asked = affordable, steps
            told += (f", cut to {g(steps)} to fit --time-budget {g(time_budget)} s ({ms} ms per step, two runs): "
                     f"judged there")
        return Budget(steps=steps, reason=f"{told} (the timescales alone: {alone})", target=target,
                      timescales=named, seconds_per_step=per_step, time_budget=time_budget, early_stop=False,
                      records=records, asked=asked, seconds_per_record=eval_seconds)
    cap = MAX_STEPS
    if affordable is not None and affordable < MAX_STEPS:
        cap = affordable
        reason += f"; at most {g(cap)} fit --time-budget {g(time_budget)} s ({ms} ms per step, two runs)"
    return Budget(steps=cap, reason=reason, target=min(target, cap), timescales=named, seconds_per_step=per_step,
                  time_budget=time_budget, early_stop=True, records=records,
                  asked=target if cap < target else None, seconds_per_record=eval_seconds)


def records_for(remaining: float, eval_seconds: float) -> int:
    """Records per run: POINTS where evaluating them in both runs takes at
    most half of the ``remaining`` seconds, else as many as half allows,
    at least MIN_RECORDS (the steps get the rest).

    >>> records_for(60.0, 0.01), records_for(50.0, 1.5), records_for(10.0, 2.0)
    (24, 7, 6)
    """
    if eval_seconds <= 0 or 2 * (POINTS + 1) * eval_seconds <= remaining / 2:
        return POINTS
    return max(MIN_RECORDS, min(POINTS, int(remaining / (4 * eval_seconds)) - 1))


def finish_budget(budget: Budget, taken: int, stopped: bool, monitor: str, per_epoch: int | None = None) -> None:
    """The steps both runs took; where the default budget chose them and
    the data's size is known (``per_epoch``: ``ceil(examples / batch)``),
    how many epochs of ``--data`` they are, since a training of another
    length may end elsewhere (review 50: a ``similar`` verdict at 2,000
    steps, 45 epochs, for a 12-epoch training that collapsed)."""
    if budget.early_stop:
        budget.reason += (f"; both runs' {monitor} stopped improving by {pct(MIN_DELTA)} of its start over "
                          f"{PATIENCE} records (or the run diverged) at step {g(taken)}"
                          if stopped and taken < budget.steps else f"; both runs took the full {g(taken)} steps")
        if per_epoch:
            budget.reason += (f", about {g(taken / per_epoch, 2)} epochs of --data ({g(per_epoch)} steps each): "
                              f"pass --epochs E, your training's length, to be judged there")
    budget.steps = taken


# ---------------------------------------------------------------------------
# penalties off


@contextmanager
def penalties_removed(model) -> Iterator[list[str]]:
    """Every weight and activity regularizer of ``model`` set to None for
    the duration, and put back after; yields what was removed."""
    weights, activities, removed = [], [], []
    paths = layer_paths(model)  # the table's names: a nested model's layers under it (review 38, 12)
    owner: dict[int, str] = {}
    for layer in sorted(flatten(model), key=lambda x: paths.get(id(x), "").count("/")):
        for var in getattr(layer, "weights", []) or []:
            owner[id(var)] = paths.get(id(layer), layer.name)  # the deepest layer holding it wins
    for var in model.trainable_variables:
        reg = getattr(var, "regularizer", None)
        if reg is not None:
            weights.append((var, reg))
            var.regularizer = None
            short = str(getattr(var, "name", "")).split("/")[-1]
            name = f"{owner[id(var)]}/{short}" if id(var) in owner and short else getattr(var, "path", var.name)
            removed.append(f"{name} {type(reg).__name__}")
    for layer in [model, *flatten(model)]:
        reg = getattr(layer, "activity_regularizer", None)
        if reg is not None:
            activities.append((layer, reg))
            layer.activity_regularizer = None
            removed.append(f"{paths.get(id(layer), layer.name)} activity {type(reg).__name__}")
    try:
        yield removed
    finally:
        for var, reg in weights:
            var.regularizer = reg
        for layer, reg in activities:
            layer.activity_regularizer = reg


def has_penalty(model, opt_info: dict[str, Any] | None) -> bool:
    if opt_info and (opt_info.get("weight_decay") or opt_info.get("own_penalties")):
        return True
    if any(getattr(v, "regularizer", None) is not None for v in model.trainable_variables):
        return True
    return any(getattr(layer, "activity_regularizer", None) is not None for layer in [model, *flatten(model)])


def moving_statistics(model) -> dict[str, Any] | None:
    """The layers that predict with moving statistics (BatchNormalization:
    a ``moving_variance`` and a ``momentum``), and the slowest momentum: a
    moving average over about ``1/(1-momentum)`` steps, which RL023 names
    when a penalized run fits its batches yet predicts at chance."""
    paths = layer_paths(model)
    found = [(paths.get(id(layer), layer.name), float(layer.momentum)) for layer in flatten(model)
             if hasattr(layer, "moving_variance") and isinstance(getattr(layer, "momentum", None), (int, float))]
    if not found:
        return None
    return {"layers": [path for path, _ in found], "momentum": max(m for _, m in found)}


# ---------------------------------------------------------------------------
# held-back evaluation


class Evaluator:
    """Data loss and accuracy on the held-back slice, inference mode."""

    def __init__(self, backend, model, loss: DataLoss, held: HeldOut | None, kind: str | None, from_logits: bool):
        self.held, self.kind, self.from_logits = held, kind, from_logits
        self.loss = loss
        self.classifier = held is not None and len(held.ys) == 1 and kind in (SPARSE, ONE_HOT, BINARY)
        self._evaluate = backend.make_evaluate(model, loss)
        self.seconds = 0.0

    def __call__(self) -> tuple[float | None, float | None]:
        if self.held is None:
            return None, None
        start = time.perf_counter()
        total, correct, count = 0.0, 0.0, 0
        for x, y in self.held.chunks(EVAL_CHUNK):
            value, pred = self._evaluate(x, y)
            n = _rows(x)
            total += float(value) * n
            count += n
            if self.classifier:
                correct += _accuracy(self._prediction(pred), np.asarray(y), self.kind, self.from_logits) * n
        self.seconds = time.perf_counter() - start
        return total / count, (correct / count if self.classifier else None)

    def _prediction(self, pred) -> np.ndarray:
        """The one output's prediction as an array: a model whose outputs are
        a dict (``{"label": Dense(3)}``) returns one, taken by the output's
        name as Keras matches it (``load.output_keys``)."""
        return np.asarray(by_output(pred, self.loss.outputs)[self.loss.trained_outputs()[0]])

    def reference(self) -> dict[str, Any]:
        """What a constant predictor scores on the slice: chance accuracy
        (predicting the most frequent class of all of ``--data``: ``_chance``)
        and the loss of the slice's label frequencies."""
        if self.held is None:
            return {}
        y = self.held.ys[0]
        prior = np.asarray(self.held.all_ys[0]) if self.held.all_ys else None
        out = {"samples": self.held.samples, "available": self.held.available, "kind": self.kind,
               "trivial_loss": self._trivial_loss(),
               "chance": _chance(np.asarray(y), self.kind, prior) if self.classifier else None,
               "metric": "accuracy" if self.classifier else "loss"}
        return out


    def _trivial_loss(self) -> float | None:
        """The constant predictor's loss on the slice: for several outputs,
        each output's, weighted as the total weighs them (review 61, 4: a
        two-output model whose heads both sat at the constant predictor was
        judged against the loss at the saved weights, and called ``worse``,
        not ``collapsed``); None where an output or weight has none."""
        assert self.held is not None
        names, ys, weights = self.loss.trained_names(), self.held.ys, self.loss.weights
        if len(ys) == 1:  # its loss weight scales the loss the runs report (review 63, 6: 0.5, "49.5% below")
            one = trivial_loss(ys[0], names[0])
            return one * weights[0] if one is not None and len(weights) == 1 else one
        if not (len(names) == len(ys) == len(weights)):
            return None
        parts = [trivial_loss(y, name) for y, name in zip(ys, names, strict=True)]
        return None if None in parts else sum(w * p for w, p in zip(weights, parts, strict=True) if p is not None)


def _rows(x) -> int:
    first = x[0] if isinstance(x, (list, tuple)) else next(iter(x.values())) if isinstance(x, dict) else x
    return int(np.shape(first)[0])


def _accuracy(pred: np.ndarray, y: np.ndarray, kind: str | None, from_logits: bool) -> float:
    if kind == SPARSE:
        ids = y.reshape(pred.shape[:-1]) if y.size == np.prod(pred.shape[:-1]) else y
        return float(np.mean(pred.argmax(-1) == ids))
    if kind == ONE_HOT:
        return float(np.mean(pred.argmax(-1) == y.argmax(-1)))
    cut = 0.0 if from_logits else 0.5
    return float(np.mean((pred.reshape(y.shape) > cut) == (y > 0.5)))


def _chance(y: np.ndarray, kind: str | None, prior: np.ndarray | None = None) -> float:
    """What predicting the majority class of ``prior`` (every label of
    ``--data``; default ``y``) scores on the slice's labels ``y`` (binary:
    per output unit, averaged): what a collapsed network, predicting its
    training data's most frequent class, scores. The slice's own majority
    share is the top of several noisy shares (0.125-0.132 on 287 examples of
    10 balanced classes, true 0.100, review 50); the share of one class
    fixed by all of the data is not biased upward.

    >>> _chance(np.array([0, 0, 1]), SPARSE), _chance(np.array([0, 0, 1]), SPARSE, np.array([0, 1, 1, 1, 1]))
    (0.6666666666666666, 0.3333333333333333)
    """
    every = y if prior is None else prior
    if kind == SPARSE:
        ids, all_ids = y.reshape(-1).astype(np.int64), every.reshape(-1).astype(np.int64)
        top = int(np.bincount(all_ids - all_ids.min()).argmax() + all_ids.min())
        return float(np.mean(ids == top))
    if kind == ONE_HOT:
        ids = y.reshape(-1, y.shape[-1]).argmax(-1)
        top = int(np.bincount(every.reshape(-1, every.shape[-1]).argmax(-1)).argmax())
        return float(np.mean(ids == top))
    held = y.reshape(y.shape[0], -1) > 0.5
    share = (every.reshape(every.shape[0], -1) > 0.5).mean(axis=0)
    if prior is None:
        return float(np.mean(np.maximum(share, 1 - share)))
    return float(np.mean(held == (share > 0.5)))


# ---------------------------------------------------------------------------
# the pair of runs


@dataclass
class PairInputs:
    """What the pair needs from the rest of the measurement."""

    model: Any
    opt: Any
    opt_info: dict[str, Any]
    batches: Any
    held: HeldOut | None
    loss: DataLoss
    rows: list[VariableRow]
    tracked: list
    invariant: list
    data0: float
    kernel0: float
    seed: int


def run_pair(backend, inputs: PairInputs, evaluator: Evaluator, *, steps_override: int | Horizon | None,
             time_budget: float, deadline: float,
             progress: Callable[[int, int, dict[str, float]], None] | None = None
             ) -> tuple[Twin, list[StepRecord], float | None]:
    """Both runs, in lockstep: each advances a record interval in turn (its
    weights, statistics and seed states swapped in and out), so both can
    stop at the same step once both have converged. Returns (the twin, the
    penalized run's per-step records, the probe batch's data loss after the
    penalized run, None if it diverged). The model is back at its saved
    weights afterwards."""
    model, opt_info, keras = inputs.model, inputs.opt_info, backend.keras
    saved = snapshot(backend, model.variables)
    trainable = list(model.trainable_variables)
    pen_opt = fresh_optimizer(keras, inputs.opt)
    pen_step = make_train_step(backend, model, pen_opt, inputs.loss, trainable, inputs.tracked, inputs.invariant)
    per_step, traced = _time_steps(backend, pen_step, pen_opt, inputs.batches, saved, model)
    evaluator()  # traces
    val0 = evaluator()  # timed: what each record costs
    # the twin's step traces as the penalized one did, after the budget is set (review 74, 2: DenseNet121
    # spent 102 s of a 60 s budget)
    twin_trace = traced if has_penalty(model, opt_info) else 0.0
    budget = choose_budget(penalty_timescales(opt_info, inputs.rows), steps_override=steps_override,
                           per_step=per_step, eval_seconds=evaluator.seconds,
                           remaining=deadline - time.perf_counter() - twin_trace, time_budget=time_budget,
                           invariant=bool(inputs.invariant))
    monitor = "held-out loss" if evaluator.held is not None else "training loss"
    lanes = [_Lane(pen_step, pen_opt, _new_run(inputs, evaluator, val0), saved, keep_records=True)]
    removed: list[str] = []
    if has_penalty(model, opt_info):
        with penalties_removed(model) as removed:  # traced without the penalties (TensorFlow)
            twin_opt = unregularized_optimizer(keras, inputs.opt)
            twin_step = make_train_step(backend, model, twin_opt, inputs.loss, trainable, inputs.tracked,
                                        inputs.invariant)
        lanes.append(_Lane(twin_step, twin_opt, _new_run(inputs, evaluator, val0), saved, unregularized=True))
        if opt_info.get("weight_decay"):
            removed.append(f"optimizer weight_decay {g(opt_info['weight_decay'])}")
        removed += [f"optimizer {name} {g(value)}" for name, value in (opt_info.get("own_penalties") or {}).items()]
    learned = _learned_on(evaluator.reference())
    for lane in lanes:
        lane.stop = _EarlyStop(budget.target or 0, evaluator.held is not None,
                               learned if lane.unregularized else None) if budget.early_stop else None
    backend.set_seed(inputs.seed)
    planned = budget.steps
    taken, stopped = _lockstep(backend, model, lanes, inputs, evaluator, budget.steps, progress, budget.records,
                               deadline=deadline)
    if taken < planned and not stopped:  # the time ran out before the plan's steps did
        wanted = planned if not budget.early_stop else min(budget.target or planned, planned)
        if taken < wanted:
            budget.asked = budget.asked or wanted
        budget.reason += f"; --time-budget ran out at step {g(taken)} of the {g(planned)} planned"
    batches = inputs.batches
    per_epoch = (math.ceil((batches.epoch_samples or batches.file_samples) / batches.batch_size)
                 if not batches.synthetic and batches.batch_size else None)
    finish_budget(budget, taken, stopped, monitor, per_epoch)
    pen = lanes[0]
    restore(model.variables, pen.state)
    x0, y0 = inputs.batches.batch(0)
    probe_final = probe_loss(backend, model, inputs.loss, x0, y0) if pen.run.diverged_at is None else None
    restore(model.variables, saved)
    twin = lanes[1].run if len(lanes) > 1 else copy.deepcopy(pen.run)
    result = Twin(budget=budget, penalized=pen.run, unregularized=twin, removed=removed,
                  held_out=evaluator.reference(), synthetic=bool(inputs.batches.synthetic),
                  angular_equilibrium=angular_equilibrium(opt_info, inputs.rows) if inputs.invariant else None,
                  moving_statistics=moving_statistics(model), notes=_notes(inputs, len(lanes) > 1))
    return result, pen.records, probe_final


@dataclass
class _Lane:
    """One run of the pair: its step, optimizer, record and variable values."""

    step_fn: Any
    opt: Any
    run: TwinRun
    state: list  # model.variables values between its turns
    unregularized: bool = False
    keep_records: bool = False
    records: list = field(default_factory=list)  # per-step records (the penalized run's only)
    stop: _EarlyStop | None = None
    # the lane's penalties, around its steps (a fix trial's changed ones: fix_trial)
    context: Callable[[], Any] | None = None

    @property
    def settled(self) -> bool:
        """Diverged, or converged by the early-stop rule."""
        return self.run.diverged_at is not None or (self.stop is not None and self.stop.stopped)


def _lockstep(backend, model, lanes: list[_Lane], inputs: PairInputs, evaluator: Evaluator, cap: int,
              progress, records: int = POINTS, deadline: float | None = None) -> tuple[int, bool]:
    """Advance every lane a record interval at a time up to ``cap`` steps;
    stop early once every lane has settled, or at the record past
    ``deadline`` (review 75, 2: a machine under load ran ResNet50 88.7 s of a
    60 s budget, the plan's step time too short). Returns (steps, stopped
    early because both settled)."""
    every = max(1, math.ceil(cap / records))
    step, done = 0, 0
    while step < cap:
        end = min(step + every, cap)
        for lane in lanes:
            if lane.run.diverged_at is not None:
                continue
            restore(model.variables, lane.state)
            # (PyTorch runs eagerly: its twin's steps need the penalties off as they run)
            with lane.context() if lane.context else penalties_removed(model) if lane.unregularized \
                    else nullcontext():
                _advance(backend, lane, step + 1, end, inputs, evaluator)
            lane.state = snapshot(backend, model.variables)
            done += end - step
            if progress is not None:
                progress(done, cap * len(lanes), {"data_loss": lane.run.data_loss[-1],
                                                  "penalty": lane.records[-1].penalty if lane.records else 0.0})
        step = end
        if all(lane.stop is not None and lane.settled for lane in lanes):
            return step, True
        if deadline is not None and step < cap and time.perf_counter() > deadline:
            return step, False
    return step, False


def _new_run(inputs: PairInputs, evaluator: Evaluator, val0: tuple) -> TwinRun:
    held = evaluator.held is not None
    return TwinRun(step=[0], data_loss=[inputs.data0], kernel_norm=[inputs.kernel0],
                   val_loss=[val0[0]] if held else None,
                   val_accuracy=[val0[1]] if held and evaluator.classifier else None,
                   angular_update=[None] if inputs.invariant else None)


def _advance(backend, lane: _Lane, first: int, last: int, inputs: PairInputs, evaluator: Evaluator) -> None:
    """Steps ``first..last`` of one lane, then one record (unless it diverged)."""
    start = time.perf_counter()
    losses, angles, record = [], [], None
    for step in range(first, last + 1):
        record = train_step(backend, lane.step_fn, lane.opt, inputs.batches.batch(step - 1), step)
        if lane.keep_records:
            lane.records.append(record)
        if not all(map(math.isfinite, (record.data_loss, record.penalty, record.weight_norm))):
            lane.run.diverged_at = step
            break
        losses.append(record.data_loss)
        angles.append(record.angular_update or 0.0)
    if lane.run.diverged_at is None and record is not None:
        _record(lane.run, last, losses, angles, record, evaluator)
        if lane.stop is not None:
            lane.stop(lane.run)
    lane.run.seconds += time.perf_counter() - start


def _notes(inputs: PairInputs, penalize: bool) -> list[str]:
    notes = []
    if not penalize:
        notes.append("nothing to remove (no regularizer, no weight decay): the twin is the same run")
    if inputs.held is not None and inputs.held.available > inputs.held.samples:
        notes.append(f"held-back slice scored on its first {inputs.held.samples} of {inputs.held.available} examples")
    return notes


class _EarlyStop:
    """Keras' EarlyStopping on one run's records (see PATIENCE); ``stopped``
    is its state at the last record (it clears if the run improves again).
    ``learned`` (the twin's lane): the run cannot settle before it has
    learned on the held-back slice, since a twin that has not learned gives
    no verdict (review 50: a DenseNet block's twin stopped at step 336
    inside BatchNorm's moving-statistics bump, its held-out loss not
    improving, and learned from step ~350)."""

    def __init__(self, target: int, held_out: bool, learned: Callable[[TwinRun], bool] | None = None):
        self.target, self.held_out, self.learned = target, held_out, learned
        self.best = math.inf
        self.start: float | None = None
        self.waited, self.stopped = 0, False

    def __call__(self, run: TwinRun) -> bool:
        values = run.val_loss if self.held_out and run.val_loss is not None else run.data_loss
        first, value = values[0], values[-1]
        if self.start is None and first is not None:
            self.start = self.best = first
        delta = MIN_DELTA * abs(self.start) if self.start is not None else 0.0
        if value is not None and math.isfinite(value) and value < self.best - delta:
            self.best, self.waited = value, 0
        else:
            self.waited += 1
        self.stopped = (run.step[-1] >= self.target and self.waited >= PATIENCE
                        and (self.learned is None or self.learned(run)))
        return self.stopped


def _learned_on(reference: dict[str, Any]) -> Callable[[TwinRun], bool] | None:
    """Whether a run has learned on the held-back slice by RL023's own
    criterion, on the mean of its last FINAL_RECORDS records as RL023 judges
    (``twin_metric``: LEARNED accuracy over chance, or a held-out loss
    LEARNED_SKILL under the constant predictor's; review 50's twin had
    touched 0.17 over chance at one record, then fell back into the bump);
    None where the slice gives no such measure (synthetic data, several
    outputs)."""
    chance, trivial = reference.get("chance"), reference.get("trivial_loss")

    def last(values: list[float | None] | None) -> float | None:
        tail = [v for v in (values or [])[-FINAL_RECORDS:] if v is not None]
        return sum(tail) / len(tail) if tail else None

    def reached(value: float | None, level: float, above: bool) -> bool:
        return value is not None and (value >= level if above else value <= level)

    if chance is not None:
        level = chance + learned_over(chance, reference.get("samples"))
        return lambda run: reached(last(run.val_accuracy), level, above=True)
    if trivial:
        return lambda run: reached(last(run.val_loss), (1 - LEARNED_SKILL) * trivial, above=False)
    return None


def _time_steps(backend, step_fn, opt, batches, saved, model) -> tuple[float, float]:
    """(seconds per step over TIMING_STEPS steps after the tracing one, the
    tracing one's seconds); the model and the optimizer are put back as
    they were."""
    opt_saved = snapshot(backend, opt.variables)
    traced = time.perf_counter()
    backend.fetch(step_fn(*batches.batch(0)))  # traces
    traced = time.perf_counter() - traced
    start = time.perf_counter()
    for i in range(TIMING_STEPS):
        out = step_fn(*batches.batch(i + 1))
    backend.fetch(out)  # wait for the last step
    per_step = (time.perf_counter() - start) / TIMING_STEPS
    restore(model.variables, saved)
    restore(opt.variables, opt_saved)
    return per_step, traced


def _record(run: TwinRun, step: int, losses: list[float], angles: list[float], record: StepRecord,
            evaluator: Evaluator) -> None:
    run.step.append(step)
    run.data_loss.append(float(np.mean(losses)))
    run.kernel_norm.append(record.kernel_norm)
    if run.angular_update is not None:
        run.angular_update.append(float(np.mean(angles)))
    if run.val_loss is not None:
        val_loss, val_acc = evaluator()
        run.val_loss.append(val_loss)
        if run.val_accuracy is not None:
            run.val_accuracy.append(val_acc)
