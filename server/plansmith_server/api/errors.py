"""Turns domain errors into gRPC statuses with `google.rpc` details."""

from __future__ import annotations

import math

from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from plansmith_server.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PlansmithError,
    ResourceExhaustedError,
    UnavailableError,
)

ERROR_DOMAIN = "plansmith.dev"


def _pack(msg: object) -> any_pb2.Any:
    a = any_pb2.Any()
    a.Pack(msg)  # type: ignore[arg-type]
    return a


def _duration(seconds: float) -> duration_pb2.Duration:
    whole = math.floor(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=int((seconds - whole) * 1e9))


def to_status(exc: PlansmithError) -> status_pb2.Status:
    """The `google.rpc.Status` for a domain error: code, message and details."""
    code = getattr(code_pb2, exc.code)
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=exc.reason, domain=ERROR_DOMAIN, metadata=exc.metadata
            )
        )
    ]
    if isinstance(exc, InvalidArgumentError):
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in exc.violations
                    ]
                )
            )
        )
    elif isinstance(exc, NotFoundError):
        details.append(
            _pack(
                error_details_pb2.ResourceInfo(
                    resource_type=f"plansmith.dev/{exc.resource_type}",
                    resource_name=exc.resource_id,
                    description=exc.message,
                )
            )
        )
    elif isinstance(exc, FailedPreconditionError) and exc.violations:
        details.append(
            _pack(
                error_details_pb2.PreconditionFailure(
                    violations=[
                        error_details_pb2.PreconditionFailure.Violation(
                            type=v.type, subject=v.subject, description=v.description
                        )
                        for v in exc.violations
                    ]
                )
            )
        )
    elif isinstance(exc, ResourceExhaustedError | UnavailableError):
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=_duration(exc.retry_after))))
    return status_pb2.Status(code=code, message=exc.message, details=details)


def internal_status(request_id: str) -> status_pb2.Status:
    """For bugs: no exception text leaks to the caller, the request id finds the log line."""
    return status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error; quote request id {request_id} when reporting it",
        details=[
            _pack(
                error_details_pb2.ErrorInfo(
                    reason="INTERNAL", domain=ERROR_DOMAIN, metadata={"request_id": request_id}
                )
            )
        ],
    )
