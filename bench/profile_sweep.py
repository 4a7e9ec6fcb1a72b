"""``reglint profile`` over every file of the robustness sweep: which files it
trains, which it refuses, and whether every refusal is one line.

A script, not a test. Needs ``bench/robustness_sweep.py generate`` first (the
files under ``bench/out/sweep/``). Each file is profiled in this one process
(TensorFlow imported once) on synthetic data for a few steps::

    nice -n 10 .venv/bin/python bench/profile_sweep.py run --tag before [--init fresh] [--steps 3]
    .venv/bin/python bench/profile_sweep.py report before [after]

``run`` writes ``bench/out/sweep/profile-<tag>.jsonl``: per file the exit code,
how many lines it printed on stderr, the last of them, and the wall time.
``report`` counts exit codes, lists every file that exited 2 with its line
(grouped by kind of refusal), and every exit code that changed between two
tags. Weights-only ``.weights.h5`` files are left out (nothing to train).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

SWEEP = Path(__file__).resolve().parent / "out" / "sweep"
# What an exit-2 line says, in the order tried: the kind it is counted as.
KINDS = (("refusing to run code", "would run code from the file (no --trust-model)"),
         ("RL026", "unusable loss weights (RL026)"), ("loss_weights hold", "unusable loss weights (RL026)"),
         ("Keras could not load", "Keras 3 cannot load it"), ("weights-only", "weights-only file"),
         ("stateful RNN", "stateful RNN"), ("takes text", "text input without --data"),
         ("unknown loss", "a custom loss Keras cannot find"))


def files() -> list[Path]:
    return sorted(p for p in [*SWEEP.glob("*.keras"), *SWEEP.glob("*.h5")] if not p.name.endswith(".weights.h5"))


def cmd_run(args: argparse.Namespace) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from reglint.cli.app import main

    out = SWEEP / f"profile-{args.tag}.jsonl"
    report = SWEEP / f"profile-{args.tag}.report.json"
    with out.open("w") as fh:
        for path in files():
            argv = ["profile", str(path), "--steps", str(args.steps), "--time-budget", "20", "-f", "json",
                    "-o", str(report), "--device", "cpu"] + (["--init", args.init] if args.init else [])
            sink, start = io.StringIO(), time.perf_counter()
            with redirect_stdout(sink), redirect_stderr(sink):
                code = main(argv)
            lines = sink.getvalue().strip().splitlines()
            fh.write(json.dumps({"file": path.name, "code": code, "lines": len(lines),
                                 "last": lines[-1][:300] if lines else "",
                                 "seconds": round(time.perf_counter() - start, 1)}) + "\n")
            fh.flush()
    print(f"profiled {len(files())} files -> {out}")


def kind_of(line: str) -> str:
    return next((kind for needle, kind in KINDS if needle in line), line[:100])


def cmd_report(args: argparse.Namespace) -> None:
    runs = {tag: {r["file"]: r for r in map(json.loads, (SWEEP / f"profile-{tag}.jsonl").read_text().splitlines())}
            for tag in args.tags}
    for tag, rows in runs.items():
        codes = Counter(r["code"] for r in rows.values())
        refused = [r for r in rows.values() if r["code"] == 2]
        print(f"{tag}: {len(rows)} files, exit 0/1/2 = {codes[0]}/{codes[1]}/{codes[2]}; exit-2 lines other than "
              f"one: {sum(r['lines'] != 1 for r in refused)}; slowest {max(r['seconds'] for r in rows.values())} s")
        for kind, count in Counter(kind_of(r["last"]) for r in refused).most_common():
            print(f"  {count:3d}  {kind}")
    if len(args.tags) == 2:
        before, after = (runs[tag] for tag in args.tags)
        for name in sorted(set(before) & set(after)):
            if before[name]["code"] != after[name]["code"]:
                old, new = before[name]["code"], after[name]["code"]
                print(f"  changed: {name}: {old} -> {new}  {after[name]['last'][:120]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--tag", required=True)
    run.add_argument("--steps", type=int, default=3)
    run.add_argument("--init", choices=("auto", "saved", "fresh"), default=None)
    report = sub.add_parser("report")
    report.add_argument("tags", nargs="+")
    args = parser.parse_args(argv)
    cmd_run(args) if args.command == "run" else cmd_report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
