"""Scoring: the ``report`` and ``sweep`` commands.

``report`` lints every saved model with reglint (training context N, B, E
from the run), joins findings with outcomes and scores each rule code and
severity on the fit and held-out splits, per grid. ``sweep FEATURE`` bins a
feature computed from ``reglint.engine.analysis.Analysis`` on the fit split
and suggests the smallest threshold with >= 95% precision for "wrecked"
(best recall), then scores it on the held-out split.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

from .features import FEATURES, lint_all
from .grid import HELD_OUT_ARCHS, HELD_OUT_DATASETS
from .outcomes import group_key, label_runs, load_runs, severe, split_of, wrecked

TARGETS = {
    "wrecked": lambda r: r.get("outcome") in ("diverged", "collapsed"),
    "diverged": lambda r: r.get("outcome") == "diverged",
    "harmed": lambda r: r.get("outcome") in ("diverged", "collapsed", "degraded"),
    "severe": severe,
}


def score(flags: list[bool], runs: list[dict], target: str = "wrecked") -> dict:
    """recall of the target outcome, precision for it, false-alarm rate on
    healthy runs (a flagged run that is not the target counts against
    precision even when it is degraded)."""
    pos = TARGETS[target]
    tp = sum(1 for f, r in zip(flags, runs) if f and pos(r))
    fp = sum(1 for f, r in zip(flags, runs) if f and not pos(r))
    fa = sum(1 for f, r in zip(flags, runs) if f and r["outcome"] == "healthy")
    n_pos = sum(1 for r in runs if pos(r))
    n_healthy = sum(1 for r in runs if r["outcome"] == "healthy")
    flagged = tp + fp
    return {
        "target": target, "flagged": flagged, "wrecked_caught": tp, "wrecked": n_pos, "healthy": n_healthy,
        "healthy_flagged": fa,
        "recall": tp / n_pos if n_pos else None,
        "precision": tp / flagged if flagged else None,
        "false_alarm": fa / n_healthy if n_healthy else None,
    }


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def scored_runs(args) -> tuple[list[dict], Path]:
    """Every run labelled (baselines may come from the other grid) and
    linted; then only the runs of ``args.grid`` (classic, modern or all)."""
    out = Path(args.out)
    runs = load_runs(out)
    if not runs:
        raise SystemExit(f"no runs in {out / 'runs.jsonl'}: run `calibrate.py train` or `models` first")
    label_runs(runs)
    chosen = [r for r in runs if args.grid == "all" or r.get("grid", "classic") == args.grid]
    lint_all(chosen, out)
    return chosen, out


OUTCOMES = ("healthy", "degraded", "collapsed", "diverged")


# ----------------------------------------------------------------------------
# sweep command


def _bins(values: list[float]) -> list[float]:
    pos = [v for v in values if v > 0]
    if not pos:
        return []
    lo = math.floor(2 * math.log10(min(pos))) / 2
    hi = math.ceil(2 * math.log10(max(pos))) / 2 + 0.5
    edges, e = [], lo
    while e <= hi + 1e-9:
        edges.append(10 ** e)
        e += 0.5
    return edges


def bin_table(runs: list[dict], feature: str) -> list[dict]:
    vals = [(r["features"].get(feature), r) for r in runs if r["features"].get(feature) is not None]
    edges = _bins([v for v, _ in vals])
    rows = []
    zero = [r for v, r in vals if v <= 0]
    if zero:
        rows.append({"bin": "0", **Counter(r["outcome"] for r in zero)})
    for lo, hi in zip(edges, edges[1:]):
        members = [r for v, r in vals if lo <= v < hi]
        if members:
            rows.append({"bin": f"[{lo:.3g}, {hi:.3g})", **Counter(r["outcome"] for r in members)})
    return rows


def suggest_threshold(runs: list[dict], feature: str, precision: float,
                      target: str = "wrecked") -> dict | None:
    """The threshold t (flag when feature >= t) with the best recall of
    ``target`` among those whose precision is >= ``precision`` (the smallest
    such t on ties); runs without the feature count as not flagged."""
    vals = sorted({r["features"].get(feature) for r in runs
                   if r["features"].get(feature) is not None and r["features"].get(feature) > 0})
    best = None
    for t in vals:
        flags = [(r["features"].get(feature) or 0) >= t for r in runs]
        s = score(flags, runs, target)
        if s["precision"] is None or s["precision"] < precision or not s["wrecked_caught"]:
            continue
        if best is None or s["wrecked_caught"] > best["score"]["wrecked_caught"]:
            best = {"threshold": t, "score": s}
    if best is None:
        return None
    t = best["threshold"]
    below = [v for v in vals if v < t]
    best["gap_below"] = below[-1] if below else None
    return best


def applicable(runs: list[dict], feature: str) -> list[dict]:
    return [r for r in runs if r["features"].get(feature) is not None]


def _flag(r: dict, feature: str, t: float) -> bool:
    return (r["features"].get(feature) or 0) >= t


def _score_row(name: str, sc: dict) -> str:
    return (f"| {name} | {sc['flagged']} | {_pct(sc['recall'])} ({sc['wrecked_caught']}/{sc['wrecked']}) "
            f"| {_pct(sc['precision'])} | {_pct(sc['false_alarm'])} ({sc['healthy_flagged']}/{sc['healthy']}) |")


SCORE_HEAD = ["| split | flagged | recall | precision | false alarms on healthy |", "|---|---|---|---|---|"]


def splits_of(runs: list[dict]) -> tuple[list[dict], list[dict]]:
    fit = [r for r in runs if split_of(r) == "fit" and r["outcome"] != "excluded"]
    held = [r for r in runs if split_of(r) == "held_out" and r["outcome"] != "excluded"]
    return fit, held


def sweep_one(runs: list[dict], feature: str, precision: float, lines: list[str],
              rho_threshold: float | None = None) -> dict:
    fit, held = splits_of(runs)
    fit_a, held_a = applicable(fit, feature), applicable(held, feature)
    lines.append(f"\n### {feature}\n\n{FEATURES.get(feature, '')}\n")
    lines.append(f"fit split: {len(fit_a)} runs with the feature defined (of {len(fit)}); "
                 f"held-out: {len(held_a)} (of {len(held)})\n")
    result = {"feature": feature, "fit_runs": len(fit_a), "held_out_runs": len(held_a)}
    for name, population in (("fit", fit_a), ("held-out", held_a)):
        table = bin_table(population, feature)
        lines.append(f"\n{name} split, outcome counts per half-decade bin:\n")
        lines.append("| bin | " + " | ".join(OUTCOMES) + " | wrecked share |")
        lines.append("|---|" + "---|" * (len(OUTCOMES) + 1))
        for row in table:
            counts = [row.get(o, 0) for o in OUTCOMES]
            total = sum(counts)
            share = (row.get("collapsed", 0) + row.get("diverged", 0)) / total if total else 0
            lines.append(f"| {row['bin']} | " + " | ".join(str(c) for c in counts) + f" | {100*share:.0f}% |")
        result[f"bins_{name}"] = table
    for target, prec in (("wrecked", precision), ("diverged", precision), ("harmed", 0.9)):
        sug = suggest_threshold(fit_a, feature, prec, target)
        key = "suggestion" if target == "wrecked" else f"suggestion_{target}"
        result[key] = sug
        if sug is None:
            lines.append(f"\n{target}: no threshold reaches {100*prec:.0f}% precision on the fit split\n")
            continue
        t = sug["threshold"]
        held_score = score([_flag(r, feature, t) for r in held_a], held_a, target)
        sug["held_out"] = held_score
        if target == "wrecked":
            result["held_out"] = held_score
        below = "none" if sug["gap_below"] is None else f"{sug['gap_below']:.4g}"
        lines.append(f"\n**{target}** (precision >= {100*prec:.0f}% on fit): **{feature} >= {t:.4g}** "
                     f"(largest fit value below it: {below})\n")
        lines.extend(SCORE_HEAD)
        lines.append(_score_row("fit", sug["score"]))
        lines.append(_score_row("held-out", held_score))
        if target != "wrecked":
            continue
        for fam in ("sgd", "adaptive"):
            sub_fit = [r for r in fit_a if r["features"].get("family") == fam]
            sub_held = [r for r in held_a if r["features"].get("family") == fam]
            if not sub_fit:
                continue
            fs = score([_flag(r, feature, t) for r in sub_fit], sub_fit)
            hs = score([_flag(r, feature, t) for r in sub_held], sub_held)
            own = suggest_threshold(sub_fit, feature, precision)
            own_t = f"{own['threshold']:.4g}" if own else "none"
            lines.append(_score_row(f"{fam} only, fit", fs))
            lines.append(_score_row(f"{fam} only, held-out", hs))
            lines.append(f"| {fam} only: its own fit threshold | {own_t} | | | |")
            result[f"family_{fam}"] = {"fit": fs, "held_out": hs,
                                       "own_threshold": own["threshold"] if own else None}
        # What the feature adds beyond rho: wrecked runs rho does not catch.
        if feature != "rho" and rho_threshold is not None:
            rest_fit = [r for r in fit_a if (r["features"].get("rho") or 0) < rho_threshold]
            rest_held = [r for r in held_a if (r["features"].get("rho") or 0) < rho_threshold]
            fs = score([_flag(r, feature, t) for r in rest_fit], rest_fit)
            hs = score([_flag(r, feature, t) for r in rest_held], rest_held)
            lines.append(_score_row(f"rho < {rho_threshold:.3g}, fit", fs))
            lines.append(_score_row(f"rho < {rho_threshold:.3g}, held-out", hs))
            result["beyond_rho"] = {"rho_threshold": rho_threshold, "fit": fs, "held_out": hs}
    return result


def cmd_sweep(args) -> int:
    runs, out = scored_runs(args)
    names = list(FEATURES) if args.feature == "all" else [args.feature]
    for name in names:
        if name not in FEATURES:
            raise SystemExit(f"unknown feature {name}; one of {', '.join(FEATURES)} or all")
    fit, _ = splits_of(runs)
    rho_sug = suggest_threshold(applicable(fit, "rho"), "rho", args.precision)
    rho_t = rho_sug["threshold"] if rho_sug else None
    lines: list[str] = []
    results = [sweep_one(runs, name, args.precision, lines, rho_t) for name in names]
    text = "\n".join(lines)
    print(text)
    target = out / ("sweep.json" if args.feature == "all" else f"sweep_{args.feature}.json")
    target.write_text(json.dumps(results, indent=1, default=str))
    (target.with_suffix(".md")).write_text(text + "\n")
    return 0


# ----------------------------------------------------------------------------
# report command


def cmd_report(args) -> int:
    runs, out = scored_runs(args)
    live = [r for r in runs if r["outcome"] != "excluded"]
    splits = {"fit": [r for r in live if split_of(r) == "fit"],
              "held_out": [r for r in live if split_of(r) == "held_out"]}
    lines = ["# reglint calibration report", "",
             f"grid: {args.grid}; runs: {len(runs)}; excluded (baseline failed): {len(runs) - len(live)}; "
             f"held-out datasets: {', '.join(HELD_OUT_DATASETS)}; held-out architectures: "
             f"{', '.join(HELD_OUT_ARCHS)}", ""]
    lines += _outcome_table(runs) + _feature_table(live)
    result = {"grid": args.grid, "runs": len(runs), "excluded": len(runs) - len(live),
              "held_out_datasets": HELD_OUT_DATASETS, "held_out_archs": HELD_OUT_ARCHS,
              "outcomes": dict(Counter(r["outcome"] for r in runs))}
    lines += _rule_table(splits, result) + _error_table(splits, result)
    lint_errors = [r["run_id"] for r in runs if r.get("lint_error")]
    if lint_errors:
        lines += ["", f"lint errors ({len(lint_errors)}): " + ", ".join(lint_errors[:20])]
    text = "\n".join(lines) + "\n"
    print(text)
    (out / f"report-{args.grid}.md").write_text(text)
    keys = ("run_id", "grid", "dataset", "arch", "opt", "placement", "lam", "outcome", "why", "val_metric",
            "baseline_val", "chance", "initial_data_loss", "final_data_loss", "initial_penalty", "final_penalty",
            "kernel_sq_init", "kernel_sq_final", "features", "findings")
    result["per_run"] = [{k: r.get(k) for k in keys} for r in runs]
    (out / f"report-{args.grid}.json").write_text(json.dumps(result, indent=1, default=str))
    return 0


def _outcome_table(runs: list[dict]) -> list[str]:
    lines = ["## Outcomes", "", "| slice | " + " | ".join(OUTCOMES) + " | excluded |",
             "|---|" + "---|" * (len(OUTCOMES) + 1)]
    for attr in ("dataset", "placement", "opt", "arch"):
        by = defaultdict(Counter)
        for r in runs:
            by[r[attr]][r["outcome"]] += 1
        for k in sorted(by):
            c = by[k]
            lines.append(f"| {attr}={k} | " + " | ".join(str(c.get(o, 0)) for o in OUTCOMES)
                         + f" | {c.get('excluded', 0)} |")
    excluded_groups = sorted({"/".join(group_key(r)) for r in runs if r["outcome"] == "excluded"})
    if excluded_groups:
        lines += ["", "excluded groups (baseline failed): " + ", ".join(excluded_groups)]
    return lines


def _feature_table(live: list[dict]) -> list[str]:
    lines = ["", "## Raw features by outcome (fit + held-out, median [min, max])", "",
             "| feature | " + " | ".join(OUTCOMES) + " |", "|---|" + "---|" * len(OUTCOMES)]
    for feat in FEATURES:
        cells = []
        for o in OUTCOMES:
            vals = sorted(r["features"][feat] for r in live
                          if r["outcome"] == o and r["features"].get(feat) is not None)
            cells.append(f"{vals[len(vals)//2]:.3g} [{vals[0]:.3g}, {vals[-1]:.3g}] n={len(vals)}" if vals else "-")
        lines.append(f"| {feat} | " + " | ".join(cells) + " |")
    return lines


def _score_cells(s: dict) -> str:
    return (f"{s['flagged']} | {_pct(s['recall'])} ({s['wrecked_caught']}/{s['wrecked']}) | {_pct(s['precision'])} "
            f"| {_pct(s['false_alarm'])} ({s['healthy_flagged']}/{s['healthy']}) |")


def _rule_table(splits: dict[str, list[dict]], result: dict) -> list[str]:
    population = [r for part in splits.values() for r in part]
    codes = sorted({(f["code"], f["severity"]) for r in population for f in r.get("findings", [])})
    result["rules"] = {}
    lines = ["", "## Rules (a run is flagged by a code/severity if any finding has it)", ""]
    if not codes:
        return [*lines, "no findings"]
    lines += ["| code | severity | split | flagged | recall (wrecked) | precision | false alarms on healthy |",
              "|---|---|---|---|---|---|---|"]
    for code, sev in codes:
        for name, part in splits.items():
            flags = [any(f["code"] == code and f["severity"] == sev for f in r["findings"]) for r in part]
            s = score(flags, part)
            result["rules"].setdefault(f"{code}:{sev}", {})[name] = s
            lines.append(f"| {code} | {sev} | {name} | " + _score_cells(s))
    return lines


def has_error(rec: dict) -> bool:
    return any(f["severity"] == "error" for f in rec.get("findings", []))


def _error_table(splits: dict[str, list[dict]], result: dict) -> list[str]:
    """Any error finding, per split, per grid and per architecture family."""
    lines = ["", "## Any error-severity finding", "",
             "| split | slice | flagged | recall (wrecked) | precision | false alarms on healthy |",
             "|---|---|---|---|---|---|"]
    result["error_overall"] = {}
    for name, part in splits.items():
        slices = {"all": part}
        for key in ("grid", "arch"):
            for value in sorted({r.get(key, "classic") for r in part}):
                slices[f"{key}={value}"] = [r for r in part if r.get(key, "classic") == value]
        for label, members in slices.items():
            s = score([has_error(r) for r in members], members)
            result["error_overall"].setdefault(name, {})[label] = s
            lines.append(f"| {name} | {label} | " + _score_cells(s))
    held = splits["held_out"]
    missed = [r["run_id"] for r in held if wrecked(r) and not has_error(r)]
    false = [r["run_id"] for r in held if r["outcome"] == "healthy" and has_error(r)]
    result["held_out_error_missed"], result["held_out_error_false_alarms"] = missed, false
    if missed:
        lines += ["", f"held-out wrecked runs with no error finding ({len(missed)}): " + ", ".join(missed)]
    if false:
        lines += ["", f"held-out healthy runs with an error finding ({len(false)}): " + ", ".join(false)]
    return lines

