"""The console's read model: orders, couriers, policy controls, surge and dead letters.

Pure: no Kafka. `console.reader` decodes records and calls `apply_event` (JSON contract events),
`apply_positions` (decoded `courier_positions` batches) and `apply_dead_letter`; the views read
`summaries()`, `couriers` and the rest. The model's clock, `clock_ms`, is the newest event time
of the records the workers wrote (decisions, ETA and surge updates, courier state, positions):
live, that follows the wall clock within a tick; in a simulation it follows the simulation.
Input records can carry any time (a producer's bad clock), so they never move it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from console.couriers import CourierRecord
from console.deadletters import DeadLetter, DeadLetterTally
from console.orders import (
    DECISIONS,
    Milestone,
    OrderRecord,
    OrderSummary,
    milestone_name,
    summarize,
)
from console.terms import Control
from contracts.positions import PositionBatch

#: Topics the workers write: their event times drive the clock and tell shard partitions.
WORKER_TOPICS = frozenset(
    {
        "assignment_proposed",
        "assignment_committed",
        "assignment_released",
        "eta_updates",
        "surge_updates",
        "courier_state_updates",
        "courier_positions",
    }
)

#: How long ended orders and offline couriers stay in the model, in event time.
DEFAULT_RETENTION_MS = 3 * 3_600_000


@dataclass(frozen=True)
class Surge:
    """The newest `surge_update` of a zone."""

    zone: str
    shard: str
    ts_ms: int
    supply: int
    demand: int
    multiplier: float


class OpsModel:
    """Everything the console shows, built from events in any order.

    Attributes:
        orders: every order read about, by id (also those whose creation is not read yet).
        couriers: every courier read about, by id.
        controls: `dispatch_control` events by (shard, policy version).
        surge: newest surge state by zone.
        dead_letters: dead-letter counts, latest letters and the input records they reject.
        clock_ms: newest event time the workers wrote (see the module docstring).
        shard_partition: partition of each shard, as the workers' shard-keyed records say.
        records: records applied, per topic.
    """

    def __init__(self, retention_ms: int = DEFAULT_RETENTION_MS, keep_dead_letters: int = 20):
        if retention_ms <= 0:
            raise ValueError(f"retention_ms must be positive, got {retention_ms}")
        self.retention_ms = retention_ms
        self.orders: dict[str, OrderRecord] = {}
        self.couriers: dict[str, CourierRecord] = {}
        self.controls: dict[tuple[str, str], Control] = {}
        self.surge: dict[str, Surge] = {}
        self.dead_letters = DeadLetterTally(keep_dead_letters)
        self.clock_ms = 0
        self.shard_partition: dict[str, int] = {}
        self.records: Counter[str] = Counter()
        self._summaries: dict[str, OrderSummary | None] = {}

    # ------------------------------------------------------------------ inputs
    def apply_event(
        self, topic: str, partition: int, offset: int, event: Mapping[str, Any]
    ) -> None:
        """Apply one schema-valid JSON event read at (topic, partition, offset)."""
        event_type = str(event["type"])
        ts_ms = int(event["ts_ms"])
        self.records[topic] += 1
        if topic in WORKER_TOPICS:
            self.clock_ms = max(self.clock_ms, ts_ms)
            if "shard" in event:
                self.shard_partition[str(event["shard"])] = partition
        name = milestone_name(event)
        if name is not None:
            milestone = Milestone(ts_ms, (topic, partition, offset), event)
            self._order(str(event["order_id"])).add_milestone(name, milestone)
        elif event_type in DECISIONS:
            ids = [event["order_id"]] if event_type == "order_expired" else event["order_ids"]
            for order_id in ids:
                self._order(str(order_id)).add_decision(event)
        elif event_type == "eta_update":
            self._order(str(event["order_id"])).add_eta(event)
        elif event_type == "courier_state_update":
            self._courier(str(event["courier_id"])).apply_update(event)
        elif event_type == "surge_update":
            zone = str(event["zone"])
            known = self.surge.get(zone)
            if known is None or ts_ms >= known.ts_ms:
                self.surge[zone] = Surge(
                    zone,
                    str(event["shard"]),
                    ts_ms,
                    int(event["supply"]),
                    int(event["demand"]),
                    float(event["multiplier"]),
                )
        elif event_type == "dispatch_control":
            control = Control.from_event(event)
            self.controls[(control.shard, control.policy_version)] = control

    def apply_positions(self, batch: PositionBatch, partition: int) -> None:
        """Apply a `courier_positions` batch (tombstones move nobody: the directory does)."""
        self.records["courier_positions"] += 1
        if batch.left or len(batch.fixes) == 0:
            return
        fixes = batch.fixes
        self.shard_partition[batch.shard] = partition
        for courier_id, lat, lon, ts_ms in zip(
            fixes.courier_id.tolist(),
            fixes.lat.tolist(),
            fixes.lon.tolist(),
            fixes.ts_ms.tolist(),
            strict=True,
        ):
            self._courier(str(courier_id)).apply_fix(
                float(lat), float(lon), int(ts_ms), batch.shard
            )
        self.clock_ms = max(self.clock_ms, int(fixes.ts_ms.max()))

    def apply_dead_letter(self, letter: DeadLetter) -> None:
        """Count a dead letter; the input record it rejects no longer counts."""
        self.records[letter.dlq_topic] += 1
        rejected = len(self.dead_letters.rejected)
        self.dead_letters.add(letter)
        if len(self.dead_letters.rejected) != rejected:
            self._summaries.clear()

    # ------------------------------------------------------------------ reads
    def summary(self, order_id: str) -> OrderSummary | None:
        """The order's state, or None if it is unknown or its creation was not read (or valid)."""
        if order_id not in self._summaries:
            record = self.orders.get(order_id)
            self._summaries[order_id] = (
                None if record is None else summarize(record, self.dead_letters.rejected)
            )
        return self._summaries[order_id]

    def summaries(self) -> list[OrderSummary]:
        """Every order whose creation is known, by creation time."""
        found = [s for s in (self.summary(o) for o in self.orders) if s is not None]
        return sorted(found, key=lambda s: (s.created_ts_ms, s.order_id))

    def control_list(self) -> list[Control]:
        """Every `dispatch_control` read."""
        return list(self.controls.values())

    # ------------------------------------------------------------------ housekeeping
    def evict(self) -> int:
        """Forget orders ended (or silent) and couriers offline for longer than the retention.

        Returns how many orders and couriers were forgotten.
        """
        horizon = self.clock_ms - self.retention_ms
        gone = []
        for order_id, record in self.orders.items():
            summary = self.summary(order_id)
            if summary is None:
                old = record.newest_ts_ms < horizon
            else:
                ended = summary.ended_ts_ms
                old = ended is not None and ended < horizon
            if old:
                gone.append(order_id)
        for order_id in gone:
            del self.orders[order_id]
            self._summaries.pop(order_id, None)
        idle = [
            c.courier_id
            for c in self.couriers.values()
            if not c.online and max(c.status_ts_ms, c.position_ts_ms) < horizon
        ]
        for courier_id in idle:
            del self.couriers[courier_id]
        return len(gone) + len(idle)

    def _order(self, order_id: str) -> OrderRecord:
        self._summaries.pop(order_id, None)
        record = self.orders.get(order_id)
        if record is None:
            record = self.orders[order_id] = OrderRecord(order_id)
        return record

    def _courier(self, courier_id: str) -> CourierRecord:
        courier = self.couriers.get(courier_id)
        if courier is None:
            courier = self.couriers[courier_id] = CourierRecord(courier_id)
        return courier
