"""# penalized-embedding-chain (RL025)

## What it does
Finds an embedding table that starts small (Keras' default draws it
uniform in +-0.05, an RMS of 0.029) and judges the kernels it feeds
first, through no normalization: their inputs are the table's small
signal. Two ways make the chain fail, and either is judged:

- the table carries an L2 too: the weaker of the table's L2 and those
  kernels', under any optimizer;
- under SGD, their L2 alone, whatever the table's: the per-step shrink
  ``2*lr*l2/(1-momentum)`` (plus ``lr*weight_decay``) it gives them;
- under SGD, the table and those kernels shrinking together: the slower of
  the two per-step shrinks, the table's own from its L2 and from the
  optimizer's ``weight_decay`` (which Keras applies to every variable not
  excluded from it).

An error needs a complete chain: a path from those kernels to an output on
which every kernel carries an L2 and no normalization re-scales the
signal. Where the path passes an unpenalized layer after them it is a
warning at most (such chains collapsed on some data and trained on
other); an unpenalized layer first (it can grow to re-scale the signal)
or a normalization right after the table leaves no finding. Tables that
feed the same kernels (a token and a position table added together) are
one finding.

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
- ``embedding-chain-error`` (default 0.1): the weaker L2 of the table and the kernels it feeds first at
  which RL025 is an error (on a complete chain).
- ``embedding-chain-warning`` (default 0.03): the same L2 at which it is a warning.
- ``table-kernels-shrink-error`` (default 0.05): under SGD, the per-step shrink
  ``2*lr*l2/(1-momentum)`` (+ ``lr*weight_decay``) of the kernels a small table feeds first at which
  RL025 is an error (on a complete chain), whatever the table's own L2.
- ``table-kernels-shrink-warning`` (default 0.015): the same shrink at which it is a warning.
- ``table-and-kernels-shrink-error`` (default 0.06): under SGD, the slower per-step shrink of a small table
  (``2*lr*l2/(1-momentum) + lr*weight_decay``) and of the kernels it feeds first at which RL025 is an error (on
  a complete chain), the finding then naming the table's own shrink. No warning level of its own: the kernels'
  shrink is at least as large, and their warning is lower. At the default it errs where the kernels' shrink
  does too (review 52: flattened models trained at 0.03, see Thresholds); lower it to judge the pair apart.
- ``small-table-rms`` (default 0.1): the table's RMS (the larger of its initializer's and its saved
  values', so that a table loaded from pre-trained vectors is not taken for a fresh one) at or below
  which it counts as starting small.

## Fix
Aim: penalties on the kernels only, at half the warning level: the table's
regularizer removed (RL008 says the same of every embedding table) and each
kernel tensor the table feeds whose L2 is above ``embedding-chain-warning/2``
set to it, or under SGD to the L2 whose shrink is half
``table-kernels-shrink-warning`` where that is lower (so the fix leaves
neither judgement firing). Where the SGD shrink is the finding's cause:
each fed kernel tensor's L2 set so that its shrink, the optimizer's
decoupled ``lr*wd`` included, is half ``table-kernels-shrink-warning``
(``l2 = 0.0075*(1-m)/(2*lr)``); where ``lr*wd`` alone reaches that, the
optimizer's ``weight_decay`` is lowered to half of it first (it decays the
table too, unless excluded). Where the table and the kernels shrinking
together are the cause: the same, and the tables' regularizers removed. A recurrent layer's L2 is removed, not
lowered: the probe's LSTM chains under SGD momentum collapsed at L2 0.01
(a shrink of 0.006, under the aim) on all three data sets, and review 47's
LSTM at the aim collapsed as well.

## Formula
Tables: embedding penalties RL001 counts (not behind a normalization on
every path to the outputs) with ``l2 > 0`` and RMS ``<= small-table-rms``:
the larger of the initializer's (``estimate.init_scale.init_rms``:
``0.05/sqrt(3)`` for Keras' uniform default; ``stddev`` for a normal
initializer; 0 for zeros) and the saved values', every such table,
penalized or not. First kernels: the layers with trainable kernels the
table's output reaches through layers without any (weightless, frozen)
and no normalization (``Analysis.first_kernels``); an unpenalized or
scale-invariant one (feeding a normalization) is skipped, and a layer
weighs its weakest trainable kernel tensor that multiplies its inputs (an
LSTM whose input kernel is unpenalized weighs 0; its recurrent kernel,
which multiplies its state, is left out: with ``kernel_regularizer``
alone, the recurrent kernel free, the probe's LSTM chains collapsed 9 of 9
under SGD momentum at L2 0.03-0.3, as with both penalized). Complete: from
that layer, some path to an output crosses no normalization and no free
kernel and carries L2 on every kernel (under SGD, L2 or the optimizer's
decoupled weight decay; ``Analysis.weakest_link_to_output``, a max-min
path walk). The walks follow calls: a layer applied to two tensors is two
nodes (``engine.calls.call_graph``), so a Dense shared by the table's
branch and another input is judged on the path the table's signal takes
(review 48, D3).
``strength = min(l2_table, max over first kernels of l2)``; under SGD also
``r`` = the largest first kernel's ``2*lr*(l2 + l2_opt)/(1-m) + lr*wd``
(``Dynamics.total_shrink``, each tensor at its param group's settings),
and ``together = min(r, r_table)`` with ``r_table`` the slowest trainable
table's ``2*lr*l2_table/(1-m) + lr*wd`` (a Keras file does not record
``exclude_from_weight_decay``, so a Keras table counts as decayed, as
Keras' default decays it; PyTorch's param groups say). The finding is the
worst of the three verdicts (at one severity: the L2, then together, then
the kernels' shrink), an error only on a complete chain.

Why the first kernels, not the weakest link: review 47 and review 48
trained the partial chains. An unpenalized first layer (then penalized
ones): 0.95-0.98 on digits, healthy. The first kernels penalized, the
rest unpenalized: 0.89-0.91 on digits (review 47) but chance on a task
read from one token (review 48): mixed, hence the warning. The first
kernels at L2 0.15 with the table, the classifier at 0.01, under Adam:
chance, as with the classifier at 0.15 (review 48), which a weakest-link
reading (0.01) missed.

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
there (RL007 errs from L2 0.2); ``reglint profile --data`` measured 13 of
those 15 collapses as errors and none of the 9 other runs
(``bench/emb_probe_profile.py``). Each run's untrained model saved and
linted, this branch adds 12 caught collapses and no error on a run that
trained: 55 of 98 wrecked runs caught (43 before), 6 of 100 healthy ones
flagged, all six by RL001, RL007 or RL024 at L2 0.3, as before. Checked
after the levels were set (``run --only shrink``), the same shrinks from
two other SGD settings, plain SGD at lr 0.3 and momentum 0.9 at lr 0.01,
on the flattened and Conv1D models: at 0.06, 12 of 12 collapsed, all
errors; at 0.018-0.02, 10 of 12 wrecked (the flattened model collapsed
under lr 0.01 with momentum, where at lr 0.03 it trained): warnings, which
``reglint profile --data`` settles.

The table and the kernels together (2026-12-03; review 47, D2: SGD(0.03,
momentum 0.9, weight_decay 1) with the kernels at L2 0.01 collapsed, the
table's norm at 0, where RL025 saw only the kernels' 0.036 per step, a
warning). ``bench/emb_probe.py run --only wd`` (72 runs): no L2, SGD
momentum's ``weight_decay`` 0.3, 1 and 3 (0.009, 0.03, 0.09 per step) on
every variable or with the table excluded, four families, three data
sets. At 0.03 with the table decayed: 12 of 12 collapsed; with it
excluded: 10 of 12 (the flattened model trained on breast cancer and
wine): the table's own shrink is what tips the flattened model.
``run --only both_shrink`` (60 runs): L2 on the table and the kernels at
the same shrink from three SGD settings (momentum 0.9 at lr 0.03 and 0.01,
plain SGD at lr 0.3): at 0.03, 24 of 24 collapsed (every family and
setting); at 0.018, the flattened model trained on 4 of 9 runs, the other
families collapsed 15 of 15; at 0.06, 12 of 12. The first level, 0.025
(between 0.018 and 0.03), did not hold: review 52 trained the flattened
model at 0.03 per step under SGD momentum (lr 0.03) on tokens it drew
itself (a vocabulary shared across positions, and one per feature as the
probe's): table and kernels at L2 0.05, 6 of 6 healthy; weight decay 1,
5 of 6 healthy or degraded (the bag-of-tokens, GRU and LSTM chains
collapsed, as in the probe). Error at **0.06**, where every run of both
probes failed (L2 0.1: 12 of 12; weight decay 3, 0.09: 24 of 24, the
flattened model 6 of 6); under it the kernels' shrink warns from 0.015,
and ``reglint profile --data`` measures the flattened chains (review 52's
profiles turned those errors into warnings). At 0.009 (weight decay 0.3) the bag-of-tokens,
LSTM and Conv1D chains collapsed 8 of 9 with no finding, the flattened one
trained 3 of 3: under the kernels' warning level, a miss the rule accepts
(``reglint profile --data`` measures it). The L2's verdict (``strength``)
is unchanged: at lr 0.03 and momentum 0.9 it reaches its error at L2 0.1
(a shrink of 0.06), where ``together`` meets it. Under
SGD a kernel decayed by ``weight_decay`` counts as pulled as one with an
L2 (``pull_of``: the decay as the L2 that shrinks as fast), so a chain
with no regularizer but the optimizer's decay is judged too. A Keras file
does not record ``exclude_from_weight_decay``: the table counts as decayed,
as Keras' default decays it, and the two flattened runs that excluded it
and trained would be errors at the pair's 0.025, not at 0.06. The
probe's 390 penalized runs, each untrained model linted (``emb_probe.py
lint``, the recurrent-kernel change below included): 116 of 247 collapses
caught (113 before; 156 with the pair's error at 0.025), 7 of 116 healthy
runs flagged (7 before; 9 at 0.025).

## References
- Keras ``keras/src/layers/core/embedding.py`` (``embeddings_initializer="uniform"``: ``RandomUniform(-0.05, 0.05)``).
- Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural networks", AISTATS 2010
  (kernels sized for unit-scale inputs).
- Zhou et al., "Deep Interest Network", KDD 2018 (embedding regularization in recommenders).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from reglint.engine.finding import Change, Fix, Severity, lambda_parameter
from reglint.engine.fmt import g
from reglint.engine.rule import Option, Rule
from reglint.engine.sweep import Curve
from reglint.estimate.init_scale import init_rms
from reglint.model import Role

if TYPE_CHECKING:  # pragma: no cover
    from reglint.estimate.dynamics import Dynamics
    from reglint.estimate.penalty import TensorPenalty
    from reglint.model import Layer, Variable


@dataclass(frozen=True)
class EmbeddingChain:
    """Small tables and the fully penalized paths from them to an output."""

    layers: tuple[str, ...]  # the tables' layer paths
    tables: tuple[Variable, ...]
    table_l2: float  # the weakest table's L2; 0 where one carries none
    rms: float  # the largest table's RMS
    chain: tuple[str, ...]  # the first penalized kernel with the largest L2, then its penalized path on
    kernel_l2: float  # that first kernel's L2 (a layer: its weakest kernel tensor)
    fed: tuple[TensorPenalty, ...]  # every penalized kernel tensor reachable from the tables, for the fix
    # under SGD: the first kernel with the largest per-step shrink (each
    # tensor at its param group's settings) and its path, that shrink, and
    # the dynamics of its tensors; None / () under an adaptive optimizer
    shrink_chain: tuple[str, ...] = ()
    shrink: float | None = None
    shrink_l2: float = 0.0  # that first kernel's L2
    dynamics: tuple[Dynamics, ...] = ()
    # every kernel on a path from the first one to an output carries L2;
    # False: the path passes an unpenalized layer (a warning at most)
    complete: bool = True
    # under SGD: the slowest table's per-step shrink, its L2 and the
    # optimizer's decoupled weight_decay together; None under an adaptive one
    table_shrink: float | None = None
    # every penalized kernel the tables feed first on a path of the same kind (review 67, 6: a Wide&Deep
    # model's tables feed the output Dense directly and a deep tower's first Dense: the words named one)
    firsts: tuple[str, ...] = ()

    @property
    def together(self) -> float | None:
        """Under SGD, the slower per-step shrink of the tables and the
        kernels they feed first: both pulled toward zero at least this fast."""
        if not self.table_shrink or not self.shrink:
            return None
        return min(self.table_shrink, self.shrink)

    @property
    def strength(self) -> float:
        """The weaker of the tables' L2 and their first kernels'."""
        return min(self.table_l2, self.kernel_l2)

    @property
    def weight_decay(self) -> float:
        return max((dyn.weight_decay or 0.0 for dyn in self.dynamics), default=0.0)


class PenalizedEmbeddingChain(Rule):
    code = "RL025"
    name = "penalized-embedding-chain"
    severity = Severity.ERROR
    summary = ("An embedding table that starts small feeds, with no normalization, kernels that carry L2 together "
               "with the table, or alone under SGD.")
    predicts_outcome = True
    options = {
        "embedding-chain-error": Option(0.1, "the weaker of a small embedding table's L2 and the L2 of the kernels "
                                             "it feeds first at which RL025 is an error (a complete chain)"),
        "embedding-chain-warning": Option(0.03, "the same L2 at which RL025 is a warning"),
        "table-kernels-shrink-error": Option(0.05, "under SGD, the per-step shrink 2*lr*l2/(1-momentum) (+ "
                                                   "lr*weight_decay) of the kernels a small table feeds first at "
                                                   "which RL025 is an error (a complete chain), whatever the "
                                                   "table's own L2"),
        "table-kernels-shrink-warning": Option(0.015, "the same shrink at which RL025 is a warning"),
        "table-and-kernels-shrink-error": Option(0.06, "under SGD, the slower per-step shrink of a small table "
                                                        "(its L2 through momentum and lr*weight_decay) and of the "
                                                        "kernels it feeds first at which RL025 is an error (a "
                                                        "complete chain)"),
        "small-table-rms": Option(0.1, "an embedding table's RMS (initializer, else saved values) at or below which "
                                       "it counts as starting small"),
    }

    def chains(self, analysis) -> list[EmbeddingChain]:
        """Small tables, penalized or not, with their paths of penalized
        kernels to an output (tables sharing one path: one chain)."""
        by_variable = {id(p.variable): p for p in analysis.chain_penalties(every_group=True) if p.l2}
        found: dict[tuple[str, ...], EmbeddingChain] = {}
        for layer in analysis.model.layers:
            for table in (v for v in layer.variables if v.role is Role.EMBEDDINGS):
                rms = table_rms(table)
                if rms is None or rms > self.thresholds["small-table-rms"]:
                    continue
                chain = _chain(analysis, layer, table, by_variable, rms)
                if chain is None:
                    continue
                same = found.get(chain.chain)
                found[chain.chain] = chain if same is None else replace(
                    same, layers=same.layers + chain.layers, tables=same.tables + chain.tables,
                    table_l2=min(same.table_l2, chain.table_l2), rms=max(same.rms, chain.rms),
                    fed=tuple({id(p.variable): p for p in same.fed + chain.fed}.values()),
                    table_shrink=_slower(same.table_shrink, chain.table_shrink),
                    firsts=tuple(dict.fromkeys(same.firsts + chain.firsts)))
        return list(found.values())

    def check(self, model, analysis):
        for chain in self.chains(analysis):
            severity, cause = self.judge(chain)
            if severity is not None:
                yield self._finding(analysis, chain, severity, cause)

    def _finding(self, analysis, chain: EmbeddingChain, severity: Severity, cause: str):
        alone = cause != LAMBDAS
        names = list(chain.shrink_chain if alone else chain.chain)
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        several = len(chain.layers) > 1
        below = f"about {g(1 / chain.rms, 2)}x below" if chain.rms > 0 else "far below"
        start = (f"the embedding table{'s' if several else ''} of {' and '.join(chain.layers)} "
                 f"start{'' if several else 's'} at RMS {g(chain.rms)}, {below} the unit scale the kernels after "
                 f"{'them' if several else 'it'} are initialised for")
        first_l2 = chain.shrink_l2 if alone else chain.kernel_l2
        decayed = bool(alone and chain.weight_decay)  # under SGD the weight decay pulls as an L2 does
        pulled = f"carry L2({g(first_l2)})" if first_l2 else "carry no L2 but decay with the weight decay"
        others = [path for path in chain.firsts if path != names[0]]
        if others:  # the kernels it feeds first on its other paths, whose chains the fix changes too
            names[0] += f"; {', '.join(others[:3])}{' and more' if len(others) > 3 else ''} on other paths"
        if chain.complete and decayed:
            path = (f"the kernels it feeds first ({names[0]}) {pulled}, and every kernel on to the output ({shown}) "
                    f"carries an L2 or decays with it, with no normalization or unpenalized layer to re-scale the "
                    f"signal")
        elif chain.complete:
            path = (f"the kernels it feeds first ({names[0]}) carry L2({g(first_l2)}), as does every kernel on to the "
                    f"output ({shown}), with no normalization or unpenalized layer to re-scale the signal")
        else:
            path = (f"the kernels it feeds first ({names[0]}) {pulled} and only unpenalized layers "
                    f"follow them to the output (such chains collapsed on some data and trained on other: a "
                    f"warning)")
        carries = "carry" if several else "carries"
        fix = self.fix(analysis, chain) if not alone else self.fix_alone(analysis, chain, tables=cause == TOGETHER)
        dyn = chain.dynamics[0] if chain.dynamics else None
        decay = f", weight_decay {g(chain.weight_decay)}" if chain.weight_decay else ""
        if cause == TOGETHER and dyn is not None:  # judged on complete chains only
            opt = analysis.model.optimizer
            unrecorded = opt is not None and opt.exclude_from_weight_decay is None
            by_decay = "the weight decay" + (", unless the table was excluded from it: the file does not record "
                                             "exclusions" if unrecorded else "")
            pulls = " and ".join(([f"its L2({g(chain.table_l2)})"] if chain.table_l2 else [])
                                 + ([by_decay] if chain.table_shrink and chain.table_shrink > (
                                     _coupled(analysis.variable_dynamics(chain.tables[0]), chain.table_l2))
                                     * (1 + 1e-9) else []))
            kernels = f"L2({g(first_l2)})" if first_l2 else "the weight decay alone"
            every = "carries an L2 or decays with it" if chain.weight_decay else "carries L2"
            message = (f"{start}; SGD (lr {g(dyn.lr)}, momentum {g(dyn.momentum)}{decay}) shrinks "
                       f"{'them' if several else 'it'} {g(chain.table_shrink)} per step ({pulls}) and the kernels it "
                       f"feeds first ({names[0]}, {kernels}) {g(chain.shrink)} per step, and every kernel on to the "
                       f"output ({shown}) {every}, with no normalization or unpenalized layer to re-scale the "
                       f"signal: the table and the kernels after it are pulled back toward the trivial solution "
                       f"together, and the small signal between them cannot regrow either")
        elif alone and dyn is not None:
            table = f"L2({g(chain.table_l2)})" if chain.table_l2 else "no penalty"
            message = (f"{start}, and {carries} {table}, while {path}: SGD (lr {g(dyn.lr)}, momentum "
                       f"{g(dyn.momentum)}{decay}) shrinks them {g(chain.shrink)} per step, so the weights must grow "
                       f"through kernels that every step pulls back toward the trivial solution")
        else:
            message = (f"{start}, and {carries} L2({g(chain.table_l2)}) while {path}: the weights must grow "
                       f"through penalized layers to carry any signal, and every step pulls them back toward the "
                       f"trivial solution")
        other = (", and exclude the table from weight_decay" if chain.weight_decay else
                 ", or decoupled weight_decay that excludes the table")
        return self.finding(
            message, layer=chain.layers[0], target=chain.tables[0].name, severity=severity, fix=fix,
            remedy=fix.describe() + other,
            values={"strength": chain.strength, "table_rms": chain.rms, "table_l2": chain.table_l2,
                    "tables": list(chain.layers), "fed_layers": names, "kernel_l2": chain.kernel_l2,
                    "kernel_shrink_per_step": chain.shrink, "table_shrink_per_step": chain.table_shrink,
                    "together_shrink_per_step": chain.together, "cause": cause,
                    "kernels_alone": cause == KERNELS, "complete_chain": chain.complete})

    def judge(self, chain: EmbeddingChain) -> tuple[Severity | None, str]:
        """The severity and its cause: the tables' and kernels' L2
        (``LAMBDAS``), under SGD the kernels' shrink whatever the table's
        (``KERNELS``), or the table and the kernels shrinking together
        (``TOGETHER``, an error only). At one severity the first of these
        speaks."""
        complete = chain.complete
        verdicts = [
            (self.level(chain.strength, "embedding-chain-warning", "embedding-chain-error" if complete else None)
             if chain.strength > 0 else None, LAMBDAS),
            (Severity.ERROR if complete and chain.together is not None
             and chain.together >= self.thresholds["table-and-kernels-shrink-error"] else None, TOGETHER),
            (self.level(chain.shrink, "table-kernels-shrink-warning",
                        "table-kernels-shrink-error" if complete else None), KERNELS),
        ]
        found = [(severity, cause) for severity, cause in verdicts if severity is not None]
        if not found:
            return None, LAMBDAS
        top = max(severity.rank for severity, _ in found)
        return next((severity, cause) for severity, cause in found if severity.rank == top)

    @property
    def aim(self) -> float:
        return 0.5 * self.thresholds["embedding-chain-warning"]

    @property
    def shrink_aim(self) -> float:
        return 0.5 * self.thresholds["table-kernels-shrink-warning"]

    def fix(self, analysis, chain: EmbeddingChain) -> Fix:
        """The tables' regularizers removed; every kernel tensor they feed
        at L2 ``aim``, or, under SGD, at the L2 whose shrink is
        ``shrink_aim`` where that is lower (so the fix leaves neither
        branch firing)."""
        changes = [Change("regularizer", chain.table_l2, None, layer=layer, target=table.name)
                   for layer, table in zip(chain.layers, chain.tables, strict=True)]
        for p in chain.fed:
            target = self.aim
            dyn = analysis.variable_dynamics(p.variable)
            if dyn.family == "sgd" and dyn.lr:
                target = min(target, self._sgd_l2(dyn, dyn.decoupled_shrink or 0.0) or 0.0)
            if _recurrent(p):
                target = 0.0
            if p.l2 > target * (1 + 1e-9):
                changes.append(_lambda_change(p, _tidy(target) or None))
        recurrent = _RECURRENT_AIM if any(_recurrent(p) for p in chain.fed) else ""
        return Fix(f"penalties on the kernels only, at L2 {g(self.aim)} or less{recurrent}", tuple(changes))

    def fix_alone(self, analysis, chain: EmbeddingChain, tables: bool = False) -> Fix:
        """Every kernel tensor the tables feed at the L2 whose shrink, the
        optimizer's decoupled part included, is ``shrink_aim``; where that
        part alone reaches it, the optimizer's weight_decay lowered to half
        of it first (the table decays with it unless excluded). ``tables``:
        the tables' regularizers removed as well (the two shrinking together)."""
        changes: list[Change] = [Change("regularizer", chain.table_l2, None, layer=layer, target=table.name)
                                 for layer, table in zip(chain.layers, chain.tables, strict=True)
                                 if tables and chain.table_l2]
        decay: dict[int, float] = {}
        for dyn in chain.dynamics:
            if (dyn.decoupled_shrink or 0.0) >= self.shrink_aim and dyn.lr:
                safe_wd = _tidy(0.5 * self.shrink_aim / dyn.lr)
                decay[id(dyn)] = dyn.lr * safe_wd
                if not any(c.parameter == "weight_decay" for c in changes):
                    changes.append(Change("weight_decay", dyn.weight_decay, safe_wd, target="optimizer"))
        for p in chain.fed:
            dyn = analysis.variable_dynamics(p.variable)
            if dyn.family != "sgd" or not dyn.lr:
                continue
            decoupled = decay.get(id(dyn), dyn.decoupled_shrink or 0.0)
            if (dyn.coupled_shrink(p.l2) or 0.0) + decoupled <= self.shrink_aim * (1 + 1e-9) and not _recurrent(p):
                continue
            safe = None if _recurrent(p) else self._sgd_l2(dyn, decoupled)
            changes.append(_lambda_change(p, _tidy(safe) if safe else None))
        recurrent = _RECURRENT_AIM if any(_recurrent(p) for p in chain.fed) else ""
        return Fix(f"the kernels' L2 at a per-step shrink of {g(self.shrink_aim)}{recurrent}", tuple(changes))

    def _sgd_l2(self, dyn: Dynamics, decoupled: float) -> float | None:
        """The L2 whose coupled shrink plus ``decoupled`` is ``shrink_aim``
        under ``dyn``; None where ``decoupled`` alone reaches it."""
        room = self.shrink_aim - decoupled
        if room <= 0 or not dyn.lr:
            return None
        safe = room * (1.0 - dyn.momentum) / (2.0 * dyn.lr) - dyn.coupled_l2
        return safe if safe > 0 else None

    def sweep(self, model, analysis):
        """``strength`` scales with a common multiplier of the lambdas; the
        curve is the strongest chain's. Under SGD a second curve: the shrink
        of the kernels a table feeds first, ``a*m + b`` (``b``: the
        optimizer's own decay)."""
        chains = self.chains(analysis)
        if not chains:
            return []
        curves = []
        chain = max(chains, key=lambda c: c.strength)
        if chain.strength > 0:
            fires = self.level(chain.strength, "embedding-chain-warning") is not None
            curves.append(Curve(self.code, "strength", "min(L2 of a small embedding table, L2 of the kernels it "
                                "feeds first)", "lambda", slope=chain.strength, offset=0.0,
                                warning=self.thresholds["embedding-chain-warning"],
                                error=self.thresholds["embedding-chain-error"] if chain.complete else None,
                                fix=self.aim / chain.strength if fires else None, lambdas=(chain.strength,),
                                layers=tuple(dict.fromkeys((*chain.layers, *chain.chain)))))
        fastest = max((c for c in chains if c.shrink), key=lambda c: c.shrink or 0.0, default=None)
        if fastest is not None and fastest.shrink:
            offset = max(dyn.decoupled_shrink or 0.0 for dyn in fastest.dynamics)
            slope = fastest.shrink - offset
            warning = self.thresholds["table-kernels-shrink-warning"]
            fires = fastest.shrink >= warning
            fix = (self.shrink_aim - offset) / slope if fires and slope > 0 and self.shrink_aim > offset else (
                0.0 if fires else None)
            curves.append(Curve(self.code, "kernel_shrink_per_step", "r = 2*lr*l2/(1-momentum) (+ lr*weight_decay) "
                                "of the kernels a small table feeds first (SGD)", "lambda",
                                slope=slope, offset=offset, warning=warning,
                                error=self.thresholds["table-kernels-shrink-error"] if fastest.complete else None,
                                fix=fix, lambdas=(fastest.kernel_l2,),
                                layers=tuple(dict.fromkeys((*fastest.layers, *fastest.shrink_chain))),
                                # its fix lowers the optimizer's weight_decay first where it decays: about the optimizer
                                about=() if any(dyn.weight_decay for dyn in fastest.dynamics) else None))
        return curves


# What a finding's verdict comes from (``judge``).
LAMBDAS, TOGETHER, KERNELS = "lambdas", "together", "kernels"

# A recurrent layer's L2 is removed, not lowered: the probe's LSTM chains
# under SGD momentum collapsed at L2 0.01 (a shrink of 0.006, under the
# aim) on all three data sets, and review 47's LSTM at the aim collapsed.
_RECURRENT_AIM = " (a recurrent layer's removed)"


def _recurrent(penalty: TensorPenalty) -> bool:
    return any(v.role is Role.RECURRENT_KERNEL for v in penalty.layer.variables)


def _kernels(layer: Layer | None) -> list:
    return [v for v in layer.variables if v.role.is_kernel_like and v.trainable] if layer is not None else []


def _input_kernels(layer: Layer) -> list:
    """The kernel tensors that multiply a layer's inputs: a recurrent
    layer's recurrent kernel multiplies its state, not the table's signal,
    and left free it did not rescue the chain (``emb_probe.py --only
    recurrent_free``: an LSTM with ``kernel_regularizer`` alone collapsed 9
    of 9 under SGD momentum from L2 0.03)."""
    return [v for v in _kernels(layer) if v.role is not Role.RECURRENT_KERNEL]


def _chain(analysis, table_layer: Layer, table, by_variable: dict, rms: float) -> EmbeddingChain | None:
    """A table's chain, judged by the penalized kernels it feeds first
    (through weightless layers, no normalization): the ones whose inputs
    are the table's small signal. Complete where a path from one of them
    to an output carries L2 on every kernel, partial where the path passes
    an unpenalized layer; None where every first kernel is free (it can grow
    to re-scale the signal) or no path reaches an output unnormalized."""
    start = table_layer.path

    def l2_of(layer: Layer) -> float:
        return min((getattr(by_variable.get(id(v)), "l2", 0.0) for v in _input_kernels(layer)), default=math.inf)

    def pull_of(layer: Layer) -> float:
        """The weakest kernel tensor's L2 plus, under SGD, the L2 that would
        shrink it as fast as the optimizer's decoupled weight_decay does
        (``lr*wd = 2*lr*l2/(1-m)``): positive where every kernel tensor is
        pulled toward zero, by a regularizer or by the weight decay."""
        if analysis.feeds_normalizer(layer):
            return 0.0  # scale-invariant: its norm is free
        return min((getattr(by_variable.get(id(v)), "l2", 0.0) + _decay_as_l2(analysis.variable_dynamics(v))
                    for v in _input_kernels(layer)), default=math.inf)

    def shrink_of(layer: Layer) -> float:
        rates = []
        for v in _input_kernels(layer):
            dyn = analysis.variable_dynamics(v)
            if dyn.family != "sgd" or not dyn.lr:
                return 0.0  # an adaptive optimizer: no static shrink
            rates.append(dyn.total_shrink(getattr(by_variable.get(id(v)), "l2", 0.0)) or 0.0)
        return min(rates, default=math.inf)

    def named(nodes) -> tuple[str, ...]:
        """A walk's nodes (a shared layer's call is a node: review 48, D3) as layer paths."""
        return tuple(dict.fromkeys(analysis.origin_path(node) for node in nodes))

    complete, partial = [], []
    for first in analysis.first_kernels(start):
        if pull_of(first) <= 0:
            continue  # unpenalized or scale-invariant: it can grow to re-scale the signal
        rest = analysis.weakest_link_to_output(first.path, pull_of, through_free=True)
        if rest is not None and rest[0] > 0:
            complete.append((first, named((first.path, *rest[1]))))
        elif analysis.weakest_link_to_output(first.path, lambda layer: math.inf, through_free=True) is not None:
            partial.append((first, named((first.path,))))
    candidates = complete or partial
    if not candidates:
        return None
    first, path = max(candidates, key=lambda c: l2_of(c[0]))
    fed = tuple({id(v): by_variable[id(v)] for layer in analysis.reachable(start) for v in _kernels(layer)
                 if id(v) in by_variable}.values())
    own = by_variable.get(id(table))
    table_l2 = own.l2 if own is not None else 0.0
    chain = EmbeddingChain((start,), (table,), table_l2, rms, path, l2_of(first), fed, complete=bool(complete),
                           firsts=tuple(dict.fromkeys(analysis.origin_path(c[0].path) for c in candidates)))
    fastest, shrink_path = max(candidates, key=lambda c: shrink_of(c[0]))
    shrink = shrink_of(fastest)
    if shrink <= 0 or not math.isfinite(shrink):
        return chain
    dynamics = tuple(analysis.variable_dynamics(v) for v in _input_kernels(fastest))
    return replace(chain, shrink_chain=shrink_path, shrink=shrink, shrink_l2=l2_of(fastest), dynamics=dynamics,
                   table_shrink=_table_shrink(analysis, table_layer, table, table_l2))


def _table_shrink(analysis, layer: Layer, table: Variable, l2: float) -> float | None:
    """Under SGD, the table's per-step shrink: its L2 through momentum and
    the optimizer's decoupled ``lr*weight_decay``, which Keras applies to
    every trainable variable unless excluded (a saved Keras file does not
    record exclusions; PyTorch's param groups do, and ``variable_dynamics``
    reads them). None for a frozen table or an adaptive optimizer."""
    if not table.trainable or not layer.trainable:
        return None
    dyn = analysis.variable_dynamics(table)
    if dyn.family != "sgd" or not dyn.lr:
        return None
    return dyn.total_shrink(l2) or None


def _decay_as_l2(dyn: Dynamics) -> float:
    """Under SGD, the L2 whose coupled shrink ``2*lr*l2/(1-m)`` equals the
    optimizer's decoupled ``lr*wd``; 0 without one or under an adaptive
    optimizer (whose decoupled decay is not this rule's)."""
    if dyn.family != "sgd" or not dyn.lr or not dyn.decoupled_shrink:
        return 0.0
    return dyn.decoupled_shrink * (1.0 - dyn.momentum) / (2.0 * dyn.lr)


def _coupled(dyn: Dynamics, l2: float) -> float:
    """The part of an SGD shrink an L2 gives (0 without one)."""
    return (dyn.coupled_shrink(l2) or 0.0) if l2 else 0.0


def _slower(a: float | None, b: float | None) -> float | None:
    """The slower of two tables' shrinks (None: not judged)."""
    return min(a, b) if a is not None and b is not None else None


def _lambda_change(penalty: TensorPenalty, suggested: float | None) -> Change:
    """A tensor's L2 set to ``suggested``, or its regularizer removed (None)."""
    return Change(lambda_parameter(penalty.l1, penalty.l2, "l2") if suggested is not None else "regularizer",
                  penalty.l2, suggested, layer=penalty.layer.path, target=penalty.variable.name)


def _tidy(value: float) -> float:
    """A suggested factor without float noise (0.0125, not 0.012499999999999997)."""
    return float(f"{value:.6g}")


def table_rms(variable) -> float | None:
    """The scale a table works at: the larger of its initializer's RMS and
    its saved values' (a table loaded from pre-trained vectors is stored
    large whatever its initializer says; one a penalty shrank is judged by
    where it started); either alone where the other is unknown."""
    saved = variable.stats.rms if variable.stats is not None and not variable.stats.nonfinite \
        and variable.stats.count else None
    known = [rms for rms in (init_rms(variable), saved) if rms is not None]
    return max(known) if known else None
