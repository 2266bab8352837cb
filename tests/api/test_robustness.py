"""Malformed input, request ids, restarts: nothing crashes, nothing is lost."""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest
from google.rpc import error_details_pb2

from plansmith.errors import from_rpc_error
from plansmith.v1 import agent_pb2, plan_pb2, plan_service_pb2_grpc, task_pb2
from plansmith.v1 import plan_service_pb2 as pb
from plansmith_server.api.errors import MAX_MESSAGE_BYTES, to_status
from plansmith_server.app import start
from plansmith_server.config import Config
from plansmith_server.errors import (
    DependencyCycleError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    PreconditionViolation,
)
from tests.conftest import details_of

METHODS = [m.name for m in pb.DESCRIPTOR.services_by_name["PlanService"].methods]


def raw_call(channel: grpc.aio.Channel, method: str):
    return channel.unary_unary(
        f"/plansmith.v1.PlanService/{method}",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )


@pytest.mark.parametrize("method", METHODS)
async def test_bytes_that_do_not_parse_are_invalid_argument(channel, method):
    for payload in (b"\x0a\xff", b"\x0a\x02\xff\xfe", b"\xff\xff\xff\xff\xff"):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await raw_call(channel, method)(payload)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, payload)
        assert details_of(e.value)["ErrorInfo"].reason == "MALFORMED_REQUEST"


async def test_random_bytes_never_yield_internal_or_unknown(channel):
    rng = random.Random(1234)
    for i in range(300):
        method = METHODS[i % len(METHODS)]
        payload = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        try:
            await raw_call(channel, method)(payload)
        except grpc.aio.AioRpcError as e:
            assert e.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (
                method,
                payload,
                e.details(),
            )


async def test_empty_requests_get_clear_errors(plans):
    calls = [
        plans.CreatePlan(pb.CreatePlanRequest()),
        plans.GetPlan(pb.GetPlanRequest()),
        plans.UpdatePlan(pb.UpdatePlanRequest()),
        plans.DeletePlan(pb.DeletePlanRequest()),
        plans.CreateTask(pb.CreateTaskRequest()),
        plans.BatchCreateTasks(pb.BatchCreateTasksRequest()),
        plans.GetTask(pb.GetTaskRequest()),
        plans.ListTasks(pb.ListTasksRequest()),
        plans.UpdateTask(pb.UpdateTaskRequest()),
        plans.DeleteTask(pb.DeleteTaskRequest()),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details_of(e.value)["BadRequest"].field_violations
    assert (await plans.ListPlans(pb.ListPlansRequest())).total_size == 0


async def test_oversized_strings_and_lists(plans):
    p = (await plans.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.CreateTask(
            pb.CreateTaskRequest(
                plan_id=p.id,
                task=task_pb2.Task(
                    title="t" * 501,
                    required_capabilities=["c"] * 65,
                    dependencies=[f"x{i}" for i in range(1001)],
                ),
                request_id="r" * 200,
            )
        )
    fields = {v.field for v in details_of(e.value)["BadRequest"].field_violations}
    assert {"task.title", "task.required_capabilities", "task.dependencies", "request_id"} <= fields


async def test_request_id_is_echoed_or_generated_in_the_trailers(plans):
    call = plans.GetPlan(pb.GetPlanRequest(plan_id="x"), metadata=(("x-request-id", "abc-123"),))
    with pytest.raises(grpc.aio.AioRpcError):
        await call
    trailers = tuple(await call.trailing_metadata())
    assert ("x-request-id", "abc-123") in trailers
    assert "grpc-status-details-bin" in dict(trailers)  # the error's details kept beside it
    call = plans.ListPlans(pb.ListPlansRequest())
    await call
    generated = dict(await call.trailing_metadata())["x-request-id"]
    assert len(generated) == 32
    assert "x-request-id" not in dict(await call.initial_metadata())  # no extra send


async def test_a_client_error_carries_the_request_id_the_server_generated(plans):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.GetPlan(pb.GetPlanRequest(plan_id="x"))  # raw stub: sends no id
    err = from_rpc_error(e.value)
    assert len(err.request_id) == 32
    assert err.request_id == dict(e.value.trailing_metadata())["x-request-id"]


async def test_concurrent_writes_are_serialized_without_loss(plans):
    p = (await plans.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    results = await asyncio.gather(
        *(
            plans.CreateTask(pb.CreateTaskRequest(plan_id=p.id, task=task_pb2.Task(title=f"t{i}")))
            for i in range(60)
        )
    )
    revisions = sorted(r.plan_revision for r in results)
    assert revisions == list(range(2, 62))
    got = (await plans.GetPlan(pb.GetPlanRequest(plan_id=p.id))).plan
    assert got.revision == 61


async def test_data_and_request_ids_survive_a_restart(db_path):
    cfg = Config(listen="127.0.0.1:0", db_path=db_path)
    first = await start(cfg)
    try:
        async with grpc.aio.insecure_channel(first.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            req = pb.CreatePlanRequest(plan=plan_pb2.Plan(name="Durable"), request_id="keep-me")
            p = (await stub.CreatePlan(req)).plan
            await stub.CreateTask(pb.CreateTaskRequest(plan_id=p.id, task=task_pb2.Task(title="t")))
    finally:
        await first.stop(grace=0.5)
    second = await start(cfg)
    try:
        async with grpc.aio.insecure_channel(second.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            got = (await stub.GetPlan(pb.GetPlanRequest(plan_id=p.id))).plan
            assert got.name == "Durable" and got.id == p.id
            assert got.revision == 2
            again = (await stub.CreatePlan(req)).plan
            assert again.id == p.id  # the idempotency record survived
            assert (await stub.ListPlans(pb.ListPlansRequest())).total_size == 1
    finally:
        await second.stop(grace=0.5)


async def test_calls_cancelled_at_any_point_leave_no_transaction_open(plans):
    """Deadlines that expire mid-call cancel the handler at random points (even while a
    BEGIN or COMMIT is on the database thread); later calls must still work."""
    p = (await plans.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    t = (
        await plans.CreateTask(pb.CreateTaskRequest(plan_id=p.id, task=task_pb2.Task(title="t")))
    ).task
    rng = random.Random(5)
    for i in range(150):
        deadline = rng.choice([0.0002, 0.0005, 0.001, 0.002, 0.004])
        calls = [
            plans.GetTask(pb.GetTaskRequest(task_id=t.id), timeout=deadline),
            plans.ListTasks(pb.ListTasksRequest(plan_id=p.id), timeout=deadline),
            plans.CreateTask(
                pb.CreateTaskRequest(plan_id=p.id, task=task_pb2.Task(title=f"c{i}")),
                timeout=deadline,
            ),
        ]
        for call in calls:
            try:
                await call
            except grpc.aio.AioRpcError as e:
                assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # Every path still works, and every acknowledged write is there exactly once.
    assert (await plans.GetTask(pb.GetTaskRequest(task_id=t.id))).task.id == t.id
    listed = await plans.ListTasks(pb.ListTasksRequest(plan_id=p.id, page_size=1000))
    titles = [x.title for x in listed.tasks]
    assert len(titles) == len(set(titles))
    await plans.CreateTask(pb.CreateTaskRequest(plan_id=p.id, task=task_pb2.Task(title="last")))


async def test_a_failing_write_in_a_commit_group_leaves_the_others_intact(plans):
    """Concurrent writes share one transaction (group commit); one that fails inside its
    transaction rolls back alone."""
    p = (await plans.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan

    async def create(i: int):
        deps = ["tsk_missing"] if i % 3 == 0 else []
        try:
            return await plans.CreateTask(
                pb.CreateTaskRequest(
                    plan_id=p.id, task=task_pb2.Task(title=f"t{i}", dependencies=deps)
                )
            )
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
            return None

    results = await asyncio.gather(*(create(i) for i in range(90)))
    ok = [r for r in results if r is not None]
    assert len(ok) == 60
    assert sorted(r.plan_revision for r in ok) == list(range(2, 62))
    listed = await plans.ListTasks(pb.ListTasksRequest(plan_id=p.id, page_size=1000))
    assert sorted(t.title for t in listed.tasks) == sorted(f"t{i}" for i in range(90) if i % 3)


# Errors echo what the caller sent; the trailers carrying them must stay under the 8 KiB
# a default gRPC client accepts, or the caller gets RESOURCE_EXHAUSTED without details.


async def test_a_thousand_violations_are_listed_in_part_and_counted(plans):
    p = (await plans.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P")))).plan
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.BatchCreateTasks(
            pb.BatchCreateTasksRequest(
                plan_id=p.id, tasks=[task_pb2.Task(title=" " * 40) for _ in range(1000)]
            )
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    details = details_of(e.value)
    shown = details["BadRequest"].field_violations
    assert 10 <= len(shown) < 1000
    assert [v.field for v in shown[:2]] == ["tasks[0].title", "tasks[1].title"]
    meta = details["ErrorInfo"].metadata
    assert meta["violations"] == "1000" and meta["violations_shown"] == str(len(shown))
    assert "(+995 more)" in e.value.details()
    assert (await plans.ListTasks(pb.ListTasksRequest(plan_id=p.id))).total_size == 0


async def test_a_huge_metadata_key_is_named_cut_short(plans):
    key = "k" * 20_000
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.CreatePlan(
            pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P", metadata={key: "v"}))
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    (v,) = details_of(e.value)["BadRequest"].field_violations
    assert v.field == "plan.metadata[" + repr("k" * 64 + "\u2026") + "]"
    assert "keys must be 1 to 64 characters" in v.description
    assert (await plans.ListPlans(pb.ListPlansRequest())).total_size == 0


async def test_an_unknown_assignee_names_a_few_of_many_agents(plans):
    agents = [agent_pb2.Agent(id=f"agent-{i:03d}") for i in range(200)]
    p = (
        await plans.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="P", agents=agents)))
    ).plan
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.CreateTask(
            pb.CreateTaskRequest(plan_id=p.id, task=task_pb2.Task(title="t", assigned_to="zed"))
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    (v,) = details_of(e.value)["BadRequest"].field_violations
    assert v.field == "task.assigned_to"
    assert "'zed' is not among the plan's agents" in v.description
    assert "(agent-000, agent-001, " in v.description and "and 190 more)" in v.description


def test_every_string_of_a_status_is_bounded():
    wide = "\u4e00" * 5_000  # three bytes each in UTF-8
    errors = [
        InvalidArgumentError([FieldViolation(wide, wide)] * 500),
        DependencyCycleError("tasks", [f"tsk_{i:030d}" for i in range(2_000)]),
        NotFoundError("plan", wide),
        FailedPreconditionError(
            wide, reason="R", violations=[PreconditionViolation("T", wide, wide)] * 500
        ),
    ]
    for err in errors:
        status = to_status(err)
        assert status.ByteSize() < 4_500, type(err)
        assert len(status.message.encode()) <= MAX_MESSAGE_BYTES
        assert status.message.endswith("\u2026")
        for any_msg in status.details[1:]:  # one violation at least, however long
            for cls in (error_details_pb2.BadRequest, error_details_pb2.PreconditionFailure):
                if any_msg.Is(cls.DESCRIPTOR):
                    detail = cls()
                    any_msg.Unpack(detail)
                    listed = getattr(detail, "field_violations", None) or detail.violations
                    assert 1 <= len(listed) < 500
