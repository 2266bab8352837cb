"""The change log's reads and retention, as WatchPlan uses them, on every store."""

from __future__ import annotations

from typing import Any

from plansmith_server.domain.models import ChangeRecord
from tests.storage.contract.conftest import plan


async def _log(store: Any, plan_id: str, revisions: int, *, rows: int = 1, t0: int = 100) -> None:
    def body(tx: Any) -> None:
        for r in range(1, revisions + 1):
            changes = [
                ChangeRecord("TASK_UPDATED", "task", f"tsk_{r}_{i}", {}) for i in range(rows)
            ]
            tx.append_changes(plan_id, r, changes, t0 + r)

    await store.write(body)


async def _prune(store: Any, older_than: int, keep: int, rows: int) -> int:
    """A whole pass, a batch per transaction; rows deleted."""
    cursor: str | None = ""
    total = 0
    while cursor is not None:
        deleted, cursor = await store.write(
            lambda tx, c=cursor: tx.prune_changes(c, older_than, keep, rows)
        )
        total += deleted
    return total


async def test_rows_carry_commit_times_and_bounds_span_the_log(store: Any) -> None:
    await store.write(lambda tx: tx.insert_plan(plan(0)))
    await _log(store, "pln_0", 3, rows=2)
    rows = await store.read(lambda tx: tx.change_rows("pln_0", 1, 100))
    assert [(r, t) for r, t, _ in rows] == [(2, 102), (2, 102), (3, 103), (3, 103)]
    assert [c.entity_id for _, _, c in rows] == ["tsk_2_0", "tsk_2_1", "tsk_3_0", "tsk_3_1"]
    assert await store.read(lambda tx: tx.change_log_bounds("pln_0")) == (1, 3)
    assert await store.read(lambda tx: tx.change_log_bounds("pln_none")) is None


async def test_pruning_keeps_the_young_and_the_last_revisions_unbroken(store: Any) -> None:
    await store.write(lambda tx: tx.insert_plan(plan(0)))
    await _log(store, "pln_0", 10, rows=3)
    # Older than 106 and not among the last 2: revisions 1..5 go, in batches of 4 rows.
    assert await _prune(store, 106, 2, 4) == 15
    assert await store.read(lambda tx: tx.change_log_bounds("pln_0")) == (6, 10)
    # The last revisions stay whatever their age, while the plan exists...
    assert await _prune(store, 10**9, 2, 100) == 9
    assert await store.read(lambda tx: tx.change_log_bounds("pln_0")) == (9, 10)
    # ... and a deleted plan's log goes whole once old enough.
    await _log(store, "pln_gone", 4)
    assert await _prune(store, 10**9, 2, 100) == 4
    assert await store.read(lambda tx: tx.change_log_bounds("pln_gone")) is None
