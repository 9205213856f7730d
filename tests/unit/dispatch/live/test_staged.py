"""The staged ETA in live dispatch: ready times by variant, the placement ETA, shadow labels."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dispatch.live.engine_config import EngineConfig
from dispatch.live.staged import (
    DEFAULT,
    MERCHANT_ESTIMATE,
    MODEL,
    NO_FEATURES,
    NO_MODEL,
    ORDER_ESTIMATE,
    ORDER_READY,
    ready_times,
)
from dispatch.live.telemetry import NullTelemetry
from models.registry import ModelSet
from tests.model_sets import tiny_set
from tests.unit.dispatch.live.shard_world import SHARD, T0, World, of_type

S = 1_000
#: Features at placement: a merchant whose orders took 10 minutes lately.
PLACEMENT: dict[str, float | None] = {
    "merchant_prep_30d.prep_p50_s": 600.0,
    "merchant_prep_2h.prep_mean_s": 600.0,
    "merchant_orders_waiting.orders_waiting": 1.0,
    "hour_of_week": 36.0,
}


@dataclass
class Sets:
    """The registry side of the engine: a served set and a shadow candidate."""

    served: ModelSet | None = None
    candidate: ModelSet | None = None

    def current_set(self) -> ModelSet | None:
        return self.served

    def candidate_set(self) -> ModelSet | None:
        return self.candidate


@pytest.fixture(scope="module")
def v1() -> ModelSet:
    """A served set: prep about 1.2 times the estimate."""
    return tiny_set("v0001", prep_factor=1.2, total_shift_s=300.0)


@pytest.fixture(scope="module")
def v2() -> ModelSet:
    """A candidate: prep about 2 times the estimate."""
    return tiny_set("v0002", prep_factor=2.0, total_shift_s=900.0)


def _world(tmp_path: Path, variant: str, sets: Sets | None) -> World:
    return World(root=tmp_path, config=EngineConfig(variant=variant), models=sets)


@pytest.fixture
def learned(tmp_path: Path, v1: ModelSet) -> Iterator[World]:
    """A one-shard world of the `learned` variant serving `v1`."""
    with _world(tmp_path, "learned", Sets(v1)) as w:
        yield w


def _accept(world: World, order_id: str, ts_ms: int, ready_ts_ms: int) -> None:
    event = world.event(
        "merchant_accepted",
        ts_ms,
        order_id=order_id,
        merchant_id="m1",
        shard=SHARD,
        estimated_ready_ts_ms=ready_ts_ms,
    )
    world.order_event("order_events", event)


def _ready(world: World, order_id: str, ts_ms: int) -> None:
    event = world.event("order_ready", ts_ms, order_id=order_id, merchant_id="m1", shard=SHARD)
    world.order_event("merchant_ready", event)


def _source(world: World, order_id: str, now_ms: int, served: ModelSet | None) -> str:
    order = world.order(order_id)
    found = ready_times([order], now_ms, world.engine.config, served, NullTelemetry())
    return found.source[0]


def test_learned_commits_to_the_prep_model_s_p50_and_prices_its_p90(
    learned: World, v1: ModelSet
) -> None:
    """With features at placement, P1 serves: p50 about 1.2 × the estimate, p90 after it."""
    learned.create("o1", T0, prep_s=600.0, placement=PLACEMENT)
    found = ready_times([learned.order("o1")], T0, learned.engine.config, v1, NullTelemetry())
    assert found.source == (MODEL,)
    p50_s = (int(found.p50_ts_ms[0]) - T0) / 1000
    assert 600.0 < p50_s < 900.0
    assert found.p90_ts_ms[0] > found.p50_ts_ms[0]


def test_a_p50_already_past_is_now(learned: World, v1: ModelSet) -> None:
    """Food the model thought ready by now is not ready yet: the commitment is now."""
    learned.create("o1", T0, prep_s=600.0, placement=PLACEMENT)
    later = T0 + 3_600 * S
    found = ready_times([learned.order("o1")], later, learned.engine.config, v1, NullTelemetry())
    assert found.source == (MODEL,) and int(found.p50_ts_ms[0]) == later


def test_the_merchant_s_order_ready_overrides_the_model(learned: World, v1: ModelSet) -> None:
    """Once the food is ready, p50 and p90 are that time."""
    learned.create("o1", T0, prep_s=600.0, placement=PLACEMENT)
    _ready(learned, "o1", T0 + 100 * S)
    found = ready_times([learned.order("o1")], T0, learned.engine.config, v1, NullTelemetry())
    assert found.source == (ORDER_READY,)
    assert found.p50_ts_ms[0] == found.p90_ts_ms[0] == T0 + 100 * S


def test_learned_without_a_model_takes_the_merchant_s_estimate_and_counts_why(
    tmp_path: Path,
) -> None:
    """No set loaded: the merchant chain serves, counted `no_model`."""
    with _world(tmp_path, "learned", Sets()) as world:
        world.create("o1", T0, prep_s=600.0, placement=PLACEMENT)
        _accept(world, "o1", T0 + S, T0 + 500 * S)
        world.tick(T0 + 2 * S)
        assert world.telemetry.counts[f"ready:{NO_MODEL}"] >= 1
        assert world.telemetry.counts[f"ready:{MERCHANT_ESTIMATE}"] >= 1


def test_an_order_without_features_at_placement_falls_back_counted(
    learned: World, v1: ModelSet
) -> None:
    """An order created without placement features is served by the chain, `no_features`."""
    learned.create("o1", T0, prep_s=600.0)
    learned.tick(T0 + S)
    assert learned.telemetry.counts[f"ready:{NO_FEATURES}"] >= 1
    assert _source(learned, "o1", T0 + S, v1) == ORDER_ESTIMATE


@pytest.mark.parametrize(
    ("variant", "accepted", "expected"),
    [
        ("fixed", True, DEFAULT),
        ("merchant", True, MERCHANT_ESTIMATE),
        ("merchant", False, ORDER_ESTIMATE),
    ],
)
def test_variants_without_a_model_read_the_merchant_chain_or_the_default(
    tmp_path: Path, v1: ModelSet, variant: str, accepted: bool, expected: str
) -> None:
    """`fixed` ignores every estimate; `merchant` takes the tablet's, then the order's own."""
    with _world(tmp_path, variant, Sets(v1)) as world:
        world.create("o1", T0, prep_s=600.0, placement=PLACEMENT)
        if accepted:
            _accept(world, "o1", T0 + S, T0 + 500 * S)
        assert _source(world, "o1", T0 + 2 * S, None) == expected


def test_the_placement_eta_and_every_proposal_carry_the_served_set_s_version(
    learned: World,
) -> None:
    """The ETA announced at placement and the offer made at the tick name `v0001`."""
    learned.online("c1", T0)
    created = learned.create("o1", T0 + S, prep_s=0.0, placement=PLACEMENT)
    announced = of_type(created, "eta_update")
    assert [e["model_version"] for e in announced] == ["v0001"]
    assert announced[0]["dropoff_p90_ts_ms"] >= announced[0]["dropoff_p50_ts_ms"] > T0 + S
    _ready(learned, "o1", T0 + 2 * S)
    offers = of_type(learned.tick(T0 + 3 * S), "assignment_proposed")
    assert [o["model_version"] for o in offers] == ["v0001"]


def test_without_a_set_the_placement_eta_carries_the_leg_predictor_s_version(
    tmp_path: Path,
) -> None:
    """`merchant` serves no set: the announced ETA names the straight-line predictor."""
    with _world(tmp_path, "merchant", Sets()) as world:
        announced = of_type(world.create("o1", T0, prep_s=600.0), "eta_update")
        assert [e["model_version"] for e in announced] == [world.engine.predictor.version]


def test_shadow_labels_score_the_served_set_and_the_candidate_by_version(
    tmp_path: Path, v1: ModelSet, v2: ModelSet
) -> None:
    """Food ready and delivery each score both sets, under their roles and versions."""
    with _world(tmp_path, "learned", Sets(v1, v2)) as world:
        world.create("o1", T0, prep_s=600.0, placement=PLACEMENT)
        world.online("c1", T0 + 700 * S)
        _ready(world, "o1", T0 + 720 * S)
        offer = of_type(world.tick(T0 + 721 * S), "assignment_proposed")[0]
        world.respond(offer["decision_id"], "c1", T0 + 725 * S)
        world.picked_up("o1", "c1", T0 + 900 * S)
        world.delivered("o1", "c1", T0 + 1_500 * S)
        counts = world.telemetry.counts
        for kind in ("prep", "total"):
            assert counts[f"labels:{kind}:served:v0001"] == 1
            assert counts[f"labels:{kind}:candidate:v0002"] == 1
        errors = world.telemetry.errors
        # Ready after 720 s: v0001 (about 1.2 × 600 s) is closer than v0002 (about 2 ×).
        assert errors["prep:served:v0001"][0] < errors["prep:candidate:v0002"][0]
