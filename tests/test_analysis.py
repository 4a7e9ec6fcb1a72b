"""The analysis applies the user's context to a copy: the reader's
description stays as the file holds it."""

from __future__ import annotations

from reglint.engine.analysis import Analysis, TrainingContext
from reglint.readers import read_model

from helpers import KERAS_FIXTURES


def test_context_does_not_mutate_the_model_it_is_given():
    model = read_model(KERAS_FIXTURES / "dense_l2.keras")
    before_opt = model.optimizer.class_name if model.optimizer else None
    before_regs = [(layer.path, v.name, v.regularizer) for layer, v in model.variables()]
    ctx = TrainingContext(optimizer="AdamW", learning_rate=0.5, weight_decay=0.1,
                          regularizers=[{"layers": "*", "target": "bias", "l2": 0.3}])
    analysis = Analysis(model, ctx)
    assert analysis.model is not model
    assert analysis.model.optimizer.class_name == "AdamW" and analysis.dynamics.weight_decay == 0.1
    assert any(v.regularizer and v.regularizer.l2 == 0.3 for _, v in analysis.model.variables())
    assert (model.optimizer.class_name if model.optimizer else None) == before_opt
    assert [(layer.path, v.name, v.regularizer) for layer, v in model.variables()] == before_regs


def test_no_context_shares_the_model():
    model = read_model(KERAS_FIXTURES / "dense_l2.keras")
    assert Analysis(model).model is model
