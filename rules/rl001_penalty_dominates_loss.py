"""# penalty-dominates-loss (RL001)

## What it does
Adds up the weight penalties the model's regularizers produce at a fresh
initialisation and compares the sum with the typical scale of the data loss
(the loss of a chance-level predictor: ``ln C`` for C-class cross-entropy,
``ln 2`` for binary, the target variance for MSE). Reports the ratio, each
layer's share, and the lambda that would bring the penalty to the data
loss's scale (the Fix's aim, a ratio of 1, well under the warning level).

## Why is this bad?
Keras adds the plain sum of the penalties to the batch-mean data loss
(``L2`` is ``lambda * sum(w**2)``, no 1/2, no division by the number of
weights or examples). The penalty therefore grows with the layer's width
while the data loss does not. Once the penalty at initialisation-scale
weights is as large as the whole data loss, the trivial solution (kernels at
zero, predictions at chance) scores better than any fit whose weights are
of the size training needs; the network collapses to chance, or spends its
training shrinking weights instead of learning (CS231n: "don't let the
regularization overwhelm the data").

This is also the answer to "should lambda shrink as the model grows?": the
per-weight gradient ``2*lambda*w`` does not depend on the weight count, but
the total penalty does (for glorot kernels it grows with the harmonic-mean
width ``2*c_in*c_out/(c_in+c_out)``), against a data loss that does not.
``reglint explain`` shows the decomposition per layer.

## Example
A 784-512-512-10 MLP with ``kernel_regularizer=L2(0.01)`` (Keras' ``"l2"``
shortcut) on every layer: sum(w^2) at init is about 1150, so the penalty is
11.5 against ln 10 = 2.30, just under five times the data loss: no finding
yet. ``L2(0.02)`` makes it 10x: a warning (such runs mostly ended degraded
in calibration); ``L2(0.05)``, 25x, is still a warning, because each
weight's pull ``2*l2`` = 0.1 is under the error's 0.4; ``L2(0.2)``, 100x
with a pull of 0.4: an error (each checked on the model Keras 3.15 saves,
review 39).

## Use instead
``L2(1e-3)`` or less for that model (reglint prints the exact value for
yours), or decoupled ``weight_decay`` in the optimizer.

## Options
- ``penalty-ratio-error`` (default 18): ratio at which the finding is an error.
- ``penalty-ratio-warning`` (default 5): ratio at which it is a warning.
- ``penalty-pull-error`` (default 0.4): the error also needs the penalty's pull per unit of weight,
  ``2*l2 + l1/sigma_init``, at this level (penalty-weighted over the tensors the error judges); twice
  it where every output's loss is mean squared error under an adaptive optimizer
  (``estimate.loss_scale.data_gradient_scale``:
  MSE's gradient ``2*(p - y)`` is twice cross-entropy's; ``bench/regression_probe.py``, 2026-12-03: MSE
  MLPs at L2 0.3, a pull of 0.6, stayed off chance 12 of 12 under Adam and RMSprop, from L2 1 collapsed 24
  of 24; the calibration grids' one RL001 error this moved, diabetes under Adam at L2 0.3, had degraded);
  ``2*sqrt(--target-var)`` where that is larger than 1; behind a sigmoid or softmax, ``2*v`` of it with ``v``
  the output's bound on the target variance per unit (0.25, ``(C-1)/C^2``; not ``--target-var``, which is
  ``p*(1 - p)`` only for 0/1 targets: review 55's sigmoid regressor on targets of variance 0.01), where MSE's
  gradient on a logit, ``2*(p - y)*p*(1 - p)``, is smaller than cross-entropy's (``bench/bounded_mse_probe.py``,
  2026-12-03, Adam and RMSprop: a digits autoencoder and a 10-class softmax-MSE classifier collapsed at every
  L2 from 0.01, breast cancer's sigmoid-MSE classifier from 0.1 under RMSprop and at 0.3 under Adam; at the
  scaled gate RL001 errs on 15 of those runs, 14 collapsed and one, breast cancer under Adam at L2 0.1, lost a
  third of its margin; review 53's autoencoder at L2 0.1 stayed at R^2 0 in 3 of 3 seeds).
- Context: ``--loss-scale``, ``--classes``, ``--target-var`` refine the data-loss scale.

## Formula
``rho = sum_t E[P_t(w_init)] / L_chance`` over trainable, regularized tensors
that can pull the function toward zero. Left out, each for a reason the
graph shows:

- a kernel feeding a normalization layer can shrink freely without changing
  the function (RL009, RL021 judge it);
- a normalization layer's gamma/beta whose scale the next layers can take
  over: every path from its output reaches, through ReLU, pooling, dropout
  or reshapes, a free kernel (trainable, unpenalized or itself feeding a
  normalization) or another normalization; a residual stream all of whose
  addends carry penalized gammas counts as one scale (RL008). A gamma whose
  scale reaches a penalized kernel, attention with penalized projections, a
  saturating activation, an ``Add`` with an unscaled branch or an output *is*
  counted;
- biases and beta: their penalty pulls them to zero, where such offsets
  start, so reaching its minimum leaves an ordinary network whatever the
  penalty's size (an LSTM's unit forget bias of 1 included).

``E[sum w^2] = n * Var(w)`` with Keras' VarianceScaling variances; L1 uses
``E[sum |w|]``. The error is judged on the part of ``rho`` whose tensors reach
an output without passing a normalization layer (``penalty_ratio_unnormalized``):
behind a transformer's final LayerNorm the prediction is computed from
normalized features whatever the penalty does to their scale, so that part
limits capacity (the warning) but on the calibration grids' transformers did
not take the prediction to chance on its own: they degraded at rho 22-1007
far more often than they collapsed. Review 67's TCN, U-Net and language
model did collapse at 199x, 33x and 16x, most of it on branches that join
a residual ``Add`` or a concatenated skip before the normalization; counting
those as not behind it cost the grids' precision 87.7% -> 75.3% for recall
71.9% -> 78.9% (bench/CALIBRATION.md, "Six more families"), so they stay a
warning that ``reglint profile --data`` settles. ``reglint profile`` judges its measured ratio (the penalties at
the saved weights against the data loss on the user's batch) the same way:
one ``severity_of`` for both. The error also needs the penalty to pull each
weight hard enough: ``k = 2*l2 + l1/sigma_init`` (penalty-weighted over the
same tensors), the penalty's gradient per unit of weight. ``rho`` at
initialisation grows with the layers' widths at a fixed lambda (Glorot:
``E[sum w^2]`` is about the harmonic mean of fan-in and fan-out), while a
layer's data gradient per weight scales with its weights' size, so whether
the pull wins does not depend on the width; a wide layer's large penalty at
initialisation is usually shed when ``k`` is small (a warning, not a
promise: the width check's L2 0.1 degraded 6 of 18 runs). The suggested lambda is
``lambda * min(1, warning/2) / rho``: the penalty at most the data loss.

## Fix
Aim: the penalty at ``min(1, warning/2)`` of the data-loss scale (100% by
default). Every counted lambda is multiplied by ``aim / rho``; the finding's
``fix.changes`` lists each layer's tensor with its current and suggested
factor. ``reglint explain`` and the HTML chart print the same values, and
also the largest multiplier that stays under the warning level
(``warning / rho``).

## Thresholds and calibration
``rho = 1`` is the break-even of the MAP argument (MacKay 1992; Bishop, PRML §3.3), but
training does not collapse there: the data gradient grows as the weights
learn, and how far it can hold the penalty off depends on the data. On the
calibration grid (``python bench/calibrate.py report``, 678 real trainings;
bench/CALIBRATION.md) the highest rho of a healthy run on the fit split
(digits, breast cancer, diabetes) is 15.1; from 15.9 to 18.6 runs
collapsed or lost R^2 (degraded), and from 18.7 every run collapsed. Error
at **18**: no healthy fit run above it; on the held-out datasets (wine, a
20-class synthetic set) it flags wrecked runs with 98% precision and 0.6%
false alarms on healthy ones. Warning at **5**: on
the fit split 90% of runs with rho >= 5.3 ended degraded or worse. Below
18 a collapse is possible on hard data (the 20-class set collapsed from rho
3.9; breast cancer was healthy at 12.3), which no file can tell: run
``reglint profile --data`` to measure it on yours.

The pull gate at **0.4** (L2 0.2; the grids' lambdas put 0.2 and 0.6 on
either side) comes from ``python bench/width_check.py``: ReLU MLPs 32 to
512 wide on breast cancer, digits and wine under SGD and Adam, where the
outcome followed lambda at every width (L2 0.03: 18 of 18 healthy; 0.1: 12
healthy, 6 degraded; 0.3: 15 collapsed, 3 degraded) while ``rho`` grew
with the width; without the gate RL001 erred on 8 of the 30 healthy runs
there (128- and 512-wide at L2 0.03-0.1, rho 25-83), with it on none and
still on 13 of 15 collapses. On the calibration grids it keeps every
held-out error and drops two fit-split catches (the 512-512-512 MLP at L2
0.1 on digits, rho 49, collapsed under SGD and Adam).

The modern grid (394 runs: residual CNNs with BatchNorm, pre- and post-norm
transformers, LSTM/GRU, embeddings) left the levels where they were and
shaped what is counted: residual gamma+beta penalties up to 115x the data
loss (breast, L2 1) stayed healthy under AdamW and RMSprop (no gamma run
wrecked outside SGD at lr 0.1, where wine stayed healthy at L2(1), 73x,
while digits collapsed at 0.03), so a jointly absorbable stream is not
counted; L2 up to 10 on LSTM and GRU biases (36 runs, penalty at the saved
weights up to 460x) never harmed training; pre-norm
transformers with L2 up to 0.3 on every kernel (ratio up to 59) degraded 12
of 30 runs and collapsed none, hence errors only on the unnormalized part.
Held out (wine, synth, the GRU and post-norm families), errors flag 2 of 13
wrecked modern runs with no false alarm; the misses were recurrent and
embedding models with L2 + weight decay at ratios 3-14 and runs whose
damage depends on the data (bench/CALIBRATION.md); the embedding models'
are RL025's errors now (a small table feeding penalized kernels: the ratio
at initialisation understates a penalty on weights that must grow).

## References
- Keras ``keras/src/regularizers/regularizers.py`` (L1, L2 definitions) and
  ``keras/src/trainers/trainer.py::compute_loss`` (penalties summed).
- CS231n, "Neural Networks Part 3": "Don't let the regularization overwhelm the data".
- Bishop, PRML §3.3; MacKay 1992 (the MAP view: lambda = 1/(2 sigma^2 N)).
"""

from __future__ import annotations

import math
from typing import Any

from reglint.engine.finding import Change, Fix, Severity, lambda_parameter
from reglint.engine.fmt import g, pct
from reglint.engine.measured import data_note, twin_harm, verdict
from reglint.engine.rule import Option, Rule
from reglint.engine.sweep import Curve


def remedy_ratio(warning: float) -> float:
    """The penalty ratio RL001's suggested lambda lands at: half the warning
    level, and never above break-even with the data loss."""
    return min(1.0, 0.5 * warning)


def lambda_changes(penalties: list[Any], scale: float) -> tuple[Change, ...]:
    """One change per (layer, tensor, factor, today's value): today's factor
    times ``scale``. A wrapper's tensors of one name with different factors
    (a Bidirectional whose backward layer differs) are two changes, told
    apart by their current value (review 49, 3: the forward one was
    dropped). ``penalties`` are ``TensorPenalty`` (static) or measured rows
    with the same ``layer_path``/``target``/``l1``/``l2`` meaning."""
    out: dict[tuple[str, str, str, float], Change] = {}
    for p in penalties:
        layer, target, l1, l2 = _tensor(p)
        for name, value in (("l1", l1), ("l2", l2)):
            if value:
                parameter = lambda_parameter(l1, l2, name)
                out.setdefault((layer, target, parameter, value),
                               Change(parameter, value, value * scale, layer=layer, target=target))
    return tuple(out.values())


def _tensor(p: Any) -> tuple[str, str, float, float]:
    if not isinstance(p.variable, str):  # static TensorPenalty (a measured row names its variable)
        return p.layer.path, p.variable.name.split("/")[-1], p.l1, p.l2
    reg = p.regularizer or {}
    return p.layer, p.variable.split("/")[-1], float(reg.get("l1") or 0.0), float(reg.get("l2") or 0.0)


class PenaltyDominatesLoss(Rule):
    code = "RL001"
    name = "penalty-dominates-loss"
    severity = Severity.ERROR
    summary = "The weight penalty at initialisation rivals or exceeds the data loss."
    predicts_outcome = True
    options = {
        "penalty-ratio-error": Option(18.0, "penalty / data-loss scale at which RL001 is an error"),
        "penalty-ratio-warning": Option(5.0, "penalty / data-loss scale at which RL001 is a warning"),
        "penalty-pull-error": Option(0.4, "the error also needs the penalty's pull per unit of weight, 2*l2 + "
                                          "l1/sigma_init (penalty-weighted over the tensors it judges), at this level"),
    }

    # -- the feature and the remedy, shared by check, check_measured and sweep

    @staticmethod
    def counted(analysis) -> list[Any]:
        """The penalties RL001 judges (see Formula)."""
        return [p for p in analysis.active_penalties() if p.penalty is not None]

    def severity_of(self, rho: float | None, rho_front: float | None,
                    pull: float | None = None, gradient_scale: float = 1.0) -> Severity | None:
        """A warning from the whole counted ratio, an error only from the part
        that reaches an output without passing a normalization, pulling each
        weight hard enough (``pull``, None: not known; against the gate times
        ``gradient_scale``, ``Analysis.data_gradient_scale``; Formula): one judgement
        for the static estimate and the measured ratio."""
        if rho is None:
            return None
        severity = self.level(rho, "penalty-ratio-warning")
        # a pull at the gate counts: weighted over tensors, L2 0.1 behind a sigmoid (pull 0.2, gate 0.4 x 0.5)
        # lands a rounding error either side of it
        if rho_front is not None and self.level(rho_front, "penalty-ratio-warning",
                                                "penalty-ratio-error") is Severity.ERROR \
                and (pull is None or pull >= self.thresholds["penalty-pull-error"] * gradient_scale * (1 - 1e-9)):
            severity = Severity.ERROR
        return severity

    def _weak_pull(self, rho_front: float, pull: float | None, severity: Severity,
                   gradient_scale: float = 1.0) -> str:
        """Why a ratio past the error level is a warning: each weight is
        pulled too weakly to be taken to zero (a wide layer's penalty at
        initialisation is large, what training must carry is not)."""
        if severity is Severity.ERROR or pull is None or rho_front < self.thresholds["penalty-ratio-error"]:
            return ""
        gate = g(self.thresholds["penalty-pull-error"] * gradient_scale)
        squared = (f" ({g(gradient_scale, 2)}x the gate: a squared error's gradient, 2*(p - y), is that much larger "
                   f"than cross-entropy's on these targets, and an adaptive optimizer weighs the two against each "
                   f"other)" if gradient_scale > 1 else
                   f" ({g(gradient_scale, 2)}x the gate: behind a sigmoid or softmax a squared error's gradient, "
                   f"2*(p - y)*p*(1 - p), is that much smaller than cross-entropy's on these targets, and an adaptive "
                   f"optimizer weighs the two against each other)" if gradient_scale < 1 else "")
        return (f"; its pull per unit of weight (2*l2 + l1/sigma = {g(pull, 2)}) is under {gate}{squared}: a "
                f"penalty this size comes from the layers' width, which training usually sheds "
                f"(a warning; `reglint profile --data` measures it on yours)")

    def aim(self) -> float:
        return remedy_ratio(self.thresholds["penalty-ratio-warning"])

    def fix(self, penalties: list[Any], rho: float) -> Fix | None:
        """Every counted lambda scaled so the ratio lands at ``aim()``."""
        if not rho or not math.isfinite(rho):
            return None
        scale = min(1.0, self.aim() / rho)
        return Fix(f"the penalty at {pct(self.aim())} of the data-loss scale (rho = {g(self.aim())})",
                   lambda_changes(penalties, scale))

    def sweep(self, model, analysis):
        penalties = self.counted(analysis)
        if not penalties:
            return []
        rho = sum(p.penalty for p in penalties) / analysis.loss_scale.value
        rho_front = front_ratio(analysis)
        fires = self.level(rho, "penalty-ratio-warning", "penalty-ratio-error") is not None
        lambdas = tuple(sorted({v for p in penalties for v in (p.l1, p.l2) if v}))
        # errors come from the tensors not behind a normalization, pulling hard enough: on rho's
        # axis that level is the larger of error * rho / rho_front and pull-error * rho / pull
        # (all three grow with the lambdas)
        pull = front_pull(analysis)
        error = self.thresholds["penalty-ratio-error"] * rho / rho_front if rho_front else None
        if error is not None and pull:
            error = max(error, self.thresholds["penalty-pull-error"] * analysis.data_gradient_scale * rho / pull)
        return [Curve(self.code, "penalty_ratio",
                      "rho = sum P_t(lambda) / L_chance over the tensors RL001 counts", "lambda",
                      slope=rho, offset=0.0, warning=self.thresholds["penalty-ratio-warning"],
                      error=error,
                      fix=min(1.0, self.aim() / rho) if fires and rho else None, lambdas=lambdas,
                      layers=tuple(dict.fromkeys(p.layer.path for p in penalties)))]

    # -- static

    def check(self, model, analysis):
        penalties = self.counted(analysis)
        if not penalties:
            return
        loss = analysis.loss_scale
        total = sum(p.penalty for p in penalties)
        rho = total / loss.value
        rho_front = front_ratio(analysis)
        pull = front_pull(analysis)
        scale_of_gradient = analysis.data_gradient_scale
        severity = self.severity_of(rho, rho_front, pull, scale_of_gradient)
        if severity is None:
            return
        fix = self.fix(penalties, rho)
        scale = min(1.0, self.aim() / rho)
        by_layer = _by_layer((p.layer.path, p.penalty) for p in penalties)
        n_weights = sum(p.n for p in penalties)
        lambdas = sorted({p.l2 or p.l1 for p in penalties if (p.l2 or p.l1)})
        safe = ", ".join(g(lmb * scale) for lmb in lambdas[:3])
        where = "at initialisation" if all(p.penalty_init is not None for p in penalties) else "at the saved weights"
        yield self.finding(
            f"the penalty {where} is {g(total)} over {g(n_weights)} regularized weights, "
            f"{g(rho, 2)}x the data-loss scale {g(loss.value)} ({loss.explanation}); "
            f"largest shares of the penalty: {_shares(by_layer, total)}{_left_out(analysis)}"
            f"{_behind(rho, rho_front, severity)}{self._weak_pull(rho_front, pull, severity, scale_of_gradient)}",
            remedy=f"scale every lambda by {g(scale, 2)} (now {', '.join(g(x) for x in lambdas[:3])} -> {safe}) "
                   f"to keep the penalty under {pct(self.aim())} of the data loss, or use decoupled weight_decay",
            severity=severity,
            target="penalty",
            fix=fix,
            values={
                "penalty_ratio": rho,
                "penalty_ratio_unnormalized": rho_front,
                "pull_per_weight": pull,
                "penalty_init": total,
                "data_loss_scale": loss.value,
                "regularized_weights": n_weights,
                "lambda_scale_factor": scale,
                "safe_lambdas": [lmb * scale for lmb in lambdas],
                "layer_shares": {path: v / total for path, v in by_layer.items()},
            },
        )

    # -- measured (reglint profile)

    def check_measured(self, result, report):
        """rho_m = sum_w R(w) / L with R the weight penalties RL001 counts and
        L the data loss measured on the probe batch."""
        rows = [r for r in result.variables if r.regularizer is not None and r.counted]
        if not rows:
            return
        rho = result.weight_penalty_ratio()
        rho_front = result.weight_penalty_ratio(front_only=True)
        srho = static_ratio(report)
        pull = front_pull(report.analysis) if report.analysis is not None else None
        gradient = report.analysis.data_gradient_scale if report.analysis is not None else 1.0
        measured = self.severity_of(rho, rho_front, pull, gradient)
        static = self.severity_of(srho, front_ratio(report.analysis) if srho is not None else None, pull, gradient)
        if measured is None and static is None:
            return
        total = sum(r.penalty for r in rows)
        by_layer = _by_layer((r.layer, r.penalty) for r in rows)
        static_text = f"static estimate {g(srho, 2)}" if srho is not None else "no static estimate"
        fix = self.fix(rows, rho) if measured is not None else None
        scale = min(1.0, self.aim() / rho) if rho and math.isfinite(rho) else None
        remedy = None
        if fix is not None and scale is not None:
            remedy = (f"scale every lambda by {g(scale, 2)} to bring the measured penalty under "
                      f"{pct(self.aim())} of the data loss, or use decoupled weight_decay")
        yield self.finding(
            f"measured penalty/data ratio {g(rho, 2)} ({static_text}): "
            f"{verdict(static, measured, report, twin_harm(result))}; weight penalty {g(total)} against a data "
            f"loss of {g(result.data_loss)} {data_note(result)}; largest shares of the penalty: "
            f"{_shares(by_layer, total) if total else '-'}{_behind(rho, rho_front, measured or Severity.INFO)}",
            severity=measured or Severity.INFO, target="penalty", remedy=remedy, fix=fix, measured=True,
            values={"penalty_ratio": rho, "penalty_ratio_unnormalized": rho_front,
                    "static_penalty_ratio": srho, "penalty": total,
                    "data_loss": result.data_loss,
                    "penalty_ratio_all": result.weight_penalty_ratio(include_invariant=True),
                    "layer_shares": {layer: v / total for layer, v in by_layer.items()} if total else {},
                    "lambda_scale_factor": scale, "synthetic_data": result.synthetic,
                    "outcome": result.outcome.label})


def front_ratio(analysis) -> float:
    """rho over the counted tensors that reach an output without passing a
    normalization layer: the part that can take the prediction to the
    trivial solution, and the only part that makes RL001 an error."""
    front = [p for p in PenaltyDominatesLoss.counted(analysis) if not p.behind_norm]
    return sum(p.penalty for p in front) / analysis.loss_scale.value


def front_pull(analysis) -> float | None:
    """The pull per unit of weight ``2*l2 + l1/sigma_init`` of the tensors
    ``front_ratio`` sums, weighted by their penalties; None where no
    initializer scale is known. Width-free: a layer's data gradient per
    weight scales with its weights' size, while ``rho`` at initialisation
    grows with the layers' widths (Thresholds)."""
    front = [p for p in PenaltyDominatesLoss.counted(analysis) if not p.behind_norm]
    weighted, total = 0.0, 0.0
    for p in front:
        if p.pull is None or not p.penalty:
            continue
        weighted += p.penalty * p.pull
        total += p.penalty
    return weighted / total if total else None


def _behind(rho: float, rho_front: float, severity: Severity) -> str:
    if rho_front >= rho * (1 - 1e-9):
        return ""
    return (f"; {g(rho - rho_front, 2)}x of it sits behind a normalization layer, which keeps the prediction's "
            f"scale: that part limits capacity, a warning here (under SGD, RL024 judges how fast it shrinks layers "
            f"in series)"
            if severity is not Severity.ERROR else "")


def static_ratio(report) -> float | None:
    """The static rho, recomputed so it exists below the warning level too."""
    analysis = getattr(report, "analysis", None)
    if analysis is None:
        return None
    penalties = PenaltyDominatesLoss.counted(analysis)
    if not penalties:
        return None
    return sum(p.penalty for p in penalties) / analysis.loss_scale.value


def _by_layer(pairs) -> dict[str, float]:
    out: dict[str, float] = {}
    for path, value in pairs:
        out[path] = out.get(path, 0.0) + value
    return out


def _shares(by_layer: dict[str, float], total: float) -> str:
    top = sorted(by_layer.items(), key=lambda kv: -kv[1])[:3]
    return ", ".join(f"{path} {pct(v / total)}" for path, v in top)


def _left_out(analysis) -> str:
    """Name what the model's full penalty holds that RL001 does not count,
    so a table total and this message never disagree silently."""
    invariant = sum(p.penalty or 0.0 for p in analysis.penalties if p.active and p.scale_invariant and not p.absorbed)
    absorbed = sum(p.penalty or 0.0 for p in analysis.penalties if p.active and p.absorbed)
    offsets = sum(p.penalty or 0.0 for p in analysis.penalties
                  if p.active and p.offset and not (p.absorbed or p.scale_invariant))
    parts = []
    if invariant:
        parts.append(f"{g(invariant)} on scale-invariant kernels (RL009)")
    if absorbed:
        parts.append(f"{g(absorbed)} on absorbed normalization gamma/beta (RL008)")
    if offsets:
        parts.append(f"{g(offsets)} on biases and beta (RL008)")
    return f"; not counted: {' and '.join(parts)}" if parts else ""
