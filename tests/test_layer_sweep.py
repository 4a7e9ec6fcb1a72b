"""The layer sweep's mismatches (review 37): files written by Keras 3 and
tf_keras, with each writer's own counts and ``sum(model.losses)`` at the
saved weights in ``fixtures/layer_sweep/manifest.json``
(``make_layer_sweep_fixtures.py``):

- tf_keras' MultiHeadAttention on a value wider than its query: its
  ``build_config`` records the query's shape alone, and the key/value
  projections were built at the query's width (100 parameters of 120, every
  saved penalty lost);
- tf_keras' TimeDistributed around a frozen layer: the inner layer's weights
  were counted trainable;
- bfloat16 weights stored as untagged 2-byte opaque values (Keras 3's legacy
  ``.h5``, tf_keras): their saved penalty was left blank.
"""

from __future__ import annotations

import json

import pytest

from reglint.engine.analysis import TrainingContext
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings

from helpers import FIXTURES

HERE = FIXTURES / "layer_sweep"
MANIFEST = json.loads((HERE / "manifest.json").read_text())["files"]


WEIGHTS = sorted(name for name, entry in MANIFEST.items() if "weight_penalty" in entry)


@pytest.mark.parametrize("name", WEIGHTS)
def test_counts_and_the_saved_penalty_are_the_writers(name):
    truth = MANIFEST[name]
    found = lint_file(str(HERE / name), Settings(context=TrainingContext()))
    assert found.error is None, found.error
    model = found.model
    trainable = sum(v.size for layer, v in model.variables() if layer.trainable and v.trainable)
    assert (trainable, model.total_params - trainable) == (truth["trainable"], truth["non_trainable"])
    saved = [p.penalty_saved for p in found.analysis.penalties if p.active]
    assert None not in saved
    assert sum(saved) == pytest.approx(truth["weight_penalty"], rel=0.01, abs=1e-9)


def report(name: str):
    found = lint_file(str(HERE / name), Settings(context=TrainingContext()))
    assert found.error is None, found.error
    return found


def test_grouped_query_attention_penalises_its_projections_and_its_output():
    """Review 37, 4: Keras 3 adds GroupQueryAttention's activity penalty
    on each projection and on the attention output (manifest
    ``activity_losses``); reglint counted one, on the output, unnoted."""
    truth = MANIFEST["k3_gqa_activity.keras"]["activity_losses"]
    found = report("k3_gqa_activity.keras")
    (note,) = [n for n in found.model.notes if "GroupedQueryAttention's activity_regularizer" in n]
    assert f"({truth} penalties per call)" in note
    assert len(found.model.layer("gqa").activity_on) == truth


def test_a_backward_layer_without_the_forward_ones_activity_is_not_counted_as_both():
    """Review 37, 5: with an explicit backward_layer of its own, only the
    forward direction is penalised (Keras: one activity loss); reglint
    counted the regularizer over the whole concatenated output."""
    assert MANIFEST["k3_bidirectional_backward.keras"]["activity_losses"] == 1
    found = report("k3_bidirectional_backward.keras")
    assert found.model.layer("bi").activity_regularizer is None
    assert any("explicit backward_layer does not share" in n for n in found.model.notes)


def test_an_activity_regularizer_under_mixed_float16_is_said_to_break_fit():
    """Review 34, D5 (and review 37): Keras 3.15.1's fit raises a TypeError
    (manifest ``fit_error``) on an activity penalty under mixed_float16;
    reglint had passed the file with no word."""
    assert MANIFEST["k3_mixed_activity.keras"]["fit_error"] == "TypeError"
    notes = report("k3_mixed_activity.keras").model.notes
    assert any("under the mixed_float16 policy; Keras 3.15.1's fit raises a TypeError" in n for n in notes)


def test_a_message_listing_some_lambdas_names_the_strongest_and_counts_the_rest():
    """Review 40, 7: RL006 and RL007 listed the first three lambdas sorted as
    text (L2(0.001), L2(0.02), L2(0.05)) and dropped the rest unsaid, the
    strongest among them."""
    lambdas = sorted(MANIFEST["k3_many_lambdas.keras"]["lambdas"], reverse=True)
    report = lint_file(str(HERE / "k3_many_lambdas.keras"), Settings(context=TrainingContext()))
    listed = ", ".join(f"L2({x:g})" for x in lambdas[:3]) + f" and {len(lambdas) - 3} more"
    for code in ("RL006", "RL007"):
        finding = next(f for f in report.findings if f.code == code)
        assert listed in finding.message, (code, finding.message)
