"""How a rule's feature responds to the model's lambdas: the data behind the
HTML lambda chart and the "largest safe lambda" that ``explain`` and the
HTML print.

A rule that judges a quantity depending on the lambdas returns ``Curve``
objects from ``Rule.sweep``. Every Keras penalty is linear in its factor, and
every per-step shrink is affine in it, so a curve is exact as
``value(m) = slope * m + offset`` where ``m`` multiplies every lambda the
rule counts (m = 1 is the file as saved). The levels are the rule's own
thresholds; ``limit`` (the largest m below the warning level) and ``fix``
(where the rule's remedy lands, when it fires) are computed by the rule,
never by a reporter.

>>> c = Curve(code="RL001", feature="penalty_ratio", label="rho", knob="lambda",
...           slope=40.0, offset=0.0, warning=5.0, error=18.0, fix=0.0625)
>>> c.at(0.5), c.limit
(20.0, 0.125)
>>> c.severity_at(1.0)
'error'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Curve:
    code: str  # the rule that owns it
    feature: str  # the quantity, as named in the finding's values
    label: str  # what it is, with its formula, for the chart
    knob: str  # what m multiplies: "lambda" (every factor the rule counts) or "weight_decay"
    slope: float
    offset: float
    warning: float | None
    error: float | None
    fix: float | None = None  # the multiplier the rule's fix suggests (None: the rule does not fire)
    lambdas: tuple[float, ...] = ()  # today's distinct factors, for an absolute axis
    notes: tuple[str, ...] = field(default_factory=tuple)
    # the layers whose lambdas the rule judges here, which its findings name
    # (empty: the optimizer's setting, every layer): a layer elsewhere does
    # not move the feature, and an override silencing the rule on every one
    # of them silences the curve too (review 72, 1-2)
    layers: tuple[str, ...] = ()
    # the layers a finding of the rule on this curve names, where not ``layers``: () for a finding about the
    # optimizer's decay, which no layer override covers (RL003; review 73, 2)
    about: tuple[str, ...] | None = None

    @property
    def named(self) -> tuple[str, ...]:
        """The layers a finding on this curve would name."""
        return self.layers if self.about is None else self.about

    def at(self, m: float) -> float:
        return self.slope * m + self.offset

    @property
    def today(self) -> float:
        return self.at(1.0)

    @property
    def limit(self) -> float | None:
        """The largest multiplier that keeps the feature under the warning
        level; 0 when no multiplier does (the offset alone is too large),
        None when there is no warning level or the feature does not grow."""
        if self.warning is None:
            return None
        if self.offset >= self.warning:
            return 0.0
        if self.slope <= 0:
            return None
        return (self.warning - self.offset) / self.slope

    def severity_at(self, m: float) -> str | None:
        value = self.at(m)
        if self.error is not None and value >= self.error:
            return "error"
        if self.warning is not None and value >= self.warning:
            return "warning"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "feature": self.feature, "label": self.label, "knob": self.knob,
                "slope": _num(self.slope), "offset": _num(self.offset), "today": _num(self.today),
                "warning": self.warning, "error": self.error, "limit": _num(self.limit), "fix": _num(self.fix),
                "lambdas": list(self.lambdas), "notes": list(self.notes), "layers": list(self.layers)}

    def judges(self, layer: str) -> bool:
        """Whether the feature moves with ``layer``'s lambda."""
        return not self.layers or layer in self.layers


def safe_multiplier(curves: list[Curve]) -> tuple[float | None, list[str]]:
    """The largest multiplier of today's lambdas under every curve's warning
    level, and the codes that bound it.

    >>> a = Curve("RL001", "penalty_ratio", "", "lambda", 10.0, 0.0, 5.0, 18.0)
    >>> b = Curve("RL002", "stability_fraction", "", "lambda", 0.1, 0.0, 0.5, 1.0)
    >>> safe_multiplier([a, b])
    (0.5, ['RL001'])
    """
    bounds = [(c.limit, c.code) for c in curves if c.knob == "lambda" and c.limit is not None]
    if not bounds:
        return None, []
    best = min(b for b, _ in bounds)
    return best, sorted({code for b, code in bounds if b <= best * (1 + 1e-9)})


def _num(value: float | None) -> Any:
    if value is None or math.isfinite(value):
        return value
    return str(value)
