"""The checks ``reglint.lint()`` makes on its arguments: the command line's
and the config loader's own, so that a typo fails as loudly from Python as
from the shell, as a ValueError or TypeError with a one-line message, never
a silently empty run.

>>> selectors("RL001,penalty-dominates-loss", "select")
['RL001', 'RL001']
>>> selectors(["RL999"], "select")
Traceback (most recent call last):
...
ValueError: invalid rule code or prefix 'RL999' for 'select' (`reglint rules` lists them)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from reglint.errors import ConfigError


def model_paths(paths: tuple[Any, ...]) -> list[str]:
    """Each path as a string; TypeError for anything but ``str`` or
    ``os.PathLike`` (a list given as one argument, ``None``, bytes)."""
    out = []
    for path in paths:
        text = os.fspath(path) if isinstance(path, os.PathLike) else path
        if not isinstance(text, str):
            hint = "; unpack a list with lint(*paths)" if isinstance(path, (list, tuple)) else ""
            raise TypeError(f"reglint.lint() takes paths as str or os.PathLike arguments, got {path!r} "
                            f"({type(path).__name__}){hint}")
        out.append(text)
    return out


def selectors(value: Any, option: str, *, allow_empty: bool = True) -> list[str]:
    """Rule codes, prefixes or names as the CLI's ``--select`` takes them
    (``config.loader.parse_selectors``, as the CLI): a string is one value of the flag (``"RL001"``,
    ``"RL001,RL0"``), any other iterable holds such strings."""
    from reglint.config.loader import parse_selectors

    if isinstance(value, str):
        values = [value]
    elif isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        values = list(value)
    else:
        raise TypeError(f"{option} must be a list of rule codes or names, got {value!r} ({type(value).__name__})")
    for item in values:
        if not isinstance(item, str):
            raise TypeError(f"{option} must hold rule codes or names as strings, got {item!r} "
                            f"({type(item).__name__})")
    if not values:
        if allow_empty:
            return []
        raise ValueError(f"{option} is empty: it would run no rule; give codes or prefixes such as ['RL001', 'RL01']")
    try:
        return parse_selectors(values, option)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def thresholds(value: Any) -> dict[str, float]:
    """Rule options (``{"penalty-ratio-warning": 3}``) checked as
    ``[tool.reglint.lint.thresholds]`` is: known names, numbers."""
    from reglint.config.loader import _thresholds, _Where

    if not isinstance(value, Mapping):
        raise TypeError(f"thresholds must be a dict of rule option -> number, got {value!r} "
                        f"({type(value).__name__})")
    try:
        return _thresholds(_Where("", "reglint.lint()"), dict(value), "thresholds")
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def context_keys(context: dict[str, Any]) -> None:
    """The training-context keywords: known names (TypeError with a
    suggestion), not both ``epochs`` and ``steps``, and ``epochs`` only with
    ``samples`` (as the CLI)."""
    import difflib
    from dataclasses import fields

    from reglint.engine.analysis import TrainingContext

    known = [f.name for f in fields(TrainingContext)]
    for key in context:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise TypeError(f"reglint.lint() got an unknown keyword {key!r}"
                            + (f"; did you mean {close[0]!r}?" if close else f"; context keys: {', '.join(known)}"))
    if context.get("epochs") is not None and context.get("steps") is not None:
        raise ValueError("epochs and steps both set the training's length: give steps=T, or epochs=E with samples=N")
    if context.get("epochs") is not None and context.get("samples") is None:
        # as the CLI's --epochs: without N no length is known, and a silent no-op would mislead
        raise ValueError(f"epochs={context['epochs']} needs samples=N (training examples) to count steps; or give "
                         f"steps=T")
