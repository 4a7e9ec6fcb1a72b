"""The optimizer dynamics reglint predicts, checked against simulations of
the mechanism they describe (not against the formula re-typed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reglint.estimate.dynamics import Dynamics


def simulate_angle(opt: str, lr: float, *, l2: float = 0.0, wd: float = 0.0, momentum: float = 0.9,
                   dim: int = 200, steps: int = 6000, seed: int = 0) -> float:
    """Mean angle per step of a scale-invariant weight vector in the second
    half of a run: the gradient is orthogonal to w and scales as 1/|w| (what
    a kernel feeding BatchNorm sees); Keras' update rules (coupled L2 as
    gradient 2*l2*w, decoupled decay w -= lr*wd*w before the step)."""
    rng = np.random.default_rng(seed)
    w, m, v = rng.normal(size=dim), np.zeros(dim), np.zeros(dim)
    angles = []
    for t in range(1, steps + 1):
        norm = np.linalg.norm(w)
        unit, noise = w / norm, rng.normal(size=dim)
        grad = (noise - unit * (unit @ noise)) / norm + 2 * l2 * w
        before = w.copy()
        w = w - lr * wd * w
        if opt == "sgd":
            m = momentum * m - lr * grad
            w = w + m
        else:  # Adam, beta_1 = momentum, beta_2 = 0.999
            m = momentum * m + (1 - momentum) * grad
            v = 0.999 * v + 0.001 * grad * grad
            w = w - lr * (m / (1 - momentum ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-12)
        if t > steps // 2:
            cos = w @ before / (np.linalg.norm(w) * np.linalg.norm(before))
            angles.append(math.acos(min(1.0, cos)))
    return float(np.mean(angles))


@pytest.mark.parametrize(("opt", "lr", "l2", "wd", "momentum"), [
    ("sgd", 0.1, 5e-3, 0.0, 0.9),     # Keras L2 under SGD momentum
    ("sgd", 0.03, 0.01, 0.0, 0.0),    # plain SGD
    ("sgd", 0.1, 0.0, 0.5, 0.9),      # decoupled weight_decay under SGD momentum
    ("sgd", 0.1, 5e-3, 0.05, 0.9),    # both at once: the shrinks add
    ("adam", 1e-3, 0.0, 5.0, 0.9),    # AdamW
    ("sgd", 0.1, 0.5, 0.0, 0.9),      # eta*h = 0.1: far past the slow-mode regime, the angle still holds
])
def test_equilibrium_angle_matches_a_simulated_scale_invariant_walk(opt, lr, l2, wd, momentum):
    family = "sgd" if opt == "sgd" else "adaptive"
    dyn = Dynamics(family, lr, lr, momentum if opt == "sgd" else 0.0, False, wd, 0.0,
                   beta_1=momentum if opt == "adam" else None)
    predicted = dyn.equilibrium_angle(l2)
    assert simulate_angle(opt, lr, l2=l2, wd=wd, momentum=momentum) == pytest.approx(predicted, rel=0.05)


def test_adamw_angle_is_not_the_momentum_free_sqrt_2_eta_wd():
    """Adam's first-moment averaging smooths the steps: the per-step angle is
    sqrt((1-b1)/(1+b1)) = 0.23 of sqrt(2*eta*wd) at b1 = 0.9."""
    dyn = Dynamics("adaptive", 1e-3, 1e-3, 0.0, False, 5.0, 0.0, beta_1=0.9)
    assert dyn.equilibrium_angle(0.0) == pytest.approx(math.sqrt(2 * 1e-3 * 5.0) * math.sqrt(0.1 / 1.9))


def test_resnet_recipe_angle_and_settling_time():
    """ImageNet ResNet-50: SGD 0.1, momentum 0.9, PyTorch weight_decay 1e-4 =
    Keras L2(5e-5): 0.0032 rad per step, settling in 1/(2*R) = 5,000 steps."""
    dyn = Dynamics("sgd", 0.1, 0.1, 0.9, False, 0.0, 0.0)
    assert dyn.equilibrium_angle(5e-5) == pytest.approx(0.003244, rel=1e-3)
    assert dyn.equilibrium_steps(5e-5) == pytest.approx(5000, rel=1e-3)


def test_settling_uses_the_momentum_systems_actual_contraction():
    """Once eta*h exceeds (1 - sqrt(m))^2 the heavy-ball roots are complex and
    an unsupported weight shrinks by 1 - sqrt(m) per step, not the slow
    mode's eta*h/(1-m): L2(0.5) at lr 0.1, m = 0.9 gives 0.051, not 1.0."""
    dyn = Dynamics("sgd", 0.1, 0.1, 0.9, False, 0.0, 0.0)
    assert dyn.total_shrink(0.5) == pytest.approx(1.0)
    assert dyn.contraction(0.5) == pytest.approx(1 - math.sqrt(0.9))
    w, v, path = 1.0, 0.0, []
    for _ in range(200):  # Keras' SGD: v <- m*v - lr*grad; w <- w + v
        v = 0.9 * v - 0.1 * 2 * 0.5 * w
        w += v
        path.append(abs(w))
    envelope = (max(path[180:]) / max(path[80:100])) ** (1 / 100)  # the oscillation's peaks
    assert envelope == pytest.approx(math.sqrt(0.9), rel=0.01)
