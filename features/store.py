"""Feature state engine: routes events to feature states and reads values with staleness.

One `FeatureEngine` holds the routing and read logic; where state lives is a `StateBackend`:
`MappingBackend` keeps serialized state in any `MutableMapping[bytes, bytes]` (a Faust
RocksDB table, a rocksdict `Rdict`) and is the online store; `MemoryBackend` keeps live
objects and serves the offline builder.

Every value comes with the level it was read at. A state older than its feature's SLA (or
absent) degrades to the next coarser prior — entity → city (geohash-4 of the entity's
location) → global — and each degradation is reported to the injected `on_degrade` callback
(`DegradationCounts` is a ready-made one the worker can export as a metric).

An event too old for a windowed feature's window (see `features.definitions.FeatureState`)
changes none of its values; it is reported to the injected `on_late(feature, level)` callback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from contracts.geo import encode as geohash_encode
from features import events as ev
from features.definitions import (
    COURIER,
    MERCHANT,
    ZONE,
    FeatureDef,
    FeatureState,
    Values,
    default_features,
    hour_of_week,
    supply_demand_ratio,
)

ZONE_PRECISION = 6
CITY_PRECISION = 4
ENTITY = "entity"
CITY = "city"
GLOBAL = "global"
MISSING = "missing"
GLOBAL_KEY = "*"

#: `on_degrade(feature_name, level_used, reason)`; reason is `stale` or `missing`.
DegradeCallback = Callable[[str, str, str], None]

#: `on_late(feature_name, level)`: an event came too late to count in that state's window.
LateCallback = Callable[[str, str], None]


class DegradationCounts:
    """Thread-safe counts of degradations by (feature, level used, reason).

    Pass an instance as `on_degrade`; read `snapshot()` to export (e.g. as a Prometheus
    counter `dispatchflow_feature_degradations_total{feature,level,reason}`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = {}

    def __call__(self, feature: str, level: str, reason: str) -> None:
        """Count one degradation."""
        with self._lock:
            key = (feature, level, reason)
            self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> dict[tuple[str, str, str], int]:
        """A copy of the counts."""
        with self._lock:
            return dict(self._counts)

    def total(self) -> int:
        """All degradations counted so far."""
        with self._lock:
            return sum(self._counts.values())


class StateBackend(Protocol):
    """Where feature states and routing context live."""

    def load(self, fdef: FeatureDef, level: str, key: str) -> FeatureState | None:
        """The state of `fdef` at `level`/`key`, or None."""
        ...

    def save(self, fdef: FeatureDef, level: str, key: str, state: FeatureState) -> None:
        """Store a state after an update."""
        ...

    def get_context(self, name: str) -> str | None:
        """A routing fact (e.g. the city of a merchant)."""
        ...

    def set_context(self, name: str, value: str) -> None:
        """Store a routing fact."""
        ...


def _state_key(fdef: FeatureDef, level: str, key: str) -> bytes:
    return f"f|{fdef.name}|{level}|{key}".encode()


class MappingBackend:
    """Serialized state (orjson) in a `MutableMapping[bytes, bytes]`."""

    def __init__(self, mapping: MutableMapping[bytes, bytes]) -> None:
        self.mapping = mapping

    def load(self, fdef: FeatureDef, level: str, key: str) -> FeatureState | None:
        """Deserialize the stored state, or None."""
        raw = self.mapping.get(_state_key(fdef, level, key))
        if raw is None:
            return None
        state = fdef.factory()
        state.load_state(orjson.loads(raw))
        return state

    def save(self, fdef: FeatureDef, level: str, key: str, state: FeatureState) -> None:
        """Serialize and store."""
        self.mapping[_state_key(fdef, level, key)] = orjson.dumps(state.to_state())

    def get_context(self, name: str) -> str | None:
        """Stored routing fact, or None."""
        raw = self.mapping.get(f"c|{name}".encode())
        return None if raw is None else bytes(raw).decode()

    def set_context(self, name: str, value: str) -> None:
        """Store a routing fact."""
        self.mapping[f"c|{name}".encode()] = value.encode()


class MemoryBackend:
    """Live state objects in a dict (offline builder)."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, str, str], FeatureState] = {}
        self.context: dict[str, str] = {}

    def load(self, fdef: FeatureDef, level: str, key: str) -> FeatureState | None:
        """The live state, or None."""
        return self.states.get((fdef.name, level, key))

    def save(self, fdef: FeatureDef, level: str, key: str, state: FeatureState) -> None:
        """Keep the live state."""
        self.states[(fdef.name, level, key)] = state

    def get_context(self, name: str) -> str | None:
        """Stored routing fact, or None."""
        return self.context.get(name)

    def set_context(self, name: str, value: str) -> None:
        """Store a routing fact."""
        self.context[name] = value


@dataclass(frozen=True)
class FeatureRead:
    """Values of one feature as served.

    Attributes:
        feature: feature name.
        values: outputs (None where unknown).
        level: `entity`, `city`, `global` or `missing`.
        updated_ts_ms: update time of the state read (None if missing).
    """

    feature: str
    values: Values
    level: str
    updated_ts_ms: int | None


def _noop(feature: str, level: str, reason: str) -> None:
    return None


def _no_late(feature: str, level: str) -> None:
    return None


#: Per entity kind with a city prior: its id field, and the event type that places it (with
#: the fields of that point). Its city is remembered as backend context
#: `<entity kind>_city|<id>` for its other events.
_PLACED_BY = {
    MERCHANT: ("merchant_id", ev.ORDER_CREATED, "pickup_lat", "pickup_lon"),
    COURIER: ("courier_id", ev.COURIER_PING, "lat", "lon"),
}


class FeatureEngine:
    """Applies events to feature states and reads them with staleness degradation."""

    def __init__(
        self,
        backend: StateBackend,
        features: Iterable[FeatureDef] | None = None,
        on_degrade: DegradeCallback | None = None,
        utc_offset_ms: int = 0,
        *,
        on_late: LateCallback | None = None,
    ) -> None:
        self.backend = backend
        self.features = tuple(features if features is not None else default_features())
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        self.by_name = {f.name: f for f in self.features}
        self.on_degrade = on_degrade or _noop
        self.on_late = on_late or _no_late
        self.utc_offset_ms = utc_offset_ms

    # -- routing ----------------------------------------------------------------------------

    def _targets(self, fdef: FeatureDef, event: Mapping[str, Any]) -> list[tuple[str, str]]:
        etype = event["type"]
        city: str | None
        if fdef.entity in _PLACED_BY:
            id_field, placing_type, lat_field, lon_field = _PLACED_BY[fdef.entity]
            entity = str(event[id_field])
            context = f"{fdef.entity}_city|{entity}"
            if etype == placing_type:
                city = geohash_encode(event[lat_field], event[lon_field], CITY_PRECISION)
                self.backend.set_context(context, city)
            else:
                city = self.backend.get_context(context)
        else:
            if etype == ev.ORDER_CREATED:
                lat, lon = event["pickup_lat"], event["pickup_lon"]
            else:
                lat, lon = event["lat"], event["lon"]
            entity = geohash_encode(lat, lon, ZONE_PRECISION)
            city = entity[:CITY_PRECISION]
        out = [(ENTITY, entity), (GLOBAL, GLOBAL_KEY)]
        if city is not None:
            out.insert(1, (CITY, city))
        return out

    def apply(self, event: Mapping[str, Any]) -> str:
        """Validate `event` and update every feature that consumes it; returns its type.

        Each state the event is too late for is reported to `on_late` and not written.

        Raises:
            EventError: the event is malformed (nothing is updated).
        """
        etype = ev.validate_event(event)
        for fdef in self.features:
            if etype not in fdef.consumes:
                continue
            for level, key in self._targets(fdef, event):
                state = self.backend.load(fdef, level, key)
                if state is None:
                    state = fdef.factory()
                if state.update(event):
                    self.backend.save(fdef, level, key, state)
                else:
                    self.on_late(fdef.name, level)
        return etype

    # -- reading ----------------------------------------------------------------------------

    def read(
        self, feature: str, entity_key: str, now_ms: int, city: str | None = None
    ) -> FeatureRead:
        """Serve `feature` for an entity at `now_ms`, degrading entity → city → global.

        For zone features `entity_key` is the geohash-6 cell and the city is its geohash-4
        parent. For merchants and couriers the city defaults to the one last seen in events.
        """
        fdef = self.by_name.get(feature)
        if fdef is None:
            raise KeyError(f"unknown feature {feature!r}")
        if city is None:
            if fdef.entity == ZONE:
                city = entity_key[:CITY_PRECISION]
            else:
                city = self.backend.get_context(f"{fdef.entity}_city|{entity_key}")
        chain = [(ENTITY, entity_key)]
        if city is not None:
            chain.append((CITY, city))
        chain.append((GLOBAL, GLOBAL_KEY))
        reason = ""
        for i, (level, key) in enumerate(chain):
            state = self.backend.load(fdef, level, key)
            if state is None or state.updated_ts_ms < 0:
                reason = reason or "missing"
                continue
            if now_ms - state.updated_ts_ms > fdef.sla_ms:
                reason = reason or "stale"
                continue
            if i > 0:
                self.on_degrade(fdef.name, level, reason)
            return FeatureRead(fdef.name, state.value(now_ms), level, state.updated_ts_ms)
        self.on_degrade(fdef.name, MISSING, reason or "missing")
        return FeatureRead(fdef.name, dict.fromkeys(fdef.outputs), MISSING, None)

    def read_global(self, feature: str, now_ms: int) -> FeatureRead:
        """The marketplace-wide prior of `feature` at `now_ms` (`global`, or `missing`).

        A prior, not a degraded entity: nothing is reported to `on_degrade`.
        """
        fdef = self.by_name[feature]
        state = self.backend.load(fdef, GLOBAL, GLOBAL_KEY)
        if state is None or state.updated_ts_ms < 0 or now_ms - state.updated_ts_ms > fdef.sla_ms:
            return FeatureRead(fdef.name, dict.fromkeys(fdef.outputs), MISSING, None)
        return FeatureRead(fdef.name, state.value(now_ms), GLOBAL, state.updated_ts_ms)

    def zone_supply_demand(self, zone: str, now_ms: int) -> tuple[float, float]:
        """A zone's supply (`zone_supply`) and demand (`zone_demand_1h`) at `now_ms`.

        The zone's own windowed counts, never a coarser prior: a zone without state counts
        nothing in either window (as a stale one does: each SLA is at least its window), and
        nothing is reported as degraded. `supply_demand_ratio` of the pair is the ratio the
        order rows carry and surge prices (`dispatch.live.surge`).
        """
        counts = []
        for feature, output in (
            ("zone_supply", "supply_couriers"),
            ("zone_demand_1h", "demand_orders"),
        ):
            state = self.backend.load(self.by_name[feature], ENTITY, zone)
            found = None if state is None else state.value(now_ms)[output]
            counts.append(0.0 if found is None else float(found))
        return counts[0], counts[1]

    def order_features(
        self, merchant_id: str, pickup_lat: float, pickup_lon: float, now_ms: int
    ) -> dict[str, Any]:
        """The feature row of an order at `now_ms`.

        Keys: `<feature>.<output>` values, `<feature>@level` levels, `supply_demand_ratio` and
        `hour_of_week`.
        """
        zone = geohash_encode(pickup_lat, pickup_lon, ZONE_PRECISION)
        city = zone[:CITY_PRECISION]
        row: dict[str, Any] = {}
        for fdef in self.features:
            if fdef.entity == MERCHANT:
                r = self.read(fdef.name, merchant_id, now_ms, city=city)
            elif fdef.entity == ZONE:
                r = self.read(fdef.name, zone, now_ms)
            else:
                continue
            for k, v in r.values.items():
                row[f"{fdef.name}.{k}"] = v
            row[f"{fdef.name}@level"] = r.level
        row["supply_demand_ratio"] = supply_demand_ratio(
            row.get("zone_supply.supply_couriers"), row.get("zone_demand_1h.demand_orders")
        )
        row["hour_of_week"] = hour_of_week(now_ms, self.utc_offset_ms)
        return row


class OnlineFeatureStore(FeatureEngine):
    """The online materialization: feature state serialized into a bytes mapping.

    Example:
        >>> store = OnlineFeatureStore({})
        >>> _ = store.apply({"type": "courier_ping", "event_id": "e1", "ts_ms": 1_000,
        ...                  "courier_id": "c1", "lat": 40.7, "lon": -74.0, "speed_mps": 5.0})
        >>> store.read("courier_speed_30d", "c1", 2_000).values
        {'speed_mean_mps': 5.0}
    """

    def __init__(
        self,
        mapping: MutableMapping[bytes, bytes],
        features: Iterable[FeatureDef] | None = None,
        on_degrade: DegradeCallback | None = None,
        utc_offset_ms: int = 0,
        *,
        on_late: LateCallback | None = None,
    ) -> None:
        super().__init__(
            MappingBackend(mapping), features, on_degrade, utc_offset_ms, on_late=on_late
        )
