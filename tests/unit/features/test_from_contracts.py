from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.geo import encode as geohash_encode
from contracts.geo import shard_of
from contracts.validation import validate_schema
from features import events as ev
from features.from_contracts import MAPPED_TYPES, to_feature_event
from features.offline import replay_order_rows
from features.store import FeatureEngine, MemoryBackend, OnlineFeatureStore
from features.synthetic import generate_event_log

T0 = 1_700_000_000_000
PICKUP = {"lat": 40.75, "lon": -73.98}
DROPOFF = {"lat": 40.76, "lon": -73.97}
SHARD = shard_of(40.75, -73.98)


def head(etype: str, eid: str = "e1", ts: int = T0) -> dict[str, Any]:
    """The common fields of a contract event."""
    return {"event_id": eid, "type": etype, "v": 1, "ts_ms": ts}


def contract_samples() -> dict[str, dict[str, Any]]:
    """One schema-valid contract event of every mapped type."""
    order = {"order_id": "o1", "shard": SHARD}
    return {
        "order_created": {
            **head("order_created"),
            **order,
            "merchant_id": "m1",
            "pickup": PICKUP,
            "dropoff": DROPOFF,
        },
        "order_ready": {**head("order_ready"), **order, "merchant_id": "m1"},
        "merchant_accepted": {
            **head("merchant_accepted"),
            **order,
            "merchant_id": "m1",
            "estimated_ready_ts_ms": T0 + 600_000,
        },
        "delivery_arrived": {
            **head("delivery_arrived"),
            **order,
            "courier_id": "c1",
            "stop": "pickup",
        },
        "delivery_picked_up": {**head("delivery_picked_up"), **order, "courier_id": "c1"},
        "order_cancelled": {**head("order_cancelled"), **order, "reason": "customer"},
        "delivery_delivered": {**head("delivery_delivered"), **order, "courier_id": "c1"},
        "courier_ping": {**head("courier_ping"), "courier_id": "c1", "lat": 40.7, "lon": -74.0},
        "assignment_response": {
            **head("assignment_response"),
            "decision_id": "d1",
            "courier_id": "c1",
            "shard": SHARD,
            "response": "decline",
        },
    }


#: Per feature event type: the contract type that stands for it and the fields both share.
CONTRACT_OF = {
    ev.ORDER_CREATED: ("order_created", ("order_id", "merchant_id")),
    ev.MERCHANT_READY: ("order_ready", ("order_id", "merchant_id")),
    ev.MERCHANT_ESTIMATE: (
        "merchant_accepted",
        ("order_id", "merchant_id", "estimated_ready_ts_ms"),
    ),
    ev.ARRIVED: ("delivery_arrived", ("order_id", "courier_id", "stop")),
    ev.PICKED_UP: ("delivery_picked_up", ("order_id", "courier_id")),
    ev.DELIVERED: ("delivery_delivered", ("order_id", "courier_id")),
    ev.ORDER_CANCELLED: ("order_cancelled", ("order_id",)),
    ev.COURIER_PING: ("courier_ping", ("courier_id", "lat", "lon")),
    ev.ASSIGNMENT_RESPONSE: ("assignment_response", ("decision_id", "courier_id", "response")),
}
EXPECTED_TYPE = {ctype: ftype for ftype, (ctype, _) in CONTRACT_OF.items()}


def merchant_m1(order_id: str) -> str | None:
    """Every order belongs to merchant m1."""
    return "m1"


def to_contract(event: Mapping[str, Any], shard: str) -> dict[str, Any] | None:
    """The contract event a feature-form synthetic event stands for (None: no contract)."""
    if event["type"] not in CONTRACT_OF:
        return None
    ctype, shared = CONTRACT_OF[event["type"]]
    contract = {**head(ctype, event["event_id"], event["ts_ms"]), **{f: event[f] for f in shared}}
    if ctype != "courier_ping":
        contract["shard"] = shard
    elif event["speed_mps"] is not None:
        contract["speed_mps"] = event["speed_mps"]
    if ctype == "order_created":
        contract["pickup"] = {"lat": event["pickup_lat"], "lon": event["pickup_lon"]}
        contract["dropoff"] = {"lat": event["dropoff_lat"], "lon": event["dropoff_lon"]}
    if ctype == "order_cancelled":
        contract["reason"] = "customer"
    return contract


@pytest.mark.parametrize("ctype", sorted(MAPPED_TYPES))
def test_every_mapped_type_yields_an_event_apply_accepts(ctype: str) -> None:
    """Each mapped contract type becomes a valid feature event of the matching feature type."""
    contract = validate_schema(contract_samples()[ctype])
    out = to_feature_event(contract, merchant_m1)
    assert out is not None
    assert ev.validate_event(out) == EXPECTED_TYPE[ctype]
    assert OnlineFeatureStore({}).apply(out) == EXPECTED_TYPE[ctype]


def test_order_created_flattens_pickup_and_dropoff_points() -> None:
    """The pickup and dropoff points become the feature event's coordinate fields."""
    out = to_feature_event(contract_samples()["order_created"])
    assert out is not None
    got = (out["pickup_lat"], out["pickup_lon"], out["dropoff_lat"], out["dropoff_lon"])
    assert got == (PICKUP["lat"], PICKUP["lon"], DROPOFF["lat"], DROPOFF["lon"])


@pytest.mark.parametrize("ctype", ["delivery_picked_up", "order_cancelled"])
def test_merchant_comes_from_the_lookup(ctype: str) -> None:
    """Events naming only the order get the merchant that `merchant_of` names."""
    out = to_feature_event(contract_samples()[ctype], {"o1": "m7"}.get)
    assert out is not None
    assert out["merchant_id"] == "m7"


@pytest.mark.parametrize("ctype", ["delivery_picked_up", "order_cancelled"])
def test_unknown_merchant_maps_to_none(ctype: str) -> None:
    """Without a known merchant the event cannot be routed and maps to None."""
    known: dict[str, str] = {}
    assert to_feature_event(contract_samples()[ctype], known.get) is None


@pytest.mark.parametrize(
    "contract",
    [
        {**head("merchant_accepted"), "order_id": "o1", "merchant_id": "m1", "shard": SHARD},
        {**head("courier_online"), "courier_id": "c1"},
    ],
    ids=lambda c: str(c["type"]),
)
def test_unused_types_map_to_none(contract: dict[str, Any]) -> None:
    """Contract events no feature consumes map to None."""
    assert to_feature_event(contract, merchant_m1) is None


@pytest.mark.parametrize("speed", [None, ev.MAX_SPEED_MPS + 1.0])
def test_missing_or_implausible_ping_speed_is_unknown(speed: float | None) -> None:
    """A ping without a plausible speed yields speed_mps None."""
    ping = dict(contract_samples()["courier_ping"])
    if speed is not None:
        ping["speed_mps"] = speed
    out = to_feature_event(ping)
    assert out is not None
    assert out["speed_mps"] is None


def online_rows(contracts: list[dict[str, Any]], store: OnlineFeatureStore) -> list[Any]:
    """Feature rows of each created order, fed contract events through the adapter."""
    merchants: dict[str, str] = {}
    rows = []
    for contract in contracts:
        event = to_feature_event(validate_schema(contract), merchants.get)
        if event is None:
            continue
        if event["type"] == ev.ORDER_CREATED:
            merchants[event["order_id"]] = event["merchant_id"]
            pickup = (event["pickup_lat"], event["pickup_lon"])
            rows.append(store.order_features(event["merchant_id"], *pickup, event["ts_ms"]))
        store.apply(event)
    return rows


def all_reads(engine: FeatureEngine, log: list[dict[str, Any]], now_ms: int) -> list[Any]:
    """Every feature of every merchant, courier and zone in `log`, read at `now_ms`."""
    out = []
    for e in log:
        if e["type"] == ev.ORDER_CREATED:
            keys = [("merchant", e["merchant_id"])]
            keys.append(("zone", geohash_encode(e["pickup_lat"], e["pickup_lon"], 6)))
        elif e["type"] == ev.COURIER_PING:
            keys = [("courier", e["courier_id"]), ("zone", geohash_encode(e["lat"], e["lon"], 6))]
        elif e["type"] == ev.ASSIGNMENT_RESPONSE:
            keys = [("courier", e["courier_id"])]
        else:
            continue
        for entity, key in keys:
            for fdef in engine.features:
                if fdef.entity == entity:
                    out.append(engine.read(fdef.name, key, now_ms))
    return out


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_contract_log_through_adapter_matches_offline_builder(seed: int) -> None:
    """Online store fed contract events equals the offline builder fed the feature-form log."""
    log = generate_event_log(np.random.default_rng(seed), n_orders=40, n_couriers=5)
    shard_by_order = {
        e["order_id"]: shard_of(e["pickup_lat"], e["pickup_lon"])
        for e in log
        if e["type"] == ev.ORDER_CREATED
    }
    contracts = [to_contract(e, shard_by_order.get(e.get("order_id", ""), SHARD)) for e in log]
    offline = FeatureEngine(MemoryBackend())
    online = OnlineFeatureStore({})
    expected = [row for _, row in replay_order_rows(log, offline)]
    assert online_rows([c for c in contracts if c is not None], online) == expected
    end_ms = int(log[-1]["ts_ms"])
    assert all_reads(online, log, end_ms) == all_reads(offline, log, end_ms)
