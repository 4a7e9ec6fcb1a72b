"""Proposed speed-ups for reglint's readers, applied as monkeypatches so their
gain can be measured before anyone edits ``src/``.

    .venv/bin/python bench/prototype.py --compare FILE [FILE ...] [--reps 5]
    .venv/bin/python bench/prototype.py --patched  -- check --format json --no-cache FILE
    .venv/bin/python bench/prototype.py --patched-cli -- check --format json --no-cache FILE

``--compare`` alternates fresh-process runs of ``reglint check --format json
--no-cache FILE`` as it is and with the patches, prints the medians, the
paired ratio and the peak RSS, and checks the two JSON reports agree
(parameter counts and findings identical, every ``sum_sq`` within 1e-4
relative).

The patches (each is what the corresponding function in ``src/`` would become;
1 and 2, the float32 ``StatsAccumulator.add`` and the direct ``os.preadv``
reads of contiguous HDF5 datasets, are now in ``src/reglint/readers/tensor_stats.py``;
3 is ``reglint.cli.entry``, the console script):

3. ``os._exit(code)`` once stdout/stderr are flushed, skipping the
   interpreter's teardown (here for runs through this script).
4. (``--patched-cli`` only) ``check`` parsed with argparse, without Typer:
   see ``fast_check``. Not taken: pinning Typer below 0.29 (which built a
   pydantic TypeAdapter per option) removed the same ~230 ms and keeps one
   parser.
5. ``onnx_reader._Reader._run_checker``: check a stub of an embedded-weights
   model (``checker_stub``), not a serialised copy of the whole thing.

``--compare`` times patches 3 and 5 (``--patched``); with ``--cli``, also 4.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PATCH_FLAG = "--patched"


def checker_stub(proto):
    """Patch 5: what ``onnx.checker`` needs of an embedded-weights model, with
    every initializer over 1 KiB cut to one value of the same rank (its byte
    count against the shape is checked by the reader itself, in
    ``_proto_array``). ``check_model(proto)`` serialises the whole model and
    parses it again in C++: +~100 MB and ~300 ms for ResNet50; the stub
    takes ~40 ms and no memory, and still catches graph errors."""
    import onnx

    stub = onnx.ModelProto()
    for name in ("ir_version", "producer_name", "producer_version", "domain", "model_version", "doc_string"):
        setattr(stub, name, getattr(proto, name))
    stub.opset_import.extend(proto.opset_import)
    stub.functions.extend(proto.functions)
    stub.metadata_props.extend(proto.metadata_props)
    stub.training_info.extend(proto.training_info)
    graph = stub.graph
    graph.name = proto.graph.name
    for name in ("node", "input", "output", "value_info", "sparse_initializer", "quantization_annotation"):
        getattr(graph, name).extend(getattr(proto.graph, name))
    for init in proto.graph.initializer:
        if len(init.raw_data) > 1024:
            small = graph.initializer.add()
            small.name, small.data_type = init.name, init.data_type
            small.dims.extend([1] * len(init.dims))
            small.raw_data = init.raw_data[:len(init.raw_data) // max(1, int(np.prod(init.dims)))]
        else:
            graph.initializer.add().CopyFrom(init)
    return stub


def apply() -> None:
    try:
        from reglint.readers import onnx_reader
    except ImportError:
        return
    original_checker = onnx_reader._Reader._run_checker

    def run_checker(self):
        external = any(t.data_location == onnx_reader.EXTERNAL for _, t in self._all_dense_tensors())
        if external or self.path.stat().st_size > onnx_reader.CHECKER_LIMIT:
            return original_checker(self)
        import onnx

        try:
            onnx.checker.check_model(checker_stub(self.proto))
        except Exception as exc:
            text = str(exc).strip()
            first = onnx_reader.one_line(text.splitlines()[0] if text else type(exc).__name__, 200)
            self.model.notes.append(f"onnx.checker rejects the model ({first}); read anyway")

    onnx_reader._Reader._run_checker = run_checker


def fast_check(argv: list[str]) -> int | None:
    """Patch 4: ``check`` parsed with argparse, Typer (and the Pydantic it
    builds a TypeAdapter with for every option) never imported. This
    prototype knows only --format/--no-cache/--quiet and returns None (use
    Typer) for anything else; in src/ the parser would mirror every option,
    and ``err``/``make_console`` would move out of ``reglint.cli.app``."""
    import argparse
    import types

    if not argv or argv[0] != "check":
        return None
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--format", "--output-format", "-f", dest="output_format", default="full")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.add_argument("paths", nargs="+")
    try:
        ns, rest = parser.parse_known_args(argv[1:])
    except SystemExit:
        return None
    if rest or any(p.startswith("-") for p in ns.paths):
        return None
    # the light stand-in for reglint.cli.app that run_check imports `err` from
    from reglint.errors import one_line

    stub = types.ModuleType("reglint.cli.app")
    stub.err = lambda message: sys.stderr.write(f"reglint: error: {one_line(message)}\n")
    sys.modules["reglint.cli.app"] = stub
    from reglint.cli.run import CheckOptions, run_check

    return run_check(CheckOptions(paths=[Path(p) for p in ns.paths], output_format=ns.output_format,
                                  no_cache=ns.no_cache, quiet=ns.quiet))


def run_cli(argv: list[str], patched: bool, cli: bool = False) -> int:
    if patched:
        apply()
    code = fast_check(argv) if cli else None
    if code is None:
        from reglint.cli import app

        sys.argv = ["reglint", *argv]
        try:
            code = app.main() or 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
    if patched:
        # Patch 3: skip the interpreter's teardown (module and object GC, h5py
        # and numpy finalisers): ~140 ms after a ResNet50.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _child(path: str, patched: bool, out: Path) -> tuple[float, float, int]:
    argv = [sys.executable, __file__, (PATCH_FLAG if patched else "--plain"), "--",
            "check", "--format", "json", "--no-cache", path]
    with open(out, "wb") as handle:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.DEVNULL, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def _agree(a: Path, b: Path) -> str:
    ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
    fa, fb = ja["files"][0], jb["files"][0]
    if (fa.get("error"), (fa.get("model") or {}).get("params")) != (fb.get("error"), (fb.get("model") or {}).get("params")):
        return "DIFFER (params/error)"
    if [f["code"] for f in fa.get("findings", [])] != [f["code"] for f in fb.get("findings", [])]:
        return "DIFFER (findings)"
    worst = 0.0
    for la, lb in zip(fa["model"]["layers"], fb["model"]["layers"]):
        for va, vb in zip(la.get("variables", []), lb.get("variables", [])):
            x, y = va.get("sum_sq"), vb.get("sum_sq")
            if x is not None and y is not None and max(abs(x), abs(y)) > 0:
                worst = max(worst, abs(x - y) / max(abs(x), abs(y)))
    return f"agree (max sum_sq rel diff {worst:.1e})" if worst < 1e-4 else f"DIFFER (sum_sq rel {worst:.1e})"


def compare(files: list[str], reps: int) -> None:
    out_dir = ROOT / "bench" / "out" / "prototype"
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in files:
        plain_out, fast_out = out_dir / "plain.json", out_dir / "patched.json"
        _child(path, False, plain_out), _child(path, True, fast_out)  # warm-up + outputs
        verdict = _agree(plain_out, fast_out)
        plain, fast = [], []
        for rep in range(reps):
            order = (False, True) if rep % 2 == 0 else (True, False)
            for patched in order:
                (fast if patched else plain).append(_child(path, patched, out_dir / "scratch.json"))
        pm, fm = statistics.median(w for w, _, _ in plain), statistics.median(w for w, _, _ in fast)
        paired = statistics.median(p[0] / f[0] for p, f in zip(plain, fast))
        print(f"{path}: as-is {pm * 1000:.0f} ms / {statistics.median(r for _, r, _ in plain):.0f} MiB; "
              f"patched {fm * 1000:.0f} ms / {statistics.median(r for _, r, _ in fast):.0f} MiB; "
              f"speed-up {pm / fm:.2f}x (paired {paired:.2f}x); outputs {verdict}")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in ("--patched", "--patched-cli", "--plain"):
        rest = sys.argv[2:]
        if rest and rest[0] == "--":
            rest = rest[1:]
        return run_cli(rest, sys.argv[1] != "--plain", cli=sys.argv[1] == "--patched-cli")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", nargs="+", required=True, metavar="FILE")
    parser.add_argument("--cli", action="store_true", help="add patch 4 (no Typer) to the patched runs")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    global PATCH_FLAG
    PATCH_FLAG = "--patched-cli" if args.cli else "--patched"
    compare(args.compare, args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
