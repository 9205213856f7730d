from dispatch.live.orphans import OrphanIndex, Orphans


def loaded() -> OrphanIndex:
    """An index loaded with no stored orphans."""
    index = OrphanIndex()
    index.load([])
    return index


def parked() -> OrphanIndex:
    """A loaded index with order o1 of shard dr5r parked on partition 0, first seen at 1 s."""
    index = loaded()
    index.add(0, "o1", first_seen_ts_ms=1_000, shard="dr5r")
    return index


def test_no_expiry_before_every_seen_topic_has_passed_the_ttl() -> None:
    """An orphan expires only when the slowest topic seen on the partition is ttl past it."""
    index = parked()
    index.observe(0, "merchant_ready", 100_000)
    index.observe(0, "order_events", 5_000)
    assert index.expired(0, ttl_ms=10_000) == []
    index.observe(0, "order_events", 12_000)
    assert index.expired(0, ttl_ms=10_000) == ["o1"]


def test_partitions_do_not_share_watermarks() -> None:
    """Event time on one partition never expires orphans of another."""
    index = loaded()
    index.add(1, "o1", first_seen_ts_ms=0, shard="dr5r")
    index.observe(0, "order_events", 10**9)
    assert index.expired(1, ttl_ms=1) == []


def test_reset_forgets_entries_and_watermarks() -> None:
    """After a rebalance the index must be loaded again before it expires anything."""
    index = loaded()
    index.add(0, "o1", 0, "dr5r")
    index.observe(0, "order_events", 10**9)
    index.reset()
    assert not index.loaded
    assert index.expired(0, ttl_ms=1) == []


def test_ticks_expire_an_orphan_of_a_quiet_partition() -> None:
    """Without newer events, an orphan expires once ticks `ttl` after its parking come."""
    index = loaded()
    index.tick(0, 50_000)
    index.add(0, "o1", first_seen_ts_ms=1_000, shard="dr5r")
    index.tick(0, 59_999)
    assert index.expired_by_ticks(0, ttl_ms=10_000) == []
    index.tick(0, 60_000)
    assert index.expired_by_ticks(0, ttl_ms=10_000) == ["o1"]


def test_an_orphan_parked_before_any_tick_waits_from_the_first_tick() -> None:
    """The first tick of a partition starts the wait; it never expires anything itself."""
    index = parked()
    index.tick(0, 10**9)
    assert index.expired_by_ticks(0, ttl_ms=10_000) == []


def test_shards_with_parked_events_are_known() -> None:
    """The shards of parked events are reported, so ticks reach them."""
    index = parked()
    assert index.shards() == {"dr5r"}


def test_a_reloaded_orphan_waits_from_its_stored_tick_not_the_next_one() -> None:
    """A rebalance or restart does not start the wait for expiry by ticks again."""
    index = OrphanIndex()
    index.load([Orphans("o1", 0, 1_000, (), parked_tick_ms=50_000)])
    index.tick(0, 60_000)
    assert index.expired_by_ticks(0, ttl_ms=10_000) == ["o1"]


def test_the_first_tick_names_the_orders_whose_wait_it_starts() -> None:
    """Orders parked before any tick are returned once, so their stored orphans note the tick."""
    index = parked()
    assert index.tick(0, 5_000) == ["o1"]
    assert index.tick(0, 6_000) == []


def test_orphans_keep_their_parked_tick_through_json() -> None:
    """The tick the wait started at is stored with the records."""
    orphans = Orphans("o1", 3, 1_000, (), parked_tick_ms=50_000)
    assert Orphans.from_json(orphans.to_json()) == orphans


def test_orphans_stored_without_a_parked_tick_still_load() -> None:
    """Values written before the field existed load with no tick (the next tick starts it)."""
    raw = b'{"order_id":"o1","partition":3,"first_seen_ts_ms":1000,"records":[]}'
    assert Orphans.from_json(raw).parked_tick_ms is None
