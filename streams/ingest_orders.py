"""Order events (`order_events`, `merchant_ready`, `delivery_events`) → the `orders` table.

Each record is validated, applied to the order's lifecycle state machine and written back; a
record that cannot apply goes to its topic's dead-letter topic with the reason. Records for an
order not created yet are parked (`streams.orphans`) until it is, or until they expire.
"""

from __future__ import annotations

import time
from typing import Any, cast

from contracts.validation import Event, EventRejected, RejectReason
from dispatch.lifecycle import (
    AlreadyApplied,
    OrderEvent,
    OrderState,
    Source,
    apply_order_event,
    apply_parked,
)
from streams.dead_letters import DeadLetter
from streams.orphans import OrphanIndex, Orphans, ParkedRecord
from streams.runtime import Runtime, record_ts_ms

ORDER_TOPICS = ("order_events", "merchant_ready", "delivery_events")
ORDERS_TABLE = "orders"
ORPHANS_TABLE = "order_orphans"


def register(rt: Runtime) -> None:
    """Attach the orders and orphans tables and the orders agent to `rt.app`."""
    app = rt.app
    partitions = rt.topics[ORDER_TOPICS[0]].partitions
    orders = rt.table(
        ORDERS_TABLE,
        partitions,
        "Order lifecycle state by order id, in the partition of the order's shard.",
    )
    orphans = rt.table(
        ORPHANS_TABLE, partitions, "Order events waiting for their order to be created."
    )
    index = OrphanIndex()
    ttl_ms = int(rt.settings.orphan_ttl_s * 1000)

    async def dead_letter_source(source: Source, error: EventRejected) -> None:
        await rt.dead_letter(
            DeadLetter(
                source_topic=source.topic,
                source_partition=source.partition,
                source_offset=source.offset,
                key=source.key,
                value=source.value,
                reason=error.reason.value,
                message=error.message,
            )
        )

    async def dead_letter_evicted(evicted: tuple[tuple[OrderEvent, EventRejected], ...]) -> None:
        for event, error in evicted:
            if event.source is not None:
                await dead_letter_source(event.source, error)

    async def expire_orphans(partition: int) -> None:
        for order_id in index.expired(partition, ttl_ms):
            raw = orphans.get(order_id.encode())
            index.discard(partition, order_id)
            if raw is None:
                continue
            del orphans[order_id.encode()]
            for record in Orphans.from_json(raw).records:
                error = EventRejected(
                    RejectReason.UNKNOWN_ID,
                    f"order {order_id!r} was not created within {ttl_ms // 1000} s of this event",
                )
                await dead_letter_source(record.source, error)

    async def park(source: Source, event: Event) -> None:
        order_id = str(event["order_id"])
        key = order_id.encode()
        record = ParkedRecord(event, source)
        raw = orphans.get(key)
        current = (
            Orphans.from_json(raw)
            if raw
            else Orphans(order_id, source.partition, int(event["ts_ms"]), ())
        )
        if any(source.same_record(r.source) for r in current.records):
            return
        updated = current.add(record)
        orphans[key] = updated.to_json()
        index.add(source.partition, order_id, updated.first_seen_ts_ms)

    async def adopt(state: OrderState, partition: int) -> OrderState:
        key = state.order_id.encode()
        raw = orphans.get(key)
        if raw is None:
            return state
        parked = Orphans.from_json(raw)
        state, rejected, evicted = apply_parked(
            state, [(r.event, r.source) for r in parked.records]
        )
        for i, error in rejected:
            await dead_letter_source(parked.records[i].source, error)
        await dead_letter_evicted(tuple(evicted))
        del orphans[key]
        index.discard(partition, state.order_id)
        return state

    @app.agent(rt.topic(*ORDER_TOPICS), name="orders")
    @rt.guarded("orders")
    async def orders_agent(stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            message = event.message
            if not index.loaded:
                index.load([Orphans.from_json(raw) for _, raw in orphans.items()])
            source = Source(
                message.topic, message.partition, message.offset, message.key, message.value
            )
            try:
                order_event = rt.validator.check(
                    message.topic, message.key, message.value, record_ts_ms(message)
                )
                key = str(order_event["order_id"]).encode()
                raw = orders.get(key)
                index.observe(message.partition, message.topic, int(order_event["ts_ms"]))
                update = apply_order_event(
                    OrderState.from_json(raw) if raw else None, order_event, source
                )
            except AlreadyApplied:
                rt.observe("orders", message.topic, started, None)
                continue
            except EventRejected as exc:
                if exc.reason is RejectReason.UNKNOWN_ID:
                    await park(source, order_event)
                else:
                    await rt.reject(message, exc)
                rt.observe("orders", message.topic, started, None)
                continue
            if update.rejected is not None:
                await rt.reject(message, update.rejected)
            await dead_letter_evicted(update.evicted)
            state = update.state
            if order_event["type"] == "order_created" and update.rejected is None:
                state = await adopt(state, message.partition)
            orders[key] = state.to_json()
            await expire_orphans(message.partition)
            rt.observe("orders", message.topic, started, int(order_event["ts_ms"]))

    async def on_assigned(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        index.reset()

    app.on_partitions_assigned.connect(cast(Any, on_assigned))
