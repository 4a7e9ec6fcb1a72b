"""Where a ``reglint check`` spends its time: phases, imports, hot functions.

    .venv/bin/python bench/phases.py FILE [FILE ...] [--reps 3] [--cprofile 25] [--imports]

For each FILE, ``--reps`` fresh subprocesses each run ``reglint check --format
json --no-cache FILE`` in-process with timers wrapped around its phases:

- ``startup``: interpreter start to the first line of this script's child
  (measured from outside as the child's wall time minus its inside time);
- ``import cli``: importing ``reglint.cli.app`` (Typer, Rich, settings ...);
- ``read: stats``: computing weight statistics (``h5_dataset_stats`` and the
  ONNX reader's ``file_stats`` / ``array_stats``; HDF5 reads included);
- ``read: rest``: the rest of ``read_model`` (config, HDF5 walk, protobuf
  parse, ``onnx.checker``);
- ``analyse+rules``: the rest of ``lint_file``;
- ``report``: rendering JSON (``write_outputs``);
- ``other``: argument parsing, settings, discovery, lazy imports elsewhere.

Medians over the repetitions are printed, with the peak RSS of each child.
``--cprofile N``: one more in-process run under cProfile, top N by own time.
``--imports``: ``python -X importtime`` of the same command, self time
summed per top-level package.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASES = ["python start+exit", "import cli", "import engine+readers", "cli parse", "settings+discover", "read: rest",
          "read: stats", "analyse+rules", "report", "other", "total"]

CHILD = r"""
import time, json, sys, io, contextlib
T0 = time.perf_counter()
acc = {"import cli": 0.0, "read": 0.0, "read: stats": 0.0, "lint": 0.0, "report": 0.0, "teardown": 0.0}
marks = {}

def timed(key, fn, mark=None):
    def wrapper(*a, **k):
        t = time.perf_counter()
        if mark and mark not in marks:
            marks[mark] = t
        try:
            return fn(*a, **k)
        finally:
            acc[key] += time.perf_counter() - t
    wrapper.__wrapped__ = fn
    return wrapper

t = time.perf_counter()
import reglint.cli.app  # noqa: E402
import reglint.cli.run as run  # noqa: E402
acc["import cli"] = time.perf_counter() - t
# imported lazily by `check` anyway; imported here so they can be wrapped
t = time.perf_counter()
import reglint.engine.runner as runner  # noqa: E402
import reglint.engine.parallel as par  # noqa: E402
import reglint.readers.keras_build as kb  # noqa: E402
acc["import engine+readers"] = time.perf_counter() - t
runner.read_model = timed("read", runner.read_model)
kb.h5_dataset_stats = timed("read: stats", kb.h5_dataset_stats)
try:
    import reglint.readers.onnx.stats as onx  # _param_stats looks them up here at each call
    onx.file_stats = timed("read: stats", onx.file_stats)
    onx.array_stats = timed("read: stats", onx.array_stats)
except ImportError:
    pass
runner.lint_file = timed("lint", runner.lint_file, mark="lint")
par.lint_file = runner.lint_file
run.write_outputs = timed("report", run.write_outputs)
run.run_check = timed("run_check", run.run_check, mark="run_check")
reglint.cli.app.run_check = run.run_check
sys.argv = ["reglint", "check", "--format", "json", "--no-cache", sys.argv[1]]
t_main = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    try:
        reglint.cli.app.main()
    except SystemExit:
        pass
t_end = time.perf_counter()
acc["cli parse"] = marks.get("run_check", t_end) - t_main
acc["settings+discover"] = marks.get("lint", t_end) - marks.get("run_check", t_end)
acc["total_inside"] = t_end - T0
sys.__stdout__.write("PHASES " + json.dumps(acc) + "\n")
sys.__stdout__.flush()
"""


def child_run(path: str) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    line = next((ln for ln in out.decode().splitlines() if ln.startswith("PHASES ")), None)
    if line is None:
        raise SystemExit(f"profile child failed:\n{err.decode()[-2000:]}")
    acc = json.loads(line[len("PHASES "):])
    inside = acc["total_inside"]
    phases = {
        "python start+exit": wall - inside,
        "import cli": acc["import cli"],
        "import engine+readers": acc["import engine+readers"],
        "cli parse": acc["cli parse"],
        "settings+discover": acc["settings+discover"],
        "read: rest": acc["read"] - acc["read: stats"],
        "read: stats": acc["read: stats"],
        "analyse+rules": acc["lint"] - acc["read"],
        "report": acc["report"],
    }
    phases["other"] = wall - sum(phases.values())
    phases["total"] = wall
    return phases


def cprofile(path: str, top: int) -> None:
    import contextlib
    import cProfile
    import io
    import pstats

    from reglint.cli.app import main

    sys.argv = ["reglint", "check", "--format", "json", "--no-cache", path]
    prof = cProfile.Profile()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        prof.enable()
        try:
            main()
        finally:
            prof.disable()
    stream = io.StringIO()
    pstats.Stats(prof, stream=stream).sort_stats("tottime").print_stats(top)
    print(stream.getvalue())


def imports(path: str, top: int = 15) -> None:
    reglint = str(Path(sys.executable).parent / "reglint")
    proc = subprocess.run([sys.executable, "-X", "importtime", reglint, "check", "--format", "json", "--no-cache",
                           path], capture_output=True, text=True, cwd=ROOT)
    per_pkg: dict[str, int] = {}
    total = 0
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line[len("import time:"):].split("|")
        try:
            self_us, name = int(parts[0]), parts[2]
        except (ValueError, IndexError):
            continue
        pkg = name.strip().split(".")[0]
        if pkg == "reglint":
            pkg = ".".join(name.strip().split(".")[:2])
        per_pkg[pkg] = per_pkg.get(pkg, 0) + self_us
        total += self_us
    print(f"imports: {total / 1000:.0f} ms self time in all; by top-level package:")
    for pkg, us in sorted(per_pkg.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {pkg:<32} {us / 1000:7.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cprofile", type=int, default=0, metavar="N")
    parser.add_argument("--imports", action="store_true")
    args = parser.parse_args()
    for path in args.files:
        runs = [child_run(path) for _ in range(args.reps)]
        print(f"{path}  (median of {args.reps})")
        for phase in PHASES:
            print(f"  {phase:<22} {statistics.median(r[phase] for r in runs) * 1000:8.0f} ms")
        if args.imports:
            imports(path)
        if args.cprofile:
            cprofile(path, args.cprofile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
