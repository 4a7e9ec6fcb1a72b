"""The variables a built-in Keras layer creates, with their shapes, from its
config and its input shape: what the layer's ``build()`` does, read from
the Keras 3 sources (``keras/src/layers/**``), tf-keras 2
(``tf_keras/src/layers/**``) and, for the old spellings, Keras 1.2.

Names are the ones the readers give stored tensors (``kernel``,
``forward_lstm/recurrent_kernel``, ``query/bias``; Keras 1's ``W_i``), so a
layer's expected and stored variables can be paired by name, and by
position where a generation names them differently.

A dimension the input shape leaves unknown is ``None``; a layer whose
variables cannot be known from its config (a custom class, a quantized
layer) raises ``CannotInfer`` with the reason. A LoRA-enabled layer
(``lora_rank`` in its config) has its base kernel frozen and two trainable
factors beside it (``lora_kernel_a``/``_b``, under the kernel's regularizer).

>>> [(v.name, v.shape) for v in expected_variables("Dense", {"units": 3}, [(None, 4)])]
[('kernel', (4, 3)), ('bias', (3,))]
>>> [(v.name, v.shape) for v in expected_variables("GRU", {"units": 2, "reset_after": True}, [(None, 5, 3)])]
[('kernel', (3, 6)), ('recurrent_kernel', (2, 6)), ('bias', (2, 6))]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from reglint.model import Role
from reglint.readers.keras_layers import (
    attention_variables,
    cell_label,
    child_layers,
    direction_label,
    quantization_mode,
    stacked_cells,
)

Shape = tuple  # of int | None; None: a dimension the config does not fix
K, RK, B = Role.KERNEL, Role.RECURRENT_KERNEL, Role.BIAS


class CannotInfer(Exception):
    """The config does not fix this layer's variables; the message says why."""


class InvalidConfig(CannotInfer):
    """The config sets a size Keras cannot build (``units=-3``,
    ``filters="three"``): the layer's constructor would raise, so Keras
    refuses to load the file."""


# Config sizes every Keras layer that has them requires to be a positive
# integer (Dense's ``units``, Conv's ``filters``, Embedding's
# ``input_dim``/``output_dim``, attention's ``num_heads``/``key_dim``, a
# depthwise ``depth_multiplier``); the constructors raise on anything else.
_POSITIVE_SIZES = ("units", "filters", "input_dim", "output_dim", "num_heads", "key_dim", "depth_multiplier")
# Of those, the ones whose constructor refuses None too, and in which classes (Keras 3.15: Dense(None),
# LSTM(None), Embedding(None, 3), MultiHeadAttention(None, 2) raise; Conv2D(None, 3) and
# depth_multiplier=None construct). Only where the size is the class's own argument: Keras 1/2 configs
# carry the base layer's input_dim=None in LSTM and Dense, which load.
_REQUIRED_SIZES: dict[str, tuple[str, ...] | None] = {
    "units": None, "input_dim": ("Embedding",), "output_dim": ("Embedding",),
    "num_heads": ("MultiHeadAttention",), "key_dim": ("MultiHeadAttention",)}


@dataclass(frozen=True)
class Expected:
    """One variable the config implies."""

    short: str  # the variable's own name (kernel, gamma, W_i)
    role: Role
    shape: Shape
    trainable: bool = True
    prefix: str = ""  # sub-layer prefix (forward_lstm/, query/)
    owner_class: str = ""  # class whose config holds its regularizer/initializer
    owner_config: dict = field(default_factory=dict, compare=False, hash=False, repr=False)
    # A LoRA factor: a .keras file stores the base kernel with it merged in
    # (save_own_variables), and Keras loads the factor as zeros.
    merged: bool = False

    @property
    def name(self) -> str:
        return f"{self.prefix}{self.short}"

    @property
    def known(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    @property
    def size(self) -> int | None:
        return math.prod(self.shape) if self.known else None


def expected_variables(class_name: str, cfg: dict[str, Any], inputs: list[Shape | None]) -> list[Expected]:
    """The variables ``class_name`` builds for ``inputs`` (input shapes,
    batch first, in call order), in ``layer.weights`` order."""
    if not isinstance(cfg, dict):
        raise CannotInfer("config is not an object")
    _refuse_variants(cfg)
    shape = inputs[0] if inputs else None
    builder = _BUILDERS.get(class_name)
    if builder is None:
        from reglint.readers.keras_layers import WEIGHTLESS

        if class_name in WEIGHTLESS or class_name in _SHAPE_ONLY:
            return []
        raise CannotInfer("not a built-in Keras layer reglint knows (a custom or newer class)")
    _check_sizes(class_name, cfg)
    try:
        out = builder(class_name, cfg, shape, inputs)
        if cfg.get("lora_rank"):
            out = _with_lora(class_name, cfg, out)
    except (TypeError, ValueError, ArithmeticError, IndexError, KeyError, AttributeError) as exc:
        # A hand-edited or hostile config: say so instead of failing the read.
        raise CannotInfer(f"{class_name} config not understood ({type(exc).__name__})") from None
    for var in out:
        if any(d is not None and (not isinstance(d, int) or isinstance(d, bool) or d < 0) for d in var.shape):
            raise InvalidConfig(f"{class_name} config gives {var.name} an impossible shape {var.shape}")
    return [_owned(v, class_name, cfg) for v in out]


def _check_sizes(class_name: str, cfg: dict[str, Any]) -> None:
    """InvalidConfig when a size the constructor checks is not a positive integer."""
    for key in _POSITIVE_SIZES:
        value = cfg.get(key)
        if value is None and not (key in cfg and _required(key, class_name)):
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise InvalidConfig(f"{class_name} config's {key}={value!r} is not a positive integer")


def _required(key: str, class_name: str) -> bool:
    if key not in _REQUIRED_SIZES:
        return False
    classes = _REQUIRED_SIZES[key]
    return classes is None or class_name in classes


def _owned(var: Expected, class_name: str, cfg: dict) -> Expected:
    if var.owner_class:
        return var
    return Expected(var.short, var.role, var.shape, var.trainable, var.prefix, class_name, cfg, var.merged)


def lora_base(class_name: str) -> str | None:
    """The variable ``enable_lora()`` freezes and factors, for the Keras 3
    layers that have it (Dense, EinsumDense, Embedding, the convolutions)."""
    if class_name == "Embedding":
        return "embeddings"
    if class_name in ("Dense", "EinsumDense") or class_name in _CONV_CLASSES:
        return "kernel"
    return None


def _with_lora(class_name: str, cfg: dict, out: list[Expected]) -> list[Expected]:
    """``enable_lora(rank)`` as ``build()`` calls it for a saved ``lora_rank``:
    the base is frozen; ``lora_<base>_a`` (base shape with its last axis
    replaced by the rank, he_uniform) and ``lora_<base>_b`` (rank x the last
    axis, zeros) are added after the layer's own variables, both under the
    base's regularizer (keras/src/layers/core/dense.py ``enable_lora``)."""
    base, rank = lora_base(class_name), cfg_int(cfg, "lora_rank")
    if base is None or rank is None or rank < 1:
        raise CannotInfer(f"LoRA on {class_name} (lora_rank {cfg.get('lora_rank')!r}) is not one reglint knows")
    init_key = f"{base}_initializer"
    result: list[Expected] = []
    factors: list[Expected] = []
    for var in out:
        if var.short != base or var.prefix:
            result.append(var)
            continue
        result.append(Expected(var.short, var.role, var.shape, False, var.prefix, class_name, cfg))
        for suffix, shape, init in (("a", (*var.shape[:-1], rank), "he_uniform"),
                                    ("b", (rank, var.shape[-1]), "zeros")):
            factors.append(Expected(f"lora_{base}_{suffix}", var.role, shape, True, var.prefix, class_name,
                                    {**cfg, init_key: init}, merged=True))
    return result + factors


def _refuse_variants(cfg: dict[str, Any]) -> None:
    """Quantized layers replace their variables at run time (Keras 3.1-3.3
    name the policy in a string: "int8_from_float32")."""
    if quantization_mode(cfg) is not None:
        raise CannotInfer("quantized layer: its variables depend on the quantization mode")
    dtype = cfg.get("dtype")
    name = dtype.get("class_name", "") if isinstance(dtype, dict) else str(dtype or "")
    inner_cfg = dtype.get("config") if isinstance(dtype, dict) else None
    inner = inner_cfg.get("name", "") if isinstance(inner_cfg, dict) else ""
    if "Quantized" in name or re.match(r"(int8|int4|float8|gptq|awq)", str(inner)):
        raise CannotInfer("quantized layer: its variables depend on the quantization mode")


# ---------------------------------------------------------------------------
# config readers (Keras 1 spellings beside Keras 2/3)


def cfg_int(cfg: dict, *keys: str) -> int | None:
    for key in keys:
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def tuple_arg(value: Any, rank: int) -> tuple | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * rank
    if isinstance(value, (list, tuple)) and len(value) == rank and all(isinstance(v, int) for v in value):
        return tuple(value)
    return None


def conv_rank(class_name: str) -> int:
    match = re.search(r"([123])D", class_name)
    return int(match.group(1)) if match else 2


def kernel_size(cfg: dict, rank: int) -> tuple | None:
    size = tuple_arg(cfg.get("kernel_size"), rank)
    if size is not None:
        return size
    if rank == 1 and isinstance(cfg.get("filter_length"), int):
        return (cfg["filter_length"],)
    if rank == 2 and isinstance(cfg.get("nb_row"), int) and isinstance(cfg.get("nb_col"), int):
        return cfg["nb_row"], cfg["nb_col"]
    dims = [cfg.get(f"kernel_dim{i}") for i in (1, 2, 3)]
    if rank == 3 and all(isinstance(d, int) for d in dims):
        return tuple(dims)
    return None


def channels_first(cfg: dict) -> bool:
    """``data_format`` (Keras 2/3) or Keras 1's ``dim_ordering`` ("th")."""
    fmt = cfg.get("data_format")
    if isinstance(fmt, str):
        return fmt == "channels_first"
    return cfg.get("dim_ordering") == "th"


def is_keras1(cfg: dict) -> bool:
    """Keras 1 configs name initializers ``init``, regularizers ``W_regularizer``,
    sizes ``nb_filter`` and recurrent variants ``consume_less``; Keras 2 and 3
    never use these keys."""
    return any(key in cfg for key in ("init", "W_regularizer", "nb_filter", "consume_less", "border_mode"))


def use_bias(cfg: dict) -> bool:
    return cfg.get("use_bias", cfg.get("bias", True)) is not False


def channel_dim(shape: Shape | None, cfg: dict) -> int | None:
    if not shape:
        return None
    return shape[1] if channels_first(cfg) and len(shape) > 1 else shape[-1]


def _need(value: int | None, what: str) -> int:
    if value is None:
        raise CannotInfer(f"config has no {what}")
    return value


def _v(short: str, role: Role, shape: Shape, trainable: bool = True) -> Expected:
    return Expected(short, role, tuple(shape), trainable)


# ---------------------------------------------------------------------------
# builders: (class_name, cfg, first input shape, all input shapes) -> [Expected]


def _dense(cls, cfg, shape, inputs):
    units = _need(cfg_int(cfg, "units", "output_dim"), "units")
    d = shape[-1] if shape else cfg_int(cfg, "input_dim")
    k1 = is_keras1(cfg)
    out = [_v("W" if k1 else "kernel", K, (d, units))]
    if use_bias(cfg):
        out.append(_v("b" if k1 else "bias", B, (units,)))
    return out


def _einsum_dense(cls, cfg, shape, inputs):
    kernel, bias = einsum_shapes(cfg.get("equation"), cfg.get("bias_axes"), shape, cfg.get("output_shape"))
    out = [_v("kernel", K, kernel)]
    if bias is not None:
        out.append(_v("bias", B, bias))
    return out


def einsum_shapes(equation: Any, bias_axes: Any, shape: Shape | None,
                  output_shape: Any) -> tuple[Shape, Shape | None]:
    """Kernel and bias shapes of an EinsumDense, as Keras'
    ``_analyze_einsum_string`` computes them."""
    kernel, bias, _ = einsum_analysis(equation, bias_axes, shape, output_shape)
    return kernel, bias


def einsum_analysis(equation: Any, bias_axes: Any, shape: Shape | None,
                    output_shape: Any) -> tuple[Shape, Shape | None, Shape]:
    if not isinstance(equation, str):
        raise CannotInfer("EinsumDense without an equation")
    eq = equation.replace("...", "0")
    left = False
    match = re.fullmatch(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)", eq)
    if not match:
        match = re.fullmatch(r"0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)", eq)
        left = bool(match)
    if not match:
        match = re.fullmatch(r"([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0", eq)
    if not match:
        raise CannotInfer(f"EinsumDense equation {equation!r} is not one Keras accepts")
    in_spec, w_spec, out_spec = match.groups()
    if shape is None:
        shape = (None,) * len(in_spec)
    elided = len(shape) - len(in_spec)
    out_shape = [output_shape] if isinstance(output_shape, int) else list(output_shape or [])
    out_shape.insert(0, shape[0])
    if elided > 0 and left:
        for i in range(1, elided):
            out_shape.insert(1, shape[i])
    elif elided > 0:
        out_shape.extend(shape[len(shape) - elided:])
    if left:
        in_map = {dim: (i + elided) - len(shape) for i, dim in enumerate(in_spec)}
        out_map = {dim: i + elided for i, dim in enumerate(out_spec)}
    else:
        in_map = {dim: i for i, dim in enumerate(in_spec)}
        out_map = {dim: i for i, dim in enumerate(out_spec)}
    kernel = []
    for dim in w_spec:
        if dim in out_map and out_map[dim] < len(out_shape):
            kernel.append(out_shape[out_map[dim]])
        elif dim in in_map:
            kernel.append(shape[in_map[dim]])
        else:
            raise CannotInfer(f"EinsumDense weight axis {dim!r} matches no input or output axis")
    bias = None
    if bias_axes:
        offset = elided if left else 0
        index = {c: out_shape[i + offset] for i, c in enumerate(out_spec) if i + offset < len(out_shape)}
        first = min(out_spec.find(c) for c in bias_axes)
        dims = [index.get(c) if c in bias_axes else 1 for c in out_spec[first:]]
        if not left:
            dims.extend([1] * max(elided, 0))
        bias = tuple(dims)
    return tuple(kernel), bias, tuple(out_shape)


def _conv(cls, cfg, shape, inputs):
    rank = conv_rank(cls)
    size = kernel_size(cfg, rank)
    filters = cfg_int(cfg, "filters", "nb_filter")
    if size is None or filters is None:
        raise CannotInfer(f"{cls} config has no kernel_size/filters")
    ch = channel_dim(shape, cfg)
    if is_keras1(cfg):
        return _conv_keras1(cls, cfg, size, filters, ch)
    groups = cfg_int(cfg, "groups") or 1
    if "Transpose" in cls or cls.startswith("Deconvolution"):
        kernel = (*size, filters, ch)
    else:
        kernel = (*size, ch // groups if ch is not None else None, filters)
    out = [_v("kernel", K, kernel)]
    if use_bias(cfg):
        out.append(_v("bias", B, (filters,)))
    return out


def _conv_keras1(cls, cfg, size, filters, ch):
    if cls.startswith("Deconvolution"):
        raise CannotInfer("Keras 1 Deconvolution layout")
    if len(size) == 1:
        kernel = (size[0], 1, ch, filters)  # Keras 1 ran 1-D convolutions as 2-D ones
    elif channels_first(cfg):
        kernel = (filters, ch, *size)
    else:
        kernel = (*size, ch, filters)
    out = [_v("W", K, kernel)]
    if use_bias(cfg):
        out.append(_v("b", B, (filters,)))
    return out


def _depthwise(cls, cfg, shape, inputs):
    rank = conv_rank(cls)
    size = kernel_size(cfg, rank)
    if size is None:
        raise CannotInfer(f"{cls} config has no kernel_size")
    mult = cfg_int(cfg, "depth_multiplier") or 1
    ch = channel_dim(shape, cfg)
    out = [_v("depthwise_kernel", Role.DEPTHWISE_KERNEL, (*size, ch, mult))]
    if use_bias(cfg):
        out.append(_v("bias", B, (ch * mult if ch is not None else None,)))
    return out


def _separable(cls, cfg, shape, inputs):
    rank = conv_rank(cls)
    size = kernel_size(cfg, rank)
    filters = cfg_int(cfg, "filters", "nb_filter")
    if size is None or filters is None:
        raise CannotInfer(f"{cls} config has no kernel_size/filters")
    mult = cfg_int(cfg, "depth_multiplier") or 1
    ch = channel_dim(shape, cfg)
    expanded = ch * mult if ch is not None else None
    out = [_v("depthwise_kernel", Role.DEPTHWISE_KERNEL, (*size, ch, mult)),
           _v("pointwise_kernel", Role.POINTWISE_KERNEL, (1,) * rank + (expanded, filters))]
    if use_bias(cfg):
        out.append(_v("bias", B, (filters,)))
    return out


def _locally_connected(cls, cfg, shape, inputs):

    rank = conv_rank(cls)
    size = kernel_size(cfg, rank)
    filters = cfg_int(cfg, "filters", "nb_filter")
    strides = tuple_arg(cfg.get("strides", cfg.get("subsample", 1)), rank) or (1,) * rank
    if size is None or filters is None:
        raise CannotInfer(f"{cls} config has no kernel_size/filters")
    first = channels_first(cfg)
    if shape is None:
        shape = (None,) * (rank + 2)
    spatial = shape[2:] if first else shape[1:-1]
    ch = shape[1] if first else shape[-1]
    padding = cfg.get("padding", "valid")
    outs = tuple(conv_length(n, k, padding, s) for n, k, s in zip(spatial, size, strides, strict=False))
    impl = cfg_int(cfg, "implementation") or 1
    if impl == 1:
        kernel = (_prod(outs), _prod((*size, ch)), filters)
    elif impl == 2:
        kernel = ((ch, *tuple(spatial), filters, *outs)) if first else ((*tuple(spatial), ch, *outs, filters))
    else:
        raise CannotInfer(f"{cls} implementation={impl} stores a sparse kernel")
    out = [_v("kernel", K, kernel)]
    if use_bias(cfg):
        out.append(_v("bias", B, (*outs, filters)))
    return out


def _prod(dims) -> int | None:
    return math.prod(dims) if all(isinstance(d, int) for d in dims) else None


def _batch_norm(cls, cfg, shape, inputs):
    if "mode" in cfg and "momentum" in cfg and "center" not in cfg:  # Keras 1
        dim = _axis_dims(shape, cfg.get("axis", -1))[0] if shape else None
        return [_v("gamma", Role.GAMMA, (dim,)), _v("beta", Role.BETA, (dim,)),
                _v("running_mean", Role.MOVING_MEAN, (dim,), False),
                _v("running_std", Role.MOVING_VARIANCE, (dim,), False)]
    axis = cfg.get("axis", -1)
    if shape is None:
        param = (None,)
    elif isinstance(axis, list) and len(axis) > 1:
        dims = dict(zip([a % len(shape) for a in axis], _axis_dims(shape, axis), strict=False))
        param = tuple(dims.get(i, 1) for i in range(len(shape)))
    else:
        param = tuple(_axis_dims(shape, axis))
    if cfg.get("virtual_batch_size"):
        raise CannotInfer("BatchNormalization with virtual_batch_size")
    out = []
    if cfg.get("scale", True) is not False:
        out.append(_v("gamma", Role.GAMMA, param))
    if cfg.get("center", True) is not False:
        out.append(_v("beta", Role.BETA, param))
    out += [_v("moving_mean", Role.MOVING_MEAN, param, False),
            _v("moving_variance", Role.MOVING_VARIANCE, param, False)]
    if cfg.get("renorm"):
        out += [_v("moving_stddev", Role.OTHER, param, False), _v("renorm_mean", Role.OTHER, param, False),
                _v("renorm_stddev", Role.OTHER, param, False)]
    return out


def _axis_dims(shape: Shape, axis: Any) -> list:
    axes = axis if isinstance(axis, list) else [axis]
    dims = []
    for a in axes:
        if not isinstance(a, int) or not -len(shape) <= a < len(shape):
            raise CannotInfer(f"axis {axis!r} does not fit an input of rank {len(shape)}")
        dims.append(shape[a])
    return dims


def _layer_norm(cls, cfg, shape, inputs):
    axis = cfg.get("axis", -1)
    if shape is None:
        param = (None,) if not isinstance(axis, list) else (None,) * len(axis)
    else:
        axes = sorted(a % len(shape) for a in (axis if isinstance(axis, list) else [axis])) \
            if all(isinstance(a, int) for a in (axis if isinstance(axis, list) else [axis])) else None
        if axes is None:
            raise CannotInfer(f"axis {axis!r} is not an integer")
        param = tuple(shape[a] for a in axes)
    if cls == "RMSNormalization":
        return [_v("scale", Role.GAMMA, param)]
    rms = bool(cfg.get("rms_scaling"))
    out = []
    if cfg.get("scale", True) is not False or rms:
        out.append(_v("gamma", Role.GAMMA, param))
    if cfg.get("center", True) is not False and not rms:
        out.append(_v("beta", Role.BETA, param))
    return out


def _group_norm(cls, cfg, shape, inputs):
    axis = cfg.get("axis", -1)
    dim = _axis_dims(shape, axis)[0] if shape else None
    out = []
    if cfg.get("scale", True) is not False:
        out.append(_v("gamma", Role.GAMMA, (dim,)))
    if cfg.get("center", True) is not False:
        out.append(_v("beta", Role.BETA, (dim,)))
    return out


def _normalization(cls, cfg, shape, inputs):
    """The preprocessing Normalization layer: adapted mean, variance and a
    sample count, all non-trainable; none when the config fixes mean/variance."""
    if cfg.get("mean") is not None:
        return []
    axis = cfg.get("axis", -1)
    axes = [] if axis is None else (axis if isinstance(axis, list) else [axis])
    if shape is None:
        kept: tuple = (None,) * len(axes)
    else:
        kept = tuple(shape[a % len(shape)] for a in sorted(a % len(shape) for a in axes))
    return [_v("mean", Role.MOVING_MEAN, kept, False), _v("variance", Role.MOVING_VARIANCE, kept, False),
            _v("count", Role.OTHER, (), False)]


def _embedding(cls, cfg, shape, inputs):
    n = _need(cfg_int(cfg, "input_dim"), "input_dim")
    d = _need(cfg_int(cfg, "output_dim"), "output_dim")
    return [_v("W" if "init" in cfg else "embeddings", Role.EMBEDDINGS, (n, d))]


def _prelu(cls, cfg, shape, inputs):
    if shape is None:
        raise CannotInfer("PReLU needs its input shape")
    param = list(shape[1:])
    shared = cfg.get("shared_axes")
    for axis in ([shared] if isinstance(shared, int) else shared or []):
        if isinstance(axis, int) and 1 <= axis <= len(param):
            param[axis - 1] = 1
    return [_v("alpha", Role.ALPHA, tuple(param))]


def _attention(cls, cfg, shape, inputs):
    """Attention: scalars; AdditiveAttention: a scale per feature of the
    query (Keras 3) or value (tf-keras), the same width in a valid call."""
    out = []
    for name in attention_variables(cls, cfg):
        if cls == "AdditiveAttention":
            width = shape[-1] if shape else (inputs[1][-1] if len(inputs) > 1 and inputs[1] else None)
            out.append(_v(name, Role.OTHER, (width,)))
        else:
            out.append(_v(name, Role.OTHER, ()))
    return out


# ---- recurrent -------------------------------------------------------------

_GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1, "CuDNNLSTM": 4, "CuDNNGRU": 3,
          "LSTMCell": 4, "GRUCell": 3, "SimpleRNNCell": 1}
_KERAS1_GATES = {"LSTM": "icfo", "GRU": "zrh"}


def _rnn(cls, cfg, shape, inputs):
    units = _need(cfg_int(cfg, "units", "output_dim"), "units")
    base = cls.replace("Cell", "")
    gates = _GATES[cls]
    d = shape[-1] if shape else cfg_int(cfg, "input_dim")
    if is_keras1(cfg):
        return _rnn_keras1(base, cfg, d, units)
    out = [_v("kernel", K, (d, gates * units)), _v("recurrent_kernel", RK, (units, gates * units))]
    if cls.startswith("CuDNN"):
        return [*out, _v("bias", B, (2 * gates * units,))]
    if use_bias(cfg):
        two = base == "GRU" and cfg.get("reset_after", False)
        out.append(_v("bias", B, (2, gates * units) if two else (gates * units,)))
    return out


def _rnn_keras1(base: str, cfg: dict, d: int | None, units: int) -> list[Expected]:
    gates = _KERAS1_GATES.get(base)
    if gates is None or cfg.get("consume_less") == "gpu":
        n = len(gates) if gates else 1
        return [_v("W", K, (d, n * units)), _v("U", RK, (units, n * units)), _v("b", B, (n * units,))]
    out = []
    for gate in gates:
        out += [_v(f"W_{gate}", K, (d, units)), _v(f"U_{gate}", RK, (units, units)), _v(f"b_{gate}", B, (units,))]
    return out


def _conv_lstm(cls, cfg, shape, inputs):
    rank = conv_rank(cls)
    size = kernel_size(cfg, rank)
    filters = cfg_int(cfg, "filters")
    if size is None or filters is None:
        raise CannotInfer(f"{cls} config has no kernel_size/filters")
    ch = None
    if shape is not None:
        ch = shape[2] if channels_first(cfg) else shape[-1]
    out = [_v("kernel", K, (*size, ch, 4 * filters)), _v("recurrent_kernel", RK, (*size, filters, 4 * filters))]
    if use_bias(cfg):
        out.append(_v("bias", B, (4 * filters,)))
    return out


def _generic_rnn(cls, cfg, shape, inputs):
    children = child_layers(cls, cfg)
    if "cell" not in children:
        raise CannotInfer("RNN without a readable cell")
    cell_class, cell_cfg = children["cell"]
    if cell_class == "StackedRNNCells":
        return _stacked_cells(cell_cfg, shape)
    if cell_class not in _GATES:
        raise CannotInfer(f"RNN cell {cell_class} is not a built-in cell reglint knows")
    return [_owned(v, cell_class, cell_cfg) for v in _rnn(cell_class, cell_cfg, shape, inputs)]


def _stacked_cells(cfg: dict, shape: Shape | None) -> list[Expected]:
    """``StackedRNNCells``: each cell reads the previous one's output
    (its ``units``), the first the sequence's features."""
    out: list[Expected] = []
    width = shape[-1] if shape else None
    for key, (cell_class, cell_cfg) in stacked_cells(cfg).items():
        if cell_class not in _GATES:
            raise CannotInfer(f"stacked RNN cell {cell_class} is not a built-in cell reglint knows")
        prefix = cell_label(cell_cfg, key) + "/"
        for var in _rnn(cell_class, cell_cfg, (None, None, width), []):
            out.append(Expected(var.short, var.role, var.shape, var.trainable, prefix, cell_class, cell_cfg))
        width = cfg_int(cell_cfg, "units")
    return out


# ---- wrappers --------------------------------------------------------------


def _bidirectional(cls, cfg, shape, inputs):
    children = child_layers(cls, cfg)
    out = []
    for key in ("forward_layer", "backward_layer"):
        child_class, child_cfg = children[key]
        prefix = direction_label(key.split("_")[0], child_cfg) + "/"
        for var in expected_variables(child_class, child_cfg, [shape]):
            out.append(Expected(var.short, var.role, var.shape, var.trainable, prefix + var.prefix,
                                var.owner_class, var.owner_config))
    return out


def _time_distributed(cls, cfg, shape, inputs):
    child_class, child_cfg = child_layers(cls, cfg)["layer"]
    inner = (shape[0], *tuple(shape[2:])) if shape and len(shape) > 2 else None
    return expected_variables(child_class, child_cfg, [inner])


def _spectral_normalization(cls, cfg, shape, inputs):
    """The wrapped layer's variables, then ``vector_u`` (1 x the kernel's
    last axis, untrained); the wrapper's own reference to the kernel is
    that variable (keras/src/layers/normalization/spectral_normalization.py)."""
    child_class, child_cfg = child_layers(cls, cfg)["layer"]
    inner = expected_variables(child_class, child_cfg, [shape])
    kernel = next((v for v in inner if v.role in (K, Role.EMBEDDINGS)), None)
    if kernel is None:
        raise CannotInfer(f"SpectralNormalization around a {child_class or '?'}, which has no kernel")
    return [*inner, _v("vector_u", Role.OTHER, (1, kernel.shape[-1]), trainable=False)]


def _multi_head_attention(cls, cfg, shape, inputs):
    """Query, key, (gate,) value and output projections, each an EinsumDense
    built as MultiHeadAttention.build does (``_build_proj_equation``)."""
    heads = _need(cfg_int(cfg, "num_heads"), "num_heads")
    key_dim = _need(cfg_int(cfg, "key_dim"), "key_dim")
    value_dim = cfg_int(cfg, "value_dim") or key_dim
    query = inputs[0] if inputs else None
    value = inputs[1] if len(inputs) > 1 and inputs[1] is not None else query
    key = inputs[2] if len(inputs) > 2 and inputs[2] is not None else value
    bias = cfg.get("use_bias", True) is not False
    proj = child_layers(cls, cfg)["query_dense"][1]
    out_dims = cfg.get("output_shape")
    out_dims = [out_dims] if isinstance(out_dims, int) else list(out_dims or [query[-1] if query else None])
    parts = [("query", query, (heads, key_dim))]
    parts.append(("key", key, (heads, key_dim)))
    if cfg.get("use_gate"):
        parts.append(("gate", query, (heads, value_dim)))
    parts.append(("value", value, (heads, value_dim)))
    out = []
    for name, source, tail in parts:
        width = source[-1] if source else None
        out.append(Expected("kernel", K, (width, *tail), True, f"{name}/", "EinsumDense", proj))
        if bias:
            out.append(Expected("bias", B, tail, True, f"{name}/", "EinsumDense", proj))
    out.append(Expected("kernel", K, (heads, value_dim, *tuple(out_dims)), True, "attention_output/",
                        "EinsumDense", proj))
    if bias:
        out.append(Expected("bias", B, tuple(out_dims), True, "attention_output/", "EinsumDense", proj))
    return out


_CONV_CLASSES = ("Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D",
                 "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "Convolution2DTranspose",
                 "Convolution3DTranspose", "Deconvolution2D", "Deconvolution3D")


def _grouped_query_attention(cls, cfg, shape, inputs):
    """GroupedQueryAttention.build: query (and gate) project to
    ``num_query_heads`` heads, key and value to ``num_key_value_heads``, the
    output back to the query's width; biases per head unless ``use_bias``
    is off (keras/src/layers/attention/grouped_query_attention.py)."""
    head_dim = _need(cfg_int(cfg, "head_dim"), "head_dim")
    q_heads = _need(cfg_int(cfg, "num_query_heads"), "num_query_heads")
    kv_heads = _need(cfg_int(cfg, "num_key_value_heads"), "num_key_value_heads")
    query = inputs[0] if inputs else None
    value = inputs[1] if len(inputs) > 1 and inputs[1] is not None else query
    key = inputs[2] if len(inputs) > 2 and inputs[2] is not None else value
    feature = query[-1] if query else None
    proj = child_layers(cls, cfg)["query_dense"][1]
    parts = [("query", query, q_heads), ("key", key, kv_heads)]
    if cfg.get("use_gate"):
        parts.append(("gate", query, q_heads))
    parts.append(("value", value, kv_heads))
    out = []
    for name, source, heads in parts:
        out.append(Expected("kernel", K, (source[-1] if source else None, heads, head_dim), True, f"{name}/",
                            "EinsumDense", proj))
        if use_bias(cfg):
            out.append(Expected("bias", B, (heads, head_dim), True, f"{name}/", "EinsumDense", proj))
    out.append(Expected("kernel", K, (q_heads, head_dim, feature), True, "attention_output/", "EinsumDense", proj))
    if use_bias(cfg):
        out.append(Expected("bias", B, (feature,), True, "attention_output/", "EinsumDense", proj))
    return out


# Classes that own no variables but whose output shape reglint computes.
_SHAPE_ONLY = {"InputLayer", "Normalization"}

_BUILDERS = {
    "Dense": _dense, "EinsumDense": _einsum_dense,
    "Embedding": _embedding, "PReLU": _prelu, "Normalization": _normalization,
    "Attention": _attention, "AdditiveAttention": _attention,
    "BatchNormalization": _batch_norm, "SyncBatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm, "RMSNormalization": _layer_norm, "GroupNormalization": _group_norm,
    "SimpleRNN": _rnn, "LSTM": _rnn, "GRU": _rnn, "CuDNNLSTM": _rnn, "CuDNNGRU": _rnn,
    "SimpleRNNCell": _rnn, "LSTMCell": _rnn, "GRUCell": _rnn, "RNN": _generic_rnn,
    "ConvLSTM1D": _conv_lstm, "ConvLSTM2D": _conv_lstm, "ConvLSTM3D": _conv_lstm,
    "Bidirectional": _bidirectional, "TimeDistributed": _time_distributed,
    "SpectralNormalization": _spectral_normalization,
    "MultiHeadAttention": _multi_head_attention,
    "GroupQueryAttention": _grouped_query_attention, "GroupedQueryAttention": _grouped_query_attention,
    "LocallyConnected1D": _locally_connected, "LocallyConnected2D": _locally_connected,
}
for _name in _CONV_CLASSES:
    _BUILDERS[_name] = _conv
for _name in ("DepthwiseConv1D", "DepthwiseConv2D"):
    _BUILDERS[_name] = _depthwise
for _name in ("SeparableConv1D", "SeparableConv2D", "SeparableConvolution1D", "SeparableConvolution2D"):
    _BUILDERS[_name] = _separable


def conv_length(length: int | None, size: int, padding: Any, stride: int, dilation: int = 1) -> int | None:
    """``conv_utils.conv_output_length`` (valid, same, causal, full)."""
    if length is None:
        return None
    dilated = size + (size - 1) * (dilation - 1)
    padding = {"valid": "valid", "same": "same"}.get(padding, padding) if isinstance(padding, str) else "valid"
    if padding in ("same", "causal"):
        out = length
    elif padding == "full":
        out = length + dilated - 1
    else:
        out = length - dilated + 1
    return (out + stride - 1) // stride
