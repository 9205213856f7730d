"""Order expiry read again: a tick handled twice announces what it gave up, and only that tick."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dispatch.live.effects import Output
from dispatch.live.engine import ShardEngine
from dispatch.live.engine_config import EngineConfig
from tests.unit.dispatch.live.shard_world import SHARD, T0, S, World

EXPIRY = EngineConfig(max_order_age_s=60.0)


def expiries(outputs: list[Output]) -> list[Output]:
    """The `order_expired` records among `outputs`, whole (event, key and trace header)."""
    return [o for o in outputs if isinstance(o.value, dict) and o.value["type"] == "order_expired"]


def expiring_tick(w: World) -> dict[str, Any]:
    """An open order `o1` and the tick that gives it up (more than 60 s after placement)."""
    w.create("o1", T0)
    tick: dict[str, Any] = w.event("dispatch_tick", T0 + 80 * S, shard=SHARD)
    return tick


def test_a_tick_read_again_announces_the_expiry_it_made(tmp_path: Path) -> None:
    """The same tick record, handled again, sends the very `order_expired` it sent."""
    with World(root=tmp_path, config=EXPIRY) as w:
        tick = expiring_tick(w)
        first = expiries(w.engine.on_tick(tick).outputs)
        assert len(first) == 1
        assert expiries(w.engine.on_tick(tick).outputs) == first


def test_a_tick_read_again_after_a_restart_announces_the_expiry(tmp_path: Path) -> None:
    """An engine restarted over the same tables (indices rebuilt) re-sends the expiry too."""
    with World(root=tmp_path, config=EXPIRY) as w:
        tick = expiring_tick(w)
        first = expiries(w.engine.on_tick(tick).outputs)
        w.engine = ShardEngine(w.stores, w.positions, config=EXPIRY, telemetry=w.telemetry)
        assert expiries(w.engine.on_tick(tick).outputs) == first


def test_a_later_tick_does_not_announce_an_earlier_expiry(tmp_path: Path) -> None:
    """Only the tick that gave the order up announces it; the next ticks send nothing for it."""
    with World(root=tmp_path, config=EXPIRY) as w:
        w.engine.on_tick(expiring_tick(w))
        later = w.event("dispatch_tick", T0 + 100 * S, shard=SHARD)
        assert expiries(w.engine.on_tick(later).outputs) == []
