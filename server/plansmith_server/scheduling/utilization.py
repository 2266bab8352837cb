"""Resource utilization of the current plan: loads, overallocation, idle time, gaps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .cpm import CpmResult, cpm_for_tasks
from .current_plan import schedule_current_plan
from .model import ScheduleResult
from .plan import DEFAULT_ESTIMATE_HOURS, PlanTask, TaskStatus


@dataclass(frozen=True)
class AgentUtilization:
    """Load of one agent under the current assignment.

    Attributes:
        agent: Agent id.
        assigned_hours: Total estimates of all tasks assigned to it (done ones included;
            missing estimates count as the default estimate).
        remaining_hours: Work left on its open tasks.
        utilization: ``remaining_hours / span_hours`` (span of the current-plan
            schedule; 0 when the span is 0).
        idle_hours: ``span_hours - remaining_hours`` (>= 0): time it waits within the span.
        task_ids: Its open tasks, in input order.
        overallocated: Some of its tasks overlap when started at their earliest starts.
    """

    agent: str
    assigned_hours: float
    remaining_hours: float
    utilization: float
    idle_hours: float
    task_ids: tuple[str, ...]
    overallocated: bool


@dataclass(frozen=True)
class Overallocation:
    """Tasks of one agent whose earliest-start windows overlap.

    Attributes:
        agent: Agent id.
        task_ids: The overlapping tasks (one connected group), by earliest start.
        window_start: Earliest start of the group (hours from now).
        window_end: Latest earliest-finish of the group.
        excess_hours: Work that does not fit in the window: sum of durations minus the
            length of the union of the windows.
    """

    agent: str
    task_ids: tuple[str, ...]
    window_start: float
    window_end: float
    excess_hours: float


@dataclass(frozen=True)
class CapabilityGap:
    """An open task that no available agent is capable of.

    Attributes:
        task_id: The task.
        reason: Human-readable reason.
    """

    task_id: str
    reason: str


@dataclass(frozen=True)
class UtilizationReport:
    """Utilization analysis.

    Attributes:
        agents: Per agent (given agents first, then others found in assignments).
        overallocations: Overlapping groups, per agent.
        unassigned_task_ids: Open tasks (not DONE) without an agent.
        capability_gaps: Open tasks no available agent can do.
        span_hours: Makespan of the current-plan schedule (agents one task at a time).
        cpm_duration_hours: Duration ignoring agents (CPM on remaining work).
    """

    agents: tuple[AgentUtilization, ...]
    overallocations: tuple[Overallocation, ...]
    unassigned_task_ids: tuple[str, ...]
    capability_gaps: tuple[CapabilityGap, ...]
    span_hours: float
    cpm_duration_hours: float


def analyze_utilization(
    tasks: Sequence[PlanTask],
    agents: Sequence[str] = (),
    *,
    default_estimate: float = DEFAULT_ESTIMATE_HOURS,
    cpm: CpmResult | None = None,
    schedule: ScheduleResult | None = None,
) -> UtilizationReport:
    """Computes the utilization report.

    Args:
        tasks: The plan's tasks (``eligible_agents`` already resolved from capabilities).
        agents: Available agents.
        default_estimate: Hours for tasks without an estimate.
        cpm: ``cpm_for_tasks`` of the same tasks, if the caller has it already.
        schedule: ``schedule_current_plan`` of the same tasks and agents, likewise.
    """
    if cpm is None:
        cpm = cpm_for_tasks(tasks, default_estimate=default_estimate)
    es = cpm.earliest_start.tolist()
    if schedule is None:
        schedule = schedule_current_plan(tasks, agents, default_estimate=default_estimate)
    span = schedule.makespan
    order = list(dict.fromkeys([*agents, *(t.assigned_agent for t in tasks if t.assigned_agent)]))
    by_agent: dict[str, list[int]] = {g: [] for g in order}
    assigned: dict[str, float] = dict.fromkeys(order, 0.0)
    for i, t in enumerate(tasks):
        if t.assigned_agent is None:
            continue
        est = t.estimate_hours if t.estimate_hours is not None else default_estimate
        assigned[t.assigned_agent] += est
        if t.is_open:
            by_agent[t.assigned_agent].append(i)

    overallocs: list[Overallocation] = []
    out: list[AgentUtilization] = []
    for g in order:
        idx = by_agent[g]
        rem = {i: tasks[i].remaining(default_estimate) for i in idx}  # work left per task
        busy = sum(rem.values())
        groups = _overlap_groups([(es[i], es[i] + rem[i], i) for i in idx])
        for grp in groups:
            union = _union_length([(es[i], es[i] + rem[i]) for i in grp])
            total = sum(rem[i] for i in grp)
            overallocs.append(
                Overallocation(
                    agent=g,
                    task_ids=tuple(tasks[i].id for i in grp),
                    window_start=min(es[i] for i in grp),
                    window_end=max(es[i] + rem[i] for i in grp),
                    excess_hours=total - union,
                )
            )
        out.append(
            AgentUtilization(
                agent=g,
                assigned_hours=assigned[g],
                remaining_hours=busy,
                utilization=busy / span if span > 0 else 0.0,
                idle_hours=max(0.0, span - busy),
                task_ids=tuple(tasks[i].id for i in idx),
                overallocated=bool(groups),
            )
        )

    available = set(agents) if agents else set(order)
    gaps = []
    for t in tasks:
        if not t.is_open or t.eligible_agents is None:
            continue
        if not t.eligible_agents:
            gaps.append(CapabilityGap(t.id, "no agent has the required capabilities"))
        elif not (t.eligible_agents & available):
            gaps.append(CapabilityGap(t.id, "no available agent has the required capabilities"))
    unassigned = tuple(
        t.id for t in tasks if t.status is not TaskStatus.DONE and t.assigned_agent is None
    )
    return UtilizationReport(
        agents=tuple(out),
        overallocations=tuple(overallocs),
        unassigned_task_ids=unassigned,
        capability_gaps=tuple(gaps),
        span_hours=span,
        cpm_duration_hours=cpm.project_duration,
    )


def _overlap_groups(windows: list[tuple[float, float, int]]) -> list[list[int]]:
    """Connected groups (>= 2 members) of positive-length windows that overlap."""
    eps = 1e-9
    items = sorted((w for w in windows if w[1] - w[0] > eps), key=lambda w: (w[0], w[1]))
    groups: list[list[int]] = []
    cur: list[int] = []
    cur_end = float("-inf")
    for s, e, i in items:
        if cur and s < cur_end - eps:
            cur.append(i)
            cur_end = max(cur_end, e)
        else:
            if len(cur) >= 2:
                groups.append(cur)
            cur = [i]
            cur_end = e
    if len(cur) >= 2:
        groups.append(cur)
    return groups


def _union_length(windows: list[tuple[float, float]]) -> float:
    total = 0.0
    cur_s, cur_e = None, None
    for s, e in sorted(windows):
        if cur_e is None or s > cur_e:
            if cur_e is not None and cur_s is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None and cur_s is not None:
        total += cur_e - cur_s
    return total
