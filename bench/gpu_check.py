"""Check ``reglint profile`` on Keras 3's torch backend on a CUDA GPU against
the same runs on the CPU: one short script for a machine with PyTorch and
no TensorFlow.

Run from the repository root with python 3.10+, torch, numpy, h5py and
rich; Keras 3 and its pure dependencies either importable or as wheels in
``--wheels DIR`` (installed, offline and only where missing, into a
temporary folder: keras, namex, optree, absl-py, ml-dtypes, packaging)::

    python3 bench/gpu_check.py --wheels .whl [--large] [--only NAME,...]   # --device gpu and --device cpu
    python3 bench/gpu_check.py --devices cpu   # no GPU: the CPU half only

Every profile runs in its own process with ``KERAS_BACKEND=torch``, a
fixed ``--steps`` (so both devices take the same steps) and an ``.npz``
this script writes (learnable labels: a random linear teacher for the MLPs,
class-dependent mean colours for the ResNets), on four models: the healthy
and the wrecked MLP of tests/test_profile.py (built here by Keras on torch,
softmax outputs: the committed MLP fixtures feed logits to a probability
loss, which Keras' backends clip differently) and two committed ResNet
fixtures, the healthy recipe and one whose kernel L2 under SGD wrecks it
(fixtures/scenarios), and the wrecked MLP saved after ``fit`` (``--init
auto`` draws fresh weights and judges at the file's recorded steps);
``--large`` adds an untrained ResNet50 at 64x64, where a GPU pays.
Per run it prints the wall
time, the device the report names, the CUDA memory the process allocated,
the outcome and the twin's verdict; per model, the largest relative
difference of the per-layer gradient ratios ``|g_pen|/|g_data|`` between
the GPU and the CPU, and whether the verdicts agree (a note, not a
failure: hundreds of SGD steps amplify the devices' different summation
orders, and a ResNet at lr 0.1 can end on either side of a verdict's
threshold). The JSON reports and ``gpu_check.json`` (the summary) go to
``$OUT`` (or ``--out``).

Exit codes: 0 all good; 1 a run failed, or a ``--device gpu`` run did not
use the GPU (its report names no GPU, or the process allocated no CUDA
memory); 2 a missing import or no ``nvidia-smi`` (nothing was run); 3 the
GPU's and the CPU's gradient ratios at the saved weights differ by more
than RATIO_TOLERANCE.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# (name, file (None: built by BUILD), input shape, classes, data kind, steps)
MODELS = [
    ("mlp-healthy", None, (20,), 3, "teacher", 300),
    ("mlp-wrecked", None, (20,), 3, "teacher", 300),
    ("resnet-healthy", "fixtures/scenarios/recipe_resnet_sgd.keras", (16, 16, 3), 10, "means", 400),
    ("resnet-wrecked", "fixtures/scenarios/scenario_bn_l2_strong.keras", (16, 16, 3), 10, "means", 400),
    # saved after fit: --init auto draws fresh weights (keras.models.clone_model on the device) and, with no
    # --steps (0 here), judges at the optimizer's recorded count, 96 steps
    ("mlp-trained", None, (20,), 3, "teacher", 0),
]
# --large: where a GPU should pay, ResNet50 (23.5M weights, untrained) at 64x64 with L2(1e-4) on every kernel
# under SGD momentum 0.9, the ImageNet recipe (lr 0.1 at batch 256, scaled linearly to profile's batch of 32:
# 0.0125; Goyal et al. 2017), a few steps on each device.
LARGE = [("resnet50", None, (64, 64, 3), 10, "means", 20)]
LARGE_TIMEOUT = 300
SAMPLES = 1280  # a fifth held back: 1024 to train on, 256 to score
# The separation of the ResNets' class colours, in pixel-noise units: wide
# enough that the healthy recipe reaches ~100% held-out accuracy in 400 steps.
MEAN_SCALE = 3.0
# GPU and CPU sum in different orders (profile turns TF32 off:
# backend_torch.full_float32), so gradient ratios agree to float32's
# accumulated rounding, not exactly.
RATIO_TOLERANCE = 0.02
# A kernel that feeds BatchNorm gets a data gradient orthogonal to it (scale
# invariance): a difference of nearly equal terms, whose float32 rounding a
# 50-layer network amplifies. ResNet50's 54 ratios on an H200 against 16 CPU
# cores, TF32 off: median 0.4%, at most 5.1% (conv2_block2_1_conv).
LARGE_RATIO_TOLERANCE = 0.1
# tests/test_profile.py's healthy and wrecked MLPs (L2(0.3) under SGD(0.03,
# momentum 0.9) shrinks an unsupported kernel 18% a step), saved by Keras on
# torch on the CPU.
BUILD = """
import sys
import keras
import numpy as np
keras.utils.set_random_seed(0)
def mlp(widths, reg):
    layers = [keras.Input((widths[0],))]
    layers += [keras.layers.Dense(w, activation="relu", kernel_regularizer=reg) for w in widths[1:-1]]
    layers.append(keras.layers.Dense(widths[-1], activation="softmax", kernel_regularizer=reg))
    return keras.Sequential(layers)
with keras.device("cpu"):
    healthy = mlp([20, 32, 3], keras.regularizers.L2(1e-4))
    healthy.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    healthy.save(sys.argv[1] + "/mlp-healthy.keras")
    wrecked = mlp([20, 64, 3], keras.regularizers.L2(0.3))
    wrecked.compile(keras.optimizers.SGD(0.03, momentum=0.9), "sparse_categorical_crossentropy")
    wrecked.save(sys.argv[1] + "/mlp-wrecked.keras")
    trained = mlp([20, 64, 3], keras.regularizers.L2(0.3))
    trained.compile(keras.optimizers.SGD(0.03, momentum=0.9), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1024, 20)).astype("float32")
    trained.fit(x, (x @ rng.standard_normal((20, 3))).argmax(axis=1), batch_size=32, epochs=3, verbose=0)
    trained.save(sys.argv[1] + "/mlp-trained.keras")
    if sys.argv[2:] == ["large"]:
        net = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=10)
        config = net.get_config()
        for layer in config["layers"]:
            if layer["class_name"] in ("Conv2D", "Dense"):
                layer["config"]["kernel_regularizer"] = keras.regularizers.serialize(keras.regularizers.L2(1e-4))
        net = keras.Model.from_config(config)
        net.compile(keras.optimizers.SGD(0.0125, momentum=0.9), "sparse_categorical_crossentropy")
        net.save(sys.argv[1] + "/resnet50.keras")
"""
# One profile (a fresh process: imports, CUDA start-up, load, both runs).
RUN_TIMEOUT = 150
IMPORTS = ("numpy", "h5py", "rich", "packaging", "absl", "ml_dtypes", "namex", "optree", "keras", "torch")
# The import name of each module --wheels may supply, and its wheel's file name.
WHEELS = {"keras": "keras-", "namex": "namex-", "optree": "optree-", "absl": "absl_py-", "ml_dtypes": "ml_dtypes-",
          "packaging": "packaging-"}

# Runs one profile in a fresh process (``run_profile``, the CLI's body:
# Typer's version does not matter here), then reports the CUDA memory it used.
WRAPPER = """
import json, sys, time
from reglint.profile.command import run_profile
model, data, device, steps, report = sys.argv[1:]
start = time.perf_counter()
code = run_profile(model, data=data, device=device, steps=int(steps) or None, backend="torch", output_format="json",
                   output_file=report, fail_on="none")
wall = time.perf_counter() - start
import torch
peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
print("GPU_CHECK " + json.dumps({"code": code, "wall": wall, "cuda_peak_bytes": peak}))
"""


def main() -> int:
    args = parse_args()
    out = Path(args.out or os.environ.get("OUT") or tempfile.mkdtemp(prefix="gpu_check_"))
    out.mkdir(parents=True, exist_ok=True)
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    if "gpu" in devices and not nvidia_smi():
        return 2
    work = Path(tempfile.mkdtemp(prefix="gpu_check_work_"))  # code, data, built models: not returned in $OUT
    try:
        env = environment(work)
        if args.wheels and not install_wheels(Path(args.wheels), work / "site", env):
            return 2
        models = MODELS + LARGE if args.large else MODELS
        if args.only:
            models = [m for m in models if m[0] in args.only.split(",")]
        return check(out, work, env, devices, args.steps, models)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check(out: Path, work: Path, env: dict[str, str], devices: list[str], steps_override: int | None,
          models: list) -> int:
    missing = missing_imports(env)
    if missing:
        print(f"missing imports: {', '.join(missing)} (carry their wheels; keras needs absl-py and ml-dtypes)")
        return 2
    started = time.perf_counter()
    built = work / "models"
    built.mkdir()
    size = ["large"] if any(m in LARGE for m in models) else []
    done = subprocess.run([sys.executable, "-c", BUILD, str(built), *size], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    if done.returncode != 0:
        print(f"FAIL: building the MLPs: {done.stderr.strip()[-600:]}")
        return 1
    runs, failures = [], []
    for index, (name, file, shape, classes, kind, steps) in enumerate(models):
        data = write_data(work / "data" / f"{name}.npz", shape, classes, kind, seed=index)
        model = ROOT / file if file else built / f"{name}.keras"
        for device in devices:
            run = profile(name, model, data, device, out, env, steps_override or steps)
            runs.append(run)
            print_run(run)
            if run["problem"]:
                failures.append(f"{name} --device {device}: {run['problem']}")
    disagreements = compare(runs, devices, models)
    (out / "gpu_check.json").write_text(json.dumps({"runs": runs, "failures": failures,
                                                    "disagreements": disagreements}, indent=1))
    print(f"\n{len(runs)} runs in {time.perf_counter() - started:.0f} s; reports and gpu_check.json in {out}")
    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    if disagreements:
        print("DISAGREE: " + "; ".join(disagreements))
        return 3
    verdicts = verdict_notes(runs, devices)
    if verdicts:
        print("note: the verdicts differ between the devices for " + ", ".join(verdicts) +
              " (chaotic training; the gradient ratios at the saved weights agree)")
    print(f"OK: {len(runs)} runs on {', '.join(devices)}" + (", the GPU used in every gpu run" if "gpu" in devices
                                                               else ""))
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="gpu,cpu", help="comma-separated: gpu, cpu (default both)")
    parser.add_argument("--steps", type=int, help="steps of each run, both devices alike (default: per model)")
    parser.add_argument("--wheels", help="folder of wheels for what is missing (keras, namex, optree, absl-py ...)")
    parser.add_argument("--large", action="store_true", help="add ResNet50 at 64x64 (where a GPU should pay)")
    parser.add_argument("--only", help="comma-separated model names (default all)")
    parser.add_argument("--out", help="folder for the reports (default $OUT, else a temporary folder)")
    return parser.parse_args()


def nvidia_smi() -> bool:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        print("nvidia-smi not found: no GPU to check (use --devices cpu)")
        return False
    listing = subprocess.run([exe, "-L"], capture_output=True, text=True)
    print(listing.stdout.strip() or listing.stderr.strip())
    return listing.returncode == 0


def environment(work: Path) -> dict[str, str]:
    """KERAS_BACKEND=torch and an import path where ``reglint.rules`` is the
    repository's rules/ (pyproject maps it there; a bare ``src`` on
    PYTHONPATH lacks it)."""
    farm = work / "pythonpath"
    shutil.copytree(ROOT / "src" / "reglint", farm / "reglint", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "rules", farm / "reglint" / "rules", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(farm), env.get("PYTHONPATH", "")) if p)
    env["KERAS_BACKEND"] = "torch"
    env.pop("REGLINT_CONFIG", None)
    return env


def install_wheels(folder: Path, target: Path, env: dict[str, str]) -> bool:
    """``pip install --no-index --no-deps`` into ``target`` the wheels of
    the WHEELS modules this interpreter cannot import; ``target`` goes first
    on PYTHONPATH."""
    needed = unimportable(list(WHEELS), env)
    files = [f for m in needed for f in sorted(folder.glob(f"{WHEELS[m]}*.whl"))[-1:]]
    lacking = [m for m in needed if not list(folder.glob(f"{WHEELS[m]}*.whl"))]
    if lacking:
        print(f"missing imports with no wheel in {folder}: {', '.join(lacking)}")
        return False
    if files:
        print("installing " + ", ".join(f.name for f in files))
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target",
                               str(target), *map(str, files)], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"pip failed: {done.stderr.strip()[-600:]}")
            return False
        env["PYTHONPATH"] = os.pathsep.join([str(target), env["PYTHONPATH"]])
    return True


def unimportable(modules: list[str], env: dict[str, str]) -> list[str]:
    probe = f"import importlib.util; print(' '.join(m for m in {modules!r} if importlib.util.find_spec(m) is None))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env).stdout.split()


def missing_imports(env: dict[str, str]) -> list[str]:
    code = ("import importlib.util, sys\n"
            f"print(' '.join(m for m in {IMPORTS!r} if importlib.util.find_spec(m) is None))\n"
            "import keras, torch; assert keras.backend.backend() == 'torch', keras.backend.backend()\n"
            "import reglint.profile.command, reglint.profile.backend_torch, reglint.rules\n"
            "print(f'python {sys.version.split()[0]}, torch {torch.__version__} (CUDA available: '\n"
            "      f'{torch.cuda.is_available()}), keras {keras.__version__}', file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    missing = done.stdout.split()
    if done.returncode == 0:
        print(done.stderr.strip().splitlines()[-1])
    if not missing and done.returncode != 0:
        missing = [f"(an import failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else '?'})"]
    return missing


def write_data(path: Path, shape: tuple[int, ...], classes: int, kind: str, seed: int) -> Path:
    """Learnable labels: ``teacher``, the argmax of a random linear map of
    standard normal inputs; ``means``, images of unit noise around a
    per-class mean colour (what global average pooling keeps)."""
    rng = np.random.default_rng(seed)
    if kind == "teacher":
        x = rng.standard_normal((SAMPLES, *shape)).astype("float32")
        y = (x.reshape(SAMPLES, -1) @ rng.standard_normal((int(np.prod(shape)), classes))).argmax(axis=1)
    else:
        y = rng.integers(0, classes, SAMPLES)
        means = rng.normal(0.0, MEAN_SCALE, (classes, shape[-1]))
        x = (rng.standard_normal((SAMPLES, *shape)) + means[y].reshape(SAMPLES, *[1] * (len(shape) - 1),
                                                                        shape[-1])).astype("float32")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, y=y.astype("int64"))
    return path


def profile(name: str, model: Path, data: Path, device: str, out: Path, env: dict[str, str], steps: int) -> dict:
    report_path = out / f"{name}.{device}.json"
    limit = LARGE_TIMEOUT if name in {m[0] for m in LARGE} else RUN_TIMEOUT
    argv = [str(model), str(data), device, str(steps), str(report_path)]
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"model": name, "device": device, "wall": limit, "problem": f"no result in {limit} s"}
    run = {"model": name, "device": device, "wall": time.perf_counter() - start, "problem": None}
    marker = [line for line in done.stdout.splitlines() if line.startswith("GPU_CHECK ")]
    if done.returncode != 0 or not marker:
        run["problem"] = f"exit {done.returncode}: {(done.stderr.strip() or done.stdout.strip())[-400:]}"
        return run
    run.update(json.loads(marker[-1][len("GPU_CHECK "):]))
    if run["code"] == 2 or not report_path.is_file():
        run["problem"] = f"reglint exit 2: {done.stderr.strip()[-400:]}"
        return run
    prof = json.loads(report_path.read_text())["files"][0]["model"]["analysis"]["profile"]
    twin = prof.get("twin") or {}
    run.update(reported_device=prof["device"], device_kind=prof["device_kind"], backend=prof.get("backend"),
               seconds=prof["seconds"], outcome=prof["outcome"]["label"],
               verdict=(twin.get("verdict") or {}).get("label"), steps=twin.get("steps"),
               start=(twin.get("start") or {}).get("weights", "").split(" ")[0],
               ratios={v["path"]: v["ratio"] for v in prof["variables"]},
               val_accuracy={k: (r.get("val_accuracy") or [None])[-1] for k, r in (twin.get("runs") or {}).items()})
    if run["backend"] != "torch":
        run["problem"] = f"the report says backend {run['backend']!r}, not torch"
    elif device == "gpu" and (run["device_kind"] != "gpu" or not run["cuda_peak_bytes"]):
        run["problem"] = (f"the GPU was not used: the report names {run['reported_device']!r} "
                          f"({run['device_kind']}), CUDA memory allocated {run['cuda_peak_bytes']} bytes")
    elif device == "cpu" and run["cuda_peak_bytes"]:
        run["note"] = f"--device cpu allocated {run['cuda_peak_bytes']} bytes of CUDA memory"
    return run


def print_run(run: dict) -> None:
    if run["problem"] and "outcome" not in run:
        print(f"{run['model']:15} {run['device']:3}  FAILED: {run['problem']}")
        return
    acc = run["val_accuracy"]
    print(f"{run['model']:15} {run['device']:3}  wall {run['wall']:6.1f} s (run {run['seconds']['run']:5.1f} s, "
          f"{run['steps']} steps x 2, {run['start']} start)  device {run['reported_device']}  "
          f"CUDA peak {run['cuda_peak_bytes'] / 2**20:.1f} MiB  outcome {run['outcome']}  verdict {run['verdict']}  "
          f"held-out accuracy penalized {fmt(acc.get('penalized'))} twin {fmt(acc.get('unregularized'))}"
          + (f"  PROBLEM: {run['problem']}" if run["problem"] else "")
          + (f"  note: {run['note']}" if run.get("note") else ""))


def fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def compare(runs: list[dict], devices: list[str], models: list) -> list[str]:
    """GPU against CPU, per model: the largest relative difference of the
    gradient ratios, and the verdicts."""
    if set(devices) != {"gpu", "cpu"}:
        return []
    out = []
    print()
    for name, *_ in models:
        pair = {r["device"]: r for r in runs if r["model"] == name and "ratios" in r}
        if len(pair) != 2:
            continue
        gpu, cpu = pair["gpu"], pair["cpu"]
        common = [k for k in cpu["ratios"] if k in gpu["ratios"] and cpu["ratios"][k]]
        diff = max((abs(gpu["ratios"][k] - cpu["ratios"][k]) / abs(cpu["ratios"][k]) for k in common), default=0.0)
        same = gpu["verdict"] == cpu["verdict"]
        print(f"{name:15} gpu vs cpu: {len(common)} gradient ratios, max relative difference {diff:.2e}; "
              f"verdict {gpu['verdict']} / {cpu['verdict']}{'' if same else '  DIFFERENT'}; "
              f"wall {gpu['wall']:.1f} s / {cpu['wall']:.1f} s")
        tolerance = LARGE_RATIO_TOLERANCE if name in {m[0] for m in LARGE} else RATIO_TOLERANCE
        if diff > tolerance or len(common) != len(cpu["ratios"]):
            out.append(f"{name}: gradient ratios differ by {diff:.2e} (> {tolerance})")
    return out


def verdict_notes(runs: list[dict], devices: list[str]) -> list[str]:
    """The models whose twin verdict differs between the GPU and the CPU."""
    if set(devices) != {"gpu", "cpu"}:
        return []
    verdicts: dict[str, set] = {}
    for run in runs:
        if "verdict" in run:
            verdicts.setdefault(run["model"], set()).add(run["verdict"])
    return [name for name, labels in verdicts.items() if len(labels) > 1]


if __name__ == "__main__":
    sys.exit(main())
