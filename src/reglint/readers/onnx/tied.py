"""Tied weights stored twice: a matrix and its exact transpose.

A language model whose output layer shares the embedding matrix
(``lm_head.weight = embed.weight``) has one parameter, which PyTorch
counts once. Its ONNX file holds it twice: the ``Gather`` reads the
[vocab, dim] table and the output ``MatMul`` a [dim, vocab] initializer,
the exporter having folded ``Transpose(weight)`` into a new constant
(TorchScript exporter with ``do_constant_folding``: ``onnx::MatMul_15``;
dynamo exporter's optimizer, torch 2.9+: ``val_4``; both kept by
float16 conversion). The copy is the same parameter: counted once, under
the readable name. Matched exactly (every element equal to its transposed
counterpart, values not all equal, exactly one of the two named by the
exporter: a tie keeps the readable name of the table the Gather reads; two
folded constants are two parameters, e.g. an untied decoder initialised as
the encoder's transpose),
never by closeness: a quantized copy, requantized with its own scale,
stays two tensors.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from reglint.readers.onnx.load import external_range
from reglint.readers.onnx.params import Param
from reglint.readers.onnx.roles import ROLE_RANK
from reglint.readers.onnx.tensors import EXTERNAL, FLOAT_TYPES, storage_nbytes


def merge_transposed_copies(params: list[Param], folder: Path) -> list[Param]:
    """``params`` without the exact transposed copies of another parameter;
    the parameter kept takes the copy's uses and the more specific role."""
    matrices = [p for p in params if len(p.shape) == 2 and p.tensor is not None and not p.quantized
                and p.dense_size is None and p.shape[0] > 0 and p.shape[1] > 0]
    by_shape: dict[tuple[int, tuple[int, int]], list[Param]] = {}
    for p in matrices:
        by_shape.setdefault((p.dtype, (p.shape[0], p.shape[1])), []).append(p)
    dropped: set[int] = set()
    for p in matrices:
        if id(p) in dropped:
            continue
        for q in by_shape.get((p.dtype, (p.shape[1], p.shape[0])), []):
            # A folded Transpose is a constant the exporter named, its source a
            # named parameter: two named parameters, or two folded constants
            # (each a different parameter's transpose), stay two, even when
            # one equals the other's transpose (identity or symmetric
            # initialisations, a decoder initialised as the encoder's transpose).
            if q is p or id(q) in dropped or _anonymous(p.name) == _anonymous(q.name):
                continue
            if not _transposed(p, q, folder):
                continue
            keep, copy = (q, p) if _anonymous(p.name) else (p, q)  # the named one stays
            _absorb(keep, copy)
            dropped.add(id(copy))
            if copy is p:
                break
    return [p for p in params if id(p) not in dropped]


def _absorb(keep: Param, copy: Param) -> None:
    keep.uses += copy.uses
    if ROLE_RANK[copy.role] < ROLE_RANK[keep.role]:
        keep.role, keep.node = copy.role, copy.node


def _anonymous(name: str) -> bool:
    """Names an exporter makes up: ``onnx::MatMul_15``, ``val_4``."""
    return "::" in name or "." not in name


def _transposed(p: Param, q: Param, folder: Path) -> bool:
    """Every element of ``q`` equals ``p``'s transposed one; the four corners
    first (``p[0, -1]`` is ``q[-1, 0]``), which almost always decide."""
    a, b = _matrix(p, folder), _matrix(q, folder)
    if a is None or b is None:
        return False
    corners = ((0, 0), (0, -1), (-1, 0), (-1, -1))
    if any(a[i, j].tobytes() != b[j, i].tobytes() for i, j in corners):
        return False
    if a.size > 1 and bool(np.all(a == a.flat[0])):
        return False  # a constant fill (zeros, ones) is no evidence of a copy
    return bool(np.array_equal(a, b.T))


def _matrix(p: Param, folder: Path) -> np.ndarray | None:
    """The values as a 2-D array without copying them (a view of the
    protobuf's bytes, or a memory map of the external file)."""
    storage = np.dtype(FLOAT_TYPES[p.dtype][1])
    count = math.prod(p.shape)
    tensor = p.tensor
    flat: np.ndarray
    if tensor.data_location == EXTERNAL:
        where = external_range(tensor, folder, storage_nbytes(p.dtype, count))
        flat = np.memmap(where.path, dtype=storage, mode="r", offset=where.offset, shape=(count,))
    elif tensor.raw_data:
        if len(tensor.raw_data) != count * storage.itemsize:
            return None  # the statistics report the damage
        flat = np.frombuffer(tensor.raw_data, dtype=storage)
    else:
        return None  # typed fields: small helper-written tensors, not an exporter's
    return flat.reshape(p.shape)
