"""The console against the engine: a short city run in-process, read back by the console.

The run's inputs and outputs are contract events from the real engine (the worker's code, in
one process), with a `dispatch_control` that changes weights at the start, so every proposal
names a policy version with a control.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from console.model import OpsModel
from console.terms import ROUNDING_TOLERANCE_MIN
from console.views import order_detail
from dispatchflow.settings import Settings
from simulators.city import SimRecord, SimulationLog, compute_kpis, run_simulation, small_town
from simulators.inprocess import InProcessDispatch
from tests.unit.console.events import event

CONTROL_WEIGHTS = {"w_late": 0.5, "w_courier_time": 0.2}


class _ControlFirst:
    """A dispatcher that gets a `*` control with `CONTROL_WEIGHTS` before the first step."""

    def __init__(self, dispatch: InProcessDispatch, start_ts_ms: int) -> None:
        self.dispatch = dispatch
        control = event(
            "dispatch_control",
            start_ts_ms,
            shard="*",
            policy_version="ops-test",
            weights=CONTROL_WEIGHTS,
        )
        self.pending = [SimRecord("dispatch_control", b"*", control)]
        self.fed: list[SimRecord] = []

    def run_until(self, inputs: Sequence[SimRecord], until_ts_ms: int) -> list[SimRecord]:
        batch = [*self.pending, *inputs]
        self.pending = []
        self.fed.extend(batch)
        return self.dispatch.run_until(batch, until_ts_ms)


@dataclass
class Run:
    """A finished run: its log, the engine's cost of every decision, the console's model."""

    log: SimulationLog
    engine_cost: dict[str, float]
    model: OpsModel


def _feed(model: OpsModel, records: Sequence[SimRecord]) -> None:
    offsets: Counter[str] = Counter()
    for r in records:
        topic = r.topic
        if topic in ("courier_pings", "courier_events", "dispatch_ticks", "courier_handoffs"):
            continue
        model.apply_event(topic, 0, offsets[topic], r.event)
        offsets[topic] += 1


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    """A ten-minute small town through the in-process worker, fed to the console's model."""
    config = dataclasses.replace(small_town(seed=3), duration_s=600.0)
    dispatch = InProcessDispatch.from_settings(Settings(tick_interval_s=config.tick_interval_s))
    driver = _ControlFirst(dispatch, config.start_ts_ms)
    try:
        log = run_simulation(config, driver, progress=False)
        proposals = [r.event for r in log.outputs if r.event["type"] == "assignment_proposed"]
        cost = {}
        for p in proposals:
            record = dispatch.stores.shard.decisions.get(p["decision_id"])
            assert record is not None
            cost[p["decision_id"]] = record.cost
    finally:
        dispatch.close()
    model = OpsModel()
    _feed(model, [*driver.fed, *log.outputs])
    yield Run(log, cost, model)


def _proposals(run: Run) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for order_id in run.model.orders:
        detail = order_detail(run.model, order_id)
        assert detail is not None
        found += [(order_id, d) for d in detail["decisions"] if d["kind"] == "proposed"]
    assert found
    return found


def test_every_proposals_terms_add_up_to_the_engines_cost(run: Run) -> None:
    """Each proposal's terms (cost minutes) add up to the engine's unrounded decision cost."""
    for _, d in _proposals(run):
        assert abs(d["terms_sum_min"] - run.engine_cost[d["decision_id"]]) <= ROUNDING_TOLERANCE_MIN
        assert d["cost_min"] == round(run.engine_cost[d["decision_id"]], 4)


def test_every_quantity_times_its_weight_is_its_term_under_the_control(run: Run) -> None:
    """Weights resolve through the control the version names; quantity × weight = term."""
    for _, d in _proposals(run):
        assert d["policy_version"] == "default+ops-test" and d["weights_known"]
        weights = {t["name"]: t["weight"] for t in d["terms"]}
        assert weights["late"] == CONTROL_WEIGHTS["w_late"]
        assert weights["courier_time"] == CONTROL_WEIGHTS["w_courier_time"]
        for t in d["terms"]:
            if t["quantity"] is not None:
                assert t["quantity"] * t["weight"] == pytest.approx(t["cost_min"], abs=1e-9)


def test_the_outcome_kpis_match_the_simulators(run: Run) -> None:
    """Delivered, cancelled, on-time rate and click-to-door p50/p90 equal the simulator's KPIs."""
    from console.kpis import outcome_kpis

    mine = outcome_kpis(run.model.summaries())
    theirs = compute_kpis(run.log)
    assert mine["delivered"] == theirs["delivered"] > 0
    assert mine["cancelled"] == theirs["cancelled"]
    assert mine["on_time_rate"] == pytest.approx(theirs["on_time_rate"], abs=1e-4)
    assert mine["ctod_p50_min"] == theirs["ctod_p50_min"]
    assert mine["ctod_p90_min"] == theirs["ctod_p90_min"]


def test_the_console_resolves_the_weights_the_engine_runs() -> None:
    """After a control, the engine's weights for a shard are those its version resolves to."""
    from console.terms import Control, weights_of_version

    dispatch = InProcessDispatch()
    try:
        control = event(
            "dispatch_control",
            1_781_625_600_000,
            shard="*",
            policy_version="v3",
            weights={"w_late": 3.0},
        )
        dispatch.run_until([SimRecord("dispatch_control", b"*", control)], control["ts_ms"])
        engine_policy, version = dispatch.engine.policy_for("dr5r")
    finally:
        dispatch.close()
    assert version == "default+v3"
    weights = weights_of_version(version, "dr5r", [Control.from_event(control)])
    assert weights == {
        f.name: getattr(engine_policy, f.name)
        for f in dataclasses.fields(engine_policy)
        if f.name.startswith("w_")
    }
