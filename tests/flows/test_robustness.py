"""FlowService under malformed and random input: clear errors, never INTERNAL/UNKNOWN."""

from __future__ import annotations

import random

import grpc
import pytest
from google.protobuf import json_format

from plansmith.v1 import flow_pb2
from plansmith.v1 import flow_service_pb2 as pb
from tests.conftest import details_of
from tests.flows.example import example_json, example_proto

SERVICE = pb.DESCRIPTOR.services_by_name["FlowService"]
METHODS = [m.name for m in SERVICE.methods]
BAD = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


def raw_call(channel: grpc.aio.Channel, method: str):
    return channel.unary_unary(
        f"/plansmith.v1.FlowService/{method}",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )


@pytest.mark.parametrize("method", METHODS)
async def test_bytes_that_do_not_parse_are_invalid_argument(channel, method):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await raw_call(channel, method)(b"\x0a\xff")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(e.value)["ErrorInfo"].reason == "MALFORMED_REQUEST"


@pytest.mark.parametrize("method", METHODS)
async def test_empty_requests_get_clear_errors(channel, method):
    try:
        await raw_call(channel, method)(b"")
    except grpc.aio.AioRpcError as e:
        assert e.code() not in BAD, (method, e.details())
        assert e.details()


async def test_random_bytes_never_yield_internal_or_unknown(channel):
    rng = random.Random(22)
    for i in range(200):
        method = METHODS[i % len(METHODS)]
        payload = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        try:
            await raw_call(channel, method)(payload)
        except grpc.aio.AioRpcError as e:
            assert e.code() not in BAD, (method, payload, e.details())


def mutate(rng: random.Random, value):
    """A random change somewhere in a JSON value."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(sorted(value))
        return {**value, key: mutate(rng, value[key])}
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        return [*value[:i], mutate(rng, value[i]), *value[i + 1 :]]
    return rng.choice(
        ["", "ghost", "state.", "((((", "not not not", 'state.x == "', "x" * 300, [], {}]
    )


async def test_mutated_flows_are_accepted_or_refused_clearly(flows):
    rng = random.Random(7)
    base = example_json()
    for i in range(60):
        candidate = mutate(rng, base)
        try:
            msg = json_format.ParseDict(candidate, flow_pb2.Flow())
        except json_format.ParseError:
            continue  # not a Flow in its JSON form: nothing to send
        try:
            await flows.CreateFlow(pb.CreateFlowRequest(flow=msg, flow_id=f"f{i}"))
            await flows.PlanExecutionPath(
                pb.PlanExecutionPathRequest(flow_id=f"f{i}", user_message="how many orders")
            )
        except grpc.aio.AioRpcError as e:
            assert e.code() not in BAD, (candidate, e.details())
            assert e.code() in (
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.FAILED_PRECONDITION,
            ), e.details()


async def test_oversized_message_and_state_are_invalid_argument(flows):
    await flows.CreateFlow(pb.CreateFlowRequest(flow=example_proto(), flow_id="sql"))
    req = pb.PlanExecutionPathRequest(flow_id="sql", user_message="x" * 10_001)
    req.state.update({"blob": "y" * 300_000})
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await flows.PlanExecutionPath(req)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in details_of(e.value)["BadRequest"].field_violations}
    assert fields == {"user_message", "state"}
