"""``reglint profile`` on models whose outputs are a dict (review 25, D1, D2).

Keras 3 returns a dict prediction for ``keras.Model(x, {"label": ...})``,
matches losses and a dict of targets to the outputs by their dict keys (a
key need not be its layer's name), and pairs a *list* of targets with the
outputs by position in the order it flattens the dict: sorted by key. The
profile must score the held-back slice as Keras does: every number below is
compared with Keras' own ``evaluate``/``predict`` on the same slice.

The models are tiny, built once per module in a temporary folder; each
profile runs ``--steps`` 20-30 on the CPU.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from reglint.cli.app import main
from reglint.profile import ProfileError
from reglint.profile.data import HOLD_OUT, REGRESSION, SPARSE, TargetSpec

SEED = 0
N = 300


def held_slice(n: int = N, seed: int = SEED) -> np.ndarray:
    """The examples profile holds back (data.split_held_out: the last
    HOLD_OUT of the ``[seed, 1]`` permutation)."""
    return np.random.default_rng([seed, 1]).permutation(n)[-max(1, round(n * HOLD_OUT)):]


def profile_json(capsys, *args: str) -> tuple[int, dict, str]:
    code = main(["profile", *args, "-f", "json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else {}), captured.err


def profile_of(report: dict) -> dict:
    return report["files"][0]["model"]["analysis"]["profile"]


def data_loss(model, x, y) -> float:
    """Keras' own held-out data loss: ``evaluate``'s loss (one batch) less
    the weight penalties it adds (``model.losses``)."""
    value = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)["loss"]
    return float(value) - sum(float(t) for t in model.losses)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    keras = pytest.importorskip("keras")
    folder = tmp_path_factory.mktemp("profile_dict")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, 8)).astype("float32")
    label = (x[:, :3] @ rng.standard_normal((3, 3))).argmax(axis=1)
    positive = (x[:, 0] + x[:, 1] > 0).astype("float32")[:, None]
    zeta = (10 * x[:, :1] + 5).astype("float32")  # large-scale target
    alpha = (0.1 * x[:, 1:2]).astype("float32")  # small-scale target
    out: dict[str, Path] = {}
    np.savez(folder / "cls.npz", x=x, y=label, bad=np.where(label == 2, 3, label), positive=positive)
    np.savez(folder / "reg.npz", x=x, zeta=zeta, alpha=alpha, first=alpha, second=zeta, beta=alpha,
             price=zeta, kind=label)
    out["cls"], out["reg"] = folder / "cls.npz", folder / "reg.npz"

    def trunk(seed: int):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((8,), name="x")
        return inputs, keras.layers.Dense(16, activation="relu", name="trunk",
                                          kernel_regularizer=keras.regularizers.L2(1e-3))(inputs)

    # one softmax output keyed "label", its layer named "head"; trained a
    # little so that its accuracy is far from the share of class 0
    i, h = trunk(1)
    model = keras.Model(i, {"label": keras.layers.Dense(3, activation="softmax", name="head")(h)})
    model.compile(keras.optimizers.SGD(0.05), {"label": "sparse_categorical_crossentropy"})
    model.fit(x, label, epochs=15, batch_size=32, verbose=0)
    out["label"] = folder / "label_key.keras"
    model.save(out["label"])

    i, h = trunk(2)
    model = keras.Model(i, {"is_positive": keras.layers.Dense(1, activation="sigmoid", name="is_positive")(h)})
    model.compile(keras.optimizers.SGD(0.05), {"is_positive": "binary_crossentropy"})
    model.fit(x, positive, epochs=10, batch_size=32, verbose=0)
    out["binary"] = folder / "binary.keras"
    model.save(out["binary"])

    # two regression heads built zeta first: Keras orders them alpha, zeta
    i, h = trunk(3)
    model = keras.Model(i, {"zeta": keras.layers.Dense(1, name="zeta")(h),
                            "alpha": keras.layers.Dense(1, name="alpha")(h)})
    model.compile(keras.optimizers.Adam(1e-3), {"zeta": "mse", "alpha": "mse"},
                  loss_weights={"zeta": 1.0, "alpha": 0.01})
    out["two_reg"] = folder / "two_reg.keras"
    model.save(out["two_reg"])

    # keys unlike the layers' names, a classifier and a regressor (m02)
    i, h = trunk(4)
    model = keras.Model(i, {"price": keras.layers.Dense(1, name="price_head")(h),
                            "kind": keras.layers.Dense(3, activation="softmax", name="kind_head")(h)})
    model.compile(keras.optimizers.Adam(1e-3), {"price": "mse", "kind": "sparse_categorical_crossentropy"})
    out["mixed"] = folder / "mixed.keras"
    model.save(out["mixed"])

    # one output whose loss weighs 0.5 (review 63, 6)
    i, h = trunk(5)
    model = keras.Model(i, keras.layers.Dense(1, name="price")(h))
    model.compile(keras.optimizers.Adam(1e-3), "mse", loss_weights=[0.5])
    out["half"] = folder / "half.keras"
    model.save(out["half"])

    # two outputs, a loss for one only (review 63, 7: Keras takes a None target for the other)
    i, h = trunk(6)
    model = keras.Model(i, [keras.layers.Dense(3, activation="softmax", name="kind")(h),
                            keras.layers.Dense(1, name="price")(h)])
    model.compile(keras.optimizers.Adam(1e-3), {"kind": None, "price": "mse"}, loss_weights={"kind": 1.0, "price": 0.5})
    out["one_loss"] = folder / "one_loss.keras"
    model.save(out["one_loss"])
    return out


def keras_model(path: Path):
    import warnings

    import keras

    with warnings.catch_warnings():  # "Skipping variable loading for optimizer": an unbuilt optimizer
        warnings.simplefilter("ignore")
        return keras.saving.load_model(path)


def arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {k: archive[k] for k in archive.files}


# ---------------------------------------------------------------------------
# D1: a single output returned as a dict


@pytest.mark.slow
def test_a_dict_output_is_scored_by_its_key_as_keras_predicts_it(built, capsys):
    """Accuracy and loss at step 0 (the saved weights) are Keras' on the
    held-back slice, not the share of class 0; the loss keyed "label"
    (layer "head") is named."""
    code, report, err = profile_json(capsys, str(built["label"]), "--data", str(built["cls"]), "--init", "saved",
                                     "--steps", "30")
    assert code in (0, 1), err
    profile = profile_of(report)
    assert profile["loss"]["names"] == ["sparse_categorical_crossentropy"]
    data, held = arrays(built["cls"]), held_slice()
    model = keras_model(built["label"])
    probabilities = model.predict(data["x"][held], verbose=0)["label"]
    accuracy = float(np.mean(probabilities.argmax(-1) == data["y"][held]))
    assert accuracy > 0.6 > np.mean(data["y"][held] == 0)  # far from the old answer
    run = profile["twin"]["runs"]["penalized"]
    assert run["val_accuracy"][0] == pytest.approx(accuracy, abs=1e-9)
    assert run["val_loss"][0] == pytest.approx(data_loss(model, data["x"][held], data["y"][held]), rel=1e-4)
    assert profile["twin"]["held_out"]["metric"] == "accuracy"


@pytest.mark.slow
def test_a_binary_dict_output_is_profiled_not_refused(built, capsys):
    code, report, err = profile_json(capsys, str(built["binary"]), "--data", str(built["cls"]), "--y-key",
                                     "positive", "--init", "saved", "--steps", "20")
    assert code in (0, 1), err
    data, held = arrays(built["cls"]), held_slice()
    model = keras_model(built["binary"])
    prediction = model.predict(data["x"][held], verbose=0)["is_positive"]
    accuracy = float(np.mean((prediction > 0.5) == (data["positive"][held] > 0.5)))
    run = profile_of(report)["twin"]["runs"]["penalized"]
    assert run["val_accuracy"][0] == pytest.approx(accuracy, abs=1e-9)
    assert run["val_loss"][0] == pytest.approx(data_loss(model, data["x"][held], data["positive"][held]), rel=1e-4)


@pytest.mark.slow
def test_labels_out_of_range_for_a_dict_keyed_output_get_reglints_message(built, capsys):
    """The key "label" is not the layer's name ("head"): the sparse loss is
    still found, so the label check runs before TensorFlow's error."""
    code, _, err = profile_json(capsys, str(built["label"]), "--data", str(built["cls"]), "--y-key", "bad",
                                "--steps", "5")
    assert code == 2
    assert "output 'label' has 3 classes" in err and "Received a label value" not in err, err
    assert len(err.strip().splitlines()) == 1, err


# ---------------------------------------------------------------------------
# D2: --y-key arrays and a dict of outputs


@pytest.mark.slow
def test_y_key_arrays_named_after_the_outputs_go_to_their_outputs(built, capsys):
    """As Keras with a dict of targets: in either order, each array trains
    and scores the output of its name (loss weights 1 and 0.01 tell a swap)."""
    data, held = arrays(built["reg"]), held_slice()
    model = keras_model(built["two_reg"])
    truth = data_loss(model, data["x"][held], {"zeta": data["zeta"][held], "alpha": data["alpha"][held]})
    swapped = data_loss(model, data["x"][held], {"zeta": data["alpha"][held], "alpha": data["zeta"][held]})
    assert abs(truth - swapped) > 0.5 * truth
    for keys in ("zeta,alpha", "alpha,zeta"):  # as built, and as Keras orders them
        code, report, err = profile_json(capsys, str(built["two_reg"]), "--data", str(built["reg"]), "--y-key", keys,
                                         "--steps", "20")
        assert code in (0, 1), err
        profile = profile_of(report)
        assert profile["twin"]["runs"]["penalized"]["val_loss"][0] == pytest.approx(truth, rel=1e-4), keys
        assert profile["data"]["keys"]["y"] == ["alpha", "zeta"]  # the outputs' order
        assert profile["data"]["notes"] == []


@pytest.mark.slow
def test_y_key_arrays_named_otherwise_pair_by_position_in_keras_order(built, capsys):
    """Names that match no output pair by position, as Keras pairs a list of
    targets: in the sorted-key order of the outputs (alpha, zeta), which
    the report spells out."""
    code, report, err = profile_json(capsys, str(built["two_reg"]), "--data", str(built["reg"]), "--y-key",
                                     "first,second", "--steps", "20")
    assert code in (0, 1), err
    profile = profile_of(report)
    data, held = arrays(built["reg"]), held_slice()
    model = keras_model(built["two_reg"])
    as_list = data_loss(model, data["x"][held], [data["first"][held], data["second"][held]])
    assert profile["twin"]["runs"]["penalized"]["val_loss"][0] == pytest.approx(as_list, rel=1e-4)
    assert any("first -> alpha, second -> zeta" in note for note in profile["data"]["notes"]), profile["data"]


@pytest.mark.slow
def test_a_y_key_named_after_an_output_but_placed_at_another_is_refused(built, capsys):
    code, _, err = profile_json(capsys, str(built["two_reg"]), "--data", str(built["reg"]), "--y-key", "zeta,beta",
                                "--steps", "5")
    assert code == 2
    assert "'zeta' is the name of the model's output 'zeta'" in err and "'beta' names no output" in err, err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_dict_keys_unlike_the_layer_names_match_losses_and_targets_by_key(built, capsys):
    """m02's form: outputs {"price": Dense(name="price_head"), "kind":
    Dense(name="kind_head")}; --y-key price,kind in the order they were
    built (Keras' order is kind, price)."""
    code, report, err = profile_json(capsys, str(built["mixed"]), "--data", str(built["reg"]), "--y-key",
                                     "price,kind", "--steps", "20")
    assert code in (0, 1), err
    profile = profile_of(report)
    assert profile["loss"]["names"] == ["sparse_categorical_crossentropy", "mean_squared_error"]
    assert profile["data"]["keys"]["y"] == ["kind", "price"]
    data, held = arrays(built["reg"]), held_slice()
    model = keras_model(built["mixed"])
    truth = data_loss(model, data["x"][held], {"price": data["price"][held], "kind": data["kind"][held]})
    assert profile["twin"]["runs"]["penalized"]["val_loss"][0] == pytest.approx(truth, rel=1e-4)


@pytest.mark.slow
def test_several_outputs_are_judged_against_the_constant_predictor_of_each_weighted(built, capsys):
    """Review 61, 4: a two-output model (softmax and linear heads) whose
    heads both sat at the constant predictor was judged against the loss at
    the saved weights: "worse", not "collapsed". The reference is now each
    output's constant predictor, weighted as the total weighs them (zeta 1,
    alpha 0.01 here, which a swap would tell; kind and price 1 each)."""
    from reglint.profile.data import trivial_loss

    data, held = arrays(built["reg"]), held_slice()
    code, report, err = profile_json(capsys, str(built["two_reg"]), "--data", str(built["reg"]), "--y-key",
                                     "zeta,alpha", "--steps", "20")
    assert code in (0, 1), err
    expected = 0.01 * trivial_loss(data["alpha"][held], "mse") + trivial_loss(data["zeta"][held], "mse")
    assert profile_of(report)["twin"]["held_out"]["trivial_loss"] == pytest.approx(expected, rel=1e-6)
    code, report, err = profile_json(capsys, str(built["mixed"]), "--data", str(built["reg"]), "--y-key",
                                     "price,kind", "--steps", "20")
    assert code in (0, 1), err
    expected = trivial_loss(data["kind"][held], "sparse_categorical_crossentropy") + trivial_loss(
        data["price"][held], "mse")
    assert profile_of(report)["twin"]["held_out"]["trivial_loss"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["half", "one_loss"])
def test_a_loss_weight_scales_the_constant_predictors_loss_and_an_output_without_a_loss_takes_no_target(
        built, capsys, name):
    """Review 63, 6: one output whose loss weighs 0.5 sat at the constant
    predictor and was "49.5% below" it: the runs report the weighted loss,
    and so is the reference now. Review 63, 7: two outputs, a loss for one
    (``{"kind": None, "price": "mse"}``): the profile failed with Keras'
    KeyError, which wants a None target for the other; it profiles now."""
    from reglint.profile.data import trivial_loss

    data, held = arrays(built["reg"]), held_slice()
    code, report, err = profile_json(capsys, str(built[name]), "--data", str(built["reg"]), "--y-key", "price",
                                     "--steps", "20")
    assert code in (0, 1), err
    twin = profile_of(report)["twin"]
    assert twin["held_out"]["trivial_loss"] == pytest.approx(0.5 * trivial_loss(data["price"][held], "mse"), rel=1e-6)
    model = keras_model(built[name])
    truth = data_loss(model, data["x"][held], data["price"][held] if name == "half" else
                      [None, data["price"][held]])
    assert twin["runs"]["penalized"]["val_loss"][0] == pytest.approx(truth, rel=1e-4)


def test_pair_targets_without_tensorflow():
    from reglint.profile.data import pair_targets

    targets = [TargetSpec("alpha", (1,), REGRESSION), TargetSpec("zeta", (1,), REGRESSION)]
    a, z = np.zeros((4, 1)), np.ones((4, 1))
    ys, keys, notes = pair_targets([z, a], ["zeta", "alpha"], targets)
    assert keys == ["alpha", "zeta"] and ys[0] is a and ys[1] is z and notes == []
    ys, keys, notes = pair_targets([a, z], ["p", "q"], targets)
    assert keys == ["p", "q"] and ys[0] is a and "p -> alpha, q -> zeta" in notes[0]
    with pytest.raises(ProfileError, match="'alpha' is given twice"):
        pair_targets([a, a], ["alpha", "alpha"], targets)
    # one output: whatever its array is called, it is that output's
    ys, keys, notes = pair_targets([a], ["y"], [TargetSpec("label", (3,), SPARSE)])
    assert keys == ["y"] and ys[0] is a and notes == []
