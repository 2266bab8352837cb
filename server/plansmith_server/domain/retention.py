"""How long plans' change logs are kept: pruned in the background, a small batch at a time.

A revision is kept while it is younger than the retention age, and the last
`keep_revisions` revisions of every plan are kept whatever their age (a deleted plan's
log only for the age). What remains of a plan's log is always an unbroken run of
revisions up to its newest, so a watch from any revision in it misses nothing; a watch
from before it is OUT_OF_RANGE. Each batch is its own short write transaction (a few
hundred rows), with a pause between batches, so a long log (a release-1 database) is
pruned without holding up start-up or other writes.
"""

from __future__ import annotations

import asyncio

from plansmith_server.domain.store import Store, WriteTx

BATCH_ROWS = 500
"""Rows deleted per write transaction at most (whole revisions: a little more at times)."""


async def prune_change_log(
    store: Store,
    *,
    older_than: int,
    keep_revisions: int,
    batch_rows: int = BATCH_ROWS,
    pause: float = 0.005,
) -> int:
    """One pass over every plan's change log; returns how many rows went. `older_than`
    is the cut-off commit time in µs."""
    total = 0
    cursor = ""
    while True:

        def batch(tx: WriteTx, c: str = cursor) -> tuple[int, str | None]:
            return tx.prune_changes(c, older_than, keep_revisions, batch_rows)

        deleted, after = await store.write(batch)
        total += deleted
        if after is None:
            return total
        cursor = after
        if deleted:
            await asyncio.sleep(pause)  # let other writes take the lock between batches
