"""Errors raised by the Plansmith client.

Every failed call raises a `PlansmithError`. The class is chosen by a registry from the
gRPC status code (refined by the `google.rpc.ErrorInfo` reason where that matters) and
filled from the `google.rpc` details the server attaches::

    PlansmithError                     any failed call; also a grpc.RpcError and grpc.Call
    ├── ValidationError                INVALID_ARGUMENT, OUT_OF_RANGE; also a ValueError
    │   │                              .validation_errors: [FieldViolation(field, description)]
    │   ├── ArgumentError              refused by the client before sending anything (an
    │   │   │                          unknown enum name, bad metadata, a malformed target)
    │   │   └── ArgumentTypeError      ... because of the value's type; also a TypeError
    │   └── RevisionNotRetainedError   OUT_OF_RANGE, reason REVISION_NOT_RETAINED: a watch
    │                                  from a revision the change log no longer keeps
    │                                  (.oldest_retained_revision)
    ├── ResourceNotFoundError          NOT_FOUND: .resource_type ("plan"), .resource_id
    ├── ConflictError                  ABORTED, ALREADY_EXISTS
    │   ├── EtagMismatchError          reason ETAG_MISMATCH: re-read the resource, then retry
    │   └── IdempotencyKeyReusedError  reason IDEMPOTENCY_KEY_REUSED: a request_id was reused
    │                                  for a different request
    ├── PreconditionFailedError        FAILED_PRECONDITION: .violations (type, subject,
    │                                  description), e.g. TASK_HAS_DEPENDENTS, AGENT_IN_USE
    ├── PermissionDeniedError          PERMISSION_DENIED
    ├── UnauthenticatedError           UNAUTHENTICATED
    ├── RateLimitedError               RESOURCE_EXHAUSTED (.retry_delay from RetryInfo)
    ├── DeadlineExceededError          DEADLINE_EXCEEDED; when the overall deadline ran out
    │                                  between retries, .attempts and .last_error say why
    ├── RequestCancelledError          CANCELLED
    ├── ServiceUnavailableError        UNAVAILABLE: .service_name (.retry_delay)
    │   └── CircuitOpenError           not sent: the target's circuit breaker is open
    │                                  (.target, .retry_after)
    ├── MaxRetriesExceededError        retries used up: .attempts, .last_error (its code is
    │                                  the last error's code)
    ├── UnimplementedError             UNIMPLEMENTED
    └── InternalServerError            INTERNAL, UNKNOWN, DATA_LOSS

Every error keeps `status_code` (a `grpc.StatusCode`), `message`, the ErrorInfo `reason`,
`domain` and `error_metadata`, the `request_id` of the failed call (the `x-request-id` the
server logged it under), the full `method` name, `retry_delay` (from RetryInfo, or None)
and every unpacked detail message in `error_details`.

A `PlansmithError` is also a `grpc.RpcError` with the `grpc.Call` methods (`code()`,
`details()`, `trailing_metadata()` ...), so code written against raw stubs that catches
`grpc.RpcError` keeps working on a channel carrying the client's interceptors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import grpc
from google.protobuf import any_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "CircuitOpenError",
    "ConflictError",
    "DeadlineExceededError",
    "EtagMismatchError",
    "FieldViolation",
    "IdempotencyKeyReusedError",
    "InternalServerError",
    "MaxRetriesExceededError",
    "PermissionDeniedError",
    "PlansmithError",
    "PreconditionFailedError",
    "PreconditionViolation",
    "RateLimitedError",
    "RequestCancelledError",
    "ResourceNotFoundError",
    "RevisionNotRetainedError",
    "ServiceUnavailableError",
    "UnauthenticatedError",
    "UnimplementedError",
    "ValidationError",
    "argument_error",
    "error_class_for",
    "from_rpc_error",
]

REQUEST_ID_HEADER = "x-request-id"
_DETAILS_KEY = "grpc-status-details-bin"

_BY_CODE: dict[grpc.StatusCode, type[PlansmithError]] = {}
_BY_REASON: dict[tuple[grpc.StatusCode, str], type[PlansmithError]] = {}

_DETAIL_TYPES: tuple[type[Message], ...] = (
    error_details_pb2.ErrorInfo,
    error_details_pb2.BadRequest,
    error_details_pb2.ResourceInfo,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.RetryInfo,
    error_details_pb2.QuotaFailure,
    error_details_pb2.RequestInfo,
    error_details_pb2.DebugInfo,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
)


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request (from `google.rpc.BadRequest`)."""

    field: str
    """Path of the field in the request, e.g. `plan.name`."""
    description: str
    """What is wrong with it."""


@dataclass(frozen=True)
class PreconditionViolation:
    """One unmet precondition (from `google.rpc.PreconditionFailure`)."""

    type: str
    """Kind of precondition, e.g. `TASK_HAS_DEPENDENTS`."""
    subject: str
    """What it is about, e.g. `tasks/tsk_123`."""
    description: str
    """What is wrong and how to fix it."""


# grpc.Future is generic in its stubs only (not at run time, where the bases are evaluated).
class PlansmithError(grpc.RpcError, grpc.Call, grpc.Future):  # type: ignore[type-arg]
    """Base of every error the client raises for a failed call."""

    grpc_codes: ClassVar[tuple[grpc.StatusCode, ...]] = ()
    """Status codes this class is registered for (not inherited by subclasses)."""
    reasons: ClassVar[tuple[str, ...]] = ()
    """ErrorInfo reasons that select this class over the code's class."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        codes = own.get("grpc_codes", ())
        for code in codes:
            if own.get("reasons"):
                for reason in own["reasons"]:
                    _BY_REASON[(code, reason)] = cls
            else:
                _BY_CODE.setdefault(code, cls)

    def __init__(
        self,
        message: str = "",
        *,
        status_code: grpc.StatusCode | None = None,
        reason: str = "",
        domain: str = "",
        error_metadata: Mapping[str, str] | None = None,
        request_id: str = "",
        method: str = "",
        error_details: Sequence[Message] = (),
        trailing_metadata: Sequence[tuple[str, str | bytes]] | None = None,
        initial_metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code or self._default_code()
        self.reason = reason
        self.domain = domain
        self.error_metadata: dict[str, str] = dict(error_metadata or {})
        self.request_id = request_id
        self.method = method
        self.error_details: list[Message] = list(error_details)
        self._trailing_metadata = tuple(trailing_metadata or ())
        self._initial_metadata = tuple(initial_metadata or ())
        info = self.detail(error_details_pb2.RetryInfo)
        self.retry_delay: float | None = (
            info.retry_delay.seconds + info.retry_delay.nanos / 1e9 if info is not None else None
        )

    @classmethod
    def _default_code(cls) -> grpc.StatusCode:
        for klass in cls.__mro__:
            codes: tuple[grpc.StatusCode, ...] = klass.__dict__.get("grpc_codes", ())
            if codes:
                return codes[0]
        return grpc.StatusCode.UNKNOWN

    def detail(self, kind: type[Any]) -> Any:
        """The first detail message of type `kind` (e.g. `error_details_pb2.BadRequest`)."""
        for d in self.error_details:
            if isinstance(d, kind):
                return d
        return None

    def __str__(self) -> str:
        extra = [f"reason={self.reason}"] if self.reason else []
        if self.request_id:
            extra.append(f"request_id={self.request_id}")
        tail = f" ({', '.join(extra)})" if extra else ""
        return f"{self.status_code.name}: {self.message}{tail}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    # grpc.Call / grpc.Future, as grpc's own failed-call error implements them: this lets
    # the error travel through grpc's sync interceptor machinery and code that expects one.
    def code(self) -> grpc.StatusCode:
        return self.status_code

    def details(self) -> str:
        return self.message

    # grpc's stubs type RpcError's and Call's trailing_metadata apart; ours is Call's.
    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:  # type: ignore[override]
        return self._trailing_metadata

    def initial_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._initial_metadata

    def debug_error_string(self) -> str:
        return str(self)

    def is_active(self) -> bool:
        return False

    # None: no deadline, as grpc documents it (its stubs leave None out).
    def time_remaining(self) -> float | None:  # type: ignore[override]
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def running(self) -> bool:
        return False

    def done(self) -> bool:
        return True

    def result(self, timeout: float | None = None) -> Any:
        raise self

    def exception(self, timeout: float | None = None) -> PlansmithError:
        return self

    def traceback(self, timeout: float | None = None) -> Any:
        return self.__traceback__

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        fn(self)


class ValidationError(PlansmithError, ValueError):
    """The request is invalid; `validation_errors` lists every field problem at once.

    Also a `ValueError`: the client's own refusals of an argument (`ArgumentError`) are
    ValidationErrors too, so one `except ValidationError` handles both."""

    grpc_codes: ClassVar[tuple[grpc.StatusCode, ...]] = (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.OUT_OF_RANGE,
    )

    def __init__(
        self,
        message: str = "",
        *,
        validation_errors: Sequence[FieldViolation] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        if validation_errors is None:
            bad = self.detail(error_details_pb2.BadRequest)
            validation_errors = (
                [FieldViolation(v.field, v.description) for v in bad.field_violations]
                if bad is not None
                else []
            )
        self.validation_errors: list[FieldViolation] = list(validation_errors)


class RevisionNotRetainedError(ValidationError):
    """`watch_plan` from a revision older than the plan's change log retains: read the plan
    afresh, then watch from `oldest_retained_revision - 1` (or from now)."""

    grpc_codes = (grpc.StatusCode.OUT_OF_RANGE,)
    reasons = ("REVISION_NOT_RETAINED",)

    @property
    def oldest_retained_revision(self) -> int:
        """The oldest revision the server still has (0 when it did not say)."""
        try:
            return int(self.error_metadata.get("oldest_retained_revision", "0"))
        except ValueError:
            return 0


class ArgumentError(ValidationError):
    """An argument the client refused before sending anything (nothing reached the
    server): an unknown enum name, a list given as a string, a bad metadata key or value,
    a malformed target. `validation_errors` names the argument."""

    def __init__(self, field: str, problem: str, **kwargs: Any) -> None:
        message = f"{field}: {problem}" if field else problem
        super().__init__(
            message,
            validation_errors=[FieldViolation(field, problem)],
            status_code=grpc.StatusCode.INVALID_ARGUMENT,
            **kwargs,
        )

    def __str__(self) -> str:
        return self.message  # no status: the call was never made


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument of the wrong type (also a `TypeError`)."""


def argument_error(field: str, problem: str, *, wrong_type: bool = False) -> ArgumentError:
    """The client's refusal of the argument `field` (an `ArgumentTypeError` when the
    value's type is wrong)."""
    return (ArgumentTypeError if wrong_type else ArgumentError)(field, problem)


class ResourceNotFoundError(PlansmithError):
    """A named resource does not exist.

    `resource_type` is the short type (`plan`, `task`); `resource_id` the id asked for.
    """

    grpc_codes = (grpc.StatusCode.NOT_FOUND,)

    def __init__(
        self,
        resource_type: str = "",
        resource_id: str = "",
        message: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(message or f"{resource_type} {resource_id!r} not found", **kwargs)
        info = self.detail(error_details_pb2.ResourceInfo)
        if not resource_type:
            resource_type = self.error_metadata.get("resource_type", "")
            if not resource_type and info is not None:
                resource_type = info.resource_type.rsplit("/", 1)[-1]
        if not resource_id:
            resource_id = self.error_metadata.get("resource_id", "")
            if not resource_id and info is not None:
                resource_id = info.resource_name
        self.resource_type = resource_type
        self.resource_id = resource_id


class ConflictError(PlansmithError):
    """The request conflicts with the resource's current state."""

    grpc_codes: ClassVar[tuple[grpc.StatusCode, ...]] = (
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.ALREADY_EXISTS,
    )


class EtagMismatchError(ConflictError):
    """The etag sent is stale: someone else changed the resource; read it again."""

    grpc_codes = (grpc.StatusCode.ABORTED,)
    reasons = ("ETAG_MISMATCH",)


class IdempotencyKeyReusedError(ConflictError):
    """The request_id was already used for a different request; use a new one."""

    grpc_codes = (grpc.StatusCode.ALREADY_EXISTS,)
    reasons = ("IDEMPOTENCY_KEY_REUSED",)


class PreconditionFailedError(PlansmithError):
    """The request is valid but the system's state does not allow it (`violations`)."""

    grpc_codes = (grpc.StatusCode.FAILED_PRECONDITION,)

    def __init__(self, message: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        pf = self.detail(error_details_pb2.PreconditionFailure)
        self.violations: list[PreconditionViolation] = (
            [PreconditionViolation(v.type, v.subject, v.description) for v in pf.violations]
            if pf is not None
            else []
        )


class PermissionDeniedError(PlansmithError):
    """The caller may not do this."""

    grpc_codes = (grpc.StatusCode.PERMISSION_DENIED,)


class UnauthenticatedError(PlansmithError):
    """The call carried no valid credentials."""

    grpc_codes = (grpc.StatusCode.UNAUTHENTICATED,)


class RateLimitedError(PlansmithError):
    """A quota or the server's capacity is exhausted; `retry_delay` says when to retry."""

    grpc_codes = (grpc.StatusCode.RESOURCE_EXHAUSTED,)


class DeadlineExceededError(PlansmithError):
    """The call's deadline passed. When it ran out between retries, `attempts` counts the
    attempts made and `last_error` is the error of the last one."""

    grpc_codes = (grpc.StatusCode.DEADLINE_EXCEEDED,)

    def __init__(
        self,
        message: str = "",
        *,
        attempts: int = 1,
        last_error: PlansmithError | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.attempts = attempts
        self.last_error = last_error


class RequestCancelledError(PlansmithError):
    """The call was cancelled."""

    grpc_codes = (grpc.StatusCode.CANCELLED,)


def service_of(method: str) -> str:
    """The gRPC service of a full method name (`/plansmith.v1.PlanService/GetPlan` ->
    `plansmith.v1.PlanService`), or "" for no method."""
    return method.lstrip("/").split("/", 1)[0]


class ServiceUnavailableError(PlansmithError):
    """The service cannot be reached or is not serving; `service_name` is the gRPC service
    of the failed call (e.g. `plansmith.v1.PlanService`)."""

    grpc_codes = (grpc.StatusCode.UNAVAILABLE,)

    def __init__(self, message: str = "", *, service_name: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        if not service_name and self.method:
            service_name = service_of(self.method)
        self.service_name = service_name


class CircuitOpenError(ServiceUnavailableError):
    """Failed at once, without a network call: the circuit breaker of `target` is open
    after repeated transport failures. `retry_after` is the time left until it lets a
    probe call through (0 while a probe is in flight)."""

    def __init__(
        self, message: str = "", *, target: str = "", retry_after: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(message or f"circuit breaker for {target} is open", **kwargs)
        self.target = target
        self.retry_after = retry_after


class MaxRetriesExceededError(PlansmithError):
    """Every attempt failed with a retryable error. Carries the last attempt's code,
    reason and request id; `attempts` counts the attempts, `last_error` is the last one."""

    def __init__(self, attempts: int, last_error: PlansmithError, message: str = "") -> None:
        super().__init__(
            message or f"gave up after {attempts} attempts: {last_error.message}",
            status_code=last_error.status_code,
            reason=last_error.reason,
            domain=last_error.domain,
            error_metadata=last_error.error_metadata,
            request_id=last_error.request_id,
            method=last_error.method,
            error_details=last_error.error_details,
            trailing_metadata=last_error.trailing_metadata(),
            initial_metadata=last_error.initial_metadata(),
        )
        self.attempts = attempts
        self.last_error = last_error


class UnimplementedError(PlansmithError):
    """The server does not implement this method (an older server?)."""

    grpc_codes = (grpc.StatusCode.UNIMPLEMENTED,)


class InternalServerError(PlansmithError):
    """The server failed; quote `request_id` when reporting it."""

    grpc_codes = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS)


def error_class_for(code: grpc.StatusCode, reason: str = "") -> type[PlansmithError]:
    """The exception class the registry picks for a status code and ErrorInfo reason."""
    return _BY_REASON.get((code, reason)) or _BY_CODE.get(code, PlansmithError)


def _unpack(any_msg: any_pb2.Any) -> Message:
    """The detail as its message type; an unknown or undecodable one stays an `Any`
    (a corrupt detail must not cost the others, nor the error its class)."""
    for kind in _DETAIL_TYPES:
        if any_msg.Is(cast(Descriptor, kind.DESCRIPTOR)):  # types-protobuf: Is takes either
            msg = kind()
            try:
                any_msg.Unpack(msg)
            except (DecodeError, UnicodeDecodeError):  # untrusted bytes (pure-Python protobuf)
                return any_msg
            return msg
    return any_msg


def _metadata_value(md: Any, key: str) -> Any:
    for k, v in md or ():
        if k == key:
            return v
    return None


def _safe(fn: Callable[[], Any] | None) -> Any:
    if fn is None:
        return None
    try:
        return fn()
    except Exception:  # an error object without metadata is still an error to map
        return None


def from_rpc_error(err: grpc.RpcError, *, method: str = "", request_id: str = "") -> PlansmithError:
    """Maps a failed call (`grpc.RpcError`, sync or aio) to its `PlansmithError`.

    `method` and `request_id` fill what the error object itself does not know; the request
    id falls back to the `x-request-id` the server echoed.
    """
    if isinstance(err, PlansmithError):
        return err
    code = _safe(getattr(err, "code", None)) or grpc.StatusCode.UNKNOWN
    message = _safe(getattr(err, "details", None)) or ""
    trailing = _safe(getattr(err, "trailing_metadata", None)) or ()
    initial = _safe(getattr(err, "initial_metadata", None)) or ()
    details: list[Message] = []
    raw = _metadata_value(trailing, _DETAILS_KEY)
    if isinstance(raw, bytes):
        try:
            status = status_pb2.Status.FromString(raw)
            details = [_unpack(a) for a in status.details]
        except (DecodeError, UnicodeDecodeError):  # untrusted bytes (pure-Python protobuf)
            details = []
    info = next((d for d in details if isinstance(d, error_details_pb2.ErrorInfo)), None)
    reason = info.reason if info is not None else ""
    if not request_id:
        # unary calls echo it in the trailers, streams in the initial metadata too
        echoed = _metadata_value(trailing, REQUEST_ID_HEADER) or _metadata_value(
            initial, REQUEST_ID_HEADER
        )
        request_id = echoed if isinstance(echoed, str) else ""
    if not request_id:
        ri = next((d for d in details if isinstance(d, error_details_pb2.RequestInfo)), None)
        request_id = ri.request_id if ri is not None else ""
    cls = error_class_for(code, reason)
    kwargs: dict[str, Any] = dict(
        status_code=code,
        reason=reason,
        domain=info.domain if info is not None else "",
        error_metadata=dict(info.metadata) if info is not None else {},
        request_id=request_id,
        method=method,
        error_details=details,
        trailing_metadata=tuple(trailing),
        initial_metadata=tuple(initial),
    )
    # By keyword: every class built from a status takes `message=` (ResourceNotFoundError
    # takes the resource first).
    return cls(message=message, **kwargs)
