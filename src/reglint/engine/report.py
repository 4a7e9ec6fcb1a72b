"""The result of linting files, and its JSON form (a contract: later tools
read ``version: 1``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from reglint.engine.finding import Finding, Severity, combined_changes
from reglint.engine.identity import display_path
from reglint.estimate.clipping import clip_of
from reglint.model import Model, ParamGroup, Regularizer

JSON_VERSION = 1


@dataclass
class FileReport:
    path: str
    model: Model | None = None
    analysis: Any = None  # reglint.engine.analysis.Analysis
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Finding] = field(default_factory=list)
    error: str | None = None
    cached: bool = False
    # The reader found no model at all (NotAModelError): a file found by
    # searching a folder is then skipped, not an error.
    not_a_model: bool = False
    # The selected rules' responses to the lambdas (``Rule.sweep``).
    curves: list[Any] = field(default_factory=list)
    # The selected rules' estimates of penalties outside the weights' (``Rule.penalty_estimates``).
    penalty_estimates: list[Any] = field(default_factory=list)
    # The error came from this machine, not the file (out of memory): the
    # report is never cached, the next run tries again.
    transient: bool = False
    # Files the read opened beside the model (external data, checkpoint
    # shards, split parts): the cache entry goes stale when one changes.
    read_with: list[str] = field(default_factory=list)

    def worst(self) -> Severity | None:
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=lambda s: s.rank)


@dataclass
class RunReport:
    files: list[FileReport] = field(default_factory=list)

    @property
    def findings(self) -> list[tuple[FileReport, Finding]]:
        return [(f, finding) for f in self.files for finding in f.findings]

    @property
    def errors(self) -> list[FileReport]:
        return [f for f in self.files if f.error]

    def exit_code(self, fail_on: Severity | None) -> int:
        """0 clean, 1 findings at or above ``fail_on``, 2 unreadable input."""
        if self.errors:
            return 2
        if fail_on is None:
            return 0
        return 1 if any(f.severity.rank >= fail_on.rank for _, f in self.findings) else 0

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"version": JSON_VERSION, "files": [file_to_dict(f) for f in self.files]})


def jsonable(value: Any, depth: int = 0) -> Any:
    """Deep copy safe for strict JSON: non-finite floats become strings,
    tuples lists, unknown objects their repr."""
    if depth > 40:
        return "..."
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, float):
        return number(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item(), depth + 1)
    return repr(value)


def number(value: Any) -> Any:
    """JSON has no NaN or Infinity: write them as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def regularizer_to_dict(target: str, reg: Regularizer) -> dict[str, Any]:
    out = {
        "target": target,
        "kind": reg.kind,
        "l1": number(reg.l1),
        "l2": number(reg.l2),
        "config": reg.config,
        "source": reg.source.value,
    }
    if reg.kind == "orthogonal":
        out["factor"] = number(reg.factor)
        out["mode"] = reg.mode
    if reg.kind == "custom":
        out["class_name"] = reg.class_name
    return out


def model_to_dict(model: Model, analysis: Any = None, curves: list[Any] | None = None,
                  penalty_estimates: list[Any] | None = None) -> dict[str, Any]:
    layers = []
    penalties = {}
    counted: set[int] = set()  # the tensors analysis.penalty_init sums (and RL001 judges)
    if analysis is not None:
        for p in analysis.penalties:
            penalties[(p.layer.path, p.variable.name)] = p
        counted = {id(p) for p in analysis.active_penalties()}
    for layer in model.layers:
        regs = [regularizer_to_dict(target, reg) for target, reg in layer.regularizers()]
        entry = {
            "name": layer.name,
            "class": layer.class_name,
            "path": layer.path,
            "trainable": layer.trainable,
            "custom": layer.custom,
            "params": {"trainable": layer.trainable_params, "non_trainable": layer.non_trainable_params},
            "regularizers": regs,
            "variables": [
                {"name": v.name, "role": v.role.value, "shape": list(v.shape), "trainable": v.trainable,
                 "initializer": v.initializer.name if v.initializer else None,
                 "sum_sq": number(v.stats.sum_sq) if v.stats else None,
                 "nonfinite": v.stats.nonfinite if v.stats else None,
                 **_penalty_fields(penalties.get((layer.path, v.name)), counted)}
                for v in layer.variables
            ],
        }
        layers.append(entry)
    out = {
        "format": model.format,
        "framework": model.framework,
        "keras_version": model.framework_version if model.framework in ("keras", "tf.keras") else None,
        "framework_version": model.framework_version,
        "params": {"total": model.total_params, "trainable": model.trainable_params,
                   "non_trainable": model.non_trainable_params},
        "layers": layers,
        "optimizer": optimizer_to_dict(model),
        "loss": [
            {"name": loss.name, "from_logits": loss.from_logits, "weight": number(loss.weight), "output": loss.output,
             "reduction": loss.reduction, "source": loss.source.value}
            for loss in model.losses
        ] or None,
        "outputs": [{"layer": o.layer, "units": o.units, "activation": o.activation, "name": o.name}
                    for o in model.outputs],
        "notes": list(model.notes),
    }
    if analysis is not None:
        out["analysis"] = analysis_to_dict(analysis, curves or [], penalty_estimates or [])
    return out


def _penalty_fields(p, counted: set[int]) -> dict[str, Any]:
    """``penalty``: the reference value the totals add up (at init, else at
    the saved weights); ``counted``: part of ``analysis.penalty_init`` (active,
    neither scale-invariant nor absorbed), so a reader can say what a total
    leaves out without re-deriving the rule."""
    if p is None:
        return {}
    return {"penalty_init": number(p.penalty_init), "penalty_saved": number(p.penalty_saved),
            "sum_sq_init": number(p.sum_sq_init), "scale_invariant": p.scale_invariant, "absorbed": p.absorbed,
            "offset": p.offset, "behind_norm": p.behind_norm,
            "active": p.active, "penalty": number(p.penalty), "counted": id(p) in counted}


def optimizer_to_dict(model: Model) -> dict[str, Any] | None:
    opt = model.optimizer
    if opt is None:
        return None
    lr = opt.learning_rate
    return {
        "class": opt.class_name,
        "learning_rate": None if lr is None else {
            "initial": number(lr.initial), "peak": number(lr.peak), "schedule": lr.schedule,
            "config": lr.config, "source": lr.source.value},
        "momentum": number(opt.momentum),
        "nesterov": opt.nesterov,
        "weight_decay": number(opt.weight_decay),
        "coupled_l2": number(opt.coupled_l2),
        "lr_decay": number(opt.lr_decay),
        "iterations": opt.iterations,  # as stored: batches under gradient accumulation
        "gradient_accumulation_steps": opt.gradient_accumulation_steps,
        # gradient clipping, the first Keras applies (global_clipnorm, clipnorm, clipvalue); null where none
        "clipping": None if (clip := clip_of(opt)) is None else {"kind": clip.kind, "value": clip.value},
        "ema_momentum": number(opt.ema_momentum()),  # use_ema: fit leaves the weights' moving average; null: none
        # the optimizer's own penalties (Ftrl's l1/l2 strengths); null where none
        "own_penalties": opt.own_penalties() or None,
        "source": opt.source.value,
        # PyTorch param groups; null where the optimizer keeps one setting for all.
        "param_groups": [param_group_to_dict(group) for group in opt.param_groups] or None,
    }


def param_group_to_dict(group: ParamGroup) -> dict[str, Any]:
    """One param group: ``weight_decay``/``coupled_l2`` in the optimizer's
    conventions (decoupled as is; coupled as a Keras L2 factor, wd/2), the
    group's settings as saved in ``hyperparameters`` (there ``weight_decay``
    is the framework's own number), the variables it updates by location."""
    return {
        "index": group.index,
        "learning_rate": number(group.learning_rate),
        "weight_decay": number(group.weight_decay),
        "coupled_l2": number(group.coupled_l2),
        "momentum": number(group.momentum),
        "decays": group.decays,
        "hyperparameters": group.hyperparameters,
        "params": group.size,
        "variables": list(group.variables),
        "mapping": group.mapping,
    }


def analysis_to_dict(analysis, curves: list[Any] | None = None,
                     penalty_estimates: list[Any] | None = None) -> dict[str, Any]:
    from reglint.engine.sweep import safe_multiplier

    ls = analysis.loss_scale
    dyn = analysis.dynamics
    curves = curves or []
    safe_m, bound_by = safe_multiplier(curves)
    return {
        "sweep": {"curves": [c.to_dict() for c in curves], "safe_multiplier": number(safe_m),
                  "bound_by": bound_by},
        "loss_scale": {"value": number(ls.value), "source": ls.source.value, "explanation": ls.explanation},
        "penalty_init": number(analysis.total_penalty_init()),
        "penalty_init_all": number(analysis.total_penalty_init(include_invariant=True)),
        "penalty_ratio": number(analysis.penalty_ratio()),
        # penalties outside the weights' (activity), per sample as the rules estimate them: not in the above
        "penalty_estimates": [e.to_dict() for e in penalty_estimates or []],
        "lambda_ref": number(analysis.lambda_scale()),
        "optimizer_family": dyn.family,
        "learning_rate": number(dyn.lr),
        "total_steps": analysis.context.total_steps(),
    }


def file_to_dict(report: FileReport) -> dict[str, Any]:
    return {
        "path": display_path(report.path),  # as every reporter names it: relative to the working directory
        "error": report.error,
        "model": model_to_dict(report.model, report.analysis, report.curves, report.penalty_estimates)
        if report.model is not None else None,
        "findings": [_finding_dict(f) for f in report.findings],
        # settings two or more rules change to different values, and the value meeting them all
        "combined_changes": [c.to_dict() for c in combined_changes(report.findings)],
    }


def _finding_dict(f: Finding) -> dict[str, Any]:
    d = f.to_dict()
    d["values"] = {k: number(v) for k, v in d["values"].items()}
    return d
