"""Tasks: the rules of every read and write of a plan's tasks, over a `Store`.

Writes go through the one write path (`domain/mutations.py`), like the plans'
(`domain/plans.py`). Pages of a plan's tasks are kept by the plan's revision.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from plansmith_server.domain import validation as val
from plansmith_server.domain.codec import codec_for
from plansmith_server.domain.graph import ScheduleCycle, find_schedule_cycle
from plansmith_server.domain.models import (
    TASK_MUTABLE_FIELDS,
    ChangeRecord,
    ListFilter,
    Page,
    Task,
    TaskPriority,
    TaskStatus,
)
from plansmith_server.domain.mutations import NO_MUTATION, Applied, Mutation, Writing, new_id
from plansmith_server.domain.paging import decode_page_token, page_of
from plansmith_server.domain.plans import Plans, require_plan
from plansmith_server.domain.store import ReadTx, TaskQuery
from plansmith_server.errors import (
    AlreadyExistsError,
    DependencyCycleError,
    FailedPreconditionError,
    NotFoundError,
    PreconditionViolation,
    some_ids,
)
from plansmith_server.lru import LruCache, blocks

BULK_TASKS = 20
"""Writes of more tasks than this run off the event loop (see `Store.write`)."""


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
class TaskDeletion:
    """What DeleteTask removed."""

    task_id: str
    detached_task_ids: tuple[str, ...]
    plan_revision: int


class Tasks:
    """The stored tasks of the plans (`plans`): create, read, list, update, delete."""

    def __init__(
        self,
        plans: Plans,
        *,
        page_cache_tasks: int = 10_000,
        lookups_remembered: Callable[[], bool] = lambda: False,
    ) -> None:
        """`lookups_remembered()` says whether the store answers `lookup`s from memory while
        nothing is committed (SQLite with a readable wal-index): a page read then first
        tries its cached page by a lookup of the plan's revision, without a snapshot."""
        self.plans = plans
        self.store = plans.store
        self.mutations = plans.mutations
        self.lookups_remembered = lookups_remembered
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
        """The cache of ListTasks pages (None when turned off)."""
        return self._task_pages

    def caches(self) -> dict[str, LruCache[Any, Any]]:
        """The caches kept here, by name, for the status report (none when turned off)."""
        return {"task_pages": self._task_pages} if self._task_pages is not None else {}

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
        batch = _Drafts.checked(v, prefix, plan_id, drafts)
        v.raise_if_any()

        def body(w: Writing) -> Applied[TasksResult]:
            tx = w.tx
            self.plans.check_room(tx, plan_id, len(drafts))  # NotFound if there is no such plan
            if task_id and tx.get_task(task_id) is not None:
                raise AlreadyExistsError("task", task_id)
            new = batch.new_tasks(w.ts, task_id)
            new.check_references(tx)
            new.check_cycles(tx)
            created = new.tasks
            tx.insert_tasks(created)
            revision = w.next_revision(plan_id)
            return Applied(
                TasksResult(tuple(created), revision),
                [ChangeRecord("TASK_CREATED", "task", t.id, t.to_dict()) for t in created],
            )

        return await self.mutations.run(
            method, m, body, codec_for(TasksResult), bulk=len(drafts) > BULK_TASKS
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
        return await self.store.lookup(lambda tx: require_task(tx, task_id))

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
                return page_of(rows, size, total, filt)

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
                cached = page_of(rows, size, total, filt)
                if pages is not None:
                    with self._task_pages_lock:
                        pages.put((q, revision), cached)
            return cached

        if pages is not None and self.lookups_remembered():
            # A plan read again and again while it does not change (a dashboard, agents
            # polling for work) costs a lookup of its revision (itself remembered by the
            # store until something is committed), not a query of its tasks. (A store that
            # does not remember would read the revision twice on a miss.)
            hit = await self.store.lookup(remembered)
            if hit is not None:
                return hit
        # One snapshot: the revision and the rows it keys must be read together (a page
        # read after a change, cached under the revision before it, would be served stale).
        return await self.store.read(page)

    async def update_task(
        self, changes: Task, fields: Sequence[str], *, etag: str = "", m: Mutation = NO_MUTATION
    ) -> TaskResult:
        """Sets `fields` of the stored task `changes.id` to their values in `changes`."""
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "task.id", changes.id)
        val.check_mask(v, fields, TASK_MUTABLE_FIELDS)
        val.check_task(v, "task", changes, fields)
        v.raise_if_any()

        def body(w: Writing) -> Applied[TaskResult]:
            tx = w.tx
            current = require_task(tx, changes.id)
            w.check_etag("task", current)
            plan_id = current.plan_id
            values = {f: getattr(changes, f) for f in fields}
            if "priority" in values:
                values["priority"] = TaskPriority(values["priority"]) or TaskPriority.MEDIUM
            if "status" in values:
                values["status"] = TaskStatus(values["status"]) or TaskStatus.NOT_STARTED
            if values.get("status", TaskStatus.BLOCKED) != TaskStatus.BLOCKED:
                values["blocked_reason"] = ""  # the replanner's reason ends with the status
            updated = replace(current, **values, update_time=w.ts, version=current.version + 1)
            _check_task_update(tx, updated, values)
            revision = w.next_revision(plan_id)
            tx.update_task(updated, dependencies="dependencies" in values)
            return Applied(
                TaskResult(updated, revision),
                [ChangeRecord("TASK_UPDATED", "task", updated.id, updated.to_dict())],
            )

        return await self.mutations.run("UpdateTask", m, body, codec_for(TaskResult), etag=etag)

    async def delete_task(
        self, task_id: str, *, etag: str = "", force: bool = False, m: Mutation = NO_MUTATION
    ) -> TaskDeletion:
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "task_id", task_id)
        v.raise_if_any()

        def body(w: Writing) -> Applied[TaskDeletion]:
            tx = w.tx
            current = require_task(tx, task_id)
            w.check_etag("task", current)
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
            revision = w.next_revision(current.plan_id)
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
                    update_time=w.ts,
                    version=other.version + 1,
                )
                tx.update_task(changed, dependencies=changed.dependencies != other.dependencies)
                changes.append(ChangeRecord("TASK_UPDATED", "task", other_id, changed.to_dict()))
            tx.delete_task(task_id)
            return Applied(TaskDeletion(task_id, detached, revision), changes)

        return await self.mutations.run("DeleteTask", m, body, codec_for(TaskDeletion), etag=etag)


# ---- new tasks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Drafts:
    """The tasks of a CreateTask (`prefix` "task") or BatchCreateTasks ("tasks"), checked
    on their own; in a batch, a draft's `id` is a reference other drafts of the batch may
    name as a dependency or parent (`refs`: reference -> position)."""

    prefix: str
    plan_id: str
    drafts: Sequence[Task]
    refs: Mapping[str, int]

    @property
    def batch(self) -> bool:
        return self.prefix == "tasks"

    def path(self, i: int) -> str:
        return f"{self.prefix}[{i}]" if self.batch else self.prefix

    @classmethod
    def checked(
        cls, v: val.Violations, prefix: str, plan_id: str, drafts: Sequence[Task]
    ) -> _Drafts:
        """The drafts, with what is wrong with them on their own added to `v`."""
        if not drafts:
            v.add(prefix, "at least one task is required")
        if len(drafts) > val.MAX_BATCH:
            v.add(prefix, f"has {len(drafts)} tasks; at most {val.MAX_BATCH} per call")
        refs: dict[str, int] = {}
        self = cls(prefix, plan_id, drafts, refs)
        for i, d in enumerate(drafts):
            p = self.path(i)
            if d.plan_id and d.plan_id != plan_id:
                v.add(f"{p}.plan_id", f"must be empty or equal the request's plan_id {plan_id!r}")
            if d.id and self.batch:  # a single create ignores the (output-only) id
                if len(d.id) > val.MAX_ID:
                    v.add(f"{p}.id", f"batch reference longer than {val.MAX_ID} characters")
                elif d.id in refs:
                    v.add(f"{p}.id", f"duplicate batch reference {d.id!r}")
                else:
                    refs[d.id] = i
            val.check_task(v, p, d if self.batch or not d.id else replace(d, id=""))
            val.check_estimate_range(v, p, d)
        for i, d in enumerate(drafts if refs else ()):
            # A parent named by batch reference comes earlier in the batch: no task is its
            # own parent and parents never loop.
            if refs.get(d.parent_task_id, -1) >= i:
                v.add(f"{prefix}[{i}].parent_task_id", "must name an earlier task of the batch")
        return self

    def new_tasks(self, ts: int, task_id: str = "") -> _NewTasks:
        """The tasks to store: ids given (`task_id` for a single create, if chosen), batch
        references replaced by those ids."""
        ids = {ref: new_id("tsk") for ref in self.refs}
        created = [
            replace(
                d,
                id=ids[d.id] if self.batch and d.id else task_id or new_id("tsk"),
                plan_id=self.plan_id,
                dependencies=tuple(ids.get(dep, dep) for dep in d.dependencies),
                parent_task_id=ids.get(d.parent_task_id, d.parent_task_id),
                priority=TaskPriority(d.priority) or TaskPriority.MEDIUM,
                status=TaskStatus(d.status) or TaskStatus.NOT_STARTED,
                create_time=ts,
                update_time=ts,
                version=1,
            )
            for d in self.drafts
        ]
        return _NewTasks(self, ids, created)


@dataclass(frozen=True)
class _NewTasks:
    """Drafts given ids (`ids`: batch reference -> id), checked against the stored plan."""

    drafts: _Drafts
    ids: Mapping[str, str]
    tasks: list[Task]

    def check_references(self, tx: ReadTx) -> None:
        """Raises InvalidArgument for agents, dependencies and parents the plan lacks."""
        v = val.Violations()
        self._check_agents(tx, v)
        self._check_known(tx, v, "dependencies", lambda d: d.dependencies)
        self._check_known(tx, v, "parent_task_id", lambda d: (d.parent_task_id,))
        v.raise_if_any()

    def _check_agents(self, tx: ReadTx, v: val.Violations) -> None:
        drafts = self.drafts
        if not any(d.assigned_to for d in drafts.drafts):
            return  # the plan's agents only matter to drafts assigned to one
        agent_ids = require_plan(tx, drafts.plan_id).agent_ids()
        for i, d in enumerate(drafts.drafts):
            if d.assigned_to and agent_ids and d.assigned_to not in agent_ids:
                val.check_task(v, drafts.path(i), d, ("assigned_to",), agent_ids=agent_ids)

    def _check_known(
        self,
        tx: ReadTx,
        v: val.Violations,
        field: str,
        named: Callable[[Task], Sequence[str]],
    ) -> None:
        """Each task named in `field` is in the batch or a task of the plan. (A parent makes
        its task a subtask, and the parent a summary whose work its subtasks carry.)"""
        drafts = self.drafts
        wanted = {x for d in drafts.drafts for x in named(d) if x and x not in self.ids}
        if not wanted:
            return
        known = tx.existing_task_ids(drafts.plan_id, sorted(wanted))
        where = f"plan {drafts.plan_id!r}" + (" or in this batch" if drafts.batch else "")
        for i, d in enumerate(drafts.drafts):
            values = named(d)
            for j, x in enumerate(values):
                if x in wanted and x not in known:
                    at = f"[{j}]" if field == "dependencies" else ""
                    v.add(f"{drafts.path(i)}.{field}{at}", f"no task {x!r} in {where}")

    def check_cycles(self, tx: ReadTx) -> None:
        """Raises DependencyCycleError if the new tasks would loop. They can loop only
        through one another (batch references) or through a parent: nothing stored
        depends on them yet."""
        created = self.tasks
        if not any(t.dependencies for t in created) or not (
            self.ids or any(t.parent_task_id for t in created)
        ):
            return
        plan_id, prefix = self.drafts.plan_id, self.drafts.prefix
        edges = tx.plan_edges(plan_id)
        edges.update({t.id: list(t.dependencies) for t in created})
        parents = tx.plan_parents(plan_id)
        parents.update({t.id: t.parent_task_id for t in created if t.parent_task_id})
        cycle = find_schedule_cycle(edges, parents, [t.id for t in created])
        if cycle:
            # Named as the caller knows them: the batch reference, or the position.
            names = (
                {t.id: f"{prefix}[{i}]" for i, t in enumerate(created)}
                if self.drafts.batch
                else {created[0].id: "(the new task)"}
            )
            names.update({nid: ref for ref, nid in self.ids.items()})
            raise _cycle_error(f"{prefix}.dependencies", cycle, names)


# ---- helpers -------------------------------------------------------------------------------


def require_task(tx: ReadTx, task_id: str) -> Task:
    """The task, or NotFound."""
    task = tx.get_task(task_id)
    if task is None:
        raise NotFoundError("task", task_id)
    return task


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


def _check_task_update(tx: ReadTx, updated: Task, values: Mapping[str, Any]) -> None:
    """Refuses an UpdateTask whose new values the plan does not allow: an agent it lacks,
    dependencies on tasks it lacks or that would loop."""
    plan_id = updated.plan_id
    v = val.Violations()
    if updated.assigned_to and "assigned_to" in values:
        # Only a new assignment is checked against the plan's agents.
        agents = require_plan(tx, plan_id).agent_ids()
        val.check_task(v, "task", updated, ("assigned_to",), agent_ids=agents)
    val.check_estimate_range(v, "task", updated)
    new_deps = "dependencies" in values and updated.dependencies
    if new_deps:
        known = _existing_task_ids(tx, plan_id, set(updated.dependencies))
        for j, dep in enumerate(updated.dependencies):
            if dep not in known:
                v.add(f"task.dependencies[{j}]", f"no task {dep!r} in plan {plan_id!r}")
    v.raise_if_any()
    if new_deps:
        edges = tx.plan_edges(plan_id)
        edges[updated.id] = list(updated.dependencies)
        cycle = find_schedule_cycle(edges, tx.plan_parents(plan_id), [updated.id])
        if cycle:
            raise _cycle_error("task.dependencies", cycle)


def _existing_task_ids(tx: ReadTx, plan_id: str, ids: Iterable[str]) -> set[str]:
    return tx.existing_task_ids(plan_id, sorted(set(ids)))


def _page_weight(page: Page) -> int:
    # Each task as the store's cache weighs it (one per typical task, one more per 4 KiB:
    # pages of the largest tasks cannot hold gigabytes); taken once per task object, so
    # a page of tasks the store has cached costs a lookup per task here (a store without
    # that cache, `:memory:`, has each size taken here).
    return 1 + sum(blocks(t.approx_bytes) for t in page.items)
