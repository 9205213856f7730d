"""Dispatch policies: every weight, flag and limit `decide()` uses, in one frozen object."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal


class PolicyError(ValueError):
    """A policy with an out-of-range value or an unknown name."""


@dataclass(frozen=True)
class Policy:
    """Weights, flags and limits of the dispatch decision.

    Costs are in "minutes of customer delay" units: each weight multiplies a quantity measured
    in minutes, so `w_delay = 1` prices one minute of click-to-door delay at 1.

    Attributes:
        name: policy name, recorded on every decision.
        mode: `"optimize"` (candidates, bundles, min-cost matching, just-in-time commitment) or
            `"greedy"` (each open order, in ready-time order, to the free courier with the
            earliest pickup; also the circuit-breaker fallback).
        max_candidates: couriers considered per order, nearest first in the spatial index.
        min_candidates: fewest couriers considered per order however large the tick.
        pair_budget: candidate pairs per tick; with many open orders each gets fewer
            candidates (never fewer than `min_candidates`), bounding the tick's work.
        max_pickup_s: hard cap on the courier's travel time to the merchant.
        index_speed_mps: converts a courier's remaining busy time into distance in the spatial
            index, so that couriers freeing up soon count as near.
        max_pairs: circuit breaker: above this many candidate pairs the tick runs greedy.
        w_delay: per minute of click-to-door delay of the new orders above their direct
            minimum (food waiting for the courier plus batching detours).
        w_detour: per minute of delay imposed on orders already in the courier's bundle.
        w_late: per minute the p90 drop-off is past the promise.
        w_courier_wait: per minute the courier idles at the merchant before the handover.
        w_travel: per minute the courier drives empty to the merchant.
        w_pay: per order given to a courier who already earned its guaranteed minimum pay
            (orders done at least `guarantee_orders_per_hour` times its shift hours): the
            marginal pay of the order, since work below the guarantee is already paid for.
        guarantee_orders_per_hour: orders per shift hour the guaranteed pay covers.
        w_courier_time: per minute of courier time the job uses (a price on courier capacity:
            it favours bundles and short jobs when couriers are scarce).
        w_coverage: per order-minute of expected coverage shortfall caused by taking the
            courier away for the job (see `dispatch.coverage`).
        w_decline: per minute of expected re-dispatch delay: the courier's probability of
            declining the offer times `redispatch_s` (zero for couriers without one).
        redispatch_s: what a declined offer costs its order, seconds: the courier's answer,
            the next tick, and the next courier farther away.
        bundling: whether orders may be added to a courier's pending pickup.
        nearby_merchant_bundles: whether a bundle may join orders of different merchants whose
            pickups are within `nearby_merchant_m` (off for the MDRP benchmark).
        nearby_merchant_m: radius of "nearby" merchants, metres.
        max_bundle_size: most orders in one bundle.
        max_ready_gap_s: freshness: an order joins a pending pickup only if it is ready at most
            this long after the planned handover.
        max_detour_s: hard cap on the delay a bundle change imposes on an order already in it.
        max_food_wait_s: freshness cap on food waiting (pickup minus ready) for bundled orders.
        jit: just-in-time commitment: an order is committed only when its best courier must
            leave now to be at the merchant when the food is ready (or it is already late);
            otherwise it is held for a later tick.
        commit_buffer_s: commit this much earlier than strictly needed (ETA risk margin).
        min_alternatives: commit an on-time order early, to its idle matched courier, once
            fewer than this many couriers not matched elsewhere could still hand it over at
            ready time (1 disables early commitment).
        chain_hold: hold a due commitment when another courier, right after the job it is
            matched to, would pick the order up no later.
        chain_lookahead: plan orders on chained couriers too: a second matching in which each
            courier matched to a new job in the first one is also offered, right after that
            job, to due orders (see `dispatch.chains`); an order matched to a chained courier
            is held, so a free courier is left to an order that needs it now.
        chain_candidates: chained couriers considered per due order (nearest first).
        chain_rounds: times the chained matching is repeated, each time chaining after the
            jobs matched in the previous one.
        hold_cost: cost of leaving an order without any courier in this tick's matching.
        matching_horizon_s: only orders whose best courier would have to leave within this
            time (or that may join a pending pickup) enter the matching; others are held
            without claiming a courier.
        max_matching_orders: most orders entering the matching through the horizon (the
            most urgent first), bounding the tick's work when a shard has many open orders.
        max_edges_per_order: each order keeps only its cheapest options in the matching.
        w_age: matching priority per minute an order has waited since it was ready: its edges
            are discounted by this much so that old orders are not starved by cheaper new ones
            (a priority, not part of the choice's cost).
        w_busy_plan: matching penalty, in minutes, on an option that relies on a courier who
            is not free now (busy until its route ends, or chained after a job matched in this
            tick). Such an option is only a plan: the order is held, and the courier's route
            often changes before it is due. A free courier is preferred unless the busy one is
            better by more than this (a priority, not part of the choice's cost).
        reposition: send idle couriers without work towards merchants ahead of demand.
        reposition_max_s: longest reposition move, seconds.
        reposition_transit_weight: share of the move's travel time counted against the
            coverage the move buys (0: only the destination matters).
        reposition_min_gain: a move must cut the expected coverage shortfall by at least this
            many order-minutes per hour.
        reposition_merchants: most merchants (by demand) considered as demand points and
            targets.
        coverage_horizon_s: couriers freeing up within this time count as covering demand.
        coverage_open_points: most open orders (most urgent first) used as demand points.
        coverage_couriers_per_point: couriers tracked per demand point (nearest first).
        reposition_candidates: most idle couriers considered for a move per tick (farthest
            from demand first).
        max_repositions: most reposition moves per tick.
        coverage_slack_s: a merchant reached by an available courier within this time counts
            as covered; beyond it, each second of travel is shortfall.
        open_order_weight: coverage weight of each open order's merchant (whose slack is the
            time left until the food is ready), so moves do not strand held orders.
        shift_end_margin_s: planned pickups must be this long before the shift end.
    """

    name: str = "default"
    mode: Literal["optimize", "greedy"] = "optimize"
    max_candidates: int = 48
    min_candidates: int = 12
    pair_budget: int = 40_000
    max_pickup_s: float = 3600.0
    index_speed_mps: float = 5.0
    max_pairs: int = 400_000
    w_delay: float = 1.0
    w_detour: float = 1.0
    w_late: float = 0.25
    w_courier_wait: float = 0.0
    w_travel: float = 0.0
    w_pay: float = 0.0
    guarantee_orders_per_hour: float = 1.5
    w_coverage: float = 0.0
    w_courier_time: float = 0.1
    w_decline: float = 1.0
    redispatch_s: float = 120.0
    bundling: bool = True
    nearby_merchant_bundles: bool = False
    nearby_merchant_m: float = 300.0
    max_bundle_size: int = 4
    max_ready_gap_s: float = 600.0
    max_detour_s: float = 1200.0
    max_food_wait_s: float = 1800.0
    jit: bool = True
    commit_buffer_s: float = 0.0
    chain_hold: bool = True
    min_alternatives: int = 1
    chain_lookahead: bool = True
    chain_candidates: int = 8
    chain_rounds: int = 1
    hold_cost: float = 1000.0
    matching_horizon_s: float = 900.0
    max_matching_orders: int = 100
    max_edges_per_order: int = 48
    w_age: float = 0.5
    w_busy_plan: float = 2.0
    reposition: bool = True
    reposition_max_s: float = 900.0
    reposition_transit_weight: float = 0.25
    reposition_min_gain: float = 1.0
    reposition_merchants: int = 32
    coverage_horizon_s: float = 600.0
    coverage_open_points: int = 32
    coverage_couriers_per_point: int = 4
    reposition_candidates: int = 32
    max_repositions: int = 8
    coverage_slack_s: float = 120.0
    open_order_weight: float = 10.0
    keep_backups: bool = True
    shift_end_margin_s: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in ("optimize", "greedy"):
            raise PolicyError(f"mode must be 'optimize' or 'greedy', got {self.mode!r}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or f.name in ("name", "mode"):
                continue
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise PolicyError(f"{f.name} must be a finite non-negative number, got {value!r}")
        if not 1 <= self.min_candidates <= self.max_candidates:
            raise PolicyError("need 1 <= min_candidates <= max_candidates")
        if self.max_matching_orders < 1:
            raise PolicyError("max_matching_orders must be at least 1")
        if self.max_bundle_size < 1:
            raise PolicyError("max_bundle_size must be at least 1")
        if self.index_speed_mps <= 0:
            raise PolicyError("index_speed_mps must be positive")

    def replace(self, **changes: object) -> Policy:
        """A copy with some fields changed (validated like a new policy)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


#: The production policy: matching, bundling, just-in-time commitment, repositioning.
DEFAULT_POLICY = Policy()

#: Greedy nearest-available: the baseline and the circuit-breaker fallback.
GREEDY_POLICY = Policy(name="greedy", mode="greedy", bundling=False, jit=False, reposition=False)

POLICIES: dict[str, Policy] = {p.name: p for p in (DEFAULT_POLICY, GREEDY_POLICY)}


def policy_by_name(name: str) -> Policy:
    """The named policy.

    Raises:
        PolicyError: if no policy has that name.
    """
    try:
        return POLICIES[name]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise PolicyError(f"unknown policy {name!r}; known: {known}") from None


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def with_settings(policy: Policy, settings: Sequence[str]) -> Policy:
    """`policy` with `FIELD=VALUE` settings applied, each value read as the field's type.

    The result is named after the policy and its settings, e.g. `default[hold_cost=45]`, so
    reports and decisions say which variant ran. No settings return `policy` itself.

    Raises:
        PolicyError: for a setting without `=`, an unknown field, the `name` field, or a value
            that is not of the field's type or is out of range.
    """
    if not settings:
        return policy
    fields = {f.name for f in dataclasses.fields(policy)}
    changes: dict[str, object] = {}
    labels: list[str] = []
    for setting in settings:
        key, sep, text = (part.strip() for part in setting.partition("="))
        if not sep or not key or not text:
            raise PolicyError(f"setting {setting!r} is not FIELD=VALUE")
        if key == "name":
            raise PolicyError("the policy's name is chosen by --policy, not a setting")
        if key not in fields:
            raise PolicyError(f"setting {setting!r}: Policy has no field {key!r}")
        changes[key] = _parse(key, text, getattr(policy, key))
        labels.append(f"{key}={text}")
    label = ",".join(labels)
    try:
        return policy.replace(name=f"{policy.name}[{label}]", **changes)
    except PolicyError as error:
        raise PolicyError(f"settings {label}: {error}") from None


def _parse(key: str, text: str, current: object) -> object:
    """`text` read as the type of the field's current value."""
    try:
        if isinstance(current, bool):
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(text)
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
    except ValueError:
        kind = type(current).__name__
        raise PolicyError(f"setting {key}={text!r}: not a valid {kind}") from None
    return text
