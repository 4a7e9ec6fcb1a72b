"""Attention tables an export folded into constants, told apart from
parameters by their values.

Exported at a fixed sequence length (the dynamo exporter with static
shapes), a decoder's causal mask becomes an ``[1, 1, L, L]`` initializer of
0 and -3.4e38 added to the attention scores, and its rotary ``cos``/``sin``
caches ``[1, 1, L, D]`` tables multiplied into Q and K. They are buffers
computed from the position, not weights: a tiny Llama's export counted 320
values too many, and the mask's sum of squares (3e78) stood in the model's
statistics. Their roles say nothing (a constant added, a constant
multiplied); their values do:

- a mask holds fills at or below MASK_FILL (MASK_FILL_FLOAT16 in a float16
  tensor; with 0, or with a position
  bias folded into it), which no weight does;
- a position bias (T5's, ALiBi) folded without the mask is an
  ``[.., L, L]`` table added to the product of two activations, whose
  values depend on the distance ``j - i`` (or the key position) alone;
- a rotary table's first position is one value throughout (cos 0 = 1,
  sin 0 = 0, times the rope's attention scaling), and every value lies
  within [-1, 1] times that scale.

Only tensors shaped like such a table are read (rank >= 2, at least two
positions, at most MAX_TABLE_VALUES values, read by Add or Mul alone).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from reglint.errors import ReglintError
from reglint.model import Role
from reglint.readers.onnx.graph import GraphIndex
from reglint.readers.onnx.params import Param
from reglint.readers.onnx.roles import bears_weight, linear_producer, uses
from reglint.readers.onnx.stats import external_range_of, proto_array
from reglint.readers.onnx.tensors import FLOAT_TYPES

# A 4,096-token causal mask (16.8M values); never a model's weights in full.
MAX_TABLE_VALUES = 1 << 24
# float32's -3.4e38 (torch.finfo.min), what attention masks fill with.
MASK_FILL = -1e30
# float16's: its most negative finite value is -65504 (torch.finfo(float16).min),
# what a float16 export's masks fill with; no weight is near it either.
MASK_FILL_FLOAT16 = -6.0e4
# float32, float16, float64: numpy reads them as stored (bfloat16 never holds a mask here).
TABLE_TYPES = (1, 10, 11)


def drop_folded_tables(params: list[Param], index: GraphIndex, folder: Path) -> tuple[list[Param], list[str]]:
    """``params`` without the folded masks and rotary caches, and without
    the constant scale and offset a dynamo export gives a normalization that
    has none; and the notes saying so."""
    tables = [p for p in params if _folded_table(p, index, folder)]
    norms = [p for p in params if p not in tables and _synthesized_norm(p, index, folder)]
    notes = []
    if tables:
        notes.append(f"{len(tables)} initializer(s) are an attention mask, position bias or rotary cos/sin cache the "
                     "export folded at a fixed sequence length: buffers, not parameters")
    if norms:
        notes.append(f"{len(norms)} initializer(s) ({', '.join(p.name for p in norms[:3])}) are the ones and zeros "
                     "the exporter made for normalizations without a scale or offset of their own "
                     "(elementwise_affine=False): not parameters")
    dropped = {id(p) for p in tables + norms}
    return [p for p in params if id(p) not in dropped], notes


# The names the dynamo exporter gives the tensors it makes itself; a
# parameter it reads as it is keeps its module path (``m.model.norm.weight``).
GENERATED_NAME = re.compile(r"^val_\d+$")
# (op, slot) of a normalization's scale and offset.
NORM_SLOTS = {("LayerNormalization", 1), ("LayerNormalization", 2), ("RMSNormalization", 1),
              ("GroupNormalization", 1), ("GroupNormalization", 2)}


def _synthesized_norm(p: Param, index: GraphIndex, folder: Path) -> bool:
    """A LayerNorm without an affine part (``elementwise_affine=False``:
    OLMo, DiT's adaLN blocks) still needs ONNX's scale input: the dynamo
    exporter makes one, all ones (and an offset of zeros), under a name of
    its own (``val_102``), read by every such norm. A parameter would have
    kept its module path; ones read only as a norm's scale are no weight."""
    if not GENERATED_NAME.match(p.name) or not _dynamo_export(index):
        return False
    readers = uses(index, p.name)
    if not readers or any((node.op, slot) not in NORM_SLOTS or node.domain for node, slot in readers):
        return False
    values = _values(p, folder) if p.dtype in TABLE_TYPES and 0 < p.size <= MAX_TABLE_VALUES else None
    if values is None:
        return False
    scale = all(slot == 1 for _, slot in readers)
    return bool(np.all(values == (1.0 if scale else 0.0)))


def _dynamo_export(index: GraphIndex) -> bool:
    """Whether the dynamo exporter wrote the graph: its nodes carry the
    module scopes as metadata."""
    return any(prop.key == "pkg.torch.onnx.name_scopes" for node in index.nodes[:64]
               for prop in node.proto.metadata_props)


def _folded_table(p: Param, index: GraphIndex, folder: Path) -> bool:
    if p.role is not Role.OTHER or p.tensor is None or p.dtype not in TABLE_TYPES:
        return False
    if len(p.shape) < 2 or p.shape[-2] < 2 or not 0 < p.size <= MAX_TABLE_VALUES:
        return False
    readers = uses(index, p.name)
    ops = {node.op for node, _ in readers}
    if not readers or not ops <= {"Add", "Mul"} or any(node.domain for node, _ in readers):
        return False
    values = _values(p, folder)
    if values is None:
        return False
    table = values.reshape(-1, p.shape[-2], p.shape[-1])
    if ops == {"Add"}:
        fill = MASK_FILL_FLOAT16 if p.dtype == 10 else MASK_FILL
        return is_mask(values, fill) or (is_position_table(table)
                                         and all(_adds_to_scores(index, node, slot, p) for node, slot in readers))
    return is_rotary_table(table)


def _adds_to_scores(index: GraphIndex, add, slot: int, p: Param) -> bool:
    """An ``[.., L, L]`` constant added to attention scores (the product of
    two activations, ``Q @ K^T``, possibly scaled): a position bias folded
    at a fixed length (T5's relative attention bias, ALiBi), computed from a
    table or the positions, not a weight of its own."""
    if p.shape[-1] != p.shape[-2] or len(add.inputs) != 2:
        return False
    producer = linear_producer(index, add.inputs[1 - slot])
    return producer is not None and producer.op in ("MatMul", "FusedMatMul") and not bears_weight(index, producer)


def is_position_table(table: np.ndarray) -> bool:
    """``[head, query, key]``: each head's value a function of the distance
    ``j - i`` alone (T5's bucketed lookup, ALiBi's slope * (j - i): equal
    along every diagonal) or of the key position alone (BLOOM's slope * j:
    every row the first). A learned ``[H, L, L]`` bias is neither, and stays
    a parameter.

    >>> d = np.arange(3)[None, :] - np.arange(3)[:, None]
    >>> is_position_table(0.5 * d[None]), is_position_table(np.arange(9.0).reshape(1, 3, 3))
    (True, False)
    """
    return bool(np.array_equal(table[:, 1:, 1:], table[:, :-1, :-1])
                or np.array_equal(table, np.broadcast_to(table[:, :1, :], table.shape)))


def is_mask(values: np.ndarray, fill: float = MASK_FILL) -> bool:
    """Some fill at or below MASK_FILL: a causal mask, or one with a
    position bias folded into it (T5's relative attention bias plus the
    decoder's mask, ``[1, heads, L, L]``). No weight holds -3.4e38.

    >>> is_mask(np.triu(np.full((3, 3), -3.4e38), 1))
    True
    >>> is_mask(np.array([0.0, -65504.0]), MASK_FILL_FLOAT16)  # a float16 export's fill
    True
    >>> is_mask(np.array([0.0, -1.5]))
    False
    """
    return bool(np.any(values <= fill))


def is_rotary_table(table: np.ndarray) -> bool:
    """``[batch, position, dim]``: position 0 one value throughout, every
    value within it (or 1) in magnitude, and not one value everywhere.

    >>> t = np.arange(4)[:, None] * np.array([1.0, 0.1])[None, :]
    >>> is_rotary_table(np.cos(t)[None]), is_rotary_table(np.sin(t)[None])
    (True, True)
    >>> is_rotary_table(np.full((1, 4, 2), 0.5))
    False
    """
    first = table[:, 0, :]
    scale = max(1.0, float(np.abs(first).max()))
    return bool(np.all(first == first.flat[0]) and np.all(np.abs(table) <= scale * (1 + 1e-6))
                and not np.all(table == table.flat[0]))


def _values(p: Param, folder: Path) -> np.ndarray | None:
    """The stored values as float64, from the model file or its (already
    range-checked) external data file; None when they cannot be read."""
    storage = np.dtype(FLOAT_TYPES[p.dtype][1])
    try:
        where = external_range_of(p, folder)
        if where is None:
            stored = proto_array(p.tensor, p.dtype, p.size)
        else:
            stored = np.fromfile(where.path, dtype=storage, count=p.size, offset=where.offset)
    except (OSError, ValueError, ReglintError):  # unreadable here: the statistics will say so
        return None
    if stored.size != p.size:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        return stored.astype(np.float64)
