"""TorchScript archives (torch.jit.script / torch.jit.trace, then .save) read
without torch and without running their code or their pickle.

Before: every one was refused, exit 2 ("TorchScript archive ... it holds
code"). Expected numbers come from fixtures/torch/manifest.json, written by
fixtures/make_torch_fixtures.py (``--only torchscript``) from torch's own
``named_parameters()`` and buffers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from reglint.model import Role
from reglint.readers import read_model
from reglint.readers.torchscript import NOTE, parse_code

from helpers import assert_one_line_refusal

ROOT = Path(__file__).resolve().parents[1]
TORCH = ROOT / "fixtures" / "torch"
MANIFEST = {e["file"]: e for e in json.loads((TORCH / "manifest.json").read_text())["files"]}
SCRIPTS = sorted(name for name in MANIFEST if name.startswith("torchscript_"))
PWNED = Path("/tmp/reglint_torchscript_pwned")


def run(*args):
    return subprocess.run([sys.executable, "-m", "reglint", *args], capture_output=True, text=True, timeout=120)


def trainable(model):
    return {v.location: v for _, v in model.variables() if v.trainable}


def test_the_fixtures_are_there():
    assert len(SCRIPTS) == 6 and {MANIFEST[n]["kind"] for n in SCRIPTS} == {"TorchScript scripted",
                                                                          "TorchScript traced"}
    for name in SCRIPTS:
        with zipfile.ZipFile(TORCH / name) as archive:
            names = archive.namelist()
        assert any("/code/__torch__/" in n for n in names) and any(n.endswith("/constants.pkl") for n in names)


@pytest.mark.parametrize("name", SCRIPTS)
def test_parameters_are_torchs(name):
    entry = MANIFEST[name]
    model = read_model(TORCH / name)
    params = trainable(model)
    assert list(params) == entry["parameter_names"]  # names and order of named_parameters()
    assert model.trainable_params == entry["parameters"] == sum(v.size for v in params.values())
    buffers = [v for _, v in model.variables() if not v.trainable]  # running statistics and declared buffers
    assert sum(v.size for v in buffers) == entry["float_buffers"]
    for location, want in entry["sum_sq"].items():
        assert params[location].stats.sum_sq == pytest.approx(want, rel=1e-6, abs=1e-12), location
    assert model.format == "torchscript" and model.framework == "pytorch" and NOTE in model.notes


def test_batchnorm_statistics_are_not_trainable():
    cnn = {v.location: v for _, v in read_model(TORCH / "torchscript_cnn_scripted.pt").variables()}
    assert cnn["bn1.running_mean"].role is Role.MOVING_MEAN and not cnn["bn1.running_mean"].trainable
    assert cnn["bn1.running_var"].role is Role.MOVING_VARIANCE and not cnn["bn1.running_var"].trainable
    assert cnn["bn1.weight"].role is Role.GAMMA and cnn["bn1.weight"].trainable
    assert "bn1.num_batches_tracked" not in cnn and "conv2.bias" not in cnn  # an int64 buffer; bias=False


@pytest.mark.parametrize("stem", ["cnn", "text", "containers"])
def test_scripted_and_traced_read_alike(stem):
    scripted, traced = (read_model(TORCH / f"torchscript_{stem}_{how}.pt") for how in ("scripted", "traced"))
    assert [(layer.path, layer.class_name) for layer in scripted.layers] == \
        [(layer.path, layer.class_name) for layer in traced.layers]


def test_roles_are_those_of_the_state_dict():
    text = {v.location: v.role for _, v in read_model(TORCH / "torchscript_text_scripted.pt").variables()}
    assert text["embed.weight"] is Role.EMBEDDINGS and text["norm.weight"] is Role.GAMMA
    assert text["hidden.weight"] is Role.KERNEL and text["out.bias"] is Role.BIAS


def test_the_cli_reads_a_scripted_archive():
    done = run("check", str(TORCH / "torchscript_cnn_scripted.pt"), "--no-cache", "--format", "json")
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    assert NOTE in json.dumps(report)
    assert "Traceback" not in done.stderr


def rewrite(source: Path, target: Path, keep=lambda name: True, replace=None) -> Path:
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            if keep(info.filename):
                data = zin.read(info.filename)
                zout.writestr(info.filename, (replace or {}).get(info.filename.split("/", 1)[1], data))
    return target


def test_without_its_code_the_state_dict_conventions_hold(tmp_path):
    """The code members dropped: every tensor passed on as a state dict's
    entry would be, the same counts, and a note says so."""
    name = "torchscript_cnn_traced.pt"
    target = rewrite(TORCH / name, tmp_path / "nocode.pt", keep=lambda n: "/code/" not in n)
    model = read_model(target)
    assert model.trainable_params == MANIFEST[name]["parameters"]
    assert any("no readable __parameters__" in note for note in model.notes)


def test_tensor_attributes_not_declared_are_not_parameters(tmp_path):
    """A class whose source declares only ``weight``: its ``bias`` tensor is
    some other attribute, not a parameter."""
    name = "torchscript_text_scripted.pt"
    with zipfile.ZipFile(TORCH / name) as archive:
        member = next(n for n in archive.namelist() if "/torch/nn/modules/linear" in n and n.endswith(".py"))
        code = archive.read(member).decode()
    stripped = code.replace('__parameters__ = ["weight", "bias", ]', '__parameters__ = ["weight", ]')
    assert stripped != code
    target = rewrite(TORCH / name, tmp_path / "undeclared.pt", replace={member.split("/", 1)[1]: stripped.encode()})
    params = trainable(read_model(target))
    dropped = set(MANIFEST[name]["parameter_names"]) - set(params)
    assert len(dropped) == 1 and dropped.pop().endswith(".bias")


def test_parse_code_is_a_regex_over_text():
    code = ('class A(Module):\n  __parameters__ = ["w", ]\n  __buffers__ = ["running_mean", ]\n'
            '  def forward(self):\n    __import__("os").system("x")\n'
            'class B(Module):\n  x : int\n')
    assert parse_code(code) == {"A": {"__parameters__": {"w"}, "__buffers__": {"running_mean"}}, "B": None}
    assert parse_code("  __parameters__ = [" + "a" * 2_000_000) == {}


# ---------------------------------------------------------------------------
# hostile
# ---------------------------------------------------------------------------
def script_like_pickle(command: str) -> bytes:
    """A TorchScript module record whose attribute is ``os.system(command)``:
    ``__torch__.Model()`` built with ``{"weight": os.system(command)}``."""
    cmd = command.encode()
    return (b"\x80\x02c__torch__\nModel\n)\x81}X\x06\x00\x00\x00weight"  # GLOBAL, EMPTY_TUPLE, NEWOBJ, dict
            b"cos\nsystem\nX" + len(cmd).to_bytes(4, "little") + cmd +
            b"\x85Rsb.")  # TUPLE1, REDUCE, SETITEM, BUILD, STOP


def hostile_archive(path: Path, data_pkl: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/data.pkl", data_pkl)
        archive.writestr("model/code/__torch__/Model.py", "class Model(Module):\n  __parameters__ = []\n")
        archive.writestr("model/constants.pkl", b"\x80\x02).")
        archive.writestr("model/version", "3\n")
        archive.writestr("model/byteorder", "little")
    return path


def test_a_torchscript_archive_naming_os_system_is_refused(tmp_path):
    PWNED.unlink(missing_ok=True)
    target = hostile_archive(tmp_path / "hostile.pt", script_like_pickle(f"touch {PWNED}"))
    assert_one_line_refusal(run("check", str(target), "--no-cache"), "os.system", "refused")
    assert not PWNED.exists()


@pytest.mark.parametrize(("data_pkl", "needle"), [
    (b"\x80\x02}q\x00.", "no compiled module"),  # a torch.save dict beside code/: not a module tree
    (b"\x80\x02c__torch__.os\nsystem\n)\x81}b.", "without parameters"),  # records only: nothing called
    (b"\x80\x02ctorch.jit._pickle\nbuild_tensor_from_id\n.", "torch.jit._pickle.build_tensor_from_id"),
    (b"\x80\x02c__torch__\n__import__('os')\n.", "__torch__.__import__"),
])
def test_other_hostile_torchscript_archives(tmp_path, data_pkl, needle):
    target = hostile_archive(tmp_path / "hostile.pt", data_pkl)
    assert_one_line_refusal(run("check", str(target), "--no-cache"), needle)


def test_os_system_in_a_torch_save_archive_is_still_refused():
    done = run("check", str(TORCH / "os_system.pt"), "--no-cache")
    assert_one_line_refusal(done, "os.system", "refused")


def test_containers_ties_and_a_models_own_buffer():
    """A ModuleList and a ModuleDict name their children as named_parameters()
    does (``blocks.0.ln``, ``heads.a``), the head tied to the embedding is
    counted once, and the model's own ``scale`` buffer (declared in
    ``__buffers__``, not a BatchNorm statistic) is not trained: before, it
    counted as 16 trainable values more than torch."""
    model = read_model(TORCH / "torchscript_containers_scripted.pt")
    assert [layer.path for layer in model.layers] == [
        "scale", "emb", "blocks.0.ln", "blocks.0.fc", "blocks.1.ln", "blocks.1.fc", "blocks.2.ln", "blocks.2.fc",
        "heads.a", "heads.b"]
    [scale] = [v for _, v in model.variables() if v.location == "scale"]
    expected = MANIFEST["torchscript_containers_scripted.pt"]["parameters"]
    assert not scale.trainable and model.trainable_params == expected
    assert any(n.startswith("tied weights counted once: lm.weight = emb.weight") for n in model.notes)


def test_a_class_name_the_file_makes_long_is_cut_short(tmp_path):
    """``__torch__.<100,000 letters>.Model``: before, the note on undeclared
    classes and the ``torchscript_class`` metadata carried the whole name
    (a 100 kB note). Names the file gives are cut to a line."""
    module = b"__torch__." + b"a" * 100_000
    tensor = (b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
              b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x04\x85K\x01\x85\x89"
              b"ccollections\nOrderedDict\n)RtR")
    data_pkl = b"\x80\x02c" + module + b"\nModel\n)\x81}X\x06\x00\x00\x00weight" + tensor + b"sb."
    target = hostile_archive(tmp_path / "long.pt", data_pkl)
    with zipfile.ZipFile(target, "a") as archive:
        archive.writestr("model/data/0", b"\x00\x00\x80?" * 4)
    model = read_model(target)
    assert model.trainable_params == 4
    assert max(len(n) for n in model.notes) < 400
    assert len(model.metadata["torchscript_class"]) < 200
