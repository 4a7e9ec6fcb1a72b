"""PyTorch's zip checkpoint format, read as untrusted data.

``torch.save`` (torch >= 1.6) writes a zip archive whose members sit under
one top folder (the file's stem, or ``archive``): ``data.pkl`` (the objects,
a pickle), ``data/<key>`` (one member per storage, raw little-endian values,
stored uncompressed and 64-byte aligned), ``byteorder``, ``version``,
``.format_version``, ``.storage_alignment``, ``.data/serialization_id``.

``TorchArchive`` opens it without extracting anything:

* every member name is checked first: an absolute path, a ``..`` component,
  a backslash or a name given twice is refused (``UnsafeInputError``), and
  so is a member whose declared size is over ``ReadOptions.max_member_bytes``
  or whose compression ratio marks a zip bomb;
* ``data.pkl`` is read with a size limit (``max_pickle_bytes``) and interpreted by
  ``torch_pickle`` (nothing imported, nothing called);
* every storage the pickle names must be a member large enough for the
  size the pickle declares, and every tensor must lie inside its storage
  (offset plus the extent of its shape and strides): anything else is a
  one-line error before any value is read;
* values are read lazily, only for statistics, a chunk at a time into
  ``tensor_stats.StatsAccumulator`` (the accumulator the HDF5 and ONNX
  readers use), from the member's bytes in place.

A legacy (pre-1.6, non-zip) ``torch.save`` file is a bare pickle stream and
is refused: it cannot be told from an arbitrary pickle without running it.

A TorchScript archive (``torch.jit.save``, ``torch.jit.script(m).save``,
``torch.jit.trace(...).save``) has the same layout plus ``code/`` (the
compiled modules as Python-like source) and ``constants.pkl``. Its
``data.pkl`` is read the same way, its module tree's ``__torch__.*``
classes as inert records (``torch_pickle``); ``code_text`` hands out a
code member's text, size-bounded, for ``torchscript`` to read its
``__parameters__`` declarations with a regex. Nothing in ``code/`` or
``constants.pkl`` is ever run or unpickled.
"""

from __future__ import annotations

import os
import re
import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import numpy as np

from reglint.errors import ModelReadError, UnsafeInputError, one_line
from reglint.model import WeightStats
from reglint.readers.file_window import FileWindow
from reglint.readers.limits import ReadOptions
from reglint.readers.small_floats import FLOAT8, widen
from reglint.readers.sniff import is_legacy_pickle
from reglint.readers.tensor_stats import StatsAccumulator, bfloat16_to_float32
from reglint.readers.torch_pickle import DTYPES, FLOAT_DTYPES, Opaque, StorageRef, TensorRef, load_pickle

PICKLE_NAME = "data.pkl"
# Small text members (byteorder, version) are read with this cap.
SMALL_MEMBER = 4096
# A strided (non-contiguous) tensor is read whole for its statistics up to this many bytes.
STRIDED_READ_LIMIT = 256 << 20
# A strided or compressed tensor read whole for its bytes (bitsandbytes' codes
# and scales in a torch.save archive): larger ones get no statistics.
SMALL_GATHER_BYTES = 64 << 20
# Elements per chunk handed to the accumulator.
CHUNK_BYTES = 1 << 20
# A TorchScript code member (one module's compiled source) is read up to this size.
MAX_CODE_BYTES = 8 << 20
TORCHSCRIPT_NO_PICKLE = ("TorchScript archive (torch.jit.save) without a data.pkl: an older layout that "
                         "reglint does not read; lint the checkpoint or the ONNX export instead")


def refuse_pickle_file(head: bytes) -> None:
    """A bare pickle stream (no zip): never interpreted."""
    if is_legacy_pickle(head):
        raise UnsafeInputError("legacy (pre-1.6) PyTorch pickle, not the zip format: refused, because a bare "
                               "pickle cannot be read without running it; re-save it with a current torch.save")
    raise UnsafeInputError("a bare Python pickle, not a PyTorch zip checkpoint: refused (unpickling runs code)")


class TorchArchive:
    """One ``torch.save`` archive, open for reading (use as a context manager)."""

    def __init__(self, path: Path, options: ReadOptions, *, what: str | None = None,
                 window: tuple[int, int] | None = None):
        """``window`` (offset, length): the archive is those bytes of the
        file (a ``torch.distributed.checkpoint`` item: ``torch_dcp``)."""
        self.path = Path(path)
        self.options = options
        self.what = what or self.path.name
        self.window = window
        self._file: BinaryIO | FileWindow | None = None
        # zipfile reads through a handle of its own (it does not close one it is given)
        self._zip_file: FileWindow | None = None
        try:
            if window is not None:
                self._zip_file = FileWindow(self.path, *window)
            self.zip = zipfile.ZipFile(self._zip_file or self.path)
        except zipfile.BadZipFile as exc:
            self.close_file()
            raise ModelReadError(f"not a readable zip archive ({exc})") from None
        except OSError as exc:
            self.close_file()
            raise ModelReadError(f"cannot open: {exc.strerror or exc}") from None
        try:
            self._index()
        except BaseException:
            self.zip.close()
            self.close_file()
            raise
        self._starts: dict[str, int | None] = {}
        self.compressed_storages = 0
        self.record_classes: set[str] = set()  # classes the pickle named, kept as inert records

    def __enter__(self) -> TorchArchive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.close_file()
        self.zip.close()

    def close_file(self) -> None:
        for handle in (self._file, self._zip_file):
            if handle is not None:
                handle.close()
        self._file = self._zip_file = None

    # -- layout ------------------------------------------------------------

    def _index(self) -> None:
        infos = self.zip.infolist()
        seen: set[str] = set()
        for info in infos:
            name = info.filename
            _check_name(name)
            if name in seen:
                raise UnsafeInputError(f"archive member {one_line(name, 80)!r} appears twice: refused")
            seen.add(name)
        pickles = [i.filename for i in infos if PurePosixPath(i.filename).name == PICKLE_NAME
                   and len(PurePosixPath(i.filename).parts) <= 2]
        if len(pickles) != 1:
            if any(PurePosixPath(n).name == "constants.pkl" or "/code/" in f"/{n}" for n in seen):
                raise ModelReadError(TORCHSCRIPT_NO_PICKLE)
            why = "no data.pkl" if not pickles else "several data.pkl"
            raise ModelReadError(f"zip archive with {why}: not a PyTorch checkpoint")
        self.prefix = str(PurePosixPath(pickles[0]).parent)
        self.prefix = "" if self.prefix == "." else self.prefix + "/"
        # code/ and constants.pkl mark torch.jit.save: data.pkl then pickles a module tree.
        self.torchscript = any(n.startswith(f"{self.prefix}code/") or n == f"{self.prefix}constants.pkl"
                               for n in seen)
        self.members = {i.filename: i for i in infos}
        order = self._small_text("byteorder") or "little"
        if order not in ("little", "big"):
            raise ModelReadError(f"archive byteorder is {one_line(order, 20)!r}, neither little nor big")
        self.byteorder = order
        self.version = self._small_text("version")

    def _small_text(self, name: str) -> str | None:
        info = self.members.get(self.prefix + name)
        if info is None:
            return None
        return self._read(info, SMALL_MEMBER).decode("utf-8", errors="replace").strip()

    def _check_member(self, info: zipfile.ZipInfo, limit: int) -> None:
        if info.file_size > limit:
            raise UnsafeInputError(f"{one_line(info.filename, 80)} claims {info.file_size} bytes, over the limit")
        ratio = self.options.max_compression_ratio
        if info.compress_size and info.file_size / max(1, info.compress_size) > ratio:
            raise UnsafeInputError(f"{one_line(info.filename, 80)} has a compression ratio over {ratio}: zip bomb")

    def _read(self, info: zipfile.ZipInfo, limit: int) -> bytes:
        self._check_member(info, limit)
        try:
            with self.zip.open(info) as handle:
                data = handle.read(limit + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
            raise ModelReadError(f"{info.filename} inside the archive is corrupt "
                                 f"({one_line(str(exc), 120)})") from None
        if len(data) > limit:
            raise UnsafeInputError(f"{one_line(info.filename, 80)} inflates past its size limit")
        return data

    # -- objects -------------------------------------------------------------

    def load(self, opaque_modules: tuple[str, ...] = ()) -> Any:
        """The pickle's objects, every storage and tensor checked against the
        archive; classes the pickle names become inert records
        (``torch_pickle``, ``records``)."""
        info = self.members[self.prefix + PICKLE_NAME]
        data = self._read(info, self.options.max_pickle_bytes)
        storages: dict[str, StorageRef] = {}
        obj = load_pickle(data, what=self.what, opaque_modules=opaque_modules, storages=storages,
                          torchscript=self.torchscript, records=True, record_classes=self.record_classes)
        for storage in storages.values():
            self._check_storage(storage)
        for tensor in iter_tensors(obj):
            self.check_tensor(tensor)
        return obj

    def code_text(self, module: str) -> str | None:
        """The compiled source of a TorchScript module (``__torch__.a.b`` ->
        ``code/__torch__/a/b.py``) as text, read only; None when absent."""
        info = self.members.get(f"{self.prefix}code/{module.replace('.', '/')}.py")
        if info is None:
            return None
        return self._read(info, MAX_CODE_BYTES).decode("utf-8", errors="replace")

    def _storage_member(self, storage: StorageRef) -> zipfile.ZipInfo:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", storage.key) or storage.key.startswith("."):
            raise UnsafeInputError(f"storage key {one_line(storage.key, 40)!r} is not a member name: refused")
        info = self.members.get(f"{self.prefix}data/{storage.key}")
        if info is None:
            raise ModelReadError(f"storage {storage.key} named by the pickle is missing from the archive")
        return info

    def _check_storage(self, storage: StorageRef) -> None:
        info = self._storage_member(storage)
        self._check_member(info, self.options.max_member_bytes)
        if storage.nbytes > info.file_size:
            raise UnsafeInputError(f"storage {storage.key} declares {storage.nbytes} bytes but its member holds "
                                   f"{info.file_size}: out of range")

    def check_tensor(self, tensor: TensorRef) -> None:
        storage = tensor.storage
        capacity = storage.nbytes // tensor.itemsize
        if tensor.span() > capacity:
            raise UnsafeInputError(f"a tensor of shape {tensor.shape} at offset {tensor.offset} reads past the end "
                                   f"of storage {storage.key} ({capacity} values): out of range")
        if tensor.numel > capacity:  # overlapping strides: a broadcast view, never a saved weight
            raise UnsafeInputError(f"a tensor of shape {tensor.shape} claims more values than storage {storage.key} "
                                   f"holds ({capacity}): refused")

    # -- values ----------------------------------------------------------------

    def _data_start(self, info: zipfile.ZipInfo) -> int | None:
        """Absolute offset of a stored member's bytes; None for a compressed one."""
        if info.filename not in self._starts:
            self._starts[info.filename] = self._find_start(info)
        return self._starts[info.filename]

    def _find_start(self, info: zipfile.ZipInfo) -> int | None:
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        handle = self._handle()
        handle.seek(info.header_offset)
        header = handle.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise ModelReadError(f"{info.filename}: bad local header in the archive")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        size = self.window[1] if self.window is not None else os.fstat(handle.fileno()).st_size
        if start + info.file_size > size:
            raise ModelReadError(f"{info.filename} runs past the end of the file: truncated archive")
        return start

    def _handle(self):
        if self._file is None:
            self._file = (open(self.path, "rb") if self.window is None  # noqa: SIM115 - closed in close()
                          else FileWindow(self.path, *self.window))
        return self._file

    def _np_dtype(self, dtype: str) -> np.dtype | None:
        code = "<u2" if dtype == "bfloat16" else "u1" if dtype in FLOAT8 else DTYPES[dtype][0]
        if code is None:
            return None
        np_dtype = np.dtype(code)
        return np_dtype.newbyteorder(">") if self.byteorder == "big" and np_dtype.itemsize > 1 else np_dtype

    def stats(self, tensor: TensorRef) -> WeightStats | None:
        """Statistics of a floating-point tensor, read a chunk at a time; None
        for other dtypes or a compressed storage."""
        acc = StatsAccumulator()
        return acc.result() if self.accumulate(acc, tensor) else None

    def accumulate(self, acc: StatsAccumulator, tensor: TensorRef) -> bool:
        """Adds a floating-point tensor's values to ``acc`` (a tensor saved
        in pieces adds each: ``torch_dcp``); False when they cannot be read."""
        if tensor.dtype not in FLOAT_DTYPES:
            return False
        start = self._data_start(self._storage_member(tensor.storage))
        if start is None:
            self.compressed_storages += 1
            return False
        np_dtype = self._np_dtype(tensor.dtype)
        if np_dtype is None:
            return False
        first = start + tensor.offset * tensor.itemsize
        if tensor.numel == 0:
            return True
        if tensor.is_contiguous():
            self._add_contiguous(acc, first, tensor.numel, np_dtype, tensor.dtype)
        else:
            nbytes = (tensor.span() - tensor.offset) * tensor.itemsize
            if max(nbytes, tensor.numel * tensor.itemsize) > STRIDED_READ_LIMIT:
                return False
            raw = np.frombuffer(self._pread(first, nbytes), dtype=np_dtype)
            view = np.lib.stride_tricks.as_strided(
                raw, shape=tensor.shape, strides=[s * tensor.itemsize for s in tensor.stride], writeable=False)
            acc.add(_widen(np.ascontiguousarray(view), tensor.dtype))
        return True

    def _add_contiguous(self, acc: StatsAccumulator, first: int, count: int, np_dtype: np.dtype,
                        dtype: str) -> None:
        step = max(1, min(self.options.chunk_bytes, CHUNK_BYTES) // np_dtype.itemsize)
        for done in range(0, count, step):
            n = min(step, count - done)
            block = np.frombuffer(self._pread(first + done * np_dtype.itemsize, n * np_dtype.itemsize),
                                  dtype=np_dtype)
            acc.add(_widen(block, dtype))

    def _pread(self, offset: int, nbytes: int) -> bytes:
        handle = self._handle()
        handle.seek(offset)
        data = handle.read(nbytes)
        if len(data) != nbytes:
            raise ModelReadError("the archive ended inside a storage: truncated file")
        return data

    def stored_bytes(self, tensor: TensorRef, start: int, stop: int) -> np.ndarray | None:
        """Bytes start:stop of a tensor in its logical (row-major) order, as
        uint8: read in place when contiguous; a strided view or a compressed
        storage gathered whole first, up to ``SMALL_GATHER_BYTES``; None past
        that."""
        start, stop = max(0, start), min(stop, tensor.numel * tensor.itemsize)
        if stop <= start:
            return np.zeros(0, dtype=np.uint8)
        info = self._storage_member(tensor.storage)
        first = self._data_start(info)
        if first is not None and tensor.is_contiguous():
            return np.frombuffer(self._pread(first + tensor.offset * tensor.itemsize + start, stop - start),
                                 dtype=np.uint8)
        whole = self._gathered(tensor, info, first)
        return None if whole is None else whole[start:stop]

    def _gathered(self, tensor: TensorRef, info, first: int | None) -> np.ndarray | None:
        """A small strided or compressed tensor's bytes, row-major."""
        span = (tensor.span() - tensor.offset) * tensor.itemsize
        if max(span, tensor.numel * tensor.itemsize) > SMALL_GATHER_BYTES:
            return None
        if first is not None:
            raw = self._pread(first + tensor.offset * tensor.itemsize, span)
        else:  # a compressed storage: inflated whole (bounded above by the tensor, and by _read's limit)
            member = self._read(info, min(self.options.max_member_bytes, SMALL_GATHER_BYTES + (8 << 20)))
            raw = member[tensor.offset * tensor.itemsize:tensor.offset * tensor.itemsize + span]
            if len(raw) != span:
                return None
        flat = np.frombuffer(raw, dtype=np.uint8)
        view = np.lib.stride_tricks.as_strided(
            flat, shape=(*tensor.shape, tensor.itemsize),
            strides=(*[st * tensor.itemsize for st in tensor.stride], 1), writeable=False)
        return np.ascontiguousarray(view).reshape(-1)

    def values(self, tensor: TensorRef) -> np.ndarray | None:
        """A (small) contiguous tensor's values in its numpy dtype."""
        np_dtype = self._np_dtype(tensor.dtype)
        raw = self.stored_bytes(tensor, 0, tensor.numel * tensor.itemsize)
        if np_dtype is None or raw is None or tensor.dtype == "bfloat16" or tensor.dtype in FLOAT8:
            return None
        return raw.view(np_dtype).reshape(tensor.shape)

    def scalar(self, tensor: TensorRef) -> float | None:
        """The value of a one-element tensor (an optimizer's ``step``)."""
        if tensor.numel != 1:
            return None
        np_dtype = self._np_dtype(tensor.dtype)
        start = self._data_start(self._storage_member(tensor.storage))
        if np_dtype is None or start is None or tensor.dtype == "bool":
            return None
        value = np.frombuffer(self._pread(start + tensor.offset * tensor.itemsize, tensor.itemsize), dtype=np_dtype)
        value = _widen(value, tensor.dtype)
        return float(value[0].real) if value.dtype.kind == "c" else float(value[0])


def _widen(block: np.ndarray, dtype: str) -> np.ndarray:
    """Values of a dtype numpy has none for, from their stored words."""
    if dtype == "bfloat16":
        return bfloat16_to_float32(block.astype(np.uint16, copy=False))
    return widen(block, dtype) if dtype in FLOAT8 else block


def _check_name(name: str) -> None:
    """Member names are paths inside the archive; none may point out of it."""
    if not name or name.startswith("/") or "\\" in name or "\x00" in name or re.match(r"[A-Za-z]:", name) \
            or ".." in PurePosixPath(name).parts:
        raise UnsafeInputError(f"archive member {one_line(name, 80)!r} points outside the archive: refused")


def iter_tensors(obj: Any, limit: int = 5_000_000):
    """Every TensorRef reachable from ``obj``, iteratively (pickles can hold
    cycles and deep nesting), each object visited once."""
    stack, seen, visited = [obj], set(), 0
    while stack:
        item = stack.pop()
        if isinstance(item, TensorRef):
            yield item
            quantizer = getattr(item, "quantizer", None)  # a per-channel qtensor's scales are tensors too
            if quantizer is not None:
                stack.extend(t for t in (quantizer.scale, quantizer.zero_point) if isinstance(t, TensorRef))
            continue
        if not isinstance(item, (dict, list, tuple, set, frozenset, Opaque)) or id(item) in seen:
            continue
        seen.add(id(item))
        visited += 1
        if visited > limit:
            raise UnsafeInputError("the checkpoint holds more objects than reglint will walk")
        if isinstance(item, Opaque):
            stack.extend((item.args, item.state, item.items, item.elements))
        else:
            stack.extend(item.values() if isinstance(item, dict) else item)
