"""The replanner's decision: which rung of the matching rule's ladder a failure leads to.

Pure: `decide` takes the failed task, its failure and what the plan's history and agents
allow, and returns the decision with its confidence and reason; the caller applies it
(`replanning.py`). The default table, the rungs and the confidences are documented in
docs/replanning.md; keep them in step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from plansmith_server import planning
from plansmith_server.domain.failures import FailureCategory, TaskFailure
from plansmith_server.domain.models import Agent, Task
from plansmith_server.domain.policy import (
    MAX_BACKOFF_S,
    RecoveryRule,
    ReplanDecision,
    ReplanPolicy,
)

D = ReplanDecision
C = FailureCategory

DEFAULT_RULES: tuple[RecoveryRule, ...] = (
    RecoveryRule(C.TRANSIENT, ladder=(D.RETRY, D.REASSIGN, D.ESCALATE), retry_budget=3),
    RecoveryRule(
        C.RESOURCE_EXHAUSTION,
        ladder=(D.RETRY, D.REASSIGN, D.ESCALATE),
        retry_budget=2,
        retry_backoff_s=300.0,
    ),
    RecoveryRule(
        C.DATA_QUALITY, ladder=(D.INSERT_RECOVERY_TASKS, D.RETRY, D.ESCALATE), retry_budget=1
    ),
    RecoveryRule(C.SCHEMA_MISMATCH, ladder=(D.INSERT_RECOVERY_TASKS, D.REDECOMPOSE, D.ESCALATE)),
    RecoveryRule(
        C.DEPENDENCY_MISSING,
        ladder=(D.INSERT_RECOVERY_TASKS, D.RETRY, D.ESCALATE),
        retry_budget=1,
        retry_backoff_s=60.0,
    ),
    RecoveryRule(C.PERMISSION, ladder=(D.REASSIGN, D.ESCALATE)),
    RecoveryRule(C.CAPABILITY, ladder=(D.REASSIGN, D.REDECOMPOSE, D.ESCALATE)),
    RecoveryRule(
        C.UNKNOWN,
        ladder=(D.RETRY, D.REASSIGN, D.REDECOMPOSE, D.ESCALATE),
        retry_budget=1,
        retry_backoff_s=60.0,
    ),
)
"""The defaults, tried after a plan's own rules; every category has one."""

CONFIDENCE: Mapping[ReplanDecision, float] = {
    D.RETRY: 0.95,
    D.REASSIGN: 0.65,
    D.INSERT_RECOVERY_TASKS: 0.8,
    D.REDECOMPOSE: 0.3,
    D.ESCALATE: 0.0,
}
"""How likely the task completes after a decision of each rung: the share of such decisions
after which the task completed in the seeded scenario test
(tests/api/test_replanning_scenario.py; docs/replanning.md has the figures), rounded down
to 0.05. ESCALATE hands the task to people: nothing automatic completes it, so it is never
held back as a proposal (it is what happens when nothing else is left)."""


@dataclass(frozen=True)
class RecoveryTemplate:
    """A recovery task the replanner inserts before the failed task's retry."""

    key: str
    title: str
    description: str
    share: float
    """Its estimate as a share of the failed task's (at least half an hour)."""


RECOVERY_METHODS: Mapping[FailureCategory, tuple[RecoveryTemplate, ...]] = {
    C.DATA_QUALITY: (
        RecoveryTemplate(
            "validate_data",
            "Validate the input data of {title!r}",
            "Profile the input and list the records that break the checks that failed: "
            "nulls, duplicates, values out of range. {message}",
            0.25,
        ),
        RecoveryTemplate(
            "cleanse_data",
            "Cleanse the input data of {title!r}",
            "Fix or quarantine the records the validation found, so the retry reads clean input.",
            0.25,
        ),
    ),
    C.SCHEMA_MISMATCH: (
        RecoveryTemplate(
            "adapt_schema",
            "Adapt {title!r} to the changed schema",
            "Map the columns and types the task expects onto the schema it met (rename, "
            "cast, add defaults) and update its contract. {message}",
            0.4,
        ),
    ),
    C.DEPENDENCY_MISSING: (
        RecoveryTemplate(
            "provide_dependency",
            "Provide what {title!r} is missing",
            "Create or restore the input, package or upstream output the task could not "
            "find. {message}",
            0.3,
        ),
    ),
}
"""The recovery methods by category (docs/replanning.md); a category without any skips
the INSERT_RECOVERY_TASKS rung."""


@dataclass(frozen=True)
class History:
    """What was decided before about this task, from its replan records."""

    retries: int = 0
    """RETRY decisions applied for this task in this category."""
    used: frozenset[ReplanDecision] = frozenset()
    """Other rungs already applied for this task in this category (each is climbed once)."""
    failed_agents: frozenset[str] = frozenset()
    """Agents this task failed with, in any category (a reassignment avoids them)."""
    attempts: int = 0
    """Decisions applied for this task in this category (failed attempts before this one)."""


@dataclass(frozen=True)
class Options:
    """What the plan allows right now."""

    candidates: tuple[str, ...] = ()
    """Agents other than the current one that can take the task (capabilities, availability)."""
    decomposable: bool = True
    """The task has no subtasks yet (a summary's work is its subtasks'), and its
    decomposition gives subtasks the plan's agents can do."""
    not_decomposable: str = "already decomposed"
    """Why not, for the reason."""


@dataclass(frozen=True)
class Decision:
    """What the replanner decided, before it is applied."""

    decision: ReplanDecision
    confidence: float
    reason: str
    rule: RecoveryRule | None
    """None for a decision read back from its record (`ApplyReplan`)."""
    not_before_s: float = 0.0
    """For RETRY: seconds from now before the task may start again."""
    recovery: tuple[RecoveryTemplate, ...] = ()
    candidates: tuple[str, ...] = field(default=())

    def proposed(self, policy: ReplanPolicy | None) -> bool:
        """Whether it waits for `ApplyReplan` rather than being applied."""
        if self.decision == D.ESCALATE:
            return False
        threshold = policy.threshold if policy else ReplanPolicy().threshold
        return self.confidence < threshold


def method_of(task: Task) -> str:
    return task.metadata.get("plansmith.source", "")


def matching_rule(
    policy: ReplanPolicy | None, task: Task, category: FailureCategory
) -> tuple[RecoveryRule, str]:
    """The first rule that matches, and where it comes from (for the reason)."""
    own = policy.rules if policy else ()
    for i, rule in enumerate(own):
        if rule.matches(category, task.metadata, method_of(task)):
            return rule, f"plan rule {i} ({rule.describe()})"
    for rule in DEFAULT_RULES:
        if rule.matches(category, task.metadata, method_of(task)):
            return rule, f"default rule for {rule.describe()}"
    raise AssertionError(f"no default rule for {category!r}")  # every category has one


def backoff_s(rule: RecoveryRule, retries: int, retry_after_s: float) -> float:
    """Seconds before the next attempt: the rule's backoff doubled per earlier retry, at
    most a day, and never less than the executor's `retry_after`."""
    own = min(rule.retry_backoff_s * (2.0**retries), MAX_BACKOFF_S)
    return max(own, retry_after_s)


def decide(
    policy: ReplanPolicy | None,
    task: Task,
    failure: TaskFailure,
    history: History,
    options: Options,
) -> Decision:
    """Climbs the matching rule's ladder to the first rung that still applies."""
    category = failure.category or C.UNKNOWN
    rule, source = matching_rule(policy, task, category)
    skipped: list[str] = []
    for rung in rule.ladder:
        if rung == D.RETRY:
            if history.retries < rule.retry_budget:
                wait = backoff_s(rule, history.retries, failure.retry_after_s)
                return Decision(
                    rung,
                    CONFIDENCE[rung],
                    f"{source}: retry {history.retries + 1} of {rule.retry_budget}, "
                    f"not before {wait:g} s from now",
                    rule,
                    not_before_s=wait,
                )
            skipped.append(f"retry budget of {rule.retry_budget} used")
        elif rung == D.REASSIGN:
            if D.REASSIGN in history.used:
                skipped.append("already reassigned")
            elif not options.candidates:
                skipped.append("no other available agent holds its capabilities")
            else:
                return Decision(
                    rung,
                    CONFIDENCE[rung],
                    f"{source}: reassign to one of {', '.join(options.candidates)}",
                    rule,
                    candidates=options.candidates,
                )
        elif rung == D.INSERT_RECOVERY_TASKS:
            methods = RECOVERY_METHODS.get(category, ())
            if D.INSERT_RECOVERY_TASKS in history.used:
                skipped.append("recovery tasks already inserted")
            elif not methods:
                skipped.append(f"no recovery method for {category.name}")
            else:
                return Decision(
                    rung,
                    CONFIDENCE[rung],
                    f"{source}: insert {', '.join(m.key for m in methods)} before a retry",
                    rule,
                    recovery=methods,
                )
        elif rung == D.REDECOMPOSE:
            if D.REDECOMPOSE in history.used:
                skipped.append("already decomposed")
            elif not options.decomposable:
                skipped.append(f"not decomposed: {options.not_decomposable}")
            else:
                return Decision(rung, CONFIDENCE[rung], f"{source}: decompose the task again", rule)
        elif rung == D.ESCALATE:
            break
    why = "; ".join(skipped) or "the ladder ends here"
    return Decision(
        D.ESCALATE,
        CONFIDENCE[D.ESCALATE],
        f"{source}: {category.name} failure of {task.id!r} needs people ({why}): "
        f"{failure.message[:200]}",
        rule,
    )


def reassign_candidates(
    task: Task,
    agents: Sequence[Agent],
    *,
    unavailable: set[str],
    avoid: set[str],
) -> tuple[str, ...]:
    """The plan's agents that could take `task`: they hold its capabilities, are
    available, and are not in `avoid` (its current agent, agents it failed with)."""
    return tuple(
        a.id
        for a in agents
        if a.id not in avoid
        and a.id not in unavailable
        and planning.agent_can_do(a.capabilities, task.required_capabilities)
    )


def recovery_drafts(
    failed: Task, templates: Sequence[RecoveryTemplate], failure: TaskFailure
) -> list[Task]:
    """The recovery tasks, in order, as drafts with local ids `r0`, `r1`...: the first
    waits for what the failed task waited for, each for the one before; the caller makes
    the failed task wait for the last. Same capabilities and agent as the failed task
    (whoever could do it can prepare it)."""
    out: list[Task] = []
    base = failed.estimated_hours or 1.0
    message = failure.message[:500]
    for i, t in enumerate(templates):
        out.append(
            Task(
                id=f"r{i}",
                plan_id=failed.plan_id,
                title=t.title.format(title=failed.title[:200])[:500],
                description=t.description.format(message=message).strip(),
                priority=failed.priority,
                estimated_hours=round(max(0.5, base * t.share), 2),
                dependencies=failed.dependencies if i == 0 else (f"r{i - 1}",),
                assigned_to=failed.assigned_to,
                required_capabilities=failed.required_capabilities,
                parent_task_id=failed.parent_task_id,
                metadata={"plansmith.source": f"recovery:{t.key}"},
            )
        )
    return out
