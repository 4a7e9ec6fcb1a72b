"""``--data`` that would make every number NaN, or reach the framework's
own error: refused in one line, exit 2, before any training (review 25).

On real files: ``fixtures/keras/embedding.keras`` (token ids of
length 6 into an Embedding of 50 rows, 2 classes) and
``fixtures/keras/scenario_healthy.keras`` (64 features, 10 classes)."""

from __future__ import annotations

import numpy as np
import pytest

from reglint.cli.app import main

from helpers import KERAS_FIXTURES

EMBEDDING = KERAS_FIXTURES / "embedding.keras"
DENSE = KERAS_FIXTURES / "scenario_healthy.keras"


def refused(capsys, tmp_path, model, **arrays) -> str:
    data = tmp_path / "data.npz"
    np.savez(data, **arrays)
    out = tmp_path / "report.json"
    code = main(["profile", str(model), "--data", str(data), "--steps", "2", "-f", "json", "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def features(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 64)).astype("float32"), rng.integers(0, 10, n)


@pytest.mark.slow
def test_nan_inputs_are_refused_not_blamed_on_the_learning_rate(capsys, tmp_path):
    x, y = features()
    x[3, 5] = np.nan
    x[7, 0] = np.inf
    err = refused(capsys, tmp_path, DENSE, x=x, y=y)
    assert "'x' holds 2 NaN or infinite values in 2 of 64 examples" in err


@pytest.mark.slow
def test_finite_inputs_that_overflow_float32_are_refused_in_one_line(capsys, tmp_path):
    """Review 38, 4: inputs of 1e19 are finite in the file, but the model's
    float32 arithmetic overflows: profile ended 'profiling failed
    (ZeroDivisionError: float division by zero)'."""
    rng = np.random.default_rng(0)  # a regression MLP (mse, 10 inputs, 3 outputs): nothing saturates
    x, y = rng.normal(size=(64, 10)).astype("float32"), rng.normal(size=(64, 3)).astype("float32")
    model = KERAS_FIXTURES.parent / "keras_optimizers" / "multi_functional.keras"
    err = refused(capsys, tmp_path, model, x=x * np.float32(1e19), y=y)
    assert "the inputs' scale overflows the model's float32 arithmetic; standardise --data's inputs" in err


@pytest.mark.slow
def test_nan_targets_are_refused(capsys, tmp_path):
    x, _ = features()
    y = np.zeros((64, 10), "float32")
    y[:, 0] = 1
    y[9, 0] = np.nan
    # a one-hot target of a sparse loss would be refused too: the NaN is named first
    assert "'y' holds 1 NaN or infinite values in 1 of 64 examples" in refused(capsys, tmp_path, DENSE, x=x, y=y)


@pytest.mark.slow
def test_text_labels_are_refused_with_what_to_do(capsys, tmp_path):
    x, y = features()
    err = refused(capsys, tmp_path, DENSE, x=x, y=np.array([str(v) for v in y]))
    assert "'y' holds <U1 values, not real numbers" in err and "class ids" in err


@pytest.mark.slow
@pytest.mark.parametrize(("low", "high", "shown"), [(0, 60, "0..60"), (-2, 49, "-2..49")])
def test_token_ids_outside_the_embedding_are_refused(capsys, tmp_path, low, high, shown):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 50, size=(64, 6))
    tokens[0, 0], tokens[1, 1] = low, high
    err = refused(capsys, tmp_path, EMBEDDING, x=tokens, y=rng.integers(0, 2, 64))
    assert f"holds token ids {shown}" in err and "an Embedding of 50 rows (ids 0..49)" in err


@pytest.mark.slow
def test_labels_a_sparse_loss_ignores_are_not_refused(capsys, tmp_path):
    """Review 38, 5: SparseCategoricalCrossentropy(ignore_class=-1) skips
    label -1 (padding); profile refused '-1..3' where Keras' own fit trains
    (manifest ``fit_losses``)."""
    import json

    sweep = KERAS_FIXTURES.parent / "layer_sweep"
    truth = json.loads((sweep / "manifest.json").read_text())["files"]["k3_ignore_class.keras"]
    assert truth["ignore_class"] == -1 and all(np.isfinite(truth["fit_losses"]))
    rng = np.random.default_rng(0)
    data = tmp_path / "data.npz"
    np.savez(data, x=rng.normal(size=(64, 8)).astype("float32"), y=rng.integers(-1, 4, size=64))
    code = main(["profile", str(sweep / "k3_ignore_class.keras"), "--data", str(data), "--steps", "3"])
    assert code in (0, 1), capsys.readouterr().err


@pytest.mark.slow
def test_an_output_without_a_loss_takes_no_target(tmp_path):
    """Review 38, 6: an output compiled with loss None takes no target in
    Keras' ``fit`` (manifest ``fit_losses``, trained on the ``label`` targets
    alone); profile asked for one array per output and refused. It trains on
    the one target, says which output has no loss, and scores the held-back
    slice's accuracy on the output that has one."""
    import json

    sweep = KERAS_FIXTURES.parent / "layer_sweep"
    truth = json.loads((sweep / "manifest.json").read_text())["files"]["k3_unlossed_output.keras"]
    assert truth["untrained_outputs"] == ["embedding"] and all(np.isfinite(truth["fit_losses"]))
    rng = np.random.default_rng(0)
    data, out = tmp_path / "data.npz", tmp_path / "report.json"
    np.savez(data, x=rng.normal(size=(96, 8)).astype("float32"), y=rng.integers(0, 3, size=96))
    code = main(["profile", str(sweep / "k3_unlossed_output.keras"), "--data", str(data), "--steps", "3",
                 "-f", "json", "-o", str(out)])
    assert code in (0, 1)
    profile = json.loads(out.read_text())["files"][0]["model"]["analysis"]["profile"]
    assert profile["loss"]["untrained_outputs"] == truth["untrained_outputs"]
    assert "sparse_categorical_crossentropy" in profile["loss"]["names"]
    accuracy = profile["twin"]["runs"]["penalized"]["val_accuracy"]
    assert accuracy and all(a is not None and 0 <= a <= 1 for a in accuracy)
