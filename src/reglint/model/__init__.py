"""The framework-neutral model description (see ``description``)."""

from reglint.model.description import (
    UNRECORDED_CLASS,
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
    "UNRECORDED_CLASS",
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
