"""``reglint profile`` on models built from custom classes: ``--import``
registers them (Keras' ``custom_objects``), only with ``--trust-model``; a
subclassed model is profiled from the build shape its file records. The
files are fixtures/keras_custom (fixtures/make_custom_layer_fixtures.py,
which also defines the classes)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from reglint.cli.app import main

from helpers import FIXTURES, assert_one_line_refusal

CUSTOM = FIXTURES / "keras_custom"
CLASSES = FIXTURES / "make_custom_layer_fixtures.py"


def _profile(capsys, *args: str) -> tuple[int, dict, str]:
    code = main(["profile", *map(str, args), "-f", "json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else {}), captured.err


def _reglint(*args):
    return subprocess.run([sys.executable, "-m", "reglint", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_a_subclassed_model_is_profiled_with_the_penalty_its_code_sets(capsys, tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data.npz"
    np.savez(data, x=rng.random((96, 8, 8, 3), dtype=np.float32), y=rng.integers(0, 3, 96))
    code, report, err = _profile(capsys, CUSTOM / "subclassed_model_adam.keras", "--trust-model", "--import",
                                 CLASSES, "--data", data, "--steps", "12")
    assert code == 0, err
    profile = report["files"][0]["model"]["analysis"]["profile"]
    rows = profile["variables"]
    # The L2 lives in the class's __init__, not in the file: the static read
    # cannot see it, the loaded model can.
    assert [(row["layer"], row["variable"]) for row in rows] == [("conv2d", "kernel")]
    assert rows[0]["grad_penalty_norm"] == pytest.approx(2 * 1e-3 * rows[0]["weight_norm"], rel=1e-4)
    assert profile["data"]["samples"] == 96


@pytest.mark.slow
def test_a_custom_layer_in_a_functional_model_is_profiled_after_import(capsys):
    code, report, err = _profile(capsys, CUSTOM / "resblock_sgd_momentum.keras", "--trust-model", "--import",
                                 CLASSES, "--steps", "4")
    assert code == 0, err
    rows = report["files"][0]["model"]["analysis"]["profile"]["variables"]
    assert {(row["layer"], row["variable"]) for row in rows} == {("res_block", "kernel")}


def test_import_without_trust_is_refused_before_anything_runs():
    done = _reglint("profile", CUSTOM / "subclassed_model_adam.keras", "--import", CLASSES)
    assert_one_line_refusal(done, "--import runs that module's code", "--trust-model")


def test_an_import_that_fails_is_one_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('no GPU here')\n")
    assert_one_line_refusal(_reglint("profile", CUSTOM / "subclassed_model_adam.keras", "--trust-model", "--import",
                                     broken), "--import", "RuntimeError: no GPU here")
    assert_one_line_refusal(_reglint("profile", CUSTOM / "subclassed_model_adam.keras", "--trust-model", "--import",
                                     tmp_path / "missing.py"), "no such file")


MAKE_ANY_SIZE = """
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
import keras
from make_custom_layer_fixtures import SubclassedNet
keras.utils.set_random_seed(0)
m = SubclassedNet(16, name="net")
m.build((None, None, None, 3))  # any image size: the file records no concrete shape
m.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
m.fit(np.random.rand(8, 8, 8, 3), np.random.randint(0, 3, 8), verbose=0)
m.save(sys.argv[2])
"""


@pytest.mark.slow
def test_a_subclassed_model_of_any_input_size_is_fed_the_datas_rows(tmp_path):
    path = tmp_path / "any_size.keras"
    done = subprocess.run([sys.executable, "-c", MAKE_ANY_SIZE, str(FIXTURES), str(path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    data = tmp_path / "data.npz"
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.random((64, 8, 8, 3), dtype=np.float32), y=rng.integers(0, 3, 64))
    trusted = ("--trust-model", "--import", CLASSES, "--steps", "2")
    assert_one_line_refusal(_reglint("profile", path, *trusted), "input shape", "--data")
    done = _reglint("profile", path, *trusted, "--data", data, "-f", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"][0]["model"]["analysis"]["profile"]["data"]["samples"] == 64
