"""The current plan as a schedule, and "never worse than the current schedule".

A caller that has a current plan (tasks already assigned to agents) builds its schedule
with :func:`current_assignment_schedule` (a list schedule that keeps every assignment and
runs each agent's tasks one at a time in priority, then topological, order) and passes it
as ``baseline`` to :meth:`FallbackScheduler.solve` or calls :func:`better_of` itself: the
returned schedule is the solver's only if it is strictly better under the goals.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

from .compiled import compile_problem
from .model import Goal, ScheduleResult, ScheduleStatus, SchedulingProblem, SolverStats
from .priority_rules import list_from_keys
from .result import build_result
from .sgs import serial_sgs


def apply_assignments(
    problem: SchedulingProblem,
    assignments: Mapping[str, str],
    *,
    respect_eligibility: bool = True,
) -> SchedulingProblem:
    """Pins activities to their currently assigned agents.

    Args:
        problem: The problem.
        assignments: Activity id -> agent id.
        respect_eligibility: Ignore assignments to agents that are not eligible or not
            in the problem, so the resulting schedule stays valid for ``problem``.
    """
    agents = set(problem.agents)
    acts = []
    for a in problem.activities:
        g = assignments.get(a.id)
        if g is not None and a.pinned_agent is None:
            ok = g in agents and (a.eligible_agents is None or g in a.eligible_agents)
            if ok or not respect_eligibility:
                a = replace(a, pinned_agent=g)
        acts.append(a)
    return replace(problem, activities=tuple(acts))


def current_assignment_schedule(
    problem: SchedulingProblem,
    assignments: Mapping[str, str] | None = None,
    *,
    priorities: Mapping[str, float] | None = None,
    respect_eligibility: bool = True,
) -> ScheduleResult:
    """List-schedules the current assignments (one activity at a time per agent).

    Activities are taken in order of decreasing ``priorities`` (default 0), then in the
    problem's order, always after their predecessors; each starts as early as its
    predecessors, resources and agent allow. Unassigned activities that need an agent
    get the one that can start them first.

    Args:
        problem: The problem.
        assignments: Activity id -> agent id of the current plan.
        priorities: Activity id -> priority; higher goes first.
        respect_eligibility: See :func:`apply_assignments`.

    Returns:
        A result whose ``solver`` is ``"baseline"``. Its lower bound is the precedence
        bound of ``problem`` (the pinned agents' energy bounds are not bounds of the
        problem), so it is optimal only when it meets that bound.
    """
    t0 = time.perf_counter()
    pinned = apply_assignments(problem, assignments or {}, respect_eligibility=respect_eligibility)
    cp = compile_problem(pinned)
    prio = priorities or {}
    pos = {a.id: i for i, a in enumerate(problem.activities)}
    keys = [(-prio.get(cp.ids[v], 0.0), pos[cp.ids[v]]) for v in range(cp.n)]
    sched = serial_sgs(cp, list_from_keys(cp, keys))
    stats = SolverStats(
        solver="baseline",
        status="FEASIBLE",
        wall_time_s=time.perf_counter() - t0,
        objective=cp.to_hours(sched.makespan),
        iterations=1,
    )
    return build_result(cp, sched, stats, restricted=True)


def result_score(result: ScheduleResult, goals: Sequence[Goal]) -> tuple[float, ...]:
    """Lexicographic score of a result under the goals (lower is better)."""
    key: list[float] = []
    for g in goals:
        if g is Goal.MINIMIZE_DURATION:
            key.append(result.makespan)
        elif g is Goal.BALANCE_WORKLOAD and result.workloads:
            key.append(max(w.busy_hours for w in result.workloads))
            key.append(-min(w.busy_hours for w in result.workloads))
    key.append(result.makespan)
    return tuple(round(x, 9) for x in key)


def better_of(
    candidate: ScheduleResult,
    baseline: ScheduleResult,
    goals: Sequence[Goal] = (Goal.MINIMIZE_DURATION,),
) -> ScheduleResult:
    """Returns ``candidate`` if it is strictly better than ``baseline`` under ``goals``,
    else the baseline: a tie keeps the current plan, as moving work between agents for no
    gain is churn (and CP-SAT with several workers breaks ties differently run to run, so
    re-optimizing an optimal plan reassigned its tasks back and forth).

    Both must be schedules of the same problem. When the baseline wins, its lower bound
    is the candidate's (a bound of the problem the candidate solved, which the baseline's
    pinned agents are not), and it is optimal when it meets that bound and schedules
    every activity: its status and statistics say the same.
    """
    if not candidate.activities and baseline.activities:
        return baseline
    if not baseline.activities:
        return candidate
    if result_score(baseline, goals) <= result_score(candidate, goals):
        lb = max(candidate.lower_bound, baseline.lower_bound)
        mk = baseline.makespan
        optimal = not baseline.unschedulable and mk <= lb + 1e-9
        status = ScheduleStatus.OPTIMAL if optimal else ScheduleStatus.FEASIBLE
        return replace(
            baseline,
            status=status,
            lower_bound=mk if optimal else lb,
            lower_bounds=candidate.lower_bounds,
            optimal=optimal,
            gap=0.0 if optimal or mk <= 0 else (mk - lb) / mk,
            stats=replace(
                baseline.stats,
                status=status.value,
                best_bound=candidate.stats.best_bound,
                notes=(*baseline.stats.notes, f"kept baseline over {candidate.solver}"),
            ),
        )
    return candidate
