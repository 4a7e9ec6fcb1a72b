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
  target standard deviation (0.80). An output squashed into a bounded range
  can only fit targets inside it, whose variance is at most the range's
  half-width squared: 0.25 behind a sigmoid (a Bernoulli(1/2) target's; a
  regression onto [0, 1] has less: 0.074 on review 46's data, 1/12 for a
  uniform target), ``(1 - 1/C)/C`` per unit behind a softmax of ``C``
  (one-hot targets'); MAE's ``E|y - median|`` is then at most the
  half-width. Taking the bound, not a typical value, keeps the penalty's
  share a lower estimate (review 46 found 1 taken for 0.074);
- Huber: ``E[huber_delta(y)]`` for ``y ~ N(0, target variance)``, in closed
  form (0.4247 for delta 1 on standardised targets; Keras' ``Huber()`` on 2M
  draws: 0.4245); log-cosh: ``E[log cosh y]`` by quadrature (0.3746
  standardised, Keras 0.3754; 0.3700 was taken before). Both grow like
  ``|y|``, not ``y^2``, with the targets' scale (7.49 and 7.32 at variance
  100, as Keras computes them);
- focal cross-entropy (Lin et al. 2017) at the uniform prediction: the
  cross-entropy times ``(1 - 1/C)^gamma`` and, for the categorical one,
  ``alpha`` (``0.25 * 0.9^2 * ln 10 = 0.466``, Keras' value); the binary one
  ``0.5^gamma * ln 2`` (0.173), halved by ``apply_class_balancing`` on
  balanced labels (``alpha`` on the positives, ``1 - alpha`` on the others);
- hinge, squared hinge, Poisson, cosine similarity: 1 (the loss's own range).

A loss compiled with ``reduction="sum"`` adds up its batch's losses instead
of averaging them: its scale is the batch size times the per-sample one
(``--batch-size``, default 32; the penalty is added once per step).
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

_CLASS_LOSSES = {"categorical_crossentropy", "sparse_categorical_crossentropy", "categorical_focal_crossentropy",
                 "kl_divergence"}
_BINARY_LOSSES = {"binary_crossentropy", "binary_focal_crossentropy"}


@dataclass
class LossScale:
    value: float
    source: Provenance
    explanation: str
    parts: list[str] = field(default_factory=list)


def huber_chance(delta: float, target_var: float) -> float:
    """``E[huber_delta(y)]``, ``y ~ N(0, target_var)``: ``y^2/2`` inside
    ``delta``, ``delta*|y| - delta^2/2`` outside (Keras' ``Huber``).

    >>> round(huber_chance(1.0, 1.0), 4), round(huber_chance(1.0, 100.0), 2)
    (0.4247, 7.49)
    """
    sigma = math.sqrt(target_var)
    if sigma == 0:
        return 0.0
    a = delta / sigma
    density = math.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)
    inside = 0.5 * target_var * (math.erf(a / math.sqrt(2.0)) - 2.0 * a * density)
    tail = 0.5 * math.erfc(a / math.sqrt(2.0))  # P(y > delta)
    return inside + delta * sigma * 2.0 * density - delta * delta * tail


def log_cosh_chance(target_var: float) -> float:
    """``E[log cosh y]``, ``y ~ N(0, target_var)``, by the trapezoid rule
    on a fine grid (the integrand is smooth and grows like ``|y|``).

    >>> round(log_cosh_chance(1.0), 4), round(log_cosh_chance(100.0), 2)  # Keras: 0.3754, 7.30
    (0.3746, 7.32)
    """
    import numpy as np

    z = np.linspace(-12.0, 12.0, 24001)
    y = math.sqrt(target_var) * z
    log_cosh = np.abs(y) + np.log1p(np.exp(-2.0 * np.abs(y))) - math.log(2.0)
    density = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return float(np.sum(log_cosh * density) * (z[1] - z[0]))


# Output activations that bound what the network can fit: (low, high) per unit.
BOUNDED_OUTPUTS = {"sigmoid": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0),
                   "tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0), "hard_tanh": (-1.0, 1.0)}
_TARGET_LOSSES = ("mean_squared_error", "mean_absolute_error", "huber", "log_cosh")


def bounded_target_var(output: Output | None) -> float | None:
    """The largest target variance an output's activation can fit, per
    unit; None for an unbounded (or unknown) one.

    >>> from reglint.model import Output
    >>> bounded_target_var(Output("out", 1, "sigmoid")), bounded_target_var(Output("out", 10, "softmax"))
    (0.25, 0.09)
    >>> bounded_target_var(Output("out", 1, "linear")) is None
    True
    """
    activation = output.activation if output is not None else None
    if activation == "softmax":
        units = output.units if output is not None else None
        return (1.0 - 1.0 / units) / units if units and units >= 2 else None
    bounds = BOUNDED_OUTPUTS.get(activation or "")
    return ((bounds[1] - bounds[0]) / 2.0) ** 2 if bounds else None


def chance_loss(loss: Loss, output: Output | None, *, target_var: float | None = None,
                classes: int | None = None) -> float | None:
    """L_chance for one output, per sample; None when the loss is unknown.
    ``target_var`` None: standardised targets (1), or the bound of a
    squashing output activation where that is smaller."""
    name = loss.name or ""
    units = classes or (output.units if output else None)
    bound = bounded_target_var(output) if target_var is None and name in _TARGET_LOSSES else None
    if bound is not None and bound < 1.0:
        target_var = bound
        if name == "mean_absolute_error":
            return math.sqrt(bound)  # E|y - median| <= the half-width
    target_var = 1.0 if target_var is None else target_var
    if name in _CLASS_LOSSES:
        if units is None or units < 2:
            return None if units is None else math.log(2.0) * _focal_factor(loss, 2)
        return math.log(units) * _focal_factor(loss, units)
    if name in _BINARY_LOSSES:
        return math.log(2.0) * _focal_factor(loss, 2)
    if name in ("mean_squared_error",):
        return target_var
    if name in ("mean_absolute_error",):
        return MAE_FACTOR * math.sqrt(target_var)
    if name == "huber":
        return huber_chance(loss.params.get("delta", 1.0), target_var)
    if name == "log_cosh":
        return log_cosh_chance(target_var)
    if name in ("hinge", "squared_hinge", "categorical_hinge", "poisson", "cosine_similarity",
                "mean_squared_logarithmic_error"):
        return 1.0
    if name == "mean_absolute_percentage_error":
        return 100.0
    return None


def _focal_factor(loss: Loss, classes: int) -> float:
    """What a focal loss (Keras' defaults: gamma 2, alpha 0.25) multiplies
    the cross-entropy by at the uniform prediction ``p = 1/C``:
    ``alpha*(1-p)^gamma`` (categorical); ``(1-p)^gamma``, times the mean
    class weight 1/2 with ``apply_class_balancing`` (binary). 1 for
    another loss.

    >>> from reglint.model import Loss
    >>> round(_focal_factor(Loss("categorical_focal_crossentropy"), 10), 4)
    0.2025
    >>> _focal_factor(Loss("binary_focal_crossentropy"), 2), _focal_factor(Loss("binary_crossentropy"), 2)
    (0.25, 1.0)
    """
    if loss.name not in ("categorical_focal_crossentropy", "binary_focal_crossentropy"):
        return 1.0
    gamma = loss.params.get("gamma", 2.0)
    factor = (1.0 - 1.0 / classes) ** gamma
    if loss.name == "categorical_focal_crossentropy":
        return loss.params.get("alpha", 0.25) * factor
    return 0.5 * factor if loss.params.get("apply_class_balancing") else factor


def model_loss_scale(model: Model, *, override: float | None = None, target_var: float | None = None,
                     classes: int | None = None, batch_size: int = 32) -> LossScale:
    """L_chance for the whole model, with where it came from."""
    if override is not None:
        return LossScale(override, Provenance.USER, f"data-loss scale {override:g} given by the user")
    outputs = {o.layer: o for o in model.outputs}
    total, parts, unknown = 0.0, [], []
    for index, loss in enumerate(model.losses):
        output = _output_for(loss, index, model, outputs)
        value = chance_loss(loss, output, target_var=target_var, classes=classes)
        if value is None:
            # A known cross-entropy whose output width the file does not
            # give (a subclassed model) needs the class count, not a scale.
            unknown.append(f"{loss.name} over an unknown number of classes"
                           if loss.name in _CLASS_LOSSES else f"unknown loss {loss.name or 'custom loss'}")
            continue
        described = _describe(loss, output, value, target_var, classes)
        if loss.reduction == "sum":  # the batch's losses summed, not averaged: over time steps and positions too
            positions = _positions(model, output)
            value *= batch_size * (positions or 1)
            described += (f", times the batch size {batch_size}"
                          + (f" and the {positions:,} positions of each output" if positions and positions > 1
                             else " (and by each sequence's length, which the file leaves open: set --loss-scale)"
                             if positions is None else "")
                          + " (reduction='sum')")
        total += loss.weight * value
        parts.append(described)
    if parts and not unknown and total > 0:
        # the user's --target-var / --classes, where a loss took them (review 47: --classes on a squared error
        # changed the label, not the value)
        names = {loss.name for loss in model.losses}
        used = (target_var is not None and bool(names & set(_TARGET_LOSSES))) or (
            classes is not None and bool(names & _CLASS_LOSSES))
        source = Provenance.USER if used else Provenance.INFERRED
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


def _focal_text(loss: Loss, classes: int) -> str:
    """`` x 0.203 (focal: alpha 0.25, gamma 2)``, for a focal loss."""
    factor = _focal_factor(loss, classes)
    if factor == 1.0:
        return ""
    # alpha weighs the binary loss only with apply_class_balancing
    keys = ("alpha", "gamma") if loss.name == "categorical_focal_crossentropy" or loss.params.get(
        "apply_class_balancing") else ("gamma",)
    settings = [f"{key} {loss.params[key]:g}" for key in keys if key in loss.params]
    return f" x {factor:.3g} (focal at the uniform prediction{': ' + ', '.join(settings) if settings else ''})"


def _positions(model: Model, output: Output | None) -> int | None:
    """The per-sample losses an output's loss adds up under
    ``reduction="sum"``: its shape between the batch and the last axis
    (time steps, pixels), which a loss averages over only with the default
    reduction (review 32: 385 where 32 was taken for 12 steps); None where a
    dimension is left open."""
    layer = model.layer(output.layer) if output is not None else None
    shape = layer.output_shape if layer is not None else None
    if not shape or len(shape) < 3:
        return 1
    if not all(isinstance(d, int) and d > 0 for d in shape[1:-1]):
        return None  # a variable-length sequence (review 33, D12): its length is not in the file
    return math.prod(shape[1:-1])


def data_gradient_scale(model: Model, *, adaptive: bool, target_var: float | None = None) -> float:
    """The size of the data gradient a penalty's pull is weighed against
    (RL001's and RL007's pull gates), relative to cross-entropy's
    (``p - y``), under an adaptive optimizer where every output's loss is
    Keras' mean squared error (else 1; under SGD the per-step shrink decides
    as well, and the gate stays: ``bench/regression_probe.py``, 4 of 6 MSE
    MLPs collapsed at L2 0.3 under SGD momentum):

    - on unbounded (linear) outputs, ``2*sqrt(target variance)``, never
      under 1 (its gradient ``2*(p - y)``; 2 on standardised targets,
      ``--target-var`` where given). ``bench/regression_probe.py``: MSE MLPs
      at L2 0.3, a pull of 0.6, stayed off chance in 12 of 12 runs under
      Adam and RMSprop and collapsed from L2 1 in 24 of 24;
    - behind a sigmoid or softmax, ``2*v`` with ``v`` the largest variance
      the output can fit per unit (0.25, ``(C-1)/C^2``): the gradient on a
      logit is ``2*(p - y)*p*(1 - p)``, and ``p*(1 - p)`` at the targets'
      mean ``m`` is ``m*(1 - m)``, at most that bound; ``--target-var`` is
      not used (it equals ``m*(1 - m)`` for 0/1 targets only: review 55's
      sigmoid regressor, targets of variance 0.0105 around 0.5, trained at
      an L2 the gate at ``2*0.0105`` called an error).
      ``bench/bounded_mse_probe.py`` (32 runs, Adam and RMSprop): a
      digits autoencoder (pixel variance 0.073) collapsed at every L2 from
      0.01, a 10-class softmax-MSE classifier too, breast cancer's sigmoid
      from 0.1 (RMSprop; Adam lost a third of its margin), where the
      cross-entropy gate (a pull of 0.4: L2 0.2) erred only at 0.3.

    >>> from reglint.model import Model, Output
    >>> linear = [Output("out", 1, "linear")]
    >>> regressor = Model("m.keras", "keras_v3", losses=[Loss("mean_squared_error")], outputs=linear)
    >>> data_gradient_scale(regressor, adaptive=True), data_gradient_scale(regressor, adaptive=False)
    (2.0, 1.0)
    >>> data_gradient_scale(regressor, adaptive=True, target_var=0.01)
    1.0
    >>> softmax = Model("m.keras", "keras_v3", losses=[Loss("mean_squared_error")],
    ...                 outputs=[Output("out", 10, "softmax")])
    >>> round(data_gradient_scale(softmax, adaptive=True), 3)
    0.18
    >>> sigmoid = Model("m.keras", "keras_v3", losses=[Loss("mean_squared_error")],
    ...                 outputs=[Output("out", 1, "sigmoid")])
    >>> data_gradient_scale(sigmoid, adaptive=True, target_var=0.0105)
    0.5
    """
    if not adaptive or not model.losses:
        return 1.0
    linear, bounded = True, []
    for index, loss in enumerate(model.losses):
        output = _output_for(loss, index, model, {o.layer: o for o in model.outputs})
        if loss.name != "mean_squared_error" or output is None:
            return 1.0
        if (output.activation or "linear") != "linear":
            linear = False
            var = bounded_target_var(output)
            if var is None or output.activation not in ("sigmoid", "softmax"):
                return 1.0
            bounded.append(2.0 * var)
    if linear:
        return max(1.0, 2.0 * math.sqrt(target_var or 1.0))
    return min(1.0, max(bounded)) if len(bounded) == len(model.losses) else 1.0


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
            return f"{weight}{name} over {c} output unit, taken as 2 classes: ln 2{_focal_text(loss, 2)} = {value:.3g}"
        return f"{weight}{name}: ln {c}{_focal_text(loss, c or 2)} = {value:.3g}"
    if name in _BINARY_LOSSES:
        return f"{weight}{name}: ln 2{_focal_text(loss, 2)} = {value:.3g}"
    if name in _TARGET_LOSSES:
        bound = bounded_target_var(output) if target_var is None else None
        activation = output.activation if output is not None else None
        if bound is not None and bound < 1.0:  # no parentheses: RL001 quotes this inside its own
            per_unit = " per unit" if activation == "softmax" else ""
            return (f"{weight}{name}: {value:.3g}, the largest variance{per_unit} of targets inside a {activation} "
                    f"output's range; --target-var sets yours")
        if target_var is None:  # an assumption: say so, and how to give the real one (review 61, 3)
            return f"{weight}{name}: {value:.3g}, taken for standardised targets; --target-var sets yours"
        return f"{weight}{name}: {value:.3g} (target variance {target_var:g})"
    return f"{weight}{name}: {value:.3g}"
