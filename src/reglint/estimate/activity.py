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

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from reglint.estimate.dot_attention import WEIGHTLESS_ATTENTION, own_score, score_variance, self_square_sum
from reglint.estimate.gaussian import ACTIVATIONS as _ACTIVATIONS
from reglint.estimate.gaussian import constant_share as _constant_share
from reglint.estimate.gaussian import gauss_hermite as _gauss_hermite
from reglint.estimate.init_scale import element_moments
from reglint.estimate.pooling import pooled_positions
from reglint.estimate.recurrent import RECURRENT, recurrent_outputs, sequence_share, step_retention
from reglint.estimate.steps import PER_STEP, STEP_WINDOWS, Lag, one_lag, window_over_steps
from reglint.model import Layer, Model, Role
from reglint.model.nesting import NestedGraph, layer_container
from reglint.model.versions import major_minor

if TYPE_CHECKING:
    from reglint.engine.calls import CallGraph


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
    positions = 1  # a length the file leaves open counts one step (RL010 says it is a lower bound: open_length)
    if isinstance(shape, list) and len(shape) > 2:
        inner = [d for d in shape[1:-1] if isinstance(d, int)]
        if len(inner) == len(shape) - 2:
            positions = math.prod(inner)
            strides = layer.config.get("strides")
            if isinstance(strides, list) and strides and all(isinstance(s, int) for s in strides):
                positions = max(1, positions // math.prod(strides))
    return layer.units * positions


def open_length(layer: Layer) -> bool:
    """Whether the layer's output (or, where it has none recorded, its
    input) has a dimension besides the batch and the features that the file
    leaves open: a sequence of any length (``Input((None, 16))``), or a
    length lost behind a layer whose output shape is not recorded (a Lambda)."""
    shape = layer.output_shape or layer.input_shape
    if not shape and isinstance(layer.config, dict):
        shape = (layer.config.get("build_config") or {}).get("input_shape")
    return isinstance(shape, (list, tuple)) and len(shape) > 2 and any(d is None for d in shape[1:-1])


def _number(value, default: float) -> float:
    """A config's scalar (a per-channel list: its mean square's root)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        return math.sqrt(sum(v * v for v in value) / len(value))
    return default


def standardised(input_moment: float | None) -> bool:
    """Whether the model inputs' mean square (``--input-var``; None: not
    given) is that of standardised data, within 10% of 1: elsewhere the
    inputs carry a mean (pixels in [0, 1]), which drives a recurrent state
    at every step and survives an attention's averaging over tokens
    (reviews 58-60); profile measures about 1 on standardised data."""
    return input_moment is None or abs(input_moment - 1.0) <= 0.1


def mean_share(input_moment: float | None, input_mean: float | None = None) -> float:
    """The share of the model inputs' second moment that is a mean, the
    same at every step and token (a recurrent state adds it up, an
    attention's average keeps it): ``mean^2 / E[x^2]`` where ``--input-mean``
    gives the mean; else none on standardised inputs and all of it on others
    (pixels in [0, 1] carry three quarters; inputs of zero mean and another
    scale none: review 63, 4, 1.6-6x high there without ``--input-mean 0``).

    >>> mean_share(None), mean_share(1 / 3), mean_share(1 / 3, 0.5), mean_share(4.0, 0.0)
    (0.0, 1.0, 0.75, 0.0)
    """
    if input_mean is not None:
        return min(1.0, input_mean * input_mean / (input_moment if input_moment else 1.0))
    return 0.0 if standardised(input_moment) else 1.0


_NORMALIZERS = {"BatchNormalization", "SyncBatchNormalization", "LayerNormalization", "GroupNormalization",
                "RMSNormalization", "UnitNormalization"}


def output_second_moments(model: Model, graph: NestedGraph | None = None, input_moment: float = 1.0,
                          calls: CallGraph | None = None, share: float | None = None,
                          shares: dict[str, float] | None = None, independent: bool = True) -> dict[str, float]:
    """E[a^2] of each layer's output at initialisation, for model inputs of
    second moment ``input_moment`` (1: standardised), propagated in model
    order along the recorded graph, across nested models' boundaries (a
    layer inside a nested model reads what the parent feeds it; a layer
    after a nested model reads the layer behind the output it takes).

    With ``calls`` (``engine.calls``: some layer runs more than once), call
    by call: each call reads what that call was fed (review 60: an attention
    called on its own output read the model's inputs at its second call,
    1.7x high); a shared layer's calls are keyed by their node keys
    (``path#callK``), its path holds its first call's moment. ``share``:
    the model inputs' ``mean_share`` (None: its default for
    ``input_moment``); ``shares``, where given, is filled with the share of
    what each layer (node) reads: an Embedding's or a BatchNormalization's
    output carries none of the inputs' mean (review 66, 3: token ids beside
    features of mean 3 gave an LSTM after the Embedding 2.9x Keras).
    ``independent``: an average over positions (``pooled_positions``)
    divides the part of the moment that is not a mean by their number, as
    on independent positions; False keeps it whole, as on positions that
    move together (as real images' neighbouring pixels often do)."""
    out: dict[str, float] = {}
    graph = graph or NestedGraph(model)
    share = mean_share(input_moment) if share is None else share
    carried: dict[str, float] = {}  # the share of each output that is the inputs' mean
    read = shares if shares is not None else {}
    lags: dict[str, Lag] = {}  # how each sequence output's steps move together, where a state carries them
    if calls is None:
        for layer in model.layers:
            m_in = input_second_moment(layer, out, graph, input_moment)
            sources = [carried[src.path] for src in graph.feeding(layer) if src.path in carried]
            read[layer.path] = own = sum(sources) / len(sources) if sources else share
            attention = attention_inputs(layer, graph, out, input_moment, own) \
                if layer.class_name in _ATTENDING else None
            lag = one_lag([src.path for src in graph.feeding(layer)], lags)
            out[layer.path], carried[layer.path], found = _output(layer, m_in, attention, own, independent, lag)
            if found is not None:
                lags[layer.path] = found
        return out
    producers = calls.producers()
    for key in calls.order(model):
        origin = calls.origin.get(key)
        if origin is None:
            continue
        m_in = node_input_moment(key, producers, out, input_moment)
        read[key] = own = node_input_moment(key, producers, carried, share)
        run = call_run(origin, calls, key)
        attention = node_attention_inputs(run, key, producers, graph, out, input_moment, own)
        lag = one_lag(producers.get(key, []), lags)  # this call's steps (review 64)
        out[key], carried[key], found = _output(run, m_in, attention, own, independent, lag)
        if found is not None:
            lags[key] = found
        out.setdefault(origin.path, out[key])
    return out





# Layers whose output carries none of the inputs' mean: a table's rows (the
# ids are no scale), statistics of the batch or of the data taken away.
_MEAN_FREE = {"Embedding", "BatchNormalization", "SyncBatchNormalization", "Normalization"}


def _output(layer: Layer, m_in: float, attention: AttentionInputs | None, share: float,
            independent: bool = True, lag: Lag | None = None) -> tuple[float, float, Lag | None]:
    """(E[a^2], the share of it that is a mean, how its steps move together)
    of ``layer``'s output where it reads ``m_in`` of which ``share`` is a
    mean. An average over ``n`` positions keeps the mean and divides the
    rest by ``n`` on independent positions (review 65, 7: a Dense after
    GlobalAveragePooling1D over 20 steps of a linear Dense was 20x Keras'
    penalty); a window over a recurrent state's steps, by fewer
    (``steps.window_over_steps``)."""
    positions = pooled_positions(layer) if independent else None
    if positions and lag is not None and layer.class_name in STEP_WINDOWS and \
            layer.config.get("data_format") != "channels_first":
        return window_over_steps(layer, m_in, share, lag, positions)
    if positions:
        moment = m_in * (share + (1.0 - share) / positions)
        return moment, (share * m_in / moment if moment > 0 else share), None
    if layer.class_name in ATTENTION_LAYERS and attention is not None:
        found = attention_output_share(layer, attention)
        return _output_moment(layer, m_in, attention, share), share if found is None else found, None
    if attention is not None and (averaged := _weightless_attention(layer, attention)) is not None:
        return averaged[0], averaged[1], None
    moment, own = _output_moment(layer, m_in, attention, share), _output_share(layer, m_in, share)
    if (retention := step_retention(layer)) is not None:
        return moment, own, Lag(retention, share)
    if lag is not None and layer.class_name in PER_STEP:
        return moment, own, Lag(lag.retention, _output_share(layer, m_in, lag.base))
    return moment, own, None


def _weightless_attention(layer: Layer, inputs: AttentionInputs) -> tuple[float, float] | None:
    """(E[a^2], its share the same at every query) of a Keras ``Attention``
    or ``AdditiveAttention`` output: the values' moment, their shared mean
    whole and the rest times ``E[sum a_j^2]`` over the value tokens
    (``dot_attention``; an Embedding's small vectors: every token weighed
    alike, 9.4x and 33x Keras' penalty after one taken as passing its values
    on). None where the scores are not known."""
    variance = score_variance(layer, inputs.query, inputs.key)
    if variance is None or not inputs.value_tokens:
        return None
    share, tokens = inputs.mean_share, inputs.value_tokens
    squares = softmax_square_sum(tokens, variance) if not inputs.self_keyed else \
        self_square_sum(tokens, variance, own_score(layer, inputs.query), softmax_square_sum)
    total = share + (1.0 - share) * squares
    return inputs.value * total, (_query_share((share + (1.0 - share) / tokens) / total, inputs.query_tokens)
                                  if total > 0 else share)


def _query_share(common: float, queries: int) -> float:
    """The share that makes an average over the ``queries`` positions keep
    ``common`` of the moment: what the positions differ by sums to zero over
    them (each value's weight less its mean weight), so the average keeps
    the common part alone, not a ``1/N`` of the rest too (a Dense's outputs
    attending to themselves then pooled: 1.75x and 1.48x Keras' penalty)."""
    if queries < 2:
        return min(1.0, common)
    return min(1.0, max(0.0, (common - 1.0 / queries) / (1.0 - 1.0 / queries)))


def _output_share(layer: Layer, m_in: float, share: float) -> float:
    """The share of ``layer``'s output moment that is the same at every
    position and step of a sample (the inputs' mean, and what an
    activation, an attention's average or a recurrent state adds), where
    it reads ``m_in`` of which ``share`` is: none after an Embedding or a
    normalization by batch or data statistics (a frozen BatchNormalization
    keeps it); an activation makes one of inputs of zero mean (a ReLU's is
    ``1/pi`` of its output's moment: ``constant_share``); a recurrent
    layer's steps share its carried state (``sequence_share``); a linear
    map keeps it. An Embedding's rows share the table's own mean, a
    ``1/V`` of their moment over ``V`` rows drawn alike, which tokens drawn
    from the whole vocabulary keep in common (40 tokens of 200: an average
    over them keeps ``1/40 + 1/200``, not ``1/40``); frequent tokens share
    more, which the file does not say."""
    if layer.class_name == "Embedding" and isinstance(rows := layer.config.get("input_dim"), int) and rows > 0:
        return 1.0 / rows
    if layer.class_name in _MEAN_FREE and not layer.fixed_statistics:
        return 0.0
    if softmax_classes(layer) is not None:
        return share
    variance: float | None = m_in
    if layer.class_name in ("Activation", "ReLU", "LeakyReLU", "ELU"):
        name = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu"}.get(layer.class_name, layer.activation)
        fn = _ACTIVATIONS.get(name)
    elif layer.class_name in RECURRENT:  # its steps move together through the state it carries
        return max(share, sequence_share(layer))
    elif layer.activation in (None, "linear"):
        return share  # a linear map
    else:
        fn, variance = _ACTIVATIONS.get(layer.activation), pre_activation_variance(layer, m_in)
    if fn is None or variance is None:
        return share
    return _constant_share(fn, variance, share)


def call_run(layer: Layer, calls: CallGraph | None, key: str | None) -> Layer:
    """``layer`` as its call ``key`` runs it: with that call's input and
    output shapes (``Layer.call_shapes``: a shared encoder reads a query of
    16 tokens and a document of 128; review 62, 1: every call counted with
    the first's, 0.40-0.52x Keras), where the reader carried every call's."""
    keys = calls.keys.get(layer.path, []) if calls is not None and key is not None else []
    if key not in keys or len(layer.call_shapes) != len(keys):
        return layer
    run = layer.call_shapes[keys.index(key)]
    first = run.inputs[0] if run.inputs else None
    return dataclasses.replace(layer, input_shape=first or layer.input_shape,
                               output_shape=run.output or layer.output_shape, call_shapes=[run])


def node_input_moment(key: str, producers: dict[str, list[str]], moments: dict[str, float],
                      default: float = 1.0) -> float:
    """The mean second moment of what the call-graph node ``key`` reads
    (``default``: a model input, or nothing known)."""
    values = [moments[src] for src in producers.get(key, []) if src in moments]
    return sum(values) / len(values) if values else default


def node_attention_inputs(layer: Layer, key: str, producers: dict[str, list[str]], graph: NestedGraph,
                          moments: dict[str, float], default: float, share: float = 0.0) -> AttentionInputs | None:
    """``attention_inputs`` for one call of ``layer``: a call reading one
    tensor (self-attention) takes that call's moment for its query, key and
    value; a call reading several keeps the layer's references."""
    if layer.class_name not in _ATTENDING:
        return None
    inputs = attention_inputs(layer, graph, moments, default, share)
    if inputs is not None and len(layer.call_shapes) == 1:  # one call's shapes (``call_run``): its own tokens
        shapes = layer.call_shapes[0].inputs
        value_tokens = _tokens(shapes[1]) if len(shapes) > 1 else inputs.query_tokens
        inputs = dataclasses.replace(inputs, value_tokens=value_tokens or inputs.value_tokens)
    read = set(producers.get(key, []))
    if inputs is None or len(read) != 1 or (only := read.pop()) not in moments:
        return inputs
    m = moments[only]
    return dataclasses.replace(inputs, query=m, key=m, value=m, self_keyed=True)


def _output_moment(layer: Layer, m_in: float, attention: AttentionInputs | None, share: float) -> float:
    """E[a^2] of ``layer``'s output on inputs of second moment ``m_in``
    (``attention``: what a MultiHeadAttention reads; ``share``: the share of
    the model inputs' moment that is a mean, which a recurrent state adds up)."""
    recurrent = recurrent_outputs(layer, m_in, share) if layer.class_name in RECURRENT else None
    if recurrent is not None:
        return recurrent.output_mean_sq  # a state carried over the steps (review 32)
    if layer.class_name in _NORMALIZERS:
        return fixed_norm_moment(layer, m_in) if layer.fixed_statistics else 1.0
    if layer.class_name == "Normalization":  # Keras' preprocessing layer: the data's mean and variance taken away
        return 1.0
    if layer.class_name == "Rescaling":  # x * scale + offset (review 66, 1: uint8 pixels / 255 read as raw, 7e4x)
        scale, offset = _number(layer.config.get("scale"), 1.0), _number(layer.config.get("offset"), 0.0)
        return scale * scale * m_in + offset * offset
    if layer.class_name in ATTENTION_LAYERS and attention is not None:
        return attention_output_moment(layer, attention) or m_in
    if layer.class_name == "Embedding":
        table = next((v for v in layer.variables if v.role is Role.EMBEDDINGS), None)
        moments = element_moments(table) if table is not None else None
        return moments[0] if moments else m_in
    if (variance := pre_activation_variance(layer, m_in)) is not None:
        classes = softmax_classes(layer)
        act = activation_moments(layer.activation, variance) if classes is None else (
            softmax_square_sum(classes, variance) / classes, 0.0)  # E[p^2] per element (review 59, 1)
        return act[0] if act else m_in
    if (classes := softmax_classes(layer)) is not None and layer.class_name in ("Activation", "Softmax"):
        return softmax_square_sum(classes, m_in) / classes  # E[p^2] per element (review 58, 2)
    if layer.class_name in ("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax"):
        name = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu"}.get(layer.class_name, layer.activation)
        act = activation_moments(name, m_in) if name != "softmax" else None
        return act[0] if act else m_in
    return m_in


def pre_activation_variance(layer: Layer, m_in: float) -> float | None:
    """Var of one output's pre-activation at initialisation, inputs of
    second moment ``m_in``: ``fan_in*E[w^2]*m_in`` with the forward
    fan-in; a depthwise kernel alone, or followed by its pointwise one (a
    separable convolution: the two variances multiply). None where the
    layer has no kernel or its moments are unknown."""
    kernel = next((v for v in layer.variables if v.role is Role.KERNEL), None)
    depthwise = next((v for v in layer.variables if v.role is Role.DEPTHWISE_KERNEL), None)
    pointwise = next((v for v in layer.variables if v.role is Role.POINTWISE_KERNEL), None)
    if kernel is not None:
        moments = element_moments(kernel)
        return forward_fan_in(layer, kernel) * moments[0] * m_in if moments else None
    if depthwise is None or (drawn := element_moments(depthwise)) is None:
        return None
    window = math.prod(depthwise.shape[:-2]) if len(depthwise.shape) > 2 else 1
    variance = window * drawn[0] * m_in
    if pointwise is None:
        return variance
    point = element_moments(pointwise)
    return pointwise.fans()[0] * point[0] * variance if point else None


def forward_fan_in(layer: Layer, kernel) -> float:
    """The terms one output of the layer sums: the initializer's fan-in,
    except where the forward pass differs from it (review 32): a depthwise
    convolution reads one channel (its window alone), a transposed one
    spreads each input over ``window/stride`` outputs (window times input
    channels over the strides; its kernel is ``(*window, out, in)``).

    >>> from reglint.model import Layer, Variable, Role
    >>> k = Variable("kernel", Role.KERNEL, (3, 3, 8, 4))
    >>> forward_fan_in(Layer("t", "t", "Conv2DTranspose", config={"strides": [2, 2]}), k)  # 2.25 taps x 4 channels
    9.0
    """
    name = layer.class_name
    window = math.prod(kernel.shape[:-2]) if len(kernel.shape) > 2 else 1
    if name.startswith("DepthwiseConv"):
        return float(window)
    if name.endswith("Transpose") and len(kernel.shape) > 2:
        return _transposed_taps(layer, kernel) * kernel.shape[-1]
    return float(kernel.fans()[0])


def _transposed_taps(layer: Layer, kernel) -> float:
    """The mean number of kernel taps an output position of a transposed
    convolution receives: per spatial dimension ``(n*k - cropped)/out`` for
    ``n`` inputs, kernel ``k``, ``out`` outputs (the full ``(n-1)*s + k``
    cropped to ``out`` loses the edge taps), ``k/s`` where the shapes are not
    known."""
    window = kernel.shape[:-2]
    strides = layer.config.get("strides")
    strides = strides if isinstance(strides, list) and len(strides) == len(window) else [1] * len(window)
    ins, outs = layer.input_shape, layer.output_shape
    known = (ins is not None and outs is not None and len(ins) == len(outs) == len(window) + 2
             and all(isinstance(d, int) and d > 0 for d in (*ins[1:-1], *outs[1:-1])))
    taps = 1.0
    for axis, (k, given) in enumerate(zip(window, strides, strict=True)):
        stride = given if isinstance(given, int) and given > 0 else 1
        if known and ins is not None and outs is not None:
            n, out = ins[1 + axis], outs[1 + axis]
            taps *= max(n * k - max(0, (n - 1) * stride + k - out), 1) / out
        else:
            taps *= k / stride
    return taps


def fixed_norm_moment(layer: Layer, m_in: float) -> float:
    """E[a^2] out of a frozen BatchNormalization, which applies its moving
    statistics: ``E[gamma^2] * (m_in - E[mu^2]) / E[var] + E[beta^2]`` from
    the saved tensors (the moving mean tracks the input's mean, so the
    centred input keeps ``m_in - mu^2`` of its second moment; review 33);
    ``m_in`` where they are not saved."""
    def stats(role: Role):
        return next((v.stats for v in layer.variables if v.role is role and v.stats is not None and v.stats.count),
                    None)

    def mean_square(role: Role) -> float | None:
        found = stats(role)
        return found.sum_sq / found.count if found is not None else None

    def mean(role: Role) -> float | None:
        found = stats(role)
        return found.sum_abs / found.count if found is not None else None

    variance = mean(Role.MOVING_VARIANCE)
    if not variance:
        return m_in
    gamma2, mu2, beta2 = mean_square(Role.GAMMA), mean_square(Role.MOVING_MEAN), mean_square(Role.BETA)
    centred = max(m_in - (mu2 or 0.0), 0.1 * m_in)  # never below a tenth: m_in is an estimate at init
    return (gamma2 if gamma2 is not None else 1.0) * centred / variance + (beta2 or 0.0)


def input_second_moment(layer: Layer, moments: dict[str, float], graph: NestedGraph,
                        input_moment: float = 1.0) -> float:
    """The mean second moment of the layers feeding ``layer``
    (``input_moment``: a model input, or nothing known)."""
    values = [moments[src.path] for src in graph.feeding(layer) if src.path in moments]
    return sum(values) / len(values) if values else input_moment


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


def activity_penalty_per_sample(layer: Layer, input_moment: float = 1.0, source: Layer | None = None,
                                output_moment: float | None = None, attention: AttentionInputs | None = None,
                                share: float = 0.0) -> float | None:
    """``source``: for a pass-through layer, the layer whose output it
    hands on (``pass_through_source``): its elements, of second moment
    ``input_moment``, are penalised. A layer without a kernel whose output
    moment is known (an Embedding: its table's; ``output_moment``) is
    judged on its own output. There ``E|a|`` is taken at its bound
    ``sqrt(E[a^2])``. ``share``: the share of the model inputs' moment that
    is a mean, which a recurrent state adds up (``recurrent_outputs``)."""
    reg = layer.activity_regularizer
    if reg is None or reg.kind not in ("l1", "l2", "l1l2"):
        return None
    if layer.activity_on:  # Keras 3 penalises a MultiHeadAttention's projections, not its output
        return attention_projections_activity(layer, reg, attention) if attention is not None else None
    kernel = next((v for v in layer.variables if v.role.is_kernel_like), None)
    classes = softmax_classes(layer)
    if kernel is None and classes is not None and layer.class_name in ("Activation", "Softmax"):
        elements = output_elements(layer)  # a softmax layer: the logits' moment is its input's
        return softmax_activity(reg, elements // classes, classes, input_moment) if elements else None
    if kernel is None and source is not None and softmax_classes(source) is not None:
        # after a softmax (review 59, 2): sum |p| is a constant, only the L2 part acts
        elements = output_elements(layer) or output_elements(source)
        l2 = reg.l2 if reg.kind != "l1" else 0.0
        return elements * l2 * input_moment if elements else None
    if kernel is None:
        moment = input_moment if layer.class_name in PASS_THROUGH else output_moment
        elements = output_elements(layer) or (output_elements(source) if source is not None else None)
        if elements is None or moment is None:
            return None
        table = next((v for v in [*layer.variables, *(source.variables if source is not None else [])]
                      if v.role is Role.EMBEDDINGS), None)
        drawn = element_moments(table) if table is not None else None
        if drawn is not None and drawn[0] != moment:
            drawn = None  # the table's moments are not what this layer penalises
        first = drawn[1] if drawn is not None else math.sqrt(moment)  # an Embedding's E|w|, else its bound
        return elements * (reg.l2 * moment + reg.l1 * first)
    elements = output_elements(layer)
    if layer.class_name in RECURRENT:  # a state carried over the steps, not act(z)
        outputs = recurrent_outputs(layer, input_moment, share)
        if outputs is None:
            return None
        return reg.l2 * outputs.sum_sq + reg.l1 * outputs.elements * math.sqrt(outputs.mean_sq)
    variance = pre_activation_variance(layer, input_moment)
    if variance is None or elements is None:
        return None
    if classes is not None:
        return softmax_activity(reg, elements // classes, classes, variance)
    act = activation_moments(layer.activation, variance)
    if act is None:
        return None
    second, first = act
    return elements * ((reg.l2 if reg.kind != "l1" else 0.0) * second + (reg.l1 if reg.kind != "l2" else 0.0) * first)


# The projections Keras 3 gives a MultiHeadAttention's activity_regularizer
# (keras_placement.PROJECTIONS; a gated one adds a gate).
ATTENTION_PROJECTIONS = ("query", "key", "value", "attention_output")
# Keras' attention layers; a GroupedQueryAttention is saved as GroupQueryAttention.
ATTENTION_LAYERS = frozenset({"MultiHeadAttention", "GroupedQueryAttention", "GroupQueryAttention"})
_ATTENDING = ATTENTION_LAYERS | WEIGHTLESS_ATTENTION  # layers whose query, key and value are gathered
# The penalties ``Layer.activity_on`` names, by the projection whose output each
# weighs: a GroupedQueryAttention calls its output projection "output", and
# penalises its own output as well ("attention output"), the same tensor.
PENALISED_OUTPUT = {"query": "query", "key": "key", "value": "value", "gate": "gate",
                    "attention_output": "attention_output", "output": "attention_output",
                    "attention output": "attention_output"}


@dataclass
class AttentionInputs:
    """What a MultiHeadAttention reads: the second moments of its query,
    key and value inputs, its query and value token counts, and the share
    of their moment that is a mean every token shares (``mean_share``):
    the attention output keeps that part of the values' moment whole and
    averages the rest over the tokens."""

    query: float
    key: float
    value: float
    query_tokens: int
    value_tokens: int
    mean_share: float = 0.0
    self_keyed: bool = False  # the query is its own key: a weightless attention's token scores itself high


def attention_inputs(layer: Layer, graph: NestedGraph, moments: dict[str, float], default: float,
                     share: float = 0.0) -> AttentionInputs | None:
    """``AttentionInputs`` from the layers feeding ``layer`` in call order
    (query, value, key; the value stands for a key not given), None where a
    token count is not recorded (review 60, 2: cross-attention's key and
    value were counted over the query's tokens)."""
    # one call's references, in Keras' order: query, value, key (a nested or shared layer's other calls
    # read other tensors; review 60: taken together they were the query and the value)
    first = [ref for ref in layer.inbound_tensors if ref.call == 0]
    container = layer_container(layer)
    sources = [found[0] if (found := graph.sources(container, ref.name, ref.tensor, ref.node)) else None
               for ref in first] or list(graph.feeding(layer)[:1])
    query_tokens = _tokens(layer.input_shape)
    value_src = sources[1] if len(sources) > 1 else None
    value_tokens = _tokens(_shape_of(value_src)) if value_src is not None else query_tokens
    if query_tokens is None or value_tokens is None:
        return None

    def moment(index: int, fallback: float) -> float:
        source = sources[index] if len(sources) > index else None
        return moments.get(source.path, default) if source is not None else fallback

    query = moment(0, default)
    value = moment(1, query)
    key = first[2] if len(first) > 2 else first[1] if len(first) > 1 else None
    same = key is not None and (key.name, key.tensor, key.node) == (first[0].name, first[0].tensor, first[0].node)
    return AttentionInputs(query, moment(2, value), value, query_tokens, value_tokens, share, self_keyed=same)


def _shape_of(layer: Layer) -> list | tuple | None:
    """A layer's output shape; an input layer's from its config."""
    if layer.output_shape:
        return layer.output_shape
    shape = layer.config.get("batch_shape") or layer.config.get("batch_input_shape")
    return shape if isinstance(shape, (list, tuple)) else None


def _tokens(shape) -> int | None:
    if not shape or len(shape) < 3 or not all(isinstance(d, int) and d > 0 for d in shape[1:-1]):
        return None
    return math.prod(shape[1:-1])


def attention_projections(layer: Layer, inputs: AttentionInputs) -> list[tuple[int, float]] | None:
    """(elements, second moment) of each penalised output per sample, in
    ``layer.activity_on``'s order (``ATTENTION_PROJECTIONS`` where it names
    none): query, key, value: ``fan_in*E[w^2]*m_in`` (linear, zero bias); a
    gate ``sigmoid`` of the query's projection by its own kernel; the
    output projection reads the attention output, softmax weights ``a_j``
    over the value tokens: the value projection's moment times ``E[sum
    a_j^2]`` (``softmax_square_sum``, logits ``q.k/sqrt(d)`` of variance
    ``m_q*m_k``) for independent tokens, all of it for the mean they share,
    times the gate's ``E[g^2]`` where a gate multiplies it. A
    GroupedQueryAttention's fewer key and value heads are their kernels'
    widths. None where a projection or its initializer is not recorded."""
    moments = _projection_moments(layer, inputs)
    if moments is None:
        return None
    named = [PENALISED_OUTPUT.get(name, "") for name in layer.activity_on] or list(ATTENTION_PROJECTIONS)
    if any(name not in moments for name in named):
        return None  # a placement reglint does not know
    return [moments[name] for name in named]


def _projection_moments(layer: Layer, inputs: AttentionInputs) -> dict[str, tuple[int, float]] | None:
    kernels = {v.name.split("/")[0]: v for v in layer.variables if v.name.endswith("kernel")}
    if any(name not in kernels or len(kernels[name].shape) < 2 for name in ATTENTION_PROJECTIONS):
        return None
    reads = {"query": (inputs.query, inputs.query_tokens), "key": (inputs.key, inputs.value_tokens),
             "value": (inputs.value, inputs.value_tokens), "gate": (inputs.query, inputs.query_tokens)}
    found: dict[str, tuple[int, float]] = {}
    gated = "gate" in kernels
    for name in ("query", "key", "value", *(("gate",) if gated else ()), "attention_output"):
        kernel = kernels[name]
        drawn = element_moments(kernel)
        if drawn is None:
            return None
        if name == "attention_output":
            fan_in, width, tokens = math.prod(kernel.shape[:-1]), kernel.shape[-1], inputs.query_tokens
            # weights a_j over the value tokens: E[sum a_j^2], logits q.k/sqrt(d) of variance m_q*m_k
            spread = softmax_square_sum(inputs.value_tokens, found["query"][1] * found["key"][1])
            # the tokens' shared mean survives the average whole, the rest is spread over the tokens
            m_in = found["value"][1] * (inputs.mean_share + (1.0 - inputs.mean_share) * spread)
            m_in *= found["gate"][1] if gated else 1.0  # the attention output times the gate, element by element
        else:
            fan_in, width = kernel.shape[0], math.prod(kernel.shape[1:])
            m_in, tokens = reads[name]
        moment = fan_in * drawn[0] * m_in
        if name == "gate":
            gate = activation_moments("sigmoid", moment)
            if gate is None:
                return None
            moment = gate[0]
        found[name] = (tokens * width, moment)
    return found


def attention_projections_activity(layer: Layer, reg, inputs: AttentionInputs) -> float | None:
    """An attention layer's activity penalty per sample as Keras 3 adds it
    (review 57, 4): on the outputs ``layer.activity_on`` names
    (``attention_projections``); ``E|z| = sqrt(2*E[z^2]/pi)`` for L1 on the
    linear projections, ``sqrt(E[g^2])`` (its bound) on a gate."""
    parts = attention_projections(layer, inputs)
    if parts is None:
        return None
    first = [math.sqrt(m) if name == "gate" else math.sqrt(2.0 * m / math.pi)
             for name, (_, m) in zip(layer.activity_on or ATTENTION_PROJECTIONS, parts, strict=True)]
    return sum(n * (reg.l2 * m + reg.l1 * e) for (n, m), e in zip(parts, first, strict=True))


def attention_output_share(layer: Layer, inputs: AttentionInputs) -> float | None:
    """The share of an attention output's moment that is the same at every
    query position: each position averages the value tokens with weights
    near ``1/T`` at initialisation, so the average ``sum_j abar_j v_j``
    (the tokens' shared mean whole, the rest over ``T``) is common to all,
    and only the weights' spread around it, ``E[sum a_j^2] - 1/T``, differs
    from one position to the next. Review 68, 2: a pooling after an
    attention took its positions as independent, 0.37x Keras' penalty."""
    moments = _projection_moments(layer, inputs)
    if not moments or not inputs.value_tokens:
        return None
    share, tokens = inputs.mean_share, inputs.value_tokens
    spread = softmax_square_sum(tokens, moments["query"][1] * moments["key"][1])
    total = share + (1.0 - share) * spread
    return _query_share((share + (1.0 - share) / tokens) / total, inputs.query_tokens) if total > 0 else None


def attention_output_moment(layer: Layer, inputs: AttentionInputs) -> float | None:
    """E[a^2] of an attention layer's output at initialisation: its output
    projection's (review 60, 1: the layers after one took its input's)."""
    moments = _projection_moments(layer, inputs)
    return moments["attention_output"][1] if moments else None


def softmax_classes(layer: Layer) -> int | None:
    """The width of the distributions a layer's softmax output holds (a
    Dense with ``activation="softmax"``, an ``Activation("softmax")``, or a
    ``Softmax`` layer over its ``axis``: review 59, 7), else None."""
    if layer.class_name == "Softmax" or (layer.class_name == "Activation" and layer.activation == "softmax"):
        axis = layer.config.get("axis", -1) if layer.class_name == "Softmax" else -1
        shape = layer.output_shape
        if not shape or not isinstance(axis, int) or not -len(shape) <= axis < len(shape):
            return None
        width = shape[axis]
        return width if isinstance(width, int) and width > 0 else None
    return layer.units if layer.activation == "softmax" and layer.units else None


def softmax_square_sum(classes: int, variance: float) -> float:
    """``E[sum p^2]`` of a softmax over ``classes`` logits ``N(0, v)`` at
    initialisation: ``(1 + v*(1 - 1/C))/C`` (``p_i ~ (1 + z_i - mean z)/C``
    to first order; within 4% of Keras' 0.147 on
    fixtures/activity_shapes/softmax_l2.keras, where ``exp(v)/C`` gave
    0.178; high, not low, at large ``v``), at most 1."""
    return min(1.0, (1.0 + variance * (1.0 - 1.0 / classes)) / classes)


def softmax_activity(reg, rows: int, classes: int, variance: float) -> float:
    """An activity penalty on softmax outputs, ``rows`` distributions of
    ``classes`` each, as training feels it: its L2 part, ``l2 * sum p^2``
    (``softmax_square_sum``), which pulls predictions toward uniform. The
    L1 part is left out: ``sum |p|`` is 1 per row whatever the weights, a
    constant without a gradient (review 58, 1: counted, it made an RL010
    error of a penalty that does nothing).

    >>> from reglint.model import Regularizer
    >>> softmax_activity(Regularizer(kind="l1", l1=0.1), 1, 10, 0.5)
    0.0
    >>> round(softmax_activity(Regularizer(kind="l2", l2=1.0), 1, 10, 0.0), 3)
    0.1
    """
    l2 = reg.l2 if reg.kind != "l1" else 0.0
    return rows * l2 * softmax_square_sum(classes, variance)


def correlated_steps(layer: Layer, graph: NestedGraph) -> bool:
    """Whether a recurrent layer reads a sequence whose steps are
    correlated (another recurrent layer's outputs, a convolution's
    overlapping windows): its cell adds them up coherently, which the
    mean-field's independent steps underestimate (review 33: an LSTM fed
    by an LSTM at 1/6 to 1/17 of Keras' penalty)."""
    if layer.class_name not in RECURRENT:
        return False
    return any(src.class_name in RECURRENT or "Conv" in src.class_name for src in graph.feeding(layer))


def penalised_elements(layer: Layer, source: Layer | None, input_moment: float) -> int | None:
    """The output elements an activity regularizer sums over: a recurrent
    layer's states too where it returns them; a pass-through layer's are
    those it hands on."""
    if layer.class_name in RECURRENT:
        outputs = recurrent_outputs(layer, input_moment)
        return outputs.elements if outputs is not None else None
    return output_elements(layer) or (output_elements(source) if source is not None else None)


def keras_divides_by_batch(framework: str, version: str | None) -> bool:
    """False for Keras 3.0-3.13, which summed activity penalties over the batch."""
    found = major_minor(version) if framework == "keras" else None
    if found is None:
        return True
    return not (found[0] == 3 and found[1] < 14)
