"""reglint's speed and memory against Keras' own loader, onnx.load and a bare
read of the file.

    .venv/bin/python bench/run.py [--quick] [--big] [--reps N] [--only NAMES]

Builds its inputs under ``bench/out/`` first (``bench/make_inputs.py``: a
ResNet50 with L2 on every kernel, saved as ``.keras``, legacy ``.h5`` and
ONNX with and without external data; ``bench/make_big.py`` with ``--big``),
skipping files already there. Then, for every comparison, it runs each
command in a fresh subprocess, **alternating** the commands of a comparison
within one session (the order rotates every repetition, so a burst of load
from other jobs on the machine hits all of them alike) after one untimed
warm-up run of each (page cache, ``.pyc``). Per run it records the wall time
and the peak resident set of that child alone (``os.wait4``'s
``ru_maxrss``). It reports medians, the ratio of the medians and the median of
the per-repetition paired ratios.

Writes ``bench/out/results.json`` (every sample, the machine, the targets)
and ``bench/RESULTS.md`` (the table the README quotes).

reglint is timed as a user's ``pip install`` leaves it: built from this
checkout into ``bench/out/release`` (``--editable``: this venv's development
install instead). ``--quick``: 3 repetitions instead of 7. ``--big``: also the ~1 GB ``.keras``
and ~2 GB external-data ONNX models of ``bench/make_big.py`` (3 repetitions of
reglint, 1 of the loaders), where the point is reglint's peak memory.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib.util
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
INPUTS = OUT / "inputs"
BIG = OUT / "big"
INT4 = OUT / "int4"
HF_INT4 = OUT / "hf_int4"
DCP = OUT / "dcp"
# A Python with torch, transformers and compressed-tensors for the hf_int4
# group's input and its alternative (never reglint's own environment).
TORCH_PY = os.environ.get("REGLINT_TORCH_PYTHON", "/work/torchenv/bin/python")
HF_LOAD = ("import sys, torch, transformers; "
           "m = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1]); "
           "sum(p.numel() for p in m.parameters())")
# The alternative for a torch.distributed.checkpoint folder: DCP's own reader
# loads every tensor (weights and optimizer moments), then the weights' count
# and sum of squares (what reglint reports).
DCP_LOAD = ("import sys, torch; "
            "from torch.distributed.checkpoint import FileSystemReader; "
            "from torch.distributed.checkpoint.state_dict_loader import _load_state_dict; "
            "from torch.distributed.checkpoint.default_planner import _EmptyStateDictLoadPlanner; "
            "sd = {}; _load_state_dict(sd, storage_reader=FileSystemReader(sys.argv[1]), "
            "planner=_EmptyStateDictLoadPlanner(), no_dist=True); "
            "m = sd['model']; sum(t.numel() for t in m.values()); "
            "sum(float((t.double() ** 2).sum()) for t in m.values())")
LOGS = OUT / "logs"
PY = sys.executable
BIN = Path(PY).parent
REGLINT = str(BIN / "reglint") if (BIN / "reglint").exists() else None
MiB = 1024 * 1024

SMALL_MODELS = [ROOT / "fixtures/keras/scenario_healthy.keras", ROOT / "fixtures/keras/conv2d_seed_l2.keras"]

KERAS_LOAD = "import sys, keras; m = keras.saving.load_model(sys.argv[1], compile=False); m.count_params()"
ONNX_LOAD = "import sys, onnx; onnx.load(sys.argv[1])"
ORT_SESSION = ("import sys, onnxruntime; "
               "onnxruntime.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])")
# The physical floor in the same runtime: start Python, read every byte in 16 MiB chunks.
PY_READ = ("import sys\nbuf = bytearray(16 << 20)\nfor p in sys.argv[1:]:\n"
           "    with open(p, 'rb', buffering=0) as f:\n        while f.readinto(buf): pass")

# Targets of the issue "Fast enough for every commit".
T_SPEEDUP = 15.0       # Keras loader time / reglint time, ResNet50 .keras
T_RSS = 0.2            # reglint peak RSS / Keras loader peak RSS
T_BARE = 1.5           # reglint time / bare read time
T_SMALL = 0.25         # reglint check (small) / python -c "import keras"
T_VERSION_S = 0.150    # reglint --version wall time


# ---------------------------------------------------------------------------
# measuring


@dataclass
class Sample:
    wall_s: float
    rss_kib: int
    cpu_s: float
    rc: int


@dataclass
class Cmd:
    key: str
    label: str
    argv: list[str]
    ok_rc: tuple[int, ...] = (0,)
    reps: int | None = None  # fewer repetitions for very slow commands
    samples: list[Sample] = field(default_factory=list)
    stdout_path: Path | None = None
    stderr_tail: str = ""

    def shell(self) -> str:
        def short(a: str) -> str:
            for base, name in ((str(BIN) + "/", ".venv/bin/"), (str(ROOT) + "/", "")):
                if a.startswith(base):
                    return name + a[len(base):]
            return a
        return " ".join(shlex.quote(short(a)) for a in self.argv)


def measure(cmd: Cmd, keep_output: bool) -> Sample:
    """One run in a fresh child; wall time from just before the fork to the
    reap, peak RSS of that child alone from wait4."""
    LOGS.mkdir(parents=True, exist_ok=True)
    out_path = LOGS / f"{cmd.key}.stdout" if keep_output else None
    with contextlib.ExitStack() as files:
        err = files.enter_context(tempfile.TemporaryFile())
        stdout = files.enter_context(open(out_path, "wb")) if out_path else subprocess.DEVNULL
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd.argv, stdout=stdout, stderr=err, stdin=subprocess.DEVNULL, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read()[-2000:].decode("utf-8", "replace")
    if proc.returncode not in cmd.ok_rc:
        cmd.stderr_tail = tail
    if out_path:
        cmd.stdout_path = out_path
    return Sample(wall_s=wall, rss_kib=int(usage.ru_maxrss), cpu_s=usage.ru_utime + usage.ru_stime,
                  rc=proc.returncode)


def run_group(name: str, cmds: list[Cmd], reps: int, log) -> None:
    """Warm up each command once, then ``reps`` rounds in rotating order."""
    log(f"== {name}: {len(cmds)} commands x {reps} (+1 warm-up)")
    for cmd in cmds:
        measure(cmd, keep_output=True)
    for rep in range(reps):
        k = rep % len(cmds)
        for cmd in cmds[k:] + cmds[:k]:
            if cmd.reps is not None and len(cmd.samples) >= cmd.reps:
                continue
            s = measure(cmd, keep_output=False)
            cmd.samples.append(s)
            log(f"   {cmd.key:<28} {s.wall_s * 1000:9.1f} ms {s.rss_kib / 1024:8.1f} MiB rc={s.rc}")


def summary(cmd: Cmd) -> dict:
    walls = [s.wall_s for s in cmd.samples]
    rss = [s.rss_kib for s in cmd.samples]
    return {
        "label": cmd.label,
        "command": cmd.shell(),
        "n": len(walls),
        "wall_median_s": statistics.median(walls) if walls else None,
        "wall_min_s": min(walls) if walls else None,
        "wall_max_s": max(walls) if walls else None,
        "cpu_median_s": statistics.median(s.cpu_s for s in cmd.samples) if walls else None,
        "rss_median_mib": statistics.median(rss) / 1024 if rss else None,
        "rss_max_mib": max(rss) / 1024 if rss else None,
        "rcs": sorted({s.rc for s in cmd.samples}),
        "ok": all(s.rc in cmd.ok_rc for s in cmd.samples),
        "stderr_tail": cmd.stderr_tail[-600:] if cmd.stderr_tail else None,
        "samples": [{"wall_s": round(s.wall_s, 5), "rss_mib": round(s.rss_kib / 1024, 2), "cpu_s": round(s.cpu_s, 4),
                     "rc": s.rc} for s in cmd.samples],
    }


def paired_ratio(num: Cmd, den: Cmd) -> float | None:
    """Median over repetitions of num/den (runs of one repetition are adjacent in time)."""
    n = min(len(num.samples), len(den.samples))
    if not n:
        return None
    return statistics.median(num.samples[i].wall_s / den.samples[i].wall_s for i in range(n))


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


# ---------------------------------------------------------------------------
# inputs


def ensure_inputs(big: bool, log) -> dict:
    manifest = INPUTS / "manifest.json"
    if not manifest.exists():
        log("building ResNet50 inputs (bench/make_inputs.py) ...")
        subprocess.run([PY, str(HERE / "make_inputs.py"), str(INPUTS)], check=True, cwd=ROOT,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    info = {"resnet": json.loads(manifest.read_text())}
    if big:
        big_manifest = BIG / "manifest.json"
        if not big_manifest.exists():
            log("building big inputs (bench/make_big.py) ...")
            subprocess.run([PY, str(HERE / "make_big.py"), str(BIG)], check=True, cwd=ROOT,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        info["big"] = json.loads(big_manifest.read_text())
    return info


def onnx_reader_state() -> str:
    """'ready', or why the ONNX comparisons are pending."""
    try:
        spec = importlib.util.find_spec("reglint.readers.onnx")
    except Exception as exc:  # pragma: no cover
        return f"pending ({type(exc).__name__})"
    return "ready" if spec is not None else "pending (src/reglint/readers/onnx/ not there yet)"


# ---------------------------------------------------------------------------
# comparisons


def precompile(log) -> None:
    """Write reglint's bytecode before timing it, as ``pip install`` does for
    a regular install (and did for Keras, TensorFlow and numpy). An editable
    install under ``PYTHONDONTWRITEBYTECODE`` would otherwise compile its ~60
    modules from source in every timed run: ~100 ms no user pays."""
    import compileall

    ok = all(compileall.compile_dir(str(ROOT / d), quiet=1) for d in ("src", "rules"))
    log(f"bytecode for src/ and rules/ written ({'ok' if ok else 'with errors'})")


def release_install(log) -> str:
    """reglint as ``pip install reglint`` leaves it: this checkout built and
    installed (not editable, bytecode compiled by pip) into a fresh venv under
    ``bench/out/release``, whose dependencies (numpy, h5py, onnx, typer, rich)
    come from this venv's site-packages through a path entry. The editable
    install of a checkout costs every run its import hook (~15 ms: pathlib,
    re, fnmatch at start-up); a user's install does not. Returns its script."""
    venv = OUT / "release"
    if venv.exists():
        shutil.rmtree(venv)
    base = getattr(sys, "_base_executable", None) or PY
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_dirs = [Path(p) for p in __import__("site").getsitepackages()]
    target = next((venv / "lib").glob("python*/site-packages"))
    # A plain path line: the editable install's own .pth files there are not run.
    (target / "_bench_dependencies.pth").write_text("\n".join(str(d) for d in site_dirs) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-cache-dir", str(ROOT)], check=True, env=env, cwd=str(OUT))
    script = venv / "bin" / "reglint"
    where = subprocess.run([str(script.parent / "python"), "-c", "import reglint; print(reglint.__file__)"],
                           capture_output=True, text=True, check=True).stdout.strip()
    if not where.startswith(str(venv)):
        raise SystemExit(f"bench/run.py: the release venv imports reglint from {where}, not its own install")
    log(f"reglint installed from this checkout into {venv.relative_to(ROOT)} (wheel, not editable)")
    return str(script)


def reglint_check(key: str, *files: Path, label: str = "reglint check") -> Cmd:
    # rc 1 = findings at or above --fail-on: a successful lint.
    return Cmd(key, f"`{label} --format json --no-cache FILE`", [REGLINT, "check", "--format", "json", "--no-cache",
                                                              *map(str, files)], ok_rc=(0, 1))


def keras_load(key: str, file: Path, reps: int | None = None) -> Cmd:
    return Cmd(key, "`keras.saving.load_model(FILE, compile=False); m.count_params()`",
               [PY, "-c", KERAS_LOAD, str(file)], reps=reps)


def bare_reads(prefix: str, *files: Path) -> list[Cmd]:
    return [Cmd(f"{prefix}.cat", "`cat FILE > /dev/null`", ["cat", *map(str, files)]),
            Cmd(f"{prefix}.pyread", "bare read: `python -c` reading FILE in 16 MiB chunks",
                [PY, "-c", PY_READ, *map(str, files)])]


def reglint_json(cmd: Cmd) -> dict:
    """What reglint said on its warm-up run: params, findings, error."""
    try:
        data = json.loads(cmd.stdout_path.read_text())
        f = data["files"][0]
        model = f.get("model") or {}
        return {"error": f.get("error"), "params": (model.get("params") or {}).get("total"),
                "findings": len(f.get("findings") or []),
                "codes": sorted({x.get("code") for x in f.get("findings") or []})}
    except Exception as exc:
        return {"error": f"unparsable output ({type(exc).__name__})"}


def main(argv: list[str] | None = None) -> int:
    global REGLINT  # the release install replaces this venv's script for every command
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repetitions instead of 7")
    parser.add_argument("--big", action="store_true", help="also the ~1 GB .keras and ~2 GB ONNX models")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--only", default=None,
                        help="comma-separated groups: startup,small,keras,h5,onnx,onnx_ext,onnx_int4,hf_int4,"
                             "dcp,big_keras,big_onnx")
    parser.add_argument("--no-markdown", action="store_true", help="write results.json only")
    parser.add_argument("--editable", action="store_true",
                        help="time this venv's (editable) reglint instead of a fresh release install")
    args = parser.parse_args(argv)
    reps = args.reps or (3 if args.quick else 7)
    only = set(args.only.split(",")) if args.only else None
    if REGLINT is None:
        sys.exit("bench/run.py: no reglint script beside this Python; run it with .venv/bin/python")
    OUT.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def log(msg: str) -> None:
        print(msg, flush=True)
        lines.append(msg)

    def wanted(name: str) -> bool:
        return only is None or name in only

    if args.editable:
        precompile(log)
    else:
        REGLINT = release_install(log)
    started = time.time()
    load_before = os.getloadavg()
    inputs = ensure_inputs(args.big, log)
    rn = inputs["resnet"]
    f_keras, f_h5 = INPUTS / "resnet50_l2.keras", INPUTS / "resnet50_l2.h5"
    f_onnx, f_onnx_ext, f_onnx_data = (INPUTS / "resnet50.onnx", INPUTS / "resnet50_ext.onnx",
                                       INPUTS / "resnet50_ext.onnx.data")
    onnx_state = onnx_reader_state()
    groups: dict[str, dict] = {}

    def record(name: str, title: str, cmds: list[Cmd], file_bytes: int | None, extra: dict | None = None,
               group_reps: int | None = None) -> dict[str, Cmd]:
        run_group(title, cmds, group_reps or reps, log)
        by = {c.key.split(".", 1)[1]: c for c in cmds}
        groups[name] = {"title": title, "file_bytes": file_bytes,
                        "commands": {k: summary(c) for k, c in by.items()}, **(extra or {})}
        if "reglint" in by and by["reglint"].stdout_path:
            groups[name]["reglint_output"] = reglint_json(by["reglint"])
        return by

    def add_ratios(name: str, by: dict[str, Cmd], pairs: list[tuple[str, str, str]]) -> None:
        out = groups[name].setdefault("ratios", {})
        for label, num, den in pairs:
            if num in by and den in by:
                a, b = summary(by[num]), summary(by[den])
                out[label] = {"of_medians": ratio(a["wall_median_s"], b["wall_median_s"]),
                              "paired_median": paired_ratio(by[num], by[den]),
                              "rss": ratio(a["rss_median_mib"], b["rss_median_mib"])}

    # 4. start-up: --version vs python -c pass; small check vs import keras
    small = SMALL_MODELS[0]
    if wanted("startup"):
        by = record("startup", f"start-up (FILE = {small.relative_to(ROOT)})", [
            Cmd("startup.version", "`reglint --version`", [REGLINT, "--version"]),
            Cmd("startup.pass", "`python -c pass`", [PY, "-c", "pass"]),
            reglint_check("startup.reglint", small),
            Cmd("startup.import_keras", '`python -c "import keras"`', [PY, "-c", "import keras"]),
        ], small.stat().st_size)
        add_ratios("startup", by, [("version / python -c pass", "version", "pass"),
                                   ("reglint check small / import keras", "reglint", "import_keras")])

    # 1. small models: reglint vs Keras' loader
    if wanted("small"):
        for model in SMALL_MODELS:
            name = f"small:{model.stem}"
            by = record(name, f"small model {model.name}", [
                reglint_check(f"{name}.reglint", model), keras_load(f"{name}.keras", model),
            ], model.stat().st_size)
            add_ratios(name, by, [("keras / reglint", "keras", "reglint")])

    # 1+2. ResNet50 .keras and .h5: reglint vs Keras' loader vs bare read
    for name, path in (("keras", f_keras), ("h5", f_h5)):
        if not wanted(name):
            continue
        by = record(f"resnet50:{name}", f"ResNet50 {path.name}", [
            reglint_check(f"{name}.reglint", path), keras_load(f"{name}.keras", path), *bare_reads(name, path),
        ], path.stat().st_size, {"params_keras": rn["keras_params"]})
        add_ratios(f"resnet50:{name}", by, [("keras / reglint", "keras", "reglint"),
                                             ("reglint / pyread", "reglint", "pyread"),
                                             ("reglint / cat", "reglint", "cat")])

    # 3. ONNX, embedded and external data
    for name, path, data in (("onnx", f_onnx, None), ("onnx_ext", f_onnx_ext, f_onnx_data)):
        if not wanted(name):
            continue
        files = [path] + ([data] if data else [])
        size = sum(p.stat().st_size for p in files)
        if onnx_state != "ready":
            groups[f"resnet50:{name}"] = {"title": f"ResNet50 {path.name}", "file_bytes": size, "pending": onnx_state}
            log(f"== ResNet50 {path.name}: {onnx_state}")
            continue
        by = record(f"resnet50:{name}", f"ResNet50 {path.name}" + (" + .data" if data else ""), [
            reglint_check(f"{name}.reglint", path),
            Cmd(f"{name}.onnx_load", "`onnx.load(FILE)`", [PY, "-c", ONNX_LOAD, str(path)]),
            *bare_reads(name, *files),
        ], size, {"params_onnx": rn["onnx_params"]})
        add_ratios(f"resnet50:{name}", by, [("onnx.load / reglint", "onnx_load", "reglint"),
                                             ("reglint / pyread", "reglint", "pyread"),
                                             ("reglint / cat", "reglint", "cat")])

    # 4. a 4-bit weight-only ONNX model (MatMulNBits, external data): reglint
    # dequantizes every block for its statistics; onnxruntime builds a session
    if wanted("onnx_int4") and onnx_state == "ready":
        int4 = INT4 / "manifest.json"
        if not int4.exists():
            log("building the 4-bit input (bench/make_int4.py) ...")
            subprocess.run([PY, str(HERE / "make_int4.py"), str(INT4)], check=True, cwd=ROOT)
        q4 = json.loads(int4.read_text())
        path, data = Path(q4["path"]), Path(q4["data"])
        by = record("int4:onnx", f"4-bit {path.name} + .data (MatMulNBits)", [
            reglint_check("int4.reglint", path),
            Cmd("int4.onnx_load", "`onnx.load(FILE)`", [PY, "-c", ONNX_LOAD, str(path)]),
            Cmd("int4.ort", "`onnxruntime.InferenceSession(FILE)`", [PY, "-c", ORT_SESSION, str(path)]),
            *bare_reads("int4", path, data),
        ], path.stat().st_size + data.stat().st_size, {"float_params": q4["float_params"]})
        add_ratios("int4:onnx", by, [("onnxruntime / reglint", "ort", "reglint"),
                                     ("onnx.load / reglint", "onnx_load", "reglint"),
                                     ("reglint / pyread", "reglint", "pyread")])

    # 5. a 4-bit Hugging Face checkpoint (compressed-tensors W4A16, as vLLM
    # serves them): reglint dequantizes every group for its statistics;
    # transformers builds the model (it decompresses on the CPU)
    if wanted("hf_int4") and Path(TORCH_PY).exists():
        manifest = HF_INT4 / "manifest.json"
        if not manifest.exists():
            log("building the 4-bit Hugging Face input (bench/make_hf_int4.py) ...")
            subprocess.run([TORCH_PY, str(HERE / "make_hf_int4.py"), str(HF_INT4)], check=True, cwd=ROOT)
        q4 = json.loads(manifest.read_text())
        weights = sorted(HF_INT4.glob("*.safetensors"))
        by = record("int4:hf", "4-bit Llama, compressed-tensors W4A16 (HF folder)", [
            reglint_check("hf_int4.reglint", HF_INT4),
            Cmd("hf_int4.transformers", "`transformers.AutoModelForCausalLM.from_pretrained(FOLDER)` (torch env)",
                [TORCH_PY, "-c", HF_LOAD, str(HF_INT4)]),
            *bare_reads("hf_int4", *weights),
        ], q4["bytes"], {"float_params": q4["float_params"]})
        add_ratios("int4:hf", by, [("transformers / reglint", "transformers", "reglint"),
                                   ("reglint / pyread", "reglint", "pyread")])
    elif wanted("hf_int4"):
        log(f"== hf_int4 skipped: no torch environment at {TORCH_PY} (REGLINT_TORCH_PYTHON)")

    # 6. a sharded FSDP training checkpoint (torch.distributed.checkpoint, 4
    # ranks, weights and AdamW moments): reglint reads the weights' chunks in
    # place for their statistics (-f json asks for every one); DCP's reader
    # loads every tensor first
    if wanted("dcp") and Path(TORCH_PY).exists():
        manifest = DCP / "manifest.json"
        if not manifest.exists():
            log("building the sharded checkpoint (bench/make_dcp.py) ...")
            subprocess.run([TORCH_PY, str(HERE / "make_dcp.py"), str(DCP)], check=True, cwd=ROOT)
        info = json.loads(manifest.read_text())
        by = record("dcp", f"FSDP2 checkpoint, {info['ranks']} ranks, Llama 77M + AdamW (DCP folder)", [
            reglint_check("dcp.reglint", DCP),
            Cmd("dcp.torch", "`torch.distributed.checkpoint` load + count + sum of squares (torch env)",
                [TORCH_PY, "-c", DCP_LOAD, str(DCP)]),
            *bare_reads("dcp", *sorted(DCP.glob("*.distcp"))),
        ], info["bytes"], {"params": info["params"]})
        add_ratios("dcp", by, [("torch DCP / reglint", "torch", "reglint"), ("reglint / pyread", "reglint", "pyread")])
    elif wanted("dcp"):
        log(f"== dcp skipped: no torch environment at {TORCH_PY} (REGLINT_TORCH_PYTHON)")

    # --big: peak memory on ~1 GB .keras and ~2 GB ONNX
    if args.big:
        bi = inputs["big"]
        big_reps = args.reps or 3
        if wanted("big_keras"):
            path = Path(bi["files"]["keras"]["path"])
            by = record("big:keras", f"big {path.name}", [
                reglint_check("big_keras.reglint", path), *bare_reads("big_keras", path),
                keras_load("big_keras.keras", path, reps=1),
            ], path.stat().st_size, {"largest_tensor_bytes": bi["keras_largest_tensor_bytes"]}, group_reps=big_reps)
            add_ratios("big:keras", by, [("keras / reglint", "keras", "reglint"),
                                          ("reglint / pyread", "reglint", "pyread")])
        if wanted("big_onnx"):
            path, data = Path(bi["files"]["onnx"]["path"]), Path(bi["files"]["onnx_data"]["path"])
            size = path.stat().st_size + data.stat().st_size
            if onnx_state != "ready":
                groups["big:onnx"] = {"title": f"big {path.name}", "file_bytes": size, "pending": onnx_state}
                log(f"== big {path.name}: {onnx_state}")
            else:
                by = record("big:onnx", f"big {path.name} + .data", [
                    reglint_check("big_onnx.reglint", path), *bare_reads("big_onnx", path, data),
                    Cmd("big_onnx.onnx_load", "`onnx.load(FILE)`", [PY, "-c", ONNX_LOAD, str(path)], reps=1),
                ], size, {"largest_tensor_bytes": bi["onnx_largest_tensor_bytes"]}, group_reps=big_reps)
                add_ratios("big:onnx", by, [("onnx.load / reglint", "onnx_load", "reglint"),
                                             ("reglint / pyread", "reglint", "pyread")])

    results = {
        "command": " ".join([".venv/bin/python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 1),
        "reps": reps,
        "machine": machine_info(load_before),
        "onnx_reader": onnx_state,
        "inputs": inputs,
        "groups": groups,
    }
    results["targets"] = evaluate_targets(groups)
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (LOGS / "run.log").write_text("\n".join(lines) + "\n")
    if not args.no_markdown:
        write_markdown(HERE / "RESULTS.md", markdown(results))
    log(f"wrote {OUT / 'results.json'}" + ("" if args.no_markdown else f" and {HERE / 'RESULTS.md'}"))
    for t in results["targets"]:
        log(f"  [{t['status']:>7}] {t['target']}: {t['measured']}")
    return 0


# ---------------------------------------------------------------------------
# targets and report


def _med(groups, g, cmd, what="wall_median_s"):
    try:
        return groups[g]["commands"][cmd][what]
    except KeyError:
        return None


def evaluate_targets(groups: dict) -> list[dict]:
    out = []

    def add(target: str, value, limit, ok_if_le: bool, fmt: str, pending: str | None = None):
        if value is None:
            out.append({"target": target, "status": "pending" if pending else "not run",
                        "measured": pending or "not measured", "value": None})
            return
        ok = value <= limit if ok_if_le else value >= limit
        out.append({"target": target, "status": "pass" if ok else "FAIL", "measured": fmt.format(value),
                    "value": value, "limit": limit})

    g = "resnet50:keras"
    rk = groups.get(g, {}).get("ratios", {})
    add(f"ResNet50 .keras: Keras loader / reglint >= {T_SPEEDUP:g}x",
        (rk.get("keras / reglint") or {}).get("of_medians"), T_SPEEDUP, False, "{:.1f}x")
    rss = ratio(_med(groups, g, "reglint", "rss_median_mib"), _med(groups, g, "keras", "rss_median_mib"))
    add(f"ResNet50 .keras: reglint peak RSS / Keras loader's <= {T_RSS:g}", rss, T_RSS, True, "{:.3f}")
    add(f"ResNet50 .keras: reglint / bare read (python, 16 MiB chunks) <= {T_BARE:g}",
        (rk.get("reglint / pyread") or {}).get("of_medians"), T_BARE, True, "{:.1f}x")
    add(f"ResNet50 .keras: reglint / bare read (cat) <= {T_BARE:g}",
        (rk.get("reglint / cat") or {}).get("of_medians"), T_BARE, True, "{:.1f}x")
    # The same, net of start-up: what reading this file adds to a small check,
    # against what reading it adds to python -c pass.
    net_r = _sub(_med(groups, g, "reglint"), _med(groups, "startup", "reglint"))
    net_b = _sub(_med(groups, g, "pyread"), _med(groups, "startup", "pass"))
    add("ResNet50 .keras, net of start-up: (reglint - reglint on a small file) / (pyread - python -c pass) "
        f"<= {T_BARE:g}", ratio(net_r, net_b) if net_b and net_b > 0 else None, T_BARE, True, "{:.1f}x")
    rs = groups.get("startup", {}).get("ratios", {})
    add(f"small model: reglint check / python -c \"import keras\" <= {T_SMALL:g}",
        (rs.get("reglint check small / import keras") or {}).get("of_medians"), T_SMALL, True, "{:.3f}")
    add(f"reglint --version < {T_VERSION_S * 1000:.0f} ms", _med(groups, "startup", "version"), T_VERSION_S, True,
        "{:.3f} s")
    for g in ("big:keras", "big:onnx"):
        grp = groups.get(g)
        if grp is None:
            continue
        if "pending" in grp:
            add(f"{g}: reglint peak RSS <= start-up RSS + largest tensor", None, None, True, "", grp["pending"])
            continue
        base = _med(groups, "startup", "reglint", "rss_median_mib")
        peak = _med(groups, g, "reglint", "rss_max_mib")
        bound = (base or 0) + grp["largest_tensor_bytes"] / MiB
        add(f"{g}: reglint peak RSS <= small-model RSS ({base:.0f} MiB) + largest tensor "
            f"({grp['largest_tensor_bytes'] / MiB:.0f} MiB) = {bound:.0f} MiB", peak, bound, True, "{:.0f} MiB")
    return out


def _sub(a, b):
    return a - b if a is not None and b is not None else None


def machine_info(load_before) -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass

    def version(mod: str) -> str | None:
        try:
            from importlib.metadata import version as v
            return v(mod)
        except Exception:
            return None

    return {
        "cpu": cpu, "cpus": os.cpu_count(), "mem_gib": mem, "os": platform.platform(),
        "python": platform.python_version(),
        "packages": {p: version(p) for p in ("reglint", "keras", "tensorflow", "onnx", "numpy", "h5py", "typer")},
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def _ms(s):
    return "—" if s is None else (f"{s * 1000:.0f} ms" if s < 10 else f"{s:.1f} s")


def _x(r):
    return "—" if r is None else (f"{r:.2f}" if r < 10 else f"{r:.1f}")


def _mb(b):
    return "—" if b is None else (f"{b / 1e6:.0f} MB" if b >= 1e6 else f"{b / 1e3:.0f} kB")


def markdown(res: dict) -> str:
    m = res["machine"]
    out = [
        "# reglint benchmarks",
        "",
        "Generated by `bench/run.py`; the raw samples are in `bench/out/results.json`.",
        "",
        f"- Command: `{res['command']}`",
        f"- Date: {res['date']} ({res['duration_s']:.0f} s)",
        f"- Machine: {m['cpu']}, {m['cpus']} CPUs, {m['mem_gib']} GiB, {m['os']}; Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v),
        f"- Load average before / after: {m['loadavg_before']} / {m['loadavg_after']} "
        "(the machine is shared: read the ratios, which come from alternating runs, rather than absolute times)",
        f"- Method: every command in a fresh process; commands of a row group alternate (rotating order), "
        f"{res['reps']} repetitions after one warm-up each (files in the page cache); wall time = median; "
        "peak RSS = that child's `ru_maxrss` (median); paired = median over repetitions of the ratio of "
        "adjacent runs.",
        "",
        "## Targets",
        "",
        "| target | measured | status |",
        "|---|---|---|",
    ]
    for t in res["targets"]:
        out.append(f"| {t['target']} | {t['measured']} | {t['status']} |")
    out += ["", "## Timings", "",
            "| case | file | command | n | wall (median) | min | peak RSS | vs reglint (of medians / paired) |",
            "|---|---|---|---|---|---|---|---|"]
    for grp in res["groups"].values():
        if "pending" in grp:
            out.append(f"| {grp['title']} | {_mb(grp['file_bytes'])} | — | — | — | — | — | {grp['pending']} |")
            continue
        cmds = grp["commands"]
        ref = cmds.get("reglint")
        for key, c in cmds.items():
            rel = "—"
            if ref and key != "reglint" and c["wall_median_s"] and ref["wall_median_s"]:
                of_med = c["wall_median_s"] / ref["wall_median_s"]
                paired = statistics.median(
                    a["wall_s"] / b["wall_s"] for a, b in zip(c["samples"], ref["samples"], strict=False)
                ) if c["samples"] else None
                rel = f"{_x(of_med)}x / {_x(paired)}x"
            flag = "" if c["ok"] else f" (rc {c['rcs']})"
            out.append(f"| {grp['title']} | {_mb(grp['file_bytes'])} | {c['label']}{flag} | {c['n']} | "
                       f"{_ms(c['wall_median_s'])} | {_ms(c['wall_min_s'])} | {c['rss_median_mib']:.0f} MiB | {rel} |")
    out += ["", "## What reglint reported", "",
            "| case | params (reglint) | params (Keras/ONNX) | findings | error |", "|---|---|---|---|---|"]
    for grp in res["groups"].values():
        ro = grp.get("reglint_output")
        if not ro:
            continue
        want = grp.get("params_keras") or grp.get("params_onnx") or "—"
        out.append(f"| {grp['title']} | {ro.get('params')} | {want} | {ro.get('findings')} | {ro.get('error') or ''} |")
    out += ["", "## Notes", "", NOTES_PLACEHOLDER, ""]
    return "\n".join(out)


NOTES_PLACEHOLDER = "<!-- bench/run.py keeps whatever follows this heading when it rewrites the file -->"


def write_markdown(path: Path, text: str) -> None:
    """Write the generated report, keeping the hand-written notes of the old one."""
    if path.exists():
        old = path.read_text()
        marker = "\n## Notes\n"
        if marker in old:
            text = text.split(marker)[0] + marker + old.split(marker, 1)[1]
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
