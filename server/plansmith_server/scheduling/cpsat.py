"""CP-SAT scheduler (OR-Tools). Imports ortools lazily so the package works without it.

Model: one fixed-size interval per activity; for activities with several eligible
agents, one optional interval per agent sharing the start, with exactly one present;
``AddNoOverlap`` per agent; ``AddCumulative`` per general resource; precedences as linear
inequalities; makespan >= every end. Redundant constraints that help the LP and the
propagation: ``makespan >= start + tail`` (longest path from the start to the end) and the
static critical-path/energy bounds as the makespan's domain.

Goals are solved lexicographically: each phase optimises one goal, then its value is
frozen as a constraint for the next phase (hinted with the previous solution).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, cast

from .compiled import CompiledProblem, compile_problem
from .heuristic import HeuristicScheduler
from .model import Goal, ScheduleResult, SchedulingProblem, SolverStats
from .result import build_result
from .sgs import IntSchedule
from .stop import StopToken

#: Cap on heuristic SGS passes for the warm start.
WARM_START_ITERATIONS = 1_000_000
#: Share of the time limit for the first, quick heuristic warm start.
QUICK_WARM_START_SHARE = 0.1
#: Share of the first goal's budget for CP-SAT before the genetic heuristic runs.
STAGE_A_SHARE = 0.2
#: Smaller problems skip the heuristic stage: CP-SAT alone does best on them.
STAGED_MIN_ACTIVITIES = 40


def default_warm_start_share(n_activities: int) -> float:
    """Share of the makespan budget for the genetic heuristic (stage B).

    Stage B runs only when CP-SAT has not settled the instance in stage A. Measured on
    PSPLIB with 2 workers: on 120 activities the genetic heuristic finds better schedules
    than CP-SAT's LNS in the same time, so it gets half the budget.
    """
    if n_activities <= 40:
        return 0.1
    if n_activities <= 80:
        return 0.3
    return 0.5


class CpSatScheduler:
    """Exact scheduler on OR-Tools CP-SAT.

    Args:
        num_workers: CP-SAT search workers (threads).
        warm_start_share: Share of the time limit for the warm start; ``None`` picks
            :func:`default_warm_start_share`.
        extra_parameters: Additional ``CpSolverParameters`` fields to set by name.
    """

    name = "cpsat"

    def __init__(
        self,
        num_workers: int = 2,
        extra_parameters: dict[str, Any] | None = None,
        warm_start_share: float | None = None,
    ) -> None:
        self.num_workers = num_workers
        self.warm_start_share = warm_start_share
        self.extra_parameters = dict(extra_parameters or {})

    def solve(
        self,
        problem: SchedulingProblem,
        *,
        time_limit_s: float = 10.0,
        seed: int = 0,
        goals: Sequence[Goal] = (Goal.MINIMIZE_DURATION,),
        stop: StopToken | None = None,
    ) -> ScheduleResult:
        """Schedules the problem.

        Args:
            problem: The problem.
            time_limit_s: Wall-clock budget for the whole solve (warm start included).
            seed: Random seed of CP-SAT and the warm start.
            goals: Goals in priority order.
            stop: Once stopped, the search under way ends and no other starts; the best
                schedule found so far is returned.

        Raises:
            ImportError: OR-Tools is not installed.
        """
        from ortools.sat.python import cp_model

        t0 = time.perf_counter()
        goals = tuple(goals) or (Goal.MINIMIZE_DURATION,)
        cp = compile_problem(problem)
        lb_static = max(cp.critical_path_bound(), cp.resource_bound())

        # The heuristic's schedule is the hint, the horizon and the fallback.
        heuristic = HeuristicScheduler(max_iterations=WARM_START_ITERATIONS)
        share = self.warm_start_share
        if share is None:
            share = default_warm_start_share(cp.n)
        warm, _ = heuristic.solve_compiled(
            cp,
            time_limit_s=time_limit_s * QUICK_WARM_START_SHARE,
            seed=seed,
            goals=goals,
            t0=time.perf_counter(),
            stop=stop,
        )

        if cp.n == 0 or (warm.makespan <= lb_static and goals == (Goal.MINIMIZE_DURATION,)):
            stats = SolverStats(
                solver=self.name,
                status="OPTIMAL",
                wall_time_s=time.perf_counter() - t0,
                objective=cp.to_hours(warm.makespan),
                best_bound=cp.to_hours(warm.makespan),
                notes=("warm start met the static lower bound",),
            )
            return build_result(cp, warm, stats, goals=goals, proven_optimal=True)

        deadline = t0 + time_limit_s

        def out_of_time() -> bool:
            return (stop is not None and stop.stopped) or time.perf_counter() >= deadline

        try:
            built = _build_model(cp_model, cp, warm, out_of_time)
        except _BuildInterrupted:
            # Building a model of thousands of intervals can take longer than the limit
            # leaves: the warm start is the answer then, as the limit bounds the call.
            stats = SolverStats(
                solver=self.name,
                status="FEASIBLE",
                wall_time_s=time.perf_counter() - t0,
                objective=cp.to_hours(warm.makespan),
                notes=(
                    ("stopped" if stop is not None and stop.stopped else "time limit reached")
                    + " while building the model: warm start kept",
                ),
            )
            return build_result(cp, warm, stats, goals=goals)
        model = built.model
        solver = cp_model.CpSolver()
        p = solver.parameters
        p.num_workers = self.num_workers
        p.random_seed = seed
        for k, v in self.extra_parameters.items():
            setattr(p, k, v)

        best = warm
        status_names: list[str] = []
        counters = [0, 0]  # branches, conflicts
        solver_bound = 0
        makespan_optimal = False
        first_status = "UNKNOWN"

        def run(goal: Goal, seconds: float) -> tuple[str, int]:
            """One CP-SAT solve of ``goal``; returns status name and bound."""
            nonlocal best
            if stop is not None and stop.stopped:
                status_names.append(f"{goal.value}:STOPPED")
                return "STOPPED", 0
            p.max_time_in_seconds = max(0.01, seconds)
            _set_hint(model, built, best)
            model.Minimize(built.objective(goal))
            with _stopping(solver, stop) if stop else contextlib.nullcontext():
                status = cast(int, solver.Solve(model))  # ortools: see compiled.py
            name = solver.StatusName(status)
            status_names.append(f"{goal.value}:{name}")
            counters[0] += solver.NumBranches()
            counters[1] += solver.NumConflicts()
            bound = 0
            if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                cand = built.extract(solver)
                if built.value(goal, cand) <= built.value(goal, best):
                    best = cand
                bound = round(solver.BestObjectiveBound())
            return name, bound

        for phase, goal in enumerate(goals):
            phase_start = time.perf_counter()
            remaining = time_limit_s - (phase_start - t0)
            if remaining <= 0.01:
                status_names.append(f"{goal.value}:SKIPPED")
                continue
            # Earlier phases get most of the time; the last one gets all that is left.
            budget = remaining * (1.0 if phase == len(goals) - 1 else 0.7)
            staged = phase == 0 and goal is Goal.MINIMIZE_DURATION and cp.n > STAGED_MIN_ACTIVITIES
            if staged:
                # Stage A: CP-SAT alone settles easy instances quickly.
                name, bound = run(goal, budget * STAGE_A_SHARE)
                if name != "OPTIMAL" and best.makespan > bound:
                    # Stage B: the genetic heuristic, seeded with CP-SAT's schedule,
                    # finds better schedules on large instances than CP-SAT's LNS with
                    # few workers; stage C lets CP-SAT continue from its result.
                    gs, _ = heuristic.solve_compiled(
                        cp,
                        time_limit_s=budget * share,
                        seed=seed,
                        goals=goals,
                        t0=time.perf_counter(),
                        initial=[best],
                        stop=stop,
                    )
                    if built.value(goal, gs) < built.value(goal, best):
                        best = gs
                    left = budget - (time.perf_counter() - phase_start)
                    if left > 0.05:
                        name2, bound2 = run(goal, left)
                        bound = max(bound, bound2)
                        name = name2 if name2 == "OPTIMAL" else name
            else:
                name, bound = run(goal, budget)
            if phase == 0:
                first_status = name
                if goal is Goal.MINIMIZE_DURATION:
                    solver_bound = bound
                    makespan_optimal = name == "OPTIMAL" or (bound > 0 and best.makespan <= bound)
            if name == "INFEASIBLE":
                break
            # Freeze the phase's value for the later phases.
            model.Add(built.objective(goal) <= built.value(goal, best))
        branches, conflicts = counters
        stats = SolverStats(
            solver=self.name,
            status=first_status,
            wall_time_s=time.perf_counter() - t0,
            objective=cp.to_hours(best.makespan),
            best_bound=cp.to_hours(solver_bound) if solver_bound else None,
            branches=branches,
            conflicts=conflicts,
            notes=tuple(status_names),
        )
        return build_result(
            cp,
            best,
            stats,
            solver_bound=solver_bound,
            goals=goals,
            proven_optimal=makespan_optimal,
        )


@contextlib.contextmanager
def _stopping(solver: Any, stop: StopToken) -> Iterator[None]:
    """Within the block (one `Solve`), `stop` ends CP-SAT's search. `stop_search` does
    nothing until `Solve` has set its search up, so a stop that comes just before (or
    came already) is repeated every 50 ms until the block ends."""
    solved = threading.Event()

    def interrupt() -> None:
        solver.stop_search()
        threading.Thread(target=repeat, name="cpsat-stop", daemon=True).start()

    def repeat() -> None:
        while not solved.wait(0.05):
            solver.stop_search()

    try:
        with stop.interrupting(interrupt):
            yield
    finally:
        solved.set()


class _Built:
    """A CP-SAT model with handles to read solutions back."""

    def __init__(self, cp: CompiledProblem) -> None:
        self.cp = cp
        self.model: Any = None
        self.starts: list[Any] = []
        self.choice: list[list[tuple[int, Any]]] = []  # (agent, literal) per activity
        self.makespan: Any = None
        self.loads: list[Any] = []
        self.max_load: Any = None
        self.min_load: Any = None

    def value(self, goal: Goal, sched: IntSchedule) -> int:
        """Value of :meth:`objective` for a schedule."""
        if goal is Goal.MINIMIZE_DURATION or not self.loads:
            return sched.makespan
        loads = sched.loads(self.cp)
        return max(loads) * (sum(self.cp.dur) + 1) - min(loads)

    def objective(self, goal: Goal) -> Any:
        if goal is Goal.MINIMIZE_DURATION or not self.loads:
            return self.makespan
        # Busiest agent first; among equals, the least busy one as high as possible.
        total = sum(self.cp.dur) + 1
        return self.max_load * total - self.min_load

    def extract(self, solver: Any) -> IntSchedule:
        cp = self.cp
        starts = [int(solver.Value(s)) for s in self.starts]
        agents = [-1] * cp.n
        for v in range(cp.n):
            opts = self.choice[v]
            if len(opts) == 1:
                agents[v] = opts[0][0]
            else:
                for k, lit in opts:
                    if solver.BooleanValue(lit):
                        agents[v] = k
                        break
        mk = max((starts[v] + cp.dur[v] for v in range(cp.n)), default=0)
        return IntSchedule(starts, agents, mk)


class _BuildInterrupted(Exception):
    """The model was not finished: its `interrupted` check said so."""


#: Activities added to the model between two `interrupted` checks.
BUILD_CHECK_EVERY = 64


def _build_model(
    cp_model: Any,
    cp: CompiledProblem,
    warm: IntSchedule,
    interrupted: Any = None,
) -> _Built:
    """The CP-SAT model of `cp`, its horizon `warm`'s makespan. `interrupted` (asked every
    :data:`BUILD_CHECK_EVERY` activities) ends the building with `_BuildInterrupted`."""
    b = _Built(cp)
    m = cp_model.CpModel()
    b.model = m
    horizon = warm.makespan
    es = cp.heads()
    tail = cp.tails()
    lb = max(cp.critical_path_bound(), cp.resource_bound())
    b.makespan = m.NewIntVar(min(lb, horizon), horizon, "makespan")
    intervals: list[Any] = []
    agent_intervals: list[list[Any]] = [[] for _ in cp.agent_ids]
    agent_terms: list[list[tuple[int, Any]]] = [[] for _ in cp.agent_ids]
    agent_const: list[int] = [0] * len(cp.agent_ids)
    for v in range(cp.n):
        if interrupted is not None and v % BUILD_CHECK_EVERY == 0 and interrupted():
            raise _BuildInterrupted
        d = cp.dur[v]
        fx = cp.fixed[v]
        if fx is not None:
            s = m.NewConstant(fx)
        else:
            s = m.NewIntVar(es[v], max(es[v], horizon - tail[v]), f"s{v}")
        b.starts.append(s)
        iv = m.NewFixedSizeIntervalVar(s, d, f"i{v}")
        intervals.append(iv)
        m.Add(b.makespan >= s + tail[v])
        opts = cp.agent_options[v]
        if len(opts) == 1:
            k = opts[0]
            b.choice.append([(k, True)])
            if d > 0:
                agent_intervals[k].append(iv)
            agent_const[k] += d
        elif opts:
            lits = []
            for k in opts:
                lit = m.NewBoolVar(f"x{v}_{k}")
                lits.append((k, lit))
                if d > 0:
                    agent_intervals[k].append(
                        m.NewOptionalFixedSizeIntervalVar(s, d, lit, f"o{v}_{k}")
                    )
                    agent_terms[k].append((d, lit))
            m.AddExactlyOne([lit for _, lit in lits])
            b.choice.append(lits)
        else:
            b.choice.append([])
    for v in range(cp.n):
        if interrupted is not None and v % BUILD_CHECK_EVERY == 0 and interrupted():
            raise _BuildInterrupted
        for p in cp.preds[v]:
            m.Add(b.starts[v] >= b.starts[p] + cp.dur[p])
    for ivs in agent_intervals:
        if len(ivs) > 1:
            m.AddNoOverlap(ivs)
    for r, cap in enumerate(cp.capacities):
        ivs, qs = [], []
        for v in range(cp.n):
            for rr, q in cp.demands[v]:
                if rr == r and cp.dur[v] > 0:
                    ivs.append(intervals[v])
                    qs.append(q)
        if ivs and sum(qs) > cap:
            m.AddCumulative(ivs, qs, cap)
    if cp.agent_ids:
        total = sum(cp.dur)
        for k in range(len(cp.agent_ids)):
            load = m.NewIntVar(0, total, f"load{k}")
            terms = agent_terms[k]
            m.Add(
                load
                == agent_const[k]
                + cp_model.LinearExpr.WeightedSum([lit for _, lit in terms], [d for d, _ in terms])
            )
            b.loads.append(load)
        b.max_load = m.NewIntVar(0, total, "max_load")
        b.min_load = m.NewIntVar(0, total, "min_load")
        m.AddMaxEquality(b.max_load, b.loads)
        m.AddMinEquality(b.min_load, b.loads)
    return b


def _set_hint(model: Any, b: _Built, sched: IntSchedule) -> None:
    model.ClearHints()
    cp = b.cp
    for v in range(cp.n):
        if cp.fixed[v] is None:
            model.AddHint(b.starts[v], sched.starts[v])
        opts = b.choice[v]
        if len(opts) > 1:
            for k, lit in opts:
                model.AddHint(lit, int(sched.agents[v] == k))
    model.AddHint(b.makespan, sched.makespan)
