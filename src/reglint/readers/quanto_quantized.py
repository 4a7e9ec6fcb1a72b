"""optimum-quanto's quantized weights in a state dict (``quantize(model,
weights=qint8 | qint4); freeze(model); save_file(model.state_dict())``).

qint8
    ``X.weight._data`` int8 [out, in] and ``X.weight._scale`` [out, 1]:
    ``value = code * scale``.
qint4
    ``X.weight._data._data`` uint8: the codes of a [rows, group] view of the
    weight (``group_size`` 128 where the input width allows, else the weight
    itself), two a byte, the first half of the rows in the low nibbles and
    the second half in the high; ``X.weight._scale`` and ``X.weight._shift``
    [rows, 1]: ``value = code * scale - shift``.

Each weight counts as the float parameter it stands for (at the shape of
the view its codes are stored in: the file does not keep the grouped
weight's own); ``_scale``, ``_shift`` and the activation scales
(``input_scale``, ``output_scale``) are quantization constants. Held to
quanto's own ``dequantize()`` (``fixtures/make_torch_fixtures.py``).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from reglint.model import WeightStats
from reglint.readers.named_tensor import FLOAT_CONSTANTS as FLOATS
from reglint.readers.named_tensor import NamedTensor, constant_floats
from reglint.readers.tensor_stats import StatsAccumulator

ACTIVATION_SCALES = ("input_scale", "output_scale")


def dequantized_quanto(tensors: list[NamedTensor], source,
                       chunk_bytes: int) -> tuple[list[NamedTensor], dict[str, int]]:
    """``tensors`` with each quanto weight as the float parameter it stands
    for and its constants dropped; how many of each kind were replaced."""
    by_name = {t.name: t for t in tensors}
    replaced: dict[str, NamedTensor] = {}
    dropped: set[str] = set()
    kinds: dict[str, int] = {}
    for tensor in tensors:
        for suffix, kind in ((".weight._data._data", "qint4"), (".weight._data", "qint8")):
            if not tensor.name.endswith(suffix):
                continue
            module = tensor.name[:-len(suffix)]
            scale = by_name.get(f"{module}.weight._scale")
            shift = by_name.get(f"{module}.weight._shift")
            found = _weight(tensor, kind, scale, shift, source, chunk_bytes)
            if found is None:
                break
            replaced[tensor.name] = found
            dropped |= {f"{module}.weight._scale", f"{module}.weight._shift",
                        *(f"{module}.{name}" for name in ACTIVATION_SCALES)}
            kinds[f"quanto {kind}"] = kinds.get(f"quanto {kind}", 0) + 1
            break
    if not replaced:
        return tensors, {}
    out = [replaced.get(t.name, t) for t in tensors if t.name in replaced or t.name not in dropped]
    return out, kinds


def _weight(codes: NamedTensor, kind: str, scale: NamedTensor | None, shift: NamedTensor | None, source,
            chunk_bytes: int) -> NamedTensor | None:
    if len(codes.shape) != 2 or scale is None or scale.dtype not in FLOATS:
        return None
    rows, width = codes.shape
    if kind == "qint8":
        if codes.dtype != "int8" or math.prod(scale.shape) != rows:
            return None
        shape = (rows, width)
    else:
        if codes.dtype != "uint8" or shift is None or shift.dtype not in FLOATS:
            return None
        shape = (rows * 2, width)  # two rows of codes a byte row
        if math.prod(scale.shape) != shape[0] or math.prod(shift.shape) != shape[0]:
            return None
    name = codes.name[:-len("._data._data")] if kind == "qint4" else codes.name[:-len("._data")]

    def stats() -> WeightStats | None:
        return _stats(codes, kind, shape, scale, shift, source, chunk_bytes)

    return replace(codes, name=name, shape=shape, dtype=kind, quantized=True, read_stats=stats)


def _stats(codes: NamedTensor, kind: str, shape: tuple[int, int], scale: NamedTensor, shift: NamedTensor | None,
           source, chunk_bytes: int) -> WeightStats | None:
    rows, width = shape
    scales = constant_floats(source, scale)
    shifts = constant_floats(source, shift) if shift is not None else np.zeros(rows, dtype=np.float32)
    if scales is None or shifts is None:
        return None
    acc = StatsAccumulator()
    stored_rows = codes.shape[0]
    step = max(1, chunk_bytes // max(1, 8 * width))
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, stored_rows, step):
            stop = min(stored_rows, start + step)
            raw = source.stored_bytes(codes.name, start * width, stop * width)
            if raw is None or raw.size != (stop - start) * width:
                return None
            block = raw.reshape(stop - start, width)
            if kind == "qint8":
                acc.add(block.view(np.int8).astype(np.float32) * scales[start:stop, None])
                continue
            half = rows // 2  # low nibbles: rows start:stop; high nibbles: rows half+start:half+stop
            for nibble, first in ((block & 0x0F, start), (block >> 4, half + start)):
                acc.add(nibble.astype(np.float32) * scales[first:first + stop - start, None]
                        - shifts[first:first + stop - start, None])
    return acc.result()
