"""Synthetic shards for benchmarks."""

from __future__ import annotations

import numpy as np

from dispatch.engine import decide
from dispatch.policy import DEFAULT_POLICY
from dispatch.snapshot import OPEN
from dispatch.synthetic import ShardShape, ShardStream, synthetic_snapshot


def test_synthetic_snapshot_has_the_requested_size() -> None:
    """A synthetic shard has the requested open orders and couriers."""
    snap = synthetic_snapshot(ShardShape(30, 20), np.random.default_rng(0))
    assert (snap.orders.courier_index == OPEN).sum() == 30 and snap.couriers.m == 20


def test_same_seed_same_shard() -> None:
    """Equal seeds give equal shards."""
    a = synthetic_snapshot(ShardShape(10, 10), np.random.default_rng(5))
    b = synthetic_snapshot(ShardShape(10, 10), np.random.default_rng(5))
    assert a.orders.order_id == b.orders.order_id
    assert np.array_equal(a.couriers.free_xy_m, b.couriers.free_xy_m)


def test_stream_keeps_the_open_order_count_and_moves_time() -> None:
    """After each tick the stream refills to the target open orders and advances the clock."""
    stream = ShardStream(ShardShape(25, 40), np.random.default_rng(2), tick_s=2.0)
    snap = stream.snapshot
    for _ in range(5):
        before = snap.now_ts_ms
        snap = stream.advance(decide(snap, DEFAULT_POLICY))
        assert snap.now_ts_ms == before + 2000
        assert (snap.orders.courier_index == OPEN).sum() == 25
