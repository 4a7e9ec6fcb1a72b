"""The framework-neutral model description (see ``description``)."""

from reglint.model.description import (
    Initializer,
    Layer,
    LearningRate,
    Loss,
    Model,
    Optimizer,
    Output,
    ParamGroup,
    Problem,
    ProblemKind,
    Provenance,
    Regularizer,
    Role,
    Variable,
    WeightStats,
)

__all__ = [
    "Initializer",
    "Layer",
    "LearningRate",
    "Loss",
    "Model",
    "Optimizer",
    "Output",
    "ParamGroup",
    "Problem",
    "ProblemKind",
    "Provenance",
    "Regularizer",
    "Role",
    "Variable",
    "WeightStats",
]
