"""Error paths of the client: bad arguments refused before any call, corrupt error
details, hooks and listeners that fail, deadlines already gone, and a client built on a
bare channel (no interceptors). Both clients, against the real server unless the path
never leaves the process."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from plansmith import (
    UNSET,
    AsyncPlansmithClient,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    ConflictError,
    DeadlineExceededError,
    EtagMismatchError,
    MaxRetriesExceededError,
    PlansmithClient,
    ResourceNotFoundError,
    ServiceUnavailableError,
    ValidationError,
    parse_enum,
)
from plansmith.errors import error_class_for
from plansmith.v1 import plan_service_pb2, task_pb2
from plansmith_server.app import Running
from tests.client.conftest import Client, Faults

DETAILS_KEY = "grpc-status-details-bin"

# -- arguments refused before any call ----------------------------------------------------


@pytest.mark.parametrize("page", [0, -1, True, False])
async def test_a_page_number_below_one_is_refused_before_any_call(client, faults, page):
    # `True` is an int to Python; as a page it is a mistake, not page 1.
    plan = await client.create_plan("P")
    with pytest.raises(ValueError, match="page number >= 1"):
        await client.get_tasks(plan.id, page=page)
    with pytest.raises(ValueError, match="page number >= 1"):
        await client.get_plans(page=page)
    assert faults.calls["ListTasks"] == 0 and faults.calls["ListPlans"] == 0


async def test_a_string_for_a_list_field_is_refused_not_split_into_characters(client, faults):
    # Iterating a string gives its characters: `objectives="go live"` would be sent as
    # seven one-letter objectives. Every path that fills a list field must refuse it.
    plan = await client.create_plan("P")
    create_task, update_plan = client.create_task, client.update_plan
    one_agent = {"id": "bob"}  # an agent, where a list of them is wanted
    cases = [
        ("objectives", lambda: client.create_plan("Q", objectives="go live")),
        ("agents", lambda: client.create_plan("Q", agents="alice")),
        ("agents", lambda: update_plan(plan.id, agents=one_agent)),
        ("constraints", lambda: update_plan(plan.id, constraints="no weekends")),
        ("dependencies", lambda: create_task("t", plan_id=plan.id, dependencies="tsk_1")),
        (
            "acceptance_criteria",
            lambda: create_task("t", plan_id=plan.id, acceptance_criteria="ok"),
        ),
        ("dependencies", lambda: client.batch_create_tasks(plan.id, [{"dependencies": "a"}])),
        ("requirements", lambda: client.generate_plan("G", "d", requirements="card payments")),
        # A mapping, iterated, gives its keys: an agent named "id", objectives "a" and "b".
        ("available_agents", lambda: client.generate_plan("G", "d", available_agents=one_agent)),
        ("objectives", lambda: client.create_plan("Q", objectives={"a": 1, "b": 2})),
    ]
    for field, call in cases:
        with pytest.raises(TypeError, match=rf"^{field}: expected a list"):
            await call()
    for method in ("UpdatePlan", "CreateTask", "BatchCreateTasks", "GeneratePlan"):
        assert faults.calls[method] == 0, method
    assert faults.calls["CreatePlan"] == 1  # only the plan made above
    assert await client.get_plan(plan.id) == plan


async def test_a_value_of_the_wrong_type_names_its_field(client, faults):
    # protobuf's own message ("bad argument type for built-in operation") does not say
    # which of a dozen keyword arguments was wrong.
    plan = await client.create_plan("P")
    task = await client.create_task("t", plan_id=plan.id)
    cases = [
        ("name", lambda: client.update_plan(plan.id, name=5)),
        ("metadata", lambda: client.update_plan(plan.id, metadata={"team": object()})),
        ("metadata", lambda: client.update_plan(plan.id, metadata={1: "one"})),
        ("progress", lambda: client.update_task(task.id, progress="40")),
        ("estimated_hours", lambda: client.create_task("u", plan_id=plan.id, estimated_hours="4h")),
        ("schedule", lambda: client.update_task(task.id, schedule=5)),
    ]
    for field, call in cases:
        with pytest.raises(TypeError, match=rf"\b{field}\b"):
            await call()
    assert faults.calls["UpdatePlan"] == faults.calls["UpdateTask"] == 0
    assert faults.calls["CreateTask"] == 1


async def test_a_malformed_value_names_its_field_too(client, faults):
    # ValueErrors from converting the caller's value (an unknown key in an agent dict,
    # a schedule of three numbers) name the field like the TypeErrors above.
    plan = await client.create_plan("P")
    task = await client.create_task("t", plan_id=plan.id)
    cases = [
        ("agents", lambda: client.update_plan(plan.id, agents=[{"id": "a", "nope": 1}])),
        ("schedule", lambda: client.update_task(task.id, schedule=(1, 2, 3))),
        (
            "available_agents",
            lambda: client.generate_plan("G", "d", available_agents=[{"nope": 1}]),
        ),
    ]
    for field, call in cases:
        with pytest.raises(ValueError, match=rf"^{field}: cannot take"):
            await call()
    for method in ("UpdatePlan", "UpdateTask", "GeneratePlan"):
        assert faults.calls[method] == 0, method


async def test_update_plan_needs_a_field_to_change(client, faults):
    # An empty update mask means "replace every field" to the server (AIP-134): the
    # client must not send one by accident.
    plan = await client.create_plan("P")
    with pytest.raises(ValueError, match="update_plan: give at least one field"):
        await client.update_plan(plan.id)
    with pytest.raises(ValueError, match="update_plan: give at least one field"):
        await client.update_plan(plan.id, name=UNSET, etag=plan.etag, request_id="k1")
    assert faults.calls["UpdatePlan"] == 0
    assert await client.get_plan(plan.id) == plan


@pytest.mark.parametrize("value", [True, False, 2.0, None, b"HIGH", ["HIGH"]])
def test_parse_enum_refuses_what_is_neither_a_name_nor_a_number(value):
    # A bool is an int to Python: without its own check True would pass as value 1.
    with pytest.raises(TypeError, match="TaskPriority: expected a name or number"):
        parse_enum(task_pb2.TaskPriority, value)


async def test_an_enum_argument_of_the_wrong_type_fails_before_the_call(client, faults):
    plan = await client.create_plan("P")
    with pytest.raises(TypeError, match="TaskPriority"):
        await client.create_task("t", plan_id=plan.id, priority=True)
    with pytest.raises(TypeError, match="TaskStatus"):
        await client.get_tasks(plan.id, status=2.0)
    with pytest.raises(TypeError, match="PlanStatus"):
        await client.update_plan(plan.id, status=False)
    assert faults.calls["CreateTask"] == faults.calls["ListTasks"] == 0
    assert faults.calls["UpdatePlan"] == 0


# -- corrupt error details --------------------------------------------------------------


class _CorruptDetails:
    """A tiny real server whose GetPlan fails with `code`, `message` and the given bytes
    as its `grpc-status-details-bin` trailer."""

    def __init__(self) -> None:
        self.code = grpc.StatusCode.NOT_FOUND
        self.message = "plan 'pln_1' not found"
        self.trailer = b""
        self.calls = 0

    async def get_plan(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.calls += 1
        await context.abort(
            self.code, self.message, trailing_metadata=((DETAILS_KEY, self.trailer),)
        )

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            "plansmith.v1.PlanService",
            {
                "GetPlan": grpc.unary_unary_rpc_method_handler(
                    self.get_plan,
                    request_deserializer=plan_service_pb2.GetPlanRequest.FromString,
                    response_serializer=plan_service_pb2.GetPlanResponse.SerializeToString,
                )
            },
        )


@pytest.fixture
async def corrupt() -> AsyncIterator[tuple[_CorruptDetails, str]]:
    backend = _CorruptDetails()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((backend.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield backend, f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@contextlib.asynccontextmanager
async def _opened(kind: str, address: str, **kwargs: Any) -> AsyncIterator[Client]:
    """A client of `kind`: `async` / `sync` with the interceptor chain, `async-raw` /
    `sync-raw` on a bare channel; closed on the way out."""
    if kind == "async":
        client = Client(AsyncPlansmithClient.connect(address, **kwargs))
    elif kind == "sync":
        client = Client(PlansmithClient.connect(address, **kwargs))
    elif kind == "async-raw":
        client = Client(AsyncPlansmithClient(grpc.aio.insecure_channel(address), owns_channel=True))
    else:
        client = Client(PlansmithClient(grpc.insecure_channel(address), owns_channel=True))
    try:
        yield client
    finally:
        await client.close()  # the wrapper runs a sync client's close in a thread


def _any(msg: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(msg)
    return packed


_GOOD = status_pb2.Status(
    code=5, message="plan 'pln_1' not found", details=[_any(error_details_pb2.ErrorInfo())]
).SerializeToString()
GARBAGE = {
    "random": random.Random(20240607).randbytes(48),
    "truncated": _GOOD[:-3],
    "bad-utf8": b"\x12\x02\xff\xfe",  # Status.message with invalid UTF-8
}


@pytest.mark.parametrize("kind", ["async", "sync", "async-raw", "sync-raw"])
@pytest.mark.parametrize("garbage", list(GARBAGE))
async def test_a_corrupt_status_details_trailer_still_gives_the_typed_error(corrupt, kind, garbage):
    backend, address = corrupt
    backend.trailer = GARBAGE[garbage]
    with pytest.raises(DecodeError):  # the trailer really is not a google.rpc.Status
        status_pb2.Status.FromString(backend.trailer)
    async with _opened(kind, address, retry=None, breaker=None) as client:
        with pytest.raises(ResourceNotFoundError) as info:
            await client.get_plan("pln_1")
    err = info.value
    assert backend.calls == 1  # the server's answer, not a local failure
    assert err.status_code == grpc.StatusCode.NOT_FOUND
    assert err.message == "plan 'pln_1' not found"
    assert err.error_details == [] and err.reason == ""
    assert err.method == "/plansmith.v1.PlanService/GetPlan"


@pytest.mark.parametrize("kind", ["async", "sync", "async-raw", "sync-raw"])
async def test_one_corrupt_detail_does_not_lose_the_others(corrupt, kind):
    # A Status that parses but carries one undecodable detail: the ErrorInfo next to it
    # still picks the class (EtagMismatchError, not the code's ConflictError).
    backend, address = corrupt
    backend.code, backend.message = grpc.StatusCode.ABORTED, "stale etag"
    broken = any_pb2.Any(type_url="type.googleapis.com/google.rpc.BadRequest", value=b"\xff\xff")
    info = error_details_pb2.ErrorInfo(reason="ETAG_MISMATCH", domain="plansmith.dev")
    backend.trailer = status_pb2.Status(
        code=10, message="stale etag", details=[broken, _any(info)]
    ).SerializeToString()
    async with _opened(kind, address, retry=None, breaker=None) as client:
        with pytest.raises(ConflictError) as caught:
            await client.get_plan("pln_1")
    err = caught.value
    assert type(err) is EtagMismatchError
    assert (err.reason, err.domain, err.message) == ("ETAG_MISMATCH", "plansmith.dev", "stale etag")
    assert err.detail(error_details_pb2.ErrorInfo) == info
    assert broken in err.error_details  # kept as it came, like a detail of an unknown type


# -- hooks and listeners that fail --------------------------------------------------------


def _logged(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(1 for r in caplog.records if r.name == "plansmith.client" and text in r.message)


async def test_a_failing_on_retry_hook_does_not_break_the_call(connect, faults, clock, caplog):
    # The hook is for observing; its bug is logged, and the call retries as if it worked.
    attempts: list[int] = []

    def hook(event: Any) -> None:
        attempts.append(event.attempt)
        raise RuntimeError("bug in the hook")

    client = connect(on_retry=hook)
    plan = await client.create_plan("P")
    faults.fail("GetPlan", times=2)
    with caplog.at_level(logging.ERROR, logger="plansmith.client"):
        assert (await client.get_plan(plan.id)).id == plan.id
        assert attempts == [1, 2] and clock.sleeps == [0.5, 1.0]
        assert faults.calls["GetPlan"] == 3

        # When retries run out, the caller gets the call's error, not the hook's.
        faults.fail("GetPlan", times=3)
        with pytest.raises(MaxRetriesExceededError) as info:
            await client.get_plan(plan.id)
    assert info.value.attempts == 3 and attempts == [1, 2, 1, 2]
    assert _logged(caplog, "on_retry hook failed") == 4
    stats = client.client.retry_stats.snapshot()
    assert (stats["retries"], stats["successes_after_retry"], stats["exhausted"]) == (4, 1, 1)


async def test_a_failing_breaker_listener_breaks_neither_calls_nor_the_breaker(
    connect, faults, clock, caplog
):
    breaker = CircuitBreaker("t", BreakerPolicy(failure_threshold=2, reset_timeout=10), clock=clock)
    heard: list[BreakerState] = []

    def broken(b: CircuitBreaker, old: BreakerState, new: BreakerState) -> None:
        raise RuntimeError("bug in the listener")

    breaker.add_listener(broken)
    breaker.add_listener(lambda b, old, new: heard.append(new))  # still told, after it
    client = connect(breaker=breaker, retry=None)
    plan = await client.create_plan("P")
    faults.fail("GetPlan", times=2)
    with caplog.at_level(logging.ERROR, logger="plansmith.client"):
        for _ in range(2):  # the second failure trips it: its caller sees its own error
            with pytest.raises(ServiceUnavailableError):
                await client.get_plan(plan.id)
        assert breaker.state is BreakerState.OPEN
        with pytest.raises(CircuitOpenError):
            await client.get_plan(plan.id)
        assert faults.calls["GetPlan"] == 2

        clock.advance(10)
        assert (await client.get_plan(plan.id)).id == plan.id  # the probe closes it
    assert breaker.state is BreakerState.CLOSED and breaker.failure_count == 0
    assert heard == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]
    assert _logged(caplog, "circuit breaker listener failed") == 3


def test_a_listener_sees_the_new_state_and_may_read_the_breaker(clock):
    # A listener that logs the breaker (`f"{breaker}"` reads its state) must see the state
    # it is told about and must not deadlock the breaker; a regression hangs the worker
    # thread, so it runs as a daemon and the test fails instead of hanging.
    breaker = CircuitBreaker("t", BreakerPolicy(failure_threshold=1, reset_timeout=5), clock=clock)
    seen: list[tuple[BreakerState, BreakerState, str]] = []
    breaker.add_listener(lambda b, old, new: seen.append((new, b.state, repr(b))))
    unavailable = error_class_for(grpc.StatusCode.UNAVAILABLE)(
        "down", status_code=grpc.StatusCode.UNAVAILABLE
    )

    def scenario() -> None:
        breaker.record(breaker.admit(), unavailable)  # opens
        clock.advance(5)
        probe = breaker.admit()  # half-opens
        breaker.record(probe, None)  # closes

    worker = threading.Thread(target=scenario, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the breaker deadlocked in a listener"
    assert [(new, state) for new, state, _ in seen] == [
        (BreakerState.OPEN, BreakerState.OPEN),
        (BreakerState.HALF_OPEN, BreakerState.HALF_OPEN),
        (BreakerState.CLOSED, BreakerState.CLOSED),
    ]
    assert seen[0][2] == "CircuitBreaker('t', state=open)"


def test_a_change_made_through_pybreaker_is_told_at_the_next_use(clock):
    """`breaker.pybreaker` is public: a change made through it is queued like any other
    and told when the breaker is next used (it was never told)."""
    breaker = CircuitBreaker("t", BreakerPolicy(reset_timeout=5), clock=clock)
    seen: list[tuple[BreakerState, BreakerState]] = []
    breaker.add_listener(lambda b, old, new: seen.append((old, new)))
    breaker.pybreaker.open()
    assert breaker.state is BreakerState.OPEN
    assert seen == [(BreakerState.CLOSED, BreakerState.OPEN)]
    breaker.pybreaker.close()
    breaker.admit()  # the closed fast path tells it too
    assert seen[-1] == (BreakerState.OPEN, BreakerState.CLOSED) and len(seen) == 2


PURE_PYTHON_DETAILS = r"""
import grpc
from plansmith import ResourceNotFoundError
from plansmith.errors import from_rpc_error
from google.protobuf.internal import api_implementation
assert api_implementation.Type() == "python", api_implementation.Type()
bad_utf8 = b"\x12\x02\xff\xfe"  # a Status whose message is not UTF-8
for details in (bad_utf8, b"\x08\x05\x1a\x06\x0a\x02\xff\xfe\x12\x00"):
    err = grpc.aio.AioRpcError(
        grpc.StatusCode.NOT_FOUND,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(("grpc-status-details-bin", details)),
        details="gone",
    )
    mapped = from_rpc_error(err, method="/plansmith.v1.PlanService/GetPlan")
    assert isinstance(mapped, ResourceNotFoundError), type(mapped)
print("ok")
"""


def test_corrupt_details_under_the_pure_python_protobuf_give_the_typed_error():
    """The pure-Python protobuf raises UnicodeDecodeError, not DecodeError, for text
    fields that are not UTF-8 (the C one here raises DecodeError): both are caught."""
    import os
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", PURE_PYTHON_DETAILS],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"},
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# -- deadlines already gone ---------------------------------------------------------------


@pytest.mark.parametrize("deadline", [0, -1.0])
async def test_a_call_past_its_deadline_fails_at_once_without_reaching_the_server(
    connect, faults, clock, deadline
):
    # The breaker must not count it either: the target was never asked.
    breaker = CircuitBreaker("t", BreakerPolicy(failure_threshold=1), clock=clock)
    client = connect(breaker=breaker)
    with pytest.raises(DeadlineExceededError) as info:
        await client.get_plan("pln_x", timeout=deadline)
    err = info.value
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert err.attempts == 0 and err.method == "/plansmith.v1.PlanService/GetPlan"
    with pytest.raises(DeadlineExceededError):  # a write: never sent, so never applied
        await client.create_plan("P", timeout=deadline)
    assert faults.calls["GetPlan"] == faults.calls["CreatePlan"] == 0
    assert client.client.retry_stats.attempts == 0 and clock.sleeps == []
    assert breaker.state is BreakerState.CLOSED and breaker.failure_count == 0
    assert (await client.get_plans()).total_size == 0


@pytest.fixture
async def raw(kind: str, fault_server: Running) -> AsyncIterator[Client]:
    """A client of the parametrized kind on a bare channel: no interceptor chain."""
    async with _opened(f"{kind}-raw", fault_server.address) as client:
        yield client


async def test_a_raw_client_past_its_deadline_raises_the_typed_error(raw, faults):
    # grpc alone sends such a call anyway and, timers permitting, returns its answer
    # (NOT_FOUND here); the client refuses it before sending, as the chain does.
    for timeout in (0, -1.0):
        with pytest.raises(DeadlineExceededError) as info:
            await raw.get_plan("pln_x", timeout=timeout)
        err = info.value
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert err.attempts == 0 and err.method == "/plansmith.v1.PlanService/GetPlan"
    assert faults.calls["GetPlan"] == 0


# -- a client without the interceptor chain -------------------------------------------------


async def test_a_raw_client_maps_grpc_errors_to_typed_errors(raw, faults: Faults):
    assert raw.client.chain is None and raw.client.breaker is None
    assert raw.client.retry_stats is None

    with pytest.raises(ResourceNotFoundError) as nf:
        await raw.get_plan("pln_missing")
    err = nf.value
    assert type(err) is ResourceNotFoundError  # not grpc's own error object
    assert err.code() == grpc.StatusCode.NOT_FOUND and err.reason == "PLAN_NOT_FOUND"
    assert (err.resource_type, err.resource_id) == ("plan", "pln_missing")
    assert err.method == "/plansmith.v1.PlanService/GetPlan"
    assert err.request_id  # the id the server made up and echoed

    with pytest.raises(ValidationError) as bad:
        await raw.create_plan("")
    assert any("name" in v.field for v in bad.value.validation_errors)

    faults.fail("GetPlan", code=grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(ServiceUnavailableError) as down:
        await raw.get_plan("pln_x")
    assert down.value.service_name == "plansmith.v1.PlanService"
    assert faults.calls["GetPlan"] == 2  # no chain, no retry
