"""# weights-collapsed (RL017)

## What it does
For a model saved after training (the file records optimizer steps taken),
reports a network whose normalization scales (gamma) a penalty drove to zero
on every path to the outputs (below), and compares each regularized kernel's saved ``sum(w^2)`` with its expected
value at initialisation, ``kappa = sum(w_saved^2) / E[sum(w_init^2)]``, and
reports when every regularized, non-scale-invariant kernel has shrunk far
below where it started. Under an optimizer ``weight_decay`` every trainable
kernel is decayed, regularizer or not, and all of them are judged (a
network whose only shrink is the optimizer's decay, every kernel near zero,
was silent before: review 9).

## Why is this bad?
That is the signature of a penalty that won: the network settled near the
trivial solution (kernels near zero, predictions near chance) instead of
fitting the data. Healthy, weakly regularized non-normalized nets end with
``sum(w^2)`` at 1.2-4.2 times init (measured on the calibration runs, bench/CALIBRATION.md); collapsed ones end
near zero in every layer.

## Example
An MLP trained with ``L2(1.0)`` under SGD whose kernels end at 0.1% of their
initial energy.

## Use instead
Retrain with a smaller lambda (RL001 gives one).

## Options
- ``collapse-ratio`` (default 0.01): kappa below which a kernel counts as collapsed.

## Formula
``kappa_t = sum(w_t^2) / (n_t * Var_init(w_t))`` per kernel, over the
kernels RL001 counts, and with a ``weight_decay`` every trainable kernel
that does not feed a normalization: biases, beta and absorbed gammas are left out (a
penalty that drives a bias to zero leaves an ordinary network), and so are
kernels feeding a normalization (their scale does not matter). The measured
check (``reglint profile``) tracks the same: regularized counted kernels,
else the regularized variables that are not offsets, else every kernel;
issue 15's false alarm was an LSTM with L2 10 on its biases whose bias norm
fell 79% in 30 steps while training learned.

## Thresholds and calibration
A kernel at 1% of its initial energy has shrunk tenfold in RMS; the
calibration grid's trained models (bench/CALIBRATION.md) show where
collapsed and healthy runs end.

Kernels of fewer than 8 weights are not judged: a single weight drawn at
initialisation is already below 1% of its expected square with probability
``P(|u| < 0.1/sqrt(3)) = 5.8%`` for a uniform draw on ``[-a, a]`` (Glorot
uniform) and ``P(|z| < 0.1) = 8%`` for a normal one, so a one-weight kernel
trained for one step was called collapsed (found by
bench/robustness_sweep.py); 8 normal draws whose squares sum below 1% of
their expectation have probability ``P(chi2_8 < 0.08)``, about 1e-7.

## Measured
``reglint profile`` reports the live version: in the short run from the
starting weights (the saved ones, or a fresh draw for a trained file) the
tracked kernels' norm fell while the data loss did not
improve (``collapsing``): an error. With ``--data``, the same run is scored
on a slice held back from training; when it ends at least 0.15 over chance
there (R^2-like 0.2: the calibration grid's "learned"; on data of one
dominant class half the headroom ``1 - chance``), the network still
separates the data with shrunken weights and small logits, and the finding
is a warning that says so. Over the calibration grids' profiles (the
classic grid at the default budget, the modern grid's three seeds at each
training's length; ``bench/profile_grid.py``), 6 runs got this error while
their penalized run had learned on the held-back data: 1 collapsed in real
training, 5 only degraded; on the fresh grid (families no level saw) 6
more, also 1 and 5. Where the held-back run had not learned (or had no
metric), the error marked a wrecked training in 220 of 232 runs of the
older grids.

Nor is the collapse blamed on the penalty when the unregularized twin
(RL023) ran as long and did not learn either, neither run diverging, and
had settled (its margin rose less than 0.02 over the second half of the
run, the 2% the profile's "learning" asks of a loss; a twin still climbing
when ``--steps`` cut it short leaves the error standing, review 11, unless
the penalized run climbed with it on held-back data, within the
"collapsed" level of its margin: review 57, 2): with
nothing in the data holding the weights, a penalty shrinks them unopposed,
by up to ``1 - exp(-3)`` = 95% over the three timescales the default budget runs,
whatever its size. That is the synthetic batch's usual case (random labels
a small network cannot fit: a 74-weight MLP with ``L2(1e-3)`` under
``SGD(0.01, momentum 0.9)``, written by every Keras release in
``fixtures/versions/``, lost 21% of its kernel norm in 2,000 steps while
both runs sat at ``ln 2``). The finding is then a warning that says so; the
calibration grids' profiles are untouched (their twins all learned: none of
4,537 profiles ended ``twin-did-not-learn``).

## A signal cut by a zero scale
A penalty on BatchNorm or LayerNorm ``gamma`` (or weight decay, which reaches
it) can take the scale itself to zero. A normalization's output is
``gamma * x_hat + beta``: with every ``|gamma|`` at or under ``1e-3`` of its
initial 1 it passes at most a thousandth of the normalized signal and adds its
offset. When that normalization is the *last* one on every path from the
inputs to the outputs, no later layer renormalizes what it lets through and
the prediction is all but constant; the finding names those layers. An
earlier dead scale followed by a live normalization is not reported: the
later one rescales what comes through, though not always all of it (a
LayerNorm whose input is mostly the earlier offset, a BatchNorm whose input
variance has fallen under its epsilon), so these are misses on the cautious
side (review 10: the fixture with its last gamma set back to 1 still
predicts one class in Keras). Two normalizations in series
whose scales both shrink stop each other's data gradient (each one's gamma
gradient is proportional to the other's scale), so the decay alone drives
them geometrically toward zero: review 9's separable CNN (gamma+beta
L2(10), SGD momentum) saved both gammas at exactly 0.0 and predicted one
class, with no penalized kernel for the kernel check above to judge.
``fixtures/keras/bn_scale_zeroed.keras`` is that mechanism written by Keras
(two Dense -> BatchNorm -> ReLU blocks, gamma+beta L2(10), SGD(0.01,
momentum 0.9), 160 steps: both gammas at 3.4e-4, Keras' own model predicts
one class). On the grids' trained files (``bench/out/trained-fresh-r2``,
``trained-modern-r2``: 180 files) it fires on 3, all collapsed trainings
(the separable CNN with gamma+beta L2 1 under SGD momentum on the 20-class
set, gammas at 1e-11; two residual CNNs with L2 + weight decay 0.3 under SGD
at lr 0.1), on none that trained. The level: of those 180 files, 147 have
a normalization on every path; the healthy ones' last normalization kept a
largest ``|gamma|`` of 0.18 or more, the collapsed ones' ranged from 1e-11,
4e-7 and 8e-7 (the three reported) through 0.0074, 0.021, 0.033 and 0.083
(not reported: a scale that size can be taken over by the next layer, and
those networks collapsed with their heads and kernels shrunk, which is not a
cut; ``python bench/ceiling_tallies.py gamma-cut``). ``1e-3`` sits 7x under
the smallest of those and 180x under the smallest healthy one; it is a level for a scale that no longer carries
the signal, not a fit, and not an option.

## The optimizer's own L1 (Ftrl)
Keras' ``Ftrl`` (FTRL-Proximal, McMahan et al. 2013) has an L1 of its own,
``l1_regularization_strength``: a weight is set to exactly zero while the
absolute sum of its gradients (less a term in the weight itself) stays at or
under it (``keras/src/optimizers/ftrl.py``: ``linear_clipped = clip(linear,
-l1, l1)``; ``variable = (linear_clipped - linear) / quadratic``). After the
first step that sum is one gradient, so a strength above the typical
per-weight gradient (often 1e-3 to 1e-2) zeroes most of the network
whatever the layers' regularizers say (bench/robustness_sweep.py: Ftrl
with l1 0.01 left 0.1% of the initial energy after one step under L2 1e-3).
The finding then names that setting as the likely cause and asks to lower it
instead of the layers' lambdas.

## References
- Theory notes section 3.2 (collapse signature: penalty -> 0, data loss -> L_chance).
- McMahan et al. 2013, "Ad Click Prediction: a View from the Trenches" (FTRL-Proximal, its L1).
"""

from __future__ import annotations

from reglint.engine.finding import Severity
from reglint.engine.fmt import g, pct, plural
from reglint.engine.graph import NORMALIZERS
from reglint.engine.measured import static_finding, static_predictions, static_said
from reglint.engine.rule import Option, Rule
from reglint.engine.twin_metric import learned_on_held_out, twin_learned_nothing
from reglint.estimate.init_scale import expected_sum_sq
from reglint.model import Role

# Kernels smaller than this are left out: their saved size says more about
# one random draw than about the penalty (see Thresholds and calibration).
MIN_WEIGHTS = 8


def regularized_kappas(analysis) -> dict[str, float]:
    """``kappa`` of every kernel RL001 counts whose penalty is active."""
    kernels = [p for p in analysis.active_penalties()
               if p.variable.role.is_kernel_like and p.sum_sq_init and p.variable.stats
               and not p.variable.stats.nonfinite and p.n >= MIN_WEIGHTS]
    return {f"{p.layer.path}/{p.variable.name}": p.variable.stats.sum_sq / p.sum_sq_init for p in kernels}


def decayed_kappas(model, analysis) -> dict[str, float]:
    """``kappa`` of every trainable kernel the optimizer's ``weight_decay``
    reaches (all of them: a saved file does not record exclusions), scale-
    invariant ones left out as for the penalties (their scale does not
    matter)."""
    out = {}
    for layer, var in model.variables():
        if not (var.role.is_kernel_like and layer.trainable and var.trainable) or analysis.feeds_normalizer(layer):
            continue
        expected, stats = expected_sum_sq(var), var.stats
        if expected and stats is not None and not stats.nonfinite and var.size >= MIN_WEIGHTS:
            out[f"{layer.path}/{var.name}"] = stats.sum_sq / expected
    return out


# A normalization's scale at or under this (its initializer's is 1) passes
# at most 1/1000 of the normalized signal (see "A signal cut by a zero scale").
DEAD_SCALE = 1e-3


def dead_scale(layer) -> float | None:
    """The largest |gamma| of a normalization layer, when it is at or under
    ``DEAD_SCALE``; None for a layer with no saved scale or a live one."""
    if layer.class_name not in NORMALIZERS:
        return None
    gammas = [v.stats for v in layer.variables if v.role is Role.GAMMA and v.stats is not None]
    if not gammas or any(st.nonfinite or not st.count for st in gammas):
        return None
    largest = max(st.max_abs for st in gammas)
    return largest if largest <= DEAD_SCALE else None


def signal_cut(model, analysis) -> dict[str, float]:
    """The normalization layers whose scale is dead, when the last
    normalization on every path from the inputs to every output is one of
    them: no later layer renormalizes what they let through. Empty when any
    path reaches an output without crossing a normalization or through a
    live one, or when the file records no outputs."""
    outputs = {o.layer for o in model.outputs}
    by_path = {layer.path: layer for layer in model.layers}
    if not outputs or not all(path in by_path for path in outputs):
        return {}
    dead: dict[str, float] = {}
    stack, seen = [by_path[path] for path in outputs], set()
    while stack:
        layer = stack.pop()
        if layer.path in seen:
            continue
        seen.add(layer.path)
        if layer.class_name in NORMALIZERS:
            scale = dead_scale(layer)
            if scale is None:
                return {}  # a live normalization: this path carries the signal
            dead[layer.path] = scale
            continue
        feeding = analysis.producers(layer)
        if not feeding:
            return {}  # an input reached without crossing a normalization
        stack.extend(feeding)
    return dead


class WeightsCollapsed(Rule):
    code = "RL017"
    name = "weights-collapsed"
    severity = Severity.ERROR
    summary = "A trained model's regularized kernels have shrunk to a small fraction of their initial size."
    options = {"collapse-ratio": Option(0.01, "saved / initial sum of squares below which a kernel has collapsed")}

    def check(self, model, analysis):
        if not (model.optimizer and model.optimizer.iterations):
            return
        cut = signal_cut(model, analysis)
        if cut:
            yield self._cut(model, cut)
            return
        kappas = regularized_kappas(analysis)
        penalized = bool(kappas)
        decay = analysis.dynamics.weight_decay if analysis.dynamics is not None else 0.0
        if decay:
            kappas.update(decayed_kappas(model, analysis))
        if not kappas or max(kappas.values()) >= self.thresholds["collapse-ratio"]:
            return
        worst = max(kappas.values())
        own_l1 = optimizer_l1(model.optimizer)
        cause, remedy = "the penalty drove the network to its trivial solution", \
            "retrain with a smaller lambda (see RL001's safe value)"
        if decay and not penalized:
            cause, remedy = (f"the optimizer's weight_decay {g(decay)} drove the network to its trivial solution "
                             f"(no layer carries a regularizer)"), \
                "retrain with a smaller weight_decay (see RL003's safe value)"
        elif decay:
            cause += f", with the optimizer's weight_decay {g(decay)}"
        if own_l1:
            cause, remedy = f"the likely cause is {own_l1_cause(own_l1)}, whatever the layers' regularizers", \
                own_l1_remedy(own_l1)
        which = "regularized or weight-decayed" if decay else "regularized"
        yield self.finding(
            f"after {g(model.optimizer.iterations)} steps every {which} kernel holds at most {g(worst)} of its "
            f"initial sum of squares ({plural(len(kappas), 'kernel')}): {cause}",
            target="kernel", remedy=remedy,
            values={"max_kappa": worst, "kappas": kappas, "iterations": model.optimizer.iterations,
                    "optimizer_l1": own_l1})

    def _cut(self, model, cut: dict[str, float]):
        """Every path to the outputs leaves its last normalization through a
        scale at zero: the prediction no longer depends on the input."""
        where = ", ".join(f"{path} (max |gamma| {g(scale)})" for path, scale in sorted(cut.items()))
        one = len(cut) == 1
        return self.finding(
            f"after {g(model.optimizer.iterations)} steps the last normalization on every path to the outputs has "
            f"its scale at zero: {where}; {'it passes' if one else 'each passes'} at most "
            f"{g(max(cut.values()))} of its normalized signal and adds its offset, so the prediction is all but "
            f"constant: a gamma penalty (or weight decay) drove the network to its trivial solution",
            layer=next(iter(cut)) if one else None,
            target="gamma", remedy="retrain with a much smaller gamma penalty, or none (RL008)",
            values={"dead_scales": cut, "iterations": model.optimizer.iterations, "dead_scale_level": DEAD_SCALE})

    def check_measured(self, result, report):
        """The live version: in the short run the regularized kernels' norm
        fell while the data loss did not."""
        outcome = result.outcome
        if outcome.label != "collapsing":
            return
        found = static_finding(report, self.code)
        static = found.severity if found else None
        steps = len(result.trajectory)
        fell = (f"measured: in {steps} steps {result.start.phrase} the kernels' norm fell "
                f"{pct(-(outcome.kernel_norm_change or 0))} ({g(outcome.kernel_norm_initial)} -> "
                f"{g(outcome.kernel_norm_final)}) while the data loss went {g(outcome.data_loss_initial)} -> "
                f"{g(outcome.data_loss_final)}")
        learned = learned_on_held_out(result)
        unlearnable = twin_learned_nothing(result)
        if learned:  # the held-out measurement outranks the norm-and-loss signature (see Measured)
            message, severity = (f"{fell}, {learned}: the network still separates the data with shrunken "
                                 f"weights (small logits); {_cause(result)}"), Severity.WARNING
        elif unlearnable:  # nor can the signature blame the penalty when nothing was learned without it
            message, severity = f"{fell}, {unlearnable}; {_cause(result)}", Severity.WARNING
        else:
            said = static_said(static, Severity.ERROR, static_predictions(report))
            message, severity = (f"{fell}: the penalty is driving the network to its trivial solution; "
                                 f"{_cause(result)}; {said}"), Severity.ERROR
        yield self.finding(
            message, severity=severity, target="kernel", measured=True,
            remedy=_remedy(result),
            values={"kernel_norm_initial": outcome.kernel_norm_initial, "kernel_norm_final": outcome.kernel_norm_final,
                    "kernel_norm_change": outcome.kernel_norm_change, "data_loss_initial": outcome.data_loss_initial,
                    "data_loss_final": outcome.data_loss_final, "steps": steps,
                    "penalty_ratio": result.weight_penalty_ratio(), "synthetic_data": result.synthetic})


def optimizer_l1(optimizer) -> float:
    """The optimizer's own proximal L1 (Keras' Ftrl ``l1_regularization_strength``), 0 when it has none."""
    if optimizer is None or optimizer.class_name != "Ftrl":
        return 0.0
    value = optimizer.config.get("l1_regularization_strength")
    return float(value) if isinstance(value, (int, float)) and value > 0 else 0.0


def own_l1_cause(l1: float) -> str:
    return (f"Ftrl's own l1_regularization_strength {g(l1)}, which sets every weight to exactly zero while the sum "
            f"of its gradients stays within it")


def own_l1_remedy(l1: float) -> str:
    return (f"lower Ftrl's l1_regularization_strength (now {g(l1)}) below the scale of the per-weight gradients, "
            f"or set it to 0 and regularize the layers")


def _own_l1(result) -> float:
    """The profiled optimizer's own L1 (Ftrl), 0 when it has none."""
    return float(((result.optimizer or {}).get("own_penalties") or {}).get("l1_regularization_strength") or 0.0)


def _remedy(result) -> str:
    """What to change, for the cause ``_cause`` names (same order)."""
    own_l1 = _own_l1(result)
    if own_l1:
        return own_l1_remedy(own_l1)
    opt = result.optimizer or {}
    has_l2 = any((r.regularizer or {}).get("l2") for r in result.variables)
    if opt.get("family") == "sgd" and has_l2:
        return "use a smaller lambda (see RL001 and RL003's shrink) or decoupled weight_decay sized with RL003"
    if opt.get("weight_decay"):
        lower = f"lower the optimizer's weight_decay (now {g(opt['weight_decay'])}; RL003 sizes it for this lr)"
        return lower + (" and the lambdas (RL001)" if has_l2 else "")
    return "use a smaller lambda (see RL001) or decoupled weight_decay"


def _cause(result) -> str:
    """The shrink mechanism in words (RL002/RL003's formulas)."""
    opt = result.optimizer or {}
    own_l1 = _own_l1(result)
    if own_l1:
        return f"the likely cause is {own_l1_cause(own_l1)}"
    lr = opt.get("learning_rate_peak") or opt.get("learning_rate") or 0.0
    l2s = [(r.regularizer or {}).get("l2") or 0.0 for r in result.variables]
    l2 = max(l2s) if l2s else 0.0
    if opt.get("family") == "sgd" and l2:
        b = float(opt.get("momentum") or 0.0)
        shrink = 2 * lr * l2 / (1 - b)
        return f"coupled L2 under SGD shrinks an unsupported weight by 2*lr*l2/(1-b) = {g(shrink)} per step"
    if opt.get("weight_decay"):
        return f"decoupled weight_decay shrinks every weight by lr*wd = {g(lr * opt['weight_decay'])} per step"
    if opt.get("family") == "adaptive":
        return (f"under {opt.get('class')} the penalty gradient is normalised, moving weights the data does "
                f"not hold up by about lr = {g(lr)} per step")
    return "the penalty gradient outweighs the data gradient"
