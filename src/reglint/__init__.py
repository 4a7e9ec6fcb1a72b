"""reglint: a linter for the regularization of deep-learning models.

>>> import reglint
>>> report = reglint.lint("fixtures/keras/conv2d_seed_l2.keras")  # doctest: +SKIP
>>> report.files[0].model.total_params  # doctest: +SKIP
1220
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__", "lint"]


def lint(*paths, select=None, ignore=None, thresholds=None, **context):
    """Lint model files or folders and return the ``RunReport``.

    ``context`` takes the training context a file does not hold (``samples``,
    ``batch_size``, ``epochs``, ``steps``, ``classes``, ``target_var``,
    ``loss_scale``, ``optimizer``, ``learning_rate``, ``momentum``,
    ``weight_decay``). Configuration files are not read: pass what you need.
    Unreadable files come back with ``FileReport.error`` set; nothing raises
    for a bad model.
    """
    from reglint.engine.analysis import TrainingContext
    from reglint.engine.discover import discover_searched
    from reglint.engine.report import FileReport, RunReport
    from reglint.engine.runner import lint_file
    from reglint.engine.settings import Settings

    settings = Settings(context=TrainingContext(**context))
    if select is not None:
        settings.select = list(select)
    if ignore is not None:
        settings.ignore = list(ignore)
    if thresholds:
        settings.thresholds = dict(thresholds)
    files, missing, searched = discover_searched([str(p) for p in paths], settings)
    report = RunReport(files=[FileReport(path=m, error="no such file or folder") for m in missing])
    linted = (lint_file(f, settings) for f in files)
    report.files.extend(r for r in linted if not (r.not_a_model and r.path in searched))  # JSON that is no model
    return report
