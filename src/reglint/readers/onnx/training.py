"""What a training step does: the optimizer, found in the graph or in the
onnxruntime-training artifacts beside it (``optimizer_model.onnx`` and
``checkpoint``), which tensors the step updates, which inputs are
optimizer state, and which values are losses."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from reglint.errors import UnsafeInputError, one_line
from reglint.model import LearningRate, Optimizer
from reglint.readers.onnx.graph import MS, PREVIEW, GraphIndex
from reglint.readers.onnx.load import inside_folder
from reglint.readers.onnx.optimizer import OptimizerFound, ort_optimizer, preview_optimizer
from reglint.readers.onnx.ort_checkpoint import Checkpoint, CheckpointError, read_checkpoint

SIBLING_LIMIT = 64 * 1024 * 1024  # an optimizer_model.onnx is tiny
ARTIFACT_FILES = ("training_model.onnx", "eval_model.onnx", "optimizer_model.onnx")


class TrainingSetup:
    """Found by ``find()``: ``optimizer`` (the first one met), ``ckpt`` (the
    onnxruntime-training checkpoint beside the model), ``state_names``
    (optimizer state and hyper-parameter inputs: not parameters),
    ``updated`` (what a step writes; None when nothing says) and
    ``loss_targets`` (graph outputs and Gradient ops' ``y``). What it
    learns on the way goes to ``notes``."""

    def __init__(self, path: Path, proto, index: GraphIndex, notes: list[str], max_layers: int):
        self.path, self.proto, self.index, self.notes = path, proto, index, notes
        self.folder = path.absolute().parent
        self.max_layers = max_layers
        self.optimizer: Optimizer | None = None
        self.ckpt: Checkpoint | None = None
        self.state_names: set[str] = set()
        self.updated: set[str] | None = None
        self.loss_targets: set[str] = set(index.outputs)

    def find(self) -> TrainingSetup:
        """Optimizer nodes in the graph or beside it, and which tensors a
        training step updates."""
        found = self._graph_optimizers()
        self._training_info_bindings()
        self._gradient_ops()
        artifact = self._artifact_optimizer()
        if artifact is not None:
            found.append(artifact)
        elif found and found[0].optimizer.config["op"].startswith(MS):
            self._checkpoint_rate(found[0].optimizer)
            self.notes.append("onnxruntime-training optimizer model: it holds the optimizer only; lint "
                              "training_model.onnx beside it for the parameters")
        for item in found:
            self.state_names.update(item.state)
            if item.updated:
                self._mark_updated(item.updated)
        if found:
            self._attach_optimizer(found)
        return self

    # -- in the graph ------------------------------------------------------------
    def _graph_optimizers(self) -> list[OptimizerFound]:
        found = []
        for node in self.index.nodes:
            item = preview_optimizer(node, self.index) if node.domain == PREVIEW else ort_optimizer(node, self.index)
            if item is not None:
                found.append(item)
            elif node.domain == MS and node.op.endswith("Optimizer"):
                self.notes.append(f"optimizer op {node.op} not interpreted (only AdamWOptimizer and "
                                  "SGDOptimizerV2 are read)")
        return found

    def _gradient_ops(self) -> None:
        """ONNX's Gradient op: ``y`` names the loss, ``xs`` the trained tensors."""
        for node in self.index.nodes:
            if node.op == "Gradient" and node.domain == PREVIEW:
                if node.attr("y"):
                    self.loss_targets.add(node.attr("y"))
                self._mark_updated(node.attr("xs") or [])

    def _mark_updated(self, names: Iterable[str]) -> None:
        self.updated = (self.updated or set()) | {self.index.source(n) for n in names}

    def _training_info_bindings(self) -> None:
        """update_binding keys are the initializers a training step writes:
        parameters, or optimizer state when they feed an optimizer's state slot."""
        keys = [b.key for info in self.proto.training_info for b in info.update_binding]
        if keys:
            self._mark_updated(keys)
            self.notes.append(f"training_info: {len(keys)} initializers updated by the training algorithm")

    def _attach_optimizer(self, found: list[OptimizerFound]) -> None:
        first = found[0]
        self.optimizer = first.optimizer
        self.notes.append(f"optimizer: {first.note}")
        for other in found[1:]:
            if (other.optimizer.class_name, other.optimizer.coupled_l2, other.optimizer.weight_decay) != (
                    first.optimizer.class_name, first.optimizer.coupled_l2, first.optimizer.weight_decay):
                self.notes.append(f"another optimizer node with other settings ({other.note}): "
                                  "the first one is reported")

    # -- onnxruntime-training artifacts -------------------------------------------
    def _artifact_optimizer(self) -> OptimizerFound | None:
        """training_model.onnx / eval_model.onnx beside optimizer_model.onnx
        and checkpoint: onnxruntime-training artifacts."""
        siblings = self._artifact_siblings()
        if "checkpoint" in siblings:
            self._load_checkpoint(siblings["checkpoint"])
        if "optimizer" not in siblings:
            if self.ckpt is not None and not self.path.name.endswith("optimizer_model.onnx"):
                self.notes.append("onnxruntime-training checkpoint found but no optimizer_model.onnx: "
                                  "optimizer unknown")
            return None
        found = self._sibling_optimizer(siblings["optimizer"])
        if found is not None:
            self._checkpoint_rate(found.optimizer)
            found.note = f"{found.note} (from {siblings['optimizer'].name})"
        return found

    def _artifact_siblings(self) -> dict[str, Path]:
        name = self.path.name
        role = next((r for r in ARTIFACT_FILES if name.endswith(r)), None)
        if role is None:
            return {}
        prefix = name[: -len(role)]
        out = {}
        wanted = {"checkpoint": f"{prefix}checkpoint"}
        if role != "optimizer_model.onnx":
            wanted["optimizer"] = f"{prefix}optimizer_model.onnx"
        for key, file_name in wanted.items():
            candidate = self.folder / file_name
            if candidate.is_symlink() or candidate.exists():
                if not inside_folder(candidate, self.folder):
                    raise UnsafeInputError(f"{file_name!r} links outside the model's folder: refused")
                if candidate.is_file():
                    out[key] = candidate
        return out

    def _sibling_optimizer(self, path: Path) -> OptimizerFound | None:
        import onnx

        try:
            if path.stat().st_size > SIBLING_LIMIT:
                raise ValueError("over 64 MiB")
            proto = onnx.load(str(path), format="protobuf", load_external_data=False)
        except Exception as exc:
            self.notes.append(one_line(f"{path.name} unreadable ({exc}): optimizer unknown"))
            return None
        index = GraphIndex(proto)
        for node in index.nodes:
            found = ort_optimizer(node, index)
            if found is not None:
                return found
        self.notes.append(f"{path.name} holds no AdamWOptimizer or SGDOptimizerV2 node: optimizer unknown")
        return None

    def _load_checkpoint(self, path: Path) -> None:
        try:
            self.ckpt = read_checkpoint(path, self.folder, self.max_layers)
        except (CheckpointError, OSError, ValueError) as exc:
            self.notes.append(one_line(f"checkpoint {path.name!r} unreadable ({exc}): trainable flags "
                                       "come from the gradient graph, values are not read"))
            return
        self.notes.append(f"onnxruntime-training checkpoint {path.name!r}: {len(self.ckpt.trainable)} "
                          f"trainable and {len(self.ckpt.frozen)} frozen parameters")

    def _checkpoint_rate(self, opt: Optimizer) -> None:
        groups = self.ckpt.groups if self.ckpt else []
        if not groups:
            if opt.learning_rate is None:
                self.notes.append("learning rate is set at run time and the checkpoint holds no optimizer "
                                  "state: pass it with options")
            return
        name, step, rate = groups[0]
        opt.learning_rate = LearningRate(float(rate), float(rate), config={"optimizer_group": name})
        opt.iterations = int(step)
        self.notes.append(f"learning rate {rate:g} (initial) and step {step} from the checkpoint's "
                          f"optimizer group {name!r}")
