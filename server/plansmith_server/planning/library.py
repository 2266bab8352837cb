"""The method library: compound tasks, their methods, primitive tasks and context rules.

The library is a folder of TOML files (``planning/library/*.toml`` by default); see
``docs/planning.md`` for the format. :func:`load_library` parses and validates every
file and caches the result per folder; the server calls it once at start-up so a broken
library fails fast with a :class:`~.errors.LibraryError` naming the file and entry.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .capabilities import normalize_capability
from .errors import LibraryError
from .ranking import TextIndex
from .text import tokenize

__all__ = [
    "DEFAULT_LIBRARY_DIR",
    "STAGES",
    "CompoundTask",
    "ContextRule",
    "Method",
    "MethodLibrary",
    "PrimitiveTask",
    "RiskTemplate",
    "ScaleRule",
    "ThreePoint",
    "load_library",
    "validate_library",
]

DEFAULT_LIBRARY_DIR = Path(__file__).with_name("library")

STAGES: tuple[str, ...] = ("plan", "design", "foundation", "build", "verify", "release", "operate")
"""Lifecycle stages, in order. Orderings inside a method never go backwards in stage;
the planner relies on that to link separate parts of a plan (see ``htn.py``)."""

_PRIORITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")

_PRIMITIVE_FIELDS = {
    "title": True,
    "description": True,
    "stage": True,
    "capabilities": True,
    "estimate": True,
    "priority": True,
    "acceptance": True,
    "keywords": False,
    "tags": False,
    "risks": False,
    "scale": False,
}
_COMPOUND_FIELDS = {
    "title": True,
    "description": True,
    "domain": True,
    "keywords": True,
    "method": True,
    "cross_link": False,
}
_METHOD_FIELDS = {
    "name": True,
    "description": True,
    "subtasks": True,
    "after": False,
    "when": False,
    "keywords": False,
}
_RULE_FIELDS = {
    "name": True,
    "description": True,
    "when": True,
    "targets": True,
    "before": False,
    "after": False,
    "skip_if_present": False,
}
_RISK_FIELDS = {"severity": True, "description": True, "mitigation": True}
_SCALE_FIELDS = {"key": True, "per_unit": True, "max": True}


@dataclass(frozen=True)
class ThreePoint:
    """A three-point estimate in hours (optimistic <= most likely <= pessimistic)."""

    optimistic: float
    most_likely: float
    pessimistic: float

    @property
    def expected(self) -> float:
        """PERT (beta) mean: (o + 4m + p) / 6."""
        return (self.optimistic + 4.0 * self.most_likely + self.pessimistic) / 6.0

    def scaled(self, factor: float) -> ThreePoint:
        """The same estimate multiplied by `factor`."""
        return ThreePoint(
            self.optimistic * factor, self.most_likely * factor, self.pessimistic * factor
        )


@dataclass(frozen=True)
class RiskTemplate:
    """A risk attached to a primitive task."""

    severity: str
    description: str
    mitigation: str


@dataclass(frozen=True)
class ScaleRule:
    """Scale an estimate by a count from the context (e.g. number of services).

    factor = min(max, 1 + per_unit * (count - 1)), count from ``context[key]``.
    """

    key: str
    per_unit: float
    max: float

    def factor(self, count: float | None) -> float:
        """Estimate multiplier for `count` units (1.0 when unknown or <= 1)."""
        if count is None or count <= 1:
            return 1.0
        return min(self.max, 1.0 + self.per_unit * (count - 1.0))


@dataclass(frozen=True)
class PrimitiveTask:
    """A task the planner does not decompose further."""

    name: str
    title: str
    description: str
    stage: str
    capabilities: tuple[str, ...]
    estimate: ThreePoint
    priority: str
    acceptance: tuple[str, ...]
    keywords: tuple[str, ...]
    tags: tuple[str, ...]
    risks: tuple[RiskTemplate, ...]
    scale: ScaleRule | None
    file: str


@dataclass(frozen=True)
class Method:
    """One way to decompose a compound task.

    Attributes:
        name: Unique within its compound.
        description: When and why to use it.
        subtasks: Names of primitive or compound tasks, in a readable order.
        after: ``subtask -> subtasks that must finish first``.
        when: Context conditions; all must hold for the method to be eligible.
        keywords: Extra words that favour this method over its siblings.
    """

    name: str
    description: str
    subtasks: tuple[str, ...]
    after: Mapping[str, tuple[str, ...]]
    when: tuple[tuple[str, Any], ...]
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class CompoundTask:
    """A task decomposed by one of its methods."""

    name: str
    title: str
    description: str
    domain: str
    keywords: tuple[str, ...]
    methods: tuple[Method, ...]
    cross_link: bool
    file: str


@dataclass(frozen=True)
class ContextRule:
    """Adds tasks around tagged tasks when the context matches.

    Attributes:
        name: Unique rule name.
        description: What the rule guarantees.
        when: ``(context key, expected)``; expected is a bool, a string, a list of
            strings (any of) or ``"*"`` (present and truthy).
        targets: Tags of the tasks the rule protects.
        before: Primitives inserted as a chain right before the earliest targets.
        after: Primitives inserted as a chain after the latest targets.
        skip_if_present: Do nothing if the plan already has one of these primitives.
    """

    name: str
    description: str
    when: tuple[tuple[str, Any], ...]
    targets: tuple[str, ...]
    before: tuple[str, ...]
    after: tuple[str, ...]
    skip_if_present: tuple[str, ...]
    file: str


@dataclass(frozen=True)
class MethodLibrary:
    """A validated, indexed method library (immutable; safe to share between requests).

    Attributes:
        primitives: By name.
        compounds: By name.
        rules: In file-name then file order (the order they are applied).
        compound_index: Ranking over compounds (title, keywords, descriptions).
        primitive_index: Ranking over primitives (title, keywords, description).
        method_index: Ranking over ``"<compound>/<method>"`` (method keywords and text).
        files: Library files loaded, sorted.
    """

    primitives: Mapping[str, PrimitiveTask]
    compounds: Mapping[str, CompoundTask]
    rules: tuple[ContextRule, ...]
    compound_index: TextIndex = field(repr=False, compare=False)
    primitive_index: TextIndex = field(repr=False, compare=False)
    method_index: TextIndex = field(repr=False, compare=False)
    files: tuple[str, ...] = ()

    def expansion(self, compound: str, method: str) -> tuple[str, ...]:
        """All primitive names a compound's method can produce (nested compounds use
        their first method), in order, without duplicates."""
        out: dict[str, None] = {}
        chosen = next(m for m in self.compounds[compound].methods if m.name == method)
        for sub in chosen.subtasks:
            if sub in self.primitives:
                out.setdefault(sub, None)
            else:
                for name in self.expansion(sub, self.compounds[sub].methods[0].name):
                    out.setdefault(name, None)
        return tuple(out)


# --------------------------------------------------------------------------- parsing


class _Checker:
    """Field checks that raise LibraryError naming the file and entry."""

    def __init__(self, file: str, entry: str) -> None:
        self.file = file
        self.entry = entry

    def fail(self, problem: str) -> LibraryError:
        return LibraryError(self.file, self.entry, problem)

    def fields(self, table: Any, spec: Mapping[str, bool], what: str = "") -> dict[str, Any]:
        if not isinstance(table, dict):
            raise self.fail(f"{what or 'entry'} must be a table")
        unknown = sorted(set(table) - set(spec))
        if unknown:
            raise self.fail(f"unknown field(s) {', '.join(unknown)} in {what or 'entry'}")
        missing = [k for k, required in spec.items() if required and k not in table]
        if missing:
            raise self.fail(f"missing field(s) {', '.join(missing)} in {what or 'entry'}")
        return table

    def text(self, value: Any, name: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"'{name}' must be a non-empty string")
        return value.strip()

    def texts(self, value: Any, name: str, *, allow_empty: bool = False) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(f"'{name}' must be a list of non-empty strings")
        if not value and not allow_empty:
            raise self.fail(f"'{name}' must not be empty")
        return tuple(v.strip() for v in value)

    def when(self, value: Any, name: str) -> tuple[tuple[str, Any], ...]:
        if not isinstance(value, dict) or not value:
            raise self.fail(f"'{name}' must be a non-empty table of context conditions")
        out = []
        for key in sorted(value):
            expected = value[key]
            if isinstance(expected, list):
                if not expected or not all(isinstance(v, str) for v in expected):
                    raise self.fail(f"'{name}.{key}' list must hold strings")
                expected = tuple(v.lower() for v in expected)
            elif isinstance(expected, str):
                expected = expected.lower()
            elif not isinstance(expected, bool):
                raise self.fail(f"'{name}.{key}' must be a bool, a string or a list of strings")
            out.append((key, expected))
        return tuple(out)


def _parse_primitive(file: str, name: str, raw: Any) -> PrimitiveTask:
    check = _Checker(file, f"primitive '{name}'")
    check.fields(raw, _PRIMITIVE_FIELDS)
    stage = check.text(raw["stage"], "stage")
    if stage not in STAGES:
        raise check.fail(f"stage '{stage}' is not one of {', '.join(STAGES)}")
    estimate = raw["estimate"]
    if (
        not isinstance(estimate, list)
        or len(estimate) != 3
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in estimate)
    ):
        raise check.fail("'estimate' must be [optimistic, most_likely, pessimistic] hours")
    o, m, p = (float(v) for v in estimate)
    if o <= 0:
        raise check.fail(f"estimate must be positive (got optimistic {o:g})")
    if not o <= m <= p:
        raise check.fail(
            f"estimate must satisfy optimistic <= most_likely <= pessimistic (got {o:g}, {m:g}, "
            f"{p:g})"
        )
    priority = check.text(raw["priority"], "priority").upper()
    if priority not in _PRIORITIES:
        raise check.fail(f"priority '{raw['priority']}' is not one of {', '.join(_PRIORITIES)}")
    capabilities = check.texts(raw["capabilities"], "capabilities", allow_empty=True)
    risks = []
    for i, risk in enumerate(raw.get("risks", [])):
        check.fields(risk, _RISK_FIELDS, f"risks[{i}]")
        severity = check.text(risk["severity"], f"risks[{i}].severity").upper()
        if severity not in _PRIORITIES:
            raise check.fail(
                f"risks[{i}].severity '{risk['severity']}' is not one of {', '.join(_PRIORITIES)}"
            )
        risks.append(
            RiskTemplate(
                severity,
                check.text(risk["description"], f"risks[{i}].description"),
                check.text(risk["mitigation"], f"risks[{i}].mitigation"),
            )
        )
    scale = None
    if "scale" in raw:
        check.fields(raw["scale"], _SCALE_FIELDS, "scale")
        per_unit, maximum = raw["scale"]["per_unit"], raw["scale"]["max"]
        if not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in (per_unit, maximum)
        ):
            raise check.fail("'scale.per_unit' and 'scale.max' must be numbers")
        if per_unit < 0 or maximum < 1:
            raise check.fail("'scale.per_unit' must be >= 0 and 'scale.max' >= 1")
        scale = ScaleRule(
            check.text(raw["scale"]["key"], "scale.key"), float(per_unit), float(maximum)
        )
    return PrimitiveTask(
        name=name,
        title=check.text(raw["title"], "title"),
        description=check.text(raw["description"], "description"),
        stage=stage,
        capabilities=tuple(sorted({normalize_capability(c) for c in capabilities})),
        estimate=ThreePoint(o, m, p),
        priority=priority,
        acceptance=check.texts(raw["acceptance"], "acceptance"),
        keywords=check.texts(raw.get("keywords", []), "keywords", allow_empty=True),
        tags=check.texts(raw.get("tags", []), "tags", allow_empty=True),
        risks=tuple(risks),
        scale=scale,
        file=file,
    )


def _find_cycle(nodes: tuple[str, ...], edges: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """A cycle in `edges` (node -> predecessors) as a path, or None. Deterministic."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for pred in edges.get(node, ()):
            if state.get(pred) == 1:
                return [*stack[stack.index(pred) :], pred]
            if pred not in state:
                found = visit(pred)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in nodes:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _parse_method(file: str, compound: str, index: int, raw: Any) -> Method:
    check = _Checker(file, f"compound '{compound}' method #{index + 1}")
    check.fields(raw, _METHOD_FIELDS, "method")
    name = check.text(raw["name"], "name")
    check = _Checker(file, f"compound '{compound}' method '{name}'")
    subtasks = check.texts(raw["subtasks"], "subtasks")
    if len(set(subtasks)) != len(subtasks):
        dupes = sorted({s for s in subtasks if subtasks.count(s) > 1})
        raise check.fail(f"subtask(s) listed twice: {', '.join(dupes)}")
    after_raw = raw.get("after", {})
    if not isinstance(after_raw, dict):
        raise check.fail("'after' must be a table of subtask -> [subtasks before it]")
    after: dict[str, tuple[str, ...]] = {}
    for node in sorted(after_raw):
        preds = check.texts(after_raw[node], f"after.{node}", allow_empty=True)
        for ref in (node, *preds):
            if ref not in subtasks:
                raise check.fail(
                    f"ordering refers to '{ref}', which is not one of this method's subtasks"
                )
        if node in preds:
            raise check.fail(f"'{node}' cannot come after itself")
        after[node] = preds
    cycle = _find_cycle(subtasks, after)
    if cycle:
        raise check.fail("ordering has a cycle: " + " -> ".join(reversed(cycle)))
    when = check.when(raw["when"], "when") if "when" in raw else ()
    keywords = check.texts(raw.get("keywords", []), "keywords", allow_empty=True)
    return Method(
        name,
        check.text(raw["description"], "description"),
        subtasks,
        MappingProxyType(after),
        when,
        keywords,
    )


def _parse_compound(file: str, name: str, raw: Any) -> CompoundTask:
    check = _Checker(file, f"compound '{name}'")
    check.fields(raw, _COMPOUND_FIELDS)
    methods_raw = raw["method"]
    if not isinstance(methods_raw, list) or not methods_raw:
        raise check.fail("needs at least one [[compound.<name>.method]]")
    methods = tuple(_parse_method(file, name, i, m) for i, m in enumerate(methods_raw))
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise check.fail(
            "duplicate method name(s): "
            f"{', '.join(sorted({n for n in names if names.count(n) > 1}))}"
        )
    cross_link = raw.get("cross_link", True)
    if not isinstance(cross_link, bool):
        raise check.fail("'cross_link' must be a bool")
    return CompoundTask(
        name=name,
        title=check.text(raw["title"], "title"),
        description=check.text(raw["description"], "description"),
        domain=check.text(raw["domain"], "domain"),
        keywords=check.texts(raw["keywords"], "keywords"),
        methods=methods,
        cross_link=cross_link,
        file=file,
    )


def _parse_rule(file: str, index: int, raw: Any) -> ContextRule:
    check = _Checker(file, f"rule #{index + 1}")
    check.fields(raw, _RULE_FIELDS, "rule")
    name = check.text(raw["name"], "name")
    check = _Checker(file, f"rule '{name}'")
    before = check.texts(raw.get("before", []), "before", allow_empty=True)
    after = check.texts(raw.get("after", []), "after", allow_empty=True)
    if not before and not after:
        raise check.fail("needs 'before' and/or 'after' primitives to insert")
    return ContextRule(
        name=name,
        description=check.text(raw["description"], "description"),
        when=check.when(raw["when"], "when"),
        targets=check.texts(raw["targets"], "targets"),
        before=before,
        after=after,
        skip_if_present=check.texts(
            raw.get("skip_if_present", []), "skip_if_present", allow_empty=True
        ),
        file=file,
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise LibraryError(path.name, "", f"invalid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"compound", "primitive", "rule"})
    if unknown:
        raise LibraryError(
            path.name,
            "",
            f"unknown top-level key(s) {', '.join(unknown)} (expected compound, primitive, rule)",
        )
    for key in ("compound", "primitive"):
        if key in data and not isinstance(data[key], dict):
            raise LibraryError(
                path.name, "", f"'{key}' must be a table of named entries ([{key}.<name>])"
            )
    if "rule" in data and not isinstance(data["rule"], list):
        raise LibraryError(path.name, "", "'rule' must be an array of tables ([[rule]])")
    return data


def _build(directory: Path) -> MethodLibrary:
    files = sorted(p for p in directory.glob("*.toml") if p.is_file())
    if not files:
        raise LibraryError(str(directory), "", "no *.toml library files found")
    primitives: dict[str, PrimitiveTask] = {}
    compounds: dict[str, CompoundTask] = {}
    rules: list[ContextRule] = []
    seen: dict[str, str] = {}  # name -> "file (kind)" for duplicate detection

    def claim(name: str, kind: str, file: str) -> None:
        if name in seen:
            shown = name.removeprefix("rule:")
            raise LibraryError(
                file, f"{kind} '{shown}'", f"duplicate name (already defined as {seen[name]})"
            )
        seen[name] = f"{kind} in {file}"

    for path in files:
        data = _read(path)
        for name, raw in data.get("primitive", {}).items():
            claim(name, "primitive", path.name)
            primitives[name] = _parse_primitive(path.name, name, raw)
        for name, raw in data.get("compound", {}).items():
            claim(name, "compound", path.name)
            compounds[name] = _parse_compound(path.name, name, raw)
        for i, raw in enumerate(data.get("rule", [])):
            rule = _parse_rule(path.name, i, raw)
            # Rules live in their own namespace (a rule may share a primitive's name).
            claim(f"rule:{rule.name}", "rule", path.name)
            rules.append(rule)

    # Cross-file references.
    for compound in compounds.values():
        for method in compound.methods:
            for sub in method.subtasks:
                if sub not in primitives and sub not in compounds:
                    raise LibraryError(
                        compound.file,
                        f"compound '{compound.name}' method '{method.name}'",
                        f"subtask '{sub}' is neither a known primitive nor a known compound task",
                    )
            for node, preds in method.after.items():
                for pred in preds:
                    if pred in primitives and node in primitives:
                        a, b = primitives[pred], primitives[node]
                        if STAGES.index(a.stage) > STAGES.index(b.stage):
                            raise LibraryError(
                                compound.file,
                                f"compound '{compound.name}' method '{method.name}'",
                                f"'{pred}' (stage {a.stage}) is ordered before '{node}' (stage "
                                f"{b.stage}); "
                                "orderings must not go back in stage",
                            )
    nesting = {
        c.name: tuple(sorted({s for m in c.methods for s in m.subtasks if s in compounds}))
        for c in compounds.values()
    }
    cycle = _find_cycle(tuple(sorted(compounds)), nesting)
    if cycle:
        first = compounds[cycle[0]]
        raise LibraryError(
            first.file,
            f"compound '{first.name}'",
            "compound tasks expand into each other: " + " -> ".join(cycle),
        )
    for rule in rules:
        for ref in (*rule.before, *rule.after, *rule.skip_if_present):
            if ref not in primitives:
                raise LibraryError(
                    rule.file, f"rule '{rule.name}'", f"refers to unknown primitive '{ref}'"
                )

    return MethodLibrary(
        primitives=MappingProxyType(primitives),
        compounds=MappingProxyType(compounds),
        rules=tuple(rules),
        compound_index=_compound_index(primitives, compounds),
        primitive_index=_primitive_index(primitives),
        method_index=_method_index(compounds),
        files=tuple(p.name for p in files),
    )


def _tokens(*texts: str) -> list[str]:
    out: list[str] = []
    for text in texts:
        out.extend(tokenize(text))
    return out


def _primitive_index(primitives: Mapping[str, PrimitiveTask]) -> TextIndex:
    return TextIndex(
        {
            name: (_tokens(p.title, *p.keywords), _tokens(p.description))
            for name, p in primitives.items()
        }
    )


def _compound_index(
    primitives: Mapping[str, PrimitiveTask], compounds: Mapping[str, CompoundTask]
) -> TextIndex:
    docs = {}
    for name, c in compounds.items():
        weak = _tokens(
            c.description,
            *(m.description for m in c.methods),
            *(k for m in c.methods for k in m.keywords),
        )
        docs[name] = (_tokens(c.title, *c.keywords), weak)
    # Primitive texts only feed document frequencies, so generic words ("implement",
    # "test") that appear everywhere weigh little when choosing a domain.
    vocabulary = [
        frozenset(_tokens(p.title, p.description, *p.keywords)) for p in primitives.values()
    ]
    return TextIndex(docs, vocabulary)


def _method_index(compounds: Mapping[str, CompoundTask]) -> TextIndex:
    return TextIndex(
        {
            f"{c.name}/{m.name}": (_tokens(*m.keywords), _tokens(m.description))
            for c in compounds.values()
            for m in c.methods
        }
    )


# --------------------------------------------------------------------------- public


def validate_library(directory: str | Path | None = None) -> MethodLibrary:
    """Parse and validate a library folder, bypassing the cache.

    Args:
        directory: Folder of ``*.toml`` files (default: the packaged library).

    Returns:
        The validated library.

    Raises:
        LibraryError: The first problem found; the message names the file and entry.
    """
    return _build(Path(directory) if directory is not None else DEFAULT_LIBRARY_DIR)


@lru_cache(maxsize=8)
def _cached(directory: str) -> MethodLibrary:
    return _build(Path(directory))


def load_library(directory: str | Path | None = None) -> MethodLibrary:
    """The validated library for `directory` (default: packaged), loaded once and cached.

    Call it at server start-up so a broken library fails the start, not a request.

    Raises:
        LibraryError: The library is broken (message names the file and entry).
    """
    path = Path(directory) if directory is not None else DEFAULT_LIBRARY_DIR
    return _cached(str(path.resolve()))
