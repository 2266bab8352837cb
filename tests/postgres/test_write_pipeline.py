"""The PostgreSQL store's write transactions in pipeline mode (`PostgresStore._write_tx`):
a statement's failure reaches the server's answer only at the next wait, and the
transaction must still keep nothing, raise that failure (not what the function did
after it), and leave the connection fit for the next transaction."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg import errors as pgerrors

from plansmith_server import deadlines
from plansmith_server.domain.models import ChangeRecord, Plan, Task
from plansmith_server.domain.store import IdempotencyRecord
from plansmith_server.errors import DeadlineExceededError
from plansmith_server.storage import dsn
from plansmith_server.storage.postgres import PostgresStore

CHANGE = [ChangeRecord("TASK_CREATED", "task", "tsk_1", {})]


class Boom(Exception):
    pass


def _plan(i: int) -> Plan:
    return Plan(id=f"pln_{i}", project_id="", name=f"plan {i}", revision=1)


def _task(i: int, plan_id: str = "pln_0") -> Task:
    return Task(id=f"tsk_{i}", plan_id=plan_id, title=f"task {i}")


@pytest.fixture
async def store(pg_dsn):
    """One connection: every transaction runs on the connection the one before used."""
    s = PostgresStore(dsn.parse(pg_dsn), pool_size=1)
    await s.open(wait=True)
    try:
        await s.write(lambda tx: tx.insert_plan(_plan(0)))
        yield s
    finally:
        await s.close()


async def _state(store: PostgresStore):
    return await store.read(
        lambda tx: (tx.plan_size("pln_0"), tx.plan_tasks("pln_0"), tx.changes("pln_0", 0, 100))
    )


async def test_a_statement_failing_after_the_last_read_keeps_nothing_of_the_transaction(store):
    before = await _state(store)

    def writes_then_a_duplicate(tx):
        size = tx.plan_size("pln_0")  # the last read: what follows is sent without waiting
        tx.insert_tasks([_task(1)])
        revision = tx.bump_revision("pln_0", 2)
        assert revision == size[0] + 1
        tx.append_changes("pln_0", revision, CHANGE, 2)
        tx.insert_plan(_plan(0))  # fails (the plan exists), answered only at COMMIT
        return revision

    with pytest.raises(pgerrors.UniqueViolation):
        await store.write(writes_then_a_duplicate)
    assert await _state(store) == before
    # The connection goes on, and the same writes without the duplicate commit.
    revision = await store.write(
        lambda tx: (
            tx.plan_size("pln_0"),
            tx.insert_tasks([_task(1)]),
            tx.bump_revision("pln_0", 3),
        )[2]
    )
    assert revision == before[0][0] + 1
    assert (await _state(store))[0] == (revision, 1)


async def test_a_failed_statement_is_raised_before_what_the_function_raised_after_it(store):
    def duplicate_then_boom(tx):
        tx.insert_plan(_plan(0))  # fails: the function does not hear of it yet
        raise Boom("after the failed statement")

    with pytest.raises(pgerrors.UniqueViolation):
        await store.write(duplicate_then_boom)

    def read_then_boom(tx):
        tx.insert_tasks([_task(2)])
        tx.plan_size("pln_0")
        raise Boom("after a read")

    with pytest.raises(Boom):  # nothing failed before it: the function's own error
        await store.write(read_then_boom)
    assert await store.read(lambda tx: tx.get_task("tsk_2")) is None


async def test_a_statement_first_prepared_in_a_failed_batch_is_prepared_again(store):
    """psycopg prepares a statement on its sixth use (`prepare_threshold` 5) and records
    it as prepared when it sends it; the server skips it when a statement before it in
    the batch failed. The next transaction on the connection must not use the name of
    a statement that was never prepared ("prepared statement _pg3_N does not exist")."""

    def boom(tx):
        raise Boom("psycopg forgets what it prepared at the first ROLLBACK it sees")

    with pytest.raises(Boom):
        await store.write(boom)
    await store.write(lambda tx: tx.insert_plan(_plan(1)))
    for ts in range(5):  # the revision bump, sent five times unprepared
        await store.write(lambda tx, ts=ts: tx.bump_revision("pln_0", ts))

    def duplicate_then_bump(tx):
        tx.insert_plan(_plan(1))  # fails
        tx.bump_revision("pln_0", 9)  # prepared now: skipped by the server, Parse too

    with pytest.raises(pgerrors.UniqueViolation):
        await store.write(duplicate_then_bump)
    assert await store.write(lambda tx: tx.bump_revision("pln_0", 10)) == 7
    assert (await store.read(lambda tx: tx.plan_size("pln_0")))[0] == 7


async def test_a_request_id_recorded_meanwhile_elsewhere_runs_the_transaction_again(store, pg_dsn):
    """Another replica records the same request_id after this transaction looked for
    it: recording it here fails (at COMMIT, in the pipeline), the transaction is run
    again and then returns the other one's answer, with one effect in all."""
    runs: list[str] = []

    def create_once(tx):
        found = tx.get_idempotency("req-1")
        if found is not None:
            runs.append("found")
            return found.response
        runs.append("ran")
        if len(runs) == 1:  # the other replica wins the race meanwhile
            with psycopg.connect(pg_dsn, autocommit=True) as other:
                other.execute(
                    "INSERT INTO idempotency_keys VALUES ('req-1', 'M', 'fp', %s, 1)",
                    ('{"by": "other"}',),
                )
        tx.insert_tasks([_task(4)])
        tx.put_idempotency(IdempotencyRecord("req-1", "M", "fp", {"by": "this"}, 1))
        return {"by": "this"}

    assert await store.write(create_once) == {"by": "other"}
    assert runs == ["ran", "found"]
    assert await store.read(lambda tx: tx.get_task("tsk_4")) is None
    assert store.retries == 1


async def test_a_read_sent_with_begin_gives_up_at_the_calls_deadline(store, pg_dsn):
    """The timeout from the call's deadline is sent in the same batch as BEGIN and the
    first read, and holds for that read: blocked on the plan's lock (held by a run
    again elsewhere), it gives up with the call, not after the session's 5 s."""
    with psycopg.connect(pg_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtextextended('pln_0', 0))")
        token = deadlines.set_remaining(0.3)
        try:
            start = time.monotonic()
            with pytest.raises(DeadlineExceededError):
                await store.write(lambda tx: tx.plan_size("pln_0"))
            assert time.monotonic() - start < 2.5
        finally:
            deadlines.call_deadline.reset(token)
    assert await store.write(lambda tx: tx.plan_size("pln_0")) == (1, 0)
