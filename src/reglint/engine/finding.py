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
    def parse(cls, text: str) -> "Severity":
        try:
            return cls(text.lower())
        except ValueError:
            raise ValueError(
                f"unknown severity {text!r}: use one of error, warning, info"
            ) from None


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
        }
