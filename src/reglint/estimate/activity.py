"""Expected activity-regularizer penalty per sample at initialisation.

Keras adds ``activity_regularizer(output)`` summed over every element of the
output and, since Keras 3.14 (PR #22021) and in tf.keras 2, divided by the
batch size: a per-sample penalty that grows with the number of output
elements (units times time steps or spatial positions). Keras 3.0-3.13 did
not divide (issue #22018), so there the penalty is B times larger.

A pre-activation of a layer with fan_in inputs of second moment ``m_in`` has
variance ``v = fan_in * E[w^2] * m_in``; the post-activation moments
``E[a^2]`` and ``E[|a|]`` are integrated numerically (Gauss-Hermite) for the
layer's activation. ``m_in`` is 1 for the model's (standardised) inputs and
is propagated layer by layer through the graph (normalization layers reset
it to 1), so a deep layer's activations are not assumed standardised.
Verified against Keras 3.15's own ``model.losses`` (Dense relu glorot: 71.91
predicted, 71.43 measured); fixtures/keras/scenario_activity.keras: 2.84 predicted, 2.856
measured by Keras 3.15 on standard-normal inputs.
"""

from __future__ import annotations

import math

import numpy as np

from reglint.estimate.gaussian import ACTIVATIONS as _ACTIVATIONS
from reglint.estimate.gaussian import gauss_hermite as _gauss_hermite
from reglint.estimate.init_scale import element_moments
from reglint.estimate.recurrent import RECURRENT, recurrent_output_moment
from reglint.model import Layer, Model, Role
from reglint.model.nesting import NestedGraph
from reglint.model.versions import major_minor


def activation_moments(activation: str | None, variance: float) -> tuple[float, float] | None:
    """(E[a^2], E[|a|]) for a ~ act(z), z ~ N(0, variance)."""
    fn = _ACTIVATIONS.get(activation)
    if fn is None:
        return None
    nodes, weights = _gauss_hermite()
    a = fn(math.sqrt(max(variance, 0.0)) * nodes)
    return float(np.dot(weights, a * a)), float(np.dot(weights, np.abs(a)))


def output_elements(layer: Layer) -> int | None:
    """Output elements per sample: the product of the output shape's
    dimensions after the batch, where the reader carried the shapes
    (``Layer.output_shape``); else units times positions, where the
    layer's config gives the input shape."""
    shape = layer.output_shape
    if shape and len(shape) >= 2 and all(isinstance(d, int) and d > 0 for d in shape[1:]):
        return math.prod(shape[1:])
    if layer.units is None:
        return None
    shape = (layer.config.get("build_config") or {}).get("input_shape") if isinstance(layer.config, dict) else None
    positions = 1
    if isinstance(shape, list) and len(shape) > 2:
        inner = [d for d in shape[1:-1] if isinstance(d, int)]
        if len(inner) == len(shape) - 2:
            positions = math.prod(inner)
            strides = layer.config.get("strides")
            if isinstance(strides, list) and strides and all(isinstance(s, int) for s in strides):
                positions = max(1, positions // math.prod(strides))
    return layer.units * positions


_NORMALIZERS = {"BatchNormalization", "SyncBatchNormalization", "LayerNormalization", "GroupNormalization",
                "RMSNormalization", "UnitNormalization"}


def output_second_moments(model: Model, graph: NestedGraph | None = None) -> dict[str, float]:
    """E[a^2] of each layer's output at initialisation, for standardised
    model inputs, propagated in model order along the recorded graph,
    across nested models' boundaries (a layer inside a nested model reads
    what the parent feeds it; a layer after a nested model reads the layer
    behind the output it takes)."""
    out: dict[str, float] = {}
    graph = graph or NestedGraph(model)
    for layer in model.layers:
        m_in = input_second_moment(layer, out, graph)
        kernel = next((v for v in layer.variables if v.role is Role.KERNEL), None)
        if layer.class_name in _NORMALIZERS:
            moment = 1.0
        elif layer.class_name == "Embedding":
            table = next((v for v in layer.variables if v.role is Role.EMBEDDINGS), None)
            moments = element_moments(table) if table is not None else None
            moment = moments[0] if moments else m_in
        elif kernel is not None and (kernel_moments := element_moments(kernel)) is not None:
            fan_in, _ = kernel.fans()
            act = activation_moments(layer.activation, fan_in * kernel_moments[0] * m_in)
            moment = act[0] if act else m_in
        elif layer.class_name in ("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax"):
            name = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu"}.get(layer.class_name, layer.activation)
            act = activation_moments(name, m_in) if name != "softmax" else None
            moment = act[0] if act else m_in
        else:
            moment = m_in
        out[layer.path] = moment
    return out


def input_second_moment(layer: Layer, moments: dict[str, float], graph: NestedGraph) -> float:
    """The mean second moment of the layers feeding ``layer`` (1: a model
    input, or nothing known)."""
    values = [moments[src.path] for src in graph.feeding(layer) if src.path in moments]
    return sum(values) / len(values) if values else 1.0


# Layers whose output is their input (an activity penalty on one weighs what
# the layer feeding it produced).
PASS_THROUGH = frozenset({"ActivityRegularization"})


def pass_through_source(layer: Layer, graph: NestedGraph) -> Layer | None:
    """The layer whose output a pass-through layer hands on (its one
    feeding layer), else None."""
    if layer.class_name not in PASS_THROUGH:
        return None
    feeding = graph.feeding(layer)
    return feeding[0] if len(feeding) == 1 else None


def activity_penalty_per_sample(layer: Layer, input_moment: float = 1.0,
                                source: Layer | None = None, output_moment: float | None = None) -> float | None:
    """``source``: for a pass-through layer, the layer whose output it
    hands on (``pass_through_source``): its elements, of second moment
    ``input_moment``, are penalised. A layer without a kernel whose output
    moment is known (an Embedding: its table's; ``output_moment``) is
    judged on its own output. There ``E|a|`` is taken at its bound
    ``sqrt(E[a^2])``."""
    reg = layer.activity_regularizer
    kernel = next((v for v in layer.variables if v.role is Role.KERNEL), None)
    if reg is None or reg.kind not in ("l1", "l2", "l1l2"):
        return None
    if kernel is None:
        moment = input_moment if layer.class_name in PASS_THROUGH else output_moment
        elements = output_elements(layer) or (output_elements(source) if source is not None else None)
        if elements is None or moment is None:
            return None
        return elements * (reg.l2 * moment + reg.l1 * math.sqrt(moment))
    elements = output_elements(layer)
    if layer.class_name in RECURRENT:  # a state carried over the steps, not act(z)
        second = recurrent_output_moment(layer, input_moment)
        if second is None or elements is None:
            return None
        return elements * (reg.l2 * second + reg.l1 * math.sqrt(second))
    moments = element_moments(kernel)
    if moments is None or elements is None:
        return None
    fan_in, _ = kernel.fans()
    act = activation_moments(layer.activation, fan_in * moments[0] * input_moment)
    if act is None:
        return None
    second, first = act
    return elements * ((reg.l2 if reg.kind != "l1" else 0.0) * second + (reg.l1 if reg.kind != "l2" else 0.0) * first)


def keras_divides_by_batch(framework: str, version: str | None) -> bool:
    """False for Keras 3.0-3.13, which summed activity penalties over the batch."""
    found = major_minor(version) if framework == "keras" else None
    if found is None:
        return True
    return not (found[0] == 3 and found[1] < 14)
