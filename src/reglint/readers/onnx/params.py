"""Parameters: float initializers (sparse ones at their dense size) and the
graph inputs an onnxruntime-training checkpoint or a gradient names, and
which of them training updates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from reglint.model import Regularizer, Role, WeightStats
from reglint.readers.onnx.blockwise import packed_weight, stored_type_name
from reglint.readers.onnx.graph import GraphIndex, Node
from reglint.readers.onnx.ort_checkpoint import Checkpoint, CkptTensor
from reglint.readers.onnx.quantized import quantized_weights
from reglint.readers.onnx.tensors import FLOAT_TYPES, checked_shape, type_name


@dataclass
class Param:
    """A parameter as the reader learns it, job by job."""

    name: str
    shape: tuple[int, ...]
    dtype: int
    scope: str = ""
    tensor: Any = None  # TensorProto (dense initializer or sparse values)
    dense_size: int | None = None  # sparse initializers: the dense element count
    ckpt: CkptTensor | None = None  # onnxruntime-training checkpoint entry
    role: Role = Role.OTHER
    node: Node | None = None  # the consumer that gave the role
    uses: int = 0
    trainable: bool = True
    regularizer: Regularizer | None = None
    stats: WeightStats | None = None
    layer: str = ""
    dtype_name: str = ""  # the stored values' type ("uint4" for 4-bit values packed in uint8)

    @property
    def type_name(self) -> str:
        return self.dtype_name or type_name(self.dtype)

    @property
    def quantized(self) -> bool:
        return self.dtype not in FLOAT_TYPES

    @property
    def size(self) -> int:
        if self.dense_size is not None:
            return self.dense_size
        return math.prod(self.shape) if self.shape else 1


def collect_params(index: GraphIndex, ckpt: Checkpoint | None) -> list[Param]:
    """Every float tensor that may be a parameter, and the integer tensors
    that are quantized weights; roles weed out constants."""
    params: list[Param] = []
    quantized = quantized_weights(index)
    for scope, tensor in index.tensors:
        if tensor.data_type in FLOAT_TYPES or tensor.name in quantized:
            shape = checked_shape(tensor.dims, f"initializer {tensor.name!r}")
            packed = packed_weight(index, tensor.name, shape, tensor.data_type) if tensor.name in quantized else None
            shape = packed.shape if packed else shape  # the float weight's shape, not the bytes'
            params.append(Param(tensor.name, shape, tensor.data_type, scope, tensor=tensor,
                                dtype_name=stored_type_name(packed, tensor.data_type, type_name(tensor.data_type))))
    for scope, sparse in index.sparse:
        values = sparse.values
        if values.data_type in FLOAT_TYPES:
            shape = checked_shape(sparse.dims, f"sparse initializer {values.name!r}")
            params.append(Param(values.name, shape, values.data_type, scope, tensor=values,
                                dense_size=math.prod(shape)))
    params += _input_params(index, ckpt, {p.name for p in params})
    if ckpt is not None:
        for p in params:
            p.ckpt = ckpt.get(p.name)
    return params


def _input_params(index: GraphIndex, ckpt: Checkpoint | None, known: set[str]) -> list[Param]:
    """Graph inputs that are parameters: onnxruntime-training keeps them
    out of the graph, in the checkpoint."""
    grads = index.gradient_names()
    out = []
    for name, info in index.inputs.items():
        if name in known:
            continue
        entry = ckpt.get(name) if ckpt else None
        if entry is None and name not in grads:
            continue
        shape, dtype = _input_shape(info, entry)
        if dtype in FLOAT_TYPES and shape is not None:
            out.append(Param(name, shape, dtype, ckpt=entry))
    return out


def _input_shape(info, entry: CkptTensor | None) -> tuple[tuple[int, ...] | None, int]:
    if entry is not None:
        return entry.shape, entry.dtype
    tensor_type = info.type.tensor_type
    dims = tensor_type.shape.dim
    known = [int(d.dim_value) for d in dims if d.HasField("dim_value") and d.dim_value >= 0]
    if len(known) != len(dims):  # a symbolic or negative dimension
        return None, tensor_type.elem_type
    return tuple(known), tensor_type.elem_type


def assign_trainable(params: list[Param], index: GraphIndex, ckpt: Checkpoint | None, updated: set[str] | None,
                     notes: list[str]) -> None:
    """The checkpoint's lists, else what an optimizer or the training
    info updates, else gradients, else every non-statistic tensor."""
    grads = index.gradient_names() & {p.name for p in params}
    source = None
    if ckpt is not None and (ckpt.trainable or ckpt.frozen):
        known, source = set(ckpt.trainable), "the checkpoint's requires_grad list"
    elif updated:
        known, source = updated, "the parameters the optimizer or training info updates"
    elif grads:
        known, source = grads, "the gradients in the graph"
    for p in params:
        p.trainable = not p.role.is_statistic and (source is None or p.name in known)
    if source is not None and params:
        frozen = sum(1 for p in params if not p.trainable and not p.role.is_statistic)
        notes.append(f"trainable parameters from {source}; {frozen} other parameters are frozen")
