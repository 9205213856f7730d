"""The features a tick used equal the offline rebuild from the same event log.

A seeded small city runs through the worker core in process (`learned`: ticks read couriers'
acceptance and speeds and zones' observed speeds; every new order reads its placement row).
The run's input log is then replayed offline (`features.offline`), and at each logged tick
the same features are read from the rebuilt state.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import pytest

from dispatchflow.settings import Settings
from features.feed import FeatureFeed
from features.offline import OfflineRows, replay_log, to_replay_order
from features.store import FeatureEngine, FeatureRead
from simulators.city import SimulationLog, run_simulation, small_town
from simulators.inprocess import InProcessDispatch

#: (read time, feature, entity key or None for the marketplace prior)
ReadKey = tuple[int, str, str | None]


class RecordingFeed(FeatureFeed):
    """The in-process worker's online features, keeping every placement row and read."""

    def __init__(self) -> None:
        super().__init__({}, ping_flush_s=None)
        self.placements: dict[str, dict[str, float | None]] = {}
        self.reads: list[tuple[ReadKey, FeatureRead]] = []

    def order_row(self, event: Mapping[str, Any], partition: int) -> dict[str, float | None]:
        row = super().order_row(event, partition)
        self.placements[str(event["order_id"])] = row
        return row

    def read(self, partition: int, feature: str, key: str, now_ms: int) -> FeatureRead:
        found = super().read(partition, feature, key, now_ms)
        self.reads.append(((now_ms, feature, key), found))
        return found

    def read_global(self, partition: int, feature: str, now_ms: int) -> FeatureRead:
        found = super().read_global(partition, feature, now_ms)
        self.reads.append(((now_ms, feature, None), found))
        return found


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def _same_values(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def run() -> tuple[SimulationLog, RecordingFeed]:
    """A small city through the worker core, its online features recorded."""
    config = small_town(seed=4)
    feed = RecordingFeed()
    settings = Settings(tick_interval_s=config.tick_interval_s, dispatch_variant="learned")
    dispatch = InProcessDispatch.from_settings(settings, features=feed)
    try:
        log = run_simulation(config, dispatch, progress=False)
    finally:
        dispatch.close()
    return log, feed


def _replay(
    log: SimulationLog, wanted: Mapping[int, list[ReadKey]]
) -> tuple[OfflineRows, list[tuple[ReadKey, FeatureRead]]]:
    """The offline rows of the run's input log, and the wanted reads at its logged ticks."""
    pending = {ts: list(keys) for ts, keys in wanted.items()}
    found: list[tuple[ReadKey, FeatureRead]] = []

    def on_tick(engine: FeatureEngine, tick: Mapping[str, Any]) -> None:
        for key in pending.pop(int(tick["ts_ms"]), []):
            now_ms, feature, entity = key
            read = (
                engine.read_global(feature, now_ms)
                if entity is None
                else engine.read(feature, entity, now_ms)
            )
            found.append((key, read))

    lines = ((i, record.event) for i, record in enumerate(log.inputs, start=1))
    rows = replay_log(to_replay_order(lines), on_tick=on_tick)
    return rows, found


def test_every_placement_row_equals_its_offline_rebuild(
    run: tuple[SimulationLog, RecordingFeed],
) -> None:
    """Each order's features at placement (what P1 reads) are the offline row's features."""
    log, feed = run
    rows, _ = _replay(log, {})
    offline = {r["order_id"]: r for r in rows.orders}
    assert feed.placements and feed.placements.keys() == offline.keys()
    differ = [
        oid
        for oid, online in feed.placements.items()
        if not _same_values(online, {k: offline[oid][k] for k in online})
    ]
    assert differ == []


def test_every_feature_a_tick_read_equals_its_offline_rebuild(
    run: tuple[SimulationLog, RecordingFeed],
) -> None:
    """Acceptance, courier and zone speeds read by ticks equal the offline engine's reads."""
    log, feed = run
    by_ts: dict[int, list[ReadKey]] = defaultdict(list)
    for key, _ in feed.reads:
        by_ts[key[0]].append(key)
    _, offline = _replay(log, by_ts)
    assert {key[1] for key, _ in feed.reads} == {
        "courier_acceptance_30d",
        "courier_speed_30d",
        "zone_speed_1h",
    }
    assert [key for key, _ in offline] == [key for key, _ in feed.reads]
    differ = [
        (key, online, rebuilt)
        for (key, online), (_, rebuilt) in zip(feed.reads, offline, strict=True)
        if online.level != rebuilt.level or not _same_values(online.values, rebuilt.values)
    ]
    assert differ == []
