"""Walks of the layer graph the readers record (Keras' functional
``inbound_nodes``, ONNX consumers): which kernels are scale-invariant and
which normalization scales the next layer can absorb.

Both questions follow a tensor forward through operations that commute with
a positive per-channel rescaling (ReLU, dropout, pooling, reshapes,
padding): ``relu(a*x) = a*relu(x)`` for ``a > 0``. A scale that reaches a
normalization layer on every path is divided out; one that reaches a linear
layer can be taken over by that layer's kernel; one that reaches a residual
``Add``, an attention layer, a saturating activation or a model output
changes what the network computes.
"""

from __future__ import annotations

from typing import Callable

from reglint.model import Layer, Model

# Layers that normalise their input per channel or per sample: a kernel
# feeding one is scale-invariant (van Laarhoven 2017). Keras class names and
# ONNX op types.
NORMALIZERS = {"BatchNormalization", "SyncBatchNormalization", "LayerNormalization", "GroupNormalization",
               "InstanceNormalization", "RMSNormalization", "UnitNormalization", "SimplifiedLayerNormalization"}
# Layers between a kernel and the normaliser that keep invariance under a
# positive rescaling (linear or positively homogeneous, per channel).
PASS_THROUGH = {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "Reshape", "Flatten",
                "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
                "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
                "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
                "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "UpSampling1D", "UpSampling2D",
                "UpSampling3D", "Permute", "Identity", "ReLU", "LeakyReLU", "Activation"}
# Positively homogeneous activations (relu6 is not: it clips at 6).
HOMOGENEOUS_ACTIVATIONS = {None, "linear", "relu", "leaky_relu"}
# Layers whose kernel multiplies its input: a per-channel input scale can be
# moved into the kernel's rows.
LINEAR = {"Dense", "EinsumDense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
          "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
          "Conv", "ConvTranspose", "Gemm", "MatMul"}


def outbound_map(model: Model) -> dict[str, list[Layer]]:
    """Layer path -> the layers it feeds, resolved within each container."""
    by_key: dict[tuple[str, str], Layer] = {(_container(layer), layer.name): layer for layer in model.layers}
    out: dict[str, list[Layer]] = {}
    for layer in model.layers:
        for name in layer.inbound:
            source = by_key.get((_container(layer), name))
            if source is not None:
                out.setdefault(source.path, []).append(layer)
    for layer in model.layers:
        for name in layer.outbound:  # readers that record consumers directly (ONNX)
            target = by_key.get((_container(layer), name))
            if target is not None and target not in out.setdefault(layer.path, []):
                out[layer.path].append(target)
    return out


def _container(layer: Layer) -> str:
    return layer.path.rsplit("/", 1)[0] if "/" in layer.path else ""


def passes_scale(layer: Layer) -> bool:
    return layer.class_name in PASS_THROUGH and layer.activation in HOMOGENEOUS_ACTIVATIONS


def every_path_ends(start: Layer, outbound: dict[str, list[Layer]], accept: Callable[[Layer], bool]) -> bool:
    """True when every path from ``start``'s output, through scale-passing
    layers, ends at a layer ``accept`` takes; False at a model output (no
    consumer) or at any other layer."""
    frontier, seen = list(outbound.get(start.path, [])), set()
    if not frontier:
        return False
    while frontier:
        nxt = frontier.pop()
        if nxt.path in seen:
            continue
        seen.add(nxt.path)
        if accept(nxt):
            continue
        if not passes_scale(nxt):
            return False
        following = outbound.get(nxt.path, [])
        if not following:
            return False
        frontier.extend(following)
    return True
