"""One training run, and the ``train`` and ``models`` commands.

Seeds: one seed per (dataset, arch) (a CRC32 of the pair), set with
``keras.utils.set_random_seed`` before building, so every lambda, placement
and optimizer of a pair starts from the same weights and sees the same batch
order; workers run TensorFlow with one thread each. ``train --replicate K``
(K >= 1) trains the same grid again from other seeds (a CRC32 of
``dataset/arch/rK``: other initial weights and batch order, same data
split); the record's ``replicate`` field lets ``models`` rebuild it.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import time
import zlib
from collections import Counter
from pathlib import Path

from .data import inputs_for, load_dataset
from .grid import BATCH, EPOCHS, OPTIMIZERS, build_grid
from .models import build_model, build_optimizer
from .outcomes import clean, label_runs, load_runs, num


def _worker_init():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


# ``compile(steps_per_execution=16)`` speeds the grid up; with ``fit`` on a
# repeating tf.data pipeline and ``steps_per_epoch`` Keras 3 runs whole
# executions, so an epoch of ceil(n/32) batches takes ceil(that/16)*16 steps
# (wine's 5 batches: 16 steps, 40 epochs: 640 steps, not 200).
STEPS_PER_EXECUTION = 16


def training_steps(rec: dict) -> int:
    """The optimizer steps a run's training took: the recorded
    ``iterations`` where the record has them, else what Keras ran for
    ``epochs`` epochs of ceil(n/32) batches at ``STEPS_PER_EXECUTION``.

    >>> training_steps({"n_samples": 133, "batch_size": 32, "epochs": 40})  # wine: 5 batches, 16 steps
    640
    >>> training_steps({"n_samples": 1347, "batch_size": 32, "epochs": 10, "iterations": 480})
    480
    """
    if rec.get("iterations"):
        return int(rec["iterations"])
    per_epoch = math.ceil(rec["n_samples"] / rec.get("batch_size", BATCH))
    per_epoch = math.ceil(per_epoch / STEPS_PER_EXECUTION) * STEPS_PER_EXECUTION
    return per_epoch * int(rec.get("epochs_run") or rec["epochs"])


def seed_of(spec: dict) -> int:
    replicate = spec.get("replicate") or 0
    key = f"{spec['dataset']}/{spec['arch']}" + (f"/r{replicate}" if replicate else "")
    return zlib.crc32(key.encode()) % (2 ** 31)


def build_and_save(spec: dict, out_dir: str):
    """Build, compile and save the untrained model (the file a user
    commits); returns (model, loss name, optimizer kwargs, data, path)."""
    import keras

    data = load_dataset(spec["dataset"])
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed_of(spec))
    model, loss_name = build_model(data, spec["arch"], spec["placement"], spec["lam"])
    optimizer, opt_kwargs = build_optimizer(spec["opt"], spec["placement"], spec["lam"])
    model.compile(optimizer=optimizer, loss=loss_name, steps_per_execution=STEPS_PER_EXECUTION)
    path = Path(out_dir) / "models" / f"{spec['run_id']}.keras"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)
    return model, loss_name, opt_kwargs, data, path


class _Probe:
    """Data loss, metric and weight norms of a model on its data."""

    def __init__(self, model, data, loss_name):
        import keras

        self.model, self.data = model, data
        self.loss_fn = keras.losses.get(loss_name)

    def forward(self, X, y):
        """(data loss, predictions, sum(model.losses)) with an eager call:
        the call also fills the activity losses for the whole split."""
        import keras
        import numpy as np

        p = keras.ops.convert_to_numpy(self.model(X, training=False))
        yy = y if self.data["task"] == "multiclass" else y.reshape(-1, 1)
        loss = float(np.mean(keras.ops.convert_to_numpy(self.loss_fn(yy, p))))
        losses = self.model.losses
        pen = float(sum(float(keras.ops.convert_to_numpy(v)) for v in losses)) if losses else 0.0
        return loss, p, pen

    def variable_sq(self) -> dict[str, float]:
        """sum(w^2) per trainable variable, by Keras path."""
        import keras
        import numpy as np

        return {w.path: float(np.sum(np.square(keras.ops.convert_to_numpy(w).astype("float64"))))
                for w in self.model.trainable_weights}

    def kernel_sq(self) -> float:
        return sum(v for k, v in self.variable_sq().items() if k.split("/")[-1] in ("kernel", "embeddings"))

    def metric(self, p, y) -> float:
        import numpy as np

        if not np.all(np.isfinite(p)):
            return float("nan")
        if self.data["task"] == "multiclass":
            return float(np.mean(np.argmax(p, 1) == y))
        if self.data["task"] == "binary":
            return float(np.mean((p[:, 0] > 0.5).astype("int32") == y))
        resid = np.sum((y - p[:, 0]) ** 2)
        return float(1.0 - resid / np.sum((y - y.mean()) ** 2))


def _fit(model, Xtr, ytr, epochs: int, seed: int):
    """One repeating pipeline (reshuffled every epoch, partial last batch
    kept, as fit(x, y, batch_size=32, shuffle=True) does) instead of a fresh
    iterator per epoch: same steps, much less overhead. Returns (history,
    error text or None)."""
    import keras
    import tensorflow as tf

    n_train = len(ytr)
    try:
        ds = (tf.data.Dataset.from_tensor_slices((Xtr, ytr))
              .shuffle(n_train, seed=seed, reshuffle_each_iteration=True)
              .batch(BATCH).repeat())
        hist = model.fit(ds, epochs=epochs, steps_per_epoch=math.ceil(n_train / BATCH), verbose=0,
                         callbacks=[keras.callbacks.TerminateOnNaN()])
        return hist.history, None
    except Exception as exc:  # record, do not crash the grid
        return {}, f"{type(exc).__name__}: {exc}"[:300]


def run_one(spec: dict, out_dir: str) -> dict:
    import keras
    import numpy as np

    t0 = time.time()
    model, loss_name, opt_kwargs, data, path = build_and_save(spec, out_dir)
    probe = _Probe(model, data, loss_name)
    Xtr, Xva = inputs_for(data, spec["arch"], "train"), inputs_for(data, spec["arch"], "val")
    ytr, yva = data["ytr"], data["yva"]
    init_loss, _, init_penalty = probe.forward(Xtr, ytr)
    init_sq = probe.variable_sq()
    epochs = spec.get("epochs") or EPOCHS[spec["dataset"]]
    history, error = _fit(model, Xtr, ytr, epochs, seed_of(spec))
    fit_losses = [float(v) for v in history.get("loss", [])]
    weights_finite = all(bool(np.all(np.isfinite(keras.ops.convert_to_numpy(w)))) for w in model.weights)
    final_loss, p_tr, final_penalty = probe.forward(Xtr, ytr)
    _, p_va, _ = probe.forward(Xva, yva)
    final_sq = probe.variable_sq() if weights_finite else {}
    record = dict(spec)
    record.update({
        "seed": seed_of(spec), "task": data["task"], "classes": data["classes"], "n_samples": len(ytr),
        "n_val": len(yva), "batch_size": BATCH, "epochs": epochs, "epochs_run": len(fit_losses),
        "steps": math.ceil(len(ytr) / BATCH) * epochs, "loss": loss_name,
        "iterations": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        "optimizer": {"class": OPTIMIZERS[spec["opt"]][0], "key": spec["opt"], "base": OPTIMIZERS[spec["opt"]][2],
                      **opt_kwargs},
        "params": int(model.count_params()),
        "initial_data_loss": clean(init_loss), "initial_penalty": clean(init_penalty),
        "final_data_loss": clean(final_loss),
        "final_penalty": clean(final_penalty if weights_finite else float("nan")),
        "final_fit_loss": clean(fit_losses[-1]) if fit_losses else None,
        "train_metric": clean(probe.metric(p_tr, ytr)), "val_metric": clean(probe.metric(p_va, yva)),
        "metric": "r2" if data["task"] == "regression" else "accuracy", "chance": data["chance"],
        "nan_loss": any(not math.isfinite(v) for v in fit_losses), "weights_finite": weights_finite,
        "kernel_sq_init": clean(sum(v for k, v in init_sq.items() if k.split("/")[-1] in ("kernel", "embeddings"))),
        "kernel_sq_final": clean(probe.kernel_sq()) if weights_finite else "nan",
        "error": error, "model_path": str(path.relative_to(Path(out_dir))), "wall_s": round(time.time() - t0, 3),
    })
    if spec.get("grid") in ("modern", "fresh", "third", "stream", "residual"):
        record["variable_sq"] = {k: [round(init_sq[k], 6), round(final_sq[k], 6) if k in final_sq else None]
                                 for k in init_sq}
    return record


def _run_star(args):
    spec, out = args
    return run_one(spec, out)


def cmd_train(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    grid = build_grid(args.grid)
    if args.replicate:
        grid = [{**spec, "replicate": args.replicate} for spec in grid]
    if args.limit:
        grid = grid[: args.limit]
    done = {r["run_id"] for r in load_runs(out)}
    pending = [s for s in grid if s["run_id"] not in done]
    print(f"grid {args.grid}: {len(grid)} runs, {len(grid) - len(pending)} already done, {len(pending)} to train, "
          f"{args.jobs} worker(s); out {out}", flush=True)
    t0 = time.time()
    if args.jobs <= 1:
        _worker_init()
        results, pool = (run_one(spec, str(out)) for spec in pending), None
    else:
        import multiprocessing as mp

        pool = mp.get_context("spawn").Pool(args.jobs, initializer=_worker_init, maxtasksperchild=40)
        results = pool.imap_unordered(_run_star, [(s, str(out)) for s in pending])
    try:
        with (out / "runs.jsonl").open("a") as fh:
            for i, rec in enumerate(results, 1):
                fh.write(json.dumps(rec) + "\n")
                fh.flush()
                el = time.time() - t0
                print(f"[{i}/{len(pending)}] {rec['run_id']}: val {rec['val_metric']} "
                      f"data loss {num(rec['initial_data_loss']):.3g}->{num(rec['final_data_loss']):.3g} "
                      f"{rec['wall_s']:.1f}s (elapsed {el/60:.1f} min, eta {el / i * (len(pending) - i) / 60:.1f} "
                      f"min)", flush=True)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    runs = load_runs(out)
    label_runs(runs)
    print(f"done in {(time.time() - t0)/60:.1f} min; outcomes: {dict(Counter(r['outcome'] for r in runs))}")
    return 0


def cmd_models(args) -> int:
    """Restore a committed record: rebuild each run's saved, untrained model
    (same seed, same build: the file ``report`` lints) without training, and
    add the record's lines to ``<out>/runs.jsonl``."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _worker_init()
    have = {r["run_id"] for r in load_runs(out)}
    t0, rebuilt = time.time(), 0
    with (out / "runs.jsonl").open("a") as fh:
        for record_path in args.records:
            with gzip.open(record_path, "rt") as records:
                for line in records:
                    rec = json.loads(line)
                    if not (out / rec["model_path"]).exists():
                        build_and_save(rec, str(out))
                        rebuilt += 1
                    if rec["run_id"] not in have:
                        have.add(rec["run_id"])
                        fh.write(json.dumps(rec) + "\n")
    print(f"{rebuilt} models rebuilt in {time.time() - t0:.0f} s; {len(have)} runs in {out / 'runs.jsonl'}")
    return 0


def cmd_export(args) -> int:
    """Write the runs of one grid to a gzipped record (the committed file)."""
    runs = [r for r in load_runs(Path(args.out)) if r.get("grid", "classic") == args.grid]
    with gzip.open(args.record, "wt") as fh:
        for rec in runs:
            fh.write(json.dumps(rec) + "\n")
    print(f"{len(runs)} {args.grid} runs written to {args.record}")
    return 0
