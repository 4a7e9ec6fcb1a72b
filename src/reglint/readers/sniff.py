"""Tell a file's format from its first bytes."""

from __future__ import annotations

import errno
import os
import re
import struct
from enum import Enum
from pathlib import Path

from reglint.errors import ModelReadError, UnsafeInputError, one_line

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
LFS_POINTER = b"version https://git-lfs.github.com/spec/"
GGUF_MAGIC = b"GGUF"  # llama.cpp's format
# The parts of a split GGUF model (llama.cpp's ``llama_split_path``:
# gguf-split and convert_hf_to_gguf.py --split-max-*), read together.
GGUF_SPLIT = re.compile(r"(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf", re.IGNORECASE)

# .pth.tar: timm's and PyTorch's ImageNet example's checkpoint.pth.tar, model_best.pth.tar
TORCH_SUFFIXES = (".pt", ".pth", ".pth.tar", ".bin", ".ckpt", ".safetensors")
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".onnx", ".gguf", ".tflite", *TORCH_SUFFIXES)
# A .json file is a model only when its content says so (``looks_like_keras_json``).
JSON_SUFFIX = ".json"
JSON_PROBE_BYTES = 64 << 10
_UTF8_BOM = b"\xef\xbb\xbf"
# JSON's strings and structural characters: enough to follow the nesting.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]:,]')
KERAS_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
# A KerasHub preset's task (save_to_preset of a task model): its config
# (the backbone's nested in it) and the weights it adds to the backbone's.
KERAS_HUB_TASK = ("task.json", "task.weights.h5")
# A folder holding one of these beside a config.json, or trainer_state.json,
# is a Hugging Face model or Trainer checkpoint folder (checkpoint-N/).
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
              "pytorch_model.bin.index.json")
PEFT_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
# diffusers' ModelMixin.save_pretrained: config.json (with _class_name) beside these.
DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
                     "diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.bin.index.json")
# Any weights file of a transformers or diffusers folder: single, shard
# (``-00001-of-00003``) or variant (``save_pretrained(variant="fp16")``:
# ``diffusion_pytorch_model.fp16.safetensors``, ``model.fp16-00001-of-00002.safetensors``)
# and their indexes (``model.safetensors.index.fp16.json``).
WEIGHT_FILE = re.compile(r"(?P<stem>model|pytorch_model|diffusion_pytorch_model)(?:\.(?P<variant>\w+))?"
                         r"(?P<shard>-\d+-of-\d+)?\.(?P<ext>safetensors|bin)")
WEIGHT_INDEX = re.compile(r"(?P<stem>model|pytorch_model|diffusion_pytorch_model)\.(?P<ext>safetensors|bin)"
                          r"\.index(?:\.(?P<variant>\w+))?\.json")
# accelerate's save_state writes these beside model.safetensors (or
# pytorch_model.bin): no config.json, one RNG pickle per process.
ACCELERATE_MARKERS = ("optimizer.bin", "random_states_0.pkl")
ACCELERATE_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "pytorch_model_fsdp.bin")
# What diffusers' LoRA training scripts save from their save hook instead
# (``save_lora_weights``): the adapter's layers the optimizer trains.
ACCELERATE_LORA = ("pytorch_lora_weights.safetensors", "pytorch_lora_weights.bin")
# The second and later models prepared together: model_1.safetensors ...
ACCELERATE_MODEL = re.compile(r"(?:model|pytorch_model)_(?P<index>[1-9]\d{0,3})\.(?:safetensors|bin)")
# The rest of save_state's files, numbered like the models where there are several.
ACCELERATE_FILES = re.compile(r"(optimizer|scheduler|sampler|dl_state_dict)(_\d+)?\.bin|random_states_\d+\.pkl"
                              r"|custom_checkpoint_\d+\.pkl|scaler\.pt")
# safetensors: an 8-byte little-endian header length, then a JSON object.
SAFETENSORS_HEADER_LIMIT = 100 * 1024 * 1024
# torch.save before 1.6 pickled this number (LONG1 0x1950a86a20f9469cfc6c) first.
# A TFLite FlatBuffer: a 4-byte root offset, then the file identifier.
TFLITE_IDENTIFIER = b"TFL3"
LEGACY_MAGIC = b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


class Format(str, Enum):
    KERAS_ZIP = "keras zip"
    HDF5 = "HDF5"
    SAVEDMODEL = "SavedModel folder"
    ONNX = "ONNX"
    TORCH_ZIP = "PyTorch checkpoint"
    SAFETENSORS = "safetensors"
    HF_FOLDER = "Hugging Face folder"
    ACCELERATE_MODEL = "accelerate checkpoint model"
    KERAS_FOLDER = "Keras folder"
    GGUF = "GGUF"
    PICKLE = "pickle"
    KERAS_JSON = "Keras JSON architecture"
    TFLITE = "TensorFlow Lite"
    TORCH_DCP = "PyTorch distributed checkpoint"
    DEEPSPEED = "DeepSpeed checkpoint"
    TF_CHECKPOINT = "TensorFlow checkpoint"
    UNKNOWN = "unknown format"


def sniff(path: Path) -> Format:
    """The format of ``path``; raises ModelReadError for what no reader takes."""
    if path.is_symlink():
        if not path.exists():
            raise ModelReadError(_broken_link(path))
        check_link_stays_inside(path, named=False)
    if path.is_dir():
        try:
            os.listdir(path)
        except PermissionError:
            raise ModelReadError("permission denied: the folder cannot be listed") from None
        if (path / "saved_model.pb").is_file():
            return Format.SAVEDMODEL
        if is_hf_folder(path):
            return Format.HF_FOLDER
        if is_keras_folder(path):
            return Format.KERAS_FOLDER
        if is_dcp_folder(path):
            return Format.TORCH_DCP
        if is_deepspeed_folder(path) or deepspeed_tag_folder(path) is not None:
            return Format.DEEPSPEED  # a tag folder, or the save_dir whose latest names one
        if (path / "model_index.json").is_file():
            raise ModelReadError("a diffusers pipeline folder (model_index.json): each component (unet/, vae/, "
                                 "text_encoder/ ...) is a model of its own; `reglint check` on the folder lints "
                                 "them all")
        raise ModelReadError("not a model folder: it holds none of saved_model.pb (SavedModel), config.json with "
                             "model.weights.h5 (Keras) or with weights (Hugging Face, diffusers), trainer_state.json, "
                             "optimizer.bin (accelerate), adapter_config.json (PEFT), .metadata with .distcp files "
                             "(torch.distributed.checkpoint), *model_states.pt or latest (DeepSpeed)")
    if not path.exists():
        raise ModelReadError("no such file or folder")  # as check says it (review 72, 5)
    if not path.is_file():
        raise ModelReadError("not a regular file")
    if accelerate_model_index(path) is not None:
        return Format.ACCELERATE_MODEL  # read with its optimizer_N.bin; its reader checks the bytes
    if tf_checkpoint_prefix(path) is not None:
        return Format.TF_CHECKPOINT
    try:
        with path.open("rb") as handle:
            head = handle.read(512)
    except OSError as exc:
        raise ModelReadError(f"cannot open: {exc.strerror or exc}") from None
    if not head:
        raise ModelReadError("empty file")
    if path.suffix == DISTCP_SUFFIX or (path.name == DCP_METADATA and is_dcp_folder(path.parent)):
        raise ModelReadError("one file of a torch.distributed.checkpoint folder: lint the folder "
                             f"({path.parent.name or path.parent}/), which holds the model")
    if head.startswith(LFS_POINTER):
        raise ModelReadError(
            "Git LFS pointer, not the model: fetch it with `git lfs pull` "
            "(in GitHub Actions, actions/checkout with `lfs: true`)"
        )
    if head.startswith(HDF5_MAGIC):
        return Format.HDF5
    if head.startswith(ZIP_MAGIC):
        return _zip_format(path, head)
    if head.startswith(GGUF_MAGIC):
        return Format.GGUF
    if head[4:8] == TFLITE_IDENTIFIER:  # before the pickle and JSON guesses a root offset could pass
        return Format.TFLITE
    if path.suffix.lower() == ".tflite":
        raise ModelReadError("not a TensorFlow Lite flatbuffer (no TFL3 identifier): truncated or mislabelled")
    if path.name == "saved_model.pb" or path.name == "keras_metadata.pb":
        return Format.SAVEDMODEL
    if looks_like_safetensors(head, path) or path.suffix.lower() == ".safetensors":
        return Format.SAFETENSORS
    if len(head) > 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # PROTO: a bare pickle
        return Format.PICKLE
    suffix = path.suffix.lower()
    leading_brace = head.lstrip(_UTF8_BOM + b" \t\r\n").startswith(b"{")
    if suffix == JSON_SUFFIX or (suffix not in (*MODEL_SUFFIXES, ".ort") and leading_brace):
        return Format.KERAS_JSON  # the reader refuses JSON that is not a Keras model
    if suffix == ".gguf":
        raise ModelReadError("not a GGUF file (bad magic): truncated or mislabelled")
    if path.suffix.lower() in (".onnx", ".ort") or _looks_like_onnx(head):
        return Format.ONNX
    if path.suffix.lower() in (".h5", ".hdf5"):
        raise ModelReadError("not an HDF5 file (bad signature): truncated or mislabelled")
    if path.suffix.lower() == ".keras":
        raise ModelReadError("not a zip archive: truncated or mislabelled .keras file")
    raise ModelReadError("unrecognised file format")


def _zip_format(path: Path, head: bytes) -> Format:
    """A zip archive is a Keras model or a torch.save checkpoint. torch.save
    writes ``<folder>/data.pkl`` first and Keras its JSON first; an archive
    starting otherwise is told by its member list."""
    first = _first_member(head)
    if first is not None and first.endswith("data.pkl"):
        return Format.TORCH_ZIP
    if first in KERAS_MEMBERS:
        return Format.KERAS_ZIP
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return Format.KERAS_ZIP  # its reader says what is wrong
    if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names) and "config.json" not in names:
        return Format.TORCH_ZIP
    if "config.json" in names or path.suffix.lower() == ".keras":
        return Format.KERAS_ZIP  # a .keras without config.json: its reader says so
    raise ModelReadError("a zip archive holding neither config.json (a .keras model) nor data.pkl (a torch.save "
                         "checkpoint): not a model")


def _first_member(head: bytes) -> str | None:
    if len(head) < 30 or not head.startswith(ZIP_MAGIC):
        return None
    name_len = struct.unpack("<H", head[26:28])[0]
    name = head[30:30 + name_len]
    return name.decode("utf-8", errors="replace") if len(name) == name_len else None


def looks_like_safetensors(head: bytes, path: Path | None = None) -> bool:
    """An 8-byte header length within the file, then ``{``."""
    if len(head) < 10 or head[8:9] != b"{":
        return False
    size = struct.unpack("<Q", head[:8])[0]
    if size > SAFETENSORS_HEADER_LIMIT:
        return False
    try:
        return path is None or size + 8 <= path.stat().st_size
    except OSError:
        return False


def looks_like_torch_bin(path: Path) -> bool:
    """A ``.bin`` file is linted only when it is a torch.save archive (or a
    legacy torch pickle, to be refused); any other ``.bin`` is not a model."""
    try:
        with path.open("rb") as handle:
            head = handle.read(512)
    except OSError:
        return False
    first = _first_member(head)
    if first is not None:
        return first.endswith("data.pkl")
    return is_legacy_pickle(head)


def is_legacy_pickle(head: bytes) -> bool:
    """A pre-1.6 torch.save file: a pickle (PROTO opcode) holding torch's magic number first."""
    return len(head) > 2 and head[0] == 0x80 and head[1] <= 5 and LEGACY_MAGIC in head[:64]


DCP_METADATA = ".metadata"
DISTCP_SUFFIX = ".distcp"


def is_dcp_folder(path: Path) -> bool:
    """A ``torch.distributed.checkpoint`` folder (``torch_dcp``): ``.metadata``
    beside ``__<rank>_<n>.distcp`` files."""
    try:
        return (path / DCP_METADATA).is_file() and any(p.suffix == DISTCP_SUFFIX for p in path.iterdir())
    except OSError:
        return False


def tf_checkpoint_prefix(path: Path) -> Path | None:
    """``cp.ckpt`` for ``cp.ckpt.index`` when its ``cp.ckpt.data-*-of-*``
    shards lie beside it: a TensorFlow training checkpoint (``tf_checkpoint``),
    not a SavedModel's ``variables/variables.index``."""
    if path.suffix != ".index" or not path.is_file():
        return None
    prefix = path.with_suffix("")
    if prefix.name == "variables" and path.parent.name == "variables":
        return None  # a SavedModel's bundle (or a stray one): the SavedModel reader's
    escaped = re.sub(r"([*?\[])", r"[\1]", prefix.name)
    return prefix if any(path.parent.glob(f"{escaped}.data-[0-9]*-of-[0-9]*")) else None


# DeepSpeed's save_checkpoint tag folder (global_step<N>/): model states of
# mp rank 00 (one per data-parallel rank at ZeRO-3), optimizer states per rank.
DEEPSPEED_MODEL_STATES = re.compile(r"(?:zero_pp_rank_(?P<rank>\d{1,6})_)?mp_rank_(?P<mp>\d{2,6})_model_states\.pt")
DEEPSPEED_OPTIM_STATES = re.compile(
    r"(?:bf16_|fp16_)?zero_pp_rank_(?P<rank>\d{1,6})_mp_rank_(?P<mp>\d{2,6})_optim_states\.pt")
DEEPSPEED_LATEST = "latest"


def is_deepspeed_folder(path: Path) -> bool:
    """A DeepSpeed checkpoint tag folder (``deepspeed_checkpoint``)."""
    try:
        return any(DEEPSPEED_MODEL_STATES.fullmatch(p.name) for p in path.iterdir())
    except OSError:
        return False


def deepspeed_tag_folder(folder: Path) -> Path | None:
    """The tag folder ``folder/latest`` names (a Trainer checkpoint under
    DeepSpeed keeps its optimizer there), when it is one."""
    try:
        latest = folder / DEEPSPEED_LATEST
        if not latest.is_file() or latest.stat().st_size > 256:
            return None
        tag = latest.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", tag) or tag.startswith("."):
        return None
    path = folder / tag
    return path if path.is_dir() and not path.is_symlink() and is_deepspeed_folder(path) else None


def is_keras_folder(path: Path) -> bool:
    """A Keras 3 ``model.save(folder, zipped=False)``: the ``.keras``
    archive's members as files (a Hugging Face folder is told first)."""
    return (path / "config.json").is_file() and (path / "model.weights.h5").is_file()


def is_hf_folder(path: Path) -> bool:
    """A folder ``hf_folder`` reads as one model: a Hugging Face
    ``save_pretrained`` folder (transformers, diffusers, PEFT), a Trainer
    ``checkpoint-N/`` or an accelerate ``save_state`` folder."""
    if (path / "trainer_state.json").is_file():
        return True
    if (path / "config.json").is_file() and (any((path / name).is_file() for name in HF_WEIGHTS + DIFFUSERS_WEIGHTS)
                                             or bool(weight_files(path))):
        return True
    if (path / "adapter_config.json").is_file() and any((path / name).is_file() for name in PEFT_WEIGHTS):
        return True  # a PEFT adapter's save_pretrained folder
    if is_accelerate_folder(path):
        return True
    return (path / "optimizer.pt").is_file() and (path / "training_args.bin").is_file()


def is_diffusers_folder(path: Path) -> bool:
    """A diffusers ``ModelMixin.save_pretrained`` folder (a pipeline's
    ``unet/``, ``vae/``): its weights are ``diffusion_pytorch_model*``."""
    return (path / "config.json").is_file() and any(m["stem"] == "diffusion_pytorch_model"
                                                    for m in weight_files(path).values())


def is_accelerate_folder(path: Path) -> bool:
    """An ``Accelerator.save_state`` folder: the first prepared model's
    weights beside ``optimizer.bin`` or the RNG states; or, without weights
    (a training script's save hook wrote the model elsewhere, popping it
    from save_state: diffusers' scripts), ``optimizer.bin`` beside them.
    Under FSDP the weights are ``pytorch_model_fsdp.bin`` (a full state
    dict) or the ``pytorch_model_fsdp_0/`` DCP folder (sharded), the
    optimizer ``optimizer.bin`` or ``optimizer_0/``."""
    markers = [(path / name).is_file() for name in ACCELERATE_MARKERS]
    if any((path / name).is_file() for name in ACCELERATE_WEIGHTS) or fsdp_model_folder(path) is not None:
        return any(markers) or is_dcp_folder(path / FSDP_OPTIMIZER_FOLDER)
    return all(markers)


# accelerate's FSDP saves (accelerate.utils.fsdp_utils, FSDP_MODEL_NAME):
# SHARDED_STATE_DICT writes DCP folders for the first model and optimizer.
FSDP_MODEL_FOLDER = "pytorch_model_fsdp_0"
FSDP_OPTIMIZER_FOLDER = "optimizer_0"
FSDP_FULL_WEIGHTS = "pytorch_model_fsdp.bin"


def fsdp_model_folder(folder: Path) -> Path | None:
    """accelerate's sharded FSDP model folder in ``folder`` (a save_state or
    Trainer checkpoint under FSDP), when there is one."""
    path = folder / FSDP_MODEL_FOLDER
    return path if not path.is_symlink() and is_dcp_folder(path) else None


def is_fsdp_part(path: Path) -> bool:
    """``pytorch_model_fsdp_0/`` or ``optimizer_0/`` of a folder read as one
    model with them (``hf_folder``)."""
    return path.name in (FSDP_MODEL_FOLDER, FSDP_OPTIMIZER_FOLDER) and is_dcp_folder(path) and (
        is_hf_folder(path.parent))


# An EMA copy saved beside the trained model (diffusers' ``unet_ema/``): not what the optimizer updates.
_EMA = re.compile(r"(^|[_-])ema($|[_-])", re.IGNORECASE)


def accelerate_hook_folder(folder: Path) -> Path | None:
    """Where a training script's ``register_save_state_pre_hook`` saved the
    model of an accelerate folder without weights of its own (diffusers'
    scripts: ``unet/`` by ``save_pretrained``): its one model subfolder,
    EMA copies aside; None when there are none or several."""
    if (any((folder / name).is_file() for name in ACCELERATE_WEIGHTS) or fsdp_model_folder(folder) is not None
            or not is_accelerate_folder(folder)):
        return None
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return None
    found = [p for p in entries if p.is_dir() and not p.is_symlink() and not _EMA.search(p.name) and is_hf_folder(p)]
    return found[0] if len(found) == 1 else None


def accelerate_model_index(path: Path) -> int | None:
    """N for ``model_N.safetensors``/``pytorch_model_N.bin`` of an
    accelerate ``save_state`` folder (its (N+1)th prepared model)."""
    match = ACCELERATE_MODEL.fullmatch(path.name)
    if match is None or not any((path.parent / name).is_file() for name in ACCELERATE_MARKERS):
        return None
    return int(match["index"])


def weight_files(folder: Path) -> dict[str, re.Match]:
    """The transformers/diffusers weight files and indexes in ``folder``
    (any variant, any shard), by name."""
    try:
        names = os.listdir(folder)
    except OSError:
        return {}
    found = {}
    for name in names:
        match = WEIGHT_FILE.fullmatch(name) or WEIGHT_INDEX.fullmatch(name)
        if match is not None:
            found[name] = match
    return found


def _looks_like_onnx(head: bytes) -> bool:
    # A serialized ModelProto starts with field 1 (ir_version, varint: 0x08)
    # and usually field 2/3 strings; a weak hint used only without a suffix.
    return len(head) > 2 and head[0] == 0x08 and head[1] < 0x20


def looks_like_keras_json(path: Path) -> bool:
    """Whether a JSON file is a Keras model architecture, from its first
    64 KiB (discovery asks this of every ``.json`` file in a tree, so it
    must be cheap): ``model.to_json()`` writes an object whose top level
    holds ``class_name`` (a string) and ``config``; a ``class_name`` nested
    deeper (a training log quoting its model) does not count. The reader
    then decides; a file found by searching that it refuses is skipped."""
    try:
        with path.open("rb") as handle:
            head = handle.read(JSON_PROBE_BYTES)
    except OSError:
        return False
    keys = top_level_keys(head)
    return isinstance(keys.get("class_name"), str) and "config" in keys


def top_level_keys(head: bytes) -> dict[str, str | None]:
    """The keys of a JSON object's top level found in ``head`` (the start of
    the document), each with its value when that is a string, without
    parsing the rest: a scan of strings and brackets, stopped at the end of
    the top-level object or of ``head``.

    >>> top_level_keys(b'{"class_name": "Sequential", "config": {"class_name": "x", "layers": [')
    {'class_name': 'Sequential', 'config': None}
    >>> top_level_keys(b'{"model": {"class_name": "Sequential", "config": {}}}')
    {'model': None}
    >>> top_level_keys(b'[{"class_name": "Sequential"}]')
    {}
    """
    head = head.lstrip(_UTF8_BOM + b" \t\r\n")
    if not head.startswith(b"{"):
        return {}
    keys: dict[str, str | None] = {}
    depth, key, after_colon = 0, None, False
    for match in _JSON_TOKEN.finditer(head):
        token = match.group()
        if token in (b"{", b"["):
            depth += 1
        elif token in (b"}", b"]"):
            depth -= 1
            if depth == 0:
                break
        elif depth != 1:
            continue
        elif token == b":":
            after_colon = True
        elif token == b",":
            key, after_colon = None, False
        elif token.startswith(b'"'):
            text = token[1:-1].decode("utf-8", errors="replace")
            if after_colon and key is not None:
                keys[key] = text
            elif not after_colon:
                key = text
                keys.setdefault(key, None)
    return keys


def _broken_link(path: Path) -> str:
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop: the link never reaches a file"
    return "broken symbolic link: its target does not exist"


def link_stays_inside(path: Path) -> bool:
    """Whether the target of ``path`` (a link or not) lies inside the folder
    that holds it or inside the working directory: the one rule for links,
    for the readers and for a folder search (``engine.discover``)."""
    # os.path.realpath, not Path.resolve(): the latter raises RuntimeError
    # on a symlink loop (Python 3.11); the loop is reported when it is opened.
    target = Path(os.path.realpath(path))
    roots = [Path(os.path.realpath(path.absolute().parent))]
    cwd = Path(os.path.realpath(os.getcwd()))
    if cwd.parent != cwd:
        roots.append(cwd)
    return any(root == target.parent or root in target.parents for root in roots)


def check_link_stays_inside(path: Path, named: bool = True) -> None:
    """A symbolic link is followed only to a target inside the folder that
    holds it or inside the working directory (the project being linted,
    where pre-commit and CI run): a model file in a pull request must not
    make the linter read ``/etc/shadow`` or a file elsewhere on the CI
    machine, but ``latest.keras -> ../runs/best.keras`` within the project
    is a common layout (review 54, 5). A working directory that is the
    filesystem's root widens nothing. ``named``: the message names the
    link (a file inside a model's folder; the file given is named by the
    caller, and was named twice, review 54, 5)."""
    if not link_stays_inside(path):
        raise UnsafeInputError(f"{one_line(path.name, 120) + ': ' if named else ''}symbolic link pointing outside "
                               "the model's folder and the working directory: refused")
