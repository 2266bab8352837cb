"""The `Store` on SQLite: WAL, foreign keys, migrations, group commit.

Where each transaction runs, and why (measured in docs/library-notes.md and `bench/load.py`):
a hand-off to another thread costs more than most of our statements, so a transaction is
one synchronous function that runs whole where it is cheapest.

- Writes are serialized and committed in groups: the writes that arrive while a group
  commits run together as the next group, one `BEGIN IMMEDIATE`, a savepoint per write (a
  failing write rolls back alone), one `COMMIT` and one fsync for the group. Each caller
  gets its own result only after its group's COMMIT. Where a group's statements run (the
  event loop, or the writer thread for bulk writes) is explained above `_run_group`.
- Short reads (a key, a page) run on the event loop through a read-only connection: in
  WAL mode a reader never waits for the writer, and a lookup costs a few microseconds,
  less than a hand-off. Its busy timeout is short, so a rare lock (WAL recovery) becomes
  UNAVAILABLE with a retry delay instead of a stalled loop.
- Lookups by key (a task, a plan, a plan's size) are remembered until the next commit by
  any connection, which the wal-index header in shared memory tells (`wal_index.py`):
  reading it again while nothing changes costs a memory read, not an SQLite read.
- Bulk reads (a whole plan, history) run on a reader thread with its own connection, so
  they never hold up the event loop.

`:memory:` has a single connection (a second one would see another database): reads and
writes all run on the writer thread, one after the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from plansmith_server.domain.models import Task
from plansmith_server.domain.store import CommitListener, CommitListeners
from plansmith_server.errors import UnavailableError
from plansmith_server.lru import LruCache
from plansmith_server.storage.lock_watch import LockWatch
from plansmith_server.storage.migrations import MIGRATIONS, statements
from plansmith_server.storage.observed import DB_ATTRIBUTES, observed
from plansmith_server.storage.sqlite_tx import (
    Lookups,
    SqliteReadTx,
    SqliteWriteTx,
    TaskCache,
    lookup_weight,
    task_weight,
)
from plansmith_server.storage.wal_index import WalIndex
from plansmith_server.storage.worker import Worker
from plansmith_server.telemetry import Telemetry

log = logging.getLogger(__name__)

T = TypeVar("T")


_STATEMENT_CACHE = 256
_WRITER_BUSY_MS = 5000
# An event-loop read that finds the database locked gives up after this long: the loop
# serves every other call meanwhile.
_INLINE_BUSY_MS = 100
# What `_begin(wait=False)` reports when another connection holds the write lock.
_LOCKED: list[tuple[bool, Any]] = []
# Decoded tasks kept for event-loop reads (about 1.5 kB each), in `lru.blocks` of 4 KiB:
# 10,000 typical tasks, or fewer large ones.
_TASK_CACHE_SIZE = 10_000
# Lookups remembered between two commits (the tasks mostly held by the cache above too),
# in the same unit.
_LOOKUPS_SIZE = 10_000
# A group waits for more writes to join it while the event loop is busy (see `_linger`),
# for at most this long (s), and not once it holds this many.
_LINGER = 0.002
_GROUP_FULL = 64
# A turn of the loop that took less CPU time than this (s) found nothing else to do: no
# other call is on its way to the store, and waiting would only delay the group.
_BUSY = 0.00005


@dataclass
class _Job:
    """One write waiting for its group: the transaction body and its caller's future."""

    fn: Callable[[SqliteWriteTx], Any]
    future: asyncio.Future[Any]
    bulk: bool


def _unavailable(exc: sqlite3.Error, what: str = "database unavailable") -> UnavailableError:
    return UnavailableError(f"{what}: {exc}")


def _storage_error(exc: Exception) -> Exception:
    """Operational failures (locked, disk full, I/O) are worth a retry; the rest are not."""
    return _unavailable(exc) if isinstance(exc, sqlite3.OperationalError) else exc


class SqliteStore:
    """The `Store` on an SQLite file (or `:memory:`)."""

    def __init__(
        self, path: str, *, synchronous: str = "FULL", telemetry: Telemetry | None = None
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.telemetry = telemetry or Telemetry.noop()
        self._writer: sqlite3.Connection | None = None  # only ever used on the writer thread
        self._inline: sqlite3.Connection | None = None  # only on the event loop's thread
        self._bulk: sqlite3.Connection | None = None  # only on the reader thread
        self._write_thread = Worker("plansmith-db-writer")
        self._read_thread = Worker("plansmith-db-reader")
        self._task_cache: TaskCache = LruCache(_TASK_CACHE_SIZE, weight=task_weight)
        self._wal_index: WalIndex | None = None  # None: every lookup asks the database
        self._lookups: Lookups = LruCache(_LOOKUPS_SIZE, weight=lookup_weight)
        self._lookups_at: bytes | None = None  # the wal-index header they were read at
        self._pending: list[_Job] = []
        self._wake = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self._closing = False
        self.write_lock = LockWatch()
        """Whether (and since when) writes cannot get the write lock, for health."""
        self.commit_groups = 0
        """How many write groups have committed (each one COMMIT and one fsync)."""
        self._commits = CommitListeners()
        self._appended: list[tuple[str, int]] = []  # by the group being run

    @property
    def in_memory(self) -> bool:
        return self.path == ":memory:"

    # ---- opening and closing -------------------------------------------------------

    async def open(self) -> None:
        if not self.in_memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            await self._write_thread.run(self._open_writer)
            if not self.in_memory:
                self._inline = self._connect_read_only(_INLINE_BUSY_MS)
                self._bulk = await self._read_thread.run(self._connect_read_only, _WRITER_BUSY_MS)
                self._wal_index = self._open_wal_index(self._inline)
            self._committer = asyncio.create_task(self._commit_loop(), name="sqlite-commit")
        except BaseException:
            await self.close()
            raise

    def _open_writer(self) -> None:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=_STATEMENT_CACHE,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {_WRITER_BUSY_MS}")
            if not self.in_memory:
                _enter_wal(conn)
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA temp_store = MEMORY")  # see _connect_read_only
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._writer = conn

    def _connect_read_only(self, busy_ms: int) -> sqlite3.Connection:
        conn = sqlite3.connect(
            Path(self.path).resolve().as_uri() + "?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=_STATEMENT_CACHE,
        )
        conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
        # Temporary b-trees (sorting) and the statement journals of a group's savepoints
        # stay in memory: on disk, each group opened, wrote and unlinked a temp file from
        # the event loop (strace: a pwrite per CreateTask).
        conn.execute("PRAGMA temp_store = MEMORY")
        return conn

    def _open_wal_index(self, conn: sqlite3.Connection) -> WalIndex | None:
        index = None
        if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()  # sets it up
            # SQLite puts the -shm file beside the database's real path (symlinks resolved).
            index = WalIndex.open(os.path.realpath(self.path), page_size)
        if index is None or not index.usable:
            log.warning(
                "cannot read the wal-index of %s: every lookup reads the database", self.path
            )
        return index  # kept open even when unusable: see WalIndex

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Applies the migrations this file lacks, each in its own transaction.

        The schema version is read under the write lock (`BEGIN IMMEDIATE`), never before
        it: servers started together on a new file would otherwise all see version 0 and
        all create the tables ("table plans already exists"). One applies each migration;
        the others wait for the lock (the busy timeout), then find it done. A file already
        up to date is opened without the lock (versions only grow)."""
        if conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS):
            return
        while True:
            conn.execute("BEGIN IMMEDIATE")
            try:
                current = conn.execute("PRAGMA user_version").fetchone()[0]
                if current > len(MIGRATIONS):
                    raise RuntimeError(
                        f"database {self.path} has schema version {current}, newer than "
                        f"this server knows ({len(MIGRATIONS)}); upgrade the server"
                    )
                if current == len(MIGRATIONS):
                    conn.execute("COMMIT")
                    return
                version = current + 1
                log.info("applying schema migration %d to %s", version, self.path)
                for stmt in statements(MIGRATIONS[version - 1]):
                    conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {version}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    async def close(self) -> None:
        """Commits the writes already accepted, then closes every connection."""
        self._closing = True
        if self._committer is not None:
            self._wake.set()
            await self._committer  # returns once nothing is pending
            self._committer = None
        wal_index, self._wal_index = self._wal_index, None
        bulk, inline, writer = self._bulk, self._inline, self._writer
        self._bulk = self._inline = self._writer = None
        if bulk is not None:
            await self._read_thread.run(bulk.close)
        if inline is not None:
            inline.close()
        if writer is not None:
            await self._write_thread.run(writer.close)
        if wal_index is not None:  # after the connections: see WalIndex
            wal_index.close()
        self._read_thread.close()
        self._write_thread.close()

    # ---- reads ----------------------------------------------------------------------

    async def read(
        self, fn: Callable[[SqliteReadTx], T], *, bulk: bool = False, snapshot: bool = True
    ) -> T:
        """Runs `fn` in one read transaction (one snapshot). `bulk=True` for reads of many
        rows, which then run off the event loop. `snapshot=False` for lookups by key on
        the event loop: their statements run in autocommit mode, each on its own
        snapshot, without BEGIN and COMMIT (GetTask: a few per cent), and their answers
        are remembered until the next commit."""
        if self.in_memory:
            with self._observed("read"):
                return await self._on(self._write_thread, self._run_read, self._writer, fn)
        if bulk:
            with self._observed("read"):
                return await self._on(self._read_thread, self._run_read, self._bulk, fn)
        if snapshot:
            return self._run_read(self._inline, fn, self._task_cache)
        return self._run_read(
            self._inline, fn, self._task_cache, snapshot=False, lookups=self._current_lookups()
        )

    async def lookup(self, fn: Callable[[SqliteReadTx], T]) -> T:
        """`read(fn, snapshot=False)`: see `Store.lookup`."""
        return await self.read(fn, snapshot=False)

    def _current_lookups(self) -> Lookups | None:
        """The remembered lookups, emptied if anything was committed since they were read;
        None when that cannot be told. The header is read before any statement runs: a
        statement sees that commit or a later one, and a later one changes the header
        again, so nothing read is remembered past a change."""
        header = self._wal_index.header() if self._wal_index is not None else None
        if header is None or header != self._lookups_at:
            self._lookups.clear()
            self._lookups_at = header
            if header is None:
                return None
        return self._lookups

    def remembered_task(self, task_id: str) -> Task | None:
        lookups = self._current_lookups()
        if lookups is None:
            return None
        # Not counted as a miss: the read that follows counts it.
        return lookups.get(("task", task_id), count_miss=False)

    @property
    def remembers_lookups(self) -> bool:
        """Whether `lookup` answers from memory while nothing has been committed."""
        return self._wal_index is not None and self._wal_index.usable

    @property
    def lookups(self) -> Lookups:
        """The lookups remembered since the last commit, for the status report."""
        return self._lookups

    @staticmethod
    def _run_read(
        conn: sqlite3.Connection | None,
        fn: Callable[[SqliteReadTx], T],
        cache: TaskCache | None = None,
        *,
        snapshot: bool = True,
        lookups: Lookups | None = None,
    ) -> T:
        """`fn` in a transaction, or without `snapshot` in autocommit mode, where it may
        answer from `lookups` (the answers valid now)."""
        if conn is None:
            raise UnavailableError("database is closed")
        if snapshot:
            try:
                conn.execute("BEGIN")
            except sqlite3.Error as exc:
                raise _unavailable(exc) from exc
        try:
            return fn(SqliteReadTx(conn, cache, lookups))
        except sqlite3.OperationalError as exc:
            raise _unavailable(exc) from exc
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    async def _on(self, worker: Worker, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await worker.run(fn, *args)
        except RuntimeError as exc:  # the worker was closed: the store is closed
            if self._closing:
                raise UnavailableError("database is closed") from exc
            raise

    # ---- writes ---------------------------------------------------------------------

    async def write(self, fn: Callable[[SqliteWriteTx], T], *, bulk: bool = False) -> T:
        """Runs `fn` in a write transaction shared with the writes of its group; returns
        (or raises) what `fn` did once the group has committed. Nothing of a `fn` that
        raises is kept. `bulk=True` for writes of many rows, which then run off the
        event loop."""
        if self._closing or self._committer is None:
            raise UnavailableError("database is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append(_Job(fn, future, bulk))
        self._wake.set()
        # A cancelled caller cancels its own future only: a write not yet started is
        # skipped; one already running finishes with its group (the request_id makes the
        # caller's retry safe).
        if self.telemetry.tracing_enabled:
            with self._observed("write"):
                return await future
        start = time.perf_counter()  # `_observed` without its span, inline: once per write
        try:
            return await future
        finally:
            self.telemetry.db_duration.record(
                (time.perf_counter() - start) * 1000, DB_ATTRIBUTES["write"]
            )

    async def _commit_loop(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._linger()
            jobs = [j for j in self._pending if not j.future.done()]
            self._pending = []
            if not jobs:
                continue
            try:
                if self.in_memory or any(j.bulk for j in jobs):
                    outcomes = await self._on(self._write_thread, self._run_group, jobs)
                else:
                    outcomes = await self._run_group_on_loop(jobs)
            except asyncio.CancelledError:
                _fail(jobs, UnavailableError("server stopping: outcome unknown"))
                raise
            except Exception as exc:  # reported to every caller of the group
                log.exception("write group failed")
                _fail(jobs, UnavailableError(f"database unavailable: {exc}"))
                continue
            committed = any(ok for ok, _ in outcomes)
            if committed:
                self.commit_groups += 1
            for job, (ok, value) in zip(jobs, outcomes, strict=True):
                if job.future.done():
                    continue
                if ok:
                    job.future.set_result(value)
                else:
                    job.future.set_exception(value)
            appended, self._appended = self._appended, []
            if committed and appended:
                self._commits.tell(appended)

    async def _linger(self) -> None:
        """Lets the calls the event loop is handling join the group about to run: each
        group costs a BEGIN, a hop to the writer thread and an fsync, whatever its size.
        While the loop is saturated, calls reach the store a few per fsync, and groups
        stayed that small; waiting costs them no throughput then (the loop serves other
        calls meanwhile), so the group waits while each turn of the loop finds other
        work, up to `_LINGER`. An idle loop (a lone writer) ends it at the first turn."""
        deadline = time.perf_counter() + _LINGER
        while len(self._pending) < _GROUP_FULL:
            # The turn's CPU time, not its wall time: on a loaded machine a turn with
            # nothing to do may still be preempted for longer than `_BUSY`.
            start = time.thread_time()
            await asyncio.sleep(0)
            if time.thread_time() - start < _BUSY or time.perf_counter() >= deadline:
                return

    def subscribe_commits(self, callback: CommitListener) -> Callable[[], None]:
        return self._commits.subscribe(callback)

    # A group runs one of two ways. Small writes run their statements on the event loop,
    # where they cost CPU only: run on the writer thread, each statement would hand the
    # GIL back and forth with the busy loop, which measured three times slower. BEGIN
    # IMMEDIATE runs on the loop too, without waiting: only if another process holds the
    # write lock does it go to the writer thread to wait there. COMMIT, which waits for
    # the disk, goes to the writer thread, and the loop serves other calls meanwhile.
    # A group with a bulk write runs whole on the writer thread, so that it never stalls
    # the loop. Either way the connection is used by one thread at a time: groups run one
    # by one.

    def _run_group(self, jobs: list[_Job]) -> list[tuple[bool, Any]]:
        """On the writer thread: the whole group."""
        conn = self._writer
        refused = self._begin(conn, len(jobs), wait=False)
        if refused is _LOCKED:  # another connection writes: wait for it (and say so)
            self.write_lock.found_taken()
            refused = self._begin(conn, len(jobs))
            self.write_lock.waited(refused is None)
        elif refused is None:
            self.write_lock.got_it()
        if refused is not None or conn is None:
            return refused or []
        try:
            return self._finish(conn, self._run_jobs(conn, jobs), len(jobs))
        finally:
            _rollback_leftover(conn)

    async def _run_group_on_loop(self, jobs: list[_Job]) -> list[tuple[bool, Any]]:
        conn = self._writer
        refused = self._begin(conn, len(jobs), wait=False)
        if refused is _LOCKED:  # another connection writes: wait for it off the loop
            self.write_lock.found_taken()
            try:
                refused = await self._on(self._write_thread, self._begin, conn, len(jobs))
            finally:
                self.write_lock.waited(refused is None)
        elif refused is None:
            self.write_lock.got_it()
        if refused is not None or conn is None:
            return refused or []
        try:
            out = self._run_jobs(conn, jobs)
            return await self._on(self._write_thread, self._finish, conn, out, len(jobs))
        finally:
            if conn.in_transaction:  # only after a failure (or a cancelled COMMIT hop)
                await self._on(self._write_thread, _rollback_leftover, conn)

    @staticmethod
    def _begin(
        conn: sqlite3.Connection | None, n: int, *, wait: bool = True
    ) -> list[tuple[bool, Any]] | None:
        """Opens the group's transaction; if it cannot, what each of its `n` jobs reports.

        `wait=False` is for the event loop: the write lock is free unless another process
        writes to the file, and a hop to the writer thread cost the loop more than the
        whole BEGIN; so it does not wait for the lock and reports `_LOCKED` if it is
        taken (the caller then waits on the writer thread)."""
        if conn is None:
            return [(False, UnavailableError("database is closed"))] * n
        try:
            if wait:
                conn.execute("BEGIN IMMEDIATE")
            else:
                conn.execute("PRAGMA busy_timeout = 0")
                try:
                    conn.execute("BEGIN IMMEDIATE")
                finally:
                    conn.execute(f"PRAGMA busy_timeout = {_WRITER_BUSY_MS}")
        except sqlite3.Error as exc:
            if not wait and getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY:
                return _LOCKED
            return [(False, _unavailable(exc))] * n
        return None

    def _run_jobs(self, conn: sqlite3.Connection, jobs: list[_Job]) -> list[tuple[bool, Any]]:
        """Each job in a savepoint of the open transaction; a job that raises is undone.
        What the surviving jobs appended to change logs is kept for the listeners."""
        tx = SqliteWriteTx(conn)
        self._appended = tx.appended
        out: list[tuple[bool, Any]] = []
        for job in jobs:
            if not conn.in_transaction:
                break  # an error ended the whole transaction (SQLite does on I/O errors)
            conn.execute("SAVEPOINT job")
            mark = len(tx.appended)
            try:
                result = job.fn(tx)
                conn.execute("RELEASE job")
            except Exception as exc:  # the job's own error, for its caller
                del tx.appended[mark:]
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK TO job")
                        conn.execute("RELEASE job")
                out.append((False, _storage_error(exc)))
            else:
                out.append((True, result))
        return out

    @staticmethod
    def _finish(
        conn: sqlite3.Connection, out: list[tuple[bool, Any]], n: int
    ) -> list[tuple[bool, Any]]:
        """Commits the group; what its jobs report if the transaction did not survive."""
        if not conn.in_transaction:
            lost = UnavailableError("database error: the transaction was rolled back")
            return [o if not o[0] else (False, lost) for o in out] + [(False, lost)] * (
                n - len(out)
            )
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            failed = _unavailable(exc, "commit failed")
            _rollback_leftover(conn)
            return [o if not o[0] else (False, failed) for o in out]
        return out

    # ---- the rest -----------------------------------------------------------------

    def _observed(self, operation: str) -> contextlib.AbstractContextManager[None]:
        """A child span (when tracing is on) and a duration sample per transaction (the
        wait for its turn too). Event-loop reads have none: they cost less than that."""
        return observed(self.telemetry, "sqlite", operation)

    async def ping(self) -> None:
        try:
            await self.read(SqliteReadTx.schema_objects)
        except sqlite3.Error as exc:
            raise _unavailable(exc, "database check failed") from exc
        if not self.in_memory and not os.path.exists(self.path):
            raise UnavailableError(f"database file {self.path} is gone")

    async def write_lock_blocked_for(self) -> float:
        """Seconds writes have been kept from the write lock by another connection (0:
        they get it). While no write waits for it, this finds out whether the lock is
        free again by trying it without waiting, on a connection of its own, and letting
        go at once: a probe never holds the lock while anyone waits, nor for longer than
        an empty transaction."""
        watch = self.write_lock
        if watch.since is None or self.in_memory or watch.waiting:
            return watch.blocked_for()
        if await asyncio.to_thread(self._try_write_lock):
            watch.got_it()
        return watch.blocked_for()

    def _try_write_lock(self) -> bool:
        """Whether the write lock could be taken at once (it is released straight away)."""
        try:
            # mode=rw: never creates the file (it may have gone; the ping tells that).
            conn = sqlite3.connect(
                Path(self.path).resolve().as_uri() + "?mode=rw", uri=True, isolation_level=None
            )
        except sqlite3.Error:
            return False
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return True
        except sqlite3.Error:
            return False
        finally:
            conn.close()

    async def purge_idempotency(self, older_than: int) -> int:
        return await self.write(lambda tx: tx.purge_idempotency(older_than))

    async def prune_changes(
        self, after_plan_id: str, older_than: int, keep_revisions: int, limit: int
    ) -> tuple[int, str | None]:
        """One small batch of change-log pruning (see `SqliteWriteTx.prune_changes`)."""
        return await self.write(
            lambda tx: tx.prune_changes(after_plan_id, older_than, keep_revisions, limit)
        )

    def caches(self) -> dict[str, LruCache[Any, Any]]:
        """The caches this store keeps, by name, for the status report: lookups remembered
        since the last commit and decoded tasks."""
        return {"lookups": self._lookups, "tasks": self._task_cache}

    @property
    def task_cache(self) -> TaskCache:
        """Decoded tasks by (id, version), for the status report."""
        return self._task_cache

    def size_bytes(self) -> int:
        """Size of the database and its write-ahead log on disk (0 in memory)."""
        if self.in_memory:
            return 0
        total = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                total += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return total


def _enter_wal(conn: sqlite3.Connection) -> None:
    """Puts the file in WAL mode (a no-op once it is). Switching a new file needs an
    exclusive lock that SQLite does not wait for while the connection reads, as another
    server starting on the same new file may: it reports "database is locked" at once.
    So this tries again for as long as the busy timeout, then gives up as SQLite would."""
    deadline = time.monotonic() + _WRITER_BUSY_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _rollback_leftover(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _fail(jobs: list[_Job], exc: Exception) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(exc)
