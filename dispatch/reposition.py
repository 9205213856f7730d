"""Repositioning idle couriers towards demand (prepositioning moves to merchants)."""

from __future__ import annotations

from dispatch.candidates import TickFrame
from dispatch.decisions import Reposition
from dispatch.policy import Policy
from dispatch.snapshot import Snapshot


def repositions(
    snapshot: Snapshot, frame: TickFrame, policy: Policy, busy: set[int]
) -> list[Reposition]:
    """Moves of idle couriers (not in `busy`) towards merchants with expected demand."""
    return []
