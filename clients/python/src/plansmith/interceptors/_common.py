"""Helpers shared by the interceptors: call details, method names, metadata lookups,
request ids."""

from __future__ import annotations

import collections
import contextlib
import contextvars
import random
import uuid
from collections.abc import Iterator
from typing import Any

import grpc

from plansmith._defaults import DEFAULT, DefaultType
from plansmith.retry import RetryPolicy

REQUEST_ID_HEADER = "x-request-id"

_method_names: dict[Any, str] = {}


def new_request_id() -> str:
    """A fresh idempotency key (a mutation's `request_id`): unique across processes."""
    return uuid.uuid4().hex


def new_correlation_id() -> str:
    """A fresh `x-request-id`: a log correlation id, not a secret, so 128 random bits
    without a system call per call."""
    return f"{random.getrandbits(128):032x}"


retry_override: contextvars.ContextVar[RetryPolicy | DefaultType | None] = contextvars.ContextVar(
    "plansmith_retry_override", default=DEFAULT
)
"""The retry policy of the calls started in this context (None: no retries)."""


@contextlib.contextmanager
def retry_policy(policy: RetryPolicy | None) -> Iterator[None]:
    """Calls started inside the block use `policy` (None: no retries) instead of the
    policy of their kind; works for raw stub calls on the client's channel too."""
    token = retry_override.set(policy)
    try:
        yield
    finally:
        retry_override.reset(token)


def method_name(method: str | bytes) -> str:
    """The full method name as text (grpc.aio hands interceptors bytes)."""
    name = _method_names.get(method)
    if name is None:
        name = method.decode() if isinstance(method, bytes) else method
        _method_names[method] = name
    return name


def rpc_method(rpc: Any) -> str:
    """The full method name of a stub's multi-callable (sync or aio, intercepted or not),
    or "" when it does not say (it is grpc's private `_method`: no public accessor)."""
    raw = getattr(rpc, "_method", "")
    return method_name(raw) if isinstance(raw, str | bytes) and raw else ""


def metadata_value(metadata: Any, key: str) -> str:
    for k, v in metadata or ():
        if k == key:
            return v if isinstance(v, str) else ""
    return ""


class SyncCallDetails(
    collections.namedtuple(
        "SyncCallDetails",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    """`grpc.ClientCallDetails` for the sync stack (grpc's own class is abstract)."""


def sync_details(details: grpc.ClientCallDetails, **changes: Any) -> SyncCallDetails:
    values = {
        "method": details.method,
        "timeout": details.timeout,
        "metadata": details.metadata,
        "credentials": details.credentials,
        "wait_for_ready": getattr(details, "wait_for_ready", None),
        "compression": getattr(details, "compression", None),
    }
    values.update(changes)
    return SyncCallDetails(**values)


def aio_details(details: grpc.aio.ClientCallDetails, **changes: Any) -> grpc.aio.ClientCallDetails:
    values: dict[str, Any] = {
        "method": details.method,
        "timeout": details.timeout,
        "metadata": details.metadata,
        "credentials": details.credentials,
        "wait_for_ready": details.wait_for_ready,
    }
    values.update(changes)
    return grpc.aio.ClientCallDetails(**values)
