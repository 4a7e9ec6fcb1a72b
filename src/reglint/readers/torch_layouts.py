"""Where a checkpoint keeps its model and optimizer when not under the names
``torch_checkpoint`` knows (``model``, ``state_dict``, ``optimizer`` ...).

Research code saves what it trains under its own names, and several of them:

* **several state dicts** under any keys (``{"encoder": ..., "decoder":
  ...}``, a GAN's ``{"G": ..., "D": ...}``, BasicSR's ``{"params": ...,
  "params_ema": ...}``): one model, each entry's parameters prefixed with its
  key (``encoder.0.weight``); a moving-average copy (a key with an ``ema``,
  ``teacher``, ``target``, ``swa`` token: DINO's ``teacher`` beside its
  ``student``) is left out when the trained one is there, and so is a
  loss's state (``dino_loss``: its centre is a buffer);
* **nested state dicts**, a dict of dicts whose leaves are tensors
  (Megatron-LM before megatron-core: ``language_model`` -> ``embedding`` ->
  ``word_embeddings`` -> ``weight``), flattened with dots;
* **several optimizers** under any keys (``optimizer_G``, ``optimizer_D``),
  in a list (BasicSR's ``optimizers``) or one level down (Megatron's mixed
  precision wrapper, ``{"optimizer": {"optimizer": ..., "grad_scaler":
  ...}}``): merged into one optimizer state, their param groups one after
  another with the parameter ids renumbered apart, ordered like the state
  dicts they pair with by name (``optimizer_G`` with ``G``) so the groups
  map to the parameters in the model's order. Optimizers of different
  classes are not merged: the first is read and a note names the others.
"""

from __future__ import annotations

import re
from typing import Any

from reglint.readers.torch_optim import infer_class, is_optimizer_state
from reglint.readers.torch_pickle import TensorRef

MAX_DEPTH = 8
# Marks an optimizer state read alone from several: the parameters it does
# not update are not frozen (``torch_checkpoint._mark_frozen``).
PARTIAL = "_reglint_one_of_several"
# A moving average of the weights (a copy, not what the optimizer updates):
# an EMA, DINO's and BYOL's teacher or target network, SWA's average.
_EMA = re.compile(r"(^|[_\-.])(ema|teacher|target|swa|averaged?|shadow|momentum)($|[_\-.])", re.IGNORECASE)
# A loss's or a metric's state (DINO's ``dino_loss`` centre): buffers, not a model.
_NOT_MODEL = re.compile(r"(^|[_\-.])(loss|criterion|scaler|metrics?)($|[_\-.])", re.IGNORECASE)
# The words an optimizer's key adds to its model's key: optimizer_G, opt_D, g_optim, optimizerG.
_OPTIMIZER_WORDS = re.compile(r"optimizer|optimiser|optim|opt", re.IGNORECASE)


def nested_state_dict(value: Any) -> dict | None:
    """A dict of dicts whose every leaf is a tensor, flattened (``a.b.weight``);
    None for anything else (a flat state dict is not this: ``is_state_dict``)."""
    if not isinstance(value, dict) or not any(isinstance(v, dict) for v in value.values()):
        return None
    flat: dict[str, Any] = {}
    if not _flatten(value, "", flat, 0) or not _has_weights(flat):
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
    ``as_weights`` turns a value into a state dict or None."""
    found = {k: w for k, v in obj.items() if isinstance(k, str) and not _NOT_MODEL.search(k)
             and (w := as_weights(v)) is not None and _has_weights(w)}
    trained = {k: w for k, w in found.items() if not _EMA.search(k)}
    notes = []
    if trained and len(trained) < len(found):
        left = sorted(set(found) - set(trained))
        notes.append(f"{', '.join(repr(k) for k in left)}: a moving average of the trained weights (an EMA, a "
                     "teacher or target network), not counted")
        found = trained
    if not found:
        return None
    if len(found) == 1:
        key, weights = next(iter(found.items()))
        notes.append(f"the weights are the checkpoint's {key!r} entry")
        return key, weights, notes
    merged: dict[str, Any] = {}
    for key, weights in found.items():
        merged.update({f"{key}.{name}": value for name, value in weights.items()})
    notes.append(f"{len(found)} state dicts saved ({', '.join(repr(k) for k in found)}): one model, each "
                 "entry's parameters under its key")
    return "+".join(found), merged, notes


def _has_weights(state: dict) -> bool:
    """A model's state dict holds a float tensor of more than one value; a
    trainer's counters (``train_state``: ``step``, ``ntokens_seen``) do not."""
    return any(isinstance(v, TensorRef) and v.is_float and v.numel > 1 for v in state.values())


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
    for _, opt in found:
        ids = [i for g in opt["param_groups"] if isinstance(g, dict) for i in g.get("params", [])
               if isinstance(i, int) and not isinstance(i, bool)]
        renumber = {i: offset + n for n, i in enumerate(ids)}
        for group in opt["param_groups"]:
            if isinstance(group, dict):
                groups.append({**group, "params": [renumber[i] for i in group.get("params", []) if i in renumber]})
        state.update({renumber[k]: v for k, v in opt["state"].items() if k in renumber})
        offset += len(ids)
    notes.append(f"{len(found)} optimizers saved ({', '.join(k for k, _ in found)}): their param groups read as "
                 "one optimizer's, in the order of the state dicts they train")
    return "+".join(k for k, _ in found), {"state": state, "param_groups": groups}


def _pair(optimizer_key: str, model_keys: list[str]) -> str | None:
    """The state dict an optimizer's key names: ``optimizer_G`` -> ``G``."""
    rest = _OPTIMIZER_WORDS.sub("", optimizer_key.split(".")[0].split("[")[0]).strip("_-. ").lower()
    matches = [k for k in model_keys if k.lower() == rest] or [k for k in model_keys if rest and rest in k.lower()]
    return matches[0] if len(matches) == 1 else None


def _first_group(state: dict) -> dict:
    groups = [g for g in state["param_groups"] if isinstance(g, dict)]
    return groups[0] if groups else {}


def _state_keys(state: dict) -> set[str]:
    return {k for entry in state["state"].values() if isinstance(entry, dict) for k in entry}
