"""The client's surface: every RPC wrapped, raw stubs reachable, twins alike, `__all__`."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import grpc
import pytest

import plansmith
import plansmith.v1
from plansmith import AsyncPlansmithClient, PlansmithClient
from plansmith._base import RPC_METHODS, SERVICE_STUBS


def _services():
    for info in pkgutil.iter_modules(plansmith.v1.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"plansmith.v1.{info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            grpc_module = importlib.import_module(f"plansmith.v1.{info.name}_grpc")
            yield service, getattr(grpc_module, f"{service.name}Stub")


SERVICES = list(_services())


def test_services_are_found():
    assert "plansmith.v1.PlanService" in {s.full_name for s, _ in SERVICES}


@pytest.mark.parametrize("service", [s for s, _ in SERVICES], ids=lambda s: s.name)
def test_every_rpc_has_a_client_method(service):
    missing = []
    for method in service.methods:
        name = RPC_METHODS.get(f"/{service.full_name}/{method.name}")
        for cls in (AsyncPlansmithClient, PlansmithClient):
            if name is None or not callable(getattr(cls, name, None)):
                missing.append(f"{cls.__name__}: {service.name}.{method.name}")
    assert not missing, "RPCs without a client method: " + ", ".join(missing)


async def test_every_service_has_a_raw_stub_on_both_clients():
    aio = AsyncPlansmithClient(grpc.aio.insecure_channel("127.0.0.1:1"), owns_channel=True)
    sync = PlansmithClient(grpc.insecure_channel("127.0.0.1:1"), owns_channel=True)
    try:
        for service, stub_cls in SERVICES:
            attr = SERVICE_STUBS.get(service.full_name)
            assert attr, f"no raw stub attribute for {service.full_name}"
            for client in (aio, sync):
                stub = getattr(client, attr)
                assert isinstance(stub, stub_cls)
                for method in service.methods:
                    assert callable(getattr(stub, method.name))
    finally:
        await aio.close()
        sync.close()


def _public(cls):
    return {
        n: inspect.signature(f)
        for n, f in inspect.getmembers(cls, callable)
        if not n.startswith("_") and n not in ("connect",)
    }


def test_sync_and_async_clients_are_twins():
    aio, sync = _public(AsyncPlansmithClient), _public(PlansmithClient)
    assert aio.keys() == sync.keys()
    for name, sig in aio.items():
        assert list(sig.parameters) == list(sync[name].parameters), name
    assert list(inspect.signature(AsyncPlansmithClient.connect).parameters) == list(
        inspect.signature(PlansmithClient.connect).parameters
    )
    streaming = {
        RPC_METHODS[f"/{service.full_name}/{m.name}"]
        for service, _ in SERVICES
        for m in service.methods
        if m.server_streaming
    }
    assert {"stream_generate_plan", "watch_plan"} <= streaming
    for name in RPC_METHODS.values():
        is_stream = name in streaming
        assert inspect.iscoroutinefunction(getattr(AsyncPlansmithClient, name)) != is_stream
        assert not inspect.iscoroutinefunction(getattr(PlansmithClient, name))


EXPORTED = [
    "DEFAULT",
    "NO_RETRY",
    "UNSET",
    "ArgumentError",
    "ArgumentTypeError",
    "AsyncPager",
    "AsyncPlansmithClient",
    "AsyncResumableStream",
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "ConflictError",
    "DeadlineExceededError",
    "EtagMismatchError",
    "FieldViolation",
    "IdempotencyKeyReusedError",
    "InterceptorChain",
    "InternalServerError",
    "MaxRetriesExceededError",
    "Pager",
    "PermissionDeniedError",
    "PlansmithClient",
    "PlansmithError",
    "PreconditionFailedError",
    "PreconditionViolation",
    "RateLimitedError",
    "RequestCancelledError",
    "ResourceNotFoundError",
    "ResumableStream",
    "RetryEvent",
    "RetryPolicies",
    "RetryPolicy",
    "RetryStats",
    "RevisionNotRetainedError",
    "ServiceUnavailableError",
    "StreamNotResumableError",
    "UnauthenticatedError",
    "UnimplementedError",
    "ValidationError",
    "__version__",
    "bind_request_id",
    "decode_metadata",
    "encode_metadata",
    "parse_enum",
    "request_id_var",
    "retry_policy",
    "short_name",
]


def test_all_is_pinned():
    assert plansmith.__all__ == EXPORTED
    for name in EXPORTED:
        assert hasattr(plansmith, name), name


def test_submodule_all_names_exist():
    for mod in (
        "errors",
        "retry",
        "breaker",
        "enums",
        "pagers",
        "streams",
        "interceptors",
        "resource_metadata",
    ):
        module = importlib.import_module(f"plansmith.{mod}")
        for name in module.__all__:
            assert hasattr(module, name), f"plansmith.{mod}.{name}"
