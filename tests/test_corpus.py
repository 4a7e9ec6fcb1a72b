"""The readers over the shared corpus of 671 real files written by Keras 1.1
to 2.11 and tf.keras (../shared/corpus/keras-dl4j). Ground truth per file is
in tests/data/corpus_truth.json, made by tests/data/make_corpus_truth.py with
tf-keras: count_params and the trainable split where tf-keras loads the
file, the stored weight elements otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings

from helpers import CORPUS

TRUTH = json.loads((Path(__file__).parent / "data" / "corpus_truth.json").read_text())

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS}")


@pytest.fixture(scope="module")
def reports():
    return {name: lint_file(str(CORPUS / name), Settings()) for name in sorted(TRUTH)}


def test_every_file_gives_a_report(reports):
    """All 671 files read (the 76 weights-only ones included): no exit 2."""
    errors = {name: report.error for name, report in reports.items() if report.error}
    assert not errors, list(errors.items())[:5]
    assert all(report.model is not None for report in reports.values())


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


def test_weights_only_files_count_their_tensors_and_pass(reports):
    """save_weights files hold no architecture: their stored tensors are
    counted, a note says there is nothing else to lint, and the file passes
    (exit 0), so a repository's pre-commit hook does not fail on them."""
    checked = 0
    for name, truth in TRUTH.items():
        if truth["has_model_config"]:
            continue
        report = reports[name]
        assert report.error is None, (name, report.error)
        assert report.model.total_params == truth["stored_weight_elements"], name
        assert any("weights-only" in note for note in report.model.notes), name
        assert report.findings == [], name
        checked += 1
    assert checked == 76


# Files whose config does not fix every shape, with the reason. Nothing else
# may appear here: every other file's config-derived count is exact.
CONFIG_COUNT_EXCEPTIONS = {
    "modelimport__keras__examples__lambda__model_lambda.h5":
        "a Lambda without output_shape feeds dense_4: its input width is known only by running the function",
    "modelimport__keras__examples__lambda__sequential_lambda.h5":
        "a Lambda without output_shape feeds dense_2: its input width is known only by running the function",
}


def test_config_derived_counts_equal_the_stored_ones(reports):
    """Every layer's variables derived from the config (Keras 1/2 input
    shapes carried through the graph) have the stored shapes: no RL019
    problem, and the config's total is the file's."""
    unknown, wrong = {}, []
    for name, truth in TRUTH.items():
        if not truth["has_model_config"]:
            continue
        model = reports[name].model
        assert not model.problems, (name, model.problems[:3])
        config = model.metadata["config_params"]
        if config["unknown"]:
            unknown[name] = config["unknown"]
        elif config["total"] != model.total_params or config["total"] != truth["stored_weight_elements"]:
            wrong.append((name, config, model.total_params))
    assert not wrong, wrong[:5]
    assert set(unknown) == set(CONFIG_COUNT_EXCEPTIONS), unknown


def test_model_config_as_json_architecture_gives_tf_keras_count(tmp_path):
    """Each file's model_config attribute is what Keras 1/2's model.to_json()
    writes: read as an architecture-only JSON file, it gives tf-keras' own
    count_params and trainable split (stored elements where tf-keras cannot
    load the file)."""
    import h5py

    from reglint.readers import read_model

    checked = 0
    for name, truth in TRUTH.items():
        if not truth["has_model_config"] or name in CONFIG_COUNT_EXCEPTIONS:
            continue
        with h5py.File(CORPUS / name, "r") as h5:
            raw = h5.attrs["model_config"]
        path = tmp_path / f"{name}.json"
        path.write_bytes(raw if isinstance(raw, bytes) else raw.encode())
        model = read_model(path)
        assert model.format == "keras_json" and not model.problems, name
        if truth["count_params"] is not None:
            want = (truth["count_params"], truth["trainable_params"], truth["non_trainable_params"])
            assert (model.total_params, model.trainable_params, model.non_trainable_params) == want, name
        else:
            assert model.total_params == truth["stored_weight_elements"], name
        checked += 1
    assert checked == 593
