"""Repositioning idle couriers towards expected demand (prepositioning moves to merchants).

Idle couriers without work are moved, one at a time and best first, to the busy merchant that
cuts the expected coverage shortfall (see `dispatch.coverage`) the most, as long as the cut is
at least `reposition_min_gain` and the move takes at most `reposition_max_s`; at most
`max_repositions` moves per tick. A moved courier reaches demand points from its target, plus
`reposition_transit_weight` times its move (the move is temporary, the new position lasts).
"""

from __future__ import annotations

import numpy as np

from dispatch.candidates import TickFrame
from dispatch.coverage import Coverage
from dispatch.decisions import Reposition, decision_id
from dispatch.policy import Policy
from dispatch.routes import to_ts_ms
from dispatch.snapshot import Snapshot


def repositions(
    snapshot: Snapshot,
    frame: TickFrame,
    policy: Policy,
    busy: set[int],
    cover: Coverage | None,
) -> list[Reposition]:
    """Moves of idle couriers (not in `busy`) towards merchants with expected demand."""
    if cover is None or policy.max_repositions == 0:
        return []
    idle_pos = np.array(
        [k for k, c in enumerate(cover.couriers) if frame.idle[c] and int(c) not in busy],
        dtype=np.int64,
    )
    if idle_pos.size == 0:
        return []
    targets = cover.merchant_rows.size
    # Idle couriers are free now: their reach to the target merchants is their travel time.
    move_s = cover.arrival_s[idle_pos][:, :targets].copy()
    too_far = (move_s > policy.reposition_max_s) | (
        move_s > cover.last_arrival_s[idle_pos][:, None]
    )
    transit = policy.reposition_transit_weight
    moves: list[Reposition] = []
    remaining = np.ones(idle_pos.size, dtype=bool)
    while remaining.any() and len(moves) < policy.max_repositions:
        first, best1, best2 = cover.best_two()
        current = float(cover.expected_shortfall(best1))
        cand = np.flatnonzero(remaining)
        without = np.where(first[None, :] == idle_pos[cand][:, None], best2, best1)
        via = cover.served_reach(
            idle_pos[cand][:, None],
            move_s[cand][:, :, None] + cover.between_s[None, :, :],
            transit * move_s[cand][:, :, None] + cover.between_s[None, :, :],
        )
        cost = cover.expected_shortfall(np.minimum(without[:, None, :], via))
        cost[too_far[cand]] = np.inf
        target = np.argmin(cost, axis=1)
        gain = current - cost[np.arange(cand.size), target]
        k = int(np.argmax(gain))
        if not gain[k] >= policy.reposition_min_gain:
            break
        i, t = int(cand[k]), int(target[k])
        remaining[i] = False
        if move_s[i, t] == 0:
            continue
        cover.reach_s[idle_pos[i]] = cover.served_reach(
            idle_pos[i : i + 1],
            move_s[i, t] + cover.between_s[t][None, :],
            transit * move_s[i, t] + cover.between_s[t][None, :],
        )[0]
        merchant = int(cover.merchant_rows[t])
        merchants = snapshot.merchants
        xy = merchants.xy_m[merchant]
        now = snapshot.now_ts_ms
        courier_id = snapshot.couriers.courier_id[int(cover.couriers[idle_pos[i]])]
        merchant_id = merchants.merchant_id[merchant]
        moves.append(
            Reposition(
                decision_id=decision_id(
                    "reposition", snapshot.shard_id, now, courier_id, (merchant_id,)
                ),
                courier_id=courier_id,
                merchant_id=merchant_id,
                xy_m=(float(xy[0]), float(xy[1])),
                depart_ts_ms=now,
                arrival_ts_ms=to_ts_ms(now, float(move_s[i, t])),
                reason="coverage",
            )
        )
    return moves
