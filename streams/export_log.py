"""`dispatchflow export-log`: the event log a model is trained from, read from the topics.

It reads the input topics (orders, merchants, deliveries, answers to offers, couriers and their
pings) and the dispatch ticks from their beginning to their current end, and writes every
record that is a JSON object as one line, in event-time order (at equal times, the ticks after
the inputs, as a worker handles them; then by topic, partition and offset). Records that are not
JSON objects are counted and left out; which events are valid is for the offline replay to say
(`features.offline`: it skips and counts what breaks a schema, as the worker dead-letters it).
`dispatchflow train --dataset events --train FILE` trains on the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from dispatch.live.topic_names import COURIER_EVENTS, COURIER_PINGS, DISPATCH_TICKS, SHARD_INPUTS
from streams.reading import read_topics

#: The topics an exported log holds.
EXPORTED_TOPICS = (*SHARD_INPUTS, COURIER_EVENTS, COURIER_PINGS, DISPATCH_TICKS)


@dataclass
class ExportCounts:
    """What an export wrote, by topic, and what it left out."""

    written: dict[str, int] = field(default_factory=dict)
    not_json: dict[str, int] = field(default_factory=dict)


def _event_ts(event: Mapping[str, Any]) -> int:
    ts = event.get("ts_ms")
    return ts if isinstance(ts, int) and not isinstance(ts, bool) else 0


async def export_log(client_kwargs: Mapping[str, Any], out: Path) -> ExportCounts:
    """Write the exported topics' records to `out` (JSON Lines; see the module docstring)."""
    records = await read_topics(client_kwargs, EXPORTED_TOPICS)
    counts = ExportCounts()
    rows: list[tuple[int, bool, str, int, int, dict[str, Any]]] = []
    for r in records:
        try:
            event = orjson.loads(r.value) if r.value is not None else None
        except orjson.JSONDecodeError:
            event = None
        if not isinstance(event, dict):
            counts.not_json[r.topic] = counts.not_json.get(r.topic, 0) + 1
            continue
        rows.append(
            (_event_ts(event), r.topic == DISPATCH_TICKS, r.topic, r.partition, r.offset, event)
        )
        counts.written[r.topic] = counts.written.get(r.topic, 0) + 1
    rows.sort(key=lambda row: row[:5])
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        for *_, event in rows:
            fh.write(orjson.dumps(event))
            fh.write(b"\n")
    return counts
