"""CPM on remaining work: hand-checked values, critical paths, cycles, size."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from plansmith_server.scheduling import (
    DependencyCycleError,
    PlanTask,
    TaskStatus,
    analyze_cpm,
    cpm_arrays,
    cpm_for_tasks,
)


def test_hand_checked_two_critical_paths() -> None:
    # start(2) -> a(3) -> end(1)
    # start(2) -> b(1) -> c(2) -> end(1)
    # start(2) -> d(1) -> end(1)
    ids = ["start", "a", "b", "c", "d", "end"]
    dur = [2, 3, 1, 2, 1, 1]
    deps = [[], ["start"], ["start"], ["b"], ["start"], ["a", "c", "d"]]
    r = analyze_cpm(ids, dur, deps)
    t = r.by_id()
    assert r.project_duration == 6
    assert t["a"].earliest_start == 2 and t["a"].latest_start == 2 and t["a"].slack == 0
    assert t["c"].earliest_start == 3 and t["c"].earliest_finish == 5
    assert t["d"].slack == 2 and t["d"].latest_start == 4 and t["d"].latest_finish == 5
    assert t["end"].earliest_start == 5 and t["end"].latest_finish == 6
    assert set(r.critical_task_ids) == {"start", "a", "b", "c", "end"}
    assert sorted(r.critical_paths) == [
        ("start", "a", "end"),
        ("start", "b", "c", "end"),
    ]
    assert not r.paths_truncated


def test_done_tasks_are_zero_and_not_critical() -> None:
    tasks = [
        PlanTask("x", TaskStatus.DONE, estimate_hours=5),
        PlanTask("y", TaskStatus.IN_PROGRESS, ("x",), estimate_hours=10, progress=0.4),
        PlanTask("z", TaskStatus.TODO, ("x",), estimate_hours=2, remaining_hours=1.5),
    ]
    r = cpm_for_tasks(tasks)
    t = r.by_id()
    assert t["x"].duration == 0 and not t["x"].critical
    assert t["y"].duration == pytest.approx(6.0) and t["y"].critical
    assert t["z"].slack == pytest.approx(4.5)
    assert r.critical_paths == (("y",),)
    assert r.project_duration == pytest.approx(6.0)


def test_cycle_is_reported_with_its_ids() -> None:
    ids = ["a", "b", "c", "d"]
    deps = [[], ["a", "d"], ["b"], ["c"]]  # b -> c -> d -> b
    with pytest.raises(DependencyCycleError) as exc:
        analyze_cpm(ids, [1, 1, 1, 1], deps)
    cycle = exc.value.cycle
    # Written the one way: each depends on the next, the first repeated last.
    assert set(cycle) == {"b", "c", "d"} and len(cycle) == 4 and cycle[0] == cycle[-1]
    for cur, nxt in itertools.pairwise(cycle):
        assert nxt in deps[ids.index(cur)]
    assert "a" not in str(exc.value).split(": ")[1]
    assert exc.value.code == "INVALID_ARGUMENT" and exc.value.reason == "DEPENDENCY_CYCLE"


def test_self_dependency_is_a_cycle() -> None:
    with pytest.raises(DependencyCycleError) as exc:
        cpm_for_tasks([PlanTask("a", dependencies=("a",), estimate_hours=1)])
    assert exc.value.cycle == ["a", "a"]


def test_critical_paths_are_bounded() -> None:
    # A ladder of 2-way choices: 2**10 equally long critical paths.
    ids, dur, deps = ["s"], [1.0], [[]]
    prev = ["s"]
    for k in range(10):
        a, b = f"a{k}", f"b{k}"
        ids += [a, b]
        dur += [1.0, 1.0]
        deps += [list(prev), list(prev)]
        prev = [a, b]
    r = analyze_cpm(ids, dur, deps, max_paths=5)
    assert len(r.critical_paths) == 5 and r.paths_truncated


def test_matches_python_reference_on_random_dag() -> None:
    rng = np.random.default_rng(3)
    n, m = 300, 900
    a, b = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = a != b
    src, dst = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    dur = rng.uniform(0, 5, n)
    arr = cpm_arrays(dur, src, dst)
    es = np.zeros(n)
    preds: list[list[int]] = [[] for _ in range(n)]
    for u, v in zip(src, dst, strict=True):
        preds[v].append(u)
    for v in range(n):  # indices are topological here
        es[v] = max((es[u] + dur[u] for u in preds[v]), default=0.0)
    np.testing.assert_allclose(arr.es, es)
    assert arr.duration == pytest.approx(float((es + dur).max()))
    assert np.all(arr.slack >= -1e-9)


def test_large_graph_is_fast_enough() -> None:
    import time

    rng = np.random.default_rng(0)
    n, m = 100_000, 300_000
    a, b = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = a != b
    perm = rng.permutation(n)
    src, dst = perm[np.minimum(a, b)[keep]], perm[np.maximum(a, b)[keep]]
    dur = rng.uniform(0, 10, n)
    t0 = time.perf_counter()
    arr = cpm_arrays(dur, src, dst)
    elapsed = time.perf_counter() - t0
    assert arr.duration > 0
    # Generous bound for a loaded CI machine; bench/analysis.py measures the real figure.
    assert elapsed < 3.0
