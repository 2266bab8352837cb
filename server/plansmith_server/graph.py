"""Cycles and order in dependency graphs: the one place the service looks for them.

Every package uses it (the domain checks writes through the subtask hierarchy in
`domain/graph.py`, scheduling orders activities, planning checks generated plans and the
method library), so it sits beside `errors.py`, below all of them, and imports nothing
of the service but the error tree.

A cycle is written one way everywhere: `[a, b, ..., a]`, each node waiting for (depending
on, ordered after) the next, the first repeated last; `write_cycle` joins it as
`a -> b -> a`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import TypeVar

from plansmith_server.errors import DependencyCycleError

N = TypeVar("N", bound=Hashable)

ARROW = " -> "


def write_cycle(cycle: Sequence[object]) -> str:
    """`a -> b -> a`: a cycle as `find_cycle` returns it (each waits for the next)."""
    return ARROW.join(str(x) for x in cycle)


def find_cycle(roots: Iterable[N], waits_for: Callable[[N], Iterable[N]]) -> list[N] | None:
    """A cycle reachable from `roots`, or None.

    Args:
        roots: Where to start looking (every node of the graph to search it all).
        waits_for: A node's successors: the nodes it depends on.

    Returns:
        `[a, b, ..., a]`, each node waiting for the next. Deterministic when `roots` and
        `waits_for` are. Iterative: deep graphs do not hit the recursion limit.
    """
    state: dict[N, int] = {}  # 1: on the path, 2: done
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        path: list[N] = [root]
        stack: list[Iterator[N]] = [iter(waits_for(root))]
        while stack:
            for nxt in stack[-1]:  # resumes where this node's successors were left
                seen = state.get(nxt, 0)
                if seen == 1:
                    return [*path[path.index(nxt) :], nxt]
                if seen == 0:
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append(iter(waits_for(nxt)))
                    break
            else:
                state[path.pop()] = 2
                stack.pop()
    return None


def topological_order(
    preds: Sequence[Sequence[int]], ids: Sequence[str] | None = None, field: str = "dependencies"
) -> list[int]:
    """Kahn's algorithm over nodes `0..n-1`, `preds[v]` listing what `v` depends on;
    stable (lower indices first among ready nodes).

    Args:
        preds: What each node depends on.
        ids: Names used in the error when a cycle is found (defaults to the indices).
        field: The request field the error blames.

    Returns:
        All nodes, each after all its predecessors.

    Raises:
        DependencyCycleError: The graph has a cycle; the error names it.
    """
    n = len(preds)
    indeg = [len(p) for p in preds]
    succs: list[list[int]] = [[] for _ in range(n)]
    for v, ps in enumerate(preds):
        for p in ps:
            succs[p].append(v)
    queue = deque(v for v in range(n) if indeg[v] == 0)
    order: list[int] = []
    while queue:
        v = queue.popleft()
        order.append(v)
        for s in succs[v]:
            indeg[s] -= 1
            if indeg[s] == 0:
                queue.append(s)
    if len(order) < n:
        cycle = find_cycle((v for v in range(n) if indeg[v] > 0), preds.__getitem__)
        assert cycle is not None  # every node left over waits for another one left over
        raise DependencyCycleError(field, [ids[v] if ids is not None else str(v) for v in cycle])
    return order
