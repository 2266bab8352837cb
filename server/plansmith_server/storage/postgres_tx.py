"""The transactions' statements on PostgreSQL (`ReadTx`, `WriteTx`).

The statements are SQLite's (`sqlite_tx.py`), which keep to SQL that both databases
run: one text for both, so that the stores cannot drift apart in what they mean. The
few dialect differences are translated here, once per statement text: `?` placeholders
become `%s`, and a task's dependencies are gathered with `json_agg` instead of
`json_group_array`. What differs in behaviour is overridden below: recording a
request_id is an `INSERT ... ON CONFLICT DO NOTHING`, and a transaction that lost the
race for one is run again (`IdempotencyRace`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from plansmith_server.domain.store import IdempotencyRecord
from plansmith_server.storage.sqlite_tx import (
    SqliteReadTx,
    SqliteWriteTx,
    TaskCache,
    _dumps,
)

_SQLITE_DEPS = (
    "(SELECT json_group_array(depends_on) FROM (SELECT depends_on FROM task_dependencies d "
    " WHERE d.task_id = t.id ORDER BY d.position))"
)
_PG_DEPS = (
    "(SELECT coalesce(json_agg(d.depends_on ORDER BY d.position)::text, '[]') "
    "FROM task_dependencies d WHERE d.task_id = t.id)"
)

_translated: dict[str, str] = {}


def translate(sql: str) -> str:
    """SQLite's statement text in PostgreSQL's dialect (remembered per text)."""
    out = _translated.get(sql)
    if out is None:
        out = sql.replace(_SQLITE_DEPS, _PG_DEPS).replace("%", "%%").replace("?", "%s")
        _translated[sql] = out
    return out


class IdempotencyRace(Exception):
    """Another transaction recorded the same request_id first: this one is rolled back
    and run again, and then finds (and returns) that one's result."""


class PgConnection:
    """The part of sqlite3's connection interface the statements use, on psycopg."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(translate(sql), list(params) if params else None)

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
    ) -> None:
        # The cache of decoded tasks is keyed by (id, version) read in this transaction,
        # so what another replica committed is never answered from it. `lookups` only
        # outside a snapshot: the remembered lookups on the event loop, or on a pool
        # thread what records the answers for the loop to remember (`pg_lookups.py`).
        SqliteReadTx.__init__(self, PgConnection(conn), tasks, lookups)  # type: ignore[arg-type]

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
        locked: frozenset[str] = frozenset(),
    ) -> None:
        PgReadTx.__init__(self, conn, tasks)
        self.appended: list[tuple[str, int]] = []
        """(plan id, revision) of each `append_changes`: what the store announces
        (NOTIFY) when it commits."""
        self.plans: set[str] = set()
        """The plans this transaction changed (whose lock a run again takes first)."""
        self._locked = locked

    def _changing(self, plan_id: str) -> None:
        """Before the first change of a plan: waits while a transaction run again holds
        the plan's lock (see `PostgresStore._write_tx`)."""
        if plan_id in self.plans:
            return
        self.plans.add(plan_id)
        if plan_id not in self._locked:
            self._c.execute(
                "SELECT pg_advisory_xact_lock_shared(hashtextextended(?, 0))", (plan_id,)
            )

    def insert_plan(self, plan: Any) -> None:
        self.plans.add(plan.id)  # new: nobody else can be changing it
        super().insert_plan(plan)

    def update_plan(self, plan: Any) -> None:
        self._changing(plan.id)
        super().update_plan(plan)

    def delete_plan(self, plan_id: str) -> int:
        self._changing(plan_id)
        return super().delete_plan(plan_id)

    def bump_revision(self, plan_id: str, update_time: int) -> int:
        self._changing(plan_id)
        return super().bump_revision(plan_id, update_time)

    # A task's insert, delete or move writes its plan's row too (the task count).

    def insert_tasks(self, tasks: Sequence[Any]) -> None:
        for plan_id in dict.fromkeys(t.plan_id for t in tasks):
            self._changing(plan_id)
        super().insert_tasks(tasks)

    def update_task(self, task: Any, *, dependencies: bool = True) -> None:
        self._changing(task.plan_id)
        super().update_task(task, dependencies=dependencies)

    def delete_task(self, task_id: str) -> None:
        row = self._one("SELECT plan_id FROM tasks WHERE id = ?", (task_id,))
        if row is not None:
            self._changing(row[0])
        super().delete_task(task_id)

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        row = self._one(
            "INSERT INTO idempotency_keys (request_id, method, fingerprint, response, "
            "create_time) VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING "
            "RETURNING request_id",
            (
                record.request_id,
                record.method,
                record.fingerprint,
                _dumps(record.response),
                record.create_time,
            ),
        )
        if row is None:
            raise IdempotencyRace(record.request_id)
