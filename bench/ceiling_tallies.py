"""Tallies behind three statements of 2026-11-30 (the closing note of that
session, RL017's "A signal cut by a zero scale" and bench/CALIBRATION.md):

- ``shrink``: every penalized run of the grids re-linted from its saved
  model, its penalties split by what RL001 makes of them (front, behind a
  normalization, scale-invariant, absorbed, offset), with the largest
  coupled per-step shrink ``2*lr*l2/(1-mu)`` (SGD) over the kernels that
  carry the prediction (front or behind a normalization), by architecture,
  against the outcome and whether any error finding fired;
- ``early-stop``: default-budget profiles stopped early, by how far the
  penalized run's held-out margin fell over the patience window (a share
  of the twin's margin), against the outcome and RL023's verdict;
- ``gamma-cut``: each trained file's last normalizations' largest
  ``|gamma|`` (what RL017's signal cut compares with 1e-3), against the
  outcome.

    .venv/bin/python bench/ceiling_tallies.py shrink        # ~1 min (lint_file's cache helps)
    .venv/bin/python bench/ceiling_tallies.py early-stop
    .venv/bin/python bench/ceiling_tallies.py gamma-cut

Needs the grids' folders (``bench/out/*``: ``calibrate.py models`` restores
them from the records, and the profiles from ``profile_grid.py run``;
``trained_files.py make`` for the trained files).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
OUT = HERE / "out"
# (folder under bench/out, record, report file stem)
GRIDS = [("calibration", "calibration-runs.jsonl.gz", "all"),
         ("classic", "calibration-runs-classic-retrain.jsonl.gz", "classic"),
         ("modern", "calibration-runs-modern.jsonl.gz", "modern"),
         ("modern-r1", "calibration-runs-modern-r1.jsonl.gz", "modern"),
         ("modern-r2", "calibration-runs-modern-r2.jsonl.gz", "modern"),
         ("fresh", "calibration-runs-fresh.jsonl.gz", "fresh"),
         ("fresh-r1", "calibration-runs-fresh-r1.jsonl.gz", "fresh"),
         ("fresh-r2", "calibration-runs-fresh-r2.jsonl.gz", "fresh"),
         ("third", "calibration-runs-third.jsonl.gz", "third")]
SHRINK_BUCKETS = (0.1, 0.3, 0.5, 1.0, 3.0, float("inf"))


def outcomes(folder: str, stem: str) -> dict[str, str]:
    report = json.loads((OUT / folder / f"report-{stem}.json").read_text())
    return {run["run_id"]: run["outcome"] for run in report["per_run"]}


def penalty_kind(p) -> str:
    """What RL001 makes of a penalty (rules/rl001's Formula)."""
    if p.offset:
        return "offset"
    if p.absorbed:
        return "absorbed"
    if p.scale_invariant:
        return "invariant"
    return "behind" if p.behind_norm else "front"


def cmd_shrink() -> None:
    from calibration.features import analyse

    table: dict[tuple, Counter] = defaultdict(Counter)
    for folder, record, stem in GRIDS:
        if not (OUT / folder / "models").is_dir():
            print(f"skipped {folder}: no bench/out/{folder}/models", file=sys.stderr)
            continue
        labels = outcomes(folder, stem)
        with gzip.open(HERE / record, "rt") as fh:
            records = [json.loads(line) for line in fh]
        for rec in records:
            if rec["run_id"] not in labels or rec.get("placement") == "none":
                continue
            report = analyse(rec, OUT / folder)
            a = report.analysis
            if a is None or a.dynamics.family != "sgd":
                continue
            shrink = max((a.dynamics.coupled_shrink(p.l2) or 0.0 for p in a.active_penalties(include_invariant=True)
                          if p.penalty is not None and p.l2 and penalty_kind(p) in ("front", "behind")), default=0.0)
            if shrink < 0.1:
                continue
            bucket = next(b for b in SHRINK_BUCKETS if shrink < b)
            erred = any(f.severity.value == "error" for f in report.findings)
            table[(bucket, rec["arch"])][(labels[rec["run_id"]][:4], "error" if erred else "-")] += 1
    print("| shrink under | arch | (outcome, error finding): runs |\n|---|---|---|")
    for (bucket, arch), counts in sorted(table.items()):
        print(f"| {bucket:g} | {arch} | {dict(counts)} |")


def cmd_early_stop() -> None:
    from calibration.outcomes import label_runs
    from stall_tally import margins, outcome_class

    table: dict[float, Counter] = defaultdict(Counter)
    for folder in ("classic", "modern", "modern-r1", "third"):
        path = OUT / folder / "runs.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        runs = {run["run_id"]: run for run in rows}
        if not runs:
            print(f"skipped {folder}: no runs.jsonl", file=sys.stderr)
            continue
        label_runs(list(runs.values()))
        for line in (OUT / folder / "profile_grid.jsonl").read_text().splitlines():
            row = json.loads(line)
            path = OUT / folder / "profile" / f"{row['run_id']}.json"
            if not path.exists() or row["run_id"] not in runs:
                continue
            twin = json.loads(path.read_text())["files"][0]["model"]["analysis"]["profile"].get("twin")
            if not twin or "stopped improving" not in twin["budget"]["reason"]:
                continue
            pen, _ = margins(twin, twin["runs"]["penalized"])
            ref, _ = margins(twin, twin["runs"]["unregularized"])
            m_ref = sum(ref[-3:]) / 3
            if m_ref <= 0.15:
                continue
            fell = (max(pen[-4:]) - pen[-1]) / m_ref  # over the patience window
            bucket = next(b for b in (0.1, 0.2, 0.3, 0.5, float("inf")) if fell < b)
            table[bucket][(outcome_class(runs[row["run_id"]]), row.get("rl023") == "error")] += 1
    print("| fall under | (outcome, RL023 error): runs |\n|---|---|")
    for bucket, counts in sorted(table.items()):
        print(f"| {bucket:g} | {dict(counts)} |")


def cmd_gamma_cut() -> None:
    import reglint.rules.rl017_weights_collapsed as rl017
    from reglint.engine.runner import lint_file
    from reglint.engine.settings import Settings

    rl017.DEAD_SCALE = float("inf")  # every scale reads as dead: the walk returns each file's last normalizations
    levels = []
    for folder, stem in (("fresh-r2", "fresh"), ("modern-r2", "modern")):
        labels = outcomes(folder, stem)
        for path in sorted((OUT / f"trained-{folder}" / "models").glob("*.keras")):
            report = lint_file(str(path), Settings())
            cut = rl017.signal_cut(report.model, report.analysis)
            if cut:
                levels.append((max(cut.values()), labels.get(path.stem, "?"), path.stem))
    levels.sort()
    print(f"{len(levels)} trained files with a normalization on every path")
    for level, outcome, run in levels[:12]:
        print(f"  {level:.3g}  {outcome:9s} {run}")
    healthy = [level for level, outcome, _ in levels if outcome == "healthy"]
    print(f"smallest last-normalization scale of a healthy file: {min(healthy):.3g}" if healthy else "no healthy file")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("shrink", "early-stop", "gamma-cut"))
    args = parser.parse_args(argv)
    {"shrink": cmd_shrink, "early-stop": cmd_early_stop, "gamma-cut": cmd_gamma_cut}[args.what]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
