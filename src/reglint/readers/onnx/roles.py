"""Roles by consuming op."""

from __future__ import annotations

from reglint.model import Role
from reglint.readers.onnx.graph import MS

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
