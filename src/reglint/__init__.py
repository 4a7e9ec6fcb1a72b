"""reglint: a linter for the regularization of deep-learning models."""

__version__ = "0.1.0"
