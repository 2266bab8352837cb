"""Choosing a path: the planner routing picks (a model, or the embedded planner), one
repair of an invalid model answer, then the embedded planner, then the full path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

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
from plansmith_server.flows.paths import check_path

FULL = "full"


@dataclass(frozen=True)
class Proposal:
    """A model's answer: the node names in order."""

    nodes: tuple[str, ...]


class ProposalError(Exception):
    """The model could not be asked or did not answer a path (why, in words)."""


class PathModel(Protocol):
    """A model that proposes paths (backends/flow_paths.py), chosen by routing."""

    def route(self, message: str, state: dict[str, Any]) -> str | None:
        """The backend routing sends this request to, or None for the embedded planner."""
        ...

    async def propose(
        self, backend: str, g: Graph, message: str, state: dict[str, Any], violations: str
    ) -> Proposal:
        """The backend's path; `violations` (non-empty on the repair re-ask) says what was
        wrong with its previous answer. Raises ProposalError."""
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
    backend = model.route(message, state) if model is not None else None
    if model is not None and backend is not None:
        name = f"llm:{backend}"
        feedback = ""
        for outcome in ("accepted", "repaired"):
            try:
                proposal = await model.propose(backend, g, message, state, feedback)
            except ProposalError as exc:
                attempts.append(Attempt(name, "failed", str(exc)))
                fallback_reason = f"{name} failed: {exc}"
                break
            check = check_path(g, proposal.nodes, state)
            if check.valid:
                attempts.append(Attempt(name, outcome, "", proposal.nodes))
                rel = relevance(g, message, state)
                embedded_view = _confidence_of(g, proposal.nodes, message, state, history)
                path = describe(g, proposal.nodes, state, rel, name, embedded_view)
                return replace(path, attempts=tuple(attempts))
            feedback = check.summary(limit=20)
            attempts.append(Attempt(name, "invalid", feedback, proposal.nodes))
            fallback_reason = f"{name} answered an invalid path twice: {feedback}"
        if not fallback_enabled:
            raise no_path(fallback_reason, attempts)
    try:
        path = plan_embedded(g, message, state, history)
        attempts.append(Attempt(path.planner, "accepted", "", path.nodes))
        return replace(path, attempts=tuple(attempts), fallback_reason=fallback_reason)
    except NoPathError as exc:
        attempts.append(Attempt("embedded", "failed", str(exc)))
        fallback_reason = fallback_reason or f"embedded failed: {exc}"
    if not fallback_enabled:
        raise no_path(fallback_reason, attempts)
    try:
        path = full_path(g, message, state)
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
    history: Sequence[CompletedRun],
) -> float:
    """The embedded planner's confidence figure for a path it did not choose: the share
    of the request's word evidence on the path."""
    rel = relevance(g, message, state)
    if rel.total_needed <= 0:
        return 0.0
    covered = sum(rel.scores[g.index[n]] for n in set(nodes) if g.index[n] in rel.needed)
    return round(min(1.0, covered / rel.total_needed), 4)
