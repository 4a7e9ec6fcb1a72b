"""# activity-regularizer-scale (RL010)

## What it does
Estimates each ``activity_regularizer``'s penalty per sample at
initialisation (from the number of elements in the layer's output, its
shape carried through the saved config: width times time steps or
positions; its kernel initializer and activation) and compares it with the
data-loss scale. On files saved by Keras 3.0-3.13,
which did not divide activity penalties by the batch size, it multiplies by
the batch size (``--batch-size``, default 32).

## Why is this bad?
An activity penalty is summed over every output element: it grows with the
layer's width and, for sequence or image outputs, with the number of time
steps or positions, while the data loss does not. A lambda that was fine on
a Dense layer is far too strong on a Conv2D or a long sequence, and on Keras
3.0-3.13 it silently scaled with the batch size too (keras-team/keras
#22018, fixed in 3.14 by PR #22021).

## Example
``Dense(512, activation="relu", activity_regularizer=L2(0.01))`` after a
512-wide layer: about 0.01*512*0.5 = 2.6 per sample, more than ln 10.

## Use instead
Scale lambda down by the number of output elements, or penalise a mean
(a custom ``add_loss`` of ``lambda * mean(a**2)``).

## Fix
Aim: the activity penalty at half the warning level: the layer's activity
lambda is multiplied by ``(warning/2) / ratio``.

## Options
- ``--input-var`` (context): the model inputs' mean square, default 1.
- ``activity-ratio-error`` (default 20): per-sample penalty / data-loss scale at which RL010 is an error.
- ``activity-ratio-warning`` (default 3): at which it is a warning.

## Formula
``P = elements * (l2*E[a^2] + l1*E[|a|])``, ``a = act(z)``,
``z ~ N(0, fan_in*E[w^2]*m_in)`` with ``m_in`` the input's second moment
propagated from the model inputs' (1, standardised, unless ``--input-var``
gives it: review 53 measured 9x Keras' penalty on digits in [0, 1], whose
mean square is 0.235; checked against Keras on inputs uniform in [0, 1]
in tests/test_activity_shapes.py: within 15%, and 2x on convolutions of a
few filters, where the inputs' mean offsets each filter by a drawn
``mean*sum(w)``); times ``B`` for Keras 3.0-3.13;
times the layer's calls for a shared layer, and those of every nested model
around it (``Model.calls_of``; Keras adds the penalty at each call: 3.76
measured on fixtures/activity_shapes/shared_dense.keras, one Dense on three
inputs, where one call's 1.28 was the estimate before; 2.03 on
nested_tower_twice.keras, a tower model called on two inputs), each call
on what it reads (``engine.calls``: a layer called on its own output reads
its first call's output at its second; review 60 measured 1.6-1.7x Keras'
penalty when every call read the model's inputs, a false warning; Keras
1.40 against 1.35 on dense_on_own_output.keras, 1.90 against 1.79 on an
attention called on its own output, directly or as a nested model), and
with that call's shapes (``Layer.call_shapes``: a shared encoder reads a
query of 20 steps and a document of 80; review 62 measured 0.40-0.52x
Keras' penalty when every call took the first call's size; now 1.01-1.07x
on its four such models and fixtures/activity_shapes/*_two_lengths.keras).
A length the file leaves open (``Input((None, 16))``, or one behind a
Lambda without an ``output_shape``) counts one step: the penalty sums
non-negative terms over the steps, so that is a lower bound, judged as
one and said so (reviews 64-65: counted at one step without a word, then
no estimate, which hid an error at 97x the data loss).
Checked against Keras 3.15 on fixtures/keras/scenario_activity.keras: 2.84
predicted, 2.856 measured per sample. An ``ActivityRegularization(l1, l2)``
layer (no kernel: it hands its input on) is judged on the output of the
layer feeding it, ``P = elements * (l2*m_in + l1*sqrt(m_in))`` with
``E|a| <= sqrt(E[a^2])``: 153 predicted, 148 measured by Keras 3.15 on
fixtures/keras_wrappers/actreg_keras3.keras. An Embedding's output has its
table's moments. LSTM and GRU outputs carry a state: their ``E[h^2]``
follows the recurrence step by step (``estimate/recurrent.py``, mean-field),
averaged over the steps where the layer returns sequences. Checked against
Keras 3.15 on fixtures/activity_shapes (a Conv2D, a strided one with L1,
a DepthwiseConv2D and a Conv2DTranspose, whose forward fan-in is not the
initializer's; ActivityRegularization after BatchNormalization, a frozen
one, and an LSTM, a Bidirectional one too; an Embedding; LSTMs, GRUs, a
ConvLSTM2D and the LSTM inside a Bidirectional, with
``return_state``'s states, which Keras penalises too): within 12% of
Keras' penalty on all 17 files. A recurrent layer whose activation is not
tanh gets no estimate (the mean-field does not follow the mean a relu cell
builds up). On inputs whose mean square ``--input-var`` puts away from 1
a mean drives the state by the same amount at every step, and the state
adds it up coherently (Keras 0.659 where the zero-mean estimate said 0.122,
review 58): each unit's recurrence is then run on its own constant drive,
the share ``U^2/M`` of it that is a mean (``--input-mean U``; without it,
all of the mean square ``M``; profile measures both on ``--data``) held
per unit and the rest drawn at each step (``estimate/recurrent.py``);
with ``--input-mean 0`` on zero-mean inputs of mean square 4, within 10% of
Keras on the recurrent files (1.8-8.5x without it, review 63, 4); on
inputs uniform in [0, 1] 0.89-1.55x with ``--input-mean 0.5``, 1.08-1.87x
with all of it taken as mean, 0.68x on review 58's LSTM of 8 inputs (one
draw of 64 drives). The inputs' moment follows the layers that change it
(a ``Rescaling`` by ``scale^2``, a ``Normalization`` back to 1) and their
mean the branches it reaches: an Embedding's or a BatchNormalization's
output carries none of it (review 66: pixels rescaled by 1/255 read raw, an
error at 7e4x Keras; token ids beside features of mean 3, 2.9x). A
nonlinearity makes a mean of inputs of zero mean: a ReLU's output carries
``1/pi`` of its second moment as each unit's mean, the same at every step,
position and sample (``estimate/gaussian.constant_share``), which a
recurrent state adds up like the inputs' own (an LSTM and a GRU of 64 units
after a ReLU Dense: 0.35-0.67x Keras' penalty over three seeds when only
the inputs' mean was followed, 0.86-1.18x now). An average pooling over
``n`` positions (global, or a window: an edge window of ``padding="same"``
averages only its valid positions, review 68, 8) keeps that mean and
divides the rest by ``n``, as on independent positions, which Keras' random draws are
(review 65, 7: a Dense after 20 steps of a linear Dense pooled was 19x
Keras' penalty, after 12 tokens' embeddings 11x, after a
Conv2D-BatchNorm-ReLU map 2.4-4.1x; now within 25% on
fixtures/activity_shapes' four pooled files, 0.78x where a 3x3
convolution's overlapping windows make neighbours move together). Where
the positions move together, as an image's neighbouring pixels do, the
penalty is about what a pooling that kept the moment gives: the finding
says that value where it is 1.5x the estimate or more (an expectation over
the weights' draws, not a bound: review 68, 3 found Keras' penalty above it
in up to half of eight draws on smooth images), and judges the estimate
(``reglint profile --data`` measures the penalty). After an attention
the positions share most of their output: each averages the same value
tokens with near-uniform weights at initialisation, and only the weights'
spread differs between positions (``attention_output_share``; review 68,
2: 0.37x Keras' penalty over eight draws when taken as independent, 1.04x
now). A ``mask=`` input (an ``Embedding(mask_zero=True)``'s ``NotEqual``)
is no data: it carries no scale (review 68, 1: token ids' scale reached a
pooling, 2.4-8x Keras). A recurrent layer returning sequences carries part
of its state into the next step (an LSTM's forget gate, a GRU's update
gate), so its neighbouring steps move together and a pooling over them
keeps more than its share (``recurrent.sequence_share``; review 69, 3:
0.11-0.34x Keras' penalty with the steps independent, 0.64-1.0x now); a
local average over a window of its steps keeps ``g_w/w``, the correlation
falling by that part a step (``steps.window_over_steps``:
AveragePooling1D of 2, 4, 8 after an LSTM or GRU over 40 steps, 0.40-0.63x
with the whole sequence's share, 0.86-0.92x now). Keras' weightless
``Attention`` and ``AdditiveAttention`` average their value tokens with
softmax weights over their scores (``dot_attention``: nearly uniform over an
Embedding's small vectors, peaked on the token itself where a query is its
own key): taken as passing their values' moment on, a Dense after one was
9-33x Keras' penalty, 0.82-1.14x now over eight shapes. Softmax outputs (a Dense's,
an ``Activation``/``Softmax`` layer's over its axis, and what an
``ActivityRegularization`` after one penalises): ``l2 * sum p^2`` per
distribution, ``sum p^2`` about ``(1 + v(1 - 1/C))/C`` at initialisation
for logits of variance ``v``; an L1 there is ``sum |p| = 1``, a constant
with no gradient, which RL010 does not count (reviews 58, 59; within 5% of
Keras on fixtures/activity_shapes' softmax files, 2x high on a softmax over
positions of inputs with a mean). A MultiHeadAttention (Keras 3: its
query, key, value and output projections' outputs, the key and value over
the value's tokens): each projection's ``fan_in*E[w^2]*m_in``, the output
projection reading the values weighted by the attention,
``E[sum a_j^2]`` of the value projection's moment for independent tokens
(all of it where ``--input-var`` says the inputs carry a mean); the layers
after one read its output projection's moment. Within 5% of Keras on
fixtures/activity_shapes/attention_*.keras and on review 60's 21
self- and cross-attention models on normal inputs (0.86-1.43 on inputs in
[0, 1]); a layer after an attention block 0.67-1.84. A gate (``use_gate``):
its ``sigmoid`` output is penalised too, and multiplies the attention
output (``E[g^2]``) before the output projection; a GroupedQueryAttention
(its fewer key and value heads are their kernels' widths) also penalises
its own output, the output projection's again. Review 60 had no estimate
for either: now 1.70 against Keras' 1.71 (gated) and 1.39 against 1.45
(grouped) there, within 1% on fixtures/activity_shapes/attention_gate.keras
and grouped_query_attention.keras (within 5% and 4% on inputs in [0, 1]).

## Thresholds and calibration
Break-even (ratio 1) is where the penalty matches the data loss, but
training holds off more than that. On the calibration grid's 48 activity
runs (``python bench/calibrate.py report``; bench/CALIBRATION.md) the
largest per-layer ratio of a healthy fit-split run is 2.95 and every run at
29.5 or more collapsed; 13.9 was degraded (Adam) or collapsed (SGD). Error
at **20** lies in that gap; warning at **3**, where 9 of 10 fit-split runs
were degraded or worse. Held-out, the 20-class set collapsed from 8.2: a
warning there, which ``reglint profile --data`` can confirm on real data.
The grid's activity runs regularize Dense layers (the 64-32 MLP), whose
output is ``units`` wide; the levels apply to a Conv2D's feature map or a
sequence by the same ratio of penalty to data loss, which is what Keras
adds whatever the output's shape (no grid run calibrates those shapes).

## References
- Keras ``keras/src/layers/layer.py`` (activity penalty divided by the batch size since 3.14).
- keras-team/keras issue #22018, PR #22021.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from reglint.engine.finding import Change, Fix, Severity
from reglint.engine.fmt import g, lam
from reglint.engine.measured import static_finding, twin_harm, verdict
from reglint.engine.penalty_estimate import PenaltyEstimate
from reglint.engine.rule import Option, Rule
from reglint.estimate.activity import (
    PENALISED_OUTPUT,
    activity_penalty_per_sample,
    attention_inputs,
    attention_projections,
    call_run,
    correlated_steps,
    input_second_moment,
    keras_divides_by_batch,
    mean_share,
    node_attention_inputs,
    node_input_moment,
    open_length,
    output_second_moments,
    pass_through_source,
    penalised_elements,
    softmax_classes,
)
from reglint.estimate.pooling import open_pooling
from reglint.estimate.recurrent import RECURRENT
from reglint.estimate.upstream import unknown_scale, upstream, upstream_calls
from reglint.model import Layer
from reglint.model.nesting import NestedGraph


@dataclass
class ActivityEstimate:
    """One layer's activity penalty per sample (``per_sample``, every call
    and, on Keras 3.0-3.13, the batch included), or why there is none."""

    layer: Layer
    calls: int
    batch_factor: int
    inputs: float  # the model inputs' mean square the estimate assumed
    inputs_given: bool  # --input-var (or profile's --data), not the standardised default
    scale: float  # the data-loss scale
    per_sample: float | None = None
    elements: int | None = None
    missing: str | None = None
    # --input-mean where given; else whether the estimate took the inputs' whole mean square as a mean (a
    # recurrent layer or an attention on inputs that are not standardised: review 63, 4)
    mean: float | None = None
    mean_assumed: bool = False
    # a call whose output length the file leaves open (Input((None, 16)), behind a Lambda): counted at one step,
    # a lower bound of a penalty summed over every step (review 64, 2; review 65, 1: an error at 97x hidden)
    open_length: bool = False
    # the penalty where the positions an average pooling upstream reads move together (real images' neighbours):
    # ``per_sample`` takes them as independent, as Keras' random draws are; set where it is 1.5x more or above
    correlated: float | None = None
    # layers upstream whose effect on the scale is not known (a Lambda, a custom class): taken as identity
    unknown: list[str] = field(default_factory=list)
    # an average pooling upstream over positions the file leaves open, taken as one: the estimate is then a bound
    open_pooling: bool = False
    # whether the model inputs' scale reaches the estimate (False behind a normalization on every path)
    inputs_enter: bool = True

    @property
    def ratio(self) -> float | None:
        return None if self.per_sample is None else self.per_sample * self.batch_factor / self.scale

    def _mean_words(self) -> str:
        if self.mean is not None:
            return f" and mean {g(self.mean)}"
        return ", taken as their mean (--input-mean gives it)" if self.mean_assumed else ""

    def describe(self, model) -> str:
        """'over N output elements adds about P per sample ..., R x the
        data-loss scale S' (the finding's words, and explain's)."""
        batch = (f" x batch {self.batch_factor} (Keras {model.framework_version} sums over the batch)"
                 if self.batch_factor > 1 else "")
        calls = f" over its {self.calls} calls (a shared layer or model: Keras adds it at each call)" \
            if self.calls > 1 else ""
        # the inputs' scale: given (--input-var; profile: measured on --data), else assumed
        inputs = (f" on inputs of mean square {g(self.inputs)}{self._mean_words()}" if self.inputs_given
                  else " on standardised inputs (--input-var)")
        notes = self._notes()
        if not self.inputs_enter:  # review 67, 6: named the inputs' moments behind a LayerNorm
            inputs = ""
            notes.insert(0, "the model inputs' scale does not reach it: a normalization or an embedding lies between")
        where = "elements of its projections' outputs" if self.layer.activity_on else "output elements"
        told = f" ({'; '.join(notes)})" if notes else ""  # review 68, 9: one parenthesis, not three
        if self.open_length:
            return (f"over {g(self.elements)} {where} of one step of a length the file leaves open adds at least "
                    f"{g(self.per_sample)} per sample{inputs}{calls}{batch} (once per step: a lower bound){told}, "
                    f"{g(self.ratio, 2)}x the data-loss scale {g(self.scale)}")
        return (f"over {g(self.elements)} {where} adds about {g(self.per_sample)} per sample{inputs}{calls}"
                f"{batch}{told}, {g(self.ratio, 2)}x the data-loss scale {g(self.scale)}")

    def _notes(self) -> list[str]:
        """What the estimate took where the file does not say: a pooling's
        positions as independent (about ``correlated`` where they move
        together: an expectation over the weights' draws, not a bound,
        review 68, 3), positions it leaves open, code it does not run."""
        notes = []
        if self.correlated is not None:
            notes.append(f"pooled positions taken as independent; about {g(self.correlated)} where they move "
                         f"together, as neighbouring pixels or steps often do: reglint profile --data measures it")
        elif self.open_pooling:
            notes.append("at most: a pooling averages positions the file leaves open, taken as moving together")
        if self.unknown:
            names = ", ".join(self.unknown[:3]) + (f" and {len(self.unknown) - 3} more" if len(self.unknown) > 3
                                                   else "")
            notes.append(f"taking {names}, whose code reglint does not run, as keeping the scale it reads")
        return notes


class ActivityRegularizerScale(Rule):
    code = "RL010"
    name = "activity-regularizer-scale"
    severity = Severity.ERROR
    summary = "An activity regularizer's penalty, summed over output elements, rivals the data loss."
    predicts_outcome = True
    options = {
        "activity-ratio-error": Option(20.0, "activity penalty / data-loss scale at which RL010 is an error"),
        "activity-ratio-warning": Option(3.0, "activity penalty / data-loss scale at which RL010 is a warning"),
    }

    def fix(self, layer: str, current: float | None, factor: float) -> Fix:
        """The activity lambda scaled so the penalty lands at half the warning level."""
        aim = f"the activity penalty at {g(0.5 * self.thresholds['activity-ratio-warning'])}x the data-loss scale"
        return Fix(aim, (Change("lambda", current, current * factor if current is not None else None,
                                layer=layer, target="activity"),))

    def penalty_estimates(self, model, analysis) -> list[PenaltyEstimate]:
        """The estimates every report prints beside the weights' penalty."""
        return [PenaltyEstimate(self.code, e.layer.path, "activity", e.per_sample, e.ratio, e.batch_factor,
                                bound="at least" if e.open_length else "at most" if e.open_pooling else "about",
                                assumed=bool(e.correlated is not None or e.unknown or e.mean_assumed))
                for e in self.estimates(model, analysis) if e.per_sample is not None and e.ratio is not None]

    def estimates(self, model, analysis) -> list[ActivityEstimate]:
        """Every trainable layer's activity penalty per sample as Keras adds
        it (every call, the batch where Keras sums over it), against the
        data-loss scale; ``per_sample`` None where the estimate does not
        follow the layer (``missing`` says why). ``check`` judges these and
        ``reglint explain`` prints them: one arithmetic, computed once per
        analysis (check and the reports ask for it alike)."""
        if not any(layer.activity_regularizer for layer in model.layers):
            return []
        cache = analysis.__dict__.setdefault("_activity_estimates", {})
        if id(model) not in cache:
            cache[id(model)] = self._estimates(model, analysis)
        return cache[id(model)]

    def _estimates(self, model, analysis) -> list[ActivityEstimate]:
        scale = analysis.loss_scale.value
        batch_factor = 1
        if not keras_divides_by_batch(model.framework, model.framework_version):
            batch_factor = analysis.context.effective_batch_size
        graph = NestedGraph(model)
        given = analysis.context.input_var
        inputs = given if given is not None else 1.0
        share = mean_share(given, analysis.context.input_mean)
        shares: dict[str, float] = {}  # the share of what each layer reads that is the inputs' mean
        moments = output_second_moments(model, graph, inputs, analysis.calls, share, shares)
        together: dict[str, float] = {}  # as ``shares``, on pooled positions that move together
        moving_together = output_second_moments(model, graph, inputs, analysis.calls, share, together,
                                                independent=False)
        moved_shares: dict[str, float] = {}  # as ``shares``, on inputs of 4x the mean square
        moved = output_second_moments(model, graph, 4 * inputs, analysis.calls, share, moved_shares)
        producers = analysis.calls.producers() if analysis.calls is not None else {}
        found = []
        for layer in model.layers:
            if layer.activity_regularizer is None or not layer.trainable:
                continue
            # a shared layer: Keras adds its activity penalty at every call (review 40, 2)
            calls = model.calls_of(layer)  # nested models called several times included
            estimate = ActivityEstimate(layer, calls, batch_factor, inputs, given is not None, scale,
                                        mean=analysis.context.input_mean)
            found.append(estimate)
            if correlated_steps(layer, graph):  # no estimate rather than a low one
                estimate.missing = ("a recurrent layer reading correlated steps (another recurrent layer's or a "
                                    "convolution's outputs), which the mean-field's independent steps underestimate")
                continue
            source = pass_through_source(layer, graph)
            on_softmax = softmax_classes(layer) is not None or (source is not None and softmax_classes(source))
            if on_softmax and not layer.activity_regularizer.l2:
                estimate.missing = ("an L1 penalty on softmax outputs is a constant (sum |p| = 1 per row): it has "
                                    "no gradient and does nothing")
                continue
            # a shared layer: each call on what it reads (review 60: an attention on its own output)
            keys = analysis.calls.keys.get(layer.path, []) if analysis.calls is not None else []
            keys = keys if len(keys) == calls else [None] * calls
            read = (source, graph, analysis.calls, producers, inputs, share)
            runs = _each_call(layer, keys, moments, shares, *read)
            if any(penalty is None or not math.isfinite(penalty) for penalty, _, _, _ in runs):
                estimate.missing = _why_none(layer, runs[0][2])
                continue
            estimate.per_sample = sum(penalty for penalty, _, _, _ in runs)
            correlated = sum(penalty or 0.0 for penalty, _, _, _ in _each_call(
                layer, keys, moving_together, together, *read))
            estimate.correlated = correlated if correlated >= 1.5 * estimate.per_sample else None
            at_four = sum(penalty or 0.0 for penalty, _, _, _ in _each_call(
                layer, keys, moved, moved_shares, source, graph, analysis.calls, producers, 4 * inputs, share))
            estimate.inputs_enter = not math.isclose(at_four, estimate.per_sample, rel_tol=1e-6)
            # where the inputs' mean shapes the estimate and no --input-mean said how much of them it is
            # (the inputs' own share: what a ReLU, an attention or a recurrent state makes is no assumption)
            estimate.mean_assumed = analysis.context.input_mean is None and share > 0 and \
                shares.get(layer.path, share) > 0 and (bool(layer.activity_on) or any(
                    x is not None and x.class_name in RECURRENT for x in (layer, source)))
            estimate.open_length = any(is_open for _, _, _, is_open in runs)
            told_apart = analysis.calls is not None and None not in keys
            before = upstream_calls(keys, analysis.calls, producers) if told_apart else upstream(layer, graph)
            estimate.unknown = [x.path for x in before if unknown_scale(x)]
            estimate.open_pooling = any(open_pooling(x) for x in before)
            counts = [elements for _, elements, _, _ in runs]
            estimate.elements = None if None in counts else sum(counts)  # every call's: Keras sums each
        return found

    def check(self, model, analysis):
        for estimate in self.estimates(model, analysis):
            if estimate.ratio is None:
                continue
            severity = self.level(estimate.ratio, "activity-ratio-warning", "activity-ratio-error")
            if severity is None:
                continue
            layer = estimate.layer
            factor = 0.5 * self.thresholds["activity-ratio-warning"] / estimate.ratio
            yield self.finding(
                f"activity {lam(layer.activity_regularizer)} {estimate.describe(model)}",
                layer=layer.path, target="activity", severity=severity,
                remedy=f"scale the activity lambda by {g(factor, 2)} or penalise a mean instead of a sum",
                fix=self.fix(layer.path, _factor(layer.activity_regularizer), factor),
                values={"activity_ratio": estimate.ratio, "penalty_per_sample": estimate.per_sample,
                        "penalty_per_sample_correlated": estimate.correlated,
                        "batch_factor": estimate.batch_factor, "calls": estimate.calls,
                        "input_second_moment": estimate.inputs, "input_mean": estimate.mean,
                        "output_elements": estimate.elements, "lambda_scale_factor": factor})

    def check_measured(self, result, report):
        """Each layer's measured activity penalty (per sample, as Keras >= 3.14
        divides by the batch) over the measured data loss."""
        model = getattr(report, "model", None)
        for lp in result.layer_penalties:
            if lp.kind != "activity":
                continue
            if model is not None and _constant_on_softmax(model, lp.layer):
                continue  # sum |p| = 1 per row: measured, a constant without a gradient (review 59, 3)
            ratio = _ratio(lp.penalty, result.data_loss)
            found = static_finding(report, self.code, layer=lp.layer)
            sratio = found.values.get("activity_ratio") if found else None
            static = found.severity if found else None
            measured = self.level(ratio, "activity-ratio-warning", "activity-ratio-error")
            if measured is None and static is None:
                continue
            static_text = f"static estimate {g(sratio, 2)}" if sratio is not None else "no static finding"
            fix = None
            if measured is not None and ratio:
                reg = _layer_regularizer(report, lp.layer)
                fix = self.fix(lp.layer, _factor(reg) if reg else None,
                               0.5 * self.thresholds["activity-ratio-warning"] / ratio)
            yield self.finding(
                f"measured activity penalty {g(lp.penalty)} per sample, {g(ratio, 2)}x the data loss "
                f"{g(result.data_loss)} ({static_text}): {verdict(static, measured, report, twin_harm(result))}",
                severity=measured or Severity.INFO, layer=lp.layer, target="activity", measured=True, fix=fix,
                remedy="scale the activity lambda down or penalise a mean instead of a sum" if measured else None,
                values={"activity_ratio": ratio, "static_activity_ratio": sratio, "penalty_per_sample": lp.penalty,
                        "data_loss": result.data_loss, "synthetic_data": result.synthetic})


def _each_call(layer, keys, moments, shares, source, graph, calls, producers, inputs, share):
    """``_one_call`` for each of ``keys`` (the layer's call-graph nodes; None
    where the calls were not told apart: the layer read as a whole), on
    ``moments`` and the ``shares`` of them that are a mean."""
    return [_one_call(layer, key, source, moments, graph, calls if key is not None else None, producers, inputs,
                      shares.get(key or layer.path, share)) for key in keys]


def _one_call(layer, key, source, moments, graph, calls, producers, inputs, share):
    """(penalty per sample, output elements it sums over, attention inputs,
    whether its output length is open) of one call of ``layer``: the
    call-graph node ``key``, on what that call reads and with its shapes
    (``call_run``), or (None) the layer read as a whole. An attention's
    query, key and value are its inputs' moments; ``share`` of what the
    call reads is a mean its tokens share (review 60, 3: the output
    projection at 0.62-0.77 of Keras' otherwise)."""
    run = call_run(layer, calls, key)
    if key is None:
        m_in = input_second_moment(layer, moments, graph, inputs)
        attention = attention_inputs(layer, graph, moments, inputs, share) if layer.activity_on else None
    else:
        m_in = node_input_moment(key, producers, moments, inputs)
        attention = node_attention_inputs(run, key, producers, graph, moments, inputs, share) \
            if layer.activity_on else None
    # the inputs' mean, which a recurrent state adds up step after step (review 58, 3): none on a given mean
    # square of about 1, standardised data (profile measures ~1 there: review 59, 5), unless --input-mean says
    penalty = activity_penalty_per_sample(run, m_in, source, output_moment=moments.get(key or layer.path),
                                          attention=attention, share=share)
    elements = penalised_elements(run, source, m_in) if attention is None else sum(
        n for n, _ in attention_projections(run, attention) or [])
    return penalty, elements, attention, open_length(run)


def _factor(reg) -> float | None:
    return (reg.l2 or reg.l1 or None) if reg is not None else None


def _layer_regularizer(report, path: str):
    model = getattr(report, "model", None)
    layer = model.layer(path) if model is not None else None
    return layer.activity_regularizer if layer is not None else None


def _ratio(a: float, b: float) -> float:
    if b == 0 or not math.isfinite(b):
        return math.inf if a else 0.0
    return a / b


def _constant_on_softmax(model, path: str) -> bool:
    """Whether ``path``'s activity penalty is an L1 alone on softmax
    outputs (its own, or those an ActivityRegularization after it hands
    on): ``sum |p|`` is 1 per row, a constant."""
    layer = model.layer(path)
    reg = layer.activity_regularizer if layer is not None else None
    if reg is None or reg.l2:
        return False
    source = pass_through_source(layer, NestedGraph(model))
    return softmax_classes(layer) is not None or (source is not None and softmax_classes(source) is not None)


def _why_none(layer, attention) -> str:
    """Why a layer's activity penalty has no estimate."""
    if not layer.activity_on and open_length(layer):
        return ("the file leaves the length of its output open (a sequence of any length, Input((None, ...)), or one "
                "behind a layer whose output shape is not recorded): the penalty sums over every step")
    if not layer.activity_on:
        return "the moments of this layer's output are not modelled"
    where = f"Keras penalises the outputs of its {', '.join(layer.activity_on)} projections"
    if any(name not in PENALISED_OUTPUT for name in layer.activity_on):
        return f"{where}, which reglint does not estimate for this layer"
    if attention is None:  # review 60, 4: said "without a gate" of one whose sequence length is not recorded
        return f"{where}, and the file does not record its sequence lengths"
    return f"{where}, and an initializer of theirs is not recorded"
