"""Keras layers that stand for a regularizer or hold another layer, on files
Keras 3 and tf-keras wrote (fixtures/make_keras_wrapper_fixtures.py;
fixtures/keras_wrappers/manifest.json holds what each Keras reported of the
file it loaded back):

- ``ActivityRegularization(l1, l2)`` saves its factors, not an
  ``activity_regularizer``: it is read as the L1L2 activity penalty Keras
  adds on its output; one with both factors 0 regularizes nothing.
- ``SpectralNormalization`` is a built-in wrapper: its wrapped layer's
  weights and regularizers are its own, ``vector_u`` does not train, and the
  kernel a ``.keras`` file stores twice is one weight (two copies of
  different shapes: Keras refuses the file, ValueError "The shape of the
  target variable ... must match", checked on Keras 3.15.1).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.estimate.penalty import l1l2_value, tensor_penalty
from reglint.model import ProblemKind, Role
from reglint.readers import read_model

from helpers import FIXTURES
from mutate import rewrite_keras_zip

HERE = FIXTURES / "keras_wrappers"
MANIFEST = json.loads((HERE / "manifest.json").read_text())["files"]
ACTREG = sorted(name for name in MANIFEST if name.startswith("actreg_"))
SPECTRAL = sorted(name for name in MANIFEST if name.startswith("spectral"))
WEIGHT_PROBLEMS = (ProblemKind.WEIGHTS_MISMATCH, ProblemKind.MISSING_WEIGHTS, ProblemKind.EXTRA_WEIGHTS)


def test_every_writer_and_format_is_covered():
    assert ACTREG == ["actreg_keras3.h5", "actreg_keras3.keras", "actreg_tf_keras.h5", "actreg_tf_keras.keras"]
    assert {MANIFEST[name]["writer"] for name in SPECTRAL} == {"keras3", "tf_keras"}
    assert {name.rsplit(".", 1)[1] for name in SPECTRAL} == {"keras", "h5"}


# -- ActivityRegularization ------------------------------------------------------------


@pytest.mark.parametrize("name", ACTREG)
def test_activity_regularization_layer_is_its_l1_l2_activity_penalty(name):
    entry = MANIFEST[name]
    model = read_model(HERE / name)
    reg = model.layer("actreg").activity_regularizer
    assert reg is not None and model.has_regularization
    keras_factors = entry["layers"]["actreg"]["activity"]
    assert (reg.l1, reg.l2) == pytest.approx((keras_factors["l1"], keras_factors["l2"]))
    # Keras' own penalty on one batch is this regularizer applied to the layer's output, per sample.
    sums = entry["activity_outputs"]
    assert entry["activity_penalty"] == pytest.approx(140, rel=0.1)
    assert l1l2_value(reg, sums["sum_sq"], sums["sum_abs"]) == pytest.approx(entry["activity_penalty"], rel=1e-5)


@pytest.mark.parametrize("name", ACTREG)
def test_activity_regularization_with_both_factors_zero_regularizes_nothing(name):
    assert MANIFEST[name]["layers"]["noop"]["activity"] == {"l1": 0.0, "l2": 0.0}
    assert read_model(HERE / name).layer("noop").activity_regularizer is None


@pytest.mark.parametrize("name", ACTREG)
def test_activity_regularization_counts_stay_keras_own(name):
    entry = MANIFEST[name]
    model = read_model(HERE / name)
    assert (model.total_params, model.trainable_params) == (entry["count_params"], entry["trainable_params"])
    assert model.layer("actreg").variables == [] and not model.layer("actreg").custom


# -- SpectralNormalization ---------------------------------------------------------------


@pytest.mark.parametrize("name", SPECTRAL)
def test_spectral_normalization_counts_equal_keras(name):
    entry = MANIFEST[name]
    model = read_model(HERE / name)
    assert (model.total_params, model.trainable_params, model.non_trainable_params) == (
        entry["count_params"], entry["trainable_params"], entry["non_trainable_params"])
    assert model.metadata["config_params"]["total"] == entry["count_params"]
    assert not model.problems_of(*WEIGHT_PROBLEMS)
    for path, keras_layer in entry["layers"].items():
        layer = model.layer(path)
        assert (layer.trainable_params, layer.non_trainable_params) == (
            keras_layer["trainable_params"], keras_layer["non_trainable_params"]), path


@pytest.mark.parametrize("name", SPECTRAL)
def test_spectral_normalization_owns_its_wrapped_layers_weights_once(name):
    model = read_model(HERE / name)
    for path, keras_layer in MANIFEST[name]["layers"].items():
        if keras_layer["class"] != "SpectralNormalization":
            continue
        layer = model.layer(path)
        assert not layer.custom
        assert keras_layer["non_trainable"] == ["vector_u"]
        assert [v.name for v in layer.variables if not v.trainable] == ["vector_u"]
        # the .keras file's second copy of the kernel (the wrapper's vars/0) is not a weight
        locations = [v.location for v in layer.variables]
        assert len(set(locations)) == len(locations)
        assert not any(loc.endswith(("spectral_normalization/vars/0", "spectral_normalization_1/vars/0"))
                       for loc in locations)
        wrapped_role = Role.EMBEDDINGS if keras_layer["wrapped"] == "Embedding" else Role.KERNEL
        assert sum(v.role is wrapped_role for v in layer.variables) == 1


@pytest.mark.parametrize("name", SPECTRAL)
def test_spectral_normalization_penalty_at_the_saved_weights_is_keras(name):
    entry = MANIFEST[name]
    model = read_model(HERE / name)
    penalty = sum(tensor_penalty(layer, var).penalty_saved for layer in model.layers
                  for var in layer.regularized_variables())
    assert entry["weight_penalty"] > 0.2
    assert penalty == pytest.approx(entry["weight_penalty"], rel=1e-5)


@pytest.mark.parametrize("name", [n for n in SPECTRAL if "activity_outputs" in MANIFEST[n]])
def test_spectral_normalization_applies_its_wrapped_layers_activity_regularizer(name):
    entry = MANIFEST[name]
    layer = read_model(HERE / name).layer("sn")
    reg = layer.activity_regularizer
    assert reg is not None and reg.l2 == pytest.approx(entry["layers"]["sn"]["activity"]["l2"])
    sums = entry["activity_outputs"]
    assert l1l2_value(reg, sums["sum_sq"], sums["sum_abs"]) == pytest.approx(entry["activity_penalty"], rel=1e-5)
    assert layer.units == 8  # the wrapped Dense's width: the wrapper's output


@pytest.mark.parametrize("name", SPECTRAL)
def test_spectral_normalization_is_not_called_custom(name):
    report = lint_file(str(HERE / name), Settings())
    assert report.error is None
    said = " ".join(report.model.notes)
    assert "not a built-in Keras layer" not in said and "custom layer" not in said
    assert not [f for f in report.findings if f.code in ("RL014", "RL019")]


def test_spectral_normalization_kernel_copies_of_different_shapes_block_the_load(tmp_path):
    def narrow_the_wrappers_copy(h5):
        group = h5["layers/spectral_normalization/vars"]
        del group["0"]
        group.create_dataset("0", data=np.zeros((10, 7), "float32"))

    broken = rewrite_keras_zip(HERE / "spectral_keras3.keras", tmp_path / "copy_10x7.keras",
                               weights=narrow_the_wrappers_copy)
    model = read_model(broken)
    [problem] = model.problems_of(*WEIGHT_PROBLEMS)
    assert problem.layer == "sn" and problem.blocks_load
    assert "[10, 7]" in problem.message and "[10, 8]" in problem.message
    assert model.total_params == MANIFEST["spectral_keras3.keras"]["count_params"]


@pytest.mark.parametrize("name", ACTREG)
def test_rl010_judges_the_activity_regularization_layer_by_the_output_it_penalizes(name):
    """The layer has no kernel: its penalty is estimated on the output of
    the layer feeding it (64 ReLU units here), and lands near what Keras
    itself added on a batch of the generator's data (148 per sample)."""
    findings = [f for f in lint_file(str(HERE / name), Settings()).findings if f.code == "RL010"]
    assert [(f.severity.value, f.layer) for f in findings] == [("error", "actreg")]
    values = findings[0].values
    assert values["output_elements"] == 64
    assert values["penalty_per_sample"] == pytest.approx(MANIFEST[name]["activity_penalty"], rel=0.1)
