"""Copies an SQLite database into an empty PostgreSQL one (`plansmith-server migrate`):
plans, tasks, change log, request ids, flows and their runs, agents' availability and
the replanning history, verified by counts and checksums.

Every table of the schema is copied whole, rows in their primary key's order, positions
(`seq`) kept as they are (so page tokens stay valid and creation order stays), and the
identity sequences moved past them. A plan's task count is not copied but recounted by
the PostgreSQL trigger as its tasks arrive, then compared with SQLite's. One transaction:
a failed copy leaves the target as empty as it was.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from plansmith_server.storage import migrations
from plansmith_server.storage.dsn import Dsn
from plansmith_server.storage.pg_migrations import MIGRATIONS as PG_MIGRATIONS

# (table, columns copied, order); plans' task_count is left to the trigger.
_PLAN_COLS = (
    "seq, id, project_id, name, description, objectives, constraints, metadata, status, "
    "agents, create_time, update_time, version, revision, replan_policy"
)
_TASK_COLS = (
    "seq, id, plan_id, title, description, priority, status, estimated_hours, actual_hours, "
    "progress, assigned_to, required_capabilities, parent_task_id, metadata, "
    "optimistic_hours, pessimistic_hours, acceptance_criteria, schedule_start, schedule_end, "
    "create_time, update_time, version, not_before, outputs, blocked_reason"
)
TABLES: list[tuple[str, str, str]] = [
    ("plans", _PLAN_COLS, "seq"),
    ("tasks", _TASK_COLS, "seq"),
    ("task_dependencies", "plan_id, task_id, depends_on, position", "task_id, depends_on"),
    (
        "plan_changes",
        "plan_id, revision, position, kind, entity_type, entity_id, snapshot, create_time",
        "plan_id, revision, position",
    ),
    (
        "idempotency_keys",
        "request_id, method, fingerprint, response, create_time",
        "request_id",
    ),
    ("flows", "seq, id, latest_version", "seq"),
    ("flow_versions", "flow_id, version, definition", "flow_id, version"),
    ("flow_runs", "seq, id, flow_id, status, body, message, completed_path", "seq"),
    (
        "agent_availability",
        "plan_id, agent_id, available, until, reason, last_heartbeat, timed_out",
        "plan_id, agent_id",
    ),
    (
        "replan_records",
        "seq, id, plan_id, task_id, revision, category, decision, confidence, reason, state, "
        "trigger, tasks_added, tasks_changed, tasks_removed, failure, agent_id, new_agent_id, "
        "not_before, attempt, applied_revision, create_time",
        "seq",
    ),
]
_IDENTITY = ("plans", "tasks", "flows", "flow_runs", "replan_records")
_BATCH = 1000


class CopyError(Exception):
    """The copy cannot be made, or did not verify (nothing was kept)."""


@dataclass(frozen=True)
class TableReport:
    table: str
    rows: int
    checksum: str


def _checksum(rows: Iterable[Sequence[Any]]) -> tuple[int, str]:
    """How many rows, and a SHA-256 over their values (each value by its `repr`, so a
    float or an integer must come back exactly as it was)."""
    h = hashlib.sha256()
    n = 0
    for row in rows:
        n += 1
        h.update(repr(tuple(row)).encode())
        h.update(b"\n")
    return n, h.hexdigest()


_TEXT_KEYS = {"task_id", "depends_on", "plan_id", "request_id", "flow_id", "agent_id"}


def _binary_order(order: str) -> str:
    """`order` for PostgreSQL, text compared byte by byte as SQLite does (whatever the
    database's collation)."""
    return ", ".join(
        f'{c.strip()} COLLATE "C"' if c.strip() in _TEXT_KEYS else c.strip()
        for c in order.split(",")
    )


def _sqlite_rows(conn: sqlite3.Connection, table: str, cols: str, order: str) -> Any:
    return conn.execute(f"SELECT {cols} FROM {table} ORDER BY {order}")


def copy_sqlite_to_postgres(source: str, target: Dsn) -> list[TableReport]:
    """Copies the SQLite database at `source` into the PostgreSQL database `target`,
    which must have no plans, tasks, change log or request ids yet (its schema is
    migrated here if need be). Returns each table's rows and checksum, the same on both
    sides; raises `CopyError` (the target unchanged) otherwise."""
    if not Path(source).is_file():
        raise CopyError(f"{source}: no such SQLite database")
    src = sqlite3.connect(Path(source).resolve().as_uri() + "?mode=ro", uri=True)
    try:
        version = src.execute("PRAGMA user_version").fetchone()[0]
        if version != len(migrations.MIGRATIONS):
            raise CopyError(
                f"{source} has schema version {version}, this server {len(migrations.MIGRATIONS)}:"
                " run this server on it once (it migrates the file), then copy"
            )
        try:
            dst = psycopg.connect(**target.params)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise CopyError(
                f"cannot connect to {target.display}: {target.scrub(str(exc))}"
            ) from None
        with dst:
            _migrate_target(dst)
            for table, _, _ in TABLES:
                found = dst.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()
                if found is not None and found[0]:
                    raise CopyError(
                        f"{target.display}: table {table} is not empty; copy into a new database"
                    )
            reports = []
            with dst.transaction():
                for table, cols, order in TABLES:
                    reports.append(_copy_table(src, dst, table, cols, order))
                for table in _IDENTITY:
                    dst.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'seq'), "
                        f"coalesce((SELECT max(seq) FROM {table}), 0) + 1, false)"
                    )
                counted = dst.execute("SELECT id, task_count FROM plans ORDER BY seq").fetchall()
                expected = src.execute("SELECT id, task_count FROM plans ORDER BY seq").fetchall()
                if [tuple(r) for r in counted] != [tuple(r) for r in expected]:
                    raise CopyError("the plans' task counts differ after the copy; nothing kept")
            return reports
    finally:
        src.close()


def _migrate_target(dst: psycopg.Connection[Any]) -> None:
    from plansmith_server.storage.pg_migrations import MIGRATION_LOCK, VERSION_TABLE

    dst.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        dst.execute(VERSION_TABLE)
        row = dst.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        current = int(row[0]) if row is not None else 0
        for version in range(current + 1, len(PG_MIGRATIONS) + 1):
            dst.execute(PG_MIGRATIONS[version - 1])
            dst.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
        dst.commit()
    finally:
        dst.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        dst.commit()


def _copy_table(
    src: sqlite3.Connection, dst: psycopg.Connection[Any], table: str, cols: str, order: str
) -> TableReport:
    n_cols = len(cols.split(","))
    overriding = " OVERRIDING SYSTEM VALUE" if table in _IDENTITY else ""
    insert = f"INSERT INTO {table} ({cols}){overriding} VALUES ({', '.join(['%s'] * n_cols)})"
    cursor = _sqlite_rows(src, table, cols, order)
    with dst.cursor() as cur:
        while batch := cursor.fetchmany(_BATCH):
            cur.executemany(insert, batch)
    n_src, sum_src = _checksum(_sqlite_rows(src, table, cols, order))
    n_dst, sum_dst = _checksum(
        dst.execute(f"SELECT {cols} FROM {table} ORDER BY {_binary_order(order)}")
    )
    if (n_src, sum_src) != (n_dst, sum_dst):
        raise CopyError(
            f"{table}: {n_src} rows (sha256 {sum_src[:12]}) in SQLite but {n_dst} "
            f"(sha256 {sum_dst[:12]}) after the copy; nothing kept"
        )
    return TableReport(table, n_src, sum_src)
