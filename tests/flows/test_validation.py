"""Registration rules: every violation at once, each naming its node; limits named."""

from __future__ import annotations

import grpc
import pytest

from plansmith.v1 import flow_pb2
from plansmith.v1 import flow_service_pb2 as pb
from plansmith_server.flows import graph
from plansmith_server.flows.model import Flow, FlowNode
from tests.conftest import details_of
from tests.flows.example import text_to_sql


def rules(flow: Flow) -> dict[str, str]:
    return {v.field: v.description for v in graph.validate(flow)}


def node(name, nxt=(), **kw) -> FlowNode:
    return FlowNode(name=name, possible_next_nodes=tuple(nxt), **kw)


def test_the_example_is_valid():
    assert graph.validate(text_to_sql()) == []


def test_every_graph_rule_is_reported_at_once():
    flow = Flow(
        name="broken",
        entry_node="a",
        terminal_nodes=("end",),
        initial_state_keys=("msg",),
        nodes=(
            node("a", ["b", "ghost", "loop1"], conditions={"b": "state.msg == "}),
            node("b", ["end"], inputs=("never_made",), conditions={"end": "state.nobody == 1"}),
            node("orphan", ["end"]),
            node("loop1", ["loop2"]),
            node("loop2", ["loop1"], retry_next_nodes=("loop1",)),
            node("fwd1", ["fwd2"]),
            node("fwd2", ["fwd1", "end"]),
            node("end"),
        ),
    )
    got = rules(flow)
    assert "unknown target 'ghost'" in got["flow.nodes[0].possible_next_nodes[1]"]
    assert "does not parse" in got["flow.nodes[0].conditions['b']"]
    assert "unknown state state.nobody" in got["flow.nodes[1].conditions['end']"]
    assert "'never_made' is provided by no upstream node" in got["flow.nodes[1].inputs[0]"]
    assert "node 'orphan': unreachable" in got["flow.nodes[2]"]
    assert "cycle with no exit: loop1 -> loop2 -> loop1" in got["flow.nodes[3]"]
    assert "cycle with no retry-loop edge: fwd1 -> fwd2 -> fwd1" in got["flow.nodes[5]"]
    assert len(graph.validate(flow)) >= 8


def test_no_route_to_a_terminal_except_back_along_a_retry_loop():
    flow = Flow(
        name="f",
        entry_node="a",
        terminal_nodes=("end",),
        nodes=(node("a", ["b", "end"]), node("b", ["a"], retry_next_nodes=("a",)), node("end")),
    )
    assert "no route to a terminal" in rules(flow)["flow.nodes[1]"]


def test_field_rules():
    flow = Flow(
        name=" ",
        entry_node="missing",
        terminal_nodes=(),
        initial_state_keys=("bad key",),
        nodes=(
            node("a", ["a2"], kinds=(9,), retry_next_nodes=("zz",), conditions={"q": "true"}),
            node("a"),
            node("9bad"),
        ),
    )
    got = rules(flow)
    assert got["flow.name"] == "is required and must not be blank"
    assert "names no node" in got["flow.entry_node"]
    assert "at least one terminal" in got["flow.terminal_nodes"]
    assert "not a key name" in got["flow.initial_state_keys[0]"]
    assert "unknown kind 9" in got["flow.nodes[0].kinds[0]"]
    assert "not a next node" in got["flow.nodes[0].retry_next_nodes[0]"]
    assert "not a next node" in got["flow.nodes[0].conditions['q']"]
    assert "used by nodes[0] too" in got["flow.nodes[1].name"]
    assert "starting with a letter" in got["flow.nodes[2].name"]


def test_terminal_nodes_have_no_next_nodes():
    flow = Flow(name="f", entry_node="a", terminal_nodes=("a",), nodes=(node("a", ["a"]),))
    assert "a terminal node has no next nodes" in rules(flow)["flow.nodes[0].possible_next_nodes"]


def chain(n: int, fanout: int = 1) -> Flow:
    names = [f"n{i}" for i in range(n)]
    nodes = tuple(node(names[i], names[i + 1 : i + 1 + fanout]) for i in range(n))
    return Flow(name="big", entry_node="n0", terminal_nodes=(names[-1],), nodes=nodes)


def test_limits_are_named():
    assert graph.validate(chain(graph.MAX_NODES)) == []
    too_many = rules(chain(graph.MAX_NODES + 1))
    assert "the limit is 1000 nodes per flow" in too_many["flow.nodes"]
    edges = rules(chain(900, fanout=6))
    assert "the limit is 5000 edges per flow" in edges["flow.nodes"]
    fan = rules(chain(40, fanout=33))
    assert "the limit is 32" in fan["flow.nodes[0].possible_next_nodes"]
    long_cond = rules(
        Flow(
            name="f",
            entry_node="a",
            terminal_nodes=("b",),
            nodes=(node("a", ["b"], conditions={"b": "not " * 9 + "state.x"}), node("b")),
        )
    )
    assert "nested deeper than 8 levels" in long_cond["flow.nodes[0].conditions['b']"]


async def test_violations_travel_as_bad_request_naming_each_node(flows):
    bad = flow_pb2.Flow(
        name="broken",
        entry_node="a",
        terminal_nodes=["end"],
        nodes=[
            flow_pb2.FlowNode(name="a", possible_next_nodes=["end", "ghost"]),
            flow_pb2.FlowNode(name="lost", possible_next_nodes=["end"]),
            flow_pb2.FlowNode(name="end"),
        ],
    )
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await flows.CreateFlow(pb.CreateFlowRequest(flow=bad))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    v = {x.field: x.description for x in details_of(e.value)["BadRequest"].field_violations}
    assert "node 'a': unknown target 'ghost'" in v["flow.nodes[0].possible_next_nodes[1]"]
    assert "node 'lost': unreachable" in v["flow.nodes[1]"]
    assert (await flows.ListFlows(pb.ListFlowsRequest())).total_size == 0


async def test_a_huge_graph_is_refused_with_the_limit(flows):
    nodes = [
        flow_pb2.FlowNode(name=f"n{i}", possible_next_nodes=[f"n{i + 1}"]) for i in range(1500)
    ]
    nodes.append(flow_pb2.FlowNode(name="n1500"))
    big = flow_pb2.Flow(name="big", entry_node="n0", terminal_nodes=["n1500"], nodes=nodes)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await flows.CreateFlow(pb.CreateFlowRequest(flow=big))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    v = details_of(e.value)["BadRequest"].field_violations
    assert [x.description for x in v] == ["has 1501 nodes; the limit is 1000 nodes per flow"]
