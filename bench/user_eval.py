"""An outside user's check of reglint's error findings on small real trainings.

Independent of ``bench/calibration/`` on purpose (own models, own data split, own
outcome labels): it builds ~34 regularized Keras 3 models of four families — a
post-norm Transformer encoder block (MultiHeadAttention + LayerNormalization) on
digit rows as tokens, a GRU classifier, a SeparableConv2D + BatchNormalization CNN
on sklearn digits 8x8, a Dense + LayerNormalization MLP on breast cancer / wine /
a synthetic set — each with one regularization placement (kernel L2/L1,
gamma/beta L2, bias L2, activity, optimizer ``weight_decay``, kernel L2 +
weight_decay) and a lambda between 1e-4 and 10, under SGD(momentum 0.9), AdamW or
Nadam at usual learning rates, plus one unregularized baseline per
(family, data, optimizer).

Stages (run from the repository root; each appends to / reads ``bench/out/user_eval/``)::

    nice -n 10 .venv/bin/python bench/user_eval.py train            # ~10-20 min on 2 cores
    nice -n 10 .venv/bin/python bench/user_eval.py lint [--only-static]   # reglint check/profile, subprocesses
    .venv/bin/python bench/user_eval.py table                       # labels vs error findings
    .venv/bin/python bench/user_eval.py penalties                   # Keras' penalties vs reglint's P@init/P@saved

``REGLINT_BIN=/path/to/reglint`` evaluates another install (e.g. one built from
an older commit); ``lint --out F`` / ``table --lint F`` keep its results apart.

``train`` saves per run ``<id>-pre.keras`` (compiled, before ``fit``),
``<id>-post.keras`` (after ``fit``), ``<id>-train.npz`` (the training split,
keys ``x`` and ``y``) and appends a record (final val accuracy, epochs, batch
size, Keras' own penalty sum at init and after training) to ``runs.jsonl``.

One seed (1234) per run; the split is 75/25 stratified (random_state 7). The
separable CNN flattens its last feature map (a first version with global
average pooling reached only 55-63% on digits, too weak a baseline to label
against, and was replaced before any reglint output was looked at).

Outcome label (written before looking at any reglint output), from the final
validation accuracy ``acc`` of the run, the baseline's ``base`` (same family, data
and optimizer, no regularizer, no weight decay except AdamW's default 0.004) and
``chance`` (the majority class's share of the validation split):

* wrecked  — the loss went non-finite, or ``acc - chance < 0.5 * (base - chance)``
  (lost at least half of the baseline's margin over chance: collapsed or badly degraded);
* degraded — not wrecked and ``acc < base - 0.03``;
* healthy  — otherwise.

``lint`` runs, on every pre-training file, ``reglint check --format json``,
``reglint profile --data <id>-train.npz --format json`` (default budget) and the
same with ``--epochs E --batch-size B`` (the training's own), and on every
post-training file ``reglint profile --data <id>-train.npz --format json``
(default ``--init auto``), plus ``reglint check`` on the post-training file (for
``penalties``), each a separate process, and stores the JSON, exit code, stderr
and wall time in ``lint.jsonl``. ``table`` scores "any finding of
severity error" per mode against the labels (positive = wrecked; also with
degraded counted as positive).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "user_eval"
SEED = 1234
# REGLINT_BIN: another reglint to evaluate (e.g. one installed from an older commit).
REGLINT = os.environ.get("REGLINT_BIN", str(Path(sys.executable).parent / "reglint"))


# ---------------------------------------------------------------- the runs

@dataclass
class Run:
    rid: str
    family: str          # transformer | gru | sepcnn | lnmlp
    data: str            # digits | breast | wine | synth
    opt: str             # sgdm | adamw | nadam
    # none | kernel_l2 | kernel_l1 | gamma_beta_l2 | bias_l2 | activity_l2 | activity_l1 | wd | l2_wd | head_l2
    place: str
    lam: float = 0.0
    wd: float = 0.0      # optimizer weight_decay (AdamW baseline keeps Keras' default 0.004)
    extra: dict = field(default_factory=dict)


def runs() -> list[Run]:
    r = Run
    regularized = [
        # post-norm transformer on digits (8 row tokens of 8 pixels)
        r("T1", "transformer", "digits", "adamw", "kernel_l2", 1e-4),
        r("T2", "transformer", "digits", "adamw", "kernel_l2", 0.1),
        r("T3", "transformer", "digits", "sgdm", "gamma_beta_l2", 1.0),
        r("T4", "transformer", "digits", "nadam", "gamma_beta_l2", 10.0),
        r("T5", "transformer", "digits", "adamw", "wd", 0.0, wd=10.0),
        r("T6", "transformer", "digits", "sgdm", "kernel_l2", 1.0),
        r("T7", "transformer", "digits", "nadam", "activity_l2", 0.01),
        r("T8", "transformer", "digits", "sgdm", "l2_wd", 0.01, wd=0.1),
        r("T9", "transformer", "digits", "nadam", "kernel_l1", 0.01),
        # GRU on digit rows / synthetic features as a sequence
        r("G1", "gru", "digits", "nadam", "kernel_l2", 1e-3),
        r("G2", "gru", "digits", "sgdm", "kernel_l2", 1.0),
        r("G3", "gru", "digits", "sgdm", "bias_l2", 10.0),
        r("G4", "gru", "digits", "nadam", "wd", 0.0, wd=10.0),
        r("G5", "gru", "digits", "adamw", "kernel_l1", 0.1),
        r("G6", "gru", "digits", "nadam", "activity_l2", 1.0),
        r("G7", "gru", "synth", "adamw", "kernel_l2", 0.01),
        r("G8", "gru", "synth", "adamw", "l2_wd", 0.1, wd=1.0),
        # separable CNN + BatchNorm on digits 8x8x1
        r("S1", "sepcnn", "digits", "sgdm", "kernel_l2", 1e-4),
        r("S2", "sepcnn", "digits", "sgdm", "kernel_l2", 0.1),
        r("S3", "sepcnn", "digits", "nadam", "gamma_beta_l2", 1.0),
        r("S4", "sepcnn", "digits", "sgdm", "gamma_beta_l2", 10.0),
        r("S5", "sepcnn", "digits", "adamw", "wd", 0.0, wd=1.0),
        r("S6", "sepcnn", "digits", "adamw", "kernel_l2", 1.0),
        r("S7", "sepcnn", "digits", "sgdm", "head_l2", 1.0),
        r("S8", "sepcnn", "digits", "nadam", "l2_wd", 0.01, wd=0.1),
        # Dense + LayerNorm MLP
        r("M1", "lnmlp", "breast", "sgdm", "kernel_l2", 1e-4),
        r("M2", "lnmlp", "wine", "sgdm", "kernel_l2", 0.1),
        r("M3", "lnmlp", "synth", "nadam", "kernel_l1", 0.1),
        r("M4", "lnmlp", "synth", "adamw", "gamma_beta_l2", 10.0),
        r("M5", "lnmlp", "breast", "nadam", "bias_l2", 1.0),
        r("M6", "lnmlp", "synth", "sgdm", "wd", 0.0, wd=10.0),
        r("M7", "lnmlp", "wine", "adamw", "activity_l1", 0.1),
        r("M8", "lnmlp", "synth", "adamw", "kernel_l2", 1.0),
        r("M9", "lnmlp", "breast", "nadam", "l2_wd", 0.1, wd=1.0),
    ]
    keys = sorted({(x.family, x.data, x.opt) for x in regularized})
    baselines = [r(f"B-{f}-{d}-{o}", f, d, o, "none") for f, d, o in keys]
    return regularized + baselines


EPOCHS = {"digits": 20, "synth": 20, "breast": 30, "wine": 60}
BATCH = 32


# ---------------------------------------------------------------- data

def load_data(name: str):
    """Own split: 75/25 stratified, random_state 7, standardised on the training part."""
    import numpy as np
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if name == "digits":
        d = datasets.load_digits()
        x, y = d.data / 16.0, d.target
    elif name == "breast":
        d = datasets.load_breast_cancer()
        x, y = d.data, d.target
    elif name == "wine":
        d = datasets.load_wine()
        x, y = d.data, d.target
    else:
        x, y = datasets.make_classification(n_samples=3000, n_features=20, n_informative=10, n_redundant=4,
                                            n_classes=5, n_clusters_per_class=2, class_sep=1.2, random_state=3)
    xtr, xva, ytr, yva = train_test_split(x, y, test_size=0.25, stratify=y, random_state=7)
    if name != "digits":
        sc = StandardScaler().fit(xtr)
        xtr, xva = sc.transform(xtr), sc.transform(xva)
    return (xtr.astype("float32"), ytr.astype("int64"), xva.astype("float32"), yva.astype("int64"),
            int(np.max(y)) + 1)


def shape_for(family: str, data: str, x):
    """Tabular rows -> sequences (tokens) or images, as each family wants them."""
    n = x.shape[0]
    if family == "sepcnn":
        return x.reshape(n, 8, 8, 1)
    if family in ("transformer", "gru"):
        if data == "digits":
            return x.reshape(n, 8, 8)
        return x.reshape(n, 5, 4)           # synthetic: 20 features as 5 steps of 4
    return x


# ---------------------------------------------------------------- models

def build(run: Run, input_shape, classes: int):
    import keras
    from keras import layers, regularizers

    lam, place = run.lam, run.place
    def L2():
        return regularizers.L2(lam)

    k_reg = L2() if place in ("kernel_l2", "l2_wd") else (regularizers.L1(lam) if place == "kernel_l1" else None)
    gb_reg = L2 if place == "gamma_beta_l2" else (lambda: None)
    b_reg = L2() if place == "bias_l2" else None
    act_reg = (regularizers.L2(lam) if place == "activity_l2" else
               regularizers.L1(lam) if place == "activity_l1" else None)
    out_units, out_act = classes, "softmax"

    inp = keras.Input(input_shape)
    if run.family == "transformer":
        d = 32
        h = layers.Dense(d, kernel_regularizer=k_reg, name="embed")(inp)
        a = layers.MultiHeadAttention(num_heads=2, key_dim=16, kernel_regularizer=k_reg, name="mha")(h, h)
        h = layers.LayerNormalization(gamma_regularizer=gb_reg(), beta_regularizer=gb_reg(), name="ln1")(
            layers.Add()([h, a]))
        f = layers.Dense(64, activation="relu", kernel_regularizer=k_reg, activity_regularizer=act_reg,
                         name="ffn1")(h)
        f = layers.Dense(d, kernel_regularizer=k_reg, name="ffn2")(f)
        h = layers.LayerNormalization(gamma_regularizer=gb_reg(), beta_regularizer=gb_reg(), name="ln2")(
            layers.Add()([h, f]))
        h = layers.Flatten()(h)
        out = layers.Dense(out_units, activation=out_act, kernel_regularizer=k_reg, name="head")(h)
    elif run.family == "gru":
        h = layers.GRU(48, kernel_regularizer=k_reg, recurrent_regularizer=k_reg, bias_regularizer=b_reg,
                       activity_regularizer=act_reg, name="gru")(inp)
        out = layers.Dense(out_units, activation=out_act, kernel_regularizer=k_reg, name="head")(h)
    elif run.family == "sepcnn":
        h = inp
        for i, filters in enumerate((32, 64)):
            h = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                                       depthwise_regularizer=k_reg, pointwise_regularizer=k_reg,
                                       name=f"sep{i}")(h)
            h = layers.BatchNormalization(gamma_regularizer=gb_reg(), beta_regularizer=gb_reg(), name=f"bn{i}")(h)
            h = layers.Activation("relu")(h)
        # Flatten, not global pooling: an 8x8 digit's class is in where the strokes are.
        h = layers.Flatten()(layers.MaxPooling2D()(h))
        head_reg = L2() if place == "head_l2" else k_reg
        out = layers.Dense(out_units, activation=out_act, kernel_regularizer=head_reg, name="head")(h)
    else:  # lnmlp
        h = inp
        for i in range(2):
            h = layers.Dense(64, kernel_regularizer=k_reg, bias_regularizer=b_reg,
                             activity_regularizer=act_reg if i == 0 else None, name=f"fc{i}")(h)
            h = layers.LayerNormalization(gamma_regularizer=gb_reg(), beta_regularizer=gb_reg(), name=f"ln{i}")(h)
            h = layers.Activation("relu")(h)
        out = layers.Dense(out_units, activation=out_act, kernel_regularizer=k_reg, bias_regularizer=b_reg,
                           name="head")(h)
    model = keras.Model(inp, out, name=run.rid.replace("-", "_"))
    model.compile(optimizer=make_optimizer(run), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def make_optimizer(run: Run):
    import keras
    wd = run.wd if run.wd else None
    if run.opt == "sgdm":
        return keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, weight_decay=wd)
    if run.opt == "adamw":
        return keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=wd if wd else 0.004)
    return keras.optimizers.Nadam(learning_rate=1e-3, weight_decay=wd)


def weight_penalty(model) -> float:
    """Keras' own sum of the weight regularizers' losses at the current weights
    (the weight part of ``model.losses``; activity losses only exist during a call)."""
    import keras
    return float(sum(float(keras.ops.convert_to_numpy(v)) for v in model._get_regularization_losses()))


# ---------------------------------------------------------------- train

def train(args) -> None:
    import math

    import keras
    import numpy as np

    OUT.mkdir(parents=True, exist_ok=True)
    done = {json.loads(line)["rid"] for line in (OUT / "runs.jsonl").open()} if (OUT / "runs.jsonl").exists() else set()
    for run in runs():
        if run.rid in done or (args.only and run.rid not in args.only):
            continue
        xtr, ytr, xva, yva, classes = load_data(run.data)
        xtr, xva = shape_for(run.family, run.data, xtr), shape_for(run.family, run.data, xva)
        keras.utils.clear_session()
        keras.utils.set_random_seed(SEED)
        model = build(run, xtr.shape[1:], classes)
        pre = OUT / f"{run.rid}-pre.keras"
        model.save(pre)
        np.savez(OUT / f"{run.rid}-train.npz", x=xtr, y=ytr)
        p_init = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
        p_init_w = weight_penalty(model)
        epochs = EPOCHS[run.data]
        t0 = time.time()
        hist = model.fit(xtr, ytr, validation_data=(xva, yva), epochs=epochs, batch_size=BATCH,
                         shuffle=True, verbose=0)
        wall = time.time() - t0
        model.save(OUT / f"{run.rid}-post.keras")
        losses = hist.history["loss"]
        rec = dict(asdict(run), epochs=epochs, batch=BATCH, classes=classes, n_train=len(ytr),
                   chance=float(np.bincount(yva).max() / len(yva)),
                   val_acc=float(hist.history["val_accuracy"][-1]),
                   best_val_acc=float(max(hist.history["val_accuracy"])),
                   train_loss_last=float(losses[-1]), finite=bool(all(math.isfinite(v) for v in losses)),
                   keras_losses_init=p_init, keras_weight_penalty_init=p_init_w,
                   keras_weight_penalty_post=weight_penalty(model),
                   params=int(model.count_params()), train_s=round(wall, 1))
        with (OUT / "runs.jsonl").open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        print(f"{run.rid:28s} acc {rec['val_acc']:.3f} loss {rec['train_loss_last']:.3g} {wall:.0f}s", flush=True)


def load_runs() -> dict[str, dict]:
    return {r["rid"]: r for r in map(json.loads, (OUT / "runs.jsonl").open())}


def label(rec: dict, base: dict) -> str:
    if not rec["finite"]:
        return "wrecked"
    margin = base["val_acc"] - rec["chance"]
    if rec["val_acc"] - rec["chance"] < 0.5 * margin:
        return "wrecked"
    if rec["val_acc"] < base["val_acc"] - 0.03:
        return "degraded"
    return "healthy"


def labels() -> dict[str, str]:
    recs = load_runs()
    out = {}
    for rid, rec in recs.items():
        base = recs[f"B-{rec['family']}-{rec['data']}-{rec['opt']}"]
        out[rid] = label(rec, base)
    return out


# ---------------------------------------------------------------- lint

def modes(rec: dict) -> dict[str, list[str]]:
    pre, post = OUT / f"{rec['rid']}-pre.keras", OUT / f"{rec['rid']}-post.keras"
    data = str(OUT / f"{rec['rid']}-train.npz")
    return {
        "check": [REGLINT, "check", "--format", "json", str(pre)],
        "profile": [REGLINT, "profile", str(pre), "--data", data, "--format", "json"],
        "profile_epochs": [REGLINT, "profile", str(pre), "--data", data, "--format", "json",
                           "--epochs", str(rec["epochs"]), "--batch-size", str(rec["batch"])],
        "profile_post": [REGLINT, "profile", str(post), "--data", data, "--format", "json"],
        "check_post": [REGLINT, "check", "--format", "json", str(post)],   # for the penalty comparison
    }


def lint(args) -> None:
    path = OUT / (args.out or "lint.jsonl")
    done = {(d["rid"], d["mode"]) for d in map(json.loads, path.open())} if path.exists() else set()
    for rid, rec in load_runs().items():
        for mode, cmd in modes(rec).items():
            if (rid, mode) in done or (args.only_static and mode != "check") or (args.mode and mode not in args.mode):
                continue
            t0 = time.time()
            p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            wall = time.time() - t0
            try:
                report = json.loads(p.stdout)
            except json.JSONDecodeError:
                report = None
            entry = {"rid": rid, "mode": mode, "cmd": " ".join(cmd), "rc": p.returncode, "wall_s": round(wall, 1),
                     "stderr": p.stderr[-4000:], "report": report, "stdout_head": None if report else p.stdout[:2000]}
            with path.open("a") as fh:
                fh.write(json.dumps(entry) + "\n")
            print(f"{rid:28s} {mode:15s} rc {p.returncode} {wall:5.1f}s {summary(report)}", flush=True)


def findings(report: dict | None) -> list[dict]:
    if not report:
        return []
    out = []
    for f in report.get("files", []):
        out.extend(f.get("findings", []))
    return out


def summary(report: dict | None) -> str:
    fs = findings(report)
    return " ".join(sorted(f"{f.get('code')}:{f.get('severity', '?')[0]}" for f in fs)) or "-"


def load_lint(name: str = "lint.jsonl") -> dict[tuple[str, str], dict]:
    out = {}
    for d in map(json.loads, (OUT / name).open()):
        out[(d["rid"], d["mode"])] = d   # the last entry of a (run, mode) wins
    return out


# ---------------------------------------------------------------- table

def score(pairs: list[tuple[bool, bool]]) -> str:
    tp = sum(p and f for p, f in pairs)
    fn = sum(p and not f for p, f in pairs)
    fp = sum(f and not p for p, f in pairs)
    tn = sum(not p and not f for p, f in pairs)
    catch = f"{tp}/{tp + fn}" + (f" = {tp / (tp + fn):.2f}" if tp + fn else "")
    prec = f"{tp}/{tp + fp}" + (f" = {tp / (tp + fp):.2f}" if tp + fp else "")
    fa = f"{fp}/{fp + tn}" + (f" = {fp / (fp + tn):.2f}" if fp + tn else "")
    return f"catch {catch:14s} precision {prec:14s} false alarms {fa}"


def table(args) -> None:
    recs, lab, lint_out = load_runs(), labels(), load_lint(args.lint)
    print("| run | family | data | opt | placement | lambda | wd | val acc | base | label | check | profile | "
          "profile --epochs | profile post |")
    print("|---|" * 1 + "---|" * 13)
    for rid, rec in recs.items():
        base = recs[f"B-{rec['family']}-{rec['data']}-{rec['opt']}"]
        cells = []
        for mode in ("check", "profile", "profile_epochs", "profile_post"):
            d = lint_out.get((rid, mode))
            cells.append("n/a" if d is None else (f"rc{d['rc']} " + summary(d["report"])))
        print(f"| {rid} | {rec['family']} | {rec['data']} | {rec['opt']} | {rec['place']} | {rec['lam']:g} | "
              f"{rec['wd']:g} | {rec['val_acc']:.3f} | {base['val_acc']:.3f} | {lab[rid]} | "
              + " | ".join(cells) + " |")
    print()
    for mode in ("check", "profile", "profile_epochs", "profile_post"):
        for pos_set, name in (({"wrecked"}, "positive = wrecked"),
                              ({"wrecked", "degraded"}, "positive = wrecked|degraded")):
            for scope in ("regularized", "all"):
                pairs = []
                for rid in recs:
                    if scope == "regularized" and rid.startswith("B-"):
                        continue
                    d = lint_out.get((rid, mode))
                    if d is None:
                        continue
                    err = any(f.get("severity") == "error" for f in findings(d["report"]))
                    pairs.append((lab[rid] in pos_set, err))
                print(f"{mode:15s} {name:28s} {scope:12s} n={len(pairs):3d} {score(pairs)}")
    slow = [(k, d["wall_s"]) for k, d in lint_out.items() if d["wall_s"] > 120]
    bad = [(k, d["rc"]) for k, d in lint_out.items() if d["rc"] not in (0, 1) or "Traceback" in d["stderr"]]
    print("\n> 120 s:", slow or "none")
    print("rc not 0/1 or traceback:", bad or "none")


def _penalty_sums(report: dict) -> tuple[int, float, float]:
    """(total params, sum of penalty_saved, sum of the expected penalty at init) over active tensors."""
    model = report["files"][0]["model"]
    saved = init = 0.0
    for layer in model["layers"]:
        for var in layer.get("variables", []):
            if var.get("active") and var.get("penalty_saved") is not None:
                saved += var["penalty_saved"]
                init += var.get("penalty_init") or 0.0
    return model["params"]["total"], saved, init


def penalties(args) -> None:
    """reglint's parameter count and penalties against Keras' own numbers:
    P@saved of the pre file against Keras' penalty at init (the same weights),
    of the post file against Keras' penalty after fit, and reglint's expected
    penalty at a fresh draw (P@init) against Keras' draw."""
    recs, lint_out = load_runs(), load_lint(args.lint)
    print(f"{'run':28s} {'params k/r':>13s} {'keras@init':>11s} {'P@saved pre':>11s} {'P@init est':>11s} "
          f"{'keras@post':>11s} {'P@saved post':>12s}  flags")
    for rid, rec in recs.items():
        pre, post = lint_out.get((rid, "check")), lint_out.get((rid, "check_post"))
        if not pre or not pre["report"] or not post or not post["report"]:
            continue
        n_pre, saved_pre, est = _penalty_sums(pre["report"])
        n_post, saved_post, _ = _penalty_sums(post["report"])
        k_init, k_post = rec["keras_weight_penalty_init"], rec["keras_weight_penalty_post"]
        flags = []
        if n_pre != rec["params"] or n_post != rec["params"]:
            flags.append("PARAMS")
        for name, ours, theirs in (("pre", saved_pre, k_init), ("post", saved_post, k_post)):
            if abs(ours - theirs) > 1e-4 * max(abs(theirs), 1e-12) + 1e-9:
                flags.append(f"P@saved {name}")
        if k_init > 0 and abs(est - k_init) > 0.15 * k_init:
            flags.append(f"P@init off x{est / k_init:.2f}")
        print(f"{rid:28s} {rec['params']:>6d}/{n_pre:<6d} {k_init:11.4g} {saved_pre:11.4g} {est:11.4g} "
              f"{k_post:11.4g} {saved_post:12.4g}  {' '.join(flags)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="stage", required=True)
    t = sub.add_parser("train")
    t.add_argument("--only", nargs="*")
    li = sub.add_parser("lint")
    li.add_argument("--only-static", action="store_true")
    li.add_argument("--mode", nargs="*")
    li.add_argument("--out", help="file under bench/out/user_eval/ (default lint.jsonl)")
    for name in ("table", "penalties"):
        sub.add_parser(name).add_argument("--lint", default="lint.jsonl", help="which lint results to read")
    args = ap.parse_args()
    {"train": train, "lint": lint, "table": table, "penalties": penalties}[args.stage](args)


if __name__ == "__main__":
    main()
