"""What must hold before a task starts (`StartTask`): every unmet condition, not the first.

Pure: the caller reads the plan, the task, its dependencies and the agent's load in one
snapshot and passes them in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from plansmith_server import planning
from plansmith_server.domain.models import (
    Agent,
    Availability,
    Plan,
    PlanStatus,
    Task,
    TaskStatus,
)
from plansmith_server.errors import PreconditionViolation

STARTABLE = (TaskStatus.TODO, TaskStatus.BLOCKED)
"""A task starts from TODO or BLOCKED."""
FINISHED = (TaskStatus.DONE, TaskStatus.CANCELLED)
"""A dependency in one of these holds nobody up (cancelled work will not be done)."""
CLOSED_PLANS = (PlanStatus.COMPLETED, PlanStatus.CANCELLED, PlanStatus.ON_HOLD)


def capacity(agent: Agent) -> int:
    """Tasks the agent works on at once (0 means 1)."""
    return agent.capacity or 1


def effective_status(
    task_id: str, tasks: Mapping[str, Task], children: Mapping[str, list[str]]
) -> TaskStatus:
    """A task's status for those waiting on it: a summary (decomposed) task is finished
    when all its subtasks are."""
    kids = children.get(task_id)
    if not kids:
        t = tasks.get(task_id)
        return t.status if t else TaskStatus.DONE  # a deleted dependency holds nobody up
    seen: set[str] = set()
    stack = list(kids)
    while stack:
        k = stack.pop()
        if k in seen:
            continue
        seen.add(k)
        if k in children:
            stack.extend(children[k])
        elif tasks[k].status not in FINISHED:
            return tasks[k].status
    return TaskStatus.DONE


def start_preconditions(
    plan: Plan,
    task: Task,
    agent: Agent,
    *,
    tasks: Mapping[str, Task],
    children: Mapping[str, list[str]],
    agent_load: int,
    availability: Availability | None,
    heartbeat_timeout: int,
    now: int,
) -> list[PreconditionViolation]:
    """Every unmet precondition of `agent` starting `task` at `now` (µs), in a fixed
    order; empty when it may start. `tasks` holds the plan's tasks by id, `children`
    the subtasks of each summary, `agent_load` how many tasks the agent has IN_PROGRESS."""
    out: list[PreconditionViolation] = []
    subject = f"tasks/{task.id}"
    if plan.status in CLOSED_PLANS:
        out.append(
            PreconditionViolation(
                "PLAN_NOT_ACTIVE",
                f"plans/{plan.id}",
                f"the plan is {plan.status.name}; no task starts until it is ACTIVE or DRAFT",
            )
        )
    if task.status not in STARTABLE:
        out.append(
            PreconditionViolation(
                "TASK_NOT_STARTABLE",
                subject,
                f"the task is {_status_name(task.status)}; only a TODO or BLOCKED task starts",
            )
        )
    if children.get(task.id):
        out.append(
            PreconditionViolation(
                "TASK_NOT_STARTABLE",
                subject,
                "the task is a summary: its subtasks carry its work; start those",
            )
        )
    if task.not_before and now < task.not_before:
        when = datetime.fromtimestamp(task.not_before / 1e6, UTC).isoformat()
        out.append(
            PreconditionViolation(
                "TASK_NOT_BEFORE",
                subject,
                f"the task may not start before {when} (a retry's backoff)",
            )
        )
    for dep in task.dependencies:
        status = effective_status(dep, tasks, children)
        if status not in FINISHED:
            out.append(
                PreconditionViolation(
                    "DEPENDENCY_NOT_DONE",
                    f"tasks/{dep}",
                    f"dependency {dep!r} is {_status_name(status)}, not DONE",
                )
            )
    if plan.agents:
        missing = planning.missing_capabilities(agent.capabilities, task.required_capabilities)
        if missing:
            out.append(
                PreconditionViolation(
                    "AGENT_LACKS_CAPABILITY",
                    f"agents/{agent.id}",
                    f"agent {agent.id!r} lacks {', '.join(missing)}",
                )
            )
    if agent_load >= capacity(agent):
        out.append(
            PreconditionViolation(
                "AGENT_AT_CAPACITY",
                f"agents/{agent.id}",
                f"agent {agent.id!r} has {agent_load} task(s) in progress; its capacity is "
                f"{capacity(agent)}",
            )
        )
    if availability is not None:
        ok, why = availability.available_at(now, heartbeat_timeout)
        if not ok:
            out.append(
                PreconditionViolation(
                    "AGENT_UNAVAILABLE", f"agents/{agent.id}", f"agent {agent.id!r}: {why}"
                )
            )
    return out


def children_of(tasks: Sequence[Task]) -> dict[str, list[str]]:
    """Summary task id -> its subtasks' ids."""
    out: dict[str, list[str]] = {}
    for t in tasks:
        if t.parent_task_id:
            out.setdefault(t.parent_task_id, []).append(t.id)
    return out


def _status_name(status: TaskStatus) -> str:
    return "TODO" if status == TaskStatus.TODO else TaskStatus(status).name
