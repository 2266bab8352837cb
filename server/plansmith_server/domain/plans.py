"""Plans and tasks: the rules of every read and mutation, over a `Store`.

Each mutation runs in one write transaction that checks, writes, bumps the plan's
revision, appends to the plan's change log and records the idempotency key, so a failed
request changes nothing and a retried one returns its first result.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from plansmith_server.domain import validation as val
from plansmith_server.domain.graph import ScheduleCycle, find_schedule_cycle
from plansmith_server.domain.models import (
    PLAN_MUTABLE_FIELDS,
    TASK_MUTABLE_FIELDS,
    ChangeRecord,
    ListFilter,
    Page,
    Plan,
    PlanStatus,
    Task,
    TaskPriority,
    TaskStatus,
)
from plansmith_server.errors import (
    AlreadyExistsError,
    DependencyCycleError,
    EtagMismatchError,
    FailedPreconditionError,
    IdempotencyKeyReusedError,
    NotFoundError,
    PageTokenError,
    PreconditionViolation,
    some_ids,
)
from plansmith_server.lru import LruCache, blocks
from plansmith_server.storage.base import (
    IdempotencyRecord,
    PlanQuery,
    ReadTx,
    Store,
    TaskQuery,
    WriteTx,
)

T = TypeVar("T")

BULK_TASKS = 20
"""Writes of more tasks than this run off the event loop (see `Store.write`)."""


def now_us() -> int:
    return time.time_ns() // 1000


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@dataclass(frozen=True)
class Mutation:
    """Who asked for a mutation, for idempotency: the key and a hash of the request."""

    request_id: str = ""
    fingerprint: str = ""


NO_MUTATION = Mutation()
"""A mutation without a request_id (no idempotency)."""


@dataclass(frozen=True)
class TaskResult:
    """A task after a mutation, with the plan's revision after it."""

    task: Task
    plan_revision: int


@dataclass(frozen=True)
class TasksResult:
    """Tasks after a batch mutation, with the plan's revision after it."""

    tasks: tuple[Task, ...]
    plan_revision: int


@dataclass(frozen=True)
class PlanDeletion:
    """What DeletePlan removed."""

    plan_id: str
    deleted_task_count: int


@dataclass(frozen=True)
class TaskDeletion:
    """What DeleteTask removed."""

    task_id: str
    detached_task_ids: tuple[str, ...]
    plan_revision: int


class PlanBook:
    """The plans-and-tasks domain service."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], int] = now_us,
        max_tasks_per_plan: int = 10_000,
        page_cache_tasks: int = 10_000,
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_tasks_per_plan = max_tasks_per_plan
        # Pages of tasks by (query, plan revision), weighing `page_cache_tasks` in all
        # (0: none): every change of a plan's tasks bumps its revision in the same
        # transaction, so a page at one revision never changes. Weighed like the store's
        # own cache of tasks, whose tasks they mostly are: a task counts one, plus one per
        # 4 KiB (at worst this keeps as many more alive). The lock costs nothing
        # uncontended: the store decides which thread runs a read (the loop, or the writer
        # thread for `:memory:`).
        self._task_pages: LruCache[tuple[TaskQuery, int], Page] | None = (
            LruCache(page_cache_tasks, weight=_page_weight) if page_cache_tasks > 0 else None
        )
        self._task_pages_lock = threading.Lock()

    @property
    def task_pages(self) -> LruCache[tuple[TaskQuery, int], Page] | None:
        """The cache of ListTasks pages (None when turned off), for the status report."""
        return self._task_pages

    def check_room(self, tx: ReadTx, plan_id: str, adding: int) -> None:
        """Refuses to grow a plan past `max_tasks_per_plan` tasks (or raises NotFound)."""
        size = tx.plan_size(plan_id)
        if size is None:
            raise NotFoundError("plan", plan_id)
        have = size[1]
        if have + adding > self.max_tasks_per_plan:
            raise FailedPreconditionError(
                f"plan {plan_id!r} has {have} tasks; adding {adding} would pass the limit of "
                f"{self.max_tasks_per_plan} tasks per plan",
                reason="PLAN_TASK_LIMIT",
                violations=[
                    PreconditionViolation(
                        "PLAN_TASK_LIMIT",
                        f"plans/{plan_id}",
                        f"{have} + {adding} tasks > {self.max_tasks_per_plan}",
                    )
                ],
                metadata={"limit": str(self.max_tasks_per_plan), "tasks": str(have)},
            )

    # ---- idempotency -------------------------------------------------------------------

    async def mutate(
        self,
        method: str,
        m: Mutation,
        body: Callable[[WriteTx], T],
        encode: Callable[[T], dict[str, Any]],
        decode: Callable[[dict[str, Any]], T],
        *,
        bulk: bool = False,
    ) -> T:
        """Runs `body` in a write transaction, once per request_id.

        `body` is synchronous: the whole transaction runs in one go (see `Store`); `bulk`
        says it may touch many rows. Public so that other domain services (planning)
        persist through the same path.
        """

        def run(tx: WriteTx) -> T:
            if m.request_id:
                record = tx.get_idempotency(m.request_id)
                if record is not None:
                    if record.method != method or record.fingerprint != m.fingerprint:
                        raise IdempotencyKeyReusedError(m.request_id, record.method)
                    return decode(record.response)
            result = body(tx)
            if m.request_id:
                tx.put_idempotency(
                    IdempotencyRecord(
                        m.request_id, method, m.fingerprint, encode(result), self.clock()
                    )
                )
            return result

        return await self.store.write(run, bulk=bulk)

    async def replay(
        self, method: str, m: Mutation, decode: Callable[[dict[str, Any]], T]
    ) -> T | None:
        """The recorded result of an earlier call with this request_id, or None.

        For mutations that do slow work before their transaction (planning): a retry must
        not redo it, nor fail preconditions that the first call itself changed.
        """
        if not m.request_id:
            return None
        record = await self.store.read(lambda tx: tx.get_idempotency(m.request_id))
        if record is None:
            return None
        if record.method != method or record.fingerprint != m.fingerprint:
            raise IdempotencyKeyReusedError(m.request_id, record.method)
        return decode(record.response)

    # ---- plans ---------------------------------------------------------------------------

    async def create_plan(self, draft: Plan, m: Mutation = NO_MUTATION) -> Plan:
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_plan(v, "plan", draft)
        v.raise_if_any()
        ts = self.clock()
        plan = replace(
            draft,
            id=new_id("pln"),
            status=PlanStatus(draft.status) or PlanStatus.DRAFT,
            create_time=ts,
            update_time=ts,
            version=1,
            revision=1,
        )

        def body(tx: WriteTx) -> Plan:
            tx.insert_plan(plan)
            tx.append_changes(
                plan.id, 1, [ChangeRecord("PLAN_CREATED", "plan", plan.id, plan.to_dict())], ts
            )
            return plan

        return await self.mutate("CreatePlan", m, body, Plan.to_dict, Plan.from_dict)

    async def get_plan(self, plan_id: str) -> Plan:
        v = val.Violations()
        val.check_id(v, "plan_id", plan_id)
        v.raise_if_any()
        return await self.store.read(lambda tx: require_plan(tx, plan_id), snapshot=False)

    async def list_plans(
        self, *, project_id: str = "", status: int = 0, page_size: int = 0, page_token: str = ""
    ) -> Page:
        v = val.Violations()
        val.check_id(v, "project_id", project_id, required=False)
        if status:
            val.check_enum(v, "status", status, PlanStatus)
        size = val.page_size(v, page_size)
        v.raise_if_any()
        filt = ListFilter((("kind", "plans"), ("project_id", project_id), ("status", str(status))))
        after = decode_page_token(page_token, filt)
        q = PlanQuery(project_id=project_id, status=status, after_seq=after, limit=size + 1)
        rows, total = await self.store.read(lambda tx: tx.list_plans(q))
        return _page(rows, size, total, filt)

    async def update_plan(
        self, changes: Plan, fields: Sequence[str], *, etag: str = "", m: Mutation = NO_MUTATION
    ) -> Plan:
        """Sets `fields` of the stored plan `changes.id` to their values in `changes`."""
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "plan.id", changes.id)
        _check_mask(v, fields, PLAN_MUTABLE_FIELDS)
        val.check_plan(v, "plan", changes, fields)
        v.raise_if_any()

        def body(tx: WriteTx) -> Plan:
            current = require_plan(tx, changes.id)
            if etag and etag != current.etag:
                raise EtagMismatchError("plan", current.id, current.etag)
            values = {f: getattr(changes, f) for f in fields}
            if "status" in values:
                values["status"] = PlanStatus(values["status"])
            if "agents" in values:
                _check_agents_in_use(tx, current, {a.id for a in values["agents"]})
            ts = self.clock()
            revision = tx.bump_revision(current.id, ts)
            updated = replace(
                current, **values, update_time=ts, version=current.version + 1, revision=revision
            )
            tx.update_plan(updated)
            tx.append_changes(
                current.id,
                revision,
                [ChangeRecord("PLAN_UPDATED", "plan", current.id, updated.to_dict())],
                ts,
            )
            return updated

        return await self.mutate(
            "UpdatePlan", m, body, Plan.to_dict, Plan.from_dict, bulk="agents" in fields
        )

    async def delete_plan(
        self, plan_id: str, etag: str = "", m: Mutation = NO_MUTATION
    ) -> PlanDeletion:
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "plan_id", plan_id)
        v.raise_if_any()

        def body(tx: WriteTx) -> PlanDeletion:
            current = require_plan(tx, plan_id)
            if etag and etag != current.etag:
                raise EtagMismatchError("plan", plan_id, current.etag)
            ts = self.clock()
            count = tx.delete_plan(plan_id)
            final = replace(current, revision=current.revision + 1, update_time=ts)
            tx.append_changes(
                plan_id,
                final.revision,
                [ChangeRecord("PLAN_DELETED", "plan", plan_id, final.to_dict())],
                ts,
            )
            return PlanDeletion(plan_id, count)

        return await self.mutate(
            "DeletePlan",
            m,
            body,
            lambda r: {"plan_id": r.plan_id, "deleted_task_count": r.deleted_task_count},
            lambda d: PlanDeletion(d["plan_id"], d["deleted_task_count"]),
            bulk=True,  # the plan's tasks go with it
        )

    # ---- tasks ---------------------------------------------------------------------------

    async def create_task(
        self, plan_id: str, draft: Task, m: Mutation = NO_MUTATION, *, task_id: str = ""
    ) -> TaskResult:
        """Adds a task; `task_id` is the caller's choice of id (AIP-133), else one is made."""
        result = await self._create_tasks(
            "CreateTask", plan_id, [draft], m, prefix="task", task_id=task_id
        )
        return TaskResult(result.tasks[0], result.plan_revision)

    async def batch_create_tasks(
        self, plan_id: str, drafts: Sequence[Task], m: Mutation = NO_MUTATION
    ) -> TasksResult:
        return await self._create_tasks("BatchCreateTasks", plan_id, drafts, m, prefix="tasks")

    async def _create_tasks(
        self,
        method: str,
        plan_id: str,
        drafts: Sequence[Task],
        m: Mutation,
        *,
        prefix: str,
        task_id: str = "",
    ) -> TasksResult:
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "plan_id", plan_id)
        if task_id:
            val.check_chosen_id(v, "task_id", task_id)
        if not drafts:
            v.add(prefix, "at least one task is required")
        if len(drafts) > val.MAX_BATCH:
            v.add(prefix, f"has {len(drafts)} tasks; at most {val.MAX_BATCH} per call")
        batch = prefix == "tasks"
        refs: dict[str, int] = {}
        for i, d in enumerate(drafts):
            p = f"{prefix}[{i}]" if batch else prefix
            if d.plan_id and d.plan_id != plan_id:
                v.add(f"{p}.plan_id", f"must be empty or equal the request's plan_id {plan_id!r}")
            if d.id:
                if not batch:
                    pass  # output only on a single create: ignored
                elif len(d.id) > val.MAX_ID:
                    v.add(f"{p}.id", f"batch reference longer than {val.MAX_ID} characters")
                elif d.id in refs:
                    v.add(f"{p}.id", f"duplicate batch reference {d.id!r}")
                else:
                    refs[d.id] = i
            # a single create ignores the (output-only) id: do not validate it
            val.check_task(v, p, d if batch or not d.id else replace(d, id=""))
            val.check_estimate_range(v, p, d)
        for i, d in enumerate(drafts if refs else ()):
            # A parent named by batch reference comes earlier in the batch: no task is its
            # own parent and parents never loop.
            if refs.get(d.parent_task_id, -1) >= i:
                v.add(f"{prefix}[{i}].parent_task_id", "must name an earlier task of the batch")
        v.raise_if_any()

        def body(tx: WriteTx) -> TasksResult:
            self.check_room(tx, plan_id, len(drafts))  # NotFound if there is no such plan
            if task_id and tx.get_task(task_id) is not None:
                raise AlreadyExistsError("task", task_id)
            ts = self.clock()
            new_ids = {ref: new_id("tsk") for ref in refs}
            created: list[Task] = []
            v2 = val.Violations()
            # The plan's agents only matter to drafts assigned to one (decoding the plan
            # on every create was a sixth of CreateTask's time in the transaction).
            agent_ids = (
                require_plan(tx, plan_id).agent_ids()
                if any(d.assigned_to for d in drafts)
                else set()
            )
            deps_needed: set[str] = set()
            for i, d in enumerate(drafts):
                p = f"{prefix}[{i}]" if batch else prefix
                if d.assigned_to and agent_ids and d.assigned_to not in agent_ids:
                    val.check_task(v2, p, d, ("assigned_to",), agent_ids=agent_ids)
                new = new_ids.get(d.id) if batch and d.id else task_id or new_id("tsk")
                deps = tuple(new_ids.get(dep, dep) for dep in d.dependencies)
                deps_needed.update(dep for dep in d.dependencies if dep not in new_ids)
                created.append(
                    replace(
                        d,
                        id=new,
                        plan_id=plan_id,
                        dependencies=deps,
                        parent_task_id=new_ids.get(d.parent_task_id, d.parent_task_id),
                        priority=TaskPriority(d.priority) or TaskPriority.MEDIUM,
                        status=TaskStatus(d.status) or TaskStatus.NOT_STARTED,
                        create_time=ts,
                        update_time=ts,
                        version=1,
                    )
                )
            existing = tx.plan_edges(plan_id) if deps_needed else {}
            if deps_needed:
                known = _existing_task_ids(tx, plan_id, deps_needed)
                for i, d in enumerate(drafts):
                    p = f"{prefix}[{i}]" if batch else prefix
                    for j, dep in enumerate(d.dependencies):
                        if dep not in new_ids and dep not in known:
                            v2.add(
                                f"{p}.dependencies[{j}]",
                                f"no task {dep!r} in plan {plan_id!r}"
                                + (" or in this batch" if batch else ""),
                            )
            # A parent makes its task a subtask, and the parent a summary whose work its
            # subtasks carry (AnalyzePlan, OptimizePlan): it must be a task of this plan.
            parents = {d.parent_task_id for d in drafts if d.parent_task_id} - new_ids.keys()
            if parents:
                known = _existing_task_ids(tx, plan_id, parents)
                for i, d in enumerate(drafts):
                    if d.parent_task_id in parents and d.parent_task_id not in known:
                        p = f"{prefix}[{i}]" if batch else prefix
                        v2.add(
                            f"{p}.parent_task_id",
                            f"no task {d.parent_task_id!r} in plan {plan_id!r}"
                            + (" or in this batch" if batch else ""),
                        )
            v2.raise_if_any()
            # New tasks can loop only through one another (batch references) or through
            # a parent: nothing stored depends on them yet.
            if any(t.dependencies for t in created) and (
                refs or any(t.parent_task_id for t in created)
            ):
                edges = existing if deps_needed else tx.plan_edges(plan_id)
                edges.update({t.id: list(t.dependencies) for t in created})
                parents = tx.plan_parents(plan_id)
                parents.update({t.id: t.parent_task_id for t in created if t.parent_task_id})
                cycle = find_schedule_cycle(edges, parents, [t.id for t in created])
                if cycle:
                    # Named as the caller knows them: the batch reference, or the position.
                    names = (
                        {t.id: f"{prefix}[{i}]" for i, t in enumerate(created)}
                        if batch
                        else {created[0].id: "(the new task)"}
                    )
                    names.update({nid: ref for ref, nid in new_ids.items()})
                    raise _cycle_error(f"{prefix}.dependencies", cycle, names)
            tx.insert_tasks(created)
            revision = tx.bump_revision(plan_id, ts)
            tx.append_changes(
                plan_id,
                revision,
                [ChangeRecord("TASK_CREATED", "task", t.id, t.to_dict()) for t in created],
                ts,
            )
            return TasksResult(tuple(created), revision)

        return await self.mutate(
            method,
            m,
            body,
            lambda r: {"tasks": [t.to_dict() for t in r.tasks], "plan_revision": r.plan_revision},
            lambda d: TasksResult(tuple(Task.from_dict(t) for t in d["tasks"]), d["plan_revision"]),
            bulk=len(drafts) > BULK_TASKS,
        )

    def task_now(self, task_id: str) -> Task | None:
        """The task if the store answers at once (see `Store.remembered_task`), without a
        coroutine or a transaction: a GetTask of an unchanged task is then a lookup.
        None: ask `get_task`, which also validates the id."""
        return self.store.remembered_task(task_id)

    async def get_task(self, task_id: str) -> Task:
        v = val.Violations()
        val.check_id(v, "task_id", task_id)
        v.raise_if_any()
        return await self.store.read(lambda tx: require_task(tx, task_id), snapshot=False)

    async def list_tasks(
        self,
        plan_id: str = "",
        *,
        project_id: str = "",
        status: int = 0,
        assigned_to: str = "",
        priority: int = 0,
        page_size: int = 0,
        page_token: str = "",
    ) -> Page:
        """Tasks of the plan `plan_id`, or of every plan of the project `project_id`
        (exactly one of them), in creation order."""
        v = val.Violations()
        if plan_id and project_id:
            v.add("project_id", "set either plan_id or project_id, not both")
        elif project_id:
            val.check_id(v, "project_id", project_id)
        else:
            val.check_id(v, "plan_id", plan_id)
            if not plan_id:
                v.add("project_id", "is required when plan_id is not set")
        if status:
            val.check_enum(v, "status", status, TaskStatus)
        if priority:
            val.check_enum(v, "priority", priority, TaskPriority)
        val.check_id(v, "assigned_to", assigned_to, required=False)
        size = val.page_size(v, page_size)
        v.raise_if_any()
        filt = ListFilter(
            (
                ("kind", "tasks"),
                ("plan_id", plan_id) if plan_id else ("project_id", project_id),
                ("status", str(status)),
                ("assigned_to", assigned_to),
                ("priority", str(priority)),
            )
        )
        after = decode_page_token(page_token, filt)
        q = TaskQuery(
            plan_id,
            status,
            assigned_to,
            priority,
            after_seq=after,
            limit=size + 1,
            project_id=project_id,
        )
        if project_id:
            # Across plans there is no one revision to key a cached page by. Many rows
            # may be read (and sorted): off the event loop.
            def project_page(tx: ReadTx) -> Page:
                rows, total = tx.list_tasks(q, 0)
                return _page(rows, size, total, filt)

            return await self.store.read(project_page, bulk=True)

        pages = self._task_pages

        def plan_state(tx: ReadTx) -> tuple[int, int]:
            state = tx.plan_size(plan_id)
            if state is None:
                raise NotFoundError("plan", plan_id)
            return state

        def cached_page(revision: int, *, count_miss: bool = True) -> Page | None:
            if pages is None:
                return None
            with self._task_pages_lock:
                return pages.get((q, revision), count_miss=count_miss)

        def remembered(tx: ReadTx) -> Page | None:
            # A miss here is counted by `page`, which looks again.
            return cached_page(plan_state(tx)[0], count_miss=False)

        def page(tx: ReadTx) -> Page:
            revision, count = plan_state(tx)
            cached = cached_page(revision)
            if cached is None:
                rows, total = tx.list_tasks(q, count)
                cached = _page(rows, size, total, filt)
                if pages is not None:
                    with self._task_pages_lock:
                        pages.put((q, revision), cached)
            return cached

        if pages is not None and self.store.remembers_lookups:
            # A plan read again and again while it does not change (a dashboard, agents
            # polling for work) costs a lookup of its revision (itself remembered by the
            # store until something is committed), not a query of its tasks. (A store
            # that does not remember would read the revision twice on a miss.)
            hit = await self.store.read(remembered, snapshot=False)
            if hit is not None:
                return hit
        # One snapshot: the revision and the rows it keys must be read together (a page
        # read after a change, cached under the revision before it, would be served stale).
        return await self.store.read(page, snapshot=True)

    async def update_task(
        self, changes: Task, fields: Sequence[str], *, etag: str = "", m: Mutation = NO_MUTATION
    ) -> TaskResult:
        """Sets `fields` of the stored task `changes.id` to their values in `changes`."""
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "task.id", changes.id)
        _check_mask(v, fields, TASK_MUTABLE_FIELDS)
        val.check_task(v, "task", changes, fields)
        v.raise_if_any()

        def body(tx: WriteTx) -> TaskResult:
            current = require_task(tx, changes.id)
            if etag and etag != current.etag:
                raise EtagMismatchError("task", current.id, current.etag)
            plan_id = current.plan_id
            values = {f: getattr(changes, f) for f in fields}
            if "priority" in values:
                values["priority"] = TaskPriority(values["priority"]) or TaskPriority.MEDIUM
            if "status" in values:
                values["status"] = TaskStatus(values["status"]) or TaskStatus.NOT_STARTED
            updated = replace(current, **values)
            v2 = val.Violations()
            if updated.assigned_to and "assigned_to" in values:
                # Only a new assignment is checked against the plan's agents (decoding
                # the plan on every update cost a sixth of the transaction's time).
                agents = require_plan(tx, plan_id).agent_ids()
                val.check_task(v2, "task", updated, ("assigned_to",), agent_ids=agents)
            val.check_estimate_range(v2, "task", updated)
            if "dependencies" in values and updated.dependencies:
                known = _existing_task_ids(tx, plan_id, set(updated.dependencies))
                for j, dep in enumerate(updated.dependencies):
                    if dep not in known:
                        v2.add(f"task.dependencies[{j}]", f"no task {dep!r} in plan {plan_id!r}")
            v2.raise_if_any()
            if "dependencies" in values and updated.dependencies:
                edges = tx.plan_edges(plan_id)
                edges[updated.id] = list(updated.dependencies)
                cycle = find_schedule_cycle(edges, tx.plan_parents(plan_id), [updated.id])
                if cycle:
                    raise _cycle_error("task.dependencies", cycle)
            ts = self.clock()
            revision = tx.bump_revision(plan_id, ts)
            updated = replace(updated, update_time=ts, version=current.version + 1)
            tx.update_task(updated, dependencies="dependencies" in values)
            tx.append_changes(
                plan_id,
                revision,
                [ChangeRecord("TASK_UPDATED", "task", updated.id, updated.to_dict())],
                ts,
            )
            return TaskResult(updated, revision)

        return await self.mutate(
            "UpdateTask",
            m,
            body,
            lambda r: {"task": r.task.to_dict(), "plan_revision": r.plan_revision},
            lambda d: TaskResult(Task.from_dict(d["task"]), d["plan_revision"]),
        )

    async def delete_task(
        self, task_id: str, *, etag: str = "", force: bool = False, m: Mutation = NO_MUTATION
    ) -> TaskDeletion:
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "task_id", task_id)
        v.raise_if_any()

        def body(tx: WriteTx) -> TaskDeletion:
            current = require_task(tx, task_id)
            if etag and etag != current.etag:
                raise EtagMismatchError("task", task_id, current.etag)
            dependents = tx.dependents(task_id)
            if dependents and not force:
                raise _delete_refused(
                    task_id,
                    "TASK_HAS_DEPENDENTS",
                    "dependents",
                    dependents,
                    lambda d: f"task {d!r} depends on {task_id!r}",
                    f"task {task_id!r} has {len(dependents)} dependent task(s); remove those "
                    "dependencies first or delete with force=true",
                )
            # Subtasks would keep a parent that no longer exists; with force they move up
            # to the deleted task's own parent (or become top-level tasks).
            subtasks = tx.children(task_id)
            if subtasks and not force:
                raise _delete_refused(
                    task_id,
                    "TASK_HAS_SUBTASKS",
                    "subtasks",
                    subtasks,
                    lambda c: f"task {c!r} is a subtask of {task_id!r}",
                    f"task {task_id!r} has {len(subtasks)} subtask(s); delete them first or "
                    "delete with force=true, which gives them this task's parent",
                )
            ts = self.clock()
            revision = tx.bump_revision(current.plan_id, ts)
            changes = [ChangeRecord("TASK_DELETED", "task", task_id, current.to_dict())]
            # One update per task: a subtask may depend on its parent too.
            detached = tuple(dict.fromkeys([*dependents, *subtasks]))
            for other_id in detached:
                other = require_task(tx, other_id)
                changed = replace(
                    other,
                    dependencies=tuple(d for d in other.dependencies if d != task_id),
                    parent_task_id=(
                        current.parent_task_id
                        if other.parent_task_id == task_id
                        else other.parent_task_id
                    ),
                    update_time=ts,
                    version=other.version + 1,
                )
                tx.update_task(changed, dependencies=changed.dependencies != other.dependencies)
                changes.append(ChangeRecord("TASK_UPDATED", "task", other_id, changed.to_dict()))
            tx.delete_task(task_id)
            tx.append_changes(current.plan_id, revision, changes, ts)
            return TaskDeletion(task_id, detached, revision)

        return await self.mutate(
            "DeleteTask",
            m,
            body,
            lambda r: {
                "task_id": r.task_id,
                "detached_task_ids": list(r.detached_task_ids),
                "plan_revision": r.plan_revision,
            },
            lambda d: TaskDeletion(d["task_id"], tuple(d["detached_task_ids"]), d["plan_revision"]),
        )


# ---- helpers -------------------------------------------------------------------------------


def _delete_refused(
    task_id: str,
    reason: str,
    key: str,
    ids: Sequence[str],
    describe: Callable[[str], str],
    message: str,
) -> FailedPreconditionError:
    """DeleteTask refused for the tasks `ids` (listed, and named in ErrorInfo as `key`
    and counted as `key`_count)."""
    return FailedPreconditionError(
        message,
        reason=reason,
        violations=[PreconditionViolation(reason, f"tasks/{x}", describe(x)) for x in ids],
        metadata={"task_id": task_id, key: some_ids(ids, ","), f"{key}_count": str(len(ids))},
    )


def _cycle_error(
    field: str, cycle: ScheduleCycle, names: dict[str, str] | None = None
) -> DependencyCycleError:
    """The refusal of a write whose dependencies would loop; one that loops through the
    subtask hierarchy says how, step by step."""
    if names:
        cycle = ScheduleCycle(tuple(names.get(x, x) for x in cycle.tasks), cycle.relations)
    return DependencyCycleError(
        field, cycle.tasks, cycle.explain() if cycle.through_hierarchy else ""
    )


def require_plan(tx: ReadTx, plan_id: str) -> Plan:
    plan = tx.get_plan(plan_id)
    if plan is None:
        raise NotFoundError("plan", plan_id)
    return plan


def require_task(tx: ReadTx, task_id: str) -> Task:
    """The task, or NotFound (for the domain services that share the plans' store)."""
    task = tx.get_task(task_id)
    if task is None:
        raise NotFoundError("task", task_id)
    return task


def _existing_task_ids(tx: ReadTx, plan_id: str, ids: Iterable[str]) -> set[str]:
    return tx.existing_task_ids(plan_id, sorted(set(ids)))


def _check_agents_in_use(tx: ReadTx, plan: Plan, new_ids: set[str]) -> None:
    if not new_ids:
        return  # a plan without agents accepts any assignee
    stranded = [t for t in tx.plan_tasks(plan.id) if t.assigned_to and t.assigned_to not in new_ids]
    if stranded:
        raise FailedPreconditionError(
            f"{len(stranded)} task(s) are assigned to agents the update removes; reassign them "
            "first",
            reason="AGENT_IN_USE",
            violations=[
                PreconditionViolation(
                    "AGENT_IN_USE", f"tasks/{t.id}", f"assigned to {t.assigned_to!r}"
                )
                for t in stranded[:50]
            ],
            metadata={"agents": ",".join(sorted({t.assigned_to for t in stranded}))},
        )


def _check_mask(v: val.Violations, fields: Sequence[str], allowed: Sequence[str]) -> None:
    if not fields:
        v.add("update_mask", f"names no field to change; allowed: {', '.join(allowed)}")
    for f in fields:
        if f not in allowed:
            v.add("update_mask", f"{f!r} cannot be updated; allowed: {', '.join(allowed)}")


def _page_weight(page: Page) -> int:
    # Each task as the store's cache weighs it (one per typical task, one more per 4 KiB:
    # pages of the largest tasks cannot hold gigabytes); taken once per task object, so
    # a page of tasks the store has cached costs a lookup per task here (a store without
    # that cache, `:memory:`, has each size taken here: ~100 µs for a page of 50).
    return 1 + sum(blocks(t.approx_bytes) for t in page.items)


def _page(rows: Sequence[tuple[int, Any]], size: int, total: int, filt: ListFilter) -> Page:
    items = rows[:size]
    token = encode_page_token(items[-1][0], filt) if len(rows) > size else ""
    return Page(tuple(item for _, item in items), token, total)


MAX_PAGE_TOKEN = 1_024
"""Characters; the tokens this service writes have about 50 (a position and a hash)."""


def encode_page_token(after_seq: int, filt: ListFilter) -> str:
    raw = json.dumps({"a": after_seq, "f": filt.key()}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, filt: ListFilter) -> int:
    """The position a token continues from; 0 for no token."""
    if not token:
        return 0
    # Tokens are opaque to callers but not tamper-proof: whatever one holds is checked
    # before use (a position past SQLite's 64-bit integers, JSON nested deep enough to
    # exhaust the parser's recursion, a token far longer than any this service writes).
    try:
        if len(token) > MAX_PAGE_TOKEN:
            raise ValueError(len(token))
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after, key = data["a"], data["f"]
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 2**63:
            raise ValueError(after)
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise PageTokenError("not a page token issued by this service") from None
    if key != filt.key():
        raise PageTokenError("the filters changed since this token was issued; start again")
    return after


def field_names(mask: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """Expands `*`; keeps the caller's order otherwise."""
    out: list[str] = []
    for f in mask:
        for name in allowed if f == "*" else [f]:
            if name not in out:
                out.append(name)
    return out
