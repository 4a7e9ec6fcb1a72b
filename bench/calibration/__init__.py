"""reglint's calibration grid: real Keras trainings whose outcomes set the
rules' thresholds. ``bench/calibrate.py`` is the command line; the modules:

- ``grid``: the run specs (the classic grid of 2026-11-25 and the modern one
  of issue 15: residual/BatchNorm, pre- and post-norm transformers, LSTM/GRU,
  embeddings);
- ``data``: scikit-learn data sets, split and standardised, and their
  image, token and sequence views;
- ``models``: Keras models and optimizers for a spec;
- ``train``: one training, the ``train`` and ``models`` commands;
- ``outcomes``: healthy / degraded / collapsed / diverged against the
  group's lambda = 0 baseline, and the fit / held-out split;
- ``features``: reglint's findings and the Analysis features per saved model;
- ``scoring``: the ``report`` and ``sweep`` commands.
"""
