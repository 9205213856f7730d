from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from rocksdict import Rdict

from features.offline import (
    EventLogError,
    build_training_rows,
    load_event_log,
    read_event_log,
    replay_log,
    replay_order_rows,
    write_event_log,
)
from features.store import OnlineFeatureStore
from features.synthetic import generate_event_log
from tests.unit.features.test_from_contracts import to_contract


def test_online_rocksdb_features_equal_offline_rows(tmp_path: Path) -> None:
    """One event log through the RocksDB store and the offline builder gives equal features."""
    events = generate_event_log(np.random.default_rng(7))
    log = tmp_path / "events.jsonl"
    write_event_log(log, events)
    offline = build_training_rows(log)
    db = Rdict(str(tmp_path / "state"))
    try:
        store = OnlineFeatureStore(cast(MutableMapping[bytes, bytes], db))
        worker_events = map(as_positions_carry, read_event_log(log))
        online = [row for _, row in replay_order_rows(worker_events, store)]
    finally:
        db.close()
    assert len(online) == len(offline) > 0
    for on, off in zip(online, offline, strict=True):
        assert {k: off[k] for k in on} == approx_row(on)
    assert any(r["merchant_prep_2h@level"] == "entity" for r in offline)


def as_positions_carry(event: dict[str, Any]) -> dict[str, Any]:
    """`event` as the worker's online features get it: ping speeds in float32 (positions)."""
    if event["type"] != "courier_ping" or event.get("speed_mps") is None:
        return event
    return event | {"speed_mps": float(np.float32(event["speed_mps"]))}


def approx_row(row: dict[str, Any]) -> dict[str, Any]:
    """`row` with its floats compared up to the rounding of windowed sums (pings in bulk)."""
    return {k: pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for k, v in row.items()}


def test_offline_rows_carry_labels_from_later_events(tmp_path: Path) -> None:
    """prep_s and total_s equal the times between the order's own events."""
    events = generate_event_log(np.random.default_rng(8), n_orders=20)
    log = tmp_path / "events.jsonl"
    write_event_log(log, events)
    rows = {r["order_id"]: r for r in build_training_rows(log)}
    for e in events:
        if e["type"] == "merchant_ready":
            row = rows[e["order_id"]]
            assert row["prep_s"] == (e["ts_ms"] - row["created_ts_ms"]) / 1000.0


def test_bad_log_line_names_its_line_number(tmp_path: Path) -> None:
    """A malformed line raises EventLogError with the line number."""
    log = tmp_path / "bad.jsonl"
    log.write_text('{"type": "courier_ping"}\n')
    with pytest.raises(EventLogError, match=":1:"):
        read_event_log(log)


def test_a_travel_leg_runs_from_the_courier_s_last_departure_to_its_arrival(tmp_path: Path) -> None:
    """Each leg's duration is its arrival's time minus the courier's last departure before it."""
    events = generate_event_log(np.random.default_rng(9), n_orders=30)
    log = tmp_path / "events.jsonl"
    write_event_log(log, events)
    rows = replay_log(load_event_log(log))
    arrivals = {(e["order_id"], e["stop"]): e["ts_ms"] for e in events if e["type"] == "arrived"}
    assert rows.legs
    for leg in rows.legs:
        arrived = arrivals[(leg["order_id"], leg["stop"])]
        assert leg["duration_s"] == (arrived - leg["depart_ts_ms"]) / 1000.0
        assert leg["zone_speed_mps@level"] in ("entity", "city", "global", "missing")


def test_a_dropoff_leg_leaves_from_the_merchant(tmp_path: Path) -> None:
    """A courier's leg to a customer right after its pickup starts at the order's merchant."""
    events = generate_event_log(np.random.default_rng(10), n_orders=30)
    log = tmp_path / "events.jsonl"
    write_event_log(log, events)
    rows = replay_log(load_event_log(log))
    orders = {r["order_id"]: r for r in rows.orders}
    picked = {e["order_id"]: e["ts_ms"] for e in events if e["type"] == "picked_up"}
    direct = [leg for leg in rows.legs if leg["depart_ts_ms"] == picked.get(leg["order_id"])]
    assert direct
    for leg in direct:
        order = orders[leg["order_id"]]
        assert (leg["origin_lat"], leg["origin_lon"]) == (order["pickup_lat"], order["pickup_lon"])


def test_contract_records_replay_like_their_feature_events(tmp_path: Path) -> None:
    """A log of logged contract records gives the rows of the same events in feature form."""
    events = generate_event_log(np.random.default_rng(11), n_orders=20)
    shard = "dr5r"
    contracts = [c for e in events if (c := to_contract(e, shard)) is not None]
    feature_log, contract_log = tmp_path / "f.jsonl", tmp_path / "c.jsonl"
    write_event_log(feature_log, events)
    write_event_log(contract_log, contracts)
    from_contracts, from_features = (
        build_training_rows(contract_log),
        build_training_rows(feature_log),
    )
    assert from_contracts == [approx_row(r) for r in from_features]


def test_invalid_and_repeated_contract_records_are_skipped_and_counted(tmp_path: Path) -> None:
    """A record breaking its schema and a second copy of an event id are counted, not used."""
    created = {
        "event_id": "e1",
        "type": "order_created",
        "v": 1,
        "ts_ms": 1_700_000_000_000,
        "order_id": "o1",
        "merchant_id": "m1",
        "shard": "dr5r",
        "pickup": {"lat": 40.75, "lon": -73.98},
        "dropoff": {"lat": 40.76, "lon": -73.97},
    }
    log = tmp_path / "c.jsonl"
    write_event_log(log, [created, created, {**created, "event_id": "e2", "pickup": {}}])
    rows = replay_log(load_event_log(log))
    assert len(rows.orders) == 1
    assert rows.skipped == {"schema_invalid": 1, "duplicate_event": 1}
