"""Policy validation and lookup."""

from __future__ import annotations

import pytest

from dispatch.policy import DEFAULT_POLICY, GREEDY_POLICY, PolicyError, policy_by_name


def test_policies_are_found_by_name() -> None:
    """The default and greedy policies are registered under their names."""
    assert policy_by_name("default") is DEFAULT_POLICY
    assert policy_by_name("greedy") is GREEDY_POLICY


def test_unknown_policy_name_is_a_clear_error() -> None:
    """An unknown name raises PolicyError listing the known ones."""
    with pytest.raises(PolicyError, match="greedy"):
        policy_by_name("nope")


@pytest.mark.parametrize(
    "changes",
    [
        {"w_delay": -1.0},
        {"max_pickup_s": float("nan")},
        {"mode": "random"},
        {"min_candidates": 0},
        {"min_candidates": 60, "max_candidates": 10},
        {"max_bundle_size": 0},
    ],
)
def test_out_of_range_values_are_rejected(changes: dict[str, object]) -> None:
    """Negative or non-finite numbers and inconsistent limits raise PolicyError."""
    with pytest.raises(PolicyError):
        DEFAULT_POLICY.replace(**changes)


def test_policy_is_frozen() -> None:
    """Policies cannot be changed in place."""
    with pytest.raises(AttributeError):
        DEFAULT_POLICY.w_delay = 2.0  # type: ignore[misc]
