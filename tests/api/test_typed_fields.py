"""The typed fields added beside release 1's strings and metadata conventions: each filled
(or honoured) through the real server, the old string or key still there."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import duration_pb2

from plansmith.v1 import (
    agent_pb2,
    analysis_pb2,
    plan_pb2,
    planning_service_pb2_grpc,
    task_pb2,
)
from plansmith.v1 import plan_service_pb2 as ps
from plansmith.v1 import planning_service_pb2 as pb
from tests.api.test_generation import brief
from tests.conftest import details_of
from tests.planning.scenarios import SCENARIOS


@pytest.fixture
def planning(channel):
    return planning_service_pb2_grpc.PlanningServiceStub(channel)


async def _plan(plans, **fields) -> plan_pb2.Plan:
    plan = plan_pb2.Plan(name="P", agents=[agent_pb2.Agent(id="ann")], **fields)
    return (await plans.CreatePlan(ps.CreatePlanRequest(plan=plan))).plan


async def test_solver_kind_is_the_enum_of_the_solver_string(plans, planning):
    p = await _plan(plans)
    await plans.CreateTask(
        ps.CreateTaskRequest(plan_id=p.id, task=task_pb2.Task(title="a", estimated_hours=2))
    )
    r = await planning.OptimizePlan(
        pb.OptimizePlanRequest(plan_id=p.id, time_limit=duration_pb2.Duration(seconds=1))
    )
    names = {
        "cpsat": analysis_pb2.SOLVER_KIND_CPSAT,
        "heuristic": analysis_pb2.SOLVER_KIND_HEURISTIC,
        "baseline": analysis_pb2.SOLVER_KIND_BASELINE,
    }
    assert r.solver.solver in names  # the deprecated string is still filled
    assert r.solver.kind == names[r.solver.solver]


async def test_estimation_method_is_the_enum_of_the_method_string(plans, planning):
    p = await _plan(plans)
    for i in range(4):
        await plans.CreateTask(
            ps.CreateTaskRequest(
                plan_id=p.id,
                task=task_pb2.Task(
                    title=f"Build REST endpoint for orders v{i}",
                    estimated_hours=8,
                    actual_hours=12,
                    status=task_pb2.TASK_STATUS_DONE,
                    assigned_to="ann",
                ),
            )
        )
    history = await planning.EstimateTaskDuration(
        pb.EstimateTaskDurationRequest(
            task_description="Build REST endpoint for invoices", agent_id="ann", plan_id=p.id
        )
    )
    assert history.method.startswith("history")
    assert history.estimation_method == pb.ESTIMATION_METHOD_HISTORY
    other = await planning.EstimateTaskDuration(
        pb.EstimateTaskDurationRequest(task_description="Build REST endpoint for invoices")
    )
    expected = {"library": pb.ESTIMATION_METHOD_LIBRARY, "default": pb.ESTIMATION_METHOD_DEFAULT}
    assert other.estimation_method == expected[other.method]


async def test_pinned_writes_and_reads_the_metadata_key(plans):
    p = await _plan(plans)
    typed = (
        await plans.CreateTask(
            ps.CreateTaskRequest(
                plan_id=p.id,
                task=task_pb2.Task(title="a", assigned_to="ann", pinned=True, metadata={"k": "v"}),
            )
        )
    ).task
    assert typed.pinned and typed.HasField("pinned")
    assert dict(typed.metadata) == {"k": "v", "plansmith.pinned": "true"}
    by_key = (
        await plans.CreateTask(
            ps.CreateTaskRequest(
                plan_id=p.id, task=task_pb2.Task(title="b", metadata={"plansmith.pinned": "TRUE"})
            )
        )
    ).task
    assert by_key.pinned
    unpinned = (
        await plans.CreateTask(
            ps.CreateTaskRequest(
                plan_id=p.id,
                task=task_pb2.Task(title="c", pinned=False, metadata={"plansmith.pinned": "true"}),
            )
        )
    ).task
    assert unpinned.HasField("pinned") and not unpinned.pinned
    assert "plansmith.pinned" not in unpinned.metadata
    got = (await plans.GetTask(ps.GetTaskRequest(task_id=typed.id))).task
    assert got.pinned


async def test_pinned_in_an_update_mask_is_refused_and_an_echo_changes_nothing(plans):
    p = await _plan(plans)
    t = (
        await plans.CreateTask(
            ps.CreateTaskRequest(plan_id=p.id, task=task_pb2.Task(title="a", pinned=True))
        )
    ).task
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.UpdateTask(
            ps.UpdateTaskRequest(
                task=task_pb2.Task(id=t.id, pinned=False), update_mask={"paths": ["pinned"]}
            )
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(e.value)["BadRequest"].field_violations[0].field == "update_mask"
    # A client that read the task, removed the key and sent it back whole (the read
    # `pinned` echoed) unpins it: the metadata it sent is what is stored.
    t.metadata.pop("plansmith.pinned")
    t.title = "b"
    updated = (
        await plans.UpdateTask(
            ps.UpdateTaskRequest(task=t, update_mask={"paths": ["title", "metadata"]})
        )
    ).task
    assert not updated.pinned and "plansmith.pinned" not in updated.metadata


async def test_a_generated_plan_has_its_confidence_typed(plans, planning):
    r = await planning.GeneratePlan(
        pb.GeneratePlanRequest(brief=brief(SCENARIOS["website"]), persist=True)
    )
    stored = (await plans.GetPlan(ps.GetPlanRequest(plan_id=r.result.plan.id))).plan
    assert stored.HasField("confidence")
    assert stored.confidence == pytest.approx(float(stored.metadata["plansmith.confidence"]))
    assert stored.confidence == pytest.approx(r.result.confidence, abs=0.005)
    plain = await _plan(plans)
    assert not plain.HasField("confidence")
