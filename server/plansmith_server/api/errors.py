"""Turns domain errors into gRPC statuses with `google.rpc` details."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
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

M = TypeVar("M", bound=Message)

# A status travels in the call's trailers: its message percent-encoded in grpc-message,
# the whole Status (message again, details) base64-encoded in grpc-status-details-bin.
# gRPC clients refuse trailers past 8 KiB by default (C-core's soft limit; some calls
# between it and the 16 KiB hard limit fail too), and what they then report is
# RESOURCE_EXHAUSTED without any of our details. Errors echo what the caller sent (a
# 20,000-character metadata key in a field path, a thousand blank titles), so every
# string is clipped (in bytes of UTF-8: a character may take four) and violations are
# listed while they fit, the first always: a status stays under ~4 KiB, its trailers
# under ~7.5 KiB.
MAX_MESSAGE_BYTES = 600
MAX_FIELD_BYTES = 200
MAX_DESCRIPTION_BYTES = 600
MAX_METADATA_VALUE_BYTES = 400
MAX_VIOLATIONS = 50
VIOLATIONS_BUDGET_BYTES = 2_000


def _pack(msg: Message) -> any_pb2.Any:
    a = any_pb2.Any()
    a.Pack(msg)
    return a


def _duration(seconds: float) -> duration_pb2.Duration:
    whole = math.floor(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=int((seconds - whole) * 1e9))


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8, an ellipsis marking the cut."""
    if len(text) * 4 <= limit or len(text.encode()) <= limit:
        return text
    return text.encode()[: limit - 3].decode(errors="ignore") + "\u2026"


def _fitting(items: Sequence[M]) -> list[M]:
    """The first of `items` (at most MAX_VIOLATIONS messages) that fit the violations'
    budget; always one."""
    shown: list[M] = []
    used = 0
    for item in items:
        used += item.ByteSize() + 3  # + its tag and length
        if used > VIOLATIONS_BUDGET_BYTES and shown:
            break
        shown.append(item)
    return shown


def to_status(exc: PlansmithError) -> status_pb2.Status:
    """The `google.rpc.Status` for a domain error: code, message and details, bounded in
    size (see MAX_MESSAGE_BYTES). When not every violation fits, ErrorInfo's metadata
    says how many there were (`violations`) and how many are listed (`violations_shown`)."""
    code = getattr(code_pb2, exc.code)
    metadata = {
        clip(k, MAX_FIELD_BYTES): clip(v, MAX_METADATA_VALUE_BYTES) for k, v in exc.metadata.items()
    }
    details: list[any_pb2.Any] = []
    if isinstance(exc, InvalidArgumentError):
        field_violations = _fitting(
            [
                error_details_pb2.BadRequest.FieldViolation(
                    field=clip(v.field, MAX_FIELD_BYTES),
                    description=clip(v.description, MAX_DESCRIPTION_BYTES),
                )
                for v in exc.violations[:MAX_VIOLATIONS]
            ]
        )
        _count(metadata, len(exc.violations), len(field_violations))
        details.append(_pack(error_details_pb2.BadRequest(field_violations=field_violations)))
    elif isinstance(exc, NotFoundError):
        details.append(
            _pack(
                error_details_pb2.ResourceInfo(
                    resource_type=f"plansmith.dev/{exc.resource_type}",
                    resource_name=clip(exc.resource_id, MAX_FIELD_BYTES),
                    description=clip(exc.message, MAX_MESSAGE_BYTES),
                )
            )
        )
    elif isinstance(exc, FailedPreconditionError) and exc.violations:
        violations = _fitting(
            [
                error_details_pb2.PreconditionFailure.Violation(
                    type=v.type,
                    subject=clip(v.subject, MAX_FIELD_BYTES),
                    description=clip(v.description, MAX_DESCRIPTION_BYTES),
                )
                for v in exc.violations[:MAX_VIOLATIONS]
            ]
        )
        _count(metadata, len(exc.violations), len(violations))
        details.append(_pack(error_details_pb2.PreconditionFailure(violations=violations)))
    elif isinstance(exc, ResourceExhaustedError | UnavailableError):
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=_duration(exc.retry_after))))
    info = error_details_pb2.ErrorInfo(reason=exc.reason, domain=ERROR_DOMAIN, metadata=metadata)
    return status_pb2.Status(
        code=code,
        message=clip(exc.message, MAX_MESSAGE_BYTES),
        details=[_pack(info), *details],
    )


def _count(metadata: dict[str, str], total: int, shown: int) -> None:
    if shown < total:
        metadata["violations"] = str(total)
        metadata["violations_shown"] = str(shown)


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
