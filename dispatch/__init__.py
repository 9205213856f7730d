"""The dispatch decision core: candidates, bundles, costs, assignment, policy. Pure: no Kafka.

Public entry points:

- `decide(snapshot, policy) -> Decisions`: one tick's assignments (with routes and
  explanations), repositions and held orders.
- `rank(request, snapshot, k, policy) -> tuple[RankedCourier, ...]`: the k cheapest couriers for
  one order, with the same cost terms.

Inputs are `Snapshot` (orders, couriers, merchants, an `EtaProvider`, service times, `now_ts_ms`)
and a frozen `Policy` (`DEFAULT_POLICY`, `GREEDY_POLICY`, `policy_by_name`).
"""

from dispatch.decisions import Assignment, Decisions, Explanation, Reposition, Stop
from dispatch.engine import decide
from dispatch.eta import EtaProvider, EtaQuantiles, GridTravelTime, StraightLineEta
from dispatch.policy import DEFAULT_POLICY, GREEDY_POLICY, Policy, PolicyError, policy_by_name
from dispatch.ranking import RankedCourier, rank
from dispatch.snapshot import (
    NO_PICKUP,
    OPEN,
    CourierTable,
    MerchantTable,
    OrderTable,
    ServiceTimes,
    Snapshot,
    SnapshotError,
)

__all__ = [
    "DEFAULT_POLICY",
    "GREEDY_POLICY",
    "NO_PICKUP",
    "OPEN",
    "Assignment",
    "CourierTable",
    "Decisions",
    "EtaProvider",
    "EtaQuantiles",
    "Explanation",
    "GridTravelTime",
    "MerchantTable",
    "OrderTable",
    "Policy",
    "PolicyError",
    "RankedCourier",
    "Reposition",
    "ServiceTimes",
    "Snapshot",
    "SnapshotError",
    "Stop",
    "StraightLineEta",
    "decide",
    "policy_by_name",
    "rank",
]
