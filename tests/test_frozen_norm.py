"""A frozen BatchNormalization is a fixed affine map in Keras 3 (review 30,
D1): it normalises with its moving statistics during training too, so a
kernel feeding it is not scale-invariant, and RL001, RL009, RL021 and RL024
must judge it as the kernel of a network without the normalization. A
frozen LayerNormalization still normalises each input. Keras' own answer,
the output's change when fc1 is scaled by 0.1 in training mode, is in
``fixtures/frozen_norm/manifest.json`` (``make_frozen_norm_fixtures.py``)."""

from __future__ import annotations

import json

import pytest

from reglint.engine.analysis import TrainingContext
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.model.versions import frozen_batch_norm_is_fixed
from reglint.readers import read_model

from helpers import FIXTURES

HERE = FIXTURES / "frozen_norm"
MANIFEST = json.loads((HERE / "manifest.json").read_text())["files"]


def report(name: str):
    found = lint_file(str(HERE / name), Settings(context=TrainingContext()))
    assert found.error is None, found.error
    return found


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_scale_invariance_is_what_keras_measures(name):
    invariant_in_keras = MANIFEST[name]["fc1_scaled_output_change"] < 0.1  # 0.0005-0.03 against 0.9
    penalties = {p.layer.path: p for p in report(name).analysis.penalties}
    assert penalties["fc1"].scale_invariant is invariant_in_keras


def test_a_frozen_batch_norm_network_is_judged_as_one_without_it():
    """Before: RL021 said the kernels settle at an equilibrium angle and RL001
    counted none of the penalty; Keras trains the frozen network as it trains
    the one without normalizations (the manifest's 0.9 in both)."""
    assert MANIFEST["bn_frozen.keras"]["fc1_scaled_output_change"] == pytest.approx(
        MANIFEST["no_norm.keras"]["fc1_scaled_output_change"], rel=1e-3)

    def verdicts(name):
        return sorted((f.code, f.severity.value, f.layer) for f in report(name).findings)

    assert verdicts("bn_frozen.keras") == verdicts("no_norm.keras")
    assert {code for code, _, _ in verdicts("bn_frozen.keras")} >= {"RL001", "RL024"}
    assert "RL021" in {code for code, _, _ in verdicts("bn_trainable.keras")}
    frozen = {layer.path: layer for layer in read_model(HERE / "bn_frozen.keras").layers}
    assert frozen["norm1"].fixed_statistics and not frozen["norm1"].trainable
    assert not any(layer.fixed_statistics for layer in read_model(HERE / "ln_frozen.keras").layers)


@pytest.mark.parametrize(("framework", "version", "fixed"), [
    ("keras", "3.15.1", True), ("tf.keras", "2.11.0", True), ("keras", "2.4.0", True), ("tf.keras", "2.3.0-tf", True),
    # multi-backend Keras and TF 1's tf.keras normalised a frozen BatchNormalization with the batch's statistics
    ("keras", "2.3.1", False), ("keras", "2.1.6", False), ("tf.keras", "2.1.6-tf", False), ("keras", "1.2.2", False),
])
def test_which_keras_freezes_batch_statistics(framework, version, fixed):
    assert frozen_batch_norm_is_fixed(framework, version) is fixed


def _rl005_layers(name: str, steps: int | None = None) -> set[str]:
    context = TrainingContext(steps=steps) if steps else TrainingContext()
    found = lint_file(str(HERE / name), Settings(context=context))
    return {f.layer for f in found.findings if f.code == "RL005"}


def test_a_scale_invariant_kernel_is_not_weak_by_its_share_of_the_loss():
    """Review 34, D4: RL005 told the user to remove an L2 on kernels Keras'
    own output says are scale-invariant (fc1 scaled by 0.1 moves the output
    by 3%) because the penalty is a tiny share of the loss, beside RL009
    saying it sets the effective learning rate. Its share says nothing of
    such a kernel; only the shrink over a known run does. The same L2
    without the normalization stays a weak penalty."""
    assert MANIFEST["bn_trainable_weak.keras"]["fc1_scaled_output_change"] < 0.1
    assert MANIFEST["no_norm_weak.keras"]["fc1_scaled_output_change"] > 0.5
    assert _rl005_layers("bn_trainable_weak.keras") == set()
    assert _rl005_layers("no_norm_weak.keras") == {"fc1", "fc2"}
    assert _rl005_layers("bn_trainable_weak.keras", steps=10_000) == {"fc1", "fc2"}  # D = 2e-4 over the run
