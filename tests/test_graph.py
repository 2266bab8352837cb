"""The one graph module: cycles written one way (`find_cycle`), order
(`topological_order`)."""

from __future__ import annotations

import pytest

from plansmith_server.errors import DependencyCycleError
from plansmith_server.graph import find_cycle, topological_order, write_cycle


def test_find_cycle_writes_each_node_waiting_for_the_next_first_repeated_last() -> None:
    waits = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}
    cycle = find_cycle(["d"], waits.__getitem__)
    assert cycle == ["a", "b", "c", "a"]
    assert write_cycle(cycle) == "a -> b -> c -> a"
    assert find_cycle(["x"], {"x": ["y"], "y": []}.__getitem__) is None


def test_find_cycle_walks_deep_graphs_without_recursion() -> None:
    n = 50_000
    waits = {i: [i + 1] for i in range(n)} | {n: [0]}
    cycle = find_cycle([0], waits.__getitem__)
    assert cycle is not None and len(cycle) == n + 2


def test_topological_order_names_a_cycle_in_the_one_error() -> None:
    with pytest.raises(DependencyCycleError) as e:
        topological_order([[], [2], [1]], ["s", "x", "y"], field="tasks")
    assert e.value.cycle in (["x", "y", "x"], ["y", "x", "y"])
    assert e.value.violations[0].field == "tasks"
