"""What an agent should pick up next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .cpm import CpmResult, cpm_for_tasks
from .plan import DEFAULT_ESTIMATE_HOURS, PlanTask, Priority, TaskStatus


@dataclass(frozen=True)
class Suggestion:
    """One suggested task.

    Attributes:
        task_id: The task.
        score: Ranking score (higher first): 1000 if assigned to the agent, +100 on the
            critical path, +10 x priority (1-4), + up to 9 for the share of work it
            unblocks relative to the best candidate. Ties go to shorter tasks.
        reason: Human-readable explanation.
        assigned_to_agent: Already assigned to the agent (else unassigned).
        critical: Zero slack in CPM on remaining work.
        priority: Task priority.
        unblocks_count: Open tasks that transitively depend on it.
        unblocks_hours: Their remaining hours.
        remaining_hours: Its own remaining hours.
    """

    task_id: str
    score: float
    reason: str
    assigned_to_agent: bool
    critical: bool
    priority: Priority
    unblocks_count: int
    unblocks_hours: float
    remaining_hours: float


def suggest_next_tasks(
    tasks: Sequence[PlanTask],
    agent_id: str,
    count: int = 3,
    *,
    default_estimate: float = DEFAULT_ESTIMATE_HOURS,
    cpm: CpmResult | None = None,
) -> tuple[Suggestion, ...]:
    """Ready tasks the agent can do, best first.

    Ready: TODO with every dependency DONE. Candidates: tasks assigned to the agent,
    then unassigned ones whose ``eligible_agents`` is ``None`` or contains it. Ranking:
    own first, then critical, then priority, then work unblocked, then shorter.

    Args:
        tasks: The plan's tasks.
        agent_id: The agent asking.
        count: Maximum number of suggestions.
        default_estimate: Hours for tasks without an estimate.
        cpm: ``cpm_for_tasks`` of the same tasks, if the caller has it already.
    """
    if count <= 0:
        return ()
    by_id = {t.id: t for t in tasks}
    if cpm is None:
        cpm = cpm_for_tasks(tasks, default_estimate=default_estimate)
    critical = set(cpm.critical_task_ids)
    succs: dict[str, list[str]] = {}
    for t in tasks:
        for d in t.dependencies:
            succs.setdefault(d, []).append(t.id)

    cands = []
    for t in tasks:
        if t.status is not TaskStatus.TODO:
            continue
        if any(by_id[d].status is not TaskStatus.DONE for d in t.dependencies):
            continue
        own = t.assigned_agent == agent_id
        if not own and (
            t.assigned_agent is not None
            or (t.eligible_agents is not None and agent_id not in t.eligible_agents)
        ):
            continue
        cands.append((t, own))
    if not cands:
        return ()

    unblock: dict[str, tuple[int, float]] = {}
    for t, _ in cands:
        seen: set[str] = set()
        stack = list(succs.get(t.id, ()))
        while stack:
            u = stack.pop()
            if u in seen:
                continue
            seen.add(u)
            stack.extend(succs.get(u, ()))
        open_deps = [by_id[u] for u in seen if by_id[u].is_open]
        unblock[t.id] = (len(open_deps), sum(u.remaining(default_estimate) for u in open_deps))
    max_h = max((h for _, h in unblock.values()), default=0.0)
    max_n = max((n for n, _ in unblock.values()), default=0)

    out = []
    for t, own in cands:
        n, h = unblock[t.id]
        # Hours unblocked decide; the count stands in when nothing has hours.
        share = h / max_h if max_h > 0 else (n / max_n if max_n > 0 else 0.0)
        crit = t.id in critical
        score = 1000.0 * own + 100.0 * crit + 10.0 * int(t.priority) + 9.0 * share
        rem = t.remaining(default_estimate)
        parts = ["Assigned to you" if own else "Unassigned and you can do it"]
        if crit:
            parts.append("On the critical path")
        parts.append(f"{t.priority.name} priority")
        if n:
            parts.append(f"unblocks {n} task{'s' if n != 1 else ''} ({h:.1f} h)")
        parts.append(f"{rem:.1f} h of work")
        out.append(
            Suggestion(
                task_id=t.id,
                score=round(score, 3),
                reason="; ".join(parts),
                assigned_to_agent=own,
                critical=crit,
                priority=t.priority,
                unblocks_count=n,
                unblocks_hours=h,
                remaining_hours=rem,
            )
        )
    out.sort(key=lambda s: (-s.score, s.remaining_hours, s.task_id))
    return tuple(out[:count])
