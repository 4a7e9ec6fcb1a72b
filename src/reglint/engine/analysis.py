"""Everything the rules share about one model: the per-tensor penalties, the
data-loss scale, the optimizer dynamics and the training context a file
does not hold. Computed once per model, read by every rule.
"""

from __future__ import annotations

import copy
import math
import numbers
from dataclasses import dataclass, field, fields, replace
from fnmatch import fnmatch
from typing import Any

from reglint.engine.calls import call_graph
from reglint.engine.graph import (
    HOMOGENEOUS_ACTIVATIONS,
    ScaleWalk,
    every_path_ends,
    joins_channels_into_norms,
    longest_chain,
    normalizes,
    outbound_map,
    reach_map,
    rescales,
    walk_forward,
    widest_path,
)
from reglint.estimate.dynamics import Dynamics, dynamics_of, undampened_share
from reglint.estimate.loss_scale import LossScale, data_gradient_scale, model_loss_scale
from reglint.estimate.penalty import TensorPenalty, tensor_penalty
from reglint.model import Layer, LearningRate, Model, Optimizer, Provenance, Regularizer, Role, Variable
from reglint.readers.keras_schedules import unknown_rate_note

# Keras' fit() default batch size, used when the user gives none.
DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class ContextOption:
    """A scalar training-context setting as the user gives it."""

    name: str  # the TrainingContext field
    kind: type  # int, float or str
    help: str
    min: float | None = None
    max: float | None = None
    flags: tuple[str, ...] = ()  # extra command-line spellings
    positive: bool = False  # the bound ``min`` is excluded (a scale of 0 divides by zero)
    below_max: bool = False  # the bound ``max`` is excluded (momentum 1 never forgets a gradient)

    def range_text(self) -> str:
        """The valid values, as an error message says them: ``> 0``,
        ``in [0, 1)``, ``>= 2``."""
        low = None if self.min is None else f"{self.min:g}"
        if self.max is None:
            return f"> {low}" if self.positive else f">= {low}"
        left = "(" if self.positive else "["
        return f"in {left}{low or '-inf'}, {self.max:g}{')' if self.below_max else ']'}"

    def violation(self, value: float) -> str | None:
        """Why ``value`` is refused (not finite, out of range), None when valid.

        >>> next(o for o in context_options() if o.name == "momentum").violation(1.0)
        'must be in [0, 1), got 1'
        """
        if not math.isfinite(value):
            return f"must be a finite number, got {value!r}"
        low, high = self.min, self.max
        too_low = low is not None and not (value > low if self.positive else value >= low)
        too_high = high is not None and not (value < high if self.below_max else value <= high)
        return f"must be {self.range_text()}, got {value:g}" if too_low or too_high else None

    @property
    def key(self) -> str:
        """The [tool.reglint.context] key and the command-line flag's word."""
        return self.name.replace("_", "-")


def _opt(help: str, *, min: float | None = None, max: float | None = None,
         flags: tuple[str, ...] = (), positive: bool = False, below_max: bool = False) -> dict[str, Any]:
    return {"help": help, "min": min, "max": max, "flags": flags, "positive": positive, "below_max": below_max}


def _same_settings(a: Dynamics, b: Dynamics) -> bool:
    """Whether two groups' updates are judged alike: under an adaptive
    optimizer their epsilon too, the floor RL007 judges a penalty against
    (review 36, D1: groups differing only in eps were judged at one)."""
    eps = a.family != "adaptive" or a.eps == b.eps
    return a is b or (eps and (a.family, a.lr, a.momentum, a.nesterov, a.weight_decay, a.coupled_l2) == (
        b.family, b.lr, b.momentum, b.nesterov, b.weight_decay, b.coupled_l2))


def optimizer_groups_of(optimizer: Optimizer | None, lead: Dynamics) -> dict[str, tuple[int, Dynamics]]:
    """Variable location -> (its param group, the dynamics that update it)
    where an optimizer's groups differ in their settings and the reader
    mapped every group: a MultiOptimizer's sub-optimizers (each its class's
    family, learning rate, momentum and decoupled weight_decay) and PyTorch
    param groups (the optimizer's family, each group's learning rate,
    momentum and decay, coupled or decoupled). The lead group, whose
    settings the optimizer's top-level fields hold, gets ``lead`` itself.
    Empty otherwise."""
    if optimizer is None or len(optimizer.param_groups) < 2:
        return {}
    groups = optimizer.param_groups
    multi = optimizer.class_name == "MultiOptimizer"
    if any(g.mapping == "unmapped" or (multi and not g.hyperparameters.get("family")) for g in groups):
        return {}
    out: dict[str, tuple[int, Dynamics]] = {}
    for group in groups:
        dyn = lead if group.index == optimizer.lead_group else _group_dynamics(optimizer, group, multi)
        out.update((loc, (group.index, dyn)) for loc in group.variables)
    return out


def _group_dynamics(optimizer: Optimizer, group: Any, multi: bool) -> Dynamics:
    hp = group.hyperparameters
    if multi:  # the sub-optimizer's own class and settings
        beta_1 = hp.get("beta_1")
        return Dynamics(family=str(hp["family"]), lr=group.learning_rate, lr_initial=group.learning_rate,
                        momentum=min(group.momentum or 0.0, 0.999999), nesterov=bool(hp.get("nesterov", False)),
                        weight_decay=group.weight_decay or 0.0, coupled_l2=0.0,
                        beta_1=float(beta_1) if isinstance(beta_1, (int, float)) else None,
                        eps=_number(hp.get("epsilon")))
    momentum = group.momentum if group.momentum is not None else optimizer.momentum
    lr = group.learning_rate * undampened_share(hp, momentum) if group.learning_rate is not None else None
    return Dynamics(family=optimizer.family, lr=lr, lr_initial=lr,
                    momentum=min(momentum or 0.0, 0.999999), nesterov=optimizer.nesterov,
                    weight_decay=group.weight_decay or 0.0, coupled_l2=group.coupled_l2 or 0.0,
                    beta_1=optimizer.beta_1, eps=_number(hp.get("eps", hp.get("epsilon"))) or optimizer.epsilon)


def _number(value: Any) -> float | None:
    """A saved setting as a finite positive number, else None."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    return float(value) if ok else None


@dataclass
class TrainingContext:
    """What a model file does not say about training. Each field has a
    documented default; ``provenance`` says which were given by the user."""

    # One declaration per option: the field, its type, and (metadata) its
    # help, bounds and extra command-line flags. The CLI's options (check,
    # explain), the [tool.reglint.context] keys and reglint.lint()'s keyword
    # arguments are all made from these fields (``context_options``).
    samples: int | None = field(default=None, metadata=_opt("Training examples N.", min=1))
    batch_size: int | None = field(default=None, metadata=_opt("Batch size B (default: 32).", min=1))
    epochs: int | None = field(default=None, metadata=_opt("Epochs E: the training lasts E x ceil(N/B) steps (needs "
                                                           "--samples). Give --epochs or --steps, not both.", min=1))
    steps: int | None = field(default=None, metadata=_opt("Total optimizer steps T, instead of --epochs (either "
                                                          "flag replaces the other's config value).", min=1))
    target_var: float | None = field(default=None, metadata=_opt(
        "Variance of regression targets (> 0: the data-loss scale divides by it).", min=0.0, positive=True))
    input_var: float | None = field(default=None, metadata=_opt("Second moment E(x^2) of the input features (default "
        "1: standardised), for RL010's activity estimate (pixels in [0, 1]: 0.1-0.4).", min=0, max=1e12, positive=True))
    input_mean: float | None = field(default=None, metadata=_opt("RMS of the input features' means, for RL010 beside "
        "--input-var (default: a mean square away from 1 taken as all mean; 0: zero-mean inputs).", min=-1e6, max=1e6))
    classes: int | None = field(default=None, metadata=_opt("Number of classes C.", min=2))  # 1: ln 1 = 0, no loss
    loss_scale: float | None = field(default=None, metadata=_opt("Typical data loss, overriding the estimate.",
                                                                 min=0.0, positive=True))
    # Settings for files that carry none (ONNX inference graphs) or to
    # override the file: optimizer class, learning rate, momentum, decay.
    optimizer: str | None = field(default=None, metadata=_opt(
        "Optimizer class (SGD, Adam, AdamW ...; any case), for files that save none (ONNX) or replacing a saved "
        "one's class: the file's learning rate, momentum and weight decay are kept unless --lr, --momentum or "
        "--weight-decay are given, and a note says what was kept. Spelled torch.optim.X (or on a PyTorch "
        "checkpoint), PyTorch's weight_decay semantics apply: coupled (an L2 in the gradient, Keras' "
        "L2(wd/2)) for SGD, Adam, RMSprop ..., decoupled for AdamW."))
    learning_rate: float | None = field(default=None, metadata=_opt("Learning rate (peak).", min=0.0,
                                                                    flags=("--lr",)))
    momentum: float | None = field(default=None, metadata=_opt(
        "Momentum (SGD): the steady-state shrink divides by 1 - momentum.", min=0.0, max=1.0,
        below_max=True))
    weight_decay: float | None = field(default=None, metadata=_opt(
        "Weight decay, replacing the file's (one decay, this value): decoupled for Keras optimizers and AdamW; "
        "for a torch.optim class or a PyTorch checkpoint, torch's own (coupled for SGD, Adam ...).", min=0.0))
    # Layer-pattern regularizers: [{"layers": "fc*", "target": "kernel", "l2": 1e-4}]
    regularizers: list[dict[str, Any]] = field(default_factory=list)
    # How to read custom regularizer classes: {"acme>MyL2": {"kind": "l2", "factor": "strength"}}
    custom_regularizers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The bounds of each option hold for reglint.lint(**context) too,
        # not only for the command line and the config file.
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if "help" in meta and value is not None:
                _check_kind(f.name, value, _option_of(f).kind)
            if f.name == "optimizer" and value is not None:
                from reglint.readers.optimizer_names import checked_optimizer_setting

                self.optimizer = checked_optimizer_setting(value)
            if "help" not in meta or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            why = _option_of(f).violation(value)
            if why:
                raise ValueError(f"{f.name} {why}")

    # Batches per optimizer step: the file's gradient_accumulation_steps
    # (set by Analysis, not an option). Keras applies one update every
    # ``accumulation`` batches, so an epoch of ceil(N/B) batches is that many
    # times fewer optimizer steps.
    accumulation: int = 1

    def changes_model(self) -> bool:
        """True when the context overrides what the file holds (optimizer
        settings, pattern or mapped custom regularizers)."""
        return bool(self.optimizer or self.learning_rate is not None or self.weight_decay is not None
                    or self.momentum is not None or self.regularizers or self.custom_regularizers)

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size or DEFAULT_BATCH_SIZE

    def steps_per_epoch(self) -> int | None:
        """Optimizer steps per epoch.

        >>> TrainingContext(samples=1000, batch_size=32).steps_per_epoch()
        32
        >>> TrainingContext(samples=1000, batch_size=32, accumulation=4).steps_per_epoch()
        8
        """
        if self.samples is None:
            return None
        return max(1, math.ceil(math.ceil(self.samples / self.effective_batch_size) / self.accumulation))

    def total_steps(self) -> int | None:
        if self.steps is not None:
            return self.steps
        per_epoch = self.steps_per_epoch()
        if per_epoch is not None and self.epochs is not None:
            return per_epoch * self.epochs
        return None


def _check_kind(name: str, value: Any, kind: type) -> None:
    """TypeError naming the option when ``value`` is not of its kind (an
    integer, a number, a string): ``samples="many"`` must not reach the
    arithmetic. A bool is no number here."""
    wanted = {int: (numbers.Integral, "an integer"), float: (numbers.Real, "a number"), str: (str, "a string")}
    base, words = wanted[kind]
    if isinstance(value, bool) or not isinstance(value, base):
        raise TypeError(f"{name} must be {words}, got {value!r} ({type(value).__name__})")


def optimizer_context_note(saved: Optimizer | None, ctx: TrainingContext) -> str | None:
    """What the user's optimizer settings leave to the file or to an
    assumption, said in the report: a class replaced keeps the file's other
    settings; with no optimizer saved, SGD is assumed and a missing
    learning rate leaves the decay's shrink unjudged."""
    if saved is None:
        assumed = [] if ctx.optimizer else ["SGD assumed (give --optimizer)"]
        if ctx.learning_rate is None:
            assumed.append("no learning rate (give --lr: without it no per-step shrink is judged)")
        return f"no optimizer saved: {'; '.join(assumed)}" if assumed else None
    if not ctx.optimizer or _class_of(ctx.optimizer).lower() == saved.class_name.lower():
        return None
    kept = []
    if ctx.learning_rate is None and saved.learning_rate is not None and saved.learning_rate.initial is not None:
        kept.append(f"lr {saved.learning_rate.initial:g}")
    if ctx.momentum is None and saved.momentum:
        kept.append(f"momentum {saved.momentum:g}" + (" nesterov" if saved.nesterov else ""))
    if ctx.weight_decay is None and saved.weight_decay:
        kept.append(f"weight_decay {saved.weight_decay:g}")
    if saved.coupled_l2:
        kept.append(f"coupled L2 {saved.coupled_l2:g}")
    return (f"optimizer class {saved.class_name} (from the file) replaced by {_class_of(ctx.optimizer)} (--optimizer)"
            + (f"; kept from the file: {', '.join(kept)}" if kept else ""))


def _class_of(setting: str) -> str:
    from reglint.readers.optimizer_names import split_setting

    return split_setting(setting)[0]


def _torch_number(opt: Optimizer) -> float | None:
    """The decay as the file's framework wrote it: a decoupled one as is, a
    coupled ``L2(c)`` as torch's ``weight_decay`` 2c."""
    from reglint.readers.torch_optim import torch_weight_decay

    return torch_weight_decay(opt.weight_decay, opt.coupled_l2)


# ``target = "kernel"`` (``--l2``'s target) means a layer's weight kernels as
# Keras regularizes them: ``kernel_regularizer``, and for depthwise and
# separable convolutions ``depthwise_regularizer``/``pointwise_regularizer``
# (they have no plain kernel). Recurrent kernels keep their own
# ``recurrent_regularizer`` in Keras: target them by name.
KERNEL_TARGET_ROLES = (Role.KERNEL, Role.DEPTHWISE_KERNEL, Role.POINTWISE_KERNEL)


def layer_matches(pattern: str, path: str, name: str | None = None) -> bool:
    """Whether a layer PATTERN (a whole-name glob) matches a layer by its
    path or its name (the path's last part when no name is given).

    >>> layer_matches("fc*", "encoder/fc1"), layer_matches("fc", "encoder/fc1")
    (True, False)
    """
    return fnmatch(path, pattern) or fnmatch(path.rsplit("/", 1)[-1] if name is None else name, pattern)


def pattern_targets(model: Model, spec: dict[str, Any]) -> list[tuple[Layer, Variable]]:
    """The variables a pattern regularizer (``[tool.reglint.context]
    regularizers``, ``--l2``, ``--l1``) applies to: layers whose path or name
    matches ``layers``, variables whose role or name is ``target`` (``*``:
    all; ``kernel``: ``KERNEL_TARGET_ROLES``)."""
    pattern, target = spec.get("layers", "*"), spec.get("target", "kernel")
    out = []
    for layer, var in model.variables():
        if not layer_matches(pattern, layer.path, layer.name):
            continue
        if target in ("*", var.role.value, var.name) or (target == "kernel" and var.role in KERNEL_TARGET_ROLES):
            out.append((layer, var))
    return out


def context_options() -> list[ContextOption]:
    """The scalar options of ``TrainingContext``, from its fields.

    >>> [o.key for o in context_options()][:3]
    ['samples', 'batch-size', 'epochs']
    >>> next(o for o in context_options() if o.name == "momentum").max
    1.0
    """
    return [_option_of(f) for f in fields(TrainingContext) if "help" in f.metadata]


_KINDS = {"int | None": int, "float | None": float, "str | None": str}


def _option_of(f) -> ContextOption:
    meta = f.metadata
    return ContextOption(f.name, _KINDS[str(f.type)], meta["help"], meta["min"], meta["max"], meta["flags"],
                         meta["positive"], meta["below_max"])


class Analysis:
    """Shared estimates for one model under one training context."""

    def __init__(self, model: Model, context: TrainingContext | None = None):
        self.context = context or TrainingContext()
        # The reader's description stays as the file holds it: user settings
        # go into a copy, which ``self.model`` then is.
        self.model = copy.deepcopy(model) if self.context.changes_model() else model
        model = self.model
        self._apply_context()
        self.loss_scale: LossScale = model_loss_scale(
            model, override=self.context.loss_scale, target_var=self.context.target_var,
            classes=self.context.classes, batch_size=self.context.effective_batch_size)
        self.dynamics: Dynamics = dynamics_of(model.optimizer)
        ctx = self.context  # settings given on the command line apply to the whole optimizer
        given = any(v is not None for v in (ctx.optimizer, ctx.learning_rate, ctx.momentum, ctx.weight_decay))
        self._sub_groups = {} if given else optimizer_groups_of(model.optimizer, self.dynamics)
        # the param group whose settings ``dynamics`` are (None: one group, or settings given for all)
        self.optimizer_group: int | None = model.optimizer.lead_group if model.optimizer and not given else None
        # False on the copies ``group_views`` makes: what a rule judges once
        # per model (not per optimizer group) it judges on the lead view
        self.is_lead_view = True
        self._apply_accumulation()
        self._outbound = outbound_map(model)
        # every consumer, for order (chains, what stands behind a normalization)
        self._reach = reach_map(model) if any(x.downstream is not None for x in model.layers) else self._outbound
        # a node per call of a shared layer: walks that follow one tensor (RL025), moments per call (RL010); None: none
        self.calls = call_graph(model, self._reach)
        self._inbound: dict[str, list[Layer]] | None = None  # built on first use (producers)
        self._outputs: set[str] | None = None  # the layers producing the model's outputs, on first use
        self.penalties: list[TensorPenalty] = []
        for layer, var in model.variables():
            # a NaN, infinite or negative factor is RL012's: no penalty to estimate from it
            if var.regularizer is not None and var.regularizer.kind != "custom" and var.regularizer.is_valid:
                penalty = tensor_penalty(layer, var)
                penalty.scale_invariant = var.role.is_kernel_like and self.feeds_normalizer(layer)
                penalty.offset = var.role in (Role.BIAS, Role.BETA)
                penalty.behind_norm = self.behind_normalizer(layer)
                self.penalties.append(penalty)
        unabsorbed = self._unabsorbed_norms()
        for p in self.penalties:
            p.absorbed = p.variable.role in (Role.GAMMA, Role.BETA) and p.layer.path not in unabsorbed

    # -- context -----------------------------------------------------------

    def _apply_accumulation(self) -> None:
        """Under gradient accumulation every step the rules count is an
        optimizer update, one per ``k`` batches (Keras' BaseOptimizer.apply)."""
        opt = self.model.optimizer
        k = opt.gradient_accumulation_steps if opt is not None else None
        if k is not None and k > 1:
            self.context = replace(self.context, accumulation=k)
            note = (f"gradient_accumulation_steps {k}: one optimizer step every {k} batches; steps and timescales "
                    "here are optimizer steps")
            if note not in self.model.notes:  # the reader's model, when no setting copied it
                self.model.notes.append(note)

    def optimizer_steps_taken(self) -> int | None:
        """The updates the file's optimizer applied: its stored counter, which
        counts batches, divided by the accumulation (Keras 3.5+ reports
        ``optimizer.iterations`` the same way)."""
        opt = self.model.optimizer
        if opt is None or opt.iterations is None:
            return None
        return opt.iterations // self.context.accumulation

    def _apply_context(self) -> None:
        """User settings fill in (or override) what the file holds, marked USER."""
        ctx, model = self.context, self.model
        saved_lr = model.optimizer.learning_rate if model.optimizer is not None else None
        unknown = unknown_rate_note(saved_lr.schedule, saved_lr.initial, saved_lr.peak) if saved_lr else None
        if unknown and ctx.learning_rate is None and unknown not in model.notes:
            model.notes.append(unknown)  # a custom schedule: saved, but no rate to judge by
        if ctx.optimizer or ctx.learning_rate is not None or ctx.weight_decay is not None or ctx.momentum is not None:
            opt = model.optimizer or Optimizer(class_name=_class_of(ctx.optimizer or "SGD"), source=Provenance.USER)
            note = optimizer_context_note(model.optimizer, ctx)
            if note:
                model.notes.append(note)
            torch = model.framework == "pytorch" or (ctx.optimizer or "").startswith("torch.optim.")
            file_wd = _torch_number(opt) if model.optimizer is not None else None
            if ctx.optimizer:
                opt.class_name, opt.source = _class_of(ctx.optimizer), Provenance.USER
            if ctx.learning_rate is not None:
                opt.learning_rate = LearningRate(ctx.learning_rate, ctx.learning_rate, source=Provenance.USER)
            if ctx.weight_decay is not None:
                self._replace_decay(opt, ctx.weight_decay, torch, file_wd)
            elif torch and ctx.optimizer and model.framework == "pytorch" and file_wd:
                self._replace_decay(opt, file_wd, torch, None)  # the file's number, read as the new class reads it
            if ctx.momentum is not None:
                opt.momentum = ctx.momentum
            model.optimizer = opt
        for spec in ctx.regularizers:
            self._apply_pattern_regularizer(spec)
        for _, var in model.variables():
            if var.regularizer is not None and var.regularizer.kind == "custom":
                mapped = _map_custom(var.regularizer, ctx.custom_regularizers)
                if mapped is not None:
                    var.regularizer = mapped

    def _replace_decay(self, opt: Optimizer, wd: float, torch: bool, file_wd: float | None) -> None:
        """One decay, ``wd``, in place of the file's: decoupled for Keras;
        as ``torch.optim`` reads its ``weight_decay`` for torch (coupled
        ``L2(wd/2)`` for SGD/Adam..., decoupled for AdamW: the reader's
        ``decay_fields``). Each param group that decayed takes it (groups
        saved without decay, the usual biases-and-norms group, keep none;
        when none decayed, every group takes it)."""
        from reglint.readers.torch_optim import class_decoupled, decay_fields

        decoupled = class_decoupled(opt.class_name) if torch else True
        opt.weight_decay, opt.coupled_l2 = decay_fields(wd, decoupled)
        decaying = [g for g in opt.param_groups if g.decays] or opt.param_groups
        for group in decaying:
            group.weight_decay, group.coupled_l2 = decay_fields(wd, decoupled)
            group.hyperparameters = {**group.hyperparameters, "weight_decay": wd}
        if file_wd and file_wd != wd and self.context.weight_decay is not None:
            self.model.notes.append(f"weight_decay {wd:g} (--weight-decay) replaces the file's {file_wd:g}")

    def _apply_pattern_regularizer(self, spec: dict[str, Any]) -> None:
        for _, var in pattern_targets(self.model, spec):
            l1, l2 = float(spec.get("l1", 0.0)), float(spec.get("l2", 0.0))
            previous = var.regularizer
            if previous is not None and previous.class_name == "(user)":
                # --l2 'fc=1e-4' --l1 'fc=1e-5': one L1L2, as Keras' L1L2 would be
                l1 = l1 if "l1" in spec else previous.l1
                l2 = l2 if "l2" in spec else previous.l2
            kind = "l1l2" if l1 and l2 else ("l1" if l1 else "l2")
            var.regularizer = Regularizer(kind=kind, l1=l1, l2=l2, class_name="(user)",
                                          config=dict(spec), source=Provenance.USER)

    @property
    def data_gradient_scale(self) -> float:
        """How much larger the data gradient is than cross-entropy's, for the
        pull gates of RL001 and RL007 (``loss_scale.data_gradient_scale``),
        under this view's optimizer (a param group view's own family)."""
        return data_gradient_scale(self.model, adaptive=self.dynamics.family == "adaptive",
                                   target_var=self.context.target_var)

    # -- graph ---------------------------------------------------------------

    def feeds_normalizer(self, layer: Layer) -> bool:
        """True when every consumer of ``layer`` is a normalization layer,
        possibly through layers that keep positive scale invariance, or a
        channel ``Concatenate`` into per-channel normalizations (DenseNet's
        blocks: ``graph.joins_channels_into_norms``)."""
        layer = self.origin(layer)
        if layer.activation not in HOMOGENEOUS_ACTIVATIONS:
            return False
        return every_path_ends(layer, self._outbound, lambda nxt: rescales(nxt) or joins_channels_into_norms(
            nxt, self._outbound))

    def consumers(self, layer: Layer) -> list[Layer]:
        """The layers ``layer``'s output feeds directly (within its container)."""
        return list(self._outbound.get(layer.path, []))

    def producers(self, layer: Layer) -> list[Layer]:
        """The layers feeding ``layer`` directly: ``consumers`` inverted."""
        if self._inbound is None:
            by_path = {item.path: item for item in self.model.layers}
            self._inbound = {}
            for source, targets in self._outbound.items():
                for target in targets:
                    if source in by_path:
                        self._inbound.setdefault(target.path, []).append(by_path[source])
        return list(self._inbound.get(layer.path, []))

    def behind_normalizer(self, layer: Layer) -> bool:
        """True when every path from ``layer`` to the model's outputs passes
        a normalization layer (a transformer's final LayerNorm): whatever
        the penalty does to its scale, the prediction is computed from
        normalized features. A layer that is itself a model output is not,
        whatever else it feeds."""
        if self._is_output(layer):
            return False
        return every_path_ends(layer, self._reach, normalizes, through=lambda nxt: True)

    def _is_output(self, layer: Layer) -> bool:
        if self._outputs is None:
            self._outputs = {o.layer for o in self.model.outputs}
        return (layer.feeds_output or layer.path in self._outputs
                or (layer.path == layer.name and layer.name in self._outputs))

    # -- which optimizer updates a tensor -----------------------------------

    def optimizer_family(self, variable: Variable) -> str:
        """The family (``sgd``, ``adaptive`` ...) of the optimizer updating
        ``variable``: its param group's (a MultiOptimizer's sub-optimizer)
        where the file maps it to one, else the optimizer's."""
        return self.variable_dynamics(variable).family

    def variable_dynamics(self, variable: Variable) -> Dynamics:
        """The dynamics updating ``variable``: its param group's (PyTorch,
        MultiOptimizer) where groups differ, else the optimizer's."""
        found = self._sub_groups.get(variable.location)
        return found[1] if found is not None else self.dynamics

    def variable_group(self, variable: Variable) -> int | None:
        """The param group updating ``variable`` where groups differ."""
        found = self._sub_groups.get(variable.location)
        return found[0] if found is not None else None

    def variable_dynamics_of_group(self, index: int) -> Dynamics | None:
        """The dynamics of param group ``index`` where groups differ; None
        where the group updates no variable or groups are not mapped."""
        return next((dyn for i, dyn in self._sub_groups.values() if i == index), None)

    def groups_judged(self) -> list[int]:
        """The param groups whose settings are ``self.dynamics``: the lead's
        (or a view's) and every other group with the same settings, judged
        together in one pass (empty where groups do not differ)."""
        return sorted({i for i, dyn in self._sub_groups.values() if _same_settings(dyn, self.dynamics)})

    def judged_groups(self) -> list[int]:
        """The param groups a finding of this pass speaks for (the lead's
        settings, or a group view's: every group with them), where the
        optimizer's groups differ; empty where one setting covers all."""
        opt = self.model.optimizer
        if opt is None or len(opt.param_groups) < 2 or self.optimizer_group is None:
            return []
        return self.groups_judged() or [self.optimizer_group]

    def group_name(self) -> str | None:
        """``param group 1`` / ``param groups 0, 2``: where a fix applies."""
        groups = self.judged_groups()
        if not groups:
            return None
        return f"param group{'s' if len(groups) > 1 else ''} {', '.join(map(str, groups))}"

    def group_target(self, setting: str = "weight_decay") -> str:
        """``optimizer.weight_decay``; where groups differ, the groups judged
        named in it (``optimizer.param_groups[1].weight_decay``) whether they
        lead or not, so that a group's fingerprint does not change with its
        rank (a baseline must not take another group's new error for an old
        one)."""
        groups = self.judged_groups()
        if not groups:
            return f"optimizer.{setting}"
        return f"optimizer.param_groups[{','.join(map(str, groups))}].{setting}"

    def group_text(self) -> str:
        """`` in param group 1 (12 tensors)``, `` in param groups 0, 2 (1 + 9
        tensors)``: the groups whose settings were judged, not the first with
        the same decay."""
        groups = self.judged_groups()
        if not groups:
            return ""
        opt = self.model.optimizer
        assert opt is not None  # judged_groups is empty without one
        sizes = {g.index: g.size for g in opt.param_groups}
        count = " + ".join(str(sizes.get(i, 0)) for i in groups)
        total = sum(sizes.get(i, 0) for i in groups)
        return f" in {self.group_name()} ({count} {'tensor' if total == 1 else 'tensors'})"

    def under_dynamics(self, variable: Variable) -> bool:
        """Whether ``self.dynamics`` (the lead group's settings, or a group
        view's) describe how ``variable`` is updated: not where its param
        group has another family or other settings (an L2 on a kernel Adam
        trains is no SGD shrink; another group's learning rate is not the
        lead's)."""
        return _same_settings(self.variable_dynamics(variable), self.dynamics)

    def group_views(self) -> list[Analysis]:
        """This analysis, then one per param group (PyTorch, MultiOptimizer)
        whose settings differ from the lead's: the same model seen with that
        group's dynamics, so that its ``lead_penalties``, chains and
        invariant kernels are that group's (the rules marked
        ``per_optimizer_group`` run on each)."""
        views: list[Analysis] = [self]
        for index, dyn in sorted(self._sub_groups.values(), key=lambda item: item[0]):
            if any(_same_settings(dyn, view.dynamics) for view in views):
                continue
            view = copy.copy(self)
            view.dynamics, view.optimizer_group, view.is_lead_view = dyn, index, False
            views.append(view)
        return views

    def optimizer_groups(self, variables: list[Variable]) -> list[tuple[Dynamics, list[Variable]]]:
        """``variables`` partitioned by the dynamics that update them (one
        part per param group where groups differ; one part, the
        optimizer's, else), in group order."""
        parts: dict[int, tuple[Dynamics, list[Variable]]] = {}
        for var in variables:
            index, dyn = self._sub_groups.get(var.location, (-1, self.dynamics))
            parts.setdefault(index, (dyn, []))[1].append(var)
        return [parts[i] for i in sorted(parts)]

    @property
    def lead_penalties(self) -> list[TensorPenalty]:
        """The penalties on tensors the lead optimizer's dynamics update:
        what the rules judging a per-step shrink or a stability limit read."""
        return [p for p in self.penalties if self.under_dynamics(p.variable)]

    def chain_penalties(self, behind_norm: bool = False, updated_by: Dynamics | None = None,
                        every_group: bool = False) -> list[TensorPenalty]:
        """Active penalties on kernels and embeddings that RL001 counts and
        whose layer reaches an output without passing a normalization: the
        tensors whose shrinks compound along a chain (RL024, RL007). With
        ``behind_norm``, those whose every path to the outputs passes one
        instead (a transformer block's projections: RL024's chains inside
        a normalized stream). Of the tensors the lead optimizer updates,
        those ``updated_by`` a param group's dynamics, or (``every_group``)
        all of them, each then judged with ``variable_dynamics``."""
        among = self.penalties if every_group else self.lead_penalties if updated_by is None else [
            p for p in self.penalties if self.variable_dynamics(p.variable) is updated_by]
        return [p for p in among
                if p.active and p.counted and p.behind_norm == behind_norm and (p.l1 or p.l2)
                and (p.variable.role.is_kernel_like or p.variable.role is Role.EMBEDDINGS)]

    def unnormalized_chain(self, layers: set[str]) -> list[str]:
        """Of ``layers`` (paths), the most that one forward path passes
        without crossing a normalization layer, in order: kernels that
        shrink in series multiply their shrinks (RL024)."""
        return longest_chain(layers, self._reach, normalizes)

    # -- walks that follow one tensor: a node per call of a shared layer ------

    def origin(self, layer: Layer) -> Layer:
        """The layer a node of the call graph is a call of (itself where no
        layer is shared): ``first_kernels`` and ``reachable`` return nodes."""
        return self.calls.origin.get(layer.path, layer) if self.calls is not None else layer

    def origin_path(self, key: str) -> str:
        """The layer path of a node key (``weakest_link_to_output``'s paths)."""
        return self.calls.origin[key].path if self.calls is not None and key in self.calls.origin else key

    def _walk(self) -> dict[str, list[Layer]]:
        return self.calls.outbound if self.calls is not None else self._reach

    def _nodes(self, start: str) -> list[str]:
        """The nodes a walk from ``start`` begins at: a node key as given, a
        shared layer's path: each of its calls."""
        if self.calls is None or (start in self.calls.origin and start not in self.calls.keys):
            return [start]
        return list(self.calls.keys.get(start, [start]))  # a copy: walks pop from it

    def _output_nodes(self, index: int) -> list[str]:
        """The call graph's nodes output ``index`` is: the call the model
        returns where the file says which, else every call of its layer."""
        known = self.calls.outputs[index] if self.calls is not None else None
        return list(known) if known else self._nodes(self.model.outputs[index].layer)

    def weakest_link_to_output(self, start: str, weight, *, through_free: bool = False
                               ) -> tuple[float, list[str]] | None:
        """From ``start`` (a layer path or a node of the call graph) to an
        output, through no normalization (nor, unless ``through_free``, a
        free kernel), the path whose smallest ``weight(layer)`` is largest,
        with it (``graph.widest_path``), following calls; outputs unknown:
        layers that feed none. The path's entries are node keys
        (``origin_path`` names their layers)."""
        walk = self._walk()
        ends = {key for index in range(len(self.model.outputs)) for key in self._output_nodes(index)} or {
            key for layer in self.model.layers if not self._reach.get(layer.path) for key in self._nodes(layer.path)}
        found = [widest_path(node, walk, lambda layer: None if normalizes(layer) or (
            not through_free and self.free_kernel(layer)) else weight(layer), ends) for node in self._nodes(start)]
        return max((f for f in found if f is not None), key=lambda f: f[0], default=None)

    def first_kernels(self, start: str) -> list[Layer]:
        """The layers with trainable kernels that ``start``'s output reaches
        first, through layers without any (weightless, frozen) and no
        normalization: the kernels a small embedding table feeds (RL025).
        Nodes of the call graph: a shared layer is the call the tensor
        reaches (``origin`` names the layer)."""
        def has_kernel(layer: Layer) -> bool:
            return layer.trainable and any(v.role.is_kernel_like and v.trainable for v in layer.variables)

        return [n for n in walk_forward(self._nodes(start), self._walk(), normalizes, has_kernel) if has_kernel(n)]

    def reachable(self, start: str) -> list[Layer]:
        """Every node ``start``'s output reaches without crossing a
        normalization or a free kernel, in no particular order."""
        return walk_forward(self._nodes(start), self._walk(),
                            lambda layer: normalizes(layer) or self.free_kernel(layer))

    def _unabsorbed_norms(self) -> set[str]:
        """Normalization layers whose penalized gamma the network cannot shed
        for free (``reglint.engine.graph.ScaleWalk``)."""
        penalized = {p.layer.path for p in self.penalties
                     if p.active and p.variable.role is Role.GAMMA and (p.l1 or p.l2)}
        return ScaleWalk(self.model, self._outbound, penalized, self.free_kernel, self._free_gamma).unabsorbed()

    def free_kernel(self, layer: Layer) -> bool:
        """``_free_kernel``, once per layer (a graph walk asks it of every
        layer it passes: review 48 counted 47M calls on 200 tables)."""
        layer = self.origin(layer)
        cache = self.__dict__.setdefault("_free_kernels", {})
        if layer.path not in cache:
            cache[layer.path] = self._free_kernel(layer)
        return cache[layer.path]

    def _free_kernel(self, layer: Layer) -> bool:
        """A linear layer whose kernels may grow at no cost: trainable, and
        unpenalized or scale-invariant (feeding a normalization)."""
        kernels = [v for v in layer.variables if v.role.is_kernel_like]
        if not layer.trainable or not kernels or not all(v.trainable for v in kernels):
            return False
        penalized = any(v.regularizer is not None and v.regularizer.is_effective for v in kernels)
        return not penalized or self.feeds_normalizer(layer)

    @staticmethod
    def _free_gamma(layer: Layer) -> bool:
        gammas = [v for v in layer.variables if v.role is Role.GAMMA]
        return layer.trainable and bool(gammas) and all(
            v.trainable and (v.regularizer is None or not v.regularizer.is_effective) for v in gammas)

    def invariant_kernels(self) -> list[tuple[Layer, Variable, float]]:
        """Every trainable scale-invariant kernel the lead optimizer updates,
        regularized or not (its weight_decay reaches them all), with its
        coupled L2."""
        l2_of = {(p.layer.path, p.variable.name): p.l2 for p in self.penalties if p.active}
        found = []
        for layer, var in self.model.variables():
            if (var.role.is_kernel_like and layer.trainable and var.trainable and self.feeds_normalizer(layer)
                    and self.under_dynamics(var)):
                found.append((layer, var, l2_of.get((layer.path, var.name), 0.0)))
        return found

    # -- totals --------------------------------------------------------------

    def active_penalties(self, *, include_invariant: bool = False) -> list[TensorPenalty]:
        """The penalties Keras adds; by default only those that pull the
        function toward the trivial solution (``TensorPenalty.counted``):
        not scale-invariant kernels (RL009, RL021), absorbed normalization
        gamma/beta or offsets (biases, beta), which RL008 reports."""
        return [p for p in self.penalties if p.active and (include_invariant or p.counted)]

    def total_penalty_init(self, *, include_invariant: bool = False) -> float:
        return sum(p.penalty or 0.0 for p in self.active_penalties(include_invariant=include_invariant))

    def penalty_ratio(self, *, include_invariant: bool = False) -> float:
        """rho = P_init / L_chance."""
        return self.total_penalty_init(include_invariant=include_invariant) / self.loss_scale.value

    def lambda_scale(self) -> float | None:
        """lambda_ref = L_chance / sum E[sum w^2] over the regularized,
        non-invariant tensors: the L2 factor whose penalty at initialisation
        equals the data loss (the MAP break-even: MacKay 1992; Bishop, PRML §3.3)."""
        energy = sum(p.sum_sq_init or 0.0 for p in self.active_penalties() if p.l2 or p.l1)
        return self.loss_scale.value / energy if energy else None


def _map_custom(reg: Regularizer, mapping: dict[str, dict[str, Any]]) -> Regularizer | None:
    """Read a custom regularizer's factor through a user mapping such as
    ``{"acme>MyL2": {"kind": "l2", "factor": "strength"}}``."""
    spec = mapping.get(reg.class_name) or mapping.get(reg.class_name.split(">")[-1])
    if not spec:
        return None
    kind = spec.get("kind", "l2")
    cfg = reg.config or {}
    scale = float(spec.get("scale", 1.0))  # e.g. 0.5 for a tf.nn.l2_loss-style 1/2

    def factor(key_name: str) -> float:
        key = spec.get(key_name)
        value = cfg.get(key) if key else None
        return float(value) * scale if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0

    l1 = factor("l1") if kind in ("l1", "l1l2") else 0.0
    l2 = factor("l2") if kind in ("l2", "l1l2") else 0.0
    if kind == "l2" and not l2:
        l2 = factor("factor")
    if kind == "l1" and not l1:
        l1 = factor("factor")
    return Regularizer(kind=kind, l1=l1, l2=l2, class_name=reg.class_name, config=cfg, source=Provenance.USER)
