"""The model graph of a saved Keras config, checked as Keras' loader checks it.

``keras.models.load_model`` rebuilds a Functional model from its config
(``keras/src/models/functional.py``, ``functional_from_config``): it
creates every entry of ``layers`` (each must be a layer config: a
``class_name`` and its ``config``), keyed by name (a later entry of the
same name replaces an earlier one), then replays the calls recorded in
each entry's ``inbound_nodes`` until none is left, a call waiting until
every tensor it reads exists; ``input_layers`` and ``output_layers`` are
looked up by name last. A Sequential adds its layers one by one and
refuses a second layer of a name. What that refuses is refused here, with
a ``ModelReadError`` (exit code 2, one line, as for a config whose
``layers`` is not a list): the config does not describe a model Keras can
build, so there is nothing to lint.

- a layer entry that is not a layer config (a string, a number, an object
  without ``class_name``): ``TypeError``/``ValueError`` in Keras;
- a call reading a layer the model does not have (``ValueError: Unknown
  layer``; nested models read their own layers only);
- an ``input_layers``/``output_layers`` name the model does not have
  (``RuntimeError: could not find layer``);
- a call that can never be made: a loop, or a node of a layer that is never
  created (``ValueError: ... either has loops or disconnected nodes``);
- two layers of one name where Keras then never makes the first one's
  calls (Functional), or at all (Sequential).

Nothing stricter: a Sequential records no graph; a layer shared between
several calls appears once with several inbound nodes, and a call is
waited for per node, not per layer (``a(b(a(b(x))))`` is no loop); a
nested model or a class reglint does not know may start with a node of its
own, so its node indices are taken at their most lenient; tf-keras 2's
``[[name, node, tensor, kwargs]]`` nodes are read by the one parser of
inbound nodes (``keras_config.inbound_refs``). The walk is iterative and
linear in the number of calls, whatever the graph's depth or size.

>>> ok = {"class_name": "Functional", "config": {"name": "m", "layers": [
...     {"class_name": "InputLayer", "name": "x", "config": {}, "inbound_nodes": []},
...     {"class_name": "Dense", "name": "d", "config": {"units": 2},
...      "inbound_nodes": [[["x", 0, 0, {}]]]}],
...     "input_layers": [["x", 0, 0]], "output_layers": [["d", 0, 0]]}}
>>> check_graph(ok)
>>> ok["config"]["layers"][1]["inbound_nodes"] = [[["d", 0, 0, {}]]]
>>> try:
...     check_graph(ok)
... except ModelReadError as exc:
...     print(exc)
the graph of the Functional 'm' has a loop: 'd' reads its own output: Keras cannot load this model
"""

from __future__ import annotations

from collections import deque
from typing import Any

from reglint.errors import ModelReadError
from reglint.readers.keras_config import inbound_refs, is_container, tensor_refs
from reglint.readers.keras_layers import RNN_LAYERS, child_layers, own_slots
from reglint.readers.keras_objects import bare_class_name, class_name_of, is_tensor_ref

REFUSED = "Keras cannot load this model"
# A layer whose node count at creation reglint cannot know (a nested model,
# a class it does not know, an entry without a list of calls): every node
# index below this reads as already there.
LENIENT = 1


def check_graph(root: Any) -> None:
    """Raise ``ModelReadError`` where Keras refuses the config's graph."""
    if not isinstance(root, dict):
        return
    cls = bare_class_name(class_name_of(root) or "")
    cfg = root.get("config")
    if not is_container(cls, cfg):
        return
    top = cfg.get("name") if isinstance(cfg, dict) else None
    stack = [(cls, cfg, f"the {cls} {_q(top if isinstance(top, str) else cls)}", "")]
    while stack:
        cls, cfg, where, prefix = stack.pop()
        entries = _entries(cfg)
        if entries is None:
            continue
        for index, entry in enumerate(entries):
            _check_entry(entry, index, where)
        if isinstance(cfg, dict) and "input_layers" in cfg and cls != "Sequential":
            _check_functional(cfg, entries, where)
        else:
            _check_sequential(entries, where)
        for entry in entries:
            child_cls = bare_class_name(entry["class_name"])
            child_cfg = entry.get("config")
            if is_container(child_cls, child_cfg):
                path = prefix + (_name(entry) or child_cls)
                stack.append((child_cls, child_cfg, f"the nested {child_cls} {_q(path)}", path + "/"))


def _entries(cfg: Any) -> list | None:
    if isinstance(cfg, list):  # Keras 1 Sequential
        return cfg
    if isinstance(cfg, dict) and isinstance(cfg.get("layers"), list):
        return cfg["layers"]
    return None  # no layer list: keras_config refuses a non-list one


_JSON_KINDS = {str: "the string", int: "the number", float: "the number", bool: "a boolean", list: "a list",
               type(None): "null"}


def _check_entry(entry: Any, index: int, where: str) -> None:
    if not isinstance(entry, dict):
        kind = _JSON_KINDS.get(type(entry), type(entry).__name__)
        shown = f" {_q(entry)}" if kind in ("the string", "the number") else ""
        raise ModelReadError(f"layers[{index}] of {where} is {kind}{shown}, not a layer config: {REFUSED}")
    if not isinstance(entry.get("class_name"), str) or not entry["class_name"]:
        name = _name(entry)
        raise ModelReadError(f"layers[{index}] of {where}{' (' + _q(name) + ')' if name else ''} has no "
                             f"class_name, so it is not a layer config: {REFUSED}")


def _name(entry: dict) -> str | None:
    """The layer's name as Keras keys it: the entry's ``name`` (Functional),
    else its config's (Sequential); None where neither is given."""
    name = entry.get("name")
    if not isinstance(name, str):
        cfg = entry.get("config")
        name = cfg.get("name") if isinstance(cfg, dict) else None
    return name if isinstance(name, str) and name else None


def _check_sequential(entries: list[dict], where: str) -> None:
    seen: set[str] = set()
    for entry in entries:
        name = _name(entry)
        if name is not None and name in seen:
            raise ModelReadError(f"two layers of {where} are named {_q(name)} (a Sequential model's layer names "
                                 f"must be unique): {REFUSED}")
        if name is not None:
            seen.add(name)


def _calls(entry: dict) -> int | None:
    """How many calls the entry records (None: no list of them)."""
    nodes = entry.get("inbound_nodes")
    if is_tensor_ref(nodes):  # tf.keras TFOpLambda: one flat call
        return 1
    return len(nodes) if isinstance(nodes, list) else None


def _first_nodes(entry: dict, calls: int | None) -> int:
    """Nodes the layer has before the config's calls are replayed: an
    InputLayer one, a plain built-in layer none; anything else (a nested
    model, a class reglint does not know) is given the benefit of one."""
    cls = bare_class_name(entry["class_name"])
    cfg = entry.get("config")
    if calls is None or cls == "InputLayer" or is_container(cls, cfg) or not isinstance(cfg, dict):
        return LENIENT
    known = own_slots(cls, cfg) is not None or cls in RNN_LAYERS or bool(child_layers(cls, cfg))
    return 0 if known else LENIENT


def _check_functional(cfg: dict, entries: list[dict], where: str) -> None:
    names = [_name(entry) for entry in entries]
    owner = {name: index for index, name in enumerate(names) if name is not None}  # the last of a name wins
    calls = [_calls(entry) for entry in entries]
    for index, name in enumerate(names):
        if name is not None and owner[name] != index and calls[index]:
            raise ModelReadError(f"two layers of {where} are named {_q(name)}: Keras keeps the last, so the first "
                                 f"one's calls are never made: {REFUSED}")
    refs = [inbound_refs(entry) for entry in entries]
    for index, entry_refs in enumerate(refs):
        for ref in entry_refs:
            if ref.name not in owner:
                raise ModelReadError(f"{_q(names[index] or f'layers[{index}]')} in {where} reads layer "
                                     f"{_q(ref.name)}, which is not one of its layers: {REFUSED}")
    for key in ("input_layers", "output_layers"):
        for name, _, _ in tensor_refs(cfg.get(key)):
            if name not in owner:
                raise ModelReadError(f"{key} of {where} names {_q(name)}, which is not one of its layers: {REFUSED}")
    _check_calls(entries, names, owner, calls, refs, where)


def _check_calls(entries: list[dict], names: list[str | None], owner: dict[str, int], calls: list[int | None],
                 refs: list, where: str) -> None:
    """Replay the calls as Keras does, one node at a time (Kahn's order):
    a call waits for the layer's previous call and for the node of every
    layer it reads."""
    first = [_first_nodes(entry, n) for entry, n in zip(entries, calls, strict=True)]
    start: list[int] = []
    total = 0
    for n in calls:
        start.append(total)
        total += n or 0
    layer_of = [index for index, n in enumerate(calls) for _ in range(n or 0)]
    waits_for: list[list[int]] = [[] for _ in range(total)]
    for index, n in enumerate(calls):
        for call in range(1, n or 0):
            waits_for[start[index] + call].append(start[index] + call - 1)
        for ref in refs[index]:
            if not n or ref.call >= n:
                continue
            source = owner[ref.name]
            if calls[source] is None:
                continue
            node = ref.node - first[source]
            if node < 0:
                continue  # a node the layer has from the start
            made = calls[source] or 0
            if node >= made:
                raise ModelReadError(
                    f"{_q(names[index] or f'layers[{index}]')} in {where} reads node {ref.node} of "
                    f"{_q(ref.name)}, which is called {made} time{'s' if made != 1 else ''}, so that node is "
                    f"never made: {REFUSED}")
            waits_for[start[index] + ref.call].append(start[source] + node)
    feeds: list[list[int]] = [[] for _ in range(total)]
    pending = [len(deps) for deps in waits_for]
    for node, deps in enumerate(waits_for):
        for dep in deps:
            feeds[dep].append(node)
    ready = deque(node for node in range(total) if not pending[node])
    done = 0
    while ready:
        node = ready.popleft()
        done += 1
        for user in feeds[node]:
            pending[user] -= 1
            if not pending[user]:
                ready.append(user)
    if done == total:
        return
    loop = _a_loop(waits_for, pending)
    layers = [names[layer_of[node]] or f"layers[{layer_of[node]}]" for node in reversed(loop)]
    layers = [name for i, name in enumerate(layers) if i == 0 or name != layers[i - 1]]
    if len(layers) > 1 and layers[0] == layers[-1]:
        layers.pop()
    if len(layers) == 1:
        shown = f"{_q(layers[0])} reads its own output"
    else:
        shown = " -> ".join(_q(name) for name in layers[:8]) + (
            f" -> ... ({len(layers)} layers)" if len(layers) > 8 else "") + f" -> {_q(layers[0])}"
    raise ModelReadError(f"the graph of {where} has a loop: {shown}: {REFUSED}")


def _a_loop(waits_for: list[list[int]], pending: list[int]) -> list[int]:
    """One loop among the calls never made, in waiting order: each of them
    waits for another of them (any other wait was met or refused)."""
    node = next(n for n, left in enumerate(pending) if left)
    path: list[int] = []
    at: dict[int, int] = {}
    while node not in at:
        at[node] = len(path)
        path.append(node)
        node = next(dep for dep in waits_for[node] if pending[dep])
    return path[at[node]:]


def _q(value: Any) -> str:
    """A name from the file, quoted and cut short."""
    text = str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")
