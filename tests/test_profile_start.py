"""``reglint profile --init``: where the measurement starts. A file whose
optimizer took steps holds trained weights (a collapsed network, in
``scenario_collapsed.keras``): by default both runs start from a fresh draw
of the initializers its config records; ``--init saved`` keeps the file's
weights."""

from __future__ import annotations

import json

import pytest

from reglint.cli.app import main
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.profile import ProfileError
from reglint.profile.load import choose_start

from helpers import KERAS_FIXTURES

COLLAPSED = KERAS_FIXTURES / "scenario_collapsed.keras"  # MLP, L2(1), SGD 0.1, 40 steps taken
UNTRAINED = KERAS_FIXTURES / "scenario_chain_shrink.keras"  # compiled, never fitted


def static_model(path):
    report = lint_file(str(path), Settings())
    assert report.error is None
    return report.model


def test_auto_starts_fresh_only_when_the_file_took_steps():
    trained = choose_start("auto", static_model(COLLAPSED))
    assert trained.fresh and "took 40 steps" in trained.reason
    assert trained.phrase == "from a fresh initialisation"
    untrained = choose_start("auto", static_model(UNTRAINED))
    assert not untrained.fresh and untrained.phrase == "from the saved weights"
    assert not choose_start("saved", static_model(COLLAPSED)).fresh
    assert choose_start("fresh", static_model(UNTRAINED)).fresh
    with pytest.raises(ProfileError, match="--init must be one of auto, saved, fresh"):
        choose_start("random", static_model(UNTRAINED))


def test_auto_keeps_a_trained_file_with_frozen_layers():
    """Frozen kernels hold pretrained features (transfer learning): a fresh
    draw would replace them with noise, so auto keeps the saved weights;
    --init fresh still redraws."""
    frozen = static_model(KERAS_FIXTURES / "frozen_layer.keras")  # 2 steps taken, one Dense frozen
    start = choose_start("auto", frozen)
    assert not start.fresh and "frozen kernel" in start.reason
    assert choose_start("fresh", frozen).fresh


def run_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["profile", *args, "-f", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def profile_of(report: dict) -> dict:
    return report["files"][0]["model"]["analysis"]["profile"]


@pytest.mark.slow
def test_trained_file_is_measured_from_a_fresh_draw(capsys):
    """The collapsed file's saved penalty is ~0.001 (its weights sit near
    zero); from a fresh draw the measured weight penalty is near the
    expected 122 at initialisation, and the JSON and the twin say where
    they started."""
    code, report = run_json(capsys, str(COLLAPSED), "--steps", "10")
    assert code == 1  # RL001's static error at L2(1) stands either way
    profile = profile_of(report)
    assert profile["weights"].startswith("fresh:") and "took 40 steps" in profile["weights"]
    assert profile["twin"]["start"]["weights"].startswith("fresh")
    assert 60 < profile["initial"]["weight_penalty"] < 250  # E = 64 + 42.7 + 15.2 = 122
    rl023 = [f for f in report["files"][0]["findings"] if f["code"] == "RL023"]
    assert all("from a fresh initialisation" in f["message"] for f in rl023)


@pytest.mark.slow
def test_init_saved_keeps_the_trained_weights(capsys):
    code, report = run_json(capsys, str(COLLAPSED), "--steps", "10", "--init", "saved")
    assert code == 1
    profile = profile_of(report)
    assert profile["weights"].startswith("saved:") and "--init saved" in profile["weights"]
    assert profile["initial"]["weight_penalty"] < 0.01  # the collapsed weights, as saved


def test_unknown_init_is_a_usage_error(capsys):
    assert main(["profile", str(COLLAPSED), "--init", "random"]) == 2
    assert "'random' is not one of" in capsys.readouterr().err


@pytest.mark.slow
def test_html_report_says_where_the_runs_started(tmp_path, capsys):
    page = tmp_path / "report.html"
    main(["profile", str(COLLAPSED), "--steps", "5", "-f", "html", "-o", str(page)])
    capsys.readouterr()
    html = page.read_text(encoding="utf-8")
    assert "<dt>weights</dt><dd>fresh: " in html and "<dt>at the fresh draw</dt>" in html


@pytest.mark.slow
def test_trained_file_with_data_is_judged_at_its_training_length(tmp_path, capsys):
    """Without --steps or --epochs, the steps the file's optimizer records
    are the training's length: both runs take them (RL023 judges there)."""
    import numpy as np

    rng = np.random.default_rng(0)
    data = tmp_path / "train.npz"
    np.savez(data, x=rng.normal(size=(200, 64)).astype("float32"), y=rng.integers(0, 10, size=200))
    _code, report = run_json(capsys, str(COLLAPSED), "--data", str(data))
    twin = profile_of(report)["twin"]
    assert twin["steps"] == 40
    assert twin["budget"]["reason"].startswith("the file's optimizer took 40 steps, the training's length, "
                                               "run here at --batch-size 32")
    _code, report = run_json(capsys, str(COLLAPSED), "--data", str(data), "--steps", "12")
    assert profile_of(report)["twin"]["steps"] == 12


@pytest.mark.slow
def test_a_schedule_that_ends_sets_the_training_length(tmp_path, capsys):
    """An untrained file whose CosineDecay ends at step 30 (10 warm-up + 20
    decay steps): without --steps or --epochs both runs take those 30 steps
    and RL023 judges there; --steps still wins. A schedule without an end
    (ExponentialDecay) leaves the default budget."""
    import keras
    import numpy as np

    def saved(schedule, name):
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu",
                                  kernel_regularizer=keras.regularizers.L2(1e-3)), keras.layers.Dense(3)])
        model.compile(keras.optimizers.SGD(schedule, momentum=0.9),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.save(tmp_path / name)
        return str(tmp_path / name)

    rng = np.random.default_rng(0)
    data = tmp_path / "train.npz"
    np.savez(data, x=rng.normal(size=(120, 8)).astype("float32"), y=rng.integers(0, 3, size=120))
    cosine = saved(keras.optimizers.schedules.CosineDecay(0.0, 20, warmup_target=0.05, warmup_steps=10), "cos.keras")
    _code, report = run_json(capsys, cosine, "--data", str(data))
    twin = profile_of(report)["twin"]
    assert twin["steps"] == 30
    assert twin["budget"]["reason"].startswith("the learning-rate schedule CosineDecay ends at step 30")
    _code, report = run_json(capsys, cosine, "--data", str(data), "--steps", "12")
    assert profile_of(report)["twin"]["steps"] == 12
    endless = saved(keras.optimizers.schedules.ExponentialDecay(0.05, 20, 0.9), "exp.keras")
    _code, report = run_json(capsys, endless, "--data", str(data))
    assert "schedule" not in profile_of(report)["twin"]["budget"]["reason"]


@pytest.mark.slow
def test_trusted_lambda_model_is_redrawn_in_the_mode_it_was_loaded(tmp_path, capsys):
    """Cloning deserializes the layers again: with --trust-model a trained
    file with a Lambda layer is redrawn (safe mode off for the clone too);
    without it the file is refused before anything runs."""
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, kernel_regularizer=keras.regularizers.L2(0.01)),
                              keras.layers.Lambda(lambda t: t * 2.0), keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    model.fit(np.ones((8, 4), "float32"), np.zeros(8, "int64"), epochs=1, batch_size=4, verbose=0)
    path = tmp_path / "lambda.keras"
    model.save(path)
    code, report = run_json(capsys, str(path), "--trust-model", "--steps", "3")
    assert code in (0, 1) and profile_of(report)["weights"].startswith("fresh:")
    assert main(["profile", str(path), "--steps", "3"]) == 2
    assert "pass --trust-model" in capsys.readouterr().err


@pytest.mark.slow
def test_fresh_draw_redraws_what_training_learns_and_keeps_the_rest():
    """reinitialize: trainable variables get a new draw and a training
    BatchNorm's moving statistics restart (0 and 1); other non-trainable
    state (a Normalization layer's adapted mean and variance, a frozen
    kernel, a frozen BatchNorm's statistics) keeps its saved value."""
    import keras
    import numpy as np

    from reglint.profile.load import reinitialize

    rng = np.random.default_rng(0)
    x = rng.normal(100.0, 10.0, size=(64, 4)).astype("float32")
    norm = keras.layers.Normalization()
    norm.adapt(x)
    frozen, frozen_bn = keras.layers.Dense(4), keras.layers.BatchNormalization(name="frozen_bn")
    model = keras.Sequential([keras.Input((4,)), norm, frozen, frozen_bn, keras.layers.Dense(4),
                              keras.layers.BatchNormalization(name="training_bn"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    model.fit(x, rng.integers(0, 3, size=64), epochs=2, batch_size=16, verbose=0)  # every statistic moves
    frozen.trainable = frozen_bn.trainable = False
    before = {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}
    reinitialize(keras, model, seed=0)
    after = {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}
    for w in model.weights:
        name = w.path.rsplit("/", 1)[-1]
        if "training_bn/" in w.path and name == "moving_mean":
            assert np.all(after[w.path] == 0.0)
        elif "training_bn/" in w.path and name == "moving_variance":
            assert np.all(after[w.path] == 1.0)
        elif w.trainable:
            assert not np.array_equal(after[w.path], before[w.path]), w.path
        else:  # adapted statistics, the frozen kernel and BatchNorm
            assert np.array_equal(after[w.path], before[w.path]), w.path
    assert any("frozen_bn/" in w.path and w.path.endswith("moving_mean") for w in model.weights)
