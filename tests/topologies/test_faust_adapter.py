"""Every faust internal the gateway relies on, checked against the installed faust, no broker.

One test per reach in `topologies.faust_adapter` (its docstring numbers them); the RocksDB
store's DBs live in each test's `tmp_path`. When a faust
upgrade changes one, the failure is here and names it. Written against faust-streaming 0.15.x
(0.15.3) and mode-streaming 0.7.x (0.7.1): `faust_adapter.TESTED_FAUST`.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import faust
import pytest
import rocksdict
from faust.stores.memory import Store as MemoryStore
from faust.stores.rocksdb import RocksDBOptions
from faust.stores.rocksdb import Store as RocksDBStore
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers.aiokafka import Consumer as FaustAiokafkaConsumer
from faust.types import TP, Message
from packaging.specifiers import SpecifierSet

from topologies.app import Tuning, make_faust_app
from topologies.faust_adapter import (
    OFFSET_KEY,
    TESTED_FAUST,
    ConsentRocksDBOptions,
    ConsentStoreConfig,
    ConsentTableView,
    RawTopicsPausedConsumer,
    RocksDBConsentTableView,
    connect_rebalance_hooks,
    consent_table_view,
    install_never_fetching_consumer,
    pause_fetching,
)

RAW, OTHER = "events.usage.raw", "gateway.internal"


@pytest.fixture
async def app() -> AsyncIterator[faust.App]:
    app = faust.App("adapter-test", broker="kafka://127.0.0.1:9", store="memory://")
    yield app
    consumer = app._consumer
    if consumer is not None:  # its thread's loop was made, never started: close it
        consumer._thread.thread_loop.close()


def consent_table(app: faust.App) -> Any:
    return app.Table("consent", partitions=4, key_type=bytes, value_type=bytes)


def test_when_faust_is_installed_then_its_version_is_the_one_the_adapter_was_tested_with() -> None:
    assert faust.__version__ in SpecifierSet(TESTED_FAUST), (
        f"faust {faust.__version__} is outside {TESTED_FAUST}: rerun this file and update "
        "topologies/faust_adapter.py and TESTED_FAUST"
    )


# 1. The consumer that never fetches the raw topics.


def test_when_faust_is_upgraded_then_set_active_tps_still_exists_with_one_set_argument() -> None:
    method = FaustAiokafkaConsumer._set_active_tps
    assert list(inspect.signature(method).parameters) == ["self", "tps"]
    assert RawTopicsPausedConsumer.__mro__[1] is FaustAiokafkaConsumer
    assert issubclass(FaustAiokafkaConsumer, FaustConsumer)


async def test_when_the_adapter_installs_its_consumer_then_the_transport_makes_that_class(
    app: faust.App,
) -> None:
    install_never_fetching_consumer(app, {RAW})
    consumer = app.consumer  # made by `transport.create_consumer` from `transport.Consumer`
    assert isinstance(consumer, RawTopicsPausedConsumer)
    assert consumer.never_fetch == frozenset({RAW})


async def test_when_partitions_are_assigned_then_faust_fetches_all_but_the_raw_topics(
    app: faust.App,
) -> None:
    install_never_fetching_consumer(app, {RAW})
    consumer = app.consumer
    asked: list[set[TP]] = []

    async def getmany(*, active_partitions: set[TP], timeout: float) -> dict[TP, list[Any]]:
        asked.append(set(active_partitions))
        return {}

    consumer._getmany = getmany  # the fetcher's request, captured instead of sent
    consumer.resume_flow()
    # What faust's `on_partitions_assigned` does with the assignment, then its fetcher's step.
    consumer._set_active_tps({TP(RAW, 0), TP(OTHER, 0)})
    await consumer._wait_next_records(0.01)
    # Recovery resumes every assigned partition that is not a changelog.
    consumer.resume_partitions({TP(RAW, 1), TP(OTHER, 1)})
    await consumer._wait_next_records(0.01)
    pause_fetching(app, {TP(OTHER, 0)})
    await consumer._wait_next_records(0.01)

    assert asked == [{TP(OTHER, 0)}, {TP(OTHER, 0), TP(OTHER, 1)}, {TP(OTHER, 1)}]


def test_when_faust_assigns_partitions_then_it_sets_the_active_set_through_set_active_tps() -> None:
    source = inspect.getsource(FaustConsumer.on_partitions_assigned)
    assert "self._set_active_tps(assigned)" in source
    fetch = inspect.getsource(FaustConsumer._wait_next_records)
    assert "self._get_active_partitions()" in fetch


# 2-4. The memory store: its dict, its partition per key, the changelog it recovers from.


def test_when_the_feed_writes_the_view_then_faust_reads_the_same_dict(app: faust.App) -> None:
    table = consent_table(app)
    view = ConsentTableView(table)
    assert isinstance(table.data, MemoryStore)
    view.data[b"subj-a"] = b"42"
    assert table.data[b"subj-a"] == b"42" and len(table.data) == 1
    assert view.changelog_topic == "adapter-test-consent-changelog"
    assert view.changelog_topic == table.changelog_topic.get_topic_name()


async def test_when_recovery_completes_then_keys_of_partitions_moved_away_are_dropped(
    app: faust.App,
) -> None:
    table = consent_table(app)
    view = ConsentTableView(table)
    view.data[b"subj-kept"] = b"1"
    view.remember_partition(b"subj-kept", 1)
    view.data[b"subj-moved"] = b"2"
    view.remember_partition(b"subj-moved", 3)

    changelog = view.changelog_topic
    await table.data.on_recovery_completed({TP(changelog, 1)}, set())

    assert dict(view.data) == {b"subj-kept": b"1"}


async def test_when_faust_replays_the_hand_written_changelog_then_the_store_holds_those_bytes(
    app: faust.App,
) -> None:
    table = consent_table(app)
    view = ConsentTableView(table)
    topic = table.changelog_topic

    def record(offset: int, key: bytes, value: bytes | None) -> Message:
        return Message(topic.get_topic_name(), 2, offset, 0.0, 0, [], key, value, None)

    # Recovery decodes each changelog record with the table's codecs, then applies the batch.
    events = [
        await topic.decode(record(0, b"subj-a", b"12345")),
        await topic.decode(record(1, b"subj-b", b"678")),
        await topic.decode(record(2, b"subj-b", None)),  # a tombstone the feed wrote
    ]
    table.apply_changelog_batch(events)

    assert dict(view.data) == {b"subj-a": b"12345"}
    assert table.data._key_partition == {b"subj-a": 2}


def test_when_the_store_is_not_the_memory_store_then_the_view_refuses_at_start() -> None:
    class NotMemory:
        data: dict[bytes, bytes] = {}  # noqa: RUF012 - a stand-in

    class Table:
        data = NotMemory()

    with pytest.raises(TypeError, match="memory store"):
        ConsentTableView(Table())


# 5. The rebalance signals.


class Hooks:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    async def revoked(self) -> None:
        self.calls.append(("revoked", None))

    async def assigned(self, assigned: set[TP]) -> None:
        self.calls.append(("assigned", assigned))

    async def complete(self) -> None:
        self.calls.append(("complete", None))


async def test_when_faust_sends_its_rebalance_signals_then_the_hooks_get_the_assignment(
    app: faust.App,
) -> None:
    hooks = Hooks()
    connect_rebalance_hooks(app, hooks)
    assigned = {TP(RAW, 0), TP(OTHER, 0)}
    await app.on_partitions_revoked.send({TP(RAW, 1)})
    await app.on_partitions_assigned.send(assigned)  # as `App._on_partitions_assigned` sends it
    await app.on_rebalance_complete.send()

    assert hooks.calls == [("revoked", None), ("assigned", assigned), ("complete", None)]


def test_when_faust_is_upgraded_then_it_still_sends_the_signals_as_the_hooks_expect() -> None:
    from faust.app.base import App

    assigned = inspect.getsource(App._on_partitions_assigned)
    assert "self.on_partitions_assigned.send)(assigned)" in assigned
    assert assigned.index("tables.on_rebalance") < assigned.index("on_partitions_assigned.send")
    assert "self.on_partitions_revoked.send)(revoked)" in inspect.getsource(
        App._on_partitions_revoked
    )
    # The table is restored before the signal, and faust resumes its partitions after it.
    for step in (Recovery.on_recovery_completed, Recovery._resume_streams):
        source = inspect.getsource(step)
        assert source.index("on_rebalance_complete.send()") < source.index("resume_partitions(")


# 7. The RocksDB store (GATEWAY_CONSENT_STORE=rocksdb): faust's, with the rocksdict driver.

CACHE = 8 * 1024 * 1024


@pytest.fixture
async def rocks_app(tmp_path: Path) -> AsyncIterator[faust.App]:
    app = faust.App(
        "adapter-rocks", broker="kafka://127.0.0.1:9", store="rocksdb://", datadir=tmp_path
    )
    yield app
    consumer = app._consumer
    if consumer is not None:
        consumer._thread.thread_loop.close()


def rocks_table(app: faust.App) -> Any:
    options = {"driver": "rocksdict"}
    return app.Table("consent", partitions=4, key_type=bytes, value_type=bytes, options=options)


def test_when_rocksdb_is_chosen_then_faust_builds_its_rocksdict_store_with_the_gateways_options(
    rocks_app: faust.App,
) -> None:
    table = rocks_table(rocks_app)
    view = RocksDBConsentTableView(table, cache_bytes=CACHE)
    assert isinstance(table.data, RocksDBStore) and table.data.use_rocksdict
    assert isinstance(table.data.rocksdb_options, ConsentRocksDBOptions)
    assert view.persistent and view.changelog_topic == "adapter-rocks-consent-changelog"
    assert view.partition_path(2) == table.data.partition_path(2)
    assert list(inspect.signature(table.data.set_persisted_offset).parameters) == ["tp", "offset"]


def test_when_a_partitions_db_is_reopened_then_it_keeps_the_shared_block_cache(
    rocks_app: faust.App,
) -> None:
    table = rocks_table(rocks_app)
    cache = 24 * 1024 * 1024  # not rocksdict's default (8 MiB)
    view = RocksDBConsentTableView(table, cache_bytes=cache)
    db: Any = view.in_partition(1)
    db[b"subj-a"] = b"42"
    db.close()  # a restart: the DB exists, with an OPTIONS file, when it is opened again
    del table.data._dbs[1]
    reopened: Any = view.in_partition(1)
    assert reopened.property_int_value("rocksdb.block-cache-capacity") == cache
    assert reopened.get(b"subj-a") == b"42"
    assert list(inspect.signature(RocksDBOptions.open).parameters) == ["self", "path", "read_only"]


def test_when_the_feed_writes_a_partition_then_faust_reads_it_from_that_partitions_db(
    rocks_app: faust.App,
) -> None:
    table = rocks_table(rocks_app)
    view = RocksDBConsentTableView(table, cache_bytes=CACHE)
    view.in_partition(2)[b"subj-a"] = b"42"
    assert table.data._db_for_partition(2).get(b"subj-a") == b"42"
    assert table.data._dbs[2] is view.in_partition(2), "the DB faust opened, not another"
    assert table.data[b"subj-a"] == b"42", "faust's own read (outside a stream) finds it"


def test_when_the_enforcer_looks_up_a_subject_then_only_its_records_partition_is_read(
    rocks_app: faust.App,
) -> None:
    view = RocksDBConsentTableView(rocks_table(rocks_app), cache_bytes=CACHE)
    view.in_partition(2)[b"subj-a"] = b"42"
    view.in_partition(1)[b"subj-b"] = b"7"
    lookup = view.lookup()
    assert lookup.in_partition("subj-a", 2) == 42
    assert lookup.in_partition("subj-a", 1) is None, "no scan over the other partitions"
    assert lookup.in_partition("subj-a", 3) is None, "an unopened partition is opened, empty"
    assert lookup.any_partition("subj-b") == 7
    assert lookup.many_in_partition(["subj-a", "subj-x", "subj-a"], 2) == [42, None, 42]
    assert view.size() == 2


def test_when_a_subject_is_erased_then_rocksdb_reads_nothing_and_compaction_drops_its_bytes(
    rocks_app: faust.App,
) -> None:
    """A tombstone deletes the key at once for every read; its bytes leave the files at the
    next compaction that reaches them (forced here) and the MANIFEST when the DB is reopened
    (docs/consent-store.md, "Erasure on disk")."""
    table = rocks_table(rocks_app)
    view = RocksDBConsentTableView(table, cache_bytes=CACHE)
    db: Any = view.in_partition(2)
    erased = b"subj-erased-4f1c9a"
    db[erased] = b"42"
    db[b"subj-kept"] = b"7"
    db.flush()  # the key is in an SST file now, not only in the memtable and the WAL
    assert any(erased in path.read_bytes() for path in files(view.partition_path(2)))

    del db[erased]  # what the consent feed does with a tombstone
    assert db.get(erased) is None
    assert view.lookup().in_partition(erased.decode(), 2) is None
    assert table.data[b"subj-kept"] == b"7" and erased not in table.data
    db.flush()
    forced = rocksdict.CompactOptions()
    forced.set_bottommost_level_compaction(rocksdict.BottommostLevelCompaction.force())
    db.compact_range(None, None, forced)
    db.close()
    db = table.data.rocksdb_options.open(view.partition_path(2))  # a restart reopens it

    assert [p.name for p in files(view.partition_path(2)) if erased in p.read_bytes()] == []
    assert db.get(b"subj-kept") == b"7"
    db.close()


def files(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


async def test_when_faust_replays_the_changelog_into_rocksdb_then_it_holds_the_bytes_and_offset(
    rocks_app: faust.App,
) -> None:
    table = rocks_table(rocks_app)
    view = RocksDBConsentTableView(table, cache_bytes=CACHE)
    topic = table.changelog_topic

    def record(offset: int, key: bytes, value: bytes | None) -> Message:
        return Message(topic.get_topic_name(), 2, offset, 0.0, 0, [], key, value, None)

    events = [
        await topic.decode(record(0, b"subj-a", b"12345")),
        await topic.decode(record(1, b"subj-b", b"678")),
        await topic.decode(record(2, b"subj-b", None)),  # a tombstone the feed wrote
    ]
    table.apply_changelog_batch(events)

    lookup = view.lookup()
    assert (lookup.in_partition("subj-a", 2), lookup.in_partition("subj-b", 2)) == (12345, None)
    assert table.persisted_offset(TP(view.changelog_topic, 2)) == 2


def test_when_the_feed_persists_changelog_offsets_then_recovery_starts_after_them(
    rocks_app: faust.App,
) -> None:
    table = rocks_table(rocks_app)
    view = RocksDBConsentTableView(table, cache_bytes=CACHE)
    view.persist_changelog_offsets({1: 41, 3: 7})
    changelog = view.changelog_topic
    assert table.persisted_offset(TP(changelog, 1)) == 41
    assert table.persisted_offset(TP(changelog, 3)) == 7
    assert table.persisted_offset(TP(changelog, 0)) is None
    assert view.in_partition(1).get(OFFSET_KEY) == b"41"
    # Recovery's start offset of each active changelog partition is the persisted one.
    assert "table.persisted_offset(tp)" in inspect.getsource(Recovery._add)


async def test_when_partitions_are_revoked_and_assigned_again_then_the_lookup_follows_faust(
    rocks_app: faust.App,
) -> None:
    table = rocks_table(rocks_app)
    view = RocksDBConsentTableView(table, cache_bytes=CACHE)
    lookup = view.lookup()
    tp = TP(view.changelog_topic, 1)
    await table.data.assign_partitions(table, {tp})
    view.in_partition(1)[b"subj-a"] = b"42"
    assert lookup.in_partition("subj-a", 1) == 42

    table.data.revoke_partitions(table, {tp})  # faust drops the DB (it closes when collected)
    assert 1 not in table.data._dbs
    await table.data.assign_partitions(table, {tp})  # reopened: no reference kept its lock

    assert 1 in table.data._dbs
    assert lookup.in_partition("subj-a", 1) == 42, "the state outlived the assignment"


def test_when_the_store_is_not_the_one_chosen_then_each_view_refuses_it(
    app: faust.App, rocks_app: faust.App
) -> None:
    with pytest.raises(TypeError, match="RocksDB store"):
        RocksDBConsentTableView(consent_table(app), cache_bytes=CACHE)
    with pytest.raises(TypeError, match="memory store"):
        ConsentTableView(rocks_table(rocks_app))


def test_when_settings_choose_a_store_then_the_app_and_the_view_are_made_for_it(
    tmp_path: Path,
) -> None:
    rocks = ConsentStoreConfig("rocksdb", tmp_path / "state", CACHE)
    _, table = make_faust_app(
        "adapter-choice", "127.0.0.1:9", tuning=Tuning(consent_store=rocks), partitions=3,
        replication=1,
    )  # fmt: skip
    view = consent_table_view(table, rocks)
    assert isinstance(view, RocksDBConsentTableView)
    assert view.partition_path(0).is_relative_to(tmp_path / "state" / "adapter-choice")
    assert (tmp_path / "state").stat().st_mode & 0o077 == 0, "made owner-only: it holds ids"

    _, table = make_faust_app("adapter-mem", "127.0.0.1:9", tuning=Tuning(), partitions=3,
                              replication=1)  # fmt: skip
    memory = consent_table_view(table, Tuning().consent_store)
    assert isinstance(memory, ConsentTableView) and not memory.persistent
    memory.in_partition(1)[b"subj-a"] = b"42"
    assert memory.lookup().in_partition("subj-a", 5) == 42, "one dict holds every partition"
    assert memory.size() == 1
