"""ETA updates of committed orders: what customers' tracking reads from `eta_updates`.

An order's announced drop-off is its stop on its courier's route: the planned time (never
before now) as p50, and the stop's p90 plus the calibrator's margin (never below the p50) as
p90. One is sent at commit; then, on every `eta_update_every_ticks`-th tick, for each committed
order whose p50 moved by at least `eta_update_min_change_s` or that went `eta_refresh_s`
without one. Ids are `eta:<order>:<time>`, one per order and tick.
"""

from __future__ import annotations

from dataclasses import replace

from dispatch.live.effects import Effects
from dispatch.live.engine_config import EngineConfig
from dispatch.live.outputs import eta_event, order_trace
from dispatch.live.records import Phase, RouteStop
from dispatch.live.state import ShardState
from dispatch.live.topic_names import ETA_UPDATES


def dropoff_eta(stop: RouteStop, now_ms: int, margin_ms: int) -> tuple[int, int]:
    """The announced (p50, p90) drop-off times of an order dropped at `stop`, epoch ms."""
    p50 = max(now_ms, stop.planned_ts_ms)
    return p50, max(p50, stop.p90_ts_ms + margin_ms)


def eta_updates(
    state: ShardState,
    config: EngineConfig,
    shard: str,
    now_ms: int,
    margin_ms: int,
    model_version: str,
    effects: Effects,
) -> None:
    """An `eta_update` for each committed order whose ETA moved, or that was silent too long."""
    min_change_ms = int(config.eta_update_min_change_s * 1000)
    refresh_ms = int(config.eta_refresh_s * 1000)
    for order in state.live_orders(shard):
        if order.dispatch.phase is not Phase.COMMITTED or order.status.terminal:
            continue
        courier = state.courier(shard, order.dispatch.courier_id)
        route = courier.route if courier is not None else ()
        stop = next(
            (s for s in route if s.kind == "dropoff" and order.order_id in s.order_ids), None
        )
        if stop is None:
            continue
        p50, p90 = dropoff_eta(stop, now_ms, margin_ms)
        last = order.dispatch.eta_p50_ts_ms
        sent = order.dispatch.eta_sent_ts_ms
        moved = last is None or abs(last - p50) >= min_change_ms
        stale = sent is None or now_ms - sent >= refresh_ms
        if not (moved or stale):
            continue
        dispatch = replace(
            order.dispatch, eta_p50_ts_ms=p50, eta_p90_ts_ms=p90, eta_sent_ts_ms=now_ms
        )
        state.put_order(replace(order, dispatch=dispatch))
        eta = eta_event(order.order_id, shard, now_ms, p50, p90, model_version)
        effects.emit(ETA_UPDATES, shard, eta, order_trace(order, eta))
