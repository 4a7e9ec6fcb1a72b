"""Parameters: float initializers (sparse ones at their dense size) and the
graph inputs an onnxruntime-training checkpoint or a gradient names, and
which of them training updates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from reglint.errors import ModelReadError
from reglint.model import Regularizer, Role, WeightStats
from reglint.readers.onnx.blockwise import packed_weight, stored_type_name
from reglint.readers.onnx.graph import GraphIndex, Node
from reglint.readers.onnx.ort_checkpoint import Checkpoint, CkptTensor
from reglint.readers.onnx.quantized import quantized_weights
from reglint.readers.onnx.tensors import EXTERNAL, FLOAT_TYPES, checked_shape, type_name

MAX_INT64 = (1 << 63) - 1


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
    constant_node: bool = False  # held in a Constant node, not an initializer
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
        if index.shadowed(tensor):
            continue  # a duplicate name: onnxruntime uses the last one
        if tensor.data_type in FLOAT_TYPES or tensor.name in quantized:
            params.append(_dense_param(index, scope, tensor, tensor.name in quantized))
    # Constant nodes' tensors are read as the initializers they are; the
    # reader keeps those a layer reads as a weight (a role other than OTHER).
    known = {p.name for p in params}
    for scope, tensor in index.constant_nodes:
        if tensor.name not in known and (tensor.data_type in FLOAT_TYPES or tensor.name in quantized):
            known.add(tensor.name)
            params.append(_dense_param(index, scope, tensor, tensor.name in quantized))
            params[-1].constant_node = True
    for scope, sparse in index.sparse:
        values = sparse.values
        if values.data_type in FLOAT_TYPES:
            shape, dense = checked_sparse(sparse)
            params.append(Param(values.name, shape, values.data_type, scope, tensor=values, dense_size=dense))
    params += _input_params(index, ckpt, {p.name for p in params})
    if ckpt is not None:
        for p in params:
            p.ckpt = ckpt.get(p.name)
    return params


def checked_sparse(sparse) -> tuple[tuple[int, ...], int]:
    """The dense shape and element count of a sparse initializer whose
    values, indices and dims agree (ONNX's SparseTensorProto rules); a
    ModelReadError otherwise."""
    values, indices = sparse.values, sparse.indices
    what = f"sparse initializer {values.name!r}"
    shape = checked_shape(sparse.dims, what)
    dense = math.prod(shape)
    itemsize = np.dtype(FLOAT_TYPES[values.data_type][1]).itemsize
    if dense * itemsize > MAX_INT64:
        raise ModelReadError(f"{what} claims dims {list(shape)}: {dense:,} values, more bytes than a 64-bit size "
                             "holds (onnxruntime refuses it): corrupt")
    if len(values.dims) != 1:
        raise ModelReadError(f"{what}: its values have dims {list(values.dims)}, not [NNZ]: corrupt")
    nnz = int(values.dims[0])
    if nnz > dense:
        raise ModelReadError(f"{what} holds {nnz:,} values, its dense shape {list(shape)} has {dense:,}: corrupt")
    rank = len(shape)
    index_dims = [int(d) for d in indices.dims]
    if index_dims not in ([nnz], [nnz, rank]) and not (nnz == 0 and not index_dims):
        raise ModelReadError(f"{what}: indices of dims {index_dims} for {nnz:,} values of rank {rank}: corrupt")
    if nnz and indices.data_location != EXTERNAL:
        from onnx import numpy_helper

        at: np.ndarray = numpy_helper.to_array(indices).astype(np.int64, copy=False).reshape(index_dims)
        if at.ndim == 2:
            if bool(np.any(at < 0)) or bool(np.any(at >= np.array(shape, dtype=np.int64))):
                raise ModelReadError(f"{what}: an index lies outside its dense shape {list(shape)}: corrupt")
            at = np.ravel_multi_index(tuple(at.T), shape) if rank else at.reshape(-1)
        if bool(np.any(at < 0)) or bool(np.any(at >= dense)):
            raise ModelReadError(f"{what}: an index lies outside its dense shape {list(shape)}: corrupt")
        if np.unique(at).size != nnz:
            raise ModelReadError(f"{what}: {nnz - np.unique(at).size:,} of its indices repeat another: corrupt")
    return shape, dense


def _dense_param(index: GraphIndex, scope: str, tensor, quantized: bool) -> Param:
    shape = checked_shape(tensor.dims, f"initializer {tensor.name!r}")
    packed = packed_weight(index, tensor.name, shape, tensor.data_type) if quantized else None
    shape = packed.shape if packed else shape  # the float weight's shape, not the bytes'
    return Param(tensor.name, shape, tensor.data_type, scope, tensor=tensor,
                 dtype_name=stored_type_name(packed, tensor.data_type, type_name(tensor.data_type)))


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
