"""reglint's view of each saved model: findings and the Analysis features
the thresholds are chosen on (``FEATURES``)."""

from __future__ import annotations

import math
from pathlib import Path

from .outcomes import clean


def analyse(rec: dict, out: Path):
    """lint_file on the saved pre-training model, with the run's context."""
    from reglint.engine.analysis import TrainingContext
    from reglint.engine.runner import lint_file
    from reglint.engine.settings import Settings

    from .train import training_steps

    # The steps the training really ran (Keras ran whole executions of 16 steps: train.training_steps).
    ctx = TrainingContext(samples=rec["n_samples"], batch_size=rec["batch_size"], epochs=rec["epochs"],
                          steps=training_steps(rec))
    settings = Settings(context=ctx)
    return lint_file(str(out / rec["model_path"]), settings)


def activity_penalty_estimate(model) -> float | None:
    """Per-sample activity penalty at init for a chain of Dense layers on
    standardised inputs (Keras' activity penalty on a Dense layer): pre-activation variance
    v = fan_in * sigma_w^2 * q_in, with q the input second moment (1 for
    standardised inputs); ReLU output second moment v/2, E|relu| =
    sqrt(v/(2 pi)); linear: v and sqrt(2 v / pi)."""
    from reglint.estimate.init_scale import element_moments

    q = 1.0
    total, any_act = 0.0, False
    for layer in model.layers:
        kernel = next((v for v in layer.variables if v.name == "kernel"), None)
        if layer.class_name != "Dense" or kernel is None:
            if layer.activity_regularizer is not None:
                return None
            continue
        moments = element_moments(kernel)
        if moments is None:
            return None
        fan_in = kernel.shape[0]
        v = fan_in * moments[0] * q
        relu = layer.activation == "relu"
        q_out = v / 2.0 if relu else v
        abs_out = math.sqrt(v / (2 * math.pi)) if relu else math.sqrt(2 * v / math.pi)
        reg = layer.activity_regularizer
        if reg is not None:
            any_act = True
            units = kernel.shape[1]
            if reg.kind in ("l2", "l1l2") and reg.l2:
                total += reg.l2 * units * q_out
            if reg.kind in ("l1", "l1l2") and reg.l1:
                total += reg.l1 * units * abs_out
        q = q_out
    return total if any_act else 0.0


FEATURES = {
    "rho": "analysis.penalty_ratio(): expected penalty at init over L_chance, counted tensors only (not "
           "scale-invariant kernels, absorbed gamma/beta or biases)",
    "rho_all": "analysis.penalty_ratio(include_invariant=True)",
    "sgd_fraction": "max over regularized tensors of dynamics.l2_stability_fraction(l2) (SGD only)",
    "decoupled_step": "dynamics.decoupled_shrink = lr * weight_decay",
    "decay_integral": "max over tensors of total_shrink(l2) (coupled SGD + decoupled) x total steps T",
    "l1_step_ratio": "max over L1 tensors of dynamics.l1_step(l1) / (E[sum|w|]/n at init) (SGD only)",
    "activity_ratio": "per-sample L2/L1 activity penalty at init (section 1.3 recurrence) / L_chance",
    "theta_eq": "max over trainable scale-invariant kernels of dynamics.equilibrium_angle(l2) (rad per step)",
    "stacked_shrink": "max over tensors with a coupled L2 and the optimizer's weight_decay of total_shrink(l2)",
    "stacked_counted": "stacked_shrink over the tensors RL001 counts (not scale-invariant, absorbed or offsets)",
    "gamma_ratio": "penalty at init of gammas that are not absorbed / L_chance",
}


def features_of(report) -> dict:
    a = report.analysis
    if a is None:
        return {}
    dyn = a.dynamics
    sgd_zero = 0.0 if dyn.family == "sgd" else None
    fracs = [f for f in (dyn.l2_stability_fraction(p.l2) for p in a.penalties if p.active and p.l2) if f is not None]
    act = activity_penalty_estimate(report.model)
    return {
        "rho": a.penalty_ratio(),
        "rho_all": a.penalty_ratio(include_invariant=True),
        "sgd_fraction": max(fracs) if fracs else sgd_zero,
        "decoupled_step": (dyn.decoupled_shrink or 0.0) if dyn.lr is not None else None,
        "decay_integral": _decay_integral(a),
        "l1_step_ratio": _l1_step_ratio(a),
        "activity_ratio": None if act is None else act / a.loss_scale.value,
        "theta_eq": _theta_eq(a),
        "stacked_shrink": _stacked_shrink(a),
        "stacked_counted": _stacked_shrink(a, counted_only=True),
        "gamma_ratio": sum(p.penalty or 0.0 for p in a.penalties if p.active and p.variable.role.value == "gamma"
                           and not p.absorbed) / a.loss_scale.value,
        "loss_scale": a.loss_scale.value,
        "family": dyn.family,
    }


def _decay_integral(a) -> float | None:
    dyn, steps = a.dynamics, a.context.total_steps()
    shrinks = [dyn.total_shrink(p.l2) for p in a.penalties if p.active and p.l2] or [dyn.decoupled_shrink]
    shrinks = [s for s in shrinks if s is not None]
    if steps and shrinks:
        return max(shrinks) * steps
    return 0.0 if steps and dyn.family == "sgd" else None


def _l1_step_ratio(a) -> float | None:
    from reglint.estimate.init_scale import expected_sum_abs

    ratios = []
    for p in a.penalties:
        step = a.dynamics.l1_step(p.l1) if p.active and p.l1 else None
        sum_abs = expected_sum_abs(p.variable) if step is not None else None
        if sum_abs:
            ratios.append(step / (sum_abs / p.variable.size))
    return max(ratios) if ratios else (0.0 if a.dynamics.family == "sgd" else None)


def _theta_eq(a) -> float | None:
    kernels = a.invariant_kernels()
    if not kernels or a.dynamics.lr is None:
        return None
    return max((a.dynamics.equilibrium_angle(l2) or 0.0) for _, _, l2 in kernels)


def _stacked_shrink(a, counted_only: bool = False) -> float | None:
    dyn = a.dynamics
    if dyn.lr is None:
        return None
    stacked = [dyn.total_shrink(p.l2) or 0.0 for p in a.penalties
               if p.active and p.l2 and dyn.weight_decay and (p.counted or not counted_only)]
    return max(stacked) if stacked else 0.0


def lint_all(runs: list[dict], out: Path) -> None:
    """Adds rec['features'] and rec['findings'] to every run."""
    for rec in runs:
        path = out / rec["model_path"]
        if not path.exists():
            rec["features"], rec["findings"], rec["lint_error"] = {}, [], "model file missing"
            continue
        report = analyse(rec, out)
        rec["lint_error"] = report.error
        rec["features"] = features_of(report) if report.error is None else {}
        rec["findings"] = [{"code": f.code, "severity": f.severity.value, "layer": f.layer,
                            "values": jsonable(f.values)} for f in report.findings]


def jsonable(values: dict) -> dict:
    out = {}
    for k, v in (values or {}).items():
        if isinstance(v, float):
            out[k] = clean(v)
        elif isinstance(v, (int, str, bool)) or v is None:
            out[k] = v
        else:
            out[k] = str(v)
    return out


