from __future__ import annotations

import gc
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from dispatchflow.settings import Settings
from streams.app import create_app
from streams.consumer import SeekSafeConsumer
from streams.runtime import Runtime


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    """A worker built (not started) with its data in a temporary directory."""
    return create_app(Settings(datadir=Path(tmp_path_factory.mktemp("app")) / "data"))


def exposition(rt: Runtime) -> list[str]:
    """The sample lines `/metrics` would serve now."""
    text = generate_latest(rt.metrics.registry).decode()
    return [line for line in text.splitlines() if not line.startswith("#")]


@pytest.mark.parametrize(
    "series",
    ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds"],
)
def test_the_worker_registry_exports_process_series(runtime: Runtime, series: str) -> None:
    """`/metrics` carries the process collector's series (CPU, memory, start time)."""
    assert any(line.startswith(series + " ") for line in exposition(runtime))


def test_the_worker_registry_exports_the_python_platform(runtime: Runtime) -> None:
    """`python_info` names the interpreter the worker runs on."""
    assert any(line.startswith("python_info{") for line in exposition(runtime))


def test_the_worker_registry_times_each_full_garbage_collection(runtime: Runtime) -> None:
    """A full collection in the worker process adds one generation-2 pause to the histogram."""

    def full_pauses() -> float:
        value = runtime.metrics.registry.get_sample_value(
            "dispatchflow_gc_pause_seconds_count", {"generation": "2"}
        )
        return value or 0.0

    before = full_pauses()
    gc.collect(2)
    assert full_pauses() == before + 1


def test_the_worker_consumes_with_the_seek_safe_consumer(runtime: Runtime) -> None:
    """The worker's Kafka consumer holds stream partitions until sought (`streams.consumer`)."""
    assert isinstance(runtime.app.consumer, SeekSafeConsumer)
