"""Keras 3 on PyTorch for ``reglint profile``: ``torch.autograd.grad`` on
the Keras variables' tensors (``variable.value`` is a
``torch.nn.Parameter``) for the gradients, Keras' own optimizer
``apply(grads, variables)`` under ``torch.no_grad`` for the steps (as
Keras' torch trainer does), ``keras.device`` for placement (``cuda:0``
or ``cpu``: variables are created on the device in scope when the model
is loaded).

The step runs eagerly: no tracing, so the penalty it sees is whatever
``model.losses`` holds at each call (the twin's regularizers are removed
around its steps, ``twin.penalties_removed``). Keras' torch layers cost a
few milliseconds of Python per step even for a tiny model.

PyTorch is imported only inside ``load_torch_backend``.
"""

from __future__ import annotations

import os
import sys
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from reglint.profile import ProfileError
from reglint.profile.backend import Backend, Device, check_running, installed, missing
from reglint.profile.load import cpu_description, quiet_native_stderr

# OpenMP's wait policy for PyTorch's CPU threads, unless the user set one.
# libgomp's default spins an idle thread 300,000 times before it sleeps, at
# every gap between parallel regions: on a shared 2-core runner, 100 steps of
# a 6,570-parameter MLP took 1.3-10 s (once 28 s) instead of 0.4 s with
# PASSIVE (no spin) or one thread; a 95k-parameter conv net kept its two
# threads' gain with PASSIVE (6.2-6.8 s; spinning 6.0-6.3 s, 27 s under
# load; one thread 10.3-10.8 s).
# bench/backend_wall.py --threads measures the three.
OMP_WAIT_POLICY = "PASSIVE"


def load_torch_backend() -> TorchBackend:
    """Keras on PyTorch (``KERAS_BACKEND`` is set by the caller).
    ``OMP_WAIT_POLICY`` is set first (PASSIVE unless set): the OpenMP
    runtime PyTorch loads reads it once, at load."""
    os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
    try:
        with quiet_native_stderr():
            import keras
            import torch
    except ImportError as exc:
        raise missing("torch", exc) from None
    _tensorflow_quietly()
    check_running(keras, "torch")
    return TorchBackend(torch, keras)


def _tensorflow_quietly() -> None:
    """Import TensorFlow now, silenced, when it is installed beside PyTorch:
    Keras on torch imports it lazily wherever it checks for TensorFlow types
    (``keras.utils.set_random_seed``, optimizer and legacy HDF5 configs), and
    its C++ start-up lines would reach stderr mid-run. Without TensorFlow
    (the usual PyTorch install) this does nothing."""
    if "tensorflow" in sys.modules or not installed("tensorflow"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with quiet_native_stderr():
            import tensorflow as tf
        tf.get_logger().setLevel("ERROR")
    except Exception:  # a broken TensorFlow: Keras will find it unavailable too
        return


def select_device(torch, device: str) -> Device:
    """(torch device string, readable name, kind) for auto/cpu/gpu: the
    first CUDA device for auto and gpu when PyTorch sees one."""
    device = (device or "auto").lower()
    if device not in ("auto", "cpu", "gpu"):
        raise ProfileError(f"--device must be auto, cpu or gpu, not {device!r}")
    available = bool(torch.cuda.is_available())
    if device == "gpu" and not available:
        raise ProfileError("--device gpu: PyTorch sees no CUDA GPU on this machine (use --device cpu or auto)")
    if available and device in ("auto", "gpu"):
        full_float32(torch)
        try:
            name = torch.cuda.get_device_name(0)
        except Exception:  # the name is cosmetic
            name = "cuda:0"
        return "cuda:0", f"GPU 0: {name}", "gpu"
    return "cpu", cpu_description(), "cpu"


def full_float32(torch) -> None:
    """float32 convolutions and matrix products in IEEE float32, not TF32.
    PyTorch runs cuDNN convolutions in TF32 (10-bit mantissa) by default on
    Ampere and later: on an H200 the per-layer ratios |g_pen|/|g_data| of
    a 16-layer residual CNN then differed from the CPU's by 0.8%, of an
    untrained ResNet50 by 5% (bench/GPU_CHECK.md), so one file and seed gave
    two measurements. The profile's models are small enough that TF32's
    speed does not matter (ResNet50 at 64x64, batch 32: ~32 GFLOP a step,
    under a millisecond at the H200's float32 rate)."""
    backends = torch.backends
    if hasattr(backends.cudnn, "fp32_precision"):  # PyTorch >= 2.9; mixing with allow_tf32 raises there
        backends.cudnn.fp32_precision = "ieee"
        backends.cuda.matmul.fp32_precision = "ieee"
    else:
        backends.cudnn.allow_tf32 = False
        backends.cuda.matmul.allow_tf32 = False


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, torch: Any, keras: Any):
        super().__init__(keras)
        self.torch = torch

    def select_device(self, device: str) -> Device:
        return select_device(self.torch, device)

    def device_scope(self, handle: str) -> AbstractContextManager[Any]:
        scope: Any = getattr(self.keras, "device", None)
        if scope is None:  # a Keras 3 without the public name: the backend's own
            from keras.src.backend import device_scope

            scope = device_scope
        return scope(handle)

    def clear_session(self) -> None:
        self.keras.backend.clear_session()
        if self.torch.cuda.is_available():
            self.torch.cuda.empty_cache()

    # -- values ----------------------------------------------------------------

    def tensor(self, value: Any) -> Any:
        """The torch tensor of a Keras variable (or the tensor itself)."""
        value = getattr(value, "value", value)
        return value if isinstance(value, self.torch.Tensor) else self.torch.as_tensor(value)

    def scalar(self, value: Any) -> float:
        if isinstance(value, self.torch.Tensor):
            return float(value.detach())
        return float(value)

    def _norm(self, value: Any) -> Any:
        return self.torch.linalg.vector_norm(self.tensor(value).detach().float())

    def norm(self, value: Any) -> float:
        return float(self._norm(value))

    def _global_norm(self, variables: list) -> Any:
        """A 0-d tensor on the variables' device (``variables`` not empty)."""
        return self.torch.linalg.vector_norm(self.torch.stack([self._norm(v) for v in variables]))

    def global_norm(self, variables: list) -> float:
        return float(self._global_norm(variables)) if variables else 0.0

    def copy(self, value: Any) -> Any:
        return self.tensor(value).detach().clone()

    def dense(self, grad: Any, var: Any) -> Any:
        if grad is None:
            return self.torch.zeros_like(self.tensor(var))
        return grad.to_dense() if grad.is_sparse else grad

    def fetch(self, out: Any) -> np.ndarray:
        return out.detach().cpu().numpy()

    # -- the measurement ----------------------------------------------------------

    def _losses(self, model, loss, x, y, training: bool) -> tuple[Any, Any, bool]:
        """(L, P, whether P holds any term) in float32, with the graph kept."""
        torch = self.torch
        y_pred = model(x, training=training)
        data = self.tensor(loss.fn(y, y_pred)).float()
        extra = [self.tensor(t).float() for t in model.losses]
        penalty = torch.stack(extra).sum() if extra else torch.zeros((), dtype=torch.float32, device=data.device)
        return data, penalty, bool(extra)

    def _grads(self, value, tensors: list, retain: bool = False) -> list:
        if not value.requires_grad:  # nothing trainable on its path
            return [None] * len(tensors)
        return list(self.torch.autograd.grad(value, tensors, retain_graph=retain, allow_unused=True))

    def forward_backward(self, model, loss, x, y, trainable: list) -> tuple[float, float, list, list]:
        data, penalty, any_penalty = self._losses(model, loss, x, y, training=True)
        tensors = [self.tensor(v) for v in trainable]
        grads_data = self._grads(data, tensors, retain=any_penalty)
        grads_pen = self._grads(penalty, tensors) if any_penalty else [None] * len(trainable)
        return float(data.detach()), float(penalty.detach()), grads_data, grads_pen

    def apply_gradients(self, opt, grads: list, variables: list) -> None:
        with self.torch.no_grad():
            opt.apply(list(grads), list(variables))

    def loss_scale_factor(self, opt) -> float:
        try:
            return self.scalar(opt.scale_loss(self.torch.ones((), dtype=self.torch.float32)))
        except Exception:
            return 1.0

    def make_train_step(self, model, opt, loss, trainable: list, tracked: list, invariant: list):
        torch = self.torch
        tensors = [self.tensor(v) for v in trainable]

        def step(x, y):
            data, penalty, _ = self._losses(model, loss, x, y, training=True)
            scaled = opt.scale_loss(data + penalty)
            grads = self._grads(scaled, tensors)
            grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, tensors, strict=True)]
            with torch.no_grad():
                before = [self.copy(v).float() for v in invariant]
                opt.apply(grads, trainable)
                zero = torch.zeros((), dtype=torch.float32, device=data.device)
                angle = torch.stack([_angle(torch, b, self.tensor(v).float())
                                     for b, v in zip(before, invariant, strict=True)]).mean() if invariant else zero
                kernel_norm = self._global_norm(tracked) if tracked else zero
                weight_norm = self._global_norm(trainable)
                # one tensor: one device-to-host copy per step instead of five
                return torch.stack([data.detach(), penalty.detach(), kernel_norm.to(data.device),
                                    weight_norm.to(data.device), angle.to(data.device)])

        return step

    def make_evaluate(self, model, loss):
        torch = self.torch

        def evaluate(x, y):
            with torch.no_grad():
                y_pred = model(x, training=False)
                value = self.tensor(loss.fn(y, y_pred)).float()
            return float(value), _to_numpy(y_pred)

        return evaluate

    def probe_loss(self, model, loss, x, y) -> float:
        with self.torch.no_grad():
            data, _, _ = self._losses(model, loss, x, y, training=True)
        return float(data)


def _angle(torch, a, b):
    """The angle between two tensors seen as vectors (0 when either is 0)."""
    norms = torch.linalg.vector_norm(a) * torch.linalg.vector_norm(b)
    dot = torch.sum(a * b)
    cos = torch.where(norms > 0, dot / torch.where(norms > 0, norms, torch.ones_like(norms)), torch.zeros_like(dot))
    return torch.acos(torch.clamp(cos, -1.0, 1.0))


def _to_numpy(values: Any) -> Any:
    """Predictions on the host (a tensor, or a list/tuple/dict of them)."""
    if isinstance(values, dict):
        return {k: _to_numpy(v) for k, v in values.items()}
    if isinstance(values, (list, tuple)):
        return [_to_numpy(v) for v in values]
    return values.detach().cpu().numpy()
