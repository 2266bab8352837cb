"""ListTasks across the plans of a project (`project_id` instead of `plan_id`)."""

from __future__ import annotations

import sqlite3

import grpc
import pytest

from plansmith.v1 import agent_pb2, plan_pb2, task_pb2
from plansmith.v1 import plan_service_pb2 as pb
from plansmith_server.app import start
from plansmith_server.config import Config
from plansmith_server.storage.migrations import MIGRATIONS, statements
from tests.conftest import details_of

HIGH, LOW = task_pb2.TASK_PRIORITY_HIGH, task_pb2.TASK_PRIORITY_LOW
AGENTS = [agent_pb2.Agent(id="ann"), agent_pb2.Agent(id="bob")]


async def plan(plans, project_id: str, name: str) -> str:
    req = pb.CreatePlanRequest(plan=plan_pb2.Plan(name=name, project_id=project_id, agents=AGENTS))
    return (await plans.CreatePlan(req)).plan.id


async def task(plans, plan_id: str, title: str, **kw) -> task_pb2.Task:
    req = pb.CreateTaskRequest(plan_id=plan_id, task=task_pb2.Task(title=title, **kw))
    return (await plans.CreateTask(req)).task


async def all_pages(plans, page_token: str = "", **kw) -> tuple[list[str], list[int]]:
    """Titles over every page (from `page_token` on), and each page's total_size."""
    titles, totals, token = [], [], page_token
    for _ in range(100):
        page = await plans.ListTasks(pb.ListTasksRequest(page_token=token, **kw))
        titles += [t.title for t in page.tasks]
        totals.append(page.total_size)
        token = page.next_page_token
        if not token:
            return titles, totals
    raise AssertionError("pages never ended")


@pytest.fixture
async def web(plans):
    """Project `web` with two plans whose tasks interleave in creation order; project
    `ops` with one plan holding tasks that would match every filter."""
    site, shop, infra = (
        await plan(plans, "web", "Site"),
        await plan(plans, "web", "Shop"),
        await plan(plans, "ops", "Infra"),
    )
    await task(plans, site, "s1", assigned_to="ann", priority=HIGH)
    await task(plans, shop, "h1", assigned_to="ann", priority=LOW)
    await task(plans, infra, "o1", assigned_to="ann", priority=HIGH)
    await task(plans, site, "s2", assigned_to="bob", priority=HIGH)
    await task(plans, shop, "h2", assigned_to="ann", priority=HIGH)
    await task(plans, site, "s3")
    await task(plans, infra, "o2", assigned_to="ann", priority=LOW)
    return {"site": site, "shop": shop, "infra": infra}


async def test_a_projects_tasks_across_its_plans_in_creation_order(plans, web):
    titles, totals = await all_pages(plans, project_id="web")
    assert titles == ["s1", "h1", "s2", "h2", "s3"]
    assert totals == [5]
    titles, totals = await all_pages(plans, project_id="web", page_size=2)
    assert titles == ["s1", "h1", "s2", "h2", "s3"] and totals == [5, 5, 5]
    titles, _ = await all_pages(plans, project_id="ops")
    assert titles == ["o1", "o2"]
    empty = await plans.ListTasks(pb.ListTasksRequest(project_id="nobody"))
    assert list(empty.tasks) == [] and empty.total_size == 0 and not empty.next_page_token


async def test_filters_and_pages_across_plans(plans, web):
    titles, totals = await all_pages(plans, project_id="web", assigned_to="ann", page_size=1)
    assert titles == ["s1", "h1", "h2"] and totals == [3, 3, 3]
    titles, totals = await all_pages(plans, project_id="web", priority=HIGH, page_size=2)
    assert titles == ["s1", "s2", "h2"] and totals == [3, 3]
    titles, _ = await all_pages(plans, project_id="web", assigned_to="ann", priority=HIGH)
    assert titles == ["s1", "h2"]
    titles, _ = await all_pages(plans, project_id="web", status=task_pb2.TASK_STATUS_TODO)
    assert len(titles) == 5
    # The plan path is unchanged: one plan's tasks only.
    titles, _ = await all_pages(plans, plan_id=web["site"], assigned_to="ann")
    assert titles == ["s1"]


async def test_a_task_created_between_pages_is_neither_repeated_nor_skipped(plans, web):
    first = await plans.ListTasks(pb.ListTasksRequest(project_id="web", page_size=3))
    assert [t.title for t in first.tasks] == ["s1", "h1", "s2"]
    await task(plans, web["shop"], "h3")
    rest, _ = await all_pages(
        plans, project_id="web", page_size=3, page_token=first.next_page_token
    )
    assert rest == ["h2", "s3", "h3"]


async def test_page_tokens_are_bound_to_the_query(plans, web):
    first = await plans.ListTasks(pb.ListTasksRequest(project_id="web", page_size=1))
    token = first.next_page_token
    for other in (
        pb.ListTasksRequest(project_id="ops", page_size=1, page_token=token),
        pb.ListTasksRequest(project_id="web", assigned_to="ann", page_size=1, page_token=token),
        pb.ListTasksRequest(plan_id=web["site"], page_size=1, page_token=token),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await plans.ListTasks(other)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details_of(e.value)["ErrorInfo"].reason == "PAGE_TOKEN_INVALID"
    plan_token = (
        await plans.ListTasks(pb.ListTasksRequest(plan_id=web["site"], page_size=1))
    ).next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.ListTasks(pb.ListTasksRequest(project_id="web", page_token=plan_token))
    assert details_of(e.value)["ErrorInfo"].reason == "PAGE_TOKEN_INVALID"


@pytest.mark.parametrize(
    ("request_fields", "field", "says"),
    [
        ({}, "project_id", "is required when plan_id is not set"),
        ({"plan_id": "pln_x", "project_id": "web"}, "project_id", "not both"),
        ({"project_id": "w" * 200}, "project_id", "characters long"),
    ],
)
async def test_exactly_one_of_plan_id_and_project_id(plans, request_fields, field, says):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.ListTasks(pb.ListTasksRequest(**request_fields))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = details_of(e.value)["BadRequest"].field_violations
    assert any(v.field == field and says in v.description for v in violations), violations


async def test_a_release_1_database_migrates_and_has_the_index(tmp_path):
    """A database at the schema release 1 created (migrations 1-3, never edited since)
    opens, migrates, and answers ListTasks by project through the new index."""
    path = str(tmp_path / "release1.db")
    with sqlite3.connect(path, isolation_level=None) as conn:
        for version, script in enumerate(MIGRATIONS[:3], start=1):
            for stmt in statements(script):
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute(
            "INSERT INTO plans (id, project_id, name, description, objectives, constraints, "
            "metadata, status, agents, create_time, update_time, version, revision, "
            "task_count) VALUES "
            "('pln_old', 'web', 'old', '', '[]', '[]', '{}', 1, '[]', 0, 0, 1, 1, 1)"
        )
        conn.execute(
            "INSERT INTO tasks (id, plan_id, title, description, priority, status, "
            "estimated_hours, actual_hours, progress, assigned_to, required_capabilities, "
            "parent_task_id, metadata, optimistic_hours, pessimistic_hours, "
            "acceptance_criteria, create_time, update_time, version) VALUES "
            "('tsk_old', 'pln_old', 'kept', '', 3, 1, 0, 0, 0, 'ann', '[]', '', '{}', 0, 0, "
            "'[]', 0, 0, 1)"
        )
        assert not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'tasks_by_plan_priority'"
        ).fetchall()
    running = await start(Config(listen="127.0.0.1:0", db_path=path))
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            from plansmith.v1 import plan_service_pb2_grpc

            stub = plan_service_pb2_grpc.PlanServiceStub(ch)
            page = await stub.ListTasks(
                pb.ListTasksRequest(project_id="web", priority=HIGH, assigned_to="ann")
            )
            assert [t.id for t in page.tasks] == ["tsk_old"] and page.total_size == 1
    finally:
        await running.stop(grace=0.5)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'tasks_by_plan_priority'"
        ).fetchone() == ("CREATE INDEX tasks_by_plan_priority ON tasks(plan_id, priority, seq)",)
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM tasks t WHERE t.plan_id IN "
            "(SELECT id FROM plans WHERE project_id = ?) AND t.priority = ?",
            ("web", HIGH),
        ).fetchall()
        assert any("tasks_by_plan_priority" in row[3] for row in plan), plan
