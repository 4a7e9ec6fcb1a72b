"""Roles of a custom layer's variables, from how the file stores them.

A custom class (a user's ``Layer`` subclass, a KerasHub backbone or task)
saves no config reglint can turn into variables: Keras 3's
``model.weights.h5`` stores each sub-object's variables as ``vars/0``,
``vars/1`` ... under the sub-object's attribute or layer name
(``res_block/bn/vars/0``, ``transformer_encoder/_feedforward_layer_norm/
vars/1``), without names or trainable flags. What the layout and those
names still tell:

- four rank-1 tensors of one length in one ``vars`` group are a
  BatchNormalization's ``gamma, beta, moving_mean, moving_variance``
  (``keras/src/layers/normalization/batch_normalization.py`` builds them
  in that order; no other built-in layer stores four equal vectors): the
  moving statistics are state, not trained;
- a group under a normalization's name (``layer_norm``, ``rms_normalization``,
  ``bn``) holding one or two vectors is ``gamma`` (``scale``) then ``beta``
  (LayerNormalization, RMSNormalization, GroupNormalization build their
  scale first);
- a matrix under an embedding's name is an embedding table;
- a group holding an integer tensor is a quantized sub-layer: the
  integers and the float scales after them do not train, a float between
  the first integers and the scale (the bias) does.

Anything else keeps the rank rule (rank >= 2 a kernel, rank 1 a bias).
``keras_slots`` then corrects the trainable flags from the optimizer's
slots where the file holds them.
"""

from __future__ import annotations

import re

from reglint.model import Role

# layer_normalization_3, _feedforward_layer_norm, pre_ffw_norm, rms_normalization,
# final_layernorm, bn, bn1, conv1_bn, ln_f
_NORM_NAME = re.compile(r"norm|(^|_)(bn|ln)(\d*|_\w)$")
_EMBED_NAME = re.compile(r"embed")

BATCH_NORM_SLOTS = (("gamma", Role.GAMMA, True), ("beta", Role.BETA, True),
                    ("moving_mean", Role.MOVING_MEAN, False), ("moving_variance", Role.MOVING_VARIANCE, False))
NORM_SLOTS = (("gamma", Role.GAMMA, True), ("beta", Role.BETA, True))


def group_slots(group: str, shapes: list[tuple[int, ...]],
                integer: list[bool] | None = None) -> list[tuple[str, Role, bool | None]] | None:
    """(name, role, trainable) for each tensor of one custom ``vars`` group,
    or None where neither the layout nor the name says more than the rank
    rule. ``trainable`` None: not known from the layout. ``integer``: which
    tensors hold integers (a quantized sub-layer)."""
    if integer is not None and any(integer):
        return _quantized_slots(integer)
    last = group.rsplit("/", 1)[-1].lower()
    vectors = bool(shapes) and all(len(shape) == 1 for shape in shapes) and len(set(shapes)) == 1
    if vectors and len(shapes) == 4 and group:  # a sub-layer: a custom class's own four vectors could be anything
        return [(name, role, trains) for name, role, trains in BATCH_NORM_SLOTS]
    if vectors and len(shapes) <= 2 and _NORM_NAME.search(last):
        return [(name, role, None) for name, role, _ in NORM_SLOTS[: len(shapes)]]
    if _EMBED_NAME.search(last) and shapes and all(len(shape) == 2 for shape in shapes):
        return [("embeddings" if i == 0 else f"embeddings_{i}", Role.EMBEDDINGS, None) for i in range(len(shapes))]
    return None


def _quantized_slots(integer: list[bool]) -> list[tuple[str, Role, bool | None]]:
    """A sub-layer quantized by ``layer.quantize("int8"|"int4")``: Keras
    stores its integer kernel (or table) first, the bias if any, then the
    float scale (``variable_serialization_spec`` of Dense, EinsumDense,
    Embedding in 3.x); an untied ReversibleEmbedding appends its reverse
    table's integers and scale (``embeddings, embeddings_scale,
    reverse_embeddings, reverse_embeddings_scale``). Integers cannot train,
    nor do the scales (and int4's zero points); only a float right after
    the first integer tensor, neither last nor followed by integers, is a
    bias, which does."""
    slots: list[tuple[str, Role, bool | None]] = []
    first = integer.index(True)
    for i, is_int in enumerate(integer):
        if is_int:
            slots.append(("quantized" if i == first else f"quantized_{i}", Role.OTHER, False))
        elif i == first + 1 and i < len(integer) - 1 and not integer[i + 1]:
            slots.append(("bias", Role.BIAS, None))
        elif i > first:
            slots.append(("scale" if i == len(integer) - 1 and sum(integer) == 1 else f"scale_{i}", Role.OTHER, False))
        else:
            slots.append((f"var_{i}", Role.OTHER, None))
    return slots
