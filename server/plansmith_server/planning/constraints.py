"""Understanding constraints: deadlines, effort budgets and technology mandates.

Deadlines become working hours (``hours_per_day`` x working days), relative to a
``now`` the caller passes in -- the domain never reads the clock. Mandates ("must use
React for the frontend", "use PostgreSQL") become required capabilities of the tasks in
the technology's area. Anything else is kept as a free-form constraint, echoed in the
plan and reported as not machine-interpreted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .capabilities import AREA_CAPABILITIES, known_technologies, mandate_areas, normalize_capability
from .text import NUMBER_WORDS

__all__ = [
    "ConstraintAnalysis",
    "Deadline",
    "Mandate",
    "analyze_constraints",
    "find_mandates",
    "parse_deadline_hours",
    "working_days_between",
]

_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, **NUMBER_WORDS, "couple of": 2, "few": 3}
_MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ]
    )
    for name in names
}

_NUM = (
    r"(\d+(?:\.\d+)?|couple of|few|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven"
    r"|twelve|fifteen|twenty|thirty)"
)
_DURATION = re.compile(
    _NUM
    + r"[\s-]*(working|business|work|calendar)?[\s-]*"
    + r"(hours?|hrs?|h|days?|weeks?|wks?|months?|sprints?)\b"
)
_DEADLINE_CUE = re.compile(
    r"\b(within|in|by|before|deadline|due|under|less than|no (more|later) than|at most|max(imum)?|"
    r"finish(ed)?|complete[d]?|deliver(ed)?|done|ready|ship(ped)?|launch(ed)?|time[\s-]?box(ed)?|next)\b"
)
_BUDGET_CUE = re.compile(
    r"\b(budget|effort|person[\s-]?hours?|man[\s-]?hours?|engineer[\s-]?hours?|capacity of)\b"
)
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_DAY_MONTH_YEAR = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]{3,9})\.?,?\s+(\d{4})\b")
_MONTH_DAY_YEAR = re.compile(r"\b([a-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b")
_NEGATION = re.compile(
    r"\b(no|not|never|avoid|without|except|instead of|don't|do not|must "
    r"not|mustn't|shouldn't|should not)\b"
)
_AREA_WORDS = {
    "frontend": "frontend",
    "front-end": "frontend",
    "front end": "frontend",
    "ui": "frontend",
    "web client": "frontend",
    "backend": "backend",
    "back-end": "backend",
    "back end": "backend",
    "server": "backend",
    "api": "backend",
    "database": "database",
    "db": "database",
    "storage": "database",
    "infrastructure": "infrastructure",
    "infra": "infrastructure",
    "hosting": "cloud",
    "cloud": "cloud",
    "mobile": "mobile",
    "ios": "ios",
    "android": "android",
    "pipeline": "ci-cd",
    "ci": "ci-cd",
    "data": "data-engineering",
    "design": "ui-ux-design",
    "monitoring": "observability",
}
# Ordinary words that are also technology names: only a capitalized spelling counts.
_AMBIGUOUS = frozenset(
    {"go", "rust", "swift", "express", "spring", "dart", "oracle", "docker", "sketch", "spark"}
)


@dataclass(frozen=True)
class Deadline:
    """A deadline found in a constraint.

    Attributes:
        hours: Working hours available from ``now`` (or from plan start).
        constraint: The constraint text it came from.
        description: How it was read, e.g. ``"2 weeks = 10 working days = 80 h"``.
    """

    hours: float
    constraint: str
    description: str


@dataclass(frozen=True)
class Mandate:
    """A technology the work must use.

    Attributes:
        technology: Canonical capability name (``react``, ``postgresql``...).
        areas: Capability areas whose tasks get the technology as a requirement.
        source: The constraint text (or ``context.tech_stack``).
    """

    technology: str
    areas: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class ConstraintAnalysis:
    """What the planner understood from the constraints.

    Attributes:
        deadline: The tightest deadline, if any.
        deadlines: Every deadline found.
        budget_hours: An effort budget in hours, if one was stated.
        mandates: Technologies to use, in order of appearance.
        prohibitions: Technologies not to use (recorded as assumptions).
        understood: Indexes of constraints that were machine-interpreted.
        notes: Human-readable notes (unreadable dates etc.).
    """

    deadline: Deadline | None
    deadlines: tuple[Deadline, ...]
    budget_hours: float | None
    mandates: tuple[Mandate, ...]
    prohibitions: tuple[str, ...]
    understood: frozenset[int]
    notes: tuple[str, ...]


def _to_number(token: str) -> float:
    if token in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[token])
    return float(token)


MAX_DEADLINE_YEARS = 100
"""A duration further ahead than this is not read as a deadline or a budget."""

# Calendar years in one of each unit, roughly (working hours at 8 a day, 5 days a week).
_YEARS_PER_UNIT = {"h": 1 / 2080, "d": 1 / 365, "w": 1 / 52, "s": 2 / 52, "m": 1 / 12}


def _plausible(amount: float, unit: str) -> bool:
    """Whether `amount` of `unit` is a finite span within MAX_DEADLINE_YEARS. The numbers
    come straight from text: "within 99999999999 days" would overflow date arithmetic and
    four hundred nines parse as infinity."""
    return math.isfinite(amount) and amount * _YEARS_PER_UNIT[unit[0]] <= MAX_DEADLINE_YEARS


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def working_days_between(start: date, end: date, working_days_per_week: int = 5) -> int:
    """Working days in ``(start, end]`` (Monday first; 5 = Mon-Fri, 6 = Mon-Sat, 7 = all).

    Args:
        start: Exclusive start (typically today).
        end: Inclusive end (the deadline day).
        working_days_per_week: 1-7.
    """
    if end <= start:
        return 0
    total = (end - start).days
    full_weeks, rest = divmod(total, 7)
    days = full_weeks * working_days_per_week
    for offset in range(1, rest + 1):
        if (start + timedelta(days=full_weeks * 7 + offset)).weekday() < working_days_per_week:
            days += 1
    return days


def _absolute_date(text: str) -> date | str | None:
    """A date mentioned in `text`, None if there is none, or "invalid" if malformed."""
    for pattern, order in ((_ISO_DATE, "ymd"), (_DAY_MONTH_YEAR, "dmy"), (_MONTH_DAY_YEAR, "mdy")):
        match = pattern.search(text)
        if not match:
            continue
        a, b, c = match.groups()
        try:
            if order == "ymd":
                return date(int(a), int(b), int(c))
            if order == "dmy":
                if b not in _MONTHS:
                    continue
                return date(int(c), _MONTHS[b], int(a))
            if a not in _MONTHS:
                continue
            return date(int(c), _MONTHS[a], int(b))
        except ValueError:
            return "invalid"
    return None


def parse_deadline_hours(
    text: str,
    *,
    now: date | datetime | None = None,
    hours_per_day: float = 8.0,
    working_days_per_week: int = 5,
) -> tuple[float | None, str]:
    """Read a deadline out of one constraint.

    Understands relative durations ("within 2 weeks", "in 10 working days", "3
    business days", "under 40 hours", "in 2 sprints" = 2 x 2 weeks, "within a month"
    = 52/12 weeks) and absolute dates ("by 2027-01-15", "before 15 January 2027",
    "due Jan 15, 2027", relative to `now`). Calendar days ("within 10 days") are
    converted to the working days they contain (counted from `now` when given,
    else pro rata).

    Args:
        text: The constraint.
        now: The reference time; needed for absolute dates.
        hours_per_day: Working hours per day.
        working_days_per_week: Working days per week.

    Returns:
        ``(hours, description)``; ``hours`` is None when no deadline is found (then
        the description explains why if a date was present but unusable).
    """
    lowered = text.lower()
    if _BUDGET_CUE.search(lowered):
        return None, ""
    absolute = _absolute_date(lowered)
    if absolute == "invalid":
        return None, f"'{text}' contains a date that does not exist"
    if isinstance(absolute, date):
        if now is None:
            return None, f"'{text}' names a date but no reference time ('now') was given"
        days: float = working_days_between(_as_date(now), absolute, working_days_per_week)
        hours = days * hours_per_day
        return (
            hours,
            f"{absolute.isoformat()} is {days} working days from {_as_date(now).isoformat()} = "
            f"{hours:g} h",
        )
    if not _DEADLINE_CUE.search(lowered):
        return None, ""
    match = _DURATION.search(lowered)
    if not match:
        return None, ""
    amount = _to_number(match.group(1))
    kind = match.group(2) or ""
    unit = match.group(3)
    if not _plausible(amount, unit):
        return None, f"'{text}' sets no usable deadline: at most {MAX_DEADLINE_YEARS} years ahead"
    if unit.startswith("h"):
        hours = amount
        return hours, f"{amount:g} working hours"
    if unit.startswith("d"):
        if kind in ("working", "business", "work"):
            days = amount
        elif now is not None and amount.is_integer():
            start = _as_date(now)
            days = working_days_between(
                start, start + timedelta(days=int(amount)), working_days_per_week
            )
        else:
            days = amount * working_days_per_week / 7.0
        hours = days * hours_per_day
        label = "working days" if kind in ("working", "business", "work") else "calendar days"
        return hours, f"{amount:g} {label} = {days:g} working days = {hours:g} h"
    if unit.startswith("w"):
        days = amount * working_days_per_week
    elif unit.startswith("s"):
        days = amount * 2 * working_days_per_week  # a sprint is assumed to be two weeks
    else:
        days = amount * 52.0 / 12.0 * working_days_per_week
    days = math.floor(days * 100 + 0.5) / 100
    hours = days * hours_per_day
    return hours, f"{match.group(0).strip()} = {days:g} working days = {hours:g} h"


def _budget_hours(text: str, hours_per_day: float) -> float | None:
    lowered = text.lower()
    if not _BUDGET_CUE.search(lowered):
        return None
    match = _DURATION.search(lowered)
    if not match:
        match_hours = re.search(
            r"(\d+(?:\.\d+)?)\s*(person|man|engineer)[\s-]?(hours?|days?)", lowered
        )
        if not match_hours:
            return None
        amount, unit = float(match_hours.group(1)), match_hours.group(3)
        if not _plausible(amount, unit):
            return None
        return amount if unit.startswith("h") else amount * hours_per_day
    amount = _to_number(match.group(1))
    unit = match.group(3)
    if not _plausible(amount, unit):
        return None
    if unit.startswith("h"):
        return amount
    if unit.startswith("d"):
        return amount * hours_per_day
    if unit.startswith("w"):
        return amount * 5 * hours_per_day
    return None


_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9+#.\-]*")


def find_mandates(text: str, source: str | None = None) -> tuple[list[Mandate], list[str]]:
    """Technologies a constraint requires, and those it forbids.

    Args:
        text: One constraint ("Must use React for the frontend").
        source: What to record as the mandate's source (default: `text`).

    Returns:
        ``(mandates, prohibited technology names)``.
    """
    words = [w.rstrip(".,;:") for w in _WORD_RE.findall(text)]
    lowered_text = text.lower()
    techs = known_technologies()
    found: list[tuple[int, str]] = []
    i = 0
    while i < len(words):
        matched = False
        for size in (3, 2, 1):
            if i + size > len(words):
                continue
            phrase = " ".join(words[i : i + size])
            canonical = normalize_capability(phrase)
            if canonical not in techs:
                continue
            if size == 1 and phrase.lower() in _AMBIGUOUS and not phrase[0].isupper():
                continue
            if (
                canonical == "go"
                and i + 1 < len(words)
                and words[i + 1].lower() in ("live", "to", "ahead")
            ):
                continue
            found.append((i, canonical))
            i += size
            matched = True
            break
        if not matched:
            i += 1
    mentioned_areas = sorted(
        {
            area
            for word, area in _AREA_WORDS.items()
            if re.search(rf"\b{re.escape(word)}\b", lowered_text)
        }
    )
    mandates: list[Mandate] = []
    prohibited: list[str] = []
    seen: set[str] = set()
    for index, tech in found:
        if tech in seen:
            continue
        seen.add(tech)
        before = " ".join(words[max(0, index - 4) : index]).lower()
        if _NEGATION.search(before):
            prohibited.append(tech)
            continue
        default_areas = mandate_areas(tech)
        named = tuple(a for a in mentioned_areas if a in AREA_CAPABILITIES)
        # "Use PostgreSQL for the backend database": the named areas that fit the
        # technology win; a named area alone is used when none fits ("TypeScript on the
        # backend"); otherwise the technology's own areas.
        areas = tuple(a for a in named if a in default_areas) or named or default_areas
        if not areas:
            continue
        mandates.append(Mandate(tech, areas, source or text))
    return mandates, prohibited


def analyze_constraints(
    constraints: Sequence[str],
    *,
    now: date | datetime | None,
    hours_per_day: float,
    working_days_per_week: int,
    tech_stack: Sequence[str] = (),
) -> ConstraintAnalysis:
    """Read every constraint (and the context's tech stack).

    Args:
        constraints: The request's constraints.
        now: Reference time for absolute dates.
        hours_per_day: Working hours per day.
        working_days_per_week: Working days per week.
        tech_stack: ``context.tech_stack`` entries (treated as mandates).
    """
    deadlines: list[Deadline] = []
    mandates: list[Mandate] = []
    prohibitions: list[str] = []
    understood: set[int] = set()
    notes: list[str] = []
    budget: float | None = None
    for index, text in enumerate(constraints):
        hours, description = parse_deadline_hours(
            text, now=now, hours_per_day=hours_per_day, working_days_per_week=working_days_per_week
        )
        if hours is not None:
            deadlines.append(Deadline(round(hours, 2), text, description))
            understood.add(index)
        elif description:
            notes.append(description)
        found_budget = _budget_hours(text, hours_per_day)
        if found_budget is not None:
            budget = found_budget if budget is None else min(budget, found_budget)
            understood.add(index)
        found, forbidden = find_mandates(text)
        if found or forbidden:
            understood.add(index)
        for mandate in found:
            if all(m.technology != mandate.technology for m in mandates):
                mandates.append(mandate)
        prohibitions.extend(t for t in forbidden if t not in prohibitions)
    for item in tech_stack:
        for mandate in find_mandates(item, source="context.tech_stack")[0]:
            if all(m.technology != mandate.technology for m in mandates):
                mandates.append(mandate)
    tightest = min(deadlines, key=lambda d: d.hours) if deadlines else None
    return ConstraintAnalysis(
        deadline=tightest,
        deadlines=tuple(deadlines),
        budget_hours=budget,
        mandates=tuple(mandates),
        prohibitions=tuple(prohibitions),
        understood=frozenset(understood),
        notes=tuple(notes),
    )
