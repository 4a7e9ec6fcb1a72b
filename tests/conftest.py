"""Fixtures shared by the test modules. Plain values and functions are in
``helpers.py``; test modules import neither this file nor each other.

``real_models`` (session) saves three tiny Keras models once, in a subprocess
that keeps TensorFlow out of the test process:

* ``wreck``: Dense(512)-Dense(512)-Dense(10) on 784 inputs, L2(0.3) on the
  kernels: an RL001 error (penalty 150x the data loss, a pull 2*l2 = 0.6 per
  unit of weight; at L2(0.05) the ratio is 25x but the pull only 0.1: a
  warning, as wide layers shed such a penalty);
* ``tiny_bad``: 8-16-10 with L2(5.0) under SGD(lr=1.0): RL001 and one RL002
  per layer;
* ``healthy``: 8-16-10 with L2(1e-3) under SGD(lr=0.01): no findings.

``project`` copies them into ``models/`` of a fresh project folder and makes
it the working directory.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# CORPUS, FIXTURES, KERAS_FIXTURES and ROOT stay importable from here for tests
# written before helpers.py existed (other branches); new code imports helpers.
from helpers import CORPUS, FIXTURES, KERAS_FIXTURES, ROOT, keras_manifest  # noqa: F401

# --doctest-modules imports every .py under the testpaths: these are scripts
# that write data (run by hand), not modules with doctests.
collect_ignore = ["data/make_corpus_truth.py"]

MODEL_SCRIPT = r"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras

def save(path, l2, lr, units, inputs):
    layers = [keras.Input((inputs,))] + [
        keras.layers.Dense(u, kernel_regularizer=keras.regularizers.L2(l2), name=f"dense_{i}")
        for i, u in enumerate(units)]
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="sparse_categorical_crossentropy")
    model.save(path)

folder = sys.argv[1]
save(os.path.join(folder, "wreck.keras"), 0.3, 0.01, (512, 512, 10), 784)
save(os.path.join(folder, "tiny_bad.keras"), 5.0, 1.0, (16, 10), 8)
save(os.path.join(folder, "healthy.keras"), 1e-3, 0.01, (16, 10), 8)
"""
MODEL_NAMES = ("wreck.keras", "tiny_bad.keras", "healthy.keras")


@pytest.fixture(scope="session")
def manifest() -> dict[str, dict]:
    return {entry["file"]: entry for entry in keras_manifest()}


@pytest.fixture(scope="session")
def real_models(tmp_path_factory) -> dict[str, Path]:
    """Save the three models once per session; skip when Keras is missing."""
    if importlib.util.find_spec("keras") is None:  # find_spec: no TensorFlow import here
        pytest.skip("keras is not installed: cannot save test models")
    folder = tmp_path_factory.mktemp("reglint-real-models")
    done = subprocess.run([sys.executable, "-c", MODEL_SCRIPT, str(folder)], capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        pytest.fail(f"saving the test models failed:\n{done.stderr[-2000:]}")
    return {name.split(".")[0]: folder / name for name in MODEL_NAMES}


@pytest.fixture
def project(tmp_path, real_models, monkeypatch) -> Path:
    """A project folder holding copies of the models, as the cwd, with the
    cache's signing key kept out of the real home folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    root = tmp_path / "proj"
    (root / "models").mkdir(parents=True)
    for name, path in real_models.items():
        shutil.copy(path, root / "models" / f"{name}.keras")
    monkeypatch.chdir(root)
    return root
