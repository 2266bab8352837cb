"""The transactions' statements on PostgreSQL (`ReadTx`, `WriteTx`).

The statements are SQLite's (`sqlite_tx.py`), which keep to SQL that both databases
run: one text for both, so that the stores cannot drift apart in what they mean. The
few dialect differences are translated here, once per statement text: `?` placeholders
become `%s`, and a task's dependencies are gathered with `json_agg` instead of
`json_group_array`.

A write transaction runs in psycopg's pipeline mode (see `PostgresStore._write_tx`): a
statement is sent at once, and its answer waited for only when asked for (a read's rows,
a rowcount), so the writes between two reads, and those after the last one, cost no
wait of their own. What differs in behaviour is overridden below: the revision bump does
not wait for its answer when the transaction read the revision (`bump_revision`), and a
request_id recorded meanwhile by another transaction (a unique violation, raised at the
latest when COMMIT is sent, before it runs) makes the store run this one again
(`is_idempotency_race`), which then finds and returns that one's result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors as pgerrors

from plansmith_server.domain.models import ChangeRecord, Plan, Task
from plansmith_server.storage.sqlite_tx import (
    _TASK_COLS,
    _TASK_INSERT_COLS,
    SqliteReadTx,
    SqliteWriteTx,
    TaskCache,
    _dumps,
    _task_from_row,
    _task_params,
)

_SQLITE_DEPS = (
    "(SELECT json_group_array(depends_on) FROM (SELECT depends_on FROM task_dependencies d "
    " WHERE d.task_id = t.id ORDER BY d.position))"
)
_PG_DEPS = (
    "(SELECT coalesce(json_agg(d.depends_on ORDER BY d.position)::text, '[]') "
    "FROM task_dependencies d WHERE d.task_id = t.id)"
)

_LOCK = "pg_advisory_xact_lock_shared(hashtextextended({}, 0))::text"
"""A plan's lock, taken shared by a transaction about to change the plan (see
`PgWriteTx._changing`); text: the function returns `void`."""

# Several rows in one statement, whatever their number (one text: prepared once): the
# columns as arrays, unnested. Each statement costs the client and the server more than
# a row does. Tasks are inserted in the order given: it is their `seq`, the order
# ListTasks pages in.
_TASK_TYPES = (
    "text text text text int4 int4 float8 float8 int4 text text text text float8 float8 text "
    "float8 float8 int8 int8 int8 int8 text text"
).split()
_TASK_ALIASES = [f"c{i}" for i in range(len(_TASK_TYPES))]
_TASKS_INSERT = (
    f"INSERT INTO tasks ({_TASK_INSERT_COLS}) SELECT {', '.join(_TASK_ALIASES)} FROM unnest("
    + ", ".join(f"?::{t}[]" for t in _TASK_TYPES)
    + f") WITH ORDINALITY AS r({', '.join(_TASK_ALIASES)}, n) ORDER BY n"
)
_EDGES_INSERT = (
    "INSERT INTO task_dependencies (plan_id, task_id, depends_on, position) "
    "SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::int4[])"
)
_CHANGES_INSERT = (
    "INSERT INTO plan_changes (plan_id, revision, position, kind, entity_type, entity_id, "
    "snapshot, create_time) SELECT ?, ?, c.n - 1, c.kind, c.entity_type, c.entity_id, "
    "c.snapshot, ? FROM unnest(?::text[], ?::text[], ?::text[], ?::text[]) "
    "WITH ORDINALITY AS c(kind, entity_type, entity_id, snapshot, n)"
)

_translated: dict[str, str] = {}


def translate(sql: str) -> str:
    """SQLite's statement text in PostgreSQL's dialect (remembered per text)."""
    out = _translated.get(sql)
    if out is None:
        out = sql.replace(_SQLITE_DEPS, _PG_DEPS).replace("%", "%%").replace("?", "%s")
        _translated[sql] = out
    return out


def is_idempotency_race(exc: BaseException) -> bool:
    """Whether `exc` says another transaction recorded the same request_id first: this
    one is rolled back and run again, and then finds (and returns) that one's result."""
    return isinstance(exc, pgerrors.UniqueViolation) and exc.diag.table_name == "idempotency_keys"


class _Answer:
    """A statement's answer in pipeline mode: waited for when read."""

    __slots__ = ("_cur", "_pipeline")

    def __init__(self, cur: psycopg.Cursor[Any], pipeline: psycopg.Pipeline) -> None:
        self._cur = cur
        self._pipeline = pipeline

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()

    @property
    def rowcount(self) -> int:
        if self._cur.pgresult is None:  # not answered yet: wait for it (and what is before)
            self._pipeline.sync()
        return self._cur.rowcount


class PgConnection:
    """The part of sqlite3's connection interface the statements use, on psycopg; with
    `pipeline`, in pipeline mode (a statement's answer waited for when read)."""

    def __init__(
        self, conn: psycopg.Connection[Any], pipeline: psycopg.Pipeline | None = None
    ) -> None:
        self.conn = conn
        self.pipeline = pipeline

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cur = self.conn.execute(translate(sql), list(params) if params else None)
        return cur if self.pipeline is None else _Answer(cur, self.pipeline)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(translate(sql), rows)


class PgReadTx(SqliteReadTx):
    """`ReadTx` on a PostgreSQL connection; the store opens and ends the transaction."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        tasks: TaskCache | None = None,
        lookups: Any = None,
        pipeline: psycopg.Pipeline | None = None,
    ) -> None:
        # The cache of decoded tasks is keyed by (id, version) read in this transaction,
        # so what another replica committed is never answered from it. `lookups` only
        # outside a snapshot: the remembered lookups on the event loop, or on a pool
        # thread what records the answers for the loop to remember (`pg_lookups.py`).
        # `pipeline`: the write transaction's (see `PgConnection`).
        SqliteReadTx.__init__(self, PgConnection(conn, pipeline), tasks, lookups)  # type: ignore[arg-type]

    def schema_objects(self) -> int:
        return int(
            self._one("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")[0]
        )


class PgWriteTx(PgReadTx, SqliteWriteTx):
    """`WriteTx` inside the store's write transaction (see `PostgresStore._write_tx`)."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        tasks: TaskCache | None = None,
        *,
        pipeline: psycopg.Pipeline | None = None,
        locked: frozenset[str] = frozenset(),
    ) -> None:
        PgReadTx.__init__(self, conn, tasks, pipeline=pipeline)
        self.appended: list[tuple[str, int]] = []
        """(plan id, revision) of each `append_changes`: what the store announces
        (NOTIFY) when it commits."""
        self.plans: set[str] = set()
        """The plans this transaction changed (whose lock a run again takes first)."""
        self._locked = locked
        self._revisions: dict[str, int] = {}
        """Plan id -> its revision as read or written in this transaction."""

    def _changing(self, plan_id: str) -> None:
        """Before the first change of a plan: waits while a transaction run again holds
        the plan's lock (see `PostgresStore._write_tx`)."""
        if plan_id in self.plans:
            return
        self.plans.add(plan_id)
        if plan_id not in self._locked:
            self._c.execute(f"SELECT {_LOCK.format('?')}", (plan_id,))

    def get_task(self, task_id: str) -> Task | None:
        """The task with its plan's revision and lock (`_changing`), in one statement: a
        write reads the tasks it changes, whose rows the cache seldom has (each change
        moves the version), then knows the revision it bumps (see `bump_revision`) and
        needs no statement of its own for the lock. (Taking the lock of a plan whose
        task it only reads makes it wait for a run again of that plan, no more.)"""
        row = self._one(
            f"SELECT {_TASK_COLS}, p.revision, "
            f"{_LOCK.format('t.plan_id')} FROM tasks t JOIN plans p ON p.id = t.plan_id "
            "WHERE t.id = ?",
            (task_id,),
        )
        if row is None:
            return None
        self.plans.add(row[1])
        self._revisions[row[1]] = row[-2]
        if self._tasks is None:
            return _task_from_row(row)
        task = self._tasks.get((row[0], row[20]))  # (id, version)
        if task is None:
            task = _task_from_row(row)
            self._tasks.put((task.id, task.version), task)
        return task

    def get_plan(self, plan_id: str) -> Plan | None:
        plan = super().get_plan(plan_id)
        if plan is not None:
            self._revisions[plan_id] = plan.revision
        return plan

    def plan_size(self, plan_id: str) -> tuple[int, int] | None:
        """A write reads a plan's size as it is about to add to it: the plan's lock
        (`_changing`) is taken in the same statement."""
        if plan_id in self.plans or plan_id in self._locked:
            size = super().plan_size(plan_id)
        else:
            row = self._one(
                f"SELECT revision, task_count, {_LOCK.format('id')} FROM plans WHERE id = ?",
                (plan_id,),
            )
            size = (int(row[0]), int(row[1])) if row else None
        if size is not None:
            self.plans.add(plan_id)
            self._revisions[plan_id] = size[0]
        return size

    def insert_plan(self, plan: Any) -> None:
        self.plans.add(plan.id)  # new: nobody else can be changing it
        super().insert_plan(plan)
        self._revisions[plan.id] = plan.revision

    def update_plan(self, plan: Any) -> None:
        self._changing(plan.id)
        super().update_plan(plan)
        self._revisions[plan.id] = plan.revision

    def delete_plan(self, plan_id: str) -> int:
        self._changing(plan_id)
        count = super().delete_plan(plan_id)
        self._revisions.pop(plan_id, None)
        return count

    def bump_revision(self, plan_id: str, update_time: int) -> int:
        """The plan's next revision. If this transaction read the revision, without
        waiting for the UPDATE's answer: at REPEATABLE READ the row it updates has the
        revision this transaction read (had another transaction changed the row since
        the snapshot, the UPDATE fails with a serialization failure), so the answer is
        known. Should that ever not hold, the CASE makes the UPDATE fail (NOT NULL)
        before COMMIT runs, rather than commit a revision other than the one returned."""
        self._changing(plan_id)
        known = self._revisions.get(plan_id)
        if known is None:
            revision = super().bump_revision(plan_id, update_time)
        else:
            self._c.execute(
                "UPDATE plans SET revision = CASE WHEN revision = ? THEN revision + 1 END "
                "WHERE id = ?",
                (known, plan_id),
            )
            revision = known + 1
        self._revisions[plan_id] = revision
        return revision

    # A task's insert, delete or move writes its plan's row too (the task count).

    def insert_tasks(self, tasks: Sequence[Task]) -> None:
        for plan_id in dict.fromkeys(t.plan_id for t in tasks):
            self._changing(plan_id)
        if len(tasks) < 2:
            super().insert_tasks(tasks)
            return
        columns = zip(*map(_task_params, tasks), strict=True)
        self._c.execute(_TASKS_INSERT, [list(c) for c in columns])
        edges = [(t.plan_id, t.id, dep, i) for t in tasks for i, dep in enumerate(t.dependencies)]
        if edges:
            self._c.execute(_EDGES_INSERT, [list(c) for c in zip(*edges, strict=True)])

    def append_changes(
        self, plan_id: str, revision: int, changes: Sequence[ChangeRecord], create_time: int
    ) -> None:
        if len(changes) < 2:
            super().append_changes(plan_id, revision, changes, create_time)
            return
        self.appended.append((plan_id, revision))
        self._c.execute(
            _CHANGES_INSERT,
            (
                plan_id,
                revision,
                create_time,
                [c.kind for c in changes],
                [c.entity_type for c in changes],
                [c.entity_id for c in changes],
                [_dumps(c.snapshot) for c in changes],
            ),
        )

    def update_task(self, task: Any, *, dependencies: bool = True) -> None:
        self._changing(task.plan_id)
        super().update_task(task, dependencies=dependencies)

    def delete_task(self, task_id: str) -> None:
        row = self._one("SELECT plan_id FROM tasks WHERE id = ?", (task_id,))
        if row is not None:
            self._changing(row[0])
        super().delete_task(task_id)
