"""The :class:`Scheduler` interface and the factory that picks (and falls back) solvers."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal, Protocol

from plansmith_server.errors import PlansmithError

from .baseline import better_of
from .heuristic import DEFAULT_MAX_ITERATIONS, HeuristicScheduler
from .model import Goal, ScheduleResult, SchedulingProblem
from .stop import StopToken

#: Above this many (activity, eligible agent) pairs plus activities, CP-SAT rarely
#: improves on the heuristic within service time limits (the model grows with the
#: pairs; PSPLIB runs in docs/scheduling.md), so the factory goes straight to the
#: heuristic.
CPSAT_MAX_MODEL_SIZE = 5000


_preloading = threading.Lock()
_preloaded = False


def preload_solver() -> None:
    """Imports OR-Tools on a thread of its own, once per process, if it is installed.

    The import takes most of a second; paid by the first OptimizePlan, it came on top of
    that call's time limit."""
    global _preloaded
    with _preloading:
        if _preloaded:
            return
        _preloaded = True

    def load() -> None:
        try:
            from ortools.sat.python import cp_model  # noqa: F401
        except ImportError:
            pass

    # OR-Tools imports pandas, which imports concurrent.futures.thread, which registers an
    # exit hook; registering one fails once the interpreter has begun to exit (a short
    # script that ends while the preload still runs). Imported here, it is registered now.
    import concurrent.futures.thread  # noqa: F401

    # Not a daemon: an import cut short by the interpreter's exit can crash it.
    threading.Thread(target=load, name="ortools-preload").start()


class Scheduler(Protocol):
    """A scheduler: turns a problem into a validated schedule."""

    name: str

    def solve(
        self,
        problem: SchedulingProblem,
        *,
        time_limit_s: float = 10.0,
        seed: int = 0,
        goals: Sequence[Goal] = (Goal.MINIMIZE_DURATION,),
        stop: StopToken | None = None,
    ) -> ScheduleResult:
        """Solves ``problem`` within ``time_limit_s``; deterministic per ``seed`` where
        the solver allows it. Once ``stop`` is stopped it returns what it has, soon."""
        ...


def model_size(problem: SchedulingProblem) -> int:
    """Activities plus (activity, eligible agent) pairs: what the CP-SAT model grows with."""
    n_agents = len(problem.agents)
    size = 0
    for a in problem.activities:
        size += 1
        if a.pinned_agent is not None:
            size += 1
        elif a.eligible_agents is not None:
            size += len(a.eligible_agents)
        elif a.requires_agent:
            size += n_agents
    return size


class FallbackScheduler:
    """CP-SAT when usable, the heuristic otherwise; optionally never worse than a baseline.

    Falls back to the heuristic when OR-Tools cannot be imported, when the problem is
    larger than ``max_cpsat_size`` (see :data:`CPSAT_MAX_MODEL_SIZE`), or when CP-SAT
    raises or returns no solution. ``result.stats.fallback_reason`` says why.

    Args:
        num_workers: CP-SAT workers.
        max_iterations: Heuristic iteration cap.
        max_cpsat_size: Model size threshold for CP-SAT.
    """

    def __init__(
        self,
        num_workers: int = 2,
        max_iterations: int = DEFAULT_MAX_ITERATIONS,
        max_cpsat_size: int = CPSAT_MAX_MODEL_SIZE,
    ) -> None:
        self.num_workers = num_workers
        self.max_cpsat_size = max_cpsat_size
        self.heuristic = HeuristicScheduler(max_iterations=max_iterations)
        self.name = "cpsat"

    def solve(
        self,
        problem: SchedulingProblem,
        *,
        time_limit_s: float = 10.0,
        seed: int = 0,
        goals: Sequence[Goal] = (Goal.MINIMIZE_DURATION,),
        baseline: ScheduleResult | None = None,
        stop: StopToken | None = None,
    ) -> ScheduleResult:
        """Solves with CP-SAT or the heuristic (see class docstring).

        Args:
            problem: The problem.
            time_limit_s: Budget for the whole call.
            seed: Random seed.
            goals: Goals in priority order.
            baseline: The current schedule (e.g. from
                :func:`~.baseline.current_assignment_schedule`); when given, the result
                is never worse than it under ``goals``.
            stop: Once stopped, the search ends soon with the best schedule so far.
        """
        t0 = time.perf_counter()
        reason: str | None = None
        result: ScheduleResult | None = None
        size = model_size(problem)
        if size > self.max_cpsat_size:
            reason = f"model size {size} > {self.max_cpsat_size}"
        else:
            try:
                from .cpsat import CpSatScheduler

                result = CpSatScheduler(num_workers=self.num_workers).solve(
                    problem, time_limit_s=time_limit_s, seed=seed, goals=goals, stop=stop
                )
            except ImportError:
                reason = "OR-Tools is not installed"
            except PlansmithError:
                # Bad input (a cycle, a malformed or infeasible problem) is the caller's
                # problem; the heuristic would reject it too.
                raise
            except Exception as exc:
                reason = f"CP-SAT failed: {exc!r}"
        if result is None:
            remaining = max(0.0, time_limit_s - (time.perf_counter() - t0))
            result = self.heuristic.solve(
                problem,
                time_limit_s=remaining,
                seed=seed,
                goals=goals,
                stop=stop,
                initial=() if baseline is None else (baseline,),
            )
            result = replace(result, stats=replace(result.stats, fallback_reason=reason))
        if baseline is not None:
            result = better_of(result, baseline, goals)
        return result


def make_scheduler(
    prefer: Literal["cpsat", "heuristic"] = "cpsat",
    *,
    num_workers: int = 2,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
) -> Scheduler:
    """Returns a scheduler.

    Args:
        prefer: ``"cpsat"`` for :class:`FallbackScheduler` (CP-SAT with heuristic
            fallback), ``"heuristic"`` for the pure-Python :class:`HeuristicScheduler`.
        num_workers: CP-SAT workers.
        max_iterations: Heuristic iteration cap.
    """
    if prefer == "heuristic":
        return HeuristicScheduler(max_iterations=max_iterations)
    if prefer == "cpsat":
        return FallbackScheduler(num_workers=num_workers, max_iterations=max_iterations)
    raise ValueError(f"unknown scheduler {prefer!r}")
