"""Hugging Face folders: a ``Trainer`` ``checkpoint-N/``, a
``save_pretrained`` model folder (transformers, diffusers, PEFT) or an
accelerate ``save_state`` folder, read as one model.

* weights: ``model.safetensors`` (or the shards a
  ``model.safetensors.index.json`` lists), else diffusers'
  ``diffusion_pytorch_model.safetensors`` (or its shards), else
  ``pytorch_model.bin``/``diffusion_pytorch_model.bin`` (or their shards),
  torch.save archives read by ``torch_zip``; else the same names with a
  ``save_pretrained(variant=...)`` tag (``.fp16.``: read when the plain
  ones are absent, noted when beside them); else a PEFT adapter's
  ``adapter_model.safetensors``/``.bin`` (the adapters and the modules
  trained in full, PEFT's ``base_model.model.`` prefix dropped), described
  by ``adapter_config.json`` (type, r, lora_alpha, targets);
* ``optimizer.pt`` (the Trainer's), else ``optimizer.bin`` (accelerate's):
  the optimizer's state dict (``torch_optim``); the Trainer puts biases and
  LayerNorm weights in a group without decay. A corrupt one costs the
  optimizer (a note), not the weights; a refused one (a pickle naming a
  global outside the allow-list) is an error;
* an accelerate folder (``accelerate_state``): ``scheduler.bin`` names the
  schedule; its second and later models (``model_1.safetensors``) are read
  by ``read_accelerate_model`` with ``optimizer_1.bin``; weights a save
  hook wrote elsewhere are read from its ``unet/`` subfolder or
  ``pytorch_lora_weights.safetensors``;
* ``training_args.bin``: a pickled ``TrainingArguments``, read through the
  same refusing interpreter with ``transformers``/``accelerate`` classes as
  inert records: ``weight_decay``, ``learning_rate``, ``optim`` (the class
  hint), ``lr_scheduler_type``, warm-up, batch size. Without
  ``optimizer.pt`` these describe the optimizer;
* ``trainer_state.json``: ``global_step`` (steps taken), ``max_steps``;
* ``config.json``: the architecture's name and the transformers version
  (diffusers: ``_class_name`` and ``_diffusers_version``).

``rng_state.pth``, ``scheduler.pt``, accelerate's ``random_states_*.pkl``
and ``scaler.pt`` are not read (RNG states pickle numpy objects, outside
the allow-list). Every file is opened by name inside the
folder; a symbolic link pointing out of it is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import weakref
from pathlib import Path
from typing import Any, NamedTuple

from reglint.errors import ModelReadError, ReglintError, UnsafeInputError, one_line
from reglint.model import LearningRate, Model, Optimizer, Provenance
from reglint.readers.accelerate_state import (
    hook_note,
    mapping_note,
    models_note,
    numbered,
    schedule_info,
    scheduler_file,
)
from reglint.readers.bnb_quantized import dequantized_checkpoint, quantized_note
from reglint.readers.limits import ReadOptions
from reglint.readers.safe_io import load_json
from reglint.readers.sniff import (
    ACCELERATE_LORA,
    FSDP_FULL_WEIGHTS,
    FSDP_OPTIMIZER_FOLDER,
    accelerate_hook_folder,
    accelerate_model_index,
    check_link_stays_inside,
    deepspeed_tag_folder,
    fsdp_model_folder,
    is_accelerate_folder,
    is_dcp_folder,
    weight_files,
)
from reglint.readers.torch_checkpoint import NamedTensor, describe, find_state_dict, stored_tensors_of, tensors_of
from reglint.readers.torch_optim import infer_class, is_optimizer_state, number
from reglint.readers.torch_pickle import TRAINING_ARGS_MODULES, Opaque

ARG_FIELDS = ("weight_decay", "learning_rate", "optim", "lr_scheduler_type", "warmup_steps", "warmup_ratio",
              "adam_beta1", "adam_beta2", "adam_epsilon", "per_device_train_batch_size",
              "gradient_accumulation_steps", "num_train_epochs", "max_steps")


@dataclasses.dataclass(frozen=True)
class Parts:
    """The files of a folder that make up one model."""

    weights: tuple[tuple[str, str, bool], ...]  # (index, single file, safetensors?) to try in turn
    optimizers: tuple[str, ...] = ("optimizer.pt", "optimizer.bin")  # the first found is read
    accelerate: bool = False  # an accelerate save_state: scheduler.bin names the lr schedule
    index: int = 0  # accelerate's model number; only the first owns the folder's config and arguments
    hook: Path | None = None  # the subfolder a save hook wrote the weights to (accelerate_hook_folder)


def read_hf_folder(folder: Path, options: ReadOptions) -> Model:
    accelerate = is_accelerate_folder(folder) and not (folder / "trainer_state.json").is_file()
    hook = accelerate_hook_folder(folder) if accelerate else None
    candidates = weight_candidates(hook or folder)
    if accelerate and hook is None:  # a LoRA training script's save hook wrote the adapter's layers
        candidates += tuple((f"{name}.index.json", name, name.endswith(".safetensors")) for name in ACCELERATE_LORA)
    return _read(folder, options, Parts(candidates, accelerate=accelerate, hook=hook))


def read_accelerate_model(path: Path, options: ReadOptions) -> Model:
    """``model_N.safetensors`` (``pytorch_model_N.bin``) of an accelerate
    ``save_state`` folder: its (N+1)th model, with ``optimizer_N.bin``."""
    index = accelerate_model_index(path)
    if index is None:
        raise ModelReadError("not a model of an accelerate save_state folder")
    parts = Parts(((f"{path.name}.index.json", path.name, path.suffix.lower() == ".safetensors"),),
                  optimizers=(numbered("optimizer.bin", index),), accelerate=True, index=index)
    model = _read(path.parent, options, parts)
    model.path = str(path)
    return model


def _read(folder: Path, options: ReadOptions, parts: Parts) -> Model:
    with contextlib.ExitStack() as stack:
        quantized: dict[str, int] = {}
        undecoded: list[str] = []  # notes on quantized weights counted without statistics
        source = parts.hook or folder  # where the weights and their config.json are
        config = _json_object(source, "config.json", options) if parts.index == 0 else None
        weights = _weights(source, options, stack, quantized, _quantization_config(config), undecoded,
                           parts.weights)
        args = _training_args(folder, options) if parts.index == 0 else {}
        found = _optimizer_file(folder, parts.optimizers, options, stack)
        if found is None and weights.tensors is None:
            raise ModelReadError("Hugging Face folder without model weights or optimizer.pt")
        model = _model(folder, options, parts, weights, found, args)
    if args:
        model.metadata["training_args"] = {k: _plain(args[k]) for k in ARG_FIELDS if k in args}
    if parts.index == 0:
        _trainer_state(folder, options, model)
        _config(config, model)
        _adapter_config(folder, options, model, weights.adapter)
        _unread_weights(source, weights.files, model.notes)
    if parts.accelerate:
        model.notes.extend(n for n in (hook_note(folder, parts.hook, weights.label),
                                       models_note(folder, parts.index, weights.label or "model.safetensors")) if n)
    if quantized:
        model.notes.append(quantized_note(quantized))
    model.notes.extend(undecoded)
    return model


@dataclasses.dataclass
class OptimizerFile:
    """An optimizer state file of the folder: loaded, or why it could not be."""

    name: str
    obj: Any = None
    archive: Any = None
    error: str | None = None


def _optimizer_file(folder: Path, names: tuple[str, ...], options: ReadOptions, stack) -> OptimizerFile | None:
    """The first of ``names`` in the folder, loaded by the refusing
    unpickler (or accelerate's FSDP ``optimizer_0/``). A corrupt one is
    returned with its error (it costs the optimizer, not the weights); a
    refused one raises."""
    from reglint.readers.torch_zip import TorchArchive

    if "optimizer.bin" in names and is_dcp_folder(folder / FSDP_OPTIMIZER_FOLDER):
        if (folder / FSDP_OPTIMIZER_FOLDER).is_symlink():
            check_link_stays_inside(folder / FSDP_OPTIMIZER_FOLDER)
        return _dcp_optimizer(folder / FSDP_OPTIMIZER_FOLDER, options, stack)
    tag = deepspeed_tag_folder(folder)
    if tag is not None and not any(_member(folder, name) for name in names):
        return _deepspeed_optimizer(tag, options, stack)
    for name in names:
        path = _member(folder, name)
        if path is None:
            continue
        try:
            archive = stack.enter_context(TorchArchive(path, options, what=name))
            obj = archive.load()
        except UnsafeInputError:
            raise
        except ModelReadError as exc:
            return OptimizerFile(name, error=one_line(str(exc), 160))
        if not is_optimizer_state(obj):
            return OptimizerFile(name, error="it holds no optimizer state_dict (param_groups and state)")
        return OptimizerFile(name, obj, archive)
    return None


def _dcp_optimizer(folder: Path, options: ReadOptions, stack) -> OptimizerFile:
    """accelerate's ``optimizer_0/`` (``{"optimizer": FSDP's optimizer state, keyed by name}``)."""
    from reglint.readers.torch_dcp import DcpCheckpoint, plain_layout

    name = f"{folder.name}/"
    checkpoint = stack.enter_context(DcpCheckpoint(folder, options))
    try:
        optimizer = plain_layout(checkpoint.load(), []).get("optimizer")
    except UnsafeInputError:
        raise
    except ModelReadError as exc:
        return OptimizerFile(name, error=one_line(str(exc), 160))
    if not is_optimizer_state(optimizer):
        return OptimizerFile(name, error="it holds no optimizer state_dict (param_groups and state)")
    return OptimizerFile(name, optimizer, checkpoint)


# A Trainer checkpoint's DeepSpeed tag, opened once for its weights (ZeRO-3
# without gathered weights) and its optimizer: per reading (its ExitStack).
_DEEPSPEED_OPEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _deepspeed_checkpoint(tag: Path, options: ReadOptions, stack):
    from reglint.readers.deepspeed_checkpoint import DeepSpeedCheckpoint

    opened = _DEEPSPEED_OPEN.setdefault(stack, {})
    if tag not in opened:
        opened[tag] = stack.enter_context(DeepSpeedCheckpoint(tag, options))
    return opened[tag]


def _deepspeed_optimizer(tag: Path, options: ReadOptions, stack) -> OptimizerFile:
    """A Trainer's optimizer under DeepSpeed: in the tag folder ``latest`` names."""
    name = f"{tag.name}/"
    try:
        optimizer, archive = _deepspeed_checkpoint(tag, options, stack).optimizer_state()
    except UnsafeInputError:
        raise
    except ModelReadError as exc:
        return OptimizerFile(name, error=one_line(str(exc), 160))
    if optimizer is None:
        return OptimizerFile(name, error="it holds no optimizer states")
    return OptimizerFile(name, optimizer, archive)


def _model(folder: Path, options: ReadOptions, parts: Parts, weights: Weights, found: OptimizerFile | None,
           args: dict) -> Model:
    """The model described from its weights and its optimizer file (else
    the Trainer's arguments)."""
    fmt = _format(parts, weights, found)
    if found is not None and found.error is None:
        model = _with_optimizer(folder, options, parts, weights, found, args, fmt)
        if model is not None:
            return model
    if found is not None and weights.tensors is None:
        raise ModelReadError(f"{found.name}: {found.error}")
    model = describe({}, None, folder, options, fmt=fmt, model_tensors=weights.tensors, ordered=weights.ordered,
                     optimizer_note=not args and found is None)
    if found is not None:
        model.notes.append(f"{found.name} not read ({found.error}): the optimizer is unknown; pass --optimizer, "
                           "--learning-rate and --weight-decay to check decay")
    if args:
        model.optimizer = _optimizer_from_args(args, model.notes)
    return model


def _with_optimizer(folder: Path, options: ReadOptions, parts: Parts, weights: Weights, found: OptimizerFile,
                    args: dict, fmt: str) -> Model | None:
    """The model with ``found``'s optimizer; None (its error set) when the
    optimizer's state tensors cannot be read, so the weights may still be."""
    notes: list[str] = []
    saved, peaks = (schedule_info(folder, parts.index, options, notes) if parts.accelerate
                    else scheduler_file(folder / "scheduler.pt", options, notes))
    schedule = _text(args.get("lr_scheduler_type")) or saved
    try:
        model = describe(found.obj, found.archive, folder, options, fmt=fmt, model_tensors=weights.tensors,
                         ordered=weights.ordered, hint=_text(args.get("optim")), schedule=schedule, peaks=peaks)
    except UnsafeInputError:
        raise
    except ModelReadError as exc:
        found.error = one_line(str(exc), 160)
        return None
    if weights.tensors is not None:
        notes.append(mapping_note(found.name, found.obj["param_groups"], weights.label, weights.ordered) or "")
    model.notes.extend(n for n in notes if n)
    return model


def _format(parts: Parts, weights: Weights, found: OptimizerFile | None) -> str:
    if parts.accelerate:
        return "accelerate_state"
    if found is not None and found.name == "optimizer.pt":
        return "hf_trainer"
    return "diffusers" if weights.label.startswith("diffusion_pytorch_model") else "hf_folder"


def _member(folder: Path, name: str) -> Path | None:
    path = folder / name
    if path.is_symlink():
        check_link_stays_inside(path)
    return path if path.is_file() else None


# (stem of the safetensors weights, stem of the torch.save ones): transformers', diffusers'.
WEIGHT_STEMS = (("model", "pytorch_model"), ("diffusion_pytorch_model", "diffusion_pytorch_model"))


def weight_candidates(folder: Path) -> tuple[tuple[str, str, bool], ...]:
    """(index, single file, safetensors?) in the order they are tried:
    safetensors before torch.save, the plain names before the variants
    ``save_pretrained(variant=...)`` writes (``model.fp16.safetensors``,
    its index ``model.safetensors.index.fp16.json``)."""
    variants = sorted({m["variant"] for m in weight_files(folder).values() if m["variant"]})
    out = []
    for variant in [None, *variants]:
        tag = f".{variant}" if variant else ""
        for stems in WEIGHT_STEMS:
            for stem, ext in zip(stems, ("safetensors", "bin"), strict=True):
                out.append((f"{stem}.{ext}.index{tag}.json", f"{stem}{tag}.{ext}", ext == "safetensors"))
    out.append((f"{FSDP_FULL_WEIGHTS}.index.json", FSDP_FULL_WEIGHTS, False))  # accelerate's FSDP FULL_STATE_DICT
    return tuple(sorted(out, key=lambda c: (c[1].count(".") > 1, not c[2])))


class Weights(NamedTuple):
    tensors: list[NamedTensor] | None
    ordered: bool  # whether the tensors come in the module order (torch.save keeps it, safetensors sorts)
    adapter: bool  # a PEFT adapter's
    files: tuple[str, ...] = ()  # the files read

    @property
    def label(self) -> str:
        """The file read, or the index of the shards read."""
        return self.files[0] if self.files else ""


def _weights(folder: Path, options: ReadOptions, stack, quantized: dict[str, int],
             quantization_config: dict | None = None, notes: list[str] | None = None,
             candidates: tuple[tuple[str, str, bool], ...] = ()) -> Weights:
    """The model's tensors from the first of ``candidates`` the folder
    holds, else a PEFT adapter's (``quantized``: quantized weights found,
    by kind; ``notes``: what to say of those not decoded)."""
    for index_name, single, safetensors in candidates:
        files = _shards(folder, index_name, options) or ([single] if _member(folder, single) else [])
        if not files:
            continue
        tensors: list[NamedTensor] = []
        shards = Shards()
        for name in files:
            path = _member(folder, name)
            if path is None:
                raise ModelReadError(f"weights shard {name} listed in {index_name} is missing")
            if safetensors:
                file = _safetensors(path, options, stack)
                tensors.extend(shards.add(name, file.stored_tensors(), file))
            else:
                tensors.extend(shards.add(name, *_archive_tensors(path, options, stack)))
        # over every shard at once: a weight and its scales may sit in two
        tensors, found = dequantized_checkpoint(tensors, shards, options.chunk_bytes, quantization_config, notes)
        for kind, count in found.items():
            quantized[kind] = quantized.get(kind, 0) + count
        return Weights(tensors, not safetensors, False, (single,) if files == [single] else (index_name, *files))
    dcp = fsdp_model_folder(folder)
    if dcp is not None:  # accelerate's (and the Trainer's) FSDP SHARDED_STATE_DICT
        return Weights(_dcp_tensors(dcp, options, stack), False, False, (f"{dcp.name}/",))
    tag = deepspeed_tag_folder(folder)
    if tag is not None:  # a Trainer under ZeRO-3 without gathered weights: the DeepSpeed states
        return Weights(_deepspeed_checkpoint(tag, options, stack).tensors(), True, False, (f"{tag.name}/",))
    for single, safetensors in (("adapter_model.safetensors", True), ("adapter_model.bin", False)):
        path = _member(folder, single)
        if path is not None:  # a PEFT adapter: the trained tensors, not the frozen base model
            tensors = [_unwrapped(t) for t in _tensors_in(path, options, stack, safetensors, quantized)]
            return Weights(tensors, not safetensors, True, (single,))
    return Weights(None, True, False)


def _unread_weights(folder: Path, read: tuple[str, ...], notes: list[str]) -> None:
    """Weight files beside those read: the same model in another format or
    variant (``diffusion_pytorch_model.fp16.safetensors``), not linted again."""
    others = sorted(set(weight_files(folder)) - set(read))
    if others and read:
        listed = ", ".join(others[:4]) + (f" and {len(others) - 4} more" if len(others) > 4 else "")
        notes.append(f"weights read from {read[0]}; also in the folder, not read (another format or variant of "
                     f"the same model): {listed}")


# PEFT saves an adapter's tensors under its wrapper's attributes
# (``PeftModel.base_model`` -> ``LoraModel.model``); VeRA's shared random
# projections under ``base_model.`` alone, frozen buffers, not parameters
# (torch counts them as none: they are counted here, not trained).
PEFT_PREFIXES = ("base_model.model.", "base_model.")
PEFT_FROZEN = re.compile(r"(^|\.)vera_[AB](\.|$)")


def _unwrapped(tensor: NamedTensor) -> NamedTensor:
    for prefix in PEFT_PREFIXES:
        if tensor.name.startswith(prefix) and len(tensor.name) > len(prefix):
            tensor = dataclasses.replace(tensor, name=tensor.name[len(prefix):])
            break
    return dataclasses.replace(tensor, frozen=True) if PEFT_FROZEN.search(tensor.name) else tensor


class Shards:
    """The tensors of a (sharded) save, each read from its file: a
    safetensors file or a torch archive's ``ArchiveSource``."""

    def __init__(self) -> None:
        self.files: dict[str, Any] = {}

    def add(self, shard: str, tensors: list[NamedTensor], source) -> list[NamedTensor]:
        """``tensors`` of one shard, their aliases made the shard's own
        (each torch archive numbers its storages from "0": two shards'
        first tensors are not one tied tensor)."""
        for tensor in tensors:
            self.files[tensor.name] = source
        return [t if t.alias is None else dataclasses.replace(t, alias=(shard, t.alias)) for t in tensors]

    def values(self, name: str):
        return self.files[name].values(name)

    def stored_bytes(self, name: str, start: int, stop: int):
        return self.files[name].stored_bytes(name, start, stop)


def _archive_tensors(path: Path, options: ReadOptions, stack) -> tuple[list[NamedTensor], Any]:
    """A ``pytorch_model*.bin``'s tensors as stored, and their source."""
    from reglint.readers.torch_zip import TorchArchive

    archive = stack.enter_context(TorchArchive(path, options))
    _, state_dict = find_state_dict(archive.load())
    if state_dict is None:
        raise ModelReadError(f"{path.name} holds no state_dict")
    return stored_tensors_of(state_dict, archive)


def _dcp_tensors(folder: Path, options: ReadOptions, stack) -> list[NamedTensor]:
    """The model tensors of accelerate's ``pytorch_model_fsdp_0/`` (``{"model": state_dict}``)."""
    from reglint.readers.torch_dcp import DcpCheckpoint, plain_layout

    checkpoint = stack.enter_context(DcpCheckpoint(folder, options))
    _, state_dict = find_state_dict(plain_layout(checkpoint.load(), []))
    if state_dict is None:
        raise ModelReadError(f"{folder.name}/ holds no model state_dict")
    return stored_tensors_of(state_dict, checkpoint)[0]


def _safetensors(path: Path, options: ReadOptions, stack):
    from reglint.readers.safetensors_reader import SafetensorsFile

    return stack.enter_context(SafetensorsFile(path, options))


def _tensors_in(path: Path, options: ReadOptions, stack, safetensors: bool,
                quantized: dict[str, int] | None = None) -> list[NamedTensor]:
    if safetensors:
        from reglint.readers.safetensors_reader import SafetensorsFile

        file = stack.enter_context(SafetensorsFile(path, options))
        tensors = file.tensors()
        for kind, count in file.quantized.items():  # summed over the shards
            if quantized is not None:
                quantized[kind] = quantized.get(kind, 0) + count
        return tensors
    from reglint.readers.torch_zip import TorchArchive

    archive = stack.enter_context(TorchArchive(path, options))
    _, state_dict = find_state_dict(archive.load())
    if state_dict is None:
        raise ModelReadError(f"{path.name} holds no state_dict")
    return tensors_of(state_dict, archive, quantized)


def _shards(folder: Path, index_name: str, options: ReadOptions) -> list[str]:
    path = _member(folder, index_name)
    if path is None:
        return []
    index = _json(path, index_name, options)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        raise ModelReadError(f"{index_name} has no weight_map")
    names = []
    for name in weight_map.values():
        if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
            raise ModelReadError(f"{index_name} names a shard outside the folder")
        if name not in names:
            names.append(name)
    return names


def _json(path: Path, what: str, options: ReadOptions) -> Any:
    """A JSON file of the folder, its size checked before it is read."""
    if path.stat().st_size > options.max_json_bytes:
        raise UnsafeInputError(f"{what} is over the {options.max_json_bytes >> 20} MiB limit")
    return load_json(path.read_bytes(), what=what, max_bytes=options.max_json_bytes, max_depth=options.max_json_depth)


def _training_args(folder: Path, options: ReadOptions) -> dict[str, Any]:
    path = _member(folder, "training_args.bin")
    if path is None:
        return {}
    from reglint.readers.torch_zip import TorchArchive

    with TorchArchive(path, options, what="training_args.bin") as archive:
        obj = archive.load(opaque_modules=TRAINING_ARGS_MODULES)
    return obj.fields() if isinstance(obj, Opaque) else obj if isinstance(obj, dict) else {}


def _text(value: Any) -> str | None:
    if isinstance(value, Opaque):
        value = value.value
    return value if isinstance(value, str) else None


def _plain(value: Any) -> Any:
    text = _text(value)
    if text is not None:
        return text
    return value if isinstance(value, (int, float, bool)) or value is None else repr(value)


def _optimizer_from_args(args: dict, notes: list[str]) -> Optimizer:
    """No optimizer.pt: what the Trainer would build from its arguments."""
    hint = _text(args.get("optim")) or "adamw_torch"
    class_name, decoupled, _ = infer_class({}, set(), hint)
    wd = number(args.get("weight_decay")) or 0.0
    lr = number(args.get("learning_rate"))
    notes.append("optimizer.pt not saved: optimizer taken from training_args.bin (the Trainer leaves biases and "
                 "LayerNorm weights undecayed)")
    return Optimizer(class_name=class_name,
                     learning_rate=LearningRate(initial=lr, peak=lr, schedule=_text(args.get("lr_scheduler_type")))
                     if lr is not None else None,
                     weight_decay=wd if decoupled else None, coupled_l2=wd / 2 if decoupled is False else None,
                     beta_1=number(args.get("adam_beta1")), beta_2=number(args.get("adam_beta2")),
                     epsilon=number(args.get("adam_epsilon")), source=Provenance.INFERRED)


def _json_object(folder: Path, name: str, options: ReadOptions) -> dict | None:
    """The folder's JSON file ``name`` when it holds an object."""
    path = _member(folder, name)
    if path is None:
        return None
    value = _json(path, name, options)
    return value if isinstance(value, dict) else None


def _trainer_state(folder: Path, options: ReadOptions, model: Model) -> None:
    state = _json_object(folder, "trainer_state.json", options)
    if state is None:
        return
    for key in ("global_step", "max_steps", "train_batch_size"):
        value = number(state.get(key))
        if value is not None:
            model.metadata[key] = int(value)
    steps = model.metadata.get("global_step")
    if model.optimizer is not None and steps and not model.optimizer.iterations:
        model.optimizer.iterations = steps


def _quantization_config(config: dict | None) -> dict | None:
    """``config.json``'s ``quantization_config`` (GPTQ's bits and format,
    FP8's block size), where there is one."""
    found = config.get("quantization_config") if config else None
    return found if isinstance(found, dict) else None


def _config(config: dict | None, model: Model) -> None:
    """The model's name and library version from ``config.json``:
    transformers' ``architectures``, diffusers' ``_class_name``."""
    if config is None:
        return
    names = config.get("architectures")
    if isinstance(names, list) and names and isinstance(names[0], str):
        model.name = names[0]
    elif isinstance(config.get("_class_name"), str):
        model.name = config["_class_name"]
    for key, library in (("transformers_version", "transformers"), ("_diffusers_version", "diffusers")):
        if isinstance(config.get(key), str):
            model.framework_version = f"{library} {config[key]}"
            break


ADAPTER_FIELDS = ("peft_type", "r", "lora_alpha", "lora_dropout", "target_modules", "modules_to_save",
                  "base_model_name_or_path", "use_rslora", "use_dora", "bias", "task_type")


def _adapter_config(folder: Path, options: ReadOptions, model: Model, read: bool) -> None:
    """A PEFT adapter's ``adapter_config.json``: what the counts cover (the
    adapter and the modules trained in full, not the frozen base model,
    when ``read``: the weights were the adapter's) and, for LoRA, the scale
    ``lora_alpha / r`` (``/ sqrt(r)`` with rsLoRA) that multiplies each
    adapter's update, per module where ``rank_pattern``/``alpha_pattern``
    set other ranks."""
    try:
        config = _json_object(folder, "adapter_config.json", options)
    except ReglintError as exc:  # optional metadata: a bad one costs the note, not the model
        model.notes.append(f"adapter_config.json not read: {one_line(str(exc), 120)}")
        return
    if config is None:
        return
    adapter = {k: _plain(config[k]) for k in ADAPTER_FIELDS if k in config}
    model.metadata["adapter"] = adapter
    kind = str(adapter.get("peft_type") or "PEFT")
    if not read:
        model.notes.append(f"adapter_config.json ({kind}) beside the model's own weights: the counts are the "
                           "model's; adapter_model.* was not read")
        return
    scale = _lora_scales(config, adapter) if kind == "LORA" else ""
    base = config.get("base_model_name_or_path")
    article = "an" if kind[:1] in "AEIOU" else "a"
    model.notes.append(f"{article} {kind} adapter{scale}; the counts are the adapter's tensors and the modules "
                       f"trained in full, not the frozen base model "
                       f"({base if isinstance(base, str) and base else 'not named'}), whose weights are not in the "
                       "folder")


def _lora_scales(config: dict, adapter: dict) -> str:
    """", r 4, alpha 8: each update scaled by 2" (and the patterns' other
    scales), as peft's ``LoraLayer.update_layer`` computes them."""
    rank, alpha = number(config.get("r")), number(config.get("lora_alpha"))
    if not rank or rank <= 0 or alpha is None:
        return ""

    def scale(r: float, a: float) -> float:
        return a / r ** 0.5 if config.get("use_rslora") else a / r

    factor = scale(rank, alpha)
    if not math.isfinite(factor):
        return ""
    adapter["scaling"] = factor
    ranks: dict = config["rank_pattern"] if isinstance(config.get("rank_pattern"), dict) else {}
    alphas: dict = config["alpha_pattern"] if isinstance(config.get("alpha_pattern"), dict) else {}
    others = {}
    for key in list(ranks)[:20] + [k for k in list(alphas)[:20] if k not in ranks]:
        r, a = number(ranks.get(key, rank)), number(alphas.get(key, alpha))
        if r and r > 0 and a is not None and math.isfinite(scale(r, a)) and scale(r, a) != factor:
            others[str(key)[:60]] = scale(r, a)
    text = f", r {rank:g}, alpha {alpha:g}: each update scaled by {factor:g}"
    if others:
        adapter["scaling_by_pattern"] = others
        text += " (" + ", ".join(f"{v:g} for {k}" for k, v in others.items()) + ")"
    return text
