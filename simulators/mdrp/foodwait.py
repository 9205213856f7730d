"""Which orders the food waiting comes from: by preparation time and by merchant history.

Food waiting (the benchmark's ready-to-pickup) has two parts (see `simulators.mdrp.breakdown`):
`wait_at_placement`, which no decision after the order was placed could avoid, and
`wait_after_placement`. Here each delivered order falls into a band of its preparation time
(ready minus placement) and a band of its merchant's history (how many orders of the same
merchant were placed earlier that day, which is all an online policy knows about where the next
order will come from). Per band: the share of delivered orders and the band's contribution to
the instance's mean wait, so that the contributions of all bands add up to the instance's mean.
Instances are then averaged like the breakdown's classes.

The bands show what positioning couriers ahead of demand could still win: an order with a few
minutes of preparation needs a courier within those minutes of its merchant when it is placed,
and an order from a merchant without earlier orders could not have been foreseen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from simulators.mdrp.breakdown import OrderParts
from simulators.mdrp.instance import IntArray, MdrpInstance

#: Upper edges (inclusive, minutes) of the preparation-time bands; the last band is open.
PREP_EDGES_MIN = (5, 10, 15, 20, 30)
#: Upper edges (inclusive) of the merchant-history bands (earlier orders that day).
HISTORY_EDGES = (0, 2, 9)
#: What each band reports, in table order.
BAND_KEYS = ("share", "wait_at_placement", "wait_after_placement", "food_wait")


def band_labels(edges: Sequence[int]) -> tuple[str, ...]:
    """Labels of the bands cut at `edges`: `0`, `1-2`, `3-9`, `>9` for edges 0, 2, 9."""
    labels = []
    low = 0
    for edge in edges:
        labels.append(str(edge) if edge == low else f"{low}-{edge}")
        low = edge + 1
    labels.append(f">{edges[-1]}")
    return tuple(labels)


def band_of(values: IntArray, edges: Sequence[int]) -> IntArray:
    """Band index of each value: 0 for values up to `edges[0]`, ..., `len(edges)` above all."""
    return np.searchsorted(np.asarray(edges), np.asarray(values), side="left").astype(np.int64)


def earlier_orders(instance: MdrpInstance) -> IntArray:
    """Per order (instance row): orders of the same restaurant placed before it that day."""
    restaurant = instance.order_restaurant
    placement = instance.placement_min
    out = np.zeros(restaurant.size, dtype=np.int64)
    for r in np.unique(restaurant):
        rows = np.flatnonzero(restaurant == r)
        times = np.sort(placement[rows])
        out[rows] = np.searchsorted(times, placement[rows], side="left")
    return out


@dataclass(frozen=True)
class FoodWaitBands:
    """One instance's food waiting split by band.

    Attributes:
        name: instance name.
        delivered: delivered orders (shares and contributions are per delivered order).
        share: per band, the share of delivered orders in it.
        wait_at_placement: per band, its contribution to the instance's mean wait at placement.
        wait_after_placement: per band, its contribution to the mean wait after placement.
    """

    name: str
    delivered: int
    share: tuple[float, ...]
    wait_at_placement: tuple[float, ...]
    wait_after_placement: tuple[float, ...]


def split_by_band(
    name: str, parts: OrderParts, values: IntArray, edges: Sequence[int]
) -> FoodWaitBands:
    """Split `parts`' food waiting by the band of each delivered order's value.

    Args:
        name: instance name.
        parts: the instance's per-order click-to-door parts.
        values: per order (instance row), the banded quantity (e.g. preparation minutes).
        edges: the band edges (see `band_of`).
    """
    n = parts.rows.size
    k = len(edges) + 1
    if n == 0:
        nan = (float("nan"),) * k
        return FoodWaitBands(name, 0, nan, nan, nan)
    band = band_of(np.asarray(values)[parts.rows], edges)

    def per_band(weights: np.ndarray | None) -> tuple[float, ...]:
        return tuple((np.bincount(band, weights=weights, minlength=k) / n).tolist())

    return FoodWaitBands(
        name,
        int(n),
        per_band(None),
        per_band(parts.wait_at_placement),
        per_band(parts.wait_after_placement),
    )


def prep_bands(instance: MdrpInstance, parts: OrderParts) -> FoodWaitBands:
    """Food waiting by preparation time (ready minus placement, `PREP_EDGES_MIN`)."""
    prep = (instance.ready_min - instance.placement_min).astype(np.int64)
    return split_by_band(instance.name, parts, prep, PREP_EDGES_MIN)


def history_bands(instance: MdrpInstance, parts: OrderParts) -> FoodWaitBands:
    """Food waiting by the merchant's earlier orders that day (`HISTORY_EDGES`)."""
    return split_by_band(instance.name, parts, earlier_orders(instance), HISTORY_EDGES)


def band_means(rows: Iterable[FoodWaitBands], labels: Sequence[str]) -> dict[str, dict[str, float]]:
    """Mean over instances (those with deliveries) per band, plus an `all` row.

    Returns:
        `{label: {"share", "wait_at_placement", "wait_after_placement", "food_wait"}}` in band
        order, then `all`, whose waits are the instances' mean waits (the bands' sum).
    """
    kept = [r for r in rows if r.delivered > 0]
    out: dict[str, dict[str, float]] = {}
    if not kept:
        return out
    share = np.mean([r.share for r in kept], axis=0)
    at = np.mean([r.wait_at_placement for r in kept], axis=0)
    after = np.mean([r.wait_after_placement for r in kept], axis=0)
    if share.size != len(labels):
        raise ValueError(f"{len(labels)} labels for {share.size} bands")
    for i, label in enumerate(labels):
        out[label] = _band_row(share[i], at[i], after[i])
    out["all"] = _band_row(share.sum(), at.sum(), after.sum())
    return out


def _band_row(share: float, at: float, after: float) -> dict[str, float]:
    """One row of `band_means`, `BAND_KEYS` in order."""
    return {
        "share": float(share),
        "wait_at_placement": float(at),
        "wait_after_placement": float(after),
        "food_wait": float(at + after),
    }
