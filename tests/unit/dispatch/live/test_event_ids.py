import pytest

from dispatch.live.event_ids import EventIdIndex


def test_a_new_id_is_claimed() -> None:
    """The first record with an id claims it."""
    assert EventIdIndex().claim("e1", "t:0:1", 1_000)


def test_the_same_record_may_claim_its_id_again() -> None:
    """A redelivered record (same place) is not a duplicate of itself."""
    index = EventIdIndex()
    index.claim("e1", "t:0:1", 1_000)
    assert index.claim("e1", "t:0:1", 1_000)


def test_another_record_cannot_claim_a_recent_id() -> None:
    """A different record with a remembered id is refused."""
    index = EventIdIndex()
    index.claim("e1", "t:0:1", 1_000)
    assert not index.claim("e1", "u:0:9", 2_000)


def test_ids_older_than_the_window_are_forgotten() -> None:
    """Once newer events pass the window, an old id may be used again."""
    index = EventIdIndex(window_ms=10_000)
    index.claim("e1", "t:0:1", 1_000)
    index.claim("e2", "t:0:2", 20_000)
    assert index.claim("e1", "t:0:3", 20_001)


def test_the_index_never_holds_more_than_its_size() -> None:
    """Beyond `max_ids`, the oldest ids are forgotten first."""
    index = EventIdIndex(max_ids=3)
    for i in range(10):
        index.claim(f"e{i}", f"t:0:{i}", 1_000 + i)
    assert len(index) == 3
    assert index.claim("e0", "t:0:99", 2_000)
    assert not index.claim("e9", "t:0:98", 2_000)


def test_sizes_must_be_positive() -> None:
    """An index of no ids is a configuration error."""
    with pytest.raises(ValueError, match="max_ids"):
        EventIdIndex(max_ids=0)
