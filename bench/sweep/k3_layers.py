"""Keras 3 layer families, regularizer placements, dtypes and applications
for the robustness sweep (registered into ``k3_cases.REG``)."""

from __future__ import annotations

import keras
from keras import layers as L
from keras import regularizers as R

from .common import cls_data, onehot, rng
from .k3_cases import ALL, BASIC, LS, OPT, REG, SweepL2, compiled, mlp

case = REG.case


def seq(shape, *layers, dtype=None):
    return keras.Sequential([keras.Input(shape, dtype=dtype), *layers])


def head(k=3):
    return [L.Flatten(), L.Dense(k)]


def scce_logits(m, opt="adam"):
    return compiled(m, opt, LS.SparseCategoricalCrossentropy(from_logits=True))


def data(shape, k=3, n=16):
    return cls_data(n, shape, k)


# ---------------------------------------------------------------------------
# convolutions
# ---------------------------------------------------------------------------
@case("conv1d_l1l2_activity", ALL)
def _():
    m = seq((20, 4), L.Conv1D(6, 3, kernel_regularizer=R.L1L2(1e-5, 1e-4), activity_regularizer=R.L2(1e-5)),
            L.GlobalMaxPooling1D(), L.Dense(3))
    return scce_logits(m), data((20, 4))


@case("conv2d_groups_bias_reg", ALL)
def _():
    m = seq((8, 8, 4), L.Conv2D(8, 3, groups=2, kernel_regularizer=R.L2(1e-4), bias_regularizer=R.L2(1e-4)),
            *head())
    return scce_logits(m, OPT.SGD(0.01, momentum=0.9)), data((8, 8, 4))


@case("conv2d_channels_first_dilated", BASIC)
def _():
    m = seq((3, 10, 10), L.Conv2D(4, 3, data_format="channels_first", dilation_rate=2,
                                  kernel_regularizer=R.L2(1e-3)), *head())
    return scce_logits(m), None


@case("conv3d_l2", BASIC)
def _():
    m = seq((4, 6, 6, 2), L.Conv3D(4, 2, kernel_regularizer=R.L2(1e-4)), *head())
    return scce_logits(m), data((4, 6, 6, 2))


@case("conv_transposes", ALL)
def _():
    inp = keras.Input((6, 6, 3))
    h = L.Conv2DTranspose(4, 3, strides=2, padding="same", kernel_regularizer=R.L2(1e-4),
                          bias_regularizer=R.L1(1e-5))(inp)
    h1 = L.Conv1DTranspose(3, 3, kernel_regularizer=R.L2(1e-4))(keras.layers.Reshape((36, 3))(inp))
    h3 = L.Conv3DTranspose(2, 2, kernel_regularizer=R.L2(1e-4))(keras.layers.Reshape((6, 6, 3, 1))(inp))
    out = L.Dense(3)(L.Concatenate()([L.Flatten()(h), L.Flatten()(h1), L.Flatten()(h3)]))
    return scce_logits(keras.Model(inp, out)), data((6, 6, 3))


@case("depthwise_conv2d_regs", ALL)
def _():
    m = seq((8, 8, 3), L.DepthwiseConv2D(3, depth_multiplier=2, depthwise_regularizer=R.L2(1e-4),
                                         bias_regularizer=R.L2(1e-5), activity_regularizer=R.L1(1e-6)), *head())
    return scce_logits(m), data((8, 8, 3))


@case("depthwise_conv1d", BASIC)
def _():
    m = seq((16, 3), L.DepthwiseConv1D(3, depthwise_regularizer=R.L1(1e-5)), *head())
    return scce_logits(m), None


@case("separable_conv2d_dw_pw", ALL)
def _():
    m = seq((8, 8, 3), L.SeparableConv2D(6, 3, depth_multiplier=2, depthwise_regularizer=R.L2(1e-4),
                                         pointwise_regularizer=R.L2(1e-3), bias_regularizer=R.L1(1e-5)), *head())
    return scce_logits(m, OPT.SGD(0.01)), data((8, 8, 3))


@case("separable_conv1d", BASIC)
def _():
    m = seq((16, 4), L.SeparableConv1D(5, 3, depthwise_regularizer=R.L2(1e-4), pointwise_regularizer=R.L1(1e-5)),
            *head())
    return scce_logits(m), data((16, 4))


# ---------------------------------------------------------------------------
# embeddings and recurrent layers
# ---------------------------------------------------------------------------
def tokens(n=16, t=10, vocab=50, seed=1):
    return rng(seed).randint(0, vocab, (n, t)).astype("int32")


@case("embedding_mask_zero_lstm", ALL)
def _():
    m = seq((10,), L.Embedding(50, 8, mask_zero=True, embeddings_regularizer=R.L2(1e-4)),
            L.LSTM(8, kernel_regularizer=R.L2(1e-4), recurrent_regularizer=R.L2(1e-4), bias_regularizer=R.L2(1e-4)),
            L.Dense(3), dtype="int32")
    return scce_logits(m), (tokens(), cls3y())


def cls3y():
    return rng(9).randint(0, 3, 16).astype("int32")


@case("lstm_return_sequences_stacked", BASIC)
def _():
    m = seq((6, 4), L.LSTM(8, return_sequences=True, kernel_regularizer=R.L2(1e-4)),
            L.LSTM(4, recurrent_regularizer=R.L1(1e-5), activity_regularizer=R.L2(1e-5)), L.Dense(3))
    return scce_logits(m), data((6, 4))


@case("gru_reset_after_false", BASIC)
def _():
    m = seq((6, 4), L.GRU(8, reset_after=False, kernel_regularizer=R.L2(1e-4), recurrent_regularizer=R.L2(1e-4)),
            L.Dense(3))
    return scce_logits(m, "rmsprop"), data((6, 4))


@case("gru_default", ALL)
def _():
    m = seq((6, 4), L.GRU(8, kernel_regularizer=R.L2(1e-4), bias_regularizer=R.L1(1e-5)), L.Dense(3))
    return scce_logits(m), data((6, 4))


@case("simple_rnn_seq", BASIC)
def _():
    m = seq((6, 4), L.SimpleRNN(8, return_sequences=True, kernel_regularizer=R.L2(1e-3),
                                recurrent_regularizer=R.L2(1e-3)), L.GlobalAveragePooling1D(), L.Dense(3))
    return scce_logits(m), data((6, 4))


@case("lstm_stateful", BASIC)
def _():
    m = keras.Sequential([keras.Input((5, 3), batch_size=4), L.LSTM(6, stateful=True, kernel_regularizer=R.L2(1e-4)),
                          L.Dense(1)])
    m.compile("adam", "mse")
    return m, (rng(1).rand(16, 5, 3).astype("float32"), rng(2).rand(16, 1).astype("float32"), 4)


@case("bidirectional_lstm_concat", ALL)
def _():
    m = seq((6, 4), L.Bidirectional(L.LSTM(6, kernel_regularizer=R.L2(1e-4), recurrent_regularizer=R.L2(1e-4))),
            L.Dense(3))
    return scce_logits(m), data((6, 4))


@case("bidirectional_gru_sum_backward_layer", BASIC)
def _():
    fwd = L.GRU(5, return_sequences=True, kernel_regularizer=R.L2(1e-3))
    bwd = L.GRU(5, return_sequences=True, go_backwards=True, kernel_regularizer=R.L1(1e-5))
    m = seq((6, 4), L.Bidirectional(fwd, backward_layer=bwd, merge_mode="sum"), L.GlobalAveragePooling1D(),
            L.Dense(3))
    return scce_logits(m), data((6, 4))


@case("time_distributed_dense_conv", ALL)
def _():
    m = seq((4, 6, 6, 2), L.TimeDistributed(L.Conv2D(3, 3, kernel_regularizer=R.L2(1e-4))),
            L.TimeDistributed(L.Flatten()), L.TimeDistributed(L.Dense(4, kernel_regularizer=R.L2(1e-4))),
            L.Flatten(), L.Dense(3))
    return scce_logits(m), data((4, 6, 6, 2))


@case("convlstm2d", BASIC)
def _():
    m = seq((3, 6, 6, 2), L.ConvLSTM2D(4, 3, kernel_regularizer=R.L2(1e-4), recurrent_regularizer=R.L2(1e-4),
                                       bias_regularizer=R.L1(1e-5)), *head())
    return scce_logits(m), data((3, 6, 6, 2))


@case("convlstm1d", BASIC)
def _():
    m = seq((3, 8, 2), L.ConvLSTM1D(4, 3, kernel_regularizer=R.L2(1e-4)), *head())
    return scce_logits(m), None


@case("rnn_cells_stacked", BASIC)
def _():
    cells = [L.LSTMCell(6, kernel_regularizer=R.L2(1e-4)), L.GRUCell(4, recurrent_regularizer=R.L2(1e-4))]
    m = seq((6, 4), L.RNN(L.StackedRNNCells(cells)), L.Dense(3))
    return scce_logits(m), data((6, 4))


@case("rnn_single_cell", BASIC)
def _():
    m = seq((6, 4), L.RNN(L.SimpleRNNCell(6, kernel_regularizer=R.L2(1e-3))), L.Dense(3))
    return scce_logits(m), None


# ---------------------------------------------------------------------------
# attention, normalization, misc layers
# ---------------------------------------------------------------------------
@case("transformer_block_mha", ALL)
def _():
    inp = keras.Input((10,), dtype="int32")
    x = L.Embedding(60, 16, embeddings_regularizer=R.L2(1e-5))(inp)
    a = L.MultiHeadAttention(2, 8, kernel_regularizer=R.L2(1e-4), bias_regularizer=R.L2(1e-5))(x, x)
    x = L.LayerNormalization(gamma_regularizer=R.L2(1e-4), beta_regularizer=R.L1(1e-5))(x + a)
    f = L.Dense(16, kernel_regularizer=R.L2(1e-4))(L.Dense(32, activation="gelu")(x))
    x = L.LayerNormalization(rms_scaling=True)(x + f)
    out = L.Dense(3)(L.GlobalAveragePooling1D()(x))
    return scce_logits(keras.Model(inp, out), OPT.AdamW(1e-3, weight_decay=0.01)), (tokens(vocab=60), cls3y())


@case("attention_layers", BASIC)
def _():
    q, v = keras.Input((5, 8)), keras.Input((7, 8))
    a = L.Attention(use_scale=True)([q, v])
    b = L.AdditiveAttention()([q, v])
    out = L.Dense(3)(L.Flatten()(L.Concatenate()([a, b])))
    return scce_logits(keras.Model([q, v], out)), None


@case("batchnorm_gamma_beta_regs", ALL)
def _():
    m = seq((8,), L.Dense(16, kernel_regularizer=R.L2(1e-3)),
            L.BatchNormalization(gamma_regularizer=R.L2(1e-4), beta_regularizer=R.L2(1e-4)), L.ReLU(), L.Dense(3))
    return scce_logits(m, OPT.SGD(0.1, momentum=0.9)), cls_data(16, (8,), 3)


@case("batchnorm_frozen_no_center_scale", BASIC)
def _():
    bn = L.BatchNormalization(center=False, scale=False)
    bn2 = L.BatchNormalization(gamma_regularizer=R.L2(1e-3))
    bn2.trainable = False
    m = seq((8,), L.Dense(16), bn, L.Dense(8), bn2, L.Dense(3))
    return scce_logits(m), cls_data(16, (8,), 3)


@case("group_unit_norm", BASIC)
def _():
    m = seq((8, 8, 4), L.Conv2D(8, 3, kernel_regularizer=R.L2(1e-4)),
            L.GroupNormalization(groups=4, gamma_regularizer=R.L2(1e-4), beta_regularizer=R.L1(1e-5)),
            L.Flatten(), L.UnitNormalization(), L.Dense(3))
    return scce_logits(m), data((8, 8, 4))


@case("prelu_alpha_reg_shared_axes", BASIC)
def _():
    m = seq((8, 8, 3), L.Conv2D(4, 3), L.PReLU(alpha_regularizer=R.L2(1e-3), shared_axes=[1, 2]), *head())
    return scce_logits(m), data((8, 8, 3))


@case("lambda_layer", ("keras", "h5"))
def _():
    m = seq((8,), L.Dense(8, kernel_regularizer=R.L2(1e-3)), L.Lambda(lambda t: t * 2.0), L.Dense(3))
    return scce_logits(m), None


@case("lambda_with_output_shape", ("keras",))
def _():
    m = seq((8,), L.Dense(8, kernel_regularizer=R.L2(1e-3)), L.Lambda(lambda t: t[:, :4], output_shape=(4,)),
            L.Dense(3))
    return scce_logits(m), None


@case("preprocessing_rescaling_normalization", ALL)
def _():
    norm = L.Normalization()
    norm.adapt(rng(1).rand(32, 6).astype("float32") * 10)
    m = seq((6,), L.Rescaling(1 / 10.0, offset=0.1), norm, L.Dense(8, kernel_regularizer=R.L2(1e-3)), L.Dense(3))
    return scce_logits(m), cls_data(16, (6,), 3)


@case("einsum_dense", BASIC)
def _():
    m = seq((5, 8), L.EinsumDense("abc,cd->abd", output_shape=(5, 6), bias_axes="d",
                                  kernel_regularizer=R.L2(1e-4), bias_regularizer=R.L2(1e-5)), *head())
    return scce_logits(m), data((5, 8))


@case("dense_lora", BASIC)
def _():
    m = mlp(kreg=lambda: R.L2(1e-3))
    m.layers[0].enable_lora(2)
    return scce_logits(m), cls_data(16, (8,), 3)


@case("activity_regularization_layer_dropout", BASIC)
def _():
    m = seq((8,), L.Dense(16), L.ActivityRegularization(l1=1e-4, l2=1e-3), L.Dropout(0.3), L.GaussianNoise(0.1),
            L.Dense(3))
    return scce_logits(m), cls_data(16, (8,), 3)


# ---------------------------------------------------------------------------
# regularizer kinds and placements
# ---------------------------------------------------------------------------
@case("orthogonal_rows_columns", BASIC)
def _():
    m = seq((8, 8, 3), L.Conv2D(6, 3), L.Flatten(),
            L.Dense(8, kernel_regularizer=R.OrthogonalRegularizer(0.02, mode="rows")),
            L.Dense(6, kernel_regularizer=R.OrthogonalRegularizer(0.01, mode="columns")), L.Dense(3))
    return scce_logits(m, OPT.SGD(0.01)), data((8, 8, 3))


@case("custom_regularizer_class", BASIC)
def _():
    return scce_logits(mlp(kreg=lambda: SweepL2(2e-3))), cls_data(16, (8,), 3)


@case("zero_regularizers", BASIC)
def _():
    m = seq((8,), L.Dense(8, kernel_regularizer=R.L2(0.0), bias_regularizer=R.L1L2(0.0, 0.0),
                          activity_regularizer=R.L1(0.0)), L.Dense(3, kernel_regularizer=R.L1(0.0)))
    return scce_logits(m, OPT.SGD(0.01)), cls_data(16, (8,), 3)


@case("string_regularizers", BASIC)
def _():
    m = seq((8,), L.Dense(8, kernel_regularizer="l2", bias_regularizer="l1", activity_regularizer="l1l2"),
            L.Dense(3, kernel_regularizer="L2"))
    return scce_logits(m), None


@case("every_placement_strong", ALL)
def _():
    inp = keras.Input((6, 6, 3))
    h = L.Conv2D(4, 3, kernel_regularizer=R.L2(0.05), bias_regularizer=R.L2(0.05), activity_regularizer=R.L2(0.01))(inp)
    h = L.BatchNormalization(gamma_regularizer=R.L2(0.05), beta_regularizer=R.L2(0.05))(h)
    h = L.DepthwiseConv2D(3, depthwise_regularizer=R.L1(0.01))(h)
    h = L.SeparableConv2D(4, 1, depthwise_regularizer=R.L2(0.05), pointwise_regularizer=R.L2(0.05))(h)
    h = L.PReLU(alpha_regularizer=R.L2(0.05))(L.Flatten()(h))
    return scce_logits(keras.Model(inp, L.Dense(3, kernel_regularizer=R.L1L2(0.01, 0.05))(h)), OPT.SGD(0.1)), \
        data((6, 6, 3))


@case("frozen_regularized_layer", BASIC)
def _():
    m = mlp(hidden=(16, 8), kreg=lambda: R.L2(1e-2))
    m.layers[0].trainable = False
    return scce_logits(m), cls_data(16, (8,), 3)


@case("huge_lambda", BASIC)
def _():
    return scce_logits(mlp(kreg=lambda: R.L2(1e6)), OPT.SGD(0.01)), None


@case("tiny_model_one_param_layer", BASIC)
def _():
    m = seq((1,), L.Dense(1, use_bias=False, kernel_regularizer=R.L2(1e-2)))
    m.compile(OPT.SGD(0.01), "mse")
    return m, (rng(1).rand(16, 1).astype("float32"), rng(2).rand(16, 1).astype("float32"))


# ---------------------------------------------------------------------------
# dtypes and mixed precision
# ---------------------------------------------------------------------------
@case("mixed_float16_policy", ALL)
def _():
    keras.mixed_precision.set_global_policy("mixed_float16")
    m = seq((8, 8, 3), L.Conv2D(4, 3, kernel_regularizer=R.L2(1e-4)), L.BatchNormalization(), L.Flatten(),
            L.Dense(3, dtype="float32"))
    return scce_logits(m), data((8, 8, 3))


@case("mixed_bfloat16_policy", BASIC)
def _():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    return scce_logits(mlp(kreg=lambda: R.L2(1e-3))), cls_data(16, (8,), 3)


@case("float16_weights", BASIC)
def _():
    keras.mixed_precision.set_global_policy("float16")
    m = mlp(kreg=lambda: R.L2(1e-3))
    m.compile(OPT.SGD(0.01), "mse")
    return m, None


@case("bfloat16_weights", BASIC)
def _():
    keras.mixed_precision.set_global_policy("bfloat16")
    m = mlp(kreg=lambda: R.L2(1e-3))
    m.compile(OPT.SGD(0.01), "mse")
    return m, None


@case("float64_model", BASIC)
def _():
    keras.backend.set_floatx("float64")
    m = mlp(kreg=lambda: R.L2(1e-3))
    return scce_logits(m), (cls_data(16, (8,), 3)[0].astype("float64"), cls_data(16, (8,), 3)[1])


# ---------------------------------------------------------------------------
# Keras Applications (weights=None, small inputs)
# ---------------------------------------------------------------------------
@case("app_mobilenetv3small", ("keras", "h5", "weights", "export"))
def _():
    m = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=10)
    m.compile(OPT.SGD(0.01, momentum=0.9), "categorical_crossentropy")
    return m, None


@case("app_efficientnetb0", ("keras", "h5"))
def _():
    m = keras.applications.EfficientNetB0(input_shape=(32, 32, 3), weights=None, classes=10)
    m.compile(OPT.AdamW(1e-3, weight_decay=1e-4), "categorical_crossentropy")
    x, y = cls_data(4, (32, 32, 3), 10)
    return m, (x * 255.0, onehot(y, 10))


@case("app_mobilenetv3small_l2_set_by_attribute", ("keras",))
def _():
    """The common recipe: set kernel_regularizer on each layer of a built model
    and save (the config holds it; only the reloaded model applies it)."""
    m = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=10, minimalistic=True)
    for layer in m.layers:
        if hasattr(layer, "kernel_regularizer"):
            layer.kernel_regularizer = R.L2(1e-4)
    m.compile(OPT.SGD(0.01, momentum=0.9), "categorical_crossentropy")
    return m, None


@case("export_mlp", ("export",))
def _():
    return scce_logits(mlp(kreg=lambda: R.L2(1e-3))), cls_data(16, (8,), 3)


@case("export_lstm_bn", ("export", "keras"))
def _():
    m = seq((6, 4), L.LSTM(8, kernel_regularizer=R.L2(1e-4)), L.BatchNormalization(), L.Dense(3))
    return scce_logits(m), data((6, 4))

