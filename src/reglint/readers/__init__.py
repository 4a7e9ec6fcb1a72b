"""Readers: one per file format, each turning a file into a ``Model``.

``read_model(path)`` sniffs the format from the file's first bytes (never from
the extension alone: a mislabelled file must not reach the wrong parser) and
hands the file to its reader. Every reader raises ``ModelReadError`` with a
one-line message for anything it cannot read; none of them imports
TensorFlow or torch, or runs code from the file.
"""

from __future__ import annotations

from pathlib import Path

from reglint.errors import ModelReadError
from reglint.model import Model
from reglint.readers.limits import ReadOptions
from reglint.readers.sniff import Format, sniff

__all__ = ["Format", "ReadOptions", "read_model", "sniff"]


def read_model(path: str | Path, options: ReadOptions | None = None) -> Model:
    path = Path(path)
    options = options or ReadOptions()
    fmt = sniff(path)
    if fmt is Format.KERAS_ZIP:
        from reglint.readers.keras_zip import read_keras_zip

        return read_keras_zip(path, options)
    if fmt is Format.HDF5:
        from reglint.readers.keras_h5 import read_keras_h5

        return read_keras_h5(path, options)
    if fmt is Format.SAVEDMODEL:
        from reglint.readers.savedmodel import read_savedmodel

        return read_savedmodel(path, options)
    if fmt is Format.KERAS_JSON:
        from reglint.readers.keras_json import read_keras_json

        return read_keras_json(path, options)
    if fmt is Format.ONNX:
        from reglint.readers.onnx import read_onnx

        return read_onnx(path, options)
    if fmt is Format.TORCH_ZIP:
        from reglint.readers.torch_checkpoint import read_torch_checkpoint

        return read_torch_checkpoint(path, options)
    if fmt is Format.SAFETENSORS:
        from reglint.readers.safetensors_reader import read_safetensors

        return read_safetensors(path, options)
    if fmt is Format.HF_FOLDER:
        from reglint.readers.hf_folder import read_hf_folder

        return read_hf_folder(path, options)
    if fmt is Format.PICKLE:
        from reglint.readers.torch_zip import refuse_pickle_file

        with path.open("rb") as handle:
            refuse_pickle_file(handle.read(64))
    raise ModelReadError(f"not a model reglint can read ({fmt.value})")
