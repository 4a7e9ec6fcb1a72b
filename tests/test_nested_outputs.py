"""Nested models with several outputs: a consumer reads one of them, named
by the tensor index Keras records (``keras_history`` / ``inbound_nodes``),
and the layer graph links it to the layer behind that output only.

The files are real (fixtures/make_keras_fixtures.py, make_tf_keras_fixtures.py);
the last tests build descriptions by hand for what no file shows: an index
the reader does not know, an index out of range, and memoised resolution.
"""

from __future__ import annotations

import math

import pytest

from reglint.engine.analysis import Analysis
from reglint.engine.finding import Severity
from reglint.engine.graph import NestedGraph, outbound_map
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.estimate.activity import input_second_moment, output_second_moments
from reglint.model import Container, Layer, Model, Output, TensorRef
from reglint.readers import read_model
from reglint.readers.keras_config import inbound_refs, tensor_refs

from helpers import KERAS_FIXTURES, keras_manifest


def links(path) -> dict[str, list[str]]:
    return {src: [layer.path for layer in dst] for src, dst in outbound_map(read_model(path)).items()}


def findings(name, code):
    report = lint_file(str(KERAS_FIXTURES / name), Settings())
    assert report.error is None, report.error
    return [f for f in report.findings if f.code == code]


@pytest.mark.parametrize("name", ["nested_two_output_backbone.keras", "tfk_nested_two_output_backbone.h5"])
def test_each_head_reads_its_own_feature_map_of_a_two_output_backbone(name):
    """Keras 3 ({"keras_history": ["backbone", 0, 1]}) and tf-keras HDF5
    ([["backbone", 1, 1, {}]]) alike: h1 reads r1, h2 reads bn2. Before,
    neither head had an input, so bn2's penalized gamma looked like it
    reached the output (not absorbed, counted by RL001); the free h2 takes
    its scale over."""
    assert links(KERAS_FIXTURES / name) == {
        "inp": ["backbone/c1"], "backbone/c1": ["backbone/bn1"], "backbone/bn1": ["backbone/r1"],
        "backbone/r1": ["backbone/c2", "h1"], "backbone/c2": ["backbone/bn2"], "backbone/bn2": ["h2"],
        "h1": ["gap1"], "h2": ["gap2"]}
    [gamma] = findings(name, "RL008")
    assert (gamma.layer, gamma.target) == ("backbone/bn2", "gamma")
    assert gamma.values["absorbed"] is True and gamma.values["counted"] is False


def test_outputs_listed_out_of_creation_order_follow_each_index_through_two_levels():
    """inner lists [b, a]; sub lists inner's tensors [1, 0], i.e. [a, b]:
    sub's output 0 is a, read by oa; output 1 is b, read by hb. The RL024
    chain runs d0, a, b, hb, ob (before: d0, a, b; reading the outputs in
    creation order would give d0, a, hb, ob)."""
    model = read_model(KERAS_FIXTURES / "nested_outputs_reordered.keras")
    sub = next(c for c in model.containers if c.path == "sub")
    assert [(r.name, r.tensor) for r in sub.output_tensors] == [("inner", 1), ("inner", 0)]
    assert links(KERAS_FIXTURES / "nested_outputs_reordered.keras") == {
        "inp": ["d0"], "d0": ["sub/inner/a"], "sub/inner/a": ["sub/inner/b", "oa"], "sub/inner/b": ["hb"],
        "hb": ["ob"]}
    [chain] = findings("nested_outputs_reordered.keras", "RL024")
    assert chain.values["chain"] == ["d0", "sub/inner/a", "sub/inner/b", "hb", "ob"]


def test_a_layer_with_several_outputs_returned_by_a_nested_encoder():
    """The encoder returns its LSTM's (sequence, state): outputs 0 and 1 of
    one layer. Both consumers read the LSTM; the state's Dense layers are in
    series with it (RL024: lstm, hs, os2; before: hs, os2)."""
    assert links(KERAS_FIXTURES / "nested_encoder_state.keras") == {
        "inp": ["encoder/lstm"], "encoder/lstm": ["pool", "hs"], "pool": ["os"], "hs": ["os2"]}
    [chain] = findings("nested_encoder_state.keras", "RL024")
    assert chain.values["chain"] == ["encoder/lstm", "hs", "os2"]


def test_dict_outputs_are_counted_in_sorted_key_order_and_feed_a_two_input_model_in_order():
    """split returns {'z': ..., 'a': ...}; the file keeps z first but the
    consumers' tensor indexes count the sorted keys (a = y is 0, z is 1).
    fuse([z, a]) feeds fa from z and fb from y."""
    model = read_model(KERAS_FIXTURES / "nested_dict_outputs.keras")
    split = next(c for c in model.containers if c.path == "split")
    assert split.outputs == ["y", "z"]
    assert links(KERAS_FIXTURES / "nested_dict_outputs.keras") == {
        "inp": ["d0"], "d0": ["split/y", "split/z"], "split/z": ["fuse/ga"], "split/y": ["fuse/gb"],
        "fuse/ga": ["fuse/cat"], "fuse/gb": ["fuse/cat"], "fuse/cat": ["out"]}
    [chain] = findings("nested_dict_outputs.keras", "RL024")
    assert chain.values["chain"] == ["d0", "split/z", "fuse/ga"]


@pytest.mark.parametrize("name", ["nested_dict_inputs.keras", "tfk_nested_dict_inputs.h5"])
def test_a_model_called_with_a_dict_is_fed_in_sorted_key_order(name):
    """sub({'b': db, 'a': da}): the file keeps b first (Keras 3 args dict,
    tf-keras node dict) but Keras feeds sub's inputs [ia, ib] sorted: da
    reaches ga. Before, da was wired to gb and db to ga (invented links),
    and the chain da, ga went unseen."""
    assert links(KERAS_FIXTURES / name) == {
        "inp": ["da", "db"], "db": ["sub/gb"], "da": ["sub/ga"], "sub/ga": ["sub/cat"], "sub/gb": ["sub/cat"],
        "sub/cat": ["out"]}
    [chain] = findings(name, "RL024")
    assert chain.values["chain"] == ["da", "sub/ga"]


@pytest.mark.parametrize("name", ["nested_multi_input_called_twice.keras", "tfk_nested_multi_input_called_twice.h5"])
def test_a_two_input_model_called_twice_is_fed_call_by_call(name):
    """sub([dx, dy]) and sub([dz, dw]): each call's tensors match the inputs
    in order. Before, four tensors for two inputs linked nothing: dx looked
    like a model output and the chain dx, ga went unseen."""
    graph = links(KERAS_FIXTURES / name)
    assert {src: graph[src] for src in ("dx", "dy", "dz", "dw")} == {
        "dx": ["sub/ga"], "dy": ["sub/gb"], "dz": ["sub/ga"], "dw": ["sub/gb"]}
    [chain] = findings(name, "RL024")
    assert chain.values["chain"] == ["dx", "sub/ga"]


@pytest.mark.parametrize("name", ["nested_passthrough_called_twice.keras", "tfk_nested_passthrough_called_twice.h5"])
def test_a_nested_model_returning_its_input_gives_each_call_its_own(name):
    """pt returns its own input; h1 reads the first call's (d1), h2 the
    second's (d2): Keras 3 numbers the calls 0, 1 (['pt', 1, 0]), tf-keras
    1, 2. Before, both heads were linked to both, and d2 -> h1 made a false
    RL024 chain."""
    graph = links(KERAS_FIXTURES / name)
    assert (graph["d1"], graph["d2"]) == (["pt/pd", "h1"], ["pt/pd", "h2"])
    assert findings(name, "RL024") == []


@pytest.mark.parametrize(("name", "names"), [
    ("nested_outputs_are_model_outputs.keras", ["bb", "bb_1"]),
    ("tfk_nested_outputs_are_model_outputs.h5", ["bb", "bb_1"]),
    # a loss dict keyed by tf-keras' output names, out of order: matched by name, not position
    ("tfk_nested_outputs_dict_loss.h5", ["bb", "bb_1"]),
])
def test_outputs_that_are_a_nested_models_outputs_keep_their_own_width(name, names):
    """The model's outputs are bb's [cls (softmax 10), bin (sigmoid 1)]:
    each is the layer behind its tensor index, as in the flat model, and
    the data-loss scale is ln 10 + ln 2 as flat (before: both were bb's
    last layer, 'ln 1' for the cross-entropy, and RL001 warned at 8.1x;
    the dict loss went by position, the cross-entropy to bin)."""
    nested, flat = read_model(KERAS_FIXTURES / name), read_model(KERAS_FIXTURES / "two_heads_flat.keras")
    assert nested.outputs == [Output("bb/cls", 10, "softmax", names[0]), Output("bb/bin", 1, "sigmoid", names[1])]
    assert [(o.units, o.activation) for o in flat.outputs] == [(o.units, o.activation) for o in nested.outputs]
    scale = Analysis(nested).loss_scale
    assert scale.value == pytest.approx(math.log(10) + math.log(2)) == Analysis(flat).loss_scale.value
    assert findings(name, "RL001") == []


@pytest.mark.parametrize("name", ["dict_outputs_loss_by_key.keras", "tfk_dict_outputs_loss_by_key.h5"])
def test_a_loss_dict_finds_dict_outputs_by_key(name):
    """Outputs {'z_prob': p (softmax 10), 'a_bin': q (sigmoid 1)} are
    numbered in sorted key order (q, p); the loss dict keeps z_prob first.
    Each loss goes to the output its key names (since outputs were sorted,
    position put the cross-entropy on q: 'ln 1')."""
    model = read_model(KERAS_FIXTURES / name)
    assert model.outputs == [Output("q", 1, "sigmoid", "a_bin"), Output("p", 10, "softmax", "z_prob")]
    assert Analysis(model).loss_scale.value == pytest.approx(math.log(10) + math.log(2))


def test_an_output_name_is_looked_up_where_the_output_sits():
    """Output 0 is the top-level 'head' (softmax 3); bb, walked after it,
    holds its own 'head' (relu 7), which used to stand in for it."""
    model = read_model(KERAS_FIXTURES / "nested_output_name_clash.keras")
    assert model.outputs == [Output("head", 3, "softmax", "head"), Output("last", 2, "sigmoid", "last")]
    assert Analysis(model).loss_scale.value == pytest.approx(math.log(3) + math.log(2))


def test_an_activity_penalty_inside_a_nested_model_reads_what_the_parent_feeds_it():
    """wide (activity L2 0.05, 128 relu units) sits in sub, fed by pre: relu
    of RandomNormal(1) weights on 16 standard inputs, second moment 8. The
    estimate took wide's input as standardised (2.1 per sample, no RL010);
    it now reads pre's output (17.1: a warning, as Keras' own 13.9 is, 6x
    ln 10). The gap to Keras: its 128 realized units give E[relu(z)^2] =
    2.18 where the Gaussian estimate gives 2.67 (z's second moment is right,
    5.0 against 5.25). The head after sub reads wide's output, not 1."""
    model = read_model(KERAS_FIXTURES / "nested_activity_after_preprocessing.keras")
    moments = output_second_moments(model)
    assert moments["sub/si"] == moments["pre"] == pytest.approx(8.0)
    head = next(layer for layer in model.layers if layer.path == "head")
    assert input_second_moment(head, moments, NestedGraph(model)) == moments["sub/wide"] == pytest.approx(8 / 3)
    [found] = findings("nested_activity_after_preprocessing.keras", "RL010")
    entry = next(e for e in keras_manifest() if e["file"] == "nested_activity_after_preprocessing.keras")
    measured = entry["measured"]["activity_penalty_per_sample"]
    assert found.values["penalty_per_sample"] == pytest.approx(measured, rel=0.25)
    assert found.severity is Severity.WARNING


# -- the one parser of inbound nodes and output_layers --------------------------


@pytest.mark.parametrize(("nodes", "expected"), [
    ([{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["bb", 0, 1]}}], "kwargs": {}}],
     [TensorRef("bb", 0, 1)]),  # Keras 3
    ([[["bb", 1, 1, {}], ["x", 0, 0, {}]]], [TensorRef("bb", 1, 1), TensorRef("x", 0, 0)]),  # Keras 2
    ([[["bb", 0, 2]]], [TensorRef("bb", 0, 2)]),  # Keras 1
    ([[["bb", 0, "1", {}]]], [TensorRef("bb", 0, None)]),  # malformed: unknown, not 0
    ([{"args": [{"config": {"keras_history": ["bb"]}}]}], [TensorRef("bb", 0, None)]),
    # a model called twice (tf-keras): each reference knows its call
    ([[["x", 0, 0, {}], ["y", 0, 0, {}]], [["z", 0, 0, {}]]],
     [TensorRef("x", 0, 0, 0), TensorRef("y", 0, 0, 0), TensorRef("z", 0, 0, 1)]),
    # a model called with a dict: Keras feeds its inputs in sorted key order, whatever the file's order
    ([{"b": ["db", 0, 0, {}], "a": ["da", 0, 0, {}]}], [TensorRef("da", 0, 0), TensorRef("db", 0, 0)]),
    ([{"args": [{"b": {"config": {"keras_history": ["db", 0, 0]}}, "a": {"config": {"keras_history": ["da", 0, 0]}}}],
      "kwargs": {"mask": {"b": None, "a": None}}}], [TensorRef("da", 0, 0), TensorRef("db", 0, 0)]),
    # a tf.keras TF op layer's call is one flat [name, node, tensor, kwargs]
    ([["x", 0, 0, {"y": ["c", 0, 0]}], ["x", 1, 0, {}]], [TensorRef("x", 0, 0, 0), TensorRef("c", 0, 0, 0),
                                                          TensorRef("x", 1, 0, 1)]),
])
def test_inbound_references_keep_the_tensor_index_or_say_it_is_unknown(nodes, expected):
    assert inbound_refs({"inbound_nodes": nodes}) == expected


def test_output_layers_flatten_as_keras_numbers_the_tensors():
    assert tensor_refs(["d", 0, 0]) == [("d", 0, 0)]
    assert tensor_refs([["d", 0, 0], ["e", 1, 2]]) == [("d", 0, 0), ("e", 1, 2)]
    assert tensor_refs([[["d", 0, 0], ["e", 0, 0]], ["f", 0, 0]]) == [("d", 0, 0), ("e", 0, 0), ("f", 0, 0)]
    assert tensor_refs({"z": ["z", 0, 0], "a": ["aa", 0, 0]}) == [("aa", 0, 0), ("z", 0, 0)]
    assert tensor_refs("d") == [] and tensor_refs(None) == []


# -- descriptions: what no file shows --------------------------------------------


def backbone_model(head_refs: list[TensorRef]) -> Model:
    """bb(bi) returns [a, b]; one head reads bb by ``head_refs``."""
    layers = [Layer("x", "x", "InputLayer"), Layer("bi", "bb/bi", "InputLayer"),
              Layer("a", "bb/a", "Dense", inbound=["bi"]), Layer("b", "bb/b", "Dense", inbound=["a"]),
              Layer("head", "head", "Dense", inbound=["bb"], inbound_tensors=head_refs)]
    bb = Container("bb", inbound=["x"], inputs=["bi"], outputs=["a", "b"],
                   output_tensors=[TensorRef("a"), TensorRef("b")])
    return Model("m", "keras_v3", layers=layers, containers=[bb])


def test_a_known_index_links_an_unknown_or_out_of_range_one_does_not():
    def fed_by(model):
        return [layer.path for layer in NestedGraph(model).feeding(model.layers[-1])]

    assert fed_by(backbone_model([TensorRef("bb", 0, 1)])) == ["bb/b"]
    assert fed_by(backbone_model([TensorRef("bb", 0, 0)])) == ["bb/a"]
    assert fed_by(backbone_model([])) == []  # a reader that records names only
    assert fed_by(backbone_model([TensorRef("bb", 0, None)])) == []
    assert fed_by(backbone_model([TensorRef("bb", 0, 2)])) == []


def test_a_single_output_wrapper_of_a_multi_output_model_links_through_its_recorded_index():
    """wrap returns bb's second output only: a consumer of wrap needs no index."""
    model = backbone_model([])
    for layer in model.layers:
        if layer.path.startswith("bb"):
            layer.path = "wrap/" + layer.path
    model.layers[-1].inbound = ["wrap"]
    model.containers[0].path = "wrap/bb"
    model.containers.append(Container("wrap", inbound=["x"], outputs=["bb"], output_tensors=[TensorRef("bb", 0, 1)]))
    assert [layer.path for layer in NestedGraph(model).feeding(model.layers[-1])] == ["wrap/bb/b"]


def test_resolution_through_deep_multi_output_nesting_is_memoised():
    """Each level calls the level below twice on its input and returns one
    output of each call; the innermost returns its own input as output 1.
    Resolving the top consumer branches in two at every level: without the
    memo 2**depth resolutions, with it a few per level."""
    depth = 12
    layers, containers = [Layer("x", "x", "InputLayer")], []
    for k in range(depth + 1):  # m0 innermost
        path = "/".join(f"m{j}" for j in range(depth, k - 1, -1))
        layers.append(Layer(f"i{k}", f"{path}/i{k}", "InputLayer"))
        if k == 0:
            layers.append(Layer("d", f"{path}/d", "Dense", inbound=["i0"], inbound_tensors=[TensorRef("i0")]))
            outputs = [TensorRef("d"), TensorRef("i0")]
        else:
            outputs = [TensorRef(f"m{k - 1}", 0, 1), TensorRef(f"m{k - 1}", 1, 1)]
        parent = f"i{k + 1}" if k < depth else "x"
        containers.append(Container(path, inbound=[parent], inputs=[f"i{k}"], outputs=[o.name for o in outputs],
                                    inbound_tensors=[TensorRef(parent, 0, 0), TensorRef(parent, 0, 0)],
                                    output_tensors=outputs))
    head = Layer("head", "head", "Dense", inbound=[f"m{depth}"], inbound_tensors=[TensorRef(f"m{depth}", 0, 1)])
    model = Model("deep", "keras_v3", layers=[*layers, head], containers=containers)

    calls = 0
    graph = NestedGraph(model)
    resolve = graph.local

    def counted(*args):
        nonlocal calls
        calls += 1
        return resolve(*args)

    graph.local = counted
    assert [layer.path for layer in graph.feeding(head)] == ["x"]
    assert 0 < calls <= 10 * depth
