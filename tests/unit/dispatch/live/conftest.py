"""Fixtures of the live-dispatch tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.dispatch.live.shard_world import World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A fresh one-shard world with the default engine configuration."""
    with World(root=tmp_path) as w:
        yield w
