"""DecomposeTask: split one task into ordered subtasks at a chosen level of detail.

A task that is one step of a domain (a *leaf*: its title names a library task, or no
compound matches it better than that task) is split into its own work -- the library
task's ``steps``, or preparing, doing and checking it -- never into its whole domain.
A task that matches a compound task of the method library better is split by that
compound's method (its primitives, with their own capabilities); anything else gets a
generic design/build/verify breakdown (with the parent's capabilities). The result is
then fitted to the level -- SUMMARY 2-3, STANDARD 4-6, DETAILED 7-12 subtasks -- by
merging neighbours in topological order or splitting the largest steps. When the parent
has an estimate, it is distributed over the subtasks in proportion to their own
estimates, in whole cents with the largest-remainder method, so the subtasks add up to
the parent exactly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .capabilities import (
    infer_capabilities,
    known_technologies,
    mandate_areas,
    normalize_capabilities,
)
from .context import build_effective_context, normalize_context
from .errors import REASON_INVALID_TASK, REASON_TASK_DESCRIPTION_TOO_VAGUE, PlanningInputError
from .estimation import library_estimate
from .htn import _Builder
from .library import MethodLibrary, PrimitiveTask, ThreePoint, load_library
from .plan import PRIORITY_ORDER, Priority
from .recognition import rank_compounds
from .request_validation import VAGUE_HINT, is_too_vague
from .slots import Slots, extract_slots, index_text
from .text import tokenize

__all__ = [
    "LEVEL_RANGES",
    "Decomposition",
    "DecompositionLevel",
    "Subtask",
    "TaskToDecompose",
    "decompose_task",
    "distribute_hours",
]

COMPOUND_MATCH_THRESHOLD = 0.45


class DecompositionLevel(StrEnum):
    """How finely to decompose."""

    SUMMARY = "SUMMARY"
    STANDARD = "STANDARD"
    DETAILED = "DETAILED"


LEVEL_RANGES: dict[DecompositionLevel, tuple[int, int]] = {
    DecompositionLevel.SUMMARY: (2, 3),
    DecompositionLevel.STANDARD: (4, 6),
    DecompositionLevel.DETAILED: (7, 12),
}


@dataclass(frozen=True)
class TaskToDecompose:
    """The task to split (a stored task, or just a free description).

    Attributes:
        title: Title (title or description must be non-empty).
        description: Description.
        estimated_hours: Parent estimate; subtasks add up to it exactly (0.01 h).
        required_capabilities: Parent capabilities (inherited by generic subtasks;
            technologies among them are added to library subtasks of their area).
        priority: Parent priority (used by generic subtasks); None = MEDIUM.
    """

    title: str = ""
    description: str = ""
    estimated_hours: float | None = None
    required_capabilities: tuple[str, ...] = ()
    priority: Priority | str | None = None

    def __post_init__(self) -> None:
        caps = self.required_capabilities
        object.__setattr__(
            self, "required_capabilities", (caps,) if isinstance(caps, str) else tuple(caps or ())
        )


@dataclass(frozen=True)
class Subtask:
    """One subtask.

    Attributes:
        id: Local id ``s1``, ``s2``... in topological order.
        title: Title (unique within the decomposition).
        description: What to do.
        estimated_hours: Estimate; all subtasks sum to the parent's estimate.
        optimistic_hours: Best case (<= estimated_hours).
        pessimistic_hours: Worst case (>= estimated_hours).
        dependencies: Local ids of subtasks that must finish first.
        required_capabilities: Canonical capability names, sorted.
        priority: LOW / MEDIUM / HIGH / CRITICAL.
        acceptance_criteria: Checkable statements of done.
        is_sink: No other subtask depends on it (dependents of the parent should be
            rewired onto the sinks).
    """

    id: str
    title: str
    description: str
    estimated_hours: float
    optimistic_hours: float
    pessimistic_hours: float
    dependencies: tuple[str, ...]
    required_capabilities: tuple[str, ...]
    priority: Priority
    acceptance_criteria: tuple[str, ...]
    is_sink: bool


@dataclass(frozen=True)
class Decomposition:
    """Result of DecomposeTask.

    Attributes:
        subtasks: In topological order.
        sink_ids: Subtasks nothing else depends on ("last" ones).
        source_ids: Subtasks with no dependencies (take over the parent's deps).
        total_hours: Sum of subtask estimates (= parent estimate when given).
        method: ``"library:<compound>/<method>"`` or ``"generic"``.
        explanation: Why this breakdown.
    """

    subtasks: tuple[Subtask, ...]
    sink_ids: tuple[str, ...]
    source_ids: tuple[str, ...]
    total_hours: float
    method: str
    explanation: str


@dataclass
class _Step:
    title: str
    description: str
    capabilities: set[str]
    estimate: ThreePoint
    priority: str
    acceptance: tuple[str, ...]
    preds: set[int]


# Generic templates: (title prefix, weight, acceptance, predecessor indexes).
_GENERIC: dict[DecompositionLevel, tuple[tuple[str, float, str, tuple[int, ...]], ...]] = {
    DecompositionLevel.SUMMARY: (
        ("Plan and design", 0.25, "The approach is written down and reviewed", ()),
        ("Implement", 0.5, "The change is implemented and reviewed", (0,)),
        ("Verify and hand over", 0.25, "The result is tested and accepted by the requester", (1,)),
    ),
    DecompositionLevel.STANDARD: (
        ("Analyse requirements", 0.1, "Requirements and acceptance criteria are agreed", ()),
        ("Design the solution", 0.15, "The design is reviewed by a peer", (0,)),
        ("Implement", 0.45, "The implementation is complete and merged", (1,)),
        ("Prepare tests", 0.15, "Tests covering the acceptance criteria exist", (1,)),
        (
            "Review, fix and hand over",
            0.15,
            "All tests pass and the requester accepts the result",
            (2, 3),
        ),
    ),
    DecompositionLevel.DETAILED: (
        (
            "Clarify requirements and acceptance criteria",
            0.06,
            "Acceptance criteria are written and agreed",
            (),
        ),
        ("Technical design", 0.1, "The design document covers interfaces, data and risks", (0,)),
        ("Design review", 0.04, "The design is approved by a reviewer", (1,)),
        (
            "Set up environment and scaffolding",
            0.06,
            "Environment, branches and scaffolding are ready",
            (2,),
        ),
        ("Implement core functionality", 0.3, "The main path works end to end", (3,)),
        (
            "Implement edge cases, errors and integration",
            0.16,
            "Error handling and integrations are complete",
            (4,),
        ),
        ("Write automated tests", 0.12, "Automated tests cover the acceptance criteria", (2,)),
        ("Code review and fixes", 0.08, "Review comments are resolved and tests pass", (5, 6)),
        (
            "Documentation and handover",
            0.08,
            "Documentation is updated and the work is handed over",
            (7,),
        ),
    ),
}


def distribute_hours(total: float, weights: list[float]) -> list[float]:
    """Split `total` hours in proportion to `weights`, exactly, in 0.01 h units.

    Uses the largest-remainder method on whole cents (ties to the earlier item), so
    the parts sum to ``round(total, 2)`` exactly and each part is >= 0.01 when
    ``total >= 0.01 * len(weights)``.
    """
    cents = round(total * 100)
    n = len(weights)
    if n == 0:
        return []
    wsum = sum(weights) or float(n)
    shares = [cents * (w if sum(weights) else 1.0) / wsum for w in weights]
    floors = [math.floor(s) for s in shares]
    if cents >= n:
        # Every part gets at least one cent.
        for i, f in enumerate(floors):
            if f < 1:
                floors[i] = 1
    remainder = cents - sum(floors)
    order = sorted(range(n), key=lambda i: (-(shares[i] - math.floor(shares[i])), i))
    i = 0
    while remainder > 0:
        floors[order[i % n]] += 1
        remainder -= 1
        i += 1
    while remainder < 0:  # minimum-one-cent bumps overshot: take back from the largest
        j = max(range(n), key=lambda k: (floors[k], -k))
        floors[j] -= 1
        remainder += 1
    return [f / 100 for f in floors]


def _validate(task: TaskToDecompose) -> None:
    violations: list[tuple[str, str]] = []
    if not (task.title.strip() or task.description.strip()):
        violations.append(("title", "title or description is required"))
    if task.estimated_hours is not None:
        e = task.estimated_hours
        if not isinstance(e, (int, float)) or isinstance(e, bool) or not math.isfinite(e) or e <= 0:
            violations.append(
                ("estimated_hours", f"must be a positive number of hours (got {e!r})")
            )
        elif e < 0.02:
            violations.append(("estimated_hours", "must be at least 0.02 h to split into subtasks"))
    if task.priority is not None:
        try:
            Priority(str(getattr(task.priority, "value", task.priority)).upper())
        except ValueError:
            violations.append(
                ("priority", f"must be one of LOW, MEDIUM, HIGH, CRITICAL (got {task.priority!r})")
            )
    for i, cap in enumerate(task.required_capabilities):
        if not str(cap).strip():
            violations.append((f"required_capabilities[{i}]", "must not be blank"))
    if violations:
        raise PlanningInputError(
            REASON_INVALID_TASK,
            "invalid task to decompose: " + "; ".join(f"{f}: {d}" for f, d in violations),
            violations,
            "Fix the listed fields and retry.",
        )
    if is_too_vague(task.title, task.description, ()):
        raise PlanningInputError(
            REASON_TASK_DESCRIPTION_TOO_VAGUE,
            "The task is too vague to decompose.",
            [("description", "too vague: say what is built or changed")],
            VAGUE_HINT,
        )


def _library_steps(builder: _Builder, compound: str) -> tuple[list[_Step], str]:
    unit = builder.new_unit("compound", True)
    builder.expand(compound, unit, "task", 0.0)
    builder.transitive_reduction()
    order = builder.topological_order()
    index = {k: i for i, k in enumerate(order)}
    steps = []
    for k in order:
        n = builder.nodes[k]
        steps.append(
            _Step(
                n.title,
                n.description,
                set(n.capabilities),
                n.estimate,
                n.priority,
                n.acceptance,
                {index[p] for p in n.preds},
            )
        )
    compound_name, method_name = builder.methods[-1][0], builder.methods[-1][1]
    return steps, f"library:{compound_name}/{method_name}"


LEAF_MARGIN = 0.05
"""A task is a leaf when its best library task scores at least the best compound's score
minus this margin (a task named like one step of a domain is that step)."""
LEAF_MIN_SCORE = 0.45
"""Minimum library-task score for a task to be treated as that library task."""


def _label(task: TaskToDecompose) -> str:
    label = task.title.strip() or " ".join(task.description.split()[:8])
    return label if len(label) <= 60 else label[:57].rsplit(" ", 1)[0] + "..."


def _leaf_primitive(
    lib: MethodLibrary, task: TaskToDecompose, tokens: tuple[str, ...], compound_score: float
) -> tuple[str, float] | None:
    """The library task this task is, when it is a leaf of some domain rather than a
    whole domain: its title names a library task, or no compound matches it better
    than its own library task does."""
    if task.title.strip():
        wanted = _plain(task.title)
        slots = extract_slots((task.title,), {}, lib.technologies)
        for name in sorted(lib.primitives):
            prim = lib.primitives[name]
            if (
                _plain(slots.render(prim.title)) == wanted
                or _plain(index_text(prim.title)) == wanted
            ):
                return name, 1.0
    title_tokens = tokenize(task.title) if task.title.strip() else tokens
    by_title = lib.primitive_index.rank(title_tokens, minimum=LEAF_MIN_SCORE)
    by_text = lib.primitive_index.rank(tokens, minimum=LEAF_MIN_SCORE)
    best = max(
        (by_title[0] if by_title else ("", 0.0), by_text[0] if by_text else ("", 0.0)),
        key=lambda item: item[1],
    )
    if not best[0]:
        return None
    title_is_compound = task.title.strip() and any(
        rank_compounds(lib, title_tokens, minimum=best[1] + LEAF_MARGIN)
    )
    if best[1] + LEAF_MARGIN >= compound_score and not title_is_compound:
        return best
    return None


def _plain(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9.]+", text.lower()))


def _leaf_steps(
    prim: PrimitiveTask,
    label: str,
    caps: set[str],
    estimate: ThreePoint,
    slots: Slots,
    level: DecompositionLevel,
) -> list[_Step]:
    """A leaf's own steps (its ``steps`` in the library), or prepare / do / check of its
    own words; in sequence, sharing its estimate by weight."""
    done = prim.acceptance[0] if prim.acceptance else f"'{label}' is done"
    if prim.steps:
        parts = [
            (slots.render(st.title), st.weight, f"'{slots.render(st.title)}' is done")
            for st in prim.steps
        ]
    elif level is DecompositionLevel.DETAILED:
        parts = [
            (f"Confirm scope and acceptance: {label}", 1.0, "Scope and acceptance are agreed"),
            (f"Gather inputs and access: {label}", 1.0, "Inputs and access are in place"),
            (f"Do the main work: {label}", 3.0, done),
            (f"Handle the remaining cases: {label}", 2.0, "Edge cases and leftovers are done"),
            (f"Review and fix: {label}", 1.0, "Review findings are fixed"),
            (f"Check against acceptance: {label}", 1.0, "Every acceptance criterion is checked"),
            (f"Hand over and document: {label}", 1.0, "The owner has taken it over"),
        ]
    else:
        parts = [
            (f"Confirm scope, inputs and access: {label}", 1.0, "Inputs and access are ready"),
            (label, 3.0, done),
            (f"Review and fix: {label}", 1.0, "Review findings are fixed"),
            (f"Check and hand over: {label}", 1.0, "The result is checked and accepted"),
        ]
    total = sum(w for _, w, _ in parts)
    steps = []
    for i, (title, weight, acceptance) in enumerate(parts):
        share = weight / total
        steps.append(
            _Step(
                title,
                f"Part of '{label}': {title}.",
                set(caps),
                estimate.scaled(share),
                prim.priority,
                (acceptance,),
                {i - 1} if i else set(),
            )
        )
    return steps


def _generic_steps(
    level: DecompositionLevel, label: str, caps: set[str], total: float, priority: str
) -> list[_Step]:
    steps = []
    for prefix, weight, acceptance, preds in _GENERIC[level]:
        m = total * weight
        steps.append(
            _Step(
                f"{prefix}: {label}",
                f"{prefix} for '{label}'.",
                set(caps),
                ThreePoint(m * 0.7, m, m * 1.6),
                priority,
                (acceptance,),
                set(preds),
            )
        )
    return steps


def _topo(steps: list[_Step]) -> list[int]:
    done: set[int] = set()
    order: list[int] = []
    while len(order) < len(steps):
        for i, s in enumerate(steps):
            if i not in done and s.preds <= done:
                done.add(i)
                order.append(i)
                break
    return order


def _merge(steps: list[_Step], target: int) -> list[_Step]:
    """Merge contiguous runs (in topological order) into `target` steps."""
    order = _topo(steps)
    n = len(order)
    sizes = [n // target + (1 if i < n % target else 0) for i in range(target)]
    group_of: dict[int, int] = {}
    groups: list[list[int]] = []
    pos = 0
    for g, size in enumerate(sizes):
        members = order[pos : pos + size]
        pos += size
        groups.append(members)
        for m in members:
            group_of[m] = g
    merged = []
    for g, members in enumerate(groups):
        parts = [steps[m] for m in members]
        if len(parts) == 1:
            title = parts[0].title
        elif len(parts) == 2 and len(parts[0].title) + len(parts[1].title) < 90:
            title = f"{parts[0].title}; {parts[1].title}"
        else:
            extra = len(parts) - 1
            title = f"{parts[0].title} (+{extra} related step{'s' if extra > 1 else ''})"
        acceptance = tuple(dict.fromkeys(a for p in parts for a in p.acceptance))[:6]
        merged.append(
            _Step(
                title=title,
                description="Covers: " + "; ".join(p.title for p in parts) + ".",
                capabilities=set().union(*(p.capabilities for p in parts)),
                estimate=ThreePoint(
                    sum(p.estimate.optimistic for p in parts),
                    sum(p.estimate.most_likely for p in parts),
                    sum(p.estimate.pessimistic for p in parts),
                ),
                priority=max(
                    (p.priority for p in parts), key=lambda x: PRIORITY_ORDER[Priority(x)]
                ),
                acceptance=acceptance,
                preds={group_of[p] for m in members for p in steps[m].preds if group_of[p] != g},
            )
        )
    return merged


def _split(steps: list[_Step], target: int) -> list[_Step]:
    """Split the largest steps into prepare -> execute pairs until there are `target`."""
    steps = list(steps)
    while len(steps) < target:
        i = max(range(len(steps)), key=lambda k: (steps[k].estimate.expected, -k))
        s = steps[i]
        titles = {step.title for step in steps}
        prepare = f"Prepare: {s.title}"
        if s.title.startswith("Prepare: ") or prepare in titles:
            prepare, second_title = f"{s.title} (part 1)", f"{s.title} (part 2)"
        else:
            second_title = s.title
        first = _Step(
            prepare,
            f"Preparation for: {s.description}",
            set(s.capabilities),
            s.estimate.scaled(0.3),
            s.priority,
            ("Inputs, access and approach are ready",),
            set(s.preds),
        )
        second = _Step(
            second_title,
            s.description,
            set(s.capabilities),
            s.estimate.scaled(0.7),
            s.priority,
            s.acceptance,
            set(),
        )
        # Insert both in place of `s`; renumber references.
        new_index = {k: (k if k < i else k + 1) for k in range(len(steps))}
        rebuilt = []
        for k, step in enumerate(steps):
            if k == i:
                first.preds = {new_index[p] for p in s.preds}
                second.preds = {i}
                rebuilt.extend([first, second])
            else:
                step.preds = {new_index[p] if p != i else i + 1 for p in step.preds}
                rebuilt.append(step)
        steps = rebuilt
    return steps


def decompose_task(
    task: TaskToDecompose,
    level: DecompositionLevel | str = DecompositionLevel.STANDARD,
    *,
    context: Mapping[str, Any] | None = None,
    library: MethodLibrary | None = None,
) -> Decomposition:
    """Decompose a task into ordered subtasks.

    Args:
        task: The task (or just a free description in ``description``).
        level: SUMMARY (2-3 subtasks), STANDARD (4-6) or DETAILED (7-12).
        context: Optional planning context (e.g. ``downtime_allowed``) that steers
            the library's method choice.
        library: Method library (default: packaged).

    Returns:
        The decomposition.

    Raises:
        PlanningInputError: ``INVALID_TASK`` or ``TASK_DESCRIPTION_TOO_VAGUE``.
    """
    level = DecompositionLevel(getattr(level, "value", level))
    _validate(task)
    lib = library if library is not None else load_library()
    text = f"{task.title}. {task.description}".strip(". ")
    tokens = tokenize(text)
    parent_caps = set(normalize_capabilities(task.required_capabilities))
    parent_priority = (
        Priority(str(getattr(task.priority, "value", task.priority)).upper())
        if task.priority
        else Priority.MEDIUM
    )
    low, high = LEVEL_RANGES[level]
    explicit, _ = normalize_context(context or {})
    ctx = build_effective_context(explicit, text)

    slots = extract_slots((task.title, task.description), context or {}, lib.technologies)
    ranked = rank_compounds(lib, tokens, minimum=COMPOUND_MATCH_THRESHOLD)
    leaf = _leaf_primitive(lib, task, tokens, ranked[0][1] if ranked else 0.0)
    if leaf is not None:
        name, score = leaf
        prim = lib.primitives[name]
        caps = set(prim.capabilities) | parent_caps
        label = _label(task)
        base = prim.estimate
        counts = slots.count_values()
        for rule in prim.scales if task.estimated_hours is None else ():
            count = next((counts[k] for k in rule.keys if k in counts), None)
            if count is None:
                value = next((ctx.get(k) for k in rule.keys if ctx.get(k) is not None), None)
                count = value if isinstance(value, (int, float)) else None
            base = base.scaled(rule.factor(count))
        steps = _leaf_steps(prim, label, caps, base, slots, level)
        method = f"library:{name}/steps" if prim.steps else f"leaf:{name}"
        why = f"A leaf: it is library task '{name}' (score {score:.2f}), not a whole domain; " + (
            "split into that task's own steps."
            if prim.steps
            else "split into preparing, doing and checking its own work."
        )
    elif ranked:
        builder = _Builder(lib, ctx, tokens, slots)
        steps, method = _library_steps(builder, ranked[0][0])
        # Technologies the parent requires land on the library subtasks of their area.
        techs = [c for c in sorted(parent_caps) if c in known_technologies()]
        for s in steps:
            for tech in techs:
                if s.capabilities & set(mandate_areas(tech)):
                    s.capabilities.add(tech)
        why = (
            f"Matched library compound task '{ranked[0][0]}' (score {ranked[0][1]:.2f}); "
            f"{builder.methods[-1][2]}"
        )
    else:
        label = _label(task)
        caps = parent_caps or set(infer_capabilities(tokens))
        lib_hit = library_estimate(text, lib)
        estimate = task.estimated_hours or (lib_hit[2] if lib_hit else 8.0)
        steps = _generic_steps(level, label, caps, estimate, parent_priority.value)
        method = "generic"
        why = "No library compound task matches; generic breakdown with the parent's capabilities."

    if len(steps) > high:
        steps = _merge(steps, high)
        why += f" Merged into {high} subtasks for level {level.value}."
    elif len(steps) < low:
        steps = _split(steps, low)
        why += f" Split into {low} subtasks for level {level.value}."

    if task.estimated_hours is not None:
        cents = round(task.estimated_hours * 100)
        if cents < len(steps):
            steps = _merge(steps, max(1, cents))
    order = _topo(steps)
    ordered = [steps[i] for i in order]
    pos = {old: new for new, old in enumerate(order)}
    weights = [s.estimate.expected for s in ordered]
    if task.estimated_hours is not None:
        hours = distribute_hours(task.estimated_hours, weights)
    else:
        hours = distribute_hours(sum(round(w, 2) for w in weights), weights)
    total = round(sum(hours), 2)

    subtasks: list[Subtask] = []
    has_successor = {pos[p] for s in ordered for p in s.preds}
    seen_titles: dict[str, int] = {}
    for i, (s, h) in enumerate(zip(ordered, hours, strict=True)):
        ratio = h / s.estimate.expected if s.estimate.expected > 0 else 1.0
        o = min(h, max(0.01, round(s.estimate.optimistic * ratio, 2)))
        p = max(h, round(s.estimate.pessimistic * ratio, 2))
        title = s.title
        if title in seen_titles:
            seen_titles[title] += 1
            title = f"{title} ({seen_titles[title]})"
        else:
            seen_titles[title] = 1
        subtasks.append(
            Subtask(
                id=f"s{i + 1}",
                title=title,
                description=s.description,
                estimated_hours=h,
                optimistic_hours=o,
                pessimistic_hours=p,
                dependencies=tuple(f"s{pos[d] + 1}" for d in sorted(s.preds, key=pos.__getitem__)),
                required_capabilities=tuple(sorted(s.capabilities)),
                priority=Priority(s.priority),
                acceptance_criteria=s.acceptance,
                is_sink=i not in has_successor,
            )
        )
    return Decomposition(
        subtasks=tuple(subtasks),
        sink_ids=tuple(s.id for s in subtasks if s.is_sink),
        source_ids=tuple(s.id for s in subtasks if not s.dependencies),
        total_hours=total,
        method=method,
        explanation=why,
    )
