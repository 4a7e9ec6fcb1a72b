"""Reader exactness (issue 16) on files Keras, tf-keras and PyTorch wrote,
against their own numbers (fixtures/exactness/manifest.json, written by
fixtures/make_exactness_fixtures.py and make_torch_onnx_fixtures.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import FIXTURES
from reglint.engine.finding import Severity
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.model import ProblemKind
from reglint.readers import read_model

EXACT = FIXTURES / "exactness"
MANIFEST = {e["file"]: e for e in json.loads((EXACT / "manifest.json").read_text())["files"]}
BROKEN = [name for name, e in MANIFEST.items() if "broken" in name]
COUNTED = [name for name in MANIFEST if "broken" not in name]


def reglint(*args):
    return subprocess.run([sys.executable, "-m", "reglint", *args, "--no-cache"], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("name", COUNTED)
def test_counts_equal_the_frameworks_own(name):
    entry = MANIFEST[name]
    model = read_model(EXACT / name)
    assert (model.total_params, model.trainable_params, model.non_trainable_params) == (
        entry["count_params"], entry["trainable_params"], entry["non_trainable_params"])
    assert not model.problems_of(ProblemKind.WEIGHTS_MISMATCH, ProblemKind.MISSING_WEIGHTS,
                                 ProblemKind.EXTRA_WEIGHTS)


# -- broken files ----------------------------------------------------------------------


@pytest.mark.parametrize("name", BROKEN)
def test_broken_files_name_the_layer_and_report_the_configs_count(name):
    entry = MANIFEST[name]
    report = lint_file(str(EXACT / name), Settings())
    assert report.error is None
    assert report.model.total_params == entry["count_params"] == 15  # Dense(3) on 4 inputs
    found = [f for f in report.findings if f.code == "RL019"]
    assert found, name
    assert all("dense" in (f.layer or "") + f.message for f in found), found
    blocking = [f for f in found if f.severity is Severity.ERROR]
    # An error exactly where Keras itself refused the file.
    assert bool(blocking) == (not entry["loads"]), (name, entry["load_error"])


@pytest.mark.parametrize("name", [n for n in BROKEN if not MANIFEST[n]["loads"]])
def test_broken_files_exit_non_zero(name):
    result = reglint(str(EXACT / name))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "RL019" in result.stdout


def test_shape_mismatch_gives_both_shapes():
    for name in ("broken_shape_mismatch.keras", "tfk_broken_shape_mismatch.h5"):
        model = read_model(EXACT / name)
        mismatches = {p.target: (p.expected, p.stored) for p in model.problems_of(ProblemKind.WEIGHTS_MISMATCH)}
        assert mismatches == {"kernel": ((4, 3), (7, 9)), "bias": ((3,), (2,))}, name
        assert all(p.layer == "dense" and p.blocks_load for p in model.problems), name
        kernel = model.layers[0].variables[0]
        assert kernel.shape == (4, 3) and kernel.regularizer is not None and kernel.regularizer.l2 == 1e-3


def test_archive_without_weights_counts_the_config_and_is_an_error():
    model = read_model(EXACT / "broken_no_weights.keras")
    [problem] = model.problems
    assert problem.kind is ProblemKind.MISSING_WEIGHTS and problem.blocks_load
    assert "dense" in problem.message and "15" in problem.message
    assert model.metadata["config_params"]["total"] == 15


def test_extra_group_is_a_warning_because_keras_loads_it():
    assert MANIFEST["broken_extra_group.keras"]["loads"]
    result = reglint(str(EXACT / "broken_extra_group.keras"))
    assert result.returncode == 0 and "RL019" in result.stdout


# -- architecture-only JSON ---------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in MANIFEST if "json_" in n])
def test_json_architecture_is_linted_at_initialisation(name):
    report = lint_file(str(EXACT / name), Settings())
    model = report.model
    assert model.format == "keras_json" and model.has_regularization
    assert any("no saved weights" in note for note in model.notes)
    assert report.analysis.penalties and all(p.penalty_init is not None and p.penalty_saved is None
                                             for p in report.analysis.penalties)
    assert reglint(str(EXACT / name)).returncode == 0


def _strip_recorded_shapes(obj):
    if isinstance(obj, dict):
        return {k: _strip_recorded_shapes(v) for k, v in obj.items()
                if k not in ("build_config", "shape", "build_input_shape")}
    if isinstance(obj, list):
        return [_strip_recorded_shapes(v) for v in obj]
    return obj


@pytest.mark.parametrize("name", ["zoo.json", "json_cnn_bn_residual.json", "json_mha_block.json",
                                  "json_bilstm_embedding.json"])
def test_keras3_shapes_propagate_without_build_config(tmp_path, name):
    """Keras 3 records every layer's input shape; with those records
    removed, reglint's own propagation from the InputLayers gives the same
    count (what Keras 1/2 files need)."""
    path = tmp_path / name
    path.write_text(json.dumps(_strip_recorded_shapes(json.loads((EXACT / name).read_text()))))
    assert "build_config" not in path.read_text()
    model = read_model(path)
    assert (model.total_params, model.trainable_params) == (MANIFEST[name]["count_params"],
                                                            MANIFEST[name]["trainable_params"])


def test_json_that_is_not_a_model_is_a_one_line_error(tmp_path):
    other = tmp_path / "package.json"
    other.write_text('{"name": "web", "version": "1.0.0", "dependencies": {}}')
    result = reglint(str(other))
    assert result.returncode == 2
    assert "not a Keras model architecture" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_discovery_takes_json_by_content(tmp_path):
    from reglint.engine.discover import discover

    (tmp_path / "model.json").write_text((EXACT / "tfk_json_mlp.json").read_text())
    (tmp_path / "arch.txt.json").write_text((EXACT / "json_mlp.json").read_text())
    (tmp_path / "package.json").write_text('{"name": "web", "class_name": "not a model"}')
    (tmp_path / "data.json").write_text("[1, 2, 3]")
    found, _, _ = discover([str(tmp_path)], Settings(root=str(tmp_path)))
    assert sorted(p.split("/")[-1] for p in found) == ["arch.txt.json", "model.json"]
    named = [str(tmp_path / "package.json"), str(tmp_path / "model.json")]
    assert len(discover(named, Settings(root=str(tmp_path)))[0]) == 2  # named: linted (and refused)
    pre_commit = Settings(root=str(tmp_path), force_exclude=True)
    assert [p.split("/")[-1] for p in discover(named, pre_commit)[0]] == ["model.json"]


# -- Normalization, SavedModel export, activity placement, ONNX ---------------------------------


@pytest.mark.parametrize("name", ["normalization.keras", "normalization.h5"])
def test_normalization_statistics_are_named_and_non_trainable(name):
    expected = MANIFEST[name]["normalization"]
    layer = read_model(EXACT / name).layer("normalization")
    assert [v.name for v in layer.variables] == expected["variables"] == ["mean", "variance", "count"]
    assert (layer.trainable_params, layer.non_trainable_params) == (
        expected["trainable_params"], expected["non_trainable_params"]) == (0, 7)


def test_exported_savedmodel_counts_each_variable_once():
    entry = MANIFEST["export_cnn"]
    model = read_model(EXACT / "export_cnn")
    assert (model.total_params, model.trainable_params) == (entry["count_params"], entry["trainable_params"])
    names = [f"{layer.path}/{v.name}" for layer, v in model.variables()]
    assert len(names) == len(set(names)) == 14


def test_mha_activity_regularizer_is_reported_on_its_projections():
    model = read_model(EXACT / "mha_activity.keras")
    layer = model.layer("mha")
    assert len(layer.activity_on) == MANIFEST["mha_activity.keras"]["activity_losses"] == 4
    assert layer.activity_on == ["query", "key", "value", "attention_output"]
    assert any("mha" in note and "query" in note for note in model.notes)
    # tf-keras applies it once, to the attention output, like any layer.
    tfk = read_model(EXACT / "tfk_mha_activity.h5").layer("mha")
    assert tfk.activity_regularizer is not None and tfk.activity_on == []
    assert MANIFEST["tfk_mha_activity.h5"]["activity_losses"] == 1


def test_time_distributed_inner_activity_regularizer_is_inactive_in_keras3():
    assert MANIFEST["td_activity.keras"]["activity_losses"] == 0
    report = lint_file(str(EXACT / "td_activity.keras"), Settings())
    [finding] = [f for f in report.findings if f.code == "RL005" and f.layer == "td"]
    assert "never applied" in finding.message
    # tf-keras adds it (once per call): reglint attaches it to the wrapper.
    assert MANIFEST["tfk_td_activity.h5"]["activity_losses"] == 1
    tfk = lint_file(str(EXACT / "tfk_td_activity.h5"), Settings())
    assert tfk.model.layer("td").activity_regularizer is not None
    assert not tfk.model.problems_of(ProblemKind.INACTIVE_REGULARIZER)


def test_onnx_class_token_read_only_by_expand_is_a_parameter():
    entry = MANIFEST["vit_class_token.onnx"]
    assert entry["class_token_consumers"] == ["Expand"]
    model = read_model(EXACT / "vit_class_token.onnx")
    assert model.total_params == entry["count_params"] == entry["initializer_elements"]
    assert any(v.name == "class_token" and v.shape == (1, 1, 16) for _, v in model.variables())


@pytest.mark.parametrize("units", [-3, 0, "three", None])
def test_a_size_keras_cannot_build_is_an_error(tmp_path, units):
    """Dense(units) raises for anything but a positive integer
    (keras/src/layers/core/dense.py), so Keras refuses the file: RL019 says
    so by name instead of silently counting the stored tensors."""
    from mutate import layer_configs, rewrite_keras_zip

    def set_units(cfg):
        next(c for c in layer_configs(cfg) if "units" in c)["units"] = units

    path = rewrite_keras_zip(FIXTURES / "keras" / "dense_l2.keras", tmp_path / "bad_units.keras", config=set_units)
    report = lint_file(str(path), Settings())
    assert report.error is None
    [found] = [f for f in report.findings if f.code == "RL019"]
    assert found.severity is Severity.ERROR and found.layer == "dense"
    assert f"units={units!r} is not a positive integer" in found.message and "refuses to load" in found.message
    assert report.model.total_params == read_model(FIXTURES / "keras" / "dense_l2.keras").total_params


@pytest.mark.parametrize("units", [-3, None])
def test_a_size_keras_cannot_build_is_an_error_in_an_architecture_json_too(tmp_path, units):
    """model.to_json() of the MLP with a Dense's units made one Keras refuses: the same RL019 as in a
    .keras (the JSON path builds from the config with the same size check)."""
    from mutate import layer_configs

    arch = json.loads((EXACT / "json_mlp.json").read_text())
    next(c for c in layer_configs(arch) if "units" in c)["units"] = units
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch))
    report = lint_file(str(path), Settings())
    assert report.error is None
    [found] = [f for f in report.findings if f.code == "RL019"]
    assert found.severity is Severity.ERROR
    assert f"units={units!r} is not a positive integer" in found.message and "refuses to load" in found.message


def test_an_architecture_whose_layers_are_not_a_list_is_a_read_error(tmp_path):
    path = tmp_path / "arch.json"
    arch = json.loads((EXACT / "json_mlp.json").read_text())
    arch["config"]["layers"] = "x"
    path.write_text(json.dumps(arch))
    report = lint_file(str(path), Settings())
    assert report.error == ("the Sequential config's layers is a str, not a list of layer configs: "
                            "Keras cannot load this model")
