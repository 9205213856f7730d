"""Chained jobs: a courier's next job planned right after the job it is matched to.

When `policy.chain_lookahead` is on, each courier matched to a new job in the tick's first
matching becomes a *chained courier*: free at that job's customer when its drop-off ends. Due
orders get candidate pairs from their nearest chained couriers (time-aware, like the courier
index), so a second matching can plan an order on the earliest real pickup, which may be a
courier's second job, and leave a free courier to an order that needs it now. A match to a
chained courier is a plan, never a commitment: the order is held until the courier is free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from dispatch.candidates import PairTable, TickFrame, plan_from
from dispatch.costs import N_TERMS, single_terms
from dispatch.policy import Policy
from dispatch.snapshot import Snapshot

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class ChainTable:
    """Candidate pairs of due orders with chained couriers.

    Attributes:
        pairs: planned times; `courier_row` is the real courier, free after its matched job.
        chain: index of the chained courier of each pair (one per matched job).
        terms: weighted cost terms of each pair (`TERM_NAMES` order).
        n_chains: number of chained couriers.
    """

    pairs: PairTable
    chain: IntArray
    terms: FloatArray
    n_chains: int

    @property
    def size(self) -> int:
        """Number of pairs."""
        return self.pairs.size


def chain_pairs(
    snapshot: Snapshot,
    frame: TickFrame,
    policy: Policy,
    planned: PairTable,
    due_rows: IntArray,
    coverage_loss: FloatArray | None = None,
) -> ChainTable:
    """Pairs of the orders in `due_rows` with couriers chained after the jobs in `planned`.

    Args:
        snapshot: the tick's snapshot.
        frame: its derived arrays.
        policy: `chain_candidates` chained couriers per order (nearest in space and free
            time); travel cap, shift end and weights as for new jobs.
        planned: the new jobs matched in the first matching (one per courier).
        due_rows: order rows that may be chained.
        coverage_loss: per-courier coverage loss, as for `single_terms`.

    An order is never chained after its own job. Pairs past the travel cap or whose p90
    pickup is after the courier's shift end are dropped.
    """
    n_chains = planned.size
    k = min(policy.chain_candidates, n_chains)
    if k == 0 or due_rows.size == 0:
        return _empty(frame, n_chains)
    end_xy = snapshot.orders.dropoff_xy_m[planned.order_row]
    end_s = planned.dropoff_p50_s + frame.half_dropoff_s
    busy_m = np.maximum(end_s, 0.0) * policy.index_speed_mps
    tree = cKDTree(np.column_stack([end_xy, busy_m]))
    pickup_xy = snapshot.orders.pickup_xy_m[due_rows]
    _, near = tree.query(np.column_stack([pickup_xy, np.zeros(due_rows.size)]), k=k)
    chain = np.asarray(near, dtype=np.int64).reshape(-1)
    order_row = np.repeat(due_rows, k)
    courier_row = planned.courier_row[chain]
    pairs = plan_from(
        snapshot, frame, order_row, courier_row, end_xy[chain], end_s[chain], policy, k
    )
    keep = pairs.feasible & (planned.order_row[chain] != order_row)
    pairs = pairs.take(keep)
    chain = chain[keep]
    terms = single_terms(snapshot, frame, pairs, policy, coverage_loss, start_s=end_s[chain])
    return ChainTable(pairs=pairs, chain=chain, terms=terms, n_chains=n_chains)


def _empty(frame: TickFrame, n_chains: int) -> ChainTable:
    none_i = np.zeros(0, dtype=np.int64)
    none_f = np.zeros(0, dtype=np.float64)
    pairs = PairTable(
        order_row=none_i,
        courier_row=none_i,
        feasible=np.zeros(0, dtype=bool),
        stride=0,
        travel_p50_s=none_f,
        travel_p90_s=none_f,
        arrival_p50_s=none_f,
        pickup_p50_s=none_f,
        pickup_p90_s=none_f,
        dropoff_p50_s=none_f,
        dropoff_p90_s=none_f,
        ride_p50_s=none_f,
    )
    return ChainTable(pairs, none_i, np.zeros((0, N_TERMS)), n_chains)
