"""The model loop on a real broker: the log exported for training, a candidate in shadow, promotion.

The event log a model trains on can be read back from the topics (`dispatchflow export-log`):
its offline rows equal those of the log the records were produced from. A worker serves model
set v0001 from its registry while v0002 runs in shadow, and a small city runs through it in
lockstep. Partway, `dispatchflow models promote` switches to v0002, and the worker picks it up
at its next registry re-read. Every decision and every announced ETA names the set that served
it, and the shadow errors of both sets are exported as metrics.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import orjson

from dispatchflow.cli import main
from dispatchflow.settings import Settings
from features.offline import load_event_log, replay_log, to_replay_order
from models.registry import ModelRegistry
from simulators.city import SimulationLog, run_simulation, small_town
from simulators.inprocess import InProcessDispatch
from simulators.synthetic import Record
from streams.export_log import export_log
from streams.sim_dispatch import KafkaDispatch
from streams.worker_process import WorkerProcess
from tests.integration.conftest import Cluster
from tests.integration.polling import wait_for
from tests.integration.stepping import AtStep
from tests.model_sets import tiny_models

#: The lockstep step before which v0002 is promoted (the city places orders for 80 steps).
PROMOTE_AT_STEP = 60


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of `name` with exactly these labels (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{([^}}]*)\}} (\S+)", line)
        if match is not None and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def _metrics(worker: WorkerProcess) -> str:
    return worker.request("/metrics")[1].decode()


def _versions(log: SimulationLog, kind: str, before_ts_ms: int) -> tuple[set[str], set[str]]:
    """Model versions of the `kind` outputs up to `before_ts_ms`, and of those after it."""
    found = [r.event for r in log.outputs if r.event["type"] == kind]
    before = {str(e["model_version"]) for e in found if int(e["ts_ms"]) <= before_ts_ms}
    after = {str(e["model_version"]) for e in found if int(e["ts_ms"]) > before_ts_ms}
    return before, after


def test_the_exported_log_replays_to_the_rows_of_the_produced_log(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Inputs of a small city, produced to the topics and exported, rebuild the same rows."""
    config = small_town(seed=6)
    dispatch = InProcessDispatch.from_settings(Settings(tick_interval_s=config.tick_interval_s))
    try:
        log = run_simulation(config, dispatch, progress=False)
    finally:
        dispatch.close()
    cluster.produce([Record(r.topic, r.key, orjson.dumps(r.event), r.ts_ms) for r in log.inputs])
    out = tmp_path / "export.jsonl"
    counts = asyncio.run(export_log(cluster.client, out))
    assert sum(counts.written.values()) == len(log.inputs) and counts.not_json == {}
    exported = replay_log(load_event_log(out))
    produced = replay_log(to_replay_order(enumerate((r.event for r in log.inputs), start=1)))
    assert exported.orders and exported.orders == produced.orders
    assert exported.legs == produced.legs


def test_a_candidate_runs_in_shadow_until_promoted_and_every_decision_names_its_set(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Shadow errors for both sets; v0001 serves before the promotion, v0002 after it."""
    root = tmp_path / "models"
    registry = ModelRegistry(root)
    assert registry.publish_set(tiny_models(prep_factor=1.2, total_shift_s=300.0)) == "v0001"
    registry.pin("v0001")
    assert registry.publish_set(tiny_models(prep_factor=2.0, total_shift_s=900.0)) == "v0002"
    registry.set_candidate("v0002")
    config = small_town(seed=3)
    worker = cluster.start_worker(
        tick_interval_s=config.tick_interval_s,
        tick_budget_s=60.0,
        model_dir=root,
        model_refresh_s=0.2,
        dispatch_variant="learned",
    )
    metrics = _metrics(worker)
    assert _metric(metrics, "dispatchflow_model_set", role="served", version="v0001") == 1
    assert _metric(metrics, "dispatchflow_model_set", role="candidate", version="v0002") == 1
    shadow: dict[str, float] = {}

    def promote() -> None:
        text = _metrics(worker)
        for role, version in (("served", "v0001"), ("candidate", "v0002")):
            shadow[role] = _metric(
                text,
                "dispatchflow_model_abs_error_seconds_count",
                kind="prep",
                role=role,
                version=version,
            )
        assert main(["models", "promote", "--registry", str(root), "v0002"]) == 0
        wait_for(
            lambda: _metrics(worker),
            lambda text: (
                _metric(text, "dispatchflow_model_set", role="served", version="v0002") == 1
                and _metric(text, "dispatchflow_model_set", role="candidate", version="v0002") == 0
            ),
            timeout_s=30,
        )

    dispatch = KafkaDispatch(cluster.client, [worker.url])
    stepper = AtStep(dispatch, PROMOTE_AT_STEP, promote)
    try:
        log = run_simulation(config, stepper, progress=False)
    finally:
        dispatch.close()
    assert stepper.at_ts_ms is not None
    before_ts_ms = stepper.at_ts_ms - int(config.tick_interval_s * 1000)
    # Food became ready for some orders before the promotion: both sets were scored on them.
    assert shadow["served"] > 0 and shadow["candidate"] == shadow["served"]
    for kind in ("assignment_proposed", "eta_update"):
        before, after = _versions(log, kind, before_ts_ms)
        assert (before, after) == ({"v0001"}, {"v0002"}), kind
    # Orders delivered after the promotion scored v0002 as the served set.
    served_after = _metric(
        _metrics(worker),
        "dispatchflow_model_abs_error_seconds_count",
        kind="total",
        role="served",
        version="v0002",
    )
    assert served_after > 0
