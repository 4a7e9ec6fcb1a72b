"""What would RL023 say at the length of the real training? An offline
estimate from ``bench/profile_grid.py``'s stored reports, without profiling
again.

    .venv/bin/python bench/profile_horizon.py [--out DIR] [--error 0.7]

The twin's two runs start from the same saved weights and take the same
batches in the same order whatever their length, so the first H steps of a
profile run with the default budget are the steps a profile with
``--steps H`` would take. For every profiled run whose twin reached the
real training's length H (``train_steps``), this cuts both recorded series
at H and applies RL023's own judgment to the cut pair; runs whose twin
stopped earlier are judged on what was recorded (the default verdict). It
prints the error-finding scores of both, per split, against the training
outcomes. An estimate: records are spaced by the default budget, so the
final average covers a slightly different stretch than a run of H steps
would.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import calibrate as cal  # noqa: E402
from profile_grid import load_rows  # noqa: E402

from reglint.profile.result import TwinRun  # noqa: E402
from reglint.rules import rl023_penalty_hurts_training as rl023  # noqa: E402


def cut_run(run: dict, horizon: int) -> TwinRun:
    keep = [i for i, step in enumerate(run["step"]) if step <= horizon]

    def take(series):
        return None if series is None else [series[i] for i in keep]

    diverged = run.get("diverged_at")
    return TwinRun(step=take(run["step"]), data_loss=take(run["data_loss"]), val_loss=take(run.get("val_loss")),
                   val_accuracy=take(run.get("val_accuracy")), kernel_norm=take(run.get("kernel_norm")) or [],
                   angular_update=take(run.get("angular_update")),
                   diverged_at=diverged if diverged is not None and diverged <= horizon else None)


def judge_at(report: dict, horizon: int | None) -> tuple[str | None, str | None]:
    """(label, severity) of RL023 on the report's twin cut at ``horizon``."""
    profile = report["files"][0]["model"]["analysis"]["profile"]
    twin = profile.get("twin")
    if not twin:
        return None, None
    runs = twin["runs"]
    last = runs["penalized"]["step"][-1]
    h = horizon if horizon is not None and horizon < last else last
    pen, ref = cut_run(runs["penalized"], h), cut_run(runs["unregularized"], h)
    twin_ns = SimpleNamespace(penalized=pen, unregularized=ref, removed=twin["removed"], held_out=twin["held_out"],
                              synthetic=twin["synthetic"], budget=SimpleNamespace(steps=h, reason="cut"))
    result = SimpleNamespace(twin=twin_ns, outcome=SimpleNamespace(trivial_loss=profile["outcome"].get(
        "trivial_loss")), data=profile.get("data") or {})
    judgment = rl023.PenaltyHurtsTraining().judge(result)
    if judgment is None:
        return None, None
    return judgment.label, judgment.severity.value if judgment.severity else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(cal.DEFAULT_OUT))
    args = parser.parse_args(argv)
    out = Path(args.out)
    rl023._evidence = lambda result: {}  # the gradient evidence is not stored per run; not part of the verdict
    rows = [r for r in load_rows(out) if "error" not in r]
    table = []
    for row in rows:
        report = json.loads((out / "profile" / f"{row['run_id']}.json").read_text())
        default = judge_at(report, None)
        at_h = judge_at(report, row["train_steps"])
        table.append((row, default, at_h))
    print(f"{len(table)} profiled runs; RL023 error findings, default budget against the cut at the real "
          f"training's length:\n")
    print("| split | verdict at | flagged | recall (wrecked) | precision | false alarms on healthy |")
    print("|---|---|---|---|---|---|")
    for split in ("fit", "held_out"):
        part = [t for t in table if t[0]["split"] == split]
        for name, pick in (("default budget", 1), ("the training's length", 2)):
            flags = [t[pick][1] == "error" for t in part]
            s = cal.score(flags, [t[0] for t in part])
            print(f"| {split} | {name} | {s['flagged']} | {cal._pct(s['recall'])} ({s['wrecked_caught']}/"
                  f"{s['wrecked']}) | {cal._pct(s['precision'])} | {cal._pct(s['false_alarm'])} "
                  f"({s['healthy_flagged']}/{s['healthy']}) |")
    print("\nverdicts that change (default -> at the training's length):\n")
    for row, default, at_h in table:
        if default != at_h:
            print(f"  {row['run_id']:40s} {row['outcome']:9s} {default[0]}/{default[1]} -> {at_h[0]}/{at_h[1]} "
                  f"(H={row['train_steps']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
