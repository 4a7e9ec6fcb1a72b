"""Per-variable gradient measurement at the saved weights (theory sections
1.2-1.4), with Keras' own definitions, on the probe batch (the first
training batch):

- data loss ``L = compiled_loss(y, f(x))``, a mean over the batch;
- penalty ``P = sum(model.losses)``: weight penalties ``R(w)`` summed as
  plain sums (``L2``: ``l2 * sum(w**2)``), activity penalties summed over
  the output and divided by the batch size (Keras >= 3.14), and any
  ``add_loss`` term;
- per regularized variable w: ``|g_data| = ||dL/dw||``,
  ``|g_pen| = ||dP/dw||`` (the weight penalty's own gradient, plus what
  activity penalties downstream send back through w) and their ratio
  ``|g_pen| / |g_data|``; its share ``R(w) / P_weights`` of the weight
  penalties;
- the first update of the compiled optimizer, ``||w_1 - w_0|| / ||w_0||``,
  once with the gradient of ``L + P`` and once with that of ``L`` alone
  (a fresh optimizer each time, so momentum starts at zero as in training;
  decoupled ``weight_decay`` acts in both, being the optimizer's own).

Functions take a ``backend`` (``backend.Backend``: TensorFlow or PyTorch
under Keras) as an argument: nothing here imports either.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from reglint.profile.load import flatten, layer_paths
from reglint.profile.result import KERNEL_NAMES, LayerPenalty, VariableRow, div
from reglint.profile.run import fresh_optimizer

# ---------------------------------------------------------------------------
# the measurement


def regularizer_info(reg) -> dict[str, Any] | None:
    if reg is None:
        return None
    out: dict[str, Any] = {"class": type(reg).__name__}
    try:  # Keras 3 keeps L1's l1 and the orthogonal factor as tensors; its config holds them as numbers
        config = reg.get_config() or {}
    except Exception:  # a custom regularizer without a usable config
        config = {}
    for attr in ("l1", "l2", "factor"):
        value = getattr(reg, attr, None)
        if not isinstance(value, (int, float, np.floating)):
            value = config.get(attr)
        if isinstance(value, (int, float, np.floating)) and not isinstance(value, bool):
            out[attr] = float(value)
    mode = getattr(reg, "mode", None)
    if isinstance(mode, str):
        out["mode"] = mode
    return out


def variable_rows(backend, model, trainable, grads_data, grads_pen, analysis) -> tuple[list[VariableRow], float]:
    """Rows for variables with a weight regularizer, and for the variables
    of activity-regularized layers (their gradient carries that penalty)."""
    owners = _Owners(model, analysis)
    rows, weight_penalty = [], 0.0
    for var, gd, gp in zip(trainable, grads_data, grads_pen, strict=True):
        reg = getattr(var, "regularizer", None)
        if reg is None and id(var) not in owners.activity_vars:
            continue
        penalty = backend.scalar(reg(var)) if reg is not None else 0.0
        weight_penalty += penalty
        path, layer_path, variable, match = owners.match(var)
        rows.append(VariableRow(
            path=path, layer=layer_path, variable=variable, params=int(np.prod(var.shape)) if var.shape else 1,
            kernel_like=path.rsplit("/", 1)[-1] in KERNEL_NAMES, regularizer=regularizer_info(reg),
            penalty=penalty, share=None, weight_norm=backend.norm(var),
            grad_data_norm=backend.norm(backend.dense(gd, var)), grad_penalty_norm=backend.norm(backend.dense(gp, var)),
            static_penalty=match.penalty if match else None, scale_invariant=bool(match and match.invariant),
            absorbed=bool(match and match.absorbed), offset=bool(match and match.offset),
            behind_norm=bool(match and match.behind_norm)))
    for row in rows:
        row.share = row.penalty / weight_penalty if weight_penalty else None
    return rows, weight_penalty


def scale_invariant_variables(model, analysis) -> list:
    """The trainable kernels the static analysis finds scale-invariant
    (they feed a normalization layer), regularized or not: their angular
    update per step is their effective learning rate."""
    owners = _Owners(model, analysis)
    out = []
    for var in model.trainable_variables:
        match = owners.match(var)[3]
        if match and match.invariant:
            out.append(var)
    return out


class _Owners:
    """Keras variables matched to the static report's layer paths."""

    def __init__(self, model, analysis):
        self.layer_of: dict[int, Any] = {}
        self.paths = layer_paths(model)
        self.activity_vars: set[int] = set()
        for layer in flatten(model):
            owned = list(getattr(layer, "trainable_weights", []) or [])
            for var in owned:
                self.layer_of.setdefault(id(var), layer)
            if getattr(layer, "activity_regularizer", None) is not None:
                self.activity_vars.update(id(v) for v in owned)
        self.static = _static_index(analysis)

    def match(self, var) -> tuple[str, str, str, StaticVariable | None]:
        """(Keras path, static layer path, static variable name, the static match)."""
        path = str(getattr(var, "path", var.name))
        owner = self.layer_of.get(id(var))
        owner_path = self.paths.get(id(owner), path.rsplit("/", 1)[0] if "/" in path else path)
        # Wrappers' variables omit the wrapper (Bidirectional's are
        # forward_lstm/lstm_cell/kernel): search under the owner's path.
        found = _match_static(path if path.startswith(owner_path + "/") else f"{owner_path}/{path}", self.static)
        layer_path = found.layer_path if found else owner_path
        variable = found.name if found else path.rsplit("/", 1)[-1]
        return path, layer_path, variable, found


class StaticVariable(NamedTuple):
    """What the static analysis says about one variable of the file."""

    parts: list[str]  # layer path and variable name split on "/"
    layer_path: str
    name: str
    penalty: float | None  # static estimate of R(w) at initialisation
    invariant: bool  # a kernel feeding a normalization layer
    absorbed: bool  # a normalization gamma/beta the next layers take over
    offset: bool  # a bias or beta
    behind_norm: bool  # reaches the outputs only through a normalization layer


def _static_index(analysis) -> list[StaticVariable]:
    """Every static variable, regularized or not."""
    if analysis is None:
        return []
    penalties = {(p.layer.path, p.variable.name): p for p in analysis.penalties}
    out = []
    for layer, var in analysis.model.variables():
        p = penalties.get((layer.path, var.name))
        invariant = p.scale_invariant if p is not None else (var.role.is_kernel_like and
                                                              analysis.feeds_normalizer(layer))
        out.append(StaticVariable(layer.path.split("/") + var.name.split("/"), layer.path, var.name,
                                  p.penalty_init if p is not None else None, bool(invariant),
                                  bool(p and p.absorbed), bool(p and p.offset), bool(p and p.behind_norm)))
    return out


def _match_static(path: str, index: list[StaticVariable]) -> StaticVariable | None:
    """The static variable a Keras variable path names: same last part, and
    every part of the static layer path and variable name found in order
    (``lstm/lstm_cell/kernel`` is the static ``lstm`` + ``kernel``)."""
    parts = path.split("/")
    best, best_score = None, -1
    for static in index:
        if static.parts[-1] != parts[-1]:
            continue
        pos, ok = 0, True
        for part in static.parts:
            try:
                pos = parts.index(part, pos) + 1
            except ValueError:
                ok = False
                break
        if ok and len(static.parts) > best_score:
            best, best_score = static, len(static.parts)
    return best


def layer_penalties(backend, model) -> list[LayerPenalty]:
    """Activity and ``add_loss`` penalties, per layer, from the last call.
    A layer's inner layers (a MultiHeadAttention's projections, a
    Bidirectional's two directions) add theirs to it: the layer the static
    reader names (review 66, 2: they were reported under their bare names,
    never matched to the layer's static finding)."""
    paths = layer_paths(model)
    owner = _owners(model, paths)
    totals: dict[int, list[float]] = {}
    regs: dict[int, object] = {}  # the activity regularizer behind each owner's losses (an inner layer's)
    for layer in [model, *flatten(model)]:
        values = _own_losses(backend, layer)
        if values:
            key = id(owner.get(id(layer), layer))
            totals.setdefault(key, []).extend(values)
            if getattr(layer, "activity_regularizer", None) is not None:
                regs.setdefault(key, layer.activity_regularizer)
    out = []
    for layer in [model, *flatten(model)]:
        summed = totals.get(id(layer))
        if not summed:
            continue
        reg = getattr(layer, "activity_regularizer", None) or regs.get(id(layer))
        out.append(LayerPenalty(layer=paths.get(id(layer), layer.name),
                                kind="activity" if reg is not None else "add_loss",
                                regularizer=regularizer_info(reg), penalty=sum(summed)))
    return out


def _own_losses(backend, layer) -> list[float]:
    own = getattr(layer, "_get_own_losses", None)
    if own is None:
        return []
    try:
        return [backend.scalar(v) for v in own()]
    except Exception:
        return []


def _owners(model, paths: dict[int, str]) -> dict[int, object]:
    """id(inner layer) -> the nearest layer the static reader names (a
    layer in ``paths``) that holds it, deepest first."""
    found: dict[int, object] = {}
    for layer in sorted((x for x in flatten(model) if id(x) in paths), key=lambda x: -paths[id(x)].count("/")):
        inner = getattr(layer, "_flatten_layers", None)
        try:
            below = list(inner(include_self=False, recursive=True)) if inner is not None else []
        except TypeError:
            below = []
        for sub in below:
            if id(sub) not in paths:
                found.setdefault(id(sub), layer)
    return found


def snapshot(backend, variables) -> list:
    """Copies of the variables' values (``model.variables`` holds the
    weights, BatchNorm statistics and random layers' seed states)."""
    return [backend.copy(v.value) for v in variables]


def restore(variables, saved: list) -> None:
    for var, value in zip(variables, saved, strict=True):
        var.assign(value)


def first_update(backend, model, opt, trainable, grads_data, grads_pen, rows) -> None:
    """||w1 - w0|| / ||w0|| for one step of L + P and one of L alone."""
    by_path = {row.path: row for row in rows}
    watched = [(i, var) for i, var in enumerate(trainable) if str(getattr(var, "path", var.name)) in by_path]
    scale = backend.loss_scale_factor(opt)
    dense_data = [backend.dense(g, v) for g, v in zip(grads_data, trainable, strict=True)]
    dense_pen = [backend.dense(g, v) for g, v in zip(grads_pen, trainable, strict=True)]
    saved = snapshot(backend, model.variables)
    for attr, grads in (("update_ratio", [d + p for d, p in zip(dense_data, dense_pen, strict=True)]),
                        ("update_ratio_data", dense_data)):
        trial = fresh_optimizer(backend.keras, opt)
        before = {i: backend.copy(var.value) for i, var in watched}
        # under gradient accumulation the first k-1 applications only add up
        # (review 38, 7: every update/|w| read 0); the k-th is the update
        for _ in range(max(1, int(getattr(trial, "gradient_accumulation_steps", None) or 1))):
            backend.apply_gradients(trial, [g * scale for g in grads], trainable)
        for i, var in watched:
            row = by_path[str(getattr(var, "path", var.name))]
            w0 = backend.norm(before[i])
            setattr(row, attr, div(backend.norm(var.value - before[i]), w0))
        restore(model.variables, saved)
