"""The framework-neutral description of a model: what every reader produces and
every rule, estimator and reporter reads.

Readers (one per file format) translate what a file holds into these plain
dataclasses; nothing downstream knows whether a number came from a `.keras`
zip, a legacy HDF5 file or an ONNX graph. Where a value did not come from the
file (a user option, a documented default), ``Provenance`` says so, and the
report repeats it.

>>> kernel = Variable(name="kernel", role=Role.KERNEL, shape=(3, 3, 10, 20),
...                   regularizer=Regularizer(kind="l2", l2=0.01))
>>> kernel.size
1800
>>> kernel.fans()
(90, 180)
>>> layer = Layer(name="conv", path="conv", class_name="Conv2D", variables=[kernel])
>>> layer.trainable_params, layer.non_trainable_params
(1800, 0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Role(str, Enum):
    """What a variable is for. Rules key on roles, never on variable names."""

    KERNEL = "kernel"
    RECURRENT_KERNEL = "recurrent_kernel"
    DEPTHWISE_KERNEL = "depthwise_kernel"
    POINTWISE_KERNEL = "pointwise_kernel"
    BIAS = "bias"
    EMBEDDINGS = "embeddings"
    GAMMA = "gamma"
    BETA = "beta"
    MOVING_MEAN = "moving_mean"
    MOVING_VARIANCE = "moving_variance"
    ALPHA = "alpha"  # PReLU slopes
    OTHER = "other"

    @property
    def is_kernel_like(self) -> bool:
        return self in (
            Role.KERNEL,
            Role.RECURRENT_KERNEL,
            Role.DEPTHWISE_KERNEL,
            Role.POINTWISE_KERNEL,
        )

    @property
    def is_statistic(self) -> bool:
        """Moving statistics: state, never trained, never regularized."""
        return self in (Role.MOVING_MEAN, Role.MOVING_VARIANCE)


class Provenance(str, Enum):
    """Where a value came from, so the report can say it."""

    FILE = "file"  # read from the model file
    USER = "user"  # a command-line option or the [tool.reglint] table
    DEFAULT = "default"  # reglint's documented default
    INFERRED = "inferred"  # derived from other values in the file


@dataclass
class Regularizer:
    """One penalty, in Keras' own convention.

    ``kind`` is one of ``l1``, ``l2``, ``l1l2``, ``orthogonal`` or ``custom``.
    ``l1``/``l2`` are the factors with Keras' definitions: L2 adds
    ``l2 * sum(w**2)`` (no 1/2), L1 adds ``l1 * sum(|w|)``.
    ``factor``/``mode`` belong to ``OrthogonalRegularizer``. ``config`` is the
    raw config exactly as the file held it.

    >>> Regularizer(kind="l1l2", l1=0.0, l2=1e-4).is_effective
    True
    >>> Regularizer(kind="l1l2").is_effective
    False
    """

    kind: str
    l1: float = 0.0
    l2: float = 0.0
    factor: float = 0.0
    mode: str | None = None
    class_name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    source: Provenance = Provenance.FILE
    # Values the reader could not turn into a number (a string, null, a dict).
    invalid: list[str] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        """Every factor a finite number >= 0 (what Keras' constructors accept);
        RL012 reports the others, and no rule estimates a penalty from them.

        >>> Regularizer(kind="l2", l2=float("inf")).is_valid, Regularizer(kind="l2", l2=0.01).is_valid
        (False, True)
        """
        values = (self.l1, self.l2, self.factor)
        return not self.invalid and all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in values)

    @property
    def is_effective(self) -> bool:
        """False for L1L2(0, 0) and friends: a regularizer that adds nothing."""
        if self.kind == "custom":
            return True
        if self.kind == "orthogonal":
            return self.factor != 0.0
        return self.l1 != 0.0 or self.l2 != 0.0

    def factors(self) -> dict[str, float]:
        """The non-zero numeric factors, for messages and reports."""
        out = {}
        if self.kind == "orthogonal":
            out["factor"] = self.factor
        else:
            if self.l1:
                out["l1"] = self.l1
            if self.l2:
                out["l2"] = self.l2
        return out


@dataclass
class Initializer:
    """An initializer config, normalised: ``name`` is Keras' snake_case
    identifier (``glorot_uniform``, ``he_normal``, ``orthogonal``, ``zeros``,
    ``ones``, ``constant``, ``random_normal``, ``variance_scaling`` ...)."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)
    # Elements set to 1 whatever ``name`` draws: an LSTM's forget-gate bias
    # (``unit_forget_bias``, Keras' default: ``units`` of its ``4*units``).
    ones: int = 0

    @property
    def label(self) -> str:
        """``name``, and the forget gate's ones when there are any.

        >>> Initializer("zeros", ones=16).label
        'zeros, 16 forget-gate ones'
        """
        return f"{self.name}, {self.ones} forget-gate ones" if self.ones else self.name


@dataclass
class WeightStats:
    """Statistics of a saved tensor, computed chunk by chunk from the file."""

    count: int
    sum_sq: float
    sum_abs: float
    max_abs: float
    nonfinite: int = 0  # NaN or infinite entries

    @property
    def rms(self) -> float:
        return math.sqrt(self.sum_sq / self.count) if self.count else 0.0

    @property
    def mean_abs(self) -> float:
        return self.sum_abs / self.count if self.count else 0.0


@dataclass
class Variable:
    """One weight tensor of a layer."""

    name: str
    role: Role
    shape: tuple[int, ...]
    trainable: bool = True
    regularizer: Regularizer | None = None
    initializer: Initializer | None = None
    stats: WeightStats | None = None
    # Under an OrthogonalRegularizer: the mean |cosine| between the saved
    # tensor's rows (mode "rows") or columns, which the penalty is lambda
    # times; None where not computed.
    saved_abs_cosine: float | None = None
    dtype: str = "float32"
    # Where the tensor lives in the file (HDF5 path, ONNX initializer name).
    location: str = ""
    # The axes Keras counts as input and output units when it draws this
    # tensor (Keras >= 3.15: an initializer's ``input_axes``/``output_axes``,
    # which EinsumDense fills from its equation); None: the rank rule.
    fan_axes: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    # The shape Keras draws this tensor at, where the file stores it in a
    # layout no choice of axes maps back (a TFLite depthwise kernel
    # [1, h, w, C*M] is Keras' [h, w, C, M]: fans h*w*C and h*w*M); None:
    # ``shape``.
    fan_shape: tuple[int, ...] | None = None

    @property
    def size(self) -> int:
        return math.prod(self.shape) if self.shape else 1

    def fans(self) -> tuple[int, int]:
        """(fan_in, fan_out) exactly as Keras' ``compute_fans``.

        With ``fan_axes``: the products of those axes' lengths. Otherwise,
        of ``fan_shape`` where given, else ``shape``: rank 1: both the
        length; rank 2: (rows, cols); higher ranks: the receptive field
        times the last two dimensions.

        >>> Variable("query/kernel", Role.KERNEL, (32, 2, 16), fan_axes=((0,), (1, 2))).fans()
        (32, 32)
        >>> Variable("depthwise_kernel", Role.DEPTHWISE_KERNEL, (1, 3, 3, 12), fan_shape=(3, 3, 4, 3)).fans()
        (36, 27)
        """
        shape = self.shape if self.fan_shape is None else self.fan_shape
        if self.fan_axes is not None:
            inputs, outputs = self.fan_axes
            return math.prod(shape[a] for a in inputs), math.prod(shape[a] for a in outputs)
        if len(shape) == 0:
            return 1, 1
        if len(shape) == 1:
            return shape[0], shape[0]
        if len(shape) == 2:
            return shape[0], shape[1]
        receptive = math.prod(shape[:-2])
        return shape[-2] * receptive, shape[-1] * receptive


@dataclass(frozen=True)
class TensorRef:
    """One tensor a layer (or a nested model) reads, as Keras records it:
    the producing layer's name in the same container, which call of it
    (``node``, Keras' node index) and which of that call's outputs
    (``tensor``, the position in the flattened outputs; None where the file
    does not say); ``call``: which call of the *reading* layer or model it
    is fed to (its position in ``inbound_nodes``). A nested model with
    several outputs is only crossed where ``tensor`` is known.

    >>> TensorRef("backbone", 0, 1).tensor
    1
    """

    name: str
    node: int = 0
    tensor: int | None = 0
    call: int = 0


# The class of a layer known only by its stored tensors (a weights-only file,
# a model.export() SavedModel): not recorded, which is not "custom".
UNRECORDED_CLASS = "(not recorded)"


@dataclass(frozen=True)
class CallShapes:
    """One run of a layer: the shapes of the tensors it reads (Keras' call
    order: a MultiHeadAttention's query, value, key) and of its (first)
    output, batch dimension first; None where not known."""

    inputs: tuple[tuple | None, ...]
    output: tuple | None


@dataclass
class Layer:
    """A layer (or an ONNX node group) and the variables it owns.

    ``path`` is unique in the model (``encoder/dense_1``); ``name`` is the
    layer's own name. ``inbound`` names the layers feeding this one and
    ``outbound`` those it feeds, where the file records the graph;
    ``inbound_tensors`` holds the same references with the tensor each
    reads, every call's in order (empty where the reader does not know:
    a Sequential's implicit chain, ONNX).
    """

    name: str
    path: str
    class_name: str
    trainable: bool = True
    variables: list[Variable] = field(default_factory=list)
    activity_regularizer: Regularizer | None = None
    custom: bool = False  # a class reglint does not know
    activation: str | None = None
    units: int | None = None  # output width where the config gives it
    inbound: list[str] = field(default_factory=list)
    outbound: list[str] = field(default_factory=list)
    # Where the reader groups ops into layers (ONNX), ``outbound`` holds only
    # the layers reached through scale-passing ops; ``downstream`` those
    # reached through parameter-free ops of any kind (an Add, a Softmax, a
    # Gelu), and ``feeds_output`` whether such a path reaches a graph output
    # without passing a layer. None where ``outbound`` already lists every
    # consumer (Keras' layer graph).
    downstream: list[str] | None = None
    feeds_output: bool = False
    inbound_tensors: list[TensorRef] = field(default_factory=list)
    # Count of times the layer is applied (shared layers are counted once).
    calls: int = 1
    config: dict[str, Any] = field(default_factory=dict)
    # Where Keras applies ``activity_regularizer`` when it is not (only) the
    # layer's own output: the sub-layers whose outputs it penalises
    # (MultiHeadAttention: query, key, value, attention_output). Empty: the
    # layer's own output, as for every other layer.
    activity_on: list[str] = field(default_factory=list)
    # A BatchNormalization that normalises with its moving statistics while
    # the model trains: Keras 3 and TensorFlow 2's tf.keras run a frozen one
    # (trainable=False) in inference mode, so it is a fixed per-channel affine
    # map, not a normalization: a kernel feeding it is not scale-invariant.
    fixed_statistics: bool = False
    # The shape of the layer's (first) output, batch dimension first, where
    # the saved config gives it (Keras: carried from the inputs' shapes):
    # what an activity regularizer sums over.
    output_shape: tuple | None = None
    input_shape: tuple | None = None  # of the (first) input, likewise
    # A layer that runs more than once in a forward pass: each run's shapes,
    # in the call graph's order (``engine.calls``: a nested model's calls
    # outermost), where the reader carried them; a shared encoder reads a
    # query of 16 tokens and a document of 128 (review 62, 1). Empty: one run,
    # or unknown.
    call_shapes: list[CallShapes] = field(default_factory=list)

    @property
    def trainable_params(self) -> int:
        return sum(v.size for v in self.variables if v.trainable)

    @property
    def non_trainable_params(self) -> int:
        return sum(v.size for v in self.variables if not v.trainable)

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    def regularized_variables(self) -> list[Variable]:
        return [v for v in self.variables if v.regularizer is not None]

    def regularizers(self) -> list[tuple[str, Regularizer]]:
        """(target, regularizer) for every variable penalty and the activity one."""
        out = [(v.name, v.regularizer) for v in self.variables if v.regularizer is not None]
        if self.activity_regularizer is not None:
            out.append(("activity", self.activity_regularizer))
        return out


@dataclass
class LearningRate:
    """A constant learning rate, or a schedule with its initial value."""

    initial: float | None
    # The largest value a schedule reaches (Keras: readers.keras_schedules'
    # formulas); None where it grows without bound (the rules then judge
    # ``initial``, a lower bound, and the reader notes it).
    peak: float | None = None
    schedule: str | None = None  # class name of the schedule, None if constant
    config: dict[str, Any] = field(default_factory=dict)
    source: Provenance = Provenance.FILE

    def length(self) -> int | None:
        """The step at which the schedule ends, for the kinds that end:
        ``CosineDecay`` (``warmup_steps + decay_steps``, the warm-up counted
        only with a ``warmup_target`` as Keras counts it; the rate then stays
        at ``alpha`` times its start) and ``PolynomialDecay`` without
        ``cycle`` (``decay_steps``; then ``end_learning_rate``). A schedule
        sized this way is sized to the training. None for constant rates
        and schedules that go on (exponential, inverse-time, piecewise,
        restarts) or a length that is not a positive whole number.

        >>> LearningRate(0.0, schedule="CosineDecay",
        ...              config={"decay_steps": 900, "warmup_steps": 100, "warmup_target": 0.1}).length()
        1000
        >>> LearningRate(0.1, schedule="CosineDecay", config={"decay_steps": 900, "warmup_steps": 100}).length()
        900
        >>> LearningRate(1e-3, schedule="PolynomialDecay", config={"decay_steps": 500, "cycle": True}).length()
        >>> LearningRate(1e-3, schedule="ExponentialDecay", config={"decay_steps": 500}).length()
        """
        if self.schedule not in ("CosineDecay", "PolynomialDecay") or self.config.get("cycle") is True:
            return None
        decay, warmup = self.config.get("decay_steps"), self.config.get("warmup_steps") or 0
        if self.config.get("warmup_target") is None:
            warmup = 0  # CosineDecay warms up only toward a warmup_target: without one it ignores warmup_steps
        whole = [v for v in (decay, warmup)
                 if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0]
        if len(whole) != 2 or not whole[0]:
            return None
        return int(whole[0]) + int(whole[1])


@dataclass
class ParamGroup:
    """One optimizer param group (PyTorch ``optimizer.param_groups[i]``): its
    own settings and the variables it updates, by ``Variable.location``.

    ``weight_decay`` and ``coupled_l2`` follow ``Optimizer``'s conventions:
    decoupled, lr-multiplied decay (AdamW's ``weight_decay`` as is), or a
    coupled L2 folded into the gradient as a Keras L2 factor (PyTorch
    SGD/Adam ``weight_decay`` wd adds ``wd*w`` to the gradient, which is
    Keras' ``L2(wd/2)``). ``hyperparameters`` holds the group's settings as
    saved (``weight_decay`` there is the framework's own number, ``lr`` the
    rate when saved); ``learning_rate`` is the group's peak (a scheduler's
    base rate where one ran).
    ``mapping`` says how the variables were matched to the group: ``exact``
    (one assignment fits), ``uncertain`` (several fit; the likeliest was
    taken) or ``unmapped`` (none fits: ``variables`` is empty).

    >>> ParamGroup(0, ["fc.weight"], coupled_l2=2.5e-4).decays
    True
    """

    index: int
    variables: list[str] = field(default_factory=list)
    learning_rate: float | None = None
    weight_decay: float | None = None
    coupled_l2: float | None = None
    momentum: float | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    mapping: str = "exact"
    size: int = 0  # parameters the group updates, as the optimizer counts them

    @property
    def decays(self) -> bool:
        """A decay is set and the group steps (at lr 0 nothing moves)."""
        return (bool(self.weight_decay) or bool(self.coupled_l2)) and self.learning_rate != 0


# Penalties an optimizer applies in its own update (Keras' Ftrl): neither a
# regularizer in the loss nor weight_decay.
OWN_PENALTIES = ("l1_regularization_strength", "l2_regularization_strength", "l2_shrinkage_regularization_strength")


@dataclass
class Optimizer:
    """The optimizer settings saved with the model (or given by the user).

    Where the optimizer keeps settings per parameter group (PyTorch),
    ``param_groups`` lists them and the top-level fields hold the group
    whose decay shrinks weights fastest."""

    class_name: str
    learning_rate: LearningRate | None = None
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float | None = None  # decoupled, lr-multiplied (Keras 3 / PyTorch AdamW)
    # Coupled L2 folded into the gradient (PyTorch SGD/Adam weight_decay,
    # ONNX norm_coefficient), expressed as a Keras L2 factor.
    coupled_l2: float | None = None
    beta_1: float | None = None
    beta_2: float | None = None
    epsilon: float | None = None
    # Legacy Keras 2 `decay`: learning-rate time decay, NOT weight decay.
    lr_decay: float | None = None
    # The step counter the file saved (Keras counts batches: under gradient
    # accumulation, Analysis.optimizer_steps_taken gives the updates).
    iterations: int | None = None
    gradient_accumulation_steps: int | None = None
    exclude_from_weight_decay: list[str] | None = None  # None: not recorded
    config: dict[str, Any] = field(default_factory=dict)
    # Settings the file held that are not numbers: name -> repr of the value.
    invalid: dict[str, str] = field(default_factory=dict)
    source: Provenance = Provenance.FILE
    param_groups: list[ParamGroup] = field(default_factory=list)
    # A Keras MultiOptimizer's: the class of the sub-optimizer whose settings
    # the top-level fields hold, which decides ``family``.
    lead_class: str | None = None
    # Where settings differ per group (PyTorch param groups, a MultiOptimizer):
    # the index of the group whose settings the top-level fields hold.
    lead_group: int | None = None
    # PyTorch: parameters no param group can update (no group's state holds
    # their shape), where the groups' members are otherwise a guess
    not_updated: list[str] | None = None

    def own_penalties(self) -> dict[str, float]:
        """The penalties the optimizer applies itself, outside the loss and
        outside ``weight_decay``: Ftrl's ``l1_regularization_strength``,
        ``l2_regularization_strength`` and ``l2_shrinkage_regularization_strength``
        (review 40, 3), where set and non-zero."""
        return {key: float(value) for key in OWN_PENALTIES
                if isinstance(value := self.config.get(key), (int, float)) and not isinstance(value, bool) and value}

    def ema_momentum(self) -> float | None:
        """Keras' ``use_ema``: the weights' exponential moving average's
        momentum (``ema_momentum``, 0.99 by default), whose average ``fit``
        leaves in the model; None without it.

        >>> Optimizer("Adam", config={"use_ema": True}).ema_momentum(), Optimizer("Adam").ema_momentum()
        (0.99, None)
        """
        if self.config.get("use_ema") is not True:
            return None
        value = self.config.get("ema_momentum", 0.99)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.99

    def group_of(self, location: str) -> ParamGroup | None:
        """The param group updating the variable at ``location``; None when
        the optimizer has no groups or the variable is in none."""
        for group in self.param_groups:
            if location in group.variables:
                return group
        return None

    def group_at(self, index: int | None) -> ParamGroup | None:
        """The param group numbered ``index`` (an analysis view's
        ``optimizer_group``); None for None or a number no group has."""
        return next((g for g in self.param_groups if g.index == index), None) if index is not None else None

    def decays(self, location: str) -> bool | None:
        """Whether the optimizer decays the variable at ``location``: from its
        param group where groups are recorded and mapped, else None (unknown)."""
        if not self.param_groups or any(g.mapping == "unmapped" for g in self.param_groups):
            return None
        group = self.group_of(location)
        return group.decays if group is not None else False

    @property
    def display_name(self) -> str:
        """The class as a message names it: ``AdamW (in MultiOptimizer)``
        where a MultiOptimizer's lead group sets the family."""
        if self.class_name == "MultiOptimizer" and self.lead_class:
            return f"{self.lead_class} (in MultiOptimizer)"
        return self.class_name

    @property
    def family(self) -> str:
        """``sgd``, ``adaptive`` (Adam-like, per-weight normalised) or ``other``
        (a MultiOptimizer: its ``lead_class``'s)."""
        name = (self.lead_class if self.class_name == "MultiOptimizer" and self.lead_class else self.class_name).lower()
        if name in ("sgd", "momentum", "sgdw"):
            return "sgd"
        if name in (
            "adam", "adamw", "nadam", "adamax", "rmsprop", "adagrad", "adadelta",
            "lion", "lamb", "adafactor", "amsgrad", "radam", "adamwoptimizer",
        ):
            return "adaptive"
        return "other"


@dataclass
class Loss:
    """The compiled data loss of one output."""

    name: str | None  # canonical snake_case: categorical_crossentropy, mean_squared_error ...
    from_logits: bool | None = None
    label_smoothing: float = 0.0
    reduction: str | None = None
    weight: float = 1.0  # loss_weights entry for this output
    output: str | None = None  # the output layer it applies to
    config: Any = None  # raw, as saved
    source: Provenance = Provenance.FILE
    # the loss's numeric settings that change its scale, as saved (Huber's
    # delta, the focal losses' alpha and gamma, apply_class_balancing)
    params: dict[str, float] = field(default_factory=dict)


@dataclass
class Output:
    """A model output: the layer producing it, its width and activation;
    ``name``: what a loss dict is keyed by: the output's key where the
    outputs are a dict, else the name Keras gives it (the top-level layer
    or nested model producing it; tf-keras makes repeats unique with _1,
    _2: a nested model's two outputs are "bb", "bb_1"). None where the
    format has none."""

    layer: str
    units: int | None = None
    activation: str | None = None
    name: str | None = None
    # the reference the model returns in its top container (Keras'
    # ``output_layers`` entry: name, node, tensor), which says which call of a
    # shared layer or nested model it is (``engine.calls``); None where the
    # format has none (review 55: a shared layer was an output on every call)
    ref: TensorRef | None = field(default=None, compare=False)  # where it is, not what it is


class ProblemKind(str, Enum):
    """What kind of problem a reader found. Rules select problems by kind,
    never by the wording of the message."""

    INVALID_REGULARIZER = "invalid_regularizer"  # a lambda that is not a number (RL012)
    INVALID_OPTIMIZER = "invalid_optimizer"  # an optimizer value that is not a number (RL012)
    WEIGHTS_MISMATCH = "weights_mismatch"  # stored tensors disagree with the config (RL019)
    MISSING_WEIGHTS = "missing_weights"  # the config's layer has no stored tensors (RL019)
    EXTRA_WEIGHTS = "extra_weights"  # stored tensors no layer of the config owns (RL019)
    UNREADABLE = "unreadable"  # values or a config part that could not be read (RL019)
    INACTIVE_REGULARIZER = "inactive_regularizer"  # a configured penalty Keras never adds (RL005)
    INVALID_LOSS_WEIGHT = "invalid_loss_weight"  # loss_weights the file's Keras cannot train on (RL026)
    DROPPED_LOSS = "dropped_loss"  # an output tf-keras gives no loss: the list of loss_weights ends first (RL026)
    UNKNOWN_LOSS_OUTPUT = "unknown_loss_output"  # a dict of losses names no output: fit raises (RL027)


@dataclass(frozen=True)
class Problem:
    """One problem a reader found, as data.

    ``layer`` is the layer path ("" for the whole model); ``target`` the
    variable or setting (``kernel``, ``weight_decay``); ``expected`` and
    ``stored`` the config's and the file's shapes where the problem is a
    disagreement; ``blocks_load`` is True where Keras would refuse to load.

    >>> Problem(ProblemKind.WEIGHTS_MISMATCH, "dense", "kernel shape (7, 9) where the config implies (4, 3)",
    ...         target="kernel", expected=(4, 3), stored=(7, 9), blocks_load=True).blocks_load
    True
    """

    kind: ProblemKind
    layer: str
    message: str
    target: str | None = None
    expected: tuple[int, ...] | None = None
    stored: tuple[int, ...] | None = None
    blocks_load: bool = False
    value: str | None = None  # the offending raw value, repr'd, where there is one
    reason: str | None = None  # a known cause with a remedy of its own (the rule owns the remedy)


@dataclass
class Container:
    """A model nested in another (a Functional or Sequential used as a
    layer): where it sits, what feeds it in its parent, and the names of
    its own input and output layers, so the layer graph can cross its
    boundary (``engine.graph.outbound_map``). ``inbound_tensors`` and
    ``output_tensors`` are ``inbound`` and ``outputs`` with the tensor each
    stands for: the tensors fed to it, every call's in order, and its
    outputs in the order a consumer's tensor index counts them (an output
    can be a nested model's own output, or a layer listed twice). Empty
    where the file does not say (a Sequential's outputs)."""

    path: str
    name: str = ""  # its own name (may hold "/"); the path's last part when empty
    inbound: list[str] = field(default_factory=list)  # names in the parent container
    inputs: list[str] = field(default_factory=list)  # names inside it
    outputs: list[str] = field(default_factory=list)
    inbound_tensors: list[TensorRef] = field(default_factory=list)  # in the parent container
    output_tensors: list[TensorRef] = field(default_factory=list)  # inside it
    calls: int = 1  # times its parent calls it (a tower shared by a siamese network's inputs)
    # The node index an output list gives this model's first call where the
    # writer is known (Keras 3: 1 for a Functional, whose node 0 is its own,
    # 0 for a Sequential: functional.py, node_reindexing_map); None: unknown.
    outputs_count_from: int | None = None

    def __post_init__(self) -> None:
        self.name = self.name or self.path.rsplit("/", 1)[-1]


@dataclass
class Model:
    """What reglint knows about one model file."""

    path: str
    format: str  # keras_v3, keras_h5, savedmodel, onnx
    layers: list[Layer] = field(default_factory=list)
    containers: list[Container] = field(default_factory=list)  # nested models, for the graph
    optimizer: Optimizer | None = None
    losses: list[Loss] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    framework: str = "keras"  # keras, tf.keras, onnx
    framework_version: str | None = None
    backend: str | None = None
    name: str | None = None
    # What the reader could not interpret, in words, for the report.
    notes: list[str] = field(default_factory=list)
    # Problems found while reading, as typed records (see ``Problem``).
    problems: list[Problem] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def trainable_params(self) -> int:
        return sum(layer.trainable_params for layer in self.layers)

    @property
    def non_trainable_params(self) -> int:
        return sum(layer.non_trainable_params for layer in self.layers)

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    def calls_of(self, layer: Layer) -> int:
        """Times the layer runs in one forward pass: its own calls times those
        of every nested model around it (a Dense inside a tower the model
        calls on three inputs runs three times: review 43, 4)."""
        calls = max(1, layer.calls)
        for container in self.containers:
            if layer.path.startswith(container.path + "/"):
                calls *= max(1, container.calls)
        return calls

    def variables(self):
        """Every (layer, variable) pair, in model order."""
        for layer in self.layers:
            for var in layer.variables:
                yield layer, var

    def problems_of(self, *kinds: ProblemKind) -> list[Problem]:
        return [p for p in self.problems if p.kind in kinds]

    def layer(self, path: str) -> Layer | None:
        for layer in self.layers:
            if layer.path == path or layer.name == path:
                return layer
        return None

    @property
    def has_regularization(self) -> bool:
        return any(v.regularizer for _, v in self.variables()) or any(
            layer.activity_regularizer for layer in self.layers
        )
