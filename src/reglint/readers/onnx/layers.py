"""Layers: variables grouped by name (``fc1.weight``/``fc1.bias`` ->
``fc1``; anonymous names take the consuming node's scope or name), the op
type as ``class_name``, the activation right after, and the layers fed
through positively homogeneous, parameter-free ops (``outbound``, left
empty when any path leaves through another op)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from reglint.errors import UnsafeInputError
from reglint.model import Layer, Role, Variable
from reglint.readers.onnx.graph import MAX_WALK, GraphIndex, Node
from reglint.readers.onnx.params import Param
from reglint.readers.onnx.roles import BIASED_OPS, ROLE_RANK, decomposed_norm_class, linear_producer, role_at, uses

# Ops that normalise with a learned scale, fused or not: their node belongs
# to the layer of that scale, whatever other parameters they take.
NORMALIZING_OPS = {"LayerNormalization", "SimplifiedLayerNormalization", "SkipLayerNormalization",
                   "SkipSimplifiedLayerNormalization", "EmbedLayerNormalization", "BatchNormalization",
                   "InstanceNormalization", "GroupNormalization", "RMSNormalization"}
# Positively homogeneous, parameter-free ops: scale invariance survives them.
HOMOGENEOUS = {"Relu", "LeakyRelu", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
               "Reshape", "Flatten", "Transpose", "Identity", "Dropout", "Squeeze", "Unsqueeze"}
ACTIVATIONS = {"Relu": "relu", "LeakyRelu": "leaky_relu", "Sigmoid": "sigmoid", "Tanh": "tanh",
               "Softmax": "softmax", "LogSoftmax": "log_softmax", "Elu": "elu", "Selu": "selu",
               "Gelu": "gelu", "HardSigmoid": "hard_sigmoid", "Softplus": "softplus", "Softsign": "softsign",
               "HardSwish": "hard_swish", "Mish": "mish", "Celu": "celu"}
MAX_SCOPES_TEXT = 4096  # a name_scopes list longer than this is not an exporter's
# Trailing name components of TensorFlow-exported tensors that name the
# variable (``dense/kernel:0``) or the op reading it, not the layer (tf2onnx:
# ``model/fc1/MatMul/ReadVariableOp:0``, ``model/embed/Tensordot/
# ReadVariableOp:0``, ``model/emb/embedding_lookup/12335:0``, ``model/norm/
# mul/ReadVariableOp:0``, ``model/stem/BiasAdd_weights_fused_bn``).
TF_VARIABLES = {"kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance", "embeddings", "weights",
                "weight", "depthwise_kernel", "pointwise_kernel", "recurrent_kernel"}
TF_OPS = {"ReadVariableOp", "MatMul", "BiasAdd", "Conv2D", "Conv1D", "Conv3D", "Tensordot", "embedding_lookup",
          "separable_conv2d", "separable_conv1d", "FusedBatchNormV3", "add", "mul", "einsum", "Einsum", "Cast",
          "convolution", "conv1d", "Conv2DBackpropInput", "transpose", "Reshape", "Squeeze"}
TF_OP_SUFFIX = re.compile(r"ReadVariableOp(_\d+)?|\d+|\w+_fused_bn")
# Function-call scopes (a SavedModel conversion puts one in front of every
# path, a Keras RNN one around its loop).
TF_WRAPPERS = {"StatefulPartitionedCall", "PartitionedCall"}
# An op component is dropped only while the model's scope and a layer name
# remain: ``model/depthwise`` is the layer named depthwise.
TF_MIN_PARTS = 2
MAX_SCOPE_NAMES = 100_000  # tensor names read to tell a model's scope


def build_layers(params: list[Param], index: GraphIndex, max_layers: int) -> tuple[list[Layer], dict[str, str]]:
    """The layers in graph order, and parameter name -> layer key."""
    param_names = {p.name for p in params}
    tf_min = _tf_min_parts(params, index)
    partners = _bias_partners(params, index, tf_min)
    keys = strip_common_scope({p.name: _layer_key(p, param_names, partners, tf_min) for p in params}, params)
    keys.update(_nameless_biases(params, index, keys))
    groups: dict[str, list[Param]] = {}
    for p in params:
        p.layer = keys[p.name]
        groups.setdefault(p.layer, []).append(p)
    owner = {p.name: p.layer for p in params}
    if len(groups) > max_layers:
        raise UnsafeInputError(f"{len(groups)} layers, over the limit of {max_layers}")
    order = sorted(groups, key=lambda k: min((p.node.index for p in groups[k] if p.node), default=1 << 60))
    node_layer = _node_layers(index, groups)
    layer_nodes: dict[str, set[int]] = {}
    for node_index, key in node_layer.items():
        layer_nodes.setdefault(key, set()).add(node_index)
    layers = [_layer(index, key, groups[key], node_layer, layer_nodes.get(key, set())) for key in order]
    return layers, owner


def _layer_key(p: Param, param_names: set[str], partners: dict[int, str], tf_min: int) -> str:
    prefix = _name_prefix(p.name, tf_min)
    if prefix:
        return prefix
    node = p.node
    if node is None:
        return _clean(p.name)
    for other in node.inputs:  # a sibling weight with a readable name
        sibling = _name_prefix(other, tf_min) if other != p.name and other in param_names else None
        if sibling:
            return sibling
    if node.index in partners:
        return partners[node.index]
    return (torch_module(node) or _node_scope(node.name, tf_min) or _input_scope(node, tf_min) or _clean(node.name)
            or f"{node.op}_{node.index}")


def _nameless_biases(params: list[Param], index: GraphIndex, keys: dict[str, str]) -> dict[str, str]:
    """A bias with no readable name, added to the output of a kernel's op
    with none either (Keras 3's torch-backend export names nothing:
    ``onnx::Conv_131``, ``onnx::Add_134``), joins the kernel's layer."""
    kernels = {p.node.index: p for p in params if p.node is not None and p.role.is_kernel_like}
    out = {}
    for p in params:
        if p.role is not Role.BIAS or p.node is None or p.node.op != "Add" or _name_prefix(p.name):
            continue
        for name in p.node.inputs:
            producer = linear_producer(index, name) if name != p.name else None
            kernel = kernels.get(producer.index) if producer is not None else None
            if kernel is not None and not _name_prefix(kernel.name):
                out[p.name] = keys[kernel.name]
                break
    return out


def _tf_min_parts(params: list[Param], index: GraphIndex) -> int:
    """How many components of a TensorFlow path an op name may not take:
    two (the model's scope and a layer: ``model/depthwise`` is a layer)
    when every parameter and tensor name starts with one scope, as a Keras
    model's do; one when they start with their layers (``from_function``
    on layers called without a model: ``separable/separable_conv2d/
    depthwise``)."""
    names = [p.name for p in params] + list(itertools.islice(index.producer, MAX_SCOPE_NAMES))
    heads = {parts[0] for parts in map(_tf_parts, names) if len(parts) > 1}
    return TF_MIN_PARTS if len(heads) <= 1 else 1


def _tf_parts(name: str) -> list[str]:
    if "/" not in name or name.startswith("/") or "::" in name:
        return []
    raw = [p for p in name.split(":")[0].split("/") if p]
    if len(raw) > 1 and raw[0] == "Func" and raw[1] in TF_WRAPPERS:
        return []
    return [p for p in raw if p not in TF_WRAPPERS]


def _bias_partners(params: list[Param], index: GraphIndex, tf_min: int = TF_MIN_PARTS) -> dict[int, str]:
    """MatMul/Conv node index -> the readable name prefix of the bias added
    to its output. A folded or quantized kernel (``val_1_quantized``, its
    MatMulInteger node renamed by onnxruntime's quantize_dynamic and
    stripped of the dynamo exporter's scope) joins its bias's layer."""
    out: dict[int, str] = {}
    for p in params:
        prefix = _name_prefix(p.name, tf_min)
        if p.role is not Role.BIAS or p.node is None or p.node.op != "Add" or not prefix:
            continue
        for name in p.node.inputs:
            producer = linear_producer(index, name)
            if producer is not None and producer.op in BIASED_OPS:
                out.setdefault(producer.index, prefix)
    return out


def _node_layers(index: GraphIndex, groups: dict[str, list[Param]]) -> dict[int, str]:
    """Node index -> the layer whose weights it consumes in a role."""
    out: dict[int, str] = {}
    scales: dict[int, str] = {}  # a normalizing node -> the layer of its scale and offset
    for key, members in groups.items():
        for p in members:
            for node, i in uses(index, p.name):
                role = role_at(index, node, i, p)
                if role is not Role.OTHER or node is p.node:
                    out.setdefault(node.index, key)
                if role in (Role.GAMMA, Role.BETA) and node.op in NORMALIZING_OPS:
                    scales.setdefault(node.index, key)
    # onnxruntime's SkipLayerNormalization also takes the previous MatMul's
    # bias: the node is the normalization's, so walks from the MatMul reach it
    out.update(scales)
    return out


def _layer(index: GraphIndex, key: str, members: list[Param], node_layer: dict[int, str], own: set[int]) -> Layer:
    main = min(members, key=lambda p: (ROLE_RANK[p.role], p.node.index if p.node else 1 << 60))
    node = main.node
    pointwise = any(p.role is Role.DEPTHWISE_KERNEL for p in members)
    variables = [Variable(name=p.name, role=_pointwise(p) if pointwise else p.role, shape=p.shape,
                          trainable=p.trainable, regularizer=p.regularizer, stats=p.stats, dtype=p.type_name,
                          location=f"{p.scope}:{p.name}" if p.scope else p.name) for p in members]
    reach = _reach(index, own, node_layer)
    outbound, downstream, activation = reach.outbound, reach.downstream, reach.activation
    # a fused node that takes this layer's weights but is another layer's (an
    # embedding table inside EmbedLayerNormalization) consumes it directly
    fused = [node_layer[n.index] for p in members for n, _ in uses(index, p.name)
             if node_layer.get(n.index) not in (None, key)]
    outbound = list(dict.fromkeys(fused + outbound))
    downstream = list(dict.fromkeys(fused + downstream))
    config = {"op_type": node.op if node else None, "domain": node.domain if node else None,
              "node": node.name if node else None, "graph": main.scope or "main",
              "attributes": {k: v for k, v in (node.attrs() if node else {}).items() if v is not None}}
    class_name = node.op if node else "Initializer"
    if node is not None and node.op == "Mul" and main.role is Role.GAMMA:
        class_name = decomposed_norm_class(index, node)  # a LayerNorm written as ops: a normalizer to the rules
    return Layer(name=key, path=key, class_name=class_name,
                 trainable=any(p.trainable for p in members), variables=variables,
                 activation=activation, units=_units(main), outbound=outbound, downstream=downstream,
                 feeds_output=reach.feeds_output, calls=max(1, *(p.uses for p in members)), config=config)


def _pointwise(p: Param) -> Role:
    """In a layer that also holds a depthwise kernel (a separable
    convolution, as tf2onnx writes Keras' SeparableConv2D: a grouped Conv
    then a 1x1 Conv), the 1x1 kernel is the pointwise one."""
    spatial = p.shape[2:]
    return Role.POINTWISE_KERNEL if p.role is Role.KERNEL and spatial and all(d == 1 for d in spatial) else p.role


def _units(p: Param) -> int | None:
    """The output width of the layer's main op, where the weight shows it."""
    node, shape = p.node, p.shape
    if node is None or not shape:
        return None
    op = node.op
    if op in ("LSTM", "GRU", "RNN"):
        return node.attr("hidden_size")
    if p.role is Role.EMBEDDINGS:
        return shape[-1]
    if not p.role.is_kernel_like:
        return None
    if op == "Gemm" and len(shape) == 2:
        return shape[0] if node.attr("transB", 0) else shape[1]
    if op in ("MatMul", "FusedMatMul", "MatMulNBits", "MatMulBnb4"):
        return shape[-1]
    if op in ("Conv", "FusedConv"):
        return shape[0]
    if op == "ConvTranspose" and len(shape) > 1:
        return shape[1] * int(node.attr("group", 1) or 1)
    return None


@dataclass
class _Reach:
    """What a layer's output reaches before the next layers (``_reach``)."""

    outbound: list[str]  # through homogeneous ops only; empty when any such path leaves through another op
    downstream: list[str]  # through parameter-free ops of any kind
    feeds_output: bool  # a path of parameter-free ops reaches a graph output (or the walk was cut short)
    activation: str | None  # the activation applied right after the layer


def _reach(index: GraphIndex, own: set[int], node_layer: dict[int, str]) -> _Reach:
    """One walk forward from the layer's nodes (``own``) through the ops no
    layer owns, to the layers they reach: each path remembers whether every
    op on it so far was positively homogeneous (scale invariance survives
    those, order survives every op). A walk cut short by ``MAX_WALK`` is
    unknown: no scale-passing consumers, and a graph output reached."""
    starts = [o for i in own for o in index.nodes[i].outputs]
    first = [n for name in starts for n, _ in index.consumers.get(name, [])
             if n.index not in own and not n.is_gradient]
    activation = ACTIVATIONS.get(first[0].op) if len(first) == 1 else None
    scaled: list[str] = []
    anywhere: list[str] = []
    clean, to_output, steps = True, False, 0
    frontier = [(name, True) for name in starts]
    seen: dict[int, bool] = {}  # node -> reached through homogeneous ops only
    while frontier:
        if steps >= MAX_WALK:
            return _Reach([], anywhere, True, activation)
        name, homogeneous = frontier.pop()
        steps += 1
        if name in index.outputs:
            to_output = True
            clean = clean and not homogeneous
        for node, _ in index.consumers.get(name, []):
            if node.index in own or node.is_gradient or seen.get(node.index) in (True, homogeneous):
                continue
            seen[node.index] = homogeneous
            owner = node_layer.get(node.index)
            if owner is not None:
                for found in ((scaled, anywhere) if homogeneous else (anywhere,)):
                    if owner not in found:
                        found.append(owner)
                continue
            passes = node.op in HOMOGENEOUS
            clean = clean and (passes or not homogeneous)
            frontier.extend((out, homogeneous and passes) for out in node.outputs)
    return _Reach(scaled if clean else [], anywhere, to_output, activation)


def _name_prefix(name: str, tf_min: int = TF_MIN_PARTS) -> str | None:
    """``fc1.weight`` -> ``fc1``; ``dense/kernel:0`` -> ``dense``; None for
    anonymous names (``onnx::Conv_12``, ``W``)."""
    if not name or "::" in name:
        return None
    if "/" in name:
        return _tf_layer(name.split(":")[0].split("/"), tf_min)
    if "." not in name:
        return None
    prefix = name.rsplit(".", 1)[0]
    return prefix or None


def _tf_layer(parts: list[str], tf_min: int = TF_MIN_PARTS) -> str | None:
    """A TensorFlow path's layer: wrappers, variable and op names dropped;
    None for a function's input (``Func/StatefulPartitionedCall/input/_1``)."""
    parts = _tf_parts("/".join(parts)) if "/" in "/".join(parts) else [p for p in parts if p]
    if not parts:
        return None
    while len(parts) > 1 and parts[-1] in TF_VARIABLES:
        parts.pop()
    if len(parts) > 2 and TF_OP_SUFFIX.fullmatch(parts[-1]) and parts[-2] in TF_OPS:
        parts = parts[:-2]  # ``fc/MatMul/ReadVariableOp``: a variable an op reads, whatever is left
    while len(parts) > tf_min and (parts[-1] in TF_OPS or TF_OP_SUFFIX.fullmatch(parts[-1])):
        parts.pop()
    return ".".join(parts) or None


def torch_module(node: Node) -> str | None:
    """The module path the dynamo exporter (torch 2.5+) records on each node:
    metadata ``pkg.torch.onnx.name_scopes`` = ``"['', 'encoder',
    'encoder.self_attn', 'linear_1']"`` (module paths, then the op) ->
    ``encoder.self_attn``. Its node names (``node_MatMul_5``) and folded
    weights (``val_4``) carry no scope."""
    import ast

    for prop in node.proto.metadata_props:
        if prop.key != "pkg.torch.onnx.name_scopes" or len(prop.value) > MAX_SCOPES_TEXT:
            continue
        try:
            scopes = ast.literal_eval(prop.value)  # a list of str literals, never evaluated code
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
        if isinstance(scopes, list) and all(isinstance(x, str) for x in scopes):
            modules = [x for x in scopes[:-1] if x]
            return _clean(modules[-1]) if modules else None
    return None


def _node_scope(name: str, tf_min: int = TF_MIN_PARTS) -> str | None:
    """``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0.conv1`` (torch's
    exporter repeats each parent's prefix); a TensorFlow path (no leading
    '/': tf2onnx) -> its layer, as for parameter names; None without a
    scope."""
    if "/" in name and not name.startswith("/"):
        prefix = _tf_layer(name.split("/")[:-1], tf_min)  # the last component is the node's own name
        return prefix if prefix and ("." in prefix or tf_min < TF_MIN_PARTS) else None
    parts = [p for p in name.split("/") if p][:-1]
    out: list[str] = []
    for part in parts:
        if out and part.startswith(out[-1] + "."):
            out[-1] = part
        else:
            out.append(part)
    return ".".join(out) or None


def _input_scope(node: Node, tf_min: int = TF_MIN_PARTS) -> str | None:
    """A node tf2onnx made without a scope (``LSTM__1380``, reading
    ``model/lstm/PartitionedCall/transpose:0``): the layer of its data
    input."""
    if "/" in node.name or not node.inputs or "/" not in node.inputs[0] or node.inputs[0].startswith("/"):
        return None
    prefix = _name_prefix(node.inputs[0], tf_min)
    if prefix and node.op in ("LSTM", "GRU", "RNN") and node.attr("direction") in ("bidirectional", b"bidirectional"):
        # Keras' Bidirectional: both directions in one op, read from the forward layer's scope
        head, _, last = prefix.rpartition(".")
        prefix = head if head and last.startswith("forward_") else prefix
    return prefix if prefix and ("." in prefix or tf_min < TF_MIN_PARTS) else None


def strip_common_scope(keys: dict[str, str], params: list[Param]) -> dict[str, str]:
    """tf2onnx starts every TensorFlow name with the model's own scope
    (``mlp/fc1/MatMul/ReadVariableOp:0``): the layer is ``fc1``, as Keras
    names it. Dropped only when every TensorFlow-style parameter name
    gives a key under that one scope."""
    tf_keys = [keys[p.name] for p in params if "/" in p.name and not p.name.startswith("/")
               and _name_prefix(p.name)]
    heads = {key.split(".")[0] for key in tf_keys}
    if len(heads) != 1 or not all("." in key for key in tf_keys):
        return keys
    head = heads.pop() + "."
    return {name: key[len(head):] if key.startswith(head) and len(key) > len(head) else key
            for name, key in keys.items()}


def _clean(name: str) -> str:
    """Layer keys never hold '/' (it marks containers in layer paths)."""
    return name.strip("/").replace("/", ".")
