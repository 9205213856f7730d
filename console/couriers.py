"""Couriers in the read model: status and capacity from state updates, positions from fixes.

Status, capacity and vehicle come from `courier_state_updates`, positions from
`courier_positions`.

Like orders, couriers are read from several topics in no useful order, so each field keeps the
key of the event it came from and only a newer event replaces it: status, capacity and vehicle
follow the newest `(status_ts_ms, ts_ms)`; the shard follows the newest `(epoch, ts_ms)` (a
courier's epoch counts its shard changes); the position follows the newest fix time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CourierRecord:
    """What the console knows of one courier.

    Attributes:
        courier_id: the courier.
        status: `online` or `offline` (None until a state update is read).
        capacity: orders it can carry at once.
        vehicle: its vehicle.
        shard: the shard it is in (from its state updates, else from its newest fix).
        lat: newest known latitude, degrees.
        lon: newest known longitude, degrees.
        position_ts_ms: time of the newest fix (0: no fix yet).
        status_ts_ms: event time of the state update its status came from.
        status_key: `(status_ts_ms, ts_ms)` of that update (a newer one replaces it).
        place_key: `(epoch, ts_ms)` of the update its shard came from.
    """

    courier_id: str
    status: str | None = None
    capacity: int | None = None
    vehicle: str | None = None
    shard: str | None = None
    lat: float | None = None
    lon: float | None = None
    position_ts_ms: int = 0
    status_ts_ms: int = 0
    status_key: tuple[int, int] = field(default=(-1, -1), repr=False)
    place_key: tuple[int, int] = field(default=(-1, -1), repr=False)

    def apply_update(self, event: Mapping[str, Any]) -> None:
        """Apply a `courier_state_update` if it is newer than what the fields came from."""
        ts_ms = int(event["ts_ms"])
        status_key = (int(event["status_ts_ms"]), ts_ms)
        if status_key >= self.status_key:
            self.status_key = status_key
            self.status = str(event["status"])
            self.capacity = int(event["capacity"])
            self.vehicle = str(event["vehicle"])
            self.status_ts_ms = ts_ms
        place_key = (int(event.get("epoch") or 0), ts_ms)
        leaving = event["kind"] in ("left", "handover")
        shard = event.get("to_shard") if leaving else event["shard"]
        if shard and place_key >= self.place_key:
            self.place_key = place_key
            self.shard = str(shard)

    def apply_fix(self, lat: float, lon: float, ts_ms: int, shard: str) -> None:
        """Apply one position fix read in `shard` if it is the newest."""
        if ts_ms < self.position_ts_ms:
            return
        self.lat, self.lon, self.position_ts_ms = lat, lon, ts_ms
        if self.shard is None:
            self.shard = shard

    @property
    def online(self) -> bool:
        """Whether its newest status is online."""
        return self.status == "online"

    @property
    def placed(self) -> bool:
        """Whether a position is known."""
        return self.lat is not None and self.lon is not None
