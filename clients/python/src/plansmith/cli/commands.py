"""The planning commands (generate, optimize, analyze, suggest, estimate, decompose),
`gantt` and `status`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.text import Text

from plansmith.cli import brief as brief_mod
from plansmith.cli import errors, render, status
from plansmith.cli import gantt as gantt_mod
from plansmith.cli.app import (
    JsonOpt,
    RequestIdOpt,
    TargetOpt,
    _agent,
    _out,
    _split,
    app,
    connect,
)
from plansmith.cli.output import Output, to_json
from plansmith.enums import short_name
from plansmith.v1 import generation_pb2, plan_service_pb2, planning_service_pb2

# -- generate -------------------------------------------------------------------------------


@app.command(
    epilog=(
        "Examples:\n\n"
        "  plansmith generate --name Shop --description 'An online shop' "
        "--requirement 'Payments' --agent alice:backend+api --persist\n\n"
        "  plansmith generate --file brief.yaml --persist --request-id shop-1\n\n"
        "A brief file (YAML or JSON) has name, description, project_id, requirements,"
        " constraints, available_agents (ids, or {id, name, capabilities}) and context;"
        " flags override it."
    )
)
def generate(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="The brief, YAML or JSON.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Plan name.")] = None,
    description: Annotated[str | None, typer.Option(help="What to build.")] = None,
    project: Annotated[str | None, typer.Option(help="Project id.")] = None,
    requirement: Annotated[list[str] | None, typer.Option(help="A requirement (repeat).")] = None,
    constraint: Annotated[list[str] | None, typer.Option(help="A constraint (repeat).")] = None,
    agent: Annotated[
        list[str] | None, typer.Option(help="An agent: id, or id:cap1+cap2 (repeat).")
    ] = None,
    persist: Annotated[bool, typer.Option("--persist", help="Store the plan.")] = False,
    request_id: RequestIdOpt = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the stored plan's id.")
    ] = False,
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Generate a plan from a brief, showing the phases and tasks as they arrive."""
    out = _out(ctx, json_, target)
    b = brief_mod.load(file)
    if name is not None:
        b["name"] = name
    if description is not None:
        b["description"] = description
    if project is not None:
        b["project_id"] = project
    if requirement:
        b["requirements"] = requirement
    if constraint:
        b["constraints"] = constraint
    if agent:
        b["available_agents"] = [_agent(a) for a in _split(agent)]
    if not b.get("name") or not b.get("description"):
        raise errors.CliError(
            "a brief needs a name and a description (--name/--description or --file)",
            errors.USAGE,
        )
    live = out.live and not quiet
    with connect(out) as client:
        stream = client.stream_generate_plan(
            str(b["name"]),
            str(b["description"]),
            project_id=str(b.get("project_id", "")),
            requirements=[str(r) for r in b.get("requirements", ())],
            constraints=[str(c) for c in b.get("constraints", ())],
            available_agents=b.get("available_agents", ()),
            context=b.get("context"),
            persist=persist,
            request_id=request_id,
            timeout=None,
        )
        with stream:
            if out.json:
                result = None
                for event in stream:
                    print(to_json(event))
                return
            result = _follow(stream, out.console) if live else _last(stream)
    if result is None:
        raise errors.CliError("the generation ended without a result")
    if quiet:
        print(result.plan.id)
        return
    out.console.print(_summary(result, persist))


def _last(stream: Any) -> generation_pb2.GeneratedPlan | None:
    result = None
    for event in stream:
        if event.WhichOneof("event") == "completed":
            result = event.completed
    return result


def _follow(stream: Any, console: Console) -> generation_pb2.GeneratedPlan | None:
    """Shows each phase's progress and the tasks proposed so far while they arrive."""
    progress = Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        TaskProgressColumn(),
        console=console,
        transient=False,
    )
    phases: dict[int, Any] = {}
    tasks = None  # the row counting tasks, added under the phase that proposes them
    proposed: list[str] = []
    result = None
    with progress:
        for event in stream:
            kind = event.WhichOneof("event")
            if kind == "progress":
                p = event.progress
                if p.phase not in phases:
                    label = short_name(generation_pb2.PlanningPhase, p.phase).capitalize()
                    phases[p.phase] = progress.add_task(label, total=100)
                    # Earlier phases are over once a later one starts.
                    for phase, row in phases.items():
                        if phase < p.phase:
                            progress.update(row, completed=100)
                progress.update(phases[p.phase], completed=p.percent)
            elif kind == "task_proposed":
                proposed.append(event.task_proposed.task.title)
                if tasks is None:
                    tasks = progress.add_task("", total=None)
                progress.update(
                    tasks, description=f"Tasks proposed: {len(proposed)} ({proposed[-1][:40]})"
                )
            elif kind == "warning":
                progress.console.print(Text(f"warning: {event.warning.message}", style="yellow"))
            elif kind == "completed":
                result = event.completed
                for row in phases.values():
                    progress.update(row, completed=100)
                if tasks is not None:
                    progress.update(
                        tasks, total=1, completed=1, description=f"Tasks proposed: {len(proposed)}"
                    )
    return result


def _summary(r: generation_pb2.GeneratedPlan, persisted: bool) -> Group:
    tasks = [g.task for g in r.tasks]
    head = Text(
        f"Plan {r.plan.name!r}: {len(tasks)} tasks, {render.hours(r.total_effort_hours)} of work,"
        f" about {render.hours(r.estimated_duration_hours)}"
        f" ({render.hours(r.duration_low_hours)}–{render.hours(r.duration_high_hours)}),"
        f" confidence {r.confidence * 100:.0f}%",
        style="bold",
    )
    parts: list[Any] = [head, render.tasks_table(tasks, len(tasks), "", title="Generated tasks")]
    for risk in r.risks:
        level = short_name(generation_pb2.RiskSeverity, risk.severity)
        parts.append(Text(f"risk ({level}): {risk.title}"))
    parts.append(
        Text(
            f"Stored as {r.plan.id}: next, `plansmith optimize {r.plan.id} --apply`."
            if persisted and r.plan.id
            else "Not stored: rerun with --persist to keep it.",
            style="green" if persisted else "dim",
        )
    )
    return Group(*parts)


# -- optimize, analyze, suggest, estimate, decompose ----------------------------------------


@app.command(
    epilog=(
        "Examples:\n\n  plansmith optimize pln_123\n\n"
        "  plansmith optimize pln_123 --goal MINIMIZE_DURATION --time-limit 5 --apply"
    )
)
def optimize(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="PLAN")],
    goal: Annotated[
        list[str] | None, typer.Option(help="MINIMIZE_DURATION, BALANCE_WORKLOAD (in order).")
    ] = None,
    constraint: Annotated[
        list[str] | None,
        typer.Option(help="MAINTAIN_DEPENDENCIES, RESPECT_AGENT_CAPABILITIES."),
    ] = None,
    time_limit: Annotated[float | None, typer.Option(help="Solver seconds.")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Store the schedule on the tasks.")] = (
        False
    ),
    request_id: RequestIdOpt = None,
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Find the shortest schedule for a plan's agents (and store it with --apply)."""
    out = _out(ctx, json_, target)
    with connect(out) as client:
        r = client.optimize_plan(
            plan_id,
            optimization_goals=_split(goal),
            constraints=_split(constraint),
            time_limit=time_limit,
            apply=apply,
            request_id=request_id,
            timeout=_longer(out, time_limit),
        )
    out.emit(r, render.optimize_result(r, apply))


def _longer(out: Output, seconds: float | None) -> float | None:
    """The command's deadline, stretched to outlast the solver's own time limit."""
    if out.timeout is None:
        return None
    return max(out.timeout, (seconds or 0) + 10)


@app.command(
    epilog=(
        "Examples:\n\n  plansmith analyze pln_123\n\n"
        "  plansmith analyze pln_123 --type RISK_ASSESSMENT --samples 5000 --deadline 80"
    )
)
def analyze(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="PLAN")],
    type_: Annotated[
        list[str] | None,
        typer.Option(
            "--type", help="CRITICAL_PATH, RESOURCE_UTILIZATION, RISK_ASSESSMENT (default all)."
        ),
    ] = None,
    samples: Annotated[int, typer.Option(help="Monte Carlo runs (0: the server's).")] = 0,
    deadline: Annotated[float, typer.Option(help="Hours: the chance to finish by then.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed (0: the server's).")] = 0,
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Critical path, utilization per agent and risk percentiles of a plan."""
    out = _out(ctx, json_, target)
    with connect(out) as client:
        r = client.analyze_plan(
            plan_id,
            analysis_types=_split(type_),
            monte_carlo_samples=samples,
            deadline_hours=deadline,
            seed=seed,
        )
    out.emit(r, render.analysis(r))


@app.command(epilog="Example:\n\n  plansmith suggest pln_123 alice --count 5")
def suggest(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="PLAN")],
    agent_id: Annotated[str, typer.Argument(metavar="AGENT")],
    count: Annotated[int, typer.Option(help="How many (0: 3).")] = 0,
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """The ready tasks an agent should take next, best first."""
    out = _out(ctx, json_, target)
    with connect(out) as client:
        items = client.suggest_next_tasks(plan_id, agent_id, count=count)
    out.emit(
        planning_service_pb2.SuggestNextTasksResponse(suggestions=items),
        render.suggestions(items),
    )


@app.command(
    epilog=(
        "Examples:\n\n  plansmith estimate 'Write the checkout API'\n\n"
        "  plansmith estimate 'Write the checkout API' --plan pln_123 --agent alice"
    )
)
def estimate(
    ctx: typer.Context,
    description: str,
    agent: Annotated[str, typer.Option(help="Agent id: adjust to their pace.")] = "",
    plan: Annotated[str, typer.Option(help="Learn from this plan's finished tasks.")] = "",
    project: Annotated[str, typer.Option(help="Learn from this project's tasks.")] = "",
    scope: Annotated[str | None, typer.Option(help="PLAN or PROJECT.")] = None,
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Estimate a described task's hours from finished work."""
    out = _out(ctx, json_, target)
    with connect(out) as client:
        r = client.estimate_task_duration(
            description, agent_id=agent, plan_id=plan, project_id=project, scope=scope
        )
    out.emit(r, render.estimate(r))


@app.command(
    epilog=(
        "Examples:\n\n  plansmith decompose tsk_123 --level DETAILED --persist\n\n"
        "  plansmith decompose --description 'Build a login page'"
    )
)
def decompose(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="[TASK]", help="A stored task.")] = "",
    description: Annotated[str, typer.Option(help="Or a task described here.")] = "",
    level: Annotated[str | None, typer.Option(help="SUMMARY, STANDARD, DETAILED.")] = None,
    hours: Annotated[float, typer.Option(help="The described task's estimate.")] = 0.0,
    persist: Annotated[bool, typer.Option("--persist", help="Store as subtasks.")] = False,
    request_id: RequestIdOpt = None,
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Split a task into subtasks."""
    out = _out(ctx, json_, target)
    if not task_id and not description:
        raise errors.CliError("give a TASK id or --description", errors.USAGE)
    with connect(out) as client:
        r = client.decompose_task(
            task_id,
            description=description,
            decomposition_level=level,
            estimated_hours=hours,
            persist=persist,
            request_id=request_id,
        )
    out.emit(r, render.decomposition(r, persist))


# -- gantt ----------------------------------------------------------------------------------

FOLD = 40


@app.command(
    epilog=(
        "Examples:\n\n  plansmith gantt pln_123\n\n"
        "  plansmith gantt pln_123 --svg plan.svg\n\n"
        "  plansmith gantt pln_123 --mermaid > plan.mmd"
    )
)
def gantt(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="PLAN")],
    svg: Annotated[Path | None, typer.Option("--svg", help="Write the chart as SVG.")] = None,
    mermaid: Annotated[bool, typer.Option("--mermaid", help="Print Mermaid gantt text.")] = False,
    all_rows: Annotated[
        bool, typer.Option("--all", help=f"Every row (a terminal shows {FOLD} per agent).")
    ] = False,
    pager: Annotated[bool, typer.Option("--pager", help="Page the chart.")] = False,
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """The stored schedule as a Gantt chart: a row per task, grouped by agent."""
    out = _out(ctx, json_, target)
    with connect(out) as client:
        plan = client.get_plan(plan_id)
        tasks = list(client.iter_tasks(plan_id, per_page=500))
        critical: list[str] = []
        if any(t.HasField("schedule") for t in tasks):
            analysis = client.analyze_plan(plan_id, analysis_types=["CRITICAL_PATH"])
            critical = list(analysis.critical_path.critical_task_ids)
    if out.json:
        out.emit(plan_service_pb2.ListTasksResponse(tasks=tasks, total_size=len(tasks)))
        return
    chart = gantt_mod.build(plan.name, plan.id, tasks, critical)
    if svg is not None:
        svg.write_text(gantt_mod.svg(chart))
        out.err.print(f"Wrote {svg} ({len(chart.bars)} bars).")
    if mermaid:
        print(gantt_mod.mermaid(chart), end="")
    if svg is not None or mermaid:
        return
    if not chart.bars:
        out.console.print(gantt_mod.no_schedule_hint(plan.id))
        return
    fold = None if all_rows or not out.console.is_terminal else FOLD
    view = gantt_mod.terminal(chart, out.console.width, fold)
    if pager:
        with out.console.pager(styles=not out.colorless):
            out.console.print(view)
    else:
        out.console.print(view)


# -- status ---------------------------------------------------------------------------------


@app.command("status", epilog="Example:\n\n  plansmith status --window 60")
def status_(
    ctx: typer.Context,
    window: Annotated[int, typer.Option(help="Seconds of history (max 3600).")] = 300,
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """The server's status report (the same as `plansmith-server status`)."""
    out = _out(ctx, json_, target)
    with connect(out) as client:
        r = client.get_service_status(window_seconds=window)
    if out.json:
        out.emit(r)
    else:
        print(status.render(r))
