"""What a model's answer costs the server to check, within the reader's caps.

Example::

    .venv/bin/python bench/llm_answers.py

Times, in one run: the baseline (a 3-task plan), the largest plan the caps allow (300
tasks, each depending on every earlier one), and an 8,000-task answer (~2.4 MB), which the
shape check refuses before any task is built. Then the longest event-loop stall while the
300-task plan is checked the way the router does it (`asyncio.to_thread`) against checking
it on the loop. Prints each as a ratio to the baseline.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "server"))

from plansmith_server.backends import llm_plans  # noqa: E402
from plansmith_server.backends.errors import BackendOutputError  # noqa: E402
from plansmith_server.planning import AgentSpec, PlanRequest  # noqa: E402

REQUEST = PlanRequest(
    name="Orders API",
    description="Build a REST API for orders",
    requirements=["Orders can be created", "Orders are stored"],
    available_agents=[AgentSpec(id="ann", capabilities=("Python",)), AgentSpec(id="bob")],
)
SCHEMA = llm_plans.plan_schema(REQUEST)


def plan(n: int, *, dense: bool) -> str:
    def task(i: int) -> dict:
        deps = [f"x{j}" for j in range(i)] if dense else ([f"x{i - 1}"] if i else [])
        return {
            "id": f"x{i}", "title": f"Task {i}", "description": "d", "priority": "HIGH",
            "optimistic_hours": 1, "estimated_hours": 2, "pessimistic_hours": 4,
            "dependencies": deps, "assigned_to": "ann", "required_capabilities": ["Python"],
            "acceptance_criteria": [], "requirement_indexes": [0, 1],
        }

    return json.dumps({"tasks": [task(i) for i in range(n)], "risks": [], "assumptions": []})


def check(content: str) -> None:
    try:
        llm_plans.plan_from_answer(content, REQUEST, SCHEMA, today=date(2026, 1, 5), source="m")
    except BackendOutputError:
        pass


def timed(content: str, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        check(content)
    return (time.perf_counter() - start) / repeat


async def stall(content: str, *, threaded: bool) -> float:
    """The longest gap between ticks of a 1 ms ticker while `content` is checked."""
    gaps: list[float] = []
    done = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    t = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.01)
    if threaded:
        await asyncio.to_thread(check, content)
    else:
        check(content)
    done = True
    await t
    return max(gaps)


def main() -> None:
    small, largest, huge = plan(3, dense=False), plan(300, dense=True), plan(8000, dense=False)
    base = timed(small, 50)
    print(f"baseline 3 tasks ({len(small):,} chars): {base * 1000:.2f} ms")
    for label, content, repeat in (("300 dense tasks", largest, 3), ("8000 tasks", huge, 3)):
        took = timed(content, repeat)
        print(f"{label} ({len(content):,} chars): {took * 1000:.1f} ms, {took / base:.0f}x")
    on_loop = asyncio.run(stall(largest, threaded=False))
    threaded = asyncio.run(stall(largest, threaded=True))
    print(f"longest loop stall checking 300 dense tasks: on the loop {on_loop * 1000:.0f} ms, "
          f"in a thread {threaded * 1000:.0f} ms ({threaded / on_loop:.2f} of it)")


if __name__ == "__main__":
    main()
