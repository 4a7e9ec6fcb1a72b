"""Readers: one per file format, each turning a file into a ``Model``.

``read_model(path)`` sniffs the format from the file's first bytes (never from
the extension alone: a mislabelled file must not reach the wrong parser) and
hands the file to its reader. Every reader raises ``ModelReadError`` with a
one-line message for anything it cannot read; none of them imports
TensorFlow or torch, or runs code from the file.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from reglint.errors import ModelReadError
from reglint.model import Model
from reglint.readers.limits import ReadOptions
from reglint.readers.sniff import Format, sniff

__all__ = ["Format", "ReadOptions", "read_model", "sniff"]


# format -> "module:function", imported only when a file of that format is
# read: a run pays for the readers it uses (the Keras readers never load
# onnx, the ONNX reader never loads h5py's Keras layer tables).
READERS = {
    Format.KERAS_ZIP: "reglint.readers.keras_zip:read_keras_zip",
    Format.KERAS_FOLDER: "reglint.readers.keras_zip:read_keras_folder",
    Format.HDF5: "reglint.readers.keras_h5:read_keras_h5",
    Format.SAVEDMODEL: "reglint.readers.savedmodel:read_savedmodel",
    Format.KERAS_JSON: "reglint.readers.keras_json:read_keras_json",
    Format.ONNX: "reglint.readers.onnx:read_onnx",
    Format.TORCH_ZIP: "reglint.readers.torchscript:read_torch_archive",
    Format.SAFETENSORS: "reglint.readers.safetensors_reader:read_safetensors",
    Format.HF_FOLDER: "reglint.readers.hf_folder:read_hf_folder",
    Format.ACCELERATE_MODEL: "reglint.readers.hf_folder:read_accelerate_model",
    Format.GGUF: "reglint.readers.gguf_reader:read_gguf",
    Format.TFLITE: "reglint.readers.tflite:read_tflite",
    Format.TORCH_DCP: "reglint.readers.torch_dcp:read_dcp",
    Format.DEEPSPEED: "reglint.readers.deepspeed_checkpoint:read_deepspeed",
    Format.TF_CHECKPOINT: "reglint.readers.tf_checkpoint:read_tf_checkpoint",
}


def read_model(path: str | Path, options: ReadOptions | None = None) -> Model:
    path = Path(path)
    options = options or ReadOptions()
    fmt = sniff(path)
    if fmt in READERS:
        module, _, name = READERS[fmt].partition(":")
        return getattr(importlib.import_module(module), name)(path, options)
    if fmt is Format.PICKLE:  # a legacy torch.save pickle: refused by name, never unpickled
        from reglint.readers.torch_zip import refuse_pickle_file

        with path.open("rb") as handle:
            refuse_pickle_file(handle.read(64))
    raise ModelReadError(f"not a model reglint can read ({fmt.value})")
