"""The storage interface the domain needs; `storage/sqlite.py` implements it.

Kept small on purpose so that a PostgreSQL implementation (several replicas) can follow.
A transaction is a plain function of a `ReadTx` (one consistent snapshot) or a `WriteTx`
(serialized with every other write; commits only if the function returns), which the
store runs whole wherever it is cheapest: a transaction never waits on the network or
the planner in the middle, and costs one hand-off to the database, not one per statement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from plansmith_server.domain.models import ChangeRecord, Plan, Task

T = TypeVar("T")


@dataclass(frozen=True)
class IdempotencyRecord:
    """What a mutation with a request_id returned the first time."""

    request_id: str
    method: str
    fingerprint: str
    response: dict[str, Any]
    create_time: int


@dataclass(frozen=True)
class PlanQuery:
    """Filters and position of a ListPlans page."""

    project_id: str = ""
    status: int = 0
    after_seq: int = 0
    limit: int = 50


@dataclass(frozen=True)
class TaskQuery:
    """Filters and position of a ListTasks page: the tasks of the plan `plan_id`, or of
    every plan of the project `project_id` when that is set."""

    plan_id: str
    status: int = 0
    assigned_to: str = ""
    priority: int = 0
    after_seq: int = 0
    limit: int = 50
    project_id: str = ""


class ReadTx(Protocol):
    """Reads from one consistent snapshot."""

    def get_plan(self, plan_id: str) -> Plan | None: ...

    def get_task(self, task_id: str) -> Task | None: ...

    def list_plans(self, q: PlanQuery) -> tuple[list[tuple[int, Plan]], int]:
        """Returns up to `q.limit` (seq, plan) pairs after `q.after_seq`, and the total."""
        ...

    def list_tasks(self, q: TaskQuery, task_count: int) -> tuple[list[tuple[int, Task]], int]:
        """Up to `q.limit` (seq, task) pairs after `q.after_seq`, and how many tasks match
        the filters; `task_count` is the plan's (see `plan_size`), the total when nothing
        filters (unused for a project's tasks)."""
        ...

    def plan_tasks(self, plan_id: str) -> list[Task]:
        """Every task of a plan, oldest first."""
        ...

    def plan_edges(self, plan_id: str) -> dict[str, list[str]]:
        """task id -> ids it depends on, for every task of the plan."""
        ...

    def plan_parents(self, plan_id: str) -> dict[str, str]:
        """task id -> its parent's id, for every subtask of the plan."""
        ...

    def existing_task_ids(self, plan_id: str, ids: Sequence[str]) -> set[str]:
        """Which of `ids` are tasks of the plan."""
        ...

    def dependents(self, task_id: str) -> list[str]:
        """Ids of the tasks that depend on `task_id`."""
        ...

    def plan_size(self, plan_id: str) -> tuple[int, int] | None:
        """The plan's (revision, task count), the count kept by triggers; None when there
        is no such plan."""
        ...

    def children(self, task_id: str) -> list[str]:
        """Ids of the tasks decomposed from `task_id`."""
        ...

    def completed_tasks(
        self, *, plan_id: str = "", project_id: str = "", limit: int = 5000
    ) -> list[Task]:
        """Finished tasks (DONE, actual hours > 0) of a plan or a whole project, newest first."""
        ...

    def get_idempotency(self, request_id: str) -> IdempotencyRecord | None: ...

    def changes(
        self, plan_id: str, after_revision: int, limit: int
    ) -> list[tuple[int, ChangeRecord]]:
        """The plan's change log after a revision, oldest first."""
        ...


class WriteTx(ReadTx, Protocol):
    """A write transaction: everything in it commits together or not at all."""

    def insert_plan(self, plan: Plan) -> None: ...

    def update_plan(self, plan: Plan) -> None: ...

    def delete_plan(self, plan_id: str) -> int:
        """Deletes the plan and its tasks; returns how many tasks went with it."""
        ...

    def bump_revision(self, plan_id: str, update_time: int) -> int:
        """Increments the plan's revision and returns the new value."""
        ...

    def insert_tasks(self, tasks: Sequence[Task]) -> None: ...

    def update_task(self, task: Task, *, dependencies: bool = True) -> None:
        """Stores `task` over its row; its dependency edges only if `dependencies` (they
        changed), since rewriting them costs two statements more."""
        ...

    def delete_task(self, task_id: str) -> None: ...

    def purge_idempotency(self, older_than: int) -> int:
        """Forgets request ids recorded before `older_than` (µs); returns how many."""
        ...

    def append_changes(
        self, plan_id: str, revision: int, changes: Sequence[ChangeRecord], create_time: int
    ) -> None: ...

    def put_idempotency(self, record: IdempotencyRecord) -> None: ...


class Store(Protocol):
    """Opens transactions; owns the connections."""

    async def read(
        self, fn: Callable[[ReadTx], T], *, bulk: bool = False, snapshot: bool = True
    ) -> T:
        """Runs `fn` on one snapshot and returns its result. `bulk=True` says it may read
        many rows (a whole plan), so it must not run on the event loop. `snapshot=False`
        says `fn` needs no snapshot across its statements (a lookup by key: each
        statement still sees committed data only), which spares opening and ending a
        transaction; its lookups may then be answered from what the store remembers,
        as long as nothing has been committed since."""
        ...

    async def write(self, fn: Callable[[WriteTx], T], *, bulk: bool = False) -> T:
        """Runs `fn` in a write transaction and returns its result once committed; if `fn`
        raises, nothing it did is kept and the error reaches the caller. `bulk=True` says
        it may write many rows, so it must not run on the event loop."""
        ...

    def remembered_task(self, task_id: str) -> Task | None:
        """The task, if the store can answer at once: it remembers the lookup and nothing
        has been committed since. None says nothing (ask with `read`)."""
        ...

    @property
    def remembers_lookups(self) -> bool:
        """Whether lookups outside a snapshot (`read(snapshot=False)`) are answered from
        memory while nothing has been committed: then trying one before a bigger read
        costs next to nothing."""
        ...

    async def ping(self) -> None:
        """Raises if the database does not answer a trivial query."""
        ...

    async def purge_idempotency(self, older_than: int) -> int:
        """Forgets request ids recorded before `older_than` (µs); returns how many."""
        ...

    async def close(self) -> None: ...
