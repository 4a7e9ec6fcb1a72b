"""Does ``reglint profile`` judge a *trained* file as well as the untrained one?

The calibration saves each model before training (the file a project
commits). Many files are saved after ``fit`` instead: their weights already
carry the penalty's effect, and a penalty that collapsed them leaves neither
of the twin's runs anything to learn from. ``profile --init auto`` (the
default) therefore starts from a fresh draw of the file's initializers when
the file's optimizer recorded steps. This script measures both starts on
trained files: it retrains a sample of a grid's runs exactly as
``calibrate.py train`` did (same seed: the validation accuracy is checked
against the grid's record) and saves each model *after* training, then
profiles it at the training's length with ``--init auto`` (fresh) and
``--init saved``.

    .venv/bin/python bench/trained_files.py make --grid-out bench/out/fresh-r2 --out bench/out/trained-fresh-r2
    .venv/bin/python bench/trained_files.py run --out bench/out/trained-fresh-r2 --jobs 2
    .venv/bin/python bench/trained_files.py score --out bench/out/trained-fresh-r2 [--out ...]

The sample: every wrecked run, every degraded run that lost at least half
its margin, and as many healthy runs (drawn with a fixed seed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import calibrate as cal  # noqa: E402
import profile_grid as pg  # noqa: E402
from calibration.outcomes import severe  # noqa: E402

INITS = ("auto", "saved")


def sample(grid_out: Path, healthy_per_wreck: float = 1.0) -> list[dict]:
    runs = cal.load_runs(grid_out)
    cal.label_runs(runs)
    harmed = [r for r in runs if severe(r)]
    healthy = sorted((r for r in runs if r["outcome"] == "healthy"), key=lambda r: r["run_id"])
    random.Random(0).shuffle(healthy)
    return harmed + healthy[:int(len(harmed) * healthy_per_wreck)]


def train_and_keep(args: tuple[dict, str]) -> dict:
    """Retrain one run as the grid did and save the model after ``fit``."""
    rec, out = args
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from calibration import train as T

    T._worker_init()
    spec = {k: rec[k] for k in ("run_id", "dataset", "arch", "opt", "placement", "lam", "grid", "epochs",
                                "replicate") if rec.get(k) is not None}
    fit = T._fit
    trained = Path(out) / "models" / f"{rec['run_id']}.keras"

    def fit_and_save(model, *a, **k):
        result = fit(model, *a, **k)
        trained.parent.mkdir(parents=True, exist_ok=True)
        model.save(trained)
        return result

    T._fit = fit_and_save
    try:
        new = T.run_one(spec, str(Path(out) / "untrained"))
    finally:
        T._fit = fit
    keep = {k: rec.get(k) for k in ("run_id", "dataset", "arch", "opt", "placement", "lam", "grid", "outcome",
                                    "margin_lost", "batch_size", "epochs", "epochs_run", "n_samples", "replicate")}
    return {**keep, "iterations": new.get("iterations"), "grid_val": rec.get("val_metric"),
            "val": new.get("val_metric"), "model_path": f"models/{rec['run_id']}.keras"}


def cmd_make(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "trained.jsonl"
    done = {json.loads(line)["run_id"] for line in path.read_text().splitlines()} if path.exists() else set()
    todo = [r for r in sample(Path(args.grid_out)) if r["run_id"] not in done]
    print(f"{len(todo)} runs to retrain", flush=True)
    with ProcessPoolExecutor(args.jobs) as pool, path.open("a") as fh:
        for row in pool.map(train_and_keep, [(r, str(out)) for r in todo]):
            fh.write(json.dumps(row) + "\n")
            fh.flush()
    shutil.rmtree(out / "untrained", ignore_errors=True)
    return 0


def profile_both(args: tuple[dict, str]) -> dict:
    row, out = args
    pg._one_thread("tensorflow")
    result = dict(row)
    for init in INITS:
        result[init] = pg.profile_one(row, Path(out), None, 120.0, mode="steps", init=init)
    return result


def cmd_run(args) -> int:
    out = Path(args.out)
    rows = [json.loads(line) for line in (out / "trained.jsonl").read_text().splitlines()]
    path = out / "profiles.jsonl"
    done = {json.loads(line)["run_id"] for line in path.read_text().splitlines()} if path.exists() else set()
    todo = [r for r in rows if r["run_id"] not in done]
    print(f"{len(todo)} trained files to profile twice", flush=True)
    with ProcessPoolExecutor(args.jobs) as pool, path.open("a") as fh:
        for result in pool.map(profile_both, [(r, str(out)) for r in todo]):
            fh.write(json.dumps(result) + "\n")
            fh.flush()
    return 0


def flagged(profile: dict) -> bool:
    """An error from the profile: RL023 or another measured rule."""
    return profile.get("rl023") == "error" or bool(profile.get("measured_errors"))


def cmd_score(args) -> int:
    rows = [json.loads(line) for out in args.out for line in (Path(out) / "profiles.jsonl").read_text().splitlines()]
    same = sum(1 for r in rows if r["val"] == r["grid_val"])
    print(f"{len(rows)} trained files; retraining reproduced the grid's validation metric exactly on {same}")
    print("\n| start | profile errors | recall (wrecked) | precision (wrecked) | precision (severe) | healthy flagged "
          "| RL023 without a verdict |")
    print("|---|---|---|---|---|---|---|")
    for init in INITS:
        wrecked = [r for r in rows if r["outcome"] in ("collapsed", "diverged")]
        hits = [r for r in rows if flagged(r[init])]
        severe = [r for r in hits if r["outcome"] in ("collapsed", "diverged") or (r.get("margin_lost") or 0) >= 0.5]
        healthy = [r for r in rows if r["outcome"] == "healthy"]
        caught = sum(flagged(r[init]) for r in wrecked)
        true_hits = sum(r["outcome"] in ("collapsed", "diverged") for r in hits)
        no_verdict = sum(r[init].get("twin_label") in ("twin-did-not-learn", "both-diverged") for r in rows)
        name = "fresh draw (`--init auto`)" if init == "auto" else "trained weights (`--init saved`)"
        print(f"| {name} | {len(hits)} | {caught}/{len(wrecked)} | {true_hits}/{len(hits)} | {len(severe)}/{len(hits)} "
              f"| {sum(flagged(r[init]) for r in healthy)}/{len(healthy)} | {no_verdict} |")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--grid-out", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--jobs", type=int, default=2)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("--jobs", type=int, default=2)
    s = sub.add_parser("score")
    s.add_argument("--out", action="append", required=True)
    args = ap.parse_args(argv)
    return {"make": cmd_make, "run": cmd_run, "score": cmd_score}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
