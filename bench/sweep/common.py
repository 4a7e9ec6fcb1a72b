"""What both writers (Keras 3 and tf-keras 2) share: the case registry, the
JSON-safe conversion and the manifest entry written for every saved file.

A case is a function returning ``(model, train)`` where ``train`` is ``None``
(saved untrained) or ``(x, y)`` for one ``fit`` step. It names the formats it
is saved in; the driver records, for every file, what the framework itself
reports: ``count_params``, the trainable/non-trainable split and the weight
penalty, from the generating model and from the model loaded back from the
file (where the framework can load it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# The fixture scripts' JSON helper (fixtures/manifest_values.py): one copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
import manifest_values


@dataclass
class Case:
    name: str
    build: Callable[[], tuple[Any, Any]]
    formats: tuple[str, ...]
    note: str = ""
    tags: list[str] = field(default_factory=list)


class Registry:
    def __init__(self) -> None:
        self.cases: list[Case] = []

    def case(self, name: str, formats: tuple[str, ...] = ("keras",), note: str = "") -> Callable:
        def deco(fn: Callable) -> Callable:
            if any(c.name == name for c in self.cases):
                raise ValueError(f"duplicate case {name}")
            self.cases.append(Case(name, fn, formats, note))
            return fn
        return deco


def jsonable(o: Any) -> Any:
    return manifest_values.jsonable(o)


nparams = manifest_values.nparams


def error_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:240]}"


def rng(seed: int = 0) -> np.random.RandomState:
    return np.random.RandomState(seed)


def cls_data(n: int, shape: tuple[int, ...], k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r = rng(seed)
    return r.rand(n, *shape).astype("float32"), r.randint(0, k, n).astype("int32")


def onehot(y: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k, dtype="float32")[y]
