"""I/O-free pins of the helpers the two clients share: update requests, `service_name`
and the default jitter source (the end of a stream is tested on a real server, test_streams)."""

from __future__ import annotations

import random

import pytest
from google.protobuf import wrappers_pb2

from plansmith import (
    AsyncPlansmithClient,
    CircuitBreaker,
    CircuitOpenError,
    PlansmithClient,
    ServiceUnavailableError,
)
from plansmith._base import BaseClient
from plansmith.interceptors import InterceptorChain
from plansmith.interceptors._common import SyncCallDetails
from plansmith.interceptors.breaker import BreakerInterceptor

Int = wrappers_pb2.Int64Value
GET_PLAN = "/plansmith.v1.PlanService/GetPlan"

# -- update requests ---------------------------------------------------------------------


def test_update_plan_request_sets_the_given_fields_and_names_them_in_the_mask():
    req = BaseClient._update_plan_request(
        "pln_1", {"status": "ACTIVE", "description": "", "name": None}, "e1", "k1"
    )
    assert (req.plan.id, req.plan.etag, req.request_id) == ("pln_1", "e1", "k1")
    assert list(req.update_mask.paths) == ["name", "description", "status"]  # allowed order
    assert req.plan.status == 2 and req.plan.name == "" and req.plan.description == ""


def test_update_task_request_sets_the_given_fields_and_names_them_in_the_mask():
    req = BaseClient._update_task_request(
        "tsk_1", {"progress": 40, "schedule": (1.0, 2.0), "title": "T"}, "e2", None
    )
    assert (req.task.id, req.task.etag) == ("tsk_1", "e2")
    assert len(req.request_id) == 32  # a fresh idempotency key when none is given
    assert list(req.update_mask.paths) == ["title", "progress", "schedule"]
    assert req.task.progress == 40 and req.task.schedule.end_offset_hours == 2.0


@pytest.mark.parametrize(
    ("build", "what"),
    [
        (BaseClient._update_plan_request, "update_plan"),
        (BaseClient._update_task_request, "update_task"),
    ],
)
def test_an_update_without_fields_is_refused_naming_the_method(build, what):
    with pytest.raises(ValueError, match=rf"^{what}: give at least one field to change$"):
        build("x_1", {"id": "ignored"}, "", None)


# -- service_name ------------------------------------------------------------------------


def test_service_name_comes_from_the_method_unless_given():
    assert ServiceUnavailableError(method=GET_PLAN).service_name == "plansmith.v1.PlanService"
    assert ServiceUnavailableError(method=GET_PLAN, service_name="s").service_name == "s"
    assert ServiceUnavailableError("down").service_name == ""


def test_circuit_open_error_from_the_interceptor_names_method_service_and_request_id():
    breaker = CircuitBreaker("t")
    breaker.open()
    details = SyncCallDetails(GET_PLAN.encode(), None, [("x-request-id", "r1")], None, None, None)
    with pytest.raises(CircuitOpenError) as info:
        BreakerInterceptor(breaker).intercept_unary_unary(
            lambda d, r: pytest.fail("sent while open"), details, Int()
        )
    err = info.value
    assert (err.method, err.service_name, err.request_id) == (
        GET_PLAN,
        "plansmith.v1.PlanService",
        "r1",
    )


# -- jitter --------------------------------------------------------------------------------


async def test_connect_jitters_with_random_unless_given_a_source():
    def mine() -> float:
        return 0.5

    clients = [
        AsyncPlansmithClient.connect("127.0.0.1:1", breaker=None),
        PlansmithClient.connect("127.0.0.1:1", breaker=None),
        AsyncPlansmithClient.connect("127.0.0.1:1", breaker=None, jitter=mine),
        PlansmithClient.connect("127.0.0.1:1", breaker=None, jitter=mine),
    ]
    try:
        assert [c.chain.jitter for c in clients] == [random.random, random.random, mine, mine]
        streams = [c.stream(c.channel.unary_stream(GET_PLAN), Int()) for c in clients]
        assert [s._state._jitter for s in streams] == [random.random, random.random, mine, mine]
        for s in streams:
            s._cancel()
    finally:
        for c in clients:
            if isinstance(c, AsyncPlansmithClient):
                await c.close()
            else:
                c.close()
    assert InterceptorChain().jitter is random.random
