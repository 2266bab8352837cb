"""Plan tasks as the analysis functions see them, and their conversion to a scheduling
problem.

The service's own task model (and capability normalisation) lives elsewhere; the edge
converts it to :class:`PlanTask`, with ``eligible_agents`` already resolved from
required capabilities.
"""

from __future__ import annotations

import enum
from collections.abc import Container, Sequence
from dataclasses import dataclass

from .errors import InvalidProblemError
from .model import Activity, SchedulingProblem

#: Hours assumed for a task without any estimate (flagged as a risk).
DEFAULT_ESTIMATE_HOURS = 8.0


class TaskStatus(enum.Enum):
    """Task status."""

    TODO = "TODO"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    BLOCKED = "BLOCKED"
    FAILED = "FAILED"


class Priority(enum.IntEnum):
    """Task priority; higher value = more important."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


@dataclass(frozen=True)
class PlanTask:
    """A task of a plan, as input to analysis, suggestions and scheduling.

    Attributes:
        id: Unique task id.
        status: Current status.
        dependencies: Ids of tasks that must be done before this one starts.
        estimate_hours: Total estimate (most likely), ``None`` when missing.
        remaining_hours: Work left, if the caller knows it; otherwise derived by
            :meth:`remaining` (DONE: 0; IN_PROGRESS: estimate x (1 - progress); else the
            estimate).
        actual_hours: Hours already spent.
        progress: Fraction done in ``[0, 1]``.
        assigned_agent: Agent currently assigned, if any.
        priority: Priority.
        eligible_agents: Agents whose capabilities cover the task's requirements;
            ``None`` means no requirement (anyone), an empty set means nobody.
        optimistic_hours: Three-point estimate, optimistic (total, not remaining).
        most_likely_hours: Three-point estimate, most likely (defaults to the estimate).
        pessimistic_hours: Three-point estimate, pessimistic.
        pinned: Keep ``assigned_agent`` when rescheduling.
        name: Free text.
    """

    id: str
    status: TaskStatus = TaskStatus.TODO
    dependencies: tuple[str, ...] = ()
    estimate_hours: float | None = None
    remaining_hours: float | None = None
    actual_hours: float = 0.0
    progress: float = 0.0
    assigned_agent: str | None = None
    priority: Priority = Priority.MEDIUM
    eligible_agents: frozenset[str] | None = None
    optimistic_hours: float | None = None
    most_likely_hours: float | None = None
    pessimistic_hours: float | None = None
    pinned: bool = False
    name: str = ""

    def remaining(self, default_estimate: float = DEFAULT_ESTIMATE_HOURS) -> float:
        """Hours of work left (see ``remaining_hours``)."""
        if self.status is TaskStatus.DONE:
            return 0.0
        if self.remaining_hours is not None:
            return max(0.0, self.remaining_hours)
        est = self.estimate_hours if self.estimate_hours is not None else default_estimate
        if self.status is TaskStatus.IN_PROGRESS:
            return max(0.0, est * (1.0 - min(max(self.progress, 0.0), 1.0)))
        return max(0.0, est)

    @property
    def is_open(self) -> bool:
        """Not DONE."""
        return self.status is not TaskStatus.DONE


def check_unique_ids(tasks: Sequence[PlanTask]) -> dict[str, int]:
    """Index of each task id.

    Raises:
        InvalidProblemError: Duplicate ids or unknown dependencies.
    """
    index: dict[str, int] = {}
    for i, t in enumerate(tasks):
        if t.id in index:
            raise InvalidProblemError(f"duplicate task id {t.id!r}")
        index[t.id] = i
    for t in tasks:
        for d in t.dependencies:
            if d not in index:
                raise InvalidProblemError(f"task {t.id!r} depends on unknown {d!r}")
    return index


def settled_ids(tasks: Sequence[PlanTask]) -> set[str]:
    """Ids of DONE tasks whose dependencies are all settled too: nothing before them is
    left to do.

    A DONE task that (directly or through other DONE tasks) depends on open work is not
    settled: scheduled, it waits for that work, so a task after it cannot be fixed to
    start now.
    """
    waiting: dict[str, int] = {}
    dependents: dict[str, list[str]] = {}
    ready: list[str] = []
    for t in tasks:
        if t.status is not TaskStatus.DONE:
            continue
        deps = set(t.dependencies)
        waiting[t.id] = len(deps)
        for d in deps:
            dependents.setdefault(d, []).append(t.id)
        if not deps:
            ready.append(t.id)
    settled: set[str] = set()
    while ready:
        x = ready.pop()
        settled.add(x)
        for y in dependents.get(x, ()):
            waiting[y] -= 1
            if waiting[y] == 0:
                ready.append(y)
    return settled


def started_now(tasks: Sequence[PlanTask], agents: Container[str] | None = None) -> set[str]:
    """Ids of the IN_PROGRESS tasks that start now (fixed at time 0 when scheduled).

    Running work stays at time 0, but an agent can only run one task at a time: only the
    first in-progress task of each agent (in input order) starts now, the others are
    merely pinned; so is one whose dependencies wait for open work (through DONE tasks
    depending on it, see :func:`settled_ids`), and such a task does not use up its
    agent's turn.

    Args:
        tasks: The plan's tasks (ids already checked unique).
        agents: Agents that can run work now; ``None``: any assigned agent.
    """
    settled = settled_ids(tasks)
    busy: set[str] = set()
    started: set[str] = set()
    for t in tasks:
        g = t.assigned_agent
        if t.status is not TaskStatus.IN_PROGRESS or g is None:
            continue
        if agents is not None and g not in agents:
            continue
        if g not in busy and all(d in settled for d in t.dependencies):
            started.add(t.id)
            busy.add(g)
    return started


def problem_from_tasks(
    tasks: Sequence[PlanTask],
    agents: Sequence[str],
    *,
    keep_assignments: bool = False,
    time_resolution: float = 60.0,
    default_estimate: float = DEFAULT_ESTIMATE_HOURS,
) -> SchedulingProblem:
    """Builds the scheduling problem for the open work of a plan.

    DONE tasks become zero-duration activities needing no agent. IN_PROGRESS tasks
    with an agent keep it and start at 0; pinned tasks keep their agent; with
    ``keep_assignments`` every assigned task keeps its agent. Other tasks may go to any
    eligible agent.

    Args:
        tasks: The plan's tasks.
        agents: Available agent ids.
        keep_assignments: Pin every assigned task to its agent.
        time_resolution: Units per hour inside the solvers.
        default_estimate: Hours for tasks without an estimate.
    """
    check_unique_ids(tasks)
    started = started_now(tasks, set(agents))
    acts = []
    for t in tasks:
        if t.status is TaskStatus.DONE:
            acts.append(Activity(id=t.id, duration=0.0, predecessors=t.dependencies, name=t.name))
            continue
        keep = t.assigned_agent is not None and (
            keep_assignments or t.pinned or t.status is TaskStatus.IN_PROGRESS
        )
        acts.append(
            Activity(
                id=t.id,
                duration=t.remaining(default_estimate),
                predecessors=t.dependencies,
                requires_agent=True,
                eligible_agents=t.eligible_agents,
                pinned_agent=t.assigned_agent if keep else None,
                fixed_start=0.0 if t.id in started else None,
                name=t.name,
            )
        )
    return SchedulingProblem(
        activities=tuple(acts), agents=tuple(agents), time_resolution=time_resolution
    )
