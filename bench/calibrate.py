"""Calibration runs for reglint's rule thresholds.

Every threshold in ``rules/`` must come from our own runs: small, real Keras
trainings across lambdas, placements and optimizers, each saved *before*
training (the file a user would commit) and each with a recorded outcome.

Subcommands::

    python bench/calibrate.py train  [--quick] [--jobs 2] [--out DIR]
    python bench/calibrate.py report [--quick] [--out DIR]
    python bench/calibrate.py sweep FEATURE [--quick] [--out DIR] [--precision 0.95]
    python bench/calibrate.py sweep all

``train`` builds the grid (``--quick``: a ~20-run smoke grid that finishes in a
couple of minutes), saves each compiled, untrained model to
``<out>/models/<run_id>.keras``, trains it with ``fit`` and appends one JSON
line per run to ``<out>/runs.jsonl``. It is resume-safe: run_ids already in
``runs.jsonl`` are skipped. Default ``<out>``: ``bench/out/calibration``
(``bench/out/calibration-quick`` with ``--quick``).

Data: scikit-learn's bundled sets, split 75/25 (stratified for
classification) with a fixed seed; features standardised with the training
split's mean and sd; diabetes targets standardised likewise.

- ``digits`` (10 classes, 1347 train), ``breast`` (binary, 426 train, sigmoid
  + binary cross-entropy), ``wine`` (3 classes, 133 train), ``diabetes``
  (regression, 331 train, MSE), ``synth`` (``make_classification``, 20
  classes, 40 features, 1500 train).

Architectures (glorot_uniform kernels, zero biases, Keras defaults):
``mlp_s`` 64-32, ``mlp_m`` 256-256, ``mlp_l`` 512-512-512 (ReLU), ``cnn``
(digits: Conv2D 16-32 on 8x8x1; others: Conv1D 16-32 on the feature vector),
``bn`` (Dense 256 no-bias -> BatchNorm -> ReLU, twice), ``emb`` (each feature
quantised into 8 bins; Embedding(F*8, 8) -> Flatten -> Dense 64).

Placements: ``l2`` / ``l1`` / ``l1l2`` (kernel_regularizer on every Dense/Conv
kernel, output layer included, and embeddings_regularizer), ``bias`` (L2 on
every bias), ``gamma`` (L2 on BatchNorm gamma), ``activity`` (L2
activity_regularizer on every hidden layer), ``wd`` (optimizer
``weight_decay``, no regularizer object), ``none`` (lambda = 0 baseline).

Optimizers: ``sgd`` SGD(0.01); ``sgd_m`` SGD(0.03, momentum 0.9); ``sgd_nag``
SGD(0.05, momentum 0.9, nesterov); ``sgd_hi`` SGD(0.5); ``adam`` Adam(1e-3);
``rmsprop`` RMSprop(1e-3); ``adamw`` AdamW(1e-3, weight_decay=lambda), whose
lambda=0 baseline is the ``adam`` baseline; ``sgdw`` SGD(0.03, momentum 0.9,
weight_decay=lambda), whose baseline is the ``sgd_m`` baseline. Batch 32.
Epochs: digits 20, breast 30, wine 60, diabetes 10 (it overfits to R^2 ~ 0
by 40 epochs without regularization), synth 20. Pre-tests picked the learning
rates so that the lambda=0 baselines train: SGD(0.1, momentum 0.9) killed the
digits CNN and sent the 512-512-512 MLP to NaN; SGD(1.0) killed the digits MLP.

Seeds: one seed per (dataset, arch) (a CRC32 of the pair), set with
``keras.utils.set_random_seed`` before building, so every lambda, placement
and optimizer of a pair starts from the same weights and sees the same batch
order; workers run TensorFlow with one thread each.

Outcome rule (``label_runs``), per run, within its *group* = (dataset, arch,
base optimizer), whose baseline is the lambda=0 run:

- **excluded**: the group's baseline diverged or did not clearly beat chance
  (accuracy < chance + 0.15, or R^2 < 0.2): the setting fails without any
  regularization, so the run says nothing about the lambda.
- **diverged**: a NaN/inf loss during fit, non-finite weights, or a final
  train data loss (penalty excluded) > 3x the data loss at initialisation.
- **collapsed**: validation accuracy <= chance + 0.05 (chance: majority-class
  share of the validation split) or validation R^2 <= 0.05.
- **degraded**: validation metric below ``ref - 0.10 * (baseline - chance)``,
  where ``ref`` = max(baseline, best lambda of the same placement in the
  group).
- **healthy** otherwise. "wrecked" = diverged or collapsed.

``report`` lints every saved model with reglint (training context N, B, E
from the run), joins findings with outcomes and scores each rule code and
severity on the fit and held-out splits. The held-out split is whole
datasets: **wine and synth** are held out (3 and 20 classes: loss scales the
fit split, with 2, 10 classes and regression, never sees); digits, breast and
diabetes form the fit split.

``sweep FEATURE`` bins a feature computed from ``reglint.engine.analysis.Analysis``
on the fit split and suggests the smallest threshold with >= 95% precision for
"wrecked" (best recall), then scores it on the held-out split.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import zlib
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_OUT = HERE / "out" / "calibration"
QUICK_OUT = HERE / "out" / "calibration-quick"

HELD_OUT_DATASETS = ("wine", "synth")
EPOCHS = {"digits": 20, "breast": 30, "wine": 60, "diabetes": 10, "synth": 20}
BATCH = 32
SPLIT_SEED = 0
N_BINS_EMB = 8

# Outcome-rule margins (documented in the module docstring).
BASELINE_MIN_GAP_ACC = 0.15
BASELINE_MIN_R2 = 0.20
COLLAPSE_GAP_ACC = 0.05
COLLAPSE_R2 = 0.05
DEGRADE_FRACTION = 0.10
DIVERGE_FACTOR = 3.0

OPTIMIZERS = {
    # key: (class, kwargs, base key for the group baseline)
    "sgd": ("SGD", {"learning_rate": 0.01}, "sgd"),
    "sgd_m": ("SGD", {"learning_rate": 0.03, "momentum": 0.9}, "sgd_m"),
    "sgd_nag": ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}, "sgd_nag"),
    "sgd_hi": ("SGD", {"learning_rate": 0.5}, "sgd_hi"),
    "adam": ("Adam", {"learning_rate": 1e-3}, "adam"),
    "rmsprop": ("RMSprop", {"learning_rate": 1e-3}, "rmsprop"),
    "adamw": ("AdamW", {"learning_rate": 1e-3}, "adam"),
    "sgdw": ("SGD", {"learning_rate": 0.03, "momentum": 0.9}, "sgd_m"),
}

# Groups whose lambda=0 baseline fails in pre-tests (diabetes overfits to
# R^2 < 0.2 with BatchNorm + SGD momentum): every run would be excluded.
SKIP_GROUPS = {("diabetes", "bn", "sgd_m")}

LAM_L2 = [1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 10.0]
LAM_L1 = [1e-7, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0]
LAM_COARSE = [1e-3, 1e-2, 0.1, 1.0, 10.0]
LAM_OTHER = [1e-5, 1e-3, 1e-2, 0.1, 1.0, 10.0]
LAM_SGD_HI = [1e-3, 0.1, 0.5, 1.0, 1.5, 2.5, 4.0, 10.0]
LAM_BIAS_HI = [0.1, 0.5, 1.0, 1.5, 2.5, 4.0, 10.0]
LAM_ADAMW = [1e-4, 1e-3, 1e-2, 0.1, 1.0, 3.0, 10.0, 30.0, 100.0]
LAM_SGDW = [1e-4, 1e-3, 1e-2, 0.1, 1.0, 3.0, 10.0, 30.0, 100.0]


# ----------------------------------------------------------------------------
# grid


def run_id(dataset: str, arch: str, opt: str, placement: str, lam: float) -> str:
    return f"{dataset}-{arch}-{opt}-{placement}-{lam:g}"


def _spec(dataset, arch, opt, placement, lam):
    return {"run_id": run_id(dataset, arch, opt, placement, lam), "dataset": dataset, "arch": arch,
            "opt": opt, "placement": placement, "lam": float(lam)}


def build_grid(kind: str = "full") -> list[dict]:
    """The list of run specs; baselines first so a partial grid is usable."""
    runs: list[dict] = []

    def block(pairs, opts, placement, lams):
        for dataset, arch in pairs:
            for opt in opts:
                if (dataset, arch, OPTIMIZERS[opt][2]) in SKIP_GROUPS:
                    continue
                for lam in lams:
                    runs.append(_spec(dataset, arch, opt, placement, lam))

    if kind == "quick":
        block([("wine", "mlp_s"), ("breast", "mlp_s")], ["adam", "sgd_m"], "l2", [1e-3, 0.3, 10.0])
        block([("wine", "mlp_s")], ["adamw"], "wd", [1e-2, 100.0])
        block([("breast", "mlp_s")], ["sgd_hi"], "bias", [0.5, 3.0])
        block([("wine", "bn")], ["sgd_m"], "gamma", [1e-3, 10.0])
        block([("diabetes", "mlp_s")], ["adam"], "activity", [1e-3, 10.0])
    else:
        core = [("digits", a) for a in ("mlp_s", "mlp_m", "mlp_l", "cnn", "bn", "emb")] + [
            ("breast", "mlp_s"), ("breast", "bn"), ("diabetes", "mlp_s"), ("diabetes", "bn"),
            ("wine", "mlp_s"), ("wine", "bn"), ("synth", "mlp_s"), ("synth", "cnn")]
        block(core, ["adam", "sgd_m"], "l2", LAM_L2)
        four = [(d, "mlp_s") for d in ("digits", "breast", "wine", "synth")]
        block(four, ["sgd_nag", "rmsprop"], "l2", LAM_COARSE)
        block([("digits", "mlp_s"), ("wine", "mlp_s")], ["sgd"], "l2", LAM_COARSE)
        block(four, ["sgd_hi"], "l2", LAM_SGD_HI)
        l1_pairs = [("digits", "mlp_s"), ("breast", "mlp_s"), ("wine", "mlp_s"), ("synth", "mlp_s")]
        block(l1_pairs, ["adam", "sgd_m"], "l1", LAM_L1)
        block([("digits", "mlp_s"), ("wine", "mlp_s")], ["sgd"], "l1", LAM_COARSE)
        block([("digits", "mlp_s")], ["adam", "sgd_m"], "l1l2", LAM_OTHER)
        block([("digits", "mlp_s"), ("wine", "mlp_s")], ["adam", "sgd_m"], "bias", LAM_COARSE)
        block(four, ["sgd_hi"], "bias", LAM_BIAS_HI)
        block([(d, "bn") for d in ("digits", "wine")], ["adam", "sgd_m"], "gamma", LAM_OTHER)
        block(four, ["adam", "sgd_m"], "activity", LAM_OTHER)
        block([("digits", "mlp_s"), ("digits", "bn"), ("breast", "mlp_s"), ("diabetes", "mlp_s"),
               ("wine", "mlp_s"), ("synth", "mlp_s")], ["adamw"], "wd", LAM_ADAMW)
        block([("digits", "mlp_s"), ("digits", "bn"), ("breast", "mlp_s"), ("wine", "mlp_s"), ("synth", "mlp_s")],
              ["sgdw"], "wd", LAM_SGDW)

    # One lambda=0 baseline per group (dataset, arch, base optimizer).
    baselines, seen = [], set()
    for spec in runs:
        base = OPTIMIZERS[spec["opt"]][2]
        key = (spec["dataset"], spec["arch"], base)
        if key not in seen:
            seen.add(key)
            baselines.append(_spec(spec["dataset"], spec["arch"], base, "none", 0.0))
    unique, ids = [], set()
    for spec in baselines + runs:
        if spec["run_id"] not in ids:
            ids.add(spec["run_id"])
            unique.append(spec)
    return unique


# ----------------------------------------------------------------------------
# data

_DATA: dict[str, dict] = {}


def load_dataset(name: str) -> dict:
    """Train/validation arrays, standardised with the training split's stats."""
    if name in _DATA:
        return _DATA[name]
    import numpy as np
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    task = "multiclass"
    if name == "digits":
        X, y = datasets.load_digits(return_X_y=True)
    elif name == "breast":
        X, y = datasets.load_breast_cancer(return_X_y=True)
        task = "binary"
    elif name == "wine":
        X, y = datasets.load_wine(return_X_y=True)
    elif name == "diabetes":
        X, y = datasets.load_diabetes(return_X_y=True)
        task = "regression"
    elif name == "synth":
        X, y = datasets.make_classification(n_samples=2000, n_features=40, n_informative=20, n_redundant=10,
                                            n_classes=20, n_clusters_per_class=1, class_sep=2.0,
                                            random_state=0)
    else:
        raise ValueError(f"unknown dataset {name}")
    strat = y if task != "regression" else None
    Xtr, Xva, ytr, yva = train_test_split(X, y, test_size=0.25, random_state=SPLIT_SEED, stratify=strat)
    mu, sd = Xtr.mean(0), Xtr.std(0)
    sd[sd == 0] = 1.0
    Xtr, Xva = (Xtr - mu) / sd, (Xva - mu) / sd
    if task == "regression":
        ym, ys = ytr.mean(), ytr.std()
        ytr, yva = (ytr - ym) / ys, (yva - ym) / ys
        ytr, yva = ytr.astype("float32"), yva.astype("float32")
        classes, chance = None, 0.0
    else:
        ytr, yva = ytr.astype("int32"), yva.astype("int32")
        classes = int(max(ytr.max(), yva.max()) + 1)
        chance = float(np.bincount(yva, minlength=classes).max() / len(yva))
    # Quantile bins for the embedding architecture.
    edges = [np.quantile(Xtr[:, j], np.linspace(0, 1, N_BINS_EMB + 1)[1:-1]) for j in range(X.shape[1])]
    offsets = np.arange(X.shape[1]) * N_BINS_EMB

    def tokens(A):
        return (np.stack([np.searchsorted(edges[j], A[:, j]) for j in range(A.shape[1])], 1) + offsets).astype("int32")

    data = {"name": name, "task": task, "classes": classes, "chance": chance,
            "Xtr": Xtr.astype("float32"), "Xva": Xva.astype("float32"), "ytr": ytr, "yva": yva,
            "Ttr": tokens(Xtr), "Tva": tokens(Xva), "features": X.shape[1]}
    _DATA[name] = data
    return data


def inputs_for(data: dict, arch: str, split: str):
    X = data["Xtr"] if split == "train" else data["Xva"]
    if arch == "emb":
        return data["Ttr"] if split == "train" else data["Tva"]
    if arch == "cnn":
        if data["name"] == "digits":
            return X.reshape(-1, 8, 8, 1)
        return X.reshape(X.shape[0], X.shape[1], 1)
    return X


# ----------------------------------------------------------------------------
# model


def build_model(data: dict, arch: str, placement: str, lam: float):
    import keras
    from keras import layers, regularizers

    reg = None
    if placement == "l2":
        reg = regularizers.L2(lam)
    elif placement == "l1":
        reg = regularizers.L1(lam)
    elif placement == "l1l2":
        reg = regularizers.L1L2(l1=lam, l2=lam)
    kreg = reg
    breg = regularizers.L2(lam) if placement == "bias" else None
    greg = regularizers.L2(lam) if placement == "gamma" else None
    areg = regularizers.L2(lam) if placement == "activity" else None

    def dense(units, activation="relu", use_bias=True, hidden=True):
        return layers.Dense(units, activation=activation, use_bias=use_bias, kernel_regularizer=kreg,
                            bias_regularizer=breg if use_bias else None,
                            activity_regularizer=areg if hidden else None)

    F = data["features"]
    if arch == "emb":
        inp = keras.Input((F,), dtype="int32")
    elif arch == "cnn":
        inp = keras.Input((8, 8, 1) if data["name"] == "digits" else (F, 1))
    else:
        inp = keras.Input((F,))
    h = inp
    if arch in ("mlp_s", "mlp_m", "mlp_l"):
        widths = {"mlp_s": (64, 32), "mlp_m": (256, 256), "mlp_l": (512, 512, 512)}[arch]
        for w in widths:
            h = dense(w)(h)
    elif arch == "bn":
        for _ in range(2):
            h = dense(256, activation=None, use_bias=False)(h)
            h = layers.BatchNormalization(gamma_regularizer=greg)(h)
            h = layers.ReLU()(h)
    elif arch == "cnn":
        conv = layers.Conv2D if data["name"] == "digits" else layers.Conv1D
        kw = dict(activation="relu", kernel_regularizer=kreg, bias_regularizer=breg, activity_regularizer=areg)
        h = conv(16, 3, padding="same", **kw)(h)
        h = conv(32, 3, **kw)(h)
        h = layers.Flatten()(h)
    elif arch == "emb":
        h = layers.Embedding(F * N_BINS_EMB, 8, embeddings_regularizer=kreg)(h)
        h = layers.Flatten()(h)
        h = dense(64)(h)
    else:
        raise ValueError(arch)
    if data["task"] == "multiclass":
        out = dense(data["classes"], activation="softmax", hidden=False)(h)
        loss = "sparse_categorical_crossentropy"
    elif data["task"] == "binary":
        out = dense(1, activation="sigmoid", hidden=False)(h)
        loss = "binary_crossentropy"
    else:
        out = dense(1, activation=None, hidden=False)(h)
        loss = "mse"
    return keras.Model(inp, out, name=f"{data['name']}_{arch}"), loss


def build_optimizer(opt: str, placement: str, lam: float):
    import keras

    cls, kwargs, _ = OPTIMIZERS[opt]
    kwargs = dict(kwargs)
    if placement == "wd":
        kwargs["weight_decay"] = lam
    return getattr(keras.optimizers, cls)(**kwargs), kwargs


# ----------------------------------------------------------------------------
# one run


def _worker_init():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _clean(x):
    """JSON-safe float: NaN/inf become strings."""
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _num(x):
    """Inverse of _clean."""
    if isinstance(x, str):
        return float(x)
    return x


def run_one(spec: dict, out_dir: str) -> dict:
    import numpy as np
    import keras

    t0 = time.time()
    data = load_dataset(spec["dataset"])
    arch, placement, lam, opt = spec["arch"], spec["placement"], spec["lam"], spec["opt"]
    seed = zlib.crc32(f"{spec['dataset']}/{arch}".encode()) % (2 ** 31)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model, loss_name = build_model(data, arch, placement, lam)
    optimizer, opt_kwargs = build_optimizer(opt, placement, lam)
    model.compile(optimizer=optimizer, loss=loss_name, steps_per_execution=16)
    path = Path(out_dir) / "models" / f"{spec['run_id']}.keras"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)

    Xtr, Xva = inputs_for(data, arch, "train"), inputs_for(data, arch, "val")
    ytr, yva = data["ytr"], data["yva"]
    loss_fn = keras.losses.get(loss_name)

    def forward(X, y):
        """(data loss, predictions, sum(model.losses)) with an eager call:
        the call also fills the activity losses for the whole split."""
        p = keras.ops.convert_to_numpy(model(X, training=False))
        yy = y if data["task"] == "multiclass" else y.reshape(-1, 1)
        loss = float(np.mean(keras.ops.convert_to_numpy(loss_fn(yy, p))))
        pen = float(sum(float(keras.ops.convert_to_numpy(v)) for v in model.losses)) if model.losses else 0.0
        return loss, p, pen

    def kernel_sq():
        total = 0.0
        for w in model.trainable_weights:
            name = w.path.split("/")[-1]
            if name in ("kernel", "embeddings"):
                total += float(np.sum(np.square(keras.ops.convert_to_numpy(w).astype("float64"))))
        return total

    def metric(p, y):
        if not np.all(np.isfinite(p)):
            return float("nan")
        if data["task"] == "multiclass":
            return float(np.mean(np.argmax(p, 1) == y))
        if data["task"] == "binary":
            return float(np.mean((p[:, 0] > 0.5).astype("int32") == y))
        resid = np.sum((y - p[:, 0]) ** 2)
        return float(1.0 - resid / np.sum((y - y.mean()) ** 2))

    init_loss, _, init_penalty = forward(Xtr, ytr)
    init_ksq = kernel_sq()
    n_train = len(ytr)
    epochs = EPOCHS[spec["dataset"]]
    steps_per_epoch = math.ceil(n_train / BATCH)
    error = None
    history = {}
    try:
        # One repeating pipeline (reshuffled every epoch, partial last batch
        # kept, as fit(x, y, batch_size=32, shuffle=True) does) instead of a
        # fresh iterator per epoch: same steps, much less overhead.
        import tensorflow as tf

        ds = (tf.data.Dataset.from_tensor_slices((Xtr, ytr))
              .shuffle(n_train, seed=seed, reshuffle_each_iteration=True)
              .batch(BATCH).repeat())
        hist = model.fit(ds, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0,
                         callbacks=[keras.callbacks.TerminateOnNaN()])
        history = hist.history
    except Exception as exc:  # record, do not crash the grid
        error = f"{type(exc).__name__}: {exc}"[:300]
    fit_losses = [float(v) for v in history.get("loss", [])]
    nan_loss = any(not math.isfinite(v) for v in fit_losses)
    weights_finite = all(bool(np.all(np.isfinite(keras.ops.convert_to_numpy(w)))) for w in model.weights)
    final_loss, p_tr, final_penalty = forward(Xtr, ytr)
    _, p_va, _ = forward(Xva, yva)
    if not weights_finite:
        final_penalty = float("nan")
    record = dict(spec)
    record.update({
        "seed": seed,
        "task": data["task"],
        "classes": data["classes"],
        "n_samples": n_train,
        "n_val": len(yva),
        "batch_size": BATCH,
        "epochs": epochs,
        "epochs_run": len(fit_losses),
        "steps": steps_per_epoch * epochs,
        "loss": loss_name,
        "optimizer": {"class": OPTIMIZERS[opt][0], "key": opt, "base": OPTIMIZERS[opt][2], **opt_kwargs},
        "params": int(model.count_params()),
        "initial_data_loss": _clean(init_loss),
        "initial_penalty": _clean(init_penalty),
        "final_data_loss": _clean(final_loss),
        "final_penalty": _clean(final_penalty),
        "final_fit_loss": _clean(fit_losses[-1]) if fit_losses else None,
        "train_metric": _clean(metric(p_tr, ytr)),
        "val_metric": _clean(metric(p_va, yva)),
        "metric": "r2" if data["task"] == "regression" else "accuracy",
        "chance": data["chance"],
        "nan_loss": nan_loss,
        "weights_finite": weights_finite,
        "kernel_sq_init": _clean(init_ksq),
        "kernel_sq_final": _clean(kernel_sq()) if weights_finite else "nan",
        "error": error,
        "model_path": str(path.relative_to(Path(out_dir))),
        "wall_s": round(time.time() - t0, 3),
    })
    return record


# ----------------------------------------------------------------------------
# outcomes


def load_runs(out: Path) -> list[dict]:
    path = out / "runs.jsonl"
    if not path.exists():
        return []
    runs, seen = [], set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        rec = json.loads(line)
        if rec["run_id"] in seen:
            continue
        seen.add(rec["run_id"])
        runs.append(rec)
    return runs


def group_key(rec: dict) -> tuple:
    return rec["dataset"], rec["arch"], OPTIMIZERS[rec["opt"]][2]


def is_diverged(rec: dict) -> bool:
    init, final = _num(rec["initial_data_loss"]), _num(rec["final_data_loss"])
    if rec["nan_loss"] or not rec["weights_finite"] or rec.get("error"):
        return True
    if not _finite(final) or not _finite(_num(rec["val_metric"])):
        return True
    return _finite(init) and final > DIVERGE_FACTOR * init


def label_runs(runs: list[dict]) -> None:
    """Apply the outcome rule of the module docstring; sets rec['outcome']."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for rec in runs:
        groups[group_key(rec)].append(rec)
    for key, members in groups.items():
        base = next((r for r in members if r["placement"] == "none"), None)
        if base is None:
            for r in members:
                r["outcome"], r["why"] = "excluded", "no baseline yet"
            continue
        chance = base["chance"]
        bval = _num(base["val_metric"])
        reg = base["task"] == "regression"
        base_ok = not is_diverged(base) and _finite(bval) and (
            bval >= BASELINE_MIN_R2 if reg else bval >= chance + BASELINE_MIN_GAP_ACC)
        best_by_placement: dict[str, float] = {}
        for r in members:
            v = _num(r["val_metric"])
            if not is_diverged(r) and _finite(v):
                best_by_placement[r["placement"]] = max(best_by_placement.get(r["placement"], -1e9), v)
        for r in members:
            v = _num(r["val_metric"])
            r["baseline_val"] = bval
            if not base_ok:
                r["outcome"], r["why"] = "excluded", f"baseline failed (val {bval})"
                continue
            if is_diverged(r):
                r["outcome"], r["why"] = "diverged", "non-finite or data loss > 3x initial"
                continue
            if (v <= COLLAPSE_R2) if reg else (v <= chance + COLLAPSE_GAP_ACC):
                r["outcome"], r["why"] = "collapsed", f"val {v:.3f} at chance {chance:.3f}"
                continue
            ref = max(bval, best_by_placement.get(r["placement"], bval))
            margin = DEGRADE_FRACTION * (bval - chance)
            if v < ref - margin:
                r["outcome"], r["why"] = "degraded", f"val {v:.3f} < ref {ref:.3f} - {margin:.3f}"
                continue
            r["outcome"], r["why"] = "healthy", ""


def wrecked(rec: dict) -> bool:
    return rec.get("outcome") in ("diverged", "collapsed")


def split_of(rec: dict) -> str:
    return "held_out" if rec["dataset"] in HELD_OUT_DATASETS else "fit"


# ----------------------------------------------------------------------------
# train command


def cmd_train(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    grid = build_grid("quick" if args.quick else "full")
    if args.limit:
        grid = grid[: args.limit]
    done = {r["run_id"] for r in load_runs(out)}
    pending = [s for s in grid if s["run_id"] not in done]
    print(f"grid: {len(grid)} runs, {len(grid) - len(pending)} already done, {len(pending)} to train, "
          f"{args.jobs} worker(s); out {out}", flush=True)
    t0 = time.time()
    runs_path = out / "runs.jsonl"
    if args.jobs <= 1:
        _worker_init()
        results = (run_one(spec, str(out)) for spec in pending)
        pool = None
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        pool = ctx.Pool(args.jobs, initializer=_worker_init, maxtasksperchild=40)
        results = pool.imap_unordered(_run_star, [(s, str(out)) for s in pending])
    try:
        with runs_path.open("a") as fh:
            for i, rec in enumerate(results, 1):
                fh.write(json.dumps(rec) + "\n")
                fh.flush()
                el = time.time() - t0
                eta = el / i * (len(pending) - i)
                print(f"[{i}/{len(pending)}] {rec['run_id']}: val {rec['val_metric']} "
                      f"data loss {rec['initial_data_loss']:.3g}->{_num(rec['final_data_loss']):.3g} "
                      f"{rec['wall_s']:.1f}s (elapsed {el/60:.1f} min, eta {eta/60:.1f} min)", flush=True)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    runs = load_runs(out)
    label_runs(runs)
    print(f"done in {(time.time() - t0)/60:.1f} min; outcomes: {dict(Counter(r['outcome'] for r in runs))}")
    return 0


def _run_star(args):
    spec, out = args
    return run_one(spec, out)


# ----------------------------------------------------------------------------
# features from reglint's Analysis


def analyse(rec: dict, out: Path):
    """lint_file on the saved pre-training model, with the run's context."""
    from reglint.engine.settings import Settings
    from reglint.engine.analysis import TrainingContext
    from reglint.engine.runner import lint_file

    ctx = TrainingContext(samples=rec["n_samples"], batch_size=rec["batch_size"], epochs=rec["epochs"])
    settings = Settings(context=ctx)
    return lint_file(str(out / rec["model_path"]), settings)


def activity_penalty_estimate(model) -> float | None:
    """Per-sample activity penalty at init for a chain of Dense layers on
    standardised inputs (theory section 1.3): pre-activation variance
    v = fan_in * sigma_w^2 * q_in, with q the input second moment (1 for
    standardised inputs); ReLU output second moment v/2, E|relu| =
    sqrt(v/(2 pi)); linear: v and sqrt(2 v / pi)."""
    from reglint.estimate.init_scale import element_moments

    q = 1.0
    total, any_act = 0.0, False
    for layer in model.layers:
        kernel = next((v for v in layer.variables if v.name == "kernel"), None)
        if layer.class_name != "Dense" or kernel is None:
            if layer.activity_regularizer is not None:
                return None
            continue
        moments = element_moments(kernel)
        if moments is None:
            return None
        fan_in = kernel.shape[0]
        v = fan_in * moments[0] * q
        relu = layer.activation == "relu"
        q_out = v / 2.0 if relu else v
        abs_out = math.sqrt(v / (2 * math.pi)) if relu else math.sqrt(2 * v / math.pi)
        reg = layer.activity_regularizer
        if reg is not None:
            any_act = True
            units = kernel.shape[1]
            if reg.kind in ("l2", "l1l2") and reg.l2:
                total += reg.l2 * units * q_out
            if reg.kind in ("l1", "l1l2") and reg.l1:
                total += reg.l1 * units * abs_out
        q = q_out
    return total if any_act else 0.0


FEATURES = {
    "rho": "analysis.penalty_ratio(): expected penalty at init over L_chance, scale-invariant kernels excluded",
    "rho_all": "analysis.penalty_ratio(include_invariant=True)",
    "sgd_fraction": "max over regularized tensors of dynamics.l2_stability_fraction(l2) (SGD only)",
    "decoupled_step": "dynamics.decoupled_shrink = lr * weight_decay",
    "decay_integral": "max over tensors of total_shrink(l2) (coupled SGD + decoupled) x total steps T",
    "l1_step_ratio": "max over L1 tensors of dynamics.l1_step(l1) / (E[sum|w|]/n at init) (SGD only)",
    "activity_ratio": "per-sample L2/L1 activity penalty at init (section 1.3 recurrence) / L_chance",
}


def features_of(report) -> dict:
    from reglint.estimate.init_scale import expected_sum_abs

    a = report.analysis
    if a is None:
        return {}
    dyn = a.dynamics
    feats: dict[str, float | None] = {}
    feats["rho"] = a.penalty_ratio()
    feats["rho_all"] = a.penalty_ratio(include_invariant=True)
    fracs = [dyn.l2_stability_fraction(p.l2) for p in a.penalties if p.active and p.l2]
    fracs = [f for f in fracs if f is not None]
    feats["sgd_fraction"] = max(fracs) if fracs else (0.0 if dyn.family == "sgd" else None)
    feats["decoupled_step"] = dyn.decoupled_shrink or 0.0 if dyn.lr is not None else None
    steps = a.context.total_steps()
    shrinks = [dyn.total_shrink(p.l2) for p in a.penalties if p.active and p.l2]
    if not shrinks:
        shrinks = [dyn.decoupled_shrink]
    shrinks = [s for s in shrinks if s is not None]
    if steps and shrinks:
        feats["decay_integral"] = max(shrinks) * steps
    elif steps and dyn.family == "sgd":
        feats["decay_integral"] = 0.0
    else:
        feats["decay_integral"] = None
    ratios = []
    for p in a.penalties:
        if not (p.active and p.l1):
            continue
        step = dyn.l1_step(p.l1)
        sum_abs = expected_sum_abs(p.variable)
        if step is not None and sum_abs:
            ratios.append(step / (sum_abs / p.variable.size))
    feats["l1_step_ratio"] = max(ratios) if ratios else (0.0 if dyn.family == "sgd" else None)
    act = activity_penalty_estimate(report.model)
    feats["activity_ratio"] = None if act is None else act / a.loss_scale.value
    feats["loss_scale"] = a.loss_scale.value
    feats["family"] = dyn.family
    return feats


def lint_all(runs: list[dict], out: Path) -> None:
    """Adds rec['features'] and rec['findings'] to every run."""
    for rec in runs:
        path = out / rec["model_path"]
        if not path.exists():
            rec["features"], rec["findings"], rec["lint_error"] = {}, [], "model file missing"
            continue
        report = analyse(rec, out)
        rec["lint_error"] = report.error
        rec["features"] = features_of(report) if report.error is None else {}
        rec["findings"] = [{"code": f.code, "severity": f.severity.value, "layer": f.layer,
                            "values": _jsonable(f.values)} for f in report.findings]


def _jsonable(values: dict) -> dict:
    out = {}
    for k, v in (values or {}).items():
        if isinstance(v, float):
            out[k] = _clean(v)
        elif isinstance(v, (int, str, bool)) or v is None:
            out[k] = v
        else:
            out[k] = str(v)
    return out


# ----------------------------------------------------------------------------
# scoring


TARGETS = {
    "wrecked": lambda r: r.get("outcome") in ("diverged", "collapsed"),
    "diverged": lambda r: r.get("outcome") == "diverged",
    "harmed": lambda r: r.get("outcome") in ("diverged", "collapsed", "degraded"),
}


def score(flags: list[bool], runs: list[dict], target: str = "wrecked") -> dict:
    """recall of the target outcome, precision for it, false-alarm rate on
    healthy runs (a flagged run that is not the target counts against
    precision even when it is degraded)."""
    pos = TARGETS[target]
    tp = sum(1 for f, r in zip(flags, runs) if f and pos(r))
    fp = sum(1 for f, r in zip(flags, runs) if f and not pos(r))
    fa = sum(1 for f, r in zip(flags, runs) if f and r["outcome"] == "healthy")
    n_pos = sum(1 for r in runs if pos(r))
    n_healthy = sum(1 for r in runs if r["outcome"] == "healthy")
    flagged = tp + fp
    return {
        "target": target, "flagged": flagged, "wrecked_caught": tp, "wrecked": n_pos, "healthy": n_healthy,
        "healthy_flagged": fa,
        "recall": tp / n_pos if n_pos else None,
        "precision": tp / flagged if flagged else None,
        "false_alarm": fa / n_healthy if n_healthy else None,
    }


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def scored_runs(args) -> tuple[list[dict], Path]:
    out = Path(args.out)
    runs = load_runs(out)
    if not runs:
        raise SystemExit(f"no runs in {out / 'runs.jsonl'}: run `calibrate.py train` first")
    label_runs(runs)
    lint_all(runs, out)
    return runs, out


OUTCOMES = ("healthy", "degraded", "collapsed", "diverged")


# ----------------------------------------------------------------------------
# sweep command


def _bins(values: list[float]) -> list[float]:
    pos = [v for v in values if v > 0]
    if not pos:
        return []
    lo = math.floor(2 * math.log10(min(pos))) / 2
    hi = math.ceil(2 * math.log10(max(pos))) / 2 + 0.5
    edges, e = [], lo
    while e <= hi + 1e-9:
        edges.append(10 ** e)
        e += 0.5
    return edges


def bin_table(runs: list[dict], feature: str) -> list[dict]:
    vals = [(r["features"].get(feature), r) for r in runs if r["features"].get(feature) is not None]
    edges = _bins([v for v, _ in vals])
    rows = []
    zero = [r for v, r in vals if v <= 0]
    if zero:
        rows.append({"bin": "0", **Counter(r["outcome"] for r in zero)})
    for lo, hi in zip(edges, edges[1:]):
        members = [r for v, r in vals if lo <= v < hi]
        if members:
            rows.append({"bin": f"[{lo:.3g}, {hi:.3g})", **Counter(r["outcome"] for r in members)})
    return rows


def suggest_threshold(runs: list[dict], feature: str, precision: float,
                      target: str = "wrecked") -> dict | None:
    """The threshold t (flag when feature >= t) with the best recall of
    ``target`` among those whose precision is >= ``precision`` (the smallest
    such t on ties); runs without the feature count as not flagged."""
    vals = sorted({r["features"].get(feature) for r in runs
                   if r["features"].get(feature) is not None and r["features"].get(feature) > 0})
    best = None
    for t in vals:
        flags = [(r["features"].get(feature) or 0) >= t for r in runs]
        s = score(flags, runs, target)
        if s["precision"] is None or s["precision"] < precision or not s["wrecked_caught"]:
            continue
        if best is None or s["wrecked_caught"] > best["score"]["wrecked_caught"]:
            best = {"threshold": t, "score": s}
    if best is None:
        return None
    t = best["threshold"]
    below = [v for v in vals if v < t]
    best["gap_below"] = below[-1] if below else None
    return best


def applicable(runs: list[dict], feature: str) -> list[dict]:
    return [r for r in runs if r["features"].get(feature) is not None]


def _flag(r: dict, feature: str, t: float) -> bool:
    return (r["features"].get(feature) or 0) >= t


def _score_row(name: str, sc: dict) -> str:
    return (f"| {name} | {sc['flagged']} | {_pct(sc['recall'])} ({sc['wrecked_caught']}/{sc['wrecked']}) "
            f"| {_pct(sc['precision'])} | {_pct(sc['false_alarm'])} ({sc['healthy_flagged']}/{sc['healthy']}) |")


SCORE_HEAD = ["| split | flagged | recall | precision | false alarms on healthy |", "|---|---|---|---|---|"]


def splits_of(runs: list[dict]) -> tuple[list[dict], list[dict]]:
    fit = [r for r in runs if split_of(r) == "fit" and r["outcome"] != "excluded"]
    held = [r for r in runs if split_of(r) == "held_out" and r["outcome"] != "excluded"]
    return fit, held


def sweep_one(runs: list[dict], feature: str, precision: float, lines: list[str],
              rho_threshold: float | None = None) -> dict:
    fit, held = splits_of(runs)
    fit_a, held_a = applicable(fit, feature), applicable(held, feature)
    lines.append(f"\n### {feature}\n\n{FEATURES.get(feature, '')}\n")
    lines.append(f"fit split: {len(fit_a)} runs with the feature defined (of {len(fit)}); "
                 f"held-out: {len(held_a)} (of {len(held)})\n")
    result = {"feature": feature, "fit_runs": len(fit_a), "held_out_runs": len(held_a)}
    for name, population in (("fit", fit_a), ("held-out", held_a)):
        table = bin_table(population, feature)
        lines.append(f"\n{name} split, outcome counts per half-decade bin:\n")
        lines.append("| bin | " + " | ".join(OUTCOMES) + " | wrecked share |")
        lines.append("|---|" + "---|" * (len(OUTCOMES) + 1))
        for row in table:
            counts = [row.get(o, 0) for o in OUTCOMES]
            total = sum(counts)
            share = (row.get("collapsed", 0) + row.get("diverged", 0)) / total if total else 0
            lines.append(f"| {row['bin']} | " + " | ".join(str(c) for c in counts) + f" | {100*share:.0f}% |")
        result[f"bins_{name}"] = table
    for target, prec in (("wrecked", precision), ("diverged", precision), ("harmed", 0.9)):
        sug = suggest_threshold(fit_a, feature, prec, target)
        key = "suggestion" if target == "wrecked" else f"suggestion_{target}"
        result[key] = sug
        if sug is None:
            lines.append(f"\n{target}: no threshold reaches {100*prec:.0f}% precision on the fit split\n")
            continue
        t = sug["threshold"]
        held_score = score([_flag(r, feature, t) for r in held_a], held_a, target)
        sug["held_out"] = held_score
        if target == "wrecked":
            result["held_out"] = held_score
        below = "none" if sug["gap_below"] is None else f"{sug['gap_below']:.4g}"
        lines.append(f"\n**{target}** (precision >= {100*prec:.0f}% on fit): **{feature} >= {t:.4g}** "
                     f"(largest fit value below it: {below})\n")
        lines.extend(SCORE_HEAD)
        lines.append(_score_row("fit", sug["score"]))
        lines.append(_score_row("held-out", held_score))
        if target != "wrecked":
            continue
        for fam in ("sgd", "adaptive"):
            sub_fit = [r for r in fit_a if r["features"].get("family") == fam]
            sub_held = [r for r in held_a if r["features"].get("family") == fam]
            if not sub_fit:
                continue
            fs = score([_flag(r, feature, t) for r in sub_fit], sub_fit)
            hs = score([_flag(r, feature, t) for r in sub_held], sub_held)
            own = suggest_threshold(sub_fit, feature, precision)
            own_t = f"{own['threshold']:.4g}" if own else "none"
            lines.append(_score_row(f"{fam} only, fit", fs))
            lines.append(_score_row(f"{fam} only, held-out", hs))
            lines.append(f"| {fam} only: its own fit threshold | {own_t} | | | |")
            result[f"family_{fam}"] = {"fit": fs, "held_out": hs,
                                       "own_threshold": own["threshold"] if own else None}
        # What the feature adds beyond rho: wrecked runs rho does not catch.
        if feature != "rho" and rho_threshold is not None:
            rest_fit = [r for r in fit_a if (r["features"].get("rho") or 0) < rho_threshold]
            rest_held = [r for r in held_a if (r["features"].get("rho") or 0) < rho_threshold]
            fs = score([_flag(r, feature, t) for r in rest_fit], rest_fit)
            hs = score([_flag(r, feature, t) for r in rest_held], rest_held)
            lines.append(_score_row(f"rho < {rho_threshold:.3g}, fit", fs))
            lines.append(_score_row(f"rho < {rho_threshold:.3g}, held-out", hs))
            result["beyond_rho"] = {"rho_threshold": rho_threshold, "fit": fs, "held_out": hs}
    return result


def cmd_sweep(args) -> int:
    runs, out = scored_runs(args)
    names = list(FEATURES) if args.feature == "all" else [args.feature]
    for name in names:
        if name not in FEATURES:
            raise SystemExit(f"unknown feature {name}; one of {', '.join(FEATURES)} or all")
    fit, _ = splits_of(runs)
    rho_sug = suggest_threshold(applicable(fit, "rho"), "rho", args.precision)
    rho_t = rho_sug["threshold"] if rho_sug else None
    lines: list[str] = []
    results = [sweep_one(runs, name, args.precision, lines, rho_t) for name in names]
    text = "\n".join(lines)
    print(text)
    target = out / ("sweep.json" if args.feature == "all" else f"sweep_{args.feature}.json")
    target.write_text(json.dumps(results, indent=1, default=str))
    (target.with_suffix(".md")).write_text(text + "\n")
    return 0


# ----------------------------------------------------------------------------
# report command


def cmd_report(args) -> int:
    runs, out = scored_runs(args)
    live = [r for r in runs if r["outcome"] != "excluded"]
    splits = {"fit": [r for r in live if split_of(r) == "fit"],
              "held_out": [r for r in live if split_of(r) == "held_out"]}
    lines = ["# reglint calibration report", ""]
    lines.append(f"runs: {len(runs)}; excluded (baseline failed): {len(runs) - len(live)}; "
                 f"held-out datasets: {', '.join(HELD_OUT_DATASETS)}")
    lines.append("")
    lines.append("## Outcomes")
    lines.append("")
    lines.append("| slice | " + " | ".join(OUTCOMES) + " | excluded |")
    lines.append("|---|" + "---|" * (len(OUTCOMES) + 1))
    for attr in ("dataset", "placement", "opt", "arch"):
        by = defaultdict(Counter)
        for r in runs:
            by[r[attr]][r["outcome"]] += 1
        for k in sorted(by):
            c = by[k]
            lines.append(f"| {attr}={k} | " + " | ".join(str(c.get(o, 0)) for o in OUTCOMES)
                         + f" | {c.get('excluded', 0)} |")
    excluded_groups = sorted({"/".join(group_key(r)) for r in runs if r["outcome"] == "excluded"})
    if excluded_groups:
        lines.append("")
        lines.append("excluded groups (baseline failed): " + ", ".join(excluded_groups))
    lines.append("")
    lines.append("## Raw features by outcome (fit + held-out, median [min, max])")
    lines.append("")
    lines.append("| feature | " + " | ".join(OUTCOMES) + " |")
    lines.append("|---|" + "---|" * len(OUTCOMES))
    for feat in FEATURES:
        cells = []
        for o in OUTCOMES:
            vals = sorted(r["features"][feat] for r in live
                          if r["outcome"] == o and r["features"].get(feat) is not None)
            if not vals:
                cells.append("-")
                continue
            cells.append(f"{vals[len(vals)//2]:.3g} [{vals[0]:.3g}, {vals[-1]:.3g}] n={len(vals)}")
        lines.append(f"| {feat} | " + " | ".join(cells) + " |")

    # Rules.
    codes = sorted({(f["code"], f["severity"]) for r in runs for f in r.get("findings", [])})
    result = {"runs": len(runs), "excluded": len(runs) - len(live), "held_out_datasets": HELD_OUT_DATASETS,
              "outcomes": dict(Counter(r["outcome"] for r in runs)), "rules": {}, "error_overall": {}}
    lines.append("")
    lines.append("## Rules (a run is flagged by a code/severity if any finding has it)")
    lines.append("")
    if not codes:
        lines.append("no findings: no rules in rules/ yet (or none fired)")
    else:
        lines.append("| code | severity | split | flagged | recall (wrecked) | precision | false alarms on healthy |")
        lines.append("|---|---|---|---|---|---|---|")
        for code, sev in codes:
            for name, population in splits.items():
                flags = [any(f["code"] == code and f["severity"] == sev for f in r["findings"]) for r in population]
                s = score(flags, population)
                result["rules"].setdefault(f"{code}:{sev}", {})[name] = s
                lines.append(f"| {code} | {sev} | {name} | {s['flagged']} | {_pct(s['recall'])} "
                             f"({s['wrecked_caught']}/{s['wrecked']}) | {_pct(s['precision'])} | "
                             f"{_pct(s['false_alarm'])} ({s['healthy_flagged']}/{s['healthy']}) |")
        lines.append("")
        lines.append("## Any error-severity finding")
        lines.append("")
        lines.append("| split | flagged | recall (wrecked) | precision | false alarms on healthy |")
        lines.append("|---|---|---|---|---|")
        for name, population in splits.items():
            flags = [any(f["severity"] == "error" for f in r["findings"]) for r in population]
            s = score(flags, population)
            result["error_overall"][name] = s
            lines.append(f"| {name} | {s['flagged']} | {_pct(s['recall'])} ({s['wrecked_caught']}/{s['wrecked']}) | "
                         f"{_pct(s['precision'])} | {_pct(s['false_alarm'])} ({s['healthy_flagged']}/{s['healthy']}) |")
        missed = [r["run_id"] for r in splits["held_out"] if wrecked(r)
                  and not any(f["severity"] == "error" for f in r["findings"])]
        false = [r["run_id"] for r in splits["held_out"] if r["outcome"] == "healthy"
                 and any(f["severity"] == "error" for f in r["findings"])]
        result["held_out_error_missed"], result["held_out_error_false_alarms"] = missed, false
        if missed:
            lines.append("")
            lines.append("held-out wrecked runs with no error finding: " + ", ".join(missed))
        if false:
            lines.append("")
            lines.append("held-out healthy runs with an error finding: " + ", ".join(false))
    lint_errors = [r["run_id"] for r in runs if r.get("lint_error")]
    if lint_errors:
        lines.append("")
        lines.append(f"lint errors ({len(lint_errors)}): " + ", ".join(lint_errors[:20]))
    text = "\n".join(lines) + "\n"
    print(text)
    (out / "report.md").write_text(text)
    per_run = [{k: r.get(k) for k in ("run_id", "dataset", "arch", "opt", "placement", "lam", "outcome", "why",
                                      "val_metric", "baseline_val", "chance", "initial_data_loss",
                                      "final_data_loss", "initial_penalty", "final_penalty", "kernel_sq_init",
                                      "kernel_sq_final", "features", "findings")} for r in runs]
    result["per_run"] = per_run
    (out / "report.json").write_text(json.dumps(result, indent=1, default=str))
    return 0


# ----------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("train", "report", "sweep"):
        p = sub.add_parser(name)
        p.add_argument("--quick", action="store_true", help="the ~20-run smoke grid")
        p.add_argument("--out", default=None, help=f"output folder (default {DEFAULT_OUT})")
        if name == "train":
            p.add_argument("--jobs", type=int, default=1, help="worker processes (1 thread each)")
            p.add_argument("--limit", type=int, default=0, help="train only the first N runs of the grid")
        if name == "sweep":
            p.add_argument("feature", help=f"one of {', '.join(FEATURES)}, or all")
            p.add_argument("--precision", type=float, default=0.95)
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = str(QUICK_OUT if args.quick else DEFAULT_OUT)
    sys.path.insert(0, str(REPO / "src"))
    return {"train": cmd_train, "report": cmd_report, "sweep": cmd_sweep}[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
