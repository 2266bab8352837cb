"""Domain errors of the scheduling package: branches of the service's one error tree
(`plansmith_server.errors`), so each reaches a caller with its status code and details.

Tree (status code, ErrorInfo reason)::

    SchedulingError                 a scheduling/analysis error (catch-all of this package)
    ├── InvalidProblemError         INVALID_ARGUMENT, INVALID_PROBLEM: malformed input
    │                               (unknown ids, negative durations, ...) + BadRequest
    ├── InfeasibleProblemError      FAILED_PRECONDITION, INFEASIBLE_PROBLEM: hard
    │                               constraints contradict each other + PreconditionFailure
    └── InvalidScheduleError        INTERNAL, INVALID_SCHEDULE: a solver's bug
                                    (scheduling/validation.py)

A dependency cycle is `plansmith_server.errors.DependencyCycleError` (INVALID_ARGUMENT,
DEPENDENCY_CYCLE), the same error the plan writes raise, re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence

from plansmith_server.errors import (
    DependencyCycleError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    PlansmithError,
    PreconditionViolation,
)

__all__ = [
    "DependencyCycleError",
    "InfeasibleProblemError",
    "InvalidProblemError",
    "SchedulingError",
]


class SchedulingError(PlansmithError):
    """Base class of the scheduling/analysis errors; the status code and reason come from
    each subclass (this class itself is a bug: INTERNAL)."""


class InvalidProblemError(SchedulingError, InvalidArgumentError):
    """The input is malformed (unknown ids, negative durations, duplicate ids, ...).

    The scheduling package does not know the request's field names: the one field
    violation names `field` (`tasks` unless the caller says otherwise)."""

    reason = "INVALID_PROBLEM"

    def __init__(self, message: str, *, field: str = "tasks") -> None:
        InvalidArgumentError.__init__(self, [FieldViolation(field, message)], message)


class InfeasibleProblemError(SchedulingError, FailedPreconditionError):
    """Hard constraints (fixed starts, pinned agents, capacities) cannot all hold.

    Attributes:
        conflicts: Human-readable descriptions of each conflict found (one precondition
            violation each).
    """

    reason = "INFEASIBLE_PROBLEM"

    def __init__(self, conflicts: Sequence[str]) -> None:
        self.conflicts: tuple[str, ...] = tuple(conflicts)
        FailedPreconditionError.__init__(
            self,
            "infeasible problem: " + "; ".join(self.conflicts),
            reason=self.reason,
            violations=[PreconditionViolation(self.reason, "schedule", c) for c in conflicts],
        )
