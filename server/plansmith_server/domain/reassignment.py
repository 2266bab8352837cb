"""Choosing the agent a task is reassigned to, by re-running the schedule optimizer.

Every other task keeps its agent (DONE work is finished, IN_PROGRESS and TODO work is
pinned: moving anything else has an infinite penalty), the tasks to reassign may go to
any of their candidates, and the solver picks the candidate that finishes the plan
soonest. CPU-bound: the caller runs it off the event loop, outside any transaction.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

from plansmith_server import scheduling
from plansmith_server.domain.models import Plan, Task
from plansmith_server.domain.schedules import build_snapshot

DEFAULT_TIME_LIMIT_S = 1.0


def choose_agents(
    plan: Plan,
    tasks: Sequence[Task],
    candidates: Mapping[str, Sequence[str]],
    *,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> dict[str, str]:
    """task id -> the chosen agent, for each task of `candidates` (task id -> agents it
    may go to, none empty). A task the solver leaves out gets its first candidate."""
    snap = build_snapshot(plan, tasks)
    work: list[scheduling.PlanTask] = []
    for w in snap.work:
        if w.id in candidates:
            work.append(
                replace(
                    w,
                    status=scheduling.TaskStatus.TODO,
                    assigned_agent=None,
                    pinned=False,
                    eligible_agents=frozenset(candidates[w.id]),
                )
            )
        else:
            work.append(replace(w, pinned=w.assigned_agent is not None))
    agents = tuple(dict.fromkeys([*snap.agents, *(a for c in candidates.values() for a in c)]))
    problem = scheduling.problem_from_tasks(tuple(work), agents)
    pinned = {t.id: t.assigned_agent for t in work if t.assigned_agent}
    baseline = scheduling.current_assignment_schedule(problem, pinned)
    deadline = time.perf_counter() + time_limit_s
    result = scheduling.FallbackScheduler().solve(
        problem,
        time_limit_s=max(deadline - time.perf_counter(), 0.05),
        seed=0,
        goals=(scheduling.Goal.MINIMIZE_DURATION,),
        baseline=baseline,
    )
    placed = result.by_id()
    out: dict[str, str] = {}
    for task_id, allowed in candidates.items():
        a = placed.get(task_id)
        out[task_id] = a.agent if a is not None and a.agent and a.agent in allowed else allowed[0]
    return out
