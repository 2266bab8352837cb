"""PlanService tasks: CRUD, batches, dependencies, cycles, filters, deletes."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from plansmith.v1 import agent_pb2, plan_pb2, task_pb2
from plansmith.v1 import plan_service_pb2 as pb
from tests.conftest import details_of

Task = task_pb2.Task


async def make_plan(plans, **kw) -> plan_pb2.Plan:
    kw.setdefault("name", "P")
    return (await plans.CreatePlan(pb.CreatePlanRequest(plan=plan_pb2.Plan(**kw)))).plan


async def add(plans, plan_id: str, **kw) -> task_pb2.Task:
    kw.setdefault("title", "t")
    return (await plans.CreateTask(pb.CreateTaskRequest(plan_id=plan_id, task=Task(**kw)))).task


async def count_tasks(plans, plan_id: str) -> int:
    return (await plans.ListTasks(pb.ListTasksRequest(plan_id=plan_id))).total_size


async def test_create_task_defaults_and_roundtrip(plans):
    p = await make_plan(plans)
    t = await add(
        plans,
        p.id,
        title="Design",
        estimated_hours=8,
        optimistic_hours=5,
        pessimistic_hours=13,
        required_capabilities=["ui"],
        acceptance_criteria=["approved"],
        metadata={"k": "v"},
    )
    assert t.id.startswith("tsk_") and t.plan_id == p.id
    assert t.priority == task_pb2.TASK_PRIORITY_MEDIUM
    assert t.status == task_pb2.TASK_STATUS_TODO
    got = (await plans.GetTask(pb.GetTaskRequest(task_id=t.id))).task
    assert got == t
    assert not got.HasField("schedule")


async def test_create_task_in_missing_plan_is_not_found(plans):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.CreateTask(pb.CreateTaskRequest(plan_id="pln_missing", task=Task(title="t")))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert details_of(e.value)["ErrorInfo"].reason == "PLAN_NOT_FOUND"


async def test_task_validation_lists_every_violation(plans):
    p = await make_plan(plans, agents=[agent_pb2.Agent(id="ann")])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.CreateTask(
            pb.CreateTaskRequest(
                plan_id=p.id,
                task=Task(
                    title="",
                    progress=101,
                    priority=42,
                    status=-3,
                    actual_hours=-1,
                    dependencies=["tsk_x", "tsk_x"],
                    optimistic_hours=9,
                    estimated_hours=4,
                ),
            )
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in details_of(e.value)["BadRequest"].field_violations}
    assert {
        "task.title",
        "task.progress",
        "task.priority",
        "task.status",
        "task.actual_hours",
        "task.dependencies[1]",
        "task.optimistic_hours",
    } <= fields
    assert await count_tasks(plans, p.id) == 0


async def test_assignee_must_be_a_plan_agent_when_the_plan_has_agents(plans):
    p = await make_plan(plans, agents=[agent_pb2.Agent(id="ann")])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await add(plans, p.id, assigned_to="zed")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    v = details_of(e.value)["BadRequest"].field_violations[0]
    assert v.field == "task.assigned_to" and "zed" in v.description
    ok = await add(plans, p.id, assigned_to="ann")
    assert ok.assigned_to == "ann"
    free = await make_plan(plans)
    assert (await add(plans, free.id, assigned_to="anyone")).assigned_to == "anyone"


async def test_an_update_assigning_a_task_checks_the_plan_agents(plans):
    p = await make_plan(plans, agents=[agent_pb2.Agent(id="ann"), agent_pb2.Agent(id="bob")])
    t = await add(plans, p.id, assigned_to="ann")

    async def assign(who: str) -> task_pb2.Task:
        return (
            await plans.UpdateTask(
                pb.UpdateTaskRequest(
                    task=task_pb2.Task(id=t.id, assigned_to=who),
                    update_mask=field_mask_pb2.FieldMask(paths=["assigned_to"]),
                )
            )
        ).task

    with pytest.raises(grpc.aio.AioRpcError) as e:
        await assign("zed")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(e.value)["BadRequest"].field_violations[0].field == "task.assigned_to"
    assert (await assign("bob")).assigned_to == "bob"
    assert (await assign("")).assigned_to == ""  # unassigning needs no agent


async def test_unknown_dependency_is_invalid(plans):
    p = await make_plan(plans)
    other = await make_plan(plans)
    foreign = await add(plans, other.id)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await add(plans, p.id, dependencies=["tsk_nope", foreign.id])
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = [v.field for v in details_of(e.value)["BadRequest"].field_violations]
    assert fields == ["task.dependencies[0]", "task.dependencies[1]"]


async def test_batch_create_links_batch_references(plans):
    p = await make_plan(plans)
    existing = await add(plans, p.id, title="existing")
    r = await plans.BatchCreateTasks(
        pb.BatchCreateTasksRequest(
            plan_id=p.id,
            tasks=[
                Task(id="build", title="Build", dependencies=["design", existing.id]),
                Task(id="design", title="Design"),
                Task(title="Ship", dependencies=["build"]),
            ],
        )
    )
    build, design, ship = r.tasks
    assert [t.title for t in r.tasks] == ["Build", "Design", "Ship"]
    assert list(build.dependencies) == [design.id, existing.id]
    assert list(ship.dependencies) == [build.id]
    assert all(t.id.startswith("tsk_") for t in r.tasks)
    assert r.plan_revision == 3  # create plan, create task, one batch


async def test_batch_is_all_or_nothing(plans):
    p = await make_plan(plans)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.BatchCreateTasks(
            pb.BatchCreateTasksRequest(
                plan_id=p.id,
                tasks=[Task(title="fine"), Task(title="bad", dependencies=["ghost"])],
            )
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(e.value)["BadRequest"].field_violations[0].field == "tasks[1].dependencies[0]"
    assert await count_tasks(plans, p.id) == 0
    got = (await plans.GetPlan(pb.GetPlanRequest(plan_id=p.id))).plan
    assert got.revision == 1


async def test_batch_cycle_is_named(plans):
    p = await make_plan(plans)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.BatchCreateTasks(
            pb.BatchCreateTasksRequest(
                plan_id=p.id,
                tasks=[
                    Task(id="a", title="A", dependencies=["c"]),
                    Task(id="b", title="B", dependencies=["a"]),
                    Task(id="c", title="C", dependencies=["b"]),
                ],
            )
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = details_of(e.value)["ErrorInfo"]
    assert info.reason == "DEPENDENCY_CYCLE"
    assert info.metadata["cycle"] in ("a -> c -> b -> a", "c -> b -> a -> c", "b -> a -> c -> b")
    assert await count_tasks(plans, p.id) == 0


async def test_batch_rejects_duplicate_references_and_empty_batches(plans):
    p = await make_plan(plans)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.BatchCreateTasks(
            pb.BatchCreateTasksRequest(
                plan_id=p.id, tasks=[Task(id="x", title="1"), Task(id="x", title="2")]
            )
        )
    assert details_of(e.value)["BadRequest"].field_violations[0].field == "tasks[1].id"
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.BatchCreateTasks(pb.BatchCreateTasksRequest(plan_id=p.id))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_long_cycles_and_many_dependents_are_named_in_part_and_counted(plans):
    p = await make_plan(plans)
    chain = (
        await plans.BatchCreateTasks(
            pb.BatchCreateTasksRequest(
                plan_id=p.id,
                tasks=[
                    Task(id=f"t{i}", title=f"t{i}", dependencies=[f"t{i - 1}"] if i else [])
                    for i in range(40)
                ],
            )
        )
    ).tasks
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.UpdateTask(
            pb.UpdateTaskRequest(
                task=Task(id=chain[0].id, dependencies=[chain[-1].id]),
                update_mask=field_mask_pb2.FieldMask(paths=["dependencies"]),
            )
        )
    meta = details_of(e.value)["ErrorInfo"].metadata
    assert meta["cycle_length"] == "40"
    shown = meta["cycle"].split(" -> ")
    assert shown[-1] == "\u2026" and 2 <= len(shown) - 1 < 40
    ids = {t.id for t in chain}
    assert all(x in ids for x in shown[:-1])  # whole ids only
    waiting = (
        await plans.BatchCreateTasks(
            pb.BatchCreateTasksRequest(
                plan_id=p.id,
                tasks=[Task(title=f"w{i}", dependencies=[chain[0].id]) for i in range(60)],
            )
        )
    ).tasks
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.DeleteTask(pb.DeleteTaskRequest(task_id=chain[0].id))
    details = details_of(e.value)
    meta = details["ErrorInfo"].metadata
    assert meta["dependents_count"] == "61"  # t1 and the 60 waiting
    named = meta["dependents"].split(",")
    assert named[-1] == "\u2026" and set(named[:-1]) <= {t.id for t in [*chain, *waiting]}
    assert 1 <= len(details["PreconditionFailure"].violations) <= 50
    assert meta["violations"] == "61"


async def test_update_creating_a_cycle_is_refused_and_names_it(plans):
    p = await make_plan(plans)
    a = await add(plans, p.id, title="a")
    b = await add(plans, p.id, title="b", dependencies=[a.id])
    c = await add(plans, p.id, title="c", dependencies=[b.id])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.UpdateTask(
            pb.UpdateTaskRequest(
                task=Task(id=a.id, dependencies=[c.id]),
                update_mask=field_mask_pb2.FieldMask(paths=["dependencies"]),
            )
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        details_of(e.value)["ErrorInfo"].metadata["cycle"]
        == f"{a.id} -> {c.id} -> {b.id} -> {a.id}"
    )
    again = (await plans.GetTask(pb.GetTaskRequest(task_id=a.id))).task
    assert list(again.dependencies) == []
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.UpdateTask(
            pb.UpdateTaskRequest(
                task=Task(id=a.id, dependencies=[a.id]),
                update_mask=field_mask_pb2.FieldMask(paths=["dependencies"]),
            )
        )
    assert "itself" in details_of(e.value)["BadRequest"].field_violations[0].description


async def test_update_task_fields_and_etag(plans):
    p = await make_plan(plans)
    t = await add(plans, p.id, estimated_hours=4)
    r = await plans.UpdateTask(
        pb.UpdateTaskRequest(
            task=Task(id=t.id, status=task_pb2.TASK_STATUS_IN_PROGRESS, progress=30, etag=t.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["status", "progress"]),
        )
    )
    assert r.task.status == task_pb2.TASK_STATUS_IN_PROGRESS and r.task.progress == 30
    assert r.task.estimated_hours == 4
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.UpdateTask(
            pb.UpdateTaskRequest(
                task=Task(id=t.id, progress=90, etag=t.etag),
                update_mask=field_mask_pb2.FieldMask(paths=["progress"]),
            )
        )
    assert e.value.code() == grpc.StatusCode.ABORTED
    assert (await plans.GetTask(pb.GetTaskRequest(task_id=t.id))).task.progress == 30


async def test_update_can_clear_the_schedule_and_set_it(plans):
    p = await make_plan(plans)
    t = await add(plans, p.id)
    mask = field_mask_pb2.FieldMask(paths=["schedule"])
    r = await plans.UpdateTask(
        pb.UpdateTaskRequest(
            task=Task(
                id=t.id, schedule=task_pb2.TaskSchedule(start_offset_hours=2, end_offset_hours=5)
            ),
            update_mask=mask,
        )
    )
    assert r.task.schedule.end_offset_hours == 5
    r = await plans.UpdateTask(pb.UpdateTaskRequest(task=Task(id=t.id), update_mask=mask))
    assert not r.task.HasField("schedule")


async def test_delete_task_with_subtasks_needs_force_which_moves_them_up(plans):
    p = await make_plan(plans)
    top = await add(plans, p.id, title="top")
    mid = await add(plans, p.id, title="mid", parent_task_id=top.id)
    low = await add(plans, p.id, title="low", parent_task_id=mid.id)
    # (A subtask cannot also depend on its parent: that loops, see test_hierarchy_cycles.)
    also = await add(plans, p.id, title="also", dependencies=[mid.id])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.DeleteTask(pb.DeleteTaskRequest(task_id=top.id))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    d = details_of(e.value)
    assert d["ErrorInfo"].reason == "TASK_HAS_SUBTASKS"
    assert d["ErrorInfo"].metadata["subtasks_count"] == "1"
    assert [v.subject for v in d["PreconditionFailure"].violations] == [f"tasks/{mid.id}"]
    assert await count_tasks(plans, p.id) == 4
    r = await plans.DeleteTask(pb.DeleteTaskRequest(task_id=mid.id, force=True))
    assert list(r.detached_task_ids) == [also.id, low.id]  # dependents first, then subtasks
    after = {t.title: t for t in (await plans.ListTasks(pb.ListTasksRequest(plan_id=p.id))).tasks}
    assert set(after) == {"top", "low", "also"}
    assert after["low"].parent_task_id == top.id and after["low"].etag != low.etag
    assert after["also"].parent_task_id == "" and list(after["also"].dependencies) == []


async def test_delete_task_with_dependents_needs_force(plans):
    p = await make_plan(plans)
    a = await add(plans, p.id, title="a")
    b = await add(plans, p.id, title="b", dependencies=[a.id])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.DeleteTask(pb.DeleteTaskRequest(task_id=a.id))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    d = details_of(e.value)
    assert d["ErrorInfo"].reason == "TASK_HAS_DEPENDENTS"
    assert d["PreconditionFailure"].violations[0].subject == f"tasks/{b.id}"
    assert await count_tasks(plans, p.id) == 2
    r = await plans.DeleteTask(pb.DeleteTaskRequest(task_id=a.id, force=True))
    assert list(r.detached_task_ids) == [b.id]
    after = (await plans.GetTask(pb.GetTaskRequest(task_id=b.id))).task
    assert list(after.dependencies) == [] and after.etag != b.etag


async def test_delete_is_idempotent_with_request_id(plans):
    p = await make_plan(plans)
    t = await add(plans, p.id)
    req = pb.DeleteTaskRequest(task_id=t.id, request_id="del-1")
    first = await plans.DeleteTask(req)
    second = await plans.DeleteTask(req)  # a retry after a lost response: same answer
    assert first == second
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.DeleteTask(pb.DeleteTaskRequest(task_id=t.id))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


async def test_batch_retry_with_request_id_creates_once(plans):
    p = await make_plan(plans)
    req = pb.BatchCreateTasksRequest(
        plan_id=p.id,
        tasks=[Task(id="a", title="A"), Task(title="B", dependencies=["a"])],
        request_id="batch-1",
    )
    first = await plans.BatchCreateTasks(req)
    second = await plans.BatchCreateTasks(req)
    assert first == second
    assert await count_tasks(plans, p.id) == 2


async def test_list_tasks_filters(plans):
    p = await make_plan(plans, agents=[agent_pb2.Agent(id="ann"), agent_pb2.Agent(id="bob")])
    specs = [
        ("a", "ann", task_pb2.TASK_PRIORITY_HIGH, task_pb2.TASK_STATUS_TODO),
        ("b", "bob", task_pb2.TASK_PRIORITY_HIGH, task_pb2.TASK_STATUS_DONE),
        ("c", "ann", task_pb2.TASK_PRIORITY_LOW, task_pb2.TASK_STATUS_DONE),
        ("d", "", task_pb2.TASK_PRIORITY_CRITICAL, task_pb2.TASK_STATUS_TODO),
    ]
    for title, who, prio, status in specs:
        await add(plans, p.id, title=title, assigned_to=who, priority=prio, status=status)

    async def titles(**kw) -> list[str]:
        r = await plans.ListTasks(pb.ListTasksRequest(plan_id=p.id, **kw))
        assert r.total_size == len(r.tasks)
        return [t.title for t in r.tasks]

    assert await titles() == ["a", "b", "c", "d"]
    assert await titles(assigned_to="ann") == ["a", "c"]
    assert await titles(priority=task_pb2.TASK_PRIORITY_HIGH) == ["a", "b"]
    assert await titles(status=task_pb2.TASK_STATUS_DONE, assigned_to="ann") == ["c"]
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.ListTasks(pb.ListTasksRequest(plan_id=p.id, priority=17))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.ListTasks(pb.ListTasksRequest(plan_id="pln_none"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_tasks_pages_and_rejects_changed_filters(plans):
    p = await make_plan(plans)
    await plans.BatchCreateTasks(
        pb.BatchCreateTasksRequest(plan_id=p.id, tasks=[Task(title=f"t{i}") for i in range(5)])
    )
    seen, token = [], ""
    while True:
        r = await plans.ListTasks(pb.ListTasksRequest(plan_id=p.id, page_size=2, page_token=token))
        seen += [t.title for t in r.tasks]
        token = r.next_page_token
        if not token:
            break
    assert seen == [f"t{i}" for i in range(5)]
    r = await plans.ListTasks(pb.ListTasksRequest(plan_id=p.id, page_size=2))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await plans.ListTasks(
            pb.ListTasksRequest(
                plan_id=p.id, page_size=2, page_token=r.next_page_token, assigned_to="x"
            )
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_reads_after_an_update_never_serve_the_old_version(plans):
    """Reads cache decoded tasks and messages by (id, version): every change must show."""
    p = await make_plan(plans)
    t = await add(plans, p.id, title="before", metadata={"k": "v"})
    for _ in range(2):  # warm every cache on the read paths
        await plans.GetTask(pb.GetTaskRequest(task_id=t.id))
        await plans.ListTasks(pb.ListTasksRequest(plan_id=p.id))
    updated = (
        await plans.UpdateTask(
            pb.UpdateTaskRequest(
                task=Task(id=t.id, title="after", metadata={"k": "w"}),
                update_mask=field_mask_pb2.FieldMask(paths=["title", "metadata"]),
            )
        )
    ).task
    got = (await plans.GetTask(pb.GetTaskRequest(task_id=t.id))).task
    listed = (await plans.ListTasks(pb.ListTasksRequest(plan_id=p.id))).tasks
    for seen in (got, listed[0]):
        assert seen.title == "after" and dict(seen.metadata) == {"k": "w"}
        assert seen.etag == updated.etag != t.etag
    await plans.DeleteTask(pb.DeleteTaskRequest(task_id=t.id))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await plans.GetTask(pb.GetTaskRequest(task_id=t.id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await plans.ListTasks(pb.ListTasksRequest(plan_id=p.id))).tasks == []


def test_a_pre_encoded_page_is_the_bytes_protobuf_itself_would_send():
    """ListTasks joins cached one-task encodings (protobuf merges concatenations); that
    must equal, byte for byte, the response protobuf builds, for every task shape."""
    from plansmith_server.api.convert import TaskEncodings, task_to_proto
    from plansmith_server.domain.models import Task as DomainTask

    tasks = [
        DomainTask(id=f"tsk_{i}", plan_id="pln_1", title=f"t{i}", version=i + 1) for i in range(3)
    ] + [
        DomainTask(
            id="tsk_x",
            plan_id="pln_1",
            title="full",
            description="d" * 300,
            dependencies=("tsk_0", "tsk_1"),
            required_capabilities=("go", "sql"),
            metadata={"k": "v"},
            estimated_hours=2.5,
            version=7,
        )
    ]
    protos = TaskEncodings()
    for _ in range(2):  # cold, then from the cache
        encoded = (
            protos.listed(tasks)
            + pb.ListTasksResponse(next_page_token="tok", total_size=9).SerializeToString()
        )
        built = pb.ListTasksResponse(
            tasks=[task_to_proto(t) for t in tasks], next_page_token="tok", total_size=9
        ).SerializeToString()
        assert encoded == built
    assert protos.listed([]) == b""
    one = tasks[-1]
    assert protos.listed([one]) == pb.GetTaskResponse(task=task_to_proto(one)).SerializeToString()


def test_the_request_fingerprint_ignores_the_request_id_and_leaves_the_request_alone():
    """A retry is matched by a hash of the request without its request_id. Computed in
    place (no copy), it must equal the hash of a copy without it, which is what earlier
    versions stored, and leave the request as it was."""
    import hashlib

    from plansmith_server.api.convert import fingerprint, mutation

    req = pb.CreateTaskRequest(
        plan_id="pln_1",
        task=task_pb2.Task(title="t", metadata={"b": "2", "a": "1"}, dependencies=["x", "y"]),
        request_id="retry-me",
    )
    copy = pb.CreateTaskRequest()
    copy.CopyFrom(req)
    copy.ClearField("request_id")
    expected = hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()
    before = req.SerializeToString(deterministic=True)
    assert fingerprint(req) == expected
    assert req.SerializeToString(deterministic=True) == before
    assert mutation(req).fingerprint == expected and mutation(req).request_id == "retry-me"
    other = pb.CreateTaskRequest()
    other.CopyFrom(req)
    other.request_id = "another-id"
    assert fingerprint(other) == expected
    other.task.title = "changed"
    assert fingerprint(other) != expected
    # Without a request_id nothing is matched later, so nothing is hashed.
    req.ClearField("request_id")
    assert mutation(req).fingerprint == "" and mutation(req).request_id == ""


async def test_the_unfiltered_total_follows_creates_batches_and_deletes(plans):
    """Without filters, total_size is the plan's task count kept by the database (not a
    count over the plan's rows): it must agree with the tasks actually listed."""
    p = await make_plan(plans)
    other = await make_plan(plans)
    made = [await add(plans, p.id, title=f"t{i}") for i in range(5)]
    await add(plans, other.id)
    await plans.BatchCreateTasks(
        pb.BatchCreateTasksRequest(plan_id=p.id, tasks=[Task(title=f"b{i}") for i in range(3)])
    )
    for t in made[:2]:
        await plans.DeleteTask(pb.DeleteTaskRequest(task_id=t.id))
    listed, token = [], ""
    while True:
        r = await plans.ListTasks(pb.ListTasksRequest(plan_id=p.id, page_size=4, page_token=token))
        assert r.total_size == 6
        listed += r.tasks
        token = r.next_page_token
        if not token:
            break
    assert len(listed) == 6 and len({t.id for t in listed}) == 6
    assert await count_tasks(plans, other.id) == 1


async def test_an_update_leaves_the_edges_alone_unless_it_changes_dependencies(plans):
    """Only an update whose mask names dependencies rewrites the task's edges; any other
    keeps them, in order, and the dependency still protects its prerequisites."""
    p = await make_plan(plans)
    a, b = await add(plans, p.id, title="a"), await add(plans, p.id, title="b")
    c = await add(plans, p.id, title="c", dependencies=[b.id, a.id])

    async def update(**fields) -> task_pb2.Task:
        req = pb.UpdateTaskRequest(
            task=Task(id=c.id, **fields),
            update_mask=field_mask_pb2.FieldMask(paths=list(fields) or ["dependencies"]),
        )
        return (await plans.UpdateTask(req)).task

    assert list((await update(progress=40)).dependencies) == [b.id, a.id]
    got = (await plans.GetTask(pb.GetTaskRequest(task_id=c.id))).task
    assert list(got.dependencies) == [b.id, a.id] and got.progress == 40
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await plans.DeleteTask(pb.DeleteTaskRequest(task_id=a.id))
    assert details_of(err.value)["ErrorInfo"].reason == "TASK_HAS_DEPENDENTS"
    assert list((await update(dependencies=[a.id])).dependencies) == [a.id]
    await plans.DeleteTask(pb.DeleteTaskRequest(task_id=b.id))  # no longer depended on
    assert list((await update()).dependencies) == []  # mask names it, value empty
    await plans.DeleteTask(pb.DeleteTaskRequest(task_id=a.id))
