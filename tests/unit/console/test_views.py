"""The map's view and the reader's decoding of raw records, without Kafka."""

from __future__ import annotations

import numpy as np
import orjson

from console.model import OpsModel
from console.reader import TopicReader, wanted
from console.views import map_view, orders_view
from contracts.dead_letters import DeadLetter
from contracts.pings import PingColumns
from contracts.positions import encode_position_batch
from tests.unit.console.events import (
    DROPOFF,
    PICKUP,
    SHARD,
    T0,
    S,
    created,
    feed,
    milestone,
    proposed,
    state_update,
)


def _reader(model: OpsModel | None = None) -> TopicReader:
    """A reader that is never started: only its decoding is used."""
    return TopicReader({"bootstrap_servers": "127.0.0.1:1"}, model or OpsModel())


def test_the_map_draws_online_couriers_with_a_position_and_live_orders() -> None:
    """Offline couriers, couriers without a fix and ended orders are not on the map."""
    model = OpsModel()
    feed(
        model,
        state_update("on", T0),
        state_update("off", T0, status="offline"),
        state_update("nofix", T0),
        created("live"),
        created("done"),
        milestone("order_cancelled", "done", T0 + S, reason="customer"),
        proposed("d1", ["live"], "on", T0 + S),
    )
    for courier_id in ("on", "off"):
        columns = PingColumns(
            courier_id=np.array([courier_id], dtype=object),
            lat=np.array([PICKUP[0]]),
            lon=np.array([PICKUP[1]]),
            ts_ms=np.array([T0], dtype=np.int64),
            speed_mps=np.array([np.nan]),
            heading_deg=np.array([np.nan]),
            accuracy_m=np.array([np.nan]),
        )
        raw = encode_position_batch(SHARD, f"b-{courier_id}", T0, columns)
        _reader(model).apply("courier_positions", 0, 0, T0, SHARD.encode(), raw, ())
    view = map_view(model)
    assert [c["courier_id"] for c in view["couriers"]] == ["on"]
    assert [o["order_id"] for o in view["orders"]] == ["live"]


def test_map_points_are_metres_from_the_centre_of_their_bounding_box() -> None:
    """Pickup and drop-off lie symmetric about the origin, about 1.4 km apart."""
    model = OpsModel()
    feed(model, created("o1"))
    (order,) = map_view(model)["orders"]
    assert order["pickup_x_m"] == -order["dropoff_x_m"]
    assert order["pickup_y_m"] == -order["dropoff_y_m"]
    span_m = np.hypot(
        order["dropoff_x_m"] - order["pickup_x_m"], order["dropoff_y_m"] - order["pickup_y_m"]
    )
    assert 1300 < span_m < 1500 and DROPOFF[0] > PICKUP[0]


def test_records_that_are_not_valid_events_are_skipped_and_counted() -> None:
    """Undecodable and schema-breaking records change nothing and are counted by reason."""
    reader = _reader()
    reader.apply("order_events", 0, 0, T0, b"k", b"{not json", ())
    reader.apply("order_events", 0, 1, T0, b"k", orjson.dumps({"type": "order_created"}), ())
    assert reader.model.orders == {}
    assert reader.skipped == {"order_events: undecodable": 1, "order_events: schema_invalid": 1}


def test_a_dead_letter_record_reaches_the_tally_with_its_message() -> None:
    """A `*_dlq` record is read as a dead letter, reason and message from its headers."""
    reader = _reader()
    letter = DeadLetter("order_events", 2, 7, b"k", b"{bad", "undecodable", "not JSON: x")
    reader.apply(letter.topic, 2, 0, T0, letter.key, letter.value, tuple(letter.record().headers))
    (seen,) = reader.model.dead_letters.latest
    assert (seen.reason, seen.message, seen.value) == ("undecodable", "not JSON: x", "{bad")


def test_the_reader_takes_the_listed_topics_and_every_dead_letter_topic() -> None:
    """Of a cluster's topics it reads its own list and every `*_dlq` topic."""
    topics = ["order_events", "courier_pings", "x_dlq", "dispatch_ticks", "eta_updates"]
    assert wanted(topics) == ["eta_updates", "order_events", "x_dlq"]


def test_orders_can_be_listed_by_state_or_live() -> None:
    """`state=live` keeps orders not ended; a state name keeps only that state."""
    model = OpsModel()
    feed(
        model,
        created("a"),
        created("b"),
        milestone("order_cancelled", "b", T0 + S, reason="customer"),
    )
    assert [o["order_id"] for o in orders_view(model, "live")["orders"]] == ["a"]
    assert [o["order_id"] for o in orders_view(model, "cancelled")["orders"]] == ["b"]
