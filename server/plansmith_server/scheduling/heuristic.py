"""Pure-Python scheduler: priority rules, sampling and forward-backward improvement.

Works without OR-Tools. Phases:

1. Every priority rule (LFT, LST, MTS, GRPW, MSLK, GRD, SPT) builds one list, scheduled
   by the serial SGS and improved by forward-backward improvement (FBI).
2. A population of the best rule list, any given schedules and regret-biased random
   samples on LFT, each justified by FBI.
3. Until the iteration cap or the time limit: a genetic algorithm on activity lists
   (two-point crossover, adjacent-swap mutation, children justified by FBI, elitist
   survival of distinct schedules).

It stops early when the makespan meets the lower bound. With the same seed and an
iteration cap that is reached before the time limit, the result is identical run to run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence

from .compiled import CompiledProblem, compile_problem
from .model import Goal, ScheduleResult, SchedulingProblem, SolverStats
from .priority_rules import list_from_keys, regret_biased_list, rule_keys
from .result import build_result, int_schedule
from .sgs import IntSchedule, PassInterrupted, forward_backward, serial_sgs
from .stop import StopToken

DEFAULT_MAX_ITERATIONS = 5000


def _score(sched: IntSchedule, cp: CompiledProblem, goals: Sequence[Goal]) -> tuple[int, ...]:
    """Lexicographic score of a schedule under the goals (lower is better)."""
    key: list[int] = []
    loads: list[int] | None = None
    for g in goals:
        if g is Goal.MINIMIZE_DURATION:
            key.append(sched.makespan)
        elif g is Goal.BALANCE_WORKLOAD:
            if loads is None:
                loads = sched.loads(cp)
            if loads:
                key.append(max(loads))
                key.append(-min(loads))
    if Goal.MINIMIZE_DURATION not in goals:
        key.append(sched.makespan)
    return tuple(key)


class HeuristicScheduler:
    """Serial-SGS based heuristic (see module docstring).

    Args:
        max_iterations: Cap on schedules generated (SGS passes); makes runs
            deterministic when reached before the time limit.
        fbi_rounds: Forward-backward rounds per sample.
    """

    name = "heuristic"

    def __init__(
        self,
        max_iterations: int = DEFAULT_MAX_ITERATIONS,
        fbi_rounds: int = 1,
        population: int = 40,
        mutation_rate: float = 0.05,
    ) -> None:
        self.max_iterations = max_iterations
        self.fbi_rounds = fbi_rounds
        self.population = population
        self.mutation_rate = mutation_rate

    def solve(
        self,
        problem: SchedulingProblem,
        *,
        time_limit_s: float = 10.0,
        seed: int = 0,
        goals: Sequence[Goal] = (Goal.MINIMIZE_DURATION,),
        stop: StopToken | None = None,
        initial: Sequence[ScheduleResult] = (),
    ) -> ScheduleResult:
        """Schedules the problem.

        Args:
            problem: The problem.
            time_limit_s: Wall-clock budget for the whole call (compiling included).
            seed: Seed of the random sampling.
            goals: Goals in priority order.
            stop: Once stopped, the search ends within a few hundred activities of the
                schedule under way.
            initial: Schedules of the problem to start from (e.g. the current plan's):
                the result is never worse than the best of them, and with one the search
                may end at the deadline before it has made a schedule of its own.
                Without, its first schedule is always completed, deadline or not.

        Returns:
            The best schedule found.
        """
        t0 = time.perf_counter()
        cp = compile_problem(problem)
        given = [s for s in (int_schedule(cp, r) for r in initial) if s is not None]
        sched, iters = self.solve_compiled(
            cp,
            time_limit_s=time_limit_s,
            seed=seed,
            goals=goals,
            t0=t0,
            stop=stop,
            initial=given,
        )
        stats = SolverStats(
            solver=self.name,
            status="FEASIBLE",
            wall_time_s=time.perf_counter() - t0,
            objective=cp.to_hours(sched.makespan),
            iterations=iters,
        )
        result = build_result(cp, sched, stats, goals=goals)
        if result.optimal:
            result = _with_status(result, "OPTIMAL")
        return result

    def solve_compiled(
        self,
        cp: CompiledProblem,
        *,
        time_limit_s: float,
        seed: int,
        goals: Sequence[Goal],
        t0: float | None = None,
        initial: Sequence[IntSchedule] = (),
        stop: StopToken | None = None,
    ) -> tuple[IntSchedule, int]:
        """Core loop on a compiled problem; returns the best schedule and SGS passes.

        ``initial`` schedules (e.g. from CP-SAT) join the first population; the result is
        never worse than the best of them.
        """
        start = time.perf_counter() if t0 is None else t0
        deadline = start + time_limit_s
        goals = tuple(goals) or (Goal.MINIMIZE_DURATION,)
        rng = random.Random(seed)
        lb = max(cp.critical_path_bound(), cp.resource_bound())
        topo_pos = [0] * cp.n
        for i, v in enumerate(cp.topo):
            topo_pos[v] = i
        # Meeting the bound ends the search only when the makespan is all we care for.
        can_stop_at_lb = goals[0] is Goal.MINIMIZE_DURATION and len(goals) == 1

        best: IntSchedule | None = None
        best_key: tuple[int, ...] = ()
        best_order: list[int] = []
        iters = 0

        def consider(
            s: IntSchedule, k: tuple[int, ...] | None = None, order: list[int] | None = None
        ) -> bool:
            """Keeps `s` if it beats the best; `k` and `order` if already computed."""
            nonlocal best, best_key, best_order
            if k is None:
                k = _score(s, cp, goals)
            if best is None or k < best_key:
                best, best_key = s, k
                best_order = _order_of(s, cp, topo_pos) if order is None else order
                return True
            return False

        def out_of_time() -> bool:
            return (stop is not None and stop.stopped) or time.perf_counter() >= deadline

        def done() -> bool:
            if can_stop_at_lb and best is not None and best.makespan <= lb:
                return True
            return iters >= self.max_iterations or out_of_time()

        def cut() -> Callable[[], bool] | None:
            """A pass may be abandoned at the deadline once there is a schedule to
            return; the first one always completes."""
            return out_of_time if best is not None else None

        # Given schedules first: with one, even the first pass can be abandoned.
        for init in initial:
            consider(init)

        def evaluate(order: list[int]) -> tuple[tuple[int, ...], list[int], IntSchedule]:
            nonlocal iters
            s = serial_sgs(cp, order, interrupted=out_of_time)
            iters += 1
            if self.fbi_rounds:
                s, p = forward_backward(
                    cp, s, topo_pos, max_rounds=self.fbi_rounds, interrupted=out_of_time
                )
                iters += p
            # The justified schedule's start order reproduces it and is what children
            # inherit (as in Valls et al.'s justification GA).
            k, order = _score(s, cp, goals), _order_of(s, cp, topo_pos)
            consider(s, k, order)
            return k, order, s

        keys = rule_keys(cp)
        try:
            for name in ("LFT", "LST", "MTS", "GRPW", "MSLK", "GRD", "SPT"):
                s = serial_sgs(cp, list_from_keys(cp, keys[name]), interrupted=cut())
                iters += 1
                consider(s)
                if self.fbi_rounds:
                    s, p = forward_backward(
                        cp, s, topo_pos, max_rounds=self.fbi_rounds, interrupted=cut()
                    )
                    iters += p
                    consider(s)
                if done():
                    break
            assert best is not None
            lft = [k[0] for k in keys["LFT"]]
            pop_size = self.population
            # Initial population: given schedules, the best rule list and regret-biased
            # LFT samples.
            population = [(best_key, best_order, best)]
            for init in initial:
                population.append(evaluate(_order_of(init, cp, topo_pos)))
            while len(population) < pop_size and not done():
                population.append(evaluate(regret_biased_list(cp, lft, rng)))
            # Genetic algorithm: two-point crossover on activity lists (Hartmann 1998),
            # adjacent-swap mutation, children justified by FBI, elitist survival.
            n = cp.n
            while not done() and len(population) >= 2 and n > 1:
                rng.shuffle(population)
                children = []
                for i in range(0, len(population) - 1, 2):
                    if done():
                        break
                    mother, father = population[i][1], population[i + 1][1]
                    q1 = rng.randrange(n)
                    q2 = rng.randrange(q1, n + 1)
                    for a, b in ((mother, father), (father, mother)):
                        child = _two_point_crossover(a, b, q1, q2)
                        _mutate(child, cp, rng, self.mutation_rate)
                        children.append(evaluate(child))
                        if done():
                            break
                merged = sorted(population + children, key=lambda x: x[0])
                population = []
                seen: set[tuple[int, ...]] = set()
                for ind in merged:
                    sig = tuple(ind[2].starts)
                    if sig in seen:
                        continue
                    seen.add(sig)
                    population.append(ind)
                    if len(population) == pop_size:
                        break
                if len(population) < 2:
                    population.append(evaluate(regret_biased_list(cp, lft, rng)))
        except PassInterrupted:
            pass
        assert best is not None
        return best, iters


def _two_point_crossover(
    mother: Sequence[int], father: Sequence[int], q1: int, q2: int
) -> list[int]:
    """Mother's first q1 activities, father's next ones (his order), the rest mother's.

    Keeps precedence feasibility: each part preserves a feasible relative order.
    """
    child = list(mother[:q1])
    taken = set(child)
    for v in father:
        if len(child) >= q2:
            break
        if v not in taken:
            child.append(v)
            taken.add(v)
    for v in mother:
        if v not in taken:
            child.append(v)
            taken.add(v)
    return child


def _mutate(order: list[int], cp: CompiledProblem, rng: random.Random, rate: float) -> None:
    """Swaps neighbours with probability ``rate`` when no precedence links them."""
    for i in range(len(order) - 1):
        if rng.random() < rate:
            a, b = order[i], order[i + 1]
            if a not in cp.preds[b]:
                order[i], order[i + 1] = b, a


def _order_of(s: IntSchedule, cp: CompiledProblem, topo_pos: Sequence[int]) -> list[int]:
    """Activity list that reproduces a schedule: by start, zero-length chains by topology."""
    return sorted(range(cp.n), key=lambda v: (s.starts[v], topo_pos[v]))


def _with_status(result: ScheduleResult, status: str) -> ScheduleResult:
    from dataclasses import replace

    return replace(result, stats=replace(result.stats, status=status))
