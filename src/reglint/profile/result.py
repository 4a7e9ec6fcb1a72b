"""What ``reglint profile`` measured, as plain dataclasses with their JSON
form (``ProfileResult.to_dict`` goes under ``analysis.profile``).

No TensorFlow here: the rules read these objects (``Rule.check_measured``)
and the reporters print them.

Every measurement is taken at, or starts from, one set of weights
(``Start``): the weights saved in the file, or, for a file whose optimizer
took steps (its weights are trained), a fresh draw of the initializers its
config records. The gradients and the first update are measured there, and
both runs of the twin start there (the penalized one is the run whose
trajectory and outcome the other rules judge), each with a fresh optimizer
built from the saved optimizer's config.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

KERNEL_NAMES = ("kernel", "recurrent_kernel", "depthwise_kernel", "pointwise_kernel")

@dataclass(frozen=True)
class Start:
    """Where every measurement stands (the JSON says it, the terminal too):
    the weights in the file, or a fresh initialisation drawn from the
    initializers the file's config records (``load.reinitialize``)."""

    fresh: bool = False
    reason: str = "the file's weights"

    @property
    def phrase(self) -> str:
        """'from the saved weights', for the measured findings' messages."""
        return "from a fresh initialisation" if self.fresh else "from the saved weights"

    def describe(self) -> str:
        if self.fresh:
            return (f"fresh: the gradients, the first update and the penalty are measured at a new draw of the "
                    f"initializers the file's config records, and both runs of the twin start from it ({self.reason})")
        return ("saved: the gradients, the first update and the penalty are measured at the weights in the file, "
                f"and both runs of the twin start from them; nothing is re-initialised ({self.reason})")

# The per-step trajectory in the JSON is thinned to this many records (the
# runs can take thousands of steps; ``steps.taken`` keeps the count).
MAX_TRAJECTORY = 200


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
    behind_norm: bool = False  # reaches the outputs only through a normalization layer (static analysis)

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
    angular_update: float | None = None  # mean radians the scale-invariant kernels turned


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
class Budget:
    """How many steps each run of the twin took, and why."""

    steps: int  # taken by each run (before the runs: the most either may take)
    reason: str
    target: int | None = None  # what the timescales ask for: the twin does not stop before
    timescales: dict[str, float] = field(default_factory=dict)  # name -> steps
    seconds_per_step: float | None = None  # measured, one run
    time_budget: float | None = None  # --time-budget seconds
    early_stop: bool = True  # the twin may stop once its held-out loss stops improving (not with --steps)
    records: int = 24  # records per run besides step 0 (twin.records_for)
    asked: int | None = None  # the steps asked for (--epochs, --steps, the timescales) where the time budget cut them
    seconds_per_record: float | None = None  # one held-out evaluation, measured

    def seconds_needed(self) -> float | None:
        """About what both runs of the ``asked`` steps take, their records
        included (loading and tracing besides): what --time-budget needs."""
        if not self.asked or not self.seconds_per_step:
            return None
        return 2 * self.asked * self.seconds_per_step + 2 * (self.records + 1) * (self.seconds_per_record or 0.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TwinRun:
    """One run of the pair, recorded every few steps (step 0: the saved
    weights, shared by both runs).

    ``data_loss``: mean data loss of the training batches since the last
    record (training mode, before each update; step 0: the probe batch);
    ``val_loss``/``val_accuracy``: on the held-back slice, inference mode
    (None without one: synthetic data; accuracy only for a classifier);
    ``kernel_norm``: the tracked kernels' Frobenius norm; ``angular_update``:
    mean angle (radians) the scale-invariant kernels turn per step since
    the last record (None without such kernels).
    """

    step: list[int] = field(default_factory=list)
    data_loss: list[float] = field(default_factory=list)
    val_loss: list[float | None] | None = None
    val_accuracy: list[float | None] | None = None
    kernel_norm: list[float] = field(default_factory=list)
    angular_update: list[float | None] | None = None  # None at step 0: no update yet
    diverged_at: int | None = None  # first step with a non-finite loss or weight
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"step": list(self.step), "data_loss": list(self.data_loss),
                "val_loss": None if self.val_loss is None else list(self.val_loss),
                "val_accuracy": None if self.val_accuracy is None else list(self.val_accuracy),
                "kernel_norm": list(self.kernel_norm),
                "angular_update": None if self.angular_update is None else list(self.angular_update),
                "diverged_at": self.diverged_at, "seconds": self.seconds}


@dataclass
class FixTrial:
    """The penalized recipe run again with a fix's changes (RL023's
    ``next_trial``, ``profile.fix_trial``): same saved weights, batches and
    steps as the pair."""

    changes: list[Any]  # engine.finding.Change
    run: TwinRun
    skipped: list[str] = field(default_factory=list)  # changes that could not be applied

    def to_dict(self) -> dict[str, Any]:
        return {"changes": [c.to_dict() for c in self.changes], "run": self.run.to_dict(),
                "not_applied": list(self.skipped)}


@dataclass
class Twin:
    """The saved recipe and its unregularized twin, run from the same saved
    weights on the same batches in the same order.

    ``verdict`` is RL023's judgment (``{"label", "message"}``), filled in
    after the measurement by ``profile.findings.attach_twin_verdict``.
    """

    budget: Budget
    penalized: TwinRun
    unregularized: TwinRun
    removed: list[str]  # what the twin runs without: "dense/kernel L2(0.01)", "weight_decay 0.004"
    held_out: dict[str, Any]  # samples, chance, trivial_loss, kind; {} on synthetic data
    synthetic: bool
    angular_equilibrium: float | None = None  # predicted radians per step for scale-invariant kernels
    # BatchNormalization-like layers that predict with moving statistics:
    # {"layers": [paths], "momentum": the slowest one's} (None: none)
    moving_statistics: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    verdict: dict[str, Any] = field(default_factory=lambda: {"label": "pending", "message": ""})
    # the fixes RL023 measured after its verdict, in the order tried
    trials: list[FixTrial] = field(default_factory=list)
    trials_note: str | None = None  # why no (further) fix was measured

    @property
    def steps(self) -> int:
        return self.budget.steps

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.budget.steps,
            "budget": self.budget.to_dict(),
            "runs": {"penalized": self.penalized.to_dict(), "unregularized": self.unregularized.to_dict()},
            "verdict": dict(self.verdict),
            "start": {"weights": "saved (the file's weights, not re-initialised)",
                      "optimizer": "fresh, from the saved optimizer's config (its saved state is not used)"},
            "removed": list(self.removed),
            "held_out": dict(self.held_out),
            "synthetic": self.synthetic,
            "angular_equilibrium": self.angular_equilibrium,
            "moving_statistics": self.moving_statistics,
            "fix_trials": [t.to_dict() for t in self.trials],
            "fix_trials_note": self.trials_note,
            "notes": list(self.notes),
        }


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
    twin: Twin | None = None
    backend: str = "tensorflow"  # the framework under Keras: tensorflow, torch
    start: Start = field(default_factory=Start)

    @property
    def synthetic(self) -> bool:
        return self.data.get("source") == "synthetic"

    def weight_penalty_ratio(self, *, include_invariant: bool = False, front_only: bool = False) -> float:
        """rho_measured = sum R(w) / L over the weight penalties (RL001's
        definition: scale-invariant kernels and normalization gamma/beta left
        out unless asked; ``front_only``: only the counted tensors that reach
        an output without passing a normalization layer, the part RL001's
        error is judged on)."""
        total = sum(r.penalty for r in self.variables
                    if (include_invariant or r.counted) and not (front_only and r.behind_norm))
        return div(total, self.data_loss)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "device_kind": self.device_kind,
            "backend": self.backend,
            "seconds": {"load": self.load_seconds, "run": self.run_seconds},
            "weights": self.start.describe(),
            "data": self.data,
            "loss": self.loss,
            "optimizer": self.optimizer,
            "initial": {
                "data_loss": self.data_loss,
                "penalty": self.penalty,
                "weight_penalty": self.weight_penalty,
                "other_penalty": self.penalty - self.weight_penalty,
                "penalty_ratio": self.weight_penalty_ratio(),
                "penalty_ratio_all": div(self.penalty, self.data_loss),
            },
            "variables": [r.to_dict() for r in self.variables],
            "layer_penalties": [asdict(p) for p in self.layer_penalties],
            "steps": {"requested": self.steps_requested, "taken": len(self.trajectory),
                      "trajectory": [asdict(s) for s in thinned(self.trajectory, MAX_TRAJECTORY)]},
            "outcome": asdict(self.outcome),
            "notes": list(self.notes),
            "twin": self._twin_dict(),
        }

    def _twin_dict(self) -> dict[str, Any] | None:
        if self.twin is None:
            return None
        twin = self.twin.to_dict()
        twin["start"]["weights"] = "fresh (a new draw of the file's initializers)" if self.start.fresh else \
            "saved (the file's weights, not re-initialised)"
        return twin


def thinned(records: list, limit: int) -> list:
    """At most ``limit`` records, evenly spaced, the last one kept."""
    if len(records) <= limit:
        return list(records)
    every = math.ceil(len(records) / limit)
    out = records[every - 1::every]
    if out[-1] is not records[-1]:
        out.append(records[-1])
    return out


def div(a: float, b: float) -> float:
    if b == 0 or not math.isfinite(b):
        return math.inf if a else 0.0
    return a / b


