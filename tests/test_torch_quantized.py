"""Models quantized by PyTorch's torch.ao.quantization (``quantize_dynamic``;
static ``prepare``/``convert``), as ``torch.save(state_dict)`` and as
TorchScript: ``_rebuild_qtensor`` records read as data, each weight counted
as the float parameter it stands for (before: refused, exit 2)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from reglint.errors import ModelReadError
from reglint.model import Role
from reglint.readers import read_model

TORCH = Path(__file__).resolve().parents[1] / "fixtures" / "torch"
MANIFEST = {e["file"]: e for e in json.loads((TORCH / "manifest.json").read_text())["files"]}
TORCHAO = sorted(name for name in MANIFEST if name.startswith("torchao/"))


def test_the_fixtures_are_there():
    assert len(TORCHAO) == 4


@pytest.mark.parametrize("name", TORCHAO)
def test_quantized_weights_are_the_float_parameters(name):
    """The float model's count and names; torch's dequantize() for the
    statistics; the modules' scale and zero_point not counted."""
    entry = MANIFEST[name]
    model = read_model(TORCH / name)
    assert model.total_params == entry["float_parameters"]
    variables = {v.location: v for _, v in model.variables()}
    assert sorted(variables) == sorted(entry["parameter_names"])
    for location, want in entry["quantized_sum_sq"].items():
        assert variables[location].stats.sum_sq == pytest.approx(want, rel=1e-6), location
        assert variables[location].role is Role.KERNEL
    scheme = "per-channel" if "static" in name else "per-tensor"
    assert any("PyTorch quantization (torch.ao)" in note and f"{scheme} affine qint8" in note
               for note in model.notes)


def _patched(tmp_path: Path, name: str, old: bytes, new: bytes, member: str = "data.pkl") -> Path:
    """The fixture with the first ``old`` in one member replaced by ``new``."""
    target = tmp_path / Path(name).name
    with zipfile.ZipFile(TORCH / name) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("/" + member):
                assert old in data
                data = data.replace(old, new, 1) if new is not None else data[: len(data) // 2]
            zout.writestr(info.filename, data)
    return target


HOSTILE = [
    # the per-tensor quantizer (scheme, scale, 0) built as (scale, 0): the scheme lands outside it
    ("torchao/dynamic_mlp_state_dict.pt", b"K\x00\x87", b"K\x00\x86", "data.pkl", "quantizer"),
    # the first weight's QInt8Storage declared 16 values for an 8x8 tensor
    ("torchao/dynamic_mlp_state_dict.pt", b"K@t", b"K\x10t", "data.pkl", "out of range"),
    # a per-channel quantizer along axis 7 of a 4-d weight
    ("torchao/static_cnn_state_dict.pt", b"K\x00t", b"K\x07t", "data.pkl", "quantizer"),
    # a scheme reglint does not read, by name
    ("torchao/dynamic_mlp_scripted.pt", b"per_tensor_affine", b"per_tensor_symmetr", "data.pkl", "refused"),
    # the codes' member cut short
    ("torchao/static_cnn_state_dict.pt", b"", None, "data/2", "storage 2"),
]


@pytest.mark.parametrize(("name", "old", "new", "member", "said"), HOSTILE)
def test_hostile_quantized_records_are_one_line_errors(tmp_path, name, old, new, member, said):
    path = _patched(tmp_path, name, old, new, member)
    with pytest.raises(ModelReadError, match=said):
        read_model(path)


def test_hostile_quantizer_from_the_command_line(tmp_path):
    path = _patched(tmp_path, "torchao/dynamic_mlp_state_dict.pt", b"K\x00\x87", b"K\x00\x86")
    done = subprocess.run([sys.executable, "-m", "reglint", "check", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------
# quantizer constants no quantization writes (review19): refused, not dequantized
# ---------------------------------------------------------------------------
def _long1(value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _with_member(tmp_path: Path, name: str, member: str, data: bytes) -> Path:
    target = tmp_path / Path(name).name
    with zipfile.ZipFile(TORCH / name) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, data if info.filename.endswith("/" + member) else zin.read(info.filename))
    return target


def _per_tensor_scale(tmp_path: Path, scale: float) -> Path:
    """dynamic_mlp_state_dict.pt with its first per-tensor scale replaced."""
    name = "torchao/dynamic_mlp_state_dict.pt"
    with zipfile.ZipFile(TORCH / name) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    at = data.index(b"K\x00\x87")
    assert data[at - 9:at - 8] == b"G"  # BINFLOAT scale, BININT1 0, TUPLE3
    return _with_member(tmp_path, name, "data.pkl", data[:at - 8] + struct.pack(">d", scale) + data[at:])


@pytest.mark.parametrize("zero_point", [10**400, 10**30, 128, -129])
def test_a_per_tensor_zero_point_outside_qint8_is_refused(tmp_path, zero_point):
    """Before: 10**400 ended as 'unreadable model (OverflowError ...)' and
    10**30 or 128 were dequantized as if torch could have written them."""
    path = _patched(tmp_path, "torchao/dynamic_mlp_state_dict.pt", b"K\x00\x87", _long1(zero_point) + b"\x87")
    with pytest.raises(ModelReadError, match="zero point"):
        read_model(path)


@pytest.mark.parametrize("scale", [0.0, -0.5, float("inf"), float("nan")])
def test_a_per_tensor_scale_that_is_not_positive_is_refused(tmp_path, scale):
    """Before: a zero or negative scale was read, every weight dequantized to
    0 (or negated) and linted as such."""
    with pytest.raises(ModelReadError, match="scale"):
        read_model(_per_tensor_scale(tmp_path, scale))


@pytest.mark.parametrize(("member", "data", "said"), [
    ("3", struct.pack("<4d", 0.1, float("nan"), 0.1, 0.1), "scale"),
    ("3", struct.pack("<4d", 0.1, 0.0, 0.1, 0.1), "scale"),
    ("4", struct.pack("<4q", 0, 0, 1000, 0), "zero point"),
])
def test_per_channel_constants_no_quantization_writes_are_refused(tmp_path, member, data, said):
    """static_cnn_state_dict.pt's conv weight: its per-channel scales (data/3,
    4 float64) and zero points (data/4, 4 int64). Before: a NaN scale made
    a channel NaN, a zero point of 1000 shifted one by 1000 steps, linted as
    the model's own weights."""
    path = _with_member(tmp_path, "torchao/static_cnn_state_dict.pt", member, data)
    with pytest.raises(ModelReadError, match=said):
        read_model(path)


@pytest.mark.parametrize("name", ["torchao/static_cnn_state_dict.pt", "torchao/dynamic_mlp_state_dict.pt"])
def test_dequantized_statistics_are_read_a_chunk_at_a_time(name, monkeypatch):
    """Codes were read a block of whole rows at a time, at least one row:
    a [1, 2**31] weight asked for 2 GiB of codes and 16 GiB of float64 at
    once. Now no read is over ``chunk_bytes``, and the statistics are the
    same (torch's dequantize())."""
    from reglint.readers.limits import ReadOptions
    from reglint.readers.torch_zip import TorchArchive

    asked: list[int] = []
    original = TorchArchive.stored_bytes

    def stored_bytes(self, tensor, start, stop):
        if tensor.dtype == "qint8":  # the codes (the constants are read whole, up to MAX_CONSTANT_VALUES)
            asked.append(stop - start)
        return original(self, tensor, start, stop)

    monkeypatch.setattr(TorchArchive, "stored_bytes", stored_bytes)
    model = read_model(TORCH / name, ReadOptions(chunk_bytes=16))
    variables = {v.location: v for _, v in model.variables()}
    for location, want in MANIFEST[name]["quantized_sum_sq"].items():
        assert variables[location].stats.sum_sq == pytest.approx(want, rel=1e-6), location
    assert asked and max(asked) <= 16


def test_per_channel_dequantization_along_an_inner_axis():
    """axis 1 of a [2, 3, 2] tensor, read in chunks that cut across rows:
    each value scaled by its own channel's constants."""
    import numpy as np

    from reglint.readers import torch_ao
    from reglint.readers.torch_pickle import QTensorRef, Quantizer, StorageRef

    codes = np.arange(-6, 6, dtype=np.int8).reshape(2, 3, 2)
    scales, zero_points = np.array([0.5, 1.0, 2.0]), np.array([1, 0, -1])

    class Archive:
        class options:
            chunk_bytes = 40  # 5 values a chunk

        @staticmethod
        def stored_bytes(ref, start, stop):
            return np.frombuffer(codes.tobytes(), dtype=np.uint8)[start:stop]

        @staticmethod
        def values(ref):
            return scales if ref.dtype == "float64" else zero_points

    def ref(dtype, shape):
        return QTensorRef(StorageRef("0", dtype, 12, "cpu"), 0, shape, (1,) * len(shape), dtype)

    quantizer = Quantizer("per_channel_affine", ref("float64", (3,)), ref("int64", (3,)), axis=1)
    tensor = QTensorRef(StorageRef("1", "qint8", 12, "cpu"), 0, (2, 3, 2), (6, 2, 1), "qint8", quantizer=quantizer)
    want = (codes - zero_points[None, :, None]) * scales[None, :, None]
    stats = torch_ao.dequantized_stats(Archive, tensor)
    assert stats.sum_sq == pytest.approx(float((want ** 2).sum()))
    assert stats.max_abs == pytest.approx(float(np.abs(want).max()))


def test_a_learned_scale_beside_quantized_weights_stays_a_parameter(tmp_path):
    """A float module's own ``scale`` (an RMSNorm's [8], left float by
    quantize_dynamic) in a state dict with quantized Linears. Before: every
    ``*.scale`` entry was dropped as a quantized module's output scale, the
    8 trained values uncounted. Those are 0-d or [1]; this one stays."""
    name = "torchao/dynamic_mlp_state_dict.pt"
    with zipfile.ZipFile(TORCH / name) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    old = b"X\x07\x00\x00\x000.scaleq\x02"
    record = b"K\x01tq\x08QK\x00))"  # FloatStorage of 1, offset 0, size (), stride ()
    assert data.startswith(old, 34) and record in data
    data = data.replace(old, b"X\x07\x00\x00\x00n.scaleq\x02", 1)
    data = data.replace(record, b"K\x08tq\x08QK\x00K\x08\x85K\x01\x85", 1)  # 8 values, size (8,), stride (1,)
    path = _with_member(tmp_path, name, "data.pkl", data)
    with zipfile.ZipFile(path) as zin:
        members = {i.filename: zin.read(i.filename) for i in zin.infolist()}
    [storage] = [n for n in members if n.endswith("/data/0")]
    members[storage] = struct.pack("<8f", *[1.5] * 8)
    with zipfile.ZipFile(path, "w") as zout:
        for member, content in members.items():
            zout.writestr(member, content)
    model = read_model(path)
    variables = {v.location: v for _, v in model.variables()}
    assert variables["n.scale"].size == 8
    assert model.total_params == MANIFEST[name]["float_parameters"] + 8
