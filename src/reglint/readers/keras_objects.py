"""Plain Keras configs in, description objects out: regularizers,
initializers, optimizers, learning-rate schedules and losses.

Every Keras generation spelled these differently; this module reads them all
without importing Keras:

- Keras 3 / tf.keras 2: ``{"class_name": "L2", "config": {"l2": 0.01}}``,
  optionally with ``module`` and ``registered_name``.
- Keras 1: ``{"name": "WeightRegularizer", "l1": 0.0, "l2": 0.01}`` and
  ``"lr"`` for the learning rate.
- Strings: ``"l2"`` (L2(0.01)), ``"l1"`` (L1(0.01)), ``"l1_l2"`` (tf.keras:
  0.01/0.01), ``"l1l2"`` (Keras 3: L1L2(0, 0), a no-op).

>>> parse_regularizer({"class_name": "L2", "config": {"l2": 0.01}}).l2
0.01
>>> parse_regularizer({"name": "WeightRegularizer", "l1": 0.0, "l2": 0.5}).kind
'l2'
>>> parse_regularizer("l1").l1
0.01
>>> parse_loss_name("MSE")
'mean_squared_error'
"""

from __future__ import annotations

import math
import re
from typing import Any, TypeGuard

from reglint.model import (
    Initializer,
    LearningRate,
    Loss,
    Optimizer,
    Regularizer,
)
from reglint.readers.keras_schedules import schedule_peak

# --------------------------------------------------------------------------
# names


def class_name_of(obj: Any) -> str | None:
    """The class name of a serialized object, across Keras generations."""
    if isinstance(obj, str):
        return obj
    if not isinstance(obj, dict):
        return None
    name = obj.get("class_name") or obj.get("name")
    if not isinstance(name, str):
        return None
    # tf.keras 2.11+ wrote "Custom>Adam" for legacy optimizers, and some
    # configs carry a package prefix ("acme>MyL2").
    return name


def is_tensor_ref(value: Any) -> TypeGuard[list]:
    """A Keras 1/2 tensor reference in a node: ``[layer name, node index,
    tensor index, (kwargs)]``.

    >>> is_tensor_ref(["conv", 0, 0, {"y": 3.0}]), is_tensor_ref([1.0, 2.0, 3.0])
    (True, False)
    """
    return isinstance(value, list) and len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int)


def bare_class_name(name: str) -> str:
    """``acme>MyL2`` -> ``MyL2``; ``keras.optimizers.legacy.Adam`` -> ``Adam``."""
    return re.split(r"[>.]", name)[-1]


def to_snake_case(name: str) -> str:
    """Keras' own ``naming.to_snake_case``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def inner_config(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        cfg = obj.get("config")
        if isinstance(cfg, dict):
            return cfg
        return obj  # Keras 1 put the fields next to "name"
    return {}


# --------------------------------------------------------------------------
# numbers


def as_float(value: Any) -> float | None:
    """A config value as a float, or None when it is not a number.

    JSON from Python may hold NaN and Infinity; they are returned as floats so
    a rule can flag them. Booleans are not numbers here.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):  # a serialized tensor / numpy scalar
        cfg = value.get("config")
        if isinstance(cfg, dict) and "value" in cfg:
            return as_float(cfg["value"])
    return None


def tidy(value: float) -> float:
    """Undo float32 storage noise: a saved L1(0.01) reads 0.009999999776."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.7g}")


# --------------------------------------------------------------------------
# regularizers

_STRING_REGULARIZERS = {
    "l2": ("l2", 0.0, 0.01),
    "l1": ("l1", 0.01, 0.0),
    "l1_l2": ("l1l2", 0.01, 0.01),  # tf.keras 2 meaning; Keras 3 rejects it
    "l1l2": ("l1l2", 0.0, 0.0),  # Keras 3: L1L2() with defaults, a no-op
}

_L_CLASSES = {
    "L1": "l1",
    "L2": "l2",
    "L1L2": "l1l2",
    "L1L2Regularizer": "l1l2",
    "WeightRegularizer": "l1l2",  # Keras 1
    "ActivityRegularizer": "l1l2",  # Keras 1
}


def parse_regularizer(obj: Any) -> Regularizer | None:
    """A serialized regularizer as a ``Regularizer``; None when absent."""
    if obj is None:
        return None
    if isinstance(obj, str):
        key = obj.lower()
        if key in _STRING_REGULARIZERS:
            kind, l1, l2 = _STRING_REGULARIZERS[key]
            return _normalise(Regularizer(kind=kind, l1=l1, l2=l2, class_name=obj, config={"identifier": obj}))
        if key == "orthogonal_regularizer":
            return Regularizer(kind="orthogonal", factor=0.01, mode="rows", class_name=obj)
        return Regularizer(kind="custom", class_name=obj, config={"identifier": obj})
    name = class_name_of(obj)
    if name is None:
        return Regularizer(kind="custom", class_name="?", config=_jsonable(obj),
                           invalid=["unreadable regularizer config"])
    cfg = inner_config(obj)
    bare = bare_class_name(name)
    module = obj.get("module") if isinstance(obj, dict) else None
    registered = obj.get("registered_name") if isinstance(obj, dict) else None
    is_builtin = not registered or registered == bare or ">" not in str(registered)
    if bare in _L_CLASSES and is_builtin and (module is None or "keras" in str(module)):
        return _parse_l1l2(bare, name, cfg)
    if bare == "OrthogonalRegularizer" and is_builtin:
        reg = Regularizer(kind="orthogonal", class_name=name, config=dict(cfg))
        _read_factor(reg, cfg, "factor", "factor", default=0.01)
        mode = cfg.get("mode", "rows")
        reg.mode = mode if isinstance(mode, str) else "rows"
        return reg
    return Regularizer(kind="custom", class_name=str(registered or name), config=_jsonable(cfg))


def _parse_l1l2(bare: str, name: str, cfg: dict[str, Any]) -> Regularizer:
    reg = Regularizer(kind=_L_CLASSES[bare], class_name=name, config=dict(cfg))
    if bare in ("L1", "L1L2", "L1L2Regularizer", "WeightRegularizer", "ActivityRegularizer"):
        _read_factor(reg, cfg, "l1", "l1", default=0.01 if bare == "L1" else 0.0)
    if bare in ("L2", "L1L2", "L1L2Regularizer", "WeightRegularizer", "ActivityRegularizer"):
        _read_factor(reg, cfg, "l2", "l2", default=0.01 if bare == "L2" else 0.0)
    return _normalise(reg)


def _read_factor(reg: Regularizer, cfg: dict, key: str, attr: str, default: float) -> None:
    if key not in cfg:
        setattr(reg, attr, default)
        return
    value = as_float(cfg[key])
    if value is None:
        reg.invalid.append(f"{key}={cfg[key]!r} is not a number")
        setattr(reg, attr, math.nan)
    else:
        setattr(reg, attr, tidy(value))


def _normalise(reg: Regularizer) -> Regularizer:
    """Name an L1L2 by what it really does, so rules see L2 as L2."""
    if reg.kind == "l1l2":
        if reg.l1 == 0.0 and reg.l2 != 0.0:
            reg.kind = "l2"
        elif reg.l2 == 0.0 and reg.l1 != 0.0:
            reg.kind = "l1"
    return reg


# --------------------------------------------------------------------------
# initializers

_INIT_ALIASES = {
    "glorotuniform": "glorot_uniform",
    "glorotnormal": "glorot_normal",
    "heuniform": "he_uniform",
    "henormal": "he_normal",
    "lecununiform": "lecun_uniform",
    "lecunnormal": "lecun_normal",
    "orthogonal": "orthogonal",
    "orthogonalinitializer": "orthogonal",
    "zeros": "zeros",
    "zero": "zeros",
    "ones": "ones",
    "one": "ones",
    "constant": "constant",
    "randomnormal": "random_normal",
    "normal": "random_normal",
    "randomuniform": "random_uniform",
    "uniform": "random_uniform",
    "truncatednormal": "truncated_normal",
    "variancescaling": "variance_scaling",
    "identity": "identity",
    "identityinitializer": "identity",
}


def parse_initializer(obj: Any) -> Initializer | None:
    if obj is None:
        return None
    if isinstance(obj, str):
        key = obj.lower().replace("_", "")
        return Initializer(name=_INIT_ALIASES.get(key, obj.lower()), config={})
    name = class_name_of(obj)
    if name is None:
        return None
    key = bare_class_name(name).lower().replace("_", "")
    cfg = inner_config(obj)
    canonical = _INIT_ALIASES.get(key)
    if canonical is None:
        return Initializer(name="custom:" + name, config=_jsonable(cfg))
    return Initializer(name=canonical, config=_jsonable(cfg))


# --------------------------------------------------------------------------
# optimizers

_OPTIMIZER_NAMES = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
    "adamax": "Adamax",
    "nadam": "Nadam",
    "ftrl": "Ftrl",
    "lion": "Lion",
    "lamb": "Lamb",
    "adafactor": "Adafactor",
    "muon": "Muon",
    "lossscaleoptimizer": "LossScaleOptimizer",
}


def parse_optimizer(obj: Any) -> Optimizer | None:
    """A saved optimizer (Keras 3 compile_config, tf.keras optimizer_config,
    Keras 1 flat dict or a bare string) as an ``Optimizer``."""
    if obj is None:
        return None
    if isinstance(obj, str):
        known = _OPTIMIZER_NAMES.get(obj.lower(), obj)
        return Optimizer(class_name=known, config={"identifier": obj}, learning_rate=_default_lr(known))
    name = class_name_of(obj)
    if name is None:
        return None
    cfg = inner_config(obj)
    bare = bare_class_name(name)
    # mixed precision wraps the real one (tf-keras saves its wrapper of a
    # non-legacy optimizer as LossScaleOptimizerV3)
    if bare.lower() in ("lossscaleoptimizer", "lossscaleoptimizerv3"):
        inner = cfg.get("inner_optimizer") or cfg.get("optimizer")
        parsed = parse_optimizer(inner)
        if parsed is not None:
            parsed.config["loss_scale_optimizer"] = True
            return parsed
    if bare == "MultiOptimizer":
        return _multi_optimizer(cfg)
    canonical = _OPTIMIZER_NAMES.get(bare.lower(), bare)
    opt = Optimizer(class_name=canonical, config=_jsonable(cfg))
    lr_obj = cfg.get("learning_rate", cfg.get("lr"))
    opt.learning_rate = parse_learning_rate(lr_obj) if lr_obj is not None else _default_lr(canonical)
    opt.momentum = as_float(cfg.get("momentum")) or 0.0
    if canonical == "RMSprop":
        # RMSprop's `momentum` is heavy-ball on the normalised step; `rho` is
        # its averaging constant, not momentum.
        opt.momentum = as_float(cfg.get("momentum")) or 0.0
    opt.nesterov = bool(cfg.get("nesterov", False))
    wd = cfg.get("weight_decay")
    opt.weight_decay = as_float(wd) if wd is not None else None
    if wd is not None and opt.weight_decay is None:
        opt.invalid["weight_decay"] = repr(wd)
    if canonical == "AdamW" and wd is None and "weight_decay" not in cfg:
        opt.weight_decay = 0.004  # AdamW's default, when a config omits it
    opt.beta_1 = as_float(cfg.get("beta_1"))
    opt.beta_2 = as_float(cfg.get("beta_2"))
    opt.epsilon = as_float(cfg.get("epsilon"))
    opt.lr_decay = as_float(cfg.get("decay")) if cfg.get("decay") else None
    gas = cfg.get("gradient_accumulation_steps")
    opt.gradient_accumulation_steps = int(gas) if isinstance(gas, int) and not isinstance(gas, bool) else None
    return opt


def multi_optimizer_entries(cfg: dict[str, Any]) -> list[tuple[str | None, Any]]:
    """A Keras 3 ``MultiOptimizer`` config's sub-optimizers as (pattern,
    serialized optimizer), in Keras' order (``MultiOptimizer.optimizers``):
    the ``OptimizerMap``'s entries, then its default (pattern None). Empty
    where the map is a function: the file does not say what it returns.

    >>> sgd, adam = {"class_name": "SGD", "config": {}}, {"class_name": "Adam", "config": {}}
    >>> multi_optimizer_entries({"optimizer_map": {"class_name": "OptimizerMap", "config": {
    ...     "default_optimizer": sgd, "optimizer_map": {"enc/.*": adam}}}})
    [('enc/.*', {'class_name': 'Adam', 'config': {}}), (None, {'class_name': 'SGD', 'config': {}})]
    """
    mapping = cfg.get("optimizer_map")
    if class_name_of(mapping) != "OptimizerMap":
        return []
    inner = inner_config(mapping)
    entries = inner.get("optimizer_map")
    out: list[tuple[str | None, Any]] = [(str(k), v) for k, v in entries.items()] if isinstance(entries, dict) else []
    if inner.get("default_optimizer") is not None:
        out.append((None, inner["default_optimizer"]))
    return out


def decay_shrink(opt: Optimizer) -> float:
    """The fraction of a weight an optimizer's decoupled ``weight_decay``
    takes per step at its peak rate (0 where unknown), to rank optimizers."""
    lr = opt.learning_rate
    rate = lr.peak if lr is not None and lr.peak is not None else (lr.initial if lr is not None else None)
    value = (rate or 0.0) * (opt.weight_decay or 0.0)
    return value if math.isfinite(value) else 0.0


def adopt_settings(top: Optimizer, sub: Optimizer) -> None:
    """``top`` (a MultiOptimizer) takes ``sub``'s settings as its top-level
    fields, and ``sub``'s class as ``lead_class``."""
    top.lead_class = sub.class_name
    top.learning_rate, top.momentum, top.nesterov = sub.learning_rate, sub.momentum, sub.nesterov
    top.weight_decay, top.lr_decay = sub.weight_decay, sub.lr_decay
    top.beta_1, top.beta_2, top.epsilon = sub.beta_1, sub.beta_2, sub.epsilon


def _multi_optimizer(cfg: dict[str, Any]) -> Optimizer:
    """A Keras 3 ``MultiOptimizer`` with the settings of the sub-optimizer
    whose decay shrinks weights fastest (the default where none decays);
    ``keras_param_groups`` maps each sub-optimizer to its variables."""
    opt = Optimizer(class_name="MultiOptimizer", config=_jsonable(cfg))
    subs = []
    for pattern, obj in multi_optimizer_entries(cfg):
        sub = parse_optimizer(obj)
        if sub is not None:
            subs.append(sub)
            where = f"'{pattern}'" if pattern is not None else "default"
            opt.invalid.update({f"{name} ({sub.class_name}, {where})": raw for name, raw in sub.invalid.items()})
    if subs:
        adopt_settings(opt, max(reversed(subs), key=decay_shrink))  # reversed: ties go to the default
    return opt


# Keras 3 defaults, used when a config names an optimizer by string.
_DEFAULT_LR = {"SGD": 0.01, "Adam": 0.001, "AdamW": 0.001, "RMSprop": 0.001, "Adagrad": 0.001,
               "Adadelta": 0.001, "Adamax": 0.001, "Nadam": 0.001, "Ftrl": 0.001, "Lion": 0.001}


def _default_lr(name: str) -> LearningRate | None:
    from reglint.model import Provenance

    if name in _DEFAULT_LR:
        return LearningRate(initial=_DEFAULT_LR[name], peak=_DEFAULT_LR[name], source=Provenance.DEFAULT)
    return None


def parse_learning_rate(obj: Any) -> LearningRate:
    """A float or a schedule config. ``initial`` is the value at step 0 and
    ``peak`` the largest value the schedule reaches, by the formulas of
    ``keras_schedules`` (a rising PolynomialDecay's ``end_learning_rate``,
    a CosineDecay's ``alpha > 1``); None where the schedule grows without
    bound (``keras_schedules.growth_note`` says so in the report).

    >>> parse_learning_rate({"class_name": "PolynomialDecay", "config": {"initial_learning_rate": 0.01,
    ...     "decay_steps": 1000, "end_learning_rate": 0.3, "power": 1.0, "cycle": False}}).peak
    0.3
    """
    value = as_float(obj)
    if value is not None:
        return LearningRate(initial=tidy(value), peak=tidy(value))
    name = class_name_of(obj)
    cfg = inner_config(obj)
    if name is None:
        return LearningRate(initial=None, schedule="unknown", config=_jsonable(obj))
    bare = bare_class_name(name)
    initial = as_float(cfg.get("initial_learning_rate"))
    if initial is None and isinstance(cfg.get("values"), list) and cfg["values"]:
        initial = as_float(cfg["values"][0])  # PiecewiseConstantDecay
    peak, _ = schedule_peak(bare, cfg)
    return LearningRate(initial=initial, peak=tidy(peak) if peak is not None else None, schedule=bare,
                        config=_jsonable(cfg))


# --------------------------------------------------------------------------
# losses

_LOSS_ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
    "k_l_divergence": "kl_divergence",
    "logcosh": "log_cosh",
    "cosine_proximity": "cosine_similarity",
    "huber_loss": "huber",
    "bce": "binary_crossentropy",
}


# The functions Keras 3 finds by name for ``{"module": "builtins",
# "class_name": "function", "config": NAME}`` (``serialization_lib``
# looks them up in keras.activations, keras.losses, keras.metrics ...):
# those of keras 3.15's activations, losses and metrics
# (tests/test_keras_readers.py checks the set against the installed Keras).
KERAS_BUILTIN_FUNCTIONS = frozenset({
    # activations
    "celu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu", "hard_swish",
    "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish", "relu", "relu6", "selu", "sigmoid",
    "silu", "soft_shrink", "softmax", "softplus", "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax",
    "squareplus", "swish", "tanh", "tanh_shrink", "threshold",
    # losses
    "binary_crossentropy", "binary_focal_crossentropy", "categorical_crossentropy", "categorical_focal_crossentropy",
    "categorical_generalized_cross_entropy", "categorical_hinge", "circle", "cosine_similarity", "ctc", "dice",
    "hinge", "huber", "kl_divergence", "log_cosh", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_error", "mean_squared_logarithmic_error", "poisson", "sparse_categorical_crossentropy",
    "squared_hinge", "tversky",
    # metrics
    "binary_accuracy", "categorical_accuracy", "concordance_correlation", "pearson_correlation",
    "sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy", "top_k_categorical_accuracy",
})


def plain_function_name(obj: Any) -> str | None:
    """The name of a plain function as Keras 3 serializes it
    (``compile(loss=keras.losses.mean_squared_error)``, or a user's own
    ``def my_loss``): ``{"class_name": "function", "config": NAME, ...}``,
    whose ``registered_name`` is the placeholder ``"function"``; else None.

    >>> plain_function_name({"module": "builtins", "class_name": "function", "config": "mean_squared_error",
    ...                      "registered_name": "function"})
    'mean_squared_error'
    """
    if isinstance(obj, dict) and obj.get("class_name") == "function" and isinstance(obj.get("config"), str):
        return obj["config"]
    return None


def parse_loss_name(name: str) -> str:
    """Canonical snake_case loss name for a string or class name: the one
    alias table reglint has (readers and ``profile`` both use it).

    >>> parse_loss_name("SparseCategoricalCrossentropy"), parse_loss_name("mse"), parse_loss_name("bce")
    ('sparse_categorical_crossentropy', 'mean_squared_error', 'binary_crossentropy')
    """
    bare = bare_class_name(name)
    snake = to_snake_case(bare) if any(c.isupper() for c in bare) else bare.lower()
    return _LOSS_ALIASES.get(snake, snake)


def parse_loss(obj: Any, *, weight: float = 1.0, output: str | None = None) -> Loss | None:
    if obj is None:
        return None
    if isinstance(obj, str):
        return Loss(name=parse_loss_name(obj), weight=weight, output=output, config=obj)
    name = class_name_of(obj)
    if name is None:
        return Loss(name=None, weight=weight, output=output, config=_jsonable(obj))
    cfg = inner_config(obj)
    if bare_class_name(name) == "LossFunctionWrapper" and isinstance(cfg.get("fn"), str):
        name = cfg["fn"]
    else:
        name = plain_function_name(obj) or name
    loss = Loss(name=parse_loss_name(name), weight=weight, output=output, config=_jsonable(obj))
    if "from_logits" in cfg:
        loss.from_logits = bool(cfg.get("from_logits"))
    loss.label_smoothing = as_float(cfg.get("label_smoothing")) or 0.0
    reduction = cfg.get("reduction")
    loss.reduction = reduction if isinstance(reduction, str) else None
    for key in _SCALE_PARAMS:
        value = cfg.get(key)
        if isinstance(value, bool):
            loss.params[key] = float(value)
        elif (number := as_float(value)) is not None:
            loss.params[key] = number
    return loss


# A loss's settings that change its value at chance (``Loss.params``).
_SCALE_PARAMS = ("delta", "alpha", "gamma", "apply_class_balancing")


def is_loss_map(loss_obj: Any) -> bool:
    """A ``loss`` dict keyed by output name (not one serialized loss)."""
    return isinstance(loss_obj, dict) and (class_name_of(loss_obj) is None or
                                           ("class_name" not in loss_obj and "name" not in loss_obj))


def _weight_entries(loss_weights: Any) -> list[Any]:
    """The entries of ``loss_weights``: list items, dict values, or the one
    scalar (a serialized number counts as a scalar)."""
    if isinstance(loss_weights, list):
        return loss_weights
    if isinstance(loss_weights, dict) and not ("class_name" in loss_weights and as_float(loss_weights) is not None):
        return list(loss_weights.values())
    return [] if loss_weights is None else [loss_weights]


def unusable_loss_weights(loss_weights: Any) -> tuple[list[str], list[str]]:
    """The ``loss_weights`` entries that are not numbers, and those that are
    numbers but not finite, repr'd. Keras saves whatever ``compile`` was
    given and its ``fit`` multiplies each output's loss by them: a string
    fails there, a NaN or infinity makes the loss NaN. None is Keras' own
    default (weight 1; Keras 3 and tf-keras both train it), not an error.

    >>> unusable_loss_weights(["accuracy", None]), unusable_loss_weights({"a": 1.0, "b": float("nan")})
    ((["'accuracy'"], []), ([], ['nan']))
    """
    not_numbers, not_finite = [], []
    for item in _weight_entries(loss_weights):
        value = as_float(item)
        if item is None:
            continue
        if value is None:
            not_numbers.append(_shown(item))
        elif not math.isfinite(value):
            not_finite.append(repr(item)[:80])
    return not_numbers, not_finite


def _shown(item: Any) -> str:
    """A loss-weights entry as a message names it: a serialized object
    (a metric passed by position) by its class, anything else repr'd."""
    if isinstance(item, dict) and isinstance(item.get("class_name"), str):
        return f"a {item['class_name']} object"
    return repr(item)[:80]


def keras3_unpaired_loss_weights(loss_obj: Any, loss_weights: Any) -> str | None:
    """Why Keras 3's ``fit`` cannot pair ``loss_weights`` with the losses
    (``CompileLoss.build``: unless both have the same structure, the number
    of weights must equal the number of losses; a dict of losses takes its
    weights by name), or None. Keras 2 applied one loss to every output and
    read a missing name as 1: the same file trains in tf-keras.

    >>> keras3_unpaired_loss_weights("mse", [1.0, 0.5])
    '2 weights for 1 loss'
    >>> keras3_unpaired_loss_weights({"a": "mse", "b": "mae"}, {"a": 2.0})
    '1 weight for 2 losses (no weight for b)'
    >>> keras3_unpaired_loss_weights(["mse", "mae"], {"b": 2.0, "a": 1.0}) is None
    True
    """
    if loss_obj is None or loss_weights is None:
        return None
    losses = len(loss_obj) if isinstance(loss_obj, list) or is_loss_map(loss_obj) else 1
    weights = len(_weight_entries(loss_weights))
    missing = sorted(map(str, set(loss_obj) - set(loss_weights))) \
        if is_loss_map(loss_obj) and isinstance(loss_weights, dict) else []
    if weights == losses and not missing:
        return None
    counts = f"{weights} weight{'s' if weights != 1 else ''} for {losses} loss{'es' if losses != 1 else ''}"
    return f"{counts} (no weight for {', '.join(missing)})" if missing else counts


def keras3_weights_in_loss_order(loss_obj: Any, loss_weights: Any) -> Any:
    """A dict of weights as Keras 3 pairs it with a loss that is not a dict:
    flattened in sorted-key order (``tree.flatten``), by position, whatever
    the names say (``{"main": 1, "aux": 0}`` with a loss list gives the first
    output 0). Anything else unchanged."""
    if isinstance(loss_weights, dict) and len(_weight_entries(loss_weights)) > 1 and not is_loss_map(loss_obj):
        return [loss_weights[key] for key in sorted(loss_weights)]
    if isinstance(loss_weights, dict) and len(loss_weights) == 1 and not is_loss_map(loss_obj):
        return list(loss_weights.values())  # one output: Keras 3 ignores the key
    return loss_weights


def _is_weight_map(loss_weights: Any) -> bool:
    """A ``loss_weights`` dict keyed by output name (not one serialized number)."""
    return isinstance(loss_weights, dict) and not ("class_name" in loss_weights and as_float(loss_weights) is not None)


def keras2_unknown_weight_names(loss_weights: Any, output_names: list[str]) -> list[str]:
    """The keys of a dict of weights that name no output. tf-keras maps the
    dict onto the outputs by name (``compile_utils.map_to_output_names``)
    and raises on any key left over, on a one-output model too ("Found
    unexpected losses or metrics that do not correspond to any Model
    output"); Keras 1 and 2.0-2.3 raised in ``compile`` ("Unknown entry in
    loss_weights dictionary").

    >>> keras2_unknown_weight_names({"out": 1.0, "nope": 0.0}, ["out"])
    ['nope']
    """
    if not _is_weight_map(loss_weights):
        return []
    return [str(key) for key in loss_weights if key not in output_names]


def keras2_unreached_outputs(loss_weights: Any, output_names: list[str]) -> list[str]:
    """The outputs past the end of a list of weights: tf-keras' loss
    (``LossesContainer.__call__``) zips the outputs with the weights, so
    such an output gets no loss at all, not weight 1.

    >>> keras2_unreached_outputs([1.0], ["main", "aux"]), keras2_unreached_outputs([1, 2, 3], ["main"])
    (['aux'], [])
    """
    return output_names[len(loss_weights):] if isinstance(loss_weights, list) else []


def keras2_weights_by_output(loss_weights: Any, output_names: list[str]) -> Any:
    """A list of weights as tf-keras pairs it: with the *outputs* by position
    (never with the losses: a dict of losses in another order takes the
    weight of its output), an output past the list's end weighted 0 (its
    loss is never computed), entries past the last output ignored; as a
    dict by output name. A dict or a scalar unchanged (tf-keras reads a
    dict by name and a scalar for every output, as ``parse_losses`` does).

    >>> keras2_weights_by_output([2.0], ["main", "aux"])
    {'main': 2.0, 'aux': 0.0}
    """
    if not isinstance(loss_weights, list):
        return loss_weights
    return {name: loss_weights[index] if index < len(loss_weights) else 0.0
            for index, name in enumerate(output_names)}


def parse_losses(loss_obj: Any, loss_weights: Any, output_names: list[str]) -> list[Loss]:
    """One ``Loss`` per output: a single loss applies to every output, a list
    or dict assigns them, and ``loss_weights`` scales each (a scalar scales
    every output, as in Keras 2 and 3)."""
    scalar = as_float(loss_weights) if not isinstance(loss_weights, list) else None

    def weight_for(index: int, name: str | None) -> float:
        # Keras saves whatever compile() was given: a non-numeric entry
        # (``loss_weights=["accuracy"]``, metrics passed by position) is
        # read as the default weight 1 rather than as a zero data loss;
        # None and a name the dict lacks are Keras' default 1.
        value = scalar
        if isinstance(loss_weights, list) and index < len(loss_weights):
            value = as_float(loss_weights[index])
        elif isinstance(loss_weights, dict) and name in loss_weights:
            value = as_float(loss_weights[name])
        return 1.0 if value is None else value

    if loss_obj is None:
        return []
    if is_loss_map(loss_obj):
        out = []
        for index, (name, item) in enumerate(loss_obj.items()):
            loss = parse_loss(item, weight=weight_for(index, name), output=name)
            if loss:
                out.append(loss)
        return out
    if isinstance(loss_obj, list):
        out = []
        for index, item in enumerate(loss_obj):
            name = output_names[index] if index < len(output_names) else None
            loss = parse_loss(item, weight=weight_for(index, name), output=name)
            if loss:
                out.append(loss)
        return out
    names: list[str | None] = [*output_names] if output_names else [None]
    losses = []
    for index, name in enumerate(names):
        loss = parse_loss(loss_obj, weight=weight_for(index, name), output=name)
        if loss:
            losses.append(loss)
    return losses


# --------------------------------------------------------------------------


def _jsonable(obj: Any, depth: int = 0) -> Any:
    """A copy safe to put in JSON output (bounded depth, plain types)."""
    if depth > 20:
        return "..."
    if isinstance(obj, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in obj.items() if k != "shared_object_id"}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)
