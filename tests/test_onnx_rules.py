"""The same rules on ONNX models: training artifacts carry their optimizer,
training graphs their penalty, inference graphs take them from the user."""

from __future__ import annotations

import math

from reglint.engine.analysis import TrainingContext
from reglint.engine.finding import Severity
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings

from helpers import FIXTURES

ONNX = FIXTURES / "onnx"


def lint(path, **context):
    report = lint_file(str(path), Settings(context=TrainingContext(**context)))
    assert report.error is None, report.error
    return report


def test_artifacts_weight_decay_and_learning_rate_are_linted():
    report = lint(ONNX / "artifacts_adamw" / "training_model.onnx")
    opt = report.model.optimizer
    assert opt.class_name == "AdamW" and math.isclose(opt.weight_decay, 0.01)
    assert math.isclose(report.analysis.dynamics.decoupled_shrink, 0.002 * 0.01, rel_tol=1e-6)
    # Over a 10-step run the decay integrates to 2e-4: RL005 says it does nothing.
    short = lint(ONNX / "artifacts_adamw" / "training_model.onnx", steps=10)
    assert [f.code for f in short.findings if f.code == "RL005"] == ["RL005"]


def test_training_graph_penalty_is_checked_against_the_loss():
    report = lint(ONNX / "train_l2_penalty.onnx")
    assert {p.l2 for p in report.analysis.penalties} == {0.0005}
    assert math.isclose(report.analysis.loss_scale.value, math.log(10))
    assert not [f for f in report.findings if f.severity is Severity.ERROR]
    # the same graph trained with SGD at lr 2000 would be unstable: 2*2000*5e-4 = 2 > 2(1+0)
    unstable = lint(ONNX / "train_l2_penalty.onnx", optimizer="SGD", learning_rate=2000.0)
    assert {f.code for f in unstable.findings if f.severity is Severity.ERROR} >= {"RL002"}


def test_inference_graph_takes_user_regularizers():
    report = lint(ONNX / "mlp.onnx", regularizers=[{"layers": "fc*", "target": "kernel", "l2": 5.0}],
                  optimizer="SGD", learning_rate=0.5, momentum=0.9, classes=10)
    codes = {f.code for f in report.findings}
    assert {"RL001", "RL002"} <= codes
    assert all(p.regularizer.source.value == "user" for p in report.analysis.penalties)
    assert lint(ONNX / "mlp.onnx").findings == []


def test_an_l2_penalty_is_judged_by_its_pull_without_an_initializer():
    """Review 54, 1: RL001's error needs each weight pulled by at least
    ``penalty-pull-error``; for an L2 alone the pull is ``2*l2`` whatever the
    initializer, but an ONNX file (no initializer recorded) skipped the gate
    and got an error where the same recipe in a Keras file got a warning."""
    report = lint(ONNX / "mlp.onnx", regularizers=[{"layers": "*", "target": "kernel", "l2": 0.1}], loss_scale=0.001)
    (rl001,) = [f for f in report.findings if f.code == "RL001"]
    assert rl001.values["penalty_ratio"] > 100 and rl001.values["pull_per_weight"] == 0.2
    assert rl001.severity is Severity.WARNING and "is under 0.4" in rl001.message
    strong = lint(ONNX / "mlp.onnx", regularizers=[{"layers": "*", "target": "kernel", "l2": 0.3}], loss_scale=0.001)
    assert [f.severity for f in strong.findings if f.code == "RL001"] == [Severity.ERROR]


def test_chain_and_angle_fixes_name_the_tensor_and_bound_the_safe_lambda():
    """On an ONNX CNN under SGD(0.5, momentum 0.9) with L2 0.3 everywhere,
    RL024 (shrink 2*0.5*0.3/0.1 = 3 per step in series) and RL021 are errors:
    their fixes name each tensor as the graph does (conv1.weight, not the
    role 'kernel'), as every other rule's do, and their curves bound the
    largest lambda before a warning (RL024: 0.05/3 of today's)."""
    report = lint(ONNX / "cnn.onnx", regularizers=[{"layers": "*", "target": "kernel", "l2": 0.3}],
                  optimizer="SGD", learning_rate=0.5, momentum=0.9)
    names = {(layer.path, var.name) for layer in report.model.layers for var in layer.variables}
    for code in ("RL021", "RL024"):
        [finding] = [f for f in report.findings if f.code == code]
        assert finding.severity is Severity.ERROR
        assert finding.fix.changes and all((c.layer, c.target) in names for c in finding.fix.changes), code
    curves = {c.code: c for c in report.curves}
    assert math.isclose(curves["RL024"].today, 3.0, rel_tol=1e-9)
    assert math.isclose(curves["RL024"].limit, 0.05 / 3.0, rel_tol=1e-9)
    theta = next(f for f in report.findings if f.code == "RL021").values["angular_update"]
    assert math.isclose(curves["RL021"].today, theta ** 2, rel_tol=1e-9)
    from reglint.engine.sweep import safe_multiplier

    assert safe_multiplier(report.curves) == (curves["RL024"].limit, ["RL024"])


def _stream_chain(path, l2):
    report = lint(path, regularizers=[{"layers": "*", "target": "kernel", "l2": l2}],
                  optimizer="SGD", learning_rate=0.03, momentum=0.9)
    return report, [f for f in report.findings if f.code == "RL024"]


def test_onnx_chains_stop_at_fused_and_decomposed_layer_norms():
    """The order of layers in an ONNX graph passes every parameter-free op (a
    residual Add, a Softmax), as Keras' layer graph does: a BERT whose
    LayerNorms onnxruntime fused into SkipLayerNormalization (which also
    takes the previous MatMul's bias) and EmbedLayerNormalization has its
    chains end at them, inside the normalized stream, so L2 0.3 under SGD
    (0.18 per step) is a warning, not an 8-layer chain to the output."""
    report, [f] = _stream_chain(FIXTURES / "onnx_ort_fused" / "bert_attention" / "model.onnx", 0.3)
    assert f.severity is Severity.WARNING and f.values["behind_normalization"] is True
    assert len(f.values["chain"]) == 2
    by_path = {layer.path: layer for layer in report.model.layers}
    norm = by_path["model.encoder.layer.0.attention.output.LayerNorm"]
    assert norm.class_name == "SkipLayerNormalization"
    # the dense's bias feeds the fused node, which is the LayerNorm's
    assert by_path["model.encoder.layer.0.attention.output.dense"].downstream == [norm.path]
    # the embedding tables feed the fused embedding normalization
    assert by_path["model.embeddings.word_embeddings"].downstream == ["model.embeddings.LayerNorm"]
    penalties = {p.layer.path: p for p in report.analysis.penalties}
    assert penalties["model.encoder.layer.0.intermediate.dense"].behind_norm
    assert not penalties["model.pooler.dense"].behind_norm


def test_tf2onnx_transformer_reads_the_same_with_its_layer_norm_as_an_op_or_decomposed():
    """A Keras post-norm block converted by tf2onnx at opset 13 (LayerNorm as
    ReduceMean/Sub/Pow... ops) and 17 (one LayerNormalization op): the
    embedding, the attention's projections and the MLP reach the outputs
    only through a LayerNorm, so their chain is judged at the stream's
    level (L2 1.5: 0.9 per step, an error)."""
    verdicts = []
    for opset in ("opset13", "opset17"):
        _, [f] = _stream_chain(FIXTURES / "onnx_tf2onnx" / opset / "transformer.onnx", 1.5)
        verdicts.append((f.severity, f.values["behind_normalization"], f.values["chain"]))
    assert verdicts[0] == verdicts[1]
    assert verdicts[0][:2] == (Severity.ERROR, True)
    assert verdicts[0][2][0] == "embed"
