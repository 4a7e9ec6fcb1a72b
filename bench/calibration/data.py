"""Data: scikit-learn's bundled sets, split 75/25 (stratified for
classification) with a fixed seed; features standardised with the training
split's mean and sd; diabetes targets standardised likewise.

- ``digits`` (10 classes, 1347 train), ``breast`` (binary, 426 train, sigmoid
  + binary cross-entropy), ``wine`` (3 classes, 133 train), ``diabetes``
  (regression, 331 train, MSE), ``synth`` (``make_classification``, 20
  classes, 40 features, 1500 train).

Views of one data set, by architecture: the feature vector (MLPs, BatchNorm
MLPs); an 8x8x1 image for digits and an (F, 1) signal otherwise (CNNs and
residual CNNs); quantile-bin tokens (Embedding); token sequences for
transformers and recurrent nets: digits' 8 pixel rows, otherwise the
features zero-padded to a multiple of 4 and cut into tokens of 4, each token
followed by a one-hot of its position (so attention can tell tokens apart).
"""

from __future__ import annotations

SPLIT_SEED = 0
N_BINS_EMB = 8
TOKEN_WIDTH = 4
SEQUENCE_ARCHS = ("tfm", "tfm_post", "lstm", "gru")
IMAGE_ARCHS = ("cnn", "res", "sep")

_DATA: dict[str, dict] = {}


def load_dataset(name: str) -> dict:
    """Train/validation arrays, standardised with the training split's stats."""
    if name in _DATA:
        return _DATA[name]
    import numpy as np
    from sklearn.model_selection import train_test_split

    X, y, task = _raw(name)
    strat = y if task != "regression" else None
    Xtr, Xva, ytr, yva = train_test_split(X, y, test_size=0.25, random_state=SPLIT_SEED, stratify=strat)
    mu, sd = Xtr.mean(0), Xtr.std(0)
    sd[sd == 0] = 1.0
    Xtr, Xva = (Xtr - mu) / sd, (Xva - mu) / sd
    if task == "regression":
        ym, ys = ytr.mean(), ytr.std()
        ytr, yva = ((ytr - ym) / ys).astype("float32"), ((yva - ym) / ys).astype("float32")
        classes, chance = None, 0.0
    else:
        ytr, yva = ytr.astype("int32"), yva.astype("int32")
        classes = int(max(ytr.max(), yva.max()) + 1)
        chance = float(np.bincount(yva, minlength=classes).max() / len(yva))
    tokens = _tokeniser(Xtr)
    data = {"name": name, "task": task, "classes": classes, "chance": chance,
            "Xtr": Xtr.astype("float32"), "Xva": Xva.astype("float32"), "ytr": ytr, "yva": yva,
            "Ttr": tokens(Xtr), "Tva": tokens(Xva), "features": X.shape[1]}
    _DATA[name] = data
    return data


def _raw(name: str):
    from sklearn import datasets

    if name == "digits":
        X, y = datasets.load_digits(return_X_y=True)
        return X, y, "multiclass"
    if name == "breast":
        X, y = datasets.load_breast_cancer(return_X_y=True)
        return X, y, "binary"
    if name == "wine":
        X, y = datasets.load_wine(return_X_y=True)
        return X, y, "multiclass"
    if name == "diabetes":
        X, y = datasets.load_diabetes(return_X_y=True)
        return X, y, "regression"
    if name == "synth":
        X, y = datasets.make_classification(n_samples=2000, n_features=40, n_informative=20, n_redundant=10,
                                            n_classes=20, n_clusters_per_class=1, class_sep=2.0,
                                            random_state=0)
        return X, y, "multiclass"
    raise ValueError(f"unknown dataset {name}")


def _tokeniser(Xtr):
    """Quantile bins for the embedding architecture."""
    import numpy as np

    F = Xtr.shape[1]
    edges = [np.quantile(Xtr[:, j], np.linspace(0, 1, N_BINS_EMB + 1)[1:-1]) for j in range(F)]
    offsets = np.arange(F) * N_BINS_EMB

    def tokens(A):
        return (np.stack([np.searchsorted(edges[j], A[:, j]) for j in range(F)], 1) + offsets).astype("int32")

    return tokens


def sequence_shape(data: dict) -> tuple[int, int]:
    """(tokens, width per token including the one-hot position)."""
    if data["name"] == "digits":
        steps, width = 8, 8
    else:
        steps = -(-data["features"] // TOKEN_WIDTH)
        width = TOKEN_WIDTH
    return steps, width + steps


def _sequences(data: dict, X):
    import numpy as np

    steps, total = sequence_shape(data)
    width = total - steps
    padded = np.zeros((X.shape[0], steps * width), dtype="float32")
    padded[:, : X.shape[1]] = X
    seq = padded.reshape(X.shape[0], steps, width)
    position = np.broadcast_to(np.eye(steps, dtype="float32"), (X.shape[0], steps, steps))
    return np.concatenate([seq, position], axis=2)


def inputs_for(data: dict, arch: str, split: str):
    X = data["Xtr"] if split == "train" else data["Xva"]
    if arch == "emb":
        return data["Ttr"] if split == "train" else data["Tva"]
    if arch in IMAGE_ARCHS:
        if data["name"] == "digits":
            return X.reshape(-1, 8, 8, 1)
        return X.reshape(X.shape[0], X.shape[1], 1)
    if arch in SEQUENCE_ARCHS:
        return _sequences(data, X)
    return X
