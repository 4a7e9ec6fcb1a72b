"""What the bounded-output data-loss scale changes on a real training.

MSE behind a sigmoid was read as standardised targets (scale 1); it is now
the widest target variance the output can fit, 0.25 (review 46). This trains
a 128-128-1 ReLU MLP with MSE on a sigmoid, breast cancer's 0/1 labels
(variance 0.23), L2 0 to 1 on every kernel, under Adam(1e-3) and SGD(0.03,
momentum 0.9), 30 epochs, and saves each model (untrained, as compiled) for
reglint to judge:

    .venv/bin/python bench/mse_sigmoid_check.py            # ~1 min on 2 cores
    .venv/bin/reglint check bench/out/mse_sigmoid/*.keras

Outcomes use the grid's rule against the lambda-0 run: collapsed within 5
points of the majority class, degraded below 90% of the baseline's margin.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
OUT = HERE / "out" / "mse_sigmoid"


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import keras
    import numpy as np
    from calibration.data import load_dataset
    from keras import layers as L
    from keras import regularizers as R

    OUT.mkdir(parents=True, exist_ok=True)
    data = load_dataset("breast")
    X, y, Xv, yv = data["Xtr"], data["ytr"].astype("float32"), data["Xva"], data["yva"]
    chance = float(max(np.mean(yv), 1 - np.mean(yv)))
    for opt in ("adam", "sgd_m"):
        base = None
        for lam in (0.0, 0.01, 0.03, 0.1, 0.3, 1.0):
            keras.utils.set_random_seed(1000)
            reg = R.L2(lam) if lam else None
            m = keras.Sequential([keras.Input((X.shape[1],)),
                                  L.Dense(128, activation="relu", kernel_regularizer=reg),
                                  L.Dense(128, activation="relu", kernel_regularizer=reg),
                                  L.Dense(1, activation="sigmoid", kernel_regularizer=reg)])
            m.compile(keras.optimizers.Adam(1e-3) if opt == "adam" else keras.optimizers.SGD(0.03, momentum=0.9),
                      "mse")
            m.save(OUT / f"{opt}-{lam:g}.keras")
            m.fit(X, y, batch_size=32, epochs=30, verbose=0)
            acc = float(np.mean((m.predict(Xv, verbose=0)[:, 0] > 0.5) == yv))
            base = base or acc
            outcome = ("collapsed" if acc <= chance + 0.05 else
                       "degraded" if acc < base - 0.1 * (base - chance) else "healthy")
            print(f"{opt:6} L2 {lam:<5g} accuracy {acc:.3f} {outcome}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
