"""Every error of the one error tree reaches the client with its status code and details,
the scheduling package's too (they once escaped as INTERNAL): a real grpc.aio server with
the service's interceptor chain, a handler that raises, and the real client's mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from plansmith import errors as client_errors
from plansmith.errors import from_rpc_error
from plansmith_server.api.interceptors import chain
from plansmith_server.errors import DependencyCycleError, PlansmithError
from plansmith_server.scheduling import (
    InfeasibleProblemError,
    InvalidProblemError,
    InvalidScheduleError,
    SchedulingError,
)
from plansmith_server.telemetry import Telemetry
from tests.conftest import details_of

RAISED: dict[bytes, Exception] = {
    b"invalid": InvalidProblemError("activity 'a' has invalid duration -1"),
    b"infeasible": InfeasibleProblemError(["'a' and 'b' both fixed at 0 on agent ann"]),
    b"cycle": DependencyCycleError("dependencies", ["a", "b", "a"]),
    b"bug": InvalidScheduleError(["'a' overlaps 'b' on ann"]),
}


async def _raise(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RAISED[request]


@pytest.fixture
async def faults() -> AsyncIterator[grpc.aio.UnaryUnaryMultiCallable]:
    server = grpc.aio.server(interceptors=[chain(Telemetry.from_providers(), tracing=False)])
    handler = grpc.unary_unary_rpc_method_handler(_raise)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("test.Faults", {"Raise": handler})]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel.unary_unary("/test.Faults/Raise")
    finally:
        await server.stop(None)


async def _fail(call: grpc.aio.UnaryUnaryMultiCallable, kind: bytes) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call(kind)
    return e.value


def test_scheduling_errors_are_branches_of_the_one_tree() -> None:
    for exc in RAISED.values():
        assert isinstance(exc, PlansmithError)
    for exc in (RAISED[b"invalid"], RAISED[b"infeasible"], RAISED[b"bug"]):
        assert isinstance(exc, SchedulingError)


async def test_an_invalid_problem_is_invalid_argument_with_a_field_violation(faults) -> None:
    err = await _fail(faults, b"invalid")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = details_of(err)
    assert details["ErrorInfo"].reason == "INVALID_PROBLEM"
    (v,) = details["BadRequest"].field_violations
    assert v.field == "tasks" and "invalid duration -1" in v.description
    assert isinstance(from_rpc_error(err), client_errors.ValidationError)


async def test_an_infeasible_problem_is_failed_precondition_naming_the_conflicts(faults) -> None:
    err = await _fail(faults, b"infeasible")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = details_of(err)
    assert details["ErrorInfo"].reason == "INFEASIBLE_PROBLEM"
    (v,) = details["PreconditionFailure"].violations
    assert v.type == "INFEASIBLE_PROBLEM" and "both fixed at 0" in v.description
    mapped = from_rpc_error(err)
    assert isinstance(mapped, client_errors.PreconditionFailedError)
    assert mapped.violations[0].description == v.description


async def test_a_scheduling_cycle_is_written_like_a_plan_write_cycle(faults) -> None:
    err = await _fail(faults, b"cycle")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = details_of(err)["ErrorInfo"]
    assert info.reason == "DEPENDENCY_CYCLE"
    assert info.metadata["cycle"] == "a -> b -> a" and info.metadata["cycle_length"] == "2"


async def test_a_solver_bug_is_internal_and_leaks_no_text(faults) -> None:
    err = await _fail(faults, b"bug")
    assert err.code() == grpc.StatusCode.INTERNAL
    assert "overlaps" not in (err.details() or "")
    assert "request id" in (err.details() or "")
    assert details_of(err)["ErrorInfo"].reason == "INTERNAL"
