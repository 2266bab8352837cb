"""How long `plansmith gantt` takes to lay out and render a 1,000-task schedule.

Prints seconds for the terminal view (all rows, and folded as a terminal shows it), the
SVG and the Mermaid text, each against a baseline measured in the same run: Rich
rendering a plain 1,000-row table of the same titles. Goal: under a second each.
No server: the chart is built from Task messages, as the command builds it after fetching.
"""

from __future__ import annotations

import io
import random
import time

from rich.console import Console
from rich.table import Table

from plansmith.cli import gantt
from plansmith.v1 import task_pb2

N = 1000
AGENTS = [f"agent-{i}" for i in range(8)]


def tasks(seed: int = 1) -> list[task_pb2.Task]:
    rng = random.Random(seed)
    free = dict.fromkeys(AGENTS, 0.0)
    out = []
    for i in range(N):
        agent = rng.choice(AGENTS)
        start = free[agent] + rng.choice((0.0, 0.0, 1.5))
        end = start + rng.uniform(0.5, 12.0)
        free[agent] = end
        out.append(
            task_pb2.Task(
                id=f"tsk_{i:04d}",
                title=f"Task number {i} of the big plan",
                assigned_to=agent,
                progress=rng.choice((0, 0, 25, 50, 100)),
                schedule=task_pb2.TaskSchedule(start_offset_hours=start, end_offset_hours=end),
            )
        )
    return out


def timed(fn) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ts = tasks()
    critical = {t.id for t in ts[::7]}

    def console() -> Console:
        return Console(file=io.StringIO(), width=160, force_terminal=True, color_system="truecolor")

    def baseline() -> None:
        table = Table()
        table.add_column("title")
        for t in ts:
            table.add_row(t.title)
        console().print(table)

    def view(fold: int | None) -> None:
        chart = gantt.build("Big", "pln_big", ts, critical)
        console().print(gantt.terminal(chart, 160, fold))

    base = timed(baseline)
    print(f"baseline (Rich table, {N} rows): {base:.3f} s")
    for name, fn in (
        ("terminal, all rows", lambda: view(None)),
        ("terminal, folded (40 per agent)", lambda: view(40)),
        ("svg", lambda: gantt.svg(gantt.build("Big", "pln_big", ts, critical))),
        ("mermaid", lambda: gantt.mermaid(gantt.build("Big", "pln_big", ts, critical))),
    ):
        s = timed(fn)
        print(f"{name}: {s:.3f} s ({s / base:.2f}x baseline)")


if __name__ == "__main__":
    main()
