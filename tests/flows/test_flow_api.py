"""FlowService over gRPC on a real server and database: flows CRUD, versions, etags,
idempotency, paging, deletion with runs, planning and runs."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2

from plansmith.v1 import flow_pb2
from plansmith.v1 import flow_service_pb2 as pb
from tests.conftest import details_of
from tests.flows.example import example_proto


def state(**kw) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(kw)
    return s


async def create_example(flows, flow_id="text-to-sql", **kw) -> flow_pb2.Flow:
    return (
        await flows.CreateFlow(pb.CreateFlowRequest(flow=example_proto(), flow_id=flow_id, **kw))
    ).flow


async def test_create_get_list_roundtrip(flows):
    f = await create_example(flows)
    assert f.id == "text-to-sql" and f.version == 1 and f.etag
    assert len(f.nodes) == 10
    assert f.nodes[3].kinds == [flow_pb2.NODE_KIND_HUMAN_IN_THE_LOOP]
    got = (await flows.GetFlow(pb.GetFlowRequest(flow_id=f.id))).flow
    assert got == f
    other = (await flows.CreateFlow(pb.CreateFlowRequest(flow=example_proto()))).flow
    assert other.id.startswith("flw_")
    page = await flows.ListFlows(pb.ListFlowsRequest(page_size=1))
    assert [x.id for x in page.flows] == [f.id] and page.total_size == 2
    rest = await flows.ListFlows(pb.ListFlowsRequest(page_size=1, page_token=page.next_page_token))
    assert [x.id for x in rest.flows] == [other.id] and not rest.next_page_token


async def test_chosen_id_taken_is_already_exists(flows):
    await create_example(flows)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await create_example(flows)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert details_of(e.value)["ErrorInfo"].reason == "FLOW_ALREADY_EXISTS"


async def test_create_is_idempotent_by_request_id(flows):
    a = await create_example(flows, flow_id="", request_id="flow-1")
    b = await create_example(flows, flow_id="", request_id="flow-1")
    assert a == b
    assert (await flows.ListFlows(pb.ListFlowsRequest())).total_size == 1
    other = example_proto()
    other.name = "changed"
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await flows.CreateFlow(pb.CreateFlowRequest(flow=other, request_id="flow-1"))
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert details_of(e.value)["ErrorInfo"].reason == "IDEMPOTENCY_KEY_REUSED"


async def test_update_makes_a_new_version_and_keeps_the_old(flows):
    f = await create_example(flows)
    changed = example_proto()
    changed.id = f.id
    changed.etag = f.etag
    changed.description = "v2"
    v2 = (await flows.UpdateFlow(pb.UpdateFlowRequest(flow=changed))).flow
    assert v2.version == 2 and v2.description == "v2" and v2.etag != f.etag
    assert (await flows.GetFlow(pb.GetFlowRequest(flow_id=f.id))).flow.version == 2
    v1 = (await flows.GetFlow(pb.GetFlowRequest(flow_id=f.id, version=1))).flow
    assert v1.description == f.description
    changed.etag = f.etag  # stale now
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await flows.UpdateFlow(pb.UpdateFlowRequest(flow=changed))
    assert e.value.code() == grpc.StatusCode.ABORTED
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await flows.GetFlow(pb.GetFlowRequest(flow_id=f.id, version=7))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert details_of(e.value)["ErrorInfo"].reason == "FLOW_VERSION_NOT_FOUND"


async def test_invalid_update_changes_nothing(flows):
    f = await create_example(flows)
    bad = example_proto()
    bad.id = f.id
    bad.nodes[0].possible_next_nodes.append("nowhere")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await flows.UpdateFlow(pb.UpdateFlowRequest(flow=bad))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (await flows.GetFlow(pb.GetFlowRequest(flow_id=f.id))).flow == f


async def test_delete_with_running_runs_needs_force(flows):
    f = await create_example(flows)
    run = (
        await flows.StartFlowRun(
            pb.StartFlowRunRequest(flow_id=f.id, user_message="How many orders shipped?")
        )
    ).run
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await flows.DeleteFlow(pb.DeleteFlowRequest(flow_id=f.id))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details_of(e.value)["ErrorInfo"].reason == "FLOW_HAS_RUNS_IN_PROGRESS"
    assert (await flows.GetFlowRun(pb.GetFlowRunRequest(run_id=run.id))).run.id == run.id
    gone = await flows.DeleteFlow(pb.DeleteFlowRequest(flow_id=f.id, force=True))
    assert (gone.deleted_versions, gone.deleted_runs) == (1, 1)
    for call in (
        flows.GetFlow(pb.GetFlowRequest(flow_id=f.id)),
        flows.GetFlowRun(pb.GetFlowRunRequest(run_id=run.id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call
        assert e.value.code() == grpc.StatusCode.NOT_FOUND


async def test_plan_execution_path_over_grpc(flows):
    f = await create_example(flows)
    path = (
        await flows.PlanExecutionPath(
            pb.PlanExecutionPathRequest(
                flow_id=f.id, user_message="Fix this SQL: SELECT * FORM users WHERE id = 1"
            )
        )
    ).path
    assert list(path.nodes) == [
        "classify_prompt",
        "validate_sql",
        "execute_sql",
        "format_final_response",
    ]
    assert path.planner == "embedded" and path.validation.valid
    assert path.flow_version == 1
    assert 0 < path.confidence <= 1
    assert {s.node for s in path.skipped} >= {"generate_sql", "rewrite_prompt"}
    assert [a.planner for a in path.attempts] == ["embedded"]


async def test_a_state_ruling_out_every_route_is_failed_precondition(flows):
    f = await create_example(flows)
    req = pb.PlanExecutionPathRequest(
        flow_id=f.id, user_message="hello", state=state(intent="nonsense")
    )
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await flows.PlanExecutionPath(req)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details_of(e.value)["ErrorInfo"].reason == "NO_VALID_PATH"


async def test_unknown_flow_is_not_found(flows):
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await flows.PlanExecutionPath(pb.PlanExecutionPathRequest(flow_id="nope"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert details_of(e.value)["ErrorInfo"].reason == "FLOW_NOT_FOUND"


async def test_a_flow_created_again_under_its_id_is_planned_afresh(flows):
    await create_example(flows)
    msg = "Fix this SQL: SELECT * FORM users"
    first = (
        await flows.PlanExecutionPath(
            pb.PlanExecutionPathRequest(flow_id="text-to-sql", user_message=msg)
        )
    ).path
    assert "validate_sql" in first.nodes
    await flows.DeleteFlow(pb.DeleteFlowRequest(flow_id="text-to-sql"))
    smaller = flow_pb2.Flow(
        name="two nodes",
        entry_node="start",
        terminal_nodes=["done"],
        nodes=[
            flow_pb2.FlowNode(name="start", possible_next_nodes=["done"]),
            flow_pb2.FlowNode(name="done"),
        ],
    )
    await flows.CreateFlow(pb.CreateFlowRequest(flow=smaller, flow_id="text-to-sql"))
    again = (
        await flows.PlanExecutionPath(
            pb.PlanExecutionPathRequest(flow_id="text-to-sql", user_message=msg)
        )
    ).path
    assert list(again.nodes) == ["start", "done"]
