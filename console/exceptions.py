"""Exceptions ops acts on: unserved ready orders, late orders, idle couriers, dead letters.

Definitions (event time, the model's clock):

* `ready_without_courier`: a live order whose merchant said it is ready (`order_ready`) and
  that no courier has committed to (state `open` or `offered`); `waiting_min` since ready.
* `predicted_late`: a live order whose current drop-off p90 is past its promise;
  `lateness_min` is by how much.
* `idle_far_from_demand`: an online courier with a position, no order and no pending offer,
  farther than `far_m` from every demand point: the pickup of each live order not yet picked
  up, and each merchant with an order placed in the last `demand_window_ms`.
* `dead_letters`: counts by source topic and reason, and the latest letters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from console.model import OpsModel
from console.orders import MS_PER_MIN, OrderSummary
from console.views import couriers_view, dead_letters_view, order_row
from contracts.geo import haversine_m


@dataclass(frozen=True)
class ExceptionRules:
    """Thresholds of the exceptions.

    Attributes:
        far_m: an idle courier farther than this from every demand point is far from demand.
        demand_window_ms: merchants with an order placed this recently count as demand points.
    """

    far_m: float = 2_000.0
    demand_window_ms: int = 3_600_000

    def __post_init__(self) -> None:
        if self.far_m <= 0 or self.demand_window_ms <= 0:
            raise ValueError("far_m and demand_window_ms must be positive")


def ready_without_courier(summaries: list[OrderSummary], now_ms: int) -> list[dict[str, Any]]:
    """Ready live orders no courier is committed to, longest waiting first."""
    rows = []
    for s in summaries:
        if s.state not in ("open", "offered") or s.ready_ts_ms is None or s.ready_ts_ms > now_ms:
            continue
        row = order_row(s, now_ms)
        row["waiting_min"] = round((now_ms - s.ready_ts_ms) / MS_PER_MIN, 2)
        rows.append(row)
    return sorted(rows, key=lambda r: (-r["waiting_min"], r["order_id"]))


def predicted_late(summaries: list[OrderSummary], now_ms: int) -> list[dict[str, Any]]:
    """Live orders whose drop-off p90 is past the promise, latest first."""
    rows = []
    for s in summaries:
        lateness = s.predicted_lateness_min
        if s.ended or lateness is None or lateness <= 0:
            continue
        row = order_row(s, now_ms)
        row["lateness_min"] = round(lateness, 2)
        rows.append(row)
    return sorted(rows, key=lambda r: (-r["lateness_min"], r["order_id"]))


def demand_points(
    summaries: list[OrderSummary], now_ms: int, window_ms: int
) -> list[tuple[str, float, float]]:
    """(label, lat, lon) of live pickups not yet made and of recently busy merchants."""
    points: dict[str, tuple[str, float, float]] = {}
    for s in summaries:
        if s.state in ("open", "offered", "assigned"):
            points[f"order:{s.order_id}"] = (f"order {s.order_id}", *s.pickup)
        if now_ms - s.created_ts_ms <= window_ms:
            points[f"merchant:{s.merchant_id}"] = (f"merchant {s.merchant_id}", *s.pickup)
    return list(points.values())


def idle_far_from_demand(
    model: OpsModel, summaries: list[OrderSummary], rules: ExceptionRules
) -> list[dict[str, Any]]:
    """Idle online couriers farther than `rules.far_m` from every demand point, farthest first."""
    points = demand_points(summaries, model.clock_ms, rules.demand_window_ms)
    if not points:
        return []
    idle = [
        c
        for c in couriers_view(model)["couriers"]
        if c["activity"] == "idle" and c["lat"] is not None
    ]
    if not idle:
        return []
    lat = np.array([p[1] for p in points])
    lon = np.array([p[2] for p in points])
    rows = []
    for c in idle:
        distances = haversine_m(c["lat"], c["lon"], lat, lon)
        nearest = int(np.argmin(distances))
        if distances[nearest] > rules.far_m:
            rows.append(
                {
                    **c,
                    "distance_m": round(float(distances[nearest]), 1),
                    "nearest_demand": points[nearest][0],
                }
            )
    return sorted(rows, key=lambda r: (-r["distance_m"], r["courier_id"]))


def exceptions_view(model: OpsModel, rules: ExceptionRules) -> dict[str, Any]:
    """`GET /api/exceptions`: every exception list, and the dead letters."""
    summaries = model.summaries()
    now_ms = model.clock_ms
    return {
        "now_ts_ms": now_ms,
        "rules": {"far_m": rules.far_m, "demand_window_min": rules.demand_window_ms / MS_PER_MIN},
        "ready_without_courier": ready_without_courier(summaries, now_ms),
        "predicted_late": predicted_late(summaries, now_ms),
        "idle_far_from_demand": idle_far_from_demand(model, summaries, rules),
        "dead_letters": dead_letters_view(model),
    }
