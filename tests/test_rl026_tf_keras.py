"""RL026 on files tf-keras wrote: tf-keras pairs ``loss_weights`` with the
*outputs* (a dict by output name, a list zipped by position), not with the
losses as Keras 3 does. Each fixture's manifest entry records what tf-keras'
own evaluate and fit made of it (fixtures/make_rule_fixtures.py)."""

from __future__ import annotations

import json
import math
import shutil

import h5py
import pytest

from reglint.engine.analysis import Analysis
from reglint.engine.finding import Severity
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.model import ProblemKind
from reglint.readers import read_model

from helpers import RULE_FIXTURES
from mutate import rewrite_keras_zip


def rl026(path):
    report = lint_file(str(path), Settings())
    assert report.error is None, report.error
    return [f for f in report.findings if f.code == "RL026"]


@pytest.fixture(scope="module")
def tf_keras_says() -> dict[str, dict]:
    entries = json.loads((RULE_FIXTURES / "manifest.json").read_text())["files"]
    return {entry["file"]: entry for entry in entries}


def with_loss_weights(src, dst, weights):
    """``src`` (a tf-keras .h5) with its saved loss_weights replaced."""
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as h5:
        raw = h5.attrs["training_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        config["loss_weights"] = weights
        h5.attrs["training_config"] = json.dumps(config)
    return dst


def weights_by_output(path):
    return {loss.output: loss.weight for loss in read_model(str(path)).losses}


# -- a dict key naming no output: tf-keras' fit raises ------------------------------------------------------


@pytest.mark.parametrize(("file", "unknown"), [("tfk_loss_weights_unknown_name.h5", "nope"),
                                               ("tfk_loss_weights_extra_name.keras", "extra")])
def test_a_weight_naming_no_output_is_an_error_as_tf_keras_fit_raises(tf_keras_says, file, unknown):
    assert "Found unexpected losses or metrics that do not correspond to any Model output" in tf_keras_says[file]["fit"]
    [finding] = rl026(RULE_FIXTURES / file)
    assert finding.severity is Severity.ERROR
    assert f"name {unknown}, which is no output" in finding.message and "tf-keras' fit fails" in finding.message


def test_the_right_names_beside_an_unknown_one_keep_their_weights():
    assert weights_by_output(RULE_FIXTURES / "tfk_loss_weights_extra_name.keras") == {"main": 1.0, "aux": 0.5}


def test_profile_refuses_a_weight_naming_no_output_in_one_line(capsys):
    from reglint.cli.app import main

    assert main(["profile", str(RULE_FIXTURES / "tfk_loss_weights_unknown_name.h5"), "--steps", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no output of the model" in err[0] and "RL026" in err[0]


# -- a list shorter than the outputs: tf-keras gives the outputs past its end no loss ----------------------


def test_a_short_list_leaves_the_unweighted_output_without_a_loss(tf_keras_says):
    file = "tfk_loss_weights_short_list.h5"
    said = tf_keras_says[file]
    assert said["fit"] == "trains" and said["evaluate"]["aux_loss"] == 0.0
    assert said["head_moved"] == {"main": True, "aux": False}  # the aux head trained by nothing
    assert math.isclose(said["evaluate"]["loss"], said["evaluate"]["main_loss"])
    [finding] = rl026(RULE_FIXTURES / file)
    assert finding.severity is Severity.ERROR and finding.message.startswith("aux gets no loss")
    assert finding.values["outputs_without_loss"] == ["aux"]
    assert [(c.layer, c.current, c.suggested) for c in finding.fix.changes] == [("aux", 0.0, 1.0)]


def test_the_loss_scale_counts_only_the_outputs_that_get_a_loss():
    """tf-keras' loss is main's alone (the manifest): the data-loss scale is one MSE's, 1, not 2."""
    model = read_model(str(RULE_FIXTURES / "tfk_loss_weights_short_list.h5"))
    assert {loss.output: loss.weight for loss in model.losses} == {"main": 1.0, "aux": 0.0}
    assert Analysis(model).loss_scale.value == pytest.approx(1.0)
    assert [p.layer for p in model.problems_of(ProblemKind.DROPPED_LOSS)] == ["aux"]


def test_a_short_list_of_zeros_weighs_every_output_out(tf_keras_says, tmp_path):
    """[0.0] on two outputs: main weighted 0, aux dropped: tf-keras' loss is 0 and nothing moves."""
    said = tf_keras_says["tfk_loss_weights_short_list.h5"]["same_model_with"]["[0.0]"]
    assert said["evaluate"]["loss"] == 0.0 and not any(said["head_moved"].values())
    path = with_loss_weights(RULE_FIXTURES / "tfk_loss_weights_short_list.h5", tmp_path / "zero.h5", [0.0])
    messages = [f.message for f in rl026(path)]
    assert len(messages) == 2 and messages[0].startswith("aux gets no loss")
    assert messages[1].startswith("every loss weight is 0 (main, aux)")
    assert "sum to 0" in Analysis(read_model(str(path))).loss_scale.explanation


def test_an_empty_list_leaves_no_loss_and_tf_keras_fit_fails(tf_keras_says, tmp_path):
    said = tf_keras_says["tfk_loss_weights_short_list.h5"]["same_model_with"]["[]"]
    assert "No loss found" in said["fit"]
    path = with_loss_weights(RULE_FIXTURES / "tfk_loss_weights_short_list.h5", tmp_path / "empty.h5", [])
    [finding] = rl026(path)  # one finding: the empty list, not also "every weight is 0"
    assert finding.message.startswith("main, aux get no loss") and "fit fails (\"No loss found\")" in finding.message


# -- what tf-keras trains without a word ---------------------------------------------------------------------


def test_a_long_list_is_quiet_and_its_extra_weights_ignored(tf_keras_says):
    said = tf_keras_says["tfk_loss_weights_long_list.h5"]["evaluate"]
    assert math.isclose(said["loss"], said["main_loss"] + 2 * said["aux_loss"], rel_tol=1e-5)
    path = RULE_FIXTURES / "tfk_loss_weights_long_list.h5"
    assert rl026(path) == []
    assert weights_by_output(path) == {"main": 1.0, "aux": 2.0}


def test_a_list_of_weights_pairs_with_the_outputs_not_with_a_dict_of_losses(tf_keras_says):
    """losses {"aux": mae, "main": mse} (aux first), weights [1, 0.5]: tf-keras' loss is main + 0.5 aux."""
    said = tf_keras_says["tfk_loss_weights_dict_loss_list_weights.h5"]["evaluate"]
    assert math.isclose(said["loss"], said["main_loss"] + 0.5 * said["aux_loss"], rel_tol=1e-5)
    path = RULE_FIXTURES / "tfk_loss_weights_dict_loss_list_weights.h5"
    assert weights_by_output(path) == {"aux": 0.5, "main": 1.0}
    assert rl026(path) == []


# -- Keras 3 files keep Keras 3's pairing -------------------------------------------------------------------


def test_a_short_list_in_a_keras3_file_is_keras3s_pairing_error(tmp_path):
    """The same [1.0] on two outputs in a Keras 3 file: its fit raises (one weight for two losses);
    no tf-keras dropped output, and the missing weight read as Keras 3 never trains it."""
    def rewrite(cfg):
        cfg["compile_config"]["loss_weights"] = [1.0]

    path = rewrite_keras_zip(RULE_FIXTURES / "k3_loss_weights_none_entry.keras", tmp_path / "k3.keras",
                             config=rewrite)
    [finding] = rl026(path)
    assert "1 weight for 2 losses" in finding.message and "Keras 3" in finding.message
    assert not read_model(str(path)).problems_of(ProblemKind.DROPPED_LOSS)
