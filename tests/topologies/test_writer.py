"""BatchWriter: records grouped per output topic-partition, batches handed over in order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch

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


class WrappedBatch(BatchBuilder):
    """aiokafka's batch under another class: the writer must use its public `append`."""


class KeepingProducer(FakeProducer):
    """Keeps every batch handed over, to compare their bytes."""

    def __init__(self, batch_size: int, batch_class: type[BatchBuilder] = BatchBuilder) -> None:
        super().__init__(batch_size)
        self.batch_class = batch_class
        self.batches: list[tuple[str, int, bytes]] = []

    def create_batch(self) -> BatchBuilder:
        return self.batch_class(self.batch_size, 0)

    async def send_batch(self, builder: BatchBuilder, topic: str, *, partition: int) -> Any:
        self.batches.append((topic, partition, bytes(builder._build())))
        return await super().send_batch(builder, topic, partition=partition)


async def test_when_records_go_to_aiokafkas_builder_directly_then_the_bytes_are_its_own() -> None:
    """The direct append (topologies.writer._appends_directly) builds what `append` builds:
    keys and none, headers and none, empty values, batches that fill and open again."""
    partitions = {"sink.a": 2, "gateway.audit": 3}
    records = [
        (
            ("sink.a", "gateway.audit")[i % 2],
            i % 5,
            None if i % 3 == 0 else b"k-%d" % i,
            b"" if i % 7 == 0 else b"v" * (i * 37 % 400),
            [] if i % 4 == 0 else [("gateway-config-version", b"c1"), ("gateway-sink", b"x%d" % i)],
        )
        for i in range(120)
    ]
    built = []
    for batch_class in (BatchBuilder, WrappedBatch):
        producer = KeepingProducer(2048, batch_class)
        writer = BatchWriter(producer, partitions, clock=lambda: 1_764_000_000.5)  # type: ignore[arg-type]
        for topic, source, key, value, headers in records:
            writer.add(topic, source, key, value, headers)
        await (await writer.send())
        assert writer._direct is (batch_class is BatchBuilder)
        built.append(producer.batches)
    direct, wrapped = built
    assert len(direct) > sum(partitions.values())  # some batches filled and were opened again
    assert direct == wrapped


async def test_when_a_record_is_added_then_its_timestamp_is_when_its_batch_was_opened() -> None:
    now = [1_764_000_000.25]
    producer = KeepingProducer(1 << 20)
    writer = BatchWriter(producer, {"sink.a": 1}, clock=lambda: now[0])  # type: ignore[arg-type]
    writer.add("sink.a", 0, None, b"first", [])
    now[0] += 5.0  # later records of the same batch keep its opening time
    writer.add("sink.a", 0, None, b"second", [])
    await (await writer.send())
    writer.add("sink.a", 0, None, b"third", [])  # a new batch: the clock is read again
    await (await writer.send())
    stamps = []
    for _, _, data in producer.batches:
        batch = DefaultRecordBatch(bytearray(data))
        stamps.append([(record.timestamp, record.value) for record in batch])
    assert stamps == [
        [(1_764_000_000_250, b"first"), (1_764_000_000_250, b"second")],
        [(1_764_000_005_250, b"third")],
    ]
