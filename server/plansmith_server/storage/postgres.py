"""The `Store` on PostgreSQL (psycopg 3): several replicas on one database.

How a transaction runs. The port's transactions are synchronous functions run whole
(see `domain/store.py`); here each one runs on a thread of the store's own pool with a
connection of its own, so a transaction costs one hand-off, and its statements block
only that thread. The pool is bounded (`--pg-pool-size` connections, as many threads);
a call that finds every connection busy waits for one (`--pg-pool-timeout-ms`), then
gets UNAVAILABLE with RetryInfo.

- Writes run at REPEATABLE READ, and every mutation writes its plan's row, so two
  replicas can never interleave into an outcome that one database could not give: of
  two concurrent updates of one plan, the second to write the plan's row fails with a
  serialization failure and is run again from the start (see `_write_tx`), where it
  sees the first one's effect (an etag that no longer matches: ABORTED; no etag:
  applied on top, nothing lost). Two replicas given the same request_id at once: the loser's
  INSERT of the request_id fails on the winner's row (or with a serialization failure),
  and its run again returns the winner's recorded answer. A transaction still losing
  after `_ATTEMPTS` runs gets ABORTED.
- Writes run in psycopg's pipeline mode (`_run_once`): statements are sent at once and
  their answers waited for only when read, so a write costs a round trip per read it
  makes and one for the rest (its writes, NOTIFY, COMMIT). A statement that fails
  makes the server skip the rest up to the next wait, COMMIT included.
- Reads with a snapshot run at REPEATABLE READ READ ONLY (one snapshot, no
  serialization failures); lookups by key run in autocommit, one statement each.
- Every transaction gets `statement_timeout` from the call's deadline (at most
  `--pg-statement-timeout-ms`, the session's own, which a write leaves as it is when
  the deadline is later or none): a statement never outlives the call that wanted it.
- Connections are made on demand with TCP keepalives (see `dsn.DEFAULT_PARAMS`) and
  dropped when they fail; while the database cannot be reached, connection attempts
  back off (0.1 s doubling to 5 s) and calls meanwhile get UNAVAILABLE with RetryInfo
  at once. Nothing needs a restart when the database comes back.
- Commits are announced with NOTIFY (`plansmith_commits`, payload `revision:plan_id`)
  in the committing transaction, so delivered when and only if it commits (every write
  transaction that changed a plan or a task sends one, change records or not); a dedicated
  connection LISTENs (a pooled one would lose the subscription when returned) and hands
  them to `subscribe_commits` callbacks on every replica, itself included. After it
  reconnects, and every 10 s as a backstop, what was committed meanwhile is read from
  the change log (the source of truth) and told too, where newer than what was told.
- Caches: the decoded-task cache is keyed by (id, version) read in the transaction, the
  ListTasks page cache by the plan's revision read in its snapshot, so what another
  replica committed is seen by the next read here. Lookups by key (tasks, plans, plan
  sizes) are remembered between commits and emptied by notification (`pg_lookups.py`):
  when this replica's write ends, when the listener hears any commit, and whenever it
  stops or starts listening; they answer only while the listener listens on a live
  connection with nothing unread. What remains is PostgreSQL's delivery of a
  notification to the listening backend's socket after the writer's COMMIT: a read on
  this replica within that time after another replica's commit may be answered from
  before it (see docs/storage.md "Caches").
- Schema migrations (`pg_migrations.py`) run at start-up under an advisory lock; while
  the database is unreachable the store keeps trying in the background and is not
  `ready`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pgerrors

from plansmith_server import deadlines
from plansmith_server.domain.models import Task
from plansmith_server.domain.store import CommitListener, CommitListeners
from plansmith_server.errors import DeadlineExceededError, PlansmithError, UnavailableError
from plansmith_server.lru import LruCache
from plansmith_server.storage.dsn import Dsn
from plansmith_server.storage.lock_watch import LockWatch
from plansmith_server.storage.observed import observed
from plansmith_server.storage.pg_lookups import NeedsDatabase, NoConnection, RememberedLookups
from plansmith_server.storage.pg_migrations import MIGRATION_LOCK, MIGRATIONS, VERSION_TABLE
from plansmith_server.storage.postgres_tx import PgReadTx, PgWriteTx, is_idempotency_race
from plansmith_server.storage.sqlite_tx import TaskCache, task_weight
from plansmith_server.telemetry import Telemetry

log = logging.getLogger(__name__)

T = TypeVar("T")

CHANNEL = "plansmith_commits"
"""The NOTIFY channel of commits; payload `revision:plan_id`."""

_ATTEMPTS = 8
"""Runs of a write transaction that keeps losing serialization races before ABORTED."""
_MIN_STATEMENT_MS = 100
_DEADLINE_SLACK = 0.05
"""A statement cancelled with at most this much of its call's time left was cancelled by
the timeout taken from that deadline (`_timeout_sql`)."""
_TASK_CACHE_SIZE = 10_000
_LOOKUPS_SIZE = 10_000  # as SQLite's, in `lru.blocks` (`--pg-lookups-size`)
_CONTACT_SLACK_S = 5.0  # the listener's proof of life may be this late before lookups stop
_CATCH_UP_MARGIN_S = 30.0
_BACKSTOP_S = 10.0  # the change log is read at most this often while connected (>= 5 s)
_TOLD_PLANS = 10_000
_LISTEN_WAIT_S = 5.0
_PAYLOAD_BYTES = 7000  # under NOTIFY's 8000
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 5.0


class ConcurrentUpdateError(PlansmithError):
    """A write kept losing to concurrent writes of the same rows on other replicas."""

    code = "ABORTED"
    reason = "CONCURRENT_UPDATE"

    def __init__(self) -> None:
        super().__init__(
            "the request conflicted with concurrent changes of the same plan and was not "
            "applied; retry it (with the same request_id)"
        )


class _LockedLru(LruCache[Any, Any]):
    """An `LruCache` shared by the pool's threads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()

    def get(self, key: Any, *, count_miss: bool = True) -> Any:
        with self._lock:
            return super().get(key, count_miss=count_miss)

    def get_many(self, keys: Any) -> list[Any]:
        with self._lock:
            return super().get_many(keys)

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            super().put(key, value)

    def clear(self) -> None:
        with self._lock:
            super().clear()


class _Pool:
    """At most `size` connections, made on demand, dropped when broken; connection
    attempts back off while the database cannot be reached."""

    def __init__(self, dsn: Dsn, size: int, wait_s: float) -> None:
        self.dsn = dsn
        self.size = size
        self.wait_s = wait_s
        self._idle: list[psycopg.Connection[Any]] = []
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False
        self._retry_at = 0.0  # monotonic time before which no connection is attempted
        self._backoff = 0.0
        self.last_error = ""
        self.session_options = ""
        """libpq `options` added to every connection (the store's session settings)."""

    def connect_params(self) -> dict[str, Any]:
        params: dict[str, Any] = dict(self.dsn.params)
        params["options"] = (params.get("options", "") + self.session_options).strip()
        return params

    def connect(self, timeout: float | None = None) -> psycopg.Connection[Any]:
        """A new connection (autocommit: the store says where transactions begin)."""
        params = self.connect_params()
        if timeout is not None:
            params["connect_timeout"] = str(
                max(2, min(int(params["connect_timeout"]), int(timeout) + 1))
            )
        try:
            conn = psycopg.connect(**params, autocommit=True)
        except psycopg.Error as exc:
            raise UnavailableError(
                f"database {self.dsn.display} unreachable: {self.dsn.scrub(_first_line(exc))}",
                retry_after=max(self._backoff, _BACKOFF_FIRST),
            ) from None
        return conn

    def acquire(self) -> tuple[psycopg.Connection[Any], bool]:
        """A connection, and whether it was used before (it may have died since)."""
        deadline = time.monotonic() + self.wait_s
        with self._cond:
            while True:
                if self._closed:
                    raise UnavailableError("database is closed")
                if self._idle:
                    return self._idle.pop(), True
                if self._count < self.size:
                    wait = self._retry_at - time.monotonic()
                    if wait > 0:
                        raise UnavailableError(
                            f"database {self.dsn.display} unreachable: {self.last_error}",
                            retry_after=wait,
                        )
                    self._count += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise UnavailableError(
                        f"all {self.size} database connections busy", retry_after=0.2
                    )
                self._cond.wait(left)
        try:
            conn = self.connect(deadlines.remaining())
        except UnavailableError as exc:
            with self._cond:
                self._count -= 1
                self._backoff = min(_BACKOFF_MAX, max(_BACKOFF_FIRST, self._backoff * 2))
                self._retry_at = time.monotonic() + self._backoff * random.uniform(0.8, 1.0)
                self.last_error = str(exc).split(": ", 1)[-1]
                self._cond.notify()
            raise
        with self._cond:
            self._backoff = 0.0
            self._retry_at = 0.0
        return conn, False

    def release(self, conn: psycopg.Connection[Any]) -> None:
        ok = not _broken(conn) and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if _broken(conn):  # the others idle since before the loss likely died with it
            self.discard_all_idle()
        with self._cond:
            if ok and not self._closed:
                self._idle.append(conn)
            else:
                self._count -= 1
            self._cond.notify()
        if not ok or self._closed:
            with contextlib.suppress(Exception):
                conn.close()

    def discard_all_idle(self) -> None:
        """Drops the idle connections (after the database went away: they are dead)."""
        with self._cond:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.discard_all_idle()

    @property
    def in_use(self) -> int:
        with self._cond:
            return self._count - len(self._idle)


def _broken(conn: psycopg.Connection[Any]) -> bool:
    return bool(conn.closed or conn.broken)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_RETRY_CODES = (pgerrors.SerializationFailure, pgerrors.DeadlockDetected)


class PostgresStore:
    """The `Store` on a PostgreSQL database."""

    def __init__(
        self,
        dsn: Dsn,
        *,
        pool_size: int = 10,
        pool_timeout_ms: int = 2000,
        statement_timeout_ms: int = 5000,
        catch_up_seconds: float = _BACKSTOP_S,
        lookups_size: int = _LOOKUPS_SIZE,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.dsn = dsn
        self.path = dsn.display
        self.statement_timeout_ms = statement_timeout_ms
        self.catch_up_seconds = catch_up_seconds
        """How often the listener reads the change log as a backstop (tests: shorter)."""
        self.telemetry = telemetry or Telemetry.noop()
        self._pool = _Pool(dsn, pool_size, pool_timeout_ms / 1000)
        # Autocommit lookups run with the session's timeout; a transaction's own
        # (`_timeout_sql`) follows the call's deadline. A transaction left open by a
        # stalled thread never holds its locks for long.
        self._pool.session_options = (
            f" -c statement_timeout={statement_timeout_ms}"
            f" -c idle_in_transaction_session_timeout={max(10_000, 4 * statement_timeout_ms)}"
        )
        self._ping_conn: psycopg.Connection[Any] | None = None
        self._threads = ThreadPoolExecutor(pool_size, thread_name_prefix="plansmith-pg")
        self._task_cache: TaskCache = _LockedLru(_TASK_CACHE_SIZE, weight=task_weight)
        self._lookups = RememberedLookups(lookups_size)
        self.listener_pid: int | None = None
        """The backend pid of the LISTEN connection while it is connected."""
        self._ready = asyncio.Event()
        self._starter: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._commits = CommitListeners()
        self._listening = asyncio.Event()
        self._told: collections.OrderedDict[str, int] = collections.OrderedDict()
        """plan id -> the newest revision told, for the plans told of most recently."""
        self._origin = os.urandom(6).hex()
        """Names this store in its NOTIFY payloads, so its listener skips its own."""
        self._closing = False
        self.write_lock = LockWatch()
        self.commit_groups = 0
        """How many write transactions have committed."""
        self.retries = 0
        """Write transactions run again after losing a race (serialization, request_id)."""

    # ---- opening and closing -------------------------------------------------------

    @property
    def in_memory(self) -> bool:
        return False

    @property
    def ready(self) -> bool:
        """Whether the schema is known to be up to date (migrations done)."""
        return self._ready.is_set()

    async def open(self, *, wait: bool = False) -> None:
        """Migrates the schema. If the database cannot be reached, returns all the same
        (not `ready`: calls get UNAVAILABLE) and keeps trying in the background with
        backoff; with `wait`, raises instead."""
        try:
            await self._run(self._migrate)
        except UnavailableError as exc:
            if wait:
                raise
            log.warning("database not reachable at start-up (retrying): %s", exc)
            self._starter = asyncio.create_task(self._start_up(), name="pg-start-up")
        else:
            self._ready.set()
        self._listener = asyncio.create_task(self._listen(), name="pg-listen")
        if self._ready.is_set():
            # Listening before the first call: a commit of another replica right after
            # start-up is heard (the change log backstops a listener that is slower).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_LISTEN_WAIT_S):
                    await self._listening.wait()

    async def _start_up(self) -> None:
        delay = _BACKOFF_FIRST
        while not self._closing:
            await asyncio.sleep(delay * random.uniform(0.8, 1.0))
            delay = min(_BACKOFF_MAX, delay * 2)
            try:
                await self._run(self._migrate)
            except UnavailableError as exc:
                log.debug("database still not reachable: %s", exc)
            else:
                log.info("database %s reachable: schema up to date", self.dsn.display)
                self._ready.set()
                return

    def _migrate(self) -> None:
        """Applies the migrations the database lacks, under an advisory lock held for
        the session: replicas starting together take turns, and each finds what the
        one before it applied."""
        conn = self._pool.connect()
        try:
            with _mapped(self.dsn):
                conn.execute("SET statement_timeout = 0")  # waits for another replica's turn
                conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
                try:
                    conn.execute(VERSION_TABLE)
                    row = conn.execute(
                        "SELECT coalesce(max(version), 0) FROM schema_migrations"
                    ).fetchone()
                    current = int(row[0]) if row else 0
                    if current > len(MIGRATIONS):
                        raise RuntimeError(
                            f"database {self.dsn.display} has schema version {current}, newer "
                            f"than this server knows ({len(MIGRATIONS)}); upgrade the server"
                        )
                    for version in range(current + 1, len(MIGRATIONS) + 1):
                        log.info("applying PostgreSQL schema migration %d", version)
                        with conn.transaction():
                            conn.execute(MIGRATIONS[version - 1])
                            conn.execute(
                                "INSERT INTO schema_migrations (version) VALUES (%s)", (version,)
                            )
                finally:
                    if not conn.closed:
                        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        finally:
            conn.close()

    async def close(self) -> None:
        self._closing = True
        for task in (self._starter, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._starter = self._listener = None
        self._pool.close()
        await asyncio.to_thread(self._threads.shutdown, True)
        if self._ping_conn is not None:
            self._ping_conn.close()
            self._ping_conn = None

    # ---- transactions --------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closing:
            raise UnavailableError("database is closed")
        loop = asyncio.get_running_loop()
        ctx = deadlines.copy_context()
        try:
            return await loop.run_in_executor(self._threads, ctx.run, fn, *args)
        except RuntimeError as exc:  # the executor was shut down: the store is closed
            if self._closing:
                raise UnavailableError("database is closed") from exc
            raise

    def _timeout_sql(self) -> str:
        """A transaction's statement timeout: the call's time left (at least
        `_MIN_STATEMENT_MS`, so a call close to its deadline still gets an answer or
        its own DEADLINE_EXCEEDED), at most `--pg-statement-timeout-ms`."""
        ms = self.statement_timeout_ms
        left = deadlines.remaining()
        if left is not None:
            ms = max(_MIN_STATEMENT_MS, min(ms, int(left * 1000)))
        return f"SET LOCAL statement_timeout = {ms}"

    def _deadline_sooner(self) -> bool:
        """Whether the call's deadline comes before the session's statement timeout
        (`--pg-statement-timeout-ms`, set when connecting): otherwise a transaction needs
        no `_timeout_sql` of its own."""
        left = deadlines.remaining()
        return left is not None and left * 1000 < self.statement_timeout_ms

    def _not_ready(self) -> None:
        if not self._ready.is_set():
            raise UnavailableError(
                f"database {self.dsn.display} not ready: {self._pool.last_error or 'starting'}",
                retry_after=1.0,
            )

    async def read(self, fn: Callable[[PgReadTx], T], *, bulk: bool = False) -> T:
        """Runs `fn` on one snapshot (REPEATABLE READ READ ONLY)."""
        self._not_ready()
        with self._observed("read"):
            return await self._run(self._read_tx, fn, True)

    async def lookup(self, fn: Callable[[PgReadTx], T]) -> T:
        """Runs `fn` without a snapshot: answered on the event loop from the remembered
        lookups if they hold all it reads (see `pg_lookups.py`), else on a pool thread,
        each statement on its own in autocommit (no BEGIN and COMMIT round trips), and
        what it read is remembered."""
        self._not_ready()
        try:
            return self._lookups.answer(fn, _memory_tx)
        except NeedsDatabase:
            pass
        recorded = self._lookups.recorder()
        with self._observed("read"):
            result = await self._run(self._read_tx, fn, False, recorded)
        self._lookups.remember(recorded)
        return result

    def _read_tx(self, fn: Callable[[PgReadTx], T], snapshot: bool, lookups: Any = None) -> T:
        # A read is safe to run again: once more on a new connection if a pooled one
        # turns out dead (the database restarted since it was last used).
        for again in (True, False):
            conn, reused = self._pool.acquire()
            try:
                with _mapped(self.dsn):
                    try:
                        if not snapshot:  # one statement each, the session's timeout
                            if lookups is not None:
                                lookups.items.clear()  # of a run on a dead connection
                            return fn(PgReadTx(conn, self._task_cache, lookups))
                        conn.execute(
                            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
                            + self._timeout_sql()
                        )
                        result = fn(PgReadTx(conn, self._task_cache))
                        conn.execute("COMMIT")
                        return result
                    except psycopg.OperationalError:
                        if again and reused and _broken(conn):
                            continue
                        raise
                    finally:
                        _rollback(conn)
            finally:
                self._pool.release(conn)
        raise AssertionError("unreachable")

    async def write(self, fn: Callable[[PgWriteTx], T], *, bulk: bool = False) -> T:
        self._not_ready()
        try:
            with self._observed("write"):
                result, appended = await self._run(self._write_tx, fn)
        finally:  # committed, or perhaps (a lost connection): nothing remembered survives
            self._lookups.invalidate()
        if appended:  # this replica's listeners hear its own commits before the caller
            self._tell(appended)
        return result

    def _write_tx(self, fn: Callable[[PgWriteTx], T]) -> tuple[T, list[tuple[str, int]]]:
        """Runs `fn` in a REPEATABLE READ transaction until it commits.

        Every mutation writes its plan's row (the revision bump; a new plan's row is
        new), so two transactions that change one plan conflict on that row: the second
        to write it fails with a serialization failure once the first commits (first
        committer wins), as does an `INSERT ... ON CONFLICT` of a request_id another
        transaction recorded after this one's snapshot. So the outcome is that of one
        after the other, as on SQLite, without SERIALIZABLE's predicate locks (their
        page-granular false conflicts kept 60 concurrent CreateTasks of one plan
        losing run after run).

        A run that loses a race (a serialization failure: another transaction changed
        the same plan since this one's snapshot) is run again, and then first takes the
        plans' locks (session advisory locks, in a fixed order, before BEGIN, so its
        snapshot comes after whoever held them); a first run takes the same locks
        shared as it changes a plan, so it waits for a run again instead of beating it.
        Concurrent writers of one plan thus take turns after at most one lost run each,
        and no update is lost: what the later one reads, checks and writes includes the
        earlier one's commit (an etag that no longer matches: ABORTED)."""
        attempt = 0
        locks: list[str] = []
        while True:
            conn, reused = self._pool.acquire()
            run = _Run()
            held: list[str] = []
            try:
                with _mapped(self.dsn):
                    try:
                        for plan_id in locks:
                            conn.execute(
                                "SELECT pg_advisory_lock(hashtextextended(%s, 0))", (plan_id,)
                            )
                            held.append(plan_id)
                        result = self._run_once(conn, fn, frozenset(held), run)
                    except (*_RETRY_CODES, pgerrors.UniqueViolation) as exc:
                        _rollback(conn)
                        if isinstance(exc, pgerrors.UniqueViolation) and not is_idempotency_race(
                            exc
                        ):
                            raise
                        attempt += 1
                        if attempt >= _ATTEMPTS:
                            raise ConcurrentUpdateError() from None
                        self.retries += 1
                        locks = sorted(set(locks) | run.tx.plans) if run.tx is not None else locks
                        if attempt > 2:
                            time.sleep(random.uniform(0, 0.001 * attempt))
                        continue
                    except psycopg.OperationalError:
                        # Nothing was done if BEGIN was not answered on a pooled
                        # connection that had died meanwhile: safe to run on a new one.
                        if not run.begun and reused and _broken(conn) and attempt == 0:
                            attempt += 1
                            continue
                        raise
                    finally:
                        _rollback(conn)
                        for plan_id in held:
                            if not _broken(conn):
                                conn.execute(
                                    "SELECT pg_advisory_unlock(hashtextextended(%s, 0))",
                                    (plan_id,),
                                )
                self.commit_groups += 1
                assert run.tx is not None
                return result, run.tx.appended
            finally:
                self._pool.release(conn)

    def _run_once(
        self,
        conn: psycopg.Connection[Any],
        fn: Callable[[PgWriteTx], T],
        locked: frozenset[str],
        run: _Run,
    ) -> T:
        """Runs `fn` once in a transaction, in pipeline mode: a statement is sent at
        once and its answer waited for only when read, so BEGIN goes with the first
        read, and the writes after the last read, NOTIFY and COMMIT in one round trip.

        A statement that fails has the server skip what follows it up to the next
        wait, COMMIT included, and is raised at that wait: what `fn` read or raised
        after sending it comes later and counts for nothing. (So a failure of `fn` is
        raised only after the statements sent before it have answered: theirs comes
        first, as it would have without the pipeline.)"""
        failure: BaseException | None = None
        try:
            with conn.pipeline() as pipeline:
                run.begin = conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                if self._deadline_sooner():
                    conn.execute(self._timeout_sql())
                run.tx = tx = PgWriteTx(conn, self._task_cache, pipeline=pipeline, locked=locked)
                try:
                    result = fn(tx)
                except psycopg.Error:
                    _drain(pipeline)
                    raise
                except BaseException as exc:
                    failure = exc
                    conn.execute("ROLLBACK")
                else:
                    for payload in _payloads(self._origin, tx.appended, bool(tx.plans)):
                        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                    commit = conn.execute("COMMIT")
                # Leaving the block sends Sync and waits for every answer.
        except psycopg.Error:
            _forget_prepared(conn)
            raise
        if failure is not None:
            raise failure
        if commit.statusmessage != "COMMIT":  # a failed statement would have raised
            raise RuntimeError(f"COMMIT answered {commit.statusmessage!r}")
        return result

    def remembered_task(self, task_id: str) -> Task | None:
        return self._lookups.task(task_id)

    @property
    def remembers_lookups(self) -> bool:
        """Whether `lookup` may answer from memory now: the listener listens on a live
        connection and has nothing unread."""
        return self._lookups.usable()

    def told_revision(self, plan_id: str) -> int:
        """The newest revision of the plan the commit listeners were told of (0: none
        lately): once another replica's commit is told, this replica's remembered
        lookups no longer hold what it changed."""
        return self._told.get(plan_id, 0)

    @property
    def notifications_heard(self) -> int:
        """Commit notifications the listener has heard (this replica's own included)."""
        return self._lookups.heard_count

    @property
    def lookups(self) -> LruCache[Any, Any]:
        """The lookups remembered since the last commit heard of, for the status report."""
        return self._lookups.cache

    def caches(self) -> dict[str, LruCache[Any, Any]]:
        """The caches this store keeps, by name, for the status report: lookups remembered
        since the last commit heard of (unless turned off) and decoded tasks."""
        if not self._lookups.enabled:
            return {"tasks": self._task_cache}
        return {"lookups": self._lookups.cache, "tasks": self._task_cache}

    @property
    def task_cache(self) -> TaskCache:
        return self._task_cache

    # ---- commit notifications ------------------------------------------------------

    def subscribe_commits(self, callback: CommitListener) -> Callable[[], None]:
        """Calls `callback` on the event loop with the (plan id, revision) pairs of each
        write transaction that committed change records on any replica on this database
        (this one too), in commit order per connection. After the listening connection
        was lost and made again, the pairs committed meanwhile are read from the change
        log and told as well (possibly again: a listener reads the table from where it
        is, so a pair told twice costs a read, a pair never told would be a gap)."""
        return self._commits.subscribe(callback)

    def _tell(self, pairs: list[tuple[str, int]]) -> None:
        told = self._told
        for plan_id, revision in pairs:
            if revision > told.get(plan_id, 0):
                told[plan_id] = revision
                told.move_to_end(plan_id)
        while len(told) > _TOLD_PLANS:
            told.popitem(last=False)
        self._commits.tell(pairs)

    async def _listen(self) -> None:
        """LISTENs on a connection of its own; made again (and re-subscribed) whenever
        it is lost, with backoff while the database is away. The change log is the
        source of truth: after a loss, and every `_BACKSTOP_S` as a backstop (a
        notification lost on a connection that died before keepalive said so), what was
        committed meanwhile is read from it (`_catch_up`); only revisions newer than
        those already told are told."""
        delay = _BACKOFF_FIRST
        since: float | None = None  # the change log is read from here after a connect
        while not self._closing:
            params = self._pool.connect_params()
            params["application_name"] = f"{params.get('application_name', '')} listener".strip()
            try:
                conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
            except psycopg.Error as exc:
                log.debug("listener cannot connect: %s", self.dsn.scrub(_first_line(exc)))
                await asyncio.sleep(delay * random.uniform(0.8, 1.0))
                delay = min(_BACKOFF_MAX, delay * 2)
                continue
            try:
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listener_pid = conn.info.backend_pid
                    self._listening.set()
                    delay = _BACKOFF_FIRST
                    if since is not None:
                        self._pool.discard_all_idle()  # made before the loss: likely dead
                    while not self._closing:
                        if since is not None:
                            now = time.time()
                            await self._catch_up(conn, since)
                            since = now
                        else:
                            since = time.time()
                        # Notifications that arrive between two of these are kept by
                        # the connection and given by the next. Lookups are answered
                        # from memory only while it waits here (caught up, subscribed).
                        self._lookups.listening(
                            conn.fileno(), self.catch_up_seconds + _CONTACT_SLACK_S
                        )
                        try:
                            async for note in conn.notifies(timeout=self.catch_up_seconds):
                                self._lookups.heard()
                                origin, pairs = _parse_payload(note.payload)
                                if origin != self._origin and pairs:  # its own: at commit
                                    self._tell(pairs)
                        finally:
                            self._lookups.not_listening()
            except psycopg.Error as exc:
                log.warning(
                    "commit listener lost its connection: %s", self.dsn.scrub(_first_line(exc))
                )
            self.listener_pid = None
            await asyncio.sleep(delay * random.uniform(0.8, 1.0))

    async def _catch_up(self, conn: psycopg.AsyncConnection[Any], since: float) -> None:
        """Tells the listeners the newest revision of each plan changed since shortly
        before `since` (times are the writers' clocks: a margin covers their skew), where
        it is newer than the one last told."""
        start = int((since - _CATCH_UP_MARGIN_S) * 1_000_000)
        cur = await conn.execute(
            "SELECT plan_id, max(revision) FROM plan_changes WHERE create_time >= %s "
            "GROUP BY plan_id",
            (start,),
        )
        rows = await cur.fetchall()
        pairs = [(str(r[0]), int(r[1])) for r in rows if int(r[1]) > self._told.get(str(r[0]), 0)]
        if pairs:
            log.info("commit listener caught up %d plan(s) from the change log", len(pairs))
            self._tell(pairs)

    # ---- health and the rest ---------------------------------------------------------

    async def ping(self) -> None:
        """On a connection of its own, off the pool's threads: a busy pool does not
        make the database look down."""
        if self._closing:
            raise UnavailableError("database is closed")
        await asyncio.to_thread(self._ping)
        self._not_ready()

    def _ping(self) -> None:
        conn = self._ping_conn
        try:
            if conn is None or _broken(conn):
                conn = self._ping_conn = self._pool.connect()
            with _mapped(self.dsn):
                conn.execute("SELECT 1").fetchall()
        except UnavailableError:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            self._ping_conn = None
            raise

    async def write_lock_blocked_for(self) -> float:
        """Writes on PostgreSQL take row locks, not a database-wide write lock."""
        return 0.0

    async def purge_idempotency(self, older_than: int) -> int:
        return await self.write(lambda tx: tx.purge_idempotency(older_than))

    def size_bytes(self) -> int:
        return 0

    def _observed(self, operation: str) -> contextlib.AbstractContextManager[None]:
        return observed(self.telemetry, "postgresql", operation)


def _payloads(origin: str, pairs: list[tuple[str, int]], changed: bool = False) -> list[str]:
    """NOTIFY payloads for a transaction's (plan id, revision) pairs: the origin's
    name, then `revision:plan_id` lines, in as few payloads as fit. A transaction that
    `changed` plans or tasks without change records still sends one (the origin's name
    alone): the other replicas' remembered lookups must hear of it."""
    if changed and not pairs:
        return [origin]
    out: list[str] = []
    current = origin
    for plan_id, revision in pairs:
        line = f"{revision}:{plan_id}"
        if current != origin and len(current) + 1 + len(line) > _PAYLOAD_BYTES:
            out.append(current)
            current = origin
        current = f"{current}\n{line}"
    if current != origin:
        out.append(current)
    return out


def _parse_payload(payload: str) -> tuple[str, list[tuple[str, int]]]:
    origin, *lines = payload.splitlines()
    pairs = []
    for line in lines:
        revision, _, plan_id = line.partition(":")
        if revision.isdigit() and plan_id:
            pairs.append((plan_id, int(revision)))
    return origin, pairs


def _memory_tx(lookups: Any) -> PgReadTx:
    """A transaction that answers from the remembered lookups alone (see `pg_lookups`)."""
    return PgReadTx(NoConnection(), None, lookups)  # type: ignore[arg-type]


class _Run:
    """One run of a write transaction, as far as the retry loop needs to know it."""

    __slots__ = ("begin", "tx")

    def __init__(self) -> None:
        self.begin: psycopg.Cursor[Any] | None = None
        self.tx: PgWriteTx | None = None

    @property
    def begun(self) -> bool:
        """Whether the server answered BEGIN (nothing was done on its side before)."""
        return self.begin is not None and self.begin.pgresult is not None


def _forget_prepared(conn: psycopg.Connection[Any]) -> None:
    """After a pipeline batch failed: psycopg (3.3) records a statement as prepared
    when it sends its Parse, which in pipeline mode is before the answer; when a
    statement before it in the batch failed, the server skipped that Parse, and the
    next use of the name would fail ("prepared statement _pg3_N does not exist"). So the
    connection forgets what it prepared (psycopg then also sends DEALLOCATE ALL) and
    prepares again as it goes; a psycopg without that bookkeeping: the connection is
    closed (the pool makes a new one)."""
    prepared = getattr(conn, "_prepared", None)
    if callable(getattr(prepared, "clear", None)):
        prepared.clear()  # type: ignore[union-attr]
    else:
        conn.close()


def _drain(pipeline: psycopg.Pipeline) -> None:
    """Waits for the answers still due after a statement failed (the server skipped
    the statements sent after it): the failure raised is the first one."""
    with contextlib.suppress(psycopg.Error):
        pipeline.sync()


def _rollback(conn: psycopg.Connection[Any]) -> None:
    if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        with contextlib.suppress(psycopg.Error):
            conn.execute("ROLLBACK")


@contextlib.contextmanager
def _mapped(dsn: Dsn) -> Iterator[None]:
    """The driver's failures as the service's errors: a lost or refused connection, a
    statement past its timeout, a server shutting down: UNAVAILABLE with RetryInfo (the
    password scrubbed from the text). Serialization failures pass through (the write
    loop runs the transaction again); anything else is a bug and stays itself."""
    try:
        yield
    except _RETRY_CODES:
        raise
    except pgerrors.QueryCanceled as exc:
        left = deadlines.remaining()
        if left is not None and left <= _DEADLINE_SLACK:
            # The statement's timeout was the call's time left: the call is over, and
            # its caller should hear DEADLINE_EXCEEDED (as its own clock says), not a
            # database to retry.
            raise DeadlineExceededError(
                "the call's deadline passed while the database was working on it"
            ) from None
        raise UnavailableError(f"database unavailable: {dsn.scrub(_first_line(exc))}") from None
    except (
        psycopg.OperationalError,
        psycopg.InterfaceError,
        pgerrors.AdminShutdown,
        pgerrors.CannotConnectNow,
        pgerrors.LockNotAvailable,
    ) as exc:
        raise UnavailableError(f"database unavailable: {dsn.scrub(_first_line(exc))}") from None
