"""Plans and tasks through the one write path (`MutationRunner`), on any store: each
mutation moves its plan's revision once, logs its changes under it, answers a retried
request_id with the first result, and leaves nothing behind when refused."""

from __future__ import annotations

import pytest

from plansmith_server.domain.models import Plan, Task, TaskStatus
from plansmith_server.domain.mutations import Mutation, MutationRunner
from plansmith_server.domain.plans import Plans
from plansmith_server.domain.tasks import Tasks
from plansmith_server.errors import (
    DependencyCycleError,
    EtagMismatchError,
    IdempotencyKeyReusedError,
    InvalidArgumentError,
    NotFoundError,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        self.now += 1
        return self.now


class Book:
    """Plans and tasks over one store, as the server wires them."""

    def __init__(self, store) -> None:
        self.store = store
        self.plans = Plans(MutationRunner(store, Clock()))
        self.tasks = Tasks(self.plans)

    def __getattr__(self, name):
        return getattr(self.tasks if "task" in name else self.plans, name)


@pytest.fixture
def book(store) -> Book:
    return Book(store)


def draft(title: str = "t", **kw) -> Task:
    return Task(id=kw.pop("id", ""), plan_id="", title=title, **kw)


async def log_of(book: Book, plan_id: str):
    return await book.store.read(lambda tx: tx.changes(plan_id, 0, 1000))


async def test_every_mutation_takes_one_revision_and_logs_its_changes(book):
    heard: list[tuple[str, int]] = []
    book.store.subscribe_commits(heard.extend)
    plan = await book.create_plan(Plan(id="", project_id="", name="P"))
    assert plan.revision == 1
    a = await book.create_task(plan.id, draft("a"))
    b = await book.batch_create_tasks(
        plan.id, [draft("b", id="x"), draft("c", dependencies=("x", a.task.id))]
    )
    u = await book.update_task(Task(id=a.task.id, plan_id="", title="a2"), ["title"])
    p = await book.update_plan(Plan(id=plan.id, project_id="", name="P2"), ["name"])
    d = await book.delete_task(a.task.id, force=True)
    assert (a.plan_revision, b.plan_revision, u.plan_revision, p.revision, d.plan_revision) == (
        2,
        3,
        4,
        5,
        6,
    )
    assert d.detached_task_ids == (b.tasks[1].id,)
    log = await log_of(book, plan.id)
    assert [(r, c.kind) for r, c in log] == [
        (1, "PLAN_CREATED"),
        (2, "TASK_CREATED"),
        (3, "TASK_CREATED"),
        (3, "TASK_CREATED"),
        (4, "TASK_UPDATED"),
        (5, "PLAN_UPDATED"),
        (6, "TASK_DELETED"),
        (6, "TASK_UPDATED"),
    ]
    assert log[4][1].snapshot["title"] == "a2"
    deletion = await book.delete_plan(plan.id)
    assert deletion.deleted_task_count == 2
    log = await log_of(book, plan.id)
    assert log[-1][0] == 7 and log[-1][1].kind == "PLAN_DELETED"
    assert log[-1][1].snapshot["revision"] == 7
    assert heard == [(plan.id, r) for r in range(1, 8)]


async def test_a_retried_request_id_returns_the_first_result_and_changes_nothing(book):
    m = Mutation("req-1", "fp")
    plan = await book.create_plan(Plan(id="", project_id="", name="P"), m)
    again = await book.create_plan(Plan(id="", project_id="", name="P"), m)
    assert again == plan
    created = await book.create_task(plan.id, draft("a"), Mutation("req-2", "fp"))
    retried = await book.create_task(plan.id, draft("a"), Mutation("req-2", "fp"))
    assert retried == created
    gone = await book.delete_task(created.task.id, m=Mutation("req-3", "fp"))
    assert await book.delete_task(created.task.id, m=Mutation("req-3", "fp")) == gone
    assert [r for r, _ in await log_of(book, plan.id)] == [1, 2, 3]
    with pytest.raises(IdempotencyKeyReusedError):
        await book.create_task(plan.id, draft("a"), Mutation("req-2", "other request"))
    with pytest.raises(IdempotencyKeyReusedError):
        await book.create_task(plan.id, draft("a"), Mutation("req-1", "fp"))  # CreatePlan's


async def test_a_stale_etag_is_refused_and_changes_nothing(book):
    plan = await book.create_plan(Plan(id="", project_id="", name="P"))
    t = (await book.create_task(plan.id, draft("a"))).task
    await book.update_task(Task(id=t.id, plan_id="", title="b"), ["title"], etag=t.etag)
    with pytest.raises(EtagMismatchError):
        await book.update_task(Task(id=t.id, plan_id="", title="c"), ["title"], etag=t.etag)
    with pytest.raises(EtagMismatchError):
        await book.delete_task(t.id, etag=t.etag)
    with pytest.raises(EtagMismatchError):
        await book.update_plan(Plan(id=plan.id, project_id="", name="Q"), ["name"], etag='"stale"')
    with pytest.raises(EtagMismatchError):
        await book.delete_plan(plan.id, etag='"stale"')
    assert (await book.get_task(t.id)).title == "b"
    assert [r for r, _ in await log_of(book, plan.id)] == [1, 2, 3]


async def test_refused_creates_leave_no_task_revision_or_record(book):
    plan = await book.create_plan(Plan(id="", project_id="", name="P"))
    a = (await book.create_task(plan.id, draft("a"))).task
    with pytest.raises(DependencyCycleError) as cycle:
        await book.batch_create_tasks(
            plan.id,
            [draft("x", id="x", dependencies=("y",)), draft("y", id="y", dependencies=("x",))],
            Mutation("req-c", "fp"),
        )
    assert [v.field for v in cycle.value.violations] == ["tasks.dependencies"]
    with pytest.raises(InvalidArgumentError) as unknown:
        await book.batch_create_tasks(
            plan.id,
            [draft("x", dependencies=(a.id, "tsk_none")), draft("y", parent_task_id="tsk_gone")],
        )
    fields = [v.field for v in unknown.value.violations]
    assert fields == ["tasks[0].dependencies[1]", "tasks[1].parent_task_id"]
    with pytest.raises(NotFoundError):
        await book.create_task("pln_none", draft("a"))
    page = await book.list_tasks(plan.id)
    assert [t.id for t in page.items] == [a.id]
    assert [r for r, _ in await log_of(book, plan.id)] == [1, 2]
    assert await book.store.read(lambda tx: tx.get_idempotency("req-c")) is None


async def test_batch_references_become_ids_and_parents_must_come_first(book):
    plan = await book.create_plan(Plan(id="", project_id="", name="P"))
    r = await book.batch_create_tasks(
        plan.id,
        [
            draft("root", id="r"),
            draft("leaf", id="l", parent_task_id="r"),
            draft("after", dependencies=("l",), status=TaskStatus.BLOCKED),
        ],
    )
    root, leaf, after = r.tasks
    assert leaf.parent_task_id == root.id and after.dependencies == (leaf.id,)
    assert root.id.startswith("tsk_") and after.status == TaskStatus.BLOCKED
    with pytest.raises(InvalidArgumentError) as late:
        await book.batch_create_tasks(
            plan.id, [draft("child", parent_task_id="p"), draft("parent", id="p")]
        )
    assert [v.field for v in late.value.violations] == ["tasks[0].parent_task_id"]


async def test_an_update_that_would_loop_is_refused(book):
    plan = await book.create_plan(Plan(id="", project_id="", name="P"))
    a = (await book.create_task(plan.id, draft("a"))).task
    b = (await book.create_task(plan.id, draft("b", dependencies=(a.id,)))).task
    with pytest.raises(DependencyCycleError):
        await book.update_task(
            Task(id=a.id, plan_id="", title="", dependencies=(b.id,)), ["dependencies"]
        )
    assert (await book.get_task(a.id)).dependencies == ()
    assert [r for r, _ in await log_of(book, plan.id)] == [1, 2, 3]
