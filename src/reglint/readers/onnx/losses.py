"""Losses and outputs: the loss ops of a training graph (cross-entropy ops,
a full reduction of a squared or absolute difference that reaches a loss
output) and the layers that produce the model's outputs."""

from __future__ import annotations

from reglint.model import Loss, Model, Output
from reglint.readers.onnx.graph import MAX_WALK, GraphIndex, Node
from reglint.readers.onnx.layers import ACTIVATIONS
from reglint.readers.onnx.penalties import path_to_loss


def find_losses(index: GraphIndex, owner: dict[str, str], loss_targets: set[str]) -> list[Loss]:
    """``owner``: parameter name -> layer key."""
    losses = []
    for node in index.nodes:
        loss = _loss_of(index, owner, loss_targets, node)
        if loss is not None:
            losses.append(loss)
    return losses


def _loss_of(index: GraphIndex, owner: dict[str, str], loss_targets: set[str], node: Node) -> Loss | None:
    if node.domain != "" or node.is_gradient:
        return None
    reduction = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}
    if node.op in ("SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss"):
        mode = node.attr("reduction", "mean")
        return Loss(name="sparse_categorical_crossentropy", from_logits=node.op == "SoftmaxCrossEntropyLoss",
                    reduction=reduction.get(mode, mode), output=upstream_layer(index, owner, node.inputs[0]),
                    config={"op": node.op, "node": node.name, "reduction": mode})
    if node.op not in ("ReduceMean", "ReduceSum") or node.attr("axes") or len(node.inputs) > 1:
        return None
    kind, prediction = _regression_error(index, node.inputs[0])
    if kind is None or path_to_loss(index, loss_targets, node.outputs[0] if node.outputs else "") is None:
        return None
    return Loss(name=kind, reduction="sum_over_batch_size" if node.op == "ReduceMean" else "sum",
                output=upstream_layer(index, owner, prediction), config={"op": node.op, "node": node.name})


def _regression_error(index: GraphIndex, name: str) -> tuple[str | None, str | None]:
    """Pow(Sub(a, b), 2) / Mul(d, d) -> mse, Abs(Sub(a, b)) -> mae, where
    the Sub compares a prediction with a target (no parameter in it)."""
    inner = index.producer.get(name)
    if inner is None:
        return None, None
    diff = index.producer.get(inner.inputs[0]) if inner.inputs else None
    if diff is None or diff.op != "Sub":
        return None, None
    prediction = next((n for n in diff.inputs if n in index.producer), None)
    if inner.op == "Pow" and index.scalar(inner.inputs[1]) == 2.0:
        return "mean_squared_error", prediction
    if inner.op == "Mul" and inner.inputs[0] == inner.inputs[1]:
        return "mean_squared_error", prediction
    if inner.op == "Abs":
        return "mean_absolute_error", prediction
    return None, None


def upstream_layer(index: GraphIndex, owner: dict[str, str], name: str | None) -> str | None:
    """The nearest layer producing ``name``, through parameter-free ops."""
    frontier, steps = [name] if name else [], 0
    while frontier and steps < MAX_WALK:
        node = index.producer.get(frontier.pop(0))
        steps += 1
        if node is None:
            continue
        hit = next((owner[n] for n in node.inputs if n in owner), None)
        if hit is None:
            hit = next((owner[s] for n in node.inputs if (s := index.source(n)) in owner), None)
        if hit is not None:
            return hit
        frontier.extend(n for n in node.inputs if n)
        frontier.extend(index.branch_outputs.get(node.index, []))
    return None


def find_outputs(model: Model, index: GraphIndex, owner: dict[str, str]) -> None:
    """The layers behind the losses, else behind the graph's outputs."""
    if model.losses:
        for loss in model.losses:
            layer = model.layer(loss.output) if loss.output else None
            if layer is not None and all(o.layer != layer.path for o in model.outputs):
                model.outputs.append(Output(layer.path, layer.units, layer.activation or "linear"))
        return
    for value in index.main_outputs:
        producer = index.producer.get(value.name)
        if producer is not None and (producer.is_training_op or producer.is_gradient):
            continue
        layer_name = upstream_layer(index, owner, value.name)
        if layer_name is None:
            continue
        activation = ACTIVATIONS.get(producer.op, "linear") if producer is not None else "linear"
        dims = value.type.tensor_type.shape.dim
        units = dims[-1].dim_value if len(dims) and dims[-1].HasField("dim_value") else None
        layer = model.layer(layer_name)
        model.outputs.append(Output(layer_name, units or (layer.units if layer else None), activation))
