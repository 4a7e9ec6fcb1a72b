"""Files written by the Keras 2 releases (tf.keras in TensorFlow 2.12-2.15,
tf_keras 2.16+), not only the project's own tf-keras.

fixtures/versions/tf-keras-<release>/ holds the same zoo of models written
by each release (fixtures/make_tf_version_fixtures.py) as ``.h5``,
``.keras`` (2.12+), SavedModel folders and a ``save_weights`` file, with a
manifest of what that release reported after loading each file back. The
readers must give each release's own counts, regularizers, optimizer and
penalty, and must not call a file broken (RL019) that its release wrote.
"""

from __future__ import annotations

import math

import pytest

from reglint.engine.analysis import Analysis
from reglint.engine.finding import Severity
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.model import ProblemKind
from reglint.readers import read_model

from helpers import FIXTURES, check_regularizer, version_entries

VERSIONS = FIXTURES / "versions"
RL019_KINDS = (ProblemKind.WEIGHTS_MISMATCH, ProblemKind.MISSING_WEIGHTS, ProblemKind.EXTRA_WEIGHTS,
               ProblemKind.UNREADABLE)
RELEASES = sorted(p.name for p in VERSIONS.glob("tf-keras-*"))


ENTRIES = version_entries("tf-keras-*")
MODELS = [e for e in ENTRIES if e["format"] != "weights_only"]
WEIGHTS = [e for e in ENTRIES if e["format"] == "weights_only"]


def _id(entry: dict) -> str:
    return f"{entry['keras_version']}/{entry['file']}"


def test_the_releases_are_covered():
    """Keras 2 from tf.keras (TF 2.12-2.15) and from tf_keras (2.16+), every
    release with each of its formats."""
    minors = {tuple(int(x) for x in e["keras_version"].split(".")[:2]) for e in ENTRIES}
    assert {(2, 12), (2, 13), (2, 15)} <= minors and any(m >= (2, 16) for m in minors), sorted(minors)
    for release in RELEASES:
        formats = {e["format"] for e in ENTRIES if e["path"].parent.name == release}
        assert formats == {"tf_keras_h5", "tf_keras_v3", "savedmodel", "weights_only"}, (release, formats)


@pytest.mark.parametrize("entry", MODELS, ids=_id)
def test_counts_equal_the_writers(entry):
    model = read_model(entry["path"])
    assert not [p for p in model.problems if p.kind in RL019_KINDS], model.problems[:3]
    assert (model.total_params, model.trainable_params, model.non_trainable_params) == (
        entry["count_params"], entry["trainable_params"], entry["non_trainable_params"])


@pytest.mark.parametrize("entry", [e for e in MODELS if e["format"] != "savedmodel"], ids=_id)
def test_config_counts_equal_the_writers(entry):
    config = read_model(entry["path"]).metadata["config_params"]
    assert config["unknown"] == {}
    assert (config["total"], config["trainable"]) == (entry["count_params"], entry["trainable_params"])


@pytest.mark.parametrize("entry", MODELS, ids=_id)
def test_layers_and_regularizers_equal_the_writers(entry):
    model = read_model(entry["path"])
    by_path = {layer.path: layer for layer in model.layers}
    checked = 0
    for expected in entry["layers"]:
        layer = by_path.get(expected["path"])
        if layer is None:
            assert expected["trainable_params"] + expected["non_trainable_params"] == 0, expected["path"]
            continue
        assert (layer.trainable_params, layer.non_trainable_params) == (
            expected["trainable_params"], expected["non_trainable_params"]), expected["path"]
        for key, reg in expected["regularizers"].items():
            check_regularizer(layer, key, reg)
            checked += 1
        for wrapped in expected.get("wrapped", []):
            for key, reg in wrapped["regularizers"].items():
                check_regularizer(layer, key, reg)
                checked += 1
    assert checked > 0  # every model of the zoo carries regularizers


@pytest.mark.parametrize("entry", [e for e in MODELS if e["optimizer"]], ids=_id)
def test_optimizer_equals_the_writers(entry):
    opt = read_model(entry["path"]).optimizer
    config = entry["optimizer"]["config"]
    assert opt is not None
    wrapper = entry["optimizer"]["class_name"]
    if wrapper.startswith("LossScaleOptimizer"):
        # tf.keras saves (and loads) the wrapper, LossScaleOptimizerV3 around a non-legacy optimizer;
        # reglint describes the optimizer inside it and marks the wrapper
        assert opt.config.get("loss_scale_optimizer") is True
        assert opt.class_name == entry["optimizer"].get("inner_class_name", config["name"])
    else:
        assert opt.class_name == wrapper
    lr = config["learning_rate"]
    if isinstance(lr, dict):
        assert opt.learning_rate.schedule == lr["class_name"]
    else:
        assert math.isclose(opt.learning_rate.initial, lr, rel_tol=1e-6)
    for key, attr in (("momentum", "momentum"), ("weight_decay", "weight_decay"), ("decay", "lr_decay")):
        if isinstance(config.get(key), (int, float)):
            assert math.isclose(getattr(opt, attr) or 0.0, config[key], rel_tol=1e-6), key
    if entry["format"] == "tf_keras_v3" and "decay" in config:
        # a legacy optimizer (keras.optimizers.legacy, whose config alone has
        # `decay`) keeps no state in a .keras file: no counter to read
        assert opt.iterations is None
    else:
        # the counter as the writer held it before saving (load_model does not
        # restore a SavedModel's optimizer, nor a LossScaleOptimizer's .h5 counter)
        assert opt.iterations == entry["generator_iterations"]


@pytest.mark.parametrize("entry", [e for e in MODELS if e.get("weight_penalty")], ids=_id)
def test_penalty_at_saved_weights_equals_the_writers(entry):
    """sum(model.losses) after loading back: tf.keras keeps frozen layers'
    penalties (as constants), so every penalty counts, active or not."""
    penalties = Analysis(read_model(entry["path"])).penalties
    assert math.isclose(sum(p.penalty_saved or 0.0 for p in penalties), entry["weight_penalty"], rel_tol=1e-4)


@pytest.mark.parametrize("entry", MODELS, ids=_id)
def test_healthy_zoo_lints_without_errors(entry):
    report = lint_file(str(entry["path"]), Settings())
    assert report.error is None, report.error
    assert [f.code for f in report.findings if f.severity is Severity.ERROR] == []
    if entry["loss"] is not None:
        assert report.analysis.loss_scale.value is not None


@pytest.mark.parametrize("entry", WEIGHTS, ids=_id)
def test_weights_files_count_their_tensors(entry):
    model = read_model(entry["path"])
    assert model.format == "keras_weights" and model.total_params == entry["count_params"]
    assert not model.problems


@pytest.mark.parametrize(("release", "saved_as"), [
    ("tf-keras-2.12.0", ["dense", "dropout", "dense_2"]),  # each weighted layer's dict entry numbered twice
    ("tf-keras-2.13.1", ["dense", "dropout", "dense_2"]),
    ("tf-keras-2.14.0", ["dense", "dropout", "dense_1"]),  # the duplicate entry skipped
    ("tf-keras-2.15.0", ["dense", "dropout", "dense_1"]),  # layers/, as Keras 3
])
def test_keras_zip_layer_groups_follow_the_writer(release, saved_as):
    """Where each release's .keras file keeps the MLP's Dense, Dropout, Dense
    (tf.keras 2.12-2.14: _layer_checkpoint_dependencies, by class, not name)."""
    model = read_model(VERSIONS / release / "mlp_sgd_trained.keras")
    kernels = {layer.path: layer.variables[0].location for layer in model.layers if layer.variables}
    folder = "layers" if release >= "tf-keras-2.15" else "_layer_checkpoint_dependencies"
    assert kernels == {"dense": f"/{folder}/{saved_as[0]}/vars/0", "dense_1": f"/{folder}/{saved_as[2]}/vars/0"}
