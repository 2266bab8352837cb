"""Failures of tasks as executors report them, and how one without a category is classified.

The rules are documented in docs/replanning.md ("Classifying a failure"): the message is
matched against each category's patterns in the order of `RULES`, first match wins. The
order puts the specific before the general: "column not found" is a schema mismatch, not
a missing dependency; "rate limit exceeded, try again" is resource exhaustion, not a
transient error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any


class FailureCategory(IntEnum):
    """Mirrors `plansmith.v1.FailureCategory`."""

    UNSPECIFIED = 0
    TRANSIENT = 1
    RESOURCE_EXHAUSTION = 2
    DATA_QUALITY = 3
    SCHEMA_MISMATCH = 4
    DEPENDENCY_MISSING = 5
    PERMISSION = 6
    CAPABILITY = 7
    UNKNOWN = 8


@dataclass(frozen=True)
class TaskFailure:
    """A failed attempt at a task."""

    category: FailureCategory = FailureCategory.UNSPECIFIED
    message: str = ""
    retry_after_s: float = 0.0
    """Seconds the executor says to wait before trying again; 0 when it does not know."""
    evidence: Mapping[str, str] = field(default_factory=dict)
    facts_added: tuple[str, ...] = ()
    facts_removed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": int(self.category),
            "message": self.message,
            "retry_after_s": self.retry_after_s,
            "evidence": dict(self.evidence),
            "facts_added": list(self.facts_added),
            "facts_removed": list(self.facts_removed),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TaskFailure:
        return cls(
            FailureCategory(d["category"]),
            d["message"],
            d["retry_after_s"],
            dict(d["evidence"]),
            tuple(d["facts_added"]),
            tuple(d["facts_removed"]),
        )


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


RULES: tuple[tuple[FailureCategory, re.Pattern[str]], ...] = (
    (
        FailureCategory.PERMISSION,
        _rx(
            r"permission denied",
            r"access denied",
            r"forbidden",
            r"unauthori[sz]ed",
            r"not authori[sz]ed",
            r"\b40[13]\b",
            r"insufficient privileges?",
            r"credentials? (?:expired|invalid|rejected)",
        ),
    ),
    (
        FailureCategory.CAPABILITY,
        _rx(
            r"\bnot capable\b",
            r"\blacks? (?:the )?(?:skill|capabilit|tool)",
            r"\bcannot (?:do|handle|perform)\b",
            r"\bunsupported (?:task|operation)\b",
            r"\bno (?:agent|tool) (?:can|for)\b",
            r"\bdon'?t know how\b",
        ),
    ),
    (
        FailureCategory.SCHEMA_MISMATCH,
        _rx(
            r"\bschema\b",
            r"\b(?:unknown|missing|unexpected|no such) (?:column|field)\b",
            r"\bcolumn \S+ (?:not found|does not exist)\b",
            r"\btype mismatch\b",
            r"\bincompatible (?:type|types|version)\b",
            r"\bcannot (?:cast|convert)\b",
        ),
    ),
    (
        FailureCategory.RESOURCE_EXHAUSTION,
        _rx(
            r"out of memory",
            r"\boom\b",
            r"memory ?error",
            r"no space left",
            r"disk (?:is )?full",
            r"quota",
            r"rate.?limit",
            r"too many requests",
            r"\b429\b",
            r"resource(?:s)? exhausted",
            r"too many open files",
        ),
    ),
    (
        FailureCategory.DEPENDENCY_MISSING,
        _rx(
            r"no such (?:file|table|directory|bucket|module|package)",
            r"\bnot found\b",
            r"does not exist",
            r"\bmissing (?:dependency|input|file|table|package|module)\b",
            r"module ?not ?found",
            r"\b404\b",
            r"upstream (?:output )?(?:is )?missing",
        ),
    ),
    (
        FailureCategory.DATA_QUALITY,
        _rx(
            r"data quality",
            r"\bnull(?:s)? (?:value|in)\b",
            r"\bnot[- ]null\b",
            r"\bduplicate",
            r"invalid (?:value|record|row|data)",
            r"out of range",
            r"\bmalformed\b",
            r"\bcorrupt",
            r"validation failed",
            r"failed (?:validation|checks?)",
            r"\bunparse?able\b",
        ),
    ),
    (
        FailureCategory.TRANSIENT,
        _rx(
            r"time(?:d)? ?out",
            r"deadline exceeded",
            r"connection (?:reset|refused|closed|aborted|lost)",
            r"temporar(?:y|ily)",
            r"\bunavailable\b",
            r"\b50[234]\b",
            r"try again",
            r"network",
            r"broken pipe",
            r"\beof\b",
        ),
    ),
)


def classify(message: str) -> tuple[FailureCategory, str]:
    """The category of a failure from its message, and the pattern that decided it ("" when
    nothing matched: UNKNOWN)."""
    for category, pattern in RULES:
        found = pattern.search(message)
        if found:
            return category, found.group(0)
    return FailureCategory.UNKNOWN, ""


def categorized(failure: TaskFailure) -> tuple[TaskFailure, str]:
    """The failure with a category: the executor's, or classified from the message; and
    how it was obtained, for the decision's reason."""
    if failure.category != FailureCategory.UNSPECIFIED:
        return replace(failure, category=FailureCategory(failure.category)), "reported"
    category, matched = classify(failure.message)
    how = f"classified from the message ({matched!r})" if matched else "no rule matched"
    return TaskFailure(
        category,
        failure.message,
        failure.retry_after_s,
        failure.evidence,
        failure.facts_added,
        failure.facts_removed,
    ), how
