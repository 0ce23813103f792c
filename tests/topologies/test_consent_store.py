"""The consent feed on the RocksDB store, no broker: what a warm restart relies on.

The real feed, faust's RocksDB store (rocksdict) in `tmp_path` through the adapter, the fake
consumer of `harness.py`. A persistent store may hold a state whose changelog write a crash
lost: the record read again after the restart must write it again, or a later restore
elsewhere (a rebalance to a worker without local state) would bring the older state back. And
the changelog offsets acknowledged are persisted, so recovery reads only the tail.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from faust.types import TP
from prometheus_client import CollectorRegistry

from gateway.acls import worker_groups
from gateway.config import load_config
from gateway.consent import ConsentUpdate, apply_consent, parse_consent
from gateway.consent_state import PURPOSES
from gateway.engine import Engine
from gateway.keys import load_keyring
from tests.topologies.harness import FakeBroker, FakeConsumer, eventually
from topologies.app import Tuning, make_faust_app
from topologies.barrier import ConsentBarrier
from topologies.consent_feed import ConsentFeed
from topologies.faust_adapter import ConsentStoreConfig, RocksDBConsentTableView, consent_table_view
from topologies.worker import build_metrics

REPO = Path(__file__).resolve().parents[2]
CONSENT, APP = "consent.state", "store-test"
GROUP = worker_groups(APP).consent_feed


def record(subject: str, at: str, granted: bool) -> bytes:
    return orjson.dumps({
        "subject_id": subject, "updated_at": at, "purposes": dict.fromkeys(PURPOSES, granted),
    })  # fmt: skip


def state_of(value: bytes, key: bytes) -> bytes:
    """The table value the feed writes for one record applied to an unknown subject."""
    update = parse_consent(value, key)
    assert isinstance(update, ConsentUpdate)
    state, _ = apply_consent(None, update)
    assert state is not None
    return b"%d" % state


@dataclass(frozen=True)
class Sent:
    """What aiokafka's `RecordMetadata` tells of a batch acknowledged: its first offset."""

    topic: str
    partition: int
    offset: int


class LoggingWriter:
    """Writes to the fake broker's logs; the acknowledgement carries each batch's metadata."""

    def __init__(self, broker: FakeBroker) -> None:
        self._broker = broker
        self._open: list[tuple[str, int, bytes | None, bytes | None]] = []

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
            headers: Any) -> None:  # fmt: skip
        self._open.append((topic, partition, key, value))

    async def send(self) -> asyncio.Future[Any]:
        sent = [Sent(t, p, self._broker.produce(t, p, k, v)) for t, p, k, v in self._open]
        self._open = []
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(sent)
        return done


@pytest.fixture
async def rocks(tmp_path: Path) -> AsyncIterator[tuple[Any, RocksDBConsentTableView]]:
    store = ConsentStoreConfig("rocksdb", tmp_path / "state", 8 * 1024 * 1024)
    app, table = make_faust_app(
        APP, "fake:9092", tuning=Tuning(consent_store=store), partitions=2, replication=1
    )
    view = consent_table_view(table, store)
    assert isinstance(view, RocksDBConsentTableView)
    yield table, view
    del app


async def run_feed(
    broker: FakeBroker, view: RocksDBConsentTableView
) -> tuple[ConsentFeed, asyncio.Task[None]]:
    config = load_config(REPO / "config")
    sinks = [rule.name for rule in config.sinks]
    engine = Engine(config, load_keyring({}, sinks, demo=True, random_bytes=os.urandom))
    writer = LoggingWriter(broker)

    async def make_writer() -> Any:
        return writer

    async def ends(partitions: Any) -> dict[int, int]:
        return await feed.end_offsets(partitions)

    feed = ConsentFeed(
        bootstrap="fake:9092", topic=CONSENT, group_id=GROUP, barrier=ConsentBarrier(ends),
        engine=engine, metrics=build_metrics(config, CollectorRegistry()), writer=make_writer,
        changelog_topic=view.changelog_topic, commit_interval=0.0,
        partition_store=view.in_partition, persist_offsets=view.persist_changelog_offsets,
        consumer_factory=broker.consumer,
    )  # fmt: skip
    await feed.start()
    feed.assign({0})
    await feed.resume()  # as faust's rebalance completes
    return feed, asyncio.ensure_future(feed.run())


async def stop(feed: ConsentFeed, task: asyncio.Task[None]) -> None:
    await feed.stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_when_a_crash_lost_a_withdrawals_changelog_write_then_the_restart_writes_it_again(
    rocks: tuple[Any, RocksDBConsentTableView],
) -> None:
    _, view = rocks
    broker = FakeBroker()
    grant = record("subj-a", "2026-11-26T10:00:00Z", True)
    withdrawal = record("subj-a", "2026-11-26T11:00:00Z", False)
    broker.produce(CONSENT, 0, b"subj-a", grant)
    broker.produce(CONSENT, 0, b"subj-a", withdrawal)
    # Before the crash: both applied to RocksDB, only the grant's changelog write acknowledged
    # and its offset committed; the withdrawal's changelog write was lost with the process.
    view.in_partition(0)[b"subj-a"] = state_of(withdrawal, b"subj-a")
    broker.produce(view.changelog_topic, 0, b"subj-a", state_of(grant, b"subj-a"))
    broker.committed[(GROUP, TopicPartition(CONSENT, 0))] = 1

    feed, task = await run_feed(broker, view)
    try:
        await eventually(
            lambda: broker.committed[(GROUP, TopicPartition(CONSENT, 0))] == 2,
            what="the withdrawal read again and committed",
        )
    finally:
        await stop(feed, task)

    log = [r.value for r in broker.records(view.changelog_topic) if r.key == b"subj-a"]
    assert log[-1] == state_of(withdrawal, b"subj-a"), "a later restore keeps the withdrawal"
    assert view.lookup().in_partition("subj-a", 0) == int(state_of(withdrawal, b"subj-a"))


async def test_when_changelog_writes_are_acknowledged_then_their_offsets_are_persisted(
    rocks: tuple[Any, RocksDBConsentTableView],
) -> None:
    table, view = rocks
    broker = FakeBroker()
    feed, task = await run_feed(broker, view)
    try:
        for n, subject in enumerate(["subj-a", "subj-b", "subj-c"]):
            broker.produce(
                CONSENT, 0, subject.encode(), record(subject, f"2026-11-26T1{n}:00:00Z", True)
            )
        broker.produce(CONSENT, 0, b"subj-b", None)  # erased: deleted from RocksDB
        await eventually(
            lambda: broker.committed.get((GROUP, TopicPartition(CONSENT, 0))) == 4,
            what="four records applied and committed",
        )
    finally:
        await stop(feed, task)

    changelog = broker.records(view.changelog_topic)
    assert [(r.key, r.value is None) for r in changelog] == [
        (b"subj-a", False), (b"subj-b", False), (b"subj-c", False), (b"subj-b", True),
    ]  # fmt: skip
    persisted = table.persisted_offset(TP(view.changelog_topic, 0))
    assert persisted is not None and 0 <= persisted <= changelog[-1].offset
    lookup = view.lookup()
    assert lookup.in_partition("subj-b", 0) is None, "the tombstone deleted the key"
    assert lookup.in_partition("subj-a", 0) is not None
    assert lookup.in_partition("subj-c", 0) is not None


class SlowStartConsumer(FakeConsumer):
    """A consumer whose start takes a while (a loaded machine) and that needs it done."""

    started = False

    async def start(self) -> None:
        await asyncio.sleep(0.1 if self._group else 0.0)  # the group's consumer is the slow one
        self.started = True

    async def committed(self, tp: TopicPartition) -> int | None:
        assert self.started, "committed() on a consumer whose start has not finished"
        return await super().committed(tp)


async def test_when_recovery_completes_while_the_feed_is_still_starting_then_resume_waits(
    rocks: tuple[Any, RocksDBConsentTableView],
) -> None:
    _, view = rocks
    broker = FakeBroker()
    config = load_config(REPO / "config")
    sinks = [rule.name for rule in config.sinks]
    engine = Engine(config, load_keyring({}, sinks, demo=True, random_bytes=os.urandom))

    async def make_writer() -> Any:
        return LoggingWriter(broker)

    async def ends(partitions: Any) -> dict[int, int]:
        return {}

    feed = ConsentFeed(
        bootstrap="fake:9092", topic=CONSENT, group_id=GROUP, barrier=ConsentBarrier(ends),
        engine=engine, metrics=build_metrics(config, CollectorRegistry()), writer=make_writer,
        changelog_topic=view.changelog_topic, partition_store=view.in_partition,
        persist_offsets=view.persist_changelog_offsets,
        consumer_factory=lambda **s: SlowStartConsumer(broker, s.get("group_id")),
    )  # fmt: skip
    feed.assign({0})
    # The service starts the feed; faust's (instant, warm) recovery completes meanwhile.
    await asyncio.gather(feed.start(), feed.resume())
    assert feed._follower.assignment() == {TopicPartition(CONSENT, 0)}
    await feed.stop()
