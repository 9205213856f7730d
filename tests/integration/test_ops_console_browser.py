"""The ops console in headless Chromium, over a worker that ran a short city through Kafka.

One run for the module: an Apache Kafka node, a worker, the console scraping it, and the
`small_town` city simulated through them; then one order that stays open (no tick follows it).
The page is Debian's Chromium driven by Playwright (`make test` installs Chromium when it is
missing; nothing here downloads a browser).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from console.terms import ROUNDING_TOLERANCE_MIN
from contracts.geo import shard_of
from contracts.positions import decode_position_batch
from simulators.city import SimulationLog, compute_kpis, run_simulation, small_town
from simulators.synthetic import Record
from streams.kafka_broker import KafkaCluster
from streams.ops_process import OpsConsoleProcess, ops_console
from streams.produce import produce_records
from streams.reading import read_topics
from streams.sim_dispatch import KafkaDispatch
from tests.integration.conftest import Cluster
from tests.integration.polling import wait_for

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
#: Where the run's screenshot goes, under the checkout (ignored by git).
SCREENSHOT_FOLDER = "test-output"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Text of the bad record the dead-letter test injects.
MARKER = b"ops-console-browser-test: this is not JSON"
#: The order left open on the map.
OPEN_ORDER = "ops-open-1"
PAGE_TIMEOUT_MS = 30_000


@dataclass
class LiveRun:
    """What the tests read: the console, the worker's client options, the run's log."""

    console: OpsConsoleProcess
    client: dict[str, Any]
    log: SimulationLog
    shard: str
    end_ts_ms: int


def _open_order(lat: float, lon: float, ts_ms: int) -> Record:
    shard = shard_of(lat, lon, 4)
    event = {
        "event_id": f"{OPEN_ORDER}-created",
        "type": "order_created",
        "v": 1,
        "ts_ms": ts_ms,
        "order_id": OPEN_ORDER,
        "merchant_id": "ops-m1",
        "shard": shard,
        "pickup": {"lat": lat, "lon": lon},
        "dropoff": {"lat": lat + 0.01, "lon": lon + 0.01},
        "promise_ts_ms": ts_ms + 40 * 60_000,
    }
    return Record("order_events", shard.encode(), orjson.dumps(event), ts_ms)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRun]:
    """Broker, worker and console; `small_town` simulated through them, one order left open."""
    workdir = tmp_path_factory.mktemp("ops-browser")
    config = small_town(seed=7)
    with KafkaCluster(1) as broker:
        cluster = Cluster(broker.bootstrap, workdir)
        cluster.apply_topics()
        worker = cluster.start_worker(tick_interval_s=float(config.tick_interval_s))
        try:
            with ops_console(True, broker.bootstrap, [worker.url], workdir / "ops.log") as ops:
                assert ops is not None
                dispatch = KafkaDispatch(cluster.client, [worker.url])
                try:
                    log = run_simulation(config, dispatch, progress=False)
                finally:
                    dispatch.close()
                end_ts_ms = max(r.ts_ms for r in log.outputs)
                extra = _open_order(config.center_lat, config.center_lon, end_ts_ms)
                cluster.produce([extra])
                cluster.wait_caught_up(timeout_s=60)
                shard = extra.key.decode() if extra.key else ""
                yield LiveRun(ops, cluster.client, log, shard, end_ts_ms)
        finally:
            worker.stop(timeout_s=20)


@pytest.fixture(scope="module")
def page(live: LiveRun) -> Iterator[Page]:
    """The console's page in headless Chromium, once the console has read everything."""
    wait_for(
        lambda: live.console.get_json("/api/status")["reader"],
        lambda r: r["caught_up"] and r["records"] > 0,
        timeout_s=60,
    )
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs it"
    with sync_playwright() as playwright:
        browser: Browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1100})
            tab.set_default_timeout(PAGE_TIMEOUT_MS)
            tab.goto(live.console.url)
            yield tab
        finally:
            browser.close()


def _off_the_page_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` on a thread of its own (Playwright's loop owns this thread's)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _online_with_position(client: dict[str, Any]) -> set[str]:
    """Couriers whose newest state update says online and that some fix has placed."""
    newest: dict[str, tuple[tuple[int, int], str]] = {}
    placed: set[str] = set()
    topics = ["courier_state_updates", "courier_positions"]
    records = _off_the_page_loop(read_topics(client, topics))
    for r in records:
        if r.topic == "courier_positions":
            batch = decode_position_batch(r.value or b"")
            if not batch.left:
                placed.update(str(c) for c in batch.fixes.courier_id.tolist())
            continue
        update = orjson.loads(r.value or b"{}")
        key = (int(update["status_ts_ms"]), int(update["ts_ms"]))
        courier_id = str(update["courier_id"])
        if courier_id not in newest or key >= newest[courier_id][0]:
            newest[courier_id] = (key, str(update["status"]))
    return {c for c, (_, status) in newest.items() if status == "online"} & placed


def _drawn_couriers(page: Page) -> set[str]:
    ids = page.eval_on_selector_all(
        "#map circle.courier", "nodes => nodes.map(n => n.dataset.courierId)"
    )
    return set(ids)


def test_the_map_draws_every_courier_the_topics_have_online(live: LiveRun, page: Page) -> None:
    """The couriers drawn are exactly those online with a position per the topics."""
    expected = _online_with_position(live.client)
    assert len(expected) >= 10
    drawn = wait_for(lambda: _drawn_couriers(page), lambda ids: ids == expected, timeout_s=30)
    assert drawn == expected


def test_clicking_an_order_on_the_map_opens_its_panel(live: LiveRun, page: Page) -> None:
    """The open order's marker opens the order panel on it: open, no decision yet."""
    page.click(f'#map circle.order[data-order-id="{OPEN_ORDER}"]')
    page.wait_for_selector(f'#order-title [data-order-id="{OPEN_ORDER}"]')
    assert page.inner_text("#order-title .badge") == "open"
    assert "no decision yet" in page.inner_text("#order-detail")


def _order_with_most_terms(live: LiveRun) -> str:
    """A delivered order whose proposal has the most non-zero cost terms."""
    best, most = "", -1
    for row in live.console.get_json("/api/orders?state=delivered")["orders"]:
        detail = live.console.get_json(f"/api/orders/{row['order_id']}")
        for d in detail["decisions"]:
            nonzero = sum(1 for t in d.get("terms", ()) if t["cost_min"])
            if d["kind"] == "proposed" and nonzero > most:
                best, most = row["order_id"], nonzero
    assert most >= 2, "no proposal with two non-zero terms"
    return best


def test_an_orders_panel_shows_terms_that_add_up_to_its_cost(live: LiveRun, page: Page) -> None:
    """Clicked in the list, an order shows each proposal's terms in minutes summing to its cost."""
    order_id = _order_with_most_terms(live)
    page.click(f'tr.order-row[data-order-id="{order_id}"]')
    page.wait_for_selector(f'#order-title [data-order-id="{order_id}"]')
    page.wait_for_selector('#order-detail .decision[data-kind="proposed"] tr.term')
    cards = page.query_selector_all('#order-detail .decision[data-kind="proposed"]')
    for card in cards:
        cost = float(card.get_attribute("data-cost-min") or "nan")
        terms = [
            float(t.get_attribute("data-cost-min") or "nan")
            for t in card.query_selector_all("tr.term")
        ]
        assert abs(sum(terms) - cost) <= ROUNDING_TOLERANCE_MIN
    text = page.inner_text("#order-detail")
    assert "cost (min)" in text and "runner-up" in text and " min" in text
    assert "committed" in text and "policy default" in text


def test_an_injected_bad_record_shows_under_dead_letters(live: LiveRun, page: Page) -> None:
    """A record that is not JSON, sent while the page is open, appears with its reason."""
    bad = Record("order_events", live.shard.encode(), MARKER, live.end_ts_ms)
    _off_the_page_loop(produce_records(live.client, [bad]))
    page.wait_for_function(
        "marker => document.querySelector('#dead-letters').innerText.includes(marker)",
        arg=MARKER.decode(),
    )
    letter = page.inner_text('#dead-letters li:has-text("ops-console-browser-test")')
    assert "undecodable" in letter and "not JSON" in letter


def test_the_page_is_saved_as_a_screenshot(
    page: Page, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full-page screenshot lands in the run's output folder, `test-output/` of the checkout."""
    folder = request.config.rootpath / SCREENSHOT_FOLDER
    folder.mkdir(exist_ok=True)
    path = folder / "ops-console.png"
    page.screenshot(path=str(path), full_page=True)
    with capsys.disabled():
        print(f"\nops console screenshot: {path}")
    assert path.stat().st_size > 20_000


def test_every_proposal_from_the_worker_adds_up_to_its_cost(live: LiveRun) -> None:
    """Through the API, every proposal the worker made has terms summing to its cost."""
    checked = 0
    for row in live.console.get_json("/api/orders")["orders"]:
        for d in live.console.get_json(f"/api/orders/{row['order_id']}")["decisions"]:
            if d["kind"] == "proposed":
                assert abs(d["terms_sum_min"] - d["cost_min"]) <= ROUNDING_TOLERANCE_MIN
                assert d["weights_known"]
                checked += 1
    assert checked >= 10


def test_the_kpis_match_the_simulation_and_carry_worker_figures(live: LiveRun) -> None:
    """The shard's outcome KPIs equal the simulator's; tick p99, lag and breaker ticks are read."""
    theirs = compute_kpis(live.log)
    shards = wait_for(
        lambda: live.console.get_json("/api/kpis")["shards"],
        lambda rows: all(r["tick_p99_s"] is not None for r in rows),
    )
    (mine,) = shards
    assert (mine["delivered"], mine["cancelled"]) == (theirs["delivered"], theirs["cancelled"])
    assert mine["on_time_rate"] == pytest.approx(theirs["on_time_rate"], abs=1e-4)
    assert (mine["ctod_p50_min"], mine["ctod_p90_min"]) == (
        theirs["ctod_p50_min"],
        theirs["ctod_p90_min"],
    )
    assert mine["lag_s"] is not None and mine["circuit_breaker_ticks"] is not None
