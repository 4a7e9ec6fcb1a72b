"""# penalty-hurts-training (RL023)

## What it does
Judges ``reglint profile --data``'s unregularized twin: from the weights
saved in the file (for a file whose optimizer recorded steps, a fresh draw
of its initializers: ``--init``), the saved optimizer trains the model twice for the same
budgeted number of steps on the same batches in the same order (reshuffled
every epoch, as ``fit`` does), once as
saved and once with every weight and activity regularizer and the
optimizer's ``weight_decay`` removed, and both runs are scored on a slice
of ``--data`` held back from training. RL023 reports when the penalized run
is clearly worse than its twin: it diverged while the twin did not, it sits
at chance while the twin learned, or it lost a large share of what the twin
gained over chance. Only measured: ``reglint check`` never reports it.

## Why is this bad?
Every static rule estimates the damage from a formula (the penalty against
the data-loss scale, the per-step shrink, a stability bound). Whether a
penalty wrecks a training also depends on how large the weights must grow
to fit *this* data, which no file holds: the same L2 is harmless on one
data set and collapses the network on a harder one (bench/CALIBRATION.md).
The twin answers it by measurement: same start, same data, same optimizer,
the penalty the only difference. If the recipe ends at chance while its
twin learns, the penalty is what fails the training.

## Example
The calibration grid's 64-32 MLP on a 20-class data set (held out when the
thresholds were chosen) with ``L2(0.1)`` on every kernel under
``SGD(0.03, momentum=0.9)``: the penalty at initialisation is under RL001's
warning level and no static rule reports an error, yet the real training
ended at chance. ``reglint profile --data train.npz`` (2 s): over 420 steps
the penalized run reached a held-out accuracy of 0.02 (chance 0.083) while
its unregularized twin reached 0.856: an error, ``collapsed``.

## Use instead
The lambda or ``weight_decay`` in the finding's fix (what RL001, RL003
and RL010 compute for the measured penalty), then profile again: the twin
shows whether the penalized run still trails.

## Options
- ``twin-gap-error`` (default 0.7): share of the twin's margin (held-out
  accuracy over chance; for other losses, the share of the constant
  predictor's loss explained) that the penalized run loses at which RL023 is an error.
- ``twin-gap-warning`` (default 0.2): the same share at which it is a warning.

## Fix
Measured, not only computed. The candidate is the smallest of the scales
the other rules suggest for the measured penalty: RL001's (every lambda
scaled so the measured penalty lands at its aim, the whole penalty
counted, scale-invariant kernels and gamma/beta included), RL003's safe
per-step shrink applied to decoupled ``weight_decay`` and to coupled L2
under SGD (shrink ``2*lr*l2/(1-mu)``), and RL010's for activity
penalties; when none of them asks for a change, every lambda and
``weight_decay`` one decade lower. A value a formula puts less than half a
decade (3.2x) below the current one is taken down to that: the profile
measured damage at the current value, and the calibration grids step
lambdas by 3x to 10x (review 71, 5: RL010's aim moved an activity L2 of
0.3, measured to hurt, to 0.286, whose trial repeated the damage). On real held-back data the profile
then runs the recipe again with the candidate (same saved weights,
batches and steps as the pair: ``analysis.profile.twin.fix_trials``) and,
if that run still loses ``twin-gap-warning`` of the twin's margin, once
more a decade lower (two trials at most; each about as long as the
penalized run, within three quarters of ``--time-budget`` beyond it). The fix
reported is the first value that trained within ``twin-gap-warning``,
judged at the lowest of the trial's last three records, not their mean: a
training stopped at any of them keeps what the fix promises (review 61, 1:
a BatchNorm MobileNet's trial swung 0.78-0.91 between records, its mean
passed, and two of three real trainings at that value lost 28-31% of the
margin). Where the twin did not learn and the penalized run diverged, a
trial passes by staying finite (review 61, 2);
when none did, the finding says what each lost, and its fix is the twin's
settings (the penalties removed: the only setting measured to train;
review 50 trained the first failed value of such a fix, and it collapsed).

Why: review 42 applied the formula's fixes to real trainings. A GRU at
kernel L2 0.1 -> 0.0482 (RL001's aim) still lost 74% of its margin; a
residual BatchNorm CNN under SGD at lr 0.1 with L2 0.1 -> 0.0025 (RL003's
safe shrink) lost 50-55% (two seeds). Their profiles' trials measured 55%
and 32% lost at those values and passed at 0.00482 and 2.5e-4, which the
real trainings confirmed (bench/CALIBRATION.md, "Measured fixes").

## Formula
Both runs record every ``steps/24`` steps; the verdict takes the mean of
each run's last three records. With ``m = acc - chance`` on the held-back
slice (chance: the slice's share of the most frequent class of ``--data``),
or ``m = 1 - L/L_const`` for other losses (``L_const``: the constant
predictor's loss on the slice, R^2 for MSE; for several outputs each
output's, weighted as the total weighs them (review 61, 4: two heads at
the constant predictor were judged against the loss at the saved weights,
``worse``, not ``collapsed``); for losses without one, or weights the file
does not record, the loss at the saved weights),
``gap = (m_twin - m_pen) / m_twin``. In order:

- both runs diverged (non-finite, or training loss > 3x its start): no
  verdict on the penalty (``both-diverged``);
- the penalized run diverged, the twin did not: error (``diverged``);
- the twin did not learn (``m_twin < 0.15``, R^2-like ``< 0.2``): no
  verdict (``twin-did-not-learn``);
- ``m_pen <= 0.05``: error (``collapsed``);
- the penalized run at chance, or short of its twin by at least
  ``twin-gap-error`` of the twin's margin, for at least 3 consecutive
  records while the twin had learned, and not an error at the end:
  warning (``stalled``; a training stopped in that window ends at chance,
  or that far short: BatchNorm networks whose kernels shrink faster than
  the moving statistics follow). The message says whether the run then
  recovered or ended short (a ``worse`` gap under the error level). The
  window is also given in epochs of every example in ``--data``,
  ``step / ceil(examples / batch)``, as ``fit`` and ``--epochs`` count
  them, the unit a training is planned in;
- ``collapsed`` and ``stalled`` add a cause when the model has layers
  that predict with moving statistics (BatchNormalization) and the
  penalized run's training-batch loss over those records, computed with
  each batch's own statistics, is at most half the constant predictor's
  held-out loss: the network fits, and its moving statistics (an average
  over ``1/(1-momentum)`` steps) lag kernels that decay faster than that.
  ``bench/bn_lag_probe.py`` measured it on the fresh grid's separable CNN
  under AdamW, weight decay 10: 0.92-0.94 held-out accuracy with batch
  statistics, the majority class (0.629) with the moving ones, from step
  42 to 420. In the fresh grid's profiles at the training's length, the
  separable CNN's collapsed and stalled runs fit their batches at 0.01 to
  0.5 of the constant predictor's loss (a few at 0.8), while runs that
  did not fit at all (the LayerNorm MLP, which has no moving statistics;
  the separable CNN whose head SGD with L2 1 pinned) sat at 0.97 to 1.01:
  hence half. The severity does not change;
- ``gap >= twin-gap-error``: error; ``>= twin-gap-warning``: warning
  (``worse``); ``gap <= -twin-gap-warning``: ``better`` (no finding);
  otherwise ``similar``.

On synthetic data (no ``--data``) the runs fit one batch of random labels
and ``m`` uses its training loss: only a divergence is an error there;
a gap is at most a warning, and the verdict says so.

## Errors that yield to the twin
The static rules that judge a penalty's size or speed (RL001, RL002,
RL003, RL004, RL007, RL010, RL021, RL024, RL025: ``Rule.predicts_outcome``)
predict from the recipe that training will be wrecked; they cannot see the
data, and the same recipe collapses on one data set and trains on another.
When the twin measured, on real held-back data, the penalized run ending as
well as its twin where it was judged, their errors (static and measured)
become warnings that quote the measurement (``values.overturned_by`` is
``RL023``, ``values.severity_before_twin`` ``error``;
``analysis.profile.twin.verdict.learned_as_well`` is true). "As well":
``similar`` or ``better``; or ``stalled`` and recovered to within
``twin-gap-warning`` when the run was judged at the user's training length
(``--epochs``, ``--steps``, the steps a trained file records), since a
training of that length ends where the twin was judged; at the default
budget a stall stays evidence that a shorter training ends at chance.
Without ``--data``, at a collapse, a divergence, a ``worse`` gap or no
verdict, the errors stand. Exact rules (an invalid lambda, loss weights
Keras cannot train on, weights that do not match the architecture) never
yield: they are facts about the file, not predictions. A wider yield (to
a ``worse`` gap under the error level, or any stall recovered at the
user's length) was scored on the residual and stream grids and not
adopted: 5 of the 15 errors it would have turned into warnings marked
wrecked trainings, where the twin's small held-back slice measured gaps
of 0.46-0.65 (bench/CALIBRATION.md, "A wider yield").

## Thresholds and calibration
The margins 0.15 / 0.05 (R^2-like 0.2 / 0.05) are the calibration grid's
own outcome rule: a baseline that learned, a run at chance. On data of one
dominant class they are at most half and a quarter of the headroom
``1 - chance`` (review 55: at a chance of 0.914 a twin at 0.997 "did not
learn" and a penalized run at chance got no verdict); the grids' data sets
(chance at most 0.63) are unchanged by it. The gap
levels come from ``python bench/profile_grid.py run`` then ``score``
(bench/CALIBRATION.md, "The unregularized twin"): every one of the grid's
671 saved models profiled with its own training split as ``--data``,
against the outcome of its real training. On the fit split (digits, breast
cancer, diabetes) the smallest error gap with at least 95% precision for
wrecked (diverged or collapsed) runs is **0.7** (recall 97.6%, precision
95.3%; re-run on 2026-11-30 with batches reshuffled every epoch: 96.8%,
96.0%, two verdicts of 671 moved): below it, the flagged runs are ones that kept half their accuracy
and ended merely degraded (L2 0.1 on digits: 0.42 to 0.70 held-out
accuracy against the twin's 0.98). On the held-out data sets (wine, the
20-class set) RL023 alone then catches 98.9% (87/88) of wrecked runs at
100% precision and no false alarm on 158 healthy runs; the static rules
catch 81.8% there. The warning at **0.2** is the smallest gap at which no
healthy run of the fit split is warned (0 of 241; at 0.15, 1): it flags
84% of the degraded-or-worse fit runs (81% in the re-run, still none
healthy). Each profile took 0.6 to 16 s (median 2.9 s) on a 2-core CPU,
one TensorFlow thread.

What it misses (re-run): a BatchNorm model whose real 480-step training
was caught mid-collapse while its moving statistics lagged the shrinking
kernels (the twin, run to convergence, recovers: ``stalled``), two
BatchNorm regressions on diabetes and one AdamW run (wd 30) on wine, also
``stalled``, and a digits MLP at a gap of 0.65. Runs flagged that were
only degraded: three diabetes MLPs whose 160-step real training stopped
before the collapse the longer twin shows, a digits MLP with activity L2
1 the twin saw at chance, and a digits Embedding model at a gap of 0.89. The
``stalled`` warning needs 3 records at chance: with 2 it warned a healthy
fit run, with 3 none (on the held-out sets 2 healthy, 2 degraded, and on
the fit split 1 collapsed and 2 degraded runs; the modern grid's residual
networks under kernel L2 plus weight decay: 2 collapsed, 4 degraded).

On the modern grid (residual CNNs with BatchNorm, transformers, LSTM,
GRU, Embedding: runs the levels never saw, three seeds of 388 runs, the
third trained after every level was set; bench/CALIBRATION.md), judged at
each real training's own length (``--steps`` = the steps it ran), the same
levels catch 94.3% (33/35) of the held-out wrecks; every error they give on
a held-out run marks a severely harmed training (wrecked, or half the
baseline's margin over chance lost), none of the 527 healthy runs gets
one. On the fit split: 88.0% (44/50), 2 of 327 healthy runs flagged. The
misses are post-norm transformers with gamma+beta L2 1, which collapsed
with one seed and only degraded with the others, and residual CNNs under
SGD at lr 0.1, the grid's weakest baseline.
With the default budget (which runs longer than these 320-640-step
trainings: a median of about 1,450 steps) both seeds' held-out recall is
96.0% (24/25) with 2 errors on 351 healthy runs, the fit split's 71.0%
(22/31): residual networks whose twin stalled and recovered inside the
budget (``stalled`` warnings) and SGD runs at gaps of 0.58-0.68. Pass
``--epochs E`` (your training's length) to be judged there.

Why ``stalled`` stays a warning: whether a stalled recipe wrecks a training
depends on where that training stops, which the file does not record.
Over the four grids' default-budget profiles (classic, modern seeds 0 and
1, fresh) 68 runs got ``stalled``: 26 wrecked, 19 degraded by at least
half their margin, 14 degraded less, 9 healthy: 66% severely harmed,
short of the 90% an error needs. The twin had reached 90% of its final
margin before the stall ended in 67 of the 68, so "the unregularized run was
done first" does not tell them apart; nor does a stall that began after
the penalized run had learned (12 runs: 6 wrecked, 4 degraded, 2
healthy; ``python bench/stall_tally.py`` prints these counts). The real
training's length does (the fresh grid's separable CNN: 320-step
trainings inside windows ending at step 336-588 collapsed, 640-step ones
past windows ending at 252-420 were healthy).

## References
- van Laarhoven, "L2 Regularization versus Batch and Weight Normalization", 2017.
- Wan et al., "Spherical Motion Dynamics", NeurIPS 2021.
- Kosson et al., "Rotational Equilibrium: How Weight Decay Balances Learning Across Neural Networks", ICML 2024.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from reglint.engine.finding import Change, Fix, Severity
from reglint.engine.fmt import g, pct
from reglint.engine.rule import Option, Rule
from reglint.engine.twin_metric import FINAL_RECORDS, TwinMetric
from reglint.engine.twin_metric import diverged as _diverged
from reglint.engine.twin_metric import final_value as _final
from reglint.engine.twin_metric import first_value as _first

# The calibration grid's outcome rule (bench/calibrate.py): a run that
# learned beats chance by LEARNED accuracy points (R^2-like LEARNED_SKILL);
# one within COLLAPSED of chance (R^2-like 0.05) has collapsed; on data of
# one dominant class both are shares of the headroom over chance
# (reglint.engine.twin_metric, TwinMetric.learned / .collapsed).
# A penalized run at chance for this many consecutive records while its
# twin had learned, which then recovered, is ``stalled`` (a warning): a
# training stopped in that window ends at chance.
STALL_RECORDS = 3
# No rule asks for a change: one decade lower. A measured fix that still
# trails its twin is tried once more this much lower (MAX_TRIALS in all).
FALLBACK_SCALE = 0.1
MAX_TRIALS = 2
# A formula's fix within this factor of the value measured to hurt is taken
# down to it: half a decade, the calibration grids' step between lambdas
# (review 71, 5: RL010's aim moved a measured-harmful activity L2 0.3 to
# 0.286, a trial that could only repeat the damage; 0.0286 trained).
LEAST_STEP = 10 ** -0.5
# A penalized run at chance on the held-back slice whose training-batch loss
# is at most this share of the constant predictor's fits its batches: with
# BatchNorm, the moving statistics are what fail (see Formula).
STALE_FIT = 0.5


@dataclass
class Judgment:
    """RL023's verdict on a twin: the label and message the JSON shows,
    the severity of the finding (None: no finding) and its numbers."""

    label: str
    message: str
    severity: Severity | None = None
    values: dict[str, Any] = field(default_factory=dict)


class PenaltyHurtsTraining(Rule):
    code = "RL023"
    name = "penalty-hurts-training"
    severity = Severity.ERROR
    summary = "Measured: the saved recipe trains clearly worse than the same run without its penalties."
    options = {
        "twin-gap-error": Option(0.7, "share of the unregularized twin's margin over chance the penalized run "
                                      "loses at which RL023 is an error"),
        "twin-gap-warning": Option(0.2, "the same share at which RL023 is a warning"),
    }

    def check(self, model, analysis):
        """Nothing from a file alone: RL023 judges a measurement."""
        return ()

    # -- the judgment

    def judge(self, result) -> Judgment | None:
        """The verdict on ``result.twin`` (see Formula); None without a twin."""
        twin = getattr(result, "twin", None)
        if twin is None:
            return None
        if not twin.removed:
            return Judgment("nothing-removed", "the model has no penalty and no weight decay: the twin is the "
                                               "same run")
        metric = TwinMetric(twin, result)
        values = {"steps": twin.budget.steps, "budget_reason": twin.budget.reason, "metric": metric.name,
                  "synthetic_data": twin.synthetic, "removed": list(twin.removed), **metric.values(),
                  **_evidence(result)}
        where = _where(result, twin)
        return self._divergence(twin, metric, where, values) or self._comparison(result, metric, where, values)

    def learned_as_well(self, result, judgment: Judgment) -> bool:
        """True when, on real held-back data, the penalized run ended as
        well as its twin where it was judged: ``similar`` or ``better``; or
        ``stalled`` and recovered to within ``twin-gap-warning`` when that
        length is the user's training's (``--epochs``, ``--steps``, the
        steps a trained file records): a training of that length ends there
        (see "Errors that yield to the twin")."""
        twin = getattr(result, "twin", None)
        if twin is None or twin.synthetic or not twin.held_out:
            return False
        if judgment.label in ("similar", "better"):
            return True
        gap = judgment.values.get("gap")
        return (judgment.label == "stalled" and not twin.budget.early_stop and gap is not None
                and gap < self.thresholds["twin-gap-warning"])

    def _divergence(self, twin, metric: TwinMetric, where: str, values: dict) -> Judgment | None:
        pen, ref = twin.penalized, twin.unregularized
        pen_div, ref_div = _diverged(pen), _diverged(ref)
        if pen_div and ref_div:
            # review 75, 3: after 14 of 150 steps a loss spike the twin recovered from in a longer run
            return Judgment("both-diverged", f"{where}: both runs diverged, the unregularized twin too{_cut(twin)}: "
                                             f"the penalty is not what fails (look at the learning rate)", None, values)
        if pen_div:
            m_ref = metric.margin(ref)
            twin_did = (f"stayed finite but did not learn either ({metric.show(ref)}{metric.context()})"
                        if m_ref is not None and m_ref < metric.learned else
                        f"reached {metric.show(ref)}{metric.context()}")
            return Judgment("diverged", f"{where}: the penalized run diverged ({_diverge_text(pen)}) while its "
                                        f"unregularized twin {twin_did}", Severity.ERROR, values)
        return None

    def _comparison(self, result, metric: TwinMetric, where: str, values: dict) -> Judgment:
        twin = result.twin
        pen, ref = twin.penalized, twin.unregularized
        m_pen, m_ref = metric.margin(pen), metric.margin(ref)
        values.update({"margin_penalized": m_pen, "margin_unregularized": m_ref})
        if m_ref is None or m_pen is None:
            return Judgment("not-measured", f"{where}: no {metric.name} to compare", None, values)
        if m_ref < metric.learned or m_ref <= 0:
            return Judgment("twin-did-not-learn", f"{where}: the unregularized twin did not learn either "
                                                  f"({metric.show(ref)}{metric.context()}; {metric.criterion()})"
                                                  f"{_unlearned(twin, values)}: no verdict on the penalty",
                            None, values)
        gap = values["gap"] = (m_ref - m_pen) / m_ref
        # each the mean of the run's last FINAL_RECORDS records (the curves' last row is one of them)
        both = (f"the penalized run reached {metric.show(pen)}, its unregularized twin {metric.show(ref, False)}"
                f"{metric.context()}, means of their last {FINAL_RECORDS} records")
        if m_pen <= metric.collapsed:
            severity = Severity.WARNING if twin.synthetic else Severity.ERROR
            stale = _stale_statistics(twin, pen, len(pen.step) - FINAL_RECORDS, len(pen.step) - 1, values)
            return Judgment("collapsed", f"{where}: {both}: the penalized run stayed {metric.trivial()}{stale}",
                            severity, values)
        level = self.level(gap, "twin-gap-warning", "twin-gap-error")
        stall = _stall(metric, pen, ref, self.thresholds["twin-gap-error"])
        if stall is not None and level is not Severity.ERROR:
            first, last = pen.step[stall[0]], pen.step[stall[1]]
            values["stalled_steps"] = [first, last]
            stale = _stale_statistics(twin, pen, stall[0], stall[1], values)
            at_chance = all((metric.margin_at(pen, i) or 0.0) <= metric.collapsed
                            for i in range(stall[0], stall[1] + 1))
            values["stalled_at_chance"] = at_chance
            sat = (f"sat {metric.trivial()}" if at_chance else
                   f"lost at least {pct(self.thresholds['twin-gap-error'])} of its twin's margin")
            ended = ("then recovered" if level is None else
                     f"and ended {pct(gap)} of the twin's margin short (a {level.value} by itself)")
            window = f"ends {metric.trivial()}" if at_chance else "ends that far short"
            return Judgment("stalled", f"{where}: the penalized run {sat} from step {g(first)} to {g(last)}"
                                       f"{_in_epochs(result, first, last, values)} while its twin had learned, "
                                       f"{ended}: {both}; a training stopped in that window {window} "
                                       f"(--epochs E, your training's length, judges it there){stale}",
                            Severity.WARNING, values)
        if level is not None:
            option = "twin-gap-error" if level is Severity.ERROR else "twin-gap-warning"
            levels = f"{level.value} from {pct(self.thresholds[option])}"
            if level is Severity.WARNING:  # say where the error starts, too
                levels += f", error from {pct(self.thresholds['twin-gap-error'])}"
            message = f"{where}: {both}: it lost {pct(gap)} of the twin's margin ({levels})"
            return Judgment("worse", message, Severity.WARNING if twin.synthetic else level, values)
        if gap <= -self.thresholds["twin-gap-warning"]:
            return Judgment("better", f"{where}: {both}: the penalty helps on the held-back data", None, values)
        return Judgment("similar", f"{where}: {both}: within {pct(self.thresholds['twin-gap-warning'])} of "
                                   f"each other", None, values)

    # -- the remedy

    def fix(self, result) -> Fix | None:
        """The smallest scale RL001, RL003 and RL010 suggest (see Fix)."""
        candidates = [self._lambda_fix(result), self._decay_fix(result), *self._activity_fixes(result)]
        parts: list[Fix] = [p for p in candidates if p is not None and p.changes]
        if not parts:
            return _fallback(result)
        changes = tuple(_at_least_a_step(c) for p in parts for c in p.changes)
        aim = "; ".join(dict.fromkeys(p.aim for p in parts))
        if changes != tuple(c for p in parts for c in p.changes):
            aim += f" (each at least {g(1 / LEAST_STEP, 2)}x below the value measured to hurt)"
        return Fix(aim, changes)

    def _lambda_fix(self, result) -> Fix | None:
        """Every weight lambda scaled by the smaller of RL001's scale (the
        whole measured penalty counted) and the scale that brings a coupled
        SGD shrink ``2*lr*l2/(1-mu)`` to RL003's safe per-step shrink."""
        from reglint.rules.rl001_penalty_dominates_loss import lambda_changes

        rows = [r for r in result.variables if r.regularizer is not None]
        if not rows:
            return None
        from reglint.rules.rl001_penalty_dominates_loss import PenaltyDominatesLoss

        rl001 = PenaltyDominatesLoss(self.user_thresholds)
        scale, aims = 1.0, []
        rho = result.weight_penalty_ratio(include_invariant=True)
        suggested = rl001.fix(rows, rho) if rho and math.isfinite(rho) else None
        if suggested is not None and rl001.aim() < rho:
            scale, aims = rl001.aim() / rho, [f"RL001: {suggested.aim}"]
        opt, lr = result.optimizer or {}, _lr(result)
        l2 = max(((r.regularizer or {}).get("l2") or 0.0 for r in rows), default=0.0)
        from reglint.rules.rl003_weight_decay_too_strong import WeightDecayTooStrong

        safe = WeightDecayTooStrong(self.user_thresholds).safe_shrink(None)
        if l2 and lr and opt.get("family") == "sgd":
            shrink = 2 * lr * l2 / (1 - float(opt.get("momentum") or 0.0))
            if shrink > safe and safe / shrink < scale:
                scale = safe / shrink
                aims.append(f"RL003: a per-step shrink 2*lr*l2/(1-mu) of at most {g(safe)}")
        if scale >= 1:
            return None
        return Fix("; ".join(aims), lambda_changes(rows, scale))

    def _decay_fix(self, result) -> Fix | None:
        """RL003's weight_decay for its safe per-step shrink."""
        wd, lr = (result.optimizer or {}).get("weight_decay") or 0.0, _lr(result)
        from reglint.rules.rl003_weight_decay_too_strong import WeightDecayTooStrong

        rl003 = WeightDecayTooStrong(self.user_thresholds)
        safe = rl003.safe_shrink(None)
        if not (wd and lr and lr * wd > safe):
            return None
        suggested = rl003.fix(wd, safe / lr)
        return Fix(f"RL003: {suggested.aim}", suggested.changes) if suggested is not None else None

    def _activity_fixes(self, result) -> list[Fix]:
        """RL010's activity lambda for each measured activity penalty above its aim."""
        from reglint.rules.rl010_activity_regularizer_scale import ActivityRegularizerScale

        rl010 = ActivityRegularizerScale(self.user_thresholds)
        aim = 0.5 * rl010.thresholds["activity-ratio-warning"]
        out = []
        for lp in result.layer_penalties:
            current = (lp.regularizer or {}).get("l2") or (lp.regularizer or {}).get("l1")
            ratio = lp.penalty / result.data_loss if result.data_loss else math.inf
            if lp.kind == "activity" and current and ratio > aim:
                suggested = rl010.fix(lp.layer, current, aim / ratio)
                out.append(Fix(f"RL010: {suggested.aim}", suggested.changes))
        return out

    # -- measured

    # -- the fix, measured

    def next_trial(self, result) -> list[Change] | None:
        """The changes to measure next (``profile.fix_trial`` runs them),
        None when done: on an error or a warning, first the formula's fix;
        if that run still trails its twin by ``twin-gap-warning``, the same
        changes one decade lower; at most MAX_TRIALS. Never on synthetic
        data, where the comparison says little."""
        judgment = self.judge(result)
        twin = getattr(result, "twin", None)
        if judgment is None or judgment.severity is None or twin is None or twin.synthetic or not twin.held_out:
            return None
        if not twin.trials:
            fix = self.fix(result)
            changes = [c for c in fix.changes if c.suggested is not None] if fix is not None else []
            return changes or None
        last = twin.trials[-1]
        if self.trial_passed(result, last) or len(twin.trials) >= MAX_TRIALS:
            return None
        return [Change(c.parameter, c.current, (c.suggested or 0.0) * FALLBACK_SCALE, layer=c.layer, target=c.target)
                for c in last.changes]

    def trial_gap(self, result, trial) -> float | None:
        """The share of the twin's margin the trial's run lost at the lowest
        of its last FINAL_RECORDS records (inf: it diverged; None: no margin
        to compare): a training stopped at any of them keeps what the fix
        promises (review 61, 1: a BatchNorm net's trial swung 0.78-0.91 over
        its last records; their mean passed, and two of three real trainings
        at that value lost 28-31% of the margin)."""
        if _diverged(trial.run):
            return math.inf
        metric = TwinMetric(result.twin, result)
        m_ref = metric.margin(result.twin.unregularized)
        count = len(getattr(trial.run, metric.series) or [])
        last = [metric.margin_at(trial.run, i) for i in range(max(1, count - FINAL_RECORDS), count)]
        if m_ref is None or not last or None in last or m_ref <= 0:
            return None
        return (m_ref - min(m for m in last if m is not None)) / m_ref

    def trial_passed(self, result, trial) -> bool:
        """Within ``twin-gap-warning`` of the twin's margin; where the twin
        did not learn (the divergence is the finding), a trial that stayed
        finite (review 61, 2)."""
        if trial.skipped:
            return False
        if not TwinMetric(result.twin, result).has_learned(result.twin.unregularized):
            return not _diverged(trial.run)
        gap = self.trial_gap(result, trial)
        return gap is not None and gap < self.thresholds["twin-gap-warning"]

    def _trials(self, result, fix: Fix | None) -> tuple[Fix | None, str, str | None, list[dict]]:
        """(the fix to report, a sentence for the message, the remedy, the
        trials' numbers for ``values``) once fixes were measured."""
        twin = result.twin
        metric = TwinMetric(twin, result)
        rows, told = [], []
        learned = metric.has_learned(twin.unregularized)
        for trial in twin.trials:
            gap = self.trial_gap(result, trial)
            rows.append({"changes": [c.to_dict() for c in trial.changes], "gap": gap,
                         "passed": self.trial_passed(result, trial), "not_applied": list(trial.skipped)})
            values = _changes_text(trial.changes)
            reached = ("diverged" if gap == math.inf else
                       f"stayed finite ({metric.show(trial.run)})" if not learned else  # review 63, 8
                       f"reached {metric.show(trial.run)}, {pct(max(gap, 0.0))} of the twin's margin lost at the "
                       f"lowest of its last {FINAL_RECORDS} records" if gap is not None else "could not be compared")
            told.append(f"{values}: {reached}")
        passed = next((t for t in twin.trials if self.trial_passed(result, t)), None)
        sentence = f"; measured on the same batches with {'; then '.join(told)}"
        if passed is not None:
            aim = (f"measured: within {pct(self.thresholds['twin-gap-warning'])} of the unregularized twin's margin on "
                   "the held-back slice" if learned else
                   "measured: the run stayed finite, as the unregularized twin did")
            measured = Fix(aim, tuple(passed.changes))
            return measured, sentence, f"{measured.describe()} (measured on your data)", rows
        if twin.trials_note and not twin.trials:
            return fix, f"; {twin.trials_note}", f"{fix.describe()}, then profile again" if fix else None, rows
        lowest = twin.trials[-1].changes
        removal = _removal(result)
        if twin.trials_note:  # review 74, 5: the next trial did not fit the time budget; say so, not "every value"
            sentence += f"; {twin.trials_note}"
        tried = "the value tried" if len(twin.trials) == 1 else "every value tried"
        remedy = (f"{tried} still trails the twin: remove the penalty (its unregularized twin trained), "
                  f"or go below {_changes_text(lowest)} and profile again" if learned else
                  f"every value tried still diverged: remove the penalty (its unregularized twin stayed finite, though "
                  f"it did not learn either at these optimizer settings), or go below {_changes_text(lowest)} and "
                  "profile again")
        return removal, sentence, remedy, rows

    def check_measured(self, result, report):
        judgment = self.judge(result)
        if judgment is None or judgment.severity is None:
            return
        fix = self.fix(result)
        remedy = f"{fix.describe()}, then profile again" if fix is not None and fix.changes else None
        values = {**judgment.values, "verdict": judgment.label}
        message = judgment.message
        twin = result.twin
        if twin is not None and (twin.trials or twin.trials_note):
            fix, sentence, remedy, values["fix_trials"] = self._trials(result, fix)
            message += sentence
        if "stale_moving_statistics" in values:  # review 67, 6: the remedy that keeps the trained weights
            remedy = (f"{remedy}; or " if remedy else "") + \
                "re-estimate BatchNorm's moving statistics on training data before saving"
        yield self.finding(message, severity=judgment.severity, target="penalty", fix=fix,
                           remedy=remedy, values=values, measured=True)


# ---------------------------------------------------------------------------
# the stall and the runs' ends


def _stall(metric: TwinMetric, pen, ref, lost: float) -> tuple[int, int] | None:
    """(first, last record index) of the longest stretch of at least
    STALL_RECORDS records, before the final ones, in which the twin had
    learned and the penalized run was at chance or had lost at least
    ``lost`` of the twin's margin (review 50: a MobileNet block under AdamW
    sat at 0.21 against a chance of 0.13, 85-91% of the margin lost, for
    the whole stretch a 540-step training stopped in, and no stall was
    named because it was not within 0.05 of chance)."""
    best, start = None, None
    for i in range(1, len(pen.step) - FINAL_RECORDS + 1):
        m_pen, m_ref = metric.margin_at(pen, i), metric.margin_at(ref, i)
        at_chance = m_pen is not None and m_ref is not None and m_ref >= metric.learned and (
            m_pen <= metric.collapsed or (m_ref - m_pen) / m_ref >= lost)
        if at_chance and start is None:
            start = i
        if start is not None and (not at_chance or i == len(pen.step) - FINAL_RECORDS):
            end = i - 1 if not at_chance else i
            if end - start + 1 >= STALL_RECORDS and (best is None or end - start > best[1] - best[0]):
                best = (start, end)
            start = None
    return best


def _in_epochs(result, first: int, last: int, values: dict) -> str:
    """Steps ``first..last`` in the unit a training is planned in: epochs of
    ``--samples`` examples, else every example in ``--data``, ``ceil(examples / batch)`` steps each, as
    ``fit`` and ``--epochs`` count them (review 50: the examples the twin
    trained on, four fifths of them, named epochs 2.3-14 where ``--epochs``
    counts 1.9-11.2); '' when the data's size is not known (the synthetic
    batch)."""
    data = result.data or {}
    examples = data.get("epoch_samples") or data.get("samples") or data.get("train_samples")  # profile --samples first
    batch = data.get("batch_size")
    if not examples or not batch:
        return ""
    per_epoch = math.ceil(examples / batch)
    span = [first / per_epoch, last / per_epoch]
    values["stalled_epochs"] = span
    return (f" (epochs {g(span[0], 2)} to {g(span[1], 2)} of --epochs' count, {g(per_epoch)} steps each: "
            f"{g(examples)} examples, batch {g(batch)})")


def _stale_statistics(twin, pen, first: int, last: int, values: dict) -> str:
    """Why a penalized run with BatchNorm sits at chance on the held-back
    slice while it fits its own batches (records ``first..last``): its
    training-batch loss, computed with the batches' statistics, at most
    STALE_FIT of the constant predictor's, names BatchNorm's moving
    statistics (see Formula); else ''."""
    stats, trivial = twin.moving_statistics, (twin.held_out or {}).get("trivial_loss")
    losses = [v for v in pen.data_loss[max(first, 1):last + 1] if v is not None and math.isfinite(v)]
    if twin.synthetic or not stats or not trivial or not losses:
        return ""
    fit = sum(losses) / len(losses)
    if fit > STALE_FIT * trivial:
        return ""
    window = 1.0 / (1.0 - stats["momentum"]) if stats["momentum"] < 1 else math.inf
    values["stale_moving_statistics"] = {"training_batch_loss": fit, "constant_predictor_loss": trivial,
                                         "momentum": stats["momentum"], "layers": list(stats["layers"])}
    return (f"; meanwhile it fit its training batches (loss {g(fit)} with each batch's own statistics, against "
            f"the constant predictor's {g(trivial)}): BatchNorm's moving statistics (momentum "
            f"{g(stats['momentum'])}, an average over about {g(window)} steps) lag kernels that the decay shrinks "
            f"faster than that: the network fits but predicts from stale statistics, and so would a model saved "
            f"then. Lower the decay on BatchNorm-fed kernels, train past the window, or re-estimate the "
            f"statistics on training data before saving")


def _unlearned(twin, values: dict) -> str:
    """Why the twin may not have learned where a longer or fuller run would
    (review 74, 1 and 3: ResNet50 and a transformer cut to one step of 150,
    BatchNorm CNNs fitting their batches at chance on the held-back slice,
    each read "did not learn either"): the time budget cut the steps asked
    for; the twin fit its training batches with their own statistics while
    BatchNorm's moving ones lag. '' otherwise."""
    budget, ref = twin.budget, twin.unregularized
    taken = ref.step[-1] if ref.step else 0
    if budget.asked:
        values["twin_unlearned_reason"] = "time-budget"
        return _cut(twin)
    stats, trivial = twin.moving_statistics, (twin.held_out or {}).get("trivial_loss")
    fit = [v for v in ref.data_loss[1:][-FINAL_RECORDS:] if v is not None and math.isfinite(v)]  # past step 0
    if twin.synthetic or not stats or not trivial or not fit or sum(fit) / len(fit) > STALE_FIT * trivial:
        return ""
    values["twin_unlearned_reason"] = "stale-moving-statistics"
    window = 1.0 / (1.0 - stats["momentum"]) if stats["momentum"] < 1 else math.inf
    return (f"; yet it fit its training batches (loss {g(sum(fit) / len(fit))} with each batch's own statistics, "
            f"against the constant predictor's {g(trivial)}): BatchNorm's moving statistics (momentum "
            f"{g(stats['momentum'])}, an average over about {g(window)} steps) still lag after {g(taken)} steps; "
            f"a longer run (--epochs) judges where they have caught up")


def _cut(twin) -> str:
    """``, after N steps of the M asked for, cut to fit --time-budget T s
    (...)``: where the budget cut the steps asked for; '' otherwise."""
    budget = twin.budget
    if not budget.asked:
        return ""
    taken = twin.unregularized.step[-1] if twin.unregularized.step else 0
    need = budget.seconds_needed()
    return (f", after {g(taken)} steps of the {g(budget.asked)} asked for, cut to fit --time-budget "
            f"{g(budget.time_budget)} s" + (f" (both runs need about {g(need, 2)} s for their steps and records, "
                                            f"loading besides: raise it)" if need else ""))


def _diverge_text(run) -> str:
    if run.diverged_at is not None:
        return f"non-finite at step {g(run.diverged_at)}"
    return f"training loss {g(_first(run, 'data_loss'))} -> {g(_final(run, 'data_loss'))}"


def _where(result, twin) -> str:
    data = result.data or {}
    if twin.synthetic:
        source = "synthetic data (one batch of random labels)"
    elif data.get("held_out"):
        source = f"{data.get('path')}, {g(data.get('held_out'))} examples held back"
    else:
        source = f"{data.get('path')}, too few examples to hold any back (judged on the training loss)"
    return f"measured over {g(twin.budget.steps)} steps {result.start.phrase} on {source}"


def _evidence(result) -> dict[str, Any]:
    """The gradient-ratio measurements behind the verdict."""
    ratios = sorted(((f"{r.layer}/{r.variable}", r.ratio) for r in result.variables if r.grad_penalty_norm),
                    key=lambda kv: -kv[1] if math.isfinite(kv[1]) else -math.inf)
    return {"penalty_ratio": result.weight_penalty_ratio(),
            "penalty_ratio_all": result.weight_penalty_ratio(include_invariant=True),
            "gradient_ratios": dict(ratios[:5]), "outcome": result.outcome.label}


def _changes_text(changes) -> str:
    """``kernel lambda 0.1 -> 0.0482 in gru, weight_decay 0.1 -> 0.01``, short."""
    parts: dict[tuple[str, str, float | None], list[str]] = {}
    for c in changes:
        what = "weight_decay" if c.parameter == "weight_decay" else f"{c.target} {c.parameter}"
        parts.setdefault((what, g(c.current), c.suggested), []).append(c.layer or "")
    shown = []
    for (what, current, suggested), layers in parts.items():
        named = [x for x in layers if x]
        where = f" in {', '.join(named[:3])}{' and more' if len(named) > 3 else ''}" if named else ""
        shown.append(f"{what} {current} -> {g(suggested)}{where}")
    return ", ".join(shown)


def _removal(result) -> Fix:
    """What the twin ran: every weight and activity regularizer removed and
    the optimizer's weight_decay at 0. Review 50: when every value tried
    still trailed the twin, the fix kept the first one, which the profile
    had just measured to fail (and real trainings at it collapsed); the
    only setting measured to train is the twin's. Review 52: all of it,
    not only what the trials changed."""
    out: dict[tuple, Change] = {}
    for row in result.variables:
        reg = row.regularizer or {}
        current = reg.get("l2") or reg.get("l1")
        if row.regularizer is not None:
            target = row.variable.split("/")[-1]
            out.setdefault((row.layer, target), Change("regularizer", current, None, layer=row.layer, target=target))
    for lp in getattr(result, "layer_penalties", []) or []:
        if lp.kind == "activity" and lp.regularizer:
            current = lp.regularizer.get("l2") or lp.regularizer.get("l1")
            out.setdefault((lp.layer, "activity"), Change("regularizer", current, None, layer=lp.layer,
                                                          target="activity"))
    wd = (result.optimizer or {}).get("weight_decay")
    if wd:
        out[("optimizer", "weight_decay")] = Change("weight_decay", wd, 0.0, target="optimizer")
    return Fix("measured: the unregularized twin's settings (every value tried trailed it)", tuple(out.values()))


def _lr(result) -> float:
    opt = result.optimizer or {}
    return opt.get("learning_rate_peak") or opt.get("learning_rate") or 0.0


def _at_least_a_step(change: Change) -> Change:
    """``change`` at ``LEAST_STEP`` of its current value where it asks for
    less of a cut: the profile measured damage at the current value, and a
    trial a few percent below it can only repeat that."""
    current, suggested = change.current, change.suggested
    if not isinstance(current, (int, float)) or suggested is None or current <= 0 or suggested <= current * LEAST_STEP:
        return change
    return dataclasses.replace(change, suggested=current * LEAST_STEP)


def _fallback(result) -> Fix | None:
    from reglint.rules.rl001_penalty_dominates_loss import lambda_changes

    rows = [r for r in result.variables if r.regularizer is not None]
    wd = (result.optimizer or {}).get("weight_decay") or 0.0
    changes = list(lambda_changes(rows, FALLBACK_SCALE))
    for lp in result.layer_penalties:
        current = (lp.regularizer or {}).get("l2") or (lp.regularizer or {}).get("l1")
        if lp.kind == "activity" and current:
            changes.append(Change("lambda", current, current * FALLBACK_SCALE, layer=lp.layer, target="activity"))
    if wd:
        changes.append(Change("weight_decay", wd, wd * FALLBACK_SCALE, target="optimizer"))
    if not changes:
        return None
    return Fix("one decade lower: no rule's formula asks for less, the twin measured the damage", tuple(changes))
