"""Penalties with Keras' exact definitions, per regularized tensor.

``keras/src/regularizers/regularizers.py``: L2 adds ``l2 * sum(w**2)`` (no
1/2), L1 adds ``l1 * sum(|w|)``, L1L2 both; ``OrthogonalRegularizer`` adds
``factor`` times the mean |cosine| between rows (or columns), so it is at
most ``factor``. ``model.fit`` adds the plain sum of all penalties to the
batch-mean data loss (``trainers/trainer.py::compute_loss``), and a layer
with ``trainable=False`` contributes none (``Layer._get_regularization_losses``
iterates trainable weights only).

>>> from reglint.model import Variable, Role, Initializer, Regularizer, Layer
>>> seed = Variable("kernel", Role.KERNEL, (2, 3, 10, 20), initializer=Initializer("glorot_uniform"),
...                 regularizer=Regularizer("l2", l2=0.01))
>>> p = tensor_penalty(Layer("conv", "conv", "Conv2D", variables=[seed]), seed)
>>> round(p.penalty_init, 3)
0.133
"""

from __future__ import annotations

from dataclasses import dataclass

from reglint.estimate.init_scale import expected_abs_cosine, expected_sum_abs, expected_sum_sq, init_rms
from reglint.model import Layer, Regularizer, Variable


@dataclass
class TensorPenalty:
    layer: Layer
    variable: Variable
    regularizer: Regularizer
    sum_sq_init: float | None  # expected sum(w^2) at a fresh initialisation
    sum_abs_init: float | None
    penalty_init: float | None  # expected penalty at initialisation
    penalty_saved: float | None  # penalty at the saved weights
    active: bool  # False when Keras adds nothing (frozen layer or variable)
    scale_invariant: bool = False  # the tensor feeds a normalization layer
    # A normalization layer's gamma/beta whose scale the next layers can take
    # over (every path reaches a free linear kernel or another normalization:
    # ``Analysis.norm_absorbed``), so its penalty can be shed without changing
    # the function (classic calibration: 22 of 24 gamma-L2 runs on
    # Dense-BN-ReLU blocks healthy up to a penalty 4,660x the loss). A gamma
    # feeding a residual Add, attention or an output is not absorbed.
    absorbed: bool = False
    # A bias or beta: the penalty pulls it to zero, the value such offsets
    # are initialised at, so reaching its minimum leaves an ordinary network
    # (an LSTM's unit forget bias of 1 included). Its size at initialisation
    # says nothing about harm (the false alarm of issue 15: L2 10 on an
    # LSTM's biases, penalty 140x the data loss, healthy training).
    offset: bool = False
    # Every path from the tensor's layer to the outputs passes a
    # normalization layer: its penalty limits capacity but cannot take the
    # prediction's scale to the trivial solution (RL001 warns on it, never
    # errs: 30 pre-norm transformer runs up to a ratio of 59, none collapsed).
    behind_norm: bool = False

    @property
    def counted(self) -> bool:
        """Whether RL001 counts this penalty as pulling the function toward
        the trivial solution."""
        return not (self.scale_invariant or self.absorbed or self.offset)

    @property
    def l1(self) -> float:
        return self.regularizer.l1 if self.regularizer.kind in ("l1", "l1l2") else 0.0

    @property
    def l2(self) -> float:
        return self.regularizer.l2 if self.regularizer.kind in ("l2", "l1l2") else 0.0

    @property
    def n(self) -> int:
        return self.variable.size

    @property
    def penalty(self) -> float | None:
        """The reference penalty: at initialisation where it can be computed
        (the lambda's design point), else at the saved weights."""
        return self.penalty_init if self.penalty_init is not None else self.penalty_saved

    @property
    def pull(self) -> float | None:
        """The penalty's gradient per unit of weight at its init scale,
        ``2*l2 + l1/sigma_init``: width-free, since a layer's data gradient
        per weight scales with its weights' size (RL001's error gate, RL007's
        chain error). An L2 alone needs no scale (review 54, 1: an ONNX file,
        whose initializers are not recorded, passed the gate an identical
        Keras file failed); an L1 part without an initializer scale: None."""
        if not self.l1:
            return 2 * self.l2
        sigma = init_rms(self.variable)
        return 2 * self.l2 + self.l1 / sigma if sigma else None


def tensor_penalty(layer: Layer, var: Variable) -> TensorPenalty:
    reg = var.regularizer
    assert reg is not None
    sum_sq, sum_abs = expected_sum_sq(var), expected_sum_abs(var)
    return TensorPenalty(
        layer=layer,
        variable=var,
        regularizer=reg,
        sum_sq_init=sum_sq,
        sum_abs_init=sum_abs,
        penalty_init=_penalty(reg, var, sum_sq, sum_abs, at_init=True),
        penalty_saved=_saved(reg, var),
        active=layer.trainable and var.trainable,
    )


def l1l2_value(reg: Regularizer, sum_sq: float | None, sum_abs: float | None) -> float | None:
    total = 0.0
    if reg.kind in ("l2", "l1l2") and reg.l2:
        if sum_sq is None:
            return None
        total += reg.l2 * sum_sq
    if reg.kind in ("l1", "l1l2") and reg.l1:
        if sum_abs is None:
            return None
        total += reg.l1 * sum_abs
    return total


def _penalty(reg: Regularizer, var: Variable, sum_sq, sum_abs, at_init: bool) -> float | None:
    if reg.kind in ("l1", "l2", "l1l2"):
        return l1l2_value(reg, sum_sq, sum_abs)
    if reg.kind == "orthogonal" and len(var.shape) == 2:
        rows, cols = var.shape
        by_rows = (reg.mode or "rows") == "rows"
        dim, count = (cols, rows) if by_rows else (rows, cols)
        if at_init and _orthogonal_init(var) and count <= dim:
            # Keras' Orthogonal initializer draws orthonormal rows (or
            # columns, whichever are fewer): no overlap to penalise (review
            # 40, 4: an LSTM's recurrent kernel, 5e-9 in Keras, was 0.04)
            return 0.0
        return reg.factor * expected_abs_cosine(dim)
    return None


def _orthogonal_init(var: Variable) -> bool:
    name = (var.initializer.name if var.initializer is not None else "") or ""
    return name.lower().replace("_", "") in ("orthogonal", "orthogonalinitializer")


def _saved(reg: Regularizer, var: Variable) -> float | None:
    stats = var.stats
    if stats is None or stats.nonfinite:
        return None
    if reg.kind in ("l1", "l2", "l1l2"):
        return l1l2_value(reg, stats.sum_sq, stats.sum_abs)
    if reg.kind == "orthogonal" and var.saved_abs_cosine is not None:
        return reg.factor * var.saved_abs_cosine
    return None
