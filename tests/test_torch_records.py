"""Checkpoints that pickle more than tensors (fixtures/torch_records, made by
fixtures/make_torch_records_fixtures.py): whole modules, argparse and numpy
objects, omegaconf configs, read as inert records, their classes never
imported; what only a program names is still refused."""

from __future__ import annotations

import json
import pickle
import shutil
import zipfile
from pathlib import Path

import pytest

from reglint.model import Role
from reglint.readers import read_model

from helpers import FIXTURES, assert_one_line_refusal, run_reglint

RECORDS = FIXTURES / "torch_records"
MANIFEST = json.loads((RECORDS / "manifest.json").read_text())["files"]



@pytest.mark.parametrize("file", sorted(MANIFEST))
def test_counts_equal_torchs(file):
    model = read_model(RECORDS / file)
    torch = MANIFEST[file]
    statistics = sum(v.size for _, v in model.variables() if v.role.is_statistic)
    # ultralytics' last.pt: its EMA copy's flags are all False and its
    # optimizer's groups hold every parameter, the DFL conv too, frozen on
    # the live model: the optimizer kept no state for it (review 43, 8), so
    # the count is the live model's
    assert (model.total_params - statistics, model.trainable_params) == (torch["params"], torch["trainable"])
    locations = {v.location for _, v in model.variables()}
    prefix = "model." if file.endswith(".ckpt") else ""
    assert {prefix + name for name in torch["parameter_names"]} <= locations
    if "optimizer" in torch:
        assert model.optimizer.class_name == torch["optimizer"]["class"]
        assert model.optimizer.weight_decay == pytest.approx(torch["optimizer"]["weight_decay"])


def test_a_pickled_module_keeps_its_classes_and_frozen_parameters():
    model = read_model(RECORDS / "whole_cnn.pt")
    assert {layer.path: layer.class_name for layer in model.layers} == {
        "stem": "Conv2d", "bn": "BatchNorm2d", "body.0": "Conv2d", "head": "Linear"}
    assert not any(v.trainable for v in next(layer for layer in model.layers if layer.path == "stem").variables)
    assert "scale" not in {v.location for _, v in model.variables()}  # a non-persistent buffer
    note = next(n for n in model.notes if "torch.save(model)" in n)
    assert "__main__.SmallNet" in note and "2 parameter tensors saved with requires_grad=False" in note


def test_an_embedding_is_known_by_its_class_whatever_its_name():
    model = read_model(RECORDS / "whole_text_tied.pt")
    tokens = next(layer for layer in model.layers if layer.path == "tokens")
    assert tokens.class_name == "Embedding" and tokens.variables[0].role is Role.EMBEDDINGS
    assert any("out.weight = tokens.weight" in n for n in model.notes)


def test_a_wrapped_modules_classes_are_found_under_the_wrapper():
    """torch.save(nn.DataParallel(model)): layers are named without
    'module.', the recorded classes with it; the Embedding was a Linear."""
    model = read_model(RECORDS / "whole_dataparallel.pt")
    tokens = next(layer for layer in model.layers if layer.path == "tokens")
    assert tokens.class_name == "Embedding" and tokens.variables[0].role is Role.EMBEDDINGS


def test_other_objects_are_named_in_one_note():
    model = read_model(RECORDS / "args_and_numpy.pt")
    note = next(n for n in model.notes if "reglint does not import" in n)
    assert "argparse.Namespace" in note and "nothing run" in note
    assert any("omegaconf.dictconfig.DictConfig" in n for n in read_model(RECORDS / "hydra_config.ckpt").notes)


def _archive(tmp_path: Path, payload: bytes) -> Path:
    path = tmp_path / "hostile.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/byteorder", "little")
    return path


@pytest.mark.parametrize(("payload", "needle"), [
    (b"\x80\x02cposix\nsystem\nX\x04\x00\x00\x00trueq\x00\x85R.", "posix.system"),
    (b"\x80\x02cbuiltins\ngetattr\n)R.", "builtins.getattr"),
    (b"\x80\x02csubprocess\nPopen\n)R.", "subprocess.Popen"),
    (b"\x80\x02ctorch.hub\nload\n)R.", "torch.hub.load"),
    (b"\x80\x02cnumpy.testing\nx\n)R.", "numpy.testing.x"),
    # gadgets that run a command or a nested pickle under torch.load(weights_only=False)
    (b"\x80\x02cpydoc\npipepager\nX\x01\x00\x00\x00aX\x04\x00\x00\x00true\x86R.", "pydoc.pipepager"),
    (b"\x80\x02ctorch.utils.collect_env\nrun\nX\x04\x00\x00\x00true\x85R.", "torch.utils.collect_env.run"),
    (b"\x80\x02ctorch\nload\n)R.", "torch.load"),
    (b"\x80\x02ctorch.storage\n_load_from_bytes\n)R.", "torch.storage._load_from_bytes"),
    (b"\x80\x02cnumpy\nload\n)R.", "numpy.load"),
    (b"\x80\x02clogging.config\nlisten\n)R.", "logging.config.listen"),
])
def test_globals_only_a_program_names_are_still_refused(tmp_path, payload, needle):
    assert_one_line_refusal(run_reglint(_archive(tmp_path, payload)), needle, "refused")


class _Module:  # pickled under this test module's name: a record, never imported by the reader
    pass


def test_a_cyclic_module_tree_is_refused_in_one_line(tmp_path):
    loop = _Module()
    loop._parameters, loop._buffers, loop._modules = {}, {}, {}
    loop._modules["again"] = loop
    path = _archive(tmp_path, pickle.dumps(loop, protocol=2))
    assert_one_line_refusal(run_reglint(path), "deeper or larger than a network's")


def test_a_pickled_modules_buffers_are_not_parameters():
    """A spectral norm's weight_u/weight_v and a positional table registered
    as a buffer: torch's parameters() counts none of them, and the optimizer
    (built from parameters()) numbers only the four parameters."""
    model = read_model(RECORDS / "whole_with_buffers.pt")
    locations = {v.location for _, v in model.variables()}
    assert not locations & {"pe", "sn.weight_u", "sn.weight_v"}
    assert (model.total_params, model.trainable_params) == (63, 63)
    assert not any("updates 4 of" in n for n in model.notes)
    assert any("3 buffers of the pickled module not counted" in n for n in model.notes)


def test_an_embedding_bag_is_a_table_whatever_its_name():
    from reglint.model import Layer, Model, Variable
    from reglint.readers.torch_checkpoint import apply_module_records
    from reglint.readers.torch_modules import ModuleStateDict

    state = ModuleStateDict()
    state.classes = {"": "__main__.Net", "bag": "torch.nn.modules.sparse.EmbeddingBag"}
    model = Model(path="m.pt", format="torch_checkpoint", framework="pytorch")
    model.layers = [Layer(name="bag", path="bag", class_name="Linear",
                          variables=[Variable("weight", Role.KERNEL, (10, 4), location="bag.weight")])]
    apply_module_records(model, state)
    assert model.layers[0].variables[0].role is Role.EMBEDDINGS


def test_an_ultralytics_last_checkpoint_reads_its_ema_model_and_optimizer_groups():
    model = read_model(RECORDS / "yolo_last.pt")
    groups = MANIFEST["yolo_last.pt"]["groups"]
    assert [g.decays for g in model.optimizer.param_groups] == [g["weight_decay"] > 0 for g in groups]
    assert [len(g.variables) for g in model.optimizer.param_groups] == [g["tensors"] for g in groups]
    assert model.optimizer.coupled_l2 == pytest.approx(groups[0]["weight_decay"] / 2)
    assert any("'ema' entry" in n for n in model.notes)
    assert any(layer.class_name == "BatchNorm2d" for layer in model.layers)


def test_a_checkpoint_stripped_for_inference_is_all_frozen_and_says_why():
    model = read_model(RECORDS / "yolo_stripped.pt")
    assert model.trainable_params == 0 and model.total_params > 0
    assert any("stripped for inference" in n for n in model.notes)


def test_fairseqs_last_optimizer_state_is_the_optimizer():
    model = read_model(RECORDS / "fairseq_layout.pt")
    assert model.optimizer is not None and model.optimizer.class_name == "Adam"
    assert model.optimizer.coupled_l2 == pytest.approx(0.005)  # torch's Adam: weight_decay 0.01 in the gradient
    assert model.metadata["optimizer_key"] == "last_optimizer_state"


def test_a_dynamic_quantized_model_pickled_whole_reads_its_packed_weights():
    # torch's parameters() counts none of a quantized Linear's weights; the
    # state dict of the same model reads at the float model's count, and so
    # does the pickled module now (before: 0 values, no note)
    model = read_model(RECORDS / "dynamic_quantized_whole.pt")
    assert MANIFEST["dynamic_quantized_whole.pt"]["quantized_parameters"] == 0
    assert {v.location for _, v in model.variables()} == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_a_pth_tar_checkpoint_is_found_in_a_folder(tmp_path):
    (tmp_path / "output").mkdir()
    shutil.copy(RECORDS / "timm_checkpoint-3.pth.tar", tmp_path / "output" / "model_best.pth.tar")
    (tmp_path / "output" / "notes.tar").write_bytes(b"not a model")  # a plain .tar is not looked at
    done = run_reglint(tmp_path, "-f", "json")
    files = json.loads(done.stdout)["files"]
    assert [Path(f["path"]).name for f in files] == ["model_best.pth.tar"]
    assert files[0]["model"]["optimizer"]["class"] == "SGD"
