import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.rejections import EventRejected, RejectReason
from dispatch.lifecycle import (
    AlreadyApplied,
    CourierStatus,
    OrderState,
    OrderStatus,
    Source,
    apply_courier_event,
    apply_order_event,
    apply_parked,
)

T0 = 1_795_000_000_000


def ev(kind: str, ts: int, event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """An order event of order o1 at T0 + ts seconds."""
    base: dict[str, Any] = {
        "event_id": event_id or f"{kind}-{ts}",
        "type": kind,
        "v": 1,
        "ts_ms": T0 + ts * 1000,
        "order_id": "o1",
        "shard": "dr5r",
    }
    if kind == "order_created":
        base.update(
            merchant_id="m1",
            pickup={"lat": 40.7, "lon": -73.9},
            dropoff={"lat": 40.71, "lon": -73.91},
        )
    if kind.startswith("delivery_"):
        base.setdefault("courier_id", "c1")
    if kind == "delivery_arrived":
        base.setdefault("stop", "pickup")
    if kind == "order_cancelled":
        base.setdefault("reason", "customer")
    if kind in ("merchant_accepted", "order_ready"):
        base.setdefault("merchant_id", "m1")
    base.update(fields)
    return base


def src(offset: int, topic: str = "order_events") -> Source:
    """A record source at `offset`."""
    return Source(topic, 0, offset, b"k", b"v")


def play(events: list[dict[str, Any]]) -> tuple[OrderState, list[str]]:
    """Apply events in the given order; return the final state and the ids of losing events."""
    state = apply_order_event(None, ev("order_created", 0), src(0)).state
    losers: list[str] = []
    for offset, event in enumerate(events, start=1):
        update = apply_order_event(state, event, src(offset, event["type"]))
        state = update.state
        if update.rejected is not None:
            losers.append(event["event_id"])
        losers.extend(e.event_id for e, _ in update.evicted)
    return state, sorted(losers)


def test_status_follows_the_furthest_milestone() -> None:
    """An order moves placed → accepted → ready → picked up → delivered."""
    state, losers = play(
        [ev("merchant_accepted", 30), ev("order_ready", 600), ev("delivery_picked_up", 700)]
    )
    assert (state.status, losers) == (OrderStatus.PICKED_UP, [])
    state, _ = play([ev("merchant_accepted", 30), ev("delivery_delivered", 900)])
    assert state.status is OrderStatus.DELIVERED


def test_a_late_earlier_event_fills_its_milestone_without_moving_status_back() -> None:
    """An `order_ready` arriving after the pickup keeps the order picked up and records ready."""
    state, _ = play([ev("delivery_picked_up", 700), ev("order_ready", 600)])
    assert state.status is OrderStatus.PICKED_UP
    assert state.ts("order_ready") == T0 + 600_000


CONFLICTS = [
    (
        "cancel before pickup",
        [ev("order_cancelled", 100), ev("delivery_picked_up", 200)],
        ["delivery_picked_up-200"],
        OrderStatus.CANCELLED,
    ),
    (
        "pickup before cancel",
        [ev("delivery_picked_up", 100), ev("order_cancelled", 200)],
        ["order_cancelled-200"],
        OrderStatus.PICKED_UP,
    ),
    (
        "delivered before cancel",
        [ev("delivery_delivered", 100), ev("order_cancelled", 200)],
        ["order_cancelled-200"],
        OrderStatus.DELIVERED,
    ),
    (
        "ready after cancel",
        [ev("order_cancelled", 100), ev("order_ready", 200)],
        ["order_ready-200"],
        OrderStatus.CANCELLED,
    ),
]


@pytest.mark.parametrize(
    ("name", "events", "expected_losers", "expected_status"),
    CONFLICTS,
    ids=[c[0] for c in CONFLICTS],
)
def test_conflicts_resolve_by_event_time_in_every_arrival_order(
    name: str,
    events: list[dict[str, Any]],
    expected_losers: list[str],
    expected_status: OrderStatus,
) -> None:
    """Whatever the arrival order, the event-time loser is rejected and the status is the same."""
    for order in itertools.permutations(events):
        state, losers = play(list(order))
        assert (state.status, losers) == (expected_status, expected_losers), order


kinds = st.sampled_from(
    [
        "merchant_accepted",
        "order_ready",
        "delivery_arrived",
        "delivery_picked_up",
        "delivery_delivered",
        "order_cancelled",
    ]
)


@settings(max_examples=300)
@given(
    st.lists(st.tuples(kinds, st.integers(1, 50)), min_size=1, max_size=7, unique_by=lambda x: x),
    st.randoms(),
)
def test_final_state_does_not_depend_on_arrival_order(
    spec: list[tuple[str, int]], rnd: Any
) -> None:
    """Any permutation of the same events ends in the same status, counting events and losers."""
    events = [ev(kind, ts) for kind, ts in spec]
    shuffled = list(events)
    rnd.shuffle(shuffled)
    a, reported_a = play(events)
    b, reported_b = play(shuffled)
    assert a.status == b.status
    assert sorted(e.event_id for e in a.events) == sorted(e.event_id for e in b.events)
    assert a.lost_event_ids == b.lost_event_ids
    assert a.lost_event_ids <= set(reported_a) and a.lost_event_ids <= set(reported_b)


def test_same_record_again_is_already_applied_not_a_duplicate() -> None:
    """Re-consuming the very same record (same offset) is skipped, not dead-lettered."""
    state = apply_order_event(None, ev("order_created", 0), src(0)).state
    state = apply_order_event(state, ev("order_ready", 10), src(1)).state
    with pytest.raises(AlreadyApplied):
        apply_order_event(state, ev("order_ready", 10), src(1))


def test_same_event_id_in_another_record_is_a_duplicate() -> None:
    """The same event id at another offset is rejected as a duplicate."""
    state = apply_order_event(None, ev("order_created", 0), src(0)).state
    state = apply_order_event(state, ev("order_ready", 10), src(1)).state
    update = apply_order_event(state, ev("order_ready", 10), src(2))
    assert update.rejected is not None and update.rejected.reason is RejectReason.DUPLICATE_EVENT


def test_creating_an_existing_order_twice_is_rejected() -> None:
    """A second order_created for the same id (another event id) is an invalid transition."""
    state = apply_order_event(None, ev("order_created", 0), src(0)).state
    update = apply_order_event(state, ev("order_created", 5, event_id="other"), src(1))
    assert update.rejected is not None and update.rejected.reason is RejectReason.INVALID_TRANSITION


def test_an_event_naming_another_shard_than_its_order_s_is_wrong_shard() -> None:
    """A cancel naming another shard than the order's is refused and changes nothing."""
    state = apply_order_event(None, ev("order_created", 0), src(0)).state
    update = apply_order_event(state, ev("order_cancelled", 10, shard="9q8y"), src(1))
    assert update.rejected is not None and update.rejected.reason is RejectReason.WRONG_SHARD
    assert update.state.status is state.status


def test_a_parked_event_naming_another_shard_is_wrong_shard_when_its_order_comes() -> None:
    """An event parked before its order, naming another shard, is refused on adoption."""
    state = apply_order_event(None, ev("order_created", 0), src(0)).state
    outcome = apply_parked(state, [(ev("order_cancelled", 10, shard="9q8y"), src(5))])
    assert [error.reason for _, error in outcome.rejected] == [RejectReason.WRONG_SHARD]
    assert outcome.state.status is state.status


def test_event_for_an_unknown_order_raises_unknown_id() -> None:
    """Events of an order that does not exist raise UNKNOWN_ID (the caller parks them)."""
    with pytest.raises(EventRejected) as info:
        apply_order_event(None, ev("order_ready", 10), src(1))
    assert info.value.reason is RejectReason.UNKNOWN_ID


def test_parked_events_apply_in_event_time_order() -> None:
    """Events parked before creation apply once it exists; conflicts resolve as usual."""
    state = apply_order_event(None, ev("order_created", 0), src(0)).state
    parked = [(ev("delivery_picked_up", 200), src(5)), (ev("order_cancelled", 100), src(6))]
    outcome = apply_parked(state, parked)
    assert outcome.state.status is OrderStatus.CANCELLED
    assert [i for i, _ in outcome.rejected] == [0]
    assert outcome.evicted == []


def test_parked_outcome_lists_the_accepted_events_in_application_order() -> None:
    """Accepted parked events are reported by index, earliest event time first."""
    state = apply_order_event(None, ev("order_created", 0), src(0)).state
    parked = [(ev("delivery_picked_up", 300), src(5)), (ev("order_ready", 100), src(6))]
    assert apply_parked(state, parked).accepted == [1, 0]


def test_state_survives_serialization() -> None:
    """An order state read back from its JSON equals the original."""
    state, _ = play([ev("merchant_accepted", 30), ev("order_cancelled", 40), ev("order_ready", 50)])
    assert OrderState.from_json(state.to_json()) == state


def courier(kind: str, ts: int, event_id: str, **fields: Any) -> dict[str, Any]:
    """A courier event of courier c1."""
    base: dict[str, Any] = {
        "event_id": event_id,
        "type": kind,
        "v": 1,
        "ts_ms": T0 + ts,
        "courier_id": "c1",
    }
    if kind == "courier_online":
        base.update(lat=40.7, lon=-73.9, capacity=2, vehicle="bike")
    base.update(fields)
    return base


def test_courier_status_is_last_writer_wins_by_event_time() -> None:
    """An offline stamped before the current online does not take the courier offline."""
    state = apply_courier_event(None, courier("courier_online", 100, "on"), "dr5r")
    later = apply_courier_event(state, courier("courier_offline", 50, "off"), "dr5r")
    assert later.status is CourierStatus.ONLINE
    assert (
        apply_courier_event(state, courier("courier_offline", 150, "off"), "dr5r").status
        is CourierStatus.OFFLINE
    )


def test_courier_events_before_online_are_unknown() -> None:
    """A capacity change for a courier never seen online is rejected as unknown."""
    with pytest.raises(EventRejected) as info:
        apply_courier_event(None, courier("courier_capacity", 1, "cap", capacity=3), None)
    assert info.value.reason is RejectReason.UNKNOWN_ID


def test_a_source_keeps_its_trace_context_through_its_stored_form() -> None:
    """`to_dict`/`from_dict` round-trips the record's traceparent."""
    traced = Source("order_events", 2, 7, b"k", b"v", "00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    assert Source.from_dict(traced.to_dict()) == traced


def test_a_source_stored_before_trace_contexts_loads_without_one() -> None:
    """A stored source without the traceparent field reads back with none."""
    stored = src(3).to_dict()
    del stored["traceparent"]
    assert Source.from_dict(stored) == src(3)
