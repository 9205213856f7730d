from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.pings import PingColumns
from dispatch.live.positions import PositionStore
from tests.clocks import ManualClock


def fixes(*rows: tuple[str, float, int]) -> PingColumns:
    """Columns from (courier, lat, ts_ms) rows."""
    n = len(rows)
    return PingColumns(
        courier_id=np.array([r[0] for r in rows], dtype=object).reshape(n),
        lat=np.array([r[1] for r in rows], dtype=np.float64),
        lon=np.full(n, -73.9),
        ts_ms=np.array([r[2] for r in rows], dtype=np.int64),
        speed_mps=np.full(n, 4.0),
        heading_deg=np.full(n, 90.0),
        accuracy_m=np.full(n, 5.0),
    )


def store(tmp_path: Path, clock: ManualClock | None = None) -> PositionStore:
    """A store with partition 0 open and flushing only when asked."""
    s = PositionStore(tmp_path / "pos", flush_interval_s=3600, clock=clock or ManualClock(0.0))
    s.open(0)
    return s


def test_newest_fix_wins_whatever_the_order(tmp_path: Path) -> None:
    """Within and across records, a courier keeps its newest fix; older ones are ignored."""
    s = store(tmp_path)
    s.apply(0, 0, "dr5r", fixes(("c1", 1.0, 200), ("c1", 2.0, 100)))
    s.apply(0, 1, "dr5r", fixes(("c1", 3.0, 150)))
    position = s.get("c1")
    assert position is not None and (position.lat, position.ts_ms) == (1.0, 200)


def test_arrivals_are_couriers_new_to_the_shard(tmp_path: Path) -> None:
    """A courier is an arrival the first time it is seen in a shard, not on later fixes there."""
    s = store(tmp_path)
    first = s.apply(0, 0, "dr5r", fixes(("c1", 1.0, 1), ("c2", 1.0, 1)))
    again = s.apply(0, 1, "dr5r", fixes(("c1", 1.1, 2)))
    moved = s.apply(0, 2, "dr72", fixes(("c1", 1.2, 3)))
    assert sorted(a.courier_id for a in first) == ["c1", "c2"]
    assert again == []
    assert [(a.courier_id, a.shard, a.previous_shard) for a in moved] == [("c1", "dr72", "dr5r")]


def test_reopening_restores_the_last_snapshot_and_its_offset(tmp_path: Path) -> None:
    """After flush and close, reopening gives the same positions and last applied offset."""
    s = store(tmp_path)
    s.apply(0, 41, "dr5r", fixes(("c1", 1.0, 1), ("c2", 2.0, 2)))
    before = sorted(s, key=lambda p: p.courier_id)
    s.close(0)
    s.open(0)
    assert sorted(s, key=lambda p: p.courier_id) == before
    assert s.last_offset(0) == 41


def test_unflushed_changes_are_not_on_disk(tmp_path: Path) -> None:
    """Only flushed state survives a crash: a fresh store sees the last snapshot's offset."""
    clock = ManualClock(0.0)
    s = store(tmp_path, clock)
    s.apply(0, 1, "dr5r", fixes(("c1", 1.0, 1)))
    s.flush(0)
    s.apply(0, 2, "dr5r", fixes(("c2", 1.0, 2)))
    s.close(0, flush=False)
    crashed = PositionStore(tmp_path / "pos")
    crashed.open(0)
    assert crashed.last_offset(0) == 1
    assert crashed.get("c2") is None


def test_flush_happens_by_itself_after_the_interval(tmp_path: Path) -> None:
    """Applying a record after the flush interval writes a snapshot."""
    clock = ManualClock(0.0)
    s = PositionStore(tmp_path / "pos", flush_interval_s=2.0, clock=clock)
    s.open(0)
    s.apply(0, 5, "dr5r", fixes(("c1", 1.0, 1)))
    clock.now_s = 2.5
    s.apply(0, 6, "dr5r", fixes(("c2", 1.0, 1)))
    s.close(0, flush=False)
    other = PositionStore(tmp_path / "pos")
    other.open(0)
    assert other.last_offset(0) == 6


def test_a_tombstone_forgets_a_courier_only_in_the_shard_it_left(tmp_path: Path) -> None:
    """A "left" record drops the courier from its shard, not from another one."""
    s = store(tmp_path)
    s.apply(0, 0, "dr5r", fixes(("c1", 1.0, 1)))
    assert s.apply_left(0, 1, "dr72", fixes(("c1", 0.0, 5))) == 0
    assert s.apply_left(0, 2, "dr5r", fixes(("c1", 0.0, 5))) == 1
    assert s.get("c1") is None and len(s) == 0


def test_a_tombstone_older_than_the_fix_keeps_the_courier(tmp_path: Path) -> None:
    """A courier that pinged in the shard after leaving it (came back) is kept."""
    s = store(tmp_path)
    s.apply(0, 0, "dr5r", fixes(("c1", 1.0, 10)))
    assert s.apply_left(0, 1, "dr5r", fixes(("c1", 0.0, 5))) == 0
    assert s.get("c1") is not None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 50)),
            min_size=1,
            max_size=6,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_replaying_records_changes_nothing(
    tmp_path_factory: object, records: list[list[tuple[str, int]]]
) -> None:
    """Applying the same records twice leaves the positions as after applying them once."""
    base = Path(str(tmp_path_factory.mktemp("replay")))  # type: ignore[attr-defined]
    once = PositionStore(base / "once")
    twice = PositionStore(base / "twice")
    for s in (once, twice):
        s.open(0)
    for offset, rows in enumerate(records):
        batch = fixes(*[(c, float(ts), ts) for c, ts in rows])
        once.apply(0, offset, "s1", batch)
        twice.apply(0, offset, "s1", batch)
    for offset, rows in enumerate(records):
        twice.apply(0, offset, "s1", fixes(*[(c, float(ts), ts) for c, ts in rows]))
    assert sorted(once, key=lambda p: p.courier_id) == sorted(twice, key=lambda p: p.courier_id)
    once.close_all()
    twice.close_all()


def test_get_returns_the_newest_fix_across_partitions(tmp_path: Path) -> None:
    """A courier held by two partitions (mid-handoff) is reported at its newest fix."""
    s = PositionStore(tmp_path / "pos", flush_interval_s=3600)
    s.open(0)
    s.open(1)
    s.apply(1, 0, "dr72", fixes(("c1", 2.0, 20)))
    s.apply(0, 0, "dr5r", fixes(("c1", 1.0, 10)))
    position = s.get("c1")
    assert position is not None and (position.shard, position.ts_ms) == ("dr72", 20)
