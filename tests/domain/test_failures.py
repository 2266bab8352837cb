"""Classifying a failure without a category from its message (docs/replanning.md)."""

from __future__ import annotations

import pytest

from plansmith_server.domain.failures import FailureCategory as C
from plansmith_server.domain.failures import TaskFailure, categorized, classify


@pytest.mark.parametrize(
    ("message", "category"),
    [
        ("connection reset by peer", C.TRANSIENT),
        ("upstream request timed out after 30s", C.TRANSIENT),
        ("HTTP 503 Service Unavailable", C.TRANSIENT),
        ("rate limit exceeded, try again later", C.RESOURCE_EXHAUSTION),
        ("worker killed: out of memory", C.RESOURCE_EXHAUSTION),
        ("No space left on device", C.RESOURCE_EXHAUSTION),
        ("found 312 duplicate order ids", C.DATA_QUALITY),
        ("NOT NULL constraint failed: orders.customer_id", C.DATA_QUALITY),
        ("unknown column 'amount_cents' in field list", C.SCHEMA_MISMATCH),
        ("schema of orders changed: expected v2, got v3", C.SCHEMA_MISMATCH),
        ("No such file or directory: /data/in/orders.csv", C.DEPENDENCY_MISSING),
        ("table raw.orders does not exist", C.DEPENDENCY_MISSING),
        ("403 Forbidden", C.PERMISSION),
        ("permission denied for schema warehouse", C.PERMISSION),
        ("agent lacks the skill to train models", C.CAPABILITY),
        ("something odd happened", C.UNKNOWN),
        ("", C.UNKNOWN),
    ],
)
def test_messages_classify_by_the_documented_rules(message: str, category: C) -> None:
    assert classify(message)[0] == category


def test_specific_rules_come_before_general_ones() -> None:
    # "not found" alone is a missing dependency; a column not found is the schema.
    assert classify("column amount not found")[0] == C.SCHEMA_MISMATCH
    assert classify("file not found")[0] == C.DEPENDENCY_MISSING
    # Access refused on a timeout-prone service is still a permission problem.
    assert classify("403 forbidden (after timeout)")[0] == C.PERMISSION


def test_a_reported_category_is_kept_and_an_unspecified_one_classified() -> None:
    kept, how = categorized(TaskFailure(C.PERMISSION, "connection reset"))
    assert kept.category == C.PERMISSION and how == "reported"
    found, how = categorized(TaskFailure(message="connection reset", retry_after_s=5))
    assert found.category == C.TRANSIENT and found.retry_after_s == 5
    assert "connection reset" in how
    unknown, how = categorized(TaskFailure(message="???"))
    assert unknown.category == C.UNKNOWN and how == "no rule matched"
