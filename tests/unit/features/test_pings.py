from collections import Counter
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.definitions import DAY_MS, HOUR_MS, MINUTE_MS, default_features
from features.pings import PingBatch, apply_pings
from features.store import MemoryBackend, OnlineFeatureStore

T0 = 1_795_000_000_000

# A few cells of two cities, so that zones, cities and couriers all share states.
POINTS = [(40.7500, -73.9900), (40.7512, -73.9871), (40.7700, -73.9600), (41.5000, -72.5000)]

#: (courier, point index, ms after T0, speed or None)
Ping = tuple[str, int, int, float | None]

ping_strategy = st.tuples(
    st.sampled_from(["c1", "c2", "c3", "c4"]),
    st.sampled_from(range(len(POINTS))),
    # Whole minutes make pings land exactly on window edges often.
    st.one_of(st.integers(0, 3 * HOUR_MS), st.integers(0, 180).map(lambda m: m * MINUTE_MS)),
    st.one_of(st.none(), st.sampled_from([0.0, 1.5, 4.25, 9.0, 12.5])),
)


def batch_of(pings: list[Ping]) -> PingBatch:
    """The pings as a batch, in the order given."""
    return PingBatch(
        np.array([p[0] for p in pings], dtype=object),
        np.array([POINTS[p[1]][0] for p in pings], dtype=np.float64),
        np.array([POINTS[p[1]][1] for p in pings], dtype=np.float64),
        np.array([T0 + p[2] for p in pings], dtype=np.int64),
        np.array([np.nan if p[3] is None else p[3] for p in pings], dtype=np.float64),
    )


def events_of(pings: list[Ping]) -> list[dict[str, Any]]:
    """The same pings as `courier_ping` events, in time order (stable)."""
    out = [
        {
            "type": "courier_ping",
            "event_id": f"p{i}",
            "ts_ms": T0 + p[2],
            "courier_id": p[0],
            "lat": POINTS[p[1]][0],
            "lon": POINTS[p[1]][1],
            "speed_mps": p[3],
        }
        for i, p in enumerate(pings)
    ]
    return sorted(out, key=lambda e: e["ts_ms"])


def applied(
    parts: list[list[Ping]], bulk: bool
) -> tuple[dict[bytes, bytes], Counter[tuple[str, str]]]:
    """The table and late reports after each batch in turn, in bulk or one event at a time."""
    late: Counter[tuple[str, str]] = Counter()
    table: dict[bytes, bytes] = {}
    store = OnlineFeatureStore(table, on_late=lambda f, level: late.update([(f, level)]))
    for part in parts:
        if bulk:
            apply_pings(store, batch_of(part))
        else:
            for event in events_of(part):
                store.apply(event)
    return table, late


@settings(max_examples=150, deadline=None)
@given(st.lists(ping_strategy, max_size=40), st.lists(ping_strategy, max_size=40))
def test_a_bulk_batch_leaves_the_states_one_by_one_application_leaves(
    first: list[Ping], then: list[Ping]
) -> None:
    """Two batches in bulk end with the same stored states as their pings applied in time order."""
    expected, _ = applied([first, then], bulk=False)
    got, _ = applied([first, then], bulk=True)
    assert got == expected  # dyadic speeds: sums are exact in either order


@settings(max_examples=150, deadline=None)
@given(st.lists(ping_strategy, max_size=40), st.lists(ping_strategy, max_size=40))
def test_a_bulk_batch_reports_the_late_pings_one_by_one_application_reports(
    first: list[Ping], then: list[Ping]
) -> None:
    """Pings too old for a state's window are reported per feature and level, as `apply` does."""
    _, expected = applied([first, then], bulk=False)
    _, got = applied([first, then], bulk=True)
    assert got == expected


def test_a_ping_hours_behind_the_newest_state_is_late_at_every_zone_level() -> None:
    """A second batch two hours behind the first counts as late in the 1 h zone speed window."""
    late: Counter[tuple[str, str]] = Counter()
    store = OnlineFeatureStore({}, on_late=lambda f, level: late.update([(f, level)]))
    apply_pings(store, batch_of([("c1", 0, 3 * HOUR_MS, 5.0)]))
    apply_pings(store, batch_of([("c1", 0, HOUR_MS, 5.0)]))
    assert late[("zone_speed_1h", "entity")] == 1
    assert late[("zone_supply", "global")] == 1
    assert ("courier_speed_30d", "entity") not in late


def test_bulk_pings_are_served_like_any_feature() -> None:
    """After a bulk batch, a zone's supply and speed and a courier's speed can be read."""
    store = OnlineFeatureStore({})
    apply_pings(
        store,
        batch_of([("c1", 0, 0, 4.0), ("c2", 1, MINUTE_MS, 6.0), ("c1", 0, 2 * MINUTE_MS, None)]),
    )
    now = T0 + 3 * MINUTE_MS
    zone = "dr5ru6"  # the cell of POINTS[0] and POINTS[1]
    assert store.read("zone_supply", zone, now).values == {"supply_couriers": 2.0}
    assert store.read("zone_speed_1h", zone, now).values == {"observed_speed_mps": 5.0}
    assert store.read("courier_speed_30d", "c1", now).values == {"speed_mean_mps": 4.0}
    assert store.read("courier_speed_30d", "c1", T0 + DAY_MS // 2).level == "entity"


def test_a_courier_s_city_is_the_one_of_its_newest_ping() -> None:
    """The routing fact a courier's later events use follows its newest ping, not the last row."""
    backend_store = OnlineFeatureStore({})
    apply_pings(backend_store, batch_of([("c1", 3, 5 * MINUTE_MS, 4.0), ("c1", 0, 0, 4.0)]))
    assert backend_store.backend.get_context("courier_city|c1") == "drkk"


def test_a_feature_without_a_bulk_update_is_fed_one_event_at_a_time() -> None:
    """A custom state without `update_sorted` still ends as one-by-one application leaves it."""

    class Counted:
        def __init__(self) -> None:
            self.updated_ts_ms = -1
            self.n = 0

        def update(self, event: Any) -> bool:
            self.n += 1
            self.updated_ts_ms = max(self.updated_ts_ms, int(event["ts_ms"]))
            return True

        def value(self, now_ms: int) -> dict[str, float | None]:
            return {"n": float(self.n)}

        def to_state(self) -> dict[str, Any]:
            return {"u": self.updated_ts_ms, "n": self.n}

        def load_state(self, state: Any) -> None:
            self.updated_ts_ms, self.n = int(state["u"]), int(state["n"])

    base = next(f for f in default_features() if f.name == "zone_supply")
    custom = type(base)("pings_seen", base.entity, base.consumes, base.sla_ms, Counted, ("n",))
    backend = MemoryBackend()
    store = OnlineFeatureStore({}, features=[custom])
    store.backend = backend
    apply_pings(store, batch_of([("c1", 0, 0, 1.0), ("c2", 1, 1, None), ("c3", 3, 2, 2.0)]))
    assert (
        orjson.loads(orjson.dumps(backend.states[("pings_seen", "global", "*")].to_state()))["n"]
        == 3
    )


def test_columns_of_different_lengths_are_refused() -> None:
    """A batch whose columns disagree in length is a programming error, refused at once."""
    with pytest.raises(ValueError, match="same length"):
        PingBatch(
            np.array(["c1"], dtype=object),
            np.zeros(2),
            np.zeros(1),
            np.zeros(1, dtype=np.int64),
            np.zeros(1),
        )
