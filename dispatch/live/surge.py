"""Surge: a smoothed, capped price multiplier per zone from the zone's supply and demand features.

Every `surge_every_ticks`-th tick of a shard prices each zone inside the shard (the feature
layer's zone: a geohash of `features.store.ZONE_PRECISION` characters) that has open orders at
their pickup or idle couriers at their latest position, or was priced before. Supply and demand
are the features' (`FeatureEngine.zone_supply_demand`: couriers pinging in the last 10 minutes,
orders placed in the last hour), the pair the order rows' `supply_demand_ratio` comes from; the
raw multiplier is the feature layer's `surge_multiplier` of that ratio, at most `surge_max`, and
1 in a zone without demand. The published one is exponentially smoothed (`surge_smoothing`) from
the zone's previous value (1 at first). A `surge_update` is sent when the published value moved
by at least 0.05, and for a zone seen for the first time only when it has demand or surges (1.05
or more). Ids are `surge:<zone>:<time>`. Without online features no zone surges.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from contracts.geo import encode_many
from dispatch.live.engine_config import EngineConfig
from dispatch.live.outputs import surge_event
from dispatch.live.shard_snapshot import Position, ShardSnapshot
from features.definitions import supply_demand_ratio, surge_multiplier
from features.store import ZONE_PRECISION


def zones_of(lat: Sequence[float], lon: Sequence[float]) -> set[str]:
    """The zones (geohash of `ZONE_PRECISION` characters) the points fall in."""
    if not lat:
        return set()
    return set(encode_many(np.array(lat), np.array(lon), ZONE_PRECISION).tolist())


class SurgeTracker:
    """The smoothed multiplier of each zone of a worker's shards, and the last one published."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._surge: dict[str, float] = {}
        self._sent: dict[str, float] = {}

    def updates(
        self,
        built: ShardSnapshot,
        idle: Sequence[Position],
        supply_demand: Callable[[str], tuple[float, float]] | None,
    ) -> list[dict[str, Any]]:
        """The `surge_update`s of `built`'s shard: its zones priced from `supply_demand`.

        `idle` (the positions of the shard's idle couriers) and the open orders only say which
        zones to price; no zone is priced without `supply_demand`.
        """
        if supply_demand is None:
            return []
        config = self.config
        shard = built.snapshot.shard_id
        now_ms = built.snapshot.now_ts_ms
        orders = built.open_orders()
        zones = zones_of([o.pickup_lat for o in orders], [o.pickup_lon for o in orders])
        zones |= zones_of([p.lat for p in idle], [p.lon for p in idle])
        alpha = config.surge_smoothing
        events: list[dict[str, Any]] = []
        for zone in sorted(zones | set(self._surge)):
            if not zone.startswith(shard):
                continue
            supply, demand = supply_demand(zone)
            ratio = supply_demand_ratio(supply, demand)
            raw = 1.0 if not demand or ratio is None else surge_multiplier(ratio, config.surge_max)
            smooth = alpha * raw + (1 - alpha) * self._surge.get(zone, 1.0)
            self._surge[zone] = smooth
            sent = self._sent.get(zone)
            if sent is not None and abs(sent - smooth) < 0.05:
                continue
            if sent is None and smooth < 1.05 and not demand:
                continue
            self._sent[zone] = round(smooth, 3)
            events.append(
                surge_event(zone, shard, round(supply), round(demand), round(smooth, 3), now_ms)
            )
        return events
