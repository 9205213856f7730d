"""Seeded malformed and hostile input records, each with the dead-letter reason it must get.

`HostileInput` makes records for every input topic a worker reads (`order_events`,
`merchant_ready`, `delivery_events`, `assignment_responses`, `dispatch_control`,
`courier_events`, `courier_pings`), drawn from a seed, in these classes (`KINDS`), each with
the reason it must get:

* `undecodable`: bytes that are not UTF-8 JSON, or no value at all (`undecodable`);
* `not_an_object`: JSON that is not an object (`schema_invalid`);
* `wrong_type`: one field of a valid event holding another JSON type (`schema_invalid`);
* `wrong_topic`: a valid event of a type the topic does not carry (`wrong_topic`);
* `nan_coordinate`: `NaN`, `Infinity` or `1e999` where a number goes, not JSON (`undecodable`);
* `out_of_range`: a latitude or longitude off the globe (`schema_invalid`);
* `huge_string`: a string past the decoder's limit (`string_too_long`);
* `huge_record`: a record, or its headers, past its size limit (`record_too_large`);
* `huge_batch`: a ping batch with more fixes than allowed (`too_many_items` or
  `batch_too_large`, whichever limit is lower);
* `too_deep`: JSON nested past the decoder's limit (`too_deep`);
* `huge_integer`: an integer beyond signed 64 bits (`number_out_of_range`);
* `unknown_id`: an event about an order, courier or offer never created (`unknown_id`);
* `reused_id`: a new entity's event carrying the id of a recent real event (`duplicate_event`);
* `other_courier`: an answer to a real offer by a courier it was not made to
  (`invalid_transition`);
* `far_time`: a real event, re-identified, days in the past or the future
  (`timestamp_out_of_range`);
* `wrong_key`: a real event, re-identified, under a key that is not its shard or courier
  (`wrong_key`);
* `wrong_shard`: an order created on a shard that is not its pickup's; an event about a real
  order, or an answer to a real offer, naming another shard that lands in the same partition
  (`wrong_shard`).

None of them may change what the system does with the valid records around them, so every
record is one the worker must refuse: ghost ids (`<prefix>-...`) where acceptance would create
something, and real ids only where the refusal needs no state (key, time) or where the state
that refuses it (a recent real order, courier or offer) is certain to be there. A ping batch
with one bad fix carries only that fix, whose dead letter has `dlq.index` 0.

Feed it the valid inputs as they are produced (`observe`); `records(count, now_ms)` then draws
`count` records stamped `now_ms`. Events about unknown orders wait for their order
(`orphan_ttl_s`) before they are dead-lettered; callers stop drawing them (`unknown_orders=False`)
early enough for that wait to end within the run.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from contracts.geo import decode_center, int_to_geohash, offset_m, shard_of
from contracts.limits import INT64_MAX
from contracts.partitioning import partition_for_key
from contracts.records import envelope
from contracts.rejections import RejectReason
from simulators.city.protocol import SimRecord

#: The input topics upstream apps write, in a fixed order.
INPUT_TOPICS = (
    "order_events",
    "merchant_ready",
    "delivery_events",
    "assignment_responses",
    "dispatch_control",
    "courier_events",
    "courier_pings",
)
#: Every hostile class, with its relative weight when drawn.
KINDS: dict[str, int] = {
    "undecodable": 10,
    "not_an_object": 4,
    "wrong_type": 10,
    "wrong_topic": 6,
    "nan_coordinate": 6,
    "out_of_range": 6,
    "huge_string": 5,
    "huge_record": 4,
    "huge_batch": 1,
    "too_deep": 4,
    "huge_integer": 4,
    "unknown_id": 10,
    "reused_id": 6,
    "other_courier": 4,
    "far_time": 8,
    "wrong_key": 8,
    "wrong_shard": 6,
}
#: Shard-keyed topics whose events are about one order.
_ORDER_TOPICS = ("order_events", "merchant_ready", "delivery_events")
_SHARD_TOPICS = (*_ORDER_TOPICS, "assignment_responses", "dispatch_control")
#: How long a real event stays usable as the model of a hostile one (event time).
_RECENT_MS = 60_000
_NAN_TOKENS = (b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999")
_NAN_MARK = "@@nan@@"
_DAY_MS = 86_400_000
_MAX_TS_MS = 4_102_444_800_000


@dataclass(frozen=True)
class HostileLimits:
    """What the workers under test accept (their settings), so each record's reason is known.

    Attributes:
        max_event_bytes: largest record on the event topics (`max_event_bytes`).
        max_header_bytes: largest total of a record's headers.
        max_string_chars: longest string the decoder takes.
        max_depth: deepest JSON nesting the decoder takes.
        max_ping_batch: most fixes in one ping batch (`max_ping_batch`).
        max_ping_items: most entries of one array in a ping record.
        max_event_age_ms: oldest event time accepted before the record time.
        max_event_lead_ms: newest event time accepted after the record time.
        partitions: partitions of every input topic; None when everything shares one
            partition (the in-process worker core).
    """

    max_event_bytes: int = 16_384
    max_header_bytes: int = 16_384
    max_string_chars: int = 4_096
    max_depth: int = 32
    max_ping_batch: int = 10_000
    max_ping_items: int = 10_000
    max_event_age_ms: int = _DAY_MS
    max_event_lead_ms: int = 300_000
    partitions: int | None = None


@dataclass(frozen=True)
class HostileRecord:
    """One record to produce and the dead letter it must end in.

    Attributes:
        topic: the input topic.
        key: record key.
        value: record value (None: a record without a value).
        ts_ms: record timestamp (epoch ms).
        headers: record headers.
        reason: the `dlq.reason` its dead letter must carry (a `RejectReason` value).
        kind: its class (a key of `KINDS`).
        index: for a ping batch whose only fix is refused, that fix's index (`dlq.index`).
    """

    topic: str
    key: bytes | None
    value: bytes | None
    ts_ms: int
    headers: tuple[tuple[str, bytes], ...]
    reason: str
    kind: str
    index: int | None = None


@dataclass
class _Draft:
    """A record being built: what `_make` returns before the common fields are added."""

    key: bytes | None
    value: bytes | None
    reason: RejectReason
    headers: tuple[tuple[str, bytes], ...] = ()
    index: int | None = None


@dataclass
class _Recent:
    """Real input events seen lately, per topic and type."""

    by_topic: dict[str, deque[SimRecord]] = field(default_factory=dict)

    def add(self, record: SimRecord) -> None:
        self.by_topic.setdefault(record.topic, deque(maxlen=256)).append(record)

    def of(self, topic: str, now_ms: int, types: Sequence[str] = ()) -> list[SimRecord]:
        return [
            r
            for r in self.by_topic.get(topic, ())
            if now_ms - r.ts_ms <= _RECENT_MS and (not types or r.event["type"] in types)
        ]


class HostileInput:
    """Draws hostile records (see the module docstring); deterministic for a seed and inputs.

    Args:
        seed: seeds every draw.
        shards: the real shards of the run (ghost events go to them, so ticks reach them).
        limits: what the workers accept.
        id_prefix: prefix of every ghost id and hostile event id.
    """

    def __init__(
        self,
        seed: int,
        shards: Sequence[str],
        limits: HostileLimits | None = None,
        id_prefix: str = "hostile",
    ) -> None:
        if not shards:
            msg = "at least one shard is needed"
            raise ValueError(msg)
        self.rng = random.Random(seed)
        self.shards = tuple(shards)
        self.limits = limits or HostileLimits()
        self.prefix = id_prefix
        self._count = 0
        self._recent = _Recent()
        self._makers: dict[str, Callable[[str, int], _Draft | None]] = {
            "undecodable": self._undecodable,
            "not_an_object": self._not_an_object,
            "wrong_type": self._wrong_type,
            "wrong_topic": self._wrong_topic,
            "nan_coordinate": self._nan_coordinate,
            "out_of_range": self._out_of_range,
            "huge_string": self._huge_string,
            "huge_record": self._huge_record,
            "huge_batch": self._huge_batch,
            "too_deep": self._too_deep,
            "huge_integer": self._huge_integer,
            "unknown_id": self._unknown_id,
            "reused_id": self._reused_id,
            "other_courier": self._other_courier,
            "far_time": self._far_time,
            "wrong_key": self._wrong_key,
            "wrong_shard": self._wrong_shard,
        }
        self.unknown_orders = True

    # ------------------------------------------------------------------ public
    def observe(self, records: Sequence[SimRecord]) -> None:
        """Remember valid input records that were produced (models of hostile ones)."""
        for record in records:
            if record.topic in INPUT_TOPICS:
                self._recent.add(record)

    def records(
        self, count: int, now_ms: int, *, unknown_orders: bool = True
    ) -> list[HostileRecord]:
        """`count` hostile records stamped `now_ms`, spread over the input topics.

        With `unknown_orders=False`, no event about an unknown order is drawn (those wait
        `orphan_ttl_s` for their order before they reach the dead-letter topic).
        """
        self.unknown_orders = unknown_orders
        out: list[HostileRecord] = []
        kinds = list(KINDS)
        weights = [KINDS[k] for k in kinds]
        while len(out) < count:
            topic = self.rng.choice(INPUT_TOPICS)
            kind = self.rng.choices(kinds, weights)[0]
            draft = self._makers[kind](topic, now_ms)
            if draft is None:
                continue
            out.append(
                HostileRecord(
                    topic,
                    draft.key,
                    draft.value,
                    now_ms,
                    draft.headers,
                    draft.reason.value,
                    kind,
                    draft.index,
                )
            )
        return out

    # ------------------------------------------------------------------ building blocks
    def _id(self, what: str) -> str:
        self._count += 1
        return f"{self.prefix}-{what}-{self._count}"

    def _shard(self) -> str:
        return self.rng.choice(self.shards)

    def _point(self, shard: str) -> dict[str, float]:
        lat, lon = decode_center(shard)
        lat, lon = offset_m(lat, lon, self.rng.uniform(-500, 500), self.rng.uniform(-500, 500))
        return {"lat": round(lat, 6), "lon": round(lon, 6)}

    def _template(self, topic: str, ts_ms: int) -> tuple[bytes | None, dict[str, Any]]:
        """A valid-looking event of `topic` about ghost entities, and its proper key.

        Its ids are ghosts, so accepting it would create or touch nothing real; only a
        `courier_online` or an `order_created` would create something, so callers break it.
        """
        shard = self._shard()
        order = {"order_id": self._id("o"), "shard": shard}
        courier = self._id("c")
        event_id = self._id("e")
        kind = self.rng.randrange(3)
        if topic == "order_events":
            if kind == 0:
                event = envelope(
                    "order_created",
                    event_id,
                    ts_ms,
                    **order,
                    merchant_id=self._id("m"),
                    pickup=self._point(shard),
                    dropoff=self._point(shard),
                    n_items=2,
                    prep_estimate_s=600.0,
                )
            else:
                event = envelope("order_cancelled", event_id, ts_ms, **order, reason="customer")
        elif topic == "merchant_ready":
            name = ("merchant_accepted", "order_ready")[kind % 2]
            event = envelope(name, event_id, ts_ms, **order, merchant_id=self._id("m"))
        elif topic == "delivery_events":
            name = ("delivery_arrived", "delivery_picked_up", "delivery_delivered")[kind]
            extra = {"stop": "pickup"} if name == "delivery_arrived" else {}
            event = envelope(name, event_id, ts_ms, **order, courier_id=courier, **extra)
        elif topic == "assignment_responses":
            event = envelope(
                "assignment_response",
                event_id,
                ts_ms,
                decision_id=self._id("d"),
                courier_id=courier,
                shard=shard,
                response="accept",
            )
        elif topic == "dispatch_control":
            event = envelope(
                "dispatch_control",
                event_id,
                ts_ms,
                shard=shard,
                policy_version=self._id("p"),
                batching_enabled=True,
                max_detour_s=300.0,
                weights={"w_late": 1.0},
            )
        elif topic == "courier_events":
            point = self._point(shard)
            event = (
                envelope("courier_online", event_id, ts_ms, courier_id=courier, **point, capacity=2)
                | {"vehicle": "bike"}
                if kind == 0
                else envelope("courier_capacity", event_id, ts_ms, courier_id=courier, capacity=3)
            )
        else:
            event = envelope("courier_ping_batch", event_id, ts_ms, pings=[self._fix(ts_ms)])
        return self._key_of(topic, event), event

    def _fix(self, ts_ms: int) -> dict[str, Any]:
        return {"courier_id": self._id("c"), **self._point(self._shard()), "ts_ms": ts_ms}

    @staticmethod
    def _key_of(topic: str, event: dict[str, Any]) -> bytes | None:
        if topic in _SHARD_TOPICS:
            return str(event["shard"]).encode()
        if topic == "courier_events":
            return str(event["courier_id"]).encode()
        return b"gateway-hostile"

    def _real(self, topic: str, now_ms: int, types: Sequence[str] = ()) -> SimRecord | None:
        """A recent real event of `topic` (of one of `types`), or None."""
        recent = self._recent.of(topic, now_ms, types)
        return self.rng.choice(recent) if recent else None

    def _partition(self, key: bytes) -> int:
        return partition_for_key(key, self.limits.partitions) if self.limits.partitions else 0

    def _ghost_key_like(self, key: bytes, make: Callable[[], str]) -> str:
        """A ghost id (from `make`) whose key lands in the same partition as `key`."""
        while True:
            candidate = make()
            if self._partition(candidate.encode()) == self._partition(key):
                return candidate

    # ------------------------------------------------------------------ kinds: decoding
    def _undecodable(self, topic: str, ts_ms: int) -> _Draft:
        key, _ = self._template(topic, ts_ms)
        if self.rng.random() < 0.2:
            return _Draft(key, None, RejectReason.UNDECODABLE)
        tail = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(0, 200)))
        # 0xff never starts UTF-8 text, so no tail can make this JSON.
        return _Draft(key, b"\xff" + tail, RejectReason.UNDECODABLE)

    def _not_an_object(self, topic: str, ts_ms: int) -> _Draft:
        key, _ = self._template(topic, ts_ms)
        value = self.rng.choice([b"[1, 2, 3]", b'"order_created"', b"42", b"null", b"true"])
        return _Draft(key, value, RejectReason.SCHEMA_INVALID)

    def _wrong_type(self, topic: str, ts_ms: int) -> _Draft:
        key, event = self._template(topic, ts_ms)
        target = event
        index = None
        if topic == "courier_pings" and self.rng.random() < 0.5:
            target, index = event["pings"][0], 0
        name = self.rng.choice(sorted(target))
        target[name] = _other_type(target[name])
        return _Draft(key, orjson.dumps(event), RejectReason.SCHEMA_INVALID, index=index)

    def _wrong_topic(self, topic: str, ts_ms: int) -> _Draft:
        other = self.rng.choice([t for t in INPUT_TOPICS if t != topic])
        _, event = self._template(other, ts_ms)
        if topic == "courier_pings" and event["type"] == "courier_ping_batch":
            event = envelope("courier_offline", self._id("e"), ts_ms, courier_id=self._id("c"))
        key, _ = self._template(topic, ts_ms)
        return _Draft(key, orjson.dumps(event), RejectReason.WRONG_TOPIC)

    def _nan_coordinate(self, topic: str, ts_ms: int) -> _Draft:
        key, event = self._template(topic, ts_ms)
        if "pickup" in event:
            event["pickup"]["lat"] = _NAN_MARK
        elif "lat" in event:
            event["lat"] = _NAN_MARK
        elif "pings" in event:
            event["pings"][0]["lon"] = _NAN_MARK
        else:
            event["ts_ms"] = _NAN_MARK
        token = self.rng.choice(_NAN_TOKENS)
        value = orjson.dumps(event).replace(orjson.dumps(_NAN_MARK), token)
        return _Draft(key, value, RejectReason.UNDECODABLE)

    def _out_of_range(self, topic: str, ts_ms: int) -> _Draft | None:
        if topic not in ("order_events", "courier_events", "courier_pings"):
            return None
        key, event = self._template(topic, ts_ms)
        bad_lat = self.rng.choice([90.5, -91.0, 123.0, 1000.0])
        bad_lon = self.rng.choice([180.5, -181.0, 360.0, -1000.0])
        index = None
        if topic == "order_events":
            event = self._ghost_created(ts_ms)
            key = self._key_of(topic, event)
            event[self.rng.choice(["pickup", "dropoff"])]["lon"] = bad_lon
        elif topic == "courier_events":
            point = self._point(self._shard())
            event = envelope(
                "courier_online", self._id("e"), ts_ms, courier_id=str(event["courier_id"])
            ) | {**point, "lat": bad_lat, "capacity": 2, "vehicle": "bike"}
            key = self._key_of(topic, event)
        else:
            event["pings"][0]["lat"] = bad_lat
            index = 0
        return _Draft(key, orjson.dumps(event), RejectReason.SCHEMA_INVALID, index=index)

    def _ghost_created(self, ts_ms: int) -> dict[str, Any]:
        shard = self._shard()
        return envelope(
            "order_created",
            self._id("e"),
            ts_ms,
            order_id=self._id("o"),
            merchant_id=self._id("m"),
            shard=shard,
            pickup=self._point(shard),
            dropoff=self._point(shard),
        )

    # ------------------------------------------------------------------ kinds: sizes
    def _huge_string(self, topic: str, ts_ms: int) -> _Draft:
        key, event = self._template(topic, ts_ms)
        limit = self.limits.max_string_chars
        text = "x" * self.rng.randint(limit + 1, min(3 * limit, self.limits.max_event_bytes - 600))
        index = None
        if topic == "courier_pings" and self.rng.random() < 0.5:
            event["pings"][0]["courier_id"] = text
            index = 0
        elif self.rng.random() < 0.5:
            event["event_id"] = text
        else:
            event[text[:8] + "-field"] = text
        return _Draft(key, orjson.dumps(event), RejectReason.STRING_TOO_LONG, index=index)

    def _huge_record(self, topic: str, ts_ms: int) -> _Draft:
        key, event = self._template(topic, ts_ms)
        if topic == "courier_pings" or self.rng.random() < 0.3:
            # Headers past their limit (a ping record's own limit is far above a request's).
            size = self.limits.max_header_bytes + self.rng.randint(1, 4_000)
            headers = (("x-hostile", b"h" * size),)
            return _Draft(key, orjson.dumps(event), RejectReason.RECORD_TOO_LARGE, headers)
        pieces = -(-(self.limits.max_event_bytes + 1) // 1000) + self.rng.randrange(30)
        event["padding"] = ["p" * 990] * pieces
        return _Draft(key, orjson.dumps(event), RejectReason.RECORD_TOO_LARGE)

    def _huge_batch(self, topic: str, ts_ms: int) -> _Draft | None:
        if topic != "courier_pings":
            return None
        key, event = self._template(topic, ts_ms)
        limit = min(self.limits.max_ping_batch, self.limits.max_ping_items)
        n = limit + self.rng.randint(1, 20)
        fix = event["pings"][0]
        event["pings"] = [fix] * n
        reason = (
            RejectReason.TOO_MANY_ITEMS
            if n > self.limits.max_ping_items
            else RejectReason.BATCH_TOO_LARGE
        )
        return _Draft(key, orjson.dumps(event), reason)

    def _too_deep(self, topic: str, ts_ms: int) -> _Draft:
        key, event = self._template(topic, ts_ms)
        depth = self.limits.max_depth + self.rng.randint(1, 40)
        index = None
        target = event
        if topic == "courier_pings":
            target, index = event["pings"][0], 0
        target["nested"] = _NAN_MARK
        nested = b"[" * depth + b"]" * depth
        value = orjson.dumps(event).replace(orjson.dumps(_NAN_MARK), nested)
        return _Draft(key, value, RejectReason.TOO_DEEP, index=index)

    def _huge_integer(self, topic: str, ts_ms: int) -> _Draft:
        key, event = self._template(topic, ts_ms)
        big = self.rng.randint(INT64_MAX + 1, 2**64 - 1)
        index = None
        if topic == "courier_pings":
            event["pings"][0]["ts_ms"] = big
            index = 0
        else:
            event[self.rng.choice(["ts_ms", "v"])] = big
        return _Draft(key, orjson.dumps(event), RejectReason.NUMBER_OUT_OF_RANGE, index=index)

    # ------------------------------------------------------------------ kinds: references
    def _unknown_id(self, topic: str, ts_ms: int) -> _Draft | None:
        if topic in ("dispatch_control", "courier_pings"):
            return None
        if topic in _ORDER_TOPICS and not self.unknown_orders:
            return None
        key, event = self._template(topic, ts_ms)
        if event["type"] in ("order_created", "courier_online"):
            return None
        return _Draft(key, orjson.dumps(event), RejectReason.UNKNOWN_ID)

    def _reused_id(self, topic: str, ts_ms: int) -> _Draft | None:
        if topic == "order_events":
            real = self._real(topic, ts_ms, ("order_created",))
            if real is None:
                return None
            event = self._ghost_created(ts_ms)
            shard = str(real.event["shard"])
            event.update(shard=shard, pickup=self._point(shard), dropoff=self._point(shard))
            event["event_id"] = real.event["event_id"]
            return _Draft(real.key, orjson.dumps(event), RejectReason.DUPLICATE_EVENT)
        if topic == "courier_events":
            real = self._real(topic, ts_ms)
            if real is None or real.key is None:
                return None
            ghost = self._ghost_key_like(real.key, lambda: self._id("c"))
            event = envelope(
                "courier_online", str(real.event["event_id"]), ts_ms, courier_id=ghost
            ) | {**self._point(self._shard()), "capacity": 2, "vehicle": "bike"}
            return _Draft(ghost.encode(), orjson.dumps(event), RejectReason.DUPLICATE_EVENT)
        return None

    def _other_courier(self, topic: str, ts_ms: int) -> _Draft | None:
        if topic != "assignment_responses":
            return None
        real = self._real(topic, ts_ms)
        if real is None:
            return None
        event = dict(real.event, event_id=self._id("e"), ts_ms=ts_ms, courier_id=self._id("c"))
        return _Draft(real.key, orjson.dumps(event), RejectReason.INVALID_TRANSITION)

    def _far_time(self, topic: str, ts_ms: int) -> _Draft:
        real = self._real(topic, ts_ms)
        if real is not None and real.event["type"] != "courier_ping":
            key, event = real.key, dict(real.event, event_id=self._id("e"))
        else:
            key, event = self._template(topic, ts_ms)
        if self.rng.random() < 0.5:
            age = self.rng.randint(self.limits.max_event_age_ms + 60_000, 30 * _DAY_MS)
            event["ts_ms"] = max(0, ts_ms - age)
        else:
            lead = self.rng.randint(self.limits.max_event_lead_ms + 60_000, 30 * _DAY_MS)
            event["ts_ms"] = min(_MAX_TS_MS, ts_ms + lead)
        return _Draft(key, orjson.dumps(event), RejectReason.TIMESTAMP_OUT_OF_RANGE)

    def _wrong_key(self, topic: str, ts_ms: int) -> _Draft | None:
        if topic == "courier_pings":
            return None
        real = self._real(topic, ts_ms)
        if real is not None:
            key, event = real.key, dict(real.event, event_id=self._id("e"))
        else:
            key, event = self._template(topic, ts_ms)
        choices: list[bytes | None] = [None, b"", b"not-a-key", self._id("k").encode()]
        choices += [s.encode() for s in self.shards if s.encode() != key]
        wrong = self.rng.choice(choices)
        return _Draft(wrong, orjson.dumps(event), RejectReason.WRONG_KEY)

    def _wrong_shard(self, topic: str, ts_ms: int) -> _Draft | None:
        if topic == "assignment_responses":
            answer = self._real(topic, ts_ms)
            if answer is None:
                return None
            other = self._other_shard(str(answer.event["shard"]), same_partition=True)
            event = dict(answer.event, event_id=self._id("e"), ts_ms=ts_ms, shard=other)
            return _Draft(other.encode(), orjson.dumps(event), RejectReason.WRONG_SHARD)
        if topic not in _ORDER_TOPICS:
            return None
        if topic == "order_events" and self.rng.random() < 0.5:
            event = self._ghost_created(ts_ms)
            other = self._other_shard(str(event["shard"]), same_partition=False)
            event["shard"] = other
            return _Draft(other.encode(), orjson.dumps(event), RejectReason.WRONG_SHARD)
        real = self._real("order_events", ts_ms, ("order_created",))
        if real is None:
            return None
        _, event = self._template(topic, ts_ms)
        if event["type"] == "order_created":
            event = envelope("order_cancelled", self._id("e"), ts_ms, reason="customer")
        other = self._other_shard(str(real.event["shard"]), same_partition=True)
        event.update(order_id=real.event["order_id"], shard=other)
        return _Draft(other.encode(), orjson.dumps(event), RejectReason.WRONG_SHARD)

    def _other_shard(self, shard: str, *, same_partition: bool) -> str:
        """A valid shard other than `shard`; with `same_partition`, one in `shard`'s partition."""
        while True:
            value = self.rng.randrange(32 ** len(shard))
            other = int_to_geohash(value, len(shard))
            if other == shard or other in self.shards:
                continue
            if not same_partition or self._partition(other.encode()) == self._partition(
                shard.encode()
            ):
                return other


def _other_type(value: Any) -> Any:
    """A JSON value of another type than `value` that no field's schema allows in its place."""
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, str):
        return 12345
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return {"items": value}
    if isinstance(value, dict):
        return [value]
    return {"null": True}


def pickup_shard(event: dict[str, Any], precision: int = 4) -> str:
    """The shard of an `order_created` event's pickup point."""
    return shard_of(float(event["pickup"]["lat"]), float(event["pickup"]["lon"]), precision)
