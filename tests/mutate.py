"""Mutations of real Keras files: a model written by Keras, then one thing
changed (a config value, a tensor), so tests exercise exactly one defect on
an otherwise real file."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np


def rewrite_keras_zip(src: Path, dst: Path, *, config: Callable[[dict], Any] | None = None,
                      weights: Callable[[h5py.File], None] | None = None) -> Path:
    """Copy ``src`` to ``dst`` with ``config.json`` and/or ``model.weights.h5``
    changed in place by the given callables."""
    with zipfile.ZipFile(src) as zin:
        members = {name: zin.read(name) for name in zin.namelist()}
    if config is not None:
        cfg = json.loads(members["config.json"])
        result = config(cfg)
        cfg = cfg if result is None else result
        members["config.json"] = json.dumps(cfg).encode() if not isinstance(cfg, bytes) else cfg
    if weights is not None:
        buffer = io.BytesIO(members["model.weights.h5"])
        with h5py.File(buffer, "r+") as h5:
            weights(h5)
        members["model.weights.h5"] = buffer.getvalue()
    with zipfile.ZipFile(dst, "w") as zout:
        for name, data in members.items():
            zout.writestr(name, data)
    return dst


def layer_configs(cfg: dict) -> list[dict]:
    """Every layer config dict in a model config, nested ones included."""
    out = []

    def walk(node):
        if isinstance(node, dict):
            if "class_name" in node and isinstance(node.get("config"), dict):
                out.append(node["config"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(cfg.get("config", {}))
    return out


def set_first_regularizer(cfg: dict, value: Any, key: str = "kernel_regularizer", factor: str = "l2") -> None:
    for layer in layer_configs(cfg):
        reg = layer.get(key)
        if isinstance(reg, dict) and isinstance(reg.get("config"), dict):
            reg["config"][factor] = value
            return
    raise AssertionError("no regularizer to mutate")


def poison_first_kernel(h5: h5py.File, value: float = float("nan")) -> None:
    """Write ``value`` into the first element of the first 2-D tensor."""
    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.ndim == 2 and name.startswith("layers/") and not found:
            found.append(obj)

    h5.visititems(visit)
    data = found[0][...]
    data.flat[0] = value
    found[0][...] = data


def add_extra_tensor(h5: h5py.File, layer_group: str) -> None:
    group = h5[f"{layer_group}/vars"]
    group.create_dataset(str(len(group)), data=np.zeros((3,), dtype="float32"))


def copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst
