"""A running worker's web port serves our views only: none of Faust's built-in debug views."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


@pytest.mark.parametrize("path", ["/eta", "/rank"])
def test_our_post_views_still_answer(worker: WorkerProcess, path: str) -> None:
    """POST /eta and /rank are mounted: a malformed body is a 400, not a 404."""
    assert worker.request(path, body=b"{}")[0] == 400


def test_metrics_carry_the_process_series(worker: WorkerProcess) -> None:
    """A running worker's /metrics has process_cpu_seconds_total."""
    status, body = worker.request("/metrics")
    assert status == 200
    assert b"\nprocess_cpu_seconds_total " in body
