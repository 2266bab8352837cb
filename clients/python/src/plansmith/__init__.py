"""Python client for the Plansmith planning service.

Two layers:

- `AsyncPlansmithClient` (grpc.aio) and its sync twin `PlansmithClient`: keyword-argument
  methods (`create_plan`, `get_tasks`, `iter_tasks` ...) returning the proto messages,
  with retries, a circuit breaker, request ids and trace context built in, and errors
  mapped to `plansmith.errors`.
- The raw generated stubs on the same channel and interceptors, always reachable as
  `client.plans`; the messages and stubs themselves are in `plansmith.v1`.

    async with AsyncPlansmithClient.connect("localhost:50051") as client:
        plan = await client.create_plan(name="Launch", project_id="web")
"""

from __future__ import annotations

from plansmith._defaults import DEFAULT, UNSET
from plansmith.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from plansmith.client import AsyncPlansmithClient
from plansmith.enums import parse_enum, short_name
from plansmith.errors import (
    ArgumentError,
    ArgumentTypeError,
    CircuitOpenError,
    ConflictError,
    DeadlineExceededError,
    EtagMismatchError,
    FieldViolation,
    IdempotencyKeyReusedError,
    InternalServerError,
    MaxRetriesExceededError,
    PermissionDeniedError,
    PlansmithError,
    PreconditionFailedError,
    PreconditionViolation,
    RateLimitedError,
    RequestCancelledError,
    ResourceNotFoundError,
    RevisionNotRetainedError,
    ServiceUnavailableError,
    UnauthenticatedError,
    UnimplementedError,
    ValidationError,
)
from plansmith.interceptors import InterceptorChain, bind_request_id, request_id_var, retry_policy
from plansmith.pagers import AsyncPager, Pager
from plansmith.resource_metadata import decode_metadata, encode_metadata
from plansmith.retry import NO_RETRY, Clock, RetryEvent, RetryPolicies, RetryPolicy, RetryStats
from plansmith.streams import AsyncResumableStream, ResumableStream, StreamNotResumableError
from plansmith.sync_client import PlansmithClient

__version__ = "0.1.0"

__all__ = [
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
