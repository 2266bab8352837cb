"""Makes the release-1 database fixture: RUN IT WITH RELEASE-1 CODE, never with today's.

The fixture is what a user of release 1 has on disk when they upgrade: a database written by
release 1's server, and the answers its clients got. tests/storage/test_release1_fixture.py
opens it with the current server and checks that it still reads the same, that retries of
the recorded requests (same request_ids) return the first answers, and that the change log
decodes. Regenerating it with newer code would make that test prove nothing.

Release 1 is commit 4d172b1. To remake the fixture (only if it must change):

    git worktree add /tmp/r1 4d172b1
    python3 -m venv /tmp/r1/.venv
    /tmp/r1/.venv/bin/pip install -e /tmp/r1/clients/python -e '/tmp/r1[dev]'
    /tmp/r1/.venv/bin/python tests/data/release1/make_fixture.py tests/data/release1
    git worktree remove /tmp/r1

It writes `plansmith.db` (checkpointed: no -wal file) and `calls.json`: every mutation sent,
with its request_id and the response it got, then the stored state read back (every plan
and its tasks) and the change log's entries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from plansmith.v1 import (
    agent_pb2,
    generation_pb2,
    plan_pb2,
    plan_service_pb2,
    plan_service_pb2_grpc,
    planning_service_pb2,
    planning_service_pb2_grpc,
    task_pb2,
)
from plansmith_server.app import start
from plansmith_server.config import Config

PS = plan_pb2.PlanStatus
TS = task_pb2.TaskStatus
TP = task_pb2.TaskPriority


def as_json(msg: Any) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def refuse_newer_code() -> None:
    """Release 1's OptimizePlanResponse had no `partial` (added after it)."""
    if "partial" in planning_service_pb2.OptimizePlanResponse.DESCRIPTOR.fields_by_name:
        sys.exit("this is not release-1 code: run the script with release 1's venv (see top)")


class Recorder:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.plans = plan_service_pb2_grpc.PlanServiceStub(channel)
        self.planning = planning_service_pb2_grpc.PlanningServiceStub(channel)
        self.calls: list[dict[str, Any]] = []

    async def call(self, service: str, method: str, request: Any) -> Any:
        stub = self.plans if service == "PlanService" else self.planning
        response = await getattr(stub, method)(request)
        self.calls.append(
            {
                "service": f"plansmith.v1.{service}",
                "method": method,
                "request": as_json(request),
                "response": as_json(response),
            }
        )
        return response


async def record(rec: Recorder) -> None:
    P, T = plan_service_pb2, task_pb2

    def agent(id_: str, name: str, *caps: str) -> agent_pb2.Agent:
        return agent_pb2.Agent(id=id_, name=name, capabilities=list(caps))

    # Plans in every status.
    web = (
        await rec.call(
            "PlanService",
            "CreatePlan",
            P.CreatePlanRequest(
                plan=plan_pb2.Plan(
                    project_id="web",
                    name="Company website",
                    description="Relaunch of the public site",
                    objectives=["New design live", "Page load under 1 s"],
                    constraints=["within 6 weeks"],
                    metadata={"owner": "marketing", "budget": "40k"},
                    status=PS.PLAN_STATUS_ACTIVE,
                    agents=[
                        agent("ann", "Ann", "React", "TypeScript"),
                        agent("bob", "Bob", "Python", "PostgreSQL"),
                    ],
                ),
                request_id="r1-fixture-plan-web",
            ),
        )
    ).plan
    for status, name, rid in [
        (PS.PLAN_STATUS_DRAFT, "Data warehouse", "r1-fixture-plan-draft"),
        (PS.PLAN_STATUS_ON_HOLD, "Mobile app", "r1-fixture-plan-hold"),
        (PS.PLAN_STATUS_CANCELLED, "Print catalogue", "r1-fixture-plan-cancelled"),
    ]:
        await rec.call(
            "PlanService",
            "CreatePlan",
            P.CreatePlanRequest(
                plan=plan_pb2.Plan(project_id="ops", name=name, status=status), request_id=rid
            ),
        )
    done_plan = (
        await rec.call(
            "PlanService",
            "CreatePlan",
            P.CreatePlanRequest(
                plan=plan_pb2.Plan(project_id="ops", name="Office move"),
                request_id="r1-fixture-plan-office",
            ),
        )
    ).plan
    await rec.call(
        "PlanService",
        "UpdatePlan",
        P.UpdatePlanRequest(
            plan=plan_pb2.Plan(
                id=done_plan.id, status=PS.PLAN_STATUS_COMPLETED, etag=done_plan.etag
            ),
            update_mask={"paths": ["status"]},
            request_id="r1-fixture-plan-office-done",
        ),
    )
    gone = (
        await rec.call(
            "PlanService",
            "CreatePlan",
            P.CreatePlanRequest(
                plan=plan_pb2.Plan(project_id="ops", name="Short-lived"),
                request_id="r1-fixture-plan-gone",
            ),
        )
    ).plan
    await rec.call(
        "PlanService",
        "CreateTask",
        P.CreateTaskRequest(
            plan_id=gone.id,
            task=T.Task(title="Never done", estimated_hours=1),
            request_id="r1-fixture-gone-task",
        ),
    )
    await rec.call(
        "PlanService",
        "DeletePlan",
        P.DeletePlanRequest(plan_id=gone.id, request_id="r1-fixture-plan-gone-delete"),
    )

    # Tasks: one alone, then a batch with dependencies (on the stored task and within the
    # batch), a subtask by batch reference, statuses, metadata, three-point estimates.
    design = (
        await rec.call(
            "PlanService",
            "CreateTask",
            P.CreateTaskRequest(
                plan_id=web.id,
                task=T.Task(
                    title="Design the pages",
                    description="Wireframes and visual design for every page",
                    priority=TP.TASK_PRIORITY_HIGH,
                    estimated_hours=16,
                    optimistic_hours=10,
                    pessimistic_hours=30,
                    assigned_to="ann",
                    required_capabilities=["React"],
                    metadata={"area": "design"},
                    acceptance_criteria=["Approved by marketing"],
                ),
                request_id="r1-fixture-task-design",
            ),
        )
    ).task
    batch = (
        await rec.call(
            "PlanService",
            "BatchCreateTasks",
            P.BatchCreateTasksRequest(
                plan_id=web.id,
                tasks=[
                    T.Task(
                        id="api",
                        title="Build the content API",
                        description="REST API in Python serving the pages from PostgreSQL",
                        priority=TP.TASK_PRIORITY_CRITICAL,
                        status=TS.TASK_STATUS_IN_PROGRESS,
                        estimated_hours=24,
                        progress=30,
                        assigned_to="bob",
                        required_capabilities=["Python"],
                        dependencies=[design.id],
                        metadata={"area": "backend", "repo": "site-api"},
                    ),
                    T.Task(
                        id="ui",
                        title="Build the pages",
                        estimated_hours=32,
                        assigned_to="ann",
                        required_capabilities=["React", "TypeScript"],
                        dependencies=["api"],
                    ),
                    T.Task(
                        id="forms",
                        title="Contact forms",
                        parent_task_id="ui",
                        status=TS.TASK_STATUS_BLOCKED,
                        estimated_hours=6,
                        assigned_to="ann",
                    ),
                    T.Task(
                        id="nav",
                        title="Navigation",
                        parent_task_id="ui",
                        estimated_hours=4,
                        dependencies=["forms"],
                    ),
                    T.Task(
                        id="db",
                        title="Provision the database",
                        status=TS.TASK_STATUS_DONE,
                        estimated_hours=3,
                        actual_hours=4.5,
                        progress=100,
                        assigned_to="bob",
                    ),
                    T.Task(
                        id="legal",
                        title="Legal review",
                        status=TS.TASK_STATUS_CANCELLED,
                        estimated_hours=2,
                    ),
                    T.Task(
                        id="launch",
                        title="Launch",
                        priority=TP.TASK_PRIORITY_LOW,
                        estimated_hours=1,
                        dependencies=["ui", "db"],
                        acceptance_criteria=["DNS switched", "Old site redirects"],
                    ),
                ],
                request_id="r1-fixture-batch-web",
            ),
        )
    ).tasks
    by_title = {t.title: t for t in batch}

    # Updates: each one a change-log entry.
    await rec.call(
        "PlanService",
        "UpdateTask",
        P.UpdateTaskRequest(
            task=T.Task(
                id=design.id,
                status=TS.TASK_STATUS_DONE,
                actual_hours=18,
                progress=100,
                etag=design.etag,
            ),
            update_mask={"paths": ["status", "actual_hours", "progress"]},
            request_id="r1-fixture-design-done",
        ),
    )
    api = by_title["Build the content API"]
    await rec.call(
        "PlanService",
        "UpdateTask",
        P.UpdateTaskRequest(
            task=T.Task(id=api.id, progress=60, metadata={"area": "backend", "pr": "42"}),
            update_mask={"paths": ["progress", "metadata"]},
            request_id="r1-fixture-api-progress",
        ),
    )
    await rec.call(
        "PlanService",
        "UpdateTask",
        P.UpdateTaskRequest(
            task=T.Task(id=by_title["Legal review"].id, status=TS.TASK_STATUS_FAILED),
            update_mask={"paths": ["status"]},
            request_id="r1-fixture-legal-failed",
        ),
    )
    spike = (
        await rec.call(
            "PlanService",
            "CreateTask",
            P.CreateTaskRequest(
                plan_id=web.id,
                task=T.Task(title="Spike: static site generator", estimated_hours=2),
                request_id="r1-fixture-task-spike",
            ),
        )
    ).task
    await rec.call(
        "PlanService",
        "DeleteTask",
        P.DeleteTaskRequest(task_id=spike.id, request_id="r1-fixture-task-spike-delete"),
    )
    await rec.call(
        "PlanService",
        "UpdatePlan",
        P.UpdatePlanRequest(
            plan=plan_pb2.Plan(id=web.id, description="Relaunch of the public site, phase 1"),
            update_mask={"paths": ["description"]},
            request_id="r1-fixture-plan-web-describe",
        ),
    )

    # Planning that persists: a decomposition, a generated plan, an optimization applied.
    await rec.call(
        "PlanningService",
        "DecomposeTask",
        planning_service_pb2.DecomposeTaskRequest(
            task_id=api.id, persist=True, request_id="r1-fixture-decompose"
        ),
    )
    generated = (
        await rec.call(
            "PlanningService",
            "GeneratePlan",
            planning_service_pb2.GeneratePlanRequest(
                brief=generation_pb2.PlanBrief(
                    project_id="db",
                    name="Orders DB upgrade",
                    description="Upgrade the orders PostgreSQL database from 12 to 15 in "
                    "production",
                    requirements=["Upgrade PostgreSQL 12 to 15", "No data loss"],
                    constraints=["within 3 weeks"],
                    available_agents=[
                        agent("dba", "", "DBA", "PostgreSQL"),
                        agent("ops", "", "DevOps engineer", "Kubernetes"),
                    ],
                    context={
                        "environment": "production",
                        "backup_required": True,
                        "downtime_allowed": False,
                    },
                ),
                persist=True,
                request_id="r1-fixture-generate",
            ),
        )
    ).result.plan
    await rec.call(
        "PlanningService",
        "OptimizePlan",
        planning_service_pb2.OptimizePlanRequest(
            plan_id=generated.id,
            time_limit={"seconds": 2},
            apply=True,
            request_id="r1-fixture-optimize",
        ),
    )


async def read_state(rec: Recorder) -> dict[str, Any]:
    """Every stored plan (by creation) and its tasks, as release 1 answers them."""
    plans: list[dict[str, Any]] = []
    tasks: dict[str, list[dict[str, Any]]] = {}
    token = ""
    while True:
        page = await rec.plans.ListPlans(
            plan_service_pb2.ListPlansRequest(page_size=100, page_token=token)
        )
        for p in page.plans:
            got = await rec.plans.GetPlan(plan_service_pb2.GetPlanRequest(plan_id=p.id))
            plans.append(as_json(got.plan))
            tasks[p.id] = []
            ttoken = ""
            while True:
                tpage = await rec.plans.ListTasks(
                    plan_service_pb2.ListTasksRequest(
                        plan_id=p.id, page_size=100, page_token=ttoken
                    )
                )
                tasks[p.id].extend(as_json(t) for t in tpage.tasks)
                ttoken = tpage.next_page_token
                if not ttoken:
                    break
        token = page.next_page_token
        if not token:
            break
    return {"plans": plans, "tasks": tasks}


async def main(out: Path) -> None:
    refuse_newer_code()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "plansmith.db"
        running = await start(Config(listen="127.0.0.1:0", db_path=str(db)))
        try:
            async with grpc.aio.insecure_channel(running.address) as channel:
                rec = Recorder(channel)
                await record(rec)
                state = await read_state(rec)
        finally:
            await running.stop(grace=1.0)
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        changes = [
            list(r)
            for r in conn.execute(
                "SELECT plan_id, revision, position, kind, entity_type, entity_id "
                "FROM plan_changes ORDER BY plan_id, revision, position"
            )
        ]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.close()
        (out / "plansmith.db").write_bytes(db.read_bytes())
    doc = {
        "made_by": "release 1 (commit 4d172b1), tests/data/release1/make_fixture.py",
        "schema_version": version,
        "calls": rec.calls,
        "state": state,
        "changes": changes,
    }
    (out / "calls.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"{len(rec.calls)} calls, {len(state['plans'])} plans, {len(changes)} changes -> {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory for plansmith.db and calls.json")
    asyncio.run(main(parser.parse_args().out))
