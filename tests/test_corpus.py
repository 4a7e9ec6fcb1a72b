"""The readers over the shared corpus of 671 real files written by Keras 1.1
to 2.11 and tf.keras (../shared/corpus/keras-dl4j). Ground truth per file is
in tests/data/corpus_truth.json, made by tests/data/make_corpus_truth.py with
tf-keras: count_params and the trainable split where tf-keras loads the
file, the stored weight elements otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reglint.config.settings import Settings
from reglint.engine.runner import lint_file

from helpers import CORPUS

TRUTH = json.loads((Path(__file__).parent / "data" / "corpus_truth.json").read_text())

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS}")


@pytest.fixture(scope="module")
def reports():
    return {name: lint_file(str(CORPUS / name), Settings()) for name in sorted(TRUTH)}


def test_every_file_gives_a_report_or_a_one_line_error(reports):
    for name, report in reports.items():
        assert (report.model is not None) != (report.error is not None), name
        if report.error:
            assert "\n" not in report.error and len(report.error) < 400, name


def test_totals_equal_tf_keras_where_it_loads(reports):
    loaded = {n: t for n, t in TRUTH.items() if t["count_params"] is not None}
    assert len(loaded) > 500
    wrong = []
    for name, truth in loaded.items():
        model = reports[name].model
        got = None if model is None else (model.total_params, model.trainable_params, model.non_trainable_params)
        want = (truth["count_params"], truth["trainable_params"], truth["non_trainable_params"])
        if got != want:
            wrong.append((name, got, want))
    assert not wrong, wrong[:10]


def test_unloadable_models_still_count_their_stored_weights(reports):
    """Keras 1 files tf-keras cannot load: reglint reads them; its total is
    the weights the file stores."""
    checked = 0
    for name, truth in TRUTH.items():
        if truth["count_params"] is None and truth["has_model_config"]:
            model = reports[name].model
            assert model is not None, (name, reports[name].error)
            assert model.total_params == truth["stored_weight_elements"], name
            checked += 1
    assert checked > 0


def test_weights_only_files_say_so(reports):
    for name, truth in TRUTH.items():
        if not truth["has_model_config"]:
            assert "weights-only" in (reports[name].error or ""), name
