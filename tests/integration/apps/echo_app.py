"""A minimal faust app used by the harness test: doubles numbers from one topic into another."""

from __future__ import annotations

import os

import faust

app = faust.App(
    os.environ["ECHO_APP_ID"],
    broker=f"kafka://{os.environ['KAFKA_BOOTSTRAP']}",
    store="memory://",
    topic_replication_factor=1,
    topic_partitions=2,
    web_enabled=False,
)
source = app.topic(os.environ["ECHO_SOURCE"], value_serializer="json", partitions=2)
sink = app.topic(os.environ["ECHO_SINK"], value_serializer="json", partitions=2)


@app.agent(source)
async def double(stream: faust.StreamT[dict[str, int]]) -> None:
    async for value in stream:
        await sink.send(value={"n": value["n"] * 2})


if __name__ == "__main__":
    app.main()
