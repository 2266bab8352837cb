"""How long writes have been kept from the database's write lock, for the health status.

Another process holding the write lock (a second server, a `sqlite3` shell, a backup)
makes every write wait, then fail UNAVAILABLE "database is locked", while reads go on;
a probe that only reads would keep saying SERVING. The store tells this watch when a
write group finds the lock taken and when one gets it; health asks how long the lock has
been out of reach.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class LockWatch:
    """Since when writes have not been able to take the write lock (None: they can).

    Updated from the event loop and the writer thread; each update is one assignment."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.since: float | None = None
        """When a write first found the lock taken, since the last time one got it."""
        self.waiting = 0
        """Write groups waiting for the lock right now."""

    def found_taken(self) -> None:
        """A write group found the lock taken and is about to wait for it."""
        if self.since is None:
            self.since = self.clock()
        self.waiting += 1

    def waited(self, got_it: bool) -> None:
        """The group that `found_taken` stopped waiting: it has the lock, or gave up."""
        self.waiting -= 1
        if got_it:
            self.since = None

    def got_it(self) -> None:
        """A write (or the probe) took the lock."""
        self.since = None

    def blocked_for(self) -> float:
        """Seconds writes have been kept from the lock (0 when they are not)."""
        since = self.since
        return 0.0 if since is None else max(0.0, self.clock() - since)
