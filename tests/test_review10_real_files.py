"""Review 10's cases on files the frameworks write here and fit back:
RL027 where Keras 3.15 and tf-keras 2.21 name their outputs otherwise than
the first reader assumed, and the schedule horizon / optimizer of files a
mixed-precision or warm-up-less CosineDecay wrote. Each test asserts what the
framework's own ``fit`` (or schedule) does, then what reglint says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings

pytestmark = pytest.mark.slow


def rl027(path):
    report = lint_file(str(path), Settings())
    assert report.error is None, report.error
    return [f for f in report.findings if f.code == "RL027"]


def keras3_fit(keras, model, loss, path, x, y):
    """Compile, save, load back and fit one epoch: Keras' own verdict."""
    model.compile(keras.optimizers.SGD(0.01), loss)
    model.save(path)
    loaded = keras.saving.load_model(path)
    try:
        loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
    except Exception as exc:  # Keras' own error is the verdict
        return f"{type(exc).__name__}: {exc}"
    return "trains"


def keras3_cases(keras):
    """(name, model, loss, x, y, raises) for Keras 3.15."""
    L = keras.layers
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8)).astype("float32")
    seq = rng.normal(size=(16, 5, 8)).astype("float32")

    def dict_outputs():
        inputs = keras.Input((8,))
        return keras.Model(inputs, {"a": L.Dense(3, name="la")(inputs), "b": L.Dense(2, name="lb")(inputs)})

    def two_outputs():
        inputs = keras.Input((8,))
        return keras.Model(inputs, [L.Dense(3, name="class_out")(inputs), L.Dense(2, name="bbox_out")(inputs)])

    def lstm_states():
        inputs = keras.Input((5, 8))
        return keras.Model(inputs, L.LSTM(4, return_state=True, name="lstm")(inputs))

    def sequential():
        return keras.Sequential([keras.Input((8,)), L.Dense(4, name="d1"), L.Dense(2, name="head")])

    y_dict = {"a": np.zeros((16, 3), "float32"), "b": np.zeros((16, 2), "float32")}
    y_two = [np.zeros((16, 3), "float32"), np.zeros((16, 2), "float32")]
    y_lstm = [np.zeros((16, 4), "float32")] * 3
    return [
        ("dict_out_by_layer_name", dict_outputs, {"la": "mse", "lb": "mse"}, x, y_dict, True),
        ("dict_out_by_key", dict_outputs, {"a": "mse", "b": "mse"}, x, y_dict, False),
        ("lstm_states_uniquified", lstm_states, {"lstm": "mse", "lstm_1": "mse", "lstm_2": "mse"}, seq, y_lstm, True),
        ("lstm_states_one_key", lstm_states, {"lstm": "mse"}, seq, y_lstm, False),
        ("sequential_last_layer", sequential, {"head": "mse"}, x, np.zeros((16, 2), "float32"), True),
        ("two_outputs_missing_key", two_outputs, {"class_out": "mse"}, x, y_two, True),
        ("two_outputs_none_key", two_outputs, {"class_out": "mse", "bbox_out": None}, x, y_two, False),
    ]


@pytest.mark.filterwarnings("ignore:Gradients do not exist:UserWarning")  # a head left without a loss, on purpose
def test_keras_3_names_rl027_agrees_with_fit(tmp_path):
    keras = pytest.importorskip("keras")
    if tuple(int(p) for p in keras.__version__.split(".")[:2]) < (3, 15):
        pytest.skip("the cases are Keras 3.15's behaviour")
    for name, build, loss, x, y, raises in keras3_cases(keras):
        keras.utils.set_random_seed(0)
        path = tmp_path / f"{name}.keras"
        verdict = keras3_fit(keras, build(), loss, path, x, y)
        assert (verdict != "trains") is raises, (name, verdict)  # what Keras itself does
        found = rl027(path)
        assert bool(found) is raises, (name, [f.message for f in found])


TF_KERAS_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, tf_keras as keras
    L, S = keras.layers, keras.optimizers.schedules
    out, x = {}, np.zeros((16, 8), "float32")
    y = {"a": np.zeros((16, 3), "float32"), "b": np.zeros((16, 2), "float32")}
    for name, penalty in (("no_key_matches", None), ("no_key_matches_penalized", keras.regularizers.L2(0.1))):
        inputs = keras.Input((8,))
        model = keras.Model(inputs, {"a": L.Dense(3, name="la", kernel_regularizer=penalty)(inputs),
                                     "b": L.Dense(2, name="lb")(inputs)})
        model.compile(keras.optimizers.SGD(0.01), {"c": "mse"})
        path = sys.argv[1] + "/" + name + ".h5"
        model.save(path, save_format="h5")
        try:
            keras.models.load_model(path).fit(x, y, epochs=1, batch_size=8, verbose=0)
            out[name] = "trains"
        except Exception as exc:
            out[name] = str(exc).strip().splitlines()[-1]
    for ext in ("keras", "h5"):  # dict outputs, losses keyed by the layers' names, not the dict's keys
        inputs = keras.Input((8,))
        model = keras.Model(inputs, {"a": L.Dense(3, name="la")(inputs), "b": L.Dense(2, name="lb")(inputs)})
        model.compile(keras.optimizers.SGD(0.01), {"la": "mse", "lb": "mse"})
        path = sys.argv[1] + "/layer_keys." + ext
        model.save(path) if ext == "keras" else model.save(path, save_format="h5")
        try:
            keras.models.load_model(path).fit(x, y, epochs=1, batch_size=8, verbose=0)
            out["layer_keys_" + ext] = "trains"
        except Exception as exc:
            out["layer_keys_" + ext] = str(exc).strip().splitlines()[-1]
    schedule = S.CosineDecay(0.1, 900, warmup_steps=100)  # no warmup_target: Keras ignores warmup_steps
    rates = [float(schedule(step)) for step in range(0, 1001)]
    out["schedule_stops_at"] = max(i + 1 for i in range(1000) if rates[i + 1] != rates[i])
    model = keras.Sequential([keras.Input((8,)), L.Dense(2)])
    model.compile(keras.mixed_precision.LossScaleOptimizer(keras.optimizers.SGD(schedule)), "mse")
    model.save(sys.argv[1] + "/lso_cosine.h5", save_format="h5")
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def tf_keras_files(tmp_path_factory):
    """Files tf-keras 2 writes in its own process (it never shares one with
    Keras 3), with what its fit and schedule did."""
    pytest.importorskip("tf_keras")
    folder = tmp_path_factory.mktemp("tfk")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", TF_KERAS_SCRIPT, str(folder)], capture_output=True, text=True,
                          env=env, check=True)
    return folder, json.loads(done.stdout.strip().splitlines()[-1])


def test_tf_keras_dict_outputs_with_no_key_naming_one_compute_no_data_loss(tf_keras_files):
    folder, said = tf_keras_files
    assert "No loss found" in said["no_key_matches"]  # tf-keras' own fit
    assert said["no_key_matches_penalized"] == "trains"  # on the penalty alone
    for name in ("no_key_matches", "no_key_matches_penalized"):
        [finding] = rl027(folder / f"{name}.h5")
        assert "'c'" in finding.message and "no data loss" in finding.message


def test_tf_keras_dict_outputs_keyed_by_layer_names_follow_the_format(tf_keras_files):
    """tf-keras reads a dict output's layer name as its key when it loads an
    .h5 file, not a .keras one: the .keras file computes no data loss."""
    folder, said = tf_keras_files
    assert "No loss found" in said["layer_keys_keras"] and said["layer_keys_h5"] == "trains"  # tf-keras' own fit
    [finding] = rl027(folder / "layer_keys.keras")
    assert "'la', 'lb'" in finding.message and "no data loss" in finding.message
    assert rl027(folder / "layer_keys.h5") == []


def test_tf_keras_loss_scale_optimizer_v3_is_unwrapped_and_its_schedule_ends_where_keras_stops(tf_keras_files):
    folder, said = tf_keras_files
    report = lint_file(str(folder / "lso_cosine.h5"), Settings())
    assert report.error is None, report.error
    optimizer = report.model.optimizer
    assert optimizer.class_name == "SGD" and optimizer.config.get("loss_scale_optimizer") is True
    assert optimizer.learning_rate.schedule == "CosineDecay"
    assert optimizer.learning_rate.length() == said["schedule_stops_at"] == 900
