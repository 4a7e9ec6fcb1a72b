"""# penalized-embedding-chain (RL025)

## What it does
Finds an embedding table that starts small (Keras' default draws it
uniform in +-0.05, an RMS of 0.029) feeding in series, with no
normalization between them or after them, kernels that carry an L2. Two
ways make it fail, and either is judged:

- the table carries an L2 too: the weaker of the two lambdas (the table's,
  and the largest of the kernels it feeds), under any optimizer;
- under SGD, the kernels' L2 alone, whatever the table's: the largest
  per-step shrink ``2*lr*l2/(1-momentum)`` it gives a fed kernel.

## Why is this bad?
The kernels after an embedding table are initialised (Glorot, He) for
inputs of unit scale; a table at RMS 0.029 hands them a signal about 35x
smaller, so the network starts next to the trivial solution and must grow
its weights through the table and the kernels after it to fit the data.
When both carry an L2, each step pulls back what that growth needs, on
every layer of the chain at once, and training stays at chance. The table's
L2 alone does not do it (on the probe below it left every
flattened-embedding model healthy up to L2 0.3); the kernels' L2 alone
does under SGD, where the data gradient of a kernel fed a signal 35x too
small is 35x too small to hold off a shrink its L2 sets whatever the data
(Adam and RMSprop divide that shrink by the gradient's own scale, and the
unpenalized table grows out of its small start: on the probe's digits runs
at L2 0.1 its sum of squares went from 3.4 to 380 under Adam and 794
under RMSprop, and stayed at 3.6 under SGD momentum). RL001's ratio, taken at initialisation, sees a moderate
penalty (5.8x to 7.8x the data loss on the calibration's embedding model
at L2 0.1) because the weights are still small there, and RL024's chain
error (0.15 per step) is set for chains fed unit-scale inputs.

## Example
``Embedding(512, 8, embeddings_regularizer=L2(0.1))`` -> ``Flatten`` ->
``Dense(64, kernel_regularizer=L2(0.1))`` -> ``Dense(10,
kernel_regularizer=L2(0.1))`` under ``Adam(1e-3)`` or ``SGD(0.03,
momentum=0.9)``: every such training in the calibration ended at chance.
Under the SGD setting the kernels' ``L2(0.1)`` alone, with the table left
unpenalized (a shrink of ``2*0.03*0.1/0.1 = 0.06`` per step), collapsed it
as well.

## Use instead
Regularize the kernels only, with a small L2 (the fix's), or use decoupled
``weight_decay`` excluding the table
(``optimizer.exclude_from_weight_decay(var_names=["embeddings"])``).
Recommender and text models that regularize their tables use L2 of 1e-6
to 1e-4.

## Options
- ``embedding-chain-error`` (default 0.1): the weaker L2 of the table and the kernels it feeds at which
  RL025 is an error.
- ``embedding-chain-warning`` (default 0.03): the same L2 at which it is a warning.
- ``table-kernels-shrink-error`` (default 0.05): under SGD, the per-step shrink
  ``2*lr*l2/(1-momentum)`` (+ ``lr*weight_decay``) of a kernel a small table feeds at which
  RL025 is an error, whatever the table's own L2.
- ``table-kernels-shrink-warning`` (default 0.015): the same shrink at which it is a warning.
- ``small-table-rms`` (default 0.1): the table's RMS (the larger of its initializer's and its saved
  values', so that a table loaded from pre-trained vectors is not taken for a fresh one) at or below
  which it counts as starting small.

## Fix
Aim: penalties on the kernels only, at half the warning level: the table's
regularizer removed (RL008 says the same of every embedding table) and each
kernel of the chain whose L2 is above ``embedding-chain-warning/2`` set to
it. Where the SGD shrink is the finding's cause: each fed kernel's L2 set
so that its shrink, the optimizer's decoupled ``lr*wd`` included, is half
``table-kernels-shrink-warning`` (``l2 = 0.0075*(1-m)/(2*lr)``), removed
where the decoupled part alone reaches it.

## Formula
Tables: embedding penalties RL001 counts (not behind a normalization on
every path to the outputs) with ``l2 > 0`` and RMS ``<= small-table-rms``:
the larger of the initializer's (``estimate.init_scale.init_rms``:
``0.05/sqrt(3)`` for Keras' uniform default; ``stddev`` for a normal
initializer; 0 for zeros) and the saved values'. Kernels: counted kernel
penalties with ``l2 > 0`` that one forward path reaches from the table
without crossing a normalization or a free kernel (trainable and
unpenalized, or feeding a normalization: it can grow to re-scale the
table's signal; ``Analysis.unnormalized_chain(through_free=False)``). Every
chain the calibration trained had a penalized kernel right after the
table; a tagger whose unpenalized LSTM sits between its table and a
penalized classifier is not one of them.
``strength = min(l2_table, max l2_kernel)``. Under SGD also ``r = max over
fed kernels of 2*lr*(l2 + l2_opt)/(1-m) + lr*wd`` (``Dynamics.total_shrink``,
each kernel at its param group's settings), with every small table counted,
penalized or not; the finding is the worse of the two verdicts.

## Thresholds and calibration
``bench/emb_probe.py`` (3 data sets: digits, breast cancer, wine; two
embedding models: the calibration's ``Embedding(F*8, 8) -> Flatten ->
Dense(64)`` and a bag-of-tokens ``Embedding(F*8, 32) -> mean -> Dense(64)``;
SGD momentum and Adam; L2 on the table, on the kernels, or both), with the
calibration grids' runs of the embedding model (L2 on table and kernels at
once: classic digits; modern digits and wine, three seeds, with weight
decay as well):

- both at L2 >= 0.1: every run wrecked, 52 of 52 (probe 24, classic 8,
  modern 20), under SGD momentum, Adam and AdamW, on every data set;
- both at 0.03: 8 of 14 wrecked, 10 harmed (the bag-of-tokens model
  collapsed everywhere; the flattened one was healthy on breast cancer and
  wine); at 0.01: 4 of 12 wrecked (bag-of-tokens under SGD and Adam on
  digits and breast cancer), the flattened model healthy everywhere;
- the table alone at L2 up to 0.3: the flattened model healthy in all 24
  runs (the bag-of-tokens one collapsed under SGD from 0.01 on digits,
  whose baseline there only reached 37%).

Error at **0.1**, where every run failed; warning at **0.03**, where most
were harmed. The gate at **0.1** RMS: the same chains from a table drawn at
unit scale (PyTorch's ``N(0, 1)`` default) stayed healthy or degraded under
Adam at L2 0.1 and 0.3 (the flattened model, 6 runs), so a chain from a
large table is not this rule's; the gate sits between the two scales
measured (0.029 and 1). Held out: wine (probe and modern grid) agrees with
the fit sets, 18 of 18 wrecked at >= 0.1; and two families trained after
the levels were set, a table feeding an ``LSTM(32)`` and a table feeding a
``Conv1D(32, 3)`` with global max pooling (same data sets, optimizers and
placements), wrecked 24 of 24 at >= 0.1 and 12 of 12 at 0.03.

The kernels alone (2026-12-03; review 46 found most of its missed wrecks
were small tables feeding penalized kernels with the table unpenalized):
``bench/emb_probe.py run --only kernels`` (270 runs, 9 min on 2 cores; the
table unpenalized, the kernels at L2 0.01-0.3; four families: flattened,
bag of tokens, and, held out, an ``LSTM(32)`` and a ``Conv1D(32, 3)``;
SGD momentum (lr 0.03, m 0.9), Adam and RMSprop at 1e-3; digits, breast
cancer, wine). Under SGD momentum, by the kernels' shrink: 0.06 (L2 0.1)
and 0.18 (0.3): 24 of 24 wrecked (fit families 12 of 12, held-out 12 of
12); 0.018 (0.03): the flattened model healthy on all three data sets, the
others 9 of 9 collapsed; 0.006 (0.01): 6 of 12 harmed. Error at **0.05**,
under the lowest shrink where every run failed (0.06) and well above the
highest where a fit family trained (0.018); warning at **0.015**, where 9
of 12 runs failed. The same chains from a unit-scale table stayed healthy
at 0.06 (the flattened model, 3 of 3): the ``small-table-rms`` gate holds
for this branch too (the bag-of-tokens model, whose mean over 13 to 64
tokens shrinks even a unit table's signal, collapsed 2 of 3 there: a miss
the gate accepts). Under Adam and RMSprop the kernels alone at L2 0.1
left 7 of 24 runs healthy (the flattened model 5 of 6): no static error
there (RL007 errs from L2 0.2). Each run's untrained model saved and
linted, this branch adds 12 caught collapses and no error on a run that
trained: 55 of 98 wrecked runs caught (43 before), 6 of 100 healthy ones
flagged, all six by RL001, RL007 or RL024 at L2 0.3, as before. Checked
after the levels were set (``run --only shrink``), the same shrinks from
two other SGD settings, plain SGD at lr 0.3 and momentum 0.9 at lr 0.01,
on the flattened and Conv1D models: at 0.06, 12 of 12 collapsed, all
errors; at 0.018-0.02, 10 of 12 wrecked (the flattened model collapsed
under lr 0.01 with momentum, where at lr 0.03 it trained): warnings, which
``reglint profile --data`` settles.

## References
- Keras ``keras/src/layers/core/embedding.py`` (``embeddings_initializer="uniform"``: ``RandomUniform(-0.05, 0.05)``).
- Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural networks", AISTATS 2010
  (kernels sized for unit-scale inputs).
- Zhou et al., "Deep Interest Network", KDD 2018 (embedding regularization in recommenders).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from reglint.engine.finding import Change, Fix, Severity
from reglint.engine.fmt import g, plural
from reglint.engine.rule import Option, Rule
from reglint.engine.sweep import Curve
from reglint.estimate.init_scale import init_rms
from reglint.model import Role

if TYPE_CHECKING:  # pragma: no cover
    from reglint.estimate.dynamics import Dynamics
    from reglint.estimate.penalty import TensorPenalty
    from reglint.model import Variable


@dataclass(frozen=True)
class EmbeddingChain:
    """A small table and the penalized kernels it feeds in series."""

    layer: str  # the table's layer path
    table: Variable
    table_l2: float  # 0 where the table carries no L2
    rms: float
    kernels: tuple[TensorPenalty, ...]  # per fed layer, its largest L2
    # the largest per-step shrink SGD gives a fed kernel's L2 (with the
    # kernel's own param group's settings), and that kernel's dynamics;
    # None under an adaptive optimizer
    shrink: float | None = None
    dynamics: tuple[Dynamics, ...] = ()

    @property
    def strength(self) -> float:
        """The weaker of the table's L2 and the strongest fed kernel's."""
        return min(self.table_l2, self.kernel_l2)

    @property
    def kernel_l2(self) -> float:
        return max(k.l2 for k in self.kernels)


class PenalizedEmbeddingChain(Rule):
    code = "RL025"
    name = "penalized-embedding-chain"
    severity = Severity.ERROR
    summary = ("An embedding table that starts small feeds, with no normalization, kernels that carry L2 together "
               "with the table, or alone under SGD.")
    predicts_outcome = True
    options = {
        "embedding-chain-error": Option(0.1, "the weaker L2 of a small embedding table and the kernels it feeds in "
                                             "series at which RL025 is an error"),
        "embedding-chain-warning": Option(0.03, "the same L2 at which RL025 is a warning"),
        "table-kernels-shrink-error": Option(0.05, "under SGD, the per-step shrink 2*lr*l2/(1-momentum) (+ "
                                                   "lr*weight_decay) of a kernel a small table feeds at which "
                                                   "RL025 is an error, whatever the table's own L2"),
        "table-kernels-shrink-warning": Option(0.015, "the same shrink at which RL025 is a warning"),
        "small-table-rms": Option(0.1, "an embedding table's RMS (initializer, else saved values) at or below which "
                                       "it counts as starting small"),
    }

    def chains(self, analysis) -> list[EmbeddingChain]:
        """Every small table, penalized or not, with the penalized kernels
        it feeds in series."""
        penalties = [p for p in analysis.chain_penalties(every_group=True) if p.l2]
        kernels: dict[str, TensorPenalty] = {}
        table_l2: dict[int, float] = {}
        for p in penalties:
            if p.variable.role is Role.EMBEDDINGS:
                table_l2[id(p.variable)] = p.l2
            elif p.l2 > getattr(kernels.get(p.layer.path), "l2", 0.0):
                kernels[p.layer.path] = p
        found = []
        for layer in analysis.model.layers:
            for table in (v for v in layer.variables if v.role is Role.EMBEDDINGS):
                rms = table_rms(table)
                if rms is None or rms > self.thresholds["small-table-rms"]:
                    continue
                # in series with no normalization and no free kernel between:
                # an unpenalized layer can grow to re-scale the table's signal
                fed = tuple(k for path, k in sorted(kernels.items())
                            if analysis.unnormalized_chain({layer.path, path}, through_free=False)
                            == [layer.path, path])
                if fed:
                    found.append(self._chain(analysis, layer.path, table, table_l2.get(id(table), 0.0), rms, fed))
        return found

    @staticmethod
    def _chain(analysis, layer: str, table, l2: float, rms: float, fed: tuple) -> EmbeddingChain:
        """The chain with its kernels' SGD shrinks (each at its param
        group's settings; an adaptive optimizer normalises the L2's
        gradient, so no static shrink)."""
        shrinks = []
        for kernel in fed:
            dyn = analysis.variable_dynamics(kernel.variable)
            if dyn.family == "sgd" and dyn.lr:
                shrinks.append((dyn.total_shrink(kernel.l2) or 0.0, dyn))
        shrink = max((r for r, _ in shrinks), default=None)
        return EmbeddingChain(layer, table, l2, rms, fed, shrink, tuple(dyn for _, dyn in shrinks))

    def check(self, model, analysis):
        for chain in self.chains(analysis):
            severity, alone = self.judge(chain)
            if severity is None:
                continue
            names = [k.layer.path for k in chain.kernels]
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            below = f"about {g(1 / chain.rms, 2)}x below" if chain.rms > 0 else "far below"
            fix = self.fix_alone(analysis, chain) if alone else self.fix(chain)
            fed = (f"{plural(len(names), 'layer')} it feeds in series with no normalization ({shown}) "
                   f"{'carries' if len(names) == 1 else 'carry'} L2 up to {g(chain.kernel_l2)}")
            if alone:
                dyn = chain.dynamics[0]
                said = (f"{fed}, which SGD (lr {g(dyn.lr)}, momentum {g(dyn.momentum)}) turns into a shrink of "
                        f"{g(chain.shrink)} per step")
                table = (f"carries L2({g(chain.table_l2)})" if chain.table_l2 else "carries no penalty")
                message = (f"embedding table {chain.table.name} starts at RMS {g(chain.rms)}, {below} the unit scale "
                           f"the kernels after it are initialised for, and {table}, while {said}: the weights must "
                           f"grow through those kernels to carry any signal, and every step pulls them back toward "
                           f"the trivial solution")
            else:
                message = (f"embedding table {chain.table.name} starts at RMS {g(chain.rms)}, {below} the unit scale "
                           f"the kernels after it are initialised for, and carries L2({g(chain.table_l2)}) while "
                           f"{fed}: the weights must grow through penalized layers to carry any signal, and every "
                           f"step pulls them back toward the trivial solution")
            yield self.finding(
                message, layer=chain.layer, target=chain.table.name, severity=severity, fix=fix,
                remedy=f"{fix.describe()}, or decoupled weight_decay that excludes the table",
                values={"strength": chain.strength, "table_rms": chain.rms, "table_l2": chain.table_l2,
                        "fed_layers": names, "fed_l2": [k.l2 for k in chain.kernels],
                        "kernel_shrink_per_step": chain.shrink, "kernels_alone": alone})

    def judge(self, chain: EmbeddingChain) -> tuple[Severity | None, bool]:
        """The severity, and whether it comes from the kernels' shrink under
        SGD alone (the table's L2 not needed for it)."""
        both = self.level(chain.strength, "embedding-chain-warning", "embedding-chain-error") \
            if chain.strength > 0 else None
        alone = self.level(chain.shrink, "table-kernels-shrink-warning", "table-kernels-shrink-error")
        if alone is not None and (both is None or alone.rank > both.rank):
            return alone, True
        return both, False

    @property
    def aim(self) -> float:
        return 0.5 * self.thresholds["embedding-chain-warning"]

    @property
    def shrink_aim(self) -> float:
        return 0.5 * self.thresholds["table-kernels-shrink-warning"]

    def fix(self, chain: EmbeddingChain) -> Fix:
        """The table's regularizer removed; the fed kernels' L2 at ``aim``."""
        changes = [Change("regularizer", chain.table_l2, None, layer=chain.layer, target=chain.table.name)]
        changes += [Change("lambda", k.l2, self.aim, layer=k.layer.path, target=k.variable.name)
                    for k in chain.kernels if k.l2 > self.aim]
        return Fix(f"penalties on the kernels only, at L2 {g(self.aim)}", tuple(changes))

    def fix_alone(self, analysis, chain: EmbeddingChain) -> Fix:
        """Each fed kernel's L2 set so that its shrink, the optimizer's
        decoupled part included, lands at ``shrink_aim``; removed where that
        part alone reaches it."""
        changes = []
        for k in chain.kernels:
            dyn = analysis.variable_dynamics(k.variable)
            if dyn.family != "sgd" or not dyn.lr or (dyn.total_shrink(k.l2) or 0.0) <= self.shrink_aim:
                continue
            room = self.shrink_aim - (dyn.decoupled_shrink or 0.0)
            safe = room * (1.0 - dyn.momentum) / (2.0 * dyn.lr) - dyn.coupled_l2 if room > 0 else 0.0
            changes.append(Change("lambda", k.l2, safe if safe > 0 else None, layer=k.layer.path,
                                  target=k.variable.name))
        return Fix(f"the kernels' L2 at a per-step shrink of {g(self.shrink_aim)}", tuple(changes))

    def sweep(self, model, analysis):
        """``strength`` scales with a common multiplier of the lambdas; the
        curve is the strongest chain's. Under SGD a second curve: the
        kernels' shrink, ``a*m + b`` (``b``: the optimizer's own decay)."""
        chains = self.chains(analysis)
        if not chains:
            return []
        curves = []
        chain = max(chains, key=lambda c: c.strength)
        if chain.strength > 0:
            fires = self.level(chain.strength, "embedding-chain-warning") is not None
            curves.append(Curve(self.code, "strength", "min(L2 of a small embedding table, largest L2 of the "
                                "kernels it feeds in series)", "lambda", slope=chain.strength, offset=0.0,
                                warning=self.thresholds["embedding-chain-warning"],
                                error=self.thresholds["embedding-chain-error"],
                                fix=self.aim / chain.strength if fires else None, lambdas=(chain.strength,)))
        fastest = max((c for c in chains if c.shrink), key=lambda c: c.shrink or 0.0, default=None)
        if fastest is not None and fastest.shrink:
            dyn = max(fastest.dynamics, key=lambda d: d.total_shrink(fastest.kernel_l2) or 0.0)
            offset = dyn.decoupled_shrink or 0.0
            slope = fastest.shrink - offset
            warning = self.thresholds["table-kernels-shrink-warning"]
            fires = fastest.shrink >= warning
            fix = (self.shrink_aim - offset) / slope if fires and slope > 0 and self.shrink_aim > offset else (
                0.0 if fires else None)
            curves.append(Curve(self.code, "kernel_shrink_per_step", "r = 2*lr*l2/(1-momentum) (+ lr*weight_decay) "
                                "of the fastest-shrinking kernel a small table feeds (SGD)", "lambda", slope=slope,
                                offset=offset, warning=warning,
                                error=self.thresholds["table-kernels-shrink-error"], fix=fix,
                                lambdas=(fastest.kernel_l2,)))
        return curves


def table_rms(variable) -> float | None:
    """The scale a table works at: the larger of its initializer's RMS and
    its saved values' (a table loaded from pre-trained vectors is stored
    large whatever its initializer says; one a penalty shrank is judged by
    where it started); either alone where the other is unknown."""
    saved = variable.stats.rms if variable.stats is not None and not variable.stats.nonfinite \
        and variable.stats.count else None
    known = [rms for rms in (init_rms(variable), saved) if rms is not None]
    return max(known) if known else None
