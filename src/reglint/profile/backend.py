"""The seam between ``reglint profile``'s measurement and the framework
Keras 3 runs on: TensorFlow (``backend_tf``) or PyTorch (``backend_torch``).

Everything framework-specific the measurement needs goes through a
``Backend``: the gradients of the data loss and of the penalty per
variable, one optimizer step of ``L + P`` returning the data loss, the
penalty, two norms and the angular update, norms and copies of tensors,
the device (which exist, and the scope that places the model there) and
clearing the session. The rest of ``reglint.profile`` is written once
against Keras' own API (``model(x, training=...)``, ``model.losses``,
``var.assign``, optimizers), which behaves the same on both.

Which backend runs, and the import, are ``framework``'s.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from reglint.profile import ProfileError

BACKENDS = ("tensorflow", "torch")
CHOICES = ("auto", *BACKENDS)
# What to install for each backend (pyproject's extras).
EXTRAS = {"tensorflow": "reglint[profile]", "torch": "reglint[profile-torch]"}
# Keras 3 backends profile does not run on (its step and gradients are
# written for TensorFlow and PyTorch; JAX's functional state is another design).
UNSUPPORTED = ("jax", "numpy", "openvino")

# (device handle for the backend's scope, readable name, kind: cpu or gpu)
Device = tuple[str, str, str]


class Backend:
    """What the measurement asks of the framework under Keras. Subclasses:
    ``backend_tf.TensorFlowBackend``, ``backend_torch.TorchBackend``.
    Tensors go in and out as the framework's own; ``fetch`` and the float
    conversions are where values cross to the host."""

    name: str = ""

    def __init__(self, keras: Any):
        self.keras = keras

    # -- device and session --------------------------------------------------

    def select_device(self, device: str) -> Device:
        """(handle, readable name, kind) for auto/cpu/gpu; gpu without one
        is a ProfileError."""
        raise NotImplementedError

    def device_scope(self, handle: str) -> AbstractContextManager[Any]:
        """Variables created and ops run inside it live on ``handle``."""
        raise NotImplementedError

    def clear_session(self) -> None:
        self.keras.backend.clear_session()

    def set_seed(self, seed: int) -> None:
        """Python's, numpy's, the framework's and Keras' seeds."""
        self.keras.utils.set_random_seed(seed)

    # -- values ----------------------------------------------------------------

    def scalar(self, value: Any) -> float:
        """A 0-d tensor (or a Python number) as a float."""
        raise NotImplementedError

    def norm(self, value: Any) -> float:
        """The Frobenius norm of a tensor or variable, in float32."""
        raise NotImplementedError

    def global_norm(self, variables: list) -> float:
        """sqrt(sum ||v||^2) over the variables (0 without any)."""
        raise NotImplementedError

    def copy(self, value: Any) -> Any:
        """A copy of a tensor or a variable's value, detached from it."""
        raise NotImplementedError

    def dense(self, grad: Any, var: Any) -> Any:
        """A gradient as a dense tensor shaped like ``var`` (zeros for None)."""
        raise NotImplementedError

    def fetch(self, out: Any) -> np.ndarray:
        """A train step's output on the host (waits for the device)."""
        raise NotImplementedError

    # -- the measurement ----------------------------------------------------------

    def forward_backward(self, model, loss, x, y, trainable: list) -> tuple[float, float, list, list]:
        """(L, P, dL/dw, dP/dw) on one batch in training mode; a gradient
        may be None (no path to the variable) or sparse."""
        raise NotImplementedError

    def apply_gradients(self, opt, grads: list, variables: list) -> None:
        """One eager optimizer update with these gradients."""
        raise NotImplementedError

    def loss_scale_factor(self, opt) -> float:
        """Gradients handed to a LossScaleOptimizer (or an optimizer with
        ``loss_scale_factor``) must be scaled like the loss it would scale."""
        raise NotImplementedError

    def make_train_step(self, model, opt, loss, trainable: list, tracked: list,
                        invariant: list) -> Callable[[Any, Any], Any]:
        """One optimizer step of L + P; its output, through ``fetch``, is
        [L, P, ||tracked||, ||trainable||, mean angle of ``invariant``]
        (``run.make_train_step`` documents the contract). ``P`` is whatever
        ``model.losses`` holds when the step runs (TensorFlow: when it is
        traced)."""
        raise NotImplementedError

    def make_evaluate(self, model, loss) -> Callable[[Any, Any], tuple[Any, Any]]:
        """(data loss, predictions) in inference mode, both convertible by
        ``float`` and ``np.asarray``."""
        raise NotImplementedError

    def probe_loss(self, model, loss, x, y) -> float:
        """The data loss on one batch in training mode."""
        raise NotImplementedError


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked or half-installed package
        return False


def running_backend(keras: Any) -> str | None:
    """The backend an imported Keras runs on (None if it cannot say)."""
    try:
        return str(keras.backend.backend())
    except Exception:  # a half-imported or foreign "keras" module
        return None


def check_running(keras: Any, name: str) -> None:
    """Keras on the backend asked for, else a one-line error."""
    running = running_backend(keras)
    if running != name:
        raise ProfileError(f"reglint profile asked for Keras' {name} backend; Keras is already using "
                           f"{running} (set KERAS_BACKEND={name})")


def missing(name: str, exc: BaseException) -> ProfileError:
    """The error for a backend that cannot be imported."""
    what = {"tensorflow": "TensorFlow and Keras 3", "torch": "PyTorch and Keras 3"}[name]
    return ProfileError(f"reglint profile on the {name} backend needs {what} ({exc}); install them with "
                        f"`pip install '{EXTRAS[name]}'`")
