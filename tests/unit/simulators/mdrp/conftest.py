"""Shared fixtures for the simulator tests: the small MDRP instance from tests/data/shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.mdrp.instance import MdrpInstance, load_instance

REPO = Path(__file__).resolve().parents[4]
INSTANCES = REPO / "tests" / "data" / "shared" / "benchmarks" / "mdrp" / "instances"
SMALL = "0o50t75s1p100"


@pytest.fixture(scope="session")
def small_dir() -> Path:
    """Directory of the small instance used by the tests."""
    return INSTANCES / SMALL


@pytest.fixture(scope="session")
def small(small_dir: Path) -> MdrpInstance:
    """The small instance, loaded once."""
    return load_instance(small_dir)
