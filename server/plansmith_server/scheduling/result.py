"""Turns an integer schedule into a :class:`ScheduleResult` (hours, workloads, chain)."""

from __future__ import annotations

from collections.abc import Sequence

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
) -> ScheduleResult:
    """Builds the public result.

    Args:
        cp: The compiled problem.
        sched: The schedule in units.
        stats: Solver statistics to attach.
        solver_bound: Makespan bound proven by the solver, in units.
        goals: Goals that were applied.
        proven_optimal: The solver proved optimality (otherwise optimality is claimed
            only when the makespan meets a lower bound).
    """
    lbs = lower_bounds(cp, solver_bound)
    lb_units = max(cp.critical_path_bound(), cp.resource_bound(), solver_bound)
    mk = sched.makespan
    optimal = proven_optimal or mk <= lb_units
    if optimal:
        lb_units = mk
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
