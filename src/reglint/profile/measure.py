"""The measurement of ``reglint profile``, in order, on an in-memory copy
of the model loaded from the file (the file is only read):

1. the gradients at the starting weights (the saved ones, or a fresh
   initialisation for a trained file: ``result.Start``) on the probe
   batch, per regularized variable, and the optimizer's first update with
   and without the penalty (``gradients``);
2. the saved optimizer run twice from those weights for a budgeted
   number of steps: as saved (the *penalized* run, whose per-step records
   are the ``trajectory`` and whose end decides the ``outcome``) and with
   every penalty and weight decay removed (the *unregularized twin*), both
   scored on the held-back slice of ``--data`` (``twin``).

The parts: ``framework`` (which backend, the import), ``backend`` (what
the measurement asks of TensorFlow or PyTorch: ``backend_tf``,
``backend_torch``), ``load`` (safe-mode loading, loss), ``gradients``,
``run`` (optimizers, the training step, ``classify``), ``twin`` (the budget
and the pair of runs), ``result`` (what is returned). A framework is
imported only by ``framework.load_backend``; the names below are
re-exported for callers of the single-module version.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from reglint.profile import ProfileError
from reglint.profile.data import label_kind, trivial_loss
from reglint.profile.gradients import (
    first_update,
    layer_penalties,
    regularizer_info,
    scale_invariant_variables,
    variable_rows,
)
from reglint.profile.load import (  # noqa: F401  (re-exported)
    DataLoss,
    disagreement,
    import_modules,
    input_keys,
    load_model,
    model_specs,
    quiet_native_stderr,
    rebuild_optimizer,
    reinitialize,
    resolve_loss,
)
from reglint.profile.result import (  # noqa: F401  (re-exported)
    Budget,
    LayerPenalty,
    Outcome,
    ProfileResult,
    Start,
    StepRecord,
    Twin,
    TwinRun,
    VariableRow,
)
from reglint.profile.run import (  # noqa: F401  (re-exported)
    COLLAPSE_SHRINK,
    DIVERGE_FACTOR,
    LEARN_DROP,
    TRIVIAL_BAND,
    classify,
    compiled_optimizer,
    fresh_optimizer,
    norm_of,
    optimizer_info,
    tracked_kernels,
)
from reglint.profile.twin import DEFAULT_TIME_BUDGET, Evaluator, Horizon, PairInputs, run_pair

__all__ = ["ProfileResult", "classify", "regularizer_info", "run_profile_measurement"]


def run_profile_measurement(backend, model, batches, loss: DataLoss, *, steps: int | Horizon | None, device: str,
                            device_name: str, device_kind: str, load_seconds: float, analysis=None,
                            optimizer=None, held=None, time_budget: float = DEFAULT_TIME_BUDGET,
                            started: float | None = None,
                            progress: Callable[[int, int, dict[str, float]], None] | None = None,
                            start_at: Start | None = None, optimizer_note: str | None = None,
                            next_trial: Callable[[ProfileResult], list | None] | None = None) -> ProfileResult:
    """Everything in the module docstring, on ``device``. ``optimizer``
    stands in for a model loaded without its compiled one; ``held`` is the
    held-back slice (``data.split_held_out``); ``steps`` (a count or a
    ``twin.Horizon``) None lets the twin's budget decide; ``started`` is when the time budget began (load start).
    ``backend`` is a ``backend.Backend`` (TensorFlow or PyTorch); ``start_at`` says where the model's
    weights come from (the caller re-initialised them for a fresh start); ``optimizer_note`` says why
    ``optimizer`` replaced the one Keras compiled; ``next_trial`` (RL023's)
    says which fix to measure next once the pair has run (``fix_trial``)."""
    keras = backend.keras
    notes: list[str] = [optimizer_note] if optimizer_note else []
    opt, opt_info = optimizer_info(keras, model, optimizer)
    if opt_info is not None and (peak := schedule_peak(analysis, opt_info)) is not None:
        opt_info["schedule_peak"] = peak  # the timescales' rate (twin.timescale_lr)
    if loss.note:
        notes.append(loss.note)
    if opt_info is not None and compiled_optimizer(keras, model) is None:
        notes.append(f"the optimizer was rebuilt from the {opt_info['class']} settings the file records")
    if opt is None:
        notes.append("the model was saved without an optimizer: gradients were measured, no step was taken")
    start = time.perf_counter()
    deadline = (started if started is not None else start) + time_budget
    with backend.device_scope(device):
        backend.set_seed(batches.seed)
        trainable = list(model.trainable_variables)
        if not trainable:
            raise ProfileError("the model has no trainable variables: nothing to measure")
        x0, y0 = batches.batch(0)
        try:
            data0, penalty0, grads_data, grads_pen = backend.forward_backward(model, loss, x0, y0, trainable)
        except ProfileError:
            raise
        except Exception as exc:
            raise ProfileError(f"the forward/backward pass failed ({type(exc).__name__}: "
                               f"{' '.join(str(exc).split())[:300]})") from None
        rows, weight_penalty = variable_rows(backend, model, trainable, grads_data, grads_pen, analysis)
        if not (math.isfinite(float(data0)) and all(math.isfinite(r.grad_data_norm) for r in rows)) \
                and all(math.isfinite(r.weight_norm) for r in rows):
            # finite inputs whose scale overflows float32 (x 1e19: review 38, 4); a file's own
            # non-finite weights are RL013's and measured as they are
            raise ProfileError("the data loss or its gradient is not finite on the first batch at the saved "
                               "weights: the inputs' scale overflows the model's float32 arithmetic; standardise "
                               "--data's inputs")
        penalties = layer_penalties(backend, model)
        if opt is not None:
            first_update(backend, model, opt, trainable, grads_data, grads_pen, rows)
        tracked = tracked_kernels(model, rows)
        kernel_norm0 = norm_of(backend, tracked)
        twin: Twin | None = None
        trial: Callable[[int, list], Any] | None = None
        trajectory: list[StepRecord] = []
        data_final, budget_steps = None, (steps.steps if isinstance(steps, Horizon) else steps) or 0
        if opt is not None and opt_info is not None:
            twin, trajectory, data_final, trial = _run_twin(backend, model, opt, opt_info, batches, held, loss,
                                                            rows, tracked, data0, kernel_norm0, analysis,
                                                            steps=steps, time_budget=time_budget,
                                                            deadline=deadline, progress=progress)
            budget_steps = twin.budget.steps
            opt_info["stepped"] = True
            lrs = [r.learning_rate for r in trajectory if r.learning_rate is not None]
            opt_info["learning_rate_peak"] = max(lrs) if lrs else opt_info["learning_rate"]
    run_seconds = time.perf_counter() - start
    diverged_at = twin.penalized.diverged_at if twin is not None else None
    kernel_final = trajectory[-1].kernel_norm if trajectory else None
    trained = loss.trained_names()
    trivial = trivial_loss(y0, trained[0]) if len(batches.ys) == 1 and len(trained) == 1 else None
    outcome = classify(data0, data_final, kernel_norm0 if tracked else None,
                       kernel_final if tracked else None, diverged_at, stepped=opt is not None, trivial=trivial)
    if batches.synthetic:
        notes.insert(0, "synthetic data: only the scale at initialisation was measured")
    result = ProfileResult(
        device=device_name, device_kind=device_kind, backend=backend.name, load_seconds=load_seconds,
        run_seconds=run_seconds, data=batches.describe(), loss=loss.describe(), optimizer=opt_info,
        data_loss=data0, penalty=penalty0, weight_penalty=weight_penalty, layer_penalties=penalties,
        variables=rows, steps_requested=budget_steps, trajectory=trajectory, outcome=outcome, notes=notes,
        twin=twin, start=start_at or Start())
    if trial is not None and next_trial is not None and twin is not None:
        with backend.device_scope(device):
            _measure_fixes(result, twin, trial, next_trial, limit=(started if started is not None else start)
                           + time_budget * (1 + TRIAL_ALLOWANCE))
        result.run_seconds = time.perf_counter() - start
    return result


# Fix trials may run past --time-budget by this share of it: the pair is
# cut to the budget, and a fix measured is worth the wait an error costs.
# One trial takes about 1.25 x the penalized run, half the pair: a pair that
# fills the budget leaves it 0.62 of it (review 75, 1: at 0.5 the LSTM's
# trial no longer ran); 60 s then ends under 110 s, loading included.
TRIAL_ALLOWANCE = 0.75


def _measure_fixes(result: ProfileResult, twin: Twin, trial, next_trial, *, limit: float) -> None:
    """Run the fixes ``next_trial`` asks for while time allows (each about
    as long as the pair's penalized run); ``twin.trials`` holds them."""
    from reglint.profile.result import FixTrial

    while (changes := next_trial(result)):
        needed = 1.25 * twin.penalized.seconds
        if time.perf_counter() + needed > limit:
            which = "a fix was" if not twin.trials else "the next fix, a decade lower, was"
            over = time.perf_counter() + needed - limit
            twin.trials_note = (f"{which} not measured: it needs about {needed:.0f} s, {over:.0f} s past what "
                                f"--time-budget allows (raise --time-budget to measure it)")
            return
        run, skipped = trial(twin.budget.steps, list(changes))
        twin.trials.append(FixTrial(list(changes), run, skipped))


def schedule_peak(analysis, opt_info: dict) -> float | None:
    """The peak of the learning-rate schedule the file records
    (``LearningRate.peak``, the static rules' rate), where the optimizer
    profile trains with runs that schedule; None otherwise."""
    static = getattr(getattr(getattr(analysis, "model", None), "optimizer", None), "learning_rate", None)
    if static is None or static.schedule is None or static.schedule != opt_info.get("learning_rate_schedule"):
        return None
    return float(static.peak) if isinstance(static.peak, (int, float)) and static.peak > 0 else None


def _run_twin(backend, model, opt, opt_info, batches, held, loss: DataLoss, rows, tracked, data0: float,
              kernel_norm0: float, analysis, *, steps: int | Horizon | None, time_budget: float, deadline: float,
              progress) -> tuple[Twin, list[StepRecord], float | None, Callable[[int, list], Any]]:
    trained = loss.trained_outputs()
    kind = label_kind(loss.names[trained[0]]) if len(trained) == 1 else None
    from_logits = bool(len(trained) == 1 and trained[0] < len(loss.from_logits) and loss.from_logits[trained[0]])
    evaluator = Evaluator(backend, model, loss, held, kind, from_logits)
    inputs = PairInputs(model=model, opt=opt, opt_info=opt_info, batches=batches, held=held, loss=loss,
                        rows=rows, tracked=tracked, invariant=scale_invariant_variables(model, analysis),
                        data0=data0, kernel0=kernel_norm0, seed=batches.seed)
    twin, trajectory, data_final = run_pair(backend, inputs, evaluator, steps_override=steps,
                                            time_budget=time_budget, deadline=deadline, progress=progress)

    def trial(steps: int, changes: list):
        from reglint.profile.fix_trial import run_trial

        return run_trial(backend, inputs, evaluator, steps, changes, records=twin.budget.records)

    return twin, trajectory, data_final, trial

