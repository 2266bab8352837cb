"""Resumable server streams: reopen after a failure, cancel when the consumer stops.

A test-only streaming service (`plansmith.test.Counter/Count`: from `start`, one number
per message) runs on its own grpc.aio server; StreamGeneratePlan runs on the real one.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import wrappers_pb2

from plansmith import (
    AsyncPlansmithClient,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    PlansmithClient,
    ServiceUnavailableError,
)
from plansmith.streams import ResumableStream

METHOD = "/plansmith.test.Counter/Count"
Int = wrappers_pb2.Int64Value


class Counter:
    def __init__(self) -> None:
        self.opens: list[int] = []
        self.metadata: list[dict[str, str]] = []
        self.fail_after: list[int] = []  # per opening: fail after this many messages
        self.end = 10
        self.forever = False
        self.cancelled = asyncio.Event()

    async def count(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        self.opens.append(request.value)
        self.metadata.append(dict(context.invocation_metadata() or ()))
        fail_after = self.fail_after.pop(0) if self.fail_after else None
        try:
            sent = 0
            value = request.value
            while self.forever or value < self.end:
                if fail_after is not None and sent == fail_after:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "injected")
                yield Int(value=value)
                sent += 1
                value += 1
                if self.forever and sent >= 3:
                    await asyncio.Event().wait()  # hold the stream open until cancelled
        except (asyncio.CancelledError, GeneratorExit):
            # CancelledError if the cancel finds the handler waiting; GeneratorExit if it
            # finds it at a `yield` (grpc then closes the generator instead).
            self.cancelled.set()
            raise


@pytest.fixture
async def counter() -> AsyncIterator[tuple[Counter, str]]:
    svc = Counter()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "plansmith.test.Counter",
                {
                    "Count": grpc.unary_stream_rpc_method_handler(
                        svc.count,
                        request_deserializer=Int.FromString,
                        response_serializer=Int.SerializeToString,
                    )
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield svc, f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


def _resume(request: Any, last: Any) -> Any:
    return Int(value=last.value + 1)


async def test_async_stream_resumes_after_failures(counter, clock):
    svc, address = counter
    svc.fail_after = [3, 0, 4]  # fails mid-stream, then at once on reopening, then again
    async with AsyncPlansmithClient.connect(address, clock=clock, jitter=lambda: 1.0) as client:
        async with client.stream(
            client.channel.unary_stream(
                METHOD,
                request_serializer=Int.SerializeToString,
                response_deserializer=Int.FromString,
            ),
            Int(value=0),
            resume=_resume,
        ) as stream:
            values = [m.value async for m in stream]
    assert values == list(range(10))  # each exactly once, in order
    assert svc.opens == [0, 3, 3, 7]
    assert stream.openings == 4
    assert len({m["x-request-id"] for m in svc.metadata}) == 1
    assert clock.sleeps == [0.5, 1.0, 0.5]  # progress resets the retry budget


async def test_sync_stream_resumes_and_closes(counter, clock):
    svc, address = counter
    svc.fail_after = [5]

    def run() -> list[int]:
        with PlansmithClient.connect(address, clock=clock, jitter=lambda: 1.0) as client:
            method = client.channel.unary_stream(
                METHOD,
                request_serializer=Int.SerializeToString,
                response_deserializer=Int.FromString,
            )
            with client.stream(method, Int(value=0), resume=_resume) as stream:
                return [m.value for m in stream]

    assert await asyncio.to_thread(run) == list(range(10))
    assert svc.opens == [0, 5]


async def test_without_resume_a_started_stream_is_not_replayed(counter, clock):
    svc, address = counter
    svc.fail_after = [2]
    async with AsyncPlansmithClient.connect(address, clock=clock) as client:
        method = client.channel.unary_stream(
            METHOD, request_serializer=Int.SerializeToString, response_deserializer=Int.FromString
        )
        got = []
        with pytest.raises(ServiceUnavailableError):
            async with client.stream(method, Int(value=0)) as stream:
                async for m in stream:
                    got.append(m.value)
    assert got == [0, 1] and svc.opens == [0]


async def test_leaving_early_cancels_the_call(counter):
    svc, address = counter
    svc.forever = True
    async with AsyncPlansmithClient.connect(address) as client:
        method = client.channel.unary_stream(
            METHOD, request_serializer=Int.SerializeToString, response_deserializer=Int.FromString
        )
        async with client.stream(method, Int(value=0)) as stream:
            async for m in stream:
                if m.value == 1:
                    break
        await asyncio.wait_for(svc.cancelled.wait(), 5)


async def test_sync_leaving_early_cancels_the_call(counter):
    svc, address = counter
    svc.forever = True

    def run() -> None:
        with PlansmithClient.connect(address) as client:
            method = client.channel.unary_stream(
                METHOD,
                request_serializer=Int.SerializeToString,
                response_deserializer=Int.FromString,
            )
            with client.stream(method, Int(value=0)) as stream:
                for m in stream:
                    if m.value == 1:
                        break

    await asyncio.to_thread(run)
    await asyncio.wait_for(svc.cancelled.wait(), 5)


async def test_stream_openings_go_through_the_breaker(counter, clock):
    svc, address = counter
    svc.fail_after = [0, 0]
    breaker = CircuitBreaker("s", BreakerPolicy(failure_threshold=2), clock=clock)
    async with AsyncPlansmithClient.connect(address, clock=clock, breaker=breaker) as client:
        method = client.channel.unary_stream(
            METHOD, request_serializer=Int.SerializeToString, response_deserializer=Int.FromString
        )
        with pytest.raises(ServiceUnavailableError):  # CircuitOpenError on the 3rd opening
            async with client.stream(method, Int(value=0), resume=_resume) as stream:
                async for _ in stream:
                    pass
        assert breaker.state is BreakerState.OPEN
        assert svc.opens == [0, 0]


async def test_stream_generate_plan_end_to_end(fault_server):
    async with AsyncPlansmithClient.connect(fault_server.address, breaker=None) as client:
        async with client.stream_generate_plan(
            "Web shop",
            "Build an online shop with payments and user accounts",
            requirements=["card payments", "user login"],
        ) as stream:
            events = [e async for e in stream]
    assert events[0].WhichOneof("event") == "started"
    assert events[-1].WhichOneof("event") == "completed"
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))


async def test_replaying_stream_skips_what_was_delivered(counter, clock):
    svc, address = counter
    svc.fail_after = [4, 6]  # every opening replays from 0, like StreamGeneratePlan
    async with AsyncPlansmithClient.connect(address, clock=clock) as client:
        method = client.channel.unary_stream(
            METHOD, request_serializer=Int.SerializeToString, response_deserializer=Int.FromString
        )
        async with client.stream(
            method,
            Int(value=0),
            resume=lambda request, last: request,
            seen=lambda last, m: m.value <= last.value,
        ) as stream:
            values = [m.value async for m in stream]
    assert values == list(range(10)) and svc.opens == [0, 0, 0]


def _counting(client: Any) -> Any:
    return client.channel.unary_stream(
        METHOD, request_serializer=Int.SerializeToString, response_deserializer=Int.FromString
    )


async def test_a_clean_end_after_a_retry_counts_a_success_and_the_stream_stays_done(counter, clock):
    """The end of a stream tells the breaker and the retry counters it went well, and a
    finished stream does not reopen when iterated again."""
    svc, address = counter
    svc.fail_after = [2]
    breaker = CircuitBreaker("s", BreakerPolicy(failure_threshold=5), clock=clock)
    async with AsyncPlansmithClient.connect(
        address, clock=clock, jitter=lambda: 1.0, breaker=breaker
    ) as client:
        async with client.stream(_counting(client), Int(value=0), resume=_resume) as stream:
            assert [m.value async for m in stream] == list(range(10))
            assert breaker.failure_count == 0  # the failure was followed by a success
            assert client.retry_stats.successes_after_retry == 1 and clock.sleeps == [0.5]
            assert [m async for m in stream] == []
        assert svc.opens == [0, 2] and stream.openings == 2


async def test_sync_a_clean_end_after_a_retry_counts_a_success_and_the_stream_stays_done(
    counter, clock
):
    svc, address = counter
    svc.fail_after = [2]
    breaker = CircuitBreaker("s", BreakerPolicy(failure_threshold=5), clock=clock)

    def run() -> tuple[list[int], list[int], int, int]:
        with PlansmithClient.connect(
            address, clock=clock, jitter=lambda: 1.0, breaker=breaker
        ) as client:
            with client.stream(_counting(client), Int(value=0), resume=_resume) as stream:
                values = [m.value for m in stream]
                again = [m.value for m in stream]
                return values, again, client.retry_stats.successes_after_retry, stream.openings

    values, again, successes, openings = await asyncio.to_thread(run)
    assert values == list(range(10)) and again == []
    assert breaker.failure_count == 0 and successes == 1 and clock.sleeps == [0.5]
    assert svc.opens == [0, 2] and openings == 2


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_an_empty_stream_is_the_half_open_probes_success(counter, clock, kind):
    svc, address = counter
    svc.end = 0  # the stream ends at once, without a message
    breaker = CircuitBreaker("s", BreakerPolicy(reset_timeout=1.0), clock=clock)
    breaker.open()
    clock.advance(1.0)
    assert breaker.state is BreakerState.HALF_OPEN
    if kind == "async":
        async with AsyncPlansmithClient.connect(address, clock=clock, breaker=breaker) as client:
            async with client.stream(_counting(client), Int(value=0)) as stream:
                assert [m async for m in stream] == []
    else:

        def run() -> list[Any]:
            with PlansmithClient.connect(address, clock=clock, breaker=breaker) as client:
                with client.stream(_counting(client), Int(value=0)) as stream:
                    return list(stream)

        assert await asyncio.to_thread(run) == []
    assert breaker.state is BreakerState.CLOSED and svc.opens == [0]


def test_a_stream_without_a_chain_jitters_with_random(counter):
    _, address = counter
    with grpc.insecure_channel(address) as channel:
        method = channel.unary_stream(
            METHOD, request_serializer=Int.SerializeToString, response_deserializer=Int.FromString
        )
        stream = ResumableStream(method, Int())
        assert stream._state._jitter is random.random
