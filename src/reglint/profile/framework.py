"""Which framework ``reglint profile`` runs Keras 3 on, and the import.

``resolve_backend`` answers from ``--backend``, ``KERAS_BACKEND`` and what
is installed without importing anything, so a refusal (JAX, nothing
installed) is one line before any slow import; ``load_backend`` imports
Keras only after setting ``KERAS_BACKEND``, which Keras reads once per
process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from reglint.profile import ProfileError
from reglint.profile.backend import BACKENDS, CHOICES, EXTRAS, UNSUPPORTED, Backend, installed, running_backend


def resolve_backend(option: str | None, environ: Mapping[str, str] | None = None,
                    modules: Mapping[str, Any] | None = None) -> str:
    """``tensorflow`` or ``torch`` for ``--backend`` (auto, tensorflow,
    torch), without importing either:

    - Keras already imported in this process: its backend (an explicit
      ``--backend`` that disagrees is refused: Keras cannot switch);
    - ``--backend tensorflow|torch``: that one;
    - auto: ``KERAS_BACKEND`` when set, else TensorFlow when it and Keras are
      installed, else PyTorch likewise, else a one-line error naming both extras.

    JAX (and Keras' other backends) is refused in one line."""
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    choice = (option or "auto").strip().lower()
    if choice in UNSUPPORTED:
        raise ProfileError(_unsupported(choice, "--backend"))
    if choice not in CHOICES:
        raise ProfileError(f"--backend must be one of {', '.join(CHOICES)}, not {option!r}")
    keras = modules.get("keras")
    if keras is not None:
        running = running_backend(keras)
        if running in UNSUPPORTED:
            raise ProfileError(_unsupported(running, "Keras is already running on it in this process"))
        if running in BACKENDS:
            if choice not in ("auto", running):
                raise ProfileError(f"--backend {choice}: Keras is already running on {running} in this process "
                                   f"and cannot switch")
            return running
    if choice != "auto":
        return choice
    requested = environ.get("KERAS_BACKEND", "").strip().lower()
    if requested in UNSUPPORTED or (requested and requested not in BACKENDS):
        raise ProfileError(_unsupported(requested, "KERAS_BACKEND"))
    if requested:
        return requested
    for name in BACKENDS:
        if installed(name) and installed("keras"):
            return name
    raise ProfileError(f"reglint profile needs Keras 3 with TensorFlow or PyTorch; install one: "
                       f"`pip install '{EXTRAS['tensorflow']}'` or `pip install '{EXTRAS['torch']}'`")


def _unsupported(name: str, where: str) -> str:
    return (f"reglint profile runs on Keras' TensorFlow or torch backend, not {name} ({where}); "
            f"set KERAS_BACKEND=tensorflow or torch, or pass --backend tensorflow|torch")


def load_backend(name: str) -> Backend:
    """Import Keras on backend ``name`` (``resolve_backend``'s answer):
    ``KERAS_BACKEND`` is set first, unless Keras is already imported."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = name
    if name == "torch":
        from reglint.profile.backend_torch import load_torch_backend

        return load_torch_backend()
    from reglint.profile.backend_tf import load_tensorflow_backend

    return load_tensorflow_backend()
