"""Cost terms in minutes: their meaning, their weights by policy version, their quantities."""

from __future__ import annotations

import dataclasses

from console.model import OpsModel
from console.terms import TERMS, Control, base_policy, term_rows, weights_of_version
from console.views import order_detail
from dispatch.costs import TERM_NAMES
from dispatch.policy import DEFAULT_POLICY
from tests.unit.console.events import SHARD, T0, created, event, feed, proposed

WEIGHTS = {f.name: getattr(DEFAULT_POLICY, f.name) for f in dataclasses.fields(DEFAULT_POLICY)}


def test_every_engine_term_has_a_meaning_unit_and_weight() -> None:
    """The console describes exactly the engine's terms, each with a `Policy` weight field."""
    assert set(TERMS) == set(TERM_NAMES)
    fields = {f.name for f in dataclasses.fields(DEFAULT_POLICY)}
    assert all(info.weight_field in fields for info in TERMS.values())


def test_a_term_divided_by_its_weight_is_its_quantity() -> None:
    """With known weights, quantity × weight gives back the weighted term (cost minutes)."""
    rows = term_rows({"courier_time": 2.5, "late": 1.0}, WEIGHTS)
    by_name = {r["name"]: r for r in rows}
    assert by_name["courier_time"]["quantity"] == 2.5 / DEFAULT_POLICY.w_courier_time
    assert by_name["late"]["quantity"] == 1.0 / DEFAULT_POLICY.w_late
    assert all(r["quantity"] * r["weight"] == r["cost_min"] for r in rows)


def test_a_term_weighted_zero_has_no_quantity() -> None:
    """A term whose weight is 0 shows no quantity (it cannot be recovered)."""
    (row,) = term_rows({"travel": 0.0}, WEIGHTS)
    assert (row["weight"], row["quantity"]) == (0.0, None)


def test_a_policy_named_with_settings_is_rebuilt() -> None:
    """`default[w_late=0.5]` is the default policy with that weight."""
    policy = base_policy("default[w_late=0.5]")
    assert policy is not None and policy.w_late == 0.5


def test_a_version_with_a_control_uses_that_controls_weights() -> None:
    """`default+v7` resolves through the `v7` control read for the shard (or `*`)."""
    control = event(
        "dispatch_control", T0, shard="*", policy_version="v7", weights={"w_courier_time": 0.2}
    )
    weights = weights_of_version("default+v7", SHARD, [Control.from_event(control)])
    assert weights is not None and weights["w_courier_time"] == 0.2


def test_an_unknown_version_leaves_quantities_unknown() -> None:
    """A decision whose policy version names a control never read shows its terms only."""
    model = OpsModel()
    feed(model, created("o1"), proposed("d1", ["o1"], "c1", T0, policy_version="default+v9"))
    detail = order_detail(model, "o1")
    assert detail is not None
    (decision,) = detail["decisions"]
    assert decision["weights_known"] is False
    assert all(t["quantity"] is None for t in decision["terms"])


def test_a_proposal_in_the_history_carries_cost_runner_up_and_eta_in_minutes() -> None:
    """The order's history shows the cost, the terms' sum, the runner-up and ETA minutes."""
    model = OpsModel()
    terms = {"delay": 1.5, "late": 0.25, "courier_time": 2.25}
    proposal = proposed(
        "d1", ["o1"], "c1", T0, terms=terms, runner_up=("c2", 6.0), p50_s=600, p90_s=900
    )
    feed(model, created("o1"), proposal)
    detail = order_detail(model, "o1")
    assert detail is not None
    (d,) = detail["decisions"]
    assert (d["cost_min"], d["terms_sum_min"]) == (4.0, 4.0)
    assert (d["runner_up_courier_id"], d["runner_up_cost_min"], d["runner_up_margin_min"]) == (
        "c2",
        6.0,
        2.0,
    )
    assert (d["eta_p50_min"], d["eta_p90_min"]) == (10.0, 15.0)
