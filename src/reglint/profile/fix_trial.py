"""Measure the fix RL023 suggests, instead of only computing it.

When the twin finds the saved recipe clearly worse than the same run
without its penalties, RL023's fix is a formula (RL001's aim, RL003's safe
shrink, one decade lower). Review 42 applied such fixes to real trainings
and found two of them still wrecked (a GRU at kernel L2 0.1 -> 0.0482:
74% of the margin lost; a residual CNN at 0.1 -> 0.0025 under SGD at lr
0.1: half). Both profiles could have told: the same run again, from the
same saved weights on the same batches, with the fix's lambdas and weight
decay, is one more lane of the pair.

``run_trial`` runs that lane: the penalized recipe with each change of the
fix applied (a regularizer's factor scaled, an activity regularizer's, the
optimizer's ``weight_decay`` set), for as many steps as the pair took, and
records it like the pair's runs. Which changes to try, and in what order,
is RL023's (``next_trial``): this module only applies them. The regularizer
objects are replaced for the lane's tracing (TensorFlow) and for its steps
(PyTorch runs eagerly) and put back after, as ``twin.penalties_removed``
does for the twin.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from reglint.engine.finding import Change
from reglint.profile import ProfileError
from reglint.profile.gradients import restore, snapshot
from reglint.profile.load import deserialize_optimizer, flatten, layer_paths
from reglint.profile.run import fresh_optimizer, make_train_step, with_optimizer_settings

# The factors a Keras regularizer's config holds, by the parameter a Change
# names: "lambda" is whichever factor the regularizer has (both scaled for
# an L1L2 whose change does not name one).
FACTORS = {"l1": ("l1",), "l2": ("l2",), "lambda": ("l1", "l2", "factor")}


def scaled_regularizer(reg: Any, change: Change) -> Any:
    """A copy of ``reg`` with the factor ``change`` names scaled by
    ``suggested / current``; None when the change removes it or the
    regularizer cannot be rebuilt from its config (a custom class without
    ``from_config``)."""
    if change.suggested is None or not change.current:
        return None
    try:
        config = dict(reg.get_config())
    except Exception:
        return None
    scale = change.suggested / change.current
    touched = False
    for key in FACTORS.get(change.parameter, ()):
        value = config.get(key)
        if isinstance(value, (int, float)) and value:
            config[key] = float(value) * scale
            touched = True
    if not touched:
        return None
    try:
        return type(reg).from_config(config)
    except Exception:
        return None


@contextmanager
def penalties_changed(model, rows: list, changes: list[Change]) -> Iterator[list[str]]:
    """Each lambda change applied to ``model``'s regularizers for the
    duration, and the originals put back after; yields what was not
    applied (a target not found, a regularizer that cannot be rebuilt).
    ``rows`` (the measurement's ``VariableRow``) name each variable as the
    report does: a change's ``layer`` and ``target``."""
    variables = {str(getattr(v, "path", v.name)): v for v in model.trainable_variables}
    by_name = {(row.layer, row.variable.split("/")[-1]): variables.get(row.path) for row in rows}
    by_id = {id(layer): layer for layer in _flat(model)}
    layers = {path: by_id[layer_id] for layer_id, path in layer_paths(model).items() if layer_id in by_id}
    swapped: list[tuple[Any, str, Any]] = []
    skipped: list[str] = []
    try:
        for change in changes:
            if change.parameter == "weight_decay":
                continue  # the optimizer's: changed_optimizer
            owner, attribute = _holder(change, by_name, layers)
            reg = getattr(owner, attribute, None) if owner is not None else None
            new = scaled_regularizer(reg, change) if reg is not None else None
            if new is None:
                skipped.append(f"{change.layer}/{change.target}")
                continue
            swapped.append((owner, attribute, reg))
            setattr(owner, attribute, new)
        yield skipped
    finally:
        for owner, attribute, reg in reversed(swapped):
            setattr(owner, attribute, reg)


def _holder(change: Change, by_name: dict, layers: dict) -> tuple[Any, str]:
    """(object, attribute) that holds the regularizer a change names."""
    if change.target == "activity":
        return layers.get(change.layer), "activity_regularizer"
    return by_name.get((change.layer, change.target)), "regularizer"


def _flat(model) -> list:
    return [model, *flatten(model)]


def changed_optimizer(keras, opt, changes: list[Change]):
    """A fresh copy of ``opt`` with the fix's ``weight_decay`` (its other
    settings the saved optimizer's)."""
    decay = [c for c in changes if c.parameter == "weight_decay"]
    if not decay:
        return fresh_optimizer(keras, opt)
    try:
        config = with_optimizer_settings(keras.optimizers.serialize(opt), {"weight_decay": decay[-1].suggested or 0.0})
        return deserialize_optimizer(keras, config)
    except Exception as exc:
        raise ProfileError(f"cannot build the optimizer {type(opt).__name__} with the fix's weight decay "
                           f"({exc})") from None


def run_trial(backend, inputs, evaluator, steps: int, changes: list[Change], records: int | None = None):
    """The penalized recipe again, from the saved weights on the same
    batches, with ``changes`` applied, for ``steps`` steps: a ``TwinRun``
    and what could not be applied. The model is back at its saved
    weights and regularizers afterwards. ``records``: the pair's, so the
    trial's records fall on its steps."""
    from reglint.profile.twin import POINTS, _Lane, _lockstep, _new_run

    model, keras = inputs.model, backend.keras
    saved = snapshot(backend, model.variables)
    trainable = list(model.trainable_variables)
    opt = changed_optimizer(keras, inputs.opt, changes)
    with penalties_changed(model, inputs.rows, changes) as skipped:  # traced with the changed penalties
        step_fn = make_train_step(backend, model, opt, inputs.loss, trainable, inputs.tracked, inputs.invariant)
    lane = _Lane(step_fn, opt, _new_run(inputs, evaluator, evaluator()), saved,
                 context=lambda: penalties_changed(model, inputs.rows, changes))
    backend.set_seed(inputs.seed)
    start = time.perf_counter()
    _lockstep(backend, model, [lane], inputs, evaluator, steps, None, records or POINTS)
    lane.run.seconds = time.perf_counter() - start
    restore(model.variables, saved)
    return lane.run, skipped
