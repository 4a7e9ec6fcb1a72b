"""Weights-only HDF5 files: ``model.save_weights(...)``.

They hold tensors and no architecture: no layer classes, regularizers,
optimizer or loss. Two layouts:

- Keras 1/2 and tf-keras (``save_weights("w.h5")``): the root attribute
  ``layer_names`` lists one group per layer, whose ``weight_names``
  attribute names its tensors (``dense_1/kernel:0``, ``lstm_1_W_i``).
- Keras 3 (``save_weights("w.weights.h5")``): unnamed ``vars/N`` datasets
  under each layer's save path (``layers/dense/vars/0``), beside the
  optimizer's.

The reader counts the stored tensors (and their statistics), names them
where the file does, and says in a note that there is nothing else to lint.
A repository's pre-commit hook must pass on such a file: it is not bad
input, just input with little to check.
"""

from __future__ import annotations

import re
from pathlib import Path

from reglint.errors import ModelReadError
from reglint.model import UNRECORDED_CLASS, Layer, Model, Role, Variable
from reglint.readers.h5_index import DATASET, GROUP, H5Index
from reglint.readers.keras_layers import role_from_weight_name
from reglint.readers.limits import ReadOptions
from reglint.readers.safe_io import attr_strings, attr_text, h5_get
from reglint.readers.tensor_stats import h5_dataset_stats, keras_dtype_attr

NOTE = ("weights-only file: no architecture, regularizers or optimizer to lint; parameters counted from the "
        "stored tensors (save the full model with model.save(...) to lint its regularization)")
NON_TRAINABLE = {"moving_mean", "moving_variance", "running_mean", "running_std", "running_var",
                 "mean", "variance", "count"}  # the last three: a Normalization layer's adapted statistics
# Keras 3 files number a layer's variables (vars/0...); Keras' own names for
# the layers say which hold statistics: BatchNormalization's gamma, beta,
# moving_mean, moving_variance, and Normalization's mean, variance, count
# (review 44, 6).
AUTO_BATCHNORM = re.compile(r"batch_normalization(_\d+)?")
AUTO_NORMALIZATION = re.compile(r"normalization(_\d+)?")


def is_weights_only(h5) -> bool:
    """A save_weights file: legacy ``layer_names`` at the root, or Keras 3's
    ``layers``/``vars`` groups, and no ``model_config``."""
    if "model_config" in h5.attrs:
        return False
    if "layer_names" in h5.attrs:
        return True
    return any(h5_get(h5, name) is not None for name in ("layers", "vars")) and "model_weights" not in h5


def read_weights_only(h5, path: Path, options: ReadOptions) -> Model:
    version = attr_text(h5.attrs, "keras_version")
    model = Model(path=str(path), format="keras_weights", framework_version=version,
                  framework="tf.keras" if version and version.endswith("-tf") else "keras",
                  backend=attr_text(h5.attrs, "backend"))
    if "layer_names" in h5.attrs:
        _legacy(h5, model, options)
    else:
        _keras3(h5, model, options)
    model.notes.append(NOTE)
    if any(layer.variables for layer in model.layers) and "layer_names" not in h5.attrs:
        model.notes.append("a Keras 3 weights file does not record which tensors are trainable: all are "
                           "counted as trainable but the statistics of layers named as Keras names "
                           "BatchNormalization and Normalization")
    return model


def _legacy(h5, model: Model, options: ReadOptions) -> None:
    import h5py

    for name in attr_strings(h5.attrs, "layer_names"):
        group = h5_get(h5, name)
        if not isinstance(group, h5py.Group):
            continue
        layer = Layer(name=name, path=name, class_name=UNRECORDED_CLASS)
        for weight in attr_strings(group.attrs, "weight_names"):
            ds = h5_get(group, weight)
            if not isinstance(ds, h5py.Dataset):
                raise ModelReadError(f"weights-only file: {name}/{weight} is listed but not stored")
            short, role = role_from_weight_name(weight, name)
            prefix = "/".join(c for c in weight.split("/")[1:-1])
            layer.variables.append(_variable(ds, f"{prefix}/{short}" if prefix else short, role,
                                             trainable=short not in NON_TRAINABLE and not role.is_statistic,
                                             options=options, model=model, layer=name))
        model.layers.append(layer)


def _keras3(h5, model: Model, options: ReadOptions) -> None:
    index = H5Index(h5)
    if index.kind("vars") == GROUP:
        _collect_layer(index, "vars", "(model)", model, options)
    # A subclassed model's sub-layers are saved under their attribute names
    # (``d1/vars``, ``bn/vars``) beside ``layers/``; only the optimizer's
    # state is not the model's.
    for name, kind in index.children(""):
        if kind == GROUP and name not in ("layers", "vars", "optimizer"):
            _collect_layer(index, name, name, model, options)
    stack = ["layers"] + [f"{name}/layers" for name, kind in index.children("")
                          if kind == GROUP and name not in ("layers", "optimizer")
                          and index.kind(f"{name}/layers") == GROUP]
    while stack:
        path = stack.pop()
        for name, kind in sorted(index.children(path), reverse=True):
            child = f"{path}/{name}"
            if kind == GROUP:
                label = child[len("layers/"):] if child.startswith("layers/") else child
                _collect_layer(index, child, label.replace("/layers/", "/"), model, options)
                if index.kind(f"{child}/layers") == GROUP:
                    stack.append(f"{child}/layers")
    model.layers.sort(key=lambda layer: layer.path)


def _collect_layer(index: H5Index, path: str, label: str, model: Model, options: ReadOptions) -> None:
    """One layer: its own ``vars`` and those of its sub-objects (``cell``,
    ``forward_layer``), but not nested layers (``layers/``), which are
    layers of their own."""
    layer = Layer(name=label.split("/")[-1], path=label, class_name=UNRECORDED_CLASS)

    def visit(group: str, prefix: str, depth: int) -> None:
        for name, kind in sorted(index.children(group), key=lambda c: (c[1] != DATASET, _order(c[0]))):
            if kind == DATASET:
                ds = index.tensor(f"{group}/{name}")
                rank = len(ds.shape or ())
                role = Role.KERNEL if rank >= 2 else Role.BIAS if rank == 1 else Role.OTHER
                short = f"var_{name}" if name.isdigit() else name
                layer.variables.append(_variable(ds, prefix + short, role, True, options, model, label))
            elif kind == GROUP and name != "layers" and depth < 16:
                visit(f"{group}/{name}", prefix if name == "vars" else f"{prefix}{name}/", depth + 1)

    visit(path, "", 0)
    _statistics_by_name(layer)
    if layer.variables:
        model.layers.append(layer)


def _statistics_by_name(layer: Layer) -> None:
    """Mark a Keras-named BatchNormalization's or Normalization's numbered
    statistics (AUTO_BATCHNORM, AUTO_NORMALIZATION) not trainable."""
    shapes = [v.shape for v in layer.variables]
    if AUTO_BATCHNORM.fullmatch(layer.name) and 2 <= len(shapes) <= 4 and len(set(shapes)) == 1 \
            and len(shapes[0]) == 1:
        # gamma and beta (either left out by scale=False or center=False), then the statistics
        own = {4: (Role.GAMMA, Role.BETA), 3: (Role.OTHER,), 2: ()}[len(shapes)]
        roles = (*own, Role.MOVING_MEAN, Role.MOVING_VARIANCE)
        for var, role in zip(layer.variables, roles, strict=True):
            var.role, var.trainable = role, not role.is_statistic
        layer.class_name = "BatchNormalization"
    elif AUTO_NORMALIZATION.fullmatch(layer.name) and len(shapes) == 3 and shapes[0] == shapes[1] \
            and shapes[2] == ():
        for var in layer.variables:
            var.role, var.trainable = Role.OTHER, False
        layer.class_name = "Normalization"


def _order(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (1 << 30, name)


def _variable(ds, name: str, role: Role, trainable: bool, options: ReadOptions, model: Model, layer: str) -> Variable:
    var = Variable(name=name, role=role, shape=tuple(int(d) for d in (ds.shape or ())), trainable=trainable,
                   dtype=keras_dtype_attr(ds) or str(ds.dtype), location=ds.name)
    if options.weight_stats:
        try:
            var.stats = h5_dataset_stats(ds, options.chunk_bytes)
        except Exception as exc:
            from reglint.model import Problem, ProblemKind

            model.problems.append(Problem(ProblemKind.UNREADABLE, layer, f"cannot read {name} values: "
                                          f"{type(exc).__name__}", target=name))
    return var
