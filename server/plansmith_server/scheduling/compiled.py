"""Index-based integer form of a :class:`SchedulingProblem` shared by both solvers.

Compiling validates the input, converts hours to integer units, finds the activities no
agent can do (and everything depending on them) and checks that fixed starts can hold.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import cast

from plansmith_server.graph import topological_order

from .errors import InfeasibleProblemError, InvalidProblemError
from .model import SchedulingProblem, UnschedulableActivity

MAX_UNITS = 2**62
"""Times beyond this many units are refused: CP-SAT works in 64-bit integers."""


def hours_to_units(hours: float, resolution: float, *, positive: bool = False) -> int:
    """Converts hours to integer units; ``positive`` keeps non-zero durations >= 1 unit.

    Raises:
        InvalidProblemError: The time does not fit the solvers' integers (or is not a
            number).
    """
    scaled = hours * resolution
    if not abs(scaled) <= MAX_UNITS:  # also catches inf and nan
        raise InvalidProblemError(f"{hours} hours is out of range")
    units = round(scaled)
    if positive and hours > 0 and units == 0:
        # A tiny but real duration must still take time, or precedences would collapse.
        units = 1
    return units


@dataclass
class CompiledProblem:
    """The schedulable part of a problem with integer times and index references.

    Attributes:
        problem: The source problem.
        ids: Ids of schedulable activities; index ``i`` refers to ``ids[i]``.
        index: Inverse of ``ids``.
        dur: Durations in units.
        preds: Predecessor indices.
        succs: Successor indices.
        demands: ``(resource index, units)`` pairs with positive units.
        capacities: Capacity per general resource.
        agent_ids: Agents of the problem; agent ``k`` is ``agent_ids[k]``.
        agent_options: Eligible agent indices per activity; ``()`` when none is needed.
        fixed: Fixed start in units or ``None``.
        fixed_agents: For a fixed activity needing an agent, the agent it keeps for its
            whole run (a valid choice for all fixed activities together); else -1.
        topo: A topological order of the activities.
        unschedulable: Activities left out, with reasons.
        resolution: Units per hour.
    """

    problem: SchedulingProblem
    ids: list[str]
    index: dict[str, int]
    dur: list[int]
    preds: list[list[int]]
    succs: list[list[int]]
    demands: list[list[tuple[int, int]]]
    capacities: list[int]
    agent_ids: list[str]
    agent_options: list[tuple[int, ...]]
    fixed: list[int | None]
    topo: list[int]
    unschedulable: list[UnschedulableActivity]
    resolution: float
    fixed_agents: list[int] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Number of schedulable activities."""
        return len(self.ids)

    def to_hours(self, units: float) -> float:
        """Converts integer units back to hours."""
        return units / self.resolution

    def heads(self) -> list[int]:
        """Earliest starts ignoring resources (fixed starts act as exact starts)."""
        es = [0] * self.n
        for v in self.topo:
            t = 0
            for p in self.preds[v]:
                f = es[p] + self.dur[p]
                if f > t:
                    t = f
            fx = self.fixed[v]
            es[v] = fx if fx is not None and fx > t else t
        return es

    def tails(self) -> list[int]:
        """Longest path from each activity's start to the end, including its duration."""
        tail = [0] * self.n
        for v in reversed(self.topo):
            t = 0
            for s in self.succs[v]:
                if tail[s] > t:
                    t = tail[s]
            tail[v] = t + self.dur[v]
        return tail

    def critical_path_bound(self) -> int:
        """Makespan lower bound from precedences and fixed starts only."""
        es = self.heads()
        return max((es[v] + self.dur[v] for v in range(self.n)), default=0)

    def resource_bound(self) -> int:
        """Makespan lower bound from energy: total demand over capacity per resource.

        Covers general resources, every single agent (work only it can do) and the whole
        agent pool (all agent work over the number of agents).
        """
        best = 0
        energy = [0] * len(self.capacities)
        for v in range(self.n):
            for r, q in self.demands[v]:
                energy[r] += q * self.dur[v]
        for r, cap in enumerate(self.capacities):
            if cap > 0:
                best = max(best, -(-energy[r] // cap))
        per_agent = [0] * len(self.agent_ids)
        pool_work = 0
        users: set[int] = set()
        for v in range(self.n):
            opts = self.agent_options[v]
            if not opts:
                continue
            pool_work += self.dur[v]
            users.update(opts)
            if len(opts) == 1:
                per_agent[opts[0]] += self.dur[v]
        best = max(best, max(per_agent, default=0))
        if users:
            best = max(best, -(-pool_work // len(users)))
        return best


def compile_problem(problem: SchedulingProblem) -> CompiledProblem:
    """Validates and compiles a problem.

    Raises:
        InvalidProblemError: Duplicate/unknown ids, negative durations or demands.
        DependencyCycleError: The precedences have a cycle.
        InfeasibleProblemError: A demand exceeds its capacity, or fixed starts conflict.
    """
    res = float(problem.time_resolution)
    if not res > 0:
        raise InvalidProblemError("time_resolution must be positive")
    acts = problem.activities
    all_index: dict[str, int] = {}
    for i, a in enumerate(acts):
        if a.id in all_index:
            raise InvalidProblemError(f"duplicate activity id {a.id!r}")
        if not (a.duration >= 0 and math.isfinite(a.duration)):
            raise InvalidProblemError(f"activity {a.id!r} has invalid duration {a.duration}")
        if a.fixed_start is not None and not math.isfinite(a.fixed_start):
            raise InvalidProblemError(f"activity {a.id!r} has invalid fixed start {a.fixed_start}")
        all_index[a.id] = i
    res_index = {r.id: k for k, r in enumerate(problem.resources)}
    if len(res_index) != len(problem.resources):
        raise InvalidProblemError("duplicate resource id")
    agent_index = {g: k for k, g in enumerate(problem.agents)}
    if len(agent_index) != len(problem.agents):
        raise InvalidProblemError("duplicate agent id")

    all_preds: list[list[int]] = []
    for a in acts:
        ps = []
        for pred_id in a.predecessors:
            if pred_id not in all_index:
                raise InvalidProblemError(f"activity {a.id!r} depends on unknown {pred_id!r}")
            ps.append(all_index[pred_id])
        all_preds.append(sorted(set(ps)))
    order = topological_order(all_preds, [a.id for a in acts])

    conflicts: list[str] = []
    # Root causes: activities that need an agent but have none to choose from.
    options_all: list[tuple[int, ...]] = []
    root_reason: dict[int, str] = {}
    for i, a in enumerate(acts):
        for rid, q in a.demands.items():
            if rid not in res_index:
                raise InvalidProblemError(f"activity {a.id!r} uses unknown resource {rid!r}")
            if q < 0:
                raise InvalidProblemError(f"activity {a.id!r} has negative demand on {rid!r}")
            if q > problem.resources[res_index[rid]].capacity:
                conflicts.append(
                    f"activity {a.id!r} needs {q} of {rid!r}, capacity is "
                    f"{problem.resources[res_index[rid]].capacity}"
                )
        if not a.needs_agent:
            options_all.append(())
            continue
        if a.pinned_agent is not None:
            if a.pinned_agent in agent_index:
                options_all.append((agent_index[a.pinned_agent],))
            else:
                options_all.append(())
                root_reason[i] = f"pinned agent {a.pinned_agent!r} is not available"
            continue
        pool = (
            problem.agents
            if a.eligible_agents is None
            else [g for g in problem.agents if g in a.eligible_agents]
        )
        options_all.append(tuple(agent_index[g] for g in pool))
        if not pool:
            root_reason[i] = "no agent can do this activity"
    if conflicts:
        raise InfeasibleProblemError(conflicts)

    # Propagate: anything depending on an unschedulable activity cannot run either.
    blocked_by: dict[int, set[int]] = {}
    for v in order:
        causes: set[int] = set()
        for p in all_preds[v]:
            if p in root_reason:
                causes.add(p)
            causes |= blocked_by.get(p, set())
        if causes and v not in root_reason:
            blocked_by[v] = causes
    unschedulable: list[UnschedulableActivity] = []
    for v in order:
        if v in root_reason:
            unschedulable.append(UnschedulableActivity(acts[v].id, root_reason[v]))
        elif v in blocked_by:
            roots = tuple(sorted(acts[c].id for c in blocked_by[v]))
            unschedulable.append(
                UnschedulableActivity(
                    acts[v].id, "depends on unschedulable " + ", ".join(roots), roots
                )
            )

    keep = [i for i in range(len(acts)) if i not in root_reason and i not in blocked_by]
    new_of = {old: new for new, old in enumerate(keep)}
    ids = [acts[i].id for i in keep]
    dur = [hours_to_units(acts[i].duration, res, positive=True) for i in keep]
    preds = [[new_of[p] for p in all_preds[i]] for i in keep]
    succs: list[list[int]] = [[] for _ in keep]
    for v, ps in enumerate(preds):
        for p in ps:
            succs[p].append(v)
    demands = [
        [(res_index[rid], q) for rid, q in sorted(acts[i].demands.items()) if q > 0] for i in keep
    ]
    fixed = [
        None if (fixed_at := acts[i].fixed_start) is None else hours_to_units(fixed_at, res)
        for i in keep
    ]
    topo = [new_of[v] for v in order if v in new_of]
    cp = CompiledProblem(
        problem=problem,
        ids=ids,
        index={a: k for k, a in enumerate(ids)},
        dur=dur,
        preds=preds,
        succs=succs,
        demands=demands,
        capacities=[r.capacity for r in problem.resources],
        agent_ids=list(problem.agents),
        agent_options=[options_all[i] for i in keep],
        fixed=fixed,
        topo=topo,
        unschedulable=unschedulable,
        resolution=res,
    )
    _check_fixed(cp)
    return cp


def _check_fixed(cp: CompiledProblem) -> None:
    """Rejects fixed starts that cannot hold whatever the solver does.

    Detected: negative fixed starts; fixed activities after a predecessor that can end
    late (one not fixed and not a zero-duration chain of fixed ones) or that does end
    after their start; fixed activities overlapping on their only possible agent; fixed
    activities running at once that need more of a general resource than its capacity,
    or more agents than can be matched to them at that instant; and fixed activities
    that cannot each keep one agent for their whole run (decided exactly, see
    `_keep_agents`). Sets `cp.fixed_agents` to a valid choice otherwise, which the
    schedule generation keeps (choosing greedily, it could put two on one agent).
    """
    conflicts: list[str] = []
    # A fixed activity's predecessors must not be able to end late: only fixed or
    # zero-duration chains of fixed ones are allowed before it.
    movable: list[bool] = [False] * cp.n
    for v in cp.topo:
        fx = cp.fixed[v]
        if fx is None:
            movable[v] = cp.dur[v] > 0 or any(movable[p] for p in cp.preds[v])
        if fx is not None:
            if fx < 0:
                conflicts.append(f"{cp.ids[v]!r} has a negative fixed start")
            for p in cp.preds[v]:
                if cp.fixed[p] is None and movable[p]:
                    conflicts.append(
                        f"fixed activity {cp.ids[v]!r} depends on unfixed {cp.ids[p]!r}"
                    )
    if not conflicts:
        es = cp.heads()
        for v in range(cp.n):
            fx = cp.fixed[v]
            if fx is not None and es[v] > fx:
                conflicts.append(f"fixed activity {cp.ids[v]!r} starts before its predecessors end")
    running = [v for v in range(cp.n) if cp.fixed[v] is not None and cp.dur[v] > 0]
    start = {v: cp.fixed[v] or 0 for v in running}
    end = {v: start[v] + cp.dur[v] for v in running}
    # Fixed activities with a single possible agent must not overlap on that agent.
    by_agent: dict[int, list[int]] = {}
    for v in running:
        if len(cp.agent_options[v]) == 1:
            by_agent.setdefault(cp.agent_options[v][0], []).append(v)
    single_overlap = False
    for k, vs in by_agent.items():
        vs.sort(key=lambda v: (start[v], v))
        for i, a in enumerate(vs):
            for j in range(i + 1, len(vs)):
                b = vs[j]
                if start[b] >= end[a]:
                    break  # sorted by start: no later one overlaps a either
                single_overlap = True
                conflicts.append(
                    f"fixed activities {cp.ids[a]!r} and {cp.ids[b]!r} overlap on agent "
                    f"{cp.agent_ids[k]!r}"
                )
    sweep = _fixed_overlaps(cp, running, start, end, check_agents=not single_overlap)
    conflicts += sweep.conflicts
    if conflicts:
        raise InfeasibleProblemError(conflicts)
    cp.fixed_agents = [-1] * cp.n
    if sweep.moved:
        _keep_agents(cp, running, start, end)
    else:  # no activity changed agent after it started: the sweep's choice holds
        for v, k in sweep.agents.items():
            cp.fixed_agents[v] = k


@dataclass
class _Sweep:
    conflicts: list[str]
    agents: dict[int, int]  # fixed activity -> the agent it held when it ended
    moved: bool  # an activity had to change agent after it had started


def _fixed_overlaps(
    cp: CompiledProblem,
    running: list[int],
    start: dict[int, int],
    end: dict[int, int],
    *,
    check_agents: bool,
) -> _Sweep:
    """Capacity and agent-pool conflicts among fixed activities, swept in time order.

    At each instant a fixed activity starts, the fixed activities running then must fit
    every general resource's capacity and must be matchable to distinct eligible agents
    (an augmenting path per start keeps a maximum matching; the first start that finds
    none is reported, with the activities whose agents are all taken).
    """
    out: list[str] = []
    seen: set[tuple[int, frozenset[int]]] = set()
    usage = [0] * len(cp.capacities)
    active: set[int] = set()
    owner: dict[int, int] = {}  # agent index -> activity holding it
    agent_of: dict[int, int] = {}
    held: dict[int, int] = {}
    moved = False
    # Ends before starts at the same instant: the intervals are half-open.
    events = sorted([(end[v], 0, v) for v in running] + [(start[v], 1, v) for v in running])
    for i, (t, is_start, v) in enumerate(events):
        if not is_start:
            active.discard(v)
            for r, q in cp.demands[v]:
                usage[r] -= q
            k = agent_of.pop(v, None)
            if k is not None:
                del owner[k]
                held[v] = k
            continue
        active.add(v)
        for r, q in cp.demands[v]:
            usage[r] += q
        if check_agents and cp.agent_options[v]:
            found, visited, shifted = _augment(cp, v, owner, agent_of)
            moved = moved or any(start[u] < t for u in shifted)
            if not found:
                check_agents = False  # one report: the rest would repeat it
                names = ", ".join(repr(cp.ids[u]) for u in sorted(visited, key=cp.ids.__getitem__))
                able = sorted({cp.agent_ids[k] for u in visited for k in cp.agent_options[u]})
                out.append(
                    f"fixed activities {names} run at once at hour {cp.to_hours(t):g} but only "
                    f"{len(able)} agents can do them ({', '.join(map(repr, able))})"
                )
        if i + 1 < len(events) and events[i + 1][:2] == (t, 1):
            continue  # check capacities once every activity starting at t has started
        for r, cap in enumerate(cp.capacities):
            if usage[r] > cap:
                users = frozenset(u for u in active if any(rr == r for rr, _ in cp.demands[u]))
                if (r, users) not in seen:
                    seen.add((r, users))
                    names = ", ".join(
                        repr(cp.ids[u]) for u in sorted(users, key=cp.ids.__getitem__)
                    )
                    out.append(
                        f"fixed activities {names} need {usage[r]} of "
                        f"{cp.problem.resources[r].id!r} at hour {cp.to_hours(t):g}, capacity "
                        f"is {cap}"
                    )
    return _Sweep(out, held, moved)


def _augment(
    cp: CompiledProblem, v: int, owner: dict[int, int], agent_of: dict[int, int]
) -> tuple[bool, set[int], list[int]]:
    """Finds an agent for ``v``: a free one if it can, else by moving others along an
    alternating path (breadth first, without recursion).

    Returns whether it found one, the activities the search reached, and those that
    changed agent.
    """
    options = cp.agent_options
    for k in options[v]:
        if k not in owner:
            owner[k] = v
            agent_of[v] = k
            return True, {v}, []
    wanted_by: dict[int, int] = {}  # agent -> the activity that would take it
    visited = {v}
    queue = deque([v])
    while queue:
        u = queue.popleft()
        for k in options[u]:
            if k in wanted_by:
                continue
            wanted_by[k] = u
            w = owner.get(k)
            if w is None:  # a free agent at the end of the path: shift along it
                shifted: list[int] = []
                while True:
                    u = wanted_by[k]
                    previous = agent_of.get(u)
                    owner[k] = u
                    agent_of[u] = k
                    if u == v:
                        return True, visited, shifted
                    shifted.append(u)
                    assert previous is not None
                    k = previous
            if w not in visited:
                visited.add(w)
                queue.append(w)
    return False, visited, []


def _keep_agents(
    cp: CompiledProblem, running: list[int], start: dict[int, int], end: dict[int, int]
) -> None:
    """Chooses for each fixed activity an agent it keeps for its whole run, no agent doing
    two at once, or raises `InfeasibleProblemError`. Exact (a small CP-SAT model over the
    fixed activities alone): with agents eligible per activity this is list colouring of
    intervals, which no greedy choice decides."""
    try:
        from ortools.sat.python import cp_model
    except ImportError:  # the heuristic runs without OR-Tools: it then chooses greedily
        return

    chosen = [v for v in running if cp.agent_options[v]]
    model = cp_model.CpModel()
    pick: dict[tuple[int, int], cp_model.IntVar] = {}
    by_agent: dict[int, list[cp_model.IntervalVar]] = {}
    for v in chosen:
        lits = []
        for k in cp.agent_options[v]:
            lit = model.NewBoolVar(f"x{v}_{k}")
            pick[v, k] = lit
            lits.append(lit)
            by_agent.setdefault(k, []).append(
                model.NewOptionalFixedSizeIntervalVar(start[v], cp.dur[v], lit, f"i{v}_{k}")
            )
        model.AddExactlyOne(lits)
    for intervals in by_agent.values():
        if len(intervals) > 1:
            model.AddNoOverlap(intervals)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = 10.0
    status = cast(int, solver.Solve(model))  # ortools types the enum's class; it's a value
    if status == cp_model.INFEASIBLE:
        shown = sorted(cp.ids[v] for v in chosen)
        names = ", ".join(map(repr, shown[:10])) + (", ..." if len(shown) > 10 else "")
        raise InfeasibleProblemError(
            [
                f"fixed activities {names} cannot each keep one agent for their whole run "
                "(an agent does one at a time)"
            ]
        )
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        for (v, k), lit in pick.items():
            if solver.Value(lit):
                cp.fixed_agents[v] = k
    # Undecided within the time limit: the schedule generation chooses greedily.
