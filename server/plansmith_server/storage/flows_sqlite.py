"""The flows' `FlowStore` on the server's SQLite database: the same file, connections,
group commit and migrations as plans (`SqliteStore`), its own tables (migration 5)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from plansmith_server.flows.model import Flow, FlowRun, RunStatus
from plansmith_server.flows.port import RunQuery
from plansmith_server.storage.sqlite import SqliteStore

T = TypeVar("T")

_JSON = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


def _connection(tx: Any) -> sqlite3.Connection:
    # The store hands its transactions' connection to the functions it runs; the flows'
    # statements run on it, inside the same transaction as any other write of the group.
    return tx._c


class SqliteFlowTx:
    """`FlowTx` over the connection of one of the store's transactions."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return self._c.execute(sql, params).fetchall()

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    # ---- flows -------------------------------------------------------------------------

    def get_flow(self, flow_id: str, version: int = 0) -> Flow | None:
        if version:
            row = self._one(
                "SELECT definition FROM flow_versions WHERE flow_id = ? AND version = ?",
                (flow_id, version),
            )
        else:
            row = self._one(
                "SELECT v.definition FROM flows f JOIN flow_versions v "
                "ON v.flow_id = f.id AND v.version = f.latest_version WHERE f.id = ?",
                (flow_id,),
            )
        return Flow.from_dict(json.loads(row[0])) if row else None

    def flow_stamp(self, flow_id: str, version: int = 0) -> tuple[int, int] | None:
        row = self._one(
            "SELECT v.version, json_extract(v.definition, '$.update_time') "
            "FROM flows f JOIN flow_versions v ON v.flow_id = f.id "
            "AND v.version = CASE WHEN ? = 0 THEN f.latest_version ELSE ? END WHERE f.id = ?",
            (version, version, flow_id),
        )
        return (row[0], row[1]) if row else None

    def list_flows(self, after_seq: int, limit: int) -> tuple[list[tuple[int, Flow]], int]:
        rows = self._all(
            "SELECT f.seq, v.definition FROM flows f JOIN flow_versions v "
            "ON v.flow_id = f.id AND v.version = f.latest_version "
            "WHERE f.seq > ? ORDER BY f.seq LIMIT ?",
            (after_seq, limit),
        )
        total = self._one("SELECT count(*) FROM flows")[0]
        return [(r[0], Flow.from_dict(json.loads(r[1]))) for r in rows], total

    def insert_flow(self, flow: Flow) -> None:
        self._c.execute(
            "INSERT INTO flows (id, latest_version) VALUES (?, ?)", (flow.id, flow.version)
        )
        self._insert_version(flow)

    def _insert_version(self, flow: Flow) -> None:
        self._c.execute(
            "INSERT INTO flow_versions (flow_id, version, definition) VALUES (?, ?, ?)",
            (flow.id, flow.version, _JSON.encode(flow.to_dict())),
        )

    def add_version(self, flow: Flow) -> None:
        self._insert_version(flow)
        self._c.execute("UPDATE flows SET latest_version = ? WHERE id = ?", (flow.version, flow.id))

    def delete_flow(self, flow_id: str) -> tuple[int, int]:
        versions = self._one("SELECT count(*) FROM flow_versions WHERE flow_id = ?", (flow_id,))[0]
        runs = self._one("SELECT count(*) FROM flow_runs WHERE flow_id = ?", (flow_id,))[0]
        self._c.execute("DELETE FROM flows WHERE id = ?", (flow_id,))  # cascades
        return versions, runs

    # ---- runs --------------------------------------------------------------------------

    def count_runs(self, flow_id: str, status: RunStatus) -> int:
        row = self._one(
            "SELECT count(*) FROM flow_runs WHERE flow_id = ? AND status = ?",
            (flow_id, int(status)),
        )
        return int(row[0])

    def get_run(self, run_id: str) -> FlowRun | None:
        row = self._one("SELECT body FROM flow_runs WHERE id = ?", (run_id,))
        return FlowRun.from_dict(json.loads(row[0])) if row else None

    def insert_run(self, run: FlowRun) -> None:
        self._c.execute(
            "INSERT INTO flow_runs (id, flow_id, status, body, message, completed_path) "
            "VALUES (?, ?, ?, ?, ?, '[]')",
            (run.id, run.flow_id, int(run.status), _JSON.encode(run.to_dict()), run.user_message),
        )

    def update_run(self, run: FlowRun, completed_path: tuple[str, ...] = ()) -> None:
        self._c.execute(
            "UPDATE flow_runs SET status = ?, body = ?, completed_path = ? WHERE id = ?",
            (
                int(run.status),
                _JSON.encode(run.to_dict()),
                _JSON.encode(list(completed_path)),
                run.id,
            ),
        )

    def list_runs(self, q: RunQuery) -> tuple[list[tuple[int, FlowRun]], int]:
        where = ["seq > ?"]
        params: list[Any] = [q.after_seq]
        if q.flow_id:
            where.append("flow_id = ?")
            params.append(q.flow_id)
        if q.status:
            where.append("status = ?")
            params.append(int(q.status))
        cond = " AND ".join(where)
        rows = self._all(
            f"SELECT seq, body FROM flow_runs WHERE {cond} ORDER BY seq LIMIT ?",
            (*params, q.limit),
        )
        total = self._one(
            f"SELECT count(*) FROM flow_runs WHERE {' AND '.join(where[1:]) or '1 = 1'}",
            tuple(params[1:]),
        )[0]
        return [(r[0], FlowRun.from_dict(json.loads(r[1]))) for r in rows], total

    def completed_paths(self, flow_id: str, limit: int) -> list[tuple[str, tuple[str, ...]]]:
        rows = self._all(
            "SELECT message, completed_path FROM flow_runs WHERE flow_id = ? AND status = ? "
            "ORDER BY seq DESC LIMIT ?",
            (flow_id, int(RunStatus.COMPLETED), limit),
        )
        return [(r[0], tuple(json.loads(r[1]))) for r in rows]

    def trim_completed(self, flow_id: str, keep: int) -> int:
        cur = self._c.execute(
            "DELETE FROM flow_runs WHERE flow_id = ? AND status = ? AND seq NOT IN ("
            "SELECT seq FROM flow_runs WHERE flow_id = ? AND status = ? "
            "ORDER BY seq DESC LIMIT ?)",
            (flow_id, int(RunStatus.COMPLETED), flow_id, int(RunStatus.COMPLETED), keep),
        )
        return cur.rowcount


class SqliteFlowStore:
    """`FlowStore` through the server's `SqliteStore`."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    async def read(self, fn: Callable[[SqliteFlowTx], T], *, bulk: bool = False) -> T:
        return await self.store.read(lambda tx: fn(SqliteFlowTx(_connection(tx))), bulk=bulk)

    def within(self, write_tx: Any) -> SqliteFlowTx:
        return SqliteFlowTx(_connection(write_tx))
