"""# chain-shrinks-too-fast (RL024)

## What it does
Under SGD, finds layers in series, with no normalization layer between them,
whose kernels (or embeddings) carry an L2 that shrinks them by a large
fraction every step: ``2*eta*l2/(1-m)`` for Keras' coupled L2 with learning
rate ``eta`` and momentum ``m``, plus the optimizer's decoupled ``eta*wd``.
Errs when at least two such layers on one forward path each shrink at or
above the error level: one level for chains that reach an output with no
normalization after them (an MLP), a higher one for chains with a layer
inside a normalized stream, whose every path to the outputs passes a
normalization (a transformer block's MLP; a post-norm block's embedding and
attention).

## Why is this bad?
A weight the data gradient does not hold up loses that fraction of itself
every step; at 0.15 it halves in under five steps, so within a few dozen
steps every kernel of the chain sits where its data gradient balances
``2*l2*w``. Layers in series multiply: when each shrinks, the signal that
reaches the output is the product of the shrunk scales and the network falls
to the trivial solution, which RL001's penalty-to-loss ratio can miss because
that ratio is taken at initialisation and the L2 ends up far stronger than
the data at the weights the training reaches. A normalization layer
re-scales the signal, so what shrank before it does not compound with what
shrinks after: a single penalized classifier behind BatchNorm only shrinks
the logits (the calibration's BatchNorm and residual networks at the same
shrinks degraded where plain chains collapsed). Scale-invariant kernels
(feeding a normalization) are RL021's; decay on every weight alone is
RL003's.

Inside a normalized stream the normalization after a chain restores the
scale of the sum it normalizes, not the share a branch holds in it: a
transformer's MLP (two Dense in series) and attention add into a residual
stream beside the skip path and the layers' unpenalized biases. Each
kernel of a chain has a data gradient proportional to the other's size, so
once the L2 has them small they fall to zero together: on the stream grid
every attention and MLP kernel ended under 1e-3 (sum of squares, from
30-43) in all 213 collapsed trainings, but also in 96 of 136 degraded and 5
of 11 healthy ones. The chain is the structural sign; what separated the
collapses is the same L2 on the layers around it: the classifier's kernel
ended under 0.01 in 194 of the 213 (8 degraded runs, no healthy one) and
the embedding's kernel under 1% of its own bias in 194 (no other run), so
the normalizations rescaled biases, the same for every input. The level
is therefore an outcome measured on whole networks with the L2 on every
kernel, and higher than a chain's to an output.

## Example
A 64-32 MLP with ``L2(0.3)`` on every kernel under ``SGD(0.03,
momentum=0.9)``: each kernel shrinks ``2*0.03*0.3/0.1 = 0.18`` per step
(RL001's ratio at initialisation is 5.6-17.5 on the calibration's data sets,
under its error level); every such training on the calibration grids ended
at chance.

## Use instead
The L2 in the finding's fix: per-step shrink ``2*eta*l2/(1-m)`` at half the
warning level (0.025), i.e. ``l2 <= 0.0125*(1-m)/eta`` less what the
optimizer's ``weight_decay`` already takes, or decoupled weight decay sized
with RL003.

## Options
- ``chain-shrink-error`` (default 0.15): per-step shrink at which two layers in series make RL024 an error.
- ``stream-shrink-error`` (default 0.79): the same for a chain with a layer inside a normalized stream.
- ``chain-shrink-warning`` (default 0.05): the shrink at which either kind is a warning.

## Fix
Every counted kernel at or above the warning level, in front of a
normalization or behind one, gets the L2 whose coupled shrink, added to the
optimizer's decoupled ``eta*wd``, lands at half the warning level, so one
application leaves no chain of either kind at the warning level; where
``eta*wd`` alone already exceeds it, the L2 is removed (lower
``weight_decay`` with RL003).

## Formula
Per penalized kernel RL001 counts (not scale-invariant; a chain to an
output: not behind a normalization on every path to the outputs; a chain
in a stream: behind one on every path): ``r = 2*eta*(l2 + l2_opt)/(1-m)
+ eta*wd`` (``estimate/dynamics.py``, ``Dynamics.total_shrink``; ``l2_opt``
the optimizer's own coupled decay, PyTorch's ``wd/2``), with the learning
rate, momentum and decay of the param group that updates the tensor
(PyTorch param groups, a Keras ``MultiOptimizer``): a chain may run
through groups whose settings differ, and each layer's fix is sized at its
own group's settings. Per layer, its
largest ``r``. The chain: the most layers with ``r`` at a level that one
forward path passes without crossing a normalization layer
(``Analysis.unnormalized_chain``). ``r`` is the slow-mode rate of
heavy-ball momentum: past ``eta*h > (1-sqrt(m))^2`` the real contraction
saturates at ``1 - sqrt(m)`` (RL003, Formula), so read ``r`` as the
strength of the L2 at this step size, which sets where the weights settle.

## Thresholds and calibration
From the calibration grids (``python bench/calibrate.py report``;
bench/CALIBRATION.md): runs under SGD whose counted kernels form such a
chain (the classic grid's MLPs, CNN and Embedding model; the modern grid's
LSTM, GRU and Embedding models, three seeds), by the chain's per-step
shrink:

- under 0.05: 79 healthy, 8 degraded, 3 collapsed (90 runs);
- 0.05-0.1 (SGD momentum with L2 0.1; L2 + weight decay 0.1): 2 healthy,
  13 degraded, 13 collapsed;
- 0.1-0.15 (L2 0.1 at lr 0.5 without momentum, or Nesterov at lr 0.05): 3
  healthy (breast cancer, wine), 2 degraded, 3 collapsed;
- 0.15-0.2 (L2 0.3 at lr 0.03, momentum 0.9): 26 collapsed, 1 degraded;
  from 0.2 up 55 of 56 wrecked.

Chosen on the fit split (digits, breast cancer, diabetes; LSTM and
Embedding) as the project's other levels are: error at **0.15**, between
the largest shrink with a healthy run (0.1) and 0.18, from which every
fit run ended wrecked; the held-out data sets and the held-out GRU family
agree. The 19 runs it adds to the other rules' errors all collapsed.
Warning at **0.05**: from there up 31 of 36 runs were harmed (degraded or
worse); below it 79 of 90 were healthy. With a single penalized layer at
the same shrinks (a classifier behind BatchNorm, residual CNNs, pre-norm
transformers: 54 runs from 0.15 up) 14 wrecked and 38 degraded: not this
rule's error (RL001, RL021 and ``reglint profile`` judge them). The gap is
one grid step (lambda 0.1 to 0.3) wide: between the two levels the outcome
depends on the data, which ``reglint profile --data`` measures.

Chains inside a normalized stream (the stream grid, ``calibrate.py train
--grid stream``, three seeds, 2026-12-01; bench/CALIBRATION.md): the
pre-norm and post-norm transformer blocks with kernel L2 under SGD
momentum (lr 0.03), Nesterov (lr 0.05) and plain SGD (lr 0.01), so the same
shrink comes from lambdas 30 to 50 times apart. On the fit split (the
pre-norm block on digits and breast cancer) by the chain's shrink: 0.018: 3
healthy, 3 degraded; 0.06-0.3: 48 runs, none healthy, 10 collapsed;
0.4-0.6: 25 of 30 collapsed (four breast-cancer runs kept 55-83% of their
margin, a digits run 21%); 0.78: 5 of 6; 0.8: 11 of 12; from 1 up 18 of 18.
Error at **0.79**, between the grid's 0.78 and 0.8 (so that a stored
learning rate's float rounding does not move a run across it): from 0.8
95% of the fit split's flagged runs are wrecked (96.7%, 29 of 30; from
0.78 94.4%, from 0.6 90.7%, from 0.4 89.4%); held out (the post-norm block,
and wine) from 0.8: 60 of 60 wrecked; a fourth seed trained after the
level was set: 30 of 30. Warning at the chain's **0.05**: from 0.06 up
every fit run was harmed. Under the error level the shrink alone does not
tell: plain SGD at lambda 10 (r 0.2) collapsed 13 of 18 runs over both
blocks and data sets, momentum at lambda 0.3 (r 0.18) and Nesterov at 0.2
(r 0.2) 1 of 18 each, so there it stays a warning. Only LayerNorm
transformers were calibrated: the level is applied to chains behind
BatchNorm, GroupNorm or RMSNorm by extension (no grid trains a counted
chain that ends in one).

## Gradient clipping
Keras clips the penalty's gradient with the data's (``clipnorm``,
``clipvalue``, ``global_clipnorm``): while the penalty's gradient is
larger than the clip the shrink per step is what the clip allows, not the
linear rate, and the finding says it with the steps until the linear rate
applies (``reglint.estimate.clipping``; Keras' global_clipnorm 1 shrank
fixtures/keras_optimizers/global_clipnorm_sgd.keras's kernel 1.6% per step
where the linear rate is 0.2, to 4e-14 of its norm in 200 steps). The chain
still shrinks to where its gradient is under the clip, so the severity is
the linear analysis'.

## References
- Krogh & Hertz, "A Simple Weight Decay Can Improve Generalization", NIPS 1991 (L2 as a per-step shrink).
- Keras ``keras/src/regularizers/regularizers.py`` (``L2``: ``l2 * sum(w^2)``, gradient ``2*l2*w``).
- Goh, "Why Momentum Really Works", Distill 2017 (heavy-ball modes).
"""

from __future__ import annotations

from reglint.engine.finding import Change, Fix, Severity, lambda_parameter
from reglint.engine.fmt import amount, g, lam
from reglint.engine.rule import Option, Rule
from reglint.engine.sweep import Curve
from reglint.estimate.clipping import clip_of, penalty_motions
from reglint.estimate.dynamics import halving_steps


class ChainShrinksTooFast(Rule):
    code = "RL024"
    name = "chain-shrinks-too-fast"
    severity = Severity.ERROR
    summary = "L2 under SGD shrinks layers in series, with no normalization between them, by a large fraction per step."
    # once per model: every tensor is judged with its own param group's
    # settings (a chain may run through groups whose momenta differ)
    predicts_outcome = True
    options = {
        "chain-shrink-error": Option(0.15, "per-step shrink 2*lr*l2/(1-momentum) (+ lr*weight_decay) at which two "
                                           "layers in series make RL024 an error"),
        "stream-shrink-error": Option(0.79, "the same shrink at which two layers in series, one of them inside a "
                                            "normalized stream (every path to the outputs passes a normalization), "
                                            "make RL024 an error"),
        "chain-shrink-warning": Option(0.05, "the same shrink at which RL024 is a warning"),
    }
    # the two kinds of chain and their error levels: to an output (every
    # layer with a path to an output that passes no normalization), and any
    # other (at least one layer whose every path passes one: a chain inside
    # a normalized stream, or one that enters it)
    KINDS = ((False, "chain-shrink-error"), (True, "stream-shrink-error"))
    extra_level_pairs = (("stream-shrink-error", "chain-shrink-warning"),)

    def sweep(self, model, analysis):
        """Each layer's shrink ``a_i*m + b`` is affine in a common multiplier
        ``m`` of the L2s (``b``: the optimizer's own decay). As ``m`` grows,
        layers pass the warning level in order of ``a_i``; the curve is the
        shrink of the layer whose passing first closes a chain of two in
        series (its limit is RL024's exactly; above it the chain may grow):
        one for chains to an output, one for a first chain that enters a
        normalized stream, each with its kind's error level."""
        curves = []
        for stream, error in self.KINDS:
            curve = self._curve(analysis, stream, self.thresholds[error])
            if curve is not None:
                curves.append(curve)
        return curves

    def _curve(self, analysis, stream: bool, error: float) -> Curve | None:
        shrinks = self.shrink_per_layer(analysis, stream)
        if len(shrinks) < 2:
            return None
        # per layer: the part the L2 sets (scales with m) and the optimizer's
        # own decay (its param group's, which need not be the lead's)
        offsets = {path: dyn.total_shrink(0.0) or 0.0 for path, (_, _, dyn) in shrinks.items()}
        slopes = {path: r - offsets[path] for path, (r, _, _) in shrinks.items()}
        warning = self.thresholds["chain-shrink-warning"]

        def passes_at(path: str) -> float:  # the multiplier at which the layer reaches the warning level
            if offsets[path] >= warning:
                return 0.0
            return (warning - offsets[path]) / slopes[path] if slopes[path] > 0 else float("inf")

        joined: set[str] = set()
        for path in sorted(slopes, key=passes_at):  # first to pass the level first
            joined.add(path)
            chain = analysis.unnormalized_chain(joined)
            if len(chain) >= 2:
                break
        else:
            return None  # no two of these layers lie in series
        if stream and not self._in_stream(analysis, chain):
            return None  # the first chain reaches an output: the other curve's
        slope, offset, l2 = slopes[path], offsets[path], shrinks[path][1].l2
        fires = slope + offset >= warning
        fix = (self.aim - offset) / slope if fires and slope > 0 and self.aim > offset else (0.0 if fires else None)
        where = "entering a normalized stream" if stream else "in series"
        return Curve(self.code, "shrink_per_step", f"r = 2*lr*l2/(1-momentum) (+ lr*weight_decay) of the layer that "
                     f"closes a chain of two {where}", "lambda", slope=slope, offset=offset, warning=warning,
                     error=error, fix=fix, lambdas=(l2,), layers=tuple(shrinks))

    def check(self, model, analysis):
        severity, chain, stream = self.judge(analysis)
        if severity is None:
            return
        shrinks = self.shrink_per_layer(analysis, stream=True)
        rates = [shrinks[path][0] for path in chain]
        slowest = min(rates)
        # steps for an unsupported weight of the slowest layer to halve, from
        # the real per-step contraction (momentum's oscillating mode included:
        # the slow-mode shrink overstates it once the roots turn complex);
        # only where the weights change sign every step does the update
        # overshoot zero instead (Dynamics.flips_every_step). The slowest
        # layer is the one whose weights contract slowest, at its own param
        # group's settings (where groups differ in momentum, not always the
        # one whose slow mode is slowest)
        pace_path = min(chain, key=lambda path: self._contraction(shrinks[path]))
        r_pace, slow_penalty, dyn = shrinks[pace_path]
        slow_l2 = slow_penalty.l2
        halving = None if dyn.flips_every_step(slow_l2) else halving_steps(dyn.contraction(slow_l2))
        pace = (f"halving an unsupported weight every {amount(halving, 'step')}" if halving is not None else
                "over 1, so each step overshoots zero and flips the weights")
        shrink = f"shrinks at least {g(slowest)} per step, {pace}"
        actual = dyn.contraction(slow_l2)
        regime = dyn.momentum_regime(slow_l2, r_pace)
        if regime == "limited":
            # past 1 - sqrt(momentum) the slow mode is what the setting asks
            # for, not what happens: the weights oscillate in a slower envelope
            formula = "2*lr*l2/(1-momentum)" + (" + lr*wd" if dyn.weight_decay else "")
            shrink = (f"asks to shrink at least {g(slowest)} per step ({formula}), more than momentum "
                      f"lets it: the weights swing through zero inside an envelope that shrinks by {g(actual)} per "
                      f"step, {pace}")
        elif regime == "faster":
            shrink += f" (momentum's real contraction, {g(actual)} per step)"
        shrink += _clipped(model, analysis, chain, shrinks, slowest)
        fix = self.fix(analysis)
        penalty = shrinks[chain[0]][1]
        names = ", ".join(chain[:4]) + (f" and {len(chain) - 4} more" if len(chain) > 4 else "")
        decay = f" and weight_decay {g(dyn.weight_decay)}" if dyn.weight_decay else ""
        if stream:
            where = "in series, with no normalization between them, ending inside a normalized stream"
            outcome = ("the normalization after them restores the sum's scale, not the share this branch holds in it, "
                       "so its kernels can fall to zero together")
            if severity is Severity.ERROR:
                outcome += "; from this shrink the calibration's transformers collapsed"
        elif _skipped(analysis, chain):  # review 57, 5: a residual TCN's "10 layers in series"
            where = "in series along the longest path with no normalization between them"
            outcome = ("the shrunk scales multiply along the chain toward the trivial solution (skip connections "
                       "give shorter paths, whose kernels shrink as well)")
        else:
            where = "in series with no normalization between them"
            outcome = "the shrunk scales multiply along the chain toward the trivial solution"
        groups = sorted({i for i in (analysis.variable_group(shrinks[path][1].variable) for path in chain)
                         if i is not None})
        weaker = self._weaker_in_series(analysis, chain, shrinks)
        if weaker:
            shown = [f"{path}, in series with them, shrinks only {g(r)} per step" for path, r in weaker[:3]]
            names += "; " + ", ".join(shown) + (f" and {len(weaker) - 3} more" if len(weaker) > 3 else "")
        yield self.finding(
            f"{len(chain)} layers {where} ({names}) carry "
            f"{lam(penalty.regularizer)}{decay} under SGD ({self._settings(analysis, chain, shrinks, groups)}): "
            f"each {shrink}; {outcome}",
            layer=chain[0], target=penalty.variable.name, severity=severity, fix=fix,
            remedy=f"{fix.describe()} (a shrink of {g(self.aim)} per step), or decoupled weight decay sized with RL003",
            values={"shrink_per_step": slowest, "chain": chain, "chain_shrinks": rates, "learning_rate": dyn.lr,
                    "momentum": dyn.momentum, "weight_decay": dyn.weight_decay or None,
                    "halving_steps": halving, "behind_normalization": stream,
                    "param_groups": groups if len(analysis.group_views()) > 1 else None})

    @staticmethod
    def _weaker_in_series(analysis, chain: list[str], shrinks: dict) -> list[tuple[str, float]]:
        """Penalized layers under the chain's level on the same forward
        path as it, with their shrinks, in forward order: the chain ``s1,
        s3`` runs through ``s2``, whose weaker L2 the message names so that
        the chain does not read as s1 feeding s3 (review 32, D11)."""
        found = []
        for path, (r, _, _) in shrinks.items():
            if path not in chain and r > 0:
                series = analysis.unnormalized_chain(set(chain) | {path})
                if len(series) == len(chain) + 1:
                    found.append((series.index(path), path, r))
        return [(path, r) for _, path, r in sorted(found)]

    @staticmethod
    def _contraction(entry: tuple) -> tuple[float, float]:
        """A layer's real per-step contraction (its slow-mode shrink where
        none is known), then its slow-mode shrink: what orders layers by how
        fast their weights fall."""
        r, penalty, dyn = entry
        actual = dyn.contraction(penalty.l2)
        return (actual if actual is not None else r, r)

    @staticmethod
    def _settings(analysis, chain: list[str], shrinks: dict, groups: list[int]) -> str:
        """``lr 0.1, momentum 0.9``; where the chain's layers are in param
        groups whose settings differ, each group's (``param group 0: lr
        0.1, momentum 0.9; param group 1: ...``)."""
        if len(analysis.group_views()) < 2 or not groups:
            dyn = shrinks[chain[0]][2]
            return f"lr {g(dyn.lr)}, momentum {g(dyn.momentum)}"
        described: dict[int, str] = {}
        for path in chain:
            _, penalty, dyn = shrinks[path]
            index = analysis.variable_group(penalty.variable)
            described.setdefault(index, f"param group {index}: lr {g(dyn.lr)}, momentum {g(dyn.momentum)}")
        texts = list(dict.fromkeys(described.values()))
        if len(texts) == 1:  # one group, or several with the same settings
            return f"{_group_words(groups)}: " + texts[0].split(": ", 1)[1]
        return "; ".join(texts)


    def judge(self, analysis) -> tuple[Severity | None, list[str], bool]:
        """The severity, the chain and whether it enters a normalized stream:
        two or more layers in series each at the error level of a chain to
        an output (all of them reach one without a normalization), else at
        the stream's error level (any two counted layers), else at the
        warning level."""
        levels = [(Severity.ERROR, stream, self.thresholds[error]) for stream, error in self.KINDS]
        levels.append((Severity.WARNING, True, self.thresholds["chain-shrink-warning"]))
        for severity, stream, level in levels:
            shrinks = self.shrink_per_layer(analysis, stream)
            chain = analysis.unnormalized_chain({path for path, (r, _, _) in shrinks.items() if r >= level})
            if len(chain) >= 2:
                return severity, chain, self._in_stream(analysis, chain)
        return None, [], False

    @staticmethod
    def _in_stream(analysis, chain: list[str]) -> bool:
        inside = {p.layer.path for p in analysis.chain_penalties(behind_norm=True, every_group=True)}
        return any(path in inside for path in chain)

    @property
    def aim(self) -> float:
        return 0.5 * self.thresholds["chain-shrink-warning"]

    @staticmethod
    def shrink_per_layer(analysis, stream: bool = False) -> dict:
        """Layer path -> (largest per-step shrink of its counted L2 kernels,
        that penalty, the dynamics updating it), for layers some path leaves
        without a normalization; with ``stream``, layers every path of which
        passes one as well. Each tensor at its own param group's settings
        (PyTorch, MultiOptimizer); SGD-like groups only (an adaptive
        optimizer normalises the L2's gradient)."""
        out: dict = {}
        penalties = analysis.chain_penalties(every_group=True) + (
            analysis.chain_penalties(behind_norm=True, every_group=True) if stream else [])
        for p in penalties:
            dyn = analysis.variable_dynamics(p.variable)
            if not p.l2 or dyn.family != "sgd" or not dyn.lr:
                continue
            r = dyn.total_shrink(p.l2) or 0.0
            if r > out.get(p.layer.path, (0.0, None, None))[0]:
                out[p.layer.path] = (r, p, dyn)
        return out

    def fix(self, analysis) -> Fix:
        """Every counted L2 of either kind at or above the warning level set
        so that its shrink, the optimizer's decoupled part included, lands at
        ``aim``: one application leaves no chain at the warning level."""
        shrinks = self.shrink_per_layer(analysis, stream=True)
        changes: dict[tuple[str, str, float], Change] = {}  # one per (layer, tensor kind, factor), as RL001's
        for p in analysis.chain_penalties(every_group=True) + analysis.chain_penalties(behind_norm=True,
                                                                                        every_group=True):
            r = shrinks.get(p.layer.path, (0.0, None, None))[0]
            dyn = analysis.variable_dynamics(p.variable)  # its own param group's settings
            if p.l2 and dyn.family == "sgd" and dyn.lr and r >= self.thresholds["chain-shrink-warning"]:
                room = self.aim - (dyn.decoupled_shrink or 0.0)
                safe = room * (1.0 - dyn.momentum) / (2.0 * dyn.lr) - dyn.coupled_l2 if room > 0 else 0.0
                target = p.variable.name.split("/")[-1]
                changes.setdefault((p.layer.path, target, p.l2), Change(
                    lambda_parameter(p.l1, p.l2, "l2"), p.l2, safe if safe > 0 else None, layer=p.layer.path,
                    target=target))
        return Fix(f"a per-step shrink 2*lr*l2/(1-momentum) of {g(self.aim)}", tuple(changes.values()))


def _clipped(model, analysis, chain: list[str], shrinks: dict, slowest: float) -> str:
    """Where the optimizer clips gradients and the clip binds at the saved
    weights: the shrink per step it allows over the first steps and the
    steps until the linear rate applies, from the simulated penalty-alone
    run (``estimate.clipping.penalty_motions``; review 34, D1: Keras'
    global_clipnorm 1 shrank a kernel 1.6% per step where the linear rate
    said 20%). The chain still falls to where its gradient is under the
    clip: the finding's severity stands."""
    clip = clip_of(model.optimizer)
    if clip is None:
        return ""
    motions = penalty_motions(analysis, clip)
    found = [m for m in (motions.get(id(shrinks[path][1].variable)) for path in chain) if m is not None]
    if not found:
        return ""
    rate = min(m.shrink for m in found)
    released = [m.release for m in found]
    steps = ("and it still binds after 2,000 steps, the weights swinging about zero inside it" if None in released
             else f"for ~{amount(max(r for r in released if r is not None), 'step')} before the rate above applies")
    return (f"; {clip.text} caps each step's gradient while the penalty's is larger: from the saved weights the "
            f"kernels shrink about {g(rate)} per step over the first steps, not {g(slowest)}, {steps}")


def _group_words(groups: list[int]) -> str:
    """``param group 2`` / ``param groups 0, 1``."""
    return f"param group{'s' if len(groups) > 1 else ''} {', '.join(map(str, groups))}"


# Layers that join a branch to a skip connection (residual or dense).
RESIDUAL_JOINS = {"Add", "Average", "Subtract", "Concatenate"}  # a DenseNet's concatenations skip too


def _skipped(analysis, chain: list[str]) -> bool:
    """Whether a layer of ``chain`` before its last feeds (within two hops:
    an activation between) a residual join: an Add whose operands fork from
    a common layer upstream (the input, a normalization, the chain itself),
    so the chain is the longest of several paths. An Add merging an
    independent input is no skip (review 58, 7); a skip that forks above
    the chain's first layer is one (review 59, 4)."""
    by_path = {layer.path: layer for layer in analysis.model.layers}
    for path in chain[:-1]:
        layer = by_path.get(path)
        near = analysis.consumers(layer) if layer is not None else []
        for _ in range(2):
            if any(join.class_name in RESIDUAL_JOINS and _forks_and_joins(analysis, join) for join in near):
                return True
            near = [after for nxt in near for after in analysis.consumers(nxt)]
    return False


def _forks_and_joins(analysis, join) -> bool:
    """Whether two operands of ``join`` share an ancestor (themselves
    included)."""
    seen: set[str] = set()
    for operand in analysis.producers(join):
        mine = _ancestors(analysis, operand)
        if mine & seen:
            return True
        seen |= mine
    return False


def _ancestors(analysis, layer, limit: int = 20_000) -> set[str]:
    found, frontier = {layer.path}, [layer]
    while frontier and len(found) < limit:
        frontier = [p for item in frontier for p in analysis.producers(item) if p.path not in found]
        found.update(p.path for p in frontier)
    return found
