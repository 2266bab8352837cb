"""Input and output model of the scheduler engine (RCPSP with agents).

Times are in hours (floats). Solvers work on integers internally: every time is multiplied
by ``SchedulingProblem.time_resolution`` (units per hour, default 60 = minutes) and
rounded, and results are converted back. PSPLIB instances use a resolution of 1 (one unit
per period).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Goal(enum.Enum):
    """Optimisation goals, applied lexicographically in the order given."""

    MINIMIZE_DURATION = "MINIMIZE_DURATION"
    """Minimise the makespan (project duration)."""
    BALANCE_WORKLOAD = "BALANCE_WORKLOAD"
    """Minimise the busiest agent's load, then maximise the least busy one's."""


class ScheduleStatus(enum.Enum):
    """Outcome of a solve."""

    OPTIMAL = "OPTIMAL"
    """The makespan is proven optimal (equal to the lower bound)."""
    FEASIBLE = "FEASIBLE"
    """A valid schedule, not proven optimal."""
    NO_SOLUTION = "NO_SOLUTION"
    """No schedule was found (only when the solver failed and no fallback ran)."""


@dataclass(frozen=True)
class Resource:
    """A general renewable resource (PSPLIB style).

    Attributes:
        id: Unique resource id.
        capacity: Units available at every instant.
    """

    id: str
    capacity: int


@dataclass(frozen=True)
class Activity:
    """One activity (task) to schedule.

    Attributes:
        id: Unique activity id.
        duration: Duration in hours (0 for done work).
        predecessors: Ids of activities that must finish before this one starts.
        demands: Units of each general resource (by resource id) used while it runs.
        requires_agent: Whether one agent must do it. Implied when ``eligible_agents``
            or ``pinned_agent`` is set.
        eligible_agents: Agents allowed to do it; ``None`` means every agent of the
            problem. An empty set means no agent can do it: the activity (and everything
            depending on it) is reported as unschedulable instead of being scheduled.
        pinned_agent: The agent that must do it (in-progress or pinned work keeps its
            agent). Overrides ``eligible_agents``.
        fixed_start: Start time in hours that the schedule must keep exactly (e.g. 0 for
            work already started). Every predecessor of a fixed activity must itself be
            fixed or of zero duration.
        name: Free text for humans.
    """

    id: str
    duration: float
    predecessors: tuple[str, ...] = ()
    demands: Mapping[str, int] = field(default_factory=dict)
    requires_agent: bool = False
    eligible_agents: frozenset[str] | None = None
    pinned_agent: str | None = None
    fixed_start: float | None = None
    name: str = ""

    @property
    def needs_agent(self) -> bool:
        """Whether an agent must be assigned."""
        return (
            self.requires_agent or self.eligible_agents is not None or self.pinned_agent is not None
        )


@dataclass(frozen=True)
class SchedulingProblem:
    """A scheduling problem.

    Attributes:
        activities: The activities; ids must be unique.
        resources: General renewable resources.
        agents: Agent ids; each agent is a resource of capacity 1 chosen per activity.
        time_resolution: Integer time units per hour used inside the solvers.
        name: Free text (instance name for PSPLIB).
    """

    activities: tuple[Activity, ...]
    resources: tuple[Resource, ...] = ()
    agents: tuple[str, ...] = ()
    time_resolution: float = 60.0
    name: str = ""


@dataclass(frozen=True)
class ScheduledActivity:
    """Where and when one activity runs.

    Attributes:
        activity_id: The activity.
        start: Start in hours from the schedule origin.
        end: End in hours.
        agent: Agent doing it, or ``None`` when it needs none.
    """

    activity_id: str
    start: float
    end: float
    agent: str | None = None


@dataclass(frozen=True)
class UnschedulableActivity:
    """An activity left out of the schedule, with the reason.

    Attributes:
        activity_id: The activity.
        reason: Human-readable reason.
        blocked_by: When it depends on an unschedulable activity, the root causes'
            ids; empty when the activity itself has no eligible agent.
    """

    activity_id: str
    reason: str
    blocked_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentWorkload:
    """Load of one agent in a schedule.

    Attributes:
        agent: Agent id.
        busy_hours: Sum of durations of its activities.
        utilization: ``busy_hours / makespan`` (0 when the makespan is 0).
        activity_ids: Its activities in start order.
    """

    agent: str
    busy_hours: float
    utilization: float
    activity_ids: tuple[str, ...]


@dataclass(frozen=True)
class LowerBounds:
    """Lower bounds on the makespan, in hours.

    Attributes:
        critical_path: Longest path ignoring resources (fixed starts act as release times).
        resource: Largest total demand / capacity over resources and agent pools.
        solver: Best bound proven by the solver (0 when the solver proves none).
    """

    critical_path: float
    resource: float
    solver: float = 0.0

    @property
    def best(self) -> float:
        """The largest of the bounds."""
        return max(self.critical_path, self.resource, self.solver)


@dataclass(frozen=True)
class SolverStats:
    """Statistics of one solve.

    Attributes:
        solver: ``"cpsat"``, ``"heuristic"`` or ``"baseline"``.
        status: Solver status name (CP-SAT's ``OPTIMAL``/``FEASIBLE``/... or the
            heuristic's ``FEASIBLE``/``OPTIMAL`` when it met the lower bound).
        wall_time_s: Wall time of the whole solve.
        objective: Makespan objective value in hours (``None`` without a solution).
        best_bound: Solver's best objective bound in hours (``None`` when unknown).
        branches: CP-SAT branches (0 for the heuristic).
        conflicts: CP-SAT conflicts (0 for the heuristic).
        iterations: Heuristic schedules generated (0 for CP-SAT).
        fallback_reason: Why the factory fell back to the heuristic, if it did.
        notes: Free-form details (phase statuses, parameters).
    """

    solver: str
    status: str
    wall_time_s: float
    objective: float | None = None
    best_bound: float | None = None
    branches: int = 0
    conflicts: int = 0
    iterations: int = 0
    fallback_reason: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScheduleResult:
    """A solved schedule.

    Attributes:
        status: Outcome.
        activities: Scheduled activities sorted by (start, id).
        makespan: End of the last activity, hours.
        lower_bounds: The bounds; ``lower_bound`` is their max.
        lower_bound: Best lower bound on the makespan, hours.
        optimal: ``makespan`` is proven optimal.
        gap: ``(makespan - lower_bound) / makespan`` (0 when the makespan is 0).
        workloads: One entry per agent of the problem, in problem order.
        critical_chain: Activity ids from time 0 to the makespan where each starts exactly
            when a predecessor or the previous user of a shared agent/resource ends.
        unschedulable: Activities left out, with reasons.
        solver: Name of the solver that produced the schedule.
        stats: Solver statistics.
        goals: Goals applied, in priority order.
    """

    status: ScheduleStatus
    activities: tuple[ScheduledActivity, ...]
    makespan: float
    lower_bounds: LowerBounds
    lower_bound: float
    optimal: bool
    gap: float
    workloads: tuple[AgentWorkload, ...]
    critical_chain: tuple[str, ...]
    unschedulable: tuple[UnschedulableActivity, ...]
    solver: str
    stats: SolverStats
    goals: tuple[Goal, ...] = (Goal.MINIMIZE_DURATION,)

    def by_id(self) -> dict[str, ScheduledActivity]:
        """Scheduled activities keyed by activity id."""
        return {a.activity_id: a for a in self.activities}

    @property
    def max_agent_load(self) -> float:
        """Busy hours of the busiest agent (0 without agents)."""
        return max((w.busy_hours for w in self.workloads), default=0.0)
