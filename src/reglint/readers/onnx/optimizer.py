"""Optimizer ops in Keras' convention: ai.onnx.preview.training Adam, Momentum
and Adagrad; onnxruntime-training's AdamWOptimizer and SGDOptimizerV2."""

from __future__ import annotations

from dataclasses import dataclass

from reglint.model import LearningRate, Optimizer
from reglint.readers.onnx.graph import MS, ORT_OPTIMIZERS, PREVIEW, GraphIndex, Node


@dataclass
class OptimizerFound:
    optimizer: Optimizer
    updated: list[str]  # the parameters it updates (names), when the op lists them
    state: list[str]  # optimizer state and hyper-parameter inputs: not parameters
    note: str


def preview_optimizer(node: Node, index: GraphIndex) -> OptimizerFound | None:
    """ai.onnx.preview.training Adam/Momentum/Adagrad: inputs R, T, then X,
    G and one (Momentum V, Adagrad H) or two (Adam V, H) state lists."""
    states = {"Momentum": 1, "Adagrad": 1, "Adam": 2}.get(node.op)
    if states is None:
        return None
    inputs = node.inputs
    n = (len(inputs) - 2) // (2 + states)
    params, state = inputs[2:2 + n], inputs[2 + 2 * n:]
    rate, step = index.scalar(inputs[0]) if inputs else None, index.scalar(inputs[1]) if len(inputs) > 1 else None
    attrs = node.attrs()
    c = float(attrs.get("norm_coefficient", 0.0) or 0.0)
    opt = Optimizer(class_name=node.op, coupled_l2=c / 2 if c else None,
                    config={"op": f"{PREVIEW}.{node.op}", "node": node.name, **attrs})
    if step is not None:
        opt.iterations = int(step)
    notes = [f"{node.op} ({PREVIEW}) node {node.name!r}"]
    if c:
        notes.append(f"norm_coefficient {c:g} is a coupled L2 on the gradient: Keras L2({c / 2:g}) (c/2)")
    getattr(_PreviewSetup, node.op)(opt, attrs, rate, notes)
    return OptimizerFound(opt, params, [inputs[0], inputs[1], *state], "; ".join(notes))


class _PreviewSetup:
    """Per-op settings of the preview-training optimizers."""

    @staticmethod
    def Momentum(opt: Optimizer, attrs: dict, rate: float | None, notes: list[str]) -> None:
        alpha, beta = float(attrs.get("alpha", 0.0)), float(attrs.get("beta", 1.0))
        opt.momentum, opt.nesterov = alpha, attrs.get("mode") == "nesterov"
        if rate is not None:
            # V = alpha*V + beta*G; X -= R*V is Keras momentum alpha at lr R*beta.
            opt.learning_rate = LearningRate(rate * beta, rate * beta, config={"R": rate, "beta": beta})
            if beta != 1.0:
                notes.append(f"gradient scaled by beta {beta:g}: effective learning rate R*beta = {rate * beta:g}")

    @staticmethod
    def Adam(opt: Optimizer, attrs: dict, rate: float | None, notes: list[str]) -> None:
        opt.beta_1, opt.beta_2 = float(attrs.get("alpha", 0.9)), float(attrs.get("beta", 0.999))
        opt.epsilon = float(attrs.get("epsilon", 1e-6))
        if rate is not None:
            opt.learning_rate = LearningRate(rate, rate)
        post = float(attrs.get("norm_coefficient_post", 0.0) or 0.0)
        if not post:
            return
        text = f"norm_coefficient_post {post:g} decays X <- (1 - c_post)*X every step, not scaled by the learning rate"
        if rate:
            opt.weight_decay = post / rate
            text += f"; as Keras weight_decay c_post/lr = {post / rate:g} at lr {rate:g}"
        else:
            text += "; the learning rate is not a constant, so it is not converted to a Keras weight_decay"
        notes.append(text)

    @staticmethod
    def Adagrad(opt: Optimizer, attrs: dict, rate: float | None, notes: list[str]) -> None:
        opt.epsilon = float(attrs.get("epsilon", 1e-6))
        decay = float(attrs.get("decay_factor", 0.0) or 0.0)
        # r = R / (1 + T*decay_factor): a learning-rate time decay, like Keras 2's `decay`.
        opt.lr_decay = decay or None
        if rate is not None:
            opt.learning_rate = LearningRate(rate, rate)


def ort_optimizer(node: Node, index: GraphIndex) -> OptimizerFound | None:
    """onnxruntime-training's optimizer_model.onnx ops (com.microsoft)."""
    if node.domain != MS or node.op not in ORT_OPTIMIZERS:
        return None
    attrs = node.attrs()
    config = {"op": f"{MS}.{node.op}", "node": node.name, **attrs}
    rate = index.scalar(node.inputs[0]) if node.inputs else None
    if node.op == "SGDOptimizerV2":
        opt = Optimizer(class_name="SGD", config=config)
        note = "SGDOptimizerV2 (onnxruntime-training): plain SGD, no weight decay"
    else:
        decay = float(attrs.get("weight_decay", 0.0))
        mode = int(attrs.get("adam_mode", 0))
        # Both adam_modes apply w -= lr * weight_decay * w (PyTorch AdamW and
        # Hugging Face AdamW): Keras 3's decoupled weight_decay, to every
        # parameter in the sequence, biases and normalization included.
        opt = Optimizer(class_name="AdamW", weight_decay=decay, beta_1=float(attrs.get("alpha", 0.9)),
                        beta_2=float(attrs.get("beta", 0.999)), epsilon=float(attrs.get("epsilon", 1e-8)),
                        exclude_from_weight_decay=[], config=config)
        note = (f"AdamWOptimizer (onnxruntime-training) weight_decay {decay:g}, adam_mode {mode}: decoupled and "
                "multiplied by the learning rate, as Keras weight_decay; applied to every trainable parameter")
    if rate is not None:
        opt.learning_rate = LearningRate(rate, rate)
    return OptimizerFound(opt, [], node.inputs[:2], note)
