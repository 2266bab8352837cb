"""Cycles through dependencies and the subtask hierarchy (`find_schedule_cycle`)."""

from __future__ import annotations

from plansmith_server.domain.graph import find_schedule_cycle


def named(deps, parents, starts=None) -> str | None:
    cycle = find_schedule_cycle(deps, parents, starts)
    return None if cycle is None else " -> ".join(cycle.tasks)


def test_plain_cycles_are_named_from_a_dependency_as_before():
    assert named({"a": ["b"], "b": ["c"], "c": ["a"]}, {}) == "a -> b -> c -> a"
    assert named({"a": ["b"], "b": ["a"]}, {}, ["b"]) == "b -> a -> b"
    assert named({"a": ["b"], "b": ["c"]}, {}) is None


def test_what_a_summary_spanning_its_subtasks_allows_and_forbids():
    # Allowed: siblings in order, a summary waiting for others, others waiting for it.
    parents = {"c1": "S", "c2": "S"}
    assert named({"c2": ["c1"], "S": ["Y"], "X": ["S"], "c1": ["Z"]}, parents) is None
    assert named({"c2": ["T"]}, {**parents, "t1": "T", "T": "R", "c": "R"}) is None
    # Forbidden: a subtask on its ancestor, a summary on its own subtask.
    assert named({"c1": ["S"]}, parents) == "c1 -> S -> c1"
    assert named({"k": ["g"]}, {"k": "p", "p": "g"}) == "k -> g -> p -> k"
    assert named({"S": ["c1"]}, parents) == "S -> c1 -> S"
    cycle = find_schedule_cycle({"S": ["c1"]}, parents)
    assert cycle is not None and cycle.explain() == "S depends on c1; c1 is a subtask of S"


def test_parents_that_loop_are_left_out_not_reported():
    # Stored before parents were checked: such a loop says nothing about order.
    assert named({"z": ["x"]}, {"x": "y", "y": "x"}) is None
    assert named({"z": ["x"]}, {"x": "y", "y": "x", "w": "x"}) is None


def test_a_hierarchy_deeper_than_the_recursion_limit():
    n = 20_000
    parents = {f"n{i}": f"n{i - 1}" for i in range(1, n)}
    assert named({"w": [f"n{n - 1}"]}, parents) is None
    cycle = find_schedule_cycle({f"n{n - 1}": ["n0"]}, parents, [f"n{n - 1}"])
    assert cycle is not None and len(cycle.tasks) == n + 1
    assert cycle.explain(2) == f"n{n - 1} depends on n0; n0 contains subtask n1; and {n - 2} more"
