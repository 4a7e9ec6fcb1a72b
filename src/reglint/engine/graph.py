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

import math
from collections.abc import Callable, Iterator

from reglint.model import Layer, Model
from reglint.model.nesting import NestedGraph, layer_container

# Layers that normalise their input per channel or per sample: a kernel
# feeding one is scale-invariant (van Laarhoven 2017). Keras class names and
# ONNX op types.
NORMALIZERS = {"BatchNormalization", "SyncBatchNormalization", "LayerNormalization", "GroupNormalization",
               "InstanceNormalization", "RMSNormalization", "UnitNormalization", "SimplifiedLayerNormalization"}
# onnxruntime's fused forms that add a residual (or the embeddings) before
# normalising: their output is normalized, so a path through one is behind a
# normalization and a chain ends there, but a kernel feeding one is added to
# the skip first, as a Dense into Add -> LayerNorm: not scale-invariant.
ADDING_NORMALIZERS = {"SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "EmbedLayerNormalization"}
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
          "Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum",
          # ONNX's fused and quantized forms of the same ops (onnxruntime)
          "FusedConv", "FusedGemm", "FusedMatMul", "MatMulInteger", "ConvInteger", "QLinearConv", "QLinearMatMul",
          "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "QGemm", "MatMulNBits", "MatMulBnb4"}


def outbound_map(model: Model) -> dict[str, list[Layer]]:
    """Layer path -> the layers it feeds, resolved within each container and
    across nested models' boundaries (``reglint.model.nesting.NestedGraph``)."""
    graph = NestedGraph(model)
    out: dict[str, list[Layer]] = {}

    def link(source: Layer, target: Layer) -> None:
        if target not in out.setdefault(source.path, []):
            out[source.path].append(target)

    for layer in model.layers:
        if layer.class_name == "InputLayer":
            continue  # an input feeds its consumers through their inbound names
        for source in graph.feeding(layer):
            link(source, layer)
    by_key = graph.by_key
    for layer in model.layers:
        for name in layer.outbound:  # readers that record consumers directly (ONNX)
            consumer = by_key.get((layer_container(layer), name))
            if consumer is not None:
                link(layer, consumer)
    return out


def reach_map(model: Model) -> dict[str, list[Layer]]:
    """Layer path -> every layer its output reaches next, whatever the ops
    between: ``outbound_map``, with the ``downstream`` lists of readers that
    group ops into layers (ONNX) in place of their scale-passing
    ``outbound``. The map for questions of order (chains in series, what a
    normalization stands behind), not of scale."""
    out = outbound_map(model)
    by_path = {layer.path: layer for layer in model.layers}
    for layer in model.layers:
        if layer.downstream is not None:
            out[layer.path] = [by_path[name] for name in layer.downstream if name in by_path]
    return out


def normalizes(layer: Layer) -> bool:
    """Whether ``layer``'s output is normalized (a normalization layer, or
    onnxruntime's fused add-and-normalize); not a frozen BatchNormalization
    that Keras runs with its moving statistics (``Layer.fixed_statistics``)."""
    return (layer.class_name in NORMALIZERS or layer.class_name in ADDING_NORMALIZERS) and not layer.fixed_statistics


def rescales(layer: Layer) -> bool:
    """Whether ``layer`` divides out the scale of its input: a normalization
    layer whose statistics are those of the current input (not a frozen
    BatchNormalization's moving ones); a kernel feeding it is scale-invariant."""
    return layer.class_name in NORMALIZERS and not layer.fixed_statistics


def passes_scale(layer: Layer) -> bool:
    return layer.class_name in PASS_THROUGH and layer.activation in HOMOGENEOUS_ACTIVATIONS


# Normalizations that normalise each channel on its own (over the batch and
# the other axes): a scale on some channels is divided out whatever the
# others hold, so channels joined by a Concatenate stay scale-invariant.
# LayerNormalization and GroupNormalization mix the channels they join.
CHANNEL_NORMALIZERS = {"BatchNormalization", "SyncBatchNormalization"}
# Scale-passing layers that move the channel axis: after one, an axis
# number no longer names the channels a Concatenate joined.
MOVES_AXES = {"Flatten", "Reshape", "Permute"}


def _axis(layer: Layer) -> int | None:
    """The axis a Concatenate joins on or a BatchNormalization normalises,
    as a negative index where the layer's rank is known (Keras' default -1;
    a one-item list as tf.keras writes it)."""
    value = layer.config.get("axis", -1)
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            return None
        value = value[0]
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    rank = len(layer.output_shape) if layer.output_shape else None
    return value - rank if value >= 0 and rank else value


def joins_channels_into_norms(concat: Layer, outbound: dict[str, list[Layer]]) -> bool:
    """A ``Concatenate`` whose every path ends at a per-channel
    normalization on the axis it joins (through scale-passing layers that
    keep the axes, and more such joins): DenseNet's ``concat -> BN``. Each
    input's channels are normalized on their own, so a kernel feeding it
    keeps its scale invariance."""
    axis = _axis(concat)
    if concat.class_name != "Concatenate" or axis is None:
        return False
    return every_path_ends(
        concat, outbound,
        lambda nxt: nxt.class_name in CHANNEL_NORMALIZERS and not nxt.fixed_statistics and _axis(nxt) == axis,
        through=lambda nxt: (passes_scale(nxt) and nxt.class_name not in MOVES_AXES) or (
            nxt.class_name == "Concatenate" and _axis(nxt) == axis))


def every_path_ends(start: Layer, outbound: dict[str, list[Layer]], accept: Callable[[Layer], bool],
                    through: Callable[[Layer], bool] = passes_scale) -> bool:
    """True when every path from ``start``'s output, through layers
    ``through`` lets pass (by default the scale-passing ones), ends at a
    layer ``accept`` takes; False at a model output (no consumer) or at any
    other layer."""
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
        if not through(nxt):
            return False
        following = outbound.get(nxt.path, [])
        if not following:
            return False
        frontier.extend(following)
    return True



def post_order(root: str, outbound: dict[str, list[Layer]], done: dict,
               stop: Callable[[Layer], bool] | None = None) -> Iterator[tuple[str, list[str]]]:
    """Layers forward of ``root`` (``stop`` cuts an edge) in post-order,
    each with the layers it feeds, skipping those already in ``done``
    (the caller's results, which it fills as it goes). Iterative: graphs of
    thousands of layers stay within Python's recursion limit; a layer that
    feeds itself is walked once.

    >>> from reglint.model import Layer
    >>> b, c = (Layer(name=n, path=n, class_name="Dense") for n in "bc")
    >>> [path for path, _ in post_order("a", {"a": [b], "b": [c]}, {})]
    ['c', 'b', 'a']
    """
    stack: list[tuple[str, bool]] = [(root, False)]
    walking: set[str] = set()
    while stack:
        path, expanded = stack.pop()
        if path in done:
            continue
        following = [nxt.path for nxt in outbound.get(path, []) if stop is None or not stop(nxt)]
        if not expanded:
            walking.add(path)
            stack.append((path, True))
            stack.extend((nxt, False) for nxt in following if nxt not in done and nxt not in walking)
            continue
        walking.discard(path)
        yield path, following


def walk_forward(starts: list[str], outbound: dict[str, list[Layer]], skip: Callable[[Layer], bool],
                 stop: Callable[[Layer], bool] = lambda layer: False) -> list[Layer]:
    """The layers reached from ``starts`` (paths or node keys), in no
    particular order, entering none that ``skip`` takes and passing none that
    ``stop`` takes (reached, not followed).

    >>> from reglint.model import Layer
    >>> a, b, c = (Layer(name=n, path=n, class_name="Dense") for n in "abc")
    >>> [x.path for x in walk_forward(["a"], {"a": [b], "b": [c]}, lambda l: False, lambda l: l.path == "b")]
    ['b']
    """
    seen: dict[str, Layer] = {}
    todo = list(starts)
    while todo:
        for nxt in outbound.get(todo.pop(), []):
            if nxt.path in seen or nxt.path in starts or skip(nxt):
                continue
            seen[nxt.path] = nxt
            if not stop(nxt):
                todo.append(nxt.path)
    return list(seen.values())


def longest_chain(marked: set[str], outbound: dict[str, list[Layer]], stop: Callable[[Layer], bool]) -> list[str]:
    """The marked layers along the path that holds the most of them, from
    any marked layer forward through layers ``stop`` does not take (a
    normalization re-scales the signal: what shrank before it does not
    compound with what shrinks after). Paths of layers, in order; shared
    layers that feed themselves are walked once. Iterative: graphs of
    thousands of layers stay within Python's recursion limit.

    >>> from reglint.model import Layer
    >>> a, b, c = (Layer(name=n, path=n, class_name="Dense") for n in "abc")
    >>> longest_chain({"a", "c"}, {"a": [b], "b": [c]}, lambda layer: False)
    ['a', 'c']
    """
    best: dict[str, list[str]] = {}
    for root in sorted(marked):
        # post-order: a layer's chain once every layer after it has one
        for path, following in post_order(root, outbound, best, stop):
            tail = max((best.get(nxt, []) for nxt in following), key=len, default=[])
            best[path] = ([path] if path in marked else []) + tail
    return max((best[path] for path in sorted(marked)), key=len, default=[])

def widest_path(start: str, outbound: dict[str, list[Layer]], weight: Callable[[Layer], float | None],
                ends: set[str]) -> tuple[float, list[str]] | None:
    """Of the forward paths from ``start`` to a layer in ``ends``, the one
    whose smallest weight is largest (a chain is as strong as its weakest
    layer): that weight and the layers along it with a finite weight, in
    order. ``weight`` None closes a path; ``inf`` passes a layer unweighed
    (``start`` always does). None where no path reaches an end. Iterative,
    like ``longest_chain``; a layer that feeds itself is walked once.

    >>> from reglint.model import Layer
    >>> a, b, c, d = (Layer(name=n, path=n, class_name="Dense") for n in "abcd")
    >>> weights = {"b": 0.3, "c": 0.1, "d": float("inf")}
    >>> widest_path("a", {"a": [b, c], "b": [d], "c": [d]}, lambda layer: weights[layer.path], {"d"})
    (0.3, ['b'])
    """
    layers = {nxt.path: nxt for following in outbound.values() for nxt in following}
    best: dict[str, tuple[float, list[str]] | None] = {}
    for path, following in post_order(start, outbound, best):
        own = math.inf if path == start or path not in layers else weight(layers[path])
        options = [option for option in (best.get(nxt) for nxt in following) if option is not None]
        if path in ends:
            options.append((math.inf, []))
        if own is None or not options:
            best[path] = None
            continue
        value, chain = max(options, key=lambda option: option[0])
        best[path] = (min(own, value), ([path] if math.isfinite(own) else []) + chain)
    return best.get(start)


# Layers that combine tensors elementwise and are jointly positively
# homogeneous: scaling every input by c scales the output by c. Scaling only
# some inputs changes the output.
JOINT = {"Add", "Subtract", "Average", "Maximum", "Minimum"}
# Layers whose output keeps each input's scale on its own channels or as a
# factor (concatenation, gating): a scaled input leaves a scaled output.
CARRY = {"Concatenate", "Multiply"}
ATTENTION = {"MultiHeadAttention", "GroupedQueryAttention", "Attention", "AdditiveAttention"}

SCALED, FIXED, FREE = "scaled", "fixed", "free"


class ScaleWalk:
    """Which normalization scales the network can shed together.

    The penalty pulls every penalized gamma toward zero at once, so the
    question is whether multiplying all of them by the same ``c`` can be
    undone by weights that cost nothing (a trainable, unpenalized kernel or
    gamma, or a kernel that feeds a normalization anyway). Each layer's
    output is labelled forward through the graph: ``scaled`` (carries the
    factor ``c``), ``fixed`` (does not) or ``free`` (a free layer's output,
    which can take either, its weights compensating). A penalized
    normalization's output is scaled; another normalization's is fixed, or
    free when it has a free gamma; a free linear layer (attention with free
    projections included) absorbs its input's factor and is free; a
    penalized one passes the factor on; ReLU, pooling, dropout and reshapes
    pass it on. A residual ``Add`` of scaled and fixed tensors, a scaled
    tensor entering anything else (a saturating activation, a recurrent
    layer, attention with penalized projections) or reaching a model output
    means the scale changes the function: those gammas are *not absorbed*.
    A residual stream all of whose addends carry penalized gammas is scaled
    as a whole and can be absorbed by the free layer that reads it.
    """

    def __init__(self, model: Model, outbound: dict[str, list[Layer]], penalized: set[str],
                 free_linear: Callable[[Layer], bool], free_norm: Callable[[Layer], bool]):
        self.model, self.outbound, self.penalized = model, outbound, penalized
        self.free_linear, self.free_norm = free_linear, free_norm
        by_path = {layer.path: layer for layer in model.layers}
        self.inbound: dict[str, list[Layer]] = {}
        for source, targets in outbound.items():
            for target in targets:
                self.inbound.setdefault(target.path, []).append(by_path[source])
        self.state: dict[str, tuple[str, frozenset[str]]] = {}
        self.conflicts: set[str] = set()

    def unabsorbed(self) -> set[str]:
        """Paths of the penalized normalizations whose scale is not absorbed."""
        if not self.penalized:
            return set()
        for layer in self.model.layers:
            kind, carried = self._state(layer)
            if kind == SCALED and not self.outbound.get(layer.path):
                self.conflicts |= carried  # reaches a model output
        return self.conflicts

    def _state(self, layer: Layer) -> tuple[str, frozenset[str]]:
        """The label of ``layer``'s output, its inputs labelled first (an
        explicit stack: graphs deeper than Python's recursion limit are
        common, ResNet-152 has ~500 layers on one path)."""
        stack = [(layer, False)]
        while stack:
            node, expanded = stack.pop()
            if node.path in self.state:
                continue
            sources = self.inbound.get(node.path, [])
            if expanded:
                inputs = [self.state.get(src.path, (FIXED, frozenset())) for src in sources]
                self.state[node.path] = self._transfer(node, inputs)
                continue
            stack.append((node, True))
            # a cycle (never in Keras graphs) reads the pending node as fixed
            stack.extend((src, False) for src in sources if src.path not in self.state)
        return self.state[layer.path]

    def _transfer(self, layer: Layer, inputs: list[tuple[str, frozenset[str]]]) -> tuple[str, frozenset[str]]:
        carried = frozenset().union(*(c for _, c in inputs)) if inputs else frozenset()
        kinds = {k for k, _ in inputs}
        name = layer.class_name
        if layer.fixed_statistics:  # a frozen BatchNormalization: a fixed per-channel affine map
            return self._combine(kinds, carried)
        if name in NORMALIZERS:
            if layer.path in self.penalized:
                return SCALED, frozenset({layer.path})
            return (FREE if self.free_norm(layer) else FIXED), frozenset()
        if name in LINEAR or name in ATTENTION:
            if self.free_linear(layer):
                return FREE, frozenset()
            if SCALED in kinds and (name in ATTENTION or layer.activation not in HOMOGENEOUS_ACTIVATIONS):
                return self._conflict(carried)
            return self._combine(kinds, carried)
        if passes_scale(layer) or name in CARRY:
            return self._combine(kinds, carried)
        if name in JOINT:
            if SCALED in kinds and FIXED in kinds:
                return self._conflict(carried)
            return self._combine(kinds, carried)
        if SCALED in kinds:
            return self._conflict(carried)
        return FIXED, frozenset()

    @staticmethod
    def _combine(kinds: set[str], carried: frozenset[str]) -> tuple[str, frozenset[str]]:
        if SCALED in kinds:
            return SCALED, carried
        if FIXED in kinds or not kinds:
            return FIXED, frozenset()
        return FREE, frozenset()

    def _conflict(self, carried: frozenset[str]) -> tuple[str, frozenset[str]]:
        self.conflicts |= carried
        return FIXED, frozenset()
