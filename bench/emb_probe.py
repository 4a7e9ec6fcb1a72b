"""Is it the embedding table's own L2 that collapses an embedding model?

The calibration grids put one L2 on every kernel *and* the embedding table
at once, and the Embedding model collapsed from L2 0.03-0.1 under SGD
momentum and Adam(W) (classic digits; modern digits and wine, 28 of 28 runs
from 0.1), where MLPs of the same penalty size only degraded. This probe
separates the two: the table alone, the Dense kernels alone, both; two
embedding models (the grid's ``Flatten`` one, and a bag-of-tokens one that
averages the table's rows as a text classifier does); three data sets;
SGD momentum and Adam. The outcome rule is the grid's
(``calibration.outcomes``: collapsed = validation accuracy within 5 points
of chance, degraded = lost a tenth of the baseline's margin).

    .venv/bin/python bench/emb_probe.py run --jobs 2 [--seeds 1]   # ~10 min on 2 cores
    .venv/bin/python bench/emb_probe.py table
    .venv/bin/python bench/emb_probe.py lint [--verbose]   # each run's untrained model linted

Rows go to ``bench/out/emb_probe/runs.jsonl`` (resume-safe).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

OUT = HERE / "out" / "emb_probe"
DATASETS = ("digits", "wine", "breast")
ARCHS = ("flat", "bag")
# Checked after the levels were set: chains from a table through an LSTM or
# a Conv1D (L2 on table and kernels together, Keras' default table).
CHECK_ARCHS = ("lstm", "conv")
PLACEMENTS = ("table", "dense", "both")
OPTS = ("sgd_m", "adam")
LAMBDAS = (0.01, 0.03, 0.1, 0.3)
EPOCHS = {"digits": 20, "breast": 30, "wine": 60}
# The kernels' L2 alone behind a table nobody penalized (review 46: most of
# its missed wrecks): every family, three optimizers, both table scales.
KERNEL_ARCHS = ("flat", "bag", "lstm", "conv")
KERNEL_OPTS = ("sgd_m", "adam", "rmsprop")
# Checked after RL025's shrink levels were set: the same shrinks (0.06 at
# the kernels' L2 0.1 or 0.3; 0.018-0.02 at 0.03 or 0.1) from other SGD settings.
SHRINK_OPTS = {"sgd_lr03": ("SGD", {"learning_rate": 0.3}),
               "sgd_m001": ("SGD", {"learning_rate": 0.01, "momentum": 0.9})}
SHRINK_LAMBDAS = {"sgd_lr03": (0.03, 0.1), "sgd_m001": (0.1, 0.3)}
# SGD momentum's decoupled weight_decay (``lr*wd`` per step) on every
# variable, or with the table excluded (review 47, D2: wd 1 at lr 0.03
# collapsed a small-table model): does the table's own decay matter?
WD_PLACEMENTS = ("wd_all", "wd_kernels")
WD_LAMBDAS = (0.3, 1.0, 3.0)
# Table and kernels shrinking together under SGD, by the per-step shrink
# ``2*lr*l2/(1-m)``: 0.018, 0.03 and 0.06 from SGD momentum (the four
# families), then 0.018 and 0.03 from two other SGD settings (flattened and
# Conv1D), as the weight-decay runs' 0.03 suggested a level there.
BOTH_SHRINK_LAMBDAS = {"sgd_m": (0.03, 0.05, 0.1), "sgd_m001": (0.09, 0.15), "sgd_lr03": (0.03, 0.05)}
# An LSTM with kernel_regularizer only, its recurrent kernel free (how most
# code regularizes an LSTM): does the free recurrent kernel rescue the chain?
RECURRENT_FREE_LAMBDAS = (0.03, 0.1, 0.3)


def specs(seeds: int) -> list[dict]:
    """Every run: each table scale's baselines and penalized chains."""
    out = []
    for seed in range(seeds):
        for ds in DATASETS:
            for arch in ARCHS:
                for opt in OPTS:
                    cell = {"dataset": ds, "arch": arch, "opt": opt, "seed": seed}
                    out.append({**cell, "placement": "none", "lam": 0.0, "init": "small"})
                    out += [{**cell, "placement": plc, "lam": lam, "init": "small"}
                            for plc in PLACEMENTS for lam in LAMBDAS]
                    # The same chains from a table drawn at unit scale
                    # (PyTorch's N(0, 1) default): does the small start matter?
                    out.append({**cell, "placement": "none", "lam": 0.0, "init": "unit"})
                    out += [{**cell, "placement": "both", "lam": lam, "init": "unit"} for lam in LAMBDAS]
    for seed in range(seeds):
        for ds in DATASETS:
            for arch in CHECK_ARCHS:
                for opt in OPTS:
                    cell = {"dataset": ds, "arch": arch, "opt": opt, "seed": seed, "init": "small"}
                    out.append({**cell, "placement": "none", "lam": 0.0})
                    out += [{**cell, "placement": "both", "lam": lam} for lam in LAMBDAS]
    out += (kernel_specs(seeds) + shrink_specs(seeds) + wd_specs(seeds) + both_shrink_specs(seeds)
            + recurrent_free_specs(seeds))
    unique: dict[str, dict] = {}
    for s in out:  # the kernel runs share their baselines with the runs above
        unique.setdefault(run_id(s), {**s, "run_id": run_id(s)})
    return list(unique.values())


def run_id(s: dict) -> str:
    unit = "-unit" if s["init"] == "unit" else ""
    return f"{s['dataset']}-{s['arch']}{unit}-{s['opt']}-{s['placement']}-{s['lam']:g}-s{s['seed']}"


def kernel_specs(seeds: int) -> list[dict]:
    """The kernels alone penalized, the table left as Keras draws it (and,
    for the two families the levels are set on, drawn at unit scale)."""
    out = []
    for seed in range(seeds):
        for ds in DATASETS:
            for arch in KERNEL_ARCHS:
                for opt in KERNEL_OPTS:
                    for init in ("small", "unit") if arch in ARCHS else ("small",):
                        cell = {"dataset": ds, "arch": arch, "opt": opt, "seed": seed, "init": init}
                        out.append({**cell, "placement": "none", "lam": 0.0})
                        out += [{**cell, "placement": "dense", "lam": lam} for lam in LAMBDAS]
    return out


def shrink_specs(seeds: int) -> list[dict]:
    """The kernels alone under two more SGD settings, flattened and Conv1D."""
    out = []
    for seed in range(seeds):
        for ds in DATASETS:
            for arch in ("flat", "conv"):
                for opt, lams in SHRINK_LAMBDAS.items():
                    cell = {"dataset": ds, "arch": arch, "opt": opt, "seed": seed, "init": "small"}
                    out.append({**cell, "placement": "none", "lam": 0.0})
                    out += [{**cell, "placement": "dense", "lam": lam} for lam in lams]
    return out


def wd_specs(seeds: int) -> list[dict]:
    """No L2 anywhere: SGD momentum's weight_decay on every variable, or on
    every variable but the table; the four families, three data sets."""
    out = []
    for seed in range(seeds):
        for ds in DATASETS:
            for arch in KERNEL_ARCHS:
                cell = {"dataset": ds, "arch": arch, "opt": "sgd_m", "seed": seed, "init": "small"}
                out.append({**cell, "placement": "none", "lam": 0.0})
                out += [{**cell, "placement": plc, "lam": wd} for plc in WD_PLACEMENTS for wd in WD_LAMBDAS]
    return out


def both_shrink_specs(seeds: int) -> list[dict]:
    """L2 on the table and the kernels together under SGD, at the shrinks
    ``BOTH_SHRINK_LAMBDAS`` gives."""
    out = []
    for seed in range(seeds):
        for ds in DATASETS:
            for opt, lams in BOTH_SHRINK_LAMBDAS.items():
                for arch in KERNEL_ARCHS if opt == "sgd_m" else ("flat", "conv"):
                    cell = {"dataset": ds, "arch": arch, "opt": opt, "seed": seed, "init": "small"}
                    out.append({**cell, "placement": "none", "lam": 0.0})
                    out += [{**cell, "placement": "both", "lam": lam} for lam in lams]
    return out


def recurrent_free_specs(seeds: int) -> list[dict]:
    """The LSTM family with L2 on its input kernel and the Dense kernels,
    the recurrent kernel unpenalized (placement ``input_kernels``)."""
    out = []
    for seed in range(seeds):
        for ds in DATASETS:
            for opt in ("sgd_m", "adam"):
                cell = {"dataset": ds, "arch": "lstm", "opt": opt, "seed": seed, "init": "small"}
                out.append({**cell, "placement": "none", "lam": 0.0})
                out += [{**cell, "placement": "input_kernels", "lam": lam} for lam in RECURRENT_FREE_LAMBDAS]
    return out


def optimizer(spec: dict):
    """The run's optimizer; in the weight-decay placements lambda is SGD
    momentum's ``weight_decay`` (the table excluded in ``wd_kernels``)."""
    import keras
    from calibration.grid import OPTIMIZERS

    cls, kwargs = SHRINK_OPTS[spec["opt"]] if spec["opt"] in SHRINK_OPTS else OPTIMIZERS[spec["opt"]][:2]
    if spec["placement"] not in WD_PLACEMENTS:
        return getattr(keras.optimizers, cls)(**kwargs)
    opt = getattr(keras.optimizers, cls)(**kwargs, weight_decay=spec["lam"])
    if spec["placement"] == "wd_kernels":
        opt.exclude_from_weight_decay(var_names=["embeddings"])
    return opt


def build(data: dict, spec: dict):
    import keras
    from keras import layers, regularizers

    lam, plc = spec["lam"], spec["placement"]
    table = regularizers.L2(lam) if plc in ("table", "both") and lam else None
    dense = regularizers.L2(lam) if plc in ("dense", "both", "input_kernels") and lam else None
    recurrent = None if plc == "input_kernels" else dense
    F = data["features"]
    inp = keras.Input((F,), dtype="int32")
    width = 8 if spec["arch"] == "flat" else 32
    init = keras.initializers.RandomNormal(stddev=1.0) if spec["init"] == "unit" else "uniform"
    h = layers.Embedding(F * 8, width, embeddings_initializer=init, embeddings_regularizer=table)(inp)
    if spec["arch"] == "lstm":
        h = layers.LSTM(32, kernel_regularizer=dense, recurrent_regularizer=recurrent)(h)
    elif spec["arch"] == "conv":
        h = layers.Conv1D(32, 3, activation="relu", kernel_regularizer=dense)(h)
        h = layers.GlobalMaxPooling1D()(h)
    else:
        h = layers.Flatten()(h) if spec["arch"] == "flat" else layers.GlobalAveragePooling1D()(h)
    h = layers.Dense(64, activation="relu", kernel_regularizer=dense)(h)
    if data["task"] == "multiclass":
        out, loss = layers.Dense(data["classes"], activation="softmax", kernel_regularizer=dense)(h), \
            "sparse_categorical_crossentropy"
    else:
        out, loss = layers.Dense(1, activation="sigmoid", kernel_regularizer=dense)(h), "binary_crossentropy"
    return keras.Model(inp, out), loss


def run_one(spec: dict) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import keras
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from calibration.data import load_dataset

    data = load_dataset(spec["dataset"])
    keras.utils.set_random_seed(1000 + spec["seed"])
    model, loss = build(data, spec)
    model.compile(optimizer=optimizer(spec), loss=loss)
    Xtr, ytr, Xva, yva = data["Ttr"], data["ytr"], data["Tva"], data["yva"]
    ds = (tf.data.Dataset.from_tensor_slices((Xtr, ytr)).shuffle(len(ytr), seed=spec["seed"])
          .batch(32).repeat())
    model.fit(ds, epochs=EPOCHS[spec["dataset"]], steps_per_epoch=math.ceil(len(ytr) / 32), verbose=0,
              callbacks=[keras.callbacks.TerminateOnNaN()])
    p = np.asarray(model(Xva, training=False))
    if not np.all(np.isfinite(p)):
        val = float("nan")
    elif data["task"] == "multiclass":
        val = float(np.mean(np.argmax(p, 1) == yva))
    else:
        val = float(np.mean((p[:, 0] > 0.5).astype("int32") == yva))
    chance = float(np.max(np.bincount(yva.astype("int64"))) / len(yva))
    sq = {w.path: float(np.sum(np.square(np.asarray(w)))) for w in model.trainable_weights}
    return {**spec, "val": val, "chance": chance, "sq": sq}


def cmd_run(args) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "runs.jsonl"
    done = {json.loads(line)["run_id"] for line in path.read_text().splitlines()} if path.exists() else set()
    chosen = specs(args.seeds)
    if args.only:
        only = {"kernels": kernel_specs, "shrink": shrink_specs, "wd": wd_specs,
                "both_shrink": both_shrink_specs, "recurrent_free": recurrent_free_specs}[args.only]
        ids = {run_id(s) for s in only(args.seeds)}
        chosen = [s for s in chosen if s["run_id"] in ids]
    todo = [s for s in chosen if s["run_id"] not in done]
    print(f"{len(todo)} runs to train", flush=True)
    with ProcessPoolExecutor(args.jobs) as pool, path.open("a") as fh:
        for rec in pool.map(run_one, todo):
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
    return 0


def outcome(rec: dict, base: float) -> str:
    """The grid's rule (calibration.outcomes), against this group's baseline."""
    v, chance = rec["val"], rec["chance"]
    if not math.isfinite(v):
        return "diverged"
    if v <= chance + 0.05:
        return "collapsed"
    return "degraded" if v < base - 0.10 * (base - chance) else "healthy"


def sgd_shrink(opt: str, lam: float) -> float:
    """The per-step shrink ``2*lr*l2/(1-m)`` an SGD setting gives L2 ``lam``."""
    from calibration.grid import OPTIMIZERS

    kwargs = SHRINK_OPTS[opt][1] if opt in SHRINK_OPTS else OPTIMIZERS[opt][1]
    return 2 * kwargs["learning_rate"] * lam / (1 - kwargs.get("momentum", 0.0))


def cmd_table(args) -> int:
    recs = [json.loads(line) for line in (OUT / "runs.jsonl").read_text().splitlines()]
    for r in recs:  # rows before the unit-scale tables carry no init
        if r.get("init", "small") == "unit":
            r["arch"] += "-unit"
    base = {(r["dataset"], r["arch"], r["opt"], r["seed"]): r["val"] for r in recs if r["placement"] == "none"}
    cells: dict[tuple, list[str]] = defaultdict(list)
    for r in recs:
        if r["placement"] == "none":
            continue
        b = base.get((r["dataset"], r["arch"], r["opt"], r["seed"]))
        if b is None or b < r["chance"] + 0.15:
            continue
        cells[(r["arch"], r["placement"], r["opt"], r["lam"])].append(f"{r['dataset'][:3]}:{outcome(r, b)[:4]}")
    print("| arch | L2 on | optimizer | " + " | ".join(f"L2 {lam:g}" for lam in LAMBDAS) + " |")
    print("|---|---|---|" + "---|" * len(LAMBDAS))
    for arch in (*ARCHS, *(f"{a}-unit" for a in ARCHS), *CHECK_ARCHS):
        for plc in PLACEMENTS:
            for opt in (*OPTS, *(o for o in KERNEL_OPTS if o not in OPTS), *SHRINK_OPTS):
                row = [" ".join(sorted(cells.get((arch, plc, opt, lam), []))) or "-" for lam in LAMBDAS]
                if row == ["-"] * len(LAMBDAS):
                    continue
                print(f"| {arch} | {plc} | {opt} | " + " | ".join(row) + " |")
    print("\n| arch | weight_decay on | optimizer | " + " | ".join(f"wd {wd:g}" for wd in WD_LAMBDAS) + " |")
    print("|---|---|---|" + "---|" * len(WD_LAMBDAS))
    for arch in KERNEL_ARCHS:
        for plc in WD_PLACEMENTS:
            row = [" ".join(sorted(cells.get((arch, plc, "sgd_m", wd), []))) or "-" for wd in WD_LAMBDAS]
            if row != ["-"] * len(WD_LAMBDAS):
                print(f"| {arch} | {plc} | sgd_m | " + " | ".join(row) + " |")
    print("\n| arch | L2 on table and kernels | optimizer | shrink 0.018 | shrink 0.03 | shrink 0.06 |")
    print("|---|---|---|---|---|---|")
    for arch in KERNEL_ARCHS:
        for opt, lams in BOTH_SHRINK_LAMBDAS.items():
            row = {}
            for lam in lams:
                got = cells.get((arch, "both", opt, lam))
                if got:
                    row[round(sgd_shrink(opt, lam), 3)] = f"L2 {lam:g}: " + " ".join(sorted(got))
            if row:
                print(f"| {arch} | both | {opt} | " + " | ".join(row.get(r, "-") for r in (0.018, 0.03, 0.06)) + " |")
    print("\nbaselines:", {f"{k[0][:3]}-{k[1]}-{k[2]}": round(v, 3) for k, v in sorted(base.items())})
    return 0


def cmd_lint(args) -> int:
    """Each recorded run's model, untrained, saved and linted with this
    checkout's rules: error findings against the run's outcome."""
    import subprocess

    recs = [json.loads(line) for line in (OUT / "runs.jsonl").read_text().splitlines()]
    folder = OUT / "models"
    folder.mkdir(parents=True, exist_ok=True)
    todo = [r for r in recs if r["placement"] != "none" and not (folder / f"{r['run_id']}.keras").exists()]
    if todo:
        save_untrained(todo, folder)
    done = subprocess.run([sys.executable, "-m", "reglint", "check", str(folder), "-f", "json", "--no-cache"],
                          capture_output=True, text=True, check=False)
    report = {Path(f["path"]).stem: f for f in json.loads(done.stdout)["files"]}
    base = {(r["dataset"], r["arch"], r.get("init", "small"), r["opt"], r["seed"]): r["val"]
            for r in recs if r["placement"] == "none"}
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in recs:
        b = base.get((r["dataset"], r["arch"], r.get("init", "small"), r["opt"], r["seed"]))
        if r["placement"] == "none" or b is None or b < r["chance"] + 0.15 or r["run_id"] not in report:
            continue
        kind = outcome(r, b)
        findings = report[r["run_id"]]["findings"]
        errors = sorted({f["code"] for f in findings if f["severity"] == "error"})
        tally[kind][0] += 1
        tally[kind][1] += bool(errors)
        if args.verbose:
            print(f"{r['run_id']:45s} {kind:9s} {','.join(errors) or '-'}")
    for kind in ("collapsed", "diverged", "degraded", "healthy"):
        runs, flagged = tally.get(kind, [0, 0])
        print(f"{kind:9s} {flagged:3d} of {runs:3d} with an error finding")
    return 0


def save_untrained(recs: list[dict], folder: Path) -> None:
    """Build and compile each run's model as ``run_one`` does, untrained."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from calibration.data import load_dataset

    for r in recs:
        data = load_dataset(r["dataset"])
        keras.utils.set_random_seed(1000 + r["seed"])
        model, loss = build(data, r)
        model.compile(optimizer=optimizer(r), loss=loss)
        model.save(folder / f"{r['run_id']}.keras")
        keras.backend.clear_session()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--jobs", type=int, default=2)
    r.add_argument("--seeds", type=int, default=1)
    r.add_argument("--only", choices=("kernels", "shrink", "wd", "both_shrink", "recurrent_free"),
                   help="only the kernels-alone runs (unpenalized table), their check under other SGD settings, "
                        "SGD momentum's weight_decay with and without the table, or the table's and kernels' L2 "
                        "together under SGD at chosen shrinks, or an LSTM whose recurrent kernel is free")
    sub.add_parser("table")
    lint = sub.add_parser("lint", help="lint each run's untrained model; error findings against the outcomes")
    lint.add_argument("--verbose", action="store_true", help="one line per run")
    args = ap.parse_args(argv)
    return {"run": cmd_run, "table": cmd_table, "lint": cmd_lint}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
