"""A shard engine's state: its tables, and in-memory indices over them.

The tables (`ShardStores`) are the state: orders, couriers per shard, decisions, policy flags and
orphaned events, each a typed view (`KV`) that the stream layer backs with changelogged tables
and a simulation with dicts. `ShardState` is their only writer; it keeps, beside them, which
orders are live and which couriers and open proposals each shard has, and every courier record
decoded. The indices are rebuilt from the tables on first use after `reset` (a rebalance), so
they never disagree with what the tables hold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from dispatch.lifecycle import OrderState
from dispatch.live.kv import KV
from dispatch.live.orphans import Orphans
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
        self._indexed = False
        self._live_orders: dict[str, set[str]] = defaultdict(set)
        self._couriers: dict[str, set[str]] = defaultdict(set)
        # Every courier record of this worker's partitions, decoded and written through.
        self._records: dict[str, CourierRecord] = {}
        self._proposals: dict[str, set[str]] = defaultdict(set)

    def reset(self) -> None:
        """Forget the indices; they are rebuilt from the tables when next needed."""
        self._indexed = False
        self._records.clear()

    def ensure_indexed(self) -> None:
        """Build the indices from the tables unless they are current."""
        if self._indexed:
            return
        self._live_orders.clear()
        self._couriers.clear()
        self._records.clear()
        self._proposals.clear()
        for order_id, order in self.stores.orders.items():
            if order.dispatch.phase is not Phase.DONE:
                self._live_orders[order.shard].add(order_id)
        for key, courier in self.stores.couriers.items():
            self._records[key] = courier
            self._couriers[courier.shard].add(courier.courier_id)
        for decision_id, decision in self.stores.decisions.items():
            if decision.status is DecisionStatus.PROPOSED:
                self._proposals[decision.shard].add(decision_id)
        self._indexed = True

    # ------------------------------------------------------------------ orders
    def order(self, order_id: str) -> OrderState | None:
        """The order, or None."""
        return self.stores.orders.get(order_id)

    def put_order(self, order: OrderState) -> None:
        """Store `order`; it is live until its dispatch phase is done."""
        self.stores.orders.put(order.order_id, order)
        if order.dispatch.phase is Phase.DONE:
            self._live_orders[order.shard].discard(order.order_id)
        else:
            self._live_orders[order.shard].add(order.order_id)

    def live_orders(self, shard: str) -> list[str]:
        """Ids of the live orders of `shard`, sorted."""
        self.ensure_indexed()
        return sorted(self._live_orders[shard])

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

    def couriers(self, shard: str) -> Iterator[CourierRecord]:
        """The couriers `shard` holds, by courier id."""
        self.ensure_indexed()
        for courier_id in sorted(self._couriers[shard]):
            courier = self._records.get(courier_key(shard, courier_id))
            if courier is not None:
                yield courier

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

    def open_proposals(self, shard: str) -> list[str]:
        """Ids of the proposals of `shard` still open, sorted."""
        self.ensure_indexed()
        return sorted(self._proposals[shard])

    def shards(self) -> list[str]:
        """Shards with live orders or couriers in this worker's partitions."""
        self.ensure_indexed()
        known = {s for s, ids in self._live_orders.items() if ids}
        known |= {s for s, ids in self._couriers.items() if ids}
        return sorted(known)
