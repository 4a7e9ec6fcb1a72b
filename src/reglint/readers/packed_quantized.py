"""Integer-, float8- and FP4-quantized weights in Hugging Face checkpoints:
how most quantized LLMs on the Hub are published.

GPTQ (AutoGPTQ, GPTQModel, optimum; ``quant_method: gptq``)
    ``X.qweight`` int32 [in * bits / 32, out]: each output column's codes
    packed along the input axis as one little-endian bit stream (2, 3, 4 or
    8 bits a code); ``X.qzeros`` int32 [groups, out * bits / 32], packed the
    same way along the output axis, stored as ``zero - 1`` (the v1 format;
    ``checkpoint_format: gptq_v2`` stores the zero itself); ``X.scales``
    [groups, out]; ``X.g_idx`` int32 [in], each input's group (act-order
    permutes them). ``value = scale[g] * (code - zero[g])``.
AWQ (AutoAWQ GEMM; ``quant_method: awq``)
    ``X.qweight`` int32 [in, out / 8], eight 4-bit codes a word in the
    order 0, 2, 4, 6, 1, 3, 5, 7 of their output columns; ``X.qzeros``
    [groups, out / 8] the same; ``X.scales`` [groups, out].
    ``value = (code - zero[g]) * scale[g]``, ``g = input // group size``.
compressed-tensors (llm-compressor, vLLM; ``quant_method: compressed-tensors``)
    ``pack-quantized``: ``X.weight_packed`` int32 [out, ceil(in * bits / 32)],
    each row a little-endian bit stream of ``code + 2^(bits-1)``;
    ``X.weight_shape`` [out, in]; ``X.weight_scale`` [out, groups] ([out, 1]
    for the channel strategy); an asymmetric ``X.weight_zero_point`` packed the
    same way along the output axis; ``X.weight_g_idx`` for act-order.
    ``int-quantized`` / ``naive-quantized``: ``X.weight`` int8 beside
    ``X.weight_scale`` (and a zero point). ``float-quantized``: ``X.weight``
    float8 beside ``X.weight_scale``; ``mxfp8-quantized`` the same with
    E8M0 exponents (uint8) for scales. ``nvfp4-pack-quantized``:
    ``X.weight_packed`` uint8 [out, in / 2], two E2M1 codes a byte (low
    nibble first), ``X.weight_scale`` float8 [out, in / 16] and
    ``X.weight_global_scale``: ``value = e2m1 * scale / global_scale``.
    ``mxfp4-pack-quantized``: the same codes, ``X.weight_scale`` E8M0
    exponents [out, in / 32]: ``value = e2m1 * 2^(scale - 127)``.
NVIDIA ModelOpt NVFP4 (``quant_method: modelopt``; vLLM's ``ModelOptNvFp4LinearMethod``)
    ``X.weight`` uint8 [out, in / 2] (E2M1, low nibble first), ``X.weight_scale``
    float8 [out, in / 16] and ``X.weight_scale_2`` float32:
    ``value = e2m1 * scale * scale_2``.
FP8 with block scales (DeepSeek-V3, transformers' ``FineGrainedFP8``; ``quant_method: fp8``)
    ``X.weight`` float8 [out, in] beside ``X.weight_scale_inv`` [ceil(out / b),
    ceil(in / b)] (``weight_block_size`` b, 128; float32, or E8M0 with
    ``scale_fmt: ue8m0``): ``value = w * scale_inv``. An int8 ``X.weight``
    beside a ``weight_scale_inv`` is transformers' packed FP4 (two E2M1
    codes a byte, low nibble first).

Each weight counts as the float parameter it stands for, at its float
shape ``[out, in]`` (torch's ``nn.Linear`` before quantization); scales,
zero points, group indices, shapes and the activation and KV-cache scales
beside them are quantization constants. Statistics are those of the
dequantized values, held to each library's own dequantization
(``fixtures/make_packed_quantized_fixtures.py``,
``tests/test_packed_quantized.py``).

A scale grid ``[S0, S1]`` over a weight ``[out, in]`` gives cell
``[r // b0, c // b1]`` (or ``g_idx[c]``): the block or group the checkpoint's
``quantization_config`` names where it fits; else the power of two that
fits (writers' groups and blocks are 16, 32, 64, 128: a padded edge block,
as DeepSeek's 576 x 7168 under 128-blocks, is ``ceil(576 / 128) = 5`` cells
of 128 rows, not of 116); else ``n / S`` when that divides; else no
statistics (the count stands).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from reglint.model import WeightStats
from reglint.readers.named_tensor import (
    ITEMSIZE,
    MAX_CONSTANT_VALUES,
    MX_SCALE_DTYPES,
    NamedTensor,
    constant_floats,
    constant_ints,
)
from reglint.readers.small_floats import E2M1, FLOAT8, widen
from reglint.readers.tensor_stats import StatsAccumulator

E8M0 = MX_SCALE_DTYPES
SCALE_DTYPES = ("float32", "float16", "bfloat16", "float64", *FLOAT8)
INTEGER_CODES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32}
GPTQ_BITS = (2, 3, 4, 8)
AWQ_ORDER = np.array([0, 2, 4, 6, 1, 3, 5, 7])  # output column of each nibble of a word (AutoAWQ's pack)
# Bytes a dequantized value costs while a slab is decoded: the codes, the
# gathered scales and zero points, and the float32 result.
BYTES_A_VALUE = 16
# What sits beside a quantized Linear and is no parameter: activation,
# second-level and KV-cache scales (llm-compressor, vLLM's FP8, ModelOpt).
ACTIVATION_CONSTANTS = ("input_scale", "input_zero_point", "input_global_scale", "output_scale",
                        "output_zero_point", "weight_observer", "input_observer", "weight_scale_2",
                        "pre_quant_scale")
CACHE_SCALES = ("k_scale", "v_scale", "q_scale", "prob_scale")
# The library each ``quant_method`` names, for the model's note; the kinds
# this module reports are "<key> <kind>", e.g. "gptq int4".
LIBRARIES = {"gptq": "GPTQ", "awq": "AWQ", "compressed-tensors": "compressed-tensors",
             "fp8": "FP8 block scaling", "modelopt": "NVIDIA ModelOpt", "fbgemm_fp8": "FBGEMM FP8",
             "scaled": "a weight-and-scale format (no quantization_config read)",
             "mxfp4": "OpenAI gpt-oss MXFP4"}  # gptoss_mxfp4: MoE experts as E2M1 blocks and E8M0 scales


@dataclass(frozen=True)
class Hints:
    """What a checkpoint's ``quantization_config`` says, where it says it."""

    method: str | None = None  # gptq, awq, compressed-tensors, fp8, modelopt ...
    bits: int | None = None
    gptq_v2: bool = False  # zero points stored as themselves, not zero - 1
    block: tuple[int, int] | None = None  # rows, columns a scale covers (FP8 weight_block_size, block_structure)
    group: int | None = None  # columns a scale covers (group_size)

    @classmethod
    def of(cls, config: object) -> Hints:
        if not isinstance(config, dict):
            return cls()
        method = config.get("quant_method")
        weights = _single_scheme(config)
        block = config.get("weight_block_size") or weights.get("block_structure")
        return cls(method=method if isinstance(method, str) else None,
                   bits=_positive(config.get("bits") or weights.get("num_bits"), 8),
                   gptq_v2=config.get("checkpoint_format") == "gptq_v2",
                   block=(block[0], block[1]) if isinstance(block, list) and len(block) == 2
                   and all(_positive(b, 1 << 20) for b in block) else None,
                   group=_positive(config.get("group_size") or weights.get("group_size"), 1 << 20))


def _single_scheme(config: dict) -> dict:
    """compressed-tensors' weight settings when every group shares them."""
    groups = config.get("config_groups")
    if not isinstance(groups, dict):
        return {}
    found: list[dict] = [g["weights"] for g in groups.values()
                         if isinstance(g, dict) and isinstance(g.get("weights"), dict)]
    return found[0] if found and all(f == found[0] for f in found) else {}


def _positive(value: object, most: int) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= most else None


def dequantized_packed(tensors: list[NamedTensor], source, chunk_bytes: int,
                       hints: Hints | None = None) -> tuple[list[NamedTensor], dict[str, int]]:
    """``tensors`` with each GPTQ, AWQ, compressed-tensors, ModelOpt or
    FP8 weight as the float parameter it stands for and its constants
    dropped; how many weights of each kind were replaced."""
    hints = hints or Hints()
    by_name = {t.name: t for t in tensors}
    replaced: dict[str, NamedTensor] = {}
    dropped: set[str] = set()
    kinds: dict[str, int] = {}
    for tensor in tensors:
        found = None if tensor.quantized else _recognised(tensor, by_name, source, chunk_bytes, hints)
        if found is None:
            continue
        weight, kind, constants = found
        replaced[tensor.name] = weight
        module = weight.name.rpartition(".")[0]
        dropped |= set(constants) | {f"{module}.{name}" for name in ACTIVATION_CONSTANTS}
        kinds[kind] = kinds.get(kind, 0) + 1
    if not replaced:
        return tensors, {}
    dropped |= {t.name for t in tensors if t.name.rpartition(".")[2] in CACHE_SCALES and t.is_float
                and math.prod(t.shape) <= 1}
    return [replaced.get(t.name, t) for t in tensors if t.name in replaced or t.name not in dropped], kinds


Found = tuple[NamedTensor, str, list[str]]


def _recognised(tensor: NamedTensor, by_name: dict[str, NamedTensor], source, chunk_bytes: int,
                hints: Hints) -> Found | None:
    module, _, leaf = tensor.name.rpartition(".")
    if len(tensor.shape) != 2 or not module or 0 in tensor.shape:
        return None
    if leaf == "qweight" and tensor.dtype == "int32":
        return _gptq_or_awq(tensor, module, by_name, source, chunk_bytes, hints)
    if leaf == "weight_packed":
        return _compressed_packed(tensor, module, by_name, source, chunk_bytes, hints)
    if leaf == "weight" and (tensor.dtype in FLOAT8 or tensor.dtype in INTEGER_CODES):
        return _scaled(tensor, module, by_name, source, chunk_bytes, hints)
    return None


def _label(hints: Hints, default: str, kind: str) -> str:
    """"<library key> <kind>": the config's ``quant_method`` where it names
    one, else what the tensors' names tell."""
    library = hints.method if hints.method in LIBRARIES else default
    return library if library == kind else f"{library} {kind}"


# ---------------------------------------------------------------------------
# GPTQ and AWQ
# ---------------------------------------------------------------------------
def _gptq_or_awq(qweight: NamedTensor, module: str, by_name: dict[str, NamedTensor], source, chunk_bytes: int,
                 hints: Hints) -> Found | None:
    qzeros, scales = by_name.get(f"{module}.qzeros"), by_name.get(f"{module}.scales")
    if qzeros is None or scales is None or qzeros.dtype != "int32" or scales.dtype not in SCALE_DTYPES \
            or len(qzeros.shape) != 2 or len(scales.shape) != 2 or qzeros.shape[0] != scales.shape[0] \
            or 0 in qzeros.shape or 0 in scales.shape:
        return None
    rows, words = qweight.shape
    groups, out = scales.shape
    constants = [qzeros.name, scales.name, f"{module}.g_idx"]
    if hints.method != "awq" and words == out and qzeros.shape[1] * 32 % out == 0:
        bits = qzeros.shape[1] * 32 // out
        if bits not in GPTQ_BITS or rows * 32 % bits or qzeros.shape[1] * 32 != out * bits:
            return None
        shape = (out, rows * 32 // bits)
        g_idx = by_name.get(f"{module}.g_idx")

        def gptq_stats() -> WeightStats | None:
            return _gptq_stats(qweight, qzeros, scales, g_idx, bits, shape, source, chunk_bytes, hints)

        return _weight(qweight, module, shape, f"gptq int{bits}", gptq_stats), f"gptq int{bits}", constants
    if hints.method != "gptq" and words == qzeros.shape[1] and words * 8 == out and groups <= rows:
        shape = (out, rows)

        def awq_stats() -> WeightStats | None:
            return _awq_stats(qweight, qzeros, scales, shape, source, chunk_bytes, hints)

        return _weight(qweight, module, shape, "awq int4", awq_stats), "awq int4", constants
    return None


def _gptq_stats(qweight: NamedTensor, qzeros: NamedTensor, scales: NamedTensor, g_idx: NamedTensor | None,
                bits: int, shape: tuple[int, int], source, chunk_bytes: int, hints: Hints) -> WeightStats | None:
    out, inputs = shape
    groups = scales.shape[0]
    columns = _group_index(source, g_idx, inputs, groups, hints.group)
    scale = constant_floats(source, scales)  # read and checked before the zero points are unpacked
    if columns is None or scale is None or groups * out > MAX_CONSTANT_VALUES:
        return None
    zero_codes = _stream_rows(_raw(source, qzeros), bits, out)
    if zero_codes is None:
        return None
    zero = zero_codes if hints.gptq_v2 else (zero_codes.astype(np.int32) + 1) & ((1 << bits) - 1)
    scale_t, zero_t = scale.reshape(groups, out).T, zero.reshape(groups, out).T.astype(np.float32)
    acc = StatsAccumulator()
    # `bits` word rows hold 32 inputs of every column, whole (3-bit codes straddle words)
    step = bits * max(1, chunk_bytes // (BYTES_A_VALUE * 32 * out))
    for first in range(0, qweight.shape[0], step):
        last = min(qweight.shape[0], first + step)
        raw = source.stored_bytes(qweight.name, first * out * 4, last * out * 4)
        if raw is None or raw.size != (last - first) * out * 4:
            return None
        per_column = raw.reshape(last - first, out, 4).transpose(1, 0, 2).reshape(out, -1)  # each column's stream
        codes = _stream_rows(per_column, bits, (last - first) * 32 // bits)
        if codes is None:
            return None
        span = columns[first * 32 // bits:last * 32 // bits]
        with np.errstate(over="ignore", invalid="ignore"):
            acc.add(scale_t[:, span] * (codes - zero_t[:, span]))
    return acc.result()


def _awq_stats(qweight: NamedTensor, qzeros: NamedTensor, scales: NamedTensor, shape: tuple[int, int], source,
               chunk_bytes: int, hints: Hints) -> WeightStats | None:
    out, inputs = shape
    groups = scales.shape[0]
    size = _cell(inputs, groups, hints.group)
    scale = constant_floats(source, scales)
    if size is None or scale is None or groups * out > MAX_CONSTANT_VALUES:
        return None
    zero_stream = _stream_rows(_raw(source, qzeros), 4, out)
    if zero_stream is None:
        return None
    target = (np.arange(out) // 8) * 8 + AWQ_ORDER[np.arange(out) % 8]
    scale = scale.reshape(groups, out)
    zero = np.empty((groups, out), dtype=np.float32)
    zero[:, target] = zero_stream
    acc = StatsAccumulator()
    step = max(1, chunk_bytes // (BYTES_A_VALUE * out))
    for first in range(0, inputs, step):
        last = min(inputs, first + step)
        raw = source.stored_bytes(qweight.name, first * out // 2, last * out // 2)
        if raw is None or raw.size != (last - first) * out // 2:
            return None
        stream = _stream_rows(raw.reshape(last - first, -1), 4, out)
        if stream is None:
            return None
        codes = np.empty((last - first, out), dtype=np.float32)
        codes[:, target] = stream
        group = np.arange(first, last) // size
        with np.errstate(over="ignore", invalid="ignore"):
            acc.add((codes - zero[group]) * scale[group])
    return acc.result()


# ---------------------------------------------------------------------------
# compressed-tensors, ModelOpt and FP8
# ---------------------------------------------------------------------------
def _compressed_packed(packed: NamedTensor, module: str, by_name: dict[str, NamedTensor], source,
                       chunk_bytes: int, hints: Hints) -> Found | None:
    scale = by_name.get(f"{module}.weight_scale")
    if scale is None or scale.dtype not in SCALE_DTYPES + E8M0 or len(scale.shape) > 2:
        return None
    constants = [scale.name, f"{module}.weight_shape", f"{module}.weight_zero_point", f"{module}.weight_g_idx",
                 f"{module}.weight_global_scale"]
    out = packed.shape[0]
    if packed.dtype == "uint8":  # NVFP4 (float8 scales, a global scale) or MXFP4 (E8M0 exponents)
        global_scale = by_name.get(f"{module}.weight_global_scale")
        kind = "nvfp4" if scale.dtype in FLOAT8 and global_scale is not None else \
            "mxfp4" if scale.dtype in E8M0 else None
        if kind is None:
            return None
        return _fp4(packed, module, scale, global_scale, False, source, chunk_bytes, hints,
                    _label(hints, "compressed-tensors", kind), constants)
    if packed.dtype != "int32" or scale.dtype in E8M0:
        return None
    dims = _small_ints(source, by_name.get(f"{module}.weight_shape"), 2)
    if dims is None or dims[0] != out or dims[1] <= 0:
        return None
    shape = (out, int(dims[1]))
    fits = [b for b in range(1, 9) if -(-shape[1] * b // 32) == packed.shape[1]]
    if not fits:  # a stored shape the packed words cannot hold: not counted from it
        return None
    bits = hints.bits if hints.bits in fits else fits[0] if len(fits) == 1 else None
    kind = _label(hints, "compressed-tensors", f"int{bits}" if bits else "int")

    def packed_stats() -> WeightStats | None:
        if bits is None:  # a narrow row several widths would pack alike, and no config to say which
            return None
        return _packed_stats(packed, scale, by_name, module, bits, shape, source, chunk_bytes, hints)

    return _weight(packed, module, shape, kind, packed_stats), kind, constants


def _packed_stats(packed: NamedTensor, scale_tensor: NamedTensor, by_name: dict[str, NamedTensor], module: str,
                  bits: int, shape: tuple[int, int], source, chunk_bytes: int, hints: Hints) -> WeightStats | None:
    out, inputs = shape
    offset = 1 << (bits - 1)
    grid = _grid(source, scale_tensor, shape, by_name.get(f"{module}.weight_g_idx"), hints)
    if grid is None:
        return None
    zero_tensor = by_name.get(f"{module}.weight_zero_point")
    if zero_tensor is not None:
        cells = grid.scale.shape
        if zero_tensor.dtype == "int32":  # packed along the output axis
            stream = _stream_rows(_raw(source, zero_tensor, transpose=True), bits, cells[0])
            zero = None if stream is None else stream.T.astype(np.float32) - offset
        else:
            zero = constant_ints(source, zero_tensor)
        if zero is None or zero.size != math.prod(cells):
            return None
        grid = replace(grid, zero=zero.reshape(cells).astype(np.float32))
    acc = StatsAccumulator()
    for first, block in _slabs(source, packed.name, out, packed.shape[1] * 4, inputs, chunk_bytes):
        codes = _stream_rows(block, bits, inputs)
        if codes is None:
            return None
        acc.add(grid.values(codes.astype(np.float32) - offset, first))
    return acc.result()


def _fp4(packed: NamedTensor, module: str, scale: NamedTensor, global_scale: NamedTensor | None, multiply: bool,
         source, chunk_bytes: int, hints: Hints, kind: str, constants: list[str]) -> Found:
    """Two E2M1 codes a byte (low nibble first) times a grid of scales,
    divided by a global scale (compressed-tensors' NVFP4) or times a second
    one (``multiply``: ModelOpt's ``weight_scale_2``)."""
    shape = (packed.shape[0], packed.shape[1] * 2)

    def stats() -> WeightStats | None:
        return _fp4_stats(packed, scale, global_scale, multiply, shape, source, chunk_bytes, hints)

    return _weight(packed, module, shape, kind, stats), kind, constants


def _fp4_stats(packed: NamedTensor, scale_tensor: NamedTensor, global_scale: NamedTensor | None, multiply: bool,
               shape: tuple[int, int], source, chunk_bytes: int, hints: Hints) -> WeightStats | None:
    out, inputs = shape
    grid = _grid(source, scale_tensor, shape, None, hints)
    if grid is None:
        return None
    if global_scale is not None:
        second = constant_floats(source, global_scale)
        if second is None or second.size != 1:
            return None
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # a zero global scale: inf, counted
            grid = replace(grid, scale=grid.scale * second[0] if multiply else grid.scale / second[0])
    acc = StatsAccumulator()
    for first, block in _slabs(source, packed.name, out, packed.shape[1], inputs, chunk_bytes):
        codes = _stream_rows(block, 4, inputs)
        if codes is None:
            return None
        acc.add(grid.values(E2M1[codes], first))
    return acc.result()


def _scaled(weight: NamedTensor, module: str, by_name: dict[str, NamedTensor], source, chunk_bytes: int,
            hints: Hints) -> Found | None:
    """A ``weight`` stored as codes beside its scale: compressed-tensors'
    int-, naive-, float- and mxfp8-quantized, FP8 with block scales,
    ModelOpt's NVFP4 and transformers' packed FP4. bitsandbytes' int8
    (``X.SCB``) was replaced before (``bnb_quantized``)."""
    scale = by_name.get(f"{module}.weight_scale") or by_name.get(f"{module}.weight_scale_inv")
    if scale is None or len(scale.shape) > 2 or 0 in scale.shape:
        return None
    inverse = scale.name.endswith("_inv")
    constants = [scale.name, f"{module}.weight_zero_point", f"{module}.weight_g_idx"]
    second = by_name.get(f"{module}.weight_scale_2")
    if weight.dtype == "uint8" and scale.dtype in FLOAT8 and second is not None:
        return _fp4(weight, module, scale, second, True, source, chunk_bytes, hints,
                    _label(hints, "modelopt", "nvfp4"), constants)
    if weight.dtype in ("int8", "uint8") and inverse and scale.dtype in SCALE_DTYPES + E8M0:
        return _fp4(weight, module, scale, None, False, source, chunk_bytes, hints, _label(hints, "fp8", "fp4"),
                    constants)
    if weight.dtype in FLOAT8:
        if scale.dtype not in SCALE_DTYPES + E8M0:
            return None
        kind = "mxfp8" if scale.dtype in E8M0 and not inverse else "fp8"
    elif scale.dtype in SCALE_DTYPES and not inverse:
        kind = weight.dtype
    else:
        return None
    label = _label(hints, "fp8" if inverse else "scaled", kind)
    zero = by_name.get(f"{module}.weight_zero_point")

    def stats() -> WeightStats | None:
        grid = _grid(source, scale, weight.shape, by_name.get(f"{module}.weight_g_idx"), hints)
        if grid is None:
            return None
        if zero is not None:
            values = constant_ints(source, zero)
            if values is None or values.size != grid.scale.size:
                return None
            grid = replace(grid, zero=values.reshape(grid.scale.shape).astype(np.float32))
        acc = StatsAccumulator()
        for first, codes in _rows(weight, source, chunk_bytes):
            acc.add(grid.values(codes, first))
        return acc.result()

    return replace(weight, dtype=kind, quantized=True, read_stats=_guarded(stats)), label, constants


def _rows(weight: NamedTensor, source, chunk_bytes: int) -> Iterator[tuple[int, np.ndarray]]:
    """A weight's rows of codes a slab at a time, as float32 codes
    (integers) or values (float8)."""
    out, inputs = weight.shape
    itemsize = 1 if weight.dtype in FLOAT8 else np.dtype(INTEGER_CODES[weight.dtype]).itemsize
    for first, block in _slabs(source, weight.name, out, inputs * itemsize, inputs, chunk_bytes):
        yield first, (widen(block, weight.dtype) if weight.dtype in FLOAT8 else
                      block.view(np.dtype(INTEGER_CODES[weight.dtype]).newbyteorder("<")).astype(np.float32))


def _slabs(source, name: str, rows: int, row_bytes: int, values_a_row: int,
           chunk_bytes: int) -> Iterator[tuple[int, np.ndarray]]:
    """A stored tensor's rows a slab at a time, as [rows, row_bytes] bytes:
    as many rows as make about ``chunk_bytes`` of dequantized values."""
    step = max(1, chunk_bytes // (BYTES_A_VALUE * values_a_row))
    for first in range(0, rows, step):
        last = min(rows, first + step)
        raw = source.stored_bytes(name, first * row_bytes, last * row_bytes)
        if raw is None or raw.size != (last - first) * row_bytes:
            raise _Unreadable
        yield first, raw.reshape(last - first, row_bytes)


class _Unreadable(Exception):
    """A slab the source could not give: no statistics."""


# ---------------------------------------------------------------------------
# shared pieces
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    """Scales (and zero points) over a weight [out, in]: row ``r`` and
    column ``c`` read cell ``[r // rows_a_cell, column[c]]``."""

    scale: np.ndarray  # [S0, S1] float32
    zero: np.ndarray | None
    rows_a_cell: int
    column: np.ndarray  # [in]: each input's scale column (g_idx, or c // columns a cell)

    def values(self, codes: np.ndarray, first: int) -> np.ndarray:
        """Dequantized rows ``first:first + len(codes)``."""
        cells = np.arange(first, first + codes.shape[0]) // self.rows_a_cell
        scale = self.scale[cells][:, self.column]
        with np.errstate(over="ignore", invalid="ignore"):
            if self.zero is None:
                return codes * scale
            return (codes - self.zero[cells][:, self.column]) * scale


def _grid(source, scale_tensor: NamedTensor, shape: tuple[int, ...], g_idx: NamedTensor | None,
          hints: Hints) -> Grid | None:
    out, inputs = shape
    size = math.prod(scale_tensor.shape)
    if size > MAX_CONSTANT_VALUES:
        return None
    cells = tuple(scale_tensor.shape) if len(scale_tensor.shape) == 2 else \
        (out, 1) if size == out else (1, size)  # a vector [out]: one scale a row
    rows_a_cell = _cell(out, cells[0], hints.block[0] if hints.block else None)
    column = _group_index(source, g_idx, inputs, cells[1], hints.block[1] if hints.block else hints.group)
    if rows_a_cell is None or column is None:
        return None
    scale = constant_floats(source, scale_tensor)
    if scale is None or scale.size != math.prod(cells):
        return None
    return Grid(scale.reshape(cells), None, rows_a_cell, column)


def _cell(n: int, cells: int, hint: int | None) -> int | None:
    """Rows (or columns) one of ``cells`` scales covers along a side of
    ``n``: the configured block or group where it gives that many cells,
    else the power of two that does, else ``n / cells`` when it divides."""
    if not 0 < cells <= n:
        return None
    if cells == 1:
        return n
    if hint is not None and -(-n // hint) == cells:
        return hint
    low, high = -(-n // cells), (n - 1) // (cells - 1)  # every size giving exactly `cells` cells
    power = 1 << (high.bit_length() - 1)
    if low <= power:
        return power
    return n // cells if n % cells == 0 else None


def _group_index(source, g_idx: NamedTensor | None, inputs: int, groups: int, hint: int | None) -> np.ndarray | None:
    """Each input's group: the stored ``g_idx`` (act-order), else groups of
    ``_cell`` inputs; None where neither fits."""
    if g_idx is not None:
        index = constant_ints(source, g_idx) if math.prod(g_idx.shape) == inputs else None
        if index is None or index.size != inputs or (inputs and (index.min() < 0 or index.max() >= groups)):
            return None  # a g_idx that does not index these groups: no statistics rather than wrong ones
        return index
    size = _cell(inputs, groups, hint)
    return None if size is None else np.arange(inputs) // size


def _stream_rows(raw: np.ndarray | None, bits: int, count: int) -> np.ndarray | None:
    """The first ``count`` codes of each row of bytes, read as one
    little-endian bit stream (code j at bits ``bits*j .. bits*j + bits``)."""
    if raw is None or raw.ndim != 2 or raw.shape[1] * 8 < count * bits:
        return None
    if bits == 8:
        return raw[:, :count]
    if bits == 4:
        codes = np.empty((raw.shape[0], raw.shape[1] * 2), dtype=np.uint8)
        codes[:, 0::2], codes[:, 1::2] = raw & 0x0F, raw >> 4
        return codes[:, :count]
    stream = np.unpackbits(raw, axis=1, bitorder="little")[:, :count * bits]
    weights = (1 << np.arange(bits)).astype(np.uint8)
    return (stream.reshape(raw.shape[0], count, bits) * weights).sum(axis=2, dtype=np.uint16).astype(np.uint8)


def _raw(source, tensor: NamedTensor, *, transpose: bool = False) -> np.ndarray | None:
    """A small 2-D tensor's bytes, one row of bytes a row (or a column, as
    its little-endian words, with ``transpose``)."""
    size = math.prod(tensor.shape)
    itemsize = ITEMSIZE.get(tensor.dtype)
    if itemsize is None or size > MAX_CONSTANT_VALUES or len(tensor.shape) != 2:
        return None
    raw = source.stored_bytes(tensor.name, 0, size * itemsize)
    if raw is None or raw.size != size * itemsize:
        return None
    rows, cols = tensor.shape
    if transpose:
        return raw.reshape(rows, cols, itemsize).transpose(1, 0, 2).reshape(cols, rows * itemsize)
    return raw.reshape(rows, cols * itemsize)


def _small_ints(source, tensor: NamedTensor | None, size: int) -> np.ndarray | None:
    if tensor is None or math.prod(tensor.shape) != size:
        return None
    values = constant_ints(source, tensor)
    return values if values is not None and values.size == size else None


def _weight(stored: NamedTensor, module: str, shape: tuple[int, int], kind: str,
            read_stats: Callable[[], WeightStats | None]) -> NamedTensor:
    return replace(stored, name=f"{module}.weight", shape=shape, dtype=kind, quantized=True,
                   read_stats=_guarded(read_stats))


def _guarded(read_stats: Callable[[], WeightStats | None]) -> Callable[[], WeightStats | None]:
    """Statistics or None: a layer whose constants do not fit its codes
    costs its statistics, never the rest of the file."""
    def stats() -> WeightStats | None:
        try:
            return read_stats()
        except (_Unreadable, ArithmeticError, ValueError, IndexError):
            return None
    return stats
