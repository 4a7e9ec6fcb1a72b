"""What an ``Accelerator.save_state`` folder holds, besides what
``hf_folder`` reads for any Hugging Face folder.

accelerate (``checkpointing.save_accelerator_state``) writes, for the
models, optimizers and schedulers given to ``prepare`` in that order:

* ``model.safetensors`` (``pytorch_model.bin`` with
  ``safe_serialization=False``), then ``model_1.safetensors`` ... for the
  second and later models: each a bare state_dict, no config.json;
* ``optimizer.bin``, ``optimizer_1.bin`` ...: ``torch.save`` of each
  optimizer's ``state_dict()`` (read by ``torch_optim``: its ids number the
  parameters, they do not name them);
* ``scheduler.bin`` ...: each lr scheduler's ``state_dict()`` (its class is
  told by its settings, ``torch_checkpoint.scheduler_name``);
* ``random_states_<process>.pkl`` (pickled numpy and torch RNG states),
  ``scaler.pt``, ``sampler.bin``, ``custom_checkpoint_<n>.pkl``: never
  opened (numpy's RNG objects are outside the unpickler's allow-list, and
  none of them says anything of the penalty).

**Several models.** accelerate numbers the models and the optimizers as two
separate lists, so nothing in the folder says which optimizer trained which
model. Each model is linted as a model of its own (the folder for the
first, ``model_N.safetensors`` for the others), read with the optimizer of
its number: the usual ``prepare(gen, disc, opt_gen, opt_disc)``, where one
report per model is what a linter should give (a generator's and a
discriminator's decay are judged apart). Whether the optimizer fits is
checked, not assumed: its state tensors must match the model's parameter
shapes, else its groups stay unmapped and a note says so. When the counts
differ (one optimizer over two models, ``itertools.chain`` of their
parameters), a note says that the pairing by number cannot hold.
"""

from __future__ import annotations

import re
from pathlib import Path

from reglint.errors import ModelReadError, UnsafeInputError, one_line
from reglint.readers.limits import ReadOptions
from reglint.readers.sniff import ACCELERATE_LORA, ACCELERATE_MODEL, is_hf_folder
from reglint.readers.torch_checkpoint import scheduler_name, scheduler_peaks

OPTIMIZER_FILE = re.compile(r"optimizer(?:_[1-9]\d{0,3})?\.bin")
SCHEDULER_FILE = re.compile(r"scheduler(?:_[1-9]\d{0,3})?\.bin")


def _count(folder: Path, pattern: re.Pattern) -> int:
    try:
        return sum(1 for p in folder.iterdir() if pattern.fullmatch(p.name))
    except OSError:
        return 0


def numbered(name: str, index: int) -> str:
    """accelerate's name for the (index+1)th object: ``optimizer.bin``,
    ``optimizer_1.bin`` ...

    >>> numbered("optimizer.bin", 0), numbered("scheduler.bin", 2)
    ('optimizer.bin', 'scheduler_2.bin')
    """
    stem, dot, ext = name.partition(".")
    return name if index == 0 else f"{stem}_{index}{dot}{ext}"


def schedule_info(folder: Path, index: int, options: ReadOptions,
                  notes: list[str]) -> tuple[str | None, list | None]:
    """The lr scheduler's class and peak learning rates (CyclicLR's
    ``max_lrs``) from ``scheduler.bin`` (``scheduler_N.bin``) beside
    optimizer ``index``; (None, None) without one, or when schedulers and
    optimizers differ in number (which scheduler drives which optimizer is
    then unknown)."""
    if _count(folder, SCHEDULER_FILE) != _count(folder, OPTIMIZER_FILE):
        return None, None
    return scheduler_file(folder / numbered("scheduler.bin", index), options, notes)


def scheduler_file(path: Path, options: ReadOptions, notes: list[str]) -> tuple[str | None, list | None]:
    """(class, peaks) of the scheduler state saved in ``path`` (accelerate's
    ``scheduler.bin``, a Trainer's ``scheduler.pt``); an unreadable one
    costs them, noted, not the model."""
    if path.is_symlink() or not path.is_file():
        return None, None  # a link is not followed for optional metadata
    from reglint.readers.torch_zip import TorchArchive

    try:
        with TorchArchive(path, options, what=path.name) as archive:
            state = archive.load()
    except UnsafeInputError:
        raise
    except ModelReadError as exc:
        notes.append(f"{path.name} not read ({one_line(str(exc), 120)}): the lr schedule's name is unknown")
        return None, None
    return scheduler_name({"scheduler": state}), scheduler_peaks({"scheduler": state})


def mapping_note(name: str, groups: list, weights: str, ordered: bool) -> str | None:
    """How ``name``'s parameter ids were tied to tensor names, when the
    optimizer did not record them (torch >= 2.6 records ``param_names`` only
    when given named parameters)."""
    if not groups or all(isinstance(g, dict) and isinstance(g.get("param_names"), list) for g in groups):
        return None
    how = ("in their saved (module) order, each checked against its optimizer state's shape"
           if ordered else "by the shapes of its optimizer state alone (safetensors sorts the names: the module "
           "order is lost)")
    return f"{name} numbers the parameters it updates without naming them: matched to the tensors of {weights} {how}"


def models_note(folder: Path, index: int, weights: str) -> str | None:
    """What the folder holds besides model ``index`` and its optimizer, when
    accelerate saved several models or several optimizers."""
    models, optimizers = 1 + _count(folder, ACCELERATE_MODEL), _count(folder, OPTIMIZER_FILE)
    if models == 1 and optimizers <= 1:
        return None
    own = numbered("optimizer.bin", index)
    text = (f"accelerate saved {models} models and {optimizers} optimizers, each list numbered in the order given "
            f"to prepare(): this is {weights}, read with {own if (folder / own).is_file() else 'no optimizer'}; "
            "the other models are reported on their own")
    if models != optimizers:
        text += (" (with unequal counts the pairing by number is a guess: an optimizer over several models fits "
                 "none of them alone, and its groups stay unmapped)")
    return text


def hook_note(folder: Path, hook: Path | None, read: str) -> str | None:
    """Where the weights of a folder without its own came from (``read``:
    the file read), or why none were: a training script's save hook saved
    its models elsewhere."""
    if hook is not None and read:
        return (f"weights read from {hook.name}/, where the training script's save hook put the model (popping it "
                "from save_state); the optimizer's groups are matched to them")
    if read in ACCELERATE_LORA:
        return (f"weights read from {read}: the LoRA layers the training script's save hook saved (popping the "
                "model from save_state); the counts are the adapter's, not the frozen base model's")
    if read:
        return None
    try:
        subfolders = sorted(p.name + "/" for p in folder.iterdir() if p.is_dir() and is_hf_folder(p))
    except OSError:
        subfolders = []
    where = f"saved its models in {', '.join(subfolders[:4])} (each linted on its own)" if subfolders else \
        "saved no model weights here"
    return f"the training script {where}: which model the optimizer updated is not recorded, so no parameter is named"
