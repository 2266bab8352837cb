"""The domain's error tree.

Every error the service reports on purpose is a `PlansmithError`. Each class says how it
travels on the wire: `code` is the name of a gRPC status code and `reason` the
`google.rpc.ErrorInfo` reason; the API layer (`api/errors.py`) turns them into statuses
with details. The domain itself never imports grpc.

    PlansmithError                    INTERNAL (a bug: logged; the caller gets the request id)
    ├── InvalidArgumentError          INVALID_ARGUMENT  + BadRequest
    │   ├── DependencyCycleError      reason DEPENDENCY_CYCLE
    │   ├── PageTokenError            reason PAGE_TOKEN_INVALID
    │   ├── PlanningInputError        reason INVALID_PLAN_REQUEST, ... (planning/errors.py)
    │   └── InvalidProblemError       reason INVALID_PROBLEM (scheduling/errors.py)
    ├── NotFoundError                 NOT_FOUND         + ResourceInfo
    ├── EtagMismatchError             ABORTED
    ├── IdempotencyKeyReusedError     ALREADY_EXISTS
    ├── AlreadyExistsError            ALREADY_EXISTS    reason <TYPE>_ALREADY_EXISTS
    ├── FailedPreconditionError       FAILED_PRECONDITION + PreconditionFailure
    │   └── InfeasibleProblemError    reason INFEASIBLE_PROBLEM (scheduling/errors.py)
    ├── ResourceExhaustedError        RESOURCE_EXHAUSTED + RetryInfo
    ├── OutOfRangeError               OUT_OF_RANGE      reason REVISION_NOT_RETAINED
    ├── UnavailableError              UNAVAILABLE       + RetryInfo
    └── SchedulingError               the scheduling package's errors (scheduling/errors.py);
        └── InvalidScheduleError      INTERNAL, reason INVALID_SCHEDULE (a solver's bug)

An error whose `code` is INTERNAL is a bug, whatever its class: the API logs it and
answers INTERNAL with the request id only, never the error's text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One problem with one field of a request (becomes a BadRequest field violation)."""

    field: str
    """Path of the field in the request, e.g. `task.dependencies[2]`."""
    description: str
    """What is wrong, in words a caller can act on."""


@dataclass(frozen=True)
class PreconditionViolation:
    """One unmet precondition (becomes a PreconditionFailure violation)."""

    type: str
    """Kind of precondition, e.g. `TASK_HAS_DEPENDENTS`."""
    subject: str
    """What it is about, e.g. `tasks/tsk_123`."""
    description: str
    """What is wrong and how to fix it."""


class PlansmithError(Exception):
    """Base of every error the service reports on purpose."""

    code = "INTERNAL"
    reason = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgumentError(PlansmithError):
    """The request is malformed; `violations` lists every problem found at once."""

    code = "INVALID_ARGUMENT"
    reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        violations: Sequence[FieldViolation],
        message: str | None = None,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.violations = list(violations)
        if message is None:
            shown = "; ".join(f"{v.field}: {v.description}" for v in self.violations[:5])
            more = len(self.violations) - 5
            message = f"invalid request: {shown}" + (f" (+{more} more)" if more > 0 else "")
        super().__init__(message, reason=reason, metadata=metadata)


def some_ids(ids: Sequence[str], sep: str, limit: int = 300) -> str:
    """`ids` joined by `sep`, as many whole ids as fit in `limit` characters; `sep` and
    an ellipsis end it when some are left out (errors travel in size-bound trailers)."""
    joined = sep.join(ids)
    if len(joined) <= limit:
        return joined
    shown: list[str] = []
    used = len(sep) + 1  # room for the ending
    for x in ids:
        used += len(x) + (len(sep) if shown else 0)
        if used > limit:
            break
        shown.append(x)
    return f"{sep.join(shown)}{sep}\u2026" if shown else "\u2026"


class DependencyCycleError(InvalidArgumentError):
    """The dependencies would form a cycle (the one error for it, from every package).

    `cycle` is written the one way `plansmith_server.graph` finds cycles: `[a, b, ..., a]`,
    each id depending on the next, the first repeated last; the message and metadata show
    it as `a -> b -> a`. `field` is the request field the violation names. ErrorInfo
    metadata: `cycle` (its first ids when long) and `cycle_length`."""

    reason = "DEPENDENCY_CYCLE"

    def __init__(self, field: str, cycle: Sequence[str], explanation: str = "") -> None:
        self.field = field
        self.cycle = list(cycle)
        path = some_ids(self.cycle, " -> ")
        how = f" ({explanation})" if explanation else ""
        super().__init__(
            [FieldViolation(field, f"dependencies would form a cycle: {path}{how}")],
            f"dependency cycle: {path}{how}",
            metadata={"cycle": path, "cycle_length": str(max(len(self.cycle) - 1, 1))},
        )


class PageTokenError(InvalidArgumentError):
    """The page token is not one this server issued for these filters."""

    reason = "PAGE_TOKEN_INVALID"

    def __init__(self, description: str) -> None:
        super().__init__(
            [FieldViolation("page_token", description)], f"bad page_token: {description}"
        )


class NotFoundError(PlansmithError):
    """A named resource does not exist."""

    code = "NOT_FOUND"

    def __init__(self, resource_type: str, resource_id: str) -> None:
        self.resource_type = resource_type
        self.resource_id = resource_id
        super().__init__(
            f"{resource_type} {resource_id!r} not found",
            reason=f"{resource_type.upper()}_NOT_FOUND",
            metadata={"resource_type": resource_type, "resource_id": resource_id},
        )


class EtagMismatchError(PlansmithError):
    """The caller's etag is stale: someone else changed the resource meanwhile."""

    code = "ABORTED"
    reason = "ETAG_MISMATCH"

    def __init__(self, resource_type: str, resource_id: str, current_etag: str) -> None:
        self.resource_type = resource_type
        self.resource_id = resource_id
        super().__init__(
            f"{resource_type} {resource_id!r} was changed by someone else (current etag "
            f"{current_etag!r}); read it again and retry",
            metadata={
                "resource_type": resource_type,
                "resource_id": resource_id,
                "current_etag": current_etag,
            },
        )


class IdempotencyKeyReusedError(PlansmithError):
    """A request_id already used for a different request."""

    code = "ALREADY_EXISTS"
    reason = "IDEMPOTENCY_KEY_REUSED"

    def __init__(self, request_id: str, first_method: str) -> None:
        self.request_id = request_id
        super().__init__(
            f"request_id {request_id!r} was already used for a different {first_method} "
            "request; use a new request_id for a new request",
            metadata={"request_id": request_id, "first_method": first_method},
        )


class AlreadyExistsError(PlansmithError):
    """A resource with the id the caller chose exists already."""

    code = "ALREADY_EXISTS"

    def __init__(self, resource_type: str, resource_id: str) -> None:
        self.resource_type = resource_type
        self.resource_id = resource_id
        super().__init__(
            f"a {resource_type} with id {resource_id!r} exists already; choose another id",
            reason=f"{resource_type.upper()}_ALREADY_EXISTS",
            metadata={"resource_type": resource_type, "resource_id": resource_id},
        )


class FailedPreconditionError(PlansmithError):
    """The request is well formed but the system is not in a state that allows it."""

    code = "FAILED_PRECONDITION"

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        violations: Sequence[PreconditionViolation] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.violations = list(violations)
        super().__init__(message, reason=reason, metadata=metadata)


class ResourceExhaustedError(PlansmithError):
    """The server or a quota is at its limit; retry after `retry_after` seconds."""

    code = "RESOURCE_EXHAUSTED"
    reason = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, retry_after: float, reason: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, reason=reason)


class UnavailableError(PlansmithError):
    """A dependency of the service (e.g. the database) is not answering; retry later."""

    code = "UNAVAILABLE"
    reason = "UNAVAILABLE"

    def __init__(
        self, message: str, *, retry_after: float = 1.0, reason: str | None = None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, reason=reason)


class DeadlineExceededError(PlansmithError):
    """The call's deadline passed while the service worked on it (e.g. a database
    statement whose timeout was the call's time left)."""

    code = "DEADLINE_EXCEEDED"
    reason = "DEADLINE_EXCEEDED"


class OutOfRangeError(PlansmithError):
    """A revision the plan's change log no longer retains (or never had)."""

    code = "OUT_OF_RANGE"
    reason = "REVISION_NOT_RETAINED"

    def __init__(self, plan_id: str, from_revision: int, oldest_retained: int) -> None:
        self.oldest_retained = oldest_retained
        super().__init__(
            f"plan {plan_id!r}: revisions after {from_revision} are no longer all retained; "
            f"the oldest kept is {oldest_retained} (watch from {oldest_retained - 1}, after "
            "reading the plan afresh)",
            metadata={
                "plan_id": plan_id,
                "from_revision": str(from_revision),
                "oldest_retained_revision": str(oldest_retained),
            },
        )
