"""The breaker's edges: a cancelled call counts as nothing, and no Retry-After disables a
backend for longer than an hour."""

from __future__ import annotations

import asyncio

import pytest

from plansmith.v1 import generation_pb2 as G
from plansmith.v1 import ops_service_pb2
from plansmith_server.backends.breakers import CLOSED, HALF_OPEN, OPEN, BackendBreaker
from plansmith_server.backends.errors import BackendHealthError, RateLimitedError
from plansmith_server.backends.llm import retry_after
from tests.backends.conftest import backend_toml, every_request_to
from tests.backends.test_llm_backend import GOOD, generate, outcomes, status
from tests.support.openai_server import Reply


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def fail(breaker: BackendBreaker, exc: BaseException) -> None:
    with pytest.raises(type(exc)), breaker.calling():
        raise exc


async def cancelled(breaker: BackendBreaker) -> None:
    async def call() -> None:
        with breaker.calling():
            await asyncio.Event().wait()

    task = asyncio.ensure_future(call())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancelled_call_keeps_the_failure_count():
    breaker = BackendBreaker("b", fail_max=3, reset_timeout=60)
    await fail(breaker, BackendHealthError("down"))
    await fail(breaker, BackendHealthError("down"))
    await cancelled(breaker)
    assert breaker.state == CLOSED
    await fail(breaker, BackendHealthError("down"))  # the third failure in a row
    assert breaker.state == OPEN


async def test_a_cancelled_half_open_trial_leaves_the_breaker_half_open():
    clock = Clock()
    breaker = BackendBreaker("b", fail_max=5, reset_timeout=60, clock=clock)
    await fail(breaker, RateLimitedError("HTTP 429", 5.0))
    assert breaker.state == OPEN
    clock.now += 6
    assert breaker.state == HALF_OPEN
    await cancelled(breaker)  # the trial
    assert breaker.state == HALF_OPEN
    await fail(breaker, BackendHealthError("down"))  # the next trial fails: open again
    assert breaker.state == OPEN


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("inf", None),
        ("1e400", None),
        ("nan", None),
        ("-5", None),
        ("99999", 3600.0),
        ("2.5", 2.5),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 3600.0),
    ],
)
def test_retry_after_is_finite_and_at_most_an_hour(header, seconds):
    assert retry_after(header) == seconds


async def test_an_infinite_retry_after_does_not_disable_the_backend(llm, plansmith):
    llm.script("m", Reply(status=429, headers={"Retry-After": "1e400"}), Reply(GOOD))
    running = await plansmith(backend_toml("llm", "m") + every_request_to("llm"))
    first = await generate(running)
    assert outcomes(first.attempts) == [("llm", G.ATTEMPT_OUTCOME_FAILED)]
    s = (await status(running))["llm"]
    assert s.breaker_state == ops_service_pb2.BREAKER_STATE_CLOSED
    again = await generate(running)
    assert again.result.backend == "llm"


async def test_a_huge_retry_after_opens_the_breaker_for_an_hour_at_most(llm, plansmith):
    llm.script("m", Reply(status=429, headers={"Retry-After": "99999999"}))
    running = await plansmith(backend_toml("llm", "m") + every_request_to("llm"))
    await generate(running)
    s = (await status(running))["llm"]
    assert s.breaker_state == ops_service_pb2.BREAKER_STATE_OPEN
    assert 3500 < s.open_seconds_left <= 3600
