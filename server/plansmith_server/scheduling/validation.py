"""Independent check of a schedule against its problem."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from .compiled import compile_problem, hours_to_units
from .errors import SchedulingError
from .model import ScheduledActivity, ScheduleResult, SchedulingProblem


class InvalidScheduleError(SchedulingError):
    """A schedule breaks its problem's constraints (a solver bug, never user input).

    Attributes:
        violations: One description per broken constraint.
    """

    code = "INTERNAL"
    reason = "INVALID_SCHEDULE"

    def __init__(self, violations: list[str]) -> None:
        self.violations = violations
        super().__init__("invalid schedule: " + "; ".join(violations[:10]))


def validate_schedule(
    problem: SchedulingProblem,
    schedule: ScheduleResult | Iterable[ScheduledActivity],
) -> list[str]:
    """Checks a schedule; returns the violations (empty when valid).

    Checks, in the problem's integer time units: every schedulable activity appears
    exactly once and no unschedulable or unknown one does; durations; non-negative and
    fixed starts; precedences; agent presence, eligibility and pins; one activity at a
    time per agent; general resource capacities at every instant.

    Args:
        problem: The problem.
        schedule: A result or its scheduled activities.
    """
    cp = compile_problem(problem)
    items = schedule.activities if isinstance(schedule, ScheduleResult) else tuple(schedule)
    res = cp.resolution
    out: list[str] = []
    start: dict[int, int] = {}
    agent_of: dict[int, int] = {}
    unsched = {u.activity_id for u in cp.unschedulable}
    agent_k = {g: k for k, g in enumerate(cp.agent_ids)}
    for it in items:
        if it.activity_id in unsched:
            out.append(f"{it.activity_id}: unschedulable activity was scheduled")
            continue
        v = cp.index.get(it.activity_id)
        if v is None:
            out.append(f"{it.activity_id}: unknown activity")
            continue
        if v in start:
            out.append(f"{it.activity_id}: scheduled twice")
            continue
        s = hours_to_units(it.start, res)
        e = hours_to_units(it.end, res)
        start[v] = s
        if e - s != cp.dur[v]:
            out.append(f"{it.activity_id}: lasts {e - s} units, expected {cp.dur[v]}")
        if s < 0:
            out.append(f"{it.activity_id}: starts before 0")
        fx = cp.fixed[v]
        if fx is not None and s != fx:
            out.append(f"{it.activity_id}: fixed at {fx}, starts at {s}")
        opts = cp.agent_options[v]
        if it.agent is None:
            if opts:
                out.append(f"{it.activity_id}: needs an agent, has none")
            agent_of[v] = -1
        elif it.agent not in agent_k:
            out.append(f"{it.activity_id}: unknown agent {it.agent!r}")
            agent_of[v] = -1
        else:
            k = agent_k[it.agent]
            if not opts:
                out.append(f"{it.activity_id}: needs no agent, got {it.agent!r}")
            elif k not in opts:
                out.append(f"{it.activity_id}: agent {it.agent!r} not eligible")
            agent_of[v] = k
    for v in range(cp.n):
        if v not in start:
            out.append(f"{cp.ids[v]}: missing from the schedule")
    if out:
        return out

    for v in range(cp.n):
        for p in cp.preds[v]:
            if start[p] + cp.dur[p] > start[v]:
                out.append(f"{cp.ids[v]}: starts before predecessor {cp.ids[p]} ends")

    by_agent: dict[int, list[int]] = {}
    for v, k in agent_of.items():
        if k >= 0 and cp.dur[v] > 0:
            by_agent.setdefault(k, []).append(v)
    for k, vs in by_agent.items():
        vs.sort(key=lambda v: start[v])
        for a, b in itertools.pairwise(vs):
            if start[a] + cp.dur[a] > start[b]:
                out.append(f"agent {cp.agent_ids[k]!r}: {cp.ids[a]} and {cp.ids[b]} overlap")

    for r, cap in enumerate(cp.capacities):
        events: list[tuple[int, int]] = []
        for v in range(cp.n):
            for rr, q in cp.demands[v]:
                if rr == r and cp.dur[v] > 0:
                    events.append((start[v], q))
                    events.append((start[v] + cp.dur[v], -q))
        # Ends before starts at equal times: an activity may start when another ends.
        events.sort(key=lambda e: (e[0], e[1]))
        level = 0
        for t, q in events:
            level += q
            if level > cap:
                out.append(f"resource {cp.problem.resources[r].id!r}: usage {level} > {cap} at {t}")
                break
    return out


def assert_valid_schedule(
    problem: SchedulingProblem,
    schedule: ScheduleResult | Iterable[ScheduledActivity],
) -> None:
    """Raises :class:`InvalidScheduleError` when :func:`validate_schedule` finds anything."""
    violations = validate_schedule(problem, schedule)
    if violations:
        raise InvalidScheduleError(violations)
