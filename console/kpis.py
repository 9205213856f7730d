"""Per-shard KPIs: delivery outcomes from the read model, tick and lag figures from the workers.

Outcome definitions follow `simulators.city.kpis` (event time, over the orders the model holds;
ended orders stay for the model's retention):

* `on_time_rate`: delivered orders delivered at or before their promise, over delivered orders
  that have a promise.
* `ctod_p50_min`, `ctod_p90_min`: click-to-door (delivery minus creation) over delivered orders,
  linearly interpolated percentiles.
* `open_orders`: orders not delivered, cancelled or expired.

`tick_p99_s`, `lag_s` and `circuit_breaker_ticks` (since the worker started; lag when last
scraped) come from the worker that owns the shard's
partition (see `console.worker_metrics`); they are None ("n/a") when the console scrapes no
worker or that worker did not answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from console.model import OpsModel
from console.orders import OrderSummary
from console.worker_metrics import WorkerFigures


def _quantile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def outcome_kpis(summaries: Sequence[OrderSummary]) -> dict[str, Any]:
    """On-time rate, click-to-door p50/p90 and order counts of `summaries` (one shard's)."""
    delivered = [s for s in summaries if s.state == "delivered"]
    promised = [s for s in delivered if s.promise_ts_ms is not None]
    on_time = sum(1 for s in promised if (s.delivered_ts_ms or 0) <= (s.promise_ts_ms or 0))
    ctod = [s.ctod_min for s in delivered if s.ctod_min is not None]
    return {
        "orders": len(summaries),
        "open_orders": sum(1 for s in summaries if not s.ended),
        "delivered": len(delivered),
        "cancelled": sum(1 for s in summaries if s.state == "cancelled"),
        "expired": sum(1 for s in summaries if s.state == "expired"),
        "on_time_rate": round(on_time / len(promised), 4) if promised else None,
        "ctod_p50_min": _quantile(ctod, 50),
        "ctod_p90_min": _quantile(ctod, 90),
    }


def owner_of(partition: int | None, workers: Sequence[WorkerFigures]) -> WorkerFigures | None:
    """The worker that owns `partition` (the only worker, if it did not list its partitions)."""
    for worker in workers:
        if worker.partitions is not None and partition in worker.partitions:
            return worker
    if len(workers) == 1 and workers[0].partitions is None:
        return workers[0]
    return None


def kpis_view(model: OpsModel, workers: Sequence[WorkerFigures]) -> dict[str, Any]:
    """`GET /api/kpis`: one row per shard, and what each scraped worker said."""
    by_shard: dict[str, list[OrderSummary]] = defaultdict(list)
    for summary in model.summaries():
        by_shard[summary.shard].append(summary)
    online: dict[str, int] = defaultdict(int)
    for courier in model.couriers.values():
        if courier.online and courier.shard is not None:
            online[courier.shard] += 1
    surge: dict[str, float] = {}
    for state in model.surge.values():
        surge[state.shard] = max(surge.get(state.shard, 1.0), state.multiplier)
    rows = []
    for shard in sorted(set(by_shard) | set(model.shard_partition) | set(online)):
        partition = model.shard_partition.get(shard)
        worker = owner_of(partition, workers)
        scraped = worker is not None and worker.error is None
        rows.append(
            {
                "shard": shard,
                "partition": partition,
                **outcome_kpis(by_shard.get(shard, [])),
                "couriers_online": online.get(shard, 0),
                "surge_multiplier_max": surge.get(shard),
                "worker": None if worker is None else worker.url,
                "tick_p99_s": worker.tick_p99_s if scraped and worker else None,
                "lag_s": worker.lag_s if scraped and worker else None,
                "circuit_breaker_ticks": worker.circuit_breaker_ticks
                if scraped and worker
                else None,
            }
        )
    return {
        "now_ts_ms": model.clock_ms,
        "shards": rows,
        "workers": [
            {
                "url": w.url,
                "error": w.error,
                "partitions": None if w.partitions is None else list(w.partitions),
                "ticks": w.ticks,
                "tick_p99_s": w.tick_p99_s,
                "circuit_breaker_ticks": w.circuit_breaker_ticks,
                "lag_s": w.lag_s,
            }
            for w in workers
        ],
    }
