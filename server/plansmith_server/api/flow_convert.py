"""FlowService messages <-> flow domain values."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from plansmith.v1 import flow_pb2
from plansmith_server.flows.model import ExecutionPath, Flow, FlowNode, FlowRun


def _ts(us: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=us // 1_000_000, nanos=(us % 1_000_000) * 1000)


def state_from_proto(s: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(s)


def state_to_proto(state: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(state)
    return out


def flow_from_proto(f: flow_pb2.Flow) -> Flow:
    return Flow(
        name=f.name,
        description=f.description,
        entry_node=f.entry_node,
        terminal_nodes=tuple(f.terminal_nodes),
        initial_state_keys=tuple(f.initial_state_keys),
        nodes=tuple(
            FlowNode(
                name=n.name,
                description=n.description,
                inputs=tuple(n.inputs),
                outputs=tuple(n.outputs),
                possible_next_nodes=tuple(n.possible_next_nodes),
                conditions=dict(n.conditions),
                kinds=tuple(int(k) for k in n.kinds),
                retry_next_nodes=tuple(n.retry_next_nodes),
            )
            for n in f.nodes
        ),
        id=f.id,
    )


def flow_to_proto(f: Flow) -> flow_pb2.Flow:
    return flow_pb2.Flow(
        id=f.id,
        name=f.name,
        description=f.description,
        entry_node=f.entry_node,
        terminal_nodes=list(f.terminal_nodes),
        initial_state_keys=list(f.initial_state_keys),
        nodes=[
            flow_pb2.FlowNode(
                name=n.name,
                description=n.description,
                inputs=list(n.inputs),
                outputs=list(n.outputs),
                possible_next_nodes=list(n.possible_next_nodes),
                conditions=n.conditions,
                kinds=[flow_pb2.NodeKind.ValueType(k) for k in n.kinds],
                retry_next_nodes=list(n.retry_next_nodes),
            )
            for n in f.nodes
        ],
        version=f.version,
        create_time=_ts(f.create_time),
        update_time=_ts(f.update_time),
        etag=f.etag,
    )


def path_to_proto(p: ExecutionPath) -> flow_pb2.ExecutionPath:
    c = p.check
    return flow_pb2.ExecutionPath(
        nodes=list(p.nodes),
        hops=[flow_pb2.PathHop(node=h.node, reason=h.reason) for h in p.hops],
        skipped=[flow_pb2.SkippedNode(node=h.node, reason=h.reason) for h in p.skipped],
        assumptions=[
            flow_pb2.PathAssumption(
                from_node=a.from_node,
                to_node=a.to_node,
                condition=a.condition,
                unknown_keys=list(a.unknown_keys),
            )
            for a in c.assumptions
        ],
        planner=p.planner,
        confidence=p.confidence,
        validation=flow_pb2.PathValidation(
            valid=c.valid,
            violations=[
                flow_pb2.PathViolation(index=v.index, node=v.node, description=v.description)
                for v in c.violations
            ],
            hops_checked=c.hops_checked,
            conditions_checked=c.conditions_checked,
            conditions_assumed=c.conditions_assumed,
            inputs_checked=c.inputs_checked,
        ),
        attempts=[
            flow_pb2.PlannerAttempt(
                planner=a.planner, outcome=a.outcome, detail=a.detail, path=list(a.path)
            )
            for a in p.attempts
        ],
        fallback_reason=p.fallback_reason,
        flow_version=p.flow_version,
    )


def run_to_proto(r: FlowRun) -> flow_pb2.FlowRun:
    return flow_pb2.FlowRun(
        id=r.id,
        flow_id=r.flow_id,
        flow_version=r.flow_version,
        user_message=r.user_message,
        state=state_to_proto(r.state),
        planned_execution_path=list(r.planned_execution_path),
        current_path_index=r.current_path_index,
        completed_nodes=list(r.completed_nodes),
        status=flow_pb2.FlowRunStatus.ValueType(r.status),
        initial_plan=path_to_proto(r.initial_plan),
        replans=[
            flow_pb2.Replan(
                at_index=x.at_index,
                from_node=x.from_node,
                reason=x.reason,
                previous_remaining=list(x.previous_remaining),
                new_remaining=list(x.new_remaining),
                planner=x.planner,
            )
            for x in r.replans
        ],
        create_time=_ts(r.create_time),
        update_time=_ts(r.update_time),
        etag=r.etag,
    )
