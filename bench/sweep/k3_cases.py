"""Keras 3 models for the robustness sweep: what users build, compile and save.

Each case returns ``(model, train)``; ``train`` is ``(x, y)`` for one step of
``fit`` or ``None``. Formats: ``keras`` (``model.save("x.keras")``), ``h5``
(legacy HDF5), ``weights`` (``save_weights("x.weights.h5")``), ``export``
(``model.export()``, a TF SavedModel). Custom objects are registered under
the package ``sweep``.
"""

from __future__ import annotations

import keras
from keras import layers as L
from keras import ops
from keras import regularizers as R

from .common import Registry, cls_data, onehot, rng

REG = Registry()
case = REG.case
OPT = keras.optimizers
S = keras.optimizers.schedules
LS = keras.losses
BASIC = ("keras", "h5")
ALL = ("keras", "h5", "weights", "json")


# ---------------------------------------------------------------------------
# registered custom objects
# ---------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="sweep")
class SweepL2(keras.regularizers.Regularizer):
    def __init__(self, strength=1e-3):
        self.strength = float(strength)

    def __call__(self, x):
        return self.strength * ops.sum(ops.square(x))

    def get_config(self):
        return {"strength": self.strength}


@keras.saving.register_keras_serializable(package="sweep")
def sweep_loss(y_true, y_pred):
    return ops.mean(ops.square(y_true - y_pred)) * 0.5


@keras.saving.register_keras_serializable(package="sweep")
class SweepWeightedMSE(keras.losses.Loss):
    def __init__(self, weight=2.0, name="sweep_weighted_mse", **kw):
        super().__init__(name=name, **kw)
        self.weight = float(weight)

    def call(self, y_true, y_pred):
        return self.weight * ops.mean(ops.square(y_true - y_pred), axis=-1)

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}


@keras.saving.register_keras_serializable(package="sweep")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, peak=1e-3, warmup=100):
        self.peak = float(peak)
        self.warmup = int(warmup)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        return self.peak * ops.minimum(1.0, (step + 1.0) / self.warmup)

    def get_config(self):
        return {"peak": self.peak, "warmup": self.warmup}


@keras.saving.register_keras_serializable(package="sweep")
class GatedDense(keras.layers.Layer):
    """A custom layer with its own weights, a regularizer and a non-trainable buffer."""

    def __init__(self, units, kernel_regularizer=None, **kw):
        super().__init__(**kw)
        self.units = int(units)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        d = int(input_shape[-1])
        self.kernel = self.add_weight(shape=(d, self.units), name="kernel", regularizer=self.kernel_regularizer)
        self.gate = self.add_weight(shape=(self.units,), name="gate", initializer="ones")
        self.count = self.add_weight(shape=(), name="count", initializer="zeros", trainable=False)

    def call(self, x):
        return ops.matmul(x, self.kernel) * ops.sigmoid(self.gate)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer)}


@keras.saving.register_keras_serializable(package="sweep")
class ResidualBlock(keras.layers.Layer):
    """A custom layer made of built-in sublayers (weights nested under it)."""

    def __init__(self, units, l2=1e-4, **kw):
        super().__init__(**kw)
        self.units, self.l2 = int(units), float(l2)
        self.d1 = L.Dense(units, activation="relu", kernel_regularizer=R.L2(self.l2))
        self.d2 = L.Dense(units, kernel_regularizer=R.L2(self.l2))
        self.norm = L.LayerNormalization()

    def build(self, input_shape):
        self.d1.build(input_shape)
        self.d2.build((*input_shape[:-1], self.units))
        self.norm.build((*input_shape[:-1], self.units))

    def call(self, x):
        return self.norm(x + self.d2(self.d1(x)))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "l2": self.l2}


@keras.saving.register_keras_serializable(package="sweep")
class SubclassedMLP(keras.Model):
    def __init__(self, hidden=16, classes=3, l2=1e-4, **kw):
        super().__init__(**kw)
        self.hidden, self.classes, self.l2 = hidden, classes, l2
        self.d1 = L.Dense(hidden, activation="relu", kernel_regularizer=R.L2(l2))
        self.bn = L.BatchNormalization()
        self.out = L.Dense(classes)

    def call(self, x, training=False):
        return self.out(self.bn(self.d1(x), training=training))

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "classes": self.classes, "l2": self.l2}


@keras.saving.register_keras_serializable(package="sweep")
class AddsItsOwnLoss(keras.layers.Layer):
    def call(self, x):
        self.add_loss(0.01 * ops.mean(ops.square(x)))
        return x


CUSTOM_OBJECTS = {f"sweep>{c.__name__}": c for c in
                  (SweepL2, SweepWeightedMSE, WarmupSchedule, GatedDense, ResidualBlock, SubclassedMLP,
                   AddsItsOwnLoss)} | {"sweep>sweep_loss": sweep_loss}


def unregistered_loss(y_true, y_pred):  # not registered: Keras saves its name only
    return ops.mean(ops.abs(y_true - y_pred))


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def mlp(in_dim=8, hidden=(16,), out=3, kreg=None, breg=None, act_out=None, **kw):
    ls = [keras.Input((in_dim,))]
    for h in hidden:
        ls.append(L.Dense(h, activation="relu", kernel_regularizer=kreg() if kreg else None,
                          bias_regularizer=breg() if breg else None, **kw))
    ls.append(L.Dense(out, activation=act_out, kernel_regularizer=kreg() if kreg else None))
    return keras.Sequential(ls)


def cls3(n=16, d=8):
    return cls_data(n, (d,), 3)


def compiled(m, opt="adam", loss="sparse_categorical_crossentropy", **kw):
    m.compile(opt, loss, **kw)
    return m


# ---------------------------------------------------------------------------
# architectures
# ---------------------------------------------------------------------------
@case("seq_mlp_l2_l1bias", ALL)
def _():
    m = compiled(mlp(kreg=lambda: R.L2(1e-3), breg=lambda: R.L1(1e-4)), OPT.SGD(0.01, momentum=0.9, nesterov=True))
    return m, cls3()


@case("seq_deferred_build", BASIC, "Sequential without Input, built by fit")
def _():
    m = keras.Sequential([L.Dense(8, activation="relu", kernel_regularizer=R.L2(1e-3)), L.Dense(3)])
    return compiled(m), cls3()


@case("seq_uncompiled_untrained", ALL)
def _():
    return mlp(hidden=(32, 16), kreg=lambda: R.L2(1e-4)), None


@case("functional_branches_concat_add", ALL)
def _():
    inp = keras.Input((10,))
    a = L.Dense(8, activation="relu", kernel_regularizer=R.L2(1e-4), name="a")(inp)
    b = L.Dense(8, activation="tanh", kernel_regularizer=R.L1(1e-5), name="b")(inp)
    s = L.Add()([a, b])
    c = L.Concatenate()([s, a, inp])
    out = L.Dense(2, activation="softmax")(c)
    return compiled(keras.Model(inp, out), "rmsprop"), cls_data(16, (10,), 2)


@case("subclassed_model_get_config", ("keras", "h5", "weights"))
def _():
    m = SubclassedMLP()
    m.compile("adam", LS.SparseCategoricalCrossentropy(from_logits=True))
    return m, cls3()


@case("custom_layer_gated", BASIC)
def _():
    m = keras.Sequential([keras.Input((8,)), GatedDense(6, kernel_regularizer=R.L2(1e-3)), L.Dense(3)])
    return compiled(m), cls3()


@case("custom_layer_with_sublayers", BASIC)
def _():
    inp = keras.Input((8,))
    h = L.Dense(16)(inp)
    h = ResidualBlock(16, l2=1e-3)(h)
    return compiled(keras.Model(inp, L.Dense(3)(h))), cls3()


@case("nested_seq_in_functional", ALL)
def _():
    inner = keras.Sequential([keras.Input((8,)), L.Dense(12, activation="relu", kernel_regularizer=R.L2(1e-3)),
                              L.Dense(6, kernel_regularizer=R.L2(1e-3))], name="inner")
    inp = keras.Input((8,))
    return compiled(keras.Model(inp, L.Dense(3)(inner(inp)))), cls3()


@case("nested_functional_in_seq", BASIC)
def _():
    i = keras.Input((8,))
    block = keras.Model(i, L.Dense(6, activation="relu", kernel_regularizer=R.L1L2(1e-5, 1e-4))(i), name="block")
    m = keras.Sequential([keras.Input((8,)), block, L.Dense(3)])
    return compiled(m), cls3()


@case("nested_three_levels_frozen_middle", BASIC)
def _():
    i0 = keras.Input((8,))
    deepest = keras.Model(i0, L.Dense(8, kernel_regularizer=R.L2(1e-3), name="deep_dense")(i0), name="deepest")
    middle = keras.Sequential([keras.Input((8,)), deepest, L.BatchNormalization(gamma_regularizer=R.L2(1e-4))],
                              name="middle")
    middle.trainable = False
    inp = keras.Input((8,))
    return compiled(keras.Model(inp, L.Dense(3, kernel_regularizer=R.L2(1e-3))(middle(inp)))), cls3()


@case("shared_dense_twice", ALL)
def _():
    shared = L.Dense(8, activation="relu", kernel_regularizer=R.L2(1e-3), name="shared")
    a, b = keras.Input((8,), name="left"), keras.Input((8,), name="right")
    out = L.Dense(1, activation="sigmoid")(L.Subtract()([shared(a), shared(b)]))
    m = compiled(keras.Model([a, b], out), "adam", "binary_crossentropy")
    x, y = cls_data(16, (8,), 2)
    return m, ([x, x[::-1]], y.astype("float32"))


@case("siamese_shared_tower", BASIC)
def _():
    tower = keras.Sequential([keras.Input((12,)), L.Embedding(50, 8, embeddings_regularizer=R.L2(1e-4)),
                              L.GlobalAveragePooling1D(), L.Dense(8, kernel_regularizer=R.L2(1e-4))], name="tower")
    a, b = keras.Input((12,), dtype="int32"), keras.Input((12,), dtype="int32")
    out = L.Dense(1, activation="sigmoid")(L.Concatenate()([tower(a), tower(b)]))
    m = compiled(keras.Model([a, b], out), "adam", "binary_crossentropy")
    x = rng(1).randint(0, 50, (16, 12)).astype("int32")
    return m, ([x, x[::-1]], rng(2).randint(0, 2, 16).astype("float32"))


# ---------------------------------------------------------------------------
# multi-input / multi-output, loss dicts and lists, loss_weights
# ---------------------------------------------------------------------------
def two_heads(l2=1e-3):
    inp = keras.Input((8,), name="x")
    h = L.Dense(16, activation="relu", kernel_regularizer=R.L2(l2), name="trunk")(inp)
    return inp, L.Dense(3, name="cls")(h), L.Dense(1, name="reg")(h)


def two_head_targets():
    x, y = cls3()
    return x, {"cls": y, "reg": rng(3).rand(16, 1).astype("float32")}


def two_head_list_targets():
    x, y = cls3()
    return x, [y, rng(3).rand(16, 1).astype("float32")]


@case("mo_loss_dict_weights_dict", BASIC)
def _():
    inp, c, r = two_heads()
    m = keras.Model(inp, {"cls": c, "reg": r})
    m.compile("adam", {"cls": LS.SparseCategoricalCrossentropy(from_logits=True), "reg": "mse"},
              loss_weights={"cls": 1.0, "reg": 0.2})
    return m, two_head_targets()


@case("mo_loss_list_weights_list", BASIC)
def _():
    inp, c, r = two_heads()
    m = keras.Model(inp, [c, r])
    m.compile("adam", [LS.SparseCategoricalCrossentropy(from_logits=True), "mae"], loss_weights=[0.7, 0.3])
    return m, two_head_list_targets()


@case("mo_weight_zero_one_head", BASIC)
def _():
    inp, c, r = two_heads()
    m = keras.Model(inp, {"cls": c, "reg": r})
    m.compile("adam", {"cls": LS.SparseCategoricalCrossentropy(from_logits=True), "reg": "mse"},
              loss_weights={"cls": 1.0, "reg": 0.0})
    return m, two_head_targets()


@case("mo_weights_all_zero", BASIC)
def _():
    inp, c, r = two_heads()
    m = keras.Model(inp, [c, r])
    m.compile("sgd", [LS.SparseCategoricalCrossentropy(from_logits=True), "mse"], loss_weights=[0.0, 0.0])
    return m, None


@case("mo_metrics_by_position_list", BASIC, "compile(opt, [l1, l2], ['accuracy', 'mae'])")
def _():
    inp, c, r = two_heads()
    m = keras.Model(inp, [c, r])
    m.compile("adam", [LS.SparseCategoricalCrossentropy(from_logits=True), "mse"], ["accuracy", "mae"])
    return m, None


@case("mo_metrics_by_position_dict", BASIC, "compile(opt, {..}, {'cls': ['accuracy']})")
def _():
    inp, c, r = two_heads()
    m = keras.Model(inp, {"cls": c, "reg": r})
    m.compile("adam", {"cls": LS.SparseCategoricalCrossentropy(from_logits=True), "reg": "mse"},
              {"cls": ["accuracy"], "reg": ["mae"]})
    return m, None


@case("so_metrics_by_position", BASIC, "compile(opt, 'sparse_categorical_crossentropy', ['accuracy'])")
def _():
    m = mlp(kreg=lambda: R.L2(1e-2), act_out="softmax")
    m.compile(OPT.SGD(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    return m, None  # fit() itself fails on loss_weights=["accuracy"]: such files are saved untrained


@case("so_metrics_object_by_position", BASIC)
def _():
    m = mlp(kreg=lambda: R.L2(1e-2))
    m.compile(OPT.Adam(), LS.SparseCategoricalCrossentropy(from_logits=True),
              [keras.metrics.SparseCategoricalAccuracy()])
    return m, None


@case("so_loss_weights_list", BASIC)
def _():
    m = mlp(kreg=lambda: R.L2(1e-3))
    m.compile("adam", LS.SparseCategoricalCrossentropy(from_logits=True), loss_weights=[2.5])
    return m, cls3()


@case("so_loss_weights_scalar", BASIC)
def _():
    m = mlp(kreg=lambda: R.L2(1e-3))
    m.compile("adam", LS.SparseCategoricalCrossentropy(from_logits=True), loss_weights=3.0)
    return m, None


@case("mo_negative_weight_gradient_reversal", BASIC)
def _():
    inp, c, r = two_heads()
    m = keras.Model(inp, {"cls": c, "reg": r})
    m.compile("adam", {"cls": LS.SparseCategoricalCrossentropy(from_logits=True), "reg": "mse"},
              loss_weights={"cls": 1.0, "reg": -0.1})
    return m, None


@case("mo_single_loss_broadcast", BASIC)
def _():
    inp = keras.Input((8,))
    h = L.Dense(8, activation="relu", kernel_regularizer=R.L2(1e-3))(inp)
    m = keras.Model(inp, [L.Dense(1, name="o1")(h), L.Dense(2, name="o2")(h)])
    m.compile("adam", "mse")
    return m, (cls3()[0], [rng(1).rand(16, 1).astype("float32"), rng(2).rand(16, 2).astype("float32")])


@case("mo_loss_none_for_one_output", BASIC)
def _():
    inp, c, r = two_heads()
    m = keras.Model(inp, {"cls": c, "reg": r})
    m.compile("adam", {"cls": LS.SparseCategoricalCrossentropy(from_logits=True), "reg": None})
    return m, None


@case("mimo_embedding_and_dense", BASIC)
def _():
    tok = keras.Input((10,), dtype="int32", name="tokens")
    num = keras.Input((4,), name="numeric")
    e = L.GlobalAveragePooling1D()(L.Embedding(100, 8, embeddings_regularizer=R.L2(1e-4))(tok))
    h = L.Dense(16, activation="relu", kernel_regularizer=R.L2(1e-4))(L.Concatenate()([e, num]))
    p = L.Dense(1, activation="sigmoid", name="prob")(h)
    v = L.Dense(1, name="value")(h)
    m = keras.Model({"tokens": tok, "numeric": num}, {"prob": p, "value": v})
    m.compile(OPT.Adam(1e-3), {"prob": LS.BinaryCrossentropy(label_smoothing=0.1), "value": LS.Huber(delta=0.5)},
              loss_weights={"prob": 1.0, "value": 0.5})
    x = {"tokens": rng(1).randint(0, 100, (16, 10)).astype("int32"), "numeric": rng(2).rand(16, 4).astype("float32")}
    return m, (x, {"prob": rng(3).randint(0, 2, (16, 1)).astype("float32"), "value": rng(4).rand(16, 1)})


@case("model_adds_own_loss_no_compile_loss", BASIC)
def _():
    inp = keras.Input((8,))
    h = AddsItsOwnLoss()(L.Dense(8, kernel_regularizer=R.L2(1e-3))(inp))
    m = keras.Model(inp, L.Dense(3)(h))
    m.compile("adam")
    return m, None


# ---------------------------------------------------------------------------
# losses with arguments, custom losses
# ---------------------------------------------------------------------------
def loss_case(name, loss, out=3, act=None, target="sparse", formats=BASIC):
    @case(f"loss_{name}", formats)
    def _():
        m = mlp(out=out, kreg=lambda: R.L2(1e-3), act_out=act)
        m.compile("adam", loss)
        x, y = cls_data(16, (8,), out if out > 1 else 2)
        ys = {"sparse": lambda: y, "onehot": lambda: onehot(y, out), "binary": lambda: y.astype("float32")[:, None],
              "real": lambda: rng(5).rand(16, out).astype("float32"),
              "positive": lambda: rng(5).rand(16, out).astype("float32") + .1}
        return m, (x, ys[target]())


loss_case("cce_logits_smoothing", LS.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1), target="onehot")
loss_case("scce_logits_ignore_class", LS.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0))
loss_case("scce_reduction_sum", LS.SparseCategoricalCrossentropy(from_logits=True, reduction="sum"))
loss_case("bce_smoothing", LS.BinaryCrossentropy(label_smoothing=0.2), out=1, act="sigmoid", target="binary")
loss_case("bce_logits", LS.BinaryCrossentropy(from_logits=True), out=1, target="binary")
loss_case("binary_focal", LS.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=2.0), out=1, act="sigmoid",
          target="binary")
loss_case("categorical_focal", LS.CategoricalFocalCrossentropy(from_logits=True), target="onehot")
loss_case("huber_delta", LS.Huber(delta=0.3), target="real")
loss_case("logcosh", LS.LogCosh(), target="real")
loss_case("mae_sum", LS.MeanAbsoluteError(reduction="sum"), target="real")
loss_case("kld", LS.KLDivergence(), act="softmax", target="onehot")
loss_case("poisson", LS.Poisson(), act="softplus", target="positive")
loss_case("hinge", LS.Hinge(), target="onehot")
loss_case("categorical_hinge", LS.CategoricalHinge(), target="onehot")
loss_case("cosine_similarity", LS.CosineSimilarity(axis=-1), target="real")
loss_case("msle", LS.MeanSquaredLogarithmicError(), act="relu", target="positive")
loss_case("mape", LS.MeanAbsolutePercentageError(), target="positive")
loss_case("dice", LS.Dice(), act="sigmoid", target="onehot")
loss_case("tversky", LS.Tversky(alpha=0.3, beta=0.7), act="sigmoid", target="onehot")
loss_case("string_cce", "categorical_crossentropy", act="softmax", target="onehot")
loss_case("string_kld", "kld", act="softmax", target="onehot")
loss_case("string_huber", "huber", target="real")
loss_case("custom_registered_fn", sweep_loss, target="real")
loss_case("custom_registered_class", SweepWeightedMSE(weight=3.0), target="real")
loss_case("custom_unregistered_fn", unregistered_loss, target="real", formats=("keras",))


# ---------------------------------------------------------------------------
# optimizers, schedules, clipping, EMA, accumulation
# ---------------------------------------------------------------------------
def opt_case(name, make_opt, formats=BASIC, kreg=lambda: R.L2(1e-3)):
    @case(f"opt_{name}", formats)
    def _():
        m = mlp(kreg=kreg)
        m.compile(make_opt(), LS.SparseCategoricalCrossentropy(from_logits=True))
        return m, cls3()


opt_case("sgd_nesterov", lambda: OPT.SGD(0.05, momentum=0.9, nesterov=True))
opt_case("sgd_weight_decay", lambda: OPT.SGD(0.01, momentum=0.9, weight_decay=1e-4))
opt_case("adam_amsgrad", lambda: OPT.Adam(1e-3, amsgrad=True))
opt_case("adam_weight_decay", lambda: OPT.Adam(1e-3, weight_decay=1e-2))
opt_case("adamw", lambda: OPT.AdamW(1e-3, weight_decay=0.05), kreg=None)
opt_case("adamw_with_l2", lambda: OPT.AdamW(1e-3, weight_decay=0.01))
opt_case("nadam", lambda: OPT.Nadam(2e-3))
opt_case("rmsprop_centered", lambda: OPT.RMSprop(1e-3, momentum=0.9, centered=True))
opt_case("adagrad", lambda: OPT.Adagrad(0.01, initial_accumulator_value=0.1))
opt_case("adadelta", lambda: OPT.Adadelta(1.0, rho=0.95))
opt_case("adamax", lambda: OPT.Adamax(2e-3))
opt_case("ftrl_l1_l2", lambda: OPT.Ftrl(0.05, l1_regularization_strength=0.01, l2_regularization_strength=0.01,
                                      l2_shrinkage_regularization_strength=0.001))
opt_case("lion", lambda: OPT.Lion(1e-4, weight_decay=0.1))
opt_case("lamb", lambda: OPT.Lamb(1e-3))
opt_case("adafactor", lambda: OPT.Adafactor(1e-2))
opt_case("muon", lambda: OPT.Muon(0.02))
opt_case("schedulefree_adamw", lambda: OPT.ScheduleFreeAdamW(1e-3, weight_decay=0.01))
opt_case("loss_scale_explicit", lambda: OPT.LossScaleOptimizer(OPT.Adam(1e-3)))
opt_case("string_rmsprop", lambda: "rmsprop")
opt_case("clipnorm_sgd", lambda: OPT.SGD(0.1, clipnorm=1.0))
opt_case("global_clipnorm_adam", lambda: OPT.Adam(1e-3, global_clipnorm=1.0))
opt_case("clipvalue_adam", lambda: OPT.Adam(1e-3, clipvalue=0.5))
opt_case("ema_adamw", lambda: OPT.AdamW(1e-3, use_ema=True, ema_momentum=0.99, ema_overwrite_frequency=10))
opt_case("grad_accumulation", lambda: OPT.Adam(1e-3, gradient_accumulation_steps=4))
opt_case("loss_scale_factor", lambda: OPT.SGD(0.01, loss_scale_factor=128.0))
opt_case("sched_exponential_staircase", lambda: OPT.SGD(S.ExponentialDecay(0.1, 10, 0.5, staircase=True)))
opt_case("sched_piecewise", lambda: OPT.SGD(S.PiecewiseConstantDecay([100, 200], [0.1, 0.01, 0.001]),
                                          momentum=0.9))
opt_case("sched_cosine_warmup", lambda: OPT.AdamW(S.CosineDecay(0.0, 1000, alpha=0.1, warmup_target=1e-3,
                                                              warmup_steps=100), weight_decay=0.01))
opt_case("sched_cosine_restarts", lambda: OPT.SGD(S.CosineDecayRestarts(0.05, 100)))
opt_case("sched_polynomial", lambda: OPT.Adam(S.PolynomialDecay(1e-3, 1000, 1e-5, power=2.0)))
opt_case("sched_inverse_time", lambda: OPT.RMSprop(S.InverseTimeDecay(1e-3, 100, 0.5)))
opt_case("sched_custom_registered", lambda: OPT.Adam(WarmupSchedule(2e-3, 50)))
opt_case("zero_lr", lambda: OPT.SGD(0.0))


@case("opt_multi_optimizer", ("keras",))
def _():
    m = mlp(kreg=lambda: R.L2(1e-3))
    opt = OPT.MultiOptimizer(OPT.OptimizerMap(OPT.SGD(1e-2), {"dense/.*": OPT.Adam(1e-3)}))
    m.compile(opt, LS.SparseCategoricalCrossentropy(from_logits=True))
    return m, cls3()
