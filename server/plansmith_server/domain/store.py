"""The storage port: what the domain needs of a database. `storage/sqlite.py` implements
it on SQLite, `storage/memory.py` in memory; tests/storage/contract holds every
implementation to the contract written here.

A transaction is a plain synchronous function of a `ReadTx` (one consistent snapshot) or
a `WriteTx` (serialized with every other write; it commits only if the function returns),
which the store runs whole wherever it is cheapest: a transaction never waits on the
network or the planner in the middle, and costs one hand-off to the database, not one per
statement. The domain owns this module; storage imports the domain, never the reverse.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from plansmith_server.domain.models import Availability, ChangeRecord, Plan, ReplanRecord, Task

T = TypeVar("T")

CommitListener = Callable[[list[tuple[str, int]]], None]
"""Told, after a write transaction commits, the (plan id, revision) pairs whose change
records it appended, in the order they were appended."""

_log = logging.getLogger(__name__)


class CommitListeners:
    """The listeners of a store's `subscribe_commits`, shared by every implementation:
    one listener that raises is logged and keeps no other from being told."""

    def __init__(self) -> None:
        self._listeners: list[CommitListener] = []

    def subscribe(self, callback: CommitListener) -> Callable[[], None]:
        self._listeners.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return unsubscribe

    def tell(self, pairs: list[tuple[str, int]]) -> None:
        for callback in list(self._listeners):
            try:
                callback(list(pairs))
            except Exception:
                _log.exception("commit listener failed")


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
    """Reads from one consistent snapshot.

    Positions (`seq`) are integers > 0 that grow in creation order and are never reused:
    a page continues after the last position it returned. Lists come in that order."""

    def get_plan(self, plan_id: str) -> Plan | None:
        """The plan as last written, or None."""
        ...

    def get_task(self, task_id: str) -> Task | None:
        """The task as last written (dependencies in the order written), or None."""
        ...

    def list_plans(self, q: PlanQuery) -> tuple[list[tuple[int, Plan]], int]:
        """Up to `q.limit` (seq, plan) pairs after `q.after_seq` that match the filters
        (a 0 or empty filter matches all), oldest first; and how many plans match the
        filters in all (wherever the page starts)."""
        ...

    def list_tasks(self, q: TaskQuery, task_count: int) -> tuple[list[tuple[int, Task]], int]:
        """Up to `q.limit` (seq, task) pairs after `q.after_seq` that match the filters,
        oldest first, and how many tasks match the filters in all. The tasks are those of
        the plan `q.plan_id`, or of every plan of the project `q.project_id` when that is
        set. `task_count` is the plan's task count (see `plan_size`), which an
        implementation may return as the total when nothing filters (a plan's page)."""
        ...

    def plan_tasks(self, plan_id: str) -> list[Task]:
        """Every task of a plan, oldest first (empty for no such plan)."""
        ...

    def plan_edges(self, plan_id: str) -> dict[str, list[str]]:
        """task id -> ids it depends on (in the order written), for every task of the
        plan that has dependencies."""
        ...

    def plan_parents(self, plan_id: str) -> dict[str, str]:
        """task id -> its parent's id, for every subtask of the plan."""
        ...

    def existing_task_ids(self, plan_id: str, ids: Sequence[str]) -> set[str]:
        """Which of `ids` are tasks of the plan (tasks of other plans are not)."""
        ...

    def dependents(self, task_id: str) -> list[str]:
        """Ids of the tasks that depend on `task_id`, oldest first."""
        ...

    def plan_size(self, plan_id: str) -> tuple[int, int] | None:
        """The plan's (revision, task count); None when there is no such plan."""
        ...

    def children(self, task_id: str) -> list[str]:
        """Ids of the tasks whose parent is `task_id`, oldest first."""
        ...

    def completed_tasks(
        self, *, plan_id: str = "", project_id: str = "", limit: int = 5000
    ) -> list[Task]:
        """Up to `limit` finished tasks (DONE, actual hours > 0) of a plan, or of every
        plan of a project when `project_id` is set; newest first."""
        ...

    def get_idempotency(self, request_id: str) -> IdempotencyRecord | None:
        """The record put under `request_id` (not yet purged), or None."""
        ...

    def changes(
        self, plan_id: str, after_revision: int, limit: int
    ) -> list[tuple[int, ChangeRecord]]:
        """Up to `limit` (revision, change) pairs of the plan's change log after
        `after_revision`: by revision, then in the order appended. The log outlives a
        deleted plan."""
        ...

    def agent_availability(self, plan_id: str) -> dict[str, Availability]:
        """The stored availability of the plan's agents that have one, by agent id."""
        ...

    def stale_heartbeats(self, before: int) -> list[tuple[str, str, int]]:
        """(plan id, agent id, last heartbeat) of available agents whose last heartbeat
        is older than `before` (µs), oldest first, at most 1,000."""
        ...

    def get_replan_record(self, record_id: str) -> ReplanRecord | None: ...

    def replan_records(
        self, plan_id: str, task_id: str, after_seq: int, limit: int
    ) -> tuple[list[tuple[int, ReplanRecord]], int]:
        """Up to `limit` (seq, record) pairs of the plan (of one task when `task_id`)
        after `after_seq`, oldest first, and how many match."""
        ...

    def task_replan_records(self, task_id: str) -> list[ReplanRecord]:
        """Every decision about a task, oldest first."""

    def change_rows(
        self, plan_id: str, after_revision: int, limit: int
    ) -> list[tuple[int, int, ChangeRecord]]:
        """Like `changes`, with each entry's commit time (µs): (revision, time, change)."""
        ...

    def change_log_bounds(self, plan_id: str) -> tuple[int, int] | None:
        """The oldest and newest revision the plan's change log retains; None if none."""
        ...


class WriteTx(ReadTx, Protocol):
    """A write transaction: everything in it commits together or not at all, and it
    reads its own writes."""

    def insert_plan(self, plan: Plan) -> None:
        """Stores a new plan (with no tasks), as written: its revision too."""
        ...

    def update_plan(self, plan: Plan) -> None:
        """Stores `plan` over the plan with its id."""
        ...

    def delete_plan(self, plan_id: str) -> int:
        """Deletes the plan and its tasks; returns how many tasks went with it. Its change
        log stays."""
        ...

    def bump_revision(self, plan_id: str, update_time: int) -> int:
        """Increments the plan's revision and returns the new value. Only the mutation
        runner (`domain/mutations.py`) calls this."""
        ...

    def insert_tasks(self, tasks: Sequence[Task]) -> None:
        """Stores new tasks (and their dependency edges), counted in their plan's size;
        each later than every task stored before (its position)."""
        ...

    def update_task(self, task: Task, *, dependencies: bool = True) -> None:
        """Stores `task` over the task with its id; its dependency edges only if
        `dependencies` (the caller says they changed; otherwise they are left as they
        are, whatever `task.dependencies` holds)."""
        ...

    def delete_task(self, task_id: str) -> None:
        """Deletes the task, its own dependency edges and the edges onto it."""
        ...

    def purge_idempotency(self, older_than: int) -> int:
        """Forgets request ids recorded before `older_than` (µs); returns how many."""
        ...

    def append_changes(
        self, plan_id: str, revision: int, changes: Sequence[ChangeRecord], create_time: int
    ) -> None:
        """Appends the change records of one revision of the plan to its log. Only the
        mutation runner calls this; once committed, `Store.subscribe_commits` listeners
        hear of (plan_id, revision)."""
        ...

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        """Records what a request_id's first call returned (the id must be new)."""
        ...

    def put_availability(self, plan_id: str, availability: Availability) -> None: ...

    def insert_replan_record(self, record: ReplanRecord) -> None: ...

    def update_replan_record(self, record: ReplanRecord) -> None: ...

    def prune_changes(
        self, after_plan_id: str, older_than: int, keep_revisions: int, limit: int
    ) -> tuple[int, str | None]:
        """One small batch of change-log retention: deletes the oldest revisions of the
        first plan (by id) after `after_plan_id` that has any to prune: committed before
        `older_than` (µs) and not among the plan's last `keep_revisions` (a deleted plan
        keeps none), in order, stopping at the first to keep (what remains is an unbroken
        run up to the newest); about `limit` rows at most. Returns the rows deleted and
        the plan id to continue after, or None when every plan was looked at."""
        ...


class Store(Protocol):
    """Opens transactions; owns the connections.

    Hints an implementation may ignore: `bulk` (the transaction may touch many rows, so
    it must not run on the event loop) and the remembered answers of `lookup` and
    `remembered_task`."""

    async def read(self, fn: Callable[[ReadTx], T], *, bulk: bool = False) -> T:
        """Runs `fn` on one snapshot and returns its result (or raises what it raised)."""
        ...

    async def lookup(self, fn: Callable[[ReadTx], T]) -> T:
        """Like `read`, for an `fn` that reads by key only and needs no snapshot across
        its reads: each read still sees committed data only, and may be answered from
        memory while nothing has been committed since it was read."""
        ...

    async def write(self, fn: Callable[[WriteTx], T], *, bulk: bool = False) -> T:
        """Runs `fn` in a write transaction and returns its result once committed; if `fn`
        raises, nothing it did is kept and the error reaches the caller. Writes are
        serialized: each sees every write committed before it."""
        ...

    def subscribe_commits(self, callback: CommitListener) -> Callable[[], None]:
        """Calls `callback` on the event loop's thread after each write transaction that
        appended change records commits, with the (plan id, revision) pairs it committed;
        never for one that did not commit. Returns the function that unsubscribes. A
        callback that raises is logged and does not affect the write nor other callbacks."""
        ...

    def remembered_task(self, task_id: str) -> Task | None:
        """The task, if the store can answer at once without reading (nothing committed
        since it was last read); None says nothing (ask with `lookup`). An implementation
        that remembers nothing always returns None."""
        ...

    async def ping(self) -> None:
        """Raises if the database does not answer a trivial query."""
        ...

    async def purge_idempotency(self, older_than: int) -> int:
        """Forgets request ids recorded before `older_than` (µs); returns how many."""
        ...

    async def close(self) -> None:
        """Commits the writes already accepted, then lets go of the database; reads and
        writes after it raise UnavailableError."""
        ...
