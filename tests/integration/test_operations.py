"""Operating the worker: topics as code, refusing to start without them, health, loud crashes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts.topics import load_topics
from simulators.synthetic import Record
from streams.kafka_broker import KafkaCluster
from streams.topics import TopicAdmin
from streams.worker_process import WorkerProcess, WorkerStartError
from tests.integration.conftest import Cluster


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `dispatchflow ARGS` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "dispatchflow", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_topics_apply_creates_everything_and_verify_then_finds_no_drift(broker: str) -> None:
    """On the session broker, apply creates the file's topics; verify exits 0 afterwards."""
    applied = run_cli(
        "topics", "apply", "--broker", broker, "--replication", "1", "--app-id", "opsapp"
    )
    assert applied.returncode == 0, applied.stderr
    verified = run_cli(
        "topics", "verify", "--broker", broker, "--replication", "1", "--app-id", "opsapp"
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "cluster matches" in verified.stdout


def test_verify_reports_a_partition_count_that_drifted(tmp_path: Path) -> None:
    """A topic created by hand with the wrong partition count is reported, exit code 1."""
    with KafkaCluster(1) as broker:

        async def make_wrong() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
            await admin.start()
            await admin.create_topics(
                [NewTopic("order_events", 3, 1, topic_configs={"cleanup.policy": "delete"})]
            )
            await admin.close()

        asyncio.run(make_wrong())
        run_cli("topics", "apply", "--broker", broker.bootstrap, "--replication", "1")
        result = run_cli("topics", "verify", "--broker", broker.bootstrap, "--replication", "1")
    assert result.returncode == 1
    assert "order_events: 8 partitions declared, 3 on cluster" in result.stdout


def test_worker_refuses_to_start_on_a_cluster_without_its_topics(tmp_path: Path) -> None:
    """Against an empty cluster the worker exits 1 and says to run `topics apply`."""
    with KafkaCluster(1) as broker:
        env = {
            "DISPATCHFLOW_BROKER_URL": broker.bootstrap,
            "DISPATCHFLOW_DATADIR": str(tmp_path / "d"),
        }
        result = run_cli("worker", env=env)
    assert result.returncode == 1
    assert "dispatchflow topics apply" in result.stderr


def test_health_and_metrics_endpoints_answer(cluster: Cluster) -> None:
    """A running worker is alive, ready, and exports our counters in base units."""
    worker = cluster.start_worker()
    status, body = worker.request("/healthz")
    assert status == 200 and orjson.loads(body)["alive"] is True
    ready = worker.get_json("/readyz")
    assert ready["ready"] is True and ready["checks"]["tables_recovered"] is True
    status, metrics = worker.request("/metrics")
    assert status == 200
    text = metrics.decode()
    assert "# TYPE dispatchflow_events_consumed_total counter" in text
    assert "# TYPE dispatchflow_event_processing_seconds histogram" in text


def test_eta_route_answers_a_leg_and_refuses_an_oversized_body(cluster: Cluster) -> None:
    """`POST /eta` on a worker: a valid leg gets the contract fields, a huge body a 413."""
    from models.http import MAX_BODY_BYTES

    worker = cluster.start_worker()
    request = {
        "origin": {"lat": 40.75, "lon": -73.99},
        "destination": {"lat": 40.76, "lon": -73.97},
        "request_time_ms": 1_700_000_000_000,
        "leg": "pickup",
        "base_eta_s": 420.0,
    }
    status, raw = worker.request("/eta", body=orjson.dumps(request))
    answer = orjson.loads(raw)
    assert status == 200 and answer["p90_s"] >= answer["p50_s"] > 0
    assert {"base_eta_s", "fallback_used", "fallback_reason", "model_version"} <= set(answer)
    assert worker.request("/eta", body=b" " * (MAX_BODY_BYTES + 1))[0] == 413


def test_a_corrupt_internal_record_is_dead_lettered_and_the_worker_stays_up(
    cluster: Cluster,
) -> None:
    """Garbage on an internal topic goes to its dead-letter topic; the worker keeps going."""
    worker = cluster.start_worker()
    corrupt = Record("courier_positions", b"dr5r", b"DFPB1\x05\x00\x00\x00{bad}", 1)
    cluster.produce([corrupt])
    cluster.wait_caught_up(["courier_positions"])
    assert worker.request("/healthz")[0] == 200
    letters = cluster.dead_letters()
    assert [(x["source_topic"], x["reason"]) for x in letters] == [
        ("courier_positions", "undecodable")
    ]
    assert letters[0]["value"] == corrupt.value


def test_worker_start_fails_clearly_when_the_broker_is_down(tmp_path: Path) -> None:
    """A worker pointed at nothing does not become ready; the error carries its log."""
    from streams.demo import local_settings

    settings = local_settings("127.0.0.1:1", tmp_path / "d", request_timeout_s=2.0)
    worker = WorkerProcess(settings, tmp_path / "w.log")
    try:
        worker.start(ready_timeout_s=20)
    except WorkerStartError as exc:
        assert "worker" in str(exc)
    else:  # pragma: no cover - the assertion below reports it
        raise AssertionError("worker became ready without a broker")
    finally:
        worker.stop()


def test_broker_command_serves_until_sigterm() -> None:
    """`dispatchflow broker` prints its address, answers, and exits 0 on SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dispatchflow", "broker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "embedded broker ready at 127.0.0.1:" in line
    bootstrap = line.split(" at ")[1].split()[0]
    topics = load_topics().topics[:2]
    created = asyncio.run(TopicAdmin({"bootstrap_servers": bootstrap}, replication=1).apply(topics))
    assert len(created) == 2
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    pid = int(line.split("pid ")[1].split(")")[0])
    assert (
        not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    )


def test_demo_runs_end_to_end_and_reports(tmp_path: Path) -> None:
    """`dispatchflow demo` runs the city through Kafka, reports, and ends with every order done."""
    report = tmp_path / "report"
    kpis_path = tmp_path / "kpis.json"
    result = run_cli(
        "demo",
        "--preset",
        "small_town",
        "--report-dir",
        str(report),
        "--report-json",
        str(kpis_path),
        timeout_s=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "dead letters by reason" in result.stdout and "undecodable" in result.stdout
    assert "worker stopped" in result.stdout and "broker stopped" in result.stdout
    kpis = orjson.loads(kpis_path.read_bytes())
    assert kpis["invariant_violations"] == 0
    assert kpis["open_at_end"] == 0
    assert kpis["delivered"] + kpis["cancelled"] + kpis["expired"] == kpis["orders"]
    assert {p.name for p in report.iterdir()} >= {
        "kpis.json",
        "ctod.png",
        "eta_calibration.png",
        "map.png",
    }
