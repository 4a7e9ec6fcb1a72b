"""Squared error behind a sigmoid or softmax under Adam and RMSprop: does a
kernel L2 wreck training at pulls the cross-entropy gate (RL001's
``penalty-pull-error``, 0.4) lets pass?

Review 53: a digits autoencoder (64-32-8-32-64, ReLU code, sigmoid
reconstruction, MSE) under Adam(1e-3) stayed at R^2 0 with L2 0.1 on every
kernel (a pull of 0.2) in 3 of 3 seeds, with an RL001 warning; review 52's
sigmoid- and softmax-MSE classifiers collapsed at L2 0.3. MSE's gradient on
a logit is ``2*(p - y)*s'(z)``: at most half cross-entropy's ``p - y``
behind a sigmoid (``s' <= 1/4``), smaller still on targets of small
variance, so an adaptive optimizer weighs the penalty's pull against a
smaller data gradient than the gate was set on.

Four models, each saved untrained as compiled, trained 30 epochs on 80% and
scored on 20%: the autoencoder with an 8- and a 16-unit code (digits pixels
in [0, 1], R^2), breast cancer's 128-128-1 sigmoid-MSE classifier and a
digits 64-64-10 softmax-MSE classifier on one-hot targets (accuracy), at L2
0, 0.01, 0.03, 0.1 and 0.3 on every kernel, under Adam(1e-3) and
RMSprop(1e-3)::

    .venv/bin/python bench/bounded_mse_probe.py run     # ~3 min on 2 cores
    .venv/bin/python bench/bounded_mse_probe.py table   # outcomes with reglint's RL001 on each file

Outcome against the same recipe at L2 0: collapsed at chance (R^2 <= 0.05,
accuracy within 5 points of the majority class), severe when it kept under
half the margin, degraded under 90%, else healthy.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
OUT = HERE / "out" / "bounded_mse"
LAMBDAS = (0.0, 0.01, 0.03, 0.1, 0.3)
OPTIMIZERS = ("adam", "rmsprop")
FAMILIES = ("ae8", "ae16", "breast", "digits")


def _data(family: str):
    import numpy as np
    from calibration.data import load_dataset

    if family.startswith("ae"):
        from sklearn.datasets import load_digits

        x = (load_digits().data / 16.0).astype("float32")
        order = np.random.default_rng(0).permutation(len(x))
        x = x[order]
        cut = int(0.8 * len(x))
        return x[:cut], x[:cut], x[cut:], x[cut:]
    data = load_dataset(family)
    y, yv = data["ytr"], data["yva"]
    if family == "digits":
        y, yv = np.eye(10, dtype="float32")[y], np.eye(10, dtype="float32")[yv]
    return data["Xtr"], y.astype("float32"), data["Xva"], yv.astype("float32")


def _model(keras, family: str, lam: float, width: int):
    from keras import layers as L
    from keras import regularizers as R

    reg = R.L2(lam) if lam else None
    if family.startswith("ae"):
        code = 8 if family == "ae8" else 16
        sizes, out, act = (32, code, 32), 64, "sigmoid"
    elif family == "breast":
        sizes, out, act = (128, 128), 1, "sigmoid"
    else:
        sizes, out, act = (64, 64), 10, "softmax"
    layers = [keras.Input((width,))] + [L.Dense(n, activation="relu", kernel_regularizer=reg) for n in sizes]
    return keras.Sequential([*layers, L.Dense(out, activation=act, kernel_regularizer=reg)])


def _score(family: str, pred, yv) -> float:
    import numpy as np

    if family.startswith("ae"):
        return float(1 - ((pred - yv) ** 2).sum() / ((yv - yv.mean(0)) ** 2).sum())
    if family == "breast":
        return float(np.mean((pred[:, 0] > 0.5) == (yv > 0.5)))
    return float(np.mean(pred.argmax(-1) == yv.argmax(-1)))


def run() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import keras
    import numpy as np

    OUT.mkdir(parents=True, exist_ok=True)
    records = OUT / "runs.jsonl"
    done = {json.loads(line)["run_id"] for line in records.read_text().splitlines()} if records.exists() else set()
    for family in FAMILIES:
        x, y, xv, yv = _data(family)
        chance = 0.0 if family.startswith("ae") else float(
            max(np.mean(yv), 1 - np.mean(yv)) if family == "breast" else np.bincount(yv.argmax(-1)).max() / len(yv))
        for opt in OPTIMIZERS:
            for lam in LAMBDAS:
                run_id = f"{family}-{opt}-{lam:g}"
                if run_id in done:
                    continue
                keras.utils.set_random_seed(1000)
                model = _model(keras, family, lam, x.shape[1])
                optimizer = keras.optimizers.Adam(1e-3) if opt == "adam" else keras.optimizers.RMSprop(1e-3)
                model.compile(optimizer, "mse")
                model.save(OUT / f"{run_id}.keras")
                model.fit(x, y, batch_size=32, epochs=30, verbose=0)
                score = _score(family, model.predict(xv, verbose=0), yv)
                row = {"run_id": run_id, "family": family, "opt": opt, "lam": lam, "score": score, "chance": chance,
                       "target_var": float(np.var(y, axis=0).mean())}
                with records.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    return 0


def table() -> int:
    from reglint.engine.runner import lint_file
    from reglint.engine.settings import Settings

    rows = [json.loads(line) for line in (OUT / "runs.jsonl").read_text().splitlines()]
    base = {(r["family"], r["opt"]): r["score"] for r in rows if r["lam"] == 0}
    print("| run | score (L2 0) | kept | outcome | RL001 | rho | pull |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if r["lam"] == 0:
            continue
        margin = base[(r["family"], r["opt"])] - r["chance"]
        kept = (r["score"] - r["chance"]) / margin if margin > 0 else float("nan")
        outcome = ("collapsed" if r["score"] <= r["chance"] + 0.05 else "severe" if kept < 0.5 else
                   "degraded" if kept < 0.9 else "healthy")
        report = lint_file(str(OUT / f"{r['run_id']}.keras"), Settings())
        found = [f for f in report.findings if f.code == "RL001"]
        v = found[0].values if found else {}
        print(f"| {r['run_id']} | {r['score']:.3f} ({base[(r['family'], r['opt'])]:.3f}) | {kept:.2f} | {outcome} | "
              f"{found[0].severity.value if found else '-'} | {v.get('penalty_ratio', 0):.3g} | "
              f"{v.get('pull_per_weight') or 0:.3g} |")
    return 0


if __name__ == "__main__":
    raise SystemExit({"run": run, "table": table}[sys.argv[1] if len(sys.argv) > 1 else "run"]())
