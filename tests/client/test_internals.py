"""I/O-free pins of the helpers the two clients share: update requests, `service_name`,
the end of a resumable stream and the default jitter source."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import wrappers_pb2

from plansmith import (
    AsyncPlansmithClient,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    PlansmithClient,
    RetryPolicy,
    ServiceUnavailableError,
)
from plansmith._base import BaseClient
from plansmith.errors import from_rpc_error
from plansmith.interceptors import InterceptorChain
from plansmith.interceptors._common import SyncCallDetails
from plansmith.interceptors.breaker import BreakerInterceptor
from plansmith.retry import RetryStats
from plansmith.streams import AsyncResumableStream, ResumableStream

Int = wrappers_pb2.Int64Value
GET_PLAN = "/plansmith.v1.PlanService/GetPlan"

# -- update requests ---------------------------------------------------------------------


def test_update_plan_request_sets_the_given_fields_and_names_them_in_the_mask():
    req = BaseClient._update_plan_request(
        "pln_1", {"status": "ACTIVE", "description": "", "name": None}, "e1", "k1"
    )
    assert (req.plan.id, req.plan.etag, req.request_id) == ("pln_1", "e1", "k1")
    assert list(req.update_mask.paths) == ["name", "description", "status"]  # allowed order
    assert req.plan.status == 2 and req.plan.name == "" and req.plan.description == ""


def test_update_task_request_sets_the_given_fields_and_names_them_in_the_mask():
    req = BaseClient._update_task_request(
        "tsk_1", {"progress": 40, "schedule": (1.0, 2.0), "title": "T"}, "e2", None
    )
    assert (req.task.id, req.task.etag) == ("tsk_1", "e2")
    assert len(req.request_id) == 32  # a fresh idempotency key when none is given
    assert list(req.update_mask.paths) == ["title", "progress", "schedule"]
    assert req.task.progress == 40 and req.task.schedule.end_offset_hours == 2.0


@pytest.mark.parametrize(
    ("build", "what"),
    [
        (BaseClient._update_plan_request, "update_plan"),
        (BaseClient._update_task_request, "update_task"),
    ],
)
def test_an_update_without_fields_is_refused_naming_the_method(build, what):
    with pytest.raises(ValueError, match=rf"^{what}: give at least one field to change$"):
        build("x_1", {"id": "ignored"}, "", None)


# -- service_name ------------------------------------------------------------------------


def test_service_name_comes_from_the_method_unless_given():
    assert ServiceUnavailableError(method=GET_PLAN).service_name == "plansmith.v1.PlanService"
    assert ServiceUnavailableError(method=GET_PLAN, service_name="s").service_name == "s"
    assert ServiceUnavailableError("down").service_name == ""


def test_circuit_open_error_from_the_interceptor_names_method_service_and_request_id():
    breaker = CircuitBreaker("t")
    breaker.open()
    details = SyncCallDetails(GET_PLAN.encode(), None, [("x-request-id", "r1")], None, None, None)
    with pytest.raises(CircuitOpenError) as info:
        BreakerInterceptor(breaker).intercept_unary_unary(
            lambda d, r: pytest.fail("sent while open"), details, Int()
        )
    err = info.value
    assert (err.method, err.service_name, err.request_id) == (
        GET_PLAN,
        "plansmith.v1.PlanService",
        "r1",
    )


# -- the end of a resumable stream ---------------------------------------------------------


class _Unavailable(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "down"


class _SyncCall:
    def __init__(self, items: list[Any]) -> None:
        self._items: Iterator[Any] = iter(items)

    def __next__(self) -> Any:
        item = next(self._items)
        if isinstance(item, BaseException):
            raise item
        return item

    def cancel(self) -> None:
        pass


class _AioCall(_SyncCall):
    async def read(self) -> Any:
        try:
            return next(self)
        except StopIteration:
            return grpc.aio.EOF


def _method(call_type: type[_SyncCall], openings: list[list[Any]]) -> Any:
    calls: list[Any] = []

    def method(request: Any, *, timeout: Any, metadata: Any) -> Any:
        calls.append(request)
        return call_type(openings[len(calls) - 1])

    method.calls = calls  # type: ignore[attr-defined]
    return method


def _stream(cls: type[Any], method: Any, clock: Any, breaker: Any, stats: Any) -> Any:
    return cls(
        method,
        Int(value=0),
        policy=RetryPolicy(max_retries=2, initial_delay=0.5),
        breaker=breaker,
        clock=clock,
        jitter=lambda: 1.0,
        stats=stats,
    )


def _half_open_breaker(clock: Any) -> CircuitBreaker:
    breaker = CircuitBreaker("s", BreakerPolicy(reset_timeout=1.0), clock=clock)
    breaker.open()
    clock.advance(1.0)
    assert breaker.state is BreakerState.HALF_OPEN
    return breaker


def test_sync_stream_end_counts_a_success_and_stays_closed(clock):
    method = _method(_SyncCall, [[_Unavailable()], []])
    breaker, stats = CircuitBreaker("s", BreakerPolicy(failure_threshold=5)), RetryStats()
    stream = _stream(ResumableStream, method, clock, breaker, stats)
    assert list(stream) == []
    assert breaker.failure_count == 0  # the clean end was recorded as a success
    assert stats.successes_after_retry == 1 and clock.sleeps == [0.5]
    assert list(stream) == [] and len(method.calls) == 2 and stream.openings == 2  # no reopen


async def test_async_stream_end_counts_a_success_and_stays_closed(clock):
    method = _method(_AioCall, [[_Unavailable()], []])
    breaker, stats = CircuitBreaker("s", BreakerPolicy(failure_threshold=5)), RetryStats()
    stream = _stream(AsyncResumableStream, method, clock, breaker, stats)
    assert [m async for m in stream] == []
    assert breaker.failure_count == 0
    assert stats.successes_after_retry == 1 and clock.sleeps == [0.5]
    assert [m async for m in stream] == [] and len(method.calls) == 2 and stream.openings == 2


def test_sync_empty_stream_end_is_the_probes_success(clock):
    breaker = _half_open_breaker(clock)
    assert list(_stream(ResumableStream, _method(_SyncCall, [[]]), clock, breaker, None)) == []
    assert breaker.state is BreakerState.CLOSED


async def test_async_empty_stream_end_is_the_probes_success(clock):
    breaker = _half_open_breaker(clock)
    stream = _stream(AsyncResumableStream, _method(_AioCall, [[]]), clock, breaker, None)
    assert [m async for m in stream] == []
    assert breaker.state is BreakerState.CLOSED


def test_a_stream_without_a_chain_jitters_with_random():
    stream = ResumableStream(_method(_SyncCall, [[]]), Int())
    assert stream._state._jitter is random.random


# -- jitter --------------------------------------------------------------------------------


async def test_connect_jitters_with_random_unless_given_a_source():
    def mine() -> float:
        return 0.5

    clients = [
        AsyncPlansmithClient.connect("127.0.0.1:1", breaker=None),
        PlansmithClient.connect("127.0.0.1:1", breaker=None),
        AsyncPlansmithClient.connect("127.0.0.1:1", breaker=None, jitter=mine),
        PlansmithClient.connect("127.0.0.1:1", breaker=None, jitter=mine),
    ]
    try:
        assert [c.chain.jitter for c in clients] == [random.random, random.random, mine, mine]
        streams = [c.stream(c.channel.unary_stream(GET_PLAN), Int()) for c in clients]
        assert [s._state._jitter for s in streams] == [random.random, random.random, mine, mine]
        for s in streams:
            s._cancel()
    finally:
        for c in clients:
            if isinstance(c, AsyncPlansmithClient):
                await c.close()
            else:
                c.close()
    assert InterceptorChain().jitter is random.random


def test_from_rpc_error_still_fills_service_name():
    err = from_rpc_error(_Unavailable(), method=GET_PLAN)
    assert isinstance(err, ServiceUnavailableError)
    assert err.service_name == "plansmith.v1.PlanService"
