"""The `plansmith` commands (Typer): plans, tasks, the planning RPCs, gantt, status."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from plansmith import PlansmithClient
from plansmith.cli import errors, render
from plansmith.cli.output import Output
from plansmith.errors import PlansmithError
from plansmith.v1 import execution_pb2, plan_service_pb2

DEFAULT_TARGET = "localhost:50051"


class _Group(TyperGroup):
    """Turns a failed call anywhere below into one line on stderr and an exit code."""

    # Any: the Context of click, or of the click that typer 0.2x vendors, by typer's version.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except PlansmithError as err:
            out: Output | None = ctx.obj
            target = out.target if out else DEFAULT_TARGET
            _fail(errors.error_line(err, target), errors.exit_code(err))
        except errors.CliError as err:
            _fail(err.message, err.code)


def _fail(message: str, code: int) -> None:
    print(f"plansmith: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _typer(help_text: str, epilog: str = "") -> typer.Typer:
    return typer.Typer(
        cls=_Group,
        help=help_text,
        epilog=epilog,
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


app = _typer(
    "Plansmith from the command line: plans and tasks, plan generation, schedules.",
    epilog=(
        "Examples:\n\n"
        "  plansmith plans list\n\n"
        "  plansmith --target plansmith.internal:50051 plans show pln_123\n\n"
        "  plansmith generate --file brief.yaml --persist\n\n"
        "Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 server unavailable."
    ),
)
plans_app = _typer("Create, list, show and delete plans.")
tasks_app = _typer("Add, list, show and update a plan's tasks.")
app.add_typer(plans_app, name="plans")
app.add_typer(tasks_app, name="tasks")

# Options accepted on every command as well as before it (`plansmith --json plans list`
# and `plansmith plans list --json` mean the same).
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the response as proto3 JSON (as grpcurl does).")
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target", "-t", envvar="PLANSMITH_TARGET", help="Server host:port.", show_default=False
    ),
]
RequestIdOpt = Annotated[
    str | None,
    typer.Option(
        "--request-id",
        help="Idempotency key: the same key again returns the first result, writes nothing.",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the id.")]


@app.callback()
def _root(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Option("--target", "-t", envvar="PLANSMITH_TARGET", help="Server host:port."),
    ] = DEFAULT_TARGET,
    json_: JsonOpt = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colour (so does the NO_COLOR variable).")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds per command (0: no deadline).")
    ] = 10.0,
) -> None:
    ctx.obj = Output(target=target, timeout=timeout or None, json=json_, no_color=no_color)


def _out(ctx: typer.Context, json_: bool, target: str | None) -> Output:
    out: Output = ctx.find_root().obj
    if json_:
        out.json = True
    if target:
        out.target = target
    return out


@contextlib.contextmanager
def connect(out: Output) -> Iterator[PlansmithClient]:
    with PlansmithClient.connect(out.target, timeout=out.timeout) as client:
        yield client


def _split(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated values: `--agent a --agent b,c` is [a, b, c]."""
    return [v.strip() for item in values or () for v in item.split(",") if v.strip()]


# -- plans ----------------------------------------------------------------------------------


@plans_app.command("list", epilog="Example:\n\n  plansmith plans list --project web --limit 20")
def plans_list(
    ctx: typer.Context,
    project: Annotated[str, typer.Option(help="Only this project's plans.")] = "",
    status: Annotated[str | None, typer.Option(help="DRAFT, ACTIVE, ON_HOLD, ...")] = None,
    limit: Annotated[int, typer.Option(help="Plans per page.")] = 50,
    page: Annotated[str | None, typer.Option(help="A page token, or a page number.")] = None,
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """List plans, oldest first."""
    out = _out(ctx, json_, target)
    with connect(out) as client:
        r = client.get_plans(project_id=project, status=status, page=_page(page), per_page=limit)
    out.emit(r, render.plans_table(r.plans, r.total_size, r.next_page_token))


def _page(page: str | None) -> int | str | None:
    return int(page) if page is not None and page.isdigit() else page


@plans_app.command("show", epilog="Example:\n\n  plansmith plans show pln_123")
def plans_show(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="PLAN")],
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Show a plan and its tasks."""
    out = _out(ctx, json_, target)
    with connect(out) as client:
        plan = client.get_plan(plan_id)
        if out.json:
            out.emit(plan_service_pb2.GetPlanResponse(plan=plan))
            return
        tasks = client.get_tasks(plan_id, per_page=100)
    out.console.print(render.plan_detail(plan))
    out.console.print(render.tasks_table(tasks.tasks, tasks.total_size, tasks.next_page_token))


@plans_app.command(
    "create",
    epilog=(
        "Example:\n\n  plansmith plans create Launch --project web --agent alice --agent bob"
        " --request-id launch-1"
    ),
)
def plans_create(
    ctx: typer.Context,
    name: str,
    description: Annotated[str, typer.Option(help="What the plan is for.")] = "",
    project: Annotated[str, typer.Option(help="Project id.")] = "",
    objective: Annotated[list[str] | None, typer.Option(help="An objective (repeat).")] = None,
    agent: Annotated[
        list[str] | None, typer.Option(help="An agent id; id:cap1+cap2 gives capabilities.")
    ] = None,
    request_id: RequestIdOpt = None,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Create a plan."""
    out = _out(ctx, json_, target)
    with connect(out) as client:
        plan = client.create_plan(
            name,
            description=description,
            project_id=project,
            objectives=objective or (),
            agents=[_agent(a) for a in _split(agent)],
            request_id=request_id,
        )
    if quiet and not out.json:
        print(plan.id)
        return
    out.emit(plan_service_pb2.CreatePlanResponse(plan=plan), render.plan_detail(plan))


def _agent(spec: str) -> dict[str, Any]:
    agent_id, _, caps = spec.partition(":")
    return {"id": agent_id, "capabilities": [c for c in caps.split("+") if c]}


@plans_app.command("delete", epilog="Example:\n\n  plansmith plans delete pln_123")
def plans_delete(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="PLAN")],
    etag: Annotated[str, typer.Option(help="Only if the plan still has this etag.")] = "",
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Delete a plan and its tasks."""
    out = _out(ctx, json_, target)
    with connect(out) as client:
        r = client.delete_plan(plan_id, etag=etag)
    out.emit(r, f"Deleted {plan_id} ({r.deleted_task_count} task(s)).")


# -- tasks ----------------------------------------------------------------------------------


@tasks_app.command(
    "list", epilog="Example:\n\n  plansmith tasks list pln_123 --status TODO --assignee alice"
)
def tasks_list(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="PLAN")],
    status: Annotated[str | None, typer.Option(help="TODO, IN_PROGRESS, DONE, ...")] = None,
    assignee: Annotated[str, typer.Option(help="Only this agent's tasks.")] = "",
    priority: Annotated[str | None, typer.Option(help="LOW, MEDIUM, HIGH, CRITICAL.")] = None,
    limit: Annotated[int, typer.Option(help="Tasks per page.")] = 100,
    page: Annotated[str | None, typer.Option(help="A page token, or a page number.")] = None,
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """List a plan's tasks, oldest first."""
    out = _out(ctx, json_, target)
    with connect(out) as client:
        r = client.get_tasks(
            plan_id,
            status=status,
            assigned_to=assignee,
            priority=priority,
            page=_page(page),
            per_page=limit,
        )
    out.emit(r, render.tasks_table(r.tasks, r.total_size, r.next_page_token))


@tasks_app.command("show", epilog="Example:\n\n  plansmith tasks show tsk_123")
def tasks_show(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK")],
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Show a task."""
    out = _out(ctx, json_, target)
    with connect(out) as client:
        task = client.get_task(task_id)
    out.emit(plan_service_pb2.GetTaskResponse(task=task), render.task_detail(task))


@tasks_app.command(
    "add",
    epilog=(
        "Example:\n\n  plansmith tasks add pln_123 'Build pages' --estimate 8 --priority HIGH"
        " --depends-on tsk_1 --assignee alice"
    ),
)
def tasks_add(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="PLAN")],
    title: str,
    description: Annotated[str, typer.Option(help="Details.")] = "",
    estimate: Annotated[float | None, typer.Option(help="Estimated hours.")] = None,
    priority: Annotated[str | None, typer.Option(help="LOW, MEDIUM, HIGH, CRITICAL.")] = None,
    depends_on: Annotated[list[str] | None, typer.Option(help="A task id (repeat).")] = None,
    assignee: Annotated[str, typer.Option(help="Agent id.")] = "",
    capability: Annotated[list[str] | None, typer.Option(help="Required (repeat).")] = None,
    request_id: RequestIdOpt = None,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Add a task to a plan."""
    out = _out(ctx, json_, target)
    with connect(out) as client:
        task = client.create_task(
            title,
            plan_id=plan_id,
            description=description,
            estimated_hours=estimate,
            priority=priority,
            dependencies=_split(depends_on),
            assigned_to=assignee,
            required_capabilities=_split(capability),
            request_id=request_id,
        )
    if quiet and not out.json:
        print(task.id)
        return
    out.emit(plan_service_pb2.CreateTaskResponse(task=task), render.task_detail(task))


@tasks_app.command(
    "update",
    epilog="Example:\n\n  plansmith tasks update tsk_123 --status IN_PROGRESS --progress 40",
)
def tasks_update(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK")],
    title: Annotated[str | None, typer.Option(help="New title.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    status: Annotated[str | None, typer.Option(help="TODO, IN_PROGRESS, DONE, ...")] = None,
    progress: Annotated[int | None, typer.Option(help="Percent done, 0-100.")] = None,
    priority: Annotated[str | None, typer.Option(help="LOW, MEDIUM, HIGH, CRITICAL.")] = None,
    estimate: Annotated[float | None, typer.Option(help="Estimated hours.")] = None,
    actual: Annotated[float | None, typer.Option(help="Hours spent.")] = None,
    assignee: Annotated[str | None, typer.Option(help="Agent id ('' unassigns).")] = None,
    etag: Annotated[str, typer.Option(help="Only if the task still has this etag.")] = "",
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Change the fields given (only those)."""
    out = _out(ctx, json_, target)
    given: dict[str, Any] = {
        "title": title,
        "description": description,
        "status": status,
        "progress": progress,
        "priority": priority,
        "estimated_hours": estimate,
        "actual_hours": actual,
        "assigned_to": assignee,
    }
    fields = {k: v for k, v in given.items() if v is not None}
    if not fields:
        raise errors.CliError(
            "nothing to change: give at least one option (see --help)", errors.USAGE
        )
    with connect(out) as client:
        task = client.update_task(task_id, etag=etag, **fields)
    out.emit(plan_service_pb2.UpdateTaskResponse(task=task), render.task_detail(task))


@tasks_app.command("start", epilog="Example:\n\n  plansmith tasks start tsk_123 --agent alice")
def tasks_start(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK")],
    agent: Annotated[str, typer.Option(help="The agent starting it.")],
    etag: Annotated[str, typer.Option(help="Only if the task still has this etag.")] = "",
    request_id: RequestIdOpt = None,
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Start a task: refused, naming every unmet precondition, when it cannot start."""
    out = _out(ctx, json_, target)
    with connect(out) as client:
        task = client.start_task(task_id, agent, etag=etag, request_id=request_id)
    out.emit(execution_pb2.StartTaskResponse(task=task), render.task_detail(task))


@tasks_app.command(
    "done", epilog="Example:\n\n  plansmith tasks done tsk_123 --actual 6 --output rows=42"
)
def tasks_done(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK")],
    actual: Annotated[float, typer.Option(help="Hours spent (0 keeps the task's).")] = 0.0,
    output: Annotated[list[str] | None, typer.Option(help="KEY=VALUE produced (repeat).")] = None,
    etag: Annotated[str, typer.Option(help="Only if the task still has this etag.")] = "",
    request_id: RequestIdOpt = None,
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Finish a task in progress."""
    out = _out(ctx, json_, target)
    outputs: dict[str, str] = {}
    for item in output or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise errors.CliError(f"--output {item!r}: expected KEY=VALUE", errors.USAGE)
        outputs[key] = value
    with connect(out) as client:
        task = client.complete_task(
            task_id, actual_hours=actual, outputs=outputs, etag=etag, request_id=request_id
        )
    out.emit(execution_pb2.CompleteTaskResponse(task=task), render.task_detail(task))


@tasks_app.command(
    "fail",
    epilog=(
        "Example:\n\n  plansmith tasks fail tsk_123 'connection reset by peer'\n\n"
        "  plansmith tasks fail tsk_123 'nulls in customer_id' --category DATA_QUALITY --dry-run"
    ),
)
def tasks_fail(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK")],
    message: Annotated[str, typer.Argument(help="What went wrong.")],
    category: Annotated[
        str | None,
        typer.Option(
            help="TRANSIENT, RESOURCE_EXHAUSTION, DATA_QUALITY, SCHEMA_MISMATCH, "
            "DEPENDENCY_MISSING, PERMISSION, CAPABILITY, UNKNOWN; omitted: the server "
            "classifies the message."
        ),
    ] = None,
    retry_after: Annotated[
        float | None, typer.Option(help="Seconds to wait before a retry.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Show the decision; change nothing.")] = False,
    etag: Annotated[str, typer.Option(help="Only if the task still has this etag.")] = "",
    request_id: RequestIdOpt = None,
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Report that a task failed, and show what the replanner decided."""
    out = _out(ctx, json_, target)
    with connect(out) as client:
        r = client.report_task_failure(
            task_id,
            message,
            category=category,
            retry_after=retry_after,
            dry_run=dry_run,
            etag=etag,
            request_id=request_id,
        )
    out.emit(r, render.replan_record(r.record, r.task))


# The planning commands and gantt/status register themselves on `app`.
from plansmith.cli import commands as _commands  # noqa: E402,F401
from plansmith.cli import watch as _watch  # noqa: E402,F401


def run() -> None:
    app(prog_name="plansmith")
