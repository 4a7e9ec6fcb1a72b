"""Wall time of ``reglint profile`` on Keras 3's PyTorch backend against its
TensorFlow backend, on the same files, steps and seed: one run each, ratios.

    .venv/bin/python bench/backend_wall.py [--steps 100] [--init auto] [FILE ...]

Needs TensorFlow and PyTorch in the venv (``pip install torch==2.13.0``, the
CPU build). Each profile is a fresh ``reglint profile FILE --steps N --device
cpu -f json`` process with one OpenMP thread (PyTorch's default of one per
core spin-waits on a shared 2-core machine), three ways: ``--backend
tensorflow``; ``--backend torch`` (Keras on torch also imports TensorFlow
when it is installed, silenced, see ``backend_torch._tensorflow_quietly``);
and torch with TensorFlow made unimportable (the usual PyTorch install).
``--steps`` makes both backends take the same steps (without it the twin's
budget depends on the measured step time). Printed per file: the process's
wall time and the report's own ``seconds`` (``load``: loading and the fresh
draw; ``run``: gradients and both runs of the twin), and torch / TensorFlow
ratios. An uncompiled file (lstm.keras, tfk_conv_bn.h5) has no twin: its
``run`` is the gradients alone. Without FILEs, a few committed fixtures: trained ones (a fresh draw
under ``--init auto``), a mixed-precision one, BatchNorm, an LSTM, a conv net.
One run each on a shared machine: read the ratios, not the digits.

    .venv/bin/python bench/backend_wall.py --threads [--reps 4] [--steps 100] [FILE ...]

PyTorch's CPU threads instead (``--backend torch``, TensorFlow hidden): the
report's ``run`` seconds, ``--reps`` rounds of one OpenMP thread; the
default (all cores, ``OMP_WAIT_POLICY=PASSIVE``: reglint sets it unless the
user did, ``backend_torch.load_torch_backend``); and libgomp's own default
(all cores, an idle thread spins 300,000 times before it sleeps:
``GOMP_SPINCOUNT=300000``), with the load average after each round.
Without FILEs: scenario_collapsed.keras (6,570 parameters) and a conv net
(64x64x3 inputs, three Conv2D with BatchNorm, 94,922 parameters) this
script saves with Keras on TensorFlow into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = ["scenario_collapsed.keras", "mixed_float16_trained.keras", "batchnorm.keras", "lstm.keras",
         "conv2d_seed_l2.keras", "tfk_conv_bn.h5"]
HIDE_TF = "import sys; sys.modules['tensorflow'] = None\n"
MAIN = "import sys\nfrom reglint.cli.app import main\nsys.exit(main(sys.argv[1:]))\n"
WAYS = (("tensorflow", "tensorflow", ""), ("torch", "torch", ""), ("torch, no TF", "torch", HIDE_TF))


# torch's thread settings for --threads: (name, environment)
THREADS = (("one thread", {"OMP_NUM_THREADS": "1"}), ("default (PASSIVE)", {}),
           ("libgomp's spin", {"GOMP_SPINCOUNT": "300000"}))


def profile(path: Path, backend: str, prelude: str, steps: int, init: str,
            threads: dict[str, str] | None = None) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KERAS_BACKEND", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update({"OMP_NUM_THREADS": "1"} if threads is None else threads)
    args = ["profile", str(path), "--backend", backend, "--steps", str(steps), "--device", "cpu", "--init", init,
            "-f", "json"]
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", prelude + MAIN, *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if out.returncode == 2 or not out.stdout.strip():
        return {"wall": wall, "error": out.stderr.strip()[-200:]}
    prof = json.loads(out.stdout)["files"][0]["model"]["analysis"]["profile"]
    assert prof["backend"] == backend, prof["backend"]
    return {"wall": wall, "load": prof["seconds"]["load"], "run": prof["seconds"]["run"],
            "weights": prof["weights"].split(":", 1)[0], "steps": (prof.get("twin") or {}).get("steps")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--init", default="auto")
    parser.add_argument("--threads", action="store_true", help="compare PyTorch's thread settings instead")
    parser.add_argument("--reps", type=int, default=4)
    opts = parser.parse_args()
    paths = [Path(f) for f in opts.files] or [ROOT / "fixtures" / "keras" / f for f in FILES]
    if opts.threads:
        with tempfile.TemporaryDirectory() as folder:
            paths = [Path(f) for f in opts.files] or [ROOT / "fixtures" / "keras" / FILES[0], conv_net(Path(folder))]
            compare_threads(paths, opts.steps, opts.init, opts.reps)
        return
    print(f"steps {opts.steps}, --init {opts.init}; seconds: process wall / report load / report run")
    ways = " | ".join(name for name, _, _ in WAYS)
    print(f"| file | start, twin steps TF/torch | {ways} | torch/TF wall | torch/TF run |")
    print("|---" * (len(WAYS) + 4) + "|")
    for path in paths:
        rows = [profile(path, backend, prelude, opts.steps, opts.init) for _, backend, prelude in WAYS]
        if any("error" in row for row in rows):
            print(f"| {path.name} | " + " | ".join(row.get("error", "ok") for row in rows) + " |")
            continue
        cells = [f"{row['wall']:.1f} / {row['load']:.2f} / {row['run']:.2f}" for row in rows]
        tf, torch = rows[0], rows[1]
        start = f"{tf['weights']}, twin {tf['steps'] or 'none'}/{torch['steps'] or 'none'}"
        print(f"| {path.name} | {start} | " + " | ".join(cells) +
              f" | {torch['wall'] / tf['wall']:.2f} | {torch['run'] / tf['run']:.2f} |")


def conv_net(folder: Path) -> Path:
    """A conv net heavy enough for two threads to pay on the CPU, saved compiled and untrained."""
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(0)
    l2, layers = keras.regularizers.L2(1e-4), keras.layers
    model = keras.Sequential([
        keras.Input((64, 64, 3)), layers.Conv2D(32, 3, activation="relu", kernel_regularizer=l2),
        layers.BatchNormalization(), layers.MaxPooling2D(),
        layers.Conv2D(64, 3, activation="relu", kernel_regularizer=l2), layers.BatchNormalization(),
        layers.MaxPooling2D(), layers.Conv2D(128, 3, activation="relu", kernel_regularizer=l2),
        layers.GlobalAveragePooling2D(), layers.Dense(10, activation="softmax", kernel_regularizer=l2)])
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
    path = folder / "conv.keras"
    model.save(path)
    return path


def compare_threads(paths: list[Path], steps: int, init: str, reps: int) -> None:
    print(f"torch, TensorFlow hidden, steps {steps}, --init {init}: the report's run seconds per round")
    print("| file | " + " | ".join(name for name, _ in THREADS) + " | load average |")
    print("|---" * (len(THREADS) + 2) + "|")
    for path in paths:
        for _ in range(reps):
            rows = [profile(path, "torch", HIDE_TF, steps, init, env) for _, env in THREADS]
            cells = [row.get("error") or f"{row['run']:.2f}" for row in rows]
            print(f"| {path.name} | " + " | ".join(cells) + f" | {os.getloadavg()[0]:.2f} |")


if __name__ == "__main__":
    main()
