"""Inputs for ``reglint profile``: batches from the user's ``.npz``, or
synthetic batches shaped like the model's inputs and compiled loss.

Numpy only: nothing here imports TensorFlow, so a bad ``--data`` file is
reported before the slow Keras import.

With ``--data``, a fifth of the examples (``HOLD_OUT``, drawn with
``--seed``, never trained on) is held back to compare the penalized run
with its unregularized twin; batches are drawn without replacement from a
permutation of the rest, fixed by ``--seed``; the first batch is the
*probe* on which the initial and final data losses are compared.

Without data, one synthetic batch is drawn and every step trains on it (the
"overfit one batch" sanity check): inputs are standard normal floats
(integer token ids in ``[0, input_dim)`` for inputs that feed an
``Embedding``), labels are drawn to match the loss: class ids for sparse
cross-entropy, one-hot rows for categorical losses, {0, 1} for binary
losses, |N(0, 1)| for losses of positive targets (Poisson, MSLE) and
N(0, 1) for regression. Random labels carry no signal, so only the scale
at initialisation is measured; a healthy optimizer can still fit one
fixed batch, which is what the short run checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reglint.profile import ProfileError

# A .npz is a zip archive; anything else np.load would try to unpickle.
_NPZ_MAGIC = b"PK"

# The share of --data held back from training, to score both runs of the
# twin on examples neither saw (Keras' validation_split default is also 0.2,
# but takes the file's last rows; a random slice, because files saved class
# by class are common and their last fifth would hold one class).
HOLD_OUT = 0.2
# Fewer examples than this: nothing is held back (a slice of one or two
# examples scores nothing).
MIN_HOLD_OUT_SAMPLES = 10
# At most this many held-back examples are scored at each record (the cost
# of ~50 evaluations per profile stays small next to the steps).
MAX_HELD_OUT = 2048

# Unknown non-batch dimensions (variable sequence length, image size) of a
# synthetic input: small, so a profile stays fast.
UNKNOWN_DIM = 8

SPARSE = "sparse"
ONE_HOT = "one_hot"
BINARY = "binary"
POSITIVE = "positive"
REGRESSION = "regression"

_KIND_BY_LOSS = {
    "sparse_categorical_crossentropy": SPARSE,
    "categorical_crossentropy": ONE_HOT,
    "categorical_focal_crossentropy": ONE_HOT,
    "kl_divergence": ONE_HOT,
    "categorical_hinge": ONE_HOT,
    "binary_crossentropy": BINARY,
    "binary_focal_crossentropy": BINARY,
    "hinge": BINARY,
    "squared_hinge": BINARY,
    "poisson": POSITIVE,
    "mean_squared_logarithmic_error": POSITIVE,
}


def canonical_loss_name(name: str | None) -> str | None:
    """``"mse"`` -> ``mean_squared_error``; ``SparseCategoricalCrossentropy``
    -> ``sparse_categorical_crossentropy``."""
    if not name:
        return None
    from reglint.readers.keras_objects import parse_loss_name

    return parse_loss_name(str(name))


def label_kind(loss_name: str | None) -> str:
    return _KIND_BY_LOSS.get(canonical_loss_name(loss_name) or "", REGRESSION)


@dataclass
class InputSpec:
    """One model input: its shape without the batch axis (None: unknown)."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    vocabulary: int | None = None  # input_dim of the Embedding it feeds


@dataclass
class TargetSpec:
    """One model output and the labels its loss expects."""

    name: str
    shape: tuple[int | None, ...]  # the output's shape without the batch axis
    kind: str  # SPARSE, ONE_HOT, BINARY, POSITIVE, REGRESSION
    ignore_class: int | None = None  # the label a sparse loss skips (Keras' ignore_class)


@dataclass
class Batches:
    """Fixed-size batches, reshuffled every epoch with a seeded permutation
    (as ``fit(shuffle=True)`` does: a fixed order would train every epoch
    on the same few batches, whose BatchNorm statistics and gradients a
    penalized small-data run then fits unlike any real training).

    ``xs``/``ys`` hold one array per model input/output; ``batch(t)`` is
    what step ``t`` trains on, ``batch(0)`` the probe. Epoch 0's order is
    ``default_rng(seed)``'s permutation, epoch k's ``default_rng([seed, k])``.
    """

    xs: list[np.ndarray]
    ys: list[np.ndarray]
    batch_size: int
    seed: int
    synthetic: bool
    source: str  # the .npz path, or "synthetic"
    keys: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # The model's input dict keys, in the order of ``xs`` (a model built on
    # a dict of inputs takes a dict: KerasHub backbones, dict Functionals).
    input_keys: list[str] | None = None
    # The user's training examples per epoch (profile --samples), where --data
    # holds more than the training set; None: the file's examples.
    epoch_samples: int | None = None

    def __post_init__(self) -> None:
        self.samples = int(self.xs[0].shape[0])
        self.batch_size = max(1, min(self.batch_size, self.samples))
        self._order = np.random.default_rng(self.seed).permutation(self.samples)
        self._epoch_order: tuple[int, np.ndarray] = (0, self._order)
        self.per_epoch = self.samples // self.batch_size  # the last partial batch is dropped, like a fixed shape
        self.file_samples = self.samples  # examples in the file, held-back ones included
        self.held_out = 0  # examples held back (split_held_out)

    def batch(self, step: int) -> tuple[Any, Any]:
        epoch, within = divmod(step, self.per_epoch)
        start = within * self.batch_size
        index = self.order(epoch)[start:start + self.batch_size]
        ys = [y[index] for y in self.ys]
        return model_inputs([x[index] for x in self.xs], self.input_keys), (ys[0] if len(ys) == 1 else ys)

    def order(self, epoch: int) -> np.ndarray:
        """The permutation of the examples for ``epoch`` (the last one cached)."""
        if epoch == 0:
            return self._order
        if self._epoch_order[0] != epoch:
            self._epoch_order = (epoch, np.random.default_rng([self.seed, epoch]).permutation(self.samples))
        return self._epoch_order[1]

    def describe(self) -> dict[str, Any]:
        return {"source": "synthetic" if self.synthetic else "file", "path": None if self.synthetic else self.source,
                "samples": self.file_samples, "train_samples": self.samples, "held_out": self.held_out,
                "epoch_samples": self.epoch_samples,
                "batch_size": self.batch_size, "seed": self.seed,
                "x_shapes": [list(x.shape) for x in self.xs], "y_shapes": [list(y.shape) for y in self.ys],
                "keys": self.keys or None, "notes": list(self.notes)}


@dataclass
class HeldOut:
    """Examples held back from training, one array per input/output."""

    xs: list[np.ndarray]
    ys: list[np.ndarray]
    available: int  # examples held back before the MAX_HELD_OUT cap
    input_keys: list[str] | None = None  # as Batches.input_keys
    # Every label of --data, held back or not, one array per output: the
    # class prior chance is taken from (the slice's own majority share is
    # noisy: 0.125-0.132 on 287 examples of 10 balanced classes, review 50).
    all_ys: list[np.ndarray] | None = None

    @property
    def samples(self) -> int:
        return int(self.xs[0].shape[0])

    def chunks(self, size: int):
        """(x, y) in pieces of ``size`` examples, shaped as the model takes them."""
        for start in range(0, self.samples, size):
            ys = [y[start:start + size] for y in self.ys]
            yield model_inputs([x[start:start + size] for x in self.xs], self.input_keys), \
                (ys[0] if len(ys) == 1 else ys)


def model_inputs(xs: list[Any], keys: list[str] | None) -> Any:
    """The arrays as the model takes them: a dict by key for a model built
    on a dict of inputs, else one array, or a list in the inputs' order.

    >>> model_inputs([1, 2], ["a", "b"]), model_inputs([1], None), model_inputs([1, 2], None)
    ({'a': 1, 'b': 2}, 1, [1, 2])
    """
    if keys is not None:
        return dict(zip(keys, xs, strict=True))
    return xs[0] if len(xs) == 1 else xs


def split_held_out(batches: Batches, fraction: float = HOLD_OUT) -> tuple[Batches, HeldOut | None]:
    """(training batches, held-back examples): the last ``fraction`` of a
    ``seed`` permutation is held back, the rest batched as before. Synthetic
    batches and files of fewer than MIN_HOLD_OUT_SAMPLES examples hold
    nothing back."""
    if batches.synthetic or batches.samples < MIN_HOLD_OUT_SAMPLES:
        return batches, None
    order = np.random.default_rng([batches.seed, 1]).permutation(batches.samples)
    n_held = max(1, round(batches.samples * fraction))
    train, held = order[:-n_held], order[-n_held:]
    capped = held[:MAX_HELD_OUT]
    kept = Batches([x[train] for x in batches.xs], [y[train] for y in batches.ys], batches.batch_size,
                   batches.seed, synthetic=False, source=batches.source, keys=batches.keys,
                   notes=list(batches.notes), input_keys=batches.input_keys, epoch_samples=batches.epoch_samples)
    kept.file_samples = batches.samples
    kept.held_out = n_held
    return kept, HeldOut([x[capped] for x in batches.xs], [y[capped] for y in batches.ys], n_held,
                         input_keys=batches.input_keys, all_ys=list(batches.ys))


# ---------------------------------------------------------------------------
# --data FILE.npz


@dataclass
class NpzData:
    """Arrays read from ``--data``, before they are checked against the model."""

    path: str
    xs: list[np.ndarray]
    ys: list[np.ndarray]
    x_keys: list[str]
    y_keys: list[str]
    epoch_samples: int | None = None  # profile --samples: the training's examples, when --data holds more

    @property
    def examples(self) -> int:
        """Rows of the first input (load_npz checks that they all agree)."""
        return len(self.xs[0]) if self.xs else 0

    def input_mean_square(self, integers: bool | list[bool] = True) -> float | None:
        """The mean of ``x**2`` over every element of the numeric inputs, in
        float64 chunks; integer arrays only where ``integers`` (one flag, or
        one per array) says they are values (uint8 pixels, review 58, 4;
        token ids fed to an Embedding are not). None where there are none or
        it is not a positive finite number."""
        moments = self.input_moments(integers)
        return moments[1] if moments is not None else None

    def input_moments(self, integers: bool | list[bool] = True) -> tuple[float, float] | None:
        """(mean, mean square) of the numeric inputs (``input_mean_square``'s
        arrays): RL010's ``--input-mean`` and ``--input-var``. The mean is the
        root mean square of each feature's own mean (the last axis; over the
        examples and any steps or positions): what drives a unit the same at
        every step is ``sum_i w_i * mean_i``, whose spread over the units goes
        with the features' mean squares, not their pooled mean (review 64, 3:
        features at +2 and -2 pool to 0, and the estimate fell to 0.45x)."""
        weighted, squares, count = 0.0, 0.0, 0
        flags = integers if isinstance(integers, list) else [integers] * len(self.xs)
        for x, values in zip(self.xs, flags, strict=False):
            if not (np.issubdtype(x.dtype, np.floating) or (values and np.issubdtype(x.dtype, np.integer))):
                continue
            if x.size == 0:
                continue
            rows = x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x.reshape(-1, 1)
            sums = np.zeros(rows.shape[1])
            for start in range(0, rows.shape[0], max(1, (1 << 20) // rows.shape[1])):
                chunk = rows[start:start + max(1, (1 << 20) // rows.shape[1])].astype(np.float64)
                sums += chunk.sum(axis=0)
                squares += float(np.einsum("ij,ij->", chunk, chunk))
            means = sums / max(1, rows.shape[0])
            weighted += float(np.dot(means, means)) * rows.shape[0]
            count += rows.size
        if not count:
            return None
        mean, square = math.sqrt(weighted / count), squares / count
        return (mean, square) if np.isfinite(square) and square > 0 and np.isfinite(mean) else None


def split_keys(text: str) -> list[str]:
    """``--x-key a,b`` names one array per model input, in input order."""
    keys = [k.strip() for k in str(text).split(",") if k.strip()]
    if not keys:
        raise ProfileError("empty --x-key/--y-key")
    return keys


def load_npz(path: str | Path, x_key: str, y_key: str) -> NpzData:
    """Read the named arrays; ``allow_pickle=False``: an ``.npz`` from a pull
    request must not run code."""
    path = Path(path)
    x_keys, y_keys = split_keys(x_key), split_keys(y_key)
    if not path.is_file():
        raise ProfileError(f"--data {path}: no such file")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if not magic.startswith(_NPZ_MAGIC):  # np.load would fall back to pickle on anything else
        raise ProfileError(f"--data {path}: not a .npz archive (numpy.savez writes one; the file starts with "
                           f"{magic!r})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            available = list(archive.files)
            if not any(name.endswith(".npy") for name in archive.zip.namelist()):
                raise ProfileError(f"--data {path}: a zip archive with no arrays in it (it holds "
                                   f"{', '.join(available[:5]) or 'nothing'}): numpy.savez writes x.npy, y.npy ...; "
                                   f"is it a model file?")
            missing = [k for k in x_keys + y_keys if k not in available]
            if missing:
                raise ProfileError(f"--data {path}: no array named {', '.join(missing)} (it holds "
                                   f"{', '.join(available[:10]) or 'nothing'}); choose with --x-key/--y-key")
            xs = [np.asarray(archive[k]) for k in x_keys]
            ys = [np.asarray(archive[k]) for k in y_keys]
    except ProfileError:
        raise
    except ValueError:  # object arrays need pickle: refused
        raise ProfileError(f"--data {path}: holds object arrays, which only pickle can read, and a data file is "
                           f"untrusted input: save numeric arrays (numpy.savez with numbers, not objects)") from None
    except Exception as exc:
        raise ProfileError(f"--data {path}: not a readable .npz ({type(exc).__name__}: {exc})") from None
    sizes = {a.shape[0] if a.ndim else None for a in xs + ys}
    if None in sizes or len(sizes) != 1:
        raise ProfileError(f"--data {path}: inputs and targets must have the same first (example) axis, got "
                           f"{[list(a.shape) for a in xs + ys]}")
    if not sizes.pop():
        raise ProfileError(f"--data {path}: no examples")
    return NpzData(str(path), xs, ys, x_keys, y_keys)


def batches_from_npz(data: NpzData, inputs: list[InputSpec], targets: list[TargetSpec],
                     batch_size: int, seed: int) -> Batches:
    """Check the arrays against the model's inputs and outputs and cast them."""
    if len(data.xs) != len(inputs):
        names = ", ".join(i.name for i in inputs)
        raise ProfileError(f"--data gives {len(data.xs)} input array(s) but the model has {len(inputs)} input(s) "
                           f"({names}); name one array per input with --x-key a,b,...")
    if len(data.ys) != len(targets):
        names = ", ".join(t.name for t in targets)
        raise ProfileError(f"--data gives {len(data.ys)} target array(s) but the model's loss trains {len(targets)} "
                           f"output(s) ({names}); name one array per output with --y-key a,b,...")
    xs = []
    arrays, keys = data.xs, data.x_keys
    if set(keys) == {spec.name for spec in inputs} and len(set(keys)) == len(keys):
        # --x-key named every input, in any order: each array to its input
        arrays = [data.xs[keys.index(spec.name)] for spec in inputs]
        keys = [spec.name for spec in inputs]
    for array, spec, key in zip(arrays, inputs, keys, strict=True):
        if not _shape_fits(array.shape[1:], spec.shape):
            raise ProfileError(f"--data array {key!r} has examples of shape {list(array.shape[1:])}; the model's "
                               f"input {spec.name!r} expects {_show(spec.shape)}")
        if spec.dtype == "string":
            if array.dtype.kind not in "USO":
                raise ProfileError(f"--data array {key!r} holds {array.dtype} values; the model's input {spec.name!r} "
                                   f"takes text (a string tensor)")
            xs.append(array)
            continue
        _check_values(array, key, "input", spec.name)
        _check_token_ids(array, spec, key)
        xs.append(array.astype(spec.dtype, copy=False) if array.dtype.kind in "fiub" else array)
    targets_in, y_keys, notes = pair_targets(data.ys, data.y_keys, targets)
    for y, target, y_key in zip(targets_in, targets, y_keys, strict=True):
        _check_values(y, y_key, "output", target.name)
        _check_labels(y, target, y_key)
    ys = [y.astype(np.float32, copy=False) if y.dtype.kind == "f" else y for y in targets_in]
    return Batches(xs, ys, batch_size, seed, synthetic=False, source=data.path,
                   keys={"x": keys, "y": y_keys}, notes=notes, epoch_samples=data.epoch_samples)


def pair_targets(ys: list[np.ndarray], keys: list[str], targets: list[TargetSpec]
                 ) -> tuple[list[np.ndarray], list[str], list[str]]:
    """(targets in the outputs' order, their --y-key names, notes): as Keras
    pairs them. Arrays named after every output (``TargetSpec.name``: a
    dict output's key, else its layer's name), in any order, go to the
    output of their name, as a dict of targets does in Keras; otherwise by
    position, as a list does, in the order of ``model.outputs`` (Keras
    flattens a dict of outputs by sorted key, whatever order the model was
    built in). A name that is an output's but would be paired with another
    output is refused: the user meant pairing by name."""
    names = [t.name for t in targets]
    if len(set(keys)) == len(keys) and set(keys) == set(names):
        return [ys[keys.index(name)] for name in names], list(names), []
    misplaced = [(i, k) for i, k in enumerate(keys) if k in names and names[i] != k]
    if misplaced:
        i, key = misplaced[0]
        unnamed = [k for k in keys if k not in names]
        why = (f"{', '.join(map(repr, unnamed))} {'names' if len(unnamed) == 1 else 'name'} no output"
               if unnamed else f"{key!r} is given twice" if keys.count(key) > 1 else "not every output is named")
        raise ProfileError(f"--y-key {','.join(keys)}: {key!r} is the name of the model's output {key!r}, but by "
                           f"position it would train output {names[i]!r} ({why}); the outputs, in the order Keras "
                           f"pairs a list of targets with them: {', '.join(names)}; name one array per output "
                           f"after its output (any order), or pair them by position under other names")
    notes = []
    if len(names) > 1:
        pairs = ", ".join(f"{k} -> {n}" for k, n in zip(keys, names, strict=True))
        notes.append(f"--y-key arrays paired with the outputs by position, as Keras pairs a list of targets ({pairs});"
                     f" arrays named after the outputs ({', '.join(names)}) are paired by name")
    return list(ys), list(keys), notes


def _check_values(array: np.ndarray, key: str, role: str, name: str) -> None:
    """Numbers, and finite ones: a NaN or an infinity in the data makes
    every loss and gradient NaN, which the twin would read as a divergence
    and blame on the learning rate; text where numbers belong reaches
    numpy's or the framework's own error, which names neither."""
    if array.dtype.kind not in "biuf":
        raise ProfileError(f"--data array {key!r} holds {array.dtype} values, not real numbers; the model's "
                           f"{role} {name!r} takes real numbers (encode labels as class ids, text as token ids)")
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            rows = int(bad.reshape(len(array), -1).any(axis=1).sum()) if array.ndim else 1
            raise ProfileError(f"--data array {key!r} holds {int(bad.sum())} NaN or infinite values in {rows} of "
                               f"{len(array) if array.ndim else 1} examples: every loss would be NaN; drop or fill "
                               f"them")


def _check_token_ids(array: np.ndarray, spec: InputSpec, key: str) -> None:
    """Token ids inside the vocabulary of the Embedding the input feeds
    (an id past it is a gather out of range: an error on the CPU, zeros or
    NaN on a GPU)."""
    if not spec.vocabulary or not array.size or array.dtype.kind not in "iuf":
        return
    if array.dtype.kind == "f" and not np.all(np.equal(np.mod(array, 1), 0)):
        return  # not ids: the shape and dtype checks speak for it
    low, high = array.min(), array.max()
    if low < 0 or high >= spec.vocabulary:
        raise ProfileError(f"--data array {key!r} holds token ids {_value_range(array.reshape(-1))}, but input "
                           f"{spec.name!r} feeds an Embedding of {spec.vocabulary} rows (ids 0.."
                           f"{spec.vocabulary - 1})")


def _check_labels(y: np.ndarray, spec: TargetSpec, key: str) -> None:
    """Labels the output's loss can take, or a ProfileError saying what
    fits: integer class ids below the output's width for a sparse loss, one
    row per example of that width for a one-hot loss (TensorFlow's own
    errors name neither, and on a GPU an out-of-range id gives NaN)."""
    width = spec.shape[-1] if spec.shape and isinstance(spec.shape[-1], int) else None
    if spec.kind == SPARSE:
        if y.ndim >= 2 and y.shape[-1] > 1 and width is not None and y.shape[-1] == width:
            raise ProfileError(f"--data array {key!r} holds one-hot rows of {y.shape[-1]}, but output {spec.name!r} "
                               f"is trained with a sparse loss that takes class ids: save y.argmax(-1), or use a "
                               f"categorical loss")
        ids = y.reshape(-1)
        if spec.ignore_class is not None:
            ids = ids[ids != spec.ignore_class]  # the loss skips these (padding)
        if ids.size and (ids.dtype.kind not in "iu" and not np.all(np.equal(np.mod(ids, 1), 0))):
            raise ProfileError(f"--data array {key!r} holds non-integer labels; output {spec.name!r}'s sparse loss "
                               f"takes class ids 0..{(width or 1) - 1}")
        if ids.size and width is not None and (ids.min() < 0 or ids.max() >= width):
            raise ProfileError(f"--data array {key!r} holds class ids {_value_range(ids)}, but output {spec.name!r} "
                               f"has {width} classes (ids 0..{width - 1})")
    elif spec.kind == ONE_HOT and width is not None and (y.ndim < 2 or y.shape[-1] != width):
        raise ProfileError(f"--data array {key!r} has labels of shape {list(y.shape[1:])}, but output "
                           f"{spec.name!r}'s categorical loss takes one-hot rows of {width}: save "
                           f"numpy.eye({width})[y], or use a sparse loss")


def _value_range(values: np.ndarray) -> str:
    return f"{values.min():g}..{values.max():g}"


def _shape_fits(actual: tuple[int, ...], expected: tuple[int | None, ...]) -> bool:
    if len(actual) != len(expected):
        return False
    return all(e is None or a == e for a, e in zip(actual, expected, strict=True))


def _show(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


# ---------------------------------------------------------------------------
# synthetic


def synthetic_batches(inputs: list[InputSpec], targets: list[TargetSpec], batch_size: int, seed: int) -> Batches:
    """One batch of synthetic inputs and labels (see the module docstring)."""
    rng = np.random.default_rng(seed)
    notes = []
    xs = []
    for spec in inputs:
        if spec.dtype == "string":
            raise ProfileError(f"the model's input {spec.name!r} takes text (a string tensor, read by a layer such "
                               f"as TextVectorization or StringLookup); synthetic inputs are numbers: give --data "
                               f"with that input's text")
        shape = (batch_size, *(UNKNOWN_DIM if d is None else int(d) for d in spec.shape))
        if None in spec.shape:
            notes.append(f"input {spec.name}: unknown dimensions set to {UNKNOWN_DIM}")
        if spec.vocabulary:
            xs.append(rng.integers(0, spec.vocabulary, size=shape).astype(spec.dtype))
        elif np.dtype(spec.dtype).kind in "iu":
            xs.append(rng.integers(0, 2, size=shape).astype(spec.dtype))
            notes.append(f"input {spec.name}: integer input feeding no Embedding; drew 0/1")
        elif np.dtype(spec.dtype).kind == "b":
            xs.append(rng.integers(0, 2, size=shape).astype(bool))
        else:
            xs.append(rng.standard_normal(shape).astype(spec.dtype))
    ys = [_labels(spec, batch_size, rng, xs) for spec in targets]
    return Batches(xs, ys, batch_size, seed, synthetic=True, source="synthetic", notes=notes)


def _labels(spec: TargetSpec, batch_size: int, rng: np.random.Generator, xs: list[np.ndarray]) -> np.ndarray:
    # Unknown output dims follow the inputs' substitution (a sequence output
    # is as long as the synthetic sequence).
    shape = (batch_size, *(UNKNOWN_DIM if d is None else int(d) for d in spec.shape))
    classes = shape[-1] if len(shape) > 1 else 1
    if spec.kind == SPARSE:
        return rng.integers(0, max(classes, 1), size=shape[:-1]).astype(np.int32)
    if spec.kind == ONE_HOT:
        ids = rng.integers(0, max(classes, 1), size=shape[:-1])
        return np.eye(classes, dtype=np.float32)[ids]
    if spec.kind == BINARY:
        return rng.integers(0, 2, size=shape).astype(np.float32)
    if spec.kind == POSITIVE:
        return np.abs(rng.standard_normal(shape)).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def trivial_loss(y: Any, loss_name: str | None) -> float | None:
    """The loss of the best constant prediction on labels ``y``: what a
    network whose kernels collapsed to zero (biases fitted) scores.

    Cross-entropy: ``H(p)`` with p the label frequencies (sparse ids, or the
    column means of one-hot/soft labels); binary cross-entropy: the mean of
    ``H_b(p_j)`` per output unit; MSE: the mean per-column variance; MAE:
    the mean absolute deviation from the median. None for other losses.
    """
    name = canonical_loss_name(loss_name)
    kind = label_kind(name)
    y = np.asarray(y)
    if y.size == 0 or y.dtype.kind not in "fiub":
        return None
    if kind == SPARSE:
        ids = y.reshape(-1).astype(np.int64)
        if ids.min() < 0:
            return None
        return _entropy(np.bincount(ids) / ids.size)
    if name in ("categorical_crossentropy", "kl_divergence") and y.ndim >= 2:
        return _entropy(y.reshape(-1, y.shape[-1]).astype(np.float64).mean(axis=0))
    if name == "binary_crossentropy":
        p = np.clip(y.reshape(y.shape[0], -1).astype(np.float64).mean(axis=0), 1e-12, 1 - 1e-12)
        return float(np.mean(-(p * np.log(p) + (1 - p) * np.log(1 - p))))
    flat = y.reshape(y.shape[0], -1).astype(np.float64)
    if name == "mean_squared_error":
        return float(flat.var(axis=0).mean())
    if name == "mean_absolute_error":
        return float(np.abs(flat - np.median(flat, axis=0)).mean())
    return None


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())
