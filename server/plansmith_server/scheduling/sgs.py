"""Serial schedule generation scheme (SGS) and forward-backward improvement.

The serial SGS takes activities one by one in a precedence-feasible list and starts each
at the earliest time where its predecessors are done and its resources (and one eligible
agent) are free. Run on the reversed network it builds right-justified schedules, which
is what forward-backward improvement (justification) alternates with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .compiled import CompiledProblem
from .profile import Profile

#: Activities placed between two calls of a pass's `interrupted` check.
CHECK_EVERY = 256


class PassInterrupted(Exception):
    """A schedule generation pass was abandoned (its `interrupted` check said so)."""


@dataclass
class IntSchedule:
    """A schedule in integer units over the compiled problem's indices."""

    starts: list[int]
    agents: list[int]  # -1 when the activity needs no agent
    makespan: int

    def loads(self, cp: CompiledProblem) -> list[int]:
        """Busy units per agent."""
        load = [0] * len(cp.agent_ids)
        for v, k in enumerate(self.agents):
            if k >= 0:
                load[k] += cp.dur[v]
        return load


def serial_sgs(
    cp: CompiledProblem,
    order: Sequence[int],
    *,
    backward: bool = False,
    horizon: int = 0,
    interrupted: Callable[[], bool] | None = None,
) -> IntSchedule:
    """Builds a schedule from an activity list.

    Args:
        cp: The compiled problem.
        order: All activities, precedence-feasible in the direction of the pass (for a
            backward pass: every activity after its successors). Fixed activities in it
            are skipped: they are placed first, at their fixed starts.
        backward: Schedule the reversed network; returned starts are then in reversed
            time (distance from the end) and must be mirrored by the caller.
        horizon: For a backward pass, the forward makespan used to mirror fixed
            activities.
        interrupted: Asked every :data:`CHECK_EVERY` activities; when it says so the
            pass is abandoned (one pass over 10,000 activities can take most of a
            second, too long to overrun a deadline by).

    Returns:
        Starts (in the pass's time direction), agents and makespan.

    Raises:
        PassInterrupted: `interrupted` returned true.
    """
    n = cp.n
    dur = cp.dur
    links = cp.succs if backward else cp.preds
    res_prof = [Profile(c) for c in cp.capacities]
    agent_prof = [Profile(1) for _ in cp.agent_ids]
    load = [0] * len(cp.agent_ids)
    starts = [0] * n
    ends = [0] * n
    agents = [-1] * n
    demands = cp.demands
    options = cp.agent_options
    fixed = cp.fixed
    fixed_agents = cp.fixed_agents

    def reserve(v: int, t: int, k: int) -> None:
        d = dur[v]
        for r, q in demands[v]:
            res_prof[r].add(t, d, q)
        if k >= 0:
            agent_prof[k].add(t, d, 1)
            load[k] += d
        starts[v] = t
        ends[v] = t + d
        agents[v] = k

    has_fixed = False
    for v in range(n):
        fx = fixed[v]
        if fx is None:
            continue
        has_fixed = True
        t = (horizon - fx - dur[v]) if backward else fx
        k = -1
        if fixed_agents[v] >= 0:
            k = fixed_agents[v]  # chosen for all fixed activities together (compile_problem)
        elif options[v]:
            # Keep the first agent free at the fixed time (least loaded on ties).
            best = None
            for a in options[v]:
                if agent_prof[a].earliest(t, dur[v], 1) == t and (
                    best is None or load[a] < load[best]
                ):
                    best = a
            k = best if best is not None else options[v][0]
        reserve(v, t, k)

    countdown = CHECK_EVERY
    for v in order:
        if has_fixed and fixed[v] is not None:
            continue
        if interrupted is not None:
            countdown -= 1
            if not countdown:
                countdown = CHECK_EVERY
                if interrupted():
                    raise PassInterrupted
        t = 0
        for p in links[v]:
            e = ends[p]
            if e > t:
                t = e
        d = dur[v]
        if d == 0:
            k = -1
            if options[v]:
                k = min(options[v], key=lambda a: (load[a], a))
            starts[v] = t
            ends[v] = t
            agents[v] = k
            continue
        dv = demands[v]
        opts = options[v]
        if not opts:
            while True:
                t0 = t
                for r, q in dv:
                    t = res_prof[r].earliest(t, d, q)
                if t == t0:
                    break
            reserve(v, t, -1)
            continue
        best_t = -1
        best_k = -1
        for a in opts:
            prof = agent_prof[a]
            ta = t
            while True:
                t0 = ta
                for r, q in dv:
                    ta = res_prof[r].earliest(ta, d, q)
                ta = prof.earliest(ta, d, 1)
                if ta == t0:
                    break
            if best_k < 0 or ta < best_t or (ta == best_t and load[a] < load[best_k]):
                best_t = ta
                best_k = a
        reserve(v, best_t, best_k)

    makespan = max(ends, default=0)
    return IntSchedule(starts, agents, makespan)


def mirror(cp: CompiledProblem, rev: IntSchedule) -> IntSchedule:
    """Converts a backward-pass schedule to forward time."""
    T = rev.makespan
    starts = [T - rev.starts[v] - cp.dur[v] for v in range(cp.n)]
    return IntSchedule(starts, rev.agents, T)


def forward_backward(
    cp: CompiledProblem,
    sched: IntSchedule,
    topo_pos: Sequence[int],
    *,
    max_rounds: int = 4,
    interrupted: Callable[[], bool] | None = None,
) -> tuple[IntSchedule, int]:
    """Forward-backward improvement (double justification).

    Alternately right-justifies the schedule (activities in order of decreasing finish
    time on the reversed network) and left-justifies it again (increasing start time of
    the right-justified schedule). The forward pass always yields a valid schedule; the
    backward one only provides the order.

    Args:
        cp: The compiled problem.
        sched: A forward schedule.
        topo_pos: Position of each activity in a topological order (tie-breaker that
            keeps zero-duration chains precedence-feasible).
        max_rounds: Maximum number of backward+forward rounds.
        interrupted: See :func:`serial_sgs`.

    Returns:
        The best forward schedule found and the number of SGS passes used.

    Raises:
        PassInterrupted: `interrupted` returned true.
    """
    best = sched
    passes = 0
    dur = cp.dur
    n = cp.n
    for _ in range(max_rounds):
        s = best.starts
        order_b = sorted(range(n), key=lambda v: (-(s[v] + dur[v]), -s[v], -topo_pos[v]))
        rev = serial_sgs(cp, order_b, backward=True, horizon=best.makespan, interrupted=interrupted)
        rs = rev.starts
        order_f = sorted(range(n), key=lambda v: (-(rs[v] + dur[v]), -rs[v], topo_pos[v]))
        fwd = serial_sgs(cp, order_f, interrupted=interrupted)
        passes += 2
        if fwd.makespan < best.makespan:
            best = fwd
        else:
            if fwd.makespan == best.makespan:
                best = fwd
            break
    return best, passes
