from __future__ import annotations

from typing import Any

import pytest

from dispatch.live.eta import StraightLinePredictor
from simulators.city.kpis import MODEL_FREE_VERSION, compute_kpis, courier_times, order_outcomes
from simulators.city.protocol import SimRecord
from simulators.city.runner import SimulationLog
from tests.unit.simulators.city.conftest import Run, small_config

CONFIG = small_config(max_order_age_s=3_600.0)
T0 = CONFIG.start_ts_ms


def m(minutes: float) -> int:
    """Event time `minutes` after the start."""
    return T0 + round(minutes * 60_000)


def ev(kind: str, minutes: float, **fields: Any) -> SimRecord:
    """A record of an event of `kind` at `minutes`."""
    return SimRecord(
        "t", b"k", {"type": kind, "ts_ms": m(minutes), "event_id": f"{kind}-{minutes}", **fields}
    )


def created(oid: str, minutes: float, promise_min: float = 40.0) -> SimRecord:
    """An order_created with a promise `promise_min` after placement."""
    point = {"lat": 40.78, "lon": -73.98}
    return ev(
        "order_created",
        minutes,
        order_id=oid,
        shard="dr5r",
        pickup=point,
        dropoff=point,
        promise_ts_ms=m(minutes + promise_min),
    )


def proposal(
    decision: str,
    oid: str,
    minutes: float,
    p50_min: float,
    p90_min: float,
    lease_min: float = 0.5,
    fallback: bool = False,
    model_version: str = "v0003",
) -> SimRecord:
    """An offer of one order with its dropoff ETA quantiles in minutes."""
    return ev(
        "assignment_proposed",
        minutes,
        decision_id=decision,
        shard="dr5r",
        order_ids=[oid],
        courier_id="c1" if oid == "A" else "c2",
        lease_expires_ts_ms=m(minutes + lease_min),
        etas={
            oid: {
                "p50_s": p50_min * 60,
                "p90_s": p90_min * 60,
                "fallback_used": fallback,
                "fallback_reason": "model" if fallback else None,
            }
        },
        model_version=model_version,
    )


def response(decision: str, minutes: float, answer: str) -> SimRecord:
    """The courier app's answer to `decision`."""
    return ev(
        "assignment_response",
        minutes,
        decision_id=decision,
        courier_id="c",
        shard="dr5r",
        response=answer,
    )


def commit(decision: str, oid: str, courier: str, minutes: float) -> SimRecord:
    """A one-order commit."""
    return ev(
        "assignment_committed",
        minutes,
        decision_id=decision,
        shard="dr5r",
        order_ids=[oid],
        courier_id=courier,
    )


def hand_log(
    extra_outputs: list[SimRecord] | None = None, model_version: str = "v0003"
) -> SimulationLog:
    """Six orders: A on time, B late, C cancelled, D expired with reason, E too old, F open.

    Offers carry `model_version` (the ETA model that served them).
    """
    inputs = [
        ev("courier_online", 0, courier_id="c1"),
        ev("courier_online", 0, courier_id="c2"),
        created("A", 0, promise_min=30),
        created("B", 0, promise_min=35),
        created("E", 0),
        created("C", 5),
        created("D", 5),
        response("dA", 2.2, "accept"),
        response("dB", 3.2, "accept"),
        ev("order_ready", 5, order_id="B"),
        response("dX", 6.2, "decline"),
        response("dY", 8, "accept"),
        ev("order_ready", 10, order_id="A"),
        ev("order_cancelled", 10, order_id="C", shard="dr5r", reason="customer"),
        ev("delivery_picked_up", 12, order_id="A", courier_id="c1"),
        ev("delivery_picked_up", 15, order_id="B", courier_id="c2"),
        ev("delivery_delivered", 25, order_id="A", courier_id="c1"),
        ev("delivery_delivered", 40, order_id="B", courier_id="c2"),
        ev("courier_offline", 60, courier_id="c1"),
        created("F", 60),
    ]
    outputs = [
        proposal("dA", "A", 2, 20, 30, model_version=model_version),
        commit("dA", "A", "c1", 2.5),
        proposal("dB", "B", 3, 30, 35, fallback=True, model_version=model_version),
        commit("dB", "B", "c2", 3.5),
        proposal("dX", "C", 6, 10, 20, model_version=model_version),
        proposal("dY", "D", 7, 10, 20, model_version=model_version),
        ev("order_expired", 50, order_id="D", shard="dr5r", reason="no_courier"),
        *(extra_outputs or []),
    ]
    return SimulationLog(
        CONFIG,
        ("dr5r",),
        inputs,
        outputs,
        start_ts_ms=T0,
        scenario_end_ts_ms=m(60),
        end_ts_ms=m(70),
    )


def test_each_order_has_one_outcome_as_defined() -> None:
    """Delivered, cancelled, expired (by the dispatcher or past the max age) and open add up."""
    k = compute_kpis(hand_log())
    assert (k["orders"], k["delivered"], k["cancelled"], k["expired"], k["open_at_end"]) == (
        6,
        2,
        1,
        2,
        1,
    )
    assert (k["expired_with_reason"], k["expired_past_max_age"]) == (1, 1)


def test_on_time_rate_and_click_to_door() -> None:
    """On time is delivered by the promise; click-to-door quantiles are over delivered orders."""
    k = compute_kpis(hand_log())
    assert k["on_time_rate"] == 0.5
    assert k["ctod_p50_min"] == pytest.approx(32.5)
    assert k["ctod_p90_min"] == pytest.approx(38.5)
    assert k["ready_to_pickup_p50_min"] == pytest.approx(6.0)


def test_acceptance_rate_counts_every_answer() -> None:
    """Acceptance is accepts over all answers; answers after the lease are counted late."""
    k = compute_kpis(hand_log())
    assert k["acceptance_rate"] == 0.75
    assert k["late_responses"] == 1


def test_utilization_is_busy_time_over_online_time() -> None:
    """Busy (holding a live commit while online) over online time, summed over couriers."""
    busy_s, online_s = courier_times(hand_log())
    assert busy_s == pytest.approx((22.5 + 36.5) * 60)
    assert online_s == pytest.approx((60 + 70) * 60)
    assert compute_kpis(hand_log())["courier_utilization"] == pytest.approx(59 / 130, abs=1e-4)


def test_a_release_ends_busy_time() -> None:
    """A released commit stops counting as busy at the release."""
    extra = [
        commit("dE", "E", "c1", 26),
        ev(
            "assignment_released",
            28,
            decision_id="dE",
            order_ids=["E"],
            courier_id="c1",
            reason="superseded",
        ),
        ev(
            "assignment_released",
            29,
            decision_id="dOther",
            order_ids=["A"],
            courier_id="c1",
            reason="declined",
        ),
    ]
    busy_s, _ = courier_times(hand_log(extra))
    assert busy_s == pytest.approx((22.5 + 2 + 36.5) * 60)


def test_eta_errors_coverage_and_fallbacks_from_the_accepted_offer() -> None:
    """The accepted offer's ETAs, relative to its time, against the realized delivery."""
    k = compute_kpis(hand_log())
    assert k["eta_samples"] == 2
    assert k["eta_p50_abs_err_min"] == pytest.approx(5.0)
    assert k["eta_p90_abs_err_min"] == pytest.approx(6.6)
    assert k["eta_p90_coverage"] == 0.5
    assert k["fallback_rate"] == 0.5


def test_fallback_reasons_count_the_model_s_own_fallbacks() -> None:
    """With a model, an offer flagged `fallback_used` counts under the reason it gave."""
    assert compute_kpis(hand_log())["fallback_reasons"] == {"model": 1}


def test_without_a_model_every_eta_is_a_fallback_to_the_base() -> None:
    """Offers from the model-free straight-line predictor: fallback rate 1, `missing_model`."""
    k = compute_kpis(hand_log(model_version=MODEL_FREE_VERSION))
    assert k["fallback_rate"] == 1.0
    assert k["fallback_reasons"] == {"missing_model": 2}


def test_the_model_free_version_is_the_one_the_engine_stamps() -> None:
    """The version KPIs read as "no model" is the straight-line predictor's."""
    assert StraightLinePredictor().version == MODEL_FREE_VERSION


def test_eta_updates_without_a_model_are_fallbacks_too() -> None:
    """With eta_source='update', an update from the straight-line predictor is a fallback."""
    update = {"shard": "dr5r", "fallback_used": False, "model_version": MODEL_FREE_VERSION}
    extra = [
        ev(
            "eta_update",
            11,
            order_id="A",
            dropoff_p50_ts_ms=m(24),
            dropoff_p90_ts_ms=m(26),
            **update,
        )
    ]
    k = compute_kpis(hand_log(extra), eta_source="update")
    assert k["fallback_reasons"] == {"missing_model": 1, "model": 1}


def test_eta_updates_before_pickup_can_be_the_source() -> None:
    """With eta_source='update', the last eta_update before pickup wins; else the offer is used."""
    update = {"shard": "dr5r", "fallback_used": False, "model_version": "t"}
    extra = [
        ev(
            "eta_update",
            11,
            order_id="A",
            dropoff_p50_ts_ms=m(24),
            dropoff_p90_ts_ms=m(26),
            **update,
        ),
        ev(
            "eta_update",
            13,
            order_id="A",
            dropoff_p50_ts_ms=m(40),
            dropoff_p90_ts_ms=m(41),
            **update,
        ),
    ]
    k = compute_kpis(hand_log(extra), eta_source="update")
    assert k["eta_p50_abs_err_min"] == pytest.approx(4.0)
    assert k["eta_p90_coverage"] == 0.5
    assert k["fallback_rate"] == 0.5


def test_circuit_breaker_ticks_are_read_from_outputs_or_given() -> None:
    """Flagged outputs count once per (shard, tick); a count passed in wins."""
    flagged = ev(
        "assignment_proposed",
        30,
        shard="dr5r",
        decision_id="z",
        order_ids=["F"],
        courier_id="c2",
        lease_expires_ts_ms=m(31),
        explanation={"terms": {"circuit_breaker": 1.0}},
    )
    again = ev(
        "assignment_proposed",
        30,
        shard="dr5r",
        decision_id="z2",
        order_ids=["F"],
        courier_id="c1",
        lease_expires_ts_ms=m(31),
        explanation={"terms": {}, "circuit_breaker": True},
    )
    log = hand_log([flagged, again])
    assert compute_kpis(log)["circuit_breaker_ticks"] == 1
    assert compute_kpis(log, circuit_breaker_ticks=4)["circuit_breaker_ticks"] == 4


def test_invariant_violations_are_passed_through() -> None:
    """The caller's invariant count is reported as given; None when no check ran."""
    assert compute_kpis(hand_log(), invariant_violations=0)["invariant_violations"] == 0
    assert compute_kpis(hand_log())["invariant_violations"] is None


def test_an_empty_log_has_no_rates() -> None:
    """Without orders, responses or deliveries, rates and quantiles are None."""
    empty = SimulationLog(CONFIG, ("dr5r",), [], [], start_ts_ms=T0, end_ts_ms=m(10))
    k = compute_kpis(empty)
    assert k["orders"] == 0
    assert all(
        k[key] is None
        for key in (
            "on_time_rate",
            "ctod_p50_min",
            "acceptance_rate",
            "eta_p90_coverage",
            "courier_utilization",
        )
    )


def test_outcomes_add_up_on_a_real_run(small_run: Run) -> None:
    """On a simulated run every order has exactly one outcome and utilization is a share."""
    k = compute_kpis(small_run.log)
    assert k["delivered"] + k["cancelled"] + k["expired"] + k["open_at_end"] == k["orders"] > 0
    assert 0.0 < k["courier_utilization"] <= 1.0
    assert len(order_outcomes(small_run.log)) == len(small_run.inputs_of("order_created"))


def _with_arrivals(log: SimulationLog) -> SimulationLog:
    """`log` with pickup arrivals: c1 at A at minute 8 (ready 10), c2 at B at 13 (ready 5)."""
    arrivals = [
        ev("delivery_arrived", 6, order_id="A", courier_id="c9", stop="pickup"),
        ev("delivery_arrived", 8, order_id="A", courier_id="c1", stop="pickup"),
        ev("delivery_arrived", 13, order_id="B", courier_id="c2", stop="pickup"),
        ev("delivery_arrived", 20, order_id="A", courier_id="c1", stop="dropoff"),
    ]
    log.inputs.extend(arrivals)
    return log


def test_courier_wait_is_ready_minus_the_picking_courier_s_arrival() -> None:
    """The courier who picked A up waited 2 min for it; B was ready before its courier came."""
    assert compute_kpis(_with_arrivals(hand_log()))["courier_wait_min"] == pytest.approx(1.0)


def test_food_wait_is_the_picking_courier_s_arrival_minus_ready() -> None:
    """B waited 8 min for its courier; A was not ready when its courier came."""
    assert compute_kpis(_with_arrivals(hand_log()))["food_wait_min"] == pytest.approx(4.0)


def test_waits_are_unknown_without_arrivals() -> None:
    """A log without pickup arrivals has no courier or food waiting figure."""
    k = compute_kpis(hand_log())
    assert (k["courier_wait_min"], k["food_wait_min"]) == (None, None)


def _placement_eta(oid: str, minutes: float, p50_min: float, p90_min: float) -> SimRecord:
    """An `eta_update` of `oid` at `minutes` with drop-off quantiles at those minutes."""
    return ev(
        "eta_update",
        minutes,
        order_id=oid,
        shard="dr5r",
        dropoff_p50_ts_ms=m(p50_min),
        dropoff_p90_ts_ms=m(p90_min),
        fallback_used=False,
        model_version="v0003",
    )


def test_placement_etas_are_those_announced_when_the_order_was_placed() -> None:
    """Only the update issued at the order's creation counts; later ones do not."""
    log = hand_log(
        [
            _placement_eta("A", 0, 24, 30),
            _placement_eta("A", 3, 25, 26),
            _placement_eta("B", 1, 40, 45),
        ]
    )
    k = compute_kpis(log, eta_source="placement")
    assert (k["eta_samples"], k["eta_p50_abs_err_min"], k["eta_p90_coverage"]) == (1, 1.0, 1.0)
