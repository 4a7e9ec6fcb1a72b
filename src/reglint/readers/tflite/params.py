"""Which constant tensors are parameters, in which role, read from the op
and input slot that consume them (through DEQUANTIZE, DENSIFY, CAST and
reshapes); every other constant (shapes, indices, paddings, epsilons,
scalars) is not a parameter."""

from __future__ import annotations

from dataclasses import dataclass

from reglint.errors import UnsafeInputError
from reglint.model import Role
from reglint.readers.tflite.schema import FLOAT_TYPES, OperatorInfo, SubgraphInfo, TensorInfo

# BuiltinOperator codes (schema.fbs).
ADD, CONV_2D, DEPTHWISE_CONV_2D, DEQUANTIZE, EMBEDDING_LOOKUP, FULLY_CONNECTED = 0, 3, 4, 6, 7, 9
LSTM, MUL, RESHAPE, RNN, SVDF, CUSTOM = 16, 18, 22, 24, 27, 32
UNIDIRECTIONAL_SEQUENCE_RNN, GATHER, TRANSPOSE, SUB, DIV, SQUEEZE = 35, 36, 39, 41, 42, 43
UNIDIRECTIONAL_SEQUENCE_LSTM, BIDIRECTIONAL_SEQUENCE_RNN, BIDIRECTIONAL_SEQUENCE_LSTM = 44, 46, 52
CAST, PRELU, TRANSPOSE_CONV, EXPAND_DIMS, RSQRT, DENSIFY, BATCH_MATMUL = 53, 54, 67, 70, 76, 124, 126
CONV_3D, CONV_3D_TRANSPOSE = 132, 141

# Names of the ops a layer can be named after (class names of unnamed layers).
OP_NAMES = {ADD: "ADD", CONV_2D: "CONV_2D", DEPTHWISE_CONV_2D: "DEPTHWISE_CONV_2D", DEQUANTIZE: "DEQUANTIZE",
            EMBEDDING_LOOKUP: "EMBEDDING_LOOKUP", FULLY_CONNECTED: "FULLY_CONNECTED", LSTM: "LSTM", MUL: "MUL",
            RNN: "RNN", SVDF: "SVDF", UNIDIRECTIONAL_SEQUENCE_RNN: "UNIDIRECTIONAL_SEQUENCE_RNN", GATHER: "GATHER",
            SUB: "SUB", DIV: "DIV", UNIDIRECTIONAL_SEQUENCE_LSTM: "UNIDIRECTIONAL_SEQUENCE_LSTM",
            BIDIRECTIONAL_SEQUENCE_RNN: "BIDIRECTIONAL_SEQUENCE_RNN",
            BIDIRECTIONAL_SEQUENCE_LSTM: "BIDIRECTIONAL_SEQUENCE_LSTM", PRELU: "PRELU",
            TRANSPOSE_CONV: "TRANSPOSE_CONV", BATCH_MATMUL: "BATCH_MATMUL", CONV_3D: "CONV_3D",
            CONV_3D_TRANSPOSE: "CONV_3D_TRANSPOSE"}

K, RK, B, G = Role.KERNEL, Role.RECURRENT_KERNEL, Role.BIAS, Role.GAMMA
_GATES = ("input", "forget", "cell", "output")


def _lstm_slots(first: int, prefix: str = "") -> dict[int, tuple[Role, str]]:
    """One direction of an LSTM op's weight inputs, from slot ``first`` (1):
    input-to-gate kernels, recurrent kernels, peepholes, gate biases,
    projection (lstm.cc's tensor order)."""
    slots: dict[int, tuple[Role, str]] = {}
    for i, gate in enumerate(_GATES):
        slots[first + i] = (K, f"{prefix}input_to_{gate}_weights")
        slots[first + 4 + i] = (RK, f"{prefix}recurrent_to_{gate}_weights")
        slots[first + 11 + i] = (B, f"{prefix}{gate}_gate_bias")
    for i, gate in enumerate(("input", "forget", "output")):
        slots[first + 8 + i] = (Role.OTHER, f"{prefix}cell_to_{gate}_weights")  # peepholes
    slots[first + 15] = (K, f"{prefix}projection_weights")
    slots[first + 16] = (B, f"{prefix}projection_bias")
    return slots


_LSTM = {**_lstm_slots(1), **{20 + i: (G, f"{gate}_layer_norm_coefficients") for i, gate in enumerate(_GATES)}}
_BI_LSTM = {**_lstm_slots(1, "fw_"), **_lstm_slots(18, "bw_"),
            **{40 + i: (K, f"aux_input_to_{gate}_weights_fw") for i, gate in enumerate(_GATES)},
            **{44 + i: (K, f"aux_input_to_{gate}_weights_bw") for i, gate in enumerate(_GATES)}}
_RNN = {1: (K, "input_weights"), 2: (RK, "recurrent_weights"), 3: (B, "bias")}

# op -> {input slot: (role, variable name)}: the slots that hold weights
# (register.cc kernels' input tensors).
WEIGHT_SLOTS: dict[int, dict[int, tuple[Role, str]]] = {
    CONV_2D: {1: (K, "kernel"), 2: (B, "bias")},
    DEPTHWISE_CONV_2D: {1: (Role.DEPTHWISE_KERNEL, "depthwise_kernel"), 2: (B, "bias")},
    TRANSPOSE_CONV: {1: (K, "kernel"), 3: (B, "bias")},  # (output_shape, weights, input, bias)
    CONV_3D: {1: (K, "kernel"), 2: (B, "bias")},
    CONV_3D_TRANSPOSE: {1: (K, "kernel"), 3: (B, "bias")},
    FULLY_CONNECTED: {1: (K, "kernel"), 2: (B, "bias")},
    BATCH_MATMUL: {0: (K, "kernel"), 1: (K, "kernel")},  # a constant operand only
    EMBEDDING_LOOKUP: {1: (Role.EMBEDDINGS, "embeddings")},
    GATHER: {0: (Role.EMBEDDINGS, "embeddings")},  # a constant float or quantized table only
    PRELU: {1: (Role.ALPHA, "alpha")},
    LSTM: _LSTM,
    UNIDIRECTIONAL_SEQUENCE_LSTM: _LSTM,
    BIDIRECTIONAL_SEQUENCE_LSTM: _BI_LSTM,
    RNN: _RNN,
    UNIDIRECTIONAL_SEQUENCE_RNN: _RNN,
    BIDIRECTIONAL_SEQUENCE_RNN: {1: (K, "fw_input_weights"), 2: (RK, "fw_recurrent_weights"), 3: (B, "fw_bias"),
                                 5: (K, "bw_input_weights"), 6: (RK, "bw_recurrent_weights"), 7: (B, "bw_bias"),
                                 10: (K, "fw_aux_input_weights"), 11: (K, "bw_aux_input_weights")},
    SVDF: {1: (K, "weights_feature"), 2: (K, "weights_time"), 3: (B, "bias")},
}
# A weight reaches its op through these (input 0) unchanged in meaning:
# float16 and int8 weights behind DEQUANTIZE, sparse ones behind DENSIFY.
VALUE_PASS = {DEQUANTIZE, DENSIFY, CAST, RESHAPE, TRANSPOSE, SQUEEZE, EXPAND_DIMS}
# Ops whose output a constant added to is a bias.
BIASED_OPS = {FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, CONV_3D, CONV_3D_TRANSPOSE, BATCH_MATMUL}
ARITHMETIC = {ADD, SUB, MUL, DIV}
WALK_SLACK = 10_000  # steps of the constant -> consumer walks beyond one per consumer entry
# A shared tensor takes the most specific role among its consumers.
ROLE_RANK = {Role.EMBEDDINGS: 0, Role.KERNEL: 1, Role.DEPTHWISE_KERNEL: 1, Role.POINTWISE_KERNEL: 1,
             Role.RECURRENT_KERNEL: 1, Role.GAMMA: 2, Role.BETA: 2, Role.MOVING_MEAN: 2,
             Role.MOVING_VARIANCE: 2, Role.ALPHA: 2, Role.BIAS: 3, Role.OTHER: 9}


@dataclass
class Param:
    """A constant tensor that is a parameter, as the reader learns it."""

    subgraph: int
    tensor: TensorInfo
    role: Role = Role.OTHER
    slot_name: str = ""
    op: OperatorInfo | None = None  # the consumer that gave the role
    slot: int = 0  # the op's input that gave it
    uses: int = 0
    dequantize: bool = False  # reaches its op through a DEQUANTIZE (float16 or int8 storage)
    layer: str = ""
    copy: int = 0  # of a tensor read by several layers' ops: which layer's copy (0: the first)
    copies: int = 1

    @property
    def quantized(self) -> bool:
        return self.tensor.type not in FLOAT_TYPES


class Graph:
    """Producers and consumers of one subgraph's tensors, built once.

    The walks from constants to their consumers share one budget: where
    every tensor has one producer (as the converter writes them) the walks
    are disjoint trees and visit each consumer entry at most once, so the
    whole subgraph costs one step per entry. A crafted file whose pass-
    through ops all write one tensor would make them quadratic; it runs out
    of budget instead, with a one-line error."""

    def __init__(self, sub: SubgraphInfo):
        self.sub = sub
        self.producer: dict[int, OperatorInfo] = {}
        self.consumers: dict[int, list[tuple[OperatorInfo, int]]] = {}
        entries = 0
        for op in sub.operators:
            for t in op.outputs:
                if t >= 0:
                    self.producer.setdefault(t, op)
            for slot, t in enumerate(op.inputs):
                if t >= 0:
                    self.consumers.setdefault(t, []).append((op, slot))
            entries += len(op.inputs) + len(op.outputs)
        self.budget = entries + WALK_SLACK

    def _spend(self, steps: int) -> None:
        self.budget -= steps
        if self.budget < 0:
            raise UnsafeInputError(f"subgraph {self.sub.index}: the walk from constants to their consumers "
                                   "exceeds one step per operator input (tensors written by several ops): crafted "
                                   "or corrupt")

    def uses(self, index: int) -> tuple[list[tuple[OperatorInfo, int]], bool]:
        """Consumers of a tensor through value-preserving ops, and whether a
        DEQUANTIZE was on the way."""
        out, frontier, dequantized = [], [index], False
        seen = {index}
        while frontier:
            current = frontier.pop()
            consumers = self.consumers.get(current, [])
            self._spend(len(consumers) + 1)
            for op, slot in consumers:
                if op.opcode in VALUE_PASS and slot == 0 and op.outputs:
                    dequantized = dequantized or op.opcode == DEQUANTIZE
                    frontier.extend(t for t in op.outputs if t >= 0 and t not in seen)
                    seen.update(op.outputs)
                else:
                    out.append((op, slot))
        return sorted(out, key=lambda item: item[0].index), dequantized

    def source(self, index: int) -> OperatorInfo | None:
        """The op producing ``index``, looking back through reshapes,
        transposes and (de)quantization."""
        producer = self.producer.get(index)
        for _ in range(8):
            if producer is None or producer.opcode not in VALUE_PASS or not producer.inputs:
                return producer
            producer = self.producer.get(producer.inputs[0])
        return producer


def is_constant(tensor: TensorInfo, graph: Graph, has_data: bool) -> bool:
    return has_data and not tensor.is_variable and tensor.index not in graph.producer


def weighty(tensor: TensorInfo) -> bool:
    """Floats, and integers that carry a dequantization scale."""
    return tensor.type in FLOAT_TYPES or tensor.quant is not None


def role_at(graph: Graph, op: OperatorInfo, slot: int, tensor: TensorInfo) -> tuple[Role, str] | None:
    """The role input ``slot`` of ``op`` gives ``tensor``; None: not a weight slot."""
    found = WEIGHT_SLOTS.get(op.opcode, {}).get(slot)
    if found is not None:
        if op.opcode in (GATHER, BATCH_MATMUL) and len(tensor.shape) < 2:
            return None  # a gathered index list, a vector operand: constants
        if found[0] is K and op.opcode == FULLY_CONNECTED and graph.sub.name.endswith("while_body") \
                and op.inputs and op.inputs[0] >= 0 and _root(graph, op.inputs[0]) in graph.sub.inputs:
            return RK, "recurrent_kernel"  # multiplies the loop-carried state, a WHILE body's own input
        return found
    if op.opcode not in ARITHMETIC or len(op.inputs) != 2 or tensor.size < 2:
        return None  # epsilons, scales, 1/sqrt(d): arithmetic constants
    other = op.inputs[1 - slot]
    producer = graph.source(other) if other >= 0 else None
    if op.opcode in (ADD, SUB):
        if producer is not None and producer.opcode in BIASED_OPS:
            return B, "bias"
        if producer is not None and producer.opcode == ADD and any(
                (src := graph.source(t)) is not None and src.opcode in BIASED_OPS for t in producer.inputs if t >= 0):
            return B, "bias"  # x W + h U + b: a Keras 3 LSTM cell in a WHILE body
        if producer is not None and producer.opcode == MUL:
            return Role.BETA, "beta"  # a folded BatchNorm's offset, LayerNorm's beta
        return Role.OTHER, "constant"
    if op.opcode == MUL:
        if producer is not None and producer.opcode == RSQRT:
            return G, "gamma"  # LayerNormalization: rsqrt(var + eps) * gamma
        if any(o.opcode in (ADD, SUB) and len(o.inputs) == 2 and _stored(graph, o.inputs[1 - s])
               for o, s in graph.consumers.get(op.outputs[0] if op.outputs else -1, [])):
            return G, "gamma"  # x * scale + offset: a BatchNormalization the converter could not fold
    return Role.OTHER, "constant"


# The input slot of an op's kernel: ops reading one kernel tensor are one
# (shared) layer; ops with different kernels are different layers.
KERNEL_SLOT = {CONV_2D: 1, DEPTHWISE_CONV_2D: 1, TRANSPOSE_CONV: 1, CONV_3D: 1, CONV_3D_TRANSPOSE: 1,
               FULLY_CONNECTED: 1, EMBEDDING_LOOKUP: 1, PRELU: 1}


def _stored(graph: Graph, index: int) -> bool:
    """Whether a tensor is a constant of the file (through DEQUANTIZE and
    reshapes), not an activation or a model input: the offset of a
    BatchNormalization written as x * scale + offset is; the residual branch
    a ConvNeXt layer scale (x * gamma) is added to is not."""
    if index < 0:
        return False
    root = _root(graph, index)
    return root not in graph.producer and root not in graph.sub.inputs


def _root(graph: Graph, index: int) -> int:
    """The tensor a value-preserving chain (DEQUANTIZE, reshapes) starts from."""
    for _ in range(8):
        producer = graph.producer.get(index)
        if producer is None or producer.opcode not in VALUE_PASS or not producer.inputs or producer.inputs[0] < 0:
            return index
        index = producer.inputs[0]
    return index


def kernel_of(graph: Graph, op: OperatorInfo) -> int | None:
    """The tensor an op's kernel slot reads, through DEQUANTIZE and reshapes."""
    slot = KERNEL_SLOT.get(op.opcode)
    if slot is None or slot >= len(op.inputs) or op.inputs[slot] < 0:
        return None
    return _root(graph, op.inputs[slot])


def _anchor(graph: Graph, op: OperatorInfo, tensor: TensorInfo) -> tuple[str, int]:
    """Which layer a consumer belongs to, for telling a shared layer (one
    kernel read by several ops) from constants the converter deduplicated
    (one zero bias read by the ops of many layers, each with its own kernel)."""
    slot = KERNEL_SLOT.get(op.opcode)
    if slot is not None and slot < len(op.inputs) and op.inputs[slot] >= 0:
        kernel = _root(graph, op.inputs[slot])
        return ("kernel", kernel) if kernel != tensor.index else ("self", tensor.index)
    if op.opcode in ARITHMETIC and len(op.inputs) == 2:
        other = op.inputs[1] if _root(graph, op.inputs[0]) == tensor.index else op.inputs[0]
        source = graph.source(other) if other >= 0 else None
        if source is not None and source.opcode in KERNEL_SLOT:
            return _anchor(graph, source, tensor)
    return "self", tensor.index


def collect_params(sub: SubgraphInfo, graph: Graph, has_data) -> tuple[list[Param], int]:
    """The parameters of one subgraph, and how many constants are not.

    A constant tensor read by ops of one layer (one kernel: a Keras layer
    called several times) is one parameter with ``uses`` calls. A tensor
    read by the ops of several layers (the converter stores identical
    constants once: the zero biases of an untrained model) is a copy per
    layer, each marked ``deduplicated``, as Keras has one variable per layer."""
    params, constants = [], 0
    for tensor in sub.tensors:
        if not is_constant(tensor, graph, has_data(tensor)):
            continue
        if not weighty(tensor):
            constants += 1
            continue
        consumers, dequantized = graph.uses(tensor.index)
        groups: dict[tuple[str, int], list[tuple[Role, str, OperatorInfo, int]]] = {}
        for op, slot in consumers:
            found = role_at(graph, op, slot, tensor)
            if found is not None:
                groups.setdefault(_anchor(graph, op, tensor), []).append((found[0], found[1], op, slot))
        if not groups:
            constants += 1
            continue
        for n, members in enumerate(groups.values()):
            role, name, op, slot = min(members, key=lambda m: (ROLE_RANK[m[0]], m[2].index))
            params.append(Param(sub.index, tensor, role, name, op, slot, uses=len({m[2].index for m in members}),
                                dequantize=dequantized, copy=n, copies=len(groups)))
    return params, constants
