"""Monte Carlo forecast: determinism, analytic cases, criticality."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plansmith_server.scheduling import Distribution, PlanTask, forecast
from plansmith_server.scheduling.montecarlo import MAX_CHUNK_CELLS, SimulationCancelled, simulate


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
