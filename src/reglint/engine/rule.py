"""The rule interface and the registry of rules.

A rule is one module in the top-level ``rules/`` folder (shipped as
``reglint.rules``) defining one subclass of ``Rule``. The module docstring is
the user's documentation (``reglint rule CODE`` prints it) in fixed sections:
What it does, Why is this bad?, Example, Use instead, Fix (what its fix aims at), Options, Formula,
Thresholds and calibration, References.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from reglint.engine.finding import Finding, Fix, Severity

if TYPE_CHECKING:  # pragma: no cover
    from reglint.engine.analysis import Analysis
    from reglint.engine.penalty_estimate import PenaltyEstimate
    from reglint.engine.sweep import Curve
    from reglint.model import Model


@dataclass(frozen=True)
class Option:
    """A rule threshold a user may set under [tool.reglint.lint.thresholds]."""

    default: float
    help: str


class Rule:
    """One rule: the only owner of its judgment.

    A rule measures one feature of the model, judges it against its own
    thresholds (``options``, overridable under
    ``[tool.reglint.lint.thresholds]``) and proposes one remedy as data
    (``Fix``). Everything that shows a verdict or a safe value asks the rule:

    - ``check(model, analysis)``: the static findings (``reglint check``);
    - ``check_measured(measurement, report)``: the same judgment on
      quantities ``reglint profile`` measured (optional);
    - ``sweep(model, analysis)``: how the feature responds to the lambdas,
      with its levels and the fix's multiplier (optional; the HTML chart and
      ``explain`` read it).
    """

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]
    summary: ClassVar[str]
    # Threshold options, keyed by the name used in the config table.
    options: ClassVar[dict[str, Option]] = {}
    # True when the rule's errors predict, from the recipe, that training
    # will be wrecked: ``reglint profile --data`` measures that outcome on
    # the user's data (RL023's twin), which outranks the prediction
    # (``reglint.profile.findings.yield_to_twin``). Exact rules (a config
    # Keras cannot train, weights that do not match) leave it False.
    predicts_outcome: ClassVar[bool] = False
    # Judged once per MultiOptimizer group with its own settings
    # (Analysis.group_views): a rule of the per-step shrink or stability
    # under one optimizer's dynamics, whose findings name their layer.
    per_optimizer_group: ClassVar[bool] = False

    def __init__(self, thresholds: dict[str, float] | None = None):
        # The run's whole [thresholds] table, so a rule can ask another
        # rule's judgment under the same settings.
        self.user_thresholds = dict(thresholds or {})
        self.thresholds = {k: o.default for k, o in self.options.items()}
        if thresholds:
            self.thresholds.update(
                {k: v for k, v in thresholds.items() if k in self.options}
            )

    # (error option, warning option) pairs on one quantity beyond the
    # ``X-error``/``X-warning`` names that ``level_pairs`` pairs by itself
    extra_level_pairs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def level_pairs(cls) -> list[tuple[str, str]]:
        """The rule's (error, warning) option pairs on one quantity: a
        warning level above its error level is refused (config loader).

        >>> from reglint.engine.rule import all_rules
        >>> all_rules()["RL001"].level_pairs()
        [('penalty-ratio-error', 'penalty-ratio-warning')]
        """
        pairs = [(name, name[:-len("error")] + "warning") for name in cls.options
                 if name.endswith("-error") and name[:-len("error")] + "warning" in cls.options]
        return pairs + list(cls.extra_level_pairs)

    def check(self, model: Model, analysis: Analysis) -> Iterable[Finding]:
        raise NotImplementedError

    def check_measured(self, measurement: Any, report: Any) -> Iterable[Finding]:
        """Findings from ``reglint profile``'s measurement (``ProfileResult``)
        with the static ``FileReport`` for comparison. Rules without a
        measured counterpart yield nothing."""
        return ()

    def sweep(self, model: Model, analysis: Analysis) -> list[Curve]:
        """The rule's feature as a function of a common multiplier on the
        lambdas it judges; empty for rules without one."""
        return []

    def penalty_estimates(self, model: Model, analysis: Analysis) -> list[PenaltyEstimate]:
        """The penalties outside the weights' (an activity regularizer's)
        as the rule estimates them, for every report to print; empty for
        rules without one."""
        return []

    def level(self, value: float | None, warning: str, error: str | None = None) -> Severity | None:
        """The rule's verdict on ``value`` against two of its options
        (``error`` None: the rule only warns).

        >>> class Demo(Rule):
        ...     code, name, severity, summary = "RL900", "demo", Severity.ERROR, ""
        ...     options = {"w": Option(1.0, ""), "e": Option(10.0, "")}
        >>> Demo().level(3.0, "w", "e"), Demo({"e": 2.0}).level(3.0, "w", "e"), Demo().level(0.5, "w", "e")
        (<Severity.WARNING: 'warning'>, <Severity.ERROR: 'error'>, None)
        """
        if value is None or value != value:  # NaN: no verdict
            return None
        if error is not None and value >= self.thresholds[error]:
            return Severity.ERROR
        if value >= self.thresholds[warning]:
            return Severity.WARNING
        return None

    def finding(
        self,
        message: str,
        *,
        layer: str | None = None,
        target: str | None = None,
        remedy: str | None = None,
        values: dict[str, Any] | None = None,
        severity: Severity | None = None,
        fix: Fix | None = None,
        measured: bool = False,
    ) -> Finding:
        return Finding(
            code=self.code,
            name=self.name,
            severity=severity or self.severity,
            message=message,
            layer=layer,
            target=target,
            remedy=remedy,
            values=values or {},
            fix=fix,
            measured=measured,
        )

    @classmethod
    def documentation(cls) -> str:
        module = sys.modules[cls.__module__]
        return inspect.cleandoc(module.__doc__ or cls.summary)


def _rule_classes(module) -> list[type[Rule]]:
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Rule)
        and obj is not Rule
        and obj.__module__ == module.__name__
    ]


_REGISTRY: dict[str, type[Rule]] | None = None


def all_rules() -> dict[str, type[Rule]]:
    """Every rule, by code, in code order. Loaded once, on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        import reglint.rules as package

        found: dict[str, type[Rule]] = {}
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_") or info.name.endswith("_test"):
                continue
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for cls in _rule_classes(module):
                if cls.code in found:
                    raise RuntimeError(f"two rules claim {cls.code}")
                found[cls.code] = cls
        _REGISTRY = dict(sorted(found.items()))
    return _REGISTRY


def get_rule(code_or_name: str) -> type[Rule] | None:
    rules = all_rules()
    key = code_or_name.strip()
    if key.upper() in rules:
        return rules[key.upper()]
    for cls in rules.values():
        if cls.name == key:
            return cls
    return None
