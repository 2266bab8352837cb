"""Retries against the real server with injected faults; both clients, fake clock."""

from __future__ import annotations

import grpc
import pytest

from plansmith import (
    DeadlineExceededError,
    MaxRetriesExceededError,
    RateLimitedError,
    RetryPolicy,
    ServiceUnavailableError,
)


async def test_unavailable_then_success(connect, faults, clock):
    events = []
    client = connect(on_retry=events.append)
    plan = await client.create_plan("P")
    task = await client.create_task("t", plan_id=plan.id)
    faults.fail("GetTask", times=2)

    assert (await client.get_task(task.id)).id == task.id
    assert faults.calls["GetTask"] == 3
    assert clock.sleeps == [0.5, 1.0]  # read policy, jitter pinned to its upper bound
    assert [(e.attempt, e.delay, e.error.status_code) for e in events] == [
        (1, 0.5, grpc.StatusCode.UNAVAILABLE),
        (2, 1.0, grpc.StatusCode.UNAVAILABLE),
    ]
    stats = client.client.retry_stats.snapshot()
    assert stats["retries"] == 2 and stats["successes_after_retry"] == 1
    # every attempt of one logical call sends the same x-request-id
    rids = {m["x-request-id"] for m in faults.metadata["GetTask"]}
    assert len(rids) == 1


async def test_lost_response_of_a_write_is_not_duplicated(connect, faults):
    client = connect()
    faults.lose_response("CreatePlan")  # commits, then the caller sees UNAVAILABLE

    plan = await client.create_plan("Exactly once", project_id="p")
    assert faults.calls["CreatePlan"] == 2
    keys = {r.request_id for r in faults.requests["CreatePlan"]}
    assert len(keys) == 1 and "" not in keys  # one key, filled by the client, reused
    listed = await client.get_plans(project_id="p")
    assert listed.total_size == 1
    assert listed.plans[0].id == plan.id  # the retry returned the original resource


async def test_callers_request_id_is_used_on_every_attempt(connect, faults):
    client = connect()
    plan = await client.create_plan("P")
    faults.lose_response("CreateTask")
    task = await client.create_task("t", plan_id=plan.id, request_id="mine-1")
    assert [r.request_id for r in faults.requests["CreateTask"]] == ["mine-1", "mine-1"]
    assert (await client.get_tasks(plan.id)).total_size == 1
    assert (await client.get_task(task.id)).title == "t"


@pytest.mark.parametrize(
    ("op", "failures", "expected"),
    [
        ("create", 3, [0.5, 1.0, 2.0]),  # 3 retries, 0.5 s doubling, max 4 s
        ("update", 3, [0.5, 1.0, 2.0]),
        ("delete", 2, [1.0, 2.0]),  # 2 retries, 1 s doubling, max 4 s
        ("read", 2, [0.5, 1.0]),  # 2 retries, 0.5 s doubling, max 2 s
    ],
)
async def test_backoff_per_operation(connect, faults, clock, op, failures, expected):
    client = connect()
    plan = await client.create_plan("P")
    method, call = {
        "create": ("CreateTask", lambda: client.create_task("t", plan_id=plan.id)),
        "update": ("UpdatePlan", lambda: client.update_plan(plan.id, name="Q")),
        "delete": ("DeletePlan", lambda: client.delete_plan(plan.id)),
        "read": ("GetPlan", lambda: client.get_plan(plan.id)),
    }[op]
    faults.fail(method, times=failures)
    await call()
    assert clock.sleeps == expected
    assert faults.calls[method] == failures + 1


async def test_full_jitter_stays_within_bounds(connect, faults, clock):
    import random

    rng = random.Random(7)
    client = connect(
        jitter=rng.random, retry=RetryPolicy(max_retries=6, initial_delay=0.5, max_delay=4)
    )
    plan = await client.create_plan("P")
    faults.fail("GetPlan", times=6)
    await client.get_plan(plan.id)
    caps = [0.5, 1, 2, 4, 4, 4]
    assert len(clock.sleeps) == 6
    assert all(0 <= s <= cap for s, cap in zip(clock.sleeps, caps, strict=True))
    assert len(set(clock.sleeps)) == 6  # jittered, not fixed


async def test_max_retries_exceeded_carries_attempts_and_last_error(connect, faults):
    client = connect()
    faults.fail("GetPlan", times=10)
    with pytest.raises(MaxRetriesExceededError) as info:
        await client.get_plan("pln_x")
    err = info.value
    assert err.attempts == 3 and faults.calls["GetPlan"] == 3
    assert isinstance(err.last_error, ServiceUnavailableError)
    assert err.last_error.service_name == "plansmith.v1.PlanService"
    assert err.status_code == grpc.StatusCode.UNAVAILABLE
    assert err.request_id and err.request_id == err.last_error.request_id
    assert client.client.retry_stats.exhausted == 1


async def test_overall_deadline_holds_across_retries(connect, faults, clock):
    client = connect(retry=RetryPolicy(max_retries=10, initial_delay=0.4, max_delay=10))
    faults.fail("GetPlan", times=10)
    with pytest.raises(DeadlineExceededError) as info:
        await client.get_plan("pln_x", timeout=1.0)
    err = info.value
    assert err.attempts == 2 and faults.calls["GetPlan"] == 2
    assert isinstance(err.last_error, ServiceUnavailableError)
    assert sum(clock.sleeps) <= 1.0  # waited 0.4; the next wait (0.8) would pass the deadline
    first, second = faults.time_remaining["GetPlan"]
    assert second is not None and first is not None
    assert second < first and second <= 0.6 + 0.05  # each attempt gets only what is left


async def test_retry_info_delay_is_honored(connect, faults, clock):
    client = connect()
    plan = await client.create_plan("P")
    faults.fail("GetPlan", code=grpc.StatusCode.RESOURCE_EXHAUSTED, retry_delay=3.0)
    await client.get_plan(plan.id)
    assert clock.sleeps == [3.0]

    faults.fail("GetPlan", code=grpc.StatusCode.RESOURCE_EXHAUSTED)  # no RetryInfo
    with pytest.raises(RateLimitedError):
        await client.get_plan(plan.id)


async def test_deadline_exceeded_is_retried_for_reads_only(connect, faults):
    client = connect()
    plan = await client.create_plan("P")
    faults.fail("GetPlan", code=grpc.StatusCode.DEADLINE_EXCEEDED)
    await client.get_plan(plan.id)
    assert faults.calls["GetPlan"] == 2

    faults.fail("UpdatePlan", code=grpc.StatusCode.DEADLINE_EXCEEDED)
    with pytest.raises(DeadlineExceededError):
        await client.update_plan(plan.id, name="Q")
    assert faults.calls["UpdatePlan"] == 1


async def test_policy_overrides_per_client_and_per_call(connect, faults, clock):
    client = connect(retry=None)
    faults.fail("GetPlan")
    with pytest.raises(ServiceUnavailableError):
        await client.get_plan("pln_x")
    assert faults.calls["GetPlan"] == 1

    faults.fail("GetPlan", times=1)
    with pytest.raises(Exception) as info:  # the per-call policy turns retrying back on
        await client.get_plan("pln_x", retry=RetryPolicy(max_retries=1, initial_delay=0.1))
    assert info.value.status_code == grpc.StatusCode.NOT_FOUND
    assert faults.calls["GetPlan"] == 3
    assert clock.sleeps == [0.1]

    other = connect()
    faults.fail("GetPlan")
    with pytest.raises(ServiceUnavailableError):
        await other.get_plan("pln_x", retry=None)


async def test_business_errors_are_not_retried(connect, faults):
    client = connect()
    with pytest.raises(Exception) as info:
        await client.get_plan("pln_missing")
    assert info.value.status_code == grpc.StatusCode.NOT_FOUND
    assert faults.calls["GetPlan"] == 1
