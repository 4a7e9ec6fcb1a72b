"""Models quantized by PyTorch's own ``torch.ao.quantization``
(``quantize_dynamic``; ``prepare``/``convert``), from a ``torch.save``'d
state dict or a TorchScript archive.

Their weights are ``torch._utils._rebuild_qtensor`` records
(``torch_pickle.QTensorRef``): int8 codes with a per-tensor or per-channel
``(scale, zero_point)``. Each counts as the float parameter it stands for,
at its float shape, with statistics of ``(q - zero_point) * scale``.

Where torch puts them, read as data:

* a quantized Linear keeps weight and bias in ``_packed_params``: in a state
  dict the entry ``X._packed_params._packed_params`` is the tuple
  ``(weight, bias)``; in TorchScript ``X._packed_params`` is a
  ``LinearPackedParams`` whose ``_packed_params`` is a
  ``__torch__.torch.classes.quantized.LinearPackedParamsBase`` whose BUILD
  state is that tuple;
* a quantized Conv keeps them as ``X.weight``/``X.bias`` in a state dict,
  and in TorchScript inside its ``__getstate__`` tuple (``..., padding_mode,
  w, b, scale, zero_point, training``).

They are named as the float module's (``0.weight``, ``0.bias``) so layers
match the unquantized model's. The ``scale``/``zero_point`` entries of a
quantized module (its output's quantization, set by calibration) and
``_packed_params.dtype`` are not parameters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from reglint.errors import ModelReadError
from reglint.model import WeightStats
from reglint.readers.named_tensor import MAX_CONSTANT_VALUES, NamedTensor
from reglint.readers.tensor_stats import StatsAccumulator
from reglint.readers.torch_pickle import QRANGES, Opaque, QTensorRef, Quantizer, TensorRef

PACKED = "._packed_params._packed_params"
PACKED_DTYPE = "._packed_params.dtype"
NOT_PARAMETERS = (".scale", ".zero_point", PACKED_DTYPE)
# TorchScript's C++ classes (packed params): data, not modules to walk.
CUSTOM_CLASSES = "__torch__.torch.classes."
CODE_DTYPES = {"qint8": np.int8, "quint8": np.uint8, "qint32": np.int32}


def expand_state_dict(state_dict: dict) -> dict:
    """``state_dict`` with packed (weight, bias) tuples as ``X.weight``/
    ``X.bias`` and quantized modules' scale/zero-point entries dropped;
    itself when it holds no quantized tensor."""
    if not any(isinstance(v, QTensorRef) or _packed(v) for v in state_dict.values()):
        return state_dict
    out: dict = {}
    for key, value in state_dict.items():
        if isinstance(key, str) and is_packed_entry(key, value):
            module = key[:-len(PACKED)]
            out[f"{module}.weight"], out[f"{module}.bias"] = value[0], value[1]
        elif not (isinstance(key, str) and _quantization_constant(key, value)):
            out[key] = value
    return out


def _quantization_constant(key: str, value) -> bool:
    """A quantized module's output ``scale``/``zero_point`` (one value: 0-d,
    or [1] for QuantStub) or a packed Linear's dtype; a float module's own
    ``scale`` of more values (an RMSNorm's [D]) is its parameter."""
    if key.endswith(PACKED_DTYPE):
        return True
    return key.endswith(NOT_PARAMETERS) and not (isinstance(value, TensorRef) and value.numel > 1)


def is_packed_entry(key: str, value) -> bool:
    return key.endswith(PACKED) and _packed(value)


def _packed(value) -> bool:
    return (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], QTensorRef)
            and (value[1] is None or isinstance(value[1], TensorRef)))


def script_weights(record: Opaque) -> dict[str, TensorRef]:
    """A TorchScript quantized module's weight and bias, by the float
    module's names; {} for any other module."""
    state = record.state
    if isinstance(state, tuple):  # Conv's __getstate__: (..., w, b, scale, zero_point, training)
        found = [i for i, v in enumerate(state) if isinstance(v, QTensorRef)]
        if len(found) == 1 and found[0] + 1 < len(state):
            return _pair(state[found[0]], state[found[0] + 1])
        return {}
    holder = record.fields().get("_packed_params")
    inner = holder.fields().get("_packed_params") if isinstance(holder, Opaque) else None
    if isinstance(inner, Opaque) and _packed(inner.state):
        return _pair(*inner.state)
    return {}


def _pair(weight, bias) -> dict[str, TensorRef]:
    return {"weight": weight, **({"bias": bias} if isinstance(bias, TensorRef) else {})}


def is_custom_class(value) -> bool:
    return isinstance(value, Opaque) and value.module.startswith(CUSTOM_CLASSES)


def quantized_tensor(name: str, ref: QTensorRef, archive) -> NamedTensor:
    return NamedTensor(name, ref.shape, ref.dtype, ref.alias_key(), lambda: dequantized_stats(archive, ref),
                       quantized=True)


def kinds(refs: Iterable[TensorRef]) -> dict[str, int]:
    """How many weights of each scheme: {"per-channel affine qint8": 2}."""
    out: dict[str, int] = {}
    for ref in refs:
        if isinstance(ref, QTensorRef) and ref.quantizer is not None:
            kind = f"{ref.quantizer.scheme.replace('per_', 'per-').replace('_affine', ' affine')} {ref.dtype}"
            out[kind] = out.get(kind, 0) + 1
    return out


def note(found: dict[str, int]) -> str:
    listed = ", ".join(f"{kind} ({count})" for kind, count in sorted(found.items()))
    return (f"{sum(found.values())} weights are stored quantized by PyTorch quantization (torch.ao): {listed}; "
            "each counts as the float parameter it stands for, at its float shape; the modules' scale and "
            "zero_point are not parameters; statistics are of the dequantized values (q - zero_point) * scale")


def dequantized_stats(archive, ref: QTensorRef) -> WeightStats | None:
    """Statistics of ``(q - zero_point) * scale``, read ``chunk_bytes`` of
    float64 at a time (never a whole row: a [1, 2**31] weight is 16 GiB of
    them); None when the codes or constants cannot be read."""
    quantizer = ref.quantizer
    if quantizer is None:
        return None
    constants = _constants(archive, quantizer, ref.shape, ref.dtype)
    if constants is None:
        return None
    scales, zero_points = constants
    axis = quantizer.axis if quantizer.scheme == "per_channel_affine" else None
    inner = math.prod(ref.shape[axis + 1:]) if axis is not None else 1
    channels = ref.shape[axis] if axis is not None else 1
    itemsize = ref.itemsize
    code_dtype = np.dtype(CODE_DTYPES[ref.dtype]).newbyteorder("<")
    step = max(1, archive.options.chunk_bytes // 8)
    acc = StatsAccumulator()
    for start in range(0, ref.numel, step):
        stop = min(ref.numel, start + step)
        raw = archive.stored_bytes(ref, start * itemsize, stop * itemsize)
        if raw is None or raw.size != (stop - start) * itemsize:
            return None
        channel = None if axis is None else (np.arange(start, stop, dtype=np.int64) // inner) % channels
        acc.add(_dequantize(raw.view(code_dtype), scales, zero_points, channel))
    return acc.result()


def _dequantize(codes: np.ndarray, scales: np.ndarray, zero_points: np.ndarray,
                channel: np.ndarray | None) -> np.ndarray:
    """Flat ``codes``; ``channel`` None: one scale for all; else each
    code's index along the quantizer's axis."""
    if channel is not None:
        scales, zero_points = scales[channel], zero_points[channel]
    # as torch's dequantize: (float(q) - zero_point) * double scale, rounded to float32
    return ((codes.astype(np.float64) - zero_points) * scales).astype(np.float32)


def _constants(archive, quantizer: Quantizer, shape: tuple[int, ...],
               dtype: str) -> tuple[np.ndarray, np.ndarray] | None:
    if not isinstance(quantizer.scale, TensorRef) or not isinstance(quantizer.zero_point, TensorRef):
        return (np.array([quantizer.scale], dtype=np.float64), np.array([quantizer.zero_point], dtype=np.float64))
    scale, zero_point = quantizer.scale, quantizer.zero_point
    if scale.numel > MAX_CONSTANT_VALUES or scale.dtype not in ("float32", "float64") \
            or zero_point.dtype not in ("int64", "int32", "float32", "float64"):
        return None
    scales, zero_points = archive.values(scale), archive.values(zero_point)
    if scales is None or zero_points is None or scales.size != shape[quantizer.axis]:
        return None
    scales, zero_points = scales.reshape(-1).astype(np.float64), zero_points.reshape(-1).astype(np.float64)
    # torch's quantizers hold positive scales and zero points among the codes: anything else
    # would be dequantized into numbers no model has (a NaN channel, one shifted 1000 steps)
    if not np.all(np.isfinite(scales) & (scales > 0)):
        raise ModelReadError(f"a per-channel quantized tensor of shape {shape} has a scale that is not a positive "
                             "number: refused rather than dequantized")
    low, high = QRANGES[dtype]
    if not np.all((zero_points >= low) & (zero_points <= high) & (zero_points == np.round(zero_points))):
        raise ModelReadError(f"a per-channel quantized tensor of shape {shape} has a zero point that is not a "
                             f"{dtype} value ({low}..{high}): refused rather than dequantized")
    return scales, zero_points
