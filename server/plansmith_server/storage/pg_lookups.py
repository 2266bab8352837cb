"""Lookups by key remembered between commits on PostgreSQL, emptied by notification.

SQLite's store remembers the answers of lookups by key (a task, a plan, a plan's size:
`sqlite_tx.Lookups`) until anything commits, which the wal-index header tells it. On
PostgreSQL no local memory says that another replica committed; what does is the commit
notification every write transaction that changed a plan or a task sends (`NOTIFY
plansmith_commits`, delivered when and only if it commits), heard by the store's LISTEN
connection. So the same cache (the same keys and answers, an `LruCache` weighed by
`lookup_weight`) is emptied:

- when this replica's write transaction ends (committed, failed or of unknown outcome),
  before its caller hears of it;
- when the listening connection hears any commit notification (another replica's or its
  own);
- when the listener stops listening (connection lost, catching up from the change log)
  and again when it starts (after LISTEN and the catch-up, so nothing committed
  meanwhile is answered from memory).

It answers only while the listener is waiting for notifications on a connection that
proved alive recently (`valid_for` seconds since LISTEN, its last catch-up query or its
last notification) and whose socket holds no unread input: a notification that arrived
but was not read yet (the event loop serves calls in some order) sends the lookup to
the database (psycopg's `notifies()` reads the socket and hands over what it read in one
step of the listener's task: docs/library-notes.md). What no local check can see is a
notification PostgreSQL has not written to the socket yet: the writer's COMMIT returns
after the listening backends are signalled, and each writes the notification when it
next runs. A read on replica B that starts within that delivery time after A's commit
may be answered with what B remembered from before (docs/storage.md "Caches";
`bench/replicas.py` measures the delay). A connection that dies without a word (a cut
network) is noticed by TCP keepalive or, sooner, by the `valid_for` bound; until then
another replica's commits can be missed.

Thread-safety: the cache is touched on the event loop only. Answers from memory are
served there (`answer`); a lookup that needs the database runs on a pool thread with a
`Recorded` in place of the cache, and what it read is remembered back on the loop
(`remember`), only if nothing was invalidated since the lookup began (the `epoch`): an
answer read before a commit but remembered after its notification would be stale.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from typing import Any, TypeVar

from plansmith_server.lru import LruCache
from plansmith_server.storage.sqlite_tx import Lookups, lookup_weight

T = TypeVar("T")


class NeedsDatabase(Exception):
    """An answer from memory needs something the cache does not hold."""


class MemoryOnly:
    """The cache as a transaction's `lookups` on the event loop: a miss raises
    `NeedsDatabase` (and counts), so no statement runs."""

    def __init__(self, cache: Lookups) -> None:
        self._cache = cache

    def get(self, key: tuple[str, str], *, count_miss: bool = True) -> Any:
        value = self._cache.get(key)
        if value is None:
            raise NeedsDatabase
        return value

    def put(self, key: tuple[str, str], value: Any) -> None:
        pass


class NoConnection:
    """The connection of a transaction answered from memory: any statement means the
    answer needs the database."""

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        raise NeedsDatabase

    executemany = execute


class Recorded:
    """A transaction's `lookups` on a pool thread: nothing is answered, what is read is
    kept for `RememberedLookups.remember` on the loop."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.items: list[tuple[tuple[str, str], Any]] = []

    def get(self, key: tuple[str, str], *, count_miss: bool = True) -> Any:
        return None

    def put(self, key: tuple[str, str], value: Any) -> None:
        self.items.append((key, value))


class RememberedLookups:
    """The cache, whether it may answer now, and its invalidation (see the module
    docstring). Every method runs on the event loop. `size` 0: off (never answers)."""

    def __init__(self, size: int) -> None:
        self.enabled = size > 0
        self.cache: Lookups = LruCache(max(1, size), weight=lookup_weight)
        self.epoch = 0
        """Moves at every invalidation; an answer read at another epoch is not kept."""
        self._poll: select.poll | None = None  # the listening socket, while it listens
        self._live_until = 0.0  # monotonic time until which the listener counts as alive
        self._valid_for = 0.0
        self.heard_count = 0
        """Commit notifications heard (this replica's own included)."""

    @property
    def live(self) -> bool:
        """Whether the listener listens (it may still have unread input)."""
        return self._poll is not None

    def invalidate(self) -> None:
        self.epoch += 1
        self.cache.clear()

    def listening(self, fd: int, valid_for: float) -> None:
        """The listener (subscribed and caught up) waits for notifications on `fd`; it
        proved alive just now and will again within `valid_for` seconds."""
        if not self.enabled:
            return
        poll = select.poll()
        poll.register(fd, select.POLLIN | select.POLLPRI)
        self._poll = poll
        self._valid_for = valid_for
        self._live_until = time.monotonic() + valid_for
        self.invalidate()

    def heard(self) -> None:
        """A notification arrived: something committed, and the connection is alive."""
        self._live_until = time.monotonic() + self._valid_for
        self.heard_count += 1
        self.invalidate()

    def not_listening(self) -> None:
        self._poll = None
        self.invalidate()

    def usable(self) -> bool:
        """Whether the cache may answer now: listening, recently alive, nothing unread."""
        poll = self._poll
        return (
            poll is not None
            and time.monotonic() < self._live_until
            and not poll.poll(0)  # anything to read (or a hang-up): ask the database
        )

    def task(self, task_id: str) -> Any:
        """The remembered task, or None (uncounted: the lookup that follows counts)."""
        if not self.usable():
            return None
        return self.cache.get(("task", task_id), count_miss=False)

    def answer(self, fn: Callable[[Any], T], make_tx: Callable[[MemoryOnly], Any]) -> T:
        """`fn` answered from memory, or `NeedsDatabase`."""
        if not self.usable():
            raise NeedsDatabase
        return fn(make_tx(MemoryOnly(self.cache)))

    def recorder(self) -> Recorded | None:
        """What a lookup on the database fills, or None if it would not be kept."""
        return Recorded(self.epoch) if self._poll is not None else None

    def remember(self, recorded: Recorded | None) -> None:
        """Keeps what a lookup read, unless anything was invalidated since it began."""
        if recorded is None or recorded.epoch != self.epoch or self._poll is None:
            return
        for key, value in recorded.items:
            self.cache.put(key, value)
