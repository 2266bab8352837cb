"""The client's FlowService methods against the real server, on both clients."""

from __future__ import annotations

import pytest

from plansmith import PreconditionFailedError, ResourceNotFoundError, ValidationError
from plansmith.v1 import flow_pb2
from tests.flows.example import example_json


async def test_every_flow_method(client):
    flow = await client.create_flow(example_json(), flow_id="sql", request_id="c1")
    assert flow.id == "sql" and flow.version == 1
    assert await client.create_flow(example_json(), flow_id="sql", request_id="c1") == flow
    assert (await client.get_flow("sql")) == flow
    listed = await client.get_flows(per_page=10)
    assert [f.id for f in listed.flows] == ["sql"]
    v2 = await client.update_flow("sql", flow, etag=flow.etag)
    assert v2.version == 2
    assert (await client.get_flow("sql", version=1)).version == 1

    path = await client.plan_execution_path("sql", "Hello!", state={"requires_approval": False})
    assert list(path.nodes) == ["classify_prompt", "general_questions", "format_final_response"]
    run = await client.start_flow_run("sql", "Hello!")
    step = await client.advance_flow_run(run.id, "classify_prompt", outputs={"intent": "general"})
    assert step.next_node == "general_questions"
    assert (await client.get_flow_run(run.id)).current_path_index == 1
    runs = await client.get_flow_runs(flow_id="sql", status="RUNNING")
    assert [r.id for r in runs.runs] == [run.id]
    assert runs.runs[0].status == flow_pb2.FLOW_RUN_STATUS_RUNNING

    with pytest.raises(PreconditionFailedError):
        await client.delete_flow("sql")
    gone = await client.delete_flow("sql", force=True)
    assert (gone.deleted_versions, gone.deleted_runs) == (2, 1)
    with pytest.raises(ResourceNotFoundError):
        await client.get_flow("sql")


async def test_flow_arguments_are_checked(client):
    with pytest.raises(ValidationError):
        await client.create_flow({"name": "x", "nodes": [{"nom": "a"}]})
    with pytest.raises(ValidationError):
        await client.plan_execution_path("sql", "hi", state={"bad": object()})
