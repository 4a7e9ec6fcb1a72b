"""The second moment of a recurrent layer's outputs at initialisation, for
an activity regularizer on an LSTM, GRU, SimpleRNN, ConvLSTM or
Bidirectional layer, or on a layer reading one (RL010).

A recurrent output is not ``act(z)`` of one pre-activation: an LSTM's
``h_t = o_t * tanh(c_t)`` carries a cell that fills up over the steps,
a GRU interpolates between its last output and a candidate. The moments
are followed step by step in the mean-field approximation (every gate's
pre-activation Gaussian and independent of the others, as the separate
weight columns drawn at initialisation make them): the pre-activation
variance is ``F*E[w^2]*m_in + U*E[u^2]*E[h_{t-1}^2]`` (``F`` inputs of
second moment ``m_in``, ``U`` units), and

- LSTM: ``E[c_t^2] = E[f^2] E[c_{t-1}^2] + E[i^2] E[g^2]``,
  ``E[h_t^2] = E[o^2] E[tanh(c_t)^2]`` (forget bias 1 with
  ``unit_forget_bias``);
- GRU: ``E[h_t^2] = E[z^2] E[h_{t-1}^2] + E[(1-z)^2] E[hh^2]``, the
  candidate's recurrent part scaled by ``E[r^2]``;
- SimpleRNN: ``E[h_t^2] = E[act(z)^2]``.

Checked against Keras 3.15's own activity penalties on
``fixtures/activity_shapes`` (``make_activity_shape_fixtures.py``;
``tests/test_activity_shapes.py``): within 12%.

Inputs with a mean (``share`` of their second moment: ``--input-mean``, or
all of it where ``--input-var`` is away from 1) drive each unit by the same
amount at every step, and a state adds those drives up
coherently: an LSTM's cell fills to ``i*g/(1-f)``, not the incoherent
``sqrt(E[(ig)^2]/(1-E[f^2]))`` (review 58, 3: Keras 0.659 per sample where
the zero-mean estimate said 0.122). There every unit keeps its own drive:
each gate's pre-activation is ``sqrt(F*E[w^2]*m_in)*xi + sqrt(U*E[u^2]*
E[h_{t-1}^2])*zeta (+ forget bias)``, ``xi`` and ``zeta`` drawn once per
unit (``COHERENT_UNITS`` units, a fixed seed; the part of the input drive
that is not a mean drawn afresh at each step), and each unit's recurrence is
run step by step; without ``--input-mean`` the inputs' whole second moment
is taken as their mean
(of inputs uniform in [0, 1], three quarters is): 1.08-1.87x Keras on the
fixtures' inputs uniform in [0, 1]; 0.68x on review 58's LSTM of 8 inputs
(its 64 drives one draw).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from reglint.estimate.gaussian import ACTIVATIONS, gauss_hermite
from reglint.estimate.init_scale import element_moments
from reglint.model import Layer, Role

RECURRENT = frozenset({"LSTM", "GRU", "SimpleRNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "Bidirectional"})
MAX_STEPS = 1000  # the moments settle long before; a longer sequence repeats the last value
# Units simulated for inputs with a mean (module docstring): the sampling error
# of a mean over them is about 1/sqrt(COHERENT_UNITS), under 2%.
COHERENT_UNITS = 4096


def _moments(fn, mean: float, variance: float) -> tuple[float, float]:
    """(E[fn(x)], E[fn(x)^2]) for x ~ N(mean, variance)."""
    nodes, weights = gauss_hermite()
    values = fn(mean + math.sqrt(max(variance, 0.0)) * nodes)
    return float(np.dot(weights, values)), float(np.dot(weights, values * values))


@dataclass(frozen=True)
class RecurrentOutputs:
    """What an activity regularizer on a recurrent layer sums over, per
    sample, at initialisation: ``sum_sq`` (``E[sum a^2]``) over its
    ``elements``, every output Keras penalises (the sequence or the last
    step's output, and with ``return_state`` the final states too)."""

    sum_sq: float
    elements: int
    output_mean_sq: float  # of the first output alone (what the next layer reads)

    @property
    def mean_sq(self) -> float:
        return self.sum_sq / self.elements if self.elements else 0.0


def recurrent_outputs(layer: Layer, input_moment: float, share: float = 0.0) -> RecurrentOutputs | None:
    """The layer's outputs' second moments (mean-field, module docstring;
    ``share``: the share of the inputs' second moment that is a mean, each
    unit's recurrence then run on its own constant drive); a Bidirectional's
    from its forward layer, both directions concatenated (or summed); None
    for another class or unknown shapes."""
    if layer.class_name == "Bidirectional":
        return _bidirectional(layer, input_moment, share)
    step = _STEPS.get(layer.class_name)
    kernel = next((v for v in layer.variables if v.role is Role.KERNEL), None)
    recurrent = next((v for v in layer.variables if v.role is Role.RECURRENT_KERNEL), None)
    steps, width = _steps(layer), _state_width(layer)
    if step is None or kernel is None or recurrent is None or steps is None or width is None:
        return None
    k, u = element_moments(kernel), element_moments(recurrent)
    # the mean-field treats every pre-activation as centred, which a bounded,
    # odd activation keeps; relu's cell grows a mean it does not follow
    if layer.config.get("activation", "tanh") != "tanh":
        return None
    act = ACTIVATIONS["tanh"]
    gate = ACTIVATIONS.get(layer.config.get("recurrent_activation", "sigmoid"))
    if k is None or u is None or gate is None:
        return None
    # the terms one pre-activation sums: a Dense cell's inputs, a ConvLSTM's
    # kernel window times its channels (the fans Keras draws them with)
    from_input = kernel.fans()[0] * k[0] * input_moment
    from_state = recurrent.fans()[0] * u[0]
    forget_bias = 1.0 if step is _lstm and layer.config.get("unit_forget_bias", True) else 0.0
    if share > 0:
        total, state = _coherent(step, steps, from_input, from_state, act, gate, forget_bias, share)
    else:
        state = (0.0, 0.0)  # (E[h^2], E[c^2])
        total = 0.0
        for _ in range(min(steps, MAX_STEPS)):
            state = step(state, from_input, from_state, act, gate, forget_bias)
            total += state[0]
        if steps > MAX_STEPS:
            total += state[0] * (steps - MAX_STEPS)
    sequences = bool(layer.config.get("return_sequences"))
    sum_sq, elements = (total * width, steps * width) if sequences else (state[0] * width, width)
    first = sum_sq / elements
    if layer.config.get("return_state"):  # Keras penalises every output: the final h (and an LSTM's c) too
        states = [state[0]] + ([state[1]] if step is _lstm else [])
        sum_sq += sum(states) * width
        elements += len(states) * width
    return RecurrentOutputs(sum_sq, elements, first)


def _coherent(step, steps: int, from_input: float, from_state: float, act, gate,
              forget_bias: float, share: float = 1.0) -> tuple[float, tuple[float, float]]:
    """(sum over the steps of E[h_t^2], (E[h^2], E[c^2]) at the last step)
    for inputs whose second moment is in part (``share``) a mean: each of
    ``COHERENT_UNITS`` units keeps that part of its input drive and its
    recurrent drive's direction over the steps, the rest of the input drive
    drawn afresh at every step (module docstring)."""
    rng = np.random.default_rng(0)
    gates = 4 if step is _lstm else 3 if step is _gru else 1
    held = math.sqrt(from_input * share) * rng.standard_normal((gates, COHERENT_UNITS))
    direction = rng.standard_normal((gates, COHERENT_UNITS))
    spread = math.sqrt(from_input * max(0.0, 1.0 - share))
    h = np.zeros(COHERENT_UNITS)
    c = np.zeros(COHERENT_UNITS)
    total, h2 = 0.0, 0.0
    for _ in range(min(steps, MAX_STEPS)):
        drive = held + spread * rng.standard_normal((gates, COHERENT_UNITS)) if spread else held
        z = drive + math.sqrt(from_state * h2) * direction
        if step is _lstm:
            c = gate(z[1] + forget_bias) * c + gate(z[0]) * act(z[2])
            h = gate(z[3]) * act(c)
        elif step is _gru:  # Keras' reset_after: the reset gate scales the recurrent part of the candidate
            update, reset = gate(z[0]), gate(z[1])
            candidate = act(drive[2] + reset * (z[2] - drive[2]))
            h = update * h + (1.0 - update) * candidate
        else:
            h = act(z[0])
        h2 = float(np.mean(h * h))
        total += h2
    if steps > MAX_STEPS:
        total += h2 * (steps - MAX_STEPS)
    return total, (h2, float(np.mean(c * c)))


def _bidirectional(layer: Layer, input_moment: float, share: float = 0.0) -> RecurrentOutputs | None:
    """Both directions start from the same initializers: one direction's
    moments, over twice the elements (``concat``) or with twice the second
    moment (``sum``, independent directions); other merge modes unknown."""
    inner = layer.config.get("layer")
    mode = layer.config.get("merge_mode", "concat")
    if not isinstance(inner, dict) or mode not in ("concat", "sum") or layer.output_shape is None:
        return None
    found = inner.get("config")
    config: dict = found if isinstance(found, dict) else {}
    name = str(config.get("name", ""))
    shape = list(layer.output_shape)
    if mode == "concat" and isinstance(shape[-1], int):
        shape[-1] //= 2
    forward = Layer(name=name, path=f"{layer.path}/{name}", class_name=str(inner.get("class_name", "")),
                    config=config, input_shape=layer.input_shape, output_shape=tuple(shape),
                    variables=[v for v in layer.variables if v.name.startswith(f"{name}/")] or
                    [v for v in layer.variables if v.name.startswith("forward")])
    one = recurrent_outputs(forward, input_moment, share)
    if one is None or forward.class_name == "Bidirectional":
        return None
    if mode == "sum":
        return RecurrentOutputs(2 * one.sum_sq, one.elements, 2 * one.output_mean_sq)
    return RecurrentOutputs(2 * one.sum_sq, 2 * one.elements, one.output_mean_sq)


def sequence_share(layer: Layer) -> float:
    """For a layer returning its state at every step, the share of its
    outputs' moment that an average over its steps keeps, as though it were
    the same at every step: the state carries a part ``a`` of itself into
    the next step (``step_retention``), so neighbouring steps move together
    and an average over ``N`` of them keeps ``g/N`` of the moment
    (``correlation_gain``), which a share ``(g - 1)/(N - 1)`` gives.
    Review 69, 3: an Embedding, an LSTM or GRU returning sequences and a
    pooling were 0.11-0.34x Keras' penalty with the steps taken as
    independent. 0 for another layer, a last state alone or unknown steps.

    >>> from reglint.model import Layer
    >>> gru = Layer("g", "g", "GRU", config={"return_sequences": True}, input_shape=(None, 12, 8))
    >>> round(12 * sequence_share(gru) + (1 - sequence_share(gru)), 2)  # g: 3 for N >> 1, 2.7 at 12
    2.67
    """
    retention, steps = step_retention(layer), _steps(layer)
    if retention is None or steps is None or steps < 2:
        return 0.0
    return (correlation_gain(retention, steps) - 1.0) / (steps - 1.0)


def step_retention(layer: Layer) -> float | None:
    """The part ``a`` of its state a recurrent layer returning sequences
    carries into the next step, the correlation of neighbouring steps'
    outputs: an LSTM's forget gate, ``sigmoid(1)`` with Keras' unit forget
    bias, a GRU's update gate, ``sigmoid(0)`` (Keras 3.15, 40 steps, 16-128
    units: neighbouring outputs correlate 0.77-0.79 and 0.52-0.53, decaying
    by about those factors a step). None for another layer or a last
    state alone."""
    name, config = layer.class_name, layer.config
    if name == "Bidirectional" and isinstance(config.get("layer"), dict):
        inner = config["layer"]
        name = str(inner.get("class_name", ""))
        config = inner.get("config") if isinstance(inner.get("config"), dict) else {}
    if not config.get("return_sequences"):
        return None
    forget = 1.0 / (1.0 + math.exp(-1.0)) if config.get("unit_forget_bias", True) else 0.5
    return {"LSTM": forget, "ConvLSTM1D": forget, "ConvLSTM2D": forget, "ConvLSTM3D": forget,
            "GRU": 0.5}.get(name)


def correlation_gain(retention: float, steps: float) -> float:
    """``g = 1 + 2*sum_{k<N} (1 - k/N) a^k``: an average over ``N``
    neighbouring steps whose correlation falls by ``a`` a step keeps ``g/N``
    of their moment (1/N for independent steps, all of it for ``a = 1``).

    >>> correlation_gain(0.0, 4), correlation_gain(1.0, 4), round(correlation_gain(0.5, 2), 2)
    (1.0, 4.0, 1.5)
    """
    whole = math.ceil(steps)
    return 1.0 + 2.0 * sum((1.0 - k / steps) * retention ** k for k in range(1, whole))


def _state_width(layer: Layer) -> int | None:
    """Elements of one step's output: units, or a ConvLSTM's map (the
    output shape without its batch and time dimensions)."""
    shape = layer.output_shape
    if not shape:
        return None
    inner = shape[2:] if layer.config.get("return_sequences") else shape[1:]
    if not inner or not all(isinstance(d, int) and d > 0 for d in inner):
        return None
    return math.prod(inner)


def _steps(layer: Layer) -> int | None:
    shape = layer.input_shape
    if shape and len(shape) >= 3 and isinstance(shape[1], int) and shape[1] > 0:
        return shape[1]
    return None


def _lstm(state, from_input, recurrent, act, gate, forget_bias):
    h2, c2 = state
    v = from_input + recurrent * h2
    _, i2 = _moments(gate, 0.0, v)
    _, f2 = _moments(gate, forget_bias, v)
    _, g2 = _moments(act, 0.0, v)
    c2 = f2 * c2 + i2 * g2
    return i2 * _moments(act, 0.0, c2)[1], c2  # o has the input gate's moments


def _gru(state, from_input, recurrent, act, gate, forget_bias):
    h2, _ = state
    v = from_input + recurrent * h2
    z1, z2 = _moments(gate, 0.0, v)
    _, r2 = _moments(gate, 0.0, v)
    _, hh2 = _moments(act, 0.0, from_input + r2 * recurrent * h2)
    return z2 * h2 + (1.0 - 2.0 * z1 + z2) * hh2, 0.0


def _simple(state, from_input, recurrent, act, gate, forget_bias):
    h2, _ = state
    return _moments(act, 0.0, from_input + recurrent * h2)[1], 0.0


_STEPS = {"LSTM": _lstm, "GRU": _gru, "SimpleRNN": _simple,
          "ConvLSTM1D": _lstm, "ConvLSTM2D": _lstm, "ConvLSTM3D": _lstm}
