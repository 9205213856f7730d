"""A one-agent Faust worker for the tests of `streams.consumer`, run as `python -m ... worker`.

It reads one topic with manual acknowledgements (as the worker's agents do), keeps a table (so
that it goes through table recovery after each assignment, as the worker does) and appends the
offset of every record it handles to a file. Settings come from the environment:
`SEEK_APP_BROKER`, `SEEK_APP_TOPIC`, `SEEK_APP_GROUP`, `SEEK_APP_PORT`, `SEEK_APP_DATADIR`,
`SEEK_APP_HANDLED` (the file), `SEEK_APP_SEEK_SAFE` (1: the worker's consumer, 0: Faust's own),
`SEEK_APP_BUFFER` (Faust's `stream_buffer_maxsize`), `SEEK_APP_HANDLE_S` (how long handling one
record awaits, as a handler awaiting I/O does: with a small buffer the fetch loop then always
waits to hand over its next record) and `SEEK_APP_SLOW_COMMITTED_S`, a fault injected into the
client: each read of a committed offset of the topic answers that many seconds late, which widens
the window between the resume of the stream partitions and their seek to committed offsets.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiokafka
import faust

from streams.consumer import install_seek_safe_consumer


def slow_committed_reads(topic: str, delay_s: float) -> None:
    """Make every committed-offset read of `topic` (any aiokafka consumer) answer `delay_s` late."""
    original = aiokafka.AIOKafkaConsumer.committed

    async def committed(self: aiokafka.AIOKafkaConsumer, partition: Any) -> Any:
        offset = await original(self, partition)
        if partition.topic == topic:
            await asyncio.sleep(delay_s)
        return offset

    aiokafka.AIOKafkaConsumer.committed = committed


def build_app() -> faust.App:
    """The worker described in the module docstring."""
    env = os.environ
    topic_name = env["SEEK_APP_TOPIC"]
    delay_s = float(env.get("SEEK_APP_SLOW_COMMITTED_S", "0"))
    if delay_s:
        slow_committed_reads(topic_name, delay_s)
    app = faust.App(
        env["SEEK_APP_GROUP"],
        broker=f"kafka://{env['SEEK_APP_BROKER']}",
        store="memory://",
        broker_commit_interval=0.2,
        stream_buffer_maxsize=int(env.get("SEEK_APP_BUFFER", "4096")),
        web_host="127.0.0.1",
        web_port=int(env["SEEK_APP_PORT"]),
        datadir=env["SEEK_APP_DATADIR"],
        topic_partitions=1,
    )
    if env.get("SEEK_APP_SEEK_SAFE", "1") == "1":
        install_seek_safe_consumer(app)
    counts = app.Table(f"{topic_name}-counts", default=int, partitions=1)
    topic = app.topic(
        topic_name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    handled_file = env["SEEK_APP_HANDLED"]
    handle_s = float(env.get("SEEK_APP_HANDLE_S", "0.002"))

    @app.agent(topic)
    async def handle(stream: Any) -> None:
        manual = stream.noack()
        with open(handled_file, "a", encoding="utf-8") as handled:
            async for event in manual.events():
                await asyncio.sleep(handle_s)
                counts[str(event.message.offset % 10)] += 1
                handled.write(f"{event.message.offset}\n")
                handled.flush()
                await manual.ack(event)

    return app


if __name__ == "__main__":
    build_app().main()
