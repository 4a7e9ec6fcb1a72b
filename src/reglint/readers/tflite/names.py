"""Keras layer names from TFLite tensor names.

The converter names a weight after the TensorFlow op that read it, under
the Keras layer's name scope: ``sequential/dense_1/MatMul``,
``model/conv/Conv2D``, ``mha/query/Add/ReadVariableOp``; fused tensors
join several such names with ``;`` (``re_lu/Relu;bn/FusedBatchNormV3;
conv/Conv2D``). Keras 3 models traced by the converter get a ``_1`` on
every scope (``mlp_1/fc1_1/MatMul`` for the layer ``fc1`` of the model
``mlp``). Constants the converter made itself (``arith.constant12``,
``tfl.pseudo_qconst``) carry no scope: they take their op's layer.
"""

from __future__ import annotations

import re

# Components that name a TensorFlow op or a Keras backend scope inside a
# layer, never the layer itself (an optional _N / N suffix: the op's repeat).
OP_COMPONENT = re.compile(
    r"(?:MatMul|BiasAdd|Add|AddV2|Mul|Sub|Neg|Conv2D|Conv1D|Conv3D|Conv2DBackpropInput|Conv3DBackpropInputV2|"
    r"DepthwiseConv2dNative|Tensordot|BatchMatMulV2|BatchMatMulV3|Einsum|einsum|FusedBatchNormV3|FusedBatchNorm|"
    r"ReadVariableOp|Reshape|Squeeze|ExpandDims|Cast|Relu|Relu6|Transpose|transpose|embedding_lookup|GatherV2|"
    r"convolution|depthwise|separable_conv2d|separable_conv1d|conv1d|conv_transpose|conv2d_transpose|batchnorm|"
    r"moments|add|mul|sub|Rsqrt|Identity|Const|Maximum|Minimum|Pad|Mean|strided_slice|concat|split)(?:_?\d+)?")
# Ops whose name marks the tensor a layer's kernel reads: in a fused name,
# the part naming one of them is the weight's own layer.
KERNEL_OPS = re.compile(r"(?:MatMul|Conv2D|Conv1D|Conv3D|convolution|depthwise|separable_conv2d|separable_conv1d|"
                        r"conv1d|Tensordot|embedding_lookup|GatherV2|BatchMatMulV2|BatchMatMulV3|Einsum|einsum|"
                        r"conv_transpose|conv2d_transpose|Conv2DBackpropInput)(?:_?\d+)?")
WRAPPERS = re.compile(r"(?:Stateful)?PartitionedCall(?:_\d+)?")
KERAS3_SUFFIX = re.compile(r"(.+)_\d+")
# Ops that read a variable: the op that used the value is the component before.
READERS = re.compile(r"ReadVariableOp(?:_\d+)?|Read|resource")
# An op component that is also a layer's name in tf.keras' own models
# (MobileNetV3's ``expanded_conv_3/depthwise``): dropped only as the op.
LAYER_LIKE = {"depthwise"}


def layer_parts(name: str) -> list[str] | None:
    """The scope of the layer a tensor name points into, as components
    (model scope included); None for a name without a scope."""
    candidates: list[tuple[list[str], bool]] = []
    for part in name.split(";"):
        comps = [c for c in part.split(":")[0].split("/") if c and not WRAPPERS.fullmatch(c)]
        if len(comps) < 2:
            continue
        popped = [comps.pop()]  # the op itself
        if READERS.fullmatch(popped[0]) and len(comps) > 1:
            popped.append(comps.pop())  # the op that read the variable
        if "while" in comps[1:]:  # a Keras 3 RNN's loop body: lstm/while/lstm_cell/MatMul is layer lstm
            popped += comps[comps.index("while", 1):]
            comps = comps[:comps.index("while", 1)]
        while len(comps) > 1 and OP_COMPONENT.fullmatch(comps[-1]) and comps[-1] not in LAYER_LIKE:
            popped.append(comps.pop())
        candidates.append((comps, any(KERNEL_OPS.fullmatch(c) for c in popped)))
    if not candidates:
        return None
    distinct = {tuple(c) for c, _ in candidates}
    if len(distinct) == 1:
        return candidates[0][0]
    kernels = [c for c, kernel in candidates if kernel]
    return kernels[-1] if kernels else candidates[-1][0]


def tidy_keys(keys: dict[int, list[str]]) -> dict[int, str]:
    """Drop the model's own scope (shared by every key), and Keras 3's
    tracing suffix: where the model scope carries a ``_N`` and every layer
    scope one too, one ``_N`` comes off each component (the layers need not
    share one N: MobileNetV3Small's ``conv_1`` and ``conv_1_2`` are Keras'
    ``conv`` and ``conv_1``), unless that would merge two distinct names
    (a tf.keras ``model_1`` with ``dense_1`` and ``dense_2``). Join the
    rest with '.' (as the ONNX reader names sub-layers: ``mha.query``)."""
    heads = {parts[0] for parts in keys.values()}
    out = dict(keys)
    if len(heads) == 1 and all(len(parts) > 1 for parts in keys.values()):
        head = heads.pop()
        out = {k: parts[1:] for k, parts in keys.items()}
        if KERAS3_SUFFIX.fullmatch(head) and all(KERAS3_SUFFIX.fullmatch(parts[0]) for parts in out.values()):
            stripped = {k: [_strip(c) for c in parts] for k, parts in out.items()}
            before = {tuple(parts) for parts in out.values()}
            if len({tuple(parts) for parts in stripped.values()}) == len(before):
                out = stripped
    return {k: ".".join(parts) for k, parts in out.items()}


def _strip(component: str) -> str:
    match = KERAS3_SUFFIX.fullmatch(component)
    return match.group(1) if match else component
