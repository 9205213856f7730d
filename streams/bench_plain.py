"""The baseline of `dispatchflow bench ingest`: a plain aiokafka + rocksdict + changelog loop.

It does the job of the ping path the textbook way: consume `courier_pings`, validate and decode
each record (the same decoder, limits and time bounds as the worker), compute each fix's shard,
write the courier's state to RocksDB, and produce one changelog record per updated courier so the
state is recoverable. Offsets are committed after every record batch. Run as
`python -m streams.bench_plain`. The input is all valid: a record the decoder refuses ends the
run with its reason (exit 1) rather than leaving it waiting for fixes that never come.
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
from contracts.pings import PingColumns, decode_pings
from contracts.rejections import EventRejected
from dispatch.live.worker import WorkerConfig

_ROW = struct.Struct("<ddqfff")


def decode_fixes(
    value: bytes | None, record_ts_ms: int | None, config: WorkerConfig
) -> PingColumns:
    """The fixes of one ping record, decoded as the worker decodes them (`EventRejected` if not)."""
    return decode_pings(
        value, record_ts_ms, config.time_bounds, config.max_ping_batch, config.ping_limits
    ).columns


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
    config = WorkerConfig()
    applied = 0
    started_s = cpu0 = 0.0
    try:
        while applied < expected:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    if not started_s:
                        started_s, cpu0 = time.perf_counter(), time.process_time()
                    fixes = decode_fixes(record.value, record.timestamp, config)
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
    try:
        result = asyncio.run(
            run(args.bootstrap, args.topic, args.changelog, args.group, args.expected, args.datadir)
        )
    except EventRejected as exc:
        print(f"bench_plain: a bench record was refused ({exc.reason}): {exc}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
