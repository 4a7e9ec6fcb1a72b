"""``reglint profile`` on Keras 3's PyTorch backend, against the TensorFlow
backend on the same files and data.

Keras picks its backend once per process and this test process runs it on
TensorFlow (``test_profile.models`` builds the models with it), so every
torch profile runs in a subprocess with ``KERAS_BACKEND=torch``; those
tests are skipped where PyTorch is not installed (it is in neither the
test extra nor CI). The backend choice itself needs neither framework and
always runs; the TensorFlow tests of test_profile.py go through the same
seam (``backend_tf``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import test_profile as base
from reglint.cli.app import main
from reglint.profile import ProfileError, framework
from reglint.profile.framework import resolve_backend

from helpers import KERAS_FIXTURES

# test_profile's models (its session fixture, built here once more) and helpers
models = base.models
measured, profile_json, profile_of = base.measured, base.profile_json, base.profile_of
requires_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                    reason="PyTorch is not installed (pip install 'reglint[profile-torch]')")


def run_profile(*args: str, keras_backend: str | None = None, hide: tuple[str, ...] = ()) -> tuple[int, dict, str]:
    """``reglint profile ... -f json`` in a fresh process: (exit code, JSON,
    stderr). ``hide``: modules made unimportable there (``sys.modules[name]
    = None`` is what Python and ``importlib.util.find_spec`` read as not
    installed). One OpenMP thread: PyTorch's default of one per core
    spin-waits on a shared 2-core runner (a tiny MLP step took 90 ms
    instead of 1.5 ms)."""
    code = "".join(f"import sys; sys.modules[{name!r}] = None\n" for name in hide)
    code += "import sys\nfrom reglint.cli.app import main\nsys.exit(main(sys.argv[1:]))\n"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["OMP_NUM_THREADS"] = "1"
    if keras_backend is not None:
        env["KERAS_BACKEND"] = keras_backend
    out = subprocess.run([sys.executable, "-c", code, "profile", *args, "-f", "json"], capture_output=True, text=True,
                         env=env, timeout=600)
    return out.returncode, (json.loads(out.stdout) if out.stdout.strip() else {}), out.stderr


def data_args(models) -> list[str]:
    return ["--data", str(models["data"]), "--x-key", "inputs", "--y-key", "labels"]


# ---------------------------------------------------------------------------
# choosing the backend (no framework imported)


def fake_keras(backend: str) -> SimpleNamespace:
    return SimpleNamespace(backend=SimpleNamespace(backend=lambda: backend))


def test_backend_choice(monkeypatch):
    present = {"tensorflow", "torch", "keras"}
    monkeypatch.setattr(framework, "installed", lambda name: name in present)

    def choose(option="auto", environ=None, modules=None):
        return resolve_backend(option, environ or {}, modules or {})

    # auto: KERAS_BACKEND, else TensorFlow, else PyTorch
    assert choose() == "tensorflow"
    assert choose(environ={"KERAS_BACKEND": "torch"}) == "torch"
    assert choose("torch", environ={"KERAS_BACKEND": "tensorflow"}) == "torch"  # the option wins
    present.discard("tensorflow")
    assert choose() == "torch"
    present.discard("keras")  # PyTorch without Keras is not a backend
    with pytest.raises(ProfileError) as nothing:
        choose()
    assert "reglint[profile]" in str(nothing.value) and "reglint[profile-torch]" in str(nothing.value)
    # Keras already imported in this process decides, and cannot switch
    assert choose(environ={"KERAS_BACKEND": "torch"}, modules={"keras": fake_keras("tensorflow")}) == "tensorflow"
    with pytest.raises(ProfileError, match="cannot switch"):
        choose("torch", modules={"keras": fake_keras("tensorflow")})
    # JAX and Keras' other backends are refused in one line
    for option, environ, modules in (("jax", {}, {}), ("auto", {"KERAS_BACKEND": "jax"}, {}),
                                     ("auto", {}, {"keras": fake_keras("jax")}),
                                     ("auto", {"KERAS_BACKEND": "numpy"}, {})):
        with pytest.raises(ProfileError) as refused:
            choose(option, environ, modules)
        assert "not jax" in str(refused.value) or "not numpy" in str(refused.value)
        assert "\n" not in str(refused.value)
    with pytest.raises(ProfileError, match="--backend must be one of auto, tensorflow, torch"):
        choose("mxnet")


def test_jax_refused_before_any_import(models):
    # KERAS_BACKEND=jax in a fresh process: refused before Keras, TensorFlow or PyTorch is imported
    code = ("import sys\nfrom reglint.cli.app import main\ncode = main(sys.argv[1:])\n"
            "assert not any(m.split('.')[0] in ('keras', 'tensorflow', 'torch', 'jax') for m in sys.modules)\n"
            "sys.exit(code)\n")
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    out = subprocess.run([sys.executable, "-c", code, "profile", str(models["healthy"])], capture_output=True,
                         text=True, env=env)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and "not jax" in out.stderr and "KERAS_BACKEND" in out.stderr


def test_neither_framework_is_one_line_naming_both_extras(models):
    code, report, err = run_profile(str(models["healthy"]), hide=("tensorflow", "torch"))
    assert code == 2 and not report
    assert err.count("\n") == 1 and "reglint[profile]" in err and "reglint[profile-torch]" in err


def test_torch_refused_where_keras_already_runs_on_tensorflow(models, capsys):
    import keras  # the models fixture imported it on TensorFlow

    assert keras.backend.backend() == "tensorflow"
    assert main(["profile", str(models["healthy"]), "--backend", "torch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot switch" in err


def test_torch_device_selection_without_torch():
    """auto takes CUDA when PyTorch sees it, in IEEE float32 (not TF32);
    gpu without it is an error."""
    from reglint.profile.backend_torch import select_device

    def fake_torch(available: bool, precision: bool = True):
        # PyTorch >= 2.9 names the float32 precision; before, allow_tf32 flags
        unit = {"fp32_precision": "tf32"} if precision else {"allow_tf32": True}
        backends = SimpleNamespace(cudnn=SimpleNamespace(**unit), cuda=SimpleNamespace(matmul=SimpleNamespace(**unit)))
        return SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: available,
                                                    get_device_name=lambda index: "NVIDIA H200"), backends=backends)

    for precision in (True, False):
        torch = fake_torch(True, precision)
        assert select_device(torch, "auto")[::2] == ("cuda:0", "gpu")
        for unit in (torch.backends.cudnn, torch.backends.cuda.matmul):
            assert vars(unit) == ({"fp32_precision": "ieee"} if precision else {"allow_tf32": False})
    assert "H200" in select_device(fake_torch(True), "gpu")[1]
    assert select_device(fake_torch(True), "cpu")[::2] == ("cpu", "cpu")
    assert select_device(fake_torch(False), "auto")[::2] == ("cpu", "cpu")
    with pytest.raises(ProfileError, match="no CUDA GPU"):
        select_device(fake_torch(False), "gpu")


@requires_torch
@pytest.mark.parametrize("preset", [None, "ACTIVE"])
def test_torch_threads_wait_passively_unless_the_user_says(preset):
    """PyTorch's OpenMP runtime reads OMP_WAIT_POLICY once, when it loads:
    load_torch_backend sets PASSIVE before importing PyTorch (idle threads
    sleep instead of spinning on a shared machine); a value the user set
    wins. libgomp prints what it made of it (OMP_DISPLAY_ENV=VERBOSE;
    REGLINT_DEBUG keeps the import's stderr): its spin count before an idle
    thread sleeps, 300,000 by default (its display says PASSIVE then too),
    0 for PASSIVE, 3e10 for ACTIVE."""
    code = ("from reglint.profile.backend_torch import load_torch_backend\n"
            "backend = load_torch_backend()\n"
            "backend.torch.ones(64).sum()\n")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    env.update(KERAS_BACKEND="torch", OMP_DISPLAY_ENV="VERBOSE", REGLINT_DEBUG="1")
    if preset is not None:
        env["OMP_WAIT_POLICY"] = preset
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    spins = {line.split("=", 1)[1].strip().strip("'") for line in (out.stdout + out.stderr).splitlines()
             if line.strip().startswith("GOMP_SPINCOUNT")}
    if not spins:
        pytest.skip("PyTorch's OpenMP runtime is not libgomp (LLVM's libomp on macOS): no spin count to read")
    assert spins == {"30000000000" if preset == "ACTIVE" else "0"}


# ---------------------------------------------------------------------------
# the same measurement on both backends


@pytest.mark.slow
@requires_torch
def test_torch_gradients_match_tensorflow(models, capsys):
    args = [str(models["dominated"]), "--steps", "3"]
    tf_code, tf_report, _ = profile_json(capsys, *args)
    code, report, err = run_profile(*args, keras_backend="torch")
    assert code == tf_code == 1, err
    prof, tf_prof = profile_of(report), profile_of(tf_report)
    assert (prof["backend"], prof["device_kind"], tf_prof["backend"]) == ("torch", "cpu", "tensorflow")
    assert {(f["code"], f["severity"]) for f in measured(report)} == \
        {(f["code"], f["severity"]) for f in measured(tf_report)} >= {("RL001", "error")}
    for key in ("data_loss", "penalty", "weight_penalty"):
        assert math.isclose(prof["initial"][key], tf_prof["initial"][key], rel_tol=1e-5), key
    rows, tf_rows = {v["path"]: v for v in prof["variables"]}, {v["path"]: v for v in tf_prof["variables"]}
    assert set(rows) == set(tf_rows) and len(rows) == 3
    for path, row in rows.items():
        # the same saved weights and probe batch: float32 sums in another order
        for key in ("ratio", "grad_data_norm", "grad_penalty_norm", "update_ratio", "update_ratio_data"):
            assert math.isclose(row[key], tf_rows[path][key], rel_tol=1e-4), (path, key)


@pytest.mark.slow
@requires_torch
def test_torch_twin_verdicts_match_tensorflow(models, capsys):
    # wrecked: L2(0.3) under SGD momentum flattens the net; the default budget decides the steps
    args = [str(models["wrecked"]), *data_args(models)]
    _, tf_report, _ = profile_json(capsys, *args)
    code, report, err = run_profile(*args, "--backend", "torch")
    assert code == 1, err
    twin, tf_twin = profile_of(report)["twin"], profile_of(tf_report)["twin"]
    assert twin["verdict"]["label"] == tf_twin["verdict"]["label"] == "collapsed"
    assert [f["severity"] for f in measured(report, "RL023")] == ["error"]
    for run in ("penalized", "unregularized"):
        assert twin["runs"][run]["val_accuracy"][-1] == pytest.approx(tf_twin["runs"][run]["val_accuracy"][-1],
                                                                      abs=0.05)
    # healthy: no RL023 on either backend
    args = [str(models["healthy"]), *data_args(models), "--steps", "60"]
    _, tf_report, _ = profile_json(capsys, *args)
    code, report, err = run_profile(*args, "--backend", "torch")
    assert code == 0, err
    label = profile_of(report)["twin"]["verdict"]["label"]
    assert label == profile_of(tf_report)["twin"]["verdict"]["label"] and label in ("similar", "better")
    assert not measured(report, "RL023") and not measured(tf_report, "RL023")


@pytest.mark.slow
@requires_torch
def test_auto_runs_on_torch_without_tensorflow(models):
    # the GPU machine's case: PyTorch and Keras, no TensorFlow, no KERAS_BACKEND
    code, report, err = run_profile(str(models["gamma"]), *data_args(models), "--steps", "5", hide=("tensorflow",))
    assert code == 0, err
    prof = profile_of(report)
    assert prof["backend"] == "torch" and prof["steps"]["taken"] == 5
    (row,) = [v for v in prof["variables"] if v["variable"] == "gamma"]
    assert row["penalty"] == pytest.approx(320.0, rel=1e-5)  # L2(10) on 32 BatchNorm gammas of 1


# ---------------------------------------------------------------------------
# --init on torch: where the runs start (test_profile_start.py's files)

COLLAPSED = KERAS_FIXTURES / "scenario_collapsed.keras"  # MLP, L2(1), SGD 0.1, 40 steps taken
MIXED = KERAS_FIXTURES / "mixed_float16_trained.keras"  # 8-16-3, 3 steps of the inner SGD, outer counter 0


def weight_norms(report: dict) -> dict[str, float]:
    """The measured weight norm of each regularized variable at the start."""
    return {v["path"]: v["weight_norm"] for v in profile_of(report)["variables"]}


@pytest.mark.slow
@requires_torch
def test_torch_trained_file_starts_from_a_seeded_fresh_draw(capsys):
    """auto on a file whose optimizer took 40 steps: a fresh draw on torch,
    the same draw for the same seed (auto and fresh agree), another for
    another seed, far from the collapsed weights --init saved keeps. The
    TensorFlow backend draws with its own generator: another draw of the
    same initializers, so the penalty at the start is close, not equal."""
    args = [str(COLLAPSED), "--steps", "2", "--backend", "torch"]
    runs = {name: run_profile(*args, *extra) for name, extra in (
        ("auto", []), ("fresh", ["--init", "fresh"]), ("seed1", ["--seed", "1"]), ("saved", ["--init", "saved"]))}
    # the GPU machine's install: PyTorch without TensorFlow (Keras seeds TensorFlow too where it is there)
    runs["no_tf"] = run_profile(*args, hide=("tensorflow",))
    for name, (code, report, err) in runs.items():
        assert code == 1 and profile_of(report)["backend"] == "torch", (name, err)  # RL001's static error stands
    auto, fresh, seed1, saved = (runs[name][1] for name in ("auto", "fresh", "seed1", "saved"))
    prof = profile_of(auto)
    assert prof["weights"].startswith("fresh:") and "took 40 steps" in prof["weights"]
    assert prof["twin"]["start"]["weights"].startswith("fresh")
    assert profile_of(fresh)["weights"].startswith("fresh:") and "--init fresh" in profile_of(fresh)["weights"]
    assert profile_of(saved)["weights"].startswith("saved:") and "--init saved" in profile_of(saved)["weights"]
    assert profile_of(saved)["twin"]["start"]["weights"].startswith("saved")
    # the draw: reproducible for a seed, another for another seed, not the saved weights
    drawn = weight_norms(auto)
    assert len(drawn) == 3 and drawn == weight_norms(fresh) == weight_norms(runs["no_tf"][1])
    assert profile_of(auto)["initial"] == profile_of(fresh)["initial"] == profile_of(runs["no_tf"][1])["initial"]
    assert all(drawn[p] != n for p, n in weight_norms(seed1).items())
    assert all(drawn[p] > 100 * n for p, n in weight_norms(saved).items())  # the saved weights collapsed to ~0
    assert 60 < prof["initial"]["weight_penalty"] < 250  # E = 64 + 42.7 + 15.2 = 122 (test_profile_start)
    assert profile_of(saved)["initial"]["weight_penalty"] < 0.01
    # TensorFlow: the same start, another draw (sd of the penalty of one draw ~1.2% of 122)
    _, tf_report, _ = profile_json(capsys, str(COLLAPSED), "--steps", "2")
    tf_prof = profile_of(tf_report)
    assert tf_prof["backend"] == "tensorflow" and tf_prof["weights"] == prof["weights"]
    assert tf_prof["initial"]["weight_penalty"] == pytest.approx(prof["initial"]["weight_penalty"], rel=0.06)
    assert weight_norms(tf_report) != drawn


@pytest.mark.slow
@requires_torch
def test_torch_mixed_precision_file_runs_its_inner_optimizers_steps(tmp_path, capsys):
    """mixed_float16_trained.keras: the LossScaleOptimizer's own counter is
    0, its inner SGD took 3 steps. On torch as on TensorFlow: auto starts
    fresh and, with data and no --steps, both runs take those 3 steps."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 8)).astype("float32")
    np.savez(tmp_path / "data.npz", x=x, y=(x @ rng.standard_normal((8, 3))).argmax(axis=1))
    args = [str(MIXED), "--data", str(tmp_path / "data.npz")]
    code, report, err = run_profile(*args, "--backend", "torch")
    _, tf_report, _ = profile_json(capsys, *args)
    assert code == 0, err
    prof, tf_prof = profile_of(report), profile_of(tf_report)
    assert prof["backend"] == "torch" and "took 3 steps" in prof["weights"] and prof["weights"].startswith("fresh:")
    twin = prof["twin"]
    assert twin["steps"] == 3 and twin["budget"]["reason"].startswith("the file's optimizer took 3 steps")
    assert all(len(twin["runs"][run]["step"]) >= 2 and twin["runs"][run]["step"][-1] == 3
               for run in ("penalized", "unregularized"))
    assert (prof["weights"], twin["steps"], twin["verdict"]["label"]) == \
        (tf_prof["weights"], tf_prof["twin"]["steps"], tf_prof["twin"]["verdict"]["label"])
    # 3 steps of SGD(0.01) from a fresh draw: the kernel's norm barely moves
    norms = twin["runs"]["penalized"]["kernel_norm"]
    assert norms[-1] == pytest.approx(norms[0], rel=0.01) and norms[-1] != norms[0]


# The fresh draw of a file, in a process on ``backend``: every variable as
# saved, after reinitialize with seed 0 (twice, each on a newly loaded
# model) and with seed 1, as JSON on stdout.
DRAW_SCRIPT = r"""
import json, sys
from pathlib import Path
import keras
from reglint.profile.load import load_model, reinitialize

from contextlib import nullcontext

def state(seed=None, scope=None):
    model, _ = load_model(keras, Path(sys.argv[1]), trust_model=False)
    if seed is not None:
        with keras.device(scope) if scope else nullcontext():
            reinitialize(keras, model, seed)
    return {w.path: keras.ops.convert_to_numpy(w).tolist() for w in model.weights}

# torch's "meta" device holds no values: a draw made there would have none
elsewhere = "meta" if keras.backend.backend() == "torch" else "cpu"
model, _ = load_model(keras, Path(sys.argv[1]), trust_model=False)
print(json.dumps({"backend": keras.backend.backend(), "trainable": {w.path: w.trainable for w in model.weights},
                  "saved": state(), "seed0": state(0), "again": state(0), "seed1": state(1),
                  "elsewhere": state(0, elsewhere)}))
"""


@pytest.fixture(scope="module")
def frozen_block_file(tmp_path_factory) -> Path:
    """A trained file, saved by Keras on TensorFlow: adapted Normalization ->
    a frozen nested block (Dense, BatchNormalization) -> Dense ->
    BatchNormalization that trains -> softmax. Inputs around 100 move every
    moving statistic far from its initial 0 and 1 before the block is
    frozen."""
    keras = pytest.importorskip("keras")
    assert keras.backend.backend() == "tensorflow"
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(100.0, 10.0, size=(64, 4)).astype("float32")
    norm = keras.layers.Normalization(name="norm")
    norm.adapt(x)
    block = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="frozen_dense"),
                              keras.layers.BatchNormalization(name="frozen_bn")], name="block")
    model = keras.Sequential([keras.Input((4,)), norm, block,
                              keras.layers.Dense(4, kernel_regularizer=keras.regularizers.L2(1e-3), name="dense"),
                              keras.layers.BatchNormalization(name="training_bn"),
                              keras.layers.Dense(3, activation="softmax", name="head")])
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    model.fit(x * 0.05, rng.integers(0, 3, size=64), epochs=2, batch_size=16, verbose=0)
    block.trainable = False
    path = tmp_path_factory.mktemp("frozen_block") / "frozen_block.keras"
    model.save(path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("keras_backend", ["tensorflow", pytest.param("torch", marks=requires_torch)])
def test_fresh_draw_of_a_saved_file_on_each_backend(frozen_block_file, keras_backend):
    """reinitialize on a file loaded on either backend: trainable variables
    redrawn (the same draw for the same seed, another for another seed,
    the same inside another device's scope),
    the training BatchNorm's moving statistics back at 0 and 1; the frozen
    block (its kernel and its BatchNorm's statistics, inside a nested
    model) and the Normalization layer's adapted statistics as saved."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(KERAS_BACKEND=keras_backend, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", DRAW_SCRIPT, str(frozen_block_file)], capture_output=True,
                         text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    drawn = json.loads(out.stdout.strip().splitlines()[-1])
    assert drawn["backend"] == keras_backend
    saved, seed0, again, seed1 = (drawn[k] for k in ("saved", "seed0", "again", "seed1"))
    assert seed0 == again  # the same seed, the same draw
    # ... on every device: the draw is made on the CPU (PyTorch's CUDA
    # generator draws other numbers for a seed; bench/GPU_CHECK.md)
    assert drawn["elsewhere"] == seed0
    kept, restarted = set(), set()
    for path, trainable in drawn["trainable"].items():
        layer, name = path.rsplit("/", 1)
        was, now = np.array(saved[path]), np.array(seed0[path])
        if layer.endswith("training_bn") and name in ("moving_mean", "moving_variance"):
            start = 0.0 if name == "moving_mean" else 1.0
            assert np.all(now == start) and not np.allclose(was, start), path
            restarted.add(path)
        elif trainable:
            assert not np.array_equal(now, was), path
            if name == "kernel":
                assert not np.array_equal(now, np.array(seed1[path])), path
        else:
            assert np.array_equal(now, was), path
            kept.add(path)
    assert {p.split("/")[-2] for p in kept} == {"norm", "frozen_dense", "frozen_bn"}
    assert all(not np.allclose(saved[p], 0.0) for p in kept if p.endswith("moving_mean"))
    assert len(restarted) == 2


@pytest.mark.slow
@requires_torch
def test_torch_frozen_block_keeps_its_weights_unless_fresh_is_asked(frozen_block_file):
    code, report, err = run_profile(str(frozen_block_file), "--steps", "2", "--backend", "torch")
    assert code == 0, err
    weights = profile_of(report)["weights"]
    assert weights.startswith("saved:") and "frozen kernel" in weights and "took 8 steps" in weights
    code, report, err = run_profile(str(frozen_block_file), "--steps", "2", "--backend", "torch", "--init", "fresh")
    assert code == 0, err
    assert profile_of(report)["weights"].startswith("fresh:")


@pytest.fixture(scope="module")
def trained_files(models, tmp_path_factory) -> dict[str, Path]:
    """test_profile's wrecked and healthy models trained 10 epochs (80 steps)
    on its data and saved: files whose optimizer took steps."""
    import keras

    data = np.load(models["data"])
    folder, out = tmp_path_factory.mktemp("trained"), {}
    for name in ("wrecked", "healthy"):
        keras.utils.set_random_seed(0)
        with warnings.catch_warnings():  # "Skipping variable loading for optimizer": never built, never stepped
            warnings.simplefilter("ignore")
            model = keras.saving.load_model(models[name])
        model.fit(data["inputs"], data["labels"], epochs=10, batch_size=32, verbose=0)
        assert int(model.optimizer.iterations) == 80
        out[name] = folder / f"trained_{name}.keras"
        model.save(out[name])
    return out


@pytest.mark.slow
@requires_torch
def test_torch_verdicts_from_a_fresh_draw_match_tensorflow(models, trained_files, capsys):
    """Trained files with data and no --steps: both backends start from a
    fresh draw (each its own) and take the 80 steps the file records; the
    verdicts agree, the accuracies are close, not equal."""
    for name, label, code_expected in (("wrecked", "collapsed", 1), ("healthy", None, 0)):
        args = [str(trained_files[name]), *data_args(models)]
        tf_code, tf_report, _ = profile_json(capsys, *args)
        code, report, err = run_profile(*args, "--backend", "torch")
        assert code == tf_code == code_expected, (name, err)
        prof, tf_prof = profile_of(report), profile_of(tf_report)
        assert prof["backend"] == "torch" and prof["weights"] == tf_prof["weights"]
        assert prof["weights"].startswith("fresh:") and "took 80 steps" in prof["weights"]
        twin, tf_twin = prof["twin"], tf_prof["twin"]
        assert twin["steps"] == tf_twin["steps"] == 80
        assert twin["verdict"]["label"] == tf_twin["verdict"]["label"], name
        if label is not None:
            assert twin["verdict"]["label"] == label
            assert [f["severity"] for f in measured(report, "RL023")] == ["error"]
        else:
            assert twin["verdict"]["label"] in ("similar", "better") and not measured(report, "RL023")
        for run in ("penalized", "unregularized"):
            acc, tf_acc = twin["runs"][run]["val_accuracy"][-1], tf_twin["runs"][run]["val_accuracy"][-1]
            assert acc == pytest.approx(tf_acc, abs=0.12), (name, run)
