"""The effective planning context: explicit request context plus facts read from text.

The caller's ``context`` (a protobuf ``Struct`` turned into a dict) is normalized --
keys to snake_case with a few aliases, values to bools/numbers/lower-case strings -- and
completed with facts inferred from the request text ("zero-downtime" means
``downtime_allowed = false``, "12-service platform" means ``service_count = 12``...).
Explicit values always win over inferred ones; every inference is reported so the
explanation can say where a rule's trigger came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ContextFact",
    "EffectiveContext",
    "condition_holds",
    "context_constraints",
    "infer_context",
    "normalize_context",
]

_KEY_ALIASES = {
    "env": "environment",
    "target_environment": "environment",
    "deployment_environment": "environment",
    "stage": "environment",
    "backup": "backup_required",
    "backups_required": "backup_required",
    "requires_backup": "backup_required",
    "downtime_ok": "downtime_allowed",
    "allow_downtime": "downtime_allowed",
    "services": "service_count",
    "number_of_services": "service_count",
    "num_services": "service_count",
    "microservice_count": "service_count",
    "team": "team_size",
    "team_members": "team_size",
    "headcount": "team_size",
    "stack": "tech_stack",
    "technologies": "tech_stack",
    "technology_stack": "tech_stack",
    "regulations": "compliance",
    "compliance_requirements": "compliance",
    "sources": "source_count",
    "number_of_sources": "source_count",
}
_BOOL_KEYS = frozenset({"backup_required", "downtime_allowed", "zero_downtime"})
_NUMBER_KEYS = frozenset({"team_size", "service_count", "source_count", "hours_per_day"})
_TRUE = frozenset({"true", "yes", "y", "1", "on", "required"})
_FALSE = frozenset({"false", "no", "n", "0", "off", "none", "not required"})
_ENV_ALIASES = {
    "prod": "production",
    "live": "production",
    "stage": "staging",
    "stg": "staging",
    "dev": "development",
}


@dataclass(frozen=True)
class ContextFact:
    """One context value and where it came from.

    Attributes:
        key: Normalized key, e.g. ``downtime_allowed``.
        value: Normalized value.
        origin: ``"context"`` (explicit) or ``"inferred"``.
        evidence: For inferred facts, the words that led to it.
    """

    key: str
    value: Any
    origin: str
    evidence: str = ""


@dataclass(frozen=True)
class EffectiveContext:
    """Explicit plus inferred facts, explicit winning. Immutable."""

    facts: tuple[ContextFact, ...]

    def get(self, key: str, default: Any = None) -> Any:
        """The value of `key`, or `default`."""
        for fact in self.facts:
            if fact.key == key:
                return fact.value
        return default

    def fact(self, key: str) -> ContextFact | None:
        """The fact for `key`, if any."""
        for fact in self.facts:
            if fact.key == key:
                return fact
        return None

    def with_facts(self, facts: Iterable[ContextFact]) -> EffectiveContext:
        """A copy with `facts` added where their key is not already known."""
        known = {f.key for f in self.facts}
        extra = [f for f in facts if f.key not in known]
        if not extra:
            return self
        return EffectiveContext(tuple(sorted((*self.facts, *extra), key=lambda f: f.key)))

    def as_pairs(self) -> tuple[tuple[str, str], ...]:
        """Sorted ``(key, value as text)`` pairs (for echoing in the plan)."""
        return tuple(sorted((f.key, _as_text(f.value)) for f in self.facts))


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(_as_text(v) for v in value)
    return str(value)


def _norm_key(key: str) -> str:
    snake = re.sub(r"[^a-z0-9]+", "_", str(key).strip().lower()).strip("_")
    return _KEY_ALIASES.get(snake, snake)


_NESTED_ALIASES = {
    "team.size": "team_size",
    "team.count": "team_size",
    "team.headcount": "team_size",
    "team.people": "team_size",
    "team.members": "team_size",
    "team.engineers": "team_size",
    "team_size.count": "team_size",
}
_PEOPLE_LISTS = frozenset({"team", "team_members", "members", "engineers", "people", "agents"})


def _flatten(raw: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str, Any]]:
    """``(field path, normalized dotted key, value)`` for every leaf of a nested context.
    Lists of scalars stay lists; a list of objects is kept as its size under
    ``<key>.count``; a list of people under a team key gives ``team_size``."""
    out: list[tuple[str, str, Any]] = []
    for raw_key in sorted(raw, key=str):
        value = raw[raw_key]
        path = f"{prefix}.{raw_key}" if prefix else str(raw_key)
        segment = re.sub(r"[^a-z0-9]+", "_", str(raw_key).strip().lower()).strip("_")
        if isinstance(value, Mapping):
            for field, key, leaf in _flatten(value, path):
                dotted = f"{segment}.{key}"
                out.append((field, _NESTED_ALIASES.get(dotted, dotted), leaf))
            continue
        key = _norm_key(raw_key) if not prefix else segment
        if isinstance(value, (list, tuple)) and key in _NUMBER_KEYS and key != "hours_per_day":
            out.append((path, key, len(value)))  # "services": [...] -> service_count
            continue
        if isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value):
            if segment in _PEOPLE_LISTS and not prefix:
                out.append((path, "team_size", len(value)))
            else:
                out.append((path, f"{key}.count", len(value)))
            continue
        if (
            isinstance(value, (list, tuple))
            and not prefix
            and segment in _PEOPLE_LISTS
            and key == "team_size"
        ):
            out.append((path, "team_size", len(value)))
            continue
        out.append((path, key, value))
    return out


def normalize_context(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Normalize the caller's context.

    Nested objects are read as structure: ``{"team": {"size": 5}}`` is ``team_size =
    5``, ``{"database": {"engine": "MySQL"}}`` is ``database.engine = mysql``, a list of
    people under ``team`` gives the team size, any other list of objects its count.

    Args:
        raw: The request's context mapping.

    Returns:
        ``(values, violations)``: normalized values by (dotted) key, and ``(field,
        problem)`` pairs for values of the wrong type (e.g. ``team_size = "many"``).
    """
    values: dict[str, Any] = {}
    violations: list[tuple[str, str]] = []
    for path, key, value in _flatten(raw):
        field = f"context.{path}"
        if value is None:
            continue
        if key in _BOOL_KEYS:
            parsed = _parse_bool(value)
            if parsed is None:
                violations.append((field, f"must be true or false (got {value!r})"))
                continue
            if key == "zero_downtime":
                key, parsed = "downtime_allowed", not parsed
            values[key] = parsed
        elif key in _NUMBER_KEYS:
            number = _parse_number(value)
            if number is None or number <= 0:
                violations.append((field, f"must be a positive number (got {value!r})"))
                continue
            values[key] = number
        elif key == "environment":
            text = str(value).strip().lower()
            values[key] = _ENV_ALIASES.get(text, text)
        elif key in ("tech_stack", "compliance"):
            items = value if isinstance(value, (list, tuple)) else re.split(r"[,;/]", str(value))
            cleaned = tuple(str(v).strip() for v in items if str(v).strip())
            if cleaned:
                values[key] = cleaned
        elif isinstance(value, str):
            values[key] = value.strip().lower()
        else:
            values[key] = value
    return values, violations


def _parse_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _parse_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


_DOWNTIME_FORBIDDEN = re.compile(
    r"\b(zero|no|without|minimal)[\s-]+(any\s+)?down[\s-]?time\b|\bdown[\s-]?time\s+(is\s+)?(not\s+(allowed|acceptable|possible)|unacceptable)\b"
    r"|\b(24/7|always[\s-]on|high[\s-]availability)\b"
)
_DOWNTIME_ALLOWED = re.compile(
    r"\bmaintenance[\s-]window\b|\bdown[\s-]?time\s+(is\s+)?(allowed|acceptable|ok|fine)\b"
)
_PRODUCTION = re.compile(
    r"\b(production|prod|live (system|traffic|site|users)|customer[\s-]facing)\b"
)
_STAGING = re.compile(r"\b(staging|pre[\s-]?prod(uction)?)\b")
_BACKUP = re.compile(r"\bback[\s-]?ups?\b")
_NO_BACKUP = re.compile(r"\b(no|without|skip)\s+back[\s-]?ups?\b")
_SERVICES = re.compile(r"\b(\d{1,4})[\s-]*(micro[\s-]?)?services?\b")
_SOURCES = re.compile(r"\b(\d{1,4})\s+(data\s+)?sources\b")
_TEAM = re.compile(r"\bteam of (\d{1,4})\b|\b(\d{1,4})[\s-](person|people|engineer|developer)s?\b")
_COMPLIANCE = re.compile(
    r"\b(pci(?:[\s-]?dss)?|hipaa|gdpr|soc[\s-]?2|iso[\s-]?27001|sox|fedramp)\b"
)


def infer_context(text: str) -> list[ContextFact]:
    """Facts suggested by free text (name, description, requirements, constraints).

    Args:
        text: All request text joined.

    Returns:
        Inferred facts in a fixed key order (never contradicting each other).
    """
    lowered = text.lower()
    facts: list[ContextFact] = []
    forbidden = _DOWNTIME_FORBIDDEN.search(lowered)
    allowed = _DOWNTIME_ALLOWED.search(lowered)
    if forbidden:
        facts.append(ContextFact("downtime_allowed", False, "inferred", forbidden.group(0)))
    elif allowed:
        facts.append(ContextFact("downtime_allowed", True, "inferred", allowed.group(0)))
    prod = _PRODUCTION.search(lowered)
    staging = _STAGING.search(lowered)
    if prod:
        facts.append(ContextFact("environment", "production", "inferred", prod.group(0)))
    elif staging:
        facts.append(ContextFact("environment", "staging", "inferred", staging.group(0)))
    backup = _BACKUP.search(lowered)
    if backup and not _NO_BACKUP.search(lowered):
        facts.append(ContextFact("backup_required", True, "inferred", backup.group(0)))
    services = _SERVICES.search(lowered)
    if services:
        facts.append(
            ContextFact("service_count", float(services.group(1)), "inferred", services.group(0))
        )
    sources = _SOURCES.search(lowered)
    if sources:
        facts.append(
            ContextFact("source_count", float(sources.group(1)), "inferred", sources.group(0))
        )
    team = _TEAM.search(lowered)
    if team:
        size = team.group(1) or team.group(2)
        facts.append(ContextFact("team_size", float(size), "inferred", team.group(0)))
    regimes = sorted(
        {
            m.group(1).replace(" ", "").replace("-", "").upper()
            for m in _COMPLIANCE.finditer(lowered)
        }
    )
    if regimes:
        facts.append(ContextFact("compliance", tuple(regimes), "inferred", ", ".join(regimes)))
    return facts


def build_effective_context(explicit: Mapping[str, Any], text: str) -> EffectiveContext:
    """Merge normalized explicit values with inferred facts (explicit wins)."""
    facts = [ContextFact(k, explicit[k], "context") for k in sorted(explicit)]
    for fact in infer_context(text):
        if fact.key not in explicit:
            facts.append(fact)
    return EffectiveContext(tuple(sorted(facts, key=lambda f: f.key)))


def condition_holds(context: EffectiveContext, key: str, expected: Any) -> bool:
    """Whether a library ``when`` condition holds.

    ``expected`` is a bool (exact match), a string (case-insensitive equality), a tuple
    of strings (any of) or ``"*"`` (the key is present and truthy).
    """
    value = context.get(key)
    if value is None:
        return False
    if expected == "*":
        return bool(value)
    if isinstance(expected, bool):
        return isinstance(value, bool) and value is expected
    if isinstance(value, (list, tuple)):
        values = {str(v).lower() for v in value}
    else:
        values = {str(value).lower()}
    if isinstance(expected, tuple):
        return bool(values & set(expected))
    return str(expected) in values


def describe_fact(fact: ContextFact) -> str:
    """``"context.environment = production"`` or ``"inferred environment = production
    (from 'prod')"``."""
    if fact.origin == "context":
        return f"context.{fact.key} = {_as_text(fact.value)}"
    return f"{fact.key} = {_as_text(fact.value)} (inferred from '{fact.evidence}')"


_DEADLINE_KEYS = frozenset(
    {
        "deadline",
        "due",
        "due_date",
        "due_by",
        "target_date",
        "end_date",
        "launch_date",
        "go_live",
        "go_live_date",
        "finish_by",
        "complete_by",
        "delivery_date",
    }
)
_TIMELINE_KEYS = frozenset(
    {"timeline", "duration", "timeframe", "time_frame", "time_box", "timebox"}
)
_BUDGET_KEYS = frozenset({"budget", "budget_hours", "effort_budget", "effort", "hours_budget"})
_UNIT_KEYS = frozenset(
    {"hours", "days", "weeks", "months", "sprints", "working_days", "business_days"}
)
_DATE_LIKE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}|[a-z]{3,9}\.?\s+\d{1,2},?\s+\d{4}|\d{1,2}\s+[a-z]{3,9}\s+\d{4}"
)


def context_constraints(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Deadlines, timelines and budgets stated in the context, as constraint sentences.

    ``{"deadline": "2027-01-15"}`` -> ``by 2027-01-15``; ``{"timeline": "6 weeks"}``
    or ``{"timeline": {"weeks": 6}}`` -> ``within 6 weeks``; ``{"budget": "200
    hours"}`` or ``{"budget_hours": 200}`` -> ``budget of 200 hours``. They are then
    read exactly like the request's constraints.

    Returns:
        ``(context field, constraint sentence)`` pairs, in key order.
    """
    out: list[tuple[str, str]] = []
    for path, _key, value in _flatten(raw):
        segments = [re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_") for s in path.split(".")]
        last = segments[-1]
        parent = segments[-2] if len(segments) > 1 else ""
        field = f"context.{path}"
        if isinstance(value, bool) or value is None or isinstance(value, (list, tuple)):
            continue
        text = str(value).strip()
        if not text:
            continue
        is_number = isinstance(value, (int, float))
        if parent in _TIMELINE_KEYS | _DEADLINE_KEYS and last in _UNIT_KEYS and is_number:
            unit = last.replace("_", " ")
            out.append((field, f"within {text} {unit} ({field})"))
        elif parent in _BUDGET_KEYS and last in _UNIT_KEYS and is_number:
            out.append((field, f"budget of {text} {last.replace('_', ' ')} ({field})"))
        elif last in _DEADLINE_KEYS:
            cue = "by" if _DATE_LIKE.search(text.lower()) else "within"
            out.append((field, f"{cue} {text} ({field})"))
        elif last in _TIMELINE_KEYS:
            if is_number:
                out.append((field, f"{text} ({field}: a number without a unit)"))
            else:
                cue = "by" if _DATE_LIKE.search(text.lower()) else "within"
                out.append((field, f"{cue} {text} ({field})"))
        elif last in _BUDGET_KEYS:
            if is_number and last in ("budget_hours", "hours_budget"):
                out.append((field, f"budget of {text} hours ({field})"))
            elif is_number:
                out.append((field, f"budget {text} ({field}: a number without a unit)"))
            else:
                out.append((field, f"budget of {text} ({field})"))
    return out
