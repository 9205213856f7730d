"""Feature definitions: pure per-entity state with `update(event)` and `value(now_ms)`.

Each `FeatureDef` names an entity kind (merchant, courier or zone), a staleness SLA, the event
types it consumes and a factory of `FeatureState` objects. A state holds everything about one
entity (or one coarser prior: a city or the whole marketplace), updates from events in event
time, reports its values at any `now_ms`, and round-trips through JSON-ready `to_state()`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from features import events as ev
from features.windows import SMALL_BATCH, BucketedStats, LastSeen

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
#: Orders open longer than this are forgotten (abandoned without a closing event).
OPEN_ORDER_TTL_MS = 6 * HOUR_MS
#: Pings slower than this (m/s) are a courier standing still: speed features leave them out,
#: so they measure how fast couriers travel, not how long they wait.
MOVING_MIN_MPS = 1.0

Values = dict[str, float | None]


class FeatureState(Protocol):
    """State of one feature for one entity (or prior level).

    `update` must be pure on its input (the event is not modified) and deterministic;
    `value(now_ms)` must not change the state; `load_state(to_state())` reproduces the values.

    Late events: a windowed state counts an event as long as it falls within the window of the
    newest event it holds (out-of-order events inside the window count in full). An older one
    cannot change any value the state reports: `update` returns False, so the caller can count
    it.
    """

    updated_ts_ms: int

    def update(self, event: Mapping[str, Any]) -> bool:
        """Apply one validated event; False if it was too late to count in the window."""
        ...

    def value(self, now_ms: int) -> Values:
        """The feature's outputs at `now_ms` (None where undefined)."""
        ...

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state."""
        ...

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore from `to_state` output."""
        ...


def _mark(state: Any, ts_ms: int) -> None:
    state.updated_ts_ms = max(state.updated_ts_ms, ts_ms)


class PrepTimeState:
    """Merchant prep time (order created → merchant ready): mean, p50, p90 and count."""

    def __init__(self, window_ms: int, bucket_ms: int) -> None:
        self.updated_ts_ms = -1
        self.pending: dict[str, int] = {}
        self.stats = BucketedStats(window_ms, bucket_ms, bin_width=30.0, max_bins=480)

    def update(self, event: Mapping[str, Any]) -> bool:
        """Track created orders; on ready, record the prep time of a known order.

        Late: a ready event older than the window (its order, if known, stays pending until it
        is forgotten), or an order created `OPEN_ORDER_TTL_MS` before the newest event held.
        """
        ts = int(event["ts_ms"])
        if event["type"] == ev.ORDER_CREATED:
            newest = max(ts, self.updated_ts_ms, max(self.pending.values(), default=ts))
            horizon = newest - OPEN_ORDER_TTL_MS
            if ts < horizon:
                return False
            self.pending[str(event["order_id"])] = ts
            for k in [k for k, t in self.pending.items() if t < horizon]:
                del self.pending[k]
        elif event["type"] == ev.MERCHANT_READY:
            if self.stats.is_late(ts):
                return False
            created = self.pending.pop(str(event["order_id"]), None)
            if created is None or ts < created:
                return True
            self.stats.add(ts, (ts - created) / 1000.0)
            _mark(self, ts)
        return True

    def value(self, now_ms: int) -> Values:
        """`prep_mean_s`, `prep_p50_s`, `prep_p90_s`, `prep_count`."""
        return {
            "prep_mean_s": self.stats.mean(now_ms),
            "prep_p50_s": self.stats.quantile(now_ms, 0.5),
            "prep_p90_s": self.stats.quantile(now_ms, 0.9),
            "prep_count": float(self.stats.count(now_ms)),
        }

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "u": self.updated_ts_ms,
            "p": sorted(self.pending.items()),
            "s": self.stats.to_state(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore from `to_state` output."""
        self.updated_ts_ms = int(state["u"])
        self.pending = {str(k): int(v) for k, v in state["p"]}
        self.stats.load_state(state["s"])


class EstimateErrorState:
    """How far a merchant's ready-time estimates are off: mean log(actual / estimated prep).

    Prep times count from the order's creation; an order counts once its creation, an
    estimate and its ready event are known (the newest estimate before ready counts). Late
    events are those `PrepTimeState` calls late.
    """

    def __init__(self, window_ms: int, bucket_ms: int) -> None:
        self.updated_ts_ms = -1
        self.pending: dict[str, tuple[int, int | None]] = {}
        self.stats = BucketedStats(window_ms, bucket_ms)

    def update(self, event: Mapping[str, Any]) -> bool:
        """Track created orders and their estimates; on ready, record the estimate's error."""
        ts = int(event["ts_ms"])
        oid = str(event["order_id"])
        etype = event["type"]
        newest = max(ts, self.updated_ts_ms, max((c for c, _ in self.pending.values()), default=ts))
        horizon = newest - OPEN_ORDER_TTL_MS
        if etype == ev.ORDER_CREATED:
            if ts < horizon:
                return False
            self.pending[oid] = (ts, self.pending.get(oid, (ts, None))[1])
            for k in [k for k, (c, _) in self.pending.items() if c < horizon]:
                del self.pending[k]
        elif etype == ev.MERCHANT_ESTIMATE:
            if ts < horizon:
                return False
            known = self.pending.get(oid)
            if known is not None:
                self.pending[oid] = (known[0], int(event["estimated_ready_ts_ms"]))
        elif etype == ev.MERCHANT_READY:
            if self.stats.is_late(ts):
                return False
            created, estimate = self.pending.pop(oid, (None, None))
            if created is None or estimate is None or ts <= created or estimate <= created:
                return True
            self.stats.add(ts, math.log((ts - created) / (estimate - created)))
            _mark(self, ts)
        return True

    def value(self, now_ms: int) -> Values:
        """`estimate_log_ratio_mean` (log of actual over estimated prep) and `estimate_count`."""
        return {
            "estimate_log_ratio_mean": self.stats.mean(now_ms),
            "estimate_count": float(self.stats.count(now_ms)),
        }

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "u": self.updated_ts_ms,
            "p": sorted([k, c, e] for k, (c, e) in self.pending.items()),
            "s": self.stats.to_state(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore from `to_state` output."""
        self.updated_ts_ms = int(state["u"])
        self.pending = {str(k): (int(c), None if e is None else int(e)) for k, c, e in state["p"]}
        self.stats.load_state(state["s"])


class OrdersWaitingState:
    """Open orders of a merchant: opened by `order_created`, closed by any other event consumed.

    With `picked_up` and `order_cancelled` that is the orders waiting for their courier; with
    `merchant_ready` and `order_cancelled` the orders in preparation.
    """

    def __init__(self, output: str = "orders_waiting") -> None:
        self.updated_ts_ms = -1
        self.output = output
        self.open: dict[str, int] = {}

    def update(self, event: Mapping[str, Any]) -> bool:
        """Open on `order_created`, close on any other event.

        An event `OPEN_ORDER_TTL_MS` older than the newest event held is late.
        """
        ts = int(event["ts_ms"])
        horizon = max(ts, self.updated_ts_ms) - OPEN_ORDER_TTL_MS
        if ts < horizon:
            return False
        oid = str(event["order_id"])
        if event["type"] == ev.ORDER_CREATED:
            self.open[oid] = ts
        else:
            self.open.pop(oid, None)
        for k in [k for k, t in self.open.items() if t < horizon]:
            del self.open[k]
        _mark(self, ts)
        return True

    def value(self, now_ms: int) -> Values:
        """The open orders created at or before `now_ms`, under the output name."""
        return {self.output: float(sum(1 for t in self.open.values() if t <= now_ms))}

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {"u": self.updated_ts_ms, "o": sorted(self.open.items())}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore from `to_state` output."""
        self.updated_ts_ms = int(state["u"])
        self.open = {str(k): int(v) for k, v in state["o"]}


class WindowedState:
    """A state over one `BucketedStats` window: the base of the windowed mean, rate and count.

    Its JSON-ready state is the newest event time counted (`u`) and the window (`s`).
    """

    def __init__(self, window_ms: int, bucket_ms: int) -> None:
        self.updated_ts_ms = -1
        self.stats = BucketedStats(window_ms, bucket_ms)

    def _add(self, event: Mapping[str, Any], value: float) -> bool:
        """Count `value` at the event's time; False (and nothing counted) if it is too late."""
        ts = int(event["ts_ms"])
        if self.stats.is_late(ts):
            return False
        self.stats.add(ts, value)
        _mark(self, ts)
        return True

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {"u": self.updated_ts_ms, "s": self.stats.to_state()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore from `to_state` output."""
        self.updated_ts_ms = int(state["u"])
        self.stats.load_state(state["s"])


class MeanState(WindowedState):
    """Windowed mean of one numeric event field (courier speed, zone observed speed).

    Values below `min_value` are left out (a standing courier's zero speed, for instance).
    """

    def __init__(
        self, window_ms: int, bucket_ms: int, field: str, output: str, min_value: float = 0.0
    ) -> None:
        super().__init__(window_ms, bucket_ms)
        self.field = field
        self.output = output
        self.min_value = min_value

    def update(self, event: Mapping[str, Any]) -> bool:
        """Add the event's field value when present and at least `min_value`."""
        v = event.get(self.field)
        if v is None or float(v) < self.min_value:
            return not self.stats.is_late(int(event["ts_ms"]))
        return self._add(event, float(v))

    def update_sorted(self, ts_ms: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> int:
        """Apply many events in ascending time order; returns how many were late.

        `values` holds each event's field, NaN where absent. The state ends as if each event had
        gone through `update` in that order (bucket totals up to float rounding).
        """
        if ts_ms.size <= SMALL_BATCH:
            late_count = 0
            for ts, v in zip(ts_ms.tolist(), values.tolist(), strict=True):
                if self.stats.is_late(ts):
                    late_count += 1
                elif v >= self.min_value:  # False for NaN
                    self.stats.add(ts, v)
                    _mark(self, ts)
            return late_count
        late = self.stats.late_mask(ts_ms)
        with np.errstate(invalid="ignore"):
            present = ~late & (values >= self.min_value)
        if present.any():
            self.stats.add_sorted(ts_ms[present], values[present])
            _mark(self, int(ts_ms[present][-1]))
        return int(late.sum())

    def value(self, now_ms: int) -> Values:
        """The windowed mean under the output name."""
        return {self.output: self.stats.mean(now_ms)}


class AcceptanceState(WindowedState):
    """Courier acceptance rate: accepts over responses in the window."""

    def update(self, event: Mapping[str, Any]) -> bool:
        """Record 1 for accept, 0 for decline."""
        return self._add(event, 1.0 if event["response"] == "accept" else 0.0)

    def value(self, now_ms: int) -> Values:
        """`acceptance_rate` and `responses`."""
        return {
            "acceptance_rate": self.stats.mean(now_ms),
            "responses": float(self.stats.count(now_ms)),
        }


class CountState(WindowedState):
    """Windowed count of events (zone demand)."""

    def __init__(self, window_ms: int, bucket_ms: int, output: str) -> None:
        super().__init__(window_ms, bucket_ms)
        self.output = output

    def update(self, event: Mapping[str, Any]) -> bool:
        """Count the event."""
        return self._add(event, 1.0)

    def value(self, now_ms: int) -> Values:
        """The count under the output name."""
        return {self.output: float(self.stats.count(now_ms))}


class SupplyState:
    """Distinct couriers pinging within the window (zone supply)."""

    def __init__(self, window_ms: int) -> None:
        self.updated_ts_ms = -1
        self.seen = LastSeen(window_ms)

    def update(self, event: Mapping[str, Any]) -> bool:
        """Mark the pinging courier as present."""
        ts = int(event["ts_ms"])
        if self.seen.is_late(ts):
            return False
        self.seen.add(ts, str(event["courier_id"]))
        _mark(self, ts)
        return True

    def update_sorted(
        self,
        ts_ms: npt.NDArray[np.int64],
        courier_ids: npt.NDArray[np.object_] | npt.NDArray[np.str_],
    ) -> int:
        """Apply many pings in ascending time order; returns how many were late.

        The state ends exactly as if each ping had gone through `update` in that order.
        """
        late = self.seen.add_sorted(ts_ms, courier_ids)
        if late < ts_ms.size:
            _mark(self, int(ts_ms[-1]))
        return late

    def value(self, now_ms: int) -> Values:
        """`supply_couriers`."""
        return {"supply_couriers": float(self.seen.distinct(now_ms))}

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {"u": self.updated_ts_ms, "s": self.seen.to_state()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore from `to_state` output."""
        self.updated_ts_ms = int(state["u"])
        self.seen.load_state(state["s"])


MERCHANT = "merchant"
COURIER = "courier"
ZONE = "zone"


@dataclass(frozen=True)
class FeatureDef:
    """One feature: what it keys on, what it consumes, how fresh it must be.

    Attributes:
        name: unique feature name (also the storage key prefix).
        entity: `merchant`, `courier` or `zone`.
        consumes: event types that update it.
        sla_ms: beyond this age (now − last update) the value degrades to a coarser prior.
        factory: makes an empty state.
        outputs: names of the values it reports.
    """

    name: str
    entity: str
    consumes: frozenset[str]
    sla_ms: int
    factory: Callable[[], FeatureState]
    outputs: tuple[str, ...]


def default_features() -> tuple[FeatureDef, ...]:
    """The marketplace features the ETA and dispatch models read."""
    return (
        FeatureDef(
            "merchant_prep_30d",
            MERCHANT,
            frozenset({ev.ORDER_CREATED, ev.MERCHANT_READY}),
            7 * DAY_MS,
            lambda: PrepTimeState(30 * DAY_MS, DAY_MS),
            ("prep_mean_s", "prep_p50_s", "prep_p90_s", "prep_count"),
        ),
        FeatureDef(
            "merchant_prep_2h",
            MERCHANT,
            frozenset({ev.ORDER_CREATED, ev.MERCHANT_READY}),
            2 * HOUR_MS,
            lambda: PrepTimeState(2 * HOUR_MS, 5 * MINUTE_MS),
            ("prep_mean_s", "prep_p50_s", "prep_p90_s", "prep_count"),
        ),
        FeatureDef(
            "merchant_orders_waiting",
            MERCHANT,
            frozenset({ev.ORDER_CREATED, ev.PICKED_UP, ev.ORDER_CANCELLED}),
            2 * HOUR_MS,
            OrdersWaitingState,
            ("orders_waiting",),
        ),
        FeatureDef(
            "merchant_orders_preparing",
            MERCHANT,
            frozenset({ev.ORDER_CREATED, ev.MERCHANT_READY, ev.ORDER_CANCELLED}),
            2 * HOUR_MS,
            lambda: OrdersWaitingState("orders_preparing"),
            ("orders_preparing",),
        ),
        FeatureDef(
            "merchant_estimate_error_30d",
            MERCHANT,
            frozenset({ev.ORDER_CREATED, ev.MERCHANT_ESTIMATE, ev.MERCHANT_READY}),
            7 * DAY_MS,
            lambda: EstimateErrorState(30 * DAY_MS, DAY_MS),
            ("estimate_log_ratio_mean", "estimate_count"),
        ),
        FeatureDef(
            "courier_speed_30d",
            COURIER,
            frozenset({ev.COURIER_PING}),
            DAY_MS,
            lambda: MeanState(
                30 * DAY_MS, DAY_MS, "speed_mps", "speed_mean_mps", min_value=MOVING_MIN_MPS
            ),
            ("speed_mean_mps",),
        ),
        FeatureDef(
            "courier_acceptance_30d",
            COURIER,
            frozenset({ev.ASSIGNMENT_RESPONSE}),
            7 * DAY_MS,
            lambda: AcceptanceState(30 * DAY_MS, DAY_MS),
            ("acceptance_rate", "responses"),
        ),
        FeatureDef(
            "zone_supply",
            ZONE,
            frozenset({ev.COURIER_PING}),
            10 * MINUTE_MS,
            lambda: SupplyState(10 * MINUTE_MS),
            ("supply_couriers",),
        ),
        FeatureDef(
            "zone_demand_1h",
            ZONE,
            frozenset({ev.ORDER_CREATED}),
            6 * HOUR_MS,
            lambda: CountState(HOUR_MS, 5 * MINUTE_MS, "demand_orders"),
            ("demand_orders",),
        ),
        FeatureDef(
            "zone_speed_1h",
            ZONE,
            frozenset({ev.COURIER_PING}),
            15 * MINUTE_MS,
            lambda: MeanState(
                HOUR_MS, 5 * MINUTE_MS, "speed_mps", "observed_speed_mps", min_value=MOVING_MIN_MPS
            ),
            ("observed_speed_mps",),
        ),
    )


def hour_of_week(now_ms: int, utc_offset_ms: int = 0) -> float:
    """Fractional local hour of the week in [0, 168), Monday 00:00 = 0.

    Example:
        >>> hour_of_week(0)  # 1970-01-01 was a Thursday
        72.0
    """
    hours = (now_ms + utc_offset_ms) / HOUR_MS
    return float(((hours // 24 + 3) % 7) * 24 + hours % 24)


def couriers_per_order(supply: float, demand: float) -> float:
    """A zone's supply/demand ratio: couriers per order, demand floored at 1.

    Example:
        >>> couriers_per_order(3.0, 2.0), couriers_per_order(3.0, 0.0)
        (1.5, 3.0)
    """
    return supply / max(demand, 1.0)


def supply_demand_ratio(supply: float | None, demand: float | None) -> float | None:
    """Couriers per order in the last hour (demand floored at 1); None if either is unknown."""
    if supply is None or demand is None:
        return None
    return couriers_per_order(supply, demand)


def surge_multiplier(ratio: float, cap: float) -> float:
    """A zone's price multiplier from its couriers per order (`couriers_per_order`).

    1 plus half of the orders per courier above 1, at most `cap`: a zone with at least one
    courier per order does not surge, and one without couriers (`ratio` 0) surges to the cap.

    Example:
        >>> surge_multiplier(1 / 3, cap=3.0)  # three orders per courier
        2.0
        >>> surge_multiplier(1.5, cap=3.0), surge_multiplier(0.1, cap=3.0)
        (1.0, 3.0)
    """
    if ratio <= 0:
        return cap
    return min(cap, 1.0 + max(0.0, 1.0 / ratio - 1.0) * 0.5)
