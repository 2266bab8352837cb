"""`plansmith watch PLAN`: follows a plan, one line per change as it commits."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from google.protobuf import json_format

from plansmith.cli.app import JsonOpt, TargetOpt, _out, app
from plansmith.enums import short_name
from plansmith.v1 import plan_pb2, task_pb2, watch_pb2


def change_line(revision: watch_pb2.PlanRevision, change: watch_pb2.PlanChange) -> str:
    """`r12 TASK_UPDATED tsk_… "Title" IN_PROGRESS 60% @ann`: what changed, briefly."""
    kind = short_name(watch_pb2.PlanChangeType, change.type)
    parts = [f"r{revision.revision}", kind, change.entity_id]
    if change.HasField("task"):
        t = change.task
        parts += [f'"{t.title}"', short_name(task_pb2.TaskStatus, t.status)]
        if t.progress:
            parts.append(f"{t.progress}%")
        if t.assigned_to:
            parts.append(f"@{t.assigned_to}")
    elif change.HasField("plan"):
        parts += [f'"{change.plan.name}"', short_name(plan_pb2.PlanStatus, change.plan.status)]
    return " ".join(parts)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  plansmith watch pln_123                 changes from now on\n\n"
        "  plansmith watch pln_123 --from 0        the whole retained history, then live\n\n"
        "  plansmith watch pln_123 --from 41 --json --count 10\n\n"
        "Reconnects by itself (server restarts included) from the last revision shown; "
        "ends when the plan is deleted, after --count revisions, or on Ctrl-C."
    )
)
def watch(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="PLAN")],
    from_revision: Annotated[
        int | None,
        typer.Option("--from", help="Start after this revision (default: from now on)."),
    ] = None,
    count: Annotated[
        int, typer.Option("--count", help="Stop after this many revisions (0: never).")
    ] = 0,
    json_: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Follow a plan's changes as they commit (WatchPlan)."""
    out = _out(ctx, json_, target)
    from plansmith import PlansmithClient

    seen = 0
    try:
        with (
            PlansmithClient.connect(out.target) as client,
            client.watch_plan(plan_id, from_revision) as stream,
        ):
            for msg in stream:
                seen += _show(out, msg)
                if count and seen >= count:
                    return
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _show(out: Any, msg: watch_pb2.WatchPlanResponse) -> int:
    """Prints one message; returns how many revisions it carried."""
    if out.json:
        # One object per line (NDJSON): a stream for scripts.
        print(json_format.MessageToJson(msg, indent=None), flush=True)
        return len(msg.changes.revisions)
    event = msg.WhichOneof("event")
    if event == "changes":
        for revision in msg.changes.revisions:
            for change in revision.changes:
                out.console.print(change_line(revision, change))
        return len(msg.changes.revisions)
    if event == "plan_deleted":
        out.console.print(f"plan deleted at revision {msg.plan_deleted.revision}")
    return 0
