"""A deterministic synthetic task history for benchmarking and testing estimation.

True durations follow known rules: a base effort per task type (recognizable from its
words), a size modifier ("simple" x0.6, "complex" x1.7), the pace of the agent doing
it, and log-normal noise. Recorded estimates know the type and size but not the agent's
pace. Everything is drawn from ``random.Random(seed)``, so the data is reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .estimation import CompletedTask

__all__ = ["AGENT_PACE", "SyntheticTask", "synthetic_history", "synthetic_queries"]

_TYPES: tuple[tuple[str, str, float], ...] = (
    (
        "Implement REST endpoint for {e}",
        "Add an API endpoint with validation and persistence for {e}",
        10.0,
    ),
    ("Write unit tests for the {e} module", "Raise unit test coverage of the {e} module", 5.0),
    ("Design database schema for {e}", "Model tables, keys and indexes for {e} data", 7.0),
    (
        "Configure CI pipeline for the {e} service",
        "Build, test and deploy stages for the {e} service",
        6.0,
    ),
    (
        "Build React page for the {e} dashboard",
        "Frontend page with charts and filters for {e}",
        14.0,
    ),
    ("Set up monitoring alerts for {e}", "Dashboards and alert rules for the {e} service", 4.0),
    ("Write documentation for the {e} API", "Reference docs and examples for the {e} API", 3.0),
    (
        "Migrate {e} data to the new database",
        "Move and reconcile {e} records into the new database",
        16.0,
    ),
)
_ENTITIES = ("orders", "payments", "users", "inventory", "shipping", "billing", "reports", "search")
_SIZES: tuple[tuple[str, float], ...] = (("simple ", 0.6), ("", 1.0), ("complex ", 1.7))

AGENT_PACE: dict[str, float] = {"alice": 0.7, "bob": 1.0, "carol": 1.45, "dave": 1.15}
"""True pace factor of each synthetic agent (actual = standard hours x pace)."""


@dataclass(frozen=True)
class SyntheticTask:
    """A task to estimate, with its true duration."""

    title: str
    description: str
    agent: str
    true_hours: float


def _draw(rng: random.Random) -> tuple[str, str, float, float, str]:
    title_t, desc_t, base = rng.choice(_TYPES)
    entity = rng.choice(_ENTITIES)
    size_word, size = rng.choice(_SIZES)
    agent = rng.choice(sorted(AGENT_PACE))
    standard = base * size
    true_hours = standard * AGENT_PACE[agent] * rng.lognormvariate(0.0, 0.15)
    title = (size_word + title_t.format(e=entity)).strip()
    title = title[0].upper() + title[1:]
    return title, desc_t.format(e=entity), standard, true_hours, agent


def synthetic_history(n: int = 200, seed: int = 7) -> tuple[CompletedTask, ...]:
    """`n` completed tasks (ids ``h1``...) with estimates and actual hours."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        title, description, standard, true_hours, agent = _draw(rng)
        estimated = standard * rng.lognormvariate(0.0, 0.2)
        out.append(
            CompletedTask(
                f"h{i + 1}", title, description, round(estimated, 1), round(true_hours, 2), agent
            )
        )
    return tuple(out)


def synthetic_queries(n: int = 80, seed: int = 11) -> tuple[SyntheticTask, ...]:
    """`n` new tasks from the same process, with their true hours."""
    rng = random.Random(seed)
    return tuple(
        SyntheticTask(t, d, a, round(h, 2)) for t, d, _, h, a in (_draw(rng) for _ in range(n))
    )
