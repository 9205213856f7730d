"""The online feature table on a real broker: late order events and courier pings."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from contracts.geo import decode_center, shard_of
from features.definitions import default_features
from features.store import OnlineFeatureStore
from simulators.synthetic import Record
from tests.integration.conftest import Cluster, features_fed

SHARD = shard_of(40.7580, -73.9855, 4)
LAT, LON = decode_center(SHARD)
T0_MS = 1_700_000_000_000


def ev(event_type: str, ts_ms: int, **fields: Any) -> dict[str, Any]:
    """An event of order o1 at merchant m1."""
    return {
        "event_id": f"{event_type}-{ts_ms}",
        "type": event_type,
        "v": 1,
        "ts_ms": ts_ms,
        "order_id": "o1",
        "merchant_id": "m1",
        "shard": SHARD,
        **fields,
    }


def test_an_event_read_before_its_order_updates_the_features_once_the_order_exists(
    cluster: Cluster,
) -> None:
    """`order_ready` consumed before `order_created`: the table ends as if read in order."""
    created = ev(
        "order_created",
        T0_MS,
        pickup={"lat": LAT, "lon": LON},
        dropoff={"lat": LAT, "lon": LON},
    )
    ready = ev("order_ready", T0_MS + 600_000)
    expected = features_fed([created, ready])

    cluster.start_worker()
    cluster.produce(
        [Record("merchant_ready", SHARD.encode(), orjson.dumps(ready), int(ready["ts_ms"]))]
    )
    cluster.wait_caught_up()
    cluster.produce([Record("order_events", SHARD.encode(), orjson.dumps(created), T0_MS)])
    cluster.wait_caught_up()
    assert cluster.dead_letters() == []
    assert cluster.online_features() == expected


def test_pings_reach_the_online_courier_and_zone_features(cluster: Cluster) -> None:
    """Ping batches through the broker leave the zone and courier features as each ping would."""
    rng = np.random.default_rng(11)
    records: list[Record] = []
    fixes: list[dict[str, Any]] = []
    for b in range(6):
        batch = [
            {
                "courier_id": f"c{int(rng.integers(0, 5))}",
                "lat": round(LAT + float(rng.uniform(-0.01, 0.01)), 6),
                "lon": round(LON + float(rng.uniform(-0.01, 0.01)), 6),
                "ts_ms": T0_MS + b * 60_000 + j * 500,
                "speed_mps": float(rng.choice([0.0, 2.5, 4.5, 6.25])),
            }
            for j in range(40)
        ]
        fixes += batch
        ts_ms = T0_MS + b * 60_000 + 39 * 500
        event = {
            "event_id": f"pings-{b}",
            "type": "courier_ping_batch",
            "v": 1,
            "ts_ms": ts_ms,
            "pings": batch,
        }
        records.append(Record("courier_pings", b"gateway", orjson.dumps(event), ts_ms))
    assert {shard_of(f["lat"], f["lon"], 4) for f in fixes} == {SHARD}
    expected: dict[bytes, bytes] = {}
    store = OnlineFeatureStore(expected, features=default_features())
    for i, fix in enumerate(fixes):
        store.apply({"type": "courier_ping", "event_id": f"p{i}", **fix})
    assert any(k.startswith(b"f|zone_supply|entity|") for k in expected)
    assert any(k.startswith(b"f|courier_speed_30d|entity|") for k in expected)

    cluster.start_worker(ping_features_flush_s=0.0)
    cluster.produce(records)
    cluster.wait_caught_up()
    assert cluster.dead_letters() == []
    assert cluster.online_features() == expected
