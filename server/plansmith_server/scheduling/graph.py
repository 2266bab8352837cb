"""Small pure-Python graph helpers: topological order and cycle extraction.

Nodes are integers ``0..n-1``; ``preds[v]`` lists the nodes ``v`` depends on. The numpy
version for very large graphs lives in :mod:`.cpm`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from .errors import DependencyCycleError


def find_cycle(preds: Sequence[Sequence[int]], candidates: Sequence[int]) -> list[int]:
    """Returns one cycle among ``candidates`` (nodes Kahn's algorithm could not order).

    Every such node has an unordered predecessor, so walking predecessors inside the
    candidate set must revisit a node; the revisited stretch is a cycle.

    Args:
        preds: Predecessor lists.
        candidates: Nodes left with a positive in-degree.

    Returns:
        Node indices in dependency order (each depends on the previous one, the first on
        the last).
    """
    left = set(candidates)
    node = candidates[0]
    seen: dict[int, int] = {}
    walk: list[int] = []
    while node not in seen:
        seen[node] = len(walk)
        walk.append(node)
        node = next(p for p in preds[node] if p in left)
    cycle = walk[seen[node] :]
    # The walk went backwards along dependencies; reverse it to read forwards.
    cycle.reverse()
    return cycle


def topological_order(
    preds: Sequence[Sequence[int]], ids: Sequence[str] | None = None
) -> list[int]:
    """Kahn's algorithm; stable (lower indices first among ready nodes).

    Args:
        preds: ``preds[v]`` lists the nodes ``v`` depends on.
        ids: Names used in the error when a cycle is found (defaults to the indices).

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
        cycle = find_cycle(preds, [v for v in range(n) if indeg[v] > 0])
        names = [ids[v] if ids is not None else str(v) for v in cycle]
        raise DependencyCycleError(names)
    return order
