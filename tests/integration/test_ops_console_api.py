"""`dispatchflow ops` against Apache Kafka: its JSON API over records we write ourselves."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import urllib.error
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from console.server import STATIC_DIR
from console.terms import ROUNDING_TOLERANCE_MIN
from contracts.dead_letters import DeadLetter
from streams.kafka_broker import KafkaCluster
from streams.ops_process import OpsConsoleProcess
from tests.integration.conftest import Cluster
from tests.integration.polling import wait_for
from tests.unit.console.events import (
    SHARD,
    T0,
    TOPIC_OF,
    S,
    committed,
    created,
    milestone,
    proposed,
    released,
    state_update,
)

Produced = tuple[str, bytes, bytes, list[tuple[str, bytes]]]


async def _send(client: dict[str, Any], records: Sequence[Produced]) -> list[tuple[int, int]]:
    """Produce (topic, key, value, headers) records; return each one's (partition, offset)."""
    producer = AIOKafkaProducer(**client, acks="all")
    await producer.start()
    try:
        sent = [await producer.send(t, value=v, key=k, headers=h or None) for t, k, v, h in records]
        return [(m.partition, m.offset) for m in await asyncio.gather(*sent)]
    finally:
        await producer.stop()


def _events(client: dict[str, Any], *events: dict[str, Any]) -> list[tuple[int, int]]:
    records: list[Produced] = [
        (TOPIC_OF[e["type"]], SHARD.encode(), orjson.dumps(e), []) for e in events
    ]
    return asyncio.run(_send(client, records))


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsConsoleProcess]:
    """A console over a fresh broker holding a few orders, decisions and one dead letter."""
    workdir = tmp_path_factory.mktemp("ops-api")
    with KafkaCluster(1) as broker:
        cluster = Cluster(broker.bootstrap, workdir)
        cluster.apply_topics()
        client = cluster.client
        ops = OpsConsoleProcess(broker.bootstrap, [], workdir / "ops.log").start()
        try:
            _events(
                client,
                created("o1", T0),
                created("o2", T0),
                state_update("c1", T0),
                proposed("d1", ["o1"], "c1", T0 + S),
                committed("d1", ["o1"], "c1", T0 + 2 * S),
                proposed(
                    "d2",
                    ["o2"],
                    "c2",
                    T0 + S,
                    terms={"delay": 3.1416, "late": 0.3333, "courier_time": 1.6667},
                    runner_up=("c1", 7.25),
                ),
                released("d2", ["o2"], "c2", T0 + 31 * S, "declined"),
            )
            ((partition, offset),) = _events(
                client, milestone("delivery_delivered", "o2", T0 + 40 * S, courier_id="c2")
            )
            letter = DeadLetter(
                "delivery_events", partition, offset, b"k", b"{}", "unknown_id", "no such order"
            )
            asyncio.run(_send(client, [(letter.topic, b"k", b"{}", letter.record().headers)]))
            yield ops
        finally:
            ops.stop()


def test_the_api_lists_every_order_read_with_its_state(console: OpsConsoleProcess) -> None:
    """`/api/orders` has o1 committed to c1 and o2 open again after its decline."""
    orders = wait_for(
        lambda: console.get_json("/api/orders")["orders"],
        lambda rows: len(rows) == 2 and {r["state"] for r in rows} == {"assigned", "open"},
    )
    states = {r["order_id"]: (r["state"], r["courier_id"]) for r in orders}
    assert states == {"o1": ("assigned", "c1"), "o2": ("open", None)}


def test_an_orders_history_has_terms_that_add_up_to_each_cost(console: OpsConsoleProcess) -> None:
    """`/api/orders/o2`: proposed with terms summing to the cost, then released (declined)."""
    detail = wait_for(
        lambda: console.get_json("/api/orders/o2"),
        lambda d: [x["kind"] for x in d["decisions"]] == ["proposed", "released"],
    )
    proposal, release = detail["decisions"]
    assert abs(sum(t["cost_min"] for t in proposal["terms"]) - proposal["cost_min"]) <= (
        ROUNDING_TOLERANCE_MIN
    )
    assert (proposal["runner_up_courier_id"], proposal["runner_up_cost_min"]) == ("c1", 7.25)
    assert (release["reason"], release["courier_id"]) == ("declined", "c2")


def test_an_unknown_order_answers_404(console: OpsConsoleProcess) -> None:
    """`/api/orders/<id>` of an order never read is a 404 with a JSON error."""
    with pytest.raises(urllib.error.HTTPError) as caught:
        console.get_json("/api/orders/nope")
    assert caught.value.code == 404


def test_a_dead_letter_is_listed_and_its_record_ignored(console: OpsConsoleProcess) -> None:
    """The dead letter shows with reason and message; the delivery it rejects does not count."""
    letters = wait_for(lambda: console.get_json("/api/dead_letters"), lambda d: d["total"] == 1)
    assert letters["by_reason"] == [
        {"source_topic": "delivery_events", "reason": "unknown_id", "count": 1}
    ]
    assert letters["latest"][0]["message"] == "no such order"
    assert console.get_json("/api/orders/o2")["order"]["state"] == "open"


def test_worker_figures_are_na_without_workers(console: OpsConsoleProcess) -> None:
    """Without `--worker`, a shard's tick p99, lag and breaker ticks are null."""
    shards = wait_for(lambda: console.get_json("/api/kpis")["shards"], lambda s: len(s) == 1)
    assert (shards[0]["tick_p99_s"], shards[0]["lag_s"], shards[0]["circuit_breaker_ticks"]) == (
        None,
        None,
        None,
    )


def test_the_page_and_its_assets_come_from_the_package_alone(console: OpsConsoleProcess) -> None:
    """`/` and every static asset are served; none loads anything from another host."""
    import urllib.request

    with urllib.request.urlopen(console.url + "/", timeout=10) as page:  # noqa: S310
        assert b"dispatchflow ops" in page.read()
    for asset in sorted(STATIC_DIR.iterdir()):
        with urllib.request.urlopen(f"{console.url}/static/{asset.name}", timeout=10) as r:  # noqa: S310
            body = r.read().decode()
        external = body.replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in external and "https://" not in external and "//cdn" not in external


def _ops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dispatchflow", "ops", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
        check=False,
    )


def test_an_unreachable_broker_is_a_one_line_error() -> None:
    """Pointed at nothing, `ops` exits 1 with one line on stderr and no traceback."""
    result = _ops("--broker", "127.0.0.1:1", "--port", "0", "--broker-timeout-s", "5")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: cannot reach the broker at 127.0.0.1:1")


def test_a_taken_port_is_a_one_line_error(tmp_path: Path) -> None:
    """With its port taken, `ops` exits 1 with one line on stderr and no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _ops("--broker", "127.0.0.1:1", "--port", str(port))
    assert result.returncode == 1
    assert (
        result.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: address already in use"
    )
