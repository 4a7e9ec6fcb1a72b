"""GGUF files (``.gguf``): llama.cpp's format, how most quantized LLMs are
shared.

**The header** is parsed here, never by ``gguf.GGUFReader`` (which reads
the whole file eagerly): ``GGUF``, a little-endian uint32 version (2 or 3;
1 had 32-bit counts and is gone since 2023), uint64 tensor and key-value
counts, the key-value pairs (a string key, a uint32 value type, the value:
integers, floats, bools, strings as uint64 length + bytes, arrays as item
type + uint64 count + items, arrays nested), then each tensor's name,
uint32 dimension count (at most 4, GGML_MAX_DIMS), int64 dimensions in
ggml's order (``ne[0]`` is the innermost, a Linear's input width: the
PyTorch shape is the reversed list), uint32 ggml type and uint64 offset
into the data section, which starts at the next multiple of
``general.alignment`` (32 by default). Every length, count, dimension and
offset is checked against the file's size and ``ReadOptions`` before
anything is read or allocated; large arrays (the tokenizer's 150,000
strings) are skipped over, not built. What llama.cpp's own loader
(``gguf.cpp``) refuses is refused too: key and tensor names that repeat,
tensor names of 64 bytes or more, a row not a whole number of blocks, a
ggml type id it does not know, tensors' data not laid end to end (each
padded to the alignment) in the order listed.

**Counts**: each tensor at its float shape, whatever its ggml type (byte
sizes from ggml's block tables, ``GGML_TYPES``: never from
dequantization). A model split into parts (``gguf-split``:
``<stem>-00001-of-00003.gguf``; the first part may hold metadata only) is
read as one model from all its parts, whichever part is named; a folder
walk lints the first. Not parameters: the rope factors
llama.cpp computes from the config (``rope_freqs``, ``rope_factors_*``,
``attn_rot_embd``) and integer tensors.

**Statistics** of the dequantized values, a slab of whole blocks at a time
(``chunk_bytes``): F32, F16, BF16 and F64 are read here; every quantized
type by ``gguf.quants.dequantize`` (llama.cpp's own Python package, the
field's reference: Q4_0 ... Q8_0, the k-quants, the i-quants, TQ, MXFP4)
on those bytes. Without the ``gguf`` package, or for a type it does not
dequantize, the tensor is counted without statistics and a note says so.

**Roles** follow GGUF's tensor names (gguf-py's ``constants.py``,
``TENSOR_NAMES``): ``token_embd``, ``position_embd``, ``token_types``,
other ``*_embd`` tables and T5's relative position biases (``attn_rel_b``)
are embeddings; a module named like a norm
(``attn_norm``, ``ffn_norm``, ``output_norm``, ``attn_q_norm``, ``ln1``)
holds a gamma (and a beta); every other weight of rank >= 2 is a kernel
(``attn_q``, ``ffn_down``, ``output``; ``ffn_*_exps`` are each layer's
experts stacked, [experts, out, in]); a bias is a bias; anything else
(``ssm_d``, ``attn_sinks``) is ``other``. DeepSeek-V3's router bias
(``exp_probs_b``, a buffer in torch) is non-trainable state. A GGUF file
holds no optimizer.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from reglint.errors import ModelReadError, UnsafeInputError, one_line
from reglint.model import Layer, Model, Role, Variable, WeightStats
from reglint.readers.limits import ReadOptions
from reglint.readers.sniff import GGUF_SPLIT as SPLIT_NAME
from reglint.readers.tensor_stats import StatsAccumulator, bfloat16_to_float32

GGUF_MAGIC = b"GGUF"
VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_NAME = 64  # GGML_MAX_NAME: llama.cpp refuses tensor names of 64 bytes or more
MAX_KEY = (1 << 16) - 1  # the GGUF spec: keys of at most 65,535 bytes
MAX_NESTING = 8  # arrays of arrays: gguf-py writes them, llama.cpp refuses them
# Real files hold tens of key-value pairs and at most a few thousand tensors
# (a MoE's experts are stacked); each pair and tensor is Python work.
MAX_KV = 1 << 16
MAX_TENSORS = 1 << 18
KEEP_STRING = 1024  # a metadata string kept for the report (longer: skipped)
KEEP_ITEMS = 64  # an array kept for the report (longer: skipped)
READ_AHEAD = 1 << 20
INT64_MAX = (1 << 63) - 1

# ggml type id -> (name, values a block, bytes a block): ggml.c's type
# traits, as gguf-py's GGML_QUANT_SIZES (tests/test_gguf_reader.py holds
# the two equal). Ids missing here were removed from ggml (4, 5: Q4_2/Q4_3;
# 31-33, 36-38: the repacked Q4_0_4_4 ... IQ4_NL_8_8).
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36), 10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8),
    28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
    42: ("Q2_0", 64, 18),
}
FLOATS = {"F32": ("float32", "<f4"), "F16": ("float16", "<f2"), "F64": ("float64", "<f8"), "BF16": ("bfloat16", None)}
INTEGERS = ("I8", "I16", "I32", "I64")
# general.file_type (llama.cpp's llama_ftype) -> what people call the file.
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
              12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
              19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
              26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16",
              36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0", 41: "Q2_0"}

# GGUF value types: scalars (struct format, bytes), 8 string, 9 array.
SCALARS = {0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4), 6: ("<f", 4),
           7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8)}
STRING, ARRAY, UINT32 = 8, 9, 4
# The fewest bytes one item of each value type takes (a string: its length).
MIN_ITEM = {STRING: 8, ARRAY: 12, **{t: size for t, (_, size) in SCALARS.items()}}
# The fewest bytes a key-value pair (8-byte key length, a 1-byte key, the
# type, a 1-byte value) and a tensor info (name length, dims count, type,
# offset) take: counts claiming more than the file holds are refused at once.
MIN_KV = 8 + 1 + 4 + 1
MIN_TENSOR = 8 + 4 + 4 + 8

# Tensors llama.cpp computes from the config: buffers, not parameters.
NOT_PARAMETERS = re.compile(r"(^|\.)(rope_freqs|rope_factors_long|rope_factors_short|attn_rot_embd)$")
# Buffers a model updates outside the gradient, stored as tensors: the
# router's expert-score correction bias of DeepSeek-V3 and its descendants
# (transformers' ``e_score_correction_bias``, a registered buffer that the
# auxiliary-loss-free load balancing moves each step; ``_vl``: a
# vision-language model's). Torch counts no buffer among the parameters:
# kept as non-trainable state, as BatchNorm's running statistics are.
BUFFERS = re.compile(r"(^|\.)exp_probs_b(_vl)?$")
NORM = re.compile(r"norm|^(pre_|post_)?ln(\d+|_[a-z]+)?$")
# ``*_embd`` tables, BERT's token_types and T5's relative position biases
# (``attn_rel_b``, ``cross_attn_rel_b``: an nn.Embedding of buckets x heads).
EMBEDDING = re.compile(r"^token_types$|(^|_)(embd|embed_tokens|embedding|rel_b)$")
EXPERTS = re.compile(r"_(ch)?exps$")
LORA = ("lora_a", "lora_b")
KEPT_KEYS = re.compile(r"^(general\.[a-z_.]+|split\.(no|count|tensors\.count)|tokenizer\.ggml\.model|"
                       r"[a-z0-9_]+\.(block_count|context_length|embedding_length|feed_forward_length|"
                       r"attention\.head_count|attention\.head_count_kv|expert_count|expert_used_count|vocab_size))$")


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # PyTorch's order: ggml's dims reversed
    type_id: int
    offset: int  # from the start of the file
    nbytes: int

    @property
    def type_name(self) -> str:
        return GGML_TYPES[self.type_id][0]


class _Cursor:
    """Bounded little-endian reads through a read-ahead buffer: nothing past
    ``limit`` (the header's allowance) or the end of the file is read."""

    def __init__(self, handle: BinaryIO, size: int, limit: int):
        self.handle, self.size, self.limit, self.allowed = handle, size, min(size, limit), limit
        self.pos = 0
        self._buf = b""
        self._start = 0

    def remaining(self) -> int:
        return self.size - self.pos

    def _check(self, n: int, what: str) -> None:
        if self.pos + n > self.size:
            raise ModelReadError(f"not a valid GGUF file: {what} runs past the end of the file (truncated?)")
        if self.pos + n > self.limit:
            raise UnsafeInputError(f"GGUF header larger than {self.allowed >> 20} MiB (at {what}): refused")

    def take(self, n: int, what: str) -> bytes:
        self._check(n, what)
        end = self.pos + n
        if not (self._start <= self.pos and end <= self._start + len(self._buf)):
            self.handle.seek(self.pos)
            self._buf = self.handle.read(max(n, READ_AHEAD))
            self._start = self.pos
            if len(self._buf) < n:
                raise ModelReadError(f"not a valid GGUF file: {what} runs past the end of the file (truncated?)")
        out = self._buf[self.pos - self._start:end - self._start]
        self.pos = end
        return out

    def skip(self, n: int, what: str) -> None:
        self._check(n, what)
        self.pos += n

    def scalar(self, fmt: str, size: int, what: str) -> Any:
        return struct.unpack(fmt, self.take(size, what))[0]

    def u32(self, what: str) -> int:
        return int(self.scalar("<I", 4, what))

    def u64(self, what: str) -> int:
        return int(self.scalar("<Q", 8, what))

    def string_length(self, what: str, limit: int | None = None) -> int:
        n = self.u64(what)
        if n > self.remaining() or (limit is not None and n > limit):
            raise ModelReadError(f"not a valid GGUF file: {what} claims {n} bytes"
                                 + (f" (at most {limit})" if limit is not None and n <= self.remaining() else
                                    f", {self.remaining()} remain in the file"))
        return n

    def text(self, what: str, limit: int | None = None) -> str:
        n = self.string_length(what, limit)
        return self.take(n, what).decode("utf-8", errors="replace")


class GGUFFile:
    """One GGUF file's header: metadata and tensor table, checked (use as a
    context manager: the file stays open for the statistics)."""

    def __init__(self, path: Path, options: ReadOptions):
        self.path, self.options = Path(path), options
        self.metadata: dict[str, Any] = {}
        self.tensors: list[TensorInfo] = []
        try:
            self._handle = self.path.open("rb")
        except OSError as exc:
            raise ModelReadError(f"cannot open: {exc.strerror or exc}") from None
        try:
            self.size = os.fstat(self._handle.fileno()).st_size
            self._parse(_Cursor(self._handle, self.size, options.max_header_bytes))
        except OSError as exc:
            self._handle.close()
            raise ModelReadError(f"cannot read: {exc.strerror or exc}") from None
        except BaseException:
            self._handle.close()
            raise

    def __enter__(self) -> GGUFFile:
        return self

    def __exit__(self, *exc) -> None:
        self._handle.close()

    # -- header ---------------------------------------------------------------
    def _parse(self, cur: _Cursor) -> None:
        if cur.take(4, "the magic") != GGUF_MAGIC:
            raise ModelReadError("not a GGUF file (bad magic)")
        version = cur.u32("the version")
        if version not in VERSIONS:
            if version and not version & 0xFFFF:
                raise ModelReadError("a big-endian GGUF file (written for s390x): reglint reads little-endian ones")
            if version == 1:
                raise ModelReadError("GGUF version 1 (before August 2023): convert the model again with llama.cpp")
            raise ModelReadError(f"GGUF version {version}: reglint reads versions 2 and 3")
        self.version = version
        n_tensors = cur.u64("the tensor count")
        n_kv = cur.u64("the key-value count")
        if n_kv * MIN_KV > cur.remaining():
            raise ModelReadError(f"not a valid GGUF file: {n_kv} key-value pairs cannot fit in the file")
        if n_tensors * MIN_TENSOR > cur.remaining():
            raise ModelReadError(f"not a valid GGUF file: {n_tensors} tensors cannot fit in the file")
        if n_tensors > MAX_TENSORS:
            raise UnsafeInputError(f"GGUF file lists {n_tensors} tensors (more than {MAX_TENSORS}): refused")
        if n_kv > MAX_KV:
            raise UnsafeInputError(f"GGUF file lists {n_kv} key-value pairs (more than {MAX_KV}): refused")
        types: dict[str, int] = {}
        for i in range(n_kv):
            key = cur.text(f"key {i}", MAX_KEY)
            if not key:
                raise ModelReadError(f"not a valid GGUF file: key {i} is empty")
            if key in types:
                raise ModelReadError(f"not a valid GGUF file: key {one_line(key, 80)!r} repeats")
            vtype = cur.u32(f"the type of {key}")
            types[key] = vtype
            keep = bool(KEPT_KEYS.match(key))
            value = self._value(cur, vtype, key, 0, keep)
            if keep and value is not None:
                self.metadata[key] = value
        if "general.alignment" in types and types["general.alignment"] != UINT32:
            raise ModelReadError("not a valid GGUF file: general.alignment is not a uint32")
        alignment = self.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise ModelReadError(f"not a valid GGUF file: general.alignment {alignment} is not a power of 2")
        self.alignment = alignment
        raw: list[tuple[str, tuple[int, ...], int, int]] = []
        seen: set[str] = set()
        for i in range(n_tensors):
            name = cur.text(f"the name of tensor {i}", MAX_NAME - 1)
            if name in seen:
                raise ModelReadError(f"not a valid GGUF file: tensor {one_line(name, 80)!r} repeats")
            seen.add(name)
            n_dims = cur.u32(f"the dimension count of {name}")
            if n_dims > MAX_DIMS:
                raise ModelReadError(f"not a valid GGUF file: tensor {one_line(name, 80)!r} has {n_dims} "
                                     f"dimensions (at most {MAX_DIMS})")
            dims = struct.unpack(f"<{n_dims}q", cur.take(8 * n_dims, f"the dimensions of {name}"))
            if any(d < 0 for d in dims):
                raise ModelReadError(f"not a valid GGUF file: tensor {one_line(name, 80)!r} has a negative "
                                     f"dimension {dims}")
            if math.prod(dims) > INT64_MAX:
                raise ModelReadError(f"not a valid GGUF file: tensor {one_line(name, 80)!r} dimensions {dims} "
                                     "overflow 64 bits")
            type_id = cur.u32(f"the type of {name}")
            offset = cur.u64(f"the offset of {name}")
            raw.append((name, tuple(reversed(dims)), type_id, offset))
        self.data_start = -(-cur.pos // alignment) * alignment
        data_bytes = self.size - self.data_start
        if raw and data_bytes < 0:
            raise ModelReadError("not a valid GGUF file: no data section after the tensor table (truncated?)")
        expected = 0
        for name, shape, type_id, offset in raw:
            tensor = self._tensor(name, shape, type_id, offset, data_bytes)
            # llama.cpp lays the tensors' data end to end, each padded to the
            # alignment, and refuses any other offset: overlapping tensors
            # would let a small file claim (and make reglint decode) any
            # number of parameters.
            if offset != expected:
                raise ModelReadError(f"not a valid GGUF file: tensor {one_line(name, 80)!r} starts at offset "
                                     f"{offset}, where the tensors before it end at {expected} (llama.cpp "
                                     "refuses tensors that overlap or leave gaps)")
            expected += -(-tensor.nbytes // alignment) * alignment
            self.tensors.append(tensor)

    def _value(self, cur: _Cursor, vtype: int, key: str, depth: int, keep: bool) -> Any:
        if vtype in SCALARS:
            fmt, size = SCALARS[vtype]
            value = cur.scalar(fmt, size, f"the value of {key}")
            return value if keep else None
        if vtype == STRING:
            n = cur.string_length(f"the string {key}")
            if keep and n <= KEEP_STRING:
                return one_line(cur.take(n, f"the string {key}").decode("utf-8", errors="replace"), 200)
            cur.skip(n, f"the string {key}")
            return None
        if vtype != ARRAY:
            raise ModelReadError(f"not a valid GGUF file: {one_line(key, 80)!r} has value type {vtype}")
        if depth >= MAX_NESTING:
            raise UnsafeInputError(f"GGUF array {one_line(key, 80)!r} nested more than {MAX_NESTING} deep: refused")
        itype = cur.u32(f"the item type of {key}")
        count = cur.u64(f"the item count of {key}")
        if itype not in MIN_ITEM:
            raise ModelReadError(f"not a valid GGUF file: array {one_line(key, 80)!r} has item type {itype}")
        if count * MIN_ITEM[itype] > cur.remaining():
            raise ModelReadError(f"not a valid GGUF file: array {one_line(key, 80)!r} claims {count} items, "
                                 "more than the file holds")
        keep = keep and count <= KEEP_ITEMS
        if itype in SCALARS:
            fmt, size = SCALARS[itype]
            if keep:
                return list(struct.unpack(f"<{count}{fmt[1]}", cur.take(count * size, f"the array {key}")))
            cur.skip(count * size, f"the array {key}")
            return None
        if itype == STRING and not keep:
            for _ in range(count):  # the tokenizer's vocabulary: lengths read, strings skipped
                cur.skip(cur.string_length(f"a string of {key}"), f"a string of {key}")
            return None
        if keep:
            return [self._value(cur, itype, key, depth + 1, keep) for _ in range(count)]
        for _ in range(count):
            self._value(cur, itype, key, depth + 1, False)
        return None

    def _tensor(self, name: str, shape: tuple[int, ...], type_id: int, offset: int, data_bytes: int) -> TensorInfo:
        label = one_line(name, 80)
        count = math.prod(shape)
        known = GGML_TYPES.get(type_id)
        if known is None:  # llama.cpp refuses a type id it does not know, and so its size
            raise ModelReadError(f"not a valid GGUF file: tensor {label!r} has ggml type {type_id}, which reglint "
                                 "does not know (a llama.cpp newer than reglint's table, or a damaged file)")
        type_name, block, block_bytes = known
        row = shape[-1] if shape else 1
        if row % block:
            raise ModelReadError(f"not a valid GGUF file: tensor {label!r} of type {type_name} has rows of {row} "
                                 f"values, not a multiple of its block of {block}")
        nbytes = count // block * block_bytes
        if offset + nbytes > data_bytes:
            raise ModelReadError(f"not a valid GGUF file: tensor {label!r} ({type_name}, {nbytes} bytes at offset "
                                 f"{offset}) runs past the end of the file ({data_bytes} bytes of data)")
        return TensorInfo(name, shape, type_id, self.data_start + offset, nbytes)

    # -- values ---------------------------------------------------------------
    def stats(self, tensor: TensorInfo) -> WeightStats | None:
        """Statistics of the dequantized values, a slab of whole blocks at a time."""
        _, block, block_bytes = GGML_TYPES[tensor.type_id]
        decode = _decoder(tensor.type_id)
        if decode is None:
            return None
        blocks = tensor.nbytes // block_bytes
        # Bounded by the chunk in bytes read and in float32 values made.
        step = max(1, self.options.chunk_bytes // max(block_bytes, 4 * block))
        acc = StatsAccumulator()
        for first in range(0, blocks, step):
            n = min(step, blocks - first)
            try:
                self._handle.seek(tensor.offset + first * block_bytes)
                raw = self._handle.read(n * block_bytes)
            except OSError:
                return None
            if len(raw) != n * block_bytes:
                return None
            try:
                values = decode(raw)
            except (ValueError, IndexError, TypeError, NotImplementedError):
                return None
            acc.add(values)
        return acc.result()


@cache
def _decoder(type_id: int) -> Callable[[bytes], np.ndarray] | None:
    """bytes -> float values for a ggml type; None where neither reglint nor
    the installed ``gguf`` package can dequantize it."""
    name = GGML_TYPES[type_id][0]
    if name in FLOATS:
        fmt = FLOATS[name][1]
        if fmt is None:
            return lambda raw: bfloat16_to_float32(np.frombuffer(raw, dtype="<u2"))
        return lambda raw: np.frombuffer(raw, dtype=fmt)
    if name in INTEGERS:
        return None
    quants = gguf_quants()
    if quants is None:
        return None
    try:
        qtype = quants.GGMLQuantizationType(type_id)
        block_bytes = GGML_TYPES[type_id][2]
        quants.dequantize(np.zeros(block_bytes, dtype=np.uint8), qtype)  # NotImplementedError: not this type
    except (ValueError, NotImplementedError, KeyError, AttributeError):
        return None

    def dequantize(raw: bytes) -> np.ndarray:
        with np.errstate(all="ignore"):  # a hostile scale: NaN and inf are counted, not raised
            return np.asarray(quants.dequantize(np.frombuffer(raw, dtype=np.uint8), qtype))

    return dequantize


@lru_cache(maxsize=1)
def gguf_quants() -> Any:
    """``gguf.quants`` (llama.cpp's Python package), or None where it is not installed."""
    try:
        from gguf import quants
    except ImportError:
        return None
    return quants


# ---------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------
def split_name(name: str) -> tuple[str, str]:
    """(module, variable) of a GGUF tensor name: ``blk.0.attn_q.weight`` ->
    (``blk.0.attn_q``, ``weight``); a name without a suffix is its own
    module's (``blk.0.ssm_d`` -> (``blk.0``, ``ssm_d``), as PyTorch's D of
    the mixer); LoRA adapters' ``X.weight.lora_a`` -> (``X``, ``lora_a``)."""
    module, _, leaf = name.rpartition(".")
    if leaf in LORA and module.endswith(".weight"):
        module = module[:-len(".weight")]
    return (module or name), leaf


def role_of(module: str, leaf: str, rank: int) -> Role:
    """A tensor's role by GGUF's naming convention (gguf-py ``TENSOR_NAMES``)."""
    last = module.rsplit(".", 1)[-1]
    norm = bool(NORM.search(last))
    if leaf == "bias":
        return Role.BETA if norm else Role.BIAS
    if leaf in LORA:
        return Role.KERNEL
    if leaf != "weight":
        return Role.OTHER
    if norm:
        return Role.GAMMA
    if rank == 2 and EMBEDDING.search(last):
        return Role.EMBEDDINGS
    return Role.KERNEL if rank >= 2 else Role.OTHER


# DeepSeek's multi-head latent attention: the converter splits kv_b_proj into
# per-head key and value projections (``attn_k_b``, ``attn_v_b``), 3-D.
PER_HEAD = re.compile(r"^attn_[kv]_b$")


def class_of(module: str, variables: list[Variable]) -> str:
    roles = {v.role for v in variables}
    last = module.rsplit(".", 1)[-1]
    kernel = next((v for v in variables if v.role is Role.KERNEL), None)
    if any(v.name in LORA for v in variables):
        return "LoRA"
    if Role.EMBEDDINGS in roles:
        return "Embedding"
    if Role.GAMMA in roles:
        return "LayerNorm" if Role.BETA in roles else "RMSNorm"
    if kernel is not None:
        if EXPERTS.search(last) and len(kernel.shape) == 3:
            return "Experts"  # a layer's experts' Linear weights stacked: [experts, out, in]
        if PER_HEAD.search(last) and len(kernel.shape) == 3:
            return "Linear"  # DeepSeek's MLA kv_b_proj split per head by the converter: [heads, out, in]
        return {2: "Linear", 3: "Conv1d", 4: "Conv2d"}.get(len(kernel.shape), "Linear")
    return "Module"


def build_gguf_layers(files: list[GGUFFile], options: ReadOptions, notes: list[str]) -> list[Layer]:
    """The layers of a model's GGUF files (one, or every part of a split)."""
    modules: dict[str, list[Variable]] = {}
    set_aside: dict[str, list[str]] = {"skipped": [], "integers": [], "buffers": []}
    undecoded: dict[str, int] = {}
    for file in files:
        for tensor in file.tensors:
            if NOT_PARAMETERS.search(tensor.name.removesuffix(".weight")):
                set_aside["skipped"].append(tensor.name)
                continue
            if tensor.type_name in INTEGERS:
                set_aside["integers"].append(tensor.name)
                continue
            module, var = _variable(tensor)
            if not var.trainable:
                set_aside["buffers"].append(tensor.name)
            if options.weight_stats:
                var.stats = file.stats(tensor)
                if var.stats is None:
                    undecoded[tensor.type_name] = undecoded.get(tensor.type_name, 0) + 1
            modules.setdefault(module, []).append(var)
            if len(modules) > options.max_layers:
                raise ModelReadError(f"more than {options.max_layers} modules: refused")
    layers = []
    for path, variables in modules.items():
        class_name = class_of(path, variables)
        kernel = next((v for v in variables if v.role is Role.KERNEL), None)
        units = kernel.shape[-2] if class_name == "Linear" and kernel is not None and len(kernel.shape) == 2 else None
        layers.append(Layer(name=path.rsplit(".", 1)[-1], path=path, class_name=class_name, variables=variables,
                            units=units))
    notes.extend(_layer_notes(set_aside, undecoded))
    return layers


def _variable(tensor: TensorInfo) -> tuple[str, Variable]:
    """(module, variable) of one float or quantized tensor."""
    module, leaf = split_name(tensor.name)
    buffer = bool(BUFFERS.search(module))
    role = Role.OTHER if buffer else role_of(module, leaf, len(tensor.shape))
    dtype = FLOATS[tensor.type_name][0] if tensor.type_name in FLOATS else f"gguf {tensor.type_name}"
    return module, Variable(name=leaf, role=role, shape=tensor.shape, trainable=not buffer, dtype=dtype,
                            location=tensor.name)


def _first(names: list[str]) -> str:
    return f"{', '.join(names[:3])}{'...' if len(names) > 3 else ''}"


def _layer_notes(set_aside: dict[str, list[str]], undecoded: dict[str, int]) -> list[str]:
    notes = []
    if set_aside["skipped"]:
        notes.append(f"not parameters: {_first(set_aside['skipped'])} "
                     "(rope factors llama.cpp computes from the config)")
    if set_aside["integers"]:
        integers = set_aside["integers"]
        notes.append(f"{len(integers)} integer tensors are not parameters: {_first(integers)}")
    if set_aside["buffers"]:
        notes.append(f"non-trainable: {_first(set_aside['buffers'])} (the router's expert-score correction bias, a "
                     "buffer load balancing moves, not the gradient: no parameter in torch)")
    if undecoded:
        why = "install the gguf package (llama.cpp's) to read them" if gguf_quants() is None else \
            "the installed gguf package does not dequantize them, or their bytes did not decode"
        notes.append(f"{sum(undecoded.values())} tensors stored as {', '.join(sorted(undecoded))}: counted, "
                     f"statistics not read ({why})")
    return notes


def gguf_note(files: list[GGUFFile], undecoded: bool) -> str | None:
    """The note for the weights stored quantized."""
    kinds: dict[str, int] = {}
    for file in files:
        for tensor in file.tensors:
            if tensor.type_name not in FLOATS and tensor.type_name not in INTEGERS:
                kinds[tensor.type_name] = kinds.get(tensor.type_name, 0) + 1
    if not kinds:
        return None
    how = "statistics are of the dequantized values (gguf's dequantize) where they could be read" if undecoded \
        else "statistics are of the dequantized values (gguf's dequantize)"
    return (f"{sum(kinds.values())} weights are stored quantized by llama.cpp (GGUF {', '.join(sorted(kinds))}): "
            f"each counts as the float parameter it stands for, at its float shape; {how}")


MAX_SPLITS = 1024
# Architectures whose converter stores a (1 + w) norm's scale as 1 + w
# (llama.cpp's conversion/gemma.py, nemotron.py, qwen.py's Qwen3-Next,
# minimax.py's M3): the file holds the effective scale, not the parameter.
NORM_PLUS_ONE = {"gemma", "gemma2", "gemma3", "gemma3n", "gemma-embedding", "nemotron", "qwen3next", "minimax-m3"}


def split_parts(path: Path, metadata: dict[str, Any]) -> list[Path]:
    """Every part of the split model ``path`` is one of, in order; just
    ``path`` for a model in one file."""
    count = metadata.get("split.count")
    match = SPLIT_NAME.fullmatch(path.name)
    if not isinstance(count, int) or count <= 1 or match is None or int(match["count"]) != count:
        return [path]
    if count > MAX_SPLITS:
        raise UnsafeInputError(f"a GGUF model split into {count} files (more than {MAX_SPLITS}): refused")
    return [path.with_name(f"{match['stem']}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]


def read_gguf(path: Path, options: ReadOptions) -> Model:
    """A ``.gguf`` file (every part of a split one): parameter counts and
    statistics of the dequantized weights."""
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(GGUFFile(path, options))
        parts = split_parts(path, first.metadata)
        files, missing = [], []
        for part in parts:
            if part == path:
                files.append(first)
            elif part.is_file():
                files.append(stack.enter_context(GGUFFile(part, options)))
            else:
                missing.append(part.name)
        names = [t.name for f in files for t in f.tensors]
        if len(set(names)) != len(names):
            raise ModelReadError("not a valid GGUF split: a tensor name repeats across its parts")
        if not names:
            raise ModelReadError("a GGUF file without tensors (a vocabulary-only file?): no model weights")
        model = Model(path=str(path), format="gguf", framework="pytorch")
        model.layers = build_gguf_layers(files, options, model.notes)
    # the model's metadata is the first part's (gguf-split writes the others with split.* keys alone)
    head = next((f for f in files if f.path.name == parts[0].name), first)
    meta = head.metadata
    name = meta.get("general.name")
    model.name = name if isinstance(name, str) and name else None
    note = gguf_note(files, any("statistics not read" in n for n in model.notes))
    if note:
        model.notes.append(note)
    types: dict[str, int] = {}
    for file in files:
        for tensor in file.tensors:
            types[tensor.type_name] = types.get(tensor.type_name, 0) + 1
    file_type = meta.get("general.file_type")
    architecture = meta.get("general.architecture")
    model.metadata.update({
        "gguf_version": head.version,
        "architecture": architecture,
        "file_type": FILE_TYPES.get(file_type, file_type) if isinstance(file_type, int) else None,
        "quantization_version": meta.get("general.quantization_version"),
        "tensor_types": dict(sorted(types.items())),
        "gguf_metadata": dict(list(meta.items())[:40]),
    })
    if len(parts) > 1:
        read = len(parts) - len(missing)
        model.notes.append(f"a model split into {len(parts)} GGUF files: {read} read together as one model"
                           + (f"; missing: {', '.join(missing[:3])}{'...' if len(missing) > 3 else ''} (the counts "
                              "are of the parts present)" if missing else ""))
    if architecture in NORM_PLUS_ONE:
        model.notes.append(f"{architecture}: llama.cpp's converter stores each (1 + w) norm's scale as 1 + w, so "
                           "the norms' statistics are of the effective scale, not of the trained parameter w")
    model.notes.append("weights only: no optimizer in a GGUF file; pass --optimizer, --learning-rate and "
                       "--weight-decay to check decay")
    return model
