from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import pytest

from simulators.city.protocol import SimRecord
from simulators.city.runner import run_simulation
from tests.unit.simulators.city.conftest import Run, run_small, small_config


class NoDispatch:
    """A dispatcher that never decides anything."""

    def run_until(self, inputs: Sequence[SimRecord], until_ts_ms: int) -> list[SimRecord]:
        return []


def test_same_seed_same_log(small_run: Run) -> None:
    """Two runs with one seed and a deterministic dispatcher log identical records."""
    again = run_small()
    assert again.log == small_run.log


def test_another_seed_another_log(small_run: Run) -> None:
    """A different seed gives a different run."""
    assert run_small(seed=12).log.inputs != small_run.log.inputs


def test_the_log_keeps_every_record_exchanged(small_run: Run) -> None:
    """The log's inputs are exactly what the dispatcher was given, step after step."""
    given = [rec for _, inputs in small_run.dispatch.calls for rec in inputs]
    assert given == small_run.log.inputs
    assert small_run.log.steps == len(small_run.dispatch.calls)


def test_a_run_drains_until_every_order_is_settled(small_run: Run) -> None:
    """After the scenario the run keeps ticking until no order is open, then stops."""
    log = small_run.log
    assert log.settled and log.open_order_ids == ()
    assert (
        log.scenario_end_ts_ms
        <= log.end_ts_ms
        < log.scenario_end_ts_ms + log.config.drain_max_s * 1000
    )


def test_no_order_is_placed_after_the_scenario(small_run: Run) -> None:
    """Orders are only created during the scenario window, not while draining."""
    created = small_run.inputs_of("order_created")
    assert created and max(e["ts_ms"] for e in created) < small_run.log.scenario_end_ts_ms


def test_the_drain_is_bounded() -> None:
    """With nobody dispatching, the run stops at the end of the drain and reports open orders."""
    config = small_config(drain_max_s=600.0, max_order_age_s=7_200.0)
    log = run_simulation(config, NoDispatch(), progress=False)
    tick_ms = config.tick_interval_ms
    drain_end = config.scenario_end_ts_ms + 600_000
    assert (
        log.end_ts_ms
        == -(-(drain_end - config.start_ts_ms) // tick_ms) * tick_ms + config.start_ts_ms
    )
    assert not log.settled and log.open_order_ids


def test_orders_older_than_the_max_age_are_given_up() -> None:
    """With nobody dispatching, the run ends once every open order is older than the max age."""
    config = small_config(drain_max_s=3_600.0, max_order_age_s=900.0)
    log = run_simulation(config, NoDispatch(), progress=False)
    assert log.settled
    assert log.end_ts_ms < config.scenario_end_ts_ms + 3_600_000


def test_progress_is_silent_without_a_terminal(capfd: pytest.CaptureFixture[str]) -> None:
    """With progress on but no TTY, the run prints nothing."""
    config = small_config(duration_s=120.0, drain_max_s=0.0)
    run_simulation(config, NoDispatch(), progress=True)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_ticks_follow_the_configured_interval() -> None:
    """Steps are tick_interval_s apart in event time."""
    config = dataclasses.replace(
        small_config(duration_s=300.0, drain_max_s=0.0), tick_interval_s=7.0
    )
    calls: list[int] = []

    class Recorder(NoDispatch):
        def run_until(self, inputs: Sequence[SimRecord], until_ts_ms: int) -> list[SimRecord]:
            calls.append(until_ts_ms)
            return []

    run_simulation(config, Recorder(), progress=False)
    assert {b - a for a, b in itertools.pairwise(calls)} == {7_000}
