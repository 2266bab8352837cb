"""Domain-level timing of plan generation (no gRPC).

Example::

    .venv/bin/python bench/generation_domain.py --repeat 50

Prints the median and p90 wall time of one-shot ``generate_plan`` for a 10-requirement
request, the median time to the first streamed event, and the one-off cost of loading
and validating the method library.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "server"))

from plansmith_server.planning import (  # noqa: E402
    AgentSpec,
    PlanRequest,
    generate_plan,
    generate_plan_events,
    validate_library,
)

AGENTS = (
    AgentSpec("designer", "Dana", ("UI design", "Figma")),
    AgentSpec("frontend", "Finn", ("React", "TypeScript", "frontend")),
    AgentSpec("backend", "Bea", ("Python", "PostgreSQL", "backend")),
    AgentSpec("devops", "Olga", ("DevOps engineer", "Kubernetes", "Terraform")),
    AgentSpec("sre", "Sam", ("SRE", "Prometheus", "Grafana")),
    AgentSpec("qa", "Quinn", ("QA",)),
)

REQUEST = PlanRequest(
    name="SaaS MVP",
    description="Build the MVP of a project-management SaaS web application.",
    requirements=(
        "User sign-up and login",
        "Create projects and tasks",
        "Kanban board UI",
        "Email notifications",
        "Stripe billing",
        "Admin dashboard",
        "REST API for integrations",
        "Deploy to production",
        "Monitoring and alerting",
        "GDPR data export",
    ),
    constraints=("Must use React for the frontend", "Launch by 2027-03-01"),
    available_agents=AGENTS,
    context={"environment": "production", "backup_required": True},
)
NOW = date(2026, 11, 2)


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(0.9 * (len(ordered) - 1))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()

    start = time.perf_counter()
    validate_library()
    library_ms = (time.perf_counter() - start) * 1000

    plan = generate_plan(REQUEST, now=NOW)  # warm the cached library and indexes
    one_shot: list[float] = []
    first_event: list[float] = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        generate_plan(REQUEST, now=NOW)
        one_shot.append(time.perf_counter() - start)
        start = time.perf_counter()
        stream = generate_plan_events(REQUEST, now=NOW)
        next(stream)
        first_event.append(time.perf_counter() - start)
        stream.close()
    one_med, one_p90 = _ms(one_shot)
    first_med, first_p90 = _ms(first_event)
    print(
        f"request: {len(REQUEST.requirements)} requirements, {len(AGENTS)} agents -> "
        f"{len(plan.tasks)} tasks"
    )
    print("| measure | median ms | p90 ms |")
    print("|---|---|---|")
    print(f"| one-shot generate_plan | {one_med:.2f} | {one_p90:.2f} |")
    print(f"| time to first event | {first_med:.3f} | {first_p90:.3f} |")
    print(f"| library load + validation (once, uncached) | {library_ms:.1f} | |")


if __name__ == "__main__":
    main()
