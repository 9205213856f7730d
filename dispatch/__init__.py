"""The dispatch decision core: candidates, bundles, costs, assignment, policy. Pure: no Kafka.

Public entry points:

- `dispatch.engine.decide(snapshot, policy) -> Decisions`: one tick's assignments (with routes
  and explanations), repositions and held orders.
- `dispatch.engine.rank(request, snapshot, k, policy) -> tuple[RankedCourier, ...]`: the k
  cheapest couriers for one order, with the same cost terms.

Inputs are `dispatch.snapshot.Snapshot` (orders, couriers, merchants, an `EtaProvider`, service
times, `now_ts_ms`) and a frozen `dispatch.policy.Policy` (`DEFAULT_POLICY`, `GREEDY_POLICY`,
`policy_by_name`). The live shard engine around it is `dispatch.live`.
"""
