"""StartTask's preconditions: every unmet one is named."""

from __future__ import annotations

from plansmith_server.domain.models import Agent, Availability, Plan, PlanStatus, Task, TaskStatus
from plansmith_server.domain.preconditions import (
    children_of,
    start_preconditions,
)

S = 1_000_000
ANN = Agent("ann", capabilities=("PostgreSQL",))
PLAN = Plan("p", "proj", "P", agents=(ANN, Agent("bob", capabilities=("React",), capacity=2)))


def check(
    task: Task,
    tasks: list[Task],
    *,
    agent: Agent = ANN,
    load: int = 0,
    avail: Availability | None = None,
    plan: Plan = PLAN,
    now: int = 100 * S,
) -> list[str]:
    by_id = {t.id: t for t in [*tasks, task]}
    return [
        v.type
        for v in start_preconditions(
            plan,
            task,
            agent,
            tasks=by_id,
            children=children_of(list(by_id.values())),
            agent_load=load,
            availability=avail,
            heartbeat_timeout=60 * S,
            now=now,
        )
    ]


def test_a_ready_task_has_no_unmet_precondition() -> None:
    dep = Task("d", "p", "dep", status=TaskStatus.DONE)
    assert (
        check(Task("t", "p", "x", dependencies=("d",), required_capabilities=("postgres",)), [dep])
        == []
    )


def test_every_unmet_precondition_is_named() -> None:
    dep = Task("d", "p", "dep", status=TaskStatus.IN_PROGRESS)
    task = Task(
        "t",
        "p",
        "x",
        status=TaskStatus.DONE,
        dependencies=("d",),
        required_capabilities=("Kubernetes",),
        not_before=200 * S,
    )
    found = check(
        task,
        [dep],
        load=1,
        avail=Availability("ann", False, reason="vacation"),
        plan=Plan("p", "proj", "P", status=PlanStatus.ON_HOLD, agents=PLAN.agents),
    )
    assert found == [
        "PLAN_NOT_ACTIVE",
        "TASK_NOT_STARTABLE",
        "TASK_NOT_BEFORE",
        "DEPENDENCY_NOT_DONE",
        "AGENT_LACKS_CAPABILITY",
        "AGENT_AT_CAPACITY",
        "AGENT_UNAVAILABLE",
    ]


def test_capacity_counts_concurrent_tasks() -> None:
    bob = PLAN.agents[1]
    assert check(Task("t", "p", "x"), [], agent=bob, load=1) == []
    assert check(Task("t", "p", "x"), [], agent=bob, load=2) == ["AGENT_AT_CAPACITY"]


def test_a_summary_dependency_is_done_when_its_subtasks_are() -> None:
    summary = Task("s", "p", "sum")
    a = Task("a", "p", "a", parent_task_id="s", status=TaskStatus.DONE)
    b = Task("b", "p", "b", parent_task_id="s", status=TaskStatus.TODO)
    task = Task("t", "p", "x", dependencies=("s",))
    assert check(task, [summary, a, b]) == ["DEPENDENCY_NOT_DONE"]
    b2 = Task("b", "p", "b", parent_task_id="s", status=TaskStatus.CANCELLED)
    assert check(task, [summary, a, b2]) == []
    assert check(summary, [a, b]) == ["TASK_NOT_STARTABLE"]  # a summary itself never starts


def test_availability_until_and_heartbeat_timeout() -> None:
    away = Availability("ann", False, until=150 * S, reason="vacation")
    assert check(Task("t", "p", "x"), [], avail=away) == ["AGENT_UNAVAILABLE"]
    assert check(Task("t", "p", "x"), [], avail=away, now=151 * S) == []
    silent = Availability("ann", True, last_heartbeat=30 * S)
    assert check(Task("t", "p", "x"), [], avail=silent) == ["AGENT_UNAVAILABLE"]
    assert check(Task("t", "p", "x"), [], avail=silent, now=80 * S) == []
