"""Explicit penalties in training graphs."""

from __future__ import annotations

from dataclasses import dataclass

from reglint.readers.onnx.graph import _Node

# Scalar-preserving ops a penalty passes through on its way to the loss.
SCALAR_PASS = {"Identity", "Cast", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "ReduceSum", "ReduceMean"}


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
