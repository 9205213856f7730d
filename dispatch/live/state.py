"""A shard engine's state: its tables, and in-memory indices over them.

The tables (`ShardStores`) are the state: orders, couriers per shard, decisions, policy flags and
orphaned events, each a typed view (`KV`) that the stream layer backs with changelogged tables
and a simulation with dicts. `ShardState` is their only writer; it keeps, beside them, which
orders are live and which couriers and open proposals each shard has, every courier record
decoded, and when each partition's orphaned events arrived. The indices are rebuilt from the
tables on first use after `reset` (a rebalance), so they never disagree with what the tables
hold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace

from dispatch.lifecycle import OrderState
from dispatch.live.kv import KV
from dispatch.live.orphans import OrphanIndex, Orphans
from dispatch.live.records import (
    CourierRecord,
    DecisionRecord,
    DecisionStatus,
    Phase,
    ShardControl,
    courier_key,
)


@dataclass
class ShardStores:
    """The engine's state, one typed view per table."""

    orders: KV[OrderState]
    couriers: KV[CourierRecord]
    decisions: KV[DecisionRecord]
    controls: KV[ShardControl]
    orphans: KV[Orphans]


class ShardState:
    """The shard tables and their indices; every write goes through here."""

    def __init__(self, stores: ShardStores) -> None:
        self.stores = stores
        self.orphan_index = OrphanIndex()
        self._indexed = False
        self._live_orders: dict[str, set[str]] = defaultdict(set)
        self._couriers: dict[str, set[str]] = defaultdict(set)
        # Every courier record of this worker's partitions, decoded and written through.
        self._records: dict[str, CourierRecord] = {}
        self._proposals: dict[str, set[str]] = defaultdict(set)
        # Orders given up by each tick (by the tick's event id), for `expired_by`.
        self._expired_by: dict[str, set[str]] = defaultdict(set)

    def reset(self) -> None:
        """Forget the indices; they are rebuilt from the tables when next needed."""
        self._indexed = False
        self._records.clear()
        self.orphan_index.reset()

    def ensure_indexed(self) -> None:
        """Build the indices from the tables unless they are current."""
        if self._indexed:
            return
        self._live_orders.clear()
        self._couriers.clear()
        self._records.clear()
        self._proposals.clear()
        self._expired_by.clear()
        for order_id, order in self.stores.orders.items():
            if order.dispatch.phase is not Phase.DONE:
                self._live_orders[order.shard].add(order_id)
            elif order.dispatch.expired_by is not None:
                self._expired_by[order.dispatch.expired_by].add(order_id)
        for key, courier in self.stores.couriers.items():
            self._records[key] = courier
            self._couriers[courier.shard].add(courier.courier_id)
        for decision_id, decision in self.stores.decisions.items():
            if decision.status is DecisionStatus.PROPOSED:
                self._proposals[decision.shard].add(decision_id)
        self.orphan_index.load([o for _, o in self.stores.orphans.items()])
        self._indexed = True

    def shards(self) -> list[str]:
        """Shards with live orders, couriers or parked events in this worker's partitions."""
        self.ensure_indexed()
        known = {s for s, ids in self._live_orders.items() if ids}
        known |= {s for s, ids in self._couriers.items() if ids}
        known |= self.orphan_index.shards()
        return sorted(s for s in known if s)

    # ------------------------------------------------------------------ orders
    def order(self, order_id: str) -> OrderState | None:
        """The order, or None."""
        return self.stores.orders.get(order_id)

    def put_order(self, order: OrderState) -> None:
        """Store `order`; it is live until its dispatch phase is done."""
        self.stores.orders.put(order.order_id, order)
        if order.dispatch.phase is Phase.DONE:
            self._live_orders[order.shard].discard(order.order_id)
            if order.dispatch.expired_by is not None:
                self._expired_by[order.dispatch.expired_by].add(order.order_id)
        else:
            self._live_orders[order.shard].add(order.order_id)

    def expired_by(self, tick_id: str) -> list[OrderState]:
        """The orders the tick `tick_id` gave up on (`OrderDispatch.expired_by`), by order id."""
        self.ensure_indexed()
        found = (self.stores.orders.get(o) for o in sorted(self._expired_by.get(tick_id, ())))
        return [o for o in found if o is not None and o.dispatch.expired_by == tick_id]

    def live_orders(self, shard: str) -> list[OrderState]:
        """The live orders of `shard` (dispatch phase not done), by order id."""
        self.ensure_indexed()
        found = (self.stores.orders.get(o) for o in sorted(self._live_orders[shard]))
        return [order for order in found if order is not None]

    # ------------------------------------------------------------------ couriers
    def courier(self, shard: str, courier_id: str | None) -> CourierRecord | None:
        """The courier's record in `shard`, or None."""
        if not courier_id:
            return None
        self.ensure_indexed()
        return self._records.get(courier_key(shard, courier_id))

    def put_courier(self, courier: CourierRecord) -> None:
        """Store `courier` in its shard."""
        key = courier_key(courier.shard, courier.courier_id)
        self.stores.couriers.put(key, courier)
        self._records[key] = courier
        self._couriers[courier.shard].add(courier.courier_id)

    def delete_courier(self, shard: str, courier_id: str) -> None:
        """Remove the courier from `shard`."""
        key = courier_key(shard, courier_id)
        self.stores.couriers.delete(key)
        self._records.pop(key, None)
        self._couriers[shard].discard(courier_id)

    def couriers(self, shard: str) -> list[CourierRecord]:
        """The couriers `shard` holds, by courier id."""
        self.ensure_indexed()
        found = (self._records.get(courier_key(shard, c)) for c in sorted(self._couriers[shard]))
        return [courier for courier in found if courier is not None]

    def holds(self, shard: str, courier_id: str) -> bool:
        """True if `shard` holds the courier (a record there, not leaving it)."""
        courier = self.courier(shard, courier_id)
        return courier is not None and courier.leaving_to is None

    # ------------------------------------------------------------------ decisions
    def decision(self, decision_id: str | None) -> DecisionRecord | None:
        """The decision, or None."""
        return self.stores.decisions.get(decision_id) if decision_id else None

    def put_decision(self, decision: DecisionRecord) -> None:
        """Store `decision`; it is an open proposal while proposed."""
        self.stores.decisions.put(decision.decision_id, decision)
        if decision.status is DecisionStatus.PROPOSED:
            self._proposals[decision.shard].add(decision.decision_id)
        else:
            self._proposals[decision.shard].discard(decision.decision_id)

    def open_proposals(self, shard: str) -> Iterator[DecisionRecord]:
        """The proposals of `shard` still open, by decision id.

        Each is read when the iteration reaches it, so a proposal resolved meanwhile is skipped;
        an id whose decision is gone or resolved leaves the index.
        """
        self.ensure_indexed()
        for decision_id in sorted(self._proposals[shard]):
            decision = self.stores.decisions.get(decision_id)
            if decision is None or decision.status is not DecisionStatus.PROPOSED:
                self._proposals[shard].discard(decision_id)
                continue
            yield decision

    # ------------------------------------------------------------------ policy flags
    def control(self, key: str) -> ShardControl | None:
        """The policy flags stored under `key` (a shard, or `*`), or None."""
        return self.stores.controls.get(key)

    def put_control(self, control: ShardControl) -> None:
        """Store `control` under its shard."""
        self.stores.controls.put(control.shard, control)

    # ------------------------------------------------------------------ orphaned events
    def orphans(self, order_id: str) -> Orphans | None:
        """The events waiting for `order_id` to be created, or None."""
        return self.stores.orphans.get(order_id)

    def put_orphans(self, partition: int, orphans: Orphans) -> None:
        """Store events waiting for an order, read from `partition` (or their tombstone)."""
        self.stores.orphans.put(orphans.order_id, orphans)
        self.orphan_index.add_orphans(partition, orphans)

    def note_orphans_tick(self, order_id: str, tick_ms: int) -> None:
        """Store the tick the wait of `order_id`'s orphans started at, if none is stored yet."""
        orphans = self.stores.orphans.get(order_id)
        if orphans is not None and not orphans.expired and orphans.parked_tick_ms is None:
            self.stores.orphans.put(order_id, replace(orphans, parked_tick_ms=tick_ms))

    def delete_orphans(self, partition: int, order_id: str) -> Orphans | None:
        """Forget the events waiting for `order_id` in `partition`; return them, if any."""
        self.orphan_index.discard(partition, order_id)
        orphans = self.stores.orphans.get(order_id)
        if orphans is not None:
            self.stores.orphans.delete(order_id)
        return orphans
