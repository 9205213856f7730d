"""Events become table state on a real broker, and that state survives kill -9 and rebalances."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from simulators.synthetic import CityConfig, SyntheticCity
from tests.integration.conftest import Cluster
from tests.integration.oracle import expected_state, merge, observed_state

CITY = CityConfig(seed=3, n_couriers=40, n_orders=120, duration_s=900)


def detail(worker: Any) -> dict[str, Any]:
    """A worker's full state."""
    state: dict[str, Any] = worker.get_json("/state?detail=1")
    return state


def test_events_become_the_state_the_core_computes(cluster: Cluster) -> None:
    """After a synthetic city's events, the worker's tables equal the in-process core's result."""
    worker = cluster.start_worker()
    records = SyntheticCity(CITY).records()
    cluster.produce(records)
    cluster.wait_caught_up()
    observed = observed_state(detail(worker))
    expected = expected_state(records)
    assert observed["orders"] == expected["orders"]
    assert observed["directory"] == expected["directory"]
    assert observed["positions"] == expected["positions"]


@pytest.mark.parametrize(
    "keep_datadir", [True, False], ids=["with-local-state", "wiped-local-state"]
)
def test_kill_minus_nine_and_restart_gives_identical_state(
    cluster: Cluster, keep_datadir: bool
) -> None:
    """State after SIGKILL and restart equals state before, rebuilt locally or from changelogs."""
    worker = cluster.start_worker()
    cluster.produce(SyntheticCity(CITY).records())
    cluster.wait_caught_up()
    before = detail(worker)
    worker.kill()
    if not keep_datadir:
        shutil.rmtree(worker.settings.datadir)
    restarted = cluster.start_worker()
    cluster.wait_caught_up()  # records handled but not yet committed before the kill come again
    assert detail(restarted) == before


def test_kill_in_mid_stream_loses_nothing_and_duplicates_nothing(cluster: Cluster) -> None:
    """A worker killed while processing, then restarted, ends in the same state as the core."""
    records = SyntheticCity(CITY).records()
    worker = cluster.start_worker()
    half = len(records) // 2
    cluster.produce(records[:half])
    cluster.wait_caught_up()
    cluster.produce(records[half:])
    worker.kill()
    restarted = cluster.start_worker()
    cluster.wait_caught_up()
    assert observed_state(detail(restarted)) == expected_state(records)


def test_two_workers_split_partitions_and_a_rebalance_loses_nothing(cluster: Cluster) -> None:
    """Two workers own disjoint partitions; when one leaves, the other holds everything."""
    records = SyntheticCity(CITY).records()
    first, second = records[: len(records) // 2], records[len(records) // 2 :]
    w1 = cluster.start_worker("w1")
    w2 = cluster.start_worker("w2")
    w1.wait_ready(90)
    owned_1 = w1.get_json("/readyz")["shard_partitions"]
    owned_2 = w2.get_json("/readyz")["shard_partitions"]
    assert owned_1 and owned_2
    assert sorted(owned_1 + owned_2) == list(range(8))
    cluster.produce(first)
    cluster.wait_caught_up()
    assert observed_state(merge(detail(w1), detail(w2))) == expected_state(first)
    assert w2.stop() == 0
    w1.wait_ready(90)
    assert w1.get_json("/readyz")["shard_partitions"] == list(range(8))
    cluster.produce(second)
    cluster.wait_caught_up()
    assert observed_state(detail(w1)) == expected_state(records)
