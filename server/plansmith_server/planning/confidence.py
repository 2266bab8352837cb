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

The slopes are fitted (maximum likelihood, L2-regularized) on every labelled brief of
``bench/plan_quality/`` that the library has been tuned on (``briefs.toml`` both halves,
``dev_briefs.toml``, ``blind_briefs.toml``), where a reviewer's verdict per brief is
recorded; ``bench/calibrate_confidence.py`` refits them. Those briefs have been studied,
so their acceptance rate (over 0.9) says little of a brief the planner has not seen. The
intercept is therefore set from briefs it had not seen: the share of recognized plans
accepted when each blind set was first scored (``UNSEEN_ACCEPTED``), so that over such a
set a recognized plan's mean confidence is that share. A brief the
library does not recognize gets a probability below ``UNRECOGNIZED_CAP``: its plan is
honest about what it is, a list of work packages in the brief's own words, which a lead
rarely signs as it stands.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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

UNSEEN_ACCEPTED = (23, 50)
"""Recognized plans accepted / scored at the first scoring of a blind set: 11 of 23 on
``blind_briefs.toml`` (2026-12-07), 12 of 27 on ``blind2_briefs.toml`` (2026-12-08)."""

COEFFICIENTS: dict[str, float] = {
    "intercept": -1.175,
    "domain_score": 0.435,
    "margin": 1.286,
    "library_share": 0.338,
}
"""Logistic coefficients for recognized briefs: the slopes fitted by
``bench/calibrate_confidence.py`` on the 120 studied briefs (108 recognized, 103 right);
the intercept (fitted there at 1.640) lowered so that the recognized plans of
``blind2_briefs.toml``, scored before anyone tuned on it, average ``UNSEEN_ACCEPTED``'s
share (0.46). Among recognized briefs the features separate little (docs/planning.md)."""
UNRECOGNIZED_CAP = 0.35
"""Upper bound of the confidence of a plan whose domain was not recognized."""
UNRECOGNIZED_BASE = 0.071
"""Confidence of an unrecognized brief: the Laplace-smoothed share of right plans among
the labelled briefs that were not recognized (0 of 12)."""


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


def plan_confidence(
    features: ConfidenceFeatures,
    coefficients: Mapping[str, float] = COEFFICIENTS,
    unrecognized_base: float = UNRECOGNIZED_BASE,
) -> float:
    """The calibrated probability, rounded to 0.01, in [0.02, 0.98].

    `coefficients` and `unrecognized_base` default to the fitted model; the calibration
    script passes refits (e.g. each leave-one-out fold's) through the same function."""
    if not features.recognized:
        value = unrecognized_base + 0.1 * features.library_share
        return round(min(UNRECOGNIZED_CAP, value), 2)
    c = coefficients
    z = (
        c["intercept"]
        + c["domain_score"] * features.domain_score
        + c["margin"] * features.margin
        + c["library_share"] * features.library_share
    )
    p = 1.0 / (1.0 + math.exp(-z))
    return round(min(0.98, max(0.02, p)), 2)
