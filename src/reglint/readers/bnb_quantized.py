"""bitsandbytes-quantized weights, as transformers' ``save_pretrained`` writes
a model loaded with ``BitsAndBytesConfig`` (QLoRA's base models, 8-bit
deployments) into ``model.safetensors``.

4-bit (``load_in_4bit``, NF4 or FP4)
    ``X.weight`` is uint8 [ceil(n / 2), 1]: two 4-bit codes a byte, the
    first in the high nibble; ``X.weight.quant_state.bitsandbytes__nf4``
    (or ``__fp4``) is a uint8 tensor holding JSON with the float ``shape``,
    ``blocksize`` and, for the nested ("double") quantization, its block
    size and offset; ``X.weight.quant_map`` [16] maps a code to a value,
    ``X.weight.absmax`` [n / blocksize] scales each block. With double
    quantization ``absmax`` is itself uint8 codes into
    ``X.weight.nested_quant_map`` [256], scaled per ``nested_blocksize``
    block by ``X.weight.nested_absmax``, plus ``nested_offset``.
    ``value = quant_map[code] * absmax[i // blocksize]``.
8-bit (``load_in_8bit``, LLM.int8)
    ``X.weight`` is int8 [out, in] beside ``X.SCB`` [out], each row's
    absolute maximum, and ``X.weight_format``:
    ``value = code * SCB[row] / 127``.

Each weight counts as the float parameter it stands for, at its float
shape; the scales, maps, states and formats are quantization constants.
The packed bytes are read as bytes whatever dtype holds them
(``bnb_4bit_quant_storage=torch.bfloat16``, QLoRA with FSDP, stores them as
bfloat16 [n / 4, 1]), and a sharded save is dequantized over all its shards
at once (transformers puts a weight and its scales in different shards).
Statistics are those of the dequantized values, held to bitsandbytes' own
``dequantize_4bit`` and ``int8_vectorwise_dequant``
(``fixtures/make_torch_fixtures.py``, ``tests/test_torch_reader.py``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from typing import Protocol

import numpy as np

from reglint.model import WeightStats
from reglint.readers.named_tensor import FLOAT_CONSTANTS as FLOATS
from reglint.readers.named_tensor import ITEMSIZE, MAX_CONSTANT_VALUES, NamedTensor
from reglint.readers.tensor_stats import StatsAccumulator

STATE = re.compile(r"(?P<weight>.+)\.quant_state\.bitsandbytes__(?P<kind>nf4|fp4)")
FOUR_BIT_CONSTANTS = ("absmax", "quant_map", "nested_absmax", "nested_quant_map")
MAX_STATE_BYTES = 1 << 16  # the JSON is ~200 bytes
MAX_BLOCKSIZE = 1 << 16  # bitsandbytes' block sizes are 32 to 4096; the nested one 256


class TensorSource(Protocol):
    """Where the stored tensors' values are: one file, or a sharded save's."""

    def values(self, name: str) -> np.ndarray | None:
        """A small tensor's values (float16/32/64 or integer dtypes); None
        where they cannot be read."""

    def stored_bytes(self, name: str, start: int, stop: int) -> np.ndarray | None:
        """Bytes start:stop of a tensor as stored, as uint8; None where they
        cannot be read."""


def dequantized_bitsandbytes(tensors: list[NamedTensor], source: TensorSource,
                             chunk_bytes: int) -> tuple[list[NamedTensor], dict[str, int]]:
    """``tensors`` with each bitsandbytes weight standing for its float
    parameter and the quantization constants dropped; how many weights of
    each kind (nf4, fp4, int8) were replaced."""
    by_name = {t.name: t for t in tensors}
    replaced: dict[str, NamedTensor] = {}
    constants: set[str] = set()
    kinds: dict[str, int] = {}
    for tensor in tensors:
        match = STATE.fullmatch(tensor.name)
        weight = by_name.get(match["weight"]) if match else None
        if match and weight is not None and tensor.dtype == "uint8":
            state = _state(source, tensor)
            if state is None or _stored_nbytes(weight) != (math.prod(state["shape"]) + 1) // 2 \
                    or len([d for d in weight.shape if d != 1]) > 1:
                continue  # not what bitsandbytes writes: the bytes are left uncounted, as any integer tensor
            replaced[weight.name] = _four_bit(weight, state, match["kind"], by_name, source, chunk_bytes)
            constants |= {tensor.name, *(f"{weight.name}.{c}" for c in FOUR_BIT_CONSTANTS)}
            kinds[match["kind"]] = kinds.get(match["kind"], 0) + 1
        elif tensor.dtype == "int8" and tensor.name.endswith(".weight") and len(tensor.shape) == 2:
            module = tensor.name[:-len(".weight")]
            scb = by_name.get(f"{module}.SCB")
            if scb is not None and scb.shape == tensor.shape[:1]:
                replaced[tensor.name] = _eight_bit(tensor, scb, source, chunk_bytes)
                constants |= {scb.name, f"{module}.weight_format"}
                kinds["int8"] = kinds.get("int8", 0) + 1
    if not replaced:
        return tensors, {}
    return [replaced.get(t.name, t) for t in tensors if t.name not in constants or t.name in replaced], kinds


def dequantized_checkpoint(tensors: list[NamedTensor], source: TensorSource, chunk_bytes: int,
                           quantization_config: object = None,
                           notes: list[str] | None = None) -> tuple[list[NamedTensor], dict[str, int]]:
    """bitsandbytes' weights, then optimum-quanto's (``quanto_quantized``),
    then GPTQ's, AWQ's, compressed-tensors' and block FP8's
    (``packed_quantized``; ``quantization_config``: a Hugging Face
    ``config.json``'s, where there is one), then gpt-oss's MXFP4 experts
    (``gptoss_mxfp4``), each as the float parameter it stands for; the
    kinds found. What the model's notes should say of weights that could
    not be decoded goes to ``notes``."""
    from reglint.readers.gptoss_mxfp4 import dequantized_mxfp4_experts
    from reglint.readers.packed_quantized import Hints, dequantized_packed
    from reglint.readers.quanto_quantized import dequantized_quanto

    tensors, kinds = dequantized_bitsandbytes(tensors, source, chunk_bytes)
    tensors, more = dequantized_quanto(tensors, source, chunk_bytes)
    tensors, packed = dequantized_packed(tensors, source, chunk_bytes, Hints.of(quantization_config))
    tensors, experts = dequantized_mxfp4_experts(tensors, source, chunk_bytes, notes)
    return tensors, {**kinds, **more, **packed, **experts}


def quantized_note(kinds: dict[str, int]) -> str:
    """The model's note for the weights ``dequantized_checkpoint`` replaced."""
    from reglint.readers.packed_quantized import LIBRARIES

    libraries = sorted({{**LIBRARIES, "quanto": "optimum-quanto"}.get(kind.split(" ")[0], "bitsandbytes")
                        for kind in kinds})
    return (f"{sum(kinds.values())} weights are stored quantized by {' and '.join(libraries)} "
            f"({', '.join(sorted(kinds))}): each counts as the float parameter it stands for, at its float shape; "
            "scales, zero points, absmax, quant maps and states, group indices and activation scales are not "
            "parameters; statistics are of the dequantized values")


def _stored_nbytes(tensor: NamedTensor) -> int | None:
    size = ITEMSIZE.get(tensor.dtype)
    return math.prod(tensor.shape) * size if size else None


def _state(source: TensorSource, tensor: NamedTensor) -> dict | None:
    if math.prod(tensor.shape) > MAX_STATE_BYTES:
        return None
    raw = source.values(tensor.name)
    if raw is None:
        return None
    try:
        state = json.loads(bytes(np.asarray(raw, dtype=np.uint8).reshape(-1)))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    shape = state.get("shape") if isinstance(state, dict) else None
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        return None
    blocksize = state.get("blocksize")
    if not isinstance(blocksize, int) or not 1 < blocksize <= MAX_BLOCKSIZE or blocksize % 2:
        return None
    return state


def _four_bit(weight: NamedTensor, state: dict, kind: str, by_name: dict[str, NamedTensor], source: TensorSource,
              chunk_bytes: int) -> NamedTensor:
    shape = tuple(int(d) for d in state["shape"])
    count = math.prod(shape)

    def stats() -> WeightStats | None:
        return _four_bit_stats(weight.name, state, count, by_name, source, chunk_bytes)

    return replace(weight, shape=shape, dtype=kind, quantized=True, read_stats=stats)


def _four_bit_stats(name: str, state: dict, count: int, by_name: dict[str, NamedTensor], source: TensorSource,
                    chunk_bytes: int) -> WeightStats | None:
    block = int(state["blocksize"])
    blocks = -(-count // block)
    code_map = _small(source, by_name, f"{name}.quant_map", 16)
    absmax = _absmax(name, state, blocks, by_name, source)
    if code_map is None or absmax is None:
        return None
    acc = StatsAccumulator()
    per_chunk = max(2, chunk_bytes // 16 // 2 * 2)  # values a slab, even: whole bytes
    with np.errstate(over="ignore", invalid="ignore"):  # inf/NaN scales: the sums say so
        for start in range(0, count, per_chunk):
            stop = min(count, start + per_chunk)
            packed = source.stored_bytes(name, start // 2, (stop + 1) // 2)
            if packed is None or packed.size != (stop + 1) // 2 - start // 2:
                return None  # unreadable here: no statistics, the count stands
            codes = np.empty(packed.size * 2, dtype=np.uint8)
            codes[0::2], codes[1::2] = packed >> 4, packed & 0x0F  # high nibble first
            acc.add(code_map[codes[:stop - start]] * absmax[np.arange(start, stop) // block])
    return acc.result()


def _absmax(name: str, state: dict, blocks: int, by_name: dict[str, NamedTensor],
            source: TensorSource) -> np.ndarray | None:
    """Each block's scale; dequantized first when it is itself quantized."""
    tensor = by_name.get(f"{name}.absmax")
    if tensor is None or math.prod(tensor.shape) != blocks or blocks > MAX_CONSTANT_VALUES:
        return None
    if tensor.dtype in FLOATS:
        return _sized(source.values(tensor.name), blocks)
    if tensor.dtype != "uint8":
        return None
    nested_block = state.get("nested_blocksize")
    offset = state.get("nested_offset", 0.0)
    code_map = _small(source, by_name, f"{name}.nested_quant_map", 256)
    if not isinstance(nested_block, int) or not 0 < nested_block <= MAX_BLOCKSIZE \
            or not isinstance(offset, (int, float)) or isinstance(offset, bool) or code_map is None:
        return None
    nested = _small(source, by_name, f"{name}.nested_absmax", -(-blocks // nested_block))
    if nested is None:
        return None
    codes = source.values(tensor.name)
    if codes is None or codes.size != blocks:
        return None
    codes = np.asarray(codes, dtype=np.uint8).reshape(-1)
    return code_map[codes] * nested[np.arange(blocks) // nested_block] + float(offset)


def _small(source: TensorSource, by_name: dict[str, NamedTensor], name: str, size: int) -> np.ndarray | None:
    tensor = by_name.get(name)
    if tensor is None or math.prod(tensor.shape) != size or size > MAX_CONSTANT_VALUES or tensor.dtype not in FLOATS:
        return None
    return _sized(source.values(name), size)


def _sized(values: np.ndarray | None, size: int) -> np.ndarray | None:
    """Flat float64 values when ``size`` of them could be read."""
    if values is None or values.size != size:
        return None
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _eight_bit(weight: NamedTensor, scb: NamedTensor, source: TensorSource, chunk_bytes: int) -> NamedTensor:
    def stats() -> WeightStats | None:
        height, width = weight.shape
        if scb.dtype not in FLOATS or width == 0:
            return None
        itemsize = ITEMSIZE[scb.dtype]
        acc = StatsAccumulator()
        per_chunk = max(1, chunk_bytes // 8)  # values a slab, however long or short the rows
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, height * width, per_chunk):
                stop = min(height * width, start + per_chunk)
                first, last = start // width, (stop - 1) // width + 1  # the rows this slab touches: their scales
                codes = source.stored_bytes(weight.name, start, stop)
                scales = source.stored_bytes(scb.name, first * itemsize, last * itemsize)
                if codes is None or codes.size != stop - start or scales is None or \
                        scales.size != (last - first) * itemsize:
                    return None
                scale = scales.view(np.dtype(scb.dtype)).astype(np.float32) / np.float32(127.0)
                acc.add(codes.view(np.int8).astype(np.float32) * scale[np.arange(start, stop) // width - first])
        return acc.result()

    return replace(weight, quantized=True, read_stats=stats)
