"""A plan's stored schedule as a Gantt chart: in the terminal (Rich), as SVG, as Mermaid.

`build` turns tasks (with their `schedule`) and the critical task ids into a `Chart`;
the three renderers draw the same chart: one row per scheduled task, grouped by agent,
bars proportional to the scheduled hours, shaded by progress, critical ones marked.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.text import Text

from plansmith.enums import short_name
from plansmith.v1 import task_pb2

UNASSIGNED = "(unassigned)"
CRITICAL_MARK = "◆"
DONE_CHAR = "█"
TODO_CHAR = "░"


@dataclass(frozen=True)
class Bar:
    """One scheduled task."""

    task_id: str
    title: str
    agent: str
    start: float
    end: float
    progress: int
    critical: bool
    status: str


@dataclass(frozen=True)
class Unscheduled:
    """A task without a place in the stored schedule, and why."""

    task_id: str
    title: str
    reason: str


@dataclass
class Chart:
    name: str
    plan_id: str
    bars: list[Bar] = field(default_factory=list)
    unscheduled: list[Unscheduled] = field(default_factory=list)

    @property
    def span(self) -> float:
        return max((b.end for b in self.bars), default=0.0)

    def groups(self) -> list[tuple[str, list[Bar]]]:
        """Bars by agent (agents by name, unassigned last), each agent's by start."""
        by_agent: dict[str, list[Bar]] = {}
        for b in self.bars:
            by_agent.setdefault(b.agent, []).append(b)
        order = sorted(by_agent, key=lambda a: (a == UNASSIGNED, a))
        return [(a, sorted(by_agent[a], key=lambda b: (b.start, b.end, b.title))) for a in order]


def _reason(task: task_pb2.Task, plan_id: str) -> str:
    status = short_name(task_pb2.TaskStatus, task.status)
    if status == "DONE":
        return "done before the schedule was made"
    if status == "CANCELLED":
        return "cancelled"
    if not task.assigned_to:
        return f"no agent assigned: `plansmith optimize {plan_id} --apply` assigns and schedules"
    return f"not in the stored schedule: `plansmith optimize {plan_id} --apply` schedules it"


def build(
    name: str, plan_id: str, tasks: Iterable[task_pb2.Task], critical: Collection[str]
) -> Chart:
    chart = Chart(name=name, plan_id=plan_id)
    critical = set(critical)
    for t in tasks:
        s = t.schedule
        if t.HasField("schedule") and s.end_offset_hours > s.start_offset_hours:
            chart.bars.append(
                Bar(
                    task_id=t.id,
                    title=t.title,
                    agent=t.assigned_to or UNASSIGNED,
                    start=s.start_offset_hours,
                    end=s.end_offset_hours,
                    progress=max(0, min(100, t.progress)),
                    critical=t.id in critical,
                    status=short_name(task_pb2.TaskStatus, t.status),
                )
            )
        else:
            chart.unscheduled.append(Unscheduled(t.id, t.title, _reason(t, plan_id)))
    return chart


def no_schedule_hint(plan_id: str) -> str:
    return (
        f"This plan has no schedule yet. Make one with `plansmith optimize {plan_id} --apply`,"
        f" then run `plansmith gantt {plan_id}` again."
    )


def columns(start: float, end: float, scale: float) -> tuple[int, int]:
    """The bar's first column and its length (at least one column)."""
    first = round(start * scale)
    last = max(round(end * scale), first + 1)
    return first, last - first


def _tick_step(span: float, cells: int) -> float:
    """A round number of hours between axis ticks, about every 10 columns."""
    raw = span / max(1, cells // 10)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 5, 10):
        if raw <= m * magnitude:
            return m * magnitude
    return 10 * magnitude


def _fmt(h: float) -> str:
    return f"{h:g}"


def terminal(chart: Chart, width: int, fold: int | None = None) -> RenderableType:
    """The chart for a terminal `width` columns wide. With `fold`, each agent shows at
    most that many rows and a line counting the rest."""
    titles = [b.title for b in chart.bars]
    label = min(32, max((len(t) for t in titles), default=8)) + 1
    times = 15  # " 123.5–130.0 h"
    cells = max(20, width - label - 2 - times)
    span = chart.span or 1.0
    scale = cells / span
    lines: list[Text] = [Text(f"{chart.name} — {_fmt(round(span, 1))}h", style="bold")]

    step = _tick_step(span, cells)
    axis = [" "] * (cells + 8)
    tick = 0.0
    while tick <= span + 1e-9:
        col = round(tick * scale)
        for i, ch in enumerate(f"|{_fmt(round(tick, 2))}h"):
            if col + i < len(axis):
                axis[col + i] = ch
        tick += step
    lines.append(Text(" " * (label + 2) + "".join(axis).rstrip(), style="dim"))

    for agent, bars in chart.groups():
        busy = sum(b.end - b.start for b in bars)
        lines.append(Text(f"{agent}  ({len(bars)} tasks, {_fmt(round(busy, 1))}h)", style="bold"))
        shown = bars if fold is None else bars[:fold]
        for b in shown:
            first, length = columns(b.start, b.end, scale)
            done = round(length * b.progress / 100)
            style = "red" if b.critical else "blue"
            row = Text()
            row.append(CRITICAL_MARK if b.critical else " ", style="bold red")
            title = b.title if len(b.title) < label else b.title[: label - 2] + "…"
            row.append(" " + title.ljust(label))
            row.append(" " * first)
            row.append(DONE_CHAR * done, style=style)
            row.append(TODO_CHAR * (length - done), style=style)
            row.append(" " * (cells - first - length))
            row.append(f" {b.start:6.1f}–{b.end:<6.1f}h", style="dim")
            lines.append(row)
        if len(shown) < len(bars):
            lines.append(
                Text(f"  … {len(bars) - len(shown)} more of {agent} (--all shows all)", style="dim")
            )
    lines.append(
        Text(
            f"{CRITICAL_MARK} critical path   {DONE_CHAR} done   {TODO_CHAR} to do",
            style="dim",
        )
    )
    if chart.unscheduled:
        lines.append(Text(f"Not scheduled ({len(chart.unscheduled)}):", style="bold yellow"))
        for u in chart.unscheduled:
            lines.append(Text(f"  {u.title} ({u.task_id}): {u.reason}"))
    return Group(*lines)


# -- SVG ----------------------------------------------------------------------------------

SVG_LABEL = 260
SVG_CHART = 760
SVG_ROW = 22
SVG_TOP = 56
COLORS = {"bar": "#4a78c2", "critical": "#d0433a", "done": "#1f3f73", "done-critical": "#7e1d17"}


def svg(chart: Chart) -> str:
    """The chart as a standalone SVG document: each task a `<rect class="bar">` (with
    `data-task-id`, `data-start`, `data-end`; `critical` in the class of critical ones)
    and its progress a `<rect class="progress">` over it."""
    rows: list[tuple[str, Bar | str]] = []
    for agent, bars in chart.groups():
        rows.append(("agent", agent))
        rows += [("bar", b) for b in bars]
    extra = len(chart.unscheduled) + (1 if chart.unscheduled else 0)
    height = SVG_TOP + SVG_ROW * (len(rows) + extra + 2)
    width = SVG_LABEL + SVG_CHART + 100
    root = ET.Element(
        "svg",
        xmlns="http://www.w3.org/2000/svg",
        width=str(width),
        height=str(height),
        viewBox=f"0 0 {width} {height}",
        attrib={"font-family": "sans-serif", "font-size": "12"},
    )
    ET.SubElement(root, "rect", width=str(width), height=str(height), fill="white")
    span = chart.span or 1.0
    scale = SVG_CHART / span
    title = ET.SubElement(root, "text", x="10", y="22", attrib={"font-size": "16"})
    title.set("font-weight", "bold")
    title.text = f"{chart.name} ({_fmt(round(span, 1))} h)"
    step = _tick_step(span, 80)
    bottom = SVG_TOP + SVG_ROW * len(rows)
    tick = 0.0
    while tick <= span + 1e-9:
        x = SVG_LABEL + tick * scale
        ET.SubElement(
            root,
            "line",
            x1=f"{x:.2f}",
            x2=f"{x:.2f}",
            y1=str(SVG_TOP - 8),
            y2=str(bottom),
            stroke="#ddd",
        )
        label = ET.SubElement(root, "text", x=f"{x:.2f}", y=str(SVG_TOP - 12), fill="#666")
        label.text = f"{_fmt(round(tick, 2))}h"
        tick += step
    y = SVG_TOP
    for _kind, item in rows:
        if isinstance(item, str):
            text = ET.SubElement(root, "text", x="10", y=str(y + 15), attrib={"class": "agent"})
            text.set("font-weight", "bold")
            text.text = item
        else:
            b = item
            text = ET.SubElement(root, "text", x="24", y=str(y + 15), attrib={"class": "label"})
            name = b.title if len(b.title) <= 34 else b.title[:33] + "…"
            text.text = (CRITICAL_MARK + " " if b.critical else "") + name
            x = SVG_LABEL + b.start * scale
            w = max((b.end - b.start) * scale, 1.0)
            group = ET.SubElement(root, "g")
            tip = ET.SubElement(group, "title")
            tip.text = f"{b.title}: {b.start:g}h → {b.end:g}h, {b.progress}% done ({b.status})"
            ET.SubElement(
                group,
                "rect",
                x=f"{x:.2f}",
                y=str(y + 3),
                width=f"{w:.2f}",
                height=str(SVG_ROW - 6),
                rx="3",
                fill=COLORS["critical" if b.critical else "bar"],
                attrib={
                    "class": "bar critical" if b.critical else "bar",
                    "data-task-id": b.task_id,
                    "data-start": f"{b.start:g}",
                    "data-end": f"{b.end:g}",
                },
            )
            if b.progress:
                ET.SubElement(
                    group,
                    "rect",
                    x=f"{x:.2f}",
                    y=str(y + 3),
                    width=f"{w * b.progress / 100:.2f}",
                    height=str(SVG_ROW - 6),
                    rx="3",
                    fill=COLORS["done-critical" if b.critical else "done"],
                    attrib={"class": "progress", "data-task-id": b.task_id},
                )
        y += SVG_ROW
    y += SVG_ROW
    legend = ET.SubElement(root, "text", x="10", y=str(y), fill="#444")
    legend.text = "red: critical path; dark part of a bar: progress"
    if chart.unscheduled:
        y += SVG_ROW
        head = ET.SubElement(root, "text", x="10", y=str(y))
        head.set("font-weight", "bold")
        head.text = f"Not scheduled ({len(chart.unscheduled)}):"
        for u in chart.unscheduled:
            y += SVG_ROW
            line = ET.SubElement(root, "text", x="24", y=str(y), attrib={"class": "unscheduled"})
            line.text = f"{u.title}: {u.reason}"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# -- Mermaid --------------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    # `:` separates a task's name from its fields and `#`/`;` end a line in Mermaid.
    return re.sub(r"[:;#\n]+", " ", text).strip() or "task"


def mermaid(chart: Chart) -> str:
    """Mermaid `gantt` text. Mermaid needs dates: hour h of the schedule is second
    h × 3600 of the epoch (`dateFormat X`), so the axis reads hours:minutes."""
    lines = [
        "gantt",
        f"    title {_mermaid_text(chart.name)}",
        "    dateFormat X",
        "    axisFormat %H:%M",
    ]
    for agent, bars in chart.groups():
        lines.append(f"    section {_mermaid_text(agent)}")
        for b in bars:
            tags = []
            if b.critical:
                tags.append("crit")
            if b.status == "DONE":
                tags.append("done")
            elif b.status == "IN_PROGRESS":
                tags.append("active")
            ident = re.sub(r"\W", "_", b.task_id)
            start = round(b.start * 3600)
            minutes = max(1, round((b.end - b.start) * 60))
            fields = ", ".join([*tags, ident, str(start), f"{minutes}m"])
            lines.append(f"    {_mermaid_text(b.title)} :{fields}")
    return "\n".join(lines) + "\n"
