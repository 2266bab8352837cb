"""What a plan's ``confidence`` means, and how it is computed.

``confidence`` is the estimated probability that a reviewer (a senior lead reading the
brief) accepts the plan's *structure* for this brief: the right kind of plan, with
the work a lead expects and nothing from another domain. It is not about the schedule
-- a plan whose deadline is at risk can be exactly the right plan; deadline, budget and
staffing problems are reported as risks and warnings instead.

It is a logistic model over features of how the plan was made:

* ``recognized`` -- whether a library domain fits the brief at all;
* ``domain_score`` -- the recognized compound's gated score (``recognition.py``);
* ``margin`` -- its lead over the next compound (a near tie means the planner could
  easily have picked the wrong domain);
* ``library_share`` -- the share of the requirements the library covers (the rest
  are work packages sized from their words).

The coefficients are fitted (maximum likelihood, L2-regularized) on the labelled
briefs of the benchmark's *tune* half (``bench/plan_quality.py --half tune``), where a
reviewer's verdict per brief is recorded; ``bench/calibrate_confidence.py`` refits
them and prints the reliability table. A brief the library does not recognize gets a
probability below ``UNRECOGNIZED_CAP``: its plan is honest about what it is, a list of
work packages in the brief's own words, which a lead rarely signs as it stands.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .plan import RequirementCoverage
from .recognition import Recognition

__all__ = [
    "COEFFICIENTS",
    "FEATURES",
    "UNRECOGNIZED_CAP",
    "ConfidenceFeatures",
    "confidence_features",
    "plan_confidence",
]

FEATURES = ("domain_score", "margin", "library_share")
"""The model's inputs for recognized briefs, in coefficient order."""

COEFFICIENTS: dict[str, float] = {
    "intercept": 1.458,
    "domain_score": 0.210,
    "margin": 0.288,
    "library_share": -0.030,
}
"""Logistic coefficients for recognized briefs, fitted by ``bench/calibrate_confidence.py``
on the tune half (14 recognized briefs, 12 right): with so few wrong plans the features
barely move the estimate, which stays near the observed share of right plans. A refit
after the library was tuned on that half separates it perfectly (every recognized brief
right) and is not used: its 0.98 would be an in-sample claim (docs/planning.md)."""
UNRECOGNIZED_CAP = 0.35
"""Upper bound of the confidence of a plan whose domain was not recognized."""
UNRECOGNIZED_BASE = 0.056
"""Confidence of an unrecognized brief: the Laplace-smoothed share of right plans among
the tune half's unrecognized briefs (0 of 16)."""


@dataclass(frozen=True)
class ConfidenceFeatures:
    """The inputs of the confidence model."""

    recognized: bool
    domain_score: float
    margin: float
    library_share: float


def confidence_features(
    recognition: Recognition | None, coverage: Sequence[RequirementCoverage]
) -> ConfidenceFeatures:
    """Features of a plan (see the module docstring)."""
    best = recognition.best if recognition is not None else None
    runner = recognition.runner_up if recognition is not None else None
    if coverage:
        share = sum(1 for c in coverage if c.match != "generic") / len(coverage)
    else:
        share = 1.0 if best is not None else 0.0
    score = best.score if best is not None else 0.0
    margin = score - (runner.score if runner is not None else 0.0) if best is not None else 0.0
    return ConfidenceFeatures(best is not None, score, max(0.0, margin), share)


def plan_confidence(features: ConfidenceFeatures) -> float:
    """The calibrated probability, rounded to 0.01, in [0.02, 0.98]."""
    if not features.recognized:
        value = UNRECOGNIZED_BASE + 0.1 * features.library_share
        return round(min(UNRECOGNIZED_CAP, value), 2)
    c = COEFFICIENTS
    z = (
        c["intercept"]
        + c["domain_score"] * features.domain_score
        + c["margin"] * features.margin
        + c["library_share"] * features.library_share
    )
    p = 1.0 / (1.0 + math.exp(-z))
    return round(min(0.98, max(0.02, p)), 2)
