"""Choosing a path: the planner routing picks (a model, or the embedded planner), one
repair of an invalid model answer, then the embedded planner, then the full path."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from plansmith_server.errors import FailedPreconditionError, PreconditionViolation
from plansmith_server.flows.embedded import (
    CompletedRun,
    NoPathError,
    describe,
    plan_embedded,
    relevance,
    search,
)
from plansmith_server.flows.graph import Graph
from plansmith_server.flows.model import Attempt, ExecutionPath

T = TypeVar("T")

FULL = "full"
OFF_LOOP_NODES = 100
"""Flows with more nodes are planned (and registered) in a worker thread: a 1,000-node
search takes tens of milliseconds, which the event loop spends serving other calls."""


async def off_loop(nodes: int, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)`, in a worker thread when the flow has more than OFF_LOOP_NODES nodes."""
    if nodes > OFF_LOOP_NODES:
        return await asyncio.to_thread(fn, *args)
    return fn(*args)


@dataclass(frozen=True)
class ModelAnswer:
    """What the model backends routing chose answered: a valid path, or None when none
    gave one; and every try (with the paths they proposed)."""

    nodes: tuple[str, ...] | None
    attempts: tuple[Attempt, ...]


class PathModel(Protocol):
    """Model backends that propose paths (backends/flow_paths.py), chosen by routing."""

    async def propose(self, g: Graph, message: str, state: dict[str, Any]) -> ModelAnswer | None:
        """The routed backends' answer, each invalid answer re-asked once with its
        violations; None when routing sends the request to the embedded planner."""
        ...


def no_path(detail: str, attempts: Sequence[Attempt] = ()) -> FailedPreconditionError:
    return FailedPreconditionError(
        f"no valid path: {detail}",
        reason="NO_VALID_PATH",
        violations=[
            PreconditionViolation("NO_VALID_PATH", a.planner, a.detail or a.outcome)
            for a in attempts
        ]
        or [PreconditionViolation("NO_VALID_PATH", "flow", detail)],
    )


def full_path(g: Graph, message: str, state: dict[str, Any]) -> ExecutionPath:
    """The valid path through the most nodes reachable under the state."""
    nodes = search(g, state, [1.0] * len(g.names), g.entry, set(state) | set(g.initial_keys))
    return describe(g, [g.names[i] for i in nodes], state, relevance(g, message, state), FULL, 0.0)


async def plan(
    g: Graph,
    message: str,
    state: dict[str, Any],
    *,
    history: Sequence[CompletedRun] = (),
    fallback_enabled: bool = True,
    model: PathModel | None = None,
) -> ExecutionPath:
    """A valid path for the request (see the module's docstring); raises
    FailedPreconditionError NO_VALID_PATH when no planner allowed finds one."""
    attempts: list[Attempt] = []
    fallback_reason = ""
    answer = await model.propose(g, message, state) if model is not None else None
    if answer is not None:
        attempts.extend(answer.attempts)
        if answer.nodes is not None:
            planner = next(
                (a.planner for a in answer.attempts if a.outcome in ("accepted", "repaired")), "llm"
            )
            rel = relevance(g, message, state)
            confidence = _confidence_of(g, answer.nodes, message, state)
            path = describe(g, answer.nodes, state, rel, planner, confidence)
            return replace(path, attempts=tuple(attempts))
        last = answer.attempts[-1] if answer.attempts else None
        fallback_reason = (
            f"{last.planner} gave no valid path ({last.outcome}: {last.detail})"
            if last
            else "no model backend answered"
        )
        if not fallback_enabled:
            raise no_path(fallback_reason, attempts)
    try:
        path = await off_loop(len(g.names), plan_embedded, g, message, state, history)
        attempts.append(Attempt(path.planner, "accepted", "", path.nodes))
        return replace(path, attempts=tuple(attempts), fallback_reason=fallback_reason)
    except NoPathError as exc:
        attempts.append(Attempt("embedded", "failed", str(exc)))
        fallback_reason = fallback_reason or f"embedded failed: {exc}"
    if not fallback_enabled:
        raise no_path(fallback_reason, attempts)
    try:
        path = await off_loop(len(g.names), full_path, g, message, state)
    except NoPathError as exc:
        attempts.append(Attempt(FULL, "failed", str(exc)))
        raise no_path(str(exc), attempts) from None
    attempts.append(Attempt(FULL, "accepted", "", path.nodes))
    return replace(path, attempts=tuple(attempts), fallback_reason=fallback_reason)


def _confidence_of(
    g: Graph,
    nodes: Sequence[str],
    message: str,
    state: dict[str, Any],
) -> float:
    """The embedded planner's confidence figure for a path it did not choose: the share
    of the request's word evidence on the path."""
    rel = relevance(g, message, state)
    if rel.total_needed <= 0:
        return 0.0
    covered = sum(rel.scores[g.index[n]] for n in set(nodes) if g.index[n] in rel.needed)
    return round(min(1.0, covered / rel.total_needed), 4)
