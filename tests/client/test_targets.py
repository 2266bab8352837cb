"""Several targets (replicas) or a DNS name: one balanced channel (round_robin)."""

from __future__ import annotations

import pytest

from plansmith import ArgumentError
from plansmith._base import resolve_targets
from plansmith._channels import with_round_robin


def test_several_targets_become_one_balanced_target():
    assert resolve_targets(["127.0.0.1:5001", "localhost:5002"]) == (
        "ipv4:127.0.0.1:5001,127.0.0.1:5002",
        False,
        True,
    )
    assert resolve_targets(["[::1]:5001", "[::1]:5002"]) == (
        "ipv6:[::1]:5001,[::1]:5002",
        False,
        True,
    )
    assert resolve_targets("dns:///plansmith.internal:50051")[2] is True
    assert resolve_targets("127.0.0.1:5001") == ("127.0.0.1:5001", False, False)
    assert resolve_targets(["127.0.0.1:5001"]) == ("127.0.0.1:5001", False, False)


@pytest.mark.parametrize(
    "target",
    [[], ["127.0.0.1:1", "https://127.0.0.1:2"], ["127.0.0.1:1", "unix:/tmp/x"], 42],
)
def test_targets_that_cannot_be_balanced_are_refused_at_once(target):
    with pytest.raises(ArgumentError):
        resolve_targets(target)


def test_round_robin_unless_the_caller_chose_a_policy():
    assert ("grpc.lb_policy_name", "round_robin") in with_round_robin([])
    chosen = [("grpc.lb_policy_name", "pick_first")]
    assert with_round_robin(chosen) == chosen
