"""Explicit penalties in training graphs: ``ReduceSumSquare(W)``,
``ReduceL2(W)`` squared, ``ReduceSum(Pow(W, 2))``, ``ReduceSum(Mul(W, W))``
(L2); ``ReduceL1(W)``, ``ReduceSum(Abs(W))`` (L1); ``ReduceMean`` forms
divide by the element count. The term is followed forward to a loss output,
multiplying the constant factors met on the way, and becomes
``Regularizer(l2=lambda)`` with penalty ``lambda * sum(w**2)`` (Keras'
convention)."""

from __future__ import annotations

from dataclasses import dataclass

from reglint.model import Regularizer
from reglint.readers.onnx.graph import MAX_WALK, GraphIndex, Node
from reglint.readers.onnx.params import Param

# Scalar-preserving ops a penalty passes through on its way to the loss.
SCALAR_PASS = {"Identity", "Cast", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "ReduceSum", "ReduceMean"}


@dataclass
class Term:
    param: str
    kind: str  # l1, l2, or norm (an unsquared L2 norm: custom)
    factor: float  # ReduceMean: 1/size
    node: Node  # whose output is the term
    pattern: str


@dataclass
class LossPath:
    """How a penalty term reaches a loss output."""

    scale: float | None
    output: str
    joined: bool  # added to something else (the data loss) on the way
    unknown: str | None = None  # a non-constant factor


def find_penalties(params: list[Param], index: GraphIndex, loss_targets: set[str], notes: list[str]) -> None:
    """Set the regularizer of every parameter a penalty term in the graph
    reaches a loss with."""
    by_name = {p.name: p for p in params}
    found: dict[str, list[tuple[Term, LossPath]]] = {}
    for node in index.nodes:
        term = _match_term(index, node, by_name)
        if term is None:
            continue
        path = path_to_loss(index, loss_targets, term.node.outputs[0] if term.node.outputs else "")
        if path is None:
            notes.append(f"{term.pattern} on {term.param!r} is not added to any loss output: ignored")
            continue
        found.setdefault(term.param, []).append((term, path))
    for name, terms in found.items():
        regularizer = _regularizer(terms)
        by_name[name].regularizer = regularizer
        notes.append(_penalty_note(name, terms, regularizer))


def _match_term(index: GraphIndex, node: Node, params: dict[str, Param]) -> Term | None:
    """A reduction of a parameter that makes an L1 or L2 penalty term."""
    if node.domain != "" or node.is_gradient or not node.inputs:
        return None
    weight = index.source(node.inputs[0])
    if node.op in ("ReduceSumSquare", "ReduceL1", "ReduceL2") and weight in params:
        if not _full_reduction(index, node, params[weight]):
            return None
        if node.op == "ReduceL2":
            return _squared_norm(index, node, weight)
        reduced = "l2" if node.op == "ReduceSumSquare" else "l1"
        return Term(weight, reduced, 1.0, node, f"{node.op}({weight})")
    if node.op not in ("ReduceSum", "ReduceMean"):
        return None
    inner = index.producer.get(node.inputs[0])
    if inner is None:
        return None
    kind, squared = _elementwise_term(index, inner, params)
    if kind is None or squared is None or not _full_reduction(index, node, params[squared]):
        return None
    factor = 1.0 / params[squared].size if node.op == "ReduceMean" else 1.0
    return Term(squared, kind, factor, node, f"{node.op}({_inner_text(inner, squared)})")


def _elementwise_term(index: GraphIndex, inner: Node, params: dict[str, Param]) -> tuple[str | None, str | None]:
    """Abs(W) -> l1; Pow(W, 2) or Mul(W, W) -> l2."""
    ins = [index.source(n) for n in inner.inputs]
    if inner.op == "Abs" and ins and ins[0] in params:
        return "l1", ins[0]
    if inner.op == "Pow" and len(ins) == 2 and ins[0] in params and index.scalar(inner.inputs[1]) == 2.0:
        return "l2", ins[0]
    if inner.op == "Mul" and len(ins) == 2 and ins[0] == ins[1] and ins[0] in params:
        return "l2", ins[0]
    return None, None


def _inner_text(inner: Node, weight: str) -> str:
    return {"Abs": f"Abs({weight})", "Pow": f"Pow({weight}, 2)"}.get(inner.op, f"Mul({weight}, {weight})")


def _squared_norm(index: GraphIndex, node: Node, weight: str) -> Term:
    """ReduceL2(W) followed by Pow(., 2) or Mul(x, x) is sum(w^2)."""
    out = node.outputs[0] if node.outputs else ""
    for consumer, i in index.consumers.get(out, []):
        if consumer.op == "Pow" and i == 0 and index.scalar(consumer.inputs[1]) == 2.0:
            return Term(weight, "l2", 1.0, consumer, f"Pow(ReduceL2({weight}), 2)")
        if consumer.op == "Mul" and consumer.inputs[0] == consumer.inputs[1] == out:
            return Term(weight, "l2", 1.0, consumer, f"Mul(ReduceL2({weight}), ReduceL2({weight}))")
    return Term(weight, "norm", 1.0, node, f"ReduceL2({weight}) (not squared)")


def _full_reduction(index: GraphIndex, node: Node, p: Param) -> bool:
    """True when the reduction covers every axis (a scalar penalty)."""
    axes = node.attr("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        tensor = index.constants.get(node.inputs[1])
        if tensor is None:
            return False
        from onnx import numpy_helper

        axes = [int(a) for a in numpy_helper.to_array(tensor).reshape(-1)]
    if not axes:
        return not node.attr("noop_with_empty_axes", 0)
    rank = len(p.shape)
    return {a % rank for a in axes} == set(range(rank)) if rank else True


def path_to_loss(index: GraphIndex, loss_targets: set[str], start: str) -> LossPath | None:
    """Follow a penalty term forward to a loss output, multiplying the
    constant factors met on the way; prefer a path that joins the data loss."""
    best: LossPath | None = None
    stack: list[tuple[str, float, bool, str | None]] = [(start, 1.0, False, None)]
    steps = 0
    while stack and steps < MAX_WALK:
        name, scale, joined, unknown = stack.pop()
        steps += 1
        if name in loss_targets:
            candidate = LossPath(scale if unknown is None else None, name, joined, unknown)
            if best is None or (joined and not best.joined):
                best = candidate
            continue
        for node, i in index.consumers.get(name, []):
            step = _scale_step(index, node, i, scale, joined, unknown)
            if step is not None:
                stack.extend((out, *step) for out in node.outputs[:1])
    return best


def _scale_step(index: GraphIndex, node: Node, i: int, scale: float, joined: bool,
                unknown: str | None) -> tuple[float, bool, str | None] | None:
    """(scale, joined, unknown) past ``node`` entered at input ``i``; None
    where the value stops being a scaled penalty."""
    if node.is_gradient or node.domain != "":
        return None
    op, ins = node.op, node.inputs
    if op == "Mul" and len(ins) == 2:
        value = index.scalar(ins[1 - i])
        return (scale * value, joined, unknown) if value is not None else (scale, joined, ins[1 - i])
    if op == "Div" and i == 0 and len(ins) == 2:
        value = index.scalar(ins[1])
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


def _regularizer(terms: list[tuple[Term, LossPath]]) -> Regularizer:
    config = {"source": "onnx graph penalty",
              "terms": [{"pattern": t.pattern, "scale": p.scale, "loss_output": p.output,
                         "non_constant_factor": p.unknown} for t, p in terms]}
    if any(p.scale is None or t.kind == "norm" for t, p in terms):
        return Regularizer(kind="custom", class_name="ONNXGraphPenalty", config=config)
    scaled = [(t.kind, p.scale * t.factor) for t, p in terms if p.scale is not None]
    l1 = sum(value for kind, value in scaled if kind == "l1")
    l2 = sum(value for kind, value in scaled if kind == "l2")
    kind = "l1l2" if l1 and l2 else ("l1" if l1 else "l2")
    return Regularizer(kind=kind, l1=l1, l2=l2, class_name="ONNXGraphPenalty", config=config)


def _penalty_note(name: str, terms: list[tuple[Term, LossPath]], reg: Regularizer) -> str:
    parts = []
    for term, path in terms:
        factor = f"x {path.scale * term.factor:g}" if path.scale is not None else \
            f"x non-constant {path.unknown!r}"
        parts.append(f"{term.pattern} {factor} added to {path.output!r}")
    summary = ", ".join(f"{k}={v:g}" for k, v in reg.factors().items()) or "factor unknown"
    return f"penalty recognised on {name!r}: {'; '.join(parts)} -> {reg.kind} ({summary}, Keras convention)"
