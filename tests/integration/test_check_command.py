"""`dispatchflow check` on a real broker: records that are not usable events are skipped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson

from simulators.synthetic import Record
from tests.integration.conftest import Cluster

T0_MS = 1_795_000_000_000


def order_created(order_id: str, ts_ms: object) -> bytes:
    """An order_created event (its `ts_ms` as given, however wrong)."""
    return orjson.dumps(
        {
            "event_id": f"e-{order_id}",
            "type": "order_created",
            "v": 1,
            "ts_ms": ts_ms,
            "order_id": order_id,
            "shard": "dr5r",
            "merchant_id": "m1",
            "pickup": {"lat": 40.758, "lon": -73.9855},
            "dropoff": {"lat": 40.76, "lon": -73.98},
        }
    )


def test_check_skips_and_counts_a_malformed_record_instead_of_crashing(
    cluster: Cluster, tmp_path: Path
) -> None:
    """An order_created whose ts_ms is "yesterday" is skipped and reported by topic, exit 0."""
    cluster.produce(
        [
            Record("order_events", b"dr5r", order_created("o-good", T0_MS), T0_MS),
            Record("order_events", b"dr5r", order_created("o-bad", "yesterday"), T0_MS),
            Record("order_events", b"dr5r", b"not json", T0_MS),
        ]
    )
    out = tmp_path / "check.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dispatchflow",
            "check",
            "--broker",
            cluster.bootstrap,
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["skipped_records"] == {"order_events": 2}
    assert json.loads(out.read_text())["orders"] == 1
