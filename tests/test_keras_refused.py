"""config.json edits that Keras refuses to load (review 24, D8): a layer
entry that is not a layer config, a call reading a layer the model does
not have, a loop, a node never made, an input/output name not in the
model, two layers of one name. Keras' loader refuses each file
(``fixtures/keras_refused/manifest.json``, written with ``load_model``'s
own error by ``fixtures/make_keras_refused_fixtures.py``); reglint refuses
it as unreadable input, as it refuses a config whose ``layers`` is not a
list: one line naming the problem, exit code 2, no report written. The
models they were edited from, and an edit Keras still loads, are linted."""

from __future__ import annotations

import json
import re

import pytest

from reglint.errors import ModelReadError
from reglint.readers.keras_topology import check_graph

from helpers import FIXTURES, assert_one_line_refusal, hang_guard, run_reglint

FOLDER = FIXTURES / "keras_refused"
MANIFEST = {entry["file"]: entry for entry in json.loads((FOLDER / "manifest.json").read_text())["files"]}
REFUSED = "Keras cannot load this model"

# file -> what the one error line must name
CASES = {
    "layer_string.keras": ("layers[1] of the Functional 'base' is the string 'dense', not a layer config",),
    "nested_layer_string.keras": ("layers[1] of the nested Sequential 'inner' is the string 'dense'",),
    "no_class_name.keras": ("layers[2] of the Functional 'base' ('mid') has no class_name",),
    "inbound_missing_layer.keras": ("'head' in the Functional 'base' reads layer 'nope'", "not one of its layers"),
    "nested_reads_outer.keras": ("'block_dense' in the nested Functional 'block' reads layer 'a'",
                                 "not one of its layers"),
    "self_loop.keras": ("the graph of the Functional 'base' has a loop: 'head' reads its own output",),
    "two_layer_loop.keras": ("has a loop: 'head' -> 'mid' -> 'head'",),
    "call_never_made.keras": ("'head' in the Functional 'base' reads node 1 of 'mid', which is called 1 time",),
    "output_missing_layer.keras": ("output_layers of the Functional 'base' names 'nope'",),
    "input_missing_layer.keras": ("input_layers of the Functional 'base' names 'nope'",),
    "duplicate_layer_name.keras": ("two layers of the Functional 'base' are named 'inner'",),
    "sequential_duplicate_name.keras": ("two layers of the nested Sequential 'inner' are named 'in1'",),
}
LOADED = ("base.keras", "shared.keras", "duplicate_unused_layer.keras")


def test_manifest_records_keras_own_verdict():
    """Every edited file was refused by Keras' load_model, every control
    loaded: the cases below are Keras' verdicts, not reglint's opinion."""
    assert set(MANIFEST) == set(CASES) | set(LOADED)
    for name in CASES:
        assert MANIFEST[name]["load_error"], name
        assert (FOLDER / name).is_file(), name
    for name in LOADED:
        assert MANIFEST[name]["load_error"] is None, name


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_as_keras_refuses(name, tmp_path):
    report = tmp_path / "report.json"
    done = run_reglint("check", FOLDER / name, "-f", "json", "--output-file", report)
    assert_one_line_refusal(done, f"keras_refused/{name}: ", *CASES[name], REFUSED)
    assert done.stdout == ""
    assert not report.exists()  # nothing written for a run whose only file is unreadable


def test_refused_file_does_not_stop_the_others(tmp_path):
    """An unreadable file among others: exit 2, the others still linted."""
    report = tmp_path / "report.json"
    done = run_reglint("check", FOLDER / "self_loop.keras", FOLDER / "base.keras", "-f", "json",
                       "--output-file", report)
    assert done.returncode == 2
    files = {entry["path"].rsplit("/", 1)[-1]: entry for entry in json.loads(report.read_text())["files"]}
    assert REFUSED in files["self_loop.keras"]["error"]
    assert files["base.keras"]["error"] is None


def test_models_keras_loads_are_linted():
    """The unedited models (a nested Sequential; a Dense pair called as
    a(b(a(b(x)))) and a nested Functional called twice, which are no loops)
    and an uncalled duplicate Keras drops: no refusal, the counts are
    Keras', and so is the penalty at the weights Keras assigns (the
    uncalled copy takes no place in the saved layer numbering)."""
    done = run_reglint("check", *(FOLDER / name for name in LOADED), "-f", "json")
    assert done.returncode != 2, done.stderr
    files = {entry["path"].rsplit("/", 1)[-1]: entry for entry in json.loads(done.stdout)["files"]}
    for name in LOADED:
        assert files[name]["error"] is None, (name, files[name]["error"])
        assert files[name]["model"]["params"]["total"] == MANIFEST[name]["params"], name
        assert not [f for f in files[name]["findings"] if f["code"] == "RL019"], name
        saved = sum(var["penalty_saved"] for layer in files[name]["model"]["layers"] for var in layer["variables"]
                    if var.get("penalty_saved") is not None)
        assert saved == pytest.approx(MANIFEST[name]["weight_penalty"], rel=1e-5), name


def test_architecture_json_with_a_loop_is_refused(tmp_path):
    """``model.to_json()`` (no weights) is read through the same check."""
    import zipfile

    with zipfile.ZipFile(FOLDER / "two_layer_loop.keras") as archive:
        (tmp_path / "arch.json").write_bytes(archive.read("config.json"))
    assert_one_line_refusal(run_reglint("check", tmp_path / "arch.json"), "has a loop", REFUSED)


# -- the check on configs built here: size, and what is not refused ---------


def _dense(name: str, reads: list[tuple[str, int]], calls: int = 1) -> dict:
    node = [[source, index, 0, {}] for source, index in reads]
    return {"class_name": "Dense", "name": name, "config": {"name": name, "units": 2},
            "inbound_nodes": [node] * calls}


def _functional(layers: list[dict], outputs: str) -> dict:
    head = {"class_name": "InputLayer", "name": "x", "config": {"name": "x"}, "inbound_nodes": []}
    return {"class_name": "Model", "config": {"name": "m", "layers": [head, *layers],
                                              "input_layers": [["x", 0, 0]], "output_layers": [[outputs, 0, 0]]}}


def test_huge_graphs_are_checked_in_linear_time_without_recursion():
    """100,000 layers listed last-first (Keras' own replay would take a
    pass per layer): a chain passes, the same chain closed into a loop is
    refused, both in seconds (a pass per layer would be 10**10 steps: the
    guard's minute is a hang, not a slow machine)."""
    n = 100_000
    chain = [_dense(f"d{i}", [("x" if i == 0 else f"d{i - 1}", 0)]) for i in reversed(range(n))]
    with hang_guard(60):
        check_graph(_functional(chain, f"d{n - 1}"))
        chain[-1]["inbound_nodes"] = [[[f"d{n - 1}", 0, 0, {}]]]  # d0 reads the last layer
        with pytest.raises(ModelReadError,
                           match=r"has a loop: 'd0' -> 'd1' -> .* -> \.\.\. \(100000 layers\) -> 'd0'"):
            check_graph(_functional(chain, f"d{n - 1}"))


def test_nested_models_deeper_than_any_recursion_limit():
    model: dict = {"class_name": "Dense", "config": {"name": "leaf", "units": 1}}
    for depth in range(5_000):
        model = {"class_name": "Sequential", "config": {"name": f"s{depth}", "layers": [model]}}
    check_graph(model)
    model["config"]["layers"].append({"class_name": "Dense", "config": {"name": "s4998", "units": 1}})
    with pytest.raises(ModelReadError, match="two layers of the Sequential 's4999' are named 's4998'"):
        check_graph(model)


def test_what_keras_loads_is_not_refused():
    """Shared layers (one entry, several calls), a(b(a(b(x)))) in any
    order, a nested model's node indices counted either way (tf-keras from
    1, Keras 2.2 and 3 from 0), tf-keras' flat TF-op node, an uncalled
    duplicate, names Sequential does not repeat."""
    shared = [_dense("b", [("x", 0), ("a", 0)], calls=1), _dense("a", [("b", 0)])]
    shared[0]["inbound_nodes"] = [[["x", 0, 0, {}]], [["a", 0, 0, {}]]]
    shared[1]["inbound_nodes"] = [[["b", 0, 0, {}]], [["b", 1, 0, {}]]]
    check_graph(_functional(shared, "a"))
    for first in (0, 1):
        inner = {"class_name": "Functional", "name": "inner", "inbound_nodes": [[["x", 0, 0, {}]]],
                 "config": {"name": "inner", "layers": [], "input_layers": [], "output_layers": []}}
        check_graph(_functional([inner, _dense("d", [("inner", first)])], "d"))
    op = {"class_name": "TFOpLambda", "name": "op", "config": {"name": "op"}, "inbound_nodes": ["x", 0, 0, {"y": 1}]}
    check_graph(_functional([op, _dense("d", [("op", 0)])], "d"))
    check_graph(_functional([_dense("d", [], calls=0), _dense("d", [("x", 0)])], "d"))
    check_graph({"class_name": "Sequential", "config": [
        {"class_name": "Dense", "config": {"units": 1}}, {"class_name": "Dense", "config": {"units": 1}}]})


@pytest.mark.parametrize(("entry", "said"), [(None, "is null,"), ([], "is a list,"), (3, "is the number '3',"),
                                             ({"config": {"name": "d"}}, "('d') has no class_name")])
def test_entries_that_are_no_layer_config(entry, said):
    with pytest.raises(ModelReadError, match=re.escape(f"layers[1] of the Sequential 's' {said}")):
        check_graph({"class_name": "Sequential", "config": {"name": "s", "layers": [
            {"class_name": "Dense", "config": {"units": 1}}, entry]}})


def test_a_plain_layer_reading_a_node_it_never_makes_is_refused():
    with pytest.raises(ModelReadError, match="reads node 2 of 'a', which is called 2 times"):
        check_graph(_functional([_dense("a", [("x", 0)], calls=2), _dense("d", [("a", 2)])], "d"))
    inner = {"class_name": "Functional", "name": "inner", "inbound_nodes": [[["x", 0, 0, {}]]],
             "config": {"name": "inner", "layers": [], "input_layers": [], "output_layers": []}}
    with pytest.raises(ModelReadError, match="reads node 2 of 'inner', which is called 1 time"):
        check_graph(_functional([inner, _dense("d", [("inner", 2)])], "d"))
