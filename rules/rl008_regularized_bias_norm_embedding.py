"""# regularized-bias-norm-embedding (RL008)

## What it does
Flags regularizers on normalization scales and offsets (``gamma``/``beta``),
biases, PReLU slopes and embedding tables, with their penalty at
initialisation; and notes when the optimizer's ``weight_decay`` will hit
them too (Keras applies it to every trainable variable unless excluded,
and the exclusions are not saved). Four or more layers whose same tensor
carries the same regularizer for the same reason are one finding that
lists them (a MobileNetV2 with L2 on gamma and beta: 2, not 104).

Where the optimizer records param groups (PyTorch checkpoints, Hugging Face
Trainer folders, a Keras MultiOptimizer, Keras' Muon: its AdamW step, which
updates every variable that is not 2-D, decays by ``adam_weight_decay``,
not ``weight_decay``), which variables decay is known: it reports the biases,
normalization gammas/betas and embedding tables in groups that decay
(coupled or decoupled). Where every parameter decays, all three; where a
group without decay exists, biases and normalization parameters left out of
it (a no-decay rule that missed them, e.g. one matching ``LayerNorm.weight``
on a model naming its norms ``ln_1``), while decayed embeddings are taken
as chosen (the Trainer decays them by default).

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
  this). A table that starts small and feeds penalized kernels in series is
  RL025's error: there the chain, not the table alone, ends training at
  chance (``bench/emb_probe.py``).

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
Structural; warning severity (info where the exclusions are not recorded,
or the param groups were matched to names with uncertainty). Never an
error: on the calibration grids (bench/CALIBRATION.md) gamma+beta L2 from
0.001 to 1 on residual CNNs and pre-/post-norm transformers (132 runs)
wrecked 6, all under SGD momentum (the residual CNN at lr 0.1 on digits from
0.03 and on breast cancer at 1, the post-norm transformer at 1), while the
same settings stayed healthy on wine, and no run wrecked under AdamW or
RMSprop; L2 0.1 to 10 on LSTM and GRU biases (36 runs) left all healthy.

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
    # review 57, 5: "no capacity" misread a threshold: an offset shifts an activation's threshold, but adds
    # no weight that fits noise, and starts at 0 where the penalty pulls it
    Role.BETA: "pulls an offset (a shift, an activation's threshold) toward 0, where it starts: it adds little "
               "capacity to overfit, so the penalty constrains the fit more than it regularizes",
    Role.BIAS: "pulls an offset (a shift, an activation's threshold) toward 0, where it starts: it adds little "
               "capacity to overfit, so the penalty constrains the fit more than it regularizes",
    Role.ALPHA: "pushes activation slopes toward a fixed ReLU",
    Role.EMBEDDINGS: "decays rare tokens' rows every step while they get no data gradient",
}


# Alike penalties on this many layers or more are one finding listing them
# (fewer read well one by one; ruff groups nothing, but a network repeats a
# block dozens of times).
GROUP_AT = 4


class RegularizedBiasNormEmbedding(Rule):
    code = "RL008"
    name = "regularized-bias-norm-embedding"
    severity = Severity.WARNING
    summary = "Biases, normalization gamma/beta or embedding tables carry a regularizer."

    def check(self, model, analysis):
        groups: dict[tuple, list] = {}  # alike penalties: the same tensor, role, reason and regularizer
        for p in analysis.penalties:
            role = p.variable.role
            if not p.active or role not in _WHY or not p.regularizer.is_effective:
                continue
            why = _WHY[role]
            if role is Role.GAMMA:
                why = _WHY["absorbed"] if p.absorbed else _WHY["branch"]
            groups.setdefault((p.variable.name, role, why, lam(p.regularizer)), []).append(p)
        for (name, role, why, _), alike in groups.items():
            if len(alike) >= GROUP_AT:
                yield self._grouped(name, role, why, alike, analysis.loss_scale.value)
                continue
            for p in alike:
                yield self._one(p, role, why, analysis.loss_scale.value)
        yield from self._weight_decay_everywhere(model, analysis)

    def _one(self, p, role, why: str, scale: float):
        cost = f"; penalty at init {g(p.penalty_init)} ({pct(p.penalty_init / scale)} of the data-loss scale)" \
            if p.penalty_init else ""
        return self.finding(
            f"{p.variable.name} ({role.value}, {g(p.n)} values) has {lam(p.regularizer)}: it {why}{cost}",
            layer=p.layer.path, target=p.variable.name,
            remedy="drop this regularizer and regularize kernels only",
            fix=Fix("penalties on kernels only",
                    (Change("regularizer", p.l2 or p.l1, None, layer=p.layer.path, target=p.variable.name),)),
            values={"role": role.value, "penalty_init": p.penalty_init, "params": p.n,
                    "lambda": p.l2 or p.l1, "absorbed": p.absorbed, "counted": p.counted})

    def _grouped(self, name: str, role, why: str, alike: list, scale: float):
        """One finding for ``GROUP_AT`` or more layers whose same tensor
        carries the same regularizer for the same reason (review 74, 4: a
        MobileNetV2 with L2 on gamma and beta read 104 warnings)."""
        layers = [p.layer.path for p in alike]
        total = sum(p.penalty_init or 0.0 for p in alike)
        cost = f"; penalty at init {g(total)} in all ({pct(total / scale)} of the data-loss scale)" if total else ""
        shown = ", ".join(layers[:3]) + (f" and {len(layers) - 3} more" if len(layers) > 3 else "")
        first = alike[0]
        return self.finding(
            f"{name} of {len(layers)} layers ({shown}; {role.value}, {g(sum(p.n for p in alike))} values) has "
            f"{lam(first.regularizer)}: it {why}{cost}",
            target=name, remedy="drop these regularizers and regularize kernels only",
            fix=Fix("penalties on kernels only", tuple(Change("regularizer", p.l2 or p.l1, None, layer=p.layer.path,
                                                              target=p.variable.name) for p in alike)),
            values={"role": role.value, "penalty_init": total, "params": sum(p.n for p in alike),
                    "lambda": first.l2 or first.l1, "absorbed": first.absorbed, "counted": first.counted,
                    "layers": layers})

    def _weight_decay_everywhere(self, model, analysis):
        opt = model.optimizer
        if opt is not None and opt.param_groups and all(g.mapping != "unmapped" for g in opt.param_groups):
            yield from self._decayed_by_groups(model, opt)
            return
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

    def _decayed_by_groups(self, model, opt):
        """Param groups say which variables decay: report the biases, norms and embeddings among them."""
        has_no_decay_group = any(not g.decays for g in opt.param_groups)
        roles = {Role.GAMMA, Role.BETA, Role.BIAS} | (set() if has_no_decay_group else {Role.EMBEDDINGS})
        hit = [v for layer, v in model.variables()
               if layer.trainable and v.trainable and v.role in roles and opt.decays(v.location)]
        if not hit:
            return
        groups = sorted({opt.group_of(v.location).index for v in hit})
        # in group order, as the group numbers after them (sorted as text, 10 came before 60 of group 0)
        settings = list(dict.fromkeys(_decay_setting(g) for g in opt.param_groups if g.index in groups))
        certain = all(g.mapping == "exact" for g in opt.param_groups)
        kinds = ", ".join(_plural(n, noun) for noun, n in sorted(_count_roles(hit).items()))
        names = ", ".join(_shown(model, v) for v in hit[:4]) + ("..." if len(hit) > 4 else "")
        where = "every parameter decays" if not has_no_decay_group else "outside the group without decay"
        if len(opt.param_groups) > 1:
            where = f"param group {', '.join(map(str, groups))}; {where}"
        remedy = "put biases, normalization weights" + ("" if has_no_decay_group else " and embeddings") \
            + " in a param group with weight_decay=0 (e.g. every parameter with ndim < 2)"
        if opt.class_name == "Muon":
            # Muon decays every variable its AdamW step updates by adam_weight_decay (muon.py)
            remedy = ("set adam_weight_decay=None: Muon then decays only the 2-D tensors its Muon step updates "
                      "(or exclude them: optimizer.exclude_from_weight_decay(var_names=['bias', 'gamma', 'beta']))")
        elif opt.class_name == "MultiOptimizer":
            # a second pattern for biases would clash with the one already matching them: Keras raises
            remedy = ("exclude them from the decaying sub-optimizer's decay: "
                      "exclude_from_weight_decay(var_names=['bias', 'gamma', 'beta']) on it")
        yield self.finding(
            f"{_settings_text(settings)} "
            f"({where}) decays {g(sum(v.size for v in hit))} values of "
            f"{kinds}: {names}",
            target="optimizer.weight_decay", severity=Severity.WARNING if certain else Severity.INFO,
            remedy=remedy,
            values={"values_decayed": sum(v.size for v in hit), "tensors_decayed": len(hit), "groups": groups,
                    "mapping_certain": certain})


def _decay_setting(group) -> tuple[str, object]:
    """The setting that decays a param group, as saved: Muon's AdamW step
    decays by ``adam_weight_decay``, every other group by ``weight_decay``."""
    hyper = group.hyperparameters
    if "adam_weight_decay" in hyper:
        return "adam_weight_decay", hyper["adam_weight_decay"]
    return "weight_decay", hyper.get("weight_decay")


def _settings_text(settings: list[tuple[str, object]]) -> str:
    """``weight_decay 0.01, 0.02``; ``weight_decay 0.1, adam_weight_decay 0.01``:
    each setting named once, its values after it."""
    by_name: dict[str, list[str]] = {}
    for name, value in settings:
        by_name.setdefault(name, []).append(g(value) if isinstance(value, (int, float)) else str(value))
    return ", ".join(f"{name} {', '.join(values)}" for name, values in by_name.items())


def _shown(model, var) -> str:
    """A variable as the message names it: its location where that is a
    parameter name (PyTorch), else ``layer/variable`` (a Keras file's
    location is an HDF5 path such as ``/layers/dense/vars/1``)."""
    layer = next((layer for layer, v in model.variables() if v is var), None)
    if not var.location.startswith("/"):
        # a wrapper's prefix (``module.``, ``_orig_mod.``) dropped, as the layer table drops it (review 41, 7)
        plain = f"{layer.path}.{var.name}" if layer is not None else var.location
        return plain if var.location.endswith("." + plain) else var.location
    return f"{layer.path}/{var.name}" if layer is not None else var.location


def _count_roles(variables) -> dict[str, int]:
    counts: dict[str, int] = {}
    for var in variables:
        key = {"gamma": "norm gamma", "beta": "norm beta", "bias": "bias",
               "embeddings": "embedding table"}[var.role.value]
        counts[key] = counts.get(key, 0) + 1
    return counts


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun if n == 1 else noun + ('es' if noun == 'bias' else 's')}"
