"""A plan's recovery policy: the first-match table of rules and their escalation ladders.

Plain data (a plan stores its own rules, `Plan.replan_policy`); what the rungs do and the
default table live in `recovery.py` and docs/replanning.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from plansmith_server.domain.failures import FailureCategory


class ReplanDecision(IntEnum):
    """A rung of the ladder; mirrors `plansmith.v1.ReplanDecision`."""

    UNSPECIFIED = 0
    RETRY = 1
    REASSIGN = 2
    INSERT_RECOVERY_TASKS = 3
    REDECOMPOSE = 4
    ESCALATE = 5


DEFAULT_THRESHOLD = 0.6
"""Decisions less confident than this are proposed, not applied."""
DEFAULT_BACKOFF_S = 30.0
MAX_BACKOFF_S = 86_400.0
MAX_RETRY_BUDGET = 20
MAX_RULES = 32
MAX_LABELS = 16


@dataclass(frozen=True)
class RecoveryRule:
    """One row of the table: which failures it matches, and the ladder it climbs."""

    category: FailureCategory = FailureCategory.UNSPECIFIED
    """UNSPECIFIED matches every category."""
    method: str = ""
    """Prefix of the task's method (`plansmith.source` metadata); empty matches all."""
    labels: tuple[str, ...] = ()
    """`key=value` pairs the task's metadata must all hold."""
    ladder: tuple[ReplanDecision, ...] = ()
    retry_budget: int = 0
    retry_backoff_s: float = DEFAULT_BACKOFF_S

    def matches(self, category: FailureCategory, metadata: Mapping[str, str], method: str) -> bool:
        if self.category and self.category != category:
            return False
        if self.method and not method.startswith(self.method):
            return False
        for label in self.labels:
            key, _, value = label.partition("=")
            if metadata.get(key) != value:
                return False
        return True

    def describe(self) -> str:
        what = self.category.name if self.category else "any category"
        if self.method:
            what += f", method {self.method}*"
        if self.labels:
            what += ", labels " + ",".join(self.labels)
        return what

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": int(self.category),
            "method": self.method,
            "labels": list(self.labels),
            "ladder": [int(d) for d in self.ladder],
            "retry_budget": self.retry_budget,
            "retry_backoff_s": self.retry_backoff_s,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RecoveryRule:
        return cls(
            FailureCategory(d["category"]),
            d["method"],
            tuple(d["labels"]),
            tuple(ReplanDecision(x) for x in d["ladder"]),
            d["retry_budget"],
            d["retry_backoff_s"],
        )


@dataclass(frozen=True)
class ReplanPolicy:
    """A plan's own rules (tried before the defaults) and its confidence threshold."""

    confidence_threshold: float = 0.0
    """0 means `DEFAULT_THRESHOLD`."""
    rules: tuple[RecoveryRule, ...] = ()

    @property
    def threshold(self) -> float:
        return self.confidence_threshold or DEFAULT_THRESHOLD

    def to_dict(self) -> dict[str, Any]:
        return {
            "confidence_threshold": self.confidence_threshold,
            "rules": [r.to_dict() for r in self.rules],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> ReplanPolicy | None:
        if d is None:
            return None
        return cls(d["confidence_threshold"], tuple(RecoveryRule.from_dict(r) for r in d["rules"]))


def check_policy(add: Any, prefix: str, policy: ReplanPolicy) -> None:
    """Field violations of a policy, reported through `add(field, description)`."""
    t = policy.confidence_threshold
    if not 0 <= t <= 1:
        add(f"{prefix}.confidence_threshold", "must be between 0 and 1")
    if len(policy.rules) > MAX_RULES:
        add(f"{prefix}.rules", f"has {len(policy.rules)} rules; at most {MAX_RULES}")
    for i, r in enumerate(policy.rules[:MAX_RULES]):
        p = f"{prefix}.rules[{i}]"
        if r.category not in FailureCategory.__members__.values():
            add(f"{p}.category", f"unknown value {int(r.category)}")
        if len(r.method) > 200:
            add(f"{p}.method", "longer than 200 characters")
        if len(r.labels) > MAX_LABELS:
            add(f"{p}.labels", f"at most {MAX_LABELS} entries")
        for j, label in enumerate(r.labels[:MAX_LABELS]):
            if "=" not in label or not label.partition("=")[0] or len(label) > 1100:
                add(f"{p}.labels[{j}]", "must be key=value with a key")
        _check_ladder(add, p, r.ladder)
        if not 0 <= r.retry_budget <= MAX_RETRY_BUDGET:
            add(f"{p}.retry_budget", f"must be between 0 and {MAX_RETRY_BUDGET}")
        if not 0 <= r.retry_backoff_s <= MAX_BACKOFF_S:
            add(f"{p}.retry_backoff", "must be between 0 and 1 day")


def _check_ladder(add: Any, p: str, ladder: Sequence[ReplanDecision]) -> None:
    if not 1 <= len(ladder) <= 5:
        add(f"{p}.ladder", "must list 1 to 5 decisions")
    known = set(ReplanDecision.__members__.values()) - {ReplanDecision.UNSPECIFIED}
    for k, d in enumerate(ladder):
        if d not in known:
            add(f"{p}.ladder[{k}]", f"unknown value {int(d)}")
    if len(set(ladder)) != len(ladder):
        add(f"{p}.ladder", "lists a decision twice")
