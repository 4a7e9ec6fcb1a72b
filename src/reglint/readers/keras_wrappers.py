"""What Keras applies through layers that hold another layer or stand for a
regularizer: ``ActivityRegularization`` (an activity penalty saved as its
``l1``/``l2``) and ``SpectralNormalization`` (a wrapper that stores the
wrapped kernel twice in a ``.keras`` file and owns one untrained vector).
Used by ``keras_build`` while it builds a layer.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from reglint.model import Model, Problem, ProblemKind, Role
from reglint.readers.keras_config import LayerNode
from reglint.readers.keras_layers import SINGLE_WRAPPERS, child_layers, own_slots


class _Stored(Protocol):
    """What ``without_aliases`` reads of a ``keras_build.FoundTensor``."""

    dataset: Any
    name: str | None
    role: Role | None
    alias: bool


Stored = TypeVar("Stored", bound=_Stored)


def activity_config(class_name: str, cfg: dict[str, Any]) -> Any:
    """The serialized activity regularizer Keras applies to the layer's
    output. Besides the config's ``activity_regularizer``:

    - ``ActivityRegularization`` saves only its ``l1`` and ``l2`` (Keras 3
      pops ``activity_regularizer`` from its config, tf-keras 2 does not
      write it) and regularizes with ``L1L2(l1, l2)``; both 0 add nothing,
      so there is no regularizer.
    - ``SpectralNormalization`` calls its wrapped layer through
      ``__call__``, which adds that layer's own activity penalty on the
      output the wrapper returns.

    >>> activity_config("ActivityRegularization", {"name": "a", "l1": 0.0, "l2": 10.0})
    {'class_name': 'L1L2', 'config': {'l1': 0.0, 'l2': 10.0}}
    >>> activity_config("ActivityRegularization", {"name": "a", "l1": 0.0, "l2": 0.0}) is None
    True
    """
    own = cfg.get("activity_regularizer")
    if own is not None:
        return own
    if class_name == "ActivityRegularization":
        factors = {key: cfg.get(key, 0.0) for key in ("l1", "l2")}
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and v == 0 for v in factors.values()):
            return None
        return {"class_name": "L1L2", "config": factors}
    inner = spectral_inner(class_name, cfg)
    return inner.get("activity_regularizer") if inner is not None else None


def spectral_inner(class_name: str, cfg: dict[str, Any]) -> dict[str, Any] | None:
    """The config of the layer a SpectralNormalization wraps, else None."""
    if class_name != "SpectralNormalization":
        return None
    return child_layers(class_name, cfg)["layer"][1]


def output_config(class_name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """The config that sets the layer's output width and activation: a
    single-layer wrapper's (SpectralNormalization, TimeDistributed) output
    is its wrapped layer's, applied at each position for TimeDistributed; a
    sequence tagger's ``TimeDistributed(Dense(12, softmax))`` head is a
    12-way softmax.

    >>> output_config("TimeDistributed", {"layer": {"class_name": "Dense",
    ...     "config": {"units": 12, "activation": "softmax"}}})["units"]
    12
    >>> output_config("Dense", {"units": 3})
    {'units': 3}
    """
    if class_name in SINGLE_WRAPPERS:
        inner = child_layers(class_name, cfg).get("layer")
        if inner is not None and isinstance(inner[1], dict):
            return inner[1]
    return cfg


def without_aliases(tensors: list[Stored], model: Model, node: LayerNode) -> list[Stored]:
    """The stored tensors less second copies of a variable (a .keras file
    saves SpectralNormalization's kernel under the wrapper and under the
    wrapped layer: one weight, as Keras counts it). Keras loads both into
    that variable, so a copy of another shape fails the load."""
    aliases = [found for found in tensors if found.alias]
    if not aliases:
        return tensors
    kept = [found for found in tensors if not found.alias]
    for alias in aliases:
        shape = tuple(int(d) for d in (alias.dataset.shape or ()))
        same = [found for found in kept if found.role is alias.role or (
            alias.role is Role.KERNEL and found.role is Role.EMBEDDINGS)]
        if same and all(tuple(int(d) for d in (found.dataset.shape or ())) != shape for found in same):
            model.problems.append(Problem(
                ProblemKind.WEIGHTS_MISMATCH, node.path,
                f"{node.class_name} stores its copy of the wrapped {same[0].name} with shape {list(shape)}, the "
                f"wrapped layer's is {list(same[0].dataset.shape or ())}: Keras loads both into one variable and "
                "fails", target=same[0].name or "", blocks_load=True, reason="alias_shape"))
    return kept


def slot_frozen(owner_class: str, cfg: dict, name: str | None) -> bool:
    """Whether a tensor stored by name (legacy HDF5) is one its owner
    creates untrainable (SpectralNormalization's ``vector_u``)."""
    slots = own_slots(owner_class, cfg) if name else None
    return any(slot.name == name and not slot.trainable for slot in slots or ())
