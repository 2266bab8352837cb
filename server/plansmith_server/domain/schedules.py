"""Schedule optimization, plan analysis and next-task suggestions over stored plans: the
PlanningService's second half. The algorithms live in `plansmith_server.scheduling`
(pure); this module reads the plan, maps it to their input, runs them off the event loop,
and writes an applied schedule back in one transaction."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from plansmith_server import planning, scheduling
from plansmith_server.domain import validation as val
from plansmith_server.domain.codec import FunctionCodec
from plansmith_server.domain.graph import find_schedule_cycle, parent_loops
from plansmith_server.domain.models import (
    AnalysisKind,
    ChangeRecord,
    Plan,
    PlanStatus,
    ReplanRecord,
    ReplanState,
    Schedule,
    ScheduleConstraint,
    Task,
    TaskStatus,
    Unrecognized,
)
from plansmith_server.domain.mutations import NO_MUTATION, Applied, Mutation, Writing
from plansmith_server.domain.plans import Plans, require_plan
from plansmith_server.domain.policy import ReplanDecision
from plansmith_server.domain.store import ReadTx
from plansmith_server.errors import (
    EtagMismatchError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    PreconditionViolation,
    some_ids,
)
from plansmith_server.scheduling import Goal, PlanTask
from plansmith_server.telemetry import Telemetry

DEFAULT_TIME_LIMIT, MAX_TIME_LIMIT = 5.0, 60.0
DEFAULT_SAMPLES, MAX_SAMPLES = 10_000, 100_000
MAX_SAMPLED_TASKS = 20_000_000
"""Samples x tasks of one AnalyzePlan: bounds its CPU time (docs/performance.md)."""
MIN_DEFAULT_SAMPLES = 1_000
MAX_EXPANDED_EDGES = 1_000_000
"""Dependencies once those on summary tasks are spread over their subtasks (see
`build_snapshot`); CPM takes ~0.5 s over a million."""
MIN_SOLVER_SECONDS = 0.02
"""Less time than this left in OptimizePlan's limit: the current plan is the answer."""
DEFAULT_SUGGESTIONS, MAX_SUGGESTIONS = 3, 50

_STATUS = {
    TaskStatus.TODO: scheduling.TaskStatus.TODO,
    TaskStatus.IN_PROGRESS: scheduling.TaskStatus.IN_PROGRESS,
    TaskStatus.BLOCKED: scheduling.TaskStatus.BLOCKED,
    TaskStatus.DONE: scheduling.TaskStatus.DONE,
    TaskStatus.FAILED: scheduling.TaskStatus.FAILED,
    # Cancelled work will not be done: no time left, and it holds nobody up.
    TaskStatus.CANCELLED: scheduling.TaskStatus.DONE,
}


@dataclass(frozen=True)
class PlanSnapshot:
    """A plan's work as the algorithms see it."""

    plan: Plan
    tasks: tuple[Task, ...]
    """The schedulable tasks (summary tasks that were decomposed are left out)."""
    work: tuple[PlanTask, ...]
    agents: tuple[str, ...]
    capabilities: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Optimization:
    """What OptimizePlan returns."""

    result: scheduling.ScheduleResult
    before_hours: float
    reassignments: tuple[tuple[str, str, str], ...]
    """(task id, from agent, to agent)."""
    plan_revision: int = 0
    titles: dict[str, str] = field(default_factory=dict)
    """Task id -> title, for the tasks the result names."""
    missing: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Unschedulable task id -> its required capabilities no agent of the plan holds."""
    unscheduled_hours: float = 0.0
    """Remaining hours of the unschedulable tasks."""
    reasons: dict[str, str] = field(default_factory=dict)
    """Unschedulable task id -> why, for people."""


@dataclass(frozen=True)
class Analysis:
    """What AnalyzePlan returns; each part is None when not asked for."""

    snapshot: PlanSnapshot
    cpm: scheduling.CpmResult | None
    current: scheduling.ScheduleResult | None
    utilization: scheduling.UtilizationReport | None
    risk: scheduling.RiskReport | None
    deadline_hours: float | None
    seed: int


class Schedules:
    """The plans' schedules: optimize (and apply), analyze, suggest the next tasks."""

    def __init__(self, plans: Plans, telemetry: Telemetry | None = None) -> None:
        self.plans = plans
        self.store = plans.store
        self.mutations = plans.mutations
        self.telemetry = telemetry or Telemetry.noop()
        scheduling.preload_solver()

    async def snapshot(self, plan_id: str, *, respect_capabilities: bool = True) -> PlanSnapshot:

        def load(tx: ReadTx) -> tuple[Plan, list[Task]]:
            return require_plan(tx, plan_id), tx.plan_tasks(plan_id)

        plan, tasks = await self.store.read(load, bulk=True)
        refuse_cycles(plan_id, tasks)
        return build_snapshot(plan, tasks, respect_capabilities=respect_capabilities)

    # ---- OptimizePlan ------------------------------------------------------------------

    async def optimize(
        self,
        plan_id: str,
        *,
        goals: Sequence[Goal | Unrecognized] = (),
        constraints: Sequence[ScheduleConstraint | Unrecognized] = (),
        time_limit: float | None = None,
        apply: bool = False,
        m: Mutation = NO_MUTATION,
    ) -> Optimization:
        started = time.perf_counter()
        v = val.Violations()
        val.check_id(v, "plan_id", plan_id)
        val.check_request_id(v, m.request_id)
        for i, g in enumerate(goals):
            if isinstance(g, Unrecognized):
                v.add(
                    f"goals[{i}]",
                    f"unknown value {g.number}; expected MINIMIZE_DURATION or BALANCE_WORKLOAD",
                )
        if len(set(goals)) != len(goals):
            v.add("goals", "lists a goal twice")
        for i, c in enumerate(constraints):
            if isinstance(c, Unrecognized):
                v.add(
                    f"constraints[{i}]",
                    f"unknown value {c.number}; expected MAINTAIN_DEPENDENCIES or "
                    "RESPECT_AGENT_CAPABILITIES",
                )
        limit = DEFAULT_TIME_LIMIT if time_limit is None else time_limit
        if not math.isfinite(limit) or limit <= 0 or limit > MAX_TIME_LIMIT:
            v.add("time_limit", f"must be more than 0 and at most {MAX_TIME_LIMIT:g} seconds")
        v.raise_if_any()
        if apply:
            earlier = await self.mutations.replay("OptimizePlan", m, OPTIMIZATION_CODEC)
            if earlier is not None:
                return earlier
        respect = not constraints or ScheduleConstraint.CAPABILITIES in constraints
        snap = await self.snapshot(plan_id, respect_capabilities=respect)
        if not snap.tasks:
            raise _plan_empty(plan_id, f"plan {plan_id!r} has no tasks to schedule")
        if not snap.agents:
            raise FailedPreconditionError(
                f"plan {plan_id!r} has no agents (and no task is assigned): nobody to schedule",
                reason="PLAN_NO_AGENTS",
                violations=[
                    PreconditionViolation(
                        "PLAN_NO_AGENTS",
                        f"plans/{plan_id}",
                        "add agents to the plan (or assign its tasks) before optimizing it",
                    )
                ],
            )
        sched_goals = tuple(g for g in goals if isinstance(g, Goal)) or (
            Goal.MINIMIZE_DURATION,
            Goal.BALANCE_WORKLOAD,
        )
        result, before = await self._solve(snap, sched_goals, started + limit)
        current = {t.id: t.assigned_to for t in snap.tasks}
        moves = tuple(
            (a.activity_id, current.get(a.activity_id, ""), a.agent)
            for a in result.activities
            if a.agent and a.agent != current.get(a.activity_id, "")
        )
        opt = Optimization(result, before, moves, **_left_out(snap, result))
        if not apply:
            return opt
        return await self.apply_optimization(snap, opt, m)

    async def apply_optimization(
        self, snap: PlanSnapshot, opt: Optimization, m: Mutation = NO_MUTATION
    ) -> Optimization:
        """Writes the schedule `opt`, computed from `snap`, to the plan's tasks: agents and
        schedules in one transaction and one plan revision.

        Raises:
            NotFoundError: The plan is gone.
            EtagMismatchError: The plan or any of its tasks changed since `snap` was read
                (a task of the snapshot changed or went: names the task; otherwise the
                plan's own fields or its set of tasks changed: names the plan). Nothing is
                written then.
        """
        plan_id = snap.plan.id
        placed_by_id = opt.result.by_id()
        left_out = {u.activity_id for u in opt.result.unschedulable}

        def body(w: Writing) -> Applied[Optimization]:
            tx, ts = w.tx, w.ts
            plan = require_plan(tx, plan_id)
            updated: list[Task] = []
            for task in snap.tasks:
                stored = tx.get_task(task.id)
                if stored is None or stored.version != task.version:
                    raise EtagMismatchError("task", task.id, stored.etag if stored else "")
                if task.status in (TaskStatus.DONE, TaskStatus.CANCELLED):
                    continue
                placed = placed_by_id.get(task.id)
                if placed is None:
                    if task.id not in left_out:
                        continue
                    # Work no agent can do has no place in the new schedule: a stale one
                    # would make the stored plan run longer than the schedule returned.
                    new = replace(stored, schedule=None)
                else:
                    new = replace(
                        stored,
                        assigned_to=placed.agent or stored.assigned_to,
                        schedule=Schedule(placed.start, placed.end),
                    )
                if new != stored:
                    updated.append(replace(new, update_time=ts, version=stored.version + 1))
            # Every change of the plan or its tasks bumps its revision: one that touched
            # no task of the snapshot (agents removed, a task added or decomposed) would
            # still make the schedule wrong.
            if plan.revision != snap.plan.revision:
                raise EtagMismatchError("plan", plan_id, plan.etag)
            if not updated:
                # Nothing changes: no new revision, so applies computed meanwhile from
                # this revision (a retry, another client) are not aborted for nothing.
                return Applied(replace(opt, plan_revision=plan.revision))
            revision = w.next_revision(plan_id)
            for t in updated:
                tx.update_task(t, dependencies=False)  # agent and schedule only
            return Applied(
                replace(opt, plan_revision=revision),
                [ChangeRecord("TASK_UPDATED", "task", t.id, t.to_dict()) for t in updated],
            )

        return await self.mutations.run("OptimizePlan", m, body, OPTIMIZATION_CODEC, bulk=True)

    async def _solve(
        self, snap: PlanSnapshot, goals: tuple[Goal, ...], deadline: float
    ) -> tuple[scheduling.ScheduleResult, float]:
        """The best schedule found by `deadline` (a `time.perf_counter()` value), less
        the time answering will take, and the current plan's duration.

        The time limit bounds the whole call: the solver gets what is left once the plan
        is read and the current plan scheduled; with nothing left, the current plan is
        the answer (it is never worse than itself)."""
        start = time.perf_counter()
        with self.telemetry.tracer.start_as_current_span("planning.solver") as span:
            stop = scheduling.StopToken()

            def run() -> tuple[scheduling.ScheduleResult, float]:
                problem = scheduling.problem_from_tasks(snap.work, snap.agents)
                assignments = {t.id: t.assigned_agent for t in snap.work if t.assigned_agent}
                baseline = scheduling.current_assignment_schedule(problem, assignments)
                left = deadline - time.perf_counter() - answer_seconds(len(snap.work))
                if left < MIN_SOLVER_SECONDS:
                    why = "no time left for a solver within the time limit"
                    kept = replace(baseline, stats=replace(baseline.stats, fallback_reason=why))
                    return kept, baseline.makespan
                solver = scheduling.FallbackScheduler()
                return (
                    solver.solve(
                        problem,
                        time_limit_s=left,
                        seed=0,
                        goals=goals,
                        baseline=baseline,
                        stop=stop,
                    ),
                    baseline.makespan,
                )

            # CP-SAT and the heuristic are CPU-bound: off the event loop, on a thread a
            # cancelled call cannot interrupt; `stop` ends the search when nobody waits
            # for it any more (a caller's deadline, a cancel, a server stopping).
            try:
                result, before = await asyncio.to_thread(run)
            finally:
                stop.stop()
            span.set_attribute("plansmith.solver", result.solver)
            span.set_attribute("plansmith.solver.status", result.status.name)
        self.telemetry.solver_duration.record(
            (time.perf_counter() - start) * 1000, {"solver": result.solver}
        )
        return result, before

    # ---- AnalyzePlan -------------------------------------------------------------------

    async def analyze(
        self,
        plan_id: str,
        *,
        types: Sequence[AnalysisKind | Unrecognized] = (),
        samples: int = 0,
        deadline_hours: float = 0.0,
        seed: int = 0,
    ) -> Analysis:
        v = val.Violations()
        val.check_id(v, "plan_id", plan_id)
        for i, t in enumerate(types):
            if isinstance(t, Unrecognized):
                v.add(f"analysis_types[{i}]", f"unknown value {t.number}")
        if samples < 0 or samples > MAX_SAMPLES:
            v.add("monte_carlo_samples", f"must be between 0 and {MAX_SAMPLES}")
        if not math.isfinite(deadline_hours) or deadline_hours < 0:
            v.add("deadline_hours", "must be a finite number of hours, not negative")
        v.raise_if_any()
        wanted = {t for t in types if isinstance(t, AnalysisKind)} or set(AnalysisKind)
        snap = await self.snapshot(plan_id)
        if not snap.tasks:
            raise _plan_empty(plan_id, f"plan {plan_id!r} has no tasks")
        deadline = deadline_hours or deadline_from_constraints(snap.plan.constraints)
        n = _samples(samples, len(snap.work)) if AnalysisKind.RISK in wanted else 0
        # An int64 on the wire; numpy seeds with non-negative numbers: a negative seed is
        # taken as its unsigned 64-bit pattern (still one seed, one sequence).
        rng_seed = seed % (1 << 64)
        known: tuple[scheduling.RiskItem, ...] = ()
        if AnalysisKind.RISK in wanted and snap.plan.status == PlanStatus.ON_HOLD:
            held = await self.store.read(lambda tx: _latest_escalation(tx, plan_id), bulk=True)
            known = (_escalation_risk(held),) if held else ()
        tracer = self.telemetry.tracer
        # The simulation runs on a thread that a cancelled call cannot interrupt: it asks
        # this between chunks, so a caller that gave up stops costing CPU within one.
        stop = scheduling.StopToken()

        def run() -> Analysis:
            util = risk = None
            # Every analysis starts from the critical path; utilization, the reported
            # critical chain and the simulation's agent sequences from the current plan's
            # schedule: each is computed once.
            cpm: scheduling.CpmResult | None = scheduling.cpm_for_tasks(snap.work)
            current: scheduling.ScheduleResult | None = scheduling.schedule_current_plan(
                snap.work, snap.agents
            )
            if AnalysisKind.UTILIZATION in wanted:
                util = scheduling.analyze_utilization(
                    snap.work, snap.agents, cpm=cpm, schedule=current
                )
            if AnalysisKind.RISK in wanted:
                with tracer.start_as_current_span("planning.monte_carlo") as span:
                    span.set_attribute("plansmith.samples", n)
                    risk = scheduling.assess_risk(
                        snap.work,
                        deadline_hours=deadline,
                        samples=n,
                        seed=rng_seed,
                        top_drivers=10,
                        cpm=cpm,
                        schedule=current,
                        cancelled=lambda: stop.stopped,
                        known=known,
                    )
            if AnalysisKind.CRITICAL_PATH not in wanted:
                cpm = current = None  # not asked for: not reported
            return Analysis(snap, cpm, current, util, risk, deadline, seed)

        # CPU-bound (numpy); asyncio.to_thread carries our context, so spans nest.
        try:
            return await asyncio.to_thread(run)
        finally:
            stop.stop()  # done, failed or cancelled: nobody wants more samples

    # ---- SuggestNextTasks --------------------------------------------------------------

    async def suggest(
        self, plan_id: str, agent_id: str, count: int = 0
    ) -> tuple[PlanSnapshot, tuple[scheduling.Suggestion, ...], scheduling.CpmResult]:
        v = val.Violations()
        val.check_id(v, "plan_id", plan_id)
        val.check_id(v, "agent_id", agent_id)
        if count < 0 or count > MAX_SUGGESTIONS:
            v.add("count", f"must be between 0 and {MAX_SUGGESTIONS}")
        v.raise_if_any()
        snap = await self.snapshot(plan_id)
        if agent_id not in snap.agents:
            raise NotFoundError("agent", agent_id)
        cpm = scheduling.cpm_for_tasks(snap.work)
        # A task waiting out a retry's backoff (`not_before`) is not ready yet: offered as
        # blocked, it is left out of the suggestions but still counts on the critical path.
        now = self.mutations.clock()
        waiting = {t.id for t in snap.tasks if t.not_before > now}
        work = (
            tuple(
                replace(w, status=scheduling.TaskStatus.BLOCKED) if w.id in waiting else w
                for w in snap.work
            )
            if waiting
            else snap.work
        )
        suggestions = scheduling.suggest_next_tasks(
            work, agent_id, count or DEFAULT_SUGGESTIONS, cpm=cpm
        )
        return snap, suggestions, cpm


def _left_out(snap: PlanSnapshot, result: scheduling.ScheduleResult) -> dict[str, Any]:
    """What an Optimization says of the tasks it names: titles, and for the work left
    out the capabilities nobody has and its remaining hours."""
    named = {a.activity_id for a in result.activities}
    named.update(u.activity_id for u in result.unschedulable)
    for u in result.unschedulable:
        named.update(u.blocked_by)
    titles = {t.id: t.title for t in snap.tasks if t.id in named}
    held = {c for caps in snap.capabilities.values() for c in caps}
    required = {t.id: tuple(t.required_capabilities) for t in snap.tasks}
    missing = {}
    for u in result.unschedulable:
        if not u.blocked_by:
            gap = tuple(planning.missing_capabilities(held, required.get(u.activity_id, ())))
            if gap:
                missing[u.activity_id] = gap
    work = {w.id: w for w in snap.work}
    hours = sum(
        work[u.activity_id].remaining() for u in result.unschedulable if u.activity_id in work
    )
    reasons = {}
    for u in result.unschedulable:
        task = work.get(u.activity_id)
        if u.blocked_by:
            names = ", ".join(f"{titles[b]!r} ({b})" if titles.get(b) else b for b in u.blocked_by)
            reasons[u.activity_id] = f"depends on tasks that cannot be scheduled: {names}"
        elif u.activity_id in missing:
            reasons[u.activity_id] = "no agent of the plan holds " + ", ".join(
                missing[u.activity_id]
            )
        elif task is not None and task.eligible_agents == frozenset():
            reasons[u.activity_id] = (
                "no single agent of the plan holds all of its required capabilities"
            )
        else:
            reasons[u.activity_id] = u.reason
    return {
        "titles": titles,
        "missing": missing,
        "unscheduled_hours": hours,
        "reasons": reasons,
    }


def answer_seconds(tasks: int) -> float:
    """Time OptimizePlan keeps from its limit to turn the solver's schedule into the
    answer (result, response message): linear in the tasks, from `bench/optimize_limit.py`
    (figures in docs/performance.md), with a margin for a busy machine."""
    return 0.1 + 40e-6 * tasks


def _latest_escalation(tx: ReadTx, plan_id: str) -> ReplanRecord | None:
    """The plan's last applied escalation (what put it ON_HOLD), if any."""
    latest, after = None, 0
    while True:
        page, _ = tx.replan_records(plan_id, "", after, 1000)
        for seq, r in page:
            if r.decision == ReplanDecision.ESCALATE and r.state == ReplanState.APPLIED:
                latest = r
            after = seq
        if len(page) < 1000:
            return latest


def _escalation_risk(r: ReplanRecord) -> scheduling.RiskItem:
    return scheduling.RiskItem(
        scheduling.RiskKind.ESCALATION,
        scheduling.Severity.CRITICAL,
        f"The plan is on hold: the replanner escalated {r.task_id} ({r.reason}).",
        "People decide: remove the cause, then set the plan ACTIVE again and retry, replan "
        "or drop the task.",
        (r.task_id,),
        r.agent_id or None,
    )


def _plan_empty(plan_id: str, message: str) -> FailedPreconditionError:
    return FailedPreconditionError(
        message,
        reason="PLAN_EMPTY",
        violations=[
            PreconditionViolation("PLAN_EMPTY", f"plans/{plan_id}", "the plan has no tasks")
        ],
    )


def refuse_cycles(plan_id: str, tasks: Sequence[Task]) -> None:
    """Raises FAILED_PRECONDITION naming the cycle when the stored tasks cannot be
    ordered: their dependencies loop, directly or through the subtask hierarchy. Writes
    refuse such loops; data written before they did (release 1) may hold one, and the
    plan cannot be analyzed, optimized or suggested from until it is broken."""
    parents = {t.id: t.parent_task_id for t in tasks if t.parent_task_id}
    cycle = find_schedule_cycle({t.id: t.dependencies for t in tasks if t.dependencies}, parents)
    if cycle is None:
        _refuse_dependencies_on_parent_loops(plan_id, tasks, parents)
        return
    path = some_ids(cycle.tasks, " -> ")
    how = cycle.explain()
    raise FailedPreconditionError(
        f"plan {plan_id!r} cannot be analyzed or scheduled: its dependencies form a cycle: "
        f"{path} ({how}); remove one of these dependencies (UpdateTask)",
        reason="DEPENDENCY_CYCLE",
        violations=[PreconditionViolation("DEPENDENCY_CYCLE", f"tasks/{cycle.tasks[0]}", how)],
        metadata={"cycle": path, "cycle_length": str(len(cycle.tasks) - 1)},
    )


def _refuse_dependencies_on_parent_loops(
    plan_id: str, tasks: Sequence[Task], parents: dict[str, str]
) -> None:
    """A summary whose chain of parents loops (stored before parents were checked) has
    no place in the tree its work is spread over: a dependency on it cannot be kept."""
    loops = parent_loops(parents)
    if not loops:
        return
    summaries = set(parents.values())
    for t in tasks:
        for d in t.dependencies:
            if d in loops and d in summaries:
                path = some_ids(loops[d], " -> ")
                why = (
                    f"task {t.id!r} depends on {d!r}, whose parents loop ({path}: each a "
                    "subtask of the next), so its subtasks' work has no place"
                )
                raise FailedPreconditionError(
                    f"plan {plan_id!r} cannot be analyzed or scheduled: {why}; remove the "
                    "dependency (UpdateTask)",
                    reason="SUBTASK_CYCLE",
                    violations=[PreconditionViolation("SUBTASK_CYCLE", f"tasks/{t.id}", why)],
                    metadata={"cycle": path, "task_id": t.id, "depends_on": d},
                )


def _too_interconnected(plan_id: str) -> FailedPreconditionError:
    why = (
        f"dependencies on summary tasks stand for more than {MAX_EXPANDED_EDGES:,} "
        "dependencies between their subtasks and the tasks that wait for them"
    )
    return FailedPreconditionError(
        f"plan {plan_id!r} cannot be analyzed or scheduled: {why}; depend on fewer summary "
        "tasks, or on the subtasks that finish them",
        reason="PLAN_TOO_INTERCONNECTED",
        violations=[PreconditionViolation("PLAN_TOO_INTERCONNECTED", f"plans/{plan_id}", why)],
    )


def _subtask_leaves(
    tasks: Sequence[Task], children: dict[str, list[str]]
) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """The leaves of every subtask tree in one list, left to right, and where each
    summary's run of them starts and ends, if it has any (a depth-first walk visits a
    tree's leaves together). One iterative pass: trees may be deeper than Python's
    recursion limit (a chain of 1,500 answered INTERNAL), and walking each summary on its
    own cost a deep chain O(depth) per lookup (4 s for 5,000 levels, each depended on)."""
    parent = {t.id: t.parent_task_id for t in tasks}
    order: list[str] = []
    spans: dict[str, tuple[int, int]] = {}
    starts: dict[str, int] = {}
    for root in children:
        if parent.get(root, "") in children:
            continue  # walked from the root of its tree (parents that loop have none)
        stack = [(root, iter(children[root]))]
        starts[root] = len(order)
        while stack:
            node, rest = stack[-1]
            child = next(rest, None)
            if child is None:
                if starts[node] < len(order):  # none when its subtasks loop back to it
                    spans[node] = (starts[node], len(order))
                stack.pop()
            elif child in children and child not in starts:
                starts[child] = len(order)
                stack.append((child, iter(children[child])))
            else:
                order.append(child)
    return order, spans


def build_snapshot(
    plan: Plan, tasks: Sequence[Task], *, respect_capabilities: bool = True
) -> PlanSnapshot:
    """Maps stored tasks to the algorithms' input.

    Summary tasks (decomposed into subtasks) are left out: their subtasks carry the work.
    A dependency on a summary task becomes a dependency on its subtasks.
    """
    children: dict[str, list[str]] = {}
    for t in tasks:
        if t.parent_task_id:
            children.setdefault(t.parent_task_id, []).append(t.id)
    caps = {a.id: tuple(a.capabilities) for a in plan.agents}
    agents = tuple(a.id for a in plan.agents) or tuple(
        dict.fromkeys(t.assigned_to for t in tasks if t.assigned_to)
    )

    order, spans = _subtask_leaves(tasks, children)

    def expand(dep: str) -> list[str]:
        """The tasks doing `dep`'s work: itself, or the leaves of its subtask tree."""
        span = spans.get(dep)
        return order[span[0] : span[1]] if span else [dep]

    def width(dep: str) -> int:
        span = spans.get(dep)
        return span[1] - span[0] if span else 1

    # Plans repeat a few capability sets over many tasks: each is matched once.
    able: dict[tuple[str, ...], frozenset[str]] = {}

    def eligible_for(required: tuple[str, ...]) -> frozenset[str]:
        found = able.get(required)
        if found is None:
            found = able[required] = frozenset(
                a for a, held in caps.items() if planning.agent_can_do(held, required)
            )
        return found

    work: list[PlanTask] = []
    kept: list[Task] = []
    edges = 0
    for t in tasks:
        if t.id in children:
            continue
        # Each dependent of a summary gets an edge to every one of its subtasks: a
        # summary of 5,000 that 5,000 tasks depend on made 25 million (35 s, 3 GB).
        edges += sum(width(d) for d in t.dependencies)
        if edges > MAX_EXPANDED_EDGES:
            raise _too_interconnected(plan.id)
        deps = tuple(dict.fromkeys(x for d in t.dependencies for x in expand(d)))
        eligible: frozenset[str] | None = None
        if respect_capabilities and t.required_capabilities and caps:
            eligible = eligible_for(tuple(t.required_capabilities))
        work.append(
            PlanTask(
                id=t.id,
                status=_STATUS[TaskStatus(t.status)],
                dependencies=deps,
                estimate_hours=t.estimated_hours or None,
                actual_hours=t.actual_hours,
                progress=t.progress / 100,
                assigned_agent=t.assigned_to or None,
                priority=scheduling.Priority(int(t.priority) or 2),
                eligible_agents=eligible,
                optimistic_hours=t.optimistic_hours or None,
                most_likely_hours=t.estimated_hours or None,
                pessimistic_hours=t.pessimistic_hours or None,
                pinned=t.pinned,
                name=t.title,
            )
        )
        kept.append(t)
    return PlanSnapshot(plan, tuple(kept), tuple(work), agents, caps)


def _samples(requested: int, tasks: int) -> int:
    """Monte Carlo samples for `tasks` tasks to simulate, within MAX_SAMPLED_TASKS or
    MIN_DEFAULT_SAMPLES, whichever allows more: the default shrinks for large plans; a
    request for more than that is refused, naming the most that would run."""
    most = max(MAX_SAMPLED_TASKS // max(tasks, 1), MIN_DEFAULT_SAMPLES)
    if not requested:
        return min(DEFAULT_SAMPLES, most)
    if requested > most:
        raise InvalidArgumentError(
            [
                FieldViolation(
                    "monte_carlo_samples",
                    f"at most {most} for the {tasks} tasks to simulate (samples x tasks "
                    f"<= {MAX_SAMPLED_TASKS:,}, or {MIN_DEFAULT_SAMPLES:,} samples)",
                )
            ]
        )
    return requested


def deadline_from_constraints(constraints: Sequence[str]) -> float | None:
    """The tightest deadline the plan's constraints state, in working hours from today."""
    today = datetime.now(UTC).date()
    found = [
        hours
        for text in constraints
        if (hours := planning.parse_deadline_hours(text, now=today)[0]) is not None
    ]
    return min(found) if found else None


def _encode_optimization(o: Optimization) -> dict[str, Any]:
    # The schedule is what a retry needs back; solver internals are summarized.
    r = o.result
    return {
        "activities": [[a.activity_id, a.start, a.end, a.agent] for a in r.activities],
        "makespan": r.makespan,
        "lower_bound": r.lower_bound,
        "optimal": r.optimal,
        "gap": r.gap,
        "workloads": [
            [w.agent, w.busy_hours, w.utilization, list(w.activity_ids)] for w in r.workloads
        ],
        "critical_chain": list(r.critical_chain),
        "unschedulable": [[u.activity_id, u.reason, list(u.blocked_by)] for u in r.unschedulable],
        "solver": r.solver,
        "status": r.status.name,
        "stats": {
            "wall_time_s": r.stats.wall_time_s,
            "branches": r.stats.branches,
            "conflicts": r.stats.conflicts,
            "fallback_reason": r.stats.fallback_reason,
        },
        "before": o.before_hours,
        "moves": [list(x) for x in o.reassignments],
        "plan_revision": o.plan_revision,
        "titles": o.titles,
        "missing": {k: list(v) for k, v in o.missing.items()},
        "unscheduled_hours": o.unscheduled_hours,
        "reasons": o.reasons,
    }


def _decode_optimization(d: Mapping[str, Any]) -> Optimization:
    s = d["stats"]
    stats = scheduling.SolverStats(
        solver=d["solver"],
        status=d["status"],
        wall_time_s=s["wall_time_s"],
        objective=d["makespan"],
        best_bound=d["lower_bound"],
        branches=s["branches"],
        conflicts=s["conflicts"],
        iterations=0,
        fallback_reason=s["fallback_reason"],
        notes=(),
    )
    result = scheduling.ScheduleResult(
        status=scheduling.ScheduleStatus[d["status"]],
        activities=tuple(scheduling.ScheduledActivity(*a) for a in d["activities"]),
        makespan=d["makespan"],
        lower_bounds=scheduling.LowerBounds(d["lower_bound"], 0.0),
        lower_bound=d["lower_bound"],
        optimal=d["optimal"],
        gap=d["gap"],
        workloads=tuple(
            scheduling.AgentWorkload(w[0], w[1], w[2], tuple(w[3])) for w in d["workloads"]
        ),
        critical_chain=tuple(d["critical_chain"]),
        unschedulable=tuple(
            scheduling.UnschedulableActivity(u[0], u[1], tuple(u[2])) for u in d["unschedulable"]
        ),
        solver=d["solver"],
        stats=stats,
        goals=(),
    )
    return Optimization(
        result,
        d["before"],
        tuple(tuple(x) for x in d["moves"]),
        d["plan_revision"],
        # Recorded before titles were: the answer names tasks by id only.
        titles=d.get("titles", {}),
        missing={k: tuple(v) for k, v in d.get("missing", {}).items()},
        unscheduled_hours=d.get("unscheduled_hours", 0.0),
        reasons=d.get("reasons", {}),
    )


OPTIMIZATION_CODEC = FunctionCodec(_encode_optimization, _decode_optimization)
"""OptimizePlan's record: the schedule, with the solver's internals summarized."""
