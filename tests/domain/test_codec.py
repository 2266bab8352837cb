"""The idempotency codec derived from result types: what a retry gets back is what the
first call returned, and records written by release 1 (hand-written encoders) decode."""

from __future__ import annotations

from plansmith_server.domain.codec import codec_for
from plansmith_server.domain.generation import DecomposeResult
from plansmith_server.domain.models import Agent, Plan, PlanStatus, Schedule, Task, TaskStatus
from plansmith_server.domain.plans import PlanDeletion
from plansmith_server.domain.tasks import TaskDeletion, TaskResult, TasksResult

TASK = Task(
    id="tsk_1",
    plan_id="pln_1",
    title="t",
    status=TaskStatus.DONE,
    dependencies=("tsk_0",),
    metadata={"k": "v"},
    schedule=Schedule(1.0, 2.5),
    version=3,
)
PLAN = Plan(
    id="pln_1",
    project_id="p",
    name="P",
    status=PlanStatus.ACTIVE,
    agents=(Agent("a", "A", ("x",)),),
    revision=4,
)


def test_results_come_back_equal() -> None:
    for value in (
        PLAN,
        TaskResult(TASK, 7),
        TasksResult((TASK, TASK), 8),
        PlanDeletion("pln_1", 3),
        TaskDeletion("tsk_1", ("tsk_2", "tsk_3"), 9),
        DecomposeResult((TASK,), "htn", ("tsk_9",), 4, "llm"),
    ):
        codec = codec_for(type(value))
        assert codec.decode(codec.encode(value)) == value


def test_release_1_records_decode() -> None:
    # As release 1's hand-written encoders wrote them (domain/plans.py, generation.py).
    assert codec_for(TaskResult).decode({"task": TASK.to_dict(), "plan_revision": 7}) == TaskResult(
        TASK, 7
    )
    assert codec_for(TasksResult).decode(
        {"tasks": [TASK.to_dict()], "plan_revision": 8}
    ) == TasksResult((TASK,), 8)
    assert codec_for(TaskDeletion).decode(
        {"task_id": "tsk_1", "detached_task_ids": ["tsk_2"], "plan_revision": 9}
    ) == TaskDeletion("tsk_1", ("tsk_2",), 9)
    assert codec_for(PlanDeletion).decode(
        {"plan_id": "pln_1", "deleted_task_count": 3}
    ) == PlanDeletion("pln_1", 3)
    assert codec_for(Plan).decode(PLAN.to_dict()) == PLAN
    decomposed = {
        "subtasks": [TASK.to_dict()],
        "method": "htn",
        "rewired": ["tsk_9"],
        "plan_revision": 4,
    }  # without "backend": the field's default
    assert codec_for(DecomposeResult).decode(decomposed) == DecomposeResult(
        (TASK,), "htn", ("tsk_9",), 4
    )
    encoded = codec_for(DecomposeResult).encode(DecomposeResult((TASK,), "htn", ("x",), 4))
    assert set(encoded) == {"subtasks", "method", "rewired", "plan_revision", "backend"}
