"""``.safetensors`` files: tensors and nothing else, no code to refuse.

The ``safetensors`` library opens the file (``safe_open``, numpy framework)
and validates its header: offsets inside the file, contiguous, sizes that
match dtype and shape. Values are read lazily for statistics, along the
first axis a chunk at a time (``get_slice``). numpy has no bfloat16 or
float8: bfloat16 values are read as raw 16-bit words at the offsets the
header gives (already validated by the library) and widened to float32, and
float8 through a table of its 256 codes (``small_floats``).

A bare ``.safetensors`` gives parameter counts and weight statistics; no
optimizer is stored in one. Keys come sorted (the format does not keep the
module order), so a Trainer folder's optimizer groups are matched to them by
shape (``torch_optim``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from reglint.errors import ModelReadError, UnsafeInputError, one_line
from reglint.model import Model, WeightStats
from reglint.readers.bnb_quantized import dequantized_checkpoint, quantized_note
from reglint.readers.limits import ReadOptions
from reglint.readers.safe_io import load_json
from reglint.readers.small_floats import FLOAT8, widen
from reglint.readers.sniff import SAFETENSORS_HEADER_LIMIT
from reglint.readers.tensor_stats import StatsAccumulator, bfloat16_to_float32
from reglint.readers.torch_checkpoint import NamedTensor, build_layers

# safetensors dtype -> torch's name.
DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
          "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "U16": "uint16", "U32": "uint32",
          "U64": "uint64", "BOOL": "bool", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
          "F8_E8M0": "float8_e8m0fnu",
          "C64": "complex64"}


class SafetensorsFile:
    """One open ``.safetensors`` file (use as a context manager)."""

    def __init__(self, path: Path, options: ReadOptions):
        from safetensors import safe_open

        self.path, self.options = Path(path), options
        self.quantized: dict[str, int] = {}  # quantized weights by kind (nf4, gptq int4 ...)
        self.notes: list[str] = []  # on quantized weights counted without statistics
        self._header = self._read_header()
        try:
            self._handle = safe_open(str(self.path), framework="numpy")
            self._file = self._handle.__enter__()
        except Exception as exc:  # SafetensorError: bad header, offsets, sizes
            raise ModelReadError(one_line(f"not a valid safetensors file ({exc})", 200)) from None

    def __enter__(self) -> SafetensorsFile:
        return self

    def __exit__(self, *exc) -> None:
        self._handle.__exit__(None, None, None)

    def _read_header(self) -> dict:
        try:
            with self.path.open("rb") as handle:
                head = handle.read(8)
                if len(head) != 8:
                    raise ModelReadError("not a valid safetensors file (shorter than its header length)")
                size = struct.unpack("<Q", head)[0]
                if size > min(SAFETENSORS_HEADER_LIMIT, self.options.max_json_bytes):
                    raise UnsafeInputError(f"safetensors header claims {size} bytes, over the limit")
                raw = handle.read(size)
        except OSError as exc:
            raise ModelReadError(f"cannot open: {exc.strerror or exc}") from None
        header = load_json(raw, what="safetensors header", max_bytes=self.options.max_json_bytes,
                           max_depth=self.options.max_json_depth)
        if not isinstance(header, dict):
            raise ModelReadError("not a valid safetensors file (its header is not a JSON object)")
        self.data_start = 8 + size
        return header

    def tensors(self) -> list[NamedTensor]:
        """Every tensor; a quantized weight as the float parameter it
        stands for (``bnb_quantized.dequantized_checkpoint``; counted in
        ``quantized``)."""
        out, self.quantized = dequantized_checkpoint(self.stored_tensors(), self, self.options.chunk_bytes,
                                                     notes=self.notes)
        return out

    def stored_tensors(self) -> list[NamedTensor]:
        """Every tensor as stored (a sharded save dequantizes over all its
        shards at once: ``hf_folder``)."""
        out = []
        names = self._file.keys()  # a safe_open handle, not a dict
        for name in names:
            view = self._file.get_slice(name)
            dtype = DTYPES.get(str(view.get_dtype()), str(view.get_dtype()).lower())
            shape = tuple(int(d) for d in view.get_shape())
            out.append(NamedTensor(name, shape, dtype, None, self._reader(name, dtype, shape)))
        return out

    def values(self, name: str) -> np.ndarray:
        """A (small) tensor's values."""
        return np.asarray(self._file.get_tensor(name))

    def stored_bytes(self, name: str, start: int, stop: int) -> np.ndarray:
        """Bytes start:stop of a tensor as stored (offsets checked by
        safe_open when the file was opened), as uint8."""
        begin, end = self._header[name]["data_offsets"]
        start, stop = max(0, start), min(stop, end - begin)
        if stop <= start:
            return np.zeros(0, dtype=np.uint8)
        return np.fromfile(self.path, dtype=np.uint8, count=stop - start, offset=self.data_start + begin + start)

    def _reader(self, name: str, dtype: str, shape: tuple[int, ...]) -> Callable[[], WeightStats | None]:
        return lambda: self.stats(name, dtype, shape)

    def metadata(self) -> dict:
        return dict(self._file.metadata() or {})

    def stats(self, name: str, dtype: str, shape: tuple[int, ...]) -> WeightStats | None:
        if dtype not in ("float32", "float64", "float16", "bfloat16", *FLOAT8):
            return None
        acc = StatsAccumulator()
        if dtype == "bfloat16" or dtype in FLOAT8:
            self._raw_stats(acc, name, dtype)
            return acc.result()
        if not shape:
            acc.add(np.asarray(self._file.get_tensor(name)))
            return acc.result()
        row = max(1, int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize)
        rows = max(1, self.options.chunk_bytes // row)
        view = self._file.get_slice(name)
        for start in range(0, shape[0], rows):
            acc.add(np.asarray(view[start:min(start + rows, shape[0])]))
        return acc.result()

    def _raw_stats(self, acc: StatsAccumulator, name: str, dtype: str) -> None:
        """bfloat16 and float8, which numpy has no dtype for: read as their
        stored words and widened."""
        begin, end = self._header[name]["data_offsets"]  # validated by safe_open
        step = max(2, self.options.chunk_bytes // 2 * 2)
        with self.path.open("rb") as handle:
            for offset in range(begin, end, step):
                handle.seek(self.data_start + offset)
                raw = handle.read(min(step, end - offset))
                acc.add(bfloat16_to_float32(np.frombuffer(raw, dtype="<u2")) if dtype == "bfloat16"
                        else widen(np.frombuffer(raw, dtype=np.uint8), dtype))


def read_safetensors(path: Path, options: ReadOptions) -> Model:
    """A bare ``.safetensors`` file: parameter counts and weight statistics."""
    model = Model(path=str(path), format="safetensors", framework="pytorch")
    with SafetensorsFile(path, options) as file:
        model.layers, _ = build_layers(file.tensors(), options, model.notes)
        if file.quantized:
            model.notes.append(quantized_note(file.quantized))
        model.notes.extend(file.notes)
        meta = file.metadata()
    if meta:
        model.metadata["safetensors_metadata"] = {k: one_line(v, 200) for k, v in list(meta.items())[:20]}
    model.notes.append("weights only: no optimizer in a safetensors file; pass --optimizer, --learning-rate and "
                       "--weight-decay to check decay")
    return model
