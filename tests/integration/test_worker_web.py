"""A running worker's web port serves our views only: none of Faust's built-in debug views."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streams.worker_process import WorkerProcess
from tests.integration.conftest import embedded_cluster

#: Faust's built-in views (router, tables, graph, statistics, performance, index), with keys.
FAUST_VIEWS = (
    "/",
    "/router/",
    "/router/topics",
    "/router/orders/",
    "/router/orders/some-key/",
    "/table/",
    "/table/orders/",
    "/table/orders/some-key/",
    "/graph/",
    "/assignment/",
    "/performance/",
)
#: Our own GET views, which must keep answering 200.
OWN_VIEWS = ("/healthz", "/readyz", "/metrics", "/state", "/progress")


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """One ready worker on a fresh embedded broker, shared by this module's read-only tests."""
    with embedded_cluster(Path(tmp_path_factory.mktemp("web"))) as cluster:
        yield cluster.start_worker()


@pytest.mark.parametrize("path", FAUST_VIEWS)
def test_faust_debug_views_are_not_served(worker: WorkerProcess, path: str) -> None:
    """GET on a Faust built-in view answers 404."""
    assert worker.request(path)[0] == 404


@pytest.mark.parametrize("path", OWN_VIEWS)
def test_our_views_still_answer(worker: WorkerProcess, path: str) -> None:
    """Health, readiness, metrics, state and progress answer 200."""
    assert worker.request(path)[0] == 200


def test_post_eta_is_mounted(worker: WorkerProcess) -> None:
    """POST /eta is mounted: a malformed body is a 400, not a 404."""
    assert worker.request("/eta", body=b"{}")[0] == 400


def test_the_rank_server_serves_post_rank(worker: WorkerProcess) -> None:
    """POST /rank on the rank port is mounted: a malformed body is a 400, not a 404."""
    assert worker.request("/rank", body=b"{}", base_url=worker.rank_url)[0] == 400


def test_post_rank_on_the_web_port_is_redirected_to_the_rank_port(worker: WorkerProcess) -> None:
    """The worker's web server answers POST /rank with 308 naming the rank server's port."""
    status, body = worker.request("/rank", body=b"{}")
    assert (status, orjson.loads(body)["port"]) == (308, worker.settings.rank_port)


def test_metrics_carry_the_process_series(worker: WorkerProcess) -> None:
    """A running worker's /metrics has process_cpu_seconds_total."""
    status, body = worker.request("/metrics")
    assert status == 200
    assert b"\nprocess_cpu_seconds_total " in body
