"""Calibration runs for reglint's rule thresholds.

Every threshold in ``rules/`` must come from our own runs: small, real Keras
trainings across lambdas, placements, optimizers and architectures, each
saved *before* training (the file a user would commit) and each with a
recorded outcome. The code lives in ``bench/calibration/`` (grid, data,
models, train, outcomes, features, scoring: read their docstrings); this is
the command line::

    python bench/calibrate.py train  [--grid full|modern|fresh|third|stream|residual|quick] [--jobs 2] [--limit N]
                                     [--replicate K] [--out DIR]
    python bench/calibrate.py models RECORD.jsonl.gz ... [--out DIR]
    python bench/calibrate.py export --grid modern RECORD.jsonl.gz [--out DIR]
    python bench/calibrate.py report [--grid classic|modern|fresh|third|stream|residual|all] [--out DIR]
    python bench/calibrate.py sweep FEATURE|all [--grid ...] [--precision 0.95]

``train`` builds the grid (``full`` is the classic grid of 2026-11-25,
``modern`` the residual/transformer/recurrent grid of issue 15, ``fresh``
the separable-CNN and LayerNorm-MLP families scored only, ``third`` the
post-norm transformer and GRU under all three of issue 15's third-set
optimizers and kernel L2 up to 10, scored only, ``quick`` a
~20-run smoke grid), saves each compiled, untrained model to
``<out>/models/<run_id>.keras``, trains it with ``fit`` and appends one JSON
line per run to ``<out>/runs.jsonl``; resume-safe (run_ids already there
are skipped). ``models`` restores committed records
(``bench/calibration-runs.jsonl.gz``, ``bench/calibration-runs-modern.jsonl.gz``)
into ``<out>``: it rebuilds each run's untrained model from its seed without
training, so ``report`` and ``sweep`` reproduce the published tables in
minutes. Default ``<out>``: ``bench/out/calibration``
(``bench/out/calibration-quick`` for the quick grid).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_OUT = HERE / "out" / "calibration"
QUICK_OUT = HERE / "out" / "calibration-quick"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "src"))

from calibration.data import inputs_for, load_dataset  # noqa: E402,F401  (bench/profile_grid.py uses these)
from calibration.features import FEATURES  # noqa: E402
from calibration.outcomes import label_runs, load_runs, split_of, wrecked  # noqa: E402,F401
from calibration.scoring import _pct, cmd_report, cmd_sweep, score  # noqa: E402,F401
from calibration.train import cmd_export, cmd_models, cmd_train, training_steps  # noqa: E402,F401


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    scored = ("modern", "fresh", "third", "stream", "residual")  # the grids after the classic one
    for name in ("train", "models", "export", "report", "sweep"):
        p = sub.add_parser(name)
        p.add_argument("--out", default=None, help=f"output folder (default {DEFAULT_OUT})")
        if name == "train":
            p.add_argument("--grid", default="full", choices=("full", *scored, "quick"))
            p.add_argument("--jobs", type=int, default=1, help="worker processes (1 thread each)")
            p.add_argument("--limit", type=int, default=0, help="train only the first N runs of the grid")
            p.add_argument("--replicate", type=int, default=0,
                           help="K >= 1: the same grid from other seeds (initial weights, batch order)")
        elif name == "models":
            p.add_argument("records", nargs="+", help="gzipped JSON-lines records to restore")
        elif name == "export":
            p.add_argument("--grid", default="modern", choices=("classic", *scored))
            p.add_argument("record", help="gzipped JSON-lines file to write")
        else:
            p.add_argument("--grid", default="all", choices=("classic", *scored, "all"))
        if name == "sweep":
            p.add_argument("feature", help=f"one of {', '.join(FEATURES)}, or all")
            p.add_argument("--precision", type=float, default=0.95)
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.out is None:
        args.out = str(QUICK_OUT if getattr(args, "grid", None) == "quick" else DEFAULT_OUT)
    commands = {"train": cmd_train, "models": cmd_models, "export": cmd_export, "report": cmd_report,
                "sweep": cmd_sweep}
    return commands[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
