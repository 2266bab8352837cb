"""Domain errors of the scheduling package.

Every error derives from :class:`SchedulingError`. ``reason`` is a stable machine-readable
string and ``status_hint`` names the gRPC status code the edge should map it to; the
package itself never imports grpc, so the hint is just a name.

Tree::

    SchedulingError
    ├── InvalidProblemError        (INVALID_ARGUMENT)  malformed input (unknown ids, ...)
    │   └── DependencyCycleError   (INVALID_ARGUMENT)  the dependency graph has a cycle
    └── InfeasibleProblemError     (FAILED_PRECONDITION) hard constraints contradict each other
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class SchedulingError(Exception):
    """Base class of all scheduling/analysis domain errors."""

    reason: ClassVar[str] = "SCHEDULING_ERROR"
    status_hint: ClassVar[str] = "INTERNAL"


class InvalidProblemError(SchedulingError):
    """The input is malformed (unknown ids, negative durations, duplicate ids, ...)."""

    reason = "INVALID_PROBLEM"
    status_hint = "INVALID_ARGUMENT"


class DependencyCycleError(InvalidProblemError):
    """The dependencies contain a cycle.

    Attributes:
        cycle: Ids along one cycle in dependency order; each id depends on the one before
            it and the first depends on the last.
    """

    reason = "DEPENDENCY_CYCLE"
    status_hint = "INVALID_ARGUMENT"

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle: tuple[str, ...] = tuple(cycle)
        super().__init__("dependency cycle: " + " -> ".join([*self.cycle, self.cycle[0]]))


class InfeasibleProblemError(SchedulingError):
    """Hard constraints (fixed starts, pinned agents, capacities) cannot all hold.

    Attributes:
        conflicts: Human-readable descriptions of each conflict found.
    """

    reason = "INFEASIBLE_PROBLEM"
    status_hint = "FAILED_PRECONDITION"

    def __init__(self, conflicts: Sequence[str]) -> None:
        self.conflicts: tuple[str, ...] = tuple(conflicts)
        super().__init__("infeasible problem: " + "; ".join(self.conflicts))
