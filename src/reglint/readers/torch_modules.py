"""Whole modules pickled with ``torch.save(model)``, read as records.

``torch.save(model)`` pickles the ``nn.Module`` object itself: each module
is its class (``torch.nn.modules.linear.Linear``, or the user's
``__main__.Net``) rebuilt with ``NEWOBJ`` and given its ``__dict__`` with
``BUILD``. ``torch_pickle`` (``records``) keeps each as an ``Opaque``
record, never importing the class; its state holds what
``Module.state_dict`` walks (``torch/nn/modules/module.py``,
``_save_to_state_dict``): ``_parameters`` (name -> Parameter or None),
``_buffers`` (name -> tensor or None), ``_non_persistent_buffers_set``
(buffers a state dict leaves out) and ``_modules`` (name -> child or None).

``module_state_dict`` flattens that tree in ``state_dict``'s order (a
module's parameters, then its persistent buffers, then its children by
prefix) into the ``name -> TensorRef`` map the checkpoint reader takes,
and keeps what a state dict loses: each module's class, each
parameter's ``requires_grad``, and which entries are buffers (a spectral
norm's ``weight_u``, a positional table registered as a buffer), which
``model.parameters()`` never counts.

>>> from reglint.readers.torch_pickle import Opaque
>>> is_module_record(Opaque())
False
"""

from __future__ import annotations

from typing import Any

from reglint.errors import UnsafeInputError, one_line
from reglint.readers.torch_pickle import Opaque, QTensorRef, TensorRef

# Modules deeper than this are not a network's tree (a cycle or a hostile file).
MAX_DEPTH = 256
MAX_MODULES = 1_000_000


class ModuleStateDict(dict):
    """``name -> TensorRef`` flattened from module records, with the
    classes (module path -> ``module.qualname``), the parameters saved
    with ``requires_grad=False`` and the persistent buffers."""

    def __init__(self) -> None:
        super().__init__()
        self.classes: dict[str, str] = {}
        self.frozen: set[str] = set()
        self.buffers: set[str] = set()
        self.root_class = ""


def is_module_record(obj: Any) -> bool:
    """An ``nn.Module`` kept as a record: its state has the dicts every
    module's ``__init__`` creates."""
    if not isinstance(obj, Opaque):
        return False
    fields = obj.fields()
    return isinstance(fields.get("_parameters"), dict) and isinstance(fields.get("_modules"), dict)


def module_state_dict(root: Opaque) -> ModuleStateDict:
    """The state dict ``root.state_dict()`` would return, from records."""
    out = ModuleStateDict()
    out.root_class = one_line(root.name, 120)
    stack: list[tuple[str, Opaque, int]] = [("", root, 0)]
    visited = 0
    while stack:
        # A module registered twice appears under both prefixes, as in
        # state_dict; its tensors are one parameter (the reader's alias keys).
        prefix, module, depth = stack.pop()
        visited += 1
        if depth > MAX_DEPTH or visited > MAX_MODULES:  # a cycle, or no network's tree
            raise UnsafeInputError("the pickled module tree is deeper or larger than a network's")
        fields = module.fields()
        out.classes[prefix.rstrip(".")] = one_line(module.name, 120)
        skipped = fields.get("_non_persistent_buffers_set")
        skipped = skipped if isinstance(skipped, (set, frozenset)) else set()
        for name, value in _entries(fields.get("_parameters")):
            out[prefix + name] = value
            if value.requires_grad is False:
                out.frozen.add(prefix + name)
        for name, value in _entries(fields.get("_buffers")):
            if name not in skipped and prefix + name not in out:
                out[prefix + name] = value
                out.buffers.add(prefix + name)
        packed = _packed_weight_bias(fields.get("_packed_params"))
        if packed is not None:  # state_dict's key for it, which torch_ao unpacks to weight and bias
            out[prefix + "_packed_params"] = packed
        children = [(name, child) for name, child in (fields.get("_modules") or {}).items()
                    if isinstance(name, str) and is_module_record(child)]
        stack.extend((f"{prefix}{name}.", child, depth + 1) for name, child in reversed(children))
    return out


def _packed_weight_bias(value: Any) -> tuple | None:
    """A quantized Linear's ``LinearPackedParams`` keeps its weight and
    bias in a ``torch.ScriptObject`` (``_packed_params``), pickled as
    ``((qweight, bias), '__torch__.torch.classes.quantized.LinearPackedParamsBase')``:
    the pair, or None for anything else."""
    state = value.state if isinstance(value, Opaque) else None
    pair = state[0] if isinstance(state, tuple) and state else None
    if isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], QTensorRef) and (
            pair[1] is None or isinstance(pair[1], TensorRef)):
        return pair
    return None


def _entries(table: Any) -> list[tuple[str, TensorRef]]:
    if not isinstance(table, dict):
        return []
    return [(name, value) for name, value in table.items() if isinstance(name, str) and isinstance(value, TensorRef)]


def short_class(qualified: str) -> str:
    """``torch.nn.modules.linear.Linear`` -> ``Linear``."""
    return qualified.rsplit(".", 1)[-1]
