"""reglint: a linter for the regularization of deep-learning models.

>>> import reglint
>>> report = reglint.lint("fixtures/keras/conv2d_seed_l2.keras")  # doctest: +SKIP
>>> report.files[0].model.total_params  # doctest: +SKIP
1220
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__", "lint"]


def lint(*paths, select=None, extend_select=None, ignore=None, thresholds=None, **context):
    """Lint model files or folders and return the ``RunReport``.

    ``paths``: each a ``str`` or ``os.PathLike`` (``lint(*my_list)`` for a
    list); anything else raises TypeError. Paths in the report are relative
    to the working directory, as the CLI's.

    ``select``, ``extend_select``, ``ignore``: rule codes, prefixes or names
    exactly as ``--select`` takes them (``["RL001", "RL01",
    "penalty-dominates-loss"]``, ``"ALL"``). A plain string is one value of
    the flag: ``"RL006"`` selects RL006, ``"RL001,RL006"`` both. A selector
    matching no rule raises ValueError (a typo must not turn the lint off),
    and so does an empty ``select`` (it would run no rule); a non-string item
    raises TypeError.

    ``thresholds``: rule options as ``[tool.reglint.lint.thresholds]`` spells
    them (``{"penalty-ratio-warning": 3}``); an unknown name or a value that
    is no number raises ValueError.

    ``context`` takes the training context a file does not hold (``samples``,
    ``batch_size``, ``epochs`` or ``steps`` (not both: ValueError),
    ``classes``, ``target_var``, ``loss_scale``, ``optimizer``,
    ``learning_rate``, ``momentum``, ``weight_decay``). An unknown keyword or
    a value of the wrong type (``samples="many"``) raises TypeError naming
    it; a value out of range (``momentum=1``, ``loss_scale=0``, NaN) raises
    ValueError. Configuration files are not read: pass what you need.

    Unreadable files come back with ``FileReport.error`` set; nothing raises
    for a bad model.
    """
    from reglint import api
    from reglint.engine.analysis import TrainingContext
    from reglint.engine.discover import discover
    from reglint.engine.report import FileReport, RunReport
    from reglint.engine.runner import lint_file
    from reglint.engine.settings import Settings

    names = api.model_paths(paths)
    api.context_keys(context)
    settings = Settings(context=TrainingContext(**context))
    if select is not None:
        settings.select = api.selectors(select, "select", allow_empty=False)
    if extend_select is not None:
        settings.extend_select = api.selectors(extend_select, "extend_select")
    if ignore is not None:
        settings.ignore = api.selectors(ignore, "ignore")
    if thresholds is not None:
        settings.thresholds = api.thresholds(thresholds)
    files, missing, searched = discover(names, settings)
    report = RunReport(files=[FileReport(path=m, error="no such file or folder") for m in missing])
    linted = (lint_file(f, settings) for f in files)
    report.files.extend(r for r in linted if not (r.not_a_model and r.path in searched))  # JSON that is no model
    return report
