"""The offline materialization: training rows from an event log file.

The log is JSON Lines, one event per line (shapes in `features.events`). Events are replayed
in event-time order (stable for equal times) through the same feature definitions as the
online store, kept as live objects; every `order_created` yields one row with the features as
of just before the order was applied, and labels from the order's later events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from features import events as ev
from features.definitions import FeatureDef
from features.store import DegradeCallback, FeatureEngine, MemoryBackend


class EventLogError(ValueError):
    """A line of the event log is not valid JSON or not a valid event."""


def read_event_log(path: Path) -> list[dict[str, Any]]:
    """All events of a JSON-Lines log, validated, in file order.

    Raises:
        EventLogError: naming the line number and the problem.
    """
    out: list[dict[str, Any]] = []
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise EventLogError(f"{path}:{lineno}: not JSON: {exc}") from exc
            if not isinstance(event, dict):
                raise EventLogError(f"{path}:{lineno}: an event must be a JSON object")
            try:
                ev.validate_event(event)
            except ev.EventError as exc:
                raise EventLogError(f"{path}:{lineno}: {exc}") from exc
            out.append(event)
    return out


def write_event_log(path: Path, events: Iterable[Mapping[str, Any]]) -> None:
    """Write events as JSON Lines."""
    with path.open("wb") as fh:
        for e in events:
            fh.write(orjson.dumps(e))
            fh.write(b"\n")


@dataclass
class _Labels:
    created_ts_ms: int
    ready_ts_ms: int | None = None
    picked_up_ts_ms: int | None = None
    delivered_ts_ms: int | None = None
    cancelled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def replay_order_rows(
    events: Iterable[Mapping[str, Any]],
    engine: FeatureEngine,
) -> Iterator[tuple[Mapping[str, Any], dict[str, Any]]]:
    """Apply events in order; yield (order_created event, its feature row before applying it)."""
    for event in events:
        if event["type"] == ev.ORDER_CREATED:
            row = engine.order_features(
                str(event["merchant_id"]),
                float(event["pickup_lat"]),
                float(event["pickup_lon"]),
                int(event["ts_ms"]),
            )
            engine.apply(event)
            yield event, row
        else:
            engine.apply(event)


def build_training_rows(
    path: Path,
    features: Iterable[FeatureDef] | None = None,
    on_degrade: DegradeCallback | None = None,
    utc_offset_ms: int = 0,
) -> list[dict[str, Any]]:
    """Training rows, one per created order, in event-time order.

    Each row holds `order_id`, `merchant_id`, `created_ts_ms`, pickup/dropoff coordinates,
    the feature row (`FeatureEngine.order_features`) and labels `prep_s` (created → ready),
    `total_s` (created → delivered) and `cancelled`; labels are None when never observed.
    """
    events = sorted(read_event_log(path), key=lambda e: int(e["ts_ms"]))
    engine = FeatureEngine(MemoryBackend(), features, on_degrade, utc_offset_ms)
    rows: list[dict[str, Any]] = []
    labels: dict[str, _Labels] = {}
    order_rows: dict[str, dict[str, Any]] = {}
    for event, feats in replay_order_rows(events, engine):
        oid = str(event["order_id"])
        labels[oid] = _Labels(created_ts_ms=int(event["ts_ms"]))
        row = {
            "order_id": oid,
            "merchant_id": str(event["merchant_id"]),
            "created_ts_ms": int(event["ts_ms"]),
            "pickup_lat": float(event["pickup_lat"]),
            "pickup_lon": float(event["pickup_lon"]),
            "dropoff_lat": float(event["dropoff_lat"]),
            "dropoff_lon": float(event["dropoff_lon"]),
            **feats,
        }
        order_rows[oid] = row
        rows.append(row)
    for e in events:
        lab = labels.get(str(e.get("order_id", "")))
        if lab is None:
            continue
        ts = int(e["ts_ms"])
        if e["type"] == ev.MERCHANT_READY and lab.ready_ts_ms is None:
            lab.ready_ts_ms = ts
        elif e["type"] == ev.PICKED_UP and lab.picked_up_ts_ms is None:
            lab.picked_up_ts_ms = ts
        elif e["type"] == ev.DELIVERED and lab.delivered_ts_ms is None:
            lab.delivered_ts_ms = ts
        elif e["type"] == ev.ORDER_CANCELLED:
            lab.cancelled = True
    for oid, row in order_rows.items():
        lab = labels[oid]
        row["prep_s"] = (
            None if lab.ready_ts_ms is None else (lab.ready_ts_ms - lab.created_ts_ms) / 1000.0
        )
        row["total_s"] = (
            None
            if lab.delivered_ts_ms is None
            else (lab.delivered_ts_ms - lab.created_ts_ms) / 1000.0
        )
        row["cancelled"] = lab.cancelled
    return rows
