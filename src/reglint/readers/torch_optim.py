"""What a PyTorch optimizer's ``state_dict()`` says about regularization.

An optimizer state dict is ``{"state": {id: {...}}, "param_groups": [{...,
"params": [id, ...]}]}``: the ids number the parameters in the order the
optimizer was given them, group after group; the class is not recorded.

**Class**, from the groups' setting names and the state's tensor names
(torch 2.x): ``decoupled_weight_decay`` (Adam False, AdamW True; NAdam and
RAdam carry it too, told apart by ``momentum_decay`` and ``amsgrad``);
``nesterov``/``dampening`` -> SGD; ``centered``/``alpha`` -> RMSprop;
``lr_decay``/``initial_accumulator_value`` -> Adagrad; ``rho`` -> Adadelta;
``exp_inf`` state -> Adamax; ``correct_bias`` -> transformers' AdamW;
``relative_step`` -> Adafactor; betas without eps -> Lion. Before torch
gained ``decoupled_weight_decay``, Adam and AdamW saved the same names: a
class hint (Trainer's ``optim``) decides, else AdamW is assumed and a note
says so.

**Decay**, in Keras' conventions (``reglint.model.ParamGroup``): SGD, Adam,
RMSprop, Adagrad, Adadelta, Adamax and NAdam/RAdam without the decoupled
flag add ``wd*w`` to the gradient: ``coupled_l2 = wd/2``. AdamW, the
decoupled NAdam/RAdam, transformers' AdamW, Lion and Adafactor multiply the
weights by ``1 - lr*wd``: ``weight_decay = wd`` (Keras 3's decoupled
``weight_decay`` is also lr-multiplied). The top-level fields hold the
group that shrinks weights fastest per step.

**Which parameters each group updates**: where torch recorded
``param_names`` they are used; else the ids are matched to the model's
parameters (``state_dict`` order minus buffers and tied duplicates) by
order, each group taking its ids' parameters in the order they come, and
checked against the shapes of the parameter-shaped state tensors
(``exp_avg``, ``momentum_buffer``...). A dynamic programme counts the
assignments that fit: one -> ``exact``; several -> ``uncertain`` (the one
putting rank <= 1 tensors in groups without decay is taken, and a note says
so); none -> ``unmapped``. Files whose order is not the module order
(safetensors sorts its keys) are matched by shape alone.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reglint.model import LearningRate, Optimizer, ParamGroup
from reglint.readers.torch_pickle import Opaque, TensorRef

# State tensors with the parameter's own shape.
PARAM_SHAPED_STATE = ("exp_avg", "exp_avg_sq", "momentum_buffer", "square_avg", "sum", "acc_delta", "exp_inf",
                      "max_exp_avg_sq", "prev", "ax", "grad_avg")
DECOUPLED_CLASSES = {"AdamW", "Lion", "Adafactor"}
NO_DECAY_CLASSES = {"Rprop", "LBFGS"}
MAX_STATES = 50_000  # per step of the matching programme; past it the mapping is a heuristic


@dataclass(frozen=True)
class Slot:
    """A model parameter the optimizer may update."""

    location: str
    shape: tuple[int, ...]
    # a pickled module recorded it ``requires_grad=False``: an optimizer
    # built from the trainable parameters leaves it out
    recorded_frozen: bool = False

    @property
    def looks_undecayed(self) -> bool:
        """Biases and normalization scales (rank <= 1): the usual no-decay group."""
        return len(self.shape) <= 1


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an int past float's range (a hostile config)
        return None
    return value if math.isfinite(value) else None


def plain(value: Any, depth: int = 0) -> Any:
    """A setting as JSON-friendly data (short tuples kept, objects named)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)) and len(value) <= 16 and depth < 4:
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, Opaque):
        return repr(value)
    if isinstance(value, TensorRef):
        return f"<tensor {list(value.shape)}>"
    return type(value).__name__


def is_optimizer_state(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("param_groups"), list) and isinstance(obj.get("state"), dict)


def optimizer_object_state(obj: Any) -> dict | None:
    """The state dict of an optimizer pickled whole (``torch.save({"model":
    model, "optimizer": optimizer})``), read from its inert record as
    ``optimizer.state_dict()`` would give it: the parameters numbered in
    group order, the per-parameter state keyed by those numbers (review 31:
    the record's state, keyed by the parameters themselves, sank the file)."""
    if not isinstance(obj, Opaque) or not obj.module.startswith("torch.optim"):
        return None
    fields = obj.fields()
    groups, state = fields.get("param_groups"), fields.get("state")
    if not isinstance(groups, list):
        return None
    entries = state.items if isinstance(state, Opaque) else state
    number_of: dict[int, int] = {}
    out_groups = []
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("params"), list):
            return None
        params = [number_of.setdefault(id(p), len(number_of)) for p in group["params"]]
        out_groups.append({**group, "params": params})
    out_state = {number_of[id(key)]: value for key, value in (entries or {}).items() if id(key) in number_of}
    return {"param_groups": out_groups, "state": out_state}


# ---------------------------------------------------------------------------
# class
# ---------------------------------------------------------------------------
def infer_class(group: dict, state_keys: set[str], hint: str | None) -> tuple[str, bool | None, str | None]:
    """(class name, decoupled decay?, note). ``decoupled`` is None for classes without decay."""
    keys = set(group)
    hinted = _class_from_hint(hint)
    if "decoupled_weight_decay" in keys:
        decoupled = bool(group["decoupled_weight_decay"])
        if "momentum_decay" in keys:
            return "NAdam", decoupled, None
        if "amsgrad" in keys:
            return ("AdamW" if decoupled else "Adam"), decoupled, None
        return "RAdam", decoupled, None
    for name, test, rule_decoupled in _RULES:
        if test(keys, state_keys):
            return name, rule_decoupled, None
    if "betas" in keys and "amsgrad" in keys:
        if hinted in ("Adam", "AdamW"):
            return hinted, hinted == "AdamW", None
        return "AdamW", True, ("Adam and AdamW saved the same settings before torch 2.x: read as AdamW "
                               "(decoupled weight_decay); if it was Adam, its weight_decay is a coupled L2")
    if "betas" in keys:
        return "RAdam", False, None
    if hinted:
        return hinted, hinted in DECOUPLED_CLASSES, f"optimizer class taken from the training arguments ({hint})"
    names = ", ".join(sorted(k for k in keys if k != "params")[:8])
    return "unknown", False, f"optimizer class not recognised from its settings ({names}): weight_decay read as coupled"


_RULES: list[tuple[str, Callable[[set, set], bool], bool | None]] = [
    ("NAdam", lambda k, s: "momentum_decay" in k, False),
    ("AdamW", lambda k, s: "correct_bias" in k, True),  # transformers.AdamW
    ("Adafactor", lambda k, s: "relative_step" in k or "scale_parameter" in k, True),
    # before SGD: torch's RMSprop keeps a momentum_buffer too once it has stepped with momentum (review 31)
    ("RMSprop", lambda k, s: "centered" in k or ("alpha" in k and "square_avg" in s), False),
    ("SGD", lambda k, s: "nesterov" in k or "dampening" in k or "momentum_buffer" in s, False),
    ("Adagrad", lambda k, s: "lr_decay" in k or "initial_accumulator_value" in k, False),
    ("Adadelta", lambda k, s: "rho" in k, False),
    ("ASGD", lambda k, s: "lambd" in k and "t0" in k, False),
    ("Rprop", lambda k, s: "etas" in k, None),
    ("LBFGS", lambda k, s: "history_size" in k, None),
    # Adamax's settings are RAdam's less decoupled_weight_decay (torch >= 2.1), Adam's less amsgrad
    ("Adamax", lambda k, s: "exp_inf" in s or ("betas" in k and "capturable" in k and "amsgrad" not in k
                                                 and "decoupled_weight_decay" not in k), False),
    ("Lion", lambda k, s: "betas" in k and "eps" not in k, True),
]

_HINTS = (("adamw", "AdamW"), ("adafactor", "Adafactor"), ("lion", "Lion"), ("sgd", "SGD"),
          ("rmsprop", "RMSprop"), ("adagrad", "Adagrad"), ("adam", "Adam"))


def _class_from_hint(hint: str | None) -> str | None:
    text = (hint or "").lower()
    for needle, name in _HINTS:
        if needle in text:
            return name
    return None


# ---------------------------------------------------------------------------
# the description
# ---------------------------------------------------------------------------
def describe_optimizer(state_dict: dict, slots: list[Slot], *, ordered: bool,
                       scalar: Callable[[TensorRef], float | None], hint: str | None = None,
                       schedule: str | None = None, notes: list[str],
                       peaks: list | None = None) -> Optimizer:
    """The ``Optimizer`` (with its ``param_groups``) an optimizer state dict
    describes. ``peaks``: each group's peak learning rate where the
    scheduler keeps it in its own state (CyclicLR's ``max_lrs``)."""
    groups = [_with_peak(_with_scalars(g, scalar), peaks, i)
              for i, g in enumerate(g for g in state_dict["param_groups"] if isinstance(g, dict))]
    state = state_dict["state"]
    state_keys = {k for entry in state.values() if isinstance(entry, dict) for k in entry}
    class_name, decoupled, note = infer_class(groups[0] if groups else {}, state_keys, hint)
    if note:
        notes.append(note)
    ids = [[i for i in g.get("params", []) if isinstance(i, (int, str))] for g in groups]
    # SGD without momentum keeps no per-parameter state at any step (review 31, D15)
    stateless = "SGD without momentum keeps none" if class_name == "SGD" and not any(
        number(g.get("momentum")) for g in groups) else (
        "LBFGS keeps flat vectors over every parameter" if class_name == "LBFGS" else None)
    shapes = _id_shapes(state)
    members, mapping = map_groups(slots, ids, groups, shapes, ordered=ordered, notes=notes, stateless=stateless)
    param_groups = [_group(i, g, decoupled, members[i], mapping[i], len(ids[i])) for i, g in enumerate(groups)]
    not_updated = _not_updated(slots, ids, shapes)
    never_stepped = _never_stepped(slots, ids, members, shapes) if stateless is None else []
    if never_stepped:
        notes.append(f"{len(never_stepped)} parameter(s) in the optimizer's groups have no optimizer state after its "
                     f"steps ({', '.join(never_stepped[:3])}{'...' if len(never_stepped) > 3 else ''}): they never "
                     f"received a gradient (requires_grad=False, or unused), so they are counted frozen")
        not_updated = sorted(set(not_updated or ()) | set(never_stepped))
    lead = max(param_groups, key=_shrink, default=None)
    raw = groups[param_groups.index(lead)] if lead is not None else {}
    betas = list(raw["betas"]) if isinstance(raw.get("betas"), (tuple, list)) else []
    opt = Optimizer(
        class_name=class_name,
        learning_rate=_learning_rate(raw, schedule),
        momentum=_momentum_at_peak(raw) or 0.0,
        nesterov=bool(raw.get("nesterov", False)),
        weight_decay=lead.weight_decay if lead else None,
        coupled_l2=lead.coupled_l2 if lead else None,
        beta_1=_beta_1_at_peak(raw, betas),
        beta_2=number(betas[1]) if len(betas) > 1 else None,
        epsilon=number(raw.get("eps")),
        iterations=_steps(state, scalar),
        exclude_from_weight_decay=_excluded(param_groups),
        config={k: plain(v) for k, v in raw.items() if k != "params"},
        param_groups=param_groups,
        lead_group=lead.index if lead is not None and len(param_groups) > 1 else None,
        not_updated=not_updated,
    )
    if len(param_groups) > 1 and lead is not None and lead.decays:
        notes.append(f"{len(param_groups)} param groups; the optimizer's settings shown are group {lead.index}'s, "
                     "whose decay shrinks weights fastest")
    cycled = _cycled_momentum_note(raw, schedule)
    if cycled:
        notes.append(cycled)
    damp = number(raw.get("dampening"))
    if class_name == "SGD" and damp and damp > 0 and opt.momentum:
        notes.append(f"SGD dampening {damp:g}: each gradient enters the momentum buffer at {1 - damp:.3g} of its "
                     f"size, so the rules judge the effective learning rate lr*(1-dampening)")
    return opt


def _never_stepped(slots: list[Slot], ids: list[list], members: list[list[str]], shapes: dict) -> list[str]:
    """The parameters a group lists that have no state although others do
    (an optimizer over ``model.parameters()`` with frozen ones: they get no
    gradient, so no state; review 43, 8). Only where each group's members
    line up with its ids, every saved shape agreeing in order."""
    if not any(i in shapes for group_ids in ids for i in group_ids):
        return []  # no state keyed by these ids (DeepSpeed's flat ZeRO state): no evidence either way
    by_location = {slot.location: slot for slot in slots}
    out = []
    for group_ids, group_members in zip(ids, members, strict=False):
        if len(group_ids) != len(group_members):
            return []
        for i, location in zip(group_ids, group_members, strict=True):
            slot = by_location.get(location)
            if i in shapes and (slot is None or tuple(shapes[i]) != slot.shape):
                return []  # the members are not in id order: no id names a member
        out += [location for i, location in zip(group_ids, group_members, strict=True) if i not in shapes]
    return out


def _not_updated(slots: list[Slot], ids: list[list], shapes: dict) -> list[str] | None:
    """The parameters whose shape no group's state holds: surely outside
    every group. None where some id has no saved shape (no state yet, SGD
    without momentum): then nothing is sure."""
    wanted = [shapes.get(i) for group_ids in ids for i in group_ids]
    if not wanted or any(shape is None for shape in wanted):
        return None
    held = {tuple(shape) for shape in wanted if shape is not None}
    return [slot.location for slot in slots if slot.shape not in held]


def _with_peak(group: dict, peaks: list | None, index: int) -> dict:
    """The group with the peak its scheduler keeps elsewhere as ``max_lr``
    (where OneCycleLR puts it in the group itself)."""
    peak = number(peaks[index]) if peaks is not None and index < len(peaks) else None
    if peak is None or number(group.get("max_lr")) is not None:
        return group
    return {**group, "max_lr": peak}


def _cycles_momentum(raw: dict) -> tuple[float, float] | None:
    """(base, max) momentum where a OneCycleLR or CyclicLR cycles it against
    the learning rate (lowest at the peak lr): their ``base_momentum`` and
    ``max_momentum`` in the group."""
    low, high = number(raw.get("base_momentum")), number(raw.get("max_momentum"))
    return (low, high) if low is not None and high is not None and low <= high else None


def _momentum_at_peak(raw: dict) -> float | None:
    """The momentum the rules pair with the peak learning rate: a cycling
    scheduler's base momentum, which it gives the peak (review 31: judged
    with the momentum saved mid-cycle, OneCycleLR's peak 0.2 at 0.923 where
    torch pairs it with 0.85); else the saved one."""
    cycle = _cycles_momentum(raw)
    return cycle[0] if cycle is not None and "momentum" in raw else number(raw.get("momentum"))


def _beta_1_at_peak(raw: dict, betas: list) -> float | None:
    cycle = _cycles_momentum(raw)
    if cycle is not None and betas:
        return cycle[0]  # the scheduler cycles beta_1 in Adam's place (use_beta1)
    return number(betas[0]) if betas else None


def _cycled_momentum_note(raw: dict, schedule: str | None) -> str | None:
    cycle = _cycles_momentum(raw)
    if cycle is None:
        return None
    which = "momentum" if "momentum" in raw else "beta_1"
    saved = number(raw.get("momentum")) if which == "momentum" else (
        number(raw["betas"][0]) if isinstance(raw.get("betas"), (list, tuple)) and raw["betas"] else None)
    return (f"{schedule or 'the lr scheduler'} cycles {which} between {cycle[0]:g} and {cycle[1]:g}, lowest at the "
            f"peak learning rate: the rules pair the peak lr with {which} {cycle[0]:g}"
            + (f" ({saved:.3g} when saved)" if saved is not None else ""))


def _with_scalars(group: dict, scalar: Callable[[TensorRef], float | None]) -> dict:
    """A param group with its one-element tensor settings read as numbers:
    ``lr=torch.tensor(0.5)``, as fused, capturable and compiled optimizers
    take it, is a learning rate like 0.5 (review 31)."""
    out = dict(group)
    for key, value in group.items():
        if key != "params" and isinstance(value, TensorRef) and math.prod(value.shape) == 1:
            out[key] = scalar(value)
    return out


def decay_fields(wd: float, decoupled: bool | None) -> tuple[float | None, float | None]:
    """A torch ``weight_decay`` wd as (``weight_decay``, ``coupled_l2``) in
    Keras' conventions: decoupled (AdamW) as is; coupled (SGD, Adam: ``wd*w``
    added to the gradient) as Keras' ``L2(wd/2)``; neither for classes
    without decay (``decoupled`` None).

    >>> decay_fields(2.0, False), decay_fields(2.0, True), decay_fields(2.0, None)
    ((None, 1.0), (2.0, None), (None, None))
    """
    return (wd if decoupled else None, wd / 2.0 if decoupled is False else None)


def torch_weight_decay(weight_decay: float | None, coupled_l2: float | None) -> float | None:
    """``decay_fields`` inverted: the ``weight_decay`` a torch optimizer was
    given, from Keras-convention fields (a coupled ``L2(c)`` is wd = 2c).

    >>> torch_weight_decay(None, 1.0), torch_weight_decay(2.0, None), torch_weight_decay(None, None)
    (2.0, 2.0, None)
    """
    if weight_decay:
        return weight_decay
    return 2.0 * coupled_l2 if coupled_l2 else None


def class_decoupled(class_name: str) -> bool | None:
    """Whether torch class ``class_name``'s ``weight_decay`` is decoupled (its
    default: NAdam/RAdam without ``decoupled_weight_decay=True`` couple it);
    None for classes without decay."""
    if class_name in NO_DECAY_CLASSES:
        return None
    return class_name in DECOUPLED_CLASSES


def _group(index: int, raw: dict, decoupled: bool | None, members: list[str], mapping: str, size: int) -> ParamGroup:
    wd = number(raw.get("weight_decay")) or 0.0
    hyper = {k: plain(v) for k, v in raw.items() if k not in ("params", "param_names", SOURCE)}
    weight_decay, coupled_l2 = decay_fields(wd, decoupled)
    return ParamGroup(
        index=index, variables=members, learning_rate=_peak_lr(raw),
        weight_decay=weight_decay, coupled_l2=coupled_l2,
        momentum=_momentum_at_peak(raw), hyperparameters=hyper, mapping=mapping, size=size)


def _peak_lr(raw: dict) -> float | None:
    """The group's largest learning rate: a scheduler's base (``initial_lr``)
    or OneCycleLR's ``max_lr`` where they exceed the saved (current) ``lr``."""
    rates = [r for r in (number(raw.get(k)) for k in ("lr", "initial_lr", "max_lr")) if r is not None]
    return max(rates) if rates else None


def _shrink(group: ParamGroup) -> float:
    """Fraction an unsupported weight loses per step, to rank groups (SGD's
    dampening scales its steps by ``1 - dampening``: review 32)."""
    lr = group.learning_rate or 0.0
    damp = number(group.hyperparameters.get("dampening"))
    if damp and group.momentum:
        lr *= max(0.0, 1.0 - damp)
    if group.weight_decay:
        return lr * group.weight_decay
    if group.coupled_l2:
        return 2.0 * lr * group.coupled_l2 / max(1e-6, 1.0 - (group.momentum or 0.0))
    return 0.0


def _learning_rate(raw: dict, schedule: str | None) -> LearningRate | None:
    lr = number(raw.get("lr"))
    base = number(raw.get("initial_lr"))  # set by every torch lr_scheduler
    if base is None:
        return LearningRate(initial=lr) if lr is not None else None
    top = number(raw.get("max_lr"))  # OneCycleLR's peak
    peak = max([x for x in (base, lr, top) if x is not None])
    return LearningRate(initial=base, peak=peak, schedule=schedule or "lr_scheduler",
                        config={"initial_lr": base, "saved_lr": lr, **({"max_lr": top} if top else {})})


def _steps(state: dict, scalar: Callable[[TensorRef], float | None]) -> int | None:
    """The largest ``step`` in the per-parameter state; LBFGS keeps its
    iterations as ``n_iter`` in its one entry (review 41, 5)."""
    best = None
    for entry in state.values():
        step = (entry.get("step", entry.get("n_iter"))) if isinstance(entry, dict) else None
        value = scalar(step) if isinstance(step, TensorRef) else number(step)
        if value is not None and value >= 0:
            best = max(best or 0, int(value))
    return best


def _excluded(groups: list[ParamGroup]) -> list[str] | None:
    """Variables in groups without decay, when some group decays and every
    group is mapped; [] when every group decays; None when unknown."""
    if not groups or any(g.mapping == "unmapped" for g in groups):
        return None
    if not any(g.decays for g in groups):
        return None
    return [loc for g in groups if not g.decays for loc in g.variables]


def _id_shapes(state: dict) -> dict[Any, tuple[int, ...]]:
    shapes = {}
    for key, entry in state.items():
        if not isinstance(entry, dict):
            continue
        for name in PARAM_SHAPED_STATE:
            tensor = entry.get(name)
            if isinstance(tensor, TensorRef):
                shapes[key] = tensor.shape
                break
    return shapes


# ---------------------------------------------------------------------------
# which parameters each group updates
# ---------------------------------------------------------------------------
def map_groups(slots: list[Slot], ids: list[list], groups: list[dict], shapes: dict, *, ordered: bool,
               notes: list[str], stateless: str | None = None) -> tuple[list[list[str]], list[str]]:
    """(locations per group, mapping per group)."""
    named = _by_names(slots, groups)
    if named is not None:
        return named, ["exact"] * len(groups)
    decays = [bool(number(g.get("weight_decay"))) for g in groups]
    want = [[shapes.get(i) for i in group_ids] for group_ids in ids]
    total = sum(len(w) for w in want)
    if total > len(slots):
        shared = _map_each_source(slots, want, decays, groups, ordered)
        if shared is not None:
            notes.append(f"the optimizers update {total} tensors of the model's {len(slots)} parameters: some are "
                         "shared by several optimizers; each optimizer's groups were matched on their own")
            return shared
        notes.append(f"the optimizer updates {total} tensors but the model has {len(slots)} parameters: "
                     "its param groups could not be matched to parameter names")
        return [[] for _ in ids], ["unmapped"] * len(ids)
    result = _match_in_order(slots, want, decays) if ordered else _match_by_shape(slots, want, decays)
    if result is None and ordered and shapes:  # given its parameters in another order than the module's
        runs = _match_in_runs(slots, want)
        result = runs or _match_by_shape(slots, want, decays)
        if result is not None:
            notes.append("the optimizer was given the parameters in another order than the model's: its param "
                         "groups were matched by shape" + (", in runs of the model's consecutive parameters"
                                                           if runs else ""))
    if result is None:
        notes.append("the optimizer's state tensors do not fit the model's parameters by order and shape: "
                     "its param groups could not be matched to parameter names")
        return [[] for _ in ids], ["unmapped"] * len(ids)
    members, unique = result
    if not unique and len(ids) > 1:
        rule = ("the one putting biases and normalization scales in the groups without decay was taken"
                if not all(decays) and any(decays) else "the one following the model's parameter order was taken")
        notes.append(f"several assignments of parameters to param groups fit what the optimizer saved: {rule}")
    if total < len(slots):
        notes.append(f"the optimizer updates {total} of the model's {len(slots)} parameters; the rest are frozen "
                     "or trained by another optimizer")
    if not shapes and any(ids):
        why = stateless or "saved before its first step"  # stateless: why the class keeps none
        notes.append(f"the optimizer state holds no per-parameter tensors ({why}): "
                     "param groups matched by their sizes and the parameters' order, without a shape check")
    return members, ["exact" if unique else "uncertain"] * len(ids)


# Which of several merged optimizers a group came from (``torch_layouts``).
SOURCE = "_reglint_source"


def _map_each_source(slots: list[Slot], want: list[list], decays: list[bool], groups: list[dict],
                     ordered: bool) -> tuple[list[list[str]], list[str]] | None:
    """Several optimizers read as one whose groups update more tensors than
    the model has (an embedding shared by an encoder's and a decoder's
    optimizer): each optimizer's groups matched against every parameter on
    their own; None when one of them does not fit."""
    if any(not isinstance(g.get(SOURCE), int) for g in groups):
        return None
    sources = sorted({int(g[SOURCE]) for g in groups})
    if len(sources) < 2:
        return None
    members: list[list[str]] = [[] for _ in groups]
    exact = True
    for source in sources:
        index = [i for i, g in enumerate(groups) if g[SOURCE] == source]
        block = [want[i] for i in index]
        if sum(len(w) for w in block) > len(slots):
            return None
        match = _match_in_order if ordered else _match_by_shape
        result = match(slots, block, [decays[i] for i in index])
        if result is None:
            return None
        for i, found in zip(index, result[0], strict=True):
            members[i] = found
        exact = exact and result[1]
    return members, ["exact" if exact else "uncertain"] * len(groups)


def _by_names(slots: list[Slot], groups: list[dict]) -> list[list[str]] | None:
    """torch >= 2.6 records ``param_names`` when given named parameters."""
    known = {s.location for s in slots}
    out = []
    for group in groups:
        names = group.get("param_names")
        if not isinstance(names, list) or not all(isinstance(n, str) and n in known for n in names):
            return None
        out.append(list(names))
    return out if groups else None


def _fits(shape: tuple[int, ...] | None, slot: Slot) -> bool:
    return shape is None or tuple(shape) == slot.shape


def _match_in_order(slots: list[Slot], want: list[list], decays: list[bool]):
    """Dynamic programme over (position in each group, parameters skipped,
    whether the last parameter was skipped): each parameter, in order, goes
    to the group whose next id fits its shape, or (when the optimizer
    updates fewer) to none. Of several fits it takes the one that skips the
    parameters a pickled module recorded frozen, then the one that puts
    undecayed-looking parameters in groups without decay, then the one
    whose skipped (frozen) parameters lie together, as a frozen stem or
    module does (review 41, 3: of a frozen conv and a BatchNorm's three
    same-shaped vectors, the conv's bias is the one skipped). Returns
    (members, unique) or None when nothing fits."""
    skips_allowed = len(slots) - sum(len(w) for w in want)
    start = (tuple(0 for _ in want), 0, False)
    # state -> (paths capped at 2, best score (recorded frozen skipped, decay fit, runs), (previous state, group))
    layer: dict = {start: (1, (0, 0, 0), None)}
    history: list[dict] = []
    for slot in slots:
        nxt: dict = {}
        for (pos, skipped, was_skipped), (count, score, _) in layer.items():
            moves: list[tuple[int | None, tuple[int, ...], int]] = [
                (g, (*pos[:g], pos[g] + 1, *pos[g + 1:]), skipped) for g in range(len(want))
                     if pos[g] < len(want[g]) and _fits(want[g][pos[g]], slot)]
            if skipped < skips_allowed:
                moves.append((None, pos, skipped + 1))
            for g, new_pos, new_skipped in moves:
                gain = (int((g is None) == slot.recorded_frozen),
                        0 if g is None else int(slot.looks_undecayed != decays[g]),
                        int((g is None) == was_skipped) if history else 0)
                key = (new_pos, new_skipped, g is None)
                old = nxt.get(key)
                total = min(2, count + (old[0] if old else 0))
                new_score = (score[0] + gain[0], score[1] + gain[1], score[2] + gain[2])
                if old is None or new_score > old[1]:
                    nxt[key] = (total, new_score, ((pos, skipped, was_skipped), g))
                else:
                    nxt[key] = (total, old[1], old[2])
        if not nxt or len(nxt) > MAX_STATES:
            return None if not nxt else _greedy(slots, want, decays)
        history.append(nxt)
        layer = nxt
    ends = [key for key in layer if key[:2] == (tuple(len(w) for w in want), skips_allowed)]
    if not ends:
        return None
    state = max(ends, key=lambda key: layer[key][1])
    members: list[list[str]] = [[] for _ in want]
    for index in range(len(slots) - 1, -1, -1):
        previous, group = history[index][state][2]
        if group is not None:
            members[group].append(slots[index].location)
        state = previous
    for group_members in members:
        group_members.reverse()
    return members, sum(layer[key][0] for key in ends) == 1


def _match_by_shape(slots: list[Slot], want: list[list], decays: list[bool]):
    """For files that do not keep the module order: each shape's parameters
    go to the groups whose ids have that shape (unknown shapes take any).
    Unique when no shape is shared between groups."""
    if len(want) == 1 and len(want[0]) == len(slots) and (
            any(shape is None for shape in want[0])
            or Counter(tuple(shape) for shape in want[0]) == Counter(s.shape for s in slots)):
        return [[s.location for s in slots]], True  # every parameter, the shapes agreeing where saved
    need = [Counter(tuple(s) for s in w if s is not None) for w in want]
    free = [sum(1 for s in w if s is None) for w in want]
    unique = not any(free) or len(want) == 1
    members: list[list[str]] = [[] for _ in want]
    # Likely-undecayed tensors first, offered to groups without decay first.
    order = sorted(slots, key=lambda s: not s.looks_undecayed)
    leftovers = []
    for slot in order:
        takers = [g for g in range(len(want)) if need[g][slot.shape] > 0]
        if len(takers) > 1:
            unique = False
        if takers:
            g = min(takers, key=lambda g: decays[g] == slot.looks_undecayed)
            need[g][slot.shape] -= 1
            members[g].append(slot.location)
        else:
            leftovers.append(slot)
    for slot in leftovers:
        takers = [g for g in range(len(want)) if free[g] > 0]
        if not takers:
            continue
        if len(takers) > 1:
            unique = False
        g = min(takers, key=lambda g: decays[g] == slot.looks_undecayed)
        free[g] -= 1
        members[g].append(slot.location)
    if any(sum(n.values()) for n in need) or any(free):
        return None
    position = {s.location: i for i, s in enumerate(slots)}
    return [sorted(m, key=lambda loc: position[loc]) for m in members], unique and shapes_decide(slots, want)


def shapes_decide(slots: list[Slot], want: list[list]) -> bool:
    """Whether the shapes alone fix every group's members (which parameter
    has which id inside a group does not matter): no shape is wanted by two
    groups, nor held by more parameters than the groups want (then which
    of them the optimizer left out is a guess: review 41, 1).

    >>> a, b = Slot("a.weight", (8,)), Slot("b.weight", (8,))
    >>> shapes_decide([a, b], [[(8,), (8,)]]), shapes_decide([a, b], [[(8,)]]), shapes_decide([a, b], [[(8,)], [(8,)]])
    (True, False, False)
    """
    if any(shape is None for w in want for shape in w):
        return len(want) == 1 and len(want[0]) == len(slots)
    supply = Counter(slot.shape for slot in slots)
    wanted = [Counter(tuple(shape) for shape in w) for w in want]
    for shape, held in supply.items():
        takers = [c[shape] for c in wanted if c[shape]]
        if len(takers) > 1 or (takers and held > sum(takers)):
            return False
    return True


def _match_in_runs(slots: list[Slot], want: list[list]):
    """An optimizer given its parameters module by module in another order
    than the model's (``list(fc.parameters()) + list(block.parameters())``,
    a frozen stem left out): its ids, in order, are a few runs of the
    model's consecutive parameters. Each id continues the run of the one
    before where the next parameter fits its shape, else starts the longest
    run that fits from a parameter not yet taken (the first of equals).
    (members, unique) with unique where the shapes alone decide
    (``shapes_decide``); None when an id finds no parameter or the model
    is too large to search."""
    if len(slots) > RUNS_LIMIT:
        return None
    flat = [(g, shape) for g, w in enumerate(want) for shape in w]
    used: set[int] = set()
    members: list[list[str]] = [[] for _ in want]
    previous = None
    for i, (group, shape) in enumerate(flat):
        follow = previous + 1 if previous is not None else None
        if follow is not None and follow < len(slots) and follow not in used and _fits(shape, slots[follow]):
            pick = follow
        else:
            runs = {start: _run_length(flat, i, slots, start, used) for start in range(len(slots))
                    if start not in used and _fits(shape, slots[start])}
            if not runs:
                return None
            pick = max(runs, key=lambda start: (runs[start], -start))
        used.add(pick)
        members[group].append(slots[pick].location)
        previous = pick
    position = {s.location: i for i, s in enumerate(slots)}
    return [sorted(m, key=lambda loc: position[loc]) for m in members], shapes_decide(slots, want)


# The runs search costs ids x parameters where runs break: models up to this many parameters.
RUNS_LIMIT = 4096


def _run_length(flat: list, i: int, slots: list[Slot], start: int, used: set[int]) -> int:
    length = 0
    while (i + length < len(flat) and start + length < len(slots) and start + length not in used
           and _fits(flat[i + length][1], slots[start + length])):
        length += 1
    return length


def _greedy(slots: list[Slot], want: list[list], decays: list[bool]):
    """Too many assignments to enumerate: fill groups by shape, undecayed-looking first."""
    result = _match_by_shape(slots, want, decays)
    return (result[0], False) if result is not None else None
