"""Does decay on BatchNorm-fed kernels wreck *evaluation* through stale
moving statistics? (review 42, 1: a residual CNN under SGD(0.1, momentum
0.9) with conv L2 1e-2 trained to 0.234 validation accuracy against 0.962
unregularized, and 0.902 once BatchNorm's moving statistics were recomputed
on the training set, the weights unchanged.)

At rotational equilibrium a BatchNorm-fed kernel turns ``theta =
sqrt(4*lr*l2/(1+m))`` rad per step (RL021); BatchNorm's moving averages
span ``W = 1/(1 - bn_momentum)`` steps (100 at Keras' default 0.99), over
which the kernel turns about ``phi = theta*sqrt(W)`` (a random walk). The
grid varies the L2, BatchNorm's momentum (0.99, Keras' default; 0.9,
PyTorch's default 0.1 in Keras' convention) and the schedule (constant lr;
cosine to 0, which stops the rotation at the end), two seeds, and records
the validation accuracy as Keras evaluates it (moving statistics) and
after recomputing the statistics on the training set.

    .venv/bin/python bench/bn_rotation_lag.py run --out bench/out/bn_lag.jsonl   # 56 runs, ~15 min on one core
    .venv/bin/python bench/bn_rotation_lag.py table --out bench/out/bn_lag.jsonl

The task and the model are review 42's: 16x16x3 blocky templates of 10
classes shifted by up to 3 pixels under noise 2.5 (2,000 training, 1,000
validation examples), a residual CNN (16 and 32 filters, one block each,
BatchNorm after every conv, global pooling, softmax head), 12 epochs of
batch 64 (32 steps per epoch, 384 steps).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

LAMBDAS = (0.0, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
MOMENTA = (0.99, 0.9)
SCHEDULES = ("constant", "cosine")
SEEDS = (0, 1)
LR, MOMENTUM, EPOCHS, BATCH = 0.1, 0.9, 12, 64


def data(classes: int = 10, noise: float = 2.5):
    import numpy as np

    rng = np.random.default_rng(1234)
    templates = rng.normal(size=(classes, 4, 4, 3)).repeat(4, axis=1).repeat(4, axis=2)

    def make(n, r):
        y = r.integers(0, classes, n)
        x = templates[y].copy()
        for i in range(n):
            dx, dy = r.integers(-3, 4, 2)
            x[i] = np.roll(np.roll(x[i], dx, 0), dy, 1)
        x += noise * r.normal(size=x.shape)
        return x.astype("float32"), y.astype("int32")

    r = np.random.default_rng(99)
    return make(2000, r), make(1000, r)


def model(l2: float, bn_momentum: float):
    import keras
    from keras import layers

    def reg():
        return keras.regularizers.L2(l2) if l2 else None

    def norm():
        return layers.BatchNormalization(momentum=bn_momentum)

    inputs = keras.Input((16, 16, 3))
    x = layers.ReLU()(norm()(layers.Conv2D(16, 3, padding="same", use_bias=False, kernel_regularizer=reg())(inputs)))
    for index, filters in enumerate((16, 32)):
        stride = 2 if index else 1
        y = layers.ReLU()(norm()(layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                                               kernel_regularizer=reg())(x)))
        y = norm()(layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_regularizer=reg())(y))
        shortcut = x
        if stride != 1 or x.shape[-1] != filters:
            shortcut = norm()(layers.Conv2D(filters, 1, strides=stride, use_bias=False, kernel_regularizer=reg())(x))
        x = layers.ReLU()(layers.Add()([y, shortcut]))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax", kernel_regularizer=reg())(x))


def one(l2: float, bn_momentum: float, schedule: str, seed: int, train, val) -> dict:
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    keras.utils.set_random_seed(seed)
    net = model(l2, bn_momentum)
    steps = EPOCHS * math.ceil(len(train[0]) / BATCH)
    lr = keras.optimizers.schedules.CosineDecay(LR, steps) if schedule == "cosine" else LR
    net.compile(keras.optimizers.SGD(lr, momentum=MOMENTUM), "sparse_categorical_crossentropy",
                metrics=["accuracy"])
    net.fit(*train, batch_size=BATCH, epochs=EPOCHS, verbose=0)
    moving = float(net.evaluate(*val, verbose=0)[1])
    for layer in net.layers:  # the statistics of the final weights, on the training set
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    net(train[0], training=True)
    recomputed = float(net.evaluate(*val, verbose=0)[1])
    theta = math.sqrt(4 * LR * l2 / (1 + MOMENTUM))
    return {"l2": l2, "bn_momentum": bn_momentum, "schedule": schedule, "seed": seed, "steps": steps,
            "theta": theta, "phi": theta * math.sqrt(1 / (1 - bn_momentum)), "val_moving": moving,
            "val_recomputed": recomputed}


def run(out: str) -> None:
    train, val = data()
    done = set()
    if os.path.exists(out):
        with open(out) as handle:
            done = {(r["l2"], r["bn_momentum"], r["schedule"], r["seed"]) for r in map(json.loads, handle)}
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    for seed in SEEDS:
        for schedule in SCHEDULES:
            for bn_momentum in MOMENTA:
                for l2 in LAMBDAS:
                    if (l2, bn_momentum, schedule, seed) in done:
                        continue
                    row = one(l2, bn_momentum, schedule, seed, train, val)
                    with open(out, "a") as handle:
                        handle.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)


def table(out: str) -> None:
    with open(out) as handle:
        rows = [json.loads(line) for line in handle]
    base = {(r["bn_momentum"], r["schedule"], r["seed"]): r["val_moving"] for r in rows if r["l2"] == 0}
    print("| L2 | theta | BN momentum | phi | schedule | val (moving stats), seeds | recomputed | margin lost |")
    print("|---|---|---|---|---|---|---|---|")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["l2"], r["bn_momentum"], r["schedule"]), []).append(r)
    for (l2, bn, schedule), same in sorted(groups.items()):
        lost = [1 - (r["val_moving"] - 0.1) / max(1e-9, base[(bn, schedule, r["seed"])] - 0.1) for r in same]
        moving = ", ".join(f"{r['val_moving']:.3f}" for r in same)
        recomputed = ", ".join(f"{r['val_recomputed']:.3f}" for r in same)
        margins = ", ".join(f"{x:.0%}" for x in lost)
        print(f"| {l2:g} | {same[0]['theta']:.3f} | {bn:g} | {same[0]['phi']:.2f} | {schedule} | {moving} | "
              f"{recomputed} | {margins} |")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=("run", "table"))
    parser.add_argument("--out", default="bench/out/bn_lag.jsonl")
    args = parser.parse_args(argv)
    (run if args.command == "run" else table)(args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
