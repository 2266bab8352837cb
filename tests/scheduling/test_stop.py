"""Stopping solves and simulations whose result nobody waits for any more."""

from __future__ import annotations

import random
import threading
import time

from plansmith_server.scheduling import (
    Activity,
    FallbackScheduler,
    Goal,
    HeuristicScheduler,
    SchedulingProblem,
    StopToken,
    validate_schedule,
)


def hard_problem(n: int = 40) -> SchedulingProblem:
    """Five agents, random durations, eligibility and dependencies: CP-SAT with two
    workers proves no optimum here within many seconds (it used its whole budget)."""
    rng = random.Random(3)
    agents = ("r1", "r2", "r3", "r4", "r5")
    return SchedulingProblem(
        tuple(
            Activity(
                f"a{i}",
                rng.uniform(1, 20),
                predecessors=tuple(f"a{j}" for j in rng.sample(range(i), min(i, rng.randrange(3)))),
                requires_agent=True,
                eligible_agents=frozenset(rng.sample(agents, rng.randrange(1, 4))),
            )
            for i in range(n)
        ),
        agents=agents,
    )


def wait_until(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_token_interrupts_the_step_under_way_once() -> None:
    token = StopToken()
    calls: list[str] = []
    with token.interrupting(lambda: calls.append("first")):
        assert token.interruptible
    assert not token.interruptible  # the step ended: nothing to interrupt
    with token.interrupting(lambda: calls.append("second")):
        token.stop()
        token.stop()
    assert calls == ["second"] and token.stopped
    with token.interrupting(lambda: calls.append("late")):  # already stopped: at once
        pass
    assert calls == ["second", "late"]


def test_cp_sat_stops_mid_search_with_a_valid_schedule() -> None:
    problem = hard_problem()
    token = StopToken()
    out: list[object] = []
    started = time.monotonic()
    worker = threading.Thread(
        target=lambda: out.append(
            FallbackScheduler().solve(
                problem,
                time_limit_s=20,  # 2 s of it for the warm start
                goals=(Goal.MINIMIZE_DURATION, Goal.BALANCE_WORKLOAD),
                stop=token,
            )
        )
    )
    worker.start()
    wait_until(lambda: token.interruptible)  # CP-SAT's search is under way
    stopped_at = time.monotonic()
    token.stop()
    worker.join(timeout=30)
    assert not worker.is_alive()
    (result,) = out
    # The search under way had seconds left (a fifth of 70 % of the 18 s after the warm
    # start); interrupted, it ends at once.
    assert time.monotonic() - stopped_at < 1.0
    assert time.monotonic() - started < 12
    assert validate_schedule(problem, result) == []
    assert any(note.endswith(":STOPPED") for note in result.stats.notes)  # no later phase ran


def test_a_stopped_heuristic_returns_its_first_schedule() -> None:
    problem = hard_problem()
    token = StopToken()
    token.stop()
    result = HeuristicScheduler(max_iterations=5_000).solve(problem, time_limit_s=60, stop=token)
    assert validate_schedule(problem, result) == []
    assert result.stats.iterations <= 3  # one priority rule, its forward and backward pass
    full = HeuristicScheduler(max_iterations=200).solve(problem, time_limit_s=60)
    assert full.stats.iterations >= 200


def test_a_stop_just_before_cp_sat_starts_is_not_lost(monkeypatch) -> None:
    # CP-SAT ignores stop_search until Solve has set its search up: a stop that comes
    # while the model is being prepared must still end the Solve that follows.
    from plansmith_server.scheduling import cpsat

    token = StopToken()
    prepare = cpsat._set_hint

    def stop_while_preparing(*args, **kwargs):
        token.stop()
        return prepare(*args, **kwargs)

    monkeypatch.setattr(cpsat, "_set_hint", stop_while_preparing)
    problem = hard_problem(120)
    started = time.monotonic()
    result = cpsat.CpSatScheduler().solve(problem, time_limit_s=20, stop=token)
    # 2 s of warm start, then a Solve of 2.8 s (a fifth of 70 % of the rest) not run out
    assert time.monotonic() - started < 4
    assert validate_schedule(problem, result) == []
