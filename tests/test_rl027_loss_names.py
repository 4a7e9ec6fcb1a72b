"""RL027 on files Keras 3 and tf-keras wrote: a dict of losses whose keys
name no output. Each fixture's manifest entry records what the writer's own
``fit`` made of the file loaded back (fixtures/make_rule_fixtures.py); the
variants below rewrite one saved compile config and keep everything else
Keras wrote."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from reglint.cli.app import app
from reglint.engine.finding import Severity
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.model import ProblemKind

from helpers import KERAS_FIXTURES, RULE_FIXTURES
from mutate import rewrite_keras_zip


def rl027(path):
    report = lint_file(str(path), Settings())
    assert report.error is None, report.error
    return [f for f in report.findings if f.code == "RL027"]


@pytest.fixture(scope="module")
def framework_says() -> dict[str, dict]:
    entries = json.loads((RULE_FIXTURES / "manifest.json").read_text())["files"]
    return {entry["file"]: entry for entry in entries if entry["rule"] == "RL027"}


def with_loss(src, dst, loss):
    """``src`` (a Keras 3 .keras) with its saved compile loss replaced."""
    def edit(cfg):
        cfg["compile_config"]["loss"] = loss
    return rewrite_keras_zip(src, dst, config=edit)


@pytest.mark.parametrize(("file", "unknown"), [
    ("k3_loss_dict_unknown_output.keras", ["classification", "regression"]),
    ("k3_loss_dict_outputs_extra_key.keras", ["extra"]),
    ("tfk_loss_dict_unknown_output.h5", ["nope"]),
])
def test_a_loss_key_naming_no_output_is_an_error_where_fit_raises(framework_says, file, unknown):
    assert framework_says[file]["fit"] != "trains"  # the framework's own fit raised on this file
    [finding] = rl027(RULE_FIXTURES / file)
    assert finding.severity is Severity.ERROR
    for key in unknown:
        assert repr(key) in finding.message


@pytest.mark.parametrize("file", ["k3_loss_dict_outputs_none_key.keras", "tfk_loss_dict_outputs_extra_key.h5"])
def test_quiet_where_the_framework_trains(framework_says, file):
    assert framework_says[file]["fit"] == "trains"
    assert rl027(RULE_FIXTURES / file) == []


def test_the_message_names_the_outputs_left_without_a_loss():
    [finding] = rl027(RULE_FIXTURES / "k3_loss_dict_unknown_output.keras")
    assert "its outputs: class_out, bbox_out" in finding.message
    assert "no loss is keyed by 'class_out', 'bbox_out'" in finding.message


def test_the_same_file_keyed_by_the_output_layers_is_quiet(tmp_path):
    fixed = with_loss(RULE_FIXTURES / "k3_loss_dict_unknown_output.keras", tmp_path / "fixed.keras",
                      {"class_out": "mse", "bbox_out": "mse"})
    assert rl027(fixed) == []


def test_a_list_output_with_a_none_loss_under_an_unknown_key_still_raises_in_keras_3(tmp_path):
    """Outputs a list: Keras 3 compares the key set (3.15) or every key
    (earlier 3.x) with the output names, whatever the loss under it."""
    edited = with_loss(RULE_FIXTURES / "k3_loss_dict_unknown_output.keras", tmp_path / "none.keras",
                       {"class_out": "mse", "bbox_out": "mse", "extra": None})
    [finding] = rl027(edited)
    assert "'extra'" in finding.message


def test_a_dict_output_accepts_its_keys_not_only_its_layers_names(tmp_path):
    """Keys equal to the dict output's keys (here also its layers' names)
    are quiet. A layer name that is not a key raises in Keras 3.15 and is
    reported (tests/test_review10_real_files.py)."""
    edited = with_loss(RULE_FIXTURES / "k3_loss_dict_outputs_extra_key.keras", tmp_path / "keys.keras",
                       {"main": "mse", "aux": "mse"})
    assert rl027(edited) == []


def test_reader_records_the_problem_by_kind():
    report = lint_file(str(RULE_FIXTURES / "tfk_loss_dict_unknown_output.h5"), Settings())
    [problem] = report.model.problems_of(ProblemKind.UNKNOWN_LOSS_OUTPUT)
    assert problem.target == "loss"
    assert "tf-keras' fit raises" in problem.message


def test_cli_exits_1_on_it_and_profile_refuses_in_one_line():
    runner = CliRunner()
    path = str(RULE_FIXTURES / "k3_loss_dict_unknown_output.keras")
    checked = runner.invoke(app, ["check", path, "--select", "RL027"])
    assert checked.exit_code == 1, checked.output
    assert "RL027" in checked.output
    profiled = runner.invoke(app, ["profile", path])
    assert profiled.exit_code == 2
    assert "RL027" in profiled.output and "Traceback" not in profiled.output


def sequential_with_loss_dict(src, dst, loss, keras_version):
    """A Sequential file Keras 3.15.1 wrote, with a dict of losses and the
    writer's version in metadata.json replaced."""
    import zipfile

    with zipfile.ZipFile(src) as zin:
        members = {name: zin.read(name) for name in zin.namelist()}
    config = json.loads(members["config.json"])
    config["compile_config"]["loss"] = loss
    members["config.json"] = json.dumps(config).encode()
    metadata = json.loads(members["metadata.json"])
    metadata["keras_version"] = keras_version
    members["metadata.json"] = json.dumps(metadata).encode()
    with zipfile.ZipFile(dst, "w") as zout:
        for name, data in members.items():
            zout.writestr(name, data)
    return dst


def test_a_sequential_dict_loss_is_judged_as_the_writer_judges_it(tmp_path):
    """Keras 3.15's fit raises on any dict of losses for a Sequential (review
    10, tests/test_review10_real_files.py); a later writer may have mended
    that, so its file is judged by names only: the last layer's name passes,
    another name does not."""
    src = KERAS_FIXTURES / "scenario_penalty_dominates.keras"  # Sequential, last layer dense_2
    own = {"dense_2": "sparse_categorical_crossentropy"}
    [finding] = rl027(sequential_with_loss_dict(src, tmp_path / "k315.keras", own, "3.15.1"))
    assert "TypeError" in finding.message
    assert rl027(sequential_with_loss_dict(src, tmp_path / "k316.keras", own, "3.16.0")) == []
    [finding] = rl027(sequential_with_loss_dict(src, tmp_path / "k316_bad.keras", {"out": "mse"}, "3.16.0"))
    assert "'out'" in finding.message
