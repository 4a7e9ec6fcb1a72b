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
