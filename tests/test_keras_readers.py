"""The Keras readers against what Keras itself reported for each fixture
(fixtures/keras/manifest.json, written by fixtures/make_keras_fixtures.py)."""

from __future__ import annotations

import math

import pytest

from reglint.model import Role
from reglint.readers import read_model

from helpers import KERAS_FIXTURES, check_regularizer, keras_manifest

READABLE = [e for e in keras_manifest() if e["format"] not in ("weights_only", "savedmodel", "savedmodel_export")]
WEIGHTS_ONLY = [e for e in keras_manifest() if e["format"] == "weights_only"]


@pytest.mark.parametrize("entry", READABLE, ids=[e["file"] for e in READABLE])
def test_totals_equal_keras(entry):
    model = read_model(KERAS_FIXTURES / entry["file"])
    assert model.total_params == entry["count_params"]
    if any(layer.custom for layer in model.layers):
        # A .keras file does not record which weights of a custom layer are
        # trainable: reglint says so in a note instead of guessing.
        assert any("trainable" in note for note in model.notes)
        return
    assert model.trainable_params == entry["trainable_params"]
    assert model.non_trainable_params == entry["non_trainable_params"]


@pytest.mark.parametrize("entry", READABLE, ids=[e["file"] for e in READABLE])
def test_per_layer_counts_and_regularizers(entry):
    model = read_model(KERAS_FIXTURES / entry["file"])
    by_path = {layer.path: layer for layer in model.layers}
    for expected in entry["layers"]:
        layer = by_path.get(expected["path"]) or next(
            (candidate for candidate in model.layers if candidate.name == expected["name"]), None)
        if layer is None:
            # Weightless layers may be left out of the description.
            assert expected["trainable_params"] + expected["non_trainable_params"] == 0, expected["path"]
            continue
        if layer.custom:
            assert layer.params == expected["trainable_params"] + expected["non_trainable_params"]
        else:
            assert layer.trainable_params == expected["trainable_params"], expected["path"]
            assert layer.non_trainable_params == expected["non_trainable_params"], expected["path"]
        for key, reg in expected["regularizers"].items():
            check_regularizer(layer, key, reg)


@pytest.mark.parametrize("entry", WEIGHTS_ONLY, ids=[e["file"] for e in WEIGHTS_ONLY])
def test_weights_only_file_counts_its_tensors_and_says_so(entry):
    """save_weights files: the generating model's count, a note, no problem
    (a pre-commit hook must pass on them)."""
    model = read_model(KERAS_FIXTURES / entry["file"])
    assert model.format == "keras_weights"
    assert model.total_params == entry["count_params"]
    assert any("weights-only" in note for note in model.notes)
    assert not model.problems and not model.has_regularization
    # every float tensor's statistics (a Normalization's count is an integer)
    assert all(v.stats is not None and v.stats.count == v.size for _, v in model.variables() if "int" not in v.dtype)


@pytest.mark.parametrize("file", ["k3_norm_stats.weights.h5", "tfk_norm_stats_weights.h5"])
def test_weights_only_statistics_are_not_trainable(file):
    """Review 44, 6: a weights file records no trainable flags, but Keras'
    names for BatchNormalization and Normalization layers (and tf-keras'
    weight names) say which tensors are statistics: Keras' trainable count."""
    entry = _entry(file)
    model = read_model(KERAS_FIXTURES / file)
    assert (model.total_params, model.trainable_params) == (entry["count_params"], entry["trainable_params"])


def test_seed_layer_counts_1220_and_reads_l2():
    model = read_model(KERAS_FIXTURES / "conv2d_seed_l2.keras")
    conv = next(layer for layer in model.layers if layer.class_name == "Conv2D")
    assert conv.params == 20 * (2 * 3 * 10 + 1) == 1220
    kernel = next(v for v in conv.variables if v.role is Role.KERNEL)
    assert kernel.shape == (2, 3, 10, 20)
    assert kernel.regularizer.kind == "l2" and kernel.regularizer.l2 == 0.01


def test_optimizer_and_schedule_are_read():
    for entry in READABLE:
        opt = entry.get("optimizer")
        if not opt:
            continue
        model = read_model(KERAS_FIXTURES / entry["file"])
        assert model.optimizer is not None, entry["file"]
        cfg = opt.get("config", opt)
        wd = cfg.get("weight_decay")
        if isinstance(wd, (int, float)):
            assert math.isclose(model.optimizer.weight_decay, wd, rel_tol=1e-6), entry["file"]
        lr = cfg.get("learning_rate")
        if isinstance(lr, (int, float)):
            assert math.isclose(model.optimizer.learning_rate.initial, lr, rel_tol=1e-6), entry["file"]
        elif isinstance(lr, dict):
            assert model.optimizer.learning_rate.schedule == lr["class_name"], entry["file"]
        if entry.get("iterations"):
            assert model.optimizer.iterations == entry["iterations"], entry["file"]


def test_weight_statistics_are_streamed_in_chunks():
    from reglint.readers import ReadOptions

    path = KERAS_FIXTURES / "scenario_penalty_dominates.keras"
    whole = read_model(path)
    tiny = read_model(path, ReadOptions(chunk_bytes=1024))
    for (_, a), (_, b) in zip(whole.variables(), tiny.variables(), strict=True):
        assert a.stats.count == b.stats.count == a.size
        assert math.isclose(a.stats.sum_sq, b.stats.sum_sq, rel_tol=1e-9)


def test_savedmodel_read_without_tensorflow():
    entry = next(e for e in keras_manifest() if e["format"] == "savedmodel")
    model = read_model(KERAS_FIXTURES / entry["file"])
    assert model.format == "savedmodel"
    assert (model.total_params, model.trainable_params) == (entry["count_params"], entry["trainable_params"])
    kernels = [v for _, v in model.variables() if v.role is Role.KERNEL]
    assert kernels and all(v.regularizer is not None and math.isclose(v.regularizer.l2, 0.001) for v in kernels)
    assert all(v.stats is not None and v.stats.count == v.size for v in kernels)
    assert model.optimizer is not None and model.optimizer.iterations == entry.get("generator_iterations", 2)
    # pre-commit passes the files inside the folder: any of them reads the whole SavedModel
    assert read_model(KERAS_FIXTURES / entry["file"] / "saved_model.pb").total_params == entry["count_params"]


# Fixtures whose config does not fix every shape, with the reason.
CONFIG_COUNT_EXCEPTIONS = {
    "custom_layer.keras": "acme>ScaledDense is a custom class: its variables are known only from the file",
    "quantized_int8.keras": "a quantized layer's variables depend on its mode: counted as stored",
    "tfk_savedmodel_subclassed": "a subclassed model's config has no layers: its variables are known only "
                                 "from the checkpoint",
}


@pytest.mark.parametrize("entry", READABLE + [e for e in keras_manifest() if e["format"] == "savedmodel"],
                         ids=lambda e: e["file"])
def test_config_derived_counts_equal_the_stored_ones(entry):
    """Every layer's variables as its config implies them (keras_shapes)
    have the stored shapes: no RL019 problem, and the same total."""
    from reglint.model import ProblemKind

    model = read_model(KERAS_FIXTURES / entry["file"])
    rl019 = (ProblemKind.WEIGHTS_MISMATCH, ProblemKind.MISSING_WEIGHTS, ProblemKind.EXTRA_WEIGHTS,
             ProblemKind.UNREADABLE)
    assert not [p for p in model.problems if p.kind in rl019], model.problems[:3]
    config = model.metadata["config_params"]
    if entry["file"] in CONFIG_COUNT_EXCEPTIONS:
        assert config["unknown"] and config["total"] is None
        assert any("counted as stored" in note for note in model.notes)
        return
    assert config["unknown"] == {}
    assert (config["total"], config["trainable"]) == (entry["count_params"], entry["trainable_params"])


def test_metrics_passed_as_loss_weights_read_as_weight_one():
    """compile(opt, loss, ["accuracy"]) saves ``loss_weights: ["accuracy"]``:
    the data loss keeps its weight and its chance-level scale (ln 2)."""
    from reglint.engine.analysis import Analysis

    model = read_model(str(KERAS_FIXTURES / "loss_weights_by_position.keras"))
    assert [loss.weight for loss in model.losses] == [1.0]
    assert Analysis(model).loss_scale.value == pytest.approx(math.log(2))


def test_zero_loss_weights_fall_back_to_the_default_scale():
    """loss_weights=[0.0] leaves no data loss: the scale falls back to 1 and
    says why instead of dividing by zero."""
    from reglint.engine.analysis import Analysis

    scale = Analysis(read_model(str(KERAS_FIXTURES / "loss_weights_zero.keras"))).loss_scale
    assert scale.value == 1.0
    assert "loss_weights sum to 0" in scale.explanation



def test_a_cross_entropy_over_unknown_classes_asks_for_the_class_count():
    """A subclassed model's file gives no output width: its sparse
    cross-entropy is a known loss whose class count is missing, not an
    unknown loss; --classes resolves it."""
    from reglint.estimate.loss_scale import model_loss_scale
    from reglint.model import Loss, Model

    model = Model(path="m.keras", format="keras_v3", losses=[Loss("sparse_categorical_crossentropy")])
    scale = model_loss_scale(model)
    assert scale.value == 1.0 and "unknown number of classes" in scale.explanation
    assert "--classes" in scale.explanation and "unknown loss" not in scale.explanation
    assert model_loss_scale(model, classes=10).value == pytest.approx(math.log(10))

# ---------------------------------------------------------------------------
# files bench/robustness_sweep.py found read wrong (fixtures/sweep_fixtures.py,
# fixtures/make_tf_keras_fixtures.py); their counts and penalties are also
# checked against Keras by the tests above and test_penalty_estimates.py


def _entry(file):
    return next(e for e in keras_manifest() if e["file"] == file)


def _var(model, layer_path, name):
    layer = next(layer for layer in model.layers if layer.path == layer_path)
    return next(v for v in layer.variables if v.name == name)


def test_layer_names_holding_a_slash_find_their_hdf5_group():
    """tf.keras applications name layers 'Conv/BatchNorm': HDF5 stores their
    weights under nested groups, which belong to that one layer."""
    model = read_model(KERAS_FIXTURES / "tfk_slash_names.h5")
    assert not model.problems
    gamma = _var(model, "Conv/BatchNorm", "gamma")
    assert gamma.regularizer.l2 == pytest.approx(0.01) and gamma.stats is not None
    assert _var(model, "Logits/dense", "kernel").stats is not None


def test_export_counts_no_rng_state():
    """model.export() saves a Dropout's seed_generator_state (2 integers):
    Keras' count_params() leaves it out, and so does reglint."""
    model = read_model(KERAS_FIXTURES / "export_dropout")
    assert model.total_params == _entry("export_dropout")["count_params"] == 8
    assert not any("seed" in layer.path for layer in model.layers)


def test_savedmodel_nested_model_weights_found_through_the_object_graph():
    """A checkpoint keys a nested model's weights through the root's
    variables list (variables/0): saved_model.pb's object graph says which
    layer holds them, so their values are read, not taken from the config."""
    model = read_model(KERAS_FIXTURES / "tfk_savedmodel_nested")
    kernel = _var(model, "inner/dense", "kernel")
    assert kernel.stats is not None and kernel.regularizer.l2 == pytest.approx(0.01)
    assert not any("counted from the config" in note for note in model.notes)
    penalty = kernel.regularizer.l2 * kernel.stats.sum_sq
    assert penalty == pytest.approx(_entry("tfk_savedmodel_nested")["weight_penalty"], rel=1e-5)


def test_savedmodel_recurrent_wrappers_keep_their_regularizers():
    """Review 44, 1-2: a tf-keras SavedModel keys a Bidirectional's and a
    stacked RNN's tensors as ``variables/N``. The object-graph walk stopped
    at the first level (``variables/3``), so their regularizers were lost
    (no penalty, no finding, exit 0); and tensors taken in text order
    (``variables/10`` before ``variables/5``) were matched to the wrong
    variables (six false RL019 errors). Every regularizer Keras lists is
    read, and the penalty at the saved weights is Keras' ``sum(model.losses)``."""
    entry = _entry("tfk_savedmodel_rnns")
    model = read_model(KERAS_FIXTURES / "tfk_savedmodel_rnns")
    assert not model.problems
    import re

    regularized = [(layer.path, re.sub(r"_\d+/", "/", var.name))  # forward_lstm_1/kernel: Keras' unique names
                   for layer in model.layers for var in layer.variables if var.regularizer]
    assert sorted(regularized) == sorted([
        ("bi_lstm", f"{d}_lstm/{n}") for d in ("forward", "backward") for n in ("kernel", "recurrent_kernel", "bias")
    ] + [("bi_custom", "forward_lstm/kernel"), ("bi_custom", "backward_gru/kernel"),
         ("stacked", "simple_rnn_cell/kernel"), ("stacked", "lstm_cell/bias"),
         ("stacked", "gru_cell/recurrent_kernel")])
    penalty = sum(var.regularizer.l2 * var.stats.sum_sq + var.regularizer.l1 * var.stats.sum_abs
                  for layer in model.layers for var in layer.variables if var.regularizer)
    assert penalty == pytest.approx(entry["weight_penalty"], rel=1e-4)


def test_savedmodel_of_a_subclassed_model_counts_its_variables():
    model = read_model(KERAS_FIXTURES / "tfk_savedmodel_subclassed")
    assert model.total_params == _entry("tfk_savedmodel_subclassed")["count_params"] == 10
    assert sorted(v.role.value for _, v in model.variables()) == ["bias", "kernel"]


def test_bidirectional_backward_layer_keeps_its_own_regularizer():
    """A backward_layer given by the user keeps its name (gru_1) in Keras 3's
    HDF5 weight names: it is the backward copy, with its own L1."""
    model = read_model(KERAS_FIXTURES / "k3_legacy_bidirectional_backward.h5")
    layer = next(layer for layer in model.layers if layer.class_name == "Bidirectional")
    kernels = {v.name: v.regularizer for v in layer.variables if v.role is Role.KERNEL}
    assert {name: (reg.kind, reg.l1 or reg.l2) for name, reg in kernels.items()} == {
        "forward_gru/kernel": ("l2", pytest.approx(0.01)), "backward_gru_1/kernel": ("l1", pytest.approx(0.01))}


@pytest.mark.parametrize("file", ["stacked_rnn_cells.keras", "k3_legacy_stacked_rnn_cells.h5"])
def test_stacked_rnn_cells_read_each_cells_regularizers(file):
    model = read_model(KERAS_FIXTURES / file)
    assert not model.problems
    regularized = {v.name: v.regularizer.l2 for _, v in model.variables() if v.regularizer is not None}
    assert regularized == {"lstm_cell/kernel": pytest.approx(0.01), "gru_cell/recurrent_kernel": pytest.approx(0.01)}


@pytest.mark.parametrize("file", ["dense_lora.keras", "k3_legacy_dense_lora.h5"])
def test_lora_kernel_is_frozen_and_its_factors_train_under_the_regularizer(file):
    """enable_lora(2): Keras freezes the kernel and trains the two factors,
    which carry the kernel's regularizer. A .keras file stores the kernel
    with the factors merged in; Keras loads them as zeros."""
    model = read_model(KERAS_FIXTURES / file)
    entry = _entry(file)
    counts = (model.total_params, model.trainable_params)
    assert counts == (entry["count_params"], entry["trainable_params"]) == (72, 42)
    assert not _var(model, "adapted", "kernel").trainable
    for factor in ("lora_kernel_a", "lora_kernel_b"):
        var = _var(model, "adapted", factor)
        assert var.trainable and var.regularizer.l2 == pytest.approx(0.01)
    assert any("LoRA" in note for note in model.notes) == file.endswith(".keras")


def test_unzipped_keras_folder_is_one_model_with_its_weights():
    """model.save(folder, zipped=False) writes the archive's members as
    files: reglint reads the folder as the .keras it stands for (saved
    weights and all), whether named itself or through one of its files."""
    from reglint.engine.discover import discover
    from reglint.engine.settings import Settings

    folder = KERAS_FIXTURES / "keras_folder"
    model = read_model(folder)
    assert model.format == "keras_v3" and model.total_params == _entry("keras_folder")["count_params"]
    assert all(v.stats is not None for _, v in model.variables())
    for name in ("config.json", "model.weights.h5"):
        assert discover([str(folder / name)], Settings())[0] == [str(folder)]
    found, _, _ = discover([str(KERAS_FIXTURES)], Settings())
    assert str(folder) in found and not [f for f in found if f.startswith(str(folder) + "/")]


def test_tf_op_lambda_layers_carry_the_shape_through_hard_swish():
    """tf.keras writes ``x + 3.0``, ``relu6``, ``* (1/6)`` and ``x * gate`` as
    TFOpLambda layers (MobileNetV3's hard-swish; each call one flat
    ``[name, node, tensor, kwargs]`` entry): the Conv2D after them gets its
    input depth from the graph, not from the stored tensor (tf.keras
    MobileNetV3Small gave 86 'not inferable' notes)."""
    model = read_model(KERAS_FIXTURES / "tfk_tf_op_hard_swish.h5")
    assert not [note for note in model.notes if "not inferable" in note]
    assert model.total_params == _entry("tfk_tf_op_hard_swish.h5")["count_params"] == 270
    assert _var(model, "project", "kernel").shape == (1, 1, 8, 4)
    gate = next(layer for layer in model.layers if layer.class_name == "TFOpLambda" and len(layer.inbound) == 2)
    assert "stem" in gate.inbound  # x * gate: the tensor operand in the call's kwargs is an input too


def test_bfloat16_weights_are_read_as_keras_loads_them():
    """Keras 3 writes a bfloat16 variable as 2-byte opaque HDF5 data tagged
    dtype='bfloat16'; its values are the bit patterns' upper halves of
    float32: the sums of squares equal those of the weights Keras loads."""
    model = read_model(KERAS_FIXTURES / "dense_bfloat16.keras")
    assert not model.problems
    for path, expected in _entry("dense_bfloat16.keras")["kernel_stats"].items():
        kernel = _var(model, path.rsplit("/", 1)[0], "kernel")
        assert kernel.stats.sum_sq == pytest.approx(expected["sum_sq"], rel=1e-9)
        assert kernel.stats.max_abs == pytest.approx(expected["max_abs"], rel=1e-9)
        assert kernel.regularizer.l2 == pytest.approx(0.01)


def test_mixed_precision_steps_are_the_inner_optimizers():
    """Under mixed_float16, compile wraps the optimizer in a LossScaleOptimizer
    whose own counter stays 0 (Keras' loaded model reports 0 too): the steps
    trained are the inner optimizer's, which the generator counted."""
    entry = next(e for e in keras_manifest() if e["file"] == "mixed_float16_trained.keras")
    model = read_model(KERAS_FIXTURES / entry["file"])
    assert entry["generator_iterations"] == 3 and entry["iterations"] == 0
    assert model.optimizer is not None and model.optimizer.iterations == 3


def test_savedmodel_without_its_data_shard_is_refused(tmp_path):
    """Review 44, 3: a SavedModel folder copied without
    ``variables.data-*`` was linted as complete (exit 1, P@saved silently
    empty); TensorFlow cannot load it. One line, exit 2."""
    import shutil

    from helpers import assert_one_line_refusal, run_reglint

    folder = tmp_path / "sm"
    shutil.copytree(KERAS_FIXTURES / "tfk_savedmodel_mlp", folder)
    for shard in (folder / "variables").glob("variables.data-*"):
        shard.unlink()
    assert_one_line_refusal(run_reglint(folder), "variables.data-* shard", "not saved or not copied")
