"""Layers: variables grouped by name, and what follows them."""

from __future__ import annotations

# Positively homogeneous, parameter-free ops: scale invariance survives them.
HOMOGENEOUS = {"Relu", "LeakyRelu", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
               "Reshape", "Flatten", "Transpose", "Identity", "Dropout", "Squeeze", "Unsqueeze"}
ACTIVATIONS = {"Relu": "relu", "LeakyRelu": "leaky_relu", "Sigmoid": "sigmoid", "Tanh": "tanh",
               "Softmax": "softmax", "LogSoftmax": "log_softmax", "Elu": "elu", "Selu": "selu",
               "Gelu": "gelu", "HardSigmoid": "hard_sigmoid", "Softplus": "softplus", "Softsign": "softsign",
               "HardSwish": "hard_swish", "Mish": "mish", "Celu": "celu"}
# Trailing name components of TensorFlow-exported tensors that name the
# variable or the op reading it, not the layer.
TF_SUFFIXES = {"kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance", "embeddings",
               "ReadVariableOp", "MatMul", "BiasAdd", "Conv2D", "weights", "weight"}


def _name_prefix(name: str) -> str | None:
    """``fc1.weight`` -> ``fc1``; ``dense/kernel:0`` -> ``dense``; None for
    anonymous names (``onnx::Conv_12``, ``W``)."""
    if not name or "::" in name:
        return None
    if "/" in name:
        parts = [p for p in name.split(":")[0].split("/") if p]
        while parts and parts[-1] in TF_SUFFIXES:
            parts.pop()
        return ".".join(parts) or None
    if "." not in name:
        return None
    prefix = name.rsplit(".", 1)[0]
    return prefix or None


def _node_scope(name: str) -> str | None:
    """``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0.conv1`` (torch's
    exporter repeats each parent's prefix); None without a scope."""
    parts = [p for p in name.split("/") if p][:-1]
    out: list[str] = []
    for part in parts:
        if out and part.startswith(out[-1] + "."):
            out[-1] = part
        else:
            out.append(part)
    return ".".join(out) or None


def _clean(name: str) -> str:
    """Layer keys never hold '/' (it marks containers in layer paths)."""
    return name.strip("/").replace("/", ".")
