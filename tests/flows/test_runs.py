"""Runs along planned paths: advancing, replanning when the state breaks the rest of the
path (and along a retry loop), versions kept, idempotency, errors, learning, retention."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import json_format, struct_pb2

from plansmith.v1 import flow_pb2, flow_service_pb2_grpc
from plansmith.v1 import flow_service_pb2 as pb
from plansmith_server.app import start
from plansmith_server.config import Config
from tests.conftest import details_of
from tests.flows.example import example_proto
from tests.flows.test_text_to_sql_paths import DATA, GENERAL, GIVEN_SQL


def struct(**kw) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(kw)
    return s


async def setup(flows, message: str, **st) -> flow_pb2.FlowRun:
    await flows.CreateFlow(pb.CreateFlowRequest(flow=example_proto(), flow_id="sql"))
    return (
        await flows.StartFlowRun(
            pb.StartFlowRunRequest(flow_id="sql", user_message=message, state=struct(**st))
        )
    ).run


async def advance(flows, run_id, node, **outputs) -> pb.AdvanceFlowRunResponse:
    return await flows.AdvanceFlowRun(
        pb.AdvanceFlowRunRequest(run_id=run_id, node=node, outputs=struct(**outputs))
    )


async def test_a_run_follows_its_path_to_completion(flows):
    run = await setup(flows, "How many orders shipped last month?")
    assert tuple(run.planned_execution_path) == DATA
    assert run.current_path_index == 0 and run.status == flow_pb2.FLOW_RUN_STATUS_RUNNING
    outputs = {
        "classify_prompt": {"intent": "data_question"},
        "rewrite_prompt": {"rewritten_prompt": "count shipped orders"},
        "get_relevant_tables": {"relevant_tables": ["orders"]},
        "trim_relevant_tables": {"trimmed_schema": "orders(id, shipped_at)"},
        "generate_sql": {"sql": "SELECT count(*) FROM orders"},
        "validate_sql": {"sql_valid": True},
        "execute_sql": {"query_result": [[42]]},
        "format_final_response": {"final_response": "42 orders"},
    }
    for i, node in enumerate(DATA):
        r = await advance(flows, run.id, node, **outputs[node])
        assert not r.replanned
        assert r.next_node == (DATA[i + 1] if i + 1 < len(DATA) else "")
    done = r.run
    assert done.status == flow_pb2.FLOW_RUN_STATUS_COMPLETED
    assert tuple(done.completed_nodes) == DATA
    assert done.current_path_index == len(DATA)
    assert json_format.MessageToDict(done.state)["final_response"] == "42 orders"
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await advance(flows, run.id, "format_final_response")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details_of(e.value)["ErrorInfo"].reason == "FLOW_RUN_COMPLETED"


async def test_state_that_breaks_the_path_replans_the_rest(flows):
    run = await setup(flows, "How many orders shipped last month?")
    r = await advance(flows, run.id, "classify_prompt", intent="sql_provided", sql="SELECT 1")
    assert r.replanned and r.next_node == "validate_sql"
    assert tuple(r.run.planned_execution_path) == GIVEN_SQL
    (replan,) = r.run.replans
    assert replan.from_node == "classify_prompt" and replan.at_index == 0
    assert 'state.intent == "data_question"' in replan.reason
    assert tuple(replan.previous_remaining) == DATA[1:]
    assert tuple(replan.new_remaining) == GIVEN_SQL[1:]


async def test_invalid_sql_goes_back_along_the_retry_loop(flows):
    run = await setup(flows, "Fix this SQL: SELECT * FORM users")
    assert tuple(run.planned_execution_path) == GIVEN_SQL
    await advance(flows, run.id, "classify_prompt", intent="sql_provided", sql="SELECT * FORM u")
    r = await advance(flows, run.id, "validate_sql", sql_valid=False)
    assert r.replanned and r.next_node == "generate_sql"
    assert tuple(r.run.replans[0].new_remaining) == (
        "generate_sql",
        "validate_sql",
        "execute_sql",
        "format_final_response",
    )
    r = await advance(flows, run.id, "generate_sql", sql="SELECT * FROM users")
    assert not r.replanned and r.next_node == "validate_sql"
    for node, out in (
        ("validate_sql", {"sql_valid": True}),
        ("execute_sql", {"query_result": []}),
        ("format_final_response", {}),
    ):
        r = await advance(flows, run.id, node, **out)
    assert r.run.status == flow_pb2.FLOW_RUN_STATUS_COMPLETED
    assert list(r.run.completed_nodes) == [
        "classify_prompt",
        "validate_sql",
        "generate_sql",
        "validate_sql",
        "execute_sql",
        "format_final_response",
    ]


async def test_advance_errors_change_nothing(flows):
    run = await setup(flows, "hello")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await advance(flows, run.id, "execute_sql")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details_of(e.value)["ErrorInfo"].reason == "NOT_CURRENT_NODE"
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await advance(flows, run.id, "classify_prompt", intent="general", bogus=1)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (violation,) = details_of(e.value)["BadRequest"].field_violations
    assert violation.field == "outputs['bogus']"
    assert "declares no output 'bogus'" in violation.description
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await flows.AdvanceFlowRun(
            pb.AdvanceFlowRunRequest(run_id=run.id, node="classify_prompt", etag="stale")
        )
    assert e.value.code() == grpc.StatusCode.ABORTED
    got = (await flows.GetFlowRun(pb.GetFlowRunRequest(run_id=run.id))).run
    assert got == run


async def test_advance_is_idempotent_by_request_id(flows):
    run = await setup(flows, "hello")
    req = pb.AdvanceFlowRunRequest(
        run_id=run.id, node="classify_prompt", outputs=struct(intent="general"), request_id="a1"
    )
    first = await flows.AdvanceFlowRun(req)
    again = await flows.AdvanceFlowRun(req)
    assert first == again and first.next_node == "general_questions"
    got = (await flows.GetFlowRun(pb.GetFlowRunRequest(run_id=run.id))).run
    assert list(got.completed_nodes) == ["classify_prompt"]


async def test_runs_keep_the_version_they_started_on(flows):
    run = await setup(flows, "hello")
    v2 = example_proto()
    v2.id = "sql"
    # Version 2 drops the general branch's condition wording; the run keeps version 1.
    v2.nodes[0].conditions["general_questions"] = 'state.intent == "chat"'
    await flows.UpdateFlow(pb.UpdateFlowRequest(flow=v2))
    r = await advance(flows, run.id, "classify_prompt", intent="general")
    assert r.run.flow_version == 1 and not r.replanned
    assert r.next_node == "general_questions"


async def test_list_runs_filters_by_flow_and_status(flows):
    run = await setup(flows, "hello")
    other = (
        await flows.StartFlowRun(pb.StartFlowRunRequest(flow_id="sql", user_message="thanks"))
    ).run
    for node, out in (
        ("classify_prompt", {"intent": "general"}),
        ("general_questions", {}),
        ("format_final_response", {}),
    ):
        await advance(flows, other.id, node, **out)
    running = await flows.ListFlowRuns(
        pb.ListFlowRunsRequest(flow_id="sql", status=flow_pb2.FLOW_RUN_STATUS_RUNNING)
    )
    assert [r.id for r in running.runs] == [run.id] and running.total_size == 1
    page = await flows.ListFlowRuns(pb.ListFlowRunsRequest(page_size=1))
    assert page.total_size == 2 and page.next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await flows.ListFlowRuns(
            pb.ListFlowRunsRequest(flow_id="other", page_token=page.next_page_token)
        )
    assert details_of(e.value)["ErrorInfo"].reason == "PAGE_TOKEN_INVALID"


async def complete_general(flows, message: str) -> None:
    run = (
        await flows.StartFlowRun(pb.StartFlowRunRequest(flow_id="sql", user_message=message))
    ).run
    # Whatever was planned, classify_prompt's answer sends the run down the general branch.
    await advance(flows, run.id, "classify_prompt", intent="general")
    await advance(flows, run.id, "general_questions", answer="see the dashboard")
    await advance(flows, run.id, "format_final_response")


async def test_the_planner_prefers_the_path_similar_runs_completed(flows):
    await flows.CreateFlow(pb.CreateFlowRequest(flow=example_proto(), flow_id="sql"))
    message = "Show me the sales dashboard for last month"
    plan = pb.PlanExecutionPathRequest(flow_id="sql", user_message=message)
    before = (await flows.PlanExecutionPath(plan)).path
    assert tuple(before.nodes) == DATA
    # Runs for similar messages were classified general and completed that way.
    for m in ("Show me the sales dashboard for last month", "show the sales dashboard last month"):
        await complete_general(flows, m)
    after = (await flows.PlanExecutionPath(plan)).path
    assert tuple(after.nodes) == GENERAL
    assert "similar run" in after.hops[0].reason
    # Deterministic for the same stored history.
    assert (await flows.PlanExecutionPath(plan)).path == after
    # A dissimilar message is not affected.
    other = pb.PlanExecutionPathRequest(flow_id="sql", user_message="How many users signed up?")
    assert tuple((await flows.PlanExecutionPath(other)).path.nodes) == DATA


async def test_completed_runs_past_the_retention_are_dropped(tmp_path):
    config = Config(listen="127.0.0.1:0", db_path=str(tmp_path / "db.sqlite"), flow_runs_retained=2)
    running = await start(config)
    try:
        async with grpc.aio.insecure_channel(running.address) as ch:
            flows = flow_service_pb2_grpc.FlowServiceStub(ch)
            await flows.CreateFlow(pb.CreateFlowRequest(flow=example_proto(), flow_id="sql"))
            for i in range(3):
                await complete_general(flows, f"hello number {i}")
            kept = await flows.ListFlowRuns(pb.ListFlowRunsRequest(flow_id="sql"))
            assert [r.user_message for r in kept.runs] == ["hello number 1", "hello number 2"]
    finally:
        await running.stop(grace=0.5)


async def test_a_state_that_rules_out_every_way_on_is_refused_and_changes_nothing(flows):
    run = await setup(flows, "How many orders shipped last month?")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await advance(flows, run.id, "classify_prompt", intent="nonsense")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details_of(e.value)["ErrorInfo"].reason == "NO_VALID_PATH"
    assert "classify_prompt" in e.value.details()
    assert (await flows.GetFlowRun(pb.GetFlowRunRequest(run_id=run.id))).run == run


async def test_racing_advances_of_one_node_record_it_once(flows):
    run = await setup(flows, "hello")
    results = await asyncio.gather(
        *(advance(flows, run.id, "classify_prompt", intent="general") for _ in range(4)),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(ok) == 1 and len(refused) == 3
    assert {r.code() for r in refused} <= {
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
    got = (await flows.GetFlowRun(pb.GetFlowRunRequest(run_id=run.id))).run
    assert list(got.completed_nodes) == ["classify_prompt"]
