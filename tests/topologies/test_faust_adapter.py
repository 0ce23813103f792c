"""Every faust internal the gateway relies on, checked against the installed faust, no broker.

One test per reach in `topologies.faust_adapter` (its docstring numbers them). When a faust
upgrade changes one, the failure is here and names it. Written against faust-streaming 0.15.x
(0.15.3) and mode-streaming 0.7.x (0.7.1): `faust_adapter.TESTED_FAUST`.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

import faust
import pytest
from faust.stores.memory import Store as MemoryStore
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers.aiokafka import Consumer as FaustAiokafkaConsumer
from faust.types import TP, Message
from packaging.specifiers import SpecifierSet

from topologies.faust_adapter import (
    TESTED_FAUST,
    ConsentTableView,
    RawTopicsPausedConsumer,
    connect_rebalance_hooks,
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
