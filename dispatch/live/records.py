"""State records of live dispatch, stored as JSON in changelogged tables.

* `OrderDispatch`: where an order is in dispatch (open, proposed, committed, done), kept inside
  the order's lifecycle state;
* `CourierRecord`: a courier as its shard knows it: status and capacity (from the courier
  directory) and its dispatch state (remaining route, lease, orders done);
* `DecisionRecord`: one proposal and what became of it (committed, released);
* `ShardControl`: runtime policy flags of a shard, from `dispatch_control`.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import orjson


class Phase(enum.StrEnum):
    """Dispatch phase of an order."""

    OPEN = "open"
    PROPOSED = "proposed"
    COMMITTED = "committed"
    DONE = "done"


@dataclass(frozen=True)
class OrderDispatch:
    """Dispatch state of one order.

    Attributes:
        phase: open (waiting for a decision), proposed (offered, leased), committed (accepted),
            done (delivered, cancelled or expired).
        decision_id: the current proposal or commit.
        courier_id: courier of that decision.
        cooldowns: `(courier_id, until_ts_ms)` pairs: couriers not to offer it to again yet.
        eta_p50_ts_ms: announced drop-off time (p50) of the current decision.
        eta_p90_ts_ms: announced drop-off time (p90, calibrated) of the current decision.
        eta_sent_ts_ms: when the last `eta_update` for the order was sent.
        expired_reason: why the dispatcher gave up on it, if it did.
        expired_by: the event id of the tick that gave up on it: that tick, read again (its
            state was stored, its `order_expired` maybe not), announces the expiry again.
        placement: the order's numeric features at placement, `(name, value)` sorted by name
            (None: unknown), read once when it was created (`features.feed`); the prep model
            reads them at every tick until the food is ready.
    """

    phase: Phase = Phase.OPEN
    decision_id: str | None = None
    courier_id: str | None = None
    cooldowns: tuple[tuple[str, int], ...] = ()
    eta_p50_ts_ms: int | None = None
    eta_p90_ts_ms: int | None = None
    eta_sent_ts_ms: int | None = None
    expired_reason: str | None = None
    expired_by: str | None = None
    placement: tuple[tuple[str, float | None], ...] = ()

    def cooling(self, courier_id: str, now_ts_ms: int) -> bool:
        """True if `courier_id` must not be offered this order at `now_ts_ms`."""
        return any(c == courier_id and until > now_ts_ms for c, until in self.cooldowns)

    def with_cooldown(self, courier_id: str, until_ts_ms: int, now_ts_ms: int) -> OrderDispatch:
        """This state plus a cool-down for `courier_id`; expired cool-downs are dropped."""
        kept = tuple((c, u) for c, u in self.cooldowns if u > now_ts_ms and c != courier_id)
        return replace(self, cooldowns=(*kept, (courier_id, until_ts_ms)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            **asdict(self),
            "phase": self.phase.value,
            "cooldowns": list(self.cooldowns),
            "placement": dict(self.placement),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OrderDispatch:
        """Inverse of `to_dict`."""
        return cls(
            **{
                **data,
                "phase": Phase(data["phase"]),
                "cooldowns": tuple((str(c), int(u)) for c, u in data["cooldowns"]),
                "placement": tuple(
                    (str(k), None if v is None else float(v))
                    for k, v in sorted(data.get("placement", {}).items())
                ),
            }
        )


@dataclass(frozen=True)
class RouteStop:
    """A planned stop of a courier's route: one merchant pickup or one customer drop-off."""

    kind: str  # "pickup" | "dropoff"
    order_ids: tuple[str, ...]
    lat: float
    lon: float
    planned_ts_ms: int
    p90_ts_ms: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RouteStop:
        """From its JSON form."""
        return cls(**{**data, "order_ids": tuple(data["order_ids"])})


@dataclass(frozen=True)
class CourierRecord:
    """A courier as one shard knows it (couriers are stored per shard).

    A courier that moves to another shard stays with its old shard until it holds no work
    there (`leaving_to` is set meanwhile); the old shard then sends a `handover`. The new shard
    holds the courier from its `arrived` update but dispatches it only once the handover of
    that move (its `epoch`) came: `awaiting_epoch <= released_epoch`.
    """

    courier_id: str
    shard: str
    status: str
    capacity: int
    vehicle: str
    status_ts_ms: int
    shift_start_ts_ms: int
    shift_end_ts_ms: int | None = None
    route: tuple[RouteStop, ...] = ()
    onboard: tuple[str, ...] = ()
    lease_decision_id: str | None = None
    lease_expires_ts_ms: int | None = None
    orders_done: int = 0
    leaving_to: str | None = None
    leaving_epoch: int = 0
    awaiting_epoch: int = 0
    released_epoch: int = 0

    @property
    def online(self) -> bool:
        """True when the courier can take work."""
        return self.status == "online"

    @property
    def dispatchable(self) -> bool:
        """True if a tick of its shard may offer it work."""
        return (
            self.online
            and self.lease_decision_id is None
            and self.leaving_to is None
            and self.awaiting_epoch <= self.released_epoch
        )

    @property
    def load(self) -> int:
        """Orders it holds: committed and not yet delivered."""
        held = {o for stop in self.route if stop.kind == "dropoff" for o in stop.order_ids}
        return len(held | set(self.onboard))

    @property
    def spare_capacity(self) -> int:
        """How many more orders it may take."""
        return max(0, self.capacity - self.load)

    def to_json(self) -> bytes:
        """Serialize for a table value."""
        return orjson.dumps(self)

    @property
    def idle_here(self) -> bool:
        """True if it holds no route, cargo or offer in this shard."""
        return not self.route and not self.onboard and self.lease_decision_id is None

    @classmethod
    def from_json(cls, raw: bytes) -> CourierRecord:
        """Inverse of `to_json`."""
        data = orjson.loads(raw)
        data["route"] = tuple(RouteStop.from_dict(s) for s in data["route"])
        data["onboard"] = tuple(data["onboard"])
        return cls(**data)


class DecisionStatus(enum.StrEnum):
    """What became of a proposal."""

    PROPOSED = "proposed"
    COMMITTED = "committed"
    RELEASED = "released"


@dataclass(frozen=True)
class DecisionRecord:
    """One proposal of a bundle to a courier, and its outcome."""

    decision_id: str
    shard: str
    generation: int
    courier_id: str
    order_ids: tuple[str, ...]
    new_order_ids: tuple[str, ...]
    updates_pending: bool
    status: DecisionStatus
    proposed_ts_ms: int
    lease_expires_ts_ms: int
    route: tuple[RouteStop, ...]
    etas: dict[str, tuple[float, float, float]]  # order -> (p50_s, raw p90_s, announced p90_s)
    cost: float
    terms: dict[str, float]
    runner_up_courier_id: str | None
    runner_up_cost: float | None
    reason: str
    policy_version: str
    model_version: str
    fallback_used: bool = False
    resolved_ts_ms: int | None = None
    release_reason: str | None = None
    responses: tuple[str, ...] = field(default=())  # event ids of responses applied
    # The commitment as announced: the accepting response's event id, and the
    # `assignment_committed` event with its trace header (so that this response, read again,
    # announces the very same record again).
    committed_by: str | None = None
    committed: tuple[dict[str, Any], str] | None = None

    def to_json(self) -> bytes:
        """Serialize for a table value."""
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, raw: bytes) -> DecisionRecord:
        """Inverse of `to_json`."""
        data = orjson.loads(raw)
        data["order_ids"] = tuple(data["order_ids"])
        data["new_order_ids"] = tuple(data["new_order_ids"])
        data["status"] = DecisionStatus(data["status"])
        data["route"] = tuple(RouteStop.from_dict(s) for s in data["route"])
        data["etas"] = {k: (float(v[0]), float(v[1]), float(v[2])) for k, v in data["etas"].items()}
        data["responses"] = tuple(data["responses"])
        if data.get("committed") is not None:
            event, trace = data["committed"]
            data["committed"] = (event, trace)
        return cls(**data)


@dataclass(frozen=True)
class ShardControl:
    """Runtime policy flags of a shard (or of every shard, under the key `*`)."""

    shard: str
    policy_version: str
    ts_ms: int
    event_id: str
    batching_enabled: bool | None = None
    max_detour_s: float | None = None
    weights: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """Serialize for a table value."""
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, raw: bytes) -> ShardControl:
        """Inverse of `to_json`."""
        return cls(**orjson.loads(raw))


def courier_key(shard: str, courier_id: str) -> str:
    """Key of a courier's record in its shard's table."""
    return f"{shard}|{courier_id}"
