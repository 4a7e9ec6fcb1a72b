"""How well can *any* predictor that sees only the recipe do? The seeds' own ceiling.

A static rule reads a file's recipe: architecture, regularizers, optimizer.
Two trainings of the same recipe on the same data for the same number of
steps, differing only in the seed (initial weights and batch order), can
end differently: one wrecked, one healthy. A verdict that is the same for
every seed of a recipe therefore cannot beat the recipe's own
reproducibility. This script measures that ceiling on grids trained with
several seeds (``calibrate.py train --replicate K``): for each recipe it
counts the seeds whose training was wrecked (diverged or collapsed), and
scores the recipe-level predictor "wrecked when at least k of the n seeds
were" against every seed's outcome, for k = 1..n. The predictor is chosen
*in-sample* (it knows the outcomes it is scored on), so the ceiling is
optimistic: a real rule does no better.

A static rule does not see the data either: the second table groups the
recipes over data sets as well (architecture, optimizer, placement,
lambda), and scores "wrecked when at least a share q of that recipe's
trainings, over every data set and seed, were".

    .venv/bin/python bench/seed_ceiling.py modern bench/out/modern bench/out/modern-r1 bench/out/modern-r2
    .venv/bin/python bench/seed_ceiling.py fresh bench/out/fresh bench/out/fresh-r1
    .venv/bin/python bench/seed_ceiling.py classic bench/out/classic   # one seed: the data-blind table only
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibration.outcomes import label_runs, load_runs, severe, split_of, wrecked

# The data-blind predictor's levels: any, a fifth, a third, half, two
# thirds, all of a recipe's trainings wrecked.
BLIND_SHARES = (0.01, 0.2, 0.34, 0.5, 0.67, 1.0)


def seeds_of(outs: list[str]) -> tuple[list[dict[str, dict]], list[str]]:
    """Each seed's labelled runs by id, and the ids every seed has labelled."""
    seeds = []
    for out in outs:
        runs = load_runs(Path(out))
        label_runs(runs)
        seeds.append({r["run_id"]: r for r in runs})
    common = sorted(set.intersection(*(set(s) for s in seeds)))
    return seeds, [i for i in common if all(s[i]["outcome"] != "excluded" for s in seeds)]


def score(seeds: list[dict[str, dict]], ids: list[str], k: int) -> dict[str, float | int]:
    """The predictor 'wrecked when >= k seeds were', against every seed."""
    recipes = [[seed[run_id] for seed in seeds] for run_id in ids]
    return _tally(recipes, lambda runs: sum(map(wrecked, runs)) >= k)


def score_blind(seeds: list[dict[str, dict]], ids: list[str], share: float) -> dict[str, float | int]:
    """The data-blind predictor: 'wrecked when at least ``share`` of the
    recipe's trainings (every data set, every seed) were', against each."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run_id in ids:
        run = seeds[0][run_id]
        groups[(run["arch"], run["opt"], run["placement"], run["lam"])].extend(s[run_id] for s in seeds)
    return _tally(list(groups.values()), lambda runs: sum(map(wrecked, runs)) / len(runs) >= share)


def _tally(groups: list[list[dict]], flags) -> dict[str, float | int]:
    """One verdict per group of trainings (``flags(runs)``), scored against
    each training's own outcome."""
    tp = fp = fn = false_alarms = healthy = fp_not_severe = 0
    for runs in groups:
        flagged = flags(runs)
        for run in runs:
            tp += flagged and wrecked(run)
            fn += (not flagged) and wrecked(run)
            if flagged and not wrecked(run):
                fp += 1
                fp_not_severe += not severe(run)
            if run["outcome"] == "healthy":
                healthy += 1
                false_alarms += flagged
    flagged_total = tp + fp
    return {"wrecked": tp + fn, "recall": tp / max(tp + fn, 1), "precision": tp / max(flagged_total, 1),
            "precision_severe": (flagged_total - fp_not_severe) / max(flagged_total, 1),
            "false_alarms": false_alarms, "healthy": healthy}


def _row(split: str, predictor: str, s: dict) -> str:
    return (f"| {split} | {predictor} | {s['recall']:.1%} of {s['wrecked']} | {s['precision']:.1%} | "
            f"{s['precision_severe']:.1%} | {s['false_alarms']}/{s['healthy']} |")


def main(name: str, outs: list[str]) -> None:
    seeds, ids = seeds_of(outs)
    print(f"## {name}: {len(seeds)} seed(s), {len(ids)} recipes labelled in every seed\n")
    if len(seeds) > 1:  # one seed: the per-recipe predictor is its own outcome
        _table(seeds, ids, [(f"wrecked in >= {k} of {len(seeds)} seeds",
                             lambda chosen, k=k: score(seeds, chosen, k)) for k in range(1, len(seeds) + 1)])
    print(f"\n## {name}, blind to the data set: the recipe's trainings over every data set and seed\n")
    _table(seeds, ids, [(f"wrecked in >= {share:.0%} of them",
                         lambda chosen, share=share: score_blind(seeds, chosen, share)) for share in BLIND_SHARES])


def _table(seeds: list[dict[str, dict]], ids: list[str], predictors: list) -> None:
    """One markdown table: every predictor (label, scorer of the chosen
    recipes) on each split."""
    print("| split | predictor | recall (wrecked) | precision (wrecked) | precision, severe | false alarms |")
    print("|---|---|---|---|---|---|")
    for split in ("held_out", "fit", "all"):
        chosen = [i for i in ids if split == "all" or split_of(seeds[0][i]) == split]
        if not chosen:
            continue
        for label, scorer in predictors:
            print(_row(split, label, scorer(chosen)))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: seed_ceiling.py NAME OUT_SEED0 [OUT_SEED1 ...]")
    main(sys.argv[1], sys.argv[2:])
