"""Does ``reglint profile --data`` predict wrecked trainings better than the
static rules? Runs it on the calibration grid's saved models with each run's
own training data, and scores both on the same runs.

    .venv/bin/python bench/profile_grid.py [--split held_out|fit|all]
        [--placements l2,l1,l1l2,activity,wd,bias,gamma] [--steps 50] [--limit N]

Needs ``bench/calibrate.py train`` first (the saved models and runs.jsonl).
Each (dataset, architecture) gets one ``.npz`` of its training split
(``x``, ``y``) under ``bench/out/calibration/npz/``; every profile runs in
this one process (TensorFlow is imported once), with the run's batch size,
``--steps`` optimizer steps and seed 0. Writes
``bench/out/calibration/profile_grid.json`` (per run: outcome, static and
measured error codes) and prints the score table: a run is flagged when it
has an error finding, static only versus static plus measured.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import calibrate as cal  # noqa: E402


def npz_for(rec: dict, out: Path) -> Path:
    import numpy as np

    path = out / "npz" / f"{rec['dataset']}-{rec['arch']}.npz"
    if not path.exists():
        data = cal.load_dataset(rec["dataset"])
        x = cal.inputs_for(data, rec["arch"], "train")
        y = data["ytr"] if data["task"] == "multiclass" else data["ytr"].reshape(-1, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=x, y=y)
    return path


def profile_one(rec: dict, out: Path, steps: int) -> dict:
    from reglint.cli.app import main

    report_path = out / "profile" / f"{rec['run_id']}.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    args = ["profile", str(out / rec["model_path"]), "--data", str(npz_for(rec, out)), "--steps", str(steps),
            "--batch-size", str(rec["batch_size"]), "--format", "json", "--output-file", str(report_path),
            "--device", "cpu"]
    sink = io.StringIO()
    with redirect_stdout(sink), redirect_stderr(sink):
        code = main(args)
    if code == 2 or not report_path.exists():
        return {"error": sink.getvalue().strip()[-300:]}
    report = json.loads(report_path.read_text())
    file = report["files"][0]
    findings = file["findings"]
    profile = ((file.get("model") or {}).get("analysis") or {}).get("profile") or {}
    return {
        "static_errors": sorted({f["code"] for f in findings if f["severity"] == "error" and not f.get("measured")}),
        "measured_errors": sorted({f["code"] for f in findings if f["severity"] == "error" and f.get("measured")}),
        "measured_label": (profile.get("outcome") or {}).get("label"),
        "seconds": (profile.get("seconds") or {}).get("run"),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="held_out", choices=("held_out", "fit", "all"))
    parser.add_argument("--placements", default="l2,l1,l1l2,activity,wd,bias,gamma,none")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--out", default=str(cal.DEFAULT_OUT))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    out = Path(args.out)
    runs = cal.load_runs(out)
    cal.label_runs(runs)
    placements = set(args.placements.split(","))
    chosen = [r for r in runs if r["outcome"] != "excluded" and r["placement"] in placements
              and (args.split == "all" or cal.split_of(r) == args.split)]
    if args.limit:
        chosen = chosen[: args.limit]
    print(f"profiling {len(chosen)} runs ({args.split}, {args.steps} steps each)", flush=True)
    t0 = time.time()
    rows = []
    for i, rec in enumerate(chosen, 1):
        result = profile_one(rec, out, args.steps)
        rows.append({"run_id": rec["run_id"], "split": cal.split_of(rec), "outcome": rec["outcome"], **result})
        if i % 20 == 0:
            print(f"  {i}/{len(chosen)} ({time.time() - t0:.0f} s)", flush=True)
    (out / "profile_grid.json").write_text(json.dumps(rows, indent=1))
    live = [r for r in rows if "error" not in r]
    print(f"\n{len(live)} profiled, {len(rows) - len(live)} refused or failed, {time.time() - t0:.0f} s\n")
    print(score_table(live))
    return 0


def score_table(rows: list[dict]) -> str:
    lines = ["| split | error findings | flagged | recall (wrecked) | precision | false alarms on healthy |",
             "|---|---|---|---|---|---|"]
    for split in sorted({r["split"] for r in rows}):
        part = [r for r in rows if r["split"] == split]
        for name, flag in (("static", lambda r: bool(r["static_errors"])),
                           ("measured", lambda r: bool(r["measured_errors"])),
                           ("static + measured", lambda r: bool(r["static_errors"] or r["measured_errors"]))):
            s = cal.score([flag(r) for r in part], part)
            lines.append(f"| {split} | {name} | {s['flagged']} | {cal._pct(s['recall'])} "
                         f"({s['wrecked_caught']}/{s['wrecked']}) | {cal._pct(s['precision'])} | "
                         f"{cal._pct(s['false_alarm'])} ({s['healthy_flagged']}/{s['healthy']}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
