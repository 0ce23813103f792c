"""BatchWriter: records grouped per output topic-partition, batches handed over in order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.producer.message_accumulator import BatchBuilder

from topologies.writer import BatchWriter


class FakeProducer:
    """Makes real aiokafka batches (small ones, so they fill) and records what is sent."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.sent: list[tuple[str, int, int]] = []  # topic, partition, records in the batch

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0)

    async def send_batch(self, builder: BatchBuilder, topic: str, *, partition: int) -> Any:
        self.sent.append((topic, partition, builder.record_count()))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def reference_order(
    added: list[tuple[str, int]], partitions: dict[str, int], per_batch: int
) -> list[tuple[str, int, int]]:
    """The batches in the order the writer hands them over: every full batch as it filled,
    then the open ones in the order their topic-partition was first opened (plain version)."""
    full: list[tuple[str, int, int]] = []
    open_: dict[tuple[str, int], int] = {}
    for topic, source in added:
        slot = (topic, source % partitions[topic])
        if open_.get(slot) == per_batch:
            full.append((*slot, per_batch))
            open_[slot] = 0
        open_[slot] = open_.get(slot, 0) + 1
    return full + [(*slot, n) for slot, n in open_.items()]


@pytest.mark.parametrize("rounds", [1, 2])
async def test_when_batches_fill_then_they_are_sent_full_first_then_open_in_first_use_order(
    rounds: int,
) -> None:
    partitions = {"sink.a": 3, "sink.b": 2, "gateway.audit": 6}
    producer = FakeProducer(batch_size=1024)
    writer = BatchWriter(producer, partitions)  # type: ignore[arg-type]
    value = b"v" * 200  # four fit a 1 KiB batch
    added = [
        (topic, source)
        for i in range(40)
        for topic, source in (("sink.b", i % 5), ("gateway.audit", (i * 7) % 11), ("sink.a", i % 4))
    ]
    for _ in range(rounds):  # a second batch starts from empty slots
        producer.sent.clear()
        for topic, source in added:
            writer.add(topic, source, None, value, [("h", b"1")])
        acked = await writer.send()
        await acked
        per_batch = producer.sent[0][2]
        assert per_batch == 4
        assert producer.sent == reference_order(added, partitions, per_batch)


def test_when_a_topic_is_not_declared_then_add_raises_key_error() -> None:
    writer = BatchWriter(FakeProducer(1024), {"sink.a": 1})  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        writer.add("sink.x", 0, None, b"v", [])
