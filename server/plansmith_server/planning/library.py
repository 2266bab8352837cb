"""The method library: compound tasks, their methods, primitive tasks and context rules.

The library is a folder of TOML files (``planning/library/*.toml`` by default); see
``docs/planning.md`` for the format. :func:`load_library` parses and validates every
file and caches the result per folder; the server calls it once at start-up so a broken
library fails fast with a :class:`~.errors.LibraryError` naming the file and entry.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from plansmith_server.graph import find_cycle, write_cycle

from .capabilities import normalize_capability
from .errors import LibraryError
from .ranking import TextIndex
from .slots import PLAN_SLOTS, Technology, count_key, index_text, parse_placeholders
from .text import canonical_tokens, tokenize

__all__ = [
    "DEFAULT_LIBRARY_DIR",
    "STAGES",
    "CompoundTask",
    "ContextRule",
    "Method",
    "MethodLibrary",
    "OrderingRule",
    "Phrase",
    "PrimitiveTask",
    "RiskTemplate",
    "ScaleRule",
    "StepTemplate",
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
    "steps": False,
}
_COMPOUND_FIELDS = {
    "title": True,
    "description": True,
    "domain": True,
    "keywords": True,
    "method": True,
    "cross_link": False,
    "evidence": False,
    "weak_evidence": False,
    "negative": False,
    "change": False,
}
_METHOD_FIELDS = {
    "name": True,
    "description": True,
    "subtasks": True,
    "after": False,
    "when": False,
    "keywords": False,
    "change": False,
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
_STEP_FIELDS = {"title": True, "weight": False}
_ORDERING_FIELDS = {
    "name": True,
    "description": True,
    "before": True,
    "after": True,
    "before_words": False,
    "after_words": False,
}
_TECHNOLOGY_FIELDS = {"name": True, "kind": True, "aliases": False}
_TOP_LEVEL = ("compound", "primitive", "rule", "ordering", "technology")


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
    """Scale an estimate by a count (number of services, jobs, users; team size).

    factor = min(max, 1 + per_unit * (count - 1)), count from the first of ``keys``
    the effective context holds: a context key (``service_count``, ``team_size``) or
    ``count:<noun>`` (a count the brief states, e.g. "12 nightly cron jobs").
    """

    keys: tuple[str, ...]
    per_unit: float
    max: float

    @property
    def key(self) -> str:
        """The first key (kept for callers that show one)."""
        return self.keys[0]

    def factor(self, count: float | None) -> float:
        """Estimate multiplier for `count` units (1.0 when unknown or <= 1)."""
        if count is None or count <= 1:
            return 1.0
        return min(self.max, 1.0 + self.per_unit * (count - 1.0))


@dataclass(frozen=True)
class StepTemplate:
    """One of a primitive's own steps (what DecomposeTask splits the leaf into)."""

    title: str
    weight: float


Phrase = tuple[str, ...]
"""A library term as the canonical tokens of its words (stemmed, "db" -> database);
the term is present when they occur in the text's tokens in a row."""


def phrase_of(text: str) -> Phrase:
    """The :data:`Phrase` of a library term ("email campaign")."""
    return tuple(dict.fromkeys(canonical_tokens(text)))


class IndexedTokens(tuple[str, ...]):
    """A token sequence with the positions of each token, for looking many phrases up
    in one text (every compound's evidence and negative terms against one brief)."""

    positions: dict[str, list[int]]

    def __new__(cls, tokens: Iterable[str]) -> IndexedTokens:
        obj = super().__new__(cls, tokens)
        positions: dict[str, list[int]] = {}
        for i, token in enumerate(obj):
            positions.setdefault(token, []).append(i)
        obj.positions = positions
        return obj


def phrase_present(phrase: Phrase, tokens: Sequence[str]) -> bool:
    """Whether `phrase` occurs in the token sequence: one token anywhere, several as a
    contiguous run ("new engineer" is not in "hiring engineers for the new team")."""
    if not phrase:
        return False
    n = len(phrase)
    first = phrase[0]
    if isinstance(tokens, IndexedTokens):
        starts = tokens.positions.get(first)
        if not starts:
            return False
        return n == 1 or any(tuple(tokens[i : i + n]) == phrase for i in starts)
    if n == 1:
        return first in tokens
    return any(
        tokens[i] == first and tuple(tokens[i : i + n]) == phrase
        for i in range(len(tokens) - n + 1)
    )


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
    steps: tuple[StepTemplate, ...] = ()
    scales: tuple[ScaleRule, ...] = ()
    """Every scale rule (``scale`` may be one table or an array of them); their factors
    multiply. ``scale`` is the first."""


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
        change: Template naming the change this method makes ("the move to
            {database}"); overrides the compound's for the ``{change}`` placeholder.
    """

    name: str
    description: str
    subtasks: tuple[str, ...]
    after: Mapping[str, tuple[str, ...]]
    when: tuple[tuple[str, Any], ...]
    keywords: tuple[str, ...]
    change: str = ""


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
    evidence: tuple[tuple[str, Phrase], ...] = ()
    negative: tuple[tuple[str, Phrase], ...] = ()
    change: str = ""
    weak_evidence: frozenset[str] = frozenset()
    """Evidence terms that also mean something outside this domain ("drip", "deploy",
    "server"): a brief whose only evidence is among them needs a stronger match
    (`recognition.WEAK_EVIDENCE_THRESHOLD`)."""

    def evidence_found(self, tokens: Sequence[str]) -> tuple[str, ...]:
        """The `evidence` terms present in `tokens` (all terms when none are declared)."""
        if not self.evidence:
            return ("(no evidence required)",)
        return _terms_present(self.evidence, tokens)

    def negatives_found(self, tokens: Sequence[str]) -> tuple[str, ...]:
        """The `negative` terms present in `tokens`."""
        return _terms_present(self.negative, tokens)


def _terms_present(terms: Sequence[tuple[str, Phrase]], tokens: Sequence[str]) -> tuple[str, ...]:
    if isinstance(tokens, IndexedTokens):
        # Most terms' first token is absent: skip them with one dict lookup each.
        positions = tokens.positions
        return tuple(
            term
            for term, phrase in terms
            if phrase and phrase[0] in positions and phrase_present(phrase, tokens)
        )
    return tuple(term for term, phrase in terms if phrase_present(phrase, tokens))


@dataclass(frozen=True)
class OrderingRule:
    """Tasks tagged with one of `before` precede tasks tagged with one of `after`
    whenever both are in a plan (``[[ordering]]`` in a library file).

    Attributes:
        name: Unique rule name.
        description: Why this order (shown when the validator reports a violation).
        before: Tags of the tasks that come first.
        after: Tags of the tasks that wait for them.
        before_words: Terms that give a task the `before` tag when its title holds one
            ("pilot", "dry run"): a task of another domain's file, or a work package in
            the brief's own words, is ordered by what it says it is.
        after_words: The same for the `after` tag ("roll out", "cut over").
    """

    name: str
    description: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    file: str
    before_words: tuple[tuple[str, Phrase], ...] = ()
    after_words: tuple[tuple[str, Phrase], ...] = ()


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
        orderings: ``[[ordering]]`` rules between tags, in file order.
        technologies: The vocabulary (``[technology.<key>]``) by key.
    """

    primitives: Mapping[str, PrimitiveTask]
    compounds: Mapping[str, CompoundTask]
    rules: tuple[ContextRule, ...]
    compound_index: TextIndex = field(repr=False, compare=False)
    primitive_index: TextIndex = field(repr=False, compare=False)
    method_index: TextIndex = field(repr=False, compare=False)
    files: tuple[str, ...] = ()
    orderings: tuple[OrderingRule, ...] = ()
    technologies: Mapping[str, Technology] = field(default_factory=dict, compare=False)

    @cached_property
    def owners(self) -> Mapping[str, frozenset[str]]:
        """``primitive -> compounds`` whose methods (any of them, nested compounds
        included) can produce it; primitives no compound uses are absent."""
        out: dict[str, set[str]] = {}

        def walk(compound: str, owner: str, seen: frozenset[str]) -> None:
            for method in self.compounds[compound].methods:
                for sub in method.subtasks:
                    if sub in self.primitives:
                        out.setdefault(sub, set()).add(owner)
                    elif sub in self.compounds and sub not in seen:
                        walk(sub, owner, seen | {sub})

        for name in self.compounds:
            walk(name, name, frozenset({name}))
        return {k: frozenset(v) for k, v in out.items()}

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
    scales = []
    raw_scales = raw.get("scale", [])
    for i, rule in enumerate(raw_scales if isinstance(raw_scales, list) else [raw_scales]):
        where = f"scale[{i}]" if isinstance(raw_scales, list) else "scale"
        check.fields(rule, _SCALE_FIELDS, where)
        per_unit, maximum = rule["per_unit"], rule["max"]
        if not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in (per_unit, maximum)
        ):
            raise check.fail(f"'{where}.per_unit' and '{where}.max' must be numbers")
        if per_unit < 0 or maximum < 1:
            raise check.fail(f"'{where}.per_unit' must be >= 0 and '{where}.max' >= 1")
        key_raw = rule["key"]
        keys = (
            (check.text(key_raw, f"{where}.key"),)
            if isinstance(key_raw, str)
            else check.texts(key_raw, f"{where}.key")
        )
        scales.append(
            ScaleRule(tuple(_scale_key(k) for k in keys), float(per_unit), float(maximum))
        )
    steps = []
    for i, step in enumerate(raw.get("steps", [])):
        if isinstance(step, str):
            steps.append(StepTemplate(check.text(step, f"steps[{i}]"), 1.0))
            continue
        check.fields(step, _STEP_FIELDS, f"steps[{i}]")
        weight = step.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
            raise check.fail(f"steps[{i}].weight must be a positive number")
        steps.append(StepTemplate(check.text(step["title"], f"steps[{i}].title"), float(weight)))
    if not isinstance(raw.get("steps", []), list) or len(steps) == 1:
        raise check.fail("'steps' must list at least two steps")
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
        scale=scales[0] if scales else None,
        file=file,
        steps=tuple(steps),
        scales=tuple(scales),
    )


def _scale_key(key: str) -> str:
    """``count:jobs`` and ``count:job`` are the same count; context keys stay as written."""
    if key.startswith("count:"):
        return "count:" + count_key(key[len("count:") :])
    return key


def _phrases(check: _Checker, raw: Any, name: str) -> tuple[tuple[str, Phrase], ...]:
    terms = check.texts(raw, name, allow_empty=True)
    out = []
    for term in terms:
        phrase = phrase_of(term)
        if not phrase:
            raise check.fail(f"'{name}' term '{term}' has no content words")
        out.append((term, phrase))
    return tuple(out)


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
    cycle = find_cycle(subtasks, lambda node: after.get(node, ()))
    if cycle:
        raise check.fail(f"ordering has a cycle (each after the next): {write_cycle(cycle)}")
    when = check.when(raw["when"], "when") if "when" in raw else ()
    keywords = check.texts(raw.get("keywords", []), "keywords", allow_empty=True)
    return Method(
        name,
        check.text(raw["description"], "description"),
        subtasks,
        MappingProxyType(after),
        when,
        keywords,
        check.text(raw["change"], "change") if "change" in raw else "",
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
        evidence=_phrases(check, raw.get("evidence", []), "evidence"),
        negative=_phrases(check, raw.get("negative", []), "negative"),
        change=check.text(raw["change"], "change") if "change" in raw else "",
        weak_evidence=_weak_evidence(check, raw),
    )


def _weak_evidence(check: _Checker, raw: Any) -> frozenset[str]:
    weak = check.texts(raw.get("weak_evidence", []), "weak_evidence", allow_empty=True)
    evidence = set(check.texts(raw.get("evidence", []), "evidence", allow_empty=True))
    for term in weak:
        if term not in evidence:
            raise check.fail(f"'weak_evidence' term '{term}' is not one of its 'evidence'")
    return frozenset(weak)


def _parse_ordering(file: str, index: int, raw: Any) -> OrderingRule:
    check = _Checker(file, f"ordering #{index + 1}")
    check.fields(raw, _ORDERING_FIELDS, "ordering")
    name = check.text(raw["name"], "name")
    check = _Checker(file, f"ordering '{name}'")
    before = check.texts(raw["before"], "before")
    after = check.texts(raw["after"], "after")
    if set(before) & set(after):
        raise check.fail("a tag cannot be both before and after itself")
    if ("before_words" in raw or "after_words" in raw) and (len(before) != 1 or len(after) != 1):
        raise check.fail("an ordering with words names exactly one tag on each side")
    return OrderingRule(
        name,
        check.text(raw["description"], "description"),
        before,
        after,
        file,
        _phrases(check, raw.get("before_words", []), "before_words"),
        _phrases(check, raw.get("after_words", []), "after_words"),
    )


def _parse_technology(file: str, key: str, raw: Any) -> Technology:
    check = _Checker(file, f"technology '{key}'")
    check.fields(raw, _TECHNOLOGY_FIELDS, "technology")
    name = check.text(raw["name"], "name")
    kind = check.text(raw["kind"], "kind")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", kind):
        raise check.fail(f"kind '{kind}' must be lower_snake_case (it is a placeholder name)")
    aliases = check.texts(raw.get("aliases", []), "aliases", allow_empty=True)
    spelled = {key.replace("_", " "), name, *aliases}
    return Technology(
        key, name, kind, tuple(sorted({a.strip().lower() for a in spelled if a.strip()})), file
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
    unknown = sorted(set(data) - set(_TOP_LEVEL))
    if unknown:
        raise LibraryError(
            path.name,
            "",
            f"unknown top-level key(s) {', '.join(unknown)} (expected {', '.join(_TOP_LEVEL)})",
        )
    for key in ("compound", "primitive", "technology"):
        if key in data and not isinstance(data[key], dict):
            raise LibraryError(
                path.name, "", f"'{key}' must be a table of named entries ([{key}.<name>])"
            )
    for key in ("rule", "ordering"):
        if key in data and not isinstance(data[key], list):
            raise LibraryError(path.name, "", f"'{key}' must be an array of tables ([[{key}]])")
    return data


def _build(directory: Path) -> MethodLibrary:
    files = sorted(p for p in directory.glob("*.toml") if p.is_file())
    if not files:
        raise LibraryError(str(directory), "", "no *.toml library files found")
    primitives: dict[str, PrimitiveTask] = {}
    compounds: dict[str, CompoundTask] = {}
    rules: list[ContextRule] = []
    orderings: list[OrderingRule] = []
    technologies: dict[str, Technology] = {}
    seen: dict[str, str] = {}  # name -> "file (kind)" for duplicate detection

    def claim(name: str, kind: str, file: str) -> None:
        if name in seen:
            shown = name.split(":", 1)[1] if kind in ("rule", "ordering", "technology") else name
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
        for i, raw in enumerate(data.get("ordering", [])):
            ordering = _parse_ordering(path.name, i, raw)
            claim(f"ordering:{ordering.name}", "ordering", path.name)
            orderings.append(ordering)
        for key, raw in data.get("technology", {}).items():
            claim(f"technology:{key}", "technology", path.name)
            technologies[key] = _parse_technology(path.name, key, raw)

    aliases: dict[str, str] = {}
    for tech in technologies.values():
        for alias in tech.aliases:
            if alias in aliases and aliases[alias] != tech.key:
                raise LibraryError(
                    tech.file,
                    f"technology '{tech.key}'",
                    f"alias '{alias}' is already used by technology '{aliases[alias]}'",
                )
            aliases[alias] = tech.key
    kinds = {t.kind for t in technologies.values()}
    templated: list[tuple[str, str, str, str]] = []  # file, entry, where, text
    for prim in primitives.values():
        entry = f"primitive '{prim.name}'"
        templated += [(prim.file, entry, "title", prim.title)]
        templated += [(prim.file, entry, "description", prim.description)]
        templated += [
            (prim.file, entry, f"acceptance[{i}]", a) for i, a in enumerate(prim.acceptance)
        ]
        templated += [
            (prim.file, entry, f"steps[{i}]", st.title) for i, st in enumerate(prim.steps)
        ]
    for comp in compounds.values():
        entry = f"compound '{comp.name}'"
        templated += [(comp.file, entry, "change", comp.change)]
        templated += [
            (comp.file, entry, f"method '{m.name}' change", m.change) for m in comp.methods
        ]
    for file, entry, where, text in templated:
        try:
            placeholders = parse_placeholders(text)
        except ValueError as exc:
            raise LibraryError(file, entry, f"{where}: {exc}") from None
        for ph in placeholders:
            if ph.kind != "tech" or ph.name in kinds:
                continue
            if ph.name in PLAN_SLOTS and not ph.attribute:
                if ph.name != "change" or not where.endswith("change"):
                    continue
            raise LibraryError(
                file,
                entry,
                f"{where}: placeholder '{ph.raw}' names no technology kind "
                f"(known: {', '.join(PLAN_SLOTS)}, {', '.join(sorted(kinds)) or 'none'})",
            )

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
    cycle = find_cycle(sorted(compounds), lambda name: nesting.get(name, ()))
    if cycle:
        first = compounds[cycle[0]]
        raise LibraryError(
            first.file,
            f"compound '{first.name}'",
            f"compound tasks expand into each other (each into the next): {write_cycle(cycle)}",
        )
    for rule in rules:
        for ref in (*rule.before, *rule.after, *rule.skip_if_present):
            if ref not in primitives:
                raise LibraryError(
                    rule.file, f"rule '{rule.name}'", f"refers to unknown primitive '{ref}'"
                )

    used_tags = {tag for p in primitives.values() for tag in p.tags}
    # A tag an ordering gives by words need not be on any library task.
    used_tags |= {t for o in orderings if o.before_words for t in o.before}
    used_tags |= {t for o in orderings if o.after_words for t in o.after}
    for ordering in orderings:
        for tag in (*ordering.before, *ordering.after):
            if tag not in used_tags:
                raise LibraryError(
                    ordering.file,
                    f"ordering '{ordering.name}'",
                    f"no primitive has the tag '{tag}'",
                )
    tag_edges: dict[str, set[str]] = {}
    for ordering in orderings:
        for tag in ordering.after:
            tag_edges.setdefault(tag, set()).update(ordering.before)
    cycle = find_cycle(sorted(tag_edges), lambda tag: sorted(tag_edges.get(tag, ())))
    if cycle:
        culprit = next(o for o in orderings if cycle[0] in o.after or cycle[0] in o.before)
        raise LibraryError(
            culprit.file,
            f"ordering '{culprit.name}'",
            f"orderings form a cycle (each tag after the next): {write_cycle(cycle)}",
        )

    return MethodLibrary(
        primitives=MappingProxyType(primitives),
        compounds=MappingProxyType(compounds),
        rules=tuple(rules),
        compound_index=_compound_index(primitives, compounds),
        primitive_index=_primitive_index(primitives),
        method_index=_method_index(compounds),
        files=tuple(p.name for p in files),
        orderings=tuple(orderings),
        technologies=MappingProxyType(technologies),
    )


def _tokens(*texts: str) -> list[str]:
    out: list[str] = []
    for text in texts:
        out.extend(tokenize(text))
    return out


def _primitive_index(primitives: Mapping[str, PrimitiveTask]) -> TextIndex:
    return TextIndex(
        {
            name: (_tokens(index_text(p.title), *p.keywords), _tokens(index_text(p.description)))
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
        frozenset(_tokens(index_text(p.title), index_text(p.description), *p.keywords))
        for p in primitives.values()
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
