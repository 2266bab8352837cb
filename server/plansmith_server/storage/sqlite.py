"""SQLite storage through aiosqlite: WAL, foreign keys, migrations, serialized writes.

One writer connection (writes are serialized by a lock and run as `BEGIN IMMEDIATE` ...
`COMMIT`) and one read-only connection for snapshots, so reads never wait behind writes.
`:memory:` has a single connection shared by both (a second one would see another
database), with reads serialized against writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
from opentelemetry import trace

from plansmith_server.domain.models import (
    Agent,
    ChangeRecord,
    Plan,
    PlanStatus,
    Schedule,
    Task,
    TaskPriority,
    TaskStatus,
)
from plansmith_server.errors import UnavailableError
from plansmith_server.storage.base import IdempotencyRecord, PlanQuery, TaskQuery
from plansmith_server.storage.migrations import MIGRATIONS
from plansmith_server.telemetry import Telemetry

log = logging.getLogger(__name__)
# aiosqlite logs every statement with its parameters at DEBUG: request payloads must never
# reach the logs, whatever the level, so its logger stays at WARNING.
logging.getLogger("aiosqlite").setLevel(logging.WARNING)

_PLAN_COLS = (
    "id, project_id, name, description, objectives, constraints, metadata, status, agents, "
    "create_time, update_time, version, revision"
)
# Dependencies come back in the caller's order as one JSON array, so a task is one row.
_TASK_COLS = (
    "t.id, t.plan_id, t.title, t.description, t.priority, t.status, t.estimated_hours, "
    "t.actual_hours, t.progress, t.assigned_to, t.required_capabilities, t.parent_task_id, "
    "t.metadata, t.optimistic_hours, t.pessimistic_hours, t.acceptance_criteria, "
    "t.schedule_start, t.schedule_end, t.create_time, t.update_time, t.version, "
    "(SELECT json_group_array(depends_on) FROM (SELECT depends_on FROM task_dependencies d "
    " WHERE d.task_id = t.id ORDER BY d.position)) AS deps"
)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


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
            Agent(a["id"], a.get("name", ""), tuple(a.get("capabilities", ())))
            for a in json.loads(r[8])
        ),
        create_time=r[9],
        update_time=r[10],
        version=r[11],
        revision=r[12],
    )


def _plan_params(p: Plan) -> tuple[Any, ...]:
    agents = [{"id": a.id, "name": a.name, "capabilities": list(a.capabilities)} for a in p.agents]
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
    )


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
        required_capabilities=tuple(json.loads(r[10])),
        parent_task_id=r[11],
        metadata=json.loads(r[12]),
        optimistic_hours=r[13],
        pessimistic_hours=r[14],
        acceptance_criteria=tuple(json.loads(r[15])),
        schedule=schedule,
        create_time=r[18],
        update_time=r[19],
        version=r[20],
        dependencies=tuple(json.loads(r[21])),
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
    )


class _Batch:
    """A group of writers sharing one transaction, and the outcome of its COMMIT."""

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.members = 0


class _SqliteReadTx:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._c = conn

    # One hand-off to the database thread per statement, which runs and finishes there:
    # no statement stays open between hand-offs (a COMMIT, or a concurrent single-statement
    # read on the same connection, would find it "in progress").
    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self._c.execute_fetchall(sql, params))

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = await self._c.execute_fetchall(sql, params)
        return rows[0] if rows else None

    async def get_plan(self, plan_id: str) -> Plan | None:
        row = await self._one(f"SELECT {_PLAN_COLS} FROM plans WHERE id = ?", (plan_id,))
        return _plan_from_row(row) if row else None

    async def get_task(self, task_id: str) -> Task | None:
        row = await self._one(f"SELECT {_TASK_COLS} FROM tasks t WHERE t.id = ?", (task_id,))
        return _task_from_row(row) if row else None

    async def list_plans(self, q: PlanQuery) -> tuple[list[tuple[int, Plan]], int]:
        where, params = ["1 = 1"], []
        if q.project_id:
            where.append("project_id = ?")
            params.append(q.project_id)
        if q.status:
            where.append("status = ?")
            params.append(q.status)
        cond = " AND ".join(where)
        total = (await self._one(f"SELECT count(*) FROM plans WHERE {cond}", params))[0]
        rows = await self._all(
            f"SELECT seq, {_PLAN_COLS} FROM plans WHERE {cond} AND seq > ? ORDER BY seq LIMIT ?",
            [*params, q.after_seq, q.limit],
        )
        return [(r[0], _plan_from_row(r[1:])) for r in rows], total

    async def list_tasks(self, q: TaskQuery) -> tuple[list[tuple[int, Task]], int]:
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
        total = (await self._one(f"SELECT count(*) FROM tasks t WHERE {cond}", params))[0]
        rows = await self._all(
            f"SELECT t.seq, {_TASK_COLS} FROM tasks t WHERE {cond} AND t.seq > ? "
            "ORDER BY t.seq LIMIT ?",
            [*params, q.after_seq, q.limit],
        )
        return [(r[0], _task_from_row(r[1:])) for r in rows], total

    async def plan_tasks(self, plan_id: str) -> list[Task]:
        rows = await self._all(
            f"SELECT {_TASK_COLS} FROM tasks t WHERE t.plan_id = ? ORDER BY t.seq", (plan_id,)
        )
        return [_task_from_row(r) for r in rows]

    async def plan_edges(self, plan_id: str) -> dict[str, list[str]]:
        edges: dict[str, list[str]] = {}
        rows = await self._all(
            "SELECT task_id, depends_on FROM task_dependencies WHERE plan_id = ? "
            "ORDER BY task_id, position",
            (plan_id,),
        )
        for task_id, dep in rows:
            edges.setdefault(task_id, []).append(dep)
        return edges

    async def existing_task_ids(self, plan_id: str, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), 500):  # stay far below SQLite's bound-parameter limit
            chunk = list(ids[i : i + 500])
            rows = await self._all(
                f"SELECT id FROM tasks WHERE plan_id = ? AND id IN ({', '.join('?' * len(chunk))})",
                [plan_id, *chunk],
            )
            found.update(r[0] for r in rows)
        return found

    async def dependents(self, task_id: str) -> list[str]:
        rows = await self._all(
            "SELECT d.task_id FROM task_dependencies d JOIN tasks t ON t.id = d.task_id "
            "WHERE d.depends_on = ? ORDER BY t.seq",
            (task_id,),
        )
        return [r[0] for r in rows]

    async def task_count(self, plan_id: str) -> int:
        row = await self._one("SELECT count(*) FROM tasks WHERE plan_id = ?", (plan_id,))
        return int(row[0])

    async def children(self, task_id: str) -> list[str]:
        rows = await self._all(
            "SELECT id FROM tasks WHERE parent_task_id = ? AND parent_task_id != '' ORDER BY seq",
            (task_id,),
        )
        return [r[0] for r in rows]

    async def completed_tasks(
        self, *, plan_id: str = "", project_id: str = "", limit: int = 5000
    ) -> list[Task]:
        if project_id:
            cond, param = "t.plan_id IN (SELECT id FROM plans WHERE project_id = ?)", project_id
        else:
            cond, param = "t.plan_id = ?", plan_id
        rows = await self._all(
            f"SELECT {_TASK_COLS} FROM tasks t WHERE {cond} AND t.status = ? "
            "AND t.actual_hours > 0 ORDER BY t.seq DESC LIMIT ?",
            (param, int(TaskStatus.DONE), limit),
        )
        return [_task_from_row(r) for r in rows]

    async def get_idempotency(self, request_id: str) -> IdempotencyRecord | None:
        row = await self._one(
            "SELECT request_id, method, fingerprint, response, create_time "
            "FROM idempotency_keys WHERE request_id = ?",
            (request_id,),
        )
        if row is None:
            return None
        return IdempotencyRecord(row[0], row[1], row[2], json.loads(row[3]), row[4])

    async def changes(
        self, plan_id: str, after_revision: int, limit: int
    ) -> list[tuple[int, ChangeRecord]]:
        rows = await self._all(
            "SELECT revision, kind, entity_type, entity_id, snapshot FROM plan_changes "
            "WHERE plan_id = ? AND revision > ? ORDER BY revision, position LIMIT ?",
            (plan_id, after_revision, limit),
        )
        return [(r[0], ChangeRecord(r[1], r[2], r[3], json.loads(r[4]))) for r in rows]


class _SqliteWriteTx(_SqliteReadTx):
    async def insert_plan(self, plan: Plan) -> None:
        await self._c.execute(
            f"INSERT INTO plans ({_PLAN_COLS}) VALUES ({', '.join('?' * 13)})", _plan_params(plan)
        )

    async def update_plan(self, plan: Plan) -> None:
        params = _plan_params(plan)
        await self._c.execute(
            "UPDATE plans SET project_id=?, name=?, description=?, objectives=?, constraints=?, "
            "metadata=?, status=?, agents=?, create_time=?, update_time=?, version=?, revision=? "
            "WHERE id=?",
            (*params[1:], params[0]),
        )

    async def delete_plan(self, plan_id: str) -> int:
        row = await self._one("SELECT count(*) FROM tasks WHERE plan_id = ?", (plan_id,))
        # Edges first: tasks of one plan reference each other, and the cascade from plans
        # would otherwise check every edge row by row.
        await self._c.execute("DELETE FROM task_dependencies WHERE plan_id = ?", (plan_id,))
        await self._c.execute("DELETE FROM plans WHERE id = ?", (plan_id,))
        return int(row[0])

    async def bump_revision(self, plan_id: str, update_time: int) -> int:
        row = await self._one(
            "UPDATE plans SET revision = revision + 1 WHERE id = ? RETURNING revision", (plan_id,)
        )
        return int(row[0])

    async def insert_tasks(self, tasks: Sequence[Task]) -> None:
        cols = _TASK_COLS.split(", (SELECT")[0].replace("t.", "")
        await self._c.executemany(
            f"INSERT INTO tasks ({cols}) VALUES ({', '.join('?' * 21)})",
            [_task_params(t) for t in tasks],
        )
        await self._c.executemany(
            "INSERT INTO task_dependencies (plan_id, task_id, depends_on, position) "
            "VALUES (?, ?, ?, ?)",
            [(t.plan_id, t.id, dep, i) for t in tasks for i, dep in enumerate(t.dependencies)],
        )

    async def update_task(self, task: Task) -> None:
        params = _task_params(task)
        await self._c.execute(
            "UPDATE tasks SET plan_id=?, title=?, description=?, priority=?, status=?, "
            "estimated_hours=?, actual_hours=?, progress=?, assigned_to=?, "
            "required_capabilities=?, parent_task_id=?, metadata=?, optimistic_hours=?, "
            "pessimistic_hours=?, acceptance_criteria=?, schedule_start=?, schedule_end=?, "
            "create_time=?, update_time=?, version=? WHERE id=?",
            (*params[1:], params[0]),
        )
        await self._c.execute("DELETE FROM task_dependencies WHERE task_id = ?", (task.id,))
        await self._c.executemany(
            "INSERT INTO task_dependencies (plan_id, task_id, depends_on, position) "
            "VALUES (?, ?, ?, ?)",
            [(task.plan_id, task.id, dep, i) for i, dep in enumerate(task.dependencies)],
        )

    async def delete_task(self, task_id: str) -> None:
        await self._c.execute("DELETE FROM tasks WHERE id = ?", (task_id,))

    async def append_changes(
        self, plan_id: str, revision: int, changes: Sequence[ChangeRecord], create_time: int
    ) -> None:
        await self._c.executemany(
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

    async def put_idempotency(self, record: IdempotencyRecord) -> None:
        await self._c.execute(
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


class SqliteStore:
    """The `Store` on an SQLite file (or `:memory:`)."""

    def __init__(
        self, path: str, *, synchronous: str = "FULL", telemetry: Telemetry | None = None
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.telemetry = telemetry or Telemetry.noop()
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        # Group commit (file databases): writers run one at a time, each in a savepoint of
        # one shared transaction; a committer task commits it once the writers queued at
        # that moment have run. One COMMIT (and one fsync) serves the whole group, and
        # each writer still returns only after its group's COMMIT.
        self._batch: _Batch | None = None
        self._commit_wanted = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None

    @property
    def in_memory(self) -> bool:
        return self.path == ":memory:"

    async def open(self) -> None:
        if not self.in_memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            w = self._writer
            await w.execute("PRAGMA busy_timeout = 5000")
            if not self.in_memory:
                await w.execute("PRAGMA journal_mode = WAL")
            await w.execute(f"PRAGMA synchronous = {self.synchronous}")
            await w.execute("PRAGMA foreign_keys = ON")
            await self._migrate(w)
            if self.in_memory:
                # One connection for reads and writes: a transaction left open for a group
                # would be seen (and nested into) by readers, so no group commit here.
                self._reader = w
                self._read_lock = self._write_lock
            else:
                self._committer = asyncio.create_task(self._commit_loop(), name="sqlite-commit")
                uri = f"file:{Path(self.path).resolve()}?mode=ro"
                self._reader = await aiosqlite.connect(uri, uri=True, isolation_level=None)
                await self._reader.execute("PRAGMA busy_timeout = 5000")
        except BaseException:
            await self.close()
            raise

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        async with conn.execute("PRAGMA user_version") as cur:
            current = (await cur.fetchone())[0]
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"database {self.path} has schema version {current}, newer than this server "
                f"knows ({len(MIGRATIONS)}); upgrade the server"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            log.info("applying schema migration %d to %s", version, self.path)
            await conn.execute("BEGIN IMMEDIATE")
            try:
                for stmt in MIGRATIONS[version - 1].split(";"):
                    if stmt.strip():
                        await conn.execute(stmt)
                await conn.execute(f"PRAGMA user_version = {version}")
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise

    @asynccontextmanager
    async def _observed(self, operation: str) -> AsyncIterator[None]:
        """A child span and a duration sample per transaction (the wait for the lock too)."""
        start = time.perf_counter()
        with self.telemetry.tracer.start_as_current_span(
            f"db.{operation}",
            kind=trace.SpanKind.CLIENT,
            attributes={"db.system": "sqlite", "db.operation": operation},
        ):
            try:
                yield
            finally:
                self.telemetry.db_duration.record(
                    (time.perf_counter() - start) * 1000, {"db.operation": operation}
                )

    # Ordering, not waiting, keeps transactions whole: aiosqlite runs a connection's
    # statements one by one in the order they were queued, and `await conn.execute()`
    # queues its statement before it first suspends. So a call cancelled at any await
    # has queued everything it awaited; it only has to queue the statement that ends the
    # transaction (ROLLBACK), and whatever the next caller queues comes after that.

    @asynccontextmanager
    async def read(self, *, snapshot: bool = True) -> AsyncIterator[_SqliteReadTx]:
        """Reads; `snapshot=False` is for a single statement, which SQLite already runs
        on one snapshot: no BEGIN/COMMIT round trips and no lock (but in memory, where
        the reader is the writer, reads wait for writes)."""
        conn = self._require(self._reader)
        if not snapshot and not self.in_memory:
            # One statement, one hand-off: the server span's duration covers it; a child
            # span per key lookup would cost more than the lookup.
            yield _SqliteReadTx(conn)
            return
        async with self._observed("read"), self._read_lock:
            await self._begin(conn, "BEGIN")
            try:
                yield _SqliteReadTx(conn)
            finally:
                await self._end(conn, "COMMIT")

    @asynccontextmanager
    async def write(self) -> AsyncIterator[_SqliteWriteTx]:
        conn = self._require(self._writer)
        if self._committer is None:
            async with self._observed("write"), self._write_lock:
                await self._begin(conn, "BEGIN IMMEDIATE")
                try:
                    yield _SqliteWriteTx(conn)
                except BaseException:
                    await self._end(conn, "ROLLBACK")
                    raise
                try:
                    await conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    await self._end(conn, "ROLLBACK")
                    raise UnavailableError(f"commit failed: {exc}") from exc
            return
        async with self._observed("write"):
            async with self._write_lock:
                batch = self._batch
                if batch is None:
                    await self._begin(conn, "BEGIN IMMEDIATE")
                    batch = self._batch = _Batch(asyncio.get_running_loop().create_future())
                batch.members += 1
                savepoint = f"w{batch.members}"
                await self._begin(conn, f"SAVEPOINT {savepoint}", undo=f"RELEASE {savepoint}")
                try:
                    yield _SqliteWriteTx(conn)
                except BaseException:
                    # Undo this writer only; the others of the group are not affected.
                    await self._end(conn, f"ROLLBACK TO {savepoint}")
                    await self._end(conn, f"RELEASE {savepoint}")
                    self._commit_wanted.set()  # close the group even if it is now empty
                    raise
                await conn.execute(f"RELEASE {savepoint}")
                self._commit_wanted.set()
            # Answer only once the group is durable. Shielded: a cancelled caller must not
            # cancel the group's future for the others.
            await asyncio.shield(batch.done)

    async def _commit_loop(self) -> None:
        while True:
            await self._commit_wanted.wait()
            self._commit_wanted.clear()
            # Writers already queued for the lock go first and join the group.
            async with self._write_lock:
                await self._commit_batch()

    async def _commit_batch(self) -> None:
        batch, self._batch = self._batch, None
        if batch is None:
            return
        conn = self._require(self._writer)
        try:
            await conn.execute("COMMIT")
        except sqlite3.Error as exc:
            await self._end(conn, "ROLLBACK")
            batch.done.set_exception(UnavailableError(f"commit failed: {exc}"))
        except asyncio.CancelledError:
            batch.done.set_exception(UnavailableError("server stopping: outcome unknown"))
            raise
        else:
            batch.done.set_result(None)
        # Marks a failure as seen: if every writer of the group was cancelled, nobody awaits
        # it, and asyncio would log "exception was never retrieved" (the writers that do
        # await it still get it).
        batch.done.exception()

    async def _begin(self, conn: aiosqlite.Connection, stmt: str, undo: str = "ROLLBACK") -> None:
        try:
            await conn.execute(stmt)
        except asyncio.CancelledError:
            # The statement is queued and will run: queue its undoing too.
            await self._end(conn, undo)
            raise
        except sqlite3.Error as exc:
            raise UnavailableError(f"database unavailable: {exc}") from exc

    @staticmethod
    async def _end(conn: aiosqlite.Connection, stmt: str) -> None:
        try:
            await conn.execute(stmt)
        except sqlite3.OperationalError as exc:
            # "no transaction is active": the statement that failed already ended it.
            log.debug("%s: %s", stmt, exc)

    def _require(self, conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if conn is None:
            raise UnavailableError("database is closed")
        return conn

    async def ping(self) -> None:
        conn = self._require(self._reader)
        try:
            async with conn.execute("SELECT count(*) FROM sqlite_master") as cur:
                await cur.fetchone()
        except (sqlite3.Error, ValueError) as exc:
            raise UnavailableError(f"database check failed: {exc}") from exc
        if not self.in_memory and not os.path.exists(self.path):
            raise UnavailableError(f"database file {self.path} is gone")

    async def purge_idempotency(self, older_than: int) -> int:
        async with self.write() as tx:
            cur = await tx._c.execute(
                "DELETE FROM idempotency_keys WHERE create_time < ?", (older_than,)
            )
            return cur.rowcount

    def size_bytes(self) -> int:
        """Size of the database and its write-ahead log on disk (0 in memory)."""
        if self.in_memory:
            return 0
        total = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                total += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return total

    async def close(self) -> None:
        if self._committer is not None:
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer
            self._committer = None
            if self._writer is not None:
                async with self._write_lock:
                    await self._commit_batch()
        reader, writer = self._reader, self._writer
        self._reader = self._writer = None
        if reader is not None and reader is not writer:
            await reader.close()
        if writer is not None:
            await writer.close()
