"""Whether a path is valid for a flow and a state, and the assumptions it makes.

A path is valid when it starts at the entry node and ends at a terminal node; each hop
is an edge; a node repeats only when a retry-loop edge leads back to it; each edge's
condition holds on the state known now, or reads state that the run's initial state
keys or an earlier node of the path provide (then it is an assumption of the path); and
each node's inputs are in the state, among the initial state keys, or outputs of an
earlier node of the path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plansmith_server.flows.graph import Edge, Graph
from plansmith_server.flows.model import Assumption, PathCheck, PathViolation


def edge_verdict(
    edge: Edge,
    state: dict[str, Any],
    available: frozenset[str] | set[str],
    producers: dict[str, str],
    stale: frozenset[str] = frozenset(),
) -> tuple[str, tuple[str, ...]]:
    """('holds' | 'fails' | 'assumed' | 'unknown', the keys not known now) for taking
    `edge` with `state` known now and `available` keys provided by the path so far
    (`producers`: key -> the earlier node of the path producing it)."""
    c = edge.condition
    if c is None:
        return "holds", ()
    missing = tuple(sorted(k for k in c.keys if k not in state or k in stale))
    if not missing:
        return ("holds" if c.holds(state) else "fails"), ()
    if all(k in available for k in missing):
        return "assumed", tuple(f"{k} ({producers[k]})" if k in producers else k for k in missing)
    return "unknown", tuple(k for k in missing if k not in available)


def check_path(
    g: Graph,
    path: Sequence[str],
    state: dict[str, Any],
    *,
    from_entry: bool = True,
    stale: frozenset[str] = frozenset(),
) -> PathCheck:
    """The path's violations and assumptions. `from_entry=False` checks the rest of a
    run's path, which starts at the node just completed; `stale`: state keys that nodes
    of it will write again (conditions on them are assumed, not checked)."""
    violations: list[PathViolation] = []
    assumptions: list[Assumption] = []
    hops = conds = assumed = inputs = 0
    if not path:
        return PathCheck((PathViolation(-1, "", "the path is empty"),))
    unknown = [(i, n) for i, n in enumerate(path) if n not in g.index]
    for i, n in unknown:
        violations.append(PathViolation(i, n[:64], "not a node of the flow"))
    if unknown:
        return PathCheck(tuple(violations))
    idx = [g.index[n] for n in path]
    if from_entry and idx[0] != g.entry:
        violations.append(
            PathViolation(0, path[0], f"the path must start at the entry node {g.names[g.entry]!r}")
        )
    if idx[-1] not in g.terminals:
        violations.append(
            PathViolation(len(path) - 1, path[-1], "the path must end at a terminal node")
        )
    available: set[str] = set(g.initial_keys) | set(state)
    producers: dict[str, str] = {}
    visited: set[int] = set()
    for pos, i in enumerate(idx):
        name = path[pos]
        if pos > 0:
            prev = idx[pos - 1]
            edge = g.edge(prev, i)
            hops += 1
            if edge is None:
                violations.append(
                    PathViolation(pos, name, f"no edge from {path[pos - 1]!r} to {name!r}")
                )
            else:
                if edge.retry:
                    visited.clear()  # a retry loop may run nodes again
                elif i in visited:
                    violations.append(
                        PathViolation(
                            pos, name, "visited twice, but the edge into it is not a retry loop"
                        )
                    )
                verdict, keys = edge_verdict(edge, state, available, producers, stale)
                text = edge.condition.text if edge.condition else ""
                if verdict == "holds" and edge.condition is not None:
                    conds += 1
                elif verdict == "fails":
                    conds += 1
                    violations.append(
                        PathViolation(
                            pos, name, f"the condition `{text}` does not hold on the state"
                        )
                    )
                elif verdict == "assumed":
                    assumed += 1
                    assumptions.append(Assumption(path[pos - 1], name, text, keys))
                elif verdict == "unknown":
                    violations.append(
                        PathViolation(
                            pos,
                            name,
                            f"the condition `{text}` reads {', '.join(keys)}, which neither the "
                            "state nor an earlier node of the path provides",
                        )
                    )
        for k in g.inputs[i]:
            inputs += 1
            if k not in available:
                violations.append(
                    PathViolation(
                        pos,
                        name,
                        f"input {k!r} is neither in the state nor an output of an earlier node",
                    )
                )
        visited.add(i)
        for k in g.outputs[i]:
            available.add(k)
            producers.setdefault(k, name)
    return PathCheck(tuple(violations), tuple(assumptions), hops, conds, assumed, inputs)
