"""The largest learning rate a Keras learning-rate schedule reaches, read
from its config (``LearningRate.peak``) without evaluating it step by step.

Formulas, with ``i`` the ``initial_learning_rate`` and ``t >= 0`` the step, as
Keras 3 computes them (``keras/src/optimizers/schedules/learning_rate_schedule.py``):

- ``ExponentialDecay``: ``i * r**(t/s)`` (``staircase``: ``floor(t/s)``), ``r``
  the ``decay_rate``. Peak ``i`` for ``0 <= r <= 1``. For ``r > 1`` (an LR
  range test) the rate grows without bound, staircase or not: no peak.
- ``PiecewiseConstantDecay``: the largest of ``values``.
- ``PolynomialDecay``: ``(i - e) * (1 - p)**power + e`` with ``e`` the
  ``end_learning_rate`` and ``p`` from 0 to 1 over ``decay_steps`` (with
  ``cycle`` too: each cycle runs from ``i`` to ``e`` again). Peak
  ``max(i, e)`` for ``power > 0``, ``i`` at ``power == 0``; for
  ``power < 0`` the rate has a pole where ``p`` reaches 1: no peak.
- ``InverseTimeDecay``: ``i / (1 + r*t/s)``. Peak ``i`` for ``r >= 0``; for
  ``r < 0`` the denominator reaches zero at step ``s/|r|`` (the rate is
  infinite there and negative after): no peak.
- ``CosineDecay``: from ``i`` to ``alpha * i`` over ``decay_steps``; with a
  ``warmup_target`` ``w``, linearly from ``i`` to ``w`` first, then from
  ``w`` to ``alpha * w``. Peak ``i * max(1, alpha)``; with ``w``,
  ``max(i, w * max(1, alpha))``.
- ``CosineDecayRestarts``: restart ``k`` runs from ``i * (alpha + (1 -
  alpha) * m_mul**k)`` toward ``alpha * i``. Peak ``i * max(1, alpha)``,
  unless ``m_mul > 1`` with ``alpha < 1``: each restart starts higher, no peak.

A schedule of another class keeps the largest of ``initial_learning_rate``,
``warmup_target`` and ``values``.

>>> schedule_peak("PolynomialDecay", {"initial_learning_rate": 0.01, "decay_steps": 1000,
...                                   "end_learning_rate": 0.3, "power": 1.0, "cycle": True})
(0.3, None)
>>> schedule_peak("CosineDecay", {"initial_learning_rate": 0.2, "decay_steps": 1000, "alpha": 2.0})
(0.4, None)
>>> schedule_peak("CosineDecay", {"initial_learning_rate": 0.0, "decay_steps": 900, "alpha": 2.0,
...                               "warmup_target": 0.1, "warmup_steps": 100})
(0.2, None)
>>> schedule_peak("ExponentialDecay", {"initial_learning_rate": 0.01, "decay_steps": 100,
...                                    "decay_rate": 1.5, "staircase": True})
(None, 'grows without bound: decay_rate 1.5 > 1 multiplies it by 1.5 every 100 steps')
>>> schedule_peak("InverseTimeDecay", {"initial_learning_rate": 0.01, "decay_steps": 100, "decay_rate": -0.5})
(None, 'grows without bound: decay_rate -0.5 < 0 makes it infinite at step 200 and negative after')
>>> schedule_peak("CosineDecayRestarts", {"initial_learning_rate": 0.05, "first_decay_steps": 100,
...                                       "m_mul": 0.5, "alpha": 0.0})
(0.05, None)
"""

from __future__ import annotations

import math
from typing import Any

NO_PEAK = "grows without bound"


def schedule_peak(name: str, cfg: dict[str, Any]) -> tuple[float | None, str | None]:
    """(peak, why there is none): the schedule's largest rate by the
    module's formulas, or None and the reason where the rate grows without
    bound (or its initial rate is not a number)."""
    i = _number(cfg.get("initial_learning_rate"))
    rule = _RULES.get(name)
    if rule is None or i is None:
        values = cfg["values"] if isinstance(cfg.get("values"), list) else []
        found = [v for v in [i, _number(cfg.get("warmup_target")), *map(_number, values)] if v is not None]
        return (max(found) if found else None), None
    return rule(i, cfg)


def _exponential(i: float, cfg: dict[str, Any]) -> tuple[float | None, str | None]:
    rate, steps = _number(cfg.get("decay_rate")), _number(cfg.get("decay_steps"))
    if rate is not None and rate > 1 and i > 0:
        return None, f"{NO_PEAK}: decay_rate {rate:g} > 1 multiplies it by {rate:g} every {_count(steps)} steps"
    return i, None


def _polynomial(i: float, cfg: dict[str, Any]) -> tuple[float | None, str | None]:
    end = _number(cfg.get("end_learning_rate", 0.0001))
    power = _number(cfg.get("power", 1.0))
    if end is None or power is None:
        return i, None
    if power < 0 and end != i:
        return None, (f"{NO_PEAK}: power {power:g} < 0 gives it a pole at step "
                      f"{_count(_number(cfg.get('decay_steps')))}")
    return (max(i, end) if power > 0 else i), None


def _inverse_time(i: float, cfg: dict[str, Any]) -> tuple[float | None, str | None]:
    rate, steps = _number(cfg.get("decay_rate")), _number(cfg.get("decay_steps"))
    if rate is not None and rate < 0 and i > 0:
        pole = _count(steps / -rate if steps is not None else None)
        return None, f"{NO_PEAK}: decay_rate {rate:g} < 0 makes it infinite at step {pole} and negative after"
    return i, None


def _cosine(i: float, cfg: dict[str, Any]) -> tuple[float | None, str | None]:
    alpha = _number(cfg.get("alpha", 0.0))
    grow = max(1.0, alpha) if alpha is not None else 1.0
    target = _number(cfg.get("warmup_target"))
    return (max(i, target * grow) if target is not None else i * grow), None


def _restarts(i: float, cfg: dict[str, Any]) -> tuple[float | None, str | None]:
    alpha = _number(cfg.get("alpha", 0.0))
    m_mul = _number(cfg.get("m_mul", 1.0))
    alpha = 0.0 if alpha is None else alpha
    if m_mul is not None and m_mul > 1 and alpha < 1 and i > 0:
        return None, f"{NO_PEAK}: m_mul {m_mul:g} > 1 starts every restart {m_mul:g} times higher than the last"
    return i * max(1.0, alpha), None


_RULES = {"ExponentialDecay": _exponential, "PolynomialDecay": _polynomial, "InverseTimeDecay": _inverse_time,
          "CosineDecay": _cosine, "CosineDecayRestarts": _restarts}


def growth_note(name: str | None, cfg: dict[str, Any], initial: float | None) -> str | None:
    """The note for a schedule with no peak: what it does, and that the
    rules judge it at its initial rate, a lower bound (``dynamics_of``
    falls back to ``initial`` where ``peak`` is None).

    >>> cfg = {"initial_learning_rate": 0.01, "decay_steps": 100, "decay_rate": 2}
    >>> note = growth_note("ExponentialDecay", cfg, 0.01)
    >>> note.split(";")[1]
    ' rules judge it at its initial rate 0.01, a lower bound: give --lr with the largest rate the training reaches'
    """
    if not name:
        return None
    _, why = schedule_peak(name, cfg)
    if why is None:
        return None
    shown = f"{initial:g}" if initial is not None else "?"
    return (f"learning-rate schedule {name} {why}; rules judge it at its initial rate {shown}, a lower bound: "
            "give --lr with the largest rate the training reaches")


def unknown_rate_note(name: str | None, initial: float | None, peak: float | None) -> str | None:
    """The note for a schedule whose rates reglint cannot compute (a custom
    class, registered in the training code, whose config names no
    ``initial_learning_rate``): it is saved, not missing, but without a
    rate no per-step shrink or step size is judged (review 54, 3: the report
    said "not saved" and the rules that need the rate were skipped silently).

    >>> unknown_rate_note("Warm", None, None).split(":")[0]
    'learning-rate schedule Warm is a class reglint cannot compute'
    >>> unknown_rate_note("CosineDecay", 0.1, 0.1) is None
    True
    """
    if not name or initial is not None or peak is not None:
        return None
    return (f"learning-rate schedule {name} is a class reglint cannot compute: no per-step shrink or step size "
            "is judged (RL002, RL003, RL004, RL021, RL024 and RL025 under SGD need the rate); give --lr with the "
            "largest rate the training reaches")


def _number(value: Any) -> float | None:
    """A finite config number (a serialized scalar's ``value`` too); None otherwise."""
    if isinstance(value, dict) and isinstance(value.get("config"), dict):
        value = value["config"].get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _count(steps: float | None) -> str:
    return "?" if steps is None else f"{steps:,.0f}" if steps == int(steps) else f"{steps:,.1f}"
