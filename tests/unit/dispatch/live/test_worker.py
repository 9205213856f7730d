"""The worker core: hostile records are refused with a reason, and nothing stops it but state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from contracts.dead_letters import DeadLetter
from contracts.pings import PingColumns
from contracts.positions import encode_position_batch
from contracts.rejections import EventRejected, PartRejected, RejectReason
from contracts.tracing import TRACEPARENT_HEADER
from dispatch.lifecycle import OrderState
from dispatch.live.effects import Effects
from dispatch.live.eta import LegPrediction
from dispatch.live.kv import KV, StateError
from dispatch.live.outputs import left_tombstone
from dispatch.live.worker import WorkerConfig
from tests.unit.dispatch.live.core_world import (
    LON,
    SHARD,
    T0,
    TRACEPARENT,
    CoreWorld,
    batch,
    created,
    event,
    fix,
    online,
)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[CoreWorld]:
    """A fresh worker core."""
    w = CoreWorld(tmp_path)
    yield w
    w.close()


def reasons(effects: Effects) -> list[RejectReason]:
    """The reasons of every rejection, in order."""
    return [error.reason for _, error in effects.rejections]


# ------------------------------------------------------------------ the four crash classes
def test_a_record_near_the_broker_limit_is_refused_as_too_large(world: CoreWorld) -> None:
    """An order event with a 1 MB string field is `record_too_large`; its letter fits 1 MiB."""
    huge = {**created("o1"), "merchant_id": "m" * 1_000_000}
    effects = world.feed("order_events", SHARD.encode(), huge)
    assert reasons(effects) == [RejectReason.RECORD_TOO_LARGE]
    source, error = effects.rejections[0]
    letter = DeadLetter("order_events", 0, 0, source.key, source.value, error.reason, "")
    assert len(letter.record().value or b"") < 1_048_576


def test_a_fix_nested_hundreds_deep_is_refused_alone(world: CoreWorld) -> None:
    """A fix nested 300 levels deep is refused as `too_deep`; its neighbour is applied."""
    deep = b"[" * 300 + b"1" + b"]" * 300
    bad_fix = b'{"courier_id": "c2", "lat": ' + deep + b', "lon": 0, "ts_ms": %d}' % T0
    good = orjson.dumps(batch("b1", [fix("c1")]))
    value = good.replace(b"]}", b"," + bad_fix + b"]}")
    effects = world.feed("courier_pings", b"gw", value)
    assert reasons(effects) == [RejectReason.TOO_DEEP]
    assert [o.topic for o in effects.outputs] == ["courier_positions"]


def test_a_fix_time_beyond_64_bits_is_refused_alone(world: CoreWorld) -> None:
    """A fix with `ts_ms` = 2^63 is `number_out_of_range`; the batch's other fix is applied."""
    value = batch("b1", [fix("c1"), fix("c2", ts_ms=2**63)])
    effects = world.feed("courier_pings", b"gw", value)
    assert reasons(effects) == [RejectReason.NUMBER_OUT_OF_RANGE]
    assert world.telemetry.counts["pings"] == 1


def test_a_control_with_a_megabyte_weight_name_is_refused(world: CoreWorld) -> None:
    """A `dispatch_control` whose weight name is about 1 MB never reaches the state."""
    control = event(
        "dispatch_control", "ctl-1", shard=SHARD, policy_version="p1", weights={"w_" * 500_000: 1}
    )
    effects = world.feed("dispatch_control", SHARD.encode(), control)
    assert reasons(effects) == [RejectReason.RECORD_TOO_LARGE]
    assert world.stores.shard.controls.get(SHARD) is None


def test_a_control_with_an_overlong_weight_name_is_schema_invalid(world: CoreWorld) -> None:
    """Within the size limit, a weight name longer than the schema allows is `schema_invalid`."""
    control = event(
        "dispatch_control", "ctl-1", shard=SHARD, policy_version="p1", weights={"w_" + "a" * 99: 1}
    )
    effects = world.feed("dispatch_control", SHARD.encode(), control)
    assert reasons(effects) == [RejectReason.SCHEMA_INVALID]


# ------------------------------------------------------------------ records that must not pass
def test_an_event_id_reused_by_another_order_is_a_duplicate(world: CoreWorld) -> None:
    """Order o2 created with o1's event id is `duplicate_event`; o2 does not exist."""
    world.feed("order_events", SHARD.encode(), created("o1", "e1"))
    effects = world.feed("order_events", SHARD.encode(), created("o2", "e1"))
    assert reasons(effects) == [RejectReason.DUPLICATE_EVENT]
    assert world.stores.shard.orders.get("o2") is None


def test_an_event_id_reused_on_another_topic_is_a_duplicate(world: CoreWorld) -> None:
    """A `merchant_accepted` reusing an `order_created` id is `duplicate_event`."""
    world.feed("order_events", SHARD.encode(), created("o1", "e1"))
    accepted = event("merchant_accepted", "e1", order_id="o1", merchant_id="m1", shard=SHARD)
    effects = world.feed("merchant_ready", SHARD.encode(), accepted)
    assert reasons(effects) == [RejectReason.DUPLICATE_EVENT]


def test_an_event_id_reused_by_another_courier_is_a_duplicate(world: CoreWorld) -> None:
    """Courier c2 coming online with c1's event id is `duplicate_event`."""
    world.feed("courier_events", b"c1", online("c1", "e1"))
    effects = world.feed("courier_events", b"c2", online("c2", "e1"))
    assert reasons(effects) == [RejectReason.DUPLICATE_EVENT]


def test_the_same_record_read_again_is_not_a_duplicate(world: CoreWorld) -> None:
    """A redelivered record (same offset) is skipped quietly, not refused."""
    world.feed("order_events", SHARD.encode(), created("o1", "e1"), offset=5)
    effects = world.feed("order_events", SHARD.encode(), created("o1", "e1"), offset=5)
    assert effects.rejections == []


def test_reused_ids_of_live_orders_are_caught_after_a_rebalance(world: CoreWorld) -> None:
    """After a reset the index is refilled from the orders' state: reuse is still refused."""
    world.feed("order_events", SHARD.encode(), created("o1", "e1"))
    world.core.reset(generation=2)
    effects = world.feed("order_events", SHARD.encode(), created("o2", "e1"))
    assert reasons(effects) == [RejectReason.DUPLICATE_EVENT]


def test_a_null_where_the_schema_forbids_it_is_refused(world: CoreWorld) -> None:
    """A fix with `"accuracy_m": null` is `schema_invalid`; the batch's other fix is applied."""
    value = batch("b1", [fix("c1", accuracy_m=5.0), fix("c2", accuracy_m=None)])
    effects = world.feed("courier_pings", b"gw", value)
    assert reasons(effects) == [RejectReason.SCHEMA_INVALID]
    assert world.telemetry.counts["pings"] == 1


def test_a_record_without_a_value_is_undecodable(world: CoreWorld) -> None:
    """A null record value on an input topic is `undecodable`."""
    assert reasons(world.feed("order_events", SHARD.encode(), None)) == [RejectReason.UNDECODABLE]


def test_an_order_accepts_at_most_its_event_limit(world: CoreWorld) -> None:
    """Beyond 32 events, more events of one order are `too_many_events`."""
    world.feed("order_events", SHARD.encode(), created("o1"))
    outcomes = []
    for i in range(40):
        arrived = event(
            "delivery_arrived", f"a{i}", T0 + i, order_id="o1", courier_id="c1", shard=SHARD
        )
        arrived["stop"] = "pickup"
        outcomes.extend(reasons(world.feed("delivery_events", SHARD.encode(), arrived)))
    assert outcomes == [RejectReason.TOO_MANY_EVENTS] * 8


# ------------------------------------------------------------------ what a dead letter carries
def test_a_courier_event_rejection_keeps_key_value_and_trace(world: CoreWorld) -> None:
    """A refused `courier_events` record is dead-lettered with its own key, value and headers."""
    bad = orjson.dumps({**online("c1"), "capacity": -1})
    headers = ((TRACEPARENT_HEADER, TRACEPARENT), ("app", b"courier"))
    effects = world.feed("courier_events", b"c1", bad, headers=headers)
    source, _ = effects.rejections[0]
    assert (source.key, source.value, source.headers) == (b"c1", bad, headers)


def test_a_ping_record_with_headers_past_their_limit_is_too_large(world: CoreWorld) -> None:
    """A valid ping batch whose headers exceed 16 KiB is refused whole, nothing applied."""
    headers = (("x-big", b"h" * 17_000),)
    effects = world.feed("courier_pings", b"gw", batch("b1", [fix("c1")]), headers=headers)
    assert reasons(effects) == [RejectReason.RECORD_TOO_LARGE]
    assert effects.outputs == []


def test_a_rejected_fix_keeps_the_batch_s_headers(world: CoreWorld) -> None:
    """A per-fix rejection carries the batch record's headers, `traceparent` included."""
    headers = ((TRACEPARENT_HEADER, TRACEPARENT),)
    effects = world.feed(
        "courier_pings", b"gw", batch("b1", [fix("c1", lat=99.0)]), headers=headers
    )
    source, error = effects.rejections[0]
    assert source.headers == headers
    assert isinstance(error, PartRejected) and error.index == 0


# ------------------------------------------------------------------ the guard
class BrokenModel:
    """A leg predictor that fails: an error no input can be blamed for."""

    version = "broken"

    def predict(self, *args: Any, **kwargs: Any) -> LegPrediction:
        """Fail."""
        raise ZeroDivisionError("model exploded")


def test_an_unexpected_error_becomes_an_internal_error_dead_letter(tmp_path: Path) -> None:
    """A tick whose model raises is dead-lettered as `internal_error` with the exception named."""
    w = CoreWorld(tmp_path, predictor=BrokenModel())
    w.feed("order_events", SHARD.encode(), created("o1"))
    for output in w.feed("courier_pings", b"gw", batch("b1", [fix("c1")])).outputs:
        w.feed(output.topic, output.key, output.value)
    w.feed("courier_state_updates", SHARD.encode(), _arrived("c1"))
    effects = w.feed("dispatch_ticks", SHARD.encode(), event("dispatch_tick", "t1", shard=SHARD))
    w.close()
    assert reasons(effects) == [RejectReason.INTERNAL_ERROR]
    assert effects.rejections[0][1].exception == "ZeroDivisionError"
    assert w.telemetry.counts["internal_error:dispatch_ticks"] == 1


def test_positions_off_the_globe_are_refused_and_ticks_go_on(world: CoreWorld) -> None:
    """Positions holding a latitude off the globe are `undecodable`; later ticks stay clean."""
    world.feed("order_events", SHARD.encode(), created("o1"))
    world.feed("courier_events", b"c1", online("c1"))
    world.feed("courier_state_updates", SHARD.encode(), _arrived("c1"))
    n = 1
    columns = PingColumns(
        np.array(["c1"], dtype=object),
        np.array([123.0]),
        np.array([LON]),
        np.full(n, T0, dtype=np.int64),
        np.full(n, np.nan),
        np.full(n, np.nan),
        np.full(n, np.nan),
    )
    raw = encode_position_batch(SHARD, "pos-1", T0, columns)
    refused = world.feed("courier_positions", SHARD.encode(), raw)
    ticks = [  # the fifth tick counts idle couriers by zone for surge
        world.feed("dispatch_ticks", SHARD.encode(), event("dispatch_tick", f"t{i}", shard=SHARD))
        for i in range(5)
    ]
    assert reasons(refused) == [RejectReason.UNDECODABLE]
    assert [reasons(t) for t in ticks] == [[]] * 5


def test_the_workers_own_tombstone_is_applied_not_dead_lettered(world: CoreWorld) -> None:
    """A handoff's tombstone (coordinates NaN, as the worker writes it) is no bad record."""
    world.feed("courier_events", b"c1", online("c1"))
    world.feed("courier_state_updates", SHARD.encode(), _arrived("c1"))
    effects = world.feed("courier_positions", SHARD.encode(), left_tombstone(SHARD, "c1", T0))
    assert effects.rejections == []


def _arrived(courier_id: str) -> dict[str, Any]:
    fields = {
        "courier_id": courier_id,
        "shard": SHARD,
        "kind": "arrived",
        "status": "online",
        "capacity": 2,
        "vehicle": "bike",
        "shift_end_ts_ms": None,
        "status_ts_ms": T0,
        "epoch": 0,
        "from_shard": None,
        "to_shard": None,
    }
    return event("courier_state_update", f"state-{courier_id}", T0, **fields)


class FailingTable(dict[bytes, bytes]):
    """A table whose writes fail, as a store on a full or broken disk does."""

    def __setitem__(self, key: bytes, value: bytes) -> None:
        raise OSError("No space left on device")


def _broken_orders(world: CoreWorld) -> None:
    world.stores.shard.orders = KV(FailingTable(), OrderState.to_json, OrderState.from_json)
    world.core.engine.stores.orders = world.stores.shard.orders


def test_a_state_store_that_fails_stops_the_worker(world: CoreWorld) -> None:
    """A table write that fails is a `StateError`: it escapes, so the worker stops."""
    _broken_orders(world)
    with pytest.raises(StateError):
        world.feed("order_events", SHARD.encode(), created("o1"))


def test_on_its_last_chance_a_record_is_dead_lettered_instead(world: CoreWorld) -> None:
    """With `last_chance`, even a failing store makes the record an `internal_error` letter."""
    _broken_orders(world)
    record = world.record("order_events", SHARD.encode(), created("o1"))
    effects = world.core.handle(record, last_chance=True)
    assert reasons(effects) == [RejectReason.INTERNAL_ERROR]


def test_a_positions_record_that_is_not_a_batch_is_undecodable(world: CoreWorld) -> None:
    """Garbage on the internal positions topic is `undecodable`, not a crash."""
    effects = world.feed("courier_positions", SHARD.encode(), b"DFPB1\xff\xff\xff\xff{")
    assert reasons(effects) == [RejectReason.UNDECODABLE]


def test_an_internal_record_that_breaks_its_schema_is_refused(world: CoreWorld) -> None:
    """A tick without a shard is `schema_invalid`."""
    tick = event("dispatch_tick", "t1")
    assert reasons(world.feed("dispatch_ticks", SHARD.encode(), tick)) == [
        RejectReason.SCHEMA_INVALID
    ]


def test_every_rejection_names_a_known_reason(world: CoreWorld) -> None:
    """Rejections are `EventRejected` with one of the documented reasons."""
    effects = world.feed("order_events", SHARD.encode(), b"\x00")
    assert all(
        isinstance(e, EventRejected) and e.reason in RejectReason for _, e in effects.rejections
    )


def test_a_batch_fix_with_an_id_holding_a_newline_is_refused(world: CoreWorld) -> None:
    """A courier id with a newline (which would split into two ids) is `schema_invalid`."""
    effects = world.feed("courier_pings", b"gw", batch("b1", [fix("c1\nc2")]))
    assert reasons(effects) == [RejectReason.SCHEMA_INVALID]
    assert not np.any([o.topic == "courier_positions" for o in effects.outputs])


def test_a_small_config_limit_applies(tmp_path: Path) -> None:
    """The event size limit comes from the configuration."""
    from contracts.limits import DecodeLimits

    w = CoreWorld(tmp_path, WorkerConfig(event_limits=DecodeLimits(max_record_bytes=100)))
    effects = w.feed("order_events", SHARD.encode(), created("o1"))
    w.close()
    assert reasons(effects) == [RejectReason.RECORD_TOO_LARGE]


def test_an_event_for_an_order_that_never_comes_expires_by_ticks_alone(world: CoreWorld) -> None:
    """On a partition with no more order events, ticks dead-letter the orphan after its ttl."""
    ready = event("order_ready", "r9", order_id="o9", merchant_id="m1", shard=SHARD)
    assert reasons(world.feed("merchant_ready", SHARD.encode(), ready)) == []
    assert world.core.engine.shards() == [SHARD]
    ttl_ms = int(world.core.config.engine.orphan_ttl_s * 1000)
    first = world.feed("dispatch_ticks", SHARD.encode(), _tick(T0))
    early = world.feed("dispatch_ticks", SHARD.encode(), _tick(T0 + ttl_ms - 1))
    due = world.feed("dispatch_ticks", SHARD.encode(), _tick(T0 + ttl_ms))
    assert (reasons(first), reasons(early)) == ([], [])
    assert reasons(due) == [RejectReason.UNKNOWN_ID]
    assert due.rejections[0][0].value == orjson.dumps(ready)


def _tick(ts_ms: int) -> dict[str, Any]:
    return event("dispatch_tick", f"tick-{ts_ms}", ts_ms, shard=SHARD)


def test_a_rebalance_does_not_restart_an_orphan_s_wait(world: CoreWorld) -> None:
    """An orphan parked before a rebalance expires `ttl` of ticks after it was parked."""
    ready = event("order_ready", "r9", order_id="o9", merchant_id="m1", shard=SHARD)
    ttl_ms = int(world.core.config.engine.orphan_ttl_s * 1000)
    world.feed("dispatch_ticks", SHARD.encode(), _tick(T0))
    assert reasons(world.feed("merchant_ready", SHARD.encode(), ready)) == []
    world.core.engine.state.reset()  # what a rebalance does to the worker's indices
    world.feed("dispatch_ticks", SHARD.encode(), _tick(T0 + ttl_ms - 1))
    due = world.feed("dispatch_ticks", SHARD.encode(), _tick(T0 + ttl_ms))
    assert reasons(due) == [RejectReason.UNKNOWN_ID]


def _expire_one_orphan(world: CoreWorld) -> tuple[dict[str, object], int, Effects]:
    """Park an event for an order that never comes; expire it with a tick at offset 1.

    Returns the parked event, the orphan ttl and that tick's effects.
    """
    ready = event("order_ready", "r9", order_id="o9", merchant_id="m1", shard=SHARD)
    ttl_ms = int(world.core.config.engine.orphan_ttl_s * 1000)
    world.feed("dispatch_ticks", SHARD.encode(), _tick(T0), offset=0)
    world.feed("merchant_ready", SHARD.encode(), ready)
    expiry = world.feed("dispatch_ticks", SHARD.encode(), _tick(T0 + ttl_ms), offset=1)
    return ready, ttl_ms, expiry


def test_a_tick_handled_again_after_a_crash_sends_its_orphan_letters_again(
    world: CoreWorld,
) -> None:
    """The letters of an expiry lost with a crash are sent when its tick is read again."""
    ready, ttl_ms, first = _expire_one_orphan(world)
    world.core.engine.state.reset()  # the restart: indices rebuilt from the tables
    again = world.feed("dispatch_ticks", SHARD.encode(), _tick(T0 + ttl_ms), offset=1)
    assert reasons(first) == reasons(again) == [RejectReason.UNKNOWN_ID]
    assert again.rejections[0][0].value == orjson.dumps(ready)


def test_a_later_tick_does_not_send_an_orphan_letter_again(world: CoreWorld) -> None:
    """Only the record that expired the orphans resends their letters."""
    _, ttl_ms, _ = _expire_one_orphan(world)
    later = world.feed("dispatch_ticks", SHARD.encode(), _tick(T0 + ttl_ms + 1), offset=2)
    assert reasons(later) == []


def test_an_orphan_tombstone_is_deleted_a_ttl_after_its_expiry(world: CoreWorld) -> None:
    """Tombstones do not pile up: one ttl after the expiry the orphans are gone."""
    _, ttl_ms, _ = _expire_one_orphan(world)
    assert world.core.engine.state.orphans("o9") is not None
    world.feed("dispatch_ticks", SHARD.encode(), _tick(T0 + 2 * ttl_ms), offset=2)
    assert world.core.engine.state.orphans("o9") is None
