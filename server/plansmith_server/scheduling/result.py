"""Turns an integer schedule into a :class:`ScheduleResult` (hours, workloads, chain)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .compiled import CompiledProblem
from .critical_chain import critical_chain_indices
from .model import (
    AgentWorkload,
    Goal,
    LowerBounds,
    ScheduledActivity,
    ScheduleResult,
    ScheduleStatus,
    SolverStats,
)
from .sgs import IntSchedule


def int_schedule(cp: CompiledProblem, result: ScheduleResult) -> IntSchedule | None:
    """`result` (a schedule of the same problem, e.g. the current plan's) in `cp`'s units
    and indices, or None when it does not fit `cp` (an activity missing, or on an agent
    `cp` does not allow it)."""
    placed = result.by_id()
    k_of = {g: k for k, g in enumerate(cp.agent_ids)}
    starts, agents = [0] * cp.n, [-1] * cp.n
    for v, aid in enumerate(cp.ids):
        a = placed.get(aid)
        if a is None:
            return None
        starts[v] = round(a.start * cp.resolution)
        if cp.agent_options[v]:
            k = k_of.get(a.agent or "", -1)
            if k not in cp.agent_options[v]:
                return None
            agents[v] = k
    mk = max((starts[v] + cp.dur[v] for v in range(cp.n)), default=0)
    return IntSchedule(starts, agents, mk)


def lower_bounds(cp: CompiledProblem, solver_bound: int = 0) -> LowerBounds:
    """All makespan lower bounds of a compiled problem, in hours."""
    return LowerBounds(
        critical_path=cp.to_hours(cp.critical_path_bound()),
        resource=cp.to_hours(cp.resource_bound()),
        solver=cp.to_hours(solver_bound),
    )


def build_result(
    cp: CompiledProblem,
    sched: IntSchedule,
    stats: SolverStats,
    *,
    solver_bound: int = 0,
    goals: Sequence[Goal] = (Goal.MINIMIZE_DURATION,),
    proven_optimal: bool = False,
    restricted: bool = False,
) -> ScheduleResult:
    """Builds the public result.

    A problem with unschedulable activities gets a partial result: its makespan, bounds
    and gap are those of the activities scheduled, and it is never optimal (nor is its
    status `OPTIMAL`, whatever the solver proved of the part it scheduled): the problem
    as a whole has no schedule.

    Args:
        cp: The compiled problem.
        sched: The schedule in units.
        stats: Solver statistics to attach.
        solver_bound: Makespan bound proven by the solver, in units.
        goals: Goals that were applied.
        proven_optimal: The solver proved optimality (otherwise optimality is claimed
            only when the makespan meets a lower bound).
        restricted: `cp` is a restriction of the problem the result answers (the current
            plan's, agents pinned): only the precedence bound holds for the problem then;
            the energy bounds of the pinned agents do not.
    """
    path = cp.critical_path_bound()
    energy = 0 if restricted else cp.resource_bound()
    solver_bound = 0 if restricted else solver_bound
    lbs = LowerBounds(cp.to_hours(path), cp.to_hours(energy), cp.to_hours(solver_bound))
    lb_units = max(path, energy, solver_bound)
    mk = sched.makespan
    partial = bool(cp.unschedulable)
    optimal = not partial and (proven_optimal or mk <= lb_units)
    if optimal:
        lb_units = mk
    if partial and stats.status == "OPTIMAL":
        stats = replace(
            stats,
            status="FEASIBLE",
            notes=(*stats.notes, "optimal for the scheduled activities only"),
        )
    elif optimal and stats.status == "FEASIBLE":
        stats = replace(stats, status="OPTIMAL")
    acts = sorted(
        (
            ScheduledActivity(
                activity_id=cp.ids[v],
                start=cp.to_hours(sched.starts[v]),
                end=cp.to_hours(sched.starts[v] + cp.dur[v]),
                agent=cp.agent_ids[sched.agents[v]] if sched.agents[v] >= 0 else None,
            )
            for v in range(cp.n)
        ),
        key=lambda a: (a.start, a.end, a.activity_id),
    )
    per_agent: list[list[ScheduledActivity]] = [[] for _ in cp.agent_ids]
    k_of = {g: k for k, g in enumerate(cp.agent_ids)}
    for a in acts:
        if a.agent is not None:
            per_agent[k_of[a.agent]].append(a)
    loads = sched.loads(cp)
    workloads = tuple(
        AgentWorkload(
            agent=g,
            busy_hours=cp.to_hours(loads[k]),
            utilization=(loads[k] / mk) if mk > 0 else 0.0,
            activity_ids=tuple(a.activity_id for a in per_agent[k]),
        )
        for k, g in enumerate(cp.agent_ids)
    )
    chain = tuple(cp.ids[v] for v in critical_chain_indices(cp, sched.starts, sched.agents))
    best_lb = max(lbs.best, cp.to_hours(lb_units))
    if optimal:
        best_lb = cp.to_hours(mk)
    return ScheduleResult(
        status=ScheduleStatus.OPTIMAL if optimal else ScheduleStatus.FEASIBLE,
        activities=tuple(acts),
        makespan=cp.to_hours(mk),
        lower_bounds=lbs,
        lower_bound=best_lb,
        optimal=optimal,
        gap=((mk - lb_units) / mk) if mk > 0 else 0.0,
        workloads=workloads,
        critical_chain=chain,
        unschedulable=tuple(cp.unschedulable),
        solver=stats.solver,
        stats=stats,
        goals=tuple(goals),
    )
