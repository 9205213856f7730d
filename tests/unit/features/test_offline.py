from collections.abc import MutableMapping
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from rocksdict import Rdict

from features.offline import (
    EventLogError,
    build_training_rows,
    read_event_log,
    replay_order_rows,
    write_event_log,
)
from features.store import OnlineFeatureStore
from features.synthetic import generate_event_log


def test_online_rocksdb_features_equal_offline_rows(tmp_path: Path) -> None:
    """One event log through the RocksDB store and the offline builder gives equal features."""
    events = generate_event_log(np.random.default_rng(7))
    log = tmp_path / "events.jsonl"
    write_event_log(log, events)
    offline = build_training_rows(log)
    db = Rdict(str(tmp_path / "state"))
    try:
        store = OnlineFeatureStore(cast(MutableMapping[bytes, bytes], db))
        online = [row for _, row in replay_order_rows(read_event_log(log), store)]
    finally:
        db.close()
    assert len(online) == len(offline) > 0
    for on, off in zip(online, offline, strict=True):
        assert {k: off[k] for k in on} == on
    assert any(r["merchant_prep_2h@level"] == "entity" for r in offline)


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
