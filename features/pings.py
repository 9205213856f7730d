"""Courier pings into the feature states in bulk, with the same result as one event at a time.

Pings are too many for `FeatureEngine.apply` (a state load, update and save per ping and
feature level). `apply_pings` takes a batch as columns, sorts it by event time, groups it by
the state each ping updates (courier, zone, city and global levels) and applies each group with
the state's `update_sorted`, loading and saving every touched state once. The states and
routing facts end as if the pings had gone through `FeatureEngine.apply` one by one in time
order (windowed sums may differ by float rounding); each late ping is reported to the engine's
`on_late` as `apply` would.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from contracts.columns import take_rows
from contracts.geo import encode_ints as geohash_int_np
from contracts.geo import int_to_geohash as geohash_int_to_str
from features import events as ev
from features.definitions import COURIER, ZONE, FeatureDef, MeanState, SupplyState
from features.store import (
    CITY,
    CITY_PRECISION,
    ENTITY,
    GLOBAL,
    GLOBAL_KEY,
    ZONE_PRECISION,
    FeatureEngine,
)

#: Courier ids: an object array, or a fixed-width string array (not tracked by the GC).
IdArray = npt.NDArray[np.object_] | npt.NDArray[np.str_]


@dataclass(frozen=True)
class PingBatch:
    """Validated pings as parallel arrays (the shape of `courier_ping` events).

    Attributes:
        courier_id: courier of each ping (object or fixed-width string array).
        lat: latitude, degrees.
        lon: longitude, degrees.
        ts_ms: event time, epoch milliseconds.
        speed_mps: speed, NaN where the ping has none.
    """

    courier_id: IdArray
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    ts_ms: npt.NDArray[np.int64]
    speed_mps: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        n = self.courier_id.shape[0]
        if any(a.shape != (n,) for a in (self.lat, self.lon, self.ts_ms, self.speed_mps)):
            raise ValueError("every column of a ping batch must have the same length")

    def __len__(self) -> int:
        return int(self.ts_ms.shape[0])

    def take(self, index: npt.NDArray[np.intp]) -> PingBatch:
        """The pings at `index`, in that order."""
        return take_rows(self, index)

    @staticmethod
    def concat(batches: list[PingBatch]) -> PingBatch:
        """All pings of `batches`, in order."""
        if not batches:
            return PingBatch(
                np.array([], dtype=object),
                np.array([], dtype=np.float64),
                np.array([], dtype=np.float64),
                np.array([], dtype=np.int64),
                np.array([], dtype=np.float64),
            )
        return PingBatch(
            np.concatenate([b.courier_id for b in batches]),
            np.concatenate([b.lat for b in batches]),
            np.concatenate([b.lon for b in batches]),
            np.concatenate([b.ts_ms for b in batches]),
            np.concatenate([b.speed_mps for b in batches]),
        )


def apply_pings(
    engine: FeatureEngine, pings: PingBatch, entities: Collection[str] = (COURIER, ZONE)
) -> int:
    """Apply a batch of validated pings to the features of `entities` that consume pings.

    Returns the number of pings applied. Features whose states have no `update_sorted` are
    fed one event at a time (same result, slower). Courier cities (the routing fact of a
    courier's features) are recorded only when courier features are fed.
    """
    n = len(pings)
    if n == 0:
        return 0
    pings = pings.take(np.argsort(pings.ts_ms, kind="stable"))
    zone = geohash_int_np(pings.lat, pings.lon, ZONE_PRECISION)
    city = zone >> (5 * (ZONE_PRECISION - CITY_PRECISION))
    if COURIER in entities:
        _set_courier_cities(engine, pings, city)
    for fdef in engine.features:
        if ev.COURIER_PING not in fdef.consumes or fdef.entity not in entities:
            continue
        groups: list[tuple[str, Iterator[tuple[str, npt.NDArray[np.intp] | None]]]]
        if fdef.entity == COURIER:
            groups = [(ENTITY, _by_value(pings.courier_id))]
        elif fdef.entity == ZONE:
            groups = [(ENTITY, _by_cell(zone, ZONE_PRECISION))]
        else:  # pragma: no cover - pings update only courier and zone features
            raise ValueError(f"feature {fdef.name} of entity {fdef.entity} consumes pings")
        groups.append((CITY, _by_cell(city, CITY_PRECISION)))
        groups.append((GLOBAL, iter([(GLOBAL_KEY, None)])))
        for level, keyed in groups:
            for key, rows in keyed:
                _apply_group(engine, fdef, level, key, pings, rows)
    return n


def _apply_group(
    engine: FeatureEngine,
    fdef: FeatureDef,
    level: str,
    key: str,
    pings: PingBatch,
    rows: npt.NDArray[np.intp] | None,
) -> None:
    """Apply the pings at `rows` (all if None; time order) to one state; report the late ones."""
    state = engine.backend.load(fdef, level, key)
    if state is None:
        state = fdef.factory()
    ts_ms = pings.ts_ms if rows is None else pings.ts_ms[rows]
    # Only the columns a state reads are gathered: the batch can hold a million pings.
    if isinstance(state, MeanState) and state.field == "speed_mps":
        speed = pings.speed_mps if rows is None else pings.speed_mps[rows]
        late = state.update_sorted(ts_ms, speed)
    elif isinstance(state, SupplyState):
        ids = pings.courier_id if rows is None else pings.courier_id[rows]
        late = state.update_sorted(ts_ms, ids)
    else:
        late = sum(
            not state.update(event)
            for event in _events(pings if rows is None else pings.take(rows))
        )
    if late < ts_ms.size:
        engine.backend.save(fdef, level, key, state)
    for _ in range(late):
        engine.on_late(fdef.name, level)


def _set_courier_cities(
    engine: FeatureEngine, pings: PingBatch, city: npt.NDArray[np.int64]
) -> None:
    """Each courier's city is the one of its newest ping (what one-by-one routing leaves)."""
    newest = dict(zip(pings.courier_id.tolist(), city.tolist(), strict=True))
    for courier_id, cell in newest.items():
        name = f"courier_city|{courier_id}"
        value = geohash_int_to_str(cell, CITY_PRECISION)
        if engine.backend.get_context(name) != value:
            engine.backend.set_context(name, value)


def _by_value(values: IdArray) -> Iterator[tuple[str, npt.NDArray[np.intp]]]:
    """(value, rows holding it in ascending order) for each distinct value."""
    rows: dict[str, list[int]] = {}
    for i, v in enumerate(values.tolist()):
        rows.setdefault(str(v), []).append(i)
    for v, r in rows.items():
        yield v, np.asarray(r, dtype=np.intp)


def _by_cell(
    cells: npt.NDArray[np.int64], precision: int
) -> Iterator[tuple[str, npt.NDArray[np.intp]]]:
    """(geohash, rows in that cell in ascending order) for each distinct cell."""
    order = np.argsort(cells, kind="stable")
    sorted_cells = cells[order]
    starts = np.flatnonzero(np.r_[True, sorted_cells[1:] != sorted_cells[:-1]])
    ends = np.r_[starts[1:], cells.size]
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        yield geohash_int_to_str(int(sorted_cells[s]), precision), order[s:e]


def _events(pings: PingBatch) -> Iterator[dict[str, object]]:
    """The pings as `courier_ping` events (for states without a bulk update)."""
    for cid, lat, lon, ts, speed in zip(
        pings.courier_id.tolist(),
        pings.lat.tolist(),
        pings.lon.tolist(),
        pings.ts_ms.tolist(),
        pings.speed_mps.tolist(),
        strict=True,
    ):
        yield {
            "type": ev.COURIER_PING,
            "event_id": f"ping:{cid}:{ts}",
            "ts_ms": ts,
            "courier_id": cid,
            "lat": lat,
            "lon": lon,
            "speed_mps": None if speed != speed else speed,
        }
