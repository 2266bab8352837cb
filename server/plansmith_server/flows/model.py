"""Flows, their nodes, planned paths and runs: plain values, JSON-codable for storage."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any


class NodeKind(IntEnum):
    """Labels of a node (the numbers of the proto enum)."""

    UNSPECIFIED = 0
    HUMAN_IN_THE_LOOP = 1
    SIDE_EFFECTING = 2
    RETRY_LOOP = 3


class RunStatus(IntEnum):
    UNSPECIFIED = 0
    RUNNING = 1
    COMPLETED = 2


@dataclass(frozen=True)
class FlowNode:
    name: str
    description: str = ""
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    possible_next_nodes: tuple[str, ...] = ()
    conditions: dict[str, str] = field(default_factory=dict)
    kinds: tuple[int, ...] = ()
    retry_next_nodes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("inputs", "outputs", "possible_next_nodes", "kinds", "retry_next_nodes"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FlowNode:
        return cls(
            name=d["name"],
            description=d.get("description", ""),
            inputs=tuple(d.get("inputs", ())),
            outputs=tuple(d.get("outputs", ())),
            possible_next_nodes=tuple(d.get("possible_next_nodes", ())),
            conditions=dict(d.get("conditions", {})),
            kinds=tuple(d.get("kinds", ())),
            retry_next_nodes=tuple(d.get("retry_next_nodes", ())),
        )


@dataclass(frozen=True)
class Flow:
    """A flow at one version (`id`, `version`, times: set by the service)."""

    name: str
    entry_node: str
    nodes: tuple[FlowNode, ...]
    terminal_nodes: tuple[str, ...] = ()
    initial_state_keys: tuple[str, ...] = ()
    description: str = ""
    id: str = ""
    version: int = 0
    create_time: int = 0
    update_time: int = 0

    @property
    def etag(self) -> str:
        return hashlib.sha1(f"{self.id}/{self.version}/{self.update_time}".encode()).hexdigest()[
            :16
        ]

    def node(self, name: str) -> FlowNode | None:
        for n in self.nodes:
            if n.name == name:
                return n
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entry_node": self.entry_node,
            "nodes": [n.to_dict() for n in self.nodes],
            "terminal_nodes": list(self.terminal_nodes),
            "initial_state_keys": list(self.initial_state_keys),
            "description": self.description,
            "id": self.id,
            "version": self.version,
            "create_time": self.create_time,
            "update_time": self.update_time,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Flow:
        return cls(
            name=d["name"],
            entry_node=d["entry_node"],
            nodes=tuple(FlowNode.from_dict(n) for n in d["nodes"]),
            terminal_nodes=tuple(d.get("terminal_nodes", ())),
            initial_state_keys=tuple(d.get("initial_state_keys", ())),
            description=d.get("description", ""),
            id=d.get("id", ""),
            version=d.get("version", 0),
            create_time=d.get("create_time", 0),
            update_time=d.get("update_time", 0),
        )


@dataclass(frozen=True)
class Hop:
    node: str
    reason: str


@dataclass(frozen=True)
class Assumption:
    from_node: str
    to_node: str
    condition: str
    unknown_keys: tuple[str, ...]


@dataclass(frozen=True)
class PathViolation:
    index: int
    node: str
    description: str


@dataclass(frozen=True)
class PathCheck:
    """The result of checking a path (see `paths.check_path`)."""

    violations: tuple[PathViolation, ...] = ()
    assumptions: tuple[Assumption, ...] = ()
    hops_checked: int = 0
    conditions_checked: int = 0
    conditions_assumed: int = 0
    inputs_checked: int = 0

    @property
    def valid(self) -> bool:
        return not self.violations

    def summary(self, limit: int = 5) -> str:
        shown = [f"{v.node or 'path'}: {v.description}" for v in self.violations[:limit]]
        more = len(self.violations) - limit
        return "; ".join(shown) + (f" (+{more} more)" if more > 0 else "")


@dataclass(frozen=True)
class Attempt:
    planner: str
    outcome: str
    detail: str = ""
    path: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExecutionPath:
    nodes: tuple[str, ...]
    hops: tuple[Hop, ...]
    skipped: tuple[Hop, ...]
    check: PathCheck
    planner: str
    confidence: float
    attempts: tuple[Attempt, ...] = ()
    fallback_reason: str = ""
    flow_version: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExecutionPath:
        c = d["check"]
        return cls(
            nodes=tuple(d["nodes"]),
            hops=tuple(Hop(**h) for h in d["hops"]),
            skipped=tuple(Hop(**h) for h in d["skipped"]),
            check=PathCheck(
                violations=tuple(PathViolation(**v) for v in c["violations"]),
                assumptions=tuple(
                    Assumption(
                        a["from_node"], a["to_node"], a["condition"], tuple(a["unknown_keys"])
                    )
                    for a in c["assumptions"]
                ),
                hops_checked=c["hops_checked"],
                conditions_checked=c["conditions_checked"],
                conditions_assumed=c["conditions_assumed"],
                inputs_checked=c["inputs_checked"],
            ),
            planner=d["planner"],
            confidence=d["confidence"],
            attempts=tuple(
                Attempt(a["planner"], a["outcome"], a["detail"], tuple(a["path"]))
                for a in d.get("attempts", ())
            ),
            fallback_reason=d.get("fallback_reason", ""),
            flow_version=d.get("flow_version", 0),
        )


@dataclass(frozen=True)
class Replan:
    at_index: int
    from_node: str
    reason: str
    previous_remaining: tuple[str, ...]
    new_remaining: tuple[str, ...]
    planner: str


@dataclass(frozen=True)
class FlowRun:
    id: str
    flow_id: str
    flow_version: int
    user_message: str
    state: dict[str, Any]
    planned_execution_path: tuple[str, ...]
    current_path_index: int
    completed_nodes: tuple[str, ...]
    status: RunStatus
    initial_plan: ExecutionPath
    replans: tuple[Replan, ...] = ()
    create_time: int = 0
    update_time: int = 0
    version: int = 1

    @property
    def etag(self) -> str:
        return hashlib.sha1(f"{self.id}/{self.version}".encode()).hexdigest()[:16]

    @property
    def current_node(self) -> str:
        if self.current_path_index < len(self.planned_execution_path):
            return self.planned_execution_path[self.current_path_index]
        return ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = int(self.status)
        d["initial_plan"] = self.initial_plan.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FlowRun:
        return cls(
            id=d["id"],
            flow_id=d["flow_id"],
            flow_version=d["flow_version"],
            user_message=d["user_message"],
            state=d["state"],
            planned_execution_path=tuple(d["planned_execution_path"]),
            current_path_index=d["current_path_index"],
            completed_nodes=tuple(d["completed_nodes"]),
            status=RunStatus(d["status"]),
            initial_plan=ExecutionPath.from_dict(d["initial_plan"]),
            replans=tuple(
                Replan(
                    r["at_index"],
                    r["from_node"],
                    r["reason"],
                    tuple(r["previous_remaining"]),
                    tuple(r["new_remaining"]),
                    r["planner"],
                )
                for r in d.get("replans", ())
            ),
            create_time=d["create_time"],
            update_time=d["update_time"],
            version=d["version"],
        )
