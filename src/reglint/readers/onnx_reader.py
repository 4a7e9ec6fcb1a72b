"""ONNX models: parameters, weights and training artifacts.

The graph is parsed with the ``onnx`` package (``load_external_data=False``)
and never run. What becomes of it:

**Parameters.** Float initializers (float16, bfloat16, float32, float64) of
the main graph, of every subgraph (``If``/``Loop``/``Scan`` attributes, to any
depth) and of ``TrainingInfoProto`` graphs; sparse initializers at their dense
size; in onnxruntime-training artifacts, the graph inputs the checkpoint (or
the gradient graph) names as parameters. Not parameters: integer tensors
(shapes, indices), rank-0 or one-element constants whose only consumers are
arithmetic or constant slots (``Resize`` scales, ``Pow`` exponents, penalty
factors), optimizer state (momentum/velocity buffers, learning rates). An
initializer that is also a graph input (IR < 4) is counted once.

**Roles**, from the consuming node (through ``Cast``/``Transpose``/
``Reshape``/``Identity``): Conv/ConvTranspose W -> kernel (depthwise when
``group > 1`` and one input channel per group), B -> bias; Gemm B -> kernel,
C -> bias; a constant MatMul operand -> kernel; a constant added to a
MatMul/Gemm/Conv output -> bias; LSTM/GRU/RNN W/R/B -> kernel/recurrent
kernel/bias; BatchNormalization scale/B -> gamma/beta, mean/var -> moving
statistics (not trainable); Layer/Group/Instance/RMS normalization scale/bias
-> gamma/beta; Gather data -> embeddings; PRelu slope -> alpha; com.microsoft
Attention weights/bias -> kernel/bias; anything else -> other. A shared
initializer is counted once, with its most specific role.

**Layers** group variables by name: ``fc1.weight``/``fc1.bias`` -> ``fc1``;
``layer1.0.conv1.weight`` -> ``layer1.0.conv1``; anonymous names
(``onnx::Conv_12``) take the consuming node's scope (``/layer1/layer1.0/Conv``
-> ``layer1.0``) or its name. ``class_name`` is the op type. ``outbound`` lists
the layers reached through parameter-free, positively homogeneous ops (Relu,
pooling, reshapes) and is left empty when any path leaves through another op,
so scale-invariance checks stay conservative. Shapes are ONNX's own layout.

**Regularization**, in Keras' convention:

a. onnxruntime-training artifacts (``training_model.onnx`` beside
   ``optimizer_model.onnx`` and ``checkpoint``): ``AdamWOptimizer`` ->
   ``AdamW`` with ``weight_decay`` (decoupled and lr-multiplied in both
   ``adam_mode``s, as Keras' ``weight_decay``), ``SGDOptimizerV2`` -> ``SGD``.
   The checkpoint (a FlatBuffer, read here with bounds checks) lists the
   trainable and frozen parameters with their values and, when saved with
   optimizer state, the initial learning rate and step count.
b. ``ai.onnx.preview.training`` Adam/Momentum/Adagrad: ``norm_coefficient`` c
   is a coupled L2 -> ``coupled_l2 = c/2``; Adam's ``norm_coefficient_post``
   is a per-step decay not scaled by the learning rate, kept in the config and
   converted to Keras ``weight_decay = c_post / lr`` when lr is a constant.
c. An explicit penalty in a training graph: ``ReduceSumSquare(W)``,
   ``ReduceL2(W)`` squared, ``ReduceSum(Pow(W, 2))``, ``ReduceSum(Mul(W, W))``
   (L2); ``ReduceL1(W)``, ``ReduceSum(Abs(W))`` (L1); ``ReduceMean`` forms divide
   by the element count; scaled by constants (Mul/Div) and added to the loss
   -> ``Regularizer(l2=lambda)`` with penalty ``lambda * sum(w**2)``.
d. Inference graphs carry none; a note says so.
"""

from __future__ import annotations

import math
import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Iterable

import numpy as np

from reglint.errors import ModelReadError, ReglintError, UnsafeInputError, one_line
from reglint.model import (
    Layer,
    LearningRate,
    Loss,
    Model,
    Optimizer,
    Output,
    Regularizer,
    Role,
    Variable,
    WeightStats,
)
from reglint.readers.limits import ReadOptions
from reglint.readers.tensor_stats import StatsAccumulator, bfloat16_to_float32

INFERENCE_NOTE = "inference graph: no regularization or optimizer recorded; pass them with options"

# ONNX TensorProto data types that hold parameters: code -> (name, storage dtype).
# bfloat16 is stored as uint16 bit patterns and widened chunk by chunk.
FLOAT_TYPES = {1: ("float32", np.float32), 10: ("float16", np.float16),
               11: ("float64", np.float64), 16: ("bfloat16", np.uint16)}
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
GIB = 1024 ** 3
PROTOBUF_LIMIT = 2 * GIB  # protobuf cannot hold more; larger files are not ModelProtos
CHECKER_LIMIT = 512 * 1024 * 1024  # onnx.checker copies the model: skip it above this
SIBLING_LIMIT = 64 * 1024 * 1024  # an optimizer_model.onnx is tiny
MAX_GRAPH_DEPTH = 64
MAX_WALK = 10_000  # steps of any forward/backward walk through the graph

PREVIEW = "ai.onnx.preview.training"
MS = "com.microsoft"

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
# Ops a weight passes through unchanged in meaning on its way to its consumer.
VALUE_PASS = {"Identity", "Cast", "CastLike", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
              "DequantizeLinear"}
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
# Positively homogeneous, parameter-free ops: scale invariance survives them.
HOMOGENEOUS = {"Relu", "LeakyRelu", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
               "Reshape", "Flatten", "Transpose", "Identity", "Dropout", "Squeeze", "Unsqueeze"}
ACTIVATIONS = {"Relu": "relu", "LeakyRelu": "leaky_relu", "Sigmoid": "sigmoid", "Tanh": "tanh",
               "Softmax": "softmax", "LogSoftmax": "log_softmax", "Elu": "elu", "Selu": "selu",
               "Gelu": "gelu", "HardSigmoid": "hard_sigmoid", "Softplus": "softplus", "Softsign": "softsign",
               "HardSwish": "hard_swish", "Mish": "mish", "Celu": "celu"}
# Scalar-preserving ops a penalty passes through on its way to the loss.
SCALAR_PASS = {"Identity", "Cast", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "ReduceSum", "ReduceMean"}
ORT_OPTIMIZERS = {"AdamWOptimizer", "SGDOptimizerV2"}
ARTIFACT_FILES = ("training_model.onnx", "eval_model.onnx", "optimizer_model.onnx")
# Trailing name components of TensorFlow-exported tensors that name the
# variable or the op reading it, not the layer.
TF_SUFFIXES = {"kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance", "embeddings",
               "ReadVariableOp", "MatMul", "BiasAdd", "Conv2D", "weights", "weight"}


def read_onnx(path: Path, options: ReadOptions) -> Model:
    """Describe the ONNX model at ``path``; raises ModelReadError one-liners."""
    proto = _load_proto(path)
    try:
        return _tidy_float32(_Reader(path, proto, options).read())
    except ReglintError:
        raise
    except OSError as exc:  # a data file vanishing or unreadable mid-read
        raise ModelReadError(one_line(f"cannot read the model's data: {exc.strerror or exc}")) from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, struct.error) as exc:
        # A malformed graph (bad dims, inconsistent fields) must end in one line.
        raise ModelReadError(one_line(f"malformed ONNX model: {type(exc).__name__}: {exc}")) from None


# ---------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------
def _load_proto(path: Path):
    import onnx

    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise ModelReadError(f"cannot open: {exc.strerror or exc}") from None
    if size > PROTOBUF_LIMIT:
        raise ModelReadError("not a valid ONNX protobuf: larger than protobuf's 2 GiB limit")
    if head[4:8] == b"ORTM":
        raise ModelReadError("ORT-format (FlatBuffers) model: lint the .onnx file it was converted from")
    if head[4:8] == b"ODTC":
        raise ModelReadError("onnxruntime-training checkpoint, not a model: lint training_model.onnx beside it")
    try:
        # format="protobuf": never let the file name pick a text or JSON parser.
        proto = onnx.load(str(path), format="protobuf", load_external_data=False)
    except Exception as exc:  # DecodeError, RuntimeWarning, RecursionError ...
        raise ModelReadError(one_line(f"not a valid ONNX protobuf: {exc or type(exc).__name__}")) from None
    if not proto.HasField("graph"):
        raise ModelReadError("not a valid ONNX protobuf: it holds no graph")
    return proto


# ---------------------------------------------------------------------------
# the graph, all scopes at once
# ---------------------------------------------------------------------------
@dataclass(eq=False)
class _Node:
    proto: Any
    scope: str
    index: int

    @property
    def op(self) -> str:
        return self.proto.op_type

    @property
    def domain(self) -> str:
        return "" if self.proto.domain in ("", "ai.onnx") else self.proto.domain

    @property
    def name(self) -> str:
        return self.proto.name

    @property
    def inputs(self) -> list[str]:
        return list(self.proto.input)

    @property
    def outputs(self) -> list[str]:
        return [o for o in self.proto.output if o]

    def attrs(self) -> dict[str, Any]:
        return {a.name: _attr_value(a) for a in self.proto.attribute}

    def attr(self, name: str, default: Any = None) -> Any:
        for a in self.proto.attribute:
            if a.name == name:
                return _attr_value(a)
        return default

    @property
    def is_gradient(self) -> bool:
        """Nodes of a gradient graph (onnxruntime's ``*Grad`` ops and the
        nodes it names ``<forward>_Grad/...``, ONNX's Gradient op)."""
        return (self.op.endswith("Grad") or "_Grad" in self.name or self.op == "Gradient"
                or self.op.startswith("InPlaceAccumulator"))

    @property
    def is_training_op(self) -> bool:
        return self.domain == PREVIEW or (self.domain == MS and self.op in ORT_OPTIMIZERS)


def _attr_value(attr) -> Any:
    """Scalars and short lists only; tensors and graphs are left out."""
    kind = attr.type
    if kind == 1:
        return float(attr.f)
    if kind == 2:
        return int(attr.i)
    if kind == 3:
        return attr.s.decode("utf-8", "replace")
    if kind == 6:
        return [float(v) for v in attr.floats[:64]]
    if kind == 7:
        return [int(v) for v in attr.ints[:64]]
    if kind == 8:
        return [s.decode("utf-8", "replace") for s in attr.strings[:64]]
    return None


class _Index:
    """Every node, initializer and value name of the model, subgraphs and
    training-info graphs included, with producer and consumer maps."""

    def __init__(self, proto):
        self.nodes: list[_Node] = []
        self.tensors: list[tuple[str, Any]] = []  # (scope, TensorProto)
        self.sparse: list[tuple[str, Any]] = []  # (scope, SparseTensorProto)
        self.consumers: dict[str, list[tuple[_Node, int]]] = {}
        self.producer: dict[str, _Node] = {}
        self.outputs: set[str] = set()  # graph outputs of every graph
        self.main_outputs = [o for o in proto.graph.output]
        self.inputs = {i.name: i for i in proto.graph.input}
        self.constants: dict[str, Any] = {}  # small in-proto tensors and Constant outputs
        self.branch_outputs: dict[int, list[str]] = {}  # If/Loop/Scan node -> its subgraphs' outputs
        self._walk(proto.graph, "", 0)
        for k, info in enumerate(proto.training_info):
            if info.HasField("initialization"):
                self._walk(info.initialization, f"training_info[{k}].initialization", 1)
            if info.HasField("algorithm"):
                self._walk(info.algorithm, f"training_info[{k}].algorithm", 1)

    def _walk(self, graph, scope: str, depth: int) -> None:
        if depth > MAX_GRAPH_DEPTH:
            raise UnsafeInputError(f"subgraphs nested more than {MAX_GRAPH_DEPTH} levels deep")
        for tensor in graph.initializer:
            self.tensors.append((scope, tensor))
            self._remember_constant(tensor.name, tensor)
        for sparse in graph.sparse_initializer:
            self.sparse.append((scope, sparse))
        self.outputs.update(o.name for o in graph.output)
        for proto in graph.node:
            node = _Node(proto, scope, len(self.nodes))
            self.nodes.append(node)
            for i, name in enumerate(proto.input):
                if name:
                    self.consumers.setdefault(name, []).append((node, i))
            for name in node.outputs:
                self.producer[name] = node
            if node.op == "Constant" and node.domain == "":
                self._remember_constant_node(node)
            self._walk_subgraphs(node, depth)

    def _walk_subgraphs(self, node: _Node, depth: int) -> None:
        for attr in node.proto.attribute:
            prefix = f"{node.scope}/{node.name or node.op}.{attr.name}".lstrip("/")
            graphs = [attr.g] if attr.type == 5 else list(attr.graphs) if attr.type == 10 else []
            for k, graph in enumerate(graphs):
                self._walk(graph, prefix if attr.type == 5 else f"{prefix}[{k}]", depth + 1)
                self.branch_outputs.setdefault(node.index, []).extend(o.name for o in graph.output)

    def _remember_constant(self, name: str, tensor) -> None:
        if tensor.data_location != EXTERNAL and math.prod(tensor.dims) <= 16:
            self.constants.setdefault(name, tensor)

    def _remember_constant_node(self, node: _Node) -> None:
        from onnx import numpy_helper

        for attr in node.proto.attribute:
            if attr.name == "value" and attr.type == 4:
                self._remember_constant(node.outputs[0] if node.outputs else "", attr.t)
            elif attr.name in ("value_float", "value_int") and node.outputs:
                value = attr.f if attr.name == "value_float" else attr.i
                self.constants[node.outputs[0]] = numpy_helper.from_array(np.array(value, np.float64))

    def scalar(self, name: str) -> float | None:
        """The value of a one-element constant, or None."""
        from onnx import numpy_helper

        tensor = self.constants.get(name)
        if tensor is None:
            return None
        try:
            array = numpy_helper.to_array(tensor)
        except Exception:
            return None
        if array.size != 1 or array.dtype.kind not in "fiub":
            return None
        return float(array.reshape(-1)[0])

    def source(self, name: str) -> str:
        """Follow a tensor back through value-preserving ops (Cast, Identity ...)."""
        for _ in range(MAX_WALK):
            node = self.producer.get(name)
            if node is None or node.op not in VALUE_PASS or not node.inputs:
                return name
            name = node.inputs[0]
        return name


# ---------------------------------------------------------------------------
# parameters and where their values live
# ---------------------------------------------------------------------------
@dataclass
class _Param:
    name: str
    shape: tuple[int, ...]
    dtype: int
    scope: str = ""
    tensor: Any = None  # TensorProto (dense initializer or sparse values)
    dense_size: int | None = None  # sparse initializers: the dense element count
    ckpt: "_CkptTensor | None" = None  # onnxruntime-training checkpoint entry
    role: Role = Role.OTHER
    node: _Node | None = None  # the consumer that gave the role
    uses: int = 0
    trainable: bool = True
    regularizer: Regularizer | None = None
    stats: WeightStats | None = None
    layer: str = ""

    @property
    def size(self) -> int:
        if self.dense_size is not None:
            return self.dense_size
        return math.prod(self.shape) if self.shape else 1


@dataclass
class _FileRange:
    """A run of bytes in a file inside the model's folder."""

    path: Path
    offset: int
    nbytes: int


def _shape(dims: Iterable[int], what: str) -> tuple[int, ...]:
    shape = tuple(int(d) for d in dims)
    if any(d < 0 for d in shape):
        raise ModelReadError(f"{what} has a negative dimension {list(shape)}")
    return shape


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve(strict=False).is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # symlink loops
        return False


def _safe_location(location: str, folder: Path, what: str) -> Path:
    """The file a relative ``location`` names inside ``folder``; refuses
    absolute paths, drive letters, ``..`` and links that leave the folder."""
    posix = PurePosixPath(location.replace("\\", "/"))
    if (not location or "\x00" in location or posix.is_absolute() or PureWindowsPath(location).drive
            or ".." in posix.parts):
        raise UnsafeInputError(f"{what}: location {location!r} is outside the model's folder: refused")
    candidate = folder / posix
    if not _inside(candidate, folder):
        raise UnsafeInputError(f"{what}: location {location!r} resolves outside the model's folder: refused")
    try:
        exists, regular = candidate.exists(), candidate.is_file()
    except OSError as exc:  # a name too long, a permission error
        raise ModelReadError(f"{what}: external data {location!r} cannot be opened ({exc.strerror})") from None
    if not exists:
        raise ModelReadError(f"{what}: external data file {location!r} is missing")
    if not regular:
        raise ModelReadError(f"{what}: external data {location!r} is not a regular file")
    return candidate


def _external_range(tensor, folder: Path, nbytes: int | None) -> _FileRange:
    """Where an external tensor's bytes are, checked against the file size."""
    what = f"tensor {tensor.name!r}"
    info = {entry.key: entry.value for entry in tensor.external_data}
    path = _safe_location(info.get("location", ""), folder, what)
    try:
        offset = int(info.get("offset", "0") or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError:
        raise ModelReadError(f"{what}: external data offset/length are not integers") from None
    if offset < 0 or (length is not None and length < 0):
        raise ModelReadError(f"{what}: negative external data offset or length")
    needed = nbytes if nbytes is not None else (length or 0)
    if length is not None and nbytes is not None and length < nbytes:
        raise ModelReadError(f"{what}: external data holds {length} bytes, its shape needs {nbytes}")
    if offset + needed > path.stat().st_size:
        raise ModelReadError(f"{what}: external data runs past the end of {path.name!r}: truncated file")
    return _FileRange(path, offset, needed)



# Initializers above this many bytes reach onnx.checker as a one-element stand-in.
CHECKER_STUB_BYTES = 1024


def _checker_stub(proto):
    """What ``onnx.checker`` needs of an embedded-weights model: everything
    but the bulk of large initializers, each cut to one zero of the same
    rank and type. ``check_model(proto)`` serialises the model and parses it
    again in C++: ~0.3 s and +100 MB for ResNet50, a third of the run, to
    re-read bytes the reader has already checked (``_proto_array`` compares
    every initializer's bytes with its shape). Graph, node, opset and name
    errors are still the checker's to find."""
    import onnx

    element = [_one_element(init) for init in proto.graph.initializer]
    if not any(element):
        return proto
    stub = onnx.ModelProto()
    for field in proto.DESCRIPTOR.fields:
        if field.name != "graph":
            _copy_field(proto, stub, field)
    for field in proto.graph.DESCRIPTOR.fields:
        if field.name != "initializer":
            _copy_field(proto.graph, stub.graph, field)
    for init, one in zip(proto.graph.initializer, element):
        if one is None:  # small, typed fields or odd: the checker sees it whole
            stub.graph.initializer.add().CopyFrom(init)
            continue
        small = stub.graph.initializer.add()
        for field in init.DESCRIPTOR.fields:
            if field.name not in ("dims", "raw_data"):
                _copy_field(init, small, field)
        small.dims.extend([1] * len(init.dims))
        small.raw_data = one
    return stub


def _one_element(init) -> bytes | None:
    """One zero element for a large ``raw_data`` initializer's stand-in, or
    None to pass it whole. Sizes come from the shape and type: reading
    ``raw_data`` would copy the bytes out of the protobuf."""
    import onnx

    if not init.HasField("raw_data") or init.data_location == EXTERNAL or any(d < 0 for d in init.dims):
        return None
    try:
        itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
    except Exception:
        return None  # strings, unknown types
    if itemsize == 0 or math.prod(init.dims) * itemsize <= CHECKER_STUB_BYTES:
        return None
    return bytes(itemsize)


def _copy_field(source, target, field) -> None:
    """One field of a protobuf message, copied only when set (proto2)."""
    repeated = getattr(field, "is_repeated", None)  # protobuf >= 6; ``label`` before
    if repeated if repeated is not None else field.label == field.LABEL_REPEATED:
        getattr(target, field.name).extend(getattr(source, field.name))
    elif not source.HasField(field.name):
        return
    elif field.message_type is not None:
        getattr(target, field.name).CopyFrom(getattr(source, field.name))
    else:
        setattr(target, field.name, getattr(source, field.name))

# ---------------------------------------------------------------------------
# weight statistics, a chunk at a time
# ---------------------------------------------------------------------------
def _add_block(acc: StatsAccumulator, block: np.ndarray, dtype: int) -> None:
    with np.errstate(over="ignore", invalid="ignore"):  # absurd values: the sums become inf
        acc.add(bfloat16_to_float32(block) if dtype == 16 else block)


def _array_stats(flat: np.ndarray, dtype: int, chunk_bytes: int, count: int) -> WeightStats:
    acc = StatsAccumulator()
    step = max(1, chunk_bytes // max(1, flat.itemsize))
    for start in range(0, flat.size, step):
        _add_block(acc, flat[start:start + step], dtype)
    stats = acc.result()
    stats.count = count  # sparse tensors: the zeros count, adding nothing to the sums
    return stats


def _file_stats(where: _FileRange, dtype: int, chunk_bytes: int, count: int) -> WeightStats:
    """Stream a tensor's bytes from a file: memory is one chunk."""
    storage = np.dtype(FLOAT_TYPES[dtype][1])
    step = max(storage.itemsize, chunk_bytes // storage.itemsize * storage.itemsize)
    acc = StatsAccumulator()
    with where.path.open("rb") as handle:
        handle.seek(where.offset)
        remaining = where.nbytes
        while remaining > 0:
            data = handle.read(min(step, remaining))
            if not data or len(data) % storage.itemsize:
                raise ModelReadError(f"external data in {where.path.name!r} ends early: truncated file")
            _add_block(acc, np.frombuffer(data, dtype=storage), dtype)
            remaining -= len(data)
    stats = acc.result()
    stats.count = count
    return stats


def _proto_array(tensor, dtype: int, count: int) -> np.ndarray:
    """The values held inside the protobuf, viewed without a second copy of
    the raw bytes; typed fields (float_data ...) are converted."""
    storage = np.dtype(FLOAT_TYPES[dtype][1])
    what = f"initializer {tensor.name!r}"
    raw = tensor.raw_data
    if raw:
        if len(raw) != count * storage.itemsize:
            raise ModelReadError(f"{what} holds {len(raw)} bytes, its shape needs {count * storage.itemsize}: "
                                 "truncated or corrupt")
        return np.frombuffer(raw, dtype=storage)
    if dtype == 1:
        values = np.asarray(tensor.float_data, dtype=np.float32)
    elif dtype == 11:
        values = np.asarray(tensor.double_data, dtype=np.float64)
    else:  # float16/bfloat16 bit patterns travel in int32_data
        values = np.asarray(tensor.int32_data, dtype=np.int64).astype(np.uint16)
        if dtype == 10:
            values = values.view(np.float16)
    if values.size != count:
        raise ModelReadError(f"{what} holds {values.size} values, its shape needs {count}: truncated or corrupt")
    return values


# ---------------------------------------------------------------------------
# onnxruntime-training checkpoints (FlatBuffers, file identifier "ODTC")
# ---------------------------------------------------------------------------
class _CheckpointError(Exception):
    pass


class _FlatBuffer:
    """Bounds-checked reads of a FlatBuffers buffer: a hostile offset raises
    instead of reading outside the file."""

    def __init__(self, buf, size: int, limit: int):
        self.buf, self.size, self.limit = buf, size, limit

    def read(self, fmt: str, pos: int):
        if pos < 0 or pos + struct.calcsize(fmt) > self.size:
            raise _CheckpointError("offset out of range")
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def field(self, table: int, slot: int) -> int | None:
        vtable = table - self.read("<i", table)
        at = 4 + 2 * slot
        if at + 2 > self.read("<H", vtable):
            return None
        offset = self.read("<H", vtable + at)
        return table + offset if offset else None

    def scalar(self, table: int, slot: int, fmt: str, default):
        pos = self.field(table, slot)
        return default if pos is None else self.read(fmt, pos)

    def ref(self, table: int, slot: int) -> int | None:
        pos = self.field(table, slot)
        return None if pos is None else pos + self.read("<I", pos)

    def vector(self, table: int, slot: int, item: int) -> tuple[int, int]:
        pos = self.ref(table, slot)
        if pos is None:
            return 0, 0
        count = self.read("<I", pos)
        if pos + 4 + count * item > self.size:
            raise _CheckpointError("vector runs past the end")
        return pos + 4, count

    def string(self, table: int, slot: int) -> str:
        start, count = self.vector(table, slot, 1)
        return bytes(self.buf[start:start + count]).decode("utf-8", "replace")

    def tables(self, table: int, slot: int) -> list[int]:
        start, count = self.vector(table, slot, 4)
        if count > self.limit:
            raise _CheckpointError(f"{count} entries, over the limit")
        return [start + 4 * i + self.read("<I", start + 4 * i) for i in range(count)]


@dataclass
class _CkptTensor:
    name: str
    shape: tuple[int, ...]
    dtype: int
    where: _FileRange | None  # None: nominal checkpoint (no values)


@dataclass
class _Checkpoint:
    path: Path
    trainable: dict[str, _CkptTensor] = field(default_factory=dict)
    frozen: dict[str, _CkptTensor] = field(default_factory=dict)
    groups: list[tuple[str, int, float]] = field(default_factory=list)  # name, step, initial lr

    def get(self, name: str) -> _CkptTensor | None:
        return self.trainable.get(name) or self.frozen.get(name)


def _read_checkpoint(path: Path, folder: Path, limit: int) -> _Checkpoint:
    size = path.stat().st_size
    if size < 12:
        raise _CheckpointError("file too short")
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[4:8] != b"ODTC":
            raise _CheckpointError("no ODTC identifier: not an onnxruntime-training checkpoint")
        fb = _FlatBuffer(buf, size, limit)
        root = fb.read("<I", 0)
        ckpt = _Checkpoint(path)
        module = fb.ref(root, 1)
        if module is not None:
            external = bool(fb.scalar(module, 3, "<B", 0))
            data_file = _safe_location(path.name + ".data", folder, "checkpoint") if external else None
            for slot, target in ((0, ckpt.trainable), (1, ckpt.frozen)):
                for table in fb.tables(module, slot):
                    tensor = _ckpt_tensor(fb, table, data_file)
                    target[tensor.name] = tensor
        for table in fb.tables(root, 2):
            ckpt.groups.append((fb.string(table, 0), fb.scalar(table, 1, "<q", 0),
                                fb.scalar(table, 2, "<f", 0.0)))
        return ckpt


def _ckpt_tensor(fb: _FlatBuffer, table: int, data_file: Path | None) -> _CkptTensor:
    name = fb.string(table, 0)
    start, rank = fb.vector(table, 2, 8)
    if rank > 32:
        raise _CheckpointError(f"tensor {name!r} has rank {rank}")
    shape = tuple(fb.read("<q", start + 8 * i) for i in range(rank))
    if any(d < 0 for d in shape):
        raise _CheckpointError(f"tensor {name!r} has a negative dimension")
    dtype = fb.scalar(table, 3, "<i", 0)
    raw_start, raw_len = fb.vector(table, 4, 1)
    external_offset = fb.scalar(table, 6, "<q", -1)
    where = None
    if dtype in FLOAT_TYPES:
        nbytes = math.prod(shape) * np.dtype(FLOAT_TYPES[dtype][1]).itemsize
        if raw_len:
            if raw_len != nbytes:
                raise _CheckpointError(f"tensor {name!r} holds {raw_len} bytes, its shape needs {nbytes}")
            where = _FileRange(Path(), raw_start, nbytes)  # path filled by the caller
        elif data_file is not None and external_offset >= 0:
            if external_offset + nbytes > data_file.stat().st_size:
                raise _CheckpointError(f"tensor {name!r} runs past the end of {data_file.name!r}")
            where = _FileRange(data_file, external_offset, nbytes)
    return _CkptTensor(name, shape, dtype, where)


# ---------------------------------------------------------------------------
# optimizers
# ---------------------------------------------------------------------------
@dataclass
class _OptimizerFound:
    optimizer: Optimizer
    updated: list[str]  # the parameters it updates (names), when the op lists them
    state: list[str]  # optimizer state and hyper-parameter inputs: not parameters
    note: str


def _preview_optimizer(node: _Node, index: _Index) -> _OptimizerFound | None:
    """ai.onnx.preview.training Adam/Momentum/Adagrad: inputs R, T, then X,
    G and one (Momentum V, Adagrad H) or two (Adam V, H) state lists."""
    states = {"Momentum": 1, "Adagrad": 1, "Adam": 2}.get(node.op)
    if states is None:
        return None
    inputs = node.inputs
    n = (len(inputs) - 2) // (2 + states)
    params, state = inputs[2:2 + n], inputs[2 + 2 * n:]
    rate, step = index.scalar(inputs[0]) if inputs else None, index.scalar(inputs[1]) if len(inputs) > 1 else None
    attrs = node.attrs()
    c = float(attrs.get("norm_coefficient", 0.0) or 0.0)
    opt = Optimizer(class_name=node.op, coupled_l2=c / 2 if c else None,
                    config={"op": f"{PREVIEW}.{node.op}", "node": node.name, **attrs})
    if step is not None:
        opt.iterations = int(step)
    notes = [f"{node.op} ({PREVIEW}) node {node.name!r}"]
    if c:
        notes.append(f"norm_coefficient {c:g} is a coupled L2 on the gradient: Keras L2({c / 2:g}) (c/2)")
    getattr(_PreviewSetup, node.op)(opt, attrs, rate, notes)
    return _OptimizerFound(opt, params, [inputs[0], inputs[1], *state], "; ".join(notes))


class _PreviewSetup:
    """Per-op settings of the preview-training optimizers."""

    @staticmethod
    def Momentum(opt: Optimizer, attrs: dict, rate: float | None, notes: list[str]) -> None:
        alpha, beta = float(attrs.get("alpha", 0.0)), float(attrs.get("beta", 1.0))
        opt.momentum, opt.nesterov = alpha, attrs.get("mode") == "nesterov"
        if rate is not None:
            # V = alpha*V + beta*G; X -= R*V is Keras momentum alpha at lr R*beta.
            opt.learning_rate = LearningRate(rate * beta, rate * beta, config={"R": rate, "beta": beta})
            if beta != 1.0:
                notes.append(f"gradient scaled by beta {beta:g}: effective learning rate R*beta = {rate * beta:g}")

    @staticmethod
    def Adam(opt: Optimizer, attrs: dict, rate: float | None, notes: list[str]) -> None:
        opt.beta_1, opt.beta_2 = float(attrs.get("alpha", 0.9)), float(attrs.get("beta", 0.999))
        opt.epsilon = float(attrs.get("epsilon", 1e-6))
        if rate is not None:
            opt.learning_rate = LearningRate(rate, rate)
        post = float(attrs.get("norm_coefficient_post", 0.0) or 0.0)
        if not post:
            return
        text = f"norm_coefficient_post {post:g} decays X <- (1 - c_post)*X every step, not scaled by the learning rate"
        if rate:
            opt.weight_decay = post / rate
            text += f"; as Keras weight_decay c_post/lr = {post / rate:g} at lr {rate:g}"
        else:
            text += "; the learning rate is not a constant, so it is not converted to a Keras weight_decay"
        notes.append(text)

    @staticmethod
    def Adagrad(opt: Optimizer, attrs: dict, rate: float | None, notes: list[str]) -> None:
        opt.epsilon = float(attrs.get("epsilon", 1e-6))
        decay = float(attrs.get("decay_factor", 0.0) or 0.0)
        # r = R / (1 + T*decay_factor): a learning-rate time decay, like Keras 2's `decay`.
        opt.lr_decay = decay or None
        if rate is not None:
            opt.learning_rate = LearningRate(rate, rate)


def _ort_optimizer(node: _Node, index: _Index) -> _OptimizerFound | None:
    """onnxruntime-training's optimizer_model.onnx ops (com.microsoft)."""
    if node.domain != MS or node.op not in ORT_OPTIMIZERS:
        return None
    attrs = node.attrs()
    config = {"op": f"{MS}.{node.op}", "node": node.name, **attrs}
    rate = index.scalar(node.inputs[0]) if node.inputs else None
    if node.op == "SGDOptimizerV2":
        opt = Optimizer(class_name="SGD", config=config)
        note = "SGDOptimizerV2 (onnxruntime-training): plain SGD, no weight decay"
    else:
        decay = float(attrs.get("weight_decay", 0.0))
        mode = int(attrs.get("adam_mode", 0))
        # Both adam_modes apply w -= lr * weight_decay * w (PyTorch AdamW and
        # Hugging Face AdamW): Keras 3's decoupled weight_decay, to every
        # parameter in the sequence, biases and normalization included.
        opt = Optimizer(class_name="AdamW", weight_decay=decay, beta_1=float(attrs.get("alpha", 0.9)),
                        beta_2=float(attrs.get("beta", 0.999)), epsilon=float(attrs.get("epsilon", 1e-8)),
                        exclude_from_weight_decay=[], config=config)
        note = (f"AdamWOptimizer (onnxruntime-training) weight_decay {decay:g}, adam_mode {mode}: decoupled and "
                "multiplied by the learning rate, as Keras weight_decay; applied to every trainable parameter")
    if rate is not None:
        opt.learning_rate = LearningRate(rate, rate)
    return _OptimizerFound(opt, [], [n for n in node.inputs[:2]], note)


# ---------------------------------------------------------------------------
# explicit penalties in training graphs
# ---------------------------------------------------------------------------
@dataclass
class _Term:
    param: str
    kind: str  # l1, l2, or norm (an unsquared L2 norm: custom)
    factor: float  # ReduceMean: 1/size
    node: _Node  # whose output is the term
    pattern: str


@dataclass
class _Path:
    scale: float | None
    output: str
    joined: bool  # added to something else (the data loss) on the way
    unknown: str | None = None  # a non-constant factor


# ---------------------------------------------------------------------------
# the reader
# ---------------------------------------------------------------------------
class _Reader:
    def __init__(self, path: Path, proto, options: ReadOptions):
        self.path, self.proto, self.options = path, proto, options
        self.folder = path.absolute().parent
        self.model = Model(path=str(path), format="onnx", framework="onnx")
        self.index = _Index(proto)
        self.ckpt: _Checkpoint | None = None
        self.state_names: set[str] = set()  # optimizer state/hyper-parameters
        self.updated: set[str] | None = None  # parameters an optimizer/training info updates
        self.loss_targets: set[str] = set(self.index.outputs)
        self.param_names: set[str] = set()
        self.owner: dict[str, str] = {}  # parameter name -> layer key

    # -- top level -------------------------------------------------------------
    def read(self) -> Model:
        self._describe_file()
        self._check_external_locations()
        self._run_checker()
        self._find_training_setup()
        params = [p for p in self._collect_params() if self._assign_role(p)]
        self.param_names = {p.name for p in params}
        self._assign_trainable(params)
        self._find_penalties(params)
        self._read_stats(params)
        self._build_layers(params)
        self._find_losses()
        self._find_outputs()
        self._final_notes(params)
        return self.model

    def _describe_file(self) -> None:
        proto, model = self.proto, self.model
        opsets = {(o.domain or "ai.onnx"): int(o.version) for o in proto.opset_import}
        default = opsets.get("ai.onnx")
        model.framework_version = f"ir {proto.ir_version}" + (f", opset {default}" if default is not None else "")
        model.name = proto.graph.name or None
        model.metadata = {
            "producer_name": proto.producer_name or None,
            "producer_version": proto.producer_version or None,
            "ir_version": int(proto.ir_version),
            "opsets": opsets,
            "model_version": int(proto.model_version),
            "domain": proto.domain or None,
            "metadata_props": {p.key[:200]: p.value[:200] for p in list(proto.metadata_props)[:50]},
        }
        if proto.producer_name:
            model.metadata["producer"] = f"{proto.producer_name} {proto.producer_version}".strip()

    def _check_external_locations(self) -> None:
        """Every external tensor, parameter or not, must stay in the folder."""
        for _, tensor in self._all_dense_tensors():
            if tensor.data_location == EXTERNAL:
                info = {entry.key: entry.value for entry in tensor.external_data}
                _safe_location(info.get("location", ""), self.folder, f"tensor {tensor.name!r}")

    def _all_dense_tensors(self):
        yield from self.index.tensors
        for scope, sparse in self.index.sparse:
            yield scope, sparse.values

    def _run_checker(self) -> None:
        import onnx

        size = self.path.stat().st_size
        if size > CHECKER_LIMIT:
            self.model.notes.append("onnx.checker skipped: the file is over 512 MiB")
            return
        external = any(t.data_location == EXTERNAL for _, t in self._all_dense_tensors())
        try:
            # With external data the checker needs the path to find the data
            # files (locations were checked above); otherwise the proto is enough.
            onnx.checker.check_model(str(self.path) if external else _checker_stub(self.proto))
        except Exception as exc:
            first = one_line(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, 200)
            self.model.notes.append(f"onnx.checker rejects the model ({first}); read anyway")

    # -- optimizers ------------------------------------------------------------
    def _find_training_setup(self) -> None:
        """Optimizer nodes in the graph or beside it, and which tensors a
        training step updates."""
        found = self._graph_optimizers()
        self._training_info_bindings()
        self._gradient_ops()
        artifact = self._artifact_optimizer()
        if artifact is not None:
            found.append(artifact)
        elif found and found[0].optimizer.config["op"].startswith(MS):
            self._checkpoint_rate(found[0].optimizer)
            self.model.notes.append("onnxruntime-training optimizer model: it holds the optimizer only; lint "
                                    "training_model.onnx beside it for the parameters")
        for item in found:
            self.state_names.update(item.state)
            if item.updated:
                self._mark_updated(item.updated)
        if found:
            self._attach_optimizer(found)

    def _graph_optimizers(self) -> list[_OptimizerFound]:
        found = []
        for node in self.index.nodes:
            item = _preview_optimizer(node, self.index) if node.domain == PREVIEW else _ort_optimizer(node, self.index)
            if item is not None:
                found.append(item)
            elif node.domain == MS and node.op.endswith("Optimizer"):
                self.model.notes.append(f"optimizer op {node.op} not interpreted (only AdamWOptimizer and "
                                        "SGDOptimizerV2 are read)")
        return found

    def _gradient_ops(self) -> None:
        """ONNX's Gradient op: ``y`` names the loss, ``xs`` the trained tensors."""
        for node in self.index.nodes:
            if node.op == "Gradient" and node.domain == PREVIEW:
                if node.attr("y"):
                    self.loss_targets.add(node.attr("y"))
                self._mark_updated(node.attr("xs") or [])

    def _mark_updated(self, names: Iterable[str]) -> None:
        self.updated = (self.updated or set()) | {self.index.source(n) for n in names}

    def _training_info_bindings(self) -> None:
        """update_binding keys are the initializers a training step writes:
        parameters, or optimizer state when they feed an optimizer's state slot."""
        keys = [b.key for info in self.proto.training_info for b in info.update_binding]
        if keys:
            self._mark_updated(keys)
            self.model.notes.append(f"training_info: {len(keys)} initializers updated by the training algorithm")

    def _attach_optimizer(self, found: list[_OptimizerFound]) -> None:
        first = found[0]
        self.model.optimizer = first.optimizer
        self.model.notes.append(f"optimizer: {first.note}")
        for other in found[1:]:
            if (other.optimizer.class_name, other.optimizer.coupled_l2, other.optimizer.weight_decay) != (
                    first.optimizer.class_name, first.optimizer.coupled_l2, first.optimizer.weight_decay):
                self.model.notes.append(f"another optimizer node with other settings ({other.note}): "
                                        "the first one is reported")

    def _artifact_optimizer(self) -> _OptimizerFound | None:
        """training_model.onnx / eval_model.onnx beside optimizer_model.onnx
        and checkpoint: onnxruntime-training artifacts."""
        siblings = self._artifact_siblings()
        if "checkpoint" in siblings:
            self._load_checkpoint(siblings["checkpoint"])
        if "optimizer" not in siblings:
            if self.ckpt is not None and not self.path.name.endswith("optimizer_model.onnx"):
                self.model.notes.append("onnxruntime-training checkpoint found but no optimizer_model.onnx: "
                                        "optimizer unknown")
            return None
        found = self._sibling_optimizer(siblings["optimizer"])
        if found is not None:
            self._checkpoint_rate(found.optimizer)
            found.note = f"{found.note} (from {siblings['optimizer'].name})"
        return found

    def _artifact_siblings(self) -> dict[str, Path]:
        name = self.path.name
        role = next((r for r in ARTIFACT_FILES if name.endswith(r)), None)
        if role is None:
            return {}
        prefix = name[: -len(role)]
        out = {}
        wanted = {"checkpoint": f"{prefix}checkpoint"}
        if role != "optimizer_model.onnx":
            wanted["optimizer"] = f"{prefix}optimizer_model.onnx"
        for key, file_name in wanted.items():
            candidate = self.folder / file_name
            if candidate.is_symlink() or candidate.exists():
                if not _inside(candidate, self.folder):
                    raise UnsafeInputError(f"{file_name!r} links outside the model's folder: refused")
                if candidate.is_file():
                    out[key] = candidate
        return out

    def _sibling_optimizer(self, path: Path) -> _OptimizerFound | None:
        import onnx

        try:
            if path.stat().st_size > SIBLING_LIMIT:
                raise ValueError("over 64 MiB")
            proto = onnx.load(str(path), format="protobuf", load_external_data=False)
        except Exception as exc:
            self.model.notes.append(one_line(f"{path.name} unreadable ({exc}): optimizer unknown"))
            return None
        index = _Index(proto)
        for node in index.nodes:
            found = _ort_optimizer(node, index)
            if found is not None:
                return found
        self.model.notes.append(f"{path.name} holds no AdamWOptimizer or SGDOptimizerV2 node: optimizer unknown")
        return None

    def _load_checkpoint(self, path: Path) -> None:
        try:
            self.ckpt = _read_checkpoint(path, self.folder, self.options.max_layers)
        except (_CheckpointError, OSError, ValueError) as exc:
            self.model.notes.append(one_line(f"checkpoint {path.name!r} unreadable ({exc}): trainable flags "
                                             "come from the gradient graph, values are not read"))
            return
        for tensor in [*self.ckpt.trainable.values(), *self.ckpt.frozen.values()]:
            if tensor.where is not None and tensor.where.path == Path():
                tensor.where.path = path
        self.model.notes.append(f"onnxruntime-training checkpoint {path.name!r}: {len(self.ckpt.trainable)} "
                                f"trainable and {len(self.ckpt.frozen)} frozen parameters")

    def _checkpoint_rate(self, opt: Optimizer) -> None:
        groups = self.ckpt.groups if self.ckpt else []
        if not groups:
            if opt.learning_rate is None:
                self.model.notes.append("learning rate is set at run time and the checkpoint holds no optimizer "
                                        "state: pass it with options")
            return
        name, step, rate = groups[0]
        opt.learning_rate = LearningRate(float(rate), float(rate), config={"optimizer_group": name})
        opt.iterations = int(step)
        self.model.notes.append(f"learning rate {rate:g} (initial) and step {step} from the checkpoint's "
                                f"optimizer group {name!r}")

    # -- parameters ------------------------------------------------------------
    def _collect_params(self) -> list[_Param]:
        params: list[_Param] = []
        for scope, tensor in self.index.tensors:
            if tensor.data_type in FLOAT_TYPES:
                shape = _shape(tensor.dims, f"initializer {tensor.name!r}")
                params.append(_Param(tensor.name, shape, tensor.data_type, scope, tensor=tensor))
        for scope, sparse in self.index.sparse:
            values = sparse.values
            if values.data_type in FLOAT_TYPES:
                shape = _shape(sparse.dims, f"sparse initializer {values.name!r}")
                params.append(_Param(values.name, shape, values.data_type, scope, tensor=values,
                                     dense_size=math.prod(shape)))
        params += self._input_params({p.name for p in params})
        if self.ckpt is not None:
            for p in params:
                p.ckpt = self.ckpt.get(p.name)
        return params

    def _input_params(self, known: set[str]) -> list[_Param]:
        """Graph inputs that are parameters: onnxruntime-training keeps them
        out of the graph, in the checkpoint."""
        grads = self._gradient_names()
        out = []
        for name, info in self.index.inputs.items():
            if name in known:
                continue
            entry = self.ckpt.get(name) if self.ckpt else None
            if entry is None and name not in grads:
                continue
            shape, dtype = self._input_shape(info, entry)
            if dtype in FLOAT_TYPES and shape is not None:
                out.append(_Param(name, shape, dtype, ckpt=entry))
        return out

    @staticmethod
    def _input_shape(info, entry: _CkptTensor | None) -> tuple[tuple[int, ...] | None, int]:
        if entry is not None:
            return entry.shape, entry.dtype
        tensor_type = info.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        if any(d is None or d < 0 for d in dims):
            return None, tensor_type.elem_type
        return tuple(dims), tensor_type.elem_type

    def _gradient_names(self) -> set[str]:
        """Names P with a gradient value ``P_grad`` (or ``P_grad.<suffix>``)."""
        names = set(self.index.producer) | set(self.index.inputs) | self.index.outputs
        return {n.split("_grad")[0] for n in names if "_grad" in n}

    def _uses(self, name: str) -> list[tuple[_Node, int]]:
        """Consumers of a tensor through value-preserving ops, gradient and
        training ops left out."""
        out, frontier, steps = [], [name], 0
        while frontier and steps < MAX_WALK:
            current = frontier.pop()
            for node, i in self.index.consumers.get(current, []):
                steps += 1
                if node.is_gradient or node.is_training_op:
                    continue
                if node.op in VALUE_PASS and i == 0 and node.outputs:
                    frontier.extend(node.outputs)
                else:
                    out.append((node, i))
        return sorted(out, key=lambda item: item[0].index)

    def _role_at(self, node: _Node, i: int, p: _Param) -> Role:
        role = INPUT_ROLES.get((node.domain, node.op), {}).get(i)
        if role is Role.KERNEL and node.op == "Conv" and int(node.attr("group", 1) or 1) > 1 \
                and len(p.shape) > 1 and p.shape[1] == 1:
            return Role.DEPTHWISE_KERNEL
        if role is None and node.op == "Add" and node.domain == "" and len(node.inputs) == 2:
            producer = self.index.producer.get(node.inputs[1 - i])
            if producer is not None and producer.op in BIASED_OPS:
                return Role.BIAS
        return role or Role.OTHER

    def _assign_role(self, p: _Param) -> bool:
        """Set the role and primary consumer; False when the tensor is a
        constant or optimizer state rather than a parameter."""
        if p.name in self.state_names:
            return False
        uses = self._uses(p.name)
        p.uses = len({node.index for node, _ in uses})
        best: tuple[int, Role, _Node | None] = (ROLE_RANK[Role.OTHER] + 1, Role.OTHER, None)
        for node, i in uses:
            role = self._role_at(node, i, p)
            if ROLE_RANK[role] < best[0]:
                best = (ROLE_RANK[role], role, node)
        p.role, p.node = best[1], best[2]
        if p.role is not Role.OTHER:
            return True
        return not self._is_constant(p, uses)

    def _is_constant(self, p: _Param, uses: list[tuple[_Node, int]]) -> bool:
        if p.ckpt is not None or (self.updated and p.name in self.updated):
            return False
        if not uses:
            # Only gradient ops read it (loss-gradient seeds), or nothing at all.
            consumers = self.index.consumers.get(p.name, [])
            return bool(consumers) and all(n.is_gradient for n, _ in consumers)
        slots = all((n.op, i) in CONSTANT_SLOTS or n.op in CONSTANT_OPS for n, i in uses)
        arithmetic = p.size == 1 and all(n.op in ARITHMETIC or (n.op, i) in CONSTANT_SLOTS for n, i in uses)
        return slots or arithmetic or len(p.shape) == 0

    def _assign_trainable(self, params: list[_Param]) -> None:
        """The checkpoint's lists, else what an optimizer or the training
        info updates, else gradients, else every non-statistic tensor."""
        grads = self._gradient_names() & {p.name for p in params}
        source = None
        if self.ckpt is not None and (self.ckpt.trainable or self.ckpt.frozen):
            known, source = set(self.ckpt.trainable), "the checkpoint's requires_grad list"
        elif self.updated:
            known, source = self.updated, "the parameters the optimizer or training info updates"
        elif grads:
            known, source = grads, "the gradients in the graph"
        for p in params:
            p.trainable = not p.role.is_statistic and (source is None or p.name in known)
        if source is not None and params:
            frozen = sum(1 for p in params if not p.trainable and not p.role.is_statistic)
            self.model.notes.append(f"trainable parameters from {source}; {frozen} other parameters are frozen")

    # -- penalties ---------------------------------------------------------------
    def _find_penalties(self, params: list[_Param]) -> None:
        by_name = {p.name: p for p in params}
        found: dict[str, list[tuple[_Term, _Path]]] = {}
        for node in self.index.nodes:
            term = self._match_term(node, by_name)
            if term is None:
                continue
            path = self._path_to_loss(term.node.outputs[0] if term.node.outputs else "")
            if path is None:
                self.model.notes.append(f"{term.pattern} on {term.param!r} is not added to any loss output: ignored")
                continue
            found.setdefault(term.param, []).append((term, path))
        for name, terms in found.items():
            by_name[name].regularizer = self._regularizer(terms)
            self.model.notes.append(self._penalty_note(name, terms, by_name[name].regularizer))

    def _match_term(self, node: _Node, params: dict[str, _Param]) -> _Term | None:
        """A reduction of a parameter that makes an L1 or L2 penalty term."""
        if node.domain != "" or node.is_gradient or not node.inputs:
            return None
        weight = self.index.source(node.inputs[0])
        if node.op in ("ReduceSumSquare", "ReduceL1", "ReduceL2") and weight in params:
            if not self._full_reduction(node, params[weight]):
                return None
            if node.op == "ReduceL2":
                return self._squared_norm(node, weight)
            kind = "l2" if node.op == "ReduceSumSquare" else "l1"
            return _Term(weight, kind, 1.0, node, f"{node.op}({weight})")
        if node.op not in ("ReduceSum", "ReduceMean"):
            return None
        inner = self.index.producer.get(node.inputs[0])
        kind, weight = self._elementwise_term(inner, params) if inner is not None else (None, None)
        if kind is None or not self._full_reduction(node, params[weight]):
            return None
        factor = 1.0 / params[weight].size if node.op == "ReduceMean" else 1.0
        return _Term(weight, kind, factor, node, f"{node.op}({self._inner_text(inner, weight)})")

    def _elementwise_term(self, inner: _Node, params: dict[str, _Param]) -> tuple[str | None, str | None]:
        """Abs(W) -> l1; Pow(W, 2) or Mul(W, W) -> l2."""
        ins = [self.index.source(n) for n in inner.inputs]
        if inner.op == "Abs" and ins and ins[0] in params:
            return "l1", ins[0]
        if inner.op == "Pow" and len(ins) == 2 and ins[0] in params and self.index.scalar(inner.inputs[1]) == 2.0:
            return "l2", ins[0]
        if inner.op == "Mul" and len(ins) == 2 and ins[0] == ins[1] and ins[0] in params:
            return "l2", ins[0]
        return None, None

    @staticmethod
    def _inner_text(inner: _Node, weight: str) -> str:
        return {"Abs": f"Abs({weight})", "Pow": f"Pow({weight}, 2)"}.get(inner.op, f"Mul({weight}, {weight})")

    def _squared_norm(self, node: _Node, weight: str) -> _Term:
        """ReduceL2(W) followed by Pow(., 2) or Mul(x, x) is sum(w^2)."""
        out = node.outputs[0] if node.outputs else ""
        for consumer, i in self.index.consumers.get(out, []):
            if consumer.op == "Pow" and i == 0 and self.index.scalar(consumer.inputs[1]) == 2.0:
                return _Term(weight, "l2", 1.0, consumer, f"Pow(ReduceL2({weight}), 2)")
            if consumer.op == "Mul" and consumer.inputs[0] == consumer.inputs[1] == out:
                return _Term(weight, "l2", 1.0, consumer, f"Mul(ReduceL2({weight}), ReduceL2({weight}))")
        return _Term(weight, "norm", 1.0, node, f"ReduceL2({weight}) (not squared)")

    def _full_reduction(self, node: _Node, p: _Param) -> bool:
        """True when the reduction covers every axis (a scalar penalty)."""
        axes = node.attr("axes")
        if axes is None and len(node.inputs) > 1 and node.inputs[1]:
            tensor = self.index.constants.get(node.inputs[1])
            if tensor is None:
                return False
            from onnx import numpy_helper

            axes = [int(a) for a in numpy_helper.to_array(tensor).reshape(-1)]
        if not axes:
            return not node.attr("noop_with_empty_axes", 0)
        rank = len(p.shape)
        return {a % rank for a in axes} == set(range(rank)) if rank else True

    def _path_to_loss(self, start: str) -> _Path | None:
        """Follow a penalty term forward to a loss output, multiplying the
        constant factors met on the way; prefer a path that joins the data loss."""
        best: _Path | None = None
        stack, steps = [(start, 1.0, False, None)], 0
        while stack and steps < MAX_WALK:
            name, scale, joined, unknown = stack.pop()
            steps += 1
            if name in self.loss_targets:
                candidate = _Path(scale if unknown is None else None, name, joined, unknown)
                if best is None or (joined and not best.joined):
                    best = candidate
                continue
            for node, i in self.index.consumers.get(name, []):
                step = self._scale_step(node, i, scale, joined, unknown)
                if step is not None:
                    stack.extend((out, *step) for out in node.outputs[:1])
        return best

    def _scale_step(self, node: _Node, i: int, scale: float, joined: bool, unknown: str | None):
        if node.is_gradient or node.domain != "":
            return None
        op, ins = node.op, node.inputs
        if op == "Mul" and len(ins) == 2:
            value = self.index.scalar(ins[1 - i])
            return (scale * value, joined, unknown) if value is not None else (scale, joined, ins[1 - i])
        if op == "Div" and i == 0 and len(ins) == 2:
            value = self.index.scalar(ins[1])
            return (scale / value, joined, unknown) if value else (scale, joined, ins[1])
        if op in ("Add", "Sum", "Mean"):
            others = sum(1 for n in ins if n)
            scale = scale / others if op == "Mean" else scale
            return scale, joined or others > 1, unknown
        if op == "Sub" and len(ins) == 2:
            return (scale if i == 0 else -scale), True, unknown
        if op == "Neg":
            return -scale, joined, unknown
        if op in SCALAR_PASS:
            return scale, joined, unknown
        return None

    @staticmethod
    def _regularizer(terms: list[tuple[_Term, _Path]]) -> Regularizer:
        config = {"source": "onnx graph penalty",
                  "terms": [{"pattern": t.pattern, "scale": p.scale, "loss_output": p.output,
                             "non_constant_factor": p.unknown} for t, p in terms]}
        if any(p.scale is None or t.kind == "norm" for t, p in terms):
            return Regularizer(kind="custom", class_name="ONNXGraphPenalty", config=config)
        l1 = sum(p.scale * t.factor for t, p in terms if t.kind == "l1")
        l2 = sum(p.scale * t.factor for t, p in terms if t.kind == "l2")
        kind = "l1l2" if l1 and l2 else ("l1" if l1 else "l2")
        return Regularizer(kind=kind, l1=l1, l2=l2, class_name="ONNXGraphPenalty", config=config)

    @staticmethod
    def _penalty_note(name: str, terms: list[tuple[_Term, _Path]], reg: Regularizer) -> str:
        parts = []
        for term, path in terms:
            factor = f"x {path.scale * term.factor:g}" if path.scale is not None else \
                f"x non-constant {path.unknown!r}"
            parts.append(f"{term.pattern} {factor} added to {path.output!r}")
        summary = ", ".join(f"{k}={v:g}" for k, v in reg.factors().items()) or "factor unknown"
        return f"penalty recognised on {name!r}: {'; '.join(parts)} -> {reg.kind} ({summary}, Keras convention)"

    # -- statistics ----------------------------------------------------------------
    def _read_stats(self, params: list[_Param]) -> None:
        for p in params:
            # Ranges are checked even without statistics: data past the end
            # of its file is a truncated model either way.
            where = self._external(p)
            p.stats = self._stats(p, where) if self.options.weight_stats else None

    def _external(self, p: _Param) -> _FileRange | None:
        if p.tensor is None or p.tensor.data_location != EXTERNAL:
            return None
        values = math.prod(_shape(p.tensor.dims, f"initializer {p.name!r}")) if p.tensor.dims else 1
        itemsize = np.dtype(FLOAT_TYPES[p.dtype][1]).itemsize
        return _external_range(p.tensor, self.folder, values * itemsize)

    def _stats(self, p: _Param, where: _FileRange | None) -> WeightStats | None:
        chunk = self.options.chunk_bytes
        if p.tensor is not None:
            values = math.prod(p.tensor.dims) if p.tensor.dims else 1
            if where is not None:
                return _file_stats(where, p.dtype, chunk, p.size)
            return _array_stats(_proto_array(p.tensor, p.dtype, values), p.dtype, chunk, p.size)
        if p.ckpt is not None and p.ckpt.where is not None:
            return _file_stats(p.ckpt.where, p.ckpt.dtype, chunk, p.size)
        return None

    # -- layers ------------------------------------------------------------------
    def _build_layers(self, params: list[_Param]) -> None:
        groups: dict[str, list[_Param]] = {}
        for p in params:
            p.layer = self._layer_key(p)
            groups.setdefault(p.layer, []).append(p)
        self.owner = {p.name: p.layer for p in params}
        if len(groups) > self.options.max_layers:
            raise UnsafeInputError(f"{len(groups)} layers, over the limit of {self.options.max_layers}")
        order = sorted(groups, key=lambda k: min((p.node.index for p in groups[k] if p.node), default=1 << 60))
        node_layer = self._node_layers(groups)
        layer_nodes: dict[str, set[int]] = {}
        for index, key in node_layer.items():
            layer_nodes.setdefault(key, set()).add(index)
        for key in order:
            self.model.layers.append(self._layer(key, groups[key], node_layer, layer_nodes.get(key, set())))

    def _layer_key(self, p: _Param) -> str:
        prefix = _name_prefix(p.name)
        if prefix:
            return prefix
        node = p.node
        if node is None:
            return _clean(p.name)
        for other in node.inputs:  # a sibling weight with a readable name
            sibling = _name_prefix(other) if other != p.name and other in self.param_names else None
            if sibling:
                return sibling
        return _node_scope(node.name) or _clean(node.name) or f"{node.op}_{node.index}"

    def _node_layers(self, groups: dict[str, list[_Param]]) -> dict[int, str]:
        """Node index -> the layer whose weights it consumes in a role."""
        out: dict[int, str] = {}
        for key, members in groups.items():
            for p in members:
                for node, i in self._uses(p.name):
                    if self._role_at(node, i, p) is not Role.OTHER or node is p.node:
                        out.setdefault(node.index, key)
        return out

    def _layer(self, key: str, members: list[_Param], node_layer: dict[int, str], own: set[int]) -> Layer:
        main = min(members, key=lambda p: (ROLE_RANK[p.role], p.node.index if p.node else 1 << 60))
        node = main.node
        variables = [Variable(name=p.name, role=p.role, shape=p.shape, trainable=p.trainable,
                              regularizer=p.regularizer, stats=p.stats, dtype=FLOAT_TYPES[p.dtype][0],
                              location=f"{p.scope}:{p.name}" if p.scope else p.name) for p in members]
        outbound, activation = self._outbound(own, node_layer)
        config = {"op_type": node.op if node else None, "domain": node.domain if node else None,
                  "node": node.name if node else None, "graph": main.scope or "main",
                  "attributes": {k: v for k, v in (node.attrs() if node else {}).items() if v is not None}}
        return Layer(name=key, path=key, class_name=node.op if node else "Initializer",
                     trainable=any(p.trainable for p in members), variables=variables,
                     activation=activation, units=self._units(main), outbound=outbound,
                     calls=max(1, max(p.uses for p in members)), config=config)

    def _units(self, p: _Param) -> int | None:
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
        if op in ("MatMul", "FusedMatMul"):
            return shape[-1]
        if op in ("Conv", "FusedConv"):
            return shape[0]
        if op == "ConvTranspose" and len(shape) > 1:
            return shape[1] * int(node.attr("group", 1) or 1)
        return None

    def _outbound(self, own: set[int], node_layer: dict[int, str]) -> tuple[list[str], str | None]:
        """Layers fed through homogeneous parameter-free ops, and the
        activation applied right after the layer (``own``: its nodes)."""
        frontier = [o for i in own for o in self.index.nodes[i].outputs]
        first = [n for name in frontier for n, _ in self.index.consumers.get(name, [])
                 if n.index not in own and not n.is_gradient]
        activation = ACTIVATIONS.get(first[0].op) if len(first) == 1 else None
        found, clean, seen, steps = [], True, set(), 0
        while frontier and steps < MAX_WALK:
            name = frontier.pop()
            steps += 1
            if name in self.index.outputs:
                clean = False
            for node, _ in self.index.consumers.get(name, []):
                if node.index in own or node.index in seen or node.is_gradient:
                    continue
                seen.add(node.index)
                owner = node_layer.get(node.index)
                if owner is not None:
                    if owner not in found:
                        found.append(owner)
                elif node.op in HOMOGENEOUS:
                    frontier.extend(node.outputs)
                else:
                    clean = False
        return (found if clean else []), activation

    # -- losses and outputs ---------------------------------------------------------
    def _find_losses(self) -> None:
        for node in self.index.nodes:
            loss = self._loss_of(node)
            if loss is not None:
                self.model.losses.append(loss)

    def _loss_of(self, node: _Node) -> Loss | None:
        if node.domain != "" or node.is_gradient:
            return None
        reduction = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}
        if node.op in ("SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss"):
            mode = node.attr("reduction", "mean")
            return Loss(name="sparse_categorical_crossentropy", from_logits=node.op == "SoftmaxCrossEntropyLoss",
                        reduction=reduction.get(mode, mode), output=self._upstream_layer(node.inputs[0]),
                        config={"op": node.op, "node": node.name, "reduction": mode})
        if node.op not in ("ReduceMean", "ReduceSum") or node.attr("axes") or len(node.inputs) > 1:
            return None
        kind, prediction = self._regression_error(node.inputs[0])
        if kind is None or self._path_to_loss(node.outputs[0] if node.outputs else "") is None:
            return None
        return Loss(name=kind, reduction="sum_over_batch_size" if node.op == "ReduceMean" else "sum",
                    output=self._upstream_layer(prediction), config={"op": node.op, "node": node.name})

    def _regression_error(self, name: str) -> tuple[str | None, str | None]:
        """Pow(Sub(a, b), 2) / Mul(d, d) -> mse, Abs(Sub(a, b)) -> mae, where
        the Sub compares a prediction with a target (no parameter in it)."""
        inner = self.index.producer.get(name)
        if inner is None:
            return None, None
        diff = self.index.producer.get(inner.inputs[0]) if inner.inputs else None
        if diff is None or diff.op != "Sub":
            return None, None
        prediction = next((n for n in diff.inputs if n in self.index.producer), None)
        if inner.op == "Pow" and self.index.scalar(inner.inputs[1]) == 2.0:
            return "mean_squared_error", prediction
        if inner.op == "Mul" and inner.inputs[0] == inner.inputs[1]:
            return "mean_squared_error", prediction
        if inner.op == "Abs":
            return "mean_absolute_error", prediction
        return None, None

    def _upstream_layer(self, name: str | None) -> str | None:
        """The nearest layer producing ``name``, through parameter-free ops."""
        owners = self.owner
        frontier, steps = [name] if name else [], 0
        while frontier and steps < MAX_WALK:
            node = self.index.producer.get(frontier.pop(0))
            steps += 1
            if node is None:
                continue
            hit = next((owners[n] for n in node.inputs if n in owners), None)
            if hit is None:
                hit = next((owners[s] for n in node.inputs if (s := self.index.source(n)) in owners), None)
            if hit is not None:
                return hit
            frontier.extend(n for n in node.inputs if n)
            frontier.extend(self.index.branch_outputs.get(node.index, []))
        return None

    def _find_outputs(self) -> None:
        if self.model.losses:
            for loss in self.model.losses:
                layer = self.model.layer(loss.output) if loss.output else None
                if layer is not None and all(o.layer != layer.path for o in self.model.outputs):
                    self.model.outputs.append(Output(layer.path, layer.units, layer.activation or "linear"))
            return
        for value in self.index.main_outputs:
            producer = self.index.producer.get(value.name)
            if producer is not None and (producer.is_training_op or producer.is_gradient):
                continue
            layer_name = self._upstream_layer(value.name)
            if layer_name is None:
                continue
            activation = ACTIVATIONS.get(producer.op, "linear") if producer is not None else "linear"
            dims = value.type.tensor_type.shape.dim
            units = dims[-1].dim_value if len(dims) and dims[-1].HasField("dim_value") else None
            layer = self.model.layer(layer_name)
            self.model.outputs.append(Output(layer_name, units or (layer.units if layer else None), activation))

    # -- notes ---------------------------------------------------------------------
    def _final_notes(self, params: list[_Param]) -> None:
        model = self.model
        training = bool(model.optimizer or model.losses or model.has_regularization or self.proto.training_info
                        or self.ckpt is not None or (self._gradient_names() & {p.name for p in params}))
        if not training:
            model.notes.append(INFERENCE_NOTE)
        elif model.optimizer is None:
            model.notes.append("training graph without optimizer settings: pass them with options")
        if self.options.weight_stats is False:
            model.notes.append("weight statistics not read (weight_stats disabled)")
        skipped = len(self.index.tensors) + len(self.index.sparse) - sum(1 for p in params if p.tensor is not None)
        if skipped:
            model.notes.append(f"{skipped} initializers are constants, integer tensors or optimizer state, "
                               "not parameters")
        if self.index.sparse:
            model.notes.append("sparse initializers are counted at their dense size")


# ---------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------
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


def _tidy_float32(model: Model) -> Model:
    """ONNX stores attributes and constants as float32: show 0.01, not
    0.009999999776, as the Keras readers do (``keras_objects.tidy``)."""
    from reglint.readers.keras_objects import tidy

    opt = model.optimizer
    if opt is not None:
        for name in ("weight_decay", "coupled_l2", "momentum", "beta_1", "beta_2", "epsilon", "lr_decay"):
            value = getattr(opt, name)
            if isinstance(value, float):
                setattr(opt, name, tidy(value))
        lr = opt.learning_rate
        if lr is not None:
            lr.initial = tidy(lr.initial) if isinstance(lr.initial, float) else lr.initial
            lr.peak = tidy(lr.peak) if isinstance(lr.peak, float) else lr.peak
    for _, var in model.variables():
        reg = var.regularizer
        if reg is not None:
            reg.l1, reg.l2, reg.factor = tidy(reg.l1), tidy(reg.l2), tidy(reg.factor)
    return model
