"""The one-pass HDF5 index the .keras reader walks (readers/h5_index.py)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from reglint.errors import ModelReadError, UnsafeInputError
from reglint.readers.h5_index import DATASET, GROUP, H5Index
from reglint.readers.tensor_stats import keras_dtype_attr


def _write(path, build):
    with h5py.File(path, "w") as f:
        build(f)
    return h5py.File(path, "r")


def test_children_kinds_and_tensor(tmp_path):
    def build(f):
        f["layers/dense/vars/1"] = np.zeros(4, "float32")
        f["layers/dense/vars/0"] = np.ones((3, 4), "float32")
        f.create_group("layers/dense/empty")
        f["layers/dense/vars/0"].attrs["dtype"] = "bfloat16"

    with _write(tmp_path / "w.h5", build) as f:
        index = H5Index(f)
        assert index.children("layers/dense") == [("empty", GROUP), ("vars", GROUP)]
        assert index.children("/layers/dense/vars/") == [("0", DATASET), ("1", DATASET)]
        assert index.kind("layers/dense/vars/0") == DATASET
        assert index.kind("layers/missing") is None
        kernel = index.tensor("layers/dense/vars/0")
        assert (kernel.name, kernel.shape, kernel.dtype) == ("/layers/dense/vars/0", (3, 4), np.float32)
        assert keras_dtype_attr(kernel) == "bfloat16" and kernel.attrs["dtype"] == "bfloat16"
        assert np.array_equal(kernel[1:], np.ones((2, 4), "float32"))
        assert keras_dtype_attr(index.tensor("layers/dense/vars/1")) is None
        with pytest.raises(ModelReadError):
            index.tensor("layers/dense")  # a group, not a dataset


@pytest.mark.parametrize("link", [lambda: h5py.SoftLink("/a"), lambda: h5py.ExternalLink("/etc/passwd", "/x")])
def test_links_anywhere_are_refused(tmp_path, link):
    def build(f):
        f["a/vars/0"] = np.ones(2, "float32")
        f["optimizer/deep/alias"] = link()  # far from any layer: still refused

    with _write(tmp_path / "w.h5", build) as f, pytest.raises(UnsafeInputError, match="link"):
        H5Index(f)


def test_external_storage_refused_on_open(tmp_path):
    raw = tmp_path / "values.bin"
    raw.write_bytes(np.ones(4, "float32").tobytes())

    def build(f):
        f.create_dataset("vars/0", shape=(4,), dtype="float32", external=[(str(raw), 0, 16)])

    with _write(tmp_path / "w.h5", build) as f:
        index = H5Index(f)
        assert index.kind("vars/0") == DATASET  # indexed, but never opened for reading
        with pytest.raises(UnsafeInputError, match="external file"):
            index.tensor("vars/0")


def test_object_count_is_bounded(tmp_path):
    def build(f):
        for i in range(50):
            f.create_group(f"g{i}")

    with _write(tmp_path / "w.h5", build) as f:
        assert len(H5Index(f, max_links=100).children("")) == 50
        with pytest.raises(UnsafeInputError, match="objects"):
            H5Index(f, max_links=10)
