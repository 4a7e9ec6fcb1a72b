"""Hugging Face folders: a ``Trainer`` ``checkpoint-N/`` or a
``save_pretrained`` model folder, read as one model.

* weights: ``model.safetensors`` (or the shards a
  ``model.safetensors.index.json`` lists), else ``pytorch_model.bin`` (or
  its shards), a torch.save archive read by ``torch_zip``; else a PEFT
  adapter's ``adapter_model.safetensors``/``.bin`` (the adapters and the
  modules trained in full, PEFT's ``base_model.model.`` prefix dropped),
  described by ``adapter_config.json`` (type, r, lora_alpha, targets);
* ``optimizer.pt``: the optimizer's state dict (``torch_optim``); the
  Trainer puts biases and LayerNorm weights in a group without decay;
* ``training_args.bin``: a pickled ``TrainingArguments``, read through the
  same refusing interpreter with ``transformers``/``accelerate`` classes as
  inert records: ``weight_decay``, ``learning_rate``, ``optim`` (the class
  hint), ``lr_scheduler_type``, warm-up, batch size. Without
  ``optimizer.pt`` these describe the optimizer;
* ``trainer_state.json``: ``global_step`` (steps taken), ``max_steps``;
* ``config.json``: the architecture's name and the transformers version.

``rng_state.pth`` and ``scheduler.pt`` are not read (RNG states pickle numpy
objects, outside the allow-list). Every file is opened by name inside the
folder; a symbolic link pointing out of it is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from pathlib import Path
from typing import Any

from reglint.errors import ModelReadError, ReglintError, UnsafeInputError, one_line
from reglint.model import LearningRate, Model, Optimizer, Provenance
from reglint.readers.bnb_quantized import dequantized_checkpoint, quantized_note
from reglint.readers.limits import ReadOptions
from reglint.readers.safe_io import load_json
from reglint.readers.sniff import check_link_stays_inside
from reglint.readers.torch_checkpoint import NamedTensor, describe, find_state_dict, stored_tensors_of, tensors_of
from reglint.readers.torch_optim import infer_class, number
from reglint.readers.torch_pickle import TRAINING_ARGS_MODULES, Opaque

ARG_FIELDS = ("weight_decay", "learning_rate", "optim", "lr_scheduler_type", "warmup_steps", "warmup_ratio",
              "adam_beta1", "adam_beta2", "adam_epsilon", "per_device_train_batch_size",
              "gradient_accumulation_steps", "num_train_epochs", "max_steps")


def read_hf_folder(folder: Path, options: ReadOptions) -> Model:
    with contextlib.ExitStack() as stack:
        quantized: dict[str, int] = {}
        undecoded: list[str] = []  # notes on quantized weights counted without statistics
        config = _json_object(folder, "config.json", options)
        tensors, ordered, adapter = _weights(folder, options, stack, quantized, _quantization_config(config),
                                             undecoded)
        args = _training_args(folder, options)
        hint = _text(args.get("optim"))
        schedule = _text(args.get("lr_scheduler_type"))
        opt_path = _member(folder, "optimizer.pt")
        if opt_path is not None:
            from reglint.readers.torch_zip import TorchArchive

            archive = stack.enter_context(TorchArchive(opt_path, options, what="optimizer.pt"))
            model = describe(archive.load(), archive, folder, options, fmt="hf_trainer", model_tensors=tensors,
                             ordered=ordered, hint=hint, schedule=schedule)
        elif tensors is not None:
            model = describe({}, None, folder, options, fmt="hf_folder", model_tensors=tensors, ordered=ordered,
                             optimizer_note=not args)
            if args:
                model.optimizer = _optimizer_from_args(args, model.notes)
        else:
            raise ModelReadError("Hugging Face folder without model weights or optimizer.pt")
    if args:
        model.metadata["training_args"] = {k: _plain(args[k]) for k in ARG_FIELDS if k in args}
    _trainer_state(folder, options, model)
    _config(config, model)
    _adapter_config(folder, options, model, adapter)
    if quantized:
        model.notes.append(quantized_note(quantized))
    model.notes.extend(undecoded)
    return model


def _member(folder: Path, name: str) -> Path | None:
    path = folder / name
    if path.is_symlink():
        check_link_stays_inside(path)
    return path if path.is_file() else None


def _weights(folder: Path, options: ReadOptions, stack, quantized: dict[str, int],
             quantization_config: dict | None = None,
             notes: list[str] | None = None) -> tuple[list[NamedTensor] | None, bool, bool]:
    """The model's tensors, whether their order is the module order, and
    whether they are a PEFT adapter's (``quantized``: quantized weights
    found, by kind; ``notes``: what to say of those not decoded)."""
    for index_name, single, safetensors in (("model.safetensors.index.json", "model.safetensors", True),
                                            ("pytorch_model.bin.index.json", "pytorch_model.bin", False)):
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
        return tensors, not safetensors, False
    for single, safetensors in (("adapter_model.safetensors", True), ("adapter_model.bin", False)):
        path = _member(folder, single)
        if path is not None:  # a PEFT adapter: the trained tensors, not the frozen base model
            tensors = [_unwrapped(t) for t in _tensors_in(path, options, stack, safetensors, quantized)]
            return tensors, not safetensors, True
    return None, True, False


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
    """The model's name and transformers' version from ``config.json``."""
    if config is None:
        return
    names = config.get("architectures")
    if isinstance(names, list) and names and isinstance(names[0], str):
        model.name = names[0]
    version = config.get("transformers_version")
    if isinstance(version, str):
        model.framework_version = f"transformers {version}"


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
