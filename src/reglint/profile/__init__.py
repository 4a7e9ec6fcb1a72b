"""``reglint profile``: measure what the static rules estimate.

The static rules predict, from a file alone, how large each penalty is
against the data loss and what the optimizer will do with it. ``profile``
loads the model with Keras (TensorFlow backend), runs one forward/backward
pass on the user's data (or synthetic data shaped like the model's inputs)
and a short training run on an in-memory copy, and reports the measured
numbers next to the static estimates, saying which estimates held.

Modules: ``command`` (CLI glue), ``data`` (inputs), ``measure`` (gradients
and steps; the only module importing TensorFlow, and only when called),
``findings`` (measured findings), ``render`` (terminal table and JSON).
Importing this package never imports TensorFlow or Keras: ``reglint check``
must stay fast and free of them.
"""

from __future__ import annotations

from reglint.errors import ReglintError


class ProfileError(ReglintError):
    """A profile run that cannot go on: one line, exit code 2."""
