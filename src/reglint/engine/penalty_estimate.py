"""Penalties that are not a weight's, as the rule that judges them estimates
them: an activity regularizer adds its penalty on a layer's outputs, which
no sum over the weights holds. Rules return them from
``Rule.penalty_estimates`` and every report prints the same numbers
(review 71, 3: check's report showed no activity penalty where explain
estimated 1.4x the data-loss scale)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PenaltyEstimate:
    """One layer's penalty per sample at initialisation, as ``code`` estimates
    it, against the data-loss scale (``ratio``; the batch included where the
    framework sums over it).

    >>> PenaltyEstimate("RL010", "d2", "activity", 2.29, 1.42).to_dict()["ratio"]
    1.42
    """

    code: str
    layer: str
    kind: str  # activity
    per_sample: float
    ratio: float
    batch_factor: int = 1  # Keras 3.0-3.13 sum an activity penalty over the batch: the loss gets B times it
    # "about"; "at least" where the file leaves a length open (counted at one step), "at most" where a
    # pooling's positions are open (review 73, 1: a lower bound 17x under Keras' penalty read "about")
    bound: str = "about"
    assumed: bool = False  # it rests on what the file does not say (pooled positions, code it does not run ...)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "layer": self.layer, "kind": self.kind, "per_sample": self.per_sample,
                "batch_factor": self.batch_factor, "ratio": self.ratio, "bound": self.bound,
                "assumed": self.assumed}

