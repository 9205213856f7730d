"""The baseline of `dispatchflow bench ingest`: a plain aiokafka + rocksdict + changelog loop.

It does the job of the ping path the textbook way: consume `courier_pings`, validate and decode
each record (the same decoder as the worker), compute each fix's shard, write the courier's state
to RocksDB, and produce one changelog record per updated courier so the state is recoverable.
Offsets are committed after every record batch. Run as `python -m streams.bench_plain`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rocksdict import Options, Rdict, WriteBatch

from contracts.geo import encode_many
from contracts.pings import decode_pings
from contracts.rejections import EventRejected
from contracts.validation import TimeBounds

_ROW = struct.Struct("<ddqfff")


async def run(
    bootstrap: str, topic: str, changelog: str, group: str, expected: int, datadir: Path
) -> dict[str, Any]:
    """Consume until `expected` fixes are applied; return timings."""
    db = Rdict(str(datadir), Options(raw_mode=True))
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    await consumer.start()
    await producer.start()
    bounds = TimeBounds(max_age_ms=86_400_000, max_lead_ms=300_000)
    applied = 0
    started_s = cpu0 = 0.0
    try:
        while applied < expected:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    if not started_s:
                        started_s, cpu0 = time.perf_counter(), time.process_time()
                    try:
                        decoded = decode_pings(record.value, record.timestamp, bounds, 10_000)
                    except EventRejected:
                        continue
                    fixes = decoded.columns
                    shards = encode_many(fixes.lat, fixes.lon, 4)
                    batch = WriteBatch(raw_mode=True)
                    for i in range(len(fixes)):
                        key = str(fixes.courier_id[i]).encode()
                        value = (
                            _ROW.pack(
                                fixes.lat[i],
                                fixes.lon[i],
                                fixes.ts_ms[i],
                                fixes.speed_mps[i],
                                fixes.heading_deg[i],
                                fixes.accuracy_m[i],
                            )
                            + str(shards[i]).encode()
                        )
                        batch.put(key, value)
                        await producer.send(changelog, key=key, value=value)
                    db.write(batch)
                    applied += len(fixes)
            if batches:
                await producer.flush()
                await consumer.commit()
        elapsed_s = time.perf_counter() - started_s
        cpu_s = time.process_time() - cpu0
    finally:
        await producer.stop()
        await consumer.stop()
        db.close()
    return {"pings": applied, "seconds": elapsed_s, "cpu_seconds": cpu_s}


def main() -> int:
    """Command-line entry: prints one JSON object with the timings."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default="courier_pings")
    parser.add_argument("--changelog", default="bench_plain_changelog")
    parser.add_argument("--group", default="bench-plain")
    parser.add_argument("--expected", type=int, required=True, help="fixes to apply")
    parser.add_argument("--datadir", type=Path, required=True)
    args = parser.parse_args()
    result = asyncio.run(
        run(args.bootstrap, args.topic, args.changelog, args.group, args.expected, args.datadir)
    )
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
