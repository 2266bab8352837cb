"""Plan risk: Monte Carlo completion forecast plus rule-based risk items and a score.

The forecast simulates the plan as assigned: every sample draws each task's duration and
schedules the sample with the plan's assignments, one task at a time per agent, each agent
taking its tasks in the order of the current-plan schedule (:func:`schedule_current_plan`,
the serial SGS at most-likely durations; see :mod:`.agent_sequence`). Work of no agent
waits only for its dependencies, as in that schedule. With no spread at all, every sample
is that schedule, so P50 = P95 = its makespan (to the minute it rounds to); tasks that all
sit on one agent take the sum of their durations in every sample. Criticality is then the
share of samples in which a task is on the critical chain (dependencies and agents'
sequences).

Three-point estimates are per task totals; they are scaled to the remaining work
(``remaining / most_likely``) so in-progress tasks only contribute what is left.

Default ranges for tasks without a three-point estimate (multipliers of the remaining
hours, optimistic / pessimistic; most likely = remaining):

=============  ==========  ===========
status         optimistic  pessimistic
=============  ==========  ===========
TODO           0.8         1.5
IN_PROGRESS    0.9         1.3
BLOCKED        0.9         2.0
FAILED         0.9         2.0
no estimate    0.5         3.0
=============  ==========  ===========

The pessimistic excess (``pessimistic - 1``) is then scaled by priority: CRITICAL 0.8,
HIGH 0.9, MEDIUM 1.0, LOW 1.2 (important work gets attention, low-priority work drifts).

Score (0-100): each risk item adds CRITICAL 40, HIGH 20, MEDIUM 8, LOW 2; with a deadline,
``50 x (1 - P(meet))`` is added; capped at 100. Level: < 20 LOW, < 45 MEDIUM, < 70 HIGH,
else CRITICAL; the level is never below the most severe item minus one step.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .agent_sequence import agent_sequence_edges
from .cpm import CpmResult, IntArray, cpm_arrays, cpm_for_tasks
from .current_plan import schedule_current_plan
from .model import ScheduleResult
from .montecarlo import DEFAULT_SAMPLES, Distribution, simulate
from .plan import DEFAULT_ESTIMATE_HOURS, PlanTask, Priority, TaskStatus, check_unique_ids


class Severity(enum.IntEnum):
    """Severity of a risk item (and the overall level)."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


class RiskKind(enum.Enum):
    """What a risk item is about."""

    LONG_DEPENDENCY_CHAIN = "LONG_DEPENDENCY_CHAIN"
    AGENT_CONCENTRATION = "AGENT_CONCENTRATION"
    OVERRUN = "OVERRUN"
    FAILED_TASK = "FAILED_TASK"
    BLOCKED_TASK = "BLOCKED_TASK"
    MISSING_ESTIMATE = "MISSING_ESTIMATE"
    UNASSIGNED_WORK = "UNASSIGNED_WORK"
    INFEASIBLE_DEADLINE = "INFEASIBLE_DEADLINE"
    DEADLINE_AT_RISK = "DEADLINE_AT_RISK"
    ESCALATION = "ESCALATION"


#: (optimistic, pessimistic) multipliers of remaining hours by status.
STATUS_RANGES: dict[TaskStatus, tuple[float, float]] = {
    TaskStatus.TODO: (0.8, 1.5),
    TaskStatus.IN_PROGRESS: (0.9, 1.3),
    TaskStatus.BLOCKED: (0.9, 2.0),
    TaskStatus.FAILED: (0.9, 2.0),
    TaskStatus.DONE: (1.0, 1.0),
}
#: Range for tasks without any estimate.
MISSING_ESTIMATE_RANGE = (0.5, 3.0)
#: Scale of the pessimistic excess by priority.
PRIORITY_SPREAD: dict[Priority, float] = {
    Priority.CRITICAL: 0.8,
    Priority.HIGH: 0.9,
    Priority.MEDIUM: 1.0,
    Priority.LOW: 1.2,
}
SEVERITY_POINTS = {Severity.LOW: 2, Severity.MEDIUM: 8, Severity.HIGH: 20, Severity.CRITICAL: 40}
#: Open tasks in one dependency chain that make it MEDIUM / HIGH.
LONG_CHAIN_MEDIUM = 6
LONG_CHAIN_HIGH = 10


@dataclass(frozen=True)
class RiskDriver:
    """A task that drives the completion-date uncertainty.

    Attributes:
        task_id: The task.
        criticality: Share of samples where it is on the critical chain.
        std_hours: Standard deviation of its duration.
        correlation: Correlation of its duration with the project duration.
        score: ``criticality x std_hours`` (hours of spread it passes to the end).
    """

    task_id: str
    criticality: float
    std_hours: float
    correlation: float
    score: float


@dataclass(frozen=True)
class Forecast:
    """Monte Carlo completion forecast (hours from now).

    Attributes:
        samples: Number of samples.
        seed: RNG seed.
        distribution: Duration distribution used.
        mean: Mean project duration.
        p50: Median.
        p80: 80th percentile.
        p95: 95th percentile.
        deadline_hours: The deadline, if given.
        probability_meet_deadline: Share of samples finishing by the deadline (``None``
            without a deadline).
        criticality: Per task id, share of samples in which it is on the critical chain
            (dependencies and agents' sequences, see the module docstring).
        drivers: Top risk drivers, by score.
    """

    samples: int
    seed: int
    distribution: Distribution
    mean: float
    p50: float
    p80: float
    p95: float
    deadline_hours: float | None
    probability_meet_deadline: float | None
    criticality: dict[str, float]
    drivers: tuple[RiskDriver, ...]


@dataclass(frozen=True)
class RiskItem:
    """One identified risk.

    Attributes:
        kind: What it is about.
        severity: How bad.
        message: What was found.
        recommendation: What to do.
        task_ids: Tasks involved.
        agent: Agent involved, if any.
    """

    kind: RiskKind
    severity: Severity
    message: str
    recommendation: str
    task_ids: tuple[str, ...] = ()
    agent: str | None = None


@dataclass(frozen=True)
class RiskReport:
    """Risk assessment of a plan.

    Attributes:
        forecast: Monte Carlo forecast.
        items: Risk items, most severe first.
        score: Overall score 0-100 (higher = riskier).
        level: Overall level.
        cpm_duration_hours: Deterministic duration of the remaining work.
    """

    forecast: Forecast
    items: tuple[RiskItem, ...]
    score: int
    level: Severity
    cpm_duration_hours: float


def three_point(
    task: PlanTask, default_estimate: float = DEFAULT_ESTIMATE_HOURS
) -> tuple[float, float, float]:
    """(optimistic, most likely, pessimistic) hours of the task's remaining work."""
    rem = task.remaining(default_estimate)
    if rem <= 0:
        return 0.0, 0.0, 0.0
    o, m, p = task.optimistic_hours, task.most_likely_hours, task.pessimistic_hours
    if o is not None and p is not None:
        ml = m if m is not None else (task.estimate_hours or (o + p) / 2)
        if ml > 0:
            scale = rem / ml
            lo, hi = min(o, ml) * scale, max(p, ml) * scale
            return lo, rem, hi
    if task.estimate_hours is None and task.remaining_hours is None:
        lo_m, hi_m = MISSING_ESTIMATE_RANGE
    else:
        lo_m, hi_m = STATUS_RANGES[task.status]
    hi_m = 1.0 + (hi_m - 1.0) * PRIORITY_SPREAD[task.priority]
    return rem * lo_m, rem, rem * hi_m


def task_edges(tasks: Sequence[PlanTask], index: dict[str, int]) -> tuple[IntArray, IntArray]:
    """Dependency edges as index arrays: ``dst[k]`` depends on ``src[k]``.

    Args:
        tasks: The plan's tasks.
        index: Index of each task id (from :func:`check_unique_ids`).
    """
    src = np.array([index[d] for t in tasks for d in t.dependencies], dtype=np.int64)
    dst = np.array([i for i, t in enumerate(tasks) for _ in t.dependencies], dtype=np.int64)
    return src, dst


def forecast(
    tasks: Sequence[PlanTask],
    *,
    deadline_hours: float | None = None,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    distribution: Distribution = Distribution.TRIANGULAR,
    top_drivers: int = 5,
    default_estimate: float = DEFAULT_ESTIMATE_HOURS,
    schedule: ScheduleResult | None = None,
) -> Forecast:
    """Monte Carlo forecast of the remaining work as assigned (see module docstring).

    Args:
        tasks: The plan's tasks.
        deadline_hours: Deadline in hours from now.
        samples: Number of samples.
        seed: Seed for ``numpy.random.default_rng``; same seed, same numbers.
        distribution: TRIANGULAR (default) or PERT.
        top_drivers: Number of drivers to return.
        default_estimate: Hours for tasks without an estimate.
        schedule: ``schedule_current_plan`` of the same tasks, if the caller has it
            already: it orders each agent's tasks.

    Raises:
        DependencyCycleError: Names the cycle's task ids.
    """
    index = check_unique_ids(tasks)
    edges = task_edges(tasks, index)
    return _forecast(
        tasks,
        edges,
        _sequence_edges(tasks, index, schedule, default_estimate),
        deadline_hours=deadline_hours,
        samples=samples,
        seed=seed,
        distribution=distribution,
        top_drivers=top_drivers,
        default_estimate=default_estimate,
    )


def _sequence_edges(
    tasks: Sequence[PlanTask],
    index: dict[str, int],
    schedule: ScheduleResult | None,
    default_estimate: float,
) -> tuple[IntArray, IntArray]:
    """Each agent's sequence of tasks as edges (none when no open task has an agent)."""
    if not any(t.assigned_agent and t.is_open for t in tasks):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if schedule is None:
        schedule = schedule_current_plan(tasks, default_estimate=default_estimate)
    return agent_sequence_edges(schedule, index)


def _forecast(
    tasks: Sequence[PlanTask],
    edges: tuple[IntArray, IntArray],
    sequence: tuple[IntArray, IntArray],
    *,
    deadline_hours: float | None,
    samples: int,
    seed: int,
    distribution: Distribution,
    top_drivers: int,
    default_estimate: float,
    cancelled: Callable[[], bool] | None = None,
) -> Forecast:
    """:func:`forecast` of tasks already checked, with their ``task_edges`` and their
    agents' ``sequence`` edges."""
    pts = np.array([three_point(t, default_estimate) for t in tasks], dtype=np.float64).reshape(
        -1, 3
    )
    src = np.concatenate([edges[0], sequence[0]])
    dst = np.concatenate([edges[1], sequence[1]])
    from .errors import DependencyCycleError

    try:
        sim = simulate(
            pts[:, 0],
            pts[:, 1],
            pts[:, 2],
            src,
            dst,
            samples=samples,
            seed=seed,
            distribution=distribution,
            cancelled=cancelled,
        )
    except DependencyCycleError as e:
        raise DependencyCycleError(e.field, [tasks[int(i)].id for i in e.cycle]) from None
    totals = sim.totals
    p50, p80, p95 = (float(x) for x in np.percentile(totals, [50, 80, 95]))
    prob = None
    if deadline_hours is not None:
        prob = float(np.mean(totals <= deadline_hours + 1e-9))
    score = sim.criticality * sim.std
    order = np.argsort(-score, kind="stable")[:top_drivers]
    drivers = tuple(
        RiskDriver(
            task_id=tasks[i].id,
            criticality=float(sim.criticality[i]),
            std_hours=float(sim.std[i]),
            correlation=float(sim.correlation[i]),
            score=float(score[i]),
        )
        for i in order
        if score[i] > 0
    )
    return Forecast(
        samples=samples,
        seed=seed,
        distribution=distribution,
        mean=float(totals.mean()) if len(totals) else 0.0,
        p50=p50,
        p80=p80,
        p95=p95,
        deadline_hours=deadline_hours,
        probability_meet_deadline=prob,
        criticality={t.id: float(c) for t, c in zip(tasks, sim.criticality, strict=True)},
        drivers=drivers,
    )


def assess_risk(
    tasks: Sequence[PlanTask],
    *,
    deadline_hours: float | None = None,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    distribution: Distribution = Distribution.TRIANGULAR,
    top_drivers: int = 5,
    default_estimate: float = DEFAULT_ESTIMATE_HOURS,
    cpm: CpmResult | None = None,
    schedule: ScheduleResult | None = None,
    cancelled: Callable[[], bool] | None = None,
    known: Sequence[RiskItem] = (),
) -> RiskReport:
    """Forecast plus risk items, score and level (see module docstring).

    Args:
        tasks: The plan's tasks.
        deadline_hours: Deadline in hours from now.
        samples: Monte Carlo samples.
        seed: RNG seed.
        distribution: Duration distribution.
        top_drivers: Number of drivers in the forecast.
        default_estimate: Hours for tasks without an estimate.
        cpm: ``cpm_for_tasks`` of the same tasks, if the caller has it already.
        schedule: ``schedule_current_plan`` of the same tasks, if the caller has it.
        cancelled: Asked during the simulation; True stops it with ``SimulationCancelled``.
        known: Risks found outside the tasks (an escalation that holds the plan), listed
            and scored like the rules' own.
    """
    # Checked and built once for the forecast and the chain rule.
    index = check_unique_ids(tasks)
    edges = task_edges(tasks, index)
    fc = _forecast(
        tasks,
        edges,
        _sequence_edges(tasks, index, schedule, default_estimate),
        deadline_hours=deadline_hours,
        samples=samples,
        seed=seed,
        distribution=distribution,
        top_drivers=top_drivers,
        default_estimate=default_estimate,
        cancelled=cancelled,
    )
    if cpm is None:
        cpm = cpm_for_tasks(tasks, default_estimate=default_estimate)
    items = risk_items(tasks, cpm, fc, default_estimate=default_estimate, edges=edges)
    items = tuple(sorted((*known, *items), key=lambda i: -int(i.severity)))
    points: float = sum(SEVERITY_POINTS[i.severity] for i in items)
    if fc.probability_meet_deadline is not None:
        points += 50.0 * (1.0 - fc.probability_meet_deadline)
    score = round(min(100.0, points))
    level = (
        Severity.LOW
        if score < 20
        else Severity.MEDIUM
        if score < 45
        else Severity.HIGH
        if score < 70
        else Severity.CRITICAL
    )
    if items:
        level = max(level, Severity(max(int(items[0].severity) - 1, 1)))
    return RiskReport(
        forecast=fc,
        items=items,
        score=score,
        level=level,
        cpm_duration_hours=cpm.project_duration,
    )


def risk_items(
    tasks: Sequence[PlanTask],
    cpm: CpmResult,
    fc: Forecast,
    *,
    default_estimate: float = DEFAULT_ESTIMATE_HOURS,
    edges: tuple[IntArray, IntArray] | None = None,
) -> tuple[RiskItem, ...]:
    """Applies the risk rules; most severe first.

    ``edges``: ``task_edges`` of the same tasks, if the caller has them already.
    """
    items: list[RiskItem] = []
    open_tasks = [t for t in tasks if t.is_open]
    critical = set(cpm.critical_task_ids)

    # Long dependency chains: longest chain counted in open tasks (CPM with unit weights).
    if open_tasks:
        if edges is None:
            edges = task_edges(tasks, {t.id: i for i, t in enumerate(tasks)})
        src, dst = edges
        unit = np.array([1.0 if t.is_open else 0.0 for t in tasks])
        chain = round(cpm_arrays(unit, src, dst).duration)
        if chain >= LONG_CHAIN_MEDIUM:
            sev = Severity.HIGH if chain >= LONG_CHAIN_HIGH else Severity.MEDIUM
            path = cpm.critical_paths[0] if cpm.critical_paths else ()
            items.append(
                RiskItem(
                    RiskKind.LONG_DEPENDENCY_CHAIN,
                    sev,
                    f"A chain of {chain} dependent open tasks: any slip propagates to the end.",
                    "Break dependencies where possible, start chain tasks early, or add "
                    "buffers at merge points.",
                    tuple(path),
                )
            )

    # One agent holding most of the critical work.
    crit_hours: dict[str, float] = {}  # hours, so not a Counter (its counts are ints)
    total_crit = 0.0
    for t in tasks:
        if t.id in critical:
            h = t.remaining(default_estimate)
            total_crit += h
            if t.assigned_agent:
                crit_hours[t.assigned_agent] = crit_hours.get(t.assigned_agent, 0.0) + h
    if total_crit > 0 and len(critical) >= 2 and crit_hours:
        agent, hours = max(crit_hours.items(), key=lambda item: item[1])
        share = hours / total_crit
        if share > 0.5:
            items.append(
                RiskItem(
                    RiskKind.AGENT_CONCENTRATION,
                    Severity.HIGH if share >= 0.8 else Severity.MEDIUM,
                    f"{agent} holds {share:.0%} of the critical-path work ({hours:.1f} h).",
                    f"Reassign or split critical tasks of {agent}; a single absence or "
                    "slowdown delays the whole plan.",
                    tuple(t.id for t in tasks if t.id in critical and t.assigned_agent == agent),
                    agent,
                )
            )

    for t in open_tasks:
        est = t.estimate_hours
        if est is not None and est > 0 and t.actual_hours > est:
            ratio = t.actual_hours / est
            items.append(
                RiskItem(
                    RiskKind.OVERRUN,
                    Severity.HIGH if ratio >= 1.5 or t.id in critical else Severity.MEDIUM,
                    f"{t.id} has used {t.actual_hours:.1f} h of a {est:.1f} h estimate "
                    f"({ratio:.0%}) and is not done.",
                    "Re-estimate the remaining work and check for scope creep or a blocker.",
                    (t.id,),
                    t.assigned_agent,
                )
            )
        elif (
            est is not None
            and est > 0
            and t.status is TaskStatus.IN_PROGRESS
            and t.actual_hours / est > t.progress + 0.25
        ):
            items.append(
                RiskItem(
                    RiskKind.OVERRUN,
                    Severity.MEDIUM,
                    f"{t.id} is {t.progress:.0%} done after {t.actual_hours / est:.0%} of its "
                    "estimate.",
                    "Progress is behind the hours spent: re-estimate and consider help.",
                    (t.id,),
                    t.assigned_agent,
                )
            )
        if t.status is TaskStatus.FAILED:
            items.append(
                RiskItem(
                    RiskKind.FAILED_TASK,
                    Severity.CRITICAL if t.id in critical else Severity.HIGH,
                    f"{t.id} failed.",
                    "Triage the failure, then retry, re-plan or drop it; its dependents "
                    "cannot start.",
                    (t.id,),
                    t.assigned_agent,
                )
            )
        if t.status is TaskStatus.BLOCKED:
            items.append(
                RiskItem(
                    RiskKind.BLOCKED_TASK,
                    Severity.HIGH if t.id in critical else Severity.MEDIUM,
                    f"{t.id} is blocked.",
                    "Resolve the blocker or re-sequence work around it.",
                    (t.id,),
                    t.assigned_agent,
                )
            )

    missing = [t.id for t in open_tasks if t.estimate_hours is None and t.remaining_hours is None]
    if missing:
        share = len(missing) / len(open_tasks)
        items.append(
            RiskItem(
                RiskKind.MISSING_ESTIMATE,
                Severity.MEDIUM if share > 0.2 else Severity.LOW,
                f"{len(missing)} open task(s) have no estimate; {default_estimate:g} h assumed "
                "with a wide range.",
                "Estimate these tasks to tighten the forecast.",
                tuple(missing),
            )
        )

    unassigned = [t.id for t in open_tasks if t.assigned_agent is None]
    if unassigned:
        crit_unassigned = [i for i in unassigned if i in critical]
        items.append(
            RiskItem(
                RiskKind.UNASSIGNED_WORK,
                Severity.MEDIUM if crit_unassigned else Severity.LOW,
                f"{len(unassigned)} open task(s) have no agent"
                + (f", {len(crit_unassigned)} on the critical path." if crit_unassigned else "."),
                "Assign them (or run the optimizer) so the plan reflects who does what.",
                tuple(unassigned),
            )
        )

    if fc.deadline_hours is not None:
        p = fc.probability_meet_deadline or 0.0
        if fc.deadline_hours + 1e-9 < cpm.project_duration:
            items.append(
                RiskItem(
                    RiskKind.INFEASIBLE_DEADLINE,
                    Severity.CRITICAL,
                    f"The deadline ({fc.deadline_hours:.1f} h) is before the shortest possible "
                    f"completion ({cpm.project_duration:.1f} h of dependent work).",
                    "Move the deadline, cut scope, or shorten critical tasks.",
                    tuple(cpm.critical_paths[0]) if cpm.critical_paths else (),
                )
            )
        elif p < 0.8:
            sev = Severity.CRITICAL if p < 0.05 else Severity.HIGH if p < 0.5 else Severity.MEDIUM
            items.append(
                RiskItem(
                    RiskKind.DEADLINE_AT_RISK,
                    sev,
                    f"{p:.0%} chance to meet the deadline ({fc.deadline_hours:.1f} h); "
                    f"P80 is {fc.p80:.1f} h.",
                    "Add capacity to the top risk drivers or move the deadline to about P80.",
                    tuple(d.task_id for d in fc.drivers),
                )
            )
    items.sort(key=lambda i: -int(i.severity))
    return tuple(items)
