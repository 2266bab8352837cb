"""Hierarchical task network expansion: from a request to an ordered task graph.

Steps (all deterministic, all state local to one call):

1. **Domain**: the name and description are ranked against the library's compound
   tasks; the best one above ``DOMAIN_THRESHOLD`` is expanded (its method chosen by
   context conditions, then keyword evidence). Clauses of the description that clearly
   name another compound ("... and set up CI/CD") bring that compound in too, unless
   a task already in the plan covers them.
2. **Requirements**, in order: a requirement is covered by the plan's matching library
   tasks, or brings in a whole compound task, or a single library task, or -- when
   nothing in the library fits -- a generic design -> build -> verify chain with
   capabilities inferred from its words.
3. **Linking**: separate parts ("units": compound expansions, single tasks, generic
   chains) are tied together by stage: generic/single-task build work waits for the
   other parts' foundation work, and every release waits for everything else to be
   verified. Incident response and onboarding opt out (``cross_link = false``).
4. **Context rules** insert safeguards around tagged tasks (rollback plan, staging
   rehearsal, approval gate, verified backup, expand/contract, blue-green...).
5. **Mandates** add the mandated technology to the tasks of its area.
6. Redundant (transitive) dependencies are dropped and tasks are numbered ``t1..tn``
   in a topological order that follows the order they were created.

An edge that would close a cycle is never added, so the result is always a DAG.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .capabilities import infer_capabilities, normalize_capability
from .constraints import ConstraintAnalysis
from .context import EffectiveContext, condition_holds, describe_fact
from .library import (
    STAGES,
    ContextRule,
    IndexedTokens,
    MethodLibrary,
    OrderingRule,
    PrimitiveTask,
    RiskTemplate,
    ThreePoint,
    phrase_of,
    phrase_present,
)
from .plan import AppliedRule, MethodChoice, PlannedTask, PlanWarning, Priority, RequirementCoverage
from .recognition import DOMAIN_THRESHOLD, Recognition, rank_compounds, recognize_domain
from .request import PlanRequest
from .slots import KIND_AREAS, Slots, context_specifics, release_mentions, specifics_of
from .text import tokenize
from .workpackage import headline, parts, size_work_package

__all__ = [
    "DOMAIN_THRESHOLD",
    "REQ_COMPOUND_THRESHOLD",
    "REQ_TASK_THRESHOLD",
    "DraftPlan",
    "build_task_graph",
]

CLAUSE_COMPOUND_THRESHOLD = 0.6
"""A description clause brings in an extra compound only on a strong match."""
REQ_COMPOUND_THRESHOLD = 0.55
"""A requirement brings in a whole compound at this score."""
REQ_TASK_THRESHOLD = 0.33
"""A requirement is covered by a library task of the plan at this score."""
REQ_STANDALONE_THRESHOLD = 0.55
"""A requirement brings in a single library task at this score."""
REQ_OTHER_DOMAIN_THRESHOLD = 0.95
"""Score at which a requirement alone adds another domain's compound to a recognized
plan (below it, that domain must be evidenced in the name or description)."""
MAX_COMPOUNDS = 6
CLAUSE_TASK_THRESHOLD = 0.25
"""A description clause no task speaks of is written into the task it resembles at this
score (one task, not a tie), or else into the domain's first build task."""
SENTENCE_TASK_THRESHOLD = 0.3
"""A sentence of the brief gives its specifics to the library task it resembles at this
score, rather than to the plan's scoping task."""
TITLE_LEAD_TOKENS = 3
"""An ordering's words tag a task when they are among its title's first content words."""
PEER_THRESHOLD = 0.15
"""A work package sits beside the plan's library task it resembles at this score (too
weak to say the task covers the requirement, enough to say where its work belongs)."""
"""Bound on expanded compounds, so a long requirement list cannot explode the plan."""

_STAGE_INDEX = {stage: i for i, stage in enumerate(STAGES)}
_FOUNDATION = _STAGE_INDEX["foundation"]
_BUILD = _STAGE_INDEX["build"]
_VERIFY = _STAGE_INDEX["verify"]
_RELEASE = _STAGE_INDEX["release"]


@dataclass
class _Node:
    key: int
    name: str
    title: str
    description: str
    stage: str
    capabilities: set[str]
    estimate: ThreePoint
    priority: str
    acceptance: tuple[str, ...]
    risks: tuple[RiskTemplate, ...]
    tags: tuple[str, ...]
    source: str
    unit: int
    preds: set[int] = field(default_factory=set)
    reqs: set[int] = field(default_factory=set)
    words: str = ""  # a work package's own text (the requirement it plans)


@dataclass
class _Unit:
    key: int
    kind: str  # "compound" | "primitive" | "generic"
    cross_link: bool
    nodes: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class DraftPlan:
    """The task graph before assignment and scheduling.

    Attributes:
        tasks: Tasks in id order; ``assigned_to`` empty, schedule fields zero.
        task_risks: ``(task id, risk template)`` pairs from the library.
        coverage: One entry per requirement.
        methods: Compound expansions.
        rules: Context rules and mandates applied.
        warnings: Problems found while decomposing.
        assumptions: Assumptions made while decomposing.
        recognition: The domain recognition the plan rests on.
    """

    tasks: tuple[PlannedTask, ...]
    task_risks: tuple[tuple[str, RiskTemplate], ...]
    coverage: tuple[RequirementCoverage, ...]
    methods: tuple[MethodChoice, ...]
    rules: tuple[AppliedRule, ...]
    warnings: tuple[PlanWarning, ...]
    assumptions: tuple[str, ...]
    recognition: Recognition | None = None


def _round_estimate(estimate: ThreePoint) -> tuple[float, float, float]:
    low = round(estimate.optimistic, 1)
    high = round(estimate.pessimistic, 1)
    expected = min(max(round(estimate.expected, 1), low), high)
    return low, expected, high


def _short(text: str, limit: int = 70) -> str:
    clean = " ".join(text.split()).rstrip(".")
    if len(clean) <= limit:
        return clean
    cut = clean[:limit].rsplit(" ", 1)[0]
    return cut + "..."


class _Builder:
    """Mutable graph under construction; lives for one `build_task_graph` call."""

    def __init__(
        self,
        library: MethodLibrary,
        context: EffectiveContext,
        query: Sequence[str],
        slots: Slots | None = None,
    ) -> None:
        self.lib = library
        self.ctx = context
        self.query = query
        self.head: Sequence[str] = ()
        self.slots = slots if slots is not None else Slots()
        self.nodes: dict[int, _Node] = {}
        self.units: dict[int, _Unit] = {}
        self.by_primitive: dict[str, int] = {}
        self.compound_units: dict[str, int] = {}
        self.methods: list[tuple[str, str, str, float, list[int], str]] = []
        self.rules: list[tuple[str, str, str, list[int]]] = []
        self.warnings: list[PlanWarning] = []
        self.assumptions: list[str] = []
        self._next_key = 0

    # ------------------------------------------------------------------ graph basics

    def new_unit(self, kind: str, cross_link: bool) -> _Unit:
        unit = _Unit(len(self.units), kind, cross_link)
        self.units[unit.key] = unit
        return unit

    def add_node(self, node_args: dict[str, Any], unit: _Unit) -> int:
        key = self._next_key
        self._next_key += 1
        self.nodes[key] = _Node(key=key, unit=unit.key, **node_args)
        unit.nodes.append(key)
        return key

    def ancestors(self, key: int) -> set[int]:
        seen: set[int] = set()
        stack = list(self.nodes[key].preds)
        while stack:
            k = stack.pop()
            if k not in seen:
                seen.add(k)
                stack.extend(self.nodes[k].preds)
        return seen

    def add_edge(self, before: int, after: int) -> bool:
        """Make `after` depend on `before`, unless that would close a cycle."""
        if before == after or before in self.nodes[after].preds:
            return before != after
        if after in self.ancestors(before):
            return False
        self.nodes[after].preds.add(before)
        return True

    # ------------------------------------------------------------------ instantiation

    def primitive(self, name: str, unit: _Unit, source: str) -> int:
        if name in self.by_primitive:
            return self.by_primitive[name]
        prim: PrimitiveTask = self.lib.primitives[name]
        estimate = prim.estimate
        for rule in prim.scales:
            count = next(
                (
                    v
                    for v in (self.ctx.get(k) for k in rule.keys)
                    if isinstance(v, (int, float)) and not isinstance(v, bool)
                ),
                None,
            )
            estimate = estimate.scaled(rule.factor(count))
        render = self.slots.render
        key = self.add_node(
            dict(
                name=name,
                title=render(prim.title),
                description=render(prim.description),
                stage=prim.stage,
                capabilities=set(prim.capabilities),
                estimate=estimate,
                priority=prim.priority,
                acceptance=tuple(render(a) for a in prim.acceptance),
                risks=prim.risks,
                tags=prim.tags,
                source=source,
            ),
            unit,
        )
        self.by_primitive[name] = key
        return key

    def choose_method(self, compound_name: str) -> tuple[str, str]:
        compound = self.lib.compounds[compound_name]
        conditional = [
            m
            for m in compound.methods
            if m.when and all(condition_holds(self.ctx, k, v) for k, v in m.when)
        ]
        if conditional:
            pool = conditional
        else:
            pool = [m for m in compound.methods if not m.when] or [compound.methods[0]]
        if len(pool) > 1:
            # A specialised method (one with keywords) needs one of them in the brief: a
            # payments outage after a deploy is not a database outage because the
            # database method's description mentions restoring service.
            query = IndexedTokens(self.query)
            named = [
                m
                for m in pool
                if not m.keywords or any(phrase_present(phrase_of(k), query) for k in m.keywords)
            ]
            pool = named or pool
        scored = [
            (self.lib.method_index.overlap(self.query, f"{compound_name}/{m.name}"), i, m)
            for i, m in enumerate(pool)
        ]
        best_score, _, best = max(scored, key=lambda item: (item[0], -item[1]))
        if conditional:
            conditions = ", ".join(
                describe_fact(f) for f in (self.ctx.fact(k) for k, _ in best.when) if f is not None
            )
            return best.name, f"its conditions hold ({conditions}): {best.description}"
        if len(compound.methods) == 1:
            return best.name, f"only method: {best.description}"
        if best_score > 0:
            return best.name, f"best keyword match among {len(pool)} methods: {best.description}"
        return (
            best.name,
            "default method (no context condition or keyword favoured another): "
            f"{best.description}",
        )

    def expand(
        self, compound_name: str, unit: _Unit, trigger: str, score: float
    ) -> tuple[list[int], list[int], list[int]]:
        """Expand a compound; returns (entry keys, exit keys, all keys)."""
        method_name, reason = self.choose_method(compound_name)
        compound = self.lib.compounds[compound_name]
        method = next(m for m in compound.methods if m.name == method_name)
        change = method.change or compound.change
        if change and not self.slots.change:
            self.slots = replace(self.slots, change=self.slots.render(change))
        spans: dict[str, tuple[list[int], list[int]]] = {}
        produced: list[int] = []
        for sub in method.subtasks:
            if sub in self.lib.primitives:
                key = self.primitive(sub, unit, f"library:{compound_name}/{method_name}/{sub}")
                spans[sub] = ([key], [key])
                produced.append(key)
            else:
                entries, exits, keys = self.expand(
                    sub, unit, f"{compound_name}/{method_name}", score
                )
                spans[sub] = (entries, exits)
                produced.extend(keys)
        predecessors_of = set()
        for sub, preds in method.after.items():
            for pred in preds:
                predecessors_of.add(pred)
                for x in spans[pred][1]:
                    for y in spans[sub][0]:
                        self.add_edge(x, y)
        entries = [k for sub in method.subtasks if not method.after.get(sub) for k in spans[sub][0]]
        exits = [k for sub in method.subtasks if sub not in predecessors_of for k in spans[sub][1]]
        self.methods.append((compound_name, method_name, reason, score, produced, trigger))
        return entries, exits, produced

    def add_compound(self, name: str, trigger: str, score: float) -> list[int]:
        compound = self.lib.compounds[name]
        unit = self.new_unit("compound", compound.cross_link)
        _, _, keys = self.expand(name, unit, trigger, score)
        self.compound_units[name] = unit.key
        return keys

    def add_work_package(
        self, text: str, label: str, origin: str, *, head: bool = False
    ) -> list[int]:
        """One task for a piece of the brief nothing in the library covers: titled with
        the brief's own words and sized by what they say (see ``workpackage.py``).
        With `head`, the title is the requirement's main clause (its qualifiers stay in
        the description): the task sits among a library plan's tasks and is named as
        one of them."""
        tokens = tokenize(text)
        caps = set(infer_capabilities(tokens))
        unit = self.new_unit("generic", True)
        if head:
            title = headline(text)
        else:
            short = _short(text, 90)
            title = short[:1].upper() + short[1:]
        sizing = size_work_package(text)
        pieces = parts(text)
        pieces = pieces if len(pieces) > 1 else []
        checklist = f" Its parts: {'; '.join(pieces)}." if pieces else ""
        key = self.add_node(
            dict(
                name=f"generic:{label}",
                title=title,
                description=(
                    f"{origin}: '{' '.join(text.split())}'. No library method covers it, so it "
                    "is one work package: agree its scope and acceptance with the requester, do "
                    f"it, and check it.{checklist} Sized from its words: {sizing.basis}."
                ),
                stage="build",
                capabilities=caps,
                estimate=sizing.estimate,
                priority="MEDIUM",
                acceptance=(
                    *(f"Delivered and checked: {p}" for p in pieces),
                    f"'{_short(text, 60)}' is delivered as stated",
                    "The requester accepts the result",
                ),
                risks=(),
                tags=(),
                source="generic:work_package",
                words=text,
            ),
            unit,
        )
        if not caps:
            self.assumptions.append(
                f"No capability could be inferred for '{_short(text)}'; its work package can be "
                "done by any agent."
            )
        return [key]

    def place_work_packages(self) -> None:
        """Put each work package of a recognized plan where its work belongs: beside
        the plan's library task its words resemble most ("Quarterly restore tests"
        beside the restore tests, "Each ships a first change" beside the first change),
        with that task's prerequisites, stage and tags, and before that task's
        successors -- so it waits for the training, the contract or the backups the
        library task waits for. After a plan- or design-stage task it simply follows
        it. A work package resembling nothing is linked by stage (`link_units`)."""
        library_tasks = {
            n.name: k for k, n in self.nodes.items() if not n.source.startswith("generic:")
        }
        if not library_tasks:
            return
        successors: dict[int, list[int]] = {k: [] for k in self.nodes}
        for k, n in self.nodes.items():
            for p in n.preds:
                successors[p].append(k)
        domain = self.units[next(iter(self.compound_units.values()))]
        for key, node in list(self.nodes.items()):
            if node.source != "generic:work_package" or node.preds or not node.words:
                continue
            if _retiring(node.title):
                # Switching the old thing off ("Nagios switched off at the end") comes
                # after everything the plan builds and releases.
                for k in self._maxima(domain, _RELEASE, exact=False):
                    self.add_edge(k, key)
                node.stage = "operate"  # its title gives it the ordering tag `retire`
                self.units[node.unit].cross_link = False
                continue
            ranked = self.lib.primitive_index.rank(
                tokenize(node.words), keys=library_tasks, minimum=PEER_THRESHOLD
            )
            if not ranked:
                continue
            # Between tasks it resembles equally, the later one: the requirement's work
            # then waits for more of the plan, never for less.
            best = [library_tasks[name] for name, score in ranked if score >= ranked[0][1]]
            peer = self.nodes[max(best)]
            if _STAGE_INDEX[peer.stage] <= _STAGE_INDEX["design"]:
                self.add_edge(peer.key, key)
            else:
                for pred in sorted(peer.preds):
                    self.add_edge(pred, key)
                for succ in successors[peer.key]:
                    self.add_edge(key, succ)
                node.stage = peer.stage
                node.tags = tuple(dict.fromkeys((*node.tags, *peer.tags)))
            self.units[node.unit].cross_link = False  # placed: not linked by stage

    def tag_by_words(
        self, ordering: OrderingRule, titles: dict[int, IndexedTokens] | None = None
    ) -> None:
        """Give an ordering's tags to the tasks whose titles say they are that kind of
        work ("Pilot the migration with one team", "Switch off Nagios"). A task is
        tagged only when the order can hold without going back in lifecycle stage or
        against the order already planned -- a "rollout plan" written in the design
        stage is not the rollout -- and never on both sides."""
        if not (ordering.before_words or ordering.after_words):
            return
        (before_tag,), (after_tag,) = ordering.before, ordering.after
        # The words must lead the title (what the task does), not qualify it: "Train the
        # users and communicate the switch-over date" is training, not the switch-over.
        if titles is None:
            titles = self.title_leads()

        def says(key: int, words: tuple[tuple[str, tuple[str, ...]], ...]) -> bool:
            return any(phrase_present(phrase, titles[key]) for _, phrase in words)

        first = {k for k in self.nodes if says(k, ordering.before_words)}
        then = {k for k in self.nodes if says(k, ordering.after_words)}
        first, then = first - then, then - first
        first |= {k for k, n in self.nodes.items() if before_tag in n.tags}
        then |= {k for k, n in self.nodes.items() if after_tag in n.tags}

        def fits(b: int, a: int) -> bool:
            stage_ok = _STAGE_INDEX[self.nodes[b].stage] <= _STAGE_INDEX[self.nodes[a].stage]
            return b == a or (stage_ok and a not in self.ancestors(b))

        for k in sorted(first):
            if before_tag not in self.nodes[k].tags and all(fits(k, a) for a in then):
                self.nodes[k].tags = (*self.nodes[k].tags, before_tag)
        firsts = [k for k, n in self.nodes.items() if before_tag in n.tags]
        for k in sorted(then):
            if after_tag not in self.nodes[k].tags and all(fits(b, k) for b in firsts):
                self.nodes[k].tags = (*self.nodes[k].tags, after_tag)

    def title_leads(self) -> dict[int, IndexedTokens]:
        """The first content words of every task's title (what the task does)."""
        return {
            k: IndexedTokens(tokenize(n.title)[:TITLE_LEAD_TOKENS]) for k, n in self.nodes.items()
        }

    def apply_orderings(self, orderings: Sequence[OrderingRule]) -> None:
        """Add the library's tag orderings between tasks of the plan."""
        titles = self.title_leads()
        for ordering in orderings:
            self.tag_by_words(ordering, titles)
            before = [k for k, n in self.nodes.items() if set(n.tags) & set(ordering.before)]
            after = [k for k, n in self.nodes.items() if set(n.tags) & set(ordering.after)]
            if not before or not after:
                continue
            added: list[int] = []
            for b in before:
                for a in after:
                    if b == a or b in self.ancestors(a):
                        continue
                    if self.add_edge(b, a):
                        added.append(a)
                    else:
                        self.warnings.append(
                            PlanWarning(
                                "ORDERING_CONFLICT",
                                f"'{self.nodes[b].title}' should precede '{self.nodes[a].title}' "
                                f"({ordering.name}: {ordering.description}) but the plan already "
                                "orders them the other way.",
                            )
                        )
            if added:
                self.rules.append(
                    (
                        f"ordering:{ordering.name}",
                        ordering.description,
                        f"tasks tagged {', '.join(ordering.before)} and "
                        f"{', '.join(ordering.after)}",
                        sorted(set(added)),
                    )
                )

    # ------------------------------------------------------------------ linking

    def link_units(self) -> None:
        units = [u for u in self.units.values() if u.cross_link]
        for unit in units:
            members = set(unit.nodes)
            for key in unit.nodes:
                node = self.nodes[key]
                stage = _STAGE_INDEX[node.stage]
                in_unit_preds = [p for p in node.preds if p in members]
                if any(_STAGE_INDEX[self.nodes[p].stage] >= stage for p in in_unit_preds):
                    continue  # not the first task of its stage in this unit
                if stage == _BUILD and unit.kind != "compound":
                    limit, exact = _FOUNDATION, True
                elif stage == _RELEASE:
                    limit, exact = _VERIFY, False
                else:
                    continue
                for other in units:
                    if other.key == unit.key:
                        continue
                    for before in self._maxima(other, limit, exact):
                        self.add_edge(before, key)

    def _maxima(self, unit: _Unit, limit: int, exact: bool) -> list[int]:
        """Latest tasks of `unit` whose stage is <= limit (== limit when exact)."""

        def ok(k: int) -> bool:
            s = _STAGE_INDEX[self.nodes[k].stage]
            return s == limit if exact else s <= limit

        candidates = [k for k in unit.nodes if ok(k)]
        cset = set(candidates)
        has_successor = {p for k in candidates for p in self.nodes[k].preds if p in cset}
        return [k for k in candidates if k not in has_successor]

    # ------------------------------------------------------------------ rules

    def apply_rules(self, rules: Iterable[ContextRule]) -> None:
        for rule in rules:
            if not all(condition_holds(self.ctx, k, v) for k, v in rule.when):
                continue
            if any(name in self.by_primitive for name in rule.skip_if_present):
                continue
            targets = [k for k, n in self.nodes.items() if set(n.tags) & set(rule.targets)]
            if not targets:
                continue
            target_set = set(targets)
            anc = {k: self.ancestors(k) for k in targets}
            earliest = [k for k in targets if not (anc[k] & target_set)]
            latest = [k for k in targets if not any(k in anc[o] for o in targets if o != k)]
            unit = self.units[self.nodes[earliest[0]].unit]
            added: list[int] = []
            if rule.before:
                chain = [
                    self.primitive(name, unit, f"rule:{rule.name}/{name}") for name in rule.before
                ]
                outside = set(chain)
                entry_preds = sorted({p for k in earliest for p in self.nodes[k].preds} - outside)
                for pred in entry_preds:
                    self.add_edge(pred, chain[0])
                for a, b in itertools.pairwise(chain):
                    self.add_edge(a, b)
                for k in earliest:
                    self.add_edge(chain[-1], k)
                added.extend(chain)
            if rule.after:
                chain = [
                    self.primitive(name, unit, f"rule:{rule.name}/{name}") for name in rule.after
                ]
                for k in latest:
                    self.add_edge(k, chain[0])
                for a, b in itertools.pairwise(chain):
                    self.add_edge(a, b)
                added.extend(chain)
            triggers = "; ".join(
                describe_fact(f) for f in (self.ctx.fact(k) for k, _ in rule.when) if f is not None
            )
            self.rules.append((rule.name, rule.description, triggers, added))

    def apply_mandates(self, constraints: ConstraintAnalysis) -> None:
        for mandate in constraints.mandates:
            areas = set(mandate.areas)
            touched = [k for k, n in self.nodes.items() if n.capabilities & areas]
            for k in touched:
                self.nodes[k].capabilities.add(mandate.technology)
            if touched:
                self.rules.append(
                    (
                        f"mandate:{mandate.technology}",
                        f"Tasks in area(s) {', '.join(mandate.areas)} must use "
                        f"{mandate.technology}.",
                        f"constraint '{mandate.source}'"
                        if mandate.source != "context.tech_stack"
                        else "context.tech_stack",
                        touched,
                    )
                )
            else:
                self.warnings.append(
                    PlanWarning(
                        "MANDATE_NOT_APPLIED",
                        f"'{mandate.technology}' is mandated ({mandate.source}) but no task works "
                        "in "
                        f"{', '.join(mandate.areas)}; it is recorded but changes nothing.",
                    )
                )

    # ------------------------------------------------------------------ output

    def transitive_reduction(self) -> None:
        order = self.topological_order()
        position = {k: i for i, k in enumerate(order)}
        reach: dict[int, set[int]] = {}
        for k in order:
            node = self.nodes[k]
            # Visit direct predecessors latest-first: anything reachable through a
            # later predecessor makes an earlier direct edge to it redundant.
            keep: set[int] = set()
            covered: set[int] = set()
            for p in sorted(node.preds, key=lambda x: -position[x]):
                if p in covered:
                    continue
                keep.add(p)
                covered |= reach[p] | {p}
            node.preds = keep
            reach[k] = covered
        return None

    def topological_order(self) -> list[int]:
        indegree = {k: len(n.preds) for k, n in self.nodes.items()}
        successors: dict[int, list[int]] = {k: [] for k in self.nodes}
        for k, n in self.nodes.items():
            for p in n.preds:
                successors[p].append(k)
        heap = [k for k, d in indegree.items() if d == 0]
        heapq.heapify(heap)
        order: list[int] = []
        while heap:
            k = heapq.heappop(heap)
            order.append(k)
            for s in successors[k]:
                indegree[s] -= 1
                if indegree[s] == 0:
                    heapq.heappush(heap, s)
        if len(order) != len(self.nodes):  # pragma: no cover - add_edge forbids cycles
            raise RuntimeError("internal error: task graph has a cycle")
        return order


def _clauses(description: str) -> list[str]:
    parts = re.split(
        r"\.(?=\s|$)|[;:\n]|,\s|\band then\b|\bplus\b|\bas well as\b|\band\b", description
    )
    return [p.strip() for p in parts if len(tokenize(p)) >= 2]


def build_task_graph(
    request: PlanRequest,
    library: MethodLibrary,
    context: EffectiveContext,
    constraints: ConstraintAnalysis,
    slots: Slots | None = None,
) -> DraftPlan:
    """Decompose a validated request into a task graph.

    Args:
        request: The (validated) request.
        library: The method library.
        context: Effective context (explicit + inferred).
        constraints: Understood constraints (mandates are applied here).
        slots: The brief's specifics (technologies, counts, team size) for the
            library's placeholders.

    Returns:
        The draft plan: tasks in id order plus coverage, methods and rules.
    """
    all_text = " ".join(
        (request.name, request.description, *request.requirements, *request.constraints)
    )
    builder = _Builder(library, context, tokenize(all_text), slots)
    lib = library

    # 1. Domain from the brief (name and description first, requirements as support).
    head = tokenize(f"{request.name}. {request.description}")
    whole = tokenize(" ".join((request.name, request.description, *request.requirements)))
    recognition = recognize_domain(lib, head, whole)
    builder.head = head
    if recognition.best is not None:
        builder.add_compound(recognition.best.compound, "description", recognition.best.score)
        for clause in _clauses(request.description):
            tokens = tokenize(clause)
            c_ranked = rank_compounds(lib, tokens, minimum=CLAUSE_COMPOUND_THRESHOLD)
            if not c_ranked or c_ranked[0][0] in builder.compound_units:
                continue
            if lib.compounds[c_ranked[0][0]].negatives_found(head):
                # The rest of the description argues against it ("... proper
                # observability" after "nightly jobs broke"): not a second project.
                continue
            in_plan = lib.primitive_index.rank(
                tokens, keys=builder.by_primitive, minimum=REQ_TASK_THRESHOLD
            )
            if in_plan and in_plan[0][1] + 0.15 >= c_ranked[0][1]:
                continue
            if len(builder.compound_units) < MAX_COMPOUNDS:
                builder.add_compound(
                    c_ranked[0][0], f"description ('{_short(clause, 50)}')", c_ranked[0][1]
                )
    else:
        closest = [m for m in recognition.closest(3) if m.lexical > 0]
        named = (
            "; closest: "
            + ", ".join(
                f"{m.compound} ({lib.compounds[m.compound].title}) {m.score:.2f}"
                + ("" if m.evidence else " [none of its evidence terms]")
                + (f" [against: {', '.join(m.negatives)}]" if m.negatives else "")
                for m in closest
            )
            if closest
            else "; no compound shares its words"
        )
        builder.warnings.append(
            PlanWarning(
                "DOMAIN_NOT_RECOGNIZED",
                "No domain of the method library fits this brief (threshold "
                f"{recognition.threshold:.2f}){named}. The plan is built from the brief's own "
                "words: one work package per requirement.",
            )
        )

    # 2. Requirements.
    coverage: list[tuple[int, str, list[int], str, str, float, str]] = []
    seen_requirements: dict[str, int] = {}
    for index, requirement in enumerate(request.requirements):
        normalized = " ".join(requirement.lower().split())
        if normalized in seen_requirements:
            first = seen_requirements[normalized]
            builder.warnings.append(
                PlanWarning(
                    "DUPLICATE_REQUIREMENT",
                    f"requirements[{index}] repeats requirements[{first}]; both map to the same "
                    "tasks.",
                )
            )
            prev = next(c for c in coverage if c[0] == first)
            for k in prev[2]:
                builder.nodes[k].reqs.add(index)
            coverage.append(
                (
                    index,
                    requirement,
                    prev[2],
                    prev[3],
                    prev[4],
                    prev[5],
                    f"Same as requirements[{first}].",
                )
            )
            continue
        seen_requirements[normalized] = index
        if recognition.best is None:
            keys = builder.add_work_package(requirement, f"r{index}", f"requirements[{index}]")
            for k in keys:
                builder.nodes[k].reqs.add(index)
            coverage.append(
                (
                    index,
                    requirement,
                    keys,
                    "generic",
                    "",
                    0.0,
                    "Domain not recognized; one work package titled and sized from this "
                    "requirement's words.",
                )
            )
            continue
        coverage.append((index, requirement, *_cover_requirement(builder, index, requirement)))

    # No domain and no requirements: plan the description's own parts.
    if not builder.nodes:
        parts = _clauses(request.description) or [request.description]
        for i, part in enumerate(parts[:12]):
            builder.add_work_package(part, f"d{i}", "From the description")
        if recognition.best is not None:  # pragma: no cover - a recognized domain adds tasks
            builder.warnings.append(
                PlanWarning("GENERIC_DECOMPOSITION", "Nothing in the method library matched.")
            )

    if recognition.best is not None:
        _verify_stated_targets(builder, request, coverage)
        _retire_what_is_replaced(builder, request)
        builder.place_work_packages()
        _carry_specifics(builder, request, library, constraints)
        _say_unsaid_parts(builder, library, coverage, request.description)

    # 3-5. Linking, context rules, mandates.
    builder.link_units()
    builder.apply_rules(lib.rules)
    builder.apply_orderings(lib.orderings)
    builder.apply_mandates(constraints)
    builder.transitive_reduction()

    # 6. Number tasks.
    order = builder.topological_order()
    ids = {k: f"t{i + 1}" for i, k in enumerate(order)}
    position = {k: i for i, k in enumerate(order)}
    titles: dict[str, int] = {}
    tasks: list[PlannedTask] = []
    task_risks: list[tuple[str, RiskTemplate]] = []
    for k in order:
        node = builder.nodes[k]
        low, expected, high = _round_estimate(node.estimate)
        title = node.title
        if title in titles:  # two generic chains for near-identical requirements
            titles[title] += 1
            title = f"{title} ({titles[title]})"
        else:
            titles[title] = 1
        tasks.append(
            PlannedTask(
                id=ids[k],
                title=title,
                description=node.description,
                priority=Priority(node.priority),
                estimated_hours=expected,
                optimistic_hours=low,
                pessimistic_hours=high,
                dependencies=tuple(ids[p] for p in sorted(node.preds, key=position.__getitem__)),
                assigned_to="",
                required_capabilities=tuple(
                    sorted({normalize_capability(c) for c in node.capabilities if c})
                ),
                acceptance_criteria=node.acceptance,
                requirement_indexes=tuple(sorted(node.reqs)),
                source=node.source,
                tags=tuple(node.tags),
            )
        )
        task_risks.extend((ids[k], risk) for risk in node.risks)

    def to_ids(keys: Iterable[int]) -> tuple[str, ...]:
        return tuple(ids[k] for k in sorted(set(keys), key=position.__getitem__))

    return DraftPlan(
        tasks=tuple(tasks),
        task_risks=tuple(task_risks),
        coverage=tuple(
            RequirementCoverage(i, text, to_ids(keys), match, matched, round(score, 3), note)
            for i, text, keys, match, matched, score, note in coverage
        ),
        methods=tuple(
            MethodChoice(c, m, reason, round(score, 3), to_ids(keys), trigger)
            for c, m, reason, score, keys, trigger in builder.methods
        ),
        rules=tuple(AppliedRule(n, d, t, to_ids(keys)) for n, d, t, keys in builder.rules),
        warnings=tuple(builder.warnings),
        assumptions=tuple(builder.assumptions),
        recognition=recognition,
    )


_MEASURABLE_TARGET = re.compile(
    r"(?:\b(?:under|below|within|less than|at most|at least|above|over|no more than)|[<>]=?)"
    r"\s*\d[\d.,]*\s*(?:ms|milliseconds?|s|seconds?|minutes?|%|rps|qps|requests?)\b",
    re.IGNORECASE,
)


def _cover_requirement(
    builder: _Builder, index: int, requirement: str
) -> tuple[list[int], str, str, float, str]:
    """Cover one requirement; returns (keys, match, matched, score, note)."""
    lib = builder.lib
    tokens = tokenize(requirement)
    in_plan = lib.primitive_index.rank(tokens, keys=builder.by_primitive)
    _p_name, p_score = in_plan[0] if in_plan else ("", 0.0)
    compounds = rank_compounds(lib, tokens)
    c_name, c_score = compounds[0] if compounds else ("", 0.0)

    def mark(keys: list[int]) -> list[int]:
        for k in keys:
            builder.nodes[k].reqs.add(index)
        return keys

    def single(name: str, score: float, note: str) -> tuple[list[int], str, str, float, str]:
        """The requirement is covered by one library task, added as a unit of its own."""
        key = builder.primitive(name, builder.new_unit("primitive", True), f"library:{name}")
        return mark([key]), "library_primitive", name, score, note

    compound_wins = c_score >= REQ_COMPOUND_THRESHOLD and (
        c_score >= p_score + 0.15 or p_score < REQ_TASK_THRESHOLD
    )
    if (
        compound_wins
        and builder.compound_units
        and c_name not in builder.compound_units
        and _MEASURABLE_TARGET.search(requirement)
    ):
        # "p95 latency under 150 ms", "99.9% uptime": a quality target of what the plan
        # builds, verified by its own tasks -- not a second project (a performance
        # investigation) added beside it.
        compound_wins = False
    if compound_wins and c_name in builder.compound_units:
        # A requirement naming one specific piece of the planned domain that the
        # chosen method left out ("query depth and cost limits" in a public-API
        # hardening) gets that piece, not a pointer to the whole compound.
        own = [
            (n, sc)
            for n, sc in lib.primitive_index.rank(tokens, minimum=REQ_STANDALONE_THRESHOLD)
            if n not in builder.by_primitive and c_name in lib.owners.get(n, ())
        ]
        # ("Upgrade PostgreSQL 12 to 15" names the whole migration better than any of
        # its tasks: the compound it is.)
        if own and own[0][1] > p_score + 0.1 and own[0][1] >= c_score:
            name, score = own[0]
            return single(
                name,
                score,
                f"Matches library task '{name}' of compound '{c_name}' (score {score:.2f}); "
                "it was added to the plan.",
            )
        unit = builder.units[builder.compound_units[c_name]]
        return (
            mark(list(unit.nodes)),
            "library_compound",
            c_name,
            c_score,
            f"Matches compound task '{c_name}' already in the plan; all of its tasks serve it.",
        )
    if (
        compound_wins
        and builder.compound_units
        and c_name not in builder.compound_units
        and c_score < REQ_OTHER_DOMAIN_THRESHOLD
        and not lib.compounds[c_name].evidence_found(builder.head)
    ):
        # A requirement naming another domain's tools ("Snowflake access on day one",
        # "replay history after an outage") is part of the brief's own work, not a
        # second project: another domain joins the plan when the name or description
        # speaks of it too, or when the requirement is that domain's work outright
        # ("Set up CI/CD", "Monitoring and alerting") -- the rule of
        # recognition.REQUIREMENTS_ONLY_FACTOR.
        compound_wins = False
    if (
        compound_wins
        and c_name not in builder.compound_units
        and len(builder.compound_units) < MAX_COMPOUNDS
    ):
        keys = builder.add_compound(c_name, f"requirements[{index}]", c_score)
        return (
            mark(keys),
            "library_compound",
            c_name,
            c_score,
            f"Matches compound task '{c_name}' (score {c_score:.2f}); it was added to the plan.",
        )
    # Safeguards the context rules are about to add ("rollback within 5 minutes" ->
    # the rollback plan). Added now, the rule reuses the task and wires it in place.
    present_tags = {tag for node in builder.nodes.values() for tag in node.tags}
    prospective = [
        name
        for rule in lib.rules
        if all(condition_holds(builder.ctx, k, v) for k, v in rule.when)
        and present_tags & set(rule.targets)
        and not any(n in builder.by_primitive for n in rule.skip_if_present)
        for name in (*rule.before, *rule.after)
        if name not in builder.by_primitive
    ]
    r_ranked = lib.primitive_index.rank(
        tokens, keys=dict.fromkeys(prospective), minimum=REQ_TASK_THRESHOLD + 0.1
    )
    if r_ranked and r_ranked[0][1] > p_score + 0.1:
        name, score = r_ranked[0]
        return single(
            name,
            score,
            f"Matches safeguard task '{name}' of an applicable context rule (score {score:.2f}).",
        )
    if p_score >= REQ_TASK_THRESHOLD:
        cutoff = max(REQ_TASK_THRESHOLD, p_score * 0.85)
        names = [n for n, s in in_plan if s >= cutoff][:3]
        keys = [builder.by_primitive[n] for n in names]
        return (
            mark(keys),
            "library_task",
            names[0],
            p_score,
            f"Matches library task(s) {', '.join(names)} of the plan (score {p_score:.2f}).",
        )
    standalone = lib.primitive_index.rank(tokens, minimum=REQ_STANDALONE_THRESHOLD)
    # A task taken on its own comes from the plan's domains or from no domain at all:
    # "Tell customers what happened" in an incident is not an office move's staff memo.
    in_plan_compounds = set(builder.compound_units)
    standalone = [
        (n, s)
        for n, s in standalone
        if n not in builder.by_primitive
        and (not lib.owners.get(n) or lib.owners[n] & in_plan_compounds)
    ]
    if standalone:
        name, score = standalone[0]
        return single(
            name,
            score,
            f"Matches library task '{name}' (score {score:.2f}); it was added on its own.",
        )
    keys = builder.add_work_package(requirement, f"r{index}", f"requirements[{index}]", head=True)
    builder.warnings.append(
        PlanWarning(
            "GENERIC_DECOMPOSITION",
            f"requirements[{index}] ('{_short(requirement, 60)}') matched nothing in the method "
            "library; planned as one work package sized from its words.",
        )
    )
    caps = sorted({c for k in keys for c in builder.nodes[k].capabilities})
    inferred = f" with capabilities inferred from its words ({', '.join(caps)})" if caps else ""
    return (
        mark(keys),
        "generic",
        "",
        0.0,
        f"No library match; planned as one work package{inferred}.",
    )


def _carry_specifics(
    builder: _Builder,
    request: PlanRequest,
    library: MethodLibrary,
    constraints: ConstraintAnalysis,
) -> None:
    """Put the brief's specifics in the tasks they belong to: technologies in the tasks
    of their area, counts in the tasks they size, what a requirement names in the tasks
    covering it, and in the plan's scoping task (its first plan/design task) whatever
    no other task carries. Library placeholders already put some in titles; this says
    the rest."""
    techs = library.technologies
    slots = builder.slots
    plan_level = specifics_of(f"{request.name}. {request.description}", techs, slots)
    per_requirement = [specifics_of(r, techs, slots) for r in request.requirements]
    deadlines = {d.constraint for d in constraints.deadlines}
    for constraint in request.constraints:
        if constraint not in deadlines:  # what a deadline names is its target, not scope
            plan_level += specifics_of(constraint, techs, slots)
        else:  # ... except the release it ships with ("with the 5.0 release on ...")
            plan_level += release_mentions(constraint)
    plan_level += context_specifics(request.context)
    everything = list(dict.fromkeys([*plan_level, *(s for r in per_requirement for s in r)]))
    if not everything:
        return
    mentions = builder.slots.techs
    counts = builder.slots.count_values()
    phrases = {f"count:{c.noun}": c.phrase for c in builder.slots.counts}
    domain_unit = next(iter(builder.compound_units.values()), None)
    scope_key = None
    if domain_unit is not None:
        keys = builder.units[domain_unit].nodes
        early = [k for k in keys if _STAGE_INDEX[builder.nodes[k].stage] <= _STAGE_INDEX["design"]]
        scope_key = min(early or keys, key=lambda k: (_STAGE_INDEX[builder.nodes[k].stage], k))
    carried: set[str] = set()  # specifics another task carries (or already says)
    placed = _specifics_by_sentence(builder, request, library, deadlines)
    named_by = [_naming_tasks(builder, library, i, r) for i, r in enumerate(request.requirements)]
    carried.update(s.lower() for k, named in placed.items() if k != scope_key for s in named)
    additions: dict[int, list[str]] = {}
    for key, node in builder.nodes.items():
        if key == scope_key:
            continue
        found = [
            t.label + (f" (from {t.from_version})" if t.from_version else "")
            for t in mentions
            if node.capabilities & set(KIND_AREAS.get(t.technology.kind, ()))
        ]
        carried.update(s.lower() for s in found)
        carried.update(t.label.lower() for t in mentions if t.label.lower() in node.title.lower())
        prim = library.primitives.get(node.name)
        for rule in prim.scales if prim is not None else ():
            used = next((k for k in rule.keys if k in counts), None)
            if used is not None:
                found.append(phrases[used])
        for index in sorted(node.reqs):
            if key in named_by[index]:
                found.extend(per_requirement[index])
        found.extend(placed.get(key, ()))
        carried.update(s.lower() for s in found)
        # A work package's title and description quote its requirement; what the
        # requirement names is still said on its own, as for any other task.
        said = "" if node.source == "generic:work_package" else f"{node.title} {node.description}"
        additions[key] = _shown(found, said)
    if scope_key is not None:
        # The scoping task lists the technologies no task of their area carries, with
        # the brief's other specifics: naming every tool there would make the first
        # task of the plan about the dashboards tool as much as about the scope.
        left = [s for s in everything if s.lower() not in carried]
        scope = builder.nodes[scope_key]
        additions[scope_key] = _shown(left, f"{scope.title} {scope.description}")
    for key, shown in additions.items():
        if shown:
            node = builder.nodes[key]
            label = "Brief specifics" if key == scope_key else "In this brief"
            node.description = f"{node.description.rstrip()} {label}: {'; '.join(shown)}."


# A rate the brief asks the result to sustain: "3,000 events per second", "50 requests
# per second at the peak", "200 orders a minute".
_RATE_TARGET = re.compile(
    r"\d[\d,.]*\s*k?\s*(?:requests?|events?|messages?|orders?|transactions?|calls?|queries|"
    r"jobs?|users?|rps|qps|tps)\s*(?:per|/|an?|each)\s*(?:second|sec|s|minute|min|hour)\b",
    re.IGNORECASE,
)
_PERF_WORDS = frozenset(
    tokenize("load test performance benchmark latency throughput capacity stress")
)


def _verify_stated_targets(
    builder: _Builder,
    request: PlanRequest,
    coverage: list[tuple[int, str, list[int], str, str, float, str]],
) -> None:
    """Requirements that state a speed or a rate to reach ("3,000 events per second at
    peak", "p95 under 150 ms") are verified by a test under load: when no task of the
    plan is about performance, one is added after the domain's build work (and before
    its release), carrying the targets in the brief's words."""
    targets = [
        (index, text)
        for index, text in enumerate(request.requirements)
        if _RATE_TARGET.search(text) or _MEASURABLE_TARGET.search(text)
    ]
    if not targets or not builder.compound_units:
        return
    if any(set(tokenize(n.title)) & _PERF_WORDS for n in builder.nodes.values()):
        return
    domain = builder.units[next(iter(builder.compound_units.values()))]
    built = builder._maxima(domain, _BUILD, exact=False)
    caps = {c for k in built for c in builder.nodes[k].capabilities}
    stated = "; ".join(" ".join(text.split()).rstrip(".") for _, text in targets)
    key = builder.add_node(
        dict(
            name="generic:stated_targets",
            title="Load test against the stated targets",
            description=(
                "Drive production-like load (volumes, mix and peaks) through the finished "
                "work, measure throughput and latency percentiles against each target, and "
                f"find where it breaks. Targets in this brief: {stated}."
            ),
            stage="verify",
            capabilities=caps,
            estimate=ThreePoint(4.0, 8.0, 16.0),
            priority="HIGH",
            acceptance=tuple(f"Measured under load: {text}" for _, text in targets),
            risks=(),
            tags=(),
            source="generic:stated_targets",
        ),
        builder.new_unit("generic", True),
    )
    for k in built:
        builder.add_edge(k, key)
    for index, _ in targets:
        builder.nodes[key].reqs.add(index)
        entry = next(c for c in coverage if c[0] == index)
        entry[2].append(key)


# "Replace our Nagios checks with Prometheus", "replaces the static rules engine".
_STOP = r"(?:with|by|and|so|to|for|of|in|on|at|across|that|which)\b"
_REPLACED = re.compile(
    r"\breplac(?:e|es|ing)\s+(?:(?:our|the|its|their)\s+)?"
    rf"((?!{_STOP})[a-z][\w-]*(?:\s+(?!{_STOP})[a-z][\w-]*){{0,3}})"
    rf"(?=\s+{_STOP}|\s*[.,;:]|\s*$)",
    re.IGNORECASE,
)
_RETIRING = frozenset(tokenize("decommission retire sunset archive"))


def _retiring(title: str) -> bool:
    """Whether a task's title says it retires something (decommission, archive the old
    tool, switch off, shut down)."""
    lowered = title.lower()
    return bool(set(tokenize(title)) & _RETIRING) or any(
        phrase in lowered for phrase in ("switch off", "switched off", "shut down", "turn off")
    )


def _retire_what_is_replaced(builder: _Builder, request: PlanRequest) -> None:
    """A brief that replaces something ("Replace our Nagios checks with Prometheus",
    "... replaces the static rules engine") ends with retiring the old thing once the
    new one is live -- unless the plan already does (a decommission, an archive of the
    old tool)."""
    # Only "replace" says what goes away: "from X" is as often where data comes from
    # ("a warehouse fed from Postgres") as what is left behind.
    olds = [
        " ".join(m.group(1).split())
        for text in (request.name, request.description, *request.requirements)
        for m in _REPLACED.finditer(text)
    ]
    olds = list(dict.fromkeys(o for o in olds if tokenize(o)))
    if not olds or not builder.compound_units:
        return
    if any(_retiring(node.title) for node in builder.nodes.values()):
        return
    domain = builder.units[next(iter(builder.compound_units.values()))]
    last = builder._maxima(domain, _RELEASE, exact=False)
    named = " and ".join(olds[:2])
    key = builder.add_node(
        dict(
            name="generic:retire_replaced",
            title=f"Retire the replaced {named} after the switch",
            description=(
                f"After the agreed period of running on the new system, switch off {named}: "
                "keep what must be archived, remove its access, integrations and alerts, "
                "and end its licences or hosting."
            ),
            stage="operate",
            capabilities=set(),
            estimate=ThreePoint(2.0, 4.0, 8.0),
            priority="MEDIUM",
            acceptance=(f"{named[:1].upper() + named[1:]} is switched off; nothing still uses it",),
            risks=(),
            tags=(),  # its title gives it the ordering tag `retire` where the order holds
            source="generic:retire_replaced",
        ),
        builder.new_unit("generic", False),
    )
    for k in last:
        builder.add_edge(k, key)


def _say_unsaid_parts(
    builder: _Builder,
    library: MethodLibrary,
    coverage: Sequence[tuple[int, str, list[int], str, str, float, str]],
    request_description: str = "",
) -> None:
    """A requirement covered by library tasks may ask for more than they say ("API keys
    per partner with usage limits" covered by the authentication task): the parts no
    covering task speaks of are written into the task that names the requirement, so
    the plan says what it will deliver rather than leaving it to the task's title."""
    _say_unsaid_clauses(builder, library, request_description)
    for index, requirement, keys, match, _matched, _score, _note in coverage:
        if match == "generic" or not keys:
            continue
        naming = sorted(_naming_tasks(builder, library, index, requirement))
        if not naming:
            continue
        said: set[str] = set()
        for k in keys:
            node = builder.nodes[k]
            said.update(tokenize(f"{node.title} {node.description}"))
        unsaid = [p for p in parts(requirement) if not set(tokenize(p)) <= said]
        if unsaid:
            node = builder.nodes[naming[0]]
            node.description = (
                f"{node.description.rstrip()} Also asked (requirements[{index}]): "
                f"{'; '.join(unsaid)}."
            )


def _say_unsaid_clauses(builder: _Builder, library: MethodLibrary, description: str) -> None:
    """A clause of the description that no library task of the plan speaks of ("...
    enriches them with merchant data") is work the brief asks for too: it is written
    into the library task it resembles most, so the plan says it will be done."""
    library_tasks = {
        n.name: k for k, n in builder.nodes.items() if not n.source.startswith("generic:")
    }
    if not library_tasks:
        return
    said: set[str] = set()
    for k in library_tasks.values():
        said.update(tokenize(f"{builder.nodes[k].title} {builder.nodes[k].description}"))
    domain = builder.units[next(iter(builder.compound_units.values()))]
    core = next((k for k in domain.nodes if builder.nodes[k].stage == "build"), None)
    # The first clause says what the project is: the whole plan speaks of it.
    for clause in _clauses(description)[1:]:
        words = set(tokenize(clause)) - {t for t in tokenize(clause) if t.isdigit()}
        unsaid = words - said
        if len(words) < 2 or len(unsaid) * 2 <= len(words):
            continue
        ranked = library.primitive_index.rank(
            tokenize(clause), keys=library_tasks, minimum=CLAUSE_TASK_THRESHOLD
        )
        if ranked and (len(ranked) == 1 or ranked[0][1] > ranked[1][1]):
            node = builder.nodes[library_tasks[ranked[0][0]]]
        elif core is not None:
            # No one task it resembles: what the brief says the work does belongs to
            # the domain's first build task ("... enriches them with merchant data").
            node = builder.nodes[core]
        else:
            continue
        if node.stage == "plan":
            continue  # the scoping task is about the whole brief already
        node.description = f"{node.description.rstrip()} Also in the brief: {clause.strip()}."


def _naming_tasks(builder: _Builder, library: MethodLibrary, index: int, text: str) -> set[int]:
    """The tasks that say what requirement `index` names: all the tasks covering it, or,
    when it is covered by a whole compound (every task of it), the one its words
    resemble most -- "Configuration reference for all 90 settings" is about the
    reference guide, not the screenshots."""
    covering = {k for k, n in builder.nodes.items() if index in n.reqs}
    if len(covering) <= 3:
        return covering
    names = {builder.nodes[k].name: k for k in covering}
    ranked = library.primitive_index.rank(tokenize(text), keys=names)
    return {names[ranked[0][0]]} if ranked else covering


def _specifics_by_sentence(
    builder: _Builder, request: PlanRequest, library: MethodLibrary, deadlines: set[str]
) -> dict[int, list[str]]:
    """The specifics of each sentence of the description, each constraint and each
    context entry, for the library task of the plan that sentence resembles most
    ("Distributed through our MDM" -> the distribution task; ``{"ats": "Greenhouse"}``
    stays with the scoping task unless a task speaks of it). A sentence resembling no
    task (below `SENTENCE_TASK_THRESHOLD`) gives nothing here."""
    library_keys = {
        n.name: k for k, n in builder.nodes.items() if not n.source.startswith("generic:")
    }
    techs, slots = library.technologies, builder.slots
    sources: list[tuple[str, list[str]]] = [
        (sentence, specifics_of(sentence, techs, slots))
        for sentence in re.split(r"(?<=[.;:!?])\s+", request.description)
    ]
    sources += [
        (c, specifics_of(c, techs, slots) if c not in deadlines else release_mentions(c))
        for c in request.constraints
    ]
    sources += [
        (key.replace("_", " "), context_specifics({key: value}))
        for key, value in request.context.items()
    ]
    placed: dict[int, list[str]] = {}
    for sentence, named in sources:
        if not named:
            continue
        ranked = library.primitive_index.rank(
            tokenize(sentence), keys=library_keys, minimum=SENTENCE_TASK_THRESHOLD
        )
        if ranked:
            placed.setdefault(library_keys[ranked[0][0]], []).extend(named)
    return placed


def _shown(found: list[str], said: str) -> list[str]:
    """`found` without repeats, without what the task already says (`said`: its title
    and description), and without a specific contained in a longer one."""
    distinct = list(dict.fromkeys(found))
    return [
        s
        for s in distinct
        if s.lower() not in said.lower()
        and not any(s != o and s.lower() in o.lower() for o in distinct)
    ]
