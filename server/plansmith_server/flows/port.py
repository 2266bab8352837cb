"""What the flows domain needs from storage (`storage/flows_sqlite.py` implements it on
the server's database); writes run inside the transactions of the one write path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from plansmith_server.flows.model import Flow, FlowRun, RunStatus

T = TypeVar("T")


@dataclass(frozen=True)
class RunQuery:
    flow_id: str = ""
    status: RunStatus = RunStatus.UNSPECIFIED
    after_seq: int = 0
    limit: int = 50


class FlowTx(Protocol):
    """One transaction: reads see one snapshot; in a write, everything commits together."""

    def get_flow(self, flow_id: str, version: int = 0) -> Flow | None:
        """The flow at `version` (0: the latest), or None."""
        ...

    def flow_stamp(self, flow_id: str, version: int = 0) -> tuple[int, int] | None:
        """(version, update time) of the flow at `version` (0: the latest), without
        reading its definition; None when there is none."""
        ...

    def list_flows(self, after_seq: int, limit: int) -> tuple[list[tuple[int, Flow]], int]:
        """Up to `limit` (seq, latest flow) pairs after `after_seq`, and the total."""
        ...

    def insert_flow(self, flow: Flow) -> None: ...

    def add_version(self, flow: Flow) -> None:
        """Stores a new version of an existing flow and makes it the latest."""
        ...

    def delete_flow(self, flow_id: str) -> tuple[int, int]:
        """Deletes the flow, its versions and its runs: (versions, runs) deleted."""
        ...

    def count_runs(self, flow_id: str, status: RunStatus) -> int: ...

    def get_run(self, run_id: str) -> FlowRun | None: ...

    def insert_run(self, run: FlowRun) -> None: ...

    def update_run(self, run: FlowRun, completed_path: tuple[str, ...] = ()) -> None:
        """Stores `run` over its row; `completed_path` (the path it completed, retry
        loops collapsed) is kept for learning once it is COMPLETED."""
        ...

    def list_runs(self, q: RunQuery) -> tuple[list[tuple[int, FlowRun]], int]: ...

    def completed_paths(self, flow_id: str, limit: int) -> list[tuple[str, tuple[str, ...]]]:
        """(message, completed path) of the flow's newest completed runs."""
        ...

    def trim_completed(self, flow_id: str, keep: int) -> int:
        """Deletes the flow's completed runs but the newest `keep`; returns how many."""
        ...


class FlowStore(Protocol):
    async def read(self, fn: Callable[[FlowTx], T], *, bulk: bool = False) -> T:
        """Runs `fn` on one snapshot; `bulk` when it reads many rows (off the event loop)."""
        ...

    def within(self, write_tx: Any) -> FlowTx:
        """The flows' statements inside a write transaction of the server's store: flow
        writes go through the one write path (`domain.mutations.MutationRunner`: request
        ids, group commit) and commit with it."""
        ...
