"""``reglint explain``: the practitioner's question, answered with the
model's own numbers.

"My Conv2D has 20*(2*3*10+1) = 1220 weights and the L2 penalty grows with the
weight count: should lambda shrink as the model grows?" For each regularized
tensor this prints what depends on the weight count and what does not:

- the gradient per weight, ``2*lambda*w``: independent of the count;
- the per-step shrink of a weight the data does not hold up,
  ``2*eta*lambda/(1-b)`` (SGD) or ``eta*wd`` (decoupled): independent too;
- the total penalty, ``lambda * E[sum w^2]``: grows with the layer, and for
  VarianceScaling initialisers with its *width* (glorot:
  ``2*c_in*c_out/(c_in+c_out)``; he: ``2*c_out``; lecun: ``c_out``), the kernel
  size cancelling; compared with a data loss that does not grow at all;
- what the dataset size changes: the MAP prior ``lambda = 1/(2*sigma^2*N)``
  shrinks with N, and the decay timescale in epochs is ``tau*B/N``.

The optimizer's ``weight_decay`` reaches every weight without a penalty in
the loss: its shrink, timescale and the rules' verdicts on it come first
(``optimizer_decay`` in JSON, ``kind`` decoupled or coupled), also for a
model with no regularizer. Decoupled (AdamW): ``lr*wd`` per step. Coupled
(PyTorch SGD/Adam ``weight_decay``): ``wd*w`` joins the gradient, an L2 of
factor ``wd/2``, shrinking ``lr*wd/(1-momentum)`` per step under SGD and
normalised away under Adam (RL007).

"The whole model's penalty" is check's "penalty (at init)" figure (every
active penalty); the part RL001 counts (leaving out scale-invariant kernels,
absorbed normalization parameters, biases) is named as such when it differs.
"""

from __future__ import annotations

import json
import sys
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from reglint.engine.analysis import Analysis
from reglint.engine.fmt import g, g_down, lam, pct
from reglint.engine.report import FileReport
from reglint.engine.sweep import safe_multiplier
from reglint.errors import ReglintError
from reglint.estimate.dynamics import ftrl_l2_scale_at_start
from reglint.estimate.init_scale import init_rms, width_doubling
from reglint.reporters.text import markup


def rule_changes(report: FileReport, layer: str, tensor: str) -> list[dict[str, Any]]:
    """The changes the findings' fixes make to this tensor: the rules'
    own suggested values, never re-derived here."""
    out = []
    for finding in report.findings:
        if finding.fix is None:
            continue
        for change in finding.fix.changes:
            # a change names the tensor as the layer holds it (``key/kernel`` in
            # a MultiHeadAttention, ``forward_gru/bias`` in a Bidirectional:
            # review 40, 1), or by its last part alone
            if change.layer == layer and change.target in (tensor, tensor.split("/")[-1]):
                out.append({"code": finding.code, "aim": finding.fix.aim, **change.to_dict()})
    return out


def largest_safe_lambda(report: FileReport, factor: float, layer: str) -> tuple[float | None, list[str]]:
    """Today's factor times the largest common multiplier under every
    selected rule's warning level (the rules' ``sweep`` curves) that
    ``layer``'s lambda moves (review 72, 2: an output L1 outside RL024's
    chain was bounded by RL024)."""
    m, bound_by = safe_multiplier([c for c in report.curves if c.judges(layer)])
    return (factor * m if m is not None and factor else None), bound_by


def _layer_matches(layer, wanted: str, model) -> bool:
    """``--layer``: the layer's path or name, a glob over paths, or a nested
    model (its path or name): every layer inside it."""
    if layer.path == wanted or layer.name == wanted or fnmatch(layer.path, wanted):
        return True
    nested = [c.path for c in (model.containers if model is not None else []) if wanted in (c.path, c.name)]
    return any(layer.path.startswith(path + "/") for path in nested)


def explain_tensor(report: FileReport, p) -> dict[str, Any]:
    """The numbers for one regularized tensor."""
    analysis: Analysis = report.analysis
    var, layer = p.variable, p.layer
    # the optimizer that updates this tensor: a MultiOptimizer group's own settings, as the rules judge it
    dyn, ctx = analysis.variable_dynamics(var), analysis.context
    scale = analysis.loss_scale.value
    fan_in, fan_out = var.fans()
    sigma, weights_from = init_rms(var), "init"
    if var.initializer is None and var.stats is not None:  # ONNX: no initializer, the saved weights stand in
        sigma, weights_from = var.stats.rms, "saved"
    l2, l1 = p.l2, p.l1
    orthogonal = p.regularizer.kind == "orthogonal"
    # a frozen tensor: no optimizer step moves it; Keras 3 adds no penalty for it, tf.keras a constant (RL016)
    shrink = (dyn.total_shrink(l2) if l2 else dyn.decoupled_shrink) if p.active else None
    terms = shrink_terms(dyn, l2) if p.active else []
    per_epoch = ctx.steps_per_epoch()
    safe, bound_by = largest_safe_lambda(report, l2 or l1, layer.path)
    return {
        "layer": layer.path,
        "class": layer.class_name,
        "variable": var.name,
        "shape": list(var.shape),
        "weights": var.size,
        "layer_params": layer.params,
        "fan_in": fan_in,
        "fan_out": fan_out,
        "regularizer": lam(p.regularizer),
        "l1": l1,
        "l2": l2,
        "initializer": var.initializer.label if var.initializer else None,
        "init_rms": sigma,
        "rms_from": weights_from,  # "init" (the initializer's) or "saved" (no initializer recorded)
        # L1's pull lambda*sign(w) needs no weight scale; L2's 2*lambda*w needs sigma
        "gradient_per_weight": (2 * l2 * sigma if l2 else 0.0) + l1
        if p.active and (sigma is not None or not l2) and not orthogonal else None,
        "gradient_formula": gradient_formula(l2, l1) if not orthogonal else ORTHOGONAL_GRADIENT,
        "orthogonal": orthogonal,
        "l1_step": dyn.l1_step(l1) if l1 and p.active else None,
        "sum_sq_init": p.sum_sq_init,
        "sum_sq_saved": var.stats.sum_sq if var.stats is not None else None,
        "sum_sq_init_per_weight": (p.sum_sq_init / var.size) if p.sum_sq_init else None,
        "sum_abs_init": p.sum_abs_init,  # an L1's penalty grows as sum |w|
        "penalty_init": p.penalty_init,
        "penalty_saved": p.penalty_saved,
        "share_of_data_loss": (0.0 if not p.active else (p.penalty_init / scale) if p.penalty_init is not None else (
            p.penalty_saved / scale if p.penalty_saved is not None else None)),  # as check's share column
        "data_loss_scale": scale,
        "shrink_per_step": shrink,
        # the seed question: what doubling this layer's output width does at init (penalty, typical |w|)
        "width_doubling": width_doubling(var, l2, l1) if not orthogonal else None,
        "map_lambda": (1.0 / (2.0 * sigma * sigma * ctx.samples)) if sigma and ctx.samples else None,
        "samples": ctx.samples,
        "shrink_terms": terms,  # [{formula, value}]: what adds up to shrink_per_step
        "timescale_steps": (1 / shrink) if shrink else None,
        "timescale_epochs": (1 / shrink / per_epoch) if shrink and per_epoch else None,
        "momentum_limit": momentum_limit(dyn, l2, shrink),
        # gradient clipping: the shrink it allows at the saved weights, as RL024 says it
        "clipped": clipped_shrink(analysis, p, dyn) if p.active and dyn.family == "sgd" else None,
        # under an adaptive optimizer: how the penalty moves a weight the data does not hold, in RL007's words
        "adaptive_motion": _adaptive_motion(report, dyn, (2 * l2 * sigma if l2 and sigma else 0.0) + l1, l2, l1, var)
        if p.active and dyn.family == "adaptive" else None,
        "model_penalty_ratio": analysis.penalty_ratio(),  # the part RL001 counts
        "model_penalty_whole_ratio": analysis.penalty_ratio(include_invariant=True),  # check's "penalty" line
        "rule_changes": rule_changes(report, layer.path, var.name),
        "largest_safe_lambda": safe,
        "largest_safe_lambda_bound_by": bound_by,
        "scale_invariant": p.scale_invariant,
        "absorbed": p.absorbed,
        "active": p.active,
        "optimizer_family": dyn.family,
    }


def clipped_shrink(analysis: Analysis, p, dyn) -> dict[str, Any] | None:
    """Where the optimizer clips gradients and the clip binds at the saved
    weights: this tensor's shrink per step over the first steps and the
    steps before the linear rate, from the one simulation RL002 and RL024
    read (``estimate.clipping.penalty_motions``)."""
    from reglint.estimate.clipping import clip_of, penalty_motions

    clip = clip_of(analysis.model.optimizer)
    motion = penalty_motions(analysis, clip).get(id(p.variable)) if clip is not None else None
    if clip is None or motion is None:
        return None
    return {"clip": clip.text, "shrink_per_step": motion.shrink, "steps": motion.release}


def _coupled_motion(report: FileReport, view: Analysis) -> str | None:
    """An optimizer's coupled weight_decay under an adaptive optimizer (one
    param group's, in a group ``view``), in RL007's words."""
    from reglint.rules.rl007_coupled_penalty_adaptive import coupled_decay_reach, penalty_motion

    opt = report.model.optimizer if report.model is not None else None
    if opt is None:
        return None
    dyn = view.dynamics
    _, gstar = coupled_decay_reach(report.model, dyn)
    group = opt.group_at(view.optimizer_group)
    return penalty_motion(report.model, dyn, gstar, dyn.coupled_l2, 0.0, "weight_decay", group)


def _adaptive_motion(report: FileReport, dyn, gstar: float, l2: float, l1: float, var) -> str | None:
    from reglint.rules.rl007_coupled_penalty_adaptive import penalty_motion

    if report.model is None:
        return None
    opt = report.model.optimizer
    group = opt.group_of(var.location) if opt is not None else None  # its sub-optimizer's class
    return penalty_motion(report.model, dyn, gstar, l2, l1, "lambda", group)


def momentum_limit(dyn, l2: float, shrink: float | None) -> dict[str, Any] | None:
    """Where heavy-ball momentum keeps the weights from shrinking as fast as
    the slow mode ``shrink`` asks (the roots turn complex, or every step
    overshoots zero): what they really do, ``Dynamics``' numbers as RL002,
    RL003 and RL024 use them. None where the slow mode holds."""
    from reglint.estimate.dynamics import halving_steps

    if not shrink or dyn.family != "sgd" or not dyn.momentum or not (l2 or dyn.coupled_l2):
        return None
    if dyn.flips_every_step(l2):
        return {"flips_every_step": True, "contraction": None, "halving_steps": None}
    if dyn.momentum_regime(l2, shrink) != "limited":
        return None
    actual = dyn.contraction(l2)
    return {"flips_every_step": False, "contraction": actual, "halving_steps": halving_steps(actual)}


def limit_text(limit: dict[str, Any]) -> str:
    if limit["flips_every_step"]:
        return ("  momentum's limit     past it: every step overshoots zero and flips the weights (the per-step "
                "shrink above, 2*lr*lambda/(1-momentum), is only what the setting asks for)")
    return (f"  momentum's limit     the weights swing through zero inside an envelope that shrinks by "
            f"{g(limit['contraction'])} per step: an unsupported weight halves every {g(limit['halving_steps'], 2)} "
            f"steps (the per-step shrink above, 2*lr*lambda/(1-momentum), is only what the setting asks for; "
            f"momentum lets the weights decay no faster than this)")


def shrink_terms(dyn, l2: float) -> list[dict[str, Any]]:
    """The parts of a tensor's per-step shrink, each with the formula that
    gives its value (``Dynamics``' own numbers, as check uses them): the
    coupled L2 (the penalty's, plus the optimizer's coupled decay) under
    SGD, and the optimizer's decoupled weight decay. An L1-only tensor has
    no L2 part: its pull is ``l1_step``."""
    terms = []
    coupled = dyn.coupled_shrink(l2) if l2 else None
    if coupled:
        inner = "(lambda+coupled_l2)" if dyn.coupled_l2 else "lambda"
        terms.append({"formula": f"2*lr*{inner}/(1-momentum)", "value": coupled})
    if dyn.decoupled_shrink:
        terms.append({"formula": "lr*weight_decay", "value": dyn.decoupled_shrink})
    return terms


def shrink_text(terms: list[dict[str, Any]], total: float) -> str:
    """``2*lr*lambda/(1-momentum) + lr*weight_decay = 0.1 + 0.2 = 0.3``: every
    label names the number beside it."""
    formulas = " + ".join(t["formula"] for t in terms)
    if len(terms) < 2:
        return f"{formulas or 'shrink'} = {g(total)}"
    return f"{formulas} = {' + '.join(g(t['value']) for t in terms)} = {g(total)}"


# An OrthogonalRegularizer's gradient (Keras: factor * 0.5 * mean |cos| over
# pairs of rows or columns) depends on the overlaps, not on one weight.
ORTHOGONAL_GRADIENT = "d/dw of factor x mean |cos| between rows (or columns): turns them apart, not toward 0"


def _why_no_growth(row: dict[str, Any]) -> str:
    """Why ``width_doubling`` gave nothing, as the row already says it (review
    40, 6: '(no initializer recorded)' right after naming one)."""
    if not row["initializer"]:
        return "(no initializer recorded)"
    return (f"from the initializer: {row['class']}'s {row['variable']} does not take its fans from one output "
            f"width ({row['initializer']})")


def gradient_formula(l2: float, l1: float) -> str:
    """The penalty's gradient on one weight: ``2*lambda*w`` (L2), ``lambda*sign(w)`` (L1)."""
    if l1 and l2:
        return "2*l2*w + l1*sign(w)"
    return "lambda*sign(w)" if l1 else "2*lambda*w"


def explain_optimizer_decay(report: FileReport, view: Analysis | None = None) -> dict[str, Any] | None:
    """The optimizer's own ``weight_decay``, which reaches every weight
    whether or not a layer has a regularizer, and what the rules say of it
    (their findings and fixes, never re-derived here). None without one.

    Decoupled (AdamW, Keras 3): ``w <- w - lr*wd*w``, shrink ``lr*wd``.
    Coupled (PyTorch SGD/Adam ``weight_decay``, ONNX training graphs): ``wd*w``
    joins the gradient, an L2 penalty of factor ``wd/2``; under SGD the
    shrink is ``lr*wd/(1-momentum)``, under Adam-family optimizers the
    gradient's normalisation leaves no static shrink (RL007). ``view``: a
    param group's (``Analysis.group_views``) in place of the fastest one."""
    from reglint.readers.torch_optim import torch_weight_decay

    view = view or report.analysis
    dyn, ctx = view.dynamics, view.context
    coupled_wd = torch_weight_decay(None, dyn.coupled_l2) or 0.0  # torch's wd: coupled_l2 is its L2 factor wd/2
    if not dyn.weight_decay and not coupled_wd:
        return None
    kind = "decoupled" if not coupled_wd else ("coupled" if not dyn.weight_decay else "coupled+decoupled")
    formula = {"decoupled": "lr*weight_decay", "coupled+decoupled": "lr*wd/(1-momentum) + lr*weight_decay",
               "coupled": "lr*weight_decay/(1-momentum)"}[kind]
    # Dynamics adds the coupled part only under SGD: elsewhere it is normalised away (RL007)
    shrink = dyn.total_shrink(0.0)
    per_epoch = ctx.steps_per_epoch()
    # the optimizer's, or a param group's (optimizer.param_groups[N].weight_decay)
    findings = [f for f in report.findings if (f.target or "").startswith("optimizer.")
                and (f.target or "").endswith("weight_decay")]
    changes = [{"code": f.code, "aim": f.fix.aim, **c.to_dict()} for f in report.findings if f.fix is not None
               for c in f.fix.changes if c.target == "optimizer" and c.parameter == "weight_decay"]
    return {"weight_decay": dyn.weight_decay or coupled_wd, "learning_rate": dyn.lr, "optimizer_family": dyn.family,
            # where groups differ, the lead group's (the fastest decay) and then every group's own
            "param_group": view.optimizer_group, "groups": group_decays(report.analysis),
            "fastest": view is report.analysis,  # else the group of the layers --layer asked for
            "kind": kind, "coupled_l2": dyn.coupled_l2 or None, "momentum": dyn.momentum, "formula": formula,
            "shrink_per_step": shrink, "timescale_steps": (1 / shrink) if shrink else None,
            "momentum_limit": momentum_limit(dyn, 0.0, shrink),
            "adaptive_motion": _coupled_motion(report, view) if dyn.family == "adaptive" and coupled_wd else None,
            "timescale_epochs": (1 / shrink / per_epoch) if shrink and per_epoch else None,
            "findings": [{"code": f.code, "severity": f.severity.value, "message": f.message} for f in findings],
            "rule_changes": changes}


def group_decays(analysis: Analysis) -> list[dict[str, Any]] | None:
    """Each param group's decay with its own settings (the dynamics the
    rules judge it with, ``Analysis.group_views``), where groups differ;
    None where one setting covers every weight."""
    from reglint.readers.torch_optim import torch_weight_decay

    views = analysis.group_views()
    opt = analysis.model.optimizer
    if len(views) < 2 or opt is None:
        return None
    rows = []
    for group in opt.param_groups:
        dyn = analysis.variable_dynamics_of_group(group.index)
        if dyn is None:
            continue
        shrink = dyn.total_shrink(0.0)
        rows.append({"index": group.index, "tensors": len(group.variables),
                     # the group's own lr, as check lists it; the dynamics' where SGD's dampening scales it
                     "learning_rate": group.learning_rate if group.learning_rate is not None else dyn.lr,
                     "effective_learning_rate": dyn.lr,
                     "weight_decay": dyn.weight_decay or torch_weight_decay(None, dyn.coupled_l2),
                     "momentum": dyn.momentum or None, "nesterov": dyn.nesterov,
                     "optimizer_family": dyn.family, "shrink_per_step": shrink})
    return rows or None


def run_explain(path: Path, *, layer: str | None, context: dict[str, Any], output_format: str,
                patterns: dict[str, list[str] | None] | None = None) -> int:
    """Lint the file exactly as ``check`` does (settings, context options,
    ``--l2``/``--l1`` patterns, rules, fixes), then explain its regularized
    tensors with the rules' answers."""
    from reglint.cli.run import CheckOptions, check_patterns, resolve
    from reglint.engine.runner import lint_file
    from reglint.errors import err

    patterns = patterns or {}
    options = CheckOptions(paths=[path], context=context, l2=patterns.get("l2"), l1=patterns.get("l1"))
    try:
        settings = resolve(options)
    except ReglintError as exc:
        err(str(exc))
        return 2
    report = lint_file(str(path), settings)
    if report.error or report.analysis is None:
        err(f"{path}: {report.error}")
        return 2
    try:
        check_patterns(options, [report])
    except ReglintError as exc:
        err(str(exc))
        return 2
    items = [p for p in report.analysis.penalties if layer is None or _layer_matches(p.layer, layer, report.model)]
    activity = activity_rows(report, layer, settings)
    decay = explain_optimizer_decay(report)
    if layer is not None and not items and not activity:
        # a layer without a regularizer of its own (every layer of a PyTorch
        # checkpoint): the optimizer's decay is what acts on it (review 31, D13)
        known = report.model is not None and any(_layer_matches(x, layer, report.model) for x in report.model.layers)
        if not known:
            names = [x.path for x in report.model.layers if x.class_name != "InputLayer"] \
                if report.model is not None else []
            shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
            err(f"no layer matches {layer!r}" + (f"; the layers are {shown}" if names else ""))
            return 2
        if decay is None:  # an answer, not an error (review 39, 10)
            if output_format == "json":
                print(json.dumps({"path": str(path), "tensors": [], "optimizer_decay": None,
                                  "layer": layer, "nothing_acts": True}))
            else:
                print(f"{layer}: no regularizer and no weight decay in the optimizer: nothing shrinks its weights "
                      f"but the data")
            return 0
    rows = [explain_tensor(report, p) for p in items]
    if layer is not None and not rows and decay is not None:
        view = _acting_view(report, layer)  # the headline: the asked layers' own group (review 33, D10)
        if view is not None:
            decay = explain_optimizer_decay(report, view)
    if output_format == "json":
        from reglint.engine.report import file_to_dict, jsonable

        whole = file_to_dict(report)
        sweep = (whole.get("model") or {}).get("analysis", {}).get("sweep")
        doc = {"path": str(path), "tensors": rows, "activity": activity, "optimizer_decay": decay,
               "findings": whole["findings"],
               "sweep": sweep, "optimizer_own_penalties": own_penalties(report.model)}
        sys.stdout.write(json.dumps(jsonable(doc), indent=2) + "\n")
        return 0
    acting = _acting_groups(report, layer) if layer is not None and not rows else None
    own = own_penalties(report.model)
    if own:
        _print_own_penalties(own)
    _print(rows, report.analysis, path, decay, acting, asked=layer is not None, own=bool(own), activity=bool(activity))
    _print_activity(activity)
    return 0


def activity_rows(report: FileReport, layer: str | None, settings=None) -> list[dict[str, Any]]:
    """Each activity regularizer (of the layers ``layer`` matches) with
    RL010's estimate of its penalty per sample (``estimates``: the rule's
    own arithmetic) and what RL010 says of it (review 57, 3: explain said
    "nothing to explain" of a model check gave an RL010 error)."""
    from reglint.engine.selection import selected_rules
    from reglint.rules.rl010_activity_regularizer_scale import ActivityRegularizerScale

    if report.model is None or report.analysis is None:
        return []
    rule = ActivityRegularizerScale()
    selected = settings is None or any(cls.code == rule.code for cls in selected_rules(settings))
    level = (settings.thresholds if settings is not None else {}).get("activity-ratio-warning",
                                                                       rule.options["activity-ratio-warning"].default)
    rows = []
    for estimate in rule.estimates(report.model, report.analysis):
        if layer is not None and not _layer_matches(estimate.layer, layer, report.model):
            continue
        finding = next((f for f in report.findings if f.code == "RL010" and f.layer == estimate.layer.path
                        and not f.measured), None)
        rows.append({
            "layer": estimate.layer.path, "class": estimate.layer.class_name,
            "regularizer": lam(estimate.layer.activity_regularizer), "pull": _activity_pull(estimate.layer),
            "per_sample": estimate.per_sample,
            "ratio": estimate.ratio, "output_elements": estimate.elements, "calls": estimate.calls,
            "batch_factor": estimate.batch_factor, "input_second_moment": estimate.inputs, "input_mean": estimate.mean,
            "data_loss_scale": estimate.scale, "no_estimate": estimate.missing,
            "summary": estimate.describe(report.model) if estimate.per_sample is not None else None,
            "finding": None if finding is None else {"severity": finding.severity.value,
                                                     "remedy": finding.remedy},
            # why RL010 says nothing (review 58, 8: "under its warning level" of a rule switched off)
            "rl010": "finding" if finding else "off" if not selected else "no-estimate" if estimate.ratio is None
            else "under-level" if estimate.ratio < level else "suppressed",
            "warning_level": level})
    return rows


def _activity_pull(layer) -> str:
    """The penalty's gradient on one output element ``a``."""
    from reglint.estimate.activity import softmax_classes

    reg = layer.activity_regularizer
    if softmax_classes(layer) is not None:  # sum |p| = 1: L1 has no gradient there
        return ("it pulls the predictions toward uniform (2*l2*p per element), not the weights" if reg.l2 else
                "none: sum |p| is 1 per row")
    terms = (["2*l2*a"] if reg.l2 else []) + (["l1*sign(a)"] if reg.l1 else [])
    return f"it pulls each output toward 0 ({' + '.join(terms) or '0'} per element), not the weights"


def _print_activity(rows: list[dict[str, Any]]) -> None:
    from reglint.reporters.console import make_console

    console = make_console()
    for row in rows:
        title = f"[bold]{markup(row['layer'])}[/] {markup(row['class'])} · activity · {markup(row['regularizer'])}"
        if console.soft_wrap:
            console.print(f"── {title} ──")
        else:
            console.rule(title)
        if row["per_sample"] is None:
            measures = "" if "does nothing" in row["no_estimate"] else "; reglint profile measures it"
            lines = [f"  no estimate: {markup(row['no_estimate'])}{measures}"]
        else:
            lines = [
                f"  penalty per sample   {markup(row['summary'])}",
                "  grows with           the output's elements (width x positions or steps) and the layer's calls, "
                f"not with its weight count; {row['pull']}",
            ]
            finding, state = row["finding"], row["rl010"]
            lines.append(f"  RL010 {finding['severity']}: {markup(finding['remedy'])}" if finding else
                         "  RL010 is not selected in this configuration" if state == "off" else
                         f"  RL010 does not warn: under its warning level ({g(row['warning_level'])}x the data-loss "
                         f"scale)" if state == "under-level" else
                         "  RL010's finding here is suppressed (an ignore or override in the configuration)")
        for line in lines:
            console.print(line, highlight=False)
        console.print()


def own_penalties(model) -> dict[str, Any] | None:
    """The penalties the optimizer applies in its own update (Ftrl's
    strengths, review 40, 3) and the L2's effect at the start
    (``estimate.dynamics.ftrl_l2_scale_at_start``)."""
    opt = model.optimizer if model is not None else None
    strengths = opt.own_penalties() if opt is not None else {}
    if opt is None or not strengths:
        return None
    out: dict[str, Any] = {"class": opt.class_name, "strengths": strengths}
    scale = ftrl_l2_scale_at_start(opt)
    if scale is not None:
        out["l2_scale_at_start"] = scale
    return out


def _print_own_penalties(own: dict[str, Any]) -> None:
    from reglint.reporters.console import make_console

    console = make_console()
    settings = ", ".join(f"{key} {g(value)}" for key, value in own["strengths"].items())
    console.print(f"── optimizer {markup(own['class'])}'s own penalties: {markup(settings)} ──", highlight=False)
    console.print("  applied in the optimizer's update, not added to the loss (neither a regularizer nor weight_decay: "
                  "no other line shows them)", highlight=False)
    scale = own.get("l2_scale_at_start")
    if scale is not None:
        console.print(f"  L2 at the start    each weight is {g(scale)} of what Ftrl without it would set "
                      f"(1/(1 + 2*l2*lr/(beta + n0**-lr_power)), n0 the initial accumulator); it weakens as the "
                      f"squared gradients accumulate", highlight=False)
    if own["strengths"].get("l1_regularization_strength"):
        console.print("  L1                 a weight is zero while its accumulated gradient |z| stays under l1",
                      highlight=False)


def _acting_view(report: FileReport, layer: str) -> Analysis | None:
    """The group view (``Analysis.group_views``) whose settings update every
    layer ``--layer`` names, where that is not the fastest group's."""
    model, analysis = report.model, report.analysis
    if model is None or analysis is None:
        return None
    variables = [v for x in model.layers if _layer_matches(x, layer, model) for v in x.variables]
    if not variables:
        return None
    return next((view for view in analysis.group_views()[1:] if all(view.under_dynamics(v) for v in variables)), None)


def _acting_groups(report: FileReport, layer: str) -> str | None:
    """``param group 0``: the groups updating the layers ``--layer`` names,
    where the optimizer's groups differ (review 32: the headline is the
    fastest group's, not necessarily theirs)."""
    model, analysis = report.model, report.analysis
    if model is None or analysis is None:
        return None
    groups = sorted({i for x in model.layers if _layer_matches(x, layer, model)
                     for v in x.variables if (i := analysis.variable_group(v)) is not None})
    if not groups:
        return None
    return f"param group{'s' if len(groups) > 1 else ''} {', '.join(map(str, groups))}"


def _print(rows: list[dict[str, Any]], analysis: Analysis, path: Path, decay: dict[str, Any] | None,
           acting: str | None = None, asked: bool = False, own: bool = False, activity: bool = False) -> None:
    from reglint.reporters.console import make_console
    from reglint.rules.rl016_regularizer_on_frozen_layer import frozen_penalty_effect

    console = make_console()
    if decay is not None:
        _print_decay(console, decay)
    if not rows:
        if activity:  # the activity penalties follow (_print_activity)
            return
        if decay is None and not own:
            console.print(f"{markup(path)}: no regularized tensors: nothing to explain.")
        elif asked:  # --layer named layers without a regularizer of their own
            whose = f"{acting}'s decay, listed above," if acting else "the optimizer's decay above"
            console.print(f"no regularizer of its own on the layers asked for: {whose} is what acts on them",
                          highlight=False)
        return
    for row in rows:
        title = (f"[bold]{markup(row['layer'])}[/] {markup(row['class'])} · {markup(row['variable'])} "
                 f"{markup(str(row['shape']))} · {markup(row['regularizer'])}")
        if console.soft_wrap:  # piped: a rule would be as wide as the unwrapped console
            console.print(f"── {title} ──")
        else:
            console.rule(title)
        initializer = (f"initializer {markup(row['initializer'])}" if row["initializer"] else
                       "the file does not record an initializer")
        typical = (f"(|w| ~ {g(row['init_rms'])} at init)" if row["rms_from"] == "init" else
                   f"(|w| ~ {g(row['init_rms'])} in the saved weights)")
        lines = [
            f"weights in this tensor: {g(row['weights'])} (layer total {g(row['layer_params'])}); "
            f"fan_in {g(row['fan_in'])}, fan_out {g(row['fan_out'])}, {initializer}",
            "",
            "[bold]Does NOT depend on the weight count[/]",
            (f"  gradient per weight  {row['gradient_formula']}" if row["orthogonal"] else
             f"  gradient per weight  {row['gradient_formula']} ~ {g(row['gradient_per_weight'])} for a typical "
             f"weight {typical}") if row["active"] else
            f"  gradient per weight  none: the tensor is frozen, so no optimizer step moves it "
            f"({frozen_penalty_effect(analysis.model)})",
        ]
        if not row["active"]:
            pass  # no shrink either: nothing updates a frozen tensor
        elif row["shrink_per_step"]:
            horizon = f" = {g(row['timescale_epochs'], 2)} epochs" if row["timescale_epochs"] else ""
            lines.append(f"  per-step shrink      {shrink_text(row['shrink_terms'], row['shrink_per_step'])} "
                         f"-> timescale {g(row['timescale_steps'])} steps{horizon}")
            if row["momentum_limit"]:
                lines.append(limit_text(row["momentum_limit"]))
            if row["clipped"]:
                clipped = row["clipped"]
                steps = (f"for ~{g(clipped['steps'])} steps before the rate above" if clipped["steps"] is not None
                         else "and it still binds after 2,000 steps")
                lines.append(f"  clipped              {clipped['clip']} caps the step while the penalty's gradient is "
                             f"larger: {g(clipped['shrink_per_step'])} per step over the first steps, {steps} "
                             f"(RL002, RL024)")
        elif row["optimizer_family"] == "adaptive" and row["adaptive_motion"]:
            lines.append(f"  per-step shrink      under an Adam-family optimizer: {markup(row['adaptive_motion'])} "
                         f"(RL007)")
        if row["l1_step"]:
            lines.append(f"  per-step L1 pull     lr*l1/(1-momentum) = {g(row['l1_step'])} toward zero, whatever "
                         f"the weight's size")
        whole, counted = row["model_penalty_whole_ratio"], row["model_penalty_ratio"]
        lines += [
            "",
            "[bold]DOES depend on the layer's size[/]",
            _sum_sq_line(row),
            f"  penalty at init      {g(row['penalty_init'])}"
            + (f"; at the saved weights {g(row['penalty_saved'])}" if row["penalty_saved"] is not None else ""),
            f"  share of data loss   {pct(row['share_of_data_loss'])} of {g(row['data_loss_scale'])} "
            f"[dim]({markup(analysis.loss_scale.explanation)})[/]"
            + ("" if row["active"] else f" [dim](frozen: {frozen_penalty_effect(analysis.model)})[/]"),
            "",
            "[bold]So[/]",
            _growth_line(row),
            f"  the whole model's penalty is {pct(whole)} of the data loss"
            + (f"; RL001 counts {pct(counted)} of it" if whole - counted > 1e-12 * max(1.0, whole) else "") + ".",
        ]
        lines += _rule_lines(row)
        if row["scale_invariant"]:
            lines.append("  [yellow]this kernel feeds a normalization layer: its scale does not change the "
                         "function, so the penalty only changes the effective learning rate (RL009)[/]")
        if not row["active"]:
            lines.append(f"  [yellow]the layer is frozen: {frozen_penalty_effect(analysis.model)} (RL016)[/]")
        for line in lines:
            console.print(line, highlight=False)
        console.print()


def _sum_sq_line(row: dict[str, Any]) -> str:
    """The sum the penalty grows with: sum w^2 for an L2, sum |w| for an L1
    alone (review 54, 4); its expectation at init (0 for a zeros
    initializer, a width for variance-scaling kernels), else the saved
    weights'."""
    l1_only = row["l1"] and not row["l2"]
    name, init, saved = (("sum |w|", row["sum_abs_init"], None) if l1_only else
                         ("sum w^2", row["sum_sq_init"], row["sum_sq_saved"]))
    label = f"E\\[{name}] at init"
    if init == 0:
        return (f"  {label:<20} 0: initialised to {markup(row['initializer'])}, so the penalty is 0 at init "
                f"and grows only as training moves these {g(row['weights'])} weights")
    if init is not None:
        width = (": for Glorot/He/LeCun kernels this is a width, not a count (kernel size cancels)"
                 if row["fan_in"] != row["fan_out"] or len(row["shape"]) > 1 else "")
        return f"  {label:<20} {g(init)} = {g(row['weights'])} weights x {g(init / row['weights'])} each{width}"
    if saved is not None:
        return (f"  {name + ' saved':<20} {g(saved)} = {g(row['weights'])} weights x "
                f"{g(saved / row['weights'])} each (no initializer recorded: the saved weights stand in)")
    return f"  {label.replace(' at init', ''):<20} unknown: the file records neither an initializer nor the weights"


def _print_decay(console, decay: dict[str, Any]) -> None:
    """The optimizer's weight_decay: the same shrink for every weight, whatever its layer's size."""
    coupled = decay["kind"] != "decoupled"
    how = f" (coupled: wd*w added to the gradient, L2 {g(decay['coupled_l2'])})" if coupled else ""
    lr = g(decay["learning_rate"]) if decay["learning_rate"] is not None else "? (not saved; give --lr)"
    groups = decay.get("groups")
    which = "the fastest decay" if decay.get("fastest", True) else "the layers asked for"
    scope = f"param group {decay['param_group']} ({which})" if groups else "every weight"
    title = f"[bold]optimizer weight_decay {g(decay['weight_decay'])}[/]{how} at lr {lr} · {scope}"
    if console.soft_wrap:
        console.print(f"── {title} ──")
    else:
        console.rule(title)
    horizon = f" = {g(decay['timescale_epochs'], 2)} epochs" if decay["timescale_epochs"] else ""
    if decay["shrink_per_step"]:
        same = "for every weight of the group" if groups else "for every weight"
        lines = [f"  per-step shrink      {decay['formula']} = {g(decay['shrink_per_step'])} -> timescale "
                 f"{g(decay['timescale_steps'])} steps{horizon}: the same {same}, whatever the layer's size"]
        if decay.get("momentum_limit"):
            lines.append(limit_text(decay["momentum_limit"]))
    elif decay["learning_rate"] is None:
        lines = ["  per-step shrink      unknown: the file saves no learning rate; give --lr (and --optimizer)"]
    else:
        lines = [f"  per-step shrink      under an Adam-family optimizer: {markup(decay['adaptive_motion'])} (RL007)"
                 if decay.get("adaptive_motion") else
                 "  per-step shrink      under an Adam-family optimizer wd*w is normalised with the data gradient "
                 "(RL007)"]
    lines.append("  penalty              (wd/2)*sum w^2 in effect: its gradient wd*w joins the data gradient, but no "
                 "loss term is reported" if coupled else
                 "  penalty              none in the loss: decoupled decay acts on the weights directly")
    for row in groups or []:
        decays = (f"weight_decay {g(row['weight_decay'])}, {g(row['shrink_per_step'])} per step"
                  if row["shrink_per_step"] else "no static shrink" if row["weight_decay"] else "no decay")
        moves = (f", momentum {g(row['momentum'])}{' (Nesterov)' if row['nesterov'] else ''}"
                 if row["momentum"] else "")
        damped = (f" ({g(row['effective_learning_rate'])} after dampening)"
                  if row["effective_learning_rate"] is not None and row["learning_rate"] is not None
                  and abs(row["effective_learning_rate"] - row["learning_rate"]) > 1e-12 * row["learning_rate"]
                  else "")
        lines.append(f"  param group {row['index']}        lr {g(row['learning_rate'])}{damped}{moves}, {decays} "
                     f"({row['optimizer_family']})")
    lines += [f"  {f['code']} ({f['severity']}): {markup(f['message'])}" for f in decay["findings"]]
    for change in decay["rule_changes"]:
        where = f" in {markup(change['layer'])}" if change.get("layer") else ""
        lines.append(f"  {change['code']} suggests weight_decay {g(change['current'])} -> {g(change['suggested'])}"
                     f"{where} ({markup(change['aim'])})")
    for line in lines:
        console.print(line, highlight=False)
    console.print()


def _rule_lines(row: dict[str, Any]) -> list[str]:
    """What the rules say about this tensor's lambda: their fixes, else the
    largest lambda none of them warns about (rounded down: typed back, it
    must stay quiet)."""
    lines = []
    for change in row["rule_changes"]:
        what = "removing the regularizer" if change["parameter"] == "regularizer" else change["parameter"]
        to = "" if change["suggested"] is None and change["parameter"] == "regularizer" else (
            " (remove it)" if change["suggested"] is None else f" {g(change['current'])} -> {g(change['suggested'])}")
        lines.append(f"  {change['code']} suggests {what}{to} ({markup(change['aim'])})")
    if not row["rule_changes"] and row["largest_safe_lambda"] is not None:
        lines.append(f"  no rule asks to change this lambda; the largest before any rule warns is "
                     f"{g_down(row['largest_safe_lambda'])} (bound by "
                     f"{', '.join(row['largest_safe_lambda_bound_by'])})")
    if row["map_lambda"] is not None:
        lines.append(f"  with N = {g(row['samples'])} examples, the MAP view (a Gaussian prior of the init's spread "
                     f"sigma) gives lambda = 1/(2*sigma^2*N) = {g(row['map_lambda'])}, shrinking as 1/N.")
    else:
        lines.append("  with more data (N), the MAP view lambda = 1/(2*sigma^2*N) shrinks as 1/N (give --samples).")
    return lines


def _growth_line(row: dict[str, Any]) -> str:
    """The seed question answered for this tensor: what doubling the
    layer's width does to its penalty (a count, or a width under a
    variance-scaling initializer), to a typical weight's pull and to the
    per-step shrink, and so whether lambda should shrink (review 39: the
    line was fixed text, 'roughly doubles', where Glorot gives 1.2x)."""
    grow = row["width_doubling"]
    if row.get("orthogonal"):
        return ("  an OrthogonalRegularizer's penalty is a mean over pairs of normalized rows or columns, not a sum "
                "over weights: it does not grow with the weight count, and it turns directions apart rather than "
                "shrinking weights, so there is no per-step shrink to keep. Lambda need not shrink as the layer "
                "grows.")
    if grow is None and str(row["initializer"] or "").split("(")[0].lower() == "zeros":
        return (f"  this tensor starts at 0 ({markup(row['initializer'])}): its penalty at init is 0 at any width, "
                f"and grows only as training moves the weights.")
    if grow is None and not (row["l1"] or row["l2"]):
        return "  this regularizer's factors are 0: its penalty is 0 at any width (RL005)."
    if grow is None:
        return "  how this penalty grows with the layer's width is not known here " + _why_no_growth(row) + "."
    penalty, pull = grow
    measure = "sum |w|" if row["l1"] and not row["l2"] else "sum w^2"
    kind = "a count" if abs(penalty - 2.0) < 1e-9 else "a width, not a count"
    shrink = (f"the per-step shrink {g(row['shrink_per_step'])} does not change" if row["shrink_per_step"]
              else "under an Adam-family optimizer the drift is about lr per step whatever lambda is")
    return (f"  doubling this layer's width multiplies its penalty at init by {g(penalty, 2)} ({measure} is {kind} "
            f"under {markup(row['initializer'])}) and a typical weight's pull {row['gradient_formula']} by "
            f"{g(pull, 2)}; {shrink}. So lambda need not shrink as the layer grows: what it does to each weight does "
            f"not grow; "
            f"only to hold the penalty's share of the loss would it shrink, by 1/{g(penalty, 2)} per doubling.")
