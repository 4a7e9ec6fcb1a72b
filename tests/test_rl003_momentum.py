"""RL003 where a kernel's coupled L2 adds to weight_decay under SGD momentum.

Two real files (``fixtures/make_keras_fixtures.py``): L2(0.006) and L2(0.5)
on every kernel under ``SGD(0.05, momentum=0.95, nesterov=True,
weight_decay=1e-4)``. The first makes RL003 warn through the L2 alone
(``2*lr*l2/(1-m) = 0.012`` per step against ``lr*wd = 5e-6``), so
``explain``'s largest safe lambda must stop where RL003 starts; the second
has a slow-mode shrink of 1 per step, which momentum's real dynamics turn
into an oscillation, not a weight zeroed or flipped at every step.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from reglint.cli.app import main

from helpers import KERAS_FIXTURES

STACKED = KERAS_FIXTURES / "scenario_sgd_wd_l2_stacked.keras"
OSCILLATING = KERAS_FIXTURES / "scenario_sgd_wd_l2_oscillating.keras"


def lint(capsys, path) -> dict[str, dict]:
    main(["check", str(path), "-f", "json", "--no-cache"])
    return {f["code"]: f for f in json.loads(capsys.readouterr().out)["files"][0]["findings"]}


def explain(capsys, path, *formats: str) -> str:
    main(["explain", str(path), *formats])
    return capsys.readouterr().out


def test_the_largest_safe_lambda_stops_where_rl003_warns(capsys):
    findings = lint(capsys, STACKED)
    assert findings["RL003"]["severity"] == "warning"
    assert findings["RL003"]["values"]["coupled_shrink"] == pytest.approx(0.012)
    report = json.loads(explain(capsys, STACKED, "-f", "json"))
    # r(lambda) = 5e-6 + 2*0.05*lambda/0.05 reaches the warning level 0.01 at lambda = 0.0049975
    for tensor in report["tensors"]:
        assert tensor["largest_safe_lambda"] == pytest.approx((0.01 - 5e-6) / 2, rel=1e-6)
        assert tensor["largest_safe_lambda_bound_by"] == ["RL003"]
    assert report["tensors"][0]["largest_safe_lambda"] < 0.006  # under today's lambda, which RL003 warns about


def test_momentum_does_not_zero_the_weights_every_step(capsys):
    findings = lint(capsys, OSCILLATING)
    for code in ("RL003", "RL024"):
        message = findings[code]["message"]
        assert "every step" not in message and "overshoots" not in message
        # the envelope of the oscillation shrinks by 1 - sqrt(0.95) = 0.0253 per step: halved in 27 steps
        assert "every 27 steps" in message


def test_keras_sgd_takes_several_steps_to_cross_zero():
    """What the message is checked against: Keras' own SGD with the
    fixture's settings, on a weight whose only gradient is the L2's."""
    keras = pytest.importorskip("keras")
    optimizer = keras.optimizers.SGD(0.05, momentum=0.95, nesterov=True)
    weight = keras.Variable(np.ones((1,), "float32"))
    path = []
    for _ in range(8):
        optimizer.apply_gradients([(2 * 0.5 * weight.value, weight)])
        path.append(float(weight.numpy()[0]))
    signs = np.sign(path)
    assert signs[0] > 0 and signs[1] > 0  # not flipped at every step
    assert np.any(signs < 0)  # but it does oscillate through zero within a few steps


@pytest.mark.parametrize(("lr", "momentum", "wd", "l2"), [(0.3, 0.9, 0.5, 0.01), (0.1, 0.9, 0.5, 0.5),
                                                        (0.05, 0.95, 1e-4, 0.5), (0.3, 0.99, 0.5, 0.01)])
def test_the_contraction_is_keras_sgds_with_weight_decay_and_l2(lr, momentum, wd, l2):
    """Keras decays the weight before the momentum step: the envelope
    contracts by 1 - sqrt(m*(1 - lr*wd)), not by (1 - sqrt(m)) + lr*wd
    (review 27, D10: 0.201 per step said, 0.125 measured). Measured here
    on Keras' own SGD, a weight whose only gradient is its L2's: the linear
    recursion its steps follow, fitted to 40 of them."""
    keras = pytest.importorskip("keras")
    from reglint.estimate.dynamics import Dynamics

    optimizer = keras.optimizers.SGD(lr, momentum=momentum, weight_decay=wd)
    weight = keras.Variable(np.ones((1,), "float64"), dtype="float64")
    path = [1.0]
    for _ in range(40):
        optimizer.apply_gradients([(2 * l2 * weight.value, weight)])
        path.append(float(weight.numpy()[0]))
    # Keras' step is linear in (w, v): w[t+1] = beta*w[t] + gamma*w[t-1]; its
    # slowest mode decays by the largest |root| of z^2 - beta*z - gamma
    w = np.array(path)
    (beta, gamma), *_ = np.linalg.lstsq(np.stack([w[1:-1], w[:-2]], axis=1), w[2:], rcond=None)
    measured = 1 - max(abs(np.roots([1.0, -beta, -gamma])))
    said = Dynamics("sgd", lr=lr, lr_initial=lr, momentum=momentum, nesterov=False, weight_decay=wd,
                    coupled_l2=0.0).contraction(l2)
    assert said == pytest.approx(measured, rel=1e-3)


def _stated_rates_and_halving(message: str) -> tuple[list[float], float] | None:
    """(every per-step rate a message states, its halving time in steps),
    or None when it states no halving time."""
    import re

    halving = re.search(r"halv\w* an unsupported weight every ([\d.]+) steps?", message)
    if halving is None:
        return None
    return [float(x) for x in re.findall(r"([\d.]+(?:e[+-]\d+)?) per step", message)], float(halving.group(1))


def test_every_decay_message_halves_at_the_rate_it_states(capsys):
    """Review 26, D3: "shrinks every weight by 1 per step (timescale 1 steps):
    it halves an unsupported weight every 13 steps". The halving time comes
    from momentum's real contraction; the message must state that rate
    too (halving in ln 2 / -ln(1 - rate) steps), not only the slow mode."""
    from helpers import FIXTURES, SNAPSHOTS

    messages = [f["message"] for code in ("RL003", "RL024")
                for found in json.loads((SNAPSHOTS / f"{code}.json").read_text())["findings"].values()
                for f in found]
    for path in (FIXTURES / "torch" / "sgd_wd_too_strong.pt", OSCILLATING, STACKED):
        messages += [f["message"] for f in lint(capsys, path).values()]
    checked = 0
    for message in messages:
        stated = _stated_rates_and_halving(message)
        if stated is None:
            continue
        rates, steps = stated
        implied = [np.log(2) / -np.log1p(-r) for r in rates if 0 < r < 1]
        assert any(abs(t - steps) <= max(0.6, 0.08 * steps) for t in implied), message
        checked += 1
    assert checked >= 5


def test_explain_gives_the_contraction_check_halves_at():
    """Review 29, D5: explain printed only the slow mode ('1 per step ->
    timescale 1 step', '100 per step -> 0.01 steps') where check halves at
    momentum's contraction or says the weights flip every step."""
    import subprocess
    import sys

    from helpers import FIXTURES

    def explain(path):
        done = subprocess.run([sys.executable, "-m", "reglint", "explain", str(path), "-f", "json"],
                              capture_output=True, text=True, timeout=120)
        return json.loads(done.stdout)

    decay = explain(FIXTURES / "torch" / "sgd_wd_too_strong.pt")["optimizer_decay"]
    limit = decay["momentum_limit"]
    assert limit["contraction"] == pytest.approx(1 - np.sqrt(0.9)) and round(limit["halving_steps"]) == 13
    tensors = explain(FIXTURES / "keras_optimizers" / "mixed_sgd_unstable_adamw_lead.keras")["tensors"]
    (out,) = [t for t in tensors if t["layer"] == "out"]
    assert out["momentum_limit"]["flips_every_step"] is True
