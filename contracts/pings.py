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

from contracts.schemas import compiled_validator, load_schema
from contracts.validation import (
    EventRejected,
    RejectReason,
    TimeBounds,
    decode_json,
    validate_schema,
)

_FIX_FIELDS = ("courier_id", "lat", "lon", "ts_ms", "speed_mps", "heading_deg", "accuracy_m")
_REQUIRED = frozenset(("courier_id", "lat", "lon", "ts_ms"))
_ALLOWED = frozenset(_FIX_FIELDS)
_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
_OPTIONAL_RANGES = {"speed_mps": (0.0, 70.0), "heading_deg": (0.0, 360.0), "accuracy_m": (0.0, 1e4)}
_MAX_TS_MS = 4102444800000
_NUMBER = (int, float)


@dataclass
class PingColumns:
    """Valid fixes as parallel arrays; optional fields are NaN where absent."""

    courier_id: npt.NDArray[np.str_]
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
        return PingColumns(
            self.courier_id[index],
            self.lat[index],
            self.lon[index],
            self.ts_ms[index],
            self.speed_mps[index],
            self.heading_deg[index],
            self.accuracy_m[index],
        )


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


def empty_columns() -> PingColumns:
    """Columns holding no fix."""
    return _columns_from_fixes([])


def _fix_validator() -> Any:
    schema = dict(load_schema("courier_ping_batch"))
    item = schema["properties"]["pings"]["items"]
    return fastjsonschema.compile({**item, "definitions": schema["definitions"]})


_validate_fix = _fix_validator()


def decode_pings(
    value: bytes | None, record_ts_ms: int | None, bounds: TimeBounds, max_batch: int
) -> DecodedPings:
    """Decode a ping record; whole-record problems raise `EventRejected`, per-fix ones are listed.

    A `courier_ping` is treated as a batch of one fix whose time is the event's `ts_ms`.
    """
    raw = decode_json(value)
    if isinstance(raw, dict) and raw.get("type") == "courier_ping_batch":
        pings = raw.get("pings")
        if isinstance(pings, list) and len(pings) > max_batch:
            msg = f"batch of {len(pings)} fixes exceeds the limit of {max_batch}"
            raise EventRejected(RejectReason.BATCH_TOO_LARGE, msg)
        _validate_envelope(raw)
        bounds.check(raw["ts_ms"], record_ts_ms)
        return _decode_fixes(raw["pings"], record_ts_ms, bounds, str(raw["event_id"]))
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
    fixes: list[Any], record_ts_ms: int | None, bounds: TimeBounds, event_id: str
) -> DecodedPings:
    if _fast_path_valid(fixes):
        columns = _columns_from_fixes(fixes)
        bad_time = _time_violations(columns.ts_ms, record_ts_ms, bounds)
        if not bad_time.any():
            return DecodedPings(columns, [], event_id)
    good: list[dict[str, Any]] = []
    rejects: list[PingReject] = []
    for i, fix in enumerate(fixes):
        try:
            _validate_fix(fix)
        except fastjsonschema.JsonSchemaValueException as exc:
            rejects.append(PingReject(RejectReason.SCHEMA_INVALID, str(exc.message), i, fix))
            continue
        try:
            bounds.check(fix["ts_ms"], record_ts_ms, what=f"pings[{i}].ts_ms")
        except EventRejected as exc:
            rejects.append(PingReject(exc.reason, exc.message, i, fix))
            continue
        good.append(fix)
    return DecodedPings(_columns_from_fixes(good), rejects, event_id)


def _fast_path_valid(fixes: list[Any]) -> bool:
    """True only if every fix is certainly schema-valid (False means: check one by one)."""
    for fix in fixes:
        if type(fix) is not dict:
            return False
        keys = fix.keys()
        if not (_REQUIRED <= keys <= _ALLOWED):
            return False
        cid = fix["courier_id"]
        if type(cid) is not str or _ID_PATTERN.fullmatch(cid) is None:
            return False
        if type(fix["ts_ms"]) is not int:
            return False
        for name in ("lat", "lon", *_OPTIONAL_RANGES):
            if name in fix and type(fix[name]) not in _NUMBER:
                return False
    lat = np.fromiter((f["lat"] for f in fixes), dtype=np.float64, count=len(fixes))
    lon = np.fromiter((f["lon"] for f in fixes), dtype=np.float64, count=len(fixes))
    ts = np.fromiter((f["ts_ms"] for f in fixes), dtype=np.int64, count=len(fixes))
    if (np.abs(lat) > 90).any() or (np.abs(lon) > 180).any():
        return False
    if (ts < 0).any() or (ts > _MAX_TS_MS).any():
        return False
    for name, (low, high) in _OPTIONAL_RANGES.items():
        values = np.fromiter((f.get(name, low) for f in fixes), dtype=np.float64, count=len(fixes))
        if (values < low).any() or (values > high).any():
            return False
    return True


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
        courier_id=np.array([f["courier_id"] for f in fixes], dtype=np.str_).reshape(n),
        lat=floats("lat"),
        lon=floats("lon"),
        ts_ms=np.fromiter((f["ts_ms"] for f in fixes), dtype=np.int64, count=n),
        speed_mps=floats("speed_mps"),
        heading_deg=floats("heading_deg"),
        accuracy_m=floats("accuracy_m"),
    )
