"""Which axes of a kernel Keras counts as fan-in and fan-out when it draws it.

``compute_fans`` takes a kernel of rank > 2 for a convolution: fan_in is the
receptive field (all axes but the last two) times the second-to-last axis,
fan_out the receptive field times the last. From Keras 3.15.0 the
VarianceScaling initializers (Glorot, He, LeCun, ``VarianceScaling``) take
``input_axes``/``output_axes``, and ``EinsumDense.build`` fills them from its
equation when the initializer has none (``_update_kernel_initializer`` in
keras/src/layers/core/einsum_dense.py; keras-team/keras#22789): a weight axis
that appears in the output is an output unit, any other an input unit. That
reaches MultiHeadAttention's and GroupedQueryAttention's projections, which
are EinsumDense layers built from the attention layer's own config (their
equations are not saved). A query kernel of shape (width, heads, key_dim)
then draws with fan_in = width and fan_out = heads*key_dim instead of
heads*width and key_dim*width: under Glorot, a variance (heads+key_dim)/2
times larger (4x a Keras 3.15.1 MultiHeadAttention(2 heads, key_dim 16) on
width 32 draws, 36x for 8 heads of 64 on 512).

Files written by Keras 3.14 or older keep the rank rule (the 3.14.0 wheel
has no ``input_axes``); a file whose Keras version is unknown (a Keras 3
``to_json()`` records none) takes the axes where its initializers' configs
have the ``input_axes`` key (3.15 writes it, null or not), else the rank rule.
"""

from __future__ import annotations

import re
from typing import Any

from reglint.model import Role, Variable
from reglint.model.versions import major_minor

# Keras' VarianceScaling subclasses, by the names parse_initializer gives them.
VARIANCE_SCALING = frozenset({"glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
                              "lecun_normal", "variance_scaling"})
EINSUM_AXES_SINCE = (3, 15)
_EQUATION = re.compile(r"([a-zA-Z.]+),([a-zA-Z]+)->([a-zA-Z.]+)")


def kernel_fan_axes(var: Variable, owner_class: str, owner_config: dict[str, Any],
                    keras_version: str | None) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The (input axes, output axes) Keras draws ``var`` with, or None where
    the rank rule of ``Variable.fans`` applies.

    >>> from reglint.model import Initializer
    >>> q = Variable("query/kernel", Role.KERNEL, (32, 2, 16), initializer=Initializer("glorot_uniform"))
    >>> kernel_fan_axes(q, "EinsumDense", {}, "3.15.1")
    ((0,), (1, 2))
    >>> kernel_fan_axes(q, "EinsumDense", {}, "3.14.0") is None
    True
    """
    init = var.initializer
    if init is None or init.name not in VARIANCE_SCALING:
        return None
    explicit = _axes(init.config.get("input_axes"), var), _axes(init.config.get("output_axes"), var)
    if explicit[0] is not None and explicit[1] is not None:
        return explicit[0], explicit[1]
    # an initializer config that has the keys at all was written by 3.15 or later, whatever version the file
    # records (a Keras 3 ``to_json()`` records none: review 63, 5, its attention estimates 0.13-0.38x Keras')
    written_with_axes = "input_axes" in init.config or _at_least(keras_version, EINSUM_AXES_SINCE)
    if var.role is not Role.KERNEL or owner_class != "EinsumDense" or not written_with_axes:
        return None
    equation = owner_config.get("equation")
    if isinstance(equation, str):
        return einsum_kernel_axes(equation)
    return _projection_axes(var)


def einsum_kernel_axes(equation: str) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Input and output axes of an EinsumDense kernel, as
    ``_analyze_split_string`` sorts them: an axis named in the output is an
    output unit, any other an input unit.

    >>> einsum_kernel_axes("abc,cde->abde")
    ((0,), (1, 2))
    >>> einsum_kernel_axes("...b,bc->...c")
    ((0,), (1,))
    """
    match = _EQUATION.fullmatch(equation.replace(" ", ""))
    if not match:
        return None
    _, weight, output = match.groups()
    return (tuple(i for i, dim in enumerate(weight) if dim not in output),
            tuple(i for i, dim in enumerate(weight) if dim in output))


def _projection_axes(var: Variable) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """An attention layer's projection, built as MultiHeadAttention.build
    builds it: query/key/value/gate kernels (width, heads, dim) read one axis
    and write the rest; the output kernel (heads, dim, *out) reads two."""
    rank = len(var.shape)
    if rank < 2:
        return None
    reads = 2 if var.name.split("/")[0] == "attention_output" and rank > 2 else 1
    return tuple(range(reads)), tuple(range(reads, rank))


def _axes(value: Any, var: Variable) -> tuple[int, ...] | None:
    if not isinstance(value, (list, tuple)) or not value:
        return None
    if not all(isinstance(a, int) and not isinstance(a, bool) and -len(var.shape) <= a < len(var.shape)
               for a in value):
        return None
    return tuple(a % len(var.shape) for a in value)


def _at_least(version: str | None, wanted: tuple[int, int]) -> bool:
    found = major_minor(version)
    return found is not None and found >= wanted
