"""Does a penalty that dominates a squared-error loss wreck a regression?

Review 51 trained a diabetes MLP under Adam with kernel L2 0.3 (RL001 at
25x the data loss, RL007's chain error): healthy. The classic grid's
diabetes MLP under Adam stayed degraded, not collapsed, up to L2 10. This
probe trains MLPs on three regression targets (diabetes; Friedman's
nonlinear function; the digit's value read from its pixels), standardised,
under Adam, RMSprop and SGD momentum, with L2 on every kernel, and lints
each untrained model with this checkout: which error findings mark runs
that collapsed (R^2 within 0.05 of 0: the mean predicted)?

    .venv/bin/python bench/regression_probe.py run      # ~3 min on one core
    .venv/bin/python bench/regression_probe.py table    # outcomes with each run's static errors

Rows go to ``bench/out/regression_probe/runs.jsonl``; models to ``models/``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "regression_probe"
DATASETS = ("diabetes", "friedman", "digits_value")
WIDTHS = (64, 256)
OPTS = {"adam": ("Adam", {"learning_rate": 1e-3}), "rmsprop": ("RMSprop", {"learning_rate": 1e-3}),
        "sgd_m": ("SGD", {"learning_rate": 0.01, "momentum": 0.9})}
LAMBDAS = (0.0, 0.1, 0.3, 1.0, 3.0)
STEPS = 600


def load(name: str):
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if name == "diabetes":
        x, y = datasets.load_diabetes(return_X_y=True)
    elif name == "friedman":
        x, y = datasets.make_friedman1(n_samples=1000, n_features=10, noise=0.5, random_state=0)
    else:
        x, y = datasets.load_digits(return_X_y=True)
        y = y.astype("float64")
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    y = (y - y.mean()) / y.std()
    xtr, xva, ytr, yva = train_test_split(x.astype("float32"), y.astype("float32"), test_size=0.2, random_state=0)
    return xtr, ytr, xva, yva


def build(spec: dict, features: int):
    import keras
    from keras import layers, regularizers

    reg = regularizers.L2(spec["lam"]) if spec["lam"] else None
    inp = keras.Input((features,))
    h = layers.Dense(spec["width"], activation="relu", kernel_regularizer=reg)(inp)
    h = layers.Dense(spec["width"], activation="relu", kernel_regularizer=reg)(h)
    model = keras.Model(inp, layers.Dense(1, kernel_regularizer=reg)(h))
    cls, kwargs = OPTS[spec["opt"]]
    model.compile(getattr(keras.optimizers, cls)(**kwargs), "mse")
    return model


def run_id(spec: dict) -> str:
    return f"{spec['dataset']}-w{spec['width']}-{spec['opt']}-l2-{spec['lam']:g}"


def cmd_run(_args) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    (OUT / "models").mkdir(parents=True, exist_ok=True)
    path = OUT / "runs.jsonl"
    done = {json.loads(line)["run_id"] for line in path.read_text().splitlines()} if path.exists() else set()
    with path.open("a") as fh:
        for ds in DATASETS:
            xtr, ytr, xva, yva = load(ds)
            epochs = math.ceil(STEPS / math.ceil(len(ytr) / 32))
            for width in WIDTHS:
                for opt in OPTS:
                    for lam in LAMBDAS:
                        spec = {"dataset": ds, "width": width, "opt": opt, "lam": lam}
                        rid = run_id(spec)
                        if rid in done:
                            continue
                        keras.utils.set_random_seed(0)
                        model = build(spec, xtr.shape[1])
                        model.save(OUT / "models" / f"{rid}.keras")
                        model.fit(xtr, ytr, epochs=epochs, batch_size=32, verbose=0,
                                  callbacks=[keras.callbacks.TerminateOnNaN()])
                        pred = np.asarray(model(xva, training=False))[:, 0]
                        mse = float(np.mean((pred - yva) ** 2))
                        r2 = 1.0 - mse / float(np.var(yva)) if np.isfinite(mse) else float("nan")
                        fh.write(json.dumps({**spec, "run_id": rid, "r2": r2, "steps": epochs *
                                             math.ceil(len(ytr) / 32)}) + "\n")
                        fh.flush()
                        keras.backend.clear_session()
    return 0


def outcome(r2: float, base: float) -> str:
    if not math.isfinite(r2):
        return "diverged"
    if r2 <= 0.05:
        return "collapsed"
    return "degraded" if r2 < base - 0.1 * base else "healthy"


def cmd_table(_args) -> int:
    recs = [json.loads(line) for line in (OUT / "runs.jsonl").read_text().splitlines()]
    base = {(r["dataset"], r["width"], r["opt"]): r["r2"] for r in recs if r["lam"] == 0}
    done = subprocess.run([sys.executable, "-m", "reglint", "check", str(OUT / "models"), "-f", "json",
                           "--no-cache"], capture_output=True, text=True, check=False)
    report = {Path(f["path"]).stem: f for f in json.loads(done.stdout)["files"]}
    tally: dict[tuple, list[str]] = defaultdict(list)
    print("| run | R^2 | baseline | outcome | errors | rho |")
    print("|---|---|---|---|---|---|")
    for r in recs:
        if r["lam"] == 0:
            continue
        b = base[(r["dataset"], r["width"], r["opt"])]
        kind = outcome(r["r2"], b)
        findings = report[r["run_id"]]["findings"]
        errors = sorted({f["code"] for f in findings if f["severity"] == "error"})
        rho = next((f["values"].get("rho") for f in findings if f["code"] == "RL001"), None)
        print(f"| {r['run_id']} | {r['r2']:.3f} | {b:.3f} | {kind} | {','.join(errors) or '-'} | "
              f"{'-' if rho is None else f'{rho:.3g}'} |")
        family = "adaptive" if r["opt"] != "sgd_m" else "sgd"
        tally[(family, bool(errors))].append(kind)
    for (family, flagged), kinds in sorted(tally.items()):
        counts = {k: kinds.count(k) for k in ("collapsed", "diverged", "degraded", "healthy")}
        print(f"{family}, {'with' if flagged else 'without'} an error: {counts}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cmd", choices=("run", "table"))
    args = ap.parse_args(argv)
    return cmd_run(args) if args.cmd == "run" else cmd_table(args)


if __name__ == "__main__":
    sys.exit(main())
