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
never by closeness between float tensors.

A quantized copy is matched by what quantization guarantees instead: a
block-quantized transposed weight (``MatMulNBits``, ``GatherBlockQuantized``,
blocked ``DequantizeLinear``: what onnxruntime's ``MatMulNBitsQuantizer``
makes of a tied ``lm_head``) whose every dequantized value lies within one
quantization step of the named parameter's (of each side's step when both
are quantized): a round-to-nearest quantizer moves a value half a step,
a symmetric one up to a whole step at the end of the range it clips
(``scale = absmax / -8`` leaves +8 steps out of int4's [-8, 7]).
Quantizers that move values further (GPTQ, AWQ) leave two parameters; so
does onnxruntime's per-tensor int8 ``quantize_dynamic``, whose copies are
not block-quantized.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from reglint.readers.onnx.blockwise import Dequantized, dequantized
from reglint.readers.onnx.graph import GraphIndex
from reglint.readers.onnx.load import external_range
from reglint.readers.onnx.params import Param
from reglint.readers.onnx.roles import ROLE_RANK
from reglint.readers.onnx.tensors import EXTERNAL, FLOAT_TYPES, storage_nbytes

# A side read across its storage order (a blocked DequantizeLinear's
# columns) is materialised whole; past this many values it is not compared.
MAX_MATERIALISED = 1 << 24
# One step, widened for float16 scales and float32 rounding.
STEP = 1 + 2e-3
RowReader = Callable[[int, int], tuple[np.ndarray, np.ndarray]]


def merge_transposed_copies(params: list[Param], folder: Path) -> list[Param]:
    """``params`` without the exact transposed copies of another parameter;
    the parameter kept takes the copy's uses and the more specific role.

    A copy can only pair with a matrix of the transposed shape, of the other
    kind of name (below) and with the same values at a few sampled places:
    candidates are bucketed by that fingerprint, so a graph of thousands of
    same-shaped matrices is not compared pair by pair."""
    matrices = [p for p in params if len(p.shape) == 2 and p.tensor is not None and not p.quantized
                and p.dense_size is None and p.shape[0] > 0 and p.shape[1] > 0]
    kinds = {(p.dtype, p.shape, _anonymous(p.name)) for p in matrices}
    buckets: dict[tuple, list[Param]] = {}
    looked_up: dict[int, tuple | None] = {}
    for p in matrices:
        if (p.dtype, (p.shape[1], p.shape[0]), not _anonymous(p.name)) not in kinds:
            continue  # no partner possible: its values are not read
        a = _matrix(p, folder)
        if a is None:
            continue  # never compared (see _transposed)
        buckets.setdefault((p.dtype, p.shape, _anonymous(p.name), _fingerprint(a)), []).append(p)
        # the key a transposed partner of ``p`` files itself under
        looked_up[id(p)] = (p.dtype, (p.shape[1], p.shape[0]), not _anonymous(p.name), _fingerprint(a.T))
    dropped: set[int] = set()
    hopeless: set[int] = set()  # constant fills: never a copy
    for p in matrices:
        key = looked_up.get(id(p))
        if id(p) in dropped or id(p) in hopeless or key is None or key not in buckets:
            continue
        bucket = buckets[key]
        bucket[:] = [q for q in bucket if id(q) not in dropped and id(q) not in hopeless]
        for q in bucket:
            # A folded Transpose is a constant the exporter named, its source a
            # named parameter: two named parameters, or two folded constants
            # (each a different parameter's transpose), stay two, even when
            # one equals the other's transpose (identity or symmetric
            # initialisations, a decoder initialised as the encoder's transpose).
            # (The bucket holds only the other kind of name.)
            if id(q) in dropped or id(q) in hopeless:
                continue
            if not _transposed(p, q, folder, hopeless):
                if id(p) in hopeless:
                    break
                continue
            keep, copy = (q, p) if _anonymous(p.name) else (p, q)  # the named one stays
            _absorb(keep, copy)
            dropped.add(id(copy))
            if copy is p:
                break
    return [p for p in params if id(p) not in dropped]


# Sampled places of the fingerprint: a 4x4 grid (the corners included).
_GRID = 4


def _fingerprint(a: np.ndarray) -> tuple:
    """Values at a few places fixed by the shape, read without touching the
    rest of the matrix; equal as values (``-0.0`` is ``0.0``), as the full
    comparison is."""
    rows, cols = a.shape
    picks = [a[i * (rows - 1) // (_GRID - 1), j * (cols - 1) // (_GRID - 1)]
             for i in range(_GRID) for j in range(_GRID)]
    if a.dtype.kind == "f":
        return tuple(float(v) + 0.0 for v in picks)
    return tuple(int(v) for v in picks)


def _absorb(keep: Param, copy: Param) -> None:
    keep.uses += copy.uses
    if ROLE_RANK[copy.role] < ROLE_RANK[keep.role]:
        keep.role, keep.node = copy.role, copy.node


def _anonymous(name: str) -> bool:
    """Names an exporter makes up: ``onnx::MatMul_15``, ``val_4``."""
    return "::" in name or "." not in name


def _transposed(p: Param, q: Param, folder: Path, hopeless: set[int]) -> bool:
    """Every element of ``q`` equals ``p``'s transposed one; the four corners
    first (``p[0, -1]`` is ``q[-1, 0]``), which almost always decide. A
    constant fill goes into ``hopeless`` (it is never compared again)."""
    a, b = _matrix(p, folder), _matrix(q, folder)
    if a is None or b is None:
        return False
    corners = ((0, 0), (0, -1), (-1, 0), (-1, -1))
    if any(a[i, j].tobytes() != b[j, i].tobytes() for i, j in corners):
        return False
    for side, values in ((p, a), (q, b)):
        if values.size > 1 and bool(np.all(values == values.flat[0])):
            hopeless.add(id(side))  # a constant fill (zeros, ones) is no evidence of a copy
            return False
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


def merge_quantized_copies(params: list[Param], index: GraphIndex, folder: Path) -> list[Param]:
    """``params`` without the block-quantized transposed copies of a named
    parameter (module docstring); the named one stays, as above."""
    readers: dict[int, Dequantized | None] = {}

    def reader(p: Param) -> Dequantized | None:
        if id(p) not in readers:
            readers[id(p)] = _dequantizer(p, index, folder) if p.quantized else None
        return readers[id(p)]

    copies = [p for p in params if len(p.shape) == 2 and p.quantized and _anonymous(p.name) and reader(p)]
    named = [p for p in params if len(p.shape) == 2 and not _anonymous(p.name) and p.tensor is not None
             and p.dense_size is None and (not p.quantized or reader(p))]
    dropped: set[int] = set()
    for copy in copies:
        for keep in named:
            if id(keep) in dropped or keep.shape != (copy.shape[1], copy.shape[0]):
                continue
            # compare in the copy's storage order (no copy of either side materialised)
            blocks = reader(copy)
            flip = blocks is not None and not blocks.transposed
            if _within_steps(_rows(keep, reader(keep), folder, transposed=flip),
                             _rows(copy, reader(copy), folder, transposed=not flip),
                             copy.shape if flip else keep.shape):
                _absorb(keep, copy)
                dropped.add(id(copy))
                break
    return [p for p in params if id(p) not in dropped]


def _dequantizer(p: Param, index: GraphIndex, folder: Path) -> Dequantized | None:
    where = None
    if p.tensor.data_location == EXTERNAL:
        count = math.prod(int(d) for d in p.tensor.dims) if p.tensor.dims else 1
        where = external_range(p.tensor, folder, storage_nbytes(p.dtype, count))
    return dequantized(index, p.name, p.tensor, p.dtype, where.path if where else None, where.offset if where else 0,
                       folder)


def _rows(p: Param, blocks: Dequantized | None, folder: Path, transposed: bool) -> RowReader | None:
    """Rows of ``p``'s float matrix (of its transpose when ``transposed``)
    with each value's quantization step (0 for a float tensor)."""
    if blocks is None:
        matrix = _matrix(p, folder)
        if matrix is None:
            return None
        oriented = matrix.T if transposed else matrix
        return lambda start, stop: (oriented[start:stop].astype(np.float64), np.zeros(1))
    if blocks.transposed == transposed:
        return lambda start, stop: _with_steps(blocks, start, stop)
    if math.prod(blocks.shape) > MAX_MATERIALISED:
        return None
    values, steps = _with_steps(blocks, 0, blocks.rows)
    values, steps = values.reshape(blocks.rows, -1).T, steps.reshape(blocks.rows, -1).T
    return lambda start, stop: (values[start:stop], steps[start:stop])


def _with_steps(blocks: Dequantized, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    values, steps = blocks.read(start, stop, steps=True)
    return values, (steps if steps is not None else np.zeros(1))


def _within_steps(left: RowReader | None, right: RowReader | None, shape: tuple[int, ...]) -> bool:
    """Every value of ``left`` within a step (each side's) of ``right``'s;
    a constant fill is no evidence."""
    if left is None or right is None:
        return False
    rows, row = shape
    step = max(1, (1 << 22) // max(1, row))
    first: float | None = None
    varied = False
    # one row first: a pair that differs almost always differs there
    spans = [(0, min(rows, 1))] + [(start, min(rows, start + step)) for start in range(1, rows, step)]
    for start, stop in spans:
        (a, a_step), (b, b_step) = left(start, stop), right(start, stop)
        a, b = a.reshape(stop - start, row), b.reshape(stop - start, row)
        allowed = STEP * (np.broadcast_to(a_step, a.shape).reshape(a.shape)
                               + np.broadcast_to(b_step, b.shape).reshape(b.shape)) + 1e-12
        if not bool(np.all(np.abs(a - b) <= allowed)):
            return False
        first = float(a.flat[0]) if first is None else first
        varied = varied or bool(np.any(a != first))
    return varied
