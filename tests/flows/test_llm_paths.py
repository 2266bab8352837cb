"""The LLM path planner over real HTTP (tests/support/openai_server.py): the flow's node
names as an enum in the structured output; a valid answer; an invalid one repaired with
its violations; invalid twice, a failing backend: the embedded planner, with the reason;
fallback off: NO_VALID_PATH; routing rules over the message and the state."""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf import struct_pb2

from plansmith.v1 import flow_service_pb2 as pb
from plansmith.v1 import flow_service_pb2_grpc
from tests.backends.conftest import backend_toml, every_request_to
from tests.conftest import details_of
from tests.flows.example import example_proto
from tests.flows.test_text_to_sql_paths import DATA, GIVEN_SQL
from tests.support.openai_server import Reply

FIX = "Fix this SQL: SELECT * FORM users"


def answer(*nodes: str) -> Reply:
    return Reply(content=json.dumps({"path": list(nodes)}))


async def stub(plansmith, toml: str):
    running = await plansmith(toml)
    channel = grpc.aio.insecure_channel(running.address)
    flows = flow_service_pb2_grpc.FlowServiceStub(channel)
    await flows.CreateFlow(pb.CreateFlowRequest(flow=example_proto(), flow_id="sql"))
    return flows, channel


async def plan(flows, message: str, **kw) -> pb.PlanExecutionPathResponse:
    return await flows.PlanExecutionPath(
        pb.PlanExecutionPathRequest(flow_id="sql", user_message=message, **kw)
    )


async def test_a_valid_model_path_is_used(llm, plansmith):
    llm.script("m", answer(*GIVEN_SQL))
    flows, ch = await stub(plansmith, backend_toml("gpt", "m") + every_request_to("gpt"))
    async with ch:
        path = (await plan(flows, FIX)).path
    assert tuple(path.nodes) == GIVEN_SQL and path.planner == "llm:gpt"
    assert path.validation.valid and not path.fallback_reason
    assert [(a.planner, a.outcome) for a in path.attempts] == [("llm:gpt", "accepted")]
    (body,) = llm.bodies("m")
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["path"]["items"]["enum"] == [n.name for n in example_proto().nodes]
    assert FIX in body["messages"][-1]["content"]


async def test_an_invalid_path_is_repaired_once_with_its_violations(llm, plansmith):
    # No edge from classify_prompt to execute_sql.
    llm.script(
        "m", answer("classify_prompt", "execute_sql", "format_final_response"), answer(*GIVEN_SQL)
    )
    flows, ch = await stub(plansmith, backend_toml("gpt", "m") + every_request_to("gpt"))
    async with ch:
        path = (await plan(flows, FIX)).path
    assert tuple(path.nodes) == GIVEN_SQL and path.planner == "llm:gpt"
    assert [a.outcome for a in path.attempts] == ["invalid", "repaired"]
    assert tuple(path.attempts[0].path) == (
        "classify_prompt",
        "execute_sql",
        "format_final_response",
    )
    repair = llm.bodies("m")[1]["messages"][-1]["content"]
    assert "no edge from 'classify_prompt' to 'execute_sql'" in repair


async def test_invalid_twice_falls_back_to_the_embedded_planner(llm, plansmith):
    llm.script("m", answer("validate_sql"))
    flows, ch = await stub(plansmith, backend_toml("gpt", "m") + every_request_to("gpt"))
    async with ch:
        path = (await plan(flows, FIX)).path
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await plan(flows, FIX, fallback_enabled=False)
    assert tuple(path.nodes) == GIVEN_SQL and path.planner == "embedded"
    assert [a.outcome for a in path.attempts] == ["invalid", "invalid", "accepted"]
    assert "must start at the entry node" in path.fallback_reason
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details_of(e.value)["ErrorInfo"].reason == "NO_VALID_PATH"
    assert len(llm.bodies("m")) == 4  # two tries per call, nothing more


async def test_a_failing_backend_falls_back_with_the_reason(llm, plansmith):
    llm.script("m", Reply(status=500, body={"error": {"message": "boom"}}))
    flows, ch = await stub(plansmith, backend_toml("gpt", "m") + every_request_to("gpt"))
    async with ch:
        path = (await plan(flows, "How many orders shipped last month?")).path
    assert tuple(path.nodes) == DATA and path.planner == "embedded"
    assert path.attempts[0].outcome == "failed" and "HTTP 500" in path.attempts[0].detail
    assert "HTTP 500" in path.fallback_reason


async def test_routing_rules_see_the_message_and_the_state(llm, plansmith):
    llm.script("m", answer(*GIVEN_SQL))
    rules = (
        '[[rules]]\nname = "sql"\nbackend = "gpt"\n'
        '[rules.when]\nkeywords = ["sql"]\nmethods = ["plan_path"]\n'
        '[[rules]]\nname = "approvals"\nbackend = "gpt"\n[rules.when]\nmethods = ["plan_path"]\n'
        'context = [{ path = "requires_approval", equals = true }]\n'
    )
    flows, ch = await stub(plansmith, backend_toml("gpt", "m") + rules)
    async with ch:
        routed = (await plan(flows, FIX)).path
        plain = (await plan(flows, "hello there")).path
        st = struct_pb2.Struct()
        st.update({"requires_approval": True})
        by_state = (await plan(flows, "hello there", state=st)).path
    assert routed.planner == "llm:gpt"
    assert plain.planner == "embedded" and [a.planner for a in plain.attempts] == ["embedded"]
    assert by_state.planner == "llm:gpt"  # the state matched the second rule
    assert len(llm.bodies("m")) == 2
