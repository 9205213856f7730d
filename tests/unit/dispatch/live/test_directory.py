"""The courier directory: status and shard of every courier, told to the shards concerned."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.geo import shard_of
from contracts.rejections import RejectReason
from contracts.validation import validate_schema
from dispatch.lifecycle import CourierState, Source
from dispatch.live.directory import CourierDirectory
from dispatch.live.effects import Effects
from dispatch.live.kv import KV
from dispatch.live.topic_names import COURIER_HANDOFFS as HANDOFFS_TOPIC
from dispatch.live.topic_names import COURIER_STATE_UPDATES as STATE_UPDATES_TOPIC
from tests.unit.dispatch.live.shard_world import LAT, LON, SHARD, T0, offset

OTHER = shard_of(*offset(0.0, 60_000.0), 4)


def directory() -> CourierDirectory:
    """An empty directory over a dict, shards of precision 4."""
    return CourierDirectory(KV({}, CourierState.to_json, CourierState.from_json), 4)


def event(kind: str, ts_ms: int, n: int, **fields: Any) -> dict[str, Any]:
    """A schema-valid courier event (id from `n`)."""
    return dict(
        validate_schema(
            {
                "event_id": f"e{n}",
                "type": kind,
                "v": 1,
                "ts_ms": ts_ms,
                "courier_id": "c1",
                **fields,
            }
        )
    )


def online(ts_ms: int = T0, n: int = 1) -> dict[str, Any]:
    """c1 online at the merchant district, capacity 2."""
    return event("courier_online", ts_ms, n, lat=LAT, lon=LON, capacity=2, vehicle="bike")


def source(offset_: int) -> Source:
    """A `courier_events` record."""
    return Source("courier_events", 0, offset_)


def routed(effects: Effects) -> list[tuple[str, bytes, str]]:
    """(topic, key, kind or type) of each output."""
    return [(o.topic, o.key, o.event.get("kind", o.event["type"])) for o in effects.outputs]


def sighting(shard: str, ts_ms: int) -> dict[str, Any]:
    """`shard` saw c1 at `ts_ms`."""
    return {
        "event_id": f"sighting:{shard}:{ts_ms}",
        "type": "courier_sighting",
        "v": 1,
        "ts_ms": ts_ms,
        "shard": shard,
        "couriers": [{"courier_id": "c1", "ts_ms": ts_ms}],
    }


def test_coming_online_places_the_courier_in_its_position_s_shard() -> None:
    """A first `courier_online` tells that shard the courier arrived and publishes a handoff."""
    d = directory()
    effects = d.on_courier_event(online(), source(0))
    assert routed(effects) == [
        (STATE_UPDATES_TOPIC, SHARD.encode(), "arrived"),
        (HANDOFFS_TOPIC, b"c1", "courier_handoff"),
    ]
    assert effects.outputs[1].event["from_shard"] is None
    state = d.directory.get("c1")
    assert state is not None and state.shard == SHARD


def test_going_offline_is_a_status_update_to_the_same_shard() -> None:
    """`courier_offline` tells the courier's shard its new status, without a handoff."""
    d = directory()
    d.on_courier_event(online(), source(0))
    effects = d.on_courier_event(event("courier_offline", T0 + 1_000, 2), source(1))
    assert routed(effects) == [(STATE_UPDATES_TOPIC, SHARD.encode(), "status")]
    assert effects.outputs[0].event["status"] == "offline"


def test_a_sighting_in_another_shard_moves_the_courier() -> None:
    """Seen elsewhere: the old shard hears it left, the new one that it arrived, and a handoff."""
    d = directory()
    d.on_courier_event(online(), source(0))
    effects = d.on_sighting(sighting(OTHER, T0 + 5_000))
    assert routed(effects) == [
        (STATE_UPDATES_TOPIC, SHARD.encode(), "left"),
        (STATE_UPDATES_TOPIC, OTHER.encode(), "arrived"),
        (HANDOFFS_TOPIC, b"c1", "courier_handoff"),
    ]
    assert (effects.outputs[2].event["from_shard"], effects.outputs[2].event["to_shard"]) == (
        SHARD,
        OTHER,
    )
    assert d.handoffs == 2


@pytest.mark.parametrize("known", [True, False])
def test_a_sighting_that_changes_nothing_emits_nothing(known: bool) -> None:
    """A sighting in the courier's own shard, or of an unknown courier, emits nothing."""
    d = directory()
    if known:
        d.on_courier_event(online(), source(0))
    assert d.on_sighting(sighting(SHARD, T0 + 5_000)).outputs == []


def test_an_event_for_an_unknown_courier_is_dead_lettered() -> None:
    """Anything but `courier_online` for a courier never seen is rejected as unknown_id."""
    effects = directory().on_courier_event(event("courier_offline", T0, 1), source(0))
    assert [e.reason for _, e in effects.rejections] == [RejectReason.UNKNOWN_ID]
    assert effects.outputs == []


def test_the_same_event_id_in_another_record_is_a_duplicate() -> None:
    """A repeated event id arriving as a new record is dead-lettered as a duplicate."""
    d = directory()
    d.on_courier_event(online(), source(0))
    effects = d.on_courier_event(online(), source(1))
    assert [e.reason for _, e in effects.rejections] == [RejectReason.DUPLICATE_EVENT]


def test_the_same_record_again_is_skipped_silently() -> None:
    """A redelivered record (same topic, partition, offset) has no effect and no dead letter."""
    d = directory()
    d.on_courier_event(online(), source(0))
    d.on_courier_event(event("courier_offline", T0 + 1_000, 2), source(1))
    again = d.on_courier_event(event("courier_offline", T0 + 1_000, 2), source(1))
    assert again.outputs == [] and again.rejections == []


def test_every_directory_output_passes_its_schema() -> None:
    """State updates and handoffs the directory emits are valid against their schemas."""
    d = directory()
    outputs = [
        *d.on_courier_event(online(), source(0)).outputs,
        *d.on_courier_event(event("courier_capacity", T0 + 1, 2, capacity=4), source(1)).outputs,
        *d.on_sighting(sighting(OTHER, T0 + 2)).outputs,
        *d.on_courier_event(event("courier_offline", T0 + 3, 3), source(2)).outputs,
    ]
    assert {o.event["type"] for o in outputs} == {"courier_state_update", "courier_handoff"}
    for output in outputs:
        validate_schema(output.event)


def test_replaying_sightings_after_a_move_changes_nothing() -> None:
    """Sightings read again (older fixes of the old shard, then the move) leave the state as is."""
    d = directory()
    d.on_courier_event(online(), source(0))
    d.on_sighting(sighting(OTHER, T0 + 10_000))
    settled = d.directory.get("c1")
    replayed = Effects()
    for again in (sighting(SHARD, T0 + 5_000), sighting(OTHER, T0 + 10_000)):
        replayed.outputs.extend(d.on_sighting(again).outputs)
    assert replayed.outputs == []
    assert d.directory.get("c1") == settled


def test_a_newer_fix_elsewhere_still_moves_the_courier() -> None:
    """A sighting newer than the fix that placed the courier moves it and raises the epoch."""
    d = directory()
    d.on_courier_event(online(), source(0))
    d.on_sighting(sighting(OTHER, T0 + 10_000))
    d.on_sighting(sighting(SHARD, T0 + 20_000))
    state = d.directory.get("c1")
    assert state is not None and (state.shard, state.epoch) == (SHARD, 2)


def _state_and_outputs(d: CourierDirectory, effects: list[Effects]) -> tuple[Any, list[Any]]:
    return d.directory.get("c1"), [(o.topic, o.key, o.event) for e in effects for o in e.outputs]


def test_a_sighting_read_before_the_courier_exists_counts_once_it_does() -> None:
    """Sighting then `courier_online` gives the state and outputs of reading them in order."""
    in_order = directory()
    expected = _state_and_outputs(
        in_order,
        [
            in_order.on_courier_event(online(), source(0)),
            in_order.on_sighting(sighting(OTHER, T0 + 5_000)),
        ],
    )
    reversed_ = directory()
    observed = _state_and_outputs(
        reversed_,
        [
            reversed_.on_sighting(sighting(OTHER, T0 + 5_000)),
            reversed_.on_courier_event(online(), source(0)),
        ],
    )
    assert observed == expected
    assert expected[0].shard == OTHER


def test_a_parked_sighting_older_than_the_online_fix_changes_nothing() -> None:
    """A sighting from before the courier came online does not move it, and is dropped."""
    d = directory()
    d.on_sighting(sighting(OTHER, T0 - 5_000))
    effects = d.on_courier_event(online(), source(0))
    state = d.directory.get("c1")
    assert state is not None and (state.shard, state.epoch) == (SHARD, 0)
    assert routed(effects) == [
        (STATE_UPDATES_TOPIC, SHARD.encode(), "arrived"),
        (HANDOFFS_TOPIC, b"c1", "courier_handoff"),
    ]
    assert "c1" not in d.parked


def test_only_the_newest_parked_sighting_counts() -> None:
    """Of several sightings before the courier exists, the newest fix places it."""
    d = directory()
    d.on_sighting(sighting(OTHER, T0 + 9_000))
    d.on_sighting(sighting(SHARD, T0 + 4_000))
    d.on_courier_event(online(), source(0))
    state = d.directory.get("c1")
    assert state is not None and (state.shard, state.shard_ts_ms) == (OTHER, T0 + 9_000)


def test_only_the_most_recently_seen_unknown_couriers_are_kept() -> None:
    """Beyond `max_parked` couriers, the least recently seen one is forgotten."""
    d = CourierDirectory(KV({}, CourierState.to_json, CourierState.from_json), 4, max_parked=2)
    for n, courier_id in enumerate(("c1", "c2", "c3")):
        event = sighting(OTHER, T0 + 1_000 * (n + 1))
        event["couriers"] = [{"courier_id": courier_id, "ts_ms": event["ts_ms"]}]
        d.on_sighting(event)
    assert list(d.parked) == ["c2", "c3"]
    d.on_courier_event(online(), source(0))
    state = d.directory.get("c1")
    assert state is not None and state.shard == SHARD
