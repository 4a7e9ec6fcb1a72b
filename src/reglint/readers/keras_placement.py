"""Where Keras really applies a layer's ``activity_regularizer``.

Keras adds an activity penalty in ``Layer.__call__`` on the layer's output.
Two built-in layers make the config say something else:

- ``MultiHeadAttention(activity_regularizer=...)``: Keras 3 hands it to
  the query, key, value (gate) and output projections
  (``_get_common_kwargs_for_sublayer``), each called through ``__call__``,
  so it adds one penalty per projection output and none on the attention
  output (the argument is not passed on to ``Layer``). tf-keras 2 applies
  it to the attention output only, like any layer (one penalty).
  ``GroupedQueryAttention`` hands it to its query, key, (gate,) value and
  output projections and keeps it as its own too: one penalty per
  projection and one on the attention output (review 37, 4: five per call,
  counted in Keras 3.15).
- ``TimeDistributed(Dense(..., activity_regularizer=...))``: Keras 3's
  wrapper calls the inner layer's ``call()`` directly, so the inner
  activity penalty is never added; tf-keras 2 calls the inner layer
  through ``__call__`` on the time steps folded into the batch, so it adds
  one penalty divided by batch x time steps.

Both facts were checked on models Keras built (fixtures/exactness,
``activity_losses`` in its manifest).
"""

from __future__ import annotations

from reglint.model import Model, Problem, ProblemKind, Regularizer
from reglint.readers.keras_config import ModelConfig
from reglint.readers.keras_layers import child_layers
from reglint.readers.keras_objects import parse_regularizer

PROJECTIONS = ("query", "key", "value", "attention_output")
# Keras 3 saves GroupedQueryAttention as GroupQueryAttention
GQA = ("GroupedQueryAttention", "GroupQueryAttention")


def note_activity_placement(model: Model, tree: ModelConfig, keras3: bool) -> None:
    layers = {layer.path: layer for layer in model.layers}
    for node in tree.leaves:
        layer = layers.get(node.path)
        if layer is None:
            continue
        if node.class_name == "MultiHeadAttention" and layer.activity_regularizer is not None and keras3:
            targets = list(PROJECTIONS[:3]) + (["gate"] if node.config.get("use_gate") else []) + [PROJECTIONS[3]]
            layer.activity_on = targets
            model.notes.append(
                f"{layer.path}: MultiHeadAttention's activity_regularizer is applied by Keras 3 to the outputs of "
                f"its {', '.join(targets)} projections ({len(targets)} penalties per call), not to the "
                "attention output")
        if node.class_name in GQA and layer.activity_regularizer is not None and keras3:
            targets = ["query", "key"] + (["gate"] if node.config.get("use_gate") else []) + ["value", "output"]
            layer.activity_on = [*targets, "attention output"]
            model.notes.append(
                f"{layer.path}: GroupedQueryAttention's activity_regularizer is applied by Keras 3 to the outputs of "
                f"its {', '.join(targets)} projections and to the attention output ({len(targets) + 1} penalties "
                "per call)")
        if node.class_name == "TimeDistributed":
            _time_distributed(model, layer, node, keras3)
        if node.class_name == "Bidirectional":
            _bidirectional(model, layer, node)


def _inner_activity(node) -> tuple[str, Regularizer] | None:
    """(class, activity_regularizer) of the layer a wrapper holds (a
    Bidirectional's forward layer, a TimeDistributed's layer), where it has
    one."""
    children = child_layers(node.class_name, node.config)
    inner = children.get("forward_layer") or children.get("layer")
    if inner is None:
        return None
    inner_class, inner_cfg = inner
    reg = parse_regularizer(inner_cfg.get("activity_regularizer"))
    return (inner_class, reg) if reg is not None else None


def _bidirectional(model: Model, layer, node) -> None:
    """The activity_regularizer of the layer a Bidirectional wraps: Keras
    builds both directions from that layer's config and calls each through
    ``__call__``, so each direction's output is penalised (review 32: Keras
    added 0.151 + 0.152 per sample; reglint read none). Under the default
    ``merge_mode="concat"`` the two sums are the sum over the merged output,
    which is where it is counted."""
    found = _inner_activity(node)
    if found is None:
        return
    inner_class, reg = found
    backward = child_layers(node.class_name, node.config).get("backward_layer")
    if backward is not None and parse_regularizer(backward[1].get("activity_regularizer")) != reg:
        # an explicit backward_layer keeps its own config (review 37, 5: only
        # the forward half was penalised, 0.73 of the 1.85 counted)
        model.notes.append(f"{layer.path}: the forward {inner_class} inside Bidirectional has an "
                           "activity_regularizer its explicit backward_layer does not share: Keras penalises each "
                           "direction's output with its own, which is not estimated here")
        return
    if layer.activity_regularizer is None and node.config.get("merge_mode", "concat") == "concat":
        layer.activity_regularizer = reg
        model.notes.append(f"{layer.path}: the activity_regularizer of the {inner_class} inside Bidirectional is "
                           "applied by Keras to each direction's output: counted on the concatenated output (the "
                           "same sum)")
    else:
        model.notes.append(f"{layer.path}: the {inner_class} inside Bidirectional has its own activity_regularizer, "
                           "applied by Keras to each direction's output, which is not estimated here")


def _time_distributed(model: Model, layer, node, keras3: bool) -> None:
    found = _inner_activity(node)
    if found is None:
        return
    inner_class, reg = found
    if keras3:
        model.problems.append(Problem(
            ProblemKind.INACTIVE_REGULARIZER, layer.path,
            f"activity_regularizer of the {inner_class} inside TimeDistributed is never applied: Keras 3's "
            "TimeDistributed calls the inner layer's call() directly, so no activity loss is added",
            target="activity"))
    elif layer.activity_regularizer is None:
        layer.activity_regularizer = reg  # tf-keras calls the inner layer through __call__
        model.notes.append(f"{layer.path}: the activity_regularizer of the {inner_class} inside TimeDistributed "
                           "is applied by tf-keras to the output with the time steps folded into the batch (its "
                           "penalty is divided by batch x time steps)")


def note_mixed_precision_activity(model: Model, mixed: bool) -> None:
    """An activity regularizer in a Keras 3 model built under the
    ``mixed_float16`` policy: Keras 3.15.1's ``fit`` raises a TypeError
    adding the float16 activity penalty to the float32 loss (review 34, D5;
    review 37; fixtures/layer_sweep/k3_mixed_activity.keras), so the model
    cannot train as saved. Other releases were not checked: the note says
    which was."""
    if not mixed or not (model.framework_version or "").startswith("3."):
        return
    layers = [layer.path for layer in model.layers if layer.activity_regularizer is not None]
    if layers:
        model.notes.append(f"{', '.join(layers[:3])}{'...' if len(layers) > 3 else ''}: an activity_regularizer "
                           "under the mixed_float16 policy; Keras 3.15.1's fit raises a TypeError adding its float16 "
                           "penalty to the float32 loss (other releases not checked): cast the layer to float32 "
                           "(dtype='float32') or drop the regularizer")
