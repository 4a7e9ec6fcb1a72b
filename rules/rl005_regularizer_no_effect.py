"""# regularizer-no-effect (RL005)

## What it does
Flags regularizers that do nothing: one Keras never applies (an
``activity_regularizer`` on the layer inside Keras 3's
``TimeDistributed``, which calls the inner layer's ``call()`` directly),
and penalties and weight decay too weak to change training: a coupled
L1/L2 penalty whose value at initialisation is a negligible share of the
data loss *and* (under SGD, when the training length is known) whose
integrated shrink over the whole run is negligible; and an optimizer
``weight_decay`` whose integrated decay over the run is negligible:
``D = eta*wd*T`` decoupled (Keras, AdamW), ``D = eta*wd*T/(1-m)`` for
``torch.optim.SGD``'s coupled one under momentum ``m``.

## Why is this bad?
A regularizer that does nothing is a hyper-parameter someone believes is
working. Keras configs make this easy: ``L1L2()`` defaults to 0 and 0, the
Keras 3 string ``"l1l2"`` resolves to that no-op, and ``AdamW()``'s
default (lr 1e-3, wd 0.004) decays an unsupported weight by 4e-6 per step,
about 4% over 10,000 steps.

A regularizer Keras never applies is worse: nothing in the training log
shows it missing.

Under Adam-family optimizers a coupled penalty is *not* weak however small
lambda is (the gradient is normalised; RL007), so this rule leaves those
alone.

## Example
``kernel_regularizer=L2(1e-10)`` on a 64-32-10 MLP: penalty 1e-8 against
a data loss of 2.3.

``TimeDistributed(Dense(64, activity_regularizer=L1(1e-5)))`` in Keras 3:
no activity loss is ever added.

## Use instead
For the inactive one: put an ``ActivityRegularization`` layer after the
``TimeDistributed`` (or set the wrapper's own ``activity_regularizer``).
For the weak ones: remove it, or raise it into the range that matters: the report's
``lambda_ref`` (the L2 factor whose penalty at initialisation equals the
data loss) sets the scale; useful values are usually 1e-3..1e-1 of it.

## Fix
Aim: no regularizer that cannot change training: the fix removes a
zero-factor or negligible penalty; for a weight decay too weak over the
run, ``weight_decay = 1/(eta*T)`` (integrated decay D = 1 over T steps).

## Options
- ``no-effect-share`` (default 1e-4): penalty / data-loss scale below which a penalty is negligible.
- ``no-effect-decay`` (default 0.01): integrated decay ``D`` below which decay is negligible.

## Formula
Share ``P_init / L_chance`` per tensor (not for a scale-invariant kernel,
one feeding a normalization: its penalty sets the effective learning rate
whatever its share, RL009, so only ``D`` over a known run judges it); ``D = r*T`` with ``r = 2*eta*l2/(1-b)``
(coupled SGD) or ``eta*wd`` (decoupled), ``T`` the total steps. Where an
optimizer's param groups differ (PyTorch param groups, a Keras
``MultiOptimizer``), each group is judged with its own learning rate,
momentum and decay, and a weak decay is named by its group
(``optimizer.param_groups[1].weight_decay``).

## Thresholds and calibration
A share of 1e-4 is four orders of magnitude below the data loss, and
``D = 0.01`` moves an unsupported weight by 1% over the whole run; the
calibration grid (bench/CALIBRATION.md) checks that runs below both are
indistinguishable from lambda = 0.

## References
- Wang & Aitchison, ICML 2025 (timescale between one epoch and the run).
- Keras ``keras/src/regularizers/__init__.py`` (string identifiers).
- Keras ``keras/src/layers/rnn/time_distributed.py`` (``self.layer.call``);
  checked on fixtures/exactness/td_activity.keras (no activity loss).
"""

from __future__ import annotations

from reglint.engine.finding import Change, Fix, Severity
from reglint.engine.fmt import g, pct
from reglint.engine.rule import Option, Rule
from reglint.model import ProblemKind


class RegularizerNoEffect(Rule):
    code = "RL005"
    name = "regularizer-no-effect"
    severity = Severity.WARNING
    summary = "A penalty or weight decay too weak to change training."
    per_optimizer_group = True  # each param group's decay and shrink at its own learning rate
    options = {
        "no-effect-share": Option(1e-4, "penalty / data-loss scale below which a penalty does nothing"),
        "no-effect-decay": Option(0.01, "integrated decay over the run below which decay does nothing"),
    }

    def check(self, model, analysis):
        if analysis.is_lead_view:  # what the optimizer does not change: once per model
            yield from self._inactive(model)
            yield from self._zero_regularizers(model)
        yield from self._weak_penalties(analysis)
        yield from self._weak_decay(model, analysis)

    def _inactive(self, model):
        for problem in model.problems_of(ProblemKind.INACTIVE_REGULARIZER):
            yield self.finding(problem.message, layer=problem.layer or None, target=problem.target,
                               remedy="add an ActivityRegularization layer after the wrapper, or set the "
                                      "wrapper's own activity_regularizer")

    def _zero_regularizers(self, model):
        for layer, var in model.variables():
            reg = var.regularizer
            if reg is not None and reg.kind in ("l1", "l2", "l1l2") and not reg.is_effective and not reg.invalid:
                # review 54: an L2(0.0) was told "with l1 = l2 = 0" and pointed at the 'l1l2' string
                both = reg.kind == "l1l2"
                said = f"{reg.class_name or 'L1L2'} with l1 = l2 = 0" if both else f"{reg.kind.upper()}(0)"
                yield self.finding(
                    f"{var.name}: {said} adds nothing",
                    layer=layer.path, target=var.name,
                    remedy="remove it, or set the factor you meant" + (
                        " (the Keras 3 string 'l1l2' is L1L2(0, 0))" if both else ""),
                    fix=Fix("no regularizer that adds nothing",
                            (Change("regularizer", 0.0, None, layer=layer.path, target=var.name),)),
                    values={"lambda": 0.0})

    def _weak_penalties(self, analysis):
        dyn = analysis.dynamics
        if dyn.family == "adaptive":
            return
        steps = analysis.context.total_steps()
        scale = analysis.loss_scale.value
        for p in analysis.lead_penalties:  # those this pass's param group updates
            if not p.active or p.penalty_init is None or not (p.l1 or p.l2):
                continue
            if p.l1 < 0 or p.l2 < 0 or p.regularizer.invalid:
                continue  # an invalid factor is RL012's, not a weak one
            if not p.sum_sq_init:
                continue  # zero-initialised (biases, beta): the init penalty says nothing
            share = p.penalty_init / scale
            if share >= self.thresholds["no-effect-share"] and not p.scale_invariant:
                continue
            shrink = dyn.coupled_shrink(p.l2) if p.l2 else None
            decay = shrink * steps if shrink is not None and steps else None
            if decay is not None and decay >= self.thresholds["no-effect-decay"]:
                continue
            if p.scale_invariant and decay is None:
                continue  # its share says nothing (review 34, D4); its reach needs the run's length
            detail = (f"; over {g(steps)} steps it shrinks an unsupported weight by {pct(decay)}"
                      if decay is not None else "")
            head = (f"penalty {g(p.penalty_init)} at init is {pct(share)} of the data-loss scale {g(scale)}"
                    if not p.scale_invariant else
                    "the kernel feeds a normalization, so its penalty's share of the loss says nothing (RL009)")
            yield self.finding(
                f"{p.variable.name}: {head}{detail}",
                layer=p.layer.path, target=p.variable.name,
                remedy="remove it or raise lambda (the summary's lambda_ref sets the scale)",
                fix=Fix("no penalty that cannot change training",
                        (Change("regularizer", p.l2 or p.l1, None, layer=p.layer.path, target=p.variable.name),)),
                values={"penalty_share": share, "penalty_init": p.penalty_init, "decay_integral": decay,
                        "lambda": p.l2 or p.l1, "params": p.n})

    def _weak_decay(self, model, analysis):
        """The optimizer's own decay (this pass's param group): decoupled
        ``weight_decay`` (``lr*wd`` per step), or torch SGD's coupled one
        (``lr*wd/(1-momentum)``), over the whole run."""
        dyn = analysis.dynamics
        r = dyn.total_shrink(0.0)
        steps = analysis.context.total_steps()
        wd = dyn.weight_decay or 2.0 * (dyn.coupled_l2 or 0.0)  # the setting as the optimizer takes it
        if not r or not steps or not wd:
            return
        decay = r * steps
        if decay >= self.thresholds["no-effect-decay"]:
            return
        per_unit = r / wd  # the shrink is linear in the setting: lr, or lr/(1-momentum) when coupled
        # D = 1 over the run, but never past the per-step shrink RL003 calls
        # safe: on a run of a few steps D = 1 would need a shrink RL003 flags.
        from reglint.rules.rl003_weight_decay_too_strong import WeightDecayTooStrong

        safe = WeightDecayTooStrong(self.user_thresholds).safe_shrink(analysis.context.steps_per_epoch())
        suggested = min(1.0 / (per_unit * steps), safe / per_unit)
        shrink = "lr*weight_decay" if dyn.weight_decay else "lr*weight_decay/(1-momentum)"
        if suggested * per_unit * steps >= 1.0 - 1e-9:
            aim, remedy = (f"an integrated decay D = {shrink}*steps of 1 over the run",
                           f"weight_decay around {g(suggested)} gives D = 1 over this run")
        else:
            reach = suggested * per_unit * steps
            aim = (f"the largest decay RL003 calls safe, a shrink of {g(safe)} per step: D = {g(reach, 2)} over "
                   f"this {g(steps)}-step run")
            remedy = (f"weight_decay {g(suggested)} (RL003's safe shrink of {g(safe)} per step) reaches only D = "
                      f"{g(reach, 2)} in {g(steps)} steps: the run is too short for decay to matter, so drop it "
                      f"or train longer")
        setting = f"weight_decay {g(wd)}" if dyn.weight_decay else (
            f"SGD's coupled weight_decay {g(wd)} (L2 {g(dyn.coupled_l2)})"
            + (f" through momentum {g(dyn.momentum)}" if dyn.momentum else ""))
        yield self.finding(
            f"{setting}{analysis.group_text()} at lr {g(dyn.lr)} shrinks an "
            f"unsupported weight by {pct(decay)} over the {g(steps)}-step run (D = {g(decay)})",
            target=analysis.group_target(), remedy=remedy,
            fix=Fix(aim, (Change("weight_decay", wd, suggested, layer=analysis.group_name(), target="optimizer"),)),
            values={"decay_integral": decay, "shrink_per_step": r, "total_steps": steps,
                    "param_group": (analysis.judged_groups() or [None])[0]})
