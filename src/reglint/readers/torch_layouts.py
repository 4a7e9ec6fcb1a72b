"""Where a checkpoint keeps its model and optimizer when not under the names
``torch_checkpoint`` knows (``model``, ``state_dict``, ``optimizer`` ...).

Research code saves what it trains under its own names, and several of them:

* **several state dicts** under any keys (``{"encoder": ..., "decoder":
  ...}``, a GAN's ``{"G": ..., "D": ...}``, BasicSR's ``{"params": ...,
  "params_ema": ...}``): one model, each entry's parameters prefixed with its
  key (``encoder.0.weight``). With optimizers saved, the entries are those
  whose parameters make up what the optimizers update (by count and state
  shapes: DINO's ``teacher``, MoCo's ``encoder_k``, a GAN's running average
  and a loss's centre are not; a learnable loss's weights and SAC's bare
  ``log_alpha`` are); without, every entry holding a matrix except copies
  named as moving averages (``AVERAGED_WORDS``: ``params_ema``, ``netGEma``,
  ``g_running``) beside a trained one;
* **nested state dicts**, a dict of dicts whose leaves are tensors
  (Megatron-LM before megatron-core: ``language_model`` -> ``embedding`` ->
  ``word_embeddings`` -> ``weight``), flattened with dots;
* **several optimizers** under any keys (``optimizer_G``, ``optimizer_D``),
  in a list (BasicSR's ``optimizers``) or one level down (Megatron's mixed
  precision wrapper, ``{"optimizer": {"optimizer": ..., "grad_scaler":
  ...}}``): merged into one optimizer state, their param groups one after
  another with the parameter ids renumbered apart, ordered like the state
  dicts they pair with by their words (``optimizer_G`` with ``G``,
  ``optimizers.disc`` with ``disc``, ``g_optimizer`` with ``generator``) so
  the groups map to the parameters in the model's order. Optimizers of different
  classes are not merged: the first is read and a note names the others.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from reglint.readers.torch_modules import ModuleStateDict
from reglint.readers.torch_optim import PARAM_SHAPED_STATE, SOURCE, infer_class, is_optimizer_state
from reglint.readers.torch_pickle import TensorRef

MAX_DEPTH = 8
# Marks an optimizer state read alone from several: the parameters it does
# not update are not frozen (``torch_checkpoint._mark_frozen``).
PARTIAL = "_reglint_one_of_several"
# Words of a key that name a moving average of the weights (a copy, not what
# an optimizer updates): an EMA, DINO's and BYOL's teacher or target
# network, SWA's average, rosinality's ``g_running``.
AVERAGED_WORDS = frozenset({"ema", "teacher", "target", "swa", "average", "averaged", "avg", "shadow", "momentum",
                            "running", "polyak"})
# Words that say nothing of which model a key holds (pairing optimizers with models).
_PLAIN_WORDS = frozenset({"optimizer", "optimiser", "optimizers", "optim", "opt", "state", "states", "dict", "sd",
                          "model", "models", "net", "network", "params", "param", "weights"})
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
# Leaves that are state, not parameters (torch_checkpoint's own lists, for the counts here).
_NOT_TRAINED = ("running_mean", "running_var", "num_batches_tracked", "position_ids", "inv_freq")
MAX_CANDIDATES = 12  # subsets tried when choosing the entries the optimizers update


def words(key: str) -> list[str]:
    """A key's words, lower case: ``netGEma`` -> net, g, ema; ``g_running`` -> g, running."""
    return [w.lower() for w in _WORD.findall(key)]


def is_averaged(key: str) -> bool:
    return any(w in AVERAGED_WORDS for w in words(key))


def nested_state_dict(value: Any) -> dict | None:
    """A dict of dicts whose every leaf is a tensor, flattened (``a.b.weight``);
    None for anything else (a flat state dict is not this: ``is_state_dict``)."""
    if not isinstance(value, dict) or not any(isinstance(v, dict) for v in value.values()):
        return None
    flat: dict[str, Any] = {}
    if not _flatten(value, "", flat, 0) or not any(len(t.shape) >= 2 for t in _trained_tensors(flat)):
        return None
    return flat


def _flatten(node: dict, prefix: str, out: dict, depth: int) -> bool:
    if depth > MAX_DEPTH:
        return False
    for key, value in node.items():
        if not isinstance(key, str):
            return False
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if not _flatten(value, name + ".", out, depth + 1):
                return False
        elif isinstance(value, TensorRef) or name.endswith("_extra_state"):
            out[name] = value
        else:
            return False
    return True


def several_state_dicts(obj: dict, as_weights) -> tuple[str, dict, list[str]] | None:
    """(key, state dict, notes) for the model a checkpoint keeps under keys
    of its own: one entry, or several merged with their keys as prefixes.
    ``as_weights`` turns a value into a state dict or None.

    Which entries: with optimizers saved, the entries (and bare tensors,
    SAC's ``log_alpha``) whose parameters make up exactly what they update,
    by count and by the shapes of their state; without, every entry holding
    a matrix except moving-average copies (``AVERAGED_WORDS``) beside a
    trained one."""
    entries = [(k, w) for k, v in obj.items() if isinstance(k, str) and (w := as_weights(v)) is not None
               and _trained_tensors(w)]
    notes: list[str] = []
    chosen = _covered(entries + _bare_tensors(obj), optimizer_states(obj))
    if chosen is None:
        chosen = [(k, w) for k, w in entries if any(len(t.shape) >= 2 for t in _trained_tensors(w))]
        trained = [(k, w) for k, w in chosen if not is_averaged(k)]
        if trained and len(trained) < len(chosen):
            chosen = trained
    left = [k for k, _ in entries if k not in {key for key, _ in chosen}]
    if left:
        notes.append(f"{', '.join(repr(k) for k in left)}: not what the optimizer updates (a moving average of the "
                     "weights: an EMA, a teacher, target or key network; or a loss's or metric's state), not counted")
    if not chosen:
        return None
    if len(chosen) == 1 and not isinstance(chosen[0][1], TensorRef):
        key, weights = chosen[0]
        notes.append(f"the weights are the checkpoint's {key!r} entry")
        return key, weights, notes
    notes.append(f"{len(chosen)} entries saved ({', '.join(repr(k) for k, _ in chosen)}): one model, each entry's "
                 "parameters under its key")
    return "+".join(k for k, _ in chosen), _merged(chosen), notes


def _trained_tensors(weights: Any) -> list[TensorRef]:
    """What an optimizer over this entry would update: float tensors, each
    once (tied), less statistics, buffers and frozen parameters."""
    if isinstance(weights, TensorRef):
        return [weights] if weights.is_float else []
    skip = getattr(weights, "buffers", set()) | getattr(weights, "frozen", set())
    seen, out = set(), []
    for name, value in weights.items():
        if (isinstance(value, TensorRef) and value.is_float and name not in skip
                and not str(name).endswith(_NOT_TRAINED) and value.alias_key() not in seen):
            seen.add(value.alias_key())
            out.append(value)
    return out


def _bare_tensors(obj: dict) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in obj.items() if isinstance(k, str) and isinstance(v, TensorRef) and v.is_float]


def _covered(candidates: list[tuple[str, Any]], optimizers: list[tuple[str, dict]]) -> list[tuple[str, Any]] | None:
    """The candidates whose parameters are what the optimizers update: as
    many tensors as their ids, covering the shapes of their state; among
    several such choices (identical copies), the one without moving-average
    names, then the earliest saved. None when no choice fits."""
    if not optimizers or not candidates or len(candidates) > MAX_CANDIDATES:
        return None
    want = sum(len(_ids(opt)) for _, opt in optimizers)
    shapes: Counter = Counter()
    for _, opt in optimizers:
        shapes.update(_state_shapes(opt))
    counts = [Counter(tuple(t.shape) for t in _trained_tensors(w)) for _, w in candidates]
    best = None
    for mask in range(1, 1 << len(candidates)):
        members = [i for i in range(len(candidates)) if mask >> i & 1]
        if sum(sum(counts[i].values()) for i in members) != want:
            continue
        have = sum((counts[i] for i in members), Counter())
        if any(have[shape] < n for shape, n in shapes.items()):
            continue
        score = (sum(is_averaged(candidates[i][0]) for i in members), members)
        if best is None or score < best:
            best = score
    return None if best is None else [candidates[i] for i in best[1]]


def _ids(opt: dict) -> list:
    return [i for g in opt["param_groups"] if isinstance(g, dict) for i in g.get("params", [])]


def _state_shapes(opt: dict) -> Counter:
    out: Counter = Counter()
    for entry in opt["state"].values():
        if isinstance(entry, dict):
            shape = next((tuple(entry[n].shape) for n in PARAM_SHAPED_STATE if isinstance(entry.get(n), TensorRef)),
                         None)
            if shape is not None:
                out[shape] += 1
    return out


def _merged(chosen: list[tuple[str, Any]]) -> dict:
    """The entries as one state dict under their keys; the records of whole
    pickled modules (classes, frozen parameters, buffers) kept, prefixed."""
    records = [w for _, w in chosen if isinstance(w, ModuleStateDict)]
    merged: dict = ModuleStateDict() if records else {}
    for key, weights in chosen:
        if isinstance(weights, TensorRef):
            merged[key] = weights
            continue
        merged.update({f"{key}.{name}": value for name, value in weights.items()})
        if isinstance(weights, ModuleStateDict) and isinstance(merged, ModuleStateDict):
            merged.classes.update({f"{key}.{path}".rstrip("."): cls for path, cls in weights.classes.items()})
            merged.frozen.update(f"{key}.{name}" for name in weights.frozen)
            merged.buffers.update(f"{key}.{name}" for name in weights.buffers)
    if isinstance(merged, ModuleStateDict):
        merged.root_class = "several modules"
    return merged


def averaged_copies(names_shapes: list[tuple[str, tuple[int, ...]]]) -> set[str]:
    """Top-level modules of one state dict that are a moving average of
    another (mmgen's ``generator_ema`` beside ``generator``, an agent's
    ``target_net`` beside ``q_net``): named as averages, and the same
    parameters with the same shapes as a module that is not.

    >>> sorted(averaged_copies([("g.w", (2, 2)), ("g_ema.w", (2, 2)), ("d.w", (1, 2))]))
    ['g_ema']
    """
    modules: dict[str, dict[str, tuple[int, ...]]] = {}
    for name, shape in names_shapes:
        head, _, rest = name.partition(".")
        if rest:
            modules.setdefault(head, {})[rest] = tuple(shape)
    trained = [layout for head, layout in modules.items() if not is_averaged(head)]
    return {head for head, layout in modules.items() if is_averaged(head) and layout in trained}


def optimizer_states(obj: dict) -> list[tuple[str, dict]]:
    """Every optimizer state a checkpoint keeps: under any key, in a list,
    or one level down in a wrapper's dict."""
    found: list[tuple[str, dict]] = []
    for key, value in obj.items():
        if not isinstance(key, str):
            continue
        if is_optimizer_state(value):
            found.append((key, value))
        elif isinstance(value, list):
            found.extend((f"{key}[{i}]", v) for i, v in enumerate(value[:64]) if is_optimizer_state(v))
        elif isinstance(value, dict):
            inner = [(f"{key}.{k}", v) for k, v in value.items() if isinstance(k, str) and is_optimizer_state(v)]
            found.extend(inner[:64])
    return found


def merged_optimizer(found: list[tuple[str, dict]], model_keys: list[str], notes: list[str]) -> tuple[str, dict]:
    """One optimizer state from several: ordered like the state dicts they
    pair with, their ids renumbered apart (see the module docstring)."""
    if len(found) == 1:
        return found[0]
    classes = [infer_class(_first_group(state), _state_keys(state), None)[0] for _, state in found]
    if len(set(classes)) > 1:
        notes.append(f"{len(found)} optimizers of different classes ({', '.join(k for k, _ in found)}: "
                     f"{', '.join(classes)}): {found[0][0]!r} is described; the parameters it does not update are "
                     "trained by the others, not frozen")
        return found[0][0], {**found[0][1], PARTIAL: True}
    rank = {key: i for i, key in enumerate(model_keys)}
    paired = [_pair(key, model_keys) for key, _ in found]
    order = [rank[p] for p in paired if p is not None]
    if len(order) == len(found) and len(set(order)) == len(order):
        found = [f for _, f in sorted(zip(order, found, strict=True), key=lambda pair: pair[0])]
    groups: list[dict] = []
    state: dict = {}
    offset = 0
    for source, (_, opt) in enumerate(found):
        ids = [i for g in opt["param_groups"] if isinstance(g, dict) for i in g.get("params", [])
               if isinstance(i, int) and not isinstance(i, bool)]
        renumber = {i: offset + n for n, i in enumerate(ids)}
        for group in opt["param_groups"]:
            if isinstance(group, dict):  # SOURCE: a parameter two optimizers share is matched in each
                groups.append({**group, "params": [renumber[i] for i in group.get("params", []) if i in renumber],
                               SOURCE: source})
        state.update({renumber[k]: v for k, v in opt["state"].items() if k in renumber})
        offset += len(ids)
    notes.append(f"{len(found)} optimizers saved ({', '.join(k for k, _ in found)}): their param groups read as "
                 "one optimizer's, in the order of the state dicts they train")
    return "+".join(k for k, _ in found), {"state": state, "param_groups": groups}


def _pair(optimizer_key: str, model_keys: list[str]) -> str | None:
    """The model an optimizer's key names, by their words less the plain
    ones: ``optimizer_G`` -> ``G``, ``optimizers.disc`` -> ``disc``,
    ``g_optimizer`` -> ``generator`` (one letter: the one model it starts)."""
    name = re.split(r"[.\[]", optimizer_key.rstrip("]"))[-1] if "." in optimizer_key else optimizer_key.split("[")[0]
    own = [w for w in words(name) if w not in _PLAIN_WORDS]
    if not own:
        return None
    named = {k: [w for w in words(k) if w not in _PLAIN_WORDS] for k in model_keys}
    exact = [k for k, ws in named.items() if ws == own]
    if len(exact) == 1:
        return exact[0]
    if len(own) == 1 and len(own[0]) == 1:
        initial = [k for k, ws in named.items() if ws and ws[0].startswith(own[0])]
        return initial[0] if len(initial) == 1 else None
    return None


def _first_group(state: dict) -> dict:
    groups = [g for g in state["param_groups"] if isinstance(g, dict)]
    return groups[0] if groups else {}


def _state_keys(state: dict) -> set[str]:
    return {k for entry in state["state"].values() if isinstance(entry, dict) for k in entry}
