"""The sparse min-cost matching against brute force."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.matching import min_cost_matching


def _brute_force(cost: np.ndarray, hold: np.ndarray) -> float:
    n, m = cost.shape
    best = float(hold.sum())
    for k in range(1, min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                total = sum(cost[r, c] for r, c in zip(rows, cols, strict=True))
                total += sum(hold[r] for r in range(n) if r not in rows)
                best = min(best, total)
    return best


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Small cost matrices (None: no edge) with hold costs."""
    n = draw(st.integers(1, 4))
    m = draw(st.integers(1, 4))
    cells = draw(st.lists(st.one_of(st.none(), st.integers(0, 50)), min_size=n * m, max_size=n * m))
    cost = np.array([np.inf if c is None else float(c) for c in cells]).reshape(n, m)
    hold = np.array(draw(st.lists(st.integers(10, 60), min_size=n, max_size=n)), dtype=float)
    return cost, hold


def _solve(cost: np.ndarray, hold: np.ndarray) -> tuple[np.ndarray, float]:
    rows, cols = np.nonzero(np.isfinite(cost))
    n, m = cost.shape
    match = min_cost_matching(rows, cols, cost[rows, cols], n, m, hold)
    total = sum(cost[r, c] if c >= 0 else hold[r] for r, c in enumerate(match))
    return match, float(total)


@settings(max_examples=60, deadline=None)
@given(problems())
def test_matching_is_minimum_cost(problem: tuple[np.ndarray, np.ndarray]) -> None:
    """The matching's total cost (held rows pay their hold cost) equals the brute-force optimum."""
    cost, hold = problem
    _, total = _solve(cost, hold)
    assert np.isclose(total, _brute_force(np.where(np.isfinite(cost), cost, 1e9), hold))


@settings(max_examples=60, deadline=None)
@given(problems())
def test_matching_uses_each_column_once_and_only_edges(
    problem: tuple[np.ndarray, np.ndarray],
) -> None:
    """No column is matched twice and every match is an existing edge."""
    cost, hold = problem
    match, _ = _solve(cost, hold)
    used = match[match >= 0]
    assert len(used) == len(set(used.tolist()))
    for r, c in enumerate(match):
        if c >= 0:
            assert np.isfinite(cost[r, c])


def test_large_component_uses_the_sparse_solver_and_stays_optimal() -> None:
    """A component too big for the dense path is solved exactly by the sparse solver."""
    rng = np.random.default_rng(3)
    n, m = 260, 200
    rows = np.repeat(np.arange(n), 6)
    cols = rng.integers(0, m, rows.size)
    cost = rng.uniform(0, 10, rows.size)
    hold = np.full(n, 30.0)
    match = min_cost_matching(rows, cols, cost, n, m, hold)
    # Check optimality against the dense assignment with explicit hold columns.
    from scipy.optimize import linear_sum_assignment

    dense = np.full((n, m + n), 1e9)
    np.minimum.at(dense, (rows, cols), cost)  # repeated edges keep the cheapest
    dense[np.arange(n), m + np.arange(n)] = hold
    r_idx, c_idx = linear_sum_assignment(dense)
    optimum = dense[r_idx, c_idx].sum()
    ours = sum(dense[r, c] if c >= 0 else hold[r] for r, c in enumerate(match.tolist()))
    assert np.isclose(ours, optimum)


@settings(max_examples=80, deadline=None)
@given(problems(), st.data())
def test_adding_edges_to_a_prior_matching_stays_minimum_cost(
    problem: tuple[np.ndarray, np.ndarray], data: st.DataObject
) -> None:
    """Re-solving with `prior` after adding edges costs what a solve from scratch costs."""
    cost, hold = problem
    rows, cols = np.nonzero(np.isfinite(cost))
    n, m = cost.shape
    flags = data.draw(st.lists(st.booleans(), min_size=rows.size, max_size=rows.size))
    new = np.array(flags, dtype=bool)
    old = ~new
    prior = min_cost_matching(
        rows[old], cols[old], cost[rows[old], cols[old]], n, m, hold, distinct=True
    )
    again = min_cost_matching(
        rows, cols, cost[rows, cols], n, m, hold, distinct=True, prior=prior, new_edge=new
    )
    total = sum(cost[r, c] if c >= 0 else hold[r] for r, c in enumerate(again))
    assert np.isclose(total, _solve(cost, hold)[1])
