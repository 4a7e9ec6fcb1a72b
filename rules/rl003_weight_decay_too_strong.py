"""# weight-decay-too-strong (RL003)

## What it does
Checks the optimizer's decoupled ``weight_decay`` (Keras 3, tf.keras >= 2.11,
AdamW, PyTorch-style AdamW in ONNX training artifacts and PyTorch
checkpoints) as what it does each step: every trainable weight is multiplied
by ``1 - eta*wd`` before the gradient step. Under SGD the optimizer's own
coupled decay (PyTorch ``SGD(weight_decay=wd)``, ONNX Momentum's
``norm_coefficient``) is checked the same way: it adds ``wd*w`` to the
gradient, and through momentum b an unsupported weight loses
``eta*wd/(1-b)`` of itself per step. Reports the per-step shrink, the
timescale ``1/r`` steps, and, when the training length is known
(``--epochs`` with ``--samples``, or ``--steps``), the integrated decay
``D = r*T``. Where the optimizer keeps param groups (PyTorch), the group
that shrinks fastest is checked and named.

## Why is this bad?
Under AdamW the data's update to a weight is at most about ``eta`` per step
(Adam normalises it), while the decay takes ``eta*wd*|w|``: no weight can
stay above about ``1/wd``, whatever the learning rate. When ``1/wd`` is
well below the size the kernels start at, the decay flattens the network
toward zero once training has run ``1/(eta*wd)`` steps. A per-step shrink
near 1 wipes the weights every step: at ``eta*wd >= 1``
the update zeroes or flips them; at a few tenths the network forgets within
a handful of steps what the data taught it. Over a whole run, a weight the
data does not hold up decays as ``exp(-D)``; Wang & Aitchison (ICML 2025)
recommend a timescale between one epoch and the training length.

## Example
``AdamW(learning_rate=0.01, weight_decay=50)``: every step multiplies each
weight by 0.5.

## Use instead
Keep ``eta*wd`` small (AdamW's default is 1e-3 x 0.004 = 4e-6 per step)
and choose wd so that the timescale ``1/(eta*wd)`` steps is at least an
epoch: ``wd <= 1/(eta * steps_per_epoch)``.

## Options
- ``decay-step-error`` (default 0.05): per-step shrink at which RL003 is an error.
- ``adamw-equilibrium-error`` (default 1.7): under an adaptive optimizer, error when ``wd * rms(w_init)``
  (the init scale of the kernels over AdamW's bound ``1/wd``) reaches this and training runs at least
  ``1/(eta*wd)`` steps (or its length is unknown).
- ``decay-step-warning`` (default 0.01): per-step shrink at which it is a warning.
- ``decay-epochs-warning`` (default 1.0): warn when the timescale is shorter than this many
  epochs (needs ``--samples``).

## Fix
Aim: a per-step shrink of half the warning level (``decay-step-warning/2``),
no faster than one timescale per ``decay-epochs-warning`` epochs when the
steps per epoch are known, and, under adaptive optimizers, ``wd * init RMS``
at half its error level: ``weight_decay`` becomes the smallest of these
divided by the learning rate.

## Formula
``r = eta_peak * wd`` (Keras ``base_optimizer._apply_weight_decay``:
``v <- v - v*wd*lr``; PyTorch AdamW ``p <- p*(1 - lr*wd)``); coupled under
SGD: ``r = 2*eta*l2/(1-b) = eta*wd/(1-b)`` with ``l2 = wd/2`` the Keras L2
factor (``estimate/dynamics.py``, slow mode of heavy-ball momentum); ``tau = 1/r`` steps; ``tau_epoch = tau * B / N``;
``D = r * T`` (at a schedule's peak rate: at most), and what an unsupported
weight ends at, ``(1 - c)^T`` with ``c`` the per-step contraction whose
halving the message states (not ``exp(-D)``, which parts from it as ``r``
grows: review 69, 2; none where a step flips the weights, review 68, 5);
adaptive: ``q = wd * rms(w_init)`` with ``rms`` over the
trainable kernels and embeddings, count-weighted, from their initializers.
A large table at Keras' small default scale pulls ``rms`` down (review 46:
``q`` 1.61 on a wd-30 model that collapsed). Leaving such tables out was
tried and rejected (2026-12-03): on ``Embedding(F*8, 16)`` -> mean ->
``Dense(16)`` -> ``Dense(C)`` under AdamW (digits, breast cancer, wine)
the kernels alone give ``q`` 2.6 at wd 10, where breast cancer trained
healthy and the other two only degraded (wd 30: all three collapsed, ``q``
7.8; with the table, 1.4): narrow kernels start large, so ``q`` over
kernels alone errs on runs that train. The miss stays a warning (the
shrink, 0.03 per step) that ``reglint profile --data`` settles.

## Thresholds and calibration
``eta*wd >= 1`` is exact (the multiplier ``1 - eta*wd`` reaches zero). A
coupled L2 under heavy-ball momentum changes a weight's sign every step
only from ``eta*h >= (1 + sqrt(b))^2`` (``h = 2*l2``); between a slow-mode
``r`` of 1 and that bound the weight oscillates inside an envelope that
shrinks by ``1 - sqrt(b)`` per step (``Dynamics.flips_every_step``; Keras'
SGD(0.05, momentum 0.95) with L2(0.5), ``r = 1``, crosses zero after six
steps), so the message gives the envelope's halving time there. The rest come from the
calibration grid (``python bench/calibrate.py report``; bench/CALIBRATION.md;
96 AdamW and SGD-with-weight_decay runs): on the fit split (digits, breast
cancer, diabetes) the largest per-step shrink of a healthy run is 0.03 and
every run from 0.09 up collapsed or diverged: error at **0.05**, between
them. Under AdamW (lr 1e-3) wd = 30 collapsed every model while its shrink
was only 0.03: ``q`` was 2.0 to 4.9 there, at most 1.46 on healthy or
merely degraded runs (wd = 10), hence **1.7**. Warning at **0.01** per step
(two of six fit and held-out runs there ended degraded). The thresholds are
on ``r``, the fraction an unsupported weight loses per step, whatever the
mechanism; the coupled-SGD case (PyTorch checkpoints) uses them unchanged.

Stacked decay: where a kernel RL001 counts also carries its own coupled L2
under SGD, the two add (Keras applies both: ``base_optimizer.py``) and ``r`` is
their sum ``2*eta*l2/(1-b) + eta*wd``; scale-invariant kernels are RL021's.
On the modern calibration grid (bench/CALIBRATION.md) such sums of 0.05 to
0.63 per step harmed 28 of 30 runs but wrecked only 12 (LSTM, GRU and
embedding models collapsed where transformers and residual networks
degraded), so the sum raises a **warning**; the error still needs the decay
every weight gets (decoupled ``eta*wd``, or the optimizer's own coupled
decay) past its level. Under heavy-ball momentum the slow-mode formula
overstates the actual contraction once ``eta*h > (1-sqrt(b))^2``
(``Dynamics.contraction``: at most ``1 - sqrt(b)``, 0.051 per step at
b = 0.9), one more reason the sum is not an error here. Where the kernels
carrying such sums follow one another with no normalization (the LSTM, GRU
and Embedding models that collapsed), RL024 judges the same sum as an error
from 0.15 per step.
Checked, not re-fitted, on 360 PyTorch runs (``bench/TORCH_CALIBRATION.md``):
coupled SGD at 0.05 finds 97% of wrecked runs at 90% precision (held out:
33/34 at 92%), with ~9% of healthy runs flagged (small, nearly separable
sets under momentum at r = 0.09-0.3, where the data holds the weights up);
AdamW: no false alarm, the misses are wd = 30 collapses the equilibrium
criterion would need initializers to see.

BatchNorm's moving statistics: where the decay every weight gets shrinks
kernels that feed a BatchNormalization layer, their output variance falls
``2*r`` per step; when that exceeds ``1 - momentum`` (0.01 at Keras'
default 0.99) the moving variance cannot follow, and until the kernels'
norm settles the layer divides by a stale, too-large variance at
inference. The warning then says so (the severity does not change). On
the grids (AdamW at lr 1e-3 with weight decay 10, ``2*r = 0.02``): the
residual CNN collapsed in 6 of 12 runs (three seeds: breast cancer and
digits, 320 and 480 steps), degraded mildly on synth and stayed healthy on
wine (640 steps); the fresh grid's separable CNN collapsed in 6 of 8
(Nadam too) and degraded on wine; the classic Dense-BatchNorm model on
digits (960 steps) stayed healthy. ``bench/bn_lag_probe.py`` measured the
cause on one of them: 0.93 held-out accuracy with batch statistics, the
majority class with the moving ones from step 42 to 420. Whether a run
ends inside that window depends on its length and data (wine's ran past
it), so this stays a warning; ``reglint profile --data --epochs E`` judges
it at the user's length (RL023 names the cause).

Measured (``reglint profile``): an error when the short run from the saved
weights diverged or collapsed with the shrink at or above the warning
level. A collapse read from the training loss and the kernel norms is a
warning instead when the same run ended at least 0.15 over chance on the
data held back by ``--data`` (R^2-like 0.2; on data of one dominant class
half the headroom ``1 - chance``, ``engine.twin_metric``): the network still separates
the data with shrunken weights. On the older grids' profiles 3 runs got
the error while having learned there (1 collapsed, 2 degraded) and 40 while
not (35 collapsed, 5 diverged); the fresh grid added 2 learned, both
degraded (bench/CALIBRATION.md). It is a warning too when the unregularized
twin did not learn either (RL017's Measured: nothing held the weights, so
the decay shrank them unopposed).

## References
- Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
- Wang & Aitchison, "How to set AdamW's weight decay as you scale model and dataset size", ICML 2025.
- Keras ``keras/src/optimizers/base_optimizer.py`` (``_apply_weight_decay``).
"""

from __future__ import annotations

import math

from reglint.engine.finding import Change, Fix, Severity
from reglint.engine.fmt import amount, decayed_to, g, lam
from reglint.engine.measured import static_finding, static_said
from reglint.engine.rule import Option, Rule
from reglint.engine.sweep import Curve
from reglint.engine.twin_metric import learned_on_held_out, twin_learned_nothing
from reglint.estimate.dynamics import halving_steps
from reglint.estimate.init_scale import expected_sum_sq


def equilibrium_ratio(model, dyn) -> float | None:
    """``wd * rms(w_init)`` over the trainable kernels and embeddings, for
    adaptive optimizers (Adam's step is about ``lr`` whatever the gradient);
    None for SGD, where the bound depends on the data gradient's size."""
    if dyn.family != "adaptive" or not dyn.weight_decay:
        return None
    rms = kernel_init_rms(model)
    return dyn.weight_decay * rms if rms is not None else None


def kernel_init_rms(model) -> float | None:
    """The RMS at a fresh initialisation over the trainable kernels and
    embeddings (``expected_sum_sq``), None where none is known."""
    energy, count = 0.0, 0
    for layer, var in model.variables():
        if not (var.trainable and layer.trainable and (var.role.is_kernel_like or var.role.value == "embeddings")):
            continue
        sum_sq = expected_sum_sq(var)
        if sum_sq is not None and var.size:
            energy, count = energy + sum_sq, count + var.size
    return (energy / count) ** 0.5 if count else None


def every_weight_shrink(dyn) -> float:
    """The shrink the optimizer applies to every weight: decoupled
    ``eta*wd``, plus a coupled optimizer weight decay under SGD (PyTorch's
    ``SGD(weight_decay=...)``, read as ``coupled_l2``)."""
    coupled = dyn.coupled_shrink(0.0) if dyn.family == "sgd" and dyn.coupled_l2 else None
    return (dyn.decoupled_shrink or 0.0) + (coupled or 0.0)


def moving_statistics_lag(model, analysis, shrink: float) -> dict | None:
    """BatchNormalization layers fed directly by kernels that a decay of
    ``shrink`` per step reaches, when the variance those kernels feed them
    falls faster (``2*shrink``) than the moving statistics follow
    (``1 - momentum``): {"layers", "momentum" (the slowest)}; else None."""
    if not shrink:
        return None
    fed = {nxt.path: nxt for layer, _, _ in analysis.invariant_kernels() for nxt in analysis.consumers(layer)}
    lagging = [(layer.path, float(layer.config["momentum"])) for layer in fed.values()
               if layer.class_name in ("BatchNormalization", "SyncBatchNormalization")
               and isinstance(layer.config.get("momentum"), (int, float)) and 0 <= layer.config["momentum"] < 1
               and 2 * shrink > 1 - float(layer.config["momentum"])]
    if not lagging:
        return None
    return {"layers": sorted(path for path, _ in lagging), "momentum": max(m for _, m in lagging)}


def stacked_shrink(analysis):
    """(per-step shrink, penalty or None): the decoupled ``eta*wd``, or
    where a tensor RL001 counts also carries a coupled L2 under SGD, the
    largest sum ``2*eta*l2/(1-m) + eta*wd`` (Keras applies both: theory
    section 1.4). Scale-invariant kernels are left to RL021: their shrink
    sets an angle, not the function's scale."""
    dyn = analysis.dynamics
    best, where = every_weight_shrink(dyn), None
    for p in analysis.lead_penalties:
        total = dyn.total_shrink(p.l2) if p.active and p.l2 and p.counted else None
        if total and total > best:
            best, where = total, p
    return best, where


class WeightDecayTooStrong(Rule):
    code = "RL003"
    name = "weight-decay-too-strong"
    severity = Severity.ERROR
    summary = "Decoupled weight_decay shrinks every weight by a large fraction each step."
    per_optimizer_group = True  # each param group (PyTorch, MultiOptimizer) with its own settings
    predicts_outcome = True
    options = {
        "decay-step-error": Option(0.05, "per-step shrink lr*weight_decay at which RL003 is an error"),
        "adamw-equilibrium-error": Option(1.7, "adaptive optimizers: weight_decay * kernel init RMS at which "
                                                "RL003 is an error"),
        "decay-step-warning": Option(0.01, "per-step shrink lr*weight_decay at which RL003 is a warning"),
        "decay-epochs-warning": Option(1.0, "warn when the decay timescale is shorter than this many epochs"),
    }

    def safe_shrink(self, steps_per_epoch: int | None) -> float:
        safe_r = self.thresholds["decay-step-warning"] / 2
        if steps_per_epoch:
            safe_r = min(safe_r, 1.0 / (steps_per_epoch * self.thresholds["decay-epochs-warning"]))
        return safe_r

    def fix(self, wd: float, safe_wd: float | None, coupled: bool = False, group: str | None = None) -> Fix | None:
        """``group``: ``param group N`` where the optimizer's groups differ
        (the change is that group's, never the others')."""
        if not safe_wd:
            return None
        shrink = "lr*weight_decay/(1-momentum)" if coupled else "lr*weight_decay"
        aim = f"a per-step shrink {shrink} of at most {g(self.thresholds['decay-step-warning'] / 2)}"
        return Fix(aim, (Change("weight_decay", wd, safe_wd, layer=group, target="optimizer"),))

    def quiet_weight_decay(self, model, analysis, lr: float) -> float | None:
        """The decoupled ``weight_decay`` this rule itself suggests at ``lr``
        under an adaptive optimizer: a per-step shrink ``lr*wd`` of
        ``safe_shrink`` (half the warning level, or a timescale of the
        warning's epochs where the steps per epoch are known), and at most
        half the equilibrium error level over the kernels' init RMS. A rule
        that suggests a weight_decay of its own (RL007's equal strength)
        keeps under it, so its fix does not become this rule's finding."""
        if not lr:
            return None
        safe = self.safe_shrink(analysis.context.steps_per_epoch()) / lr
        rms = kernel_init_rms(model)
        if rms:
            safe = min(safe, 0.5 * self.thresholds["adamw-equilibrium-error"] / rms)
        return safe

    def _stacked_fix(self, dyn, stacked, l2_shrink: float, per_epoch: int | None,
                     group: str | None) -> tuple[str, Fix]:
        """Where a kernel's own coupled L2 under SGD already shrinks it at or
        above the aim, no weight_decay is safe beside it: drop the decay and
        bring that L2 to the aim (review 35, D2: the error carried no remedy
        and no fix)."""
        aim = self.safe_shrink(per_epoch)
        safe_l2 = aim * (1.0 - dyn.momentum) / (2.0 * dyn.lr)
        where = f"{stacked.layer.path}/{stacked.variable.name}"
        remedy = (f"drop weight_decay: {where}'s {lam(stacked.regularizer)} alone shrinks it {g(l2_shrink)} per step, "
                  f"over the {g(aim)} aim; lower that L2 to {g(safe_l2)} too (or keep one of the two, RL006)")
        target = stacked.variable.name.split("/")[-1]
        return remedy, Fix(f"a per-step shrink of at most {g(aim)}, the kernel's L2 included",
                           (Change("weight_decay", dyn.weight_decay or 2 * dyn.coupled_l2, 0.0, layer=group,
                                   target="optimizer"),
                            Change("lambda", stacked.l2, safe_l2, layer=stacked.layer.path, target=target)))

    def warning_shrink(self, steps_per_epoch: int | None) -> float:
        """The per-step shrink at which RL003 warns: ``decay-step-warning``,
        or a timescale shorter than ``decay-epochs-warning`` epochs where
        the steps per epoch are known, whichever comes first."""
        level = self.thresholds["decay-step-warning"]
        if steps_per_epoch:
            level = min(level, 1.0 / (steps_per_epoch * self.thresholds["decay-epochs-warning"]))
        return level

    def sweep(self, model, analysis):
        """``r`` against ``weight_decay`` (the part it sets moves: the
        decoupled ``lr*wd``, or torch SGD's coupled ``lr*wd/(1-momentum)``),
        and, where a counted kernel's coupled L2 under SGD adds to it, against
        the lambdas too (that part moves): ``explain``'s largest safe lambda
        must see the warning the L2 causes."""
        dyn = analysis.dynamics
        base = every_weight_shrink(dyn)  # what weight_decay sets, decoupled or coupled
        if not base:
            return []
        r, stacked = stacked_shrink(analysis)
        per_epoch = analysis.context.steps_per_epoch()
        warning, error = self.warning_shrink(per_epoch), self.thresholds["decay-step-error"]
        fires = r >= warning
        # A kernel's own coupled L2 on the same weights is the offset: weight_decay moves only its own part.
        fix = max(0.0, self.safe_shrink(per_epoch) - (r - base)) / base if fires else None
        formula = "lr*weight_decay/(1-momentum)" if not dyn.decoupled_shrink else "lr*weight_decay"
        curves = [Curve(self.code, "shrink_per_step", f"r = {formula} (+ 2*lr*l2/(1-momentum) where a kernel "
                        "also carries an L2 under SGD), the per-step shrink", "weight_decay", slope=base,
                        offset=r - base, warning=warning,
                        # the error level applies to weight_decay's part: shifted by the kernel's coupled offset
                        error=error + (r - base), fix=fix,
                        lambdas=(dyn.weight_decay or 2 * dyn.coupled_l2,), about=())]
        if stacked is not None and base < warning:
            # The error comes from the decay every weight gets (check), never from a lambda: on this knob it
            # is either there at every multiplier (base past it) or nowhere.
            stacking = [p for p in analysis.lead_penalties if p.active and p.l2 and p.counted]
            lambdas = tuple(sorted({p.l2 for p in stacking}))
            curves.append(Curve(self.code, "shrink_per_step", "r = lr*weight_decay + 2*lr*l2/(1-momentum), the "
                                "per-step shrink of the kernel whose coupled L2 adds most under SGD", "lambda",
                                slope=r - base, offset=base, warning=warning,
                                error=base if base >= error else None, lambdas=lambdas,
                                layers=tuple(dict.fromkeys(p.layer.path for p in stacking)), about=()))
        return curves

    def check(self, model, analysis):
        dyn = analysis.dynamics
        coupled = dyn.coupled_shrink(0.0) if dyn.family == "sgd" and dyn.coupled_l2 else None
        base = every_weight_shrink(dyn)
        if not base:
            return
        r, stacked = stacked_shrink(analysis)
        ctx = analysis.context
        per_epoch = ctx.steps_per_epoch()
        tau = 1.0 / r
        tau_epochs = tau / per_epoch if per_epoch else None
        # A file saved before training records 0 steps: that is not the run's length.
        total = ctx.total_steps() or analysis.optimizer_steps_taken() or None
        values = {"shrink_per_step": r, "timescale_steps": tau, "learning_rate": dyn.lr,
                  # the setting as saved: torch SGD's coupled wd is 2 x its L2 (0.0 was said)
                  "weight_decay": dyn.weight_decay or 2 * dyn.coupled_l2, "timescale_epochs": tau_epochs,
                  "decay_integral": r * total if total else None, "decoupled_shrink": dyn.decoupled_shrink,
                  "coupled_shrink": (r - base) if stacked else None,
                  "stacked_layer": stacked.layer.path if stacked else None}
        if coupled:
            values.update(coupled_l2=dyn.coupled_l2, momentum=dyn.momentum)
        q = equilibrium_ratio(model, dyn)
        values["equilibrium_ratio"] = q
        flattens = (q is not None and q >= self.thresholds["adamw-equilibrium-error"]
                    and (total is None or r * total >= 1.0))
        severity = None
        # Errors come from the decay every weight gets: a kernel's own coupled
        # L2 added under SGD momentum made the sum harmful but not fatal
        # (Thresholds).
        if _at_least(base, self.thresholds["decay-step-error"]) or flattens:
            severity = Severity.ERROR
        elif _at_least(r, self.thresholds["decay-step-warning"]) or (
                tau_epochs is not None and tau_epochs < self.thresholds["decay-epochs-warning"]):
            severity = Severity.WARNING
        if severity is None:
            return
        # A kernel's own coupled L2 is fixed by its regularizer: weight_decay
        # can only take what is left of the safe shrink.
        safe_r = max(0.0, self.safe_shrink(per_epoch) - (r - base))
        # Coupled under SGD the setting is torch's wd = 2*l2, and momentum amplifies it.
        safe_wd = (safe_r * (1 - dyn.momentum) if coupled else safe_r) / dyn.lr if dyn.lr else None
        horizon = f" ({g(tau_epochs, 2)} epochs)" if tau_epochs is not None else ""
        # "every step" only where the weight really changes sign every step
        # (Dynamics.flips_every_step): under momentum the slow-mode r
        # overstates it; otherwise halving from the real per-step contraction
        # (momentum's oscillating mode included)
        l2 = stacked.l2 if stacked else 0.0
        actual = dyn.contraction(l2) or r
        wipe = "zeroes or flips the weights every step" if dyn.flips_every_step(l2) else \
            f"halves an unsupported weight every {amount(halving_steps(actual), 'step')}"
        if dyn.momentum_regime(l2, r) == "faster":
            # near critical damping momentum's two modes together contract
            # faster than the slow mode alone: say the rate the halving uses
            wipe += f" (momentum's real contraction, {g(actual)} per step)"
        if flattens and r < self.thresholds["decay-step-error"]:
            wipe += (f"; under {model.optimizer.class_name} no weight can stay above about 1/wd = "
                     f"{g(1 / dyn.weight_decay)}, {g(q, 2)}x below the kernels' init RMS")
            safe_wd_eq = 0.5 * self.thresholds["adamw-equilibrium-error"] * dyn.weight_decay / q
        else:
            safe_wd_eq = None
        lag = moving_statistics_lag(model, analysis, base)
        if lag:
            values["moving_statistics_lag"] = lag
            wipe += (f"; the kernels feeding {len(lag['layers'])} BatchNormalization layer(s) lose {g(2 * base)} of "
                     f"their output variance per step, faster than the moving statistics follow "
                     f"({g(1 - lag['momentum'])} per step at momentum {g(lag['momentum'])}; they keep up below a "
                     f"shrink of {g((1 - lag['momentum']) / 2)} per step): until their norm "
                     f"settles the network predicts from stale statistics, and a training stopped then saves a "
                     f"model that predicts one class (reglint profile --data --epochs E measures it)")
        given = ctx.total_steps()
        # review 67, 3: the run's integrated decay was in the JSON only; review 68, 5-6: not where a step flips
        # the weight (exp(-D) is no longer what is left), and at the peak learning rate under a schedule
        peak = _scheduled(model)
        if given and not dyn.flips_every_step(l2) and r < 1 and actual < 1:
            wipe += (f"; over the {amount(given, 'step')} of the training, D = {g(r * given, 2)}"
                     f"{' at most (at the peak learning rate of its ' + peak + ')' if peak else ''}, and at the "
                     f"halving above an unsupported weight ends at {'no less than ' if peak else ''}"
                     f"{decayed_to(-given * math.log1p(-actual))} of itself")  # review 69, 2: (1 - r)^T, not exp(-rT)
        safe = min((x for x in (safe_wd, safe_wd_eq) if x), default=None)
        setting = f"weight_decay {g(dyn.weight_decay)}" if not coupled else (
            f"SGD's coupled weight_decay {g(2 * dyn.coupled_l2)} (L2 {g(dyn.coupled_l2)})"
            + (f" through momentum {g(dyn.momentum)}" if dyn.momentum else ""))
        both = (f" and {stacked.layer.path}/{stacked.variable.name}'s {lam(stacked.regularizer)} another "
                f"{g(r - base)} under SGD" + (f" momentum {g(dyn.momentum)}" if dyn.momentum else "")
                + f"; together {g(r)} per step" if stacked else "")
        remedy = f"use weight_decay <= {g(safe)} at this learning rate" if safe else None
        left = r - base + (safe * dyn.lr / (1 - dyn.momentum) if coupled else safe * dyn.lr) if safe and given else 0.0
        if remedy and given and left * given >= 1:  # review 67, 2: 1.67 over 300 steps still lost 61% of the margin
            remedy += _still(given, left, peak)
        fix = self.fix(dyn.weight_decay or 2 * dyn.coupled_l2, safe, coupled=bool(coupled), group=analysis.group_name())
        if fix is None and stacked and safe_r == 0.0:
            remedy, fix = self._stacked_fix(dyn, stacked, r - base, per_epoch, analysis.group_name())
            if given and self.safe_shrink(per_epoch) * given >= 1:  # review 68, 9: the note this branch dropped
                remedy += _still(given, self.safe_shrink(per_epoch), peak)
        yield self.finding(
            f"{setting}{analysis.group_text()} at lr {g(dyn.lr)} "
            f"{_shrink_text(dyn, l2, base, r, both, horizon)}: "
            f"it {wipe}",
            target=analysis.group_target(), severity=severity, remedy=remedy, fix=fix,
            values={**values, "safe_weight_decay": safe, "param_group": (analysis.judged_groups() or [None])[0]},
        )

    def check_measured(self, result, report):
        """The short run diverged or collapsed with ``lr*wd`` at or above the
        warning level: decay is the cause."""
        opt = result.optimizer
        if not opt or not opt.get("weight_decay") or not opt.get("stepped"):
            return
        lr = opt.get("learning_rate_peak") or opt.get("learning_rate")
        if not lr:
            return
        wd = opt["weight_decay"]
        r = lr * wd
        outcome = result.outcome
        found = static_finding(report, self.code)
        static = found.severity if found else None
        steps = len(result.trajectory)
        values = {"shrink_per_step": r, "weight_decay": wd, "learning_rate": lr, "outcome": outcome.label,
                  "decay_integral": r * steps, "steps": steps, "kernel_norm_change": outcome.kernel_norm_change}
        harmed = outcome.label in ("diverged", "collapsing")
        if harmed and self.level(r, "decay-step-warning") is not None:
            safe = self.safe_shrink(None) / lr
            # a collapse read from the loss and the norms yields to the held-out measurement (RL017's Measured)
            learned = (learned_on_held_out(result) or twin_learned_nothing(result)) \
                if outcome.label == "collapsing" else None
            yield self.finding(
                f"measured: the run {outcome.label} ({outcome.reason}) with weight_decay {g(wd)} at lr {g(lr)}, "
                f"a shrink of {g(r)} per step (D = {g(r * steps, 2)} over {steps} steps)"
                + (f", {learned}" if learned else f"; {static_said(static, Severity.ERROR)}"),
                severity=Severity.WARNING if learned else Severity.ERROR, target="optimizer.weight_decay",
                measured=True,
                remedy=f"use weight_decay <= {g(safe)} at this learning rate", fix=self.fix(wd, safe),
                values=values)
        elif static is Severity.ERROR and outcome.label == "learning":
            yield self.finding(
                f"measured: the run still learned in {steps} steps {result.start.phrase} ({outcome.reason}) "
                f"with weight_decay {g(wd)} (shrink {g(r)} per step): the static error (listed beside this) is not "
                f"reproduced over this short run; a longer one may still decay the weights away",
                severity=Severity.INFO, target="optimizer.weight_decay", values=values, measured=True)


def _shrink_text(dyn, l2: float, base: float, r: float, both: str, horizon: str) -> str:
    """The per-step shrink and its timescale. Under heavy-ball SGD the
    slow mode (``lr*wd/(1-momentum)`` for torch's coupled decay; Keras'
    ``lr*wd + 2*lr*l2/(1-momentum)`` where a kernel's L2 adds) holds only
    while it is below ``1 - sqrt(momentum)``; past that the weights
    oscillate inside an envelope that contracts by ``1 - sqrt(m*(1 -
    lr*wd))`` per step (0.051 at 0.9 without decay,
    ``Dynamics.contraction``), so the slow mode is named as what the
    setting asks for and the envelope as what happens
    (``Dynamics.momentum_regime``)."""
    actual = dyn.contraction(l2)
    if actual is not None and dyn.momentum_regime(l2, r) == "limited":
        formula = "lr*wd + 2*lr*l2/(1-momentum)" if both else (
            "lr*wd/(1-momentum)" if dyn.coupled_l2 else "lr*wd")
        return (f"asks every weight to shrink by {g(base)} per step{both} ({formula}), more than "
                f"momentum lets it: the weights swing through zero inside an envelope that shrinks by "
                f"{g(actual)} per step")
    return f"shrinks every weight by {g(base)} per step{both} (timescale {g(1 / r, 3)} steps{horizon})"


def _scheduled(model) -> str | None:
    """The class of the learning-rate schedule the optimizer keeps, whose
    peak RL003 judges (None: a constant rate)."""
    rate = model.optimizer.learning_rate if model.optimizer is not None else None
    return rate.schedule if rate is not None else None


def _still(steps: int, shrink: float, peak: str | None) -> str:
    """The integrated decay a fix still leaves over the training's length."""
    return (f" (over the {amount(steps, 'step')} still D = {g(shrink * steps, 2)}"
            f"{' at the peak learning rate' if peak else ''}: reglint profile --data measures whether your data "
            f"holds the weights up)")


def _at_least(shrink: float, level: float) -> bool:
    """``shrink >= level`` up to float rounding: lr*wd/(1-momentum) at
    momentum 0.99 is 0.0499999... where the settings give 0.05 exactly
    (review 29, D9)."""
    return shrink >= level * (1 - 1e-9)

