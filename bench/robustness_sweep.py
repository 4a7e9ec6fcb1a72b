"""Robustness sweep: many small, varied, real Keras files through every reglint command.

A script, not a test. It builds the models users really build (Sequential,
functional, subclassed, nested, shared layers, multi-input/multi-output with
loss and loss_weights dicts and lists, loss objects with arguments, custom
registered objects, every built-in optimizer, schedules, clipping, EMA,
accumulation, mixed precision, every regularizer placement, Keras
Applications), saves each in every format that applies, records what Keras
itself reports about each file, then runs ``reglint check --format json``,
``reglint explain``, ``--format html --output-file`` and ``--format sarif`` on
every file and lists what went wrong (internal errors, non-finite or
negative numbers, counts or penalties that differ from Keras', refusals of
files Keras loads)::

    nice -n 10 .venv/bin/python bench/robustness_sweep.py generate       # Keras 3, then tf-keras (subprocess)
    nice -n 10 .venv/bin/python bench/robustness_sweep.py lint --tag before
    .venv/bin/python bench/robustness_sweep.py report before [after]

Files, manifests and results go under ``bench/out/sweep/`` (ignored by git).
``generate --only CASE ...`` rebuilds some cases; ``lint --only FILE ...``
re-lints some files into the same result file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
OUT = HERE / "out" / "sweep"
MANIFESTS = {"keras3": OUT / "manifest-keras3.json", "tf_keras": OUT / "manifest-tf_keras.json"}


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def cmd_generate(args: argparse.Namespace) -> None:
    from sweep.generate import generate, write_manifest

    writers = ["keras3", "tf_keras"] if args.writer == "all" else [args.writer]
    for writer in writers:
        if writer == "tf_keras" and args.writer == "all":
            # tf-keras and Keras 3 never share a process.
            cmd = [sys.executable, __file__, "generate", "--writer", "tf_keras"]
            if args.only:
                cmd += ["--only", *args.only]
            subprocess.run(cmd, check=True)
            continue
        started = time.perf_counter()
        entries = generate(writer, OUT, args.only)
        path = MANIFESTS[writer]
        if args.only and path.exists():
            kept = [e for e in _load_json(path) if e["case"] not in set(args.only)]
            entries = kept + entries
        write_manifest(entries, path)
        files = sum(1 for e in entries if e.get("file"))
        print(f"{writer}: {files} files, {len(entries) - files} failed builds/saves, "
              f"{time.perf_counter() - started:.0f} s -> {path}", flush=True)


def manifest() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for path in MANIFESTS.values():
        if path.exists():
            entries += _load_json(path)
    return entries


def cmd_lint(args: argparse.Namespace) -> None:
    from sweep import lint

    if args.reglint:
        lint.REGLINT[0] = str(Path(args.reglint).resolve())
    entries = [e for e in manifest() if e.get("file") and (not args.only or e["file"] in args.only)]
    started = time.perf_counter()
    results = lint.lint_all(entries, OUT, args.jobs)
    path = OUT / f"results-{args.tag}.json"
    if args.only and path.exists():
        done = {r["file"] for r in results}
        results = [r for r in _load_json(path) if r["file"] not in done] + results
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"linted {len(entries)} files in {time.perf_counter() - started:.0f} s -> {path}")


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    from sweep.lint import COMMANDS

    exits = {c: Counter(r["runs"][c]["rc"] for r in results) for c in COMMANDS}
    kinds = Counter(p["kind"] for r in results for p in r["problems"])
    files_with = Counter(k for r in results for k in {p["kind"] for p in r["problems"]})
    return {"files": len(results), "exits": exits, "problems": kinds, "files_with": files_with}


def cmd_report(args: argparse.Namespace) -> None:
    from sweep.lint import COMMANDS

    entries = manifest()
    failed = [e for e in entries if not e.get("file")]
    print(f"generated: {sum(1 for e in entries if e.get('file'))} files from "
          f"{len({e['case'] for e in entries})} cases ({Counter(e['writer'] for e in entries if e.get('file'))}); "
          f"{len(failed)} case/format pairs the framework itself could not build or save")
    loads = Counter(bool(e.get("keras_load", {}).get("ok")) for e in entries if "keras_load" in e)
    print(f"Keras loads back: {loads[True]} of {sum(loads.values())} .keras/.h5 files\n")
    tables = {tag: summary(_load_json(OUT / f"results-{tag}.json")) for tag in args.tags}
    head = "| | " + " | ".join(args.tags) + " |"
    print(head + "\n|---|" + "---|" * len(args.tags))
    print("| files linted | " + " | ".join(str(t["files"]) for t in tables.values()) + " |")
    for c in COMMANDS:
        cells = [f"{t['exits'][c].get(0, 0)} / {t['exits'][c].get(1, 0)} / {t['exits'][c].get(2, 0)}"
                 + (f" (other {sum(v for k, v in t['exits'][c].items() if k not in (0, 1, 2))})"
                    if any(k not in (0, 1, 2) for k in t["exits"][c]) else "") for t in tables.values()]
        print(f"| `{c}` exit 0 / 1 / 2 | " + " | ".join(cells) + " |")
    for kind in ("internal", "nonfinite", "count", "penalty", "refused", "output", "custom"):
        print(f"| files with `{kind}` | " + " | ".join(str(t["files_with"].get(kind, 0)) for t in tables.values())
              + " |")
    last = _load_json(OUT / f"results-{args.tags[-1]}.json")
    print(f"\nproblems in '{args.tags[-1]}':")
    for r in last:
        for p in r["problems"]:
            print(f"  {r['file']:50s} {p['kind']:9s} {p['command']:8s} {p['detail'][:200]}")
    if args.failed:
        print("\nbuild/save failures (the framework's own):")
        for e in failed:
            print(f"  {e['writer']:9s} {e['case']:44s} {e.get('format', ''):8s} "
                  f"{e.get('build_error') or e.get('save_error')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="build and save the models, record Keras' numbers")
    g.add_argument("--writer", choices=["all", "keras3", "tf_keras"], default="all")
    g.add_argument("--only", nargs="*", help="case names")
    g.set_defaults(fn=cmd_generate)
    li = sub.add_parser("lint", help="run reglint's commands on every file")
    li.add_argument("--tag", default="latest", help="results-TAG.json")
    li.add_argument("--jobs", type=int, default=2)
    li.add_argument("--only", nargs="*", help="file names")
    li.add_argument("--reglint", help="the reglint executable to run (default: this environment's)")
    li.set_defaults(fn=cmd_lint)
    r = sub.add_parser("report", help="exit-code table and problems of one or more lint runs")
    r.add_argument("tags", nargs="+")
    r.add_argument("--failed", action="store_true", help="also list the cases Keras could not build or save")
    r.set_defaults(fn=cmd_report)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
