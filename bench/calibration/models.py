"""Keras models and optimizers for one run spec (glorot_uniform kernels, zero
biases, Keras defaults throughout).

Classic architectures: ``mlp_s`` 64-32, ``mlp_m`` 256-256, ``mlp_l``
512-512-512 (ReLU), ``cnn`` (digits: Conv2D 16-32 on 8x8x1; others: Conv1D
16-32 on the feature vector), ``bn`` (Dense 256 no-bias -> BatchNorm ->
ReLU, twice), ``emb`` (each feature quantised into 8 bins; Embedding(F*8, 8)
-> Flatten -> Dense 64).

Modern architectures (issue 15), all tiny:

- ``res``: a residual CNN with BatchNorm (Conv2D on digits' 8x8 image,
  Conv1D on the others): stem Conv(16, 3, no bias) -> BN -> ReLU, two
  blocks Conv -> BN -> ReLU -> Conv -> BN -> Add(skip) -> ReLU, global
  average pooling (image) or Flatten (tabular), Dense classifier.
- ``tfm``: a pre-norm transformer block on token sequences: Dense(32)
  token embedding; x + MHA(LN(x)); x + MLP(LN(x)) with a GELU hidden layer of
  64; final LN; average over tokens; Dense classifier.
- ``tfm_post``: the same block post-norm (LN(x + MHA(x)), LN(x + MLP(x))).
- ``lstm`` / ``gru``: LSTM(32) / GRU(32) over the token sequence, Dense
  classifier.

Fresh architectures (scored only, ``grid.FRESH_ARCHS``):

- ``sep``: a separable CNN with BatchNorm, MobileNet-style (2D on digits'
  image, 1D on the others): a plain stem Conv(16, 3, no bias) -> BN -> ReLU,
  then twice SeparableConv(32, 3, no bias) -> BN -> ReLU, Flatten, Dense
  classifier; the kernel placements regularize the stem's kernel and the
  depthwise and pointwise kernels. (Global pooling after two separable
  layers left digits' baseline at 31%.)
- ``mlp_ln``: twice Dense(64, with bias) -> LayerNorm -> ReLU, Dense
  classifier.

Placements: ``l2`` / ``l1`` / ``l1l2`` (kernel_regularizer on every kernel,
output layer included, recurrent kernels and attention projections
included, and embeddings_regularizer), ``bias`` (L2 on every bias),
``gamma`` (L2 on BatchNorm gamma), ``gamma_beta`` (L2 on gamma and beta of
every BatchNorm and LayerNorm), ``activity`` (L2 activity_regularizer on
every hidden layer), ``wd`` (optimizer ``weight_decay``, no regularizer
object), ``l2_wd`` (kernel L2 lambda and optimizer weight_decay lambda
together), ``none`` (lambda = 0 baseline).
"""

from __future__ import annotations

from .data import N_BINS_EMB, sequence_shape
from .grid import FRESH_ARCHS, MODERN_ARCHS, OPTIMIZERS, WD_PLACEMENTS


def regularizers_for(placement: str, lam: float) -> dict:
    """Regularizer per slot: kernel, bias, gamma, beta, activity."""
    from keras import regularizers

    kernel = {"l2": regularizers.L2, "l2_wd": regularizers.L2, "l1": regularizers.L1}.get(placement)
    slots = {"kernel": kernel(lam) if kernel else None, "bias": None, "gamma": None, "beta": None,
             "activity": None}
    if placement == "l1l2":
        slots["kernel"] = regularizers.L1L2(l1=lam, l2=lam)
    if placement == "bias":
        slots["bias"] = regularizers.L2(lam)
    if placement in ("gamma", "gamma_beta"):
        slots["gamma"] = regularizers.L2(lam)
    if placement == "gamma_beta":
        slots["beta"] = regularizers.L2(lam)
    if placement == "activity":
        slots["activity"] = regularizers.L2(lam)
    return slots


def build_model(data: dict, arch: str, placement: str, lam: float):
    """(uncompiled model, loss name)."""
    import keras

    regs = regularizers_for(placement, lam)
    body = _modern_body if arch in MODERN_ARCHS else _fresh_body if arch in FRESH_ARCHS else _classic_body
    inp, h = body(data, arch, regs)
    out, loss = _head(data, h, regs)
    return keras.Model(inp, out, name=f"{data['name']}_{arch}"), loss


def _dense(regs, units, activation="relu", use_bias=True, hidden=True):
    from keras import layers

    return layers.Dense(units, activation=activation, use_bias=use_bias, kernel_regularizer=regs["kernel"],
                        bias_regularizer=regs["bias"] if use_bias else None,
                        activity_regularizer=regs["activity"] if hidden else None)


def _head(data, h, regs):
    if data["task"] == "multiclass":
        return _dense(regs, data["classes"], activation="softmax", hidden=False)(h), "sparse_categorical_crossentropy"
    if data["task"] == "binary":
        return _dense(regs, 1, activation="sigmoid", hidden=False)(h), "binary_crossentropy"
    return _dense(regs, 1, activation=None, hidden=False)(h), "mse"


def _classic_body(data, arch, regs):
    import keras
    from keras import layers

    F = data["features"]
    if arch == "emb":
        inp = keras.Input((F,), dtype="int32")
    elif arch == "cnn":
        inp = keras.Input((8, 8, 1) if data["name"] == "digits" else (F, 1))
    else:
        inp = keras.Input((F,))
    h = inp
    if arch in ("mlp_s", "mlp_m", "mlp_l"):
        for w in {"mlp_s": (64, 32), "mlp_m": (256, 256), "mlp_l": (512, 512, 512)}[arch]:
            h = _dense(regs, w)(h)
    elif arch == "bn":
        for _ in range(2):
            h = _dense(regs, 256, activation=None, use_bias=False)(h)
            h = layers.BatchNormalization(gamma_regularizer=regs["gamma"])(h)
            h = layers.ReLU()(h)
    elif arch == "cnn":
        conv = layers.Conv2D if data["name"] == "digits" else layers.Conv1D
        kw = {"activation": "relu", "kernel_regularizer": regs["kernel"], "bias_regularizer": regs["bias"],
              "activity_regularizer": regs["activity"]}
        h = conv(16, 3, padding="same", **kw)(h)
        h = conv(32, 3, **kw)(h)
        h = layers.Flatten()(h)
    elif arch == "emb":
        h = layers.Embedding(F * N_BINS_EMB, 8, embeddings_regularizer=regs["kernel"])(h)
        h = layers.Flatten()(h)
        h = _dense(regs, 64)(h)
    else:
        raise ValueError(arch)
    return inp, h


def _modern_body(data, arch, regs):
    import keras

    if arch == "res":
        image = data["name"] == "digits"
        inp = keras.Input((8, 8, 1) if image else (data["features"], 1))
        return inp, _residual(inp, regs, image)
    inp = keras.Input(sequence_shape(data))
    if arch in ("lstm", "gru"):
        return inp, _recurrent(inp, regs, arch)
    return inp, _transformer(inp, regs, post_norm=arch == "tfm_post")


def _fresh_body(data, arch, regs):
    import keras
    from keras import layers

    if arch == "mlp_ln":
        inp = keras.Input((data["features"],))
        h = inp
        for _ in range(2):
            h = _dense(regs, 64, activation=None)(h)
            h = layers.ReLU()(layers.LayerNormalization(**_norm_kwargs(regs))(h))
        return inp, h
    image = data["name"] == "digits"
    inp = keras.Input((8, 8, 1) if image else (data["features"], 1))
    stem = layers.Conv2D if image else layers.Conv1D
    separable = layers.SeparableConv2D if image else layers.SeparableConv1D

    def bn_relu(x):
        return layers.ReLU()(layers.BatchNormalization(**_norm_kwargs(regs))(x))

    h = bn_relu(stem(16, 3, padding="same", use_bias=False, kernel_regularizer=regs["kernel"])(inp))
    for _ in range(2):
        h = bn_relu(separable(32, 3, padding="same", use_bias=False, depthwise_regularizer=regs["kernel"],
                              pointwise_regularizer=regs["kernel"])(h))
    return inp, layers.Flatten()(h)


def _norm_kwargs(regs):
    return {"gamma_regularizer": regs["gamma"], "beta_regularizer": regs["beta"]}


def _residual(h, regs, image: bool, width: int = 16, blocks: int = 2):
    from keras import layers

    conv_class = layers.Conv2D if image else layers.Conv1D

    def conv(x):
        return conv_class(width, 3, padding="same", use_bias=False, kernel_regularizer=regs["kernel"])(x)

    def bn(x):
        return layers.BatchNormalization(**_norm_kwargs(regs))(x)

    h = layers.ReLU()(bn(conv(h)))
    for _ in range(blocks):
        branch = layers.ReLU()(bn(conv(h)))
        branch = bn(conv(branch))
        h = layers.ReLU()(layers.Add()([h, branch]))
    # Global pooling for the image; a tabular signal's positions are
    # different features, which pooling would mix (synth fell to chance).
    return layers.GlobalAveragePooling2D()(h) if image else layers.Flatten()(h)


def _transformer(h, regs, *, post_norm: bool, width: int = 32):
    from keras import layers

    def ln(x):
        return layers.LayerNormalization(**_norm_kwargs(regs))(x)

    def attention(x):
        return layers.MultiHeadAttention(2, width // 2, kernel_regularizer=regs["kernel"],
                                         bias_regularizer=regs["bias"])(x, x)

    def mlp(x):
        x = _dense(regs, 2 * width, activation="gelu", hidden=False)(x)
        return _dense(regs, width, activation=None, hidden=False)(x)

    h = _dense(regs, width, activation=None, hidden=False)(h)
    if post_norm:
        h = ln(layers.Add()([h, attention(h)]))
        h = ln(layers.Add()([h, mlp(h)]))
    else:
        h = layers.Add()([h, attention(ln(h))])
        h = layers.Add()([h, mlp(ln(h))])
        h = ln(h)
    return layers.GlobalAveragePooling1D()(h)


def _recurrent(h, regs, arch: str, units: int = 32):
    from keras import layers

    cell = layers.LSTM if arch == "lstm" else layers.GRU
    return cell(units, kernel_regularizer=regs["kernel"], recurrent_regularizer=regs["kernel"],
                bias_regularizer=regs["bias"])(h)


def build_optimizer(opt: str, placement: str, lam: float):
    import keras

    cls, kwargs, _ = OPTIMIZERS[opt]
    kwargs = dict(kwargs)
    if placement in WD_PLACEMENTS:
        kwargs["weight_decay"] = lam
    return getattr(keras.optimizers, cls)(**kwargs), kwargs
