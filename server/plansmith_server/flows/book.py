"""The flows domain service: the rules of every FlowService call, over a `FlowStore`.

Each mutation is one write transaction that checks, writes and records its request_id,
so a failed request changes nothing and a retried one returns its first result.
Planning (which may ask a model) happens before the transaction; the transaction then
checks that nothing it relied on changed meanwhile.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from plansmith_server.domain import validation as val
from plansmith_server.domain.codec import FunctionCodec
from plansmith_server.domain.models import ListFilter, Page
from plansmith_server.domain.mutations import (
    NO_MUTATION,
    Applied,
    Mutation,
    MutationRunner,
    Writing,
    now_us,
)
from plansmith_server.domain.paging import decode_page_token, page_of
from plansmith_server.errors import (
    AlreadyExistsError,
    EtagMismatchError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    PreconditionViolation,
)
from plansmith_server.flows import planning
from plansmith_server.flows.embedded import (
    CompletedRun,
    NoPathError,
    relevance,
    search,
    words,
)
from plansmith_server.flows.graph import Graph, validate
from plansmith_server.flows.model import (
    ExecutionPath,
    Flow,
    FlowRun,
    Replan,
    RunStatus,
)
from plansmith_server.flows.paths import check_path
from plansmith_server.flows.port import FlowStore, FlowTx, RunQuery
from plansmith_server.lru import LruCache

T = TypeVar("T")

MAX_MESSAGE = 10_000
"""Characters of a request's message."""
MAX_STATE_BYTES = 256 * 1024
"""A run's state, as JSON."""
DEFAULT_RETAINED_RUNS = 1_000
"""Completed runs kept per flow (the planner learns from them)."""


@dataclass(frozen=True)
class FlowDeletion:
    flow_id: str
    versions: int
    runs: int


@dataclass(frozen=True)
class Advance:
    run: FlowRun
    next_node: str
    replanned: bool


class FlowBook:
    def __init__(
        self,
        store: FlowStore,
        runner: MutationRunner,
        *,
        model: planning.PathModel | None = None,
        retained_runs: int = DEFAULT_RETAINED_RUNS,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.store = store
        self.runner = runner
        self.model = model
        self.retained_runs = retained_runs
        self.clock = clock
        # Compiled graphs by (flow id, version, update time): a version never changes.
        self._graphs: LruCache[tuple[str, int, int], Graph] = LruCache(256)

    # ---- idempotency ---------------------------------------------------------------

    async def _mutate(
        self,
        method: str,
        m: Mutation,
        body: Callable[[FlowTx], T],
        encode: Callable[[T], dict[str, Any]],
        decode: Callable[[dict[str, Any]], T],
    ) -> T:
        """`body` through the one write path (request ids, group commit); off the event
        loop, since a run's JSON may be large."""

        def applied(w: Writing) -> Applied[T]:
            return Applied(body(self.store.within(w.tx)))

        codec = FunctionCodec(encode, lambda d: decode(dict(d)))
        return await self.runner.run(method, m, applied, codec, bulk=True)

    async def _replay(
        self, method: str, m: Mutation, decode: Callable[[dict[str, Any]], T]
    ) -> T | None:
        return await self.runner.replay(
            method, m, FunctionCodec(lambda _: {}, lambda d: decode(dict(d)))
        )

    # ---- flows -----------------------------------------------------------------------

    async def create_flow(self, draft: Flow, flow_id: str = "", m: Mutation = NO_MUTATION) -> Flow:
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        if flow_id:
            val.check_chosen_id(v, "flow_id", flow_id)
        v.extend(await planning.off_loop(len(draft.nodes), validate, draft))
        v.raise_if_any()
        ts = self.clock()
        flow = replace(
            draft,
            id=flow_id or f"flw_{uuid.uuid4().hex[:20]}",
            version=1,
            create_time=ts,
            update_time=ts,
        )

        def body(tx: FlowTx) -> Flow:
            if tx.get_flow(flow.id) is not None:
                raise AlreadyExistsError("flow", flow.id)
            tx.insert_flow(flow)
            return flow

        return await self._mutate("CreateFlow", m, body, Flow.to_dict, Flow.from_dict)

    async def get_flow(self, flow_id: str, version: int = 0) -> Flow:
        v = val.Violations()
        val.check_id(v, "flow_id", flow_id)
        if version < 0:
            v.add("version", "must not be negative (0 means the latest)")
        v.raise_if_any()
        return await self.store.read(lambda tx: _require_flow(tx, flow_id, version))

    async def list_flows(self, page_size: int = 0, page_token: str = "") -> Page:
        v = val.Violations()
        size = val.page_size(v, page_size)
        v.raise_if_any()
        filt = ListFilter((("kind", "flows"),))
        after = decode_page_token(page_token, filt)
        rows, total = await self.store.read(lambda tx: tx.list_flows(after, size + 1))
        return page_of(rows, size, total, filt)

    async def update_flow(self, changes: Flow, etag: str = "", m: Mutation = NO_MUTATION) -> Flow:
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "flow.id", changes.id)
        v.extend(await planning.off_loop(len(changes.nodes), validate, changes))
        v.raise_if_any()

        def body(tx: FlowTx) -> Flow:
            current = _require_flow(tx, changes.id)
            if etag and etag != current.etag:
                raise EtagMismatchError("flow", current.id, current.etag)
            updated = replace(
                changes,
                id=current.id,
                version=current.version + 1,
                create_time=current.create_time,
                update_time=max(self.clock(), current.update_time + 1),
            )
            tx.add_version(updated)
            return updated

        return await self._mutate("UpdateFlow", m, body, Flow.to_dict, Flow.from_dict)

    async def delete_flow(
        self, flow_id: str, etag: str = "", force: bool = False, m: Mutation = NO_MUTATION
    ) -> FlowDeletion:
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "flow_id", flow_id)
        v.raise_if_any()

        def body(tx: FlowTx) -> FlowDeletion:
            current = _require_flow(tx, flow_id)
            if etag and etag != current.etag:
                raise EtagMismatchError("flow", flow_id, current.etag)
            running = tx.count_runs(flow_id, RunStatus.RUNNING)
            if running and not force:
                raise FailedPreconditionError(
                    f"flow {flow_id!r} has {running} run(s) in progress; let them complete or "
                    "delete with force=true, which deletes them too",
                    reason="FLOW_HAS_RUNS_IN_PROGRESS",
                    violations=[
                        PreconditionViolation(
                            "FLOW_HAS_RUNS_IN_PROGRESS",
                            f"flows/{flow_id}",
                            f"{running} run(s) in progress",
                        )
                    ],
                    metadata={"flow_id": flow_id, "runs_in_progress": str(running)},
                )
            versions, runs = tx.delete_flow(flow_id)
            return FlowDeletion(flow_id, versions, runs)

        return await self._mutate(
            "DeleteFlow",
            m,
            body,
            lambda r: {"flow_id": r.flow_id, "versions": r.versions, "runs": r.runs},
            lambda d: FlowDeletion(d["flow_id"], d["versions"], d["runs"]),
        )

    # ---- planning --------------------------------------------------------------------

    async def _graph(self, flow_id: str, version: int) -> Graph:
        """The compiled flow; cached by (id, version, update time), so a flow deleted and
        created again under its id is never answered from the cache."""
        stamp = await self.store.read(lambda tx: tx.flow_stamp(flow_id, version))
        if stamp is not None:
            cached = self._graphs.get((flow_id, *stamp))
            if cached is not None:
                return cached
        flow = await self.store.read(lambda tx: _require_flow(tx, flow_id, version))
        g = Graph(flow)
        self._graphs.put((flow.id, flow.version, flow.update_time), g)
        return g

    async def _history(self, flow_id: str) -> list[CompletedRun]:
        rows = await self.store.read(
            lambda tx: tx.completed_paths(flow_id, self.retained_runs), bulk=True
        )
        return [CompletedRun(frozenset(words(msg)), path) for msg, path in rows]

    def _check_request(
        self, v: val.Violations, flow_id: str, version: int, message: str, state: dict[str, Any]
    ) -> None:
        val.check_id(v, "flow_id", flow_id)
        if version < 0:
            v.add("version", "must not be negative (0 means the latest)")
        if len(message) > MAX_MESSAGE:
            v.add("user_message", f"is {len(message)} characters long; at most {MAX_MESSAGE}")
        if len(json.dumps(state)) > MAX_STATE_BYTES:
            v.add("state", f"is larger than {MAX_STATE_BYTES} bytes as JSON")

    async def plan_path(
        self,
        flow_id: str,
        version: int,
        message: str,
        state: dict[str, Any],
        fallback_enabled: bool = True,
    ) -> ExecutionPath:
        v = val.Violations()
        self._check_request(v, flow_id, version, message, state)
        v.raise_if_any()
        g = await self._graph(flow_id, version)
        history = await self._history(flow_id)
        path = await planning.plan(
            g,
            message,
            state,
            history=history,
            fallback_enabled=fallback_enabled,
            model=self.model,
        )
        return replace(path, flow_version=g.flow.version)

    # ---- runs ------------------------------------------------------------------------

    async def start_run(
        self,
        flow_id: str,
        version: int,
        message: str,
        state: dict[str, Any],
        fallback_enabled: bool = True,
        m: Mutation = NO_MUTATION,
    ) -> FlowRun:
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        self._check_request(v, flow_id, version, message, state)
        v.raise_if_any()
        done = await self._replay("StartFlowRun", m, FlowRun.from_dict)
        if done is not None:
            return done
        path = await self.plan_path(flow_id, version, message, state, fallback_enabled)
        ts = self.clock()
        run = FlowRun(
            id=f"run_{uuid.uuid4().hex[:20]}",
            flow_id=flow_id,
            flow_version=path.flow_version,
            user_message=message,
            state=dict(state),
            planned_execution_path=path.nodes,
            current_path_index=0,
            completed_nodes=(),
            status=RunStatus.RUNNING,
            initial_plan=path,
            create_time=ts,
            update_time=ts,
        )

        def body(tx: FlowTx) -> FlowRun:
            # The flow may have been deleted while the path was planned.
            _require_flow(tx, flow_id, path.flow_version)
            tx.insert_run(run)
            return run

        return await self._mutate("StartFlowRun", m, body, FlowRun.to_dict, FlowRun.from_dict)

    async def get_run(self, run_id: str) -> FlowRun:
        v = val.Violations()
        val.check_id(v, "run_id", run_id)
        v.raise_if_any()
        return await self.store.read(lambda tx: _require_run(tx, run_id))

    async def list_runs(
        self, flow_id: str = "", status: int = 0, page_size: int = 0, page_token: str = ""
    ) -> Page:
        v = val.Violations()
        val.check_id(v, "flow_id", flow_id, required=False)
        if status:
            val.check_enum(v, "status", status, RunStatus)
        size = val.page_size(v, page_size)
        v.raise_if_any()
        filt = ListFilter((("kind", "flow_runs"), ("flow_id", flow_id), ("status", str(status))))
        after = decode_page_token(page_token, filt)
        q = RunQuery(flow_id, RunStatus(status), after, size + 1)
        rows, total = await self.store.read(lambda tx: tx.list_runs(q))
        return page_of(rows, size, total, filt)

    async def advance_run(
        self,
        run_id: str,
        node: str,
        outputs: dict[str, Any],
        state_patch: dict[str, Any],
        etag: str = "",
        m: Mutation = NO_MUTATION,
    ) -> Advance:
        v = val.Violations()
        val.check_request_id(v, m.request_id)
        val.check_id(v, "run_id", run_id)
        if not node:
            v.add("node", "is required: the node that completed")
        if len(json.dumps(outputs)) + len(json.dumps(state_patch)) > MAX_STATE_BYTES:
            v.add("outputs", f"outputs and state_patch are larger than {MAX_STATE_BYTES} bytes")
        v.raise_if_any()
        decode = _decode_advance
        done = await self._replay("AdvanceFlowRun", m, decode)
        if done is not None:
            return done
        run = await self.store.read(lambda tx: _require_run(tx, run_id))
        if etag and etag != run.etag:
            raise EtagMismatchError("flow_run", run_id, run.etag)
        g = await self._graph(run.flow_id, run.flow_version)
        result, completed_path = await planning.off_loop(
            len(g.names), self._step, g, run, node, outputs, state_patch
        )

        def body(tx: FlowTx) -> Advance:
            current = _require_run(tx, run_id)
            if current.version != run.version:
                raise EtagMismatchError("flow_run", run_id, current.etag)
            tx.update_run(result.run, completed_path)
            if result.run.status == RunStatus.COMPLETED:
                tx.trim_completed(run.flow_id, self.retained_runs)
            return result

        return await self._mutate("AdvanceFlowRun", m, body, _encode_advance, decode)

    def _step(
        self,
        g: Graph,
        run: FlowRun,
        node: str,
        outputs: dict[str, Any],
        state_patch: dict[str, Any],
    ) -> tuple[Advance, tuple[str, ...]]:
        if run.status == RunStatus.COMPLETED:
            raise FailedPreconditionError(
                f"run {run.id!r} has completed",
                reason="FLOW_RUN_COMPLETED",
                violations=[
                    PreconditionViolation("FLOW_RUN_COMPLETED", f"runs/{run.id}", "completed")
                ],
            )
        if node != run.current_node:
            raise FailedPreconditionError(
                f"the run is at node {run.current_node!r}, not {node[:64]!r}",
                reason="NOT_CURRENT_NODE",
                violations=[
                    PreconditionViolation(
                        "NOT_CURRENT_NODE", f"runs/{run.id}", f"current node: {run.current_node}"
                    )
                ],
                metadata={"current_node": run.current_node},
            )
        declared = set(g.outputs[g.index[node]])
        undeclared = sorted(k for k in outputs if k not in declared)
        if undeclared:
            raise InvalidArgumentError(
                [
                    FieldViolation(
                        f"outputs[{k[:64]!r}]",
                        f"node {node!r} declares no output {k[:64]!r} "
                        f"(its outputs: {', '.join(sorted(declared)) or 'none'})",
                    )
                    for k in undeclared
                ]
            )
        state = {**run.state, **outputs}
        for k, value in state_patch.items():
            if value is None:
                state.pop(k, None)
            else:
                state[k] = value
        completed = (*run.completed_nodes, node)
        index = run.current_path_index + 1
        path = run.planned_execution_path
        ts = max(self.clock(), run.update_time + 1)
        if index >= len(path):
            finished = replace(
                run,
                state=state,
                completed_nodes=completed,
                current_path_index=len(path),
                status=RunStatus.COMPLETED,
                update_time=ts,
                version=run.version + 1,
            )
            return Advance(finished, "", False), _collapse(completed)
        rest = path[index - 1 :]  # from the node just completed
        stale = frozenset(k for n in rest[1:] for k in g.outputs[g.index[n]])
        check = check_path(g, rest, state, from_entry=False, stale=stale)
        replans = run.replans
        replanned = False
        if not check.valid:
            new_rest, planner = self._replan(g, run, node, state)
            replans = (
                *replans,
                Replan(
                    at_index=index - 1,
                    from_node=node,
                    reason=check.summary(),
                    previous_remaining=tuple(rest[1:]),
                    new_remaining=new_rest,
                    planner=planner,
                ),
            )
            path = (*path[:index], *new_rest)
            replanned = True
        advanced = replace(
            run,
            state=state,
            completed_nodes=completed,
            planned_execution_path=path,
            current_path_index=index,
            replans=replans,
            update_time=ts,
            version=run.version + 1,
        )
        return Advance(advanced, path[index], replanned), ()

    def _replan(
        self, g: Graph, run: FlowRun, node: str, state: dict[str, Any]
    ) -> tuple[tuple[str, ...], str]:
        """The rest of the path from `node` (just completed): onward along forward
        edges if a valid way exists, else back along a retry loop whose condition allows
        it. With the embedded planner's weights for the run's message."""
        rel = relevance(g, run.user_message, state)
        weight = [rel.scores[i] if i in rel.needed else 0.0 for i in range(len(g.names))]
        start = g.index[node]
        have = set(state) | set(g.initial_keys)
        tried: list[str] = []
        try:
            found = search(g, state, weight, start, have, _stale_from(g, start, False))
            return tuple(g.names[i] for i in found[1:]), "embedded"
        except NoPathError as exc:
            tried.append(str(exc))
        for e in g.out[start]:
            if not e.retry:
                continue
            c = e.condition
            if c is not None and all(k in state for k in c.keys) and not c.holds(state):
                continue
            try:
                found = search(g, state, weight, e.dst, have, _stale_from(g, e.dst, True))
                return tuple(g.names[i] for i in found), "embedded"
            except NoPathError as exc:
                tried.append(str(exc))
        raise planning.no_path(
            f"the state rules out the rest of the path after {node!r} and every way on: "
            + "; ".join(tried)
        )


def _stale_from(g: Graph, start: int, including_start: bool) -> frozenset[str]:
    """Keys that the nodes reachable from `start` write (they will write them again)."""
    reach = g.reachable_from(start, g.forward)
    if not including_start:
        reach.discard(start)
    return frozenset(k for i in reach for k in g.outputs[i])


def _collapse(nodes: tuple[str, ...]) -> tuple[str, ...]:
    """A completed sequence without its retry loops: back to a node's first visit when
    it repeats."""
    out: list[str] = []
    for n in nodes:
        if n in out:
            del out[out.index(n) + 1 :]
        else:
            out.append(n)
    return tuple(out)


def _encode_advance(a: Advance) -> dict[str, Any]:
    return {"run": a.run.to_dict(), "next_node": a.next_node, "replanned": a.replanned}


def _decode_advance(d: dict[str, Any]) -> Advance:
    return Advance(FlowRun.from_dict(d["run"]), d["next_node"], d["replanned"])


def _require_flow(tx: FlowTx, flow_id: str, version: int = 0) -> Flow:
    flow = tx.get_flow(flow_id, version)
    if flow is None:
        if version and tx.get_flow(flow_id) is not None:
            raise NotFoundError("flow_version", f"{flow_id}@{version}")
        raise NotFoundError("flow", flow_id)
    return flow


def _require_run(tx: FlowTx, run_id: str) -> FlowRun:
    run = tx.get_run(run_id)
    if run is None:
        raise NotFoundError("flow_run", run_id)
    return run
