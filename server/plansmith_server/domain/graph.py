"""Dependency-graph checks of plan writes: cycles through dependencies and the subtask
hierarchy (a summary spans its subtasks), with the cycle itself named in the error. The
search is `plansmith_server.graph.find_cycle`, the service's one."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from plansmith_server.graph import find_cycle

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
