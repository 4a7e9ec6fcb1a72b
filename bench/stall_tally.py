"""Tally RL023's ``stalled`` verdicts against the real trainings' outcomes.

Reads the default-budget profiles ``profile_grid.py run`` stored for each
grid (``OUT/profile_grid.jsonl`` and ``OUT/profile/<run>.json``) and prints,
for every run RL023 called ``stalled``: its outcome (wrecked; degraded by at
least half its margin, "severe"; degraded less; healthy), whether the
unregularized twin had reached 90% of its final margin before the stall
ended, and whether the stall began after the penalized run had learned.
These are the numbers behind RL023's "Why ``stalled`` stays a warning".

    .venv/bin/python bench/stall_tally.py bench/out/classic bench/out/modern bench/out/modern-r1 bench/out/fresh
    .venv/bin/python bench/stall_tally.py --windows bench/out/fresh

``--windows`` reads every profiled run's curves instead and counts, by
outcome, the runs whose penalized run spent at least 3 records (before the
final 3) at chance, or at least 70% of the twin's margin short, while the
twin had learned: the stretch RL023 calls ``stalled`` since review 50 (at
chance only before), split by the verdict at the end of the budget.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibration.outcomes import label_runs

LEARNED = {"accuracy": 0.15, "loss": 0.20}  # reglint.engine.twin_metric
COLLAPSED = 0.05


def outcome_class(run: dict) -> str:
    if run["outcome"] in ("collapsed", "diverged"):
        return "wrecked"
    if run["outcome"] == "degraded":
        lost = run.get("margin_lost")
        return "severe" if lost is not None and lost >= 0.5 else "degraded"
    return run["outcome"]


def margins(twin: dict, run: dict) -> tuple[list[float], float]:
    """Per-record margins of one run and the 'learned' level."""
    held = twin["held_out"]
    if held.get("metric") == "accuracy":
        return [a - held["chance"] for a in run["val_accuracy"]], LEARNED["accuracy"]
    return [1 - v / held["trivial_loss"] for v in run["val_loss"]], LEARNED["loss"]


def stall_features(report: dict) -> tuple[bool, bool]:
    """(twin at 90% of its final margin before the stall ended, the stall
    began after the penalized run had learned)."""
    twin = report["analysis"]["profile"]["twin"]
    values = next(f["values"] for f in report["findings"] if f["code"] == "RL023")
    first, last = values["stalled_steps"]
    steps = twin["runs"]["penalized"]["step"]
    ref, learned = margins(twin, twin["runs"]["unregularized"])
    pen, _ = margins(twin, twin["runs"]["penalized"])
    final = sum(ref[-3:]) / 3
    converged = next(s for s, m in zip(steps, ref, strict=True) if m >= 0.9 * final)
    relapsed = any(m >= learned for s, m in zip(steps, pen, strict=True) if 0 < s < first)
    return converged <= last, relapsed


def harm_window(twin: dict, lost: float | None) -> bool:
    """Whether the penalized run spent 3 records in a row (before the final
    3) at chance (``lost`` None) or at least ``lost`` of the twin's margin
    short, while the twin had learned."""
    ref, learned = margins(twin, twin["runs"]["unregularized"])
    pen, _ = margins(twin, twin["runs"]["penalized"])
    run = 0
    for i in range(1, len(pen) - 3 + 1):
        m_pen, m_ref = pen[i], ref[i]
        harmed = m_ref >= learned and (m_pen <= COLLAPSED or (lost is not None and (m_ref - m_pen) / m_ref >= lost))
        run = run + 1 if harmed else 0
        if run >= 3:
            return True
    return False


def profiled(outs: list[str]):
    """(profile_grid row, the profile's JSON file entry, the run's record)
    for every profiled run of the grids in ``outs`` whose report exists."""
    for out in map(Path, outs):
        runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines() if line.strip()]
        label_runs(runs)
        by_id = {r["run_id"]: r for r in runs}
        for line in (out / "profile_grid.jsonl").read_text().splitlines():
            row = json.loads(line)
            path = out / "profile" / f"{row['run_id']}.json"
            if row["run_id"] in by_id and path.exists():
                yield row, json.loads(path.read_text())["files"][0], by_id[row["run_id"]]


def windows(outs: list[str]) -> None:
    """Runs with a harm window, by outcome and by the verdict at the end."""
    tally: Counter = Counter()
    totals: Counter = Counter()
    for row, doc, run in profiled(outs):
        twin = ((doc.get("model") or {}).get("analysis") or {}).get("profile", {}).get("twin")
        if not twin or not twin.get("held_out") or not twin.get("runs"):
            continue
        kind = outcome_class(run)
        totals[kind] += 1
        end = row.get("twin_label")
        if harm_window(twin, None):
            tally[("at chance", end, kind)] += 1
        if harm_window(twin, 0.7):
            tally[("chance or 70% short", end, kind)] += 1
    print(f"profiled runs by outcome: {dict(totals)}")
    for window in ("at chance", "chance or 70% short"):
        print(f"\nwindow {window}:")
        ends = sorted({end for w, end, _ in tally if w == window}, key=str)
        for end in ends:
            counts = {kind: tally[(window, end, kind)] for kind in ("wrecked", "severe", "degraded", "healthy")}
            print(f"  end verdict {end}: {counts}")


def main(outs: list[str]) -> None:
    classes, converged, relapsed = Counter(), Counter(), Counter()
    for row, doc, run in profiled(outs):
        if row.get("twin_label") == "stalled":
            report = {"analysis": doc["model"]["analysis"], "findings": doc["findings"]}
            kind = outcome_class(run)
            done_first, after = stall_features(report)
            classes[kind] += 1
            converged[(done_first, kind)] += 1
            if after:
                relapsed[kind] += 1
    total = sum(classes.values())
    harmed = classes["wrecked"] + classes["severe"]
    print(f"stalled: {total}; {dict(classes)}; severely harmed {harmed}/{total} = {harmed / max(total, 1):.0%}")
    print(f"twin at 90% of its margin before the stall ended: {dict(converged)}")
    print(f"stall began after the penalized run had learned: {dict(relapsed)}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--windows"]:
        windows(args[1:] or ["bench/out/fresh"])
    else:
        main(args or ["bench/out/classic", "bench/out/modern", "bench/out/modern-r1", "bench/out/fresh"])
