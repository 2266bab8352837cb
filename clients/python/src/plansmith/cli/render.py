"""Tables and panels for plans, tasks and the planning results."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from plansmith.enums import short_name
from plansmith.v1 import analysis_pb2, execution_pb2, plan_pb2, planning_service_pb2, task_pb2

STATUS_STYLE = {
    "TODO": "",
    "IN_PROGRESS": "cyan",
    "BLOCKED": "yellow",
    "DONE": "green",
    "FAILED": "red",
    "CANCELLED": "dim",
}


def hours(value: float) -> str:
    return f"{value:.1f}h"


def plan_status(plan: plan_pb2.Plan) -> str:
    return short_name(plan_pb2.PlanStatus, plan.status)


def task_status(task: task_pb2.Task) -> Text:
    name = short_name(task_pb2.TaskStatus, task.status)
    return Text(name, style=STATUS_STYLE.get(name, ""))


class _FitWidth:
    """A table built for the width it is printed at: narrow outputs (80 columns when
    piped) leave out the columns `show` is there for, so ids are never cut."""

    def __init__(self, build: Callable[[int], RenderableType]) -> None:
        self.build = build

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.build(options.max_width)


WIDE = 110


def plans_table(plans: Iterable[plan_pb2.Plan], total: int, next_page: str) -> RenderableType:
    plans = list(plans)

    def build(width: int) -> RenderableType:
        wide = width >= WIDE
        table = Table(title=f"Plans ({total})", title_justify="left", box=box.SIMPLE_HEAD)
        table.add_column("id", no_wrap=True)
        table.add_column("name", min_width=12)
        table.add_column("project")
        table.add_column("status", no_wrap=True)
        table.add_column("agents")
        if wide:
            table.add_column("updated", no_wrap=True)
        for p in plans:
            row = [p.id, p.name, p.project_id, plan_status(p), ", ".join(a.id for a in p.agents)]
            if wide:
                row.append(
                    p.update_time.ToDatetime().strftime("%Y-%m-%d %H:%M")
                    if p.update_time.seconds
                    else ""
                )
            table.add_row(*row)
        return _with_next(table, next_page)

    return _FitWidth(build)


def _with_next(table: Table, next_page: str) -> RenderableType:
    if not next_page:
        return table
    return Group(table, Text(f"More: --page {next_page}", style="dim"))


def plan_detail(plan: plan_pb2.Plan) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("id", plan.id)
    grid.add_row("name", plan.name)
    if plan.project_id:
        grid.add_row("project", plan.project_id)
    grid.add_row("status", plan_status(plan))
    if plan.description:
        grid.add_row("description", plan.description)
    for label, items in (("objectives", plan.objectives), ("constraints", plan.constraints)):
        if items:
            grid.add_row(label, "\n".join(f"- {x}" for x in items))
    if plan.agents:
        grid.add_row(
            "agents",
            "\n".join(
                a.id + (f" ({', '.join(a.capabilities)})" if a.capabilities else "")
                for a in plan.agents
            ),
        )
    grid.add_row("revision", str(plan.revision))
    grid.add_row("etag", plan.etag)
    return grid


def tasks_table(
    tasks: Sequence[task_pb2.Task], total: int, next_page: str, title: str = "Tasks"
) -> RenderableType:
    tasks = list(tasks)

    def build(width: int) -> RenderableType:
        wide = width >= WIDE
        table = Table(title=f"{title} ({total})", title_justify="left", box=box.SIMPLE_HEAD)
        table.add_column("id", no_wrap=True)
        table.add_column("title", min_width=16)
        table.add_column("status", no_wrap=True)
        if wide:
            table.add_column("priority", no_wrap=True)
        table.add_column("agent", no_wrap=True)
        table.add_column("est", justify="right", no_wrap=True)
        if wide:
            table.add_column("done", justify="right", no_wrap=True)
            table.add_column("deps", justify="right", no_wrap=True)
        for t in tasks:
            row: list[Any] = [t.id, t.title, task_status(t)]
            if wide:
                row.append(short_name(task_pb2.TaskPriority, t.priority))
            row += [t.assigned_to, hours(t.estimated_hours)]
            if wide:
                row += [f"{t.progress}%", str(len(t.dependencies)) if t.dependencies else ""]
            table.add_row(*row)
        return _with_next(table, next_page)

    return _FitWidth(build)


def task_detail(task: task_pb2.Task) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("id", task.id)
    grid.add_row("plan", task.plan_id)
    grid.add_row("title", task.title)
    grid.add_row("status", task_status(task))
    grid.add_row("priority", short_name(task_pb2.TaskPriority, task.priority))
    grid.add_row("progress", f"{task.progress}%")
    grid.add_row("estimate", hours(task.estimated_hours))
    if task.actual_hours:
        grid.add_row("actual", hours(task.actual_hours))
    if task.assigned_to:
        grid.add_row("assignee", task.assigned_to)
    if task.dependencies:
        grid.add_row("depends on", ", ".join(task.dependencies))
    if task.required_capabilities:
        grid.add_row("capabilities", ", ".join(task.required_capabilities))
    if task.HasField("schedule"):
        s = task.schedule
        grid.add_row("scheduled", f"{hours(s.start_offset_hours)} → {hours(s.end_offset_hours)}")
    if task.description:
        grid.add_row("description", task.description)
    if task.acceptance_criteria:
        grid.add_row("acceptance", "\n".join(f"- {x}" for x in task.acceptance_criteria))
    if task.HasField("not_before"):
        grid.add_row("not before", task.not_before.ToDatetime().isoformat() + "Z")
    if task.outputs:
        grid.add_row("outputs", ", ".join(f"{k}={v}" for k, v in sorted(task.outputs.items())))
    grid.add_row("etag", task.etag)
    return grid


def replan_record(r: execution_pb2.ReplanRecord, task: task_pb2.Task) -> RenderableType:
    """The replanner's decision about a failure, and the task after it."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    state = short_name(execution_pb2.ReplanState, r.state)
    grid.add_row("decision", Text(short_name(execution_pb2.ReplanDecision, r.decision), "bold"))
    grid.add_row("state", state + (" (ApplyReplan applies it)" if state == "PROPOSED" else ""))
    grid.add_row("category", short_name(execution_pb2.FailureCategory, r.category))
    grid.add_row("confidence", f"{r.confidence:.2f}")
    grid.add_row("reason", r.reason)
    if r.new_agent_id:
        grid.add_row("new agent", r.new_agent_id)
    if r.tasks_added:
        grid.add_row("tasks added", ", ".join(r.tasks_added))
    if r.id:
        grid.add_row("record", r.id)
    return Group(grid, Text(""), task_detail(task))


def optimize_result(r: planning_service_pb2.OptimizePlanResponse, applied: bool) -> RenderableType:
    table = Table(title="Schedule", title_justify="left")
    for col in ("task", "agent", "start", "end"):
        table.add_column(col, justify="right" if col in ("start", "end") else "left")
    critical = set(r.critical_chain)
    for s in sorted(r.schedule, key=lambda s: (s.start_offset_hours, s.agent_id)):
        style = "bold red" if s.task_id in critical else ""
        table.add_row(
            Text(s.task_title or s.task_id, style=style),
            s.agent_id,
            hours(s.start_offset_hours),
            hours(s.end_offset_hours),
        )
    quality = (
        "proven optimal"
        if r.proven_optimal
        else f"gap {r.optimality_gap * 100:.0f}% to the lower bound {hours(r.lower_bound_hours)}"
    )
    solver = (  # the enum; the deprecated string from a server older than it
        short_name(analysis_pb2.SolverKind, r.solver.kind).lower()
        if r.solver.kind
        else r.solver.solver
    )
    lines = [
        Text(
            f"Duration {hours(r.duration_before_hours)} → {hours(r.duration_after_hours)} "
            f"({quality}; solver {solver}: {r.solver.status}, "
            f"{r.solver.wall_time_seconds:.2f}s)"
        )
    ]
    for a in r.reassignments:
        before = a.from_agent_id or "(unassigned)"
        moved = f"  moved {a.task_title or a.task_id}: {before} → {a.to_agent_id}"
        lines.append(Text(moved))
    for u in r.unschedulable:
        why = f"  not scheduled: {u.task_title or u.task_id}: {u.reason}"
        lines.append(Text(why, style="yellow"))
    lines.append(
        Text(
            f"Applied to the plan (revision {r.plan_revision})."
            if applied
            else "Not applied: rerun with --apply to store this schedule.",
            style="dim",
        )
    )
    return Group(table, *lines)


def analysis(r: planning_service_pb2.AnalyzePlanResponse) -> RenderableType:
    parts: list[RenderableType] = []
    if r.HasField("critical_path"):
        cp = r.critical_path
        table = Table(
            title=f"Critical path: {hours(cp.duration_hours)}"
            + (
                f" (with agents: {hours(cp.resource_constrained_duration_hours)})"
                if cp.resource_constrained_duration_hours
                else ""
            ),
            title_justify="left",
        )
        for col in ("", "task", "remaining", "earliest start", "slack"):
            table.add_column(col, justify="left" if col in ("", "task") else "right")
        for t in sorted(cp.timings, key=lambda t: (t.earliest_start_hours, t.slack_hours)):
            style = "bold red" if t.critical else ""
            table.add_row(
                Text("◆" if t.critical else "", style=style),
                Text(t.task_title or t.task_id, style=style),
                hours(t.remaining_hours),
                hours(t.earliest_start_hours),
                hours(t.slack_hours),
            )
        parts.append(table)
    if r.HasField("resource_utilization"):
        ru = r.resource_utilization
        table = Table(title=f"Utilization over {hours(ru.span_hours)}", title_justify="left")
        table.add_column("agent")
        table.add_column("", width=30)
        table.add_column("busy", justify="right")
        table.add_column("remaining", justify="right")
        for a in ru.agents:
            table.add_row(
                a.agent_id,
                ProgressBar(total=1.0, completed=min(a.utilization, 1.0), width=30),
                f"{a.utilization * 100:.0f}%",
                hours(a.remaining_hours),
            )
        parts.append(table)
        if ru.unassigned_task_ids:
            names = ru.unassigned_task_titles or ru.unassigned_task_ids
            parts.append(Text(f"Unassigned: {', '.join(names)}", style="yellow"))
    if r.HasField("risk_assessment"):
        ra = r.risk_assessment
        table = Table(
            title=f"Risk ({ra.samples} simulations, seed {ra.seed})", title_justify="left"
        )
        for col in ("P50", "P80", "P95"):
            table.add_column(col, justify="right")
        table.add_row(hours(ra.p50_hours), hours(ra.p80_hours), hours(ra.p95_hours))
        parts.append(table)
        if ra.deadline_hours:
            parts.append(
                Text(
                    f"Chance to finish within {hours(ra.deadline_hours)}: "
                    f"{ra.deadline_probability * 100:.0f}%"
                )
            )
        for d in ra.top_drivers:
            parts.append(
                Text(
                    f"  driver: {d.task_title or d.task_id} "
                    f"(critical in {d.criticality_index * 100:.0f}% of runs)"
                )
            )
    return Group(*parts)


def suggestions(items: Sequence[analysis_pb2.TaskSuggestion]) -> RenderableType:
    if not items:
        return Text("No ready task to suggest.")
    table = Table(title="Next tasks", title_justify="left")
    for col in ("#", "task", "score", "slack", "why"):
        table.add_column(col, justify="right" if col in ("#", "score", "slack") else "left")
    for i, s in enumerate(items, 1):
        table.add_row(
            str(i),
            Text(s.title or s.task_id, style="bold red" if s.critical else ""),
            f"{s.score:.2f}",
            hours(s.slack_hours),
            s.reason,
        )
    return table


def estimate(r: planning_service_pb2.EstimateTaskDurationResponse) -> RenderableType:
    return Group(
        Text(
            f"Estimate {hours(r.estimate_hours)} "
            f"(range {hours(r.low_hours)}–{hours(r.high_hours)}, "
            f"confidence {r.confidence * 100:.0f}%, {r.method})"
        ),
        Text(r.explanation, style="dim") if r.explanation else Text(""),
    )


def decomposition(r: planning_service_pb2.DecomposeTaskResponse, persisted: bool) -> RenderableType:
    table = tasks_table(r.subtasks, len(r.subtasks), "", title=f"Subtasks ({r.method})")
    note = Text(
        "Stored as subtasks." if persisted else "Not stored: rerun with --persist to store them.",
        style="dim",
    )
    return Group(table, note)
