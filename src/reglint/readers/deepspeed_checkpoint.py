"""A DeepSpeed checkpoint folder (``engine.save_checkpoint``), read as
untrusted data, never through DeepSpeed.

``save_checkpoint(save_dir)`` writes ``save_dir/latest`` (the tag's name)
and a tag folder, ``save_dir/global_step<N>/``, holding ``torch.save``
archives (read by ``torch_zip``, their DeepSpeed classes inert records):

* ``mp_rank_00_model_states.pt`` (ZeRO stages 0-2) or one
  ``zero_pp_rank_<r>_mp_rank_00_model_states.pt`` per data-parallel rank
  (stage 3): ``module`` (the state dict), ``param_shapes`` (one ordered
  dict of name -> shape per optimizer param group: the architecture, in the
  optimizer's order), ``frozen_param_shapes``, ``shared_params`` (tied
  names), ``buffer_names``, ``ds_config``, ``global_steps``,
  ``dp_world_size``, ``mp_world_size``, ``lr_scheduler``;
* ``[bf16_]zero_pp_rank_<r>_mp_rank_00_optim_states.pt``, one per rank: the
  wrapped optimizer's ``state_dict`` (``base_optimizer_state`` at stages 1
  and 2, ``optimizer_state_dict`` at stage 3: torch's param groups, each
  holding one flat tensor) and the fp32 master weights, flat, this rank's
  partition of each group (``single_partition_of_fp32_groups``,
  ``fp32_flat_groups``).

What is read:

* **Parameters** from ``param_shapes`` and ``frozen_param_shapes``, never
  from ``module``'s tensors: under ZeRO-3 those are empty placeholders
  (``torch.Size([0])``), which a reader trusting stored tensors counts as a
  model of no parameters. Buffers (BatchNorm's statistics) from ``module``.
* **Statistics** from ``module`` where it holds the whole tensor (stages
  0-2); at stage 3 from the ranks' fp32 partitions, laid out as DeepSpeed's
  own ``zero_to_fp32.py`` reassembles them: each parameter split into
  ``ceil(numel / world)`` values per rank, in ``param_shapes`` order, the
  groups' flat tensors one after another.
* **The optimizer** from rank 0's groups, each mapped to its parameters by
  name through ``param_shapes`` (exact). Its class from ``ds_config``:
  DeepSpeed's ``Adam`` is AdamW unless ``adam_w_mode`` is false (its
  FusedAdam and DeepSpeedCPUAdam decouple the decay by default); without an
  ``optimizer`` section (a client optimizer, the Trainer's), from the
  groups' settings as for any torch optimizer.
* Tensor or pipeline parallelism (``mp_world_size`` > 1, pipeline layer
  files) splits the model over files this reader does not join: rank 00's
  shard is read and a note says so.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from reglint.errors import ModelReadError, one_line
from reglint.model import Model, WeightStats
from reglint.readers.limits import ReadOptions
from reglint.readers.named_tensor import NamedTensor
from reglint.readers.sniff import (
    DEEPSPEED_MODEL_STATES,
    DEEPSPEED_OPTIM_STATES,
    check_link_stays_inside,
    deepspeed_tag_folder,
    is_deepspeed_folder,
)
from reglint.readers.tensor_stats import StatsAccumulator
from reglint.readers.torch_pickle import TensorRef
from reglint.readers.torch_zip import TorchArchive

# DeepSpeed's optimizer "type" (deepspeed/runtime/config.py) -> torch's class
# name; Adam/AdamW's decay decoupled unless ``adam_w_mode`` is false.
ADAM_TYPES = ("adam", "adamw", "cpu_adam", "fusedadam", "onebitadam", "zerooneadam")
DS_CLASSES = {"lamb": "LAMB", "onebitlamb": "LAMB", "sgd": "SGD", "adagrad": "Adagrad", "lion": "Lion",
              "muadam": "Adam", "muadamw": "AdamW", "musgd": "SGD"}
DECOUPLED_TYPES = {"lamb", "onebitlamb", "lion"}
# Where DeepSpeed's mixed-precision wrappers (FP16_Optimizer, BF16_Optimizer,
# ZeRO's) keep the torch optimizer's own state dict.
WRAPPED = ("optimizer_state_dict", "base_optimizer_state")
# DeepSpeed's lr schedulers (deepspeed/runtime/lr_schedules.py), told by their state's fields.
SCHEDULES = (("total_num_steps", "WarmupDecayLR"), ("warmup_type", "WarmupLR"), ("cycle_min_lr", "OneCycle"),
             ("lr_range_test_min_lr", "LRRangeTest"), ("warmup_num_steps", "WarmupLR"))


def read_deepspeed(folder: Path, options: ReadOptions) -> Model:
    """The model of a DeepSpeed tag folder (``global_step<N>/``), or of the
    save_dir whose ``latest`` names one (``reglint explain save_dir``)."""
    folder = Path(folder)
    if not is_deepspeed_folder(folder):
        tag = deepspeed_tag_folder(folder)
        if tag is None:
            raise ModelReadError("a DeepSpeed save_dir whose latest names no tag folder of model states")
        folder = tag
    with DeepSpeedCheckpoint(folder, options) as checkpoint:
        return checkpoint.describe()  # every statistic is read while it is open (build_layers)


class DeepSpeedCheckpoint:
    """A tag folder's files: the model states of rank 0, each rank's
    optimizer states (opened when their values are needed)."""

    def __init__(self, folder: Path, options: ReadOptions):
        self.folder, self.options = Path(folder), options
        self.notes: list[str] = []
        models = _ranked(folder, DEEPSPEED_MODEL_STATES)
        if not models:
            raise ModelReadError("a DeepSpeed checkpoint folder without *model_states.pt")
        self.model_archive = TorchArchive(models[0][1], options, what=models[0][1].name)
        self.states = self.model_archive.load()
        _own_records(self.model_archive)
        if not isinstance(self.states, dict):
            raise ModelReadError(f"{models[0][1].name} holds no DeepSpeed model states dict")
        self.optim_files = _ranked(folder, DEEPSPEED_OPTIM_STATES)
        self._optim: dict[int, tuple[TorchArchive, Any]] = {}
        self.world = _int(self.states.get("dp_world_size")) or len(self.optim_files) or 1
        if len(self.optim_files) not in (0, self.world):
            self.notes.append(f"{len(self.optim_files)} optimizer-state files for {self.world} data-parallel ranks: "
                              "the checkpoint is incomplete; statistics of partitioned weights not read")
        self._flat: list[list[tuple[TensorRef, int]]] | None = None
        self._offsets: list[int] | None = None
        self._states_by_file: dict[Path, tuple[TorchArchive, dict]] = {}

    def __enter__(self) -> DeepSpeedCheckpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Every states file opened: rank 0's model states, the optimizer
        states, other ranks' model states (ZeRO-3's frozen fragments)."""
        archives = [self.model_archive, *(a for a, _ in self._optim.values()),
                    *(a for a, _ in self._states_by_file.values())]
        for archive in archives:
            archive.close()

    # -- the optimizer files -----------------------------------------------------

    def optim(self, rank: int) -> Any:
        """Rank ``rank``'s ``optimizer_state_dict`` (loaded once)."""
        if rank not in self._optim:
            path = dict(self.optim_files)[rank]
            archive = TorchArchive(path, self.options, what=path.name)
            obj = archive.load()
            _own_records(archive)
            inner = obj.get("optimizer_state_dict") if isinstance(obj, dict) else None
            if not isinstance(inner, dict):
                raise ModelReadError(f"{path.name} holds no optimizer_state_dict")
            self._optim[rank] = (archive, inner)
        return self._optim[rank][1]

    def _base_optimizer(self) -> tuple[dict | None, TorchArchive | None]:
        if not self.optim_files:  # without ZeRO the optimizer is in the model states,
            own = self.states.get("optimizer")  # inside fp16's or bf16's wrapper when they are on
            for candidate in (own, *(own.get(k) for k in WRAPPED if isinstance(own, dict))):
                if isinstance(candidate, dict) and isinstance(candidate.get("param_groups"), list):
                    return candidate, self.model_archive
            return None, None
        inner = self.optim(self.optim_files[0][0])
        base = next((inner[k] for k in WRAPPED if isinstance(inner.get(k), dict)), None)
        if not (isinstance(base, dict) and isinstance(base.get("param_groups"), list)):
            self.notes.append("the optimizer states keep no torch param groups (an older ZeRO layout): "
                              "the optimizer is taken from ds_config")
            return None, self._optim[self.optim_files[0][0]][0]
        return base, self._optim[self.optim_files[0][0]][0]

    # -- parameters -------------------------------------------------------------

    def groups_of_names(self) -> list[dict[str, tuple[int, ...]]] | None:
        """Each param group's parameters and shapes; None without ZeRO
        (stage 0 saves no ``param_shapes``: its ``module`` is whole)."""
        shapes = self.states.get("param_shapes")
        if shapes is None and self.zero_stage() == 0:
            return None
        if isinstance(shapes, dict):  # one group, saved as a bare dict
            shapes = [shapes]
        if not isinstance(shapes, list) or not all(isinstance(g, dict) for g in shapes):
            raise ModelReadError("the DeepSpeed model states hold no param_shapes")
        return [{str(k): _shape(v, k) for k, v in group.items()} for group in shapes]

    def tensors(self) -> list[NamedTensor]:
        """Every parameter (shapes from param_shapes), frozen ones and buffers."""
        module = self.states.get("module")
        module = module if isinstance(module, dict) else {}
        groups = self.groups_of_names()
        if groups is None:
            from reglint.readers.torch_checkpoint import stored_tensors_of

            return stored_tensors_of(module, self.model_archive)[0]
        stage3 = self.zero_stage() == 3
        if stage3:
            self._check_partitions()
        out: list[NamedTensor] = []
        flat_index = 0
        for group in groups:
            for name, shape in group.items():
                stored = module.get(name)
                if stage3:
                    out.append(NamedTensor(name, shape, "float32", None, self._stats_of_partitions(flat_index, shape)))
                elif isinstance(stored, TensorRef) and stored.shape == shape:
                    out.append(NamedTensor(name, shape, stored.dtype, None, self._stats_of_module(stored)))
                else:  # below ZeRO-3 the module holds every weight whole: param_shapes is not its shape
                    raise ModelReadError(f"param_shapes gives {one_line(name, 80)} the shape {one_line(str(shape), 60)}"
                                         " but the model states hold no such tensor: a corrupt or edited checkpoint")
                flat_index += 1
        frozen = self.states.get("frozen_param_shapes")
        for name, saved in (frozen.items() if isinstance(frozen, dict) else ()):
            stored, shape = module.get(name), _shape(saved, name)
            if isinstance(stored, TensorRef) and stored.shape == shape:
                out.append(NamedTensor(str(name), shape, stored.dtype, None, self._stats_of_module(stored),
                                       frozen=True))
            elif stage3:  # each rank keeps its fragment of a frozen weight in its model states
                out.append(NamedTensor(str(name), shape, "float32", None, self._stats_of_fragments(str(name), shape),
                                       frozen=True))
            else:
                raise ModelReadError(f"frozen_param_shapes gives {one_line(str(name), 80)} a shape the model states "
                                     "do not hold: a corrupt or edited checkpoint")
        seen = {t.name for t in out}
        for name in _buffer_names(self.states):
            stored = module.get(name)
            if name not in seen and isinstance(stored, TensorRef):
                out.append(NamedTensor(name, stored.shape, stored.dtype, None, self._stats_of_module(stored)))
        # layers in the module's order (param_shapes follows the optimizer's groups)
        order = {name: i for i, name in enumerate(module)}
        out.sort(key=lambda t: order.get(t.name, len(order)))
        return _untied(out, self.states.get("shared_params"), self.notes)

    def zero_stage(self) -> int:
        config = self.states.get("ds_config")
        zero = config.get("zero_optimization") if isinstance(config, dict) else None
        stage = zero.get("stage") if isinstance(zero, dict) else None
        return stage if isinstance(stage, int) and not isinstance(stage, bool) else 0

    def _stats_of_module(self, tensor: TensorRef):
        return lambda: self.model_archive.stats(tensor)

    def _check_partitions(self) -> None:
        """ZeRO-3: the partitions param_shapes implies must fill each rank's
        flat fp32 groups exactly (``zero_to_fp32``'s own check): a shape
        edited to claim more parameters than were saved is refused."""
        want = sum(-(-math.prod(shape) // self.world) for group in self.groups_of_names() or [] for shape in
                   group.values())
        for rank, _ in self.optim_files:
            groups = self.optim(rank).get("fp32_flat_groups")
            have = sum(g.numel for g in groups if isinstance(g, TensorRef)) if isinstance(groups, list) else None
            if have != want:
                raise ModelReadError(f"param_shapes implies {one_line(str(want), 24)} fp32 values per rank but rank "
                                     f"{rank}'s partitions hold {have}: a corrupt or edited checkpoint")

    def _stats_of_fragments(self, name: str, shape: tuple[int, ...]):
        return lambda: self._fragment_stats(name, shape)

    def _fragment_stats(self, name: str, shape: tuple[int, ...]) -> WeightStats | None:
        """A frozen ZeRO-3 weight: each rank's ``frozen_param_fragments[name]``,
        one after another, cut to the weight's size (``zero_to_fp32``)."""
        files = _ranked(self.folder, DEEPSPEED_MODEL_STATES)
        if [rank for rank, _ in files] != list(range(self.world)):
            return None
        numel, acc = math.prod(shape), StatsAccumulator()
        for _, path in files:
            archive = self._model_states(path)
            fragments = archive[1].get("frozen_param_fragments")
            fragment = fragments.get(name) if isinstance(fragments, dict) else None
            if not isinstance(fragment, TensorRef) or numel <= 0:
                return None if not isinstance(fragment, TensorRef) else acc.result()
            take = min(fragment.numel, numel)
            view = TensorRef(fragment.storage, fragment.offset, (take,), (1,), fragment.dtype)
            archive[0].check_tensor(view)
            if not fragment.is_contiguous() or not archive[0].accumulate(acc, view):
                return None
            numel -= take
        return acc.result() if numel == 0 else None

    def _model_states(self, path: Path) -> tuple[TorchArchive, dict]:
        if path not in self._states_by_file:
            archive = TorchArchive(path, self.options, what=path.name)
            states = archive.load()
            _own_records(archive)
            self._states_by_file[path] = (archive, states if isinstance(states, dict) else {})
        return self._states_by_file[path]

    def _stats_of_partitions(self, index: int, shape: tuple[int, ...]):
        return lambda: self._partition_stats(index, shape)

    def _partition_stats(self, index: int, shape: tuple[int, ...]) -> WeightStats | None:
        """ZeRO-3: parameter ``index`` (in param_shapes order) from every
        rank's flat fp32 groups, ``zero_to_fp32``'s layout."""
        layout = self._flat_layout()
        if layout is None:
            return None
        numel = math.prod(shape)
        part = -(-numel // self.world)
        offset = self._partition_offsets()[index]
        acc = StatsAccumulator()
        for rank in range(self.world):
            count = max(0, min(part, numel - rank * part))
            if count and not self._add_slice(acc, rank, layout[rank], offset, count):
                return None
        return acc.result()

    def _partition_offsets(self) -> list[int]:
        """Where each parameter's partition starts in a rank's flat groups."""
        if self._offsets is None:
            self._offsets, total = [], 0
            for group in self.groups_of_names() or []:
                for shape in group.values():
                    self._offsets.append(total)
                    total += -(-math.prod(shape) // self.world)
        return self._offsets

    def _flat_layout(self) -> list[list[tuple[TensorRef, int]]] | None:
        """Per rank, its flat fp32 groups one after another."""
        if self._flat is None:
            if len(self.optim_files) != self.world or [r for r, _ in self.optim_files] != list(range(self.world)):
                return None
            layout = []
            for rank in range(self.world):
                groups = self.optim(rank).get("fp32_flat_groups")
                if not (isinstance(groups, list) and all(isinstance(g, TensorRef) for g in groups)):
                    return None
                layout.append([(g, g.numel) for g in groups])
            self._flat = layout
        return self._flat

    def _add_slice(self, acc: StatsAccumulator, rank: int, groups: list[tuple[TensorRef, int]], start: int,
                   count: int) -> bool:
        archive = self._optim[rank][0]
        for flat, length in groups:
            if start >= length:
                start -= length
                continue
            take = min(count, length - start)
            view = TensorRef(flat.storage, flat.offset + start, (take,), (1,), flat.dtype)
            archive.check_tensor(view)
            if not archive.accumulate(acc, view):
                return False
            count -= take
            start = 0
            if count == 0:
                return True
        return count == 0

    # -- the model ----------------------------------------------------------------

    def optimizer_state(self) -> tuple[dict | None, TorchArchive | None]:
        """The optimizer's state dict with its groups' parameters named, and
        the archive its tensors are in (``hf_folder``: a Trainer's checkpoint)."""
        base, archive = self._base_optimizer()
        return (self._named_optimizer(base) if base is not None else None), archive

    def describe(self) -> Model:
        from reglint.readers.torch_checkpoint import describe

        tensors = self.tensors()
        optimizer, archive = self.optimizer_state()
        obj: dict[str, Any] = {} if optimizer is None else {"optimizer": optimizer}
        model = describe(obj, archive, self.folder, self.options, fmt="deepspeed", model_tensors=tensors,
                         ordered=True, hint=self.optimizer_type(), schedule=self.schedule(),
                         optimizer_note=False)
        if model.optimizer is None:
            model.notes.append("no optimizer states saved with the model states: pass --optimizer, "
                               "--learning-rate and --weight-decay to check decay")
        elif _int(self.states.get("global_steps")) is not None:
            # the engine's count of steps taken; the wrapped optimizer's own
            # ``step`` can differ (bf16's wrapper saves one more)
            model.optimizer.iterations = _int(self.states.get("global_steps"))
        model.notes.extend([self._layout_note(), *self.notes])
        return model

    def _named_optimizer(self, base: dict) -> dict:
        """The base optimizer's groups with their parameters named (param_shapes)
        and, for DeepSpeed's Adam, its decoupling made explicit."""
        names = self.groups_of_names()
        groups = [g for g in base["param_groups"] if isinstance(g, dict)]
        if names is None:  # without ZeRO: torch's own ids, matched by order
            return base
        if len(groups) != len(names):
            self.notes.append(f"{len(groups)} optimizer param groups but {len(names)} groups of parameter shapes: "
                              "the groups are not mapped to parameters")
            return base
        kind = self.optimizer_type()
        out = []
        for group, members in zip(groups, names, strict=True):
            named = {**group, "params": list(members), "param_names": list(members)}
            if kind in ADAM_TYPES and "decoupled_weight_decay" not in named:
                named["decoupled_weight_decay"] = self.adam_w_mode()
                named.setdefault("amsgrad", False)
            out.append(named)
        return {**base, "param_groups": out}

    def optimizer_type(self) -> str | None:
        config = self.states.get("ds_config")
        section = config.get("optimizer") if isinstance(config, dict) else None
        kind = section.get("type") if isinstance(section, dict) else None
        return kind.lower() if isinstance(kind, str) else None

    def adam_w_mode(self) -> bool:
        config = self.states.get("ds_config")
        params = config["optimizer"].get("params") if isinstance(config, dict) else None
        mode = params.get("adam_w_mode", True) if isinstance(params, dict) else True
        return self.optimizer_type() == "adamw" or bool(mode)

    def schedule(self) -> str | None:
        state = self.states.get("lr_scheduler")
        if not isinstance(state, dict):
            return None
        return next((name for key, name in SCHEDULES if key in state), None)

    def _layout_note(self) -> str:
        stage = self.zero_stage()
        mp = _int(self.states.get("mp_world_size")) or 1
        source = "parameter shapes from param_shapes" if stage else "weights and optimizer from the model states"
        text = (f"a DeepSpeed checkpoint (ZeRO stage {stage}, {self.world} data-parallel rank"
                f"{'s' if self.world != 1 else ''}): {source}")
        if stage == 3:
            text += ", statistics from the ranks' fp32 partitions (the model states hold empty placeholders)"
        if mp > 1:
            text += f"; tensor-parallel over {mp} ranks: only rank 00's shard is read, the counts are a part"
        return text


def _own_records(archive: TorchArchive) -> None:
    """DeepSpeed's bookkeeping classes (its loss scaler, ZeRO's stage enum,
    fragment addresses) are the format's own: not named in a note."""
    archive.record_classes.difference_update({c for c in archive.record_classes if c.startswith("deepspeed.")})


def _none() -> WeightStats | None:
    return None


def _ranked(folder: Path, pattern: re.Pattern) -> list[tuple[int, Path]]:
    """(rank, path) of the files matching ``pattern`` (``rank`` group), rank order."""
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError:
        return []
    out = []
    for name in names:
        match = pattern.fullmatch(name)
        if match and match["mp"] == "00":
            if (folder / name).is_symlink():
                check_link_stays_inside(folder / name)
            out.append((int(match["rank"] or 0), folder / name))
    return sorted(out)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 53 else None


def _shape(value: Any, name: Any) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)) and len(value) <= 16 and all(_int(v) is not None for v in value):
        return tuple(value)
    raise ModelReadError(f"param_shapes gives {one_line(str(name), 60)} a malformed shape")


def _buffer_names(states: dict) -> list[str]:
    names = states.get("buffer_names")
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _untied(tensors: list[NamedTensor], shared: Any, notes: list[str]) -> list[NamedTensor]:
    """``shared_params`` ({name: the name it shares storage with}): a tied
    weight counted once, under the name it is trained by."""
    if not isinstance(shared, dict) or not shared:
        return tensors
    pairs = {str(k): str(v) for k, v in shared.items() if str(k) != str(v)}
    if pairs:
        notes.append("tied parameters counted once: " + ", ".join(f"{k} = {pairs[k]}" for k in sorted(pairs)[:4]))
    return [t for t in tensors if t.name not in pairs]

