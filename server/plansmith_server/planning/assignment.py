"""Assigning tasks to agents and scheduling them (a deterministic list schedule).

Each agent works on one task at a time; agents work in parallel. Tasks are dispatched
in order of *upward rank* (the longest remaining path to the end of the plan, so the
critical chain goes first), ties by task order. A task goes to the eligible agent --
one holding all of its required capabilities, see :func:`.capabilities.agent_can_do` --
that can start it earliest; ties go to the least-loaded agent, then the smallest id.
An agent is never given a task it lacks a capability for.

Tasks no agent can do stay unassigned and are reported as capability gaps; for the
duration they are scheduled as if one extra person per missing skill set were hired
(stated as an assumption). With no agents at all, ``team_size`` (or the configured
default) anonymous workers are assumed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .capabilities import agent_can_do, expand_capabilities, normalize_capability
from .plan import CapabilityGap, PlannedTask
from .request import AgentSpec

__all__ = ["Schedule", "TaskAssignment", "assign_and_schedule"]


@dataclass(frozen=True)
class TaskAssignment:
    """Who does a task and why.

    Attributes:
        task_id: Local task id.
        agent_id: Assigned agent id, ``""`` when unassigned.
        reason: Why this agent (or why none).
    """

    task_id: str
    agent_id: str
    reason: str


@dataclass(frozen=True)
class Schedule:
    """Result of assignment and list scheduling.

    Attributes:
        assignments: In task order.
        start: Task id -> start hour.
        finish: Task id -> finish hour.
        makespan: Plan duration in working hours.
        makespan_low: Duration with optimistic estimates (same order and agents).
        makespan_high: Duration with pessimistic estimates.
        critical: Task ids on the chain that determines the makespan.
        gaps: Work no agent can do.
        load: Agent id -> assigned hours (sorted by agent id).
        workers: Description of the workers assumed (for assumptions).
    """

    assignments: tuple[TaskAssignment, ...]
    start: dict[str, float]
    finish: dict[str, float]
    makespan: float
    makespan_low: float
    makespan_high: float
    critical: frozenset[str]
    gaps: tuple[CapabilityGap, ...]
    load: tuple[tuple[str, float], ...]
    workers: str


def _upward_rank(tasks: Sequence[PlannedTask]) -> dict[str, float]:
    successors: dict[str, list[str]] = {t.id: [] for t in tasks}
    for t in tasks:
        for d in t.dependencies:
            successors[d].append(t.id)
    rank: dict[str, float] = {}
    for t in reversed(tasks):  # tasks are in topological order
        rank[t.id] = t.estimated_hours + max((rank[s] for s in successors[t.id]), default=0.0)
    return rank


def assign_and_schedule(
    tasks: Sequence[PlannedTask],
    agents: Sequence[AgentSpec],
    *,
    anonymous_workers: int,
) -> Schedule:
    """Assign agents and compute a list schedule.

    Args:
        tasks: Tasks in topological (id) order.
        agents: Available agents (unique ids).
        anonymous_workers: Parallel workers to assume when `agents` is empty.

    Returns:
        The schedule.
    """
    order_index = {t.id: i for i, t in enumerate(tasks)}
    by_id = {t.id: t for t in tasks}
    rank = _upward_rank(tasks)
    agents_sorted = sorted(agents, key=lambda a: a.id)
    agent_caps = {a.id: expand_capabilities(a.capabilities) for a in agents_sorted}

    # Workers: real agents, virtual hires for each missing skill set, or anonymous.
    eligible: dict[str, list[str]] = {}
    gap_tasks: dict[tuple[str, ...], list[str]] = {}
    if agents_sorted:
        for t in tasks:
            names = [
                a.id
                for a in agents_sorted
                if agent_can_do(agent_caps[a.id], t.required_capabilities)
            ]
            if names:
                eligible[t.id] = names
            else:
                missing = _missing_for_best(t.required_capabilities, agent_caps)
                gap_tasks.setdefault(missing, []).append(t.id)
                eligible[t.id] = [f"\x00hire:{'+'.join(missing)}"]
        workers_note = f"{len(agents_sorted)} agent(s) working in parallel, one task at a time each"
        if gap_tasks:
            workers_note += f", plus {len(gap_tasks)} assumed extra hire(s) for the capability gaps"
    else:
        pool = [f"\x00worker:{i + 1}" for i in range(max(1, anonymous_workers))]
        for t in tasks:
            eligible[t.id] = pool
        workers_note = f"{len(pool)} unnamed worker(s) in parallel (no agents were given)"

    free: dict[str, float] = {}
    load: dict[str, float] = {a.id: 0.0 for a in agents_sorted}
    worker_of: dict[str, str] = {}
    start: dict[str, float] = {}
    finish: dict[str, float] = {}
    dispatch: list[str] = []
    remaining = {t.id: len(t.dependencies) for t in tasks}
    successors: dict[str, list[str]] = {t.id: [] for t in tasks}
    for t in tasks:
        for d in t.dependencies:
            successors[d].append(t.id)
    ready = [t.id for t in tasks if not t.dependencies]
    while ready:
        ready.sort(key=lambda tid: (-rank[tid], order_index[tid]))
        tid = ready.pop(0)
        task = by_id[tid]
        earliest = max((finish[d] for d in task.dependencies), default=0.0)
        best = min(
            eligible[tid],
            key=lambda w: (max(free.get(w, 0.0), earliest), load.get(w, 0.0), w),
        )
        begin = max(free.get(best, 0.0), earliest)
        start[tid] = round(begin, 2)
        finish[tid] = round(begin + task.estimated_hours, 2)
        free[best] = finish[tid]
        load[best] = load.get(best, 0.0) + task.estimated_hours
        worker_of[tid] = best
        dispatch.append(tid)
        for s in successors[tid]:
            remaining[s] -= 1
            if remaining[s] == 0:
                ready.append(s)

    assignments: list[TaskAssignment] = []
    for t in tasks:
        worker = worker_of[t.id]
        if worker.startswith("\x00hire:"):
            lacking = worker.removeprefix("\x00hire:").replace("+", ", ")
            assignments.append(TaskAssignment(t.id, "", f"no available agent has: {lacking}"))
        elif worker.startswith("\x00worker:"):
            assignments.append(TaskAssignment(t.id, "", "no agents were given"))
        else:
            pool = eligible[t.id]
            why = (
                "the only eligible agent"
                if len(pool) == 1
                else f"earliest available of {len(pool)} eligible agents ({', '.join(pool)})"
            )
            assignments.append(TaskAssignment(t.id, worker, why))

    makespan = max(finish.values(), default=0.0)
    low = _replay(dispatch, by_id, worker_of, lambda t: t.optimistic_hours)
    high = _replay(dispatch, by_id, worker_of, lambda t: t.pessimistic_hours)

    gaps = tuple(
        CapabilityGap(
            capabilities=missing,
            task_ids=tuple(ids),
            hours=round(sum(by_id[i].estimated_hours for i in ids), 2),
            description=(
                f"No available agent has {', '.join(missing)}; {len(ids)} task(s) "
                f"({', '.join(ids)}) are unassigned."
            ),
        )
        for missing, ids in sorted(gap_tasks.items())
    )
    return Schedule(
        assignments=tuple(assignments),
        start=start,
        finish=finish,
        makespan=round(makespan, 2),
        makespan_low=round(low, 2),
        makespan_high=round(high, 2),
        critical=_critical_chain(tasks, start, finish, worker_of, dispatch),
        gaps=gaps,
        load=tuple(sorted((a, round(h, 2)) for a, h in load.items() if not a.startswith("\x00"))),
        workers=workers_note,
    )


def _missing_for_best(
    required: Sequence[str], agent_caps: dict[str, frozenset[str]]
) -> tuple[str, ...]:
    """Capabilities missing for the closest agent (fewest missing), for the gap report."""
    needed = {normalize_capability(c) for c in required}
    best: tuple[str, ...] | None = None
    for caps in agent_caps.values():
        missing = tuple(sorted(needed - caps))
        if (
            best is None
            or len(missing) < len(best)
            or (len(missing) == len(best) and missing < best)
        ):
            best = missing
    return best or tuple(sorted(needed))


def _replay(
    dispatch: Sequence[str],
    by_id: Mapping[str, PlannedTask],
    worker_of: Mapping[str, str],
    duration: Callable[[PlannedTask], float],
) -> float:
    free: dict[str, float] = {}
    finish: dict[str, float] = {}
    for tid in dispatch:
        task = by_id[tid]
        begin = max(
            free.get(worker_of[tid], 0.0), max((finish[d] for d in task.dependencies), default=0.0)
        )
        finish[tid] = begin + duration(task)
        free[worker_of[tid]] = finish[tid]
    return max(finish.values(), default=0.0)


def _critical_chain(
    tasks: Sequence[PlannedTask],
    start: Mapping[str, float],
    finish: Mapping[str, float],
    worker_of: Mapping[str, str],
    dispatch: Sequence[str],
) -> frozenset[str]:
    """Walk back from the last-finishing task through whatever made each task wait."""
    if not tasks:
        return frozenset()
    by_id = {t.id: t for t in tasks}
    position = {tid: i for i, tid in enumerate(dispatch)}
    current = max(dispatch, key=lambda tid: (finish[tid], -position[tid]))
    chain = {current}
    while start[current] > 0:
        task = by_id[current]
        binding = [d for d in task.dependencies if abs(finish[d] - start[current]) < 1e-6]
        if not binding:
            same_worker = [
                tid
                for tid in dispatch[: position[current]]
                if worker_of[tid] == worker_of[current] and abs(finish[tid] - start[current]) < 1e-6
            ]
            binding = same_worker
        if not binding:
            break
        current = min(binding, key=lambda tid: position[tid])
        chain.add(current)
    return frozenset(chain)
