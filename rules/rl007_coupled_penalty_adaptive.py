"""# coupled-penalty-adaptive-optimizer (RL007)

## What it does
Flags L1/L2 regularizers on weights trained by an Adam-family optimizer
(Adam, Nadam, Adamax, RMSprop, Adagrad, Adadelta, Lion...), where the
penalty's gradient passes through the optimizer's per-weight
normalisation. Reports the critical data-gradient size
``g* = 2*l2*sigma_init + l1`` below which the penalty takes over a weight.
The optimizer's own coupled decay is the same penalty and is flagged the
same way: PyTorch ``Adam(weight_decay=wd)`` (and RMSprop, Adagrad...) adds
``wd*w`` to the gradient, Keras' ``L2(wd/2)``; ``sigma`` is then the saved
weights' RMS where no initializer is recorded.

## Why is this bad?
Adam divides every gradient by the running RMS of that weight's gradient.
A weight whose data gradient is small relative to the penalty gradient
moves toward zero by about ``eta`` per step *whatever lambda is*: L1(1e-6)
took a weight from 0.05 to 0.0008 in 100 steps at lr 1e-3 (theory section
4.4). Weights with large gradients are regularized less (Loshchilov &
Hutter). So "weak" lambdas are not weak, and strong ones are no stronger:
lambda stops meaning what it means under SGD.

## Example
``Adam(1e-3)`` with ``kernel_regularizer=L2(1e-3)`` on every Dense layer.

## Use instead
Decoupled decay: ``AdamW(weight_decay=...)`` (or Keras 3's
``weight_decay=`` on any optimizer) and no kernel regularizer. A starting
point of equal strength for the weights the data supports is
``weight_decay ~ 2*l2/s`` with ``s`` the data-gradient RMS; ``reglint
profile`` measures ``s``.

## Options
None.

## Formula
Adam step ``~ eta * m/(sqrt(v)+eps)``; penalty drift ``eta*2*l2*w/s`` when the
data-gradient RMS ``s >> 2*l2*|w|``, ``~eta*sign(w)`` when ``s << g*``.

## Thresholds and calibration
Structural (adaptive optimizer + coupled penalty). The severity is a
warning: the calibration grid (bench/CALIBRATION.md) shows whether such
runs were degraded rather than wrecked.

## References
- Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
- Bjorck, Weinberger & Gomes, "Understanding Decoupled and Early Weight Decay", AAAI 2021.
"""

from __future__ import annotations

from reglint.engine.finding import Severity
from reglint.engine.fmt import g, lam
from reglint.engine.rule import Rule
from reglint.estimate.init_scale import init_rms


class CoupledPenaltyAdaptive(Rule):
    code = "RL007"
    name = "coupled-penalty-adaptive-optimizer"
    severity = Severity.WARNING
    summary = "L1/L2 regularizers under an Adam-family optimizer are normalised away: lambda loses its meaning."

    def check(self, model, analysis):
        dyn = analysis.dynamics
        if dyn.family != "adaptive":
            return
        yield from self._optimizer_coupled(model, dyn)
        hits = [p for p in analysis.penalties if p.active and (p.l1 or p.l2) and p.variable.role.is_kernel_like]
        if not hits:
            return
        gstars = []
        for p in hits:
            sigma = init_rms(p.variable) or 0.0
            gstars.append(2 * p.l2 * sigma + p.l1)
        layers = sorted({p.layer.path for p in hits})
        regs = sorted({lam(p.regularizer) for p in hits})
        opt = model.optimizer.class_name if model.optimizer else "adaptive optimizer"
        suggestion = "AdamW" if opt in ("Adam", "Nadam", "Adamax") else f"{opt}(weight_decay=...)"
        yield self.finding(
            f"{len(hits)} kernels in {len(layers)} layers ({', '.join(layers[:3])}{'...' if len(layers) > 3 else ''}) "
            f"carry {', '.join(regs[:3])} under {opt}: a weight whose data gradient is below "
            f"~{g(max(gstars))} drifts to zero at about lr {g(dyn.lr)} per step whatever lambda is",
            target="kernel_regularizer",
            remedy=f"use decoupled decay ({suggestion}) and drop the kernel regularizers",
            values={"critical_gradient": max(gstars), "layers": layers, "learning_rate": dyn.lr,
                    "optimizer": opt})

    def _optimizer_coupled(self, model, dyn):
        """The optimizer's own weight_decay folded into the gradient (PyTorch Adam)."""
        if not dyn.coupled_l2:
            return
        opt = model.optimizer
        kernels = [v for layer, v in model.variables() if layer.trainable and v.trainable and v.role.is_kernel_like
                   and opt.decays(v.location) is not False]
        sigmas = [init_rms(v) or (v.stats.rms if v.stats and not v.stats.nonfinite else 0.0) for v in kernels]
        gstar = 2 * dyn.coupled_l2 * max(sigmas, default=0.0)
        drift = (f"a weight whose data gradient is below ~{g(gstar)} " if gstar
                 else "a weight with little data gradient ")
        yield self.finding(
            f"{opt.class_name}'s weight_decay {g(2 * dyn.coupled_l2)} is an L2 penalty added to the gradient "
            f"(L2 {g(dyn.coupled_l2)}), which {opt.class_name} divides by each weight's gradient RMS: {drift}"
            f"drifts to zero at about lr {g(dyn.lr)} per step whatever weight_decay is",
            target="optimizer.weight_decay",
            remedy="use decoupled decay: torch.optim.AdamW (or decoupled_weight_decay=True where the optimizer "
                   "has it) with the weight_decay you meant",
            values={"critical_gradient": gstar or None, "coupled_l2": dyn.coupled_l2, "learning_rate": dyn.lr,
                    "optimizer": opt.class_name, "kernels": len(kernels)})
