"""# penalized-embedding-chain (RL025)

## What it does
Finds an embedding table that starts small (Keras' default draws it
uniform in +-0.05, an RMS of 0.029) and carries an L2, feeding in series,
with no normalization between them or after them, a kernel that carries
an L2 too. Judges the weaker of the two lambdas (the table's, and the
largest of the kernels it feeds): both must be strong for the chain to
fail.

## Why is this bad?
The kernels after an embedding table are initialised (Glorot, He) for
inputs of unit scale; a table at RMS 0.029 hands them a signal about 35x
smaller, so the network starts next to the trivial solution and must grow
its weights through the table and the kernels after it to fit the data.
When both carry an L2, each step pulls back what that growth needs, on
every layer of the chain at once, and training stays at chance. Neither
penalty alone does it: on the probe below the table's L2 alone left every
flattened-embedding model healthy up to L2 0.3, and the kernels' L2 alone
collapsed them only under SGD. RL001's ratio, taken at initialisation, sees
a moderate penalty (5.8x to 7.8x the data loss on the calibration's
embedding model at L2 0.1) because the weights are still small there.

## Example
``Embedding(512, 8, embeddings_regularizer=L2(0.1))`` -> ``Flatten`` ->
``Dense(64, kernel_regularizer=L2(0.1))`` -> ``Dense(10,
kernel_regularizer=L2(0.1))`` under ``Adam(1e-3)`` or ``SGD(0.03,
momentum=0.9)``: every such training in the calibration ended at chance.

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
- ``small-table-rms`` (default 0.1): the table's RMS (the larger of its initializer's and its saved
  values', so that a table loaded from pre-trained vectors is not taken for a fresh one) at or below
  which it counts as starting small.

## Fix
Aim: penalties on the kernels only, at half the warning level: the table's
regularizer removed (RL008 says the same of every embedding table) and each
kernel of the chain whose L2 is above ``embedding-chain-warning/2`` set to
it.

## Formula
Tables: embedding penalties RL001 counts (not behind a normalization on
every path to the outputs) with ``l2 > 0`` and RMS ``<= small-table-rms``:
the larger of the initializer's (``estimate.init_scale.init_rms``:
``0.05/sqrt(3)`` for Keras' uniform default; ``stddev`` for a normal
initializer; 0 for zeros) and the saved values'. Kernels: counted kernel
penalties with ``l2 > 0`` that one forward path reaches from the table
without crossing a normalization (``Analysis.unnormalized_chain``).
``strength = min(l2_table, max l2_kernel)``.

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
    from reglint.estimate.penalty import TensorPenalty


@dataclass(frozen=True)
class EmbeddingChain:
    """A small table with an L2 and the penalized kernels it feeds in series."""

    table: TensorPenalty  # of the embeddings
    rms: float
    kernels: tuple[TensorPenalty, ...]  # per fed layer, its largest L2

    @property
    def strength(self) -> float:
        """The weaker of the table's L2 and the strongest fed kernel's."""
        return min(self.table.l2, max(k.l2 for k in self.kernels))


class PenalizedEmbeddingChain(Rule):
    code = "RL025"
    name = "penalized-embedding-chain"
    severity = Severity.ERROR
    summary = ("An embedding table that starts small and the kernels it feeds in series, with no normalization, "
               "carry L2 together.")
    predicts_outcome = True
    options = {
        "embedding-chain-error": Option(0.1, "the weaker L2 of a small embedding table and the kernels it feeds in "
                                             "series at which RL025 is an error"),
        "embedding-chain-warning": Option(0.03, "the same L2 at which RL025 is a warning"),
        "small-table-rms": Option(0.1, "an embedding table's RMS (initializer, else saved values) at or below which "
                                       "it counts as starting small"),
    }

    def chains(self, analysis) -> list[EmbeddingChain]:
        """Every small penalized table with the penalized kernels it feeds."""
        penalties = [p for p in analysis.chain_penalties() if p.l2]
        kernels: dict[str, TensorPenalty] = {}
        for p in penalties:
            if p.variable.role is not Role.EMBEDDINGS and p.l2 > getattr(kernels.get(p.layer.path), "l2", 0.0):
                kernels[p.layer.path] = p
        found = []
        for table in (p for p in penalties if p.variable.role is Role.EMBEDDINGS):
            rms = table_rms(table.variable)
            if rms is None or rms > self.thresholds["small-table-rms"]:
                continue
            fed = tuple(k for path, k in sorted(kernels.items())
                        if analysis.unnormalized_chain({table.layer.path, path}) == [table.layer.path, path])
            if fed:
                found.append(EmbeddingChain(table, rms, fed))
        return found

    def check(self, model, analysis):
        for chain in self.chains(analysis):
            severity = self.judge(chain)
            if severity is None:
                continue
            table, names = chain.table, [k.layer.path for k in chain.kernels]
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            below = f"about {g(1 / chain.rms, 2)}x below" if chain.rms > 0 else "far below"
            fix = self.fix(chain)
            yield self.finding(
                f"embedding table {table.variable.name} starts at RMS {g(chain.rms)}, {below} the unit scale the "
                f"kernels after it are initialised for, and carries L2({g(table.l2)}) while "
                f"{plural(len(names), 'layer')} it feeds in series with no normalization ({shown}) "
                f"{'carries' if len(names) == 1 else 'carry'} L2 up to "
                f"{g(max(k.l2 for k in chain.kernels))}: the weights must grow through penalized layers to carry "
                f"any signal, and every step pulls them back toward the trivial solution",
                layer=table.layer.path, target=table.variable.name, severity=severity, fix=fix,
                remedy=f"{fix.describe()}, or decoupled weight_decay that excludes the table",
                values={"strength": chain.strength, "table_rms": chain.rms, "table_l2": table.l2,
                        "fed_layers": names, "fed_l2": [k.l2 for k in chain.kernels]})

    def judge(self, chain: EmbeddingChain) -> Severity | None:
        return self.level(chain.strength, "embedding-chain-warning", "embedding-chain-error")

    @property
    def aim(self) -> float:
        return 0.5 * self.thresholds["embedding-chain-warning"]

    def fix(self, chain: EmbeddingChain) -> Fix:
        """The table's regularizer removed; the fed kernels' L2 at ``aim``."""
        changes = [Change("regularizer", chain.table.l2, None, layer=chain.table.layer.path,
                          target=chain.table.variable.name)]
        changes += [Change("lambda", k.l2, self.aim, layer=k.layer.path, target=k.variable.name)
                    for k in chain.kernels if k.l2 > self.aim]
        return Fix(f"penalties on the kernels only, at L2 {g(self.aim)}", tuple(changes))

    def sweep(self, model, analysis):
        """``strength`` scales with a common multiplier of the lambdas; the
        curve is the strongest chain's."""
        chains = self.chains(analysis)
        if not chains:
            return []
        chain = max(chains, key=lambda c: c.strength)
        fires = self.judge(chain) is not None
        return [Curve(self.code, "strength", "min(L2 of a small embedding table, largest L2 of the kernels it "
                      "feeds in series)", "lambda", slope=chain.strength, offset=0.0,
                      warning=self.thresholds["embedding-chain-warning"],
                      error=self.thresholds["embedding-chain-error"],
                      fix=self.aim / chain.strength if fires else None, lambdas=(chain.strength,))]


def table_rms(variable) -> float | None:
    """The scale a table works at: the larger of its initializer's RMS and
    its saved values' (a table loaded from pre-trained vectors is stored
    large whatever its initializer says; one a penalty shrank is judged by
    where it started); either alone where the other is unknown."""
    saved = variable.stats.rms if variable.stats is not None and not variable.stats.nonfinite \
        and variable.stats.count else None
    known = [rms for rms in (init_rms(variable), saved) if rms is not None]
    return max(known) if known else None
