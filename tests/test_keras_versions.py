"""Files written by every Keras 3 release, not only the project's own.

fixtures/versions/keras-<release>/ holds the same zoo of models written by
each release (fixtures/make_version_fixtures.py, JAX backend) and a manifest
of what that release reported after loading each file back. The readers must
give each release's own counts, regularizers, optimizer and penalty, and must
not call a file broken (RL019) that its own release loads.
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


ENTRIES = version_entries("keras-*")
MODELS = [e for e in ENTRIES if e["format"] != "weights_only" and not e.get("broken")]
BROKEN = [e for e in ENTRIES if e.get("broken")]
WEIGHTS = [e for e in ENTRIES if e["format"] == "weights_only"]


def _id(entry: dict) -> str:
    return f"{entry['keras_version']}/{entry['file']}"


def test_every_release_since_3_0_is_covered():
    releases = {e["keras_version"] for e in ENTRIES}
    minors = {tuple(int(x) for x in v.split(".")[:2]) for v in releases}
    assert {(3, m) for m in range(16)} <= minors, sorted(minors)


@pytest.mark.parametrize("entry", MODELS, ids=_id)
def test_counts_equal_the_writers(entry):
    model = read_model(entry["path"])
    assert not [p for p in model.problems if p.kind in RL019_KINDS], model.problems[:3]
    config = model.metadata["config_params"]
    # a quantized layer's variables come from its stored tensors (what the mode made), not from the config
    assert all("quantized layer" in why for why in config["unknown"].values()), config["unknown"]
    assert model.total_params == entry["count_params"]
    assert config["unknown"] or config["total"] == entry["count_params"]
    if entry.get("load_error"):
        # The release cannot load its own file (Keras 3.0-3.2 and Bidirectional): the manifest's split is the
        # writing model's, in memory, not what a load trains.
        return
    assert (model.trainable_params, model.non_trainable_params) == (
        entry["trainable_params"], entry["non_trainable_params"])
    assert config["unknown"] or config["trainable"] == entry["trainable_params"]


@pytest.mark.parametrize("entry", MODELS, ids=_id)
def test_layers_and_regularizers_equal_the_writers(entry):
    model = read_model(entry["path"])
    by_path = {layer.path: layer for layer in model.layers}
    for expected in entry["layers"]:
        layer = by_path.get(expected["path"])
        if layer is None:
            assert expected["trainable_params"] + expected["non_trainable_params"] == 0, expected["path"]
            continue
        if not expected["trainable"]:
            # Keras 3's layer.trainable_weights is empty for a layer whose flag is off, yet the model's trainable
            # variables (what fit trains, the model's split above) can hold its weights: all of them in 3.0/3.1,
            # a frozen MultiHeadAttention's or wrapper's sub-layers' from 3.2 (variable_trains).
            assert layer.params == expected["trainable_params"] + expected["non_trainable_params"], expected["path"]
        else:
            assert (layer.trainable_params, layer.non_trainable_params) == (
                expected["trainable_params"], expected["non_trainable_params"]), expected["path"]
        for key, reg in expected["regularizers"].items():
            check_regularizer(layer, key, reg)


def test_frozen_layers_train_under_the_releases_that_ignored_trainable_false():
    """keras-team/keras#19398: Keras 3.0 and 3.1 load a frozen layer with
    trainable variables, and fit trains them; 3.2 keeps it frozen. The
    counts follow the writer, and a note says so."""
    for version, thawed in (("3.0.5", True), ("3.1.1", True), ("3.2.1", False)):
        for name in ("frozen_conv_sgd.keras", "frozen_conv_sgd.h5", "frozen_backbone_adam.keras"):
            model = read_model(VERSIONS / f"keras-{version}" / name)
            notes = [n for n in model.notes if "keras-team/keras#19398" in n]
            assert bool(notes) is thawed, (version, name)
            frozen = [layer.path for layer in model.layers if not layer.trainable]
            assert (frozen == []) is thawed, (version, name, frozen)


def test_frozen_sub_layers_train_as_keras_3_loads_them():
    """From Keras 3.2 a loaded layer's trainable=False freezes the variables
    it creates itself, not its sub-layers': a frozen MultiHeadAttention and
    a Bidirectional or TimeDistributed frozen by a constructor argument train
    (their inner configs are trainable), a Bidirectional around a frozen GRU
    does not, a frozen Dense and LSTM stay frozen. The model totals above are
    Keras' own after load (693 of 1,143 for every release from 3.3)."""
    for version in ("3.3.3", "3.8.0", "3.15.1"):
        model = read_model(VERSIONS / f"keras-{version}" / "frozen_owners_adam.keras")
        layers = {layer.path: layer for layer in model.layers}
        trains = {path: layer.trainable_params > 0 for path, layer in layers.items() if layer.params}
        assert trains == {"mha": True, "frozen_dense": False, "bi_wrapper_frozen": True, "bi_inner_frozen": False,
                          "td_wrapper_frozen": True, "lstm_frozen": False, "dense_1": True}, (version, trains)
        # the MHA's L2 is active again: Keras adds the penalty of what it trains
        active = [p for p in Analysis(model).penalties if p.layer.path == "mha"]
        assert active and all(p.active for p in active)


@pytest.mark.parametrize("entry", [e for e in MODELS if e["optimizer"]], ids=_id)
def test_optimizer_equals_the_writers(entry):
    opt = read_model(entry["path"]).optimizer
    config = entry["optimizer"]["config"]
    assert opt is not None and opt.class_name == entry["optimizer"]["class_name"]
    lr = config["learning_rate"]
    if isinstance(lr, dict):
        assert opt.learning_rate.schedule == lr["class_name"]
    else:
        assert math.isclose(opt.learning_rate.initial, lr, rel_tol=1e-6)
    for key in ("momentum", "weight_decay"):
        if isinstance(config.get(key), (int, float)):
            assert math.isclose(getattr(opt, key) or 0.0, config[key], rel_tol=1e-6), key
    # The counter the file stores, as the writer held it before saving: the
    # loaded-back ``iterations`` is 0 where Keras could not restore the
    # optimizer (3.0/3.1 with thawed frozen layers, a LossScaleOptimizer's
    # own counter) or divides it by gradient_accumulation_steps (3.5+).
    assert opt.iterations == entry["generator_iterations"]


@pytest.mark.parametrize("entry", [e for e in MODELS if e.get("weight_penalty")], ids=_id)
def test_penalty_at_saved_weights_equals_the_writers(entry):
    """sum(model.losses) after loading back: Keras 3 leaves frozen layers out."""
    penalties = Analysis(read_model(entry["path"])).penalties
    assert math.isclose(sum(p.penalty_saved or 0.0 for p in penalties if p.active), entry["weight_penalty"],
                        rel_tol=1e-4)


@pytest.mark.parametrize("entry", MODELS, ids=_id)
def test_healthy_zoo_lints_without_errors(entry):
    """Small lambdas and usual optimizers: no file of the zoo is an error for
    any release (the loss scale is read: no 'unknown loss' note either)."""
    report = lint_file(str(entry["path"]), Settings())
    assert report.error is None, report.error
    assert [f.code for f in report.findings if f.severity is Severity.ERROR] == []
    assert report.analysis.loss_scale.value is not None


@pytest.mark.parametrize("entry", BROKEN, ids=_id)
def test_files_their_writer_cannot_load_are_errors(entry):
    """A float8 layer in a legacy .h5 (no release loads it back: its HDF5
    loader assigns weights by position) and a GPTQ file from 3.14+ (it
    stores no kernel_zero): RL019 says the file will not load and what to
    do instead, not a re-save that writes the same file."""
    assert entry.get("load_error"), "the writer loaded it: not broken"
    report = lint_file(str(entry["path"]), Settings())
    errors = [f for f in report.findings if f.code == "RL019" and f.severity is Severity.ERROR]
    assert errors and not any(f.remedy.startswith("re-save") for f in errors), [f.message for f in errors]
    # what the file stores: the writing model's count, less the kernel_zero a 3.14+ GPTQ file leaves out
    assert 0 < report.model.total_params <= entry["count_params"]


def test_the_broken_files_are_there():
    assert {e["file"] for e in BROKEN} == {"quantized_float8.h5", "quantized_gptq_unloadable.keras"}
    gptq = {e["keras_version"] for e in BROKEN if e["file"] == "quantized_gptq_unloadable.keras"}
    assert gptq >= {"3.14.1", "3.15.1"}


@pytest.mark.parametrize("entry", WEIGHTS, ids=_id)
def test_weights_files_count_their_tensors(entry):
    model = read_model(entry["path"])
    assert model.format == "keras_weights" and model.total_params == entry["count_params"]
    assert not model.problems


def test_gradient_accumulation_counts_optimizer_steps():
    """Adam(gradient_accumulation_steps=2): Keras applies one update every
    two batches; its stored counter counts batches, and from 3.5 its
    ``optimizer.iterations`` floor-divides by 2. The rules' steps are updates."""
    from reglint.engine.analysis import TrainingContext

    for version in ("3.4.1", "3.15.1"):
        model = read_model(VERSIONS / f"keras-{version}" / "ema_accumulate_adam.keras")
        assert model.optimizer.gradient_accumulation_steps == 2 and model.optimizer.iterations == 1
        analysis = Analysis(model, TrainingContext(samples=1000, batch_size=32, epochs=10))
        assert analysis.optimizer_steps_taken() == 0
        assert analysis.context.steps_per_epoch() == 16 and analysis.context.total_steps() == 160
        assert any("gradient_accumulation_steps 2" in note for note in analysis.model.notes)
    plain = Analysis(read_model(VERSIONS / "keras-3.15.1" / "mlp_sgd_trained.keras"),
                     TrainingContext(samples=1000, batch_size=32, epochs=10))
    assert plain.context.total_steps() == 320 and plain.optimizer_steps_taken() == 4


def test_a_release_that_cannot_load_its_own_file_is_noted():
    """Keras 3.0-3.2 raise loading their own Bidirectional layers (the
    manifest's load_error); the note says so, and that 3.3 loads the file."""
    for entry in MODELS:
        notes = [n for n in read_model(entry["path"]).notes if "cannot load its own Bidirectional" in n]
        raised = "could not be loaded" in (entry.get("load_error") or "")
        assert bool(notes) is raised, (entry["keras_version"], entry["file"])


def test_explain_says_what_tf_keras_does_with_a_frozen_penalty():
    """Review 35, 1: for a tf.keras file RL016 said the frozen layer's
    penalty is still added as a constant (tf_keras' model.losses held
    0.0067, manifest ``weight_penalty``) while explain said 'Keras adds no
    penalty for it'. Both now say it from RL016's one sentence."""
    import json
    import subprocess
    import sys

    entries = json.loads((FIXTURES / "keras" / "manifest.json").read_text())
    entries = entries if isinstance(entries, list) else entries.get("files", entries)
    (truth,) = [e for e in entries if isinstance(e, dict) and e.get("file") == "tfk_frozen.h5"]
    assert truth["weight_penalty"] > 0
    out = subprocess.run([sys.executable, "-m", "reglint", "explain", str(FIXTURES / "keras" / "tfk_frozen.h5")],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert "tf.keras adds it to the reported loss as a constant" in out
    assert "adds no penalty" not in out and "neither adds" not in out
