"""One ``--seed``, one measurement, for models with random layers too.

A Dropout layer's seed generator draws its seed from Python's ``random``
when ``load_model`` builds it, and a ``.keras`` file does not store it;
profile seeds before loading, so two runs with the same ``--seed`` give the
same numbers (and another seed other ones)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from reglint.cli.app import main


@pytest.fixture(scope="module")
def dropout_model(tmp_path_factory):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    keras = pytest.importorskip("keras")
    folder = tmp_path_factory.mktemp("seed")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    np.savez(folder / "data.npz", x=x, y=y)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu",
                                                                   kernel_regularizer=keras.regularizers.L2(1e-3)),
                              keras.layers.Dropout(0.5), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    model.save(folder / "dropout.keras")
    return folder


def measured(folder, seed: int, name: str) -> tuple[float, float]:
    out = folder / f"{name}.json"
    main(["profile", str(folder / "dropout.keras"), "--data", str(folder / "data.npz"), "--steps", "20",
          "--seed", str(seed), "-f", "json", "-o", str(out)])
    profile = json.loads(out.read_text())["files"][0]["model"]["analysis"]["profile"]
    return profile["initial"]["data_loss"], profile["twin"]["runs"]["penalized"]["val_loss"][-1]


@pytest.mark.slow
def test_the_same_seed_gives_the_same_numbers_with_dropout(dropout_model):
    first, second = measured(dropout_model, 0, "a"), measured(dropout_model, 0, "b")
    assert first == second
    # the dropout masks do enter the numbers: another seed, another first-batch loss
    assert measured(dropout_model, 1, "c")[0] != first[0]
