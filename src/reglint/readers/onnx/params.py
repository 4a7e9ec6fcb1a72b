"""Parameters: initializers and checkpoint entries that training updates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from reglint.model import Regularizer, Role, WeightStats
from reglint.readers.onnx.graph import _Node
from reglint.readers.onnx.ort_checkpoint import _CkptTensor


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
