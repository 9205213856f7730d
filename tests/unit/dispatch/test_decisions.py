"""Decision ids."""

from __future__ import annotations

import uuid

from dispatch.decisions import decision_id


def test_decision_id_is_deterministic_and_order_insensitive() -> None:
    """The same inputs give the same UUID whatever the order of the order ids."""
    a = decision_id("assign", "s1", 1000, "c1", ["o2", "o1"])
    b = decision_id("assign", "s1", 1000, "c1", ["o1", "o2"])
    assert a == b
    uuid.UUID(a)


def test_decision_id_changes_with_any_input() -> None:
    """Tick time, courier, orders, shard and kind all change the id."""
    base = ("assign", "s1", 1000, "c1", ["o1"])
    variants = [
        ("reposition", "s1", 1000, "c1", ["o1"]),
        ("assign", "s2", 1000, "c1", ["o1"]),
        ("assign", "s1", 1001, "c1", ["o1"]),
        ("assign", "s1", 1000, "c2", ["o1"]),
        ("assign", "s1", 1000, "c1", ["o1", "o3"]),
    ]
    ids = {decision_id(*base)} | {decision_id(*v) for v in variants}
    assert len(ids) == 1 + len(variants)
