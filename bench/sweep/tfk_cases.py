"""tf-keras (Keras 2) models for the robustness sweep: legacy HDF5, Keras 2
``.keras`` zips, weights-only HDF5 and SavedModel folders. Imported only in
a process of its own (tf-keras and Keras 3 never share one).

Formats: ``h5`` (``model.save("x.h5")``), ``keras`` (``model.save("x.keras")``),
``weights`` (``save_weights("x_weights.h5")``), ``tf`` (``save_format="tf"``).
"""

from __future__ import annotations

import tf_keras
from tf_keras import layers as L
from tf_keras import regularizers as R

from .common import Registry, cls_data, onehot, rng

REG = Registry()
case = REG.case
OPT = tf_keras.optimizers
S = tf_keras.optimizers.schedules
LS = tf_keras.losses
H5K = ("h5", "keras", "json")


@tf_keras.utils.register_keras_serializable(package="sweep")
class TfkL2(tf_keras.regularizers.Regularizer):
    def __init__(self, strength=1e-3):
        self.strength = float(strength)

    def __call__(self, x):
        return self.strength * tf_keras.backend.sum(tf_keras.backend.square(x))

    def get_config(self):
        return {"strength": self.strength}


@tf_keras.utils.register_keras_serializable(package="sweep")
class TfkSubclassed(tf_keras.Model):
    def __init__(self, hidden=12, **kw):
        super().__init__(**kw)
        self.hidden = hidden
        self.d1 = L.Dense(hidden, activation="relu", kernel_regularizer=R.L2(1e-3))
        self.d2 = L.Dense(3)

    def call(self, x):
        return self.d2(self.d1(x))

    def get_config(self):
        return {"hidden": self.hidden}


CUSTOM_OBJECTS = {"sweep>TfkL2": TfkL2, "sweep>TfkSubclassed": TfkSubclassed, "TfkL2": TfkL2}


def mlp(in_dim=8, hidden=(16,), out=3, kreg=None, act_out=None):
    ls = [L.Dense(hidden[0], activation="relu", input_shape=(in_dim,), kernel_regularizer=kreg() if kreg else None)]
    ls += [L.Dense(h, activation="relu", kernel_regularizer=kreg() if kreg else None) for h in hidden[1:]]
    ls.append(L.Dense(out, activation=act_out, kernel_regularizer=kreg() if kreg else None))
    return tf_keras.Sequential(ls)


def cls3():
    return cls_data(16, (8,), 3)


@case("tfk_mlp_sgd_nesterov", ("h5", "keras", "weights", "tf"))
def _():
    m = mlp(kreg=lambda: R.L2(1e-3))
    m.compile(OPT.SGD(0.01, momentum=0.9, nesterov=True), "sparse_categorical_crossentropy")
    return m, cls3()


@case("tfk_legacy_adam_decay", H5K, "tf_keras.optimizers.legacy.Adam(decay=1e-4): the Keras 2 lr decay")
def _():
    m = mlp(kreg=lambda: R.L2(1e-3))
    m.compile(OPT.legacy.Adam(1e-3, decay=1e-4), LS.SparseCategoricalCrossentropy(from_logits=True))
    return m, cls3()


@case("tfk_legacy_sgd_decay_momentum", H5K)
def _():
    m = mlp(kreg=lambda: R.L2(5e-4))
    m.compile(OPT.legacy.SGD(0.1, momentum=0.9, decay=1e-3, nesterov=True), "sparse_categorical_crossentropy")
    return m, cls3()


@case("tfk_adamw_ema_clip", H5K)
def _():
    m = mlp(kreg=None)
    m.compile(OPT.AdamW(1e-3, weight_decay=0.01, use_ema=True, global_clipnorm=1.0),
              LS.SparseCategoricalCrossentropy(from_logits=True))
    return m, cls3()


@case("tfk_optimizers_misc", H5K)
def _():
    m = mlp(kreg=lambda: R.L1L2(1e-5, 1e-4))
    m.compile(OPT.Ftrl(0.05, l1_regularization_strength=0.01, l2_regularization_strength=0.001),
              LS.SparseCategoricalCrossentropy(from_logits=True))
    return m, cls3()


def tfk_opt(name, make):
    @case(f"tfk_opt_{name}", ("h5",))
    def _():
        m = mlp(kreg=lambda: R.L2(1e-3))
        m.compile(make(), LS.SparseCategoricalCrossentropy(from_logits=True))
        return m, cls3()


tfk_opt("adadelta", lambda: OPT.Adadelta(1.0))
tfk_opt("adagrad", lambda: OPT.Adagrad(0.01))
tfk_opt("nadam", lambda: OPT.Nadam(1e-3))
tfk_opt("adamax", lambda: OPT.Adamax(1e-3))
tfk_opt("rmsprop_centered", lambda: OPT.RMSprop(1e-3, momentum=0.9, centered=True))
tfk_opt("lion", lambda: OPT.Lion(1e-4, weight_decay=0.1))
tfk_opt("adafactor", lambda: OPT.Adafactor(1e-2))
tfk_opt("legacy_rmsprop", lambda: OPT.legacy.RMSprop(1e-3, decay=1e-5))
tfk_opt("sched_piecewise", lambda: OPT.SGD(S.PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001])))
tfk_opt("sched_cosine_warmup", lambda: OPT.Adam(S.CosineDecay(0.0, 1000, warmup_target=1e-3, warmup_steps=100)))


@case("tfk_mixed_float16", H5K)
def _():
    tf_keras.mixed_precision.set_global_policy("mixed_float16")
    m = tf_keras.Sequential([L.Conv2D(4, 3, input_shape=(8, 8, 3), kernel_regularizer=R.L2(1e-4)),
                             L.BatchNormalization(), L.Flatten(), L.Dense(3, dtype="float32")])
    m.compile(OPT.Adam(1e-3), LS.SparseCategoricalCrossentropy(from_logits=True))
    return m, cls_data(16, (8, 8, 3), 3)


@case("tfk_multi_output_dicts", H5K)
def _():
    inp = tf_keras.Input((8,), name="x")
    h = L.Dense(16, activation="relu", kernel_regularizer=R.L2(1e-3), name="trunk")(inp)
    m = tf_keras.Model(inp, {"cls": L.Dense(3, name="cls")(h), "reg": L.Dense(1, name="reg")(h)})
    m.compile("adam", {"cls": LS.SparseCategoricalCrossentropy(from_logits=True), "reg": "mse"},
              loss_weights={"cls": 1.0, "reg": 0.0})
    x, y = cls3()
    return m, (x, {"cls": y, "reg": rng(3).rand(16, 1).astype("float32")})


@case("tfk_multi_output_lists_metrics_by_position", H5K)
def _():
    inp = tf_keras.Input((8,))
    h = L.Dense(16, activation="relu", kernel_regularizer=R.L2(1e-3))(inp)
    m = tf_keras.Model(inp, [L.Dense(3, name="cls")(h), L.Dense(1, name="reg")(h)])
    m.compile("adam", ["sparse_categorical_crossentropy", "mse"], ["accuracy"])
    return m, None


@case("tfk_single_metrics_by_position", H5K)
def _():
    m = mlp(kreg=lambda: R.L2(1e-2), act_out="softmax")
    m.compile(OPT.SGD(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    return m, cls3()


@case("tfk_loss_objects", H5K)
def _():
    m = mlp(kreg=lambda: R.L2(1e-3))
    m.compile("adam", LS.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1,
                                                 reduction=tf_keras.losses.Reduction.SUM))
    x, y = cls3()
    return m, (x, onehot(y, 3))


@case("tfk_conv_family", H5K)
def _():
    m = tf_keras.Sequential([
        L.Conv2D(4, 3, input_shape=(8, 8, 3), kernel_regularizer=R.L2(1e-4), bias_regularizer=R.L1(1e-5)),
        L.BatchNormalization(gamma_regularizer=R.L2(1e-4), beta_regularizer=R.L2(1e-4)),
        L.DepthwiseConv2D(3, depthwise_regularizer=R.L2(1e-4)),
        L.SeparableConv2D(4, 1, depthwise_regularizer=R.L2(1e-4), pointwise_regularizer=R.L2(1e-4)),
        L.Conv2DTranspose(3, 2, kernel_regularizer=R.L2(1e-4)),
        L.PReLU(alpha_regularizer=R.L2(1e-3)),
        L.Flatten(), L.Dense(3, activity_regularizer=R.L2(1e-5))])
    m.compile(OPT.SGD(0.01, momentum=0.9), LS.SparseCategoricalCrossentropy(from_logits=True))
    return m, cls_data(16, (8, 8, 3), 3)


@case("tfk_recurrent_family", ("h5", "keras", "weights"))
def _():
    inp = tf_keras.Input((10,), dtype="int32")
    e = L.Embedding(50, 8, mask_zero=True, embeddings_regularizer=R.L2(1e-4))(inp)
    h = L.Bidirectional(L.LSTM(6, return_sequences=True, kernel_regularizer=R.L2(1e-4),
                               recurrent_regularizer=R.L2(1e-4)))(e)
    h = L.GRU(5, return_sequences=True, reset_after=False, kernel_regularizer=R.L2(1e-4))(h)
    h = L.TimeDistributed(L.Dense(4, kernel_regularizer=R.L2(1e-4)))(h)
    h = L.SimpleRNN(4, recurrent_regularizer=R.L1(1e-5))(h)
    m = tf_keras.Model(inp, L.Dense(3)(h))
    m.compile("rmsprop", LS.SparseCategoricalCrossentropy(from_logits=True))
    return m, (rng(1).randint(0, 50, (16, 10)).astype("int32"), rng(2).randint(0, 3, 16).astype("int32"))


@case("tfk_convlstm_mha_norms", H5K)
def _():
    inp = tf_keras.Input((3, 6, 6, 2))
    h = L.ConvLSTM2D(4, 3, kernel_regularizer=R.L2(1e-4), recurrent_regularizer=R.L2(1e-4))(inp)
    h = L.Reshape((16, 4))(h)
    a = L.MultiHeadAttention(2, 4, kernel_regularizer=R.L2(1e-4))(h, h)
    h = L.LayerNormalization(gamma_regularizer=R.L2(1e-4))(h + a)
    h = L.GroupNormalization(groups=2)(h) if hasattr(L, "GroupNormalization") else h
    h = L.UnitNormalization()(L.Flatten()(h))
    m = tf_keras.Model(inp, L.Dense(3)(h))
    m.compile("adam", LS.SparseCategoricalCrossentropy(from_logits=True))
    return m, cls_data(16, (3, 6, 6, 2), 3)


@case("tfk_nested_shared_frozen", ("h5", "keras", "tf"))
def _():
    inner = tf_keras.Sequential([L.Dense(8, activation="relu", input_shape=(8,), kernel_regularizer=R.L2(1e-3)),
                                 L.Dense(6, kernel_regularizer=R.L2(1e-3))], name="inner")
    frozen = L.Dense(6, kernel_regularizer=R.L2(1e-3), name="frozen_dense")
    frozen.trainable = False
    a, b = tf_keras.Input((8,)), tf_keras.Input((8,))
    out = L.Dense(3)(L.Concatenate()([inner(a), inner(b), frozen(a)]))
    m = tf_keras.Model([a, b], out)
    m.compile("adam", LS.SparseCategoricalCrossentropy(from_logits=True))
    x, y = cls3()
    return m, ([x, x[::-1]], y)


@case("tfk_custom_regularizer_subclassed", ("keras", "h5", "tf"))
def _():
    m = TfkSubclassed()
    m.compile("adam", LS.SparseCategoricalCrossentropy(from_logits=True))
    return m, cls3()


@case("tfk_custom_regularizer_class", H5K)
def _():
    m = mlp(kreg=lambda: TfkL2(2e-3))
    m.compile("adam", LS.SparseCategoricalCrossentropy(from_logits=True))
    return m, cls3()


@case("tfk_lambda_rescaling", H5K)
def _():
    m = tf_keras.Sequential([L.Rescaling(1 / 255.0, input_shape=(8,)), L.Dense(8, kernel_regularizer=R.L2(1e-3)),
                             L.Lambda(lambda t: t * 2.0), L.Dense(3)])
    m.compile("adam", LS.SparseCategoricalCrossentropy(from_logits=True))
    return m, None


@case("tfk_app_mobilenetv3small", ("h5", "tf"))
def _():
    m = tf_keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=10)
    m.compile(OPT.SGD(0.01, momentum=0.9), "categorical_crossentropy")
    return m, None


@case("tfk_uncompiled_no_input_shape_built", ("h5", "keras"))
def _():
    m = tf_keras.Sequential([L.Dense(8, kernel_regularizer=R.L2(1e-3)), L.Dense(3)])
    m.build((None, 8))
    return m, None
