"""Error mapping from statuses with packed `google.rpc` details, and the policy math."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from plansmith import errors
from plansmith.enums import parse_enum, short_name
from plansmith.retry import OperationKind, RetryPolicies, RetryPolicy, classify
from plansmith.v1 import plan_service_pb2, planning_service_pb2, task_pb2


class FakeRpcError(grpc.RpcError):
    def __init__(self, status, initial=()):
        s = rpc_status.to_status(status)
        self._s, self._initial = s, initial

    def code(self):
        return self._s.code

    def details(self):
        return self._s.details

    def trailing_metadata(self):
        return self._s.trailing_metadata

    def initial_metadata(self):
        return self._initial


def _status(code, message, *details):
    packed = []
    for d in details:
        a = any_pb2.Any()
        a.Pack(d)
        packed.append(a)
    return status_pb2.Status(code=code.value[0], message=message, details=packed)


def _info(reason, **metadata):
    return error_details_pb2.ErrorInfo(reason=reason, domain="plansmith.dev", metadata=metadata)


def test_validation_error_lists_field_violations():
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="plan.name", description="empty"),
            error_details_pb2.BadRequest.FieldViolation(field="plan.agents[1]", description="dup"),
        ]
    )
    err = errors.from_rpc_error(
        FakeRpcError(
            _status(grpc.StatusCode.INVALID_ARGUMENT, "bad", _info("INVALID_ARGUMENT"), bad),
            initial=(("x-request-id", "rid-9"),),
        ),
        method="/plansmith.v1.PlanService/CreatePlan",
    )
    assert type(err) is errors.ValidationError
    assert err.validation_errors == [
        errors.FieldViolation("plan.name", "empty"),
        errors.FieldViolation("plan.agents[1]", "dup"),
    ]
    assert (err.reason, err.domain, err.request_id) == (
        "INVALID_ARGUMENT",
        "plansmith.dev",
        "rid-9",
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details() == "bad"
    assert "INVALID_ARGUMENT: bad" in str(err)


def test_not_found_from_resource_info_and_error_info():
    err = errors.from_rpc_error(
        FakeRpcError(
            _status(
                grpc.StatusCode.NOT_FOUND,
                "plan 'p1' not found",
                _info("PLAN_NOT_FOUND", resource_type="plan", resource_id="p1"),
                error_details_pb2.ResourceInfo(
                    resource_type="plansmith.dev/plan", resource_name="p1"
                ),
            )
        )
    )
    assert isinstance(err, errors.ResourceNotFoundError)
    assert (err.resource_type, err.resource_id) == ("plan", "p1")
    only_resource_info = errors.from_rpc_error(
        FakeRpcError(
            _status(
                grpc.StatusCode.NOT_FOUND,
                "x",
                error_details_pb2.ResourceInfo(
                    resource_type="plansmith.dev/task", resource_name="t"
                ),
            )
        )
    )
    assert (only_resource_info.resource_type, only_resource_info.resource_id) == ("task", "t")


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (grpc.StatusCode.ABORTED, "ETAG_MISMATCH", errors.EtagMismatchError),
        (grpc.StatusCode.ABORTED, "OTHER", errors.ConflictError),
        (
            grpc.StatusCode.ALREADY_EXISTS,
            "IDEMPOTENCY_KEY_REUSED",
            errors.IdempotencyKeyReusedError,
        ),
        (grpc.StatusCode.FAILED_PRECONDITION, "AGENT_IN_USE", errors.PreconditionFailedError),
        (grpc.StatusCode.PERMISSION_DENIED, "", errors.PermissionDeniedError),
        (grpc.StatusCode.UNAUTHENTICATED, "", errors.UnauthenticatedError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "", errors.RateLimitedError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "", errors.DeadlineExceededError),
        (grpc.StatusCode.CANCELLED, "", errors.RequestCancelledError),
        (grpc.StatusCode.UNAVAILABLE, "", errors.ServiceUnavailableError),
        (grpc.StatusCode.UNIMPLEMENTED, "", errors.UnimplementedError),
        (grpc.StatusCode.INTERNAL, "INTERNAL", errors.InternalServerError),
        (grpc.StatusCode.UNKNOWN, "", errors.InternalServerError),
        (grpc.StatusCode.OUT_OF_RANGE, "", errors.ValidationError),
    ],
)
def test_registry_picks_the_class(code, reason, cls):
    details = [_info(reason)] if reason else []
    err = errors.from_rpc_error(FakeRpcError(_status(code, "m", *details)))
    assert type(err) is cls and err.status_code == code
    assert isinstance(err, errors.PlansmithError) and isinstance(err, grpc.RpcError)


def test_precondition_and_retry_info_details():
    pf = error_details_pb2.PreconditionFailure(
        violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type="TASK_HAS_DEPENDENTS", subject="tasks/t1", description="t2 depends on it"
            )
        ]
    )
    err = errors.from_rpc_error(
        FakeRpcError(
            _status(grpc.StatusCode.FAILED_PRECONDITION, "m", _info("TASK_HAS_DEPENDENTS"), pf)
        )
    )
    assert err.violations == [
        errors.PreconditionViolation("TASK_HAS_DEPENDENTS", "tasks/t1", "t2 depends on it")
    ]
    ri = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=2, nanos=500_000_000)
    )
    busy = errors.from_rpc_error(FakeRpcError(_status(grpc.StatusCode.UNAVAILABLE, "m", ri)))
    assert busy.retry_delay == 2.5


def test_errors_without_details_and_max_retries():
    class Bare(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.UNAVAILABLE

        def details(self):
            return "down"

    err = errors.from_rpc_error(Bare(), method="/plansmith.v1.PlanService/GetPlan")
    assert isinstance(err, errors.ServiceUnavailableError)
    assert err.service_name == "plansmith.v1.PlanService" and err.reason == ""
    wrapped = errors.MaxRetriesExceededError(3, err)
    assert wrapped.attempts == 3 and wrapped.last_error is err
    assert wrapped.code() == grpc.StatusCode.UNAVAILABLE
    assert errors.from_rpc_error(wrapped) is wrapped
    assert errors.ResourceNotFoundError("plan", "p").message == "plan 'p' not found"


def test_the_tree_is_documented():
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, errors.PlansmithError):
            assert name in errors.__doc__, name


def test_policies_are_immutable_and_match_the_spec():
    p = RetryPolicies()
    assert (p.create.max_retries, p.create.initial_delay, p.create.max_delay) == (3, 0.5, 4.0)
    assert (p.update.max_retries, p.update.initial_delay, p.update.max_delay) == (3, 0.5, 4.0)
    assert (p.delete.max_retries, p.delete.initial_delay, p.delete.max_delay) == (2, 1.0, 4.0)
    assert (p.read.max_retries, p.read.initial_delay, p.read.max_delay) == (2, 0.5, 2.0)
    assert grpc.StatusCode.DEADLINE_EXCEEDED in p.read.retry_codes
    assert grpc.StatusCode.DEADLINE_EXCEEDED not in p.create.retry_codes
    with pytest.raises(AttributeError):
        p.read.max_retries = 9  # type: ignore[misc]
    faster = p.read.replace(initial_delay=0.1)
    assert faster.initial_delay == 0.1 and p.read.initial_delay == 0.5
    assert [p.delete.delay_cap(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 4]
    assert RetryPolicy().backoff(2, 0.5) == 0.5
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)


def test_operation_kinds():
    pb = plan_service_pb2
    assert classify("/plansmith.v1.PlanService/GetPlan", pb.GetPlanRequest()) == (
        OperationKind.READ,
        True,
    )
    assert classify("/x/CreatePlan", pb.CreatePlanRequest()) == (OperationKind.CREATE, True)
    assert classify("/x/UpdateTask", pb.UpdateTaskRequest()) == (OperationKind.UPDATE, True)
    assert classify("/x/DeleteTask", pb.DeleteTaskRequest()) == (OperationKind.DELETE, True)
    # keyed planning writes are retried as creates; a write with no key is never retried
    assert (
        classify("/x/OptimizePlan", planning_service_pb2.OptimizePlanRequest())[0]
        is OperationKind.CREATE
    )
    assert classify("/x/CreateThing", pb.GetPlanRequest()) == (OperationKind.CREATE, False)


def test_enum_names():
    assert parse_enum(task_pb2.TaskPriority, "HIGH") == task_pb2.TASK_PRIORITY_HIGH
    assert parse_enum(task_pb2.TaskStatus, "in_progress") == task_pb2.TASK_STATUS_IN_PROGRESS
    assert parse_enum(task_pb2.TaskStatus, "TASK_STATUS_DONE") == task_pb2.TASK_STATUS_DONE
    assert parse_enum(task_pb2.TaskStatus, 4) == 4
    assert short_name(task_pb2.TaskStatus, 2) == "IN_PROGRESS"
    with pytest.raises(ValueError, match="IN_PROGRESS"):
        parse_enum(task_pb2.TaskStatus, "WIP")
    with pytest.raises(ValueError):
        parse_enum(task_pb2.TaskStatus, 99)
