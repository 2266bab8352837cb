"""Planner backends and routing: which planner serves a request (the embedded HTN planner,
or a model behind an OpenAI-compatible API), per-backend circuit breakers, budgets, and
the record of every attempt. See docs/planning.md ("Backends and routing")."""

from plansmith_server.backends.config import EMBEDDED, RoutingConfig, RoutingConfigError, load
from plansmith_server.backends.router import (
    NO_CALL,
    Attempt,
    AttemptEvent,
    BackendState,
    Call,
    Outcome,
    PlanStart,
    Routed,
    Router,
    plan_events,
)
from plansmith_server.backends.routing import Budget

__all__ = [
    "EMBEDDED",
    "NO_CALL",
    "Attempt",
    "AttemptEvent",
    "BackendState",
    "Budget",
    "Call",
    "Outcome",
    "PlanStart",
    "Routed",
    "Router",
    "RoutingConfig",
    "RoutingConfigError",
    "load",
    "plan_events",
]
