"""Roles by consuming op: what a parameter is (kernel, bias, gamma ...) is
read from the op and input slot that consume it, through value-preserving
ops; a tensor that only constant slots or scalar arithmetic consume is a
constant, not a parameter."""

from __future__ import annotations

from reglint.model import Role
from reglint.readers.onnx.graph import MAX_WALK, MS, VALUE_PASS, GraphIndex, Node
from reglint.readers.onnx.params import Param

# (domain, op) -> {input index: role}. "" is the default ONNX domain.
INPUT_ROLES: dict[tuple[str, str], dict[int, Role]] = {
    **{("", op): {1: Role.KERNEL, 2: Role.BIAS} for op in ("Conv", "ConvTranspose")},
    (MS, "FusedConv"): {1: Role.KERNEL, 2: Role.BIAS},
    ("", "Gemm"): {1: Role.KERNEL, 2: Role.BIAS},
    (MS, "FusedGemm"): {1: Role.KERNEL, 2: Role.BIAS},
    ("", "MatMul"): {0: Role.KERNEL, 1: Role.KERNEL},
    (MS, "FusedMatMul"): {0: Role.KERNEL, 1: Role.KERNEL},
    **{("", op): {1: Role.KERNEL, 2: Role.RECURRENT_KERNEL, 3: Role.BIAS} for op in ("LSTM", "GRU", "RNN")},
    ("", "BatchNormalization"): {1: Role.GAMMA, 2: Role.BETA, 3: Role.MOVING_MEAN, 4: Role.MOVING_VARIANCE},
    **{("", op): {1: Role.GAMMA, 2: Role.BETA}
       for op in ("LayerNormalization", "GroupNormalization", "InstanceNormalization")},
    ("", "RMSNormalization"): {1: Role.GAMMA},
    (MS, "SimplifiedLayerNormalization"): {1: Role.GAMMA},
    (MS, "SkipLayerNormalization"): {2: Role.GAMMA, 3: Role.BETA, 4: Role.BIAS},
    (MS, "SkipSimplifiedLayerNormalization"): {2: Role.GAMMA, 3: Role.BIAS},
    ("", "Gather"): {0: Role.EMBEDDINGS},
    (MS, "EmbedLayerNormalization"): {2: Role.EMBEDDINGS, 3: Role.EMBEDDINGS, 4: Role.EMBEDDINGS,
                                       5: Role.GAMMA, 6: Role.BETA},
    ("", "PRelu"): {1: Role.ALPHA},
    (MS, "Attention"): {1: Role.KERNEL, 2: Role.BIAS},
    (MS, "MultiHeadAttention"): {3: Role.BIAS},
    **{(MS, op): {1: Role.BIAS} for op in ("BiasGelu", "FastGelu", "BiasAdd")},
}
# A shared tensor takes the most specific role among its consumers.
ROLE_RANK = {Role.EMBEDDINGS: 0, Role.KERNEL: 1, Role.DEPTHWISE_KERNEL: 1, Role.POINTWISE_KERNEL: 1,
             Role.RECURRENT_KERNEL: 1, Role.GAMMA: 2, Role.BETA: 2, Role.MOVING_MEAN: 2,
             Role.MOVING_VARIANCE: 2, Role.ALPHA: 2, Role.BIAS: 3, Role.OTHER: 9}
# Ops whose output a constant added to is a bias.
BIASED_OPS = {"MatMul", "Gemm", "Conv", "ConvTranspose", "FusedMatMul"}
# Input slots that hold constants, never weights.
CONSTANT_SLOTS = {("Resize", 1), ("Resize", 2), ("Resize", 3), ("Upsample", 1), ("Clip", 1), ("Clip", 2),
                  ("Pow", 1), ("Dropout", 1), ("Dropout", 2), ("Pad", 2), ("LayerNormalization", 3),
                  ("Expand", 1), ("Tile", 1)}
# Expand and Tile take their data in slot 0: a ViT's class_token [1, 1, D]
# reaches the graph only through Expand and is a trained parameter.
CONSTANT_OPS = {"Range", "ConstantOfShape", "Shape", "Size"}
ARITHMETIC = {"Mul", "Div", "Add", "Sub", "Pow", "Max", "Min", "Sum", "Mean", "Where", "Equal", "Less",
              "Greater", "LessOrEqual", "GreaterOrEqual", "Sqrt", "Neg", "Reciprocal", "Clip", "Cast",
              "Identity", "Expand"}


def uses(index: GraphIndex, name: str) -> list[tuple[Node, int]]:
    """Consumers of a tensor through value-preserving ops, gradient and
    training ops left out."""
    out, frontier, steps = [], [name], 0
    while frontier and steps < MAX_WALK:
        current = frontier.pop()
        for node, i in index.consumers.get(current, []):
            steps += 1
            if node.is_gradient or node.is_training_op:
                continue
            if node.op in VALUE_PASS and i == 0 and node.outputs:
                frontier.extend(node.outputs)
            else:
                out.append((node, i))
    return sorted(out, key=lambda item: item[0].index)


def role_at(index: GraphIndex, node: Node, i: int, p: Param) -> Role:
    """The role input ``i`` of ``node`` gives ``p``."""
    role = INPUT_ROLES.get((node.domain, node.op), {}).get(i)
    if role is Role.KERNEL and node.op == "Conv" and int(node.attr("group", 1) or 1) > 1 \
            and len(p.shape) > 1 and p.shape[1] == 1:
        return Role.DEPTHWISE_KERNEL
    if role is None and node.op == "Add" and node.domain == "" and len(node.inputs) == 2:
        producer = index.producer.get(node.inputs[1 - i])
        if producer is not None and producer.op in BIASED_OPS:
            return Role.BIAS
    return role or Role.OTHER


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
    slots = all((n.op, i) in CONSTANT_SLOTS or n.op in CONSTANT_OPS for n, i in consumers)
    arithmetic = p.size == 1 and all(n.op in ARITHMETIC or (n.op, i) in CONSTANT_SLOTS for n, i in consumers)
    return slots or arithmetic or len(p.shape) == 0
