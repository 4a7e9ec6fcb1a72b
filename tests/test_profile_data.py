"""``reglint profile --data``: the data file and what the model accepts, checked
before TensorFlow is imported (no model is trained here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
REGLINT = Path(sys.executable).with_name("reglint")
FIXTURES = ROOT / "fixtures"
KERAS_FIXTURES = FIXTURES / "keras"


def test_data_that_is_not_an_npz_or_needs_pickle_is_refused_by_name(tmp_path):
    """Anything but a zip archive would reach np.load's pickle fallback, and
    object arrays need pickle: both refused with what to do, no numpy hint
    about allow_pickle."""
    from reglint.profile import ProfileError
    from reglint.profile.data import load_npz

    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not an npz at all")
    with pytest.raises(ProfileError, match=r"not a \.npz archive") as raised:
        load_npz(junk, "x", "y")
    assert "allow_pickle" not in str(raised.value)
    with pytest.raises(ProfileError, match=r"a zip archive with no arrays in it \(it holds metadata.json"):
        load_npz(KERAS_FIXTURES / "dense_l2.keras", "x", "y")  # a model given as --data
    objects = tmp_path / "objects.npz"
    np.savez(objects, x=np.array([{"a": 1}] * 4, dtype=object), y=np.zeros(4))
    with pytest.raises(ProfileError, match="object arrays") as raised:
        load_npz(objects, "x", "y")
    assert "allow_pickle" not in str(raised.value)


def test_labels_are_checked_against_the_loss_before_training():
    """One-hot rows for a sparse loss, class ids past the output's width and
    integer ids for a categorical loss: a ProfileError that says what fits,
    before TensorFlow sees them (its own errors name neither)."""
    from reglint.profile import ProfileError
    from reglint.profile.data import ONE_HOT, SPARSE, InputSpec, NpzData, TargetSpec, batches_from_npz

    x = np.zeros((8, 4), "float32")
    inputs = [InputSpec("x", (4,), "float32")]

    def batches(y, kind):
        data = NpzData("d.npz", [x], [y], ["x"], ["y"])
        return batches_from_npz(data, inputs, [TargetSpec("out", (4,), kind)], 4, 0)

    ids = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    assert batches(ids, SPARSE) is not None and batches(np.eye(4)[ids], ONE_HOT) is not None
    with pytest.raises(ProfileError, match=r"one-hot rows of 4.*argmax"):
        batches(np.eye(4)[ids], SPARSE)
    with pytest.raises(ProfileError, match=r"class ids 10\.\.13, but output 'out' has 4 classes"):
        batches(ids + 10, SPARSE)
    with pytest.raises(ProfileError, match=r"one-hot rows of 4: save numpy.eye\(4\)\[y\]"):
        batches(ids, ONE_HOT)


def test_custom_objects_are_named_plainly():
    """What safe mode refuses, in words: a registered function by its name
    (no '(builtins)'), a class as a class."""
    from reglint.profile.command import _custom_object

    fn = {"module": "builtins", "class_name": "function", "config": "my_loss", "registered_name": "mine>my_loss"}
    assert _custom_object(fn) == "function mine>my_loss"
    assert _custom_object({"module": "acme.losses", "class_name": "function", "config": "f",
                           "registered_name": None}) == "function f (module acme.losses)"
    assert _custom_object({"module": None, "class_name": "ScaledL2", "registered_name": "acme>ScaledL2"}) \
        == "class acme>ScaledL2"
    assert _custom_object({"module": "keras.losses", "class_name": "Huber", "registered_name": None}) is None


def test_report_over_the_data_file_is_refused_by_name(tmp_path):
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 8), "float32"), y=np.zeros(4, "int32"))
    before = data.read_bytes()
    result = subprocess.run([str(REGLINT), "profile", str(KERAS_FIXTURES / "dense_l2.keras"), "--data", str(data),
                             "-o", str(data)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.strip().endswith("it is the --data file")
    assert data.read_bytes() == before


def test_the_inputs_mean_is_the_rms_of_the_features_means():
    """Review 64, 3: features at +2 and -2 pooled to a mean of 0, and a
    recurrent estimate fell to 0.45x Keras: what drives a unit at every step
    is ``sum_i w_i * mean_i``, which goes with the features' mean squares."""
    from reglint.profile.data import NpzData

    x = np.concatenate([np.full((100, 5, 2), 2.0), np.full((100, 5, 2), -2.0)], axis=-1).astype("float32")
    assert NpzData("d.npz", [x], [np.zeros(100)], ["x"], ["y"]).input_moments() == pytest.approx((2.0, 4.0))
    pixels = np.random.default_rng(0).uniform(size=(256, 64)).astype("float32")
    mean, square = NpzData("d.npz", [pixels], [np.zeros(256)], ["x"], ["y"]).input_moments()
    assert mean == pytest.approx(0.5, abs=0.01) and square == pytest.approx(1 / 3, rel=0.02)


def test_the_static_estimate_beside_a_measured_activity_penalty_takes_the_datas_scale(tmp_path):
    """Review 53, 4: ``profile --data`` on pixels in [0, 1] printed RL010's
    static estimate for standardised inputs (9x Keras' penalty) beside the
    measured one. The static report is made again with the inputs' mean
    square measured on --data; token ids are no scale, and a value the user
    gave is kept."""
    from reglint.engine.runner import lint_file
    from reglint.engine.settings import Settings
    from reglint.profile.command import _with_input_scale
    from reglint.profile.data import NpzData

    path = KERAS_FIXTURES / "scenario_activity.keras"
    pixels = np.random.default_rng(0).uniform(size=(256, 64)).astype("float32")

    def rl010(report):
        [f] = [f for f in report.findings if f.code == "RL010"]
        return f

    settings = Settings()
    before = lint_file(str(path), settings)
    after = _with_input_scale(path, before, settings, NpzData("d.npz", [pixels], [np.zeros(256)], ["x"], ["y"]))
    assert rl010(after).values["input_second_moment"] == pytest.approx(1 / 3, rel=0.02)
    assert rl010(after).values["penalty_per_sample"] == pytest.approx(
        rl010(before).values["penalty_per_sample"] / 3, rel=0.05)
    assert "on inputs of mean square 0.33" in rl010(after).message
    # review 63, 4: their mean too, the share of the mean square a recurrent state would add up
    assert rl010(after).values["input_mean"] == pytest.approx(0.5, abs=0.01) and " and mean 0." in rl010(after).message
    # review 58, 4: uint8 pixels fed to a float input are values (mean square of 0..255 ~ 2e4), not token ids
    raw = NpzData("d.npz", [(pixels * 255).astype("uint8")], [np.zeros(256)], ["x"], ["y"])
    assert rl010(_with_input_scale(path, before, Settings(), raw)).values["input_second_moment"] > 1e4
    # review 59, 6: per input: the pixels beside token ids an Embedding reads count, the ids do not
    both = KERAS_FIXTURES / "ids_and_pixels_activity.keras"
    mixed = NpzData("d.npz", [np.ones((256, 12), "int32"), (pixels[:, :16] * 255).astype("uint8")],
                    [np.zeros(256)], ["ids", "feat"], ["y"])
    scaled = _with_input_scale(both, lint_file(str(both), Settings()), Settings(), mixed)
    assert rl010(scaled).values["input_second_moment"] == pytest.approx(
        float(((pixels[:, :16] * 255).astype("uint8").astype("f8") ** 2).mean()))
    # token ids an Embedding reads are no scale: the report stays
    table = FIXTURES / "activity_shapes" / "embedding.keras"
    ids = lint_file(str(table), Settings())
    tokens = NpzData("d.npz", [np.ones((256, 12), "int32")], [np.zeros(256)], ["x"], ["y"])
    assert _with_input_scale(table, ids, Settings(), tokens) is ids
    given = Settings()
    given.context.input_var = 2.0
    assert _with_input_scale(path, before, given, NpzData("d.npz", [pixels], [np.zeros(256)], ["x"], ["y"])) \
        is before
