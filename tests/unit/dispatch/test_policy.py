"""Policy validation and lookup."""

from __future__ import annotations

import pytest

from dispatch.policy import (
    DEFAULT_POLICY,
    GREEDY_POLICY,
    PolicyError,
    policy_by_name,
    with_settings,
)


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


def test_settings_are_read_as_each_fields_type() -> None:
    """Float, int, bool and text settings land in their fields with the fields' types."""
    policy = with_settings(
        DEFAULT_POLICY,
        ["hold_cost=45", "max_candidates = 12", "bundling=off", "jit=True", "mode=greedy"],
    )
    assert policy.hold_cost == 45.0 and isinstance(policy.hold_cost, float)
    assert policy.max_candidates == 12 and isinstance(policy.max_candidates, int)
    assert policy.bundling is False and policy.jit is True
    assert policy.mode == "greedy"
    assert policy.w_delay == DEFAULT_POLICY.w_delay


def test_settings_name_the_variant() -> None:
    """The changed policy is named after the base policy and its settings, in order."""
    policy = with_settings(DEFAULT_POLICY, ["hold_cost=45", "w_age=0.75"])
    assert policy.name == "default[hold_cost=45,w_age=0.75]"


def test_no_settings_keep_the_policy() -> None:
    """Without settings the policy itself comes back, name and all."""
    assert with_settings(GREEDY_POLICY, []) is GREEDY_POLICY


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("hold_cost", "FIELD=VALUE"),
        ("hold_cost=", "FIELD=VALUE"),
        ("nope=1", "no field 'nope'"),
        ("name=fast", "--policy"),
        ("hold_cost=abc", "not a valid float"),
        ("max_candidates=1.5", "not a valid int"),
        ("bundling=maybe", "not a valid bool"),
        ("hold_cost=-1", "settings hold_cost=-1: .*non-negative"),
        ("max_candidates=2", "settings max_candidates=2: need 1 <= min_candidates"),
        ("mode=random", "mode"),
    ],
)
def test_bad_settings_are_clear_errors(setting: str, message: str) -> None:
    """Malformed, unknown, wrongly typed or out-of-range settings raise PolicyError saying why."""
    with pytest.raises(PolicyError, match=message):
        with_settings(DEFAULT_POLICY, [setting])
