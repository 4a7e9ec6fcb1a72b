"""Roles by consuming op: what a parameter is (kernel, bias, gamma ...) is
read from the op and input slot that consume it, through value-preserving
ops; a tensor that only constant slots or scalar arithmetic consume is a
constant, not a parameter."""

from __future__ import annotations

from reglint.model import Role
from reglint.readers.onnx.graph import MAX_WALK, MS, VALUE_PASS, GraphIndex, Node
from reglint.readers.onnx.params import Param
from reglint.readers.onnx.quantized import is_dynamic_scale

# (domain, op) -> {input index: role}. "" is the default ONNX domain.
INPUT_ROLES: dict[tuple[str, str], dict[int, Role]] = {
    **{("", op): {1: Role.KERNEL, 2: Role.BIAS} for op in ("Conv", "ConvTranspose")},
    (MS, "FusedConv"): {1: Role.KERNEL, 2: Role.BIAS},
    ("", "Gemm"): {1: Role.KERNEL, 2: Role.BIAS},
    (MS, "FusedGemm"): {1: Role.KERNEL, 2: Role.BIAS},
    ("", "MatMul"): {0: Role.KERNEL, 1: Role.KERNEL},
    ("", "Einsum"): {0: Role.KERNEL, 1: Role.KERNEL, 2: Role.KERNEL},  # tf2onnx: Keras' EinsumDense, attention
    (MS, "FusedMatMul"): {0: Role.KERNEL, 1: Role.KERNEL},
    **{("", op): {1: Role.KERNEL, 2: Role.RECURRENT_KERNEL, 3: Role.BIAS} for op in ("LSTM", "GRU", "RNN")},
    ("", "BatchNormalization"): {1: Role.GAMMA, 2: Role.BETA, 3: Role.MOVING_MEAN, 4: Role.MOVING_VARIANCE},
    **{("", op): {1: Role.GAMMA, 2: Role.BETA}
       for op in ("LayerNormalization", "GroupNormalization", "InstanceNormalization")},
    ("", "RMSNormalization"): {1: Role.GAMMA},
    # onnxruntime registers SimplifiedLayerNormalization (RMSNorm) in the ONNX
    # domain, as its transformer optimizer and onnxruntime-genai write it.
    **{(domain, "SimplifiedLayerNormalization"): {1: Role.GAMMA} for domain in ("", MS)},
    (MS, "SkipLayerNormalization"): {2: Role.GAMMA, 3: Role.BETA, 4: Role.BIAS},
    (MS, "SkipSimplifiedLayerNormalization"): {2: Role.GAMMA, 3: Role.BIAS},
    ("", "Gather"): {0: Role.EMBEDDINGS},
    (MS, "EmbedLayerNormalization"): {2: Role.EMBEDDINGS, 3: Role.EMBEDDINGS, 4: Role.EMBEDDINGS,
                                       5: Role.GAMMA, 6: Role.BETA},
    ("", "PRelu"): {1: Role.ALPHA},
    (MS, "Attention"): {1: Role.KERNEL, 2: Role.BIAS},
    (MS, "MultiHeadAttention"): {3: Role.BIAS},
    **{(MS, op): {1: Role.BIAS} for op in ("BiasGelu", "FastGelu", "BiasAdd")},
    # Quantized ops (onnxruntime.quantization): the integer weight and bias
    # slots; QDQ weights get their role from the float op after
    # DequantizeLinear (a value-preserving op).
    ("", "MatMulInteger"): {0: Role.KERNEL, 1: Role.KERNEL},
    ("", "ConvInteger"): {1: Role.KERNEL},
    ("", "QLinearConv"): {3: Role.KERNEL, 8: Role.BIAS},
    ("", "QLinearMatMul"): {0: Role.KERNEL, 3: Role.KERNEL},
    (MS, "DynamicQuantizeLSTM"): {1: Role.KERNEL, 2: Role.RECURRENT_KERNEL, 3: Role.BIAS},
    (MS, "MatMulIntegerToFloat"): {0: Role.KERNEL, 1: Role.KERNEL, 6: Role.BIAS},
    (MS, "DynamicQuantizeMatMul"): {1: Role.KERNEL, 4: Role.BIAS},
    (MS, "QGemm"): {0: Role.KERNEL, 3: Role.KERNEL, 6: Role.BIAS},
    (MS, "QAttention"): {1: Role.KERNEL, 2: Role.BIAS},
    # Block-quantized weights (``blockwise.py``): LLM deployments.
    (MS, "MatMulNBits"): {1: Role.KERNEL, 5: Role.BIAS},
    (MS, "MatMulBnb4"): {1: Role.KERNEL},
    (MS, "GatherBlockQuantized"): {0: Role.EMBEDDINGS},
}
# A shared tensor takes the most specific role among its consumers.
ROLE_RANK = {Role.EMBEDDINGS: 0, Role.KERNEL: 1, Role.DEPTHWISE_KERNEL: 1, Role.POINTWISE_KERNEL: 1,
             Role.RECURRENT_KERNEL: 1, Role.GAMMA: 2, Role.BETA: 2, Role.MOVING_MEAN: 2,
             Role.MOVING_VARIANCE: 2, Role.ALPHA: 2, Role.BIAS: 3, Role.OTHER: 9}
# Ops whose output a constant added to is a bias.
BIASED_OPS = {"MatMul", "Gemm", "Conv", "ConvTranspose", "FusedMatMul", "MatMulInteger", "ConvInteger", "Einsum",
              "MatMulNBits", "MatMulBnb4"}
# Input slots that hold constants, never weights.
CONSTANT_SLOTS = {("Resize", 1), ("Resize", 2), ("Resize", 3), ("Upsample", 1), ("Clip", 1), ("Clip", 2),
                  ("Pow", 1), ("Dropout", 1), ("Dropout", 2), ("Pad", 2), ("LayerNormalization", 3),
                  ("Expand", 1), ("Tile", 1),
                  # a recurrence's sequence_lens, initial_h and initial_c (the dynamo exporter writes the
                  # zero initial state, batch x hidden, as an initializer): state, not weights (review 31)
                  *((op, i) for op in ("LSTM", "GRU", "RNN") for i in (4, 5, 6)),
                  # quantization scales and zero points (x_scale, y_zero_point ...)
                  ("QuantizeLinear", 1), ("QuantizeLinear", 2), ("DequantizeLinear", 1), ("DequantizeLinear", 2),
                  *(("DynamicQuantizeLSTM", i) for i in range(8, 12)),
                  *(("MatMulIntegerToFloat", i) for i in range(2, 6)),
                  ("DynamicQuantizeMatMul", 2), ("DynamicQuantizeMatMul", 3),
                  *((op, i) for op in ("QLinearConv", "QLinearMatMul") for i in (1, 2, 4, 5, 6, 7)),
                  *(("QGemm", i) for i in (1, 2, 4, 5, 7, 8)), *(("QAttention", i) for i in (3, 4, 6, 7)),
                  ("MatMulNBits", 2), ("MatMulNBits", 3), ("MatMulNBits", 4), ("MatMulBnb4", 2),
                  ("GatherBlockQuantized", 2), ("GatherBlockQuantized", 3),
                  # rotary cos/sin caches, tables of cos(position * inv_freq): onnxruntime's
                  # RotaryEmbedding (2, 3; ONNX's opset-23 op: 1, 2; the other slot
                  # is the integer position ids) and GroupQueryAttention (7, 8)
                  ("RotaryEmbedding", 1), ("RotaryEmbedding", 2), ("RotaryEmbedding", 3),
                  ("GroupQueryAttention", 7), ("GroupQueryAttention", 8)}
# Expand and Tile take their data in slot 0: a ViT's class_token [1, 1, D]
# reaches the graph only through Expand and is a trained parameter.
CONSTANT_OPS = {"Range", "ConstantOfShape", "Shape", "Size"}
ARITHMETIC = {"Mul", "Div", "Add", "Sub", "Pow", "Max", "Min", "Sum", "Mean", "Where", "Equal", "Less",
              "Greater", "LessOrEqual", "GreaterOrEqual", "Sqrt", "Neg", "Reciprocal", "Clip", "Cast",
              "Identity", "Expand"}


# A weight split into parts or joined with others keeps its role: the
# dynamo exporter without its optimizer (torch.onnx.export(dynamo=True,
# optimize=False), torch 2.9+) slices an LSTM/GRU's weight_ih_l0 into its
# gates and concatenates them in ONNX's gate order before the LSTM op.
SPLIT_PASS = {"Slice", "Split", "Concat"}
# Ops that move values without changing them.
RESHAPES = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Transpose"}
# Ops that normalize their input: a constant multiplying their output
# (through reshapes) is a gamma. tf2onnx writes Keras' LayerNormalization
# as Reshape -> BatchNormalization (scale ones, bias zeros, the batch's
# own statistics) -> Reshape -> Mul(gamma) -> Add(beta).
NORMALIZING_OPS = {"BatchNormalization", "InstanceNormalization", "MeanVarianceNormalization",
                   "LayerNormalization", "GroupNormalization", "RMSNormalization"}


def uses(index: GraphIndex, name: str) -> list[tuple[Node, int]]:
    """Consumers of a tensor through value-preserving, slicing and
    concatenating ops, gradient and training ops left out."""
    out, frontier, steps = [], [name], 0
    while frontier and steps < MAX_WALK:
        current = frontier.pop()
        for node, i in index.consumers.get(current, []):
            steps += 1
            if node.is_gradient or node.is_training_op:
                continue
            if node.outputs and ((node.op in VALUE_PASS and i == 0) or (node.op in SPLIT_PASS and node.domain == ""
                                                                        and (i == 0 or node.op == "Concat"))):
                frontier.extend(node.outputs)
            else:
                out.append((node, i))
    return sorted(out, key=lambda item: item[0].index)


def role_at(index: GraphIndex, node: Node, i: int, p: Param) -> Role:
    """The role input ``i`` of ``node`` gives ``p``."""
    role = INPUT_ROLES.get((node.domain, node.op), {}).get(i)
    if role is Role.KERNEL and node.op == "Einsum" and len(p.shape) < 2:
        return Role.OTHER  # a vector in an Einsum is a buffer (rotary inv_freq), not a kernel
    if role is Role.KERNEL and node.op == "Conv" and int(node.attr("group", 1) or 1) > 1 \
            and len(p.shape) > 1 and p.shape[1] == 1:
        return Role.DEPTHWISE_KERNEL
    if role is None and node.op == "Add" and node.domain == "" and len(node.inputs) == 2:
        scaled = index.producer.get(node.inputs[1 - i])
        if scaled is not None and scaled.op == "Mul" and _scales_normalized(index, scaled):
            return Role.BETA
        producer, reshaped = _linear_producer(index, node.inputs[1 - i])
        if producer is not None and producer.op in BIASED_OPS and bears_weight(index, producer) and (
                not reshaped or _out_features(index, producer) in (None, p.size)):
            # after a reshape one value an output feature, where the weight tells
            # the features (a ViT's pos_embed after its patch Conv is no bias)
            return Role.BIAS
    if role is None and node.op == "Mul" and node.domain == "" and len(node.inputs) == 2 \
            and _normalized(index, node.inputs[1 - i]):
        return Role.GAMMA
    return role or Role.OTHER


# Ops a weight passes through on its way into a MatMul (a transposed,
# dequantized or reshaped parameter is still the parameter).
WEIGHT_PATH = ("Transpose", "Cast", "DequantizeLinear", "Identity", "Reshape", "Unsqueeze", "Squeeze")


def bears_weight(index: GraphIndex, op: Node) -> bool:
    """Whether a MatMul multiplies by a weight: one operand reaches, through
    WEIGHT_PATH ops, a tensor no node produces (an initializer or a graph
    input, as a training graph's parameters are). Attention's ``Q @ K^T``
    multiplies two activations: the constant added after it is a mask (an
    export at a fixed sequence length folds the causal mask, ``[1, 1, L, L]``
    of 0 and -3.4e38, into one), not a bias."""
    if op.op not in ("MatMul", "FusedMatMul"):
        return True
    for operand in op.inputs[:2]:
        current = operand
        for _ in range(8):
            producer = index.producer.get(current)
            if producer is None:
                return True
            if producer.op not in WEIGHT_PATH or not producer.inputs:
                break
            current = producer.inputs[0]
    return False


def linear_producer(index: GraphIndex, name: str) -> Node | None:
    """The op producing ``name``, looking through what quantization puts
    between a MatMul and its bias Add: QDQ's QuantizeLinear/DequantizeLinear
    pair (quantize_static), and the Cast to float and the Mul by scales
    after MatMulInteger (quantize_dynamic); and through the reshapes
    tf2onnx leaves between a MatMul and its bias (Keras' Tensordot on 3-D
    inputs, MultiHeadAttention's per-head [heads, dim] biases)."""
    return _linear_producer(index, name)[0]


def _linear_producer(index: GraphIndex, name: str) -> tuple[Node | None, bool]:
    """``linear_producer``, and whether the walk went through a reshape."""
    producer = index.producer.get(name)
    reshaped = False
    for _ in range(6):
        if producer is None or not producer.inputs:
            return producer, reshaped
        if producer.op in ("QuantizeLinear", "DequantizeLinear", "Cast", "Identity") or producer.op in RESHAPES:
            reshaped = reshaped or producer.op in RESHAPES
            producer = index.producer.get(producer.inputs[0])
        elif producer.op == "Mul" and len(producer.inputs) == 2 and producer.domain == "":
            scales = [x for x in producer.inputs if _is_scale(index, x)]
            if len(scales) != 1:
                return producer, reshaped
            other = producer.inputs[1 - producer.inputs.index(scales[0])]
            producer = index.producer.get(other)
        else:
            return producer, reshaped
    return producer, reshaped


def _out_features(index: GraphIndex, op: Node) -> int | None:
    """The output features of a linear op, from its constant weight."""
    if op.op in ("MatMulNBits", "MatMulBnb4"):
        return int(op.attr("N", 0) or 0) or None
    slot = 0 if op.op in ("MatMul", "FusedMatMul", "MatMulInteger") and index.full_constant(op.inputs[0]) else 1
    weight = index.full_constant(op.inputs[slot]) if len(op.inputs) > slot else None
    dims = [int(d) for d in weight.dims] if weight is not None else []
    if len(dims) < 2:
        return None
    if op.op in ("Conv", "ConvInteger", "FusedConv"):
        return dims[0]
    if op.op in ("Gemm", "FusedGemm"):
        return dims[0] if op.attr("transB", 0) else dims[1]
    if op.op == "ConvTranspose":
        return dims[1] * int(op.attr("group", 1) or 1)
    return dims[-1]


def _is_scale(index: GraphIndex, name: str) -> bool:
    """A constant, or DynamicQuantizeLinear's scale times constants."""
    if index.full_constant(name) is not None:
        return True
    producer = index.producer.get(name)
    if producer is None:
        return False
    if producer.op == "DynamicQuantizeLinear":
        return producer.outputs[1:2] == [name]
    return producer.op == "Mul" and all(_is_scale(index, x) for x in producer.inputs if x != name)


def _normalized(index: GraphIndex, name: str) -> bool:
    """``(x - mean) / Sqrt(var + eps)``: LayerNorm as the TorchScript
    exporter writes it below opset 17 (no LayerNormalization op), and
    tf2onnx's and Keras' decompositions alike."""
    producer = _through_reshapes(index, name)
    if producer is not None and producer.op in NORMALIZING_OPS and producer.domain == "":
        return True
    if producer is None or producer.op != "Div" or len(producer.inputs) != 2:
        return False
    denominator = index.producer.get(producer.inputs[1])
    return denominator is not None and denominator.op == "Sqrt"


def _through_reshapes(index: GraphIndex, name: str) -> Node | None:
    producer = index.producer.get(name)
    for _ in range(4):
        if producer is None or producer.op not in RESHAPES or not producer.inputs:
            return producer
        producer = index.producer.get(producer.inputs[0])
    return producer


def decomposed_norm_class(index: GraphIndex, mul: Node) -> str:
    """The normalization a gamma ``Mul`` closes, for the graph walk's
    NORMALIZERS: ``(x - mean) / Sqrt(...)`` is a LayerNorm (TorchScript
    below opset 17), ``x / Sqrt(mean(x^2) + eps)`` an RMSNorm; anything
    else keeps the op's name."""
    for name in mul.inputs:
        if _normalized(index, name):
            producer = _through_reshapes(index, name)
            if producer is not None and producer.op in NORMALIZING_OPS:
                # tf2onnx's LayerNorm: a BatchNormalization of the reshaped
                # input whose scale is computed (ones), not a parameter
                computed = len(producer.inputs) > 1 and index.full_constant(producer.inputs[1]) is None
                return "LayerNormalization" if producer.op == "BatchNormalization" and computed else mul.op
            div = index.producer[name]
            numerator = index.producer.get(div.inputs[0])
            return "LayerNormalization" if numerator is not None and numerator.op == "Sub" else "RMSNormalization"
    return mul.op


def _scales_normalized(index: GraphIndex, mul: Node) -> bool:
    return len(mul.inputs) == 2 and any(_normalized(index, x) for x in mul.inputs)


def assign_role(p: Param, index: GraphIndex, state_names: set[str], updated: set[str] | None) -> bool:
    """Set the role and primary consumer; False when the tensor is a
    constant or optimizer state rather than a parameter."""
    if p.name in state_names:
        return False
    consumers = uses(index, p.name)
    p.uses = len({node.index for node, _ in consumers})
    best: tuple[int, Role, Node | None] = (ROLE_RANK[Role.OTHER] + 1, Role.OTHER, None)
    for node, i in consumers:
        role = role_at(index, node, i, p)
        if ROLE_RANK[role] < best[0]:
            best = (ROLE_RANK[role], role, node)
    p.role, p.node = best[1], best[2]
    if p.role is not Role.OTHER:
        return True
    return not _is_constant(p, consumers, index, updated)


def _is_constant(p: Param, consumers: list[tuple[Node, int]], index: GraphIndex, updated: set[str] | None) -> bool:
    if p.ckpt is not None or (updated and p.name in updated):
        return False
    if not consumers:
        # Only gradient ops read it (loss-gradient seeds), or nothing at all.
        readers = index.consumers.get(p.name, [])
        return bool(readers) and all(n.is_gradient for n, _ in readers)
    if is_dynamic_scale(index, consumers):
        return True  # a weight scale of onnxruntime's dynamic quantization
    slots = all((n.op, i) in CONSTANT_SLOTS or n.op in CONSTANT_OPS for n, i in consumers)
    arithmetic = p.size == 1 and all(n.op in ARITHMETIC or (n.op, i) in CONSTANT_SLOTS for n, i in consumers)
    return slots or arithmetic or len(p.shape) == 0
