"""Does ``reglint profile --data`` predict wrecked trainings better than the
static rules, and does its unregularized twin (RL023) predict them on its
own? Runs it on the calibration grid's saved models with each run's own
training data, and scores every kind of finding on the same runs.

    .venv/bin/python bench/profile_grid.py run [--split held_out|fit|all]
        [--placements l2,l1,...] [--steps N] [--time-budget 60] [--limit N] [--every K]
    .venv/bin/python bench/profile_grid.py score [--error G] [--out DIR] [--also DIR] [--epochs | --train-steps]
        [--relint]
    .venv/bin/python bench/profile_grid.py seeds --seeds 0,1 [--out DIR] [--epochs | --train-steps]

Needs ``bench/calibrate.py train`` first (the saved models and runs.jsonl).
Each (dataset, architecture) gets one ``.npz`` of its training split
(``x``, ``y``) under ``<out>/npz/``; profile holds back a fifth of it for
the twin's held-out scores (the calibration's own validation split is never
shown to it). Every profile runs in this one process (TensorFlow imported
once), with the run's batch size, seed 0, the twin's own step budget (or
``--steps``) and ``--time-budget``. ``run`` appends one JSON line per run
to ``<out>/profile_grid.jsonl`` (resume-safe: runs already there are
skipped; ``--fresh`` starts over) with the static and measured error
codes, the twin's verdict, gap and margins, and the wall time of the whole
profile (load, gradients, both runs).

``score`` prints the tables: error findings of the static rules, of the
other measured rules, of RL023 alone and of all together, per split; then
the gap threshold sweep for RL023 on the fit split (the smallest threshold
at >= 95% precision for wrecked runs, the largest recall), scored on the
held-out split, and the wall-time distribution.
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

# Labels that are an error whatever the gap threshold (rules/rl023).
ALWAYS = ("diverged", "collapsed")
GAPPED = ("worse", "similar", "better")


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


def profile_one(rec: dict, out: Path, steps: int | None, time_budget: float, mode: str | None = None,
                backend: str = "auto", init: str | None = None, seed: int = 0) -> dict:
    """One profile. ``mode``: None, the default budget; "epochs",
    ``--epochs`` = the run's epochs (what a user's fit(epochs=E) means:
    E * ceil(n/32) steps); "steps", ``--steps`` = the optimizer steps the
    run's training really took (``training_steps``). ``init``: profile's
    ``--init`` (None: its default); ``seed``: profile's ``--seed`` (another
    held-back slice and batch order); reports go to a folder of their own."""
    from reglint.cli.app import main

    folder = (f"profile-{mode}" if mode else "profile") + (f"-init-{init}" if init else "") + _seed_tag(seed)
    report_path = out / folder / f"{rec['run_id']}.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    args = ["profile", str(out / rec["model_path"]), "--data", str(npz_for(rec, out)),
            "--batch-size", str(rec["batch_size"]), "--format", "json", "--output-file", str(report_path),
            "--device", "cpu", "--time-budget", str(time_budget), "--backend", backend, "--seed", str(seed)]
    if init:
        args += ["--init", init]
    if steps:
        args += ["--steps", str(steps)]
    elif mode == "epochs":
        args += ["--epochs", str(rec["epochs_run"])]
    elif mode == "steps":
        args += ["--steps", str(cal.training_steps(rec))]
    sink = io.StringIO()
    start = time.perf_counter()
    with redirect_stdout(sink), redirect_stderr(sink):
        code = main(args)
    wall = time.perf_counter() - start
    if code == 2 or not report_path.exists():
        return {"error": sink.getvalue().strip()[-300:], "wall_s": wall}
    report = json.loads(report_path.read_text())
    file = report["files"][0]
    findings = file["findings"]
    profile = ((file.get("model") or {}).get("analysis") or {}).get("profile") or {}
    twin = profile.get("twin") or {}
    rl023 = next((f for f in findings if f["code"] == "RL023"), None)
    values = (rl023 or {}).get("values") or {}
    return {
        # errors as the rules gave them, before any yielded to the twin
        # (``score`` applies the yield itself, so the "static" and
        # "measured" rows count what the rules said)
        "static_errors": sorted({f["code"] for f in findings if _was_error(f) and not f.get("measured")}),
        "measured_errors": sorted({f["code"] for f in findings if _was_error(f) and f.get("measured")
                                   and f["code"] != "RL023"}),
        "rl023": rl023["severity"] if rl023 else None,
        "measured_label": (profile.get("outcome") or {}).get("label"),
        "twin_label": (twin.get("verdict") or {}).get("label"),
        "twin_steps": twin.get("steps"),
        "budget_target": (twin.get("budget") or {}).get("target"),
        "twin": _twin_numbers(twin),
        "gap": values.get("gap"),
        "wall_s": wall,
        "seconds": profile.get("seconds"),
        "backend": profile.get("backend"),
    }


def _was_error(finding: dict) -> bool:
    """An error, or an error that yielded to the twin
    (``values.severity_before_twin``)."""
    return finding["severity"] == "error" or (finding.get("values") or {}).get("severity_before_twin") == "error"


def _twin_numbers(twin: dict) -> dict:
    """The final records of both runs (what RL023 judged), so thresholds
    can be swept without profiling again."""
    import math

    out = {"held_out": twin.get("held_out")}
    for name, run in (twin.get("runs") or {}).items():
        tail = {}
        for key in ("val_accuracy", "val_loss", "data_loss"):
            values = [v for v in (run.get(key) or [])[1:][-3:] if isinstance(v, (int, float))]
            tail[key] = sum(values) / len(values) if values else None
        tail["diverged_at"] = run.get("diverged_at")
        tail["start_loss"] = (run.get("data_loss") or [None])[0]
        out[name] = {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in tail.items()}
    return out


def cmd_run(args) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    out = Path(args.out)
    runs = cal.load_runs(out)
    cal.label_runs(runs)
    placements = set(args.placements.split(","))
    chosen = [r for r in runs if r["outcome"] != "excluded" and ("all" in placements or r["placement"] in placements)
              and (args.split == "all" or cal.split_of(r) == args.split)]
    chosen = chosen[:: args.every]
    if args.limit:
        chosen = chosen[: args.limit]
    path = out / rows_file(args.mode, args.seed)
    if args.fresh and path.exists():
        path.unlink()
    done = {json.loads(line)["run_id"] for line in path.read_text().splitlines()} if path.exists() else set()
    pending = [r for r in chosen if r["run_id"] not in done]
    if args.harmed_first:
        # Recall needs every harmed run; precision and false alarms are
        # estimated from the healthy runs, in a seeded shuffle so a partial
        # run covers every family.
        import random

        healthy = [r for r in pending if r["outcome"] == "healthy"]
        random.Random(0).shuffle(healthy)
        pending = [r for r in pending if r["outcome"] != "healthy"] + healthy
    print(f"profiling {len(pending)} runs ({len(chosen) - len(pending)} done; {args.split}, "
          f"steps {args.steps or 'auto'}, time budget {args.time_budget} s)", flush=True)
    t0 = time.time()
    for rec in pending:
        npz_for(rec, out)  # written once, before any worker reads it
    tasks = [(rec, str(out), args.steps, args.time_budget, args.mode, args.backend, args.seed) for rec in pending]
    pool = None
    if args.jobs > 1:
        import multiprocessing as mp

        pool = mp.get_context("spawn").Pool(args.jobs, initializer=_one_thread, initargs=(args.backend,))
        results = pool.imap_unordered(_profile_task, tasks)
    else:
        results = map(_profile_task, tasks)
    try:
        with path.open("a") as fh:
            for i, (rec, result) in enumerate(results, 1):
                row = {"run_id": rec["run_id"], "split": cal.split_of(rec), "outcome": rec["outcome"],
                       "placement": rec["placement"], "opt": rec["opt"], "arch": rec["arch"],
                       "dataset": rec["dataset"], "grid": rec.get("grid", "classic"), "lam": rec["lam"],
                       "train_steps": cal.training_steps(rec), **result}
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                if i % 10 == 0:
                    print(f"  {i}/{len(pending)} ({time.time() - t0:.0f} s)", flush=True)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    print(f"done in {time.time() - t0:.0f} s")
    return 0


def _one_thread(backend: str) -> None:
    """A --jobs worker: one thread per framework, so N workers use N cores."""
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ[name] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if backend == "torch" or os.environ.get("KERAS_BACKEND") == "torch":
        import torch

        torch.set_num_threads(1)


def _profile_task(task: tuple) -> tuple[dict, dict]:
    rec, out, steps, time_budget, mode, backend, seed = task
    return rec, profile_one(rec, Path(out), steps, time_budget, mode, backend, seed=seed)


# ---------------------------------------------------------------------------
# scoring


def _seed_tag(seed: int) -> str:
    return f"-seed{seed}" if seed else ""


def rows_file(mode: str | None, seed: int = 0) -> str:
    """The rows of one mode and profile seed (``profile_one``)."""
    return (f"profile_grid-{mode}" if mode else "profile_grid") + _seed_tag(seed) + ".jsonl"


def load_rows(out: Path, mode: str | None = None, seed: int = 0) -> list[dict]:
    """The profile rows of one grid folder, each with its run's
    ``margin_lost`` (calibration.outcomes) from ``runs.jsonl``."""
    path = out / rows_file(mode, seed)
    runs = cal.load_runs(out)
    cal.label_runs(runs)
    lost = {r["run_id"]: r.get("margin_lost") for r in runs}
    steps = {r["run_id"]: cal.training_steps(r) for r in runs}
    rows = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            row["margin_lost"] = lost.get(row["run_id"])
            row["train_steps"] = steps.get(row["run_id"], row.get("train_steps"))
            rows[row["run_id"]] = row
    return list(rows.values())


def rl023_default_gap() -> float:
    """RL023's ``twin-gap-error`` as the rule ships it."""
    from reglint.engine.rule import get_rule

    return get_rule("RL023").options["twin-gap-error"].default


def twin_flag(row: dict, error_gap: float) -> bool:
    """RL023 at error with the gap threshold ``error_gap`` (its labels are
    independent of the threshold except ``worse``)."""
    if row.get("twin_label") in ALWAYS:
        return True
    gap = row.get("gap")
    if gap is None:
        gap = recomputed_gap(row)
    return row.get("twin_label") in GAPPED and gap is not None and gap >= error_gap


def recomputed_gap(row: dict) -> float | None:
    """The gap from the stored final records (rows whose finding was below
    the warning level carry no gap)."""
    twin = row.get("twin") or {}
    held = twin.get("held_out") or {}
    pen, ref = twin.get("penalized") or {}, twin.get("unregularized") or {}
    if held.get("chance") is not None and pen.get("val_accuracy") is not None:
        m_pen, m_ref = pen["val_accuracy"] - held["chance"], ref["val_accuracy"] - held["chance"]
    elif held.get("trivial_loss") and isinstance(pen.get("val_loss"), float):
        m_pen, m_ref = 1 - pen["val_loss"] / held["trivial_loss"], 1 - ref["val_loss"] / held["trivial_loss"]
    else:
        return None
    return (m_ref - m_pen) / m_ref if m_ref > 0 else None


def predicting_rules() -> set[str]:
    """The codes whose errors yield to a twin that learned as well
    (``Rule.predicts_outcome``)."""
    from reglint.engine.rule import all_rules

    return {code for code, rule in all_rules().items() if rule.predicts_outcome}


def learned_as_well(row: dict) -> bool:
    """RL023's own ``learned_as_well`` asked of a stored row: its verdict
    and gap, judged at the training's length when the row was profiled
    with ``--steps`` or ``--epochs`` (``row["mode"]``), on real held-back
    data (every grid profile has ``--data``)."""
    from types import SimpleNamespace

    from reglint.engine.rule import get_rule

    gap = row.get("gap") if row.get("gap") is not None else recomputed_gap(row)
    twin = SimpleNamespace(synthetic=False, held_out=(row.get("twin") or {}).get("held_out") or {"kept": True},
                           budget=SimpleNamespace(early_stop=row.get("mode") not in ("steps", "epochs")))
    judgment = SimpleNamespace(label=row.get("twin_label"), values={"gap": gap})
    return get_rule("RL023")().learned_as_well(SimpleNamespace(twin=twin), judgment)


def shipped_flag(row: dict, error_gap: float, predicting: set[str]) -> bool:
    """What ``reglint profile --data`` reports as errors: RL023's, and the
    static and measured errors, those of rules that predict the outcome
    made warnings when the twin learned as well
    (``reglint.profile.findings.yield_to_twin``)."""
    if twin_flag(row, error_gap):
        return True
    errors = set(row["static_errors"]) | set(row["measured_errors"])
    if learned_as_well(row):
        errors -= predicting
    return bool(errors)


def score_table(rows: list[dict], error_gap: float) -> str:
    lines = ["| split | error findings | flagged | recall (wrecked) | precision | precision, severe (wrecked or lost "
             ">= half the margin) | precision, degraded counted as harmed | false alarms on healthy |",
             "|---|---|---|---|---|---|---|---|"]
    kinds = (("static", lambda r: bool(r["static_errors"])),
             ("measured, RL023 left out", lambda r: bool(r["measured_errors"])),
             ("twin (RL023)", lambda r: twin_flag(r, error_gap)),
             ("static + measured + twin", lambda r: bool(r["static_errors"] or r["measured_errors"]
                                                         or twin_flag(r, error_gap))),
             ("**as shipped**: the above, predictions yielding to a twin that learned as well",
              lambda r: shipped_flag(r, error_gap, predicting)))
    predicting = predicting_rules()
    for split in sorted({r["split"] for r in rows}):
        part = [r for r in rows if r["split"] == split]
        for name, flag in kinds:
            flags = [flag(r) for r in part]
            s, harmed = cal.score(flags, part), cal.score(flags, part, target="harmed")
            severe = cal.score(flags, part, target="severe")
            lines.append(f"| {split} | {name} | {s['flagged']} | {cal._pct(s['recall'])} "
                         f"({s['wrecked_caught']}/{s['wrecked']}) | {cal._pct(s['precision'])} | "
                         f"{cal._pct(severe['precision'])} | {cal._pct(harmed['precision'])} | "
                         f"{cal._pct(s['false_alarm'])} ({s['healthy_flagged']}/{s['healthy']}) |")
    return "\n".join(lines)


def sweep_gap(rows: list[dict], precision: float = 0.95) -> tuple[float | None, list[str]]:
    """The smallest error gap with ``precision`` on the fit split, and a table."""
    fit = [r for r in rows if r["split"] == "fit"]
    held = [r for r in rows if r["split"] == "held_out"]
    lines = ["| gap threshold | fit recall | fit precision | held-out recall | held-out precision |",
             "|---|---|---|---|---|"]
    chosen = None
    for t in (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01):
        sf = cal.score([twin_flag(r, t) for r in fit], fit)
        sh = cal.score([twin_flag(r, t) for r in held], held)
        lines.append(f"| {t:g} | {cal._pct(sf['recall'])} | {cal._pct(sf['precision'])} | "
                     f"{cal._pct(sh['recall'])} | {cal._pct(sh['precision'])} |")
        if chosen is None and sf["precision"] is not None and sf["precision"] >= precision:
            chosen = t
    return chosen, lines


def sweep_warning(rows: list[dict]) -> list[str]:
    """RL023 at warning or above against *harmed* runs (degraded or worse),
    per split: where the warning level keeps healthy runs quiet."""
    lines = ["| warning gap | split | recall (harmed) | precision (harmed) | healthy warned |", "|---|---|---|---|---|"]
    for t in (0.1, 0.15, 0.2, 0.25, 0.3, 0.4):
        for split in ("fit", "held_out"):
            part = [r for r in rows if r["split"] == split]
            s = cal.score([twin_flag(r, t) for r in part], part, target="harmed")
            lines.append(f"| {t:g} | {split} | {cal._pct(s['recall'])} | {cal._pct(s['precision'])} | "
                         f"{cal._pct(s['false_alarm'])} ({s['healthy_flagged']}/{s['healthy']}) |")
    return lines


def label_table(rows: list[dict]) -> str:
    """Twin verdicts against the training outcomes."""
    from collections import Counter

    counts = Counter((r.get("twin_label"), r["outcome"]) for r in rows)
    outcomes = ("healthy", "degraded", "collapsed", "diverged")
    labels = sorted({k[0] or "-" for k in counts})
    lines = ["| twin verdict | " + " | ".join(outcomes) + " |", "|---" * (len(outcomes) + 1) + "|"]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(str(counts.get((None if label == '-' else label, o), 0))
                                                   for o in outcomes) + " |")
    return "\n".join(lines)


def relint(rows: list[dict], out: Path) -> None:
    """Replaces ``static_errors`` with today's rules' verdict on the saved
    model (``calibration.features.analyse``: the run's own context)."""
    from calibration.features import analyse

    runs = {r["run_id"]: r for r in cal.load_runs(out)}
    for row in rows:
        rec = runs.get(row["run_id"])
        if rec is None or "error" in row:
            continue
        report = analyse(rec, out)
        row["static_errors"] = sorted({f.code for f in report.findings if f.severity.value == "error"})


def cmd_score(args) -> int:
    every = []
    for out in [args.out, *(args.also or [])]:
        rows_of_out = load_rows(Path(out), args.mode)
        for row in rows_of_out:
            row["mode"] = args.mode
        if args.relint:
            relint(rows_of_out, Path(out))
        every.extend(rows_of_out)
    rows = [r for r in every if "error" not in r]
    failed = [r for r in every if "error" in r]
    print(f"{len(rows)} profiled, {len(failed)} refused or failed")
    for r in failed[:5]:
        print("  failed:", r["run_id"], r["error"][:200])
    chosen, lines = sweep_gap(rows)
    print("\nRL023 gap threshold, error findings (chosen on the fit split: the smallest with >= 95% precision):\n")
    print("\n".join(lines))
    # Without --error, the sweep's choice; where no gap reaches 95% on the
    # fit split (or there is none), RL023's own default level.
    gap = args.error if args.error is not None else chosen if chosen is not None else rl023_default_gap()
    print(f"\nscores at gap {gap:g}:\n")
    print(score_table(rows, gap))
    print("\nRL023 warning level against harmed runs (degraded, collapsed or diverged):\n")
    print("\n".join(sweep_warning(rows)))
    print("\ntwin verdicts against the training outcomes (all splits):\n")
    print(label_table(rows))
    walls = sorted(r["wall_s"] for r in rows)
    if walls:
        print(f"\nwall time per profile: median {walls[len(walls) // 2]:.1f} s, max {walls[-1]:.1f} s; "
              f"over 120 s: {sum(w > 120 for w in walls)}")
    return 0


def cmd_seeds(args) -> int:
    """Error findings (measured + RL023) of the same runs profiled with
    several ``--seed``s, per split: each seed alone, then "at least k of n"
    seeds. Runs missing or failed under any seed are left out, and counted."""
    seeds = [int(s) for s in args.seeds.split(",")]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"--seeds lists a seed twice: {args.seeds}")
    by_seed = {}
    for seed in seeds:
        path = Path(args.out) / rows_file(args.mode, seed)
        if not path.exists():
            raise SystemExit(f"{path}: no rows for seed {seed} (profile_grid.py run --seed {seed} first)")
        by_seed[seed] = {r["run_id"]: r for r in load_rows(Path(args.out), args.mode, seed) if "error" not in r}
    ids = sorted(set.intersection(*(set(rows) for rows in by_seed.values())))
    dropped = {seed: len(rows) - len(ids) for seed, rows in by_seed.items()}
    gap = args.error if args.error is not None else rl023_default_gap()
    print(f"{len(ids)} runs profiled with every seed {seeds}, RL023 error gap {gap:g}; left out (missing or failed "
          f"under another seed): {dropped}\n")
    print("| split | error findings (measured + twin) | flagged | recall (wrecked) | precision | precision, severe | "
          "healthy flagged |\n|---|---|---|---|---|---|---|")
    for split in sorted({by_seed[seeds[0]][i]["split"] for i in ids}):
        part = [i for i in ids if by_seed[seeds[0]][i]["split"] == split]
        base = [by_seed[seeds[0]][i] for i in part]
        flags = {s: [bool(by_seed[s][i]["measured_errors"]) or twin_flag(by_seed[s][i], gap) for i in part]
                 for s in seeds}
        rows = [(f"seed {s}", flags[s]) for s in seeds]
        rows += [(f"at least {k} of {len(seeds)} seeds",
                  [sum(flags[s][j] for s in seeds) >= k for j in range(len(part))]) for k in range(1, len(seeds) + 1)]
        for name, flagged in rows:
            sc, severe = cal.score(flagged, base), cal.score(flagged, base, target="severe")
            print(f"| {split} | {name} | {sc['flagged']} | {cal._pct(sc['recall'])} ({sc['wrecked_caught']}/"
                  f"{sc['wrecked']}) | {cal._pct(sc['precision'])} | {cal._pct(severe['precision'])} | "
                  f"{sc['healthy_flagged']}/{sc['healthy']} |")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--split", default="all", choices=("held_out", "fit", "all"))
    run.add_argument("--placements", default="all", help="comma-separated placements, or all")
    run.add_argument("--steps", type=int, default=None)
    run.add_argument("--time-budget", type=float, default=60.0)
    run.add_argument("--limit", type=int, default=0)
    run.add_argument("--every", type=int, default=1, help="profile every K-th run of the selection")
    run.add_argument("--fresh", action="store_true")
    run.add_argument("--harmed-first", action="store_true",
                     help="profile degraded, collapsed and diverged runs first, then healthy ones shuffled")
    run.add_argument("--seed", type=int, default=0, help="profile's --seed (rows go to a file of their own)")
    run.add_argument("--jobs", type=int, default=1, help="profiles in parallel (one thread each)")
    run.add_argument("--backend", default="auto", choices=("auto", "tensorflow", "torch"),
                     help="reglint profile --backend (rows record the one used)")
    score = sub.add_parser("score")
    score.add_argument("--error", type=float, default=None, help="score at this gap (default: the sweep's)")
    score.add_argument("--also", action="append", metavar="OUT",
                       help="score the rows of this folder too (another seed of the grid: calibrate.py train "
                            "--replicate K); repeatable")
    score.add_argument("--relint", action="store_true",
                       help="recompute each row's static errors with today's rules (the saved model linted with "
                            "its run's samples, batch size and epochs) instead of those stored at profile time")
    seeds = sub.add_parser("seeds", help="the same runs profiled with several --seed: agreement and k-of-n scores")
    seeds.add_argument("--seeds", default="0,1", help="comma-separated profile seeds (rows of `run --seed`)")
    seeds.add_argument("--error", type=float, default=None, help="RL023's error gap (default: the rule's)")
    for p in (run, score, seeds):
        p.add_argument("--out", default=str(cal.DEFAULT_OUT))
        mode = p.add_mutually_exclusive_group()
        mode.add_argument("--epochs", dest="mode", action="store_const", const="epochs",
                          help="profile with --epochs = each run's own epochs (E * ceil(n/32) steps); rows in "
                               "profile_grid-epochs.jsonl, reports in profile-epochs/")
        mode.add_argument("--train-steps", dest="mode", action="store_const", const="steps",
                          help="profile with --steps = the steps each run's training really took "
                               "(calibration.train.training_steps); rows in profile_grid-steps.jsonl, reports in "
                               "profile-steps/")
    args = parser.parse_args(argv)
    return {"run": cmd_run, "score": cmd_score, "seeds": cmd_seeds}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
