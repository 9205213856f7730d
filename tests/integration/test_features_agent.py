"""The online feature table on a real broker: events read before their order still count."""

from __future__ import annotations

from typing import Any

import orjson

from contracts.geo import decode_center, shard_of
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
