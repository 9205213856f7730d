"""The plain loop of `bench ingest` decodes the bench's input as the worker does."""

from __future__ import annotations

from dispatch.live.worker import WorkerConfig
from streams.bench_ingest import generate_pings
from streams.bench_plain import decode_fixes


def test_the_plain_loop_decodes_every_fix_of_the_gateway_batches() -> None:
    """Records of 500 fixes (64 KiB, past the default event limit) decode whole, none refused."""
    records = generate_pings(2_000, 500, 100, seed=3)
    fixes = [decode_fixes(r.value, r.ts_ms, WorkerConfig()) for r in records]
    assert sum(len(f) for f in fixes) == 2_000
