"""Which backends to try for a request, in order: the first matching rule's backend and
fallbacks, the embedded planner always last. A request naming a backend bypasses the
rules."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plansmith_server.backends.config import EMBEDDED, ContextCondition, RoutingConfig, Rule
from plansmith_server.errors import FieldViolation, InvalidArgumentError


@dataclass(frozen=True)
class Budget:
    """What a request may spend on model backends; 0 means no limit."""

    max_cost: float = 0.0
    max_tokens: int = 0


@dataclass(frozen=True)
class RouteRequest:
    """What the rules look at."""

    method: str
    """`generate`, `decompose` or `estimate`."""
    text: str
    """Description and requirements (keywords are matched in these)."""
    requirements: int = 0
    context: Mapping[str, Any] = field(default_factory=dict)
    budget: Budget = field(default_factory=Budget)


@dataclass(frozen=True)
class Route:
    """The backends to try, in order (the embedded planner last), and why."""

    chain: tuple[str, ...]
    rule: str
    """The matching rule's name, `request` (named by the caller) or `default`."""
    options: Mapping[str, Any] = field(default_factory=dict)


def choose(config: RoutingConfig | None, req: RouteRequest, backend: str = "") -> Route:
    """The route for `req`; `backend` is the caller's explicit choice (may be empty)."""
    known = [*(config.backends if config else ()), EMBEDDED]
    if backend:
        if backend not in known:
            raise InvalidArgumentError(
                [
                    FieldViolation(
                        "backend", f"unknown backend {backend!r}; configured: {', '.join(known)}"
                    )
                ],
                reason="UNKNOWN_BACKEND",
                metadata={"configured": ",".join(known)},
            )
        return Route(_chain([backend]), "request")
    if config is None:
        return Route((EMBEDDED,), "default")
    for rule in config.rules:
        if matches(rule, req):
            return Route(_chain([rule.backend, *rule.fallback]), rule.name, rule.options)
    return Route(_chain(list(config.default)), "default")


def _chain(names: list[str]) -> tuple[str, ...]:
    """Names in order without repeats, ending with the embedded planner."""
    out = list(dict.fromkeys(n for n in names if n != EMBEDDED))
    return (*out, EMBEDDED)


def matches(rule: Rule, req: RouteRequest) -> bool:
    """Whether every condition of `rule` holds for `req` (no condition: always)."""
    if req.method not in rule.methods:
        return False
    if rule.keywords:
        text = req.text.lower()
        if not any(re.search(rf"(?<!\w){re.escape(k)}(?!\w)", text) for k in rule.keywords):
            return False
    if rule.min_requirements is not None and req.requirements < rule.min_requirements:
        return False
    if rule.max_requirements is not None and req.requirements > rule.max_requirements:
        return False
    cost = req.budget.max_cost
    if rule.min_budget is not None and not (cost > 0 and cost >= rule.min_budget):
        return False
    if rule.max_budget is not None and not (cost > 0 and cost <= rule.max_budget):
        return False
    return all(_holds(c, req.context) for c in rule.context)


_MISSING = object()


def _lookup(context: Mapping[str, Any], path: str) -> Any:
    value: Any = context
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _same(a: Any, b: Any) -> bool:
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return na == nb
    return type(a) is type(b) and a == b


def _holds(c: ContextCondition, context: Mapping[str, Any]) -> bool:
    value = _lookup(context, c.path)
    if value is _MISSING:
        return False
    if c.op == "equals":
        return _same(value, c.value)
    if c.op == "in":
        return any(_same(value, x) for x in c.value)
    n = _number(value)
    if n is None:
        return False
    return n > c.value if c.op == "gt" else n < c.value
