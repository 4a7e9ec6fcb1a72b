"""Find the model files under the given paths.

* Folders are searched for ``.keras .h5 .hdf5 .onnx .gguf`` files, PyTorch
  checkpoints (``.pt .pth .ckpt .safetensors``, and ``.bin`` files that are
  torch.save archives: any other ``.bin`` is not a model and is skipped,
  even when named), SavedModel folders (a folder holding ``saved_model.pb``
  is one model; its insides are not searched further), Hugging Face
  folders (``checkpoint-N/``, ``save_pretrained`` of transformers, PEFT or
  diffusers, an accelerate ``save_state`` folder: likewise one model; a
  diffusers pipeline is no model itself, its ``unet/``, ``vae/``,
  ``text_encoder/`` are found as models, its ``scheduler/`` and
  ``tokenizer/`` hold none; under FSDP the checkpoint's
  ``pytorch_model_fsdp_0/`` and ``optimizer_0/``, under DeepSpeed the tag
  folder its ``latest`` names, are read with it),
  ``torch.distributed.checkpoint`` folders (``.metadata`` beside
  ``.distcp`` files; a Lightning ``meta.pt`` in one is part of it),
  DeepSpeed tag folders (``global_step<N>/``: every rank's model and
  optimizer states are one model), Keras 3 folders (``model.save(folder,
  zipped=False)``: ``config.json`` beside ``model.weights.h5``; one model)
  and ``.json`` files whose content
  is a Keras model architecture (``model.to_json()``); other JSON is
  skipped silently.
* A Hugging Face or Keras folder is its own model (its weights, config,
  optimizer.pt, training_args.bin ...: ``folder_members``) and is searched
  further like any folder for the rest: a training output folder's
  ``best.keras``, ``export.onnx``, ``checkpoint-N/`` subfolders are models
  too, never hidden by the folder's own. A SavedModel's insides are the
  model (``variables/``, ``assets/``): never searched.
* Files pre-commit passes from inside a SavedModel (``saved_model.pb``,
  ``keras_metadata.pb``, ``variables/variables.*`` ...), a Hugging Face
  folder (``optimizer.pt``, ``model.safetensors``, ``training_args.bin``...)
  or a Keras folder (``config.json``, ``metadata.json``, ``model.weights.h5``)
  map back to the folder, which is linted once; so does a folder named
  inside a SavedModel (``saved/variables``). Other model files in a Hugging
  Face or Keras folder are themselves: an accelerate folder's
  ``model_1.safetensors`` is its second model (read with
  ``optimizer_1.bin``, which maps to it when named).
* ``.gitignore`` files are honoured while searching folders (unless
  ``respect-gitignore = false``), and so are ``exclude`` (which replaces the
  default excludes) and ``extend-exclude``, gitignore-style globs relative to
  the config file's folder.
* Files and folders named explicitly are always linted (searched), even when
  they or a folder above them are ignored or excluded: the user chose them
  (model folders, ``models/`` or ``checkpoints/``, are very often
  gitignored). Below a named folder, ``.gitignore`` and the excludes still
  hide what they match, but a pattern that matches the named folder or one
  of its parents (``bench/out/`` when ``bench/out/sweep`` is named) does not
  hide the folder's contents. ``--force-exclude`` applies the excludes to
  what is named too (what pre-commit needs): a named file or folder that is
  excluded is skipped; under it a named ``.json`` file that is not a Keras
  architecture is skipped as in a folder search (pre-commit passes every
  ``.json`` file of a commit: its ``files`` pattern cannot look inside).
* A file reached twice (``a.keras``, ``./a.keras``, ``/abs/a.keras``, a
  symlink and its target, a folder named directly and through a symlink)
  is linted once, shown as it was first spelled.
* Symlinked folders are never followed; a symlinked file is linted only when
  it points inside the folder being searched or the working directory.
"""

from __future__ import annotations

import contextlib
import os
import re
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from reglint.engine.settings import Settings
from reglint.readers.sniff import (
    ACCELERATE_FILES,
    ACCELERATE_LORA,
    ACCELERATE_WEIGHTS,
    DCP_METADATA,
    DISTCP_SUFFIX,
    FSDP_MODEL_FOLDER,
    GGUF_SPLIT,
    HF_WEIGHTS,
    JSON_SUFFIX,
    KERAS_HUB_TASK,
    KERAS_MEMBERS,
    MODEL_SUFFIXES,
    accelerate_hook_folder,
    deepspeed_tag_folder,
    is_accelerate_folder,
    is_dcp_folder,
    is_deepspeed_folder,
    is_fsdp_part,
    is_hf_folder,
    is_keras_folder,
    link_stays_inside,
    looks_like_keras_json,
    looks_like_torch_bin,
    tf_checkpoint_prefix,
    weight_files,
)

if TYPE_CHECKING:  # imported when a .gitignore is read (see GitIgnore)
    from pathspec import GitIgnoreSpec

# ruff's defaults, plus our own cache: replaced by ``exclude``.
DEFAULT_EXCLUDE = (
    ".bzr", ".direnv", ".eggs", ".git", ".git-rewrite", ".hg", ".ipynb_checkpoints", ".mypy_cache", ".nox",
    ".pants.d", ".pyenv", ".pytest_cache", ".pytype", ".ruff_cache", ".reglint_cache", ".svn", ".tox", ".venv",
    ".vscode", "__pypackages__", "_build", "buck-out", "node_modules", "site-packages", "venv",
)
SAVEDMODEL_MARKER = "saved_model.pb"
# Files inside a SavedModel that pre-commit may pass one by one.
SAVEDMODEL_TOP_FILES = ("saved_model.pb", "keras_metadata.pb", "fingerprint.pb")


class Discovery(NamedTuple):
    """What ``discover`` found."""

    files: list[str]  # model paths to lint, sorted and unique
    missing: list[str]  # paths that do not exist
    # models found by searching a folder (not named), or named under
    # ``--force-exclude`` as pre-commit names every ``.json``: a reader's
    # "not a model" for one of them is a skip, not an error
    searched: set[str]


def discover(paths: list[str], settings: Settings) -> Discovery:
    """The model files under ``paths`` that ``settings`` does not exclude."""
    return Discovery(*_discover(paths, settings))


def _discover(paths: list[str], settings: Settings) -> tuple[list[str], list[str], set[str]]:
    excludes = ExcludeMatcher(settings)
    found: list[str] = []
    skippable: set[str] = set()  # absolute paths whose "not a model" is a skip
    named: set[str] = set()  # absolute paths whose "not a model" is an error
    missing: list[str] = []
    for raw in paths:
        path = Path(os.path.normpath(raw))
        if not path.exists() and not path.is_symlink():
            missing.append(raw)
        elif path.is_dir() and is_savedmodel(path.parent) and not is_model_folder(path):
            found.append(_folder(path.parent))  # saved/variables: the SavedModel it is part of
            named.add(os.path.abspath(_folder(path.parent)))
        elif path.is_dir() and not is_savedmodel(path):
            if settings.force_exclude and excludes.excluded(path, is_dir=True):
                continue
            if is_model_folder(path):  # a HF or Keras folder: itself, then the rest of it
                found.append(_folder(path))
                named.add(os.path.abspath(_folder(path)))
            # A folder named explicitly is searched even through a symlink:
            # the user chose it; links met while searching are not followed.
            below = walk(path, settings, excludes)
            found.extend(below)
            skippable.update(os.path.abspath(p) for p in below)
        else:
            model = savedmodel_root_of(path) if path.is_file() else str(path)
            if model is not None and model == str(path) and not _is_torch_or_other(path):
                continue  # a .bin that is not a torch checkpoint: not a model
            if model == str(path) and settings.force_exclude:
                # pre-commit names a training checkpoint's files one by one:
                # each shard stands for its .index, and an .index without
                # shards beside it is not one (review 35, D3)
                model = _tf_checkpoint_of(path)
                if model is None:
                    continue
            if model is not None and not (settings.force_exclude and excludes.excluded(Path(model))):
                if settings.force_exclude and model == str(path) and _other_json(path):
                    continue  # a file of a Hugging Face folder maps to the folder, JSON or not
                found.append(model)
                (skippable if settings.force_exclude else named).add(os.path.abspath(model))
    unique = unique_paths(found)
    return unique, missing, {p for p in unique if os.path.abspath(p) in skippable - named}


def unique_paths(paths: list[str]) -> list[str]:
    """Sorted, each file once whatever its spelling (relative or absolute,
    ``./`` or ``..``, a symlink or its target), as first spelled."""
    first: dict[str, str] = {}
    for path in paths:
        first.setdefault(os.path.realpath(path), path)
    return sorted(first.values())



def is_savedmodel(folder: Path) -> bool:
    return (folder / SAVEDMODEL_MARKER).is_file()


def is_model_folder(folder: Path) -> bool:
    """A folder that is one model: a SavedModel, a Hugging Face folder, a
    Keras 3 model saved with ``zipped=False``, a torch.distributed.checkpoint
    or a DeepSpeed checkpoint's tag folder."""
    return (is_savedmodel(folder) or is_hf_folder(folder) or is_keras_folder(folder) or is_dcp_folder(folder)
            or is_deepspeed_folder(folder))


TF_SHARD = re.compile(r"\.data-\d{5}-of-\d{5}$")


def _tf_checkpoint_of(path: Path) -> str | None:
    """For a file pre-commit passes: a TensorFlow checkpoint's ``.index``
    (for itself or one of its ``.data-*`` shards); None for an ``.index``
    or a shard that belongs to no checkpoint, or to one holding no model
    (``tf.train.Checkpoint(step=...)``); any other file as it is."""
    shard = TF_SHARD.search(path.name)
    if shard is not None:
        path = path.with_name(path.name[:shard.start()] + ".index")
    elif path.suffix.lower() != ".index":
        return str(path)
    if tf_checkpoint_prefix(path) is None:
        return None
    from reglint.readers.tf_checkpoint import holds_model_variables

    return str(path) if holds_model_variables(path) else None


def _is_torch_or_other(path: Path) -> bool:
    """False only for a ``.bin`` file that is not a torch.save checkpoint."""
    return path.suffix.lower() != ".bin" or not path.is_file() or looks_like_torch_bin(path)


def savedmodel_root_of(path: Path) -> str | None:
    """The model a named file stands for: its SavedModel folder when it lies
    inside one, the file itself otherwise; None for a stray checkpoint file
    (``variables/variables.index`` outside any SavedModel), not a model."""
    name = path.name
    if name in SAVEDMODEL_TOP_FILES and is_savedmodel(path.parent):
        return _folder(path.parent)
    if (path.suffix == DISTCP_SUFFIX or name == DCP_METADATA) and is_dcp_folder(path.parent):
        # pre-commit passes a DCP folder's files one by one; accelerate's
        # FSDP folders are read with the checkpoint folder holding them
        return _folder(path.parent.parent if is_fsdp_part(path.parent) else path.parent)
    if path.parent.name == "variables" and name.startswith("variables."):
        root = path.parent.parent
        return _folder(root) if is_savedmodel(root) else None
    if name in folder_members(path.parent):
        owner = path.parent.parent  # a save hook's subfolder belongs to its accelerate folder,
        hooked = accelerate_hook_folder(owner) == path.parent  # a Trainer's DeepSpeed tag to its checkpoint
        hooked = hooked or (is_hf_folder(owner) and deepspeed_tag_folder(owner) == path.parent)
        return _accelerate_model_of(path) or _folder(owner if hooked else path.parent)
    return str(path)


# Files of a Hugging Face folder's own model besides its weights (HF_WEIGHTS
# and their shards): what the Trainer writes beside them.
# Lightning's sharded save keeps the rest of its checkpoint dict in meta.pt,
# Megatron-core's torch_dist format its unsharded objects in common.pt.
DCP_COMPANIONS = ("meta.pt", "common.pt")
HF_MEMBERS = ("config.json", "generation_config.json", "trainer_state.json", "training_args.bin", "optimizer.pt",
              "optimizer.bin", "scheduler.pt", "scaler.pt", "adapter_config.json", "adapter_model.safetensors",
              "adapter_model.bin", "pytorch_model_fsdp.bin")


def folder_members(folder: Path) -> frozenset[str]:
    """The names of the files directly in ``folder`` that make up its own
    model (a Hugging Face or Keras folder; nothing for any other folder):
    any other model file in it is a model of its own. An accelerate
    folder's ``model_1.safetensors`` is one (its second model)."""
    names: set[str] = set()
    if is_dcp_folder(folder):  # what else sharded savers write into the folder, not models of their own:
        names.update(DCP_COMPANIONS)
    if is_deepspeed_folder(folder):  # every rank's model and optimizer states
        with contextlib.suppress(OSError):
            names.update(n for n in os.listdir(folder) if n.endswith(".pt") and _DEEPSPEED_FILE.search(n))
    if is_keras_folder(folder):
        names.update(KERAS_MEMBERS + KERAS_HUB_TASK)
    if is_hf_folder(folder):
        names.update(HF_WEIGHTS + HF_MEMBERS)
        # weight shards and variants (model-00001-of-00002.safetensors,
        # diffusion_pytorch_model.fp16.safetensors), per-process RNG states,
        # accelerate's optimizer_N.bin, scheduler_N.bin, random_states_N.pkl
        names.update(weight_files(folder))
        try:
            entries = os.listdir(folder)
        except OSError:
            entries = []
        names.update(n for n in entries if _HF_RNG.fullmatch(n) or ACCELERATE_FILES.fullmatch(n))
        if is_accelerate_folder(folder) and not any(n in entries for n in (*ACCELERATE_WEIGHTS, FSDP_MODEL_FOLDER)):
            names.update(ACCELERATE_LORA)  # a LoRA script's save hook's weights: the folder's model
    return frozenset(names)


_HF_RNG = re.compile(r"rng_state(_\d+)?\.pth")
# DeepSpeed's files in a tag folder: model and optimizer states, MoE experts' states
_DEEPSPEED_FILE = re.compile(r"(?:mp_rank_\d+_model_states|_optim_states|expert_\d+_mp_rank_\d+_model_states)\.pt$")
# accelerate's files of its (N+1)th model: with model_N.safetensors, not the folder's first model
_ACCELERATE_NUMBERED = re.compile(r"(?:optimizer|scheduler)_(?P<index>[1-9]\d{0,3})\.bin")


def _accelerate_model_of(path: Path) -> str | None:
    """``model_N.safetensors`` (or ``pytorch_model_N.bin``) for a named
    ``optimizer_N.bin``/``scheduler_N.bin``: the model it is read with."""
    match = _ACCELERATE_NUMBERED.fullmatch(path.name)
    if match is None:
        return None
    for name in (f"model_{match['index']}.safetensors", f"pytorch_model_{match['index']}.bin"):
        if (path.parent / name).is_file():
            return _folder(path.parent / name)
    return None


def _folder(path: Path) -> str:
    return os.path.normpath(str(path))


# ---------------------------------------------------------------------------
# excludes


class ExcludeMatcher:
    """``exclude`` (or the defaults) plus ``extend-exclude``, matched
    gitignore-style against paths relative to the project root."""

    def __init__(self, settings: Settings):
        self.patterns = list(settings.exclude or DEFAULT_EXCLUDE) + list(settings.extend_exclude)
        self.root = Path(settings.root or os.getcwd()).absolute()
        self._scopes: dict[str, RootScope] = {}  # per named folder

    @cached_property
    def spec(self):
        # Compiled on first use: a single named file never needs it, and
        # importing pathspec costs ~15 ms of every pre-commit run.
        return _gitignore_spec(self.patterns)

    def excluded(self, path: Path, is_dir: bool | None = None, named: Path | None = None) -> bool:
        """Whether ``path`` is excluded; ``named``: the folder named on the
        command line it was found under, whose own exclusion (or its
        parents') does not hide what lies below it (``RootScope``)."""
        rel = self._relative(path.absolute())
        if rel in ("", "."):
            return False
        if is_dir if is_dir is not None else path.is_dir():
            rel += "/"
        if named is None:
            return self.spec.match_file(rel)
        key = self._relative(named.absolute())
        if key not in self._scopes:
            self._scopes[key] = RootScope(self.spec, key)
        return bool(self._scopes[key].check(rel))

    def _relative(self, absolute: Path) -> str:
        try:
            return absolute.relative_to(self.root).as_posix()
        except ValueError:  # outside the project: only unanchored patterns can match
            return absolute.as_posix().lstrip("/")


# A path component no gitignore glob names (only wildcards match it).
_MASK = "\x00"


class RootScope:
    """One gitignore-style spec seen from a folder named on the command line
    (``root``, relative to the spec's base). A pattern that ignores the root
    or one of its parents (``bench/out/`` when ``bench/out/sweep`` is named)
    does not hide the root's contents through them: it is matched against
    the path with the root's components masked, so it still hides what it
    names below the root (``sweep/`` hides ``bench/out/sweep/a/sweep/``).
    Every other pattern matches as usual; the last match decides, as in Git.
    """

    def __init__(self, spec: GitIgnoreSpec, root: str):
        self.spec = spec
        self.root = root.strip("/")
        parts = self.root.split("/") if self.root not in ("", ".") else []
        folders = ["/".join(parts[:n]) + "/" for n in range(1, len(parts) + 1)]
        self.exempt = {i for i, pattern in enumerate(spec.patterns)
                       if pattern.include and any(pattern.match_file(f) is not None for f in folders)}

    def check(self, rel: str) -> bool | None:
        """True ignored, False re-included (``!``), None no pattern matched."""
        if not self.exempt:
            return self.spec.check_file(rel).include
        masked = mask_prefix(rel, self.root)
        decision = None
        for i, pattern in enumerate(self.spec.patterns):
            if pattern.include is not None and pattern.match_file(masked if i in self.exempt else rel) is not None:
                decision = pattern.include
        return decision


def mask_prefix(rel: str, prefix: str) -> str:
    r"""``rel`` with the components of ``prefix`` (a folder above it) masked.

    >>> mask_prefix("bench/out/sweep/a.keras", "bench/out/sweep")
    '\x00/\x00/\x00/a.keras'
    >>> mask_prefix("other/a.keras", "bench")
    'other/a.keras'
    """
    prefix = prefix.strip("/")
    if prefix in ("", ".") or not rel.startswith(prefix + "/"):
        return rel
    return "/".join([_MASK] * len(prefix.split("/"))) + rel[len(prefix):]


class GitIgnore:
    """The ``.gitignore`` files that apply while walking one folder: those of
    its ancestors up to the repository root, then those found on the way
    down. The deepest file with a matching pattern decides, as in Git."""

    def __init__(self, start: Path):
        # (base folder, its spec, the spec seen from the named folder ``start``
        # when the base lies above it: see RootScope)
        self.specs: list[tuple[Path, GitIgnoreSpec, RootScope | None]] = []
        self.start = start
        for folder in reversed(_ancestors_in_repo(start)):
            self.add(folder)
            info_exclude = folder / ".git" / "info" / "exclude"
            if info_exclude.is_file():
                self._load(folder, info_exclude)

    def add(self, folder: Path) -> None:
        gitignore = folder / ".gitignore"
        if gitignore.is_file():
            self._load(folder, gitignore)

    def _load(self, base: Path, file: Path) -> None:
        try:
            lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return
        spec = _gitignore_spec(lines)
        above = base in self.start.parents
        self.specs.append((base, spec, RootScope(spec, self.start.relative_to(base).as_posix()) if above else None))

    def ignored(self, path: Path, is_dir: bool) -> bool:
        for base, spec, scope in reversed(self.specs):
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            rel = rel + "/" if is_dir else rel
            include = scope.check(rel) if scope is not None else spec.check_file(rel).include
            if include is not None:
                return include
        return False

    def scoped(self, folder: Path) -> GitIgnore:
        """A copy with ``folder``'s own .gitignore added (siblings must not see it)."""
        child = GitIgnore.__new__(GitIgnore)
        child.start = self.start
        child.specs = list(self.specs)
        child.add(folder)
        return child


def _ancestors_in_repo(start: Path) -> list[Path]:
    """``start`` and its parents up to the Git repository root; just
    ``start`` outside a repository (a stray .gitignore above is not ours)."""
    chain = [start]
    for parent in start.parents:
        if (chain[-1] / ".git").exists():
            return chain
        chain.append(parent)
    return chain if (chain[-1] / ".git").exists() else [start]


# ---------------------------------------------------------------------------
# walking


def walk(top: Path, settings: Settings, excludes: ExcludeMatcher) -> list[str]:
    """Model files and SavedModel folders below ``top``."""
    top_abs = top.absolute()
    ignore = GitIgnore(top_abs) if settings.respect_gitignore else None
    out: list[str] = []
    stack: list[tuple[Path, GitIgnore | None]] = [(top, ignore)]
    while stack:
        folder, ignore = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
            own = folder_members(folder)  # a HF/Keras folder's own files: linted as the folder
            hook = accelerate_hook_folder(folder)  # its model's weights, saved in a subfolder: linted as the folder
            tag = deepspeed_tag_folder(folder) if is_hf_folder(folder) else None  # a Trainer's DeepSpeed states
        except OSError:
            # A folder CI cannot read may hold models: linted as one, its
            # reader reports it (exit 2), never skipped as empty.
            out.append(_folder(folder))
            continue
        for entry in entries:
            path = Path(folder, entry.name)
            is_dir = entry.is_dir(follow_symlinks=False)
            if excludes.excluded(path, is_dir, named=top) or (ignore and ignore.ignored(path.absolute(), is_dir)):
                continue
            try:
                is_model_folder(path) if is_dir else None
            except OSError:  # a folder that cannot be searched (chmod 000): its reader says so
                out.append(_folder(path))
                continue
            if is_dir:
                if (hook is not None and entry.name == hook.name) or is_fsdp_part(path) or path == tag:
                    continue
                if is_model_folder(path):
                    out.append(_folder(path))
                if not is_savedmodel(path):
                    stack.append((path, ignore.scoped(path.absolute()) if ignore else None))
            elif entry.name in own:
                continue
            elif _is_model_file(entry):
                out.append(_folder(path))
    return out


def _other_json(path: Path) -> bool:
    """A ``.json`` file that is not a Keras architecture (package.json, data)."""
    return path.suffix.lower() == JSON_SUFFIX and path.is_file() and not looks_like_keras_json(path)


def _is_model_file(entry: os.DirEntry) -> bool:
    try:
        return _looks_like_model_file(entry)
    except OSError:
        # DirEntry.is_file() raises on a symlink loop (ELOOP): a model's
        # name is kept, so its reader reports the loop; other files skipped.
        return entry.name.lower().endswith(MODEL_SUFFIXES)


def _looks_like_model_file(entry: os.DirEntry) -> bool:
    name = entry.name.lower()
    if name.endswith(".index"):  # a TensorFlow training checkpoint (cp.ckpt.index beside its shards) of a model
        return _inside(entry) and _tf_checkpoint_of(Path(entry.path)) is not None
    if name.endswith(JSON_SUFFIX):
        return _inside(entry) and entry.is_file() and looks_like_keras_json(Path(entry.path))
    if not name.endswith(MODEL_SUFFIXES):
        return False
    if entry.name.lower().endswith(".bin") and not looks_like_torch_bin(Path(entry.path)):
        return False
    split = GGUF_SPLIT.fullmatch(entry.name)
    if split and int(split["no"]) > 1:  # read with the first part, as one model
        return False
    if entry.is_symlink():
        # Never read outside the tree or the working directory through a link
        # (a broken link inside the tree is kept: the reader reports it).
        return _inside(entry)
    return entry.is_file()


def _inside(entry: os.DirEntry) -> bool:
    """Not a link, or a link the readers follow: to a target inside the
    folder holding it or the working directory (the project:
    ``models/latest.keras -> ../runs/best.keras``;
    ``readers.sniff.link_stays_inside``). Review 55: the search skipped what
    the reader follows when the file is named; review 56: it offered, from a
    folder searched outside the working directory, links the reader refuses
    (their targets inside the tree are found as themselves)."""
    if not entry.is_symlink():
        return True
    # a broken link is kept wherever it points: the reader reports it, reading nothing
    return not os.path.exists(entry.path) or link_stays_inside(Path(entry.path))


def _gitignore_spec(lines: list[str]) -> GitIgnoreSpec:
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)
