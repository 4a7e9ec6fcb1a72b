"""OpenAI gpt-oss's MXFP4 experts (gpt-oss-20b and -120b on the Hub;
transformers' ``quant_method: mxfp4``, ``integrations/mxfp4.py``).

Each layer's MoE experts are stored as

``X.gate_up_proj_blocks`` uint8 [E, 2*I, H/32, 16]
    the rows of the transposed weight in blocks of 32 values, two E2M1
    codes a byte, the low nibble first;
``X.gate_up_proj_scales`` uint8 [E, 2*I, H/32]
    one E8M0 exponent a block: ``value = e2m1 * 2^(scale - 127)``;
``X.gate_up_proj_bias`` bfloat16 [E, 2*I]
    a plain parameter,

and the same for ``down_proj`` (rows H, I/32 blocks a row). Experts that
``modules_to_not_convert`` names, and everything that is no expert, are
stored as plain floats.

Each weight counts as the float parameter transformers loads it into: its
``convert_moe_packed_tensors`` decodes [E, R, G, 16] to [E, R, 32 * G] and
swaps the last two axes, so ``X.gate_up_proj`` is [E, H, 2*I] and
``X.down_proj`` [E, I, H], as ``GptOssExperts`` holds them. The scales are
quantization constants. Statistics are those of the decoded values, equal
to transformers' own (``fixtures/make_gptoss_fixtures.py``,
``tests/test_gptoss_mxfp4.py``): E2M1 times a power of two is exact in
float32, and the order of the values does not change the sums. A scale is
an exponent as transformers' ``ldexp`` takes it, not OCP's E8M0 value:
0xFF (NaN in E8M0) is 2^128, so a zero code stays 0, +-0.5 is +-2^127 and
larger codes overflow to inf, as transformers decodes them. int8 blocks
are their bytes (transformers' ``blocks.to(torch.uint8)``).

Blocks and scales that do not fit ([E, R, G, 16] over [E, R, G] E8M0),
blocks without their scales and empty blocks over scales cost the weight
its statistics, not its count (the blocks alone give its shape); scales
without their blocks, blocks beside a float weight of the name they
decode to (the float one is kept) and blocks of another layout beside
scales (no shape to count them at) are not decoded. A note names each.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from reglint.model import WeightStats
from reglint.readers.named_tensor import MX_SCALE_DTYPES, NamedTensor
from reglint.readers.packed_quantized import _guarded, _slabs
from reglint.readers.small_floats import E2M1
from reglint.readers.tensor_stats import StatsAccumulator

KIND = "mxfp4 experts"  # "mxfp4": the quant_method; packed_quantized.LIBRARIES names it
BLOCK_BYTES = 16  # 32 E2M1 codes: an MX block
BLOCKS, SCALES = "_blocks", "_scales"
BLOCK_DTYPES = ("uint8", "int8")  # transformers' blocks.to(torch.uint8): the bytes either way
# Each byte's two E2M1 values (low nibble first) as one 8-byte word: one
# take a byte instead of splitting nibbles and looking each up, half the
# time on gpt-oss-120b's 114G expert values.
_BYTES = np.arange(256)
E2M1_PAIRS = np.stack([E2M1[_BYTES & 0x0F], E2M1[_BYTES >> 4]], axis=-1).view(np.uint64).reshape(256)
# 2^(scale - 127) for scales 0..254 (float32 holds 2^-127 as a subnormal,
# exactly); 255 is 2^128, past float32: looked up as 2^127 and the values
# doubled after, so 0 stays 0, 0.5 gives 2^127 and the rest inf, as
# transformers' ldexp.
EXPONENTS = np.ldexp(np.float32(1), np.minimum(np.arange(256), 254) - 127).astype(np.float32)
TOP_SCALE = 255


def dequantized_mxfp4_experts(tensors: list[NamedTensor], source, chunk_bytes: int,
                              notes: list[str] | None = None) -> tuple[list[NamedTensor], dict[str, int]]:
    """``tensors`` with each gpt-oss expert weight as the float parameter
    it stands for and its scales dropped; how many were replaced (under
    ``KIND``). What could not be decoded is told in ``notes``."""
    by_name = {t.name: t for t in tensors}
    replaced: dict[str, NamedTensor] = {}
    dropped: set[str] = set()
    untold: list[str] = []
    for tensor in tensors:
        base = tensor.name.removesuffix(BLOCKS)
        scales = by_name.get(base + SCALES) if tensor.name.endswith(BLOCKS) else None
        if not _blocks_like(tensor):
            if scales is not None and not tensor.quantized:  # named as gpt-oss', laid out otherwise
                untold.append(f"{tensor.name} {list(tensor.shape)} {tensor.dtype} beside {scales.name} (not "
                              f"[E, R, G, 16] bytes: {'counted as stored' if tensor.is_float else 'not counted'})")
            continue
        if base in by_name:  # a float weight of the name the blocks decode to: kept, the blocks not decoded
            untold.append(f"{tensor.name} beside a stored {base} (kept; the blocks not decoded)")
            continue
        if scales is None:
            if tensor.shape[3] != BLOCK_BYTES:
                continue  # no MX block, no scales: nothing says this is gpt-oss
            replaced[tensor.name] = _weight(tensor, None, source, chunk_bytes)
            untold.append(f"{tensor.name} {list(tensor.shape)} without {base}{SCALES} (counted without statistics)")
            continue
        fits = scales.shape == tensor.shape[:3] and tensor.shape[3] == BLOCK_BYTES \
            and scales.dtype in MX_SCALE_DTYPES and 0 not in tensor.shape
        if 0 in tensor.shape and scales.shape == tensor.shape[:3]:  # empty over empty: nothing to decode or say
            dropped.add(scales.name)
            continue
        replaced[tensor.name] = _weight(tensor, scales if fits else None, source, chunk_bytes)
        dropped.add(scales.name)
        if not fits:
            untold.append(f"{tensor.name} {list(tensor.shape)} over {scales.name} {list(scales.shape)} "
                          f"{scales.dtype} (counted without statistics)")
    for tensor in tensors:
        base = tensor.name.removesuffix(SCALES)
        if tensor.name.endswith(SCALES) and base and tensor.dtype in MX_SCALE_DTYPES and len(tensor.shape) == 3 \
                and base + BLOCKS not in by_name and base not in by_name:
            untold.append(f"{tensor.name} {list(tensor.shape)} without {base}{BLOCKS} (the weight is not in the file)")
    if untold and notes is not None:
        notes.append(_untold_note(untold))
    if not replaced and not dropped:
        return tensors, {}
    out = [replaced.get(t.name, t) for t in tensors if t.name not in dropped]
    return out, ({KIND: len(replaced)} if replaced else {})


def _blocks_like(tensor: NamedTensor) -> bool:
    """A ``*_blocks`` tensor laid out as gpt-oss' [E, R, G, 16] bytes."""
    return tensor.name.endswith(BLOCKS) and len(tensor.name) > len(BLOCKS) and not tensor.quantized \
        and tensor.dtype in BLOCK_DTYPES and len(tensor.shape) == 4


def _weight(blocks: NamedTensor, scales: NamedTensor | None, source, chunk_bytes: int) -> NamedTensor:
    """The float parameter [E, 32 * G, R] that blocks [E, R, G, 16] stand
    for (transformers' transpose); without ``scales``, no statistics."""
    experts, rows, groups, width = blocks.shape
    shape = (experts, groups * width * 2, rows)

    def stats() -> WeightStats | None:
        return None if scales is None else _stats(blocks, scales, source, chunk_bytes)

    return replace(blocks, name=blocks.name.removesuffix(BLOCKS), shape=shape, dtype="mxfp4", quantized=True,
                   read_stats=_guarded(stats))


def _stats(blocks: NamedTensor, scales: NamedTensor, source, chunk_bytes: int) -> WeightStats | None:
    """The decoded values a slab of blocks at a time, each slab's scales
    read beside it: a 120b layer's scales alone are 66M values."""
    count = blocks.shape[0] * blocks.shape[1] * blocks.shape[2]
    values_a_block = 2 * BLOCK_BYTES
    acc = StatsAccumulator()
    codes = _slabs(source, blocks.name, count, BLOCK_BYTES, values_a_block, chunk_bytes)
    exponents = _slabs(source, scales.name, count, 1, values_a_block, chunk_bytes)
    for (_, raw), (_, scale) in zip(codes, exponents, strict=True):  # the same slabs: same rows, same step
        values = np.take(E2M1_PAIRS, raw).view(np.float32)  # [blocks, 32]
        with np.errstate(over="ignore", invalid="ignore"):  # 6 x 2^127 is inf in float32, as in transformers
            values *= EXPONENTS[scale]  # uint8 and float8_e8m0fnu scales: the same bytes
            top = scale[:, 0] == TOP_SCALE
            if top.any():
                values[top] *= 2
        acc.add(values)
    return acc.result()


def _untold_note(untold: list[str]) -> str:
    shown = "; ".join(untold[:3]) + (f"; and {len(untold) - 3} more" if len(untold) > 3 else "")
    return (f"{len(untold)} MXFP4 expert weights not decoded: their blocks are not [E, R, G, 16] beside E8M0 "
            f"scales [E, R, G] (a truncated, corrupt or crafted checkpoint): {shown}; "
            "a weight with blocks counted at the shape they give")
