"""What Keras' built-in layers own: their variables in creation order, the
sub-layers Keras saves them under, and the config keys of each variable's
regularizer and initializer.

The ``.keras`` weights file stores variables by position (``vars/0``,
``vars/1``) under the attribute path of the object that owns them
(``layers/bidirectional/forward_layer/cell/vars/0``): the names come only from
knowing, per class, what ``build()`` creates and in which order. The orders
below are read from the Keras 3 layer sources (``keras/src/layers/**``);
legacy HDF5 files name their weights, so there the role is read from the
name (``role_from_weight_name``).

>>> [s.name for s in own_slots("BatchNormalization", {"scale": False})]
['beta', 'moving_mean', 'moving_variance']
>>> role_from_weight_name("dense_1/kernel:0")
('kernel', <Role.KERNEL: 'kernel'>)
>>> role_from_weight_name("lstm_1_U_i")
('U_i', <Role.RECURRENT_KERNEL: 'recurrent_kernel'>)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from reglint.model import Role


@dataclass(frozen=True)
class Slot:
    """One variable a layer creates."""

    name: str
    role: Role
    trainable: bool = True
    # A second reference to a variable another slot owns (SpectralNormalization
    # keeps the wrapped kernel as its own ``kernel``): stored again, one weight.
    alias: bool = False


K, RK, B = Role.KERNEL, Role.RECURRENT_KERNEL, Role.BIAS
_KB = (Slot("kernel", K), Slot("bias", B))
_RNN_CELL = (Slot("kernel", K), Slot("recurrent_kernel", RK), Slot("bias", B))

DENSE_LIKE = {
    "Dense", "EinsumDense",
    "Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D",
    "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "Convolution2DTranspose", "Convolution3DTranspose", "Deconvolution2D", "Deconvolution3D",
    "LocallyConnected1D", "LocallyConnected2D",
}
DEPTHWISE = {"DepthwiseConv1D", "DepthwiseConv2D"}
SEPARABLE = {"SeparableConv1D", "SeparableConv2D", "SeparableConvolution1D", "SeparableConvolution2D"}
RNN_CELLS = {"SimpleRNNCell", "LSTMCell", "GRUCell",
             "ConvLSTMCell", "ConvLSTM1DCell", "ConvLSTM2DCell", "ConvLSTM3DCell"}
RNN_LAYERS = {"SimpleRNN": "SimpleRNNCell", "LSTM": "LSTMCell", "GRU": "GRUCell",
              "ConvLSTM1D": "ConvLSTMCell", "ConvLSTM2D": "ConvLSTMCell", "ConvLSTM3D": "ConvLSTMCell",
              "CuDNNLSTM": "LSTMCell", "CuDNNGRU": "GRUCell"}
NORMALIZATION = {"BatchNormalization", "SyncBatchNormalization", "LayerNormalization",
                 "GroupNormalization", "RMSNormalization", "InstanceNormalization"}
CONTAINERS = {"Sequential", "Functional", "Model", "Pipeline"}
# Containers that chain their layers one after the other and record no
# graph: ``keras.layers.Pipeline`` (keras/src/layers/preprocessing/pipeline.py)
# calls each of its ``layers`` on the previous one's output and saves them
# under ``layers/`` as a Sequential does.
CHAINED_CONTAINERS = frozenset({"Sequential", "Pipeline"})
# Wrappers of one layer: the built-in ``Wrapper`` subclasses of Keras 3.15
# and tf-keras 2.21 but Bidirectional (two copies, apart). The wrapped
# layer's config is the wrapper's ``layer``, its variables are saved under
# the attribute ``layer``.
SINGLE_WRAPPERS = frozenset({"TimeDistributed", "SpectralNormalization"})
# Attention layers made of EinsumDense projections (query, key, value,
# output); Keras 3 exports GroupedQueryAttention as ``GroupQueryAttention``,
# the name its configs carry.
MHA_LIKE = frozenset({"MultiHeadAttention", "GroupQueryAttention", "GroupedQueryAttention"})
# Layers whose output holds their input's values (moved, masked or dropped):
# a model output behind them keeps the range of the activation before them.
VALUE_KEEPING = frozenset({
    "Flatten", "Reshape", "Permute", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "GaussianDropout", "GaussianNoise", "AlphaDropout", "Identity", "Masking", "ActivityRegularization",
    "Cropping1D", "Cropping2D", "Cropping3D", "RepeatVector"})
# Layers known to own no variables (their configs may still carry an
# activity_regularizer).
WEIGHTLESS = {
    "InputLayer", "Activation", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "Flatten", "Reshape", "Permute", "RepeatVector",
    "Lambda", "Masking", "ActivityRegularization", "Concatenate", "Add", "Subtract", "Multiply",
    "Average", "Maximum", "Minimum", "Dot", "Merge", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
    "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D",
    "AvgPool3D", "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalAvgPool1D", "GlobalAvgPool2D",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
    "UpSampling1D", "UpSampling2D", "UpSampling3D", "ReLU", "LeakyReLU", "ELU", "ThresholdedReLU",
    "Softmax", "UnitNormalization", "Identity", "TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer", "Rescaling",
    "Resizing", "CenterCrop", "RandomFlip", "RandomRotation", "RandomZoom", "RandomCrop",
    "RandomTranslation", "RandomContrast", "RandomBrightness", "Cropping",
    # preprocessing whose state is a vocabulary or bin edges in its config or
    # assets, not variables: Keras' count_params() counts none (review 44, 5)
    "IntegerLookup", "StringLookup", "Discretization", "CategoryEncoding", "Hashing", "HashedCrossing",
    "TextVectorization",
}


def own_slots(class_name: str, cfg: dict[str, Any]) -> tuple[Slot, ...] | None:
    """The variables ``class_name`` creates itself, in order; None if unknown.

    Only slots that exist under this config are returned (``use_bias=False``
    drops the bias, ``scale=False`` drops gamma).
    """
    use_bias = cfg.get("use_bias", cfg.get("bias", True)) is not False
    mode = quantization_mode(cfg)
    if mode is not None:
        return _quantized_slots(class_name, mode, use_bias, cfg.get("tie_weights", True) is not False)
    if class_name in DENSE_LIKE:
        if class_name == "EinsumDense":
            use_bias = bool(cfg.get("bias_axes"))
        return _KB if use_bias else _KB[:1]
    if class_name in DEPTHWISE:
        slots: tuple[Slot, ...] = (Slot("depthwise_kernel", Role.DEPTHWISE_KERNEL), Slot("bias", B))
        return slots if use_bias else slots[:1]
    if class_name in SEPARABLE:
        slots = (Slot("depthwise_kernel", Role.DEPTHWISE_KERNEL),
                 Slot("pointwise_kernel", Role.POINTWISE_KERNEL), Slot("bias", B))
        return slots if use_bias else slots[:2]
    if class_name in RNN_CELLS:
        return _RNN_CELL if use_bias else _RNN_CELL[:2]
    if class_name in ("BatchNormalization", "SyncBatchNormalization"):
        norm: list[Slot] = []
        if cfg.get("scale", True) is not False:
            norm.append(Slot("gamma", Role.GAMMA))
        if cfg.get("center", True) is not False:
            norm.append(Slot("beta", Role.BETA))
        norm += [Slot("moving_mean", Role.MOVING_MEAN, False), Slot("moving_variance", Role.MOVING_VARIANCE, False)]
        if cfg.get("renorm"):
            norm += [Slot("moving_stddev", Role.OTHER, False), Slot("renorm_mean", Role.OTHER, False),
                     Slot("renorm_stddev", Role.OTHER, False)]
        return tuple(norm)
    if class_name in ("LayerNormalization", "GroupNormalization", "InstanceNormalization"):
        rms = bool(cfg.get("rms_scaling"))  # Keras 3 LayerNormalization: gamma only
        norm = []
        if cfg.get("scale", True) is not False or rms:
            norm.append(Slot("gamma", Role.GAMMA))
        if cfg.get("center", True) is not False and not rms:
            norm.append(Slot("beta", Role.BETA))
        return tuple(norm)
    if class_name == "Normalization":
        # Adapted statistics, never trained; none when the config fixes them.
        if cfg.get("mean") is not None:
            return ()
        return (Slot("mean", Role.MOVING_MEAN, False), Slot("variance", Role.MOVING_VARIANCE, False),
                Slot("count", Role.OTHER, False))
    if class_name == "RMSNormalization":
        return (Slot("scale", Role.GAMMA),)
    if class_name == "Embedding":
        return (Slot("embeddings", Role.EMBEDDINGS),)
    if class_name == "ReversibleEmbedding":  # Keras 3.12+: the table, and the output projection unless tied
        table = (Slot("embeddings", Role.EMBEDDINGS),)
        return table if cfg.get("tie_weights", True) is not False else (*table, Slot("reverse_embeddings",
                                                                                     Role.EMBEDDINGS))
    if class_name == "PReLU":
        return (Slot("alpha", Role.ALPHA),)
    if class_name in ("Attention", "AdditiveAttention"):
        return tuple(Slot(v, Role.OTHER) for v in attention_variables(class_name, cfg))
    if class_name == "SpectralNormalization":
        # build(): ``self.kernel = self.layer.kernel`` (or ``.embeddings``)
        # tracks the wrapped layer's variable a second time, then vector_u;
        # the .keras file saves both under the wrapper's own vars.
        return (Slot("kernel", K, alias=True), Slot("vector_u", Role.OTHER, False))
    if class_name in RNN_LAYERS or class_name in ("RNN", "Bidirectional", "TimeDistributed") or class_name in MHA_LIKE:
        return ()  # their variables belong to sub-layers
    if class_name in WEIGHTLESS or class_name in CONTAINERS:
        return ()
    return None


def child_layers(class_name: str, cfg: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Sub-layers Keras saves under an attribute path: attr -> (class, config).

    A child's config is where its regularizers are read from; for LSTM's cell
    that is the LSTM's own config, for MultiHeadAttention's projections it is
    the attention layer's kernel/bias regularizers.
    """
    if class_name in RNN_LAYERS:
        return {"cell": (RNN_LAYERS[class_name], cfg)}
    if class_name == "RNN":
        cell = cfg.get("cell")
        if isinstance(cell, dict):
            return {"cell": (_class(cell), _config(cell))}
        return {}
    if class_name == "StackedRNNCells":
        return stacked_cells(cfg)
    if class_name == "Bidirectional":
        fwd = cfg.get("layer") or {}
        bwd = cfg.get("backward_layer") or fwd
        return {"forward_layer": (_class(fwd), _config(fwd)),
                "backward_layer": (_class(bwd), _config(bwd))}
    if class_name in SINGLE_WRAPPERS:
        inner = cfg.get("layer") or {}
        return {"layer": (_class(inner), _config(inner))}
    if class_name in MHA_LIKE:
        shared = {key: cfg.get(key) for key in ("kernel_regularizer", "bias_regularizer",
                                                 "kernel_initializer", "bias_initializer")}
        use_bias = cfg.get("use_bias", True)
        proj = {**shared, "bias_axes": "x" if use_bias else None}
        names: tuple[str, ...] = ("query_dense", "key_dense", "value_dense", "output_dense")
        if cfg.get("use_gate"):
            names += ("gate_dense",)
        return dict.fromkeys(names, ("EinsumDense", proj))
    return {}


# The names Keras gives MultiHeadAttention's projections (``name="query"``);
# the ``.keras`` file saves them under the attribute (``_query_dense``).
PROJECTION_NAMES = {"query_dense": "query", "key_dense": "key", "value_dense": "value",
                    "output_dense": "attention_output", "gate_dense": "gate"}


def stacked_cells(cfg: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """A ``StackedRNNCells``' cells in order, keyed as Keras 3 saves them
    (``cells/lstm_cell``, ``cells/lstm_cell_1``: the snake-case class name
    made unique, as ``saving_lib`` names a list's items).

    >>> list(stacked_cells({"cells": [{"class_name": "LSTMCell", "config": {"name": "a"}},
    ...                               {"class_name": "LSTMCell", "config": {"name": "b"}}]}))
    ['lstm_cell', 'lstm_cell_1']
    """
    from reglint.readers.keras_objects import to_snake_case

    out: dict[str, tuple[str, dict[str, Any]]] = {}
    used: dict[str, int] = {}
    for cell in cfg.get("cells") or []:
        if not isinstance(cell, dict):
            continue
        base = to_snake_case(_class(cell)) or "cell"
        used[base] = used.get(base, -1) + 1
        out[f"{base}_{used[base]}" if used[base] else base] = (_class(cell), _config(cell))
    return out


def stacked_cell_owner(cfg: dict[str, Any], components: list[str]) -> tuple[str, dict[str, Any], str] | None:
    """The (class, config, name prefix) of the StackedRNNCells' cell a
    stored name belongs to: the cell named in the path
    (``rnn/stacked_rnn_cells/lstm_cell/kernel``), or by position
    (``cell/cells/0/kernel``: a tf.keras SavedModel's object graph)."""
    cells = child_layers("StackedRNNCells", cfg)
    for key, (cell_class, cell_cfg) in cells.items():
        if cell_label(cell_cfg, key) in components:
            return cell_class, cell_cfg, f"{cell_label(cell_cfg, key)}/"
    at = components.index("cells") + 1 if "cells" in components else 0
    if 0 < at < len(components) and components[at].isdigit() and int(components[at]) < len(cells):
        key, (cell_class, cell_cfg) = list(cells.items())[int(components[at])]
        return cell_class, cell_cfg, f"{cell_label(cell_cfg, key)}/"
    return None


def cell_label(cell_cfg: dict[str, Any], key: str) -> str:
    """The name a stacked cell's variables carry (``lstm_cell/kernel``):
    its configured name, as legacy HDF5 files store it."""
    name = cell_cfg.get("name")
    return name if isinstance(name, str) and name else key


def quantization_mode(cfg: dict[str, Any]) -> str | None:
    """The mode of a Keras 3 quantized layer (``model.quantize("int8")``
    saves a ``QuantizedDTypePolicy``), else None.

    >>> quantization_mode({"dtype": {"class_name": "QuantizedDTypePolicy", "config": {"mode": "int8"}}})
    'int8'
    >>> quantization_mode({"dtype": "int8_from_float32"}), quantization_mode({"dtype": "float32"})
    ('int8', None)
    >>> quantization_mode({"dtype": {"class_name": "Int4DTypePolicy", "config": {"mode": "int4/128"}}})
    'int4'
    """
    dtype = cfg.get("dtype")
    if isinstance(dtype, str):  # Keras 3.1-3.3 saved the policy's name: "int8_from_float32"
        named, sep, _ = dtype.partition("_from_")
        return named if sep and named in QUANTIZATION_MODES else None
    if not isinstance(dtype, dict):
        return None
    class_name = str(dtype.get("class_name", ""))
    inner = dtype.get("config")
    mode = inner.get("mode") if isinstance(inner, dict) else None
    if not isinstance(mode, str) and isinstance(inner, dict):  # older spelling: name "int8_from_float32"
        mode = str(inner.get("name", "")).split("_from_")[0] or None
    # Keras 3.14+ names each mode's policy (Int4DTypePolicy, GPTQDTypePolicy,
    # AWQDTypePolicy) and writes a block size into the mode: "int4/128"
    base = mode.split("/")[0] if isinstance(mode, str) else None
    if "Quantized" not in class_name and base not in QUANTIZATION_MODES:
        return None
    return base if base else "unknown"


# The modes Keras 3 quantizes to (``model.quantize(mode)``).
QUANTIZATION_MODES = frozenset({"int8", "int4", "float8", "gptq", "awq"})
# What a quantized layer stores, in order (``variable_serialization_spec``,
# or ``save_own_variables`` before it), each release's layout where they
# differ (the stored count tells which: ``quantized_layouts``). int8, int4,
# GPTQ, AWQ: integer weights and their scales, none of them trained; the
# bias still is. float8: the float kernel and bias, and scales and amax
# histories that Keras marks trainable (``overwrite_with_gradient``: each
# step writes them, no gradient descends on them).
_FLOAT8 = ("kernel", "bias", "inputs_scale", "inputs_amax_history", "kernel_scale", "kernel_amax_history",
           "outputs_grad_scale", "outputs_grad_amax_history")
_QUANTIZED: dict[tuple[str, str], tuple[tuple[str, ...], ...]] = {
    ("dense", "int8"): (("kernel", "bias", "kernel_scale"),),
    ("dense", "int4"): (("kernel", "bias", "kernel_scale"),  # 3.9-3.13
                        ("kernel", "bias", "kernel_scale", "kernel_zero", "g_idx")),  # 3.14+: int4/<block>
    ("dense", "float8"): (_FLOAT8,),
    ("dense", "gptq"): (("bias", "quantized_kernel", "kernel_scale", "kernel_zero", "g_idx"),),
    ("dense", "awq"): (("bias", "quantized_kernel", "kernel_scale", "kernel_zero", "awq_scales", "g_idx"),),
    ("embedding", "int8"): (("embeddings", "embeddings_scale"),),
    ("embedding", "int4"): (("embeddings", "embeddings_scale"),
                            ("embeddings", "embeddings_scale", "embeddings_zero", "g_idx")),
}
_QUANTIZED_TRAINS = {"float8"}  # modes whose every variable Keras counts as trainable


def _quantized_slots(class_name: str, mode: str, use_bias: bool, tied: bool = True) -> tuple[Slot, ...] | None:
    layouts = quantized_layouts(class_name, mode, use_bias, tied)
    return layouts[0] if layouts else None  # another mode or class: what it stores is not known here


# ReversibleEmbedding (3.12+) stores Embedding's variables, then, untied,
# the projection's: its scale (int8, int4) and from 3.14 its zero (int4).
_REVERSE = {"int8": (("reverse_embeddings", "reverse_embeddings_scale"),),
            "int4": (("reverse_embeddings", "reverse_embeddings_scale"),
                     ("reverse_embeddings", "reverse_embeddings_scale", "reverse_embeddings_zero"))}


def quantized_layouts(class_name: str, mode: str, use_bias: bool, tied: bool = True) -> list[tuple[Slot, ...]]:
    """Every layout a release wrote for ``class_name`` in ``mode``."""
    embedding = class_name in ("Embedding", "ReversibleEmbedding")
    kind = "embedding" if embedding else "dense" if class_name in ("Dense", "EinsumDense") else None
    layouts = list(_QUANTIZED.get((kind or "", mode), ()))
    if class_name == "ReversibleEmbedding" and not tied:  # each release's table layout with its own projection's
        layouts = [(*table, *reverse) for table, reverse in zip(layouts, _REVERSE.get(mode, ()), strict=False)]
    roles = {"kernel": K, "quantized_kernel": K, "embeddings": Role.EMBEDDINGS, "reverse_embeddings": Role.EMBEDDINGS,
             "bias": B}
    return [tuple(Slot(n, roles.get(n, Role.OTHER), n == "bias" or mode in _QUANTIZED_TRAINS) for n in names
                  if use_bias or n != "bias")
            for names in layouts]


def attention_variables(class_name: str, cfg: dict[str, Any]) -> list[str]:
    """The scalars (Attention) or per-feature scale (AdditiveAttention) the
    dot-product attention layers learn: ``scale`` with ``use_scale`` (off by
    default in Attention, on in AdditiveAttention), ``concat_score_weight``
    with ``score_mode="concat"``.

    >>> attention_variables("Attention", {"use_scale": True, "score_mode": "concat"})
    ['scale', 'concat_score_weight']
    >>> attention_variables("AdditiveAttention", {})
    ['scale']
    """
    names = []
    if cfg.get("use_scale", class_name == "AdditiveAttention"):
        names.append("scale")
    if class_name == "Attention" and cfg.get("score_mode") == "concat":
        names.append("concat_score_weight")
    return names


def direction_label(direction: str, cfg: dict) -> str:
    """The run-time name of a Bidirectional copy: Keras names them
    ``forward_<name>``/``backward_<name>`` (a saved Keras 3 config already
    holds ``forward_lstm``)."""
    label = str(cfg.get("name") or "layer") if isinstance(cfg, dict) else "layer"
    return label if label.startswith(direction) else f"{direction}_{label}"


def _class(obj: dict) -> str:
    name = obj.get("class_name", "") if isinstance(obj, dict) else ""
    return re.split(r"[>.]", name)[-1] if isinstance(name, str) else ""


def _config(obj: dict) -> dict:
    cfg = obj.get("config") if isinstance(obj, dict) else None
    return cfg if isinstance(cfg, dict) else {}


def match_child(children: dict[str, Any], attr: str) -> str | None:
    """Keras renamed private attributes over time (``_query_dense`` ->
    ``query_dense``); match either spelling."""
    if attr in children:
        return attr
    bare = attr.lstrip("_")
    for name in children:
        if name.lstrip("_") == bare:
            return name
    return None


# --------------------------------------------------------------------------
# config keys per role

_REG_KEYS = {
    Role.KERNEL: ("kernel_regularizer", "W_regularizer"),
    Role.RECURRENT_KERNEL: ("recurrent_regularizer", "U_regularizer"),
    Role.DEPTHWISE_KERNEL: ("depthwise_regularizer",),
    Role.POINTWISE_KERNEL: ("pointwise_regularizer",),
    Role.BIAS: ("bias_regularizer", "b_regularizer"),
    Role.EMBEDDINGS: ("embeddings_regularizer", "W_regularizer"),
    Role.GAMMA: ("gamma_regularizer",),
    Role.BETA: ("beta_regularizer",),
    Role.ALPHA: ("alpha_regularizer",),
}

_INIT_KEYS = {
    Role.KERNEL: ("kernel_initializer", "init"),
    Role.RECURRENT_KERNEL: ("recurrent_initializer", "inner_init"),
    Role.DEPTHWISE_KERNEL: ("depthwise_initializer",),
    Role.POINTWISE_KERNEL: ("pointwise_initializer",),
    Role.BIAS: ("bias_initializer",),
    Role.EMBEDDINGS: ("embeddings_initializer", "init"),
    Role.GAMMA: ("gamma_initializer",),
    Role.BETA: ("beta_initializer",),
    Role.MOVING_MEAN: ("moving_mean_initializer",),
    Role.MOVING_VARIANCE: ("moving_variance_initializer",),
    Role.ALPHA: ("alpha_initializer",),
}

# Keras' defaults when a config does not name an initializer.
DEFAULT_INIT = {
    Role.KERNEL: "glorot_uniform",
    Role.RECURRENT_KERNEL: "orthogonal",
    Role.DEPTHWISE_KERNEL: "glorot_uniform",
    Role.POINTWISE_KERNEL: "glorot_uniform",
    Role.BIAS: "zeros",
    Role.EMBEDDINGS: "random_uniform",
    Role.GAMMA: "ones",
    Role.BETA: "zeros",
    Role.MOVING_MEAN: "zeros",
    Role.MOVING_VARIANCE: "ones",
    Role.ALPHA: "zeros",
}


def regularizer_keys(class_name: str, role: Role) -> tuple[str, ...]:
    if class_name in DEPTHWISE and role in (Role.KERNEL, Role.DEPTHWISE_KERNEL):
        return ("depthwise_regularizer", "kernel_regularizer")
    return _REG_KEYS.get(role, ())


def initializer_keys(class_name: str, role: Role) -> tuple[str, ...]:
    if class_name in DEPTHWISE and role in (Role.KERNEL, Role.DEPTHWISE_KERNEL):
        return ("depthwise_initializer", "kernel_initializer")
    return _INIT_KEYS.get(role, ())


# --------------------------------------------------------------------------
# roles from weight names (legacy HDF5)

_NAME_ROLES = [
    # Keras 3 quantized layers' constants (not a gamma's "scale", not a kernel)
    (r"(kernel|embeddings|reverse_embeddings|inputs|outputs_grad)_(scale|zero)|\w+_amax_history|g_idx|awq_scales",
     Role.OTHER),
    (r"reverse_embeddings", Role.EMBEDDINGS),
    (r"recurrent_kernel", RK),
    (r"depthwise_kernel", Role.DEPTHWISE_KERNEL),
    (r"pointwise_kernel", Role.POINTWISE_KERNEL),
    (r"kernel", K),
    (r"bias", B),
    (r"embeddings", Role.EMBEDDINGS),
    (r"gamma|scale", Role.GAMMA),
    (r"beta", Role.BETA),
    (r"moving_mean|running_mean", Role.MOVING_MEAN),
    (r"moving_variance|running_std|running_var", Role.MOVING_VARIANCE),
    (r"alpha|alphas", Role.ALPHA),
    # Keras 1: W, U, b, with gate suffixes (W_i, U_f, b_o) in recurrent layers.
    (r"W(_[a-z])?|kernel_[a-z]", K),
    (r"U(_[a-z])?", RK),
    (r"b(_[a-z])?", B),
]


def role_from_weight_name(name: str, layer_name: str | None = None) -> tuple[str, Role]:
    """(short name, role) for a stored weight name such as ``dense_1/kernel:0``,
    ``dense_1_W`` (Keras 1) or ``lstm_1_U_i``."""
    short = name.split("/")[-1].split(":")[0]
    candidates = [short]
    if layer_name and short.startswith(layer_name + "_"):
        candidates.insert(0, short[len(layer_name) + 1:])
    # Keras 1 joined layer and weight name with "_": try every suffix.
    parts = short.split("_")
    candidates += ["_".join(parts[i:]) for i in range(1, len(parts))]
    for candidate in candidates:
        for pattern, role in _NAME_ROLES:
            if re.fullmatch(pattern, candidate):
                return candidate, role
    return short, Role.OTHER
