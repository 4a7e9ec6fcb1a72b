"""Calibration runs for what reglint reads from PyTorch checkpoints.

RL003 checks the per-step shrink ``r`` an unsupported weight undergoes; its
thresholds (error 0.05, warning 0.01) were set on Keras runs with decoupled
decay (bench/CALIBRATION.md). A PyTorch checkpoint adds a mechanism: SGD's
coupled ``weight_decay`` (wd*w in the gradient), whose slow-mode shrink
through momentum b is ``r = lr*wd/(1-b)``. These runs check whether the same
thresholds on ``r`` separate wrecked from healthy PyTorch trainings, for
coupled SGD and for AdamW, without re-tuning them.

Two steps, two interpreters (torch never enters reglint's environment)::

    /work/torchenv/bin/python bench/torch_calibrate.py train   # torch + scikit-learn ('.[torch]')
    .venv/bin/python bench/torch_calibrate.py report           # reglint lints the saved checkpoints

``train`` writes ``bench/out/torch-calibration/runs.jsonl`` (one line per
run) and ``models/<run_id>.pt``: ``torch.save({"model", "optimizer"})``
taken *before* training (the file a user would commit: the optimizer's
param groups hold lr and weight_decay), then trains with the settings.
``report`` reads every checkpoint with reglint, takes ``r`` from its
analysis and RL003's severity from ``reglint check``, labels the outcomes
as ``bench/calibrate.py`` does, and prints the table and scores.

Grid: scikit-learn's digits (10 classes, 20 epochs) and breast cancer
(binary, 30 epochs) to read thresholds from, wine (3 classes, 60 epochs)
held out; 75/25 split, standardised; MLP 64-32 and a Linear-BatchNorm-ReLU
x2 (64) net, PyTorch default initialisation; batch 32; optimizers SGD(0.03,
momentum 0.9), SGD(0.1, momentum 0.9), SGD(0.1), AdamW(1e-3), Adam(1e-3);
weight_decay 0 (the group baseline) and 1e-4 to 100.

Outcome (``bench/calibrate.py``'s rule): *diverged* (non-finite loss or
weights, or final training loss > 3x the initial one); *collapsed*
(validation accuracy within 5 points of the majority class); *degraded*
(more than 10% of the baseline's margin over chance lost); else *healthy*.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import zlib
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "torch-calibration"
DATASETS = {"digits": 20, "breast": 30, "wine": 60}  # epochs
FIT, HELD_OUT = ("digits", "breast"), ("wine",)
ARCHS = ("mlp", "bn")
OPTIMIZERS = {  # key: (class, kwargs)
    "sgd_m": ("SGD", {"lr": 0.03, "momentum": 0.9}),
    "sgd_hi": ("SGD", {"lr": 0.1, "momentum": 0.9}),
    "sgd": ("SGD", {"lr": 0.1}),
    "adamw": ("AdamW", {"lr": 1e-3}),
    "adam": ("Adam", {"lr": 1e-3}),
}
DECAYS = (0.0, 1e-4, 1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
BATCH = 32
COLLAPSE_GAP_ACC, DEGRADE_FRACTION, DIVERGE_FACTOR, BASELINE_MIN_GAP_ACC = 0.05, 0.10, 3.0, 0.15
ERROR, WARNING = 0.05, 0.01  # RL003's thresholds, as they stand


# ---------------------------------------------------------------------------
# train (torch)
# ---------------------------------------------------------------------------
def load(name):
    import numpy as np
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    data = {"digits": datasets.load_digits, "breast": datasets.load_breast_cancer, "wine": datasets.load_wine}[name]()
    x_tr, x_va, y_tr, y_va = train_test_split(data.data.astype("float32"), data.target, test_size=0.25,
                                              random_state=0, stratify=data.target)
    mean, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
    classes = int(np.max(data.target)) + 1
    chance = float(np.bincount(y_va).max() / len(y_va))
    return (x_tr - mean) / sd, y_tr, (x_va - mean) / sd, y_va, classes, chance


def build(arch, features, classes):
    import torch.nn as nn

    if arch == "mlp":
        return nn.Sequential(nn.Linear(features, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, classes))
    return nn.Sequential(nn.Linear(features, 64, bias=False), nn.BatchNorm1d(64), nn.ReLU(),
                         nn.Linear(64, 64, bias=False), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, classes))


def train_one(dataset, arch, opt_key, wd, data, models: Path) -> dict:
    import torch

    x_tr, y_tr, x_va, y_va, classes, chance = data
    seed = zlib.crc32(f"{dataset}/{arch}".encode())  # same start for every optimizer and decay
    torch.manual_seed(seed)
    model = build(arch, x_tr.shape[1], classes)
    cls, kwargs = OPTIMIZERS[opt_key]
    opt = getattr(torch.optim, cls)(model.parameters(), weight_decay=wd, **kwargs)
    run_id = f"{dataset}-{arch}-{opt_key}-{wd:g}"
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, models / f"{run_id}.pt")
    xt, yt = torch.tensor(x_tr), torch.tensor(y_tr)
    xv, yv = torch.tensor(x_va), torch.tensor(y_va)
    loss_fn = torch.nn.functional.cross_entropy
    with torch.no_grad():
        model.eval()
        initial = float(loss_fn(model(xt), yt))
    gen = torch.Generator().manual_seed(seed)
    steps, nan = 0, False
    for _ in range(DATASETS[dataset]):
        model.train()
        for idx in torch.randperm(len(xt), generator=gen).split(BATCH):
            if len(idx) < 2:
                continue  # BatchNorm needs two samples
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            if not torch.isfinite(loss):
                nan = True
                break
            loss.backward()
            opt.step()
            steps += 1
        if nan:
            break
    model.eval()
    with torch.no_grad():
        final = float(loss_fn(model(xt), yt))
        acc = float((model(xv).argmax(1) == yv).float().mean())
        finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
        norm = float(sum(p.double().pow(2).sum() for n, p in model.named_parameters() if p.ndim >= 2))
    return {"run_id": run_id, "dataset": dataset, "arch": arch, "optimizer": opt_key, "weight_decay": wd,
            "samples": len(xt), "epochs": DATASETS[dataset], "steps": steps, "chance": chance,
            "initial_loss": initial, "final_loss": final, "val_acc": acc, "nan_loss": nan, "weights_finite": finite,
            "kernel_sum_sq": norm}


def train(out: Path) -> None:
    import torch

    torch.set_num_threads(1)
    models = out / "models"
    models.mkdir(parents=True, exist_ok=True)
    path = out / "runs.jsonl"
    done = {json.loads(line)["run_id"] for line in path.read_text().splitlines()} if path.exists() else set()
    with path.open("a") as log:
        for dataset in DATASETS:
            data = load(dataset)
            for arch in ARCHS:
                for opt_key in OPTIMIZERS:
                    for wd in DECAYS:
                        if f"{dataset}-{arch}-{opt_key}-{wd:g}" in done:
                            continue
                        rec = train_one(dataset, arch, opt_key, wd, data, models)
                        log.write(json.dumps(rec) + "\n")
                        log.flush()
                        print(rec["run_id"], f"acc {rec['val_acc']:.3f}", flush=True)


# ---------------------------------------------------------------------------
# report (reglint)
# ---------------------------------------------------------------------------
def label(runs: list[dict]) -> None:
    groups = defaultdict(list)
    for r in runs:
        groups[(r["dataset"], r["arch"], r["optimizer"])].append(r)
    for members in groups.values():
        base = next(r for r in members if r["weight_decay"] == 0.0)
        chance, bval = base["chance"], base["val_acc"]
        base_ok = not diverged(base) and bval >= chance + BASELINE_MIN_GAP_ACC
        for r in members:
            if not base_ok:
                r["outcome"] = "excluded"
            elif diverged(r):
                r["outcome"] = "diverged"
            elif r["val_acc"] <= chance + COLLAPSE_GAP_ACC:
                r["outcome"] = "collapsed"
            elif r["val_acc"] < bval - DEGRADE_FRACTION * (bval - chance):
                r["outcome"] = "degraded"
            else:
                r["outcome"] = "healthy"


def diverged(r: dict) -> bool:
    final = r["final_loss"]
    return (r["nan_loss"] or not r["weights_finite"] or not math.isfinite(final)
            or final > DIVERGE_FACTOR * r["initial_loss"])


def lint(r: dict, models: Path) -> None:
    """r = the per-step shrink reglint reads from the checkpoint; RL003's severity."""
    import reglint
    from reglint.engine.analysis import Analysis
    from reglint.readers import read_model

    path = models / f"{r['run_id']}.pt"
    dyn = Analysis(read_model(path)).dynamics
    coupled = dyn.coupled_shrink(0.0) if dyn.family == "sgd" and dyn.coupled_l2 else None
    r["shrink"] = (dyn.decoupled_shrink or 0.0) + (coupled or 0.0)
    report = reglint.lint(path, select=["RL003"], samples=r["samples"], batch_size=BATCH, epochs=r["epochs"])
    found = report.files[0].findings
    r["rl003"] = found[0].severity.value if found else None


def report(out: Path) -> None:
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    label(runs)
    for r in runs:
        lint(r, out / "models")
    print(f"{len(runs)} runs: " + ", ".join(f"{k} {sum(r['outcome'] == k for r in runs)}"
                                             for k in ("healthy", "degraded", "collapsed", "diverged", "excluded")))
    for family, keys in (("coupled SGD", ("sgd_m", "sgd_hi", "sgd")), ("AdamW", ("adamw",))):
        print(f"\n### {family}: outcome by per-step shrink r (fit split: {', '.join(FIT)})\n")
        print("| r | healthy | degraded | collapsed | diverged |\n|---|---|---|---|---|")
        rows = defaultdict(lambda: defaultdict(int))
        for r in runs:
            if r["optimizer"] in keys and r["dataset"] in FIT and r["outcome"] != "excluded" and r["weight_decay"]:
                rows[_bin(r["shrink"])][r["outcome"]] += 1
        for key in sorted(rows):
            row = rows[key]
            print(f"| {key:.0e} | " + " | ".join(str(row[k]) for k in ("healthy", "degraded", "collapsed", "diverged"))
                  + " |")
        for split, names in (("fit", FIT), ("held out", HELD_OUT)):
            scored = [r for r in runs if r["optimizer"] in keys and r["dataset"] in names
                      and r["outcome"] != "excluded" and r["weight_decay"]]
            _score(f"{family}, {split}", scored)
        healthy = [r["shrink"] for r in runs if r["optimizer"] in keys and r["outcome"] == "healthy"
                   and r["weight_decay"] and r["dataset"] in FIT]
        wrecked = [r["shrink"] for r in runs if r["optimizer"] in keys and r["outcome"] in ("collapsed", "diverged")
                   and r["dataset"] in FIT]
        print(f"\nlargest healthy r {max(healthy, default=0):.3g}; smallest wrecked r {min(wrecked, default=0):.3g}")


def _bin(value: float) -> float:
    return 10 ** (math.floor(2 * math.log10(value)) / 2) if value > 0 else 0.0


def _score(name: str, runs: list[dict]) -> None:
    wrecked = [r for r in runs if r["outcome"] in ("collapsed", "diverged")]
    errors = [r for r in runs if r["rl003"] == "error"]
    hit = [r for r in errors if r["outcome"] in ("collapsed", "diverged")]
    healthy = [r for r in runs if r["outcome"] == "healthy"]
    alarms = [r for r in healthy if r["rl003"] == "error"]
    warned = [r for r in healthy if r["rl003"] == "warning"]
    print(f"\n{name}: {len(runs)} runs; RL003 errors {len(errors)}: recall of wrecked {len(hit)}/{len(wrecked)}, "
          f"precision {len(hit)}/{len(errors)}, false alarms on healthy {len(alarms)}/{len(healthy)}; "
          f"warnings on healthy {len(warned)}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("train", "report"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    (train if args.command == "train" else report)(args.out)


if __name__ == "__main__":
    sys.exit(main())
