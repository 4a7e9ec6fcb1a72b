"""Property-based fuzzing of the readers (hypothesis), bounded to run in CI:
whatever bytes or config a file holds, reading it either gives a model or a
``ReglintError`` with a one-line message, and linting never raises."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reglint.engine.report import RunReport
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.errors import ReglintError
from reglint.readers import read_model

from helpers import KERAS_FIXTURES
from mutate import rewrite_keras_zip

KERAS = (KERAS_FIXTURES / "scenario_healthy_sgd.keras").read_bytes()
H5 = (KERAS_FIXTURES / "k3_legacy_mlp.h5").read_bytes()
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)


def _check(path):
    try:
        read_model(path)
    except ReglintError as exc:  # reading may succeed: only an error, if raised, must be one line
        assert "\n" not in str(exc)  # noqa: PT017
    report = lint_file(str(path), Settings())
    assert report.error is None or "\n" not in report.error
    json.dumps(RunReport(files=[report]).to_dict(), allow_nan=False)  # the JSON contract holds


@FUZZ
@given(data=st.data())
def test_flipped_bytes(tmp_path, data):
    base = data.draw(st.sampled_from([KERAS, H5]))
    raw = bytearray(base)
    for _ in range(data.draw(st.integers(1, 16))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    path = tmp_path / ("f.keras" if base is KERAS else "f.h5")
    path.write_bytes(bytes(raw[:cut]))
    _check(path)


@FUZZ
@given(key=st.sampled_from(["kernel_regularizer", "bias_regularizer", "activity_regularizer", "units", "trainable",
                            "kernel_initializer", "name", "activation", "use_bias", "layers"]),
       value=json_values, index=st.integers(0, 5))
def test_config_values(tmp_path, key, value, index):
    def change(cfg):
        layers = cfg["config"]["layers"]
        layer = layers[index % len(layers)].get("config", {})
        layer[key] = value

    path = rewrite_keras_zip(KERAS_FIXTURES / "scenario_healthy_sgd.keras", tmp_path / "c.keras", config=change)
    _check(path)


@FUZZ
@given(compile_config=json_values)
def test_compile_config(tmp_path, compile_config):
    def change(cfg):
        cfg["compile_config"] = compile_config

    path = rewrite_keras_zip(KERAS_FIXTURES / "scenario_healthy_sgd.keras", tmp_path / "o.keras", config=change)
    _check(path)


@FUZZ
@given(optimizer=json_values, loss=json_values)
def test_optimizer_and_loss_objects(tmp_path, optimizer, loss):
    def change(cfg):
        cfg["compile_config"] = {"optimizer": {"class_name": "SGD", "config": {"learning_rate": optimizer,
                                                                              "momentum": optimizer}},
                                 "loss": loss}

    path = rewrite_keras_zip(KERAS_FIXTURES / "scenario_healthy_sgd.keras", tmp_path / "l.keras", config=change)
    _check(path)


# Byte flips that once escaped the readers as h5py/zipfile exceptions (found by
# sweeping single-byte flips over the fixtures): each must end in a one-line
# ReglintError or a report, never another exception.
@pytest.mark.parametrize(("base", "name", "position"), [
    (H5, "f.h5", 873),        # attribute message header: h5py RuntimeError
    (H5, "f.h5", 1067),
    (H5, "f.h5", 35405),      # model_config text: UnicodeDecodeError
    (KERAS, "f.keras", 183),  # config.json bytes: zipfile's CRC check, BadZipFile
    (KERAS, "f.keras", 61),   # metadata.json
])
def test_known_bad_flips(tmp_path, base, name, position):
    raw = bytearray(base)
    raw[position] ^= 0xFF
    path = tmp_path / name
    path.write_bytes(bytes(raw))
    with pytest.raises(ReglintError, match="corrupt"):
        read_model(path)
    _check(path)
