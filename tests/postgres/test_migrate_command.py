"""`plansmith-server migrate --from FILE --to URL`: an SQLite database copied into an
empty PostgreSQL one, verified by counts and checksums, and served the same after."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
from google.protobuf import field_mask_pb2

from plansmith.v1 import flow_service_pb2 as fpb
from plansmith.v1 import flow_service_pb2_grpc, plan_pb2, plan_service_pb2_grpc, task_pb2
from plansmith.v1 import plan_service_pb2 as pb
from plansmith_server.app import start
from plansmith_server.config import Config
from tests.flows.example import example_proto

BIN = Path(sys.executable).parent


def migrate(source: str, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "plansmith-server"), "migrate", "--from", source, "--to", target],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _fill(stub: plan_service_pb2_grpc.PlanServiceStub) -> str:
    plan = (
        await stub.CreatePlan(
            pb.CreatePlanRequest(
                plan=plan_pb2.Plan(name="Moved", project_id="web", objectives=["ship"]),
                request_id="mv-plan",
            )
        )
    ).plan
    await stub.BatchCreateTasks(
        pb.BatchCreateTasksRequest(
            plan_id=plan.id,
            tasks=[
                task_pb2.Task(id="a", title="Design", estimated_hours=2.5),
                task_pb2.Task(title="Build", estimated_hours=10, dependencies=["a"]),
                task_pb2.Task(title="Test", estimated_hours=1 / 3, metadata={"k": "v"}),
            ],
            request_id="mv-batch",
        )
    )
    tasks = (await stub.ListTasks(pb.ListTasksRequest(plan_id=plan.id))).tasks
    await stub.UpdateTask(
        pb.UpdateTaskRequest(
            task=task_pb2.Task(id=tasks[2].id, title="Test well"),
            update_mask=field_mask_pb2.FieldMask(paths=["title"]),
        )
    )
    await stub.DeleteTask(pb.DeleteTaskRequest(task_id=tasks[2].id))
    other = (await stub.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(name="Gone")))).plan
    await stub.DeletePlan(pb.DeletePlanRequest(plan_id=other.id))
    return plan.id


async def _snapshot(stub: plan_service_pb2_grpc.PlanServiceStub, plan_id: str):
    plan = (await stub.GetPlan(pb.GetPlanRequest(plan_id=plan_id))).plan
    first = await stub.ListTasks(pb.ListTasksRequest(plan_id=plan_id, page_size=1))
    plans = await stub.ListPlans(pb.ListPlansRequest())
    return plan, first, plans


async def test_an_sqlite_database_moves_to_postgresql_and_serves_the_same(tmp_path, pg_dsn):
    db = str(tmp_path / "plansmith.db")
    sqlite_server = await start(Config(listen="127.0.0.1:0", db_path=db))
    try:
        async with grpc.aio.insecure_channel(sqlite_server.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            plan_id = await _fill(stub)
            before = await _snapshot(stub, plan_id)
            flows = flow_service_pb2_grpc.FlowServiceStub(ch)
            flow = (
                await flows.CreateFlow(fpb.CreateFlowRequest(flow=example_proto(), flow_id="sql"))
            ).flow
    finally:
        await sqlite_server.stop(grace=0.2)

    out = migrate(db, pg_dsn)
    assert out.returncode == 0, out.stderr
    for table in (
        "plans",
        "tasks",
        "task_dependencies",
        "plan_changes",
        "idempotency_keys",
        "flows",
        "flow_versions",
        "flow_runs",
    ):
        assert table in out.stdout
    assert "tasks                      2 rows" in out.stdout

    pg_server = await start(Config(listen="127.0.0.1:0", db_path=pg_dsn))
    try:
        async with grpc.aio.insecure_channel(pg_server.address) as ch:
            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            assert await _snapshot(stub, plan_id) == before
            flows = flow_service_pb2_grpc.FlowServiceStub(ch)
            assert (await flows.GetFlow(fpb.GetFlowRequest(flow_id="sql"))).flow == flow
            # A page token from the SQLite server continues on PostgreSQL.
            rest = await stub.ListTasks(
                pb.ListTasksRequest(plan_id=plan_id, page_token=before[1].next_page_token)
            )
            assert [t.title for t in rest.tasks] == ["Build"]
            # A retried request answers as the first time, and changes nothing.
            again = await stub.CreatePlan(
                pb.CreatePlanRequest(
                    plan=plan_pb2.Plan(name="Moved", project_id="web", objectives=["ship"]),
                    request_id="mv-plan",
                )
            )
            assert again.plan.id == plan_id
            # New rows come after the copied ones.
            added = await stub.CreateTask(
                pb.CreateTaskRequest(plan_id=plan_id, task=task_pb2.Task(title="Ship"))
            )
            listed = await stub.ListTasks(pb.ListTasksRequest(plan_id=plan_id))
            assert [t.title for t in listed.tasks] == ["Design", "Build", "Ship"]
            assert added.plan_revision == before[0].revision + 1
    finally:
        await pg_server.stop(grace=0.2)

    # Into a database that is not empty: refused, nothing changed.
    refused = migrate(db, pg_dsn)
    assert refused.returncode == 1
    assert "not empty" in refused.stderr


def test_a_bad_target_is_refused_without_its_password(tmp_path):
    out = migrate(str(tmp_path / "none.db"), "postgresql://ann:Hunter2-pw@[::1/x")
    assert out.returncode == 2
    assert "Hunter2" not in out.stderr and "ann:***@" in out.stderr
