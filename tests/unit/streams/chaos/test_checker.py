"""The chaos checker over hand-made topic records: one figure per test."""

from __future__ import annotations

from typing import Any

import orjson

from contracts.records import envelope
from simulators.hostile import HostileRecord
from streams.chaos.checker import Joined, RunTruth, check_run
from streams.chaos.faults import ZombieWindow
from streams.reading import TopicRecord
from tests.events import SHARD, order_created

T0 = 1_781_625_600_000


def record(topic: str, offset: int, event: dict[str, Any], partition: int = 0) -> TopicRecord:
    """A record of `event` at `offset`."""
    return TopicRecord(topic, partition, offset, SHARD.encode(), orjson.dumps(event), (), T0)


def letter(topic: str, offset: int, reason: str, index: int | None = None) -> TopicRecord:
    """The dead letter of `topic`'s record at partition 0, `offset`."""
    headers = [
        ("dlq.reason", reason.encode()),
        ("dlq.topic", topic.encode()),
        ("dlq.partition", b"0"),
        ("dlq.offset", str(offset).encode()),
    ]
    if index is not None:
        headers.append(("dlq.index", str(index).encode()))
    return TopicRecord(f"{topic}_dlq", 0, offset, None, b"x", tuple(headers), T0)


def hostile(topic: str, reason: str, index: int | None = None) -> HostileRecord:
    """A hostile record expected to get `reason`."""
    return HostileRecord(topic, None, b"\xff", T0, (), reason, "undecodable", index)


def commit(offset: int, decision: str, order: str, generation: int, ts_ms: int = T0) -> TopicRecord:
    """An `assignment_committed` of `order` to c1 by `decision`."""
    event = envelope(
        "assignment_committed",
        f"committed:{decision}",
        ts_ms,
        decision_id=decision,
        shard=SHARD,
        shard_generation=generation,
        order_ids=[order],
        courier_id="c1",
        route=[],
    )
    return record("assignment_committed", offset, event)


def delivered(offset: int, order: str, ts_ms: int) -> TopicRecord:
    """The delivery of `order`."""
    event = envelope(
        "delivery_delivered", f"{order}-dd", ts_ms, order_id=order, courier_id="c1", shard=SHARD
    )
    return record("delivery_events", offset, event)


def test_a_hostile_record_with_its_reason_counts_as_dead_lettered() -> None:
    """One hostile record, its letter with the expected reason: sent 1, dead-lettered 1."""
    truth = RunTruth(hostile={("order_events", 0, 7): hostile("order_events", "undecodable")})
    figures = check_run([letter("order_events", 7, "undecodable")], truth)
    assert (figures.fuzz_sent, figures.fuzz_dead_lettered, figures.valid_in_dlq) == (1, 1, 0)


def test_a_letter_with_another_reason_is_not_dead_lettered_as_expected() -> None:
    """A hostile record whose letter names another reason counts as a wrong reason."""
    truth = RunTruth(hostile={("order_events", 0, 7): hostile("order_events", "wrong_key")})
    figures = check_run([letter("order_events", 7, "undecodable")], truth)
    assert (figures.fuzz_dead_lettered, figures.fuzz_wrong_reason) == (0, 1)


def test_a_fix_letter_must_name_the_expected_index() -> None:
    """A one-fix batch's letter must carry `dlq.index` 0."""
    truth = RunTruth(hostile={("courier_pings", 0, 3): hostile("courier_pings", "too_deep", 0)})
    assert check_run([letter("courier_pings", 3, "too_deep", 0)], truth).fuzz_dead_lettered == 1


def test_copies_of_a_letter_count_once() -> None:
    """Two letters of one hostile record: dead-lettered once, one duplicate letter."""
    truth = RunTruth(hostile={("order_events", 0, 7): hostile("order_events", "undecodable")})
    figures = check_run([letter("order_events", 7, "undecodable")] * 2, truth)
    assert (figures.fuzz_dead_lettered, figures.duplicate_dead_letters) == (1, 1)


def test_a_letter_of_a_record_that_was_not_hostile_is_valid_in_dlq() -> None:
    """A dead letter of any other record counts in `valid_in_dlq`."""
    assert check_run([letter("order_events", 2, "duplicate_event")], RunTruth()).valid_in_dlq == 1


def test_an_order_that_never_ends_is_lost() -> None:
    """An order the simulator created without any end is lost; a delivered one is not."""
    records = [
        record("order_events", 0, order_created("o1", T0)),
        record("order_events", 1, order_created("o2", T0)),
        delivered(0, "o2", T0 + 60_000),
    ]
    assert check_run(records, RunTruth(orders={"o1", "o2"})).lost_orders == 1


def test_a_dead_lettered_input_takes_no_part_in_the_check() -> None:
    """A delivery that was dead-lettered does not end its order: the order is lost."""
    records = [
        record("order_events", 0, order_created("o1", T0)),
        delivered(0, "o1", T0 + 60_000),
        letter("delivery_events", 0, "invalid_transition"),
    ]
    assert check_run(records, RunTruth(orders={"o1"})).lost_orders == 1


def test_a_commit_of_an_older_generation_after_a_newer_one_is_fenced() -> None:
    """In one partition, a commit of generation 3 after one of generation 4 is fenced."""
    records = [commit(0, "d1", "o1", 4), commit(1, "d2", "o2", 3)]
    assert check_run(records, RunTruth()).fenced_commits == 1


def test_a_commit_written_by_a_paused_worker_after_its_eviction_is_fenced() -> None:
    """After a pause, a commit of generation 4 while another worker joined at 5: fenced."""
    window = ZombieWindow(0, 100.0, 120.0, (0,), {0: 1})
    truth = RunTruth(zombies=[window], joins=[Joined(110.0, 1, 5)])
    records = [commit(0, "d1", "o1", 4), commit(1, "d2", "o2", 4)]
    assert check_run(records, truth).fenced_commits == 1


def test_a_paused_worker_nobody_replaced_commits_its_own_work() -> None:
    """Without a join by another worker during the pause, its later commits are not fenced."""
    window = ZombieWindow(0, 100.0, 120.0, (0,), {0: 1})
    truth = RunTruth(zombies=[window], joins=[Joined(130.0, 1, 5)])
    records = [commit(0, "d1", "o1", 4), commit(1, "d2", "o2", 4)]
    assert check_run(records, truth).fenced_commits == 0


def test_a_copy_of_an_earlier_commit_sent_after_an_eviction_is_not_fenced() -> None:
    """A commit of generation 4 sent again after a newer one and after the pause is a copy."""
    window = ZombieWindow(0, 100.0, 120.0, (0,), {0: 1})
    truth = RunTruth(zombies=[window], joins=[Joined(110.0, 1, 5)])
    records = [commit(0, "d1", "o1", 4), commit(1, "d2", "o2", 5), commit(2, "d1", "o1", 4)]
    assert check_run(records, truth).fenced_commits == 0


def test_an_eta_update_at_or_after_delivery_is_counted() -> None:
    """An ETA of an order at its delivery time counts; one before it does not."""
    eta = {"order_id": "o1", "shard": SHARD, "dropoff_p50_ts_ms": T0, "dropoff_p90_ts_ms": T0}
    eta |= {"fallback_used": True, "model_version": "straight-line"}
    records = [
        record("order_events", 0, order_created("o1", T0)),
        delivered(0, "o1", T0 + 60_000),
        record("eta_updates", 0, envelope("eta_update", "eta-1", T0 + 30_000, **eta)),
        record("eta_updates", 1, envelope("eta_update", "eta-2", T0 + 60_000, **eta)),
    ]
    assert check_run(records, RunTruth(orders={"o1"})).eta_after_delivery == 1


def test_a_second_live_commit_of_an_order_is_a_double_assignment() -> None:
    """Two decisions committing one order while both are live: one double assignment."""
    records = [
        record("order_events", 0, order_created("o1", T0)),
        commit(0, "d1", "o1", 1, T0 + 1_000),
        commit(1, "d2", "o1", 1, T0 + 2_000),
    ]
    assert check_run(records, RunTruth(orders={"o1"})).double_assignments == 1
