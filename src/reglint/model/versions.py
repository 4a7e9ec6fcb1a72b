"""The writer's version as a model records it (``Model.framework_version``),
read as numbers where the readers and estimators need to tell Keras
releases apart."""

from __future__ import annotations

import re

_MAJOR_MINOR = re.compile(r"(\d+)\.(\d+)")


def major_minor(version: str | None) -> tuple[int, int] | None:
    """``(major, minor)`` of a version string, None when it has none.

    >>> major_minor("3.15.1"), major_minor("2.2.4-tf"), major_minor(None), major_minor("tf")
    ((3, 15), (2, 2), None, None)
    """
    match = _MAJOR_MINOR.match(version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def frozen_batch_norm_is_fixed(framework: str | None, version: str | None) -> bool:
    """Whether the Keras that wrote the file runs a frozen BatchNormalization
    in inference mode: Keras 3's ``BatchNormalization.call`` uses the batch's
    statistics only ``if training and self.trainable``
    (``keras/src/layers/normalization/batch_normalization.py``), as TF 2's
    tf.keras did from TF 2.0 (its ``_get_training_value`` returns False for a
    non-trainable layer under v2 behaviour). Multi-backend Keras (up to
    2.3.1) and TF 1's tf.keras normalised a frozen one with the batch's
    statistics; so may ``2.2.4-tf``, written by TF 1.13-1.15 and by TF
    2.0-2.1 alike, which is read as the former.

    >>> [frozen_batch_norm_is_fixed(f, v) for f, v in [("keras", "3.15.1"), ("keras", "3"),
    ...  ("tf.keras", "2.3.0-tf"), ("keras", "2.11.0"), ("tf.keras", "2.2.4-tf"), ("keras", "2.3.1"),
    ...  ("keras", "1.1.0"), ("keras", None)]]
    [True, True, True, True, False, False, False, True]
    """
    if not version:
        return framework != "tf.keras"  # a Keras 3 file without metadata (a .keras folder, a bare config)
    found = major_minor(version) or ((int(version), 0) if version.isdigit() else None)  # "3": a bare major
    if found is None:
        return False
    return found >= ((2, 3) if version.endswith("-tf") else (2, 4))
