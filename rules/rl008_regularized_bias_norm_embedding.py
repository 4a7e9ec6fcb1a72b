"""# regularized-bias-norm-embedding (RL008)

## What it does
Flags regularizers on normalization scales and offsets (``gamma``/``beta``),
biases, PReLU slopes and embedding tables, with their penalty at
initialisation; and notes when the optimizer's ``weight_decay`` will hit
them too (Keras applies it to every trainable variable unless excluded,
and the exclusions are not saved).

## Why is this bad?
- ``gamma`` starts at 1, so ``gamma_regularizer=L2(l)`` costs ``l*C`` per
  normalization layer at initialisation and pulls the layer's output scale
  toward zero. Where the next layers can take that scale over (every path
  from the layer reaches, through ReLU, pooling, dropout or reshapes, another
  normalization or a linear layer whose kernel is free to grow), the
  penalty is shed without changing the function: "absorbed", and left out
  of RL001. Where the output joins a residual ``Add``, enters attention,
  passes a saturating activation or reaches the prediction (or the next
  kernel is itself penalized), gamma scales the branch or the output
  itself: the penalty shrinks what the network computes and RL001 counts
  it like a kernel's.
- Biases and ``beta`` carry no capacity worth penalising ("no bias decay",
  He et al. 2019). Their penalty pulls them to zero, which is where such
  offsets start, so RL001 does not count it whatever its size (an LSTM's
  unit forget bias of 1 included): reaching its minimum leaves an ordinary
  network. A penalty large enough to destabilise the optimizer is RL002's.
- An embedding regularizer penalises the whole table every step while a
  row gets data gradient only when its token appears: rare tokens decay to
  zero (Zhou et al. 2018 introduced mini-batch-aware regularization for
  this).

## Example
``BatchNormalization(gamma_regularizer=L2(1e-3))`` after 26,560 channels
costs 26.6 at init, more than any data loss.

## Use instead
Regularize kernels only; exclude biases, norms and embeddings from
``weight_decay`` with ``optimizer.exclude_from_weight_decay(var_names=[...])``.

## Fix
Aim: penalties on kernels only: the fix removes the regularizer of each
flagged bias, gamma/beta, PReLU alpha or embedding table.

## Options
None.

## Formula
``gamma``: ``E[sum gamma^2] = C`` (ones); embeddings: ``E[sum w^2] =
V*d*0.05^2/3`` (uniform +-0.05 default). Absorption is a walk of the layer
graph (``reglint.engine.graph``).

## Thresholds and calibration
Structural; warning severity.

## References
- He et al., "Bag of Tricks for Image Classification with CNNs", CVPR 2019.
- Zhou et al., "Deep Interest Network", KDD 2018.
"""

from __future__ import annotations

from reglint.engine.finding import Change, Fix, Severity
from reglint.engine.fmt import g, lam, pct
from reglint.engine.rule import Rule
from reglint.model import Role

_WHY = {
    Role.GAMMA: "pulls the normalized output scale toward zero",
    "absorbed": "pulls the normalized output scale toward zero, which the next layer can take over",
    "branch": "pulls toward zero the scale of what this layer feeds (a residual Add, attention, a penalized "
              "kernel or the output), which no later layer takes over: RL001 counts it",
    Role.BETA: "penalises an offset that carries no capacity",
    Role.BIAS: "penalises an offset that carries no capacity",
    Role.ALPHA: "pushes activation slopes toward a fixed ReLU",
    Role.EMBEDDINGS: "decays rare tokens' rows every step while they get no data gradient",
}


class RegularizedBiasNormEmbedding(Rule):
    code = "RL008"
    name = "regularized-bias-norm-embedding"
    severity = Severity.WARNING
    summary = "Biases, normalization gamma/beta or embedding tables carry a regularizer."

    def check(self, model, analysis):
        scale = analysis.loss_scale.value
        for p in analysis.penalties:
            role = p.variable.role
            if not p.active or role not in _WHY or not p.regularizer.is_effective:
                continue
            cost = f"; penalty at init {g(p.penalty_init)} ({pct(p.penalty_init / scale)} of the data-loss scale)" \
                if p.penalty_init else ""
            why = _WHY[role]
            if role is Role.GAMMA:
                why = _WHY["absorbed"] if p.absorbed else _WHY["branch"]
            yield self.finding(
                f"{p.variable.name} ({role.value}, {g(p.n)} values) has {lam(p.regularizer)}: "
                f"it {why}{cost}",
                layer=p.layer.path, target=p.variable.name,
                remedy="drop this regularizer and regularize kernels only",
                fix=Fix("penalties on kernels only",
                        (Change("regularizer", p.l2 or p.l1, None, layer=p.layer.path, target=p.variable.name),)),
                values={"role": role.value, "penalty_init": p.penalty_init, "params": p.n,
                        "lambda": p.l2 or p.l1, "absorbed": p.absorbed, "counted": p.counted})
        yield from self._weight_decay_everywhere(model, analysis)

    def _weight_decay_everywhere(self, model, analysis):
        if not analysis.dynamics.weight_decay or model.optimizer is None:
            return
        if model.optimizer.exclude_from_weight_decay:
            return
        roles = {Role.GAMMA, Role.BETA, Role.BIAS, Role.EMBEDDINGS}
        n = sum(v.size for layer, v in model.variables() if layer.trainable and v.trainable and v.role in roles)
        if not n:
            return
        yield self.finding(
            f"weight_decay {g(analysis.dynamics.weight_decay)} also decays {g(n)} bias, normalization and "
            f"embedding values unless they were excluded (a saved file does not record exclusions)",
            target="optimizer.weight_decay", severity=Severity.INFO,
            remedy="exclude them: optimizer.exclude_from_weight_decay(var_names=['bias', 'gamma', 'beta'])",
            values={"values_decayed": n})
