"""Quantized weights: integer (or float8) initializers that stand for float
parameters, one stored value per parameter.

ONNX's QDQ form (``DequantizeLinear(x, x_scale, x_zero_point)``, what
``onnxruntime.quantization.quantize_static`` writes by default) keeps each
weight as the int8/uint8 ``x`` and each bias as int32, dequantized right
before the float op; onnxruntime's dynamic form (``quantize_dynamic``)
feeds the int8 weight to ``MatMulInteger`` (B, after ``DynamicQuantizeLinear``
quantizes the activations) or to ``com.microsoft.DynamicQuantizeLSTM`` (W,
R), and a quantized embedding table to ``Gather``. In every form the tensor
holds one value per parameter of the float model: it is counted as that
parameter, with the role its float consumer gives. Scales and zero points
(``x_scale``/``x_zero_point`` slots, and the weight scale multiplied with
``DynamicQuantizeLinear``'s activation scale) are quantization constants,
not parameters. Statistics are those of the dequantized values
``(x - zero_point) * scale`` when a ``DequantizeLinear`` with constant
scale and zero point reads the tensor (per tensor or per axis); elsewhere
the scale is applied after the integer op and no statistics are read.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from reglint.model import WeightStats
from reglint.readers.onnx.blockwise import NIBBLES, Constants, dequantized, stored_bytes, unpack_nibbles
from reglint.readers.onnx.graph import MAX_WALK, MS, GraphIndex, Node
from reglint.readers.onnx.tensors import QUANT_TYPES
from reglint.readers.tensor_stats import StatsAccumulator

# (domain, op) -> the input slots that hold quantized weights (never the
# scale or zero-point slots). ONNX operator docs and onnxruntime's
# ContribOperators.md.
QUANTIZED_SLOTS: dict[tuple[str, str], set[int]] = {
    ("", "DequantizeLinear"): {0},
    ("", "MatMulInteger"): {0, 1},
    ("", "ConvInteger"): {1},
    ("", "QLinearConv"): {3, 8},
    ("", "QLinearMatMul"): {0, 3},
    (MS, "DynamicQuantizeLSTM"): {1, 2},
    (MS, "MatMulIntegerToFloat"): {0, 1},
    (MS, "DynamicQuantizeMatMul"): {1},
    (MS, "QGemm"): {0, 3, 6},
    (MS, "QAttention"): {1},
    # block-quantized, values packed into bytes (``blockwise.py``)
    (MS, "MatMulNBits"): {1},
    (MS, "GatherBlockQuantized"): {0},
    (MS, "MatMulBnb4"): {1},
}
# A quantized table or weight reaches its integer op through these (slot 0).
QUANTIZED_PASS = {"Gather", "Transpose", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Flatten"}


def quantized_weights(index: GraphIndex) -> set[str]:
    """Names of the integer initializers that are quantized weights."""
    out = set()
    for _, tensor in (*index.tensors, *index.constant_nodes):
        if tensor.data_type in QUANT_TYPES and _reaches_quantized_slot(index, tensor.name):
            out.add(tensor.name)
    return out


def _reaches_quantized_slot(index: GraphIndex, name: str) -> bool:
    frontier, steps = [name], 0
    while frontier and steps < MAX_WALK:
        current = frontier.pop()
        for node, i in index.consumers.get(current, []):
            steps += 1
            if i in QUANTIZED_SLOTS.get((node.domain, node.op), ()):
                return True
            if node.op in QUANTIZED_PASS and i == 0:
                frontier.extend(node.outputs)
    return False


def is_dynamic_scale(index: GraphIndex, consumers: list[tuple[Node, int]]) -> bool:
    """A weight scale of onnxruntime's dynamic quantization: multiplied with
    the activation scale ``DynamicQuantizeLinear`` computes (output 1), the
    product rescaling ``MatMulInteger``'s int32 result."""
    for node, i in consumers:
        if node.op != "Mul" or len(node.inputs) != 2:
            return False
        producer = index.producer.get(node.inputs[1 - i])
        if producer is None or producer.op != "DynamicQuantizeLinear" or producer.outputs[1:2] != [
                node.inputs[1 - i]]:
            return False
    return bool(consumers)


def quantized_stats(index: GraphIndex, name: str, tensor, dtype: int, chunk_bytes: int,
                    where_path: Path | None, offset: int, folder: Path | None = None) -> WeightStats | None:
    """Statistics of ``(x - zero_point) * scale`` when a DequantizeLinear with
    constant scale reads ``name`` (per tensor, per axis or in blocks) or a
    block-quantized op packs it; None otherwise."""
    shape = tuple(int(d) for d in tensor.dims)
    blocks = dequantized(index, name, tensor, dtype, where_path, offset, folder)
    if blocks is not None:
        return blocks.stats(chunk_bytes)
    storage = QUANT_TYPES[dtype][1]
    params = _dequantize_params(Constants(index, folder), name, tensor.dims)
    if params is None or (storage is None and dtype not in NIBBLES):
        return None
    scale, zero, axis = params
    count = math.prod(shape) if shape else 1
    values = _stored_values(tensor, dtype, count, where_path, offset)
    if values is None:
        return None
    if values.size != count:
        return None  # a truncated tensor: the float path reports it
    values = values.reshape(shape if shape else (1,))
    leading = int(np.shape(values)[0])
    acc = StatsAccumulator()
    # whole rows of axis 0 per block, about chunk_bytes of float64 at a time
    rows = max(1, chunk_bytes // max(1, 8 * (count // max(1, leading))))
    for start in range(0, leading, rows):
        block = values[start:start + rows].astype(np.float64)
        acc.add((block - _along(zero, axis, block.ndim, start, rows)) * _along(scale, axis, block.ndim, start, rows))
    return acc.result()


def _stored_values(tensor, dtype: int, count: int, where_path: Path | None, offset: int) -> np.ndarray | None:
    """The integer values as stored (int4/uint4 unpacked, two a byte)."""
    storage = QUANT_TYPES[dtype][1]
    if dtype in NIBBLES:
        raw = stored_bytes(tensor, where_path, offset)
        if raw is None or raw.size != (count + 1) // 2:
            return None
        return unpack_nibbles(raw, count, signed=NIBBLES[dtype])
    if storage is None:
        return None  # float8: no numpy type
    if where_path is not None:
        return np.memmap(where_path, dtype=storage, mode="r", offset=offset, shape=(count,))
    if tensor.raw_data:
        return np.frombuffer(tensor.raw_data, dtype=storage)
    # int8/uint8/int16/uint16/int32 travel in int32_data
    return np.asarray(tensor.int32_data, dtype=np.int64).astype(storage)


def _dequantize_params(consts: Constants, name: str, dims) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(scale, zero point, axis) of the DequantizeLinear nodes reading
    ``name`` (one, or several with equal constants: a weight shared by two
    layers); None for blocked scales, readers that disagree, and anything else."""
    readers = consts.index.consumers.get(name, [])
    if not readers or any(node.op != "DequantizeLinear" or i != 0 for node, i in readers):
        return None
    found = [_reader_params(consts, node, dims) for node, _ in readers]
    first = found[0]
    if first is None or any(other is None or other[2] != first[2] or not np.array_equal(other[0], first[0])
                            or not np.array_equal(other[1], first[1]) for other in found[1:]):
        return None
    return first


def _reader_params(consts: Constants, node: Node, dims) -> tuple[np.ndarray, np.ndarray, int] | None:
    if int(node.attr("block_size", 0) or 0):
        return None
    scale = consts.values(node, 1)
    if scale is None:
        return None
    if consts.tensor(node, 2) is not None and consts.tensor(node, 2).data_type in NIBBLES:
        raw = consts.stored(consts.tensor(node, 2))
        zero = None if raw is None else unpack_nibbles(raw, scale.size, NIBBLES[consts.tensor(node, 2).data_type])
    elif len(node.inputs) > 2 and node.inputs[2]:
        zero = consts.values(node, 2)
    else:
        zero = np.zeros(1)  # the zero point is optional: 0
    if zero is None:
        return None
    zero = zero.astype(np.float64).reshape(-1)
    rank = len(dims)
    axis = int(node.attr("axis", 1))
    axis = axis + rank if axis < 0 else axis
    if scale.size == 1 and zero.size == 1:
        return scale, zero, -1
    if not 0 <= axis < rank or scale.size != int(dims[axis]) or zero.size not in (1, scale.size):
        return None
    return scale, zero, axis


def _along(values: np.ndarray, axis: int, ndim: int, start: int, rows: int) -> np.ndarray:
    """Per-tensor or per-axis constants shaped to broadcast over a block of
    rows ``start:start + rows`` of axis 0."""
    if axis < 0 or values.size == 1:
        return values.reshape(())
    if axis == 0:
        values = values[start:start + rows]
    shape = [1] * ndim
    shape[axis] = values.size
    return values.reshape(shape)
