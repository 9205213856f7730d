"""Cost terms of a decision, in minutes: what each means, its unit, and the weight behind it.

The engine's `explanation.terms` are *weighted* terms (`dispatch.costs`): each is a policy weight
times a quantity, and every weight prices its quantity in minutes of customer delay, so every
weighted term is in "cost minutes" and the terms add up to the decision's `cost`. The console
shows each weighted term (`cost_min`) and, when the weights of the decision's policy version are
known, the quantity behind it (`quantity` in `unit`, `weight` cost minutes per unit).

Not in the terms, and not in `cost` either: the matching's priorities (`w_age` discount,
`w_busy_plan` penalty) and `hold_cost` (price of leaving an order unmatched) steer the matching
but are no part of a decision's cost. The proposal rounds the cost and each term to 4 decimals,
so the terms add up to the cost within `ROUNDING_TOLERANCE_MIN`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dispatch.costs import TERM_NAMES
from dispatch.policy import Policy, PolicyError, policy_by_name, with_settings

#: Decimals of the cost and of each term in an `assignment_proposed` event.
EVENT_DECIMALS = 4
#: Largest gap between the rounded cost and the sum of the rounded terms: half a unit of the
#: last decimal for the cost and for each term.
ROUNDING_TOLERANCE_MIN = 0.5 * 10**-EVENT_DECIMALS * (len(TERM_NAMES) + 1)


@dataclass(frozen=True)
class TermInfo:
    """What one cost term measures.

    Attributes:
        label: short name for people.
        unit: unit of the quantity the weight multiplies.
        weight_field: the `Policy` field of its weight (cost minutes per unit).
        meaning: one sentence.
    """

    label: str
    unit: str
    weight_field: str
    meaning: str


TERMS: dict[str, TermInfo] = {
    "delay": TermInfo(
        "delay",
        "min",
        "w_delay",
        "click-to-door delay of the new orders above their direct minimum",
    ),
    "detour": TermInfo(
        "detour", "min", "w_detour", "delay imposed on orders already in the courier's bundle"
    ),
    "late": TermInfo("late", "min", "w_late", "minutes the p90 drop-off is past the promise"),
    "courier_wait": TermInfo(
        "courier wait", "min", "w_courier_wait", "courier idling at the merchant"
    ),
    "travel": TermInfo("travel", "min", "w_travel", "courier driving empty to the merchant"),
    "pay": TermInfo("pay", "orders", "w_pay", "orders paid beyond the courier's guarantee"),
    "coverage": TermInfo(
        "coverage", "order-min", "w_coverage", "demand coverage lost while the courier is away"
    ),
    "courier_time": TermInfo(
        "courier time", "min", "w_courier_time", "courier time the job uses (within the shift)"
    ),
    "decline": TermInfo(
        "decline risk",
        "min",
        "w_decline",
        "expected re-dispatch delay: the courier's chance of declining times the delay",
    ),
}


@dataclass(frozen=True)
class Control:
    """The weights and flags of one `dispatch_control` event, by its policy version."""

    shard: str
    policy_version: str
    batching_enabled: bool | None
    max_detour_s: float | None
    weights: Mapping[str, float]

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Control:
        """Read a `dispatch_control` event."""
        return cls(
            shard=str(event["shard"]),
            policy_version=str(event["policy_version"]),
            batching_enabled=event.get("batching_enabled"),
            max_detour_s=event.get("max_detour_s"),
            weights={str(k): float(v) for k, v in (event.get("weights") or {}).items()},
        )

    def apply(self, policy: Policy) -> Policy:
        """`policy` with this control's flags and weights (as the worker applies them)."""
        changes: dict[str, object] = {}
        if self.batching_enabled is not None:
            changes["bundling"] = self.batching_enabled
        if self.max_detour_s is not None:
            changes["max_detour_s"] = self.max_detour_s
        known = {f.name for f in dataclasses.fields(policy) if f.name.startswith("w_")}
        changes.update({k: v for k, v in self.weights.items() if k in known})
        return policy.replace(**changes)


def base_policy(name: str) -> Policy | None:
    """The policy a worker names `name` (`default`, or `default[hold_cost=45,...]`), if known."""
    base, _, settings = name.partition("[")
    try:
        policy = policy_by_name(base)
        if settings:
            return with_settings(policy, settings.rstrip("]").split(","))
        return policy
    except PolicyError:
        return None


def weights_of_version(
    policy_version: str, shard: str, controls: Sequence[Control]
) -> dict[str, float] | None:
    """The cost weights (`w_*` fields) a decision's `policy_version` names, None if unknown.

    A worker names its policy `base+control+control`: the base policy, then the version of the
    `*` control and of the shard's own control, in that order (as the engine applies them).
    Only the weights are taken: a worker may change flags of its base policy that the name
    does not tell (it turns repositioning off), but no weight.
    """
    base, *versions = policy_version.split("+")
    policy = base_policy(base)
    if policy is None:
        return None
    for version in versions:
        match = next(
            (c for c in controls if c.policy_version == version and c.shard in ("*", shard)), None
        )
        if match is None:
            return None
        try:
            policy = match.apply(policy)
        except PolicyError:
            return None
    return {
        f.name: float(getattr(policy, f.name))
        for f in dataclasses.fields(policy)
        if f.name.startswith("w_")
    }


def term_rows(
    terms: Mapping[str, float], weights: Mapping[str, float] | None
) -> list[dict[str, Any]]:
    """One row per term, in the engine's order (unknown names last), with its quantity if known.

    Each row: `name`, `label`, `meaning`, `cost_min` (the weighted term), `unit`, `weight` and
    `quantity` (`cost_min / weight`; None when the weight is unknown or zero).
    """
    names = [n for n in TERM_NAMES if n in terms] + sorted(set(terms) - set(TERM_NAMES))
    rows = []
    for name in names:
        info = TERMS.get(name)
        weight = weights.get(info.weight_field) if info is not None and weights else None
        cost_min = float(terms[name])
        rows.append(
            {
                "name": name,
                "label": info.label if info else name,
                "meaning": info.meaning if info else "",
                "cost_min": cost_min,
                "unit": info.unit if info else None,
                "weight": weight,
                "quantity": cost_min / weight if weight else None,
            }
        )
    return rows
