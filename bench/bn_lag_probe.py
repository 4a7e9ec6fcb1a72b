"""Does a penalized BatchNorm network fail only in inference mode? Trains one
saved model of the calibration grid from its file with its own optimizer and
scores the validation split every ``--every`` steps twice: with BatchNorm's
moving statistics (inference, what a saved model predicts with) and with the
batch's own statistics (training mode; the moving statistics are put back
after each such score). bench/CALIBRATION.md, "The fresh grid", quotes it::

    .venv/bin/python bench/bn_lag_probe.py breast-sep-adamw-wd-10 --out bench/out/fresh --steps 420

Needs the grid's folder (``calibrate.py train`` or ``models``). One line per
record: step, inference accuracy, batch-statistics accuracy, and each
BatchNorm's mean moving variance.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_id")
    parser.add_argument("--out", default=str(HERE / "out" / "fresh"))
    parser.add_argument("--steps", type=int, default=420)
    parser.add_argument("--every", type=int, default=21)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf
    from calibration.data import inputs_for, load_dataset

    dataset, arch = args.run_id.split("-")[:2]
    data = load_dataset(dataset)
    x, xv = inputs_for(data, arch, "train"), inputs_for(data, arch, "val")
    y, yv = data["ytr"], data["yva"]
    model = keras.saving.load_model(Path(args.out) / "models" / f"{args.run_id}.keras")
    loss_fn = keras.losses.get(model.loss)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    moving = [v for layer in norms for v in (layer.moving_mean, layer.moving_variance)]

    def accuracy(training: bool) -> float:
        kept = [v.numpy() for v in moving]
        p = model(xv, training=training).numpy()
        for v, value in zip(moving, kept, strict=True):
            v.assign(value)
        return float(((p[:, 0] > 0.5) == yv).mean() if p.shape[1] == 1 else (p.argmax(1) == yv).mean())

    rng, step = np.random.default_rng(0), 0
    while step < args.steps:
        order = rng.permutation(len(y))
        for i in range(0, len(y) - 31, 32):
            idx = order[i:i + 32]
            yb = y[idx].reshape(-1, 1).astype("float32") if model.output_shape[-1] == 1 else y[idx]
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(loss_fn(yb, model(x[idx], training=True)))
                if model.losses:
                    loss += tf.add_n(model.losses)
            grads = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            step += 1
            if step % args.every == 0:
                variances = [round(float(np.mean(layer.moving_variance.numpy())), 4) for layer in norms]
                print(step, round(accuracy(False), 3), round(accuracy(True), 3), variances, flush=True)
            if step >= args.steps:
                break
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
