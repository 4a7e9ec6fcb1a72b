"""Which variables each part of a Keras 3 optimizer updates: the param
groups of a ``MultiOptimizer`` (one per sub-optimizer) and of ``Muon`` (its
Muon step and its AdamW step), read from the saved config and matched to
the model's variables by Keras' own rules, as data.

**Variable paths.** Both classes choose by ``variable.path``, which Keras
sets when a layer is first built: the name scopes open at that moment, the
layer's name, the variable's. It depends on how the model was built:

- loaded from a ``.keras`` file, each layer is built on its own as it is
  deserialized: ``d1/kernel``, ``in1/kernel`` inside a nested model, an
  LSTM's ``lstm/lstm_cell/kernel``, a Bidirectional's
  ``forward_lstm/lstm_cell/kernel``, a TimeDistributed's ``dense/kernel``;
- built in Python, a Sequential given an ``Input`` builds its layers in its
  own scope (``sequential/d1/kernel``), a nested model adds its name
  (``inner/in1/kernel``), a wrapper its own (``td/dense/kernel``);
- a legacy HDF5 file stores the paths it was saved with (its datasets'
  names), and Keras loads them back unchanged, wrappers aside.

The groups follow the paths of a load (``.keras``) or the stored ones
(HDF5). Where the other way of building the same model would put some
variable in another group, every group's ``mapping`` is ``uncertain`` and
a note names the variables that would move.

**MultiOptimizer** (``keras/src/optimizers/multi_optimizer.py``,
``OptimizerMap.__getitem__``): a key equal to the path wins; else the keys
are regular expressions that must ``re.fullmatch`` the path (a path two of
them match makes Keras raise at the first step); else the default
optimizer. Groups come in Keras' order: the map's entries, then the
default. A group's ``learning_rate``, ``weight_decay`` (decoupled and
lr-multiplied, as in every Keras 3 optimizer) and ``momentum`` are its
sub-optimizer's; ``hyperparameters`` hold that optimizer's saved config
with its ``class_name``, ``pattern`` and ``family``. The top-level fields
are the sub-optimizer's whose decay shrinks weights fastest among those
that update a variable (where none decays, the one updating most values).

**Muon** (``keras/src/optimizers/muon.py``): ``_should_use_adamw`` sends to
the AdamW step every variable that is not 2-D, every one whose path holds
``embedding`` (with ``exclude_embeddings``, the default) and every one an
``exclude_layers`` entry ``re.search``-es; the others take the Muon step
(group 0). ``_apply_weight_decay`` multiplies the Muon step's variables by
``1 - lr*weight_decay`` and the AdamW step's (group 1) by ``1 -
lr*adam_weight_decay``, or leaves them alone where that is None, both at
the optimizer's ``lr``: each group's ``learning_rate`` is that ``lr``; the
AdamW step itself runs at ``lr * adam_lr_ratio`` (group 1's
``hyperparameters``). The top-level ``weight_decay`` is the faster decay's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reglint.model import Layer, Model, Optimizer, ParamGroup, Variable
from reglint.readers.keras_config import ModelConfig
from reglint.readers.keras_objects import (
    adopt_settings,
    class_name_of,
    inner_config,
    multi_optimizer_entries,
    parse_optimizer,
)
from reglint.readers.keras_schedules import growth_note

RNN_CELLS = {"LSTM": "lstm_cell", "GRU": "gru_cell", "SimpleRNN": "simple_rnn_cell",
             "ConvLSTM1D": "conv_lstm_cell", "ConvLSTM2D": "conv_lstm_cell", "ConvLSTM3D": "conv_lstm_cell"}
WRAPPERS = ("Bidirectional", "TimeDistributed", "SpectralNormalization")
# Wrappers whose inner layer keeps its own name in the path (Bidirectional's
# copies carry theirs in the variable's name already: forward_lstm/...).
NAMED_INNER = ("TimeDistributed", "SpectralNormalization")
# A group repeated around a repetition ("(a+)+"): Python's re can take
# exponential time on it, so a file's pattern of that shape is not run.
NESTED_REPEAT = re.compile(r"\([^()]*[+*}][^()]*\)[+*{]")


@dataclass
class Trained:
    """A trainable variable with its Keras path candidates, the one used first."""

    layer: Layer
    var: Variable
    paths: list[str]

    @property
    def label(self) -> str:
        return self.paths[0]


def attach_param_groups(model: Model, tree: ModelConfig) -> None:
    """Param groups, top-level settings and notes for the optimizer a
    Keras file saved (``MultiOptimizer``, ``Muon``), and the note for a
    learning-rate schedule with no peak."""
    opt = model.optimizer
    if opt is None:
        return
    if opt.class_name == "MultiOptimizer":
        _multi_optimizer(model, tree, opt)
    elif opt.class_name == "Muon":
        _muon(model, tree, opt)
    lr = opt.learning_rate
    note = growth_note(lr.schedule, lr.config, lr.initial) if lr is not None else None
    if note:
        model.notes.append(note)


# ---------------------------------------------------------------------------
# Keras variable paths
# ---------------------------------------------------------------------------
def trained_variables(model: Model, tree: ModelConfig) -> list[Trained]:
    return [Trained(layer, var, keras_paths(model, tree, layer, var))
            for layer, var in model.variables() if layer.trainable and var.trainable]


def keras_paths(model: Model, tree: ModelConfig, layer: Layer, var: Variable) -> list[str]:
    """``variable.path`` as Keras would give it: after a load of this file
    (HDF5: as stored), then built in Python (module docstring)."""
    own = keras_variable_name(layer, var)
    loaded = own if layer.class_name in WRAPPERS else f"{layer.name}/{own}"
    if model.format == "keras_h5" and var.location.startswith("/model_weights/"):
        stored = var.location.split("/", 3)[-1]
        return _unique([stored, loaded] if layer.class_name in WRAPPERS else [stored])
    built = f"{layer.path}/{own}"
    if tree.class_name == "Sequential" and tree.name:
        built = f"{tree.name}/{built}"
    return _unique([loaded, built])


def keras_variable_name(layer: Layer, var: Variable) -> str:
    """The variable's path below its layer as Keras names it: an RNN's cell
    (``lstm_cell/kernel``), a DepthwiseConv's ``kernel``, the inner layer of
    a TimeDistributed or SpectralNormalization (``dense/kernel``).

    >>> keras_variable_name(Layer("lstm", "lstm", "LSTM"), Variable("kernel", "kernel", (3, 8)))
    'lstm_cell/kernel'
    """
    inner = layer.config.get("layer") if layer.class_name in WRAPPERS else None
    kind = class_name_of(inner) or layer.class_name
    head, sep, tail = var.name.rpartition("/")
    if kind in ("DepthwiseConv1D", "DepthwiseConv2D") and tail == "depthwise_kernel":
        tail = "kernel"
    name = f"{head}{sep}{RNN_CELLS[kind]}/{tail}" if kind in RNN_CELLS else f"{head}{sep}{tail}"
    inner_name = inner_config(inner).get("name")
    if layer.class_name in NAMED_INNER and isinstance(inner_name, str) and not name.startswith(f"{inner_name}/"):
        name = f"{inner_name}/{name}"
    return name


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------------------
# assignment
# ---------------------------------------------------------------------------
def assign(trained: list[Trained], choose: Callable[[str], int]) -> tuple[list[int], list[str]]:
    """Each variable's group by ``choose`` over its first path, and the
    variables whose other paths choose differently (``path -> group``)."""
    chosen, moved = [], []
    for item in trained:
        first, *others = [choose(path) for path in item.paths]
        chosen.append(first)
        moved += [f"{path} to group {other}" for path, other in zip(item.paths[1:], others, strict=True)
                  if other != first][:1]
    return chosen, moved


def _groups(trained: list[Trained], chosen: list[int], count: int, uncertain: bool) -> list[ParamGroup]:
    mapping = "uncertain" if uncertain else "exact"
    groups = [ParamGroup(index=i, mapping=mapping) for i in range(count)]
    for item, index in zip(trained, chosen, strict=True):
        groups[index].variables.append(item.var.location)
        groups[index].size += 1
    return groups


def _moved_note(moved: list[str], first: Trained | None) -> str | None:
    if not moved or first is None:
        return None
    shown = "; ".join(moved[:3]) + (f" and {len(moved) - 3} more" if len(moved) > 3 else "")
    return (f"the optimizer's choice of variables follows the paths Keras gives them when it loads this file "
            f"({first.label}); built in Python the same model names them otherwise, and {len(moved)} would "
            f"change group: {shown}")


def _values(model: Model, group: ParamGroup) -> int:
    locations = set(group.variables)
    return sum(var.size for _, var in model.variables() if var.location in locations)


# ---------------------------------------------------------------------------
# MultiOptimizer
# ---------------------------------------------------------------------------
def _multi_optimizer(model: Model, tree: ModelConfig, opt: Optimizer) -> None:
    entries = [(pattern, parse_optimizer(obj)) for pattern, obj in multi_optimizer_entries(opt.config)]
    subs = [(pattern, sub) for pattern, sub in entries if sub is not None]
    if not subs or len(subs) < len(entries) or subs[-1][0] is not None:
        model.notes.append("MultiOptimizer: its optimizer_map is not an OptimizerMap of readable optimizers with a "
                           "default (a function?): which optimizer updates which variable is not known")
        return
    patterns = [pattern for pattern, _ in subs if pattern is not None]
    unsafe = [p for p in patterns if NESTED_REPEAT.search(p) or not _compiles(p)]
    trained = trained_variables(model, tree)
    clashes: list[str] = []
    chosen, moved = assign(trained, lambda path: _pattern_group(patterns, path, unsafe, clashes))
    opt.param_groups = _groups(trained, chosen, len(subs), uncertain=bool(moved or clashes or unsafe))
    for group, (pattern, sub) in zip(opt.param_groups, subs, strict=True):
        group.learning_rate = _rate(sub)
        group.weight_decay, group.momentum = sub.weight_decay, sub.momentum
        group.hyperparameters = {**sub.config, "class_name": sub.class_name,
                                 "pattern": pattern if pattern is not None else "(default)", "family": sub.family}
    lead = _lead(model, opt.param_groups)
    if lead is not None:
        adopt_settings(opt, subs[lead.index][1])
        opt.lead_group = lead.index
    first = trained[0] if trained else None
    notes = (_multi_note(model, opt, subs, lead, first.label if first else None), _moved_note(moved, first),
             *_pattern_notes(clashes, unsafe))
    model.notes.extend(n for n in notes if n)


def _pattern_group(patterns: list[str], path: str, unsafe: list[str], clashes: list[str]) -> int:
    """``OptimizerMap.__getitem__``: the exact key, else the one pattern
    that fullmatches, else the default (index ``len(patterns)``)."""
    if path in patterns:
        return patterns.index(path)
    hits = [i for i, p in enumerate(patterns) if p not in unsafe and _fullmatch(p, path)]
    if len(hits) > 1:
        clashes.append(f"{path} ({', '.join(repr(patterns[i]) for i in hits)})")
    return hits[0] if hits else len(patterns)


def _fullmatch(pattern: str, path: str) -> bool:
    return re.fullmatch(pattern, path) is not None


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def _rate(sub: Optimizer) -> float | None:
    lr = sub.learning_rate
    if lr is None:
        return None
    return lr.peak if lr.peak is not None else lr.initial


def _lead(model: Model, groups: list[ParamGroup]) -> ParamGroup | None:
    """The group whose decay shrinks fastest among those updating a
    variable; where none decays, the one updating most values."""
    used = [g for g in groups if g.variables]
    if not used:
        return None
    return max(used, key=lambda g: ((g.learning_rate or 0.0) * (g.weight_decay or 0.0), _values(model, g)))


def _multi_note(model: Model, opt: Optimizer, subs: list[tuple[str | None, Optimizer]],
                lead: ParamGroup | None, sample: str | None) -> str:
    parts = []
    for group, (pattern, sub) in zip(opt.param_groups, subs, strict=True):
        where = f"for '{pattern}'" if pattern is not None else "by default"
        count = f"{group.size} tensors, {_values(model, group):,} values" if group.size else \
            f"matches none of the variables' paths, such as {sample or '?'}"
        parts.append(f"group {group.index} {sub.class_name} {where} ({count})")
    text = "MultiOptimizer: " + ", ".join(parts)
    if lead is None:
        return text + "; no variable trains"
    why = "whose decay shrinks weights fastest" if lead.decays else \
        "which updates the most values (no group that updates a variable decays)"
    text += f"; the settings shown are group {lead.index}'s ({opt.lead_class}), {why}"
    others = [f"group {group.index}'s {sub.class_name} is {_FAMILY_WORDS.get(sub.family, sub.family)}"
              for group, (_, sub) in zip(opt.param_groups, subs, strict=True)
              if group.variables and sub.family != opt.family]
    if others:
        text += f"; {', '.join(others)}: each group is judged with its own settings"
    return text


# How the note names an optimizer family (``Optimizer.family``).
_FAMILY_WORDS = {"sgd": "SGD-like (steps not normalised per weight)", "adaptive": "Adam-like (normalised per weight)"}


def _pattern_notes(clashes: list[str], unsafe: list[str]) -> list[str]:
    notes = []
    if clashes:
        notes.append(f"MultiOptimizer: {len(clashes)} variable(s) match more than one pattern, which makes Keras "
                     f"raise 'Multiple optimizers assigned to variable' at the first step: {'; '.join(clashes[:3])}")
    slow = [p for p in unsafe if _compiles(p)]
    if slow:
        notes.append(f"MultiOptimizer: pattern(s) {', '.join(map(repr, slow))} repeat a repetition, which can take "
                     "exponential time: not matched against any path")
    broken = [p for p in unsafe if not _compiles(p)]
    if broken:
        notes.append(f"MultiOptimizer: pattern(s) {', '.join(map(repr, broken))} are not regular expressions: "
                     "Keras raises on them at the first step of a variable no key names exactly")
    return notes


# ---------------------------------------------------------------------------
# Muon
# ---------------------------------------------------------------------------
def _muon(model: Model, tree: ModelConfig, opt: Optimizer) -> None:
    cfg = opt.config
    listed = cfg.get("exclude_layers") or []
    # Keras iterates what it was given: a string's characters too
    exclude = [k for k in (listed if isinstance(listed, (list, str)) else []) if isinstance(k, str)]
    unsafe = [k for k in exclude if NESTED_REPEAT.search(k)]
    embeddings = cfg.get("exclude_embeddings", True) is not False
    trained = trained_variables(model, tree)
    shapes = {id(item.var): len(item.var.shape) for item in trained}
    chosen, moved = [], []
    for item in trained:
        adam = [_adamw_step(shapes[id(item.var)], path, embeddings, exclude, unsafe) for path in item.paths]
        chosen.append(int(adam[0]))
        if len(set(adam)) > 1:
            moved.append(f"{item.paths[1]} to group {int(adam[1])}")
    opt.param_groups = _groups(trained, chosen, 2, uncertain=bool(moved or unsafe))
    _muon_settings(opt, cfg)
    lead = _lead(model, opt.param_groups)
    opt.weight_decay = lead.weight_decay if lead is not None else opt.weight_decay
    model.notes.extend(n for n in (_muon_note(model, opt), _moved_note(moved, trained[0] if trained else None)) if n)
    if unsafe:
        model.notes.append(f"Muon: exclude_layers {', '.join(map(repr, unsafe))} repeat a repetition, which can "
                           "take exponential time: not matched")
    broken = [k for k in exclude if k not in unsafe and not _compiles(k)]
    if broken and any(shapes[id(item.var)] == 2 and not (embeddings and "embedding" in item.paths[0].lower())
                      for item in trained):
        # _should_use_adamw re.search-es every entry for each 2-D variable it
        # does not send to AdamW first: the first such variable raises
        model.notes.append(f"Muon: exclude_layers {', '.join(map(repr, broken))} are not regular expressions: "
                           "Keras raises re.error on them when it builds the optimizer (in load_model where the file "
                           "holds the optimizer's variables, else at the first training step)")


def _adamw_step(rank: int, path: str, embeddings: bool, exclude: list[str], unsafe: list[str]) -> bool:
    """``Muon._should_use_adamw``."""
    if rank != 2 or (embeddings and "embedding" in path.lower()):
        return True
    return any(_search(k, path) for k in exclude if k not in unsafe)


def _search(pattern: str, path: str) -> bool:
    try:
        return re.search(pattern, path) is not None
    except re.error:
        return False


# Muon's saved settings each group's hyperparameters show (0.004: Keras'
# adam_weight_decay default, for a config that omits it).
MUON_KEYS = ("learning_rate", "weight_decay", "momentum", "nesterov", "ns_steps", "rms_rate")
ADAMW_KEYS = ("adam_weight_decay", "adam_lr_ratio", "adam_beta_1", "adam_beta_2", "epsilon", "exclude_embeddings",
              "exclude_layers")


def _muon_settings(opt: Optimizer, cfg: dict[str, Any]) -> None:
    muon, adamw = opt.param_groups
    rate = opt.learning_rate.peak if opt.learning_rate is not None else None
    rate = rate if rate is not None else (opt.learning_rate.initial if opt.learning_rate is not None else None)
    muon.learning_rate, muon.weight_decay, muon.momentum = rate, _number(cfg.get("weight_decay", 0.004)), opt.momentum
    muon.hyperparameters = {"step": "muon", **{k: cfg[k] for k in MUON_KEYS if k in cfg}}
    adamw.learning_rate, adamw.weight_decay = rate, _number(cfg.get("adam_weight_decay", 0.004))
    adamw.hyperparameters = {"step": "adamw", "adam_weight_decay": cfg.get("adam_weight_decay", 0.004),
                             **{k: cfg[k] for k in ADAMW_KEYS if k in cfg}}
    raw = adamw.hyperparameters["adam_weight_decay"]
    if raw is not None and adamw.weight_decay is None:
        opt.invalid["adam_weight_decay"] = repr(raw)  # RL012's, as weight_decay's


def _muon_note(model: Model, opt: Optimizer) -> str:
    muon, adamw = opt.param_groups

    def decay(group: ParamGroup, setting: str) -> str:
        if group.weight_decay:
            return f"{setting} {group.weight_decay:g}"
        raw = group.hyperparameters.get(setting)
        return f"no decay ({setting} {raw!r}{'' if raw in (None, 0) else ', not a number'})"

    ratio = adamw.hyperparameters.get("adam_lr_ratio", 1)
    return (f"Muon: group 0 is its Muon step ({muon.size} two-dimensional tensor(s), {_values(model, muon):,} "
            f"values; {decay(muon, 'weight_decay')}), group 1 its AdamW step (the other {adamw.size} tensor(s): "
            f"biases, norms, embeddings, exclude_layers; {_values(model, adamw):,} values; "
            f"{decay(adamw, 'adam_weight_decay')}; lr x adam_lr_ratio {ratio}); both decays are multiplied by the "
            "optimizer's lr")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
