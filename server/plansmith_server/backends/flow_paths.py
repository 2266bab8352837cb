"""Flow paths from a model backend, through the routing rules of plan generation (method
`plan_path`; the rules see the request's message as its text and its state as its
context): structured output whose node names are an enum of the flow's nodes, an invalid
path re-asked once with its violations (the router's repair), and the attempts kept."""

from __future__ import annotations

import json
from typing import Any

from plansmith_server.backends.errors import BackendOutputError
from plansmith_server.backends.router import Outcome, Router
from plansmith_server.flows.graph import Graph
from plansmith_server.flows.model import Attempt
from plansmith_server.flows.paths import check_path
from plansmith_server.flows.planning import ModelAnswer

METHOD = "plan_path"
MAX_PROMPT_STATE = 4_000
"""Characters of the state's JSON shown to the model."""

INSTRUCTIONS = (
    "You plan which nodes of an agent workflow a request needs. The workflow is a graph: "
    "each node lists its possible next nodes and, for some of them, a condition on the "
    'run\'s state. Answer with JSON {"path": [node names in order]}: start at the entry '
    "node, follow only listed edges, end at a terminal node, include only the nodes the "
    "request needs, and never visit a node twice. A condition on state that an earlier "
    "node of the path produces may be assumed; one on state given now must hold."
)


def path_schema(g: Graph) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "path": {"type": "array", "items": {"type": "string", "enum": list(g.names)}},
        },
        "required": ["path"],
        "additionalProperties": False,
    }


def path_prompt(g: Graph, message: str, state: dict[str, Any]) -> str:
    f = g.flow
    nodes = [
        {
            "name": n.name,
            "description": n.description,
            "inputs": list(n.inputs),
            "outputs": list(n.outputs),
            "next": list(n.possible_next_nodes),
            **({"conditions": n.conditions} if n.conditions else {}),
        }
        for n in f.nodes
    ]
    shown_state = json.dumps(state, sort_keys=True)[:MAX_PROMPT_STATE]
    return (
        f"Workflow: {f.name}\nEntry node: {f.entry_node}\n"
        f"Terminal nodes: {', '.join(f.terminal_nodes)}\n"
        f"Initial state keys: {', '.join(f.initial_state_keys)}\n"
        f"Nodes: {json.dumps(nodes)}\n\nState now: {shown_state}\n\nRequest: {message}"
    )


def parse_path(content: str, g: Graph, state: dict[str, Any]) -> tuple[str, ...]:
    """The answer's path if it is valid; else BackendOutputError listing its violations
    (what the repair re-ask shows the model)."""
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        raise BackendOutputError("the answer is not JSON") from None
    path = data.get("path") if isinstance(data, dict) else None
    if not isinstance(path, list) or not all(isinstance(x, str) for x in path):
        raise BackendOutputError('the answer has no "path" list of node names')
    check = check_path(g, path, state)
    if not check.valid:
        problems = [
            f"{v.node or 'the path'} (position {v.index}): {v.description}"
            for v in check.violations[:20]
        ]
        raise BackendOutputError(f"the path is not valid: {check.summary(3)}", problems)
    return tuple(path)


_OUTCOMES = {
    Outcome.SUCCEEDED: "accepted",
    Outcome.INVALID_OUTPUT: "invalid",
    Outcome.RETRIED: "invalid",
}


class RouterPathModel:
    """`flows.planning.PathModel` over the server's router."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def propose(self, g: Graph, message: str, state: dict[str, Any]) -> ModelAnswer | None:
        proposals: list[tuple[str, ...]] = []

        def parse(content: str, backend: str) -> tuple[str, ...]:
            try:
                data = json.loads(content)
                raw = data.get("path") if isinstance(data, dict) else None
                if isinstance(raw, list):
                    proposals.append(tuple(str(x)[:64] for x in raw[:100]))
            except (ValueError, RecursionError):
                proposals.append(())
            return parse_path(content, g, state)

        routed = await self.router.ask_models(
            METHOD,
            message,
            state,
            INSTRUCTIONS,
            path_prompt(g, message, state),
            path_schema(g),
            "execution_path",
            parse,
        )
        if routed is None:
            return None
        attempts: list[Attempt] = []
        repaired = False
        for a in routed.attempts:
            outcome = _OUTCOMES.get(a.outcome, "failed")
            from_parse = a.outcome in (Outcome.SUCCEEDED, Outcome.INVALID_OUTPUT) or (
                a.outcome == Outcome.RETRIED and "asking again" in a.reason
            )
            if a.outcome == Outcome.SUCCEEDED and repaired:
                outcome = "repaired"
            if a.outcome == Outcome.RETRIED and "asking again" in a.reason:
                repaired = True
            path = proposals.pop(0) if from_parse and proposals else ()
            attempts.append(Attempt(f"llm:{a.backend}", outcome, a.reason, path))
        return ModelAnswer(routed.value, tuple(attempts))
