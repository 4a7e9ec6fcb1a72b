"""The reader: one pass over the graph, job by job."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from reglint.errors import ModelReadError, ReglintError, UnsafeInputError, one_line
from reglint.model import (
    Layer,
    LearningRate,
    Loss,
    Model,
    Optimizer,
    Output,
    Regularizer,
    Role,
    Variable,
    WeightStats,
)
from reglint.readers.limits import ReadOptions
from reglint.readers.onnx.graph import MAX_WALK, MS, PREVIEW, VALUE_PASS, _Index, _Node
from reglint.readers.onnx.layers import ACTIVATIONS, HOMOGENEOUS, _clean, _name_prefix, _node_scope
from reglint.readers.onnx.load import (
    CHECKER_LIMIT,
    _checker_stub,
    _external_range,
    _inside,
    _load_proto,
    _safe_location,
)
from reglint.readers.onnx.optimizer import (
    ARTIFACT_FILES,
    SIBLING_LIMIT,
    _OptimizerFound,
    _ort_optimizer,
    _preview_optimizer,
)
from reglint.readers.onnx.ort_checkpoint import _Checkpoint, _CheckpointError, _CkptTensor, _read_checkpoint
from reglint.readers.onnx.params import _Param
from reglint.readers.onnx.penalties import SCALAR_PASS, _Path, _Term
from reglint.readers.onnx.roles import (
    ARITHMETIC,
    BIASED_OPS,
    CONSTANT_OPS,
    CONSTANT_SLOTS,
    INPUT_ROLES,
    ROLE_RANK,
)
from reglint.readers.onnx.stats import _array_stats, _file_stats, _proto_array
from reglint.readers.onnx.tensors import EXTERNAL, FLOAT_TYPES, _FileRange, _shape

INFERENCE_NOTE = "inference graph: no regularization or optimizer recorded; pass them with options"


def read_onnx(path: Path, options: ReadOptions) -> Model:
    """Describe the ONNX model at ``path``; raises ModelReadError one-liners."""
    proto = _load_proto(path)
    try:
        return _tidy_float32(_Reader(path, proto, options).read())
    except ReglintError:
        raise
    except OSError as exc:  # a data file vanishing or unreadable mid-read
        raise ModelReadError(one_line(f"cannot read the model's data: {exc.strerror or exc}")) from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, struct.error) as exc:
        # A malformed graph (bad dims, inconsistent fields) must end in one line.
        raise ModelReadError(one_line(f"malformed ONNX model: {type(exc).__name__}: {exc}")) from None


class _Reader:
    def __init__(self, path: Path, proto, options: ReadOptions):
        self.path, self.proto, self.options = path, proto, options
        self.folder = path.absolute().parent
        self.model = Model(path=str(path), format="onnx", framework="onnx")
        self.index = _Index(proto)
        self.ckpt: _Checkpoint | None = None
        self.state_names: set[str] = set()  # optimizer state/hyper-parameters
        self.updated: set[str] | None = None  # parameters an optimizer/training info updates
        self.loss_targets: set[str] = set(self.index.outputs)
        self.param_names: set[str] = set()
        self.owner: dict[str, str] = {}  # parameter name -> layer key

    # -- top level -------------------------------------------------------------
    def read(self) -> Model:
        self._describe_file()
        self._check_external_locations()
        self._run_checker()
        self._find_training_setup()
        params = [p for p in self._collect_params() if self._assign_role(p)]
        self.param_names = {p.name for p in params}
        self._assign_trainable(params)
        self._find_penalties(params)
        self._read_stats(params)
        self._build_layers(params)
        self._find_losses()
        self._find_outputs()
        self._final_notes(params)
        return self.model

    def _describe_file(self) -> None:
        proto, model = self.proto, self.model
        opsets = {(o.domain or "ai.onnx"): int(o.version) for o in proto.opset_import}
        default = opsets.get("ai.onnx")
        model.framework_version = f"ir {proto.ir_version}" + (f", opset {default}" if default is not None else "")
        model.name = proto.graph.name or None
        model.metadata = {
            "producer_name": proto.producer_name or None,
            "producer_version": proto.producer_version or None,
            "ir_version": int(proto.ir_version),
            "opsets": opsets,
            "model_version": int(proto.model_version),
            "domain": proto.domain or None,
            "metadata_props": {p.key[:200]: p.value[:200] for p in list(proto.metadata_props)[:50]},
        }
        if proto.producer_name:
            model.metadata["producer"] = f"{proto.producer_name} {proto.producer_version}".strip()

    def _check_external_locations(self) -> None:
        """Every external tensor, parameter or not, must stay in the folder."""
        for _, tensor in self._all_dense_tensors():
            if tensor.data_location == EXTERNAL:
                info = {entry.key: entry.value for entry in tensor.external_data}
                _safe_location(info.get("location", ""), self.folder, f"tensor {tensor.name!r}")

    def _all_dense_tensors(self):
        yield from self.index.tensors
        for scope, sparse in self.index.sparse:
            yield scope, sparse.values

    def _run_checker(self) -> None:
        import onnx

        size = self.path.stat().st_size
        if size > CHECKER_LIMIT:
            self.model.notes.append("onnx.checker skipped: the file is over 512 MiB")
            return
        external = any(t.data_location == EXTERNAL for _, t in self._all_dense_tensors())
        try:
            # With external data the checker needs the path to find the data
            # files (locations were checked above); otherwise the proto is enough.
            onnx.checker.check_model(str(self.path) if external else _checker_stub(self.proto))
        except Exception as exc:
            first = one_line(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, 200)
            self.model.notes.append(f"onnx.checker rejects the model ({first}); read anyway")

    # -- optimizers ------------------------------------------------------------
    def _find_training_setup(self) -> None:
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
            self.model.notes.append("onnxruntime-training optimizer model: it holds the optimizer only; lint "
                                    "training_model.onnx beside it for the parameters")
        for item in found:
            self.state_names.update(item.state)
            if item.updated:
                self._mark_updated(item.updated)
        if found:
            self._attach_optimizer(found)

    def _graph_optimizers(self) -> list[_OptimizerFound]:
        found = []
        for node in self.index.nodes:
            item = _preview_optimizer(node, self.index) if node.domain == PREVIEW else _ort_optimizer(node, self.index)
            if item is not None:
                found.append(item)
            elif node.domain == MS and node.op.endswith("Optimizer"):
                self.model.notes.append(f"optimizer op {node.op} not interpreted (only AdamWOptimizer and "
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
            self.model.notes.append(f"training_info: {len(keys)} initializers updated by the training algorithm")

    def _attach_optimizer(self, found: list[_OptimizerFound]) -> None:
        first = found[0]
        self.model.optimizer = first.optimizer
        self.model.notes.append(f"optimizer: {first.note}")
        for other in found[1:]:
            if (other.optimizer.class_name, other.optimizer.coupled_l2, other.optimizer.weight_decay) != (
                    first.optimizer.class_name, first.optimizer.coupled_l2, first.optimizer.weight_decay):
                self.model.notes.append(f"another optimizer node with other settings ({other.note}): "
                                        "the first one is reported")

    def _artifact_optimizer(self) -> _OptimizerFound | None:
        """training_model.onnx / eval_model.onnx beside optimizer_model.onnx
        and checkpoint: onnxruntime-training artifacts."""
        siblings = self._artifact_siblings()
        if "checkpoint" in siblings:
            self._load_checkpoint(siblings["checkpoint"])
        if "optimizer" not in siblings:
            if self.ckpt is not None and not self.path.name.endswith("optimizer_model.onnx"):
                self.model.notes.append("onnxruntime-training checkpoint found but no optimizer_model.onnx: "
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
                if not _inside(candidate, self.folder):
                    raise UnsafeInputError(f"{file_name!r} links outside the model's folder: refused")
                if candidate.is_file():
                    out[key] = candidate
        return out

    def _sibling_optimizer(self, path: Path) -> _OptimizerFound | None:
        import onnx

        try:
            if path.stat().st_size > SIBLING_LIMIT:
                raise ValueError("over 64 MiB")
            proto = onnx.load(str(path), format="protobuf", load_external_data=False)
        except Exception as exc:
            self.model.notes.append(one_line(f"{path.name} unreadable ({exc}): optimizer unknown"))
            return None
        index = _Index(proto)
        for node in index.nodes:
            found = _ort_optimizer(node, index)
            if found is not None:
                return found
        self.model.notes.append(f"{path.name} holds no AdamWOptimizer or SGDOptimizerV2 node: optimizer unknown")
        return None

    def _load_checkpoint(self, path: Path) -> None:
        try:
            self.ckpt = _read_checkpoint(path, self.folder, self.options.max_layers)
        except (_CheckpointError, OSError, ValueError) as exc:
            self.model.notes.append(one_line(f"checkpoint {path.name!r} unreadable ({exc}): trainable flags "
                                             "come from the gradient graph, values are not read"))
            return
        for tensor in [*self.ckpt.trainable.values(), *self.ckpt.frozen.values()]:
            if tensor.where is not None and tensor.where.path == Path():
                tensor.where.path = path
        self.model.notes.append(f"onnxruntime-training checkpoint {path.name!r}: {len(self.ckpt.trainable)} "
                                f"trainable and {len(self.ckpt.frozen)} frozen parameters")

    def _checkpoint_rate(self, opt: Optimizer) -> None:
        groups = self.ckpt.groups if self.ckpt else []
        if not groups:
            if opt.learning_rate is None:
                self.model.notes.append("learning rate is set at run time and the checkpoint holds no optimizer "
                                        "state: pass it with options")
            return
        name, step, rate = groups[0]
        opt.learning_rate = LearningRate(float(rate), float(rate), config={"optimizer_group": name})
        opt.iterations = int(step)
        self.model.notes.append(f"learning rate {rate:g} (initial) and step {step} from the checkpoint's "
                                f"optimizer group {name!r}")

    # -- parameters ------------------------------------------------------------
    def _collect_params(self) -> list[_Param]:
        params: list[_Param] = []
        for scope, tensor in self.index.tensors:
            if tensor.data_type in FLOAT_TYPES:
                shape = _shape(tensor.dims, f"initializer {tensor.name!r}")
                params.append(_Param(tensor.name, shape, tensor.data_type, scope, tensor=tensor))
        for scope, sparse in self.index.sparse:
            values = sparse.values
            if values.data_type in FLOAT_TYPES:
                shape = _shape(sparse.dims, f"sparse initializer {values.name!r}")
                params.append(_Param(values.name, shape, values.data_type, scope, tensor=values,
                                     dense_size=math.prod(shape)))
        params += self._input_params({p.name for p in params})
        if self.ckpt is not None:
            for p in params:
                p.ckpt = self.ckpt.get(p.name)
        return params

    def _input_params(self, known: set[str]) -> list[_Param]:
        """Graph inputs that are parameters: onnxruntime-training keeps them
        out of the graph, in the checkpoint."""
        grads = self._gradient_names()
        out = []
        for name, info in self.index.inputs.items():
            if name in known:
                continue
            entry = self.ckpt.get(name) if self.ckpt else None
            if entry is None and name not in grads:
                continue
            shape, dtype = self._input_shape(info, entry)
            if dtype in FLOAT_TYPES and shape is not None:
                out.append(_Param(name, shape, dtype, ckpt=entry))
        return out

    @staticmethod
    def _input_shape(info, entry: _CkptTensor | None) -> tuple[tuple[int, ...] | None, int]:
        if entry is not None:
            return entry.shape, entry.dtype
        tensor_type = info.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        if any(d is None or d < 0 for d in dims):
            return None, tensor_type.elem_type
        return tuple(dims), tensor_type.elem_type

    def _gradient_names(self) -> set[str]:
        """Names P with a gradient value ``P_grad`` (or ``P_grad.<suffix>``)."""
        names = set(self.index.producer) | set(self.index.inputs) | self.index.outputs
        return {n.split("_grad")[0] for n in names if "_grad" in n}

    def _uses(self, name: str) -> list[tuple[_Node, int]]:
        """Consumers of a tensor through value-preserving ops, gradient and
        training ops left out."""
        out, frontier, steps = [], [name], 0
        while frontier and steps < MAX_WALK:
            current = frontier.pop()
            for node, i in self.index.consumers.get(current, []):
                steps += 1
                if node.is_gradient or node.is_training_op:
                    continue
                if node.op in VALUE_PASS and i == 0 and node.outputs:
                    frontier.extend(node.outputs)
                else:
                    out.append((node, i))
        return sorted(out, key=lambda item: item[0].index)

    def _role_at(self, node: _Node, i: int, p: _Param) -> Role:
        role = INPUT_ROLES.get((node.domain, node.op), {}).get(i)
        if role is Role.KERNEL and node.op == "Conv" and int(node.attr("group", 1) or 1) > 1 \
                and len(p.shape) > 1 and p.shape[1] == 1:
            return Role.DEPTHWISE_KERNEL
        if role is None and node.op == "Add" and node.domain == "" and len(node.inputs) == 2:
            producer = self.index.producer.get(node.inputs[1 - i])
            if producer is not None and producer.op in BIASED_OPS:
                return Role.BIAS
        return role or Role.OTHER

    def _assign_role(self, p: _Param) -> bool:
        """Set the role and primary consumer; False when the tensor is a
        constant or optimizer state rather than a parameter."""
        if p.name in self.state_names:
            return False
        uses = self._uses(p.name)
        p.uses = len({node.index for node, _ in uses})
        best: tuple[int, Role, _Node | None] = (ROLE_RANK[Role.OTHER] + 1, Role.OTHER, None)
        for node, i in uses:
            role = self._role_at(node, i, p)
            if ROLE_RANK[role] < best[0]:
                best = (ROLE_RANK[role], role, node)
        p.role, p.node = best[1], best[2]
        if p.role is not Role.OTHER:
            return True
        return not self._is_constant(p, uses)

    def _is_constant(self, p: _Param, uses: list[tuple[_Node, int]]) -> bool:
        if p.ckpt is not None or (self.updated and p.name in self.updated):
            return False
        if not uses:
            # Only gradient ops read it (loss-gradient seeds), or nothing at all.
            consumers = self.index.consumers.get(p.name, [])
            return bool(consumers) and all(n.is_gradient for n, _ in consumers)
        slots = all((n.op, i) in CONSTANT_SLOTS or n.op in CONSTANT_OPS for n, i in uses)
        arithmetic = p.size == 1 and all(n.op in ARITHMETIC or (n.op, i) in CONSTANT_SLOTS for n, i in uses)
        return slots or arithmetic or len(p.shape) == 0

    def _assign_trainable(self, params: list[_Param]) -> None:
        """The checkpoint's lists, else what an optimizer or the training
        info updates, else gradients, else every non-statistic tensor."""
        grads = self._gradient_names() & {p.name for p in params}
        source = None
        if self.ckpt is not None and (self.ckpt.trainable or self.ckpt.frozen):
            known, source = set(self.ckpt.trainable), "the checkpoint's requires_grad list"
        elif self.updated:
            known, source = self.updated, "the parameters the optimizer or training info updates"
        elif grads:
            known, source = grads, "the gradients in the graph"
        for p in params:
            p.trainable = not p.role.is_statistic and (source is None or p.name in known)
        if source is not None and params:
            frozen = sum(1 for p in params if not p.trainable and not p.role.is_statistic)
            self.model.notes.append(f"trainable parameters from {source}; {frozen} other parameters are frozen")

    # -- penalties ---------------------------------------------------------------
    def _find_penalties(self, params: list[_Param]) -> None:
        by_name = {p.name: p for p in params}
        found: dict[str, list[tuple[_Term, _Path]]] = {}
        for node in self.index.nodes:
            term = self._match_term(node, by_name)
            if term is None:
                continue
            path = self._path_to_loss(term.node.outputs[0] if term.node.outputs else "")
            if path is None:
                self.model.notes.append(f"{term.pattern} on {term.param!r} is not added to any loss output: ignored")
                continue
            found.setdefault(term.param, []).append((term, path))
        for name, terms in found.items():
            by_name[name].regularizer = self._regularizer(terms)
            self.model.notes.append(self._penalty_note(name, terms, by_name[name].regularizer))

    def _match_term(self, node: _Node, params: dict[str, _Param]) -> _Term | None:
        """A reduction of a parameter that makes an L1 or L2 penalty term."""
        if node.domain != "" or node.is_gradient or not node.inputs:
            return None
        weight = self.index.source(node.inputs[0])
        if node.op in ("ReduceSumSquare", "ReduceL1", "ReduceL2") and weight in params:
            if not self._full_reduction(node, params[weight]):
                return None
            if node.op == "ReduceL2":
                return self._squared_norm(node, weight)
            kind = "l2" if node.op == "ReduceSumSquare" else "l1"
            return _Term(weight, kind, 1.0, node, f"{node.op}({weight})")
        if node.op not in ("ReduceSum", "ReduceMean"):
            return None
        inner = self.index.producer.get(node.inputs[0])
        kind, weight = self._elementwise_term(inner, params) if inner is not None else (None, None)
        if kind is None or not self._full_reduction(node, params[weight]):
            return None
        factor = 1.0 / params[weight].size if node.op == "ReduceMean" else 1.0
        return _Term(weight, kind, factor, node, f"{node.op}({self._inner_text(inner, weight)})")

    def _elementwise_term(self, inner: _Node, params: dict[str, _Param]) -> tuple[str | None, str | None]:
        """Abs(W) -> l1; Pow(W, 2) or Mul(W, W) -> l2."""
        ins = [self.index.source(n) for n in inner.inputs]
        if inner.op == "Abs" and ins and ins[0] in params:
            return "l1", ins[0]
        if inner.op == "Pow" and len(ins) == 2 and ins[0] in params and self.index.scalar(inner.inputs[1]) == 2.0:
            return "l2", ins[0]
        if inner.op == "Mul" and len(ins) == 2 and ins[0] == ins[1] and ins[0] in params:
            return "l2", ins[0]
        return None, None

    @staticmethod
    def _inner_text(inner: _Node, weight: str) -> str:
        return {"Abs": f"Abs({weight})", "Pow": f"Pow({weight}, 2)"}.get(inner.op, f"Mul({weight}, {weight})")

    def _squared_norm(self, node: _Node, weight: str) -> _Term:
        """ReduceL2(W) followed by Pow(., 2) or Mul(x, x) is sum(w^2)."""
        out = node.outputs[0] if node.outputs else ""
        for consumer, i in self.index.consumers.get(out, []):
            if consumer.op == "Pow" and i == 0 and self.index.scalar(consumer.inputs[1]) == 2.0:
                return _Term(weight, "l2", 1.0, consumer, f"Pow(ReduceL2({weight}), 2)")
            if consumer.op == "Mul" and consumer.inputs[0] == consumer.inputs[1] == out:
                return _Term(weight, "l2", 1.0, consumer, f"Mul(ReduceL2({weight}), ReduceL2({weight}))")
        return _Term(weight, "norm", 1.0, node, f"ReduceL2({weight}) (not squared)")

    def _full_reduction(self, node: _Node, p: _Param) -> bool:
        """True when the reduction covers every axis (a scalar penalty)."""
        axes = node.attr("axes")
        if axes is None and len(node.inputs) > 1 and node.inputs[1]:
            tensor = self.index.constants.get(node.inputs[1])
            if tensor is None:
                return False
            from onnx import numpy_helper

            axes = [int(a) for a in numpy_helper.to_array(tensor).reshape(-1)]
        if not axes:
            return not node.attr("noop_with_empty_axes", 0)
        rank = len(p.shape)
        return {a % rank for a in axes} == set(range(rank)) if rank else True

    def _path_to_loss(self, start: str) -> _Path | None:
        """Follow a penalty term forward to a loss output, multiplying the
        constant factors met on the way; prefer a path that joins the data loss."""
        best: _Path | None = None
        stack, steps = [(start, 1.0, False, None)], 0
        while stack and steps < MAX_WALK:
            name, scale, joined, unknown = stack.pop()
            steps += 1
            if name in self.loss_targets:
                candidate = _Path(scale if unknown is None else None, name, joined, unknown)
                if best is None or (joined and not best.joined):
                    best = candidate
                continue
            for node, i in self.index.consumers.get(name, []):
                step = self._scale_step(node, i, scale, joined, unknown)
                if step is not None:
                    stack.extend((out, *step) for out in node.outputs[:1])
        return best

    def _scale_step(self, node: _Node, i: int, scale: float, joined: bool, unknown: str | None):
        if node.is_gradient or node.domain != "":
            return None
        op, ins = node.op, node.inputs
        if op == "Mul" and len(ins) == 2:
            value = self.index.scalar(ins[1 - i])
            return (scale * value, joined, unknown) if value is not None else (scale, joined, ins[1 - i])
        if op == "Div" and i == 0 and len(ins) == 2:
            value = self.index.scalar(ins[1])
            return (scale / value, joined, unknown) if value else (scale, joined, ins[1])
        if op in ("Add", "Sum", "Mean"):
            others = sum(1 for n in ins if n)
            scale = scale / others if op == "Mean" else scale
            return scale, joined or others > 1, unknown
        if op == "Sub" and len(ins) == 2:
            return (scale if i == 0 else -scale), True, unknown
        if op == "Neg":
            return -scale, joined, unknown
        if op in SCALAR_PASS:
            return scale, joined, unknown
        return None

    @staticmethod
    def _regularizer(terms: list[tuple[_Term, _Path]]) -> Regularizer:
        config = {"source": "onnx graph penalty",
                  "terms": [{"pattern": t.pattern, "scale": p.scale, "loss_output": p.output,
                             "non_constant_factor": p.unknown} for t, p in terms]}
        if any(p.scale is None or t.kind == "norm" for t, p in terms):
            return Regularizer(kind="custom", class_name="ONNXGraphPenalty", config=config)
        l1 = sum(p.scale * t.factor for t, p in terms if t.kind == "l1")
        l2 = sum(p.scale * t.factor for t, p in terms if t.kind == "l2")
        kind = "l1l2" if l1 and l2 else ("l1" if l1 else "l2")
        return Regularizer(kind=kind, l1=l1, l2=l2, class_name="ONNXGraphPenalty", config=config)

    @staticmethod
    def _penalty_note(name: str, terms: list[tuple[_Term, _Path]], reg: Regularizer) -> str:
        parts = []
        for term, path in terms:
            factor = f"x {path.scale * term.factor:g}" if path.scale is not None else \
                f"x non-constant {path.unknown!r}"
            parts.append(f"{term.pattern} {factor} added to {path.output!r}")
        summary = ", ".join(f"{k}={v:g}" for k, v in reg.factors().items()) or "factor unknown"
        return f"penalty recognised on {name!r}: {'; '.join(parts)} -> {reg.kind} ({summary}, Keras convention)"

    # -- statistics ----------------------------------------------------------------
    def _read_stats(self, params: list[_Param]) -> None:
        for p in params:
            # Ranges are checked even without statistics: data past the end
            # of its file is a truncated model either way.
            where = self._external(p)
            p.stats = self._stats(p, where) if self.options.weight_stats else None

    def _external(self, p: _Param) -> _FileRange | None:
        if p.tensor is None or p.tensor.data_location != EXTERNAL:
            return None
        values = math.prod(_shape(p.tensor.dims, f"initializer {p.name!r}")) if p.tensor.dims else 1
        itemsize = np.dtype(FLOAT_TYPES[p.dtype][1]).itemsize
        return _external_range(p.tensor, self.folder, values * itemsize)

    def _stats(self, p: _Param, where: _FileRange | None) -> WeightStats | None:
        chunk = self.options.chunk_bytes
        if p.tensor is not None:
            values = math.prod(p.tensor.dims) if p.tensor.dims else 1
            if where is not None:
                return _file_stats(where, p.dtype, chunk, p.size)
            return _array_stats(_proto_array(p.tensor, p.dtype, values), p.dtype, chunk, p.size)
        if p.ckpt is not None and p.ckpt.where is not None:
            return _file_stats(p.ckpt.where, p.ckpt.dtype, chunk, p.size)
        return None

    # -- layers ------------------------------------------------------------------
    def _build_layers(self, params: list[_Param]) -> None:
        groups: dict[str, list[_Param]] = {}
        for p in params:
            p.layer = self._layer_key(p)
            groups.setdefault(p.layer, []).append(p)
        self.owner = {p.name: p.layer for p in params}
        if len(groups) > self.options.max_layers:
            raise UnsafeInputError(f"{len(groups)} layers, over the limit of {self.options.max_layers}")
        order = sorted(groups, key=lambda k: min((p.node.index for p in groups[k] if p.node), default=1 << 60))
        node_layer = self._node_layers(groups)
        layer_nodes: dict[str, set[int]] = {}
        for index, key in node_layer.items():
            layer_nodes.setdefault(key, set()).add(index)
        for key in order:
            self.model.layers.append(self._layer(key, groups[key], node_layer, layer_nodes.get(key, set())))

    def _layer_key(self, p: _Param) -> str:
        prefix = _name_prefix(p.name)
        if prefix:
            return prefix
        node = p.node
        if node is None:
            return _clean(p.name)
        for other in node.inputs:  # a sibling weight with a readable name
            sibling = _name_prefix(other) if other != p.name and other in self.param_names else None
            if sibling:
                return sibling
        return _node_scope(node.name) or _clean(node.name) or f"{node.op}_{node.index}"

    def _node_layers(self, groups: dict[str, list[_Param]]) -> dict[int, str]:
        """Node index -> the layer whose weights it consumes in a role."""
        out: dict[int, str] = {}
        for key, members in groups.items():
            for p in members:
                for node, i in self._uses(p.name):
                    if self._role_at(node, i, p) is not Role.OTHER or node is p.node:
                        out.setdefault(node.index, key)
        return out

    def _layer(self, key: str, members: list[_Param], node_layer: dict[int, str], own: set[int]) -> Layer:
        main = min(members, key=lambda p: (ROLE_RANK[p.role], p.node.index if p.node else 1 << 60))
        node = main.node
        variables = [Variable(name=p.name, role=p.role, shape=p.shape, trainable=p.trainable,
                              regularizer=p.regularizer, stats=p.stats, dtype=FLOAT_TYPES[p.dtype][0],
                              location=f"{p.scope}:{p.name}" if p.scope else p.name) for p in members]
        outbound, activation = self._outbound(own, node_layer)
        config = {"op_type": node.op if node else None, "domain": node.domain if node else None,
                  "node": node.name if node else None, "graph": main.scope or "main",
                  "attributes": {k: v for k, v in (node.attrs() if node else {}).items() if v is not None}}
        return Layer(name=key, path=key, class_name=node.op if node else "Initializer",
                     trainable=any(p.trainable for p in members), variables=variables,
                     activation=activation, units=self._units(main), outbound=outbound,
                     calls=max(1, max(p.uses for p in members)), config=config)

    def _units(self, p: _Param) -> int | None:
        """The output width of the layer's main op, where the weight shows it."""
        node, shape = p.node, p.shape
        if node is None or not shape:
            return None
        op = node.op
        if op in ("LSTM", "GRU", "RNN"):
            return node.attr("hidden_size")
        if p.role is Role.EMBEDDINGS:
            return shape[-1]
        if not p.role.is_kernel_like:
            return None
        if op == "Gemm" and len(shape) == 2:
            return shape[0] if node.attr("transB", 0) else shape[1]
        if op in ("MatMul", "FusedMatMul"):
            return shape[-1]
        if op in ("Conv", "FusedConv"):
            return shape[0]
        if op == "ConvTranspose" and len(shape) > 1:
            return shape[1] * int(node.attr("group", 1) or 1)
        return None

    def _outbound(self, own: set[int], node_layer: dict[int, str]) -> tuple[list[str], str | None]:
        """Layers fed through homogeneous parameter-free ops, and the
        activation applied right after the layer (``own``: its nodes)."""
        frontier = [o for i in own for o in self.index.nodes[i].outputs]
        first = [n for name in frontier for n, _ in self.index.consumers.get(name, [])
                 if n.index not in own and not n.is_gradient]
        activation = ACTIVATIONS.get(first[0].op) if len(first) == 1 else None
        found, clean, seen, steps = [], True, set(), 0
        while frontier and steps < MAX_WALK:
            name = frontier.pop()
            steps += 1
            if name in self.index.outputs:
                clean = False
            for node, _ in self.index.consumers.get(name, []):
                if node.index in own or node.index in seen or node.is_gradient:
                    continue
                seen.add(node.index)
                owner = node_layer.get(node.index)
                if owner is not None:
                    if owner not in found:
                        found.append(owner)
                elif node.op in HOMOGENEOUS:
                    frontier.extend(node.outputs)
                else:
                    clean = False
        return (found if clean else []), activation

    # -- losses and outputs ---------------------------------------------------------
    def _find_losses(self) -> None:
        for node in self.index.nodes:
            loss = self._loss_of(node)
            if loss is not None:
                self.model.losses.append(loss)

    def _loss_of(self, node: _Node) -> Loss | None:
        if node.domain != "" or node.is_gradient:
            return None
        reduction = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}
        if node.op in ("SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss"):
            mode = node.attr("reduction", "mean")
            return Loss(name="sparse_categorical_crossentropy", from_logits=node.op == "SoftmaxCrossEntropyLoss",
                        reduction=reduction.get(mode, mode), output=self._upstream_layer(node.inputs[0]),
                        config={"op": node.op, "node": node.name, "reduction": mode})
        if node.op not in ("ReduceMean", "ReduceSum") or node.attr("axes") or len(node.inputs) > 1:
            return None
        kind, prediction = self._regression_error(node.inputs[0])
        if kind is None or self._path_to_loss(node.outputs[0] if node.outputs else "") is None:
            return None
        return Loss(name=kind, reduction="sum_over_batch_size" if node.op == "ReduceMean" else "sum",
                    output=self._upstream_layer(prediction), config={"op": node.op, "node": node.name})

    def _regression_error(self, name: str) -> tuple[str | None, str | None]:
        """Pow(Sub(a, b), 2) / Mul(d, d) -> mse, Abs(Sub(a, b)) -> mae, where
        the Sub compares a prediction with a target (no parameter in it)."""
        inner = self.index.producer.get(name)
        if inner is None:
            return None, None
        diff = self.index.producer.get(inner.inputs[0]) if inner.inputs else None
        if diff is None or diff.op != "Sub":
            return None, None
        prediction = next((n for n in diff.inputs if n in self.index.producer), None)
        if inner.op == "Pow" and self.index.scalar(inner.inputs[1]) == 2.0:
            return "mean_squared_error", prediction
        if inner.op == "Mul" and inner.inputs[0] == inner.inputs[1]:
            return "mean_squared_error", prediction
        if inner.op == "Abs":
            return "mean_absolute_error", prediction
        return None, None

    def _upstream_layer(self, name: str | None) -> str | None:
        """The nearest layer producing ``name``, through parameter-free ops."""
        owners = self.owner
        frontier, steps = [name] if name else [], 0
        while frontier and steps < MAX_WALK:
            node = self.index.producer.get(frontier.pop(0))
            steps += 1
            if node is None:
                continue
            hit = next((owners[n] for n in node.inputs if n in owners), None)
            if hit is None:
                hit = next((owners[s] for n in node.inputs if (s := self.index.source(n)) in owners), None)
            if hit is not None:
                return hit
            frontier.extend(n for n in node.inputs if n)
            frontier.extend(self.index.branch_outputs.get(node.index, []))
        return None

    def _find_outputs(self) -> None:
        if self.model.losses:
            for loss in self.model.losses:
                layer = self.model.layer(loss.output) if loss.output else None
                if layer is not None and all(o.layer != layer.path for o in self.model.outputs):
                    self.model.outputs.append(Output(layer.path, layer.units, layer.activation or "linear"))
            return
        for value in self.index.main_outputs:
            producer = self.index.producer.get(value.name)
            if producer is not None and (producer.is_training_op or producer.is_gradient):
                continue
            layer_name = self._upstream_layer(value.name)
            if layer_name is None:
                continue
            activation = ACTIVATIONS.get(producer.op, "linear") if producer is not None else "linear"
            dims = value.type.tensor_type.shape.dim
            units = dims[-1].dim_value if len(dims) and dims[-1].HasField("dim_value") else None
            layer = self.model.layer(layer_name)
            self.model.outputs.append(Output(layer_name, units or (layer.units if layer else None), activation))

    # -- notes ---------------------------------------------------------------------
    def _final_notes(self, params: list[_Param]) -> None:
        model = self.model
        training = bool(model.optimizer or model.losses or model.has_regularization or self.proto.training_info
                        or self.ckpt is not None or (self._gradient_names() & {p.name for p in params}))
        if not training:
            model.notes.append(INFERENCE_NOTE)
        elif model.optimizer is None:
            model.notes.append("training graph without optimizer settings: pass them with options")
        if self.options.weight_stats is False:
            model.notes.append("weight statistics not read (weight_stats disabled)")
        skipped = len(self.index.tensors) + len(self.index.sparse) - sum(1 for p in params if p.tensor is not None)
        if skipped:
            model.notes.append(f"{skipped} initializers are constants, integer tensors or optimizer state, "
                               "not parameters")
        if self.index.sparse:
            model.notes.append("sparse initializers are counted at their dense size")


def _tidy_float32(model: Model) -> Model:
    """ONNX stores attributes and constants as float32: show 0.01, not
    0.009999999776, as the Keras readers do (``keras_objects.tidy``)."""
    from reglint.readers.keras_objects import tidy

    opt = model.optimizer
    if opt is not None:
        for name in ("weight_decay", "coupled_l2", "momentum", "beta_1", "beta_2", "epsilon", "lr_decay"):
            value = getattr(opt, name)
            if isinstance(value, float):
                setattr(opt, name, tidy(value))
        lr = opt.learning_rate
        if lr is not None:
            lr.initial = tidy(lr.initial) if isinstance(lr.initial, float) else lr.initial
            lr.peak = tidy(lr.peak) if isinstance(lr.peak, float) else lr.peak
    for _, var in model.variables():
        reg = var.regularizer
        if reg is not None:
            reg.l1, reg.l2, reg.factor = tidy(reg.l1), tidy(reg.l2), tidy(reg.factor)
    return model
