"""Following a plan: the WatchPlan change feed, read from the plan's change log.

The change log (`plan_changes`) is the source of truth: every revision a watcher gets was
read from it, so a watcher sees what any writer committed, in this process or another
(another replica's write is found at the latest by the poll that precedes a heartbeat).
The store's commit notification (`Store.subscribe_commits`) only wakes the watchers
of a plan early.

Per watched plan one `_Tail` reads each new revision once, encodes it once (with the
API's `encode`) and keeps the most recent ones in a ring bounded in count and bytes; its
watchers take their next revisions from the ring. A watcher behind the ring (a replay
from an old revision, or one that fell behind) reads the log itself, a batch at a time.
A watcher holds no queue of its own: what it has not sent is in the log, so a slow
watcher costs the server no memory beyond one batch. Consecutive revisions it has not
sent yet go out together in one message (each exactly once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from plansmith_server.domain import validation as val
from plansmith_server.domain.models import ChangeRecord
from plansmith_server.domain.store import ReadTx, Store
from plansmith_server.errors import (
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    ResourceExhaustedError,
    UnavailableError,
)

log = logging.getLogger(__name__)

PLAN_DELETED = "PLAN_DELETED"

# Rows read from the log per read; a revision larger than this (a batch of many tasks) is
# read whole on its own.
_READ_ROWS = 2_000


@dataclass(frozen=True)
class WatchLimits:
    """How the feed bounds itself (the server's flags set the first four)."""

    max_watches: int = 256
    """Open watches beyond which a new one is refused (RESOURCE_EXHAUSTED)."""
    heartbeat_seconds: float = 10.0
    """Silence after which a watcher gets a heartbeat (and the log is polled)."""
    max_lag_seconds: float = 30.0
    """How long one message may take to be taken by a watcher's consumer while later
    revisions wait, before the watcher is cut (RESOURCE_EXHAUSTED with the revision to
    resume from)."""
    batch_revisions: int = 1_000
    """Most revisions in one message."""
    batch_bytes: int = 1 << 20
    """Encoded bytes in one message beyond which no further revision is added (a single
    revision always goes, whatever its size)."""
    ring_revisions: int = 1_024
    """Most revisions a plan's ring keeps for its watchers."""
    ring_bytes: int = 4 << 20
    """Most encoded bytes a plan's ring keeps."""


class Revision:
    """One revision of a plan as read from its change log, with its encoding."""

    __slots__ = ("changes", "commit_time", "deleted", "encoded", "number")

    def __init__(self, number: int, commit_time: int, changes: Sequence[ChangeRecord]) -> None:
        self.number = number
        self.commit_time = commit_time
        """µs since the epoch."""
        self.changes = tuple(changes)
        self.deleted = any(c.kind == PLAN_DELETED for c in self.changes)
        self.encoded: bytes = b""


@dataclass(frozen=True)
class Batch:
    """Consecutive revisions for one message, and the newest revision the feed knows."""

    revisions: tuple[Revision, ...]
    current: int


@dataclass(frozen=True)
class Heartbeat:
    """Nothing new for the heartbeat interval; the watcher has everything up to `current`."""

    current: int
    time: int


@dataclass(frozen=True)
class Deleted:
    """The plan was deleted at `revision`; the watch is over."""

    revision: int


WatchEvent = Batch | Heartbeat | Deleted


@dataclass(eq=False)
class _Tail:
    """The newest revisions of one watched plan, shared by its watchers."""

    plan_id: str
    last: int
    """The newest revision read from the log (the ring ends there)."""
    ring: deque[Revision] = field(default_factory=deque)
    ring_bytes: int = 0
    watchers: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    loader: asyncio.Task[None] | None = None
    again: bool = False
    """A commit was notified while loading: load once more."""

    @property
    def first(self) -> int:
        return self.ring[0].number if self.ring else self.last + 1

    def wake_all(self) -> None:
        self.wake.set()
        self.wake = asyncio.Event()


class PlanFeed:
    """The watches of every plan. `watch()` is the stream; `on_commit` is told of commits."""

    def __init__(
        self,
        store: Store,
        encode: Callable[[str, Revision], bytes],
        limits: WatchLimits | None = None,
        *,
        clock: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self.store = store
        self.encode = encode
        self.limits = limits or WatchLimits()
        self.clock = clock
        self.active = 0
        """Open watches."""
        self._tails: dict[str, _Tail] = {}
        self._closing = False
        self._unsubscribe = store.subscribe_commits(self.on_commit)

    # ---- notifications ---------------------------------------------------------------

    def on_commit(self, pairs: list[tuple[str, int]]) -> None:
        """Called by the store after a commit: wakes the tails of the plans it touched."""
        for plan_id, revision in pairs:
            tail = self._tails.get(plan_id)
            if tail is not None and revision > tail.last:
                self._load(tail)

    def _load(self, tail: _Tail) -> None:
        if tail.loader is not None:
            tail.again = True
            return
        tail.loader = asyncio.create_task(self._run_loader(tail), name="watch-load")

    async def _run_loader(self, tail: _Tail) -> None:
        try:
            while True:
                tail.again = False
                try:
                    revisions = await self._read(tail.plan_id, tail.last, bulk=False)
                except Exception as exc:  # the watchers retry at their next poll
                    log.warning("reading the change log of %s failed: %s", tail.plan_id, exc)
                    revisions = []
                if revisions and revisions[0].number == tail.last + 1:
                    self._keep(tail, revisions)
                    tail.wake_all()
                    tail.again = True  # a full read may have left more behind
                elif revisions:  # pruned past the tail: it starts again after the gap
                    tail.ring.clear()
                    tail.ring_bytes = 0
                    tail.last = revisions[0].number - 1
                    self._keep(tail, revisions)
                    tail.wake_all()
                if not tail.again or self._closing:
                    break
        finally:
            tail.loader = None
            tail.wake_all()  # also wakes those who waited for this poll

    def _keep(self, tail: _Tail, revisions: list[Revision]) -> None:
        limits = self.limits
        for r in revisions:
            tail.ring.append(r)
            tail.ring_bytes += len(r.encoded)
            tail.last = r.number
        while len(tail.ring) > 1 and (
            len(tail.ring) > limits.ring_revisions or tail.ring_bytes > limits.ring_bytes
        ):
            tail.ring_bytes -= len(tail.ring.popleft().encoded)

    async def _read(self, plan_id: str, after: int, *, bulk: bool) -> list[Revision]:
        """Whole revisions after `after` from the log (one read: a few thousand rows at
        most, or one revision however large), encoded."""

        def read(tx: ReadTx) -> list[tuple[int, int, ChangeRecord]]:
            rows = tx.change_rows(plan_id, after, _READ_ROWS)
            if len(rows) == _READ_ROWS:
                if rows[0][0] == rows[-1][0]:  # one large revision: read it whole
                    rows = tx.change_rows(plan_id, after, 1 << 62)
                    rows = [r for r in rows if r[0] == rows[0][0]]
                else:  # the last revision may go on beyond the rows read
                    last = rows[-1][0]
                    rows = [r for r in rows if r[0] != last]
            return rows

        rows = await self.store.read(read, bulk=bulk)
        out: list[Revision] = []
        i = 0
        while i < len(rows):
            j = i
            while j < len(rows) and rows[j][0] == rows[i][0]:
                j += 1
            r = Revision(rows[i][0], rows[i][1], [row[2] for row in rows[i:j]])
            r.encoded = self.encode(plan_id, r)
            out.append(r)
            i = j
        return out

    # ---- the stream ----------------------------------------------------------------

    async def watch(self, plan_id: str, from_revision: int | None) -> AsyncIterator[WatchEvent]:
        """The events of one watch (see the module's docstring and docs/replanning.md).
        `from_revision` None: from the plan's current revision."""
        v = val.Violations()
        val.check_id(v, "plan_id", plan_id)
        if from_revision is not None and from_revision < 0:
            v.add("from_revision", f"must not be negative, got {from_revision}")
        v.raise_if_any()
        if self._closing:
            raise _stopping(from_revision or 0)
        if self.active >= self.limits.max_watches:
            raise ResourceExhaustedError(
                f"server busy: {self.limits.max_watches} watches already open; retry later",
                retry_after=1.0,
                reason="TOO_MANY_WATCHES",
            )
        self.active += 1
        tail: _Tail | None = None
        try:

            def state(tx: ReadTx) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
                return tx.plan_size(plan_id), tx.change_log_bounds(plan_id)

            size, bounds = await self.store.read(state)
            if size is None and bounds is None:
                raise NotFoundError("plan", plan_id)
            # bounds is not None when size is (checked just above).
            current = size[0] if size is not None else bounds[1]  # type: ignore[index]
            if from_revision is None:
                from_revision = current
            if from_revision > current:
                raise InvalidArgumentError(
                    [
                        FieldViolation(
                            "from_revision",
                            f"is {from_revision}, above the plan's current revision {current}",
                        )
                    ]
                )
            oldest = bounds[0] if bounds is not None else current + 1
            if from_revision < current and from_revision + 1 < oldest:
                raise OutOfRangeError(plan_id, from_revision, oldest)
            if size is None and from_revision == current:  # deleted, and seen deleted
                yield Deleted(current)
                return
            tail = self._tails.get(plan_id)
            if tail is None:
                tail = self._tails[plan_id] = _Tail(plan_id, last=current)
            tail.watchers += 1
            self._load(tail)  # anything committed since `state` was read
            async for event in self._follow(tail, from_revision):
                yield event
        finally:
            self.active -= 1
            if tail is not None:
                tail.watchers -= 1
                if tail.watchers == 0 and self._tails.get(plan_id) is tail:
                    del self._tails[plan_id]
                    if tail.loader is not None:
                        tail.loader.cancel()

    async def _follow(self, tail: _Tail, from_revision: int) -> AsyncIterator[WatchEvent]:
        limits = self.limits
        sent = from_revision  # every revision up to here went out
        last_sent_at = time.monotonic()
        while True:
            if self._closing:
                raise _stopping(sent)
            nxt = sent + 1
            if tail.first <= nxt <= tail.last:
                revisions = self._from_ring(tail, nxt)
            elif nxt < tail.first:
                revisions = await self._read(tail.plan_id, sent, bulk=True)
                if not revisions:  # the log ends before the tail: pruned meanwhile
                    revisions = []
                elif revisions[0].number != nxt:
                    raise OutOfRangeError(tail.plan_id, sent, revisions[0].number)
                revisions = _limited(revisions, limits)
            else:
                revisions = []
            if revisions:
                before = time.monotonic()
                yield Batch(tuple(revisions), max(tail.last, revisions[-1].number))
                sent = revisions[-1].number
                last_sent_at = time.monotonic()
                if revisions[-1].deleted:
                    yield Deleted(sent)
                    return
                self._check_lag(tail, sent, last_sent_at - before)
                continue
            # Caught up with the tail: wait for a commit, or poll at the heartbeat.
            wake = tail.wake
            if tail.loader is None and sent >= tail.last:
                left = limits.heartbeat_seconds - (time.monotonic() - last_sent_at)
                if left <= 0:
                    # The heartbeat is due: look at the log first (a write of another
                    # process is found here), then say where the plan stands.
                    self._load(tail)
                    await self._wait(tail.wake, None)
                    if tail.last > sent or self._closing:
                        continue
                    yield Heartbeat(sent, self.clock())
                    last_sent_at = time.monotonic()
                    continue
                await self._wait(wake, left)
            else:
                await self._wait(wake, None)

    @staticmethod
    async def _wait(event: asyncio.Event, within: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await event.wait()

    def _from_ring(self, tail: _Tail, nxt: int) -> list[Revision]:
        ring = tail.ring
        start = nxt - tail.first
        end = min(len(ring), start + self.limits.batch_revisions)
        return _limited([ring[i] for i in range(start, end)], self.limits)

    def _check_lag(self, tail: _Tail, sent: int, blocked: float) -> None:
        """Cuts a watcher whose last message took longer than `max_lag_seconds` to be
        taken while later revisions wait: its consumer does not read (as fast as the
        plan changes). Replaying a long log fast is not lagging: each message goes at
        once."""
        if sent >= tail.last or blocked <= self.limits.max_lag_seconds:
            return
        err = ResourceExhaustedError(
            f"watcher too slow: its last message took {blocked:.1f}s to be taken (limit "
            f"{self.limits.max_lag_seconds:g}s) while revisions {sent + 1}..{tail.last} "
            f"wait; resume with from_revision={sent}",
            retry_after=1.0,
            reason="WATCHER_TOO_SLOW",
        )
        err.metadata.update({"resume_from_revision": str(sent), "current_revision": str(tail.last)})
        raise err

    # ---- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        """Ends every watch (UNAVAILABLE with the revision to resume from), for shutdown."""
        self._closing = True
        self._unsubscribe()
        for tail in list(self._tails.values()):
            tail.wake_all()

    def buffered_bytes(self) -> int:
        """Encoded bytes the rings hold in all (each bounded by `ring_bytes`)."""
        return sum(t.ring_bytes for t in self._tails.values())


def _limited(revisions: list[Revision], limits: WatchLimits) -> list[Revision]:
    out: list[Revision] = []
    size = 0
    for r in revisions:
        if out and (
            len(out) >= limits.batch_revisions or size + len(r.encoded) > limits.batch_bytes
        ):
            break
        out.append(r)
        size += len(r.encoded)
        if r.deleted:
            break
    return out


def _stopping(sent: int) -> UnavailableError:
    err = UnavailableError(
        f"server stopping; resume with from_revision={sent}",
        retry_after=1.0,
        reason="SERVER_STOPPING",
    )
    err.metadata["resume_from_revision"] = str(sent)
    return err
