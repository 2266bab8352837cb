"""Schedule of the plan exactly as currently assigned, and its resource-aware critical chain.

Each assigned task stays with its agent, an agent does one task at a time, tasks are
list-scheduled in priority order (then input order) after their dependencies, the first
in-progress task of each agent starts now. Unassigned open tasks are not limited by any
agent (they take only their duration): the chain shows what the *current* assignment
implies, and unassigned work is reported separately by the utilization analysis.
"""

from __future__ import annotations

from collections.abc import Sequence

from .baseline import current_assignment_schedule
from .model import Activity, ScheduleResult, SchedulingProblem
from .plan import DEFAULT_ESTIMATE_HOURS, PlanTask, TaskStatus, check_unique_ids, started_now


def current_plan_problem(
    tasks: Sequence[PlanTask],
    agents: Sequence[str] = (),
    *,
    time_resolution: float = 60.0,
    default_estimate: float = DEFAULT_ESTIMATE_HOURS,
) -> SchedulingProblem:
    """The scheduling problem of the current assignment (see module docstring).

    Args:
        tasks: The plan's tasks.
        agents: Known agents; agents found in assignments are added.
        time_resolution: Units per hour.
        default_estimate: Hours for tasks without an estimate.
    """
    check_unique_ids(tasks)
    all_agents = list(
        dict.fromkeys([*agents, *(t.assigned_agent for t in tasks if t.assigned_agent)])
    )
    started = started_now(tasks)
    acts = []
    for t in tasks:
        if t.status is TaskStatus.DONE or t.assigned_agent is None:
            dur = 0.0 if t.status is TaskStatus.DONE else t.remaining(default_estimate)
            acts.append(Activity(id=t.id, duration=dur, predecessors=t.dependencies, name=t.name))
            continue
        acts.append(
            Activity(
                id=t.id,
                duration=t.remaining(default_estimate),
                predecessors=t.dependencies,
                pinned_agent=t.assigned_agent,
                fixed_start=0.0 if t.id in started else None,
                name=t.name,
            )
        )
    return SchedulingProblem(
        activities=tuple(acts), agents=tuple(all_agents), time_resolution=time_resolution
    )


def schedule_current_plan(
    tasks: Sequence[PlanTask],
    agents: Sequence[str] = (),
    *,
    time_resolution: float = 60.0,
    default_estimate: float = DEFAULT_ESTIMATE_HOURS,
) -> ScheduleResult:
    """Schedules the current assignment; ``result.critical_chain`` is its critical chain.

    Args:
        tasks: The plan's tasks.
        agents: Known agents.
        time_resolution: Units per hour.
        default_estimate: Hours for tasks without an estimate.

    Returns:
        The list schedule (``solver == "baseline"``); times in hours from now.
    """
    problem = current_plan_problem(
        tasks, agents, time_resolution=time_resolution, default_estimate=default_estimate
    )
    return current_assignment_schedule(
        problem,
        priorities={t.id: float(t.priority) for t in tasks},
        respect_eligibility=False,
    )
