"""# decayed-twice (RL006)

## What it does
Finds weights that are decayed by two mechanisms at once: a coupled
``kernel_regularizer``/``bias_regularizer`` (L1/L2 in the loss) *and* the
optimizer's decoupled ``weight_decay``. Reports the combined per-step
shrink, once per model: one cause, one finding, with the layers listed.

## Why is this bad?
The two add (verified in Keras 3.15: ``base_optimizer.py`` applies
``weight_decay`` before the gradient step that carries the penalty), so the effective
decay is larger than either setting says; usually one of them was ported
from another framework's convention and the other left in place. Keras
does not save ``exclude_from_weight_decay``, so a saved file cannot show
that the regularized weights were excluded; reglint assumes the decay hits
every trainable weight, as Keras does by default. A PyTorch checkpoint
records its param groups: a weight in a group without decay is skipped.

## Example
``Dense(..., kernel_regularizer=L2(1e-3))`` compiled with
``AdamW(weight_decay=0.01)``.

## Use instead
Keep one: decoupled ``weight_decay`` (and no kernel regularizers) under
Adam-family optimizers; either under SGD, converting with
``L2(lambda) == weight_decay 2*lambda`` for plain SGD.

## Fix
Aim: one decay mechanism. The fix removes the coupled regularizers of the
listed tensors and keeps the optimizer's ``weight_decay`` (the convention
that survives a change of optimizer).

## Options
None.

## Formula
Per step: ``r = r_coupled + eta*wd``; ``r_coupled = 2*eta*l2/(1-b)`` under
SGD (under Adam the coupled part is normalised, RL007). Verified additive in
Keras: ``L2(0.5)`` and ``SGD(0.1, weight_decay=0.5)`` take w from 1 to 0.85
in one step (Keras ``keras/src/optimizers/base_optimizer.py``).

## Thresholds and calibration
None: the finding is structural (both present and non-zero). Whether the
sum is too strong is judged where each mechanism is: RL003 holds the
combined per-step shrink against its threshold, RL001 counts the coupled
penalty, RL021 the angle the sum sets on scale-invariant kernels.

## References
- Loshchilov & Hutter, ICLR 2019 (coupled vs decoupled decay).
- Keras ``keras/src/optimizers/base_optimizer.py`` (``exclude_from_weight_decay`` is not serialized).
"""

from __future__ import annotations

from reglint.engine.finding import Change, Fix, Severity
from reglint.engine.fmt import g, lam_list, plural
from reglint.engine.rule import Rule


class DecayedTwice(Rule):
    code = "RL006"
    name = "decayed-twice"
    severity = Severity.WARNING
    summary = "Weights carry a regularizer and are also hit by the optimizer's weight_decay."
    per_optimizer_group = True  # each param group's tensors with its own weight_decay (review 32)

    def check(self, model, analysis):
        dyn = analysis.dynamics
        if not dyn.weight_decay:
            return
        opt = model.optimizer
        # Where param groups say a variable is not decayed (PyTorch's no-decay group), it is decayed once.
        hits = [p for p in analysis.lead_penalties if p.active and (p.l1 or p.l2)
                and (opt is None or opt.decays(p.variable.location) is not False)]
        if not hits:
            return
        layers = list(dict.fromkeys(p.layer.path for p in hits))
        regs = lam_list(p.regularizer for p in hits)
        coupled = max((dyn.coupled_shrink(p.l2) or 0.0) for p in hits)
        decoupled = dyn.decoupled_shrink or 0.0
        combined = f"; together up to {g(coupled + decoupled)} per step" if coupled else ""
        shown = ", ".join(layers[:4]) + (f" and {len(layers) - 4} more" if len(layers) > 4 else "")
        yield self.finding(
            f"{plural(len(hits), 'tensor')} in {plural(len(layers), 'layer')} ({shown}) "
            f"{'carries' if len(hits) == 1 else 'carry'} "
            f"{regs} and the optimizer's weight_decay {g(dyn.weight_decay)}{analysis.group_text()} "
            f"({g(decoupled)} per step) also decays them{combined}",
            layer=layers[0] if len(layers) == 1 else None,
            target="regularizers" + (f" in {analysis.group_name()}" if analysis.judged_groups() else ""),
            remedy="keep one: drop the regularizers and rely on weight_decay, or set weight_decay to 0",
            fix=Fix("one decay mechanism: the optimizer's weight_decay",
                    tuple(Change("regularizer", p.l2 or p.l1, None, layer=p.layer.path, target=p.variable.name)
                          for p in hits)),
            values={"weight_decay": dyn.weight_decay, "decoupled_shrink": decoupled,
                    "coupled_shrink": coupled or None, "layers": layers,
                    "lambdas": sorted({p.l2 or p.l1 for p in hits})})
