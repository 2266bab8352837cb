"""SQLite rows <-> domain models, and the transactions' statements (`ReadTx`, `WriteTx`).

Synchronous on purpose: a transaction runs whole on one thread (the event loop for short
reads, the writer thread for writes), so a request costs one hand-off, not one per
statement. Python's sqlite3 caches prepared statements per connection by SQL text.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from plansmith_server.domain.models import (
    Agent,
    Availability,
    ChangeRecord,
    Plan,
    PlanStatus,
    ReplanRecord,
    ReplanState,
    ReplanTrigger,
    Schedule,
    Task,
    TaskPriority,
    TaskStatus,
)
from plansmith_server.domain.policy import ReplanPolicy
from plansmith_server.domain.store import IdempotencyRecord, PlanQuery, TaskQuery
from plansmith_server.lru import LruCache, all_present, blocks

TaskCache = LruCache[tuple[str, int], Task]
"""Decoded tasks by (id, version): a row decodes to the same task until its version moves.
Weighed by `task_weight`."""

Lookups = LruCache[tuple[str, str], Any]
"""Answers of lookups by key ("task", id), ("plan", id), ("plan_size", id), valid while
the database has not changed since they were read: the store empties it whenever the
database's wal-index header moves (see `wal_index.py`). Not-found answers are not kept,
so ids that name nothing cannot fill it. Weighed by `lookup_weight`."""


def task_weight(task: Task) -> int:
    return blocks(task.approx_bytes)


def lookup_weight(value: Any) -> int:
    return blocks(value.approx_bytes) if isinstance(value, Task | Plan) else 1


_PLAN_COLS = (
    "id, project_id, name, description, objectives, constraints, metadata, status, agents, "
    "create_time, update_time, version, revision, replan_policy"
)
# Dependencies come back in the caller's order as one JSON array, so a task is one row.
_TASK_COLS = (
    "t.id, t.plan_id, t.title, t.description, t.priority, t.status, t.estimated_hours, "
    "t.actual_hours, t.progress, t.assigned_to, t.required_capabilities, t.parent_task_id, "
    "t.metadata, t.optimistic_hours, t.pessimistic_hours, t.acceptance_criteria, "
    "t.schedule_start, t.schedule_end, t.create_time, t.update_time, t.version, "
    "t.not_before, t.outputs, t.blocked_reason, "
    "(SELECT json_group_array(depends_on) FROM (SELECT depends_on FROM task_dependencies d "
    " WHERE d.task_id = t.id ORDER BY d.position)) AS deps"
)


_PLAN_INSERT = (
    f"INSERT INTO plans ({_PLAN_COLS}) VALUES ({', '.join('?' * len(_PLAN_COLS.split(',')))})"
)
_TASK_INSERT_COLS = _TASK_COLS.split(", (SELECT")[0].replace("t.", "")
_TASK_INSERT = (
    f"INSERT INTO tasks ({_TASK_INSERT_COLS}) "
    f"VALUES ({', '.join('?' * len(_TASK_INSERT_COLS.split(',')))})"
)
_EDGE_INSERT = (
    "INSERT INTO task_dependencies (plan_id, task_id, depends_on, position) VALUES (?, ?, ?, ?)"
)


def _tuple(text: str) -> tuple[Any, ...]:
    return () if text == "[]" else tuple(json.loads(text))


def _mapping(text: str) -> dict[str, Any]:
    return {} if text == "{}" else json.loads(text)


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# What `json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode` writes (ASCII,
# keys sorted, NaN allowed), from the C encoder built once: `encode` builds a new one on
# every call, which cost more than the encoding of a task's small lists and maps (four
# per CreateTask). Without the circular-reference check: the values are plain data.
_C_ENCODER = getattr(json.encoder, "c_make_encoder", None)
# Called as (value, 0): the C encoder's (obj, indent level), iterencode's (obj, one-shot flag).
_ENCODE: Any = (
    _C_ENCODER(
        None, _not_json, json.encoder.encode_basestring_ascii, None, ":", ",", True, False, True
    )
    if _C_ENCODER is not None
    else json.JSONEncoder(separators=(",", ":"), sort_keys=True).iterencode
)


def _dumps(value: list[Any] | Mapping[str, Any]) -> str:
    # No encoder at all for the empty lists and maps most tasks have. Callers pass plain
    # lists and dicts (a model's mapping may be any Mapping).
    if not value and type(value) in (list, tuple, dict):
        return "{}" if type(value) is dict else "[]"
    return "".join(_ENCODE(value, 0))


def _plan_from_row(r: Sequence[Any]) -> Plan:
    return Plan(
        id=r[0],
        project_id=r[1],
        name=r[2],
        description=r[3],
        objectives=tuple(json.loads(r[4])),
        constraints=tuple(json.loads(r[5])),
        metadata=json.loads(r[6]),
        status=PlanStatus(r[7]),
        agents=tuple(
            Agent(
                a["id"], a.get("name", ""), tuple(a.get("capabilities", ())), a.get("capacity", 0)
            )
            for a in json.loads(r[8])
        ),
        create_time=r[9],
        update_time=r[10],
        version=r[11],
        revision=r[12],
        replan_policy=ReplanPolicy.from_dict(json.loads(r[13])) if r[13] else None,
    )


def _plan_params(p: Plan) -> tuple[Any, ...]:
    agents = [_agent_json(a) for a in p.agents]
    return (
        p.id,
        p.project_id,
        p.name,
        p.description,
        _dumps(list(p.objectives)),
        _dumps(list(p.constraints)),
        _dumps(dict(p.metadata)),
        int(p.status),
        _dumps(agents),
        p.create_time,
        p.update_time,
        p.version,
        p.revision,
        _dumps(p.replan_policy.to_dict()) if p.replan_policy else None,
    )


def _agent_json(a: Agent) -> dict[str, Any]:
    # Capacity only when set: agents of release 1 rows read the same either way.
    d: dict[str, Any] = {"id": a.id, "name": a.name, "capabilities": list(a.capabilities)}
    if a.capacity:
        d["capacity"] = a.capacity
    return d


def _task_from_row(r: Sequence[Any]) -> Task:
    schedule = Schedule(r[16], r[17]) if r[16] is not None else None
    return Task(
        id=r[0],
        plan_id=r[1],
        title=r[2],
        description=r[3],
        priority=TaskPriority(r[4]),
        status=TaskStatus(r[5]),
        estimated_hours=r[6],
        actual_hours=r[7],
        progress=r[8],
        assigned_to=r[9],
        required_capabilities=_tuple(r[10]),
        parent_task_id=r[11],
        metadata=_mapping(r[12]),
        optimistic_hours=r[13],
        pessimistic_hours=r[14],
        acceptance_criteria=_tuple(r[15]),
        schedule=schedule,
        create_time=r[18],
        update_time=r[19],
        version=r[20],
        not_before=r[21],
        outputs=_mapping(r[22]),
        blocked_reason=r[23],
        dependencies=_tuple(r[24]),
    )


def _task_params(t: Task) -> tuple[Any, ...]:
    return (
        t.id,
        t.plan_id,
        t.title,
        t.description,
        int(t.priority),
        int(t.status),
        t.estimated_hours,
        t.actual_hours,
        t.progress,
        t.assigned_to,
        _dumps(list(t.required_capabilities)),
        t.parent_task_id,
        _dumps(dict(t.metadata)),
        t.optimistic_hours,
        t.pessimistic_hours,
        _dumps(list(t.acceptance_criteria)),
        t.schedule.start_offset_hours if t.schedule else None,
        t.schedule.end_offset_hours if t.schedule else None,
        t.create_time,
        t.update_time,
        t.version,
        t.not_before,
        _dumps(dict(t.outputs)),
        t.blocked_reason,
    )


_RECORD_COLS = (
    "id, plan_id, task_id, revision, category, decision, confidence, reason, state, trigger, "
    "tasks_added, tasks_changed, tasks_removed, failure, agent_id, new_agent_id, not_before, "
    "attempt, applied_revision, create_time"
)


def _record_from_row(r: Sequence[Any]) -> ReplanRecord:
    return ReplanRecord(
        id=r[0],
        plan_id=r[1],
        task_id=r[2],
        revision=r[3],
        category=r[4],
        decision=r[5],
        confidence=r[6],
        reason=r[7],
        state=ReplanState(r[8]),
        trigger=ReplanTrigger(r[9]),
        tasks_added=_tuple(r[10]),
        tasks_changed=_tuple(r[11]),
        tasks_removed=_tuple(r[12]),
        failure=json.loads(r[13]) if r[13] else None,
        agent_id=r[14],
        new_agent_id=r[15],
        not_before=r[16],
        attempt=r[17],
        applied_revision=r[18],
        create_time=r[19],
    )


def _record_params(x: ReplanRecord) -> tuple[Any, ...]:
    return (
        x.id,
        x.plan_id,
        x.task_id,
        x.revision,
        int(x.category),
        int(x.decision),
        x.confidence,
        x.reason,
        int(x.state),
        int(x.trigger),
        _dumps(list(x.tasks_added)),
        _dumps(list(x.tasks_changed)),
        _dumps(list(x.tasks_removed)),
        _dumps(dict(x.failure)) if x.failure is not None else None,
        x.agent_id,
        x.new_agent_id,
        x.not_before,
        x.attempt,
        x.applied_revision,
        x.create_time,
    )


class SqliteReadTx:
    """`ReadTx` over a sqlite3 connection; the store opens and ends the transaction."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        tasks: TaskCache | None = None,
        lookups: Lookups | None = None,
    ) -> None:
        self._c = conn
        # Both only for a connection used by one thread (the caches are not thread-safe);
        # `lookups` only for statements that each see the latest commit (no snapshot).
        self._tasks = tasks
        self._lookups = lookups

    def _remembered(self, kind: str, key: str) -> Any:
        return self._lookups.get((kind, key)) if self._lookups is not None else None

    def _remember(self, kind: str, key: str, value: Any) -> Any:
        if self._lookups is not None and value is not None:
            self._lookups.put((kind, key), value)
        return value

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._c.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        # fetchall, not fetchone: a statement left unfinished would still be "in progress"
        # at COMMIT (and an UPDATE ... RETURNING must run to its end).
        rows = self._c.execute(sql, params).fetchall()
        return rows[0] if rows else None

    def schema_objects(self) -> int:
        """How many tables and indexes the schema has (a trivial query for health checks)."""
        return int(self._one("SELECT count(*) FROM sqlite_master")[0])

    def get_plan(self, plan_id: str) -> Plan | None:
        plan = self._remembered("plan", plan_id)
        if plan is not None:
            return plan
        row = self._one(f"SELECT {_PLAN_COLS} FROM plans WHERE id = ?", (plan_id,))
        return self._remember("plan", plan_id, _plan_from_row(row) if row else None)

    def get_task(self, task_id: str) -> Task | None:
        task = self._remembered("task", task_id)
        if task is not None:
            return task
        if self._tasks is not None:
            row = self._one("SELECT version FROM tasks WHERE id = ?", (task_id,))
            task = self._cached_tasks([(task_id, row[0])])[0] if row else None
        else:
            row = self._one(f"SELECT {_TASK_COLS} FROM tasks t WHERE t.id = ?", (task_id,))
            task = _task_from_row(row) if row else None
        return self._remember("task", task_id, task)

    def _cached_tasks(self, keys: Sequence[tuple[str, int]]) -> list[Task]:
        """The tasks named by (id, version) keys read in this transaction, in order; only
        those not in the cache are read and decoded."""
        assert self._tasks is not None
        cache = self._tasks
        cached = cache.get_many(keys)
        if all_present(cached):  # a page read again: nothing to decode
            return cached  # type: ignore[return-value]  # all_present: no None in it
        found: dict[str, Task] = {}
        missing: list[str] = []
        for key, task in zip(keys, cached, strict=True):
            if task is None:
                missing.append(key[0])
            else:
                found[key[0]] = task
        for i in range(0, len(missing), 500):  # far below SQLite's bound-parameter limit
            chunk = missing[i : i + 500]
            for row in self._all(
                f"SELECT {_TASK_COLS} FROM tasks t WHERE t.id IN ({', '.join('?' * len(chunk))})",
                chunk,
            ):
                task = _task_from_row(row)
                cache.put((task.id, task.version), task)
                found[task.id] = task
        return [found[key[0]] for key in keys]

    def list_plans(self, q: PlanQuery) -> tuple[list[tuple[int, Plan]], int]:
        where, params = ["1 = 1"], list[object]()
        if q.project_id:
            where.append("project_id = ?")
            params.append(q.project_id)
        if q.status:
            where.append("status = ?")
            params.append(q.status)
        cond = " AND ".join(where)
        total = (self._one(f"SELECT count(*) FROM plans WHERE {cond}", params))[0]
        rows = self._all(
            f"SELECT seq, {_PLAN_COLS} FROM plans WHERE {cond} AND seq > ? ORDER BY seq LIMIT ?",
            [*params, q.after_seq, q.limit],
        )
        return [(r[0], _plan_from_row(r[1:])) for r in rows], total

    def list_tasks(self, q: TaskQuery, task_count: int) -> tuple[list[tuple[int, Task]], int]:
        params: list[Any]
        if q.project_id:
            # The project's plans by `plans_by_project`, then each plan's tasks by an index
            # of tasks that leads with plan_id (the filters pick which one).
            where = ["t.plan_id IN (SELECT id FROM plans WHERE project_id = ?)"]
            params = [q.project_id]
        else:
            where, params = ["t.plan_id = ?"], [q.plan_id]
        if q.status:
            where.append("t.status = ?")
            params.append(q.status)
        if q.assigned_to:
            where.append("t.assigned_to = ?")
            params.append(q.assigned_to)
        if q.priority:
            where.append("t.priority = ?")
            params.append(q.priority)
        cond = " AND ".join(where)
        if q.project_id and not (q.status or q.assigned_to or q.priority):
            total = self._one(
                "SELECT coalesce(sum(task_count), 0) FROM plans WHERE project_id = ?",
                (q.project_id,),
            )[0]
        elif not (q.status or q.assigned_to or q.priority):
            total = task_count  # kept by triggers: O(1), not a count
        else:
            total = (self._one(f"SELECT count(*) FROM tasks t WHERE {cond}", params))[0]
        if self._tasks is not None:
            keys = self._all(
                f"SELECT t.seq, t.id, t.version FROM tasks t WHERE {cond} AND t.seq > ? "
                "ORDER BY t.seq LIMIT ?",
                [*params, q.after_seq, q.limit],
            )
            tasks = self._cached_tasks([(k[1], k[2]) for k in keys])
            return [(k[0], t) for k, t in zip(keys, tasks, strict=True)], total
        rows = self._all(
            f"SELECT t.seq, {_TASK_COLS} FROM tasks t WHERE {cond} AND t.seq > ? "
            "ORDER BY t.seq LIMIT ?",
            [*params, q.after_seq, q.limit],
        )
        return [(r[0], _task_from_row(r[1:])) for r in rows], total

    def plan_tasks(self, plan_id: str) -> list[Task]:
        rows = self._all(
            f"SELECT {_TASK_COLS} FROM tasks t WHERE t.plan_id = ? ORDER BY t.seq", (plan_id,)
        )
        return [_task_from_row(r) for r in rows]

    def plan_edges(self, plan_id: str) -> dict[str, list[str]]:
        edges: dict[str, list[str]] = {}
        rows = self._all(
            "SELECT task_id, depends_on FROM task_dependencies WHERE plan_id = ? "
            "ORDER BY task_id, position",
            (plan_id,),
        )
        for task_id, dep in rows:
            edges.setdefault(task_id, []).append(dep)
        return edges

    def plan_parents(self, plan_id: str) -> dict[str, str]:
        rows = self._all(
            "SELECT id, parent_task_id FROM tasks WHERE plan_id = ? AND parent_task_id != ''",
            (plan_id,),
        )
        return {r[0]: r[1] for r in rows}

    def existing_task_ids(self, plan_id: str, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), 500):  # stay far below SQLite's bound-parameter limit
            chunk = list(ids[i : i + 500])
            rows = self._all(
                f"SELECT id FROM tasks WHERE plan_id = ? AND id IN ({', '.join('?' * len(chunk))})",
                [plan_id, *chunk],
            )
            found.update(r[0] for r in rows)
        return found

    def dependents(self, task_id: str) -> list[str]:
        rows = self._all(
            "SELECT d.task_id FROM task_dependencies d JOIN tasks t ON t.id = d.task_id "
            "WHERE d.depends_on = ? ORDER BY t.seq",
            (task_id,),
        )
        return [r[0] for r in rows]

    def plan_size(self, plan_id: str) -> tuple[int, int] | None:
        size = self._remembered("plan_size", plan_id)
        if size is not None:
            return size
        row = self._one("SELECT revision, task_count FROM plans WHERE id = ?", (plan_id,))
        return self._remember("plan_size", plan_id, (int(row[0]), int(row[1])) if row else None)

    def children(self, task_id: str) -> list[str]:
        rows = self._all(
            "SELECT id FROM tasks WHERE parent_task_id = ? AND parent_task_id != '' ORDER BY seq",
            (task_id,),
        )
        return [r[0] for r in rows]

    def completed_tasks(
        self, *, plan_id: str = "", project_id: str = "", limit: int = 5000
    ) -> list[Task]:
        if project_id:
            cond, param = "t.plan_id IN (SELECT id FROM plans WHERE project_id = ?)", project_id
        else:
            cond, param = "t.plan_id = ?", plan_id
        rows = self._all(
            f"SELECT {_TASK_COLS} FROM tasks t WHERE {cond} AND t.status = ? "
            "AND t.actual_hours > 0 ORDER BY t.seq DESC LIMIT ?",
            (param, int(TaskStatus.DONE), limit),
        )
        return [_task_from_row(r) for r in rows]

    def get_idempotency(self, request_id: str) -> IdempotencyRecord | None:
        row = self._one(
            "SELECT request_id, method, fingerprint, response, create_time "
            "FROM idempotency_keys WHERE request_id = ?",
            (request_id,),
        )
        if row is None:
            return None
        return IdempotencyRecord(row[0], row[1], row[2], json.loads(row[3]), row[4])

    def changes(
        self, plan_id: str, after_revision: int, limit: int
    ) -> list[tuple[int, ChangeRecord]]:
        rows = self._all(
            "SELECT revision, kind, entity_type, entity_id, snapshot FROM plan_changes "
            "WHERE plan_id = ? AND revision > ? ORDER BY revision, position LIMIT ?",
            (plan_id, after_revision, limit),
        )
        return [(r[0], ChangeRecord(r[1], r[2], r[3], json.loads(r[4]))) for r in rows]

    def agent_availability(self, plan_id: str) -> dict[str, Availability]:
        rows = self._all(
            "SELECT agent_id, available, until, reason, last_heartbeat, timed_out "
            "FROM agent_availability WHERE plan_id = ?",
            (plan_id,),
        )
        return {r[0]: Availability(r[0], bool(r[1]), r[2], r[3], r[4], bool(r[5])) for r in rows}

    def stale_heartbeats(self, before: int) -> list[tuple[str, str, int]]:
        rows = self._all(
            "SELECT plan_id, agent_id, last_heartbeat FROM agent_availability "
            "WHERE available = 1 AND last_heartbeat > 0 AND last_heartbeat < ? "
            "ORDER BY last_heartbeat LIMIT 1000",
            (before,),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def get_replan_record(self, record_id: str) -> ReplanRecord | None:
        row = self._one(f"SELECT {_RECORD_COLS} FROM replan_records WHERE id = ?", (record_id,))
        return _record_from_row(row) if row else None

    def replan_records(
        self, plan_id: str, task_id: str, after_seq: int, limit: int
    ) -> tuple[list[tuple[int, ReplanRecord]], int]:
        cond, params = "plan_id = ?", [plan_id]
        if task_id:
            cond += " AND task_id = ?"
            params.append(task_id)
        total = self._one(f"SELECT count(*) FROM replan_records WHERE {cond}", params)[0]
        rows = self._all(
            f"SELECT seq, {_RECORD_COLS} FROM replan_records WHERE {cond} AND seq > ? "
            "ORDER BY seq LIMIT ?",
            [*params, after_seq, limit],
        )
        return [(r[0], _record_from_row(r[1:])) for r in rows], int(total)

    def task_replan_records(self, task_id: str) -> list[ReplanRecord]:
        rows = self._all(
            f"SELECT {_RECORD_COLS} FROM replan_records WHERE task_id = ? ORDER BY seq",
            (task_id,),
        )
        return [_record_from_row(r) for r in rows]

    def change_rows(
        self, plan_id: str, after_revision: int, limit: int
    ) -> list[tuple[int, int, ChangeRecord]]:
        """Like `changes`, with each entry's commit time (µs): (revision, time, change)."""
        rows = self._all(
            "SELECT revision, create_time, kind, entity_type, entity_id, snapshot "
            "FROM plan_changes WHERE plan_id = ? AND revision > ? "
            "ORDER BY revision, position LIMIT ?",
            (plan_id, after_revision, limit),
        )
        return [(r[0], r[1], ChangeRecord(r[2], r[3], r[4], json.loads(r[5]))) for r in rows]

    def change_log_bounds(self, plan_id: str) -> tuple[int, int] | None:
        """The oldest and newest revision the plan's change log retains; None if none."""
        row = self._one(
            "SELECT min(revision), max(revision) FROM plan_changes WHERE plan_id = ?", (plan_id,)
        )
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]))


class SqliteWriteTx(SqliteReadTx):
    """`WriteTx` over the writer connection, inside the store's transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn)
        self.appended: list[tuple[str, int]] = []
        """(plan id, revision) of each `append_changes`, for the commit listeners; the
        store cuts off what a job that fails appended."""

    def insert_plan(self, plan: Plan) -> None:
        self._c.execute(_PLAN_INSERT, _plan_params(plan))

    def update_plan(self, plan: Plan) -> None:
        params = _plan_params(plan)
        self._c.execute(
            "UPDATE plans SET project_id=?, name=?, description=?, objectives=?, constraints=?, "
            "metadata=?, status=?, agents=?, create_time=?, update_time=?, version=?, revision=?, "
            "replan_policy=? WHERE id=?",
            (*params[1:], params[0]),
        )

    def delete_plan(self, plan_id: str) -> int:
        size = self.plan_size(plan_id)
        count = size[1] if size else 0
        # Edges first: tasks of one plan reference each other, and the cascade from plans
        # would otherwise check every edge row by row.
        self._c.execute("DELETE FROM task_dependencies WHERE plan_id = ?", (plan_id,))
        self._c.execute("DELETE FROM plans WHERE id = ?", (plan_id,))
        return count

    def bump_revision(self, plan_id: str, update_time: int) -> int:
        row = self._one(
            "UPDATE plans SET revision = revision + 1 WHERE id = ? RETURNING revision", (plan_id,)
        )
        return int(row[0])

    def insert_tasks(self, tasks: Sequence[Task]) -> None:
        self._c.executemany(_TASK_INSERT, [_task_params(t) for t in tasks])
        edges = [(t.plan_id, t.id, dep, i) for t in tasks for i, dep in enumerate(t.dependencies)]
        if edges:
            self._c.executemany(_EDGE_INSERT, edges)

    def update_task(self, task: Task, *, dependencies: bool = True) -> None:
        params = _task_params(task)
        self._c.execute(
            "UPDATE tasks SET plan_id=?, title=?, description=?, priority=?, status=?, "
            "estimated_hours=?, actual_hours=?, progress=?, assigned_to=?, "
            "required_capabilities=?, parent_task_id=?, metadata=?, optimistic_hours=?, "
            "pessimistic_hours=?, acceptance_criteria=?, schedule_start=?, schedule_end=?, "
            "create_time=?, update_time=?, version=?, not_before=?, outputs=?, blocked_reason=? "
            "WHERE id=?",
            (*params[1:], params[0]),
        )
        if not dependencies:
            return
        self._c.execute("DELETE FROM task_dependencies WHERE task_id = ?", (task.id,))
        edges = [(task.plan_id, task.id, dep, i) for i, dep in enumerate(task.dependencies)]
        if edges:
            self._c.executemany(_EDGE_INSERT, edges)

    def delete_task(self, task_id: str) -> None:
        self._c.execute("DELETE FROM tasks WHERE id = ?", (task_id,))

    def append_changes(
        self, plan_id: str, revision: int, changes: Sequence[ChangeRecord], create_time: int
    ) -> None:
        self.appended.append((plan_id, revision))
        self._c.executemany(
            "INSERT INTO plan_changes (plan_id, revision, position, kind, entity_type, "
            "entity_id, snapshot, create_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    plan_id,
                    revision,
                    i,
                    c.kind,
                    c.entity_type,
                    c.entity_id,
                    _dumps(c.snapshot),
                    create_time,
                )
                for i, c in enumerate(changes)
            ],
        )

    def prune_changes(
        self, after_plan_id: str, older_than: int, keep_revisions: int, limit: int
    ) -> tuple[int, str | None]:
        """Deletes the oldest revisions of the first plan (by id) after `after_plan_id`
        whose log has something to prune: revisions committed before `older_than` (µs)
        and not among the plan's last `keep_revisions` (a deleted plan keeps none), in
        revision order, stopping at the first one to keep, so that what remains is
        always an unbroken run up to the newest. About `limit` rows at most (whole
        revisions). Returns how many rows went and the plan id to continue after (the
        same one while it has more to prune), or None when every plan was looked at.

        Every statement seeks the primary key (plan_id, revision, position): a pass
        costs a few seeks per plan, never a scan of the log."""
        row = self._one(
            "SELECT plan_id FROM plan_changes WHERE plan_id > ? ORDER BY plan_id LIMIT 1",
            (after_plan_id,),
        )
        if row is None:
            return 0, None
        plan_id = row[0]
        newest = self._one("SELECT max(revision) FROM plan_changes WHERE plan_id = ?", (plan_id,))[
            0
        ]
        exists = self._one("SELECT 1 FROM plans WHERE id = ?", (plan_id,)) is not None
        floor = newest - keep_revisions if exists else newest
        rows = self._all(
            "SELECT revision, create_time FROM plan_changes WHERE plan_id = ? AND revision <= ? "
            "ORDER BY revision, position LIMIT ?",
            (plan_id, floor, limit),
        )
        upto = None
        for revision, create_time in rows:
            if create_time >= older_than:
                break
            upto = revision
        else:
            if len(rows) == limit and upto is not None:
                # More may follow: the last revision seen may go on past the limit, and
                # `revision <= upto` takes it whole; continue with this plan next time.
                deleted = self._c.execute(
                    "DELETE FROM plan_changes WHERE plan_id = ? AND revision <= ?",
                    (plan_id, upto),
                ).rowcount
                return deleted, after_plan_id
        if upto is None:
            return 0, plan_id
        deleted = self._c.execute(
            "DELETE FROM plan_changes WHERE plan_id = ? AND revision <= ?", (plan_id, upto)
        ).rowcount
        return deleted, plan_id

    def purge_idempotency(self, older_than: int) -> int:
        return self._c.execute(
            "DELETE FROM idempotency_keys WHERE create_time < ?", (older_than,)
        ).rowcount

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        self._c.execute(
            "INSERT INTO idempotency_keys (request_id, method, fingerprint, response, create_time) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                record.request_id,
                record.method,
                record.fingerprint,
                _dumps(record.response),
                record.create_time,
            ),
        )

    def put_availability(self, plan_id: str, a: Availability) -> None:
        self._c.execute(
            "INSERT INTO agent_availability (plan_id, agent_id, available, until, reason, "
            "last_heartbeat, timed_out) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (plan_id, agent_id) DO UPDATE SET available = excluded.available, "
            "until = excluded.until, reason = excluded.reason, "
            "last_heartbeat = excluded.last_heartbeat, timed_out = excluded.timed_out",
            (
                plan_id,
                a.agent_id,
                int(a.available),
                a.until,
                a.reason,
                a.last_heartbeat,
                int(a.timed_out),
            ),
        )

    def insert_replan_record(self, record: ReplanRecord) -> None:
        self._c.execute(
            f"INSERT INTO replan_records ({_RECORD_COLS}) "
            f"VALUES ({', '.join('?' * len(_RECORD_COLS.split(',')))})",
            _record_params(record),
        )

    def update_replan_record(self, record: ReplanRecord) -> None:
        cols = [c.strip() for c in _RECORD_COLS.split(",")][1:]
        params = _record_params(record)
        self._c.execute(
            f"UPDATE replan_records SET {', '.join(f'{c}=?' for c in cols)} WHERE id=?",
            (*params[1:], params[0]),
        )
