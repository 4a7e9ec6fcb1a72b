"""``reglint profile``: measure what the static rules estimate.

The static rules predict, from a file alone, how large each penalty is
against the data loss and what the optimizer will do with it. ``profile``
loads the model with Keras 3 (on TensorFlow or PyTorch, ``--backend``; safe
mode unless ``--trust-model``), measures the per-variable gradients of the penalty and
of the data loss at the saved weights on the user's data (or synthetic data
shaped like the model's inputs), then runs the saved optimizer twice from
the saved weights on an in-memory copy: as saved and as an unregularized
twin (every penalty and weight decay removed), scored on a held-back slice
of the data. It reports the measured numbers next to the static estimates
and lets the rules judge them (``Rule.check_measured``; RL023 judges the
twin).

Modules: ``command`` (CLI glue), ``data`` (inputs, the held-back slice),
``framework`` (which backend, and the lazy import), ``backend`` (what the
measurement asks of the framework) with ``backend_tf`` and
``backend_torch``, ``load`` (safe-mode loading, the data loss),
``gradients`` (per-variable measurement), ``run`` (optimizers, the
training step, the outcome rule), ``twin`` (step budget and the pair of
runs), ``measure`` (the measurement in order), ``result`` (dataclasses and
JSON), ``findings`` (the rules' measured findings), ``render`` (terminal
and JSON). Importing this package never imports TensorFlow, PyTorch or
Keras: ``reglint check`` must stay fast and free of them;
``framework.load_backend`` is the one place that does.
"""

from __future__ import annotations

from reglint.errors import ReglintError


class ProfileError(ReglintError):
    """A profile run that cannot go on: one line, exit code 2."""
