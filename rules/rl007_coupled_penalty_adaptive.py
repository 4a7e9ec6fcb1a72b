"""# coupled-penalty-adaptive-optimizer (RL007)

## What it does
Flags L1/L2 regularizers on weights trained by an Adam-family optimizer
(Adam, Nadam, Adamax, RMSprop, Adagrad, Adadelta, Lion...), where the
penalty's gradient passes through the optimizer's per-weight
normalisation. One finding per model, with the layers listed. Reports the critical data-gradient size
``g* = 2*l2*sigma_init + l1`` below which the penalty takes over a weight.
The optimizer's own coupled decay is the same penalty and is flagged the
same way: PyTorch ``Adam(weight_decay=wd)`` (and RMSprop, Adagrad...) adds
``wd*w`` to the gradient, Keras' ``L2(wd/2)``; ``sigma`` is then the saved
weights' RMS where no initializer is recorded.

## Why is this bad?
Adam divides every gradient by the running RMS of that weight's gradient.
A weight whose data gradient is small relative to the penalty gradient
moves toward zero by about ``eta`` per step *whatever lambda is*: L1(1e-6)
took a weight from 0.05 to 0.0008 in 100 steps at lr 1e-3 (a run with
Keras 3.15). Weights with large gradients are regularized less (Loshchilov &
Hutter 2019). So "weak" lambdas are not weak, and strong ones are no stronger:
lambda stops meaning what it means under SGD.

## Example
``Adam(1e-3)`` with ``kernel_regularizer=L2(1e-3)`` on every Dense layer.

## Use instead
Decoupled decay: ``AdamW(weight_decay=...)`` (or Keras 3's
``weight_decay=`` on any optimizer) and no kernel regularizer. A starting
point of equal strength for the weights the data supports is
``weight_decay ~ 2*l2/s`` with ``s`` the data-gradient RMS; ``reglint
profile`` measures ``s``.

## Fix
Aim: decoupled decay instead of a normalised penalty. Without a
``weight_decay`` the fix removes the kernel regularizers and sets one of
``2*l2/s`` (``s`` = the data-gradient RMS ``reglint profile`` measures;
statically ``2*l2`` over the init RMS as a starting point); with one
already set (AdamW, Keras 3's ``weight_decay=``) it only removes the
regularizers: the optimizer decays already. Where the equal strength is
more decay than RL003 leaves quiet at the learning rate
(``WeightDecayTooStrong.quiet_weight_decay``), the fix sets the most RL003
leaves quiet instead: on ``fixtures/layer_sweep/k3_adam_strong_l2.keras`` (L2 0.3
under Adam 1e-3) the equal strength measured 67.7, which as ``AdamW`` left
the model at chance (held-out accuracy 0.32, loss ln 3) where the capped 5
reached 0.89 (unregularized 0.84; 40 epochs of 200 examples, review 38, 10).
That level is a per-step shrink, not a promise for the whole run: over a
short training it can still decay unsupported weights far (review 67, 2:
1.67 at lr 0.003 over 300 steps, ``exp(-1.5)``, left a U-Net at chance),
which the remedy then says, and RL023's trial measures.

## Options
- ``drift-pull-error`` (default 0.4): the pull per unit of weight ``g*/sigma = 2*l2 + l1/sigma``
  at which two layers in series, with no normalization between them or after them, make RL007 an
  error; twice it where every output's loss is mean squared error on a linear output, whose gradient
  ``2*(p - y)`` is twice cross-entropy's (``estimate.loss_scale.data_gradient_scale``,
  ``bench/regression_probe.py``). Behind a sigmoid or softmax, where RL001's gate falls, this one stays
  (``bench/bounded_mse_probe.py``: RL001 errs on those collapses; review 55: lowered, it erred on a
  64-1 breast-cancer sigmoid-MSE classifier at L2 0.1 that lost 4-7% of its margin).

## Formula
Adam step ``~ eta * m/(sqrt(v)+eps)``; penalty drift ``eta*2*l2*w/s`` when the
data-gradient RMS ``s >> 2*l2*|w|``, ``~eta*sign(w)`` when ``s << g*``;
under RMSprop's heavy-ball momentum ``m`` the steps add up to
``eta/(1-m)*sign(w)`` (``Dynamics.drift_step``; Keras' RMSprop at lr 1e-3,
momentum 0.9 moved such a weight 1.01e-2 per step). Where the penalty's
gradient is below the denominator's floor, the step ``lr*g/floor`` is not
normalised: the penalty is then a plain L2 at ``lr/floor`` and the finding
says its per-step shrink. The floor is ``eps`` where it is added after the
square root (Adam; torch's RMSprop: timm's RMSpropTF recipe, eps 1e-3,
0.0016 per step on fixtures/torch_optimizers/rmsprop_tf_eps.pt, as torch
measured), ``sqrt(epsilon)`` where Keras adds it under the root (RMSprop:
6.3e-5 on fixtures/keras_optimizers/floor_rmsprop.keras, as Keras), with
Adagrad's ``initial_accumulator_value`` (Keras' 0.1) under it too (3.16e-4
on floor_adagrad.keras, as Keras). Keras' Adam adds ``eps`` before its bias
correction: there the floor is ``eps/sqrt(1-beta_2^t)`` and the plain rate
comes after about ``1/(1-beta_2)`` steps, which the finding says with the
shares of it reached over the first 100 and 1,000 steps (floor_adam.keras).
Adagrad adds the squared gradients up instead of averaging them: its steps
shrink as ``eta/sqrt(t)``, a weight moves ``2*eta*sqrt(T)`` in ``T`` steps
(``Dynamics.steps_to_drift``; torch moved one 0.93 in 100 steps at lr 0.05).
Per penalized kernel or embedding RL001 counts (not scale-invariant, not
behind a normalization on every path to the outputs): the pull per unit of
weight ``k = g*/sigma = 2*l2 + l1/sigma``, ``sigma`` the RMS its
initializer draws. Why per unit of weight and not ``g*`` itself: a layer's
data gradient per weight scales with its weights' size (both go as
``1/sqrt(width)`` at initialisation), so ``g*`` over the data gradient is
about ``k`` times a factor of the data, whatever the width; at a fixed
lambda, MLPs 32 to 512 wide collapsed or stayed healthy together
(bench/CALIBRATION.md, "Width at a fixed lambda"). The chain: the most
layers with ``k`` at the error level that one forward path passes without
crossing a normalization (``Analysis.unnormalized_chain``). At about
``eta`` per step (``eta/(1-m)`` under RMSprop momentum) such a weight
reaches zero in ``sigma/eta`` steps; when the training's length is known (``--epochs`` with ``--samples``, or
``--steps``) and is shorter than that, the weights have not reached zero
and the finding stays a warning.

## Thresholds and calibration
A warning wherever an adaptive optimizer meets a coupled penalty: on the
calibration grids (bench/CALIBRATION.md) such runs were more often
degraded than wrecked. The error is calibrated on the runs whose counted
kernels form a chain without normalization (MLPs, the small CNN, the
Embedding model, LSTM and GRU under Adam, RMSprop and AdamW; ``python
bench/calibrate.py report``), by the chain's ``k`` (its smallest layer's):
below 0.1, 85 of 93 runs healthy; at 0.2 (L2 0.1) the outcome depends on
the data (6 healthy, 15 degraded, 9 collapsed: healthy on breast cancer
and wine, collapsed on the 20-class set and the Embedding models, whose small
table makes them RL025's error); from
0.6 (L2 0.3 and up, L1 0.1 and up) 65 of 67 runs on the classic grid and
three seeds of the modern one collapsed and two degraded (the small CNN on
digits, a GRU with one seed), while the diabetes regression's 160-step
runs degraded at every lambda: 160 steps are shorter than ``sigma/eta`` =
246 (hence the length condition; every other run trained 480 steps or
more). Error at **0.4**, between the two; it is one grid step (L2 0.1 to
0.3) wide. The pull has no term for the optimizer's decoupled
``weight_decay``: review 9's GRU on the 20-class set with L2 0.1 and AdamW
``weight_decay`` 1 ended at chance, but retrained with ``weight_decay`` 0,
0.1 and 1 it ended at 0.072, 0.062 and 0.050 accuracy (chance 0.05,
unpenalized 0.578), and on digits at 0.32, 0.31 and 0.30 (unpenalized 0.93)
(``python bench/stacked_decay_check.py``): the L2 at ``k`` = 0.2 on hard
data did it, and ``lr*wd`` of at most 1e-3 per step added nothing
(RL003 judges the decay alone). An earlier version judged ``g*`` itself (error 0.035): the same
runs on the grids, but a false alarm on a 32-wide MLP at L2 0.1 on breast
cancer (``g*`` 0.036, healthy) in the width check. Checked, not fitted,
on the PyTorch runs (bench/TORCH_CALIBRATION.md): Adam with its coupled
``weight_decay`` (``l2 = wd/2``) on a 64-32 MLP collapsed all 15 runs from
wd 1 (``k`` = 1) and gave 2 collapses and 1 healthy run at wd 0.3 (``k``
0.3). A PyTorch state dict records no graph, so the chain (and this
error) is judged only on files that do (Keras, ONNX). Kernels
behind a normalization (residual CNNs, transformers, a classifier after
BatchNorm) are not judged: a single penalized layer only scales the logits.

## References
- Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
- Bjorck, Weinberger & Gomes, "Understanding Decoupled and Early Weight Decay", AAAI 2021.
"""

from __future__ import annotations

import math

from reglint.engine.finding import Change, Fix, Severity
from reglint.engine.fmt import amount, decayed_to, g, lam_list, plural
from reglint.engine.measured import static_finding
from reglint.engine.rule import Option, Rule
from reglint.estimate.init_scale import init_rms


class CoupledPenaltyAdaptive(Rule):
    code = "RL007"
    name = "coupled-penalty-adaptive-optimizer"
    severity = Severity.WARNING
    summary = "L1/L2 regularizers under an Adam-family optimizer are normalised away: lambda loses its meaning."
    predicts_outcome = True
    options = {
        "drift-pull-error": Option(0.4, "the penalty's pull per unit of weight, g*/sigma_init = 2*l2 + l1/sigma_init, "
                                        "at which two layers in series without a normalization make RL007 an error"),
    }

    def fix(self, hits, current_wd: float | None, suggested_wd: float | None) -> Fix:
        drops = tuple(Change("regularizer", p.l2 or p.l1, None, layer=p.layer.path, target=p.variable.name)
                      for p in hits)
        if current_wd:
            return Fix("decoupled decay only: the optimizer's weight_decay already decays these weights", drops)
        add = (Change("weight_decay", current_wd or 0.0, suggested_wd, target="optimizer"),) if suggested_wd else ()
        return Fix("decoupled decay instead of a normalised penalty", drops + add)

    def check(self, model, analysis):
        for view in analysis.group_views():  # each param group's own coupled decay (review 33, D8)
            if view.dynamics.family == "adaptive":
                yield from self._optimizer_coupled(model, view)
        # by the optimizer updating each kernel: a MultiOptimizer's SGD
        # group is not normalised, its Adam group is whatever the lead is
        hits = [p for p in analysis.penalties if p.active and (p.l1 or p.l2) and p.variable.role.is_kernel_like
                and analysis.optimizer_family(p.variable) == "adaptive"]
        # one finding per sub-optimizer: an Adam group and an AdamW group
        # differ in whether decay is already there to replace the penalty
        groups = analysis.optimizer_groups([p.variable for p in hits])
        for group_dyn, variables in groups:
            members = {id(v) for v in variables}
            yield self._normalised_away(model, analysis, group_dyn, [p for p in hits if id(p.variable) in members],
                                        one_of_several=len(groups) > 1)

    def _normalised_away(self, model, analysis, dyn, hits, one_of_several: bool = False):
        """The finding for the kernels one (sub-)optimizer updates; named
        by its first layer where several groups each get one, so that each
        keeps its own fingerprint (baselines)."""
        gstars = []
        for p in hits:
            sigma = init_rms(p.variable) or 0.0
            gstars.append(2 * p.l2 * sigma + p.l1)
        layers = sorted({p.layer.path for p in hits})
        regs = lam_list(p.regularizer for p in hits)
        opt = _optimizer_name(model, hits)
        if dyn.weight_decay:
            remedy = (f"drop the kernel regularizers: {opt} already applies decoupled weight_decay "
                      f"{g(dyn.weight_decay)}")
        else:
            base = opt.removesuffix(" (in MultiOptimizer)")
            suggestion = "AdamW" if base in ("Adam", "Nadam", "Adamax") else f"{base}(weight_decay=...)"
            remedy = f"use decoupled decay ({suggestion}) and drop the kernel regularizers"
        shown = ", ".join(layers[:3]) + ("..." if len(layers) > 3 else "")
        chain, drift_steps = self.drifting_chain(analysis, dyn)
        collapse = ""
        if chain:
            level = g(self.thresholds["drift-pull-error"] * max(1.0, analysis.data_gradient_scale))
            collapse = (f"; {len(chain)} layers in series with no normalization ({', '.join(chain[:4])}"
                        f"{'...' if len(chain) > 4 else ''}) each pull with 2*l2 + l1/sigma >= {level}"
                        f", above the data gradient of nearly every weight: they drift to zero within about "
                        f"{g(drift_steps, 2)} steps and the chain's output with them")
        l2, l1 = max(p.l2 for p in hits), max(p.l1 for p in hits)
        group = model.optimizer.group_of(hits[0].variable.location) if model.optimizer is not None else None
        below = _under_eps(_gradient_floor(model, dyn, group), max(gstars), dyn, l2, l1)  # then no drift, no collapse
        tail = below or penalty_motion(model, dyn, max(gstars), l2, l1, "lambda", group) + collapse
        return self.finding(
            f"{plural(len(hits), 'kernel')} in {plural(len(layers), 'layer')} ({shown}) "
            f"{'carries' if len(hits) == 1 else 'carry'} {regs} under {opt}: {tail}",
            target="kernel_regularizer", remedy=remedy, fix=self.fix(hits, dyn.weight_decay, None),
            layer=layers[0] if one_of_several else None, severity=Severity.ERROR if chain else None,
            values={"critical_gradient": max(gstars), "layers": layers, "learning_rate": dyn.lr,
                    "drift_per_step": dyn.drift_step,
                    "optimizer": opt, "drifting_chain": chain or None, "drift_steps": drift_steps})

    def drifting_chain(self, analysis, dyn=None) -> tuple[list[str], float | None]:
        """(the layers in series, no normalization between them or after,
        whose counted kernels or embeddings pull at the error level;
        steps ``sigma/drift_step`` to drift from their init scale to zero). Empty
        when fewer than two, or when the training's known length is shorter
        than that drift: the weights have not reached zero. Of the tensors
        ``dyn`` updates (a MultiOptimizer group's), else the lead's."""
        # never under the cross-entropy level: lowered behind a sigmoid (RL001's gate), it erred on a
        # 64-1 breast-cancer classifier that trained (review 55), and RL001 carries the collapses there
        level = self.thresholds["drift-pull-error"] * max(1.0, analysis.data_gradient_scale)
        sigma_of: dict[str, float] = {}
        penalties = analysis.chain_penalties() if dyn is None or dyn is analysis.dynamics else \
            analysis.chain_penalties(updated_by=dyn)
        dyn = dyn or analysis.dynamics
        for p in penalties:
            pull, sigma = p.pull, init_rms(p.variable)
            if pull is not None and sigma and pull >= level:
                sigma_of[p.layer.path] = max(sigma, sigma_of.get(p.layer.path, 0.0))
        chain = analysis.unnormalized_chain(set(sigma_of)) if dyn.lr else []
        if len(chain) < 2:
            return [], None
        drift = dyn.steps_to_drift(max(sigma_of[path] for path in chain))
        total = analysis.context.total_steps()
        if total is not None and total < drift:
            return [], drift
        return chain, drift

    def _optimizer_coupled(self, model, view):
        """The optimizer's own weight_decay folded into the gradient (PyTorch
        Adam), for the tensors of one param group's settings (``view``)."""
        dyn = view.dynamics
        if not dyn.coupled_l2:
            return
        opt = model.optimizer
        kernels, gstar = coupled_decay_reach(model, dyn, view)
        group = opt.group_at(view.optimizer_group)
        tail = penalty_motion(model, dyn, gstar, dyn.coupled_l2, 0.0, "weight_decay", group)
        yield self.finding(
            f"{opt.class_name}'s weight_decay {g(2 * dyn.coupled_l2)}{view.group_text()} is an L2 penalty added to "
            f"the gradient (L2 {g(dyn.coupled_l2)}), which {opt.class_name} divides by each weight's gradient RMS: "
            f"{tail}",
            target=view.group_target(),
            remedy="use decoupled decay: torch.optim.AdamW (or decoupled_weight_decay=True where the optimizer "
                   "has it) with the weight_decay you meant",
            values={"critical_gradient": gstar or None, "coupled_l2": dyn.coupled_l2, "learning_rate": dyn.lr,
                    "optimizer": opt.class_name, "kernels": len(kernels)})

    def check_measured(self, result, report):
        """Under an Adam-family optimizer the measured data-gradient RMS per
        weight ``s`` gives the decoupled weight decay of equal strength,
        ``wd ~ 2*l2/s`` (Loshchilov & Hutter's equivalence)."""
        found = static_finding(report, self.code)
        opt = result.optimizer
        if found is None or not opt or opt.get("family") != "adaptive":
            return
        rms, equivalent = {}, {}
        for row in result.variables:
            l2 = (row.regularizer or {}).get("l2") or 0.0
            if not l2 or not row.params:
                continue
            s = row.grad_data_norm / math.sqrt(row.params)
            rms[row.path] = s
            if s > 0:
                equivalent[row.path] = 2.0 * l2 / s
        if not rms:
            return
        typical = sorted(equivalent.values())[len(equivalent) // 2] if equivalent else None
        lr = opt.get("learning_rate") or 0.0
        shrink = lr * typical if typical else None
        remedy, fix = None, None
        from reglint.rules.rl003_weight_decay_too_strong import WeightDecayTooStrong

        # the equal strength is where to start, unless RL003 would judge that
        # decay too strong itself (review 38, 10: a suggestion that collapsed
        # the training): then RL003's own safe weight_decay
        quiet = WeightDecayTooStrong(self.user_thresholds).quiet_weight_decay(
            report.model, report.analysis, lr) if report.analysis is not None and report.model is not None else None
        suggested = min(typical, quiet) if typical and quiet else typical
        if suggested:
            capped = suggested < typical
            # review 67, 2: RL003's level collapsed a U-Net trained 300 steps (D = 1.5): say what it leaves over
            # the training's length where the user gave it (review 68, 4: not profile's own trial length)
            steps = report.analysis.context.total_steps() if report.analysis is not None else None
            left = lr * suggested * steps if steps else 0.0
            after = (f"; over the {amount(steps, 'step')} of the training it still leaves D = {g(left, 2)}: an "
                     f"unsupported weight ends at {decayed_to(left)} of itself") if steps and left >= 1 else ""
            remedy = (f"use weight_decay ~ {g(suggested)} in the optimizer and no kernel regularizer"
                      + (f" (the equal strength {g(typical)}, a per-step shrink lr*wd of {g(shrink)}, is more decay "
                         f"than RL003 leaves quiet at lr {g(lr)}, whose largest quiet weight_decay is "
                         f"{g(suggested)}{after})" if capped else ""))
            hits = [p for p in report.analysis.penalties if p.active and (p.l1 or p.l2)
                    and p.variable.role.is_kernel_like] if report.analysis is not None else []
            fix = self.fix(hits, opt.get("weight_decay"), suggested)
        yield self.finding(
            f"measured data-gradient RMS per weight {_span(rms.values())} under "
            f"{opt.get('class')}: the coupled L2 acts like a decoupled weight_decay of about 2*l2/s = {g(typical)} "
            f"where the data holds the weights up, and moves the others by about lr per step: confirmed",
            severity=found.severity, target="kernel", remedy=remedy, fix=fix, measured=True,
            values={"grad_rms": rms, "equivalent_weight_decay": equivalent, "typical_weight_decay": typical,
                    "typical_shrink_per_step": shrink, "suggested_weight_decay": suggested})


def _span(values) -> str:
    """'0.1 to 0.3', or one number when they agree at the shown precision."""
    low, high = g(min(values)), g(max(values))
    return low if low == high else f"{low} to {high}"


def _optimizer_name(model, hits) -> str:
    """The optimizer as the message names it: the sub-optimizer's class
    (``AdamW (in MultiOptimizer)``) where the hits' group is not the lead."""
    opt = model.optimizer
    if opt is None:
        return "adaptive optimizer"
    if opt.class_name == "MultiOptimizer":
        classes = {str(g.hyperparameters.get("class_name")) for p in hits
                   if (g := opt.group_of(p.variable.location)) is not None}
        if len(classes) == 1:
            return f"{classes.pop()} (in MultiOptimizer)"
    return opt.display_name


def _drifts(dyn, setting: str) -> str:
    """``drifts to zero at about lr 0.001 per step whatever lambda is``:
    ``lr/(1-momentum)`` where RMSprop's heavy-ball momentum adds the
    normalised steps up; Adagrad's shrink as its accumulator grows."""
    step = dyn.drift_step
    if dyn.accumulating:
        return (f"drifts to zero whatever {setting} is: lr {g(dyn.lr)} at its first step, lr/sqrt(t) at step t as "
                f"Adagrad's accumulator grows")
    if step is None or step == dyn.lr:
        pace = f"lr {g(dyn.lr)}"
    else:
        pace = f"{g(step)} (lr/(1-momentum) at momentum {g(dyn.momentum)})"
    return f"drifts to zero at about {pace} per step whatever {setting} is"


# (value, where it comes from, (Keras Adam's beta_2, steps taken) or None)
Floor = tuple[float, str, tuple[float, int] | None]


def _gradient_floor(model, dyn, group=None) -> Floor | None:
    """The denominator a gradient much smaller than it is divided by, and
    where it comes from: the optimizer's ``eps`` where it is added after the
    square root (Adam; torch's RMSprop); ``sqrt(epsilon)`` where Keras adds
    it inside (RMSprop, Adagrad: ``lr*g/sqrt(v + epsilon)``, review 32);
    with Adagrad's ``initial_accumulator_value`` (Keras' default 0.1) inside
    too. The third item is Keras' Adam's ``beta_2`` and the steps the file
    has taken, where that floor is reached only after the warm-up
    (``_adam_warmup``), else None. None where
    no ``eps`` is known. ``dyn``: the dynamics updating the weights, whose
    ``eps`` is their param group's (``Analysis``' group dynamics read it);
    ``group``: that param group (a MultiOptimizer's sub-optimizer), whose
    class and settings decide."""
    opt = model.optimizer
    if opt is None:
        return None
    cls, config = _floor_settings(opt, group)
    eps = dyn.eps or 0.0
    if cls == "Adadelta":
        # lr*g*sqrt(E[dx^2] + eps)/sqrt(E[g^2] + eps): both accumulators start at
        # 0, so a small gradient is stepped at lr*g, a plain L2 at lr (review 33)
        return 1.0, "Adadelta's sqrt(E[dx^2] + eps)/sqrt(E[g^2] + eps) is 1 while both hold only eps", None
    if not eps:
        return None
    start = _positive(config.get("initial_accumulator_value")) if cls == "Adagrad" else 0.0
    if model.framework in ("keras", "tf.keras") and cls in ("RMSprop", "Adagrad"):
        inside = f"sqrt(epsilon{' + initial_accumulator_value' if start else ''})"
        return math.sqrt(eps + start), f"{inside}, as Keras' {cls} adds them under the square root", None
    if start:
        return math.sqrt(start) + eps, "sqrt(initial_accumulator_value) + eps", None
    beta_2 = config.get("beta_2", 0.999)
    keras_adam = model.framework in ("keras", "tf.keras") and cls in ("Adam", "AdamW")
    usable = isinstance(beta_2, (int, float)) and not isinstance(beta_2, bool) and 0 < beta_2 < 1
    taken = opt.iterations if isinstance(opt.iterations, int) and opt.iterations > 0 else 0
    return eps, "the optimizer's eps", (float(beta_2), taken) if keras_adam and usable else None


def _floor_settings(opt, group) -> tuple[str, dict]:
    """(class, settings) of the optimizer stepping ``group``'s weights: a
    MultiOptimizer's sub-optimizer has its own class and config (its
    top-level fields hold the lead's)."""
    hp = group.hyperparameters if group is not None else {}
    if opt.class_name == "MultiOptimizer" and hp.get("class_name"):
        return str(hp["class_name"]), hp
    return opt.class_name, opt.config or {}


def _positive(value) -> float:
    """A saved setting as a positive number, else 0."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    return float(value) if ok else 0.0


def _adam_warmup(beta_2: float, taken: int = 0) -> str:
    """Keras' Adam steps ``lr*sqrt(1-beta_2^t)/(1-beta_1^t) * m/(sqrt(v) + eps)``:
    eps is added before the bias correction (torch's Adam adds it after), so
    on a gradient under it the step is ``lr*g*sqrt(1-beta_2^t)/eps``, which
    reaches ``lr*g/eps`` only as ``beta_2^t`` fades (review 33, D9: on
    fixtures/keras_optimizers/floor_adam.keras Keras' own Adam shrank a
    kernel at 0.21 of its later rate over the first 100 steps, 0.58 over
    1,000, the shares this computes). A file that has taken ``taken`` steps
    resumes from there (review 36, D8): the shares are those of its next
    steps, and nothing is said once they are within 5% of the rate."""
    def share(steps: int) -> float:
        return sum(math.sqrt(1.0 - beta_2 ** t) for t in range(taken + 1, taken + steps + 1)) / steps

    if share(100) >= 0.95:
        return ""
    where = "the first" if not taken else f"the next (from step {taken:,}):"
    return (f"; Keras' Adam adds eps before its bias correction, so that rate comes only as sqrt(1 - beta_2^t) "
            f"grows (beta_2 {g(beta_2)}, about {g(1.0 / (1.0 - beta_2), 2)} steps): on average "
            f"{g(share(100), 2)} of it over {where} 100 steps, {g(share(1000), 2)} over 1,000")


def _under_eps(floor: Floor | None, gstar: float, dyn, l2: float, l1: float = 0.0) -> str | None:
    """Where the penalty's gradient is below the denominator's floor
    (``_gradient_floor``), the step is ``lr*g/floor``: a plain L2 at
    ``lr/floor`` (a relative shrink), a plain L1 pull of ``lr*l1/floor``
    (a distance), not the normalised drift (timm's RMSpropTF recipe, eps
    1e-3: torch shrank such a weight 0.16% per step, where 'about lr per
    step' would have said 16%; review 31). None where the floor does not
    bind."""
    if floor is None or not gstar or gstar >= floor[0] or not dyn.drift_step or not (l2 or l1):
        return None
    value, why, warmup = floor
    effect = []
    if l2:
        effect.append(f"shrinking a weight the data does not hold by about {g(dyn.drift_step * 2.0 * l2 / value)} "
                      f"per step")
    if l1:
        effect.append(f"pulling it {g(dyn.drift_step * l1 / value)} toward zero per step")
    rate = "lr" if value == 1.0 else f"lr/{g(value)}"
    return (f"the penalty's gradient (~{g(gstar)} on a typical weight) is below {g(value)} ({why}), where the "
            f"step is {rate.replace('lr', 'lr*g', 1)}, not normalised: the penalty acts as a plain "
            f"{'L2' if l2 else 'L1'} at {rate}, {' and '.join(effect)}{_adam_warmup(*warmup) if warmup else ''}")


def penalty_motion(model, dyn, gstar: float, l2: float, l1: float, setting: str, group=None) -> str:
    """How a coupled penalty moves a weight the data does not hold under an
    adaptive optimizer, as RL007 says it (explain prints the same words):
    the plain L1/L2 below the optimizer's floor (``group``'s, where a param
    group updates the weights), else the normalised drift."""
    below = _under_eps(_gradient_floor(model, dyn, group), gstar, dyn, l2, l1)
    if below is not None:
        return below
    weight = f"a weight whose data gradient is below ~{g(gstar)} " if gstar else "a weight with little data gradient "
    return weight + _drifts(dyn, setting)


def coupled_decay_reach(model, dyn, view=None) -> tuple[list, float]:
    """The kernels an optimizer's coupled weight_decay reaches (those of one
    param group's settings, with ``view``) and its critical gradient
    ``2*l2*sigma`` on the largest of them (``sigma`` the initializer's RMS,
    else the saved weights')."""
    opt = model.optimizer
    kernels = [v for layer, v in model.variables() if layer.trainable and v.trainable and v.role.is_kernel_like
               and opt.decays(v.location) is not False and (view is None or view.under_dynamics(v))]
    sigmas = [init_rms(v) or (v.stats.rms if v.stats and not v.stats.nonfinite else 0.0) for v in kernels]
    return kernels, 2 * dyn.coupled_l2 * max(sigmas, default=0.0)
