"""Dependency-graph checks: cycles, with the cycle itself named in the error."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def find_cycle(
    edges: Mapping[str, Sequence[str]], starts: Iterable[str] | None = None
) -> list[str] | None:
    """Returns a cycle as `[a, b, ..., a]` in `edges` (task -> its dependencies), or None.

    Only nodes reachable from `starts` are explored (all nodes when None), so a write that
    changes a few tasks checks just the part of the graph it can affect. Iterative: deep
    chains do not hit the recursion limit.
    """
    WHITE, GREY, BLACK = 0, 1, 2
    color: dict[str, int] = {}
    roots = list(starts) if starts is not None else list(edges)
    for root in roots:
        if color.get(root, WHITE) != WHITE:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        color[root] = GREY
        while stack:
            node, i = stack[-1]
            deps = edges.get(node, ())
            if i < len(deps):
                stack[-1] = (node, i + 1)
                nxt = deps[i]
                state = color.get(nxt, WHITE)
                if state == GREY:
                    return [*path[path.index(nxt) :], nxt]
                if state == WHITE:
                    color[nxt] = GREY
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                color[node] = BLACK
                stack.pop()
                path.pop()
    return None
