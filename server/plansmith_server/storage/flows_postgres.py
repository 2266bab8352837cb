"""The flows' `FlowStore` on the server's PostgreSQL database: the same statements as on
SQLite (`flows_sqlite.py`, run through the PostgreSQL dialect of `postgres_tx.py`), in the
same transactions as every other write; its tables are PostgreSQL migration 2."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from plansmith_server.storage.flows_sqlite import SqliteFlowTx, _connection
from plansmith_server.storage.postgres import PostgresStore

T = TypeVar("T")


class PgFlowTx(SqliteFlowTx):
    """`FlowTx` on a PostgreSQL transaction: one statement differs (JSON field access)."""

    def flow_stamp(self, flow_id: str, version: int = 0) -> tuple[int, int] | None:
        row = self._one(
            "SELECT v.version, (v.definition::jsonb ->> 'update_time')::bigint "
            "FROM flows f JOIN flow_versions v ON v.flow_id = f.id "
            "AND v.version = CASE WHEN ? = 0 THEN f.latest_version ELSE ? END WHERE f.id = ?",
            (version, version, flow_id),
        )
        return (row[0], row[1]) if row else None


class PgFlowStore:
    """`FlowStore` through the server's `PostgresStore`."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    async def read(self, fn: Callable[[PgFlowTx], T], *, bulk: bool = False) -> T:
        return await self.store.read(lambda tx: fn(PgFlowTx(_connection(tx))), bulk=bulk)

    def within(self, write_tx: Any) -> PgFlowTx:
        return PgFlowTx(_connection(write_tx))
