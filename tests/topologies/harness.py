"""A broker-free gateway: fake aiokafka clients, everything above them real.

`FakeBroker` holds the topics' logs and the groups' committed offsets. `FakeConsumer` stands in
for `AIOKafkaConsumer` (the surface `FollowingConsumer`, the `RawReader` and the `ConsentFeed`
use), `FakeProducer` for `AIOKafkaProducer` (the surface `BatchWriter` and `OutputProducer`
use): its batches reach the broker's logs when acknowledged, and a test can hold the
acknowledgements or fail them. `Gateway` builds the wiring with `topologies.app`'s own
constructors (faust app and table, output producer, consent feed and barrier, reader, rebalance
hooks) and drives faust's rebalance steps by calling the hooks, as faust's signals would.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from faust.types import TP
from prometheus_client import CollectorRegistry

from gateway.config import load_config
from gateway.engine import Engine
from gateway.keys import load_keyring
from topologies.app import (
    FastPathRebalance,
    OutputProducer,
    Tuning,
    make_consent_feed,
    make_faust_app,
    make_reader,
)
from topologies.faust_adapter import ConsentTableView
from topologies.worker import build_metrics

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 2
TIMESTAMP_MS = 1795694400000  # 2026-11-26T12:00:00Z


@dataclass(frozen=True)
class Record:
    """What aiokafka's `ConsumerRecord` carries, as far as the gateway reads it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = TIMESTAMP_MS
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass
class FakeBroker:
    logs: dict[TopicPartition, list[Record]] = field(default_factory=dict)
    committed: dict[tuple[str, TopicPartition], int] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)  # topics no consumer is served from, for now

    def produce(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
                headers: Iterable[tuple[str, bytes]] = (), timestamp: int = TIMESTAMP_MS,
                ) -> int:  # fmt: skip
        log = self.logs.setdefault(TopicPartition(topic, partition), [])
        log.append(Record(topic, partition, len(log), key, value, timestamp, tuple(headers)))
        return len(log) - 1

    def records(self, topic: str) -> list[Record]:
        return [r for tp, log in sorted(self.logs.items()) if tp.topic == topic for r in log]

    def end(self, tp: TopicPartition) -> int:
        return len(self.logs.get(tp, []))

    def consumer(self, **settings: Any) -> FakeConsumer:
        return FakeConsumer(self, settings.get("group_id"))


class FakeConsumer:
    """The `AIOKafkaConsumer` surface in use: manual assignment, getmany, commit, offsets."""

    def __init__(self, broker: FakeBroker, group: str | None) -> None:
        self._broker = broker
        self._group = group
        self._positions: dict[TopicPartition, int] = {}
        self.commits: list[dict[TopicPartition, int]] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def assign(self, tps: Iterable[TopicPartition]) -> None:
        self._positions = {tp: self._positions.get(tp, 0) for tp in tps}

    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    async def committed(self, tp: TopicPartition) -> int | None:
        return self._broker.committed.get((str(self._group), tp))

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        self._positions[tp] = 0

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._positions[tp] = offset

    async def getmany(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Record]]:
        budget = max_records or 10_000
        fetched: dict[TopicPartition, list[Record]] = {}
        for tp, position in sorted(self._positions.items()):
            if tp.topic in self._broker.held or budget <= 0:
                continue
            records = self._broker.logs.get(tp, [])[position : position + budget]
            if records:
                fetched[tp] = records
                self._positions[tp] = records[-1].offset + 1
                budget -= len(records)
        if not fetched:
            await asyncio.sleep(0.002)  # a long poll that found nothing, shortened
        return fetched

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert self._group is not None, "a commit needs a group"
        self.commits.append(dict(offsets))
        for tp, offset in offsets.items():
            self._broker.committed[(self._group, tp)] = offset

    def highwater(self, tp: TopicPartition) -> int | None:
        return self._broker.end(tp)

    async def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._broker.end(tp) for tp in tps}


class FakeBatch:
    """An aiokafka `BatchBuilder`: records appended until closed."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = []

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: int | None,
               headers: Any) -> object:  # fmt: skip
        self.records.append((key, value, list(headers)))
        return object()  # aiokafka returns metadata; None would mean "batch full"

    def close(self) -> None:
        pass


class FakeProducer:
    """The `AIOKafkaProducer` surface in use; a batch reaches the log when acknowledged.

    `hold()` keeps the acknowledgements back until `release()`; `fail_next(exc)` fails the
    next acknowledgement, writing nothing.
    """

    def __init__(self, broker: FakeBroker) -> None:
        self._broker = broker
        self._holding = False
        self._pending: list[tuple[asyncio.Future[Any], str, int, FakeBatch]] = []
        self._failure: BaseException | None = None
        self.sent_batches = 0

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    def create_batch(self) -> FakeBatch:
        return FakeBatch()

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent_batches += 1
        self._pending.append((future, topic, partition, batch))
        if not self._holding:
            self.release()
        return future

    def hold(self) -> None:
        self._holding = True

    def fail_next(self, exc: BaseException) -> None:
        self._failure = exc

    @property
    def pending(self) -> int:
        return len(self._pending)

    def release(self) -> None:
        self._holding = False
        pending, self._pending = self._pending, []
        for future, topic, partition, batch in pending:
            if self._failure is not None:
                future.set_exception(self._failure)
                self._failure = None
                continue
            for key, value, headers in batch.records:
                self._broker.produce(topic, partition, key, value, headers)
            future.set_result(None)


class Gateway:
    """The fast path on a `FakeBroker`: the real reader, consent feed, barrier and enforcer."""

    def __init__(self, broker: FakeBroker, *, app_id: str = "harness") -> None:
        self.broker = broker
        self.config = load_config(REPO / "config")
        sinks = [rule.name for rule in self.config.sinks]
        keyring = load_keyring({}, sinks, demo=True, random_bytes=os.urandom)
        engine = Engine(self.config, keyring)
        self.registry = CollectorRegistry()
        metrics = build_metrics(self.config, self.registry)
        topics = self.config.settings.topics
        self.raw_topics = frozenset({topics.usage_raw, topics.device_raw})
        self.sink_topics = {rule.topic for rule in self.config.sinks}
        tuning = Tuning(commit_interval=0.0, barrier_timeout=0.2)
        self.app, table = make_faust_app(
            app_id, "fake:9092", tuning=tuning, partitions=PARTITIONS, replication=1
        )
        self.table = ConsentTableView(table)
        outputs = [topics.dlq, topics.audit, *self.sink_topics]
        output_partitions = dict.fromkeys(outputs, PARTITIONS)
        self.producer = FakeProducer(broker)
        self.output = OutputProducer(
            "fake:9092", tuning, output_partitions, producer_factory=lambda **_: self.producer
        )
        self.feed, self.barrier = make_consent_feed(
            "fake:9092", app_id, config=self.config, engine=engine, metrics=metrics,
            table=self.table, output=self.output, partitions=PARTITIONS,
            output_partitions=output_partitions, commit_interval=0.0,
            consumer_factory=broker.consumer,
        )  # fmt: skip
        self.failures: list[BaseException] = []
        self.reader = make_reader(
            "fake:9092", app_id, config=self.config, engine=engine, metrics=metrics,
            barrier=self.barrier, consent=self.table, output=self.output, tuning=tuning,
            on_failure=self.failures.append, consumer_factory=broker.consumer,
        )  # fmt: skip
        self.paused: list[TP] = []
        self.hooks = FastPathRebalance(
            feed=self.feed, reader=self.reader, raw_topics=self.raw_topics, consent=self.table,
            metrics=metrics, pause_fetching=self.paused.extend,
        )  # fmt: skip
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, partitions: Iterable[int] = range(PARTITIONS)) -> None:
        """Start as the service does, then take `partitions` as faust's first rebalance would."""
        await self.output.start()
        await self.feed.start()
        await self.reader.start()
        self._tasks = [
            asyncio.ensure_future(self.feed.run()),
            asyncio.ensure_future(self.reader.run()),
        ]
        await self.rebalance(partitions)

    async def rebalance(self, partitions: Iterable[int]) -> None:
        """Faust's steps: revoked, assigned (the whole new assignment), complete."""
        await self.hooks.revoked()
        await self.hooks.assigned(self.assignment(partitions))
        await self.hooks.complete()

    def assignment(self, partitions: Iterable[int]) -> set[TP]:
        names = [*sorted(self.raw_topics), self.table.changelog_topic]  # faust's subscriptions
        return {TP(name, p) for name in names for p in partitions}

    async def stop(self) -> None:
        await self.reader.stop()
        await self.feed.stop()
        await self.output.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        gc.unfreeze()  # the rebalance hook froze everything alive

    def committed(self, group: str, topic: str, partition: int) -> int | None:
        return self.broker.committed.get((f"harness-{group}", TopicPartition(topic, partition)))


async def eventually(condition: Any, *, timeout: float = 3.0, what: str = "condition") -> None:
    """Poll `condition()` on the loop until it is true; fail with `what` after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


__all__ = ["FakeBroker", "FakeConsumer", "FakeProducer", "Gateway", "KafkaError", "eventually"]
