"""MDRP performance metrics, defined as in the benchmark's evaluator and the paper's tables.

Per instance: % undelivered; click-to-door (drop-off minus placement) mean and 90th
percentile over delivered orders; click-to-door overage (minutes past the target) mean;
ready-to-pickup mean and 90th percentile; courier utilization ((driving + pickup service per
assignment + drop-off service per order) / shift minutes) mean and 10th percentile over all
couriers; cost per delivered order (each courier paid the larger of per-order pay and the
hourly guarantee); mean orders per assignment. Percentiles interpolate linearly (pandas'
`describe`). Placement and ready times come from the instance, pickup and drop-off times from
the solution's orders file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from simulators.mdrp.checker import CheckResult, check_solution
from simulators.mdrp.instance import MdrpInstance
from simulators.mdrp.solution import MdrpSolution

#: Metric keys reported per instance and averaged over instances (JSON and tables).
METRIC_KEYS = (
    "undelivered_pct",
    "ctod_mean",
    "ctod_p90",
    "overage_mean",
    "rtop_mean",
    "rtop_p90",
    "util_mean",
    "util_p10",
    "cost_per_order",
    "orders_per_bundle",
)


@dataclass(frozen=True)
class InstanceMetrics:
    """Metrics of one solved instance (field names are the replay JSON keys).

    Attributes:
        name: instance name.
        orders: number of orders in the instance.
        undelivered_pct: percentage of orders never delivered.
        ctod_mean: mean click-to-door minutes over delivered orders.
        ctod_p90: 90th percentile of click-to-door minutes.
        overage_mean: mean minutes of click-to-door past the target.
        rtop_mean: mean ready-to-pickup minutes.
        rtop_p90: 90th percentile of ready-to-pickup minutes.
        util_mean: mean courier utilization.
        util_p10: 10th percentile of courier utilization.
        cost_per_order: total courier pay per delivered order.
        orders_per_bundle: mean orders per assignment.
        valid: whether the solution passed every checker condition.
    """

    name: str
    orders: int
    undelivered_pct: float
    ctod_mean: float
    ctod_p90: float
    overage_mean: float
    rtop_mean: float
    rtop_p90: float
    util_mean: float
    util_p10: float
    cost_per_order: float
    orders_per_bundle: float
    valid: bool

    def as_dict(self) -> dict[str, object]:
        """The metrics as a JSON-ready dict (keys in the replay JSON order)."""
        return asdict(self)


def _nan_safe(values: np.ndarray, q: float | None = None) -> float:
    if values.size == 0:
        return float("nan")
    if q is None:
        return float(values.mean())
    return float(np.percentile(values, q))


@dataclass(frozen=True)
class DeliveredTimes:
    """Times of a solution's delivered orders, aligned with its orders file (minutes).

    Attributes:
        rows: instance row of each delivered order.
        placement: placement times (from the instance).
        ready: ready times (from the instance).
        pickup: pickup times (from the solution).
        dropoff: drop-off times (from the solution).
    """

    rows: npt.NDArray[np.int64]
    placement: npt.NDArray[np.float64]
    ready: npt.NDArray[np.float64]
    pickup: npt.NDArray[np.float64]
    dropoff: npt.NDArray[np.float64]


def delivered_times(instance: MdrpInstance, solution: MdrpSolution) -> DeliveredTimes:
    """The instance and solution times of every order `solution` delivered."""
    rows = np.array([instance.order_index[o.order] for o in solution.orders], dtype=np.int64)
    return DeliveredTimes(
        rows=rows,
        placement=instance.placement_min[rows].astype(np.float64),
        ready=instance.ready_min[rows].astype(np.float64),
        pickup=np.array([o.pickup_min for o in solution.orders], dtype=np.float64),
        dropoff=np.array([o.dropoff_min for o in solution.orders], dtype=np.float64),
    )


def compute_metrics(
    instance: MdrpInstance, solution: MdrpSolution, check: CheckResult | None = None
) -> InstanceMetrics:
    """Metrics of `solution` on `instance`; runs the checker unless `check` is given."""
    if check is None:
        check = check_solution(instance, solution)
    params = instance.params
    times = delivered_times(instance, solution)
    ctod = times.dropoff - times.placement
    rtop = times.pickup - times.ready
    delivered = len(solution.orders)

    shift = (instance.off_min - instance.on_min).astype(np.float64)
    served = Counter(o.courier for o in solution.orders)
    bundles = Counter(a.courier for a in solution.assignments)
    util = np.zeros(instance.n_couriers)
    pay = np.zeros(instance.n_couriers)
    for i, courier in enumerate(instance.courier_id):
        timeline = check.timelines.get(courier)
        guaranteed = shift[i] * params.guaranteed_pay_per_hour / 60.0
        pay[i] = max(served[courier] * params.pay_per_order, guaranteed)
        if timeline is None or shift[i] <= 0:
            continue
        busy = (
            timeline.driving_min
            + params.pickup_service_min * bundles[courier]
            + params.dropoff_service_min * served[courier]
        )
        util[i] = busy / shift[i]
    sizes = np.array([len(a.orders) for a in solution.assignments], dtype=np.float64)
    return InstanceMetrics(
        name=instance.name,
        orders=instance.n_orders,
        undelivered_pct=100.0 * (instance.n_orders - delivered) / max(instance.n_orders, 1),
        ctod_mean=_nan_safe(ctod),
        ctod_p90=_nan_safe(ctod, 90),
        overage_mean=_nan_safe(np.maximum(0.0, ctod - params.target_ctod_min)),
        rtop_mean=_nan_safe(rtop),
        rtop_p90=_nan_safe(rtop, 90),
        util_mean=_nan_safe(util),
        util_p10=_nan_safe(util, 10),
        cost_per_order=float(pay.sum() / delivered) if delivered else float("nan"),
        orders_per_bundle=_nan_safe(sizes),
        valid=check.valid,
    )


def mean_metrics(rows: list[InstanceMetrics]) -> dict[str, object]:
    """Mean of every metric over instances; `orders` is the mean count, `valid` is all-valid."""
    out: dict[str, object] = {"orders": float(np.mean([r.orders for r in rows])) if rows else 0.0}
    for key in METRIC_KEYS:
        values = np.array([getattr(r, key) for r in rows], dtype=np.float64)
        out[key] = float(np.nanmean(values)) if values.size else float("nan")
    out["valid"] = all(r.valid for r in rows)
    return out
