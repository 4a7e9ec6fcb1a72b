"""More Keras 3 cases for the robustness sweep: text and lookup
preprocessing (vocabularies in the archive's assets), newer layers
(GroupQueryAttention, RMSNormalization), constraints, quantization and
compile settings users pass along (registered into ``k3_cases.REG``)."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers as L
from keras import regularizers as R

from .common import cls_data, rng
from .k3_cases import ALL, BASIC, LS, OPT, REG, mlp

case = REG.case
WORDS = np.array(["the cat sat", "a dog ran far", "cats and dogs", "the end", "far away dogs sat"] * 4)


def scce(m, opt="adam"):
    m.compile(opt, LS.SparseCategoricalCrossentropy(from_logits=True))
    return m


@case("text_vectorization_embedding", ("keras",))
def _():
    vec = L.TextVectorization(max_tokens=30, output_sequence_length=6)
    vec.adapt(WORDS)
    inp = keras.Input((1,), dtype="string")
    h = L.Embedding(30, 8, embeddings_regularizer=R.L2(1e-4))(vec(inp))
    out = L.Dense(3, kernel_regularizer=R.L2(1e-4))(L.GlobalAveragePooling1D()(h))
    return scce(keras.Model(inp, out)), None


@case("lookup_and_hashing", ("keras", "h5"))
def _():
    lookup = L.StringLookup(vocabulary=["a", "b", "c"], output_mode="one_hot")
    inp_s = keras.Input((1,), dtype="string")
    inp_i = keras.Input((1,), dtype="int64")
    h = L.Concatenate()([lookup(inp_s), L.Hashing(8, output_mode="one_hot")(inp_i),
                         L.IntegerLookup(vocabulary=[1, 2, 3], output_mode="one_hot")(inp_i)])
    out = L.Dense(2, kernel_regularizer=R.L2(1e-3))(L.Flatten()(h))
    return scce(keras.Model([inp_s, inp_i], out)), None


@case("discretization_category_encoding", ("keras", "h5"))
def _():
    disc = L.Discretization(num_bins=4)
    disc.adapt(rng(1).rand(64, 3).astype("float32"))
    m = keras.Sequential([keras.Input((3,)), disc, L.CategoryEncoding(num_tokens=4, output_mode="multi_hot"),
                          L.Dense(3, kernel_regularizer=R.L2(1e-3))])
    return scce(m), None


@case("group_query_attention_rms_norm", ("keras", "h5", "weights"))
def _():
    inp = keras.Input((6, 16))
    a = L.GroupQueryAttention(head_dim=4, num_query_heads=4, num_key_value_heads=2,
                              kernel_regularizer=R.L2(1e-4))(inp, inp)
    h = L.RMSNormalization()(inp + a)
    return scce(keras.Model(inp, L.Dense(3)(L.GlobalAveragePooling1D()(h)))), cls_data(16, (6, 16), 3)


@case("constraints_max_norm", BASIC)
def _():
    m = keras.Sequential([keras.Input((8,)),
                          L.Dense(16, kernel_regularizer=R.L2(1e-3), kernel_constraint=keras.constraints.MaxNorm(2.0),
                                  bias_constraint=keras.constraints.NonNeg()),
                          L.Dense(3, kernel_constraint="unit_norm")])
    return scce(m, OPT.SGD(0.1)), cls_data(16, (8,), 3)


@case("quantized_int8", ("keras",))
def _():
    m = mlp(kreg=lambda: R.L2(1e-3))
    m.build((None, 8))
    m.quantize("int8")
    return scce(m), None


@case("sync_batchnorm_layer_policy", BASIC)
def _():
    m = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(4, 3, kernel_regularizer=R.L2(1e-4), dtype="mixed_float16"),
                          L.BatchNormalization(synchronized=True, gamma_regularizer=R.L2(1e-4)), L.Flatten(),
                          L.Dense(3, dtype="float32")])
    return scce(m), cls_data(16, (8, 8, 3), 3)


@case("compile_settings_jit_steps_per_execution", BASIC)
def _():
    m = mlp(kreg=lambda: R.L2(1e-3))
    m.compile(OPT.Adam(1e-3), LS.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
              weighted_metrics=["accuracy"], steps_per_execution=4, jit_compile=False)
    return m, cls_data(16, (8,), 3)


@case("mo_partial_loss_weights_dict", BASIC)
def _():
    inp = keras.Input((8,))
    h = L.Dense(8, activation="relu", kernel_regularizer=R.L2(1e-3))(inp)
    m = keras.Model(inp, {"a": L.Dense(3, name="a")(h), "b": L.Dense(1, name="b")(h), "c": L.Dense(2, name="c")(h)})
    m.compile("adam", {"a": LS.SparseCategoricalCrossentropy(from_logits=True), "b": "mse", "c": "mae"},
              loss_weights={"a": 2.0})
    return m, None


@case("nested_outputs_list_of_dicts", BASIC)
def _():
    inp = keras.Input((8,))
    h = L.Dense(8, kernel_regularizer=R.L2(1e-3))(inp)
    m = keras.Model(inp, [L.Dense(2, name="p")(h), L.Dense(1, name="q")(h)])
    m.compile("adam", loss=["mse", "mae"], loss_weights=[1.0, 0.5], metrics=[["mae"], ["mse"]])
    return m, None


@case("unzipped_folder", ("unzipped",))
def _():
    return scce(mlp(kreg=lambda: R.L2(1e-3))), cls_data(16, (8,), 3)


@case("every_regularizer_on_one_dense", ALL)
def _():
    m = keras.Sequential([keras.Input((8,)), L.Dense(4, kernel_regularizer=R.L1L2(1e-4, 1e-3),
                                                     bias_regularizer=R.L1L2(1e-5, 1e-4),
                                                     activity_regularizer=R.L1L2(1e-6, 1e-5))])
    m.compile(OPT.SGD(0.01), "mse")
    return m, (rng(1).rand(16, 8).astype("float32"), rng(2).rand(16, 4).astype("float32"))
