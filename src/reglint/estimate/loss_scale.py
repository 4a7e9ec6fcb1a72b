"""The typical scale of the data loss: what the penalty is compared against.

reglint uses the loss of a chance-level predictor, ``L_chance``: the value a
network collapsed to its trivial solution (kernels at zero) reaches, and the
value an initialised network starts near (CS231n, "Look for correct loss at
chance performance"; Karpathy 2019, "verify loss @ init"). Measured at
initialisation with Keras 3.15 (freshly built models on standardised inputs):

- categorical / sparse cross-entropy: ``ln C`` (2.49 measured for C=10
  against ln 10 = 2.30; the static default takes ln C);
- binary cross-entropy: ``ln 2``;
- mean squared error: the target variance (1 for standardised targets,
  ``--target-var`` otherwise); mean absolute error: ``sqrt(2/pi)`` times the
  target standard deviation (0.80);
- Huber (delta 1) on standardised targets: 0.34; log-cosh: 0.37;
- hinge, squared hinge, Poisson, cosine similarity: 1 (the loss's own range).

Several outputs add up with their ``loss_weights``.

>>> from reglint.model import Loss, Output
>>> round(chance_loss(Loss("sparse_categorical_crossentropy"), Output("out", 10, "softmax")), 3)
2.303
>>> _describe(Loss("categorical_crossentropy"), Output("out", 1, "sigmoid"), math.log(2), None, None)
'categorical_crossentropy over 1 output unit, taken as 2 classes: ln 2 = 0.693'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from reglint.model import Loss, Model, Output, Provenance

MAE_FACTOR = math.sqrt(2.0 / math.pi)
# E[huber_1(y)] and E[log cosh(y)] for y ~ N(0, 1), by numerical integration.
HUBER_STANDARD = 0.3353
LOGCOSH_STANDARD = 0.3700

_CLASS_LOSSES = {"categorical_crossentropy", "sparse_categorical_crossentropy", "categorical_focal_crossentropy",
                 "kl_divergence"}
_BINARY_LOSSES = {"binary_crossentropy", "binary_focal_crossentropy"}


@dataclass
class LossScale:
    value: float
    source: Provenance
    explanation: str
    parts: list[str] = field(default_factory=list)


def chance_loss(loss: Loss, output: Output | None, *, target_var: float = 1.0,
                classes: int | None = None) -> float | None:
    """L_chance for one output; None when the loss is unknown."""
    name = loss.name or ""
    units = classes or (output.units if output else None)
    if name in _CLASS_LOSSES:
        if units is None or units < 2:
            return None if units is None else math.log(2.0)
        return math.log(units)
    if name in _BINARY_LOSSES:
        return math.log(2.0)
    if name in ("mean_squared_error",):
        return target_var
    if name in ("mean_absolute_error",):
        return MAE_FACTOR * math.sqrt(target_var)
    if name == "huber":
        return HUBER_STANDARD * target_var
    if name == "log_cosh":
        return LOGCOSH_STANDARD * target_var
    if name in ("hinge", "squared_hinge", "categorical_hinge", "poisson", "cosine_similarity",
                "mean_squared_logarithmic_error"):
        return 1.0
    if name == "mean_absolute_percentage_error":
        return 100.0
    return None


def model_loss_scale(model: Model, *, override: float | None = None, target_var: float | None = None,
                     classes: int | None = None) -> LossScale:
    """L_chance for the whole model, with where it came from."""
    if override is not None:
        return LossScale(override, Provenance.USER, f"data-loss scale {override:g} given by the user")
    outputs = {o.layer: o for o in model.outputs}
    total, parts, unknown = 0.0, [], []
    for index, loss in enumerate(model.losses):
        output = _output_for(loss, index, model, outputs)
        value = chance_loss(loss, output, target_var=target_var or 1.0, classes=classes)
        if value is None:
            # A known cross-entropy whose output width the file does not
            # give (a subclassed model) needs the class count, not a scale.
            unknown.append(f"{loss.name} over an unknown number of classes"
                           if loss.name in _CLASS_LOSSES else f"unknown loss {loss.name or 'custom loss'}")
            continue
        total += loss.weight * value
        parts.append(_describe(loss, output, value, target_var, classes))
    if parts and not unknown and total > 0:
        source = Provenance.USER if (target_var is not None or classes is not None) else Provenance.INFERRED
        return LossScale(total, source, "; ".join(parts), parts)
    if not model.losses and classes is not None:
        value = math.log(classes) if classes >= 2 else math.log(2.0)
        return LossScale(value, Provenance.USER, f"cross-entropy over {classes} classes (--classes): ln {classes} = "
                                                 f"{value:.3g}")
    if not model.losses and target_var is not None:
        return LossScale(target_var, Provenance.USER,
                         f"squared error with target variance {target_var:g} (--target-var)")
    if not model.losses:
        why = "no compiled loss saved"
    elif unknown:
        why = ", ".join(unknown)
    else:  # every loss_weights entry 0: no data loss to compare against
        why = "the saved loss_weights sum to 0"
    hint = "--classes or --loss-scale" if any("classes" in u for u in unknown) else "--loss-scale"
    return LossScale(1.0, Provenance.DEFAULT, f"{why}: data-loss scale taken as 1 (set {hint})")


def _output_for(loss: Loss, index: int, model: Model, outputs: dict[str, Output]) -> Output | None:
    """The output a loss applies to: by the output's Keras name (a loss
    dict's key), by its layer, else by position."""
    if loss.output is not None:
        named = [output for output in model.outputs if output.name == loss.output]
        if named:
            return named[0]
        for output in model.outputs:
            if output.layer == loss.output or output.layer.split("/")[-1] == loss.output:
                return output
    if index < len(model.outputs):
        return model.outputs[index]
    return model.outputs[0] if model.outputs else None


def _describe(loss: Loss, output: Output | None, value: float, target_var: float | None,
              classes: int | None) -> str:
    name = loss.name
    weight = f"{loss.weight:g} x " if loss.weight != 1.0 else ""
    if name in _CLASS_LOSSES:
        c = classes or (output.units if output else None)
        if c is not None and c < 2:  # chance_loss takes one unit as two classes (a sigmoid read as softmax)
            return f"{weight}{name} over {c} output unit, taken as 2 classes: ln 2 = {value:.3g}"
        return f"{weight}{name}: ln {c} = {value:.3g}"
    if name in _BINARY_LOSSES:
        return f"{weight}{name}: ln 2 = {value:.3g}"
    if name in ("mean_squared_error", "mean_absolute_error", "huber", "log_cosh"):
        var = f"target variance {target_var:g}" if target_var is not None else "standardised targets"
        return f"{weight}{name}: {value:.3g} ({var})"
    return f"{weight}{name}: {value:.3g}"
