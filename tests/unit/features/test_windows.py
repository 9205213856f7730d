from hypothesis import given
from hypothesis import strategies as st

from features.windows import BucketedStats, LastSeen

events = st.lists(
    st.tuples(st.integers(0, 100_000), st.floats(0, 5_000, allow_nan=False)), max_size=60
)


@given(events, st.integers(0, 120_000))
def test_window_count_and_mean_match_brute_force(evs: list[tuple[int, float]], now: int) -> None:
    """Count and mean equal a direct computation over the values whose bucket is in the window."""
    w = BucketedStats(window_ms=30_000, bucket_ms=5_000, bin_width=10.0)
    for ts, x in sorted(evs):
        w.add(ts, x)
    newest_bucket = max((ts // 5_000 for ts, _ in evs), default=0)
    kept = [
        (ts, x)
        for ts, x in evs
        if ts // 5_000 > newest_bucket - 6 and now // 5_000 - 6 < ts // 5_000 <= now // 5_000
    ]
    assert w.count(now) == len(kept)
    if kept:
        mean = w.mean(now)
        assert mean is not None
        assert abs(mean - sum(x for _, x in kept) / len(kept)) < 1e-6


@given(events)
def test_window_state_round_trips(evs: list[tuple[int, float]]) -> None:
    """load_state(to_state()) reproduces every value."""
    w = BucketedStats(window_ms=30_000, bucket_ms=5_000, bin_width=10.0)
    for ts, x in sorted(evs):
        w.add(ts, x)
    other = BucketedStats(window_ms=30_000, bucket_ms=5_000, bin_width=10.0)
    other.load_state(w.to_state())
    now = max((ts for ts, _ in evs), default=0)
    assert other.count(now) == w.count(now)
    assert other.quantile(now, 0.9) == w.quantile(now, 0.9)


@given(events)
def test_histogram_quantile_lies_within_value_range_bins(evs: list[tuple[int, float]]) -> None:
    """The p50 lies between the smallest and largest value's bin edges."""
    w = BucketedStats(window_ms=10**9, bucket_ms=10**6, bin_width=10.0)
    for ts, x in evs:
        w.add(ts, x)
    q = w.quantile(100_000, 0.5)
    if not evs:
        assert q is None
    else:
        assert q is not None
        assert min(x for _, x in evs) // 10 * 10 <= q <= (max(x for _, x in evs) // 10 + 1) * 10


def test_last_seen_counts_distinct_ids_in_window() -> None:
    """Ids count once and leave the window after window_ms."""
    s = LastSeen(window_ms=1_000).add(0, "a").add(100, "a").add(600, "b")
    assert s.distinct(700) == 2
    assert s.distinct(1_200) == 1


@given(events, st.integers(0, 200_000))
def test_a_late_value_is_exactly_one_that_add_would_not_count(
    evs: list[tuple[int, float]], ts: int
) -> None:
    """is_late(ts) holds exactly when adding a value at ts leaves the state unchanged."""
    w = BucketedStats(window_ms=30_000, bucket_ms=5_000)
    for t, x in evs:
        w.add(t, x)
    before = w.to_state()
    late = w.is_late(ts)
    assert late == (w.add(ts, 1.0).to_state() == before)


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from("abc")), max_size=30))
def test_a_late_sighting_changes_nothing_and_a_new_id_in_time_is_counted(
    seen: list[tuple[int, str]],
) -> None:
    """A sighting LastSeen calls late leaves it unchanged; a new id in time is added."""
    s = LastSeen(window_ms=1_000)
    for t, ident in seen:
        s.add(t, ident)
    newest = max((t for t, _ in seen), default=0)
    for ts in (newest - 1_001, newest - 1_000, newest):
        before = s.to_state()
        probe = LastSeen(window_ms=1_000).load_state(before)
        if probe.is_late(ts):
            assert probe.add(ts, "new").to_state() == before
        else:
            assert ("new", ts) in probe.add(ts, "new").to_state()
