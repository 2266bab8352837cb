"""Monte Carlo forecast: determinism, analytic cases, criticality, agents' capacity."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import numpy as np
import pytest

from plansmith_server.scheduling import (
    Distribution,
    PlanTask,
    Priority,
    TaskStatus,
    cpm_for_tasks,
    forecast,
    schedule_current_plan,
)
from plansmith_server.scheduling.agent_sequence import agent_sequence_edges
from plansmith_server.scheduling.cpm import cpm_arrays
from plansmith_server.scheduling.montecarlo import (
    MAX_CHUNK_CELLS,
    SimulationCancelled,
    sample_durations,
    simulate,
)
from plansmith_server.scheduling.risk import three_point


def triangular_cdf(x: float, a: float, m: float, b: float) -> float:
    if x <= a:
        return 0.0
    if x <= m:
        return (x - a) ** 2 / ((b - a) * (m - a))
    if x < b:
        return 1 - (b - x) ** 2 / ((b - a) * (b - m))
    return 1.0


def test_same_seed_same_numbers() -> None:
    tasks = [
        PlanTask("a", estimate_hours=4, optimistic_hours=2, pessimistic_hours=9),
        PlanTask("b", dependencies=("a",), estimate_hours=3),
        PlanTask("c", dependencies=("a",), estimate_hours=5),
    ]
    f1 = forecast(tasks, samples=3000, seed=42, deadline_hours=10)
    f2 = forecast(tasks, samples=3000, seed=42, deadline_hours=10)
    f3 = forecast(tasks, samples=3000, seed=43, deadline_hours=10)
    assert f1 == f2
    assert f1.p80 != f3.p80


def test_single_triangular_task_matches_cdf() -> None:
    a, m, b, deadline = 2.0, 4.0, 10.0, 6.0
    tasks = [PlanTask("t", estimate_hours=m, optimistic_hours=a, pessimistic_hours=b)]
    n = 20_000
    f = forecast(tasks, samples=n, seed=1, deadline_hours=deadline)
    p = triangular_cdf(deadline, a, m, b)  # = 1 - 16/36 = 0.5556
    sigma = math.sqrt(p * (1 - p) / n)
    assert f.probability_meet_deadline == pytest.approx(p, abs=4 * sigma)
    # Median of the triangular: b - sqrt((b-a)(b-m)/2) since F(m) = 1/3 < 0.5.
    median = b - math.sqrt((b - a) * (b - m) / 2)
    assert f.p50 == pytest.approx(median, abs=0.1)
    assert f.mean == pytest.approx((a + m + b) / 3, abs=0.05)
    assert f.criticality["t"] == 1.0


def test_chain_of_uniforms_sum_matches_irwin_hall() -> None:
    # Symmetric triangular with a = m = b would be constant; use the "uniform" limit
    # instead: triangular(0, 0, 1) + triangular(0, 1, 1) has mean 1 and variance 1/9.
    lo = np.array([0.0, 0.0])
    mode = np.array([0.0, 1.0])
    hi = np.array([1.0, 1.0])
    sim = simulate(lo, mode, hi, np.array([0]), np.array([1]), samples=40_000, seed=5)
    assert sim.totals.mean() == pytest.approx(1.0, abs=3 * math.sqrt(1 / 18 / 40_000) * 3)
    assert sim.totals.var() == pytest.approx(1 / 9, rel=0.05)
    # A chain: both tasks are always critical.
    np.testing.assert_allclose(sim.criticality, [1.0, 1.0])


def test_criticality_splits_between_parallel_equal_tasks() -> None:
    tasks = [
        PlanTask("x", estimate_hours=5, optimistic_hours=4, pessimistic_hours=6),
        PlanTask("y", estimate_hours=5, optimistic_hours=4, pessimistic_hours=6),
        PlanTask("short", estimate_hours=1, optimistic_hours=0.5, pessimistic_hours=2),
        PlanTask("end", dependencies=("x", "y", "short"), estimate_hours=1, remaining_hours=1),
    ]
    f = forecast(tasks, samples=10_000, seed=3)
    c = f.criticality
    assert c["x"] + c["y"] == pytest.approx(1.0, abs=1e-9)
    assert c["x"] == pytest.approx(0.5, abs=0.03)
    assert c["short"] == 0.0
    assert c["end"] == 1.0
    assert {d.task_id for d in f.drivers[:2]} == {"x", "y"}


def test_pert_distribution_mean() -> None:
    tasks = [PlanTask("t", estimate_hours=4, optimistic_hours=2, pessimistic_hours=12)]
    f = forecast(tasks, samples=20_000, seed=2, distribution=Distribution.PERT)
    assert f.mean == pytest.approx((2 + 4 * 4 + 12) / 6, abs=0.05)


def test_monte_carlo_size_is_fast_enough() -> None:
    import time

    rng = np.random.default_rng(0)
    n = 1000
    a, b = rng.integers(0, n, 3000), rng.integers(0, n, 3000)
    keep = a != b
    src, dst = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    m = rng.uniform(1, 10, n)
    t0 = time.perf_counter()
    sim = simulate(0.8 * m, m, 1.5 * m, src, dst, samples=10_000, seed=0)
    elapsed = time.perf_counter() - t0
    assert len(sim.totals) == 10_000
    assert elapsed < 10.0  # generous for CI; bench/analysis.py reports the real time


def test_a_cancelled_simulation_stops_at_the_next_chunk() -> None:
    asked: list[int] = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) > 2  # two chunks run, then the caller gives up

    n = 10
    with pytest.raises(SimulationCancelled):
        simulate(
            [1.0] * n,
            [2.0] * n,
            [3.0] * n,
            np.arange(n - 1),
            np.arange(1, n),
            samples=100_000,
            chunk=1_000,
            cancelled=cancelled,
        )
    assert len(asked) == 3
    done = simulate(
        [1.0],
        [2.0],
        [3.0],
        np.array([], int),
        np.array([], int),
        samples=3_000,
        chunk=1_000,
        cancelled=lambda: False,
    )
    assert len(done.totals) == 3_000


def test_chunks_of_large_graphs_are_bounded_in_cells() -> None:
    # MAX_CHUNK_CELLS // 500 independent tasks: chunks of 500 samples (not CHUNK), so
    # 1,001 samples take 3; the cancel hook, asked once per chunk, counts them.
    n = MAX_CHUNK_CELLS // 500
    asked: list[int] = []
    sim = simulate(
        np.ones(n),
        np.ones(n),
        np.ones(n),
        np.array([], int),
        np.array([], int),
        samples=1_001,
        cancelled=lambda: bool(asked.append(1)),
    )
    assert len(asked) == 3
    assert sim.totals.tolist() == [1.0] * 1_001


# ---- The plan as assigned: an agent does one task at a time -------------------------


def fixed(task_id: str, hours: float, agent: str | None = None, deps=(), **kw) -> PlanTask:
    """A task whose three-point estimate has no spread."""
    return PlanTask(
        task_id,
        dependencies=deps,
        estimate_hours=hours,
        optimistic_hours=hours,
        pessimistic_hours=hours,
        assigned_agent=agent,
        **kw,
    )


def test_tasks_on_one_agent_take_the_sum_of_their_durations_in_every_sample() -> None:
    # Fixed durations: every sample is 2 + 3 + 4, not the longest task (4).
    f = forecast([fixed("a", 2, "ann"), fixed("b", 3, "ann"), fixed("c", 4, "ann")], seed=1)
    assert f.p50 == f.p95 == f.mean == pytest.approx(9)
    assert all(c == 1.0 for c in f.criticality.values())
    # Sampled durations: the distribution of the sums. The same draws per task as a
    # dependency chain of the same tasks (which takes their sum by definition).
    spread = [
        PlanTask(i, estimate_hours=h, optimistic_hours=h / 2, pessimistic_hours=3 * h)
        for i, h in (("a", 2), ("b", 3), ("c", 4))
    ]
    on_ann = forecast([replace(t, assigned_agent="ann") for t in spread], seed=3, samples=5000)
    chain = forecast(
        [
            spread[0],
            replace(spread[1], dependencies=("a",)),
            replace(spread[2], dependencies=("b",)),
        ],
        seed=3,
        samples=5000,
    )
    assert (on_ann.p50, on_ann.p80, on_ann.p95, on_ann.mean) == pytest.approx(
        (chain.p50, chain.p80, chain.p95, chain.mean), rel=1e-12
    )
    unassigned = forecast(spread, seed=3, samples=5000)
    assert on_ann.p50 > unassigned.p95


def test_an_agent_busy_elsewhere_lengthens_the_forecast_beyond_the_critical_path() -> None:
    # Dependencies alone: a1 and b1 in parallel, then "end": 4 + 1 = 5 h. But a2 also sits
    # on ann, ahead of a1 in priority: ann works 4 + 4 before "end" can start: 9 h.
    tasks = [
        fixed("a2", 4, "ann", priority=Priority.HIGH),
        fixed("a1", 4, "ann"),
        fixed("b1", 3, "bob"),
        fixed("end", 1, "bob", deps=("a1", "b1")),
    ]
    assert cpm_for_tasks(tasks).project_duration == pytest.approx(5)
    f = forecast(tasks, seed=0, samples=1000)
    assert f.p50 == f.p95 == pytest.approx(9)
    assert f.criticality == {"a2": 1.0, "a1": 1.0, "b1": 0.0, "end": 1.0}


def test_without_spread_every_sample_is_the_current_plan_schedule() -> None:
    # Priorities, dependencies across agents, unassigned work, a running task and a done
    # one: the simulation at fixed durations is the current-plan list schedule. There, ann
    # runs "run" (0-3), waits for v's dependencies (w ends at 10), so the serial SGS
    # slips q (listed after x) into the gap at 3-5, and x goes last: 12-20.
    tasks = [
        fixed("run", 3, "ann", status=TaskStatus.IN_PROGRESS),
        fixed("done", 5, "bob", status=TaskStatus.DONE),
        fixed("x", 8, "ann", deps=("done",), priority=Priority.LOW),
        fixed("y", 6, "bob", priority=Priority.CRITICAL),
        fixed("z", 1, "bob", deps=("run",)),
        fixed("w", 4, None, deps=("y",)),
        fixed("v", 2, "ann", deps=("w", "z"), priority=Priority.HIGH),
        fixed("q", 2, "ann", priority=Priority.LOW),
    ]
    current = schedule_current_plan(tasks)
    assert {a.activity_id: a.start for a in current.activities if a.agent == "ann"} == {
        "run": 0,
        "q": 3,
        "v": 10,
        "x": 12,
    }
    assert current.makespan == 20 > cpm_for_tasks(tasks).project_duration
    f = forecast(tasks, seed=2, samples=500)
    assert f.p50 == f.p95 == pytest.approx(20)


def test_the_schedule_passed_in_gives_the_same_forecast() -> None:
    tasks = [
        PlanTask(f"t{i}", estimate_hours=1 + i % 4, assigned_agent=f"g{i % 3}") for i in range(12)
    ]
    own = forecast(tasks, seed=4, samples=800)
    assert forecast(tasks, seed=4, samples=800, schedule=schedule_current_plan(tasks)) == own


def test_each_sample_is_the_fixed_sequence_schedule_of_its_durations() -> None:
    # Random plans: the vectorized simulation against the schedule of each sample built
    # one task at a time in Python (start = max(dependencies' finishes, the agent's
    # previous task's finish), agents taking their tasks in the current-plan order).
    rng = random.Random(11)
    for _ in range(5):
        tasks = []
        for i in range(40):
            deps = tuple({f"t{rng.randrange(i)}" for _ in range(rng.randint(0, 2))} if i else ())
            h = rng.uniform(1, 6)
            agent = rng.choice(["ann", "bob", "cat", None])
            tasks.append(
                PlanTask(
                    f"t{i}",
                    dependencies=deps,
                    estimate_hours=h,
                    optimistic_hours=h / 2,
                    pessimistic_hours=2 * h,
                    assigned_agent=agent,
                )
            )
        index = {t.id: i for i, t in enumerate(tasks)}
        current = schedule_current_plan(tasks)
        src, dst = agent_sequence_edges(current, index)
        dep_src = [index[d] for t in tasks for d in t.dependencies]
        dep_dst = [i for i, t in enumerate(tasks) for _ in t.dependencies]
        pts = np.array([three_point(t) for t in tasks])
        sim = simulate(
            pts[:, 0],
            pts[:, 1],
            pts[:, 2],
            np.r_[dep_src, src].astype(int),
            np.r_[dep_dst, dst].astype(int),
            samples=50,
            seed=5,
        )
        d = sample_durations(np.random.default_rng(5), pts[:, 0], pts[:, 1], pts[:, 2], 50)
        order = [index[a.activity_id] for a in sorted(current.activities, key=lambda a: a.start)]
        for s in range(50):
            finish: dict[int, float] = {}
            free: dict[str, float] = {}
            for v in order:
                t = tasks[v]
                start = max((finish[index[p]] for p in t.dependencies), default=0.0)
                if t.assigned_agent:
                    start = max(start, free.get(t.assigned_agent, 0.0))
                finish[v] = start + d[v, s]
                if t.assigned_agent:
                    free[t.assigned_agent] = finish[v]
            assert sim.totals[s] == pytest.approx(max(finish.values()), rel=1e-12)


def test_long_chains_give_each_sample_its_critical_path() -> None:
    # Graphs of long chains (an agent's sequence, a run of dependent tasks, computed as
    # one node of the levels) joined by a few edges, with duplicates and zero-length
    # tasks: each sample's total and critical tasks are those of the deterministic CPM
    # at that sample's durations.
    rng = np.random.default_rng(0)
    samples, chunk = 24, 10
    for trial in range(12):
        n = int(rng.integers(2, 80))
        perm = rng.permutation(n)
        edges = [(perm[i], perm[i + 1]) for i in range(n - 1) if rng.random() < 0.9]
        for _ in range(int(rng.integers(0, 6))):
            a, b = sorted(rng.integers(0, n, 2))
            if a != b:
                edges.append((perm[a], perm[b]))
        edges += edges[:2]
        src = np.array([e[0] for e in edges], dtype=np.int64)
        dst = np.array([e[1] for e in edges], dtype=np.int64)
        mode = np.where(rng.random(n) < 0.1, 0.0, rng.uniform(0.5, 5, n))
        lo, hi = 0.5 * mode, 2 * mode
        sim = simulate(lo, mode, hi, src, dst, samples=samples, seed=trial, chunk=chunk)
        draws = np.random.default_rng(trial)  # the simulation's draws, chunk by chunk
        critical = np.zeros(n)
        for first in range(0, samples, chunk):
            d = sample_durations(draws, lo, mode, hi, min(chunk, samples - first))
            for s in range(d.shape[1]):
                ref = cpm_arrays(d[:, s], src, dst)
                assert sim.totals[first + s] == pytest.approx(ref.duration, rel=1e-12)
                critical += (ref.slack <= 1e-9 * max(ref.duration, 1.0)) & (hi > 0)
        np.testing.assert_allclose(sim.criticality, critical / samples)
