"""Width at a fixed lambda: do the static error levels follow the lambda or the model's size?

The practitioner's question ("should lambda shrink as the model grows?") as a check on the rules,
outside the calibration grid: ReLU MLPs with two hidden layers of 32, 128 and 512 units, L2 0, 0.03,
0.1 and 0.3 on every kernel, under SGD(0.01, momentum 0.9) and Adam(1e-3), 30 epochs at batch 32
on breast cancer, digits and wine (75/25 split, standardised; seed 11). Each model is saved
untrained, trained with ``fit``, and linted with its samples, batch size and epochs; the outcome
rule is the calibration grid's (collapsed within 5 points of the majority class, degraded below
the lambda = 0 run by 10% of its margin)::

    .venv/bin/pip install -e ".[test]"            # TensorFlow, Keras, scikit-learn
    nice .venv/bin/python bench/width_check.py    # ~6 min on 2 cores; files under bench/out/width/
    .venv/bin/python bench/width_check.py --lint-only   # re-lint the saved files with today's rules

Prints one row per run: data set, width, optimizer, lambda, validation accuracy, outcome,
RL001's penalty ratio and the codes of the error findings.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "width"
WIDTHS = (32, 128, 512)
LAMBDAS = (0.0, 0.03, 0.1, 0.3)
EPOCHS, BATCH = 30, 32


def data(name: str):
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = {"digits": load_digits, "wine": load_wine, "breast": load_breast_cancer}[name](return_X_y=True)
    xa, xb, ya, yb = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    scale = StandardScaler().fit(xa)
    return scale.transform(xa).astype("float32"), scale.transform(xb).astype("float32"), ya, yb


def build(keras, n_in: int, classes: int, width: int, lam: float, opt: str):
    from keras import layers, regularizers

    def reg():
        return regularizers.L2(lam) if lam else None

    model = keras.Sequential([keras.Input((n_in,))]
                             + [layers.Dense(width, activation="relu", kernel_regularizer=reg()) for _ in range(2)]
                             + [layers.Dense(classes, activation="softmax", kernel_regularizer=reg())])
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9) if opt == "sgd" else keras.optimizers.Adam(1e-3)
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def lint(path: Path, samples: int) -> tuple[float | None, list[str]]:
    from reglint.engine.analysis import TrainingContext
    from reglint.engine.runner import lint_file
    from reglint.engine.settings import Settings

    report = lint_file(str(path), Settings(context=TrainingContext(samples=samples, batch_size=BATCH,
                                                                   epochs=EPOCHS)))
    rho = report.analysis.penalty_ratio() if report.analysis is not None else None
    return rho, sorted({f.code for f in report.findings if f.severity.value == "error"})


def outcome(acc: float, base: float, chance: float) -> str:
    if acc <= chance + 0.05:
        return "collapsed"
    return "degraded" if acc < base - 0.10 * (base - chance) else "healthy"


HEADER = ("| data | width | optimizer | L2 | val acc | outcome | RL001 rho | errors |\n"
          "|---|---|---|---|---|---|---|---|")


def row_line(row: dict) -> str:
    rho = row["rho"]
    shown = "-" if rho is None or math.isnan(rho) else f"{rho:.1f}"
    return (f"| {row['data']} | {row['width']} | {row['optimizer']} | {row['l2']} | {row['val_acc']:.3f} | "
            f"{row['outcome']} | {shown} | {', '.join(row['errors']) or '-'} |")


def relint() -> int:
    """The saved runs (rows.json) linted again with today's rules, and the
    error findings scored against their outcomes."""
    rows = json.loads((OUT / "rows.json").read_text())
    print(HEADER)
    for row in rows:
        samples = len(data(row["data"])[0])
        row["rho"], row["errors"] = lint(OUT / f"{row['data']}-{row['width']}-{row['optimizer']}-{row['l2']}.keras",
                                         samples)
        print(row_line(row))
    runs = [r for r in rows if r["l2"]]
    flagged = [r for r in runs if r["errors"]]
    collapsed = [r for r in runs if r["outcome"] == "collapsed"]
    healthy = [r for r in runs if r["outcome"] == "healthy"]
    print(f"\nerror findings: {len(flagged)} runs, {sum(r['outcome'] == 'collapsed' for r in flagged)} collapsed; "
          f"collapses caught {sum(bool(r['errors']) for r in collapsed)} of {len(collapsed)}; healthy runs flagged "
          f"{sum(bool(r['errors']) for r in healthy)} of {len(healthy)}")
    return 0


def main() -> int:
    if "--lint-only" in sys.argv[1:]:
        return relint()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    keras.utils.set_random_seed(11)
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    print(HEADER)
    for name in ("breast", "digits", "wine"):
        xa, xb, ya, yb = data(name)
        classes, chance = int(ya.max() + 1), float(np.bincount(yb).max() / len(yb))
        for width in WIDTHS:
            for opt in ("sgd", "adam"):
                base = None
                for lam in LAMBDAS:
                    model = build(keras, xa.shape[1], classes, width, lam, opt)
                    path = OUT / f"{name}-{width}-{opt}-{lam}.keras"
                    model.save(path)
                    hist = model.fit(xa, ya, epochs=EPOCHS, batch_size=BATCH, verbose=0, validation_data=(xb, yb))
                    acc = float(hist.history["val_accuracy"][-1])
                    base = acc if base is None else base
                    rho, errors = lint(path, len(xa))
                    label = "baseline" if lam == 0 else outcome(acc, base, chance)
                    rows.append({"data": name, "width": width, "optimizer": opt, "l2": lam, "val_acc": acc,
                                 "outcome": label, "rho": rho, "errors": errors})
                    print(row_line(rows[-1]), flush=True)
    (OUT / "rows.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
