"""A ``torch.distributed.checkpoint`` (DCP) folder, read as untrusted data.

``torch.distributed.checkpoint.save`` (FSDP and FSDP2 training, torchtitan,
accelerate's ``SHARDED_STATE_DICT``, Lightning's sharded strategies, a
plain ``dcp.save(state_dict, checkpoint_id=folder)``) writes a folder:

* ``.metadata``: a pickled ``Metadata`` whose ``state_dict_metadata`` maps
  each flattened key (``model.layers.0.attn.wq.weight``,
  ``optimizer.param_groups.0.lr``) to a ``TensorStorageMetadata`` (dtype,
  whole size, the chunks each rank wrote: offsets and sizes) or a
  ``BytesStorageMetadata`` (any other object, ``torch.save``-d);
  ``storage_data`` maps each chunk to the file, offset and length of its
  bytes; ``planner_data`` maps each flattened key to its path in the
  nested state dict (``("optimizer", "param_groups", 0, "lr")``), since a
  parameter name's own dots make the key ambiguous;
* ``__<rank>_<n>.distcp``: the items one after another, each a whole
  ``torch.save`` archive of one chunk (``torch_zip.TorchArchive`` opens it
  in place through a window on the file) or raw bytes.

``.metadata`` goes through the same refusing unpickler as any checkpoint
(``torch_pickle``, records mode: DCP's dataclasses become inert records);
its one helper, ``torch.serialization._get_layout``, is read as a name.
Every chunk's file must be a plain name inside the folder and its bytes
inside that file; a tensor's chunks must lie inside its size and cover it,
else its statistics are not read and a note says so. The parameter count
comes from the metadata alone (shapes), the statistics from the chunks;
non-tensor items (an optimizer's param-group settings, a scheduler's state)
are loaded only when small.

The state dict rebuilt from ``planner_data`` is handed to
``torch_checkpoint.describe`` as any checkpoint's objects are, after three
layouts are made plain:

* the model's weights under ``model`` (accelerate, ``get_state_dict``,
  Lightning), at the top level (torchtitan flattens its model there) or
  one level down (PyTorch's DCP recipe saves ``{"app": AppState}``, whose
  state dict is ``{"model": ..., "optim": ...}``);
* an optimizer state keyed by parameter name (``get_state_dict``,
  ``FSDP.optim_state_dict``: ``state[fqn]`` and names in ``params``), read
  by name (its ``params`` become ``param_names``);
* torchtitan's flattened optimizer (``flatten_optimizer_state_dict``:
  ``state.<fqn>.exp_avg``, ``param_groups.<fqn>.lr``), regrouped: the
  parameters with equal settings form one group;
* Lightning's ``optimizer_0`` ... (the first is read; a note counts them).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reglint.errors import ModelReadError, UnsafeInputError, one_line
from reglint.model import Model, WeightStats
from reglint.readers.limits import ReadOptions
from reglint.readers.sniff import DCP_METADATA as METADATA
from reglint.readers.sniff import check_link_stays_inside
from reglint.readers.tensor_stats import StatsAccumulator
from reglint.readers.torch_optim import is_optimizer_state
from reglint.readers.torch_pickle import DTYPES, DType, Opaque, StorageRef, TensorRef, load_pickle

_ITEM_FILE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
# Non-tensor items (param-group settings, schedulers, step counters, a whole
# state dict saved without flattening) are loaded while their pickles add
# up to this much (their tensors are read in place, not counted): a 7B
# model's optimizer has ~300 params lists of names, each a few kB.
SMALL_ITEMS_TOTAL_BYTES = 64 << 20
MAX_KEYS = 2_000_000
MAX_PATH_DEPTH = 32
ZIP_MAGIC = b"PK\x03\x04"
FLAT_OPTIMIZER = re.compile(r"(state|param_groups)\.(.+)\.([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Piece:
    """One chunk of a tensor (or one non-tensor item): where its bytes lie."""

    file: str
    offset: int
    length: int
    offsets: tuple[int, ...] = ()
    sizes: tuple[int, ...] = ()
    transformed: bool = False  # stored through a storage extension (compression): not read


class DcpCheckpoint:
    """An open DCP folder: ``load()`` gives its state dict with tensors as
    ``TensorRef``s; ``stats``/``scalar`` read them (the archive protocol
    ``torch_checkpoint.describe`` uses)."""

    def __init__(self, folder: Path, options: ReadOptions):
        self.folder = Path(folder)
        self.options = options
        self.compressed_storages = 0
        self.record_classes: set[str] = set()
        self.notes: list[str] = []
        self._pieces: dict[str, list[Piece]] = {}  # synthetic storage key -> its chunks
        self._sizes: dict[str, int] = {}  # item file -> its size
        # tensors inside a non-tensor item (a whole state dict saved without
        # flattening): synthetic storage key -> (that item's archive, the tensor in it)
        self._adopted: dict[str, tuple[Any, StorageRef]] = {}
        self._adopted_keys: dict[tuple[int, str], str] = {}
        self._skipped = 0  # non-tensor items past the loading budget

    def __enter__(self) -> DcpCheckpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Chunks are opened and closed where they are read; the archives of
        items holding tensors reopen their file for statistics: closed here."""
        for archive in {id(a): a for a, _ in self._adopted.values()}.values():
            archive.close()

    # -- metadata --------------------------------------------------------------

    def _metadata(self) -> Opaque:
        path = self.folder / METADATA
        if path.is_symlink():
            check_link_stays_inside(path)
        try:
            size = path.stat().st_size
            if size > self.options.max_dcp_metadata_bytes:
                raise UnsafeInputError(f"{METADATA} is {size} bytes, over the {self.options.max_dcp_metadata_bytes} "
                                       "limit for a checkpoint's metadata pickle")
            data = path.read_bytes()
        except OSError as exc:
            raise ModelReadError(f"cannot read {METADATA}: {exc.strerror or exc}") from None
        meta = load_pickle(data, what=METADATA, records=True)  # its own dataclasses: no note
        if not (isinstance(meta, Opaque) and meta.qualname == "Metadata"):
            raise ModelReadError(f"{METADATA} holds no DCP Metadata (it holds {type(meta).__name__})")
        return meta

    def load(self) -> Any:
        """The checkpoint's state dict, nested as it was saved."""
        fields = self._metadata().fields()
        entries = fields.get("state_dict_metadata")
        storage = fields.get("storage_data")
        if not isinstance(entries, dict) or not isinstance(storage, dict):
            raise ModelReadError(f"{METADATA} has no state_dict_metadata or storage_data: not a DCP checkpoint")
        if len(entries) > MAX_KEYS or len(storage) > MAX_KEYS:
            raise UnsafeInputError(f"{METADATA} lists over {MAX_KEYS} items: refused")
        where = _storage_index(storage)
        planner = fields.get("planner_data")
        paths = planner if isinstance(planner, dict) else {}
        flat: dict[str, Any] = {}
        self._budget = SMALL_ITEMS_TOTAL_BYTES
        for key, entry in entries.items():
            if not isinstance(key, str):
                continue
            if isinstance(entry, Opaque) and entry.qualname == "TensorStorageMetadata":
                flat[key] = self._tensor(key, entry, where)
            elif isinstance(entry, Opaque) and entry.qualname == "BytesStorageMetadata":
                piece = where.get((key, None))
                if piece is not None:
                    flat[key] = self._object(key, piece)
        if self._skipped:
            self.notes.append(f"{self._skipped} non-tensor items of the checkpoint not read (their pickles are "
                              f"over the {SMALL_ITEMS_TOTAL_BYTES >> 20} MiB read for such items)")
        return _nest(flat, paths)

    def _tensor(self, key: str, entry: Opaque, where: dict) -> TensorRef:
        info = entry.fields()
        shape = _dims(info.get("size"), key)
        dtype = _dtype(info.get("properties"))
        if dtype is None:
            raise ModelReadError(f"{METADATA}: {one_line(key, 80)} has no dtype torch saves tensors in")
        chunks = info.get("chunks") or []
        pieces = []
        for chunk in chunks:
            box = chunk.fields() if isinstance(chunk, Opaque) else {}
            offsets, sizes = _dims(box.get("offsets"), key), _dims(box.get("sizes"), key)
            piece = where.get((key, offsets))
            if piece is None or not len(offsets) == len(shape) == len(sizes):
                break
            pieces.append(self._checked(key, Piece(piece.file, piece.offset, piece.length, offsets, sizes,
                                                   piece.transformed), dtype))
        # A shape its stored chunks do not make up is a corrupt or crafted
        # checkpoint: its parameter count would be the metadata's word alone.
        if len(pieces) != len(chunks) or not _covers(pieces, shape):
            raise ModelReadError(f"{METADATA}: the chunks stored for {one_line(key, 80)} do not make up its shape "
                                 f"{one_line(str(shape), 60)}: a corrupt or edited checkpoint")
        storage_key = f"dcp{len(self._pieces)}"
        numel = math.prod(shape)
        self._pieces[storage_key] = pieces
        storage = StorageRef(storage_key, dtype, numel, "dcp")
        stride = tuple(math.prod(shape[i + 1:]) for i in range(len(shape)))
        return TensorRef(storage, 0, shape, stride, dtype)

    def _checked(self, key: str, piece: Piece, dtype: str) -> Piece:
        """A chunk whose bytes lie inside its file and can hold its values."""
        size = self._file_size(piece.file)
        need = math.prod(piece.sizes) * DTYPES[dtype][1]
        if piece.offset + piece.length > size or (piece.length < need and not piece.transformed):
            raise ModelReadError(f"{METADATA}: a chunk of {one_line(key, 80)} ({piece.sizes}, {dtype}) is said to "
                                 f"lie at bytes {piece.offset}..{piece.offset + piece.length} of {piece.file} "
                                 f"({size} bytes): a corrupt or truncated checkpoint")
        return piece

    def _object(self, key: str, piece: Piece) -> Any:
        """A non-tensor item (``torch.save``-d): loaded while the pickles read
        stay within the budget; the tensors inside it (a state dict saved
        without flattening) kept readable through its archive."""
        from reglint.readers.torch_zip import PICKLE_NAME, TorchArchive

        if piece.transformed:
            return None
        path = self._file(piece.file)
        if piece.offset + piece.length > self._file_size(piece.file):
            raise ModelReadError(f"{METADATA}: item {one_line(key, 80)} lies past the end of {piece.file}")
        archive = TorchArchive(path, self.options, what=f"{piece.file}:{one_line(key, 60)}",
                               window=(piece.offset, piece.length))
        try:
            pickle_size = archive.members[archive.prefix + PICKLE_NAME].file_size
            if pickle_size > self._budget:
                self._skipped += 1
                return None
            self._budget -= pickle_size
            value = archive.load()
            self.record_classes.update(archive.record_classes)
        finally:
            archive.close()  # reopened by its statistics, if it holds tensors
        return self._adopt(value, archive, 0)

    def _adopt(self, value: Any, archive: Any, depth: int) -> Any:
        """``value`` with each tensor's storage renamed to one of this
        checkpoint's (the items' own keys collide; two tensors sharing a
        storage, tied weights, still share it)."""
        if isinstance(value, TensorRef):
            inner = value.storage
            key = self._adopted_keys.setdefault((id(archive), inner.key), f"dcpitem{len(self._adopted_keys)}")
            self._adopted[key] = (archive, inner)
            return dataclasses.replace(value, storage=StorageRef(key, inner.dtype, inner.numel, "dcp", inner.untyped))
        if depth > MAX_PATH_DEPTH:
            return value
        if isinstance(value, dict):
            for k in list(value):  # in place: a state dict's type and attributes stay
                value[k] = self._adopt(value[k], archive, depth + 1)
        elif isinstance(value, list):
            value[:] = [self._adopt(v, archive, depth + 1) for v in value]
        return value

    def _file(self, name: str) -> Path:
        if not _ITEM_FILE.fullmatch(name) or name.startswith("."):
            raise UnsafeInputError(f"{METADATA} names item file {one_line(name, 60)!r}, not a file of the folder: "
                                   "refused")
        path = self.folder / name
        if path.is_symlink():
            check_link_stays_inside(path)
        if not path.is_file():
            raise ModelReadError(f"{name}, named by {METADATA}, is missing from the folder")
        return path

    def _file_size(self, name: str) -> int:
        if name not in self._sizes:
            self._sizes[name] = self._file(name).stat().st_size
        return self._sizes[name]

    def files_note(self) -> str:
        """How the checkpoint was written: DCP's writers save one file per
        rank (and thread), so the file count tells how it was sharded."""
        files = sorted({piece.file for pieces in self._pieces.values() for piece in pieces}
                       | {archive.path.name for archive, _ in self._adopted.values()})
        listed = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        return (f"a torch.distributed.checkpoint in {len(files)} file{'s' if len(files) != 1 else ''} ({listed}): "
                f"shapes from {METADATA}, statistics over every saved chunk")

    # -- values ------------------------------------------------------------------

    def stats(self, tensor: TensorRef) -> WeightStats | None:
        """Statistics over every chunk of a floating-point tensor; None when
        a chunk cannot be read (a storage extension, a malformed item)."""
        if tensor.storage.key in self._adopted:
            archive, inner = self._adopted[tensor.storage.key]
            return archive.stats(dataclasses.replace(tensor, storage=inner))
        pieces = self._pieces.get(tensor.storage.key)
        if not pieces:
            return None
        acc = StatsAccumulator()
        for piece in pieces:
            if not self._accumulate(acc, piece, tensor.dtype):
                return None
        return acc.result()

    def _accumulate(self, acc: StatsAccumulator, piece: Piece, dtype: str) -> bool:
        from reglint.readers.torch_zip import TorchArchive, _widen

        if piece.transformed:
            self.compressed_storages += 1
            return False
        path = self._file(piece.file)
        if _is_raw(path, piece, dtype):  # SerializationFormat without torch.save: the values themselves
            code = DTYPES[dtype][0]
            if code is None:
                return False
            itemsize = DTYPES[dtype][1]
            step = max(1, self.options.chunk_bytes // itemsize) * itemsize
            with path.open("rb") as handle:
                handle.seek(piece.offset)
                for done in range(0, piece.length, step):
                    block = handle.read(min(step, piece.length - done))
                    if len(block) != min(step, piece.length - done):
                        raise ModelReadError(f"{piece.file} ended inside a chunk: truncated checkpoint")
                    acc.add(_widen(np.frombuffer(block, dtype=np.dtype(code)), dtype))
            return True
        with TorchArchive(path, self.options, what=piece.file, window=(piece.offset, piece.length)) as archive:
            chunk = archive.load()
            if not isinstance(chunk, TensorRef) or chunk.shape != piece.sizes or chunk.dtype != dtype:
                raise ModelReadError(f"{piece.file}: an item at byte {piece.offset} is not the chunk "
                                     f"{piece.sizes} {dtype} that {METADATA} declares")
            ok = archive.accumulate(acc, chunk)
            self.compressed_storages += archive.compressed_storages
            return ok

    def scalar(self, tensor: TensorRef) -> float | None:
        """A one-element tensor's value (an optimizer's ``step``)."""
        from reglint.readers.torch_zip import TorchArchive

        if tensor.storage.key in self._adopted:
            archive, inner = self._adopted[tensor.storage.key]
            return archive.scalar(dataclasses.replace(tensor, storage=inner))
        pieces = self._pieces.get(tensor.storage.key)
        if tensor.numel != 1 or not pieces or pieces[0].transformed:
            return None
        piece = pieces[0]
        path = self._file(piece.file)
        if _is_raw(path, piece, tensor.dtype):
            code = DTYPES[tensor.dtype][0]
            if code is None:
                return None
            with path.open("rb") as handle:
                handle.seek(piece.offset)
                raw = handle.read(piece.length)
            if len(raw) != DTYPES[tensor.dtype][1]:
                return None
            value = np.frombuffer(raw, dtype=np.dtype(code))
            return float(value[0]) if value.dtype.kind in "fiu" else None
        with TorchArchive(path, self.options, what=piece.file, window=(piece.offset, piece.length)) as archive:
            chunk = archive.load()
            return archive.scalar(chunk) if isinstance(chunk, TensorRef) and chunk.numel == 1 else None


def _is_raw(path: Path, piece: Piece, dtype: str) -> bool:
    with path.open("rb") as handle:
        handle.seek(piece.offset)
        head = handle.read(4)
    return head != ZIP_MAGIC and piece.length == math.prod(piece.sizes) * DTYPES[dtype][1]


def _storage_index(storage: dict) -> dict[tuple[str, tuple[int, ...] | None], Piece]:
    """(key, chunk offsets or None) -> where the item's bytes are."""
    out: dict[tuple[str, tuple[int, ...] | None], Piece] = {}
    for index, info in storage.items():
        if not (isinstance(index, Opaque) and isinstance(info, Opaque)):
            continue
        idx, loc = index.fields(), info.fields()
        fqn, offsets = idx.get("fqn"), idx.get("offset")
        file, offset, length = loc.get("relative_path"), loc.get("offset"), loc.get("length")
        if not (isinstance(fqn, str) and isinstance(file, str) and isinstance(offset, int) and _count(offset)
                and isinstance(length, int) and _count(length)):
            raise ModelReadError(f"{METADATA}: a malformed storage record")
        key = tuple(offsets) if isinstance(offsets, tuple) and all(_count(o) for o in offsets) else None
        out[(fqn, key)] = Piece(file, offset, length, transformed=bool(loc.get("transform_descriptors")))
    return out


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 62


def _dims(value: Any, key: str) -> tuple[int, ...]:
    if not (isinstance(value, tuple) and len(value) <= 16 and all(_count(v) for v in value)):
        raise ModelReadError(f"{METADATA}: {one_line(key, 80)} has a malformed size {value!r:.60}")
    return value


def _dtype(properties: Any) -> str | None:
    """The dtype of a ``TensorProperties`` record: torch >= 2.1 pickles a
    tuple (dtype, layout, requires_grad, memory_format, pin_memory), older
    ones the dataclass's fields."""
    if not isinstance(properties, Opaque):
        return None
    state = properties.state
    found = state[0] if isinstance(state, tuple) and state else properties.fields().get("dtype")
    return found.name if isinstance(found, DType) and found.name in DTYPES else None


def _covers(pieces: list[Piece], shape: tuple[int, ...]) -> bool:
    """The chunks lie inside the shape and their volumes add up to it (DCP
    writes each element once: overlap is not checked beyond the sum)."""
    total = 0
    for piece in pieces:
        if any(o + s > d for o, s, d in zip(piece.offsets, piece.sizes, shape, strict=True)):
            return False
        total += math.prod(piece.sizes)
    return total == math.prod(shape)


# ---------------------------------------------------------------------------
# the nested state dict


def _nest(flat: dict[str, Any], paths: dict) -> dict:
    """The state dict as saved: each flattened key put back at its
    ``planner_data`` path (or kept as a top-level key without one)."""
    root: dict = {}
    for key, value in flat.items():
        path = paths.get(key)
        if not (isinstance(path, tuple) and 0 < len(path) <= MAX_PATH_DEPTH
                and all(isinstance(p, (str, int)) and not isinstance(p, bool) for p in path)):
            path = (key,)
        node = root
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[path[-1]] = value
    return _lists(root)


def _lists(node: Any, name: Any = None) -> Any:
    """Dicts keyed 0..n-1 under ``param_groups`` back to the lists they were."""
    if not isinstance(node, dict):
        return node
    out = {k: _lists(v, k) for k, v in node.items()}
    if name == "param_groups" and out and sorted(out, key=repr) == list(range(len(out))):
        return [out[i] for i in range(len(out))]
    return out


def plain_layout(obj: dict, notes: list[str]) -> dict:
    """The three layouts the module docstring names, made plain for ``describe``."""
    from reglint.readers.torch_checkpoint import find_state_dict

    obj = dict(obj)
    optimizers = sorted(k for k in obj if isinstance(k, str) and re.fullmatch(r"optimizer_\d+", k))
    if "optimizer" not in obj and optimizers:  # Lightning: one entry per optimizer
        obj["optimizer"] = obj[optimizers[0]]
        if len(optimizers) > 1:
            notes.append(f"{len(optimizers)} optimizers saved ({', '.join(optimizers[:4])}): the first is described")
    top = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, TensorRef)}
    if top or find_state_dict(obj)[1] is None:
        inner = next((k for k, v in obj.items() if isinstance(v, dict) and not is_optimizer_state(v)
                      and find_state_dict(v)[1] is not None), None)
        if top:  # torchtitan: the model's parameters at the top level beside optimizer, lr_scheduler ...
            obj = {**{k: v for k, v in obj.items() if k not in top}, "model": top}
        elif inner is not None:  # PyTorch's DCP recipe: {"app": AppState} holding {"model": ..., "optim": ...}
            notes.append(f"the model and its optimizer are the checkpoint's {inner!r} entry")
            obj = dict(obj[inner])
    optimizer = obj.get("optimizer")
    if isinstance(optimizer, dict):
        obj["optimizer"] = by_name(unflatten_optimizer(optimizer))
    return obj


def unflatten_optimizer(optimizer: dict) -> dict:
    """torchtitan's ``state.<fqn>.<name>`` / ``param_groups.<fqn>.<setting>``
    keys as a state dict keyed by name; any other dict as it is."""
    if "state" in optimizer or not optimizer:
        return optimizer
    state: dict[str, dict] = {}
    settings: dict[str, dict] = {}
    for key, value in optimizer.items():
        match = FLAT_OPTIMIZER.fullmatch(key) if isinstance(key, str) else None
        if match is None:
            return optimizer  # not the flattened layout
        kind, fqn, name = match.groups()
        (state if kind == "state" else settings).setdefault(fqn, {})[name] = value
    groups: list[dict] = []
    for fqn, group in settings.items():
        same = next((g for g in groups if {k: v for k, v in g.items() if k != "params"} == group), None)
        if same is None:
            same = {**group, "params": []}
            groups.append(same)
        same["params"].append(fqn)
    return {"state": state, "param_groups": groups}


def by_name(optimizer: Any) -> Any:
    """An optimizer state keyed by parameter name: its groups' ``params``
    (names) are what ``torch_optim`` reads as ``param_names``."""
    groups = optimizer.get("param_groups") if isinstance(optimizer, dict) else None
    if not isinstance(groups, list):
        return optimizer
    named = []
    for group in groups:
        params = group.get("params") if isinstance(group, dict) else None
        if isinstance(params, list) and params and all(isinstance(p, str) for p in params):
            named.append({**group, "param_names": list(params)})
        else:
            named.append(group)
    return {**optimizer, "param_groups": named}


def _train_state_steps(model: Model, obj: dict, checkpoint: DcpCheckpoint) -> None:
    """torchtitan's ``train_state.step`` where the optimizer counts no steps
    (SGD keeps no ``step``)."""
    state = obj.get("train_state")
    step = state.get("step") if isinstance(state, dict) else None
    if model.optimizer is None or model.optimizer.iterations is not None or step is None:
        return
    value = checkpoint.scalar(step) if isinstance(step, TensorRef) else step
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1e15:
        model.optimizer.iterations = int(value)


def read_dcp(folder: Path, options: ReadOptions) -> Model:
    """The model a DCP folder holds, with its optimizer when it holds one."""
    from reglint.readers.torch_checkpoint import describe

    with DcpCheckpoint(folder, options) as checkpoint:
        obj = checkpoint.load()
        notes: list[str] = []
        obj = plain_layout(obj, notes)
        model = describe(obj, checkpoint, folder, options, fmt="torch_dcp", ordered=False)
        _train_state_steps(model, obj, checkpoint)
        model.notes.extend([*notes, checkpoint.files_note(), *checkpoint.notes])
    return model
