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
from types import SimpleNamespace

import pytest

import test_profile as base
from reglint.cli.app import main
from reglint.profile import ProfileError, framework
from reglint.profile.framework import resolve_backend

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
    """auto takes CUDA when PyTorch sees it; gpu without it is an error."""
    from reglint.profile.backend_torch import select_device

    def fake_torch(available: bool):
        return SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: available,
                                                    get_device_name=lambda index: "NVIDIA H200"))

    assert select_device(fake_torch(True), "auto")[::2] == ("cuda:0", "gpu")
    assert "H200" in select_device(fake_torch(True), "gpu")[1]
    assert select_device(fake_torch(True), "cpu")[::2] == ("cpu", "cpu")
    assert select_device(fake_torch(False), "auto")[::2] == ("cpu", "cpu")
    with pytest.raises(ProfileError, match="no CUDA GPU"):
        select_device(fake_torch(False), "gpu")


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
