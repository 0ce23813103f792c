"""Output writing for one enforcement batch: grouped per topic-partition, sent as Kafka batches.

aiokafka's per-record `send` costs a coroutine, a future, and (for keyed records) a pure-Python
murmur2 per record. Here records are appended straight into aiokafka `BatchBuilder`s, one per
topic-partition, and each builder is handed over with `send_batch` once; `flush` returns when
the broker has acknowledged every one of them (acks=all), and only then may the caller let the
input offsets be committed.

Partitioning: an output record goes to `source partition mod the output topic's partitions`.
The raw topics are keyed by subject, so one subject's records keep their order and always meet
in one output partition; no hash is computed per record. (A sink's key is its pseudonym of the
subject, so key -> partition is still a function, as consumers expect.)

Order across writers: the writers of one producer (the enforcer's, the consent feed's) share an
`order` lock held while `send` hands its batches over, so batches reach the producer in the
order their records were decided. An erasure tombstone or a child's notices, added after the
table changed, then never overtake a record decided before that change: on a compacted sink
topic the tombstone is the subject's last record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder

Headers = Sequence[tuple[str, bytes]]


class OutputWriter(Protocol):
    """Where the enforcer and the consent feed put output records: `add` each, `send` a batch.

    `BatchWriter` is the Kafka one; the benchmarks and broker-free tests pass their own.
    """

    def add(
        self, topic: str, source_partition: int, key: bytes | None, value: bytes | None,
        headers: Headers,
    ) -> None:  # fmt: skip
        """Add one record for `topic`, placed by its input record's partition.

        `headers` are (name, bytes) pairs. Raises `ValueError` for a record that no batch holds.
        """
        ...

    async def send(self) -> asyncio.Future[Any]:
        """Hand over everything added since the last send; the future resolves on the acks."""
        ...


class BatchWriter:
    """Owns one writer's open Kafka batches, one per output topic-partition, until `send`.

    `partitions` gives each output topic's partition count (a record for a topic it does not
    name raises `KeyError`); a batch holds up to the producer's `max_batch_size` bytes. `add`
    raises `ValueError` for a record larger than an empty batch; `send` raises what the
    producer's `send_batch` raises, and the future it returns fails if a batch is refused.
    `order` is the lock the writers of one producer share (module docstring); None: a lock of
    its own. `clock` gives wall time in seconds: a record's Kafka timestamp (CreateTime, ms) is
    the time the latest batch of this writer was opened, read once per batch opened, so at
    most the time the enforcer takes to decide one batch of input before the record was added.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        partitions: Mapping[str, int],
        *,
        order: asyncio.Lock | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._producer = producer
        self._clock = clock
        # A record's timestamp (CreateTime, epoch ms): read when a batch is opened, not per
        # record (aiokafka would call the clock for each one)
        self._stamp = int(clock() * 1000)
        self._direct: bool | None = None  # known at the first batch (`_appends_directly`)
        self._order = order if order is not None else asyncio.Lock()
        self._partitions = dict(partitions)
        # Per topic, its partitions' open batches (None: none open); the slots opened since the
        # last send, in the order they were opened; the batches that filled up, in order.
        self._open: dict[str, list[Any]] = {t: [None] * n for t, n in self._partitions.items()}
        self._opened: list[tuple[str, int]] = []
        self._full: list[tuple[str, int, Any]] = []

    def rebind(self, producer: AIOKafkaProducer) -> None:
        """Write with `producer` from now on (a replaced one); batches not yet sent are dropped.

        Called between batches, after an outage, when the old producer cannot be used again.
        """
        self._producer = producer
        self._direct = None
        self._open = {t: [None] * n for t, n in self._partitions.items()}
        self._opened, self._full = [], []

    def add(
        self, topic: str, source_partition: int, key: bytes | None, value: bytes | None,
        headers: Headers,
    ) -> None:  # fmt: skip
        """Append one record to its topic-partition's batch, opening a new one when it is full.

        The partition is `source_partition` modulo the topic's count (module docstring).
        """
        builders = self._open[topic]  # per partition: no (topic, partition) key per record
        partition = source_partition % len(builders)
        builder = builders[partition]
        if builder is None:
            builder = builders[partition] = self._open_batch()
            self._opened.append((topic, partition))
        if self._direct:  # aiokafka's record builder itself (`_appends_directly`)
            offset = builder._relative_offset
            if builder._builder.append(offset, self._stamp, key, value, headers) is not None:
                builder._relative_offset = offset + 1
                return
            builder.close()  # full, as its own `append` would have closed it
        elif (
            builder.append(key=key, value=value, timestamp=self._stamp, headers=headers) is not None
        ):
            return
        self._full.append((topic, partition, builder))
        builder = builders[partition] = self._open_batch()
        if builder.append(key=key, value=value, timestamp=self._stamp, headers=headers) is None:
            raise ValueError(f"a record for {topic} is larger than the producer's batch size")

    def _open_batch(self) -> Any:
        """A new batch from the producer; the records appended from now on are stamped now."""
        builder = self._producer.create_batch()
        self._stamp = int(self._clock() * 1000)
        if self._direct is None:
            self._direct = _appends_directly(builder)
        return builder

    async def send(self) -> asyncio.Future[Any]:
        """Hand every batch to the producer; the returned future resolves once all are acked.

        Nothing is awaited for the acknowledgements here, so the caller can fetch and decide
        the next batch meanwhile (and must not commit this batch's offsets before the future).
        """
        open_ = self._open
        ready = self._full + [(t, p, open_[t][p]) for t, p in self._opened]
        for topic, partition in self._opened:
            open_[topic][partition] = None
        self._full, self._opened = [], []
        futures = []
        # Taken with no await before it, so writers queue in the order they were called.
        async with self._order:
            for topic, partition, builder in ready:
                builder.close()
                futures.append(await self._producer.send_batch(builder, topic, partition=partition))
        return asyncio.gather(*futures)


def _appends_directly(builder: Any) -> bool:
    """Whether `add` may call the record builder inside aiokafka's `BatchBuilder` itself.

    `BatchBuilder.append` is a Python wrapper (serializers, a closed check, the record's
    offset in the batch) around aiokafka's C `DefaultRecordBatchBuilder.append`; skipping it
    saves ~2,100 instructions per record (3 records per event: 2.6% of the worker's, measured
    with cachegrind on `benchmarks.bench_enforce`'s workload). Only for the class this was
    written against (aiokafka 0.14, pinned in pyproject.toml) with no serializer, so the bytes
    are the same (tests/topologies/test_writer.py builds both and compares); any other builder
    gets the public `append`.
    """
    return (
        type(builder) is BatchBuilder
        and type(getattr(builder, "_relative_offset", None)) is int
        and getattr(builder, "_key_serializer", True) is None
        and getattr(builder, "_value_serializer", True) is None
        and callable(getattr(getattr(builder, "_builder", None), "append", None))
    )
