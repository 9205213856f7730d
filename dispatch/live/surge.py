"""Surge: a smoothed, capped price multiplier per zone from its open orders and idle couriers.

Every `surge_every_ticks`-th tick of a shard counts, per zone (geohash prefix of
`surge_zone_precision` characters) inside the shard, the snapshot's open orders at their pickup
(demand) and the shard's idle couriers at their latest position (supply: dispatchable, no
route). The raw multiplier of a zone is the feature layer's `surge_multiplier` of its
`couriers_per_order`, with one courier added to its supply (so a zone without couriers has a
finite ratio and one without orders never surges), at most `surge_max`; the published one is
exponentially smoothed (`surge_smoothing`) from the zone's previous value (1 at first). A
`surge_update` is sent when the published value moved by at least 0.05, and for a zone seen for
the first time only when it has demand or surges (1.05 or more). Ids are `surge:<zone>:<time>`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from contracts.geo import encode_many
from dispatch.live.engine_config import EngineConfig
from dispatch.live.outputs import surge_event
from dispatch.live.shard_snapshot import Position, ShardSnapshot
from features.definitions import couriers_per_order, surge_multiplier


def zone_counts(lat: Sequence[float], lon: Sequence[float], precision: int) -> dict[str, int]:
    """How many of the points fall in each zone (geohash of `precision` characters)."""
    counts: dict[str, int] = defaultdict(int)
    if lat:
        for zone in encode_many(np.array(lat), np.array(lon), precision).tolist():
            counts[zone] += 1
    return counts


class SurgeTracker:
    """The smoothed multiplier of each zone of a worker's shards, and the last one published."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._surge: dict[str, float] = {}
        self._sent: dict[str, float] = {}

    def updates(self, built: ShardSnapshot, idle: Sequence[Position]) -> list[dict[str, Any]]:
        """The `surge_update`s of `built`'s shard, given the positions of its idle couriers."""
        config = self.config
        shard = built.snapshot.shard_id
        now_ms = built.snapshot.now_ts_ms
        orders = built.open_orders()
        precision = config.surge_zone_precision
        demand = zone_counts(
            [o.pickup_lat for o in orders], [o.pickup_lon for o in orders], precision
        )
        supply = zone_counts([p.lat for p in idle], [p.lon for p in idle], precision)
        alpha = config.surge_smoothing
        events: list[dict[str, Any]] = []
        for zone in sorted(set(demand) | set(self._surge) | set(supply)):
            if not zone.startswith(shard):
                continue
            ratio = couriers_per_order(supply.get(zone, 0) + 1, demand.get(zone, 0))
            raw = surge_multiplier(ratio, config.surge_max)
            smooth = alpha * raw + (1 - alpha) * self._surge.get(zone, 1.0)
            self._surge[zone] = smooth
            sent = self._sent.get(zone)
            if sent is not None and abs(sent - smooth) < 0.05:
                continue
            if sent is None and smooth < 1.05 and not demand.get(zone):
                continue
            self._sent[zone] = round(smooth, 3)
            events.append(
                surge_event(
                    zone,
                    shard,
                    supply.get(zone, 0),
                    demand.get(zone, 0),
                    round(smooth, 3),
                    now_ms,
                )
            )
        return events
