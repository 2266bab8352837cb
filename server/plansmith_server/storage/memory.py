"""The `Store` in memory: the port's contract (domain/store.py) over plain dicts, for
the domain's tests and as the reference a database store is held to (tests/storage/
contract). Nothing outlives the process.

Every transaction runs whole on the event loop, so transactions never interleave: a read
is its own snapshot and writes are serialized. A write keeps an undo log and replays it
backwards if its function raises, so nothing of a failed write is left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from plansmith_server.domain.models import (
    Availability,
    ChangeRecord,
    Plan,
    ReplanRecord,
    Task,
    TaskStatus,
)
from plansmith_server.domain.store import (
    CommitListener,
    CommitListeners,
    IdempotencyRecord,
    PlanQuery,
    TaskQuery,
)
from plansmith_server.errors import UnavailableError

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Data:
    """What the store holds."""

    def __init__(self) -> None:
        self.plans: dict[str, Plan] = {}
        self.plan_seq: dict[str, int] = {}
        self.tasks: dict[str, Task] = {}
        self.task_seq: dict[str, int] = {}
        self.plan_task_ids: dict[str, dict[str, None]] = {}  # per plan, in creation order
        self.changes: dict[str, list[tuple[int, ChangeRecord]]] = {}
        self.change_times: dict[str, int] = {}  # "plan_id/revision" -> commit time (µs)
        self.idempotency: dict[str, IdempotencyRecord] = {}
        self.availability: dict[str, Availability] = {}  # by "plan_id/agent_id"
        self.records: dict[str, ReplanRecord] = {}
        self.record_seq: dict[str, int] = {}
        self.next_seq = 1


class MemoryReadTx:
    """`ReadTx` over the store's data."""

    def __init__(self, data: _Data) -> None:
        self._d = data

    def get_plan(self, plan_id: str) -> Plan | None:
        return self._d.plans.get(plan_id)

    def get_task(self, task_id: str) -> Task | None:
        return self._d.tasks.get(task_id)

    def list_plans(self, q: PlanQuery) -> tuple[list[tuple[int, Plan]], int]:
        matching = [
            (self._d.plan_seq[p.id], p)
            for p in self._d.plans.values()
            if (not q.project_id or p.project_id == q.project_id)
            and (not q.status or int(p.status) == q.status)
        ]
        matching.sort(key=lambda x: x[0])
        page = [x for x in matching if x[0] > q.after_seq][: q.limit]
        return page, len(matching)

    def _scope(self, plan_id: str = "", project_id: str = "") -> list[Task]:
        """Tasks of a plan, or of every plan of a project, oldest first."""
        if not project_id:
            return [self._d.tasks[i] for i in self._d.plan_task_ids.get(plan_id, ())]
        out = [
            self._d.tasks[i]
            for p in self._d.plans.values()
            if p.project_id == project_id
            for i in self._d.plan_task_ids[p.id]
        ]
        out.sort(key=lambda t: self._d.task_seq[t.id])
        return out

    def list_tasks(self, q: TaskQuery, task_count: int) -> tuple[list[tuple[int, Task]], int]:
        matching = [
            (self._d.task_seq[t.id], t)
            for t in self._scope(q.plan_id, q.project_id)
            if (not q.status or int(t.status) == q.status)
            and (not q.assigned_to or t.assigned_to == q.assigned_to)
            and (not q.priority or int(t.priority) == q.priority)
        ]
        page = [x for x in matching if x[0] > q.after_seq][: q.limit]
        return page, len(matching)

    def plan_tasks(self, plan_id: str) -> list[Task]:
        return self._scope(plan_id)

    def plan_edges(self, plan_id: str) -> dict[str, list[str]]:
        return {t.id: list(t.dependencies) for t in self._scope(plan_id) if t.dependencies}

    def plan_parents(self, plan_id: str) -> dict[str, str]:
        return {t.id: t.parent_task_id for t in self._scope(plan_id) if t.parent_task_id}

    def existing_task_ids(self, plan_id: str, ids: Sequence[str]) -> set[str]:
        ours = self._d.plan_task_ids.get(plan_id, {})
        return {i for i in ids if i in ours}

    def _tasks_where(self, keep: Callable[[Task], bool]) -> list[str]:
        found = [t for t in self._d.tasks.values() if keep(t)]
        found.sort(key=lambda t: self._d.task_seq[t.id])
        return [t.id for t in found]

    def dependents(self, task_id: str) -> list[str]:
        return self._tasks_where(lambda t: task_id in t.dependencies)

    def plan_size(self, plan_id: str) -> tuple[int, int] | None:
        plan = self._d.plans.get(plan_id)
        if plan is None:
            return None
        return plan.revision, len(self._d.plan_task_ids[plan_id])

    def children(self, task_id: str) -> list[str]:
        return self._tasks_where(lambda t: bool(task_id) and t.parent_task_id == task_id)

    def completed_tasks(
        self, *, plan_id: str = "", project_id: str = "", limit: int = 5000
    ) -> list[Task]:
        done = [
            t
            for t in self._scope(plan_id, project_id)
            if t.status == TaskStatus.DONE and t.actual_hours > 0
        ]
        return done[::-1][:limit]

    def get_idempotency(self, request_id: str) -> IdempotencyRecord | None:
        return self._d.idempotency.get(request_id)

    def changes(
        self, plan_id: str, after_revision: int, limit: int
    ) -> list[tuple[int, ChangeRecord]]:
        log_ = self._d.changes.get(plan_id, [])
        return [c for c in log_ if c[0] > after_revision][:limit]

    def agent_availability(self, plan_id: str) -> dict[str, Availability]:
        prefix = f"{plan_id}/"
        return {a.agent_id: a for k, a in self._d.availability.items() if k.startswith(prefix)}

    def stale_heartbeats(self, before: int) -> list[tuple[str, str, int]]:
        found = sorted(
            (a.last_heartbeat, k.rpartition("/")[0], a.agent_id)
            for k, a in self._d.availability.items()
            if a.available and 0 < a.last_heartbeat < before
        )
        return [(plan_id, agent_id, last) for last, plan_id, agent_id in found[:1000]]

    def get_replan_record(self, record_id: str) -> ReplanRecord | None:
        return self._d.records.get(record_id)

    def _records(self, keep: Callable[[ReplanRecord], bool]) -> list[tuple[int, ReplanRecord]]:
        found = [(self._d.record_seq[r.id], r) for r in self._d.records.values() if keep(r)]
        found.sort(key=lambda x: x[0])
        return found

    def replan_records(
        self, plan_id: str, task_id: str, after_seq: int, limit: int
    ) -> tuple[list[tuple[int, ReplanRecord]], int]:
        matching = self._records(
            lambda r: r.plan_id == plan_id and (not task_id or r.task_id == task_id)
        )
        return [x for x in matching if x[0] > after_seq][:limit], len(matching)

    def task_replan_records(self, task_id: str) -> list[ReplanRecord]:
        return [r for _, r in self._records(lambda r: r.task_id == task_id)]

    def change_rows(
        self, plan_id: str, after_revision: int, limit: int
    ) -> list[tuple[int, int, ChangeRecord]]:
        times = self._d.change_times
        return [
            (r, times.get(f"{plan_id}/{r}", 0), c)
            for r, c in self.changes(plan_id, after_revision, limit)
        ]

    def change_log_bounds(self, plan_id: str) -> tuple[int, int] | None:
        log_ = self._d.changes.get(plan_id)
        return (log_[0][0], log_[-1][0]) if log_ else None


class MemoryWriteTx(MemoryReadTx):
    """`WriteTx` that keeps an undo log (`rollback`) and what it appended to change logs."""

    def __init__(self, data: _Data) -> None:
        super().__init__(data)
        self._undo: list[Callable[[], None]] = []
        self._copied: set[str] = set()
        self.appended: list[tuple[str, int]] = []

    def rollback(self) -> None:
        while self._undo:
            self._undo.pop()()

    def _put(self, table: dict[str, Any], key: str, value: Any) -> None:
        if key in table:
            old = table[key]
            self._undo.append(lambda: table.__setitem__(key, old))
        else:
            self._undo.append(lambda: table.pop(key))
        table[key] = value

    def _pop(self, table: dict[str, Any], key: str) -> None:
        if key in table:
            old = table.pop(key)
            self._undo.append(lambda: table.__setitem__(key, old))

    def _seq(self) -> int:
        seq = self._d.next_seq
        self._d.next_seq += 1
        # Positions are never reused, even those of a write that failed.
        return seq

    def insert_plan(self, plan: Plan) -> None:
        if plan.id in self._d.plans:
            raise ValueError(f"plan {plan.id!r} already exists")
        self._put(self._d.plans, plan.id, plan)
        self._put(self._d.plan_seq, plan.id, self._seq())
        self._put(self._d.plan_task_ids, plan.id, {})

    def update_plan(self, plan: Plan) -> None:
        if plan.id not in self._d.plans:
            return
        self._put(self._d.plans, plan.id, plan)

    def delete_plan(self, plan_id: str) -> int:
        ids = list(self._d.plan_task_ids.get(plan_id, ()))
        for task_id in ids:  # dependencies never cross plans: nobody else to detach
            self._pop(self._d.tasks, task_id)
            self._pop(self._d.task_seq, task_id)
        self._pop(self._d.plans, plan_id)
        self._pop(self._d.plan_seq, plan_id)
        self._pop(self._d.plan_task_ids, plan_id)
        for key in [k for k in self._d.availability if k.startswith(f"{plan_id}/")]:
            self._pop(self._d.availability, key)
        for r in [r for r in self._d.records.values() if r.plan_id == plan_id]:
            self._pop(self._d.records, r.id)
            self._pop(self._d.record_seq, r.id)
        return len(ids)

    def bump_revision(self, plan_id: str, update_time: int) -> int:
        plan = self._d.plans.get(plan_id)
        if plan is None:
            raise ValueError(f"no plan {plan_id!r}")
        self._put(self._d.plans, plan_id, replace(plan, revision=plan.revision + 1))
        return plan.revision + 1

    def _members(self, plan_id: str) -> dict[str, None]:
        """The plan's task ids, copied once per transaction so that undo can restore them."""
        members = self._d.plan_task_ids.get(plan_id)
        if members is None:
            raise ValueError(f"no plan {plan_id!r}")
        if plan_id in self._copied:
            return members
        self._copied.add(plan_id)
        copy = dict(members)
        self._put(self._d.plan_task_ids, plan_id, copy)
        return copy

    def insert_tasks(self, tasks: Sequence[Task]) -> None:
        new = {t.id for t in tasks}
        for t in tasks:
            if t.id in self._d.tasks:
                raise ValueError(f"task {t.id!r} already exists")
            for dep in t.dependencies:
                if dep not in new and dep not in self._d.tasks:
                    raise ValueError(f"task {t.id!r} depends on no task {dep!r}")
            members = self._members(t.plan_id)
            self._put(self._d.tasks, t.id, t)
            self._put(self._d.task_seq, t.id, self._seq())
            members[t.id] = None

    def update_task(self, task: Task, *, dependencies: bool = True) -> None:
        old = self._d.tasks.get(task.id)
        if old is None:
            return
        if not dependencies:
            task = replace(task, dependencies=old.dependencies)
        if task.plan_id != old.plan_id:
            self._members(old.plan_id).pop(task.id, None)
            self._members(task.plan_id)[task.id] = None
        self._put(self._d.tasks, task.id, task)

    def delete_task(self, task_id: str) -> None:
        old = self._d.tasks.get(task_id)
        if old is None:
            return
        for other_id in self.dependents(task_id):
            other = self._d.tasks[other_id]
            deps = tuple(d for d in other.dependencies if d != task_id)
            self._put(self._d.tasks, other_id, replace(other, dependencies=deps))
        self._members(old.plan_id).pop(task_id, None)
        self._pop(self._d.tasks, task_id)
        self._pop(self._d.task_seq, task_id)

    def purge_idempotency(self, older_than: int) -> int:
        old = [k for k, r in self._d.idempotency.items() if r.create_time < older_than]
        for k in old:
            self._pop(self._d.idempotency, k)
        return len(old)

    def append_changes(
        self, plan_id: str, revision: int, changes: Sequence[ChangeRecord], create_time: int
    ) -> None:
        log_ = self._d.changes.get(plan_id, [])
        if any(r == revision for r, _ in log_):
            raise ValueError(f"revision {revision} of plan {plan_id!r} is already logged")
        self._put(self._d.changes, plan_id, [*log_, *((revision, c) for c in changes)])
        self._put(self._d.change_times, f"{plan_id}/{revision}", create_time)
        self.appended.append((plan_id, revision))

    def prune_changes(
        self, after_plan_id: str, older_than: int, keep_revisions: int, limit: int
    ) -> tuple[int, str | None]:
        later = sorted(p for p, log_ in self._d.changes.items() if p > after_plan_id and log_)
        if not later:
            return 0, None
        plan_id = later[0]
        log_ = self._d.changes[plan_id]
        newest = log_[-1][0]
        floor = newest - keep_revisions if plan_id in self._d.plans else newest
        times = self._d.change_times
        upto = None
        rows = [r for r, _ in log_ if r <= floor][:limit]
        for r in rows:
            if times.get(f"{plan_id}/{r}", 0) >= older_than:
                break
            upto = r
        else:
            if len(rows) == limit and upto is not None:
                return self._drop(plan_id, upto), after_plan_id
        if upto is None:
            return 0, plan_id
        return self._drop(plan_id, upto), plan_id

    def _drop(self, plan_id: str, upto: int) -> int:
        log_ = self._d.changes[plan_id]
        kept = [e for e in log_ if e[0] > upto]
        for r in {r for r, _ in log_ if r <= upto}:
            self._pop(self._d.change_times, f"{plan_id}/{r}")
        if kept:
            self._put(self._d.changes, plan_id, kept)
        else:
            self._pop(self._d.changes, plan_id)
        return len(log_) - len(kept)

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        if record.request_id in self._d.idempotency:
            raise ValueError(f"request id {record.request_id!r} is already recorded")
        self._put(self._d.idempotency, record.request_id, record)

    def put_availability(self, plan_id: str, availability: Availability) -> None:
        if plan_id not in self._d.plans:
            raise ValueError(f"no plan {plan_id!r}")
        self._put(self._d.availability, f"{plan_id}/{availability.agent_id}", availability)

    def insert_replan_record(self, record: ReplanRecord) -> None:
        if record.id in self._d.records:
            raise ValueError(f"replan record {record.id!r} already exists")
        if record.plan_id not in self._d.plans:
            raise ValueError(f"no plan {record.plan_id!r}")
        self._put(self._d.records, record.id, record)
        self._put(self._d.record_seq, record.id, self._seq())

    def update_replan_record(self, record: ReplanRecord) -> None:
        if record.id in self._d.records:
            self._put(self._d.records, record.id, record)


class MemoryStore:
    """The `Store` in memory."""

    def __init__(self) -> None:
        self._data: _Data | None = _Data()
        self._commits = CommitListeners()

    def _open_data(self) -> _Data:
        if self._data is None:
            raise UnavailableError("database is closed")
        return self._data

    async def read(self, fn: Callable[[MemoryReadTx], T], *, bulk: bool = False) -> T:
        return fn(MemoryReadTx(self._open_data()))

    async def lookup(self, fn: Callable[[MemoryReadTx], T]) -> T:
        return fn(MemoryReadTx(self._open_data()))

    async def write(self, fn: Callable[[MemoryWriteTx], T], *, bulk: bool = False) -> T:
        tx = MemoryWriteTx(self._open_data())
        try:
            result = fn(tx)
        except BaseException:
            tx.rollback()
            raise
        if tx.appended:
            self._commits.tell(tx.appended)
        return result

    def subscribe_commits(self, callback: CommitListener) -> Callable[[], None]:
        return self._commits.subscribe(callback)

    def remembered_task(self, task_id: str) -> Task | None:
        return None

    async def ping(self) -> None:
        self._open_data()

    async def purge_idempotency(self, older_than: int) -> int:
        return await self.write(lambda tx: tx.purge_idempotency(older_than))

    async def prune_changes(
        self, after_plan_id: str, older_than: int, keep_revisions: int, limit: int
    ) -> tuple[int, str | None]:
        return await self.write(
            lambda tx: tx.prune_changes(after_plan_id, older_than, keep_revisions, limit)
        )

    async def close(self) -> None:
        self._data = None
