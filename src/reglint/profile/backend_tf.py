"""Keras 3 on TensorFlow for ``reglint profile``: ``tf.GradientTape`` for
the gradients, the training step compiled once as a ``tf.function`` (every
batch has the same shape; eager Keras costs ~0.1-0.4 s a step even for a
tiny model), ``tf.device`` for placement.

TensorFlow is imported only inside ``load_tensorflow_backend``.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from reglint.profile import ProfileError
from reglint.profile.backend import Backend, Device, check_running, missing
from reglint.profile.load import cpu_description, quiet_native_stderr


def load_tensorflow_backend() -> TensorFlowBackend:
    """Keras on TensorFlow with TensorFlow's start-up chatter silenced."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with quiet_native_stderr():
            import keras
            import tensorflow as tf
    except ImportError as exc:
        raise missing("tensorflow", exc) from None
    check_running(keras, "tensorflow")
    tf.get_logger().setLevel("ERROR")
    return TensorFlowBackend(tf, keras)


def select_device(tf, device: str) -> Device:
    """(TensorFlow device string, readable name, kind) for auto/cpu/gpu."""
    device = (device or "auto").lower()
    if device not in ("auto", "cpu", "gpu"):
        raise ProfileError(f"--device must be auto, cpu or gpu, not {device!r}")
    with quiet_native_stderr():  # CUDA probing logs through C++, past TF_CPP_MIN_LOG_LEVEL
        gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise ProfileError("--device gpu: TensorFlow sees no GPU on this machine (use --device cpu or auto)")
    if gpus and device in ("auto", "gpu"):
        # IEEE float32, not TF32 (TensorFlow's default on Ampere and later):
        # one file and seed, one measurement on every device
        # (backend_torch.full_float32 says what TF32 changed on an H200).
        tf.config.experimental.enable_tensor_float_32_execution(False)
        try:
            details = tf.config.experimental.get_device_details(gpus[0])
        except Exception:  # details are cosmetic
            details = {}
        name = details.get("device_name") or gpus[0].name
        return "/GPU:0", f"GPU 0: {name}", "gpu"
    return "/CPU:0", cpu_description(), "cpu"


class TensorFlowBackend(Backend):
    name = "tensorflow"

    def __init__(self, tf: Any, keras: Any):
        super().__init__(keras)
        self.tf = tf

    def select_device(self, device: str) -> Device:
        return select_device(self.tf, device)

    def device_scope(self, handle: str) -> AbstractContextManager[Any]:
        return self.tf.device(handle)

    def scalar(self, value: Any) -> float:
        return float(value)

    def norm(self, value: Any) -> float:
        tf = self.tf
        return float(tf.norm(tf.cast(value, tf.float32)))

    def global_norm(self, variables: list) -> float:
        tf = self.tf
        if not variables:
            return 0.0
        return float(tf.linalg.global_norm([tf.cast(v.value, tf.float32) for v in variables]))

    def copy(self, value: Any) -> Any:
        return self.tf.identity(value)

    def dense(self, grad: Any, var: Any) -> Any:
        tf = self.tf
        if grad is None:
            return tf.zeros_like(var)
        if isinstance(grad, tf.IndexedSlices):  # Embedding gradients
            return tf.convert_to_tensor(grad)
        return grad

    def fetch(self, out: Any) -> np.ndarray:
        return np.asarray(out.numpy())

    def forward_backward(self, model, loss, x, y, trainable: list) -> tuple[float, float, list, list]:
        tf = self.tf
        with tf.GradientTape(persistent=True) as tape:
            y_pred = model(x, training=True)
            data = tf.cast(loss.fn(y, y_pred), tf.float32)
            extra = [tf.cast(t, tf.float32) for t in model.losses]
            penalty = tf.add_n(extra) if extra else tf.constant(0.0)
        grads_data = tape.gradient(data, trainable)
        grads_pen = tape.gradient(penalty, trainable) if extra else [None] * len(trainable)
        del tape
        return float(data), float(penalty), grads_data, grads_pen

    def apply_gradients(self, opt, grads: list, variables: list) -> None:
        opt.apply_gradients(zip(grads, variables, strict=True))

    def loss_scale_factor(self, opt) -> float:
        try:
            return float(opt.scale_loss(self.tf.constant(1.0)))
        except Exception:
            return 1.0

    def make_train_step(self, model, opt, loss, trainable: list, tracked: list, invariant: list):
        tf = self.tf

        @tf.function(reduce_retracing=True)
        def step(x, y):
            with tf.GradientTape() as tape:
                y_pred = model(x, training=True)
                data = tf.cast(loss.fn(y, y_pred), tf.float32)
                extra = [tf.cast(t, tf.float32) for t in model.losses]
                penalty = tf.add_n(extra) if extra else tf.constant(0.0)
                scaled = opt.scale_loss(data + penalty)
            grads = tape.gradient(scaled, trainable)
            grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, trainable, strict=True)]
            before = [tf.identity(tf.cast(v, tf.float32)) for v in invariant]
            opt.apply_gradients(zip(grads, trainable, strict=True))
            angle = tf.constant(0.0)
            if invariant:
                angles = [_angle(tf, b, tf.cast(v, tf.float32)) for b, v in zip(before, invariant, strict=True)]
                angle = tf.add_n(angles) / float(len(angles))
            kernel_norm = tf.linalg.global_norm([tf.cast(v, tf.float32) for v in tracked]) if tracked else \
                tf.constant(0.0)
            weight_norm = tf.linalg.global_norm([tf.cast(v, tf.float32) for v in trainable])
            # one tensor: one device-to-host copy per step instead of five
            return tf.stack([data, penalty, tf.cast(kernel_norm, tf.float32), tf.cast(weight_norm, tf.float32),
                             tf.cast(angle, tf.float32)])

        return step

    def make_evaluate(self, model, loss):
        tf = self.tf

        @tf.function(reduce_retracing=True)
        def evaluate(x, y):
            y_pred = model(x, training=False)
            return tf.cast(loss.fn(y, y_pred), tf.float32), y_pred

        return evaluate

    def probe_loss(self, model, loss, x, y) -> float:
        tf = self.tf
        y_pred = model(x, training=True)
        return float(tf.cast(loss.fn(y, y_pred), tf.float32))


def _angle(tf, a, b):
    """The angle between two tensors seen as vectors (0 when either is 0)."""
    na, nb = tf.norm(a), tf.norm(b)
    cos = tf.math.divide_no_nan(tf.reduce_sum(a * b), na * nb)
    return tf.acos(tf.clip_by_value(cos, -1.0, 1.0))
