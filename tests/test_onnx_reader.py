"""The ONNX reader against what the fixtures are known to hold
(fixtures/onnx/manifest.json, written by fixtures/make_onnx_fixtures.py from
the generator's own arrays, onnxruntime-training's CheckpointState and torch)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pytest

from reglint.errors import ModelReadError, UnsafeInputError
from reglint.model import Role
from reglint.readers import ReadOptions, read_model
from reglint.readers.onnx import INFERENCE_NOTE, read_onnx

from helpers import FIXTURES, ROOT

ONNX = FIXTURES / "onnx"
MANIFEST = {e["file"]: e for e in json.loads((ONNX / "manifest.json").read_text())["files"]}
READABLE = [e for e in MANIFEST.values() if "error" not in e]
BROKEN = [e for e in MANIFEST.values() if "error" in e]


def ids(entries):
    return [e["file"] for e in entries]


def read(name: str, **options):
    return read_model(ONNX / name, ReadOptions(**options))


def variables(model) -> dict:
    return {v.name: (layer, v) for layer, v in model.variables()}


def close(a, b, rel=1e-6):
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


# -- counts, layers, roles -------------------------------------------------------
@pytest.mark.parametrize("entry", READABLE, ids=ids(READABLE))
def test_counts_equal_manifest(entry):
    model = read(entry["file"])
    assert model.format == "onnx" and model.framework == "onnx"
    assert model.total_params == entry["total_params"]
    assert model.trainable_params == entry["trainable_params"]
    assert model.non_trainable_params == entry["non_trainable_params"]


LAYERED = [e for e in READABLE if e.get("layers")]


@pytest.mark.parametrize("entry", LAYERED, ids=ids(LAYERED))
def test_layers_roles_and_grouping(entry):
    model = read(entry["file"])
    assert {layer.path for layer in model.layers} == set(entry["layers"])
    for path, expected in entry["layers"].items():
        layer = model.layer(path)
        assert layer.class_name == expected["class"], path
        found = {v.name: v for v in layer.variables}
        assert set(found) == set(expected["variables"]), path
        for name, want in expected["variables"].items():
            var = found[name]
            assert var.role is Role(want["role"]), name
            assert var.size == want["size"] and list(var.shape) == want["shape"], name
            assert var.trainable is want["trainable"], name


STATS = [e for e in READABLE if e.get("stats")]


@pytest.mark.parametrize("entry", STATS, ids=ids(STATS))
def test_weight_stats_equal_numpy(entry):
    found = variables(read(entry["file"]))
    for name, want in entry["stats"].items():
        stats = found[name][1].stats
        assert stats is not None, name
        assert stats.count == want["count"] and stats.nonfinite == want["nonfinite"], name
        assert close(stats.sum_sq, want["sum_sq"]), (name, stats.sum_sq, want["sum_sq"])
        assert close(stats.sum_abs, want["sum_abs"]), name
        assert close(stats.max_abs, want["max_abs"]), name


@pytest.mark.parametrize("name", ["external/model.onnx", "mixed_dtypes.onnx", "artifacts_adamw/training_model.onnx",
                                  "sparse_initializer.onnx"])
def test_stats_do_not_depend_on_the_chunk_size(name):
    whole = variables(read(name))
    tiny = variables(read(name, chunk_bytes=8))
    for key, (_, var) in whole.items():
        small = tiny[key][1].stats
        assert small.count == var.stats.count and small.nonfinite == var.stats.nonfinite
        # float32 squares are rounded to float32 (2^-24 relative, every term positive) unless a span
        # holds NaN/inf and takes the float64 path: chunkings may differ by that much, no more.
        assert close(small.sum_sq, var.stats.sum_sq, 2**-24) and close(small.max_abs, var.stats.max_abs)


def test_weight_stats_can_be_skipped():
    model = read("external/model.onnx", weight_stats=False)
    assert model.total_params == MANIFEST["external/model.onnx"]["total_params"]
    assert all(v.stats is None for _, v in model.variables())


def test_float_dtypes_and_nonfinite_values():
    found = variables(read("mixed_dtypes.onnx"))
    for name, dtype in MANIFEST["mixed_dtypes.onnx"]["dtypes"].items():
        assert found[name][1].dtype == dtype
    assert found["l32.weight"][1].stats.nonfinite == 2


def test_mlp_graph_description():
    entry = MANIFEST["mlp.onnx"]
    model = read("mlp.onnx")
    assert model.framework_version == entry["framework_version"] == "ir 8, opset 17"
    assert model.metadata["producer"] == entry["producer"]
    for path, units in entry["units"].items():
        assert model.layer(path).units == units
    assert model.layer("fc1").activation == "relu"
    assert {p: model.layer(p).outbound for p in entry["outbound"]} == entry["outbound"]
    assert [(o.layer, o.units, o.activation) for o in model.outputs] == [("fc2", 10, "softmax")]
    assert model.optimizer is None and not model.has_regularization and not model.losses


def test_cnn_outbound_and_depthwise():
    entry = MANIFEST["cnn.onnx"]
    model = read("cnn.onnx")
    for path, outbound in entry["outbound"].items():
        assert model.layer(path).outbound == outbound, path
    for path, units in entry["units"].items():
        assert model.layer(path).units == units, path
    dw = model.layer("dw").variables[0]
    assert dw.name == "onnx::Conv_101" and dw.role is Role.DEPTHWISE_KERNEL
    bn = {v.role: v.trainable for v in model.layer("bn1").variables}
    assert bn == {Role.GAMMA: True, Role.BETA: True, Role.MOVING_MEAN: False, Role.MOVING_VARIANCE: False}


def test_tied_embedding_counted_once_and_constants_left_out():
    model = read("transformer_block.onnx")
    found = variables(model)
    layer, emb = found["tok_emb.weight"]
    assert emb.role is Role.EMBEDDINGS and layer.calls == MANIFEST["transformer_block.onnx"]["shared"]["tok_emb.weight"]
    assert sum(1 for _, v in model.variables() if v.name == "tok_emb.weight") == 1
    assert "onnx::Mul_55" not in found and "onnx::Reshape_77" not in found
    assert model.layer("attn.q_proj").units == 16 and model.layer("mlp.fc1").units == 32
    assert model.layer("attn.q_proj").outbound == []  # feeds attention arithmetic, not a normaliser


def test_subgraph_initializers_and_outer_scope_bias():
    model = read("if_subgraph.onnx")
    found = variables(model)
    assert found["then_proj.weight"][1].location.endswith("then_branch:then_proj.weight")
    assert found["else_proj.weight"][1].location.endswith("else_branch:else_proj.weight")
    layer, bias = found["else_proj.bias"]
    assert layer.path == "else_proj" and bias.role is Role.BIAS and bias.location == "else_proj.bias"
    assert [o.layer for o in model.outputs] == ["else_proj"]


def test_old_ir_version_with_initializers_as_inputs():
    model = read("old_ir3.onnx")
    assert model.framework_version == "ir 3, opset 7"
    assert sum(1 for _ in model.variables()) == 6  # inputs repeating initializers are not counted twice


def test_torch_export_grouped_like_torch_modules():
    entry = MANIFEST["torch_train_mode.onnx"]
    model = read("torch_train_mode.onnx")
    assert {layer.path: layer.params for layer in model.layers} == {k: v["params"] for k, v in
                                                                   entry["torch_layers"].items()}
    assert model.metadata["producer"] == entry["producer"]
    assert model.layer("layer1.1").class_name == "BatchNormalization"


def test_anonymous_initializers_grouped_by_node_scope():
    entry = MANIFEST["torch_eval_folded.onnx"]
    model = read("torch_eval_folded.onnx")
    assert [layer.path for layer in model.layers] == ["conv1", "layer1.0", "fc"]
    names = {v.name for _, v in model.variables()}
    assert names == set(entry["initializer_names"]) and any(n.startswith("onnx::Conv_") for n in names)
    assert model.layer("conv1").variables[1].role is Role.BIAS


# -- regularization ----------------------------------------------------------------
NOTED = [e for e in READABLE if e.get("notes_contain")]


@pytest.mark.parametrize("entry", NOTED, ids=ids(NOTED))
def test_inference_graphs_say_they_carry_no_regularization(entry):
    model = read(entry["file"])
    assert entry["notes_contain"] == [INFERENCE_NOTE]
    assert INFERENCE_NOTE in model.notes
    assert model.optimizer is None and not model.has_regularization


PENALISED = [e for e in READABLE if e.get("regularizers")]


@pytest.mark.parametrize("entry", PENALISED, ids=ids(PENALISED))
def test_explicit_penalties_recognised_with_their_lambda(entry):
    model = read(entry["file"])
    found = variables(model)
    for name, (_, var) in found.items():
        want = entry["regularizers"].get(name)
        if want is None:
            assert var.regularizer is None, name
            continue
        reg = var.regularizer
        assert reg is not None and reg.kind == want["kind"], name
        if want["kind"] != "custom":
            assert close(reg.l1, want["l1"], 1e-5) and close(reg.l2, want["l2"], 1e-5), (name, reg)
    assert any(note.startswith("penalty recognised on") for note in model.notes)


def test_penalty_scaled_by_a_graph_input_is_custom():
    reg = variables(read("train_penalties_mixed.onnx"))["e.weight"][1].regularizer
    assert reg.kind == "custom" and reg.config["terms"][0]["non_constant_factor"] == "lam"


LOSSES = [e for e in READABLE if "losses" in e]


@pytest.mark.parametrize("entry", LOSSES, ids=ids(LOSSES))
def test_training_losses(entry):
    model = read(entry["file"])
    assert [loss.name for loss in model.losses] == [want["name"] for want in entry["losses"]]
    for loss, want in zip(model.losses, entry["losses"], strict=True):
        if "from_logits" in want:
            assert loss.from_logits is want["from_logits"]
        assert loss.output is not None


OPTIMIZED = [e for e in READABLE if e.get("optimizer")]


@pytest.mark.parametrize("entry", OPTIMIZED, ids=ids(OPTIMIZED))
def test_optimizer_settings(entry):
    opt = read(entry["file"]).optimizer
    assert opt is not None
    for key, want in entry["optimizer"].items():
        if key == "learning_rate":
            got = opt.learning_rate.initial if opt.learning_rate else None
        elif key in ("adam_mode", "norm_coefficient_post"):
            got = opt.config[key]
        else:
            got = getattr(opt, key)
        if isinstance(want, float):
            assert got is not None and close(got, want, 1e-6), (key, got, want)
        else:
            assert got == want, (key, got, want)


def test_ort_artifacts_read_from_checkpoint_and_optimizer_model():
    entry = MANIFEST["artifacts_adamw/training_model.onnx"]
    model = read("artifacts_adamw/training_model.onnx")
    found = variables(model)
    assert sorted(n for n, (_, v) in found.items() if v.trainable) == entry["trainable_names"]
    assert sorted(n for n, (_, v) in found.items() if not v.trainable) == entry["frozen_names"] == ["fc2.bias"]
    opt = model.optimizer
    assert opt.class_name == "AdamW" and opt.family == "adaptive"
    assert close(opt.weight_decay, 0.01) and opt.coupled_l2 is None and opt.exclude_from_weight_decay == []
    assert close(opt.learning_rate.initial, 0.002) and opt.iterations == 3
    assert not model.has_regularization
    assert [o.layer for o in model.outputs] == ["fc2"] and model.outputs[0].units == 4


def test_ort_optimizer_model_alone():
    model = read("artifacts_adamw/optimizer_model.onnx")
    assert model.layers == [] and close(model.optimizer.weight_decay, 0.01)
    assert any("optimizer model" in note for note in model.notes)


def test_ort_sgd_without_optimizer_state_says_lr_is_unknown():
    model = read("artifacts_sgd_l2/training_model.onnx")
    assert model.optimizer.class_name == "SGD" and model.optimizer.learning_rate is None
    assert any("learning rate is set at run time" in note for note in model.notes)


def test_corrupt_checkpoint_is_a_note_not_a_crash(tmp_path):
    folder = tmp_path / "artifacts"
    shutil.copytree(ONNX / "artifacts_adamw", folder)
    data = bytearray((folder / "checkpoint").read_bytes())
    data[0:4] = (len(data) + 1000).to_bytes(4, "little")  # root table offset past the end
    (folder / "checkpoint").write_bytes(bytes(data))
    model = read_model(folder / "training_model.onnx")
    assert any("checkpoint 'checkpoint' unreadable" in note for note in model.notes)
    # Without the checkpoint only the parameters with gradients are known.
    assert model.trainable_params == MANIFEST["artifacts_adamw/training_model.onnx"]["trainable_params"]
    assert close(model.optimizer.weight_decay, 0.01)


def test_preview_training_momentum_trainable_from_training_info():
    model = read("train_momentum.onnx")
    found = variables(model)
    assert found["fc2.bias"][1].trainable is False and found["fc1.weight"][1].trainable is True
    assert not any(name.endswith("velocity") for name in found)  # optimizer state is not a parameter
    assert model.optimizer.family == "sgd" and close(model.optimizer.coupled_l2, 1e-4 / 2)


def test_preview_adam_norm_coefficient_post_converted():
    opt = read("train_adam_post.onnx").optimizer
    assert close(opt.coupled_l2, 0.002 / 2, 1e-6) and close(opt.weight_decay, 1e-5 / 1e-3, 1e-5)
    assert close(opt.config["norm_coefficient_post"], 1e-5)


# -- refusals and broken files ---------------------------------------------------------
@pytest.mark.parametrize("entry", BROKEN, ids=ids(BROKEN))
def test_broken_and_hostile_files_raise_one_line_errors(entry):
    with pytest.raises(ModelReadError) as info:
        read(entry["file"])
    message = str(info.value)
    assert "\n" not in message and 0 < len(message) <= 400
    assert entry["error_contains"] in message
    if entry["error"] == "UnsafeInputError":
        assert isinstance(info.value, UnsafeInputError)
    else:
        assert not isinstance(info.value, UnsafeInputError)


def test_hostile_locations_refused_even_without_weight_stats():
    for name in ("external/hostile_parent.onnx", "external/hostile_absolute.onnx", "external/hostile_symlink.onnx"):
        with pytest.raises(UnsafeInputError):
            read(name, weight_stats=False)


def _relocated(tmp_path, location: str):
    """external/model.onnx copied to tmp_path with its first tensor's data
    location rewritten (the data file copied beside it)."""
    onnx = pytest.importorskip("onnx")
    shutil.copy(ONNX / "external" / "weights.bin", tmp_path / "weights.bin")
    proto = onnx.load(str(ONNX / "external" / "model.onnx"), load_external_data=False)
    for entry in proto.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    onnx.save(proto, str(tmp_path / "model.onnx"))
    return tmp_path / "model.onnx"


@pytest.mark.parametrize("location", ["sub/../weights.bin", "./../weights.bin", "C:\\weights.bin",
                                      "\\\\server\\share\\weights.bin", "..\\weights.bin"])
def test_parent_and_absolute_locations_refused_even_when_they_land_inside(tmp_path, location):
    (tmp_path / "sub").mkdir()
    with pytest.raises(UnsafeInputError, match="outside the model's folder"):
        read_model(_relocated(tmp_path, location))


def test_symlink_staying_inside_the_folder_is_followed(tmp_path):
    path = _relocated(tmp_path, "link.bin")
    (tmp_path / "link.bin").symlink_to("weights.bin")
    assert read_model(path).total_params == MANIFEST["external/model.onnx"]["total_params"]


def test_checkpoint_passed_as_a_model():
    with pytest.raises(ModelReadError, match="checkpoint, not a model"):
        read_onnx(ONNX / "artifacts_adamw" / "checkpoint", ReadOptions())


def test_reader_never_imports_onnxruntime():
    code = ("import sys; from reglint.readers import read_model; "
            f"read_model({str(ONNX / 'artifacts_adamw' / 'training_model.onnx')!r}); "
            "print('onnxruntime' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "False"


# -- the fixtures are real models -----------------------------------------------------
RUNNABLE = [e["file"] for e in READABLE if not e["file"].startswith("artifacts_")
            and e["file"] != "train_adam_post.onnx"]  # preview-training Adam has no onnxruntime kernel


@pytest.mark.parametrize("name", RUNNABLE)
def test_fixture_runs_in_onnxruntime(name):
    ort = pytest.importorskip("onnxruntime")
    np = pytest.importorskip("numpy")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(ONNX / name), options, providers=["CPUExecutionProvider"])
    feeds = {}
    for item in session.get_inputs():
        shape = [d if isinstance(d, int) else 2 for d in item.shape]
        if "int64" in item.type:
            feeds[item.name] = np.zeros(shape, np.int64)
        elif "bool" in item.type:
            feeds[item.name] = np.array(True)
        else:
            feeds[item.name] = np.ones(shape, np.float32)
    assert session.run(None, feeds)


def test_fixtures_stay_small():
    total = sum(f.stat().st_size for f in ONNX.rglob("*") if f.is_file() and not f.is_symlink())
    assert total < 2_000_000


def _graph_with(op_type: str, tmp_path):
    """A MatMul-like graph with a 64x64 float32 initializer (16 KiB, over the
    checker stub's 1 KiB), saved with embedded weights."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    weight = numpy_helper.from_array(np.full((64, 64), 0.5, np.float32), "w")
    node = helper.make_node(op_type, ["x", "w"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 64])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return path, model


def test_checker_sees_a_stub_of_large_initializers(tmp_path):
    from reglint.readers.onnx.load import checker_stub

    path, model = _graph_with("MatMul", tmp_path)
    stub = checker_stub(model)
    assert stub.ByteSize() < 1024 < model.ByteSize()
    assert [list(t.dims) for t in stub.graph.initializer] == [[1, 1]]
    assert list(stub.graph.node) == list(model.graph.node) and stub.opset_import == model.opset_import
    read_model(path)  # a valid model: no checker note
    assert not [n for n in read_model(path).notes if "onnx.checker" in n]


def test_checker_still_rejects_a_bad_graph_behind_the_stub(tmp_path):
    path, _ = _graph_with("NoSuchOp", tmp_path)
    notes = [n for n in read_model(path).notes if "onnx.checker" in n]
    assert notes and "NoSuchOp" in notes[0]
    assert variables(read_model(path))["w"][1].stats.sum_sq == pytest.approx(64 * 64 * 0.25)


def test_the_reader_package_has_no_import_cycle_and_no_long_module():
    """readers/onnx/ is split by job (issue 14): each module under the
    project's 800-line limit, and no cycle among them, imports inside
    functions included (a package's __init__ importing its own reader is
    the one edge into it)."""
    import ast

    package = ROOT / "src" / "reglint" / "readers" / "onnx"
    names = {path.stem for path in package.glob("*.py")} - {"__init__"}
    assert {"load", "graph", "roles", "ort_checkpoint", "optimizer", "penalties", "stats", "reader"} <= names
    edges: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        source = path.read_text()
        assert len(source.splitlines()) <= 800, path.name
        found = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("reglint.readers.onnx."):
                found.add(node.module.rsplit(".", 1)[1])
            elif isinstance(node, ast.ImportFrom) and node.module == "reglint.readers.onnx":
                found.add("__init__")
            elif isinstance(node, ast.Import):
                found |= {a.name.rsplit(".", 1)[1] for a in node.names if a.name.startswith("reglint.readers.onnx.")}
        edges[path.stem] = found
    assert not any("__init__" in found for found in edges.values()), edges

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in edges[start])

    cycles = [name for name in edges if reaches(name, name, {name})]
    assert not cycles, {name: sorted(edges[name]) for name in cycles}


@pytest.mark.parametrize(("copy_name", "expected"), [("onnx::MatMul_7", 6), ("head.weight", 12)])
def test_a_transposed_copy_is_one_parameter_only_when_the_exporter_named_it(tmp_path, copy_name, expected):
    """A folded Transpose(W) (an exporter-made name) is the tied parameter W
    again; two parameters the model names stay two, even when one is the
    other's exact transpose."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    table = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["embed.weight", "ids"], ["h"]),
         helper.make_node("MatMul", ["h", copy_name], ["logits"])],
        "tied", [helper.make_tensor_value_info("ids", TensorProto.INT64, [4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [4, 2])],
        [numpy_helper.from_array(table, "embed.weight"), numpy_helper.from_array(table.T.copy(), copy_name)])
    path = tmp_path / "tied.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert read_model(path).total_params == expected


@pytest.mark.parametrize(("centred", "expected"), [(True, "LayerNormalization"), (False, "RMSNormalization")])
def test_a_normalization_written_as_ops_is_named_by_what_it_computes(tmp_path, centred, expected):
    """``gamma * (x - mean) / Sqrt(var + eps)`` is a LayerNorm and
    ``gamma * x / Sqrt(mean(x^2) + eps)`` an RMSNorm, written as ops (an
    exporter below opset 17, or tf2onnx): the layer the gamma makes is
    named so, and gamma is its scale."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("ReduceMean", ["x"], ["mean"], axes=[-1])]
    centre = "x"
    if centred:
        nodes.append(helper.make_node("Sub", ["x", "mean"], ["xc"]))
        centre = "xc"
    nodes += [helper.make_node("Mul", [centre, centre], ["sq"]),
              helper.make_node("ReduceMean", ["sq"], ["var"], axes=[-1]),
              helper.make_node("Add", ["var", "eps"], ["var_eps"]),
              helper.make_node("Sqrt", ["var_eps"], ["std"]),
              helper.make_node("Div", [centre, "std"], ["normed"]),
              helper.make_node("Mul", ["normed", "norm.weight"], ["y"])]
    graph = helper.make_graph(
        nodes, "norm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        [numpy_helper.from_array(np.array(1e-5, dtype=np.float32), "eps"),
         numpy_helper.from_array(np.linspace(0.5, 1.5, 4).astype(np.float32), "norm.weight")])
    path = tmp_path / "norm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    [layer] = read_model(path).layers
    assert layer.class_name == expected and [v.role for v in layer.variables] == [Role.GAMMA]
