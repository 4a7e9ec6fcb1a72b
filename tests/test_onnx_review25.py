"""Review 25's ONNX defects: quadratic graph passes on crafted files (D5),
weights held in Constant nodes (D4), inconsistent sparse and duplicate
initializers (D6), an int8 weight dequantized twice (D9). The small files
are fixtures/onnx_review25/ (fixtures/make_onnx_review25_fixtures.py); the
large graphs are built here. Performance is checked by counting the
reader's work at two sizes, never by timing."""

from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from reglint.errors import ModelReadError
from reglint.readers import ReadOptions, read_model
from reglint.readers.onnx import graph as onnx_graph
from reglint.readers.onnx import tied

from helpers import FIXTURES

HERE = FIXTURES / "onnx_review25"
MANIFEST = json.loads((HERE / "manifest.json").read_text())


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def save(tmp_path, name, nodes, inits, inputs, outputs):
    path = tmp_path / name
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def variables(model) -> dict:
    return {v.name: v for _, v in model.variables()}


# D5: linear work -----------------------------------------------------------------------------------------------


class CountingDict(dict):
    """A producer map that counts its look-ups (each step of a backward walk)."""

    lookups = 0

    def get(self, key, default=None):
        CountingDict.lookups += 1
        return super().get(key, default)


def identity_chain(tmp_path, n):
    """One weight behind ``n`` Identity nodes (review25's ident_<n>.onnx)."""
    nodes = [helper.make_node("Identity", ["w" if i == 0 else f"w{i}"], [f"w{i + 1}"]) for i in range(n)]
    nodes.append(helper.make_node("MatMul", ["x", f"w{n}"], ["y"], name="fc/MatMul"))
    return save(tmp_path, f"ident_{n}.onnx", nodes, [numpy_helper.from_array(np.ones((4, 4), np.float32), "w")],
                [vi("x", ["N", 4])], [vi("y", ["N", 4])])


def producer_lookups(monkeypatch, path) -> int:
    original = onnx_graph.GraphIndex.__init__

    def counting_init(self, proto):
        original(self, proto)
        self.producer = CountingDict(self.producer)

    monkeypatch.setattr(onnx_graph.GraphIndex, "__init__", counting_init)
    CountingDict.lookups = 0
    model = read_model(path, ReadOptions())
    assert model.total_params == 16
    return CountingDict.lookups


def test_a_weight_behind_an_identity_chain_is_found_in_linear_work(tmp_path, monkeypatch):
    """Every node's source() walked the whole chain again: nodes x length
    steps. Twice the chain must cost about twice the look-ups, not four times."""
    small = producer_lookups(monkeypatch, identity_chain(tmp_path, 1500))
    large = producer_lookups(monkeypatch, identity_chain(tmp_path, 3000))
    assert large < 2.5 * small, (small, large)
    assert large < 40 * 3000, large  # a few look-ups per node


def test_source_is_memoised_and_a_loop_resolves_to_itself():
    nodes = [helper.make_node("Identity", ["a"], ["b"]), helper.make_node("Identity", ["b"], ["a"]),
             helper.make_node("Cast", ["w"], ["c"], to=1), helper.make_node("Identity", ["c"], ["d"])]
    graph = helper.make_graph(nodes, "g", [vi("w", [2])], [vi("d", [2])])
    index = onnx_graph.GraphIndex(helper.make_model(graph))
    assert index.source("d") == "w" and index.source("c") == "w"
    steps = index.source_steps
    assert index.source("d") == "w" and index.source_steps == steps  # answered from the memo
    assert index.source("a") == "a" and index.source("b") == "b"


def counted_anonymous(monkeypatch) -> list[int]:
    calls = [0, 0]  # _anonymous, _transposed
    anonymous, transposed = tied._anonymous, tied._transposed

    def count_anonymous(name):
        calls[0] += 1
        return anonymous(name)

    def count_transposed(*args):
        calls[1] += 1
        return transposed(*args)

    monkeypatch.setattr(tied, "_anonymous", count_anonymous)
    monkeypatch.setattr(tied, "_transposed", count_transposed)
    return calls


def matmul_chain(tmp_path, n):
    """``n`` MatMul layers of 1x1 weights (review25's chain_<n>.onnx)."""
    nodes = [helper.make_node("MatMul", [f"h{i}", f"l{i}.weight"], [f"h{i + 1}"], name=f"l{i}/MatMul")
             for i in range(n)]
    inits = [numpy_helper.from_array(np.ones((1, 1), np.float32), f"l{i}.weight") for i in range(n)]
    return save(tmp_path, f"chain_{n}.onnx", nodes, inits, [vi("h0", ["N", 1])], [vi(f"h{n}", ["N", 1])])


def test_a_long_layer_chain_is_not_compared_pair_by_pair(tmp_path, monkeypatch):
    """merge_transposed_copies compared every pair of same-shaped matrices."""
    counts = []
    for n in (500, 1000):
        calls = counted_anonymous(monkeypatch)
        assert read_model(matmul_chain(tmp_path, n), ReadOptions()).total_params == n
        counts.append(sum(calls))
    assert counts[1] < 2.5 * counts[0] + 10, counts


def test_tied_copies_among_many_same_shaped_matrices_in_linear_work(tmp_path, monkeypatch):
    """Named and exporter-named matrices of one shape, one of them a real
    transposed copy: found, with a handful of full comparisons."""
    rng = np.random.default_rng(0)

    def build(n):
        nodes, inits = [], []
        for i in range(n):
            w = rng.standard_normal((3, 3)).astype(np.float32)
            inits.append(numpy_helper.from_array(w, f"l{i}.weight"))
            anon = w.T.copy() if i == n // 2 else rng.standard_normal((3, 3)).astype(np.float32)
            inits.append(numpy_helper.from_array(anon, f"onnx::MatMul_{i}"))
            nodes += [helper.make_node("MatMul", [f"h{i}", f"l{i}.weight"], [f"g{i}"], name=f"l{i}/MatMul"),
                      helper.make_node("MatMul", [f"g{i}", f"onnx::MatMul_{i}"], [f"h{i + 1}"], name=f"m{i}/MatMul")]
        return save(tmp_path, f"tied_{n}.onnx", nodes, inits, [vi("h0", ["N", 3])], [vi(f"h{n}", ["N", 3])])

    counts = []
    for n in (300, 600):
        calls = counted_anonymous(monkeypatch)
        model = read_model(build(n), ReadOptions())
        assert model.total_params == (2 * n - 1) * 9  # the one tied copy counted once
        assert calls[1] <= 4, calls  # full comparisons: the fingerprint rules the others out
        counts.append(calls[0])
    assert counts[1] < 2.5 * counts[0], counts


# D4: Constant nodes ------------------------------------------------------------------------------------------


def test_weights_in_constant_nodes_are_counted_with_their_statistics():
    model = read_model(HERE / "constant_nodes.onnx", ReadOptions())
    truth = MANIFEST["constant_nodes.onnx"]
    assert model.total_params == truth["params"] == 136
    found = variables(model)
    assert set(found) == {"fc.weight", "fc.bias"}
    for name, sum_sq in truth["sum_sq"].items():
        assert math.isclose(found[name].stats.sum_sq, sum_sq, rel_tol=1e-6)
    assert any("Constant nodes" in note for note in model.notes), model.notes


def test_a_constant_node_is_a_parameter_only_where_a_layer_reads_it_as_a_weight():
    """The Conv kernel behind a Cast counts; the Mul factor 0.5 does not."""
    model = read_model(HERE / "constant_nodes_conv.onnx", ReadOptions())
    assert model.total_params == MANIFEST["constant_nodes_conv.onnx"]["params"] == 108
    assert set(variables(model)) == {"conv.weight_half"}


def test_user_regularizers_match_a_layer_held_in_constant_nodes():
    from reglint.engine.analysis import TrainingContext
    from reglint.engine.runner import lint_file
    from reglint.engine.settings import Settings

    context = TrainingContext(regularizers=[{"layers": "fc*", "target": "kernel", "l2": 0.01}])
    report = lint_file(str(HERE / "constant_nodes.onnx"), Settings(context=context))
    assert report.error is None
    assert [r.l2 for layer in report.model.layers for _, r in layer.regularizers()] == [0.01]


# D6: sparse and duplicate initializers -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "words"), [("sparse_claim.onnx", "64-bit"),
                                             ("sparse_overfull.onnx", "holds 1,000 values"),
                                             ("sparse_bad_index.onnx", "outside its dense shape")])
def test_an_inconsistent_sparse_initializer_is_refused_in_one_line(name, words):
    with pytest.raises(ModelReadError) as caught:
        read_model(HERE / name, ReadOptions())
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_the_regular_sparse_fixture_still_reads():
    model = read_model(FIXTURES / "onnx" / "sparse_initializer.onnx", ReadOptions())
    assert model.total_params > 0


def test_a_duplicate_initializer_counts_once_as_the_last_one():
    model = read_model(HERE / "duplicate_init.onnx", ReadOptions())
    truth = MANIFEST["duplicate_init.onnx"]
    assert model.total_params == truth["params"] == 16
    (weight,) = variables(model).values()
    assert math.isclose(weight.stats.sum_sq, truth["sum_sq"], rel_tol=1e-6)
    assert any("only the last is read" in note for note in model.notes), model.notes
    assert not any("not parameters" in note for note in model.notes), model.notes


# D9: one int8 weight, two DequantizeLinear -------------------------------------------------------------------


def test_an_int8_weight_dequantized_twice_with_one_scale_keeps_its_statistics():
    model = read_model(HERE / "qdq_shared.onnx", ReadOptions())
    truth = MANIFEST["qdq_shared.onnx"]
    assert model.total_params == truth["params"]
    stats = variables(model)["w_q"].stats
    assert stats is not None and math.isclose(stats.sum_sq, truth["sum_sq"], rel_tol=1e-6)
    assert not any("not read" in note for note in model.notes), model.notes
