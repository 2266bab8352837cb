"""Cycles and order in dependency graphs: the one place the service looks for them.

Every package uses it (the domain checks writes, scheduling orders activities, planning
checks generated plans and the method library), so it sits beside `errors.py`, below all
of them, and imports nothing of the service but the error tree.

A cycle is written one way everywhere: `[a, b, ..., a]`, each node waiting for (depending
on, ordered after) the next, the first repeated last; `write_cycle` joins it as
`a -> b -> a`.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
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


# ---- cycles through dependencies and the subtask hierarchy --------------------------

DEPENDS_ON = "depends on"
SUBTASK_OF = "is a subtask of"
CONTAINS = "contains subtask"


@dataclass(frozen=True)
class ScheduleCycle:
    """A cycle of "cannot happen before", through dependencies and the subtask hierarchy.

    `tasks` is `[a, b, ..., a]`; `relations[i]` says how `tasks[i]` waits for
    `tasks[i + 1]`: it depends on it, is its subtask (starts within it), or contains it
    as a subtask (finishes with it)."""

    tasks: tuple[str, ...]
    relations: tuple[str, ...]

    @property
    def through_hierarchy(self) -> bool:
        return any(r != DEPENDS_ON for r in self.relations)

    def explain(self, limit: int = 8) -> str:
        """`a depends on b; b contains subtask a`: the first `limit` steps."""
        steps = [
            f"{a} {rel} {b}"
            for a, rel, b in zip(self.tasks, self.relations, self.tasks[1:], strict=False)
        ]
        more = len(steps) - limit
        return "; ".join(steps[:limit]) + (f"; and {more} more" if more > 0 else "")


def parent_loops(parents: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """The tasks whose chain of parents loops (data written before parents were checked),
    each with the loop above it as `(a, b, ..., a)`, each a subtask of the next. One
    pass: every task's chain is walked once."""
    found: dict[str, tuple[str, ...] | None] = {}
    for start in parents:
        chain: list[str] = []
        on_chain: dict[str, int] = {}
        node = start
        while node in parents and node not in found and node not in on_chain:
            on_chain[node] = len(chain)
            chain.append(node)
            node = parents[node]
        if node in on_chain:  # the chain came back to itself
            loop = chain[on_chain[node] :]
            result: tuple[str, ...] | None = (*loop, loop[0])
        else:
            result = found.get(node)
        for x in chain:
            found[x] = result
    return {t: loop for t, loop in found.items() if loop is not None}


_START, _FINISH = 0, 1
_RELATION = {  # (kind of an event, kind of the event it waits for) -> relation of tasks
    (_START, _FINISH): DEPENDS_ON,
    (_START, _START): SUBTASK_OF,
    (_FINISH, _FINISH): CONTAINS,
    (_FINISH, _START): "",  # a task finishes after it starts: no relation between tasks
}


def find_schedule_cycle(
    dependencies: Mapping[str, Sequence[str]],
    parents: Mapping[str, str],
    starts: Iterable[str] | None = None,
) -> ScheduleCycle | None:
    """A cycle that makes the tasks impossible to schedule, or None.

    A summary task spans its subtasks: it starts no later than each of them and finishes
    no earlier. So besides plain dependency cycles, a subtask that depends on its parent
    (or any ancestor), a subtask depending on a task that depends on its parent, or two
    summaries whose subtasks depend on each other's parent, all loop. Each task is two
    events, start and finish; "x waits for y" edges:

    - start(t) waits for finish(d) for each dependency d of t;
    - finish(t) waits for start(t);
    - start(c) waits for start(parent of c);
    - finish(p) waits for finish(c) for each subtask c of p.

    `dependencies`: task -> its dependencies; `parents`: task -> its parent (tasks
    without one left out). Only events reachable from the tasks in `starts` are explored
    (all when None): a write checks just the part of the plan it can affect.
    """
    # A loop of parents says nothing about order: its links are left out, not reported
    # as a dependency cycle (see `parent_loops`).
    looping = {x for loop in parent_loops(parents).values() for x in loop}
    parents = {c: p for c, p in parents.items() if c not in looping}
    children: dict[str, list[str]] = {}
    for c, p in parents.items():
        children.setdefault(p, []).append(c)
    no_deps: Sequence[str] = ()

    def waits_for(event: tuple[str, int]) -> list[tuple[str, int]]:
        task, kind = event
        if kind == _START:
            out = [(d, _FINISH) for d in dependencies.get(task, no_deps)]
            if task in parents:
                out.append((parents[task], _START))
            return out
        return [(task, _START), *((c, _FINISH) for c in children.get(task, ()))]

    roots = list(starts) if starts is not None else [*dependencies, *parents, *children]
    events = find_cycle(((r, k) for r in roots for k in (_START, _FINISH)), waits_for)
    return None if events is None else _task_cycle(events)


def _task_cycle(events: list[tuple[str, int]]) -> ScheduleCycle:
    """A cycle of events (`[e, ..., e]`) as tasks, starting with a dependency (there is
    one in every cycle of a parent forest)."""
    steps = [
        (a[0], _RELATION[a[1], b[1]])
        for a, b in itertools.pairwise(events)
        if _RELATION[a[1], b[1]]
    ]
    first = next((i for i, (_, r) in enumerate(steps) if r == DEPENDS_ON), 0)
    steps = steps[first:] + steps[:first]
    tasks = [t for t, _ in steps]
    return ScheduleCycle((*tasks, tasks[0]), tuple(r for _, r in steps))
