"""Findings: what a rule reports, and the severity scale."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Severity(str, Enum):
    """error: training with this setting is predicted to fail or be badly
    damaged; warning: likely suboptimal; info: worth knowing."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return {"info": 1, "warning": 2, "error": 3}[self.value]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.lower())
        except ValueError:
            raise ValueError(
                f"unknown severity {text!r}: use one of error, warning, info"
            ) from None


@dataclass(frozen=True)
class Change:
    """One setting a fix changes: ``parameter`` of ``target`` in ``layer``
    (None: every layer the finding names, or the optimizer) from ``current``
    to ``suggested`` (None: remove it).

    ``target`` is the variable's own name in its layer (the last part of
    its path: ``kernel``, ``bias``, ``gamma`` in Keras, ``conv1.weight`` in
    ONNX), ``activity``, ``penalty`` (every regularizer the finding counts),
    ``optimizer``, ``loss`` or ``compile``; ``parameter`` is ``lambda`` (the
    regularizer's factor, L1 or L2 as it is; ``l1`` or ``l2`` for one factor
    of an L1L2), ``weight_decay``, ``learning_rate``, ``momentum``,
    ``regularizer`` (its presence), ``loss_weight`` (target ``loss``: one
    output's weight in ``compile(loss_weights=...)``, ``layer`` the output)
    or ``loss_weights`` (target ``compile``: the argument as a whole, None
    to remove it).

    A Keras wrapper's or stacked cell's tensor (``forward_gru/kernel``)
    is named by its last part too, as every rule names it (review 49, 4:
    RL001 said ``kernel`` and RL007 ``forward_gru/kernel`` for one tensor,
    so their fixes never met); two such tensors of one layer with
    different factors are told apart by ``current``.

    >>> Change(layer="dense", target="kernel", parameter="lambda", current=0.2, suggested=0.0046).to_dict()["suggested"]
    0.0046
    >>> Change("regularizer", 0.3, None, layer="bidi", target="forward_gru/kernel").target
    'kernel'
    """

    parameter: str
    current: float | None
    suggested: float | None
    layer: str | None = None
    target: str = "optimizer"

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", self.target.rsplit("/", 1)[-1])

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "target": self.target, "parameter": self.parameter,
                "current": _number(self.current), "suggested": _number(self.suggested)}


def lambda_parameter(l1: float, l2: float, which: str) -> str:
    """The name a change gives one factor of a regularizer: ``lambda`` where
    it has one, ``l1`` or ``l2`` (``which``) where it has both (an L1L2), so
    two rules changing the same factor name it alike (review 43, 3).

    >>> lambda_parameter(0.0, 0.3, "l2"), lambda_parameter(0.05, 0.3, "l1")
    ('lambda', 'l1')
    """
    return which if l1 and l2 else "lambda"


@dataclass(frozen=True)
class Fix:
    """What a finding proposes, as data: the ``aim`` the change achieves and
    the ``changes`` that achieve it. Every reporter, ``explain`` and the HTML
    print this same object; the rule that made it is its only author.

    >>> fix = Fix("penalty at 100% of the data loss",
    ...           (Change("lambda", 0.2, 0.005, layer="dense", target="kernel"),))
    >>> fix.to_dict()["changes"][0]["parameter"]
    'lambda'
    >>> fix.describe()
    'kernel lambda 0.2 -> 0.005 in dense'
    """

    aim: str
    changes: tuple[Change, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"aim": self.aim, "changes": [c.to_dict() for c in self.changes]}

    def line(self) -> str:
        """``changes (aim): ...``, the one line every text surface prints
        (review 72, 4: the GitHub annotations and JUnit left the aim out).

        >>> Fix("RL001's aim", (Change("lambda", 0.2, 0.005, "dense", "kernel"),)).line()
        "changes (RL001's aim): kernel lambda 0.2 -> 0.005 in dense"
        """
        return f"changes ({self.aim}): {self.describe()}" if self.aim else f"changes: {self.describe()}"

    def describe(self, limit: int = 4) -> str:
        """The changes in one line, grouped where only the layer differs."""
        from reglint.engine.fmt import g

        groups: dict[tuple, list[str]] = {}
        for c in self.changes:
            key = (c.target if c.target != "penalty" else "", c.parameter, c.current, c.suggested)
            groups.setdefault(key, []).append(c.layer or "")
        parts = []
        for (target, parameter, current, suggested), layers in groups.items():
            to = "remove" if suggested is None else f"{g(current)} -> {g(suggested)}"
            named = list(dict.fromkeys(x for x in layers if x))  # a layer with several such tensors once
            where = ""
            if named:
                more = f" and {len(named) - limit} more" if len(named) > limit else ""
                where = " in " + ", ".join(named[:limit]) + more
            parts.append(f"{target + ' ' if target else ''}{parameter} {to}{where}")
        return "; ".join(parts)


def _number(value: Any) -> Any:
    """A setting for JSON: non-finite as text, and without the float noise
    arithmetic leaves in a suggested factor (0.012499999999999997 is
    0.0125; 12 significant digits keep every value a rule computes).

    >>> _number(0.0075 * 0.1 / (2 * 0.03)), _number(float("inf")), _number(3)
    (0.0125, 'inf', 3)
    """
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, float):
        return float(f"{value:.12g}")
    return value


@dataclass
class Finding:
    """One problem found in one model.

    ``layer`` is the layer path (None for model-wide findings), ``target`` the
    variable or setting it concerns (``kernel``, ``optimizer.weight_decay``).
    ``values`` holds the numbers behind the message (parameters, lambda,
    penalty, share of the loss, per-step shrink) and ``remedy`` the fix, with
    the safe lambda where there is one. ``measured`` marks findings from
    ``reglint profile`` rather than static estimates.
    """

    code: str
    name: str
    severity: Severity
    message: str
    layer: str | None = None
    target: str | None = None
    remedy: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    measured: bool = False
    fix: Fix | None = None

    @property
    def key(self) -> str:
        """Stable identity for baselines and fingerprints: never a value."""
        return f"{self.code}:{self.layer or ''}:{self.target or ''}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "layer": self.layer,
            "target": self.target,
            "message": self.message,
            "remedy": self.remedy,
            "values": self.values,
            "measured": self.measured,
            "fix": self.fix.to_dict() if self.fix is not None else None,
        }


@dataclass(frozen=True)
class CombinedChange:
    """Where several rules change the same setting to different values: the
    one value that meets them all (the smallest where every rule lowers it,
    the largest where every rule raises it), or None where they pull apart.
    Each rule's own change stays its own; this says how they add up (review
    40, 8: RL004's 0.019 applied left RL001's error, which asked 3.02e-4)."""

    layer: str | None
    target: str
    parameter: str
    current: float
    asked: tuple[tuple[str, float], ...]  # (rule code, suggested) per rule
    together: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "target": self.target, "parameter": self.parameter,
                "current": _number(self.current), "asked": {code: _number(v) for code, v in self.asked},
                "together": _number(self.together)}

    def describe(self, layers: list[str] | None = None, limit: int = 4) -> str:
        """One line; ``layers``: every layer the same combination holds for."""
        from reglint.engine.fmt import g

        named = layers if layers is not None else ([self.layer] if self.layer else [])
        where = (" in " + ", ".join(named[:limit]) + (f" and {len(named) - limit} more" if len(named) > limit
                                                       else "")) if named else ""
        def shown(value: float) -> str:  # a factor at 0 is a regularizer removed
            return "remove" if value == 0 and self.parameter in ("lambda", "l1", "l2") else g(value)

        asked = ", ".join(f"{code} {shown(value)}" for code, value in self.asked)
        if self.together is None:
            return (f"{self.target} {self.parameter} {g(self.current)}{where}: the rules pull it apart ({asked}); "
                    f"choose one rule's aim")
        return f"{self.target} {self.parameter} {g(self.current)} -> {shown(self.together)}{where}: meets {asked}"


def describe_combined(combined: list[CombinedChange]) -> list[str]:
    """The combinations in lines, one per setting and values, its layers
    listed together (as ``Fix.describe`` groups a fix's changes)."""
    groups: dict[tuple, list[CombinedChange]] = {}
    for c in combined:
        groups.setdefault((c.target, c.parameter, c.current, c.asked, c.together), []).append(c)
    return [same[0].describe([c.layer for c in same if c.layer]) for same in groups.values()]


def setting_key(change: Change) -> tuple[tuple | None, float | None]:
    """(the setting ``change`` moves, the value it asks for) in terms two
    rules' changes can be compared in: a regularizer removed is its factor
    at 0, so a rule that lowers it and one that removes it meet at removal
    (review 47: RL001 lowered a table's L2 that RL025 and RL008 remove); an
    L1L2's two factors (``l1``, ``l2``) are two settings even when they are
    equal (review 49, 1: L1L2(0.3, 0.3)'s were merged and RL004's L1 change
    landed on the L2), ``lambda`` names a regularizer's only factor, and a
    removal both; a factor is keyed by the value it starts from, so an
    L1L2's L1 and L2 are told apart whichever rule names them ``lambda``
    (review 43, 3). (None, None) where it starts from nothing.

    >>> setting_key(Change("regularizer", 0.3, None, layer="d", target="kernel"))
    (('d', 'kernel', 'lambda', 0.3), 0.0)
    """
    factor = change.parameter in ("lambda", "l1", "l2", "regularizer")
    suggested = 0.0 if change.suggested is None and factor else change.suggested
    if change.current is None:
        return None, None
    kind = change.parameter if change.parameter in ("l1", "l2") else "lambda" if factor else change.parameter
    return (change.layer, change.target, kind, change.current), suggested


def combined_changes(findings: list[Finding]) -> list[CombinedChange]:
    """Settings that two or more rules' fixes change to different values.

    >>> a = Finding("RL001", "n", Severity.ERROR, "m", fix=Fix("a", (Change("lambda", 0.5, 3e-4, "d", "kernel"),)))
    >>> b = Finding("RL004", "n", Severity.ERROR, "m", fix=Fix("b", (Change("lambda", 0.5, 0.019, "d", "kernel"),)))
    >>> describe_combined(combined_changes([a, b]))
    ['kernel lambda 0.5 -> 3.00e-4 in d: meets RL001 3.00e-4, RL004 0.019']
    """
    asked: dict[tuple, dict[str, float]] = {}
    current: dict[tuple, float] = {}
    named: dict[tuple, str] = {}  # an L1L2's factor as a rule named it
    for finding in findings:
        if finding.fix is None:
            continue
        for change in finding.fix.changes:
            key, suggested = setting_key(change)
            if key is None or suggested is None or change.current is None:
                continue
            current[key] = change.current
            if change.parameter in ("l1", "l2"):
                named[key] = change.parameter
            by_rule = asked.setdefault(key, {})
            value = by_rule.get(finding.code)
            by_rule[finding.code] = suggested if value is None else (
                min(value, suggested) if suggested < change.current else max(value, suggested))
    out = []
    for key, by_rule in asked.items():
        if len(by_rule) < 2 or len(set(by_rule.values())) < 2:
            continue
        now = current[key]
        values = list(by_rule.values())
        together = min(values) if all(v < now for v in values) else max(values) if all(v > now for v in values) \
            else None
        out.append(CombinedChange(key[0], key[1], named.get(key, key[2]), current=now,
                                  asked=tuple(sorted(by_rule.items())), together=together))
    return out
