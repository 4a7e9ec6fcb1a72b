"""Output shapes of Keras layers from their config and input shapes, as each
layer's ``compute_output_shape`` gives them (Keras 3, tf-keras 2 and the
Keras 1 spellings): what carries an input shape through a Sequential model
or a functional graph to the layers whose variables depend on it.

Shapes are tuples with the batch first; ``None`` is an unknown dimension.
``output_shapes`` returns one shape per output, or None when the layer's
output cannot be known from its config (a Lambda without ``output_shape``,
a custom class, a TensorFlow op layer).

>>> output_shapes("Conv2D", {"filters": 8, "kernel_size": [3, 3], "padding": "valid"}, [(None, 28, 28, 1)])
[(None, 26, 26, 8)]
>>> output_shapes("Flatten", {}, [(None, 26, 26, 8)])
[(None, 5408)]
"""

from __future__ import annotations

import math
from typing import Any

from reglint.readers.keras_layers import MHA_LIKE, child_layers
from reglint.readers.keras_objects import is_tensor_ref
from reglint.readers.keras_shapes import (
    CannotInfer,
    Shape,
    cfg_int,
    channels_first,
    conv_length,
    conv_rank,
    einsum_analysis,
    kernel_size,
    tuple_arg,
)

# Layers whose output has the shape of their (first) input.
SAME_SHAPE = {
    "Dropout", "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "ThresholdedReLU", "Softmax",
    "BatchNormalization", "SyncBatchNormalization", "LayerNormalization", "GroupNormalization",
    "UnitNormalization", "RMSNormalization", "InstanceNormalization", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "ActivityRegularization",
    "Masking", "Rescaling", "Normalization", "Identity", "RandomFlip", "RandomRotation", "RandomZoom",
    "RandomTranslation", "RandomContrast", "RandomBrightness",
}
MERGES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}
# tf.keras wraps a TensorFlow call on symbolic tensors in a functional model
# (``x + 3.0``, ``x * (1/6)``: the hard-swish of MobileNetV3 and EfficientNet)
# as a TFOpLambda layer whose config names the function. These are
# elementwise: the output has the broadcast shape of their tensor operands
# when every other operand is a Python scalar (``tf_op_lambda_shapes``).
ELEMENTWISE_TF_OPS = frozenset({
    "__operators__.add", "__operators__.sub", "__operators__.neg", "math.add", "math.subtract",
    "math.multiply", "math.truediv", "math.divide", "math.maximum", "math.minimum", "math.pow",
    "math.negative", "math.abs", "math.square", "math.sqrt", "math.rsqrt", "math.reciprocal", "math.exp",
    "math.log", "math.erf", "math.sigmoid", "math.tanh", "nn.relu", "nn.relu6", "nn.elu", "nn.selu",
    "nn.gelu", "nn.silu", "nn.swish", "nn.sigmoid", "nn.softplus", "nn.leaky_relu", "nn.softmax",
    "clip_by_value", "cast", "identity",
})


def output_shapes(class_name: str, cfg: dict[str, Any], inputs: list[Shape | None]) -> list[Shape | None] | None:
    if not isinstance(cfg, dict):
        return None
    try:
        out = _output(class_name, cfg, inputs)
    except (CannotInfer, TypeError, ValueError, IndexError, KeyError, ZeroDivisionError):
        return None
    if out is None:
        return None
    return [tuple(s) if s is not None else None for s in (out if isinstance(out, list) else [out])]


def _output(cls: str, cfg: dict, inputs: list[Shape | None]):
    if cls == "InputLayer":
        return input_layer_shape(cfg)
    first = inputs[0] if inputs else None
    if first is None:
        return None
    shape = tuple(first)
    handler = _HANDLERS.get(cls)
    if handler is not None:
        return handler(cls, cfg, shape, inputs)
    if cls in SAME_SHAPE:
        return shape
    if cls in MERGES:
        return _broadcast([tuple(s) for s in inputs if s is not None])
    return None


def tf_op_lambda_shapes(cfg: dict[str, Any], inbound_nodes: Any,
                        inputs: list[Shape | None]) -> list[Shape | None] | None:
    """A TFOpLambda's output shape (see ``ELEMENTWISE_TF_OPS``); None for any
    other function, an operand that is a constant array, or an unknown input.

    >>> node = [["conv", 0, 0, {"y": 3.0, "name": None}]]
    >>> tf_op_lambda_shapes({"function": "__operators__.add"}, node, [(None, 8, 8, 16)])
    [(None, 8, 8, 16)]
    >>> tf_op_lambda_shapes({"function": "math.multiply"}, [["conv", 0, 0, {"y": [1.0, 2.0]}]], [(None, 2)])
    >>> tf_op_lambda_shapes({"function": "math.reduce_mean"}, node, [(None, 8, 8, 16)])
    """
    if cfg.get("function") not in ELEMENTWISE_TF_OPS or not inputs or any(s is None for s in inputs):
        return None
    if not _scalar_operands(inbound_nodes):
        return None
    out = _broadcast([tuple(s) for s in inputs if s is not None])
    return [out] if out is not None else None


def _scalar_operands(obj: Any, depth: int = 0) -> bool:
    """Whether every operand in a node that is not a tensor is a scalar
    (tensors: Keras 2 ``[name, node, tensor, kwargs]`` entries, Keras 3
    ``keras_history`` dicts)."""
    if depth > 8:
        return False
    if isinstance(obj, dict):
        if "keras_history" in obj or obj.get("class_name") == "__keras_tensor__":
            return True
        return all(_scalar_operands(v, depth + 1) for v in obj.values())
    if isinstance(obj, list):
        if is_tensor_ref(obj):
            return all(_scalar_operands(v, depth + 1) for v in obj[3:])
        if obj and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in obj):
            return False  # a constant array: it may broadcast to a larger shape
        return all(_scalar_operands(v, depth + 1) for v in obj)
    return True


def input_layer_shape(cfg: dict) -> Shape | None:
    """An InputLayer's (or a first layer's) batch shape across generations."""
    for key in ("batch_shape", "batch_input_shape"):
        value = cfg.get(key)
        if isinstance(value, list):
            return tuple(v if isinstance(v, int) and not isinstance(v, bool) else None for v in value)
    shape = cfg.get("input_shape")
    if isinstance(shape, list):
        return (None, *tuple(v if isinstance(v, int) else None for v in shape))
    return None


def deconv_length(length: int | None, size: int, padding: str, output_padding: int | None,
                  stride: int, dilation: int = 1) -> int | None:
    """``conv_utils.deconv_output_length``."""
    if length is None:
        return None
    size = size + (size - 1) * (dilation - 1)
    if output_padding is None:
        if padding == "valid":
            return length * stride + max(size - stride, 0)
        if padding == "full":
            return length * stride - (stride + size - 2)
        return length * stride
    pad = {"same": size // 2, "valid": 0, "full": size - 1}.get(padding, 0)
    return (length - 1) * stride + size - 2 * pad + output_padding


def _padding(cfg: dict) -> str:
    value = cfg.get("padding", cfg.get("border_mode", "valid"))
    return value if isinstance(value, str) else "valid"


def _strides(cfg: dict, rank: int, default: tuple | None = None) -> tuple:
    value = cfg.get("strides", cfg.get("subsample", cfg.get("subsample_length")))
    return tuple_arg(value, rank) or default or (1,) * rank


def _split(shape: Shape, cfg: dict, rank: int) -> tuple[tuple, Any]:
    """(spatial dims, channels) of a channels-first or channels-last input."""
    if channels_first(cfg):
        return tuple(shape[2:2 + rank]), shape[1]
    return tuple(shape[1:1 + rank]), shape[-1]


def _join(batch, spatial: tuple, channels, cfg: dict) -> Shape:
    return (batch, channels, *spatial) if channels_first(cfg) else (batch, *spatial, channels)


def _dense(cls, cfg, shape, inputs):
    return (*shape[:-1], cfg_int(cfg, "units", "output_dim"))


def _einsum(cls, cfg, shape, inputs):
    return einsum_analysis(cfg.get("equation"), cfg.get("bias_axes"), shape, cfg.get("output_shape"))[2]


def _sizes(value: tuple | None, what: str) -> tuple:
    if value is None:
        raise CannotInfer(f"config has no usable {what}")
    return value


def _conv(cls, cfg, shape, inputs):
    rank = conv_rank(cls)
    size = _sizes(kernel_size(cfg, rank), "kernel_size")
    filters = cfg_int(cfg, "filters", "nb_filter")
    if cls.startswith("Depthwise"):
        spatial, ch = _split(shape, cfg, rank)
        filters = ch * (cfg_int(cfg, "depth_multiplier") or 1) if ch is not None else None
    spatial, _ = _split(shape, cfg, rank)
    strides = _strides(cfg, rank)
    dilation = tuple_arg(cfg.get("dilation_rate", cfg.get("atrous_rate", 1)), rank) or (1,) * rank
    padding = _padding(cfg)
    if "Transpose" in cls or cls.startswith("Deconvolution"):
        out_pad = cfg.get("output_padding")
        pads = (tuple_arg(out_pad, rank) if out_pad is not None else None) or (None,) * rank
        new = tuple(deconv_length(n, k, padding, p, s, d)
                    for n, k, p, s, d in zip(spatial, size, pads, strides, dilation, strict=False))
    else:
        new = tuple(conv_length(n, k, padding, s, d)
                    for n, k, s, d in zip(spatial, size, strides, dilation, strict=False))
    return _join(shape[0], new, filters, cfg)


def _pool(cls, cfg, shape, inputs):
    rank = conv_rank(cls)
    pool = tuple_arg(cfg.get("pool_size", cfg.get("pool_length", 2)), rank) or (2,) * rank
    strides = cfg.get("strides", cfg.get("stride"))
    strides = tuple_arg(strides, rank) or pool
    spatial, ch = _split(shape, cfg, rank)
    new = tuple(conv_length(n, k, _padding(cfg), s) for n, k, s in zip(spatial, pool, strides, strict=False))
    return _join(shape[0], new, ch, cfg)


def _global_pool(cls, cfg, shape, inputs):
    rank = conv_rank(cls)
    _spatial, ch = _split(shape, cfg, rank)
    if cfg.get("keepdims"):
        return _join(shape[0], (1,) * rank, ch, cfg)
    return (shape[0], ch)


def _flatten(cls, cfg, shape, inputs):
    rest = shape[1:]
    return (shape[0], math.prod(rest) if all(isinstance(d, int) for d in rest) else None)


def _reshape(cls, cfg, shape, inputs):
    target = cfg.get("target_shape", cfg.get("dims"))
    if not isinstance(target, list):
        return None
    target = list(target)
    if -1 in target:
        known = math.prod(d for d in target if d != -1)
        rest = shape[1:]
        total = math.prod(rest) if all(isinstance(d, int) for d in rest) else None
        target[target.index(-1)] = total // known if total is not None and known else None
    return (shape[0], *tuple(target))


def _permute(cls, cfg, shape, inputs):
    dims = cfg.get("dims")
    return (shape[0], *tuple(shape[d] for d in dims))


def _repeat(cls, cfg, shape, inputs):
    return (shape[0], cfg_int(cfg, "n"), shape[1])


def _pairs(value: Any, rank: int) -> list[tuple[int, int]] | None:
    """Cropping/ZeroPadding arguments: an int, per-axis ints, or per-axis pairs."""
    if isinstance(value, int):
        return [(value, value)] * rank
    if isinstance(value, list) and len(value) == rank:
        return [(v, v) if isinstance(v, int) else (v[0], v[1]) for v in value]
    if isinstance(value, list) and rank == 1 and len(value) == 2:
        return [(value[0], value[1])]
    return None


def _crop_pad(cls, cfg, shape, inputs):
    rank = conv_rank(cls)
    key = "cropping" if cls.startswith("Cropping") else "padding"
    pairs = _pairs(cfg.get(key, 1 if key == "padding" else 0), rank)
    if pairs is None:
        return None
    if rank == 1:
        spatial, ch = (shape[1],), shape[2]
        first = False
    else:
        spatial, ch = _split(shape, cfg, rank)
        first = channels_first(cfg)
    sign = -1 if key == "cropping" else 1
    new = tuple(n + sign * (a + b) if n is not None else None for n, (a, b) in zip(spatial, pairs, strict=False))
    return (shape[0], ch, *new) if first else (shape[0], *new, ch)


def _upsample(cls, cfg, shape, inputs):
    rank = conv_rank(cls)
    size = _sizes(tuple_arg(cfg.get("size", cfg.get("length", 2)), rank), "size")
    if rank == 1:
        return (shape[0], shape[1] * size[0] if shape[1] is not None else None, shape[2])
    spatial, ch = _split(shape, cfg, rank)
    new = tuple(n * s if n is not None else None for n, s in zip(spatial, size, strict=False))
    return _join(shape[0], new, ch, cfg)


def _concatenate(cls, cfg, shape, inputs):
    axis = cfg.get("axis", cfg.get("concat_axis", -1))
    shapes = [tuple(s) for s in inputs if s is not None]
    if len(shapes) != len(inputs):
        return None
    axis = axis % len(shape)
    out = list(shapes[0])
    dims = [s[axis] for s in shapes]
    out[axis] = sum(dims) if all(isinstance(d, int) for d in dims) else None
    return tuple(out)


def _broadcast(shapes: list[Shape]) -> Shape | None:
    if not shapes:
        return None
    rank = max(len(s) for s in shapes)
    out = []
    for axis in range(rank):
        dims = [s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0]
        known = [d for d in dims if isinstance(d, int) and d != 1]
        out.append(known[0] if known else (1 if all(d == 1 for d in dims) else None))
    return tuple(out)


def _dot(cls, cfg, shape, inputs):
    if len(inputs) != 2 or inputs[1] is None:
        return None
    a, b = tuple(inputs[0]), tuple(inputs[1])
    axes = cfg.get("axes", -1)
    axes = [axes, axes] if isinstance(axes, int) else list(axes)
    ax = [x % len(s) for x, s in zip(axes, (a, b), strict=False)]
    rest_a = [d for i, d in enumerate(a) if i not in (0, ax[0])]
    rest_b = [d for i, d in enumerate(b) if i not in (0, ax[1])]
    out = (a[0], *tuple(rest_a + rest_b))
    return out if len(out) > 1 else (a[0], 1)


def _merge_keras1(cls, cfg, shape, inputs):
    mode = cfg.get("mode", "sum")
    if mode == "concat":
        return _concatenate(cls, {"axis": cfg.get("concat_axis", -1)}, shape, inputs)
    if mode in ("sum", "mul", "ave", "max"):
        return shape
    return None


def _embedding(cls, cfg, shape, inputs):
    return (*tuple(shape), cfg_int(cfg, "output_dim"))


def _rnn(cls, cfg, shape, inputs):
    units = cfg_int(cfg, "units", "output_dim")
    if cls == "RNN":
        cell = child_layers(cls, cfg).get("cell")
        if cell and cell[0] == "StackedRNNCells":  # the last cell's output
            cell = ([None, *child_layers(*cell).values()])[-1]
        units = cfg_int(cell[1], "units") if cell else None
    main = (shape[0], shape[1], units) if cfg.get("return_sequences") else (shape[0], units)
    if cfg.get("return_state"):
        states = 2 if "LSTM" in cls else 1
        return [main] + [(shape[0], units)] * states
    return main


def _conv_lstm(cls, cfg, shape, inputs):
    rank = conv_rank(cls)
    step = (shape[0], *tuple(shape[2:]))
    per_step = _conv(f"Conv{rank}D", cfg, step, [step])
    main = (shape[0], shape[1], *tuple(per_step[1:])) if cfg.get("return_sequences") else per_step
    if cfg.get("return_state"):
        return [main, per_step, per_step]
    return main


def _bidirectional(cls, cfg, shape, inputs):
    children = child_layers(cls, cfg)
    fwd_class, fwd_cfg = children["forward_layer"]
    outs = output_shapes(fwd_class, fwd_cfg, [shape])
    if not outs:
        return None
    main = outs[0]
    if main is None:
        return None
    mode = cfg.get("merge_mode", "concat")
    if mode == "concat":
        main = (*main[:-1], main[-1] * 2 if main[-1] is not None else None)
    elif mode is None:
        return [main, main]
    return main


def _time_distributed(cls, cfg, shape, inputs):
    child_class, child_cfg = child_layers(cls, cfg)["layer"]
    inner = output_shapes(child_class, child_cfg, [(shape[0], *tuple(shape[2:]))])
    return (shape[0], shape[1], *tuple(inner[0][1:])) if inner and inner[0] is not None else None


def _spectral_normalization(cls, cfg, shape, inputs):
    """The wrapped layer's output: the wrapper only rescales its kernel."""
    child_class, child_cfg = child_layers(cls, cfg)["layer"]
    inner = output_shapes(child_class, child_cfg, [shape])
    return inner[0] if inner else None


def _attention(cls, cfg, shape, inputs):
    if cls in MHA_LIKE:  # GroupedQueryAttention has no output_shape: the query's width
        out = cfg.get("output_shape")
        out = [out] if isinstance(out, int) else list(out or [shape[-1]])
        return tuple(shape[:-1]) + tuple(out)
    value = inputs[1] if len(inputs) > 1 and inputs[1] is not None else shape
    return (*tuple(shape[:-1]), value[-1])


def _lambda(cls, cfg, shape, inputs):
    out = cfg.get("output_shape")
    if cfg.get("output_shape_type") not in (None, "raw") or not isinstance(out, list):
        return None
    if out and isinstance(out[0], list):
        return None
    return (shape[0], *tuple(d if isinstance(d, int) else None for d in out))


def _tf_op(cls, cfg, shape, inputs):
    """tf.keras 2.2-2.3 TensorFlowOpLayer: Transpose and Reshape with their
    constant argument; other ops are not followed."""
    node = cfg.get("node_def") if isinstance(cfg.get("node_def"), dict) else {}
    arg = (cfg.get("constants") or {}).get("1")
    op = node.get("op")
    if op == "Transpose" and isinstance(arg, list):
        return tuple(shape[p] for p in arg)
    if op == "Reshape" and isinstance(arg, list) and arg:
        return _reshape(cls, {"target_shape": arg[1:]}, shape, inputs) if arg[0] in (-1, None) else None
    return None


def _resize(cls, cfg, shape, inputs):
    h, w = cfg_int(cfg, "height"), cfg_int(cfg, "width")
    _spatial, ch = _split(shape, cfg, 2)
    return _join(shape[0], (h, w), ch, cfg)


def _locally_connected(cls, cfg, shape, inputs):
    rank = conv_rank(cls)
    size = _sizes(kernel_size(cfg, rank), "kernel_size")
    spatial, _ = _split(shape, cfg, rank)
    strides = _strides(cfg, rank)
    new = tuple(conv_length(n, k, _padding(cfg), s) for n, k, s in zip(spatial, size, strides, strict=False))
    return _join(shape[0], new, cfg_int(cfg, "filters", "nb_filter"), cfg)


_HANDLERS = {
    "Dense": _dense, "EinsumDense": _einsum, "Flatten": _flatten, "Reshape": _reshape, "Permute": _permute,
    "RepeatVector": _repeat, "Concatenate": _concatenate, "Dot": _dot, "Merge": _merge_keras1,
    "Embedding": _embedding, "Lambda": _lambda, "TensorFlowOpLayer": _tf_op,
    "SimpleRNN": _rnn, "LSTM": _rnn, "GRU": _rnn, "CuDNNLSTM": _rnn, "CuDNNGRU": _rnn, "RNN": _rnn,
    "ConvLSTM1D": _conv_lstm, "ConvLSTM2D": _conv_lstm, "ConvLSTM3D": _conv_lstm,
    "Bidirectional": _bidirectional, "TimeDistributed": _time_distributed,
    "SpectralNormalization": _spectral_normalization,
    "MultiHeadAttention": _attention, "Attention": _attention, "AdditiveAttention": _attention,
    "GroupQueryAttention": _attention, "GroupedQueryAttention": _attention,
    "Resizing": _resize, "CenterCrop": _resize, "RandomCrop": _resize,
    "LocallyConnected1D": _locally_connected, "LocallyConnected2D": _locally_connected,
}
for _rank in ("1D", "2D", "3D"):
    for _base in ("Conv", "Convolution", "DepthwiseConv", "SeparableConv", "SeparableConvolution"):
        _HANDLERS[_base + _rank] = _conv
    for _base in ("Conv{}Transpose", "Convolution{}Transpose", "Deconvolution{}"):
        _HANDLERS[_base.format(_rank)] = _conv
    for _base in ("MaxPooling", "AveragePooling", "MaxPool", "AvgPool"):
        _HANDLERS[_base + _rank] = _pool
    for _base in ("GlobalMaxPooling", "GlobalAveragePooling", "GlobalMaxPool", "GlobalAvgPool"):
        _HANDLERS[_base + _rank] = _global_pool
    for _base in ("Cropping", "ZeroPadding"):
        _HANDLERS[_base + _rank] = _crop_pad
    _HANDLERS["UpSampling" + _rank] = _upsample
