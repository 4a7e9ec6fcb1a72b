"""Outcome rule (``label_runs``), per run, within its *group* = (dataset,
arch, base optimizer), whose baseline is the lambda=0 run:

- **excluded**: the group's baseline diverged or did not clearly beat chance
  (accuracy < chance + 0.15, or R^2 < 0.2): the setting fails without any
  regularization, so the run says nothing about the lambda.
- **diverged**: a NaN/inf loss during fit, non-finite weights, or a final
  train data loss (penalty excluded) > 3x the data loss at initialisation.
- **collapsed**: validation accuracy <= chance + 0.05 (chance: majority-class
  share of the validation split) or validation R^2 <= 0.05.
- **degraded**: validation metric below ``ref - 0.10 * (baseline - chance)``,
  where ``ref`` = max(baseline, best lambda of the same placement in the
  group).
- **healthy** otherwise. "wrecked" = diverged or collapsed.

``margin_lost`` (not an outcome, a measure beside it): the share of the
baseline's margin over chance the run lost, ``(baseline - val) / (baseline -
chance)`` (chance 0 for R^2), 1 for a diverged run. "Severe" = wrecked, or
degraded with ``margin_lost >= 0.5``: a 10-class run at 20% accuracy whose
baseline reached 95% is degraded by the rule above, not collapsed.

Split: a run is held out when its data set is (wine, synth: 3 and 20
classes, loss scales the fit split never sees) or its architecture family is
(GRU, post-norm transformer: ``grid.HELD_OUT_ARCHS``).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

from .grid import HELD_OUT_ARCHS, HELD_OUT_DATASETS, OPTIMIZERS

BASELINE_MIN_GAP_ACC = 0.15
BASELINE_MIN_R2 = 0.20
COLLAPSE_GAP_ACC = 0.05
COLLAPSE_R2 = 0.05
DEGRADE_FRACTION = 0.10
DIVERGE_FACTOR = 3.0


def finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def clean(x):
    """JSON-safe float: NaN/inf become strings."""
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def num(x):
    """Inverse of clean."""
    return float(x) if isinstance(x, str) else x


def load_runs(out: Path) -> list[dict]:
    path = out / "runs.jsonl"
    if not path.exists():
        return []
    runs, seen = [], set()
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line:
            continue
        rec = json.loads(line)
        if rec["run_id"] in seen:
            continue
        seen.add(rec["run_id"])
        runs.append(rec)
    return runs


def group_key(rec: dict) -> tuple:
    return rec["dataset"], rec["arch"], OPTIMIZERS[rec["opt"]][2]


def is_diverged(rec: dict) -> bool:
    init, final = num(rec["initial_data_loss"]), num(rec["final_data_loss"])
    if rec["nan_loss"] or not rec["weights_finite"] or rec.get("error"):
        return True
    if not finite(final) or not finite(num(rec["val_metric"])):
        return True
    return finite(init) and final > DIVERGE_FACTOR * init


def label_runs(runs: list[dict]) -> None:
    """Apply the outcome rule of the module docstring; sets rec['outcome']."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for rec in runs:
        groups[group_key(rec)].append(rec)
    for members in groups.values():
        base = next((r for r in members if r["placement"] == "none"), None)
        if base is None:
            for r in members:
                r["outcome"], r["why"] = "excluded", "no baseline yet"
            continue
        _label_group(members, base)


def _label_group(members: list[dict], base: dict) -> None:
    chance = base["chance"]
    bval = num(base["val_metric"])
    reg = base["task"] == "regression"
    base_ok = not is_diverged(base) and finite(bval) and (
        bval >= BASELINE_MIN_R2 if reg else bval >= chance + BASELINE_MIN_GAP_ACC)
    best_by_placement: dict[str, float] = {}
    for r in members:
        v = num(r["val_metric"])
        if not is_diverged(r) and finite(v):
            best_by_placement[r["placement"]] = max(best_by_placement.get(r["placement"], -1e9), v)
    for r in members:
        v = num(r["val_metric"])
        r["baseline_val"] = bval
        floor = 0.0 if reg else chance
        r["margin_lost"] = 1.0 if is_diverged(r) or not finite(v) else \
            (bval - v) / (bval - floor) if finite(bval) and bval > floor else None
        if not base_ok:
            r["outcome"], r["why"] = "excluded", f"baseline failed (val {bval})"
        elif is_diverged(r):
            r["outcome"], r["why"] = "diverged", "non-finite or data loss > 3x initial"
        elif (v <= COLLAPSE_R2) if reg else (v <= chance + COLLAPSE_GAP_ACC):
            r["outcome"], r["why"] = "collapsed", f"val {v:.3f} at chance {chance:.3f}"
        else:
            ref = max(bval, best_by_placement.get(r["placement"], bval))
            margin = DEGRADE_FRACTION * (bval - chance)
            if v < ref - margin:
                r["outcome"], r["why"] = "degraded", f"val {v:.3f} < ref {ref:.3f} - {margin:.3f}"
            else:
                r["outcome"], r["why"] = "healthy", ""


def wrecked(rec: dict) -> bool:
    return rec.get("outcome") in ("diverged", "collapsed")


SEVERE_MARGIN_LOST = 0.5


def severe(rec: dict) -> bool:
    """Wrecked, or degraded after losing at least half the baseline's margin over chance."""
    lost = rec.get("margin_lost")
    return wrecked(rec) or (rec.get("outcome") == "degraded" and lost is not None and lost >= SEVERE_MARGIN_LOST)


def grid_of(rec: dict) -> str:
    return rec.get("grid", "classic")


def split_of(rec: dict) -> str:
    held = rec["dataset"] in HELD_OUT_DATASETS or rec["arch"] in HELD_OUT_ARCHS
    return "held_out" if held else "fit"
