"""The faust app: group membership, the consent table, and the wiring of the fast path.

- `consent` is a changelog-backed faust Table (UTF-8 subject id -> packed consent int), restored
  by faust on start and rebalance. The `ConsentFeed` fills it from the compacted consent topic.
- The raw topics are subscribed through a faust agent, so faust's assignor hands out raw
  partitions co-partitioned with the table's, but faust never fetches them: the `RawReader`
  does, in `getmany` batches, passes the revocation barrier once per batch, lets the `Enforcer`
  decide and write every output, and commits only after the broker acknowledged them.
- Rebalances: faust's signals pause the feed and the reader (after the batch in hand), hand them
  the new partitions, and resume them once faust has restored the table (`FastPathRebalance`).

`build_app` only composes the named constructors below (the faust app and its table, the output
producer, the consent feed and its barrier, the reader, the reload wiring, the service running
them, the rebalance hooks); each can be built alone, and the broker-free harness in
`tests/topologies/harness.py` builds them with fake aiokafka clients. Every faust internal the
wiring relies on lives in `topologies.faust_adapter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
import mode
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faust.types import TP

from gateway.acls import worker_groups
from gateway.config import GatewayConfig
from gateway.engine import Engine
from gateway.events import EventKind
from gateway.keys import Keyring
from gateway.metrics import GatewayMetrics
from gateway.records import Output
from topologies.barrier import ConsentBarrier
from topologies.consent_feed import ConsentFeed
from topologies.enforce import Enforcer
from topologies.faust_adapter import (
    ConsentStoreConfig,
    ConsentTable,
    connect_rebalance_hooks,
    consent_store_arguments,
    consent_table_arguments,
    consent_table_view,
    install_never_fetching_consumer,
    pause_fetching,
)
from topologies.follower import ConsumerFactory
from topologies.outage import Outage
from topologies.raw_reader import RawReader
from topologies.reload import ConfigReloader, LoadKeys
from topologies.security import PLAINTEXT, ClientSecurity
from topologies.settings import WorkerSettings
from topologies.writer import BatchWriter

log = logging.getLogger("gateway.app")


def _default(name: str) -> Any:
    return WorkerSettings.model_fields[name].default


_DEFAULT_STORE = ConsentStoreConfig(
    _default("consent_store"), _default("consent_store_dir"), _default("consent_store_cache_bytes")
)


@dataclass(frozen=True)
class Tuning:
    """How the fast path batches, commits and pipelines; defaults are `WorkerSettings`'.

    Attributes:
        batch_max: raw records per fetched batch, at most (`GATEWAY_BATCH_MAX`).
        barrier_timeout: seconds a batch waits at the consent barrier before the wait is
            logged; the batch then keeps waiting (fail closed), it is never decided early.
        linger_ms: milliseconds the output producer waits to fill a batch
            (`GATEWAY_LINGER_MS`).
        max_batch_bytes: bytes per output partition batch (`GATEWAY_MAX_BATCH_BYTES`); a
            produce request carries up to four times as many.
        commit_interval: seconds between offset commits of acknowledged batches, for the raw
            reader and the consent feed (`GATEWAY_COMMIT_INTERVAL`).
        max_inflight: batches whose outputs may await acknowledgement at once
            (`GATEWAY_MAX_INFLIGHT`).
        consent_store: which store holds the consent table and where
            (`GATEWAY_CONSENT_STORE`, `GATEWAY_CONSENT_STORE_DIR`,
            `GATEWAY_CONSENT_STORE_CACHE_BYTES`).

    Nothing is checked here: `WorkerSettings` bounds the values `from_settings` takes, and a
    `Tuning` built by hand (tests, benchmarks) is used as given.
    """

    batch_max: int = _default("batch_max")  # raw records per batch, at most
    barrier_timeout: float = 30.0  # seconds a batch waits for the consent barrier
    linger_ms: int = _default("linger_ms")  # milliseconds the output producer waits to fill
    max_batch_bytes: int = _default("max_batch_bytes")  # bytes per output partition batch
    commit_interval: float = _default("commit_interval")  # seconds between offset commits
    max_inflight: int = _default("max_inflight")  # batches awaiting acknowledgement at once
    consent_store: ConsentStoreConfig = _DEFAULT_STORE  # the settings' defaults (frozen)

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> Tuning:
        """The tuning the worker's settings ask for; `barrier_timeout` keeps its default.

        Takes `GATEWAY_BATCH_MAX`, `GATEWAY_LINGER_MS`, `GATEWAY_MAX_BATCH_BYTES`,
        `GATEWAY_COMMIT_INTERVAL`, `GATEWAY_MAX_INFLIGHT` and the `GATEWAY_CONSENT_STORE*`
        settings, already validated by the settings.
        """
        return cls(
            batch_max=settings.batch_max,
            linger_ms=settings.linger_ms,
            max_batch_bytes=settings.max_batch_bytes,
            commit_interval=settings.commit_interval,
            max_inflight=settings.max_inflight,
            consent_store=ConsentStoreConfig(
                settings.consent_store,
                settings.consent_store_dir,
                settings.consent_store_cache_bytes,
            ),
        )


def build_app(
    *,
    app_id: str,
    bootstrap: str,
    config: GatewayConfig,
    engine: Engine,
    keyring: Keyring,
    metrics: GatewayMetrics,
    partitions: int,
    output_partitions: Mapping[str, int],
    tuning: Tuning,
    config_dir: Path | None = None,
    replication: int = 1,
    security: ClientSecurity = PLAINTEXT,
    load_keys: LoadKeys | None = None,
) -> faust.App:
    """The worker's faust app, with the fast path wired into its life cycle and rebalances.

    `partitions` is the raw and consent topics' shared count; `output_partitions` the count of
    every topic written; `security` is how every client authenticates (faust's own, the
    reader's, the feed's, the producer's). Nothing connects to the broker before the app starts.
    """
    topics = config.settings.topics
    raw_names = frozenset({topics.usage_raw, topics.device_raw})
    app, table = make_faust_app(
        app_id, bootstrap, tuning=tuning, partitions=partitions, replication=replication,
        security=security,
    )  # fmt: skip
    consent = consent_table_view(table, tuning.consent_store)
    output = OutputProducer(bootstrap, tuning, output_partitions, security=security)
    feed, barrier = make_consent_feed(
        bootstrap, app_id, config=config, engine=engine, metrics=metrics, table=consent,
        output=output, partitions=partitions, output_partitions=output_partitions,
        commit_interval=tuning.commit_interval, security=security,
    )  # fmt: skip
    reader = make_reader(
        bootstrap, app_id, config=config, engine=engine, metrics=metrics, barrier=barrier,
        consent=consent, output=output, tuning=tuning, on_failure=_exit_without_commit,
        keep_gpc=feed.keep_gpc,
        security=security,
    )  # fmt: skip
    reloader = None
    if config_dir is not None:
        reloader = make_reloader(
            config_dir, config, keyring, metrics, feed=feed, reader=reader, load_keys=load_keys
        )
    app.service(fast_path_service(output, feed, reader, reloader))
    install_never_fetching_consumer(app, raw_names)
    subscribe_raw_topics(app, raw_names)
    connect_rebalance_hooks(
        app,
        FastPathRebalance(
            feed=feed, reader=reader, raw_topics=raw_names, consent=consent, metrics=metrics,
            pause_fetching=lambda tps: pause_fetching(app, tps),
        ),
    )  # fmt: skip
    report_state(app, consent=consent, barrier=barrier, metrics=metrics)
    return app


def make_faust_app(
    app_id: str,
    bootstrap: str,
    *,
    tuning: Tuning,
    partitions: int,
    replication: int,
    security: ClientSecurity = PLAINTEXT,
) -> tuple[faust.App, Any]:
    """The faust app (group, assignment, life cycle) and its changelog-backed consent table.

    `tuning.commit_interval` is in seconds, `tuning.linger_ms` in milliseconds;
    `tuning.consent_store` picks the table's store (memory, or RocksDB on disk); `security`
    gives faust's clients their `broker_credentials`.
    """
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        broker_credentials=security.faust_credentials(),
        **consent_store_arguments(tuning.consent_store, app_id),
        web_enabled=False,
        topic_replication_factor=replication,
        topic_partitions=partitions,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=tuning.commit_interval,
        broker_session_timeout=10.0,  # a crashed worker's partitions move within seconds
        broker_heartbeat_interval=1.0,
        producer_acks=-1,
        producer_linger_ms=tuning.linger_ms,
        processing_guarantee="at_least_once",
        table_standby_replicas=0,
    )
    table = app.Table(
        "consent",
        partitions=partitions,
        key_type=bytes,  # faust's "raw" codec on every path (writes, changelog, recovery)
        value_type=bytes,
        help="current consent per subject: UTF-8 subject id -> packed consent int as ASCII",
        **consent_table_arguments(tuning.consent_store),
    )
    return app, table


def make_consent_feed(
    bootstrap: str,
    app_id: str,
    *,
    config: GatewayConfig,
    engine: Engine,
    metrics: GatewayMetrics,
    table: ConsentTable,
    output: OutputProducer,
    partitions: int,
    output_partitions: Mapping[str, int],
    commit_interval: float,
    consumer_factory: ConsumerFactory = AIOKafkaConsumer,
    security: ClientSecurity = PLAINTEXT,
) -> tuple[ConsentFeed, ConsentBarrier]:
    """The consent feed (group `<app id>-consent-feed`) and the barrier it advances.

    The feed writes the table's changelog (`partitions` of them), the DLQ and the erasure
    notices (erasure, sink and audit topics: every topic of `output_partitions`) on a writer of
    its own on the shared producer; the barrier asks the feed for the consent end offsets. It
    writes each record's partition of the table (`table.in_partition`) and, for a persistent
    store, records the changelog offsets acknowledged (`table.persist_changelog_offsets`).
    """
    topics = config.settings.topics
    changelog = table.changelog_topic
    barrier = ConsentBarrier(lambda parts: feed.end_offsets(parts))  # noqa: PLW0108 - late bound
    feed = ConsentFeed(
        bootstrap=bootstrap,
        topic=topics.consent,
        group_id=worker_groups(app_id).consent_feed,
        barrier=barrier,
        engine=engine,
        metrics=metrics,
        writer=lambda: output.writer({**output_partitions, changelog: partitions}),
        changelog_topic=changelog,
        commit_interval=commit_interval,
        remember_partition=table.remember_partition,
        partition_store=table.in_partition,
        persist_offsets=table.persist_changelog_offsets if table.persistent else None,
        consumer_factory=consumer_factory,
        security=security,
        producer=output,
    )
    return feed, barrier


def make_reader(
    bootstrap: str,
    app_id: str,
    *,
    config: GatewayConfig,
    engine: Engine,
    metrics: GatewayMetrics,
    barrier: ConsentBarrier,
    consent: ConsentTable,
    output: OutputProducer,
    tuning: Tuning,
    on_failure: Callable[[BaseException], None],
    consumer_factory: ConsumerFactory = AIOKafkaConsumer,
    clock: Callable[[], float] = time.time,
    security: ClientSecurity = PLAINTEXT,
    keep_gpc: Callable[[str, int, int], Output] | None = None,
) -> RawReader:
    """The raw reader (group `<app id>-raw`) and its enforcer, writing on the shared producer.

    The enforcer reads consent from the table (`consent.lookup()`: the record's partition of
    it, no scan over partitions; with a persistent store, a batch's subjects in one multi-get
    per partition); `on_failure` is called with the exception
    of a batch that could not be completed (the worker's: exit without committing). `keep_gpc`
    (`ConsentFeed.keep_gpc`) keeps a GPC signal under `gpc: sticky`; the enforcer's writer then
    also writes the table's changelog (as many partitions as the raw topics).
    """
    topics = config.settings.topics
    kinds = {topics.usage_raw: EventKind.USAGE, topics.device_raw: EventKind.DEVICE}
    lookup = consent.lookup()

    async def make_enforcer() -> Enforcer:
        writer = await output.start()
        if keep_gpc is not None:  # the changelog is co-partitioned with the raw topics
            changelog = {consent.changelog_topic: output.partitions[topics.usage_raw]}
            writer = await output.writer({**output.partitions, **changelog})
        return Enforcer(
            engine, kinds=kinds, consent=lookup.any_partition, consent_in=lookup.in_partition,
            writer=writer, metrics=metrics, clock=clock, keep_gpc=keep_gpc,
            # a persistent store reads a batch's subjects in one multi-get per partition; the
            # memory store's dict is faster one record at a time
            consent_many=lookup.many_in_partition if consent.persistent else None,
        )  # fmt: skip

    def on_batch(size: int, waited: float, seconds: float) -> None:
        metrics.barrier_waited(waited)
        metrics.batch_processed(size, seconds, clock())

    return RawReader(
        bootstrap=bootstrap,
        topics=frozenset(kinds),
        group_id=worker_groups(app_id).reader,
        barrier=barrier,
        make_enforcer=make_enforcer,
        on_batch=on_batch,
        on_lag=metrics.set_consumer_lag,
        on_forget=metrics.forget_consumer_partition,
        batch_max=tuning.batch_max,
        barrier_timeout=tuning.barrier_timeout,
        max_inflight=tuning.max_inflight,
        commit_interval=tuning.commit_interval,
        on_failure=on_failure,
        consumer_factory=consumer_factory,
        security=security,
        outage=Outage(
            "raw_reader", began=metrics.kafka_outage_began, ended=metrics.kafka_outage_ended
        ),
        producer=output,
    )


def make_reloader(
    config_dir: Path,
    config: GatewayConfig,
    keyring: Keyring,
    metrics: GatewayMetrics,
    *,
    feed: ConsentFeed,
    reader: RawReader,
    load_keys: LoadKeys | None = None,
) -> ConfigReloader:
    """The SIGHUP reload: a new engine reaches every writer, the reader's and the feed's.

    `load_keys` reloads the pseudonym keys with the rules (None: keys never change).
    """

    def swap(new_engine: Engine) -> None:
        reader.swap(new_engine)
        feed.swap(new_engine)

    return ConfigReloader(config_dir, config, keyring, metrics, swap=swap, load_keys=load_keys)


def has_terminal() -> bool:
    """True when the process has a controlling terminal that is still there (`/dev/tty`)."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def hangup_handler(
    reload: Callable[[], object], terminal: Callable[[], bool] = has_terminal
) -> Callable[[], None]:
    """The SIGHUP handler: a reload, unless the signal is the terminal's hangup.

    SIGHUP means two things (POSIX): an operator's `kill -HUP` (a reload, as in most daemons),
    and the kernel's word that the controlling terminal closed. A worker started from a terminal
    that had one at start and has none now stops (SIGTERM to itself: the graceful stop, batches
    finished and committed) instead of running on with no one watching it.
    """
    started_with_terminal = terminal()

    def on_sighup() -> None:
        if started_with_terminal and not terminal():
            log.warning("the controlling terminal hung up: stopping (SIGHUP, not a reload)")
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            reload()

    return on_sighup


def fast_path_service(
    output: OutputProducer,
    feed: ConsentFeed,
    reader: RawReader,
    reloader: ConfigReloader | None,
) -> type[mode.Service]:
    """A service started and stopped with the app: the producer, the feed, the reader.

    With a `reloader`, `kill -HUP` reloads the sink rules between two batches. The feed's loop
    must not die quietly (the barrier would hold every batch): its failure exits the worker.
    """

    class FastPathService(mode.Service):
        async def on_start(self) -> None:
            await output.start()
            await feed.start()
            await reader.start()
            if reloader is not None:
                on_hangup = hangup_handler(reloader.reload)
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_hangup)
            self.add_future(_guard(feed.run()))
            self.add_future(reader.run())

        async def on_stop(self) -> None:
            await reader.stop()
            await feed.stop()
            await output.stop()

    return FastPathService


def subscribe_raw_topics(app: faust.App, raw_names: frozenset[str]) -> None:
    """Subscribe the raw topics through an agent, so faust assigns them with the table's."""
    raw_topics = app.topic(*sorted(raw_names), key_serializer="raw", value_serializer="raw")

    @app.agent(raw_topics, name="raw-topics")
    async def raw_topics_agent(stream: faust.StreamT[bytes]) -> None:
        """Faust never fetches the raw topics (`faust_adapter`); the `RawReader` does.

        A record arriving here would be a bug: leave without acking, so nothing is committed
        unread.
        """
        async for _ in stream.events():
            _exit_without_commit(RuntimeError("faust delivered a raw record; the reader owns them"))


def report_state(
    app: faust.App, *, consent: ConsentTable, barrier: ConsentBarrier, metrics: GatewayMetrics
) -> None:
    """Every 2 seconds: the table's subject count (RocksDB: its estimate), the consent lag."""

    @app.timer(interval=2.0)  # type: ignore[untyped-decorator]
    async def report() -> None:
        metrics.set_consent_subjects(consent.size())
        for partition, lag in barrier.lag().items():
            metrics.set_consent_lag(partition, lag)


class FastPathRebalance:
    """Owns what a rebalance does to the consent feed and the raw reader.

    Revoked: the feed pauses, the reader settles and commits its batches in flight. Assigned:
    the same (faust may skip the revoke), then both are told the new raw partitions, which
    faust's own consumer must not fetch (`pause_fetching`). Complete: the table is restored,
    its newest state's time is reported, and both resume. Raises what the reader's settling
    raises (an output failed): faust then crashes the worker before the offsets move.
    """

    def __init__(
        self,
        *,
        feed: ConsentFeed,
        reader: RawReader,
        raw_topics: frozenset[str],
        consent: ConsentTable,
        metrics: GatewayMetrics,
        pause_fetching: Callable[[set[TP]], None],
    ) -> None:
        self._feed = feed
        self._reader = reader
        self._raw_topics = raw_topics
        self._consent = consent
        self._metrics = metrics
        self._pause_fetching = pause_fetching

    async def revoked(self) -> None:
        """Partitions are about to move: pause the feed, settle and commit the reader's batches."""
        self._feed.pause()
        await self._reader.revoke()

    async def assigned(self, assigned: set[TP]) -> None:
        """Faust's whole new assignment: settle as on a revoke, then hand over the raw partitions.

        The reader is told the raw topic-partitions in `assigned`, the feed their numbers (its
        consent partitions); faust's own consumer is kept from fetching them.
        """
        self._feed.pause()
        await self._reader.revoke()
        raw = {tp for tp in assigned if tp.topic in self._raw_topics}
        self._pause_fetching(raw)
        self._feed.assign({tp.partition for tp in raw})
        self._reader.assign(raw)

    async def complete(self) -> None:
        """The table is restored: report its newest state's time, resume the feed and reader.

        The newest time is found by a scan of the memory store; a RocksDB store skips it (it
        would read every value), and the metric waits for the next record applied.
        """
        newest = self._consent.newest_ordered_at_us()
        if newest is not None:  # freshness survives a restart: the newest restored record
            self._metrics.restore_consent_newest(newest / 1e6)
        await self._feed.resume()
        await self._reader.resume()
        # Objects alive now (faust, the restored table, caches) stay alive: keep them out of the
        # cyclic collector's full passes, whose pauses otherwise show up as p99 latency.
        gc.freeze()


ProducerFactory = Callable[..., AIOKafkaProducer]  # called with aiokafka's keyword settings


async def _close_quietly(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), timeout=30)


class OutputProducer:
    """Owns the producer of sink, audit, changelog and DLQ records (acks=all, idempotent).

    Made on the app's loop when first needed, by `producer_factory` (a fake in broker-free
    tests). `tuning.linger_ms` is in milliseconds, `tuning.max_batch_bytes` in bytes per
    partition batch; `partitions` gives every output topic's partition count; `security` is
    how it authenticates. `start` raises what aiokafka raises when the broker cannot be reached.
    """

    def __init__(
        self,
        bootstrap: str,
        tuning: Tuning,
        partitions: Mapping[str, int],
        producer_factory: ProducerFactory = AIOKafkaProducer,
        *,
        security: ClientSecurity = PLAINTEXT,
    ) -> None:
        self._settings: dict[str, Any] = {
            "bootstrap_servers": bootstrap, "acks": "all", "enable_idempotence": True,
            "linger_ms": tuning.linger_ms, "max_batch_size": tuning.max_batch_bytes,
            "max_request_size": 4 * tuning.max_batch_bytes, **security.aiokafka(),
        }  # fmt: skip
        self._partitions = dict(partitions)
        self._factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._writer: BatchWriter | None = None
        self._lock = asyncio.Lock()
        self._order = asyncio.Lock()  # shared by every writer: batches in decision order
        self._writers: list[BatchWriter] = []
        self._generation = 0
        self._closing: asyncio.Future[None] | None = None

    async def start(self) -> BatchWriter:
        """Make and start the producer, fetch each output topic's metadata; return its writer.

        Idempotent: later calls return the first writer. Raises what aiokafka raises when the
        broker cannot be reached.
        """
        async with self._lock:
            if self._writer is None:
                self._producer = await self._started_producer()
                self._writer = self._track(
                    BatchWriter(self._producer, self._partitions, order=self._order)
                )
            return self._writer

    async def _started_producer(self) -> AIOKafkaProducer:
        producer = self._factory(**self._settings)
        await producer.start()
        for topic in self._partitions:  # metadata now, not on the first batch's clock
            await producer.partitions_for(topic)
        return producer

    def _track(self, writer: BatchWriter) -> BatchWriter:
        self._writers.append(writer)  # `renew` points it at a new producer
        return writer

    async def writer(self, partitions: Mapping[str, int]) -> BatchWriter:
        """Another writer on the same producer, with its own batches and acknowledgements."""
        await self.start()
        assert self._producer is not None
        return self._track(BatchWriter(self._producer, partitions, order=self._order))

    @property
    def generation(self) -> int:
        """How many times the producer was replaced (`renew`)."""
        return self._generation

    async def renew(self, seen: int) -> None:
        """Replace the producer and point every writer at the new one, unless already done.

        `seen` is the generation the caller saw fail: a second caller of the same failure does
        nothing. The old producer is closed in the background (its pending batches fail or land;
        their offsets were not committed). Raises what aiokafka raises while the cluster is away
        (the caller retries).
        """
        async with self._lock:
            if self._generation != seen or self._producer is None:
                return
            old = self._producer
            self._producer = await self._started_producer()
            for writer in self._writers:
                writer.rebind(self._producer)
            self._generation += 1
            self._closing = asyncio.ensure_future(_close_quietly(old))
            log.warning("output producer replaced (its idempotence state was out of step)")

    @property
    def partitions(self) -> dict[str, int]:
        """The partition count of every output topic this producer was made for (a copy)."""
        return dict(self._partitions)

    async def stop(self) -> None:
        """Send what the producer still holds and close it; nothing to do before `start`."""
        if self._producer is not None:
            await self._producer.stop()


async def _guard(work: Awaitable[None]) -> None:
    """The consent feed must not die quietly: the barrier would then hold every batch."""
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        _exit_without_commit(exc)


def _exit_without_commit(exc: BaseException) -> None:
    """A batch could not be completed: exit at once, committing nothing.

    Exiting the process leaves the batch's offsets uncommitted, so a restarted worker decides
    those records again (at least once, no loss); a half-sent batch is sent again, and its
    outputs carry dedup ids. The exception's text is not logged: it may quote record data.
    """
    frames = "".join(traceback.format_tb(exc.__traceback__))  # code locations only, no values
    log.critical(
        "enforcement failed (%s); exiting without committing so the batch is redone on restart\n%s",
        type(exc).__name__,
        frames,
    )
    logging.shutdown()
    os._exit(70)
