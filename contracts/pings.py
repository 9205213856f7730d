"""Vectorized decoding of ping records (`courier_ping` or `courier_ping_batch`) into columns.

Accepts exactly what the JSON Schemas accept: a fast path proves a whole batch valid with array
checks; anything it cannot prove falls back to per-fix schema validation, so the verdict on every
fix equals the schema's. Valid fixes come back as `PingColumns`; invalid ones as `PingReject`s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import fastjsonschema
import numpy as np
import numpy.typing as npt

from contracts.columns import take_rows
from contracts.limits import DecodeLimits, bounded_loads, check_bounds
from contracts.rejections import EventRejected, RejectReason
from contracts.schemas import compiled_validator, load_schema
from contracts.validation import TimeBounds, validate_schema

_FIX_FIELDS = ("courier_id", "lat", "lon", "ts_ms", "speed_mps", "heading_deg", "accuracy_m")
_REQUIRED = frozenset(("courier_id", "lat", "lon", "ts_ms"))
_ALLOWED = frozenset(_FIX_FIELDS)
_IDS = re.compile(r"(?:[A-Za-z0-9_.:@-]{1,128}\n)*")
_NAN = float("nan")
_OPTIONAL_RANGES = {"speed_mps": (0.0, 70.0), "heading_deg": (0.0, 360.0), "accuracy_m": (0.0, 1e4)}
_MAX_TS_MS = 4102444800000
_NUMBER: frozenset[type] = frozenset((int, float))
_STR: frozenset[type] = frozenset((str,))
_INT: frozenset[type] = frozenset((int,))


@dataclass
class PingColumns:
    """Valid fixes as parallel arrays; optional fields are NaN where absent."""

    courier_id: npt.NDArray[np.object_]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    ts_ms: npt.NDArray[np.int64]
    speed_mps: npt.NDArray[np.float64]
    heading_deg: npt.NDArray[np.float64]
    accuracy_m: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.lat.shape[0])

    def take(self, index: npt.NDArray[np.intp]) -> PingColumns:
        """The fixes at `index`, in that order."""
        return take_rows(self, index)


@dataclass(frozen=True)
class PingReject:
    """One invalid fix (or the whole record when `index` is None) and why."""

    reason: RejectReason
    message: str
    index: int | None = None
    fix: Any = None


@dataclass
class DecodedPings:
    """Result of decoding one ping record."""

    columns: PingColumns
    rejects: list[PingReject] = field(default_factory=list)
    event_id: str | None = None


def _fix_validator() -> Any:
    schema = dict(load_schema("courier_ping_batch"))
    item = schema["properties"]["pings"]["items"]
    return fastjsonschema.compile({**item, "definitions": schema["definitions"]})


_validate_fix = _fix_validator()


def decode_pings(
    value: bytes | None,
    record_ts_ms: int | None,
    bounds: TimeBounds,
    max_batch: int,
    limits: DecodeLimits | None = None,
) -> DecodedPings:
    """Decode a ping record; whole-record problems raise `EventRejected`, per-fix ones are listed.

    The record is parsed within `limits` (`contracts.limits`; a batch's fixes are bounded one by
    one, so that one bad fix rejects only itself). A `courier_ping` is treated as a batch of one
    fix whose time is the event's `ts_ms`. Fix times are checked against the record time, or
    against the batch time when the record has none.
    """
    raw = bounded_loads(value, limits or DecodeLimits(), skip="pings")
    if isinstance(raw, dict) and raw.get("type") == "courier_ping_batch":
        pings = raw.get("pings")
        if isinstance(pings, list) and len(pings) > max_batch:
            msg = f"batch of {len(pings)} fixes exceeds the limit of {max_batch}"
            raise EventRejected(RejectReason.BATCH_TOO_LARGE, msg)
        _validate_envelope(raw)
        bounds.check(raw["ts_ms"], record_ts_ms)
        reference_ts_ms = record_ts_ms if record_ts_ms is not None and record_ts_ms >= 0 else None
        return _decode_fixes(
            raw["pings"],
            raw["ts_ms"] if reference_ts_ms is None else reference_ts_ms,
            bounds,
            str(raw["event_id"]),
            limits or DecodeLimits(),
        )
    event = validate_schema(raw, frozenset(("courier_ping",)))
    bounds.check(event["ts_ms"], record_ts_ms)
    fix = {k: event[k] for k in _FIX_FIELDS if k in event}
    return DecodedPings(_columns_from_fixes([fix]), [], str(event["event_id"]))


def _validate_envelope(raw: dict[str, Any]) -> None:
    """Validate the batch without re-checking each fix (done by `_decode_fixes`)."""
    envelope = {**raw, "pings": [{"courier_id": "x", "lat": 0, "lon": 0, "ts_ms": 0}]}
    try:
        compiled_validator("courier_ping_batch")(envelope)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise EventRejected(RejectReason.SCHEMA_INVALID, str(exc.message)) from exc
    if not isinstance(raw.get("pings"), list) or not raw["pings"]:
        raise EventRejected(RejectReason.SCHEMA_INVALID, "pings must be a non-empty array")


def _decode_fixes(
    fixes: list[Any],
    reference_ts_ms: int,
    bounds: TimeBounds,
    event_id: str,
    limits: DecodeLimits,
) -> DecodedPings:
    columns = _fast_columns(fixes)
    if columns is not None and not _time_violations(columns.ts_ms, reference_ts_ms, bounds).any():
        return DecodedPings(columns, [], event_id)
    good: list[dict[str, Any]] = []
    rejects: list[PingReject] = []
    for i, fix in enumerate(fixes):
        try:
            check_bounds(fix, limits)
        except EventRejected as exc:
            rejects.append(PingReject(exc.reason, f"pings[{i}]: {exc.message}", i, fix))
            continue
        try:
            _validate_fix(fix)
        except fastjsonschema.JsonSchemaValueException as exc:
            rejects.append(PingReject(RejectReason.SCHEMA_INVALID, str(exc.message), i, fix))
            continue
        try:
            bounds.check(fix["ts_ms"], reference_ts_ms, what=f"pings[{i}].ts_ms")
        except EventRejected as exc:
            rejects.append(PingReject(exc.reason, exc.message, i, fix))
            continue
        good.append(fix)
    return DecodedPings(_columns_from_fixes(good), rejects, event_id)


def _types_within(values: list[Any], allowed: frozenset[type]) -> bool:
    return set(map(type, values)) <= allowed


def _fast_columns(fixes: list[Any]) -> PingColumns | None:
    """Columns of `fixes` if every fix is certainly schema-valid, else None (check one by one)."""
    if not all(type(f) is dict and _REQUIRED <= f.keys() <= _ALLOWED for f in fixes):
        return None
    ids = [f["courier_id"] for f in fixes]
    if not _types_within(ids, _STR):
        return None
    lines = "\n".join(ids) + "\n"
    # One line per id: an id holding a newline would pass the pattern as two ids.
    if lines.count("\n") != len(ids) or _IDS.fullmatch(lines) is None:
        return None
    ts = [f["ts_ms"] for f in fixes]
    if not _types_within(ts, _INT) or min(ts) < 0 or max(ts) > _MAX_TS_MS:
        return None
    lat = [f["lat"] for f in fixes]
    lon = [f["lon"] for f in fixes]
    if not (_types_within(lat, _NUMBER) and _types_within(lon, _NUMBER)):
        return None
    lat_a = np.array(lat, dtype=np.float64)
    lon_a = np.array(lon, dtype=np.float64)
    ts_a = np.array(ts, dtype=np.int64)
    if (np.abs(lat_a) > 90).any() or (np.abs(lon_a) > 180).any():
        return None
    optional: dict[str, npt.NDArray[np.float64]] = {}
    for name, (low, high) in _OPTIONAL_RANGES.items():
        if not _types_within([f[name] for f in fixes if name in f], _NUMBER):
            return None  # wrong types, null included: the schema check names the fix
        array = np.array([f.get(name, _NAN) for f in fixes], dtype=np.float64)
        if (array < low).any() or (array > high).any():
            return None
        optional[name] = array
    return PingColumns(
        courier_id=np.array(ids, dtype=object),
        lat=lat_a,
        lon=lon_a,
        ts_ms=ts_a,
        speed_mps=optional["speed_mps"],
        heading_deg=optional["heading_deg"],
        accuracy_m=optional["accuracy_m"],
    )


def _time_violations(
    ts_ms: npt.NDArray[np.int64], record_ts_ms: int | None, bounds: TimeBounds
) -> npt.NDArray[np.bool_]:
    if record_ts_ms is None or record_ts_ms < 0:
        return np.zeros(ts_ms.shape, dtype=bool)
    early = ts_ms < record_ts_ms - bounds.max_age_ms
    late = ts_ms > record_ts_ms + bounds.max_lead_ms
    return early | late


def _columns_from_fixes(fixes: list[dict[str, Any]]) -> PingColumns:
    n = len(fixes)
    nan = float("nan")

    def floats(name: str) -> npt.NDArray[np.float64]:
        return np.fromiter((f.get(name, nan) for f in fixes), dtype=np.float64, count=n)

    return PingColumns(
        courier_id=np.array([f["courier_id"] for f in fixes], dtype=object).reshape(n),
        lat=floats("lat"),
        lon=floats("lon"),
        ts_ms=np.fromiter((f["ts_ms"] for f in fixes), dtype=np.int64, count=n),
        speed_mps=floats("speed_mps"),
        heading_deg=floats("heading_deg"),
        accuracy_m=floats("accuracy_m"),
    )


def latest_per_courier(columns: PingColumns) -> list[tuple[str, int]]:
    """(courier id, newest fix time) of every courier in `columns`, in first-seen order."""
    newest: dict[str, int] = {}
    for courier_id, ts_ms in zip(columns.courier_id.tolist(), columns.ts_ms.tolist(), strict=True):
        if ts_ms > newest.get(courier_id, -1):
            newest[courier_id] = ts_ms
    return list(newest.items())
