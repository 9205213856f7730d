"""Min-cost assignment over a sparse candidate graph, solved per connected component.

Rows (orders) may stay unmatched at a per-row hold cost; columns (couriers or pending pickups)
take at most one row. Each connected component is solved on its own: small ones with a dense
`scipy.optimize.linear_sum_assignment`, large ones with the sparse LAPJVsp solver
(`scipy.sparse.csgraph.min_weight_full_bipartite_matching`). Both are exact, so the result is
a minimum-cost matching; both are deterministic.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Components with at most this many dense cells are solved densely.
DENSE_CELLS = 40_000
_ABSENT = 1e12


def min_cost_matching(
    row: IntArray,
    col: IntArray,
    cost: FloatArray,
    n_rows: int,
    n_cols: int,
    hold_cost: FloatArray,
    *,
    distinct: bool = False,
    prior: IntArray | None = None,
    new_edge: NDArray[np.bool_] | None = None,
) -> IntArray:
    """Match rows to columns at least total cost; a row may instead pay its hold cost.

    Args:
        row: row of each edge, in `[0, n_rows)`.
        col: column of each edge, in `[0, n_cols)`.
        cost: finite cost of each edge (duplicates keep the cheapest).
        n_rows: number of rows.
        n_cols: number of columns.
        hold_cost: cost of leaving each row unmatched, shape `(n_rows,)`.
        distinct: the caller guarantees no (row, column) pair repeats (skips de-duplication).
        prior: a minimum-cost matching of the same problem without the edges flagged in
            `new_edge`; connected components that no new edge touches keep it (their optimum
            is unchanged), the others are solved afresh. Needs `distinct`.
        new_edge: per edge, whether it is new since `prior`.

    Returns:
        The matched column of each row, or -1 for a row left unmatched.
    """
    match = np.full(n_rows, -1, dtype=np.int64)
    if row.size == 0:
        return match
    if not distinct:
        order = np.lexsort((cost, col, row))
        row, col, cost = row[order], col[order], cost[order]
        first = np.ones(row.size, dtype=bool)
        first[1:] = (row[1:] != row[:-1]) | (col[1:] != col[:-1])
        row, col, cost = row[first], col[first], cost[first]
    cheaper = cost < hold_cost[row]
    row, col, cost = row[cheaper], col[cheaper], cost[cheaper]
    fresh = None if new_edge is None else new_edge[cheaper]
    if row.size == 0:
        return match
    graph = coo_matrix(
        (np.ones(row.size), (row, n_rows + col)), shape=(n_rows + n_cols, n_rows + n_cols)
    )
    _, label = connected_components(graph, directed=False)
    edge_label = label[row]
    by_label = np.argsort(edge_label, kind="stable")
    bounds = np.flatnonzero(np.diff(edge_label[by_label])) + 1
    for edges in np.split(by_label, bounds):
        if prior is not None and fresh is not None and not fresh[edges].any():
            rows = row[edges]
            match[rows] = prior[rows]
            continue
        _solve_component(row[edges], col[edges], cost[edges], hold_cost, match)
    return match


def _solve_component(
    row: IntArray, col: IntArray, cost: FloatArray, hold_cost: FloatArray, match: IntArray
) -> None:
    rows, r_idx = np.unique(row, return_inverse=True)
    cols, c_idx = np.unique(col, return_inverse=True)
    n_r, n_c = rows.size, cols.size
    holds = hold_cost[rows]
    if n_r * (n_c + n_r) <= DENSE_CELLS:
        matrix = np.full((n_r, n_c + n_r), _ABSENT)
        matrix[r_idx, c_idx] = cost
        matrix[np.arange(n_r), n_c + np.arange(n_r)] = holds
        r_sol, c_sol = linear_sum_assignment(matrix)
    else:
        shift = 1.0 - min(float(cost.min()), float(holds.min()))
        data = np.concatenate([cost + shift, holds + shift])
        rr = np.concatenate([r_idx, np.arange(n_r)])
        cc = np.concatenate([c_idx, n_c + np.arange(n_r)])
        matrix_sparse = csr_matrix((data, (rr, cc)), shape=(n_r, n_c + n_r))
        r_sol, c_sol = min_weight_full_bipartite_matching(matrix_sparse)
    real = c_sol < n_c
    match[rows[r_sol[real]]] = cols[c_sol[real]]
