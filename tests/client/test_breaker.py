"""The circuit breaker against the real server (calls counted at the server)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from plansmith import (
    AsyncPlansmithClient,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    EtagMismatchError,
    ResourceNotFoundError,
    ServiceUnavailableError,
)

POLICY = BreakerPolicy(failure_threshold=3, reset_timeout=10.0)


@pytest.fixture
def breaker(clock):
    return CircuitBreaker("test-target", POLICY, clock=clock)


async def test_opens_fails_fast_half_opens_and_closes(connect, faults, clock, breaker):
    changes = []
    breaker.add_listener(lambda b, old, new: changes.append((old, new)))
    client = connect(breaker=breaker, retry=None)
    plan = await client.create_plan("P")
    faults.fail("GetPlan", times=3)

    for _ in range(3):
        with pytest.raises(ServiceUnavailableError):
            await client.get_plan(plan.id)
    assert breaker.state is BreakerState.OPEN
    assert faults.calls["GetPlan"] == 3

    with pytest.raises(CircuitOpenError) as info:
        await client.get_plan(plan.id)
    assert faults.calls["GetPlan"] == 3  # no network call while open
    assert info.value.target == "test-target" and info.value.retry_after == pytest.approx(10)
    assert info.value.method == "/plansmith.v1.PlanService/GetPlan"
    assert isinstance(info.value, ServiceUnavailableError)

    clock.advance(10.0)
    assert breaker.state is BreakerState.HALF_OPEN
    assert (await client.get_plan(plan.id)).id == plan.id  # the probe succeeds
    assert breaker.state is BreakerState.CLOSED
    assert changes == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]


async def test_failed_probe_reopens(connect, faults, clock, breaker):
    client = connect(breaker=breaker, retry=None)
    faults.fail("GetPlan", times=4)
    for _ in range(3):
        with pytest.raises(ServiceUnavailableError):
            await client.get_plan("pln_x")
    clock.advance(10.0)
    with pytest.raises(ServiceUnavailableError):
        await client.get_plan("pln_x")  # the probe fails
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        await client.get_plan("pln_x")
    assert faults.calls["GetPlan"] == 4


async def test_retries_stop_at_an_open_circuit(connect, faults, clock):
    breaker = CircuitBreaker("t", BreakerPolicy(failure_threshold=2), clock=clock)
    client = connect(breaker=breaker)  # default read policy: up to 3 attempts
    faults.fail("GetPlan", times=10)
    with pytest.raises(CircuitOpenError):
        await client.get_plan("pln_x")
    assert faults.calls["GetPlan"] == 2  # the second failure opened it; the third attempt
    assert len(clock.sleeps) == 2  # was refused at once and not retried


async def test_business_errors_never_open_it(connect, faults, breaker):
    client = connect(breaker=breaker, retry=None)
    plan = await client.create_plan("P")
    for _ in range(10):
        with pytest.raises(ResourceNotFoundError):
            await client.get_task("tsk_missing")
    for _ in range(5):
        with pytest.raises(EtagMismatchError):
            await client.update_plan(plan.id, name="x", etag="stale")
    assert breaker.state is BreakerState.CLOSED and breaker.failure_count == 0


async def test_a_cancelled_call_never_opens_it(fault_server, faults, clock):
    """A cancellation is neither a failure nor a success: it neither trips the breaker
    nor resets the failures counted before it."""
    breaker = CircuitBreaker("t", BreakerPolicy(failure_threshold=2), clock=clock)
    async with AsyncPlansmithClient.connect(
        fault_server.address, breaker=breaker, retry=None, clock=clock
    ) as client:
        breaker.record(breaker.admit(), _err(grpc.StatusCode.UNAVAILABLE))
        gate = faults.hold("GetPlan")
        task = asyncio.create_task(client.get_plan("pln_x"))
        await faults.started["GetPlan"].wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()
        assert breaker.state is BreakerState.CLOSED and breaker.failure_count == 1
        breaker.record(breaker.admit(), _err(grpc.StatusCode.UNAVAILABLE))
        assert breaker.state is BreakerState.OPEN


async def test_half_open_admits_one_probe_at_a_time(fault_server, faults, clock):
    breaker = CircuitBreaker("t", BreakerPolicy(failure_threshold=1, reset_timeout=5), clock=clock)
    async with AsyncPlansmithClient.connect(
        fault_server.address, breaker=breaker, retry=None, clock=clock
    ) as client:
        plan = await client.create_plan("P")
        faults.fail("GetPlan")
        with pytest.raises(ServiceUnavailableError):
            await client.get_plan(plan.id)
        assert breaker.state is BreakerState.OPEN
        clock.advance(5)

        gate = faults.hold("GetPlan")
        faults.started["GetPlan"].clear()
        probe = asyncio.create_task(client.get_plan(plan.id))
        await faults.started["GetPlan"].wait()
        with pytest.raises(CircuitOpenError, match="probe"):
            await client.get_plan(plan.id)  # refused while the probe is in flight
        assert faults.calls["GetPlan"] == 2
        gate.set()
        assert (await probe).id == plan.id
        assert breaker.state is BreakerState.CLOSED
        await client.get_plan(plan.id)


def test_record_ignores_outcomes_from_an_older_state(clock):
    b = CircuitBreaker("t", BreakerPolicy(failure_threshold=1), clock=clock)
    late = b.admit()
    b.record(b.admit(), _err(grpc.StatusCode.UNAVAILABLE))
    assert b.state is BreakerState.OPEN
    b.record(late, None)  # a success admitted before the trip does not close it
    assert b.state is BreakerState.OPEN
    # Nor does a failure admitted before the trip reopen it once it is half-open.
    b2 = CircuitBreaker("t2", BreakerPolicy(failure_threshold=1, reset_timeout=5), clock=clock)
    late = b2.admit()
    b2.record(b2.admit(), _err(grpc.StatusCode.UNAVAILABLE))
    clock.advance(5)
    assert b2.state is BreakerState.HALF_OPEN
    b2.record(late, _err(grpc.StatusCode.UNAVAILABLE))
    assert b2.state is BreakerState.HALF_OPEN


async def test_default_breaker_is_shared_per_target():
    clients = [
        AsyncPlansmithClient.connect(t) for t in ("127.0.0.1:1", "127.0.0.1:1", "127.0.0.1:2")
    ]
    off = AsyncPlansmithClient.connect("127.0.0.1:1", breaker=None)
    try:
        a, b, c = clients
        assert a.breaker is b.breaker and a.breaker is not c.breaker
        assert off.breaker is None
    finally:
        for x in (*clients, off):
            await x.close()


def _err(code: grpc.StatusCode) -> Exception:
    from plansmith.errors import error_class_for

    return error_class_for(code)("x", status_code=code)


def test_a_removed_listener_hears_no_more_changes(breaker):
    heard, kept = [], []
    listener = lambda b, old, new: heard.append(new)  # noqa: E731
    breaker.add_listener(listener)
    breaker.add_listener(lambda b, old, new: kept.append(new))
    breaker.open()
    breaker.remove_listener(listener)
    breaker.reset()
    assert heard == [BreakerState.OPEN]
    assert kept == [BreakerState.OPEN, BreakerState.CLOSED]
