"""The read model's orders: state from milestones and decisions, whatever the read order."""

from __future__ import annotations

import random
from typing import Any

from console.model import OpsModel
from tests.unit.console.events import (
    MIN,
    SHARD,
    T0,
    S,
    committed,
    created,
    eta_update,
    event,
    feed,
    milestone,
    proposed,
    reject,
    released,
)


def _committed_to_c1(*later: dict[str, Any]) -> OpsModel:
    """A model that read o1's creation, decision d1 proposing and committing it to c1, `later`."""
    model = OpsModel()
    feed(
        model,
        created("o1"),
        proposed("d1", ["o1"], "c1", T0 + S),
        committed("d1", ["o1"], "c1", T0 + 2 * S),
        *later,
    )
    return model


def test_a_created_order_is_open_at_its_points() -> None:
    """`order_created` makes an open order with its merchant, pickup, drop-off and promise."""
    model = OpsModel()
    feed(model, created("o1", T0, merchant_id="m7", promise_ts_ms=T0 + 30 * MIN))
    s = model.summary("o1")
    assert s is not None
    assert (s.state, s.merchant_id, s.promise_ts_ms, s.courier_id) == (
        "open",
        "m7",
        T0 + 30 * MIN,
        None,
    )


def test_a_proposal_offers_the_order_to_its_courier() -> None:
    """A pending proposal makes the order `offered` to the proposed courier."""
    model = OpsModel()
    feed(model, created("o1"), proposed("d1", ["o1"], "c1", T0 + S))
    s = model.summary("o1")
    assert s is not None and (s.state, s.courier_id, s.decision_id) == ("offered", "c1", "d1")


def test_a_commitment_assigns_the_order() -> None:
    """A commitment after the proposal makes the order `assigned` to that courier."""
    s = _committed_to_c1().summary("o1")
    assert s is not None and (s.state, s.courier_id) == ("assigned", "c1")


def test_a_release_returns_a_committed_order_to_open() -> None:
    """A release of the live decision leaves the order open, without a courier."""
    s = _committed_to_c1(released("d1", ["o1"], "c1", T0 + 3 * S, "courier_offline")).summary("o1")
    assert s is not None and (s.state, s.courier_id) == ("open", None)


def test_an_expired_order_ends_with_its_reason() -> None:
    """`order_expired` ends the order as `expired`, with the reason it gives."""
    model = OpsModel()
    expired = event("order_expired", T0 + 9 * MIN, order_id="o1", shard=SHARD, reason="max_age")
    feed(model, created("o1"), expired)
    s = model.summary("o1")
    assert s is not None and (s.state, s.end_reason, s.ended) == ("expired", "max_age", True)


def test_a_delivered_order_names_the_courier_that_delivered_it() -> None:
    """Delivery ends the order; `delivered_by` is the delivering courier, `courier_id` is None."""
    model = OpsModel()
    feed(
        model,
        created("o1"),
        committed("d1", ["o1"], "c1", T0 + S),
        milestone("delivery_delivered", "o1", T0 + 20 * MIN, courier_id="c1"),
    )
    s = model.summary("o1")
    assert s is not None and (s.state, s.delivered_by, s.courier_id) == ("delivered", "c1", None)


def test_the_state_does_not_depend_on_the_read_order() -> None:
    """Any permutation of an order's events yields the same summary."""
    events = [
        created("o1"),
        proposed("d1", ["o1"], "c1", T0 + S),
        released("d1", ["o1"], "c1", T0 + 31 * S, "lease_expired"),
        proposed("d2", ["o1"], "c2", T0 + 40 * S),
        committed("d2", ["o1"], "c2", T0 + 41 * S),
        milestone("order_ready", "o1", T0 + 8 * MIN, merchant_id="m1"),
        milestone("delivery_picked_up", "o1", T0 + 9 * MIN, courier_id="c2"),
        eta_update("o1", T0 + 41 * S, T0 + 20 * MIN, T0 + 25 * MIN),
    ]
    reference = OpsModel()
    feed(reference, *events)
    rng = random.Random(5)
    for _ in range(20):
        shuffled = events[:]
        rng.shuffle(shuffled)
        model = OpsModel()
        feed(model, *shuffled)
        assert model.summary("o1") == reference.summary("o1")


def test_events_read_before_the_creation_wait_for_it() -> None:
    """An order is unknown until its creation is read; then its earlier-read events count."""
    model = OpsModel()
    feed(model, committed("d1", ["o1"], "c1", T0 + S))
    assert model.summary("o1") is None and model.summaries() == []
    feed(model, created("o1"))
    s = model.summary("o1")
    assert s is not None and s.state == "assigned"


def test_a_dead_lettered_input_record_no_longer_counts() -> None:
    """A delivery the worker rejected (dead letter read) does not end the cancelled order."""
    model = OpsModel()
    feed(model, created("o1"), milestone("order_cancelled", "o1", T0 + S, reason="customer"))
    (offset,) = feed(model, milestone("delivery_delivered", "o1", T0 + 2 * S, courier_id="c1"))
    reject(model, "delivery_events", offset, "invalid_transition")
    s = model.summary("o1")
    assert s is not None and (s.state, s.end_reason) == ("cancelled", "customer")


def test_a_rejected_duplicate_creation_leaves_the_first_one() -> None:
    """A second record of the same creation, dead-lettered as a duplicate, hides nothing."""
    model = OpsModel()
    first = created("o1")
    feed(model, first)
    (offset,) = feed(model, dict(first))
    reject(model, "order_events", offset, "duplicate_event")
    assert model.summary("o1") is not None


def test_a_repeated_decision_event_is_kept_once() -> None:
    """The same output event read twice (at-least-once delivery) appears once in the history."""
    model = OpsModel()
    proposal = proposed("d1", ["o1"], "c1", T0 + S)
    feed(model, created("o1"), proposal, proposal)
    assert len(model.orders["o1"].history()) == 1


def test_a_committed_order_is_predicted_late_from_its_newest_eta_update() -> None:
    """Predicted lateness is the newest ETA update's p90 minus the promise, in minutes."""
    model = OpsModel()
    feed(
        model,
        created("o1", promise_ts_ms=T0 + 30 * MIN),
        committed("d1", ["o1"], "c1", T0 + S),
        eta_update("o1", T0 + 2 * S, T0 + 25 * MIN, T0 + 36 * MIN),
        eta_update("o1", T0 + 3 * S, T0 + 26 * MIN, T0 + 34 * MIN),
    )
    s = model.summary("o1")
    assert s is not None and s.predicted_lateness_min == 4.0


def test_an_offered_order_takes_its_eta_from_the_proposal() -> None:
    """A pending proposal's drop-off quantiles (seconds from the decision) are the order's ETA."""
    model = OpsModel()
    feed(model, created("o1"), proposed("d1", ["o1"], "c1", T0, p50_s=600.0, p90_s=900.0))
    s = model.summary("o1")
    assert s is not None and (s.eta_p50_ts_ms, s.eta_p90_ts_ms) == (T0 + 600_000, T0 + 900_000)


def test_a_released_order_has_no_eta() -> None:
    """Once its decision is released an order has no courier, hence no ETA."""
    model = OpsModel()
    feed(
        model,
        created("o1"),
        proposed("d1", ["o1"], "c1", T0),
        released("d1", ["o1"], "c1", T0 + 30 * S, "declined"),
    )
    s = model.summary("o1")
    assert s is not None and (s.eta_p90_ts_ms, s.predicted_lateness_min) == (None, None)


def test_the_clock_follows_worker_outputs_not_inputs() -> None:
    """An input event with a far-future time does not move the clock; a worker output does."""
    model = OpsModel()
    feed(model, created("o1", T0 + 10_000 * MIN))
    assert model.clock_ms == 0
    feed(model, proposed("d1", ["o1"], "c1", T0 + S))
    assert model.clock_ms == T0 + S


def test_eviction_forgets_orders_ended_before_the_retention() -> None:
    """Orders ended longer ago than the retention are forgotten; live ones stay."""
    model = OpsModel(retention_ms=10 * MIN)
    feed(
        model,
        created("old"),
        milestone("order_cancelled", "old", T0 + S, reason="customer"),
        created("live", T0 + 30 * MIN),
        proposed("d1", ["live"], "c1", T0 + 31 * MIN),
    )
    model.evict()
    assert set(model.orders) == {"live"}
