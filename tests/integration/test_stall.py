"""A worker stopped past its session timeout fences itself (`streams.stall`) on Apache Kafka."""

from __future__ import annotations

import time
from typing import Any

import orjson

from simulators.synthetic import Record
from streams.stall import SESSION_LOST_EXIT_STATUS
from tests.events import SHARD, order_created
from tests.integration.conftest import Cluster

T0 = 1_795_000_000_000
SESSION_TIMEOUT_S = 3.0
#: How long the worker is stopped: the fault itself, past the session timeout.
STOPPED_S = 5.0


def created(order_id: str, ts_ms: int) -> Record:
    """A valid `order_created` record."""
    return Record(
        "order_events", SHARD.encode(), orjson.dumps(order_created(order_id, ts_ms)), ts_ms
    )


def test_a_worker_stopped_past_its_session_timeout_exits_before_handling_more(
    cluster: Cluster,
) -> None:
    """After SIGCONT it exits with its own status and handles nothing; a restart loses nothing."""
    settings: dict[str, Any] = {"session_timeout_s": SESSION_TIMEOUT_S, "heartbeat_interval_s": 1.0}
    worker = cluster.start_worker(**settings)
    cluster.produce([created("before", T0)])
    cluster.wait_caught_up()
    worker.pause()
    cluster.produce([created("during", T0 + 1)])
    time.sleep(STOPPED_S)
    worker.resume()
    cluster.produce([created("after", T0 + 2)])
    assert worker.wait(timeout_s=60) == SESSION_LOST_EXIT_STATUS
    assert "session lost: the worker process was stopped for" in worker.log_tail()
    cluster.start_worker("w1-again", **settings)
    cluster.wait_caught_up()
